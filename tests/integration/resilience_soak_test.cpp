// The resilience paths do not leak: one proxy in front of backends that
// refuse, reset, stall, answer 503 (with and without Retry-After) and flip
// their health endpoint, driven through equal rounds of batches and
// pass-through requests. After a second round the process holds no more
// descriptors than after the first (a leaked socket, timer or session per
// failed item would add dozens per round).
#include "tests/integration/batch_client.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

std::size_t open_descriptors() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// The count once it held still for 100 ms (sockets the backends' threads
// close a moment after the proxy closed its end, a health check between
// two checks), polled, at most 3 s.
std::size_t settled_descriptors() {
    using clock = std::chrono::steady_clock;
    const auto give_up = clock::now() + std::chrono::seconds(3);
    std::size_t last = open_descriptors();
    auto since = clock::now();
    while (clock::now() < give_up && clock::now() - since < std::chrono::milliseconds(100)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        const std::size_t now = open_descriptors();
        if (now != last) {
            last = now;
            since = clock::now();
        }
    }
    return last;
}

reply unavailable(bool with_retry_after) {
    reply r;
    r.response.result(http::status::service_unavailable);
    if (with_retry_after) r.response.set(http::field::retry_after, "1");
    r.response.body() = "busy\n";
    return r;
}

const std::vector<std::string> kinds{"refuse", "reset", "stall", "busy", "busy-ra", "flip"};

std::string batch_of_every_kind(int per_kind) {
    std::string out = R"({"requests":[)";
    int id = 0;
    for (int i = 0; i < per_kind; ++i)
        for (const auto& k : kinds) {
            if (id++) out += ",";
            out += R"({"id":")" + std::to_string(id) + R"(","method":"GET","url":"/)" + k + "/" + std::to_string(i) + "\"}";
        }
    return out + "]}";
}

struct backends {
    test_backend resetting{[](const request_type&) {
        reply r;
        r.act = misbehaviour::reset;
        return r;
    }};
    test_backend stalling{[](const request_type&) {
        reply r;
        r.act = misbehaviour::silent;
        return r;
    }};
    test_backend busy{[](const request_type&) { return unavailable(false); }};
    test_backend busy_with_retry_after{[](const request_type&) { return unavailable(true); }};
    // Its health endpoint fails every other check, so it keeps going out of
    // rotation and coming back while items run.
    std::atomic<int> checks{0};
    test_backend flipping{[this](const request_type& req) {
        if (req.target() == "/healthz" && ++checks % 2 == 0) return unavailable(false);
        return echo(req);
    }};
    test_backend steady;

    std::string config() const {
        auto route = [](const std::string& k) { return "  - prefix: /" + k + "/\n    backend: " + k + "\n"; };
        std::string routes = "routes:\n";
        for (const auto& k : kinds) routes += route(k);
        // One connection per endpoint: a pool's idle connections cannot
        // differ from one round to the next, so only a leak changes the count.
        const std::string fast = "    timeout: 200ms\n    connect_timeout: 200ms\n    max_connections: 1\n";
        return "workers: 2\naccess_log: false\nlisten:\n  - address: 127.0.0.1:0\n"
               "batch: {max_parallel: 8}\n" +
               routes +
               "backends:\n"
               "  refuse:\n    endpoints: [127.0.0.1:" + std::to_string(closed_port()) + "]\n" + fast +
               "  reset:\n    endpoints: [" + resetting.address() + "]\n" + fast +
               "    outlier: {consecutive_failures: 2, base_ejection: 50ms, max_ejected: 100%}\n"
               "  stall:\n    endpoints: [" + stalling.address() + "]\n" +
               "    timeout: 50ms\n    connect_timeout: 200ms\n    max_connections: 1\n"
               "  busy:\n    endpoints: [" + busy.address() + "]\n" + fast +
               "    retries: {attempts: 2, on: [503], backoff: {base: 1ms, max: 2ms}}\n"
               "  busy-ra:\n    endpoints: [" + busy_with_retry_after.address() + "]\n" + fast +
               "    retries: {attempts: 2, on: [503], backoff: {base: 1ms, max: 2ms}}\n"
               "  flip:\n    endpoints: [" + flipping.address() + ", " + steady.address() + "]\n" + fast +
               "    health_check: {path: /healthz, interval: 100ms, timeout: 50ms, unhealthy: 1, healthy: 1}\n";
    }
};

// One round: batches over two client connections and a pass-through
// request to every kind of backend. Every item and request gets an answer.
void one_round(std::uint16_t port) {
    for (int connection = 0; connection < 2; ++connection) {
        client c(port);
        for (int b = 0; b < 2; ++b) {
            auto res = post_batch(c, batch_of_every_kind(5), "application/json");
            BOOST_TEST(res.result_int() == 207u);
            BOOST_TEST(entries_of(res.body()).size() == 5 * kinds.size());
        }
        for (const auto& k : kinds) {
            auto through = c.request(make_request(http::verb::get, "/" + k + "/p"));
            BOOST_TEST(through.result_int() >= 200u, k);
        }
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(resilience_soak)

BOOST_AUTO_TEST_CASE(a_second_equal_round_ends_with_no_more_descriptors_than_the_first) {
    backends b;
    running_proxy proxy(b.config());
    one_round(proxy.port());  // warm-up: pools, health-check connections, worker state
    one_round(proxy.port());
    const std::size_t after_first = settled_descriptors();
    one_round(proxy.port());
    const bool no_more = eventually([&] { return settled_descriptors() <= after_first; }, std::chrono::seconds(5));
    BOOST_TEST(no_more, "descriptors: " << after_first << " after the first round, " << settled_descriptors()
                                        << " after the second");
    BOOST_TEST_MESSAGE("descriptors after the first round: " << after_first << ", after the second: "
                                                              << settled_descriptors());
    BOOST_TEST(b.steady.requests() > 0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
