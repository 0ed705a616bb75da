// The 207 Multi-Status writer (PRODUCT.md §2, §2.1): item_result -> one
// <D:response> (XML) or one Graph-style object (JSON), written piece by piece
// so the handler can stream each entry as its item finishes; plus the reader
// that flattens a backend's own XML 207 into item_results. Pure code.
//
// Choices a reader of the output should know (see also multistatus.cpp):
// - XML text content escapes & < > and CR (as &#13;, so CRLF survives XML
//   line-end normalisation); " and ' stay literal in text, as in the PRODUCT.md
//   example. Attribute values escape & < > " ' and TAB/LF/CR.
// - "Text" means valid UTF-8 holding only XML 1.0 characters (no C0 controls
//   other than TAB/LF/CR, no U+FFFE/U+FFFF; surrogates are invalid UTF-8).
//   A body that is not text is written as base64 (B:body encoding="base64" /
//   {"base64":…}); the same test decides in both formats.
// - A header value that is not text is written as
//   <B:header name="…" encoding="base64">…</B:header> (lossless); in JSON,
//   control characters are JSON-escaped and invalid UTF-8 becomes U+FFFD.
// - id, description and header names that are not text have each offending
//   byte/character replaced by U+FFFD (lossy; these are never binary).
// - hrefs (D:href, D:location, JSON "href"/"location") are URI-escaped, then
//   XML-escaped; a Location keeps its fragment ('#'), an item href does not.
// - A status outside 200..999 (1xx above all, or 0) is never written: the entry
//   becomes 502 with B:upstream-failure (unless it already carries a
//   condition), without the backend's headers, body or location.
// - JSON header names are lower-cased; repeated names are joined with ", ",
//   except set-cookie, which is always an array of strings.
// - JSON "body" is embedded verbatim when the Content-Type is application/json
//   or */*+json and the bytes are one valid JSON value (verbatim keeps number
//   precision); otherwise a string when text, otherwise {"base64":…}. An empty
//   body is omitted in both formats.
// - JSON: "error":{"code","message"} for batchgate's conditions; a description
//   without a condition (from a flattened backend 207) is "description".
#pragma once

#include "proxy/batch/batch.hpp"

#include <boost/json/serializer.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace batchgate {

enum class multistatus_format { xml, json };

class multistatus_writer {
public:
    // minimal: Prefer: return=minimal — omit headers and bodies, keep the rest.
    multistatus_writer(multistatus_format format, bool minimal);

    std::string_view content_type() const;  // application/xml; charset=utf-8 (unquoted: PRODUCT.md §2) | application/json
    std::string begin() const;               // XML declaration + <D:multistatus …> | {"responses":[
    std::string entry(const item_result& result);  // one entry; JSON: with the comma before it when not first
    std::string end() const;                 // </D:multistatus> | ]}

    // Appending forms of entry(), for callers that batch several entries into one buffer.
    void append_entry(std::string& out, const item_result& result);

private:
    void append_xml(std::string& out, const item_result& r) const;
    void append_json(std::string& out, const item_result& r);
    void append_json_string(std::string& out, std::string_view s);

    multistatus_format format_;
    bool minimal_;
    bool first_ = true;
    boost::json::serializer json_;  // reused for every JSON string
};

// Bounds for reading a backend's 207; the defaults suit any sane WebDAV answer.
struct nested_multistatus_limits {
    std::size_t max_bytes = 16u << 20;   // larger bodies are not parsed (nullopt)
    std::size_t max_depth = 32;          // element nesting
    std::size_t max_attributes = 16;     // per element
    std::size_t max_responses = 100000;  // D:href entries produced
};

// A backend answer that is itself an XML 207 Multi-Status: its inner
// <D:response> elements as item_results (one per D:href; href, status, B:id,
// D:responsedescription, D:location/D:href, a D:error child that is one of
// batchgate's conditions, B:header and B:body, base64 decoded when so marked).
// nullopt when the body is not a well-formed DAV multistatus that can be
// flattened without loss: not XML, DOCTYPE/entity declarations, limits
// exceeded, root not DAV:multistatus, a response without href or status, a
// status that is not "HTTP/x.y NNN …", bad base64, no response at all (the
// item would vanish), or any response with D:propstat (a PROPFIND/PROPPATCH
// report: flattening would drop the properties) — the caller then keeps the
// whole answer as an ordinary body.
std::optional<std::vector<item_result>> parse_nested_multistatus(std::string_view body,
                                                                 const nested_multistatus_limits& limits = {});

// Reason phrase for a status code (RFC 9110 / IANA names, e.g. 424 -> "Failed
// Dependency"); "Unknown" for unregistered codes.
std::string_view reason_phrase(unsigned status);

// The element / JSON code name of a condition ("upstream-timeout"); "" for none.
std::string_view condition_name(item_condition condition);

}  // namespace batchgate
