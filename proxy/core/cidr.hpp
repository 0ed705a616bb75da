// An address range such as 10.0.0.0/8 or fd00::/8, for trusted_proxies.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string_view>
#include <vector>

namespace batchgate {

struct cidr {
    boost::asio::ip::address network;  // host bits cleared
    unsigned prefix_length = 0;

    bool contains(const boost::asio::ip::address& addr) const;
};

// "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128). IPv4-mapped
// IPv6 client addresses match IPv4 ranges.
std::optional<cidr> parse_cidr(std::string_view text);

bool any_contains(const std::vector<cidr>& ranges, const boost::asio::ip::address& addr);

}  // namespace batchgate
