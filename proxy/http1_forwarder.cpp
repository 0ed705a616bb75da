#include "proxy/passthrough.hpp"

#include "proxy/http1_relay.hpp"
#include "proxy/http_semantics.hpp"
#include "proxy/problem.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>

#include <optional>

namespace batchgate {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool response_has_no_body(http::verb request_method, unsigned status) {
    return request_method == http::verb::head || (status >= 100 && status < 200) || status == 204 ||
           status == 304;
}

std::string ms(duration d) { return std::to_string(d.count()) + " ms"; }

enum class head_failure { none, io, switching_protocols, too_many_interim };

struct head_status {
    head_failure failure = head_failure::none;
    error_code ec;
    bool nothing_received = false;  // the backend closed before sending a byte
};

// Reads the final response head, consuming 1xx interim answers: a client of
// batchgate never sees a backend's 100 or 103, and 101 is refused because
// batchgate does not tunnel upgraded connections.
asio::awaitable<head_status> read_response_head(byte_stream& stream, beast::flat_buffer& buffer,
                                                std::optional<http::response_parser<http::buffer_body>>& parser,
                                                bool head_request, const backend_config& backend) {
    head_status st;
    for (int interim = 0;; ++interim) {
        if (interim > max_interim_responses) {
            st.failure = head_failure::too_many_interim;
            co_return st;
        }
        parser.emplace();
        parser->header_limit(static_cast<std::uint32_t>(backend.max_header_bytes));
        parser->body_limit(boost::none);
        if (head_request) parser->skip(true);
        stream.expires_after(backend.timeout);
        auto [ec, n] = co_await http::async_read_header(stream, buffer, *parser, use_tuple);
        if (ec) {
            st.failure = head_failure::io;
            st.ec = ec;
            st.nothing_received = interim == 0 && !parser->got_some() && is_connection_loss(ec);
            co_return st;
        }
        const unsigned code = parser->get().result_int();
        if (code == 101) {
            st.failure = head_failure::switching_protocols;
            co_return st;
        }
        if (code >= 200) co_return st;
    }
}

}  // namespace

asio::awaitable<bool> send_100_continue(beast::tcp_stream& client, duration send_timeout) {
    static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
    client.expires_after(send_timeout);
    auto [ec, n] = co_await asio::async_write(client, asio::buffer(continue_line), use_tuple);
    co_return !ec;
}

asio::awaitable<exchange_summary> answer_problem(beast::tcp_stream& client, bool body_pending,
                                                 unsigned version, bool keep_alive, http::status status,
                                                 std::string_view detail, duration send_timeout) {
    exchange_summary summary;
    summary.keep_alive = keep_alive && !body_pending;
    summary.status = static_cast<unsigned>(status);
    auto res = make_problem(status, detail, version, summary.keep_alive);
    summary.response_bytes = res.body().size();
    client.expires_after(send_timeout);
    auto [ec, n] = co_await http::async_write(client, res, use_tuple);
    if (ec) summary.keep_alive = false;
    co_return summary;
}

namespace {

// Why the exchange could not produce a backend answer: becomes a problem+json.
struct exchange_failure {
    http::status status = http::status::bad_gateway;
    std::string detail;
    bool client_gone = false;  // nothing to answer: just close
};

// One pass-through exchange. Phases: route, then send the request and read
// the backend's final head (retrying where that is safe), then forward the
// answer. Failures before the answer's head is out become problem+json
// answers; after it, only closing the connection can signal them.
// (Failures are carried as values and answered in one place: GCC 12
// mis-destroys temporaries created inside co_await expressions.)
class exchange {
public:
    exchange(beast::tcp_stream& client, beast::flat_buffer& client_buffer,
             http::request_parser<http::buffer_body>& request, request_scope& scope)
        : client_(client),
          client_buffer_(client_buffer),
          request_(request),
          req_(request.get()),
          scope_(scope),
          limits_(scope.routing->cfg->limits),
          keep_alive_(req_.keep_alive() && !*scope.draining) {}

    asio::awaitable<exchange_summary> run() {
        std::optional<exchange_failure> failure = route();
        if (!failure) failure = co_await obtain_response_head();
        if (failure) {
            if (failure->client_gone) {
                summary_.keep_alive = false;
                co_return summary_;
            }
            auto answered = co_await answer_problem(client_, !request_.is_done(), req_.version(), keep_alive_,
                                                    failure->status, failure->detail, limits_.send_timeout);
            answered.backend = summary_.backend;
            answered.request_bytes = summary_.request_bytes;
            co_return answered;
        }
        co_await forward_response();
        co_return summary_;
    }

private:
    std::optional<exchange_failure> route() {
        normalized_target target;
        if (auto e = normalize_target(req_.target(), target); e != target_error::none)
            return exchange_failure{http::status::bad_request, std::string(describe(e))};
        if (!scope_.routing->router.match(target, match_))
            return exchange_failure{http::status::not_found, "no route for " + target.path};
        pool_ = scope_.routing->pools.at(match_.backend);
        summary_.backend = match_.backend;
        return std::nullopt;
    }

    exchange_failure backend_failure(http::status status, std::string what) const {
        auto& m = pool_->metrics();
        m.response(0);
        if (status == http::status::gateway_timeout) m.timeouts.fetch_add(1, std::memory_order_relaxed);
        if (status == http::status::service_unavailable) m.overloaded.fetch_add(1, std::memory_order_relaxed);
        return {status, "backend " + pool_->config().name + ": " + what};
    }

    asio::awaitable<std::optional<exchange_failure>> obtain_response_head() {
        const auto& backend = pool_->config();
        const bool replayable = is_idempotent(req_.method_string()) && request_.is_done();
        bool stale_retry_used = false;
        unsigned counted_attempt = 1;
        const auto started = std::chrono::steady_clock::now();
        for (unsigned attempt = 1;; ++attempt) {
            if (attempt != counted_attempt) {  // a stale-connection replay keeps its attempt number
                counted_attempt = attempt;
                pool_->metrics().retries.fetch_add(1, std::memory_order_relaxed);
            }
            const bool may_retry = replayable && attempt < backend.retries.attempts;
            auto got = co_await pool_->acquire();
            if (got.error != acquire_error::none) {
                if (got.error != acquire_error::queue_timeout && may_retry && backend.retries.on_connect_failure)
                    continue;
                if (got.error == acquire_error::queue_timeout)
                    co_return backend_failure(http::status::service_unavailable,
                                              "every connection busy for " + ms(backend.queue_timeout));
                if (got.error == acquire_error::connect_timeout)
                    co_return backend_failure(http::status::gateway_timeout,
                                              "no connection within " + ms(backend.connect_timeout));
                co_return backend_failure(http::status::bad_gateway, "cannot connect: " + got.cause.message());
            }
            conn_ = std::move(got.connection);

            if (auto failure = co_await send_continue_if_expected()) co_return failure;
            auto sent = co_await send_request();
            if (sent.failed == relay_side::read) co_return client_body_failure(sent.ec);
            if (sent.failed == relay_side::write) {
                const bool stale = conn_.reused() && !stale_retry_used;
                conn_.release(false);
                if (replayable && stale) {
                    stale_retry_used = true;
                    --attempt;  // a dead pooled connection is not a real attempt
                    continue;
                }
                if (may_retry && backend.retries.on_reset) continue;
                co_return backend_failure(http::status::bad_gateway,
                                          "connection lost while sending: " + sent.ec.message());
            }

            auto head = co_await read_response_head(conn_.stream(), backend_buffer_, response_,
                                                    req_.method() == http::verb::head, backend);
            if (head.failure == head_failure::none) {
                pool_->metrics().response(response_->get().result_int());
                pool_->metrics().latency.observe(std::chrono::steady_clock::now() - started);
                co_return std::nullopt;
            }
            const bool reused = conn_.reused();
            conn_.release(false);
            backend_buffer_.clear();
            if (head.failure == head_failure::switching_protocols)
                co_return backend_failure(http::status::bad_gateway,
                                          "answered 101 Switching Protocols; batchgate does not tunnel");
            if (head.failure == head_failure::too_many_interim)
                co_return backend_failure(http::status::bad_gateway, "sent only interim (1xx) answers");
            const bool timed_out = head.ec == beast::error::timeout;
            if (replayable && head.nothing_received && reused && !stale_retry_used) {
                stale_retry_used = true;
                --attempt;
                continue;
            }
            if (may_retry && (timed_out ? backend.retries.on_timeout : backend.retries.on_reset)) continue;
            if (timed_out)
                co_return backend_failure(http::status::gateway_timeout, "no response within " + ms(backend.timeout));
            co_return backend_failure(http::status::bad_gateway, "malformed or missing response: " + head.ec.message());
        }
    }

    // The client asked to hear 100 before sending its body; it hears it only
    // once a backend connection is ready, so a refusal costs it no upload.
    asio::awaitable<std::optional<exchange_failure>> send_continue_if_expected() {
        if (sent_continue_ || request_.is_done() || req_.version() < 11 ||
            !beast::iequals(req_[http::field::expect], "100-continue"))
            co_return std::nullopt;
        // (Awaited into a named local: GCC 12 miscompiles `if (!co_await …)` here.)
        const bool sent = co_await send_100_continue(client_, limits_.send_timeout);
        if (!sent) co_return exchange_failure{http::status::bad_request, {}, true};
        sent_continue_ = true;
        co_return std::nullopt;
    }

    asio::awaitable<relay_status> send_request() {
        http::request<http::buffer_body> out;
        out.method_string(req_.method_string());
        out.target(match_.target);
        out.version(11);
        build_forwarded_request_headers(req_, out, scope_.client, conn_.host_header());
        if (out.count("x-request-id") == 0) out.set("X-Request-Id", scope_.request_id);
        if (request_.chunked())
            out.chunked(true);
        else if (auto length = request_.content_length(); length && *length > 0)
            out.content_length(*length);
        http::request_serializer<http::buffer_body> serializer{out};
        auto sent = co_await relay_body(client_, client_buffer_, request_, limits_.read_timeout, conn_.stream(), out,
                                        serializer, pool_->config().timeout, scope_.relay_buffer);
        summary_.request_bytes = sent.bytes;
        co_return sent;
    }

    exchange_failure client_body_failure(const error_code& ec) {
        conn_.release(false);
        keep_alive_ = false;  // what is left on the wire cannot be parsed as a request
        auto& metrics = metrics_registry::global();
        if (ec == beast::error::timeout) {
            metrics.limit_breached(limit_kind::read_timeout);
            return {http::status::request_timeout, "request body stalled for " + ms(limits_.read_timeout)};
        }
        if (ec == http::error::body_limit) {
            metrics.limit_breached(limit_kind::body_bytes);
            return {http::status::payload_too_large, "request body larger than limits.max_body_bytes"};
        }
        if (is_connection_loss(ec)) return {http::status::bad_request, {}, true};
        return {http::status::bad_request, "malformed request body: " + ec.message()};
    }

    asio::awaitable<void> forward_response() {
        auto& from_backend = response_->get();
        http::response<http::buffer_body> out;
        out.result(from_backend.result_int());
        out.reason(from_backend.reason());
        out.version(req_.version() >= 11 ? 11 : 10);
        build_forwarded_response_headers(from_backend, out);
        const bool no_body = response_has_no_body(req_.method(), from_backend.result_int());
        if (no_body) {
            // HEAD and 304 keep the backend's Content-Length: it describes the representation.
            if (auto length = from_backend[http::field::content_length]; !length.empty())
                out.set(http::field::content_length, length);
        } else if (auto length = response_->content_length()) {
            out.content_length(*length);
        } else if (req_.version() >= 11) {
            out.chunked(true);
        } else {
            keep_alive_ = false;  // HTTP/1.0 client: the body ends when we close
        }
        keep_alive_ = keep_alive_ && !*scope_.draining;  // a drain may have begun meanwhile
        out.keep_alive(keep_alive_);
        summary_.status = from_backend.result_int();
        http::response_serializer<http::buffer_body> serializer{out};

        bool complete = true;
        if (no_body) {
            client_.expires_after(limits_.send_timeout);
            auto [ec, n] = co_await http::async_write_header(client_, serializer, use_tuple);
            complete = !ec;
        } else {
            auto relayed = co_await relay_body(conn_.stream(), backend_buffer_, *response_, pool_->config().timeout,
                                               client_, out, serializer, limits_.send_timeout, scope_.relay_buffer);
            summary_.response_bytes = relayed.bytes;
            // The head is out, so a failure now cannot become an error status:
            // closing without the last chunk tells the client the body is cut.
            complete = static_cast<bool>(relayed);
        }
        const bool backend_reusable =
            complete && response_->is_done() && response_->keep_alive() && backend_buffer_.size() == 0;
        conn_.release(backend_reusable);
        summary_.keep_alive = keep_alive_ && complete;
    }

    beast::tcp_stream& client_;
    beast::flat_buffer& client_buffer_;
    http::request_parser<http::buffer_body>& request_;
    http::request<http::buffer_body>& req_;
    request_scope& scope_;
    const limits_config& limits_;
    bool keep_alive_;
    bool sent_continue_ = false;
    route_match match_;
    std::shared_ptr<backend_pool> pool_;
    pooled_connection conn_;
    beast::flat_buffer backend_buffer_;
    std::optional<http::response_parser<http::buffer_body>> response_;
    exchange_summary summary_;
};

}  // namespace

asio::awaitable<exchange_summary> proxy_request(beast::tcp_stream& client, beast::flat_buffer& client_buffer,
                                                http::request_parser<http::buffer_body>& request,
                                                request_scope& scope) {
    exchange ex(client, client_buffer, request, scope);
    co_return co_await ex.run();
}

}  // namespace batchgate
