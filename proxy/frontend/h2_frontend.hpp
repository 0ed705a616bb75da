// One HTTP/2 client connection (h2c with prior knowledge, or h2 over TLS):
// each stream is a request served by the same handlers as HTTP/1.1 — batch
// or pass-through — through an HTTP/2 body source and response sink, so a
// 207 goes out in DATA frames as items finish and pass-through bodies flow
// both ways under HTTP/2 flow control.
//
// Protection (http2.* keys): SETTINGS_MAX_CONCURRENT_STREAMS and
// MAX_HEADER_LIST_SIZE advertised and enforced, nghttp2's stream-reset rate
// limit (rapid reset) and CONTINUATION cap, a budget of batch items in
// flight per connection, GOAWAY on abuse, idle and SETTINGS-ACK timeouts.
#pragma once

#include "proxy/backend/forwarding.hpp"
#include "proxy/core/byte_stream.hpp"
#include "proxy/frontend/worker.hpp"

#include <boost/asio/awaitable.hpp>

#include <string>
#include <string_view>

namespace batchgate {

// The client connection preface (RFC 9113 §3.4).
inline constexpr std::string_view h2_client_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// `received`: bytes already read (the preface, when detected on a cleartext port).
asio::awaitable<void> run_h2_session(worker& w, byte_stream stream, client_info client, std::string received);

}  // namespace batchgate
