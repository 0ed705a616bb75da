#include "proxy/frontend/http1_frontend.hpp"

#include "proxy/core/metrics.hpp"
#include "proxy/core/problem.hpp"
#include "proxy/frontend/access_log.hpp"
#include "proxy/frontend/h2_frontend.hpp"
#include "proxy/frontend/http1_exchange_io.hpp"
#include "proxy/frontend/read_deadline.hpp"
#include "proxy/frontend/request_dispatcher.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <tuple>

namespace batchgate {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using tcp = asio::ip::tcp;

// Request-smuggling defences beyond Beast's own parser (which already refuses
// differing Content-Length values, empty header names and bad chunking).
// Returns why the request is refused, or "" when it is acceptable.
std::string_view smuggling_check(const http::request_parser<http::buffer_body>& parser) {
    const auto& req = parser.get();
    const auto te_count = req.count(http::field::transfer_encoding);
    if (te_count > 1) return "more than one Transfer-Encoding header";
    if (te_count == 1) {
        if (!beast::iequals(req[http::field::transfer_encoding], "chunked"))
            return "Transfer-Encoding other than exactly 'chunked'";
        if (req.count(http::field::content_length) > 0) return "both Content-Length and Transfer-Encoding";
    }
    if (req.count(http::field::content_length) > 1) return "more than one Content-Length header";
    if (req.version() >= 11 && req.count(http::field::host) != 1) return "HTTP/1.1 request needs exactly one Host";
    // Beast 1.81 replaces obsolete line folding with a space (RFC 9112 §5.2),
    // so a fold never gets here; this refuses what is left that could put a
    // raw CR, LF or NUL on the backend connection.
    for (const auto& f : req)
        if (!is_safe_header_value(f.value())) return "a control character in a header value";
    return {};
}

// Maps a failure to read the request head to the answer it deserves, or
// nullopt when the connection should just be closed (client went away).
// Only called once the first bytes of a request arrived, so a timeout is a
// slow client, not an idle one.
struct head_refusal {
    http::status status;
    std::string_view detail;
    limit_kind limit;
};

std::optional<head_refusal> classify_head_error(const error_code& ec) {
    if (ec == http::error::header_limit)
        return head_refusal{http::status::request_header_fields_too_large,
                            "request head larger than limits.max_header_bytes", limit_kind::header_bytes};
    if (ec == http::error::body_limit)
        return head_refusal{http::status::payload_too_large, "request body larger than limits.max_body_bytes",
                            limit_kind::body_bytes};
    if (ec == beast::error::timeout)
        return head_refusal{http::status::request_timeout, "request head not received within limits.header_timeout",
                            limit_kind::header_timeout};
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == http::error::partial_message)
        return std::nullopt;
    if (ec.category() == http::make_error_code(http::error::bad_field).category())
        return head_refusal{http::status::bad_request, "malformed request head", limit_kind::bad_request};
    return std::nullopt;
}

// Half-close and discard what the client still sends for a moment, so an
// error answer is not destroyed by a RST from unread bytes in our buffer.
asio::awaitable<void> lingering_close(byte_stream& stream) {
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::array<char, 4096> sink;
    stream.expires_after(std::chrono::seconds(1));
    for (std::size_t discarded = 0; discarded < 256 * 1024;) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
        if (ec) break;
        discarded += n;
    }
    stream.socket().close(ignored);
}

// A refusal of a request whose head could not be read: the connection ends
// after it (what follows on the wire is not a request we can find).
asio::awaitable<exchange_summary> refuse_head(byte_stream& stream, const head_refusal& refusal, duration send_timeout) {
    exchange_summary summary;
    auto res = make_problem(refusal.status, refusal.detail, 11, false);
    stream.expires_after(send_timeout);
    // A client that cannot take it is closed anyway; one that stalls is counted.
    auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
    if (ec == beast::error::timeout) metrics_registry::global().limit_breached(limit_kind::send_timeout);
    summary.status = static_cast<unsigned>(refusal.status);
    summary.response_bytes = res.body().size();
    co_return summary;
}

// What is left of the connection after one request.
enum class after_request {
    next,    // keep-alive: read the next request
    close,   // close quietly (client gone, or the answer said close)
    linger,  // an error answer was sent while the client may still be sending
};

// One request, from its head to the end of its answer. A coroutine of its
// own so that its state (parser, body source, sink, request scope) lives in
// a frame only while a request is in progress; the connection's idle frame
// stays small.
asio::awaitable<after_request> serve_one_request(worker& w, byte_stream& stream, beast::flat_buffer& buffer,
                                                 read_deadline& deadline, const client_info& client,
                                                 std::span<char> relay_buffer) {
    auto& metrics = metrics_registry::global();
    auto routing = w.routing;  // this request keeps its configuration generation
    const auto& limits = routing->cfg->limits;
    const auto started = std::chrono::steady_clock::now();

    http::request_parser<http::buffer_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    stream.expires_never();
    deadline.arm(limits.header_timeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    if (deadline.disarm()) ec = beast::error::timeout;
    if (ec) {
        auto answer = classify_head_error(ec);
        if (!answer) co_return after_request::close;
        metrics.limit_breached(answer->limit);
        auto s = co_await refuse_head(stream, *answer, limits.send_timeout);
        metrics.request_done(request_kind::passthrough, s.status, std::chrono::steady_clock::now() - started);
        log_access(client, request_id_for({}), "-", "-", s, started);
        co_return after_request::linger;
    }

    auto scope = open_request_scope(routing, client, &w.draining, parser.get()["x-request-id"], relay_buffer);
    auto& req = parser.get();
    forward_request request;
    request.method = req.method();
    request.method_text = req.method_string();
    request.target = req.target();
    request.headers = &req;
    if (auto length = parser.content_length()) request.content_length = *length;
    request.has_body = !parser.is_done();
    request.expects_continue = req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue");
    http1_body_source body(stream, buffer, parser, limits.read_timeout);
    http1_response_sink sink(stream, body, req.version(), req.keep_alive() && !w.draining, limits.send_timeout,
                             &w.draining);
    std::optional<request_refusal> refusal;
    if (auto why = smuggling_check(parser); !why.empty()) {
        body.abandon();  // whatever follows on the wire cannot be trusted
        refusal = request_refusal{why, limit_kind::smuggling};
    }
    auto done = co_await dispatch_request(request, body, sink, scope, refusal);
    auto& summary = done.summary;
    summary.keep_alive = sink.keep_alive() && !body.failed();
    summary.response_bytes = std::max(summary.response_bytes, sink.bytes_sent());
    record_request(scope, request, done, started);
    if (summary.keep_alive) co_return after_request::next;
    co_return summary.status != 0 ? after_request::linger : after_request::close;
}

// Reads until the bytes either are the whole HTTP/2 preface or cannot be
// its start. Returns what was read (handed on to the session) or nullopt
// when the client left or stayed silent.
asio::awaitable<std::optional<std::string>> read_opening(beast::tcp_stream& stream, const limits_config& limits,
                                                         bool& is_h2) {
    std::string received;
    std::array<char, 4096> chunk;
    stream.expires_after(limits.idle_timeout);  // a connection may open and wait, like a keep-alive one
    for (;;) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(chunk), use_tuple);
        if (ec) co_return std::nullopt;
        received.append(chunk.data(), n);
        const auto compared = std::min(received.size(), h2_client_preface.size());
        if (received.compare(0, compared, h2_client_preface, 0, compared) != 0) {
            is_h2 = false;
            break;
        }
        if (received.size() >= h2_client_preface.size()) {
            is_h2 = true;
            break;
        }
        stream.expires_after(limits.header_timeout);  // a preface trickling in is a slow request head
    }
    stream.expires_never();
    co_return received;
}

// The session, with the cleartext listener's protocol detection first when
// `detect_h2c`: one coroutine, so an idle keep-alive connection holds one
// frame (a few hundred bytes) besides its socket.
asio::awaitable<void> http1_session(worker& w, byte_stream stream, client_info client, bool detect_h2c) {
    std::string received;
    if (detect_h2c) {
        bool is_h2 = false;
        std::optional<std::string> opening;
        {
            session_handle waiting{&stream.tcp(), true, {}};  // silent so far: a drain may cut it
            worker::registration registered(w, &waiting);
            if (!w.draining) opening = co_await read_opening(stream.tcp(), w.routing->cfg->limits, is_h2);
        }
        if (!opening) co_return;
        if (is_h2) {
            co_await run_h2_session(w, std::move(stream), std::move(client), std::move(*opening));
            co_return;
        }
        received = std::move(*opening);
    }

    scoped_gauge connected(metrics_registry::global().client_connections);
    session_handle handle{&stream.tcp(), false, {}};
    worker::registration registered(w, &handle);
    std::size_t header_limit = w.routing->cfg->limits.max_header_bytes;
    // Pipelined requests wait here; the bound stops a client from queueing more.
    // It and the relay buffer are held only while a request is read or
    // answered: an idle keep-alive connection keeps no buffer at all.
    beast::flat_buffer buffer(std::max(header_limit + relay_chunk_bytes, received.size()));
    buffer.commit(asio::buffer_copy(buffer.prepare(received.size()), asio::buffer(received)));
    received = std::string();
    std::unique_ptr<char[]> relay_buffer;
    read_deadline deadline(stream.socket());  // one per connection, armed per wait
    auto outcome = after_request::close;  // also when the client leaves while idle

    while (!w.draining) {
        if (buffer.size() == 0) {
            buffer.shrink_to_fit();
            relay_buffer.reset();
            // Wait for the next request holding no buffer: a cleartext socket
            // is watched for readability (the bytes stay in the kernel until
            // the head is read); a TLS one is read, as its engine may hold
            // decrypted bytes the socket no longer shows. Inline, not a
            // coroutine of its own, to keep an idle connection's frames few.
            handle.idle = true;
            const auto idle_timeout = w.routing->cfg->limits.idle_timeout;
            error_code ec;
            if (stream.is_tls()) {
                stream.expires_after(idle_timeout);
                std::size_t n = 0;
                std::tie(ec, n) = co_await stream.async_read_some(buffer.prepare(relay_chunk_bytes), use_tuple);
                if (!ec) buffer.commit(n);
            } else {
                deadline.arm(idle_timeout);
                std::tie(ec) = co_await stream.socket().async_wait(tcp::socket::wait_read, use_tuple);
                if (deadline.disarm()) ec = beast::error::timeout;
                // Room for a whole relay chunk, so the head is read in one
                // go rather than in Beast's 512-byte first step.
                if (!ec) buffer.reserve(relay_chunk_bytes);
            }
            handle.idle = false;
            if (ec) break;
        }
        if (!relay_buffer) relay_buffer = std::make_unique_for_overwrite<char[]>(relay_chunk_bytes);
        outcome = co_await serve_one_request(w, stream, buffer, deadline, client,
                                             std::span<char>(relay_buffer.get(), relay_chunk_bytes));
        if (outcome != after_request::next) break;
    }

    if (outcome == after_request::linger) {
        co_await lingering_close(stream);
    } else {
        error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.socket().close(ignored);
    }
}

}  // namespace

asio::awaitable<void> run_http1_session(worker& w, byte_stream stream, client_info client) {
    return http1_session(w, std::move(stream), std::move(client), false);
}

asio::awaitable<void> run_cleartext_session(worker& w, asio::ip::tcp::socket socket, client_info client) {
    return http1_session(w, byte_stream(std::move(socket)), std::move(client), true);
}

}  // namespace batchgate
