// Routes and backends of one configuration generation on one worker.
// Replaced as a whole on reload; requests in flight keep the old one alive.
#pragma once

#include "proxy/backend/backend_client.hpp"
#include "proxy/backend/backend_shared.hpp"
#include "proxy/backend/router.hpp"
#include "proxy/config/config.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace batchgate {

namespace asio = boost::asio;

// What every worker's routing_state of one generation shares, per backend
// name (built once per generation, looked up only when the workers' states
// are made, never per request).
using shared_backends = std::map<std::string, std::shared_ptr<backend_shared>, std::less<>>;

// `previous` (with its configuration): the generation a reload replaces,
// whose limiters and endpoint health carry over for backends whose
// endpoints did not change. Throws std::runtime_error when a TLS context
// cannot be built (start-up fails, a reload is refused).
shared_backends make_shared_backends(const config& cfg, const config* previous_cfg = nullptr,
                                     const shared_backends* previous = nullptr);

// One backend as a request on this worker sees it: what router::match's
// backend_index points to. Everything an item needs, without a lookup.
struct backend_handle {
    const backend_config* cfg = nullptr;
    backend_shared* shared = nullptr;  // limiter, retry budget, endpoint health, metrics
    // This worker's pool: keep-alive HTTP/1.1 connections for http1/https,
    // multiplexed HTTP/2 sessions for h2c/h2.
    backend_client* client = nullptr;
};

struct routing_state {
    std::shared_ptr<const config> cfg;
    batchgate::router router;
    std::vector<backend_handle> backends;  // in the order of cfg->backends, as router indexes them

    routing_state(std::shared_ptr<const config> c, asio::any_io_executor executor,
                  const shared_backends& shared);
    ~routing_state();

    const backend_handle& backend(std::size_t index) const { return backends[index]; }

    // Drain or reload: idle HTTP/1.1 connections close now; HTTP/2 sessions
    // say GOAWAY and close once their streams are done (an idle session's
    // reader would otherwise keep the worker's loop alive until idle_timeout).
    void close_pools();

private:
    shared_backends shared_;  // keeps the handles' `shared` alive
    std::vector<std::shared_ptr<backend_client>> pools_;  // this worker's, one per backend
};

}  // namespace batchgate
