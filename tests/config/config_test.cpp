// The YAML loader: a full valid config, defaults, and every class of error
// with its exact "file:line:column: key.path: message".
#include "proxy/config/config.hpp"
#include "proxy/config/config_keys.hpp"

#include <boost/test/unit_test.hpp>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <unistd.h>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate;
using namespace std::chrono_literals;

namespace {

// Test YAML is written as R"( followed by a newline, so that line 1 of the
// document is the first line below the R"( — that newline is dropped here.
std::string_view yaml(std::string_view text) {
    if (text.starts_with('\n')) text.remove_prefix(1);
    return text;
}

config load(std::string_view text) { return load_config_string(yaml(text), "t.yaml"); }

std::string error_of(std::string_view text) {
    try {
        load_config_string(yaml(text), "t.yaml");
    } catch (const config_error& e) {
        return e.what();
    }
    return "(loaded without error)";
}

std::filesystem::path source_dir() {
#ifdef BATCHGATE_SOURCE_DIR
    return BATCHGATE_SOURCE_DIR;
#else
    return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
#endif
}

// A file in the temp directory that is removed again at the end of the test.
struct temp_file {
    std::filesystem::path path;
    explicit temp_file(std::string_view content) {
        path = std::filesystem::temp_directory_path() /
               ("batchgate-config-test-" + std::to_string(::getpid()) + ".yaml");
        std::ofstream(path) << content;
    }
    ~temp_file() {
        std::error_code ec;
        std::filesystem::remove(path, ec);
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(config)

// ---------------------------------------------------------------------------
// Valid configurations
// ---------------------------------------------------------------------------

// PRODUCT.md §4, with protocol http1 and without the TLS listener.
BOOST_AUTO_TEST_CASE(product_example_parses) {
    const auto c = load(R"(
workers: 2                           # event-loop threads; default: one per core
listen:
  - address: 0.0.0.0:8080            # HTTP/1.1 and h2c (prior knowledge)
admin:
  address: 127.0.0.1:9901            # /metrics, /healthz, /readyz
batch:
  path: /batch
  max_items: 1000
  max_body_bytes: 8MiB
  max_parallel: 64                   # items in flight per batch
  deadline: 30s
  max_item_response_bytes: 1MiB
  forward_headers: [authorization, cookie, accept-language, x-request-id, traceparent]
trusted_proxies: []                  # CIDRs whose X-Forwarded-*/Forwarded are kept
routes:
  - prefix: /users
    backend: users
    rewrite_prefix: /api/v1/users    # optional: replaces the matched prefix ("" strips it)
  - prefix: /
    backend: legacy
backends:
  users:
    endpoints: [127.0.0.1:9001, 127.0.0.1:9002]
    protocol: http1                  # http1 | h2c | h2 (TLS)
    max_connections: 32              # per endpoint
    max_in_flight: 128               # across all batches; the rest wait
    queue_timeout: 1s
    connect_timeout: 1s
    timeout: 5s                      # per sub-request
    retries: {attempts: 2, on: [connect-failure, reset, 429, 502, 503]}
  legacy:
    endpoints: [127.0.0.1:9100]
)");
    BOOST_TEST(c.source == "t.yaml");
    BOOST_TEST(c.workers == 2u);

    BOOST_REQUIRE_EQUAL(c.listen.size(), 1u);
    BOOST_TEST(c.listen[0].address.host == "0.0.0.0");
    BOOST_TEST(c.listen[0].address.port == 8080);
    BOOST_TEST(!c.listen[0].tls.has_value());

    BOOST_REQUIRE(c.admin.address);
    BOOST_TEST(c.admin.address->text() == "127.0.0.1:9901");

    BOOST_TEST(c.batch.path == "/batch");
    BOOST_TEST(c.batch.max_items == 1000u);
    BOOST_TEST(c.batch.max_body_bytes == 8 * MiB);
    BOOST_TEST(c.batch.max_parallel == 64u);
    BOOST_TEST(c.batch.deadline == 30s);
    BOOST_TEST(c.batch.max_item_response_bytes == 1 * MiB);
    const std::vector<std::string> headers{"authorization", "cookie", "accept-language", "x-request-id",
                                           "traceparent"};
    BOOST_TEST(c.batch.forward_headers == headers, boost::test_tools::per_element());
    // Not in the file: defaults.
    BOOST_TEST(c.batch.max_json_depth == 32u);
    BOOST_TEST(c.batch.max_xml_depth == 32u);
    BOOST_TEST(c.batch.max_xml_attributes == 16u);

    BOOST_TEST(c.trusted_proxies.empty());

    BOOST_REQUIRE_EQUAL(c.routes.size(), 2u);
    BOOST_TEST(c.routes[0].prefix == "/users");
    BOOST_TEST(c.routes[0].backend == "users");
    BOOST_TEST(c.routes[0].rewrite_prefix.value_or("(none)") == "/api/v1/users");
    BOOST_TEST(c.routes[1].prefix == "/");
    BOOST_TEST(c.routes[1].backend == "legacy");
    BOOST_TEST(!c.routes[1].rewrite_prefix.has_value());

    BOOST_REQUIRE_EQUAL(c.backends.size(), 2u);
    const backend_config& users = c.backends.at("users");
    BOOST_TEST(users.name == "users");
    BOOST_REQUIRE_EQUAL(users.endpoints.size(), 2u);
    BOOST_TEST(users.endpoints[0].text() == "127.0.0.1:9001");
    BOOST_TEST(users.endpoints[1].text() == "127.0.0.1:9002");
    BOOST_TEST((users.protocol == backend_protocol::http1));
    BOOST_TEST(users.max_connections == 32u);
    BOOST_TEST(users.max_in_flight == 128u);
    BOOST_TEST(users.queue_timeout == 1s);
    BOOST_TEST(users.connect_timeout == 1s);
    BOOST_TEST(users.timeout == 5s);
    BOOST_TEST(users.retries.attempts == 2u);
    BOOST_TEST(users.retries.on_connect_failure);
    BOOST_TEST(users.retries.on_reset);
    BOOST_TEST(!users.retries.on_timeout);
    const std::vector<unsigned> statuses{429, 502, 503};
    BOOST_TEST(users.retries.on_status == statuses, boost::test_tools::per_element());

    const backend_config& legacy = c.backends.at("legacy");
    BOOST_TEST(legacy.name == "legacy");
    BOOST_REQUIRE_EQUAL(legacy.endpoints.size(), 1u);
    BOOST_TEST(legacy.endpoints[0].host == "127.0.0.1");
    BOOST_TEST(legacy.endpoints[0].port == 9100);
    BOOST_TEST(!legacy.host.has_value());
    BOOST_TEST(legacy.idle_timeout == 30s);
    BOOST_TEST(legacy.max_header_bytes == 64 * KiB);
    BOOST_TEST(legacy.retries.on_status.empty());

    BOOST_TEST(c.limits.max_header_bytes == 16 * KiB);
    BOOST_TEST(c.drain_timeout == 30s);
    BOOST_TEST(c.access_log);
}

// Everything not in the file keeps the struct initialisers of config.hpp.
BOOST_AUTO_TEST_CASE(minimal_config_keeps_every_default) {
    const auto c = load(R"(
listen:
  - address: 127.0.0.1:0
)");
    const batchgate::config defaults;
    BOOST_TEST(c.workers == defaults.workers);
    BOOST_REQUIRE_EQUAL(c.listen.size(), 1u);
    BOOST_TEST(c.listen[0].address.port == 0);
    BOOST_TEST(!c.admin.address.has_value());
    BOOST_TEST(c.routes.empty());
    BOOST_TEST(c.backends.empty());
    BOOST_TEST(c.trusted_proxies.empty());
    BOOST_TEST(c.drain_timeout == defaults.drain_timeout);
    BOOST_TEST(c.access_log == defaults.access_log);

    const batch_config b;
    BOOST_TEST(c.batch.path == b.path);
    BOOST_TEST(c.batch.max_items == b.max_items);
    BOOST_TEST(c.batch.max_body_bytes == b.max_body_bytes);
    BOOST_TEST(c.batch.max_parallel == b.max_parallel);
    BOOST_TEST(c.batch.deadline == b.deadline);
    BOOST_TEST(c.batch.max_item_response_bytes == b.max_item_response_bytes);
    BOOST_TEST(c.batch.forward_headers == b.forward_headers, boost::test_tools::per_element());
    BOOST_TEST(c.batch.max_json_depth == b.max_json_depth);
    BOOST_TEST(c.batch.max_xml_depth == b.max_xml_depth);
    BOOST_TEST(c.batch.max_xml_attributes == b.max_xml_attributes);

    const limits_config l;
    BOOST_TEST(c.limits.max_header_bytes == l.max_header_bytes);
    BOOST_TEST(c.limits.max_body_bytes == l.max_body_bytes);
    BOOST_TEST(c.limits.header_timeout == l.header_timeout);
    BOOST_TEST(c.limits.idle_timeout == l.idle_timeout);
    BOOST_TEST(c.limits.read_timeout == l.read_timeout);
    BOOST_TEST(c.limits.send_timeout == l.send_timeout);
    BOOST_TEST(c.limits.max_connections == l.max_connections);
}

BOOST_AUTO_TEST_CASE(backend_defaults_and_every_key) {
    const auto c = load(R"(
listen:
  - address: "[::1]:0"
backends:
  plain:
    endpoints: [users.internal:80]
  full:
    endpoints: ["[::1]:9001", 10.0.0.1:9002]
    protocol: http1
    host: users.example:8443
    max_connections: 4
    max_in_flight: 9
    max_queue: 0
    queue_timeout: 250ms
    connect_timeout: 2s
    timeout: 1m
    idle_timeout: 1h
    max_header_bytes: 8KiB
    h2_stream_window: 256KiB
    retries:
      attempts: 3
      on: [timeout, 503, 429, 503]
)");
    BOOST_TEST(c.listen[0].address.text() == "[::1]:0");

    const backend_config defaults;
    const backend_config& plain = c.backends.at("plain");
    BOOST_TEST(plain.endpoints[0].text() == "users.internal:80");
    BOOST_TEST((plain.protocol == defaults.protocol));
    BOOST_TEST(!plain.host.has_value());
    BOOST_TEST(plain.max_connections == defaults.max_connections);
    BOOST_TEST(plain.max_in_flight == defaults.max_in_flight);
    BOOST_TEST(plain.max_queue == 1024u);
    BOOST_TEST(plain.queue_timeout == defaults.queue_timeout);
    BOOST_TEST(plain.connect_timeout == defaults.connect_timeout);
    BOOST_TEST(plain.timeout == defaults.timeout);
    BOOST_TEST(plain.idle_timeout == defaults.idle_timeout);
    BOOST_TEST(plain.max_header_bytes == defaults.max_header_bytes);
    BOOST_TEST(plain.h2_stream_window == 1 * MiB);
    BOOST_TEST(c.backends.at("full").h2_stream_window == 256 * KiB);
    BOOST_TEST(plain.retries.attempts == defaults.retries.attempts);
    BOOST_TEST(plain.retries.on_connect_failure == defaults.retries.on_connect_failure);
    BOOST_TEST(plain.retries.on_reset == defaults.retries.on_reset);
    BOOST_TEST(plain.retries.on_timeout == defaults.retries.on_timeout);

    const backend_config& full = c.backends.at("full");
    BOOST_TEST(full.endpoints[0].text() == "[::1]:9001");
    BOOST_TEST(full.endpoints[1].text() == "10.0.0.1:9002");
    BOOST_TEST(full.host.value_or("") == "users.example:8443");
    BOOST_TEST(full.max_connections == 4u);
    BOOST_TEST(full.max_in_flight == 9u);
    BOOST_TEST(full.max_queue == 0u);  // 0: never wait for max_in_flight
    BOOST_TEST(full.queue_timeout == 250ms);
    BOOST_TEST(full.connect_timeout == 2s);
    BOOST_TEST(full.timeout == 1min);
    BOOST_TEST(full.idle_timeout == 1h);
    BOOST_TEST(full.max_header_bytes == 8 * KiB);
    BOOST_TEST(full.retries.attempts == 3u);
    // A list given replaces the default conditions; repeats collapse.
    BOOST_TEST(!full.retries.on_connect_failure);
    BOOST_TEST(!full.retries.on_reset);
    BOOST_TEST(full.retries.on_timeout);
    const std::vector<unsigned> statuses{503, 429};
    BOOST_TEST(full.retries.on_status == statuses, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(limits_batch_and_trusted_proxies) {
    const auto c = load(R"(
workers: 0
listen:
  - address: 0.0.0.0:0
  - address: 127.0.0.1:0
admin: {}
drain_timeout: 5s
access_log: false
limits:
  max_header_bytes: 32KiB
  max_body_bytes: 10MB
  header_timeout: 2s
  idle_timeout: 5m
  read_timeout: 15s
  send_timeout: 20s
  max_connections: 1
batch:
  path: /api/$batch
  max_json_depth: 8
  max_xml_depth: 9
  max_xml_attributes: 0
  forward_headers: [Authorization, X-Tenant, x-tenant]
trusted_proxies: [10.0.0.0/8, "::1", 192.168.1.1]
)");
    BOOST_TEST(c.workers == 0u);
    BOOST_TEST(c.listen.size() == 2u);
    BOOST_TEST(!c.admin.address.has_value());
    BOOST_TEST(c.drain_timeout == 5s);
    BOOST_TEST(!c.access_log);
    BOOST_TEST(c.limits.max_header_bytes == 32 * KiB);
    BOOST_TEST(c.limits.max_body_bytes == 10'000'000u);
    BOOST_TEST(c.limits.header_timeout == 2s);
    BOOST_TEST(c.limits.idle_timeout == 5min);
    BOOST_TEST(c.limits.read_timeout == 15s);
    BOOST_TEST(c.limits.send_timeout == 20s);
    BOOST_TEST(c.limits.max_connections == 1u);
    BOOST_TEST(c.batch.path == "/api/$batch");
    BOOST_TEST(c.batch.max_json_depth == 8u);
    BOOST_TEST(c.batch.max_xml_depth == 9u);
    BOOST_TEST(c.batch.max_xml_attributes == 0u);
    // Lower-cased, repeats dropped, and the list replaces the default one.
    const std::vector<std::string> headers{"authorization", "x-tenant"};
    BOOST_TEST(c.batch.forward_headers == headers, boost::test_tools::per_element());
    BOOST_REQUIRE_EQUAL(c.trusted_proxies.size(), 3u);
    BOOST_TEST(c.trusted_proxies[0].prefix_length == 8u);
    BOOST_TEST(c.trusted_proxies[1].prefix_length == 128u);
    BOOST_TEST(c.trusted_proxies[2].prefix_length == 32u);
}

BOOST_AUTO_TEST_CASE(empty_rewrite_prefix_strips_and_unused_backends_are_fine) {
    const auto c = load(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /api
    backend: api
    rewrite_prefix: ""
backends:
  api:
    endpoints: [127.0.0.1:9001]
  spare:
    endpoints: [127.0.0.1:9002]
)");
    BOOST_REQUIRE_EQUAL(c.routes.size(), 1u);
    BOOST_REQUIRE(c.routes[0].rewrite_prefix.has_value());
    BOOST_TEST(c.routes[0].rewrite_prefix->empty());
    BOOST_TEST(c.backends.contains("spare"));
}

BOOST_AUTO_TEST_CASE(example_config_loads) {
    const auto path = (source_dir() / "config" / "example.yaml").string();
    const auto c = load_config_file(path);
    BOOST_TEST(c.source == path);
    BOOST_REQUIRE_EQUAL(c.listen.size(), 1u);
    BOOST_TEST(c.listen[0].address.text() == "127.0.0.1:8080");
    BOOST_REQUIRE(c.admin.address);
    BOOST_TEST(c.admin.address->text() == "127.0.0.1:9901");
    BOOST_REQUIRE_EQUAL(c.routes.size(), 2u);
    BOOST_TEST(c.routes[1].prefix == "/");
    BOOST_TEST(c.routes[1].backend == "legacy");
    BOOST_TEST(c.backends.at("legacy").endpoints[0].text() == "127.0.0.1:9100");
    BOOST_TEST(c.backends.at("users").endpoints[0].text() == "127.0.0.1:9100");

    // The example claims to show the defaults: hold it to that.
    const batchgate::config defaults;
    const backend_config backend_defaults;
    BOOST_TEST(c.workers == defaults.workers);
    BOOST_TEST(c.drain_timeout == defaults.drain_timeout);
    BOOST_TEST(c.access_log == defaults.access_log);
    BOOST_TEST(c.batch.path == defaults.batch.path);
    BOOST_TEST(c.batch.max_items == defaults.batch.max_items);
    BOOST_TEST(c.batch.max_body_bytes == defaults.batch.max_body_bytes);
    BOOST_TEST(c.batch.max_parallel == defaults.batch.max_parallel);
    BOOST_TEST(c.batch.deadline == defaults.batch.deadline);
    BOOST_TEST(c.batch.max_item_response_bytes == defaults.batch.max_item_response_bytes);
    BOOST_TEST(c.batch.forward_headers == defaults.batch.forward_headers, boost::test_tools::per_element());
    BOOST_TEST(c.batch.max_json_depth == defaults.batch.max_json_depth);
    BOOST_TEST(c.batch.max_xml_depth == defaults.batch.max_xml_depth);
    BOOST_TEST(c.batch.max_xml_attributes == defaults.batch.max_xml_attributes);
    BOOST_TEST(c.limits.max_header_bytes == defaults.limits.max_header_bytes);
    BOOST_TEST(c.limits.max_body_bytes == defaults.limits.max_body_bytes);
    BOOST_TEST(c.limits.header_timeout == defaults.limits.header_timeout);
    BOOST_TEST(c.limits.idle_timeout == defaults.limits.idle_timeout);
    BOOST_TEST(c.limits.read_timeout == defaults.limits.read_timeout);
    BOOST_TEST(c.limits.send_timeout == defaults.limits.send_timeout);
    BOOST_TEST(c.limits.max_connections == defaults.limits.max_connections);
    BOOST_TEST(c.http2.max_concurrent_streams == defaults.http2.max_concurrent_streams);
    BOOST_TEST(c.http2.max_header_list_size == defaults.http2.max_header_list_size);
    BOOST_TEST(c.http2.initial_window_size == defaults.http2.initial_window_size);
    BOOST_TEST(c.http2.connection_window_size == defaults.http2.connection_window_size);
    BOOST_TEST(c.http2.max_batch_items_in_flight == defaults.http2.max_batch_items_in_flight);
    BOOST_TEST(c.http2.reset_burst == defaults.http2.reset_burst);
    BOOST_TEST(c.http2.reset_rate == defaults.http2.reset_rate);
    BOOST_TEST(c.http2.settings_timeout == defaults.http2.settings_timeout);
    const backend_config& users = c.backends.at("users");
    BOOST_TEST((users.protocol == backend_defaults.protocol));
    BOOST_TEST(users.h2_stream_window == backend_defaults.h2_stream_window);
    BOOST_TEST(!users.tls.has_value());  // http1: no TLS settings
    BOOST_TEST(users.max_connections == backend_defaults.max_connections);
    BOOST_TEST(users.max_in_flight == backend_defaults.max_in_flight);
    BOOST_TEST(users.max_queue == backend_defaults.max_queue);
    BOOST_TEST(users.queue_timeout == backend_defaults.queue_timeout);
    BOOST_TEST(users.connect_timeout == backend_defaults.connect_timeout);
    BOOST_TEST(users.timeout == backend_defaults.timeout);
    BOOST_TEST(users.idle_timeout == backend_defaults.idle_timeout);
    BOOST_TEST(users.max_header_bytes == backend_defaults.max_header_bytes);
    BOOST_TEST(users.retries.attempts == backend_defaults.retries.attempts);
    BOOST_TEST(users.retries.on_connect_failure == backend_defaults.retries.on_connect_failure);
    BOOST_TEST(users.retries.on_reset == backend_defaults.retries.on_reset);
    BOOST_TEST(users.retries.on_timeout == backend_defaults.retries.on_timeout);
    BOOST_TEST(users.retries.on_status == backend_defaults.retries.on_status, boost::test_tools::per_element());
    BOOST_TEST(users.retries.backoff_base == backend_defaults.retries.backoff_base);
    BOOST_TEST(users.retries.backoff_max == backend_defaults.retries.backoff_max);
    BOOST_TEST(users.retries.budget_percent == backend_defaults.retries.budget_percent);
}

// The example is where users learn the keys: every key the loader accepts is
// in it, set or commented out ("# host: ..."), in the right section.
BOOST_AUTO_TEST_CASE(example_config_shows_every_key) {
    std::ifstream in(source_dir() / "config" / "example.yaml");
    BOOST_REQUIRE(in);
    // Commented-out keys ("  # host: x", "  #   tls: {...}", "  # - address: x")
    // become keys again; comment prose ("# Durations are ...") does not match.
    const std::regex commented_key(R"(^( +)# ?( *)((- )?[a-z_]+:.*)$)");
    std::string text, line;
    while (std::getline(in, line)) text += std::regex_replace(line, commented_key, "$1$2$3") + "\n";
    const YAML::Node root = YAML::Load(text);

    auto keys_of = [](const YAML::Node& map) {
        std::set<std::string> out;
        for (const auto& entry : map) out.insert(entry.first.as<std::string>());
        return out;
    };
    auto all_of = [](config_keys::key_list keys) { return std::set<std::string>(keys.begin(), keys.end()); };
    auto union_over = [&](const YAML::Node& seq, const char* key) {
        std::set<std::string> out;
        for (const auto& item : seq)
            if (!key) {
                auto k = keys_of(item);
                out.insert(k.begin(), k.end());
            } else if (item[key]) {
                auto k = keys_of(item[key]);
                out.insert(k.begin(), k.end());
            }
        return out;
    };
    BOOST_TEST(keys_of(root) == all_of(config_keys::top), boost::test_tools::per_element());
    BOOST_TEST(union_over(root["listen"], nullptr) == all_of(config_keys::listener), boost::test_tools::per_element());
    BOOST_TEST(union_over(root["listen"], "tls") == all_of(config_keys::listener_tls), boost::test_tools::per_element());
    BOOST_TEST(keys_of(root["admin"]) == all_of(config_keys::admin), boost::test_tools::per_element());
    BOOST_TEST(keys_of(root["batch"]) == all_of(config_keys::batch), boost::test_tools::per_element());
    BOOST_TEST(keys_of(root["limits"]) == all_of(config_keys::limits), boost::test_tools::per_element());
    BOOST_TEST(keys_of(root["http2"]) == all_of(config_keys::http2), boost::test_tools::per_element());
    BOOST_TEST(union_over(root["routes"], nullptr) == all_of(config_keys::route), boost::test_tools::per_element());
    const YAML::Node users = root["backends"]["users"];  // the backend with every key spelled out
    BOOST_TEST(keys_of(users) == all_of(config_keys::backend), boost::test_tools::per_element());
    BOOST_TEST(keys_of(users["tls"]) == all_of(config_keys::backend_tls), boost::test_tools::per_element());
    BOOST_TEST(keys_of(users["retries"]) == all_of(config_keys::retries), boost::test_tools::per_element());
    BOOST_TEST(keys_of(users["retries"]["backoff"]) == all_of(config_keys::retry_backoff), boost::test_tools::per_element());
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(file_is_read_and_named_in_errors) {
    const temp_file file("listen:\n  - address: 127.0.0.1:0\nworkers: many\n");
    const std::string path = file.path.string();
    try {
        load_config_file(path);
        BOOST_FAIL("expected a config_error");
    } catch (const config_error& e) {
        BOOST_TEST(e.what() == path + ":3:10: workers: expected a whole number, got 'many'");
    }
}

BOOST_AUTO_TEST_CASE(unreadable_file) {
    try {
        load_config_file("/nonexistent/batchgate.yaml");
        BOOST_FAIL("expected a config_error");
    } catch (const config_error& e) {
        BOOST_TEST(std::string(e.what()) == "/nonexistent/batchgate.yaml: cannot read: No such file or directory");
    }
    const auto dir = std::filesystem::temp_directory_path().string();
    try {
        load_config_file(dir);
        BOOST_FAIL("expected a config_error");
    } catch (const config_error& e) {
        BOOST_TEST(std::string(e.what()) == dir + ": cannot read: Is a directory");
    }
}

// ---------------------------------------------------------------------------
// Document-level errors
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(yaml_syntax_error_uses_the_parser_position) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes: [
  {prefix: /, backend: x}
)") == "t.yaml:5:1: YAML syntax error: end of sequence flow not found");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
workers: 2: 3
)") == "t.yaml:3:11: YAML syntax error: illegal map value");  // at the second ':'
}

BOOST_AUTO_TEST_CASE(empty_or_non_map_document) {
    BOOST_TEST(error_of("") == "t.yaml:1:1: (root): the configuration is empty");
    BOOST_TEST(error_of("# nothing but a comment\n") == "t.yaml:1:1: (root): the configuration is empty");
    BOOST_TEST(error_of(R"(
# a list at the top
- listen
)") == "t.yaml:2:1: (root): expected a map of settings, got a list");
    BOOST_TEST(error_of("just text\n") == "t.yaml:1:1: (root): expected a map of settings, got 'just text'");
}

BOOST_AUTO_TEST_CASE(several_documents_refused) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
---
workers: 2
)") == "t.yaml:4:1: (root): expected one YAML document, found 2");
    // A trailing document marker alone is harmless.
    BOOST_TEST(error_of("listen:\n  - address: 127.0.0.1:0\n---\n") == "(loaded without error)");
}

// ---------------------------------------------------------------------------
// Unknown and repeated keys
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(unknown_keys_are_named_where_they_are) {
    BOOST_TEST(error_of(R"(
listn:
  - address: 127.0.0.1:0
)") == "t.yaml:1:1: listn: unknown key 'listn'; did you mean 'listen'?");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    timout: 5s
)") == "t.yaml:6:5: backends.users.timout: unknown key 'timout'; did you mean 'timeout'?");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /a
    backend: b
  - {prefix: /b, backend: b, colour: red}
backends:
  b:
    endpoints: [127.0.0.1:9001]
)") == "t.yaml:6:30: routes[1].colour: unknown key 'colour'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
    port: 80
)") == "t.yaml:3:5: listen[0].port: unknown key 'port'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  b:
    endpoints: [127.0.0.1:9001]
    retries: {attempts: 2, when: [reset]}
)") == "t.yaml:6:28: backends.b.retries.when: unknown key 'when'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
limits:
  max_header_size: 8KiB
)") == "t.yaml:4:3: limits.max_header_size: unknown key 'max_header_size'; did you mean 'max_header_bytes'?");
}

BOOST_AUTO_TEST_CASE(repeated_keys_refused) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
workers: 2
workers: 3
)") == "t.yaml:4:1: workers: duplicate key 'workers'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  max_items: 5
  max_items: 6
)") == "t.yaml:5:3: batch.max_items: duplicate key 'max_items'");
}

BOOST_AUTO_TEST_CASE(non_scalar_key_refused) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
? [a, b]
: 1
)") == "t.yaml:3:3: (root): expected a key name, got a list");
}

// ---------------------------------------------------------------------------
// Wrong types
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(wrong_types) {
    BOOST_TEST(error_of(R"(
listen:
  address: 127.0.0.1:0
)") == "t.yaml:2:3: listen: expected a list, got a map");

    BOOST_TEST(error_of(R"(
listen:
  - 127.0.0.1:0
)") == "t.yaml:2:5: listen[0]: expected a map, got '127.0.0.1:0'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
workers: two
)") == "t.yaml:3:10: workers: expected a whole number, got 'two'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
workers: -1
)") == "t.yaml:3:10: workers: expected a whole number, got '-1'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  max_items: 1.5
)") == "t.yaml:4:14: batch.max_items: expected a whole number, got '1.5'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  - users
)") == "t.yaml:4:3: backends: expected a map, got a list");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /
    backend: [a, b]
backends:
  a:
    endpoints: [127.0.0.1:1]
)") == "t.yaml:5:14: routes[0].backend: expected a string, got a list");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
trusted_proxies: 10.0.0.0/8
)") == "t.yaml:3:18: trusted_proxies: expected a list, got '10.0.0.0/8'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
access_log: yes
)") == "t.yaml:3:13: access_log: expected true or false, got 'yes'");
}

BOOST_AUTO_TEST_CASE(empty_value_points_at_its_key) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  deadline:
  max_items: 3
)") == "t.yaml:4:3: batch.deadline: expected a duration, got nothing");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
admin:
)") == "t.yaml:3:1: admin: expected a map, got nothing");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /
    backend: b
    rewrite_prefix:
backends:
  b:
    endpoints: [127.0.0.1:1]
)") == "t.yaml:6:5: routes[0].rewrite_prefix: expected a string, got nothing");
}

// ---------------------------------------------------------------------------
// Bad values
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(bad_durations) {
    const std::string hint = "; write a whole number with a unit: 250ms, 5s, 1m or 1h";
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    timeout: 5
)") == "t.yaml:6:14: backends.users.timeout: bad duration '5'" + hint);

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
limits:
  idle_timeout: 1.5s
)") == "t.yaml:4:17: limits.idle_timeout: bad duration '1.5s'" + hint);

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
drain_timeout: -1s
)") == "t.yaml:3:16: drain_timeout: bad duration '-1s'" + hint);

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  deadline: 99999999999999999999h
)") == "t.yaml:4:13: batch.deadline: bad duration '99999999999999999999h'" + hint);
}

BOOST_AUTO_TEST_CASE(zero_and_huge_timeouts_refused) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    connect_timeout: 0ms
)") == "t.yaml:6:22: backends.users.connect_timeout: must be greater than 0");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
limits:
  header_timeout: 0s
)") == "t.yaml:4:19: limits.header_timeout: must be greater than 0");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
limits:
  send_timeout: 8761h
)") == "t.yaml:4:17: limits.send_timeout: must be at most 8760h (one year)");
}

BOOST_AUTO_TEST_CASE(bad_sizes) {
    const std::string hint = "; write bytes (4096) or a unit: 512KiB, 8MiB, 1GiB, 64KB";
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  max_body_bytes: [8MiB]
)") == "t.yaml:4:19: batch.max_body_bytes: expected a size, got a list");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  max_body_bytes: 8 MB
)") == "t.yaml:4:19: batch.max_body_bytes: bad size '8 MB'" + hint);

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
limits:
  max_body_bytes: 99999999999999999999GiB
)") == "t.yaml:4:19: limits.max_body_bytes: bad size '99999999999999999999GiB'" + hint);

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
limits:
  max_header_bytes: 0
)") == "t.yaml:4:21: limits.max_header_bytes: must be greater than 0");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  b:
    endpoints: [127.0.0.1:1]
    max_header_bytes: 0KiB
)") == "t.yaml:6:23: backends.b.max_header_bytes: must be greater than 0");
}

BOOST_AUTO_TEST_CASE(bad_listen_addresses) {
    BOOST_TEST(error_of(R"(
listen:
  - address: localhost:8080
)") == "t.yaml:2:14: listen[0].address: address 'localhost:8080' must use an IP address, not a host name "
           "(e.g. 127.0.0.1 or 0.0.0.0)");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
  - address: 127.0.0.1
)") == "t.yaml:3:14: listen[1].address: bad address '127.0.0.1'; expected IP:PORT, e.g. 127.0.0.1:8080 or "
           "[::1]:8080");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:65536
)") == "t.yaml:2:14: listen[0].address: bad address '127.0.0.1:65536'; expected IP:PORT, e.g. 127.0.0.1:8080 "
           "or [::1]:8080");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
admin:
  address: ::1:9901
)") == "t.yaml:4:12: admin.address: bad address '::1:9901'; expected IP:PORT, e.g. 127.0.0.1:8080 or "
           "[::1]:8080");
}

BOOST_AUTO_TEST_CASE(same_address_twice_refused) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:8080
  - address: 127.0.0.1:8080
)") == "t.yaml:3:14: listen[1].address: address 127.0.0.1:8080 is already used by listen[0].address");

    BOOST_TEST(error_of(R"(
listen:
  - address: 0.0.0.0:9901
admin:
  address: 0.0.0.0:9901
)") == "t.yaml:4:12: admin.address: address 0.0.0.0:9901 is already used by listen[0].address");

    // Port 0 means a fresh port for every socket.
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
  - address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
)") == "(loaded without error)");
}

BOOST_AUTO_TEST_CASE(bad_endpoints) {
    const std::string hint =
        "; expected HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:9001 or users.internal:80";
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001, 127.0.0.1:0]
)") == "t.yaml:5:33: backends.users.endpoints[1]: bad endpoint '127.0.0.1:0'" + hint);

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints:
      - http://users.internal:80
)") == "t.yaml:6:9: backends.users.endpoints[0]: bad endpoint 'http://users.internal:80'" + hint);
}

BOOST_AUTO_TEST_CASE(bad_cidr) {
    const std::string hint = "; expected an address or a range such as 10.0.0.0/8 or fd00::/8";
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
trusted_proxies:
  - 10.0.0.0/8
  - 10.0.0.0/33
)") == "t.yaml:5:5: trusted_proxies[1]: bad CIDR '10.0.0.0/33'" + hint);

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
trusted_proxies: [loadbalancer]
)") == "t.yaml:3:19: trusted_proxies[0]: bad CIDR 'loadbalancer'" + hint);
}

BOOST_AUTO_TEST_CASE(protocols) {
    const auto c = load(R"(
listen:
  - address: 127.0.0.1:0
backends:
  a:
    endpoints: [127.0.0.1:9001]
    protocol: h2c
  b:
    endpoints: [127.0.0.1:9002]
    protocol: h2
  c:
    endpoints: [users.internal:443]
    protocol: https
    host: api.example:8443
    tls: {verify: false, sni: users.example}
  d:
    endpoints: [127.0.0.1:9004]
)");
    BOOST_TEST((c.backends.at("a").protocol == backend_protocol::h2c));
    BOOST_TEST(!c.backends.at("a").tls.has_value());
    const auto& b = c.backends.at("b");
    BOOST_TEST((b.protocol == backend_protocol::h2));
    BOOST_REQUIRE(b.tls.has_value());
    BOOST_TEST(b.tls->verify);  // on unless turned off
    BOOST_TEST(!b.tls->ca.has_value());
    const auto& https = c.backends.at("c");
    BOOST_TEST((https.protocol == backend_protocol::https));
    BOOST_TEST(!https.tls->verify);
    BOOST_TEST(*https.tls->sni == "users.example");
    BOOST_TEST((c.backends.at("d").protocol == backend_protocol::http1));

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    protocol: http2
)") == "t.yaml:6:15: backends.users.protocol: unknown protocol 'http2'; use http1, https, h2c or h2");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    protocol: h2c
    tls: {verify: false}
)") == "t.yaml:7:10: backends.users.tls: tls applies to protocol https or h2 only (this backend speaks h2c)");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    protocol: h2
    tls: {ca: /nonexistent/ca.pem}
)") == "t.yaml:7:15: backends.users.tls.ca: cannot read /nonexistent/ca.pem");

    // Readable, but not PEM: the context cannot be built.
    const std::string not_pem = (source_dir() / "README.md").string();
    BOOST_TEST(error_of("listen:\n  - address: 127.0.0.1:0\nbackends:\n  users:\n    endpoints: [127.0.0.1:9001]\n"
                        "    protocol: https\n    tls: {ca: " + not_pem + "}\n")
                   .starts_with("t.yaml:7:10: backends.users.tls: cannot load CA file '" + not_pem + "': "));

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    protocol: https
    tls: {verify: maybe}
)") == "t.yaml:7:19: backends.users.tls.verify: expected true or false, got 'maybe'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    protocol: https
    tls: {cert: x.pem}
)").starts_with("t.yaml:7:11: backends.users.tls.cert: unknown key 'cert'"));
}

BOOST_AUTO_TEST_CASE(outlier_and_health_check_defaults_and_values) {
    const auto defaults = load("listen:\n  - address: 127.0.0.1:0\nbackends:\n  users:\n    endpoints: [127.0.0.1:9001]\n")
                              .backends.at("users");
    BOOST_TEST(defaults.outlier.consecutive_failures == 5u);
    BOOST_TEST(defaults.outlier.base_ejection.count() == 10'000);
    BOOST_TEST(defaults.outlier.max_ejection.count() == 300'000);
    BOOST_TEST(defaults.outlier.max_ejected_percent == 50u);
    BOOST_TEST(!defaults.health_check.has_value());

    const auto set = load(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    outlier: {consecutive_failures: 0, base_ejection: 1s, max_ejection: 2s, max_ejected: 100%}
    health_check: {path: /ping, interval: 2s, timeout: 500ms, unhealthy: 1, healthy: 4}
)")
                         .backends.at("users");
    BOOST_TEST(set.outlier.consecutive_failures == 0u);
    BOOST_TEST(set.outlier.base_ejection.count() == 1'000);
    BOOST_TEST(set.outlier.max_ejection.count() == 2'000);
    BOOST_TEST(set.outlier.max_ejected_percent == 100u);
    BOOST_REQUIRE(set.health_check.has_value());
    BOOST_TEST(set.health_check->path == "/ping");
    BOOST_TEST(set.health_check->interval.count() == 2'000);
    BOOST_TEST(set.health_check->timeout.count() == 500);
    BOOST_TEST(set.health_check->unhealthy == 1u);
    BOOST_TEST(set.health_check->healthy == 4u);

    // `health_check: {}` turns checks on with every default.
    const auto on = load("listen:\n  - address: 127.0.0.1:0\nbackends:\n  users:\n    endpoints: [127.0.0.1:9001]\n"
                         "    health_check: {}\n")
                        .backends.at("users");
    BOOST_REQUIRE(on.health_check.has_value());
    BOOST_TEST(on.health_check->path == "/healthz");
    BOOST_TEST(on.health_check->interval.count() == 5'000);
    BOOST_TEST(on.health_check->unhealthy == 3u);
    BOOST_TEST(on.health_check->healthy == 2u);
}

BOOST_AUTO_TEST_CASE(bad_outlier_and_health_check) {
    const std::string head = "listen:\n  - address: 127.0.0.1:0\nbackends:\n  users:\n    endpoints: [127.0.0.1:9001]\n";
    BOOST_TEST(error_of(head + "    outlier: {base_ejection: 1m, max_ejection: 10s}\n") ==
               "t.yaml:6:14: backends.users.outlier: base_ejection (60000 ms) is longer than max_ejection (10000 ms)");
    BOOST_TEST(error_of(head + "    outlier: {max_ejected: 150%}\n") ==
               "t.yaml:6:28: backends.users.outlier.max_ejected: bad max_ejected '150%'; use a share of the endpoints "
               "from 0% to 100%, e.g. 20%");
    BOOST_TEST(error_of(head + "    outlier: {ejections: 3}\n").find("backends.users.outlier.ejections: unknown key") !=
               std::string::npos);
    BOOST_TEST(error_of(head + "    health_check: {path: healthz}\n") ==
               "t.yaml:6:26: backends.users.health_check.path: path 'healthz' must start with '/'");
    BOOST_TEST(error_of(head + "    health_check: {interval: 1s, timeout: 2s}\n") ==
               "t.yaml:6:19: backends.users.health_check: timeout (2000 ms) is longer than interval (1000 ms)");
    BOOST_TEST(error_of(head + "    health_check: {unhealthy: 0}\n") ==
               "t.yaml:6:31: backends.users.health_check.unhealthy: must be between 1 and 100");
}

BOOST_AUTO_TEST_CASE(bad_retry_conditions) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    retries: {backoff: {base: 2s, max: 1s}}
)") == "t.yaml:6:24: backends.users.retries.backoff: backoff base (2000 ms) is longer than its max (1000 ms)");
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    retries: {backoff: {min: 2s}}
)").find("backends.users.retries.backoff.min: unknown key 'min'") != std::string::npos);
    for (const char* bad : {"0%", "120%", "20", "x%"}) {
        BOOST_TEST_CONTEXT(bad) {
            BOOST_TEST(error_of("listen:\n  - address: 127.0.0.1:0\nbackends:\n  users:\n    endpoints: [127.0.0.1:9001]\n"
                                "    retries: {budget: " + std::string(bad) + "}\n")
                           .find("bad retry budget '" + std::string(bad) + "'; use a share of requests in flight") !=
                       std::string::npos);
        }
    }
    BOOST_TEST(load("listen:\n  - address: 127.0.0.1:0\nbackends:\n  users:\n    endpoints: [127.0.0.1:9001]\n"
                    "    retries: {budget: 50%}\n")
                   .backends.at("users").retries.budget_percent == 50u);
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    retries: {attempts: 2, on: [connect-failure, resets]}
)") == "t.yaml:6:50: backends.users.retries.on[1]: unknown retry condition 'resets'; use connect-failure, "
           "reset, timeout or a status code from 400 to 599");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    retries:
      on: [429, 302]
)") == "t.yaml:7:17: backends.users.retries.on[1]: retry status 302 must be between 400 and 599");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    retries:
      on: [600]
)") == "t.yaml:7:12: backends.users.retries.on[0]: retry status 600 must be between 400 and 599");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    retries:
      on: reset
)") == "t.yaml:7:11: backends.users.retries.on: expected a list, got 'reset'");
}

BOOST_AUTO_TEST_CASE(bad_backend_host_and_name) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: [127.0.0.1:9001]
    host: "users.example\r\nX-Injected: 1"
)") == "t.yaml:6:11: backends.users.host: bad host 'users.example\r\nX-Injected: 1'; expected a host name with "
           "an optional port, e.g. users.internal or users.internal:8080");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  "user service":
    endpoints: [127.0.0.1:9001]
)") == "t.yaml:4:3: backends.user service: backend name 'user service' may only contain letters, digits, "
           "'-', '_' and '.'");
}

// ---------------------------------------------------------------------------
// Missing required keys
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(listen_is_required) {
    BOOST_TEST(error_of(R"(
workers: 2
admin:
  address: 127.0.0.1:9901
)") == "t.yaml:1:1: listen: missing required key; add a listener such as '- address: 127.0.0.1:8080'");

    BOOST_TEST(error_of(R"(
workers: 2
listen: []
)") == "t.yaml:2:9: listen: must have at least one entry; add a listener such as '- address: 127.0.0.1:8080'");

    BOOST_TEST(error_of(R"(
listen:
  - tls: {cert: a.crt, key: a.key}
)") == "t.yaml:2:5: listen[0].address: missing required key 'address'");
}

BOOST_AUTO_TEST_CASE(route_keys_are_required) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /a
    backend: b
  - backend: b
backends:
  b:
    endpoints: [127.0.0.1:1]
)") == "t.yaml:6:5: routes[1].prefix: missing required key 'prefix'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /a
    rewrite_prefix: /b
)") == "t.yaml:4:5: routes[0].backend: missing required key 'backend'");
}

BOOST_AUTO_TEST_CASE(backend_endpoints_are_required) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    timeout: 5s
)") == "t.yaml:5:5: backends.users.endpoints: missing required key; list HOST:PORT entries, e.g. "
           "[127.0.0.1:9001]");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  users:
    endpoints: []
)") == "t.yaml:5:16: backends.users.endpoints: must have at least one entry; list HOST:PORT entries, e.g. "
           "[127.0.0.1:9001]");
}

BOOST_AUTO_TEST_CASE(tls_files_must_exist_and_be_complete) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 0.0.0.0:8443
    tls: {cert: tls.crt, key: tls.key}
)") == "t.yaml:3:17: listen[0].tls.cert: cannot read tls.crt");

    BOOST_TEST(error_of(R"(
listen:
  - address: 0.0.0.0:8443
    tls:
      cert: tls.crt
)") == "t.yaml:4:7: listen[0].tls.key: missing required key 'key'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 0.0.0.0:8443
    tls: {cert: tls.crt, key: tls.key, ca: ca.crt}
)") == "t.yaml:3:40: listen[0].tls.ca: unknown key 'ca'");
}

BOOST_AUTO_TEST_CASE(http2_section) {
    const auto c = load_config_string(R"(
listen:
  - address: 127.0.0.1:0
http2:
  max_concurrent_streams: 50
  max_header_list_size: 8KiB
  initial_window_size: 64KiB
  connection_window_size: 1MiB
  max_batch_items_in_flight: 100
  reset_burst: 200
  reset_rate: 10
  settings_timeout: 2s
)", "t.yaml");
    BOOST_TEST(c.http2.max_concurrent_streams == 50u);
    BOOST_TEST(c.http2.max_header_list_size == 8 * 1024u);
    BOOST_TEST(c.http2.initial_window_size == 64 * 1024u);
    BOOST_TEST(c.http2.connection_window_size == 1024 * 1024u);
    BOOST_TEST(c.http2.max_batch_items_in_flight == 100u);
    BOOST_TEST(c.http2.reset_burst == 200u);
    BOOST_TEST(c.http2.reset_rate == 10u);
    BOOST_TEST(c.http2.settings_timeout.count() == 2000);

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
http2:
  initial_window_size: 4GiB
)") == "t.yaml:4:24: http2.initial_window_size: must be between 16KiB and 2GiB - 1");
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
http2:
  max_streams: 10
)") .find("http2.max_streams: unknown key") != std::string::npos);
}

// ---------------------------------------------------------------------------
// Cross-references and paths
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(route_to_unknown_backend) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /users
    backend: users
  - prefix: /
    backend: legacyy
backends:
  users:
    endpoints: [127.0.0.1:9001]
  legacy:
    endpoints: [127.0.0.1:9100]
)") == "t.yaml:7:14: routes[1].backend: unknown backend 'legacyy'; defined backends: legacy, users");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /
    backend: legacy
)") == "t.yaml:5:14: routes[0].backend: unknown backend 'legacy'; no backends are defined");
}

BOOST_AUTO_TEST_CASE(duplicate_route_prefix) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /users
    backend: b
  - prefix: /
    backend: b
  - prefix: /users
    backend: b
backends:
  b:
    endpoints: [127.0.0.1:1]
)") == "t.yaml:8:13: routes[2].prefix: duplicate route prefix '/users' (also used by routes[0])");
}

BOOST_AUTO_TEST_CASE(paths_must_start_with_slash) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: users
    backend: b
backends:
  b:
    endpoints: [127.0.0.1:1]
)") == "t.yaml:4:13: routes[0].prefix: prefix 'users' must start with '/'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /users
    backend: b
    rewrite_prefix: api/users
backends:
  b:
    endpoints: [127.0.0.1:1]
)") == "t.yaml:6:21: routes[0].rewrite_prefix: rewrite_prefix 'api/users' must start with '/'");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  path: batch
)") == "t.yaml:4:9: batch.path: path 'batch' must start with '/'");

    const std::string bad_char =
        "' contains a character not allowed in a URL path (space, control, '?', '#', '\\' or non-ASCII; "
        "percent-encode it)";
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
routes:
  - prefix: /users
    backend: b
    rewrite_prefix: "/api\r\nX: 1"
backends:
  b:
    endpoints: [127.0.0.1:1]
)") == "t.yaml:6:21: routes[0].rewrite_prefix: rewrite_prefix '/api\r\nX: 1" + bad_char);

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  path: /batch?x=1
)") == "t.yaml:4:9: batch.path: path '/batch?x=1" + bad_char);
}

// ---------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(numbers_out_of_range) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
workers: 1025
)") == "t.yaml:3:10: workers: must be between 0 and 1024");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
workers: 99999999999999999999999
)") == "t.yaml:3:10: workers: must be between 0 and 1024");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  max_items: 0
)") == "t.yaml:4:14: batch.max_items: must be at least 1");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  max_items: 99999999999999999999999
)") == "t.yaml:4:14: batch.max_items: is too large");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  max_parallel: 0
)") == "t.yaml:4:17: batch.max_parallel: must be at least 1");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  max_json_depth: 5000
)") == "t.yaml:4:19: batch.max_json_depth: must be between 1 and 1024");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
limits:
  max_connections: 0
)") == "t.yaml:4:20: limits.max_connections: must be at least 1");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  b:
    endpoints: [127.0.0.1:1]
    max_connections: 0
)") == "t.yaml:6:22: backends.b.max_connections: must be at least 1");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  b:
    endpoints: [127.0.0.1:1]
    max_in_flight: 0
)") == "t.yaml:6:20: backends.b.max_in_flight: must be at least 1");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  b:
    endpoints: [127.0.0.1:1]
    retries: {attempts: 11}
)") == "t.yaml:6:25: backends.b.retries.attempts: must be between 1 and 10");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
backends:
  b:
    endpoints: [127.0.0.1:1]
    retries: {attempts: 0}
)") == "t.yaml:6:25: backends.b.retries.attempts: must be between 1 and 10");
}

BOOST_AUTO_TEST_CASE(forward_headers_must_be_tokens) {
    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  forward_headers: [authorization, "x tenant"]
)") == "t.yaml:4:36: batch.forward_headers[1]: 'x tenant' is not a valid header name");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  forward_headers:
    - authorization
    - "x-a:b"
)") == "t.yaml:6:7: batch.forward_headers[1]: 'x-a:b' is not a valid header name");

    BOOST_TEST(error_of(R"(
listen:
  - address: 127.0.0.1:0
batch:
  forward_headers: [""]
)") == "t.yaml:4:21: batch.forward_headers[0]: '' is not a valid header name");
}

BOOST_AUTO_TEST_CASE(forward_headers_cannot_name_proxy_managed_headers) {
    for (const std::string name : {"Content-Length", "transfer-encoding", "Host", "connection", "X-Forwarded-For",
                                   "forwarded", "proxy-authorization", "te", "upgrade"}) {
        std::string lower = name;
        for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const std::string text = "listen:\n  - address: 127.0.0.1:0\nbatch:\n  forward_headers: [" + name + "]\n";
        BOOST_TEST(error_of(text) == "t.yaml:4:21: batch.forward_headers[0]: '" + lower +
                                         "' is set by the proxy itself and cannot be forwarded");
    }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace BATCHGATE_TEST_FILE
