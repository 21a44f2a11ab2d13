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

/* The destination a frame is sealed for, authenticated with it (issue 14):
 * a frame sealed for one member fails authentication at any other.  20
 * bytes: 'I' and the member's id (16 bytes, then 3 zero bytes), or, while
 * the sender does not know that id yet, 'A', the address family (4 or 6),
 * the port (2 bytes, big-endian) and the address (16 bytes; IPv4 in the
 * first 4) it connects to, as the receiver's socket sees it. */
#define SC_DEST_LEN       20
void sc_crypto_dest_id(unsigned char *dest, const unsigned char *id);
void sc_crypto_dest_addr(unsigned char *dest, int family, const unsigned char *addr,
                         int port);

/* A frame: its header (hdrlen bytes) and its destination are the additional
 * data.  As sc_crypto_seal / sc_crypto_open otherwise. */
int sc_crypto_seal_frame(sc_crypto *c, const unsigned char *hdr, apr_size_t hdrlen,
                         const unsigned char *dest, const unsigned char *in,
                         apr_size_t len, unsigned char *out);
int sc_crypto_open_frame(sc_crypto *c, const unsigned char *hdr, apr_size_t hdrlen,
                         const unsigned char *dest, const unsigned char *in,
                         apr_size_t sealed_len, unsigned char *out, int *used_previous);

#endif /* SC_CRYPTO_H */
