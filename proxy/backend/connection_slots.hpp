// `max_connections` per endpoint as a cap for the whole process (PRODUCT.md
// §4.1), not per worker: every worker's pool of one backend takes a slot
// before it opens a connection to an endpoint and gives it back when that
// connection is closed. Taking and giving are one atomic each; the mutex is
// touched only when a pool has callers waiting with every slot taken.
//
// A connection belongs to the worker that opened it (its socket runs on that
// worker's io_context), so a worker that needs one while another holds idle
// ones cannot borrow them: it asks the other pools to shed (close idle
// connections, and close rather than keep one that comes back idle while
// someone waits), and is told when a slot is given back. With
// `max_connections` below the number of workers the workers take turns on
// the connections: correct, at the price of reconnects.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace batchgate {

// What connection_slots asks of a pool. Both run on the pool's own executor.
class slot_holder {
public:
    virtual ~slot_holder() = default;
    // A slot was given back somewhere: callers waiting for one look again.
    virtual void slot_freed() = 0;
    // Another pool waits for a slot: close the idle connections this pool
    // holds to full endpoints.
    virtual void shed_idle() = 0;
};

class connection_slots {
public:
    connection_slots(std::size_t endpoints, std::size_t per_endpoint);
    connection_slots(const connection_slots&) = delete;
    connection_slots& operator=(const connection_slots&) = delete;

    // A reload with new max_connections: connections over a lower cap stay
    // until they close; no new one opens until the count is below it.
    void set_limit(std::size_t per_endpoint);
    std::size_t limit() const { return limit_.load(std::memory_order_relaxed); }

    // One more connection to `endpoint`, if the cap allows.
    bool try_take(std::size_t endpoint);
    // A connection to `endpoint` closed (or its connect failed).
    void give(std::size_t endpoint);
    std::size_t open(std::size_t endpoint) const { return open_[endpoint].load(std::memory_order_relaxed); }

    // A pool that may hold connections: asked to shed when another waits.
    // Called once per pool, from its own thread.
    void join(std::weak_ptr<slot_holder> pool, boost::asio::any_io_executor executor);
    // `pool` has callers waiting and found every slot it may use taken: it is
    // told (slot_freed, once) when one is next given back, and the other
    // pools are asked to shed. The caller tries try_take once more after
    // this: a slot given back just before the call is seen by one of the two.
    void wait(const std::weak_ptr<slot_holder>& pool, boost::asio::any_io_executor executor);
    // Does any pool wait for a slot? (A pool then closes a connection that
    // comes back unneeded instead of keeping it idle.)
    bool someone_waits() const { return waiting_count_.load(std::memory_order_relaxed) != 0; }

private:
    struct registered {
        std::weak_ptr<slot_holder> pool;
        boost::asio::any_io_executor executor;
    };
    static void post_freed(const registered& r);

    std::atomic<std::size_t> limit_;
    std::unique_ptr<std::atomic<std::size_t>[]> open_;
    std::size_t count_;
    std::atomic<std::size_t> waiting_count_{0};
    std::mutex mutex_;  // guards members_ and waiting_
    std::vector<registered> members_;
    std::vector<registered> waiting_;
};

}  // namespace batchgate
