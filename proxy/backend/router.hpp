// href / request-target → backend, by longest prefix, with prefix rewriting.
// Also the single place that decides whether a target is safe to send on:
// only origin-form paths reach a backend, and we route the same normalized
// path that the backend will see (so "/users/../admin" cannot hide behind a
// "/users" route).
#pragma once

#include "proxy/config/config.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace batchgate {

enum class target_error {
    none,
    not_origin_form,  // absolute URI, "//host", "*", no leading '/'
    bad_character,    // CR, LF, NUL, other controls, space, backslash, '#'
    bad_encoding,     // broken %XX, or an encoded '/', '\\' or NUL
    climbs_out,       // ".." above the root
};

std::string_view describe(target_error e);

struct normalized_target {
    std::string path;   // dot segments resolved, percent-encoding as the client sent it
    std::string query;  // without '?', as sent ("" if none)
    bool has_query = false;
};

// Validates and normalizes an origin-form target. Pure function.
target_error normalize_target(std::string_view target, normalized_target& out);

struct route_match {
    std::size_t route_index = 0;
    std::string_view backend;       // its name (the router's copy)
    std::size_t backend_index = 0;  // its position in the configuration's backends (routing_state::backend)
    std::string target;  // rewritten path + "?" + query, ready for the request line
};

class router {
public:
    // `backends`: the configuration's, whose order gives backend_index
    // (absent: every index is 0).
    explicit router(const std::vector<route_config>& routes,
                    const std::map<std::string, backend_config>& backends = {});

    // nullptr-like: returns false when no route matches the (normalized) path.
    bool match(const normalized_target& target, route_match& out) const;

private:
    struct entry {
        std::string prefix;
        std::string backend;
        std::size_t backend_index = 0;
        bool rewrite = false;
        std::string rewrite_prefix;
        std::size_t index = 0;
    };
    std::vector<entry> entries_;  // longest prefix first
};

}  // namespace batchgate
