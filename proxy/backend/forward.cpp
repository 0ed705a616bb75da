#include "proxy/backend/forward.hpp"

#include "proxy/backend/backend_client.hpp"
#include "proxy/backend/routing_state.hpp"

namespace batchgate {

asio::awaitable<exchange_summary> forward_to_backend(const forward_request& request, request_body_source& body,
                                                     response_sink& sink, request_scope& scope) {
    exchange_summary summary;
    normalized_target target;
    route_match match;
    http::status refusal{};
    std::string detail;
    if (auto e = normalize_target(request.target, target); e != target_error::none) {
        refusal = http::status::bad_request;
        detail = describe(e);
    } else if (!scope.routing->router.match(target, match)) {
        refusal = http::status::not_found;
        detail = "no route for " + target.path;
    }
    if (refusal != http::status{}) {
        const bool sent = co_await sink.send_problem(refusal, detail);
        summary.status = sent ? static_cast<unsigned>(refusal) : 0;
        co_return summary;
    }
    const backend_handle& backend = scope.routing->backend(match.backend_index);
    if (const auto now = std::chrono::steady_clock::now(); !backend.shared->health->any_available(now)) {
        // Every endpoint ejected or failing its checks: at once, and with
        // when to come back, rather than after a connect that cannot help.
        auto& metrics = backend.shared->metrics;
        metrics.no_endpoint.fetch_add(1, std::memory_order_relaxed);
        metrics.overloaded.fetch_add(1, std::memory_order_relaxed);
        metrics.response(0);
        summary.backend = std::string(match.backend);
        const auto wait = no_endpoint_retry_after(*backend.shared->health, *backend.cfg, now);
        const bool sent = co_await sink.send_problem(http::status::service_unavailable,
                                                     "backend " + backend.cfg->name + ": no healthy endpoint", {},
                                                     static_cast<unsigned>(wait.count()));
        summary.status = sent ? 503u : 0u;
        co_return summary;
    }
    // scope.routing keeps the pool alive until the exchange is over.
    co_return co_await backend.client->forward(request, match, body, sink, scope);
}

}  // namespace batchgate
