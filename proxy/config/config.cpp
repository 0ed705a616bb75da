// YAML → config structs. The loader is strict (unknown keys, wrong types and
// bad values are errors) because a typo that silently falls back to a default
// is worse in a proxy than a refusal to start; every error names the file,
// line:column and key path so the operator can go straight to it.
//
// Defaults live only in the struct initialisers of config.hpp: the loader
// starts from a default-constructed struct and overrides what the file sets.
#include "proxy/config/config.hpp"
#include "proxy/config/config_keys.hpp"

#include <yaml-cpp/yaml.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <initializer_list>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <system_error>
#include <utility>

namespace batchgate {

// ---------------------------------------------------------------------------
// Units and addresses
// ---------------------------------------------------------------------------

namespace {

namespace ip = boost::asio::ip;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::size_t count_digits(std::string_view text) {
    std::size_t n = 0;
    while (n < text.size() && is_digit(text[n])) ++n;
    return n;
}

// Non-empty, digits only (no sign, no spaces, no "0x"), no overflow.
std::optional<std::uint64_t> parse_whole(std::string_view text) {
    if (text.empty() || count_digits(text) != text.size()) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

// A number followed by a unit from `units`; nullopt on unknown unit or overflow
// of `limit`.
std::optional<std::uint64_t> parse_with_unit(
    std::string_view text, std::initializer_list<std::pair<std::string_view, std::uint64_t>> units,
    std::uint64_t limit) {
    const std::size_t digits = count_digits(text);
    const auto value = parse_whole(text.substr(0, digits));
    if (!value) return std::nullopt;
    const std::string_view unit = text.substr(digits);
    for (const auto& [name, factor] : units) {
        if (unit != name) continue;
        if (*value > limit / factor) return std::nullopt;
        return *value * factor;
    }
    return std::nullopt;
}

bool is_ipv4_literal(std::string_view text) {
    boost::system::error_code ec;
    ip::make_address_v4(std::string(text), ec);
    return !ec;
}

bool is_ipv6_literal(std::string_view text) {
    boost::system::error_code ec;
    ip::make_address_v6(std::string(text), ec);
    return !ec;
}

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_';
}

// An IPv4 literal or a DNS name (labels of letters, digits, '-', '_'; '_' because
// container and service-discovery names use it). A name whose last label is
// numeric is an IPv4 literal gone wrong ("10.0.0.256", "10.1"), never a name.
bool is_valid_host(std::string_view host) {
    if (host.empty() || host.size() > 254) return false;
    if (is_ipv4_literal(host)) return true;
    std::string_view name = host;
    if (name.back() == '.') name.remove_suffix(1);  // fully qualified "example.com."
    if (name.empty() || name.size() > 253) return false;
    std::string_view last_label;
    while (true) {
        const auto dot = name.find('.');
        const std::string_view label = name.substr(0, dot);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        if (!std::all_of(label.begin(), label.end(), is_name_char)) return false;
        last_label = label;
        if (dot == std::string_view::npos) break;
        name.remove_prefix(dot + 1);
    }
    return count_digits(last_label) != last_label.size();
}

bool is_header_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

char to_lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string host_port::text() const {
    std::string out;
    if (host.find(':') != std::string::npos) {
        out.append("[").append(host).append("]");
    } else {
        out = host;
    }
    out.append(":").append(std::to_string(port));
    return out;
}

std::optional<duration> parse_duration(std::string_view text) {
    // Bounded so that the value still fits when converted to nanoseconds,
    // which is what steady_clock and Asio timers use internally.
    constexpr auto limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / 1'000'000);
    const auto ms = parse_with_unit(text, {{"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000}}, limit);
    if (!ms) return std::nullopt;
    return duration(static_cast<duration::rep>(*ms));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    return parse_with_unit(text,
                           {{"", 1},
                            {"B", 1},
                            {"KiB", KiB},
                            {"MiB", MiB},
                            {"GiB", GiB},
                            {"KB", 1'000},
                            {"MB", 1'000'000},
                            {"GB", 1'000'000'000}},
                           std::numeric_limits<std::uint64_t>::max());
}

std::optional<host_port> parse_host_port(std::string_view text, bool allow_port_zero) {
    std::string_view host;
    std::string_view port_text;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
        if (!is_ipv6_literal(host)) return std::nullopt;
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        // An unbracketed IPv6 address ("::1:80") cannot be split unambiguously.
        if (host.find(':') != std::string_view::npos || !is_valid_host(host)) return std::nullopt;
    }
    if (port_text.size() > 5) return std::nullopt;
    const auto port = parse_whole(port_text);
    if (!port || *port > 65535 || (*port == 0 && !allow_port_zero)) return std::nullopt;
    return host_port{std::string(host), static_cast<std::uint16_t>(*port)};
}

// ---------------------------------------------------------------------------
// The loader
// ---------------------------------------------------------------------------

namespace {

// Config files are small; the cap keeps "--config /dev/zero" from eating memory.
constexpr std::size_t max_file_bytes = 16 * MiB;

// Longest duration accepted anywhere: far beyond any sensible timeout, and
// small enough that "now + timeout" can never overflow a clock.
constexpr duration max_duration{365LL * 24 * 3'600'000};

constexpr std::uint64_t no_max = std::numeric_limits<std::uint64_t>::max();

// Sizes are parsed as 64-bit and some fields are size_t.
static_assert(sizeof(std::size_t) >= sizeof(std::uint64_t), "batchgate needs a 64-bit size_t");

// A YAML value together with where it is, for messages.
struct field {
    YAML::Node node;
    YAML::Mark mark;
    std::string path;
};

std::string child_path(const std::string& parent, std::string_view key) {
    if (parent.empty()) return std::string(key);
    std::string out = parent;
    out.append(".").append(key);
    return out;
}

std::string index_path(const std::string& parent, std::size_t index) {
    return parent + "[" + std::to_string(index) + "]";
}

// What was found instead of what was expected, for "expected X, got Y".
std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map: return "a map";
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
        default: return "nothing";
    }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// Why OpenSSL cannot load `path` as a CA bundle (PEM certificates), if it cannot.
std::optional<std::string> ca_file_error(const std::string& path) {
    std::unique_ptr<X509_STORE, void (*)(X509_STORE*)> store(X509_STORE_new(), X509_STORE_free);
    ERR_clear_error();
    if (store && X509_STORE_load_file(store.get(), path.c_str()) == 1) return std::nullopt;
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    const char* reason = code ? ERR_reason_error_string(code) : nullptr;
    return reason ? std::string(reason) : std::string("not a PEM certificate file");
}

// The key the user most likely meant, if one is close enough to suggest.
std::optional<std::string_view> closest_key(std::string_view typed, config_keys::key_list known) {
    // Two edits for short words, a third of the word for long ones
    // ("max_header_size" → "max_header_bytes"); further away is another word.
    const std::size_t limit = std::max<std::size_t>(2, typed.size() / 3);
    std::optional<std::string_view> best;
    std::size_t best_distance = limit + 1;
    for (std::string_view candidate : known) {
        const std::size_t d = edit_distance(typed, candidate);
        if (d < best_distance) {
            best = candidate;
            best_distance = d;
        }
    }
    return best;
}

class loader;

// The entries of one YAML map, checked for key type, duplicates and (unless
// the keys are names chosen by the user) unknown keys.
class map_reader {
public:
    map_reader(const loader& l, const field& map, config_keys::key_list known);
    // Keys are user-chosen names (the backends map): no unknown-key check.
    map_reader(const loader& l, const field& map);

    struct map_entry {
        std::string name;
        YAML::Mark key_mark;
        field value;
    };

    std::optional<field> get(std::string_view key) const {
        const auto it = index_.find(key);
        if (it == index_.end()) return std::nullopt;
        return entries_[it->second].value;
    }
    const field& self() const { return self_; }
    const std::vector<map_entry>& entries() const { return entries_; }

private:
    void read(const loader& l, const config_keys::key_list* known);

    field self_;
    std::vector<map_entry> entries_;                        // in file order
    std::map<std::string, std::size_t, std::less<>> index_;  // name → entries_ index
};

class loader {
public:
    explicit loader(std::string source) : source_(std::move(source)) {}

    config load(std::string_view text) const {
        const field root = parse_document(text);
        config c;
        c.source = source_;
        read_config(root, c);
        return c;
    }

    [[noreturn]] void fail(const YAML::Mark& mark, std::string_view path, std::string_view message) const {
        // yaml-cpp marks are 0-based; nodes without a position (-1) show as 1:1.
        const int line = mark.line >= 0 ? mark.line + 1 : 1;
        const int column = mark.column >= 0 ? mark.column + 1 : 1;
        std::string what = source_;
        what.append(":").append(std::to_string(line)).append(":").append(std::to_string(column));
        what.append(": ").append(path.empty() ? "(root)" : path).append(": ").append(message);
        throw config_error(what);
    }
    [[noreturn]] void fail(const field& f, std::string_view message) const { fail(f.mark, f.path, message); }

    // --- Shapes -------------------------------------------------------------

    std::vector<field> list(const field& f) const {
        if (!f.node.IsSequence()) fail(f, "expected a list, got " + describe(f.node));
        std::vector<field> items;
        std::size_t index = 0;
        for (auto it = f.node.begin(); it != f.node.end(); ++it) {
            const YAML::Node item = *it;  // a copy: the iterator yields a temporary
            // An empty list entry ("-" alone) has no useful mark of its own.
            const YAML::Mark mark = item.IsNull() ? f.mark : item.Mark();
            items.push_back(field{item, mark, index_path(f.path, index++)});
        }
        return items;
    }

    std::string text(const field& f, std::string_view expected = "a string") const {
        if (!f.node.IsScalar()) fail(f, "expected " + std::string(expected) + ", got " + describe(f.node));
        return f.node.Scalar();
    }

    std::uint64_t whole(const field& f, std::uint64_t min, std::uint64_t max) const {
        if (!f.node.IsScalar()) fail(f, "expected a whole number, got " + describe(f.node));
        const std::string& s = f.node.Scalar();
        if (s.empty() || count_digits(s) != s.size()) fail(f, "expected a whole number, got " + describe(f.node));
        const auto value = parse_whole(s);  // nullopt here means beyond 64 bits
        const bool bounded = max != no_max;
        if (!value || *value < min || *value > max) {
            if (bounded) fail(f, "must be between " + std::to_string(min) + " and " + std::to_string(max));
            if (!value) fail(f, "is too large");
            fail(f, "must be at least " + std::to_string(min));
        }
        return *value;
    }

    // YAML 1.2 core booleans only: "yes"/"on" (YAML 1.1) are refused rather
    // than guessed at.
    bool boolean(const field& f) const {
        if (f.node.IsScalar()) {
            const std::string& s = f.node.Scalar();
            if (s == "true" || s == "True" || s == "TRUE") return true;
            if (s == "false" || s == "False" || s == "FALSE") return false;
        }
        fail(f, "expected true or false, got " + describe(f.node));
    }

    std::size_t count(const field& f, std::uint64_t min, std::uint64_t max = no_max) const {
        const std::uint64_t limit = std::min<std::uint64_t>(max, std::numeric_limits<std::size_t>::max());
        return static_cast<std::size_t>(whole(f, min, limit));
    }

    // Every duration in the config is a timeout or deadline, for which zero
    // would mean "fail at once" or "wait forever" depending on who reads it;
    // refusing it removes the ambiguity.
    duration timeout(const field& f) const {
        const auto d = parse_duration(text(f, "a duration"));
        if (!d)
            fail(f, "bad duration " + describe(f.node) +
                        "; write a whole number with a unit: 250ms, 5s, 1m or 1h");
        if (d->count() == 0) fail(f, "must be greater than 0");
        if (*d > max_duration) fail(f, "must be at most 8760h (one year)");
        return *d;
    }

    std::uint64_t size(const field& f) const {
        const auto bytes = parse_size(text(f, "a size"));
        if (!bytes)
            fail(f, "bad size " + describe(f.node) + "; write bytes (4096) or a unit: 512KiB, 8MiB, 1GiB, 64KB");
        if (*bytes == 0) fail(f, "must be greater than 0");
        return *bytes;
    }

    // Listeners bind, so the host must be an address; port 0 picks a free port.
    host_port listen_address(const field& f) const {
        const std::string s = text(f);
        const auto hp = parse_host_port(s, true);
        if (!hp) fail(f, "bad address '" + s + "'; expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
        if (!is_ipv4_literal(hp->host) && !is_ipv6_literal(hp->host))
            fail(f, "address '" + s + "' must use an IP address, not a host name (e.g. 127.0.0.1 or 0.0.0.0)");
        return *hp;
    }

    host_port endpoint(const field& f) const {
        const std::string s = text(f);
        const auto hp = parse_host_port(s, false);
        if (!hp)
            fail(f, "bad endpoint '" + s +
                        "'; expected HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:9001 or "
                        "users.internal:80");
        return *hp;
    }

    // A URL path as it will be compared with, or written into, request lines:
    // it must start with '/' and hold nothing that could split or end a
    // request line (controls, space) or that never occurs in a path.
    std::string url_path(const field& f, std::string_view what) const {
        const std::string s = text(f);
        if (!s.starts_with('/')) fail(f, std::string(what) + " '" + s + "' must start with '/'");
        for (unsigned char c : s)
            if (c <= 0x20 || c >= 0x7F || c == '?' || c == '#' || c == '\\')
                fail(f, std::string(what) + " '" + s +
                            "' contains a character not allowed in a URL path "
                            "(space, control, '?', '#', '\\' or non-ASCII; percent-encode it)");
        return s;
    }

    std::vector<field> required_list(const map_reader& m, std::string_view key, std::string_view hint) const {
        const auto f = m.get(key);
        if (!f) fail(m.self().mark, child_path(m.self().path, key), "missing required key; " + std::string(hint));
        auto items = list(*f);
        if (items.empty()) fail(*f, "must have at least one entry; " + std::string(hint));
        return items;
    }

    field required(const map_reader& m, std::string_view key) const {
        const auto f = m.get(key);
        if (!f) fail(m.self().mark, child_path(m.self().path, key), "missing required key '" + std::string(key) + "'");
        return *f;
    }

private:
    field parse_document(std::string_view text) const {
        std::vector<YAML::Node> documents;
        try {
            documents = YAML::LoadAll(std::string(text));
        } catch (const YAML::Exception& e) {
            fail(e.mark, "YAML syntax error", e.msg);
        }
        // "---" or "..." at the end yields trailing empty documents: harmless.
        while (!documents.empty() && documents.back().IsNull()) documents.pop_back();
        if (documents.empty()) fail(YAML::Mark::null_mark(), "(root)", "the configuration is empty");
        if (documents.size() > 1)
            fail(documents[1].Mark(), "(root)",
                 "expected one YAML document, found " + std::to_string(documents.size()));
        const YAML::Node& root = documents.front();
        if (!root.IsMap()) fail(root.Mark(), "(root)", "expected a map of settings, got " + describe(root));
        return field{root, root.Mark(), ""};
    }

    // Two sockets on one address:port would fail at bind time with a far less
    // helpful message; port 0 is exempt (every bind gets its own free port).
    using bound_addresses = std::map<std::string, std::string>;  // "host:port" → key path
    void claim(bound_addresses& bound, const host_port& address, const field& f) const;

    void read_config(const field& root, config& c) const;
    void read_listeners(const map_reader& top, bound_addresses& bound, config& c) const;
    void read_admin(const field& f, bound_addresses& bound, admin_config& admin) const;
    void read_batch(const field& f, batch_config& batch) const;
    void read_limits(const field& f, limits_config& limits) const;
    void read_http2(const field& f, http2_config& http2) const;
    std::string readable_file(const field& f) const;
    void read_trusted_proxies(const field& f, std::vector<cidr>& out) const;
    void read_backends(const field& f, std::map<std::string, backend_config>& out) const;
    backend_config read_backend(const std::string& name, const field& f) const;
    void read_retries(const field& f, retry_config& retries) const;
    void read_outlier(const field& f, outlier_config& outlier) const;
    health_check_config read_health_check(const field& f) const;
    unsigned percent(const field& f, unsigned min, std::string_view what, std::string_view share_of) const;
    void read_backend_tls(const map_reader& m, backend_config& b) const;
    backend_protocol protocol(const field& f) const;
    void read_routes(const field& f, const std::map<std::string, backend_config>& backends,
                     std::vector<route_config>& out) const;

    std::string source_;
};

map_reader::map_reader(const loader& l, const field& map, config_keys::key_list known)
    : self_(map) {
    read(l, &known);
}

map_reader::map_reader(const loader& l, const field& map) : self_(map) { read(l, nullptr); }

void map_reader::read(const loader& l, const config_keys::key_list* known) {
    if (!self_.node.IsMap()) l.fail(self_, "expected a map, got " + describe(self_.node));
    for (auto it = self_.node.begin(); it != self_.node.end(); ++it) {
        // Copies, not references: yaml-cpp iterators hand out temporaries.
        const YAML::Node key = it->first;
        const YAML::Node value = it->second;
        if (!key.IsScalar()) l.fail(key.Mark(), self_.path, "expected a key name, got " + describe(key));
        const std::string& name = key.Scalar();
        const std::string path = child_path(self_.path, name);
        if (known && std::find(known->begin(), known->end(), name) == known->end()) {
            std::string message = "unknown key '" + name + "'";
            if (const auto hint = closest_key(name, *known))
                message.append("; did you mean '").append(*hint).append("'?");
            l.fail(key.Mark(), path, message);
        }
        // yaml-cpp keeps both entries of a repeated key; the second would be ignored.
        if (!index_.emplace(name, entries_.size()).second)
            l.fail(key.Mark(), path, "duplicate key '" + name + "'");
        // "key:" with no value gets the mark of whatever follows; the key's own
        // position is where the user has to look.
        const YAML::Mark mark = value.IsNull() ? key.Mark() : value.Mark();
        entries_.push_back(map_entry{name, key.Mark(), field{value, mark, path}});
    }
}

void loader::read_config(const field& root, config& c) const {
    const map_reader top(*this, root, config_keys::top);
    if (const auto f = top.get("workers")) c.workers = static_cast<unsigned>(whole(*f, 0, 1024));
    bound_addresses bound;
    read_listeners(top, bound, c);
    if (const auto f = top.get("admin")) read_admin(*f, bound, c.admin);
    if (const auto f = top.get("batch")) read_batch(*f, c.batch);
    if (const auto f = top.get("limits")) read_limits(*f, c.limits);
    if (const auto f = top.get("http2")) read_http2(*f, c.http2);
    if (const auto f = top.get("trusted_proxies")) read_trusted_proxies(*f, c.trusted_proxies);
    // Backends first: routes refer to them, wherever they appear in the file.
    if (const auto f = top.get("backends")) read_backends(*f, c.backends);
    if (const auto f = top.get("routes")) read_routes(*f, c.backends, c.routes);
    if (const auto f = top.get("drain_timeout")) c.drain_timeout = timeout(*f);
    if (const auto f = top.get("access_log")) c.access_log = boolean(*f);
}

void loader::claim(bound_addresses& bound, const host_port& address, const field& f) const {
    if (address.port == 0) return;
    const auto [it, inserted] = bound.emplace(address.text(), f.path);
    if (!inserted) fail(f, "address " + address.text() + " is already used by " + it->second);
}

void loader::read_listeners(const map_reader& top, bound_addresses& bound, config& c) const {
    for (const field& item :
         required_list(top, "listen", "add a listener such as '- address: 127.0.0.1:8080'")) {
        const map_reader m(*this, item, config_keys::listener);
        listener_config listener;
        const field address = required(m, "address");
        listener.address = listen_address(address);
        claim(bound, listener.address, address);
        if (const auto tls = m.get("tls")) {
            const map_reader t(*this, *tls, config_keys::listener_tls);
            const field cert = required(t, "cert");
            const field key = required(t, "key");
            listener.tls = tls_files{readable_file(cert), readable_file(key)};
        }
        c.listen.push_back(std::move(listener));
    }
}

void loader::read_admin(const field& f, bound_addresses& bound, admin_config& admin) const {
    const map_reader m(*this, f, config_keys::admin);
    if (const auto a = m.get("address")) {
        admin.address = listen_address(*a);
        claim(bound, *admin.address, *a);
    }
}

void loader::read_batch(const field& f, batch_config& batch) const {
    const map_reader m(*this, f, config_keys::batch);
    if (const auto v = m.get("path")) batch.path = url_path(*v, "path");
    if (const auto v = m.get("max_items")) batch.max_items = count(*v, 1);
    if (const auto v = m.get("max_body_bytes")) batch.max_body_bytes = size(*v);
    if (const auto v = m.get("max_parallel")) batch.max_parallel = count(*v, 1);
    if (const auto v = m.get("deadline")) batch.deadline = timeout(*v);
    if (const auto v = m.get("max_item_response_bytes")) batch.max_item_response_bytes = size(*v);
    // Depth limits protect the (recursive) parsers' stacks, hence the ceiling.
    if (const auto v = m.get("max_json_depth")) batch.max_json_depth = count(*v, 1, 1024);
    if (const auto v = m.get("max_xml_depth")) batch.max_xml_depth = count(*v, 1, 1024);
    if (const auto v = m.get("max_xml_attributes")) batch.max_xml_attributes = count(*v, 0);
    if (const auto v = m.get("forward_headers")) {
        // Headers that frame the message or describe one hop, and the
        // forwarding headers, are the proxy's to set: copied from the batch
        // into every sub-request they would let a client desynchronise the
        // backend connection or spoof its address past trusted_proxies.
        static constexpr std::string_view managed[] = {
            "connection", "content-length", "expect",    "forwarded",       "host",
            "keep-alive", "te",             "trailer",   "transfer-encoding", "upgrade",
            "via",        "x-real-ip"};
        std::vector<std::string> names;
        for (const field& item : list(*v)) {
            std::string name = text(item);
            if (name.empty() || !std::all_of(name.begin(), name.end(), is_header_token_char))
                fail(item, "'" + name + "' is not a valid header name");
            std::transform(name.begin(), name.end(), name.begin(), to_lower_ascii);
            if (std::find(std::begin(managed), std::end(managed), name) != std::end(managed) ||
                name.starts_with("proxy-") || name.starts_with("x-forwarded-"))
                fail(item, "'" + name + "' is set by the proxy itself and cannot be forwarded");
            if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
        }
        batch.forward_headers = std::move(names);
    }
}

// A file named in the config, resolved against the config file's directory,
// that must be readable now (so --check-config catches a wrong path).
std::string loader::readable_file(const field& f) const {
    std::filesystem::path path(text(f));
    if (path.empty()) fail(f, "expected a file name");
    if (path.is_relative() && source_.find('/') != std::string::npos)
        path = std::filesystem::path(source_).parent_path() / path;
    std::ifstream probe(path);
    if (!probe) fail(f, "cannot read " + path.string());
    return path.string();
}

void loader::read_http2(const field& f, http2_config& http2) const {
    const map_reader m(*this, f, config_keys::http2);
    constexpr std::uint64_t max_window = 0x7fffffff;  // RFC 9113 §6.9.1
    if (const auto v = m.get("max_concurrent_streams"))
        http2.max_concurrent_streams = static_cast<std::uint32_t>(count(*v, 1, 0x7fffffff));
    if (const auto v = m.get("max_header_list_size")) http2.max_header_list_size = size(*v);
    if (const auto v = m.get("initial_window_size")) {
        const auto n = size(*v);
        if (n < 16 * KiB || n > max_window) fail(*v, "must be between 16KiB and 2GiB - 1");
        http2.initial_window_size = static_cast<std::uint32_t>(n);
    }
    if (const auto v = m.get("connection_window_size")) {
        const auto n = size(*v);
        if (n < 64 * KiB || n > max_window) fail(*v, "must be between 64KiB and 2GiB - 1");
        http2.connection_window_size = static_cast<std::uint32_t>(n);
    }
    if (const auto v = m.get("max_batch_items_in_flight")) http2.max_batch_items_in_flight = count(*v, 1);
    if (const auto v = m.get("reset_burst")) http2.reset_burst = count(*v, 1);
    if (const auto v = m.get("reset_rate")) http2.reset_rate = count(*v, 1);
    if (const auto v = m.get("settings_timeout")) http2.settings_timeout = timeout(*v);
}

void loader::read_limits(const field& f, limits_config& limits) const {
    const map_reader m(*this, f, config_keys::limits);
    if (const auto v = m.get("max_header_bytes")) limits.max_header_bytes = size(*v);
    if (const auto v = m.get("max_body_bytes")) limits.max_body_bytes = size(*v);
    if (const auto v = m.get("header_timeout")) limits.header_timeout = timeout(*v);
    if (const auto v = m.get("idle_timeout")) limits.idle_timeout = timeout(*v);
    if (const auto v = m.get("read_timeout")) limits.read_timeout = timeout(*v);
    if (const auto v = m.get("send_timeout")) limits.send_timeout = timeout(*v);
    if (const auto v = m.get("max_connections")) limits.max_connections = count(*v, 1);
}

void loader::read_trusted_proxies(const field& f, std::vector<cidr>& out) const {
    for (const field& item : list(f)) {
        const std::string s = text(item);
        const auto range = parse_cidr(s);
        if (!range) fail(item, "bad CIDR '" + s + "'; expected an address or a range such as 10.0.0.0/8 or fd00::/8");
        out.push_back(*range);
    }
}

void loader::read_backends(const field& f, std::map<std::string, backend_config>& out) const {
    const map_reader m(*this, f);
    for (const auto& entry : m.entries()) {
        const std::string& name = entry.name;
        // Names show up in metrics labels and log lines; keep them plain.
        const bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return is_name_char(c) || c == '.';
        });
        if (!plain)
            fail(entry.key_mark, entry.value.path,
                 "backend name '" + name + "' may only contain letters, digits, '-', '_' and '.'");
        out.emplace(name, read_backend(name, entry.value));
    }
}

backend_config loader::read_backend(const std::string& name, const field& f) const {
    const map_reader m(*this, f, config_keys::backend);
    backend_config b;
    b.name = name;
    for (const field& item : required_list(m, "endpoints", "list HOST:PORT entries, e.g. [127.0.0.1:9001]"))
        b.endpoints.push_back(endpoint(item));
    if (const auto v = m.get("protocol")) b.protocol = protocol(*v);
    if (const auto v = m.get("host")) {
        // Sent as the Host header: must be a host with an optional port and
        // nothing that could end the header line.
        const std::string s = text(*v);
        const bool bracketed_v6 = s.size() > 2 && s.front() == '[' && s.back() == ']' &&
                                  is_ipv6_literal(std::string_view(s).substr(1, s.size() - 2));
        if (!is_valid_host(s) && !bracketed_v6 && !parse_host_port(s, false))
            fail(*v, "bad host '" + s + "'; expected a host name with an optional port, e.g. users.internal or "
                                         "users.internal:8080");
        b.host = s;
    }
    if (const auto v = m.get("max_connections")) b.max_connections = count(*v, 1);
    if (const auto v = m.get("max_in_flight")) b.max_in_flight = count(*v, 1);
    if (const auto v = m.get("max_queue")) b.max_queue = count(*v, 0);
    if (const auto v = m.get("queue_timeout")) b.queue_timeout = timeout(*v);
    if (const auto v = m.get("connect_timeout")) b.connect_timeout = timeout(*v);
    if (const auto v = m.get("timeout")) b.timeout = timeout(*v);
    if (const auto v = m.get("idle_timeout")) b.idle_timeout = timeout(*v);
    if (const auto v = m.get("max_header_bytes")) b.max_header_bytes = size(*v);
    if (const auto v = m.get("h2_stream_window")) {
        // RFC 9113 §6.9.1: a window is at most 2^31-1; below 16 KiB a single
        // frame would not fit.
        const auto bytes = size(*v);
        if (bytes < 16 * KiB || bytes > 0x7fffffff) fail(*v, "must be between 16KiB and 2GiB-1");
        b.h2_stream_window = static_cast<std::uint32_t>(bytes);
    }
    if (const auto v = m.get("retries")) read_retries(*v, b.retries);
    if (const auto v = m.get("outlier")) read_outlier(*v, b.outlier);
    if (const auto v = m.get("health_check")) b.health_check = read_health_check(*v);
    read_backend_tls(m, b);
    return b;
}

void loader::read_backend_tls(const map_reader& m, backend_config& b) const {
    const bool over_tls = b.protocol == backend_protocol::https || b.protocol == backend_protocol::h2;
    const auto f = m.get("tls");
    if (f && !over_tls)
        fail(*f, "tls applies to protocol https or h2 only (this backend speaks " +
                     std::string(b.protocol == backend_protocol::h2c ? "h2c" : "http1") + ")");
    if (!over_tls) return;
    b.tls.emplace();
    if (f) {
        const map_reader t(*this, *f, config_keys::backend_tls);
        if (const auto v = t.get("ca")) b.tls->ca = readable_file(*v);  // relative to the config file, like listener certs
        if (const auto v = t.get("verify")) b.tls->verify = boolean(*v);
        if (const auto v = t.get("sni")) {
            const std::string name = text(*v);
            if (!is_valid_host(name)) fail(*v, "bad sni '" + name + "'; expected a host name, e.g. users.internal");
            b.tls->sni = name;
        }
    }
    // Loaded now (and dropped: the backend layer builds the context), so a
    // CA file that is not PEM certificates is a config error (--check-config,
    // start-up, or a refused reload), never a surprise on the data path.
    if (b.tls->ca) {
        if (const auto why = ca_file_error(*b.tls->ca)) fail(*f, "cannot load CA file '" + *b.tls->ca + "': " + *why);
    }
}

backend_protocol loader::protocol(const field& f) const {
    const std::string s = text(f);
    if (s == "http1") return backend_protocol::http1;
    if (s == "https") return backend_protocol::https;
    if (s == "h2c") return backend_protocol::h2c;
    if (s == "h2") return backend_protocol::h2;
    fail(f, "unknown protocol '" + s + "'; use http1, https, h2c or h2");
}

void loader::read_retries(const field& f, retry_config& retries) const {
    const map_reader m(*this, f, config_keys::retries);
    if (const auto v = m.get("attempts")) retries.attempts = static_cast<unsigned>(whole(*v, 1, 10));
    if (const auto b = m.get("backoff")) {
        const map_reader backoff(*this, *b, config_keys::retry_backoff);
        if (const auto v = backoff.get("base")) retries.backoff_base = timeout(*v);
        if (const auto v = backoff.get("max")) retries.backoff_max = timeout(*v);
        if (retries.backoff_base > retries.backoff_max)
            fail(*b, "backoff base (" + std::to_string(retries.backoff_base.count()) + " ms) is longer than its max (" +
                         std::to_string(retries.backoff_max.count()) + " ms)");
    }
    if (const auto v = m.get("budget"))
        retries.budget_percent = percent(*v, 1, "retry budget", "a share of requests in flight");
    const auto on = m.get("on");
    if (!on) return;
    // A list given replaces the default conditions; it does not add to them.
    retries.on_connect_failure = retries.on_reset = retries.on_timeout = false;
    retries.on_status.clear();
    for (const field& item : list(*on)) {
        const std::string s = text(item);
        if (s == "connect-failure") {
            retries.on_connect_failure = true;
        } else if (s == "reset") {
            retries.on_reset = true;
        } else if (s == "timeout") {
            retries.on_timeout = true;
        } else if (const auto status = parse_whole(s)) {
            if (*status < 400 || *status > 599) fail(item, "retry status " + s + " must be between 400 and 599");
            const auto code = static_cast<unsigned>(*status);
            if (std::find(retries.on_status.begin(), retries.on_status.end(), code) == retries.on_status.end())
                retries.on_status.push_back(code);
        } else {
            fail(item, "unknown retry condition '" + s +
                           "'; use connect-failure, reset, timeout or a status code from 400 to 599");
        }
    }
}

// "20%": a whole share from `min` to 100 percent.
unsigned loader::percent(const field& f, unsigned min, std::string_view what, std::string_view share_of) const {
    const std::string s = text(f);
    const auto value = s.size() > 1 && s.back() == '%' ? parse_whole(s.substr(0, s.size() - 1)) : std::nullopt;
    if (!value || *value < min || *value > 100)
        fail(f, "bad " + std::string(what) + " '" + s + "'; use " + std::string(share_of) + " from " +
                    std::to_string(min) + "% to 100%, e.g. 20%");
    return static_cast<unsigned>(*value);
}

void loader::read_outlier(const field& f, outlier_config& outlier) const {
    const map_reader m(*this, f, config_keys::outlier);
    if (const auto v = m.get("consecutive_failures")) outlier.consecutive_failures = static_cast<unsigned>(whole(*v, 0, 1000));
    if (const auto v = m.get("base_ejection")) outlier.base_ejection = timeout(*v);
    if (const auto v = m.get("max_ejection")) outlier.max_ejection = timeout(*v);
    if (const auto v = m.get("max_ejected"))
        outlier.max_ejected_percent = percent(*v, 0, "max_ejected", "a share of the endpoints");
    if (outlier.base_ejection > outlier.max_ejection)
        fail(f, "base_ejection (" + std::to_string(outlier.base_ejection.count()) + " ms) is longer than max_ejection (" +
                    std::to_string(outlier.max_ejection.count()) + " ms)");
}

health_check_config loader::read_health_check(const field& f) const {
    const map_reader m(*this, f, config_keys::health_check);
    health_check_config h;
    if (const auto v = m.get("path")) h.path = url_path(*v, "path");
    if (const auto v = m.get("interval")) h.interval = timeout(*v);
    if (const auto v = m.get("timeout")) h.timeout = timeout(*v);
    if (const auto v = m.get("unhealthy")) h.unhealthy = static_cast<unsigned>(whole(*v, 1, 100));
    if (const auto v = m.get("healthy")) h.healthy = static_cast<unsigned>(whole(*v, 1, 100));
    if (h.timeout > h.interval)
        fail(f, "timeout (" + std::to_string(h.timeout.count()) + " ms) is longer than interval (" +
                    std::to_string(h.interval.count()) + " ms)");
    return h;
}

void loader::read_routes(const field& f, const std::map<std::string, backend_config>& backends,
                         std::vector<route_config>& out) const {
    std::map<std::string, std::string> prefixes;  // prefix → path of the route that has it
    for (const field& item : list(f)) {
        const map_reader m(*this, item, config_keys::route);
        route_config route;
        const field prefix = required(m, "prefix");
        route.prefix = url_path(prefix, "prefix");
        const auto [it, inserted] = prefixes.emplace(route.prefix, item.path);
        if (!inserted) fail(prefix, "duplicate route prefix '" + route.prefix + "' (also used by " + it->second + ")");

        const field backend = required(m, "backend");
        route.backend = text(backend);
        if (!backends.contains(route.backend)) {
            std::string known;
            for (const auto& entry : backends) known.append(known.empty() ? "" : ", ").append(entry.first);
            fail(backend, "unknown backend '" + route.backend + "'" +
                              (known.empty() ? std::string("; no backends are defined")
                                             : "; defined backends: " + known));
        }

        if (const auto v = m.get("rewrite_prefix")) {
            // "" strips the matched prefix; anything else replaces it.
            if (v->node.IsScalar() && v->node.Scalar().empty())
                route.rewrite_prefix = "";
            else
                route.rewrite_prefix = url_path(*v, "rewrite_prefix");
        }
        out.push_back(std::move(route));
    }
}

}  // namespace

config load_config_string(std::string_view yaml, const std::string& source_name) {
    return loader(source_name).load(yaml);
}

config load_config_file(const std::string& path) {
    const auto cannot_read = [&](const std::string& reason) {
        return config_error(path + ": cannot read: " + reason);
    };
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) throw cannot_read(std::generic_category().message(errno));

    std::string text;
    char buffer[64 * 1024];
    while (true) {
        const std::size_t n = std::fread(buffer, 1, sizeof buffer, file.get());
        text.append(buffer, n);
        if (text.size() > max_file_bytes) throw cannot_read("file is larger than 16 MiB");
        if (n < sizeof buffer) break;
    }
    // Reading a directory opens fine and fails here with EISDIR.
    if (std::ferror(file.get())) throw cannot_read(std::generic_category().message(errno));
    return load_config_string(text, path);
}

}  // namespace batchgate
