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

// Reads until the bytes either are the whole HTTP/2 preface or cannot be
// its start. Returns what was read (handed on to the session) or nullopt
// when the client left or stayed silent.
asio::awaitable<std::optional<std::string>> read_opening(beast::tcp_stream& stream, const limits_config& limits,
                                                         bool& is_h2) {
    std::string received;
    std::array<char, 4096> chunk;
    stream.expires_after(limits.idle_timeout);  // a connection may open and wait, like a keep-alive one
    for (;;) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(chunk), use_tuple);
        if (ec) co_return std::nullopt;
        received.append(chunk.data(), n);
        const auto compared = std::min(received.size(), h2_client_preface.size());
        if (received.compare(0, compared, h2_client_preface, 0, compared) != 0) {
            is_h2 = false;
            break;
        }
        if (received.size() >= h2_client_preface.size()) {
            is_h2 = true;
            break;
        }
        stream.expires_after(limits.header_timeout);  // a preface trickling in is a slow request head
    }
    stream.expires_never();
    co_return received;
}

}  // namespace

asio::awaitable<void> serve_client_connection(worker& w, asio::ip::tcp::socket socket, client_info client,
                                              std::shared_ptr<asio::ssl::context> tls) {
    const auto cfg = w.routing->cfg;
    if (tls) {
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
            co_await run_http1_session(w, std::move(stream), client, {});
        co_return;
    }
    beast::tcp_stream plain(std::move(socket));
    bool is_h2 = false;
    std::optional<std::string> received;
    {
        session_handle waiting{&plain, true, {}};  // silent so far: a drain may cut it
        worker::registration registered(w, &waiting);
        if (!w.draining) received = co_await read_opening(plain, cfg->limits, is_h2);
    }
    if (!received) co_return;
    if (is_h2)
        co_await run_h2_session(w, byte_stream(std::move(plain)), client, std::move(*received));
    else
        co_await run_http1_session(w, byte_stream(std::move(plain)), client, std::move(*received));
}

}  // namespace batchgate
