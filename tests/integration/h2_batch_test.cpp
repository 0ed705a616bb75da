// Batches to h2c backends through the real proxy: items become streams on
// one multiplexed session; GOAWAY, refused and reset streams follow the
// retry rules of PRODUCT.md §3.
#include "tests/integration/batch_client.hpp"
#include "tests/integration/h2_test_server.hpp"
#include "tests/integration/harness.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <set>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;
using namespace std::chrono_literals;

namespace {

// `n` items "1".."n" with `method` on /items/<i>; POSTs carry a small body.
std::string json_batch(int n, const std::string& method) {
    std::string out = R"({"requests":[)";
    for (int i = 1; i <= n; ++i) {
        if (i > 1) out += ",";
        const auto id = std::to_string(i);
        out += R"({"id":")" + id + R"(","method":")" + method + R"(","url":"/items/)" + id + "\"";
        if (method == "POST") out += R"(,"body":"item )" + id + "\"";
        out += "}";
    }
    return out + "]}";
}

std::string h2c_config(const h2_test_server& server, const std::string& extra = "",
                       const std::string& top_extra = "") {
    return proxy_config(server.address(), "    protocol: h2c\n" + extra, top_extra);
}

int count_status(const std::map<std::string, entry>& es, const std::string& status) {
    int n = 0;
    for (const auto& [id, e] : es) n += e.status == status;
    return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(h2_batch)

BOOST_AUTO_TEST_CASE(hundred_items_are_hundred_streams_on_one_connection) {
    // No answer leaves until all 100 streams are open at once.
    std::atomic<int> arrived{0};
    h2_test_server server([&](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        ++arrived;
        r.hold = [&] { return arrived.load() >= 100; };
        return r;
    });
    running_proxy proxy(h2c_config(server, "", "batch:\n  max_parallel: 100\n"));
    client c(proxy.port());
    auto res = post_batch(c, json_batch(100, "GET"), "application/json");
    BOOST_TEST(res.result_int() == 207u);
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), 100u);
    BOOST_TEST(count_status(es, "HTTP/1.1 200 OK") == 100);
    BOOST_TEST(es["42"].body == "GET /items/42\n");
    BOOST_TEST(server.connections() == 1);
    BOOST_TEST(server.requests() == 100);
    BOOST_TEST(server.max_concurrent_streams_seen() == 100);
    std::set<std::int32_t> streams;
    for (const auto& r : server.received()) {
        streams.insert(r.stream_id);
        BOOST_TEST(r.scheme == "http");
        BOOST_TEST(r.authority == server.address());
        BOOST_TEST(r.header("via") == "1.1 batchgate");
    }
    BOOST_TEST(streams.size() == 100u);
}

BOOST_AUTO_TEST_CASE(streams_above_goaway_are_retried_even_for_post) {
    for (const std::string method : {"POST", "GET"}) {
        BOOST_TEST_CONTEXT(method) {
            h2_test_server server(
                [](const h2_seen_request& req) {
                    h2_reply r = h2_echo(req);
                    r.delay = 50ms;  // all items are on the wire when GOAWAY comes
                    return r;
                },
                h2_server_options{100, 10, 1});
            running_proxy proxy(h2c_config(server, "", "batch:\n  max_parallel: 40\n"));
            client c(proxy.port());
            auto res = post_batch(c, json_batch(40, method), "application/json");
            BOOST_TEST(res.result_int() == 207u);
            auto es = by_id(entries_of(res.body()));
            BOOST_REQUIRE_EQUAL(es.size(), 40u);
            BOOST_TEST(count_status(es, "HTTP/1.1 200 OK") == 40);
            if (method == "POST") BOOST_TEST(es["33"].body == "POST /items/33\nitem 33");
            // Ten answered on the first connection, the rest replayed on a
            // second. (The test server counts the refused streams it read
            // before its GOAWAY left as requests too: more than 40.)
            BOOST_TEST(server.connections() == 2);
            BOOST_TEST(server.requests() > 40);
            std::set<std::string> paths;
            for (const auto& r : server.received()) paths.insert(r.path);
            BOOST_TEST(paths.size() == 40u);
        }
    }
}

BOOST_AUTO_TEST_CASE(reset_stream_is_502_for_post_and_retried_for_get) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.reset = req.path.starts_with("/reset");  // RST_STREAM(INTERNAL_ERROR): it may have been processed
        return r;
    });
    running_proxy proxy(h2c_config(server));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[
        {"id":"p","method":"POST","url":"/reset/p","body":"x"},
        {"id":"g","method":"GET","url":"/reset/g"},
        {"id":"ok","method":"POST","url":"/fine","body":"y"}]})",
                          "application/json");
    BOOST_TEST(res.result_int() == 207u);
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), 3u);
    BOOST_TEST(es["p"].status == "HTTP/1.1 502 Bad Gateway");
    BOOST_TEST(es["p"].error == "upstream-failure");
    BOOST_TEST(es["g"].status == "HTTP/1.1 502 Bad Gateway");
    BOOST_TEST(es["ok"].status == "HTTP/1.1 200 OK");
    int post_tries = 0, get_tries = 0;
    for (const auto& r : server.received()) {
        post_tries += r.path == "/reset/p";
        get_tries += r.path == "/reset/g";
    }
    BOOST_TEST(post_tries == 1);  // never replayed: the backend may have acted on it
    BOOST_TEST(get_tries == 2);   // retries.attempts defaults to 2
    BOOST_TEST(server.connections() == 1);
}

BOOST_AUTO_TEST_CASE(timed_out_item_resets_its_stream_and_others_finish) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.silent = req.path == "/silent";
        return r;
    });
    running_proxy proxy(h2c_config(server, "    timeout: 200ms\n"));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[
        {"id":"s","method":"GET","url":"/silent"},
        {"id":"a","method":"GET","url":"/a"},
        {"id":"b","method":"DELETE","url":"/b"}]})",
                          "application/json");
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), 3u);
    BOOST_TEST(es["s"].status == "HTTP/1.1 504 Gateway Timeout");
    BOOST_TEST(es["s"].error == "upstream-timeout");
    BOOST_TEST(es["a"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["b"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(eventually([&] { return server.resets_received() == 1; }));
    BOOST_TEST(server.connections() == 1);
}

BOOST_AUTO_TEST_CASE(client_gone_resets_outstanding_streams) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.silent = true;
        return r;
    });
    running_proxy proxy(h2c_config(server, "    timeout: 30s\n"));
    {
        client c(proxy.port());
        auto req = make_request(http::verb::post, "/batch", json_batch(5, "GET"));
        req.set(http::field::content_type, "application/json");
        req.set(http::field::host, "batchgate.test");
        req.prepare_payload();
        http::write(c.socket(), req);
        BOOST_REQUIRE(eventually([&] { return server.requests() == 5; }));
    }  // the client closes its connection with five items outstanding
    BOOST_TEST(eventually([&] { return server.resets_received() == 5; }));
}

BOOST_AUTO_TEST_CASE(unreachable_h2c_backend_is_502_per_item) {
    running_proxy proxy(proxy_config("127.0.0.1:" + std::to_string(closed_port()), "    protocol: h2c\n"));
    client c(proxy.port());
    auto res = post_batch(c, json_batch(2, "GET"), "application/json");
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), 2u);
    BOOST_TEST(es["1"].status == "HTTP/1.1 502 Bad Gateway");
    BOOST_TEST(es["1"].description.find("backend b: cannot connect") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(refused_stream_is_replayed_even_for_post) {
    // REFUSED_STREAM once per path: the backend never processed it, so even
    // a POST goes again, and that first replay costs no attempt.
    first_time_for_path first_time;
    h2_test_server server([&](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.refuse = first_time(req.path);
        return r;
    });
    running_proxy proxy(h2c_config(server, "    retries: {attempts: 1}\n"));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[
        {"id":"p","method":"POST","url":"/p","body":"x"},
        {"id":"g","method":"GET","url":"/g"}]})",
                          "application/json");
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), 2u);
    BOOST_TEST(es["p"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["p"].body == "POST /p\nx");
    BOOST_TEST(es["g"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(server.requests() == 4);  // each refused once, then answered
    BOOST_TEST(server.connections() == 1);
}

BOOST_AUTO_TEST_CASE(later_refused_stream_replays_count_against_attempts) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.refuse = true;
        return r;
    });
    for (unsigned attempts : {1u, 3u}) {
        BOOST_TEST_CONTEXT("retries.attempts " << attempts) {
            const int before = server.requests();
            // `reset` is not in `on`: refusals are replayed without it.
            running_proxy proxy(h2c_config(server, "    retries: {attempts: " + std::to_string(attempts) +
                                                       ", on: [connect-failure]}\n"));
            client c(proxy.port());
            auto res = post_batch(c, R"({"requests":[{"id":"p","method":"POST","url":"/p","body":"x"}]})",
                                  "application/json");
            auto es = by_id(entries_of(res.body()));
            BOOST_REQUIRE_EQUAL(es.size(), 1u);
            BOOST_TEST(es["p"].status == "HTTP/1.1 502 Bad Gateway");
            BOOST_TEST(es["p"].description ==
                       "backend b: stream refused by the backend " + std::to_string(attempts + 1) + " times");
            // The first replay is free; every later one is an attempt.
            BOOST_TEST(server.requests() - before == static_cast<int>(attempts) + 1);
        }
    }
}

BOOST_AUTO_TEST_CASE(switching_protocols_is_502_and_trailers_are_dropped) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        if (req.path == "/switch") r.status = 101;
        if (req.path == "/trailers") r.trailers = {{"x-checksum", "abc"}};
        return r;
    });
    running_proxy proxy(h2c_config(server, "    retries: {attempts: 1}\n"));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[
        {"id":"s","method":"GET","url":"/switch"},
        {"id":"t","method":"GET","url":"/trailers"}]})",
                          "application/json");
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), 2u);
    BOOST_TEST(es["s"].status == "HTTP/1.1 502 Bad Gateway");
    BOOST_TEST(es["s"].error == "upstream-failure");
    BOOST_TEST(es["t"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["t"].body == "GET /trailers\n");
    BOOST_TEST(res.body().find("x-checksum") == std::string::npos);
    // And passed through to an HTTP/1.1 client: the answer, without the trailer.
    auto through = c.request(make_request(http::verb::get, "/trailers"));
    BOOST_TEST(through.result_int() == 200u);
    BOOST_TEST(through.body() == "GET /trailers\n");
    BOOST_TEST(through["x-checksum"].empty());
    auto switched = c.request(make_request(http::verb::get, "/switch"));
    BOOST_TEST(switched.result_int() == 502u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
