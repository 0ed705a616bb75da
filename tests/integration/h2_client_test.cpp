// HTTP/2 backend sessions and the h2 item exchange against a real nghttp2
// server (tests/integration/h2_test_server).
#include "proxy/backend/h2_client.hpp"
#include "tests/integration/h2_test_server.hpp"
#include "tests/integration/harness.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/algorithm/string/case_conv.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;
using namespace std::chrono_literals;

namespace {

backend_config h2_config(std::vector<std::string> endpoints, std::size_t max_connections,
                         duration queue_timeout = std::chrono::milliseconds(2000)) {
    backend_config cfg;
    cfg.name = "h2b";
    for (auto& e : endpoints) cfg.endpoints.push_back(*parse_host_port(e, false));
    cfg.protocol = backend_protocol::h2c;
    cfg.max_connections = max_connections;
    cfg.queue_timeout = queue_timeout;
    return cfg;
}


item_request make_item(std::string method, std::string target, std::string body = {}) {
    item_request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.has_body = !body.empty();
    r.body = std::move(body);
    return r;
}

client_info local_client() { return client_info(asio::ip::make_address("192.0.2.7"), false, false); }

asio::awaitable<exchange_outcome> run_exchange(h2_pool& pool, const item_request& item,
                                               duration timeout = std::chrono::milliseconds(5000),
                                               std::uint64_t max_bytes = 1024 * 1024) {
    cancel_scope scope;
    co_return co_await h2_exchange_once(pool, item, local_client(), max_bytes, timeout, scope);
}

// Starts `n` exchanges side by side on the current io_context; resolves when all are done.
asio::awaitable<std::vector<exchange_outcome>> run_many(std::shared_ptr<h2_pool> pool, int n,
                                                        std::string target) {
    auto ex = co_await asio::this_coro::executor;
    std::vector<exchange_outcome> results(n);
    int remaining = n;
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    for (int i = 0; i < n; ++i) {
        asio::co_spawn(ex, [&, i]() -> asio::awaitable<void> {
            auto item = make_item("GET", target + "?i=" + std::to_string(i));
            results[i] = co_await run_exchange(*pool, item);
            if (--remaining == 0) all_done.cancel();
        }, asio::detached);
    }
    if (remaining > 0) co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return results;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(h2_client)

BOOST_AUTO_TEST_CASE(get_put_delete_carry_headers_and_bodies) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.status = req.method == "DELETE" ? 204 : 200;
        if (r.status == 204) r.body.clear();
        r.headers.emplace_back("x-reply", "yes");
        return r;
    });
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config({server.address()}, 4));
        auto get = make_item("GET", "/items/1?x=y");
        get.headers.set("X-Custom", "Value");
        get.headers.set("Keep-Alive", "timeout=5");
        get.headers.set("TE", "gzip");
        auto got = co_await run_exchange(*pool, get);
        BOOST_TEST((got.error == exchange_error::none));
        BOOST_TEST(got.response.result_int() == 200u);
        BOOST_TEST(got.response["x-reply"] == "yes");
        BOOST_TEST(got.response.body() == "GET /items/1?x=y\n");
        BOOST_TEST(!got.reused);

        auto put = make_item("PUT", "/items/2", "{\"a\":1}");
        put.headers.set("Content-Type", "application/json");
        auto putted = co_await run_exchange(*pool, put);
        BOOST_TEST((putted.error == exchange_error::none));
        BOOST_TEST(putted.response.body() == "PUT /items/2\n{\"a\":1}");
        BOOST_TEST(putted.reused);

        auto del = make_item("DELETE", "/items/3");
        auto deleted = co_await run_exchange(*pool, del);
        BOOST_TEST((deleted.error == exchange_error::none));
        BOOST_TEST(deleted.response.result_int() == 204u);
        BOOST_TEST(deleted.response.body().empty());
        pool->close();
    });
    auto seen = server.received();
    BOOST_REQUIRE(seen.size() == 3u);
    BOOST_TEST(seen[0].method == "GET");
    BOOST_TEST(seen[0].scheme == "http");
    BOOST_TEST(seen[0].authority == server.address());
    BOOST_TEST(seen[0].path == "/items/1?x=y");
    BOOST_TEST(seen[0].header("x-custom") == "Value");
    BOOST_TEST(seen[0].header("x-forwarded-for") == "192.0.2.7");
    BOOST_TEST(!seen[0].header("via").empty());
    for (const auto& req : seen) {
        for (const char* banned : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
                                   "te", "host"})
            BOOST_TEST(!req.has_header(banned), banned << " in " << req.method);
        for (const auto& [name, value] : req.headers)
            BOOST_TEST(name == boost::algorithm::to_lower_copy(name));
    }
    BOOST_TEST(seen[1].body == "{\"a\":1}");
    BOOST_TEST(seen[1].header("content-length") == "7");
    BOOST_TEST(seen[1].header("content-type") == "application/json");
    BOOST_TEST(seen[2].body.empty());
    BOOST_TEST(server.connections() == 1);
}

BOOST_AUTO_TEST_CASE(configured_host_becomes_the_authority) {
    h2_test_server server;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto cfg = h2_config({server.address()}, 1);
        cfg.host = "api.internal";
        auto pool = std::make_shared<h2_pool>(ex, cfg);
        auto got = co_await run_exchange(*pool, make_item("GET", "/"));
        BOOST_TEST((got.error == exchange_error::none), int(got.error) << " " << got.cause.message());
        pool->close();
    });
    BOOST_REQUIRE(server.received().size() == 1u);
    BOOST_TEST(server.received()[0].authority == "api.internal");
}

BOOST_AUTO_TEST_CASE(hundred_concurrent_items_share_one_connection) {
    // No answer leaves the server until all 100 requests have arrived, so the
    // items can only finish if the pool runs them side by side on one session.
    std::atomic<int> arrived{0};
    h2_test_server server([&](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        ++arrived;
        r.hold = [&] { return arrived.load() >= 100; };
        return r;
    });
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config({server.address()}, 4));
        auto results = co_await run_many(pool, 100, "/many");
        int ok = 0;
        for (const auto& r : results) ok += r.error == exchange_error::none && r.response.result_int() == 200;
        BOOST_TEST(ok == 100);
        BOOST_TEST(pool->stats().sessions == 1u);
        pool->close();
    });
    BOOST_TEST(server.connections() == 1);
    BOOST_TEST(server.max_concurrent_streams_seen() == 100);
}

BOOST_AUTO_TEST_CASE(backend_max_concurrent_streams_is_respected) {
    // The first answers wait until five streams are open: the pool fills the
    // backend's limit of five and never goes past it.
    std::atomic<int> arrived{0};
    h2_test_server server(
        [&](const h2_seen_request& req) {
            h2_reply r = h2_echo(req);
            ++arrived;
            r.hold = [&] { return arrived.load() >= 5; };
            return r;
        },
        h2_server_options{5, 0});
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config({server.address()}, 1, 10'000ms));
        auto results = co_await run_many(pool, 50, "/limited");
        int ok = 0;
        for (const auto& r : results) ok += r.error == exchange_error::none;
        BOOST_TEST(ok == 50);
        pool->close();
    });
    BOOST_TEST(server.connections() == 1);
    BOOST_TEST(server.max_concurrent_streams_seen() == 5);
    BOOST_TEST(server.resets_received() == 0);
}

BOOST_AUTO_TEST_CASE(streams_above_goaway_are_refused_and_a_new_session_follows) {
    h2_test_server server(
        [](const h2_seen_request& req) {
            h2_reply r = h2_echo(req);
            r.delay = 50ms;  // all ten are on the wire before the answers
            return r;
        },
        h2_server_options{100, 4});
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config({server.address()}, 1));
        auto results = co_await run_many(pool, 10, "/goaway");
        int ok = 0, refused = 0;
        for (const auto& r : results) {
            if (r.error == exchange_error::none) ++ok;
            if (r.error == exchange_error::reset && r.nothing_received) ++refused;
        }
        BOOST_TEST(ok == 4);
        BOOST_TEST(refused == 6);
        auto later = co_await run_exchange(*pool, make_item("POST", "/after", "again"));
        BOOST_TEST((later.error == exchange_error::none));
        BOOST_TEST(later.response.body() == "POST /after\nagain");
        pool->close();
    });
    BOOST_TEST(server.connections() == 2);
}

BOOST_AUTO_TEST_CASE(a_refused_stream_is_safe_to_retry) {
    // REFUSED_STREAM says "never processed" (RFC 9113 §8.7): the pool reports
    // it as nothing received, which is what lets the layers above replay a
    // POST. Any other reset code may have reached the application.
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.refuse = req.path == "/refuse";
        r.reset = req.path == "/reset";
        return r;
    });
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config({server.address()}, 1));
        auto refused = co_await run_exchange(*pool, make_item("POST", "/refuse", "x"));
        BOOST_TEST((refused.error == exchange_error::reset));
        BOOST_TEST(refused.nothing_received);
        auto reset = co_await run_exchange(*pool, make_item("POST", "/reset", "x"));
        BOOST_TEST((reset.error == exchange_error::reset));
        BOOST_TEST(!reset.nothing_received);  // INTERNAL_ERROR: it may have been processed
        auto fine = co_await run_exchange(*pool, make_item("GET", "/fine"));
        BOOST_TEST((fine.error == exchange_error::none));
        pool->close();
    });
    BOOST_TEST(server.connections() == 1);  // a stream reset leaves the session up
}

BOOST_AUTO_TEST_CASE(too_large_answer_resets_the_stream_but_keeps_the_session) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        if (req.path == "/big") r.body.assign(200 * 1024, 'x');
        return r;
    });
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config({server.address()}, 1));
        auto big = co_await run_exchange(*pool, make_item("GET", "/big"), 5000ms, 1024);
        BOOST_TEST((big.error == exchange_error::too_large));
        for (int i = 0; i < 3; ++i) {
            auto small = co_await run_exchange(*pool, make_item("GET", "/small"), 5000ms, 1024);
            BOOST_TEST((small.error == exchange_error::none));
            BOOST_TEST(small.response.body() == "GET /small\n");
        }
        BOOST_TEST(pool->stats().streams == 0u);
        pool->close();
    });
    BOOST_TEST(server.connections() == 1);
    BOOST_TEST(eventually([&] { return server.resets_received() >= 1; }));
}

BOOST_AUTO_TEST_CASE(timeout_resets_the_stream) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.silent = req.path == "/silent";
        return r;
    });
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config({server.address()}, 1));
        const auto started = std::chrono::steady_clock::now();
        auto slow = co_await run_exchange(*pool, make_item("GET", "/silent"), 200ms);
        BOOST_TEST((slow.error == exchange_error::timeout));
        BOOST_TEST((std::chrono::steady_clock::now() - started >= 190ms));
        auto next = co_await run_exchange(*pool, make_item("GET", "/next"));
        BOOST_TEST((next.error == exchange_error::none));
        BOOST_TEST(pool->stats().streams == 0u);
        pool->close();
    });
    BOOST_TEST(eventually([&] { return server.resets_received() == 1; }));
    BOOST_TEST(server.connections() == 1);
}

BOOST_AUTO_TEST_CASE(cancellation_is_prompt_and_resets_the_stream) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.silent = true;
        return r;
    });
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config({server.address()}, 1));
        cancel_scope scope;
        asio::steady_timer later(ex, 100ms);
        later.async_wait([&](error_code) { scope.cancel(cancel_reason::client_gone); });
        const auto started = std::chrono::steady_clock::now();
        auto item = make_item("GET", "/forever");
        auto out = co_await h2_exchange_once(*pool, item, local_client(), 1024, 10'000ms, scope);
        BOOST_TEST((out.error == exchange_error::cancelled));
        BOOST_TEST((std::chrono::steady_clock::now() - started < 2s));
        BOOST_TEST(pool->stats().streams <= 1u);  // the RST may still be on its way out
        pool->close();
    });
    BOOST_TEST(eventually([&] { return server.resets_received() == 1; }));
}

BOOST_AUTO_TEST_CASE(refused_connection_is_connect_failed) {
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(
            ex, h2_config({"127.0.0.1:" + std::to_string(closed_port())}, 1));
        auto out = co_await run_exchange(*pool, make_item("GET", "/"));
        BOOST_TEST((out.error == exchange_error::connect_failed));
        BOOST_TEST(out.cause == asio::error::connection_refused);
        BOOST_TEST(pool->stats().sessions == 0u);
    });
}

BOOST_AUTO_TEST_CASE(interim_103_is_consumed) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.interim_103 = true;
        r.status = 201;
        return r;
    });
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config({server.address()}, 1));
        auto out = co_await run_exchange(*pool, make_item("POST", "/hinted", "b"));
        BOOST_TEST((out.error == exchange_error::none));
        BOOST_TEST(out.response.result_int() == 201u);
        BOOST_TEST(out.response.count("link") == 0u);  // the 103's fields stay behind
        BOOST_TEST(out.response.body() == "POST /hinted\nb");
        pool->close();
    });
}

BOOST_AUTO_TEST_CASE(idle_session_says_goaway_and_closes) {
    h2_test_server server;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto cfg = h2_config({server.address()}, 1);
        cfg.idle_timeout = 100ms;
        auto pool = std::make_shared<h2_pool>(ex, cfg);
        auto first = co_await run_exchange(*pool, make_item("GET", "/a"));
        BOOST_TEST((first.error == exchange_error::none));
        BOOST_TEST(co_await eventually_async([&] { return pool->stats().sessions == 0u; }));
        // The idle session said GOAWAY before closing; the server's thread
        // reads it a moment after the pool let the session go.
        BOOST_TEST(co_await eventually_async([&] { return server.goaways_received() == 1; }));
        auto second = co_await run_exchange(*pool, make_item("GET", "/b"));
        BOOST_TEST((second.error == exchange_error::none));
        BOOST_TEST(!second.reused);
        pool->close();
    });
    BOOST_TEST(server.connections() == 2);
}

BOOST_AUTO_TEST_CASE(gauges_follow_sessions) {
    h2_test_server server;
    auto cfg = h2_config({server.address()}, 1);
    cfg.name = "h2_gauges";
    auto& m = metrics_registry::global().backend(cfg.name);
    const auto open_before = m.open_connections.load();
    const auto idle_before = m.idle_connections.load();
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, cfg);
        auto out = co_await run_exchange(*pool, make_item("GET", "/g"));
        BOOST_TEST((out.error == exchange_error::none));
        BOOST_TEST(m.open_connections.load() == open_before + 1);
        BOOST_TEST(m.idle_connections.load() == idle_before + 1);
        pool->close();
        BOOST_TEST(co_await eventually_async([&] { return pool->stats().sessions == 0u; }));
    });
    BOOST_TEST(m.open_connections.load() == open_before);
    BOOST_TEST(m.idle_connections.load() == idle_before);
}

BOOST_AUTO_TEST_CASE(connection_loss_resets_its_streams) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.drop_connection = req.path == "/drop";
        r.delay = req.path == "/drop" ? 50ms : 0ms;
        return r;
    });
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config({server.address()}, 1));
        auto lost = co_await run_exchange(*pool, make_item("POST", "/drop", "x"));
        BOOST_TEST((lost.error == exchange_error::reset));
        BOOST_TEST(!lost.nothing_received);  // it reached the backend: not safe to replay a POST
        auto next = co_await run_exchange(*pool, make_item("GET", "/next"));
        BOOST_TEST((next.error == exchange_error::none));
        pool->close();
    });
    BOOST_TEST(server.connections() == 2);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
