#include "proxy/backend/forwarding.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <array>
#include <string>

namespace batchgate {

namespace {

using boost::beast::iequals;

constexpr std::string_view via_value = "1.1 batchgate";

bool named_by_connection(const http::fields& in, std::string_view name) {
    for (auto it = in.find(http::field::connection); it != in.end() && it->name() == http::field::connection; ++it) {
        for (auto token : http::token_list{it->value()})
            if (iequals(token, name)) return true;
    }
    return false;
}

// Joins every occurrence of a header into one comma-separated list value.
std::string joined(const http::fields& in, std::string_view name) {
    std::string out;
    for (auto range = in.equal_range(name); range.first != range.second; ++range.first) {
        if (!out.empty()) out += ", ";
        out += range.first->value();
    }
    return out;
}

// The forwarded request headers, each handed to `emit(name, value)` once:
// written once for Beast's fields (HTTP/1.1 pass-through, h2) and for a
// serialized HTTP/1.1 head (batch items).
template <class Emit>
void forward_request_headers(const http::fields& in, const client_info& client, std::string_view host, Emit&& emit) {
    for (const auto& f : in) {
        auto name = f.name_string();
        if (is_proxy_managed_request_header(name) || named_by_connection(in, name)) continue;
        if (is_forwarding_header(name) && !client.trusted()) continue;
        // Rebuilt below from the existing values plus ours.
        if (iequals(name, "via") || iequals(name, "forwarded") || iequals(name, "x-forwarded-for") ||
            iequals(name, "x-forwarded-proto"))
            continue;
        emit(name, f.value());
    }
    emit("Host", host);
    const auto list = [&](std::string_view name, const std::string& existing, std::string_view ours) {
        if (existing.empty())
            emit(name, ours);
        else
            emit(name, existing + ", " + std::string(ours));
    };
    list("Via", joined(in, "via"), via_value);

    const std::string_view proto = client.tls() ? "https" : "http";
    if (client.trusted()) {
        list("X-Forwarded-For", joined(in, "x-forwarded-for"), client.address_text());
        auto xfp = joined(in, "x-forwarded-proto");
        emit("X-Forwarded-Proto", xfp.empty() ? proto : std::string_view(xfp));
        list("Forwarded", joined(in, "forwarded"), client.forwarded());
    } else {
        emit("X-Forwarded-For", client.address_text());
        emit("X-Forwarded-Proto", proto);
        emit("Forwarded", client.forwarded());
    }
}

}  // namespace

client_info::client_info(const boost::asio::ip::address& address, bool tls, bool trusted)
    : address_(address), tls_(tls), trusted_(trusted), address_text_(address.to_string()) {
    // RFC 7239 §6: IPv6 nodes are quoted and bracketed.
    forwarded_ = address.is_v6() ? "for=\"[" + address_text_ + "]\"" : "for=" + address_text_;
    forwarded_ += tls ? ";proto=https" : ";proto=http";
}

bool is_hop_by_hop(std::string_view name) {
    static constexpr std::array<std::string_view, 7> names{"connection",        "keep-alive", "te",      "trailer",
                                                           "transfer-encoding", "upgrade",    "trailers"};
    for (auto n : names)
        if (iequals(n, name)) return true;
    return name.size() >= 6 && iequals(name.substr(0, 6), "proxy-");
}

bool is_proxy_managed_request_header(std::string_view name) {
    return is_hop_by_hop(name) || iequals(name, "host") || iequals(name, "content-length") || iequals(name, "expect");
}

bool is_forwarding_header(std::string_view name) {
    return iequals(name, "forwarded") || iequals(name, "x-real-ip") ||
           (name.size() >= 12 && iequals(name.substr(0, 12), "x-forwarded-"));
}

void build_forwarded_request_headers(const http::fields& in, http::fields& out, const client_info& client,
                                     std::string_view host) {
    // Every name is emitted once (the ones we set were skipped in `in`).
    forward_request_headers(in, client, host,
                            [&out](std::string_view name, std::string_view value) { out.insert(name, value); });
}

void append_forwarded_request_headers(const http::fields& in, std::string& head, const client_info& client,
                                      std::string_view host, std::string_view request_id) {
    forward_request_headers(in, client, host, [&](std::string_view name, std::string_view value) {
        if (!request_id.empty() && iequals(name, "x-request-id")) return;  // ours replaces it
        head.append(name).append(": ").append(value).append("\r\n");
    });
    if (!request_id.empty()) head.append("X-Request-Id: ").append(request_id).append("\r\n");
}

void build_forwarded_response_headers(const http::fields& in, http::fields& out) {
    for (const auto& f : in) {
        auto name = f.name_string();
        if (is_hop_by_hop(name) || iequals(name, "content-length") || iequals(name, "via")) continue;
        if (named_by_connection(in, name)) continue;
        out.insert(name, f.value());
    }
    const auto via = joined(in, "via");
    out.set("Via", via.empty() ? std::string(via_value) : via + ", " + std::string(via_value));
}

bool is_safe_header_value(std::string_view value) {
    for (char c : value)
        if (c == '\r' || c == '\n' || c == '\0') return false;
    return true;
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

}  // namespace batchgate
