#include "proxy/http2/h2_connection.hpp"

#include <nghttp2/nghttp2.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cstring>

// Debian back-ports nghttp2's flood fixes (CVE-2024-28182: CONTINUATION
// flood; CVE-2023-44487: rapid reset) with their option setters into 1.52,
// while NGHTTP2_VERSION_NUM still says 1.52: CMake detects the setters
// themselves (BATCHGATE_HAVE_NGHTTP2_*).

namespace batchgate {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t write_buffer_target = 64 * 1024;  // one async_write carries at most ~this much
constexpr std::size_t read_chunk = 16 * 1024;
constexpr std::size_t max_settings_entries = 32;    // a SETTINGS frame with more is an attack, not a config
constexpr std::size_t max_continuation_frames = 8;  // per header block
constexpr std::size_t compact_threshold = 64 * 1024;  // framed bytes dropped from a body queue past this

// Every nghttp2_nv this file builds is copied by nghttp2 at submit time (no
// NO_COPY flags), so the header strings only need to live through the call.
std::vector<nghttp2_nv> to_nv(const std::vector<h2_header>& headers) {
    std::vector<nghttp2_nv> nva;
    nva.reserve(headers.size());
    for (const auto& h : headers) {
        nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
                       reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(), h.value.size(),
                       NGHTTP2_NV_FLAG_NONE});
    }
    return nva;
}

}  // namespace

// What the connection keeps per stream: the request/response body it sends
// (owned here, so a caller that gives up cannot leave nghttp2 a dangling
// pointer) and the observer, which detach() clears.
struct h2_connection::stream_state {
    h2_stream_observer* observer = nullptr;
    std::string body;        // outgoing body bytes queued and not yet framed (from `sent` on)
    std::size_t sent = 0;
    bool body_end = false;   // nothing will be added to `body`
    bool deferred = false;   // the data provider said DEFERRED: resume when bytes come
    bool reset_after_end = false;  // RST_STREAM(NO_ERROR) once our END_STREAM is sent
    std::size_t header_bytes = 0;  // of the header block being received
};

void h2_connection::session_deleter::operator()(nghttp2_session* s) const { nghttp2_session_del(s); }

// The nghttp2 callbacks: trampolines back into the connection. None does I/O.
struct h2_callbacks {
    static h2_connection& self(void* user_data) { return *static_cast<h2_connection*>(user_data); }

    static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
        auto& c = self(user_data);
        if (frame->hd.type != NGHTTP2_HEADERS) return 0;  // PUSH_PROMISE: refused by SETTINGS_ENABLE_PUSH=0
        const std::int32_t id = frame->hd.stream_id;
        if (c.options_.role == h2_role::server && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            h2_stream_observer* observer = c.new_stream_ ? c.new_stream_(id) : nullptr;
            if (!observer) {
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
                c.wake();
                return 0;
            }
            auto st = std::make_unique<h2_connection::stream_state>();
            st->observer = observer;
            c.streams_.emplace(id, std::move(st));
            ++c.streams_started_;
            c.changed_ = true;
        }
        auto* st = c.find_stream(id);
        if (!st) return 0;
        st->header_bytes = 0;
        if (st->observer) st->observer->on_header_block_begin();
        return 0;
    }

    static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                         const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
        auto& c = self(user_data);
        auto* st = c.find_stream(frame->hd.stream_id);
        if (!st) return 0;
        // nghttp2 does not enforce our SETTINGS_MAX_HEADER_LIST_SIZE on what
        // it receives; RFC 9113 §6.5.2 counts name + value + 32 per field.
        st->header_bytes += namelen + valuelen + 32;
        if (st->header_bytes > c.options_.max_header_list_size) {
            if (st->observer) st->observer->on_stream_error();
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets just this stream
        }
        if (st->observer)
            st->observer->on_header({reinterpret_cast<const char*>(name), namelen},
                                    {reinterpret_cast<const char*>(value), valuelen});
        return 0;
    }

    static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
        auto& c = self(user_data);
        switch (frame->hd.type) {
        case NGHTTP2_HEADERS:
            if (auto* st = c.find_stream(frame->hd.stream_id); st && st->observer)
                st->observer->on_header_block_end((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
            break;
        case NGHTTP2_DATA:
            if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
                if (auto* st = c.find_stream(frame->hd.stream_id); st && st->observer) st->observer->on_end_stream();
            break;
        case NGHTTP2_SETTINGS:
            if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
                c.settings_received_ = true;
                c.changed_ = true;
            } else {
                c.settings_acked_ = true;
            }
            break;
        case NGHTTP2_GOAWAY:
            c.goaway_received_ = true;
            c.goaway_last_stream_id_ = frame->goaway.last_stream_id;
            c.goaway_error_code_ = frame->goaway.error_code;
            c.changed_ = true;
            break;
        default: break;
        }
        return 0;
    }

    static int on_data_chunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                             void* user_data) {
        auto& c = self(user_data);
        auto* st = c.find_stream(stream_id);
        std::size_t taken = len;  // bytes nobody wants are still "taken": the window must reopen
        if (st && st->observer) taken = st->observer->on_data({reinterpret_cast<const char*>(data), len});
        if (taken > 0) nghttp2_session_consume(session, stream_id, taken);
        c.wake();  // WINDOW_UPDATE to send
        return 0;
    }

    static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user_data) {
        auto& c = self(user_data);
        h2_stream_close how;
        how.error_code = error_code;
        how.refused = error_code == NGHTTP2_REFUSED_STREAM ||
                      (c.options_.role == h2_role::client && c.goaway_received_ &&
                       stream_id > c.goaway_last_stream_id_);
        c.close_stream(stream_id, how);
        return 0;
    }

    // A request HEADERS that never left (GOAWAY arrived first, stream ids ran
    // out, or we reset it while queued): the peer never saw the stream.
    static int on_frame_not_send(nghttp2_session*, const nghttp2_frame* frame, int, void* user_data) {
        auto& c = self(user_data);
        if (frame->hd.type != NGHTTP2_HEADERS) return 0;
        h2_stream_close how;
        how.error_code = NGHTTP2_REFUSED_STREAM;
        how.refused = c.options_.role == h2_role::client;
        c.close_stream(frame->hd.stream_id, how);
        return 0;
    }

    // nghttp2's HTTP messaging checks failed for a stream (bad pseudo-header,
    // 101 in HTTP/2, content-length mismatch, ...): it resets the stream; we
    // tell the observer why.
    static int on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame* frame, int, void* user_data) {
        auto& c = self(user_data);
        if (frame->hd.stream_id == 0) return 0;
        if (auto* st = c.find_stream(frame->hd.stream_id); st && st->observer) st->observer->on_stream_error();
        return 0;
    }

    // A GOAWAY with an error code is nghttp2 (or we) cutting the peer off:
    // flood, rapid reset, protocol error, settings timeout.
    static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
        auto& c = self(user_data);
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS))
            if (auto* st = c.find_stream(frame->hd.stream_id); st && st->reset_after_end) {
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
                c.wake();
            }
        if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
            c.terminated_ = true;
            c.changed_ = true;
        }
        return 0;
    }

    static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* data_flags,
                             nghttp2_data_source* source, void*) {
        auto* st = static_cast<h2_connection::stream_state*>(source->ptr);
        const std::size_t available = st->body.size() - st->sent;
        if (available == 0) {
            if (st->body_end) {
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
                return 0;
            }
            st->deferred = true;  // send_data resumes it
            return NGHTTP2_ERR_DEFERRED;
        }
        const std::size_t n = std::min(length, available);
        std::memcpy(buf, st->body.data() + st->sent, n);
        st->sent += n;
        if (st->sent == st->body.size()) {
            st->body.clear();
            st->sent = 0;
            if (st->body_end) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (st->sent >= compact_threshold) {
            st->body.erase(0, st->sent);  // a slow peer must not make the queue grow without end
            st->sent = 0;
        }
        if (st->observer) st->observer->on_send_progress();
        return static_cast<ssize_t>(n);
    }

    // Built once for the process: nghttp2 copies the table into each session.
    static const nghttp2_session_callbacks* table() {
        static const auto built = [] {
            nghttp2_session_callbacks* cbs = nullptr;
            nghttp2_session_callbacks_new(&cbs);
            nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
            nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
            nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
            nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
            nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
            nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
            nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
            nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame_recv);
            return std::unique_ptr<nghttp2_session_callbacks, void (*)(nghttp2_session_callbacks*)>(
                cbs, nghttp2_session_callbacks_del);
        }();
        return built.get();
    }
};

h2_connection::h2_connection(byte_stream stream, h2_connection_options options)
    : stream_(std::move(stream)),
      options_(options),
      wake_timer_(stream_.get_executor()),
      write_deadline_(stream_.get_executor()),
      idle_since_(std::chrono::steady_clock::now()) {
    write_buffer_.reserve(write_buffer_target + read_chunk);
}

h2_connection::~h2_connection() {
    // Observers may outlive us only if they were detached; tell the rest.
    closed_ = true;
    h2_stream_close how;
    how.connection_lost = true;
    for (auto& [id, st] : streams_)
        if (st->observer) st->observer->on_closed(how);
}

error_code h2_connection::start(std::string received) {
    received_ = std::move(received);
    settings_sent_ = std::chrono::steady_clock::now();
    nghttp2_option* opt = nullptr;
    if (nghttp2_option_new(&opt) != 0) {
        finish({});
        return make_error_code(boost::system::errc::not_enough_memory);
    }
    std::unique_ptr<nghttp2_option, void (*)(nghttp2_option*)> option(opt, nghttp2_option_del);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, options_.assumed_peer_max_concurrent_streams);
#if NGHTTP2_VERSION_NUM >= 0x012800  // 1.40
    nghttp2_option_set_max_settings(opt, max_settings_entries);
#endif
#ifdef BATCHGATE_HAVE_NGHTTP2_MAX_CONTINUATIONS
    nghttp2_option_set_max_continuations(opt, max_continuation_frames);
#endif
    // Rapid reset (CVE-2023-44487) is a server-side concern: a backend cannot
    // flood us with streams we open.
#ifdef BATCHGATE_HAVE_NGHTTP2_RESET_RATE_LIMIT
    if (options_.role == h2_role::server)
        nghttp2_option_set_stream_reset_rate_limit(opt, options_.reset_burst, options_.reset_rate);
#endif

    nghttp2_session* s = nullptr;
    const int rv = options_.role == h2_role::client
                       ? nghttp2_session_client_new2(&s, h2_callbacks::table(), this, opt)
                       : nghttp2_session_server_new2(&s, h2_callbacks::table(), this, opt);
    if (rv != 0) {
        finish({});  // closed and reported, so an owner waiting for SETTINGS stops waiting
        return make_error_code(boost::system::errc::not_enough_memory);
    }
    session_.reset(s);

    // A client never wants pushed streams (a batch item asked for one
    // answer); ENABLE_PUSH is a client-only setting.
    const std::array<nghttp2_settings_entry, 4> settings{{
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options_.max_header_list_size},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    }};
    const std::size_t n_settings = options_.role == h2_role::client ? settings.size() : settings.size() - 1;
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, settings.data(), n_settings);
    // The connection window starts at 64 KiB whatever SETTINGS say; widen it
    // so the per-stream windows are what limits a busy connection.
    if (options_.connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)
        nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0,
                                              static_cast<int32_t>(options_.connection_window_size));

    auto self = shared_from_this();
    asio::co_spawn(stream_.get_executor(), [self]() { return self->read_loop(); }, asio::detached);
    asio::co_spawn(stream_.get_executor(), [self]() { return self->write_loop(); }, asio::detached);
    return {};
}

// The whole-body and streaming submits differ only in whether the body
// queue starts full and closed; one pair of helpers does both.
std::int32_t h2_connection::open_request(const std::vector<h2_header>& headers, h2_stream_observer* observer,
                                         bool with_body, std::string_view body, bool body_end) {
    if (!accepts_new_streams()) return NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE;
    auto st = std::make_unique<stream_state>();
    st->observer = observer;
    st->body.assign(body);
    st->body_end = body_end;
    const auto nva = to_nv(headers);
    nghttp2_data_provider provider{};
    provider.source.ptr = st.get();
    provider.read_callback = h2_callbacks::read_body;
    const std::int32_t id = nghttp2_submit_request(session_.get(), nullptr, nva.data(), nva.size(),
                                                   with_body ? &provider : nullptr, nullptr);
    if (id < 0) return id;
    streams_.emplace(id, std::move(st));
    ++streams_started_;
    wake();
    return id;
}

int h2_connection::open_response(std::int32_t stream_id, const std::vector<h2_header>& headers, bool with_body,
                                 std::string_view body, bool body_end) {
    auto* st = find_stream(stream_id);
    if (!st || !session_) return NGHTTP2_ERR_INVALID_ARGUMENT;
    st->body.assign(body);
    st->sent = 0;
    st->body_end = body_end;
    const auto nva = to_nv(headers);
    nghttp2_data_provider provider{};
    provider.source.ptr = st;
    provider.read_callback = h2_callbacks::read_body;
    const int rv = nghttp2_submit_response(session_.get(), stream_id, nva.data(), nva.size(),
                                           with_body ? &provider : nullptr);
    wake();
    return rv;
}

std::int32_t h2_connection::submit_request(const std::vector<h2_header>& headers, std::string_view body,
                                           bool send_body, h2_stream_observer* observer) {
    return open_request(headers, observer, send_body, body, true);
}

std::int32_t h2_connection::submit_request_streaming(const std::vector<h2_header>& headers,
                                                     h2_stream_observer* observer) {
    return open_request(headers, observer, true, {}, false);
}

int h2_connection::submit_response(std::int32_t stream_id, const std::vector<h2_header>& headers,
                                   std::string_view body, bool send_body) {
    return open_response(stream_id, headers, send_body, body, true);
}

int h2_connection::submit_response_streaming(std::int32_t stream_id, const std::vector<h2_header>& headers) {
    return open_response(stream_id, headers, true, {}, false);
}

bool h2_connection::send_data(std::int32_t stream_id, std::string_view bytes, bool end) {
    auto* st = find_stream(stream_id);
    if (!st || !session_ || closed_ || st->body_end) return false;
    st->body.append(bytes);
    st->body_end = end;
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(session_.get(), stream_id);
    }
    wake();
    return true;
}

std::size_t h2_connection::outgoing_buffered(std::int32_t stream_id) {
    auto* st = find_stream(stream_id);
    return st ? st->body.size() - st->sent : 0;
}

void h2_connection::detach(std::int32_t stream_id, h2_error_code code) {
    auto* st = find_stream(stream_id);
    if (!st) return;  // already closed
    st->observer = nullptr;
    reset_stream(stream_id, code);
}

void h2_connection::reset_stream(std::int32_t stream_id, h2_error_code code) {
    if (!session_ || closed_) return;
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id, static_cast<std::uint32_t>(code));
    wake();
}

void h2_connection::reset_after_response(std::int32_t stream_id) {
    auto* st = find_stream(stream_id);
    if (!st || !session_ || closed_) return;
    if (nghttp2_session_get_stream_local_close(session_.get(), stream_id) == 1) {
        reset_stream(stream_id, h2_error_code::no_error);  // END_STREAM already went out
        return;
    }
    st->reset_after_end = true;
}

void h2_connection::consume(std::int32_t stream_id, std::size_t n) {
    if (!session_ || closed_ || n == 0) return;
    nghttp2_session_consume(session_.get(), stream_id, n);
    wake();
}

void h2_connection::shutdown_gracefully() {
    if (!session_ || closed_ || draining_) return;
    draining_ = true;
    // The last stream id a client can have processed from its peer is 0
    // (servers open none); a server names the last stream it accepted.
    nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_.get()), NGHTTP2_NO_ERROR, nullptr, 0);
    changed_ = true;
    wake();
}

void h2_connection::close() {
    if (closed_) return;
    stream_.close();  // the loops see operation_aborted and call finish()
    wake();
}

bool h2_connection::accepts_new_streams() const {
    if (!session_ || closed_ || draining_ || goaway_received_) return false;
    if (options_.role == h2_role::client && nghttp2_session_check_request_allowed(session_.get()) == 0) return false;
    return true;
}

std::uint32_t h2_connection::peer_max_concurrent_streams() const {
    if (!session_) return 0;
    return nghttp2_session_get_remote_settings(session_.get(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

asio::awaitable<void> h2_connection::read_loop() {
    auto self = shared_from_this();
    std::array<unsigned char, read_chunk> buffer;
    error_code why;
    if (!received_.empty()) {
        const auto rv = nghttp2_session_mem_recv(session_.get(),
                                                 reinterpret_cast<const uint8_t*>(received_.data()), received_.size());
        received_.clear();
        received_.shrink_to_fit();
        if (rv < 0) {
            terminate_after_flush();
            co_return;
        }
        wake();
        notify_changed();
    }
    while (!closed_) {
        if (!nghttp2_session_want_read(session_.get())) {
            // GOAWAY queued for an error (flood, rapid reset, bad frame):
            // nothing more is read; the writer flushes it and closes.
            wake();
            co_return;
        }
        auto [ec, n] = co_await stream_.async_read_some(asio::buffer(buffer), use_tuple);
        if (ec) {
            why = ec;
            break;
        }
        const auto rv = nghttp2_session_mem_recv(session_.get(), buffer.data(), n);
        if (rv < 0) {  // fatal for the connection: send the GOAWAY nghttp2 queued, then close
            terminate_after_flush();
            co_return;
        }
        idle_since_ = std::chrono::steady_clock::now();
        wake();  // SETTINGS ACK, WINDOW_UPDATE, RST_STREAM may be queued now
        notify_changed();
    }
    finish(why);
}

std::size_t h2_connection::fill_write_buffer() {
    write_buffer_.clear();
    while (write_buffer_.size() < write_buffer_target) {
        const uint8_t* data = nullptr;
        const auto n = nghttp2_session_mem_send(session_.get(), &data);
        if (n < 0) {
            close();
            break;
        }
        if (n == 0) break;
        write_buffer_.insert(write_buffer_.end(), data, data + n);
    }
    return write_buffer_.size();
}

bool h2_connection::idle_expired() const {
    return streams_.empty() && std::chrono::steady_clock::now() - idle_since_ >= options_.idle_timeout;
}

asio::awaitable<void> h2_connection::write_loop() {
    auto self = shared_from_this();
    error_code why;
    while (!closed_) {
        if (fill_write_buffer() > 0) {
            notify_changed();  // sending can close streams (RST_STREAM, END_STREAM after the peer's)
            // A watchdog rather than the stream's own timeout: that one would
            // also arm the reader's next wait, which may rightly be long.
            write_deadline_.expires_after(options_.write_timeout);
            write_deadline_.async_wait([weak = weak_from_this()](const error_code& ec) {
                if (ec) return;
                if (auto self = weak.lock()) self->stream_.close();
            });
            auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(write_buffer_), use_tuple);
            write_deadline_.cancel();
            if (ec) {
                why = ec;
                break;
            }
            continue;
        }
        notify_changed();
        if (closed_) break;
        // Nothing more to exchange (GOAWAY both ways, or ours sent and our
        // streams done): a clean end.
        if (!nghttp2_session_want_read(session_.get()) && !nghttp2_session_want_write(session_.get())) break;
        if (draining_ && streams_.empty()) break;
        if (terminated_) break;  // the error GOAWAY is out
        if (idle_expired()) {
            shutdown_gracefully();
            continue;
        }
        if (!settings_acked_ && std::chrono::steady_clock::now() - settings_sent_ >= options_.settings_timeout) {
            terminated_ = true;
            nghttp2_session_terminate_session(session_.get(), NGHTTP2_SETTINGS_TIMEOUT);
            continue;
        }
        if (!wake_pending_) {
            // Sleep until woken, or until the idle deadline when no stream is
            // open, or until our SETTINGS are overdue.
            auto until = asio::steady_timer::time_point::max();
            if (streams_.empty()) until = idle_since_ + options_.idle_timeout;
            if (!settings_acked_) until = std::min(until, settings_sent_ + options_.settings_timeout);
            wake_timer_.expires_at(until);
            writer_sleeping_ = true;
            co_await wake_timer_.async_wait(use_tuple);
            writer_sleeping_ = false;
        }
        wake_pending_ = false;
    }
    finish(why);
}

void h2_connection::terminate_after_flush() {
    terminated_ = true;
    if (session_ && !closed_) nghttp2_session_terminate_session(session_.get(), NGHTTP2_PROTOCOL_ERROR);
    changed_ = true;
    wake();
}

void h2_connection::wake() {
    wake_pending_ = true;
    if (writer_sleeping_) wake_timer_.cancel();  // completes through the executor, never inline
}

void h2_connection::notify_changed() {
    if (!changed_) return;
    changed_ = false;
    if (on_change_) on_change_();
}

void h2_connection::finish(error_code) {
    if (closed_) return;
    closed_ = true;
    stream_.close();
    wake_timer_.cancel();
    write_deadline_.cancel();
    // Every stream still here dies with the connection. A request HEADERS
    // that never left is as good as refused.
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, st] : streams) {
        h2_stream_close how;
        how.connection_lost = true;
        how.refused = options_.role == h2_role::client && goaway_received_ && id > goaway_last_stream_id_;
        if (st->observer) st->observer->on_closed(how);
    }
    changed_ = true;
    notify_changed();
}

h2_connection::stream_state* h2_connection::find_stream(std::int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
}

void h2_connection::close_stream(std::int32_t id, const h2_stream_close& how) {
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    auto st = std::move(it->second);
    streams_.erase(it);
    if (streams_.empty()) idle_since_ = std::chrono::steady_clock::now();
    changed_ = true;
    if (st->observer) st->observer->on_closed(how);
}

}  // namespace batchgate
