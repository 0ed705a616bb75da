// connection_slots: the process-wide max_connections cap, its wake-ups and
// its requests to shed, without sockets (pools are stand-ins that count).
#include "proxy/backend/connection_slots.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <memory>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;

namespace {

struct counting_holder : slot_holder {
    int freed = 0, shed = 0;
    void slot_freed() override { ++freed; }
    void shed_idle() override { ++shed; }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(connection_slots_cap)

BOOST_AUTO_TEST_CASE(the_cap_holds_per_endpoint_and_a_lower_limit_waits_for_closes) {
    connection_slots slots(2, 2);
    BOOST_TEST(slots.try_take(0));
    BOOST_TEST(slots.try_take(0));
    BOOST_TEST(!slots.try_take(0));
    BOOST_TEST(slots.try_take(1));  // another endpoint has its own
    BOOST_TEST(slots.open(0) == 2u);
    slots.give(0);
    BOOST_TEST(slots.try_take(0));

    slots.set_limit(1);  // a reload lowered it: two stay open, no third
    BOOST_TEST(!slots.try_take(0));
    slots.give(0);
    BOOST_TEST(!slots.try_take(0));  // still one open: at the new cap
    slots.give(0);
    BOOST_TEST(slots.try_take(0));

    slots.set_limit(0);  // never below one
    BOOST_TEST(slots.limit() == 1u);
}

BOOST_AUTO_TEST_CASE(a_waiting_pool_is_told_once_when_a_slot_comes_back_and_the_others_are_asked_to_shed) {
    boost::asio::io_context io;
    connection_slots slots(1, 1);
    auto holder = std::make_shared<counting_holder>();
    auto waiter = std::make_shared<counting_holder>();
    slots.join(holder, io.get_executor());
    slots.join(waiter, io.get_executor());
    BOOST_TEST(slots.try_take(0));  // `holder`'s connection

    BOOST_TEST(!slots.someone_waits());
    slots.wait(waiter, io.get_executor());
    slots.wait(waiter, io.get_executor());  // asked already: no second shed
    BOOST_TEST(slots.someone_waits());
    io.run();
    io.restart();
    BOOST_TEST(holder->shed == 1);
    BOOST_TEST(waiter->shed == 0);  // never asked to shed for itself
    BOOST_TEST(waiter->freed == 0);

    slots.give(0);
    BOOST_TEST(!slots.someone_waits());
    io.run();
    io.restart();
    BOOST_TEST(waiter->freed == 1);
    BOOST_TEST(holder->freed == 0);
    slots.give(0);  // nobody waits now: nobody is told
    slots.try_take(0);
    io.run();
    BOOST_TEST(waiter->freed == 1);
}

BOOST_AUTO_TEST_CASE(a_pool_gone_while_waiting_is_skipped) {
    boost::asio::io_context io;
    connection_slots slots(1, 1);
    auto waiter = std::make_shared<counting_holder>();
    slots.try_take(0);
    slots.wait(waiter, io.get_executor());
    waiter.reset();
    slots.give(0);
    io.run();  // the posted wake-up finds nothing and does nothing
    BOOST_TEST(slots.try_take(0));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
