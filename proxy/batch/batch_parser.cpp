// Batch parsers: Graph-style JSON and batchgate XML → batch_draft →
// finish_batch() → batch_request. See batch_parser.hpp for the split.
//
// Both parsers are strict: unknown keys, elements and attributes are refused
// rather than ignored, because a typo ("dependOn") that silently drops an
// ordering constraint is worse than a 400 the client can fix at once.
#include "proxy/batch/batch_parser.hpp"

#include <boost/json.hpp>
#include <expat.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>

namespace batchgate {

namespace {

batch_error make_error(unsigned status, std::string what, std::size_t line = 0,
                       std::size_t column = 0) {
    batch_error e;
    e.status = status;
    if (line != 0) {
        e.message = "line " + std::to_string(line);
        if (column != 0) e.message += ", column " + std::to_string(column);  // multipart: lines only
        e.message += ": ";
    }
    e.message += what;
    e.line = line;
    e.column = column;
    return e;
}

batch_parse_result failed(batch_error e) {
    batch_parse_result r;
    r.error = std::move(e);
    return r;
}

std::string quoted(std::string_view text) {
    // Long or binary names would make the message unreadable; it is a hint,
    // not a copy of the input.
    constexpr std::size_t max_shown = 64;
    std::string out = "'";
    for (char c : text.substr(0, max_shown)) {
        const auto u = static_cast<unsigned char>(c);
        out += (u < 0x20 || u == 0x7f) ? '?' : c;
    }
    if (text.size() > max_shown) out += "...";
    out += "'";
    return out;
}

std::string too_many_resources(std::size_t max_items) {
    return "more than " + std::to_string(max_items) + " resources";
}

bool is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim_xml_space(std::string_view s) {
    while (!s.empty() && is_xml_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_xml_space(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------
// base64
// ---------------------------------------------------------------------------

std::optional<std::string> decode_base64(std::string_view text, bool skip_whitespace) {
    static constexpr auto table = [] {
        std::array<std::int8_t, 256> t{};
        t.fill(-1);
        constexpr std::string_view alphabet =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (std::size_t i = 0; i < alphabet.size(); ++i) {
            t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
        }
        return t;
    }();

    std::string out;
    out.reserve(text.size() / 4 * 3 + 3);
    std::uint32_t bits = 0;  // up to four sextets
    std::size_t sextets = 0;  // in the current quantum
    std::size_t padding = 0;  // '=' seen; only more '=' (or whitespace) may follow
    for (char c : text) {
        if (skip_whitespace && (is_xml_space(c) || c == '\f' || c == '\v')) continue;
        if (c == '=') {
            ++padding;
            continue;
        }
        if (padding != 0) return std::nullopt;  // data after padding
        const int v = table[static_cast<unsigned char>(c)];
        if (v < 0) return std::nullopt;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        if (++sextets == 4) {
            out += static_cast<char>((bits >> 16) & 0xff);
            out += static_cast<char>((bits >> 8) & 0xff);
            out += static_cast<char>(bits & 0xff);
            bits = 0;
            sextets = 0;
        }
    }
    // A final partial quantum of 2 or 3 sextets gives 1 or 2 bytes; padding,
    // when written, must complete it to 4 exactly.
    switch (sextets) {
        case 0:
            if (padding != 0) return std::nullopt;
            break;
        case 1:
            return std::nullopt;
        case 2:
            if (padding != 0 && padding != 2) return std::nullopt;
            out += static_cast<char>((bits >> 4) & 0xff);
            break;
        case 3:
            if (padding != 0 && padding != 1) return std::nullopt;
            out += static_cast<char>((bits >> 10) & 0xff);
            out += static_cast<char>((bits >> 2) & 0xff);
            break;
    }
    return out;
}

// ---------------------------------------------------------------------------
// Shared checks and expansion
// ---------------------------------------------------------------------------

namespace {

batch_error request_error(const draft_request& r, unsigned status, const std::string& what) {
    return make_error(status, r.label + ": " + what, r.line, r.column);
}

// The first cycle through the dependsOn graph (edges request → dependency),
// as request indices with the first repeated at the end; empty when acyclic.
std::vector<std::size_t> find_cycle(const std::vector<std::vector<std::size_t>>& deps) {
    enum : std::uint8_t { unseen, on_path, done };
    std::vector<std::uint8_t> state(deps.size(), unseen);
    // Iterative depth-first search: max_items may be configured large enough
    // for a dependency chain to overflow the stack if this recursed.
    std::vector<std::pair<std::size_t, std::size_t>> path;  // node, next edge
    for (std::size_t start = 0; start < deps.size(); ++start) {
        if (state[start] != unseen) continue;
        state[start] = on_path;
        path.emplace_back(start, 0);
        while (!path.empty()) {
            const std::size_t node = path.back().first;
            const std::size_t edge = path.back().second;
            if (edge == deps[node].size()) {
                state[node] = done;
                path.pop_back();
                continue;
            }
            ++path.back().second;
            const std::size_t to = deps[node][edge];
            if (state[to] == on_path) {
                std::vector<std::size_t> cycle;
                auto it = std::find_if(path.begin(), path.end(),
                                       [to](const auto& p) { return p.first == to; });
                for (; it != path.end(); ++it) cycle.push_back(it->first);
                cycle.push_back(to);
                return cycle;
            }
            if (state[to] == unseen) {
                state[to] = on_path;
                path.emplace_back(to, 0);
            }
        }
    }
    return {};
}

std::size_t header_bytes(const header_list& headers) {
    std::size_t n = 0;
    for (const auto& [name, value] : headers) n += name.size() + value.size();
    return n;
}

}  // namespace

batch_parse_result finish_batch(batch_draft draft, const batch_parse_limits& limits) {
    auto& requests = draft.requests;

    // Resource count first: a batch that is too big is refused as a whole
    // before anything about its contents.
    std::size_t resources = 0;
    for (const auto& r : requests) resources += r.hrefs.size();
    if (resources > limits.max_items) return failed(make_error(413, too_many_resources(limits.max_items)));

    for (const auto& [name, value] : draft.headers) {
        if (name.empty()) return failed(make_error(400, "batch-level header with an empty name"));
    }
    for (const auto& r : requests) {
        if (r.hrefs.empty()) return failed(request_error(r, 400, "no resource to act on"));
        for (const auto& [name, value] : r.headers) {
            if (name.empty()) return failed(request_error(r, 400, "header with an empty name"));
        }
        if (r.id && r.id->empty()) return failed(request_error(r, 400, "empty id"));
    }

    // Explicit ids: unique. Then number the rest with the smallest positive
    // integers no explicit id took, in document order.
    std::unordered_map<std::string, std::size_t> index_of;
    index_of.reserve(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
        const auto& r = requests[i];
        if (!r.id) continue;
        const auto [it, inserted] = index_of.emplace(*r.id, i);
        if (!inserted) {
            return failed(request_error(r, 400, "duplicate id " + quoted(*r.id) + " (also used by " +
                                                    requests[it->second].label + ")"));
        }
    }
    std::uint64_t next_id = 1;
    for (std::size_t i = 0; i < requests.size(); ++i) {
        auto& r = requests[i];
        if (r.id) continue;
        while (index_of.contains(std::to_string(next_id))) ++next_id;
        r.id = std::to_string(next_id++);
        index_of.emplace(*r.id, i);
    }

    // Groups (OData atomicityGroup, multipart changesets): adjacent, named
    // apart from the ids. dependsOn a group means on each of its requests;
    // then each request of a group depends on the one before it.
    std::unordered_map<std::string, std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < requests.size(); ++i) {
        const auto& r = requests[i];
        if (r.group.empty()) continue;
        auto& members = groups[r.group];
        if (!members.empty() && members.back() != i - 1) {
            return failed(request_error(r, 400, "atomicityGroup " + quoted(r.group) +
                                                    ": the requests of a group must be adjacent"));
        }
        if (index_of.contains(r.group)) {
            return failed(request_error(r, 400, "atomicityGroup " + quoted(r.group) + " is also the id of " +
                                                    requests[index_of[r.group]].label));
        }
        members.push_back(i);
    }
    if (!groups.empty()) {
        for (auto& r : requests) {
            std::vector<std::string> expanded;
            for (auto& d : r.depends_on) {
                const auto g = groups.find(d);
                if (g == groups.end()) {
                    expanded.push_back(std::move(d));
                    continue;
                }
                for (std::size_t member : g->second) expanded.push_back(*requests[member].id);
            }
            r.depends_on = std::move(expanded);
        }
        for (const auto& [name, members] : groups) {
            for (std::size_t k = 1; k < members.size(); ++k)
                requests[members[k]].depends_on.push_back(*requests[members[k - 1]].id);
        }
    }

    // `$1`-style references to another item's result (OData, multipart): not
    // supported, so that item is answered 400 rather than sent somewhere odd.
    for (auto& r : requests) {
        for (const auto& href : r.hrefs) {
            if (!href.starts_with('$')) continue;
            const std::string name = href.substr(1, href.find_first_of("/?") - 1);
            if (!index_of.contains(name)) continue;
            r.refusal = "the target refers to the result of item " + quoted(name) + " (" + href.substr(0, name.size() + 1) +
                        "); batchgate does not resolve $-references: name the resource by its path";
        }
    }

    // dependsOn: known ids, not itself, no cycles. Repeats are dropped.
    std::vector<std::vector<std::size_t>> deps(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
        auto& r = requests[i];
        std::vector<std::string> unique;
        for (auto& d : r.depends_on) {
            if (d == *r.id) return failed(request_error(r, 400, "depends on itself (id " + quoted(d) + ")"));
            const auto it = index_of.find(d);
            if (it == index_of.end()) {
                return failed(request_error(r, 400, "dependsOn names unknown id " + quoted(d)));
            }
            if (std::find(deps[i].begin(), deps[i].end(), it->second) != deps[i].end()) continue;
            deps[i].push_back(it->second);
            unique.push_back(std::move(d));
        }
        r.depends_on = std::move(unique);
    }
    if (const auto cycle = find_cycle(deps); !cycle.empty()) {
        constexpr std::size_t max_shown = 8;
        std::string path;
        for (std::size_t k = 0; k < cycle.size(); ++k) {
            if (k == max_shown && cycle.size() > max_shown + 1) {
                path += " -> ...";
                k = cycle.size() - 1;
            }
            if (k != 0) path += " -> ";
            path += quoted(*requests[cycle[k]].id);
        }
        return failed(request_error(requests[cycle.front()], 400, "dependsOn cycle: " + path));
    }

    // What expanding each request into one item per href copies, beyond the
    // request's own bytes (see batch_parse_limits::max_expanded_bytes).
    std::size_t copied = 0;
    for (const auto& r : requests) {
        const std::size_t per_copy = r.body.size() + header_bytes(r.headers) + r.id->size() +
                                     r.method.size() + r.depends_on.size() * 8;
        const std::size_t copies = r.hrefs.size() - 1;
        if (copies != 0 && per_copy > (limits.max_expanded_bytes - copied) / copies) {
            return failed(request_error(
                r, 413,
                "copying the body and headers to each of its " + std::to_string(r.hrefs.size()) +
                    " resources would take more than " + std::to_string(limits.max_expanded_bytes) +
                    " bytes"));
        }
        copied += per_copy * copies;
    }

    batch_parse_result result;
    auto& batch = result.batch.emplace();
    batch.headers = std::move(draft.headers);
    batch.items.reserve(resources);
    for (auto& r : requests) {
        for (std::size_t k = 0; k < r.hrefs.size(); ++k) {
            batch_item item;
            item.href = std::move(r.hrefs[k]);
            item.has_body = r.has_body;
            item.body_is_json = r.body_is_json;
            if (k + 1 < r.hrefs.size()) {
                item.id = *r.id;
                item.method = r.method;
                item.headers = r.headers;
                item.body = r.body;
                item.depends_on = r.depends_on;
            } else {
                item.id = std::move(*r.id);
                item.method = std::move(r.method);
                item.headers = std::move(r.headers);
                item.body = std::move(r.body);
                item.depends_on = std::move(r.depends_on);
            }
            if (!r.refusal.empty()) batch.refused.emplace_back(batch.items.size(), r.refusal);
            batch.items.push_back(std::move(item));
        }
    }
    return result;
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

namespace {

namespace json = boost::json;

// 1-based line and column (in characters: UTF-8 continuation bytes do not
// count) of a byte offset.
std::pair<std::size_t, std::size_t> text_position(std::string_view text, std::size_t offset) {
    offset = std::min(offset, text.size());
    std::size_t line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    }
    std::size_t column = 1;
    for (std::size_t i = line_start; i < offset; ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) ++column;
    }
    return {line, column};
}

// text_position for many ascending offsets in one pass over the text (one
// call per request would make a 10,000-request batch quadratic).
std::vector<std::pair<std::size_t, std::size_t>> text_positions(std::string_view text,
                                                                 const std::vector<std::size_t>& offsets) {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    out.reserve(offsets.size());
    std::size_t line = 1, column = 1, at = 0;
    for (std::size_t offset : offsets) {
        offset = std::min(offset, text.size());
        if (offset < at) {  // not ascending: start over for this one
            out.push_back(text_position(text, offset));
            continue;
        }
        for (; at < offset; ++at) {
            if (text[at] == '\n') {
                ++line;
                column = 1;
            } else if ((static_cast<unsigned char>(text[at]) & 0xc0) != 0x80) {
                ++column;
            }
        }
        out.emplace_back(line, column);
    }
    return out;
}

// What the DOM forgets: where each request object starts, the raw text of each
// request's "body" (so a JSON body is forwarded with its numbers exactly as
// written — the DOM would turn 1.0 into 1E0 and round big integers), and
// duplicate keys (the DOM keeps the last one silently).
struct json_layout {
    std::vector<std::size_t> request_offsets;
    std::vector<std::optional<std::pair<std::size_t, std::size_t>>> body_spans;  // [begin, end)
    std::optional<std::size_t> duplicate_key_offset;
    std::string duplicate_key;
};

// A second pass over text that boost::json has already accepted (same options:
// no comments, no trailing commas), so it needs no error handling of its own;
// recursion is bounded by max_json_depth, which that parse enforced.
class json_layout_walker {
public:
    json_layout_walker(std::string_view text, json_layout& out) : s_(text), out_(out) {}

    void run() {
        skip_ws();
        value(role::root);
    }

private:
    enum class role { other, root, requests, request };

    bool done() const { return out_.duplicate_key_offset.has_value() || i_ >= s_.size(); }

    void skip_ws() {
        while (i_ < s_.size() && is_xml_space(s_[i_])) ++i_;  // JSON whitespace is the same set
    }

    void value(role r) {
        if (done()) return;
        switch (s_[i_]) {
            case '{':
                object(r);
                break;
            case '[':
                array(r);
                break;
            case '"':
                skip_string();
                break;
            default:  // number, true, false, null
                while (i_ < s_.size() && !is_xml_space(s_[i_]) && s_[i_] != ',' && s_[i_] != ']' &&
                       s_[i_] != '}') {
                    ++i_;
                }
        }
    }

    void object(role r) {
        ++i_;  // {
        seen_keys keys;
        for (;;) {
            skip_ws();
            if (done()) return;
            if (s_[i_] == '}') {
                ++i_;
                return;
            }
            const std::size_t key_offset = i_;
            std::string decoded;
            const std::string_view key = read_key(decoded);
            skip_ws();
            ++i_;  // :
            skip_ws();
            if (done()) return;
            if (r == role::root && key == "requests") {
                value(role::requests);
            } else if (r == role::request && key == "body") {
                const std::size_t begin = i_;
                value(role::other);
                out_.body_spans.back() = std::pair{begin, i_};
            } else {
                value(role::other);
            }
            if (!keys.insert(key) && !out_.duplicate_key_offset) {
                out_.duplicate_key_offset = key_offset;
                out_.duplicate_key = std::string(key);
                return;
            }
            skip_ws();
            if (done()) return;
            if (s_[i_] == ',') ++i_;
        }
    }

    // The keys of one object so far. Batch objects have a handful of keys, so
    // the first few are compared in place (no allocation per request object);
    // a larger object (a request body can be anything) moves to a hash set so
    // that a hostile body with many keys stays linear.
    class seen_keys {
    public:
        bool insert(std::string_view key) {
            if (!many_.empty()) return many_.insert(std::string(key)).second;
            for (std::size_t k = 0; k < count_; ++k) {
                if (few_[k] == key) return false;
            }
            if (count_ < few_.size()) {
                few_[count_++] = std::string(key);
                return true;
            }
            for (auto& k : few_) many_.insert(std::move(k));
            return many_.insert(std::string(key)).second;
        }

    private:
        std::array<std::string, 8> few_;
        std::size_t count_ = 0;
        std::unordered_set<std::string> many_;
    };

    void array(role r) {
        ++i_;  // [
        for (;;) {
            skip_ws();
            if (done()) return;
            if (s_[i_] == ']') {
                ++i_;
                return;
            }
            if (r == role::requests) {
                out_.request_offsets.push_back(i_);
                out_.body_spans.emplace_back();
                value(role::request);
            } else {
                value(role::other);
            }
            skip_ws();
            if (done()) return;
            if (s_[i_] == ',') ++i_;
        }
    }

    void skip_string() {
        ++i_;  // "
        while (i_ < s_.size() && s_[i_] != '"') i_ += (s_[i_] == '\\') ? 2 : 1;
        ++i_;
    }

    unsigned hex4() {
        unsigned v = 0;
        for (int k = 0; k < 4 && i_ < s_.size(); ++k, ++i_) {
            const char c = s_[i_];
            v = v * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        return v;
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        }
    }

    // A key as the DOM sees it, so that "a" and "\u0061" are the same key: the
    // text itself when it holds no escape (the usual case), else decoded into
    // storage.
    std::string_view read_key(std::string& storage) {
        const std::size_t begin = i_ + 1;
        std::size_t end = begin;
        while (end < s_.size() && s_[end] != '"' && s_[end] != '\\') ++end;
        if (end < s_.size() && s_[end] == '"') {
            i_ = end + 1;
            return s_.substr(begin, end - begin);
        }
        storage = read_string();
        return storage;
    }

    // Decoded, so that "a" and "\u0061" are the same key, as in the DOM.
    std::string read_string() {
        std::string out;
        ++i_;  // "
        while (i_ < s_.size() && s_[i_] != '"') {
            if (s_[i_] != '\\') {
                out += s_[i_++];
                continue;
            }
            ++i_;
            if (i_ >= s_.size()) break;
            const char e = s_[i_++];
            switch (e) {
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xd800 && cp < 0xdc00 && i_ + 1 < s_.size() && s_[i_] == '\\' &&
                        s_[i_ + 1] == 'u') {
                        const std::size_t save = i_;
                        i_ += 2;
                        const unsigned low = hex4();
                        if (low >= 0xdc00 && low < 0xe000) {
                            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                        } else {
                            i_ = save;
                        }
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: out += e;  // " \ /
            }
        }
        ++i_;
        return out;
    }

    std::string_view s_;
    json_layout& out_;
    std::size_t i_ = 0;
};

// Valid JSON text without the whitespace between tokens.
std::string minify_json(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    bool in_string = false;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const char c = raw[i];
        if (in_string) {
            out += c;
            if (c == '\\' && i + 1 < raw.size()) {
                out += raw[++i];
            } else if (c == '"') {
                in_string = false;
            }
        } else if (!is_xml_space(c)) {
            out += c;
            in_string = c == '"';
        }
    }
    return out;
}

// Every step returns the first error it finds (nullopt: fine), so a malformed
// batch costs no exception on the request path.
using parse_failure = std::optional<batch_error>;

class json_batch_reader {
public:
    json_batch_reader(std::string_view text, const batch_parse_limits& limits)
        : text_(text), limits_(limits) {}

    parse_failure read(batch_draft& draft) {
        // Filled by move construction, so root keeps the arena's storage: an
        // assignment into a default-storage value would deep-copy the whole
        // batch onto the heap.
        std::optional<json::value> root;
        if (auto e = parse(root)) return e;

        json_layout_walker(text_, layout_).run();
        request_positions_ = text_positions(text_, layout_.request_offsets);
        if (layout_.duplicate_key_offset) {
            const auto [line, column] = text_position(text_, *layout_.duplicate_key_offset);
            return make_error(400, "duplicate key " + quoted(layout_.duplicate_key), line, column);
        }

        if (!root->is_object()) return make_error(400, "the batch must be a JSON object with a \"requests\" array");
        const json::object& top = root->get_object();
        for (const auto& kv : top) {
            if (kv.key() != "requests" && kv.key() != "headers") {
                return make_error(400, "unknown top-level key " + quoted(kv.key()));
            }
        }
        const json::value* requests = top.if_contains("requests");
        if (requests == nullptr) return make_error(400, "missing \"requests\"");
        if (!requests->is_array()) return make_error(400, "requests: must be an array");
        const json::array& list = requests->get_array();
        if (list.size() > limits_.max_items) return make_error(413, too_many_resources(limits_.max_items));

        if (const json::value* h = top.if_contains("headers")) {
            if (auto e = read_headers(*h, "headers", 0, 0, draft.headers)) return e;
        }
        draft.requests.resize(list.size());
        for (std::size_t i = 0; i < list.size(); ++i) {
            if (auto e = read_request(list[i], i, draft.requests[i])) return e;
        }
        return std::nullopt;
    }

private:
    parse_failure parse(std::optional<json::value>& root) {
        json::parse_options options;
        options.max_depth = limits_.max_json_depth;
        json::parser parser(json::storage_ptr(), options);
        parser.reset(&arena_);
        boost::system::error_code ec;
        const std::size_t stopped_at = parser.write(text_.data(), text_.size(), ec);
        if (ec) {
            const auto [line, column] = text_position(text_, stopped_at);
            std::string what = ec == json::error::too_deep
                                   ? "JSON nested deeper than " + std::to_string(limits_.max_json_depth) +
                                         " levels"
                                   : ec.message();
            return make_error(400, std::move(what), line, column);
        }
        // write(data, size, ec) parses a complete text, so release() has a value to give (no throw);
        // the value lives in arena_, as long as this reader.
        root.emplace(parser.release());
        return std::nullopt;
    }

    parse_failure read_headers(const json::value& v, const std::string& path, std::size_t line,
                               std::size_t column, header_list& out) const {
        if (!v.is_object()) return make_error(400, path + ": must be an object of strings", line, column);
        for (const auto& kv : v.get_object()) {
            if (!kv.value().is_string()) {
                return make_error(400, path + "." + std::string(kv.key()) + ": must be a string", line, column);
            }
            const auto& value = kv.value().get_string();
            out.emplace_back(std::string(kv.key()), std::string(value.data(), value.size()));
        }
        return std::nullopt;
    }

    static std::optional<std::string> id_text(const json::value& v) {
        if (v.is_string()) return std::string(v.get_string());
        if (v.is_int64()) return std::to_string(v.get_int64());
        if (v.is_uint64()) return std::to_string(v.get_uint64());
        return std::nullopt;
    }

    parse_failure read_request(const json::value& v, std::size_t index, draft_request& r) const {
        r.label = "requests[" + std::to_string(index) + "]";
        if (index < request_positions_.size()) std::tie(r.line, r.column) = request_positions_[index];
        const auto fail = [&r](const std::string& what) -> parse_failure { return request_error(r, 400, what); };
        if (!v.is_object()) return fail("must be an object");

        bool has_method = false;
        bool has_url = false;
        for (const auto& kv : v.get_object()) {
            const std::string_view key = kv.key();
            const json::value& value = kv.value();
            if (key == "id") {
                r.id = id_text(value);
                if (!r.id) return fail("id must be a string or an integer");
            } else if (key == "method") {
                if (!value.is_string()) return fail("method must be a string");
                r.method = value.get_string();
                has_method = true;
            } else if (key == "url") {
                if (!value.is_string()) return fail("url must be a string");
                r.hrefs.emplace_back(value.get_string());
                has_url = true;
            } else if (key == "headers") {
                if (auto e = read_headers(value, r.label + ".headers", r.line, r.column, r.headers)) return e;
            } else if (key == "body") {
                if (auto e = read_body(value, index, r)) return e;
            } else if (key == "atomicityGroup") {
                if (!value.is_string() || value.get_string().empty())
                    return fail("atomicityGroup must be a non-empty string");
                r.group = value.get_string();
            } else if (key == "dependsOn") {
                if (!value.is_array()) return fail("dependsOn must be an array of ids");
                const json::array& ids = value.get_array();
                for (std::size_t k = 0; k < ids.size(); ++k) {
                    auto id = id_text(ids[k]);
                    if (!id) return fail("dependsOn[" + std::to_string(k) + "] must be a string or an integer");
                    r.depends_on.push_back(std::move(*id));
                }
            } else {
                return fail("unknown key " + quoted(key));
            }
        }
        if (!has_method) return fail("missing \"method\"");
        if (!has_url) return fail("missing \"url\"");
        return std::nullopt;
    }

    // A string is sent as is; {"base64": "..."} as the decoded bytes; null
    // means no body (what serializers write for an absent optional field);
    // any other value as compact JSON, with its numbers exactly as written.
    parse_failure read_body(const json::value& v, std::size_t index, draft_request& r) const {
        if (v.is_null()) return std::nullopt;
        r.has_body = true;
        if (v.is_string()) {
            r.body = v.get_string();
            return std::nullopt;
        }
        if (v.is_object() && v.get_object().size() == 1) {
            const json::value* b64 = v.get_object().if_contains("base64");
            if (b64 != nullptr && b64->is_string()) {
                auto bytes = decode_base64(b64->get_string(), false);
                if (!bytes) return request_error(r, 400, "body.base64 is not valid base64");
                r.body = std::move(*bytes);
                return std::nullopt;
            }
        }
        r.body_is_json = true;
        if (index < layout_.body_spans.size() && layout_.body_spans[index]) {
            const auto [begin, end] = *layout_.body_spans[index];
            r.body = minify_json(text_.substr(begin, end - begin));
        } else {
            r.body = json::serialize(v);  // not reached: the walker sees every body
        }
        return std::nullopt;
    }

    std::string_view text_;
    const batch_parse_limits& limits_;
    json::monotonic_resource arena_;
    json_layout layout_;
    std::vector<std::pair<std::size_t, std::size_t>> request_positions_;  // 1-based line:column per request
};

}  // namespace

batch_parse_result parse_json_batch(std::string_view body, const batch_parse_limits& limits) {
    batch_draft draft;
    if (auto e = json_batch_reader(body, limits).read(draft)) return failed(std::move(*e));
    return finish_batch(std::move(draft), limits);
}

// ---------------------------------------------------------------------------
// XML
// ---------------------------------------------------------------------------

namespace {

constexpr std::string_view batch_ns = "urn:batchgate:batch";
constexpr std::string_view dav_ns = "DAV:";

// expat's namespace-aware names are "namespace-uri local" (separator ' '), or
// just "local" for no namespace.
struct xml_name {
    std::string_view ns;
    std::string_view local;
};

xml_name split_name(const XML_Char* name) {
    const std::string_view full(name);
    const auto sep = full.rfind(' ');
    if (sep == std::string_view::npos) return {{}, full};
    return {full.substr(0, sep), full.substr(sep + 1)};
}

std::string describe(xml_name n) {
    std::string out = "<" + std::string(n.local) + ">";
    if (n.ns.empty()) {
        out += " (no namespace)";
    } else if (n.ns != batch_ns) {
        out += " (namespace " + quoted(n.ns) + ")";
    }
    return out;
}

class xml_batch_reader {
public:
    xml_batch_reader(std::string_view text, const batch_parse_limits& limits)
        : text_(text), limits_(limits), parser_(XML_ParserCreateNS(nullptr, ' ')) {}

    std::variant<batch_draft, batch_error> read() {
        if (!parser_) return make_error(500, "XML: out of memory");
        XML_Parser p = parser_.get();
        XML_SetUserData(p, this);
        XML_SetElementHandler(p, &on_start, &on_end);
        XML_SetCharacterDataHandler(p, &on_text);
        XML_SetProcessingInstructionHandler(p, &on_pi);
        // DTDs are refused outright; the entity handlers are belt and braces.
        XML_SetStartDoctypeDeclHandler(p, &on_doctype);
        XML_SetEntityDeclHandler(p, &on_entity_decl);
        XML_SetExternalEntityRefHandler(p, &on_external_entity);
        XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);

        // Fed in slices: XML_Parse takes an int length.
        constexpr std::size_t slice = 1 << 20;
        std::size_t offset = 0;
        do {
            const std::size_t n = std::min(slice, text_.size() - offset);
            const bool last = offset + n == text_.size();
            if (XML_Parse(p, text_.data() + offset, static_cast<int>(n), last ? XML_TRUE : XML_FALSE) !=
                XML_STATUS_OK) {
                if (error_) return *error_;
                const XML_Error code = XML_GetErrorCode(p);
                return make_error(400, std::string("XML: ") + XML_ErrorString(code),
                                  XML_GetCurrentLineNumber(p), XML_GetCurrentColumnNumber(p) + 1);
            }
            offset += n;
        } while (offset < text_.size());
        if (error_) return *error_;  // not reached: a handler error stops the parse
        return std::move(draft_);
    }

private:
    enum class kind { batch, header, request, href, body };

    struct parser_deleter {
        void operator()(XML_Parser p) const { XML_ParserFree(p); }
    };

    static xml_batch_reader& self(void* user_data) { return *static_cast<xml_batch_reader*>(user_data); }

    std::size_t line() const { return XML_GetCurrentLineNumber(parser_.get()); }
    std::size_t column() const { return XML_GetCurrentColumnNumber(parser_.get()) + 1; }

    // Records the first error at the current position and stops the parse;
    // expat may still deliver an event or two, which the handlers ignore.
    void stop(unsigned status, const std::string& what) {
        if (error_) return;
        error_ = make_error(status, "XML: " + what, line(), column());
        XML_StopParser(parser_.get(), XML_FALSE);
    }

    // Attributes (unqualified names only) must be among `allowed`; returns
    // false after stopping on an unknown one.
    bool check_attributes(const XML_Char** atts, std::initializer_list<std::string_view> allowed,
                          std::string_view element) {
        for (std::size_t k = 0; atts[k] != nullptr; k += 2) {
            const std::string_view name(atts[k]);
            if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
                const xml_name n = split_name(atts[k]);
                std::string what = "unknown attribute " + quoted(n.local);
                if (!n.ns.empty()) what += " (namespace " + quoted(n.ns) + ")";
                stop(400, what + " on <" + std::string(element) + ">");
                return false;
            }
        }
        return true;
    }

    static const XML_Char* attribute(const XML_Char** atts, std::string_view name) {
        for (std::size_t k = 0; atts[k] != nullptr; k += 2) {
            if (name == atts[k]) return atts[k + 1];
        }
        return nullptr;
    }

    static void on_start(void* ud, const XML_Char* name, const XML_Char** atts) {
        self(ud).start(name, atts);
    }
    static void on_end(void* ud, const XML_Char*) { self(ud).end(); }
    static void on_text(void* ud, const XML_Char* s, int len) {
        self(ud).text(std::string_view(s, static_cast<std::size_t>(len)));
    }
    static void on_pi(void* ud, const XML_Char*, const XML_Char*) {
        self(ud).stop(400, "processing instructions are refused");
    }
    static void on_doctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
        self(ud).stop(400, "DOCTYPE declarations are refused");
    }
    static void on_entity_decl(void* ud, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                               const XML_Char*, const XML_Char*, const XML_Char*) {
        self(ud).stop(400, "entity declarations are refused");
    }
    static int XMLCALL on_external_entity(XML_Parser p, const XML_Char*, const XML_Char*, const XML_Char*,
                                          const XML_Char*) {
        // The user data is not passed here; the parser's is ours.
        self(XML_GetUserData(p)).stop(400, "external entities are refused");
        return XML_STATUS_ERROR;
    }

    void start(const XML_Char* raw_name, const XML_Char** atts) {
        if (error_) return;
        if (stack_.size() + 1 > limits_.max_xml_depth) {
            stop(400, "elements nested deeper than " + std::to_string(limits_.max_xml_depth));
            return;
        }
        std::size_t attribute_count = 0;
        while (atts[2 * attribute_count] != nullptr) ++attribute_count;
        if (attribute_count > limits_.max_xml_attributes) {
            stop(400, "more than " + std::to_string(limits_.max_xml_attributes) + " attributes on one element");
            return;
        }

        const xml_name name = split_name(raw_name);
        const bool ours = name.ns == batch_ns;
        if (stack_.empty()) {
            if (!ours || name.local != "batch") {
                stop(400, "the root element must be <batch> in namespace urn:batchgate:batch, not " +
                              describe(name));
                return;
            }
            if (!check_attributes(atts, {}, "batch")) return;
            stack_.push_back(kind::batch);
            return;
        }

        switch (stack_.back()) {
            case kind::batch:
                if (ours && name.local == "header") {
                    start_header(atts);
                } else if (ours && name.local == "request") {
                    start_request(atts);
                } else {
                    unexpected(name, "batch");
                }
                return;
            case kind::request:
                if (name.ns == dav_ns && name.local == "href") {
                    if (!check_attributes(atts, {}, "href")) return;
                    if (++resources_ > limits_.max_items) {
                        stop(413, too_many_resources(limits_.max_items));
                        return;
                    }
                    text_buffer_.clear();
                    stack_.push_back(kind::href);
                } else if (ours && name.local == "header") {
                    start_header(atts);
                } else if (ours && name.local == "body") {
                    start_body(atts);
                } else {
                    unexpected(name, "request");
                }
                return;
            case kind::header:
                stop(400, "<header> holds only text, not " + describe(name));
                return;
            case kind::href:
                stop(400, "<href> holds only text, not " + describe(name));
                return;
            case kind::body:
                stop(400, "<body> holds only text (escape markup or use CDATA), not " + describe(name));
                return;
        }
    }

    void unexpected(xml_name name, std::string_view parent) {
        std::string what = "unexpected element " + describe(name) + " in <" + std::string(parent) + ">";
        if (name.local == "href" && name.ns != dav_ns) what += " (href belongs in namespace DAV:)";
        stop(400, what);
    }

    void start_header(const XML_Char** atts) {
        if (!check_attributes(atts, {"name"}, "header")) return;
        const XML_Char* name = attribute(atts, "name");
        if (name == nullptr) {
            stop(400, "<header> needs a \"name\" attribute");
            return;
        }
        header_name_ = name;
        text_buffer_.clear();
        stack_.push_back(kind::header);
    }

    void start_request(const XML_Char** atts) {
        if (!check_attributes(atts, {"id", "method", "dependsOn"}, "request")) return;
        const XML_Char* method = attribute(atts, "method");
        if (method == nullptr) {
            stop(400, "<request> needs a \"method\" attribute");
            return;
        }
        draft_request& r = draft_.requests.emplace_back();
        r.label = "<request>";
        r.line = line();
        r.column = column();
        r.method = method;
        if (const XML_Char* id = attribute(atts, "id")) r.id = id;
        if (const XML_Char* deps = attribute(atts, "dependsOn")) {
            std::string_view rest(deps);
            for (;;) {
                rest = trim_xml_space(rest);
                if (rest.empty()) break;
                const auto end = std::find_if(rest.begin(), rest.end(), is_xml_space);
                const auto n = static_cast<std::size_t>(end - rest.begin());
                r.depends_on.emplace_back(rest.substr(0, n));
                rest.remove_prefix(n);
            }
        }
        stack_.push_back(kind::request);
    }

    void start_body(const XML_Char** atts) {
        if (!check_attributes(atts, {"encoding"}, "body")) return;
        if (draft_.requests.back().has_body) {
            stop(400, "more than one <body> in a <request>");
            return;
        }
        body_base64_ = false;
        if (const XML_Char* encoding = attribute(atts, "encoding")) {
            if (std::string_view(encoding) != "base64") {
                stop(400, "unsupported body encoding " + quoted(encoding) + " (only \"base64\")");
                return;
            }
            body_base64_ = true;
        }
        body_line_ = line();
        body_column_ = column();
        text_buffer_.clear();
        stack_.push_back(kind::body);
    }

    void end() {
        if (error_ || stack_.empty()) return;
        const kind k = stack_.back();
        stack_.pop_back();
        switch (k) {
            case kind::header: {
                // Surrounding whitespace is layout; inner CR/LF stay, so the
                // item is refused later by the per-item header rules.
                auto& headers = stack_.back() == kind::batch ? draft_.headers : draft_.requests.back().headers;
                headers.emplace_back(std::move(header_name_), std::string(trim_xml_space(text_buffer_)));
                break;
            }
            case kind::href:
                draft_.requests.back().hrefs.emplace_back(trim_xml_space(text_buffer_));
                break;
            case kind::body: {
                draft_request& r = draft_.requests.back();
                r.has_body = true;
                if (body_base64_) {
                    auto bytes = decode_base64(text_buffer_, true);
                    if (!bytes) {
                        error_ = make_error(400, "XML: <body encoding=\"base64\"> is not valid base64",
                                            body_line_, body_column_);
                        XML_StopParser(parser_.get(), XML_FALSE);
                        return;
                    }
                    r.body = std::move(*bytes);
                } else {
                    r.body = std::move(text_buffer_);
                }
                break;
            }
            case kind::batch:
            case kind::request:
                break;
        }
        text_buffer_.clear();
    }

    void text(std::string_view s) {
        if (error_ || stack_.empty()) return;
        switch (stack_.back()) {
            case kind::header:
            case kind::href:
            case kind::body:
                text_buffer_.append(s);
                return;
            case kind::batch:
            case kind::request:
                if (!trim_xml_space(s).empty()) {
                    stop(400, std::string("text is not allowed directly in <") +
                                  (stack_.back() == kind::batch ? "batch" : "request") + ">");
                }
                return;
        }
    }

    std::string_view text_;
    const batch_parse_limits& limits_;
    std::unique_ptr<std::remove_pointer_t<XML_Parser>, parser_deleter> parser_;
    std::optional<batch_error> error_;
    batch_draft draft_;
    std::vector<kind> stack_;
    std::size_t resources_ = 0;
    std::string text_buffer_;  // of the current header, href or body (they do not nest)
    std::string header_name_;
    bool body_base64_ = false;
    std::size_t body_line_ = 0;
    std::size_t body_column_ = 0;
};

}  // namespace

batch_parse_result parse_xml_batch(std::string_view body, const batch_parse_limits& limits) {
    auto read = xml_batch_reader(body, limits).read();
    if (auto* e = std::get_if<batch_error>(&read)) return failed(std::move(*e));
    return finish_batch(std::move(std::get<batch_draft>(read)), limits);
}

}  // namespace batchgate
