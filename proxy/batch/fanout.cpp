#include "proxy/batch/fanout.hpp"

#include "proxy/core/http_semantics.hpp"

#include "proxy/backend/backend_client.hpp"
#include "proxy/backend/in_flight_limiter.hpp"
#include "proxy/backend/routing_state.hpp"
#include "proxy/backend/retry_policy.hpp"
#include "proxy/batch/multistatus.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <charconv>
#include <deque>
#include <iterator>
#include <unordered_map>

namespace batchgate {

namespace {

using clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// "get" → "GET" for the standard methods (Graph clients are not always
// careful); anything else stays as written, since methods are case-sensitive.
std::string canonical_method(std::string_view m) {
    for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
        if (beast::iequals(m, known)) return std::string(known);
    return std::string(m);
}

std::string ms(clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

// What one attempt came to, in the retry policy's words. A stream the
// HTTP/2 backend never processed is `refused`; an HTTP/1.1 keep-alive
// connection that was closed under us before a byte of answer is `stale`.
attempt_report report_of(const exchange_outcome& o, bool over_h2, const retry_config& retries) {
    attempt_report r;
    switch (o.error) {
    case exchange_error::none:
        r.event = attempt_event::answered;
        r.status = o.response.result_int();
        // Retry-After matters only for a status that is retried: no header
        // lookup for the answers that simply stand.
        if (std::find(retries.on_status.begin(), retries.on_status.end(), r.status) != retries.on_status.end())
            r.retry_after = retry_after_seconds(o.response[http::field::retry_after]);
        break;
    case exchange_error::queue_timeout: r.event = attempt_event::queue_timeout; break;
    case exchange_error::connect_failed: r.event = attempt_event::connect_failed; break;
    case exchange_error::connect_timeout: r.event = attempt_event::connect_timeout; break;
    case exchange_error::reset:
        if (o.nothing_received && over_h2)
            r.event = attempt_event::refused;
        else if (o.nothing_received && o.reused)
            r.event = attempt_event::stale_connection;
        else
            r.event = attempt_event::reset;
        break;
    case exchange_error::timeout: r.event = attempt_event::timeout; break;
    case exchange_error::cancelled:  // handled before the policy is asked
    case exchange_error::malformed:
    case exchange_error::too_large:
    case exchange_error::switching_protocols:
    case exchange_error::only_interim: r.event = attempt_event::unusable; break;
    }
    return r;
}

// One exchange's mark on the backend's series; a cancelled exchange (client
// gone, deadline) says nothing about the backend and is not counted.
void record(backend_metrics& m, const exchange_outcome& o, clock::duration elapsed) {
    switch (o.error) {
    case exchange_error::none:
        m.response(o.response.result_int());
        m.latency.observe(elapsed);
        return;
    case exchange_error::cancelled: return;
    case exchange_error::timeout:
    case exchange_error::connect_timeout: m.timeouts.fetch_add(1, std::memory_order_relaxed); break;
    case exchange_error::queue_timeout:
        m.overloaded.fetch_add(1, std::memory_order_relaxed);
        metrics_registry::global().limit_breached(limit_kind::queue_timeout);
        break;
    case exchange_error::too_large: metrics_registry::global().limit_breached(limit_kind::item_response_bytes); break;
    default: break;
    }
    m.response(0);
}

struct item_outcome {
    std::vector<item_result> results;
    bool succeeded = false;  // 2xx: dependents may run
};

// A nested 207 names resources by the backend's paths; a route with
// rewrite_prefix is undone so the client sees its own names.
std::string client_href(const std::string& backend_href, const route_config& route) {
    if (!route.rewrite_prefix || route.rewrite_prefix->empty()) return backend_href;
    const std::string& rewritten = *route.rewrite_prefix;
    if (!backend_href.starts_with(rewritten)) return backend_href;
    std::string_view rest = std::string_view(backend_href).substr(rewritten.size());
    if (!rest.empty() && rest.front() != '/' && rest.front() != '?' && !rewritten.ends_with('/')) return backend_href;
    std::string out = route.prefix;
    if (out.ends_with('/') && rest.starts_with('/')) rest.remove_prefix(1);
    out += rest;
    return out;
}

class batch_run {
public:
    batch_run(fanout_input& in, cancel_scope& scope, result_sink& sink, asio::any_io_executor executor)
        : in_(in),
          scope_(scope),
          sink_(sink),
          executor_(executor),
          wake_(executor),
          items_(in.batch.items),
          dependents_(items_.size()),
          unmet_(items_.size(), 0),
          dependency_failed_(items_.size(), false) {}

    asio::awaitable<fanout_stats> run() {
        resolve_targets();
        index_dependencies();
        const std::size_t max_parallel = in_.routing.cfg->batch.max_parallel;
        std::size_t done = 0;
        while (done < items_.size()) {
            while (!ready_.empty() && running_ < max_parallel) {
                const std::size_t i = ready_.front();
                ready_.pop_front();
                start(i);
            }
            if (finished_.empty()) {
                // Once cancelled, only completions matter: no more deadline wake-ups.
                wake_.expires_at(scope_.cancelled() ? clock::time_point::max() : in_.deadline);
                auto [ec] = co_await wake_.async_wait(use_tuple);
                if (!ec && clock::now() >= in_.deadline && !scope_.cancelled()) {
                    scope_.cancel(cancel_reason::deadline);
                    metrics_registry::global().limit_breached(limit_kind::batch_deadline);
                }
            }
            std::vector<item_result> out;
            while (!finished_.empty()) {
                auto [i, outcome] = std::move(finished_.front());
                finished_.pop_front();
                ++done;
                complete(i, outcome.succeeded);
                for (auto& r : outcome.results) out.push_back(std::move(r));
            }
            if (!out.empty() && scope_.reason() != cancel_reason::client_gone) {
                stats_.entries += out.size();
                if (!co_await sink_(out)) {
                    stats_.cancelled = true;
                    scope_.cancel(cancel_reason::client_gone);
                }
            }
        }
        co_return stats_;
    }

private:
    // Every entry names its item by the resolved path (PRODUCT.md §1.4), the
    // ones that never run too (424). A target that does not resolve stays as
    // written; run_item answers it 400.
    void resolve_targets() {
        std::string resolved;
        normalized_target checked;
        for (auto& item : in_.batch.items) {
            if (is_absolute_path(item.href)) continue;  // the common case
            if (!in_.targets.resolve(item.href, resolved) && normalize_target(resolved, checked) == target_error::none)
                item.href = resolved;
        }
    }

    static bool is_absolute_path(std::string_view href) { return href.starts_with('/') && !href.starts_with("//"); }

    // The text an item is refused with unsent (batch_request::refused), if any.
    const std::string* refusal(std::size_t i) const {
        const auto& refused = in_.batch.refused;
        if (refused.empty()) return nullptr;
        const auto it = std::lower_bound(refused.begin(), refused.end(), i,
                                         [](const auto& entry, std::size_t index) { return entry.first < index; });
        return it != refused.end() && it->first == i ? &it->second : nullptr;
    }

    void index_dependencies() {
        // Most batches have no dependsOn at all: then every item is ready and
        // the index by id (two allocations per item) is not needed.
        const bool any_dependency =
            std::any_of(items_.begin(), items_.end(), [](const auto& item) { return !item.depends_on.empty(); });
        if (!any_dependency) {
            for (std::size_t i = 0; i < items_.size(); ++i) ready_.push_back(i);
            return;
        }
        std::unordered_map<std::string_view, std::vector<std::size_t>> by_id;
        for (std::size_t i = 0; i < items_.size(); ++i) by_id[items_[i].id].push_back(i);
        for (std::size_t i = 0; i < items_.size(); ++i) {
            for (const auto& dep : items_[i].depends_on) {
                auto it = by_id.find(dep);
                if (it == by_id.end()) continue;  // the parser refuses unknown ids; be safe anyway
                for (std::size_t d : it->second) {
                    dependents_[d].push_back(i);
                    ++unmet_[i];
                }
            }
            if (unmet_[i] == 0) ready_.push_back(i);
        }
    }

    void complete(std::size_t i, bool succeeded) {
        for (std::size_t d : dependents_[i]) {
            if (!succeeded) dependency_failed_[d] = true;
            if (--unmet_[d] == 0) ready_.push_back(d);
        }
    }

    void start(std::size_t i) {
        if (dependency_failed_[i]) {
            finished_.emplace_back(i, failure(i, 424, item_condition::failed_dependency,
                                              "an item it depends on (dependsOn, or the request before it in its changeset "
                                              "or atomicityGroup) did not succeed"));
            return;
        }
        if (scope_.cancelled()) {
            finished_.emplace_back(i, cancelled(i));
            return;
        }
        ++running_;
        asio::co_spawn(executor_, run_item(i), [this, i](std::exception_ptr e, item_outcome outcome) {
            --running_;
            if (e) outcome = failure(i, 502, item_condition::upstream_failure, "internal error while proxying");
            finished_.emplace_back(i, std::move(outcome));
            wake_.cancel();
        });
    }

    item_outcome failure(std::size_t i, unsigned status, item_condition condition, std::string description) const {
        item_outcome o;
        item_result r;
        r.href = items_[i].href;
        r.id = items_[i].id;
        r.status = status;
        r.condition = condition;
        r.description = std::move(description);
        o.results.push_back(std::move(r));
        return o;
    }

    item_outcome cancelled(std::size_t i) const {
        return failure(i, 504, item_condition::upstream_timeout,
                       "batch deadline (" + ms(in_.routing.cfg->batch.deadline) + ") passed");
    }

    // Item headers: the batch request's forwarded headers, overridden by the
    // batch document's top-level headers, overridden by the item's own.
    std::optional<std::string> merge_headers(const batch_item& item, http::fields& out) const {
        out = in_.inherited_headers;
        for (const header_list* layer : std::initializer_list<const header_list*>{&in_.batch.headers, &item.headers}) {
            for (const auto& [name, value] : *layer) {
                if (!is_token(name)) return "header name '" + name + "' is not a valid token";
                if (!is_safe_header_value(value)) return "header '" + name + "' has a CR, LF or NUL in its value";
                if (is_proxy_managed_request_header(name))
                    return "header '" + name + "' is managed by batchgate and may not be set on an item";
                out.erase(name);
            }
            for (const auto& [name, value] : *layer) out.insert(name, value);
        }
        if (item.body_is_json && out.count(http::field::content_type) == 0)
            out.set(http::field::content_type, "application/json");
        return std::nullopt;
    }

    asio::awaitable<item_outcome> run_item(std::size_t i) {
        const batch_item& item = items_[i];
        item_request request;
        request.method = canonical_method(item.method);
        if (!is_token(request.method))
            co_return failure(i, 400, item_condition::bad_request, "method is not a valid HTTP token");
        if (request.method == "CONNECT")  // a tunnel has no place in a batch of resources
            co_return failure(i, 400, item_condition::bad_request, "CONNECT cannot be batched");
        if (const std::string* why = refusal(i)) co_return failure(i, 400, item_condition::bad_request, *why);
        if (auto why = merge_headers(item, request.headers))
            co_return failure(i, 400, item_condition::bad_request, std::move(*why));
        // resolve_targets() left relative targets only where they fail, as
        // written, so that the entry names what the client sent.
        std::string resolved;
        std::string_view path = item.href;
        if (!is_absolute_path(path)) {
            if (auto why = in_.targets.resolve(path, resolved))
                co_return failure(i, 400, item_condition::bad_target, std::move(*why));
            path = resolved;
        }
        normalized_target target;
        if (auto e = normalize_target(path, target); e != target_error::none)
            co_return failure(i, 400, item_condition::bad_target, std::string(describe(e)));
        route_match match;
        if (!in_.routing.router.match(target, match))
            co_return failure(i, 404, item_condition::no_route, "no route for " + target.path);
        request.target = std::move(match.target);
        const route_config& route = in_.routing.cfg->routes[match.route_index];
        request.body = item.body;
        request.has_body = item.has_body;

        const backend_handle& handle = in_.routing.backend(match.backend_index);
        backend_client& client = *handle.client;  // HTTP/1.1 or h2, as the backend's protocol chose
        backend_metrics& metrics = handle.shared->metrics;
        const backend_config& backend = *handle.cfg;
        auto& limiter = *handle.shared->limiter;
        endpoint_health& health = *handle.shared->health;
        const std::string who = "backend " + backend.name + ": ";

        // The client connection's budget first (HTTP/2: many batches share
        // one connection); waiting for it is bounded by the batch deadline.
        std::optional<limiter_slot> connection_slot;
        if (in_.connection_items) {
            const auto until_deadline = in_.deadline - clock::now();
            if (until_deadline <= clock::duration::zero() || scope_.cancelled()) co_return cancelled(i);
            limiter_wait got = limiter_wait::granted;
            if (const auto now = in_.connection_items->try_acquire(&scope_)) {
                got = *now;  // no wait, no coroutine frame
            } else {
                const auto waited = co_await in_.connection_items->acquire(until_deadline, &scope_);
                got = waited;
            }
            if (got != limiter_wait::granted) co_return cancelled(i);
            connection_slot.emplace(*in_.connection_items);
        }

        // Every endpoint ejected or failing its checks: say so now rather
        // than wait in the queue for a connect that cannot help.
        if (!health.any_available(clock::now())) {
            metrics.no_endpoint.fetch_add(1, std::memory_order_relaxed);
            metrics.overloaded.fetch_add(1, std::memory_order_relaxed);
            metrics.response(0);
            co_return failure(i, 503, item_condition::overloaded, who + "no healthy endpoint");
        }

        auto wait = std::min<clock::duration>(backend.queue_timeout, in_.deadline - clock::now());
        if (wait <= clock::duration::zero() || scope_.cancelled()) co_return cancelled(i);
        limiter_wait waited = limiter_wait::granted;
        if (const auto now = limiter.try_acquire(&scope_)) {
            waited = *now;  // no wait, no coroutine frame
        } else {
            const auto queued = co_await limiter.acquire(wait, &scope_);
            waited = queued;
        }
        if (waited != limiter_wait::granted) {
            if (waited == limiter_wait::cancelled || clock::now() >= in_.deadline) co_return cancelled(i);
            metrics.overloaded.fetch_add(1, std::memory_order_relaxed);
            metrics.response(0);
            if (waited == limiter_wait::queue_full) {
                metrics_registry::global().limit_breached(limit_kind::in_flight_queue);
                co_return failure(i, 503, item_condition::overloaded,
                                  who + std::to_string(backend.max_queue) + " items already waiting for one of " +
                                      std::to_string(backend.max_in_flight) + " in flight (max_queue)");
            }
            metrics_registry::global().limit_breached(limit_kind::in_flight);
            co_return failure(i, 503, item_condition::overloaded,
                              who + std::to_string(backend.max_in_flight) + " items in flight for " +
                                  ms(backend.queue_timeout));
        }
        limiter_slot slot{limiter};
        scoped_gauge in_flight(metrics.in_flight);
        retry_budget& retries_budget = *handle.shared->budget;
        budgeted_retry retrying;  // the retry in flight, if any, against the budget

        // A batch item's body is held whole, so an idempotent item can
        // always go again; a refused stream even when it is not.
        retry_progress progress;
        std::size_t avoid = no_endpoint;  // a retry goes elsewhere when the backend has another endpoint
        for (;;) {
            const auto remaining = in_.deadline - clock::now();
            if (remaining <= clock::duration::zero() || scope_.cancelled()) co_return cancelled(i);
            const auto sent_at = clock::now();
            const auto limit = in_.routing.cfg->batch.max_item_response_bytes;
            const auto budget = std::chrono::ceil<duration>(std::min<clock::duration>(backend.timeout, remaining));
            exchange_outcome o;
            o = co_await client.exchange_once(request, in_.client, limit, budget, scope_, avoid);
            avoid = o.endpoint;
            record(metrics, o, clock::now() - sent_at);
            retrying.reset();
            if (o.error == exchange_error::cancelled) co_return cancelled(i);
            const attempt_report report = report_of(o, client.multiplexed(), backend.retries);
            // A timeout that is the batch deadline's says nothing about the endpoint.
            if (!(report.event == attempt_event::timeout && clock::now() >= in_.deadline))
                health.observe(o.endpoint, report, backend.outlier, clock::now());
            const retry_request asked{backend.retries, is_idempotent(request.method), true, in_.deadline - clock::now()};
            const retry_progress before = progress;
            const retry_decision decision = decide_retry(report, asked, progress);
            if (decision.verdict == retry_verdict::deliver) co_return answered(i, std::move(o.response), route);
            if (decision.verdict == retry_verdict::give_up) co_return given_up(i, o, report, progress, backend, who);
            if (decision.counted && !retries_budget.try_start_retry()) {
                metrics_registry::global().limit_breached(limit_kind::retry_budget);
                if (report.event == attempt_event::answered) co_return answered(i, std::move(o.response), route);
                auto out = given_up(i, o, report, before, backend, who);
                for (auto& r : out.results)
                    r.description += "; not retried: the retry budget (" + std::to_string(retries_budget.percent()) +
                                     "% of requests in flight, at least 3) is spent";
                co_return out;
            }
            if (decision.counted) {
                retrying.hold(retries_budget);
                ++stats_.retries;
                metrics.retries.fetch_add(1, std::memory_order_relaxed);
            }
            if (decision.pause > clock::duration::zero()) {
                asio::steady_timer timer(executor_, decision.pause);
                cancel_scope::registration registered(scope_, [&timer] { timer.cancel(); });
                co_await timer.async_wait(use_tuple);
            }
        }
    }

    // The item's answer when no further try is made after `o`.
    item_outcome given_up(std::size_t i, const exchange_outcome& o, const attempt_report& report,
                          const retry_progress& progress, const backend_config& backend, const std::string& who) const {
        switch (report.event) {
        case attempt_event::queue_timeout:
            return failure(i, 503, item_condition::overloaded, who + "every connection busy for " + ms(backend.queue_timeout));
        case attempt_event::connect_failed:
            return failure(i, 502, item_condition::upstream_failure, who + "cannot connect: " + o.cause.message());
        case attempt_event::connect_timeout:
            return failure(i, 504, item_condition::upstream_timeout,
                           who + "no connection within " + ms(backend.connect_timeout));
        case attempt_event::refused:
            return failure(i, 502, item_condition::upstream_failure,
                           who + "stream refused by the backend " +
                               std::to_string(progress.attempt + (progress.free_replay_used ? 1 : 0)) + " times");
        case attempt_event::stale_connection:
        case attempt_event::reset:
            return failure(i, 502, item_condition::upstream_failure, who + "connection lost: " + o.cause.message());
        case attempt_event::timeout:
            if (clock::now() >= in_.deadline) return cancelled(i);
            return failure(i, 504, item_condition::upstream_timeout, who + "no response within " + ms(backend.timeout));
        case attempt_event::answered:
        case attempt_event::unusable: break;
        }
        switch (o.error) {
        case exchange_error::too_large:
            return failure(i, 502, item_condition::response_too_large,
                           who + "answer larger than batch.max_item_response_bytes (" +
                               std::to_string(in_.routing.cfg->batch.max_item_response_bytes) + " bytes)");
        case exchange_error::switching_protocols:
            return failure(i, 502, item_condition::upstream_failure,
                           who + "answered 101 Switching Protocols; batchgate does not tunnel");
        case exchange_error::only_interim:
            return failure(i, 502, item_condition::upstream_failure, who + "sent only interim (1xx) answers");
        default: return failure(i, 502, item_condition::upstream_failure, who + "malformed answer: " + o.cause.message());
        }
    }

    item_outcome answered(std::size_t i, http::response<http::string_body>&& response,
                          const route_config& route) const {
        item_outcome o;
        const unsigned status = response.result_int();
        o.succeeded = status >= 200 && status < 300;
        if (status == 207 && response[http::field::content_type].find("xml") != std::string_view::npos) {
            if (auto inner = parse_nested_multistatus(response.body())) {
                for (auto& r : *inner) {
                    if (r.id.empty()) r.id = items_[i].id;
                    r.href = client_href(r.href, route);
                }
                o.results = std::move(*inner);
                return o;
            }
        }
        item_result r;
        r.href = items_[i].href;
        r.id = items_[i].id;
        r.status = status;
        r.headers.reserve(static_cast<std::size_t>(std::distance(response.begin(), response.end())));
        for (const auto& f : response) {
            auto name = f.name_string();
            if (is_hop_by_hop(name) || beast::iequals(name, "content-length")) continue;
            r.headers.emplace_back(std::string(name), std::string(f.value()));
        }
        if (status == 201 || (status >= 300 && status < 400)) {
            auto location = response[http::field::location];
            if (!location.empty()) r.location = std::string(location);
        }
        r.body = std::move(response.body());
        o.results.push_back(std::move(r));
        return o;
    }

    fanout_input& in_;
    cancel_scope& scope_;
    result_sink& sink_;
    asio::any_io_executor executor_;
    asio::steady_timer wake_;
    const std::vector<batch_item>& items_;
    std::vector<std::vector<std::size_t>> dependents_;
    std::vector<std::size_t> unmet_;
    std::vector<bool> dependency_failed_;
    std::deque<std::size_t> ready_;
    std::deque<std::pair<std::size_t, item_outcome>> finished_;
    std::size_t running_ = 0;
    fanout_stats stats_;
};

}  // namespace

asio::awaitable<fanout_stats> run_fanout(fanout_input input, cancel_scope& scope, result_sink sink) {
    batch_run run(input, scope, sink, co_await asio::this_coro::executor);
    co_return co_await run.run();
}

}  // namespace batchgate
