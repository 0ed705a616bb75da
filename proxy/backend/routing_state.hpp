// Routes, backend pools and limiters of one configuration generation on one
// worker. Replaced as a whole on reload; requests in flight keep the old one
// alive.
#pragma once

#include "proxy/backend/http1_pool.hpp"
#include "proxy/backend/in_flight_limiter.hpp"
#include "proxy/backend/retry_budget.hpp"
#include "proxy/backend/router.hpp"
#include "proxy/config/config.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <string>
#include <unordered_map>

namespace batchgate {

class h2_pool;

using limiter_map = std::unordered_map<std::string, std::shared_ptr<in_flight_limiter>>;

// What every worker's routing_state of one configuration generation shares:
// one max_in_flight limiter per backend, and one TLS client context per
// https/h2 backend.
struct shared_backends {
    limiter_map limiters;
    std::unordered_map<std::string, std::shared_ptr<retry_budget>> budgets;
    std::unordered_map<std::string, std::shared_ptr<asio::ssl::context>> tls;
};
// Throws std::runtime_error when a TLS context cannot be built (start-up
// fails, a reload is refused).
shared_backends make_shared_backends(const config& cfg);

// Routes and backend pools of one configuration generation on one worker.
// Replaced as a whole on reload; requests in flight keep the old one alive.
struct routing_state {
    std::shared_ptr<const config> cfg;
    batchgate::router router;
    // This worker's own pools: keep-alive HTTP/1.1 ones for http1/https
    // backends, multiplexed HTTP/2 sessions for h2c/h2 ones. Each backend is
    // in exactly one of the two maps.
    std::unordered_map<std::string, std::shared_ptr<http1_pool>> pools;
    std::unordered_map<std::string, std::shared_ptr<h2_pool>> h2_pools;
    limiter_map limiters;  // shared across workers

    routing_state(std::shared_ptr<const config> c, asio::any_io_executor executor, unsigned workers,
                  const shared_backends& shared);
    ~routing_state();

    // Drain or reload: idle HTTP/1.1 connections close now; HTTP/2 sessions
    // say GOAWAY and close once their streams are done (an idle session's
    // reader would otherwise keep the worker's loop alive until idle_timeout).
    void close_pools();
};

}  // namespace batchgate
