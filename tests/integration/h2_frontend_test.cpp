// HTTP/2 clients (h2c with prior knowledge) against the real server: batches
// and pass-through over streams, many streams on one connection, bodies
// larger than the flow-control windows, the 207 streamed in DATA frames,
// and the protections (header list size, rapid reset).
#include "tests/integration/h2_test_client.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/raw_h2.hpp"
#include "tests/integration/test_backend.hpp"

#include "proxy/core/metrics.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <future>
#include <tuple>
#include <vector>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

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

// The same request checks as over HTTP/1.1 (one dispatcher serves both).
BOOST_AUTO_TEST_CASE(unknown_expectation_gives_417_and_reaches_no_backend) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address()));
    h2_test_client client(proxy.port());
    auto r = client.exchange({h2_client_request{"GET", "/users/1", {{"expect", "something-else"}}, ""}}).at(0);
    BOOST_TEST(r.status == 417u);
    BOOST_TEST(r.header("content-type") == "application/problem+json");
    BOOST_TEST(backend.received().empty());
    auto ok = client.get("/users/2");  // the connection goes on
    BOOST_TEST(ok.status == 200u);
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

// The XML 207 over HTTP/2 carries the same unquoted charset as over HTTP/1.1.
BOOST_AUTO_TEST_CASE(xml_multistatus_over_h2c_has_an_unquoted_charset) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address()));
    h2_test_client client(proxy.port());
    auto r = client.exchange({h2_client_request{"POST", "/batch", {{"content-type", "application/json"}},
                                                json_batch({"/users/1"})}}).at(0);
    BOOST_TEST(r.status == 207u);
    BOOST_TEST(r.header("content-type") == "application/xml; charset=utf-8");
    BOOST_TEST(r.body.find("<D:multistatus") != std::string::npos);
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
    // Every backend answer is held until all 100 requests are at the backend
    // at once: the test passes only if the proxy really runs the 100 streams
    // of one connection side by side (100 is http2.max_concurrent_streams).
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        reply r = scripted(req);
        r.hold = [&] { return release.load(); };
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "    max_connections: 200\n"));
    h2_test_client client(proxy.port());
    std::vector<h2_client_request> requests;
    for (int i = 0; i < 100; ++i) requests.push_back(h2_client_request{"GET", "/users/" + std::to_string(i), {}, {}});
    auto pending = std::async(std::launch::async, [&] { return client.exchange(requests); });
    const bool all_in_flight = eventually([&] { return backend.in_flight() == 100; });
    release = true;
    auto replies = pending.get();
    BOOST_TEST(all_in_flight);
    BOOST_TEST(backend.max_concurrent() == 100);
    int ok = 0;
    for (std::size_t i = 0; i < replies.size(); ++i)
        ok += replies[i].status == 200 && replies[i].body == "GET /users/" + std::to_string(i) + "\n";
    BOOST_TEST(ok == 100);
    BOOST_TEST(backend.requests() == 100);
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
    // The slow item is held until the fast entry has reached the client in a
    // DATA frame of its own: the 207 is streamed, not assembled at the end.
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        reply r = scripted(req);
        if (req.target() == "/held") r.hold = [&] { return release.load(); };
        return r;
    });
    running_proxy proxy(proxy_config(backend.address()));
    using namespace raw_h2;
    connection h2(proxy.port());
    const std::string body = json_batch({"/held", "/users/1"});
    h2.send(frame(headers, end_headers, 1,
                  request_block("POST", "/batch", {{"content-type", "application/json"}, {"accept", "application/json"}})) +
            frame(data, end_stream, 1, body));
    auto fast = h2.until([](const received_frame& f) {
        return f.type == data && f.stream == 1 && f.payload.find("\"/users/1\"") != std::string::npos;
    });
    BOOST_REQUIRE(fast.has_value());
    BOOST_TEST(fast->payload.find("\"/held\"") == std::string::npos);
    BOOST_TEST(backend.in_flight() == 1);  // the slow item is still at the backend
    release = true;
    auto slow = h2.until([](const received_frame& f) {
        return f.type == data && f.stream == 1 && f.payload.find("\"/held\"") != std::string::npos;
    });
    BOOST_TEST(slow.has_value());
}

BOOST_AUTO_TEST_CASE(header_list_over_the_limit_resets_only_that_stream) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address(), "", "http2:\n  max_header_list_size: 4KiB\n"));
    h2_test_client client(proxy.port());
    const auto resets_before = metrics_registry::global().limit_breaches(limit_kind::http2_stream_reset);
    auto replies = client.exchange({h2_client_request{"GET", "/users/1", {{"x-big", std::string(8000, 'a')}}, {}}});
    BOOST_TEST(metrics_registry::global().limit_breaches(limit_kind::http2_stream_reset) == resets_before + 1);
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
    BOOST_TEST(attacker.rapid_reset(2000));  // the server closed the connection
    // Ended by an error, not a graceful goodbye. The GOAWAY itself may not be
    // read: the server closes with the flood still unread, so the kernel
    // answers with a TCP RST that can overtake it; when it is read, its code
    // is an error code.
    BOOST_TEST(eventually([&] { return metrics_registry::global().limit_breaches(limit_kind::http2_goaway) > cut_before; }));
    if (attacker.goaway_code()) BOOST_TEST(*attacker.goaway_code() != 0u);

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

// --- Protections checked with hand-made frames (raw_h2.hpp): a real HTTP/2
// client library would not break these rules on purpose.

namespace {

reply held_echo(const request_type& req, const std::atomic<bool>& release) {
    reply r = echo(req);
    r.hold = [&release] { return release.load(); };
    return r;
}

bool is_headers_on(const raw_h2::received_frame& f, std::uint32_t stream) {
    return f.type == raw_h2::headers && f.stream == stream;
}

}  // namespace

BOOST_AUTO_TEST_CASE(max_concurrent_streams_is_enforced) {
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) { return held_echo(req, release); });
    running_proxy proxy(proxy_config(backend.address(), "", "http2:\n  max_concurrent_streams: 2\n"));
    using namespace raw_h2;
    {
        // Before the client acknowledged our SETTINGS it may not know the
        // limit yet: the stream over it is refused, safe to retry
        // (REFUSED_STREAM), and the connection carries on.
        connection h2(proxy.port(), 10000, false);
        for (std::uint32_t id : {1u, 3u, 5u})
            h2.send(frame(headers, end_stream | end_headers, id, request_block("GET", "/users/" + std::to_string(id))));
        auto rst = h2.until([](const received_frame& f) { return f.type == rst_stream || f.type == goaway; });
        BOOST_REQUIRE(rst.has_value());
        BOOST_TEST(rst->type == rst_stream);
        BOOST_TEST(rst->stream == 5u);
        BOOST_TEST(rst->error_code() == 0x7u);  // REFUSED_STREAM
        BOOST_TEST(eventually([&] { return backend.in_flight() == 2; }));
        release = true;
        BOOST_TEST(h2.until([](const received_frame& f) { return is_headers_on(f, 1) || is_headers_on(f, 3); }).has_value());
        BOOST_TEST(h2.until([](const received_frame& f) { return is_headers_on(f, 1) || is_headers_on(f, 3); }).has_value());
        BOOST_TEST(backend.requests() == 2);
        BOOST_TEST(backend.max_concurrent() == 2);
    }
    release = false;
    {
        // After it acknowledged them, going over is a protocol violation:
        // nghttp2 ends the connection with GOAWAY(PROTOCOL_ERROR), and the
        // extra stream never reaches a backend.
        const auto cut_before = metrics_registry::global().limit_breaches(limit_kind::http2_goaway);
        connection h2(proxy.port());
        for (std::uint32_t id : {1u, 3u})
            h2.send(frame(headers, end_stream | end_headers, id, request_block("GET", "/users/" + std::to_string(id))));
        BOOST_REQUIRE(eventually([&] { return backend.in_flight() == 2; }));
        h2.send(frame(headers, end_stream | end_headers, 5, request_block("GET", "/users/5")));
        auto g = h2.until([](const received_frame& f) { return f.type == goaway; });
        BOOST_REQUIRE(g.has_value());
        BOOST_TEST(g->error_code() == 0x1u);  // PROTOCOL_ERROR
        BOOST_TEST(g->goaway_last_stream() == 3u);
        release = true;
        BOOST_TEST(!h2.until([](const received_frame&) { return false; }).has_value());  // closed
        BOOST_TEST(eventually([&] { return metrics_registry::global().limit_breaches(limit_kind::http2_goaway) > cut_before; }));
        BOOST_TEST(backend.requests() == 4);  // 2 + 2: stream 5 never reached it
    }
}

BOOST_AUTO_TEST_CASE(continuation_frames_are_capped) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address()));
    using namespace raw_h2;
    {
        // A header block in a few CONTINUATION frames is fine.
        connection h2(proxy.port());
        std::string bytes = frame(headers, end_stream, 1, request_block("GET", "/users/1"));
        for (int i = 0; i < 3; ++i) bytes += frame(continuation, 0, 1, literal("x-part", std::to_string(i)));
        bytes += frame(continuation, end_headers, 1, literal("x-last", "1"));
        h2.send(bytes);
        auto answer = h2.until([](const received_frame& f) { return is_headers_on(f, 1); });
        BOOST_TEST(answer.has_value());
        BOOST_TEST(backend.requests() == 1);
    }
    // One block in 50 small CONTINUATION frames (far under
    // max_header_list_size) is a flood (CVE-2024-28182): GOAWAY, connection closed.
    const auto goaways_before = metrics_registry::global().limit_breaches(limit_kind::http2_goaway);
    connection h2(proxy.port());
    std::string bytes = frame(headers, end_stream, 1, request_block("GET", "/users/2"));
    for (int i = 0; i < 50; ++i) bytes += frame(continuation, 0, 1, literal("x-part", std::to_string(i)));
    h2.send(bytes);
    auto goaway_frame = h2.until([](const received_frame& f) { return f.type == goaway; });
    BOOST_REQUIRE(goaway_frame.has_value());
    BOOST_TEST(goaway_frame->error_code() != 0u);
    BOOST_TEST(!h2.until([](const received_frame&) { return false; }).has_value());  // then closed
    BOOST_TEST(eventually([&] { return metrics_registry::global().limit_breaches(limit_kind::http2_goaway) > goaways_before; }));
    BOOST_TEST(backend.requests() == 1);
}

BOOST_AUTO_TEST_CASE(split_cookie_fields_are_joined) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address()));
    h2_test_client client(proxy.port());
    auto r = client.exchange({h2_client_request{"GET", "/users/1", {{"cookie", "a=1"}, {"cookie", "b=2"}, {"cookie", "c=3"}}, {}}})
                 .at(0);
    BOOST_TEST(r.status == 200u);
    auto seen = backend.received();
    BOOST_REQUIRE_EQUAL(seen.size(), 1u);
    BOOST_TEST(seen[0][http::field::cookie] == "a=1; b=2; c=3");  // RFC 9113 §8.2.3: one field for HTTP/1.1
    std::size_t cookie_fields = 0;
    for (const auto& f : seen[0]) cookie_fields += f.name() == http::field::cookie;
    BOOST_TEST(cookie_fields == 1u);
}

BOOST_AUTO_TEST_CASE(content_length_that_disagrees_with_data_is_refused) {
    test_backend backend(scripted);
    running_proxy proxy(proxy_config(backend.address()));
    using namespace raw_h2;
    connection h2(proxy.port());
    for (const auto& [id, declared, sent] : std::vector<std::tuple<std::uint32_t, std::string, std::string>>{
             {1, "10", "12345"}, {3, "2", "12345"}}) {
        BOOST_TEST_CONTEXT("content-length " << declared << ", DATA of " << sent.size()) {
            h2.send(frame(headers, end_headers, id, request_block("POST", "/upload", {{"content-length", declared}})) +
                    frame(data, end_stream, id, sent));
            auto rst = h2.until([&](const received_frame& f) { return f.stream == id && (f.type == rst_stream || f.type == headers); });
            BOOST_REQUIRE(rst.has_value());
            BOOST_TEST(rst->type == rst_stream);  // no answer: the stream is reset
            BOOST_TEST(rst->error_code() == 0x1u);  // PROTOCOL_ERROR (RFC 9113 §8.1.1)
        }
    }
    // Only those streams: the connection still serves.
    h2.send(frame(headers, end_stream | end_headers, 5, request_block("GET", "/users/5")));
    auto ok = h2.until([](const received_frame& f) { return is_headers_on(f, 5); });
    BOOST_TEST(ok.has_value());
    int uploads_answered = 0;
    for (const auto& r : backend.received()) uploads_answered += r.target() == "/upload";
    BOOST_TEST(uploads_answered == 0);  // no backend saw a whole, wrong request
}

BOOST_AUTO_TEST_CASE(drain_refuses_new_streams) {
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) { return held_echo(req, release); });
    running_proxy proxy(proxy_config(backend.address()));
    using namespace raw_h2;
    connection h2(proxy.port());
    h2.send(frame(headers, end_stream | end_headers, 1, request_block("GET", "/users/1")));
    BOOST_REQUIRE(eventually([&] { return backend.in_flight() == 1; }));
    proxy.get().drain();
    auto g = h2.until([](const received_frame& f) { return f.type == goaway; });
    BOOST_REQUIRE(g.has_value());
    BOOST_TEST(g->error_code() == 0u);          // NO_ERROR: a graceful goodbye
    BOOST_TEST(g->goaway_last_stream() == 1u);  // stream 1 will be processed; nothing after it
    h2.send(frame(headers, end_stream | end_headers, 3, request_block("GET", "/users/3")));
    release = true;
    BOOST_TEST(h2.until([](const received_frame& f) { return is_headers_on(f, 1); }).has_value());
    BOOST_TEST(!h2.until([](const received_frame&) { return false; }).has_value());  // closed once stream 1 is done
    for (const auto& f : h2.seen()) BOOST_TEST(!is_headers_on(f, 3));
    BOOST_TEST(backend.requests() == 1);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
