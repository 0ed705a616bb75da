// Item targets relative to the batch (RFC 3986 §5) and absolute URIs on the
// batch's own authority (PRODUCT.md §1.4).
#include "proxy/batch/item_target.hpp"

#include "proxy/backend/router.hpp"

#include <boost/test/unit_test.hpp>

#include <string>

namespace BATCHGATE_TEST_FILE {

using namespace batchgate;

namespace {

const item_target_resolver odata("/odata/$batch", "Example.com:8080");

std::string resolved(std::string_view target, const item_target_resolver& r = odata) {
    std::string out;
    const auto why = r.resolve(target, out);
    BOOST_TEST_REQUIRE(!why.has_value(), "refused " << target << ": " << why.value_or(""));
    return out;
}

std::string why_not(std::string_view target, const item_target_resolver& r = odata) {
    std::string out;
    const auto why = r.resolve(target, out);
    BOOST_TEST_REQUIRE(why.has_value(), "resolved " << target << " to " << out);
    return *why;
}

// Whether normalize_target accepts the resolved path (the router's view).
bool climbs_out(std::string_view target) {
    normalized_target n;
    return normalize_target(resolved(target), n) == target_error::climbs_out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(item_target)

BOOST_AUTO_TEST_CASE(absolute_paths_pass_unchanged) {
    BOOST_TEST(resolved("/users/1") == "/users/1");
    BOOST_TEST(resolved("/users/../admin?x=1") == "/users/../admin?x=1");  // normalize_target's job
}

BOOST_AUTO_TEST_CASE(relative_references_resolve_against_the_batch_path) {
    BOOST_TEST(resolved("users(1)") == "/odata/users(1)");
    BOOST_TEST(resolved("People('a')/Name") == "/odata/People('a')/Name");
    BOOST_TEST(resolved("./x") == "/odata/x");
    BOOST_TEST(resolved("../x") == "/x");
    BOOST_TEST(resolved("../v2/x") == "/v2/x");
    BOOST_TEST(resolved("users?$top=2&$skip=1") == "/odata/users?$top=2&$skip=1");
    BOOST_TEST(resolved("$metadata") == "/odata/$metadata");
    const item_target_resolver nested("/api/v1/$batch", "h");
    BOOST_TEST(resolved("../v2/users", nested) == "/api/v2/users");
    BOOST_TEST(resolved("a/b/../c", nested) == "/api/v1/a/c");
}

BOOST_AUTO_TEST_CASE(climbing_above_the_root_is_refused) {
    BOOST_TEST(resolved("../../../x") == "/../../x");  // kept visible for normalize_target
    BOOST_TEST(climbs_out("../../../x"));
    BOOST_TEST(climbs_out("../../x"));
    BOOST_TEST(!climbs_out("../x"));
}

BOOST_AUTO_TEST_CASE(absolute_uris_on_our_own_authority) {
    BOOST_TEST(resolved("http://example.com:8080/users/1?x=y") == "/users/1?x=y");
    BOOST_TEST(resolved("HTTP://EXAMPLE.COM:8080/odata/People") == "/odata/People");
    BOOST_TEST(resolved("//example.com:8080/p") == "/p");
    BOOST_TEST(resolved("http://example.com:8080") == "/");
    const item_target_resolver default_port("/batch", "example.com");
    BOOST_TEST(resolved("http://example.com:80/a", default_port) == "/a");
    BOOST_TEST(resolved("https://example.com:443/a", default_port) == "/a");
    BOOST_TEST(resolved("https://example.com/a", default_port) == "/a");
    const item_target_resolver v6("/batch", "[::1]:9000");
    BOOST_TEST(resolved("http://[::1]:9000/a", v6) == "/a");
}

BOOST_AUTO_TEST_CASE(foreign_authorities_and_odd_uris_are_refused) {
    BOOST_TEST(why_not("http://evil.example/users").find("another server (evil.example)") != std::string::npos);
    BOOST_TEST(why_not("http://example.com/users").find("another server") != std::string::npos);  // port differs
    BOOST_TEST(why_not("http://example.com:8081/users").find("another server") != std::string::npos);
    BOOST_TEST(why_not("//evil.example/x").find("another server") != std::string::npos);
    BOOST_TEST(why_not("http://user@example.com:8080/x").find("userinfo") != std::string::npos);
    BOOST_TEST(why_not("ftp://example.com:8080/x").find("scheme 'ftp'") != std::string::npos);
    BOOST_TEST(why_not("mailto:a@b").find("no authority") != std::string::npos);
    BOOST_TEST(why_not("users#frag").find("fragment") != std::string::npos);
    BOOST_TEST(why_not("a b").find("not a URI reference") != std::string::npos);
    BOOST_TEST(why_not("").find("empty") != std::string::npos);
    const item_target_resolver no_host("/batch", "");
    BOOST_TEST(why_not("http://example.com/x", no_host).find("another server") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(authorities_compare_canonically) {
    BOOST_TEST(canonical_authority("Example.COM:80", "http") == "example.com");
    BOOST_TEST(canonical_authority("example.com:443", "http") == "example.com:443");
    BOOST_TEST(canonical_authority("example.com:443", "https") == "example.com");
    BOOST_TEST(canonical_authority("[::1]", "http") == "[::1]");
    BOOST_TEST(canonical_authority("[::1]:80", "http") == "[::1]");
    BOOST_TEST(canonical_authority("host:", "http") == "host");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
