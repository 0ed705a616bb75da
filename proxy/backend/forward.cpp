#include "proxy/backend/forward.hpp"

#include "proxy/backend/h2_client.hpp"
#include "proxy/backend/h2_forwarder.hpp"
#include "proxy/backend/http1_forwarder.hpp"

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
    // h2c/h2 backends have multiplexed session pools, the others keep-alive ones.
    if (auto it = scope.routing->h2_pools.find(match.backend); it != scope.routing->h2_pools.end()) {
        auto h2_pool = it->second;
        co_return co_await forward_over_h2(request, match, *h2_pool, body, sink, scope);
    }
    auto pool = scope.routing->pools.at(match.backend);
    co_return co_await forward_over_http1(request, match, *pool, body, sink, scope);
}

}  // namespace batchgate
