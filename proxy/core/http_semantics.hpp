// Small HTTP facts shared by every exchange path (pass-through, HTTP/1.1 and
// h2 batch items), so retry and interim-answer rules cannot drift apart.
#pragma once

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/system/error_code.hpp>

#include <string_view>

namespace batchgate {

// A backend may send interim (1xx) answers before the real one; more than
// this many is a backend that never answers.
inline constexpr int max_interim_responses = 8;

// Methods that may be sent twice (RFC 9110 §9.2.2) and so may be retried
// (TRACE is idempotent too, but not worth repeating).
inline bool is_idempotent(std::string_view method) {
    return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" || method == "DELETE";
}

// Optional whitespace (RFC 9110 §5.6.3: SP and HTAB) off both ends of a
// header value or parameter.
inline std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The peer closed or reset the connection (as opposed to sending garbage).
inline bool is_connection_loss(const boost::system::error_code& ec) {
    namespace http = boost::beast::http;
    return ec == boost::asio::error::connection_reset || ec == boost::asio::error::broken_pipe ||
           ec == boost::asio::error::eof || ec == http::error::end_of_stream || ec == http::error::partial_message;
}

}  // namespace batchgate
