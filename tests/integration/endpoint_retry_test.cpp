// A backend with several endpoints: a retry goes to another endpoint than
// the one that just failed, so a dead endpoint costs no item (or
// pass-through request) while another is up, over HTTP/1.1 and h2c.
#include "tests/integration/batch_client.hpp"
#include "tests/integration/h2_test_server.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"

#include <boost/test/unit_test.hpp>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

std::string gets(int n) {
    std::string out = R"({"requests":[)";
    for (int i = 1; i <= n; ++i)
        out += std::string(i > 1 ? "," : "") + R"({"id":")" + std::to_string(i) + R"(","method":"GET","url":"/items/)" +
               std::to_string(i) + "\"}";
    return out + "]}";
}

// `live` after a port nothing listens on: round-robin sends about half the
// first tries to the dead one. The retry budget is opened fully: with half
// of all first tries failing, the default 20% (at least 3 retries in flight)
// would rightly refuse some of the retries.
std::string two_endpoints(const std::string& live, const std::string& extra = "") {
    return proxy_config("127.0.0.1:" + std::to_string(closed_port()) + ", " + live,
                        extra + "    retries: {budget: 100%}\n", "batch: {max_parallel: 8}\n");
}

void every_item_is_answered(std::uint16_t proxy_port, int items) {
    client c(proxy_port);
    auto res = post_batch(c, gets(items), "application/json");
    BOOST_TEST(res.result_int() == 207u);
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), static_cast<std::size_t>(items));
    int ok = 0;
    for (const auto& [id, e] : es) {
        ok += e.status == "HTTP/1.1 200 OK";
        if (e.status != "HTTP/1.1 200 OK") BOOST_TEST_MESSAGE("item " << id << ": " << e.status << " " << e.description);
    }
    BOOST_TEST(ok == items);
    for (int i = 0; i < 10; ++i) {
        auto through = c.request(make_request(http::verb::get, "/p/" + std::to_string(i)));
        BOOST_TEST(through.result_int() == 200u, through.body());
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(endpoint_retry)

BOOST_AUTO_TEST_CASE(a_dead_http1_endpoint_costs_no_item_while_another_is_up) {
    test_backend live;
    running_proxy proxy(two_endpoints(live.address()));
    every_item_is_answered(proxy.port(), 40);
    BOOST_TEST(live.requests() == 50);
}

BOOST_AUTO_TEST_CASE(a_dead_h2c_endpoint_costs_no_item_while_another_is_up) {
    h2_test_server live;
    running_proxy proxy(two_endpoints(live.address(), "    protocol: h2c\n"));
    every_item_is_answered(proxy.port(), 40);
    BOOST_TEST(live.requests() == 50);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
