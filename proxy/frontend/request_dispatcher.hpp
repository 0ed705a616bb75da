// What happens to a request once its head is in, written once for both
// frontends: its scope (configuration generation, the client as that
// generation's trusted_proxies see it, the request id), the checks every
// request passes, the choice between batch and pass-through, and at the end
// the request metric and the access-log line. The HTTP/1.1 and h2 frontends
// are protocol adapters: they turn their protocol into a forward_request, a
// request_body_source and a response_sink, add their protocol's own check,
// and settle what was really sent.
#pragma once

#include "proxy/backend/request_scope.hpp"
#include "proxy/core/exchange.hpp"
#include "proxy/core/metrics.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <span>
#include <string_view>

namespace batchgate {

request_scope open_request_scope(std::shared_ptr<routing_state> routing, const client_info& connection_client,
                                 const bool* draining, std::string_view client_request_id,
                                 std::span<char> relay_buffer, in_flight_limiter* connection_items = nullptr);

// A frontend's own reason to refuse a request before it is served (HTTP/1.1
// request smuggling, a control character in an h2 header value): 400 with
// `detail`, counted as a breach of `limit`.
struct request_refusal {
    std::string_view detail;
    limit_kind limit;
};

struct dispatched_request {
    request_kind kind = request_kind::passthrough;
    exchange_summary summary;
};

// Refusals first (the frontend's, then an Expect other than 100-continue:
// 417), then a batch to the batch handler and everything else to the
// backend the router picks.
asio::awaitable<dispatched_request> dispatch_request(const forward_request& request, request_body_source& body,
                                                     response_sink& sink, request_scope& scope,
                                                     std::optional<request_refusal> refusal);

// Once the frontend settled the summary (what the client really got).
void record_request(const request_scope& scope, const forward_request& request, const dispatched_request& done,
                    std::chrono::steady_clock::time_point started);

}  // namespace batchgate
