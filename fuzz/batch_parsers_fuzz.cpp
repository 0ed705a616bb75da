// libFuzzer target for the three batch parsers (pure code, no sockets).
// The first byte picks the format; for multipart the second byte sets the
// size of the pieces the body is fed in, and the result must be the same as
// feeding it whole (the scan must not depend on where reads split).
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DBATCHGATE_FUZZ=ON
//   cmake --build build-fuzz --target fuzz_batch_parsers && build-fuzz/fuzz_batch_parsers -max_total_time=60
#include "proxy/batch/batch_parser.hpp"
#include "proxy/batch/multipart_batch.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
    batchgate::batch_parse_limits limits;
    limits.max_items = 64;
    limits.max_part_header_bytes = 256;
    switch (data[0] % 3) {
    case 0: batchgate::parse_json_batch(body, limits); break;
    case 1: batchgate::parse_xml_batch(body, limits); break;
    default: {
        constexpr std::string_view type = "multipart/mixed; boundary=b1";
        const auto whole = batchgate::parse_multipart_batch(type, body, limits);
        const std::size_t piece = 1 + data[1] % 17;
        batchgate::multipart_batch_parser parser(type, limits);
        for (std::size_t at = 0; at < body.size(); at += piece) {
            if (!parser.feed(body.substr(at, piece))) break;
        }
        const auto pieces = parser.finish();
        if (whole.error.has_value() != pieces.error.has_value()) std::abort();
        if (whole.error && whole.error->message != pieces.error->message) std::abort();
        if (whole.batch && whole.batch->items.size() != pieces.batch->items.size()) std::abort();
        if (whole.batch) {
            for (std::size_t i = 0; i < whole.batch->items.size(); ++i) {
                if (whole.batch->items[i].body != pieces.batch->items[i].body) std::abort();
                if (whole.batch->items[i].href != pieces.batch->items[i].href) std::abort();
            }
        }
    }
    }
    return 0;
}
