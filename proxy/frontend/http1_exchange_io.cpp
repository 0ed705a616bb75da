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

#include <array>
#include <cerrno>
#include <charconv>
#include <string_view>
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

bool http1_response_sink::decide_keep_alive(bool framed) {
    // An unread request body cannot be told apart from the next request; a
    // drain that began meanwhile ends the connection after this answer.
    keep_alive_ = keep_alive_ && framed && body_.done() && !*draining_;
    return keep_alive_;
}

// The head is serialized by hand and written with the first body bytes (one
// write, not two), the body framed here: Beast's serializer cost more than
// the rest of a pass-through exchange. The values come from a parsed backend
// answer (Beast's parser refuses CR and LF in them) and from
// build_forwarded_response_headers.
asio::awaitable<bool> http1_response_sink::send_head(response_head head) {
    const bool http11 = version_ >= 11;
    head_.clear();
    head_.append(http11 ? "HTTP/1.1 " : "HTTP/1.0 ");
    std::array<char, 10> status{};
    const auto printed = std::to_chars(status.data(), status.data() + status.size(), head.status);
    head_.append(status.data(), printed.ptr).append(" ");
    head_.append(head.reason.empty() ? std::string_view(http::obsolete_reason(static_cast<http::status>(head.status)))
                                     : head.reason);
    head_.append("\r\n");
    for (const auto& f : head.headers) head_.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
    bool framed = true;
    chunked_ = false;
    if (head.content_length) {
        // HEAD and 304 keep the backend's Content-Length: it describes the representation.
        head_.append("Content-Length: ").append(std::to_string(*head.content_length)).append("\r\n");
    } else if (head.no_body) {
    } else if (http11) {
        head_.append("Transfer-Encoding: chunked\r\n");
        chunked_ = true;
    } else {
        framed = false;  // HTTP/1.0 client: the body ends when we close
    }
    const bool keep_alive = decide_keep_alive(framed);
    if (http11 && !keep_alive) head_.append("Connection: close\r\n");
    if (!http11 && keep_alive) head_.append("Connection: keep-alive\r\n");
    head_.append("\r\n");
    status_ = head.status;
    head_written_ = false;
    finished_ = false;
    if (!head.no_body) co_return true;  // the head goes out with the first body bytes
    finished_ = true;
    head_written_ = true;
    client_.expires_after(send_timeout_);
    auto [ec, n] = co_await asio::async_write(client_, asio::buffer(head_), use_tuple);
    co_return written(ec);
}

asio::awaitable<bool> http1_response_sink::send_data(std::span<const char> bytes, bool last) {
    if (status_ == 0 || !complete_) co_return false;
    if (finished_) co_return true;
    if (bytes.empty() && !last && head_written_) co_return true;
    std::array<char, 20> size_line{};
    std::size_t size_line_length = 0;
    if (chunked_ && !bytes.empty()) {
        auto r = std::to_chars(size_line.data(), size_line.data() + size_line.size() - 2, bytes.size(), 16);
        *r.ptr++ = '\r';
        *r.ptr++ = '\n';
        size_line_length = static_cast<std::size_t>(r.ptr - size_line.data());
    }
    static constexpr std::string_view chunk_end = "\r\n";
    static constexpr std::string_view last_chunk = "0\r\n\r\n";
    const std::array<asio::const_buffer, 5> wire{
        head_written_ ? asio::const_buffer() : asio::buffer(head_),
        asio::buffer(size_line.data(), size_line_length),
        asio::buffer(bytes.data(), bytes.size()),
        asio::buffer(chunk_end.data(), size_line_length != 0 ? chunk_end.size() : 0),
        asio::buffer(last_chunk.data(), chunked_ && last ? last_chunk.size() : 0),
    };
    head_written_ = true;
    finished_ = last;
    bytes_ += bytes.size();
    if (asio::buffer_size(wire) == 0) co_return true;
    client_.expires_after(send_timeout_);
    auto [ec, n] = co_await asio::async_write(client_, wire, use_tuple);
    co_return written(ec);
}

asio::awaitable<bool> http1_response_sink::send_answer(response_head head, std::string body) {
    http::response<http::string_body> res{static_cast<http::status>(head.status), version_ >= 11 ? 11u : 10u};
    copy_fields(head.headers, res);
    res.body() = std::move(body);
    res.prepare_payload();
    res.keep_alive(decide_keep_alive(true));
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
