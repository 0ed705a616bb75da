// Pass-through to an HTTP/1.1 backend (keep-alive pool): the request body is
// streamed from the client side to the backend, the answer streamed back,
// hop-by-hop headers stripped and forwarding headers added; failures before
// the answer's head become problem+json (PRODUCT.md §3). Retries follow the
// backend's policy where replaying is safe.
#pragma once

#include "proxy/backend/http1_pool.hpp"
#include "proxy/backend/request_scope.hpp"
#include "proxy/backend/router.hpp"
#include "proxy/core/exchange.hpp"

namespace batchgate {

asio::awaitable<exchange_summary> forward_over_http1(const forward_request& request, const route_match& match,
                                                     http1_pool& pool, request_body_source& body,
                                                     response_sink& sink, request_scope& scope);

}  // namespace batchgate
