// Short application/problem+json answers (RFC 9457) for everything batchgate
// refuses or fails itself outside a 207: the status says what, `detail` says
// why in one sentence a human can act on.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>
#include <string_view>

namespace batchgate {

namespace http = boost::beast::http;

// Where in a request document the problem is (RFC 9457 extension members
// "line" and "column", 1-based); 0 means unknown.
struct problem_position {
    std::size_t line = 0;
    std::size_t column = 0;
};

std::string problem_json(http::status status, std::string_view detail, problem_position where = {});

http::response<http::string_body> make_problem(http::status status, std::string_view detail,
                                               unsigned version, bool keep_alive, problem_position where = {});

}  // namespace batchgate
