// The retry policy case by case, without sockets: what one attempt came to,
// and whether batchgate tries again, when, and whether it costs an attempt.
#include "proxy/backend/retry_budget.hpp"
#include "proxy/backend/retry_policy.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <atomic>
#include <cstdint>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace std::chrono_literals;

namespace {

retry_config defaults() { return retry_config{}; }  // attempts 2, on connect-failure and reset

attempt_report event(attempt_event e) { return attempt_report{e, 0, std::nullopt}; }

attempt_report answered(unsigned status, std::optional<std::chrono::seconds> retry_after = std::nullopt) {
    return attempt_report{attempt_event::answered, status, retry_after};
}

// Injected jitter: with the whole ceiling the tests can name the pause.
double whole() { return 1.0; }
double none() { return 0.0; }
double half() { return 0.5; }

retry_decision decide(const attempt_report& r, const retry_config& c, bool replayable, retry_progress& p,
                      std::chrono::steady_clock::duration left = 30s, bool body_held = true,
                      double (*jitter)() = whole) {
    return decide_retry(r, retry_request{c, replayable, body_held, left, jitter}, p);
}

std::chrono::steady_clock::duration wait_of(std::chrono::milliseconds ms) { return ms; }

}  // namespace

BOOST_AUTO_TEST_SUITE(retry_policy)

BOOST_AUTO_TEST_CASE(an_answer_is_delivered_unless_its_status_is_listed) {
    retry_config c = defaults();
    c.on_status = {503};
    retry_progress p;
    BOOST_TEST((decide(answered(200), c, true, p).verdict == retry_verdict::deliver));
    BOOST_TEST((decide(answered(500), c, true, p).verdict == retry_verdict::deliver));
    auto d = decide(answered(503), c, true, p);
    BOOST_TEST((d.verdict == retry_verdict::retry));
    BOOST_TEST(d.counted);
    BOOST_TEST((d.pause == std::chrono::steady_clock::duration(25ms)));  // backoff.base for the first retry
    BOOST_TEST(p.attempt == 2u);
    // attempts: 2 used up: the second 503 stands.
    BOOST_TEST((decide(answered(503), c, true, p).verdict == retry_verdict::deliver));
}

BOOST_AUTO_TEST_CASE(retry_after_sets_the_pause_when_it_fits_the_deadline) {
    retry_config c = defaults();
    c.on_status = {429};
    retry_progress p;
    auto d = decide(answered(429, 2s), c, true, p, 5s);
    BOOST_TEST((d.verdict == retry_verdict::retry));
    BOOST_TEST((d.pause == std::chrono::steady_clock::duration(2s)));
    retry_progress q;
    // It does not fit: the backend's own answer is delivered at once.
    BOOST_TEST((decide(answered(429, 60s), c, true, q, 5s).verdict == retry_verdict::deliver));
    BOOST_TEST(q.attempt == 1u);
    // Not even the backoff fits in what is left.
    BOOST_TEST((decide(answered(429), c, true, q, 10ms).verdict == retry_verdict::deliver));
    // A backoff longer than Retry-After wins.
    retry_config slow = c;
    slow.backoff_base = slow.backoff_max = std::chrono::milliseconds(3000);
    retry_progress r;
    BOOST_TEST((decide(answered(429, 1s), slow, true, r, 10s).pause == wait_of(3000ms)));
}

BOOST_AUTO_TEST_CASE(backoff_doubles_up_to_its_max_with_full_jitter) {
    retry_config c = defaults();
    c.attempts = 10;
    c.backoff_base = 100ms;
    c.backoff_max = 700ms;
    retry_progress p;
    for (auto want : {100ms, 200ms, 400ms, 700ms, 700ms}) {
        auto r = decide(event(attempt_event::reset), c, true, p);
        BOOST_TEST((r.pause == wait_of(want)));
    }
    // Full jitter: anywhere from nothing up to the ceiling.
    retry_progress q;
    BOOST_TEST((decide(event(attempt_event::reset), c, true, q, 30s, true, none).pause == wait_of(0ms)));
    BOOST_TEST((decide(event(attempt_event::reset), c, true, q, 30s, true, half).pause == wait_of(100ms)));  // half of 200
    for (int i = 0; i < 1000; ++i) {
        const double j = retry_jitter();
        BOOST_TEST_REQUIRE((j >= 0.0 && j < 1.0));
    }
}

BOOST_AUTO_TEST_CASE(a_failure_whose_backoff_does_not_fit_the_deadline_is_given_up) {
    retry_config c = defaults();
    c.backoff_base = c.backoff_max = 500ms;
    retry_progress p;
    BOOST_TEST((decide(event(attempt_event::reset), c, true, p, 100ms).verdict == retry_verdict::give_up));
    BOOST_TEST(p.attempt == 1u);
}

BOOST_AUTO_TEST_CASE(post_is_never_retried_after_the_backend_may_have_acted) {
    retry_config c = defaults();
    c.on_status = {503};
    c.on_timeout = true;
    for (auto e : {attempt_event::reset, attempt_event::timeout, attempt_event::connect_failed,
                   attempt_event::connect_timeout, attempt_event::stale_connection}) {
        retry_progress p;
        BOOST_TEST((decide(event(e), c, false, p).verdict == retry_verdict::give_up));
    }
    retry_progress p;
    BOOST_TEST((decide(answered(503), c, false, p).verdict == retry_verdict::deliver));
}

BOOST_AUTO_TEST_CASE(each_condition_needs_its_entry_in_on) {
    retry_config none = defaults();
    none.on_connect_failure = none.on_reset = none.on_timeout = false;
    for (auto e : {attempt_event::reset, attempt_event::timeout, attempt_event::connect_failed,
                   attempt_event::connect_timeout}) {
        retry_progress p;
        BOOST_TEST((decide(event(e), none, true, p).verdict == retry_verdict::give_up));
    }
    retry_config all = none;
    all.on_connect_failure = all.on_reset = all.on_timeout = true;
    for (auto e : {attempt_event::reset, attempt_event::timeout, attempt_event::connect_failed,
                   attempt_event::connect_timeout}) {
        retry_progress p;
        auto r = decide(event(e), all, true, p);
        BOOST_TEST((r.verdict == retry_verdict::retry));
        BOOST_TEST(r.counted);
        BOOST_TEST((r.pause == wait_of(25ms)));
    }
}

BOOST_AUTO_TEST_CASE(attempts_one_never_retries) {
    retry_config c = defaults();
    c.attempts = 1;
    retry_progress p;
    BOOST_TEST((decide(event(attempt_event::reset), c, true, p).verdict == retry_verdict::give_up));
    BOOST_TEST((decide(event(attempt_event::connect_failed), c, true, p).verdict == retry_verdict::give_up));
}

BOOST_AUTO_TEST_CASE(queue_timeout_and_unusable_answers_are_never_retried) {
    retry_config c = defaults();
    c.attempts = 5;
    c.on_timeout = true;
    retry_progress p;
    BOOST_TEST((decide(event(attempt_event::queue_timeout), c, true, p).verdict == retry_verdict::give_up));
    BOOST_TEST((decide(event(attempt_event::unusable), c, true, p).verdict == retry_verdict::give_up));
}

BOOST_AUTO_TEST_CASE(a_refused_stream_is_replayed_for_free_then_against_attempts_whatever_the_method) {
    for (unsigned attempts : {1u, 3u}) {
        BOOST_TEST_CONTEXT("attempts " << attempts) {
            retry_config c = defaults();
            c.attempts = attempts;
            c.on_reset = false;  // refusals need no `reset` in `on`
            retry_progress p;
            unsigned tries = 1;
            for (;;) {
                auto d = decide(event(attempt_event::refused), c, /*replayable (POST)=*/false, p);
                if (d.verdict != retry_verdict::retry) {
                    BOOST_TEST((d.verdict == retry_verdict::give_up));
                    break;
                }
                BOOST_TEST(d.counted == (tries > 1));  // only the first replay is free
                ++tries;
            }
            BOOST_TEST(tries == attempts + 1);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_refused_stream_whose_body_is_gone_is_not_replayed) {
    retry_progress p;
    BOOST_TEST((decide(event(attempt_event::refused), defaults(), false, p, 30s, /*body_held=*/false).verdict ==
                retry_verdict::give_up));
}

BOOST_AUTO_TEST_CASE(a_stale_connection_is_replayed_once_for_free_then_it_is_a_reset) {
    retry_config c = defaults();
    retry_progress p;
    auto first = decide(event(attempt_event::stale_connection), c, true, p);
    BOOST_TEST((first.verdict == retry_verdict::retry));
    BOOST_TEST(!first.counted);
    BOOST_TEST((first.pause == wait_of(0ms)));  // a free replay goes at once
    BOOST_TEST(p.attempt == 1u);
    auto second = decide(event(attempt_event::stale_connection), c, true, p);
    BOOST_TEST((second.verdict == retry_verdict::retry));  // reset is in `on`, one attempt left
    BOOST_TEST(second.counted);
    BOOST_TEST((decide(event(attempt_event::stale_connection), c, true, p).verdict == retry_verdict::give_up));
}

BOOST_AUTO_TEST_CASE(one_free_replay_per_request) {
    retry_config c = defaults();
    c.attempts = 1;
    retry_progress p;
    BOOST_TEST(!decide(event(attempt_event::stale_connection), c, true, p).counted);
    // The free replay is spent: a refusal now needs an attempt, and none is left.
    BOOST_TEST((decide(event(attempt_event::refused), c, true, p).verdict == retry_verdict::give_up));
}

BOOST_AUTO_TEST_CASE(retry_after_is_read_as_delta_seconds_only) {
    BOOST_TEST(retry_after_seconds("120").value().count() == 120);
    BOOST_TEST(retry_after_seconds("0").value().count() == 0);
    BOOST_TEST(!retry_after_seconds("").has_value());
    BOOST_TEST(!retry_after_seconds("Fri, 31 Dec 1999 23:59:59 GMT").has_value());
    BOOST_TEST(!retry_after_seconds("-1").has_value());
    BOOST_TEST(!retry_after_seconds("1.5").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(retry_budget_share)

BOOST_AUTO_TEST_CASE(retries_in_flight_stay_within_the_share_and_at_least_three) {
    std::atomic<std::int64_t> requests{0};  // the backend's in-flight gauge
    retry_budget budget(20, requests);
    BOOST_TEST(budget.limit() == 3u);  // nothing in flight: the floor
    requests = 30;
    BOOST_TEST(budget.limit() == 6u);  // 20% of 30
    int started = 0;
    while (budget.try_start_retry()) ++started;
    BOOST_TEST(started == 6);
    budget.retry_ended();
    BOOST_TEST(budget.try_start_retry());  // one came back, one may go
    BOOST_TEST(!budget.try_start_retry());
    requests = 5;  // fewer requests: the floor of three holds
    BOOST_TEST(budget.limit() == 3u);
    for (int i = 0; i < 6; ++i) budget.retry_ended();
    BOOST_TEST(budget.retries() == 0u);
    {
        budgeted_retry held;
        BOOST_TEST(budget.try_start_retry());
        held.hold(budget);
        BOOST_TEST(budget.retries() == 1u);
    }
    BOOST_TEST(budget.retries() == 0u);  // given back when the retried attempt is over
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
