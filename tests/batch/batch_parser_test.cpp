// Batch parsers: JSON (Graph $batch shape) and XML, the shared checks in
// finish_batch, and the hostile XML documents a DTD-expanding parser falls for.
#include "proxy/batch/batch_parser.hpp"
#include "tests/batch/parse_checks.hpp"
#include "tests/test_data.hpp"

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <string>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

void at(const batch_error& e, std::size_t line, std::size_t column) {
    BOOST_TEST(e.line == line);
    BOOST_TEST(e.column == column);
    const std::string where = "line " + std::to_string(line) + ", column " + std::to_string(column);
    BOOST_TEST(e.message.find(where) != std::string::npos, "message '" << e.message << "' lacks '" << where << "'");
}

batch_parse_result json(std::string_view body, const batch_parse_limits& limits = {}) {
    return parse_json_batch(body, limits);
}

batch_parse_result xml(std::string_view body, const batch_parse_limits& limits = {}) {
    return parse_xml_batch(body, limits);
}

// A batch with the given <batch> content.
std::string xml_batch(const std::string& inner) {
    return "<batch xmlns=\"urn:batchgate:batch\" xmlns:D=\"DAV:\">" + inner + "</batch>";
}

const header_list example_batch_headers{{"Authorization", "Bearer abc"}};

}  // namespace

BOOST_AUTO_TEST_SUITE(batch_parser)

// ---------------------------------------------------------------------------
// base64
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(base64_decoding) {
    BOOST_TEST(decode_base64("", false).value() == "");
    BOOST_TEST(decode_base64("aGk=", false).value() == "hi");
    BOOST_TEST(decode_base64("aGk", false).value() == "hi");
    BOOST_TEST(decode_base64("aA==", false).value() == "h");
    BOOST_TEST(decode_base64("aA", false).value() == "h");
    BOOST_TEST(decode_base64("aGVsbG8=", false).value() == "hello");
    BOOST_TEST(decode_base64("AP8A", false).value() == std::string("\x00\xff\x00", 3));
    BOOST_TEST(decode_base64("+/+/", false).value() == "\xfb\xff\xbf");
    BOOST_TEST(decode_base64(" aGVs\r\n bG8=\n", true).value() == "hello");

    BOOST_TEST(!decode_base64("aGk==", false));   // too much padding
    BOOST_TEST(!decode_base64("a===", false));    // one sextet is no byte
    BOOST_TEST(!decode_base64("a", false));
    BOOST_TEST(!decode_base64("====", false));
    BOOST_TEST(!decode_base64("aG=k", false));    // data after padding
    BOOST_TEST(!decode_base64("aGk=aGk=", false));
    BOOST_TEST(!decode_base64("-_8A", false));    // base64url alphabet
    BOOST_TEST(!decode_base64("aG k", false));    // whitespace only when allowed
    BOOST_TEST(!decode_base64("aGk*", true));
}

// ---------------------------------------------------------------------------
// JSON: the good cases
// ---------------------------------------------------------------------------

void check_json_example(const batch_request& b) {
    BOOST_TEST(b.headers == example_batch_headers);
    BOOST_REQUIRE(b.items.size() == 4u);

    BOOST_TEST(b.items[0].id == "1");
    BOOST_TEST(b.items[0].method == "GET");
    BOOST_TEST(b.items[0].href == "/users/1");
    BOOST_TEST(b.items[0].headers.empty());
    BOOST_TEST(!b.items[0].has_body);
    BOOST_TEST(!b.items[0].body_is_json);
    BOOST_TEST(b.items[0].body.empty());
    BOOST_TEST(b.items[0].depends_on.empty());

    BOOST_TEST(b.items[1].id == "2");
    BOOST_TEST(b.items[1].method == "PUT");
    BOOST_TEST(b.items[1].href == "/users/2");
    BOOST_TEST((b.items[1].headers == header_list{{"Content-Type", "application/json"}}));
    BOOST_TEST(b.items[1].has_body);
    BOOST_TEST(b.items[1].body_is_json);
    BOOST_TEST(b.items[1].body == R"({"name":"Ada"})");
    BOOST_TEST(b.items[1].depends_on.empty());

    BOOST_TEST(b.items[2].id == "3");
    BOOST_TEST(b.items[2].method == "DELETE");
    BOOST_TEST(b.items[2].href == "/users/3");
    BOOST_TEST(!b.items[2].has_body);

    BOOST_TEST(b.items[3].id == "4");
    BOOST_TEST(b.items[3].method == "POST");
    BOOST_TEST(b.items[3].href == "/audit");
    BOOST_TEST(!b.items[3].has_body);
    BOOST_TEST((b.items[3].depends_on == std::vector<std::string>{"2"}));
}

BOOST_AUTO_TEST_CASE(json_product_example) {
    const auto b = ok(json(R"({
  "headers": {"Authorization": "Bearer abc"},
  "requests": [
    {"id": "1", "method": "GET",    "url": "/users/1"},
    {"id": "2", "method": "PUT",    "url": "/users/2",
     "headers": {"Content-Type": "application/json"}, "body": {"name": "Ada"}},
    {"id": "3", "method": "DELETE", "url": "/users/3"},
    {"id": "4", "method": "POST",   "url": "/audit", "dependsOn": ["2"]}
  ]
})"));
    check_json_example(b);
}

BOOST_AUTO_TEST_CASE(json_example_file) { check_json_example(ok(json(read_data_file("batch_example.json")))); }

BOOST_AUTO_TEST_CASE(json_empty_batch) {
    const auto b = ok(json(R"({"requests": []})"));
    BOOST_TEST(b.items.empty());
    BOOST_TEST(b.headers.empty());
}

BOOST_AUTO_TEST_CASE(json_bodies) {
    const auto b = ok(json(R"({"requests": [
        {"method": "POST", "url": "/a", "body": "plain text {not json}"},
        {"method": "POST", "url": "/b", "body": {"base64": "AP8A"}},
        {"method": "POST", "url": "/c", "body": {"a": 1.0, "b": [ 1 , 2 ], "big": 123456789012345678901234,
                                                  "s": "x  y \" \\ \u00e9", "n": null}},
        {"method": "POST", "url": "/d", "body": [true, false]},
        {"method": "POST", "url": "/e", "body": 42},
        {"method": "POST", "url": "/f", "body": null},
        {"method": "POST", "url": "/g", "body": {"base64": 5}},
        {"method": "POST", "url": "/h", "body": {"base64": "aGk=", "x": 1}},
        {"method": "POST", "url": "/i", "body": ""},
        {"method": "POST", "url": "/j", "body": {"base64": ""}}
    ]})"));
    BOOST_REQUIRE(b.items.size() == 10u);
    auto body = [&](std::size_t i, const std::string& bytes, bool is_json) {
        BOOST_TEST_CONTEXT("item " << b.items[i].href) {
            BOOST_TEST(b.items[i].has_body);
            BOOST_TEST(b.items[i].body == bytes);
            BOOST_TEST(b.items[i].body_is_json == is_json);
        }
    };
    body(0, "plain text {not json}", false);
    body(1, std::string("\x00\xff\x00", 3), false);
    // Numbers and string escapes exactly as written; only whitespace goes.
    body(2, R"({"a":1.0,"b":[1,2],"big":123456789012345678901234,"s":"x  y \" \\ \u00e9","n":null})", true);
    body(3, "[true,false]", true);
    body(4, "42", true);
    BOOST_TEST(!b.items[5].has_body);  // null: no body
    BOOST_TEST(!b.items[5].body_is_json);
    body(6, R"({"base64":5})", true);
    body(7, R"({"base64":"aGk=","x":1})", true);
    body(8, "", false);
    body(9, "", false);
}

BOOST_AUTO_TEST_CASE(json_auto_ids_fill_gaps_left_by_explicit_ids) {
    const auto b = ok(json(R"({"requests": [
        {"method": "GET", "url": "/a"},
        {"id": "2", "method": "GET", "url": "/b"},
        {"method": "GET", "url": "/c"},
        {"id": 5, "method": "GET", "url": "/d"},
        {"method": "GET", "url": "/e", "dependsOn": [1, "3"]},
        {"id": "x", "method": "GET", "url": "/f"},
        {"method": "GET", "url": "/g"},
        {"method": "GET", "url": "/h"}
    ]})"));
    std::vector<std::string> ids;
    for (const auto& item : b.items) ids.push_back(item.id);
    BOOST_TEST((ids == std::vector<std::string>{"1", "2", "3", "5", "4", "x", "6", "7"}));
    // dependsOn may name assigned ids, and numbers become strings.
    BOOST_TEST((b.items[4].depends_on == std::vector<std::string>{"1", "3"}));
}

BOOST_AUTO_TEST_CASE(json_dependencies) {
    const auto b = ok(json(R"({"requests": [
        {"id": "a", "method": "GET", "url": "/a"},
        {"id": "b", "method": "GET", "url": "/b", "dependsOn": ["a", "a"]},
        {"id": "c", "method": "GET", "url": "/c", "dependsOn": ["b", "a"]},
        {"id": -7, "method": "GET", "url": "/d", "dependsOn": []}
    ]})"));
    BOOST_TEST((b.items[1].depends_on == std::vector<std::string>{"a"}));  // repeat dropped
    BOOST_TEST((b.items[2].depends_on == std::vector<std::string>{"b", "a"}));
    BOOST_TEST(b.items[3].id == "-7");
}

BOOST_AUTO_TEST_CASE(odata_json_golden_atomicity_group) {
    // @odata/client 2.21.10's execBatchRequestsJson: lower-case methods,
    // relative URLs, one atomicityGroup around the two writes.
    const auto b = ok(json(read_data_file("odata_client_atomicity.json")));
    BOOST_REQUIRE(b.items.size() == 3u);
    BOOST_TEST(b.items[0].method == "get");  // fan-out takes the standard methods in any case
    BOOST_TEST(b.items[0].href == "People(1)");  // fan-out resolves it against the batch path
    BOOST_TEST(b.items[0].depends_on.empty());
    BOOST_TEST(b.items[1].depends_on.empty());
    BOOST_TEST(b.items[2].depends_on == std::vector<std::string>{"r2"});
    BOOST_TEST(b.items[1].body == R"({"ID":2,"Name":"Alice"})");
}

BOOST_AUTO_TEST_CASE(json_atomicity_groups) {
    // dependsOn a group means on all of its requests; a group runs in order.
    const auto b = ok(json(R"({"requests":[
        {"id":"a","method":"POST","url":"/a","atomicityGroup":"g"},
        {"id":"b","method":"POST","url":"/b","atomicityGroup":"g"},
        {"id":"c","method":"POST","url":"/c","atomicityGroup":"g"},
        {"id":"d","method":"GET","url":"/d","dependsOn":["g"]},
        {"id":"e","method":"GET","url":"/e","atomicityGroup":"h","dependsOn":["a"]},
        {"id":"f","method":"GET","url":"/f","atomicityGroup":"h"}]})"));
    BOOST_REQUIRE(b.items.size() == 6u);
    BOOST_TEST(b.items[0].depends_on.empty());
    BOOST_TEST(b.items[1].depends_on == std::vector<std::string>{"a"});
    BOOST_TEST(b.items[2].depends_on == std::vector<std::string>{"b"});
    BOOST_TEST(b.items[3].depends_on == (std::vector<std::string>{"a", "b", "c"}));
    BOOST_TEST(b.items[4].depends_on == std::vector<std::string>{"a"});
    BOOST_TEST(b.items[5].depends_on == std::vector<std::string>{"e"});

    refused(json(R"({"requests":[{"id":"a","method":"GET","url":"/a","atomicityGroup":"g"},
        {"id":"b","method":"GET","url":"/b"},{"id":"c","method":"GET","url":"/c","atomicityGroup":"g"}]})"),
            400, "the requests of a group must be adjacent");
    refused(json(R"({"requests":[{"id":"g","method":"GET","url":"/a","atomicityGroup":"g"}]})"), 400,
            "atomicityGroup 'g' is also the id of requests[0]");
    refused(json(R"({"requests":[{"id":"a","method":"GET","url":"/a","atomicityGroup":""}]})"), 400,
            "atomicityGroup must be a non-empty string");
    refused(json(R"({"requests":[{"id":"a","method":"GET","url":"/a","atomicityGroup":"g","dependsOn":["g"]}]})"),
            400, "depends on itself");
    refused(json(R"({"requests":[{"id":"a","method":"GET","url":"/a","dependsOn":["nope"]}]})"), 400,
            "dependsOn names unknown id 'nope'");
}

BOOST_AUTO_TEST_CASE(json_dollar_references_are_refused_per_item) {
    const auto b = ok(json(R"({"requests":[{"id":"1","method":"POST","url":"/users","body":{}},
        {"id":"2","method":"GET","url":"$1/orders","dependsOn":["1"]},{"id":"3","method":"GET","url":"$batch"}]})"));
    BOOST_REQUIRE(b.refused.size() == 1u);
    BOOST_TEST(b.refused[0].first == 1u);
    BOOST_TEST(b.refused[0].second.find("refers to the result of item '1' ($1)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(json_header_values_kept_as_written) {
    const auto b = ok(json(R"({"headers": {"X-A": " spaced ", "X-B": "a\r\nEvil: 1"},
        "requests": [{"method": "GET", "url": "/a", "headers": {"X-C": "bad\nvalue", "X-D": ""}}]})"));
    BOOST_TEST((b.headers == header_list{{"X-A", " spaced "}, {"X-B", "a\r\nEvil: 1"}}));
    BOOST_TEST((b.items[0].headers == header_list{{"X-C", "bad\nvalue"}, {"X-D", ""}}));
}

// ---------------------------------------------------------------------------
// JSON: syntax errors, with where
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(json_syntax_errors_have_line_and_column) {
    at(refused(json("{\n  \"requests\": [\n    {\"id\": \"1\",, \"method\": \"GET\"}\n  ]\n}"), 400, "syntax error"),
       3, 16);
    at(refused(json(R"({"requests": [)"), 400, "incomplete"), 1, 15);
    at(refused(json(R"({"requests": []} x)"), 400, "extra data"), 1, 18);
    at(refused(json(""), 400, "incomplete"), 1, 1);
    at(refused(json("\n\n   "), 400, "incomplete"), 3, 4);
    // Columns count characters, not bytes: é is two bytes.
    at(refused(json("{\"\xc3\xa9\": 1,}"), 400, "syntax error"), 1, 9);
    // Invalid UTF-8 inside a string.
    at(refused(json("{\"requests\": [\"\xff\"]}"), 400, "syntax error"), 1, 16);
    // Comments and trailing commas are not JSON.
    at(refused(json("{\"requests\": [] // no\n}"), 400, "syntax error"), 1, 17);
    at(refused(json("{\"requests\": [1,]}"), 400, "syntax error"), 1, 17);
}

BOOST_AUTO_TEST_CASE(json_depth_limit) {
    batch_parse_limits limits;
    limits.max_json_depth = 3;
    // object, array, object: depth 3 is fine; the body's array is the 4th level.
    BOOST_TEST(!json(R"({"requests":[{"method":"GET","url":"/","body":"x"}]})", limits).error);
    at(refused(json(R"({"requests":[{"body":[1]}]})", limits), 400, "deeper than 3"), 1, 22);

    // Default limit 32.
    std::string deep(40, '[');
    deep += std::string(40, ']');
    const std::string body = R"({"requests":[{"method":"GET","url":"/","body":)" + deep + "}]}";
    at(refused(json(body), 400, "deeper than 32"), 1, 47 + 29);
    std::string fine(29, '[');
    fine += std::string(29, ']');
    BOOST_TEST(!json(R"({"requests":[{"method":"GET","url":"/","body":)" + fine + "}]}").error);
}

BOOST_AUTO_TEST_CASE(json_duplicate_keys) {
    at(refused(json("{\"requests\": [\n  {\"method\": \"GET\", \"url\": \"/a\", \"method\": \"PUT\"}]}"), 400,
               "duplicate key 'method'"),
       2, 34);
    // Escapes do not hide a duplicate.
    at(refused(json(R"({"requests": [], "requ\u0065sts": []})"), 400, "duplicate key 'requests'"), 1, 18);
    at(refused(json(R"({"requests": [{"method": "GET", "url": "/", "body": {"a": 1, "a": 2}}]})"), 400,
               "duplicate key 'a'"),
       1, 62);
    // Past the first eight keys of an object the walker keeps them in a hash
    // set: a duplicate is still found there, before and after the switch.
    std::string many = R"({"requests": [{"method": "GET", "url": "/", "body": {)";
    for (int k = 0; k < 12; ++k) many += "\"k" + std::to_string(k) + "\": " + std::to_string(k) + ", ";
    BOOST_TEST(!json(many + R"("last": 0}}]})").error);
    refused(json(many + R"("k1": 0}}]})"), 400, "duplicate key 'k1'");
    refused(json(many + R"("k10": 0}}]})"), 400, "duplicate key 'k10'");
    refused(json(R"({"requests": [{"method": "GET", "url": "/", "body": {"a": 1, "b": 2, "\u0061": 3}}]})"), 400,
            "duplicate key 'a'");
}

// ---------------------------------------------------------------------------
// JSON: shape errors
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(json_shape_errors) {
    refused(json("[]"), 400, "must be a JSON object");
    refused(json("\"requests\""), 400, "must be a JSON object");
    refused(json("{}"), 400, "missing \"requests\"");
    refused(json(R"({"requests": {}})"), 400, "requests: must be an array");
    refused(json(R"({"requests": [], "extra": 1})"), 400, "unknown top-level key 'extra'");
    refused(json(R"({"requests": [], "headers": []})"), 400, "headers: must be an object");
    refused(json(R"({"requests": [], "headers": {"A": 1}})"), 400, "headers.A: must be a string");
    refused(json(R"({"requests": [], "headers": {"": "x"}})"), 400, "empty name");

    at(refused(json("{\"requests\": [\n  {\"method\": \"GET\", \"url\": \"/a\"},\n  \"GET /b\"]}"), 400,
               "requests[1]: must be an object"),
       3, 3);
    at(refused(json("{\"requests\": [\n  {\"method\": \"GET\", \"url\": \"/a\"},\n"
                    "  {\"id\": \"2\", \"method\": \"GET\", \"url\": \"/b\", \"dependOn\": [\"1\"]}]}"),
               400, "requests[1]: unknown key 'dependOn'"),
       3, 3);

    const std::string r = R"({"requests": [{"method": "GET", "url": "/"}, )";
    auto second = [&](const std::string& request) { return json(r + request + "]}"); };
    refused(second(R"({"url": "/"})"), 400, "requests[1]: missing \"method\"");
    refused(second(R"({"method": "GET"})"), 400, "requests[1]: missing \"url\"");
    refused(second(R"({"method": 1, "url": "/"})"), 400, "requests[1]: method must be a string");
    refused(second(R"({"method": "GET", "url": null})"), 400, "requests[1]: url must be a string");
    refused(second(R"({"id": true, "method": "GET", "url": "/"})"), 400, "requests[1]: id must be a string or an integer");
    refused(second(R"({"id": 1.5, "method": "GET", "url": "/"})"), 400, "id must be a string or an integer");
    refused(second(R"({"id": "", "method": "GET", "url": "/"})"), 400, "requests[1]: empty id");
    refused(second(R"({"method": "GET", "url": "/", "headers": "x"})"), 400, "requests[1].headers: must be an object");
    refused(second(R"({"method": "GET", "url": "/", "headers": {"A": ["x"]}})"), 400,
            "requests[1].headers.A: must be a string");
    refused(second(R"({"method": "GET", "url": "/", "headers": {"": "x"}})"), 400,
            "requests[1]: header with an empty name");
    refused(second(R"({"method": "GET", "url": "/", "dependsOn": "1"})"), 400,
            "requests[1]: dependsOn must be an array");
    refused(second(R"({"method": "GET", "url": "/", "dependsOn": ["1", {}]})"), 400,
            "requests[1]: dependsOn[1] must be a string or an integer");
    refused(second(R"({"method": "GET", "url": "/", "body": {"base64": "not base64!"}})"), 400,
            "requests[1]: body.base64 is not valid base64");
}

BOOST_AUTO_TEST_CASE(json_id_errors) {
    at(refused(json("{\"requests\": [\n {\"id\": \"1\", \"method\": \"GET\", \"url\": \"/a\"},\n"
                    " {\"id\": 1, \"method\": \"GET\", \"url\": \"/b\"}]}"),
               400, "requests[1]: duplicate id '1' (also used by requests[0])"),
       3, 2);
    refused(json(R"({"requests": [{"method": "GET", "url": "/a", "dependsOn": ["9"]}]})"), 400,
            "requests[0]: dependsOn names unknown id '9'");
    refused(json(R"({"requests": [{"id": "s", "method": "GET", "url": "/a", "dependsOn": ["s"]}]})"), 400,
            "requests[0]: depends on itself (id 's')");
    // An auto id can depend on itself too.
    refused(json(R"({"requests": [{"method": "GET", "url": "/a", "dependsOn": [1]}]})"), 400,
            "depends on itself (id '1')");
    const auto cycle = refused(json(R"({"requests": [
        {"id": "1", "method": "GET", "url": "/a", "dependsOn": ["3"]},
        {"id": "2", "method": "GET", "url": "/b", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/c", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "/d", "dependsOn": ["3"]}
    ]})"), 400, "dependsOn cycle: '1' -> '3' -> '2' -> '1'");
    BOOST_TEST(cycle.line == 2u);
}

BOOST_AUTO_TEST_CASE(json_max_items) {
    batch_parse_limits limits;
    limits.max_items = 2;
    const std::string two = R"({"method": "GET", "url": "/a"}, {"method": "GET", "url": "/b"})";
    BOOST_TEST(ok(json("{\"requests\": [" + two + "]}", limits)).items.size() == 2u);
    refused(json("{\"requests\": [" + two + R"(, {"method": "GET", "url": "/c"}]})", limits), 413,
            "more than 2 resources");
    // 413 even when a request is malformed: the count is checked first.
    refused(json("{\"requests\": [" + two + R"(, {"oops": 1}]})", limits), 413, "more than 2 resources");
}

// ---------------------------------------------------------------------------
// XML: the good cases
// ---------------------------------------------------------------------------

void check_xml_example(const batch_request& b) {
    BOOST_TEST(b.headers == example_batch_headers);
    BOOST_REQUIRE(b.items.size() == 5u);

    BOOST_TEST(b.items[0].id == "1");
    BOOST_TEST(b.items[0].method == "GET");
    BOOST_TEST(b.items[0].href == "/users/1");
    BOOST_TEST(b.items[0].headers.empty());
    BOOST_TEST(!b.items[0].has_body);
    BOOST_TEST(b.items[0].depends_on.empty());

    BOOST_TEST(b.items[1].id == "2");
    BOOST_TEST(b.items[1].method == "PUT");
    BOOST_TEST(b.items[1].href == "/users/2");
    BOOST_TEST((b.items[1].headers == header_list{{"Content-Type", "application/json"}}));
    BOOST_TEST(b.items[1].has_body);
    BOOST_TEST(!b.items[1].body_is_json);  // XML bodies are bytes; the item's header says what
    BOOST_TEST(b.items[1].body == R"({"name":"Ada"})");

    const char* hrefs[] = {"/items/17", "/items/18", "/items/19"};
    for (std::size_t i = 2; i < 5; ++i) {
        BOOST_TEST(b.items[i].id == "3");  // one assigned id, shared by the request's hrefs
        BOOST_TEST(b.items[i].method == "DELETE");
        BOOST_TEST(b.items[i].href == hrefs[i - 2]);
        BOOST_TEST(b.items[i].headers.empty());
        BOOST_TEST(!b.items[i].has_body);
        BOOST_TEST(b.items[i].depends_on.empty());
    }
}

BOOST_AUTO_TEST_CASE(xml_product_example) {
    check_xml_example(ok(xml(R"(<?xml version="1.0" encoding="utf-8"?>
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
</batch>
)")));
}

BOOST_AUTO_TEST_CASE(xml_example_file) { check_xml_example(ok(xml(read_data_file("batch_example.xml")))); }

BOOST_AUTO_TEST_CASE(xml_empty_batch) {
    BOOST_TEST(ok(xml(R"(<batch xmlns="urn:batchgate:batch"/>)")).items.empty());
    BOOST_TEST(ok(xml("<?xml version=\"1.0\"?>\n<!-- nothing -->\n<b:batch xmlns:b=\"urn:batchgate:batch\">\n</b:batch>"))
                   .items.empty());
}

BOOST_AUTO_TEST_CASE(xml_multi_href_shares_everything) {
    const auto b = ok(xml(xml_batch(R"(
        <request id="a" method="GET"><D:href>/a</D:href></request>
        <request id="del" method="DELETE" dependsOn="  a
            a  ">
          <header name="X-Reason">cleanup</header>
          <D:href>  /items/1
          </D:href>
          <body encoding="base64">aGVs
            bG8=</body>
          <D:href>/items/2</D:href>
        </request>)")));
    BOOST_REQUIRE(b.items.size() == 3u);
    for (std::size_t i = 1; i < 3; ++i) {
        BOOST_TEST(b.items[i].id == "del");
        BOOST_TEST(b.items[i].method == "DELETE");
        BOOST_TEST((b.items[i].headers == header_list{{"X-Reason", "cleanup"}}));
        BOOST_TEST(b.items[i].has_body);
        BOOST_TEST(b.items[i].body == "hello");
        BOOST_TEST((b.items[i].depends_on == std::vector<std::string>{"a"}));
    }
    BOOST_TEST(b.items[1].href == "/items/1");  // trimmed
    BOOST_TEST(b.items[2].href == "/items/2");
}

BOOST_AUTO_TEST_CASE(xml_text_content) {
    const auto b = ok(xml(xml_batch(R"(
        <header name="X-Batch">
            batch value
        </header>
        <request method="POST">
          <D:href>/a?x=1&amp;y=&lt;2&gt;</D:href>
          <header name="X-Evil">a&#13;&#10;Injected: 1</header>
          <header name="X-Empty"/>
          <body>  keep &amp; all
  spacing  </body>
        </request>
        <request method="POST"><D:href>/b</D:href><body><![CDATA[<raw attr="1">&</raw>]]></body></request>
        <request method="POST"><D:href>/c</D:href><body/></request>
        <request method="POST"><D:href>/d</D:href><body encoding="base64"></body></request>)")));
    BOOST_REQUIRE(b.items.size() == 4u);
    BOOST_TEST((b.headers == header_list{{"X-Batch", "batch value"}}));
    BOOST_TEST(b.items[0].href == "/a?x=1&y=<2>");
    BOOST_TEST((b.items[0].headers == header_list{{"X-Evil", "a\r\nInjected: 1"}, {"X-Empty", ""}}));
    BOOST_TEST(b.items[0].body == "  keep & all\n  spacing  ");
    BOOST_TEST(b.items[1].body == R"(<raw attr="1">&</raw>)");
    BOOST_TEST(b.items[2].has_body);
    BOOST_TEST(b.items[2].body.empty());
    BOOST_TEST(b.items[3].has_body);
    BOOST_TEST(b.items[3].body.empty());
}

BOOST_AUTO_TEST_CASE(xml_auto_ids_one_per_request) {
    const auto b = ok(xml(xml_batch(R"(
        <request method="GET"><D:href>/a</D:href><D:href>/b</D:href></request>
        <request id="2" method="GET"><D:href>/c</D:href></request>
        <request method="GET" dependsOn="1 2 4"><D:href>/d</D:href></request>
        <request id="4" method="GET"><D:href>/e</D:href></request>
        <request method="GET"><D:href>/f</D:href></request>)")));
    std::vector<std::string> ids;
    for (const auto& item : b.items) ids.push_back(item.id);
    BOOST_TEST((ids == std::vector<std::string>{"1", "1", "2", "3", "4", "5"}));
    BOOST_TEST((b.items[3].depends_on == std::vector<std::string>{"1", "2", "4"}));
}

// ---------------------------------------------------------------------------
// XML: errors
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(xml_syntax_errors_have_line_and_column) {
    at(refused(xml("<batch xmlns=\"urn:batchgate:batch\">\n  <request method=\"GET\"></batch>"), 400,
               "mismatched tag"),
       2, 27);
    at(refused(xml(""), 400, "no element found"), 1, 1);
    at(refused(xml("<batch xmlns=\"urn:batchgate:batch\">\n<request"), 400, "unclosed token"), 2, 1);
    at(refused(xml("<batch xmlns=\"urn:batchgate:batch\" a=\"1\" a=\"2\"/>"), 400, "duplicate attribute"), 1, 42);
    at(refused(xml(xml_batch("<request method=\"GET\"><D:href>&xxe;</D:href></request>")), 400,
               "undefined entity"),
       1, 81);
    at(refused(xml("<batch xmlns=\"urn:batchgate:batch\"/>\n<batch xmlns=\"urn:batchgate:batch\"/>"), 400,
               "junk after document element"),
       2, 1);
    at(refused(xml("<batch xmlns=\"urn:batchgate:batch\" xmlns:x=\"\"/>"), 400, "must not undeclare prefix"), 1, 1);
    at(refused(xml("<x:batch/>"), 400, "unbound prefix"), 1, 1);
}

BOOST_AUTO_TEST_CASE(xml_billion_laughs_refused) {
    const std::string doc = R"(<?xml version="1.0"?>
<!DOCTYPE batch [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<batch xmlns="urn:batchgate:batch" xmlns:D="DAV:">
  <request method="GET"><D:href>/&lol9;</D:href></request>
</batch>)";
    at(refused(xml(doc), 400, "DOCTYPE declarations are refused"), 2, 17);
}

BOOST_AUTO_TEST_CASE(xml_external_entities_refused) {
    const std::string xxe = R"(<?xml version="1.0"?>
<!DOCTYPE batch [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<batch xmlns="urn:batchgate:batch" xmlns:D="DAV:">
  <request method="GET"><D:href>/&xxe;</D:href></request>
</batch>)";
    at(refused(xml(xxe), 400, "DOCTYPE declarations are refused"), 2, 17);

    const std::string external_dtd = R"(<!DOCTYPE batch SYSTEM "http://example.invalid/batch.dtd">
<batch xmlns="urn:batchgate:batch"/>)";
    at(refused(xml(external_dtd), 400, "DOCTYPE"), 1, 58);

    const std::string parameter_entities = R"(<?xml version="1.0"?>
<!DOCTYPE batch [
  <!ENTITY % remote SYSTEM "http://example.invalid/evil.dtd">
  %remote;
  <!ENTITY % inner "<!ENTITY stolen 'x'>">
  %inner;
]>
<batch xmlns="urn:batchgate:batch"/>)";
    at(refused(xml(parameter_entities), 400, "DOCTYPE"), 2, 17);
}

BOOST_AUTO_TEST_CASE(xml_doctype_without_entities_refused) {
    at(refused(xml("<?xml version=\"1.0\"?>\n<!DOCTYPE batch>\n<batch xmlns=\"urn:batchgate:batch\"/>"), 400,
               "DOCTYPE declarations are refused"),
       2, 16);
    at(refused(xml("<!DOCTYPE batch [ <!ELEMENT batch ANY> ]><batch xmlns=\"urn:batchgate:batch\"/>"), 400,
               "DOCTYPE"),
       1, 17);
}

BOOST_AUTO_TEST_CASE(xml_processing_instructions_refused) {
    at(refused(xml("<?xml version=\"1.0\"?>\n<?xml-stylesheet href=\"x.xsl\"?>\n<batch xmlns=\"urn:batchgate:batch\"/>"),
               400, "processing instructions are refused"),
       2, 1);
    at(refused(xml(xml_batch("<?php echo 1; ?>")), 400, "processing instructions"), 1, 51);
}

BOOST_AUTO_TEST_CASE(xml_root_and_namespaces) {
    at(refused(xml("<multistatus xmlns=\"urn:batchgate:batch\"/>"), 400, "root element must be <batch>"), 1, 1);
    refused(xml("<batch/>"), 400, "not <batch> (no namespace)");
    refused(xml("<batch xmlns=\"urn:other\"/>"), 400, "not <batch> (namespace 'urn:other')");
    refused(xml("<D:batch xmlns:D=\"DAV:\"/>"), 400, "root element must be <batch>");
    refused(xml("<batch xmlns=\"urn:batchgate:batch\" version=\"1\"/>"), 400, "unknown attribute 'version' on <batch>");

    at(refused(xml(xml_batch("\n <requests method=\"GET\"/>")), 400, "unexpected element <requests> in <batch>"), 2, 2);
    refused(xml(xml_batch("<D:href>/a</D:href>")), 400, "unexpected element <href> (namespace 'DAV:') in <batch>");
    refused(xml(xml_batch("<request method=\"GET\"><href>/a</href></request>")), 400,
            "(href belongs in namespace DAV:)");
    refused(xml(xml_batch("<request method=\"GET\"><x:href xmlns:x=\"urn:x\">/a</x:href></request>")), 400,
            "unexpected element <href> (namespace 'urn:x') in <request>");
    refused(xml(xml_batch("<request method=\"GET\"><D:href>/a</D:href><D:prop/></request>")), 400,
            "unexpected element <prop> (namespace 'DAV:') in <request>");
    refused(xml(xml_batch("<request method=\"GET\"><D:href>/a</D:href><note xmlns=\"\">x</note></request>")), 400,
            "unexpected element <note> (no namespace) in <request>");
}

BOOST_AUTO_TEST_CASE(xml_structure_errors) {
    auto request = [](const std::string& inner) { return xml(xml_batch(inner)); };
    refused(request("<request id=\"1\"><D:href>/a</D:href></request>"), 400, "<request> needs a \"method\" attribute");
    refused(request("<request method=\"GET\" url=\"/a\"><D:href>/a</D:href></request>"), 400,
            "unknown attribute 'url' on <request>");
    refused(request("<request method=\"GET\" x:id=\"1\" xmlns:x=\"urn:x\"><D:href>/a</D:href></request>"), 400,
            "unknown attribute 'id' (namespace 'urn:x') on <request>");
    refused(request("<request method=\"GET\" D:id=\"1\"><D:href>/a</D:href></request>"), 400,
            "unknown attribute 'id' (namespace 'DAV:')");
    refused(request("<request method=\"GET\"><D:href lang=\"en\">/a</D:href></request>"), 400,
            "unknown attribute 'lang' on <href>");
    refused(request("<header>x</header>"), 400, "<header> needs a \"name\" attribute");
    refused(request("<header name=\"A\" value=\"x\"/>"), 400, "unknown attribute 'value' on <header>");
    refused(request("<header name=\"\">x</header>"), 400, "batch-level header with an empty name");
    refused(request("<request method=\"GET\"><D:href>/a</D:href><header name=\"\">x</header></request>"), 400,
            "<request>: header with an empty name");
    refused(request("<header name=\"A\"><b>x</b></header>"), 400, "<header> holds only text");
    refused(request("<request method=\"GET\"><D:href><D:href>/a</D:href></D:href></request>"), 400,
            "<href> holds only text");
    refused(request("<request method=\"GET\"><D:href>/a</D:href><body><x/></body></request>"), 400,
            "<body> holds only text");
    at(refused(request("some text<request method=\"GET\"><D:href>/a</D:href></request>"), 400,
               "text is not allowed directly in <batch>"),
       1, 51);
    refused(request("<request method=\"GET\">/a<D:href>/a</D:href></request>"), 400,
            "text is not allowed directly in <request>");
    refused(request("<request method=\"GET\"><D:href>/a</D:href><body>1</body><body>2</body></request>"), 400,
            "more than one <body>");
    refused(request("<request method=\"GET\"><D:href>/a</D:href><body encoding=\"hex\">00</body></request>"), 400,
            "unsupported body encoding 'hex'");
    at(refused(request("<request method=\"GET\"><D:href>/a</D:href>\n  <body encoding=\"base64\">aGk*</body></request>"),
               400, "not valid base64"),
       2, 3);
    at(refused(xml(xml_batch("\n  <request method=\"GET\"/>")), 400, "<request>: no resource to act on"), 2, 3);
    at(refused(xml(xml_batch("\n  <request method=\"GET\"><header name=\"A\">b</header></request>")), 400,
               "no resource"),
       2, 3);
    refused(request("<request id=\"\" method=\"GET\"><D:href>/a</D:href></request>"), 400, "empty id");
}

BOOST_AUTO_TEST_CASE(xml_id_errors) {
    at(refused(xml(xml_batch("\n<request id=\"1\" method=\"GET\"><D:href>/a</D:href></request>"
                             "\n<request id=\"1\" method=\"PUT\"><D:href>/b</D:href></request>")),
               400, "<request>: duplicate id '1'"),
       3, 1);
    at(refused(xml(xml_batch("\n<request id=\"a\" method=\"GET\" dependsOn=\"7\"><D:href>/a</D:href></request>")), 400,
               "dependsOn names unknown id '7'"),
       2, 1);
    refused(xml(xml_batch("<request method=\"GET\" dependsOn=\"1\"><D:href>/a</D:href><D:href>/b</D:href></request>")),
            400, "depends on itself (id '1')");
    refused(xml(xml_batch("<request id=\"a\" method=\"GET\" dependsOn=\"b\"><D:href>/a</D:href></request>"
                          "<request id=\"b\" method=\"GET\" dependsOn=\"a\"><D:href>/b</D:href></request>")),
            400, "dependsOn cycle: 'a' -> 'b' -> 'a'");
}

BOOST_AUTO_TEST_CASE(xml_depth_limit) {
    batch_parse_limits limits;
    limits.max_xml_depth = 2;
    const std::string doc = xml_batch("\n  <request method=\"GET\"><D:href>/a</D:href></request>");
    at(refused(xml(doc, limits), 400, "nested deeper than 2"), 2, 25);
    limits.max_xml_depth = 3;
    BOOST_TEST(ok(xml(doc, limits)).items.size() == 1u);

    // The limit is checked before anything else about the element.
    limits = {};
    limits.max_xml_depth = 1;
    at(refused(xml(xml_batch("<x/>"), limits), 400, "nested deeper than 1"), 1, 51);
}

BOOST_AUTO_TEST_CASE(xml_attribute_limit) {
    batch_parse_limits limits;
    limits.max_xml_attributes = 2;
    const std::string doc = xml_batch("\n <request id=\"1\" method=\"GET\" dependsOn=\"\"><D:href>/a</D:href></request>");
    at(refused(xml(doc, limits), 400, "more than 2 attributes"), 2, 2);
    limits.max_xml_attributes = 3;
    BOOST_TEST(ok(xml(doc, limits)).items.size() == 1u);

    // Default 16; counted before the unknown-attribute check. Namespace
    // declarations are not attributes.
    std::string many = "<request method=\"GET\"";
    for (int i = 0; i < 16; ++i) many += " a" + std::to_string(i) + "=\"x\"";
    many += "><D:href>/a</D:href></request>";
    refused(xml(xml_batch(many)), 400, "more than 16 attributes");
    std::string namespaces = "<batch xmlns=\"urn:batchgate:batch\"";
    for (int i = 0; i < 20; ++i) namespaces += " xmlns:n" + std::to_string(i) + "=\"urn:n" + std::to_string(i) + "\"";
    namespaces += "/>";
    BOOST_TEST(ok(xml(namespaces)).items.empty());
}

BOOST_AUTO_TEST_CASE(xml_max_items_counts_hrefs) {
    batch_parse_limits limits;
    limits.max_items = 3;
    const std::string three = "<request method=\"DELETE\"><D:href>/1</D:href><D:href>/2</D:href></request>"
                              "<request method=\"GET\"><D:href>/3</D:href></request>";
    BOOST_TEST(ok(xml(xml_batch(three), limits)).items.size() == 3u);
    const auto e = refused(xml(xml_batch(three + "<request method=\"GET\"><D:href>/4</D:href></request>"), limits),
                           413, "more than 3 resources");
    BOOST_TEST(e.line == 1u);
    refused(xml(xml_batch("<request method=\"DELETE\"><D:href>/1</D:href><D:href>/2</D:href><D:href>/3</D:href>"
                          "<D:href>/4</D:href></request>"),
                limits),
            413, "more than 3 resources");
}

BOOST_AUTO_TEST_CASE(xml_copies_of_a_body_are_bounded) {
    batch_parse_limits limits;
    limits.max_expanded_bytes = 1000;
    const std::string body(300, 'x');
    auto doc = [&](int hrefs) {
        std::string r = "<request id=\"r\" method=\"PUT\"><body>" + body + "</body>";
        for (int i = 0; i < hrefs; ++i) r += "<D:href>/" + std::to_string(i) + "</D:href>";
        return xml_batch(r + "</request>");
    };
    BOOST_TEST(ok(xml(doc(3), limits)).items.size() == 3u);  // two copies of ~305 bytes
    refused(xml(doc(5), limits), 413, "would take more than 1000 bytes");
}

// ---------------------------------------------------------------------------
// finish_batch, as a third parser would use it
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(finish_batch_from_a_draft) {
    batch_draft draft;
    draft.headers = {{"Authorization", "Bearer x"}};
    draft_request a;
    a.method = "GET";
    a.hrefs = {"/a"};
    a.label = "part 1";
    draft_request b;
    b.id = "1";
    b.method = "DELETE";
    b.hrefs = {"/b", "/c"};
    b.depends_on = {"2"};
    b.label = "part 2";
    draft.requests = {a, b};
    const auto r = finish_batch(draft, {});
    BOOST_REQUIRE(r.batch);
    BOOST_TEST(!r.error);
    BOOST_REQUIRE(r.batch->items.size() == 3u);
    BOOST_TEST(r.batch->items[0].id == "2");
    BOOST_TEST(r.batch->items[1].id == "1");
    BOOST_TEST(r.batch->items[2].id == "1");
    BOOST_TEST(r.batch->items[2].href == "/c");
    BOOST_TEST((r.batch->items[2].depends_on == std::vector<std::string>{"2"}));

    draft.requests[0].depends_on = {"1"};
    const auto cycle = finish_batch(draft, {});
    BOOST_REQUIRE(cycle.error);
    BOOST_TEST(!cycle.batch);
    BOOST_TEST(cycle.error->status == 400u);
    BOOST_TEST(cycle.error->message == "part 1: dependsOn cycle: '2' -> '1' -> '2'");
    BOOST_TEST(cycle.error->line == 0u);
}

BOOST_AUTO_TEST_CASE(long_cycles_are_named_briefly) {
    batch_draft draft;
    for (int i = 0; i < 20; ++i) {
        draft_request r;
        r.id = std::to_string(i);
        r.method = "GET";
        r.hrefs = {"/"};
        r.depends_on = {std::to_string((i + 1) % 20)};
        r.label = "r" + std::to_string(i);
        draft.requests.push_back(r);
    }
    const auto r = finish_batch(draft, {});
    BOOST_REQUIRE(r.error);
    BOOST_TEST(r.error->message ==
               "r0: dependsOn cycle: '0' -> '1' -> '2' -> '3' -> '4' -> '5' -> '6' -> '7' -> ... -> '0'");
}

BOOST_AUTO_TEST_CASE(long_dependency_chain_does_not_recurse) {
    batch_parse_limits limits;
    limits.max_items = 200000;
    batch_draft draft;
    for (int i = 0; i < 200000; ++i) {
        draft_request r;
        r.method = "GET";
        r.hrefs = {"/"};
        if (i + 1 < 200000) r.depends_on = {std::to_string(i + 2)};
        draft.requests.push_back(std::move(r));
    }
    const auto r = finish_batch(std::move(draft), limits);
    BOOST_REQUIRE(r.batch);
    BOOST_TEST(r.batch->items.size() == 200000u);
    BOOST_TEST(r.batch->items.back().id == "200000");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
