// Streaming one HTTP/1.1 message body from one connection to another
// through a fixed buffer, so a 1 GiB upload or download costs one chunk of
// memory, not 1 GiB. The read side's framing (Content-Length, chunked, or
// close-delimited) is decoded by the parser; the write side's framing is
// whatever the outgoing message's fields say.
#pragma once

#include "proxy/config.hpp"
#include "proxy/read_deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <span>

namespace batchgate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

inline constexpr std::size_t relay_chunk_bytes = 32 * 1024;

enum class relay_side { none, read, write };

struct relay_status {
    relay_side failed = relay_side::none;
    error_code ec;
    std::uint64_t bytes = 0;
    explicit operator bool() const { return failed == relay_side::none; }
};

// `chunk` is the caller's (one per client connection, reused by every
// relay on it: a coroutine-frame array would cost a 32 KiB allocation each).
// Reads wait at most `read_timeout` each (the connection stays open, so a
// client can still be told 408); writes at most `write_timeout` each.
// Writes `out`'s header (if not yet written) and then every body byte that
// `in` yields, until both the parser and the serializer are done.
// (`From` and `To` are beast::tcp_stream or byte_stream: a backend
// connection may be TLS.)
template <bool isRequest, class From, class To>
asio::awaitable<relay_status> relay_body(From& from, beast::flat_buffer& from_buffer,
                                         http::parser<isRequest, http::buffer_body>& in,
                                         duration read_timeout, To& to,
                                         http::message<isRequest, http::buffer_body>& out,
                                         http::serializer<isRequest, http::buffer_body>& sr,
                                         duration write_timeout, std::span<char> chunk) {
    constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
    relay_status status;
    read_deadline deadline(from.socket());
    do {
        if (!in.is_done()) {
            in.get().body().data = chunk.data();
            in.get().body().size = chunk.size();
            deadline.arm(read_timeout);
            auto [ec, n] = co_await http::async_read(from, from_buffer, in, use_tuple);
            if (deadline.disarm()) ec = beast::error::timeout;
            if (ec == http::error::need_buffer) ec = {};
            if (ec) {
                status.failed = relay_side::read;
                status.ec = ec;
                co_return status;
            }
            const std::size_t got = chunk.size() - in.get().body().size;
            status.bytes += got;
            out.body().data = got ? chunk.data() : nullptr;
            out.body().size = got;
            out.body().more = !in.is_done();
        } else {
            out.body().data = nullptr;
            out.body().size = 0;
            out.body().more = false;
        }
        to.expires_after(write_timeout);
        auto [ec, n] = co_await http::async_write(to, sr, use_tuple);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
            status.failed = relay_side::write;
            status.ec = ec;
            co_return status;
        }
    } while (!in.is_done() || !sr.is_done());
    to.expires_never();
    co_return status;
}

}  // namespace batchgate
