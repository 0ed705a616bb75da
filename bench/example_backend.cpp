// example_backend — the bundled "legacy REST backend" for the quick start demo
// and the benchmarks (see bench/README.md).
//
// A small, fast HTTP/1.1 server: Boost.Beast + Asio with C++20 coroutines, one
// io_context per thread; one acceptor hands the connections to the threads
// round-robin (no SO_REUSEPORT, so a second instance on a busy port fails
// loudly instead of silently sharing it). A connection that opens with the
// HTTP/2 client preface is served as h2c (prior knowledge) on the same port,
// through batchgate's own nghttp2 core (proxy/h2_connection), so batchgate's
// `protocol: h2c` backends can be exercised and benchmarked.
//
//   GET    /users/N   → 200 {"id":N,...}  (404 if unknown)
//   PUT    /users/N   → 200 stored JSON, or 201 + Location if it was new
//   DELETE /users/N   → 204 (404 if unknown)
//   GET    /items/N   → 200 {"id":N,"name":"item N"}
//   DELETE /items/N   → 204 always
//   *      /slow/MS   → 200 text after MS ms (asio timer, capped at 60000)
//   *      /echo/...  → 200 JSON describing the request
//   GET    /healthz   → 200 "ok"
//   anything else     → 404
//
// Built by CMake (target example_backend; it links batchgate_core for h2c).
// Boost.JSON is used header-only (boost/json/src.hpp) to validate PUT bodies.

#include "proxy/http2/h2_connection.hpp"

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/src.hpp>
#include <boost/program_options.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>


namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace po = boost::program_options;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------------------
// Limits and timeouts
// ---------------------------------------------------------------------------

constexpr std::uint64_t max_body_bytes = 8 * 1024 * 1024;  // 413 beyond
constexpr std::uint32_t max_header_bytes = 16 * 1024;      // 431 beyond
constexpr std::uint64_t max_slow_ms = 60'000;
constexpr auto idle_timeout = 60s;    // keep-alive wait for the first byte of the next request
constexpr auto header_timeout = 10s;  // the rest of the request head
constexpr auto body_timeout = 30s;    // the whole request body
constexpr auto write_timeout = 30s;   // one response
constexpr auto linger_timeout = 2s;   // discarding input after an error answer
constexpr std::size_t linger_max_bytes = 16 * 1024 * 1024;

constexpr auto tok = asio::as_tuple(asio::use_awaitable);

using request = http::request<http::string_body>;

// beast::string_view is std::string_view or boost::core::string_view depending
// on BOOST_BEAST_USE_STD_STRING_VIEW; work with std::string_view throughout.
template <class S>
std::string_view sv(const S& s) {
    return {s.data(), s.size()};
}

// ---------------------------------------------------------------------------
// The user store: sharded, one mutex per shard, never held during I/O.
// ---------------------------------------------------------------------------

class user_store {
public:
    std::optional<std::string> get(std::uint64_t id) {
        auto& s = shard_for(id);
        std::lock_guard lock(s.mutex);
        auto it = s.users.find(id);
        if (it == s.users.end()) return std::nullopt;
        return it->second;
    }

    // Returns true when the user did not exist before.
    bool put(std::uint64_t id, std::string json_text) {
        auto& s = shard_for(id);
        std::lock_guard lock(s.mutex);
        auto [it, inserted] = s.users.try_emplace(id);
        it->second = std::move(json_text);
        return inserted;
    }

    bool erase(std::uint64_t id) {
        auto& s = shard_for(id);
        std::lock_guard lock(s.mutex);
        return s.users.erase(id) != 0;
    }

private:
    struct alignas(64) shard {
        std::mutex mutex;
        std::unordered_map<std::uint64_t, std::string> users;
    };
    static constexpr std::size_t shard_count = 64;

    shard& shard_for(std::uint64_t id) { return shards_[id % shard_count]; }

    std::array<shard, shard_count> shards_;
};

// ---------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------

// Appends s as a JSON string literal. Invalid UTF-8 is replaced by U+FFFD so
// the output is always valid JSON whatever bytes the client sent.
void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 0xf];
                } else {
                    out += static_cast<char>(c);
                }
            }
            ++i;
            continue;
        }
        // Multi-byte sequence: validate (no overlongs, no surrogates, <= U+10FFFF).
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
        bool ok = len != 0 && i + len <= s.size();
        for (std::size_t k = 1; ok && k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) ok = false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (ok) {
            if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
                (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                ok = false;
        }
        if (ok) {
            out.append(s.data() + i, len);
            i += len;
        } else {
            out += "\xef\xbf\xbd";  // U+FFFD
            ++i;
        }
    }
    out += '"';
}

std::string json_error(std::string_view message) {
    std::string out = "{\"error\":";
    append_json_string(out, message);
    out += '}';
    return out;
}

// ---------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------

// An answer, serialized by hand (see serialize()): cheaper than Beast's
// generic serializer, and lets pipelined answers share one write.
struct reply {
    http::status status = http::status::ok;
    std::string_view content_type;  // empty: no Content-Type
    std::string_view allow;         // 405
    std::string location;           // 201
    std::string body;
    std::chrono::milliseconds delay{0};  // /slow: answer after this long
};

// Parses a decimal unsigned integer filling the whole string.
std::optional<std::uint64_t> parse_u64(std::string_view s) {
    if (s.empty() || s.size() > 19) return std::nullopt;
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

void append_number(std::string& out, std::uint64_t v) {
    char digits[20];
    auto [p, ec] = std::to_chars(digits, digits + sizeof digits, v);
    (void)ec;
    out.append(digits, p);
}

// Appends the whole HTTP/1.x answer to out. HEAD answers keep the
// Content-Length of the GET answer but carry no body; 204 carries neither.
void serialize(const reply& r, unsigned version, bool keep_alive, bool head, std::string& out) {
    out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    append_number(out, static_cast<unsigned>(r.status));
    out += ' ';
    out += sv(http::obsolete_reason(r.status));
    out += "\r\nServer: example-backend\r\n";
    if (!r.content_type.empty()) {
        out += "Content-Type: ";
        out += r.content_type;
        out += "\r\n";
    }
    if (!r.location.empty()) {
        out += "Location: ";
        out += r.location;
        out += "\r\n";
    }
    if (!r.allow.empty()) {
        out += "Allow: ";
        out += r.allow;
        out += "\r\n";
    }
    if (!keep_alive && version != 10) out += "Connection: close\r\n";
    if (keep_alive && version == 10) out += "Connection: keep-alive\r\n";
    const bool no_body = r.status == http::status::no_content || r.status == http::status::not_modified;
    if (!no_body) {
        out += "Content-Length: ";
        append_number(out, r.body.size());
        out += "\r\n";
    }
    out += "\r\n";
    if (!no_body && !head) out += r.body;
}

class handler {
public:
    explicit handler(user_store& store) : store_(store) {}

    reply handle(const request& req) const {
        reply r;
        const std::string_view target = sv(req.target());
        const std::string_view path = target.substr(0, target.find('?'));
        const http::verb method = req.method();

        if (path.starts_with("/users/")) {
            users(req, path.substr(7), r);
        } else if (path.starts_with("/items/")) {
            items(method, path.substr(7), r);
        } else if (path.starts_with("/slow/")) {
            slow(path.substr(6), r);
        } else if (path == "/echo" || path.starts_with("/echo/")) {
            echo(req, r);
        } else if (path == "/healthz") {
            if (method == http::verb::get || method == http::verb::head)
                text(r, http::status::ok, "ok\n");
            else
                not_allowed(r, "GET, HEAD");
        } else {
            error(r, http::status::not_found, "not found");
        }
        return r;
    }

private:
    static void text(reply& r, http::status status, std::string body) {
        r.status = status;
        r.content_type = "text/plain; charset=utf-8";
        r.body = std::move(body);
    }

    static void json_body(reply& r, http::status status, std::string body) {
        r.status = status;
        r.content_type = "application/json";
        r.body = std::move(body);
    }

    static void error(reply& r, http::status status, std::string_view message) {
        json_body(r, status, json_error(message));
    }

    static void not_allowed(reply& r, std::string_view allow) {
        error(r, http::status::method_not_allowed, "method not allowed");
        r.allow = allow;
    }

    static void no_content(reply& r) { r.status = http::status::no_content; }

    void users(const request& req, std::string_view rest, reply& r) const {
        const auto id = parse_u64(rest);
        if (!id) return error(r, http::status::not_found, "not found");

        switch (req.method()) {
        case http::verb::get:
        case http::verb::head:
            if (auto user = store_.get(*id)) return json_body(r, http::status::ok, std::move(*user));
            return error(r, http::status::not_found, "no such user");

        case http::verb::put: {
            json::error_code ec;
            json::value v = json::parse(sv(req.body()), ec);
            if (ec || !v.is_object())
                return error(r, http::status::bad_request, "body must be a JSON object");
            // The URL names the resource: "id" comes first and is always N.
            json::object stored;
            stored.reserve(v.as_object().size() + 1);
            stored["id"] = *id;
            for (auto& [key, value] : v.as_object())
                if (key != "id") stored[key] = std::move(value);
            std::string body = json::serialize(stored);
            const bool created = store_.put(*id, body);
            if (created) r.location = "/users/" + std::to_string(*id);
            return json_body(r, created ? http::status::created : http::status::ok, std::move(body));
        }

        case http::verb::delete_:
            if (store_.erase(*id)) return no_content(r);
            return error(r, http::status::not_found, "no such user");

        default:
            return not_allowed(r, "GET, HEAD, PUT, DELETE");
        }
    }

    static void items(http::verb method, std::string_view rest, reply& r) {
        const auto id = parse_u64(rest);
        if (!id) return error(r, http::status::not_found, "not found");
        switch (method) {
        case http::verb::get:
        case http::verb::head: {
            const std::string n = std::to_string(*id);
            return json_body(r, http::status::ok, "{\"id\":" + n + ",\"name\":\"item " + n + "\"}");
        }
        case http::verb::delete_:
            return no_content(r);
        default:
            return not_allowed(r, "GET, HEAD, DELETE");
        }
    }

    static void slow(std::string_view rest, reply& r) {
        const std::string_view digits = rest.substr(0, rest.find('/'));
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos)
            return error(r, http::status::bad_request, "expected /slow/MILLISECONDS");
        std::uint64_t ms = max_slow_ms;  // too many digits or too large: capped
        if (auto v = parse_u64(digits); v && *v <= max_slow_ms) ms = *v;
        r.delay = std::chrono::milliseconds(ms);
        text(r, http::status::ok, "slept " + std::to_string(ms) + " ms\n");
    }

    static void echo(const request& req, reply& r) {
        std::string out = "{\"method\":";
        append_json_string(out, sv(req.method_string()));
        out += ",\"target\":";
        append_json_string(out, sv(req.target()));
        out += ",\"version\":";
        append_json_string(out, req.version() == 10 ? "HTTP/1.0" : "HTTP/1.1");

        // Lower-case names; repeated fields are joined with ", " (RFC 9110 §5.3).
        std::vector<std::pair<std::string, std::string>> headers;
        for (const auto& f : req) {
            std::string name(sv(f.name_string()));
            for (auto& ch : name)
                if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
            auto it = std::find_if(headers.begin(), headers.end(),
                                   [&](const auto& h) { return h.first == name; });
            if (it == headers.end()) {
                headers.emplace_back(std::move(name), std::string(sv(f.value())));
            } else {
                it->second += ", ";
                it->second += sv(f.value());
            }
        }
        out += ",\"headers\":{";
        bool first = true;
        for (const auto& [name, value] : headers) {
            if (!first) out += ',';
            first = false;
            append_json_string(out, name);
            out += ':';
            append_json_string(out, value);
        }
        out += "},\"body\":";
        append_json_string(out, sv(req.body()));
        out += '}';
        json_body(r, http::status::ok, std::move(out));
    }

    user_store& store_;
};

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

using steady = std::chrono::steady_clock;

// One per connection, shared by the session and its watchdog. Timeouts are a
// deadline the session moves (no timer operation per request); the watchdog
// wakes once a second and closes the socket once the deadline has passed,
// which aborts whatever the session is waiting for.
struct connection {
    explicit connection(tcp::socket s) : socket(std::move(s)), watchdog_timer(socket.get_executor()) {}

    void expires_after(steady::duration d) { deadline = steady::now() + d; }
    void expires_never() { deadline = steady::time_point::max(); }

    tcp::socket socket;
    asio::steady_timer watchdog_timer;
    steady::time_point deadline = steady::time_point::max();
    bool done = false;
};

asio::awaitable<void> watchdog(std::shared_ptr<connection> c) {
    while (!c->done) {
        c->watchdog_timer.expires_after(1s);
        co_await c->watchdog_timer.async_wait(tok);
        if (c->done) co_return;
        if (c->deadline <= steady::now()) {
            beast::error_code ignored;
            c->socket.close(ignored);
            co_return;
        }
    }
}

bool is_http_error(const beast::error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_method).category();
}

asio::awaitable<bool> write_all(connection& c, std::string& out) {
    if (out.empty()) co_return true;
    c.expires_after(write_timeout);
    auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(out), tok);
    out.clear();
    co_return !ec;
}

// Sends a final error answer after what is already queued in out, then closes
// gracefully: shut down our side and discard what the client still sends for a
// short while, so the kernel does not reset the connection before the client
// has read the answer.
asio::awaitable<void> answer_and_close(connection& c, std::string& out, http::status status,
                                       std::string_view message) {
    reply r;
    r.status = status;
    r.content_type = "application/json";
    r.body = json_error(message);
    serialize(r, 11, false, false, out);
    if (!co_await write_all(c, out)) co_return;

    beast::error_code ignored;
    c.socket.shutdown(tcp::socket::shutdown_send, ignored);
    std::array<char, 16 * 1024> sink;
    std::size_t discarded = 0;
    c.expires_after(linger_timeout);
    while (discarded < linger_max_bytes) {
        auto [ec, got] = co_await c.socket.async_read_some(asio::buffer(sink), tok);
        if (ec) break;
        discarded += got;
    }
}

using parser_type = http::request_parser<http::string_body>;

// Feeds the parser from what is already buffered, without any I/O.
void parse_buffered(parser_type& parser, beast::flat_buffer& buffer, beast::error_code& ec) {
    while (buffer.size() != 0 && !parser.is_done()) {
        const std::size_t used = parser.put(buffer.data(), ec);
        buffer.consume(used);
        if (ec == http::error::need_more) {
            ec = {};
            return;
        }
        if (ec || used == 0) return;
    }
}

asio::awaitable<void> serve(connection& c, const handler& h, beast::flat_buffer buffer) {
    std::string out;  // answers not yet written (pipelined requests share a write)
    std::optional<parser_type> parser;
    std::optional<asio::steady_timer> slow_timer;

    for (;;) {
        parser.emplace();
        parser->header_limit(max_header_bytes);
        parser->body_limit(max_body_bytes);

        beast::error_code ec;
        parse_buffered(*parser, buffer, ec);

        if (!ec && !parser->is_header_done()) {
            // Nothing more to parse without reading: flush queued answers first,
            // the client may be waiting for them before it sends more.
            if (!co_await write_all(c, out)) co_return;
            if (buffer.size() == 0) {
                // Idle keep-alive wait for the first byte of the next request.
                c.expires_after(idle_timeout);
                auto [rec, n] = co_await c.socket.async_read_some(buffer.prepare(8192), tok);
                if (rec) co_return;  // EOF, reset, or closed by the watchdog
                buffer.commit(n);
                parse_buffered(*parser, buffer, ec);  // usually the whole request
            }
            if (!ec && !parser->is_header_done()) {
                c.expires_after(header_timeout);
                std::tie(ec, std::ignore) =
                    co_await http::async_read_header(c.socket, buffer, *parser, tok);
            }
        }

        if (!ec && !parser->is_done()) {
            if (!co_await write_all(c, out)) co_return;
            const auto& hdr = parser->get();
            if (beast::iequals(sv(hdr[http::field::expect]), std::string_view("100-continue"))) {
                out = hdr.version() == 10 ? "HTTP/1.0 100 Continue\r\n\r\n" : "HTTP/1.1 100 Continue\r\n\r\n";
                if (!co_await write_all(c, out)) co_return;
            }
            c.expires_after(body_timeout);
            std::tie(ec, std::ignore) = co_await http::async_read(c.socket, buffer, *parser, tok);
        }

        if (ec) {
            if (ec == http::error::header_limit)
                co_await answer_and_close(c, out, http::status::request_header_fields_too_large,
                                          "request header too large");
            else if (ec == http::error::body_limit)
                co_await answer_and_close(c, out, http::status::payload_too_large,
                                          "request body larger than 8 MiB");
            else if (is_http_error(ec) && ec != http::error::end_of_stream &&
                     ec != http::error::partial_message)
                co_await answer_and_close(c, out, http::status::bad_request, "malformed request");
            else
                co_await write_all(c, out);
            co_return;
        }

        const request req = parser->release();
        const reply r = h.handle(req);

        if (r.delay.count() > 0) {
            // Only this connection waits (HTTP/1.1 answers in order); the thread
            // keeps serving every other connection meanwhile.
            if (!co_await write_all(c, out)) co_return;
            if (!slow_timer) slow_timer.emplace(c.socket.get_executor());
            c.expires_never();
            slow_timer->expires_after(r.delay);
            if (auto [tec] = co_await slow_timer->async_wait(tok); tec) co_return;
        }

        const bool keep_alive = req.keep_alive();
        serialize(r, req.version(), keep_alive, req.method() == http::verb::head, out);

        if (!keep_alive) {
            if (co_await write_all(c, out)) {
                beast::error_code ignored;
                c.socket.shutdown(tcp::socket::shutdown_send, ignored);
            }
            co_return;
        }
        if (out.size() >= 64 * 1024 && !co_await write_all(c, out)) co_return;
    }
}

// ---------------------------------------------------------------------------
// h2c (prior knowledge): one nghttp2 server session per connection, each
// stream answered by the same handler as HTTP/1.1.
// ---------------------------------------------------------------------------

constexpr std::string_view h2_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

class h2_stream : public batchgate::h2_stream_observer {
public:
    h2_stream(std::int32_t id, std::function<void(h2_stream&)> ready) : id(id), ready_(std::move(ready)) {}
    void on_header_block_begin() override {}
    void on_header(std::string_view name, std::string_view value) override {
        if (name == ":method")
            req.method_string(value);
        else if (name == ":path")
            req.target(value);
        else if (name == ":authority")
            req.set(http::field::host, value);
        else if (!name.empty() && name[0] != ':')
            req.insert(name, value);
    }
    void on_header_block_end(bool end_stream) override {
        if (end_stream) finish();
    }
    std::size_t on_data(std::string_view chunk) override {
        if (req.body().size() + chunk.size() <= max_body_bytes) req.body().append(chunk);
        return chunk.size();
    }
    void on_end_stream() override { finish(); }
    void on_stream_error() override {}
    void on_closed(const batchgate::h2_stream_close&) override { closed = true; }

    std::int32_t id;
    request req{http::verb::get, "/", 11};
    bool closed = false;

private:
    void finish() {
        if (ready_) std::exchange(ready_, nullptr)(*this);
    }
    std::function<void(h2_stream&)> ready_;
};

asio::awaitable<void> answer_h2(std::shared_ptr<batchgate::h2_connection> conn, std::shared_ptr<h2_stream> st,
                                const handler& h) {
    const reply r = h.handle(st->req);
    if (r.delay.count() > 0) {
        asio::steady_timer wait(conn->stream().get_executor(), r.delay);
        co_await wait.async_wait(tok);
    }
    if (st->closed) co_return;
    std::vector<batchgate::h2_header> headers{{":status", std::to_string(static_cast<unsigned>(r.status))},
                                              {"server", "example-backend"}};
    if (!r.content_type.empty()) headers.push_back({"content-type", std::string(r.content_type)});
    if (!r.location.empty()) headers.push_back({"location", r.location});
    if (!r.allow.empty()) headers.push_back({"allow", std::string(r.allow)});
    const bool no_body = r.status == http::status::no_content || r.status == http::status::not_modified ||
                         st->req.method() == http::verb::head;
    if (r.status != http::status::no_content && r.status != http::status::not_modified)
        headers.push_back({"content-length", std::to_string(r.body.size())});
    conn->submit_response(st->id, headers, r.body, !no_body && !r.body.empty());
}

asio::awaitable<void> h2_session(tcp::socket socket, const handler& h, std::string received) {
    batchgate::h2_connection_options options;
    options.role = batchgate::h2_role::server;
    options.max_concurrent_streams = 1000;
    options.idle_timeout = idle_timeout;
    auto conn = std::make_shared<batchgate::h2_connection>(
        batchgate::byte_stream(beast::tcp_stream(std::move(socket))), options);
    std::unordered_map<std::int32_t, std::shared_ptr<h2_stream>> streams;
    asio::steady_timer changed(conn->stream().get_executor(), steady::time_point::max());
    conn->on_new_stream([&](std::int32_t id) -> batchgate::h2_stream_observer* {
        auto st = std::make_shared<h2_stream>(id, [conn, &h, &streams](h2_stream& ready) {
            asio::co_spawn(conn->stream().get_executor(), answer_h2(conn, streams.at(ready.id), h), asio::detached);
        });
        streams[id] = st;
        return st.get();
    });
    conn->on_change([&] {
        std::erase_if(streams, [](const auto& kv) { return kv.second->closed; });
        changed.cancel();
    });
    if (conn->start(std::move(received))) co_return;
    while (!conn->closed()) {
        changed.expires_at(steady::time_point::max());
        co_await changed.async_wait(tok);
    }
    conn->on_change(nullptr);
    conn->on_new_stream(nullptr);
}

asio::awaitable<void> session(tcp::socket socket, const handler& h) {
    // The first bytes say which protocol: the HTTP/2 preface, or HTTP/1.x.
    beast::flat_buffer buffer;
    {
        asio::steady_timer first_byte(socket.get_executor(), idle_timeout);
        first_byte.async_wait([&](const beast::error_code& ec) {
            if (!ec) socket.cancel();
        });
        while (buffer.size() < h2_preface.size()) {
            auto [ec, n] = co_await socket.async_read_some(buffer.prepare(8192), tok);
            if (ec) co_return;
            buffer.commit(n);
            const std::string_view got(static_cast<const char*>(buffer.data().data()), buffer.size());
            if (got.substr(0, h2_preface.size()) != h2_preface.substr(0, std::min(got.size(), h2_preface.size())))
                break;
        }
        first_byte.cancel();
    }
    const std::string_view got(static_cast<const char*>(buffer.data().data()), buffer.size());
    if (got.substr(0, h2_preface.size()) == h2_preface) {
        co_await h2_session(std::move(socket), h, std::string(got));
        co_return;
    }
    auto c = std::make_shared<connection>(std::move(socket));
    asio::co_spawn(c->socket.get_executor(), watchdog(c), asio::detached);
    try {
        co_await serve(*c, h, std::move(buffer));
    } catch (...) {
        c->done = true;
        c->watchdog_timer.cancel();
        throw;
    }
    c->done = true;
    c->watchdog_timer.cancel();
}

void report_exception(std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        std::cerr << "example_backend: connection failed: " << ex.what() << '\n';
    } catch (...) {
        std::cerr << "example_backend: connection failed\n";
    }
}

// One acceptor (on the first context) hands connections to the worker contexts
// round-robin; each connection then lives on its context's thread only.
asio::awaitable<void> accept_loop(tcp::acceptor& acceptor,
                                  const std::vector<std::unique_ptr<asio::io_context>>& contexts,
                                  const handler& h) {
    asio::steady_timer backoff(acceptor.get_executor());
    std::size_t next = 0;
    for (;;) {
        asio::io_context& ctx = *contexts[next];
        auto [ec, accepted] = co_await acceptor.async_accept(ctx, tok);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
            // EMFILE and friends: do not spin.
            std::cerr << "example_backend: accept: " << ec.message() << '\n';
            backoff.expires_after(50ms);
            co_await backoff.async_wait(tok);
            continue;
        }
        next = (next + 1) % contexts.size();
        tcp::socket socket(std::move(accepted));
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        asio::co_spawn(ctx, session(std::move(socket), h), report_exception);
    }
}

// ---------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------

std::optional<tcp::endpoint> parse_listen(const std::string& text) {
    std::string host;
    std::string port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string::npos) return std::nullopt;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    const auto p = parse_u64(port);
    if (!p || *p > 65535) return std::nullopt;
    beast::error_code ec;
    const auto addr = asio::ip::make_address(host, ec);
    if (ec) return std::nullopt;
    return tcp::endpoint(addr, static_cast<std::uint16_t>(*p));
}

std::unique_ptr<tcp::acceptor> open_acceptor(asio::io_context& ioc, const tcp::endpoint& ep) {
    auto acceptor = std::make_unique<tcp::acceptor>(ioc);
    acceptor->open(ep.protocol());
    acceptor->set_option(asio::socket_base::reuse_address(true));
    acceptor->bind(ep);
    acceptor->listen(asio::socket_base::max_listen_connections);
    return acceptor;
}

std::string endpoint_text(const tcp::endpoint& ep) {
    const auto addr = ep.address();
    if (addr.is_v6()) return "[" + addr.to_string() + "]:" + std::to_string(ep.port());
    return addr.to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

int main(int argc, char** argv) {
    std::string listen;
    unsigned threads = 1;

    po::options_description desc(
        "example_backend: the bundled legacy REST backend (demo and benchmark)\n\nOptions");
    desc.add_options()
        ("help,h", "show this help")
        ("listen,l", po::value(&listen)->default_value("127.0.0.1:9100"),
         "address to listen on, IP:PORT or [IPv6]:PORT; port 0 picks a free port")
        ("threads,t", po::value(&threads)->default_value(1),
         "event-loop threads; connections are spread over them round-robin (0: one per core)");

    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "example_backend: " << e.what() << "\n\n" << desc << '\n';
        return 2;
    }
    if (vm.count("help")) {
        std::cout << desc << "\n"
                     "Endpoints:\n"
                     "  GET|PUT|DELETE /users/N   in-memory users (1 Grace, 2 Ada, 3 Linus)\n"
                     "  GET|DELETE     /items/N   DELETE always answers 204\n"
                     "  *              /slow/MS   200 after MS milliseconds (max 60000)\n"
                     "  *              /echo/...  200 with the request as JSON\n"
                     "  GET            /healthz   200 ok\n";
        return 0;
    }
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    if (threads > 256) {
        std::cerr << "example_backend: --threads must be at most 256\n";
        return 2;
    }
    const auto endpoint = parse_listen(listen);
    if (!endpoint) {
        std::cerr << "example_backend: --listen: expected IP:PORT, got '" << listen << "'\n";
        return 2;
    }

    user_store store;
    store.put(1, R"({"id":1,"name":"Grace"})");
    store.put(2, R"({"id":2,"name":"Ada"})");
    store.put(3, R"({"id":3,"name":"Linus"})");
    const handler h(store);

    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (unsigned i = 0; i < threads; ++i)
        contexts.push_back(std::make_unique<asio::io_context>(1));

    std::unique_ptr<tcp::acceptor> acceptor;
    tcp::endpoint bound;
    try {
        acceptor = open_acceptor(*contexts[0], *endpoint);
        bound = acceptor->local_endpoint();
    } catch (const boost::system::system_error& e) {
        std::cerr << "example_backend: cannot listen on " << listen << ": " << e.code().message()
                  << '\n';
        return 1;
    }
    asio::co_spawn(*contexts[0], accept_loop(*acceptor, contexts, h), report_exception);

    asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
    signals.async_wait([&](const beast::error_code& ec, int) {
        if (ec) return;
        for (auto& ctx : contexts) ctx->stop();
    });

    std::cout << "listening on " << endpoint_text(bound) << std::endl;

    // Worker contexts have no I/O of their own until a connection arrives.
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
    for (auto& ctx : contexts) keep_running.push_back(asio::make_work_guard(*ctx));

    std::vector<std::thread> workers;
    for (unsigned i = 1; i < threads; ++i)
        workers.emplace_back([&ctx = *contexts[i]] { ctx.run(); });
    contexts[0]->run();
    for (auto& ctx : contexts) ctx->stop();
    for (auto& t : workers) t.join();
    // Destruction in reverse order: signals and the acceptor before the
    // contexts (which destroy the pending connections), the store last.
    return 0;
}
