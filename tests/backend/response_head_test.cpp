// What a backend's answer heads mean, the same for HTTP/1.1 and h2 (items and
// pass-through): interim heads are consumed up to a bound, 101 and bad
// statuses end the exchange, a block after the final head is trailers.
#include "proxy/backend/response_head.hpp"
#include "proxy/core/http_semantics.hpp"

#include <boost/test/unit_test.hpp>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;

BOOST_AUTO_TEST_SUITE(response_head)

BOOST_AUTO_TEST_CASE(a_final_head_is_the_answer) {
    response_heads heads;
    BOOST_TEST(!heads.have_final());
    BOOST_TEST((heads.on_status(200) == head_kind::final));
    BOOST_TEST(heads.have_final());
    BOOST_TEST(heads.final_status() == 200u);
}

BOOST_AUTO_TEST_CASE(interim_heads_are_consumed_up_to_the_bound) {
    response_heads heads;
    for (int i = 0; i < max_interim_responses; ++i) BOOST_TEST((heads.on_status(i % 2 ? 103 : 100) == head_kind::interim));
    BOOST_TEST((heads.on_status(100) == head_kind::too_many_interim));
    BOOST_TEST(ends_exchange(head_kind::too_many_interim));
    BOOST_TEST(!heads.have_final());
}

BOOST_AUTO_TEST_CASE(interim_heads_then_the_answer) {
    response_heads heads;
    BOOST_TEST((heads.on_status(100) == head_kind::interim));
    BOOST_TEST((heads.on_status(103) == head_kind::interim));
    BOOST_TEST((heads.on_status(404) == head_kind::final));
    BOOST_TEST(heads.final_status() == 404u);
}

BOOST_AUTO_TEST_CASE(switching_protocols_ends_the_exchange) {
    response_heads heads;
    BOOST_TEST((heads.on_status(101) == head_kind::switching_protocols));
    BOOST_TEST(ends_exchange(head_kind::switching_protocols));
    BOOST_TEST(!ends_exchange(head_kind::interim));
    BOOST_TEST(!ends_exchange(head_kind::final));
}

BOOST_AUTO_TEST_CASE(statuses_out_of_range_are_malformed) {
    response_heads heads;
    BOOST_TEST((heads.on_status(99) == head_kind::malformed));
    BOOST_TEST((heads.on_status(1000) == head_kind::malformed));
    BOOST_TEST((heads.on_status(0) == head_kind::malformed));
}

BOOST_AUTO_TEST_CASE(h2_status_text_must_be_three_digits) {
    for (const char* bad : {"", "20", "2000", "20x", "-20", "+200", " 200", "200 "}) {
        response_heads heads;
        BOOST_TEST((heads.on_status_text(bad) == head_kind::malformed), "'" << bad << "'");
    }
    response_heads heads;
    BOOST_TEST((heads.on_status_text("204") == head_kind::final));
    BOOST_TEST(heads.final_status() == 204u);
}

BOOST_AUTO_TEST_CASE(h2_blocks_before_and_after_the_final_head) {
    response_heads heads;
    heads.on_block_begin();
    BOOST_TEST((heads.current() == head_kind::malformed));  // no :status yet: not a head
    BOOST_TEST((heads.on_status_text("103") == head_kind::interim));
    BOOST_TEST((heads.current() == head_kind::interim));
    heads.on_block_begin();
    BOOST_TEST((heads.on_status_text("200") == head_kind::final));
    BOOST_TEST((heads.current() == head_kind::final));
    heads.on_block_begin();  // trailers
    BOOST_TEST((heads.current() == head_kind::after_final));
    BOOST_TEST((heads.on_status_text("500") == head_kind::after_final));  // a second answer is ignored
    BOOST_TEST(heads.final_status() == 200u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
