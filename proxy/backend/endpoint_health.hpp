// Whether an endpoint of one backend may take new requests: passive outlier
// ejection (PRODUCT.md §4.1 `outlier`) and the state of active health checks
// (`health_check`). One per backend for the whole process: every worker's
// pools read and feed it through relaxed atomics, never a lock, so the
// per-item cost of an answered request is one load (and a store only when a
// failure streak ends). Time is passed in, so the ejection schedule is
// tested without sleeping.
#pragma once

#include "proxy/backend/retry_policy.hpp"
#include "proxy/config/config.hpp"
#include "proxy/core/metrics.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace batchgate {

// What one attempt says about the endpoint it went to.
enum class endpoint_signal {
    neutral,  // nothing about the endpoint: queue wait, stale keep-alive, refused stream, unusable answer
    success,  // an answer other than 502/503/504: ends a failure streak
    failure,  // connect failure or timeout, reset, timeout, 502/503/504
};
endpoint_signal signal_of(attempt_event event, unsigned status);

class endpoint_health {
public:
    using clock = std::chrono::steady_clock;

    // `metrics` (the backend's series) counts ejections, returns, checks and
    // the endpoints out of rotation; tests may leave it out.
    explicit endpoint_health(std::size_t endpoints, backend_metrics* metrics = nullptr);
    ~endpoint_health();
    endpoint_health(const endpoint_health&) = delete;
    endpoint_health& operator=(const endpoint_health&) = delete;

    std::size_t size() const { return count_; }

    // May `endpoint` take a new request now: not ejected (an ejection whose
    // time is over ends here, counted once) and not failing its checks.
    bool available(std::size_t endpoint, clock::time_point now);
    // Is there any endpoint that may take a request now?
    bool any_available(clock::time_point now);

    // Passive: what an attempt on `endpoint` showed. `outlier.consecutive_failures`
    // failures in a row eject it for base × times ejected, at most
    // max_ejection, unless max_ejected endpoints are out already.
    void observe(std::size_t endpoint, endpoint_signal signal, const outlier_config& outlier,
                 clock::time_point now);
    void observe(std::size_t endpoint, const attempt_report& report, const outlier_config& outlier,
                 clock::time_point now) {
        observe(endpoint, signal_of(report.event, report.status), outlier, now);
    }

    // Active: one health check of `endpoint` passed or failed (called from
    // the process's one checker). A pass also ends an ejection early.
    void check_result(std::size_t endpoint, bool passed, const health_check_config& check, clock::time_point now);

    struct endpoint_view {
        bool ejected = false;
        bool healthy = true;
        unsigned times_ejected = 0;
        unsigned consecutive_failures = 0;
        clock::time_point ejected_until{};  // when ejected
    };
    endpoint_view view(std::size_t endpoint) const;
    std::size_t ejected_now() const { return ejected_.load(std::memory_order_relaxed); }

    // How many endpoints of `count` may be ejected at once: the share, but
    // always at least one (Envoy's rule).
    static std::size_t max_ejected(std::size_t count, unsigned percent);
    // How long the ejection number `times` (1 = first) lasts.
    static clock::duration ejection_time(unsigned times, const outlier_config& outlier);

private:
    struct endpoint_state;
    void eject(endpoint_state& ep, const outlier_config& outlier, clock::time_point now);
    bool end_ejection(endpoint_state& ep, std::int64_t until, clock::time_point now);

    std::size_t count_;
    std::unique_ptr<endpoint_state[]> endpoints_;
    std::atomic<std::size_t> ejected_{0};
    backend_metrics* metrics_;
};

// Retry-After for a request refused because no endpoint of the backend is
// in rotation: until the first ejection ends, or, when only health checks
// keep them out, the `healthy` checks it takes to come back; at least 1 s.
std::chrono::seconds no_endpoint_retry_after(const endpoint_health& health, const backend_config& backend,
                                             endpoint_health::clock::time_point now);

// Where one new request may go, as the pools ask it: endpoints in rotation,
// and not `avoid` (the one a retried request just failed on) while another
// is in rotation. When none is in rotation every endpoint is allowed: the
// callers answered "no healthy endpoint" just before asking, so that is a
// race of microseconds, and a try beats a refusal then.
class endpoint_choice {
public:
    endpoint_choice(endpoint_health& health, std::size_t avoid, endpoint_health::clock::time_point now);
    // First choice: in rotation and not avoided.
    bool preferred(std::size_t endpoint) const;
    // Second choice (an idle connection or a session with room): the avoided
    // endpoint, when it is in rotation.
    bool last_resort(std::size_t endpoint) const { return endpoint == avoid_; }

private:
    endpoint_health& health_;
    endpoint_health::clock::time_point now_;
    bool any_in_;
    std::size_t avoid_;  // no_endpoint when nothing is avoided
};

}  // namespace batchgate
