// One HTTP/1.1 client connection: reads requests one after another
// (pipelined requests wait in a bounded buffer and the kernel's socket
// buffer), enforces the header/body/time limits, and hands each request to
// its handler. Slow clients are cut off: an idle deadline between requests,
// an absolute deadline for the request head, a deadline per body read and
// per write.
#pragma once

#include "proxy/backend/forwarding.hpp"
#include "proxy/core/byte_stream.hpp"
#include "proxy/frontend/worker.hpp"

#include <boost/asio/awaitable.hpp>

#include <boost/asio/ip/tcp.hpp>

namespace batchgate {

// A connection whose protocol is settled as HTTP/1.1 (TLS: ALPN chose it).
asio::awaitable<void> run_http1_session(worker& w, byte_stream stream, client_info client);

// A connection on a cleartext listener: HTTP/1.1, unless its first bytes are
// the HTTP/2 client preface (h2c with prior knowledge), which hands it to
// run_h2_session.
asio::awaitable<void> run_cleartext_session(worker& w, asio::ip::tcp::socket socket, client_info client);

}  // namespace batchgate
