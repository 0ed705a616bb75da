// The HTTP/1.1 client side of an exchange (proxied_exchange.hpp): the
// request body pulled through Beast's parser (Content-Length, chunked), the
// answer serialized here (status line, headers, body framing), framed as the client can take it
// (Content-Length, chunked, or close-delimited for HTTP/1.0).
#pragma once

#include "proxy/backend/request_scope.hpp"
#include "proxy/config/config.hpp"
#include "proxy/core/byte_stream.hpp"
#include "proxy/core/exchange.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <optional>
#include <string>

namespace batchgate {

// The body buffer of one HTTP/1.1 connection (one request at a time on it):
// what one read from the client or the backend carries.
inline constexpr std::size_t relay_chunk_bytes = 32 * 1024;

class http1_body_source : public request_body_source {
public:
    http1_body_source(byte_stream& client, beast::flat_buffer& buffer,
                      http::request_parser<http::buffer_body>& parser, duration read_timeout)
        : client_(client), buffer_(buffer), parser_(parser), read_timeout_(read_timeout) {}

    asio::awaitable<body_read> read(std::span<char> into) override;
    bool done() const override { return !failed_ && parser_.is_done(); }
    // A failed read leaves bytes on the wire that are not a request.
    bool failed() const { return failed_; }
    // The rest of the connection cannot be trusted (smuggling attempt).
    void abandon() { failed_ = true; }

private:
    byte_stream& client_;
    beast::flat_buffer& buffer_;
    http::request_parser<http::buffer_body>& parser_;
    duration read_timeout_;
    bool failed_ = false;
};

class http1_response_sink : public response_sink {
public:
    // `keep_alive`: the client asked for it and the worker is not draining.
    http1_response_sink(byte_stream& client, const request_body_source& body, unsigned version, bool keep_alive,
                        duration send_timeout, const bool* draining)
        : client_(client), body_(body), version_(version), keep_alive_(keep_alive), send_timeout_(send_timeout),
          draining_(draining) {}

    asio::awaitable<bool> send_continue() override;
    asio::awaitable<bool> send_head(response_head head) override;
    asio::awaitable<bool> send_data(std::span<const char> bytes, bool last) override;
    asio::awaitable<bool> send_answer(response_head head, std::string body) override;
    void abort() override { complete_ = false; }
    std::shared_ptr<void> watch_client(cancel_scope& scope) override;

    // What the client got; keep_alive only when the answer is whole and the
    // request body was read to its end.
    unsigned status() const { return status_; }
    std::uint64_t bytes_sent() const { return bytes_; }
    bool keep_alive() const { return keep_alive_ && complete_ && body_.done(); }
    bool head_sent() const { return status_ != 0; }

private:
    bool decide_keep_alive(bool framed);
    // After a write: false on failure, which ends the answer; a write past
    // limits.send_timeout is also counted as that limit's breach.
    bool written(boost::system::error_code ec);

    byte_stream& client_;
    const request_body_source& body_;
    unsigned version_;
    bool keep_alive_;
    duration send_timeout_;
    const bool* draining_;
    bool complete_ = true;
    bool continue_sent_ = false;
    unsigned status_ = 0;
    std::uint64_t bytes_ = 0;
    std::string head_;           // the serialized head (send_head), written with the first body bytes
    bool head_written_ = false;
    bool chunked_ = false;       // the body is framed as chunks
    bool finished_ = false;      // the last byte (or the no-body head) is out
};

}  // namespace batchgate
