#include "proxy/backend/http1_client.hpp"

#include "proxy/backend/http1_response_head.hpp"
#include "proxy/core/http_semantics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include <array>
#include <string>

namespace batchgate {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

exchange_error classify(const error_code& ec, const cancel_scope& scope) {
    if (ec == beast::error::timeout) return exchange_error::timeout;
    if (ec == asio::error::operation_aborted)
        return scope.cancelled() ? exchange_error::cancelled : exchange_error::reset;
    if (ec == http::error::body_limit) return exchange_error::too_large;
    if (is_connection_loss(ec)) return exchange_error::reset;
    if (ec.category() == http::make_error_code(http::error::bad_field).category()) return exchange_error::malformed;
    return exchange_error::reset;
}

// Methods whose requests carry a body by definition get Content-Length: 0
// when the item has none, so the backend need not guess.
bool expects_body(std::string_view method) { return method == "POST" || method == "PUT" || method == "PATCH"; }

}  // namespace

asio::awaitable<exchange_outcome> http1_exchange_once(http1_pool& pool, const item_request& request,
                                                      const client_info& client, std::uint64_t max_response_bytes,
                                                      duration timeout, cancel_scope& scope, std::size_t avoid) {
    exchange_outcome out;
    if (scope.cancelled()) {
        out.error = exchange_error::cancelled;
        co_return out;
    }
    acquire_result got;
    if (auto idle = pool.try_acquire_idle(avoid)) {
        got = std::move(*idle);  // the usual case: no coroutine frame for acquire()
    } else {
        auto acquired = co_await pool.acquire(avoid, &scope);
        got = std::move(acquired);
    }
    out.endpoint = got.endpoint;
    switch (got.error) {
        case acquire_error::none:
            break;
        case acquire_error::queue_timeout:
            out.error = exchange_error::queue_timeout;
            co_return out;
        case acquire_error::cancelled:
            out.error = exchange_error::cancelled;
            co_return out;
        case acquire_error::connect_timeout:
            out.error = exchange_error::connect_timeout;
            co_return out;
        case acquire_error::connect_failed:
            out.error = exchange_error::connect_failed;
            out.cause = got.cause;
            co_return out;
    }
    pooled_connection conn = std::move(got.connection);
    out.reused = conn.reused();
    if (scope.cancelled()) {
        conn.release(true);  // never used: fit for the next caller
        out.error = exchange_error::cancelled;
        co_return out;
    }
    auto& stream = conn.stream();
    cancel_scope::registration registered(scope, [&stream] { stream.cancel(); });

    // The head is serialized by hand into the connection's own string (no
    // per-header allocation, one buffer for the write instead of Beast's
    // serializer). Method, target and header values were checked where the
    // item was read; nothing here adds a CR or LF.
    auto& wire_head = conn.request_head();
    wire_head.clear();
    wire_head.append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\n");
    append_forwarded_request_headers(request.headers, wire_head, client, conn.host_header());
    const bool with_body = request.has_body || expects_body(request.method);
    if (with_body) wire_head.append("Content-Length: ").append(std::to_string(request.body.size())).append("\r\n");
    wire_head.append("\r\n");

    stream.expires_after(timeout);  // one budget for writing the request and reading the answer
    const std::array<asio::const_buffer, 2> wire{asio::buffer(wire_head),
                                                 with_body ? asio::buffer(request.body) : asio::const_buffer()};
    auto [wec, wn] = co_await asio::async_write(stream, wire, use_tuple);
    if (wec) {
        out.error = classify(wec, scope);
        out.cause = wec;
        co_return out;  // `conn` closes itself
    }

    auto& buffer = conn.read_buffer();  // empty: a connection is only reused when
                                        // nothing was left over
    std::optional<http::response_parser<http::string_body>> parser;
    const http1_head_limits limits{static_cast<std::uint32_t>(pool.config().max_header_bytes), max_response_bytes,
                                   request.method == "HEAD"};
    const auto head = co_await read_http1_final_head(stream, buffer, parser, limits);
    if (head.ec) {
        out.error = classify(head.ec, scope);
        out.cause = head.ec;
        out.nothing_received = head.nothing_received;
        co_return out;
    }
    switch (head.kind) {
        case head_kind::final:
            break;
        case head_kind::switching_protocols:
            out.error = exchange_error::switching_protocols;
            co_return out;
        case head_kind::too_many_interim:
            out.error = exchange_error::only_interim;
            co_return out;
        default:
            out.error = exchange_error::malformed;
            co_return out;
    }
    auto [ec, n] = co_await http::async_read(stream, buffer, *parser, use_tuple);
    if (ec) {
        out.error = classify(ec, scope);
        out.cause = ec;
        co_return out;
    }
    const bool reusable = parser->keep_alive() && buffer.size() == 0;
    out.response = parser->release();
    stream.expires_never();
    conn.release(reusable);
    co_return out;
}

asio::awaitable<exchange_outcome> http1_pool::exchange_once(const item_request& request, const client_info& client,
                                                            std::uint64_t max_response_bytes, duration timeout,
                                                            cancel_scope& scope, std::size_t avoid) {
    return http1_exchange_once(*this, request, client, max_response_bytes, timeout, scope, avoid);
}

}  // namespace batchgate
