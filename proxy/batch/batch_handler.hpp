// POST on batch.path: read the document (bounded), parse it, fan the items
// out and stream one 207 Multi-Status back as they finish. Whole-batch
// refusals (405/413/415/400) are problem+json answers (PRODUCT.md §2.2).
// Written against the transport-neutral client side (proxied_exchange.hpp),
// so HTTP/1.1 connections and HTTP/2 streams share it.
#pragma once

#include "proxy/backend/request_scope.hpp"
#include "proxy/core/exchange.hpp"

namespace batchgate {

// True when `target` addresses the batch endpoint (query string ignored).
bool is_batch_target(std::string_view target, const config& cfg);

asio::awaitable<exchange_summary> serve_batch(const forward_request& request, request_body_source& body,
                                              response_sink& sink, request_scope& scope);

}  // namespace batchgate
