// max_connections per endpoint is a cap for the whole process: with two
// workers and `max_connections: 1`, while one worker's connection is busy
// the other worker opens none (HTTP/1.1 and h2c), its items wait for the
// slot and are answered once it is free.
#include "tests/integration/batch_client.hpp"
#include "tests/integration/h2_test_server.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <future>

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

BOOST_AUTO_TEST_SUITE_END()
