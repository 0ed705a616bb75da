// Outlier ejection and active health checks on real sockets: a failing
// endpoint stops getting traffic after `consecutive_failures` and gets it
// back after its ejection; an endpoint whose health endpoint fails gets no
// items until it passes again; with every endpoint out, items and
// pass-through requests answer 503 at once; a reload keeps the limiter and
// the ejections of a backend whose endpoints did not change.
#include "proxy/config/config.hpp"
#include "proxy/core/metrics.hpp"
#include "tests/integration/batch_client.hpp"
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

std::string gets(int n, const std::string& prefix = "/items/") {
    std::string out = R"({"requests":[)";
    for (int i = 1; i <= n; ++i)
        out += std::string(i > 1 ? "," : "") + R"({"id":")" + std::to_string(i) + R"(","method":"GET","url":")" +
               prefix + std::to_string(i) + "\"}";
    return out + "]}";
}

reply status_reply(http::status s) {
    reply r;
    r.response.result(s);
    r.response.body() = "nope\n";
    return r;
}

// Items answered 200, of a batch of `n` GETs.
int answered(std::uint16_t port, int n) {
    client c(port);
    auto res = post_batch(c, gets(n), "application/json");
    BOOST_TEST(res.result_int() == 207u);
    int ok = 0;
    for (const auto& e : entries_of(res.body())) {
        ok += e.status == "HTTP/1.1 200 OK";
        if (e.status != "HTTP/1.1 200 OK") BOOST_TEST_MESSAGE(e.id << ": " << e.status << " " << e.description);
    }
    return ok;
}

// Requests that are not health checks.
int items_at(const test_backend& b) {
    int n = 0;
    for (const auto& r : b.received()) n += r.target() != "/healthz";
    return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(endpoint_health_integration)

// One item at a time (max_parallel 1) and round-robin over [bad, good]: the
// bad endpoint gets every other first try until its third 503 in a row, then
// none; each of its 503s is retried on the good one, so no item is lost.
BOOST_AUTO_TEST_CASE(a_failing_endpoint_is_ejected_after_consecutive_failures_and_comes_back) {
    auto& m = metrics_registry::global().backend("b");
    const auto ejections = m.ejections.load(), returns = m.ejection_returns.load();
    test_backend bad([](const request_type&) { return status_reply(http::status::service_unavailable); });
    test_backend good;
    running_proxy proxy(proxy_config(bad.address() + ", " + good.address(),
                                     "    retries: {attempts: 2, on: [503], backoff: {base: 1ms, max: 1ms}}\n"
                                     "    outlier: {consecutive_failures: 3, base_ejection: 300ms}\n",
                                     "batch: {max_parallel: 1}\n"));
    BOOST_TEST(answered(proxy.port(), 20) == 20);
    BOOST_TEST(bad.requests() == 3);
    BOOST_TEST(m.ejections.load() - ejections == 1u);
    BOOST_TEST(answered(proxy.port(), 10) == 10);
    BOOST_TEST(bad.requests() == 3);  // still ejected: 300 ms have not passed (a batch takes milliseconds)

    // After its ejection it is in rotation again: the next batch reaches it.
    std::this_thread::sleep_for(std::chrono::milliseconds(350));
    BOOST_TEST(answered(proxy.port(), 10) == 10);
    BOOST_TEST(bad.requests() > 3);
    BOOST_TEST(m.ejection_returns.load() - returns >= 1u);
}

// With both endpoints ejected (max_ejected 100%) nothing is tried: every
// item is 503 B:overloaded naming the backend, and a pass-through request
// 503 with Retry-After, without a connection attempt.
BOOST_AUTO_TEST_CASE(all_endpoints_out_answers_503_at_once) {
    auto& m = metrics_registry::global().backend("b");
    test_backend one([](const request_type&) { return status_reply(http::status::bad_gateway); });
    test_backend two([](const request_type&) { return status_reply(http::status::gateway_timeout); });
    running_proxy proxy(proxy_config(one.address() + ", " + two.address(),
                                     "    retries: {attempts: 1}\n"
                                     "    outlier: {consecutive_failures: 1, base_ejection: 20s, max_ejected: 100%}\n",
                                     "batch: {max_parallel: 1}\n"));
    client c(proxy.port());
    auto first = post_batch(c, gets(2), "application/json");
    BOOST_TEST(first.result_int() == 207u);
    BOOST_TEST(one.requests() == 1);
    BOOST_TEST(two.requests() == 1);

    const auto refused = m.no_endpoint.load();
    auto res = post_batch(c, gets(5), "application/json");
    BOOST_TEST(res.result_int() == 207u);
    auto es = entries_of(res.body());
    BOOST_REQUIRE_EQUAL(es.size(), 5u);
    for (const auto& e : es) {
        BOOST_TEST(e.status == "HTTP/1.1 503 Service Unavailable");
        BOOST_TEST(e.error == "overloaded");
        BOOST_TEST(e.description == "backend b: no healthy endpoint", e.description);
    }
    auto through = c.request(make_request(http::verb::get, "/p"));
    BOOST_TEST(through.result_int() == 503u);
    BOOST_TEST(through[http::field::content_type] == "application/problem+json");
    BOOST_TEST(through.body().find("no healthy endpoint") != std::string::npos, through.body());
    const auto retry_after = std::stoi(std::string(through[http::field::retry_after]));
    BOOST_TEST(retry_after >= 1);
    BOOST_TEST(retry_after <= 20);
    BOOST_TEST(m.no_endpoint.load() - refused == 6u);
    BOOST_TEST(one.requests() + two.requests() == 2);  // nothing more reached them
}

// The active check flips an endpoint out of rotation and back in: while its
// /healthz fails, no item reaches it (the other endpoint takes them all);
// once it passes `healthy` times it gets items again.
BOOST_AUTO_TEST_CASE(an_endpoint_failing_its_health_check_gets_no_items_until_it_passes) {
    auto& m = metrics_registry::global().backend("b");
    std::atomic<bool> sick{false};
    test_backend flipping([&](const request_type& req) {
        if (req.target() == "/healthz")
            return status_reply(sick.load() ? http::status::service_unavailable : http::status::ok);
        return echo(req);
    });
    test_backend steady;
    const auto failed = m.health_checks_failed.load(), passed = m.health_checks_passed.load();
    running_proxy proxy(proxy_config(flipping.address() + ", " + steady.address(),
                                     "    health_check: {path: /healthz, interval: 50ms, timeout: 40ms, unhealthy: 2, "
                                     "healthy: 2}\n",
                                     "batch: {max_parallel: 4}\n"));
    BOOST_TEST_REQUIRE(eventually([&] { return m.health_checks_passed.load() - passed >= 2; }));
    BOOST_TEST(answered(proxy.port(), 10) == 10);
    BOOST_TEST(items_at(flipping) > 0);  // in rotation

    sick = true;
    BOOST_TEST_REQUIRE(eventually([&] { return m.unhealthy_endpoints.load() == 1; }));
    BOOST_TEST(m.health_checks_failed.load() - failed >= 2u);
    const int before = items_at(flipping);
    BOOST_TEST(answered(proxy.port(), 20) == 20);
    BOOST_TEST(items_at(flipping) == before);

    sick = false;
    BOOST_TEST_REQUIRE(eventually([&] { return m.unhealthy_endpoints.load() == 0; }));
    BOOST_TEST(answered(proxy.port(), 20) == 20);
    BOOST_TEST(items_at(flipping) > before);
}

// A single endpoint failing its checks leaves no endpoint: items are 503 at
// once, and no item request reaches it (the checks still do).
BOOST_AUTO_TEST_CASE(a_backend_whose_only_endpoint_is_unhealthy_answers_503_at_once) {
    auto& m = metrics_registry::global().backend("b");
    std::atomic<bool> sick{true};
    test_backend only([&](const request_type& req) {
        if (req.target() == "/healthz")
            return status_reply(sick.load() ? http::status::service_unavailable : http::status::ok);
        return echo(req);
    });
    running_proxy proxy(proxy_config(only.address(),
                                     "    health_check: {path: /healthz, interval: 50ms, timeout: 40ms, unhealthy: 1, "
                                     "healthy: 1}\n"));
    BOOST_TEST_REQUIRE(eventually([&] { return m.unhealthy_endpoints.load() == 1; }));
    client c(proxy.port());
    auto res = post_batch(c, gets(3), "application/json");
    for (const auto& e : entries_of(res.body())) BOOST_TEST(e.description == "backend b: no healthy endpoint");
    auto through = c.request(make_request(http::verb::get, "/p"));
    BOOST_TEST(through.result_int() == 503u);
    BOOST_TEST(!through[http::field::retry_after].empty());
    BOOST_TEST(items_at(only) == 0);

    sick = false;
    BOOST_TEST_REQUIRE(eventually([&] { return m.unhealthy_endpoints.load() == 0; }));
    BOOST_TEST(answered(proxy.port(), 3) == 3);
    BOOST_TEST(items_at(only) == 3);
}

// SIGHUP's reload with the backend's endpoints unchanged keeps its limiter:
// a batch held in flight at the limit, then another batch after the reload,
// never have more than max_in_flight at the backend together.
BOOST_AUTO_TEST_CASE(a_reload_during_a_long_batch_keeps_max_in_flight) {
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        reply r = echo(req);
        r.hold = [&] { return release.load(); };
        return r;
    });
    const auto yaml = proxy_config(backend.address(), "    max_in_flight: 2\n    queue_timeout: 20s\n",
                                   "batch: {max_parallel: 8}\n");
    running_proxy proxy(yaml);
    auto first = std::async(std::launch::async, [&] { return answered(proxy.port(), 6); });
    BOOST_TEST_REQUIRE(eventually([&] { return backend.in_flight() == 2; }));

    proxy.get().reload(load_config_string(yaml, "test.yaml"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the workers take the new state
    auto second = std::async(std::launch::async, [&] { return answered(proxy.port(), 6); });
    // Give the second batch time to reach the backend if the limit were lost.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    BOOST_TEST(backend.in_flight() == 2);
    release = true;
    BOOST_TEST(first.get() == 6);
    BOOST_TEST(second.get() == 6);
    BOOST_TEST(backend.max_concurrent() == 2);
}

// The same reload keeps an ejection: the ejected endpoint gets nothing after
// it, where a fresh backend would have put it back in rotation.
BOOST_AUTO_TEST_CASE(a_reload_keeps_the_ejections_of_an_unchanged_backend) {
    test_backend bad([](const request_type&) { return status_reply(http::status::service_unavailable); });
    test_backend good;
    const auto yaml = proxy_config(bad.address() + ", " + good.address(),
                                   "    retries: {attempts: 2, on: [503], backoff: {base: 1ms, max: 1ms}}\n"
                                   "    outlier: {consecutive_failures: 2, base_ejection: 30s}\n",
                                   "batch: {max_parallel: 1}\n");
    running_proxy proxy(yaml);
    BOOST_TEST(answered(proxy.port(), 10) == 10);
    BOOST_TEST(bad.requests() == 2);
    proxy.get().reload(load_config_string(yaml, "test.yaml"));
    BOOST_TEST(answered(proxy.port(), 10) == 10);
    BOOST_TEST(bad.requests() == 2);

    // A change of endpoints starts the backend fresh: the endpoint is tried again.
    test_backend other;
    proxy.get().reload(load_config_string(proxy_config(bad.address() + ", " + other.address(),
                                                       "    retries: {attempts: 2, on: [503]}\n",
                                                       "batch: {max_parallel: 1}\n"),
                                          "test.yaml"));
    BOOST_TEST(answered(proxy.port(), 4) == 4);
    BOOST_TEST(bad.requests() > 2);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
