/* TLS contexts for the HTTPS listener (tls.c). */
#ifndef CACHETTE_HTTP_TLS_H
#define CACHETTE_HTTP_TLS_H

#include <openssl/ssl.h>

/*
 * Builds a server context from a PEM certificate chain and a PEM private key,
 * with ALPN h2 (if http2) and http/1.1. Returns NULL after logging why
 * (unreadable file, bad PEM, key not matching the certificate). Free with
 * SSL_CTX_free.
 */
SSL_CTX *tls_context_create(const char *cert_path, const char *key_path, int http2);

#endif
