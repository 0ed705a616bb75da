// What a handler needs to know about the request it serves and the worker it
// runs on. Owned by the worker; handlers borrow it for one request.
#pragma once

#include "proxy/backend/forwarding.hpp"
#include "proxy/backend/in_flight_limiter.hpp"
#include "proxy/backend/routing_state.hpp"

#include <memory>
#include <span>
#include <string>

namespace batchgate {

struct request_scope {
    std::shared_ptr<routing_state> routing;
    client_info client;
    const bool* draining = nullptr;  // the worker's flag: once set, answer with Connection: close
    std::string request_id;  // for the access log and X-Request-Id
    std::span<char> relay_buffer;  // body buffer of this request (per HTTP/1.1 connection, per HTTP/2 stream)
    // HTTP/2: batch items in flight over all streams of the connection
    // (http2.max_batch_items_in_flight); null on HTTP/1.1, one batch at a time.
    in_flight_limiter* connection_items = nullptr;
};

}  // namespace batchgate
