#include "proxy/frontend/tls_context.hpp"

#include <openssl/ssl.h>

#include <array>
#include <stdexcept>

namespace batchgate {

namespace {

// ALPN protocol list in wire format, in our order of preference.
constexpr std::array<unsigned char, 12> server_alpn{2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Picks h2 when the client offers it, else http/1.1; a client offering
// neither gets no ALPN answer and speaks HTTP/1.1 (RFC 7301 allows the
// server to ignore the extension; refusing would break old clients).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, outlen, server_alpn.data(), server_alpn.size(), in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_listener_tls_context(const tls_files& files) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                     asio::ssl::context::single_dh_use);
    error_code ec;
    ctx->use_certificate_chain_file(files.cert, ec);
    if (ec) throw std::runtime_error("tls.cert " + files.cert + ": " + ec.message());
    ctx->use_private_key_file(files.key, asio::ssl::context::pem, ec);
    if (ec) throw std::runtime_error("tls.key " + files.key + ": " + ec.message());
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
        throw std::runtime_error("tls.key " + files.key + " does not match the certificate in " + files.cert);
    SSL_CTX_set_alpn_select_cb(ctx->native_handle(), select_alpn, nullptr);
    return ctx;
}

std::string_view negotiated_alpn(byte_stream& stream) {
    auto* tls = stream.tls();
    if (!tls) return {};
    const unsigned char* data = nullptr;
    unsigned int length = 0;
    SSL_get0_alpn_selected(tls->native_handle(), &data, &length);
    return {reinterpret_cast<const char*>(data), length};
}

}  // namespace batchgate
