#include "proxy/backend/h2_client.hpp"

#include "proxy/backend/backend_connect.hpp"
#include "proxy/backend/response_head.hpp"
#include "proxy/core/http_semantics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <cctype>

namespace batchgate {

namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// A backend announcing "unlimited" streams still gets a bounded number from
// us per session; more go to another session.
constexpr std::uint32_t max_streams_per_session = 1000;

std::uint32_t stream_capacity(const h2_connection& c) {
    return std::min(c.peer_max_concurrent_streams(), max_streams_per_session);
}

bool has_room(const h2_connection& c) {
    return c.ready() && c.accepts_new_streams() && c.open_streams() < stream_capacity(c);
}

// Methods whose requests carry a body by definition get content-length: 0
// when the item has none, as on the HTTP/1.1 path.
bool expects_body(std::string_view method) { return method == "POST" || method == "PUT" || method == "PATCH"; }

// RFC 9113 §8.2.2: connection-specific fields are malformed in HTTP/2; `te`
// may only say "trailers". build_forwarded_request_headers already drops
// hop-by-hop headers; this is the last line before the wire.
bool is_connection_specific(std::string_view name, std::string_view value) {
    using boost::beast::iequals;
    if (iequals(name, "te")) return !iequals(value, "trailers");
    return iequals(name, "connection") || iequals(name, "keep-alive") || iequals(name, "proxy-connection") ||
           iequals(name, "transfer-encoding") || iequals(name, "upgrade") || iequals(name, "host");
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::vector<h2_header> request_headers(const item_request& request, const client_info& client,
                                       const h2_pool::slot& slot, bool send_body) {
    http::fields fields;
    build_forwarded_request_headers(request.headers, fields, client, slot.authority);
    auto out = to_h2_request_headers(request.method, slot.scheme, slot.authority, request.target, fields);
    if (send_body) out.push_back({"content-length", std::to_string(request.body.size())});
    return out;
}

// Collects one response stream. Events arrive from nghttp2 callbacks: they
// only record and cancel the timer the exchange sleeps on.
class response_collector final : public h2_stream_observer {
public:
    response_collector(asio::any_io_executor ex, std::uint64_t max_body) : timer(std::move(ex)), max_body_(max_body) {}

    asio::steady_timer timer;
    http::response<http::string_body> response;
    h2_stream_close close_info;
    bool complete = false;  // final headers and END_STREAM seen
    bool closed = false;
    bool too_large = false;
    bool malformed = false;
    bool only_interim = false;
    bool cancel_requested = false;

    bool finished() const { return complete || closed || too_large || malformed || only_interim || cancel_requested; }
    void signal() { timer.cancel(); }

    void on_header_block_begin() override { heads_.on_block_begin(); }

    void on_header(std::string_view name, std::string_view value) override {
        if (name == ":status") {
            // 101 and bad codes: nghttp2 rejects most of these too; be explicit
            if (ends_exchange(heads_.on_status_text(value))) fail(heads_.current());
            return;
        }
        if (!name.empty() && name.front() == ':') return;
        if (heads_.current() == head_kind::final) response.insert(name, value);
        // interim fields (103 Link, ...) and trailers are not passed on, as on the HTTP/1.1 path
    }

    void on_header_block_end(bool end_stream) override {
        if (finished()) return;
        if (heads_.current() == head_kind::malformed) {  // a head without :status
            fail(head_kind::malformed);
            return;
        }
        if (heads_.current() == head_kind::final) {
            response.result(heads_.final_status());
            // The fan-out reads this like an HTTP/1.1 answer; the version only
            // matters to code that writes a status line.
            response.version(11);
        }
        if (end_stream) stream_ended();
    }

    std::size_t on_data(std::string_view chunk) override {
        if (too_large || !heads_.have_final()) return chunk.size();  // discarded: consumed all the same
        if (response.body().size() + chunk.size() > max_body_) {
            too_large = true;
            signal();
            return chunk.size();
        }
        response.body().append(chunk);
        return chunk.size();
    }

    void on_end_stream() override { stream_ended(); }
    void on_stream_error() override { fail(head_kind::malformed); }

    void on_closed(const h2_stream_close& how) override {
        closed = true;
        close_info = how;
        signal();
    }

private:
    void stream_ended() {
        if (heads_.have_final()) complete = true;
        signal();
    }
    void fail(head_kind why) {
        if (why == head_kind::too_many_interim) only_interim = true;
        else malformed = true;  // 101 too: a status HTTP/2 does not allow
        signal();
    }

    std::uint64_t max_body_;
    response_heads heads_;
};

// Frees the stream however the exchange ends: an unfinished stream is reset
// with CANCEL, so a timed-out or cancelled item never holds a slot.
struct stream_guard {
    std::shared_ptr<h2_connection> session;
    std::int32_t id;
    ~stream_guard() { session->detach(id, h2_error_code::cancel); }
};

exchange_outcome classify(response_collector& rc, bool timed_out) {
    exchange_outcome out;
    if (rc.complete) {
        out.response = std::move(rc.response);
        return out;
    }
    if (rc.cancel_requested) {
        out.error = exchange_error::cancelled;
    } else if (timed_out) {
        out.error = exchange_error::timeout;
        out.cause = boost::beast::error::timeout;
    } else if (rc.too_large) {
        out.error = exchange_error::too_large;
    } else if (rc.malformed) {
        out.error = exchange_error::malformed;
    } else if (rc.only_interim) {
        out.error = exchange_error::only_interim;
    } else {
        out.error = exchange_error::reset;
        out.cause = asio::error::connection_reset;
        // Never processed by the backend: the caller may retry even a POST.
        out.nothing_received = rc.close_info.refused;
    }
    return out;
}

}  // namespace

std::vector<h2_header> to_h2_request_headers(std::string_view method, std::string_view scheme,
                                             std::string_view authority, std::string_view path,
                                             const http::fields& fields) {
    std::vector<h2_header> out;
    out.reserve(8 + std::distance(fields.begin(), fields.end()));
    out.push_back({":method", std::string(method)});
    out.push_back({":scheme", std::string(scheme)});
    out.push_back({":authority", std::string(authority)});
    out.push_back({":path", std::string(path)});
    for (const auto& f : fields) {
        if (is_connection_specific(f.name_string(), f.value())) continue;
        out.push_back({lower(f.name_string()), std::string(f.value())});
    }
    return out;
}

h2_pool::h2_pool(asio::any_io_executor executor, backend_config cfg, std::shared_ptr<backend_shared> shared)
    : executor_(std::move(executor)),
      cfg_(std::move(cfg)),
      shared_(shared ? std::move(shared) : make_backend_shared(cfg_)),
      tls_(shared_->tls.get()),
      metrics_(shared_->metrics) {
    for (const auto& address : cfg_.endpoints) {
        endpoint_state ep;
        ep.address = address;
        ep.authority = cfg_.host.value_or(address.text());
        endpoints_.push_back(std::move(ep));
    }
}

h2_pool::~h2_pool() {
    // Sessions outlive us while their streams finish, but can no longer
    // report back (their on_change holds a dead weak_ptr): settle the gauges
    // and the slots now.
    for (std::size_t i = 0; i < endpoints_.size(); ++i) {
        for (auto& s : endpoints_[i].sessions) {
            s.connection->shutdown_gracefully();
            metrics_.open_connections.fetch_sub(1, std::memory_order_relaxed);
            if (s.counted_idle) metrics_.idle_connections.fetch_sub(1, std::memory_order_relaxed);
            shared_->slots->give(i);
        }
    }
}

h2_connection_options h2_pool::session_options() const {
    h2_connection_options o;
    o.role = h2_role::client;
    o.max_concurrent_streams = 100;  // we accept no pushed streams, but the setting must be sane
    o.initial_window_size = cfg_.h2_stream_window;
    o.max_header_list_size = static_cast<std::uint32_t>(std::min<std::size_t>(cfg_.max_header_bytes, UINT32_MAX));
    o.idle_timeout = cfg_.idle_timeout;
    return o;
}

bool h2_pool::take_slot(std::size_t endpoint) {
    if (!shared_->slots->try_take(endpoint)) return false;
    if (!joined_slots_) {
        shared_->slots->join(weak_from_this(), executor_);
        joined_slots_ = true;
    }
    return true;
}

void h2_pool::shed_idle() {
    if (!waiters_.empty()) return;  // ours are needed here
    const auto& slots = *shared_->slots;
    for (std::size_t i = 0; i < endpoints_.size(); ++i) {
        if (slots.open(i) < slots.limit()) continue;
        for (auto& s : endpoints_[i].sessions)
            if (s.connection->ready() && !s.connection->closed() && s.connection->open_streams() == 0)
                s.connection->shutdown_gracefully();  // closes now: no streams to finish
    }
}

std::shared_ptr<h2_connection> h2_pool::pick_session(std::size_t& endpoint, const endpoint_choice& choice) {
    const std::size_t n = endpoints_.size();
    // The avoided endpoint's sessions only on the second pass, as a last resort.
    for (const bool last_resort : {false, true}) {
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t idx = (next_endpoint_ + i) % n;
            if (!(last_resort ? choice.last_resort(idx) : choice.preferred(idx))) continue;
            for (auto& s : endpoints_[idx].sessions) {
                if (has_room(*s.connection)) {
                    next_endpoint_ = idx + 1;
                    endpoint = idx;
                    return s.connection;
                }
            }
        }
    }
    return nullptr;
}

std::optional<std::size_t> h2_pool::endpoint_for_new_session(const endpoint_choice& choice, bool& full) {
    const std::size_t n = endpoints_.size();
    full = false;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t idx = (next_endpoint_ + i) % n;
        if (!choice.preferred(idx) || endpoints_[idx].connecting) continue;
        if (take_slot(idx)) {
            next_endpoint_ = idx + 1;
            return idx;
        }
        full = true;
    }
    return std::nullopt;
}

asio::awaitable<h2_pool::slot> h2_pool::acquire(std::size_t avoid, cancel_scope* cancel) {
    auto self = shared_from_this();  // the pool outlives a reload while we wait
    const auto queue_deadline = clock_type::now() + cfg_.queue_timeout;
    for (;;) {
        if (closed_) co_return slot{nullptr, {}, {}, exchange_error::connect_failed, asio::error::operation_aborted};
        std::size_t endpoint = 0;
        const endpoint_choice choice(*shared_->health, avoid, clock_type::now());
        if (auto session = pick_session(endpoint, choice))
            co_return slot{session, endpoints_[endpoint].authority, scheme(), {}, {}, endpoint};
        bool full = false;
        auto idx = endpoint_for_new_session(choice, full);
        if (!idx && full) {
            // Every slot is taken, maybe by other workers: be told when one
            // is given back, and look once more (one given back just now).
            shared_->slots->wait(weak_from_this(), executor_);
            idx = endpoint_for_new_session(choice, full);
        }
        if (idx) {
            slot got = co_await connect(*idx);
            got.endpoint = *idx;
            if (got.error != exchange_error::none || has_room(*got.session)) co_return got;
            continue;  // others filled it while we were resumed: look again
        }
        const bool woken = co_await wait_for_change(queue_deadline, cancel);
        if (cancel && cancel->cancelled()) co_return slot{nullptr, {}, {}, exchange_error::cancelled, {}};
        if (!woken) co_return slot{nullptr, {}, {}, exchange_error::queue_timeout, {}};
    }
}

// Connects, starts a session and waits for the backend's SETTINGS (all
// within connect_timeout), so the first streams already respect its
// SETTINGS_MAX_CONCURRENT_STREAMS instead of being refused.
asio::awaitable<h2_pool::slot> h2_pool::connect(std::size_t idx) {
    auto self = shared_from_this();
    auto& ep = endpoints_[idx];
    ep.connecting = true;
    const auto deadline = clock_type::now() + cfg_.connect_timeout;
    auto connected = co_await connect_to_backend(executor_, cfg_, tls_, ep.address);
    if (connected.ec) {
        ep.connecting = false;
        shared_->slots->give(idx);
        metrics_.connect_failures.fetch_add(1, std::memory_order_relaxed);
        wake_waiters();  // someone else may try (or time out)
        const auto kind = connected.timed_out() ? exchange_error::connect_timeout : exchange_error::connect_failed;
        co_return slot{nullptr, {}, {}, kind, connected.ec};
    }

    auto session = std::make_shared<h2_connection>(std::move(*connected.stream), session_options());
    std::weak_ptr<h2_pool> weak = self;
    h2_connection* raw = session.get();
    session->on_change([weak, idx, raw] {
        if (auto pool = weak.lock()) pool->session_changed(idx, raw);
    });
    ep.sessions.push_back({session, false});
    ++connects_;
    metrics_.open_connections.fetch_add(1, std::memory_order_relaxed);
    if (session->start()) {
        // Never ran: take it out here (no on_change will tell us).
        endpoints_[idx].connecting = false;
        endpoints_[idx].sessions.pop_back();
        metrics_.open_connections.fetch_sub(1, std::memory_order_relaxed);
        shared_->slots->give(idx);
        wake_waiters();
        co_return slot{nullptr, {}, {}, exchange_error::connect_failed, make_error_code(boost::system::errc::not_enough_memory)};
    }

    while (!session->ready() && !session->closed()) {
        const bool woken = co_await wait_for_change(deadline);
        if (!woken) break;
    }
    endpoints_[idx].connecting = false;
    wake_waiters();
    if (session->ready() && !session->closed()) co_return slot{session, endpoints_[idx].authority, scheme(), {}, {}};
    const bool timed_out = !session->closed();
    session->close();  // removed from the list by session_changed once it is down
    metrics_.connect_failures.fetch_add(1, std::memory_order_relaxed);
    if (timed_out) co_return slot{nullptr, {}, {}, exchange_error::connect_timeout, beast::error::timeout};
    co_return slot{nullptr, {}, {}, exchange_error::connect_failed, asio::error::connection_reset};
}

asio::awaitable<bool> h2_pool::wait_for_change(clock_type::time_point deadline, cancel_scope* cancel) {
    if (clock_type::now() >= deadline || (cancel && cancel->cancelled())) co_return false;
    asio::steady_timer timer(executor_, deadline);
    waiter w{&timer, false};
    auto position = waiters_.insert(waiters_.end(), &w);
    {
        std::optional<cancel_scope::registration> watching;
        if (cancel) watching.emplace(*cancel, [&timer] { timer.cancel(); });
        co_await timer.async_wait(use_tuple);
    }
    if (!w.woken) waiters_.erase(position);  // wake_waiters() already removed the woken ones
    co_return w.woken;
}

void h2_pool::wake_waiters() {
    // Everyone looks again: rooms, new sessions and closures are rare events
    // next to streams, and a waiter that finds nothing simply waits again.
    auto waiting = std::move(waiters_);
    waiters_.clear();
    for (waiter* w : waiting) {
        w->woken = true;
        w->timer->cancel();  // resumes through the executor, never inline
    }
}

void h2_pool::session_changed(std::size_t idx, h2_connection* which) {
    auto& sessions = endpoints_[idx].sessions;
    auto it = std::find_if(sessions.begin(), sessions.end(),
                           [which](const session_entry& s) { return s.connection.get() == which; });
    if (it == sessions.end()) return;
    const bool idle = which->ready() && !which->closed() && which->open_streams() == 0;
    if (idle != it->counted_idle) {
        metrics_.idle_connections.fetch_add(idle ? 1 : -1, std::memory_order_relaxed);
        it->counted_idle = idle;
    }
    if (which->closed()) {
        metrics_.open_connections.fetch_sub(1, std::memory_order_relaxed);
        sessions.erase(it);  // the session's own coroutines keep it alive until they end
        shared_->slots->give(idx);
    } else if (idle && waiters_.empty() && shared_->slots->someone_waits()) {
        which->shutdown_gracefully();  // another worker waits for this slot
    }
    wake_waiters();
}

void h2_pool::close() {
    closed_ = true;
    for (auto& ep : endpoints_)
        for (auto& s : ep.sessions) s.connection->shutdown_gracefully();
    wake_waiters();
}

h2_pool_stats h2_pool::stats() const {
    h2_pool_stats s;
    for (const auto& ep : endpoints_) {
        s.sessions += ep.sessions.size();
        for (const auto& e : ep.sessions) s.streams += e.connection->open_streams();
    }
    s.waiting = waiters_.size();
    s.connects = connects_;
    return s;
}

asio::awaitable<exchange_outcome> h2_exchange_once(h2_pool& pool, const item_request& request,
                                                   const client_info& client, std::uint64_t max_response_bytes,
                                                   duration timeout, cancel_scope& scope,
                                                   std::size_t avoid) {
    exchange_outcome out;
    if (scope.cancelled()) {
        out.error = exchange_error::cancelled;
        co_return out;
    }
    auto got = co_await pool.acquire(avoid, &scope);
    out.endpoint = got.endpoint;
    if (got.error != exchange_error::none) {
        out.error = got.error;
        out.cause = got.cause;
        co_return out;
    }
    if (scope.cancelled()) {
        out.error = exchange_error::cancelled;
        co_return out;
    }
    // Nothing suspends from here to submit_request: the room acquire() found is still there.
    const bool reused = got.session->streams_started() > 0;
    const bool send_body = request.has_body || expects_body(request.method);
    const auto headers = request_headers(request, client, got, send_body);
    const bool body_frames = send_body && !request.body.empty();  // an empty body is END_STREAM on HEADERS

    auto executor = co_await asio::this_coro::executor;
    response_collector rc(executor, max_response_bytes);
    const auto deadline = clock_type::now() + timeout;
    rc.timer.expires_at(deadline);
    const std::int32_t id = got.session->submit_request(headers, request.body, body_frames, &rc);
    if (id < 0) {
        out.error = exchange_error::reset;  // the session stopped taking streams: nothing was sent
        out.nothing_received = true;
        co_return out;
    }
    stream_guard guard{got.session, id};
    scoped_gauge open_stream(pool.metrics().h2_streams);
    cancel_scope::registration registered(scope, [&rc] {
        rc.cancel_requested = true;
        rc.signal();
    });

    bool timed_out = false;
    while (!rc.finished()) {
        auto [ec] = co_await rc.timer.async_wait(use_tuple);
        if (!ec && clock_type::now() >= deadline) {
            timed_out = !rc.finished();
            break;
        }
    }
    out = classify(rc, timed_out);
    out.reused = reused;
    co_return out;
}

asio::awaitable<exchange_outcome> h2_pool::exchange_once(const item_request& request, const client_info& client,
                                                    std::uint64_t max_response_bytes, duration timeout,
                                                    cancel_scope& scope, std::size_t avoid) {
    return h2_exchange_once(*this, request, client, max_response_bytes, timeout, scope, avoid);
}

}  // namespace batchgate
