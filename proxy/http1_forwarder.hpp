// Everything that is not a batch: one client request proxied to one backend,
// bodies streamed both ways, hop-by-hop headers stripped, forwarding headers
// added, failures answered with problem+json (PRODUCT.md §3).
#pragma once

#include "proxy/proxied_exchange.hpp"
#include "proxy/request_scope.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstdint>
#include <string>

namespace batchgate {


// `request` has its header read already; its body is still on the wire.
asio::awaitable<exchange_summary> proxy_request(beast::tcp_stream& client, beast::flat_buffer& client_buffer,
                                                http::request_parser<http::buffer_body>& request,
                                                request_scope& scope);

// Sends a problem+json answer; drops keep-alive when an unread request body
// is still on the wire (it cannot be told apart from the next request).
asio::awaitable<exchange_summary> answer_problem(beast::tcp_stream& client, bool body_pending,
                                                 unsigned version, bool keep_alive, http::status status,
                                                 std::string_view detail, duration send_timeout);

// Tells a client that sent `Expect: 100-continue` to go ahead with its body.
// False when the client is gone.
asio::awaitable<bool> send_100_continue(beast::tcp_stream& client, duration send_timeout);

}  // namespace batchgate
