// Pass-through over HTTP/2 backends (forward_over_h2) with a fake client
// side: a body source and a response sink that record what they saw.
#include "proxy/backend/h2_client.hpp"
#include "proxy/backend/h2_forwarder.hpp"
#include "tests/integration/h2_test_server.hpp"
#include "tests/integration/harness.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;
using namespace std::chrono_literals;

namespace {

backend_config h2_config(const std::string& endpoint) {
    backend_config cfg;
    cfg.name = "h2b";
    cfg.endpoints.push_back(*parse_host_port(endpoint, false));
    cfg.protocol = backend_protocol::h2c;
    cfg.max_connections = 2;
    cfg.queue_timeout = 2000ms;
    return cfg;
}

// Hands out `body` in reads of at most `chunk` bytes, each after a trip
// through the executor (as a socket read would), or fails with `error`
// once `fail_after` bytes are out.
class fake_source final : public request_body_source {
public:
    explicit fake_source(std::string body, std::size_t chunk = 16 * 1024) : body_(std::move(body)), chunk_(chunk) {}
    body_error error = body_error::none;
    std::size_t fail_after = SIZE_MAX;
    std::size_t reads = 0;

    asio::awaitable<body_read> read(std::span<char> into) override {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        ++reads;
        body_read r;
        if (given_ >= fail_after) {
            r.error = error;
            co_return r;
        }
        r.bytes = std::min({into.size(), chunk_, body_.size() - given_});
        std::memcpy(into.data(), body_.data() + given_, r.bytes);
        given_ += r.bytes;
        r.done = given_ == body_.size();
        co_return r;
    }
    bool done() const override { return given_ == body_.size(); }

private:
    std::string body_;
    std::size_t chunk_;
    std::size_t given_ = 0;
};

// Records the answer; each DATA write takes a little while (a slow client),
// so flow control has to hold the backend back.
class fake_sink final : public response_sink {
public:
    std::optional<response_head> head;
    std::string body;
    bool ended = false, aborted = false, continued = false;
    std::optional<http::status> problem;
    std::string problem_detail;
    std::size_t largest_chunk = 0;
    std::chrono::milliseconds write_delay{0};

    asio::awaitable<bool> send_continue() override {
        continued = true;
        co_return true;
    }
    asio::awaitable<bool> send_head(response_head h) override {
        head = std::move(h);
        co_return true;
    }
    asio::awaitable<bool> send_data(std::span<const char> bytes, bool last) override {
        largest_chunk = std::max(largest_chunk, bytes.size());
        body.append(bytes.data(), bytes.size());
        ended = last;
        if (write_delay.count() > 0) {
            asio::steady_timer t(co_await asio::this_coro::executor, write_delay);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        co_return true;
    }
    asio::awaitable<bool> send_answer(response_head h, std::string answer) override {
        problem = static_cast<http::status>(h.status);
        problem_detail = boost::json::parse(answer).at("detail").as_string().c_str();
        co_return true;
    }
    void abort() override { aborted = true; }
    std::shared_ptr<void> watch_client(cancel_scope& scope) override {
        watched = &scope;
        return std::make_shared<int>(0);
    }
    cancel_scope* watched = nullptr;  // cancel it to play a client that left
};

struct call {
    http::fields headers;
    forward_request request;
    route_match match;
    request_scope scope;

    call(http::verb method, std::string_view method_text, std::string_view target, std::size_t body_size) {
        request.method = method;
        request.method_text = method_text;
        request.target = target;
        request.headers = &headers;
        request.has_body = body_size > 0;
        if (body_size > 0) request.content_length = body_size;
        match.backend = "h2b";
        match.target = std::string(target);
        scope.client = client_info(asio::ip::make_address("192.0.2.9"), false, false);
        scope.request_id = "req-1";
    }
};

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(h2_forwarder)

BOOST_AUTO_TEST_CASE(get_maps_headers_both_ways) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.headers.emplace_back("x-backend", "yes");
        r.headers.emplace_back("content-length", std::to_string(r.body.size()));
        return r;
    });
    fake_sink sink;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config(server.address()));
        call c(http::verb::get, "GET", "/things/1?x=y", 0);
        c.headers.set("X-Custom", "Value");
        c.headers.set("Connection", "keep-alive, X-Drop");
        c.headers.set("X-Drop", "gone");
        c.headers.set("Host", "client.example");
        fake_source body("");
        auto summary = co_await forward_over_h2(c.request, c.match, *pool, body, sink, c.scope);
        BOOST_TEST(summary.status == 200u);
        BOOST_TEST(summary.backend == "h2b");
        BOOST_TEST(summary.keep_alive);
        pool->close();
    });
    BOOST_REQUIRE(sink.head.has_value());
    BOOST_TEST(sink.head->status == 200u);
    BOOST_TEST(sink.head->headers["x-backend"] == "yes");
    BOOST_TEST(sink.head->headers["via"] == "1.1 batchgate");
    BOOST_TEST((sink.head->content_length == std::optional<std::uint64_t>(sink.body.size())));
    BOOST_TEST(sink.body == "GET /things/1?x=y\n");
    BOOST_TEST(sink.ended);
    BOOST_REQUIRE(server.received().size() == 1u);
    const auto seen = server.received()[0];
    BOOST_TEST(seen.scheme == "http");
    BOOST_TEST(seen.authority == server.address());
    BOOST_TEST(seen.path == "/things/1?x=y");
    BOOST_TEST(seen.header("x-custom") == "Value");
    BOOST_TEST(seen.header("x-forwarded-for") == "192.0.2.9");
    BOOST_TEST(seen.header("x-request-id") == "req-1");
    for (const char* banned : {"connection", "x-drop", "host", "keep-alive", "content-length"})
        BOOST_TEST(!seen.has_header(banned), banned);
}

BOOST_AUTO_TEST_CASE(four_mib_each_way_through_a_64_kib_window) {
    const std::string upload = pattern(4 * 1024 * 1024);
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r;
        r.body = req.body;  // echoed: 4 MiB back
        return r;
    });
    fake_sink sink;
    sink.write_delay = 1ms;
    fake_source body(upload);
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto cfg = h2_config(server.address());
        cfg.h2_stream_window = 64 * 1024;
        auto pool = std::make_shared<h2_pool>(ex, cfg);
        call c(http::verb::put, "PUT", "/blob", upload.size());
        auto summary = co_await forward_over_h2(c.request, c.match, *pool, body, sink, c.scope);
        BOOST_TEST(summary.status == 200u);
        BOOST_TEST(summary.request_bytes == upload.size());
        BOOST_TEST(summary.response_bytes == upload.size());
        pool->close();
    });
    BOOST_REQUIRE(server.received().size() == 1u);
    BOOST_TEST(server.received()[0].body.size() == upload.size());
    BOOST_TEST((server.received()[0].body == upload));
    BOOST_TEST(server.received()[0].header("content-length") == std::to_string(upload.size()));
    BOOST_TEST(sink.body.size() == upload.size());
    BOOST_TEST((sink.body == upload));
    BOOST_TEST(sink.ended);
    // Never more than one window waited for the slow client.
    BOOST_TEST(sink.largest_chunk <= 64u * 1024u);
    BOOST_TEST(body.reads >= upload.size() / (16 * 1024));
}

BOOST_AUTO_TEST_CASE(refused_post_is_sent_again_on_a_new_session) {
    h2_test_server server(
        [](const h2_seen_request& req) {
            h2_reply r = h2_echo(req);
            r.delay = 50ms;
            return r;
        },
        h2_server_options{100, 1, 1});  // the first connection takes one stream, then GOAWAY
    std::vector<fake_sink> sinks(3);
    std::vector<exchange_summary> summaries(3);
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config(server.address()));
        int remaining = 3;
        asio::steady_timer done(ex, asio::steady_timer::time_point::max());
        for (int i = 0; i < 3; ++i) {
            asio::co_spawn(ex, [&, i]() -> asio::awaitable<void> {
                const std::string target = "/post/" + std::to_string(i);
                const std::string payload = "payload " + std::to_string(i);
                call c(http::verb::post, "POST", target, payload.size());
                fake_source body(payload);
                summaries[i] = co_await forward_over_h2(c.request, c.match, *pool, body, sinks[i], c.scope);
                if (--remaining == 0) done.cancel();
            }, asio::detached);
        }
        co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
        pool->close();
    });
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(summaries[i].status == 200u);
        BOOST_TEST(sinks[i].body == "POST /post/" + std::to_string(i) + "\npayload " + std::to_string(i));
    }
    BOOST_TEST(server.connections() == 2);
}

BOOST_AUTO_TEST_CASE(failures_become_problems) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.reset = req.path == "/reset";
        r.silent = req.path == "/silent";
        return r;
    });
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto cfg = h2_config(server.address());
        cfg.timeout = 200ms;
        auto pool = std::make_shared<h2_pool>(ex, cfg);
        {
            fake_sink sink;
            call c(http::verb::post, "POST", "/reset", 1);
            fake_source body("x");
            auto s = co_await forward_over_h2(c.request, c.match, *pool, body, sink, c.scope);
            BOOST_TEST(s.status == 502u);
            BOOST_TEST((sink.problem == http::status::bad_gateway));
            BOOST_TEST(sink.problem_detail == "backend h2b: stream reset by the backend (HTTP/2 error 0x2)");
            BOOST_TEST(!sink.head.has_value());
        }
        {
            fake_sink sink;
            call c(http::verb::get, "GET", "/silent", 0);
            fake_source body("");
            auto s = co_await forward_over_h2(c.request, c.match, *pool, body, sink, c.scope);
            BOOST_TEST(s.status == 504u);
            BOOST_TEST(sink.problem_detail == "backend h2b: no response within 200 ms");
        }
        {
            fake_sink sink;
            call c(http::verb::put, "PUT", "/upload", 100000);
            fake_source body(std::string(100000, 'u'));
            body.fail_after = 32 * 1024;
            body.error = body_error::too_large;
            auto s = co_await forward_over_h2(c.request, c.match, *pool, body, sink, c.scope);
            BOOST_TEST(s.status == 413u);
            BOOST_TEST(!s.keep_alive);
        }
        pool->close();
    });
    // The POST was not replayed (the backend may have acted on it); the
    // timed-out GET and the cut upload reset their streams.
    int resets = 0;
    for (const auto& r : server.received()) resets += r.path == "/reset";
    BOOST_TEST(resets == 1);
    BOOST_TEST(eventually([&] { return server.resets_received() >= 2; }));
}

BOOST_AUTO_TEST_CASE(client_leaving_resets_the_stream) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.silent = true;
        return r;
    });
    fake_sink sink;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config(server.address()));
        call c(http::verb::get, "GET", "/forever", 0);
        fake_source body("");
        asio::steady_timer later(ex, 100ms);
        later.async_wait([&](error_code) {
            if (sink.watched) sink.watched->cancel(cancel_reason::client_gone);
        });
        auto s = co_await forward_over_h2(c.request, c.match, *pool, body, sink, c.scope);
        BOOST_TEST(s.status == 0u);  // nobody left to answer (a backend timeout would say 504)
        BOOST_TEST(!s.keep_alive);
        pool->close();
    });
    BOOST_TEST(!sink.problem.has_value());
    BOOST_TEST(eventually([&] { return server.resets_received() == 1; }));
}

BOOST_AUTO_TEST_CASE(unreachable_backend_is_502) {
    fake_sink sink;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config("127.0.0.1:" + std::to_string(closed_port())));
        call c(http::verb::get, "GET", "/", 0);
        fake_source body("");
        auto s = co_await forward_over_h2(c.request, c.match, *pool, body, sink, c.scope);
        BOOST_TEST(s.status == 502u);
    });
    BOOST_TEST((sink.problem == http::status::bad_gateway));
    BOOST_TEST(sink.problem_detail.starts_with("backend h2b: cannot connect: "));
}

BOOST_AUTO_TEST_CASE(later_refused_stream_replays_count_against_attempts) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.refuse = true;  // REFUSED_STREAM every time
        return r;
    });
    for (unsigned attempts : {1u, 3u}) {
        BOOST_TEST_CONTEXT("retries.attempts " << attempts) {
            const int before = server.requests();
            fake_sink sink;
            run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
                auto cfg = h2_config(server.address());
                cfg.retries.attempts = attempts;
                cfg.retries.on_reset = false;  // refusals are replayed without it
                auto pool = std::make_shared<h2_pool>(ex, cfg);
                call c(http::verb::post, "POST", "/refused", 1);
                fake_source body("x");
                auto s = co_await forward_over_h2(c.request, c.match, *pool, body, sink, c.scope);
                BOOST_TEST(s.status == 502u);
                pool->close();
            });
            BOOST_TEST(sink.problem_detail == "backend h2b: stream refused by the backend");
            // The first replay is free; every later one is an attempt.
            BOOST_TEST(server.requests() - before == static_cast<int>(attempts) + 1);
        }
    }
}

BOOST_AUTO_TEST_CASE(refused_body_over_64_kib_is_not_replayed) {
    first_time_for_path first_time;
    h2_test_server server([&](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        r.refuse = req.path == "/big" || first_time(req.path);
        r.body = std::to_string(req.body.size());
        return r;
    });
    fake_sink small_sink, big_sink;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<h2_pool>(ex, h2_config(server.address()));
        {
            // All of a 60 KiB body is still held when the refusal comes: sent again.
            const std::string upload = pattern(60 * 1024);
            call c(http::verb::post, "POST", "/small", upload.size());
            fake_source body(upload);
            auto s = co_await forward_over_h2(c.request, c.match, *pool, body, small_sink, c.scope);
            BOOST_TEST(s.status == 200u);
        }
        {
            const std::string upload = pattern(100 * 1024);
            call c(http::verb::post, "POST", "/big", upload.size());
            fake_source body(upload);
            auto s = co_await forward_over_h2(c.request, c.match, *pool, body, big_sink, c.scope);
            BOOST_TEST(s.status == 502u);
        }
        pool->close();
    });
    BOOST_TEST(small_sink.body == std::to_string(60 * 1024));
    BOOST_TEST((big_sink.problem == http::status::bad_gateway));
    BOOST_TEST(big_sink.problem_detail.find("stream refused after more than 65536 bytes of the request body went out") !=
               std::string::npos);
    int small_tries = 0, big_tries = 0;
    for (const auto& r : server.received()) {
        small_tries += r.path == "/small";
        big_tries += r.path == "/big";
    }
    BOOST_TEST(small_tries == 2);
    BOOST_TEST(big_tries == 1);  // its body is no longer all there to send again
}

BOOST_AUTO_TEST_CASE(queue_timeout_is_503) {
    // One session (max_connections 1) that allows one stream: a second
    // request waits for room, and gives up after queue_timeout.
    std::atomic<bool> release{false};
    h2_test_server server(
        [&](const h2_seen_request& req) {
            h2_reply r = h2_echo(req);
            if (req.path == "/held") r.hold = [&] { return release.load(); };
            return r;
        },
        h2_server_options{1, 0});
    fake_sink held_sink, queued_sink;
    exchange_summary held_summary;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto cfg = h2_config(server.address());
        cfg.max_connections = 1;
        cfg.queue_timeout = 200ms;
        auto pool = std::make_shared<h2_pool>(ex, cfg);
        asio::steady_timer held_done(ex, asio::steady_timer::time_point::max());
        asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
            call c(http::verb::get, "GET", "/held", 0);
            fake_source body("");
            held_summary = co_await forward_over_h2(c.request, c.match, *pool, body, held_sink, c.scope);
            held_done.cancel();
        }, asio::detached);
        BOOST_TEST(co_await eventually_async([&] { return server.streams_open() == 1; }));
        {
            call c(http::verb::get, "GET", "/queued", 0);
            fake_source body("");
            auto s = co_await forward_over_h2(c.request, c.match, *pool, body, queued_sink, c.scope);
            BOOST_TEST(s.status == 503u);
        }
        release = true;
        co_await held_done.async_wait(asio::as_tuple(asio::use_awaitable));
        pool->close();
    });
    BOOST_TEST((queued_sink.problem == http::status::service_unavailable));
    BOOST_TEST(queued_sink.problem_detail == "backend h2b: every connection busy for 200 ms");
    BOOST_TEST(held_summary.status == 200u);
    BOOST_TEST(server.requests() == 1);  // the queued request never reached the backend
    BOOST_TEST(server.connections() == 1);
}

BOOST_AUTO_TEST_CASE(switching_protocols_is_502_and_trailers_are_dropped) {
    h2_test_server server([](const h2_seen_request& req) {
        h2_reply r = h2_echo(req);
        if (req.path == "/switch") r.status = 101;
        if (req.path == "/trailers") r.trailers = {{"x-checksum", "abc"}};
        return r;
    });
    fake_sink switch_sink, trailers_sink;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto cfg = h2_config(server.address());
        cfg.retries.attempts = 1;
        auto pool = std::make_shared<h2_pool>(ex, cfg);
        {
            call c(http::verb::get, "GET", "/switch", 0);
            fake_source body("");
            auto s = co_await forward_over_h2(c.request, c.match, *pool, body, switch_sink, c.scope);
            BOOST_TEST(s.status == 502u);
        }
        {
            call c(http::verb::get, "GET", "/trailers", 0);
            fake_source body("");
            auto s = co_await forward_over_h2(c.request, c.match, *pool, body, trailers_sink, c.scope);
            BOOST_TEST(s.status == 200u);
        }
        pool->close();
    });
    BOOST_TEST((switch_sink.problem == http::status::bad_gateway));
    BOOST_TEST(!switch_sink.head.has_value());  // nothing of the 101 reached the client
    BOOST_REQUIRE(trailers_sink.head.has_value());
    BOOST_TEST(trailers_sink.body == "GET /trailers\n");
    BOOST_TEST(trailers_sink.ended);
    BOOST_TEST(trailers_sink.head->headers["x-checksum"].empty());  // not turned into a header either
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
