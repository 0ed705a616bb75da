// max_in_flight for one backend across every batch on every worker: a
// counting semaphore whose waiters may live on different threads. At most
// `max_queue` wait (more: refused at once); a waiter gives up after its
// timeout (queue_timeout → 503 B:overloaded) or as soon as its batch is
// cancelled (client gone, deadline). Released slots go to the longest waiter
// first, so a big batch cannot starve others that queued before it.
//
// A free slot is taken with one compare-and-swap; the mutex is taken only
// by a caller that has to wait, and by release() and set_limits() while
// someone waits, so items that find room never touch a lock shared by the
// workers.
#pragma once

#include "proxy/config/config.hpp"
#include "proxy/core/cancel_scope.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace batchgate {

enum class limiter_wait {
    granted,     // a slot is the caller's: give it back with release()
    timed_out,   // `timeout` passed first
    queue_full,  // max_queue callers were waiting already
    cancelled,   // the caller's cancel_scope was cancelled while it waited
};

class in_flight_limiter {
public:
    explicit in_flight_limiter(std::size_t limit, std::size_t max_queue = SIZE_MAX)
        : free_(static_cast<std::int64_t>(limit)), limit_(limit), max_queue_(max_queue) {}

    // `cancel`, when given, belongs to the caller's thread: its cancellation
    // ends the wait at once.
    boost::asio::awaitable<limiter_wait> acquire(std::chrono::steady_clock::duration timeout,
                                                 cancel_scope* cancel = nullptr);
    // acquire() without the wait, for callers that need no coroutine frame
    // when a slot is free: granted (nobody queues and a slot was free) or
    // cancelled; nullopt means call acquire().
    std::optional<limiter_wait> try_acquire(cancel_scope* cancel = nullptr);
    void release();
    // A reload's new max_in_flight / max_queue. Slots already taken stay
    // taken: after a lower limit, new callers wait until enough are back.
    void set_limits(std::size_t limit, std::size_t max_queue);

    std::size_t in_flight() const;
    std::size_t waiting() const { return queued_.load(); }
    std::size_t limit() const { return limit_.load(std::memory_order_relaxed); }

private:
    struct waiter {
        explicit waiter(const boost::asio::any_io_executor& ex) : timer(ex) {}
        boost::asio::steady_timer timer;  // only touched on its own executor
        bool granted = false;             // guarded by mutex_
    };

    bool try_take();
    // Under mutex_: free slots to the longest waiters; returns those to wake.
    std::vector<std::shared_ptr<waiter>> hand_over();
    static void wake(std::vector<std::shared_ptr<waiter>>& granted);

    // limit − slots taken; below 0 after set_limits lowered the limit.
    // Sequentially consistent with queued_: a release that misses a new
    // waiter's count is seen by that waiter's own try_take.
    std::atomic<std::int64_t> free_;
    std::atomic<std::size_t> limit_;
    std::atomic<std::size_t> queued_{0};  // waiters_.size(), readable without the lock
    std::mutex mutex_;                    // guards waiters_, max_queue_ and set_limits
    std::size_t max_queue_;
    std::list<std::shared_ptr<waiter>> waiters_;
};

// Gives a taken slot back when it goes out of scope.
class limiter_slot {
public:
    explicit limiter_slot(in_flight_limiter& l) : l_(l) {}
    ~limiter_slot() { l_.release(); }
    limiter_slot(const limiter_slot&) = delete;
    limiter_slot& operator=(const limiter_slot&) = delete;

private:
    in_flight_limiter& l_;
};

}  // namespace batchgate
