#include "proxy/backend/http1_pool.hpp"

#include "proxy/backend/backend_connect.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

#include <algorithm>
#include <cerrno>
#include <sys/socket.h>

namespace batchgate {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

void close_stream(byte_stream& stream) { stream.close(); }

// Has the backend closed the connection (or sent bytes nobody asked for)?
// Over TLS the bytes peeked are records: a close_notify or unasked data
// alike mean "do not reuse" (TLS 1.3 session tickets came before the first
// answer and were read with it).
bool still_open(byte_stream& stream) {
    char byte;
    auto n = ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

pooled_connection::pooled_connection(pooled_connection&& other) noexcept
    : pool_(std::move(other.pool_)),
      endpoint_(other.endpoint_),
      connection_(std::move(other.connection_)),
      reused_(other.reused_) {}

pooled_connection& pooled_connection::operator=(pooled_connection&& other) noexcept {
    if (this != &other) {
        release(false);
        pool_ = std::move(other.pool_);
        endpoint_ = other.endpoint_;
        connection_ = std::move(other.connection_);
        reused_ = other.reused_;
    }
    return *this;
}

pooled_connection::~pooled_connection() { release(false); }

const std::string& pooled_connection::host_header() const { return pool_->endpoints_[endpoint_].host_header; }

void pooled_connection::release(bool reusable) {
    if (!pool_) return;
    auto pool = std::move(pool_);
    pool->give_back(endpoint_, connection_, reusable);
    connection_.reset();
}

http1_pool::http1_pool(asio::any_io_executor executor, backend_config cfg, std::shared_ptr<backend_shared> shared)
    : executor_(std::move(executor)),
      cfg_(std::move(cfg)),
      shared_(shared ? std::move(shared) : make_backend_shared(cfg_)),
      tls_(shared_->tls.get()),
      metrics_(shared_->metrics) {
    for (const auto& address : cfg_.endpoints) {
        endpoint_state ep;
        ep.address = address;
        ep.host_header = cfg_.host.value_or(address.text());
        endpoints_.push_back(std::move(ep));
    }
}

http1_pool::~http1_pool() { close_idle(); }

std::unique_ptr<backend_connection> http1_pool::take_idle(endpoint_state& ep) {
    const auto now = std::chrono::steady_clock::now();
    while (!ep.idle.empty()) {
        idle_connection candidate = std::move(ep.idle.back());
        ep.idle.pop_back();
        metrics_.idle_connections.fetch_sub(1, std::memory_order_relaxed);
        auto& connection = *candidate.connection;
        connection.mark->idle = false;
        bool usable = now - candidate.since < cfg_.idle_timeout;
        if (connection.watched) {
            error_code ignored;
            connection.stream.socket().cancel(ignored);  // the watch ends; no syscall
            connection.watched = false;
        } else {
            usable = usable && still_open(connection.stream);  // a retired pool's: never watched
        }
        if (usable) return std::move(candidate.connection);
        close_stream(candidate.connection->stream);
        metrics_.open_connections.fetch_sub(1, std::memory_order_relaxed);
        release_slot(static_cast<std::size_t>(&ep - endpoints_.data()));
    }
    return nullptr;
}

// The event loop watches an idle connection: a backend's close, a reset or
// bytes nobody asked for, and it goes. The watch is a one-byte peek that Asio
// tries at once only when the socket has signalled readiness since the last
// read that emptied it (as nginx's `ready` flag): so a FIN that arrived right
// after the answer is seen now, and otherwise no syscall is made.
void http1_pool::keep_idle(std::size_t endpoint, std::unique_ptr<backend_connection> connection) {
    auto& mark = *connection->mark;
    mark.idle = true;
    const auto period = mark.period = ++idle_waits_;
    // A retired pool (drain, reload) still lends connections to the exchanges
    // of its generation, but a pending watch would keep the worker's loop
    // alive after the last of them: its connections are checked when taken.
    if (!retired_) {
        connection->watched = true;
        connection->stream.socket().async_receive(
            asio::buffer(connection->peeked, 1), asio::socket_base::message_peek,
            [pool = weak_from_this(), endpoint, mark = connection->mark, period](const error_code& ec, std::size_t) {
                if (ec == asio::error::operation_aborted || !mark->idle || mark->period != period) return;  // taken
                if (auto alive = pool.lock()) alive->idle_connection_readable(endpoint, mark.get());
            });
    }
    endpoints_[endpoint].idle.push_back({std::move(connection), std::chrono::steady_clock::now()});
    metrics_.idle_connections.fetch_add(1, std::memory_order_relaxed);
}

void http1_pool::idle_connection_readable(std::size_t endpoint, const backend_connection::idle_mark* mark) {
    auto& idle = endpoints_[endpoint].idle;
    auto it = std::find_if(idle.begin(), idle.end(),
                           [mark](const idle_connection& c) { return c.connection->mark.get() == mark; });
    if (it == idle.end()) return;
    close_stream(it->connection->stream);
    idle.erase(it);
    metrics_.idle_connections.fetch_sub(1, std::memory_order_relaxed);
    metrics_.open_connections.fetch_sub(1, std::memory_order_relaxed);
    release_slot(endpoint);
}

bool http1_pool::take_slot(std::size_t endpoint) {
    if (!shared_->slots->try_take(endpoint)) return false;
    ++endpoints_[endpoint].open;
    if (!joined_slots_) {
        shared_->slots->join(weak_from_this(), executor_);
        joined_slots_ = true;
    }
    return true;
}

void http1_pool::release_slot(std::size_t endpoint) {
    --endpoints_[endpoint].open;
    shared_->slots->give(endpoint);
}

// Callers wait and every slot this pool could use is taken (here or in
// another worker): be told when one is given back, and look once more now
// (a slot given back just before is seen by this look or by give()).
void http1_pool::wait_for_slot() {
    shared_->slots->wait(weak_from_this(), executor_);
    grant_free_slots();
}

// Free slots go to waiters in order, each to connect on its own.
void http1_pool::grant_free_slots() {
    const std::size_t n = endpoints_.size();
    while (!waiters_.empty()) {
        const endpoint_choice choice(*shared_->health, no_endpoint, std::chrono::steady_clock::now());
        std::size_t granted = no_endpoint;
        for (std::size_t i = 0; i < n && granted == no_endpoint; ++i) {
            const std::size_t idx = (next_endpoint_ + i) % n;
            if (choice.preferred(idx) && take_slot(idx)) granted = idx;
        }
        if (granted == no_endpoint) return;
        next_endpoint_ = granted + 1;
        waiter* w = waiters_.front();
        waiters_.pop_front();
        w->granted = true;
        w->endpoint = granted;
        w->timer->cancel();
    }
}

void http1_pool::slot_freed() {
    if (waiters_.empty()) return;
    grant_free_slots();
    if (!waiters_.empty()) wait_for_slot();
}

void http1_pool::shed_idle() {
    if (!waiters_.empty()) return;  // ours are needed here
    const auto& slots = *shared_->slots;
    for (std::size_t i = 0; i < endpoints_.size(); ++i)
        if (slots.open(i) >= slots.limit()) close_idle_of(endpoints_[i]);
}

acquire_result http1_pool::lend(std::size_t endpoint, std::unique_ptr<backend_connection> connection, bool reused) {
    acquire_result r;
    connection->stream.expires_never();
    r.connection.pool_ = shared_from_this();
    r.connection.endpoint_ = endpoint;
    r.connection.connection_ = std::move(connection);
    r.connection.reused_ = reused;
    r.endpoint = endpoint;
    if (reused) ++reuses_;
    return r;
}

std::optional<acquire_result> http1_pool::try_acquire_idle(std::size_t avoid) {
    if (!waiters_.empty()) return std::nullopt;
    const std::size_t n = endpoints_.size();
    const endpoint_choice choice(*shared_->health, avoid, std::chrono::steady_clock::now());
    // The first endpoint acquire() would pick: lend its idle connection, or
    // leave the rest (a connect, a later endpoint) to acquire().
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t idx = (next_endpoint_ + i) % n;
        if (!choice.preferred(idx)) continue;
        auto connection = take_idle(endpoints_[idx]);
        if (!connection) return std::nullopt;
        next_endpoint_ = idx + 1;
        return lend(idx, std::move(connection), true);
    }
    return std::nullopt;
}

asio::awaitable<acquire_result> http1_pool::acquire(std::size_t avoid, cancel_scope* cancel) {
    auto self = shared_from_this();  // the pool outlives a reload while we wait
    const std::size_t n = endpoints_.size();
    if (waiters_.empty()) {
        const endpoint_choice choice(*shared_->health, avoid, std::chrono::steady_clock::now());
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t idx = (next_endpoint_ + i) % n;
            auto& ep = endpoints_[idx];
            if (!choice.preferred(idx)) continue;
            if (auto connection = take_idle(ep)) {
                next_endpoint_ = idx + 1;
                co_return lend(idx, std::move(connection), true);
            }
            if (take_slot(idx)) {
                next_endpoint_ = idx + 1;
                co_return co_await connect(idx);
            }
        }
        // An idle connection to the avoided endpoint still answered lately.
        if (avoid < n && choice.last_resort(avoid))
            if (auto connection = take_idle(endpoints_[avoid])) co_return lend(avoid, std::move(connection), true);
    }

    if (cancel && cancel->cancelled()) co_return acquire_result{{}, acquire_error::cancelled, {}};
    asio::steady_timer timer(executor_, cfg_.queue_timeout);
    waiter w{&timer, false, 0, nullptr};
    auto position = waiters_.insert(waiters_.end(), &w);
    wait_for_slot();
    if (!w.granted) {
        std::optional<cancel_scope::registration> watching;
        if (cancel) watching.emplace(*cancel, [&timer] { timer.cancel(); });
        co_await timer.async_wait(use_tuple);
    }
    if (!w.granted) {
        waiters_.erase(position);
        const bool cancelled = cancel && cancel->cancelled();
        co_return acquire_result{{}, cancelled ? acquire_error::cancelled : acquire_error::queue_timeout, {}};
    }
    if (w.connection) co_return lend(w.endpoint, std::move(w.connection), true);
    co_return co_await connect(w.endpoint);  // the slot was handed over already counted
}

asio::awaitable<acquire_result> http1_pool::connect(std::size_t idx) {
    auto self = shared_from_this();
    auto connected = co_await connect_to_backend(executor_, cfg_, tls_, endpoints_[idx].address);
    if (connected.ec) {
        metrics_.connect_failures.fetch_add(1, std::memory_order_relaxed);
        std::unique_ptr<backend_connection> none;
        give_back(idx, none, false);
        const auto kind = connected.timed_out() ? acquire_error::connect_timeout : acquire_error::connect_failed;
        co_return acquire_result{{}, kind, connected.ec, idx};
    }
    ++connects_;
    metrics_.open_connections.fetch_add(1, std::memory_order_relaxed);
    co_return lend(idx, std::make_unique<backend_connection>(std::move(*connected.stream)), false);
}

void http1_pool::give_back(std::size_t endpoint, std::unique_ptr<backend_connection>& connection, bool reusable) {
    // Kept idle only while no other worker waits for this slot.
    const bool keep = reusable && connection && (!waiters_.empty() || !shared_->slots->someone_waits());
    if (!keep && connection) {
        close_stream(connection->stream);
        metrics_.open_connections.fetch_sub(1, std::memory_order_relaxed);
    }
    if (!waiters_.empty()) {
        waiter* w = waiters_.front();
        waiters_.pop_front();
        w->granted = true;
        w->endpoint = endpoint;
        if (keep) w->connection = std::move(connection);
        w->timer->cancel();
        return;  // the slot moves to the waiter, so `open` stays as it is
    }
    if (keep)
        keep_idle(endpoint, std::move(connection));
    else
        release_slot(endpoint);
}

void http1_pool::close_idle_of(endpoint_state& ep) {
    const auto idx = static_cast<std::size_t>(&ep - endpoints_.data());
    auto idle = std::move(ep.idle);
    ep.idle.clear();
    const auto n = static_cast<std::int64_t>(idle.size());
    metrics_.idle_connections.fetch_sub(n, std::memory_order_relaxed);
    metrics_.open_connections.fetch_sub(n, std::memory_order_relaxed);
    for (auto& c : idle) {
        close_stream(c.connection->stream);
        release_slot(idx);
    }
}

void http1_pool::close_idle() {
    retired_ = true;
    for (auto& ep : endpoints_) close_idle_of(ep);
}

pool_stats http1_pool::stats() const {
    pool_stats s;
    for (const auto& ep : endpoints_) {
        s.open += ep.open;
        s.idle += ep.idle.size();
    }
    s.waiting = waiters_.size();
    s.connects = connects_;
    s.reuses = reuses_;
    return s;
}

}  // namespace batchgate
