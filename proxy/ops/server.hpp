// The process: worker threads (one io_context each), listeners, drain and
// reload. Start-up may throw (bind failures); nothing after start() does.
#pragma once

#include "proxy/backend/health_checker.hpp"
#include "proxy/config/config.hpp"
#include "proxy/frontend/worker.hpp"
#include "proxy/ops/admin.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace batchgate {

class server {
public:
    // Binds every listener (port 0 picks a free port). Throws on failure.
    explicit server(config cfg);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // The bound addresses, in `listen` order.
    std::vector<asio::ip::tcp::endpoint> local_endpoints() const;
    // The admin listener's bound address, when one is configured.
    std::optional<asio::ip::tcp::endpoint> admin_endpoint() const;
    unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }

    void start();
    // Thread-safe. Stops accepting; sessions finish their current request.
    void drain();
    // Waits until every worker has run out of work, at most `timeout`;
    // then stops whatever is left. True when everything finished in time.
    bool wait(duration timeout);
    // Thread-safe. New requests use `next`; requests in flight finish on the
    // configuration they started with. Listeners are not re-bound.
    void reload(config next);

    // Runs `fn` on worker `index`'s thread and waits for it (tests, stats).
    template <class Fn>
    auto on_worker(unsigned index, Fn fn) -> decltype(fn(std::declval<worker&>()));

    // Client connections open across all workers.
    struct connection_count {
        std::atomic<std::size_t> open{0};
    };

private:
    asio::awaitable<void> stop_admin_when_idle();

    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running_;
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
    std::vector<std::shared_ptr<asio::ssl::context>> tls_;  // per listener; null: cleartext
    std::vector<std::thread> threads_;
    std::shared_ptr<const config> cfg_;
    // The current generation's per-backend shared state; a reload hands it
    // to the next so unchanged backends keep limiter and endpoint health.
    shared_backends shared_;
    std::unique_ptr<health_checker> health_checks_;  // made by start(): one for the process
    std::shared_ptr<connection_count> connections_ = std::make_shared<connection_count>();
    std::unique_ptr<admin_server> admin_;
    std::atomic<bool> draining_{false};  // /readyz answers 503 from the first drain signal on

    std::mutex mutex_;
    std::condition_variable finished_cv_;
    unsigned finished_ = 0;
};

}  // namespace batchgate

#include "proxy/ops/server_impl.hpp"
