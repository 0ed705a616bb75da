// What the layers above ask of a backend, whatever its protocol: one
// buffered attempt (a batch item, a health check) and one streamed
// pass-through exchange. http1_pool (keep-alive HTTP/1.1 connections, for
// http1/https) and h2_pool (multiplexed sessions, for h2c/h2) implement it;
// the fan-out, the health checker and forward_to_backend never ask which one
// they hold. The implementations live with their protocol: http1_client.cpp
// and http1_forwarder.cpp, h2_client.cpp and h2_forwarder.cpp.
#pragma once

#include "proxy/backend/buffered_exchange.hpp"
#include "proxy/backend/forwarding.hpp"
#include "proxy/core/cancel_scope.hpp"
#include "proxy/core/exchange.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>

namespace batchgate {

struct route_match;
struct request_scope;

class backend_client {
public:
    virtual ~backend_client() = default;

    // One attempt: a connection (or stream) from the pool, avoiding endpoint
    // `avoid` when another is available, the request written whole, the
    // answer read whole up to max_response_bytes within `timeout`. No retry
    // here: the caller's retry policy decides.
    virtual asio::awaitable<exchange_outcome> exchange_once(const item_request& request, const client_info& client,
                                                            std::uint64_t max_response_bytes, duration timeout,
                                                            cancel_scope& scope, std::size_t avoid = no_endpoint) = 0;

    // A pass-through request, bodies streamed both ways, retried by the
    // same policy while nothing was sent to the client.
    virtual asio::awaitable<exchange_summary> forward(const forward_request& request, const route_match& match,
                                                      request_body_source& body, response_sink& sink,
                                                      request_scope& scope) = 0;

    // Streams the backend refused unprocessed (h2 REFUSED_STREAM) may go
    // again whatever the method.
    virtual bool multiplexed() const = 0;

    // Drain, reload, a health check stopping: idle HTTP/1.1 connections
    // close now; HTTP/2 sessions say GOAWAY and close once their streams are
    // done. Exchanges under way finish.
    virtual void close_idle() = 0;
};

}  // namespace batchgate
