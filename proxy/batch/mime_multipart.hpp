// The MIME multipart delimiter scan (RFC 2046 §5.1.1), fed bytes as they
// arrive. It finds the parts of one multipart body and hands each part's
// header lines and body bytes to its owner; what a part means is the owner's
// business (multipart_batch.hpp). Pure code, no sockets: fuzzable alone.
//
// The rules it keeps:
// - A delimiter is CRLF "--" boundary at the start of a line; the CRLF before
//   it belongs to the delimiter, not to the part before. The first delimiter
//   may open the body without a CRLF in front.
// - Text before the first delimiter (preamble) and after the closing one
//   (epilogue) is ignored.
// - After the boundary, transport padding (spaces, tabs) may come before the
//   line break; "--" makes it the closing delimiter. Anything else there means
//   the text only began like a delimiter and is part content.
// - Bare LF is accepted where CRLF is due (files written on Unix and sent with
//   curl); the LF-only delimiter then owns just the LF.
// - Part header lines are bounded (max_header_bytes per part) and may be
//   folded (obsolete, but some clients still fold long Content-Types).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace batchgate {

using mime_headers = std::vector<std::pair<std::string, std::string>>;

// What the scan found; returning false from any call stops it (the owner
// found an error of its own and says so through its own means).
class mime_part_handler {
public:
    virtual ~mime_part_handler() = default;
    // A part begins: its headers (names as written, values trimmed), and the
    // 1-based line of its first header line.
    virtual bool on_part_begin(mime_headers headers, std::size_t line) = 0;
    // Body bytes of the current part, in order, in pieces of any size. `line`
    // is the 1-based line the piece starts on.
    virtual bool on_part_data(std::string_view bytes, std::size_t line) = 0;
    // The current part's body ended (at a delimiter).
    virtual bool on_part_end() = 0;
};

struct mime_scan_error {
    std::string message;
    std::size_t line = 0;  // 1-based
    bool headers_too_large = false;  // a part's header block passed max_header_bytes
};

// The boundary parameter of a multipart Content-Type ("multipart/mixed;
// boundary=b1", or boundary="quoted form"): 1–70 characters of RFC 2046's
// bchars, not ending in a space. nullopt and a reason otherwise.
std::optional<std::string> multipart_boundary(std::string_view content_type, std::string& why);

class mime_multipart_scanner {
public:
    // first_line: the line number (1-based) the body starts on, for nested
    // bodies whose text begins mid-document.
    mime_multipart_scanner(std::string boundary, mime_part_handler& handler, std::size_t max_header_bytes,
                           std::size_t first_line = 1);

    // Both return false once an error was found: the handler's (it returned
    // false) or the scanner's own (error() says what).
    bool feed(std::string_view bytes);
    // The body ended: the closing delimiter must have been seen.
    bool finish();

    // RFC 2046 ignores the epilogue; inside a changeset, text there is a
    // request the client meant to send without a delimiter of its own (o.js
    // writes that), so it is refused rather than lost.
    void refuse_epilogue_text() { strict_epilogue_ = true; }

    const std::optional<mime_scan_error>& error() const { return error_; }

private:
    enum class state { preamble, headers, body, epilogue, failed };
    // What follows a boundary decides whether it is a delimiter.
    enum class delimiter { none, need_more, part, close };

    bool step();  // one unit of progress on buf_; false: needs more bytes (or failed)
    bool scan_preamble();
    bool scan_headers();
    bool scan_body();
    bool end_part(delimiter kind, std::size_t end);  // at a delimiter ending at `end`
    void begin_headers();
    // Spaces and tabs after a boundary (RFC 2046 transport padding) allowed
    // before its line break: RFC 5322's line length, past which it is text.
    static constexpr std::size_t max_transport_padding = 998;
    static delimiter classify(std::string_view buf, std::size_t at, std::size_t& end);
    bool fail(std::string message, bool headers_too_large = false);
    bool handler_stopped();
    void consume(std::size_t n);  // drop n bytes of buf_, counting lines

    std::string delimiter_;  // "--" boundary
    mime_part_handler& handler_;
    std::size_t max_header_bytes_;
    std::string buf_;        // bytes not yet consumed
    std::size_t pos_ = 0;    // buf_'s first unconsumed byte
    std::size_t line_;       // line of buf_[pos_]
    state state_ = state::preamble;
    bool at_line_start_ = true;  // buf_[pos_] begins a line (preamble)
    bool body_start_ = false;    // buf_[pos_] is the first byte of a part's body
    bool strict_epilogue_ = false;
    mime_headers headers_;
    std::size_t header_bytes_ = 0;
    std::size_t header_line_ = 0;
    std::optional<mime_scan_error> error_;
};

}  // namespace batchgate
