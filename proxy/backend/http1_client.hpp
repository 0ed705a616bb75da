// One batch item's attempt over HTTP/1.1: a pooled keep-alive connection,
// the request written whole, the answer read whole up to
// max_item_response_bytes; interim (1xx) answers are consumed.
#pragma once

#include "proxy/backend/buffered_exchange.hpp"
#include "proxy/backend/forwarding.hpp"
#include "proxy/backend/http1_pool.hpp"
#include "proxy/core/cancel_scope.hpp"

#include <boost/asio/awaitable.hpp>

namespace batchgate {

asio::awaitable<exchange_outcome> http1_exchange_once(http1_pool& pool, const item_request& request,
                                                      const client_info& client, std::uint64_t max_response_bytes,
                                                      duration timeout, cancel_scope& scope,
                                                      std::size_t avoid = no_endpoint);

}  // namespace batchgate
