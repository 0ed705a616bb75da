#include "proxy/batch/item_target.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>

namespace batchgate {

namespace urls = boost::urls;

std::string canonical_authority(std::string_view authority, std::string_view scheme) {
    std::string out(authority);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    // A port is what follows the last ':' when the host is not an IPv6
    // literal's inside ("[::1]:8080" has one, "[::1]" has none).
    const auto colon = out.rfind(':');
    if (colon != std::string::npos && out.find(']', colon) == std::string::npos) {
        const std::string_view port = std::string_view(out).substr(colon + 1);
        const bool https = scheme == "https";
        if (port.empty() || (!https && port == "80") || (https && port == "443")) out.resize(colon);
    }
    return out;
}

std::optional<std::string> item_target_resolver::resolve(std::string_view target, std::string& out) const {
    // The common case costs nothing: an absolute path goes to normalize_target.
    if (!target.empty() && target.front() == '/' && !target.starts_with("//")) {
        out.assign(target);
        return std::nullopt;
    }
    if (target.empty()) return "target is empty";
    auto parsed = urls::parse_uri_reference(target);
    if (!parsed) return "target is not a URI reference (RFC 3986): " + std::string(parsed.error().message());
    const urls::url_view& ref = *parsed;
    if (ref.has_fragment()) return "target has a fragment ('#'), which is never sent";
    if (ref.has_authority()) {
        const std::string scheme = ref.has_scheme() ? std::string(ref.scheme()) : "http";
        if (ref.has_scheme() && ref.scheme_id() != urls::scheme::http && ref.scheme_id() != urls::scheme::https)
            return "target scheme '" + std::string(ref.scheme()) + "' is not http or https";
        if (ref.has_userinfo()) return "target names a user (userinfo), which batchgate never forwards";
        const std::string authority = canonical_authority(ref.encoded_authority(), scheme);
        if (host_.empty() || authority != canonical_authority(host_, scheme))
            return "target names another server (" + std::string(ref.encoded_authority()) +
                   "); only this batch's own Host is accepted";
        out.assign(ref.encoded_path());
        if (out.empty()) out = "/";
        if (ref.has_query()) {
            out += '?';
            out += ref.encoded_query();
        }
        return std::nullopt;
    }
    if (ref.has_scheme()) return "target has a scheme but no authority";
    if (!base_) {
        // The batch path comes from the configuration (is_batch_target
        // matched it), so it parses; an odd one only makes relative targets
        // fail. parse_uri returns a view: the text must outlive the copy.
        const std::string text = "http://batchgate" + std::string(batch_path_);
        auto parsed = urls::parse_uri(text);
        base_.emplace(parsed ? urls::url(*parsed) : urls::url());
    }
    if (base_->empty()) return "relative target, and the batch path is not a URI path";
    urls::url resolved;
    if (auto r = urls::resolve(*base_, ref, resolved); !r)
        return "cannot resolve the relative target: " + std::string(r.error().message());
    out.assign(resolved.encoded_path());
    if (resolved.has_query()) {
        out += '?';
        out += resolved.encoded_query();
    }
    return std::nullopt;
}

}  // namespace batchgate
