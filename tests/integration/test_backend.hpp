// A scriptable HTTP/1.1 backend on 127.0.0.1:0 for integration tests: each
// request is answered by a handler that may also choose to misbehave
// (stay silent, reset, send garbage, answer slowly). Counts connections and
// concurrent requests so tests can assert what batchgate did to it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace batchgate::test {

namespace http = boost::beast::http;

enum class misbehaviour {
    none,
    silent,         // read the request, never answer
    reset,          // read the request, then close with RST
    garbage,        // answer with bytes that are not HTTP
    close_early,    // close without answering (FIN)
    interim_then_ok,   // send 100 and 103 first, then the response
    switch_protocols,  // answer 101
};

struct reply {
    http::response<http::string_body> response{http::status::ok, 11};
    misbehaviour act = misbehaviour::none;
    std::chrono::milliseconds delay{0};
    bool close_after = false;     // announce Connection: close, then close
    bool close_silently = false;  // keep-alive promised, but close right after (stale pooled connection)
    // Answer only once this returns true (polled every 2 ms): holds a request
    // in flight until the test has seen what it waits for.
    std::function<bool()> hold;
    // Answer, then half-close (FIN) but keep reading: a request that still
    // arrives on the connection is counted in late_requests().
    bool fin_after = false;
};

using request_type = http::request<http::string_body>;
using handler = std::function<reply(const request_type&)>;

// Echoes the request as a small text body and in X-Echo-* headers.
reply echo(const request_type& req);

class test_backend {
public:
    explicit test_backend(handler h = echo);
    ~test_backend();
    test_backend(const test_backend&) = delete;

    std::uint16_t port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    int connections() const { return connections_.load(); }
    int requests() const { return requests_.load(); }
    int max_concurrent() const { return max_concurrent_.load(); }
    int in_flight() const { return concurrent_.load(); }
    int fins_sent() const { return fins_sent_.load(); }
    int late_requests() const { return late_requests_.load(); }
    std::vector<request_type> received() const;

private:
    void run_connection(boost::asio::ip::tcp::socket socket);

    handler handler_;
    boost::asio::io_context io_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<int> connections_{0};
    std::atomic<int> requests_{0};
    std::atomic<int> concurrent_{0};
    std::atomic<int> max_concurrent_{0};
    std::atomic<int> fins_sent_{0};
    std::atomic<int> late_requests_{0};
    mutable std::mutex mutex_;
    std::vector<request_type> received_;
};

}  // namespace batchgate::test
