// A deadline for one read that leaves the socket open when it fires.
// beast::tcp_stream's own timeout closes the socket, which is right for a
// backend but wrong for a slow client that is still owed a 408: here the
// timer only cancels the pending read, and the caller sees timed_out().
#pragma once

#include "proxy/config/config.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <memory>

namespace batchgate {

class read_deadline {
public:
    explicit read_deadline(boost::asio::ip::tcp::socket& socket)
        : timer_(socket.get_executor()), state_(std::make_shared<state>()) {
        state_->socket = &socket;
    }
    ~read_deadline() { disarm(); }
    read_deadline(const read_deadline&) = delete;
    read_deadline& operator=(const read_deadline&) = delete;

    void arm(duration d) {
        const auto generation = ++state_->generation;
        state_->armed = true;
        state_->fired = false;
        timer_.expires_after(d);
        // The handler may run after this object is gone (a timer that had
        // already expired cannot be recalled), so it holds the state, and the
        // generation tells a stale expiry from the current one.
        timer_.async_wait([st = state_, generation](const boost::system::error_code& ec) {
            if (ec || !st->armed || st->generation != generation) return;
            st->fired = true;
            boost::system::error_code ignored;
            st->socket->cancel(ignored);
        });
    }

    // Call once the read completed; true when the deadline cut it short.
    bool disarm() {
        state_->armed = false;
        timer_.cancel();
        return state_->fired;
    }

private:
    struct state {
        boost::asio::ip::tcp::socket* socket = nullptr;
        std::uint64_t generation = 0;
        bool armed = false;
        bool fired = false;
    };
    boost::asio::steady_timer timer_;
    std::shared_ptr<state> state_;
};

}  // namespace batchgate
