// POST on batch.path: read the document (bounded), parse it, fan the items
// out and stream one 207 Multi-Status back as they finish. Whole-batch
// refusals (405/413/415/400) are problem+json answers (PRODUCT.md §2.2).
#pragma once

#include "proxy/passthrough.hpp"

namespace batchgate {

// True when `target` addresses the batch endpoint (query string ignored).
bool is_batch_target(std::string_view target, const config& cfg);

asio::awaitable<exchange_summary> handle_batch(beast::tcp_stream& client, beast::flat_buffer& client_buffer,
                                               http::request_parser<http::buffer_body>& request,
                                               request_scope& scope);

}  // namespace batchgate
