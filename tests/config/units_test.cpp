// Durations, sizes and host:port as written in the config file.
#include "proxy/config/config.hpp"

#include <boost/test/unit_test.hpp>

#include <optional>
#include <string_view>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace std::chrono_literals;

namespace {

bool refused_duration(std::string_view text) { return !parse_duration(text).has_value(); }
bool refused_size(std::string_view text) { return !parse_size(text).has_value(); }
bool refused_address(std::string_view text, bool allow_port_zero = false) {
    return !parse_host_port(text, allow_port_zero).has_value();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(units)

BOOST_AUTO_TEST_CASE(durations_with_each_unit) {
    BOOST_TEST(parse_duration("250ms").value() == 250ms);
    BOOST_TEST(parse_duration("5s").value() == 5s);
    BOOST_TEST(parse_duration("1m").value() == 1min);
    BOOST_TEST(parse_duration("1h").value() == 1h);
    BOOST_TEST(parse_duration("90s").value() == 90s);
    // Zero parses; the loader is the one that refuses it for timeouts.
    BOOST_TEST(parse_duration("0s").value() == 0ms);
}

BOOST_AUTO_TEST_CASE(durations_refused) {
    BOOST_TEST(refused_duration(""));
    BOOST_TEST(refused_duration("5"));  // bare number: seconds or milliseconds?
    BOOST_TEST(refused_duration("-1s"));
    BOOST_TEST(refused_duration("+1s"));
    BOOST_TEST(refused_duration("1.5s"));
    BOOST_TEST(refused_duration("5 s"));
    BOOST_TEST(refused_duration(" 5s"));
    BOOST_TEST(refused_duration("5s "));
    BOOST_TEST(refused_duration("5S"));
    BOOST_TEST(refused_duration("5sec"));
    BOOST_TEST(refused_duration("s"));
    BOOST_TEST(refused_duration("1d"));
    BOOST_TEST(refused_duration("1h30m"));
    BOOST_TEST(refused_duration("0x10s"));
}

BOOST_AUTO_TEST_CASE(duration_overflow_refused) {
    // The limit keeps the value representable in nanoseconds (int64).
    BOOST_TEST(parse_duration("2562047h").has_value());
    BOOST_TEST(refused_duration("2562048h"));
    BOOST_TEST(refused_duration("99999999999999999999999ms"));
    BOOST_TEST(refused_duration("18446744073709551616s"));
}

BOOST_AUTO_TEST_CASE(sizes_binary_decimal_and_plain) {
    BOOST_TEST(parse_size("4096").value() == 4096u);
    BOOST_TEST(parse_size("0").value() == 0u);
    BOOST_TEST(parse_size("1B").value() == 1u);
    BOOST_TEST(parse_size("512KiB").value() == 512u * 1024);
    BOOST_TEST(parse_size("8MiB").value() == 8u * 1024 * 1024);
    BOOST_TEST(parse_size("1GiB").value() == 1024u * 1024 * 1024);
    BOOST_TEST(parse_size("64KB").value() == 64'000u);
    BOOST_TEST(parse_size("1MB").value() == 1'000'000u);
    BOOST_TEST(parse_size("2GB").value() == 2'000'000'000u);
}

BOOST_AUTO_TEST_CASE(sizes_refused) {
    BOOST_TEST(refused_size(""));
    BOOST_TEST(refused_size("KiB"));
    BOOST_TEST(refused_size("8 MiB"));
    BOOST_TEST(refused_size("8mib"));
    BOOST_TEST(refused_size("8KiBs"));
    BOOST_TEST(refused_size("8K"));
    BOOST_TEST(refused_size("-1"));
    BOOST_TEST(refused_size("1.5MiB"));
    BOOST_TEST(refused_size("1e6"));
}

BOOST_AUTO_TEST_CASE(size_overflow_refused) {
    BOOST_TEST(parse_size("18446744073709551615").value() == 18446744073709551615u);
    BOOST_TEST(refused_size("18446744073709551616"));
    BOOST_TEST(parse_size("17179869183GiB").has_value());
    BOOST_TEST(refused_size("17179869184GiB"));  // exactly 2^64
    BOOST_TEST(refused_size("99999999999999999999999KiB"));
}

BOOST_AUTO_TEST_CASE(host_port_forms) {
    const auto v4 = parse_host_port("1.2.3.4:80", false);
    BOOST_REQUIRE(v4);
    BOOST_TEST(v4->host == "1.2.3.4");
    BOOST_TEST(v4->port == 80);

    const auto v6 = parse_host_port("[::1]:8080", false);
    BOOST_REQUIRE(v6);
    BOOST_TEST(v6->host == "::1");  // stored without brackets
    BOOST_TEST(v6->port == 8080);

    const auto name = parse_host_port("users.example:9001", false);
    BOOST_REQUIRE(name);
    BOOST_TEST(name->host == "users.example");
    BOOST_TEST(name->port == 9001);

    BOOST_TEST(parse_host_port("localhost:65535", false)->port == 65535);
    BOOST_TEST(parse_host_port("my_service-1:1", false)->host == "my_service-1");
    BOOST_TEST(parse_host_port("example.com.:80", false)->host == "example.com.");
    BOOST_TEST(parse_host_port("[fe80::1]:443", false)->host == "fe80::1");
}

BOOST_AUTO_TEST_CASE(port_zero_only_when_allowed) {
    BOOST_TEST(refused_address("127.0.0.1:0"));
    const auto any = parse_host_port("127.0.0.1:0", true);
    BOOST_REQUIRE(any);
    BOOST_TEST(any->port == 0);
    BOOST_TEST(parse_host_port("[::]:0", true).has_value());
}

BOOST_AUTO_TEST_CASE(host_port_refused) {
    BOOST_TEST(refused_address(""));
    BOOST_TEST(refused_address("1.2.3.4"));      // no port
    BOOST_TEST(refused_address(":80"));          // no host
    BOOST_TEST(refused_address("1.2.3.4:"));     // empty port
    BOOST_TEST(refused_address("1.2.3.4:65536"));
    BOOST_TEST(refused_address("1.2.3.4:123456"));
    BOOST_TEST(refused_address("1.2.3.4:+80"));
    BOOST_TEST(refused_address("1.2.3.4:80 "));
    BOOST_TEST(refused_address("1.2.3.4:http"));
    BOOST_TEST(refused_address("::1:80"));       // IPv6 needs brackets
    BOOST_TEST(refused_address("[::1]80"));
    BOOST_TEST(refused_address("[::1]"));
    BOOST_TEST(refused_address("[::1:80"));
    BOOST_TEST(refused_address("[1.2.3.4]:80"));  // brackets are for IPv6 only
    BOOST_TEST(refused_address("[nonsense]:80"));
    BOOST_TEST(refused_address("bad host:80"));
    BOOST_TEST(refused_address("-bad.example:80"));
    BOOST_TEST(refused_address("a..b:80"));
    BOOST_TEST(refused_address("10.0.0.256:80"));  // numeric, so it must be a valid IPv4
    BOOST_TEST(refused_address("10.1:80"));
    BOOST_TEST(refused_address("host\r\n:80"));
    BOOST_TEST(refused_address("user@host:80"));
    BOOST_TEST(refused_address("http://host:80"));
}

BOOST_AUTO_TEST_CASE(host_port_text_brackets_ipv6) {
    BOOST_TEST((host_port{"1.2.3.4", 80}.text()) == "1.2.3.4:80");
    BOOST_TEST((host_port{"::1", 8080}.text()) == "[::1]:8080");
    BOOST_TEST((host_port{"users.example", 9001}.text()) == "users.example:9001");
    // Round trip.
    BOOST_TEST(parse_host_port("[2001:db8::1]:443", false)->text() == "[2001:db8::1]:443");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
