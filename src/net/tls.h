/* TLS contexts for the fronts' listeners (tls.c). */
#ifndef CACHETTE_NET_TLS_H
#define CACHETTE_NET_TLS_H

#include <h2o/socket.h>
#include <openssl/ssl.h>

/*
 * Builds a server context from a PEM certificate chain and a PEM private key,
 * offering the ALPN protocols in alpn (a list ended by {NULL, 0}; NULL: no
 * ALPN). Returns NULL after logging why (unreadable file, bad PEM, key not
 * matching the certificate). Free with SSL_CTX_free.
 */
SSL_CTX *tls_context_create(const char *cert_path, const char *key_path, const h2o_iovec_t *alpn);

#endif
