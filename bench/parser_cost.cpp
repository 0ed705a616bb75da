// Parse cost per item of each batch format, for callgrind (bench/parser_cost.sh):
// builds one batch of N GET items in the format asked for, parses it R times
// with the same code the proxy runs (parser + finish_batch), and prints how
// many items came out so the work cannot be optimized away. No sockets.
//
//   parser_cost FORMAT N [R]     FORMAT: json | xml | multipart
#include "proxy/batch/batch_parser.hpp"
#include "proxy/batch/multipart_batch.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

std::string json_body(std::size_t n) {
    std::string s = R"({"requests":[)";
    for (std::size_t i = 1; i <= n; ++i) {
        if (i != 1) s += ',';
        s += R"({"id":")" + std::to_string(i) + R"(","method":"GET","url":"/users/)" + std::to_string(i) +
             R"(","headers":{"Accept":"application/json"}})";
    }
    return s + "]}";
}

std::string xml_body(std::size_t n) {
    std::string s = R"(<batch xmlns="urn:batchgate:batch" xmlns:D="DAV:">)";
    for (std::size_t i = 1; i <= n; ++i) {
        s += R"(<request id=")" + std::to_string(i) + R"(" method="GET"><D:href>/users/)" + std::to_string(i) +
             R"(</D:href><header name="Accept">application/json</header></request>)";
    }
    return s + "</batch>";
}

std::string multipart_body(std::size_t n) {
    std::string s;
    for (std::size_t i = 1; i <= n; ++i) {
        s += "--batch_36522ad7\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: " +
             std::to_string(i) + "\r\n\r\nGET /users/" + std::to_string(i) + " HTTP/1.1\r\nAccept: application/json\r\n\r\n";
    }
    return s + "--batch_36522ad7--\r\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: parser_cost json|xml|multipart ITEMS [REPEATS]\n");
        return 2;
    }
    const std::string_view format = argv[1];
    const std::size_t n = std::strtoul(argv[2], nullptr, 10);
    const std::size_t repeats = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 1;
    batchgate::batch_parse_limits limits;
    limits.max_items = n;
    const std::string body = format == "json" ? json_body(n) : format == "xml" ? xml_body(n) : multipart_body(n);
    std::size_t items = 0;
    for (std::size_t r = 0; r < repeats; ++r) {
        batchgate::batch_parse_result parsed;
        if (format == "json") {
            parsed = batchgate::parse_json_batch(body, limits);
        } else if (format == "xml") {
            parsed = batchgate::parse_xml_batch(body, limits);
        } else {
            // Fed in 16 KiB pieces, as the proxy's relay buffer hands them on.
            batchgate::multipart_batch_parser parser("multipart/mixed; boundary=batch_36522ad7", limits);
            for (std::size_t at = 0; at < body.size(); at += 16384) parser.feed(std::string_view(body).substr(at, 16384));
            parsed = parser.finish();
        }
        if (parsed.error) {
            std::fprintf(stderr, "parse error: %s\n", parsed.error->message.c_str());
            return 1;
        }
        items += parsed.batch->items.size();
    }
    std::printf("%zu items, %zu body bytes per batch\n", items, body.size());
    return 0;
}
