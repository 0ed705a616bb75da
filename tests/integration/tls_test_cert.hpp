// A throw-away self-signed certificate for TLS tests, made with OpenSSL at
// run time (nothing secret is committed): EC P-256, CN=localhost, SAN
// DNS:localhost and IP:127.0.0.1, written as PEM files in a fresh directory
// that is removed with the object.
#pragma once

#include <filesystem>
#include <string>

namespace batchgate::test {

class tls_test_cert {
public:
    tls_test_cert();
    ~tls_test_cert();
    tls_test_cert(const tls_test_cert&) = delete;
    tls_test_cert& operator=(const tls_test_cert&) = delete;

    std::string cert_file() const { return (dir_ / "cert.pem").string(); }
    std::string key_file() const { return (dir_ / "key.pem").string(); }

private:
    std::filesystem::path dir_;
};

}  // namespace batchgate::test
