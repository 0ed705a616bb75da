#include "proxy/backend/routing_state.hpp"

#include "proxy/backend/backend_tls.hpp"
#include "proxy/backend/h2_client.hpp"

#include <stdexcept>

namespace batchgate {

shared_backends make_shared_backends(const config& cfg) {
    shared_backends out;
    for (const auto& [name, backend] : cfg.backends) {
        out.limiters.emplace(name, std::make_shared<in_flight_limiter>(backend.max_in_flight, backend.max_queue));
        out.budgets.emplace(name, std::make_shared<retry_budget>(backend.retries.budget_percent,
                                                                metrics_registry::global().backend(name).in_flight));
        if (backend.tls) {
            try {
                out.tls.emplace(name, make_backend_tls_context(backend));
            } catch (const std::exception& e) {
                throw std::runtime_error("backends." + name + ".tls: " + e.what());
            }
        }
    }
    return out;
}

routing_state::routing_state(std::shared_ptr<const config> c, asio::any_io_executor executor, unsigned workers,
                             const shared_backends& shared)
    : cfg(std::move(c)), router(cfg->routes), limiters(shared.limiters) {
    for (const auto& [name, backend] : cfg->backends) {
        const auto tls = shared.tls.find(name);
        auto context = tls == shared.tls.end() ? nullptr : tls->second;
        auto budget = shared.budgets.at(name);
        switch (backend.protocol) {
        case backend_protocol::http1:
        case backend_protocol::https:
            pools.emplace(name, std::make_shared<http1_pool>(executor, backend, workers, std::move(context), std::move(budget)));
            break;
        case backend_protocol::h2c:
        case backend_protocol::h2:
            h2_pools.emplace(name, std::make_shared<h2_pool>(executor, backend, workers, std::move(context), std::move(budget)));
            break;
        }
    }
}

// Out of line: h2_pool is only forward-declared in the header.
routing_state::~routing_state() = default;

void routing_state::close_pools() {
    for (auto& [name, pool] : pools) pool->close_idle();
    for (auto& [name, pool] : h2_pools) pool->close();
}

}  // namespace batchgate
