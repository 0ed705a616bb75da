// TLS for integration tests: self-signed certificates made on the spot with
// the OpenSSL C API (no files checked in, nothing to expire), written to
// temporary PEM files for configs, and server contexts with ALPN.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace batchgate::test {

class test_certificate {
public:
    // `sans`: subjectAltName entries in OpenSSL's syntax, e.g. "IP:127.0.0.1", "DNS:localhost".
    test_certificate(const std::string& common_name, const std::vector<std::string>& sans);
    ~test_certificate();
    test_certificate(const test_certificate&) = delete;
    test_certificate& operator=(const test_certificate&) = delete;

    const std::string& cert_pem() const { return cert_pem_; }
    const std::string& key_pem() const { return key_pem_; }
    const std::string& cert_file() const { return cert_file_; }  // also usable as a CA file: it signed itself
    const std::string& key_file() const { return key_file_; }    // for listener configs

private:
    std::string cert_pem_, key_pem_, cert_file_, key_file_;
};

// The server names (SNI) clients sent, one entry per handshake, "" for a
// ClientHello without the extension. Filled from the server's thread.
class tls_sni_log {
public:
    void record(std::string name);
    std::vector<std::string> names() const;

private:
    mutable std::mutex mutex_;
    std::vector<std::string> names_;
};

// A server context presenting `cert`; during the handshake it picks the
// first protocol the client offers that is in `alpn` ("h2", "http/1.1"), or
// none at all, and records the SNI in `sni` when given.
std::shared_ptr<boost::asio::ssl::context> tls_server_context(const test_certificate& cert,
                                                              std::vector<std::string> alpn,
                                                              std::shared_ptr<tls_sni_log> sni = {});

}  // namespace batchgate::test
