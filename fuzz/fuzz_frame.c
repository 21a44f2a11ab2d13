/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fuzz_frame -- the TCP frame header decoder (sc_frame_hdr_decode, sc_proto.c)
 * and EncryptInterceptor's opening of what follows it (sc_crypto_open,
 * sc_crypto.c), on the input taken as a connection's receive buffer.
 *
 * The header is decoded under several maximum message sizes (0, the reply
 * limit of sc_engine.c, the pre-HELLO limit, 64 KiB, no limit).  Properties:
 * a header that decodes re-encodes (sc_frame_hdr_encode) to exactly the 40
 * bytes it came from, and respects the limit and the tag rules it was checked
 * against.  Then, as sc_transport.c does for a complete tagged frame, the
 * payload is opened with the header as additional data; and the whole rest of
 * the input too, whatever its length: garbage must be refused without a crash
 * or a read outside the input (the seeds hold frames sealed with the test key,
 * and with the previous key, so the accepting path runs as well).
 */
#include "fuzz_common.h"

#include <string.h>

#include "sc_proto.h"
#include "sc_crypto.h"

static sc_crypto *crypto;

/* The context is made before the first input: libFuzzer counts what an input
 * allocates and does not free as a leak. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *err = sc_crypto_create(fuzz_global_pool(), fuzz_key, sizeof(fuzz_key),
                                       fuzz_prev_key, sizeof(fuzz_prev_key), &crypto);
    if (err) {
        fprintf(stderr, "fuzz_frame: %s\n", err);
        abort();
    }
    return 0;
}

/* Opens sealed_len bytes at 'in' into an output buffer of exactly the size
 * sc_crypto.h promises (so AddressSanitizer sees any write past it). */
static int open_exact(const unsigned char *aad, apr_size_t aadlen,
                      const unsigned char *in, apr_size_t sealed_len)
{
    apr_size_t outlen = sealed_len >= SC_SEAL_OVERHEAD ? sealed_len - SC_SEAL_OVERHEAD : 0;
    unsigned char *out = malloc(outlen ? outlen : 1);
    int prev = -1, rv;
    if (!out) {
        abort();
    }
    rv = sc_crypto_open(crypto, aad, aadlen, in, sealed_len, out, &prev);
    FUZZ_CHECK(rv == 0 || rv == -1);
    FUZZ_CHECK(rv != 0 || prev == 0 || prev == 1);
    FUZZ_CHECK(rv != 0 || sealed_len >= SC_SEAL_OVERHEAD);
    free(out);
    return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const apr_uint32_t limits[] = { 0, 8 + 256, 4096, 65536, 0xffffffffu };
    apr_size_t i;

    (void)fuzz_pool();
    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        sc_frame_hdr h;
        unsigned char enc[SC_FRAME_HDR_LEN];
        apr_size_t total;

        memset(&h, 0, sizeof(h));
        if (sc_frame_hdr_decode(data, size, limits[i], &h) != NULL) {
            continue;
        }
        FUZZ_CHECK(size >= SC_FRAME_HDR_LEN);
        FUZZ_CHECK(h.type >= 1 && h.type <= SC_MSG_MAX);
        FUZZ_CHECK((h.flags & ~SC_FF_KNOWN) == 0);
        FUZZ_CHECK(h.length <= limits[i]);
        FUZZ_CHECK(h.tag_length <= SC_TAG_MAX);
        FUZZ_CHECK((h.tag_length != 0) == ((h.flags & SC_FF_TAGGED) != 0));
        sc_frame_hdr_encode(&h, enc);
        FUZZ_CHECK(memcmp(enc, data, SC_FRAME_HDR_LEN) == 0);

        if (limits[i] != 0xffffffffu) {
            continue;
        }
        /* sc_transport.c: a complete frame, sealed (tag = nonce + GCM tag) */
        total = SC_FRAME_HDR_LEN + (apr_size_t)h.length + h.tag_length;
        if (size >= total && (h.flags & SC_FF_TAGGED) && h.tag_length == SC_SEAL_OVERHEAD) {
            open_exact(data, SC_FRAME_HDR_LEN, data + SC_FRAME_HDR_LEN,
                       (apr_size_t)h.length + SC_SEAL_OVERHEAD);
        }
        /* the whole rest, whatever it is */
        open_exact(data, SC_FRAME_HDR_LEN, data + SC_FRAME_HDR_LEN, size - SC_FRAME_HDR_LEN);
    }
    return 0;
}
