#include "proxy/request_scope.hpp"

namespace batchgate {

routing_state::routing_state(std::shared_ptr<const config> c, asio::any_io_executor executor, unsigned workers)
    : cfg(std::move(c)), router(cfg->routes) {
    for (const auto& [name, backend] : cfg->backends)
        pools.emplace(name, std::make_shared<backend_pool>(executor, backend, workers));
}

}  // namespace batchgate
