#include "proxy/backend/backend_tls.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/stream_traits.hpp>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <stdexcept>

namespace batchgate {

namespace {

namespace ssl = asio::ssl;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// X509_V_ERR_* as error codes, so "cannot connect: ..." names the reason
// the certificate was refused instead of OpenSSL's generic "certificate
// verify failed".
class x509_verify_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "x509-verify"; }
    std::string message(int ev) const override {
        return std::string("TLS certificate rejected: ") + X509_verify_cert_error_string(ev);
    }
};

const boost::system::error_category& x509_verify_category() {
    static const x509_verify_category_impl instance;
    return instance;
}

class backend_tls_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "backend-tls"; }
    std::string message(int ev) const override {
        switch (static_cast<backend_tls_errc>(ev)) {
        case backend_tls_errc::alpn_h2_not_negotiated:
            return "the backend did not agree to HTTP/2 (ALPN h2) in the TLS handshake";
        }
        return "backend TLS error";
    }
};

bool is_ip_literal(const std::string& name) {
    error_code ec;
    asio::ip::make_address(name, ec);
    return !ec;
}

// "users.example:8443" → "users.example"; "[::1]:8443" and "[::1]" → "::1".
std::string host_part(const std::string& host) {
    if (auto hp = parse_host_port(host, false)) return hp->host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
    return host;
}

}  // namespace

const boost::system::error_category& backend_tls_category() {
    static const backend_tls_category_impl instance;
    return instance;
}

std::shared_ptr<asio::ssl::context> make_backend_tls_context(const backend_config& cfg) {
    const backend_tls_config tls = cfg.tls.value_or(backend_tls_config{});
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    error_code ec;
    if (tls.ca) {
        ctx->load_verify_file(*tls.ca, ec);
        if (ec) throw std::runtime_error("cannot load CA file '" + *tls.ca + "': " + ec.message());
    } else {
        ctx->set_default_verify_paths(ec);
        if (ec) throw std::runtime_error("cannot load the system's CA store: " + ec.message());
    }
    ctx->set_verify_mode(tls.verify ? ssl::verify_peer : ssl::verify_none);
    // ALPN wire format: length-prefixed names. An https backend is offered
    // only http/1.1, so a server that prefers h2 cannot pick it.
    static const unsigned char offer_h2[] = {2, 'h', '2'};
    static const unsigned char offer_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    const bool h2 = cfg.protocol == backend_protocol::h2;
    const int rv = h2 ? SSL_CTX_set_alpn_protos(ctx->native_handle(), offer_h2, sizeof offer_h2)
                      : SSL_CTX_set_alpn_protos(ctx->native_handle(), offer_http11, sizeof offer_http11);
    if (rv != 0) throw std::runtime_error("cannot set ALPN protocols");
    return ctx;
}

std::string backend_tls_name(const backend_config& cfg, const host_port& endpoint) {
    if (cfg.tls && cfg.tls->sni) return *cfg.tls->sni;
    if (cfg.host) return host_part(*cfg.host);
    return endpoint.host;
}

asio::awaitable<backend_tls_result> backend_tls_handshake(beast::tcp_stream& tcp, asio::ssl::context& context,
                                                          const backend_config& cfg, const host_port& endpoint,
                                                          std::chrono::steady_clock::time_point deadline) {
    backend_tls_result result;
    byte_stream::tls_stream tls(std::move(tcp), context);
    const std::string name = backend_tls_name(cfg, endpoint);
    // SNI carries host names only (RFC 6066 §3); an IP is still verified below.
    if (!is_ip_literal(name)) SSL_set_tlsext_host_name(tls.native_handle(), name.c_str());
    const bool verify = !cfg.tls || cfg.tls->verify;
    if (verify) {
        tls.set_verify_mode(ssl::verify_peer);
        // host_name_verification only answers yes or no; recording the
        // mismatch in the store context makes it the handshake's stated reason.
        tls.set_verify_callback([check = ssl::host_name_verification(name)](bool preverified,
                                                                            ssl::verify_context& ctx) {
            if (!preverified) return false;
            if (check(preverified, ctx)) return true;
            X509_STORE_CTX_set_error(ctx.native_handle(), X509_V_ERR_HOSTNAME_MISMATCH);
            return false;
        });
    } else {
        tls.set_verify_mode(ssl::verify_none);
    }
    beast::get_lowest_layer(tls).expires_at(deadline);
    auto [ec] = co_await tls.async_handshake(ssl::stream_base::client, use_tuple);
    beast::get_lowest_layer(tls).expires_never();
    if (ec) {
        const long verdict = SSL_get_verify_result(tls.native_handle());
        result.ec = ec;
        if (ec != beast::error::timeout && verdict != X509_V_OK)
            result.ec = error_code(static_cast<int>(verdict), x509_verify_category());
        co_return result;
    }
    if (cfg.protocol == backend_protocol::h2) {
        const unsigned char* chosen = nullptr;
        unsigned int length = 0;
        SSL_get0_alpn_selected(tls.native_handle(), &chosen, &length);
        if (std::string_view(reinterpret_cast<const char*>(chosen), chosen ? length : 0) != "h2") {
            result.ec = backend_tls_errc::alpn_h2_not_negotiated;
            co_return result;
        }
    }
    result.stream.emplace(std::move(tls));
    co_return result;
}

}  // namespace batchgate
