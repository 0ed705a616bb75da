// A connection's byte stream, cleartext or TLS, behind one type, so the
// HTTP/1.1 and HTTP/2 code above it is written once. It models Asio's
// AsyncReadStream/AsyncWriteStream (Beast's http::async_read/async_write and
// asio::async_write accept it); timeouts, the socket and cancellation always
// act on the TCP layer underneath.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <string_view>
#include <variant>

namespace batchgate {

namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

class byte_stream {
public:
    using tls_stream = beast::ssl_stream<beast::tcp_stream>;
    using executor_type = beast::tcp_stream::executor_type;

    explicit byte_stream(beast::tcp_stream plain) : stream_(std::move(plain)) {}
    // Builds the TCP layer in place: moving a beast::tcp_stream allocates a
    // new implementation, and the moved-from one lives as long as its owner.
    explicit byte_stream(asio::ip::tcp::socket socket)
        : stream_(std::in_place_type<beast::tcp_stream>, std::move(socket)) {}
    explicit byte_stream(tls_stream tls) : stream_(std::move(tls)) {}
    byte_stream(byte_stream&&) = default;
    byte_stream& operator=(byte_stream&&) = default;

    executor_type get_executor() { return tcp().get_executor(); }

    bool is_tls() const { return std::holds_alternative<tls_stream>(stream_); }
    tls_stream* tls() { return std::get_if<tls_stream>(&stream_); }

    // The TCP layer: Beast's per-operation timeouts, the socket, cancel().
    beast::tcp_stream& tcp() {
        if (auto* plain = std::get_if<beast::tcp_stream>(&stream_)) return *plain;
        return std::get<tls_stream>(stream_).next_layer();
    }
    asio::ip::tcp::socket& socket() { return tcp().socket(); }
    template <class Duration>
    void expires_after(Duration d) { tcp().expires_after(d); }
    void expires_never() { tcp().expires_never(); }
    void cancel() { tcp().cancel(); }

    // Closes the TCP connection at once (no TLS close_notify: the protocols
    // above end their messages themselves, and a peer that wants the alert
    // would make shutdown wait on it).
    void close() {
        error_code ignored;
        socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        socket().close(ignored);
    }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, const MutableBuffers& b) {
                if (auto* plain = std::get_if<beast::tcp_stream>(&stream_))
                    plain->async_read_some(b, std::move(handler));
                else
                    std::get<tls_stream>(stream_).async_read_some(b, std::move(handler));
            },
            token, buffers);
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, const ConstBuffers& b) {
                if (auto* plain = std::get_if<beast::tcp_stream>(&stream_))
                    plain->async_write_some(b, std::move(handler));
                else
                    std::get<tls_stream>(stream_).async_write_some(b, std::move(handler));
            },
            token, buffers);
    }

private:
    std::variant<beast::tcp_stream, tls_stream> stream_;
};

// ALPN protocol the TLS handshake settled on ("h2", "http/1.1"), or "" when
// none was negotiated or the stream is cleartext.
std::string_view negotiated_alpn(byte_stream& stream);

}  // namespace batchgate
