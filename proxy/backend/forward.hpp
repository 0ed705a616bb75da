// Pass-through: one client request forwarded to the backend its route
// names, over that backend's protocol (HTTP/1.1 pool or HTTP/2 sessions).
#pragma once

#include "proxy/backend/request_scope.hpp"
#include "proxy/core/exchange.hpp"

namespace batchgate {

// Forwards one request to the backend `route` chose, over HTTP/1.1 or HTTP/2
// by the backend's protocol. Every outcome, failures included, has been told
// to the client through `sink` when this returns (or the client is gone).
asio::awaitable<exchange_summary> forward_to_backend(const forward_request& request, request_body_source& body,
                                                     response_sink& sink, request_scope& scope);

}  // namespace batchgate
