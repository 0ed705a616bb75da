// Pass-through to an h2c/h2 backend: one client request becomes one stream
// on a multiplexed session from the backend's h2_pool, whatever
// protocol the client spoke (proxied_exchange.hpp).
//
// Both bodies stream and both are bounded: the request body is read from the
// client only while the stream's outgoing queue is short (HTTP/2 flow
// control drains it), and response DATA is handed to the consumer only
// after the sink took the previous bytes, so at most one stream window of
// it waits in memory; WINDOW_UPDATE follows what the sink really took.
//
// Failures before the response head become problem+json through the sink
// (502/503/504, the same words and metrics as the HTTP/1.1 forwarder);
// after it, the sink aborts. Replays: a stream the backend refused
// (REFUSED_STREAM, above a GOAWAY's last stream id) was never processed and
// is sent again whatever the method, as long as the request body sent so
// far is still at hand; other failures only for idempotent requests
// without a body, within the backend's `retries` policy.
#pragma once

#include "proxy/backend/request_scope.hpp"
#include "proxy/backend/router.hpp"
#include "proxy/core/exchange.hpp"

#include <boost/asio/awaitable.hpp>

namespace batchgate {

class h2_pool;

asio::awaitable<exchange_summary> forward_over_h2(const forward_request& request, const route_match& match,
                                                  h2_pool& pool, request_body_source& body,
                                                  response_sink& sink, request_scope& scope);

}  // namespace batchgate
