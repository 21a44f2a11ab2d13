/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fuzz_heartbeat -- the heartbeat decoder (sc_heartbeat_decode, sc_proto.c)
 * with a round-trip property: a heartbeat that decodes is encoded again
 * (sc_heartbeat_encode) and decoded again, and every field must come back the
 * same; the encoding must also be byte for byte the input up to the tag (the
 * encoder writes a tag only for the extension's fields, issue 21: its marker,
 * the load figures and the URL, and nothing a later version might add), and
 * an encoder given one byte too few must refuse.  Any violation abort()s.
 *
 * An input starting with SC_HB_SEALED_MAGIC ("SCE2") is also treated as
 * sc_transport.c treats a sealed multicast datagram: opened with the test
 * key (sc_crypto_open, the magic as additional data) and, when authentic,
 * its plaintext goes through the same decoder and round trip.  The seeds
 * hold heartbeats sealed with the test key and the previous key.
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
        fprintf(stderr, "fuzz_heartbeat: %s\n", err);
        abort();
    }
    return 0;
}

static void same_heartbeat(const sc_heartbeat *a, const sc_heartbeat *b)
{
    FUZZ_CHECK(a->state == b->state);
    FUZZ_CHECK(a->flags == b->flags);
    FUZZ_CHECK(memcmp(a->id, b->id, SC_ID_LEN) == 0);
    FUZZ_CHECK(a->incarnation == b->incarnation);
    FUZZ_CHECK(a->alive_ms == b->alive_ms);
    FUZZ_CHECK(a->seq == b->seq);
    FUZZ_CHECK(a->port == b->port);
    FUZZ_CHECK(a->family == b->family);
    FUZZ_CHECK(memcmp(a->addr, b->addr, sizeof(a->addr)) == 0);
    FUZZ_CHECK(strcmp(a->route, b->route) == 0);
    FUZZ_CHECK(a->domain_len == b->domain_len);
    FUZZ_CHECK(memcmp(a->domain, b->domain, a->domain_len) == 0);
    FUZZ_CHECK(a->has_ext == b->has_ext);
    FUZZ_CHECK(a->busy == b->busy && a->capacity == b->capacity);
    FUZZ_CHECK(a->sessions == b->sessions);
    FUZZ_CHECK(strcmp(a->url, b->url) == 0);
}

static void check(const unsigned char *buf, apr_size_t len)
{
    sc_heartbeat hb, again;
    unsigned char enc[SC_HB_MAX_LEN];
    apr_size_t n, rlen, ulen, ext;

    memset(&hb, 0xa5, sizeof(hb));
    if (sc_heartbeat_decode(buf, len, &hb) != NULL) {
        return;
    }
    rlen = strlen(hb.route);
    FUZZ_CHECK(rlen >= 1 && rlen <= SC_ROUTE_MAX);
    FUZZ_CHECK(hb.domain_len <= SC_DOMAIN_MAX);
    FUZZ_CHECK(hb.port != 0);
    FUZZ_CHECK(hb.state >= 1 && hb.state <= SC_MS_MAX);
    FUZZ_CHECK(len >= SC_HB_FIXED_LEN + rlen + hb.domain_len + 2);
    FUZZ_CHECK(len <= SC_HB_MAX_LEN);

    FUZZ_CHECK(hb.has_ext == 0 || hb.has_ext == 1);
    ulen = strlen(hb.url);
    FUZZ_CHECK(ulen <= SC_URL_MAX);
    FUZZ_CHECK(hb.has_ext || ulen == 0);
    ext = hb.has_ext ? SC_HB_EXT_FIXED + ulen : 0;

    n = sc_heartbeat_encode(&hb, enc, sizeof(enc));
    FUZZ_CHECK(n == SC_HB_FIXED_LEN + rlen + hb.domain_len + 2 + ext);
    FUZZ_CHECK(memcmp(enc, buf, n - 2 - ext) == 0);
    FUZZ_CHECK(sc_get16(enc + n - 2 - ext) == ext);
    if (ext) {
        /* the marker, the figures and the URL as they came */
        FUZZ_CHECK(memcmp(enc + n - ext, buf + n - ext, ext) == 0);
    }
    FUZZ_CHECK(sc_heartbeat_encode(&hb, enc, n - 1) == 0);

    memset(&again, 0x5a, sizeof(again));
    FUZZ_CHECK(sc_heartbeat_decode(enc, n, &again) == NULL);
    same_heartbeat(&hb, &again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)fuzz_pool();
    check(data, size);

    /* sc_transport.c's mcast_read with EncryptInterceptor */
    if (size >= 4 + SC_SEAL_OVERHEAD && memcmp(data, SC_HB_SEALED_MAGIC, 4) == 0) {
        apr_size_t plen = size - 4 - SC_SEAL_OVERHEAD;
        unsigned char *plain = malloc(plen ? plen : 1);
        int prev = -1;
        if (!plain) {
            abort();
        }
        if (sc_crypto_open(crypto, data, 4, data + 4, size - 4, plain, &prev) == 0) {
            FUZZ_CHECK(prev == 0 || prev == 1);
            check(plain, plen);
        }
        free(plain);
    }
    return 0;
}
