#include "proxy/frontend/client_connection.hpp"

#include "proxy/core/metrics.hpp"
#include "proxy/frontend/h2_frontend.hpp"
#include "proxy/frontend/http1_frontend.hpp"
#include "proxy/frontend/tls_context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace batchgate {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// The TLS listener's connections: handshake, then the protocol ALPN chose.
// Its own coroutine so that a cleartext connection's frame holds no TLS
// stream.
asio::awaitable<void> serve_tls_connection(worker& w, asio::ip::tcp::socket socket, client_info client,
                                           std::shared_ptr<asio::ssl::context> tls) {
    const auto cfg = w.routing->cfg;
    client = client_info(client.address(), true, false);
    byte_stream::tls_stream handshaking(beast::tcp_stream(std::move(socket)), *tls);
    beast::get_lowest_layer(handshaking).expires_after(cfg->limits.header_timeout);
    auto [ec] = co_await handshaking.async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) {
        metrics_registry::global().limit_breached(limit_kind::tls_handshake);
        co_return;
    }
    beast::get_lowest_layer(handshaking).expires_never();
    byte_stream stream(std::move(handshaking));
    if (negotiated_alpn(stream) == "h2")
        co_await run_h2_session(w, std::move(stream), client, {});
    else
        co_await run_http1_session(w, std::move(stream), std::move(client));
}

}  // namespace

// Not a coroutine: it picks the session coroutine, so a cleartext
// connection has one frame less while it lives.
asio::awaitable<void> serve_client_connection(worker& w, asio::ip::tcp::socket socket, client_info client,
                                              std::shared_ptr<asio::ssl::context> tls) {
    if (tls) return serve_tls_connection(w, std::move(socket), std::move(client), std::move(tls));
    return run_cleartext_session(w, std::move(socket), std::move(client));
}

}  // namespace batchgate
