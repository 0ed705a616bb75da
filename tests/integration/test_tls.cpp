#include "tests/integration/test_tls.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

namespace batchgate::test {

namespace {

template <class T, void (*Free)(T*)>
struct openssl_ptr {
    T* p;
    explicit openssl_ptr(T* raw) : p(raw) {
        if (!p) throw std::runtime_error("OpenSSL allocation failed");
    }
    ~openssl_ptr() { Free(p); }
    openssl_ptr(const openssl_ptr&) = delete;
    openssl_ptr& operator=(const openssl_ptr&) = delete;
};

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

void require(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("test certificate: ") + what);
}

}  // namespace

test_certificate::test_certificate(const std::string& common_name, const std::vector<std::string>& sans) {
    openssl_ptr<EVP_PKEY, EVP_PKEY_free> key(EVP_EC_gen("P-256"));
    openssl_ptr<X509, X509_free> x509(X509_new());
    X509* x = x509.p;
    require(X509_set_version(x, 2) == 1, "version");
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    require(X509_set_pubkey(x, key.p) == 1, "public key");
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                               -1, -1, 0);
    require(X509_set_issuer_name(x, name) == 1, "issuer");
    std::string san_list;
    for (const auto& san : sans) san_list += (san_list.empty() ? "" : ",") + san;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    // Its own trust anchor: a CA that signed itself, also valid as a server leaf.
    for (const auto& [nid, value] : std::vector<std::pair<int, std::string>>{
             {NID_subject_alt_name, san_list}, {NID_basic_constraints, "critical,CA:TRUE"}}) {
        if (value.empty()) continue;
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
        require(ext != nullptr, "extension");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    require(X509_sign(x, key.p, EVP_sha256()) > 0, "sign");

    openssl_ptr<BIO, BIO_free_all> cert_bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(cert_bio.p, x);
    cert_pem_ = bio_text(cert_bio.p);
    openssl_ptr<BIO, BIO_free_all> key_bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(key_bio.p, key.p, nullptr, nullptr, 0, nullptr, nullptr);
    key_pem_ = bio_text(key_bio.p);

    char path[] = "/tmp/batchgate-test-cert-XXXXXX";
    const int fd = mkstemp(path);
    require(fd >= 0, "temporary file");
    ::close(fd);
    cert_file_ = path;
    std::ofstream(cert_file_) << cert_pem_;
    char key_path[] = "/tmp/batchgate-test-key-XXXXXX";
    const int key_fd = mkstemp(key_path);
    require(key_fd >= 0, "temporary file");
    ::close(key_fd);
    key_file_ = key_path;
    std::ofstream(key_file_) << key_pem_;
}

test_certificate::~test_certificate() {
    std::remove(cert_file_.c_str());
    std::remove(key_file_.c_str());
}

namespace {

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void* arg) {
    const auto& accepted = *static_cast<const std::vector<std::string>*>(arg);
    for (unsigned int i = 0; i < inlen;) {
        const unsigned int len = in[i];
        const std::string offered(reinterpret_cast<const char*>(in + i + 1), len);
        for (const auto& a : accepted) {
            if (a == offered) {
                *out = in + i + 1;
                *outlen = static_cast<unsigned char>(len);
                return SSL_TLSEXT_ERR_OK;
            }
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;  // go on without ALPN
}

}  // namespace

void tls_sni_log::record(std::string name) {
    std::lock_guard lock(mutex_);
    names_.push_back(std::move(name));
}

std::vector<std::string> tls_sni_log::names() const {
    std::lock_guard lock(mutex_);
    return names_;
}

namespace {

// OpenSSL calls the server-name callback on every ClientHello, whether it
// carries the extension or not, so each handshake leaves one entry.
int record_server_name(SSL* ssl, int*, void* arg) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    static_cast<tls_sni_log*>(arg)->record(name ? name : "");
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::shared_ptr<boost::asio::ssl::context> tls_server_context(const test_certificate& cert,
                                                              std::vector<std::string> alpn,
                                                              std::shared_ptr<tls_sni_log> sni) {
    namespace ssl = boost::asio::ssl;
    // The context owns what its callbacks read: keep them together.
    struct holder {
        ssl::context ctx{ssl::context::tls_server};
        std::vector<std::string> alpn;
        std::shared_ptr<tls_sni_log> sni;
    };
    auto h = std::make_shared<holder>();
    h->alpn = std::move(alpn);
    h->sni = std::move(sni);
    h->ctx.use_certificate_chain(boost::asio::buffer(cert.cert_pem()));
    h->ctx.use_private_key(boost::asio::buffer(cert.key_pem()), ssl::context::pem);
    SSL_CTX_set_alpn_select_cb(h->ctx.native_handle(), select_alpn, &h->alpn);
    if (h->sni) {
        SSL_CTX_set_tlsext_servername_callback(h->ctx.native_handle(), record_server_name);
        SSL_CTX_set_tlsext_servername_arg(h->ctx.native_handle(), h->sni.get());
    }
    return std::shared_ptr<ssl::context>(h, &h->ctx);
}

}  // namespace batchgate::test
