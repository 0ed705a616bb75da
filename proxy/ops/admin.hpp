// The admin listener (PRODUCT.md §5): GET|HEAD /metrics (Prometheus text
// 0.0.4), /healthz (the process runs) and /readyz (ready() says whether new
// traffic is welcome; 503 while draining).
//
// Plain HTTP/1.1 with keep-alive, no request bodies, an 8 KiB head, a 10 s
// deadline per read and per write, at most 64 connections at once (the
// excess is closed on accept). Meant for a private port (probes, scrapers):
// it never touches the proxy's workers, only metrics_registry::global().
#pragma once

#include "proxy/config/config.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace batchgate {

namespace detail {
struct admin_state;
}

class admin_server {
public:
    static constexpr std::size_t max_connections = 64;
    static constexpr std::size_t max_header_bytes = 8 * 1024;
    static constexpr std::chrono::seconds io_timeout{10};

    // Binds now (throws std::runtime_error "cannot listen on ADDR: reason");
    // serves on `context` once start() was called and the context runs.
    // `ready` is called on the context's thread for every GET /readyz.
    // `context` must outlive this object.
    admin_server(boost::asio::io_context& context, const host_port& address, std::function<bool()> ready);
    // Stops (see stop()); the remaining work winds down on the context.
    ~admin_server();
    admin_server(const admin_server&) = delete;
    admin_server& operator=(const admin_server&) = delete;

    // The bound address (port 0 resolved). Thread-safe.
    boost::asio::ip::tcp::endpoint local_endpoint() const;

    // Spawns the accept loop on the context. Call once.
    void start();
    // Thread-safe: closes the acceptor and every open admin connection (on
    // the context's thread). Once that ran, the admin server holds no work
    // on the context.
    void stop();

private:
    std::shared_ptr<detail::admin_state> state_;
};

}  // namespace batchgate
