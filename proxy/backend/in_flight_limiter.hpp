// max_in_flight for one backend across every batch on every worker: a
// counting semaphore whose waiters may live on different threads. At most
// `max_queue` wait (more: refused at once); a waiter gives up after its
// timeout (queue_timeout → 503 B:overloaded) or as soon as its batch is
// cancelled (client gone, deadline). Released slots go to the longest waiter
// first, so a big batch cannot starve others that queued before it.
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
        : limit_(limit), max_queue_(max_queue) {}

    // `cancel`, when given, belongs to the caller's thread: its cancellation
    // ends the wait at once.
    boost::asio::awaitable<limiter_wait> acquire(std::chrono::steady_clock::duration timeout,
                                                 cancel_scope* cancel = nullptr);
    void release();

    std::size_t in_flight() const;
    std::size_t waiting() const;
    std::size_t limit() const { return limit_; }

private:
    struct waiter {
        explicit waiter(const boost::asio::any_io_executor& ex) : timer(ex) {}
        boost::asio::steady_timer timer;  // only touched on its own executor
        bool granted = false;             // guarded by mutex_
    };

    const std::size_t limit_;
    const std::size_t max_queue_;
    mutable std::mutex mutex_;
    std::size_t in_flight_ = 0;
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
