// Endpoint selection state and the ejection schedule, with the time given
// by the test (no sleeping).
#include "proxy/backend/endpoint_health.hpp"

#include <boost/test/unit_test.hpp>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace std::chrono_literals;
using clock_type = endpoint_health::clock;

namespace {

const clock_type::time_point t0 = clock_type::time_point(1000h);

outlier_config outlier_of(unsigned failures, duration base = 10s, duration most = 5min, unsigned percent = 50) {
    outlier_config o;
    o.consecutive_failures = failures;
    o.base_ejection = base;
    o.max_ejection = most;
    o.max_ejected_percent = percent;
    return o;
}

void fail(endpoint_health& h, std::size_t ep, unsigned times, const outlier_config& o, clock_type::time_point now) {
    for (unsigned i = 0; i < times; ++i) h.observe(ep, endpoint_signal::failure, o, now);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(endpoint_health_schedule)

BOOST_AUTO_TEST_CASE(what_counts_against_an_endpoint) {
    BOOST_TEST((signal_of(attempt_event::connect_failed, 0) == endpoint_signal::failure));
    BOOST_TEST((signal_of(attempt_event::connect_timeout, 0) == endpoint_signal::failure));
    BOOST_TEST((signal_of(attempt_event::reset, 0) == endpoint_signal::failure));
    BOOST_TEST((signal_of(attempt_event::timeout, 0) == endpoint_signal::failure));
    for (unsigned status : {502u, 503u, 504u}) BOOST_TEST((signal_of(attempt_event::answered, status) == endpoint_signal::failure));
    for (unsigned status : {200u, 404u, 429u, 500u}) BOOST_TEST((signal_of(attempt_event::answered, status) == endpoint_signal::success));
    BOOST_TEST((signal_of(attempt_event::queue_timeout, 0) == endpoint_signal::neutral));
    BOOST_TEST((signal_of(attempt_event::stale_connection, 0) == endpoint_signal::neutral));
    BOOST_TEST((signal_of(attempt_event::refused, 0) == endpoint_signal::neutral));
    BOOST_TEST((signal_of(attempt_event::unusable, 0) == endpoint_signal::neutral));
}

BOOST_AUTO_TEST_CASE(consecutive_failures_eject_and_a_success_resets_the_streak) {
    endpoint_health h(2);
    const auto o = outlier_of(3);
    fail(h, 0, 2, o, t0);
    h.observe(0, endpoint_signal::success, o, t0);
    fail(h, 0, 2, o, t0);
    BOOST_TEST(h.available(0, t0));  // 2, success, 2: never 3 in a row
    h.observe(0, endpoint_signal::neutral, o, t0);  // neutral neither counts nor resets
    fail(h, 0, 1, o, t0);
    BOOST_TEST(!h.available(0, t0));
    BOOST_TEST(h.available(1, t0));
    BOOST_TEST(h.any_available(t0));
    BOOST_TEST(h.ejected_now() == 1u);
}

BOOST_AUTO_TEST_CASE(ejection_ends_after_its_time_and_is_counted_once) {
    backend_metrics m;
    endpoint_health h(2, &m);
    const auto o = outlier_of(1, 10s);
    fail(h, 0, 1, o, t0);
    BOOST_TEST(m.ejections.load() == 1u);
    BOOST_TEST(m.ejected_endpoints.load() == 1);
    BOOST_TEST(!h.available(0, t0 + 9999ms));
    BOOST_TEST(h.available(0, t0 + 10s));
    BOOST_TEST(h.available(0, t0 + 10s));
    BOOST_TEST(m.ejection_returns.load() == 1u);
    BOOST_TEST(m.ejected_endpoints.load() == 0);
    BOOST_TEST(h.ejected_now() == 0u);
}

BOOST_AUTO_TEST_CASE(each_ejection_lasts_longer_up_to_max) {
    endpoint_health h(2);
    const auto o = outlier_of(1, 10s, 25s);
    auto now = t0;
    const std::chrono::seconds expected[] = {10s, 20s, 25s, 25s};
    for (auto length : expected) {
        BOOST_TEST_CONTEXT("ejection of " << length.count() << " s") {
            fail(h, 0, 1, o, now);
            const auto v = h.view(0);
            BOOST_TEST(v.ejected);
            BOOST_TEST((v.ejected_until - now == length));
            BOOST_TEST(!h.available(0, now + length - 1ms));
            now += length;
            BOOST_TEST(h.available(0, now));
        }
    }
    BOOST_TEST((endpoint_health::ejection_time(1'000'000'000u, o) == 25s));  // no overflow
}

BOOST_AUTO_TEST_CASE(a_long_stay_in_rotation_forgets_earlier_ejections) {
    endpoint_health h(2);
    const auto o = outlier_of(1, 10s, 60s);
    fail(h, 0, 1, o, t0);
    BOOST_TEST(h.available(0, t0 + 10s));
    fail(h, 0, 1, o, t0 + 10s + 59s);  // back for less than max_ejection: second ejection, 20 s
    BOOST_TEST((h.view(0).ejected_until == t0 + 69s + 20s));
    BOOST_TEST(h.available(0, t0 + 89s));
    fail(h, 0, 1, o, t0 + 89s + 60s);  // back for max_ejection: starts over at base
    BOOST_TEST(h.view(0).times_ejected == 1u);
    BOOST_TEST((h.view(0).ejected_until == t0 + 149s + 10s));
}

BOOST_AUTO_TEST_CASE(max_ejected_keeps_a_share_in_and_always_allows_one) {
    BOOST_TEST(endpoint_health::max_ejected(1, 50) == 1u);
    BOOST_TEST(endpoint_health::max_ejected(2, 50) == 1u);
    BOOST_TEST(endpoint_health::max_ejected(4, 50) == 2u);
    BOOST_TEST(endpoint_health::max_ejected(10, 0) == 1u);
    BOOST_TEST(endpoint_health::max_ejected(3, 100) == 3u);

    endpoint_health h(2);
    const auto o = outlier_of(2);
    fail(h, 0, 2, o, t0);
    fail(h, 1, 5, o, t0);
    BOOST_TEST(!h.available(0, t0));
    BOOST_TEST(h.available(1, t0));  // 50% of 2: the second stays in
    BOOST_TEST(h.ejected_now() == 1u);
    BOOST_TEST(h.available(0, t0 + 10s));  // the first returns ...
    fail(h, 1, 1, o, t0 + 10s);           // ... and the second's next failure ejects it
    BOOST_TEST(!h.available(1, t0 + 10s));

    endpoint_health single(1);
    fail(single, 0, 2, o, t0);
    BOOST_TEST(!single.any_available(t0));  // the only endpoint may go: nothing is available
}

BOOST_AUTO_TEST_CASE(zero_consecutive_failures_never_ejects) {
    endpoint_health h(1);
    fail(h, 0, 100, outlier_of(0), t0);
    BOOST_TEST(h.available(0, t0));
}

BOOST_AUTO_TEST_CASE(health_checks_take_out_and_bring_back_by_thresholds) {
    backend_metrics m;
    endpoint_health h(2, &m);
    health_check_config check;
    check.unhealthy = 3;
    check.healthy = 2;
    h.check_result(0, false, check, t0);
    h.check_result(0, false, check, t0);
    h.check_result(0, true, check, t0);  // the failure streak ends
    h.check_result(0, false, check, t0);
    h.check_result(0, false, check, t0);
    BOOST_TEST(h.available(0, t0));
    h.check_result(0, false, check, t0);
    BOOST_TEST(!h.available(0, t0));
    BOOST_TEST(m.unhealthy_endpoints.load() == 1);
    h.check_result(0, true, check, t0);
    BOOST_TEST(!h.available(0, t0));
    h.check_result(0, true, check, t0);
    BOOST_TEST(h.available(0, t0));
    BOOST_TEST(m.unhealthy_endpoints.load() == 0);
    BOOST_TEST(m.health_checks_passed.load() == 3u);
    BOOST_TEST(m.health_checks_failed.load() == 5u);
}

BOOST_AUTO_TEST_CASE(a_passed_check_ends_an_ejection) {
    backend_metrics m;
    endpoint_health h(2, &m);
    fail(h, 1, 1, outlier_of(1, 1min), t0);
    BOOST_TEST(!h.available(1, t0));
    h.check_result(1, true, health_check_config{}, t0 + 1s);
    BOOST_TEST(h.available(1, t0 + 1s));
    BOOST_TEST(m.ejection_returns.load() == 1u);
}

BOOST_AUTO_TEST_CASE(unhealthy_endpoints_are_not_limited_by_max_ejected) {
    endpoint_health h(2);
    health_check_config check;
    check.unhealthy = 1;
    h.check_result(0, false, check, t0);
    h.check_result(1, false, check, t0);
    BOOST_TEST(!h.any_available(t0));
}

BOOST_AUTO_TEST_CASE(dropping_the_state_takes_its_endpoints_out_of_the_gauges) {
    backend_metrics m;
    {
        endpoint_health h(3, &m);
        fail(h, 0, 1, outlier_of(1, 10s, 5min, 100), t0);
        health_check_config check;
        check.unhealthy = 1;
        h.check_result(1, false, check, t0);
        BOOST_TEST(m.ejected_endpoints.load() == 1);
        BOOST_TEST(m.unhealthy_endpoints.load() == 1);
    }
    BOOST_TEST(m.ejected_endpoints.load() == 0);
    BOOST_TEST(m.unhealthy_endpoints.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
