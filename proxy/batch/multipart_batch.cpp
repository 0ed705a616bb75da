#include "proxy/batch/multipart_batch.hpp"

#include "proxy/batch/mime_multipart.hpp"
#include "proxy/core/http_semantics.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <algorithm>
#include <limits>

namespace batchgate {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;

batch_error error_at(unsigned status, std::string message, std::size_t line) {
    batch_error e;
    e.status = status;
    if (line != 0) e.message = "line " + std::to_string(line) + ": ";
    e.message += message;
    e.line = line;
    return e;
}

bool only_line_breaks(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n'; });
}

// One application/http part's text → one draft request (PRODUCT.md §1.3).
// `line` is the line the text starts on; `label` names the part in errors.
std::optional<batch_error> parse_part_request(std::string_view text, std::size_t line, const std::string& label,
                                              std::size_t max_head_bytes, draft_request& out) {
    std::size_t i = 0;
    // Blank lines before the request line (OData clients write one or more).
    for (;;) {
        if (text.substr(i).starts_with("\r\n")) {
            i += 2;
        } else if (text.substr(i).starts_with("\n")) {
            i += 1;
        } else {
            break;
        }
        ++line;
    }
    if (i == text.size()) return error_at(400, label + ": the part holds no request", line);
    const std::size_t request_line = line;

    // The head runs to a blank line, or (Google's examples) to the delimiter.
    std::vector<std::string_view> head_lines;
    std::size_t head_bytes = 0;
    while (i < text.size()) {
        const auto nl = text.find('\n', i);
        std::string_view l = text.substr(i, nl == std::string_view::npos ? std::string_view::npos : nl - i);
        i = nl == std::string_view::npos ? text.size() : nl + 1;
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        head_bytes += l.size() + 2;
        if (head_bytes > max_head_bytes) {
            return error_at(431, label + ": request head longer than " + std::to_string(max_head_bytes) +
                                     " bytes (limits.max_header_bytes)", request_line);
        }
        if (l.empty()) break;
        head_lines.push_back(l);
    }
    const std::string_view body = text.substr(i);

    // METHOD SP target [SP HTTP/1.1]: the version may be left off.
    const std::string_view first = head_lines.front();
    const auto sp1 = first.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : first.find(' ', sp1 + 1);
    const auto malformed = [&](const std::string& why) {
        return error_at(400, label + ": malformed request line (" + why + "; expected 'METHOD target HTTP/1.1')",
                        request_line);
    };
    if (sp1 == std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1) return malformed("no target");
    std::string_view version = "HTTP/1.1";
    if (sp2 != std::string_view::npos) {
        version = first.substr(sp2 + 1);
        if (version != "HTTP/1.1" && version != "HTTP/1.0") return malformed("version is not HTTP/1.1");
    }
    std::string head;
    head.reserve(head_bytes + 16);
    head.append(first.substr(0, sp2));
    head += ' ';
    head.append(version);
    head += "\r\n";
    for (std::size_t k = 1; k < head_lines.size(); ++k) {
        head.append(head_lines[k]);
        head += "\r\n";
    }
    head += "\r\n";

    http::request_parser<http::buffer_body> parser;
    parser.eager(false);
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(head.size() + 1, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(head), ec);
    if (ec || !parser.is_header_done()) {
        return error_at(400, label + ": malformed request: " + (ec ? ec.message() : std::string("incomplete head")),
                        request_line);
    }
    if (parser.chunked()) {
        return error_at(400, label + ": Transfer-Encoding in a part is not supported (its body runs to the next "
                                     "delimiter; give a Content-Length or none)", request_line);
    }
    const auto& request = parser.get();
    out.method = std::string(request.method_string());
    std::string host;
    for (const auto& field : request) {
        const auto name = field.name_string();
        if (beast::iequals(name, "content-length")) continue;  // checked below; batchgate sets its own
        if (beast::iequals(name, "host")) {
            host = std::string(field.value());
            continue;
        }
        out.headers.emplace_back(std::string(name), std::string(field.value()));
    }
    // An absolute path with a Host names that authority: the target resolver
    // then checks that it is the batch's own (an OData client's third form).
    const std::string_view target = request.target();
    if (!host.empty() && target.starts_with('/') && !target.starts_with("//")) {
        out.hrefs.push_back("//" + host + std::string(target));
    } else {
        out.hrefs.emplace_back(target);
    }

    if (const auto length = parser.content_length()) {
        if (body.size() < *length || !only_line_breaks(body.substr(static_cast<std::size_t>(*length)))) {
            return error_at(400, label + ": Content-Length says " + std::to_string(*length) +
                                     " bytes, but the part's body before the next delimiter has " +
                                     std::to_string(body.size()),
                            request_line);
        }
        out.body.assign(body.substr(0, static_cast<std::size_t>(*length)));
        out.has_body = true;
    } else {
        std::string_view b = body;
        while (!b.empty() && (b.back() == '\n' || b.back() == '\r')) b.remove_suffix(1);
        while (!b.empty() && (b.front() == '\n' || b.front() == '\r')) b.remove_prefix(1);
        out.body.assign(b);
        out.has_body = !b.empty();
    }
    out.line = request_line;
    return std::nullopt;
}

}  // namespace

class multipart_batch_parser::impl {
public:
    impl(std::string_view content_type, const batch_parse_limits& limits) : limits_(limits) {
        std::string why;
        auto boundary = multipart_boundary(content_type, why);
        if (!boundary) {
            error_ = error_at(400, why, 0);
            return;
        }
        top_ = std::make_unique<level>(*this, false, std::string{});
        scanner_ = std::make_unique<mime_multipart_scanner>(std::move(*boundary), *top_, limits.max_part_header_bytes);
    }

    bool feed(std::string_view bytes) {
        if (error_) return false;
        if (!scanner_->feed(bytes)) {
            take_scan_error(*scanner_);
            return false;
        }
        return true;
    }

    batch_parse_result finish() {
        if (!error_ && !scanner_->finish()) take_scan_error(*scanner_);
        if (error_) {
            batch_parse_result failed;
            failed.error = std::move(error_);
            return failed;
        }
        return finish_batch(std::move(draft_), limits_);
    }

private:
    // One multipart level: the batch itself, or a changeset inside it.
    class level final : public mime_part_handler {
    public:
        level(impl& owner, bool nested, std::string group) : owner_(owner), nested_(nested), group_(std::move(group)) {}

        bool on_part_begin(mime_headers headers, std::size_t line) override {
            part_line_ = line;
            text_line_ = 0;
            text_.clear();
            content_id_.reset();
            // One pass over the part's headers for the three that matter.
            const std::string* type = nullptr;
            const std::string* encoding = nullptr;
            const std::string* id = nullptr;
            for (const auto& [name, value] : headers) {
                if (name.size() == 12 && beast::iequals(name, "content-type"))
                    type = &value;
                else if (name.size() == 25 && beast::iequals(name, "content-transfer-encoding"))
                    encoding = &value;
                else if (name.size() == 10 && beast::iequals(name, "content-id"))
                    id = &value;
            }
            if (type == nullptr) {
                return owner_.fail(error_at(400, "a part without a Content-Type: each part must be application/http "
                                                 "or multipart/mixed (a changeset)", line));
            }
            if (encoding != nullptr) {
                const std::string_view e = trim_ows(*encoding);
                if (!beast::iequals(e, "binary") && !beast::iequals(e, "8bit") && !beast::iequals(e, "7bit")) {
                    return owner_.fail(error_at(400, "Content-Transfer-Encoding " + *encoding +
                                                         " is not supported (binary, 8bit or 7bit)", line));
                }
            }
            if (id != nullptr) {
                std::string_view v = trim_ows(*id);
                if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
                content_id_ = std::string(v);
            }
            const std::string_view media = trim_ows(std::string_view(*type).substr(0, type->find(';')));
            if (beast::iequals(media, "application/http")) {
                kind_ = part_kind::http;
                return true;
            }
            if (beast::iequals(media, "multipart/mixed")) {
                if (nested_) {
                    return owner_.fail(error_at(400, "a multipart/mixed part inside a changeset: batches nest one "
                                                     "changeset deep at most", line));
                }
                std::string why;
                auto boundary = multipart_boundary(*type, why);
                if (!boundary) return owner_.fail(error_at(400, "changeset: " + why, line));
                kind_ = part_kind::changeset;
                changeset_boundary_ = std::move(*boundary);
                ++owner_.changesets_;
                changeset_ = std::make_unique<level>(owner_, true, "changeset " + std::to_string(owner_.changesets_));
                changeset_scanner_.reset();
                return true;
            }
            return owner_.fail(error_at(400, "a part of type " + std::string(media) +
                                                 ": each part must be application/http or multipart/mixed (a changeset)",
                                        line));
        }

        bool on_part_data(std::string_view bytes, std::size_t line) override {
            if (kind_ == part_kind::http) {
                if (text_.empty()) text_line_ = line;
                text_.append(bytes);
                return true;
            }
            if (!changeset_scanner_) {
                changeset_scanner_ = std::make_unique<mime_multipart_scanner>(
                    changeset_boundary_, *changeset_, owner_.limits_.max_part_header_bytes, line);
                changeset_scanner_->refuse_epilogue_text();
            }
            if (!changeset_scanner_->feed(bytes)) {
                owner_.take_scan_error(*changeset_scanner_);
                return false;
            }
            return true;
        }

        bool on_part_end() override {
            if (kind_ == part_kind::changeset) {
                if (!changeset_scanner_) {
                    return owner_.fail(error_at(400, "changeset: an empty part, without its delimiters (--" +
                                                         changeset_boundary_ + ")", part_line_));
                }
                if (!changeset_scanner_->finish()) {
                    owner_.take_scan_error(*changeset_scanner_, "changeset: ");
                    return false;
                }
                return true;
            }
            return owner_.add_request(text_, text_line_ != 0 ? text_line_ : part_line_, std::move(content_id_), group_);
        }

    private:
        enum class part_kind { http, changeset };
        impl& owner_;
        const bool nested_;
        const std::string group_;
        part_kind kind_ = part_kind::http;
        std::size_t part_line_ = 0;
        std::size_t text_line_ = 0;
        std::string text_;
        std::optional<std::string> content_id_;
        std::string changeset_boundary_;
        std::unique_ptr<level> changeset_;
        std::unique_ptr<mime_multipart_scanner> changeset_scanner_;
    };

    bool fail(batch_error e) {
        if (!error_) error_ = std::move(e);
        return false;
    }

    void take_scan_error(const mime_multipart_scanner& scanner, std::string_view prefix = {}) {
        if (error_ || !scanner.error()) return;  // a handler's error was kept already
        const auto& e = *scanner.error();
        error_ = error_at(e.headers_too_large ? 431 : 400, std::string(prefix) + e.message, e.line);
    }

    bool add_request(std::string_view text, std::size_t line, std::optional<std::string> id, const std::string& group) {
        if (draft_.requests.size() == limits_.max_items) {
            return fail(error_at(413, "more than " + std::to_string(limits_.max_items) + " resources", 0));
        }
        draft_request r;
        r.label = "part " + std::to_string(draft_.requests.size() + 1);
        if (id) r.label += " (Content-ID " + *id + ")";
        if (auto e = parse_part_request(text, line, r.label, limits_.max_part_header_bytes, r)) return fail(std::move(*e));
        r.id = std::move(id);
        r.group = group;
        draft_.requests.push_back(std::move(r));
        return true;
    }

    batch_parse_limits limits_;
    std::optional<batch_error> error_;
    batch_draft draft_;
    std::size_t changesets_ = 0;
    std::unique_ptr<level> top_;
    std::unique_ptr<mime_multipart_scanner> scanner_;
};

multipart_batch_parser::multipart_batch_parser(std::string_view content_type, const batch_parse_limits& limits)
    : impl_(std::make_unique<impl>(content_type, limits)) {}

multipart_batch_parser::~multipart_batch_parser() = default;

bool multipart_batch_parser::feed(std::string_view bytes) { return impl_->feed(bytes); }

batch_parse_result multipart_batch_parser::finish() { return impl_->finish(); }

batch_parse_result parse_multipart_batch(std::string_view content_type, std::string_view body,
                                         const batch_parse_limits& limits) {
    multipart_batch_parser parser(content_type, limits);
    parser.feed(body);
    return parser.finish();
}

}  // namespace batchgate
