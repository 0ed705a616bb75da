// The metrics registry and its Prometheus text rendering.
#include "proxy/core/metrics.hpp"

#include <boost/test/unit_test.hpp>

#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// The value of the sample whose text before the value is exactly `series`
// (`name{labels}`), or "" when there is none.
std::string value_of(const std::string& page, const std::string& series) {
    for (const auto& line : lines_of(page))
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ')
            return line.substr(series.size() + 1);
    return "";
}

std::size_t position_of(const std::string& page, const std::string& needle) {
    auto pos = page.find(needle);
    BOOST_TEST_REQUIRE(pos != std::string::npos, "missing: " << needle);
    return pos;
}

struct fresh_registry {
    fresh_registry() { metrics_registry::global().reset_for_tests(); }
    ~fresh_registry() { metrics_registry::global().reset_for_tests(); }
    metrics_registry& m = metrics_registry::global();
};

const std::vector<std::pair<std::string, std::string>> families = {
    {"batchgate_build_info", "gauge"},
    {"batchgate_requests_total", "counter"},
    {"batchgate_request_duration_seconds", "histogram"},
    {"batchgate_batch_items", "histogram"},
    {"batchgate_batch_items_total", "counter"},
    {"batchgate_batches_in_flight", "gauge"},
    {"batchgate_client_connections", "gauge"},
    {"batchgate_limit_breaches_total", "counter"},
    {"batchgate_backend_responses_total", "counter"},
    {"batchgate_backend_retries_total", "counter"},
    {"batchgate_backend_timeouts_total", "counter"},
    {"batchgate_backend_connect_failures_total", "counter"},
    {"batchgate_backend_overloaded_total", "counter"},
    {"batchgate_backend_ejections_total", "counter"},
    {"batchgate_backend_ejection_returns_total", "counter"},
    {"batchgate_backend_health_checks_total", "counter"},
    {"batchgate_backend_no_endpoint_total", "counter"},
    {"batchgate_backend_endpoints_out", "gauge"},
    {"batchgate_backend_connections", "gauge"},
    {"batchgate_backend_in_flight", "gauge"},
    {"batchgate_backend_h2_streams", "gauge"},
    {"batchgate_backend_latency_seconds", "histogram"},
};

void check_help_and_type_once(const std::string& page) {
    std::map<std::string, int> help, type;
    std::map<std::string, std::string> type_of;
    for (const auto& line : lines_of(page)) {
        if (line.rfind("# HELP ", 0) == 0) {
            auto rest = line.substr(7);
            ++help[rest.substr(0, rest.find(' '))];
        } else if (line.rfind("# TYPE ", 0) == 0) {
            auto rest = line.substr(7);
            auto name = rest.substr(0, rest.find(' '));
            ++type[name];
            type_of[name] = rest.substr(rest.find(' ') + 1);
        } else {
            BOOST_TEST(!line.empty());
            BOOST_TEST(line[0] != '#');
        }
    }
    BOOST_TEST(help.size() == families.size());
    BOOST_TEST(type.size() == families.size());
    for (const auto& [name, kind] : families) {
        BOOST_TEST(help[name] == 1, name);
        BOOST_TEST(type[name] == 1, name);
        BOOST_TEST(type_of[name] == kind, name);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_FIXTURE_TEST_CASE(every_family_once_even_without_series, fresh_registry) {
    const auto page = m.render();
    BOOST_TEST(!page.empty());
    BOOST_TEST(page.back() == '\n');
    check_help_and_type_once(page);
    // HELP precedes TYPE precedes the samples.
    BOOST_TEST(position_of(page, "# HELP batchgate_requests_total ") <
               position_of(page, "# TYPE batchgate_requests_total counter\n"));
    BOOST_TEST(position_of(page, "# TYPE batchgate_requests_total counter\n") <
               position_of(page, "batchgate_requests_total{"));
}

BOOST_FIXTURE_TEST_CASE(help_and_type_once_with_backends, fresh_registry) {
    m.backend("a").retries += 1;
    m.backend("b").timeouts += 2;
    m.request_done(request_kind::batch, 207, 0.1);
    check_help_and_type_once(m.render());
}

BOOST_FIXTURE_TEST_CASE(build_info, fresh_registry) {
    const auto page = m.render();
#ifdef BATCHGATE_VERSION
    const std::string version = BATCHGATE_VERSION;
#else
    const std::string version = "dev";
#endif
    BOOST_TEST(value_of(page, "batchgate_build_info{version=\"" + version + "\"}") == "1");
}

BOOST_FIXTURE_TEST_CASE(label_values_escaped, fresh_registry) {
    BOOST_TEST(escape_label_value("plain") == "plain");
    BOOST_TEST(escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
    m.backend("we\"ird\\na\nme").retries += 3;
    const auto page = m.render();
    BOOST_TEST(value_of(page, "batchgate_backend_retries_total{backend=\"we\\\"ird\\\\na\\nme\"}") == "3");
    // No raw newline inside a sample: every line is a whole sample.
    for (const auto& line : lines_of(page)) BOOST_TEST((line.rfind("batchgate_", 0) == 0 || line[0] == '#'), line);
}

BOOST_FIXTURE_TEST_CASE(histogram_buckets_are_cumulative, fresh_registry) {
    m.request_done(request_kind::passthrough, 200, 0.0005);  // ≤ 0.001
    m.request_done(request_kind::passthrough, 200, 0.001);   // le is inclusive
    m.request_done(request_kind::passthrough, 200, 0.003);   // ≤ 0.005
    m.request_done(request_kind::passthrough, 200, 0.2);     // ≤ 0.25
    m.request_done(request_kind::passthrough, 200, 100);     // +Inf only
    const auto page = m.render();
    const std::string b = "batchgate_request_duration_seconds_bucket{kind=\"passthrough\",le=\"";
    BOOST_TEST(value_of(page, b + "0.001\"}") == "2");
    BOOST_TEST(value_of(page, b + "0.005\"}") == "3");
    BOOST_TEST(value_of(page, b + "0.01\"}") == "3");
    BOOST_TEST(value_of(page, b + "0.1\"}") == "3");
    BOOST_TEST(value_of(page, b + "0.25\"}") == "4");
    BOOST_TEST(value_of(page, b + "1\"}") == "4");
    BOOST_TEST(value_of(page, b + "30\"}") == "4");
    BOOST_TEST(value_of(page, b + "+Inf\"}") == "5");
    BOOST_TEST(value_of(page, "batchgate_request_duration_seconds_sum{kind=\"passthrough\"}") == "100.2045");
    BOOST_TEST(value_of(page, "batchgate_request_duration_seconds_count{kind=\"passthrough\"}") == "5");
    // The other kind has its own, empty, series.
    BOOST_TEST(value_of(page, "batchgate_request_duration_seconds_bucket{kind=\"batch\",le=\"+Inf\"}") == "0");
    BOOST_TEST(value_of(page, "batchgate_request_duration_seconds_sum{kind=\"batch\"}") == "0");
    BOOST_TEST(value_of(page, "batchgate_request_duration_seconds_count{kind=\"batch\"}") == "0");
    // Buckets appear in increasing order, +Inf last, then _sum and _count.
    BOOST_TEST(position_of(page, b + "0.001\"}") < position_of(page, b + "0.005\"}"));
    BOOST_TEST(position_of(page, b + "30\"}") < position_of(page, b + "+Inf\"}"));
    BOOST_TEST(position_of(page, b + "+Inf\"}") <
               position_of(page, "batchgate_request_duration_seconds_sum{kind=\"passthrough\"}"));
    BOOST_TEST(position_of(page, "batchgate_request_duration_seconds_sum{kind=\"passthrough\"}") <
               position_of(page, "batchgate_request_duration_seconds_count{kind=\"passthrough\"}"));
}

BOOST_AUTO_TEST_CASE(histogram_class) {
    histogram h({5, 1, 1, 2});  // sorted, duplicates dropped
    BOOST_TEST(h.upper_bounds() == (std::vector<double>{1, 2, 5}));
    h.observe(-3);  // clamped to 0
    h.observe(1.5);
    h.observe(std::chrono::milliseconds(4500));
    h.observe(7);
    auto s = h.snapshot();
    BOOST_TEST(s.cumulative == (std::vector<std::uint64_t>{1, 2, 3, 4}));
    BOOST_TEST(s.count == 4u);
    BOOST_TEST(s.sum_micros == 13'000'000u);
    h.reset();
    s = h.snapshot();
    BOOST_TEST(s.count == 0u);
    BOOST_TEST(s.sum_micros == 0u);
}

BOOST_FIXTURE_TEST_CASE(batch_items_histogram_and_total, fresh_registry) {
    m.batch_items(1);
    m.batch_items(7);
    m.batch_items(250);
    const auto page = m.render();
    BOOST_TEST(value_of(page, "batchgate_batch_items_bucket{le=\"1\"}") == "1");
    BOOST_TEST(value_of(page, "batchgate_batch_items_bucket{le=\"10\"}") == "2");
    BOOST_TEST(value_of(page, "batchgate_batch_items_bucket{le=\"100\"}") == "2");
    BOOST_TEST(value_of(page, "batchgate_batch_items_bucket{le=\"1000\"}") == "3");
    BOOST_TEST(value_of(page, "batchgate_batch_items_bucket{le=\"10000\"}") == "3");
    BOOST_TEST(value_of(page, "batchgate_batch_items_bucket{le=\"+Inf\"}") == "3");
    BOOST_TEST(value_of(page, "batchgate_batch_items_sum") == "258");
    BOOST_TEST(value_of(page, "batchgate_batch_items_count") == "3");
    BOOST_TEST(value_of(page, "batchgate_batch_items_total") == "258");
}

BOOST_FIXTURE_TEST_CASE(status_classes, fresh_registry) {
    m.request_done(request_kind::batch, 207, 0.01);
    m.request_done(request_kind::batch, 200, 0.01);
    m.request_done(request_kind::batch, 0, 0.01);
    m.request_done(request_kind::passthrough, 404, 0.01);
    m.request_done(request_kind::passthrough, 503, 0.01);
    m.request_done(request_kind::passthrough, 302, 0.01);
    m.request_done(request_kind::passthrough, 999, 0.01);  // not a status: no answer
    const auto page = m.render();
    const std::string r = "batchgate_requests_total{kind=";
    BOOST_TEST(value_of(page, r + "\"batch\",code=\"2xx\"}") == "2");
    BOOST_TEST(value_of(page, r + "\"batch\",code=\"none\"}") == "1");
    BOOST_TEST(value_of(page, r + "\"batch\",code=\"5xx\"}") == "0");
    BOOST_TEST(value_of(page, r + "\"passthrough\",code=\"3xx\"}") == "1");
    BOOST_TEST(value_of(page, r + "\"passthrough\",code=\"4xx\"}") == "1");
    BOOST_TEST(value_of(page, r + "\"passthrough\",code=\"5xx\"}") == "1");
    BOOST_TEST(value_of(page, r + "\"passthrough\",code=\"none\"}") == "1");
    BOOST_TEST(m.requests(request_kind::batch, 204) == 2u);

    auto& b = m.backend("users");
    b.response(201);
    b.response(502);
    b.response(0);
    b.responses[4] += 1;
    const auto page2 = m.render();
    const std::string br = "batchgate_backend_responses_total{backend=\"users\",code=";
    BOOST_TEST(value_of(page2, br + "\"2xx\"}") == "1");
    BOOST_TEST(value_of(page2, br + "\"4xx\"}") == "1");
    BOOST_TEST(value_of(page2, br + "\"5xx\"}") == "1");
    BOOST_TEST(value_of(page2, br + "\"none\"}") == "1");
    BOOST_TEST(value_of(page2, br + "\"1xx\"}") == "0");
}

BOOST_FIXTURE_TEST_CASE(backends_sorted_and_stable, fresh_registry) {
    auto& zeta = m.backend("zeta");
    auto& alpha = m.backend("alpha");
    auto& mid = m.backend("mid");
    BOOST_TEST(&m.backend("zeta") == &zeta);
    zeta.overloaded += 1;
    alpha.connect_failures += 2;
    mid.in_flight += 5;
    mid.open_connections += 3;
    mid.idle_connections += 2;
    mid.h2_streams += 7;
    mid.latency.observe(0.02);
    const auto page = m.render();
    for (const std::string family : {"batchgate_backend_retries_total", "batchgate_backend_in_flight",
                                     "batchgate_backend_latency_seconds_count"}) {
        BOOST_TEST(position_of(page, family + "{backend=\"alpha\"}") <
                   position_of(page, family + "{backend=\"mid\"}"));
        BOOST_TEST(position_of(page, family + "{backend=\"mid\"}") <
                   position_of(page, family + "{backend=\"zeta\"}"));
    }
    BOOST_TEST(value_of(page, "batchgate_backend_overloaded_total{backend=\"zeta\"}") == "1");
    BOOST_TEST(value_of(page, "batchgate_backend_connect_failures_total{backend=\"alpha\"}") == "2");
    BOOST_TEST(value_of(page, "batchgate_backend_in_flight{backend=\"mid\"}") == "5");
    BOOST_TEST(value_of(page, "batchgate_backend_connections{backend=\"mid\",state=\"open\"}") == "3");
    BOOST_TEST(value_of(page, "batchgate_backend_connections{backend=\"mid\",state=\"idle\"}") == "2");
    BOOST_TEST(value_of(page, "batchgate_backend_h2_streams{backend=\"mid\"}") == "7");
    BOOST_TEST(value_of(page, "batchgate_backend_latency_seconds_bucket{backend=\"mid\",le=\"0.025\"}") == "1");
    BOOST_TEST(value_of(page, "batchgate_backend_latency_seconds_bucket{backend=\"mid\",le=\"0.01\"}") == "0");
    BOOST_TEST(value_of(page, "batchgate_backend_latency_seconds_sum{backend=\"mid\"}") == "0.02");

    // Reset zeroes the series but keeps the entries (and references).
    m.reset_for_tests();
    BOOST_TEST(&m.backend("alpha") == &alpha);
    const auto page2 = m.render();
    BOOST_TEST(value_of(page2, "batchgate_backend_connect_failures_total{backend=\"alpha\"}") == "0");
    BOOST_TEST(value_of(page2, "batchgate_backend_in_flight{backend=\"mid\"}") == "0");
    BOOST_TEST(value_of(page2, "batchgate_backend_h2_streams{backend=\"mid\"}") == "0");
}

BOOST_FIXTURE_TEST_CASE(gauges_and_limits, fresh_registry) {
    {
        scoped_gauge c1(m.client_connections);
        scoped_gauge c2(m.client_connections);
        m.batches_in_flight += 1;
        const auto page = m.render();
        BOOST_TEST(value_of(page, "batchgate_client_connections") == "2");
        BOOST_TEST(value_of(page, "batchgate_batches_in_flight") == "1");
    }
    BOOST_TEST(m.client_connections.load() == 0);
    m.limit_breached(limit_kind::header_bytes);
    m.limit_breached(limit_kind::header_bytes);
    m.limit_breached(limit_kind::batch_deadline);
    const auto page = m.render();
    BOOST_TEST(value_of(page, "batchgate_limit_breaches_total{limit=\"header_bytes\"}") == "2");
    BOOST_TEST(value_of(page, "batchgate_limit_breaches_total{limit=\"batch_deadline\"}") == "1");
    // Every limit has a series from the start, so alerts see 0 → 1.
    // Walks the whole enum, so a limit added later is covered too.
    for (std::size_t k = 0; k < limit_kind_count; ++k) {
        const auto kind = static_cast<limit_kind>(k);
        if (kind == limit_kind::header_bytes || kind == limit_kind::batch_deadline) continue;  // counted above
        BOOST_TEST(!to_string(kind).empty());
        BOOST_TEST(value_of(page, "batchgate_limit_breaches_total{limit=\"" + std::string(to_string(kind)) + "\"}") ==
                   "0");
    }
}

BOOST_FIXTURE_TEST_CASE(concurrent_increments_are_exact, fresh_registry) {
    auto& b = m.backend("busy");
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 100'000; ++i) {
                b.retries.fetch_add(1, std::memory_order_relaxed);
                m.request_done(request_kind::passthrough, 200, 0.002);
                m.limit_breached(limit_kind::in_flight);
            }
        });
    // Rendering while others write must be safe (values are simply a moment's view).
    for (int i = 0; i < 5; ++i) (void)m.render();
    for (auto& t : threads) t.join();
    const auto page = m.render();
    BOOST_TEST(value_of(page, "batchgate_backend_retries_total{backend=\"busy\"}") == "400000");
    BOOST_TEST(value_of(page, "batchgate_requests_total{kind=\"passthrough\",code=\"2xx\"}") == "400000");
    BOOST_TEST(value_of(page, "batchgate_request_duration_seconds_count{kind=\"passthrough\"}") == "400000");
    BOOST_TEST(value_of(page, "batchgate_request_duration_seconds_sum{kind=\"passthrough\"}") == "800");
    BOOST_TEST(value_of(page, "batchgate_limit_breaches_total{limit=\"in_flight\"}") == "400000");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
