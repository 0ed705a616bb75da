// Active health checks (PRODUCT.md §4.1 `health_check`) for the whole
// process: one thread of its own, one loop per endpoint of every backend
// that has `health_check`, each a GET of `path` every `interval` within
// `timeout` (any 2xx passes). Results go to the backend's endpoint_health,
// which every worker reads, so N workers do not make N checks. The checks
// use their own one-connection pool per endpoint (kept alive between
// checks, like Envoy's), so they neither wait behind items nor take an
// item's connection.
#pragma once

#include "proxy/backend/routing_state.hpp"
#include "proxy/config/config.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <memory>
#include <thread>

namespace batchgate {

struct health_check_generation;

class health_checker {
public:
    health_checker();
    ~health_checker();  // stops the checks and joins the thread
    health_checker(const health_checker&) = delete;
    health_checker& operator=(const health_checker&) = delete;

    // Checks `cfg`'s backends into `shared`'s endpoint health from now on,
    // replacing the generation checked before (a reload). Thread-safe.
    void check(std::shared_ptr<const config> cfg, const shared_backends& shared);
    // No more checks; idle check connections close. Thread-safe.
    void stop();

private:
    void replace(std::shared_ptr<health_check_generation> next);

    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> keep_running_;
    std::shared_ptr<health_check_generation> current_;  // touched on io_'s thread only
    std::thread thread_;
};

}  // namespace batchgate
