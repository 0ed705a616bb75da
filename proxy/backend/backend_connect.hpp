// Opening a connection to one backend endpoint, written once for every
// protocol: resolve (a literal address skips the resolver), TCP connect,
// TCP_NODELAY, and for https/h2 the TLS handshake with SNI, verification and
// ALPN, all within the backend's connect_timeout. The HTTP/1.1 pool, the h2
// pool and the health checker's one-connection pools all connect here.
#pragma once

#include "proxy/config/config.hpp"
#include "proxy/core/byte_stream.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include <optional>

namespace batchgate {

struct backend_connection_result {
    std::optional<byte_stream> stream;  // set on success, with no timeout left running
    error_code ec;                      // beast::error::timeout when connect_timeout passed

    // connect_timeout passed (against any other refusal or failure), so the
    // answer can say 504 B:timeout rather than 502 B:connect-failed.
    bool timed_out() const;
};

// `tls` must be the backend's client context when cfg.protocol is https or
// h2 (unused otherwise).
asio::awaitable<backend_connection_result> connect_to_backend(asio::any_io_executor executor,
                                                             const backend_config& cfg,
                                                             asio::ssl::context* tls,
                                                             const host_port& address);

}  // namespace batchgate
