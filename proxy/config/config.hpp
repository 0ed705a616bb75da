// The configuration as plain structs, with every default in one place.
// Loading (YAML → these structs) lives in config.cpp and is the only code
// allowed to throw: it runs at start-up and on SIGHUP, never on the data path.
#pragma once

#include "proxy/core/cidr.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace batchgate {

using duration = std::chrono::milliseconds;

inline constexpr std::uint64_t KiB = 1024;
inline constexpr std::uint64_t MiB = 1024 * KiB;
inline constexpr std::uint64_t GiB = 1024 * MiB;

// "host:port" as written; host is an IP literal for listeners and an IP
// literal or DNS name for backend endpoints ("[::1]:80" for IPv6).
struct host_port {
    std::string host;
    std::uint16_t port = 0;
    std::string text() const;  // "host:port", IPv6 bracketed
};

struct tls_files {
    std::string cert;  // PEM chain; relative paths are relative to the config file
    std::string key;   // PEM private key
};

struct listener_config {
    host_port address;
    std::optional<tls_files> tls;
};

struct admin_config {
    std::optional<host_port> address;  // absent: no admin listener
};

// Limits on every client connection (PRODUCT.md §6). Keys under `limits:`.
struct limits_config {
    std::size_t max_header_bytes = 16 * KiB;      // request line + headers → 431
    std::uint64_t max_body_bytes = 1 * GiB;       // pass-through request body → 413
    duration header_timeout{10'000};              // whole request head must arrive → 408
    duration idle_timeout{60'000};                // keep-alive wait for the next request
    duration read_timeout{30'000};                // between two reads of a request body → 408
    duration send_timeout{30'000};                // one write to a client that does not read
    std::size_t max_connections = 10000;          // client connections open at once; past it, accepting pauses
};

// HTTP/2 client connections (h2c and h2 over TLS). Keys under `http2:`.
struct http2_config {
    std::uint32_t max_concurrent_streams = 100;          // SETTINGS_MAX_CONCURRENT_STREAMS we advertise
    std::size_t max_header_list_size = 16 * KiB;         // SETTINGS_MAX_HEADER_LIST_SIZE, enforced per header block
    std::uint32_t initial_window_size = 256 * KiB;       // per stream: request body bytes a client may send unread
    std::uint32_t connection_window_size = 4 * MiB;      // the same for all streams together
    std::size_t max_batch_items_in_flight = 256;         // batch items talking to backends, per connection
    std::uint64_t reset_burst = 1000;                    // RST_STREAMs a client may send at once ...
    std::uint64_t reset_rate = 33;                       // ... and per second after that (rapid reset) → GOAWAY
    duration settings_timeout{10'000};                   // our SETTINGS unacknowledged this long → GOAWAY
};

struct batch_config {
    std::string path = "/batch";
    std::size_t max_items = 1000;
    std::uint64_t max_body_bytes = 8 * MiB;
    std::size_t max_parallel = 64;
    duration deadline{30'000};
    std::uint64_t max_item_response_bytes = 1 * MiB;
    std::vector<std::string> forward_headers{"authorization", "cookie", "accept-language",
                                             "x-request-id", "traceparent"};
    std::size_t max_json_depth = 32;
    std::size_t max_xml_depth = 32;
    std::size_t max_xml_attributes = 16;
};

struct route_config {
    std::string prefix;
    std::string backend;
    std::optional<std::string> rewrite_prefix;  // "" strips the prefix
};

enum class backend_protocol { http1, h2c, h2, https };

// TLS to a backend (protocol https or h2).
struct backend_tls_config {
    std::optional<std::string> ca;   // PEM file of trusted CAs; absent: the system's default store
    bool verify = true;              // certificate chain and host name
    std::optional<std::string> sni;  // server name sent and verified; absent: the host of `host`, else the endpoint's
};

struct retry_config {
    unsigned attempts = 2;  // total tries, first one included; 1 = never retry
    bool on_connect_failure = true;
    bool on_reset = true;
    bool on_timeout = false;
    std::vector<unsigned> on_status;  // e.g. 429, 502, 503
    // Pause before a counted retry: exponential (base × 2^(retry − 1), at
    // most max) with full jitter; Retry-After wins when longer.
    duration backoff_base{25};
    duration backoff_max{1'000};
    // Retries in flight may be at most this share of the backend's requests
    // in flight (at least 3, over all workers).
    unsigned budget_percent = 20;
};

// Passive health: an endpoint that keeps failing is taken out of rotation
// for a while (Envoy's outlier detection). Keys under `outlier:`.
struct outlier_config {
    // Connect failures, resets, timeouts and 502/503/504 answers in a row
    // that eject an endpoint; 0 turns ejection off.
    unsigned consecutive_failures = 5;
    duration base_ejection{10'000};   // ejected for base × times ejected so far ...
    duration max_ejection{300'000};   // ... at most this long
    unsigned max_ejected_percent = 50;  // share of endpoints out at once (always at least one)
};

// Active health: a GET to `path` on every endpoint every `interval`, made
// once per process. Keys under `health_check:`; absent: no active checks.
struct health_check_config {
    std::string path = "/healthz";
    duration interval{5'000};
    duration timeout{1'000};
    unsigned unhealthy = 3;  // failed checks in a row → out of rotation
    unsigned healthy = 2;    // passed checks in a row → back in
};

// An endpoint's index in backend_config::endpoints; none: not chosen.
inline constexpr std::size_t no_endpoint = static_cast<std::size_t>(-1);

struct backend_config {
    std::string name;
    std::vector<host_port> endpoints;
    backend_protocol protocol = backend_protocol::http1;
    std::optional<std::string> host;  // Host header sent; default: the endpoint's host:port
    std::size_t max_connections = 32;  // per endpoint
    std::size_t max_in_flight = 128;   // across all batches
    std::size_t max_queue = 1024;      // items waiting for max_in_flight; past it 503 at once
    duration queue_timeout{1'000};
    duration connect_timeout{1'000};
    duration timeout{5'000};            // per sub-request / wait for the answer
    duration idle_timeout{30'000};      // pooled keep-alive connection unused this long is closed
    std::size_t max_header_bytes = 64 * KiB;  // backend response head
    // h2c/h2: how much of one response a backend may send ahead of what the
    // client has taken (HTTP/2 stream window): the per-stream buffer bound.
    std::uint32_t h2_stream_window = 1 * MiB;
    // Set (defaults or `tls:`) exactly when protocol is https or h2. The TLS
    // client context itself is built by the backend layer (backend_tls.hpp).
    std::optional<backend_tls_config> tls;
    retry_config retries;
    outlier_config outlier;
    std::optional<health_check_config> health_check;
};

struct config {
    unsigned workers = 0;  // 0: one per core
    std::vector<listener_config> listen;
    admin_config admin;
    batch_config batch;
    limits_config limits;
    http2_config http2;
    std::vector<cidr> trusted_proxies;
    std::vector<route_config> routes;
    std::map<std::string, backend_config> backends;
    duration drain_timeout{30'000};
    bool access_log = true;  // one JSON line per request on stdout
    std::string source;  // file name the config came from, for messages
};

// Thrown by the loader; what() is "file:line:column: key.path: message".
class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

config load_config_file(const std::string& path);
config load_config_string(std::string_view yaml, const std::string& source_name);

// "250ms", "5s", "1m", "1h"; a bare number is refused (ambiguous unit).
std::optional<duration> parse_duration(std::string_view text);
// "512KiB", "8MiB", "1GiB", "64KB"/"1MB" (decimal), or plain bytes "4096".
std::optional<std::uint64_t> parse_size(std::string_view text);
// "1.2.3.4:80", "[::1]:80", "name.example:80"; port 1-65535 (0 allowed when allow_port_zero).
std::optional<host_port> parse_host_port(std::string_view text, bool allow_port_zero);

}  // namespace batchgate
