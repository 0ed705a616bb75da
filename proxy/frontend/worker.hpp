// One event-loop thread's world: its io_context, the routing generation it
// serves, and its client sessions. Nothing here is shared with another
// thread except through asio::post onto `context`.
#pragma once

#include "proxy/backend/routing_state.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <functional>
#include <list>
#include <memory>

namespace batchgate {

namespace beast = boost::beast;

struct session_handle {
    beast::tcp_stream* stream = nullptr;
    bool idle = false;  // waiting for the next request: safe to cut on drain
    std::function<void()> drain;  // how to wind the session down (HTTP/2: GOAWAY); empty: cut when idle
};

class worker {
public:
    worker() : context(1), timer_floor_(context) {}

    asio::io_context context;
    std::shared_ptr<routing_state> routing;
    bool draining = false;

    // Registers a live session for the life of the returned guard.
    class registration {
    public:
        registration(worker& w, session_handle* h) : w_(w), it_(w.sessions_.insert(w.sessions_.end(), h)) {}
        ~registration() { w_.sessions_.erase(it_); }
        registration(const registration&) = delete;
        registration& operator=(const registration&) = delete;

    private:
        worker& w_;
        std::list<session_handle*>::iterator it_;
    };

    // On the worker thread: no new requests; idle keep-alive sessions end now,
    // busy ones after their current response.
    void begin_drain() {
        draining = true;
        timer_floor_.cancel();
        for (auto* h : sessions_) {
            if (h->drain)
                h->drain();
            else if (h->idle)
                h->stream->cancel();
        }
    }

    std::size_t session_count() const { return sessions_.size(); }

    // Keeps a timer due within timer_floor_period on this worker's queue
    // until the drain. Asio re-programs its timerfd (a syscall) whenever a
    // new timer becomes the earliest one, and every read and write of a
    // request arms a deadline seconds away: that was 5 syscalls per
    // pass-through request. Behind this one, those deadlines are never the
    // earliest; it costs one wakeup per period. Called before the worker runs.
    void start_timer_floor() {
        timer_floor_.expires_after(timer_floor_period);
        timer_floor_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec && !draining) start_timer_floor();
        });
    }
    static constexpr std::chrono::milliseconds timer_floor_period{500};

private:
    std::list<session_handle*> sessions_;
    asio::steady_timer timer_floor_;  // start_timer_floor
};

}  // namespace batchgate
