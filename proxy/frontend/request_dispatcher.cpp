#include "proxy/frontend/request_dispatcher.hpp"

#include "proxy/backend/forward.hpp"
#include "proxy/batch/batch_handler.hpp"
#include "proxy/core/cidr.hpp"
#include "proxy/frontend/access_log.hpp"

#include <boost/beast/core/string.hpp>

namespace batchgate {

request_scope open_request_scope(std::shared_ptr<routing_state> routing, const client_info& connection_client,
                                 const bool* draining, std::string_view client_request_id,
                                 std::span<char> relay_buffer, in_flight_limiter* connection_items) {
    // Trust is decided per request: a reload may change trusted_proxies
    // while the connection stays.
    const bool trusted = any_contains(routing->cfg->trusted_proxies, connection_client.address());
    client_info client(connection_client, trusted);
    return request_scope{std::move(routing), std::move(client), draining, request_id_for(client_request_id),
                         relay_buffer, connection_items};
}

asio::awaitable<dispatched_request> dispatch_request(const forward_request& request, request_body_source& body,
                                                     response_sink& sink, request_scope& scope,
                                                     std::optional<request_refusal> refusal) {
    dispatched_request out;
    auto& metrics = metrics_registry::global();
    if (refusal) {
        metrics.limit_breached(refusal->limit);
        const bool sent = co_await sink.send_problem(http::status::bad_request, refusal->detail);
        out.summary.status = sent ? 400 : 0;
        co_return out;
    }
    if (const auto expect = (*request.headers)[http::field::expect];
        !expect.empty() && !boost::beast::iequals(expect, "100-continue")) {
        const bool sent =
            co_await sink.send_problem(http::status::expectation_failed, "only 'Expect: 100-continue' is supported");
        out.summary.status = sent ? 417 : 0;
        co_return out;
    }
    if (is_batch_target(request.target, *scope.routing->cfg)) {
        out.kind = request_kind::batch;
        out.summary = co_await serve_batch(request, body, sink, scope);
    } else {
        out.summary = co_await forward_to_backend(request, body, sink, scope);
    }
    co_return out;
}

void record_request(const request_scope& scope, const forward_request& request, const dispatched_request& done,
                    std::chrono::steady_clock::time_point started) {
    metrics_registry::global().request_done(done.kind, done.summary.status, std::chrono::steady_clock::now() - started);
    log_access(scope.client, scope.request_id, request.method_text, request.target, done.summary, started);
}

}  // namespace batchgate
