#include "proxy/ops/admin.hpp"

#include "proxy/core/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <list>
#include <stdexcept>
#include <string>
#include <string_view>

namespace batchgate {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view text_content_type = "text/plain; charset=utf-8";

void report_exception(std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "batchgate: admin connection aborted by exception: %s\n", ex.what());
    } catch (...) {
        std::fprintf(stderr, "batchgate: admin connection aborted by an unknown exception\n");
    }
}

bool is_http_error(const error_code& ec) {
    static const auto& category = http::make_error_code(http::error::end_of_stream).category();
    return ec.category() == category;
}

using response = http::response<http::string_body>;

response make_response(http::status status, unsigned version, std::string body,
                       std::string_view content_type = text_content_type) {
    response res(status, version);
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

}  // namespace

struct detail::admin_state {
    admin_state(asio::io_context& ctx, std::function<bool()> r) : context(ctx), acceptor(ctx), ready(std::move(r)) {}

    asio::io_context& context;
    tcp::acceptor acceptor;
    tcp::endpoint endpoint;  // cached: local_endpoint() is called from other threads
    std::function<bool()> ready;

    // Below: the context's thread only.
    bool stopped = false;
    std::size_t active = 0;                       // spawned connection coroutines not yet finished
    std::list<beast::tcp_stream*> connections;    // the ones that started, for stop()
};

namespace {

using state_ptr = std::shared_ptr<detail::admin_state>;

response handle(detail::admin_state& st, const http::request<http::string_body>& req) {
    std::string_view target = req.target();
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    const bool head = req.method() == http::verb::head;
    const bool get = req.method() == http::verb::get;
    const unsigned version = req.version();

    response res;
    if (target != "/metrics" && target != "/healthz" && target != "/readyz") {
        res = make_response(http::status::not_found, version, "not found\n");
    } else if (!get && !head) {
        res = make_response(http::status::method_not_allowed, version, "method not allowed\n");
        res.set(http::field::allow, "GET, HEAD");
    } else if (target == "/metrics") {
        res = make_response(http::status::ok, version, metrics_registry::global().render(), metrics_content_type);
    } else if (target == "/healthz") {
        res = make_response(http::status::ok, version, "ok\n");
    } else if (st.ready && st.ready()) {
        res = make_response(http::status::ok, version, "ready\n");
    } else {
        res = make_response(http::status::service_unavailable, version, "draining\n");
    }
    // HEAD: the same head, Content-Length included, without the body.
    if (head) res.body().clear();
    return res;
}

// Registers a running connection for stop() for the life of the guard.
class connection_registration {
public:
    connection_registration(std::list<beast::tcp_stream*>& list, beast::tcp_stream* s)
        : list_(list), it_(list.insert(list.end(), s)) {}
    ~connection_registration() { list_.erase(it_); }
    connection_registration(const connection_registration&) = delete;
    connection_registration& operator=(const connection_registration&) = delete;

private:
    std::list<beast::tcp_stream*>& list_;
    std::list<beast::tcp_stream*>::iterator it_;
};

asio::awaitable<void> serve(state_ptr st, beast::tcp_stream stream) {
    if (st->stopped) co_return;
    connection_registration registration(st->connections, &stream);
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(admin_server::max_header_bytes));
        parser.body_limit(0);
        stream.expires_after(admin_server::io_timeout);
        auto [read_ec, read_bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
        (void)read_bytes;
        if (st->stopped) break;

        response res;
        bool close = false;
        if (read_ec) {
            // Socket errors, the deadline, the client closing (between or
            // inside a request): nothing to answer.
            if (!is_http_error(read_ec) || read_ec == http::error::end_of_stream ||
                read_ec == http::error::partial_message)
                break;
            if (read_ec == http::error::body_limit)
                res = make_response(http::status::payload_too_large, 11, "request bodies are not accepted\n");
            else if (read_ec == http::error::header_limit)
                res = make_response(http::status::request_header_fields_too_large, 11, "request head too large\n");
            else
                res = make_response(http::status::bad_request, 11, "bad request\n");
            close = true;
        } else {
            try {
                res = handle(*st, parser.get());
            } catch (const std::exception& e) {
                std::fprintf(stderr, "batchgate: admin request failed: %s\n", e.what());
                res = make_response(http::status::internal_server_error, parser.get().version(), "internal error\n");
            }
            close = !parser.get().keep_alive();
        }
        res.keep_alive(!close);

        stream.expires_after(admin_server::io_timeout);
        auto [write_ec, write_bytes] = co_await http::async_write(stream, res, use_tuple);
        (void)write_bytes;
        if (write_ec || close || st->stopped) break;
    }
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.close();
}

asio::awaitable<void> accept_loop(state_ptr st) {
    for (;;) {
        auto [ec, socket] = co_await st->acceptor.async_accept(use_tuple);
        if (st->stopped || !st->acceptor.is_open()) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            // Out of descriptors or similar: back off instead of spinning.
            asio::steady_timer pause(st->context, std::chrono::milliseconds(50));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        if (st->active >= admin_server::max_connections) {
            error_code ignored;
            socket.close(ignored);
            continue;
        }
        ++st->active;
        asio::co_spawn(st->context, serve(st, beast::tcp_stream(std::move(socket))),
                       [st](std::exception_ptr e) {
                           --st->active;
                           report_exception(e);
                       });
    }
}

}  // namespace

admin_server::admin_server(asio::io_context& context, const host_port& address, std::function<bool()> ready)
    : state_(std::make_shared<detail::admin_state>(context, std::move(ready))) {
    try {
        const tcp::endpoint endpoint(asio::ip::make_address(address.host), address.port);
        state_->acceptor.open(endpoint.protocol());
        state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
        state_->acceptor.bind(endpoint);
        state_->acceptor.listen(asio::socket_base::max_listen_connections);
        state_->endpoint = state_->acceptor.local_endpoint();
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot listen on " + address.text() + ": " + e.code().message());
    }
}

admin_server::~admin_server() { stop(); }

tcp::endpoint admin_server::local_endpoint() const { return state_->endpoint; }

void admin_server::start() { asio::co_spawn(state_->context, accept_loop(state_), report_exception); }

void admin_server::stop() {
    asio::post(state_->context, [st = state_] {
        if (st->stopped) return;
        st->stopped = true;
        error_code ignored;
        st->acceptor.close(ignored);
        for (auto* s : st->connections) {
            s->cancel();
            s->socket().close(ignored);
        }
    });
}

}  // namespace batchgate
