// HTTP/2 clients (h2c with prior knowledge) against the real server: batches
// and pass-through over streams, many streams on one connection, bodies
// larger than the flow-control windows, the 207 streamed in DATA frames,
// and the protections (header list size, rapid reset).
#include "tests/integration/h2_test_client.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"

#include "proxy/metrics.hpp"

#include <boost/test/unit_test.hpp>

#include <future>

using namespace batchgate;
using namespace batchgate::test;

namespace {

reply scripted(const request_type& req) {
    std::string_view t = req.target();
    reply r;
    if (t.substr(0, 6) == "/slow/") {
        r.delay = std::chrono::milliseconds(std::stoi(std::string(t.substr(6))));
        r.response.body() = "slow";
    } else if (t == "/upload") {
        // Echo the whole body back: the download is as large as the upload.
        r.response.set("X-Received-Bytes", std::to_string(req.body().size()));
        r.response.body() = req.body();
    } else {
        return echo(req);
    }
    return r;
}

std::string json_batch(const std::vector<std::string>& urls) {
    std::string body = "{\"requests\":[";
    for (std::size_t i = 0; i < urls.size(); ++i) {
        if (i) body += ",";
        body += "{\"id\":\"" + std::to_string(i + 1) + "\",\"method\":\"GET\",\"url\":\"" + urls[i] + "\"}";
    }
    return body + "]}";
}

h2_client_request batch_request(const std::vector<std::string>& urls) {
    return h2_client_request{"POST", "/batch", {{"content-type", "application/json"}, {"accept", "application/json"}},
                      json_batch(urls)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(h2_frontend)

BOOST_AUTO_TEST_CASE(pass_through_over_h2c) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address()));
    h2_test_client client(proxy.port());
    auto r = client.get("/users/7?x=1");
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(r.complete);
    BOOST_TEST(r.body == "GET /users/7?x=1\n");
    BOOST_TEST(r.header("x-echo-method") == "GET");
    BOOST_TEST(r.header("connection").empty());  // connection-specific headers never appear in HTTP/2
    auto seen = backend.received();
    BOOST_REQUIRE_EQUAL(seen.size(), 1u);
    BOOST_TEST(seen[0][http::field::host] == backend.address());
    BOOST_TEST(seen[0]["x-forwarded-proto"] == "http");
}

BOOST_AUTO_TEST_CASE(batch_over_h2c) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address()));
    h2_test_client client(proxy.port());
    auto r = client.exchange({batch_request({"/users/1", "/users/2", "/users/3"})}).at(0);
    BOOST_TEST(r.status == 207u);
    BOOST_TEST(r.complete);
    BOOST_TEST(r.header("content-type") == "application/json");
    for (const char* href : {"/users/1", "/users/2", "/users/3"})
        BOOST_TEST(r.body.find(std::string("\"href\":\"") + href + "\"") != std::string::npos);
    BOOST_TEST(backend.requests() == 3);
}

BOOST_AUTO_TEST_CASE(batch_refusals_are_problem_json) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address()));
    h2_test_client client(proxy.port());
    auto replies = client.exchange({h2_client_request{"GET", "/batch", {}, {}},
                                    h2_client_request{"POST", "/batch", {{"content-type", "text/plain"}}, "x"}});
    BOOST_TEST(replies[0].status == 405u);
    BOOST_TEST(replies[0].header("allow") == "POST");
    BOOST_TEST(replies[0].header("content-type") == "application/problem+json");
    BOOST_TEST(replies[1].status == 415u);
    BOOST_TEST(backend.requests() == 0);
}

BOOST_AUTO_TEST_CASE(hundred_concurrent_streams_on_one_connection) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address(), "    max_connections: 200\n"));
    h2_test_client client(proxy.port());
    std::vector<h2_client_request> requests;
    for (int i = 0; i < 100; ++i) requests.push_back(h2_client_request{"GET", "/slow/50?n=" + std::to_string(i), {}, {}});
    auto replies = client.exchange(requests);
    int ok = 0;
    for (const auto& r : replies) ok += r.status == 200 && r.body == "slow";
    BOOST_TEST(ok == 100);
    BOOST_TEST(backend.requests() == 100);
    BOOST_TEST(backend.max_concurrent() > 1);  // the streams really ran side by side
}

BOOST_AUTO_TEST_CASE(large_bodies_both_ways_through_flow_control) {
    test_backend backend(scripted);
    // Windows far smaller than the body: the upload only completes if the
    // proxy reopens them as it forwards bytes.
    running_proxy proxy(proxy_config(backend.address(), "",
                                     "http2:\n  initial_window_size: 16KiB\n  connection_window_size: 64KiB\n"));
    h2_test_client client(proxy.port());
    std::string body(4 * 1024 * 1024, 'x');
    for (std::size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + (i / 4096) % 26);
    auto r = client.exchange({h2_client_request{"POST", "/upload", {{"content-type", "application/octet-stream"}}, body}})
                 .at(0);
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(r.header("x-received-bytes") == std::to_string(body.size()));
    BOOST_TEST(r.body.size() == body.size());
    BOOST_TEST((r.body == body));
    BOOST_TEST(r.chunks.size() > 1u);  // streamed in many DATA frames
}

BOOST_AUTO_TEST_CASE(multistatus_streams_the_fast_entry_first) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address()));
    h2_test_client client(proxy.port());
    auto r = client.exchange({batch_request({"/slow/400", "/users/1"})}).at(0);
    BOOST_TEST(r.status == 207u);
    std::size_t fast_chunk = r.chunks.size(), slow_chunk = r.chunks.size();
    for (std::size_t i = 0; i < r.chunks.size(); ++i) {
        if (fast_chunk == r.chunks.size() && r.chunks[i].find("\"/users/1\"") != std::string::npos) fast_chunk = i;
        if (slow_chunk == r.chunks.size() && r.chunks[i].find("\"/slow/400\"") != std::string::npos) slow_chunk = i;
    }
    BOOST_REQUIRE(fast_chunk < r.chunks.size());
    BOOST_REQUIRE(slow_chunk < r.chunks.size());
    // The fast entry travelled in its own DATA frame, before the slow one's.
    BOOST_TEST(fast_chunk < slow_chunk);
    BOOST_TEST(r.body.find("\"/users/1\"") < r.body.find("\"/slow/400\""));
}

BOOST_AUTO_TEST_CASE(header_list_over_the_limit_resets_only_that_stream) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address(), "", "http2:\n  max_header_list_size: 4KiB\n"));
    h2_test_client client(proxy.port());
    auto replies = client.exchange({h2_client_request{"GET", "/users/1", {{"x-big", std::string(8000, 'a')}}, {}}});
    BOOST_TEST(replies[0].status == 0u);
    BOOST_TEST(replies[0].closed);
    BOOST_TEST(replies[0].error_code != 0u);
    BOOST_TEST(backend.requests() == 0);
    auto after = client.get("/users/2");  // the connection itself is fine
    BOOST_TEST(after.status == 200u);
}

BOOST_AUTO_TEST_CASE(rapid_reset_client_is_cut_off_others_keep_working) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address(), "", "http2:\n  reset_burst: 50\n  reset_rate: 10\n"));
    h2_test_client bystander(proxy.port());
    BOOST_TEST(bystander.get("/users/1").status == 200u);

    const auto cut_before = metrics_registry::global().limit_breaches(limit_kind::http2_goaway);
    h2_test_client attacker(proxy.port());
    BOOST_TEST(attacker.rapid_reset(2000));  // the server said GOAWAY and closed
    BOOST_REQUIRE(attacker.goaway_code().has_value());
    BOOST_TEST(*attacker.goaway_code() != 0u);  // an error code, not a graceful NO_ERROR
    BOOST_TEST(eventually([&] { return metrics_registry::global().limit_breaches(limit_kind::http2_goaway) > cut_before; }));

    BOOST_TEST(bystander.get("/users/2").status == 200u);
    h2_test_client newcomer(proxy.port());
    BOOST_TEST(newcomer.get("/users/3").status == 200u);
}

BOOST_AUTO_TEST_CASE(http1_upgrade_to_h2c_is_declined_by_answering_in_http1) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());
    auto req = make_request(http::verb::get, "/users/1");
    req.set(http::field::connection, "Upgrade, HTTP2-Settings");
    req.set(http::field::upgrade, "h2c");
    req.set("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA");
    auto res = c.request(req);
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res.version() == 11u);
    auto seen = backend.received();
    BOOST_REQUIRE_EQUAL(seen.size(), 1u);
    BOOST_TEST(seen[0][http::field::upgrade].empty());  // hop-by-hop: never forwarded
}

BOOST_AUTO_TEST_CASE(drain_sends_goaway_and_finishes_streams) {
    test_backend backend(scripted);
    auto proxy = std::make_unique<running_proxy>(proxy_config(backend.address()));
    h2_test_client client(proxy->port());
    BOOST_TEST(client.get("/users/1").status == 200u);
    auto slow = std::async(std::launch::async, [&] { return client.get("/slow/300"); });
    BOOST_TEST(eventually([&] { return backend.requests() == 2; }));
    proxy->get().drain();
    auto r = slow.get();
    BOOST_TEST(r.status == 200u);  // the stream in flight finished
    BOOST_TEST(client.wait_closed(std::chrono::seconds(5)));
    BOOST_REQUIRE(client.goaway_code().has_value());
    BOOST_TEST(*client.goaway_code() == 0u);  // GOAWAY(NO_ERROR)
}

BOOST_AUTO_TEST_CASE(batch_items_are_bounded_per_connection_not_only_per_stream) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address(), "", "http2:\n  max_batch_items_in_flight: 2\n"));
    h2_test_client client(proxy.port());
    const std::vector<std::string> items{"/slow/60", "/slow/61", "/slow/62", "/slow/63"};
    auto replies = client.exchange({batch_request(items), batch_request(items), batch_request(items)});
    for (const auto& r : replies) {
        BOOST_TEST(r.status == 207u);
        std::size_t ok = 0;
        for (auto at = r.body.find("\"status\":200"); at != std::string::npos; at = r.body.find("\"status\":200", at + 1))
            ++ok;
        BOOST_TEST(ok == items.size());
    }
    BOOST_TEST(backend.requests() == 12);
    BOOST_TEST(backend.max_concurrent() <= 2);  // batch.max_parallel (64) alone would allow 12
}

BOOST_AUTO_TEST_CASE(idle_connection_gets_goaway_and_is_closed) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address(), "", "limits:\n  idle_timeout: 300ms\n"));
    h2_test_client client(proxy.port());
    BOOST_TEST(client.get("/users/1").status == 200u);
    BOOST_TEST(client.wait_closed(std::chrono::seconds(5)));
    BOOST_REQUIRE(client.goaway_code().has_value());
    BOOST_TEST(*client.goaway_code() == 0u);  // GOAWAY(NO_ERROR) before the close
}

BOOST_AUTO_TEST_CASE(stalled_request_body_is_answered_408) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address(), "", "limits:\n  read_timeout: 300ms\n"));
    h2_test_client client(proxy.port());
    auto batch = client.stalled_upload("/batch");
    BOOST_TEST(batch.status == 408u);
    BOOST_TEST(batch.complete);
    BOOST_TEST(batch.closed);            // RST_STREAM(NO_ERROR) after the answer frees the stream
    BOOST_TEST(batch.error_code == 0u);
    auto passthrough = client.stalled_upload("/users/1");
    BOOST_TEST(passthrough.status == 408u);
    BOOST_TEST(passthrough.closed);
    BOOST_TEST(client.get("/users/2").status == 200u);  // the connection is still fine
}

BOOST_AUTO_TEST_CASE(unacknowledged_settings_end_in_goaway_settings_timeout) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address(), "", "http2:\n  settings_timeout: 300ms\n"));
    client raw(proxy.port(), 5000);
    // The preface and an empty SETTINGS, and then never a SETTINGS ACK.
    raw.send_raw(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string("\0\0\0\x04\0\0\0\0\0", 9));
    const std::string got = raw.read_until_close();
    bool goaway_settings_timeout = false;
    for (std::size_t at = 0; at + 9 <= got.size();) {
        const auto length = (std::size_t(std::uint8_t(got[at])) << 16) | (std::size_t(std::uint8_t(got[at + 1])) << 8) |
                            std::uint8_t(got[at + 2]);
        const auto type = std::uint8_t(got[at + 3]);
        if (type == 7 && length >= 8 && at + 9 + 8 <= got.size())
            goaway_settings_timeout = std::uint8_t(got[at + 9 + 7]) == 0x4;  // error code SETTINGS_TIMEOUT
        at += 9 + length;
    }
    BOOST_TEST(goaway_settings_timeout);
}

BOOST_AUTO_TEST_SUITE_END()
