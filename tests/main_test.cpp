#define BOOST_TEST_MODULE batchgate
#include <boost/test/unit_test.hpp>
