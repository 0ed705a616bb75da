// TLS towards backends (protocol https and h2): one client context per
// backend and configuration generation, shared by every worker's pool, and
// the per-connection handshake with SNI, host-name verification and the
// ALPN check.
#pragma once

#include "proxy/config/config.hpp"
#include "proxy/core/byte_stream.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace batchgate {

// TLS 1.2 or later; trusts `tls.ca` (or the system store); offers ALPN "h2"
// for protocol h2 and "http/1.1" for https. Throws std::runtime_error with a
// readable reason (unreadable CA file, ...): start-up and reload only.
std::shared_ptr<asio::ssl::context> make_backend_tls_context(const backend_config& cfg);

// The name sent as SNI and checked against the certificate: tls.sni, else
// the host part of `host`, else the endpoint's host.
std::string backend_tls_name(const backend_config& cfg, const host_port& endpoint);

// Why a TLS connection could not be had. The error_code's message is
// written for people: a certificate problem reads like OpenSSL's verify
// reason ("self-signed certificate", "hostname mismatch"), a missing ALPN
// says so.
enum class backend_tls_errc { alpn_h2_not_negotiated = 1 };
const boost::system::error_category& backend_tls_category();
inline error_code make_error_code(backend_tls_errc e) { return {static_cast<int>(e), backend_tls_category()}; }

struct backend_tls_result {
    std::optional<byte_stream> stream;  // set on success
    error_code ec;                      // beast::error::timeout when the deadline passed
};

// Handshakes on a connected TCP stream (moved from) before `deadline` (the
// rest of the backend's connect_timeout). For protocol h2 the backend must
// have chosen ALPN "h2".
asio::awaitable<backend_tls_result> backend_tls_handshake(beast::tcp_stream& tcp, asio::ssl::context& context,
                                                          const backend_config& cfg, const host_port& endpoint,
                                                          std::chrono::steady_clock::time_point deadline);

}  // namespace batchgate

namespace boost::system {
template <>
struct is_error_code_enum<batchgate::backend_tls_errc> : std::true_type {};
}  // namespace boost::system
