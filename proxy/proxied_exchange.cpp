#include "proxy/proxied_exchange.hpp"

#include "proxy/h2_backend.hpp"
#include "proxy/h2_forwarder.hpp"
#include "proxy/http1_forwarder.hpp"

namespace batchgate {

asio::awaitable<bool> response_sink::send_problem(http::status status, std::string_view detail,
                                                  problem_position where) {
    response_head head;
    head.status = static_cast<unsigned>(status);
    head.headers.set(http::field::content_type, "application/problem+json");
    head.headers.set(http::field::cache_control, "no-store");
    auto body = problem_json(status, detail, where);
    co_return co_await send_answer(std::move(head), std::move(body));
}

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
    // The backend's protocol chose its pool (the shared_ptr keeps it alive
    // through a reload).
    if (auto it = scope.routing->h2_pools.find(match.backend); it != scope.routing->h2_pools.end()) {
        auto pool = it->second;
        co_return co_await forward_over_h2(request, match, *pool, body, sink, scope);
    }
    auto pool = scope.routing->pools.at(match.backend);
    co_return co_await forward_over_http1(request, match, *pool, body, sink, scope);
}

}  // namespace batchgate
