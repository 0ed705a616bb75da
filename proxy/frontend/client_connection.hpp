// A new client connection: which protocol does it speak? On a TLS listener
// the handshake's ALPN says (h2, else HTTP/1.1); on a cleartext one the
// first bytes do (the HTTP/2 client preface means h2c with prior knowledge,
// anything else is HTTP/1.1), read by run_cleartext_session itself so that
// an idle keep-alive connection is one coroutine frame.
#pragma once

#include "proxy/backend/forwarding.hpp"
#include "proxy/frontend/worker.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <memory>

namespace batchgate {

asio::awaitable<void> serve_client_connection(worker& w, asio::ip::tcp::socket socket, client_info client,
                                              std::shared_ptr<asio::ssl::context> tls);

}  // namespace batchgate
