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

std::string problem_json(http::status status, std::string_view detail);

http::response<http::string_body> make_problem(http::status status, std::string_view detail,
                                               unsigned version, bool keep_alive);

}  // namespace batchgate
