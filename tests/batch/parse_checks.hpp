// Assertions on a batch_parse_result, shared by the parser tests of every format.
#pragma once

#include "proxy/batch/batch_parser.hpp"

#include <boost/test/unit_test.hpp>

#include <string>

namespace batchgate::test {

// The parse must succeed; returns the batch.
inline batch_request ok(const batch_parse_result& r) {
    BOOST_REQUIRE_MESSAGE(!r.error, "unexpected error: " << (r.error ? r.error->message : ""));
    BOOST_REQUIRE(r.batch);
    return *r.batch;
}

// The parse must fail with `status` and a message containing `fragment`.
inline batch_error refused(const batch_parse_result& r, unsigned status, const std::string& fragment) {
    BOOST_REQUIRE_MESSAGE(r.error, "expected an error containing '" << fragment << "'");
    BOOST_TEST(!r.batch);
    BOOST_TEST(r.error->status == status);
    BOOST_TEST_MESSAGE("message: " << r.error->message);
    BOOST_TEST(r.error->message.find(fragment) != std::string::npos,
               "message '" << r.error->message << "' lacks '" << fragment << "'");
    return *r.error;
}

}  // namespace batchgate::test
