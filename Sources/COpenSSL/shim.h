#ifndef TALLY_COPENSSL_SHIM_H
#define TALLY_COPENSSL_SHIM_H
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* OpenSSL spells these as macros, which Swift cannot call. */
static inline EVP_PKEY *tally_generate_p256_key(void) { return EVP_EC_gen("P-256"); }
static inline long tally_dtls_get_timeout(SSL *ssl, struct timeval *timeout) { return DTLSv1_get_timeout(ssl, timeout); }
static inline long tally_dtls_handle_timeout(SSL *ssl) { return DTLSv1_handle_timeout(ssl); }
static inline long tally_set_mtu(SSL *ssl, long mtu) {
    SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
    return SSL_set_mtu(ssl, mtu);
}
static inline long tally_ctx_set_dtls12_only(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) && SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION);
}
static inline long tally_ctx_set_max_cert_list(SSL_CTX *ctx, long bytes) { return SSL_CTX_set_max_cert_list(ctx, bytes); }
static inline size_t tally_bio_pending(BIO *bio) { return BIO_ctrl_pending(bio); }
static inline void tally_bio_mem_eof_is_retry(BIO *bio) { BIO_set_mem_eof_return(bio, -1); }
/* HMAC-SHA1 keyed once; EVP_MAC_init with no key restarts it for the next message. */
static inline EVP_MAC_CTX *tally_hmac_sha1_new(const unsigned char *key, size_t length) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) return NULL;
    EVP_MAC_CTX *context = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (context == NULL) return NULL;
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA1", 0), OSSL_PARAM_construct_end() };
    if (!EVP_MAC_init(context, key, length, params)) {
        EVP_MAC_CTX_free(context);
        return NULL;
    }
    return context;
}
/* A certificate signing request (RFC 2986) for `altNames` ("DNS:a,DNS:b"), with `commonName`
   as its subject when not NULL, signed by the private key in `keyPEM`. Its DER goes to *der
   (free it with tally_free); returns the length, or -1. */
static inline int tally_make_csr(const char *keyPEM, const char *commonName, const char *altNames, unsigned char **der) {
    BIO *bio = BIO_new_mem_buf(keyPEM, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    X509_REQ *request = key ? X509_REQ_new() : NULL;
    STACK_OF(X509_EXTENSION) *extensions = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, altNames);
    if (extensions && san && sk_X509_EXTENSION_push(extensions, san)) san = NULL; /* the stack owns it now */
    int length = -1;
    if (request && extensions && sk_X509_EXTENSION_num(extensions) == 1 && X509_REQ_set_version(request, 0)
        && (commonName == NULL || X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(request), "CN", MBSTRING_ASC,
                                                             (const unsigned char *)commonName, -1, -1, 0))
        && X509_REQ_add_extensions(request, extensions) && X509_REQ_set_pubkey(request, key)
        && X509_REQ_sign(request, key, EVP_sha256()) > 0) {
        *der = NULL;
        length = i2d_X509_REQ(request, der);
    }
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    X509_REQ_free(request);
    EVP_PKEY_free(key);
    return length;
}
static inline void tally_free(void *pointer) { OPENSSL_free(pointer); }
#endif
