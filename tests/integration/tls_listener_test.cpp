// TLS listeners: ALPN picks HTTP/2 or HTTP/1.1 on the same port; the
// certificate is made by the test; the backend learns the client used https.
#include "tests/integration/h2_test_client.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"
#include "tests/integration/test_tls.hpp"

#include "proxy/core/metrics.hpp"
#include "proxy/frontend/tls_context.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/test/unit_test.hpp>

#include <openssl/ssl.h>

#include <chrono>
#include <functional>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

std::string tls_config(const std::string& backend, const test_certificate& cert) {
    return "workers: 1\n"
           "access_log: false\n"
           "listen:\n"
           "  - address: 127.0.0.1:0\n"
           "    tls: {cert: " + cert.cert_file() + ", key: " + cert.key_file() + "}\n"
           "routes:\n"
           "  - prefix: /\n"
           "    backend: b\n"
           "backends:\n"
           "  b:\n"
           "    endpoints: [" + backend + "]\n";
}

// A client TLS stream that trusts only the test certificate and offers `alpn`
// (wire format; empty: no ALPN extension). Its connect, handshake and
// requests run asynchronously for at most `limit`, so a stuck server fails
// the test instead of hanging it.
struct tls_client {
    using error_code = boost::system::error_code;
    std::shared_ptr<asio::io_context> io = std::make_shared<asio::io_context>();
    asio::ssl::context ctx{asio::ssl::context::tls_client};
    std::optional<byte_stream::tls_stream> stream;
    std::chrono::milliseconds limit{10'000};

    // `configure` adjusts the context before the handshake (protocol versions).
    tls_client(std::uint16_t port, const test_certificate& cert, std::string_view alpn,
               const std::function<void(SSL_CTX*)>& configure = {}) {
        ctx.load_verify_file(cert.cert_file());
        ctx.set_verify_mode(asio::ssl::verify_peer);
        if (!alpn.empty())
            SSL_CTX_set_alpn_protos(ctx.native_handle(), reinterpret_cast<const unsigned char*>(alpn.data()),
                                    static_cast<unsigned>(alpn.size()));
        if (configure) configure(ctx.native_handle());
        stream.emplace(beast::tcp_stream(*io), ctx);
        SSL_set_tlsext_host_name(stream->native_handle(), "localhost");
        stream->set_verify_callback(asio::ssl::host_name_verification("localhost"));
        error_code ec;
        beast::get_lowest_layer(*stream).async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                                       [&](error_code e) { ec = e; });
        run("TLS client connect");
        BOOST_REQUIRE_MESSAGE(!ec, "connect failed: " << ec.message());
    }

    // The handshake's outcome (the test decides whether a failure is right).
    error_code handshake() {
        error_code ec = asio::error::would_block;
        stream->async_handshake(asio::ssl::stream_base::client, [&](error_code e) { ec = e; });
        run("TLS handshake");
        return ec;
    }

    std::string selected() {
        const unsigned char* data = nullptr;
        unsigned int length = 0;
        SSL_get0_alpn_selected(stream->native_handle(), &data, &length);
        return {reinterpret_cast<const char*>(data), length};
    }

    http::response<http::string_body> request(http::request<http::string_body> req) {
        req.set(http::field::host, "localhost");
        req.prepare_payload();
        error_code ec;
        http::async_write(*stream, req, [&](error_code e, std::size_t) { ec = e; });
        run("HTTP/1.1 write over TLS");
        BOOST_REQUIRE_MESSAGE(!ec, "write failed: " << ec.message());
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        http::async_read(*stream, buffer, res, [&](error_code e, std::size_t) { ec = e; });
        run("HTTP/1.1 read over TLS");
        BOOST_REQUIRE_MESSAGE(!ec, "read failed: " << ec.message());
        return res;
    }

private:
    void run(const char* what) {
        io->restart();
        io->run_for(limit);
        if (!io->stopped()) {
            beast::get_lowest_layer(*stream).cancel();
            io->restart();
            io->run();
            BOOST_FAIL(what << " did not finish within " << limit.count() << " ms");
        }
    }
};

// A connected, handshaken client: what the tests that are not about the handshake want.
struct tls_session : tls_client {
    tls_session(std::uint16_t port, const test_certificate& cert, std::string_view alpn) : tls_client(port, cert, alpn) {
        const auto ec = handshake();
        BOOST_REQUIRE_MESSAGE(!ec, "TLS handshake failed: " << ec.message());
    }
};

constexpr std::string_view alpn_h2_and_http11{"\x02h2\x08http/1.1", 12};
constexpr std::string_view alpn_http11{"\x08http/1.1", 9};

}  // namespace

BOOST_AUTO_TEST_SUITE(tls_listener)

BOOST_AUTO_TEST_CASE(alpn_h2_serves_http2_over_tls) {
    test_certificate cert("localhost", {"DNS:localhost", "IP:127.0.0.1"});
    test_backend backend;
    running_proxy proxy(tls_config(backend.address(), cert));
    tls_session tls(proxy.port(), cert, alpn_h2_and_http11);
    BOOST_TEST(tls.selected() == "h2");
    h2_test_client client(tls.io, byte_stream(std::move(*tls.stream)));
    auto r = client.get("/users/1");
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(r.body == "GET /users/1\n");
    auto seen = backend.received();
    BOOST_REQUIRE_EQUAL(seen.size(), 1u);
    BOOST_TEST(seen[0]["x-forwarded-proto"] == "https");
}

BOOST_AUTO_TEST_CASE(alpn_http11_serves_http11_over_tls) {
    test_certificate cert("localhost", {"DNS:localhost", "IP:127.0.0.1"});
    test_backend backend;
    running_proxy proxy(tls_config(backend.address(), cert));
    tls_session tls(proxy.port(), cert, alpn_http11);
    BOOST_TEST(tls.selected() == "http/1.1");
    for (int i = 0; i < 2; ++i) {  // keep-alive over TLS
        auto res = tls.request(make_request(http::verb::get, "/users/" + std::to_string(i)));
        BOOST_TEST(res.result_int() == 200u);
        BOOST_TEST(res.body() == "GET /users/" + std::to_string(i) + "\n");
    }
    BOOST_TEST(backend.received().at(0)["x-forwarded-proto"] == "https");
}

BOOST_AUTO_TEST_CASE(client_without_alpn_gets_http11) {
    test_certificate cert("localhost", {"DNS:localhost", "IP:127.0.0.1"});
    test_backend backend;
    running_proxy proxy(tls_config(backend.address(), cert));
    tls_session tls(proxy.port(), cert, {});
    BOOST_TEST(tls.selected().empty());
    auto res = tls.request(make_request(http::verb::get, "/x"));
    BOOST_TEST(res.result_int() == 200u);
}

BOOST_AUTO_TEST_CASE(cleartext_on_a_tls_port_is_dropped_and_others_still_served) {
    test_certificate cert("localhost", {"DNS:localhost", "IP:127.0.0.1"});
    test_backend backend;
    running_proxy proxy(tls_config(backend.address(), cert));
    client plain(proxy.port(), 5000);
    plain.send_raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    BOOST_TEST(plain.closed_by_server());
    tls_session tls(proxy.port(), cert, alpn_h2_and_http11);
    BOOST_TEST(tls.selected() == "h2");
}

BOOST_AUTO_TEST_CASE(unreadable_certificate_is_a_config_error) {
    try {
        load_config_string("listen:\n  - address: 127.0.0.1:0\n    tls: {cert: /nonexistent/cert.pem, key: k.pem}\n"
                           "routes: []\nbackends: {}\n",
                           "test.yaml");
        BOOST_FAIL("expected a config error");
    } catch (const config_error& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("listen[0].tls.cert") != std::string::npos);
        BOOST_TEST(what.find("cannot read /nonexistent/cert.pem") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(mismatched_key_fails_at_start_up) {
    test_certificate one("localhost", {"DNS:localhost"});
    test_certificate two("localhost", {"DNS:localhost"});
    BOOST_CHECK_THROW(make_listener_tls_context(tls_files{one.cert_file(), two.key_file()}), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(tls_below_1_2_is_refused) {
    test_certificate cert("localhost", {"DNS:localhost", "IP:127.0.0.1"});
    test_backend backend;
    running_proxy proxy(tls_config(backend.address(), cert));
    const auto before = metrics_registry::global().limit_breaches(limit_kind::tls_handshake);
    for (int old_version : {TLS1_VERSION, TLS1_1_VERSION}) {
        BOOST_TEST_CONTEXT("client offers at most " << std::hex << old_version) {
            tls_client old(proxy.port(), cert, alpn_http11, [old_version](SSL_CTX* c) {
                SSL_CTX_set_security_level(c, 0);  // let this OpenSSL offer the old versions at all
                SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
                SSL_CTX_set_max_proto_version(c, old_version);
            });
            BOOST_TEST(old.handshake().failed());
        }
    }
    BOOST_TEST(eventually([&] { return metrics_registry::global().limit_breaches(limit_kind::tls_handshake) == before + 2; }));
    // TLS 1.2 exactly is accepted.
    tls_client current(proxy.port(), cert, alpn_http11, [](SSL_CTX* c) { SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION); });
    BOOST_TEST(!current.handshake().failed());
    BOOST_TEST(SSL_version(current.stream->native_handle()) == TLS1_2_VERSION);
    BOOST_TEST(current.request(make_request(http::verb::get, "/v")).result_int() == 200u);
}

BOOST_AUTO_TEST_CASE(tls_handshake_timeout_closes_the_connection) {
    test_certificate cert("localhost", {"DNS:localhost", "IP:127.0.0.1"});
    test_backend backend;
    running_proxy proxy(tls_config(backend.address(), cert) + "limits: {header_timeout: 300ms}\n");
    const auto before = metrics_registry::global().limit_breaches(limit_kind::tls_handshake);
    const auto start = std::chrono::steady_clock::now();
    client silent(proxy.port(), 10000);  // connects and never says ClientHello
    BOOST_TEST(silent.closed_by_server());
    const auto waited = std::chrono::steady_clock::now() - start;
    BOOST_TEST(waited >= std::chrono::milliseconds(250));  // the timeout, not some other refusal
    BOOST_TEST(waited < std::chrono::seconds(5));           // limits.header_timeout, not a default
    BOOST_TEST(eventually([&] { return metrics_registry::global().limit_breaches(limit_kind::tls_handshake) == before + 1; }));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
