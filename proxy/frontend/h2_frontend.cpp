#include "proxy/frontend/h2_frontend.hpp"

#include "proxy/backend/in_flight_limiter.hpp"
#include "proxy/core/metrics.hpp"
#include "proxy/frontend/request_dispatcher.hpp"
#include "proxy/http2/h2_connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <cstring>
#include <map>

namespace batchgate {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using clock = std::chrono::steady_clock;

// A stream's body buffer: what one read from the client or the backend
// carries. Smaller than HTTP/1.1's: up to max_concurrent_streams of them live
// on one connection.
constexpr std::size_t stream_buffer_bytes = 16 * 1024;
// Response bytes queued on a stream before its producer waits for the
// client to take them (HTTP/2 flow control decides when they go).
constexpr std::size_t send_high_water = 64 * 1024;

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// RFC 9113 §8.2.2: these never appear in HTTP/2.
bool is_connection_specific(std::string_view lower_name) {
    return lower_name == "connection" || lower_name == "keep-alive" || lower_name == "proxy-connection" ||
           lower_name == "transfer-encoding" || lower_name == "upgrade" || lower_name == "te";
}

class h2_session;

// One request stream: what nghttp2 reports about it (recorded, never acted
// on inside the callback) and the waits of the coroutine that serves it.
class server_stream : public h2_stream_observer {
public:
    server_stream(std::int32_t id, asio::steady_timer& session_wake, std::uint64_t max_body_bytes)
        : id_(id), timer_(session_wake.get_executor()), session_wake_(session_wake), max_body_bytes_(max_body_bytes) {}

    // --- h2_stream_observer (inside nghttp2 callbacks: record and wake only)
    void on_header_block_begin() override {}
    void on_header(std::string_view name, std::string_view value) override {
        if (headers_done_) return;  // trailers: nothing of ours needs them
        if (!name.empty() && name.front() == ':') {
            if (name == ":method")
                method_.assign(value);
            else if (name == ":path")
                path_.assign(value);
            else if (name == ":authority")
                authority_.assign(value);
            else if (name == ":scheme")
                scheme_.assign(value);
            return;  // nghttp2 refuses unknown and misplaced pseudo-headers itself
        }
        if (name == "cookie") {  // RFC 9113 §8.2.3: split crumbs are joined for HTTP/1.1
            if (!cookie_.empty()) cookie_ += "; ";
            cookie_.append(value);
            return;
        }
        fields_.insert(name, value);
    }
    void on_header_block_end(bool end_stream) override {
        if (end_stream) end_ = true;
        if (!headers_done_) {
            headers_done_ = true;
            head_ready_ = true;
            session_wake_.cancel();  // the session hands the stream to a coroutine
        }
        wake();
    }
    std::size_t on_data(std::string_view chunk) override {
        received_ += chunk.size();
        if (discard_ || too_large_) return chunk.size();  // nobody reads it: reopen the window at once
        if (received_ > max_body_bytes_) {
            too_large_ = true;
            wake();
            return chunk.size();
        }
        queue_.append(chunk);
        wake();
        return 0;  // consumed when the reader takes it: that is the flow control
    }
    void on_end_stream() override {
        end_ = true;
        wake();
    }
    void on_stream_error() override {
        error_ = true;
        wake();
    }
    void on_closed(const h2_stream_close& how) override {
        closed_ = true;
        if (how.error_code != 0 || how.connection_lost || !end_) {
            gone_ = true;  // reset by the client, or the connection died
            if (cancel_) cancel_->cancel(cancel_reason::client_gone);
        }
        session_wake_.cancel();  // the session forgets the stream
        wake();
    }
    void on_send_progress() override { wake(); }

    // --- for the serving coroutine
    void wake() { timer_.cancel(); }
    // False when `deadline` passed first.
    asio::awaitable<bool> wait_until(clock::time_point deadline) {
        timer_.expires_at(deadline);
        auto [ec] = co_await timer_.async_wait(use_tuple);
        co_return ec == asio::error::operation_aborted || clock::now() < deadline;
    }

    std::size_t take(std::span<char> into) {
        const std::size_t n = std::min(into.size(), queue_.size() - queue_offset_);
        std::memcpy(into.data(), queue_.data() + queue_offset_, n);
        queue_offset_ += n;
        if (queue_offset_ == queue_.size()) {
            queue_.clear();
            queue_offset_ = 0;
        }
        return n;
    }
    bool queued() const { return queue_.size() > queue_offset_; }
    bool body_done() const { return end_ && !queued(); }

    std::int32_t id_;
    asio::steady_timer timer_;
    asio::steady_timer& session_wake_;
    std::uint64_t max_body_bytes_;
    std::string method_, path_, authority_, scheme_, cookie_;
    http::fields fields_;
    std::string queue_;  // request body received and not yet read (bounded by the stream window)
    std::size_t queue_offset_ = 0;
    std::uint64_t received_ = 0;
    cancel_scope* cancel_ = nullptr;  // a running batch to stop if the stream is reset
    bool headers_done_ = false;
    bool head_ready_ = false;  // headers complete, not yet handed to a coroutine
    bool end_ = false;         // END_STREAM received
    bool error_ = false;       // nghttp2 reset the stream as malformed
    bool too_large_ = false;
    bool discard_ = false;     // the answer is complete: the rest of the body is dropped
    bool closed_ = false;
    bool gone_ = false;
    bool serving_ = false;     // a coroutine holds it
};

class h2_body_source : public request_body_source {
public:
    h2_body_source(server_stream& st, h2_connection& conn, duration read_timeout)
        : st_(st), conn_(conn), read_timeout_(read_timeout) {}

    asio::awaitable<body_read> read(std::span<char> into) override {
        body_read r;
        const auto deadline = clock::now() + read_timeout_;
        for (;;) {
            if (st_.too_large_) {
                r.error = body_error::too_large;
                co_return r;
            }
            if (st_.queued()) {
                r.bytes = st_.take(into);
                conn_.consume(st_.id_, r.bytes);  // the client may send that much more
                r.done = st_.body_done();
                co_return r;
            }
            if (st_.end_) {
                r.done = true;
                co_return r;
            }
            if (st_.closed_ || st_.error_) {
                r.error = body_error::client_gone;
                co_return r;
            }
            const bool woken = co_await st_.wait_until(deadline);
            if (!woken) {
                r.error = body_error::timeout;
                co_return r;
            }
        }
    }
    bool done() const override { return st_.body_done(); }

private:
    server_stream& st_;
    h2_connection& conn_;
    duration read_timeout_;
};

class h2_response_sink : public response_sink {
public:
    h2_response_sink(server_stream& st, h2_connection& conn, duration send_timeout)
        : st_(st), conn_(conn), send_timeout_(send_timeout) {}

    asio::awaitable<bool> send_continue() override { co_return !st_.closed_; }

    asio::awaitable<bool> send_head(response_head head) override {
        status_ = head.status;
        auto headers = to_h2(head);
        if (head.no_body) {
            complete_ = conn_.submit_response(st_.id_, headers, {}, false) == 0;
            co_return complete_;
        }
        const bool ok = conn_.submit_response_streaming(st_.id_, headers) == 0;
        co_return ok;
    }

    asio::awaitable<bool> send_data(std::span<const char> bytes, bool last) override {
        if (!conn_.send_data(st_.id_, std::string_view(bytes.data(), bytes.size()), last)) co_return false;
        bytes_ += bytes.size();
        if (last) complete_ = true;
        const auto deadline = clock::now() + send_timeout_;
        while (conn_.outgoing_buffered(st_.id_) > send_high_water) {
            if (st_.closed_) co_return false;
            const bool woken = co_await st_.wait_until(deadline);
            if (!woken) {
                metrics_registry::global().limit_breached(limit_kind::send_timeout);
                complete_ = false;
                co_return false;
            }
        }
        co_return !st_.gone_;
    }

    asio::awaitable<bool> send_answer(response_head head, std::string body) override {
        status_ = head.status;
        head.content_length = body.size();
        bytes_ += body.size();
        complete_ = conn_.submit_response(st_.id_, to_h2(head), body, !body.empty()) == 0;
        co_return complete_;
    }

    void abort() override { complete_ = false; }

    std::shared_ptr<void> watch_client(cancel_scope& scope) override {
        if (st_.gone_) scope.cancel(cancel_reason::client_gone);
        st_.cancel_ = &scope;
        return std::shared_ptr<void>(nullptr, [st = &st_](void*) { st->cancel_ = nullptr; });
    }

    bool complete() const { return complete_; }
    unsigned status() const { return status_; }
    std::uint64_t bytes_sent() const { return bytes_; }

private:
    static std::vector<h2_header> to_h2(const response_head& head) {
        std::vector<h2_header> out;
        out.push_back({":status", std::to_string(head.status)});
        for (const auto& f : head.headers) {
            auto name = lower(f.name_string());
            if (is_connection_specific(name) || name == "content-length") continue;
            out.push_back({std::move(name), std::string(f.value())});
        }
        if (head.content_length) out.push_back({"content-length", std::to_string(*head.content_length)});
        return out;
    }

    server_stream& st_;
    h2_connection& conn_;
    duration send_timeout_;
    bool complete_ = false;
    unsigned status_ = 0;
    std::uint64_t bytes_ = 0;
};

class h2_session : public std::enable_shared_from_this<h2_session> {
public:
    h2_session(worker& w, client_info client)
        : w_(w),
          client_(client),
          cfg_(w.routing->cfg),
          items_(cfg_->http2.max_batch_items_in_flight),
          wake_(w.context.get_executor()) {}

    ~h2_session() {
        if (conn_) {
            conn_->on_change(nullptr);
            conn_->on_new_stream(nullptr);
        }
    }

    asio::awaitable<void> run(byte_stream stream, std::string received) {
        auto self = shared_from_this();
        conn_ = std::make_shared<h2_connection>(std::move(stream), options());
        conn_->on_new_stream([this](std::int32_t id) -> h2_stream_observer* {
            if (w_.draining) return nullptr;  // refused: the client retries elsewhere
            auto st = std::make_shared<server_stream>(id, wake_, cfg_->limits.max_body_bytes);
            streams_[id] = st;
            return st.get();
        });
        conn_->on_change([this] { wake_.cancel(); });
        session_handle handle{&conn_->stream().tcp(), false, [this] { conn_->shutdown_gracefully(); }};
        worker::registration registered(w_, &handle);
        if (w_.draining) conn_->shutdown_gracefully();
        if (conn_->start(std::move(received))) co_return;
        while (!conn_->closed()) {
            dispatch_ready_streams();
            wake_.expires_at(clock::time_point::max());
            co_await wake_.async_wait(use_tuple);
        }
        if (conn_->terminated_by_error()) metrics_registry::global().limit_breached(limit_kind::http2_goaway);
    }

private:
    h2_connection_options options() const {
        const auto& h2 = cfg_->http2;
        h2_connection_options o;
        o.role = h2_role::server;
        o.max_concurrent_streams = h2.max_concurrent_streams;
        o.initial_window_size = h2.initial_window_size;
        o.connection_window_size = h2.connection_window_size;
        o.max_header_list_size = static_cast<std::uint32_t>(h2.max_header_list_size);
        o.idle_timeout = cfg_->limits.idle_timeout;
        o.settings_timeout = h2.settings_timeout;
        o.write_timeout = cfg_->limits.send_timeout;
        o.reset_burst = h2.reset_burst;
        o.reset_rate = h2.reset_rate;
        return o;
    }

    // Streams whose request head is complete get their coroutine; streams
    // nghttp2 closed are forgotten (their observers are no longer called).
    void dispatch_ready_streams() {
        for (auto it = streams_.begin(); it != streams_.end();) {
            auto& st = it->second;
            if (st->head_ready_) {
                st->head_ready_ = false;
                if (st->error_) {
                    metrics_registry::global().limit_breached(limit_kind::http2_stream_reset);
                } else if (!st->closed_) {  // reset before it was served (rapid reset): no work for it
                    asio::co_spawn(w_.context, serve(shared_from_this(), st), asio::detached);
                    ++serving_;
                }
            }
            if (st->closed_ && !st->serving_) {
                if (st->error_ && !st->headers_done_)
                    metrics_registry::global().limit_breached(limit_kind::http2_stream_reset);
                it = streams_.erase(it);
            } else {
                ++it;
            }
        }
    }

    static asio::awaitable<void> serve(std::shared_ptr<h2_session> self, std::shared_ptr<server_stream> st) {
        st->serving_ = true;
        co_await self->serve_stream(*st);
        st->serving_ = false;
        --self->serving_;
        self->wake_.cancel();
    }

    asio::awaitable<void> serve_stream(server_stream& st) {
        auto routing = w_.routing;  // this request keeps its configuration generation
        const auto& cfg = *routing->cfg;
        const auto started = clock::now();
        auto buffer = std::make_unique<char[]>(stream_buffer_bytes);

        if (!st.cookie_.empty()) st.fields_.set(http::field::cookie, st.cookie_);
        if (!st.authority_.empty()) st.fields_.set(http::field::host, st.authority_);
        auto scope = open_request_scope(routing, client_, &w_.draining, st.fields_["x-request-id"],
                                        std::span<char>(buffer.get(), stream_buffer_bytes), &items_);

        forward_request request;
        request.method = http::string_to_verb(st.method_);
        request.method_text = st.method_;
        request.target = st.path_;
        request.headers = &st.fields_;
        request.has_body = !st.end_;
        if (auto length = st.fields_[http::field::content_length]; !length.empty()) {
            std::uint64_t n = 0;
            if (std::from_chars(length.data(), length.data() + length.size(), n).ec == std::errc{})
                request.content_length = n;
        }
        if (!request.has_body) request.content_length = 0;

        h2_body_source body(st, *conn_, cfg.limits.read_timeout);
        h2_response_sink sink(st, *conn_, cfg.limits.send_timeout);
        std::optional<request_refusal> refusal;
        for (const auto& f : st.fields_)
            if (!is_safe_header_value(f.value()))
                refusal = request_refusal{"a control character in a header value", limit_kind::bad_request};
        auto done = co_await dispatch_request(request, body, sink, scope, refusal);
        auto& summary = done.summary;
        if (summary.status == 0 && sink.complete()) summary.status = sink.status();
        summary.response_bytes = std::max(summary.response_bytes, sink.bytes_sent());
        if (!sink.complete()) {
            summary.status = 0;
            conn_->detach(st.id_, h2_error_code::cancel);  // the client must not take a cut answer for whole
        } else if (!st.end_) {
            // Answered before the body ended (413, 408, an early backend
            // answer): what still arrives is dropped with its window reopened,
            // and the client is told to stop once the answer is out.
            st.discard_ = true;
            if (st.queued()) conn_->consume(st.id_, st.queue_.size() - st.queue_offset_);
            st.queue_.clear();
            st.queue_offset_ = 0;
            conn_->reset_after_response(st.id_);
        }
        record_request(scope, request, done, started);
    }

    worker& w_;
    client_info client_;
    std::shared_ptr<const config> cfg_;  // the generation the connection started with (its SETTINGS)
    in_flight_limiter items_;
    asio::steady_timer wake_;
    std::shared_ptr<h2_connection> conn_;
    std::map<std::int32_t, std::shared_ptr<server_stream>> streams_;
    std::size_t serving_ = 0;
};

}  // namespace

asio::awaitable<void> run_h2_session(worker& w, byte_stream stream, client_info client, std::string received) {
    scoped_gauge connected(metrics_registry::global().client_connections);
    auto session = std::make_shared<h2_session>(w, client);
    co_await session->run(std::move(stream), std::move(received));
}

}  // namespace batchgate
