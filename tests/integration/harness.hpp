// The real server on 127.0.0.1:0 with a YAML config, plus blocking clients
// with receive timeouts so a broken proxy fails a test instead of hanging it.
#pragma once

#include "proxy/config.hpp"
#include "proxy/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <memory>
#include <string>
#include <thread>

namespace batchgate::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
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

// One client connection. Reads time out after `timeout_ms` (the test then fails).
class client {
public:
    explicit client(std::uint16_t port, int timeout_ms = 10000) : socket_(io_) {
        socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }

    http::response<http::string_body> request(http::request<http::string_body> req) {
        if (req[http::field::host].empty()) req.set(http::field::host, "batchgate.test");
        req.prepare_payload();
        http::write(socket_, req);
        return read_response(req.method() == http::verb::head);
    }

    http::response<http::string_body> read_response(bool head = false) {
        http::response_parser<http::string_body> parser;
        parser.body_limit(512 * 1024 * 1024);
        parser.skip(head);
        http::read(socket_, buffer_, parser);
        return parser.release();
    }

    void send_raw(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }

    // Everything until the server closes (or the read timeout passes).
    std::string read_until_close() {
        std::string out(static_cast<const char*>(buffer_.data().data()), buffer_.size());
        buffer_.consume(buffer_.size());
        char chunk[4096];
        for (;;) {
            boost::system::error_code ec;
            auto n = socket_.read_some(asio::buffer(chunk), ec);
            out.append(chunk, n);
            if (ec) break;
        }
        return out;
    }

    // True when the server closed the connection (EOF or reset) before `timeout_ms`.
    bool closed_by_server() {
        char byte;
        boost::system::error_code ec;
        socket_.read_some(asio::buffer(&byte, 1), ec);
        return ec == asio::error::eof || ec == asio::error::connection_reset;
    }

    tcp::socket& socket() { return socket_; }

private:
    asio::io_context io_;
    tcp::socket socket_;
    beast::flat_buffer buffer_;
};

inline http::request<http::string_body> make_request(http::verb method, std::string target, std::string body = {}) {
    http::request<http::string_body> req{method, target, 11};
    req.body() = std::move(body);
    return req;
}

// Polls `condition` for up to two seconds: for counters updated by another
// thread (a backend's accept loop runs after the connect completes).
template <class Condition>
bool eventually(Condition condition) {
    for (int i = 0; i < 200; ++i) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return condition();
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
