// Header rules for everything batchgate forwards (PRODUCT.md §3): hop-by-hop
// headers never cross us, Via/Forwarded/X-Forwarded-* are added, and
// client-supplied forwarding headers are only believed from trusted proxies
// (APISIX's CVE-2022-24112 came from believing them).
#pragma once

#include "proxy/core/cidr.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/fields.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace batchgate {

namespace http = boost::beast::http;

// Connection, Keep-Alive, Proxy-Connection, Proxy-*, TE, Trailer,
// Transfer-Encoding, Upgrade.
bool is_hop_by_hop(std::string_view name);

// True for names a client may not set on a forwarded request because we own
// them: Host, Content-Length, Expect, plus hop-by-hop.
bool is_proxy_managed_request_header(std::string_view name);

// Drop-unless-trusted: Forwarded, X-Forwarded-*, X-Real-IP.
bool is_forwarding_header(std::string_view name);

// Who sent a request, with the texts every forwarded request carries
// formatted once when it is made (once per request: a batch's items share
// them) rather than once per item (inet_ntop is not free).
class client_info {
public:
    client_info() : client_info(boost::asio::ip::address_v4::any(), false, false) {}
    client_info(const boost::asio::ip::address& address, bool tls, bool trusted);
    // The same client with trust decided anew (per request: a reload may
    // change trusted_proxies), reusing the texts instead of formatting them.
    client_info(const client_info& same_client, bool trusted) : client_info(same_client) { trusted_ = trusted; }

    const boost::asio::ip::address& address() const { return address_; }
    bool tls() const { return tls_; }
    bool trusted() const { return trusted_; }  // address is in trusted_proxies
    const std::string& address_text() const { return address_text_; }  // X-Forwarded-For, the access log
    const std::string& forwarded() const { return forwarded_; }        // RFC 7239: for=…;proto=…

private:
    boost::asio::ip::address address_;
    bool tls_;
    bool trusted_;
    std::string address_text_;
    std::string forwarded_;
};

// Copies end-to-end request headers from `in` to `out`: drops hop-by-hop
// headers, those named by `in`'s Connection header, proxy-managed ones, and
// (for untrusted clients) forwarding headers. Then sets Host and appends
// Via, X-Forwarded-For, X-Forwarded-Proto and Forwarded for `client`.
void build_forwarded_request_headers(const http::fields& in, http::fields& out,
                                     const client_info& client, std::string_view host);
// The same headers appended to a serialized HTTP/1.1 head as "Name: value"
// lines. The values are as safe as `in`'s, `client`'s and `host`: checked
// where they entered (the batch parser, the frontends, the config). A
// non-empty `request_id` is sent as X-Request-Id in place of `in`'s.
void append_forwarded_request_headers(const http::fields& in, std::string& head, const client_info& client,
                                      std::string_view host, std::string_view request_id = {});

// Copies end-to-end response headers (no hop-by-hop, no Content-Length:
// framing is re-decided by whoever writes the response) and appends Via.
void build_forwarded_response_headers(const http::fields& in, http::fields& out);

// A header value is safe to put on the wire: no CR, LF or NUL.
bool is_safe_header_value(std::string_view value);
// RFC 9110 token (header names, methods).
bool is_token(std::string_view s);

}  // namespace batchgate
