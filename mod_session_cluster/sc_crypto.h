/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_crypto.h -- EncryptInterceptor's AES-GCM (sc_crypto.c).
 */
#ifndef SC_CRYPTO_H
#define SC_CRYPTO_H

#include "apr.h"
#include "apr_pools.h"

#define SC_NONCE_LEN      12
#define SC_TAG_LEN        16
#define SC_SEAL_OVERHEAD  (SC_NONCE_LEN + SC_TAG_LEN)   /* after the ciphertext */

typedef struct sc_crypto sc_crypto;

/* A key (16, 24 or 32 bytes) and optionally the previous one, accepted when
 * opening.  Returns NULL, or why not. */
const char *sc_crypto_create(apr_pool_t *p, const unsigned char *key, int keylen,
                             const unsigned char *prev, int prevlen, sc_crypto **out);
/* Encrypts len bytes of 'in' into 'out' (len + SC_SEAL_OVERHEAD bytes: the
 * ciphertext, the nonce, the tag), authenticating 'aad' too.  0 or -1. */
int sc_crypto_seal(sc_crypto *c, const unsigned char *aad, apr_size_t aadlen,
                   const unsigned char *in, apr_size_t len, unsigned char *out);
/* Opens what sc_crypto_seal made (sealed_len bytes) into 'out'
 * (sealed_len - SC_SEAL_OVERHEAD bytes).  0, or -1 when it is not authentic
 * under either key. */
int sc_crypto_open(sc_crypto *c, const unsigned char *aad, apr_size_t aadlen,
                   const unsigned char *in, apr_size_t sealed_len, unsigned char *out,
                   int *used_previous);

#endif /* SC_CRYPTO_H */
