// retries.budget: the retries in flight to one backend, over every worker,
// stay within a share of its requests in flight (at least three), so that
// retrying can never multiply the load of a backend that is already sick
// (Envoy's retry budget; Finagle's RetryBudget).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>

namespace batchgate {

class retry_budget {
public:
    static constexpr std::size_t min_retries = 3;

    explicit retry_budget(unsigned percent) : percent_(percent) {}

    // The retries allowed in flight now.
    std::size_t limit() const {
        return std::max(min_retries, requests_.load(std::memory_order_relaxed) * percent_ / 100);
    }

    // One request (batch item or pass-through) to the backend, for as long as it lives.
    class request {
    public:
        explicit request(retry_budget& b) : b_(b) { b_.requests_.fetch_add(1, std::memory_order_relaxed); }
        ~request() { b_.requests_.fetch_sub(1, std::memory_order_relaxed); }
        request(const request&) = delete;
        request& operator=(const request&) = delete;

    private:
        retry_budget& b_;
    };

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

    std::size_t requests() const { return requests_.load(std::memory_order_relaxed); }
    std::size_t retries() const { return retries_.load(std::memory_order_relaxed); }
    unsigned percent() const { return percent_; }

private:
    const unsigned percent_;
    std::atomic<std::size_t> requests_{0};
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
