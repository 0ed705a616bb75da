#include "proxy/backend/backend_connect.hpp"

#include "proxy/backend/backend_tls.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <string>

namespace batchgate {

namespace {
using tcp = asio::ip::tcp;
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);
}  // namespace

bool backend_connection_result::timed_out() const { return ec == beast::error::timeout; }

asio::awaitable<backend_connection_result> connect_to_backend(asio::any_io_executor executor,
                                                             const backend_config& cfg,
                                                             asio::ssl::context* tls,
                                                             const host_port& address) {
    backend_connection_result out;
    // One deadline for everything: a slow resolver or handshake cannot
    // stretch the wait past connect_timeout.
    const auto deadline = std::chrono::steady_clock::now() + cfg.connect_timeout;
    beast::tcp_stream stream(executor);
    stream.expires_after(cfg.connect_timeout);
    error_code parse_ec;
    const auto ip = asio::ip::make_address(address.host, parse_ec);
    if (!parse_ec) {
        std::tie(out.ec) = co_await stream.async_connect(tcp::endpoint(ip, address.port), as_result);
    } else {
        // The resolver has no timer of its own; the stream's expiry is a
        // point in time set above, so the connect after a slow resolution
        // gets only what is left of connect_timeout.
        tcp::resolver resolver(executor);
        auto [resolve_ec, results] = co_await resolver.async_resolve(address.host, std::to_string(address.port), as_result);
        if (resolve_ec) {
            out.ec = resolve_ec;
        } else {
            tcp::endpoint ignored;
            std::tie(out.ec, ignored) = co_await stream.async_connect(results, as_result);
        }
    }
    if (out.ec) co_return out;
    stream.expires_never();
    error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
    if (cfg.protocol == backend_protocol::https || cfg.protocol == backend_protocol::h2) {
        auto handshake = co_await backend_tls_handshake(stream, *tls, cfg, address, deadline);
        out.ec = handshake.ec;
        if (!out.ec) out.stream.emplace(std::move(*handshake.stream));
        co_return out;
    }
    out.stream.emplace(std::move(stream));
    co_return out;
}

}  // namespace batchgate
