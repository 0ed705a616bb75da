// Plain types of a batch: what the parsers produce, what fan-out consumes,
// and what the 207 writers turn into <D:response> entries. No behaviour.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace batchgate {

using header_list = std::vector<std::pair<std::string, std::string>>;

// One resource to act on. An XML <request> with several <D:href>s becomes
// several items that share id, method, headers, body and depends_on.
struct batch_item {
    std::string id;      // the client's id, or one batchgate assigned ("1", "2", …)
    std::string method;  // as written; validated later, per item
    std::string href;    // the target as the client wrote it; fan-out resolves a relative one first
    header_list headers;  // the item's own headers, as written
    std::string body;     // bytes to send (JSON values already serialized, base64 decoded)
    bool has_body = false;
    bool body_is_json = false;  // JSON `body` was a JSON value: default Content-Type application/json
    std::vector<std::string> depends_on;  // ids; an id names every item that carries it
};

struct batch_request {
    header_list headers;  // batch-level headers ("headers" / <header>): defaults for every item
    std::vector<batch_item> items;
    // Items answered 400 B:bad-request without being sent, by index into
    // items, ascending (rare: kept out of batch_item so that every item does
    // not pay for a string it almost never has).
    std::vector<std::pair<std::size_t, std::string>> refused;
};

// A whole-batch refusal (PRODUCT.md §2.2): answered with `status` and a
// problem+json body; line/column are 1-based, 0 when not applicable.
struct batch_error {
    unsigned status = 400;
    std::string message;
    std::size_t line = 0;
    std::size_t column = 0;
};

// batchgate's own failure conditions, the D:error child element (B:...).
enum class item_condition {
    none,
    no_route,             // 404
    bad_target,           // 400
    bad_request,          // 400
    upstream_failure,     // 502
    response_too_large,   // 502
    upstream_timeout,     // 504
    overloaded,           // 503
    failed_dependency,    // 424
};

// One finished resource, ready to be written as a 207 entry.
struct item_result {
    std::string href;  // the item's resolved target (the writer escapes it)
    std::string id;    // empty: no B:id element
    unsigned status = 0;  // never 1xx
    header_list headers;  // backend's end-to-end headers (hop-by-hop already removed)
    std::string body;     // backend's body bytes
    std::optional<std::string> location;  // for 201 and 3xx: the backend's Location
    item_condition condition = item_condition::none;
    std::string description;  // human text for D:responsedescription ("" = none)
};

}  // namespace batchgate
