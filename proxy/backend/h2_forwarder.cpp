#include "proxy/backend/h2_forwarder.hpp"

#include "proxy/backend/h2_client.hpp"
#include "proxy/backend/response_head.hpp"
#include "proxy/backend/retry_budget.hpp"
#include "proxy/backend/retry_policy.hpp"
#include "proxy/core/http_semantics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <cstdio>
#include <vector>

namespace batchgate {

namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Request body bytes kept so that a stream the backend refused can be sent
// again. A body that outgrew this before the refusal came cannot be
// replayed (its start is gone) and the refusal is then a 502.
constexpr std::size_t max_replay_bytes = 64 * 1024;
// Request body bytes queued on the stream, not yet framed: past this we
// stop reading from the client until HTTP/2 flow control lets them out.
constexpr std::size_t max_queued_request_bytes = 64 * 1024;
// Read size when the client connection lends no relay buffer.
constexpr std::size_t own_buffer_bytes = 16 * 1024;

std::string ms(duration d) { return std::to_string(d.count()) + " ms"; }

std::string hex_code(std::uint32_t code) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%x", code);
    return text;
}

// One backend stream as seen by the forwarder. nghttp2 callbacks only record
// and cancel the timer the forwarder sleeps on. Response DATA stays here,
// unconsumed, until the sink took it: the stream window bounds it.
class stream_relay final : public h2_stream_observer {
public:
    explicit stream_relay(asio::any_io_executor ex) : timer_(std::move(ex)) {}

    unsigned status = 0;
    http::fields fields;           // the final head's regular fields
    bool head = false;             // a final (non-1xx) head arrived
    bool end_stream = false;       // the whole response arrived
    std::string pending;           // response body bytes not yet given to the sink
    bool closed = false;
    h2_stream_close close_info;
    bool malformed = false;
    bool switching_protocols = false;
    bool only_interim = false;

    bool client_gone = false;      // the client went away: stop waiting, reset the stream

    bool failed() const { return closed || malformed || only_interim || client_gone; }
    void abandon() {
        client_gone = true;
        signal();
    }

    // Sleeps until an event or `deadline`; false when the deadline passed.
    // Callers check their condition before calling: a signal given while
    // nobody sleeps is not remembered, the state it describes is.
    asio::awaitable<bool> wait(clock_type::time_point deadline) {
        timer_.expires_at(deadline);
        co_await timer_.async_wait(use_tuple);
        co_return clock_type::now() < deadline;
    }

    void on_header_block_begin() override { heads_.on_block_begin(); }

    void on_header(std::string_view name, std::string_view value) override {
        if (name == ":status") {
            const head_kind kind = heads_.on_status_text(value);
            if (kind == head_kind::final) status = heads_.final_status();
            if (ends_exchange(kind)) fail(kind);
            return;
        }
        if (!name.empty() && name.front() == ':') return;
        if (heads_.current() == head_kind::final) fields.insert(name, value);
        // interim fields (103 Link) and trailers are not forwarded, as on the HTTP/1.1 path
    }

    void on_header_block_end(bool ended) override {
        if (failed()) return;
        if (heads_.current() == head_kind::malformed) {  // a head without :status
            fail(head_kind::malformed);
            return;
        }
        if (heads_.current() == head_kind::final) head = true;
        if (ended && head) end_stream = true;
        signal();
    }

    std::size_t on_data(std::string_view chunk) override {
        if (!head) return chunk.size();  // nghttp2 refuses DATA before HEADERS; nothing to keep
        pending.append(chunk);
        signal();
        return 0;  // consumed once the sink took it
    }

    void on_end_stream() override {
        if (head) end_stream = true;
        signal();
    }
    void on_stream_error() override { fail(head_kind::malformed); }
    void on_closed(const h2_stream_close& how) override {
        closed = true;
        close_info = how;
        signal();
    }
    void on_send_progress() override { signal(); }

private:
    void signal() { timer_.cancel(); }
    void fail(head_kind why) {
        if (why == head_kind::too_many_interim) {
            only_interim = true;
        } else {
            // 101 is meaningless in HTTP/2 (RFC 9113 §8.6): malformed, and said so
            if (why == head_kind::switching_protocols) switching_protocols = true;
            malformed = true;
        }
        signal();
    }

    asio::steady_timer timer_;
    response_heads heads_;
};

// Frees the stream however an attempt ends: response bytes never handed on
// are consumed (else the connection window would shrink for good) and an
// unfinished stream is reset with CANCEL.
struct stream_lease {
    std::shared_ptr<h2_connection> session;
    std::int32_t id;
    stream_relay& relay;
    ~stream_lease() {
        session->consume(id, relay.pending.size());
        session->detach(id, h2_error_code::cancel);
    }
};

// How one attempt ended.
enum class step {
    answered,       // the head went to the client (the body may still have failed)
    refused,        // the backend never processed the stream
    reset,          // stream reset or connection lost after the backend may have acted
    timeout,        // no head within the backend's timeout
    stalled,        // the backend stopped reading the request body
    malformed,
    switching_protocols,
    only_interim,
    client_body,    // reading the client's body failed
    client_gone,    // the client went away while we waited on the backend
};

struct attempt_result {
    step kind = step::answered;
    h2_stream_close close_info;
    body_error client_error = body_error::none;
    std::string detail;
};

class h2_forward {
public:
    h2_forward(const forward_request& request, const route_match& match, h2_pool& pool,
               request_body_source& body, response_sink& sink, request_scope& scope)
        : request_(request),
          match_(match),
          pool_(pool),
          body_(body),
          sink_(sink),
          scope_(scope),
          backend_(pool.config()),
          metrics_(pool.metrics()) {
        summary_.backend = std::string(match.backend);
        read_buffer_ = scope.relay_buffer;
        if (read_buffer_.empty()) {
            own_buffer_.resize(own_buffer_bytes);
            read_buffer_ = own_buffer_;
        }
    }

    asio::awaitable<exchange_summary> run() {
        // (Failures are carried as values and answered in one place: GCC 12
        // mis-destroys temporaries created inside co_await expressions.)
        backend_failure failure;
        const auto watching = sink_.watch_client(client_watch_);
        const outcome how = co_await exchange(failure);
        switch (how) {
        case outcome::answered: break;
        case outcome::client_gone: return_client_gone(); break;
        case outcome::client_body: co_await answer_problem(failure.status, failure.detail); break;
        case outcome::backend:
            count_failure(failure.status);
            failure.detail = "backend " + backend_.name + ": " + failure.detail;
            co_await answer_problem(failure.status, failure.detail);
            break;
        }
        co_return summary_;
    }

private:
    enum class outcome { answered, client_gone, client_body, backend };
    struct backend_failure {
        http::status status = http::status::bad_gateway;
        std::string detail;
    };

    outcome backend_fails(backend_failure& out, http::status status, std::string detail) const {
        out.status = status;
        out.detail = std::move(detail);
        return outcome::backend;
    }

    // Tries until the backend's head reached the client, or a failure to
    // answer (in `failure`) remains.
    asio::awaitable<outcome> exchange(backend_failure& failure) {
        // Only a request that can be sent again as it was may be retried
        // after the backend could have acted on it.
        const bool replayable = is_idempotent(request_.method_text) && !request_.has_body;
        retry_progress progress;
        scoped_gauge in_flight(metrics_.in_flight);  // also what retries.budget is a share of
        std::size_t avoid = no_endpoint;  // a retry goes elsewhere when the backend has another endpoint
        started_ = clock_type::now();
        for (;;) {
            auto got = co_await pool_.acquire(avoid);
            avoid = endpoint_ = got.endpoint;
            if (got.error != exchange_error::none) {
                const attempt_event event = got.error == exchange_error::queue_timeout ? attempt_event::queue_timeout
                                            : got.error == exchange_error::connect_timeout
                                                ? attempt_event::connect_timeout
                                                : attempt_event::connect_failed;
                if (const bool again = co_await should_retry(event, replayable, progress); again) continue;
                if (event == attempt_event::queue_timeout)
                    co_return backend_fails(failure, http::status::service_unavailable,
                                            "every connection busy for " + ms(backend_.queue_timeout));
                if (event == attempt_event::connect_timeout)
                    co_return backend_fails(failure, http::status::gateway_timeout,
                                            "no connection within " + ms(backend_.connect_timeout));
                co_return backend_fails(failure, http::status::bad_gateway, "cannot connect: " + got.cause.message());
            }
            // The client hears 100 only once a backend is ready, so a refusal costs it no upload.
            if (request_.expects_continue && !sent_continue_ && !body_.done()) {
                const bool sent = co_await sink_.send_continue();
                if (!sent) co_return outcome::client_gone;
                sent_continue_ = true;
            }

            const attempt_result r = co_await attempt_once(got);
            switch (r.kind) {
            case step::answered: retrying_.reset(); co_return outcome::answered;
            case step::client_gone: co_return outcome::client_gone;
            case step::client_body: co_return client_body_failure(r, failure);
            case step::refused:
                if (const bool again = co_await should_retry(attempt_event::refused, replayable, progress,
                                                             !request_.has_body || replay_ok_);
                    again)
                    continue;
                if (request_.has_body && !replay_ok_)
                    co_return backend_fails(failure, http::status::bad_gateway,
                                            "stream refused after more than " + std::to_string(max_replay_bytes) +
                                                " bytes of the request body went out; it cannot be sent again");
                co_return backend_fails(failure, http::status::bad_gateway, "stream refused by the backend");
            case step::reset:
                if (const bool again = co_await should_retry(attempt_event::reset, replayable, progress); again) continue;
                if (r.close_info.connection_lost)
                    co_return backend_fails(failure, http::status::bad_gateway, "connection lost before a response");
                co_return backend_fails(failure, http::status::bad_gateway,
                                        "stream reset by the backend (HTTP/2 error " +
                                            hex_code(r.close_info.error_code) + ")");
            case step::timeout:
                if (const bool again = co_await should_retry(attempt_event::timeout, replayable, progress); again) continue;
                co_return backend_fails(failure, http::status::gateway_timeout,
                                        "no response within " + ms(backend_.timeout));
            case step::stalled:
                co_return backend_fails(failure, http::status::gateway_timeout,
                                        "request body not taken for " + ms(backend_.timeout));
            case step::malformed:
                co_return backend_fails(failure, http::status::bad_gateway, "malformed response");
            case step::switching_protocols:
                co_return backend_fails(failure, http::status::bad_gateway,
                                        "answered 101 Switching Protocols; batchgate does not tunnel");
            case step::only_interim:
                co_return backend_fails(failure, http::status::bad_gateway, "sent only interim (1xx) answers");
            }
        }
    }

    // Asks the retry policy; when it says again, waits its pause (the
    // backoff) first and counts a counted retry.
    asio::awaitable<bool> should_retry(attempt_event event, bool replayable, retry_progress& progress,
                                       bool body_held = true) {
        retrying_.reset();  // the attempt a held retry made is over
        note(event);
        const auto d = retry_pass_through(event, backend_.retries, replayable, body_held, progress);
        if (d.verdict != retry_verdict::retry) co_return false;
        if (d.counted) {
            retry_budget& budget = pool_.budget();
            if (!budget.try_start_retry()) {
                metrics_registry::global().limit_breached(limit_kind::retry_budget);
                co_return false;
            }
            retrying_.hold(budget);
        }
        if (d.counted) metrics_.retries.fetch_add(1, std::memory_order_relaxed);
        if (d.pause > std::chrono::steady_clock::duration::zero()) {
            asio::steady_timer pause(co_await asio::this_coro::executor, d.pause);
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        co_return true;
    }

    bool draining() const { return scope_.draining && *scope_.draining; }

    void return_client_gone() {
        summary_.keep_alive = false;
        summary_.request_bytes = body_bytes_;
    }

    // Counted like the HTTP/1.1 forwarder counts it.
    void count_failure(http::status status) {
        metrics_.response(0);
        if (status == http::status::gateway_timeout) metrics_.timeouts.fetch_add(1, std::memory_order_relaxed);
        if (status == http::status::service_unavailable) metrics_.overloaded.fetch_add(1, std::memory_order_relaxed);
    }

    asio::awaitable<void> answer_problem(http::status status, const std::string& detail) {
        summary_.status = static_cast<unsigned>(status);
        summary_.request_bytes = body_bytes_;
        const bool sent = co_await sink_.send_problem(status, detail);
        // An unread request body cannot be told apart from the next request.
        summary_.keep_alive = sent && body_.done() && !client_body_failed_ && !draining();
    }

    outcome client_body_failure(const attempt_result& r, backend_failure& out) {
        client_body_failed_ = true;
        auto& metrics = metrics_registry::global();
        switch (r.client_error) {
        case body_error::timeout:
            metrics.limit_breached(limit_kind::read_timeout);
            out = {http::status::request_timeout, "request body stalled"};
            if (scope_.routing) out.detail += " for " + ms(scope_.routing->cfg->limits.read_timeout);
            return outcome::client_body;
        case body_error::too_large:
            metrics.limit_breached(limit_kind::body_bytes);
            out = {http::status::payload_too_large, "request body larger than limits.max_body_bytes"};
            return outcome::client_body;
        case body_error::malformed:
            out = {http::status::bad_request, "malformed request body: " + r.detail};
            return outcome::client_body;
        case body_error::client_gone:
        case body_error::none: break;
        }
        return outcome::client_gone;
    }

    std::vector<h2_header> headers_for(const h2_pool::slot& got) const {
        http::fields fields;
        build_forwarded_request_headers(*request_.headers, fields, scope_.client, got.authority);
        // The client's id only when sane (request_id_for), else the generated one.
        if (!scope_.request_id.empty()) fields.set("X-Request-Id", scope_.request_id);
        auto out = to_h2_request_headers(request_.method_text, got.scheme, got.authority, match_.target, fields);
        if (request_.has_body && request_.content_length)
            out.push_back({"content-length", std::to_string(*request_.content_length)});
        return out;
    }

    asio::awaitable<attempt_result> attempt_once(h2_pool::slot& got) {
        // Nothing suspends from acquire() to the submit: the room it found is still there.
        auto executor = co_await asio::this_coro::executor;
        stream_relay relay(executor);
        const auto headers = headers_for(got);
        std::int32_t id = 0;
        if (request_.has_body)
            id = got.session->submit_request_streaming(headers, &relay);
        else
            id = got.session->submit_request(headers, {}, false, &relay);
        attempt_result result;
        if (id < 0) {  // the session stopped taking streams: nothing was sent
            result.kind = step::refused;
            co_return result;
        }
        stream_lease lease{got.session, id, relay};
        scoped_gauge open_stream(metrics_.h2_streams);
        // A client that leaves frees the stream at once (RST_STREAM CANCEL).
        cancel_scope::registration on_client_gone(client_watch_, [&relay] { relay.abandon(); });

        if (request_.has_body) {
            result = co_await send_body(*got.session, id, relay);
            if (result.kind != step::answered) co_return result;
        }

        const auto deadline = clock_type::now() + backend_.timeout;
        while (!relay.head && !relay.failed()) {
            const bool in_time = co_await relay.wait(deadline);
            if (!in_time && !relay.head && !relay.failed()) {
                result.kind = step::timeout;
                co_return result;
            }
        }
        if (!relay.head) {
            result.close_info = relay.close_info;
            if (relay.client_gone)
                result.kind = step::client_gone;
            else if (relay.switching_protocols)
                result.kind = step::switching_protocols;
            else if (relay.malformed)
                result.kind = step::malformed;
            else if (relay.only_interim)
                result.kind = step::only_interim;
            else
                result.kind = relay.close_info.refused ? step::refused : step::reset;
            co_return result;
        }
        metrics_.response(relay.status);
        note(attempt_event::answered, relay.status);
        metrics_.latency.observe(clock_type::now() - started_);
        co_await forward_response(*got.session, id, relay);
        result.kind = step::answered;
        co_return result;
    }

    // Streams the request body into the stream: what an earlier, refused
    // attempt already read first, then the client's bytes as flow control
    // lets them out. Stops early when the backend ended or reset the stream
    // (its answer, if any, is then read as usual).
    asio::awaitable<attempt_result> send_body(h2_connection& session, std::int32_t id, stream_relay& relay) {
        attempt_result result;
        bool ended = body_.done();
        if (!replay_.empty() || ended) {
            if (!session.send_data(id, replay_, ended)) co_return result;
        }
        while (!ended) {
            const auto deadline = clock_type::now() + backend_.timeout;
            while (session.outgoing_buffered(id) >= max_queued_request_bytes && !relay.failed() &&
                   !relay.end_stream) {
                const bool in_time = co_await relay.wait(deadline);
                if (!in_time && session.outgoing_buffered(id) >= max_queued_request_bytes) {
                    result.kind = step::stalled;
                    co_return result;
                }
            }
            if (relay.failed() || relay.end_stream) co_return result;  // nothing more is wanted
            const body_read got = co_await body_.read(read_buffer_);
            if (got.error != body_error::none) {
                result.kind = step::client_body;
                result.client_error = got.error;
                result.detail = got.detail;
                co_return result;
            }
            const std::string_view bytes(read_buffer_.data(), got.bytes);
            body_bytes_ += got.bytes;
            keep_for_replay(bytes);
            ended = got.done;
            if (!session.send_data(id, bytes, ended)) co_return result;  // the stream is gone: its end says why
        }
        co_return result;
    }

    void keep_for_replay(std::string_view bytes) {
        if (!replay_ok_) return;
        if (replay_.size() + bytes.size() > max_replay_bytes) {
            replay_ok_ = false;
            std::string().swap(replay_);
            return;
        }
        replay_.append(bytes);
    }

    // The head is the backend's: from here on a failure can only cut the
    // response short (sink.abort()).
    asio::awaitable<void> forward_response(h2_connection& session, std::int32_t id, stream_relay& relay) {
        response_head head;
        head.status = relay.status;
        build_forwarded_response_headers(relay.fields, head.headers);
        head.no_body = request_.method == http::verb::head || relay.status == 204 || relay.status == 304;
        if (auto length = relay.fields[http::field::content_length]; !length.empty()) {
            std::uint64_t n = 0;
            auto [p, ec] = std::from_chars(length.data(), length.data() + length.size(), n);
            if (ec == std::errc() && p == length.data() + length.size()) head.content_length = n;
        }
        summary_.status = relay.status;
        summary_.request_bytes = body_bytes_;
        const bool no_body = head.no_body;
        const bool head_sent = co_await sink_.send_head(std::move(head));
        if (!head_sent) {
            summary_.keep_alive = false;
            co_return;
        }
        bool complete = no_body;
        while (!complete) {
            if (!relay.pending.empty()) {
                std::string chunk;
                chunk.swap(relay.pending);
                const bool last = relay.end_stream;
                const bool sent = co_await sink_.send_data(chunk, last);
                // The window reopens at the pace the client takes the bytes.
                session.consume(id, chunk.size());
                summary_.response_bytes += chunk.size();
                if (!sent) break;
                complete = last;
                continue;
            }
            if (relay.end_stream) {
                complete = co_await sink_.send_data({}, true);
                break;
            }
            if (relay.failed()) {
                sink_.abort();
                break;
            }
            const bool in_time = co_await relay.wait(clock_type::now() + backend_.timeout);
            if (!in_time && relay.pending.empty() && !relay.end_stream && !relay.failed()) {
                metrics_.timeouts.fetch_add(1, std::memory_order_relaxed);
                sink_.abort();
                break;
            }
        }
        summary_.keep_alive = complete && body_.done() && !draining();
    }

    const forward_request& request_;
    const route_match& match_;
    h2_pool& pool_;
    request_body_source& body_;
    response_sink& sink_;
    request_scope& scope_;
    const backend_config& backend_;
    backend_metrics& metrics_;
    exchange_summary summary_;
    std::span<char> read_buffer_;
    std::vector<char> own_buffer_;
    std::string replay_;     // the request body read so far, while it fits max_replay_bytes
    bool replay_ok_ = true;  // replay_ holds every body byte read so far
    std::uint64_t body_bytes_ = 0;
    bool sent_continue_ = false;
    bool client_body_failed_ = false;
    clock_type::time_point started_;
    budgeted_retry retrying_;  // the retry in flight, if any, against retries.budget
    std::size_t endpoint_ = no_endpoint;  // where the current attempt went

    // What the attempt showed about its endpoint (outlier ejection).
    void note(attempt_event event, unsigned status = 0) {
        pool_.health().observe(endpoint_, attempt_report{event, status, {}}, pool_.config().outlier,
                                std::chrono::steady_clock::now());
    }
    cancel_scope client_watch_;  // cancelled by the sink when the client goes away
};

}  // namespace

asio::awaitable<exchange_summary> forward_over_h2(const forward_request& request, const route_match& match,
                                                  h2_pool& pool, request_body_source& body,
                                                  response_sink& sink, request_scope& scope) {
    h2_forward forward(request, match, pool, body, sink, scope);
    co_return co_await forward.run();
}

asio::awaitable<exchange_summary> h2_pool::forward(const forward_request& request, const route_match& match,
                                              request_body_source& body, response_sink& sink, request_scope& scope) {
    return forward_over_h2(request, match, *this, body, sink, scope);
}

}  // namespace batchgate
