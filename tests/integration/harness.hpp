// The real server on 127.0.0.1:0 with a YAML config, plus clients whose every
// operation has a deadline, so a broken proxy fails a test instead of hanging it.
#pragma once

#include "proxy/config/config.hpp"
#include "proxy/ops/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace batchgate::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

// A minimal config: one listener on port 0, one worker, no access log,
// every path routed to backend "b". Extra YAML is spliced in verbatim.
inline std::string proxy_config(const std::string& backend_address, const std::string& backend_extra = "",
                                const std::string& top_extra = "") {
    return "workers: 1\n"
           "access_log: false\n"
           "listen:\n"
           "  - address: 127.0.0.1:0\n" +
           top_extra +
           "routes:\n"
           "  - prefix: /\n"
           "    backend: b\n"
           "backends:\n"
           "  b:\n"
           "    endpoints: [" +
           backend_address + "]\n" + backend_extra;
}

class running_proxy {
public:
    explicit running_proxy(const std::string& yaml) {
        srv_ = std::make_unique<server>(load_config_string(yaml, "test.yaml"));
        srv_->start();
        port_ = srv_->local_endpoints().at(0).port();
    }
    ~running_proxy() {
        srv_->drain();
        srv_->wait(std::chrono::seconds(5));
    }
    std::uint16_t port() const { return port_; }
    server& get() { return *srv_; }

private:
    std::unique_ptr<server> srv_;
    std::uint16_t port_ = 0;
};

// One client connection whose every connect, read and write has a deadline
// (`timeout_ms`): each runs as an asynchronous operation on the client's own
// io_context for at most that long. (SO_RCVTIMEO is no deadline: Asio's
// synchronous read polls again after EAGAIN, with no limit.) A deadline that
// passes fails the test with what was being waited for, except where the
// caller asks whether something happens in time (`closed_by_server`).
class client {
public:
    explicit client(std::uint16_t port, int timeout_ms = 10000) : socket_(io_), timeout_(timeout_ms) {
        const tcp::endpoint to(asio::ip::make_address("127.0.0.1"), port);
        auto r = bounded([&](auto done) { socket_.async_connect(to, [done](error_code ec) mutable { done(ec, 0); }); });
        require(r, "connect to 127.0.0.1:" + std::to_string(port));
    }

    http::response<http::string_body> request(http::request<http::string_body> req) {
        if (req[http::field::host].empty()) req.set(http::field::host, "batchgate.test");
        req.prepare_payload();
        write_request(req);
        return read_response(req.method() == http::verb::head);
    }

    // The answer, or nothing when the connection fails or the deadline passes
    // (for probing a server that may refuse; the test decides what that means).
    std::optional<http::response<http::string_body>> try_request(http::request<http::string_body>& req) {
        if (req[http::field::host].empty()) req.set(http::field::host, "batchgate.test");
        req.prepare_payload();
        auto w = bounded([&](auto done) { http::async_write(socket_, req, done); });
        if (w.timed_out || w.ec) return std::nullopt;
        http::response_parser<http::string_body> parser;
        auto r = bounded([&](auto done) { http::async_read(socket_, buffer_, parser, done); });
        if (r.timed_out || r.ec) return std::nullopt;
        return parser.release();
    }

    void write_request(http::request<http::string_body>& req) {
        require(bounded([&](auto done) { http::async_write(socket_, req, done); }), "write of a request");
    }

    http::response<http::string_body> read_response(bool head = false) {
        http::response_parser<http::string_body> parser;
        parser.body_limit(512 * 1024 * 1024);
        parser.skip(head);
        auto r = bounded([&](auto done) { http::async_read(socket_, buffer_, parser, done); });
        require(r, "read of a response");
        return parser.release();
    }

    void send_raw(std::string_view bytes) {
        require(bounded([&](auto done) { asio::async_write(socket_, asio::buffer(bytes), done); }), "write");
    }

    // Some bytes (at least one), bounded like every read; what the response
    // parser had buffered ahead comes first.
    std::size_t read_some(asio::mutable_buffer into) {
        if (buffer_.size() != 0) {
            auto n = asio::buffer_copy(into, buffer_.data());
            buffer_.consume(n);
            return n;
        }
        auto r = bounded([&](auto done) { socket_.async_read_some(into, done); });
        require(r, "read");
        return r.bytes;
    }

    // Like read_some, but the server closing (EOF or reset) is an answer: 0.
    std::size_t read_some_or_close(asio::mutable_buffer into) {
        if (buffer_.size() != 0) return read_some(into);
        auto r = bounded([&](auto done) { socket_.async_read_some(into, done); });
        if (r.timed_out) BOOST_FAIL("read timed out after " << timeout_.count() << " ms");
        if (r.ec == asio::error::eof || r.ec == asio::error::connection_reset) return 0;
        require(r, "read");
        return r.bytes;
    }

    // Everything until the server closes; a server that keeps the connection
    // open past the deadline fails the test.
    std::string read_until_close() {
        std::string out(static_cast<const char*>(buffer_.data().data()), buffer_.size());
        buffer_.consume(buffer_.size());
        char chunk[4096];
        for (;;) {
            auto r = bounded([&](auto done) { socket_.async_read_some(asio::buffer(chunk), done); });
            if (r.timed_out) BOOST_FAIL("the server did not close the connection within " << timeout_.count() << " ms");
            out.append(chunk, r.bytes);
            if (r.ec) break;
        }
        return out;
    }

    // True when the server closed the connection (EOF or reset) with nothing
    // more to read, before the deadline.
    bool closed_by_server() {
        if (buffer_.size() != 0) return false;
        char byte;
        auto r = bounded([&](auto done) { socket_.async_read_some(asio::buffer(&byte, 1), done); });
        return !r.timed_out && (r.ec == asio::error::eof || r.ec == asio::error::connection_reset);
    }

    tcp::socket& socket() { return socket_; }

private:
    using error_code = boost::system::error_code;
    struct outcome {
        error_code ec;
        std::size_t bytes = 0;
        bool timed_out = false;
    };

    // Starts one operation (`start(done)`, done(ec, bytes)) and runs it for at
    // most the deadline; past it the socket's operations are cancelled.
    template <class Start>
    outcome bounded(Start start) {
        outcome result;
        bool finished = false;
        start([&result, &finished](error_code ec, std::size_t n) {
            result.ec = ec;
            result.bytes = n;
            finished = true;
        });
        io_.restart();
        io_.run_for(timeout_);
        if (!finished) {
            result.timed_out = true;
            error_code ignored;
            socket_.cancel(ignored);
            io_.restart();
            io_.run();
        }
        return result;
    }

    void require(const outcome& r, const std::string& what) {
        if (r.timed_out) BOOST_FAIL(what << " timed out after " << timeout_.count() << " ms");
        if (r.ec) BOOST_FAIL(what << " failed: " << r.ec.message());
    }

    asio::io_context io_;
    tcp::socket socket_;
    std::chrono::milliseconds timeout_;
    beast::flat_buffer buffer_;
};

inline http::request<http::string_body> make_request(http::verb method, std::string target, std::string body = {}) {
    http::request<http::string_body> req{method, target, 11};
    req.body() = std::move(body);
    return req;
}

// Waits for an observable event (a counter another thread updates, a metric
// reaching a value) by polling `condition` until it holds or `limit` passes.
// The limit is only a hang guard, generous for a loaded 2-core machine; no
// test relies on it passing.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return condition();
}

// The same inside a coroutine: waits (2 ms timer steps, so the io_context
// keeps running) until `condition` holds or `limit` passes.
template <class Condition>
asio::awaitable<bool> eventually_async(Condition condition, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    asio::steady_timer step(co_await asio::this_coro::executor);
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) co_return false;
        step.expires_after(std::chrono::milliseconds(2));
        co_await step.async_wait(asio::use_awaitable);
    }
    co_return true;
}

// Runs `body(executor)` as a coroutine on a fresh io_context until it ends.
template <class F>
void run_coroutine(F body) {
    asio::io_context io;
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await body(io.get_executor());
            done = true;
        },
        asio::detached);
    io.run();
    BOOST_REQUIRE(done);
}

// A port with nothing listening (bound once, then released).
inline std::uint16_t closed_port() {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

}  // namespace batchgate::test
