// The per-worker connection pool against real sockets.
#include "proxy/backend/http1_pool.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/test/unit_test.hpp>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace batchgate::test;

namespace {

backend_config pool_config(std::vector<std::string> endpoints, std::size_t max_connections,
                           duration queue_timeout = std::chrono::milliseconds(200)) {
    backend_config cfg;
    cfg.name = "b";
    for (auto& e : endpoints) cfg.endpoints.push_back(*parse_host_port(e, false));
    cfg.max_connections = max_connections;
    cfg.queue_timeout = queue_timeout;
    return cfg;
}


}  // namespace

BOOST_AUTO_TEST_SUITE(http1_pool)

BOOST_AUTO_TEST_CASE(released_connections_are_reused) {
    test_backend backend;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<batchgate::http1_pool>(ex, pool_config({backend.address()}, 4));
        auto first = co_await pool->acquire();
        BOOST_REQUIRE(first.error == acquire_error::none);
        BOOST_TEST(!first.connection.reused());
        first.connection.release(true);
        BOOST_TEST(pool->stats().idle == 1u);
        auto second = co_await pool->acquire();
        BOOST_TEST(second.connection.reused());
        BOOST_TEST(pool->stats().open == 1u);
        second.connection.release(false);  // closed, not pooled
        BOOST_TEST(pool->stats().open == 0u);
        BOOST_TEST(pool->stats().idle == 0u);
    });
    BOOST_TEST(eventually([&] { return backend.connections() == 1; }));
}

BOOST_AUTO_TEST_CASE(full_pool_times_out_waiters) {
    test_backend backend;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<batchgate::http1_pool>(ex, pool_config({backend.address()}, 1));
        auto held = co_await pool->acquire();
        BOOST_REQUIRE(held.error == acquire_error::none);
        auto started = std::chrono::steady_clock::now();
        auto waited = co_await pool->acquire();
        BOOST_TEST((waited.error == acquire_error::queue_timeout));
        BOOST_TEST((std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(190)));
        BOOST_TEST(pool->stats().waiting == 0u);
    });
}

BOOST_AUTO_TEST_CASE(a_returned_connection_goes_to_the_first_waiter) {
    test_backend backend;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<batchgate::http1_pool>(
            ex, pool_config({backend.address()}, 1, std::chrono::seconds(5)));
        auto held = co_await pool->acquire();
        asio::steady_timer later(ex, std::chrono::milliseconds(50));
        later.async_wait([&](error_code) { held.connection.release(true); });
        auto waited = co_await pool->acquire();
        BOOST_TEST((waited.error == acquire_error::none));
        BOOST_TEST(waited.connection.reused());
    });
    BOOST_TEST(eventually([&] { return backend.connections() == 1; }));
}

BOOST_AUTO_TEST_CASE(a_closed_connection_frees_its_slot_for_a_waiter) {
    test_backend backend;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<batchgate::http1_pool>(
            ex, pool_config({backend.address()}, 1, std::chrono::seconds(5)));
        auto held = co_await pool->acquire();
        asio::steady_timer later(ex, std::chrono::milliseconds(50));
        later.async_wait([&](error_code) { held.connection.release(false); });
        auto waited = co_await pool->acquire();
        BOOST_TEST((waited.error == acquire_error::none));
        BOOST_TEST(!waited.connection.reused());
        BOOST_TEST(pool->stats().open == 1u);
    });
    BOOST_TEST(eventually([&] { return backend.connections() == 2; }));
}

BOOST_AUTO_TEST_CASE(endpoints_are_used_round_robin) {
    test_backend a, b;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<batchgate::http1_pool>(ex, pool_config({a.address(), b.address()}, 4));
        auto first = co_await pool->acquire();
        auto second = co_await pool->acquire();
        BOOST_TEST((first.error == acquire_error::none && second.error == acquire_error::none));
    });
    BOOST_TEST(eventually([&] { return a.connections() == 1 && b.connections() == 1; }));
}

BOOST_AUTO_TEST_CASE(refused_connect_is_reported_and_frees_the_slot) {
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pool = std::make_shared<batchgate::http1_pool>(
            ex, pool_config({"127.0.0.1:" + std::to_string(closed_port())}, 1));
        auto r = co_await pool->acquire();
        BOOST_TEST((r.error == acquire_error::connect_failed));
        BOOST_TEST(r.cause == asio::error::connection_refused);
        BOOST_TEST(pool->stats().open == 0u);
    });
}

// Two pools of one backend (two workers' pools) share max_connections: the
// second waits while the first holds the only slot, is woken when the
// first's connection closes, and an idle connection of the first is shed
// for it rather than kept.
BOOST_AUTO_TEST_CASE(max_connections_is_one_cap_for_every_workers_pool) {
    test_backend backend;
    run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto cfg = pool_config({backend.address()}, 1, std::chrono::seconds(5));
        auto shared = make_backend_shared(cfg);
        auto first = std::make_shared<batchgate::http1_pool>(ex, cfg, shared);
        auto second = std::make_shared<batchgate::http1_pool>(ex, cfg, shared);
        BOOST_TEST(first->per_endpoint_limit() == 1u);

        auto held = co_await first->acquire();
        BOOST_REQUIRE(held.error == acquire_error::none);
        // Busy in the first pool: the second waits, then gets the slot once
        // the connection closes.
        asio::steady_timer later(ex, std::chrono::milliseconds(50));
        later.async_wait([&](error_code) {
            BOOST_TEST(second->stats().waiting == 1u);
            BOOST_TEST(backend.connections() <= 1);  // no second one while it waits
            held.connection.release(false);
        });
        auto got = co_await second->acquire();
        BOOST_REQUIRE(got.error == acquire_error::none);
        BOOST_TEST(first->stats().open == 0u);

        // Idle in the second pool: the first asks, the second sheds it.
        got.connection.release(true);
        BOOST_TEST(second->stats().idle == 1u);
        auto again = co_await first->acquire();
        BOOST_REQUIRE(again.error == acquire_error::none);
        BOOST_TEST(second->stats().open == 0u);
        BOOST_TEST(shared->slots->open(0) == 1u);
        again.connection.release(true);
    });
    BOOST_TEST(eventually([&] { return backend.connections() == 3; }));  // one after another
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
