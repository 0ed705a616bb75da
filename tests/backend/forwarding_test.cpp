#include "proxy/backend/forwarding.hpp"

#include <boost/test/unit_test.hpp>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;

namespace {

client_info client(const char* ip, bool trusted, bool tls = false) {
    return {boost::asio::ip::make_address(ip), tls, trusted};
}

std::string get(const http::fields& f, std::string_view name) { return std::string(f[name]); }

}  // namespace

BOOST_AUTO_TEST_SUITE(forwarding)

BOOST_AUTO_TEST_CASE(hop_by_hop_names) {
    for (auto n : {"Connection", "keep-alive", "TE", "Transfer-Encoding", "Upgrade", "Proxy-Authorization",
                   "proxy-connection", "Trailer"})
        BOOST_TEST(is_hop_by_hop(n), n);
    for (auto n : {"Content-Type", "Authorization", "Cookie", "X-Proxy", "Teapot"})
        BOOST_TEST(!is_hop_by_hop(n), n);
}

BOOST_AUTO_TEST_CASE(request_headers_drop_hop_by_hop_and_connection_named) {
    http::fields in;
    in.set("Host", "client.example");
    in.set("Connection", "keep-alive, X-Secret");
    in.set("X-Secret", "s");
    in.set("Keep-Alive", "timeout=5");
    in.set("TE", "trailers");
    in.set("Upgrade", "h2c");
    in.set("Proxy-Authorization", "Basic x");
    in.set("Content-Length", "5");
    in.set("Expect", "100-continue");
    in.set("Authorization", "Bearer abc");
    in.insert("Accept", "a");
    in.insert("Accept", "b");
    http::fields out;
    build_forwarded_request_headers(in, out, client("10.1.2.3", false), "backend:9000");
    BOOST_TEST(get(out, "host") == "backend:9000");
    for (auto n : {"connection", "x-secret", "keep-alive", "te", "upgrade", "proxy-authorization",
                   "content-length", "expect"})
        BOOST_TEST(out.count(n) == 0u, n);
    BOOST_TEST(get(out, "authorization") == "Bearer abc");
    BOOST_TEST(out.count("accept") == 2u);
    BOOST_TEST(get(out, "via") == "1.1 batchgate");
    BOOST_TEST(get(out, "x-forwarded-for") == "10.1.2.3");
    BOOST_TEST(get(out, "x-forwarded-proto") == "http");
    BOOST_TEST(get(out, "forwarded") == "for=10.1.2.3;proto=http");
}

BOOST_AUTO_TEST_CASE(untrusted_forwarding_headers_are_replaced) {
    http::fields in;
    in.set("X-Forwarded-For", "127.0.0.1");
    in.set("X-Forwarded-Host", "admin.internal");
    in.set("X-Real-IP", "127.0.0.1");
    in.set("Forwarded", "for=127.0.0.1");
    in.set("X-Forwarded-Proto", "https");
    http::fields out;
    build_forwarded_request_headers(in, out, client("203.0.113.9", false), "b");
    BOOST_TEST(get(out, "x-forwarded-for") == "203.0.113.9");
    BOOST_TEST(get(out, "x-forwarded-proto") == "http");
    BOOST_TEST(get(out, "forwarded") == "for=203.0.113.9;proto=http");
    BOOST_TEST(out.count("x-forwarded-host") == 0u);
    BOOST_TEST(out.count("x-real-ip") == 0u);
}

BOOST_AUTO_TEST_CASE(trusted_forwarding_headers_are_extended) {
    http::fields in;
    in.set("X-Forwarded-For", "198.51.100.7");
    in.set("X-Forwarded-Host", "api.example");
    in.set("X-Forwarded-Proto", "https");
    in.set("Forwarded", "for=198.51.100.7;proto=https");
    in.set("Via", "1.1 edge");
    http::fields out;
    build_forwarded_request_headers(in, out, client("10.0.0.2", true), "b");
    BOOST_TEST(get(out, "x-forwarded-for") == "198.51.100.7, 10.0.0.2");
    BOOST_TEST(get(out, "x-forwarded-proto") == "https");
    BOOST_TEST(get(out, "x-forwarded-host") == "api.example");
    BOOST_TEST(get(out, "forwarded") == "for=198.51.100.7;proto=https, for=10.0.0.2;proto=http");
    BOOST_TEST(get(out, "via") == "1.1 edge, 1.1 batchgate");
}

BOOST_AUTO_TEST_CASE(ipv6_clients_are_quoted_in_forwarded) {
    http::fields in, out;
    build_forwarded_request_headers(in, out, client("::1", false, true), "b");
    BOOST_TEST(get(out, "forwarded") == "for=\"[::1]\";proto=https");
    BOOST_TEST(get(out, "x-forwarded-proto") == "https");
}

BOOST_AUTO_TEST_CASE(response_headers_drop_hop_by_hop_and_framing) {
    http::fields in;
    in.set("Connection", "close, X-Internal");
    in.set("X-Internal", "1");
    in.set("Transfer-Encoding", "chunked");
    in.set("Content-Length", "10");
    in.set("Keep-Alive", "timeout=1");
    in.set("Content-Type", "text/plain");
    in.insert("Set-Cookie", "a=1");
    in.insert("Set-Cookie", "b=2");
    http::fields out;
    build_forwarded_response_headers(in, out);
    for (auto n : {"connection", "x-internal", "transfer-encoding", "content-length", "keep-alive"})
        BOOST_TEST(out.count(n) == 0u, n);
    BOOST_TEST(get(out, "content-type") == "text/plain");
    BOOST_TEST(out.count("set-cookie") == 2u);
    BOOST_TEST(get(out, "via") == "1.1 batchgate");
}

BOOST_AUTO_TEST_CASE(tokens_and_values) {
    BOOST_TEST(is_token("GET"));
    BOOST_TEST(is_token("X-Custom_1"));
    BOOST_TEST(!is_token(""));
    BOOST_TEST(!is_token("a b"));
    BOOST_TEST(!is_token("a:b"));
    BOOST_TEST(is_safe_header_value("Bearer abc"));
    BOOST_TEST(!is_safe_header_value("a\r\nX-Injected: 1"));
    BOOST_TEST(!is_safe_header_value(std::string_view("a\0b", 3)));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
