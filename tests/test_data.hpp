// Files under tests/data/ (golden bodies, the README's examples), read whole.
#pragma once

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <iterator>
#include <string>

#ifndef BATCHGATE_TEST_DATA
#define BATCHGATE_TEST_DATA "/work/main/tests/data"
#endif

namespace batchgate::test {

inline std::string read_data_file(const std::string& name) {
    std::ifstream in(std::string(BATCHGATE_TEST_DATA) + "/" + name, std::ios::binary);
    BOOST_REQUIRE_MESSAGE(in, "cannot open test data " << name);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace batchgate::test
