#include "tests/integration/h2_test_server.hpp"

#include <nghttp2/nghttp2.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstring>
#include <map>
#include <optional>

namespace batchgate::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string h2_seen_request::header(const std::string& name) const {
    for (const auto& [n, v] : headers)
        if (n == name) return v;
    return {};
}

bool h2_seen_request::has_header(const std::string& name) const {
    for (const auto& [n, v] : headers)
        if (n == name) return true;
    return false;
}

h2_reply h2_echo(const h2_seen_request& req) {
    h2_reply r;
    r.headers = {{"content-type", "text/plain"}, {"x-echo-path", req.path}};
    r.body = req.method + " " + req.path + "\n" + req.body;
    return r;
}

struct h2_test_server::impl {
    impl(h2_handler h, h2_server_options o) : handler(std::move(h)), options(o), acceptor(io) {}

    std::atomic<int> connections_{0};
    std::atomic<int> requests_{0};
    std::atomic<int> concurrent_{0};
    std::atomic<int> max_concurrent_{0};
    std::atomic<int> resets_received_{0};
    std::atomic<int> goaways_received_{0};
    h2_handler handler;
    h2_server_options options;
    asio::io_context io;
    tcp::acceptor acceptor;
    mutable std::mutex mutex;
    std::vector<h2_seen_request> received;

    void accept();
};

namespace {

struct server_stream {
    h2_seen_request request;
    std::string response_body;
    std::size_t sent = 0;
    std::vector<std::pair<std::string, std::string>> trailers;  // sent after the body, ending the stream
};

class server_connection : public std::enable_shared_from_this<server_connection> {
public:
    server_connection(h2_test_server::impl& srv, tcp::socket socket, int number)
        : srv_(srv), owner_(srv), socket_(std::move(socket)), connection_number_(number) {}
    ~server_connection() {
        if (session_) nghttp2_session_del(session_);
    }

    void start();

private:
    static server_connection& self(void* p) { return *static_cast<server_connection*>(p); }
    static int on_begin_headers(nghttp2_session*, const nghttp2_frame*, void*);
    static int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t, const uint8_t*, size_t,
                         uint8_t, void*);
    static int on_data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
    static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
    static int on_stream_close(nghttp2_session*, int32_t, uint32_t, void*);
    static ssize_t read_body(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*, nghttp2_data_source*, void*);

    void request_complete(std::int32_t id);
    void answer(std::int32_t id, const h2_reply& reply);
    void answer_later(std::int32_t id, h2_reply reply, std::chrono::milliseconds wait);
    void read();
    void flush();

    friend struct h2_test_server::impl;
    h2_test_server::impl& srv_;
    h2_test_server::impl& owner_;
    tcp::socket socket_;
    std::optional<asio::ssl::stream<tcp::socket&>> tls_;  // over socket_, when the server speaks TLS
    nghttp2_session* session_ = nullptr;
    std::array<uint8_t, 16384> read_buffer_{};
    std::vector<uint8_t> write_buffer_;
    bool writing_ = false;
    std::map<std::int32_t, server_stream> streams_;
    int connection_number_;  // 1 for the first accepted
    int streams_seen_ = 0;
    bool goaway_sent_ = false;
};

void server_connection::start() {
    if (srv_.options.tls && !tls_) {
        tls_.emplace(socket_, *srv_.options.tls);
        tls_->async_handshake(asio::ssl::stream_base::server, [self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) self->start();
        });
        return;
    }
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_server_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv_.options.max_concurrent_streams}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 1);
    flush();
    read();
}

int server_connection::on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* p) {
    auto& c = self(p);
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    const std::int32_t id = frame->hd.stream_id;
    c.streams_[id].request.stream_id = id;
    const int now = ++c.owner_.concurrent_;
    for (int seen = c.owner_.max_concurrent_.load(); now > seen && !c.owner_.max_concurrent_.compare_exchange_weak(seen, now);) {
    }
    ++c.streams_seen_;
    const bool goaway_here =
        c.srv_.options.goaway_connections == 0 || c.connection_number_ <= c.srv_.options.goaway_connections;
    if (c.srv_.options.goaway_after_streams > 0 && c.streams_seen_ == c.srv_.options.goaway_after_streams &&
        !c.goaway_sent_ && goaway_here) {
        c.goaway_sent_ = true;
        nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, nullptr, 0);
    }
    return 0;
}

int server_connection::on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                                 const uint8_t* value, size_t valuelen, uint8_t, void* p) {
    auto& c = self(p);
    auto it = c.streams_.find(frame->hd.stream_id);
    if (it == c.streams_.end()) return 0;
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    auto& r = it->second.request;
    if (n == ":method") r.method = v;
    else if (n == ":scheme") r.scheme = v;
    else if (n == ":authority") r.authority = v;
    else if (n == ":path") r.path = v;
    else r.headers.emplace_back(std::move(n), std::move(v));
    return 0;
}

int server_connection::on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                                     void* p) {
    auto& c = self(p);
    auto it = c.streams_.find(id);
    if (it != c.streams_.end()) it->second.request.body.append(reinterpret_cast<const char*>(data), len);
    return 0;
}

int server_connection::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* p) {
    auto& c = self(p);
    if (frame->hd.type == NGHTTP2_RST_STREAM) ++c.owner_.resets_received_;
    if (frame->hd.type == NGHTTP2_GOAWAY) ++c.owner_.goaways_received_;
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        c.request_complete(frame->hd.stream_id);
    return 0;
}

int server_connection::on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* p) {
    auto& c = self(p);
    if (c.streams_.erase(id) > 0) --c.owner_.concurrent_;
    return 0;
}

ssize_t server_connection::read_body(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                                     uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* st = static_cast<server_stream*>(source->ptr);
    const std::size_t n = std::min(length, st->response_body.size() - st->sent);
    std::memcpy(buf, st->response_body.data() + st->sent, n);
    st->sent += n;
    if (st->sent == st->response_body.size()) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!st->trailers.empty()) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            std::vector<nghttp2_nv> nva;
            for (auto& [name, value] : st->trailers)
                nva.push_back({(uint8_t*)name.data(), (uint8_t*)value.data(), name.size(), value.size(),
                               NGHTTP2_NV_FLAG_NONE});
            nghttp2_submit_trailer(session, id, nva.data(), nva.size());
        }
    }
    return static_cast<ssize_t>(n);
}

void server_connection::request_complete(std::int32_t id) {
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    ++owner_.requests_;
    {
        std::lock_guard lock(srv_.mutex);
        srv_.received.push_back(it->second.request);
    }
    h2_reply reply = srv_.handler(it->second.request);
    if (reply.silent) return;
    if (reply.delay.count() == 0 && !reply.hold) {
        answer(id, reply);
        return;
    }
    const auto wait = reply.delay;
    answer_later(id, std::move(reply), wait);
}

// After `wait`, and then once the reply's hold (if any) lets go.
void server_connection::answer_later(std::int32_t id, h2_reply reply, std::chrono::milliseconds wait) {
    auto timer = std::make_shared<asio::steady_timer>(srv_.io, wait);
    timer->async_wait([self = shared_from_this(), timer, id, reply = std::move(reply)](boost::system::error_code ec) mutable {
        if (ec) return;
        if (reply.hold && !reply.hold()) {
            self->answer_later(id, std::move(reply), std::chrono::milliseconds(2));
            return;
        }
        self->answer(id, reply);
        self->flush();
    });
}

void server_connection::answer(std::int32_t id, const h2_reply& reply) {
    auto it = streams_.find(id);
    if (it == streams_.end()) return;  // reset or refused meanwhile
    if (reply.drop_connection) {
        boost::system::error_code ignored;
        socket_.close(ignored);
        return;
    }
    if (reply.reset || reply.refuse) {
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id,
                                  reply.refuse ? NGHTTP2_REFUSED_STREAM : NGHTTP2_INTERNAL_ERROR);
        return;
    }
    if (reply.interim_103) {
        const std::string status = "103", name = ":status", link = "link", target = "</style.css>; rel=preload";
        nghttp2_nv early[] = {
            {(uint8_t*)name.data(), (uint8_t*)status.data(), name.size(), status.size(), NGHTTP2_NV_FLAG_NONE},
            {(uint8_t*)link.data(), (uint8_t*)target.data(), link.size(), target.size(), NGHTTP2_NV_FLAG_NONE}};
        nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, id, nullptr, early, 2, nullptr);
    }
    std::vector<std::pair<std::string, std::string>> fields;
    fields.emplace_back(":status", std::to_string(reply.status));
    for (const auto& h : reply.headers) fields.push_back(h);
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : fields)
        nva.push_back({(uint8_t*)n.data(), (uint8_t*)v.data(), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    it->second.response_body = reply.body;
    it->second.trailers = reply.trailers;
    nghttp2_data_provider provider{};
    provider.source.ptr = &it->second;
    provider.read_callback = read_body;
    nghttp2_submit_response(session_, id, nva.data(), nva.size(), reply.body.empty() ? nullptr : &provider);
}

void server_connection::read() {
    auto on_read = [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
        if (ec) return;
        if (nghttp2_session_mem_recv(self->session_, self->read_buffer_.data(), n) < 0) return;
        self->flush();
        self->read();
    };
    if (tls_)
        tls_->async_read_some(asio::buffer(read_buffer_), std::move(on_read));
    else
        socket_.async_read_some(asio::buffer(read_buffer_), std::move(on_read));
}

void server_connection::flush() {
    if (writing_) return;
    write_buffer_.clear();
    for (;;) {
        const uint8_t* data = nullptr;
        const auto n = nghttp2_session_mem_send(session_, &data);
        if (n <= 0) break;
        write_buffer_.insert(write_buffer_.end(), data, data + n);
    }
    if (write_buffer_.empty()) {
        if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
            boost::system::error_code ignored;
            socket_.close(ignored);
        }
        return;
    }
    writing_ = true;
    auto on_written = [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
        self->writing_ = false;
        if (!ec) self->flush();
    };
    if (tls_)
        asio::async_write(*tls_, asio::buffer(write_buffer_), std::move(on_written));
    else
        asio::async_write(socket_, asio::buffer(write_buffer_), std::move(on_written));
}

}  // namespace

void h2_test_server::impl::accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
        if (ec) return;
        const int number = ++connections_;
        socket.set_option(tcp::no_delay(true));
        std::make_shared<server_connection>(*this, std::move(socket), number)->start();
        accept();
    });
}

h2_test_server::h2_test_server(h2_handler h, h2_server_options options)
    : impl_(std::make_unique<impl>(std::move(h), options)) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
    port_ = impl_->acceptor.local_endpoint().port();
    impl_->accept();
    thread_ = std::thread([this] { impl_->io.run(); });
}

h2_test_server::~h2_test_server() {
    impl_->io.stop();
    thread_.join();
}

int h2_test_server::connections() const { return impl_->connections_.load(); }
int h2_test_server::requests() const { return impl_->requests_.load(); }
int h2_test_server::max_concurrent_streams_seen() const { return impl_->max_concurrent_.load(); }
int h2_test_server::resets_received() const { return impl_->resets_received_.load(); }
int h2_test_server::goaways_received() const { return impl_->goaways_received_.load(); }
int h2_test_server::streams_open() const { return impl_->concurrent_.load(); }

std::vector<h2_seen_request> h2_test_server::received() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->received;
}

}  // namespace batchgate::test
