// The two halves of one exchange, whatever protocol each side speaks. A
// client side (HTTP/1.1 connection or HTTP/2 stream) offers the request
// head, a request body source and a response sink; what serves it (a
// backend forwarder for pass-through, the batch handler) pulls the body,
// answers through the sink, and reports failures before the response head
// as problem+json through the same sink. So each pairing of client protocol
// and backend protocol is written once, not four times.
#pragma once

#include "proxy/core/cancel_scope.hpp"
#include "proxy/core/problem.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace batchgate {

namespace asio = boost::asio;
namespace http = boost::beast::http;

struct exchange_summary {
    bool keep_alive = false;  // the client connection may carry another request (HTTP/1.1)
    unsigned status = 0;      // what the client got (0: nothing, connection or stream dropped)
    std::string backend;
    std::uint64_t request_bytes = 0;
    std::uint64_t response_bytes = 0;
};

// The client's request as the backend forwarder needs it.
struct forward_request {
    http::verb method = http::verb::unknown;
    std::string_view method_text;  // as the client wrote it (extension methods too)
    std::string_view target;       // as received; the forwarder normalizes and routes it
    const http::fields* headers = nullptr;  // as received: hop-by-hop still present
    std::optional<std::uint64_t> content_length;  // declared length; nullopt: unknown (chunked, or h2 without it)
    bool has_body = false;  // body bytes may follow (false: GET without body, END_STREAM on HEADERS)
    bool expects_continue = false;  // HTTP/1.1 `Expect: 100-continue`
};

// Why a client-side read failed; each maps to its own answer.
enum class body_error { none, timeout, too_large, malformed, client_gone };

struct body_read {
    std::size_t bytes = 0;  // written into the caller's buffer
    bool done = false;      // the body is complete (may come with bytes)
    body_error error = body_error::none;
    std::string detail;     // for `malformed`
};

class request_body_source {
public:
    virtual ~request_body_source() = default;
    // Waits for the next bytes, at most `into.size()`. After `done` or an
    // error, further calls return the same.
    virtual asio::awaitable<body_read> read(std::span<char> into) = 0;
    virtual bool done() const = 0;
};

// What the client is told. Framing is the sink's business (Content-Length
// or chunked or close-delimited on HTTP/1.1, DATA frames on HTTP/2).
struct response_head {
    unsigned status = 200;
    std::string_view reason;   // HTTP/1.1 only; "" → the standard phrase
    http::fields headers;      // end-to-end only (build_forwarded_response_headers)
    std::optional<std::uint64_t> content_length;  // for the body that follows, or for HEAD/304
    bool no_body = false;      // HEAD, 204, 304: nothing follows the head
};

class response_sink {
public:
    virtual ~response_sink() = default;
    // `Expect: 100-continue`: the client may now send its body. False when
    // the client is gone. (HTTP/2 needs none: flow control does the job.)
    virtual asio::awaitable<bool> send_continue() = 0;
    virtual asio::awaitable<bool> send_head(response_head head) = 0;
    // Body bytes after send_head; `last` ends the response.
    virtual asio::awaitable<bool> send_data(std::span<const char> bytes, bool last) = 0;
    // A whole answer batchgate makes itself (problem+json): head and body at
    // once, nothing sent before.
    virtual asio::awaitable<bool> send_answer(response_head head, std::string body) = 0;
    // The response cannot be completed (backend died mid-body): HTTP/1.1
    // closes without the last chunk, HTTP/2 resets the stream.
    virtual void abort() = 0;
    // Cancels `scope` when the client goes away (connection closed, stream
    // reset) for as long as the returned token is kept.
    virtual std::shared_ptr<void> watch_client(cancel_scope& scope) = 0;

    // A problem+json answer instead of a backend's (nothing sent yet), with
    // `Retry-After: retry_after_seconds` when that is not 0.
    asio::awaitable<bool> send_problem(http::status status, std::string_view detail, problem_position where = {},
                                       unsigned retry_after_seconds = 0);
};

}  // namespace batchgate
