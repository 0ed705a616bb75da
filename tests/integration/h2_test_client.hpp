// An HTTP/2 client for integration tests, on batchgate's own nghttp2 core
// (client role): concurrent requests on one connection, each answer kept
// with its DATA frames in arrival order, plus a rapid-reset attacker mode.
// Blocking calls with a time limit, so a broken server fails a test instead
// of hanging it.
#pragma once

#include "proxy/core/byte_stream.hpp"
#include "proxy/http2/h2_connection.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <span>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace batchgate::test {

struct h2_client_request {
    std::string method = "GET";
    std::string path = "/";
    std::vector<h2_header> headers;  // lower-case names; pseudo-headers are added
    std::string body;
};

struct h2_answer {
    unsigned status = 0;
    std::vector<h2_header> headers;
    std::string body;
    std::vector<std::string> chunks;  // DATA payloads as they arrived
    bool complete = false;            // END_STREAM received
    bool closed = false;
    std::uint32_t error_code = 0;     // RST_STREAM / GOAWAY code
    std::string header(std::string_view name) const;
};

class h2_test_client {
public:
    // h2c with prior knowledge to 127.0.0.1:port.
    explicit h2_test_client(std::uint16_t port);
    // Over a connected stream (TLS with ALPN h2) made on io_context().
    h2_test_client(std::shared_ptr<asio::io_context> io, byte_stream stream);
    ~h2_test_client();

    // Sends every request at once on this connection and waits (up to
    // `limit`) until all are answered or the connection ends.
    std::vector<h2_answer> exchange(const std::vector<h2_client_request>& requests,
                                   std::chrono::seconds limit = std::chrono::seconds(20));
    h2_answer get(const std::string& path) { return exchange({h2_client_request{"GET", path, {}, {}}}).at(0); }

    // Opens `n` streams and resets each right away (CVE-2023-44487), then
    // waits up to `limit` for the server to close the connection. True when
    // it did.
    bool rapid_reset(int n, std::chrono::seconds limit = std::chrono::seconds(10));

    // A request whose body never comes: HEADERS without END_STREAM, then
    // silence. Waits up to `limit` for the server's answer.
    h2_answer stalled_upload(const std::string& path, std::chrono::seconds limit = std::chrono::seconds(10));

    // Runs the connection until the server closes it; true when it did within `limit`.
    bool wait_closed(std::chrono::milliseconds limit);
    bool closed() const { return conn_->closed(); }
    // The server's GOAWAY, if one arrived: its error code (0 = NO_ERROR).
    std::optional<std::uint32_t> goaway_code() const {
        if (!conn_->goaway_received()) return std::nullopt;
        return conn_->goaway_error_code();
    }

private:
    void run_until(const std::function<bool()>& done, std::chrono::steady_clock::duration limit);

    std::shared_ptr<asio::io_context> io_;
    std::deque<h2_answer> replies_;  // stable addresses: observers point into it
    std::vector<std::unique_ptr<h2_stream_observer>> observers_;
    std::shared_ptr<h2_connection> conn_;
};

}  // namespace batchgate::test
