#include "proxy/backend/http1_forwarder.hpp"

#include "proxy/backend/http1_response_head.hpp"
#include "proxy/backend/retry_budget.hpp"
#include "proxy/backend/retry_policy.hpp"
#include "proxy/core/http_semantics.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <charconv>
#include <optional>

namespace batchgate {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool response_has_no_body(http::verb request_method, unsigned status) {
    return request_method == http::verb::head || (status >= 100 && status < 200) || status == 204 ||
           status == 304;
}

std::string ms(duration d) { return std::to_string(d.count()) + " ms"; }

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
    exchange(const forward_request& request, const route_match& match, http1_pool& pool,
             request_body_source& body, response_sink& sink, request_scope& scope)
        : req_(request), match_(match), pool_(&pool), body_(body), sink_(sink), scope_(scope),
          limits_(scope.routing->cfg->limits) {
        summary_.backend = std::string(match.backend);
    }

    asio::awaitable<exchange_summary> run() {
        std::optional<exchange_failure> failure = co_await obtain_response_head();
        if (failure) {
            if (failure->client_gone) co_return summary_;
            const bool sent = co_await sink_.send_problem(failure->status, failure->detail);
            summary_.status = sent ? static_cast<unsigned>(failure->status) : 0;
            co_return summary_;
        }
        co_await forward_response();
        co_return summary_;
    }

private:
    exchange_failure backend_failure(http::status status, std::string what) const {
        auto& m = pool_->metrics();
        m.response(0);
        if (status == http::status::gateway_timeout) m.timeouts.fetch_add(1, std::memory_order_relaxed);
        if (status == http::status::service_unavailable) m.overloaded.fetch_add(1, std::memory_order_relaxed);
        return {status, "backend " + pool_->config().name + ": " + what};
    }

    asio::awaitable<std::optional<exchange_failure>> obtain_response_head() {
        const auto& backend = pool_->config();
        // Only a request without a body (or whose body is already all read,
        // i.e. empty) can be sent again as it was.
        const bool replayable = is_idempotent(req_.method_text) && body_.done();
        retry_progress progress;
        scoped_gauge in_flight(pool_->metrics().in_flight);  // also what retries.budget is a share of
        std::size_t avoid = no_endpoint;  // a retry goes elsewhere when the backend has another endpoint
        const auto started = std::chrono::steady_clock::now();
        for (;;) {
            acquire_result got;
            if (auto idle = pool_->try_acquire_idle(avoid)) {
                got = std::move(*idle);  // the usual case: no coroutine frame for acquire()
            } else {
                auto acquired = co_await pool_->acquire(avoid);
                got = std::move(acquired);
            }
            avoid = endpoint_ = got.endpoint;
            if (got.error != acquire_error::none) {
                const attempt_event event = got.error == acquire_error::queue_timeout ? attempt_event::queue_timeout
                                            : got.error == acquire_error::connect_timeout
                                                ? attempt_event::connect_timeout
                                                : attempt_event::connect_failed;
                if (const bool again = co_await should_retry(event, replayable, progress); again) continue;
                if (event == attempt_event::queue_timeout)
                    co_return backend_failure(http::status::service_unavailable,
                                              "every connection busy for " + ms(backend.queue_timeout));
                if (event == attempt_event::connect_timeout)
                    co_return backend_failure(http::status::gateway_timeout,
                                              "no connection within " + ms(backend.connect_timeout));
                co_return backend_failure(http::status::bad_gateway, "cannot connect: " + got.cause.message());
            }
            conn_ = std::move(got.connection);

            if (auto failure = co_await send_continue_if_expected()) co_return failure;
            auto sent = co_await send_request();
            if (sent.client_error != body_error::none) co_return client_body_failure(sent);
            if (sent.ec) {
                // Writing to a reused keep-alive connection failed: the
                // backend had closed it (stale), else the connection broke.
                const attempt_event event = conn_.reused() ? attempt_event::stale_connection : attempt_event::reset;
                conn_.release(false);
                if (const bool again = co_await should_retry(event, replayable, progress); again) continue;
                co_return backend_failure(http::status::bad_gateway,
                                          "connection lost while sending: " + sent.ec.message());
            }

            // One budget for every head. A request sent in one write armed
            // it already, just before (each arm costs a timer re-arm on both
            // of Beast's timers); a streamed body's last write did not.
            if (sent.writes > 1) conn_.stream().expires_after(backend.timeout);
            const http1_head_limits limits{static_cast<std::uint32_t>(backend.max_header_bytes), boost::none,
                                           req_.method == http::verb::head};
            const auto head = co_await read_http1_final_head(conn_.stream(), backend_buffer_, response_, limits);
            if (!head.ec && head.kind == head_kind::final) {
                pool_->metrics().response(response_->get().result_int());
                note(attempt_event::answered, response_->get().result_int());
                pool_->metrics().latency.observe(std::chrono::steady_clock::now() - started);
                retrying_.reset();
                co_return std::nullopt;
            }
            const bool reused = conn_.reused();
            conn_.release(false);
            backend_buffer_.clear();
            if (!head.ec) {
                if (head.kind == head_kind::switching_protocols)
                    co_return backend_failure(http::status::bad_gateway,
                                              "answered 101 Switching Protocols; batchgate does not tunnel");
                if (head.kind == head_kind::too_many_interim)
                    co_return backend_failure(http::status::bad_gateway, "sent only interim (1xx) answers");
                co_return backend_failure(http::status::bad_gateway, "malformed response status");
            }
            const bool timed_out = head.ec == beast::error::timeout;
            const attempt_event event = timed_out                             ? attempt_event::timeout
                                        : head.nothing_received && reused ? attempt_event::stale_connection
                                                                          : attempt_event::reset;
            if (const bool again = co_await should_retry(event, replayable, progress); again) continue;
            if (timed_out)
                co_return backend_failure(http::status::gateway_timeout, "no response within " + ms(backend.timeout));
            co_return backend_failure(http::status::bad_gateway, "malformed or missing response: " + head.ec.message());
        }
    }

    // Asks the retry policy; when it says again, waits its pause (the
    // backoff) first and counts a counted retry.
    asio::awaitable<bool> should_retry(attempt_event event, bool replayable, retry_progress& progress) {
        retrying_.reset();  // the attempt a held retry made is over
        note(event);
        const auto d = retry_pass_through(event, pool_->config().retries, replayable, true, progress);
        if (d.verdict != retry_verdict::retry) co_return false;
        if (d.counted) {
            retry_budget& budget = pool_->budget();
            if (!budget.try_start_retry()) {
                metrics_registry::global().limit_breached(limit_kind::retry_budget);
                co_return false;
            }
            retrying_.hold(budget);
        }
        if (d.counted) pool_->metrics().retries.fetch_add(1, std::memory_order_relaxed);
        if (d.pause > std::chrono::steady_clock::duration::zero()) {
            asio::steady_timer pause(co_await asio::this_coro::executor, d.pause);
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        co_return true;
    }

    // The client asked to hear 100 before sending its body; it hears it only
    // once a backend connection is ready, so a refusal costs it no upload.
    asio::awaitable<std::optional<exchange_failure>> send_continue_if_expected() {
        if (sent_continue_ || body_.done() || !req_.expects_continue) co_return std::nullopt;
        // (Awaited into a named local: GCC 12 miscompiles `if (!co_await …)` here.)
        const bool sent = co_await sink_.send_continue();
        if (!sent) co_return exchange_failure{http::status::bad_request, {}, true};
        sent_continue_ = true;
        co_return std::nullopt;
    }

    struct send_status {
        error_code ec;  // writing to the backend failed
        unsigned writes = 0;  // each one armed the backend timeout
        body_error client_error = body_error::none;
        std::string detail;
    };

    // The request head and its body, pulled from the client side chunk by
    // chunk (one buffer, whatever the body's size). The head is serialized by
    // hand into the connection's own string and goes out with the first body
    // bytes in one write; a body of unknown length is sent chunked. (Beast's
    // serializer cost more than the rest of the exchange: its buffer-sequence
    // iterators ran on every byte range of every write.) Method, target and
    // values were checked where they entered: the client's parser, the route's
    // rewrite, request_id_for.
    asio::awaitable<send_status> send_request() {
        send_status status;
        auto& head = conn_.request_head();
        head.clear();
        head.append(req_.method_text).append(" ").append(match_.target).append(" HTTP/1.1\r\n");
        append_forwarded_request_headers(*req_.headers, head, scope_.client, conn_.host_header(), scope_.request_id);
        const bool body_follows = req_.has_body && !body_.done();
        bool chunked = false;
        if (req_.content_length && (*req_.content_length > 0 || body_follows)) {
            head.append("Content-Length: ").append(std::to_string(*req_.content_length)).append("\r\n");
        } else if (body_follows) {
            head.append("Transfer-Encoding: chunked\r\n");
            chunked = true;
        }
        head.append("\r\n");

        const std::span<char> chunk = scope_.relay_buffer;
        auto& backend_stream = conn_.stream();
        bool head_sent = false;
        bool body_done = body_.done();
        while (!head_sent || !body_done) {
            std::size_t got_bytes = 0;
            if (!body_done) {
                auto got = co_await body_.read(chunk);
                if (got.error != body_error::none) {
                    status.client_error = got.error;
                    status.detail = std::move(got.detail);
                    co_return status;
                }
                summary_.request_bytes += got.bytes;
                got_bytes = got.bytes;
                body_done = got.done;
            }
            // head? chunk-size line? bytes, chunk end? last chunk?
            std::array<char, 20> size_line{};
            std::size_t size_line_length = 0;
            if (chunked && got_bytes != 0) {
                auto r = std::to_chars(size_line.data(), size_line.data() + size_line.size() - 2, got_bytes, 16);
                *r.ptr++ = '\r';
                *r.ptr++ = '\n';
                size_line_length = static_cast<std::size_t>(r.ptr - size_line.data());
            }
            static constexpr std::string_view chunk_end = "\r\n";
            static constexpr std::string_view last_chunk = "0\r\n\r\n";
            const std::array<asio::const_buffer, 5> wire{
                head_sent ? asio::const_buffer() : asio::buffer(head),
                asio::buffer(size_line.data(), size_line_length),
                asio::buffer(chunk.data(), got_bytes),
                asio::buffer(chunk_end.data(), size_line_length != 0 ? chunk_end.size() : 0),
                asio::buffer(last_chunk.data(), chunked && body_done ? last_chunk.size() : 0),
            };
            head_sent = true;
            if (asio::buffer_size(wire) == 0) continue;  // an empty read: nothing to say yet
            backend_stream.expires_after(pool_->config().timeout);
            ++status.writes;
            auto [ec, n] = co_await asio::async_write(backend_stream, wire, use_tuple);
            if (ec) {
                status.ec = ec;
                co_return status;
            }
        }
        co_return status;
    }

    exchange_failure client_body_failure(const send_status& sent) {
        conn_.release(false);
        auto& metrics = metrics_registry::global();
        switch (sent.client_error) {
        case body_error::timeout:
            metrics.limit_breached(limit_kind::read_timeout);
            return {http::status::request_timeout, "request body stalled for " + ms(limits_.read_timeout)};
        case body_error::too_large:
            metrics.limit_breached(limit_kind::body_bytes);
            return {http::status::payload_too_large, "request body larger than limits.max_body_bytes"};
        case body_error::client_gone: return {http::status::bad_request, {}, true};
        default: return {http::status::bad_request, "malformed request body: " + sent.detail};
        }
    }

    asio::awaitable<void> forward_response() {
        auto& from_backend = response_->get();
        response_head head;
        head.status = from_backend.result_int();
        head.reason = from_backend.reason();
        build_forwarded_response_headers(from_backend, head.headers);
        head.no_body = response_has_no_body(req_.method, head.status);
        if (head.no_body) {
            // HEAD and 304 keep the backend's Content-Length: it describes the representation.
            auto length = from_backend[http::field::content_length];
            std::uint64_t n = 0;
            if (!length.empty() && std::from_chars(length.data(), length.data() + length.size(), n).ec == std::errc{})
                head.content_length = n;
        } else {
            if (auto length = response_->content_length()) head.content_length = *length;
        }
        summary_.status = head.status;
        const bool no_body = head.no_body;
        bool complete = co_await sink_.send_head(std::move(head));
        if (complete && !no_body) complete = co_await relay_response_body();
        if (!complete) {
            // The head may be out, so a failure now cannot become an error
            // status: the sink cuts the response short instead.
            sink_.abort();
        }
        const bool backend_reusable =
            complete && response_->is_done() && response_->keep_alive() && backend_buffer_.size() == 0;
        conn_.release(backend_reusable);
    }

    asio::awaitable<bool> relay_response_body() {
        const std::span<char> chunk = scope_.relay_buffer;
        auto& backend_stream = conn_.stream();
        auto& body = response_->get().body();
        bool last_sent = false;
        while (!response_->is_done()) {
            body.data = chunk.data();
            body.size = chunk.size();
            // Bytes already read with the head need no new budget: the head's
            // still runs, and parsing them waits for nothing.
            if (backend_buffer_.size() == 0) backend_stream.expires_after(pool_->config().timeout);
            auto [ec, n] = co_await http::async_read(backend_stream, backend_buffer_, *response_, use_tuple);
            if (ec == http::error::need_buffer) ec = {};
            if (ec) co_return false;
            const std::size_t got = chunk.size() - body.size;
            summary_.response_bytes += got;
            last_sent = response_->is_done();
            const bool sent = co_await sink_.send_data(std::span<const char>(chunk.data(), got), last_sent);
            if (!sent) co_return false;
        }
        backend_stream.expires_never();
        if (last_sent) co_return true;
        const bool sent = co_await sink_.send_data({}, true);
        co_return sent;
    }

    const forward_request& req_;
    const route_match& match_;
    http1_pool* pool_;
    request_body_source& body_;
    response_sink& sink_;
    request_scope& scope_;
    const limits_config& limits_;
    bool sent_continue_ = false;
    pooled_connection conn_;
    beast::flat_buffer backend_buffer_;
    std::optional<http::response_parser<http::buffer_body>> response_;
    exchange_summary summary_;
    budgeted_retry retrying_;  // the retry in flight, if any, against retries.budget
    std::size_t endpoint_ = no_endpoint;  // where the current attempt went

    // What the attempt showed about its endpoint (outlier ejection).
    void note(attempt_event event, unsigned status = 0) {
        pool_->health().observe(endpoint_, attempt_report{event, status, {}}, pool_->config().outlier,
                                std::chrono::steady_clock::now());
    }
};

}  // namespace

asio::awaitable<exchange_summary> forward_over_http1(const forward_request& request, const route_match& match,
                                                     http1_pool& pool, request_body_source& body,
                                                     response_sink& sink, request_scope& scope) {
    exchange ex(request, match, pool, body, sink, scope);
    co_return co_await ex.run();
}

asio::awaitable<exchange_summary> http1_pool::forward(const forward_request& request, const route_match& match,
                                              request_body_source& body, response_sink& sink, request_scope& scope) {
    return forward_over_http1(request, match, *this, body, sink, scope);
}

}  // namespace batchgate
