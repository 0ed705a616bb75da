#include "proxy/batch/multistatus.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse_options.hpp>

#include <expat.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <memory>

namespace batchgate {

namespace {

constexpr std::string_view replacement_char = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view batch_ns = "urn:batchgate:batch";
constexpr std::string_view dav_ns = "DAV:";

// ---------------------------------------------------------------- characters

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no
// overlongs, no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t& cp) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t len;
    char32_t min;
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2, min = 0x80, cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3, min = 0x800, cp = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4, min = 0x10000, cp = b0 & 0x07;
    } else {
        return 0;
    }
    if (s.size() - i < len) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

// XML 1.0 Char production.
bool is_xml_char(char32_t c) {
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0x10FFFF);
}

// "Text": valid UTF-8 made only of XML 1.0 characters. Decides text vs base64
// for bodies and header values, in XML and JSON alike.
bool is_text(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b >= 0x20 && b < 0x80) {
            ++i;
            continue;
        }
        char32_t cp;
        const auto n = utf8_sequence(s, i, cp);
        if (n == 0 || !is_xml_char(cp)) return false;
        i += n;
    }
    return true;
}

bool is_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp;
        const auto n = utf8_sequence(s, i, cp);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

// Copies s, replacing each invalid UTF-8 byte (and, for XML, each character
// XML 1.0 cannot carry) with U+FFFD.
std::string sanitized(std::string_view s, bool xml) {
    std::string out;
    out.reserve(s.size() + 8);
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp;
        const auto n = utf8_sequence(s, i, cp);
        if (n == 0) {
            out += replacement_char;
            ++i;
        } else if (xml && !is_xml_char(cp)) {
            out += replacement_char;
            i += n;
        } else {
            out.append(s.data() + i, n);
            i += n;
        }
    }
    return out;
}

// XML escaping. Text content: only what XML requires, plus CR so CRLF
// survives line-end normalisation; " and ' stay literal (as in PRODUCT.md §2).
// Attribute values: all five entities, and the whitespace that attribute-value
// normalisation would otherwise turn into spaces.
std::string_view xml_entity(char c, bool attribute) {
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '\r': return "&#13;";
    case '"': return attribute ? "&quot;" : std::string_view{};
    case '\'': return attribute ? "&apos;" : std::string_view{};
    case '\t': return attribute ? "&#9;" : std::string_view{};
    case '\n': return attribute ? "&#10;" : std::string_view{};
    default: return {};
    }
}

void append_xml_escaped(std::string& out, std::string_view s, bool attribute) {
    std::size_t done = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const std::string_view rep = xml_entity(s[i], attribute);
        if (rep.empty()) continue;
        out.append(s.data() + done, i - done);
        out += rep;
        done = i + 1;
    }
    out.append(s.data() + done, s.size() - done);
}

void append_xml_text(std::string& out, std::string_view s) { append_xml_escaped(out, s, false); }
void append_xml_attr(std::string& out, std::string_view s) { append_xml_escaped(out, s, true); }

void append_xml_text_sanitized(std::string& out, std::string_view s) {
    if (is_text(s))
        append_xml_text(out, s);
    else
        append_xml_text(out, sanitized(s, true));
}

void append_xml_attr_sanitized(std::string& out, std::string_view s) {
    if (is_text(s))
        append_xml_attr(out, s);
    else
        append_xml_attr(out, sanitized(s, true));
}

// ---------------------------------------------------------------- URIs

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }

// RFC 3986 pchar minus pct-encoded, plus '/' and '?' (path and query).
bool is_uri_char(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '-': case '.': case '_': case '~':                          // unreserved
    case '!': case '$': case '&': case '\'': case '(': case ')':     // sub-delims
    case '*': case '+': case ',': case ';': case '=':
    case ':': case '@': case '/': case '?':
        return true;
    default:
        return false;
    }
}

// Percent-encodes every byte RFC 3986 does not allow in a path or query, keeps
// well-formed %XX as is (no double encoding). With keep_fragment the first '#'
// survives (a Location may carry a fragment). The result is ASCII with no XML
// specials except '&' and '\''.
void append_uri_escaped(std::string& out, std::string_view s, bool keep_fragment) {
    static constexpr char hex[] = "0123456789ABCDEF";
    bool fragment_seen = !keep_fragment;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (is_uri_char(c) || (c == '%' && i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2]))) {
            out += static_cast<char>(c);
        } else if (c == '#' && !fragment_seen) {
            fragment_seen = true;
            out += '#';
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
    }
}

void append_href_xml(std::string& out, std::string_view href, bool keep_fragment) {
    std::string escaped;
    escaped.reserve(href.size() + 16);
    append_uri_escaped(escaped, href, keep_fragment);
    append_xml_text(out, escaped);  // '&' is the only XML special left
}

// ---------------------------------------------------------------- base64

void append_base64(std::string& out, std::string_view in) {
    constexpr std::size_t chunk = 3 * 16384;  // EVP_EncodeBlock takes an int
    const std::size_t start = out.size();
    out.resize(start + 4 * ((in.size() + 2) / 3) + 1);
    auto* dst = reinterpret_cast<unsigned char*>(out.data() + start);
    std::size_t written = 0;
    for (std::size_t pos = 0; pos < in.size(); pos += chunk) {
        const std::size_t n = std::min(chunk, in.size() - pos);
        written += static_cast<std::size_t>(
            EVP_EncodeBlock(dst + written, reinterpret_cast<const unsigned char*>(in.data() + pos), static_cast<int>(n)));
    }
    out.resize(start + written);
}

// Strict base64 (ASCII whitespace anywhere is ignored, as pretty-printers wrap it).
bool decode_base64(std::string_view in, std::string& out) {
    std::string compact;
    compact.reserve(in.size());
    for (char c : in)
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') compact += c;
    if (compact.size() % 4 != 0) return false;
    if (compact.size() > INT_MAX) return false;
    std::size_t padding = 0;
    if (!compact.empty() && compact.back() == '=') ++padding;
    if (compact.size() >= 2 && compact[compact.size() - 2] == '=') ++padding;
    out.resize(compact.size() / 4 * 3);
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(compact.data()), static_cast<int>(compact.size()));
    if (n < 0 || static_cast<std::size_t>(n) < padding) return false;
    out.resize(static_cast<std::size_t>(n) - padding);
    return true;
}

// ---------------------------------------------------------------- JSON bodies

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
           });
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
}

std::string_view trim(std::string_view s, std::string_view ws = " \t\r\n") {
    const auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// application/json or any */*+json (problem+json, vnd.api+json, …).
bool has_json_content_type(const header_list& headers) {
    for (const auto& [name, value] : headers) {
        if (!iequals(name, "content-type")) continue;
        const auto type = lowercase(trim(std::string_view(value).substr(0, value.find(';')), " \t"));
        const auto slash = type.find('/');
        if (slash == std::string::npos) return false;
        return type == "application/json" || (type.size() > 5 && type.ends_with("+json"));
    }
    return false;
}

// Validates without building a DOM; the body is then embedded byte for byte.
struct json_validator {
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);
    using ec_t = boost::json::error_code;
    using sv = boost::json::string_view;
    bool on_document_begin(ec_t&) { return true; }
    bool on_document_end(ec_t&) { return true; }
    bool on_array_begin(ec_t&) { return true; }
    bool on_array_end(std::size_t, ec_t&) { return true; }
    bool on_object_begin(ec_t&) { return true; }
    bool on_object_end(std::size_t, ec_t&) { return true; }
    bool on_string_part(sv, std::size_t, ec_t&) { return true; }
    bool on_string(sv, std::size_t, ec_t&) { return true; }
    bool on_key_part(sv, std::size_t, ec_t&) { return true; }
    bool on_key(sv, std::size_t, ec_t&) { return true; }
    bool on_number_part(sv, ec_t&) { return true; }
    bool on_int64(std::int64_t, sv, ec_t&) { return true; }
    bool on_uint64(std::uint64_t, sv, ec_t&) { return true; }
    bool on_double(double, sv, ec_t&) { return true; }
    bool on_bool(bool, ec_t&) { return true; }
    bool on_null(ec_t&) { return true; }
    bool on_comment_part(sv, ec_t&) { return true; }
    bool on_comment(sv, ec_t&) { return true; }
};

bool is_json_value(std::string_view s) {
    if (s.empty()) return false;
    boost::json::parse_options opt;
    opt.max_depth = 128;  // validation only: depth costs no recursion here
    boost::json::basic_parser<json_validator> parser(opt);
    boost::json::error_code ec;
    const auto n = parser.write_some(false, s.data(), s.size(), ec);
    return !ec && n == s.size();
}

// ---------------------------------------------------------------- statuses

// What is actually written for a result: a status that is not final (1xx, or
// not a 3-digit code at all) is never written (PRODUCT.md §2: no 1xx, ever).
struct written_status {
    unsigned status;
    item_condition condition;
    std::string defended_description;  // set when the status was replaced
    bool payload;                       // headers, body and location may be written
};

written_status effective_status(const item_result& r) {
    if (r.status >= 200 && r.status <= 999) return {r.status, r.condition, {}, true};
    written_status w{502, r.condition == item_condition::none ? item_condition::upstream_failure : r.condition, {},
                     false};
    if (r.description.empty())
        w.defended_description = "backend gave no final answer (status " + std::to_string(r.status) + ")";
    return w;
}

bool carries_location(unsigned status) { return status == 201 || (status >= 300 && status < 400); }

void append_status_line(std::string& out, unsigned status) {
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reason_phrase(status);
}

}  // namespace

// ==================================================================== writer

std::string_view reason_phrase(unsigned status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
    }
}

std::string_view condition_name(item_condition condition) {
    switch (condition) {
    case item_condition::none: return "";
    case item_condition::no_route: return "no-route";
    case item_condition::bad_target: return "bad-target";
    case item_condition::bad_request: return "bad-request";
    case item_condition::upstream_failure: return "upstream-failure";
    case item_condition::response_too_large: return "response-too-large";
    case item_condition::upstream_timeout: return "upstream-timeout";
    case item_condition::overloaded: return "overloaded";
    case item_condition::failed_dependency: return "failed-dependency";
    }
    return "";
}

multistatus_writer::multistatus_writer(multistatus_format format, bool minimal) : format_(format), minimal_(minimal) {}

std::string_view multistatus_writer::content_type() const {
    return format_ == multistatus_format::xml ? std::string_view("application/xml; charset=utf-8")
                                              : std::string_view("application/json");
}

std::string multistatus_writer::begin() const {
    if (format_ == multistatus_format::json) return R"({"responses":[)";
    return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
           "<D:multistatus xmlns:D=\"DAV:\" xmlns:B=\"urn:batchgate:batch\">\n";
}

std::string multistatus_writer::end() const {
    return format_ == multistatus_format::json ? "]}" : "</D:multistatus>\n";
}

std::string multistatus_writer::entry(const item_result& result) {
    std::string out;
    append_entry(out, result);
    return out;
}

void multistatus_writer::append_entry(std::string& out, const item_result& result) {
    if (format_ == multistatus_format::xml)
        append_xml(out, result);
    else
        append_json(out, result);
}

void multistatus_writer::append_xml(std::string& out, const item_result& r) const {
    const auto w = effective_status(r);
    std::size_t estimate = 160 + r.href.size() + r.id.size() + r.description.size();
    if (!minimal_ && w.payload) {
        estimate += r.body.size() + r.body.size() / 8;
        for (const auto& [n, v] : r.headers) estimate += n.size() + v.size() + 40;
    }
    out.reserve(out.size() + estimate);

    out += "  <D:response>\n    <D:href>";
    append_href_xml(out, r.href, false);
    out += "</D:href>\n    <D:status>";
    append_status_line(out, w.status);
    out += "</D:status>\n";
    if (!r.id.empty()) {
        out += "    <B:id>";
        append_xml_text_sanitized(out, r.id);
        out += "</B:id>\n";
    }
    if (w.payload && r.location && carries_location(w.status)) {
        out += "    <D:location><D:href>";
        append_href_xml(out, *r.location, true);
        out += "</D:href></D:location>\n";
    }
    if (!minimal_ && w.payload) {
        for (const auto& [name, value] : r.headers) {
            out += "    <B:header name=\"";
            append_xml_attr_sanitized(out, name);
            if (is_text(value)) {
                out += "\">";
                append_xml_text(out, value);
            } else {
                out += "\" encoding=\"base64\">";
                append_base64(out, value);
            }
            out += "</B:header>\n";
        }
        if (!r.body.empty()) {
            if (is_text(r.body)) {
                out += "    <B:body>";
                append_xml_text(out, r.body);
            } else {
                out += "    <B:body encoding=\"base64\">";
                append_base64(out, r.body);
            }
            out += "</B:body>\n";
        }
    }
    if (w.condition != item_condition::none) {
        out += "    <D:error><B:";
        out += condition_name(w.condition);
        out += "/></D:error>\n";
    }
    const std::string_view description = r.description.empty() ? w.defended_description : r.description;
    if (!description.empty()) {
        out += "    <D:responsedescription>";
        append_xml_text_sanitized(out, description);
        out += "</D:responsedescription>\n";
    }
    out += "  </D:response>\n";
}

void multistatus_writer::append_json_string(std::string& out, std::string_view s) {
    std::string clean;
    if (!is_utf8(s)) s = clean = sanitized(s, false);
    json_.reset(boost::json::string_view(s.data(), s.size()));
    std::size_t chunk = s.size() + 16;
    while (!json_.done()) {
        const auto at = out.size();
        out.resize(at + chunk);
        const auto got = json_.read(out.data() + at, chunk);
        out.resize(at + got.size());
        chunk = std::max<std::size_t>(chunk, 64);
    }
}

void multistatus_writer::append_json(std::string& out, const item_result& r) {
    const auto w = effective_status(r);
    std::size_t estimate = 128 + r.href.size() + r.id.size() + r.description.size();
    if (!minimal_ && w.payload) {
        estimate += r.body.size() + r.body.size() / 8;
        for (const auto& [n, v] : r.headers) estimate += n.size() + v.size() + 8;
    }
    out.reserve(out.size() + estimate);

    if (!first_) out += ',';
    first_ = false;
    out += '{';
    if (!r.id.empty()) {
        out += "\"id\":";
        append_json_string(out, r.id);
        out += ',';
    }
    std::string escaped;
    escaped.reserve(r.href.size() + 16);
    append_uri_escaped(escaped, r.href, false);
    out += "\"href\":\"";
    out += escaped;  // ASCII without '"' or '\\': no JSON escaping needed
    out += "\",\"status\":";
    out += std::to_string(w.status);
    if (w.payload && r.location && carries_location(w.status)) {
        escaped.clear();
        append_uri_escaped(escaped, *r.location, true);
        out += ",\"location\":\"";
        out += escaped;
        out += '"';
    }
    if (!minimal_ && w.payload) {
        if (!r.headers.empty()) {
            // Lower-cased names in order of first appearance; repeats joined
            // with ", " (RFC 9110 §5.3), set-cookie always an array (it cannot be joined).
            std::vector<std::string> names;
            names.reserve(r.headers.size());
            for (const auto& h : r.headers) names.push_back(lowercase(h.first));
            out += ",\"headers\":{";
            bool first_header = true;
            for (std::size_t i = 0; i < names.size(); ++i) {
                if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(i), names[i]) !=
                    names.begin() + static_cast<std::ptrdiff_t>(i))
                    continue;  // written with its first occurrence
                if (!first_header) out += ',';
                first_header = false;
                append_json_string(out, names[i]);
                out += ':';
                const bool cookie = names[i] == "set-cookie";
                if (cookie) {
                    out += '[';
                    bool first_value = true;
                    for (std::size_t j = i; j < names.size(); ++j) {
                        if (names[j] != names[i]) continue;
                        if (!first_value) out += ',';
                        first_value = false;
                        append_json_string(out, r.headers[j].second);
                    }
                    out += ']';
                } else {
                    std::string joined = r.headers[i].second;
                    for (std::size_t j = i + 1; j < names.size(); ++j)
                        if (names[j] == names[i]) joined.append(", ").append(r.headers[j].second);
                    append_json_string(out, joined);
                }
            }
            out += '}';
        }
        if (!r.body.empty()) {
            out += ",\"body\":";
            const auto trimmed = trim(r.body);
            if (has_json_content_type(r.headers) && is_json_value(trimmed)) {
                out += trimmed;
            } else if (is_text(r.body)) {
                append_json_string(out, r.body);
            } else {
                out += "{\"base64\":\"";
                append_base64(out, r.body);
                out += "\"}";
            }
        }
    }
    const std::string_view description = r.description.empty() ? w.defended_description : r.description;
    if (w.condition != item_condition::none) {
        out += ",\"error\":{\"code\":\"";
        out += condition_name(w.condition);
        out += "\",\"message\":";
        append_json_string(out, description.empty() ? reason_phrase(w.status) : description);
        out += '}';
    } else if (!description.empty()) {
        out += ",\"description\":";
        append_json_string(out, description);
    }
    out += '}';
}

// ==================================================================== nested 207

namespace {

constexpr char ns_separator = ' ';  // never valid inside a namespace URI

struct name_parts {
    std::string_view ns;
    std::string_view local;
};

name_parts split_name(const XML_Char* name) {
    std::string_view n(name);
    const auto sep = n.find(ns_separator);
    if (sep == std::string_view::npos) return {{}, n};
    return {n.substr(0, sep), n.substr(sep + 1)};
}

bool is(const name_parts& n, std::string_view ns, std::string_view local) { return n.ns == ns && n.local == local; }

// "HTTP/1.1 404 Not Found" -> 404 (any HTTP/x.y, any reason phrase).
std::optional<unsigned> parse_status_line(std::string_view s) {
    s = trim(s);
    if (!s.starts_with("HTTP/")) return std::nullopt;
    const auto sp = s.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    auto rest = s.substr(sp);
    rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
    if (rest.size() < 3 || (rest.size() > 3 && rest[3] != ' ')) return std::nullopt;
    if (rest[0] < '1' || rest[0] > '9' || rest[1] < '0' || rest[1] > '9' || rest[2] < '0' || rest[2] > '9')
        return std::nullopt;
    return static_cast<unsigned>((rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0'));
}

std::optional<item_condition> condition_from_name(std::string_view local) {
    for (auto c : {item_condition::no_route, item_condition::bad_target, item_condition::bad_request,
                   item_condition::upstream_failure, item_condition::response_too_large,
                   item_condition::upstream_timeout, item_condition::overloaded, item_condition::failed_dependency})
        if (condition_name(c) == local) return c;
    return std::nullopt;
}

class nested_reader {
public:
    explicit nested_reader(const nested_multistatus_limits& limits) : limits_(limits) {}

    std::optional<std::vector<item_result>> parse(std::string_view body) {
        if (body.size() > limits_.max_bytes || body.size() > static_cast<std::size_t>(INT_MAX)) return std::nullopt;
        std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser(XML_ParserCreateNS(nullptr, ns_separator),
                                                                            &XML_ParserFree);
        if (!parser) return std::nullopt;
        parser_ = parser.get();
        XML_SetUserData(parser_, this);
        XML_SetParamEntityParsing(parser_, XML_PARAM_ENTITY_PARSING_NEVER);
        XML_SetElementHandler(parser_, &nested_reader::on_start, &nested_reader::on_end);
        XML_SetCharacterDataHandler(parser_, &nested_reader::on_text);
        // No DTD of any kind: entities are refused, never expanded.
        XML_SetStartDoctypeDeclHandler(parser_, &nested_reader::on_doctype);
        XML_SetEntityDeclHandler(parser_, &nested_reader::on_entity);
        XML_SetUnparsedEntityDeclHandler(parser_, &nested_reader::on_unparsed_entity);
        XML_SetNotationDeclHandler(parser_, &nested_reader::on_notation);
        const auto status = XML_Parse(parser_, body.data(), static_cast<int>(body.size()), XML_TRUE);
        if (status != XML_STATUS_OK || failed_ || results_.empty()) return std::nullopt;
        return std::move(results_);
    }

private:
    enum class capture { none, href, status, id, header, body, description, location_href };
    enum class section { other, error, location };

    static nested_reader& self(void* p) { return *static_cast<nested_reader*>(p); }

    void fail() {
        if (!failed_) {
            failed_ = true;
            XML_StopParser(parser_, XML_FALSE);
        }
    }

    static void on_doctype(void* p, const XML_Char*, const XML_Char*, const XML_Char*, int) { self(p).fail(); }
    static void on_entity(void* p, const XML_Char*, int, const XML_Char*, int, const XML_Char*, const XML_Char*,
                          const XML_Char*, const XML_Char*) {
        self(p).fail();
    }
    static void on_unparsed_entity(void* p, const XML_Char*, const XML_Char*, const XML_Char*, const XML_Char*,
                                   const XML_Char*) {
        self(p).fail();
    }
    static void on_notation(void* p, const XML_Char*, const XML_Char*, const XML_Char*, const XML_Char*) {
        self(p).fail();
    }

    static void on_text(void* p, const XML_Char* s, int len) {
        auto& r = self(p);
        if (!r.failed_ && r.capture_ != capture::none) r.text_.append(s, static_cast<std::size_t>(len));
    }

    static void on_start(void* p, const XML_Char* name, const XML_Char** atts) { self(p).start(name, atts); }
    static void on_end(void* p, const XML_Char* name) { self(p).end(name); }

    void begin_capture(capture c) {
        capture_ = c;
        capture_depth_ = depth_;
        text_.clear();
    }

    // Unprefixed attribute of the current element; encoding="base64" or absent.
    static std::optional<std::string_view> attribute(const XML_Char** atts, std::string_view wanted) {
        for (; atts[0]; atts += 2)
            if (std::string_view(atts[0]) == wanted) return std::string_view(atts[1]);
        return std::nullopt;
    }

    static std::optional<bool> base64_encoding(const XML_Char** atts) {
        const auto enc = attribute(atts, "encoding");
        if (!enc) return false;
        if (trim(*enc) == "base64") return true;
        return std::nullopt;  // an encoding we do not know: do not guess
    }

    void start(const XML_Char* raw, const XML_Char** atts) {
        if (failed_) return;
        ++depth_;
        std::size_t attributes = 0;
        for (auto a = atts; a[0]; a += 2) ++attributes;
        if (depth_ > limits_.max_depth || attributes > limits_.max_attributes) return fail();
        if (capture_ != capture::none) return fail();  // markup inside a text element
        const auto n = split_name(raw);
        if (depth_ == 1) {
            if (!is(n, dav_ns, "multistatus")) fail();
            return;
        }
        if (depth_ == 2) {
            if (is(n, dav_ns, "response")) {
                in_response_ = true;
                current_ = item_result{};
                hrefs_.clear();
                status_.reset();
            }
            return;
        }
        if (!in_response_) return;
        if (depth_ == 3) {
            section_ = section::other;
            if (n.ns == dav_ns) {
                if (n.local == "href") begin_capture(capture::href);
                else if (n.local == "status") begin_capture(capture::status);
                else if (n.local == "responsedescription") begin_capture(capture::description);
                else if (n.local == "error") section_ = section::error;
                else if (n.local == "location") section_ = section::location;
                else if (n.local == "propstat") fail();  // a property report: not flattened
            } else if (n.ns == batch_ns) {
                if (n.local == "id") {
                    begin_capture(capture::id);
                } else if (n.local == "header") {
                    const auto name = attribute(atts, "name");
                    const auto b64 = base64_encoding(atts);
                    if (!name || name->empty() || !b64) return fail();
                    header_name_ = std::string(*name);
                    base64_ = *b64;
                    begin_capture(capture::header);
                } else if (n.local == "body") {
                    const auto b64 = base64_encoding(atts);
                    if (!b64) return fail();
                    base64_ = *b64;
                    begin_capture(capture::body);
                }
            }
            return;
        }
        if (depth_ == 4) {
            if (section_ == section::error && n.ns == batch_ns) {
                if (auto c = condition_from_name(n.local)) current_.condition = *c;
            } else if (section_ == section::location && is(n, dav_ns, "href")) {
                begin_capture(capture::location_href);
            }
        }
    }

    void end(const XML_Char*) {
        if (failed_) return;
        if (capture_ != capture::none && depth_ == capture_depth_) finish_capture();
        if (depth_ == 3) section_ = section::other;
        if (depth_ == 2 && in_response_) finish_response();
        --depth_;
    }

    void finish_capture() {
        const auto c = capture_;
        capture_ = capture::none;
        switch (c) {
        case capture::none: break;
        case capture::href: {
            const auto h = trim(text_);
            if (h.empty()) return fail();
            hrefs_.emplace_back(h);
            break;
        }
        case capture::status:
            status_ = parse_status_line(text_);
            if (!status_) return fail();
            break;
        case capture::id: current_.id = text_; break;
        case capture::description: current_.description = std::string(trim(text_)); break;
        case capture::location_href: current_.location = std::string(trim(text_)); break;
        case capture::header:
            if (base64_) {
                std::string value;
                if (!decode_base64(text_, value)) return fail();
                current_.headers.emplace_back(std::move(header_name_), std::move(value));
            } else {
                current_.headers.emplace_back(std::move(header_name_), text_);
            }
            break;
        case capture::body:
            if (base64_) {
                if (!decode_base64(text_, current_.body)) return fail();
            } else {
                current_.body = text_;
            }
            break;
        }
    }

    void finish_response() {
        in_response_ = false;
        if (hrefs_.empty() || !status_) return fail();
        if (hrefs_.size() > limits_.max_responses - std::min(limits_.max_responses, results_.size())) return fail();
        current_.status = *status_;
        // <response><href>a</href><href>b</href><status>…</status></response>:
        // the same outcome for each resource.
        for (std::size_t i = 0; i + 1 < hrefs_.size(); ++i) {
            results_.push_back(current_);
            results_.back().href = std::move(hrefs_[i]);
        }
        current_.href = std::move(hrefs_.back());
        results_.push_back(std::move(current_));
    }

    const nested_multistatus_limits& limits_;
    XML_Parser parser_ = nullptr;
    bool failed_ = false;
    std::size_t depth_ = 0;
    capture capture_ = capture::none;
    std::size_t capture_depth_ = 0;
    std::string text_;
    section section_ = section::other;
    bool in_response_ = false;
    bool base64_ = false;
    std::string header_name_;
    std::vector<std::string> hrefs_;
    std::optional<unsigned> status_;
    item_result current_;
    std::vector<item_result> results_;
};

}  // namespace

std::optional<std::vector<item_result>> parse_nested_multistatus(std::string_view body,
                                                                 const nested_multistatus_limits& limits) {
    return nested_reader(limits).parse(body);
}

}  // namespace batchgate
