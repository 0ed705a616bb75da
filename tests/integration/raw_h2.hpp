// Hand-made HTTP/2 frames over a harness client, for the protections a real
// HTTP/2 library will not let a test break on purpose: more streams than the
// server allows, endless CONTINUATION frames, a content-length the DATA does
// not match, streams sent after a GOAWAY. HPACK is literal-only (no
// Huffman, no indexing), which every decoder must accept (RFC 7541 §6.2.2).
#pragma once

#include "tests/integration/harness.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace batchgate::test::raw_h2 {

enum frame_type : std::uint8_t { data = 0, headers = 1, rst_stream = 3, settings = 4, goaway = 7, continuation = 9 };
enum frame_flag : std::uint8_t { end_stream = 0x1, ack = 0x1, end_headers = 0x4 };

inline constexpr std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

inline std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream, std::string_view payload) {
    std::string out;
    const auto n = payload.size();
    out += static_cast<char>((n >> 16) & 0xff);
    out += static_cast<char>((n >> 8) & 0xff);
    out += static_cast<char>(n & 0xff);
    out += static_cast<char>(type);
    out += static_cast<char>(flags);
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((stream >> shift) & 0xff);
    out += payload;
    return out;
}

// RFC 7541 §5.1 integer with a 7-bit prefix (string lengths, H bit clear).
inline std::string hpack_length(std::size_t n) {
    std::string out;
    if (n < 127) {
        out += static_cast<char>(n);
        return out;
    }
    out += static_cast<char>(127);
    n -= 127;
    while (n >= 128) {
        out += static_cast<char>((n % 128) | 0x80);
        n /= 128;
    }
    out += static_cast<char>(n);
    return out;
}

// "Literal header field without indexing, new name" (RFC 7541 §6.2.2).
inline std::string literal(std::string_view name, std::string_view value) {
    std::string out(1, '\0');
    out += hpack_length(name.size());
    out += name;
    out += hpack_length(value.size());
    out += value;
    return out;
}

inline std::string request_block(std::string_view method, std::string_view path,
                                 const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    std::string block = literal(":method", method) + literal(":scheme", "http") +
                        literal(":authority", "batchgate.test") + literal(":path", path);
    for (const auto& [name, value] : extra) block += literal(name, value);
    return block;
}

struct received_frame {
    std::uint8_t type = 0, flags = 0;
    std::uint32_t stream = 0;
    std::string payload;

    // RST_STREAM's code, or GOAWAY's (after its last-stream-id).
    std::uint32_t error_code() const {
        const std::size_t at = type == goaway ? 4 : 0;
        if (payload.size() < at + 4) return 0;
        std::uint32_t code = 0;
        for (std::size_t i = 0; i < 4; ++i) code = (code << 8) | static_cast<unsigned char>(payload[at + i]);
        return code;
    }
    std::uint32_t goaway_last_stream() const {
        std::uint32_t id = 0;
        for (std::size_t i = 0; i < 4 && i < payload.size(); ++i) id = (id << 8) | static_cast<unsigned char>(payload[i]);
        return id & 0x7fffffffu;
    }
};

// A connection that has sent the preface and its (empty) SETTINGS and read
// the server's SETTINGS; it acknowledges them unless told not to (so the
// server's new limits are not in force yet).
class connection {
public:
    explicit connection(std::uint16_t port, int timeout_ms = 10000, bool acknowledge_settings = true)
        : c_(port, timeout_ms) {
        c_.send_raw(std::string(preface) + frame(settings, 0, 0, ""));
        for (;;) {
            auto f = next();
            BOOST_REQUIRE_MESSAGE(f.has_value(), "the server closed before its SETTINGS");
            if (f->type == settings && !(f->flags & ack)) break;
        }
        if (acknowledge_settings) send(frame(settings, ack, 0, ""));
    }

    void send(std::string_view bytes) { c_.send_raw(bytes); }

    // The next frame, or nothing once the server closed the connection. A
    // server that neither sends nor closes before the deadline fails the test.
    std::optional<received_frame> next() {
        if (!fill(9)) return std::nullopt;
        received_frame f;
        const std::size_t length = (static_cast<unsigned char>(in_[0]) << 16) |
                                   (static_cast<unsigned char>(in_[1]) << 8) | static_cast<unsigned char>(in_[2]);
        f.type = static_cast<std::uint8_t>(in_[3]);
        f.flags = static_cast<std::uint8_t>(in_[4]);
        for (int i = 5; i < 9; ++i) f.stream = (f.stream << 8) | static_cast<unsigned char>(in_[i]);
        f.stream &= 0x7fffffffu;
        if (!fill(9 + length)) return std::nullopt;
        f.payload = in_.substr(9, length);
        in_.erase(0, 9 + length);
        return f;
    }

    // Frames until one matches `wanted` (returned) or the server closes
    // (nothing). Every frame read on the way is kept in seen().
    template <class Predicate>
    std::optional<received_frame> until(Predicate wanted) {
        while (auto f = next()) {
            seen_.push_back(*f);
            if (wanted(*f)) return f;
        }
        return std::nullopt;
    }

    const std::vector<received_frame>& seen() const { return seen_; }

private:
    bool fill(std::size_t n) {
        char chunk[16 * 1024];
        while (in_.size() < n) {
            const auto got = c_.read_some_or_close(asio::buffer(chunk));
            if (got == 0) return false;
            in_.append(chunk, got);
        }
        return true;
    }

    client c_;
    std::string in_;
    std::vector<received_frame> seen_;
};

}  // namespace batchgate::test::raw_h2
