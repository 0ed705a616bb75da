// Reading an HTTP/1.1 backend answer up to its final head, for batch items
// (http1_client) and pass-through (http1_forwarder) alike: interim heads are
// consumed and the rules of response_heads decide what each head means. The
// caller sets the stream's expiry first (one budget for every head) and
// reads the body with the same parser afterwards.
#pragma once

#include "proxy/backend/response_head.hpp"
#include "proxy/core/byte_stream.hpp"
#include "proxy/core/http_semantics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/optional.hpp>

#include <cstdint>
#include <optional>

namespace batchgate {

struct http1_head_limits {
    std::uint32_t header_bytes = 0;
    boost::optional<std::uint64_t> body_bytes;  // none: the caller streams the body
    bool head_request = false;                   // the answer has no body whatever it says
};

struct http1_head_read {
    error_code ec;                       // reading failed (timeout, reset, a parse error)
    head_kind kind = head_kind::final;   // when !ec: final, or why the exchange fails
    bool nothing_received = false;       // the backend closed before sending a byte
};

template <class Body>
asio::awaitable<http1_head_read> read_http1_final_head(byte_stream& stream, beast::flat_buffer& buffer,
                                                       std::optional<boost::beast::http::response_parser<Body>>& parser,
                                                       const http1_head_limits& limits) {
    http1_head_read out;
    response_heads heads;
    for (bool first = true;; first = false) {
        parser.emplace();
        parser->header_limit(limits.header_bytes);
        parser->body_limit(limits.body_bytes);
        if (limits.head_request) parser->skip(true);
        auto [ec, n] = co_await boost::beast::http::async_read_header(stream, buffer, *parser,
                                                                      asio::as_tuple(asio::use_awaitable));
        if (ec) {
            out.ec = ec;
            out.nothing_received = first && !parser->got_some() && is_connection_loss(ec);
            co_return out;
        }
        out.kind = heads.on_status(parser->get().result_int());
        if (out.kind != head_kind::interim) co_return out;
    }
}

}  // namespace batchgate
