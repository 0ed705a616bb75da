#include "proxy/core/problem.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace batchgate {

std::string problem_json(http::status status, std::string_view detail, problem_position where) {
    boost::json::object o;
    o["type"] = "about:blank";
    o["title"] = std::string(http::obsolete_reason(status));
    o["status"] = static_cast<int>(status);
    o["detail"] = std::string(detail);
    if (where.line) {
        o["line"] = where.line;
        if (where.column) o["column"] = where.column;  // multipart errors have lines only
    }
    return boost::json::serialize(o);
}

http::response<http::string_body> make_problem(http::status status, std::string_view detail,
                                               unsigned version, bool keep_alive, problem_position where) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::content_type, "application/problem+json");
    res.set(http::field::cache_control, "no-store");
    res.body() = problem_json(status, detail, where);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

}  // namespace batchgate
