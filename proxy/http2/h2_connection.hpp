// One HTTP/2 connection driven from Asio: the only code in batchgate that
// talks to nghttp2 (1.52). Role-neutral where it is cheap: the backend side
// (h2_client) uses the client role, the HTTP/2 frontend (h2_frontend) the
// server role, through the same reader/writer core.
//
// How it is driven (ARCHITECTURE.md, "Driving nghttp2 1.52 from Asio"):
// - two coroutines per connection: a reader (async_read_some → mem_recv) and
//   a writer (mem_send into one buffer of up to ~64 KiB → one async_write;
//   when there is nothing to send it sleeps on a wake signal);
// - nghttp2 callbacks never do I/O and never resume a coroutine: they record
//   state in the stream's observer, which wakes its waiter through a timer
//   cancel (a posted completion); every submit is followed by wake();
// - automatic WINDOW_UPDATE is off: bytes are consumed when an observer
//   really takes them.
//
// Single-threaded: a connection lives on one worker's io_context.
#pragma once

#include "proxy/core/byte_stream.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct nghttp2_session;
struct nghttp2_session_callbacks;

namespace batchgate {

namespace asio = boost::asio;
using boost::system::error_code;

enum class h2_role { client, server };

// RFC 9113 §7 error codes we use by name (same values as NGHTTP2_*).
enum class h2_error_code : std::uint32_t {
    no_error = 0x0,
    protocol_error = 0x1,
    internal_error = 0x2,
    refused_stream = 0x7,
    cancel = 0x8,
};

struct h2_header {
    std::string name;   // lower case; pseudo-headers first
    std::string value;
};

// How a stream ended, as seen by its observer.
struct h2_stream_close {
    std::uint32_t error_code = 0;  // RST_STREAM / GOAWAY code, 0 = NO_ERROR
    bool refused = false;          // never processed by the peer (REFUSED_STREAM, above GOAWAY's last id, never sent)
    bool connection_lost = false;  // the connection died under the stream
};

// Receives one stream's events. Called from inside nghttp2 callbacks or the
// connection's coroutines: implementations only record state and wake their
// own waiter (never I/O, never a direct resume, never a call back into the
// connection except consume()).
class h2_stream_observer {
public:
    virtual ~h2_stream_observer() = default;
    virtual void on_header_block_begin() = 0;
    virtual void on_header(std::string_view name, std::string_view value) = 0;
    virtual void on_header_block_end(bool end_stream) = 0;
    // Returns how many bytes were taken now (the connection consumes them for
    // flow control); the rest must be handed to h2_connection::consume later.
    virtual std::size_t on_data(std::string_view chunk) = 0;
    virtual void on_end_stream() = 0;  // END_STREAM on a DATA frame
    // The stream was reset locally because the peer broke a rule
    // (malformed message, header list over our limit).
    virtual void on_stream_error() = 0;
    virtual void on_closed(const h2_stream_close& how) = 0;
    // Bytes queued with send_data went out (or into nghttp2's frames): a
    // producer waiting for room may go on.
    virtual void on_send_progress() {}
};

struct h2_connection_options {
    h2_role role = h2_role::client;
    std::uint32_t max_concurrent_streams = 100;        // what we let the peer open
    std::uint32_t initial_window_size = 1024 * 1024;    // per stream, what the peer may send unread
    std::uint32_t connection_window_size = 16 * 1024 * 1024;
    std::uint32_t max_header_list_size = 64 * 1024;    // announced and enforced per header block
    std::chrono::milliseconds idle_timeout{30'000};    // no open stream this long → GOAWAY + close
    // Before the peer's SETTINGS arrive we assume it allows this many streams
    // (RFC 9113 leaves it unlimited; 100 is its recommended minimum).
    std::uint32_t assumed_peer_max_concurrent_streams = 100;
    // Our SETTINGS must be acknowledged this soon (RFC 9113 §6.5.3), else
    // GOAWAY(SETTINGS_TIMEOUT).
    std::chrono::milliseconds settings_timeout{10'000};
    // One write to the peer may take this long; a peer that stops reading
    // loses the connection (its streams end with connection_lost).
    std::chrono::milliseconds write_timeout{30'000};
    // Server role: RST_STREAM frames the peer may send in a burst, and per
    // second after it, before GOAWAY (CVE-2023-44487, "rapid reset").
    std::uint64_t reset_burst = 1000;
    std::uint64_t reset_rate = 33;
};

class h2_connection : public std::enable_shared_from_this<h2_connection> {
public:
    using observer_factory = std::function<h2_stream_observer*(std::int32_t stream_id)>;

    // `stream` is connected (and TLS-handshaken with ALPN h2 when it is TLS).
    h2_connection(byte_stream stream, h2_connection_options options);
    ~h2_connection();
    h2_connection(const h2_connection&) = delete;
    h2_connection& operator=(const h2_connection&) = delete;

    // Creates the session and queues the preface + SETTINGS; then spawns the
    // reader and writer on the socket's executor. `received`: bytes already
    // read off the connection (protocol detection), processed first. An
    // error leaves the connection closed.
    error_code start(std::string received = {});

    // Called (from the connection's coroutines, never from inside nghttp2)
    // after anything the owner may care about changed: SETTINGS received,
    // a stream closed, GOAWAY, the connection closed.
    void on_change(std::function<void()> f) { on_change_ = std::move(f); }
    // Server role: the observer for a stream the peer opens (nullptr refuses it).
    void on_new_stream(observer_factory f) { new_stream_ = std::move(f); }

    // Client role. Returns the new stream's id, or a negative nghttp2 error.
    // `body` is copied and sent with a data provider when `send_body` is set;
    // otherwise HEADERS carries END_STREAM.
    std::int32_t submit_request(const std::vector<h2_header>& headers, std::string_view body, bool send_body,
                                h2_stream_observer* observer);
    // Client role, body to follow with send_data (streamed, flow controlled).
    std::int32_t submit_request_streaming(const std::vector<h2_header>& headers, h2_stream_observer* observer);
    // Server role: a whole response (status and headers in `headers`).
    int submit_response(std::int32_t stream_id, const std::vector<h2_header>& headers, std::string_view body,
                        bool send_body);
    // Server role: the response head now, its body to follow with send_data.
    int submit_response_streaming(std::int32_t stream_id, const std::vector<h2_header>& headers);
    // Queues body bytes of a streaming request or response; `end` closes our
    // side of the stream. False when the stream is gone. The bytes are copied;
    // the caller bounds what it queues with outgoing_buffered().
    bool send_data(std::int32_t stream_id, std::string_view bytes, bool end);
    // Queued body bytes not yet framed (0 when the stream is gone).
    std::size_t outgoing_buffered(std::int32_t stream_id);

    // Forgets the observer; an unfinished stream is reset with `code`.
    void detach(std::int32_t stream_id, h2_error_code code = h2_error_code::cancel);
    void reset_stream(std::int32_t stream_id, h2_error_code code);
    // Server role: the response is complete but the request is not; once
    // END_STREAM is out, RST_STREAM(NO_ERROR) asks the client to stop
    // sending (RFC 9113 §8.1) and frees the stream.
    void reset_after_response(std::int32_t stream_id);
    void consume(std::int32_t stream_id, std::size_t n);
    // GOAWAY(NO_ERROR): no new streams; closes once the open ones are done.
    void shutdown_gracefully();
    // Closes the socket now; open streams end with connection_lost.
    void close();

    bool ready() const { return settings_received_; }  // the peer's SETTINGS arrived
    // Closed because the peer broke the protocol or a limit (GOAWAY sent with an error code).
    bool terminated_by_error() const { return terminated_; }
    bool closed() const { return closed_; }
    bool goaway_received() const { return goaway_received_; }
    std::uint32_t goaway_error_code() const { return goaway_error_code_; }  // of the peer's last GOAWAY
    // False once GOAWAY was sent or received, or the connection is closing.
    bool accepts_new_streams() const;
    std::size_t open_streams() const { return streams_.size(); }
    std::uint32_t peer_max_concurrent_streams() const;
    std::uint64_t streams_started() const { return streams_started_; }
    byte_stream& stream() { return stream_; }

private:
    struct stream_state;
    struct session_deleter {
        void operator()(nghttp2_session* s) const;
    };

    friend struct h2_callbacks;  // the trampolines

    asio::awaitable<void> read_loop();
    asio::awaitable<void> write_loop();
    std::size_t fill_write_buffer();
    bool idle_expired() const;
    std::int32_t open_request(const std::vector<h2_header>& headers, h2_stream_observer* observer, bool with_body,
                              std::string_view body, bool body_end);
    int open_response(std::int32_t stream_id, const std::vector<h2_header>& headers, bool with_body,
                      std::string_view body, bool body_end);
    void wake();
    void terminate_after_flush();
    void notify_changed();
    void finish(error_code why);

    stream_state* find_stream(std::int32_t id);
    void close_stream(std::int32_t id, const h2_stream_close& how);

    byte_stream stream_;
    h2_connection_options options_;
    std::unique_ptr<nghttp2_session, session_deleter> session_;
    asio::steady_timer wake_timer_;
    asio::steady_timer write_deadline_;
    bool wake_pending_ = false;
    bool writer_sleeping_ = false;
    std::vector<unsigned char> write_buffer_;
    std::map<std::int32_t, std::unique_ptr<stream_state>> streams_;
    std::function<void()> on_change_;
    observer_factory new_stream_;
    std::chrono::steady_clock::time_point idle_since_;
    std::int32_t goaway_last_stream_id_ = INT32_MAX;
    std::uint32_t goaway_error_code_ = 0;
    std::uint64_t streams_started_ = 0;
    std::string received_;  // handed to start(), fed to nghttp2 before the first read
    std::chrono::steady_clock::time_point settings_sent_;
    bool settings_acked_ = false;
    bool settings_received_ = false;
    bool goaway_received_ = false;
    bool draining_ = false;
    bool closed_ = false;
    bool changed_ = false;
    bool terminated_ = false;
};

}  // namespace batchgate
