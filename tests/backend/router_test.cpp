#include "proxy/backend/router.hpp"

#include <boost/test/unit_test.hpp>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;

namespace {

target_error norm(std::string_view t, std::string& path_out) {
    normalized_target n;
    auto e = normalize_target(t, n);
    path_out = n.path + (n.has_query ? "?" + n.query : "");
    return e;
}

std::string normalized(std::string_view t) {
    std::string out;
    BOOST_REQUIRE_MESSAGE(norm(t, out) == target_error::none, "target refused: " << t);
    return out;
}

target_error refusal(std::string_view t) {
    std::string ignored;
    return norm(t, ignored);
}

batchgate::router make_router() {
    return batchgate::router({{"/", "legacy", std::nullopt},
                   {"/users", "users", std::string("/api/v1/users")},
                   {"/users/admin", "admin", std::nullopt},
                   {"/strip", "strip", std::string("")},
                   {"/dir/", "dir", std::string("/x")}});
}

std::string route(const batchgate::router& r, std::string_view target, std::string* backend = nullptr) {
    normalized_target n;
    BOOST_REQUIRE(normalize_target(target, n) == target_error::none);
    route_match m;
    BOOST_REQUIRE(r.match(n, m));
    if (backend) *backend = m.backend;
    return m.target;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(router)

BOOST_AUTO_TEST_CASE(plain_paths_pass_unchanged) {
    BOOST_TEST(normalized("/") == "/");
    BOOST_TEST(normalized("/users/1") == "/users/1");
    BOOST_TEST(normalized("/users/1?x=1&y=%20z") == "/users/1?x=1&y=%20z");
    BOOST_TEST(normalized("/a%20b/c") == "/a%20b/c");
    BOOST_TEST(normalized("/users/") == "/users/");
    BOOST_TEST(normalized("/?") == "/?");
}

BOOST_AUTO_TEST_CASE(dot_segments_are_resolved_before_routing) {
    BOOST_TEST(normalized("/users/../admin") == "/admin");
    BOOST_TEST(normalized("/users/./1") == "/users/1");
    BOOST_TEST(normalized("/users/%2e%2E/admin") == "/admin");
    BOOST_TEST(normalized("/a/b/..") == "/a/");
    BOOST_TEST(normalized("/a/.") == "/a/");
    BOOST_TEST(normalized("/..a/b") == "/..a/b");  // not a dot segment
}

BOOST_AUTO_TEST_CASE(refused_targets) {
    BOOST_TEST((refusal("") == target_error::not_origin_form));
    BOOST_TEST((refusal("users/1") == target_error::not_origin_form));
    BOOST_TEST((refusal("http://evil.example/x") == target_error::not_origin_form));
    BOOST_TEST((refusal("//evil.example/x") == target_error::not_origin_form));
    BOOST_TEST((refusal("*") == target_error::not_origin_form));
    BOOST_TEST((refusal("/a/..//evil") == target_error::not_origin_form));
    BOOST_TEST((refusal("/..") == target_error::climbs_out));
    BOOST_TEST((refusal("/a/../../etc/passwd") == target_error::climbs_out));
    BOOST_TEST((refusal("/%2e%2e/x") == target_error::climbs_out));
    BOOST_TEST((refusal("/a\r\nHost: x") == target_error::bad_character));
    BOOST_TEST((refusal("/a\nb") == target_error::bad_character));
    BOOST_TEST((refusal(std::string_view("/a\0b", 4)) == target_error::bad_character));
    BOOST_TEST((refusal("/a b") == target_error::bad_character));
    BOOST_TEST((refusal("/a\\..\\b") == target_error::bad_character));
    BOOST_TEST((refusal("/a#frag") == target_error::bad_character));
    BOOST_TEST((refusal("/caf\xc3\xa9") == target_error::bad_character));
    BOOST_TEST((refusal("/a%2Fb") == target_error::bad_encoding));
    BOOST_TEST((refusal("/a%2fb") == target_error::bad_encoding));
    BOOST_TEST((refusal("/a%5Cb") == target_error::bad_encoding));
    BOOST_TEST((refusal("/a%00b") == target_error::bad_encoding));
    BOOST_TEST((refusal("/a%0d%0aX") == target_error::bad_encoding));
    BOOST_TEST((refusal("/a%zz") == target_error::bad_encoding));
    BOOST_TEST((refusal("/a%2") == target_error::bad_encoding));
    BOOST_TEST((refusal("/a?q=%G0") == target_error::bad_encoding));
}

BOOST_AUTO_TEST_CASE(every_refusal_has_a_description) {
    for (auto e : {target_error::not_origin_form, target_error::bad_character, target_error::bad_encoding,
                   target_error::climbs_out})
        BOOST_TEST(describe(e).size() > 10u);
}

BOOST_AUTO_TEST_CASE(longest_prefix_wins) {
    auto r = make_router();
    std::string backend;
    route(r, "/users/admin/1", &backend);
    BOOST_TEST(backend == "admin");
    route(r, "/users/1", &backend);
    BOOST_TEST(backend == "users");
    route(r, "/other", &backend);
    BOOST_TEST(backend == "legacy");
}

BOOST_AUTO_TEST_CASE(prefixes_match_whole_segments) {
    auto r = make_router();
    std::string backend;
    BOOST_TEST(route(r, "/users-admin/1", &backend) == "/users-admin/1");
    BOOST_TEST(backend == "legacy");
    BOOST_TEST(route(r, "/usersx", &backend) == "/usersx");
    BOOST_TEST(backend == "legacy");
}

BOOST_AUTO_TEST_CASE(rewrite_prefix_replaces_the_matched_prefix) {
    auto r = make_router();
    BOOST_TEST(route(r, "/users/1") == "/api/v1/users/1");
    BOOST_TEST(route(r, "/users") == "/api/v1/users");
    BOOST_TEST(route(r, "/users/1?x=%41") == "/api/v1/users/1?x=%41");
    BOOST_TEST(route(r, "/strip/1") == "/1");
    BOOST_TEST(route(r, "/strip") == "/");
    BOOST_TEST(route(r, "/strip?q") == "/?q");
    BOOST_TEST(route(r, "/dir/a") == "/x/a");
    BOOST_TEST(route(r, "/users/admin/2") == "/users/admin/2");  // no rewrite on that route
}

BOOST_AUTO_TEST_CASE(dot_segments_cannot_escape_a_route) {
    auto r = make_router();
    std::string backend;
    BOOST_TEST(route(r, "/users/../secret", &backend) == "/secret");
    BOOST_TEST(backend == "legacy");
}

BOOST_AUTO_TEST_CASE(no_route_is_reported) {
    batchgate::router r({{"/users", "users", std::nullopt}});
    normalized_target n;
    BOOST_REQUIRE(normalize_target("/items/1", n) == target_error::none);
    route_match m;
    BOOST_TEST(!r.match(n, m));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
