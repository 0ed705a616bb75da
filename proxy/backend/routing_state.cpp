#include "proxy/backend/routing_state.hpp"

#include "proxy/backend/h2_client.hpp"
#include "proxy/backend/http1_pool.hpp"

namespace batchgate {

shared_backends make_shared_backends(const config& cfg, const config* previous_cfg, const shared_backends* previous) {
    shared_backends out;
    for (const auto& [name, backend] : cfg.backends) {
        const backend_shared* before = nullptr;
        const backend_config* before_cfg = nullptr;
        if (previous && previous_cfg) {
            const auto it = previous->find(name);
            const auto cit = previous_cfg->backends.find(name);
            if (it != previous->end() && cit != previous_cfg->backends.end()) {
                before = it->second.get();
                before_cfg = &cit->second;
            }
        }
        out.emplace(name, make_backend_shared(backend, before, before_cfg));
    }
    return out;
}

routing_state::routing_state(std::shared_ptr<const config> c, asio::any_io_executor executor,
                             const shared_backends& shared)
    : cfg(std::move(c)), router(cfg->routes, cfg->backends), shared_(shared) {
    backends.reserve(cfg->backends.size());
    for (const auto& [name, backend] : cfg->backends) {
        backend_handle handle;
        handle.cfg = &backend;
        auto common = shared_.at(name);
        handle.shared = common.get();
        switch (backend.protocol) {
        case backend_protocol::http1:
        case backend_protocol::https:
            pools_.push_back(std::make_shared<http1_pool>(executor, backend, std::move(common)));
            break;
        case backend_protocol::h2c:
        case backend_protocol::h2:
            pools_.push_back(std::make_shared<h2_pool>(executor, backend, std::move(common)));
            break;
        }
        handle.client = pools_.back().get();
        backends.push_back(handle);
    }
}

// Out of line: the pools are only forward-declared in the header.
routing_state::~routing_state() = default;

void routing_state::close_pools() {
    for (auto& pool : pools_) pool->close_idle();
}

}  // namespace batchgate
