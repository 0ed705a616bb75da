// What every worker shares about one backend: its max_in_flight limiter, its
// max_connections slots, its retries.budget, its endpoints' health, and its
// TLS client context. Made once per configuration generation; a reload
// carries the limiter, the slots and the health over when the backend's
// endpoints did not change (PRODUCT.md §4.1), so a reload neither doubles
// max_in_flight or max_connections nor forgets an ejection.
#pragma once

#include "proxy/backend/connection_slots.hpp"
#include "proxy/backend/endpoint_health.hpp"
#include "proxy/backend/in_flight_limiter.hpp"
#include "proxy/backend/retry_budget.hpp"
#include "proxy/config/config.hpp"
#include "proxy/core/metrics.hpp"

#include <memory>

namespace boost::asio::ssl {
class context;
}

namespace batchgate {

struct backend_shared {
    backend_metrics& metrics;  // the process-wide series of this backend name
    std::shared_ptr<in_flight_limiter> limiter;
    std::shared_ptr<connection_slots> slots;  // max_connections per endpoint, over all workers
    std::shared_ptr<retry_budget> budget;
    std::shared_ptr<endpoint_health> health;
    std::shared_ptr<boost::asio::ssl::context> tls;  // set for https/h2
};

// Everything fresh for `cfg` (`previous`: null), or carried over from the
// previous generation's `previous` when `previous_cfg` has the same
// endpoints: the limiter and the slots (taking the new limits) and the
// health state.
// Throws std::runtime_error when the TLS context cannot be built.
std::shared_ptr<backend_shared> make_backend_shared(const backend_config& cfg,
                                                    const backend_shared* previous = nullptr,
                                                    const backend_config* previous_cfg = nullptr);

}  // namespace batchgate
