// Address ranges for trusted_proxies. Parsing happens at config load; contains()
// runs per connection, so it works on the raw bytes and never allocates.
#include "proxy/core/cidr.hpp"

#include <array>
#include <charconv>
#include <cstddef>
#include <string>

namespace batchgate {
namespace {

namespace ip = boost::asio::ip;

// A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; trusted_proxies
// is written with IPv4 ranges, so both sides are compared in their IPv4 form.
ip::address unmap(const ip::address& addr) {
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        return ip::make_address_v4(ip::v4_mapped, addr.to_v6());
    return addr;
}

// True when the first `bits` bits of a and b are equal.
template <std::size_t N>
bool same_prefix(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b,
                 unsigned bits) {
    std::size_t i = 0;
    for (; bits >= 8; bits -= 8, ++i)
        if (a[i] != b[i]) return false;
    if (bits == 0) return true;
    const auto mask = static_cast<unsigned char>(0xFFu << (8 - bits));
    return (a[i] & mask) == (b[i] & mask);
}

template <std::size_t N>
void clear_host_bits(std::array<unsigned char, N>& bytes, unsigned bits) {
    for (std::size_t i = 0; i < N; ++i) {
        if (bits >= 8) {
            bits -= 8;
        } else {
            bytes[i] &= static_cast<unsigned char>(0xFFu << (8 - bits));
            bits = 0;
        }
    }
}

std::optional<unsigned> parse_prefix_length(std::string_view text) {
    // Digits only: from_chars alone would accept "+8" on some libraries and
    // we want "8 " or "0x8" refused too.
    if (text.empty() || text.size() > 3) return std::nullopt;
    for (char c : text)
        if (c < '0' || c > '9') return std::nullopt;
    unsigned value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value);
    return value;
}

}  // namespace

bool cidr::contains(const boost::asio::ip::address& addr) const {
    const ip::address a = unmap(addr);
    if (a.is_v4() != network.is_v4()) return false;
    if (a.is_v4()) return same_prefix(a.to_v4().to_bytes(), network.to_v4().to_bytes(), prefix_length);
    return same_prefix(a.to_v6().to_bytes(), network.to_v6().to_bytes(), prefix_length);
}

std::optional<cidr> parse_cidr(std::string_view text) {
    const auto slash = text.find('/');
    const std::string_view addr_text = text.substr(0, slash);
    // A zone id ("fe80::1%eth0") names an interface, not a range.
    if (addr_text.empty() || addr_text.find('%') != std::string_view::npos) return std::nullopt;

    boost::system::error_code ec;
    ip::address addr = ip::make_address(std::string(addr_text), ec);
    if (ec) return std::nullopt;

    const unsigned max_bits = addr.is_v4() ? 32 : 128;
    unsigned bits = max_bits;
    if (slash != std::string_view::npos) {
        const auto parsed = parse_prefix_length(text.substr(slash + 1));
        if (!parsed || *parsed > max_bits) return std::nullopt;
        bits = *parsed;
    }

    // "::ffff:10.0.0.0/104" is an IPv4 range in IPv6 spelling; store it as
    // 10.0.0.0/8 so it matches the (unmapped) clients contains() compares.
    if (addr.is_v6() && addr.to_v6().is_v4_mapped() && bits >= 96) {
        addr = unmap(addr);
        bits -= 96;
    }

    // Host bits are cleared rather than refused ("10.1.2.3/8" means 10.0.0.0/8),
    // as nginx's set_real_ip_from and Envoy do.
    if (addr.is_v4()) {
        auto bytes = addr.to_v4().to_bytes();
        clear_host_bits(bytes, bits);
        return cidr{ip::address_v4(bytes), bits};
    }
    auto bytes = addr.to_v6().to_bytes();
    clear_host_bits(bytes, bits);
    return cidr{ip::address_v6(bytes), bits};
}

bool any_contains(const std::vector<cidr>& ranges, const boost::asio::ip::address& addr) {
    for (const cidr& range : ranges)
        if (range.contains(addr)) return true;
    return false;
}

}  // namespace batchgate
