#include "proxy/backend/retry_policy.hpp"

#include <algorithm>
#include <charconv>
#include <random>

namespace batchgate {

namespace {

using steady = std::chrono::steady_clock;

retry_decision free_replay(retry_progress& progress) {
    progress.free_replay_used = true;
    return {retry_verdict::retry, {}, false};
}

constexpr retry_decision give_up{retry_verdict::give_up, {}, false};

// Full jitter over an exponential ceiling: retry n (1 = the first) may wait
// up to base × 2^(n−1), capped at max.
steady::duration backoff(const retry_config& retries, unsigned retry, double (*jitter)()) {
    auto ceiling = std::chrono::duration_cast<steady::duration>(retries.backoff_base);
    const auto cap = std::chrono::duration_cast<steady::duration>(retries.backoff_max);
    for (unsigned i = 1; i < retry && ceiling < cap; ++i) ceiling *= 2;
    ceiling = std::min(ceiling, cap);
    return std::chrono::duration_cast<steady::duration>(ceiling * std::clamp(jitter(), 0.0, 1.0));
}

// A counted retry after `pause`, if it fits before the deadline.
retry_decision counted_retry(const retry_request& request, retry_progress& progress, steady::duration pause,
                             retry_verdict otherwise) {
    if (pause >= request.time_left) return {otherwise, {}, false};
    ++progress.attempt;
    return {retry_verdict::retry, pause, true};
}

retry_decision counted_retry(const retry_request& request, retry_progress& progress) {
    return counted_retry(request, progress, backoff(request.retries, progress.attempt, request.jitter),
                         retry_verdict::give_up);
}

}  // namespace

retry_decision decide_retry(const attempt_report& report, const retry_request& request, retry_progress& progress) {
    const retry_config& retries = request.retries;
    const bool attempts_left = progress.attempt < retries.attempts;
    const bool may_retry = request.replayable && attempts_left;
    switch (report.event) {
    case attempt_event::answered: {
        const bool wanted = std::find(retries.on_status.begin(), retries.on_status.end(), report.status) !=
                            retries.on_status.end();
        if (!may_retry || !wanted) return {retry_verdict::deliver, {}, false};
        auto pause = backoff(retries, progress.attempt, request.jitter);
        if (report.retry_after) pause = std::max<steady::duration>(pause, *report.retry_after);
        return counted_retry(request, progress, pause, retry_verdict::deliver);
    }
    case attempt_event::queue_timeout: return give_up;
    case attempt_event::connect_failed:
    case attempt_event::connect_timeout:
        return may_retry && retries.on_connect_failure ? counted_retry(request, progress) : give_up;
    case attempt_event::refused:
        // Never processed: safe whatever the method (PRODUCT.md §3), as long
        // as the whole body can go again. The first replay is free; later
        // ones count against `attempts` and need no `reset` in `on`.
        if (!request.body_held) return give_up;
        if (!progress.free_replay_used) return free_replay(progress);
        return attempts_left ? counted_retry(request, progress) : give_up;
    case attempt_event::stale_connection:
        // A pooled connection the backend had closed: one free replay, for
        // requests that may go again at all; after that it is a reset.
        if (request.replayable && !progress.free_replay_used) return free_replay(progress);
        return may_retry && retries.on_reset ? counted_retry(request, progress) : give_up;
    case attempt_event::reset: return may_retry && retries.on_reset ? counted_retry(request, progress) : give_up;
    case attempt_event::timeout: return may_retry && retries.on_timeout ? counted_retry(request, progress) : give_up;
    case attempt_event::unusable: return give_up;
    }
    return give_up;
}

retry_decision retry_pass_through(attempt_event event, const retry_config& retries, bool replayable, bool body_held,
                                  retry_progress& progress) {
    const retry_request asked{retries, replayable, body_held, steady::duration::max()};
    return decide_retry(attempt_report{event, 0, std::nullopt}, asked, progress);
}

double retry_jitter() {
    thread_local std::minstd_rand generator{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

std::optional<std::chrono::seconds> retry_after_seconds(std::string_view value) {
    unsigned seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (value.empty() || ec != std::errc{} || end != value.data() + value.size()) return std::nullopt;
    return std::chrono::seconds(seconds);
}

}  // namespace batchgate
