// HTTP/2 sessions to one backend (h2c: prior knowledge; h2: TLS with ALPN
// h2, handshake within connect_timeout), owned by one worker
// (single-threaded like http1_pool), and the single-attempt
// exchange of a batch item over them: N items become N streams multiplexed
// on one or a few connections.
//
// Sessions: at most `max_connections` per endpoint over all workers
// (connection_slots: a session holds its slot from connect until its
// connection is closed, draining included), endpoints round-robin. A new stream goes to a ready session with room
// under the backend's SETTINGS_MAX_CONCURRENT_STREAMS, else to a new session
// if allowed, else waits up to `queue_timeout`. A session that received
// GOAWAY takes no new streams and closes when its streams are done; one unused for `idle_timeout` says GOAWAY and
// closes.
#pragma once

#include "proxy/backend/buffered_exchange.hpp"
#include "proxy/backend/forwarding.hpp"
#include "proxy/core/cancel_scope.hpp"
#include "proxy/backend/backend_client.hpp"
#include "proxy/backend/backend_shared.hpp"
#include "proxy/config/config.hpp"
#include "proxy/core/metrics.hpp"
#include "proxy/http2/h2_connection.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <list>
#include <memory>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace batchgate {

struct h2_pool_stats {
    std::size_t sessions = 0;  // connected (ready or waiting for SETTINGS), including draining ones
    std::size_t streams = 0;   // open streams over all sessions
    std::size_t waiting = 0;   // exchanges queued for room
    std::uint64_t connects = 0;
};

class h2_pool : public std::enable_shared_from_this<h2_pool>, public slot_holder, public backend_client {
public:
    // `shared`: what every worker's pool of this backend shares (limiter,
    // connection slots, retry budget, endpoint health, TLS context); made
    // here when not given (tests, one pool alone).
    h2_pool(asio::any_io_executor executor, backend_config cfg, std::shared_ptr<backend_shared> shared = {});
    ~h2_pool() override;
    h2_pool(const h2_pool&) = delete;
    h2_pool& operator=(const h2_pool&) = delete;

    // backend_client: the buffered attempt is in h2_client.cpp, the
    // streamed pass-through in h2_forwarder.cpp.
    asio::awaitable<exchange_outcome> exchange_once(const item_request& request, const client_info& client,
                                                    std::uint64_t max_response_bytes, duration timeout,
                                                    cancel_scope& scope, std::size_t avoid = no_endpoint) override;
    asio::awaitable<exchange_summary> forward(const forward_request& request, const route_match& match,
                                              request_body_source& body, response_sink& sink,
                                              request_scope& scope) override;
    bool multiplexed() const override { return true; }

    const backend_config& config() const { return cfg_; }
    retry_budget& budget() const { return *shared_->budget; }
    endpoint_health& health() const { return *shared_->health; }
    backend_metrics& metrics() const { return metrics_; }
    h2_pool_stats stats() const;
    std::size_t per_endpoint_limit() const { return shared_->slots->limit(); }

    // slot_holder: called on this pool's executor by connection_slots.
    void slot_freed() override { wake_waiters(); }
    void shed_idle() override;

    // GOAWAY to every session (shutdown / reload): idle ones close at once,
    // busy ones when their streams end; waiters and later callers fail.
    void close();
    void close_idle() override { close(); }

    // A session with room for one more stream, to be used before the caller
    // next suspends (the room is not reserved).
    struct slot {
        std::shared_ptr<h2_connection> session;
        std::string authority;
        std::string_view scheme;  // "http" (h2c) or "https" (h2)
        exchange_error error = exchange_error::none;
        error_code cause;
        std::size_t endpoint = no_endpoint;  // the endpoint used or tried
    };
    // A stream's room, preferring endpoints other than `avoid` (the one a
    // retried request just failed on): no new session is opened to it while
    // the backend has another endpoint; a session with room is still used.
    // A wait for room ends at once when `cancel` (the batch's scope, on this
    // thread) is cancelled.
    asio::awaitable<slot> acquire(std::size_t avoid = no_endpoint, cancel_scope* cancel = nullptr);

private:
    std::string_view scheme() const { return cfg_.protocol == backend_protocol::h2 ? "https" : "http"; }

    struct session_entry {
        std::shared_ptr<h2_connection> connection;
        bool counted_idle = false;
    };
    struct endpoint_state {
        host_port address;
        std::string authority;
        std::list<session_entry> sessions;
        bool connecting = false;  // one connect at a time per endpoint: the others wait for its SETTINGS
    };
    struct waiter {
        asio::steady_timer* timer;
        bool woken = false;
    };

    std::shared_ptr<h2_connection> pick_session(std::size_t& endpoint, const endpoint_choice& choice);
    // An endpoint to open a session to, its slot taken; `full`: one was
    // left out only because its slots are all taken.
    std::optional<std::size_t> endpoint_for_new_session(const endpoint_choice& choice, bool& full);
    bool take_slot(std::size_t endpoint);
    asio::awaitable<slot> connect(std::size_t endpoint);
    asio::awaitable<bool> wait_for_change(std::chrono::steady_clock::time_point deadline,
                                          cancel_scope* cancel = nullptr);
    void session_changed(std::size_t endpoint, h2_connection* which);
    void wake_waiters();
    h2_connection_options session_options() const;

    asio::any_io_executor executor_;
    backend_config cfg_;
    std::shared_ptr<backend_shared> shared_;
    asio::ssl::context* tls_;  // shared_->tls: set for https/h2
    std::vector<endpoint_state> endpoints_;
    std::list<waiter*> waiters_;
    std::size_t next_endpoint_ = 0;
    std::uint64_t connects_ = 0;
    bool closed_ = false;
    bool joined_slots_ = false;  // known to connection_slots as a pool that may shed
    backend_metrics& metrics_;  // process-wide series for this backend name
};

// RFC 9113 §8.3.1 pseudo-headers, then `fields` (already built by
// build_forwarded_request_headers) with lower-case names, minus Host (now
// :authority) and the connection-specific fields HTTP/2 forbids (§8.2.2).
std::vector<h2_header> to_h2_request_headers(std::string_view method, std::string_view scheme,
                                             std::string_view authority, std::string_view path,
                                             const http::fields& fields);

// One HTTP/2 request/response for a batch item on `pool`; the outcome reads
// exactly like exchange_once's. A stream the backend never processed
// (REFUSED_STREAM, above a GOAWAY's last stream id) ends with
// exchange_error::reset and nothing_received = true: safe to retry, even POST.
asio::awaitable<exchange_outcome> h2_exchange_once(h2_pool& pool, const item_request& request,
                                                   const client_info& client, std::uint64_t max_response_bytes,
                                                   duration timeout, cancel_scope& scope,
                                                   std::size_t avoid = no_endpoint);

}  // namespace batchgate
