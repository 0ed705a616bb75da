#include "tests/integration/h2_test_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace batchgate::test {

namespace {

using tcp = asio::ip::tcp;

class reply_observer : public h2_stream_observer {
public:
    explicit reply_observer(h2_answer& r) : r_(r) {}
    void on_header_block_begin() override {}
    void on_header(std::string_view name, std::string_view value) override {
        if (name == ":status")
            r_.status = static_cast<unsigned>(std::stoul(std::string(value)));
        else
            r_.headers.push_back({std::string(name), std::string(value)});
    }
    void on_header_block_end(bool end_stream) override {
        if (end_stream && r_.status >= 200) r_.complete = true;
    }
    std::size_t on_data(std::string_view chunk) override {
        r_.body.append(chunk);
        r_.chunks.emplace_back(chunk);
        return chunk.size();
    }
    void on_end_stream() override { r_.complete = true; }
    void on_stream_error() override {}
    void on_closed(const h2_stream_close& how) override {
        r_.closed = true;
        r_.error_code = how.error_code;
    }

private:
    h2_answer& r_;
};

h2_connection_options client_options() {
    h2_connection_options o;
    o.role = h2_role::client;
    o.idle_timeout = std::chrono::seconds(60);
    return o;
}

}  // namespace

std::string h2_answer::header(std::string_view name) const {
    for (const auto& h : headers)
        if (h.name == name) return h.value;
    return {};
}

h2_test_client::h2_test_client(std::uint16_t port) : io_(std::make_shared<asio::io_context>()) {
    tcp::socket socket(*io_);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    conn_ = std::make_shared<h2_connection>(byte_stream(beast::tcp_stream(std::move(socket))), client_options());
    conn_->start();
}

h2_test_client::h2_test_client(std::shared_ptr<asio::io_context> io, byte_stream stream) : io_(std::move(io)) {
    conn_ = std::make_shared<h2_connection>(std::move(stream), client_options());
    conn_->start();
}

h2_test_client::~h2_test_client() {
    if (!conn_) return;
    conn_->close();
    io_->restart();
    io_->run_for(std::chrono::milliseconds(200));
}

void h2_test_client::run_until(const std::function<bool()>& done, std::chrono::steady_clock::duration limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
        io_->restart();
        io_->run_for(std::chrono::milliseconds(10));
    }
}

std::vector<h2_answer> h2_test_client::exchange(const std::vector<h2_client_request>& requests, std::chrono::seconds limit) {
    // Replies and observers live as long as the connection: it may still
    // report on a stream after this call gave up on it.
    const std::size_t first = replies_.size();
    replies_.resize(first + requests.size());
    auto reply = [&](std::size_t i) -> h2_answer& { return replies_[first + i]; };
    for (std::size_t i = 0; i < requests.size(); ++i) {
        const auto& r = requests[i];
        std::vector<h2_header> headers{{":method", r.method}, {":scheme", "http"}, {":authority", "batchgate.test"},
                                       {":path", r.path}};
        headers.insert(headers.end(), r.headers.begin(), r.headers.end());
        if (!r.body.empty()) headers.push_back({"content-length", std::to_string(r.body.size())});
        observers_.push_back(std::make_unique<reply_observer>(reply(i)));
        const auto id = conn_->submit_request(headers, r.body, !r.body.empty(), observers_.back().get());
        if (id < 0) reply(i).closed = true;
    }
    run_until(
        [&] {
            for (std::size_t i = 0; i < requests.size(); ++i)
                if (!reply(i).closed) return conn_->closed();
            return true;
        },
        limit);
    std::vector<h2_answer> out;
    for (std::size_t i = 0; i < requests.size(); ++i) out.push_back(reply(i));
    return out;
}

h2_answer h2_test_client::stalled_upload(const std::string& path, std::chrono::seconds limit) {
    replies_.emplace_back();
    auto& reply = replies_.back();
    observers_.push_back(std::make_unique<reply_observer>(reply));
    std::vector<h2_header> headers{{":method", "POST"}, {":scheme", "http"}, {":authority", "batchgate.test"},
                                   {":path", path}, {"content-type", "application/json"}};
    if (conn_->submit_request_streaming(headers, observers_.back().get()) < 0) reply.closed = true;
    run_until([&] { return reply.closed || conn_->closed(); }, limit);
    return reply;
}

bool h2_test_client::wait_closed(std::chrono::milliseconds limit) {
    run_until([&] { return conn_->closed(); }, limit);
    return conn_->closed();
}

bool h2_test_client::rapid_reset(int n, std::chrono::seconds limit) {
    // In groups: HEADERS must be on the wire before their RST_STREAM (nghttp2
    // drops a request that was reset before it left), as in the real attack.
    std::vector<std::int32_t> group;
    for (int i = 0; i < n && !conn_->closed(); ++i) {
        replies_.emplace_back();
        observers_.push_back(std::make_unique<reply_observer>(replies_.back()));
        std::vector<h2_header> headers{{":method", "GET"}, {":scheme", "http"}, {":authority", "batchgate.test"},
                                       {":path", "/slow/1000"}};
        const auto id = conn_->submit_request(headers, {}, false, observers_.back().get());
        if (id < 0) break;
        group.push_back(id);
        if (group.size() == 10 || i + 1 == n) {
            for (int spin = 0; spin < 3; ++spin) {
                io_->restart();
                io_->poll();
            }
            for (auto sent : group) conn_->reset_stream(sent, h2_error_code::cancel);
            group.clear();
            io_->restart();
            io_->poll();
        }
    }
    run_until([&] { return conn_->closed(); }, limit);
    return conn_->closed();
}

}  // namespace batchgate::test
