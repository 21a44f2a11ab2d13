/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fuzz_session -- the session (de)serializer of sc_repl.c.
 *
 *  1. The input as a sequence of FULL records (the body of FULL and of
 *     ALL_DATA): sc_rd_full_record until one is refused.  Property: a record
 *     that is read has a valid id and re-encodes (sc_repl_full_record) to
 *     exactly the bytes it was read from.
 *  2. The input as session data text (up to its first NUL): sc_data_parse then
 *     sc_data_join.  Properties: parsing the joined text gives the same pairs,
 *     and text already in the joined form ("k=v&k2=v2", no empty pair, each
 *     with '=') joins back to itself.
 *  3. Two data texts from the input (split at its first '\n', else half way;
 *     each up to its first NUL): sc_repl_delta(old, new), then the DELTA is read
 *     back (type, id, versions, times) and sc_repl_apply'd to old.  The result
 *     must hold new's attributes: the same keys, and for each key the value
 *     new has.  sc_repl_delta compares against old's first value of a key
 *     (kv_get) and sc_repl_apply sets every pair of the key, so the result's
 *     first value is the one that counts.  The check is made only when new has
 *     no key twice: mod_session's encoder writes each key once (its table is
 *     filled with apr_table_set), and for repeated keys in new the delta is not
 *     defined (its sets are applied in order, the last one winning, while the
 *     comparison uses the first).
 *  4. The raw input as the attribute part of a DELTA applied to the first text
 *     (sc_repl_apply must refuse malformed deltas without crashing).
 */
#include "fuzz_common.h"

#include <string.h>

#include "apr_strings.h"
#include "sc_repl.h"

#define TEST_ID "0123456789ABCDEF0123456789abcdef.node-1_a"

static const char *kv_first(const apr_array_header_t *kv, const char *k)
{
    int i;
    for (i = 0; i + 1 < kv->nelts; i += 2) {
        if (strcmp(APR_ARRAY_IDX(kv, i, const char *), k) == 0) {
            return APR_ARRAY_IDX(kv, i + 1, const char *);
        }
    }
    return NULL;
}

static int has_repeated_key(const apr_array_header_t *kv)
{
    int i, j;
    for (i = 0; i + 1 < kv->nelts; i += 2) {
        for (j = i + 2; j + 1 < kv->nelts; j += 2) {
            if (strcmp(APR_ARRAY_IDX(kv, i, const char *),
                       APR_ARRAY_IDX(kv, j, const char *)) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

static void same_pairs(const apr_array_header_t *a, const apr_array_header_t *b)
{
    int i;
    FUZZ_CHECK(a->nelts == b->nelts);
    for (i = 0; i < a->nelts; i++) {
        FUZZ_CHECK(strcmp(APR_ARRAY_IDX(a, i, const char *),
                          APR_ARRAY_IDX(b, i, const char *)) == 0);
    }
}

/* "k=v&k2=v2": no empty pair, each pair with '=' (or empty text). */
static int joined_form(const char *t)
{
    const char *c = t;
    if (!*t) {
        return 1;
    }
    for (;;) {
        apr_size_t n = strcspn(c, "&");
        if (n == 0 || !memchr(c, '=', n)) {
            return 0;
        }
        if (!c[n]) {
            return 1;
        }
        c += n + 1;
    }
}

static void full_records(apr_pool_t *p, const uint8_t *data, size_t size)
{
    sc_rd r;
    sc_rd_init(&r, data, size);
    while (r.left > 0) {
        const unsigned char *start = r.p;
        sc_sess_copy s;
        sc_buf b;
        memset(&s, 0, sizeof(s));
        if (!sc_rd_full_record(&r, p, &s)) {
            break;
        }
        FUZZ_CHECK(!r.bad);
        FUZZ_CHECK(sc_sid_valid(s.id));
        FUZZ_CHECK(s.data != NULL && s.data[s.data_len] == '\0');
        sc_buf_init(&b, p, 64);
        sc_repl_full_record(&b, &s);
        FUZZ_CHECK(b.len == (apr_size_t)(r.p - start));
        FUZZ_CHECK(memcmp(b.buf, start, b.len) == 0);
    }
}

static void parse_join(apr_pool_t *p, const char *text)
{
    apr_array_header_t *kv = sc_data_parse(p, text), *again;
    const char *joined = sc_data_join(p, kv);
    FUZZ_CHECK(kv->nelts % 2 == 0);
    again = sc_data_parse(p, joined);
    same_pairs(kv, again);
    FUZZ_CHECK(strcmp(sc_data_join(p, again), joined) == 0);
    if (joined_form(text)) {
        FUZZ_CHECK(strcmp(joined, text) == 0);
    }
}

static void delta_apply(apr_pool_t *p, const char *old_data, const char *new_data)
{
    sc_buf b;
    sc_rd r;
    const char *id, *result;
    int changed;
    apr_array_header_t *o, *n, *res;
    int i;

    sc_buf_init(&b, p, 0);
    changed = sc_repl_delta(&b, TEST_ID, 41, 42, (apr_time_t)1234567890123456LL, 1800,
                            old_data, new_data);
    sc_rd_init(&r, b.buf, b.len);
    FUZZ_CHECK(sc_rd_u8(&r) == SC_REPL_DELTA);
    id = sc_rd_id(&r, p);
    FUZZ_CHECK(id && strcmp(id, TEST_ID) == 0);
    FUZZ_CHECK(sc_rd_u64(&r) == 41);
    FUZZ_CHECK(sc_rd_u64(&r) == 42);
    FUZZ_CHECK(sc_rd_u64(&r) == 1234567890123456ULL);
    FUZZ_CHECK(sc_rd_u64(&r) == 1800);
    FUZZ_CHECK(!r.bad);
    result = sc_repl_apply(p, old_data, &r);
    FUZZ_CHECK(result != NULL);
    FUZZ_CHECK(!r.bad && r.left == 0);

    o = sc_data_parse(p, old_data);
    n = sc_data_parse(p, new_data);
    if (has_repeated_key(n)) {
        return;
    }
    res = sc_data_parse(p, result);
    /* every key of new, with new's value */
    for (i = 0; i + 1 < n->nelts; i += 2) {
        const char *k = APR_ARRAY_IDX(n, i, const char *);
        const char *v = kv_first(res, k);
        FUZZ_CHECK(v != NULL);
        FUZZ_CHECK(strcmp(v, APR_ARRAY_IDX(n, i + 1, const char *)) == 0);
    }
    /* and no other key */
    for (i = 0; i + 1 < res->nelts; i += 2) {
        FUZZ_CHECK(kv_first(n, APR_ARRAY_IDX(res, i, const char *)) != NULL);
    }
    /* nothing to send only when nothing changed */
    if (!changed) {
        for (i = 0; i + 1 < n->nelts; i += 2) {
            const char *ov = kv_first(o, APR_ARRAY_IDX(n, i, const char *));
            FUZZ_CHECK(ov && strcmp(ov, APR_ARRAY_IDX(n, i + 1, const char *)) == 0);
        }
        for (i = 0; i + 1 < o->nelts; i += 2) {
            FUZZ_CHECK(kv_first(n, APR_ARRAY_IDX(o, i, const char *)) != NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    const char *text, *nl, *old_data, *new_data;
    apr_size_t split;
    sc_rd r;

    full_records(p, data, size);

    text = apr_pstrndup(p, (const char *)data, size);
    parse_join(p, text);

    nl = memchr(data, '\n', size);
    split = nl ? (apr_size_t)(nl - (const char *)data) : size / 2;
    old_data = apr_pstrndup(p, (const char *)data, split);
    new_data = apr_pstrndup(p, (const char *)data + split + (nl ? 1 : 0),
                            size - split - (nl ? 1 : 0));
    delta_apply(p, old_data, new_data);

    sc_rd_init(&r, data, size);
    (void)sc_repl_apply(p, old_data, &r);
    return 0;
}
