// max_in_flight for one backend across every batch on every worker: a
// counting semaphore whose waiters may live on different threads. A waiter
// gives up after its timeout (queue_timeout → 503 B:overloaded). Released
// slots go to the longest waiter first, so a big batch cannot starve others
// that queued before it.
#pragma once

#include "proxy/config/config.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>

namespace batchgate {

class in_flight_limiter {
public:
    explicit in_flight_limiter(std::size_t limit) : limit_(limit) {}

    // True when a slot was taken (give it back with release()); false when
    // `timeout` passed first or the wait was cancelled.
    boost::asio::awaitable<bool> acquire(std::chrono::steady_clock::duration timeout);
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
