#include "proxy/backend/in_flight_limiter.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>

namespace batchgate {

namespace asio = boost::asio;

bool in_flight_limiter::try_take() {
    std::int64_t free = free_.load();
    do {
        if (free <= 0) return false;
    } while (!free_.compare_exchange_weak(free, free - 1));
    return true;
}

std::vector<std::shared_ptr<in_flight_limiter::waiter>> in_flight_limiter::hand_over() {
    std::vector<std::shared_ptr<waiter>> granted;
    while (!waiters_.empty() && try_take()) {
        auto w = std::move(waiters_.front());
        waiters_.pop_front();
        queued_.fetch_sub(1);
        w->granted = true;  // the slot is the waiter's now
        granted.push_back(std::move(w));
    }
    return granted;
}

// A waiter's timer belongs to its own thread: wake it there. Its coroutine
// is suspended on the timer by then, or will be before the post runs (it
// does not suspend between leaving the lock and waiting).
void in_flight_limiter::wake(std::vector<std::shared_ptr<waiter>>& granted) {
    for (auto& w : granted) {
        auto executor = w->timer.get_executor();
        asio::post(executor, [w] { w->timer.cancel(); });
    }
}

std::optional<limiter_wait> in_flight_limiter::try_acquire(cancel_scope* cancel) {
    if (cancel && cancel->cancelled()) return limiter_wait::cancelled;
    if (queued_.load() == 0 && try_take()) return limiter_wait::granted;
    return std::nullopt;
}

asio::awaitable<limiter_wait> in_flight_limiter::acquire(std::chrono::steady_clock::duration timeout,
                                                         cancel_scope* cancel) {
    if (cancel && cancel->cancelled()) co_return limiter_wait::cancelled;
    // The common case: nobody waits and a slot is free. No lock, no allocation.
    if (queued_.load() == 0 && try_take()) co_return limiter_wait::granted;

    const auto executor = co_await asio::this_coro::executor;  // before the lock: never held across a co_await
    std::shared_ptr<waiter> me;
    {
        std::vector<std::shared_ptr<waiter>> others;
        {
            std::lock_guard lock(mutex_);
            if (waiters_.size() >= max_queue_) co_return limiter_wait::queue_full;
            me = std::make_shared<waiter>(executor);
            waiters_.push_back(me);
            queued_.fetch_add(1);
            // A slot freed since the fast path failed goes to the longest
            // waiter, which may be this one.
            others = hand_over();
        }
        std::erase(others, me);
        wake(others);
        if (me->granted) co_return limiter_wait::granted;
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
    queued_.fetch_sub(1);
    co_return cancel && cancel->cancelled() ? limiter_wait::cancelled : limiter_wait::timed_out;
}

void in_flight_limiter::release() {
    free_.fetch_add(1);
    if (queued_.load() == 0) return;
    std::vector<std::shared_ptr<waiter>> granted;
    {
        std::lock_guard lock(mutex_);
        granted = hand_over();
    }
    wake(granted);
}

void in_flight_limiter::set_limits(std::size_t limit, std::size_t max_queue) {
    std::vector<std::shared_ptr<waiter>> granted;
    {
        std::lock_guard lock(mutex_);
        const auto before = limit_.exchange(limit);
        free_.fetch_add(static_cast<std::int64_t>(limit) - static_cast<std::int64_t>(before));
        max_queue_ = max_queue;
        granted = hand_over();
    }
    wake(granted);
}

std::size_t in_flight_limiter::in_flight() const {
    const auto taken = static_cast<std::int64_t>(limit_.load()) - free_.load();
    return taken > 0 ? static_cast<std::size_t>(taken) : 0;
}

}  // namespace batchgate
