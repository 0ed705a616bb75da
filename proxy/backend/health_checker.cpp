#include "proxy/backend/health_checker.hpp"

#include "proxy/backend/h2_client.hpp"
#include "proxy/backend/http1_client.hpp"
#include "proxy/backend/http1_pool.hpp"
#include "proxy/core/cancel_scope.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <list>

namespace batchgate {

namespace {

constexpr std::uint64_t max_check_response_bytes = 64 * KiB;  // a health answer is small; more is a failure

// A one-endpoint copy of the backend with one connection and nothing
// retried. Its pool gets a health of its own, so an endpoint out of
// rotation is still checked.
backend_config checked_copy(const backend_config& backend, std::size_t endpoint) {
    backend_config one = backend;
    one.endpoints = {backend.endpoints[endpoint]};
    one.max_connections = 1;
    one.retries.attempts = 1;
    one.queue_timeout = backend.health_check->timeout;
    one.connect_timeout = std::min(backend.connect_timeout, backend.health_check->timeout);
    one.health_check.reset();
    return one;
}

}  // namespace

// One endpoint's checks.
struct endpoint_check {
    endpoint_check(boost::asio::any_io_executor ex, const backend_config& b, std::size_t ep, endpoint_health& h)
        : backend(&b), endpoint(ep), health(&h), timer(ex) {
        auto one = checked_copy(b, ep);
        if (b.protocol == backend_protocol::h2c || b.protocol == backend_protocol::h2)
            pool = std::make_shared<h2_pool>(ex, std::move(one));
        else
            pool = std::make_shared<http1_pool>(ex, std::move(one));
    }
    const backend_config* backend;
    std::size_t endpoint;
    endpoint_health* health;
    std::shared_ptr<backend_client> pool;  // one connection to this endpoint alone
    boost::asio::steady_timer timer;
    cancel_scope scope;  // cancels the check under way on stop
};

// The checks of one configuration generation; a reload replaces it whole.
struct health_check_generation {
    std::shared_ptr<const config> cfg;
    shared_backends shared;        // keeps the endpoint health alive
    std::list<endpoint_check> checks;  // stable addresses for the loops
    bool stopped = false;

    void stop() {
        if (stopped) return;
        stopped = true;
        for (auto& c : checks) {
            c.timer.cancel();
            c.scope.cancel(cancel_reason::client_gone);
            c.pool->close_idle();
        }
    }
};

namespace {

boost::asio::awaitable<bool> check_once(endpoint_check& c) {
    const auto& check = *c.backend->health_check;
    item_request request;
    request.method = "GET";
    request.target = check.path;
    request.headers.set(http::field::user_agent, "batchgate-health-check");
    // As a trusted local client: no X-Forwarded-For of ours is dropped or added twice.
    const client_info client(boost::asio::ip::make_address_v4("127.0.0.1"), false, true);
    const exchange_outcome o =
        co_await c.pool->exchange_once(request, client, max_check_response_bytes, check.timeout, c.scope);
    const unsigned status = o.response.result_int();
    co_return o.error == exchange_error::none && status >= 200 && status < 300;
}

// The first check at once (a fresh endpoint is trusted until it fails
// `unhealthy` checks), then one every interval.
boost::asio::awaitable<void> check_loop(std::shared_ptr<health_check_generation> gen, endpoint_check& c) {
    const auto& check = *c.backend->health_check;
    while (!gen->stopped) {
        const auto started = std::chrono::steady_clock::now();
        const bool passed = co_await check_once(c);
        if (gen->stopped) break;
        c.health->check_result(c.endpoint, passed, check, std::chrono::steady_clock::now());
        c.timer.expires_at(started + check.interval);
        co_await c.timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
}

}  // namespace

health_checker::health_checker() : keep_running_(io_.get_executor()), thread_([this] { io_.run(); }) {}

health_checker::~health_checker() {
    stop();
    keep_running_.reset();
    thread_.join();
}

void health_checker::check(std::shared_ptr<const config> cfg, const shared_backends& shared) {
    auto gen = std::make_shared<health_check_generation>();
    gen->cfg = std::move(cfg);
    gen->shared = shared;
    for (const auto& [name, backend] : gen->cfg->backends) {
        if (!backend.health_check) continue;
        auto& health = *gen->shared.at(name)->health;
        for (std::size_t i = 0; i < backend.endpoints.size(); ++i)
            gen->checks.emplace_back(io_.get_executor(), backend, i, health);
    }
    replace(std::move(gen));
}

void health_checker::stop() { replace(nullptr); }

void health_checker::replace(std::shared_ptr<health_check_generation> next) {
    boost::asio::post(io_, [this, next = std::move(next)] {
        if (current_) current_->stop();
        current_ = next;
        if (!current_) return;
        for (auto& c : current_->checks)
            boost::asio::co_spawn(io_, check_loop(current_, c), boost::asio::detached);
    });
}

}  // namespace batchgate
