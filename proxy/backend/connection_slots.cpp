#include "proxy/backend/connection_slots.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace batchgate {

connection_slots::connection_slots(std::size_t endpoints, std::size_t per_endpoint)
    : limit_(std::max<std::size_t>(1, per_endpoint)),
      open_(std::make_unique<std::atomic<std::size_t>[]>(endpoints)),
      count_(endpoints) {}

void connection_slots::set_limit(std::size_t per_endpoint) {
    limit_.store(std::max<std::size_t>(1, per_endpoint), std::memory_order_relaxed);
}

bool connection_slots::try_take(std::size_t endpoint) {
    auto& open = open_[endpoint];
    const std::size_t limit = limit_.load(std::memory_order_relaxed);
    std::size_t now = open.load(std::memory_order_relaxed);
    while (now < limit)
        if (open.compare_exchange_weak(now, now + 1, std::memory_order_seq_cst)) return true;
    return false;
}

void connection_slots::give(std::size_t endpoint) {
    open_[endpoint].fetch_sub(1, std::memory_order_seq_cst);
    // Pairs with wait(): either this load sees the waiter, or the waiter's
    // try_take after registering sees the slot.
    if (waiting_count_.load(std::memory_order_seq_cst) == 0) return;
    std::vector<registered> woken;
    {
        std::lock_guard lock(mutex_);
        woken.swap(waiting_);
        waiting_count_.store(0, std::memory_order_seq_cst);
    }
    // Everyone waiting looks again; those who find nothing wait again.
    for (const auto& r : woken) post_freed(r);
}

void connection_slots::post_freed(const registered& r) {
    boost::asio::post(r.executor, [pool = r.pool] {
        if (auto p = pool.lock()) p->slot_freed();
    });
}

void connection_slots::join(std::weak_ptr<slot_holder> pool, boost::asio::any_io_executor executor) {
    std::lock_guard lock(mutex_);
    std::erase_if(members_, [](const registered& r) { return r.pool.expired(); });
    members_.push_back({std::move(pool), std::move(executor)});
}

void connection_slots::wait(const std::weak_ptr<slot_holder>& pool, boost::asio::any_io_executor executor) {
    std::vector<registered> shedders;
    {
        std::lock_guard lock(mutex_);
        const auto same = [&](const registered& r) { return !r.pool.owner_before(pool) && !pool.owner_before(r.pool); };
        if (std::any_of(waiting_.begin(), waiting_.end(), same)) return;  // asked already
        waiting_.push_back({pool, std::move(executor)});
        waiting_count_.store(waiting_.size(), std::memory_order_seq_cst);
        for (const auto& m : members_)
            if (!same(m) && !m.pool.expired()) shedders.push_back(m);
    }
    for (const auto& m : shedders)
        boost::asio::post(m.executor, [p = m.pool] {
            if (auto holder = p.lock()) holder->shed_idle();
        });
}

}  // namespace batchgate
