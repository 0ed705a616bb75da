#include "proxy/backend/in_flight_limiter.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>

namespace batchgate {

namespace asio = boost::asio;

asio::awaitable<limiter_wait> in_flight_limiter::acquire(std::chrono::steady_clock::duration timeout,
                                                         cancel_scope* cancel) {
    if (cancel && cancel->cancelled()) co_return limiter_wait::cancelled;
    const auto executor = co_await asio::this_coro::executor;  // before the lock: never held across a co_await
    std::shared_ptr<waiter> me;
    {
        std::lock_guard lock(mutex_);
        if (in_flight_ < limit_ && waiters_.empty()) {
            ++in_flight_;
            co_return limiter_wait::granted;  // the common case: no allocation
        }
        if (waiters_.size() >= max_queue_) co_return limiter_wait::queue_full;
        me = std::make_shared<waiter>(executor);
        waiters_.push_back(me);
    }
    me->timer.expires_after(timeout);
    {
        std::optional<cancel_scope::registration> watching;
        if (cancel) watching.emplace(*cancel, [&me] { me->timer.cancel(); });
        co_await me->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    std::lock_guard lock(mutex_);
    if (me->granted) co_return limiter_wait::granted;  // even if the timer fired too: the slot is ours
    waiters_.remove(me);
    co_return cancel && cancel->cancelled() ? limiter_wait::cancelled : limiter_wait::timed_out;
}

void in_flight_limiter::release() {
    std::shared_ptr<waiter> next;
    {
        std::lock_guard lock(mutex_);
        if (waiters_.empty()) {
            --in_flight_;
            return;
        }
        next = std::move(waiters_.front());
        waiters_.pop_front();
        next->granted = true;  // the slot passes over; in_flight_ stays
    }
    // The waiter's timer belongs to its own thread: wake it there.
    auto executor = next->timer.get_executor();
    asio::post(executor, [next] { next->timer.cancel(); });
}

std::size_t in_flight_limiter::in_flight() const {
    std::lock_guard lock(mutex_);
    return in_flight_;
}

std::size_t in_flight_limiter::waiting() const {
    std::lock_guard lock(mutex_);
    return waiters_.size();
}

}  // namespace batchgate
