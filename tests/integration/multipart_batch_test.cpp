// multipart/mixed and OData JSON batches end to end (PRODUCT.md §1.3, §1.4):
// real clients' bodies from tests/data posted to a batch path under a service
// root, the backend seeing the resolved paths and the exact bodies, changesets
// and atomicity groups answering 424 after a failure, and the Content-Type of
// every 207.
#include "tests/integration/batch_client.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"
#include "tests/test_data.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>


namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

// Answers every request with what it saw; a target with "fail" in it is a 500.
reply echo(const request_type& req) {
    reply r;
    const std::string target(req.target());
    if (target.find("fail") != std::string::npos) {
        r.response.result(http::status::internal_server_error);
        return r;
    }
    r.response.result(req.method() == http::verb::post ? http::status::created : http::status::ok);
    r.response.set(http::field::content_type, "text/plain");
    r.response.body() = std::string(req.method_string()) + " " + target + "\n" + req.body();
    return r;
}

std::string odata_config(const std::string& backend) {
    return proxy_config(backend, "", "batch: {path: /odata/$batch}\n");
}

http::response<http::string_body> post(client& c, const std::string& body, const std::string& content_type,
                                       const std::string& accept = {}, bool chunked = false) {
    auto req = make_request(http::verb::post, "/odata/$batch", body);
    req.set(http::field::content_type, content_type);
    if (!accept.empty()) req.set(http::field::accept, accept);
    if (chunked) {
        req.chunked(true);  // odatajs sends its batches chunked
    } else {
        req.prepare_payload();
    }
    return c.request(req);
}

// What the backend received, as "METHOD target" → body.
std::map<std::string, std::string> seen(const test_backend& backend) {
    std::map<std::string, std::string> out;
    for (const auto& r : backend.received()) out[std::string(r.method_string()) + " " + std::string(r.target())] = r.body();
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(multipart_batch_end_to_end)

BOOST_AUTO_TEST_CASE(odatajs_changeset_reaches_the_backend_resolved) {
    test_backend backend(echo);
    running_proxy proxy(odata_config(backend.address()));
    client c(proxy.port());
    auto res = post(c, read_data_file("odatajs_changeset.multipart"), read_data_file("odatajs_changeset.content-type"),
                    {}, true);
    BOOST_TEST(res.result_int() == 207u);
    BOOST_TEST(res[http::field::content_type] == "application/xml; charset=utf-8");
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), 3u);
    BOOST_TEST(es["1"].href == "/odata/People(1)");
    BOOST_TEST(es["1"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["2"].href == "/odata/People");
    BOOST_TEST(es["2"].status == "HTTP/1.1 201 Created");
    BOOST_TEST(es["3"].status == "HTTP/1.1 200 OK");
    const auto got = seen(backend);
    BOOST_REQUIRE_EQUAL(got.size(), 3u);
    BOOST_TEST(got.at("GET /odata/People(1)") == "");
    BOOST_TEST(got.at("POST /odata/People") == R"({"ID":2,"Name":"Alice"})");
    BOOST_TEST(got.at("PATCH /odata/People(1)") == R"({"Name":"Bob"})");
    for (const auto& r : backend.received()) {
        if (r.method() == http::verb::get) continue;
        BOOST_TEST(r[http::field::content_type] == "application/json");
        BOOST_TEST(r["odata-version"] == "4.0");
    }
}

BOOST_AUTO_TEST_CASE(a_failed_changeset_request_stops_the_rest) {
    test_backend backend(echo);
    running_proxy proxy(odata_config(backend.address()));
    client c(proxy.port());
    const std::string body =
        "--b1\r\nContent-Type: application/http\r\nContent-ID: <get>\r\n\r\nGET users(1) HTTP/1.1\r\n\r\n"
        "--b1\r\nContent-Type: multipart/mixed; boundary=cs1\r\n\r\n"
        "--cs1\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nPOST users HTTP/1.1\r\n\r\none\r\n"
        "--cs1\r\nContent-Type: application/http\r\nContent-ID: 2\r\n\r\nPATCH fail(2) HTTP/1.1\r\n\r\ntwo\r\n"
        "--cs1\r\nContent-Type: application/http\r\nContent-ID: 3\r\n\r\nDELETE users(3) HTTP/1.1\r\n\r\n"
        "--cs1--\r\n--b1--\r\n";
    auto res = post(c, body, "multipart/mixed; boundary=b1");
    BOOST_TEST(res.result_int() == 207u);
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), 4u);
    BOOST_TEST(es["get"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(es["1"].status == "HTTP/1.1 201 Created");
    BOOST_TEST(es["2"].status == "HTTP/1.1 500 Internal Server Error");
    BOOST_TEST(es["3"].status == "HTTP/1.1 424 Failed Dependency");
    BOOST_TEST(es["3"].error == "failed-dependency");
    BOOST_TEST(es["3"].href == "/odata/users(3)");
    const auto got = seen(backend);
    BOOST_TEST(got.size() == 3u);
    BOOST_TEST(got.count("DELETE /odata/users(3)") == 0u);  // never sent
    BOOST_TEST(got.at("POST /odata/users") == "one");
    BOOST_TEST(got.at("PATCH /odata/fail(2)") == "two");
}

BOOST_AUTO_TEST_CASE(google_batch_content_ids_are_the_ids) {
    test_backend backend(echo);
    running_proxy proxy(odata_config(backend.address()));
    client c(proxy.port());
    auto res = post(c, read_data_file("batchelor_google.multipart"), read_data_file("batchelor_google.content-type"),
                    "application/json");
    BOOST_TEST(res.result_int() == 207u);
    BOOST_TEST(res[http::field::content_type] == "application/json");
    const auto doc = boost::json::parse(res.body());
    const auto& responses = doc.at("responses").as_array();
    BOOST_REQUIRE_EQUAL(responses.size(), 2u);
    std::map<std::string, boost::json::object> by;
    for (const auto& r : responses) by[std::string(r.at("id").as_string())] = r.as_object();
    const auto& pony = by.at("item1:12930812@barnyard.example.com");
    BOOST_TEST(pony.at("status").as_int64() == 200);
    BOOST_TEST(pony.at("href").as_string() == "/farm/v1/animals/pony");
    const auto& sheep = by.at("item2:12930812@barnyard.example.com");
    BOOST_TEST(sheep.at("status").as_int64() == 201);
    BOOST_TEST(seen(backend).at("POST /farm/v1/animals") == R"({"name":"sheep","sound":"baa"})");
}

BOOST_AUTO_TEST_CASE(odata_json_relative_urls_and_an_atomicity_group) {
    test_backend backend(echo);
    running_proxy proxy(odata_config(backend.address()));
    client c(proxy.port());
    // @odata/client's own body first: lower-case methods, relative URLs.
    auto res = post(c, read_data_file("odata_client_atomicity.json"), "application/json");
    BOOST_TEST(res.result_int() == 207u);
    BOOST_TEST(res[http::field::content_type] == "application/xml; charset=utf-8");
    auto es = by_id(entries_of(res.body()));
    BOOST_REQUIRE_EQUAL(es.size(), 3u);
    BOOST_TEST(es["r1"].href == "/odata/People(1)");
    BOOST_TEST(es["r2"].status == "HTTP/1.1 201 Created");
    BOOST_TEST(es["r3"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(seen(backend).at("PATCH /odata/People(1)") == R"({"Name":"Bob"})");

    // A group whose first request fails; a request that dependsOn the group.
    auto failing = post(c, R"J({"requests":[
        {"id":"a","method":"post","url":"fail","atomicityGroup":"g"},
        {"id":"b","method":"post","url":"People","atomicityGroup":"g","body":"x"},
        {"id":"c","method":"get","url":"./People(1)","dependsOn":["g"]},
        {"id":"d","method":"get","url":"http://batchgate.test/odata/People(4)"},
        {"id":"e","method":"get","url":"http://elsewhere.test/odata/People(4)"},
        {"id":"f","method":"get","url":"../../x"}]})J", "application/json");
    auto fe = by_id(entries_of(failing.body()));
    BOOST_REQUIRE_EQUAL(fe.size(), 6u);
    BOOST_TEST(fe["a"].status == "HTTP/1.1 500 Internal Server Error");
    BOOST_TEST(fe["b"].status == "HTTP/1.1 424 Failed Dependency");
    BOOST_TEST(fe["c"].status == "HTTP/1.1 424 Failed Dependency");
    BOOST_TEST(fe["c"].href == "/odata/People(1)");
    BOOST_TEST(fe["d"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(fe["d"].href == "/odata/People(4)");
    BOOST_TEST(fe["e"].error == "bad-target");
    BOOST_TEST(fe["e"].description.find("another server") != std::string::npos);
    BOOST_TEST(fe["f"].error == "bad-target");
    BOOST_TEST(fe["f"].href == "../../x");
}

BOOST_AUTO_TEST_CASE(relative_targets_in_xml_and_dollar_references) {
    test_backend backend(echo);
    running_proxy proxy(odata_config(backend.address()));
    client c(proxy.port());
    auto res = post(c,
                    "<batch xmlns=\"urn:batchgate:batch\" xmlns:D=\"DAV:\">"
                    "<request id=\"1\" method=\"DELETE\"><D:href>Items(1)</D:href><D:href>../Items(2)</D:href></request>"
                    "<request id=\"2\" method=\"GET\"><D:href>$1/Orders</D:href></request></batch>",
                    "application/xml");
    BOOST_TEST(res.result_int() == 207u);
    auto es = entries_of(res.body());
    BOOST_REQUIRE_EQUAL(es.size(), 3u);
    std::map<std::string, entry> by_href;
    for (auto& e : es) by_href[e.href] = e;
    BOOST_TEST(by_href["/odata/Items(1)"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(by_href["/Items(2)"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(by_href["/odata/$1/Orders"].error == "bad-request");
    BOOST_TEST(by_href["/odata/$1/Orders"].description.find("does not resolve $-references") != std::string::npos);
    BOOST_TEST(backend.requests() == 2);
}

BOOST_AUTO_TEST_CASE(nested_207_and_rewrite_prefix_work_on_resolved_targets) {
    // A relative target routed through rewrite_prefix to a backend that
    // answers with its own 207: the flattened entries name the client's paths.
    test_backend backend([](const request_type& req) {
        reply r;
        r.response.result(http::status::multi_status);
        r.response.set(http::field::content_type, "application/xml; charset=utf-8");
        r.response.body() = "<?xml version=\"1.0\"?><d:multistatus xmlns:d=\"DAV:\">"
                            "<d:response><d:href>/legacy/a</d:href><d:status>HTTP/1.1 200 OK</d:status></d:response>"
                            "<d:response><d:href>/legacy/b</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>"
                            "</d:multistatus>";
        r.response.set("X-Seen", std::string(req.target()));
        return r;
    });
    running_proxy proxy("workers: 1\naccess_log: false\nlisten: [{address: 127.0.0.1:0}]\n"
                        "batch: {path: /odata/$batch}\n"
                        "routes: [{prefix: /odata/reports, backend: b, rewrite_prefix: /legacy}]\n"
                        "backends: {b: {endpoints: [" + backend.address() + "]}}\n");
    client c(proxy.port());
    auto res = post(c, "--b1\r\nContent-Type: application/http\r\nContent-ID: r\r\n\r\nGET reports/all HTTP/1.1\r\n\r\n--b1--",
                    "multipart/mixed; boundary=b1");
    BOOST_TEST(res.result_int() == 207u);
    auto es = entries_of(res.body());
    BOOST_REQUIRE_EQUAL(es.size(), 2u);
    std::map<std::string, entry> by_href;
    for (auto& e : es) by_href[e.href] = e;
    BOOST_TEST(by_href["/odata/reports/a"].status == "HTTP/1.1 200 OK");
    BOOST_TEST(by_href["/odata/reports/a"].id == "r");
    BOOST_TEST(by_href["/odata/reports/b"].status == "HTTP/1.1 404 Not Found");
    BOOST_REQUIRE_EQUAL(backend.received().size(), 1u);
    BOOST_TEST(backend.received()[0].target() == "/legacy/all");
}

BOOST_AUTO_TEST_CASE(whole_batch_multipart_errors) {
    test_backend backend(echo);
    running_proxy proxy(odata_config(backend.address()));
    struct refusal {
        std::string body, type;
        unsigned status;
        std::string detail_part;
    };
    const std::vector<refusal> cases = {
        {"--b1--", "multipart/mixed", 400, "no boundary parameter"},
        {"--b1--", "multipart/mixed; boundary=" + std::string(71, 'x'), 400, "1 to 70"},
        {"--b1\r\nContent-Type: application/http\r\n\r\nGET /a\r\n", "multipart/mixed; boundary=b1", 400,
         "without its closing delimiter"},
        {"--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1--", "multipart/mixed; boundary=b1", 400,
         "\"line\":2"},
        {"--b1\r\nContent-Type: application/http\r\n\r\nGET\r\n--b1--", "multipart/mixed; boundary=b1", 400,
         "malformed request line"},
        {read_data_file("ojs_missing_delimiter.multipart"), read_data_file("ojs_missing_delimiter.content-type"), 400,
         "text after the closing delimiter"},
    };
    for (const auto& k : cases) {
        client c(proxy.port());
        auto res = post(c, k.body, k.type);
        BOOST_TEST(res.result_int() == k.status, k.body.substr(0, 60));
        BOOST_TEST(res[http::field::content_type] == "application/problem+json");
        BOOST_TEST(res.body().find(k.detail_part) != std::string::npos, res.body());
    }
    BOOST_TEST(backend.requests() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
