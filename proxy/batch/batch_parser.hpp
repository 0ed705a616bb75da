// Batch request bodies → batch_request (PRODUCT.md §1), or one whole-batch
// error (§2.2) with a status and, where it helps, a 1-based line:column.
//
// Every format parser does only the format-specific part: it turns the body
// into a batch_draft (one draft_request per request of the document, each with
// its hrefs, its explicit id if any and where it was written). finish_batch()
// then does everything the formats share — resource count, ids (unique,
// non-empty, missing ones numbered), header names, dependsOn (known ids, no
// cycles) and the expansion into one batch_item per href. A third parser
// (multipart/mixed, multipart_batch.hpp) only produces a batch_draft.
#pragma once

#include "proxy/batch/batch.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace batchgate {

struct batch_parse_limits {
    std::size_t max_items = 1000;  // resources (JSON requests, XML hrefs) → 413 past it
    std::size_t max_json_depth = 32;
    std::size_t max_xml_depth = 32;
    std::size_t max_xml_attributes = 16;  // per element, namespace declarations not counted
    // An XML <request> with N hrefs is expanded into N items that each carry a
    // copy of its body and headers, so a body within max_body_bytes could still
    // grow N-fold in memory. Bytes copied into the second and further items of
    // every request (body, headers, id, method, dependsOn), summed over the
    // batch, past this → 413. JSON requests (one url each) never copy.
    std::size_t max_expanded_bytes = 64 * 1024 * 1024;
    // multipart/mixed: each part's MIME headers, and the request head inside
    // an application/http part, are bounded like a request head → 431 past it.
    std::size_t max_part_header_bytes = 16 * 1024;
};

// Exactly one of the two is set.
struct batch_parse_result {
    std::optional<batch_request> batch;
    std::optional<batch_error> error;
};

// One request of a batch document as a format parser read it, before the
// shared checks. Several hrefs: the same operation on each resource.
struct draft_request {
    std::optional<std::string> id;  // nullopt: none written, finish_batch assigns one
    std::string method;
    std::vector<std::string> hrefs;
    header_list headers;
    std::string body;
    bool has_body = false;
    bool body_is_json = false;
    std::vector<std::string> depends_on;  // ids, or names of atomicity groups (all of their requests)
    // OData atomicityGroup / multipart changeset: the requests of one group
    // run in document order, each after the one before succeeded (424
    // otherwise). "" = in no group.
    std::string group;
    // Not sent: answered 400 B:bad-request with this text (a `$1`-style
    // reference to another item, which batchgate cannot resolve).
    std::string refusal;

    // For error messages: what the format calls this request ("requests[3]",
    // "<request>") and where it starts (1-based; 0 when unknown).
    std::string label;
    std::size_t line = 0;
    std::size_t column = 0;
};

struct batch_draft {
    header_list headers;  // batch-level
    std::vector<draft_request> requests;
};

// Content-Type application/json: the Microsoft Graph $batch shape.
batch_parse_result parse_json_batch(std::string_view body, const batch_parse_limits& limits);

// Content-Type application/xml or text/xml: <batch xmlns="urn:batchgate:batch">.
batch_parse_result parse_xml_batch(std::string_view body, const batch_parse_limits& limits);

// The checks and the expansion shared by every format (see the top of this
// file). Ids missing from the draft get the smallest positive integers that no
// explicit id uses, in document order, one per request (shared by its hrefs).
batch_parse_result finish_batch(batch_draft draft, const batch_parse_limits& limits);

// Standard base64 (RFC 4648 §4), padding optional but correct where present.
// With skip_whitespace, ASCII whitespace anywhere is ignored (line-wrapped XML
// text). nullopt on any other character or a malformed length/padding.
std::optional<std::string> decode_base64(std::string_view text, bool skip_whitespace);

}  // namespace batchgate
