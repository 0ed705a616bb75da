#include "proxy/batch_handler.hpp"

#include "proxy/batch_parser.hpp"
#include "proxy/fanout.hpp"
#include "proxy/http1_relay.hpp"
#include "proxy/metrics.hpp"
#include "proxy/multistatus.hpp"
#include "proxy/problem.hpp"
#include "proxy/read_deadline.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>

#include <cerrno>
#include <charconv>
#include <sys/socket.h>

namespace batchgate {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using tcp = asio::ip::tcp;

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string media_type(std::string_view content_type) {
    return lower(trim(content_type.substr(0, content_type.find(';'))));
}

// q-value of one Accept member ("type/sub;q=0.5;..."), 1 when absent, 0 on nonsense.
double quality(std::string_view params) {
    while (!params.empty()) {
        auto semi = params.find(';');
        auto param = trim(params.substr(0, semi));
        params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
        if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=') continue;
        double q = 0;
        auto v = param.substr(2);
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), q);
        return ec == std::errc{} ? q : 0;
    }
    return 1;
}

// JSON only when the client prefers it to XML (PRODUCT.md §2.1).
multistatus_format negotiate(std::string_view accept) {
    double json = 0, xml = 0, any = 0;
    while (!accept.empty()) {
        auto comma = accept.find(',');
        auto member = accept.substr(0, comma);
        accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
        auto semi = member.find(';');
        auto type = lower(trim(member.substr(0, semi)));
        double q = semi == std::string_view::npos ? 1 : quality(member.substr(semi + 1));
        if (type == "application/json")
            json = std::max(json, q);
        else if (type == "application/xml" || type == "text/xml")
            xml = std::max(xml, q);
        else if (type == "*/*" || type == "application/*")
            any = std::max(any, q);
    }
    if (xml == 0) xml = any;
    return json > xml ? multistatus_format::json : multistatus_format::xml;
}

bool prefers_minimal(const http::fields& headers) {
    for (auto range = headers.equal_range(http::field::prefer); range.first != range.second; ++range.first) {
        std::string_view value = range.first->value();
        while (!value.empty()) {
            auto comma = value.find(',');
            auto preference = trim(value.substr(0, value.find_first_of(",;")));
            if (beast::iequals(preference, "return=minimal")) return true;
            value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        }
    }
    return false;
}

// The batch request's own headers that every item inherits (batch.forward_headers).
http::fields inherited_headers(const http::fields& request, const batch_config& batch) {
    http::fields out;
    for (const auto& name : batch.forward_headers)
        for (auto range = request.equal_range(name); range.first != range.second; ++range.first)
            out.insert(name, range.first->value());
    return out;
}

// Watches the client socket while the batch runs: the client closing its
// side cancels every outstanding item. Bytes from a pipelining client mean
// it is alive; watching stops there. The callback may outlive the batch, so
// it holds its state by shared_ptr and does nothing once `active` is false.
class disconnect_watch {
public:
    disconnect_watch(tcp::socket& socket, cancel_scope& scope) : state_(std::make_shared<state>()) {
        state_->socket = &socket;
        state_->scope = &scope;
        socket.async_wait(tcp::socket::wait_read, [st = state_](const error_code& ec) {
            if (ec || !st->active) return;
            char byte;
            auto n = ::recv(st->socket->native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                st->scope->cancel(cancel_reason::client_gone);
        });
    }
    ~disconnect_watch() {
        state_->active = false;
        error_code ignored;
        state_->socket->cancel(ignored);
    }
    disconnect_watch(const disconnect_watch&) = delete;
    disconnect_watch& operator=(const disconnect_watch&) = delete;

private:
    struct state {
        tcp::socket* socket = nullptr;
        cancel_scope* scope = nullptr;
        bool active = true;
    };
    std::shared_ptr<state> state_;
};

struct refusal {
    http::status status;
    std::string detail;
    problem_position where{};
};

class batch_exchange {
public:
    batch_exchange(beast::tcp_stream& client, beast::flat_buffer& client_buffer,
                   http::request_parser<http::buffer_body>& request, request_scope& scope)
        : client_(client),
          client_buffer_(client_buffer),
          request_(request),
          req_(request.get()),
          scope_(scope),
          cfg_(*scope.routing->cfg),
          keep_alive_(req_.keep_alive() && !*scope.draining) {}

    asio::awaitable<exchange_summary> run() {
        summary_.backend = "batch";
        std::optional<batch_request> batch;
        auto refused = check_request();
        if (!refused) refused = co_await read_body();
        if (!refused) {
            refused = parse(batch);
            body_.clear();
            body_.shrink_to_fit();
        }
        if (refused) {
            co_await send_refusal(*refused);
            co_return summary_;
        }
        co_await stream_multistatus(*batch);
        co_return summary_;
    }

private:
    std::optional<refusal> check_request() {
        if (req_.method() != http::verb::post) return refusal{http::status::method_not_allowed, "the batch endpoint takes POST only"};
        if (auto length = request_.content_length(); length && *length > cfg_.batch.max_body_bytes) {
            metrics_registry::global().limit_breached(limit_kind::batch_body_bytes);
            return refusal{http::status::payload_too_large,
                           "batch body of " + std::to_string(*length) + " bytes is over batch.max_body_bytes (" +
                               std::to_string(cfg_.batch.max_body_bytes) + ")"};
        }
        auto type = media_type(req_[http::field::content_type]);
        if (type == "application/json")
            json_ = true;
        else if (type == "application/xml" || type == "text/xml")
            json_ = false;
        else
            return refusal{http::status::unsupported_media_type,
                           "batch Content-Type must be application/json, application/xml or text/xml"};
        return std::nullopt;
    }

    asio::awaitable<std::optional<refusal>> read_body() {
        if (request_.is_done()) co_return std::nullopt;
        if (beast::iequals(req_[http::field::expect], "100-continue") && req_.version() >= 11) {
            const bool sent = co_await send_100_continue(client_, cfg_.limits.send_timeout);
            if (!sent) co_return refusal{http::status::bad_request, "client went away"};
        }
        request_.body_limit(cfg_.batch.max_body_bytes);
        const std::span<char> chunk = scope_.relay_buffer;
        read_deadline deadline(client_.socket());
        while (!request_.is_done()) {
            req_.body().data = chunk.data();
            req_.body().size = chunk.size();
            deadline.arm(cfg_.limits.read_timeout);
            auto [ec, n] = co_await http::async_read(client_, client_buffer_, request_, use_tuple);
            if (deadline.disarm()) ec = beast::error::timeout;
            if (ec == http::error::need_buffer) ec = {};
            body_.append(chunk.data(), chunk.size() - req_.body().size);
            if (!ec) continue;
            keep_alive_ = false;
            if (ec == http::error::body_limit) {
                metrics_registry::global().limit_breached(limit_kind::batch_body_bytes);
                co_return refusal{http::status::payload_too_large,
                                  "batch body over batch.max_body_bytes (" + std::to_string(cfg_.batch.max_body_bytes) + ")"};
            }
            if (ec == beast::error::timeout)
                co_return refusal{http::status::request_timeout, "batch body stalled for limits.read_timeout"};
            co_return refusal{http::status::bad_request, "cannot read the batch body: " + ec.message()};
        }
        summary_.request_bytes = body_.size();
        co_return std::nullopt;
    }

    std::optional<refusal> parse(std::optional<batch_request>& batch) {
        batch_parse_limits limits;
        limits.max_items = cfg_.batch.max_items;
        limits.max_json_depth = cfg_.batch.max_json_depth;
        limits.max_xml_depth = cfg_.batch.max_xml_depth;
        limits.max_xml_attributes = cfg_.batch.max_xml_attributes;
        auto parsed = json_ ? parse_json_batch(body_, limits) : parse_xml_batch(body_, limits);
        if (parsed.error) {
            const auto& e = *parsed.error;
            if (e.status == 413) metrics_registry::global().limit_breached(limit_kind::batch_items);
            return refusal{static_cast<http::status>(e.status), e.message, {e.line, e.column}};
        }
        batch = std::move(parsed.batch);
        metrics_registry::global().batch_items(batch->items.size());
        return std::nullopt;
    }

    asio::awaitable<void> send_refusal(const refusal& r) {
        auto res = make_problem(r.status, r.detail, req_.version(), keep_alive_ && request_.is_done(), r.where);
        if (r.status == http::status::method_not_allowed) res.set(http::field::allow, "POST");
        summary_.status = static_cast<unsigned>(r.status);
        summary_.response_bytes = res.body().size();
        summary_.keep_alive = res.keep_alive();
        client_.expires_after(cfg_.limits.send_timeout);
        auto [ec, n] = co_await http::async_write(client_, res, use_tuple);
        if (ec) summary_.keep_alive = false;
    }

    // One chunk on HTTP/1.1; raw bytes (close-delimited) for HTTP/1.0.
    asio::awaitable<bool> write_piece(const std::string& bytes) {
        if (bytes.empty()) co_return true;
        client_.expires_after(cfg_.limits.send_timeout);
        error_code ec;
        if (chunked_)
            std::tie(ec, std::ignore) = co_await asio::async_write(client_, http::make_chunk(asio::buffer(bytes)), use_tuple);
        else
            std::tie(ec, std::ignore) = co_await asio::async_write(client_, asio::buffer(bytes), use_tuple);
        summary_.response_bytes += bytes.size();
        co_return !ec;
    }

    asio::awaitable<void> stream_multistatus(batch_request& batch) {
        multistatus_writer writer(negotiate(req_[http::field::accept]), prefers_minimal(req_));
        chunked_ = req_.version() >= 11;
        if (!chunked_) keep_alive_ = false;
        keep_alive_ = keep_alive_ && !*scope_.draining;

        http::response<http::empty_body> head{http::status::multi_status, req_.version() >= 11 ? 11u : 10u};
        head.set(http::field::content_type, writer.content_type());
        head.set(http::field::cache_control, "no-store");
        if (chunked_) head.chunked(true);
        head.keep_alive(keep_alive_);
        summary_.status = 207;
        http::response_serializer<http::empty_body> serializer{head};
        client_.expires_after(cfg_.limits.send_timeout);
        auto [ec, n] = co_await http::async_write_header(client_, serializer, use_tuple);
        // (No temporaries inside conditional co_await expressions: GCC 12 mis-destroys them.)
        bool client_ok = !ec;
        if (client_ok) {
            const auto begin = writer.begin();
            client_ok = co_await write_piece(begin);
        }

        scoped_gauge running(metrics_registry::global().batches_in_flight);
        cancel_scope cancel;
        if (!client_ok) cancel.cancel(cancel_reason::client_gone);
        fanout_stats stats;
        {
            disconnect_watch watch(client_.socket(), cancel);
            std::string pending;
            result_sink sink = [&](std::vector<item_result>& results) -> asio::awaitable<bool> {
                pending.clear();
                for (const auto& r : results) pending += writer.entry(r);
                co_return co_await write_piece(pending);
            };
            fanout_input input{batch, *scope_.routing, scope_.client, inherited_headers(req_, cfg_.batch),
                               std::chrono::steady_clock::now() + cfg_.batch.deadline};
            stats = co_await run_fanout(std::move(input), cancel, std::move(sink));
        }
        client_ok = client_ok && !stats.cancelled;
        if (client_ok) {
            const auto end = writer.end();
            client_ok = co_await write_piece(end);
        }
        if (client_ok && chunked_) {
            client_.expires_after(cfg_.limits.send_timeout);
            auto [lec, ln] = co_await asio::async_write(client_, http::make_chunk_last(), use_tuple);
            client_ok = !lec;
        }
        summary_.keep_alive = keep_alive_ && client_ok;
        if (!client_ok) summary_.status = 0;  // the client never got a whole answer
    }

    beast::tcp_stream& client_;
    beast::flat_buffer& client_buffer_;
    http::request_parser<http::buffer_body>& request_;
    http::request<http::buffer_body>& req_;
    request_scope& scope_;
    const config& cfg_;
    bool keep_alive_;
    bool json_ = true;
    bool chunked_ = true;
    std::string body_;
    exchange_summary summary_;
};

}  // namespace

bool is_batch_target(std::string_view target, const config& cfg) {
    return target.substr(0, target.find('?')) == cfg.batch.path;
}

asio::awaitable<exchange_summary> handle_batch(beast::tcp_stream& client, beast::flat_buffer& client_buffer,
                                               http::request_parser<http::buffer_body>& request,
                                               request_scope& scope) {
    batch_exchange exchange(client, client_buffer, request, scope);
    co_return co_await exchange.run();
}

}  // namespace batchgate
