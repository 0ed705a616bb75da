#include "tests/integration/tls_test_cert.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>

namespace batchgate::test {

namespace {

template <class T, void (*Free)(T*)>
using owned = std::unique_ptr<T, std::integral_constant<decltype(Free), Free>>;

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("tls_test_cert: ") + what);
}

void add_extension(X509* cert, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    owned<X509_EXTENSION, X509_EXTENSION_free> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    check(ext != nullptr && X509_add_ext(cert, ext.get(), -1) == 1, "extension");
}

}  // namespace

tls_test_cert::tls_test_cert() {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("batchgate-tls-" + std::to_string(rd()));
    std::filesystem::create_directories(dir_);

    owned<EVP_PKEY, EVP_PKEY_free> key(EVP_EC_gen("P-256"));
    check(key != nullptr, "key");
    owned<X509, X509_free> cert(X509_new());
    check(cert != nullptr, "cert");
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(rd() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                               0);
    X509_set_issuer_name(cert.get(), name);
    add_extension(cert.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    add_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "sign");

    FILE* c = std::fopen(cert_file().c_str(), "w");
    check(c != nullptr, "cert file");
    PEM_write_X509(c, cert.get());
    std::fclose(c);
    FILE* k = std::fopen(key_file().c_str(), "w");
    check(k != nullptr, "key file");
    PEM_write_PrivateKey(k, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(k);
}

tls_test_cert::~tls_test_cert() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

}  // namespace batchgate::test
