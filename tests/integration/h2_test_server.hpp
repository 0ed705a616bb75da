// A scriptable h2c (prior knowledge) or h2 (TLS) backend on 127.0.0.1:0 for integration
// tests, on nghttp2's server session directly (not batchgate's h2_connection,
// so the two sides do not share mistakes), with its own thread. Each request
// is answered by a handler that may delay, stay silent, reset the stream or
// send a 103 first; the server can GOAWAY after N streams. It counts
// connections, concurrent streams and RST_STREAMs received.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace batchgate::test {

struct h2_seen_request {
    std::string method, scheme, authority, path;
    std::vector<std::pair<std::string, std::string>> headers;  // regular fields, in order
    std::string body;
    std::int32_t stream_id = 0;

    // First value of a regular header, "" if absent.
    std::string header(const std::string& name) const;
    bool has_header(const std::string& name) const;
};

struct h2_reply {
    unsigned status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;  // not empty when `trailers` are set
    std::vector<std::pair<std::string, std::string>> trailers;  // a HEADERS frame after the body
    std::chrono::milliseconds delay{0};
    bool silent = false;       // never answer
    bool reset = false;        // RST_STREAM(INTERNAL_ERROR) instead of an answer
    bool interim_103 = false;  // a 103 Early Hints before the answer
    bool drop_connection = false;  // close the TCP connection instead of answering
    bool refuse = false;       // RST_STREAM(REFUSED_STREAM): "never processed, safe to send again"
    // Answer only once this returns true (polled every 2 ms): holds a stream
    // open until the test has seen what it waits for.
    std::function<bool()> hold;
};

using h2_handler = std::function<h2_reply(const h2_seen_request&)>;

// True the first time it is asked about a path, false after: for handlers
// that refuse each request once, so that its replay is what gets answered.
class first_time_for_path {
public:
    bool operator()(const std::string& path) {
        std::lock_guard lock(mutex_);
        return seen_.insert(path).second;
    }

private:
    std::mutex mutex_;
    std::set<std::string> seen_;
};

// Answers "<method> <path>\n<body>" with x-echo-path.
h2_reply h2_echo(const h2_seen_request& req);

}  // namespace batchgate::test

namespace boost::asio::ssl {
class context;
}

namespace batchgate::test {

struct h2_server_options {
    std::uint32_t max_concurrent_streams = 100;
    int goaway_after_streams = 0;  // > 0: GOAWAY(last = the Nth stream) on the Nth stream of a connection
    int goaway_connections = 0;    // > 0: only the first this many connections do so (a restart, then calm)
    std::shared_ptr<boost::asio::ssl::context> tls{};  // set: TLS first (h2 over TLS; ALPN is the context's)
};

class h2_test_server {
public:
    explicit h2_test_server(h2_handler h = h2_echo, h2_server_options options = {});
    ~h2_test_server();
    h2_test_server(const h2_test_server&) = delete;
    h2_test_server& operator=(const h2_test_server&) = delete;

    std::uint16_t port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    int connections() const;
    int requests() const;
    int max_concurrent_streams_seen() const;
    int resets_received() const;
    int goaways_received() const;
    int streams_open() const;  // streams whose request arrived and that are not answered or reset yet
    std::vector<h2_seen_request> received() const;

    struct impl;  // public so the nghttp2 callbacks in the .cpp can reach it

private:
    std::unique_ptr<impl> impl_;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

}  // namespace batchgate::test
