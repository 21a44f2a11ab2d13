/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fuzz_common.h -- what the libFuzzer targets in fuzz/ share: APR set up once,
 * one pool cleared before every input, and a property check that aborts (so
 * libFuzzer keeps the input as a crash) with a message saying which property
 * failed.
 */
#ifndef SC_FUZZ_COMMON_H
#define SC_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "apr_general.h"
#include "apr_pools.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_UNUSED __attribute__((unused))

/* A pool that lives as long as the process (for what a target sets up once),
 * made on the first call with apr_initialize.  apr_terminate at exit destroys
 * every pool and runs their cleanups (sc_crypto's frees its OpenSSL context),
 * before LeakSanitizer's check at exit. */
static FUZZ_UNUSED apr_pool_t *fuzz_global_pool(void)
{
    static apr_pool_t *global;
    if (!global) {
        if (apr_initialize() != APR_SUCCESS || apr_pool_create(&global, NULL) != APR_SUCCESS) {
            fprintf(stderr, "fuzz: cannot initialize APR\n");
            abort();
        }
        atexit(apr_terminate);
    }
    return global;
}

/* The pool for one input: created on the first call, cleared on every later
 * one. */
static FUZZ_UNUSED apr_pool_t *fuzz_pool(void)
{
    static apr_pool_t *pool;
    if (!pool) {
        if (apr_pool_create(&pool, fuzz_global_pool()) != APR_SUCCESS) {
            abort();
        }
    }
    else {
        apr_pool_clear(pool);
    }
    return pool;
}

#define FUZZ_CHECK(cond)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, \
                    #cond);                                                      \
            abort();                                                             \
        }                                                                        \
    } while (0)

/* The EncryptInterceptor keys the frame and heartbeat targets open with, and
 * gen_seeds seals its seeds with (the current key, and the previous one a
 * cluster still accepts while keys rotate). */
static FUZZ_UNUSED const unsigned char fuzz_key[32] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
    0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f
};
static FUZZ_UNUSED const unsigned char fuzz_prev_key[16] = {
    0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b,
    0x3c, 0x2d, 0x1e, 0x0f
};

/* The member id of the engine fuzz_stream runs (byte i of 16), which its
 * sealed seeds (gen_seeds.c) are sealed for. */
#define FUZZ_SELF_ID_BYTE(i) ((unsigned char)(0x50 + (i)))

#endif /* SC_FUZZ_COMMON_H */
