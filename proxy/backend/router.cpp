#include "proxy/backend/router.hpp"

#include <algorithm>
#include <iterator>

namespace batchgate {

std::string_view describe(target_error e) {
    switch (e) {
    case target_error::none: return "ok";
    case target_error::not_origin_form:
        return "target must be an origin-form path (no scheme, authority or '*')";
    case target_error::bad_character:
        return "target contains a control character, space, backslash, '#' or non-ASCII byte";
    case target_error::bad_encoding:
        return "target has a malformed or forbidden percent-encoding (%2F, %5C, %00, controls)";
    case target_error::climbs_out: return "target climbs above the root with '..'";
    }
    return "bad target";
}

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Checks every %XX in `s`; with `strict`, also refuses encodings that would
// change the path's structure or smuggle controls once a backend decodes them.
target_error check_percent_encoding(std::string_view s, bool strict) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') continue;
        if (i + 2 >= s.size()) return target_error::bad_encoding;
        int hi = hex_value(s[i + 1]);
        int lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return target_error::bad_encoding;
        int decoded = hi * 16 + lo;
        if (strict && (decoded == '/' || decoded == '\\' || decoded < 0x20 || decoded == 0x7f))
            return target_error::bad_encoding;
        i += 2;
    }
    return target_error::none;
}

// "." and ".." also count when written as %2e (any case), as backends decode them.
int dot_segment_kind(std::string_view seg) {
    std::size_t dots = 0;
    for (std::size_t i = 0; i < seg.size();) {
        if (seg[i] == '.') {
            ++dots;
            ++i;
        } else if (seg.substr(i, 3) == "%2e" || seg.substr(i, 3) == "%2E") {
            ++dots;
            i += 3;
        } else {
            return 0;
        }
    }
    return dots == 1 || dots == 2 ? static_cast<int>(dots) : 0;
}

}  // namespace

target_error normalize_target(std::string_view target, normalized_target& out) {
    if (target.empty() || target.front() != '/' || target.starts_with("//"))
        return target_error::not_origin_form;
    for (unsigned char c : target) {
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#') return target_error::bad_character;
    }
    std::string_view path = target;
    std::string_view query;
    bool has_query = false;
    if (auto q = target.find('?'); q != std::string_view::npos) {
        path = target.substr(0, q);
        query = target.substr(q + 1);
        has_query = true;
    }
    if (auto e = check_percent_encoding(path, true); e != target_error::none) return e;
    if (auto e = check_percent_encoding(query, false); e != target_error::none) return e;

    // Resolve dot segments (RFC 3986 §5.2.4) over the segments after the leading '/'.
    std::vector<std::string_view> stack;
    bool trailing_slash = false;
    std::string_view rest = path.substr(1);
    while (true) {
        auto slash = rest.find('/');
        std::string_view seg = rest.substr(0, slash);
        bool last = slash == std::string_view::npos;
        int dots = dot_segment_kind(seg);
        if (dots == 2) {
            if (stack.empty()) return target_error::climbs_out;
            stack.pop_back();
        } else if (dots == 0) {
            stack.push_back(seg);
        }
        if (last) {
            trailing_slash = dots != 0 && !stack.empty();
            break;
        }
        rest = rest.substr(slash + 1);
    }

    out.path.clear();
    for (auto seg : stack) {
        out.path += '/';
        out.path += seg;
    }
    if (trailing_slash || out.path.empty()) out.path += '/';
    if (out.path.starts_with("//")) return target_error::not_origin_form;
    out.query.assign(query);
    out.has_query = has_query;
    return target_error::none;
}

router::router(const std::vector<route_config>& routes, const std::map<std::string, backend_config>& backends) {
    entries_.reserve(routes.size());
    for (std::size_t i = 0; i < routes.size(); ++i) {
        const auto& r = routes[i];
        const auto it = backends.find(r.backend);
        const std::size_t index = it == backends.end() ? 0 : static_cast<std::size_t>(std::distance(backends.begin(), it));
        entries_.push_back({r.prefix, r.backend, index, r.rewrite_prefix.has_value(),
                            r.rewrite_prefix.value_or(std::string{}), i});
    }
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const entry& a, const entry& b) { return a.prefix.size() > b.prefix.size(); });
}

namespace {

// A prefix matches on segment boundaries: "/users" takes "/users" and
// "/users/1" but not "/users-admin" (nginx and Envoy would take it; a batch
// gateway routing by resource collection should not).
bool prefix_matches(std::string_view prefix, std::string_view path) {
    if (!path.starts_with(prefix)) return false;
    if (path.size() == prefix.size() || prefix.ends_with('/')) return true;
    return path[prefix.size()] == '/';
}

std::string join_rewrite(std::string_view replacement, std::string_view rest) {
    std::string out(replacement);
    if (!rest.empty()) {
        bool out_slash = !out.empty() && out.back() == '/';
        bool rest_slash = rest.front() == '/';
        if (out_slash && rest_slash)
            rest.remove_prefix(1);
        else if (!out_slash && !rest_slash)
            out += '/';
        out += rest;
    }
    if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
    return out;
}

}  // namespace

bool router::match(const normalized_target& target, route_match& out) const {
    for (const auto& e : entries_) {
        if (!prefix_matches(e.prefix, target.path)) continue;
        out.route_index = e.index;
        out.backend = e.backend;
        out.backend_index = e.backend_index;
        out.target = e.rewrite ? join_rewrite(e.rewrite_prefix,
                                              std::string_view(target.path).substr(e.prefix.size()))
                               : target.path;
        if (target.has_query) {
            out.target += '?';
            out.target += target.query;
        }
        return true;
    }
    return false;
}

}  // namespace batchgate
