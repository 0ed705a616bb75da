// Reading 207 documents in integration tests: the writer's own, known XML
// shape split into entries, and a helper that posts a batch.
#pragma once

#include "tests/integration/harness.hpp"

#include <map>
#include <string>
#include <vector>

namespace batchgate::test {

struct entry {
    std::string href, status, id, body, error, description, location;
};

inline std::string between(const std::string& s, const std::string& open, const std::string& close,
                           std::size_t from = 0) {
    auto a = s.find(open, from);
    if (a == std::string::npos) return {};
    a += open.size();
    auto b = s.find(close, a);
    return b == std::string::npos ? std::string{} : s.substr(a, b - a);
}

inline std::vector<entry> entries_of(const std::string& xml) {
    std::vector<entry> out;
    for (std::size_t pos = 0; (pos = xml.find("<D:response>", pos)) != std::string::npos;) {
        auto end = xml.find("</D:response>", pos);
        std::string one = xml.substr(pos, end - pos);
        entry e;
        e.href = between(one, "<D:href>", "</D:href>");
        e.status = between(one, "<D:status>", "</D:status>");
        e.id = between(one, "<B:id>", "</B:id>");
        auto body_at = one.find("<B:body");
        if (body_at != std::string::npos) e.body = between(one, ">", "</B:body>", body_at);
        e.error = between(one, "<D:error><B:", "/></D:error>");
        e.description = between(one, "<D:responsedescription>", "</D:responsedescription>");
        e.location = between(one, "<D:location><D:href>", "</D:href></D:location>");
        out.push_back(e);
        pos = end;
    }
    return out;
}

inline std::map<std::string, entry> by_id(const std::vector<entry>& es) {
    std::map<std::string, entry> out;
    for (const auto& e : es) out[e.id] = e;
    return out;
}

inline http::response<http::string_body> post_batch(client& c, const std::string& body, std::string content_type,
                                                    std::string accept = {}) {
    auto req = make_request(http::verb::post, "/batch", body);
    req.set(http::field::content_type, content_type);
    if (!accept.empty()) req.set(http::field::accept, accept);
    return c.request(req);
}

}  // namespace batchgate::test
