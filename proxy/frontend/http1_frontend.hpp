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

#include <string>

namespace batchgate {

// `received`: bytes already read off the connection (by protocol detection).
asio::awaitable<void> run_http1_session(worker& w, byte_stream stream, client_info client, std::string received);

}  // namespace batchgate
