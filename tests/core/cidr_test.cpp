// trusted_proxies ranges: parsing and matching, including IPv4-mapped clients.
#include "proxy/core/cidr.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/test/unit_test.hpp>

#include <string>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using boost::asio::ip::make_address;

namespace {

bool in(const char* range, const char* address) {
    const auto r = parse_cidr(range);
    BOOST_REQUIRE_MESSAGE(r, "range did not parse: " << range);
    return r->contains(make_address(address));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cidr)

BOOST_AUTO_TEST_CASE(parses_ranges_and_bare_addresses) {
    const auto v4 = parse_cidr("10.0.0.0/8");
    BOOST_REQUIRE(v4);
    BOOST_TEST(v4->network.to_string() == "10.0.0.0");
    BOOST_TEST(v4->prefix_length == 8u);

    const auto v6 = parse_cidr("fd00::/8");
    BOOST_REQUIRE(v6);
    BOOST_TEST(v6->network.to_string() == "fd00::");
    BOOST_TEST(v6->prefix_length == 8u);

    const auto host4 = parse_cidr("192.168.1.7");
    BOOST_REQUIRE(host4);
    BOOST_TEST(host4->prefix_length == 32u);

    const auto host6 = parse_cidr("::1");
    BOOST_REQUIRE(host6);
    BOOST_TEST(host6->prefix_length == 128u);

    BOOST_TEST(parse_cidr("0.0.0.0/0")->prefix_length == 0u);
    BOOST_TEST(parse_cidr("::/0")->prefix_length == 0u);
    BOOST_TEST(parse_cidr("1.2.3.4/32")->prefix_length == 32u);
    BOOST_TEST(parse_cidr("2001:db8::1/128")->prefix_length == 128u);
}

BOOST_AUTO_TEST_CASE(host_bits_are_cleared) {
    BOOST_TEST(parse_cidr("10.1.2.3/8")->network.to_string() == "10.0.0.0");
    BOOST_TEST(parse_cidr("172.31.200.1/12")->network.to_string() == "172.16.0.0");
    BOOST_TEST(parse_cidr("2001:db8:ffff::1/32")->network.to_string() == "2001:db8::");
}

BOOST_AUTO_TEST_CASE(mapped_range_becomes_ipv4) {
    const auto r = parse_cidr("::ffff:10.0.0.0/104");
    BOOST_REQUIRE(r);
    BOOST_TEST(r->network.is_v4());
    BOOST_TEST(r->network.to_string() == "10.0.0.0");
    BOOST_TEST(r->prefix_length == 8u);
    BOOST_TEST(r->contains(make_address("10.9.9.9")));
    BOOST_TEST(r->contains(make_address("::ffff:10.9.9.9")));
}

BOOST_AUTO_TEST_CASE(garbage_refused) {
    for (const char* bad : {"", "garbage", "10.0.0.0/33", "::/129", "10.0.0.0/", "/8", "10.0.0.0/-1",
                            "10.0.0.0/+8", "10.0.0.0/8x", "10.0.0.0/8/8", "10.0.0/8", "10.0.0.0/8 ",
                            " 10.0.0.0/8", "10.0.0.256/8", "fe80::1%eth0/64", "fe80::1%1", "10.0.0.0/0008",
                            "1.2.3.4:80", "[::1]/128"}) {
        BOOST_TEST(!parse_cidr(bad).has_value(), "accepted: '" << bad << "'");
    }
}

BOOST_AUTO_TEST_CASE(ipv4_matching) {
    BOOST_TEST(in("10.0.0.0/8", "10.255.0.1"));
    BOOST_TEST(!in("10.0.0.0/8", "11.0.0.1"));
    BOOST_TEST(in("172.16.0.0/12", "172.31.255.255"));  // prefix not on a byte boundary
    BOOST_TEST(!in("172.16.0.0/12", "172.32.0.0"));
    BOOST_TEST(!in("172.16.0.0/12", "172.15.255.255"));
    BOOST_TEST(in("192.168.1.7", "192.168.1.7"));
    BOOST_TEST(!in("192.168.1.7", "192.168.1.8"));
    BOOST_TEST(in("0.0.0.0/0", "203.0.113.9"));
}

BOOST_AUTO_TEST_CASE(ipv6_matching) {
    BOOST_TEST(in("fd00::/8", "fd12:3456::1"));
    BOOST_TEST(!in("fd00::/8", "fe80::1"));
    BOOST_TEST(in("2001:db8::/33", "2001:db8:7fff::1"));
    BOOST_TEST(!in("2001:db8::/33", "2001:db8:8000::1"));
    BOOST_TEST(in("::1", "::1"));
    BOOST_TEST(!in("::1", "::2"));
    BOOST_TEST(in("::/0", "2001:db8::1"));
}

BOOST_AUTO_TEST_CASE(mapped_clients_match_ipv4_ranges) {
    // What a dual-stack listener reports for an IPv4 client.
    BOOST_TEST(in("10.0.0.0/8", "::ffff:10.1.2.3"));
    BOOST_TEST(!in("10.0.0.0/8", "::ffff:11.1.2.3"));
    BOOST_TEST(in("127.0.0.1", "::ffff:127.0.0.1"));
    BOOST_TEST(in("0.0.0.0/0", "::ffff:8.8.8.8"));
}

BOOST_AUTO_TEST_CASE(families_do_not_mix) {
    BOOST_TEST(!in("::/0", "10.0.0.1"));
    BOOST_TEST(!in("0.0.0.0/0", "::1"));
    BOOST_TEST(!in("0.0.0.0/0", "2001:db8::1"));
    // ::a.b.c.d (IPv4-compatible, deprecated) is not an IPv4-mapped address.
    BOOST_TEST(!in("10.0.0.0/8", "::10.1.2.3"));
}

BOOST_AUTO_TEST_CASE(any_contains_checks_every_range) {
    std::vector<batchgate::cidr> ranges;
    BOOST_TEST(!any_contains(ranges, make_address("10.0.0.1")));
    ranges.push_back(*parse_cidr("10.0.0.0/8"));
    ranges.push_back(*parse_cidr("fd00::/8"));
    BOOST_TEST(any_contains(ranges, make_address("10.0.0.1")));
    BOOST_TEST(any_contains(ranges, make_address("fd00::5")));
    BOOST_TEST(any_contains(ranges, make_address("::ffff:10.0.0.1")));
    BOOST_TEST(!any_contains(ranges, make_address("192.168.0.1")));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
