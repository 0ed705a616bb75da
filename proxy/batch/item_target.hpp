// An item's target as the client wrote it → the absolute path batchgate
// normalizes and routes (PRODUCT.md §1.4). OData and Google clients write
// targets relative to the batch ("users(1)", "../v2/x") or as absolute URIs
// on the batch's own host; RFC 3986 §5 resolves the first kind against the
// batch request's path. An absolute URI (or "//authority/...") is accepted
// only when its authority is the batch request's own Host: batchgate never
// follows a client to another server.
//
// Pure code: no sockets, no configuration beyond the two strings it is made of.
#pragma once

#include <boost/url/url.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace batchgate {

class item_target_resolver {
public:
    // batch_path: the path the batch was posted to ("/odata/$batch"); host:
    // the batch request's Host (HTTP/2: :authority), "" when it had none.
    // Both must outlive the resolver. Nothing is parsed until a target needs
    // it: a batch of absolute paths (the common case) costs no allocation.
    item_target_resolver(std::string_view batch_path, std::string_view host) : batch_path_(batch_path), host_(host) {}

    // On success `out` is an absolute path (with the query, if any), still to
    // be normalized (dot segments above the root stay visible, as "/../x", so
    // that normalize_target refuses them). nullopt: fine; otherwise why not.
    // An absolute path is returned as is, without parsing.
    std::optional<std::string> resolve(std::string_view target, std::string& out) const;

private:
    std::string_view batch_path_;
    std::string_view host_;
    mutable std::optional<boost::urls::url> base_;  // http://batchgate<batch_path>, on the first relative target
};

// "Example.COM:80" with scheme "http" → "example.com"; the port stays unless
// it is the scheme's default. Exposed for the tests.
std::string canonical_authority(std::string_view authority, std::string_view scheme);

}  // namespace batchgate
