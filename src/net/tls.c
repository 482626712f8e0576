/*
 * TLS for the fronts: one OpenSSL server context per front, built at
 * start-up from the certificate chain and key files and shared read-only by
 * every worker (an SSL_CTX is safe to share once configured; each connection
 * gets its own SSL object inside h2o). The front names what ALPN offers
 * (HTTP: h2, then http/1.1; the Redis protocol: nothing).
 *
 * Protocol floor: TLS 1.2. Compression is off (CRIME), renegotiation is off,
 * and the server's cipher order wins. OpenSSL 3's default cipher lists and
 * groups are kept: they are the maintained choice on Debian 12.
 */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"

/* Logs what failed and OpenSSL's oldest queued reason, then clears its queue. */
static void log_openssl_error(const char *what, const char *path)
{
    char reason[256] = "unknown error";
    unsigned long code = ERR_get_error();
    if (code != 0)
        ERR_error_string_n(code, reason, sizeof(reason));
    ERR_clear_error();
    log_msg(LOG_LEVEL_ERROR, "%s %s: %s", what, path, reason);
}

SSL_CTX *tls_context_create(const char *cert_path, const char *key_path, const h2o_iovec_t *alpn)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        log_openssl_error("cannot create a TLS context for", cert_path);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        log_openssl_error("cannot load the --tls-cert chain", cert_path);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
        /* Also where a key that does not match the certificate is caught ("key values mismatch"). */
        log_openssl_error("cannot load the --tls-key", key_path);
    } else {
        if (alpn != NULL)
            h2o_ssl_register_alpn_protocols(ctx, alpn);
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}
