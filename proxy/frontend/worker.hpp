// One event-loop thread's world: its io_context, the routing generation it
// serves, and its client sessions. Nothing here is shared with another
// thread except through asio::post onto `context`.
#pragma once

#include "proxy/backend/routing_state.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>

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
    worker() : context(1) {}

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
        for (auto* h : sessions_) {
            if (h->drain)
                h->drain();
            else if (h->idle)
                h->stream->cancel();
        }
    }

    std::size_t session_count() const { return sessions_.size(); }

private:
    std::list<session_handle*> sessions_;
};

}  // namespace batchgate
