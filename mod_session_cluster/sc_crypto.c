/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_crypto.c -- EncryptInterceptor: authenticated encryption of cluster
 * frames and heartbeats with AES-GCM (OpenSSL's EVP), 128, 192 or 256 bits
 * after the key's length.
 *
 * A sealed message is the plaintext encrypted in place, then a fresh 96-bit
 * random nonce (OpenSSL's DRBG: random nonces are safe for far more messages
 * than a cluster sends under one key) and the 128-bit tag.  The frame header
 * (or the datagram's magic) is authenticated as additional data, so the
 * sender id, the sequence number and the type cannot be changed either; a
 * frame's additional data also names its destination (sc_crypto_seal_frame),
 * so that a frame sealed for one member is not authentic at another (a
 * replay across members).  A multicast heartbeat is for every member holding
 * the key: its cluster is the key, and its domain is inside the sealed part.
 * Replays are the caller's business: sequence numbers are authenticated, and
 * sc_transport.c / sc_membership.c refuse old ones.
 *
 * A second, previous key is accepted for opening (not for sealing) while a
 * cluster moves from one key to the next.
 */
#include "sc_crypto.h"

#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct sc_crypto {
    unsigned char key[32];
    int keylen;
    unsigned char prev[32];
    int prevlen;
    EVP_CIPHER_CTX *ctx;
};

static const EVP_CIPHER *cipher_for(int keylen)
{
    switch (keylen) {
    case 16: return EVP_aes_128_gcm();
    case 24: return EVP_aes_192_gcm();
    case 32: return EVP_aes_256_gcm();
    default: return NULL;
    }
}

static apr_status_t crypto_free(void *data)
{
    sc_crypto *c = data;
    if (c->ctx) {
        EVP_CIPHER_CTX_free(c->ctx);
        c->ctx = NULL;
    }
    memset(c->key, 0, sizeof(c->key));
    memset(c->prev, 0, sizeof(c->prev));
    return APR_SUCCESS;
}

const char *sc_crypto_create(apr_pool_t *p, const unsigned char *key, int keylen,
                             const unsigned char *prev, int prevlen, sc_crypto **out)
{
    sc_crypto *c;
    if (!cipher_for(keylen)) {
        return "the encryption key must be 16, 24 or 32 bytes";
    }
    if (prev && prevlen && !cipher_for(prevlen)) {
        return "the previous encryption key must be 16, 24 or 32 bytes";
    }
    c = apr_pcalloc(p, sizeof(*c));
    memcpy(c->key, key, (size_t)keylen);
    c->keylen = keylen;
    if (prev && prevlen) {
        memcpy(c->prev, prev, (size_t)prevlen);
        c->prevlen = prevlen;
    }
    c->ctx = EVP_CIPHER_CTX_new();
    if (!c->ctx) {
        return "OpenSSL could not make a cipher context";
    }
    apr_pool_cleanup_register(p, c, crypto_free, apr_pool_cleanup_null);
    *out = c;
    return NULL;
}

int sc_crypto_seal(sc_crypto *c, const unsigned char *aad, apr_size_t aadlen,
                   const unsigned char *in, apr_size_t len, unsigned char *out)
{
    unsigned char *nonce = out + len, *tag = out + len + SC_NONCE_LEN;
    int n = 0, fin = 0;
    if (len > 0x7fffffff || aadlen > 0x7fffffff
        || RAND_bytes(nonce, SC_NONCE_LEN) != 1
        || EVP_EncryptInit_ex(c->ctx, cipher_for(c->keylen), NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_IVLEN, SC_NONCE_LEN, NULL) != 1
        || EVP_EncryptInit_ex(c->ctx, NULL, NULL, c->key, nonce) != 1
        || (aadlen && EVP_EncryptUpdate(c->ctx, NULL, &n, aad, (int)aadlen) != 1)
        || (len && EVP_EncryptUpdate(c->ctx, out, &n, in, (int)len) != 1)
        || EVP_EncryptFinal_ex(c->ctx, out + n, &fin) != 1
        || EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_GET_TAG, SC_TAG_LEN, tag) != 1) {
        return -1;
    }
    return 0;
}

static int open_with(sc_crypto *c, const unsigned char *key, int keylen,
                     const unsigned char *aad, apr_size_t aadlen, const unsigned char *in,
                     apr_size_t len, unsigned char *out)
{
    const unsigned char *nonce = in + len, *tag = in + len + SC_NONCE_LEN;
    unsigned char tagcopy[SC_TAG_LEN];
    int n = 0, fin = 0;
    memcpy(tagcopy, tag, SC_TAG_LEN);
    if (EVP_DecryptInit_ex(c->ctx, cipher_for(keylen), NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_IVLEN, SC_NONCE_LEN, NULL) != 1
        || EVP_DecryptInit_ex(c->ctx, NULL, NULL, key, nonce) != 1
        || (aadlen && EVP_DecryptUpdate(c->ctx, NULL, &n, aad, (int)aadlen) != 1)
        || (len && EVP_DecryptUpdate(c->ctx, out, &n, in, (int)len) != 1)
        || EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_TAG, SC_TAG_LEN, tagcopy) != 1
        || EVP_DecryptFinal_ex(c->ctx, out + n, &fin) != 1) {
        return -1;
    }
    return 0;
}

int sc_crypto_open(sc_crypto *c, const unsigned char *aad, apr_size_t aadlen,
                   const unsigned char *in, apr_size_t sealed_len, unsigned char *out,
                   int *used_previous)
{
    apr_size_t len;
    if (sealed_len < SC_SEAL_OVERHEAD || sealed_len - SC_SEAL_OVERHEAD > 0x7fffffff
        || aadlen > 0x7fffffff) {
        return -1;
    }
    len = sealed_len - SC_SEAL_OVERHEAD;
    if (used_previous) {
        *used_previous = 0;
    }
    if (open_with(c, c->key, c->keylen, aad, aadlen, in, len, out) == 0) {
        return 0;
    }
    if (c->prevlen && open_with(c, c->prev, c->prevlen, aad, aadlen, in, len, out) == 0) {
        if (used_previous) {
            *used_previous = 1;
        }
        return 0;
    }
    return -1;
}

void sc_crypto_dest_id(unsigned char *dest, const unsigned char *id)
{
    memset(dest, 0, SC_DEST_LEN);
    dest[0] = 'I';
    memcpy(dest + 1, id, 16);
}

void sc_crypto_dest_addr(unsigned char *dest, int family, const unsigned char *addr,
                         int port)
{
    memset(dest, 0, SC_DEST_LEN);
    dest[0] = 'A';
    dest[1] = (unsigned char)family;
    dest[2] = (unsigned char)(port >> 8);
    dest[3] = (unsigned char)port;
    memcpy(dest + 4, addr, family == 4 ? 4 : 16);
}

/* header + destination: at most a frame header (64 bytes) */
static apr_size_t frame_aad(unsigned char *aad, const unsigned char *hdr, apr_size_t hdrlen,
                            const unsigned char *dest)
{
    if (hdrlen > 64) {
        return 0;
    }
    memcpy(aad, hdr, hdrlen);
    memcpy(aad + hdrlen, dest, SC_DEST_LEN);
    return hdrlen + SC_DEST_LEN;
}

int sc_crypto_seal_frame(sc_crypto *c, const unsigned char *hdr, apr_size_t hdrlen,
                         const unsigned char *dest, const unsigned char *in,
                         apr_size_t len, unsigned char *out)
{
    unsigned char aad[64 + SC_DEST_LEN];
    apr_size_t n = frame_aad(aad, hdr, hdrlen, dest);
    return n ? sc_crypto_seal(c, aad, n, in, len, out) : -1;
}

int sc_crypto_open_frame(sc_crypto *c, const unsigned char *hdr, apr_size_t hdrlen,
                         const unsigned char *dest, const unsigned char *in,
                         apr_size_t sealed_len, unsigned char *out, int *used_previous)
{
    unsigned char aad[64 + SC_DEST_LEN];
    apr_size_t n = frame_aad(aad, hdr, hdrlen, dest);
    return n ? sc_crypto_open(c, aad, n, in, sealed_len, out, used_previous) : -1;
}
