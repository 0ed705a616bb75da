#include "proxy/backend/backend_shared.hpp"

#include "proxy/backend/backend_tls.hpp"

#include <algorithm>
#include <stdexcept>

namespace batchgate {

std::shared_ptr<backend_shared> make_backend_shared(const backend_config& cfg, const backend_shared* previous,
                                                    const backend_config* previous_cfg) {
    auto& metrics = metrics_registry::global().backend(cfg.name);
    auto out = std::make_shared<backend_shared>(backend_shared{metrics, {}, {}, {}, {}, {}});
    // Same endpoints in the same order: endpoint i is the same place, so its
    // ejection and check state still say something true about it.
    const bool same_endpoints = previous && previous_cfg && previous_cfg->endpoints.size() == cfg.endpoints.size() &&
                                std::equal(cfg.endpoints.begin(), cfg.endpoints.end(), previous_cfg->endpoints.begin(),
                                           [](const host_port& a, const host_port& b) {
                                               return a.host == b.host && a.port == b.port;
                                           });
    if (same_endpoints) {
        out->limiter = previous->limiter;
        out->limiter->set_limits(cfg.max_in_flight, cfg.max_queue);
        out->slots = previous->slots;
        out->slots->set_limit(cfg.max_connections);
        out->health = previous->health;
    } else {
        out->limiter = std::make_shared<in_flight_limiter>(cfg.max_in_flight, cfg.max_queue);
        out->slots = std::make_shared<connection_slots>(cfg.endpoints.size(), cfg.max_connections);
        out->health = std::make_shared<endpoint_health>(cfg.endpoints.size(), &metrics);
    }
    out->budget = std::make_shared<retry_budget>(cfg.retries.budget_percent, metrics.in_flight);
    if (cfg.tls) {
        try {
            out->tls = make_backend_tls_context(cfg);
        } catch (const std::exception& e) {
            throw std::runtime_error("backends." + cfg.name + ".tls: " + e.what());
        }
    }
    return out;
}

}  // namespace batchgate
