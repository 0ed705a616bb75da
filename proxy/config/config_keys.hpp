// Every key the configuration loader accepts, section by section. The loader
// refuses any other key with these as its "did you mean" candidates, and
// config_test holds config/example.yaml to showing each one, so a key added
// here cannot be forgotten in the example users copy.
#pragma once

#include <array>
#include <span>
#include <string_view>

namespace batchgate::config_keys {

using key_list = std::span<const std::string_view>;

inline constexpr std::array<std::string_view, 11> top{
    "workers", "listen", "admin", "batch", "limits", "http2",
    "trusted_proxies", "routes", "backends", "drain_timeout", "access_log"};
inline constexpr std::array<std::string_view, 2> listener{"address", "tls"};
inline constexpr std::array<std::string_view, 2> listener_tls{"cert", "key"};
inline constexpr std::array<std::string_view, 1> admin{"address"};
inline constexpr std::array<std::string_view, 10> batch{
    "path", "max_items", "max_body_bytes", "max_parallel", "deadline", "max_item_response_bytes",
    "forward_headers", "max_json_depth", "max_xml_depth", "max_xml_attributes"};
inline constexpr std::array<std::string_view, 7> limits{
    "max_header_bytes", "max_body_bytes", "header_timeout", "idle_timeout",
    "read_timeout", "send_timeout", "max_connections"};
inline constexpr std::array<std::string_view, 8> http2{
    "max_concurrent_streams", "max_header_list_size", "initial_window_size", "connection_window_size",
    "max_batch_items_in_flight", "reset_burst", "reset_rate", "settings_timeout"};
inline constexpr std::array<std::string_view, 3> route{"prefix", "backend", "rewrite_prefix"};
inline constexpr std::array<std::string_view, 16> backend{
    "endpoints", "protocol", "host", "max_connections", "max_in_flight", "max_queue", "queue_timeout", "connect_timeout",
    "timeout", "idle_timeout", "max_header_bytes", "h2_stream_window", "tls", "retries", "outlier", "health_check"};
inline constexpr std::array<std::string_view, 3> backend_tls{"ca", "verify", "sni"};
inline constexpr std::array<std::string_view, 4> retries{"attempts", "on", "backoff", "budget"};
inline constexpr std::array<std::string_view, 2> retry_backoff{"base", "max"};
inline constexpr std::array<std::string_view, 4> outlier{"consecutive_failures", "base_ejection", "max_ejection",
                                                         "max_ejected"};
inline constexpr std::array<std::string_view, 5> health_check{"path", "interval", "timeout", "unhealthy", "healthy"};

}  // namespace batchgate::config_keys
