// One buffered request/response with a backend, for a batch item, whatever
// the backend's protocol: the request is small and whole, the answer is read
// whole up to max_item_response_bytes. What one attempt asks and what it
// came to; http1_client and h2_client each make such attempts, and the retry
// policy lives in fan-out.
#pragma once

#include "proxy/core/byte_stream.hpp"
#include "proxy/config/config.hpp"
#include "proxy/backend/forwarding.hpp"

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
    std::size_t endpoint = no_endpoint;  // the endpoint used or tried (none: no connection was had)
    http::response<http::string_body> response;
};

struct item_request {
    std::string method;
    std::string target;     // rewritten, ready for the request line
    http::fields headers;   // end-to-end headers, validated; Host and forwarding are added per connection
    std::string body;
    bool has_body = false;
};

}  // namespace batchgate
