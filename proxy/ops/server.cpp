#include "proxy/ops/server.hpp"

#include "proxy/core/metrics.hpp"
#include "proxy/frontend/access_log.hpp"
#include "proxy/frontend/client_connection.hpp"
#include "proxy/frontend/tls_context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstdio>
#include <exception>

namespace batchgate {

namespace {

using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Coroutines are written not to throw; if one does anyway (bad_alloc), the
// connection it served is lost but the worker keeps running.
void report_exception(std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "batchgate: connection aborted by exception: %s\n", ex.what());
    }
}

tcp::endpoint to_endpoint(const host_port& hp) {
    return tcp::endpoint(asio::ip::make_address(hp.host), hp.port);
}

// The accept loops pause at limits.max_connections so the excess waits in
// the kernel's backlog instead of costing us memory.
asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::shared_ptr<asio::ssl::context> tls,
                                  std::vector<std::unique_ptr<worker>>& workers,
                                  std::shared_ptr<server::connection_count> count) {
    bool paused = false;
    std::size_t next = 0;
    for (;;) {
        worker& w = *workers[next % workers.size()];
        // Worker 0 runs this loop, so reading its routing generation is safe.
        if (count->open.load() >= workers.front()->routing->cfg->limits.max_connections) {
            if (!paused) metrics_registry::global().limit_breached(limit_kind::client_connections);
            paused = true;
            asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(10));
            co_await pause.async_wait(use_tuple);
            if (!acceptor.is_open()) co_return;
            continue;
        }
        ++next;
        paused = false;
        // The socket is created on the chosen worker's io_context: the
        // session never crosses threads afterwards.
        auto [ec, socket] = co_await acceptor.async_accept(w.context, use_tuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
            // Out of descriptors or similar: back off instead of spinning.
            asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto remote = socket.remote_endpoint(ignored);
        const client_info client(remote.address(), false, false);
        ++count->open;
        asio::co_spawn(w.context, serve_client_connection(w, std::move(socket), client, tls),
                       [count](std::exception_ptr e) {
                           --count->open;
                           report_exception(e);
                       });
    }
}

}  // namespace

server::server(config c) : cfg_(std::make_shared<const config>(std::move(c))) {
    unsigned n = cfg_->workers ? cfg_->workers : std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
        workers_.push_back(std::make_unique<worker>());
        keep_running_.push_back(asio::make_work_guard(workers_.back()->context));
    }
    shared_ = make_shared_backends(*cfg_);
    for (auto& w : workers_)
        w->routing = std::make_shared<routing_state>(cfg_, w->context.get_executor(), shared_);
    for (const auto& listener : cfg_->listen) {
        try {
            auto acceptor = std::make_unique<tcp::acceptor>(workers_.front()->context);
            auto endpoint = to_endpoint(listener.address);
            acceptor->open(endpoint.protocol());
            acceptor->set_option(tcp::acceptor::reuse_address(true));
            acceptor->bind(endpoint);
            acceptor->listen(asio::socket_base::max_listen_connections);
            acceptors_.push_back(std::move(acceptor));
            tls_.push_back(listener.tls ? make_listener_tls_context(*listener.tls) : nullptr);
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error("cannot listen on " + listener.address.text() + ": " + e.code().message());
        }
    }
    if (cfg_->admin.address)
        admin_ = std::make_unique<admin_server>(workers_.front()->context, *cfg_->admin.address,
                                                [this] { return !draining_.load(); });
    set_access_log_enabled(cfg_->access_log);
}

std::optional<tcp::endpoint> server::admin_endpoint() const {
    if (!admin_) return std::nullopt;
    return admin_->local_endpoint();
}

// The admin listener keeps answering (/readyz: 503) while clients drain, and
// goes once the last client connection is gone, letting worker 0 finish.
asio::awaitable<void> server::stop_admin_when_idle() {
    asio::steady_timer poll(workers_.front()->context);
    while (connections_->open.load() > 0) {
        poll.expires_after(std::chrono::milliseconds(20));
        co_await poll.async_wait(use_tuple);
    }
    admin_->stop();
}

server::~server() {
    for (auto& w : workers_) w->context.stop();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

std::vector<tcp::endpoint> server::local_endpoints() const {
    std::vector<tcp::endpoint> out;
    for (const auto& a : acceptors_) out.push_back(a->local_endpoint());
    return out;
}

void server::start() {
    health_checks_ = std::make_unique<health_checker>();
    health_checks_->check(cfg_, shared_);
    for (std::size_t i = 0; i < acceptors_.size(); ++i)
        asio::co_spawn(workers_.front()->context, accept_loop(*acceptors_[i], tls_[i], workers_, connections_),
                       report_exception);
    if (admin_) admin_->start();
    for (auto& w : workers_) {
        w->start_timer_floor();
        threads_.emplace_back([this, ctx = &w->context] {
            ctx->run();
            std::lock_guard lock(mutex_);
            ++finished_;
            finished_cv_.notify_all();
        });
    }
}

void server::drain() {
    if (draining_.exchange(true)) return;
    if (health_checks_) health_checks_->stop();
    asio::post(workers_.front()->context, [this] {
        if (admin_) asio::co_spawn(workers_.front()->context, stop_admin_when_idle(), report_exception);
        for (auto& a : acceptors_) {
            error_code ignored;
            a->close(ignored);
        }
    });
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        asio::post(workers_[i]->context, [this, i] {
            workers_[i]->begin_drain();
            // Idle pooled backend connections would not keep the loop alive,
            // but closing them now tells backends we are gone.
            workers_[i]->routing->close_pools();
            keep_running_[i].reset();
        });
    }
}

bool server::wait(duration timeout) {
    bool in_time;
    {
        std::unique_lock lock(mutex_);
        in_time = finished_cv_.wait_for(lock, timeout, [&] { return finished_ == workers_.size(); });
    }
    for (auto& w : workers_) w->context.stop();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    return in_time;
}

void server::reload(config next) {
    auto cfg = std::make_shared<const config>(std::move(next));
    // May throw: the reload is refused, nothing replaced.
    auto shared = make_shared_backends(*cfg, cfg_.get(), &shared_);
    for (auto& w : workers_) {
        auto state = std::make_shared<routing_state>(cfg, w->context.get_executor(), shared);
        asio::post(w->context, [w = w.get(), state] {
            auto old = std::exchange(w->routing, state);
            old->close_pools();
        });
    }
    set_access_log_enabled(cfg->access_log);
    cfg_ = cfg;
    if (health_checks_ && !draining_.load()) health_checks_->check(cfg, shared);
    shared_ = std::move(shared);
}

}  // namespace batchgate
