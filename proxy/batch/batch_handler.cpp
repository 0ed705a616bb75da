#include "proxy/batch/batch_handler.hpp"

#include "proxy/batch/batch_parser.hpp"
#include "proxy/batch/fanout.hpp"
#include "proxy/batch/multipart_batch.hpp"
#include "proxy/batch/multistatus.hpp"
#include "proxy/core/http_semantics.hpp"
#include "proxy/core/metrics.hpp"
#include "proxy/core/problem.hpp"

#include <boost/beast/core/string.hpp>

#include <charconv>

namespace batchgate {

namespace beast = boost::beast;

namespace {


std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string media_type(std::string_view content_type) {
    return lower(trim_ows(content_type.substr(0, content_type.find(';'))));
}

// q-value of one Accept member ("type/sub;q=0.5;..."), 1 when absent, 0 on nonsense.
double quality(std::string_view params) {
    while (!params.empty()) {
        auto semi = params.find(';');
        auto param = trim_ows(params.substr(0, semi));
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
        auto type = lower(trim_ows(member.substr(0, semi)));
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
            auto preference = trim_ows(value.substr(0, value.find_first_of(",;")));
            if (beast::iequals(preference, "return=minimal")) return true;
            value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        }
    }
    return false;
}

// The batch request's own headers that every item inherits (batch.forward_headers).
// X-Request-Id is the batch's request id (the client's when sane, else the
// generated one): what the access log says is what every backend sees.
http::fields inherited_headers(const http::fields& request, const batch_config& batch, std::string_view request_id) {
    http::fields out;
    for (const auto& name : batch.forward_headers) {
        if (beast::iequals(name, "x-request-id")) {
            if (!request_id.empty()) out.set("X-Request-Id", request_id);
            continue;
        }
        for (auto range = request.equal_range(name); range.first != range.second; ++range.first)
            out.insert(name, range.first->value());
    }
    return out;
}

struct refusal {
    http::status status;
    std::string detail;
    problem_position where{};
    bool client_gone = false;  // nobody to answer
};

class batch_exchange {
public:
    batch_exchange(const forward_request& request, request_body_source& body, response_sink& sink,
                   request_scope& scope)
        : req_(request), headers_(*request.headers), body_source_(body), sink_(sink), scope_(scope),
          cfg_(*scope.routing->cfg) {}

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
            if (!refused->client_gone) co_await send_refusal(*refused);
            co_return summary_;
        }
        co_await stream_multistatus(*batch);
        co_return summary_;
    }

private:
    std::optional<refusal> check_request() {
        if (req_.method != http::verb::post) return refusal{http::status::method_not_allowed, "the batch endpoint takes POST only"};
        if (auto length = req_.content_length; length && *length > cfg_.batch.max_body_bytes) {
            metrics_registry::global().limit_breached(limit_kind::batch_body_bytes);
            return refusal{http::status::payload_too_large,
                           "batch body of " + std::to_string(*length) + " bytes is over batch.max_body_bytes (" +
                               std::to_string(cfg_.batch.max_body_bytes) + ")"};
        }
        const auto content_type = headers_[http::field::content_type];
        auto type = media_type(content_type);
        if (type == "application/json") {
            format_ = batch_format::json;
        } else if (type == "application/xml" || type == "text/xml") {
            format_ = batch_format::xml;
        } else if (type == "multipart/mixed") {
            format_ = batch_format::multipart;
            multipart_.emplace(content_type, parse_limits());
        } else {
            return refusal{http::status::unsupported_media_type,
                           "batch Content-Type must be application/json, application/xml, text/xml or multipart/mixed"};
        }
        return std::nullopt;
    }

    refusal too_large() const {
        metrics_registry::global().limit_breached(limit_kind::batch_body_bytes);
        return refusal{http::status::payload_too_large,
                       "batch body over batch.max_body_bytes (" + std::to_string(cfg_.batch.max_body_bytes) + ")"};
    }

    asio::awaitable<std::optional<refusal>> read_body() {
        if (body_source_.done()) co_return std::nullopt;
        if (req_.expects_continue) {
            const bool sent = co_await sink_.send_continue();
            if (!sent) co_return refusal{http::status::bad_request, "client went away", {}, true};
        }
        const std::span<char> chunk = scope_.relay_buffer;
        // A declared length (at most max_body_bytes: checked above) is taken
        // at once: growing by doubling would hold up to twice the body.
        // (A multipart body is never held: it is parsed as it arrives.)
        if (req_.content_length && !multipart_) body_.reserve(static_cast<std::size_t>(*req_.content_length));
        std::uint64_t total = 0;
        while (!body_source_.done()) {
            auto got = co_await body_source_.read(chunk);
            total += got.bytes;
            if (total > cfg_.batch.max_body_bytes) co_return too_large();
            if (multipart_) {
                // Parsed as it arrives: a refused batch is answered at once.
                if (!multipart_->feed(std::string_view(chunk.data(), got.bytes))) {
                    summary_.request_bytes = total;
                    co_return std::nullopt;
                }
            } else {
                body_.append(chunk.data(), got.bytes);
            }
            switch (got.error) {
            case body_error::none: break;
            case body_error::too_large: co_return too_large();
            case body_error::timeout:
                metrics_registry::global().limit_breached(limit_kind::read_timeout);
                co_return refusal{http::status::request_timeout, "batch body stalled for limits.read_timeout"};
            case body_error::client_gone: co_return refusal{http::status::bad_request, "client went away", {}, true};
            case body_error::malformed:
                co_return refusal{http::status::bad_request, "cannot read the batch body: " + got.detail};
            }
        }
        summary_.request_bytes = total;
        co_return std::nullopt;
    }

    batch_parse_limits parse_limits() const {
        batch_parse_limits limits;
        limits.max_items = cfg_.batch.max_items;
        limits.max_json_depth = cfg_.batch.max_json_depth;
        limits.max_xml_depth = cfg_.batch.max_xml_depth;
        limits.max_xml_attributes = cfg_.batch.max_xml_attributes;
        limits.max_part_header_bytes = cfg_.limits.max_header_bytes;
        return limits;
    }

    std::optional<refusal> parse(std::optional<batch_request>& batch) {
        const auto limits = parse_limits();
        batch_parse_result parsed;
        switch (format_) {
        case batch_format::json: parsed = parse_json_batch(body_, limits); break;
        case batch_format::xml: parsed = parse_xml_batch(body_, limits); break;
        case batch_format::multipart: parsed = multipart_->finish(); break;
        }
        multipart_.reset();
        if (parsed.error) {
            const auto& e = *parsed.error;
            if (e.status == 413) metrics_registry::global().limit_breached(limit_kind::batch_items);
            if (e.status == 431) metrics_registry::global().limit_breached(limit_kind::header_bytes);
            return refusal{static_cast<http::status>(e.status), e.message, {e.line, e.column}};
        }
        batch = std::move(parsed.batch);
        metrics_registry::global().batch_items(batch->items.size());
        return std::nullopt;
    }

    asio::awaitable<void> send_refusal(const refusal& r) {
        response_head head;
        head.status = static_cast<unsigned>(r.status);
        head.headers.set(http::field::content_type, "application/problem+json");
        head.headers.set(http::field::cache_control, "no-store");
        if (r.status == http::status::method_not_allowed) head.headers.set(http::field::allow, "POST");
        auto body = problem_json(r.status, r.detail, r.where);
        summary_.response_bytes = body.size();
        const bool sent = co_await sink_.send_answer(std::move(head), std::move(body));
        summary_.status = sent ? static_cast<unsigned>(r.status) : 0;
    }

    asio::awaitable<bool> write_piece(const std::string& bytes, bool last) {
        if (bytes.empty() && !last) co_return true;
        summary_.response_bytes += bytes.size();
        co_return co_await sink_.send_data(std::span<const char>(bytes.data(), bytes.size()), last);
    }

    asio::awaitable<void> stream_multistatus(batch_request& batch) {
        multistatus_writer writer(negotiate(headers_[http::field::accept]), prefers_minimal(headers_));
        response_head head;
        head.status = 207;
        head.headers.set(http::field::content_type, writer.content_type());
        head.headers.set(http::field::cache_control, "no-store");
        summary_.status = 207;
        bool client_ok = co_await sink_.send_head(std::move(head));
        if (client_ok) {
            const auto begin = writer.begin();
            client_ok = co_await write_piece(begin, false);
        }

        scoped_gauge running(metrics_registry::global().batches_in_flight);
        cancel_scope cancel;
        if (!client_ok) cancel.cancel(cancel_reason::client_gone);
        fanout_stats stats;
        {
            auto watch = sink_.watch_client(cancel);
            std::string pending;
            result_sink sink = [&](std::vector<item_result>& results) -> asio::awaitable<bool> {
                pending.clear();
                for (const auto& r : results) pending += writer.entry(r);
                co_return co_await write_piece(pending, false);
            };
            const item_target_resolver targets(cfg_.batch.path, headers_[http::field::host]);
            fanout_input input{batch, *scope_.routing, targets, scope_.client,
                               inherited_headers(headers_, cfg_.batch, scope_.request_id),
                               std::chrono::steady_clock::now() + cfg_.batch.deadline, scope_.connection_items};
            stats = co_await run_fanout(std::move(input), cancel, std::move(sink));
        }
        client_ok = client_ok && !stats.cancelled;
        if (client_ok) {
            const auto end = writer.end();
            client_ok = co_await write_piece(end, true);
        }
        if (!client_ok) {
            sink_.abort();
            summary_.status = 0;  // the client never got a whole answer
        }
    }

    const forward_request& req_;
    const http::fields& headers_;
    request_body_source& body_source_;
    response_sink& sink_;
    request_scope& scope_;
    const config& cfg_;
    enum class batch_format { json, xml, multipart };
    batch_format format_ = batch_format::json;
    std::string body_;                                 // JSON and XML: parsed whole
    std::optional<multipart_batch_parser> multipart_;  // multipart: parsed as the body arrives
    exchange_summary summary_;
};

}  // namespace

bool is_batch_target(std::string_view target, const config& cfg) {
    return target.substr(0, target.find('?')) == cfg.batch.path;
}

asio::awaitable<exchange_summary> serve_batch(const forward_request& request, request_body_source& body,
                                              response_sink& sink, request_scope& scope) {
    batch_exchange exchange(request, body, sink, scope);
    co_return co_await exchange.run();
}

}  // namespace batchgate
