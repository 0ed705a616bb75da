// Keep-alive HTTP/1.1 connections (cleartext, or TLS for protocol https)
// to one backend's endpoints, owned by one
// worker (never touched from another thread, so no locks). Endpoints are
// taken round-robin; each has at most `max_connections` open over all
// workers (connection_slots); a caller that finds every connection busy
// waits up to `queue_timeout` for one to be handed back or a slot to be
// given back anywhere (then 503). An idle connection is watched by the event
// loop for readability (a backend's close, or bytes nobody asked for), as
// nginx does, so reusing it costs no syscall; it is dropped after
// `idle_timeout`.
#pragma once

#include "proxy/backend/backend_client.hpp"
#include "proxy/backend/backend_shared.hpp"
#include "proxy/config/config.hpp"
#include "proxy/core/byte_stream.hpp"
#include "proxy/core/cancel_scope.hpp"
#include "proxy/core/metrics.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace batchgate {

namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

// Why a connection could not be had; maps to 503 / 502 / 504.
// (cancelled: the caller's batch ended while it waited in the queue.)
enum class acquire_error { none, queue_timeout, connect_failed, connect_timeout, cancelled };

class http1_pool;

// A backend connection and what its exchanges reuse, so that a pooled
// exchange allocates nothing: the read buffer (empty whenever the
// connection is idle) and the serialized request head. It moves between
// pool and exchange as one pointer (moving a Beast stream allocates).
struct backend_connection {
    // What a readability wait started while idle finds when it completes:
    // still idle, in the same idle period? It outlives the connection.
    struct idle_mark {
        std::uint64_t period = 0;
        bool idle = false;
    };
    explicit backend_connection(byte_stream s) : stream(std::move(s)), mark(std::make_shared<idle_mark>()) {}
    byte_stream stream;
    beast::flat_buffer read_buffer;
    std::string request_head;
    std::shared_ptr<idle_mark> mark;
    bool watched = false;  // an idle watch (a peek into `peeked`) is pending
    char peeked[1];
};

// One backend connection lent to one exchange. Give it back with
// release(true) when the exchange ended cleanly and the connection may carry
// another; anything else (including destruction) closes it.
class pooled_connection {
public:
    pooled_connection() = default;
    pooled_connection(pooled_connection&& other) noexcept;
    pooled_connection& operator=(pooled_connection&& other) noexcept;
    ~pooled_connection();

    byte_stream& stream() { return connection_->stream; }
    beast::flat_buffer& read_buffer() { return connection_->read_buffer; }
    std::string& request_head() { return connection_->request_head; }
    bool reused() const { return reused_; }
    std::size_t endpoint() const { return endpoint_; }
    const std::string& host_header() const;
    void release(bool reusable);
    explicit operator bool() const { return connection_ != nullptr; }

private:
    friend class http1_pool;
    std::shared_ptr<http1_pool> pool_;
    std::size_t endpoint_ = 0;
    std::unique_ptr<backend_connection> connection_;
    bool reused_ = false;
};

struct acquire_result {
    pooled_connection connection;
    acquire_error error = acquire_error::none;
    error_code cause;                    // the socket or TLS error behind connect_failed
    std::size_t endpoint = no_endpoint;  // the endpoint tried (success or failure)
};

struct pool_stats {
    std::size_t open = 0;  // connected or connecting
    std::size_t idle = 0;
    std::size_t waiting = 0;  // callers queued for a connection
    std::uint64_t connects = 0;
    std::uint64_t reuses = 0;
};

class http1_pool : public std::enable_shared_from_this<http1_pool>, public slot_holder, public backend_client {
public:
    // `shared`: what every worker's pool of this backend shares (limiter,
    // connection slots, retry budget, endpoint health, TLS context); made
    // here when not given (tests, one pool alone).
    http1_pool(asio::any_io_executor executor, backend_config cfg, std::shared_ptr<backend_shared> shared = {});
    ~http1_pool() override;
    http1_pool(const http1_pool&) = delete;
    http1_pool& operator=(const http1_pool&) = delete;

    // backend_client: the buffered attempt is in http1_client.cpp, the
    // streamed pass-through in http1_forwarder.cpp.
    asio::awaitable<exchange_outcome> exchange_once(const item_request& request, const client_info& client,
                                                    std::uint64_t max_response_bytes, duration timeout,
                                                    cancel_scope& scope, std::size_t avoid = no_endpoint) override;
    asio::awaitable<exchange_summary> forward(const forward_request& request, const route_match& match,
                                              request_body_source& body, response_sink& sink,
                                              request_scope& scope) override;
    bool multiplexed() const override { return false; }

    // A connection, preferring endpoints other than `avoid` (the one a
    // retried request just failed on): no new connection is opened to it
    // while the backend has another endpoint; an idle one is still used.
    // A wait in the queue ends at once when `cancel` (the batch's scope,
    // on this thread) is cancelled.
    asio::awaitable<acquire_result> acquire(std::size_t avoid = no_endpoint, cancel_scope* cancel = nullptr);
    // What acquire() would lend at once from the idle connections, without
    // its coroutine frame; nullopt when acquire() has more to do (connect,
    // queue, or the avoided endpoint's last resort).
    std::optional<acquire_result> try_acquire_idle(std::size_t avoid = no_endpoint);

    const backend_config& config() const { return cfg_; }
    retry_budget& budget() const { return *shared_->budget; }
    endpoint_health& health() const { return *shared_->health; }
    backend_metrics& metrics() const { return metrics_; }
    pool_stats stats() const;
    std::size_t per_endpoint_limit() const { return shared_->slots->limit(); }

    // Closes idle connections and retires the pool; used on shutdown and
    // reload (connections given back later stay idle unwatched).
    void close_idle() override;

    // slot_holder: called on this pool's executor by connection_slots.
    void slot_freed() override;
    void shed_idle() override;

private:
    friend class pooled_connection;

    struct idle_connection {
        std::unique_ptr<backend_connection> connection;
        std::chrono::steady_clock::time_point since;
    };
    struct endpoint_state {
        host_port address;
        std::string host_header;
        std::vector<idle_connection> idle;  // most recently used last
        std::size_t open = 0;               // this pool's, each holding a slot of connection_slots
    };
    // A queued caller. The pool hands it either a ready connection or a
    // free slot on `endpoint` to connect with, then cancels its timer.
    struct waiter {
        asio::steady_timer* timer;
        bool granted = false;
        std::size_t endpoint = 0;
        std::unique_ptr<backend_connection> connection;
    };

    void give_back(std::size_t endpoint, std::unique_ptr<backend_connection>& connection, bool reusable);
    void keep_idle(std::size_t endpoint, std::unique_ptr<backend_connection> connection);
    void idle_connection_readable(std::size_t endpoint, const backend_connection::idle_mark* mark);
    std::unique_ptr<backend_connection> take_idle(endpoint_state& ep);
    asio::awaitable<acquire_result> connect(std::size_t endpoint);
    acquire_result lend(std::size_t endpoint, std::unique_ptr<backend_connection> connection, bool reused);
    bool take_slot(std::size_t endpoint);
    void release_slot(std::size_t endpoint);
    void close_idle_of(endpoint_state& ep);
    void wait_for_slot();
    void grant_free_slots();

    asio::any_io_executor executor_;
    backend_config cfg_;
    std::shared_ptr<backend_shared> shared_;
    asio::ssl::context* tls_;  // shared_->tls: set for https/h2
    std::vector<endpoint_state> endpoints_;
    std::list<waiter*> waiters_;
    std::size_t next_endpoint_ = 0;
    std::uint64_t connects_ = 0;
    std::uint64_t reuses_ = 0;
    std::uint64_t idle_waits_ = 0;  // numbers each idle period's readability wait
    bool retired_ = false;          // close_idle() was called: idle connections are not watched
    bool joined_slots_ = false;     // known to connection_slots as a pool that may shed
    backend_metrics& metrics_;      // process-wide series for this backend name
};

}  // namespace batchgate
