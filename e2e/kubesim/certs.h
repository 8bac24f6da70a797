/*
 * certs: the TLS identity of one kubesim process.
 *
 * At start kubesim makes a private certificate authority and one server
 * certificate signed by it (subjectAltName IP:127.0.0.1 and DNS:localhost,
 * extendedKeyUsage serverAuth), so clients verify the server exactly as
 * they would verify a real API server: the kubeconfigs carry the CA as
 * certificate-authority-data and nobody needs an "insecure" switch. Keys
 * are ECDSA P-256: they take microseconds to make, and every client we
 * care about (Go, urllib3, libcurl) accepts them.
 *
 * Nothing is written to disk except by the caller (the kubeconfigs carry
 * the CA certificate; the keys never leave the process).
 *
 * A struct gf_ks_certs owns its keys, certificates and the SSL_CTX built
 * from them. Not thread-safe; created once by main.
 */
#ifndef GF_KS_CERTS_H
#define GF_KS_CERTS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct gf_ks_certs;

/*
 * Makes a fresh CA and server certificate valid from one hour ago for
 * valid_days (0 = 30). cn names the CA ("kubesim-ca"). Returns 0 and
 * *out (returned-owned, free with gf_ks_certs_free), or GF_ETLS when
 * OpenSSL fails (logged).
 */
int gf_ks_certs_new(const char *cn, unsigned valid_days,
                    struct gf_ks_certs **out);
/* Accepts NULL. */
void gf_ks_certs_free(struct gf_ks_certs *c);

/*
 * Returned-borrowed server context (TLS 1.2+, the server certificate and
 * key loaded), shared by every listener of the process.
 */
SSL_CTX *gf_ks_certs_server_ctx(const struct gf_ks_certs *c);

/*
 * Returned-borrowed PEM of the CA certificate (NUL-terminated) and its
 * length; what kubeconfigs embed, base64-encoded, as
 * certificate-authority-data, and what test clients trust.
 */
const char *gf_ks_certs_ca_pem(const struct gf_ks_certs *c, size_t *len);

/*
 * Returned-owned base64 (no newlines) of the CA PEM, for kubeconfigs.
 * Free with gf_free.
 */
char *gf_ks_certs_ca_b64(const struct gf_ks_certs *c);

#endif
