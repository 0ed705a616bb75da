// Batches end to end: the real server, a real backend on port 0, real
// sockets; the 207 documents are checked entry by entry (PRODUCT.md §1, §2).
#include "proxy/core/metrics.hpp"
#include "tests/integration/batch_client.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

// The scripted legacy backend: behaviour chosen by path.
reply legacy(const request_type& req) {
    std::string_view t = req.target();
    reply r;
    auto starts = [&](std::string_view p) { return t.substr(0, p.size()) == p; };
    if (starts("/users/")) {
        if (req.method() == http::verb::delete_) {
            r.response.result(http::status::no_content);
        } else if (req.method() == http::verb::put) {
            r.response.result(http::status::created);
            r.response.set(http::field::location, std::string(t));
            r.response.set(http::field::content_type, "application/json");
            r.response.body() = req.body();
        } else {
            r.response.set(http::field::content_type, "application/json");
            r.response.body() = "{\"id\":" + std::string(t.substr(7)) + ",\"name\":\"Grace\"}";
        }
    } else if (starts("/items/")) {
        r.response.result(req.method() == http::verb::delete_ ? http::status::no_content : http::status::ok);
        r.delay = std::chrono::milliseconds(1);
    } else if (starts("/slow/")) {
        r.delay = std::chrono::milliseconds(std::stoi(std::string(t.substr(6))));
        r.response.body() = "slow";
    } else if (t == "/fast") {
        r.response.body() = "fast";
    } else if (t == "/reset") {
        r.act = misbehaviour::reset;
    } else if (t == "/garbage") {
        r.act = misbehaviour::garbage;
    } else if (t == "/silent") {
        r.act = misbehaviour::silent;
    } else if (t == "/upgrade") {
        r.act = misbehaviour::switch_protocols;
    } else if (t == "/interim") {
        r.act = misbehaviour::interim_then_ok;
        r.response.body() = "after interim";
    } else if (t == "/big") {
        r.response.body() = std::string(64 * 1024, 'b');
    } else if (t == "/fail") {
        r.response.result(http::status::internal_server_error);
    } else if (t == "/headers") {
        r.response.set(http::field::content_type, "text/plain");
        std::string all;
        for (const auto& f : req) all += std::string(f.name_string()) + ": " + std::string(f.value()) + "\n";
        r.response.body() = all;
    } else if (t == "/nested") {
        r.response.result(http::status::multi_status);
        r.response.set(http::field::content_type, "application/xml; charset=utf-8");
        r.response.body() =
            "<?xml version=\"1.0\"?><d:multistatus xmlns:d=\"DAV:\">"
            "<d:response><d:href>/nested/a</d:href><d:status>HTTP/1.1 200 OK</d:status></d:response>"
            "<d:response><d:href>/nested/b</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>"
            "</d:multistatus>";
    } else {
        r.response.result(http::status::not_found);
    }
    return r;
}

std::string batch_proxy_config(const std::string& backend, const std::string& backend_extra = "",
                         const std::string& top_extra = "") {
    return proxy_config(backend, backend_extra, top_extra);
}

bool xmllint_accepts(const std::string& xml) {
    // scripts/setup.sh installs it (libxml2-utils): its absence is a failure, not a skip.
    BOOST_REQUIRE_MESSAGE(std::system("command -v xmllint >/dev/null 2>&1") == 0,
                          "xmllint is not installed (scripts/setup.sh installs libxml2-utils)");
    char name[] = "/tmp/batchgate-207-XXXXXX";
    int fd = mkstemp(name);
    BOOST_REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(name) << xml;
    int rc = std::system((std::string("xmllint --noout ") + name).c_str());
    std::remove(name);
    return rc == 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(batch)

BOOST_AUTO_TEST_CASE(json_batch_with_per_item_statuses) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address()));
    client c(proxy.port());
    auto res = post_batch(c, R"({
      "headers": {"X-Tenant": "t1"},
      "requests": [
        {"id": "1", "method": "GET", "url": "/users/1"},
        {"id": "2", "method": "PUT", "url": "/users/2", "body": {"name": "Ada"}},
        {"id": "3", "method": "DELETE", "url": "/users/3"},
        {"id": "4", "method": "GET", "url": "/nowhere"},
        {"id": "5", "method": "GET", "url": "/fail"}
      ]})", "application/json");
    BOOST_TEST(res.result_int() == 207u);
    BOOST_TEST(res[http::field::content_type] == "application/xml; charset=utf-8");
    BOOST_TEST(res.chunked());
    BOOST_TEST(xmllint_accepts(res.body()));
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), 5u);
    BOOST_TEST(es["1"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["1"].href == "/users/1");
    BOOST_TEST(es["1"].body == "{\"id\":1,\"name\":\"Grace\"}");
    BOOST_TEST(es["2"].status == "HTTP/1.1 201 Created");
    BOOST_TEST(es["2"].location == "/users/2");
    BOOST_TEST(es["3"].status == "HTTP/1.1 204 No Content");
    BOOST_TEST(es["4"].status == "HTTP/1.1 404 Not Found");
    BOOST_TEST(es["5"].status == "HTTP/1.1 500 Internal Server Error");

    auto received = backend.received();
    auto put = std::find_if(received.begin(), received.end(), [](auto& r) { return r.method() == http::verb::put; });
    BOOST_REQUIRE(put != received.end());
    BOOST_TEST(put->body() == "{\"name\":\"Ada\"}");
    BOOST_TEST((*put)[http::field::content_type] == "application/json");
    BOOST_TEST((*put)["x-tenant"] == "t1");
    BOOST_TEST((*put)["via"] == "1.1 batchgate");
}

BOOST_AUTO_TEST_CASE(xml_batch_with_multi_href_request) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address()));
    client c(proxy.port());
    auto res = post_batch(c, R"(<?xml version="1.0" encoding="utf-8"?>
<batch xmlns="urn:batchgate:batch" xmlns:D="DAV:">
  <header name="Authorization">Bearer abc</header>
  <request id="1" method="GET"><D:href>/users/1</D:href></request>
  <request id="2" method="PUT">
    <D:href>/users/2</D:href>
    <header name="Content-Type">application/json</header>
    <body>{"name":"Ada"}</body>
  </request>
  <request method="DELETE">
    <D:href>/items/17</D:href><D:href>/items/18</D:href><D:href>/items/19</D:href>
  </request>
</batch>)", "application/xml");
    BOOST_TEST(res.result_int() == 207u);
    BOOST_TEST(xmllint_accepts(res.body()));
    auto es = entries_of(res.body());
    BOOST_REQUIRE_EQUAL(es.size(), 5u);
    int deleted = 0;
    for (auto& e : es)
        if (e.href.starts_with("/items/")) {
            BOOST_TEST(e.status == "HTTP/1.1 204 No Content");
            BOOST_TEST(e.id == "3");
            ++deleted;
        }
    BOOST_TEST(deleted == 3);
    for (auto& r : backend.received()) BOOST_TEST(r[http::field::authorization] == "Bearer abc");
}

BOOST_AUTO_TEST_CASE(items_run_concurrently) {
    // No item is answered before all twenty are at the backend.
    std::atomic<int> arrived{0};
    test_backend backend([&](const request_type& req) {
        auto r = legacy(req);
        ++arrived;
        r.hold = [&] { return arrived.load() >= 20; };
        return r;
    });
    running_proxy proxy(batch_proxy_config(backend.address()));
    client c(proxy.port());
    std::string body = R"({"requests":[)";
    for (int i = 0; i < 20; ++i) body += std::string(i ? "," : "") + R"({"method":"GET","url":"/items/)" + std::to_string(i) + "\"}";
    body += "]}";
    auto res = post_batch(c, body, "application/json");
    BOOST_TEST(entries_of(res.body()).size() == 20u);
    BOOST_TEST(backend.max_concurrent() == 20);  // all twenty at the backend at once
}

BOOST_AUTO_TEST_CASE(fast_entry_arrives_while_slow_one_runs) {
    // The slow item is held at the backend until the fast entry has reached
    // the client: it can only arrive if the 207 is streamed.
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        auto r = legacy(req);
        if (req.target() == "/held") r.hold = [&] { return release.load(); };
        return r;
    });
    running_proxy proxy(batch_proxy_config(backend.address()));
    client c(proxy.port());
    std::string body = R"({"requests":[{"id":"slow","method":"GET","url":"/held"},{"id":"fast","method":"GET","url":"/fast"}]})";
    c.send_raw("POST /batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body);
    std::string seen;
    char chunk[4096];
    while (seen.find("<B:id>fast</B:id>") == std::string::npos) seen.append(chunk, c.read_some(asio::buffer(chunk)));
    BOOST_TEST(seen.find("<B:id>slow</B:id>") == std::string::npos);
    BOOST_TEST(backend.in_flight() == 1);
    release = true;
    while (seen.find("0\r\n\r\n") == std::string::npos) seen.append(chunk, c.read_some(asio::buffer(chunk)));
    BOOST_TEST(seen.find("<B:id>slow</B:id>") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(max_in_flight_protects_the_backend) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address(), "    max_in_flight: 8\n    queue_timeout: 10s\n",
                                     "workers: 2\nbatch: {max_items: 5000, max_body_bytes: 1MiB}\n")
                            .replace(0, std::string("workers: 1\n").size(), ""));
    // One large batch, and four more from other connections at the same time:
    // the acceptor hands connections to the workers in turn, so both workers
    // fan out at once and the limit is shown exact across them.
    std::string body = "<batch xmlns=\"urn:batchgate:batch\" xmlns:D=\"DAV:\"><request method=\"DELETE\">";
    for (int i = 0; i < 2000; ++i) body += "<D:href>/items/" + std::to_string(i) + "</D:href>";
    body += "</request></batch>";
    std::string slow = R"({"requests":[)";
    for (int i = 0; i < 40; ++i) slow += std::string(i ? "," : "") + R"({"method":"GET","url":"/slow/20"})";
    slow += "]}";
    std::vector<std::future<std::size_t>> others;
    for (int k = 0; k < 4; ++k)
        others.push_back(std::async(std::launch::async, [&] {
            client c(proxy.port(), 30000);
            auto es = entries_of(post_batch(c, slow, "application/json").body());
            return static_cast<std::size_t>(std::count_if(es.begin(), es.end(), [](auto& e) { return e.status == "HTTP/1.1 200 OK"; }));
        }));
    client c(proxy.port(), 30000);
    auto res = post_batch(c, body, "application/xml");
    auto es = entries_of(res.body());
    BOOST_REQUIRE_EQUAL(es.size(), 2000u);
    std::size_t ok = std::count_if(es.begin(), es.end(), [](auto& e) { return e.status == "HTTP/1.1 204 No Content"; });
    BOOST_TEST(ok == 2000u);
    for (auto& f : others) BOOST_TEST(f.get() == 40u);
    BOOST_TEST(backend.requests() == 2000 + 4 * 40);
    BOOST_TEST(backend.max_concurrent() == 8);  // reached, never passed, with both workers sending
}

BOOST_AUTO_TEST_CASE(backend_failures_become_entries) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address(), "    timeout: 300ms\n    retries: {attempts: 1}\n"));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[
        {"id":"reset","method":"GET","url":"/reset"},
        {"id":"garbage","method":"GET","url":"/garbage"},
        {"id":"silent","method":"GET","url":"/silent"},
        {"id":"upgrade","method":"GET","url":"/upgrade"},
        {"id":"interim","method":"GET","url":"/interim"},
        {"id":"ok","method":"GET","url":"/users/1"}]})", "application/json");
    BOOST_TEST(xmllint_accepts(res.body()));
    auto es = by_id(entries_of(res.body()));
    BOOST_TEST(es["reset"].status == "HTTP/1.1 502 Bad Gateway");
    BOOST_TEST(es["reset"].error == "upstream-failure");
    BOOST_TEST(es["garbage"].status == "HTTP/1.1 502 Bad Gateway");
    BOOST_TEST(es["garbage"].error == "upstream-failure");
    BOOST_TEST(es["silent"].status == "HTTP/1.1 504 Gateway Timeout");
    BOOST_TEST(es["silent"].error == "upstream-timeout");
    BOOST_TEST(es["silent"].description == "backend b: no response within 300 ms");
    BOOST_TEST(es["upgrade"].status == "HTTP/1.1 502 Bad Gateway");
    BOOST_TEST(es["interim"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["interim"].body == "after interim");
    BOOST_TEST(es["ok"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(res.body().find("HTTP/1.1 1") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(refused_backend_and_oversized_answers) {
    test_backend backend(legacy);
    running_proxy proxy(
        "workers: 1\naccess_log: false\nlisten: [{address: 127.0.0.1:0}]\nbatch: {max_item_response_bytes: 1KiB}\n"
        "routes:\n  - {prefix: /down, backend: down}\n  - {prefix: /, backend: b}\n"
        "backends:\n  b: {endpoints: [" + backend.address() + "]}\n"
        "  down: {endpoints: [127.0.0.1:" + std::to_string(closed_port()) + "]}\n");
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[{"id":"down","method":"GET","url":"/down/1"},
                                             {"id":"big","method":"GET","url":"/big"}]})", "application/json");
    auto es = by_id(entries_of(res.body()));
    BOOST_TEST(es["down"].status == "HTTP/1.1 502 Bad Gateway");
    BOOST_TEST(es["down"].error == "upstream-failure");
    BOOST_TEST(es["big"].status == "HTTP/1.1 502 Bad Gateway");
    BOOST_TEST(es["big"].error == "response-too-large");
}

BOOST_AUTO_TEST_CASE(bad_items_fail_alone) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address()));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[
        {"id":"a","method":"GET","url":"http://evil.example/x"},
        {"id":"b","method":"GET","url":"/../etc/passwd"},
        {"id":"c","method":"G E T","url":"/users/1"},
        {"id":"d","method":"GET","url":"/users/1","headers":{"X-Bad":"a\r\nInjected: 1"}},
        {"id":"e","method":"GET","url":"/users/1","headers":{"Host":"evil"}},
        {"id":"f","method":"GET","url":"/users/1\r\nX: y"},
        {"id":"g","method":"GET","url":"/users/1"},
        {"id":"h","method":"CONNECT","url":"/users/1"}]})", "application/json");
    BOOST_TEST(xmllint_accepts(res.body()));
    auto es = by_id(entries_of(res.body()));
    for (auto id : {"a", "b", "f"}) {
        BOOST_TEST(es[id].status == "HTTP/1.1 400 Bad Request", id);
        BOOST_TEST(es[id].error == "bad-target", id);
    }
    for (auto id : {"c", "d", "e", "h"}) {
        BOOST_TEST(es[id].status == "HTTP/1.1 400 Bad Request", id);
        BOOST_TEST(es[id].error == "bad-request", id);
    }
    BOOST_TEST(es["f"].href == "/users/1%0D%0AX:%20y");
    BOOST_TEST(es["g"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(backend.requests() == 1);
}

BOOST_AUTO_TEST_CASE(no_route_is_a_404_entry) {
    test_backend backend(legacy);
    running_proxy proxy("workers: 1\naccess_log: false\nlisten: [{address: 127.0.0.1:0}]\n"
                        "routes: [{prefix: /users, backend: b}]\nbackends: {b: {endpoints: [" +
                        backend.address() + "]}}\n");
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[{"id":"1","method":"GET","url":"/items/1"}]})", "application/json");
    auto es = entries_of(res.body());
    BOOST_REQUIRE_EQUAL(es.size(), 1u);
    BOOST_TEST(es[0].status == "HTTP/1.1 404 Not Found");
    BOOST_TEST(es[0].error == "no-route");
}

BOOST_AUTO_TEST_CASE(depends_on_waits_and_fails_with_424) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address()));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[
        {"id":"put","method":"PUT","url":"/users/9","body":{"name":"x"}},
        {"id":"get","method":"GET","url":"/users/9","dependsOn":["put"]},
        {"id":"bad","method":"GET","url":"/fail"},
        {"id":"after-bad","method":"GET","url":"/users/1","dependsOn":["bad"]},
        {"id":"chain","method":"GET","url":"/users/1","dependsOn":["after-bad","get"]}]})", "application/json");
    auto list = entries_of(res.body());
    auto es = by_id(list);
    BOOST_TEST(es["get"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["after-bad"].status == "HTTP/1.1 424 Failed Dependency");
    BOOST_TEST(es["after-bad"].error == "failed-dependency");
    BOOST_TEST(es["chain"].status == "HTTP/1.1 424 Failed Dependency");
    // "get" ran after "put" finished: the backend saw PUT first.
    auto received = backend.received();
    std::vector<std::string> order;
    for (auto& r : received) order.push_back(std::string(r.method_string()) + " " + std::string(r.target()));
    auto put_at = std::find(order.begin(), order.end(), "PUT /users/9");
    auto get_at = std::find(order.begin(), order.end(), "GET /users/9");
    BOOST_TEST((put_at < get_at));
    BOOST_TEST(std::count(order.begin(), order.end(), "GET /users/1") == 0);
}

BOOST_AUTO_TEST_CASE(batch_deadline_gives_504_entries) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address(), "    timeout: 10s\n", "batch: {deadline: 300ms}\n"));
    client c(proxy.port());
    // Had the deadline not cut the slow item short, it would end 200 after 3 s.
    auto res = post_batch(c, R"({"requests":[{"id":"slow","method":"GET","url":"/slow/3000"},
                                             {"id":"fast","method":"GET","url":"/fast"}]})", "application/json");
    auto es = by_id(entries_of(res.body()));
    BOOST_TEST(es["slow"].status == "HTTP/1.1 504 Gateway Timeout");
    BOOST_TEST(es["slow"].error == "upstream-timeout");
    BOOST_TEST(es["slow"].description.find("deadline") != std::string::npos);
    BOOST_TEST(es["fast"].status == "HTTP/1.1 200 OK");
}

BOOST_AUTO_TEST_CASE(client_disconnect_cancels_outstanding_items) {
    std::atomic<int> started{0};
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        ++started;
        auto r = legacy(req);
        if (req.target() == "/held") r.hold = [&] { return release.load(); };
        return r;
    });
    running_proxy proxy(batch_proxy_config(backend.address(), "    max_in_flight: 2\n    queue_timeout: 30s\n"));
    {
        client c(proxy.port());
        std::string body = R"({"requests":[)";
        for (int i = 0; i < 10; ++i) body += std::string(i ? "," : "") + R"({"method":"GET","url":"/held"})";
        body += "]}";
        c.send_raw("POST /batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
        // Items did start: two at the backend, eight waiting for max_in_flight.
        BOOST_TEST_REQUIRE(eventually([&] { return backend.in_flight() == 2; }));
    }  // the client hangs up with 2 items in flight and 8 queued
    // The batch ends once batchgate has seen the client go: the two held items
    // are cancelled, not waited for.
    BOOST_TEST_REQUIRE(eventually([&] { return metrics_registry::global().batches_in_flight.load() == 0; }));
    release = true;
    // A later batch's item waits behind any of the eight still queued; by the
    // time it is answered, none of them may have reached the backend.
    client again(proxy.port());
    auto res = post_batch(again, R"({"requests":[{"method":"GET","url":"/fast"}]})", "application/json");
    BOOST_TEST(entries_of(res.body()).size() == 1u);
    BOOST_TEST(started.load() == 3);
}

BOOST_AUTO_TEST_CASE(max_queue_refuses_at_once) {
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        auto r = legacy(req);
        if (req.target() == "/users/9") r.hold = [&] { return release.load(); };
        return r;
    });
    // One in flight, one may wait: the third item is refused without waiting
    // for queue_timeout (10 s) or for the held one.
    running_proxy proxy(batch_proxy_config(backend.address(), "    max_in_flight: 1\n    max_queue: 1\n    queue_timeout: 10s\n"));
    const auto refused_before = metrics_registry::global().limit_breaches(limit_kind::in_flight_queue);
    client c(proxy.port());
    std::string body = R"({"requests":[{"id":"held","method":"GET","url":"/users/9"},)"
                       R"({"id":"waits","method":"GET","url":"/fast"},{"id":"refused","method":"GET","url":"/fast"}]})";
    c.send_raw("POST /batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body);
    std::string seen;
    char chunk[4096];
    while (seen.find("<B:id>refused</B:id>") == std::string::npos) seen.append(chunk, c.read_some(asio::buffer(chunk)));
    // Refused while the held item still had the slot (it cannot have been answered).
    BOOST_TEST(seen.find("<B:id>held</B:id>") == std::string::npos);
    BOOST_TEST(seen.find("<B:id>waits</B:id>") == std::string::npos);
    BOOST_TEST(metrics_registry::global().limit_breaches(limit_kind::in_flight_queue) == refused_before + 1);
    BOOST_TEST(eventually([&] { return backend.in_flight() == 1; }));
    release = true;
    while (seen.find("0\r\n\r\n") == std::string::npos) seen.append(chunk, c.read_some(asio::buffer(chunk)));
    auto es = by_id(entries_of(seen.substr(seen.find("\r\n\r\n") + 4)));
    BOOST_REQUIRE_EQUAL(es.size(), 3u);
    BOOST_TEST(es["refused"].status == "HTTP/1.1 503 Service Unavailable");
    BOOST_TEST(es["refused"].error == "overloaded");
    BOOST_TEST(es["refused"].description.find("max_queue") != std::string::npos, es["refused"].description);
    BOOST_TEST(es["waits"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["held"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(backend.requests() == 2);
}

BOOST_AUTO_TEST_CASE(a_queued_item_leaves_the_queue_when_its_client_goes) {
    std::atomic<bool> release{false};
    test_backend backend([&](const request_type& req) {
        auto r = legacy(req);
        if (req.target() == "/held") r.hold = [&] { return release.load(); };
        return r;
    });
    running_proxy proxy(batch_proxy_config(backend.address(), "    max_in_flight: 1\n    max_queue: 1\n    queue_timeout: 30s\n"));
    auto start = [&](client& c, const std::string& url) {
        const std::string body = R"({"requests":[{"method":"GET","url":")" + url + "\"}]}";
        c.send_raw("POST /batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
    };
    client holder(proxy.port());
    start(holder, "/held");
    BOOST_TEST_REQUIRE(eventually([&] { return backend.in_flight() == 1; }));
    {
        client leaving(proxy.port());
        start(leaving, "/gone");  // waits for the slot, filling the queue
        BOOST_TEST_REQUIRE(eventually([&] { return metrics_registry::global().batches_in_flight.load() == 2; }));
    }  // its client hangs up: the item leaves the queue at once, not after 30 s
    BOOST_TEST_REQUIRE(eventually([&] { return metrics_registry::global().batches_in_flight.load() == 1; }));
    // So the queue has room for the next one, which is answered once the slot frees.
    client next(proxy.port());
    auto pending = std::async(std::launch::async, [&] {
        return post_batch(next, R"({"requests":[{"id":"n","method":"GET","url":"/fast"}]})", "application/json");
    });
    BOOST_TEST_REQUIRE(eventually([&] { return metrics_registry::global().batches_in_flight.load() == 2; }));
    release = true;
    auto es = by_id(entries_of(pending.get().body()));
    BOOST_TEST(es["n"].status == "HTTP/1.1 200 OK");
    for (const auto& r : backend.received()) BOOST_TEST(r.target() != "/gone");
}

BOOST_AUTO_TEST_CASE(nested_multistatus_is_flattened) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address()));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[{"id":"n","method":"PROPFIND","url":"/nested"},
                                             {"id":"u","method":"GET","url":"/users/1"}]})", "application/json");
    BOOST_TEST(xmllint_accepts(res.body()));
    auto es = entries_of(res.body());
    BOOST_REQUIRE_EQUAL(es.size(), 3u);
    std::map<std::string, std::string> status_by_href;
    for (auto& e : es) status_by_href[e.href] = e.status;
    BOOST_TEST(status_by_href["/nested/a"] == "HTTP/1.1 200 OK");
    BOOST_TEST(status_by_href["/nested/b"] == "HTTP/1.1 404 Not Found");
    BOOST_TEST(status_by_href["/users/1"] == "HTTP/1.1 200 OK");
}

BOOST_AUTO_TEST_CASE(json_output_and_minimal) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address()));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[{"id":"1","method":"GET","url":"/users/1"},
                                             {"id":"2","method":"GET","url":"/nowhere"}]})",
                          "application/json", "application/json, application/xml;q=0.5");
    BOOST_TEST(res.result_int() == 207u);
    BOOST_TEST(res[http::field::content_type].starts_with("application/json"));
    auto doc = boost::json::parse(res.body());
    auto& responses = doc.at("responses").as_array();
    BOOST_REQUIRE_EQUAL(responses.size(), 2u);
    for (auto& r : responses) {
        if (r.at("id") == "1") {
            BOOST_TEST(r.at("status").to_number<int>() == 200);
            BOOST_TEST(r.at("href") == "/users/1");
            BOOST_TEST(r.at("body").at("name") == "Grace");
        } else {
            BOOST_TEST(r.at("status").to_number<int>() == 404);
        }
    }

    auto req = make_request(http::verb::post, "/batch", R"({"requests":[{"id":"1","method":"GET","url":"/users/1"}]})");
    req.set(http::field::content_type, "application/json");
    req.set("Prefer", "return=minimal");
    auto minimal = c.request(req);
    auto es = entries_of(minimal.body());
    BOOST_REQUIRE_EQUAL(es.size(), 1u);
    BOOST_TEST(es[0].status == "HTTP/1.1 200 OK");
    BOOST_TEST(minimal.body().find("<B:body") == std::string::npos);
    BOOST_TEST(minimal.body().find("<B:header") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(forward_headers_reach_items_unless_overridden) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address()));
    client c(proxy.port());
    auto req = make_request(http::verb::post, "/batch", R"({"requests":[
        {"id":"inherit","method":"GET","url":"/headers"},
        {"id":"own","method":"GET","url":"/headers","headers":{"Authorization":"Bearer mine"}}]})");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::authorization, "Bearer batch");
    req.set("X-Not-Forwarded", "no");
    auto res = c.request(req);
    auto es = by_id(entries_of(res.body()));
    BOOST_TEST(es["inherit"].body.find("authorization: Bearer batch") != std::string::npos);
    BOOST_TEST(es["inherit"].body.find("X-Not-Forwarded") == std::string::npos);
    BOOST_TEST(es["inherit"].body.find("x-not-forwarded") == std::string::npos);
    BOOST_TEST(es["own"].body.find("Bearer mine") != std::string::npos);
    BOOST_TEST(es["own"].body.find("Bearer batch") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(retries_follow_the_backend_policy) {
    std::mutex mutex;
    std::map<std::string, int> calls;
    test_backend backend([&](const request_type& req) {
        reply r;
        std::lock_guard lock(mutex);
        if (calls[std::string(req.target())]++ < 2) {
            r.response.result(http::status::service_unavailable);
            r.response.set(http::field::retry_after, "0");
        }
        return r;
    });
    running_proxy proxy(batch_proxy_config(backend.address(), "    retries: {attempts: 3, on: [503]}\n"));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[{"id":"g","method":"GET","url":"/flaky-get"},
                                             {"id":"p","method":"POST","url":"/flaky-post"}]})", "application/json");
    auto es = by_id(entries_of(res.body()));
    // GET is retried until it succeeds; POST is never retried.
    BOOST_TEST(es["g"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["p"].status == "HTTP/1.1 503 Service Unavailable");
    std::lock_guard lock(mutex);
    BOOST_TEST(calls["/flaky-get"] == 3);
    BOOST_TEST(calls["/flaky-post"] == 1);
}

BOOST_AUTO_TEST_CASE(whole_batch_errors) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address(), "", "batch: {max_items: 3, max_body_bytes: 2KiB}\n"));
    struct refusal {
        std::string body, type;
        unsigned status;
        std::string detail_part;
    };
    std::vector<refusal> cases = {
        {"{\"requests\": [\n  {\"id\": 1,, }]}", "application/json", 400, "\"line\":2"},
        {"{\"requests\": 5}", "application/json", 400, "requests"},
        {R"({"requests":[{"id":"1","method":"GET","url":"/a"},{"id":"1","method":"GET","url":"/b"}]})",
         "application/json", 400, "1"},
        {R"({"requests":[{"id":"1","method":"GET","url":"/a","dependsOn":["2"]},{"id":"2","method":"GET","url":"/b","dependsOn":["1"]}]})",
         "application/json", 400, "cycle"},
        {R"({"requests":[{"method":"GET","url":"/a"},{"method":"GET","url":"/a"},{"method":"GET","url":"/a"},{"method":"GET","url":"/a"}]})",
         "application/json", 413, "3"},
        {"<?xml version=\"1.0\"?>\n<!DOCTYPE batch [<!ENTITY x \"y\">]>\n<batch xmlns=\"urn:batchgate:batch\"/>",
         "application/xml", 400, "\"line\":"},
        {"<other/>", "text/xml", 400, "batch"},
        {"{}", "text/plain", 415, "Content-Type"},
        {std::string(3000, ' '), "application/json", 413, "max_body_bytes"},
    };
    for (const auto& k : cases) {
        client c(proxy.port());
        auto res = post_batch(c, k.body, k.type);
        BOOST_TEST(res.result_int() == k.status, k.body.substr(0, 60));
        BOOST_TEST(res[http::field::content_type] == "application/problem+json");
        BOOST_TEST(res.body().find(k.detail_part) != std::string::npos, res.body());
    }
    client c(proxy.port());
    auto get = c.request(make_request(http::verb::get, "/batch"));
    BOOST_TEST(get.result_int() == 405u);
    BOOST_TEST(get[http::field::allow] == "POST");
    BOOST_TEST(backend.requests() == 0);
}

BOOST_AUTO_TEST_CASE(empty_batch_gives_empty_multistatus) {
    test_backend backend(legacy);
    running_proxy proxy(batch_proxy_config(backend.address()));
    client c(proxy.port());
    auto res = post_batch(c, R"({"requests":[]})", "application/json");
    BOOST_TEST(res.result_int() == 207u);
    BOOST_TEST(entries_of(res.body()).empty());
    BOOST_TEST(res.body().find("<D:multistatus") != std::string::npos);
    BOOST_TEST(xmllint_accepts(res.body()));
    auto xml = post_batch(c, "<batch xmlns=\"urn:batchgate:batch\"/>", "application/xml");
    BOOST_TEST(xml.result_int() == 207u);
    BOOST_TEST(entries_of(xml.body()).empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
