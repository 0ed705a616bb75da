// The admin listener of a running server: metrics move with traffic,
// readiness turns off when a drain begins.
#include "proxy/core/metrics.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <future>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

// The value of one series line ("name{labels} value") on a /metrics page.
double series(const std::string& page, const std::string& name_and_labels) {
    auto at = page.find("\n" + name_and_labels + " ");
    if (at == std::string::npos) return -1;
    return std::stod(page.substr(at + name_and_labels.size() + 2));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(operations)

BOOST_AUTO_TEST_CASE(metrics_follow_traffic) {
    test_backend backend([](const request_type& req) {
        auto r = echo(req);
        if (req.target() == "/missing") r.response.result(http::status::not_found);
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "", "admin: {address: 127.0.0.1:0}\n"));
    client admin(proxy.get().admin_endpoint()->port());
    auto before = admin.request(make_request(http::verb::get, "/metrics")).body();

    client c(proxy.port());
    c.request(make_request(http::verb::get, "/x"));
    c.request(make_request(http::verb::get, "/missing"));
    auto batch = make_request(http::verb::post, "/batch", R"({"requests":[{"method":"GET","url":"/a"},{"method":"GET","url":"/b"}]})");
    batch.set(http::field::content_type, "application/json");
    BOOST_TEST(c.request(batch).result_int() == 207u);

    auto res = admin.request(make_request(http::verb::get, "/metrics"));
    BOOST_TEST(res[http::field::content_type].starts_with("text/plain; version=0.0.4"));
    const auto& after = res.body();
    auto grew = [&](const std::string& s, double by) { return series(after, s) - series(before, s) == by; };
    BOOST_TEST(grew("batchgate_backend_responses_total{backend=\"b\",code=\"2xx\"}", 3));
    BOOST_TEST(grew("batchgate_backend_responses_total{backend=\"b\",code=\"4xx\"}", 1));
    BOOST_TEST(grew("batchgate_requests_total{kind=\"batch\",code=\"2xx\"}", 1));
    BOOST_TEST(grew("batchgate_requests_total{kind=\"passthrough\",code=\"4xx\"}", 1));
    BOOST_TEST(series(after, "batchgate_backend_connections{backend=\"b\",state=\"idle\"}") >= 1);
}

BOOST_AUTO_TEST_CASE(readiness_ends_when_draining_begins) {
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        auto r = echo(req);
        r.hold = [&] { return release.load(); };
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "", "admin: {address: 127.0.0.1:0}\n"));
    client admin(proxy.get().admin_endpoint()->port());
    BOOST_TEST(admin.request(make_request(http::verb::get, "/readyz")).result_int() == 200u);
    BOOST_TEST(admin.request(make_request(http::verb::get, "/healthz")).result_int() == 200u);
    auto busy = std::async(std::launch::async, [&] {
        client c(proxy.port());
        return c.request(make_request(http::verb::get, "/slow")).result_int();
    });
    BOOST_TEST_REQUIRE(eventually([&] { return backend.in_flight() == 1; }));  // busy is in flight
    proxy.get().drain();
    BOOST_TEST(admin.request(make_request(http::verb::get, "/readyz")).result_int() == 503u);
    release = true;
    BOOST_TEST(busy.get() == 200u);
}

BOOST_AUTO_TEST_CASE(limit_breaches_are_counted) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address(), "", "limits: {max_header_bytes: 1KiB}\n"));
    auto& m = metrics_registry::global();
    auto before = m.limit_breaches(limit_kind::header_bytes);
    client c(proxy.port());
    c.send_raw("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(2048, 'a') + "\r\n\r\n");
    auto raw = c.read_until_close();
    BOOST_TEST(raw.starts_with("HTTP/1.1 431"));
    BOOST_TEST(m.limit_breaches(limit_kind::header_bytes) == before + 1);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
