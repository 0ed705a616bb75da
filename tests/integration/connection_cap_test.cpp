// max_connections per endpoint is a cap for the whole process: with two
// workers and `max_connections: 1`, while one worker's connection is busy
// the other worker opens none (HTTP/1.1 and h2c), its items wait for the
// slot and are answered once it is free.
#include "tests/integration/batch_client.hpp"
#include "tests/integration/h2_test_server.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"
#include "proxy/core/metrics.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <future>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

std::string gets(int n, const std::string& from) {
    std::string out = R"({"requests":[)";
    for (int i = 1; i <= n; ++i)
        out += std::string(i > 1 ? "," : "") + R"({"id":")" + std::to_string(i) + R"(","method":"GET","url":"/)" +
               from + "/" + std::to_string(i) + "\"}";
    return out + "]}";
}

// Two workers; the accept loop hands the first client connection to worker
// 0 and the second to worker 1.
std::string two_workers(const std::string& backend, const std::string& extra) {
    auto yaml = proxy_config(backend, "    max_connections: 1\n    queue_timeout: 20s\n" + extra,
                             "batch: {max_parallel: 4}\n");
    return "workers: 2\n" + yaml.substr(yaml.find('\n') + 1);  // replaces "workers: 1"
}

int answered(std::uint16_t port, const std::string& from) {
    client c(port);
    auto res = post_batch(c, gets(4, from), "application/json");
    int ok = 0;
    for (const auto& e : entries_of(res.body())) {
        ok += e.status == "HTTP/1.1 200 OK";
        if (e.status != "HTTP/1.1 200 OK") BOOST_TEST_MESSAGE(e.id << ": " << e.status << " " << e.description);
    }
    return ok;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(connection_cap)

BOOST_AUTO_TEST_CASE(http1_two_workers_never_open_a_second_connection) {
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        reply r = echo(req);
        r.hold = [&] { return release.load(); };
        return r;
    });
    running_proxy proxy(two_workers(backend.address(), ""));
    auto first = std::async(std::launch::async, [&] { return answered(proxy.port(), "a"); });
    BOOST_TEST_REQUIRE(eventually([&] { return backend.in_flight() == 1; }));
    auto second = std::async(std::launch::async, [&] { return answered(proxy.port(), "b"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // time for a second connection, were it allowed
    BOOST_TEST(backend.connections() == 1);
    BOOST_TEST(backend.in_flight() == 1);
    release = true;
    BOOST_TEST(first.get() == 4);
    BOOST_TEST(second.get() == 4);
    BOOST_TEST(backend.max_concurrent() == 1);  // one connection at a time: one request at a time
    BOOST_TEST(backend.requests() == 8);
}

BOOST_AUTO_TEST_CASE(h2c_two_workers_never_open_a_second_connection) {
    std::atomic<bool> release{false};
    h2_test_server backend([&](const h2_seen_request& req) {
        auto r = h2_echo(req);
        r.hold = [&] { return release.load(); };
        return r;
    });
    running_proxy proxy(two_workers(backend.address(), "    protocol: h2c\n"));
    auto first = std::async(std::launch::async, [&] { return answered(proxy.port(), "a"); });
    BOOST_TEST_REQUIRE(eventually([&] { return backend.streams_open() == 4; }));  // multiplexed on one
    auto second = std::async(std::launch::async, [&] { return answered(proxy.port(), "b"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    BOOST_TEST(backend.connections() == 1);
    BOOST_TEST(backend.streams_open() == 4);
    release = true;
    BOOST_TEST(first.get() == 4);
    BOOST_TEST(second.get() == 4);
    BOOST_TEST(backend.requests() == 8);
}

// Items queued for the one connection end when their batch does, not at
// queue_timeout or when the connection comes free: a pass-through request
// holds the connection, and the queued items of a batch whose deadline
// passes, or whose client goes away, stop counting as in flight at once.
struct held_connection {
    std::atomic<bool> release{false};
    test_backend backend{[this](const request_type& req) {
        reply r = echo(req);
        r.hold = [this] { return release.load(); };
        return r;
    }};
    running_proxy proxy;
    client holder;
    std::atomic<std::int64_t>& in_flight = metrics_registry::global().backend("b").in_flight;

    explicit held_connection(const std::string& deadline)
        : proxy(proxy_config(backend.address(), "    max_connections: 1\n    queue_timeout: 60s\n    timeout: 60s\n",
                             "batch: {max_parallel: 4, deadline: " + deadline + "}\n")),
          holder(proxy.port()) {
        holder.send_raw("GET /held HTTP/1.1\r\nHost: t\r\n\r\n");
        BOOST_TEST_REQUIRE(eventually([&] { return backend.in_flight() == 1; }));
    }
    ~held_connection() { release = true; }
};

BOOST_AUTO_TEST_CASE(items_queued_for_a_connection_end_at_the_batch_deadline) {
    held_connection held("300ms");
    client c(held.proxy.port());
    auto res = post_batch(c, gets(3, "d"), "application/json");
    auto es = entries_of(res.body());
    BOOST_REQUIRE_EQUAL(es.size(), 3u);
    for (const auto& e : es) {
        BOOST_TEST(e.status == "HTTP/1.1 504 Gateway Timeout");
        BOOST_TEST(e.error == "upstream-timeout");
    }
    BOOST_TEST(eventually([&] { return held.in_flight.load() == 1; }));  // the pass-through request only
    BOOST_TEST(held.backend.requests() == 1);  // nothing queued ever went out
}

BOOST_AUTO_TEST_CASE(items_queued_for_a_connection_end_when_their_client_goes_away) {
    held_connection held("60s");
    {
        client c(held.proxy.port());
        const std::string body = gets(3, "gone");
        c.send_raw("POST /batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
        BOOST_TEST_REQUIRE(eventually([&] { return held.in_flight.load() == 4; }));
    }
    BOOST_TEST(eventually([&] { return held.in_flight.load() == 1; }));
    BOOST_TEST(held.backend.requests() == 1);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
