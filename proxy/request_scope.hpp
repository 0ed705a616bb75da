// What a handler needs to know about the request it serves and the worker it
// runs on. Owned by the worker; handlers borrow it for one request.
#pragma once

#include "proxy/backend_pool.hpp"
#include "proxy/config.hpp"
#include "proxy/forwarding.hpp"
#include "proxy/in_flight_limiter.hpp"
#include "proxy/router.hpp"

#include <memory>
#include <span>
#include <string>
#include <unordered_map>

namespace batchgate {

class h2_backend_pool;

using limiter_map = std::unordered_map<std::string, std::shared_ptr<in_flight_limiter>>;

// One max_in_flight limiter per backend, shared by every worker of one
// configuration generation.
limiter_map make_limiters(const config& cfg);

// Routes and backend pools of one configuration generation on one worker.
// Replaced as a whole on reload; requests in flight keep the old one alive.
struct routing_state {
    std::shared_ptr<const config> cfg;
    batchgate::router router;
    // This worker's own pools: keep-alive HTTP/1.1 ones for http1/https
    // backends, multiplexed HTTP/2 sessions for h2c/h2 ones. Each backend is
    // in exactly one of the two maps.
    std::unordered_map<std::string, std::shared_ptr<backend_pool>> pools;
    std::unordered_map<std::string, std::shared_ptr<h2_backend_pool>> h2_pools;
    limiter_map limiters;  // shared across workers

    routing_state(std::shared_ptr<const config> c, asio::any_io_executor executor, unsigned workers,
                  limiter_map shared_limiters);
    ~routing_state();

    // Drain or reload: idle HTTP/1.1 connections close now; HTTP/2 sessions
    // say GOAWAY and close once their streams are done (an idle session's
    // reader would otherwise keep the worker's loop alive until idle_timeout).
    void close_pools();
};

struct request_scope {
    std::shared_ptr<routing_state> routing;
    client_info client;
    const bool* draining = nullptr;  // the worker's flag: once set, answer with Connection: close
    std::string request_id;  // for the access log and X-Request-Id
    std::span<char> relay_buffer;  // body buffer of this request (per HTTP/1.1 connection, per HTTP/2 stream)
    // HTTP/2: batch items in flight over all streams of the connection
    // (http2.max_batch_items_in_flight); null on HTTP/1.1, one batch at a time.
    in_flight_limiter* connection_items = nullptr;
};

}  // namespace batchgate
