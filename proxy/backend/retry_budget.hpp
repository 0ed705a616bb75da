// retries.budget: the retries in flight to one backend, over every worker,
// stay within a share of its requests in flight (at least three), so that
// retrying can never multiply the load of a backend that is already sick
// (Envoy's retry budget; Finagle's RetryBudget).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace batchgate {

class retry_budget {
public:
    static constexpr std::size_t min_retries = 3;

    // `requests_in_flight`: the backend's requests under way, over all
    // workers (backend_metrics::in_flight, which batch items and
    // pass-through requests keep), so no second count is kept per request.
    retry_budget(unsigned percent, const std::atomic<std::int64_t>& requests_in_flight)
        : percent_(percent), requests_(requests_in_flight) {}

    // The retries allowed in flight now.
    std::size_t limit() const {
        const auto requests = static_cast<std::size_t>(std::max<std::int64_t>(0, requests_.load(std::memory_order_relaxed)));
        return std::max(min_retries, requests * percent_ / 100);
    }

    // True when a retry may start now (give it back with retry_ended()
    // once the retried attempt is over); false: the budget is spent.
    bool try_start_retry() {
        std::size_t now = retries_.load(std::memory_order_relaxed);
        do {
            if (now >= limit()) return false;
        } while (!retries_.compare_exchange_weak(now, now + 1, std::memory_order_relaxed));
        return true;
    }
    void retry_ended() { retries_.fetch_sub(1, std::memory_order_relaxed); }

    std::size_t retries() const { return retries_.load(std::memory_order_relaxed); }
    unsigned percent() const { return percent_; }

private:
    const unsigned percent_;
    const std::atomic<std::int64_t>& requests_;
    std::atomic<std::size_t> retries_{0};
};

// A retry counted against the budget from the decision to the end of the
// attempt it makes (reset() ends it early).
class budgeted_retry {
public:
    budgeted_retry() = default;
    ~budgeted_retry() { reset(); }
    budgeted_retry(const budgeted_retry&) = delete;
    budgeted_retry& operator=(const budgeted_retry&) = delete;
    void hold(retry_budget& b) {
        reset();
        b_ = &b;
    }
    void reset() {
        if (b_) b_->retry_ended();
        b_ = nullptr;
    }

private:
    retry_budget* b_ = nullptr;
};

}  // namespace batchgate
