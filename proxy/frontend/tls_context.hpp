// TLS contexts for listeners (OpenSSL through Asio): certificate chain and
// key from PEM files, TLS 1.2 or newer, ALPN offering h2 then http/1.1.
// Built at start-up, where a bad file is an exception with its name.
#pragma once

#include "proxy/config/config.hpp"
#include "proxy/core/byte_stream.hpp"

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string_view>

namespace batchgate {

std::shared_ptr<asio::ssl::context> make_listener_tls_context(const tls_files& files);

}  // namespace batchgate
