// The MIME delimiter scan (RFC 2046 §5.1.1), fed whole and in every split:
// CRLF ownership, preamble, epilogue, transport padding, a boundary inside a
// body, a missing close, the 70-character bound.
#include "proxy/batch/mime_multipart.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace BATCHGATE_TEST_FILE {

using namespace batchgate;

namespace {

struct recorded_part {
    mime_headers headers;
    std::size_t line = 0;
    std::string body;
    bool ended = false;
};

class recorder final : public mime_part_handler {
public:
    std::vector<recorded_part> parts;
    bool on_part_begin(mime_headers headers, std::size_t line) override {
        parts.push_back({std::move(headers), line, {}, false});
        return true;
    }
    bool on_part_data(std::string_view bytes, std::size_t) override {
        BOOST_REQUIRE(!parts.empty());
        parts.back().body.append(bytes);
        return true;
    }
    bool on_part_end() override {
        BOOST_REQUIRE(!parts.empty());
        parts.back().ended = true;
        return true;
    }
};

struct scan_result {
    std::vector<recorded_part> parts;
    std::optional<mime_scan_error> error;
};

scan_result scan(std::string_view body, std::size_t piece = 0, std::size_t max_header_bytes = 16384) {
    recorder r;
    mime_multipart_scanner scanner("b1", r, max_header_bytes);
    bool ok = true;
    if (piece == 0) {
        ok = scanner.feed(body);
    } else {
        for (std::size_t i = 0; ok && i < body.size(); i += piece) ok = scanner.feed(body.substr(i, piece));
    }
    if (ok) scanner.finish();
    return {std::move(r.parts), scanner.error()};
}

// The same result whole, a byte at a time and split at every offset.
scan_result scan_every_way(std::string_view body) {
    const auto whole = scan(body);
    const auto check_same = [&](const scan_result& other, const std::string& how) {
        BOOST_TEST_CONTEXT(how) {
            BOOST_TEST(other.error.has_value() == whole.error.has_value());
            BOOST_REQUIRE(other.parts.size() == whole.parts.size());
            for (std::size_t i = 0; i < whole.parts.size(); ++i) {
                BOOST_TEST(other.parts[i].body == whole.parts[i].body);
                BOOST_TEST(other.parts[i].headers == whole.parts[i].headers);
                BOOST_TEST(other.parts[i].line == whole.parts[i].line);
                BOOST_TEST(other.parts[i].ended == whole.parts[i].ended);
            }
        }
    };
    check_same(scan(body, 1), "one byte at a time");
    for (std::size_t split = 1; split < body.size(); ++split) {
        recorder r;
        mime_multipart_scanner scanner("b1", r, 16384);
        bool ok = scanner.feed(body.substr(0, split)) && scanner.feed(body.substr(split));
        if (ok) scanner.finish();
        check_same({std::move(r.parts), scanner.error()}, "split at " + std::to_string(split));
    }
    return whole;
}

std::string boundary_of(std::string_view content_type) {
    std::string why;
    auto b = multipart_boundary(content_type, why);
    BOOST_REQUIRE_MESSAGE(b, "no boundary: " << why);
    return *b;
}

std::string boundary_error(std::string_view content_type) {
    std::string why;
    BOOST_TEST(!multipart_boundary(content_type, why));
    return why;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(mime_multipart)

BOOST_AUTO_TEST_CASE(boundary_parameter) {
    BOOST_TEST(boundary_of("multipart/mixed; boundary=b1") == "b1");
    BOOST_TEST(boundary_of("multipart/mixed;boundary=batch_1c35-a0f3") == "batch_1c35-a0f3");
    BOOST_TEST(boundary_of("multipart/mixed; charset=utf-8; BOUNDARY=\"a b:c\"") == "a b:c");
    BOOST_TEST(boundary_of("multipart/mixed; boundary=\"x\"; foo=bar") == "x");
    const std::string seventy(70, 'a');
    BOOST_TEST(boundary_of("multipart/mixed; boundary=" + seventy) == seventy);
    BOOST_TEST(boundary_error("multipart/mixed; boundary=" + seventy + "a").find("1 to 70") != std::string::npos);
    BOOST_TEST(boundary_error("multipart/mixed").find("no boundary") != std::string::npos);
    BOOST_TEST(boundary_error("multipart/mixed; charset=utf-8").find("no boundary") != std::string::npos);
    BOOST_TEST(boundary_error("multipart/mixed; boundary=").find("1 to 70") != std::string::npos);
    BOOST_TEST(boundary_error("multipart/mixed; boundary=\"a b \"").find("does not allow") != std::string::npos);
    BOOST_TEST(boundary_error("multipart/mixed; boundary=a<b").find("does not allow") != std::string::npos);
    BOOST_TEST(boundary_error("multipart/mixed; boundary=\"open").find("unterminated") != std::string::npos);
    BOOST_TEST(boundary_error("multipart/mixed; boundary=a; boundary=b").find("two boundary") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_crlf_before_a_delimiter_belongs_to_it) {
    const auto r = scan_every_way("--b1\r\nA: 1\r\n\r\nfirst\r\n\r\n--b1\r\nA: 2\r\n\r\nsecond\r\n--b1--\r\n");
    BOOST_REQUIRE(!r.error);
    BOOST_REQUIRE(r.parts.size() == 2u);
    BOOST_TEST(r.parts[0].body == "first\r\n");  // one CRLF is the body's, the next the delimiter's
    BOOST_TEST(r.parts[1].body == "second");
    BOOST_TEST(r.parts[0].headers == (mime_headers{{"A", "1"}}));
    BOOST_TEST(r.parts[0].line == 2u);
    BOOST_TEST(r.parts[1].line == 7u);
    BOOST_TEST(r.parts[1].ended);
}

BOOST_AUTO_TEST_CASE(preamble_and_epilogue_are_ignored) {
    const auto r = scan_every_way(
        "This is a preamble.\r\n--b1 is not this line\r\nx--b1\r\n--b1\r\n\r\nbody\r\n--b1--\r\nepilogue --b1\r\n--b1\r\n");
    BOOST_REQUIRE(!r.error);
    BOOST_REQUIRE(r.parts.size() == 1u);
    BOOST_TEST(r.parts[0].body == "body");
    BOOST_TEST(r.parts[0].headers.empty());
}

BOOST_AUTO_TEST_CASE(transport_padding_after_a_boundary) {
    const auto r = scan_every_way("--b1 \t \r\nA: 1\r\n\r\none\r\n--b1   \r\n\r\ntwo\r\n--b1--  trailing\r\n");
    BOOST_REQUIRE(!r.error);
    BOOST_REQUIRE(r.parts.size() == 2u);
    BOOST_TEST(r.parts[0].body == "one");
    BOOST_TEST(r.parts[1].body == "two");
}

BOOST_AUTO_TEST_CASE(boundary_text_inside_a_body_is_content) {
    // Not at a line start, or followed by something other than padding and a
    // line break or "--": the text only began like a delimiter.
    const std::string body = "a --b1 b\r\n--b1x\r\n--b10\r\n --b1\r\n--b1 x\r\nend";
    const auto r = scan_every_way("--b1\r\n\r\n" + body + "\r\n--b1--");
    BOOST_REQUIRE(!r.error);
    BOOST_REQUIRE(r.parts.size() == 1u);
    BOOST_TEST(r.parts[0].body == body);
}

BOOST_AUTO_TEST_CASE(bare_lf_line_breaks_are_accepted) {
    const auto r = scan_every_way("--b1\nA: 1\n\nline\n\n--b1\n\nx\n--b1--\n");
    BOOST_REQUIRE(!r.error);
    BOOST_REQUIRE(r.parts.size() == 2u);
    BOOST_TEST(r.parts[0].body == "line\n");
    BOOST_TEST(r.parts[1].body == "x");
}

BOOST_AUTO_TEST_CASE(empty_bodies_and_headers_without_a_blank_line) {
    const auto r = scan_every_way("--b1\r\nA: 1\r\n\r\n--b1\r\nB: 2\r\n--b1\r\n\r\n\r\n--b1--");
    BOOST_REQUIRE(!r.error);
    BOOST_REQUIRE(r.parts.size() == 3u);
    BOOST_TEST(r.parts[0].body.empty());
    BOOST_TEST(r.parts[1].headers == (mime_headers{{"B", "2"}}));
    BOOST_TEST(r.parts[1].body.empty());
    BOOST_TEST(r.parts[2].body.empty());
    for (const auto& p : r.parts) BOOST_TEST(p.ended);
}

BOOST_AUTO_TEST_CASE(folded_header_lines) {
    const auto r = scan_every_way("--b1\r\nContent-Type: multipart/mixed;\r\n boundary=cs\r\n\r\nx\r\n--b1--");
    BOOST_REQUIRE(!r.error);
    BOOST_REQUIRE(r.parts.size() == 1u);
    BOOST_TEST(r.parts[0].headers == (mime_headers{{"Content-Type", "multipart/mixed; boundary=cs"}}));
}

BOOST_AUTO_TEST_CASE(a_missing_close_is_an_error) {
    for (std::string body : {"--b1\r\n\r\nbody", "--b1\r\n\r\nbody\r\n--b1", "--b1\r\n\r\nbody\r\n--b1-",
                             "--b1\r\n\r\nbody\r\n--b1\r\n"}) {
        const auto r = scan_every_way(body);
        BOOST_REQUIRE_MESSAGE(r.error, "no error for " << body);
        BOOST_TEST(r.error->message.find("without its closing delimiter (--b1--)") != std::string::npos);
    }
    const auto none = scan_every_way("no delimiter at all\r\n-- b1\r\n");
    BOOST_REQUIRE(none.error);
    BOOST_TEST(none.error->message.find("no multipart delimiter") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(zero_parts) {
    const auto r = scan_every_way("--b1--\r\n");
    BOOST_TEST(!r.error);
    BOOST_TEST(r.parts.empty());
}

BOOST_AUTO_TEST_CASE(malformed_and_oversized_part_headers) {
    auto r = scan("--b1\r\nno colon here\r\n\r\n--b1--");
    BOOST_REQUIRE(r.error);
    BOOST_TEST(r.error->message.find("malformed part header") != std::string::npos);
    BOOST_TEST(r.error->line == 2u);
    r = scan("--b1\r\n folded first\r\n\r\n--b1--");
    BOOST_REQUIRE(r.error);
    BOOST_TEST(r.error->message.find("folded") != std::string::npos);
    r = scan("--b1\r\nA: " + std::string(200, 'x') + "\r\n\r\n--b1--", 7, 100);
    BOOST_REQUIRE(r.error);
    BOOST_TEST(r.error->headers_too_large);
    BOOST_TEST(r.error->message.find("longer than 100 bytes") != std::string::npos);
    // A header line that never ends is refused once it passes the bound,
    // without waiting for the rest.
    recorder rec;
    mime_multipart_scanner scanner("b1", rec, 100);
    BOOST_TEST(scanner.feed("--b1\r\nA: "));
    BOOST_TEST(!scanner.feed(std::string(200, 'x')));
    BOOST_TEST(scanner.error()->headers_too_large);
}

BOOST_AUTO_TEST_CASE(the_header_bound_does_not_depend_on_where_reads_split) {
    // Found by fuzz/batch_parsers_fuzz.cpp: a header block of exactly the
    // bound passed whole but failed split before its blank line's LF, and a
    // delimiter line that waited for its next byte was counted twice.
    const std::string exact = "A: " + std::string(100 - 5, 'x') + "\r\n";  // 100 bytes counted
    for (const std::string& tail : {std::string("\r\n\r\nbody\r\n--b1--"), std::string("--b1\r\n\r\nx\r\n--b1--")}) {
        const std::string body = "--b1\r\n" + exact + tail;
        for (std::size_t piece : {std::size_t(0), std::size_t(1), std::size_t(3), std::size_t(4), std::size_t(7)}) {
            const auto r = scan(body, piece, 100);
            BOOST_TEST(!r.error, "piece " << piece << ": " << (r.error ? r.error->message : ""));
        }
        const auto over = scan("--b1\r\nB: 1\r\n" + exact + tail, 1, 100);
        BOOST_TEST(over.error.has_value());
    }
}

BOOST_AUTO_TEST_CASE(a_handler_can_stop_the_scan) {
    class stopper final : public mime_part_handler {
    public:
        bool on_part_begin(mime_headers, std::size_t) override { return false; }
        bool on_part_data(std::string_view, std::size_t) override { return true; }
        bool on_part_end() override { return true; }
    } handler;
    mime_multipart_scanner scanner("b1", handler, 100);
    BOOST_TEST(!scanner.feed("--b1\r\n\r\nx\r\n--b1--"));
    BOOST_TEST(!scanner.error());  // the handler's error is the handler's to report
    BOOST_TEST(!scanner.finish());
}

BOOST_AUTO_TEST_CASE(a_70_character_boundary_across_reads) {
    const std::string b(70, 'z');
    recorder r;
    mime_multipart_scanner scanner(b, r, 16384);
    const std::string body = "--" + b + "\r\n\r\n" + std::string(1000, 'q') + "\r\n--" + b + "--";
    for (char c : body) BOOST_REQUIRE(scanner.feed(std::string_view(&c, 1)));
    BOOST_TEST(scanner.finish());
    BOOST_REQUIRE(r.parts.size() == 1u);
    BOOST_TEST(r.parts[0].body == std::string(1000, 'q'));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
