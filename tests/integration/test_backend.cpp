#include "tests/integration/test_backend.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace batchgate::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

reply echo(const request_type& req) {
    reply r;
    r.response.set(http::field::content_type, "text/plain");
    r.response.set("X-Echo-Method", req.method_string());
    r.response.set("X-Echo-Target", req.target());
    r.response.body() = std::string(req.method_string()) + " " + std::string(req.target()) + "\n" + req.body();
    return r;
}

test_backend::test_backend(handler h) : handler_(std::move(h)), io_(1), acceptor_(io_) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(
        io_,
        [this]() -> asio::awaitable<void> {
            for (;;) {
                auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
                if (ec) co_return;
                ++connections_;
                run_connection(std::move(socket));
            }
        },
        asio::detached);
    thread_ = std::thread([this] { io_.run(); });
}

test_backend::~test_backend() {
    io_.stop();
    thread_.join();
}

std::vector<request_type> test_backend::received() const {
    std::lock_guard lock(mutex_);
    return received_;
}

void test_backend::run_connection(tcp::socket socket) {
    asio::co_spawn(
        io_,
        [this, socket = std::move(socket)]() mutable -> asio::awaitable<void> {
            boost::beast::flat_buffer buffer;
            for (;;) {
                http::request_parser<http::string_body> parser;
                parser.body_limit(256 * 1024 * 1024);
                auto [ec, n] = co_await http::async_read(socket, buffer, parser, use_tuple);
                if (ec) co_return;
                auto req = parser.release();
                {
                    std::lock_guard lock(mutex_);
                    received_.push_back(req);
                }
                ++requests_;
                int now = ++concurrent_;
                for (int seen = max_concurrent_.load(); now > seen && !max_concurrent_.compare_exchange_weak(seen, now);) {
                }
                reply r = handler_(req);
                if (r.delay.count() > 0) {
                    asio::steady_timer t(socket.get_executor(), r.delay);
                    co_await t.async_wait(use_tuple);
                }
                while (r.hold && !r.hold()) {
                    asio::steady_timer t(socket.get_executor(), std::chrono::milliseconds(2));
                    co_await t.async_wait(use_tuple);
                }
                --concurrent_;
                boost::system::error_code ignored;
                switch (r.act) {
                case misbehaviour::silent: {
                    // Hold the connection open until the peer gives up.
                    char byte;
                    co_await socket.async_read_some(asio::buffer(&byte, 1), use_tuple);
                    co_return;
                }
                case misbehaviour::reset:
                    socket.set_option(asio::socket_base::linger(true, 0), ignored);
                    socket.close(ignored);
                    co_return;
                case misbehaviour::close_early:
                    socket.shutdown(tcp::socket::shutdown_both, ignored);
                    socket.close(ignored);
                    co_return;
                case misbehaviour::garbage: {
                    static constexpr std::string_view junk = "this is not http\r\n\r\n";
                    co_await asio::async_write(socket, asio::buffer(junk), use_tuple);
                    socket.close(ignored);
                    co_return;
                }
                case misbehaviour::switch_protocols: {
                    static constexpr std::string_view up =
                        "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n";
                    co_await asio::async_write(socket, asio::buffer(up), use_tuple);
                    continue;
                }
                case misbehaviour::interim_then_ok: {
                    static constexpr std::string_view interim =
                        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n";
                    co_await asio::async_write(socket, asio::buffer(interim), use_tuple);
                    break;
                }
                case misbehaviour::none: break;
                }
                r.response.version(11);
                if (req.method() == http::verb::head) {
                    r.response.keep_alive(req.keep_alive() && !r.close_after);
                    http::response_serializer<http::string_body> sr{r.response};
                    if (r.response[http::field::content_length].empty())
                        r.response.set(http::field::content_length, std::to_string(r.response.body().size()));
                    auto [wec, wn] = co_await http::async_write_header(socket, sr, use_tuple);
                    if (wec) co_return;
                } else {
                    if (!r.response.chunked()) r.response.prepare_payload();
                    r.response.keep_alive(req.keep_alive() && !r.close_after);
                    auto [wec, wn] = co_await http::async_write(socket, r.response, use_tuple);
                    if (wec) co_return;
                }
                if (r.fin_after) {
                    socket.shutdown(tcp::socket::shutdown_send, ignored);
                    ++fins_sent_;
                    http::request_parser<http::string_body> late;
                    auto [lec, ln] = co_await http::async_read(socket, buffer, late, use_tuple);
                    if (!lec) ++late_requests_;
                    co_return;
                }
                if (r.close_silently) {
                    socket.close(ignored);
                    co_return;
                }
                if (r.close_after || !req.keep_alive()) {
                    socket.shutdown(tcp::socket::shutdown_send, ignored);
                    co_return;
                }
            }
        },
        asio::detached);
}

}  // namespace batchgate::test
