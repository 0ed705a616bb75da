#include "proxy/batch/mime_multipart.hpp"

#include "proxy/core/http_semantics.hpp"

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <cctype>

namespace batchgate {

namespace {

bool is_bchar(char c) {
    // RFC 2046 §5.1.1 bcharsnospace, plus the space (not last).
    if (std::isalnum(static_cast<unsigned char>(c))) return true;
    constexpr std::string_view others = "'()+_,-./:=? ";
    return others.find(c) != std::string_view::npos;
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type, std::string& why) {
    // Parameters after the media type: name=token or name="quoted string".
    std::string_view rest = content_type;
    const auto semi = rest.find(';');
    if (semi == std::string_view::npos) {
        why = "multipart Content-Type has no boundary parameter";
        return std::nullopt;
    }
    rest.remove_prefix(semi + 1);
    std::optional<std::string> boundary;
    while (!rest.empty()) {
        rest = trim_ows(rest);
        const auto eq = rest.find('=');
        if (eq == std::string_view::npos) break;
        const std::string_view name = trim_ows(rest.substr(0, eq));
        rest.remove_prefix(eq + 1);
        rest = trim_ows(rest);
        std::string value;
        if (!rest.empty() && rest.front() == '"') {
            std::size_t i = 1;
            bool closed = false;
            for (; i < rest.size(); ++i) {
                if (rest[i] == '\\' && i + 1 < rest.size()) {
                    value += rest[++i];
                } else if (rest[i] == '"') {
                    closed = true;
                    ++i;
                    break;
                } else {
                    value += rest[i];
                }
            }
            if (!closed) {
                why = "multipart Content-Type has an unterminated quoted parameter";
                return std::nullopt;
            }
            rest.remove_prefix(i);
            const auto next = rest.find(';');
            rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
        } else {
            const auto next = rest.find(';');
            value = std::string(trim_ows(rest.substr(0, next)));
            rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
        }
        if (boost::beast::iequals(name, "boundary")) {
            if (boundary) {
                why = "multipart Content-Type has two boundary parameters";
                return std::nullopt;
            }
            boundary = std::move(value);
        }
    }
    if (!boundary) {
        why = "multipart Content-Type has no boundary parameter";
        return std::nullopt;
    }
    if (boundary->empty() || boundary->size() > 70) {
        why = "multipart boundary must be 1 to 70 characters (RFC 2046), it has " + std::to_string(boundary->size());
        return std::nullopt;
    }
    if (!std::all_of(boundary->begin(), boundary->end(), is_bchar) || boundary->back() == ' ') {
        why = "multipart boundary has a character RFC 2046 does not allow (letters, digits, '()+_,-./:=? and "
              "inner spaces only)";
        return std::nullopt;
    }
    return boundary;
}

mime_multipart_scanner::mime_multipart_scanner(std::string boundary, mime_part_handler& handler,
                                               std::size_t max_header_bytes, std::size_t first_line)
    : delimiter_("--" + boundary), handler_(handler), max_header_bytes_(max_header_bytes), line_(first_line) {}

bool mime_multipart_scanner::fail(std::string message, bool headers_too_large) {
    if (!error_) error_ = mime_scan_error{std::move(message), line_, headers_too_large};
    state_ = state::failed;
    return false;
}

bool mime_multipart_scanner::handler_stopped() {
    state_ = state::failed;  // the handler keeps its own error
    return false;
}

void mime_multipart_scanner::consume(std::size_t n) {
    const auto begin = buf_.begin() + static_cast<std::ptrdiff_t>(pos_);
    line_ += static_cast<std::size_t>(std::count(begin, begin + static_cast<std::ptrdiff_t>(n), '\n'));
    if (n != 0) at_line_start_ = buf_[pos_ + n - 1] == '\n';
    pos_ += n;
}

bool mime_multipart_scanner::feed(std::string_view bytes) {
    if (state_ == state::failed) return false;
    if (state_ == state::epilogue && !strict_epilogue_) return true;  // ignored, RFC 2046
    if (pos_ != 0) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(bytes);
    while (step()) {
    }
    return state_ != state::failed;
}

bool mime_multipart_scanner::finish() {
    if (state_ == state::failed) return false;
    if (state_ != state::epilogue) {
        return fail(state_ == state::preamble ? "no multipart delimiter (--" + delimiter_.substr(2) +
                                                     ") at the start of a line"
                                              : "the multipart body ends without its closing delimiter (" +
                                                    delimiter_ + "--)");
    }
    return true;
}

bool mime_multipart_scanner::step() {
    switch (state_) {
    case state::preamble: return scan_preamble();
    case state::headers: return scan_headers();
    case state::body: return scan_body();
    case state::epilogue: {
        if (strict_epilogue_) {
            const auto text = std::string_view(buf_).substr(pos_).find_first_not_of(" \t\r\n");
            if (text != std::string_view::npos) {
                consume(text);
                return fail("text after the closing delimiter (" + delimiter_ +
                            "--); a part there needs a delimiter of its own");
            }
        }
        consume(buf_.size() - pos_);
        return false;
    }
    case state::failed: return false;
    }
    return false;
}

// Looks at what follows a boundary at `at` (just past "--boundary"): "--"
// closes; transport padding then a line break opens a part. `end` is where
// the delimiter (and its line break) ends.
mime_multipart_scanner::delimiter mime_multipart_scanner::classify(std::string_view buf, std::size_t at, std::size_t& end) {
    if (buf.size() - at < 2) return delimiter::need_more;
    if (buf[at] == '-' && buf[at + 1] == '-') {
        end = at + 2;
        return delimiter::close;
    }
    std::size_t q = at;
    while (q < buf.size() && (buf[q] == ' ' || buf[q] == '\t')) ++q;
    if (q - at > max_transport_padding) return delimiter::none;
    if (q == buf.size()) return delimiter::need_more;
    if (buf[q] == '\n') {
        end = q + 1;
        return delimiter::part;
    }
    if (buf[q] != '\r') return delimiter::none;
    if (q + 1 == buf.size()) return delimiter::need_more;
    if (buf[q + 1] != '\n') return delimiter::none;
    end = q + 2;
    return delimiter::part;
}

bool mime_multipart_scanner::scan_preamble() {
    const std::string_view buf(buf_);
    std::size_t from = pos_;
    for (;;) {
        const auto p = buf.find(delimiter_, from);
        if (p == std::string_view::npos) {
            // Keep what could be the start of a delimiter split across reads.
            const std::size_t keep = std::min(buf.size() - pos_, delimiter_.size());
            consume(buf.size() - pos_ - keep);
            return false;
        }
        const bool line_start = p == pos_ ? at_line_start_ : buf[p - 1] == '\n';
        if (!line_start) {
            from = p + 1;
            continue;
        }
        std::size_t end = 0;
        switch (classify(buf, p + delimiter_.size(), end)) {
        case delimiter::need_more: consume(p - pos_); return false;
        case delimiter::none: from = p + 1; continue;
        case delimiter::close:
            consume(end - pos_);
            state_ = state::epilogue;
            return true;
        case delimiter::part:
            consume(end - pos_);
            begin_headers();
            return true;
        }
    }
}

bool mime_multipart_scanner::scan_headers() {
    const std::string_view buf(buf_);
    const auto nl = buf.find('\n', pos_);
    if (nl == std::string_view::npos) {
        // Refuse early only what the whole line is sure to break: it will
        // count at least its bytes so far (a CR at the end may be its line
        // break) plus two, unless it becomes the blank line or a delimiter,
        // which count nothing. Same verdict however the body was split.
        std::string_view partial = buf.substr(pos_);
        if (partial.ends_with('\r')) partial.remove_suffix(1);
        const bool maybe_delimiter = partial.size() <= delimiter_.size() + max_transport_padding + 2 &&
                                     (partial.starts_with(delimiter_) || std::string_view(delimiter_).starts_with(partial));
        if (!partial.empty() && !maybe_delimiter && header_bytes_ + partial.size() + 2 > max_header_bytes_)
            return fail("part headers longer than " + std::to_string(max_header_bytes_) + " bytes (limits.max_header_bytes)", true);
        return false;
    }
    std::string_view line = buf.substr(pos_, nl - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    if (line.empty()) {
        consume(nl + 1 - pos_);
        state_ = state::body;
        body_start_ = true;
        if (!handler_.on_part_begin(std::move(headers_), header_line_)) return handler_stopped();
        headers_.clear();
        return true;
    }
    // A delimiter where a header line was due: a part with headers and no body.
    if (line.starts_with(delimiter_)) {
        std::size_t end = 0;
        const auto kind = classify(buf, pos_ + delimiter_.size(), end);
        if (kind == delimiter::need_more) return false;
        if (kind != delimiter::none) {
            if (!handler_.on_part_begin(std::move(headers_), header_line_)) return handler_stopped();
            return end_part(kind, end);
        }
    }
    // Counted once the line is known to be a header line (a delimiter that
    // waits for its next bytes comes back here).
    header_bytes_ += line.size() + 2;
    if (header_bytes_ > max_header_bytes_)
        return fail("part headers longer than " + std::to_string(max_header_bytes_) + " bytes (limits.max_header_bytes)", true);
    if (line.front() == ' ' || line.front() == '\t') {
        if (headers_.empty()) return fail("part header block begins with a folded line");
        auto& value = headers_.back().second;
        value += ' ';
        value += trim_ows(line);
    } else {
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0 || trim_ows(line.substr(0, colon)).size() != colon)
            return fail("malformed part header line (expected 'Name: value')");
        headers_.emplace_back(std::string(line.substr(0, colon)), std::string(trim_ows(line.substr(colon + 1))));
    }
    consume(nl + 1 - pos_);
    return true;
}

bool mime_multipart_scanner::scan_body() {
    const std::string_view buf(buf_);
    // The body may begin with the delimiter at once: the blank line that
    // ended the headers gave it its line start (an empty body).
    if (body_start_) {
        if (buf.size() - pos_ < delimiter_.size() + 2 && std::string_view(delimiter_).starts_with(buf.substr(pos_)))
            return false;
        body_start_ = false;
        if (buf.substr(pos_).starts_with(delimiter_)) {
            std::size_t end = 0;
            const auto kind = classify(buf, pos_ + delimiter_.size(), end);
            if (kind == delimiter::need_more) {
                body_start_ = true;
                return false;
            }
            if (kind != delimiter::none) return end_part(kind, end);
        }
    }
    std::size_t from = pos_;
    for (;;) {
        const auto p = buf.find(delimiter_, from);
        if (p == std::string_view::npos || (p > pos_ && buf[p - 1] != '\n') || p == pos_) {
            if (p == std::string_view::npos) {
                // Nothing yet: hand on all but a tail that could hold the
                // start of a delimiter and the CR before it.
                const std::size_t keep = std::min(buf.size() - pos_, delimiter_.size() + 2);
                const std::size_t n = buf.size() - pos_ - keep;
                if (n != 0) {
                    if (!handler_.on_part_data(buf.substr(pos_, n), line_)) return handler_stopped();
                    consume(n);
                }
                return false;
            }
            from = p + 1;  // inside a line, or at pos_ with the line break already handed on
            continue;
        }
        std::size_t end = 0;
        const auto kind = classify(buf, p + delimiter_.size(), end);
        // The line break before the boundary belongs to the delimiter.
        std::size_t data_end = p - 1;
        if (data_end > pos_ && buf[data_end - 1] == '\r') --data_end;
        if (kind == delimiter::none) {
            from = p + 1;
            continue;
        }
        if (data_end > pos_) {
            if (!handler_.on_part_data(buf.substr(pos_, data_end - pos_), line_)) return handler_stopped();
            consume(data_end - pos_);
        }
        if (kind == delimiter::need_more) return false;
        return end_part(kind, end);
    }
}

bool mime_multipart_scanner::end_part(delimiter kind, std::size_t end) {
    if (!handler_.on_part_end()) return handler_stopped();
    consume(end - pos_);
    if (kind == delimiter::close) {
        state_ = state::epilogue;
    } else {
        begin_headers();
    }
    return true;
}

void mime_multipart_scanner::begin_headers() {
    headers_.clear();
    header_bytes_ = 0;
    header_line_ = line_;
    state_ = state::headers;
}

}  // namespace batchgate
