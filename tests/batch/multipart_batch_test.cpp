// multipart/mixed batches: what real clients send (golden files from tests/data),
// the request inside each part, changesets, and the whole-batch errors.
#include "proxy/batch/multipart_batch.hpp"
#include "tests/batch/parse_checks.hpp"
#include "tests/test_data.hpp"

#include <boost/test/unit_test.hpp>

#include <string>

namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

constexpr std::string_view type = "multipart/mixed; boundary=b1";

batch_parse_result parse(std::string_view body, std::string_view content_type = type,
                         const batch_parse_limits& limits = {}) {
    // Fed in small pieces, as a slow client's body arrives.
    multipart_batch_parser parser(content_type, limits);
    for (std::size_t i = 0; i < body.size(); i += 5) {
        if (!parser.feed(body.substr(i, 5))) break;
    }
    auto pieces = parser.finish();
    auto whole = parse_multipart_batch(content_type, body, limits);
    BOOST_TEST(pieces.error.has_value() == whole.error.has_value());
    if (pieces.error && whole.error) BOOST_TEST(pieces.error->message == whole.error->message);
    return whole;
}

std::string part(std::string_view request, std::string_view extra_headers = "") {
    return "--b1\r\nContent-Type: application/http\r\n" + std::string(extra_headers) + "\r\n" + std::string(request) +
           "\r\n";
}

std::string header(const batch_item& item, std::string_view name) {
    for (const auto& [n, v] : item.headers)
        if (n == name) return v;
    return "(none)";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(multipart_batch)

BOOST_AUTO_TEST_CASE(odatajs_changeset_golden) {
    const auto b = ok(parse(read_data_file("odatajs_changeset.multipart"), read_data_file("odatajs_changeset.content-type")));
    BOOST_REQUIRE(b.items.size() == 3u);
    BOOST_TEST(b.items[0].method == "GET");
    BOOST_TEST(b.items[0].href == "People(1)");
    BOOST_TEST(!b.items[0].has_body);
    BOOST_TEST(header(b.items[0], "OData-MaxVersion") == "4.0");
    BOOST_TEST(b.items[1].method == "POST");
    BOOST_TEST(b.items[1].href == "People");
    BOOST_TEST(b.items[1].body == R"({"ID":2,"Name":"Alice"})");
    BOOST_TEST(header(b.items[1], "Content-Type") == "application/json");
    BOOST_TEST(b.items[2].method == "PATCH");
    BOOST_TEST(b.items[2].body == R"({"Name":"Bob"})");
    // No Content-IDs: numbered like JSON items. The changeset is ordered.
    BOOST_TEST(b.items[0].id == "1");
    BOOST_TEST(b.items[1].id == "2");
    BOOST_TEST(b.items[2].id == "3");
    BOOST_TEST(b.items[0].depends_on.empty());
    BOOST_TEST(b.items[1].depends_on.empty());
    BOOST_TEST(b.items[2].depends_on == std::vector<std::string>{"2"});
}

BOOST_AUTO_TEST_CASE(batchelor_google_golden) {
    const auto b = ok(parse(read_data_file("batchelor_google.multipart"), read_data_file("batchelor_google.content-type")));
    BOOST_REQUIRE(b.items.size() == 2u);
    BOOST_TEST(b.items[0].id == "item1:12930812@barnyard.example.com");
    BOOST_TEST(b.items[0].method == "GET");
    BOOST_TEST(b.items[0].href == "/farm/v1/animals/pony");
    BOOST_TEST(!b.items[0].has_body);
    BOOST_TEST(b.items[1].id == "item2:12930812@barnyard.example.com");
    BOOST_TEST(b.items[1].method == "POST");
    BOOST_TEST(b.items[1].href == "/farm/v1/animals");
    BOOST_TEST(header(b.items[1], "Content-Type") == "application/json;");
    BOOST_TEST(b.items[1].body == R"({"name":"sheep","sound":"baa"})");
}

BOOST_AUTO_TEST_CASE(odata_client_changesets_golden) {
    const auto b = ok(parse(read_data_file("odata_client_changesets.multipart"),
                            read_data_file("odata_client_changesets.content-type")));
    // A GET, then one changeset per write; a blank line before each body.
    BOOST_REQUIRE(b.items.size() == 3u);
    BOOST_TEST(!b.items[0].has_body);
    BOOST_TEST(b.items[1].body == R"({"ID":2,"Name":"Alice"})");
    BOOST_TEST(b.items[2].body == R"({"Name":"Bob"})");
    BOOST_TEST(b.items[2].depends_on.empty());  // its own changeset: not ordered after the POST
}

BOOST_AUTO_TEST_CASE(ojs_missing_delimiter_golden) {
    // o.js writes the GET after the changeset's closing delimiter without a
    // delimiter of its own. RFC 2046 would ignore it as the changeset's
    // epilogue; batchgate refuses the batch instead of losing the GET.
    const auto e = refused(parse(read_data_file("ojs_missing_delimiter.multipart"),
                                 read_data_file("ojs_missing_delimiter.content-type")),
                           400, "text after the closing delimiter (--changset_1d5ff904-4127-401d-dc4d-451e279a2002--)");
    BOOST_TEST(e.line == 28u);
}

BOOST_AUTO_TEST_CASE(content_id_with_or_without_angle_brackets) {
    const auto b = ok(parse(part("GET /a HTTP/1.1\r\n", "Content-ID: <item1>\r\n") +
                            part("GET /b HTTP/1.1\r\n", "Content-ID: 7\r\n") + part("GET /c HTTP/1.1\r\n") + "--b1--"));
    BOOST_REQUIRE(b.items.size() == 3u);
    BOOST_TEST(b.items[0].id == "item1");
    BOOST_TEST(b.items[1].id == "7");
    BOOST_TEST(b.items[2].id == "1");
}

BOOST_AUTO_TEST_CASE(version_less_request_lines_and_blank_lines) {
    const auto b = ok(parse(part("\r\n\r\nGET /a\r\nAccept: text/plain\r\n\r\n\r\n") +
                            part("PUT /b\r\nContent-Type: text/plain\r\n\r\nline one\r\nline two\r\n\r\n\r\n") +
                            part("DELETE /c HTTP/1.0\r\n", "Content-Transfer-Encoding: binary\r\n") + "--b1--\r\n"));
    BOOST_REQUIRE(b.items.size() == 3u);
    BOOST_TEST(b.items[0].href == "/a");
    BOOST_TEST(header(b.items[0], "Accept") == "text/plain");
    BOOST_TEST(b.items[1].body == "line one\r\nline two");  // trailing line breaks are layout
    BOOST_TEST(b.items[2].method == "DELETE");
}

BOOST_AUTO_TEST_CASE(a_head_may_end_at_the_delimiter) {
    // Google's documented example: the last header line, then the delimiter.
    const auto b = ok(parse("--b1\r\nContent-Type: application/http\r\n\r\nGET /animals\r\nIf-None-Match: \"etag\"\r\n--b1--"));
    BOOST_REQUIRE(b.items.size() == 1u);
    BOOST_TEST(header(b.items[0], "If-None-Match") == "\"etag\"");
    BOOST_TEST(!b.items[0].has_body);
}

BOOST_AUTO_TEST_CASE(content_length_in_a_part) {
    auto b = ok(parse(part("POST /a HTTP/1.1\r\nContent-Length: 7\r\n\r\nab\r\ncd\r\n\r\n") + "--b1--"));
    BOOST_TEST(b.items[0].body == "ab\r\ncd\r");  // exactly 7 bytes; line breaks may follow
    BOOST_TEST(header(b.items[0], "Content-Length") == "(none)");  // batchgate sets its own
    b = ok(parse(part("POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n") + "--b1--"));
    BOOST_TEST(b.items[0].has_body);
    BOOST_TEST(b.items[0].body.empty());
    auto e = refused(parse(part("POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort") + "--b1--"), 400,
                     "Content-Length says 10 bytes, but the part's body before the next delimiter has 5");
    BOOST_TEST(e.line == 4u);
    refused(parse(part("POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nlonger") + "--b1--"), 400, "Content-Length says 2");
    refused(parse(part("POST /a HTTP/1.1\r\nContent-Length: x\r\n\r\nx") + "--b1--"), 400, "malformed request");
    refused(parse(part("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n") + "--b1--"), 400,
            "Transfer-Encoding in a part is not supported");
}

BOOST_AUTO_TEST_CASE(host_header_in_a_part_names_the_authority) {
    const auto b = ok(parse(part("GET /svc/People HTTP/1.1\r\nHost: example.com\r\n") +
                            part("GET People HTTP/1.1\r\nHost: example.com\r\n") + "--b1--"));
    BOOST_TEST(b.items[0].href == "//example.com/svc/People");  // the resolver checks it is the batch's own
    BOOST_TEST(b.items[1].href == "People");
    BOOST_TEST(header(b.items[0], "Host") == "(none)");
}

BOOST_AUTO_TEST_CASE(malformed_request_lines) {
    auto e = refused(parse(part("GET\r\n") + "--b1--"), 400, "malformed request line (no target");
    BOOST_TEST(e.line == 4u);
    BOOST_TEST(e.message.starts_with("line 4: part 1: "));
    refused(parse(part("GET  /a HTTP/1.1\r\n") + "--b1--"), 400, "malformed request line");
    refused(parse(part("GET /a HTTP/2\r\n") + "--b1--"), 400, "version is not HTTP/1.1");
    refused(parse(part("GET /a HTTP/1.1 extra\r\n") + "--b1--"), 400, "version is not HTTP/1.1");
    refused(parse(part("G(T /a HTTP/1.1\r\n") + "--b1--"), 400, "malformed request");
    refused(parse(part("GET /a HTTP/1.1\r\nbad header\r\n") + "--b1--"), 400, "malformed request");
    refused(parse(part("\r\n\r\n") + "--b1--"), 400, "the part holds no request");
}

BOOST_AUTO_TEST_CASE(part_types) {
    refused(parse("--b1\r\nContent-Type: text/plain\r\n\r\nGET /a\r\n--b1--"), 400, "a part of type text/plain");
    auto e = refused(parse("--b1\r\n\r\nGET /a\r\n--b1--"), 400, "a part without a Content-Type");
    BOOST_TEST(e.line == 2u);
    refused(parse(part("GET /a\r\n", "Content-Transfer-Encoding: base64\r\n") + "--b1--"), 400,
            "Content-Transfer-Encoding base64 is not supported");
}

BOOST_AUTO_TEST_CASE(boundaries_and_delimiters) {
    refused(parse("--b1--", "multipart/mixed"), 400, "no boundary parameter");
    refused(parse("--b1--", "multipart/mixed; boundary=" + std::string(71, 'a')), 400, "1 to 70 characters");
    refused(parse(part("GET /a\r\n")), 400, "without its closing delimiter (--b1--)");
    refused(parse("GET /a HTTP/1.1\r\n"), 400, "no multipart delimiter (--b1)");
    BOOST_TEST(ok(parse("preamble\r\n--b1--\r\nepilogue")).items.empty());
}

BOOST_AUTO_TEST_CASE(changesets_are_ordered_groups) {
    const std::string changeset =
        "--b1\r\nContent-Type: multipart/mixed; boundary=cs1\r\n\r\n"
        "--cs1\r\nContent-Type: application/http\r\nContent-ID: 2\r\n\r\nPATCH users(2) HTTP/1.1\r\n"
        "Content-Type: application/json\r\n\r\n{\"name\":\"Ada\"}\r\n"
        "--cs1\r\nContent-Type: application/http\r\nContent-ID: 3\r\n\r\nDELETE users(3) HTTP/1.1\r\n\r\n"
        "--cs1--\r\n";
    const std::string second =
        "--b1\r\nContent-Type: multipart/mixed; boundary=cs2\r\n\r\n"
        "--cs2\r\nContent-Type: application/http\r\n\r\nPOST /x HTTP/1.1\r\n\r\nx\r\n"
        "--cs2\r\nContent-Type: application/http\r\n\r\nPOST /y HTTP/1.1\r\n\r\ny\r\n--cs2--\r\n";
    const auto b = ok(parse(part("GET /users/1 HTTP/1.1\r\n", "Content-ID: <item1>\r\n") + changeset + second + "--b1--\r\n"));
    BOOST_REQUIRE(b.items.size() == 5u);
    BOOST_TEST(b.items[1].id == "2");
    BOOST_TEST(b.items[1].body == "{\"name\":\"Ada\"}");
    BOOST_TEST(b.items[1].depends_on.empty());
    BOOST_TEST(b.items[2].depends_on == std::vector<std::string>{"2"});
    BOOST_TEST(b.items[3].id == "1");
    BOOST_TEST(b.items[3].depends_on.empty());  // a new changeset starts its own order
    BOOST_TEST(b.items[4].id == "4");
    BOOST_TEST(b.items[4].depends_on == std::vector<std::string>{"1"});
}

BOOST_AUTO_TEST_CASE(changeset_errors) {
    refused(parse("--b1\r\nContent-Type: multipart/mixed; boundary=cs1\r\n\r\n"
                  "--cs1\r\nContent-Type: multipart/mixed; boundary=cs2\r\n\r\n--cs2--\r\n--cs1--\r\n--b1--"),
            400, "nest one changeset deep at most");
    refused(parse("--b1\r\nContent-Type: multipart/mixed\r\n\r\n--cs1--\r\n--b1--"), 400, "changeset: multipart Content-Type has no boundary");
    refused(parse("--b1\r\nContent-Type: multipart/mixed; boundary=cs1\r\n\r\n"
                  "--cs1\r\nContent-Type: application/http\r\n\r\nGET /a\r\n--b1--"),
            400, "changeset: the multipart body ends without its closing delimiter (--cs1--)");
    refused(parse("--b1\r\nContent-Type: multipart/mixed; boundary=cs1\r\n\r\n--b1--"), 400, "changeset: an empty part");
    BOOST_TEST(ok(parse("--b1\r\nContent-Type: multipart/mixed; boundary=cs1\r\n\r\n--cs1--\r\n \r\n--b1--")).items.empty());
    refused(parse("--b1\r\nContent-Type: multipart/mixed; boundary=cs1\r\n\r\n--cs1--\r\nGET /lost\r\n--b1--"), 400,
            "text after the closing delimiter (--cs1--)");
}

BOOST_AUTO_TEST_CASE(dollar_references_are_refused_per_item) {
    const auto b = ok(parse(part("POST /users HTTP/1.1\r\n\r\n{}", "Content-ID: 1\r\n") +
                            part("GET $1/orders HTTP/1.1\r\n", "Content-ID: 2\r\n") +
                            part("GET $metadata HTTP/1.1\r\n") + "--b1--"));
    BOOST_REQUIRE(b.items.size() == 3u);
    BOOST_REQUIRE(b.refused.size() == 1u);
    BOOST_TEST(b.refused[0].first == 1u);
    BOOST_TEST(b.refused[0].second.find("does not resolve $-references") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(limits) {
    batch_parse_limits limits;
    limits.max_items = 2;
    const std::string three = part("GET /a\r\n") + part("GET /b\r\n") + part("GET /c\r\n") + "--b1--";
    refused(parse(three, type, limits), 413, "more than 2 resources");
    limits.max_items = 3;
    BOOST_TEST(ok(parse(three, type, limits)).items.size() == 3u);
    limits.max_part_header_bytes = 64;
    refused(parse(part("GET /a\r\nX-Long: " + std::string(100, 'x') + "\r\n") + "--b1--", type, limits), 431,
            "request head longer than 64 bytes");
    refused(parse(part("GET /a\r\n", "X-Long: " + std::string(100, 'x') + "\r\n") + "--b1--", type, limits), 431,
            "part headers longer than 64 bytes");
    limits = {};
    refused(parse(part("GET /a\r\n", "Content-ID: x\r\n") + part("GET /b\r\n", "Content-ID: <x>\r\n") + "--b1--"), 400,
            "duplicate id 'x'");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
