#include "proxy/h2_backend.hpp"
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
    for (const auto& [name, backend] : cfg->backends) {
        switch (backend.protocol) {
        case backend_protocol::http1:
        case backend_protocol::https:
            pools.emplace(name, std::make_shared<backend_pool>(executor, backend, workers));
            break;
        case backend_protocol::h2c:
        case backend_protocol::h2:
            h2_pools.emplace(name, std::make_shared<h2_backend_pool>(executor, backend, workers));
            break;
        }
    }
}

// Out of line: h2_backend_pool is only forward-declared in the header.
routing_state::~routing_state() = default;

void routing_state::close_pools() {
    for (auto& [name, pool] : pools) pool->close_idle();
    for (auto& [name, pool] : h2_pools) pool->close();
}

}  // namespace batchgate
