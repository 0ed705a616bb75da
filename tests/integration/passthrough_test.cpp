// Pass-through proxying against a real backend on port 0 (PRODUCT.md §3).
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

BOOST_AUTO_TEST_SUITE(passthrough)

BOOST_AUTO_TEST_CASE(get_put_delete_head_with_bodies) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());

    auto get = c.request(make_request(http::verb::get, "/users/1?x=1"));
    BOOST_TEST(get.result_int() == 200u);
    BOOST_TEST(get.body() == "GET /users/1?x=1\n");

    auto put = c.request(make_request(http::verb::put, "/users/2", "{\"name\":\"Ada\"}"));
    BOOST_TEST(put.result_int() == 200u);
    BOOST_TEST(put.body() == "PUT /users/2\n{\"name\":\"Ada\"}");

    auto del = c.request(make_request(http::verb::delete_, "/items/17"));
    BOOST_TEST(del.result_int() == 200u);
    BOOST_TEST(del.body() == "DELETE /items/17\n");

    auto head = c.request(make_request(http::verb::head, "/users/1"));
    BOOST_TEST(head.result_int() == 200u);
    BOOST_TEST(head.body().empty());
    BOOST_TEST(head[http::field::content_length] == "14");  // "HEAD /users/1\n", as a GET would have had

    auto received = backend.received();
    BOOST_REQUIRE_EQUAL(received.size(), 4u);
    BOOST_TEST(received[1].body() == "{\"name\":\"Ada\"}");
    BOOST_TEST(received[1][http::field::content_length] == "14");
    BOOST_TEST(backend.connections() == 1);
}

BOOST_AUTO_TEST_CASE(forwarding_headers_reach_the_backend) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());
    auto req = make_request(http::verb::get, "/x");
    req.set(http::field::connection, "keep-alive, X-Hop");
    req.set("X-Hop", "secret");
    req.set("X-Forwarded-For", "6.6.6.6");
    req.set("X-Real-IP", "6.6.6.6");
    req.set("Authorization", "Bearer abc");
    auto res = c.request(req);
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res["via"] == "1.1 batchgate");

    auto got = backend.received().at(0);
    BOOST_TEST(got[http::field::host] == backend.address());
    BOOST_TEST(got["x-forwarded-for"] == "127.0.0.1");
    BOOST_TEST(got["x-forwarded-proto"] == "http");
    BOOST_TEST(got["forwarded"] == "for=127.0.0.1;proto=http");
    BOOST_TEST(got["via"] == "1.1 batchgate");
    BOOST_TEST(got["authorization"] == "Bearer abc");
    BOOST_TEST(got.count("x-hop") == 0u);
    BOOST_TEST(got.count("x-real-ip") == 0u);
    BOOST_TEST(got["x-request-id"].size() == 16u);
}

BOOST_AUTO_TEST_CASE(trusted_proxy_headers_are_kept) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address(), "", "trusted_proxies: [127.0.0.0/8]\n"));
    client c(proxy.port());
    auto req = make_request(http::verb::get, "/x");
    req.set("X-Forwarded-For", "198.51.100.1");
    req.set("X-Request-Id", "abc-123");
    c.request(req);
    auto got = backend.received().at(0);
    BOOST_TEST(got["x-forwarded-for"] == "198.51.100.1, 127.0.0.1");
    BOOST_TEST(got["x-request-id"] == "abc-123");
}

BOOST_AUTO_TEST_CASE(chunked_request_body_is_streamed) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());
    c.send_raw("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    auto res = c.read_response();
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res.body() == "POST /upload\nhello world");
    auto got = backend.received().at(0);
    BOOST_TEST(got.body() == "hello world");
    BOOST_TEST(got[http::field::transfer_encoding] == "chunked");
}

BOOST_AUTO_TEST_CASE(multi_mebibyte_bodies_both_ways) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());
    std::string body(12 * 1024 * 1024 + 7, 'x');
    for (std::size_t i = 0; i < body.size(); i += 4093) body[i] = static_cast<char>('a' + i % 26);
    auto res = c.request(make_request(http::verb::put, "/big", body));
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res.body().size() == body.size() + std::string("PUT /big\n").size());
    BOOST_TEST((res.body().substr(9) == body));
    BOOST_TEST((backend.received().at(0).body() == body));
}

BOOST_AUTO_TEST_CASE(chunked_backend_answer_reaches_http10_client_close_delimited) {
    test_backend backend([](const request_type&) {
        reply r;
        r.response.chunked(true);
        r.response.body() = "streamed";
        return r;
    });
    running_proxy proxy(proxy_config(backend.address()));
    {
        client c(proxy.port());
        auto res = c.request(make_request(http::verb::get, "/c"));
        BOOST_TEST(res.body() == "streamed");
        BOOST_TEST(res.chunked());
    }
    client old(proxy.port());
    old.send_raw("GET /c HTTP/1.0\r\n\r\n");
    auto raw = old.read_until_close();
    BOOST_TEST(raw.starts_with("HTTP/1.0 200 OK\r\n"));
    BOOST_TEST(raw.find("Transfer-Encoding") == std::string::npos);
    BOOST_TEST(raw.ends_with("\r\n\r\nstreamed"));
}

BOOST_AUTO_TEST_CASE(keep_alive_on_both_sides_bounds_backend_connections) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address(), "    max_connections: 2\n"));
    client c(proxy.port());
    for (int i = 0; i < 200; ++i) {
        auto res = c.request(make_request(http::verb::get, "/users/" + std::to_string(i)));
        BOOST_REQUIRE_EQUAL(res.result_int(), 200u);
    }
    BOOST_TEST(backend.requests() == 200);
    BOOST_TEST(backend.connections() <= 2);
}

BOOST_AUTO_TEST_CASE(concurrent_clients_share_a_bounded_pool) {
    test_backend backend([](const request_type& req) {
        auto r = echo(req);
        r.delay = std::chrono::milliseconds(20);
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "    max_connections: 3\n    queue_timeout: 5s\n"));
    std::vector<std::future<int>> clients;
    for (int k = 0; k < 8; ++k)
        clients.push_back(std::async(std::launch::async, [&] {
            client c(proxy.port());
            int ok = 0;
            for (int i = 0; i < 10; ++i) ok += c.request(make_request(http::verb::get, "/x")).result_int() == 200;
            return ok;
        }));
    int ok = 0;
    for (auto& f : clients) ok += f.get();
    BOOST_TEST(ok == 80);
    BOOST_TEST(backend.connections() <= 3);
    BOOST_TEST(backend.max_concurrent() <= 3);
}

BOOST_AUTO_TEST_CASE(queue_timeout_gives_503) {
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        auto r = echo(req);
        if (req.target() == "/slow") r.hold = [&] { return release.load(); };
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "    max_connections: 1\n    queue_timeout: 200ms\n"));
    auto slow = std::async(std::launch::async, [&] {
        client c(proxy.port());
        return c.request(make_request(http::verb::get, "/slow")).result_int();
    });
    BOOST_TEST_REQUIRE(eventually([&] { return backend.in_flight() == 1; }));  // the one connection is busy
    client c(proxy.port());
    auto res = c.request(make_request(http::verb::get, "/fast"));
    BOOST_TEST(res.result_int() == 503u);
    BOOST_TEST(res[http::field::content_type] == "application/problem+json");
    BOOST_TEST(res.body().find("every connection busy") != std::string::npos);
    release = true;
    BOOST_TEST(slow.get() == 200u);
}

BOOST_AUTO_TEST_CASE(refused_connection_gives_502) {
    running_proxy proxy(proxy_config("127.0.0.1:" + std::to_string(closed_port())));
    client c(proxy.port());
    auto res = c.request(make_request(http::verb::get, "/x"));
    BOOST_TEST(res.result_int() == 502u);
    BOOST_TEST(res[http::field::content_type] == "application/problem+json");
    BOOST_TEST(res.body().find("\"status\":502") != std::string::npos);
    BOOST_TEST(res.body().find("cannot connect") != std::string::npos);
    // The client connection survives a backend failure.
    BOOST_TEST(c.request(make_request(http::verb::get, "/y")).result_int() == 502u);
}

BOOST_AUTO_TEST_CASE(silent_backend_gives_504) {
    test_backend backend([](const request_type&) {
        reply r;
        r.act = misbehaviour::silent;
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "    timeout: 300ms\n"));
    client c(proxy.port());
    auto started = std::chrono::steady_clock::now();
    auto res = c.request(make_request(http::verb::get, "/x"));
    BOOST_TEST(res.result_int() == 504u);
    BOOST_TEST(res.body().find("no response within 300 ms") != std::string::npos);
    BOOST_TEST((std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(290)));
}

BOOST_AUTO_TEST_CASE(reset_and_garbage_give_502) {
    for (auto act : {misbehaviour::reset, misbehaviour::garbage, misbehaviour::close_early,
                     misbehaviour::switch_protocols}) {
        test_backend backend([act](const request_type&) {
            reply r;
            r.act = act;
            return r;
        });
        // POST is never retried, so each misbehaviour is seen exactly once.
        running_proxy proxy(proxy_config(backend.address()));
        client c(proxy.port());
        auto res = c.request(make_request(http::verb::post, "/x", "payload"));
        BOOST_TEST(res.result_int() == 502u, "misbehaviour " << static_cast<int>(act));
        BOOST_TEST(backend.requests() == 1);
    }
}

BOOST_AUTO_TEST_CASE(idempotent_requests_retry_after_reset) {
    std::atomic<int> calls{0};
    test_backend backend([&](const request_type& req) {
        if (calls++ == 0) {
            reply r;
            r.act = misbehaviour::reset;
            return r;
        }
        return echo(req);
    });
    running_proxy proxy(proxy_config(backend.address(), "    retries: {attempts: 2, on: [reset]}\n"));
    client c(proxy.port());
    auto res = c.request(make_request(http::verb::get, "/again"));
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(calls.load() == 2);
}

BOOST_AUTO_TEST_CASE(interim_answers_are_consumed) {
    test_backend backend([](const request_type& req) {
        auto r = echo(req);
        r.act = misbehaviour::interim_then_ok;
        return r;
    });
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());
    c.send_raw("GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    auto raw = c.read_until_close();
    BOOST_TEST(raw.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(raw.find(" 100 ") == std::string::npos);
    BOOST_TEST(raw.find(" 103 ") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(stale_pooled_connection_is_not_reused) {
    // The backend answers, then half-closes and keeps listening: a request
    // batchgate wrote on the closed connection (and then replayed for free)
    // would still arrive there. Skipping it means none does.
    test_backend backend([](const request_type& req) {
        auto r = echo(req);
        r.fin_after = true;
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "    retries: {attempts: 1}\n"));
    client c(proxy.port());
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(c.request(make_request(http::verb::get, "/x")).result_int() == 200u);
        BOOST_TEST_REQUIRE(eventually([&] { return backend.fins_sent() == i + 1; }));
    }
    BOOST_TEST(backend.connections() == 3);
    BOOST_TEST(backend.requests() == 3);
    BOOST_TEST(backend.late_requests() == 0);
}

BOOST_AUTO_TEST_CASE(connection_closed_after_reuse_is_replayed_for_free) {
    // The pooled connection passes the reuse check, then the backend closes
    // it without answering the request written on it: an idempotent request
    // is replayed once on a new connection even with attempts: 1 (the replay
    // is not an attempt); a POST is not (it may have been processed).
    std::atomic<int> n{0};
    test_backend backend([&](const request_type& req) {
        auto r = echo(req);
        if (++n == 2) r.act = misbehaviour::close_early;
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "    retries: {attempts: 1}\n"));
    client c(proxy.port());
    BOOST_TEST(c.request(make_request(http::verb::get, "/a")).result_int() == 200u);
    auto second = c.request(make_request(http::verb::get, "/b"));
    BOOST_TEST(second.result_int() == 200u);
    BOOST_TEST(second.body() == "GET /b\n");
    BOOST_TEST(backend.requests() == 3);
    BOOST_TEST(backend.connections() == 2);

    n = 0;
    client p(proxy.port());
    BOOST_TEST(p.request(make_request(http::verb::post, "/c", "x")).result_int() == 200u);
    BOOST_TEST(p.request(make_request(http::verb::post, "/d", "y")).result_int() == 502u);
    BOOST_TEST(backend.requests() == 5);
}

BOOST_AUTO_TEST_CASE(rewrite_and_no_route) {
    test_backend backend;
    running_proxy proxy("workers: 1\naccess_log: false\nlisten: [{address: 127.0.0.1:0}]\n"
                        "routes:\n  - {prefix: /users, backend: b, rewrite_prefix: /api/v1/users}\n"
                        "backends:\n  b: {endpoints: [" + backend.address() + "]}\n");
    client c(proxy.port());
    auto res = c.request(make_request(http::verb::get, "/users/7?full=1"));
    BOOST_TEST(res.body() == "GET /api/v1/users/7?full=1\n");
    auto missing = c.request(make_request(http::verb::get, "/items/1"));
    BOOST_TEST(missing.result_int() == 404u);
    BOOST_TEST(missing.body().find("no route for /items/1") != std::string::npos);
    BOOST_TEST(backend.requests() == 1);
}

BOOST_AUTO_TEST_CASE(bad_targets_never_reach_a_backend) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address()));
    for (auto target : {"/../etc/passwd", "/a%2Fb", "http://evil.example/x", "//evil/x", "/a%00"}) {
        client c(proxy.port());
        c.send_raw(std::string("GET ") + target + " HTTP/1.1\r\nHost: t\r\n\r\n");
        auto res = c.read_response();
        BOOST_TEST(res.result_int() == 400u, target);
    }
    BOOST_TEST(backend.requests() == 0);
}

BOOST_AUTO_TEST_CASE(expect_100_continue_is_answered_before_the_body) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());
    c.send_raw("PUT /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    char interim[64] = {};
    std::size_t got = 0;
    const std::string_view expected = "HTTP/1.1 100 Continue\r\n\r\n";
    while (got < expected.size()) got += c.read_some(asio::buffer(interim + got, expected.size() - got));
    BOOST_TEST(std::string_view(interim, got) == expected);
    c.send_raw("data");
    auto res = c.read_response();
    BOOST_TEST(res.body() == "PUT /e\ndata");
    BOOST_TEST(backend.received().at(0).count(http::field::expect) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
