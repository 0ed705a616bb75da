#include "proxy/batch/multistatus.hpp"
#include "tests/test_data.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <expat.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <unistd.h>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

item_result result(std::string href, unsigned status, std::string id = {}) {
    item_result r;
    r.href = std::move(href);
    r.status = status;
    r.id = std::move(id);
    return r;
}

// Well-formedness as a strict XML 1.0 parser sees it.
bool well_formed(const std::string& doc) {
    XML_Parser p = XML_ParserCreateNS(nullptr, ' ');
    const bool ok = XML_Parse(p, doc.data(), static_cast<int>(doc.size()), XML_TRUE) == XML_STATUS_OK;
    XML_ParserFree(p);
    return ok;
}

// A whole document around the entries, checked for well-formedness.
std::string xml_doc(const std::vector<item_result>& results, bool minimal = false) {
    multistatus_writer w(multistatus_format::xml, minimal);
    std::string doc = w.begin();
    for (const auto& r : results) doc += w.entry(r);
    doc += w.end();
    BOOST_TEST(well_formed(doc), doc);
    return doc;
}

std::string xml_entry(const item_result& r, bool minimal = false) {
    xml_doc({r}, minimal);
    return multistatus_writer(multistatus_format::xml, minimal).entry(r);
}

// A JSON document around the entries; it must parse.
boost::json::value json_doc(const std::vector<item_result>& results, bool minimal = false) {
    multistatus_writer w(multistatus_format::json, minimal);
    std::string doc = w.begin();
    for (const auto& r : results) doc += w.entry(r);
    doc += w.end();
    boost::json::error_code ec;
    auto v = boost::json::parse(doc, ec);
    BOOST_TEST_REQUIRE(!ec, ec.message() << ": " << doc);
    return v;
}

boost::json::object json_entry(const item_result& r, bool minimal = false) {
    return json_doc({r}, minimal).as_object().at("responses").as_array().at(0).as_object();
}

std::string base64(std::string_view s) {
    std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
    out.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                                        reinterpret_cast<const unsigned char*>(s.data()),
                                                        static_cast<int>(s.size()))));
    return out;
}

bool contains(const std::string& hay, std::string_view needle) { return hay.find(needle) != std::string::npos; }

const std::vector<std::pair<item_condition, std::string>> all_conditions = {
    {item_condition::no_route, "no-route"},
    {item_condition::bad_target, "bad-target"},
    {item_condition::bad_request, "bad-request"},
    {item_condition::upstream_failure, "upstream-failure"},
    {item_condition::response_too_large, "response-too-large"},
    {item_condition::upstream_timeout, "upstream-timeout"},
    {item_condition::overloaded, "overloaded"},
    {item_condition::failed_dependency, "failed-dependency"},
};

// The three entries of the PRODUCT.md §2 example.
std::vector<item_result> product_example() {
    auto a = result("/items/18", 204);
    auto b = result("/users/1", 200, "1");
    b.headers = {{"Content-Type", "application/json"}};
    b.body = R"({"id":1,"name":"Grace"})";
    auto c = result("/users/9", 504, "7");
    c.condition = item_condition::upstream_timeout;
    c.description = "backend users: no response within 5000 ms";
    return {a, b, c};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(multistatus)

BOOST_AUTO_TEST_CASE(reason_phrases) {
    BOOST_TEST(reason_phrase(200) == "OK");
    BOOST_TEST(reason_phrase(201) == "Created");
    BOOST_TEST(reason_phrase(204) == "No Content");
    BOOST_TEST(reason_phrase(207) == "Multi-Status");
    BOOST_TEST(reason_phrase(404) == "Not Found");
    BOOST_TEST(reason_phrase(424) == "Failed Dependency");
    BOOST_TEST(reason_phrase(429) == "Too Many Requests");
    BOOST_TEST(reason_phrase(502) == "Bad Gateway");
    BOOST_TEST(reason_phrase(503) == "Service Unavailable");
    BOOST_TEST(reason_phrase(504) == "Gateway Timeout");
    BOOST_TEST(reason_phrase(0) == "Unknown");
    BOOST_TEST(reason_phrase(299) == "Unknown");
    BOOST_TEST(reason_phrase(999) == "Unknown");
}

BOOST_AUTO_TEST_CASE(framing) {
    multistatus_writer xml(multistatus_format::xml, false);
    BOOST_TEST(xml.content_type() == "application/xml; charset=utf-8");  // unquoted: .NET reads only this form
    BOOST_TEST(xml.begin() ==
               "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
               "<D:multistatus xmlns:D=\"DAV:\" xmlns:B=\"urn:batchgate:batch\">\n");
    BOOST_TEST(xml.end() == "</D:multistatus>\n");
    BOOST_TEST(well_formed(xml.begin() + xml.end()));  // zero items: an empty multistatus

    multistatus_writer json(multistatus_format::json, false);
    BOOST_TEST(json.content_type() == "application/json");
    BOOST_TEST(json.begin() == R"({"responses":[)");
    BOOST_TEST(json.end() == "]}");
    BOOST_TEST(boost::json::parse(json.begin() + json.end()).at("responses").as_array().empty());
}

BOOST_AUTO_TEST_CASE(xml_golden_product_example) {
    BOOST_TEST(xml_doc(product_example()) == read_data_file("multistatus_example.xml"));
}

BOOST_AUTO_TEST_CASE(json_golden_product_example) {
    multistatus_writer w(multistatus_format::json, false);
    std::string doc = w.begin();
    for (const auto& r : product_example()) doc += w.entry(r);
    doc += w.end();
    auto golden = read_data_file("multistatus_example.json");
    while (!golden.empty() && golden.back() == '\n') golden.pop_back();
    BOOST_TEST(doc == golden);
}

BOOST_AUTO_TEST_CASE(json_entries_are_comma_separated) {
    multistatus_writer w(multistatus_format::json, false);
    BOOST_TEST(w.entry(result("/a", 204)) == R"({"href":"/a","status":204})");
    BOOST_TEST(w.entry(result("/b", 204, "x")) == R"(,{"id":"x","href":"/b","status":204})");
}

BOOST_AUTO_TEST_CASE(xml_escaping_of_markup_characters) {
    auto r = result("/q", 200, R"(a<b>&"c'd)");
    r.headers = {{R"(X-"q'<&>)", R"(v<&>"')"}};
    r.body = R"(<a href="x">&amp; 'q' ]]></a>)";
    r.description = R"(d<&>"')";
    const auto e = xml_entry(r);
    BOOST_TEST(contains(e, R"(<B:id>a&lt;b&gt;&amp;"c'd</B:id>)"), e);
    BOOST_TEST(contains(e, R"(<B:header name="X-&quot;q&apos;&lt;&amp;&gt;">v&lt;&amp;&gt;"'</B:header>)"), e);
    BOOST_TEST(contains(e, R"(<B:body>&lt;a href="x"&gt;&amp;amp; 'q' ]]&gt;&lt;/a&gt;</B:body>)"), e);
    BOOST_TEST(contains(e, R"(<D:responsedescription>d&lt;&amp;&gt;"'</D:responsedescription>)"), e);
}

BOOST_AUTO_TEST_CASE(xml_whitespace_survives) {
    auto r = result("/w", 200);
    r.body = "line1\r\nline2\n\tend\r";
    const auto e = xml_entry(r);
    BOOST_TEST(contains(e, "<B:body>line1&#13;\nline2\n\tend&#13;</B:body>"), e);
    auto parsed = parse_nested_multistatus(xml_doc({r}));
    BOOST_TEST_REQUIRE(parsed.has_value());
    BOOST_TEST((*parsed)[0].body == r.body);
}

BOOST_AUTO_TEST_CASE(xml_control_characters) {
    auto r = result("/c", 200, std::string("id\x01x", 4));
    r.headers = {{"X-Ctl", std::string("a\x1b[0mb")}, {"X-Tab", "a\tb"}};
    r.body = std::string("text\0with nul", 13);
    r.description = std::string("bad\x00\x08 text", 10);
    const auto e = xml_entry(r);
    BOOST_TEST(contains(e, "<B:id>id\xEF\xBF\xBDx</B:id>"), e);  // lossy: U+FFFD
    BOOST_TEST(contains(e, "<B:header name=\"X-Ctl\" encoding=\"base64\">" + base64(r.headers[0].second) +
                               "</B:header>"),
               e);
    BOOST_TEST(contains(e, "<B:header name=\"X-Tab\">a\tb</B:header>"), e);
    BOOST_TEST(contains(e, "<B:body encoding=\"base64\">" + base64(r.body) + "</B:body>"), e);
    BOOST_TEST(contains(e, "<D:responsedescription>bad\xEF\xBF\xBD\xEF\xBF\xBD text</D:responsedescription>"), e);
}

BOOST_AUTO_TEST_CASE(non_text_bodies_become_base64) {
    const std::vector<std::string> binary = {
        "\xff\xfe\x00\x01",          // not UTF-8
        "caf\xe9",                   // Latin-1
        "\xC0\xAF",                  // overlong '/'
        "\xED\xA0\x80",              // UTF-16 surrogate
        "\xF4\x90\x80\x80",          // above U+10FFFF
        "ok\xEF\xBF\xBE",            // U+FFFE
        "ok\xEF\xBF\xBF",            // U+FFFF
        "\xE2\x82",                  // truncated
        std::string("\x7f\x0b", 2),  // vertical tab
    };
    for (const auto& body : binary) {
        auto r = result("/bin", 200);
        r.body = body;
        const auto e = xml_entry(r);
        BOOST_TEST(contains(e, "<B:body encoding=\"base64\">" + base64(body) + "</B:body>"), e);
        BOOST_TEST(json_entry(r).at("body").as_object().at("base64").as_string() == base64(body));
    }
    auto r = result("/txt", 200);
    r.body = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \x7f \xEF\xBF\xBD";  // é € 😀 DEL U+FFFD
    BOOST_TEST(contains(xml_entry(r), "<B:body>" + r.body + "</B:body>"));
    BOOST_TEST(json_entry(r).at("body").as_string() == r.body);
}

BOOST_AUTO_TEST_CASE(href_uri_escaping) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"/a b", "/a%20b"},
        {"/x\r\ny", "/x%0D%0Ay"},
        {std::string("/n\0l", 4), "/n%00l"},
        {"/caf\xC3\xA9", "/caf%C3%A9"},
        {"/q?a=1&b=2", "/q?a=1&amp;b=2"},
        {"/p\"<>\\^`{|}#f[]", "/p%22%3C%3E%5C%5E%60%7B%7C%7D%23f%5B%5D"},
        {"/ok-._~!$'()*+,;=:@/?", "/ok-._~!$'()*+,;=:@/?"},
        {"/enc%2Fx%2f", "/enc%2Fx%2f"},
        {"/bad%zz%4", "/bad%25zz%254"},
    };
    for (const auto& [in, out] : cases) {
        const auto e = xml_entry(result(in, 204));
        BOOST_TEST(contains(e, "<D:href>" + out + "</D:href>"), e);
    }
    BOOST_TEST(json_entry(result("/a b?x=\"1\"&y", 204)).at("href").as_string() == "/a%20b?x=%221%22&y");
}

BOOST_AUTO_TEST_CASE(location_for_201_and_3xx_only) {
    for (unsigned status : {201u, 301u, 302u, 303u, 307u, 308u}) {
        auto r = result("/l", status);
        r.location = "/new place#frag#x";
        const auto e = xml_entry(r);
        BOOST_TEST(contains(e, "<D:location><D:href>/new%20place#frag%23x</D:href></D:location>"), e);
        BOOST_TEST(json_entry(r).at("location").as_string() == "/new%20place#frag%23x");
    }
    for (unsigned status : {200u, 202u, 204u, 404u, 500u}) {
        auto r = result("/l", status);
        r.location = "/elsewhere";
        BOOST_TEST(!contains(xml_entry(r), "D:location"));
        BOOST_TEST(!json_entry(r).contains("location"));
    }
    BOOST_TEST(!contains(xml_entry(result("/l", 201)), "D:location"));  // none set
}

BOOST_AUTO_TEST_CASE(every_condition) {
    for (const auto& [condition, name] : all_conditions) {
        auto r = result("/e", 502, "1");
        r.condition = condition;
        r.description = "why: " + name;
        const auto e = xml_entry(r);
        BOOST_TEST(contains(e, "<D:error><B:" + name + "/></D:error>\n"
                                   "    <D:responsedescription>why: " + name + "</D:responsedescription>\n"),
                   e);
        BOOST_TEST(condition_name(condition) == name);
        const auto j = json_entry(r);
        BOOST_TEST(j.at("error").at("code").as_string() == name);
        BOOST_TEST(j.at("error").at("message").as_string() == "why: " + name);
    }
    BOOST_TEST(condition_name(item_condition::none).empty());
    const auto plain = xml_entry(result("/ok", 200));
    BOOST_TEST(!contains(plain, "D:error"));
    BOOST_TEST(!contains(plain, "D:responsedescription"));
    BOOST_TEST(!json_entry(result("/ok", 200)).contains("error"));
}

BOOST_AUTO_TEST_CASE(responsedescription_without_condition) {
    auto r = result("/d", 423);
    r.description = "locked by someone";
    const auto e = xml_entry(r);
    BOOST_TEST(contains(e, "<D:responsedescription>locked by someone</D:responsedescription>"), e);
    BOOST_TEST(!contains(e, "D:error"));
    const auto j = json_entry(r);
    BOOST_TEST(j.at("description").as_string() == "locked by someone");
    BOOST_TEST(!j.contains("error"));
    auto bare = result("/d", 504);
    bare.condition = item_condition::upstream_timeout;  // no description: message falls back to the reason
    BOOST_TEST(json_entry(bare).at("error").at("message").as_string() == "Gateway Timeout");
}

BOOST_AUTO_TEST_CASE(minimal_omits_headers_and_bodies_only) {
    auto r = result("/m", 201, "9");
    r.headers = {{"Content-Type", "text/plain"}};
    r.body = "created";
    r.location = "/m/1";
    r.condition = item_condition::none;
    r.description = "made";
    const auto e = xml_entry(r, true);
    BOOST_TEST(e ==
               "  <D:response>\n"
               "    <D:href>/m</D:href>\n"
               "    <D:status>HTTP/1.1 201 Created</D:status>\n"
               "    <B:id>9</B:id>\n"
               "    <D:location><D:href>/m/1</D:href></D:location>\n"
               "    <D:responsedescription>made</D:responsedescription>\n"
               "  </D:response>\n");
    const auto full = xml_entry(r, false);
    BOOST_TEST(contains(full, "<B:header name=\"Content-Type\">text/plain</B:header>"));
    BOOST_TEST(contains(full, "<B:body>created</B:body>"));
    const auto j = json_entry(r, true);
    BOOST_TEST(!j.contains("headers"));
    BOOST_TEST(!j.contains("body"));
    BOOST_TEST(j.at("location").as_string() == "/m/1");
    BOOST_TEST(j.at("id").as_string() == "9");
    auto failed = result("/f", 424);
    failed.condition = item_condition::failed_dependency;
    failed.body = "x";
    BOOST_TEST(contains(xml_entry(failed, true), "<D:error><B:failed-dependency/></D:error>"));
    BOOST_TEST(json_entry(failed, true).at("error").at("code").as_string() == "failed-dependency");
}

BOOST_AUTO_TEST_CASE(interim_status_is_never_written) {
    for (unsigned status : {100u, 101u, 103u, 199u, 0u, 1000u}) {
        auto r = result("/i", status, "1");
        r.headers = {{"Link", "</style.css>; rel=preload"}};
        r.body = "x";
        r.location = "/y";
        const auto e = xml_entry(r);
        BOOST_TEST(contains(e, "<D:status>HTTP/1.1 502 Bad Gateway</D:status>"), e);
        BOOST_TEST(contains(e, "<D:error><B:upstream-failure/></D:error>"), e);
        BOOST_TEST(contains(e, "<D:responsedescription>backend gave no final answer (status " +
                                   std::to_string(status) + ")</D:responsedescription>"),
                   e);
        BOOST_TEST(!contains(e, "B:header"));
        BOOST_TEST(!contains(e, "B:body"));
        BOOST_TEST(!contains(e, "HTTP/1.1 1"));
        const auto j = json_entry(r);
        BOOST_TEST(j.at("status").as_int64() == 502);
        BOOST_TEST(j.at("error").at("code").as_string() == "upstream-failure");
        BOOST_TEST(!j.contains("body"));
    }
    auto r = result("/i", 101);
    r.condition = item_condition::upstream_timeout;  // an existing condition and text are kept
    r.description = "given";
    const auto e = xml_entry(r);
    BOOST_TEST(contains(e, "<D:error><B:upstream-timeout/></D:error>\n    <D:responsedescription>given<"), e);
}

BOOST_AUTO_TEST_CASE(status_line_is_always_http_1_1) {
    for (unsigned status : {200u, 207u, 299u, 418u, 599u, 799u}) {
        const auto e = xml_entry(result("/s", status));
        BOOST_TEST(contains(e, "<D:status>HTTP/1.1 " + std::to_string(status) + " " +
                                   std::string(reason_phrase(status)) + "</D:status>"),
                   e);
    }
}

BOOST_AUTO_TEST_CASE(json_bodies) {
    auto r = result("/j", 200, "1");
    r.headers = {{"Content-Type", "application/json; charset=utf-8"}};
    r.body = " {\"n\":12345678901234567890123, \"f\":1.0, \"s\":\"\\u00e9\"}\n";
    auto e = multistatus_writer(multistatus_format::json, false).entry(r);
    // Embedded verbatim (trimmed): number spelling survives.
    BOOST_TEST(contains(e, R"("body":{"n":12345678901234567890123, "f":1.0, "s":"\u00e9"})"), e);
    BOOST_TEST(json_entry(r).at("body").at("s").as_string() == "\xC3\xA9");

    r.headers = {{"content-type", "application/problem+json"}};
    r.body = R"([1,2,{"a":null}])";
    BOOST_TEST(json_entry(r).at("body").as_array().size() == 3u);

    r.headers = {{"Content-Type", "application/json"}};
    r.body = "{not json";  // claims JSON, is not: a string
    BOOST_TEST(json_entry(r).at("body").as_string() == "{not json");
    r.body = "{\"a\":1} trailing";
    BOOST_TEST(json_entry(r).at("body").as_string() == "{\"a\":1} trailing");

    r.headers = {{"Content-Type", "text/plain"}};
    r.body = "{\"a\":1}";  // looks like JSON, is not labelled so: a string
    BOOST_TEST(json_entry(r).at("body").as_string() == "{\"a\":1}");
    r.body = std::string("tab\tquote\" back\\ nl\n cr\r", 24);
    BOOST_TEST(json_entry(r).at("body").as_string() == r.body);

    r.headers = {{"Content-Type", "application/octet-stream"}};
    r.body = std::string("\x89PNG\r\n\x1a\n\0", 9);
    BOOST_TEST(json_entry(r).at("body").at("base64").as_string() == base64(r.body));

    r.body.clear();  // empty body: no "body"
    BOOST_TEST(!json_entry(r).contains("body"));
    BOOST_TEST(!contains(xml_entry(r), "B:body"));
}

BOOST_AUTO_TEST_CASE(json_headers) {
    auto r = result("/h", 200);
    r.headers = {{"Content-Type", "text/plain"}, {"Vary", "Accept"},       {"Set-Cookie", "a=1; Path=/"},
                 {"vary", "Origin"},             {"set-cookie", "b=2"},    {"X-Latin", "caf\xe9"},
                 {"X-Ctl", "a\x01"}};
    const auto j = json_entry(r);
    const auto& h = j.at("headers").as_object();
    BOOST_TEST(h.size() == 5u);
    BOOST_TEST(h.at("content-type").as_string() == "text/plain");
    BOOST_TEST(h.at("vary").as_string() == "Accept, Origin");
    BOOST_TEST(h.at("set-cookie").as_array().size() == 2u);
    BOOST_TEST(h.at("set-cookie").as_array()[1].as_string() == "b=2");
    BOOST_TEST(h.at("x-latin").as_string() == "caf\xEF\xBF\xBD");  // invalid UTF-8: U+FFFD
    BOOST_TEST(h.at("x-ctl").as_string() == "a\x01");               // JSON can carry it
    auto one = result("/h", 200);
    one.headers = {{"Set-Cookie", "only=1"}};
    BOOST_TEST(json_entry(one).at("headers").at("set-cookie").as_array().size() == 1u);
    BOOST_TEST(!json_entry(result("/h", 204)).contains("headers"));
}

BOOST_AUTO_TEST_CASE(json_shape_of_a_failure) {
    auto r = result("/users/9", 504);
    r.condition = item_condition::upstream_timeout;
    r.description = "backend users: no response within 5000 ms";
    BOOST_TEST(multistatus_writer(multistatus_format::json, false).entry(r) ==
               R"({"href":"/users/9","status":504,"error":{"code":"upstream-timeout",)"
               R"("message":"backend users: no response within 5000 ms"}})");
    r.id = std::string("\xff\"id", 4);  // invalid UTF-8 and a quote in an id
    BOOST_TEST(json_entry(r).at("id").as_string() == "\xEF\xBF\xBD\"id");
}

// ---------------------------------------------------------------- nested 207

BOOST_AUTO_TEST_CASE(nested_round_trip_of_our_own_entries) {
    auto a = result("/a", 201, "1");
    a.headers = {{"Content-Type", "text/plain"}, {"X-Bin", std::string("\x00\xff", 2)}};
    a.body = "made\r\n<ok>";
    a.location = "/a/1";
    auto b = result("/b", 504, "2");
    b.condition = item_condition::upstream_timeout;
    b.description = "slow";
    auto c = result("/c", 200);
    c.body = std::string("\x01\x02\xff", 3);
    const auto parsed = parse_nested_multistatus(xml_doc({a, b, c}));
    BOOST_TEST_REQUIRE(parsed.has_value());
    BOOST_TEST_REQUIRE(parsed->size() == 3u);
    const auto& pa = (*parsed)[0];
    BOOST_TEST(pa.href == "/a");
    BOOST_TEST(pa.id == "1");
    BOOST_TEST(pa.status == 201u);
    BOOST_TEST((pa.headers == a.headers));
    BOOST_TEST(pa.body == a.body);
    BOOST_TEST(pa.location.value_or("") == "/a/1");
    BOOST_TEST((pa.condition == item_condition::none));
    const auto& pb = (*parsed)[1];
    BOOST_TEST((pb.condition == item_condition::upstream_timeout));
    BOOST_TEST(pb.description == "slow");
    BOOST_TEST(pb.status == 504u);
    BOOST_TEST((*parsed)[2].body == c.body);
    BOOST_TEST((*parsed)[2].id.empty());
}

BOOST_AUTO_TEST_CASE(nested_typical_webdav_multistatus) {
    // A DELETE on a collection (RFC 4918 §9.6.2 style): per-resource statuses.
    const std::string doc = R"(<?xml version="1.0" encoding="utf-8" ?>
<d:multistatus xmlns:d="DAV:">
  <d:response>
    <d:href>http://www.example.com/container/resource3</d:href>
    <d:status>HTTP/1.1 423 Locked</d:status>
    <d:error><d:lock-token-submitted/></d:error>
  </d:response>
  <d:response>
    <d:href>
      /container/a%20b
    </d:href>
    <d:href>/container/c</d:href>
    <d:status>HTTP/1.0 403 Forbidden</d:status>
    <d:responsedescription> not yours </d:responsedescription>
    <x:unknown xmlns:x="urn:other"><x:deep>ignored</x:deep></x:unknown>
  </d:response>
</d:multistatus>)";
    const auto parsed = parse_nested_multistatus(doc);
    BOOST_TEST_REQUIRE(parsed.has_value());
    BOOST_TEST_REQUIRE(parsed->size() == 3u);
    BOOST_TEST((*parsed)[0].href == "http://www.example.com/container/resource3");
    BOOST_TEST((*parsed)[0].status == 423u);
    BOOST_TEST(((*parsed)[0].condition == item_condition::none));  // DAV: conditions are not ours
    BOOST_TEST((*parsed)[1].href == "/container/a%20b");
    BOOST_TEST((*parsed)[2].href == "/container/c");
    for (std::size_t i : {1u, 2u}) {
        BOOST_TEST((*parsed)[i].status == 403u);
        BOOST_TEST((*parsed)[i].description == "not yours");
    }
    // Written back out: no double escaping of %20, and still well-formed.
    BOOST_TEST(contains(xml_doc(*parsed), "<D:href>/container/a%20b</D:href>"));
    // Default namespace and our own elements under another prefix.
    const auto other = parse_nested_multistatus(
        R"(<multistatus xmlns="DAV:" xmlns:z="urn:batchgate:batch"><response><href>/x</href>)"
        R"(<status>HTTP/1.1 503 Service Unavailable</status><z:id>q</z:id>)"
        R"(<error><z:overloaded/></error></response></multistatus>)");
    BOOST_TEST_REQUIRE(other.has_value());
    BOOST_TEST((*other)[0].id == "q");
    BOOST_TEST(((*other)[0].condition == item_condition::overloaded));
}

BOOST_AUTO_TEST_CASE(nested_with_propstat_is_not_flattened) {
    // Decision: a multistatus with any propstat is a property report; flattening
    // would drop the properties, so the caller keeps the whole body (nullopt).
    const std::string doc = R"(<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:">
  <D:response>
    <D:href>/files/a.txt</D:href>
    <D:status>HTTP/1.1 200 OK</D:status>
  </D:response>
  <D:response>
    <D:href>/files/</D:href>
    <D:propstat>
      <D:prop><D:getetag>"abc"</D:getetag></D:prop>
      <D:status>HTTP/1.1 200 OK</D:status>
    </D:propstat>
  </D:response>
</D:multistatus>)";
    BOOST_TEST(!parse_nested_multistatus(doc).has_value());
}

BOOST_AUTO_TEST_CASE(nested_refusals) {
    const std::string ok = R"(<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a</D:href>)"
                           R"(<D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>)";
    BOOST_TEST(parse_nested_multistatus(ok).has_value());
    const std::vector<std::string> refused = {
        "",
        "not xml",
        "{\"json\":true}",
        ok.substr(0, ok.size() - 5),                                          // truncated
        R"(<D:multistatus xmlns:D="DAV:"><D:response></D:multistatus>)",    // mismatched
        R"(<multistatus><response><href>/a</href><status>HTTP/1.1 200 OK</status></response></multistatus>)",
        R"(<D:other xmlns:D="DAV:"/>)",
        R"(<D:multistatus xmlns:D="DAV:"/>)",  // no response: the item would vanish
        R"(<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a</D:href></D:response></D:multistatus>)",
        R"(<D:multistatus xmlns:D="DAV:"><D:response><D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>)",
        R"(<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a</D:href><D:status>200 OK</D:status></D:response></D:multistatus>)",
        R"(<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a</D:href><D:status>HTTP/1.1 2000</D:status></D:response></D:multistatus>)",
        R"(<D:multistatus xmlns:D="DAV:" xmlns:B="urn:batchgate:batch"><D:response><D:href>/a</D:href>)"
        R"(<D:status>HTTP/1.1 200 OK</D:status><B:body encoding="base64">!!!!</B:body></D:response></D:multistatus>)",
        R"(<D:multistatus xmlns:D="DAV:" xmlns:B="urn:batchgate:batch"><D:response><D:href>/a</D:href>)"
        R"(<D:status>HTTP/1.1 200 OK</D:status><B:body encoding="gzip">x</B:body></D:response></D:multistatus>)",
        R"(<D:multistatus xmlns:D="DAV:" xmlns:B="urn:batchgate:batch"><D:response><D:href>/a</D:href>)"
        R"(<D:status>HTTP/1.1 200 OK</D:status><B:body>a<b/>c</B:body></D:response></D:multistatus>)",
        R"(<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a&undefined;</D:href>)"
        R"(<D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>)",
    };
    for (const auto& doc : refused) BOOST_TEST(!parse_nested_multistatus(doc).has_value(), doc);
}

BOOST_AUTO_TEST_CASE(nested_doctype_is_refused) {
    const std::string laughs = R"(<?xml version="1.0"?>
<!DOCTYPE D:multistatus [
  <!ENTITY a "aaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
]>
<D:multistatus xmlns:D="DAV:"><D:response><D:href>/&b;</D:href>
<D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>)";
    BOOST_TEST(!parse_nested_multistatus(laughs).has_value());
    const std::string external = R"(<?xml version="1.0"?>
<!DOCTYPE D:multistatus SYSTEM "file:///etc/passwd">
<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a</D:href>
<D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>)";
    BOOST_TEST(!parse_nested_multistatus(external).has_value());
    const std::string empty_doctype = R"(<!DOCTYPE x><D:multistatus xmlns:D="DAV:"><D:response>)"
                                      R"(<D:href>/a</D:href><D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>)";
    BOOST_TEST(!parse_nested_multistatus(empty_doctype).has_value());
}

BOOST_AUTO_TEST_CASE(nested_limits) {
    const std::string head = R"(<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a</D:href>)"
                             R"(<D:status>HTTP/1.1 200 OK</D:status>)";
    const std::string tail = "</D:response></D:multistatus>";
    std::string deep = head;
    for (int i = 0; i < 40; ++i) deep += "<x>";
    for (int i = 0; i < 40; ++i) deep += "</x>";
    deep += tail;
    BOOST_TEST(!parse_nested_multistatus(deep).has_value());
    nested_multistatus_limits roomy;
    roomy.max_depth = 64;
    BOOST_TEST(parse_nested_multistatus(deep, roomy).has_value());

    nested_multistatus_limits tiny;
    tiny.max_bytes = 64;
    BOOST_TEST(!parse_nested_multistatus(head + tail, tiny).has_value());
    BOOST_TEST(parse_nested_multistatus(head + tail).has_value());

    nested_multistatus_limits few;
    few.max_responses = 2;
    std::string three = R"(<D:multistatus xmlns:D="DAV:">)";
    for (int i = 0; i < 3; ++i)
        three += "<D:response><D:href>/" + std::to_string(i) + "</D:href><D:status>HTTP/1.1 204 No Content</D:status></D:response>";
    three += "</D:multistatus>";
    BOOST_TEST(!parse_nested_multistatus(three, few).has_value());
    BOOST_TEST(parse_nested_multistatus(three)->size() == 3u);

    std::string attrs = R"(<D:multistatus xmlns:D="DAV:"><D:response )";
    for (int i = 0; i < 20; ++i) attrs += "a" + std::to_string(i) + "=\"\" ";
    attrs += R"(><D:href>/a</D:href><D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>)";
    BOOST_TEST(!parse_nested_multistatus(attrs).has_value());
}

// ---------------------------------------------------------------- xmllint

BOOST_AUTO_TEST_CASE(full_document_passes_xmllint) {
    // scripts/setup.sh installs it (libxml2-utils): its absence is a failure, not a skip.
    BOOST_REQUIRE_MESSAGE(std::system("command -v xmllint >/dev/null 2>&1") == 0,
                          "xmllint is not installed (scripts/setup.sh installs libxml2-utils)");
    std::vector<item_result> tricky = product_example();
    auto a = result("/a b/\r\n/caf\xC3\xA9?x=1&y=<2>#f", 201, "<&>\"'");
    a.location = "/new\"loc'<>&#frag";
    a.headers = {{"X-\"Odd'<&>", "v\r\n<&>\"'\t"}, {"X-Ctl", std::string("\x00\x1b\x7f", 3)}, {"X-Latin", "caf\xe9"}};
    a.body = "<![CDATA[ ]]> & \"quotes\" 'apos' \r\n\t\xF0\x9F\x98\x80";
    a.description = std::string("ctl\x01\x02 <desc> & \xff");
    tricky.push_back(a);
    auto b = result(std::string("/nul\0/%zz%41", 12), 200, std::string("\x0c", 1));
    b.body = std::string("\x00\xff\xfe binary", 10);
    b.headers = {{"Content-Type", "application/octet-stream"}};
    tricky.push_back(b);
    auto c = result("/fffe", 200);
    c.body = "text with \xEF\xBF\xBE noncharacter";
    tricky.push_back(c);
    auto d = result("/interim", 103);
    d.body = "never";
    tricky.push_back(d);
    for (const auto& [condition, name] : all_conditions) {
        auto e = result("/cond/" + name, 502, name);
        e.condition = condition;
        e.description = "condition " + name + " & <more>";
        tricky.push_back(e);
    }
    const std::string doc = xml_doc(tricky);

    const auto path = std::filesystem::temp_directory_path() /
                      ("batchgate_multistatus_" + std::to_string(::getpid()) + ".xml");
    {
        std::ofstream out(path, std::ios::binary);
        out << doc;
    }
    const int rc = std::system(("xmllint --noout '" + path.string() + "'").c_str());
    std::filesystem::remove(path);
    BOOST_TEST(rc == 0, doc);

    // And everything written there reads back the same.
    const auto parsed = parse_nested_multistatus(doc);
    BOOST_TEST_REQUIRE(parsed.has_value());
    BOOST_TEST_REQUIRE(parsed->size() == tricky.size());
    BOOST_TEST((*parsed)[3].body == a.body);
    BOOST_TEST(((*parsed)[3].headers == a.headers));
    BOOST_TEST((*parsed)[3].location.value_or("") == "/new%22loc'%3C%3E&#frag");
    BOOST_TEST((*parsed)[4].body == b.body);
    BOOST_TEST((*parsed)[5].body == c.body);
    BOOST_TEST((*parsed)[6].status == 502u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
