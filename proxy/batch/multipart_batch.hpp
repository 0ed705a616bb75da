// Content-Type multipart/mixed batches (PRODUCT.md §1.3: OData 4.01 and
// Google batch) → batch_draft → finish_batch(), fed the body as it arrives.
//
// Each part is application/http (one HTTP/1.1 request: its head parsed by
// Beast's request parser, its body running to the next delimiter) or a
// nested multipart/mixed, an OData changeset, whose requests become one
// ordered group (batch_parser.hpp: draft_request::group). What real clients
// write is taken as they write it:
// - Google's documented examples leave the HTTP version off the request line;
// - OData clients put blank lines before the request line and after a body,
//   and mark parts Content-Transfer-Encoding: binary;
// - Content-ID comes with or without angle brackets, and names the item;
// - a request head may end at the delimiter without its blank line.
// Without a Content-Length, line breaks before and after a body are the
// client's layout and are dropped (@odata/client writes a blank line before
// each JSON body, most clients one after it); with one, the body is exactly
// that long and only line breaks may follow it.
#pragma once

#include "proxy/batch/batch_parser.hpp"

#include <memory>
#include <string_view>

namespace batchgate {

class multipart_batch_parser {
public:
    // content_type: the batch request's whole Content-Type value (for its boundary).
    multipart_batch_parser(std::string_view content_type, const batch_parse_limits& limits);
    ~multipart_batch_parser();
    multipart_batch_parser(const multipart_batch_parser&) = delete;
    multipart_batch_parser& operator=(const multipart_batch_parser&) = delete;

    // false once the batch is refused (finish() then says why); the rest of
    // the body need not be fed.
    bool feed(std::string_view bytes);
    // The body is complete: the batch, or the first error found.
    batch_parse_result finish();

private:
    class impl;
    std::unique_ptr<impl> impl_;
};

// The whole body at once (tests, fuzzing).
batch_parse_result parse_multipart_batch(std::string_view content_type, std::string_view body,
                                         const batch_parse_limits& limits);

}  // namespace batchgate
