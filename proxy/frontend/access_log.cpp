#include "proxy/frontend/access_log.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <random>
#include <unistd.h>

namespace batchgate {

namespace {

std::atomic<bool> enabled{true};

bool sane_request_id(std::string_view id) {
    if (id.empty() || id.size() > 128) return false;
    for (unsigned char c : id)
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
    return true;
}

std::string iso8601_now() {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::system_clock::to_time_t(now);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
    return buf;
}

}  // namespace

void set_access_log_enabled(bool on) { enabled.store(on, std::memory_order_relaxed); }

std::string request_id_for(std::string_view client_supplied) {
    if (sane_request_id(client_supplied)) return std::string(client_supplied);
    thread_local std::mt19937_64 rng{std::random_device{}()};
    // 16 hex digits, by hand: snprintf cost more than the rest of this.
    static constexpr char digits[] = "0123456789abcdef";
    std::string id(16, '0');
    std::uint64_t bits = rng();
    for (std::size_t i = 16; i-- > 0; bits >>= 4) id[i] = digits[bits & 0xf];
    return id;
}

void log_access(const client_info& client, std::string_view request_id, std::string_view method,
                std::string_view target, const exchange_summary& summary,
                std::chrono::steady_clock::time_point started) {
    if (!enabled.load(std::memory_order_relaxed)) return;
    const auto elapsed = std::chrono::steady_clock::now() - started;
    boost::json::object line;
    line["time"] = iso8601_now();
    line["request_id"] = request_id;
    line["client"] = client.address_text();
    line["method"] = method;
    line["target"] = target;
    line["status"] = summary.status;
    if (!summary.backend.empty()) line["backend"] = summary.backend;
    line["request_bytes"] = summary.request_bytes;
    line["response_bytes"] = summary.response_bytes;
    // Whole microseconds: Boost.JSON would print a double as 3.03661126E2.
    line["duration_us"] = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    std::string text = boost::json::serialize(line);
    text += '\n';
    [[maybe_unused]] auto n = ::write(STDOUT_FILENO, text.data(), text.size());
}

}  // namespace batchgate
