// Claims the README makes about the HTTP/1.1 side ("Configuration" keys,
// "Decisions", "Running it"), each proved against the real server (or the
// real binary, for signals and the access log on stdout) with real sockets
// on 127.0.0.1. Each test is named after the claim it proves.
#include "proxy/core/metrics.hpp"
#include "tests/integration/batch_client.hpp"
#include "tests/integration/child_process.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>
#include <linux/sockios.h>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

// HTTP/1.1 sessions the proxy's (only) worker holds now.
std::size_t sessions(running_proxy& proxy) {
    return proxy.get().on_worker(0, [](worker& w) { return w.session_count(); });
}

// True when the socket has something to read (or was closed) within `ms`.
bool readable_within(tcp::socket& s, int ms) {
    pollfd p{s.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, ms) > 0;
}

bool is_hex16(const std::string& s) {
    return s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// --- kernel queues of one loopback connection (for the pipelining bound) ---

// rx_queue of the IPv4 socket local_port -> remote_port in /proc/net/tcp:
// bytes the kernel received that the owning process has not read yet.
std::optional<std::size_t> unread_by_owner(std::uint16_t local_port, std::uint16_t remote_port) {
    std::ifstream f("/proc/net/tcp");
    std::string line;
    std::getline(f, line);  // header
    char want_local[8], want_remote[8];
    std::snprintf(want_local, sizeof want_local, ":%04X", local_port);
    std::snprintf(want_remote, sizeof want_remote, ":%04X", remote_port);
    while (std::getline(f, line)) {
        std::istringstream in(line);
        std::string sl, local, remote, st, queues;
        in >> sl >> local >> remote >> st >> queues;
        if (!local.ends_with(want_local) || !remote.ends_with(want_remote)) continue;
        auto colon = queues.find(':');
        if (colon == std::string::npos) return std::nullopt;
        return static_cast<std::size_t>(std::stoul(queues.substr(colon + 1), nullptr, 16));
    }
    return std::nullopt;
}

// Bytes written to the socket that the kernel has not sent yet.
std::size_t unsent(int fd) {
    int n = 0;
    ::ioctl(fd, SIOCOUTQNSD, &n);
    return static_cast<std::size_t>(n);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(readme_claims)

// README, keys table: "limits.send_timeout | 30s | one write to a client that
// does not read; then the connection is closed".
BOOST_AUTO_TEST_CASE(limits_send_timeout_closes_a_client_that_does_not_read) {
    constexpr std::size_t body_size = 16 * 1024 * 1024;  // far more than the socket buffers hold
    test_backend backend([](const request_type&) {
        reply r;
        r.response.body() = std::string(body_size, 'x');
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "", "limits: {send_timeout: 300ms}\n"));
    client c(proxy.port());
    const auto sent = steady::now();
    c.send_raw("GET /big HTTP/1.1\r\nHost: t\r\n\r\n");  // and never read
    BOOST_TEST_REQUIRE(eventually([&] { return backend.requests() == 1; }));  // so the session was accepted
    // The session ends once one write has been stuck for send_timeout: far
    // sooner than the 30 s default (the guard is only a hang guard).
    BOOST_TEST_REQUIRE(eventually([&] { return sessions(proxy) == 0; }, 15s));
    BOOST_TEST((steady::now() - sent >= 300ms));
    // What the kernel had queued still arrives, then the close: the answer
    // was cut short, not completed.
    auto raw = c.read_until_close();
    BOOST_TEST(raw.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(raw.size() < body_size);
}

// PRODUCT.md §6: every breach has a metric; an HTTP/1.1 write past
// limits.send_timeout counts limit="send_timeout" (HTTP/2 always did).
BOOST_AUTO_TEST_CASE(limits_send_timeout_breach_is_counted_on_http1) {
    constexpr std::size_t body_size = 16 * 1024 * 1024;
    test_backend backend([](const request_type&) {
        reply r;
        r.response.body() = std::string(body_size, 'x');
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "", "limits: {send_timeout: 300ms}\n"));
    auto& metrics = metrics_registry::global();
    const auto before = metrics.limit_breaches(limit_kind::send_timeout);
    client c(proxy.port());
    c.send_raw("GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    BOOST_TEST_REQUIRE(eventually([&] { return backend.requests() == 1; }));
    BOOST_TEST_REQUIRE(eventually([&] { return sessions(proxy) == 0; }, 15s));
    BOOST_TEST(metrics.limit_breaches(limit_kind::send_timeout) == before + 1);
}

// README, keys table: "limits.max_connections | client connections open at
// once; past it accepting pauses (the kernel backlog holds the rest)".
BOOST_AUTO_TEST_CASE(limits_max_connections_pauses_accepting_and_the_backlog_holds_the_rest) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address(), "", "limits: {max_connections: 2}\n"));
    auto& metrics = metrics_registry::global();
    const auto breaches_before = metrics.limit_breaches(limit_kind::client_connections);
    auto first = std::make_unique<client>(proxy.port());
    client second(proxy.port());
    BOOST_TEST(first->request(make_request(http::verb::get, "/first")).result_int() == 200u);
    BOOST_TEST(second.request(make_request(http::verb::get, "/second")).result_int() == 200u);
    // At the limit the accept loop pauses, and says so once.
    BOOST_TEST_REQUIRE(eventually([&] { return metrics.limit_breaches(limit_kind::client_connections) > breaches_before; }));

    client third(proxy.port());  // the TCP connect succeeds: the kernel backlog holds it
    third.send_raw("GET /third HTTP/1.1\r\nHost: t\r\n\r\n");
    BOOST_TEST(!readable_within(third.socket(), 300));  // not accepted, so not answered (nor closed)
    BOOST_TEST(backend.requests() == 2);
    BOOST_TEST(sessions(proxy) == 2u);
    BOOST_TEST(metrics.limit_breaches(limit_kind::client_connections) == breaches_before + 1);

    first.reset();  // one slot frees: the waiting connection is accepted and served
    auto res = third.read_response();
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res.body() == "GET /third\n");
    BOOST_TEST(backend.requests() == 3);
}

// README, Decisions → Timeouts: "Connection refused → 502, connect timeout → 504".
BOOST_AUTO_TEST_CASE(connect_timeout_gives_504_and_connection_refused_502) {
    // A listener whose accept queue is full: Linux drops further SYNs, so a
    // connect to it neither succeeds nor is refused until it times out.
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_REQUIRE(::listen(listener, 0) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    const std::uint16_t full_port = ntohs(addr.sin_port);
    std::vector<int> fillers;
    for (int i = 0; i < 3; ++i) {  // the first fills the queue (backlog 0 holds one); the rest are dropped
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        fillers.push_back(s);
    }
    {  // Precondition: the first filler is in the queue (its connect completed).
        pollfd p{fillers[0], POLLOUT, 0};
        BOOST_REQUIRE(::poll(&p, 1, 5000) == 1);
    }

    auto& backend_metrics = metrics_registry::global().backend("b");
    const auto timeouts_before = backend_metrics.timeouts.load();
    {
        running_proxy proxy(proxy_config("127.0.0.1:" + std::to_string(full_port),
                                         "    connect_timeout: 200ms\n    timeout: 10s\n    retries: {attempts: 1}\n"));
        client c(proxy.port());
        const auto started = steady::now();
        auto res = c.request(make_request(http::verb::get, "/x"));
        BOOST_TEST(res.result_int() == 504u);
        BOOST_TEST(res[http::field::content_type] == "application/problem+json");
        BOOST_TEST(res.body().find("no connection within 200 ms") != std::string::npos, res.body());
        BOOST_TEST((steady::now() - started >= 200ms));

        client c2(proxy.port());
        auto batch = post_batch(c2, R"({"requests":[{"id":"1","method":"GET","url":"/y"}]})", "application/json");
        BOOST_TEST(batch.result_int() == 207u);
        auto es = by_id(entries_of(batch.body()));
        BOOST_TEST(es["1"].status == "HTTP/1.1 504 Gateway Timeout");
        BOOST_TEST(es["1"].error == "upstream-timeout");
        BOOST_TEST(es["1"].description.find("no connection within 200 ms") != std::string::npos, es["1"].description);
        BOOST_TEST(backend_metrics.timeouts.load() == timeouts_before + 2);
    }
    for (int s : fillers) ::close(s);
    ::close(listener);

    // The same backend refusing outright is a 502.
    running_proxy refused(proxy_config("127.0.0.1:" + std::to_string(closed_port()), "    retries: {attempts: 1}\n"));
    client c(refused.port());
    auto res = c.request(make_request(http::verb::get, "/x"));
    BOOST_TEST(res.result_int() == 502u);
    BOOST_TEST(res.body().find("cannot connect") != std::string::npos, res.body());
}

// README, Decisions → Retries: "Retry-After (seconds) is honoured when it
// fits in the batch deadline."
BOOST_AUTO_TEST_CASE(retry_after_is_honoured_within_the_batch_deadline) {
    std::mutex mutex;
    std::vector<steady::time_point> arrivals;
    test_backend backend([&](const request_type&) {
        reply r;
        std::lock_guard lock(mutex);
        arrivals.push_back(steady::now());
        if (arrivals.size() == 1) {
            r.response.result(http::status::service_unavailable);
            r.response.set(http::field::retry_after, "1");
            r.response.body() = "busy";
        } else {
            r.response.body() = "second try";
        }
        return r;
    });
    running_proxy proxy(
        proxy_config(backend.address(), "    retries: {attempts: 2, on: [503]}\n", "batch: {deadline: 20s}\n"));
    client c(proxy.port(), 20000);
    auto res = post_batch(c, R"({"requests":[{"id":"1","method":"GET","url":"/r"}]})", "application/json");
    BOOST_TEST(res.result_int() == 207u);
    auto es = by_id(entries_of(res.body()));
    BOOST_TEST(es["1"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["1"].body == "second try");
    std::lock_guard lock(mutex);
    BOOST_REQUIRE_EQUAL(arrivals.size(), 2u);
    // The retry waited for Retry-After (1 s), not the 50 ms default pause.
    BOOST_TEST((arrivals[1] - arrivals[0] >= 900ms));
}

// ... and one that does not fit is not waited for: the item answers with the
// backend's 503 at once (fanout.cpp: retry only when now + pause < deadline).
BOOST_AUTO_TEST_CASE(retry_after_past_the_batch_deadline_is_not_waited_for) {
    test_backend backend([](const request_type&) {
        reply r;
        r.response.result(http::status::service_unavailable);
        r.response.set(http::field::retry_after, "60");
        r.response.body() = "busy";
        return r;
    });
    running_proxy proxy(
        proxy_config(backend.address(), "    retries: {attempts: 2, on: [503]}\n", "batch: {deadline: 5s}\n"));
    client c(proxy.port());
    const auto started = steady::now();
    auto res = post_batch(c, R"({"requests":[{"id":"1","method":"GET","url":"/r"}]})", "application/json");
    const auto elapsed = steady::now() - started;
    BOOST_TEST(res.result_int() == 207u);
    auto es = by_id(entries_of(res.body()));
    BOOST_TEST(es["1"].status == "HTTP/1.1 503 Service Unavailable");  // the backend's own answer, not a 504
    BOOST_TEST(es["1"].body == "busy");
    BOOST_TEST(res.body().find("<B:header name=\"Retry-After\">60</B:header>") != std::string::npos, res.body());
    BOOST_TEST(backend.requests() == 1);
    // Neither the 60 s nor the 5 s deadline was waited out.
    BOOST_TEST((elapsed < 5s));
}

// README, Decisions → Forwarding: "X-Request-Id is passed on when the client
// sent a sane one (≤ 128 visible characters) and generated otherwise".
BOOST_AUTO_TEST_CASE(x_request_id_sane_is_passed_on) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());
    const std::string longest(128, 'k');
    for (const std::string& id : {std::string("abc-123"), longest, std::string("a!#$%&'*+-.^_`|~:/=?@[]{}()z")}) {
        c.send_raw("GET /id HTTP/1.1\r\nHost: t\r\nX-Request-Id: " + id + "\r\n\r\n");
        BOOST_TEST(c.read_response().result_int() == 200u);
        const auto got = backend.received().back();
        BOOST_TEST(got["x-request-id"] == id);
    }
    c.send_raw("GET /id HTTP/1.1\r\nHost: t\r\n\r\n");
    BOOST_TEST(c.read_response().result_int() == 200u);
    BOOST_TEST(is_hex16(std::string(backend.received().back()["x-request-id"])));
}

// README Decisions → Forwarding: an X-Request-Id that is not sane (over 128
// characters, or with a space, tab or non-ASCII byte) is replaced by a
// generated one, the access log's request_id.
BOOST_AUTO_TEST_CASE(x_request_id_over_long_or_invisible_is_replaced) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());
    const std::string too_long(129, 'k');
    for (const std::string& id : {too_long, std::string("has space"), std::string("has\ttab"), std::string("caf\xc3\xa9")}) {
        c.send_raw("GET /id HTTP/1.1\r\nHost: t\r\nX-Request-Id: " + id + "\r\n\r\n");
        BOOST_TEST(c.read_response().result_int() == 200u);
        auto got = backend.received().back();
        BOOST_TEST(got.count("x-request-id") == 1u);
        BOOST_TEST(is_hex16(std::string(got["x-request-id"])), "sent '" << id << "', backend saw '" << got["x-request-id"] << "'");
    }
}

// The same for batch items: a batch without X-Request-Id gets a generated
// one, and every item carries it (x-request-id is in batch.forward_headers).
BOOST_AUTO_TEST_CASE(x_request_id_is_generated_for_batch_items_too) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[{"id":"1","method":"GET","url":"/a"},{"id":"2","method":"GET","url":"/b"}]})",
                          "application/json");
    BOOST_TEST(res.result_int() == 207u);
    const auto got = backend.received();
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_TEST(is_hex16(std::string(got[0]["x-request-id"])), "backend saw '" << got[0]["x-request-id"] << "'");
    BOOST_TEST(got[0]["x-request-id"] == got[1]["x-request-id"]);  // one batch, one request id
}

// README, Decisions → Request smuggling: "Obsolete line folding is replaced
// by spaces by the parser, as RFC 9112 allows."
BOOST_AUTO_TEST_CASE(obsolete_line_folding_is_replaced_by_spaces) {
    test_backend backend;
    running_proxy proxy(proxy_config(backend.address()));
    client c(proxy.port());
    c.send_raw("GET /fold HTTP/1.1\r\nHost: t\r\nX-A: one\r\n  two\r\n\tthree\r\nX-B: b\r\n\r\n");
    auto res = c.read_response();
    BOOST_TEST(res.result_int() == 200u, res.body());
    BOOST_REQUIRE_EQUAL(backend.requests(), 1);
    auto got = backend.received().at(0);
    // Beast joins the lines with one space (the fold and the continuation's
    // leading whitespace together).
    BOOST_TEST(got["x-a"] == "one two three");
    BOOST_TEST(got.count("x-a") == 1u);
    BOOST_TEST(got["x-b"] == "b");  // the fold did not swallow the next field
    for (const auto& f : got) {
        BOOST_TEST(f.value().find_first_of("\r\n") == std::string_view::npos, f.name_string());
        BOOST_TEST(f.name_string().find_first_of(" \t\r\n") == std::string_view::npos);
    }
}

// README, Decisions → Pipelining: "answered in order, one request at a time;
// what a client sends ahead waits in a buffer bounded by max_header_bytes +
// 32 KiB and in the kernel's socket buffer (TCP backpressure), never in an
// unbounded queue."
BOOST_AUTO_TEST_CASE(pipelining_is_bounded_by_max_header_bytes_plus_32KiB_and_answered_in_order) {
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        reply r;
        if (req.target() == "/hold") r.hold = [&] { return release.load(); };
        r.response.body() = std::string(req.target()) + " " + std::to_string(req.body().size());
        return r;
    });
    running_proxy proxy(proxy_config(backend.address(), "", "limits: {max_header_bytes: 1KiB}\n"));
    constexpr std::size_t bound = 1024 + 32 * 1024;
    constexpr int pipelined = 384;
    constexpr std::size_t body_size = 64 * 1024;  // 24 MiB sent ahead in all
    // The held request and everything after it in one stream, so batchgate's
    // first read already takes pipelined bytes into its buffer.
    std::string ahead = "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 1; i <= pipelined; ++i)
        ahead += "PUT /p/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                 std::to_string(body_size) + "\r\n\r\n" + std::string(body_size, static_cast<char>('a' + i % 26));

    client c(proxy.port());
    // Write until the kernel refuses more (batchgate does not read on while
    // /hold is at the backend).
    const int fd = c.socket().native_handle();
    std::size_t accepted = 0;
    for (;;) {
        auto n = ::send(fd, ahead.data() + accepted, ahead.size() - accepted, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            BOOST_REQUIRE_MESSAGE(errno == EAGAIN || errno == EWOULDBLOCK, "send: " << std::strerror(errno));
            break;
        }
        accepted += static_cast<std::size_t>(n);
        BOOST_REQUIRE_MESSAGE(accepted < ahead.size(), "all 24 MiB were taken while the first request was held");
    }
    BOOST_TEST_REQUIRE(eventually([&] { return backend.in_flight() == 1; }));
    BOOST_TEST_MESSAGE("the kernel took " << accepted << " of " << ahead.size() << " bytes before blocking");
    BOOST_TEST(backend.requests() == 1);
    BOOST_TEST(backend.in_flight() == 1);

    // What batchgate itself read from the socket (the held request and what
    // its buffer holds beyond it) = sent by the client's kernel − still
    // unread in batchgate's socket. The rest waits in the kernel.
    tcp::endpoint local = c.socket().local_endpoint();
    std::size_t read_by_proxy = 0, kernel_unsent = 0, unread = 0;
    const bool bounded = eventually(
        [&] {
            auto rx = unread_by_owner(proxy.port(), local.port());
            if (!rx) return false;
            kernel_unsent = unsent(fd);
            unread = *rx;
            const std::size_t sent_by_kernel = accepted - std::min(kernel_unsent, accepted);
            read_by_proxy = sent_by_kernel - std::min(unread, sent_by_kernel);
            return read_by_proxy <= bound;
        },
        3s);
    BOOST_TEST_MESSAGE("batchgate read " << read_by_proxy << " bytes of the stream; " << kernel_unsent
                                         << " wait in the client's socket, " << unread << " in batchgate's");
    BOOST_TEST(bounded, "batchgate read " << read_by_proxy << " bytes of the stream (bound " << bound
                                          << "), or its socket is not in /proc/net/tcp");

    // Released: everything is answered, in order, one at a time.
    std::atomic<bool> writer_ok{true}, stop_writer{false};
    std::thread writer([&] {
        std::size_t at = accepted;
        const auto guard = steady::now() + 60s;
        while (at < ahead.size() && steady::now() < guard && !stop_writer) {
            pollfd p{fd, POLLOUT, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            auto n = ::send(fd, ahead.data() + at, ahead.size() - at, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) continue;
                writer_ok = false;
                return;
            }
            at += static_cast<std::size_t>(n);
        }
        if (at != ahead.size()) writer_ok = false;
    });
    struct joiner {
        std::thread& t;
        std::atomic<bool>& stop;
        ~joiner() {
            stop = true;
            if (t.joinable()) t.join();
        }
    } join_writer{writer, stop_writer};
    release = true;
    bool in_order = true;
    auto first = c.read_response();
    BOOST_TEST(first.body() == "/hold 0");
    in_order = first.body() == "/hold 0";
    for (int i = 1; i <= pipelined && in_order; ++i) {
        auto res = c.read_response();
        const std::string want = "/p/" + std::to_string(i) + " " + std::to_string(body_size);
        if (res.body() != want || res.result_int() != 200u) {
            BOOST_TEST(res.body() == want);
            in_order = false;
        }
    }
    writer.join();
    BOOST_TEST(in_order);
    BOOST_TEST(writer_ok.load());
    BOOST_TEST(backend.requests() == pipelined + 1);
    BOOST_TEST(backend.max_concurrent() == 1);
}

// README, Running it: "SIGHUP re-reads the file: ... a good one applies to
// new requests while in-flight ones finish on the configuration they
// started with."
BOOST_AUTO_TEST_CASE(sighup_applies_to_new_requests_while_in_flight_ones_finish_on_their_configuration) {
    std::atomic<bool> release{false};
    test_backend old_backend([&](const request_type& req) {
        reply r;
        if (req.target() == "/held") r.hold = [&] { return release.load(); };
        r.response.body() = "old " + std::string(req.target());
        return r;
    });
    test_backend new_backend([](const request_type& req) {
        reply r;
        r.response.body() = "new " + std::string(req.target());
        return r;
    });
    const auto cfg = temp_path("reload.yaml"), out = temp_path("reload.out"), err = temp_path("reload.err");
    write_file(cfg, binary_config(old_backend.address(), false));
    child_guard child{spawn_batchgate({"--config", cfg}, out, err)};
    const auto port = listening_port(err);

    client held(port);
    held.send_raw("GET /held HTTP/1.1\r\nHost: t\r\n\r\n");
    BOOST_TEST_REQUIRE(eventually([&] { return old_backend.in_flight() == 1; }));

    write_file(cfg, binary_config(new_backend.address(), false));
    ::kill(child.pid, SIGHUP);
    BOOST_TEST_REQUIRE(eventually([&] { return read_file(err).find("reloaded") != std::string::npos; }));

    // While the held request is still in flight, a new one takes the new configuration.
    client fresh(port);
    BOOST_TEST(fresh.request(make_request(http::verb::get, "/fresh")).body() == "new /fresh");
    BOOST_TEST(old_backend.in_flight() == 1);

    release = true;
    auto res = held.read_response();
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res.body() == "old /held");  // finished on the configuration it started with
    // The next request on that same connection is a new request.
    BOOST_TEST(held.request(make_request(http::verb::get, "/after")).body() == "new /after");
    BOOST_TEST(old_backend.requests() == 1);
    BOOST_TEST(new_backend.requests() == 2);

    ::kill(child.pid, SIGTERM);
    BOOST_TEST(wait_exit(child.pid) == 0);
    std::remove(cfg.c_str());
    std::remove(out.c_str());
    std::remove(err.c_str());
}

// README: "access_log | true | one JSON line per request on stdout";
// Decisions → Forwarding: X-Request-Id "is the request_id of the access log
// line"; PRODUCT.md §5: "One structured (JSON) access-log line per
// request/batch, with a request id"; config/example.yaml: "one JSON line per
// request/batch on stdout".
BOOST_AUTO_TEST_CASE(access_log_is_one_json_line_per_request_and_batch_with_the_request_id) {
    test_backend backend;
    const auto cfg = temp_path("log.yaml"), out = temp_path("log.out"), err = temp_path("log.err");
    write_file(cfg, binary_config(backend.address(), true));
    child_guard child{spawn_batchgate({"--config", cfg}, out, err)};
    const auto port = listening_port(err);

    client c(port);
    auto with_id = make_request(http::verb::get, "/users/1?x=1");
    with_id.set("X-Request-Id", "claims-log-1");
    auto r1 = c.request(with_id);
    BOOST_TEST(r1.result_int() == 200u);
    auto r2 = c.request(make_request(http::verb::delete_, "/items/17"));
    BOOST_TEST(r2.result_int() == 200u);
    const std::string generated(backend.received().at(1)["x-request-id"]);
    BOOST_TEST(is_hex16(generated));
    const std::string batch_body =
        R"({"requests":[{"id":"1","method":"GET","url":"/a"},{"id":"2","method":"PUT","url":"/b","body":"x"}]})";
    auto batch_req = make_request(http::verb::post, "/batch", batch_body);
    batch_req.set(http::field::content_type, "application/json");
    batch_req.set("X-Request-Id", "claims-batch-1");
    auto r3 = c.request(batch_req);
    BOOST_TEST(r3.result_int() == 207u);
    BOOST_REQUIRE_EQUAL(backend.requests(), 4);
    const auto received = backend.received();
    for (std::size_t i = 2; i < 4; ++i)  // items carry the batch's id (batch.forward_headers)
        BOOST_TEST(received.at(i)["x-request-id"] == "claims-batch-1");

    auto count_lines = [&] {
        auto text = read_file(out);
        return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    };
    BOOST_TEST_REQUIRE(eventually([&] { return count_lines() >= 3; }));
    ::kill(child.pid, SIGTERM);
    BOOST_TEST(wait_exit(child.pid) == 0);

    std::vector<boost::json::object> lines;
    std::istringstream text(read_file(out));
    for (std::string line; std::getline(text, line);) {
        boost::system::error_code ec;
        auto v = boost::json::parse(line, ec);
        BOOST_TEST_REQUIRE(!ec, "not JSON: " << line);
        BOOST_TEST_REQUIRE(v.is_object(), line);
        lines.push_back(v.as_object());
    }
    BOOST_REQUIRE_EQUAL(lines.size(), 3u);  // one per request and one for the batch, none per item

    struct expected {
        std::string request_id, method, target;
        int status;
        std::size_t request_bytes, response_bytes;
        bool has_backend;
    };
    const expected want[] = {
        {"claims-log-1", "GET", "/users/1?x=1", 200, 0, r1.body().size(), true},
        {generated, "DELETE", "/items/17", 200, 0, r2.body().size(), true},
        {"claims-batch-1", "POST", "/batch", 207, batch_body.size(), r3.body().size(), false},
    };
    for (std::size_t i = 0; i < 3; ++i) {
        const auto& l = lines[i];
        const auto& w = want[i];
        BOOST_TEST_CONTEXT("line " << i << ": " << boost::json::serialize(l)) {
            bool complete = true;
            for (const char* key : {"time", "request_id", "client", "method", "target", "status", "request_bytes",
                                    "response_bytes", "duration_us"}) {
                BOOST_TEST(l.contains(key), key);
                complete = complete && l.contains(key);
            }
            if (!complete) continue;
            BOOST_TEST(l.at("request_id").as_string() == w.request_id);
            BOOST_TEST(l.at("method").as_string() == w.method);
            BOOST_TEST(l.at("target").as_string() == w.target);
            BOOST_TEST(l.at("status").to_number<int>() == w.status);
            BOOST_TEST(l.at("client").as_string() == "127.0.0.1");
            BOOST_TEST(l.at("request_bytes").to_number<std::size_t>() == w.request_bytes);
            BOOST_TEST(l.at("response_bytes").to_number<std::size_t>() == w.response_bytes);
            BOOST_TEST(l.at("duration_us").to_number<std::int64_t>() >= 0);
            const std::string time(l.at("time").as_string());
            // 2026-12-04T19:00:00.123Z
            BOOST_TEST(time.size() == 24u, time);
            BOOST_TEST((time.size() == 24u && time[4] == '-' && time[10] == 'T' && time[19] == '.' && time[23] == 'Z'),
                       time);
            if (w.has_backend) BOOST_TEST(l.at("backend").as_string() == "b");
        }
    }
    std::remove(cfg.c_str());
    std::remove(out.c_str());
    std::remove(err.c_str());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
