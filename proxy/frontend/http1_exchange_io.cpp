#include "proxy/frontend/http1_exchange_io.hpp"

#include "proxy/core/http_semantics.hpp"
#include "proxy/core/metrics.hpp"
#include "proxy/frontend/read_deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cerrno>
#include <sys/socket.h>

namespace batchgate {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using tcp = asio::ip::tcp;

// Watches the client socket while a long answer is prepared: the client
// closing its side cancels the scope. Bytes from a pipelining client mean it
// is alive; watching stops there. The callback may outlive the watch, so it
// holds its state by shared_ptr and does nothing once `active` is false.
class disconnect_watch {
public:
    disconnect_watch(tcp::socket& socket, cancel_scope& scope) : state_(std::make_shared<state>()) {
        state_->socket = &socket;
        state_->scope = &scope;
        socket.async_wait(tcp::socket::wait_read, [st = state_](const error_code& ec) {
            if (ec || !st->active) return;
            char byte;
            auto n = ::recv(st->socket->native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                st->scope->cancel(cancel_reason::client_gone);
        });
    }
    ~disconnect_watch() {
        state_->active = false;
        error_code ignored;
        state_->socket->cancel(ignored);
    }
    disconnect_watch(const disconnect_watch&) = delete;
    disconnect_watch& operator=(const disconnect_watch&) = delete;

private:
    struct state {
        tcp::socket* socket = nullptr;
        cancel_scope* scope = nullptr;
        bool active = true;
    };
    std::shared_ptr<state> state_;
};

void copy_fields(const http::fields& from, http::fields& to) {
    for (const auto& f : from) to.insert(f.name_string(), f.value());
}

}  // namespace

asio::awaitable<body_read> http1_body_source::read(std::span<char> into) {
    body_read r;
    if (failed_) {
        r.error = body_error::client_gone;
        co_return r;
    }
    if (parser_.is_done()) {
        r.done = true;
        co_return r;
    }
    auto& body = parser_.get().body();
    body.data = into.data();
    body.size = into.size();
    read_deadline deadline(client_.socket());
    deadline.arm(read_timeout_);
    auto [ec, n] = co_await http::async_read(client_, buffer_, parser_, use_tuple);
    if (deadline.disarm()) ec = beast::error::timeout;
    if (ec == http::error::need_buffer) ec = {};
    r.bytes = into.size() - body.size;
    r.done = parser_.is_done();
    if (!ec) co_return r;
    failed_ = true;
    if (ec == beast::error::timeout)
        r.error = body_error::timeout;
    else if (ec == http::error::body_limit)
        r.error = body_error::too_large;
    else if (is_connection_loss(ec) || ec == http::error::partial_message)
        r.error = body_error::client_gone;
    else {
        r.error = body_error::malformed;
        r.detail = ec.message();
    }
    co_return r;
}

asio::awaitable<bool> http1_response_sink::send_continue() {
    static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
    if (continue_sent_ || version_ < 11) co_return true;
    continue_sent_ = true;
    client_.expires_after(send_timeout_);
    auto [ec, n] = co_await asio::async_write(client_, asio::buffer(continue_line), use_tuple);
    co_return written(ec);
}

bool http1_response_sink::written(boost::system::error_code ec) {
    if (!ec) return true;
    if (ec == beast::error::timeout) metrics_registry::global().limit_breached(limit_kind::send_timeout);
    complete_ = false;
    return false;
}

bool http1_response_sink::decide_keep_alive(http::fields&, bool framed) {
    // An unread request body cannot be told apart from the next request; a
    // drain that began meanwhile ends the connection after this answer.
    keep_alive_ = keep_alive_ && framed && body_.done() && !*draining_;
    return keep_alive_;
}

asio::awaitable<bool> http1_response_sink::send_head(response_head head) {
    out_.emplace();
    auto& out = *out_;
    out.result(head.status);
    if (!head.reason.empty()) out.reason(head.reason);
    out.version(version_ >= 11 ? 11 : 10);
    copy_fields(head.headers, out);
    bool framed = true;
    if (head.no_body) {
        // HEAD and 304 keep the backend's Content-Length: it describes the representation.
        if (head.content_length) out.set(http::field::content_length, std::to_string(*head.content_length));
    } else if (head.content_length) {
        out.content_length(*head.content_length);
    } else if (version_ >= 11) {
        out.chunked(true);
    } else {
        framed = false;  // HTTP/1.0 client: the body ends when we close
    }
    out.keep_alive(decide_keep_alive(out, framed));
    status_ = head.status;
    serializer_.emplace(out);
    if (!head.no_body) co_return true;  // the head goes out with the first body bytes: one write, not two
    client_.expires_after(send_timeout_);
    auto [ec, n] = co_await http::async_write_header(client_, *serializer_, use_tuple);
    co_return written(ec);
}

asio::awaitable<bool> http1_response_sink::send_data(std::span<const char> bytes, bool last) {
    if (!serializer_ || !complete_) co_return false;
    if (serializer_->is_done()) co_return true;
    if (bytes.empty() && !last && serializer_->is_header_done()) co_return true;
    auto& body = out_->body();
    body.data = bytes.empty() ? nullptr : const_cast<char*>(bytes.data());
    body.size = bytes.size();
    body.more = !last;
    client_.expires_after(send_timeout_);
    auto [ec, n] = co_await http::async_write(client_, *serializer_, use_tuple);
    if (ec == http::error::need_buffer) ec = {};
    bytes_ += bytes.size();
    co_return written(ec);
}

asio::awaitable<bool> http1_response_sink::send_answer(response_head head, std::string body) {
    http::response<http::string_body> res{static_cast<http::status>(head.status), version_ >= 11 ? 11u : 10u};
    copy_fields(head.headers, res);
    res.body() = std::move(body);
    res.prepare_payload();
    res.keep_alive(decide_keep_alive(res, true));
    status_ = head.status;
    bytes_ += res.body().size();
    client_.expires_after(send_timeout_);
    auto [ec, n] = co_await http::async_write(client_, res, use_tuple);
    co_return written(ec);
}

std::shared_ptr<void> http1_response_sink::watch_client(cancel_scope& scope) {
    return std::make_shared<disconnect_watch>(client_.socket(), scope);
}

}  // namespace batchgate
