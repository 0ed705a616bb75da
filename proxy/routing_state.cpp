#include "proxy/request_scope.hpp"

namespace batchgate {

limiter_map make_limiters(const config& cfg) {
    limiter_map out;
    for (const auto& [name, backend] : cfg.backends)
        out.emplace(name, std::make_shared<in_flight_limiter>(backend.max_in_flight));
    return out;
}

routing_state::routing_state(std::shared_ptr<const config> c, asio::any_io_executor executor, unsigned workers,
                             limiter_map shared_limiters)
    : cfg(std::move(c)), router(cfg->routes), limiters(std::move(shared_limiters)) {
    for (const auto& [name, backend] : cfg->backends)
        pools.emplace(name, std::make_shared<backend_pool>(executor, backend, workers));
}

}  // namespace batchgate
