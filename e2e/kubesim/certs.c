/*
 * certs: a throw-away CA and server certificate made with OpenSSL at
 * start. See certs.h for why the shape is what it is.
 */
#include "e2e/kubesim/certs.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"

struct gf_ks_certs {
    EVP_PKEY *ca_key, *srv_key;
    X509 *ca, *srv;
    SSL_CTX *ctx;
    char *ca_pem; /* owned, NUL-terminated */
    size_t ca_pem_len;
};

static const struct gf_log_ctx lc = {.comp = "kubesim-certs"};

static int tls_fail(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    GF_LOG(&lc, GF_LOG_ERROR, "tls setup failed", "step=%s error=%s", what,
           buf);
    ERR_clear_error();
    return GF_ETLS;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext == NULL)
        return tls_fail("extension");
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : tls_fail("add extension");
}

/* A random 127-bit serial, as RFC 5280 asks for unpredictable serials. */
static int set_serial(X509 *cert)
{
    BIGNUM *bn = BN_new();
    int rc = GF_ETLS;
    if (bn != NULL && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL)
        rc = 0;
    BN_free(bn);
    return rc == 0 ? 0 : tls_fail("serial");
}

/*
 * Makes a certificate for key with subject CN=cn, signed by issuer_key
 * (issuer NULL = self-signed). Returns NULL on failure (logged).
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                       EVP_PKEY *issuer_key, unsigned days, bool ca)
{
    X509 *cert = X509_new();
    if (cert == NULL || !X509_set_version(cert, 2) || set_serial(cert) != 0)
        goto fail;
    /* Backdated an hour so small clock differences never matter. */
    if (!X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400L))
        goto fail;
    X509_NAME *name = X509_get_subject_name(cert);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn, -1, -1, 0) ||
        !X509_set_issuer_name(
            cert, issuer != NULL ? X509_get_subject_name(issuer) : name) ||
        !X509_set_pubkey(cert, key))
        goto fail;
    X509 *iss = issuer != NULL ? issuer : cert;
    if (ca) {
        if (add_ext(cert, iss, NID_basic_constraints, "critical,CA:TRUE") ||
            add_ext(cert, iss, NID_key_usage, "critical,keyCertSign,cRLSign") ||
            add_ext(cert, iss, NID_subject_key_identifier, "hash"))
            goto fail;
    } else {
        if (add_ext(cert, iss, NID_basic_constraints, "critical,CA:FALSE") ||
            add_ext(cert, iss, NID_key_usage,
                    "critical,digitalSignature,keyEncipherment") ||
            add_ext(cert, iss, NID_ext_key_usage, "serverAuth") ||
            add_ext(cert, iss, NID_subject_alt_name,
                    "IP:127.0.0.1,DNS:localhost") ||
            add_ext(cert, iss, NID_authority_key_identifier, "keyid:always"))
            goto fail;
    }
    if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0)
        goto fail;
    return cert;
fail:
    tls_fail("certificate");
    X509_free(cert);
    return NULL;
}

static int make_ctx(struct gf_ks_certs *c)
{
    c->ctx = SSL_CTX_new(TLS_server_method());
    if (c->ctx == NULL)
        return tls_fail("SSL_CTX_new");
    /* TLS 1.2 is the oldest version the Kubernetes API server accepts. */
    if (!SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) ||
        SSL_CTX_use_certificate(c->ctx, c->srv) != 1 ||
        SSL_CTX_use_PrivateKey(c->ctx, c->srv_key) != 1 ||
        SSL_CTX_check_private_key(c->ctx) != 1)
        return tls_fail("server context");
    /* Chain: clients that trust only the CA still build the path. */
    if (SSL_CTX_add1_chain_cert(c->ctx, c->ca) != 1)
        return tls_fail("chain");
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return 0;
}

static int make_pem(struct gf_ks_certs *c)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509(bio, c->ca) != 1) {
        BIO_free(bio);
        return tls_fail("pem");
    }
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    c->ca_pem = gf_strndup(data, (size_t)n);
    c->ca_pem_len = (size_t)n;
    BIO_free(bio);
    return 0;
}

int gf_ks_certs_new(const char *cn, unsigned valid_days,
                    struct gf_ks_certs **out)
{
    struct gf_ks_certs *c = gf_calloc(1, sizeof(*c));
    unsigned days = valid_days != 0 ? valid_days : 30;
    c->ca_key = EVP_EC_gen("P-256");
    c->srv_key = EVP_EC_gen("P-256");
    if (c->ca_key == NULL || c->srv_key == NULL) {
        tls_fail("keygen");
        goto fail;
    }
    c->ca = make_cert(c->ca_key, cn, NULL, c->ca_key, days, true);
    if (c->ca == NULL)
        goto fail;
    c->srv = make_cert(c->srv_key, "kubesim-apiserver", c->ca, c->ca_key, days,
                       false);
    if (c->srv == NULL || make_ctx(c) != 0 || make_pem(c) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    gf_ks_certs_free(c);
    return GF_ETLS;
}

void gf_ks_certs_free(struct gf_ks_certs *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ctx);
    X509_free(c->srv);
    X509_free(c->ca);
    EVP_PKEY_free(c->srv_key);
    EVP_PKEY_free(c->ca_key);
    gf_free(c->ca_pem);
    gf_free(c);
}

SSL_CTX *gf_ks_certs_server_ctx(const struct gf_ks_certs *c)
{
    return c->ctx;
}

const char *gf_ks_certs_ca_pem(const struct gf_ks_certs *c, size_t *len)
{
    if (len != NULL)
        *len = c->ca_pem_len;
    return c->ca_pem;
}

char *gf_ks_certs_ca_b64(const struct gf_ks_certs *c)
{
    /* EVP_EncodeBlock writes 4 bytes per 3 input bytes plus a NUL. */
    size_t cap = 4 * ((c->ca_pem_len + 2) / 3) + 1;
    char *out = gf_malloc(cap);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)c->ca_pem,
                    (int)c->ca_pem_len);
    return out;
}
