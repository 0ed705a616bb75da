// One JSON line per request on stdout (PRODUCT.md §5), written with a single
// write(2) so lines from different workers never interleave.
#pragma once

#include "proxy/backend/forwarding.hpp"
#include "proxy/backend/request_scope.hpp"
#include "proxy/core/exchange.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace batchgate {

void set_access_log_enabled(bool enabled);

// A request id for logs and X-Request-Id: the client's own when it is a sane
// token, else a fresh random one.
std::string request_id_for(std::string_view client_supplied);

void log_access(const client_info& client, std::string_view request_id, std::string_view method,
                std::string_view target, const exchange_summary& summary,
                std::chrono::steady_clock::time_point started);

}  // namespace batchgate
