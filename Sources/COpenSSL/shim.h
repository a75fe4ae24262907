#ifndef TALLY_COPENSSL_SHIM_H
#define TALLY_COPENSSL_SHIM_H
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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
#endif
