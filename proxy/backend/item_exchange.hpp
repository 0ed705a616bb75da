// One buffered HTTP/1.1 request/response with a backend, for a batch item:
// the request is small and whole, the answer is read whole up to
// max_item_response_bytes. Interim (1xx) answers are consumed. This is the
// single-attempt primitive; retry policy lives in fan-out.
#pragma once

#include "proxy/backend/backend_pool.hpp"
#include "proxy/backend/forwarding.hpp"
#include "proxy/core/cancel_scope.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace batchgate {

enum class exchange_error {
    none,
    queue_timeout,      // every pooled connection busy
    connect_failed,
    connect_timeout,
    reset,              // connection closed or reset before a whole answer
    malformed,          // not HTTP
    timeout,            // no whole answer within the timeout
    too_large,          // answer body over the limit
    switching_protocols,
    only_interim,
    cancelled,          // the batch was cancelled (client gone, deadline)
};

struct exchange_outcome {
    exchange_error error = exchange_error::none;
    error_code cause;
    bool nothing_received = false;  // closed before a byte: the request was not processed
    bool reused = false;            // went out on a pooled keep-alive connection
    http::response<http::string_body> response;
};

struct item_request {
    std::string method;
    std::string target;     // rewritten, ready for the request line
    http::fields headers;   // end-to-end headers, validated; Host and forwarding are added per connection
    std::string body;
    bool has_body = false;
};

asio::awaitable<exchange_outcome> exchange_once(backend_pool& pool, const item_request& request,
                                                const client_info& client, std::uint64_t max_response_bytes,
                                                duration timeout, cancel_scope& scope);

}  // namespace batchgate
