// The admin listener on 127.0.0.1:0 with its own io_context on a thread,
// driven by blocking clients whose reads time out instead of hanging.
#include "proxy/core/metrics.hpp"
#include "proxy/ops/admin.hpp"
#include "tests/integration/harness.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>


#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct admin_fixture {
    admin_fixture() {
        metrics_registry::global().reset_for_tests();
        server = std::make_unique<admin_server>(context, host_port{"127.0.0.1", 0}, [this] { return ready.load(); });
        port = server->local_endpoint().port();
        server->start();
        thread = std::thread([this] { context.run(); });
    }
    ~admin_fixture() {
        server->stop();
        // stop() must leave no work behind: run() returns by itself.
        thread.join();
        server.reset();
        metrics_registry::global().reset_for_tests();
    }

    asio::io_context context;
    std::atomic<bool> ready{true};
    std::unique_ptr<admin_server> server;
    std::uint16_t port = 0;
    std::thread thread;
};

// The harness client (every read and write under a deadline), with the
// admin listener's Host and a (method, target, body) shorthand.
class admin_client : public client {
public:
    explicit admin_client(std::uint16_t port, int timeout_ms = 5000) : client(port, timeout_ms) {}
    using client::request;
    http::response<http::string_body> request(http::verb method, const std::string& target,
                                              const std::string& body = {}) {
        auto req = make_request(method, target, body);
        req.set(http::field::host, "admin.test");
        return request(std::move(req));
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(admin)

BOOST_FIXTURE_TEST_CASE(healthz, admin_fixture) {
    admin_client c(port);
    auto res = c.request(http::verb::get, "/healthz");
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res.body() == "ok\n");
    BOOST_TEST(res[http::field::content_type] == "text/plain; charset=utf-8");
    ready = false;  // health does not depend on readiness
    res = c.request(http::verb::get, "/healthz");
    BOOST_TEST(res.result_int() == 200u);
}

BOOST_FIXTURE_TEST_CASE(readyz_follows_ready, admin_fixture) {
    admin_client c(port);
    auto res = c.request(http::verb::get, "/readyz");
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res.body() == "ready\n");
    ready = false;
    res = c.request(http::verb::get, "/readyz");
    BOOST_TEST(res.result_int() == 503u);
    BOOST_TEST(res.body() == "draining\n");
    ready = true;
    res = c.request(http::verb::get, "/readyz?verbose=1");  // a query string is ignored
    BOOST_TEST(res.result_int() == 200u);
}

BOOST_FIXTURE_TEST_CASE(metrics_page, admin_fixture) {
    metrics_registry::global().limit_breached(limit_kind::smuggling);
    metrics_registry::global().backend("users").retries += 4;
    admin_client c(port);
    auto res = c.request(http::verb::get, "/metrics");
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
    BOOST_TEST(res.body().find("# TYPE batchgate_limit_breaches_total counter\n") != std::string::npos);
    BOOST_TEST(res.body().find("\nbatchgate_limit_breaches_total{limit=\"smuggling\"} 1\n") != std::string::npos);
    BOOST_TEST(res.body().find("\nbatchgate_backend_retries_total{backend=\"users\"} 4\n") != std::string::npos);
    BOOST_TEST(res.body() == metrics_registry::global().render());
}

BOOST_FIXTURE_TEST_CASE(head_metrics_has_no_body, admin_fixture) {
    admin_client c(port);
    auto res = c.request(http::verb::head, "/metrics");
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
    BOOST_TEST(std::stoul(std::string(res[http::field::content_length])) > 0u);
    BOOST_TEST(res.body().empty());
    // Had a body been sent, it would be read as the next response and fail to parse.
    auto next = c.request(http::verb::get, "/healthz");
    BOOST_TEST(next.result_int() == 200u);
    BOOST_TEST(next.body() == "ok\n");
}

BOOST_FIXTURE_TEST_CASE(unknown_path_404, admin_fixture) {
    admin_client c(port);
    auto res = c.request(http::verb::get, "/nope");
    BOOST_TEST(res.result_int() == 404u);
    res = c.request(http::verb::get, "/metrics/extra");
    BOOST_TEST(res.result_int() == 404u);
}

BOOST_FIXTURE_TEST_CASE(other_methods_405_with_allow, admin_fixture) {
    admin_client c(port);
    for (auto method : {http::verb::post, http::verb::delete_, http::verb::put}) {
        auto res = c.request(method, "/metrics");
        BOOST_TEST(res.result_int() == 405u);
        BOOST_TEST(res[http::field::allow] == "GET, HEAD");
    }
}

BOOST_FIXTURE_TEST_CASE(keep_alive, admin_fixture) {
    admin_client c(port);
    auto first = c.request(http::verb::get, "/healthz");
    BOOST_TEST(first.result_int() == 200u);
    BOOST_TEST(first.keep_alive());
    auto second = c.request(http::verb::get, "/readyz");
    BOOST_TEST(second.result_int() == 200u);
    // Two pipelined requests are answered in order on the same connection.
    c.send_raw("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
    BOOST_TEST(c.read_response().result_int() == 200u);
    BOOST_TEST(c.read_response().result_int() == 404u);
    // Connection: close is honoured.
    c.send_raw("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    auto last = c.read_response();
    BOOST_TEST(last.result_int() == 200u);
    BOOST_TEST(!last.keep_alive());
    BOOST_TEST(c.closed_by_server());
}

BOOST_FIXTURE_TEST_CASE(bodies_and_large_heads_refused, admin_fixture) {
    {
        admin_client c(port);
        auto res = c.request(http::verb::get, "/metrics", "hello");
        BOOST_TEST(res.result_int() == 413u);
        BOOST_TEST(c.closed_by_server());
    }
    {
        admin_client c(port);
        c.send_raw("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(9000, 'x') + "\r\n\r\n");
        BOOST_TEST(c.read_response().result_int() == 431u);
        BOOST_TEST(c.closed_by_server());
    }
    {
        admin_client c(port);
        c.send_raw("NOT HTTP AT ALL\r\n\r\n");
        BOOST_TEST(c.read_response().result_int() == 400u);
        BOOST_TEST(c.closed_by_server());
    }
    // The listener still serves afterwards.
    admin_client c(port);
    BOOST_TEST(c.request(http::verb::get, "/healthz").result_int() == 200u);
}

BOOST_FIXTURE_TEST_CASE(connection_limit, admin_fixture) {
    std::vector<std::unique_ptr<admin_client>> clients;
    for (std::size_t i = 0; i < admin_server::max_connections; ++i) {
        clients.push_back(std::make_unique<admin_client>(port));
        // An answer proves the server holds this connection.
        BOOST_TEST_REQUIRE(clients.back()->request(http::verb::get, "/healthz").result_int() == 200u);
    }
    admin_client extra(port);
    BOOST_TEST(extra.closed_by_server());
    // Once one leaves, a new one is served.
    clients.pop_back();
    // (the server notices the close asynchronously: ask until it answers)
    BOOST_TEST(eventually([&] {
        admin_client again(port, 2000);
        auto req = make_request(http::verb::get, "/healthz");
        auto res = again.try_request(req);
        return res && res->result_int() == 200u;
    }));
}

BOOST_FIXTURE_TEST_CASE(stop_closes_connections_and_listener, admin_fixture) {
    admin_client c(port);
    BOOST_TEST(c.request(http::verb::get, "/healthz").result_int() == 200u);
    server->stop();
    BOOST_TEST(c.closed_by_server());
    // The listener is closed: a new connection is refused.
    BOOST_TEST(eventually([&] {
        asio::io_context io;
        tcp::socket s(io);
        boost::system::error_code ec;
        s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
        return ec == asio::error::connection_refused;
    }));
}

BOOST_AUTO_TEST_CASE(bind_failure_is_reported) {
    asio::io_context context;
    admin_server first(context, host_port{"127.0.0.1", 0}, [] { return true; });
    const auto port = first.local_endpoint().port();
    try {
        admin_server second(context, host_port{"127.0.0.1", port}, [] { return true; });
        BOOST_FAIL("second bind on the same port succeeded");
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        BOOST_TEST(what.rfind("cannot listen on 127.0.0.1:" + std::to_string(port) + ": ", 0) == 0, what);
    }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
