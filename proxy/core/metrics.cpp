#include "proxy/core/metrics.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#ifndef BATCHGATE_VERSION
#define BATCHGATE_VERSION "dev"
#endif

namespace batchgate {

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

constexpr std::array<std::string_view, request_kind_count> request_kind_names{"passthrough", "batch"};

constexpr std::array<std::string_view, limit_kind_count> limit_kind_names{
    "header_bytes",  "body_bytes",       "header_timeout", "read_timeout", "send_timeout",
    "smuggling",     "bad_request",      "client_connections", "batch_items", "batch_body_bytes",
    "queue_timeout", "in_flight",        "item_response_bytes", "batch_deadline",
    "http2_goaway",  "http2_stream_reset", "tls_handshake", "in_flight_queue", "retry_budget",
};

// Label value of each status class index; rendered in this order.
constexpr std::array<std::string_view, status_class_count> status_class_names{"none", "1xx", "2xx",
                                                                             "3xx",  "4xx", "5xx"};
constexpr std::array<std::size_t, status_class_count> status_class_order{1, 2, 3, 4, 5, 0};

// Larger than any sane observation (~31 years in seconds), small enough that
// the micro-unit conversion cannot overflow.
constexpr double max_observation = 1e9;

void append_uint(std::string& out, std::uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// Shortest text that reads back as the same double ("0.005", "1", "30").
void append_double(std::string& out, double v) {
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// Micro-units as a decimal number without rounding error: 1500000 → "1.5".
void append_micros(std::string& out, std::uint64_t micros) {
    append_uint(out, micros / 1'000'000);
    std::uint64_t frac = micros % 1'000'000;
    if (frac == 0) return;
    char digits[6];
    for (int i = 5; i >= 0; --i) {
        digits[i] = static_cast<char>('0' + frac % 10);
        frac /= 10;
    }
    int len = 6;
    while (len > 0 && digits[len - 1] == '0') --len;
    out += '.';
    out.append(digits, static_cast<std::size_t>(len));
}

// HELP text: backslash and newline escaped.
std::string escape_help(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

class page {
public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += escape_help(help);
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    // `labels` is already rendered (`a="x",b="y"`) or empty.
    void sample_start(std::string_view name, std::string_view suffix, std::string_view labels) {
        out_ += name;
        out_ += suffix;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
    }
    void sample(std::string_view name, std::string_view labels, std::uint64_t v) {
        sample_start(name, "", labels);
        append_uint(out_, v);
        out_ += '\n';
    }
    void gauge_sample(std::string_view name, std::string_view labels, std::int64_t v) {
        sample_start(name, "", labels);
        append_int(out_, v);
        out_ += '\n';
    }

    void histogram_samples(std::string_view name, std::string_view labels, const histogram& h) {
        const auto snap = h.snapshot();
        const std::string prefix = labels.empty() ? std::string() : std::string(labels) + ",";
        for (std::size_t i = 0; i <= snap.upper_bounds.size(); ++i) {
            std::string bucket_labels = prefix + "le=\"";
            if (i < snap.upper_bounds.size())
                append_double(bucket_labels, snap.upper_bounds[i]);
            else
                bucket_labels += "+Inf";
            bucket_labels += '"';
            sample_start(name, "_bucket", bucket_labels);
            append_uint(out_, snap.cumulative[i]);
            out_ += '\n';
        }
        sample_start(name, "_sum", labels);
        append_micros(out_, snap.sum_micros);
        out_ += '\n';
        sample_start(name, "_count", labels);
        append_uint(out_, snap.count);
        out_ += '\n';
    }

    std::string& text() { return out_; }

private:
    std::string out_;
};

std::string label(std::string_view name, std::string_view value) {
    std::string out(name);
    out += "=\"";
    out += escape_label_value(value);
    out += '"';
    return out;
}

std::string labels(std::string_view n1, std::string_view v1, std::string_view n2, std::string_view v2) {
    return label(n1, v1) + "," + label(n2, v2);
}

}  // namespace

std::string_view to_string(request_kind kind) { return request_kind_names.at(static_cast<std::size_t>(kind)); }
std::string_view to_string(limit_kind kind) { return limit_kind_names.at(static_cast<std::size_t>(kind)); }

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

// ---- histogram --------------------------------------------------------------

histogram::histogram(std::vector<double> upper_bounds_seconds) : bounds_(std::move(upper_bounds_seconds)) {
    std::erase_if(bounds_, [](double b) { return !std::isfinite(b); });
    std::sort(bounds_.begin(), bounds_.end());
    bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
    buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
    for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, relaxed);
}

void histogram::observe(double seconds) {
    if (std::isnan(seconds) || seconds < 0) seconds = 0;
    std::size_t i = 0;
    while (i < bounds_.size() && seconds > bounds_[i]) ++i;  // `le`: the bound is inclusive
    buckets_[i].fetch_add(1, relaxed);
    const double clamped = std::min(seconds, max_observation);
    sum_micros_.fetch_add(static_cast<std::uint64_t>(std::llround(clamped * 1e6)), relaxed);
}

histogram::snapshot_type histogram::snapshot() const {
    snapshot_type s;
    s.upper_bounds = bounds_;
    s.cumulative.resize(bounds_.size() + 1);
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        running += buckets_[i].load(relaxed);
        s.cumulative[i] = running;
    }
    // The count is the +Inf bucket, so the two always agree even while
    // other threads observe.
    s.count = running;
    s.sum_micros = sum_micros_.load(relaxed);
    return s;
}

void histogram::reset() {
    for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, relaxed);
    sum_micros_.store(0, relaxed);
}

std::vector<double> latency_buckets() {
    return {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

std::vector<double> batch_item_buckets() { return {1, 10, 100, 1000, 10000}; }

// ---- backend_metrics --------------------------------------------------------

backend_metrics::backend_metrics() : latency(latency_buckets()) {}

void backend_metrics::reset() {
    for (auto& r : responses) r.store(0, relaxed);
    for (auto* c : {&retries, &timeouts, &connect_failures, &overloaded, &ejections, &ejection_returns,
                    &health_checks_passed, &health_checks_failed, &no_endpoint})
        c->store(0, relaxed);
    for (auto* g : {&open_connections, &idle_connections, &in_flight, &h2_streams, &ejected_endpoints,
                    &unhealthy_endpoints})
        g->store(0, relaxed);
    latency.reset();
}

// ---- metrics_registry -------------------------------------------------------

metrics_registry::metrics_registry() : batch_items_(batch_item_buckets()) {
    for (auto& h : request_duration_) h = std::make_unique<histogram>(latency_buckets());
}

metrics_registry& metrics_registry::global() {
    static metrics_registry instance;
    return instance;
}

backend_metrics& metrics_registry::backend(std::string_view name) {
    std::lock_guard lock(mutex_);
    auto it = backends_.find(name);
    if (it == backends_.end()) it = backends_.emplace(std::string(name), std::make_unique<backend_metrics>()).first;
    return *it->second;
}

void metrics_registry::request_done(request_kind kind, unsigned status, double seconds) {
    const auto k = static_cast<std::size_t>(kind);
    requests_[k][status_class_index(status)].fetch_add(1, relaxed);
    request_duration_[k]->observe(seconds);
}

void metrics_registry::batch_items(std::size_t n) {
    batch_items_.observe(static_cast<double>(n));
    batch_items_total_.fetch_add(n, relaxed);
}

void metrics_registry::limit_breached(limit_kind kind) {
    limit_breaches_[static_cast<std::size_t>(kind)].fetch_add(1, relaxed);
}

std::uint64_t metrics_registry::requests(request_kind kind, unsigned status) const {
    return requests_[static_cast<std::size_t>(kind)][status_class_index(status)].load(relaxed);
}

std::uint64_t metrics_registry::limit_breaches(limit_kind kind) const {
    return limit_breaches_[static_cast<std::size_t>(kind)].load(relaxed);
}

void metrics_registry::reset_for_tests() {
    for (auto& row : requests_)
        for (auto& c : row) c.store(0, relaxed);
    for (auto& h : request_duration_) h->reset();
    batch_items_.reset();
    batch_items_total_.store(0, relaxed);
    for (auto& c : limit_breaches_) c.store(0, relaxed);
    client_connections.store(0, relaxed);
    batches_in_flight.store(0, relaxed);
    std::lock_guard lock(mutex_);
    for (auto& [name, b] : backends_) b->reset();
}

std::string metrics_registry::render() const {
    page p;
    p.text().reserve(16 * 1024);

    p.family("batchgate_build_info", "gauge", "Always 1; the version label says which build is running.");
    p.sample("batchgate_build_info", label("version", BATCHGATE_VERSION), 1);

    p.family("batchgate_requests_total", "counter",
             "Client requests answered, by kind and status class (code \"none\": no answer, the client went away).");
    for (std::size_t k = 0; k < request_kind_count; ++k)
        for (std::size_t c : status_class_order)
            p.sample("batchgate_requests_total", labels("kind", request_kind_names[k], "code", status_class_names[c]),
                     requests_[k][c].load(relaxed));

    p.family("batchgate_request_duration_seconds", "histogram",
             "Time from the request head to the end of the answer, by kind.");
    for (std::size_t k = 0; k < request_kind_count; ++k)
        p.histogram_samples("batchgate_request_duration_seconds", label("kind", request_kind_names[k]),
                            *request_duration_[k]);

    p.family("batchgate_batch_items", "histogram", "Items per accepted batch.");
    p.histogram_samples("batchgate_batch_items", "", batch_items_);

    p.family("batchgate_batch_items_total", "counter", "Items in all accepted batches.");
    p.sample("batchgate_batch_items_total", "", batch_items_total_.load(relaxed));

    p.family("batchgate_batches_in_flight", "gauge", "Batches being fanned out now.");
    p.gauge_sample("batchgate_batches_in_flight", "", batches_in_flight.load(relaxed));

    p.family("batchgate_client_connections", "gauge", "Client connections open now.");
    p.gauge_sample("batchgate_client_connections", "", client_connections.load(relaxed));

    p.family("batchgate_limit_breaches_total", "counter",
             "Requests or connections refused or cut off by a protective limit, by limit.");
    for (std::size_t l = 0; l < limit_kind_count; ++l)
        p.sample("batchgate_limit_breaches_total", label("limit", limit_kind_names[l]), limit_breaches_[l].load(relaxed));

    // Per-backend families: one pass per family over the sorted map, so each
    // family's HELP/TYPE appears once and its series stay together.
    std::lock_guard lock(mutex_);
    std::vector<std::pair<std::string, const backend_metrics*>> backends;
    backends.reserve(backends_.size());
    for (const auto& [name, b] : backends_) backends.emplace_back(label("backend", name), b.get());

    p.family("batchgate_backend_responses_total", "counter",
             "Exchanges with a backend, by status class of its answer (code \"none\": no answer).");
    for (const auto& [bl, b] : backends)
        for (std::size_t c : status_class_order)
            p.sample("batchgate_backend_responses_total", bl + ",code=\"" + std::string(status_class_names[c]) + "\"",
                     b->responses[c].load(relaxed));

    auto counter_family = [&](std::string_view name, std::string_view help,
                              const std::atomic<std::uint64_t> backend_metrics::*member) {
        p.family(name, "counter", help);
        for (const auto& [bl, b] : backends) p.sample(name, bl, (b->*member).load(relaxed));
    };
    counter_family("batchgate_backend_retries_total", "Retried exchanges with a backend.", &backend_metrics::retries);
    counter_family("batchgate_backend_timeouts_total", "Exchanges with a backend that ran out of time.",
                   &backend_metrics::timeouts);
    counter_family("batchgate_backend_connect_failures_total", "Failed connection attempts to a backend.",
                   &backend_metrics::connect_failures);
    counter_family("batchgate_backend_overloaded_total",
                   "Requests refused because a backend's in-flight limit or connection queue was full.",
                   &backend_metrics::overloaded);

    counter_family("batchgate_backend_ejections_total",
                   "Endpoints of a backend taken out of rotation after consecutive failures (outlier.consecutive_failures).",
                   &backend_metrics::ejections);
    counter_family("batchgate_backend_ejection_returns_total",
                   "Ejected endpoints of a backend back in rotation (ejection time over, or a passed health check).",
                   &backend_metrics::ejection_returns);
    p.family("batchgate_backend_health_checks_total", "counter", "Active health checks of a backend's endpoints, by result.");
    for (const auto& [bl, b] : backends) {
        p.sample("batchgate_backend_health_checks_total", bl + ",result=\"pass\"", b->health_checks_passed.load(relaxed));
        p.sample("batchgate_backend_health_checks_total", bl + ",result=\"fail\"", b->health_checks_failed.load(relaxed));
    }
    counter_family("batchgate_backend_no_endpoint_total",
                   "Requests answered 503 at once because every endpoint of a backend was ejected or unhealthy.",
                   &backend_metrics::no_endpoint);
    p.family("batchgate_backend_endpoints_out", "gauge",
             "Endpoints of a backend out of rotation now: ejected (outlier) or unhealthy (health_check).");
    for (const auto& [bl, b] : backends) {
        p.gauge_sample("batchgate_backend_endpoints_out", bl + ",reason=\"ejected\"", b->ejected_endpoints.load(relaxed));
        p.gauge_sample("batchgate_backend_endpoints_out", bl + ",reason=\"unhealthy\"", b->unhealthy_endpoints.load(relaxed));
    }

    p.family("batchgate_backend_connections", "gauge",
             "Pooled connections to a backend, all workers together: open (idle ones included) and idle.");
    for (const auto& [bl, b] : backends) {
        p.gauge_sample("batchgate_backend_connections", bl + ",state=\"open\"", b->open_connections.load(relaxed));
        p.gauge_sample("batchgate_backend_connections", bl + ",state=\"idle\"", b->idle_connections.load(relaxed));
    }

    p.family("batchgate_backend_in_flight", "gauge", "Requests to a backend under way now.");
    for (const auto& [bl, b] : backends) p.gauge_sample("batchgate_backend_in_flight", bl, b->in_flight.load(relaxed));

    // For h2c/h2 backends the connections above are sessions; this shows how
    // many requests they multiplex (0 for HTTP/1.1 backends).
    p.family("batchgate_backend_h2_streams", "gauge", "HTTP/2 streams to a backend carrying a request now.");
    for (const auto& [bl, b] : backends) p.gauge_sample("batchgate_backend_h2_streams", bl, b->h2_streams.load(relaxed));

    p.family("batchgate_backend_latency_seconds", "histogram", "Duration of one exchange with a backend.");
    for (const auto& [bl, b] : backends) p.histogram_samples("batchgate_backend_latency_seconds", bl, b->latency);

    return std::move(p.text());
}

}  // namespace batchgate
