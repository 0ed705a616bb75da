// Process-wide counters, gauges and histograms (PRODUCT.md §5, §6), rendered
// in the Prometheus text exposition format 0.0.4 by the admin listener.
//
// Everything on the data path is a relaxed std::atomic: no locks, no
// allocation. The only mutex guards the map of per-backend metrics, taken
// when a backend's entry is first looked up (callers keep the reference) and
// while rendering. Entries are never erased, so references stay valid for the
// life of the process, across reloads that drop a backend.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace batchgate {

enum class request_kind { passthrough, batch };
inline constexpr std::size_t request_kind_count = 2;

enum class limit_kind {
    header_bytes,
    body_bytes,
    header_timeout,
    read_timeout,
    send_timeout,
    smuggling,
    bad_request,
    client_connections,
    batch_items,
    batch_body_bytes,
    queue_timeout,
    in_flight,
    item_response_bytes,
    batch_deadline,
    http2_goaway,        // an HTTP/2 client cut off: flood, rapid reset, protocol error, settings timeout
    http2_stream_reset,  // an HTTP/2 request refused with RST_STREAM (header list too large, malformed)
    tls_handshake,       // a TLS handshake failed or did not finish within limits.header_timeout
    in_flight_queue,     // a batch item refused: backends.X.max_queue items already waited for max_in_flight
    retry_budget,        // a retry not made: backends.X.retries.budget was spent
};
inline constexpr std::size_t limit_kind_count = 19;
static_assert(limit_kind_count == static_cast<std::size_t>(limit_kind::retry_budget) + 1,
              "limit_kind_count must follow the enum");

// The label values used in the exposition ("passthrough", "header_bytes", ...).
std::string_view to_string(request_kind kind);
std::string_view to_string(limit_kind kind);

// Index of a status class: status/100 for 100..599, 0 otherwise (0 = no
// answer: the client went away, or the exchange failed inside batchgate).
constexpr std::size_t status_class_index(unsigned status) {
    return status >= 100 && status <= 599 ? status / 100 : 0;
}
inline constexpr std::size_t status_class_count = 6;

// Cumulative-bucket histogram. Each observation lands in exactly one bucket
// (the first upper bound >= the value, or +Inf); buckets are made cumulative
// when rendered. The sum is kept as integer micro-units so it is an atomic
// add as well.
class histogram {
public:
    // Bounds are sorted; duplicates and non-finite values are dropped.
    explicit histogram(std::vector<double> upper_bounds_seconds);
    histogram(const histogram&) = delete;
    histogram& operator=(const histogram&) = delete;

    void observe(double seconds);
    template <class Rep, class Period>
    void observe(std::chrono::duration<Rep, Period> d) {
        observe(std::chrono::duration<double>(d).count());
    }

    struct snapshot_type {
        std::vector<double> upper_bounds;      // without +Inf
        std::vector<std::uint64_t> cumulative;  // upper_bounds.size() + 1 entries, the last one is +Inf
        std::uint64_t count = 0;                // == cumulative.back()
        std::uint64_t sum_micros = 0;
    };
    snapshot_type snapshot() const;
    const std::vector<double>& upper_bounds() const { return bounds_; }
    void reset();

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
    std::atomic<std::uint64_t> sum_micros_{0};
};

// Buckets for request and backend latencies: 1 ms .. 30 s.
std::vector<double> latency_buckets();
// Buckets for items per batch.
std::vector<double> batch_item_buckets();

struct backend_metrics {  // one per backend name, stable address for the process lifetime
    backend_metrics();
    backend_metrics(const backend_metrics&) = delete;
    backend_metrics& operator=(const backend_metrics&) = delete;

    std::atomic<std::uint64_t> responses[status_class_count]{};  // index = status/100 (1..5); 0 = no answer
    std::atomic<std::uint64_t> retries{0}, timeouts{0}, connect_failures{0}, overloaded{0};
    std::atomic<std::int64_t> open_connections{0}, idle_connections{0}, in_flight{0};  // gauges (add/sub)
    std::atomic<std::int64_t> h2_streams{0};  // gauge: HTTP/2 streams carrying an exchange now (h2c/h2 backends)
    // Endpoint health (outlier ejection, active checks): events, and the
    // endpoints out of rotation now.
    std::atomic<std::uint64_t> ejections{0}, ejection_returns{0}, health_checks_passed{0}, health_checks_failed{0};
    std::atomic<std::uint64_t> no_endpoint{0};  // requests answered 503 at once: every endpoint ejected or unhealthy
    std::atomic<std::int64_t> ejected_endpoints{0}, unhealthy_endpoints{0};  // gauges
    histogram latency;  // seconds, per exchange with the backend

    // responses[status_class_index(status)] += 1 (status 0: no answer).
    void response(unsigned status) { responses[status_class_index(status)].fetch_add(1, std::memory_order_relaxed); }
    void reset();
};

// +1 on a gauge for the life of the guard.
class scoped_gauge {
public:
    explicit scoped_gauge(std::atomic<std::int64_t>& g) : g_(&g) { g_->fetch_add(1, std::memory_order_relaxed); }
    ~scoped_gauge() {
        if (g_) g_->fetch_sub(1, std::memory_order_relaxed);
    }
    scoped_gauge(scoped_gauge&& other) noexcept : g_(std::exchange(other.g_, nullptr)) {}
    scoped_gauge(const scoped_gauge&) = delete;
    scoped_gauge& operator=(const scoped_gauge&) = delete;
    scoped_gauge& operator=(scoped_gauge&&) = delete;

private:
    std::atomic<std::int64_t>* g_;
};

class metrics_registry {
public:
    metrics_registry();
    metrics_registry(const metrics_registry&) = delete;
    metrics_registry& operator=(const metrics_registry&) = delete;

    static metrics_registry& global();

    // Created on first use under a mutex; the reference stays valid forever.
    // Look it up once (per routing generation) rather than per request.
    backend_metrics& backend(std::string_view name);

    // One answered (or abandoned: status 0) client request.
    void request_done(request_kind kind, unsigned status, double seconds);
    template <class Rep, class Period>
    void request_done(request_kind kind, unsigned status, std::chrono::duration<Rep, Period> d) {
        request_done(kind, status, std::chrono::duration<double>(d).count());
    }
    // Items in one accepted batch.
    void batch_items(std::size_t n);
    void limit_breached(limit_kind kind);

    std::atomic<std::int64_t> client_connections{0};  // gauge
    std::atomic<std::int64_t> batches_in_flight{0};   // gauge

    // Read access for tests and diagnostics.
    std::uint64_t requests(request_kind kind, unsigned status) const;
    std::uint64_t limit_breaches(limit_kind kind) const;

    std::string render() const;  // the full /metrics page
    void reset_for_tests();      // zeroes everything; backend entries (and references) stay

private:
    std::atomic<std::uint64_t> requests_[request_kind_count][status_class_count]{};
    std::unique_ptr<histogram> request_duration_[request_kind_count];
    histogram batch_items_;
    std::atomic<std::uint64_t> batch_items_total_{0};
    std::atomic<std::uint64_t> limit_breaches_[limit_kind_count]{};

    mutable std::mutex mutex_;  // guards backends_ (the map, not the atomics inside)
    std::map<std::string, std::unique_ptr<backend_metrics>, std::less<>> backends_;
};

// "\\" → "\\\\", "\"" → "\\\"", newline → "\\n": a Prometheus label value.
std::string escape_label_value(std::string_view value);

}  // namespace batchgate
