// Runs the items of one batch: concurrently up to batch.max_parallel, each
// backend bounded by its max_in_flight across all batches, in dependsOn
// order, within per-item timeouts and the batch deadline, with the backend's
// retry policy. Each result is handed to the sink the moment it completes
// (completion order); memory held is bounded by the items in flight.
#pragma once

#include "proxy/backend/request_scope.hpp"
#include "proxy/batch/batch.hpp"
#include "proxy/batch/item_target.hpp"
#include "proxy/core/cancel_scope.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/fields.hpp>

#include <chrono>
#include <functional>
#include <vector>

namespace batchgate {

// Receives finished entries (one item may yield several: a flattened nested
// 207). Returns false when the client is gone: fan-out then cancels the rest.
using result_sink = std::function<asio::awaitable<bool>(std::vector<item_result>&)>;

struct fanout_input {
    batch_request& batch;
    const routing_state& routing;
    const item_target_resolver& targets;  // relative hrefs and absolute URIs → absolute paths
    client_info client;
    http::fields inherited_headers;  // from the batch request itself, already filtered by forward_headers
    std::chrono::steady_clock::time_point deadline;
    in_flight_limiter* connection_items = nullptr;  // the client connection's item budget, if it has one
};

struct fanout_stats {
    std::size_t entries = 0;
    std::size_t retries = 0;
    bool cancelled = false;  // the client went away
};

asio::awaitable<fanout_stats> run_fanout(fanout_input input, cancel_scope& scope, result_sink sink);

}  // namespace batchgate
