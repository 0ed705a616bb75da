#include "proxy/backend/endpoint_health.hpp"

#include <algorithm>
#include <optional>

namespace batchgate {

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

std::int64_t ticks(endpoint_health::clock::time_point t) { return t.time_since_epoch().count(); }
endpoint_health::clock::time_point at(std::int64_t ticks) {
    return endpoint_health::clock::time_point(endpoint_health::clock::duration(ticks));
}

}  // namespace

endpoint_signal signal_of(attempt_event event, unsigned status) {
    switch (event) {
    case attempt_event::answered:
        return status == 502 || status == 503 || status == 504 ? endpoint_signal::failure : endpoint_signal::success;
    case attempt_event::connect_failed:
    case attempt_event::connect_timeout:
    case attempt_event::reset:
    case attempt_event::timeout: return endpoint_signal::failure;
    // Our own queue, a keep-alive connection that aged out, a stream the
    // backend shed before processing it, an answer we could not use: none
    // says the endpoint is sick.
    case attempt_event::queue_timeout:
    case attempt_event::stale_connection:
    case attempt_event::refused:
    case attempt_event::unusable: return endpoint_signal::neutral;
    }
    return endpoint_signal::neutral;
}

// Written by any worker; every field stands alone (no invariant spans two
// of them but the ejection, which the CAS on ejected_until owns).
struct endpoint_health::endpoint_state {
    std::atomic<std::uint32_t> failures{0};       // passive failures in a row
    std::atomic<std::int64_t> ejected_until{0};   // clock ticks; 0: not ejected
    std::atomic<std::uint32_t> times_ejected{0};  // grows the next ejection; forgotten after max_ejection in rotation
    std::atomic<std::int64_t> returned_at{0};     // ticks of the last return; 0: never ejected
    // Active checks, written by the one checker only.
    std::atomic<bool> healthy{true};
    std::atomic<std::int32_t> streak{0};  // > 0: passes in a row; < 0: failures in a row
};

endpoint_health::endpoint_health(std::size_t endpoints, backend_metrics* metrics)
    : count_(endpoints), endpoints_(std::make_unique<endpoint_state[]>(endpoints)), metrics_(metrics) {}

// The gauges speak for the endpoints out now: a reload that drops this
// object (its backend's endpoints changed) takes its share back out.
endpoint_health::~endpoint_health() {
    if (!metrics_) return;
    std::int64_t unhealthy = 0;
    for (std::size_t i = 0; i < count_; ++i)
        if (!endpoints_[i].healthy.load(relaxed)) ++unhealthy;
    metrics_->ejected_endpoints.fetch_sub(static_cast<std::int64_t>(ejected_.load(relaxed)), relaxed);
    metrics_->unhealthy_endpoints.fetch_sub(unhealthy, relaxed);
}

std::size_t endpoint_health::max_ejected(std::size_t count, unsigned percent) {
    return std::max<std::size_t>(1, count * percent / 100);
}

endpoint_health::clock::duration endpoint_health::ejection_time(unsigned times, const outlier_config& outlier) {
    const auto base = std::chrono::duration_cast<clock::duration>(outlier.base_ejection);
    const auto most = std::chrono::duration_cast<clock::duration>(outlier.max_ejection);
    if (times == 0) return base;
    // base × times without overflow: past max / base the cap is reached anyway.
    if (base.count() > 0 && times > most / base) return most;
    return std::min(base * times, most);
}

bool endpoint_health::end_ejection(endpoint_state& ep, std::int64_t until, clock::time_point now) {
    // One caller wins the CAS, so the return is counted once.
    if (!ep.ejected_until.compare_exchange_strong(until, 0, relaxed)) return false;
    ep.failures.store(0, relaxed);
    ep.returned_at.store(ticks(now), relaxed);
    ejected_.fetch_sub(1, relaxed);
    if (metrics_) {
        metrics_->ejection_returns.fetch_add(1, relaxed);
        metrics_->ejected_endpoints.fetch_sub(1, relaxed);
    }
    return true;
}

bool endpoint_health::available(std::size_t endpoint, clock::time_point now) {
    auto& ep = endpoints_[endpoint];
    const std::int64_t until = ep.ejected_until.load(relaxed);
    if (until != 0) {
        if (ticks(now) < until) return false;
        end_ejection(ep, until, now);
    }
    return ep.healthy.load(relaxed);
}

bool endpoint_health::any_available(clock::time_point now) {
    for (std::size_t i = 0; i < count_; ++i)
        if (available(i, now)) return true;
    return false;
}

void endpoint_health::observe(std::size_t endpoint, endpoint_signal signal, const outlier_config& outlier,
                              clock::time_point now) {
    if (endpoint >= count_ || signal == endpoint_signal::neutral) return;
    auto& ep = endpoints_[endpoint];
    if (signal == endpoint_signal::success) {
        // A load first: the common answered case writes nothing shared.
        if (ep.failures.load(relaxed) != 0) ep.failures.store(0, relaxed);
        return;
    }
    const unsigned failures = ep.failures.fetch_add(1, relaxed) + 1;
    if (outlier.consecutive_failures == 0 || failures < outlier.consecutive_failures) return;
    if (ep.ejected_until.load(relaxed) != 0) return;  // out already: failures of requests sent before
    eject(ep, outlier, now);
}

void endpoint_health::eject(endpoint_state& ep, const outlier_config& outlier, clock::time_point now) {
    // A place among the max_ejected first; when there is none the endpoint
    // stays in (its streak stays, so its next failure tries again).
    const std::size_t allowed = max_ejected(count_, outlier.max_ejected_percent);
    std::size_t out = ejected_.load(relaxed);
    do {
        if (out >= allowed) return;
    } while (!ejected_.compare_exchange_weak(out, out + 1, relaxed));

    // An endpoint that stayed in rotation for max_ejection since its last
    // return starts over at base_ejection (Envoy lowers the multiplier while
    // a host is healthy; this is the same without a timer).
    const std::int64_t returned = ep.returned_at.load(relaxed);
    const auto forget_after = std::chrono::duration_cast<clock::duration>(outlier.max_ejection);
    if (returned != 0 && now - at(returned) >= forget_after) ep.times_ejected.store(0, relaxed);
    const unsigned times = ep.times_ejected.load(relaxed) + 1;

    std::int64_t expected = 0;
    const std::int64_t until = ticks(now + ejection_time(times, outlier));
    if (!ep.ejected_until.compare_exchange_strong(expected, until, relaxed)) {
        ejected_.fetch_sub(1, relaxed);  // another worker ejected it first
        return;
    }
    ep.times_ejected.store(times, relaxed);
    ep.failures.store(0, relaxed);
    if (metrics_) {
        metrics_->ejections.fetch_add(1, relaxed);
        metrics_->ejected_endpoints.fetch_add(1, relaxed);
    }
}

void endpoint_health::check_result(std::size_t endpoint, bool passed, const health_check_config& check,
                                   clock::time_point now) {
    if (endpoint >= count_) return;
    auto& ep = endpoints_[endpoint];
    if (metrics_) (passed ? metrics_->health_checks_passed : metrics_->health_checks_failed).fetch_add(1, relaxed);
    const std::int32_t before = ep.streak.load(relaxed);
    const std::int32_t streak = passed ? std::max(before, 0) + 1 : std::min(before, 0) - 1;
    ep.streak.store(streak, relaxed);
    const bool healthy = ep.healthy.load(relaxed);
    if (passed) {
        // The endpoint answers its checks: an ejection ends now (Envoy's
        // successful_active_health_check_uneject_host).
        if (const std::int64_t until = ep.ejected_until.load(relaxed); until != 0) end_ejection(ep, until, now);
        if (!healthy && streak >= static_cast<std::int32_t>(check.healthy)) {
            ep.healthy.store(true, relaxed);
            if (metrics_) metrics_->unhealthy_endpoints.fetch_sub(1, relaxed);
        }
    } else if (healthy && -streak >= static_cast<std::int32_t>(check.unhealthy)) {
        ep.healthy.store(false, relaxed);
        if (metrics_) metrics_->unhealthy_endpoints.fetch_add(1, relaxed);
    }
}

std::chrono::seconds no_endpoint_retry_after(const endpoint_health& health, const backend_config& backend,
                                             endpoint_health::clock::time_point now) {
    std::optional<endpoint_health::clock::duration> soonest;
    for (std::size_t i = 0; i < health.size(); ++i) {
        const auto v = health.view(i);
        std::optional<endpoint_health::clock::duration> back;
        if (v.ejected) back = v.ejected_until - now;
        if (!v.healthy && backend.health_check) {
            const auto checks = std::chrono::duration_cast<endpoint_health::clock::duration>(
                backend.health_check->interval * backend.health_check->healthy);
            back = std::max(back.value_or(checks), checks);
        }
        if (back && (!soonest || *back < *soonest)) soonest = back;
    }
    const auto seconds = std::chrono::ceil<std::chrono::seconds>(soonest.value_or(std::chrono::seconds(1)));
    return std::max(seconds, std::chrono::seconds(1));
}

endpoint_choice::endpoint_choice(endpoint_health& health, std::size_t avoid, endpoint_health::clock::time_point now)
    : health_(health), now_(now), any_in_(health.any_available(now)), avoid_(no_endpoint) {
    if (avoid >= health.size() || !(any_in_ ? health.available(avoid, now) : true)) {
        // Nothing to avoid, or the avoided one is out of rotation anyway
        // (then preferred() skips it).
        avoid_ = no_endpoint;
        return;
    }
    for (std::size_t i = 0; i < health.size(); ++i)
        if (i != avoid && (!any_in_ || health.available(i, now))) {
            avoid_ = avoid;  // another endpoint can take the retry
            return;
        }
}

bool endpoint_choice::preferred(std::size_t endpoint) const {
    if (endpoint == avoid_) return false;
    return !any_in_ || health_.available(endpoint, now_);
}

endpoint_health::endpoint_view endpoint_health::view(std::size_t endpoint) const {
    const auto& ep = endpoints_[endpoint];
    endpoint_view v;
    const std::int64_t until = ep.ejected_until.load(relaxed);
    v.ejected = until != 0;
    if (v.ejected) v.ejected_until = at(until);
    v.healthy = ep.healthy.load(relaxed);
    v.times_ejected = ep.times_ejected.load(relaxed);
    v.consecutive_failures = ep.failures.load(relaxed);
    return v;
}

}  // namespace batchgate
