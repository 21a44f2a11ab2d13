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
 *  5. The raw input as a DeltaManager message (sc_msg_decode: every type's
 *     decoder).  Properties: a message that is read has what its decoder
 *     promises (valid ids, a DELTA above its base, a REBIND within one base,
 *     DEAD bases and DIGEST's dead entries of 1 to SC_TOMB_BASE - 1 hex
 *     digits, DIGEST's live entries with a valid id and a version, FULL
 *     records as in 1) and re-encodes with its type's encoder to exactly the
 *     bytes it was read from, stamp included (FULL, DELTA and ALL_DATA carry
 *     one after their last field: one read without it re-encodes with an
 *     empty stamp after those bytes); a DELTA's attribute part is what is
 *     well formed before its stamp, else the rest of the input; other types
 *     leave what follows their last field.  Those bytes cut short are
 *     refused (every field is needed; a stamp cut short is refused), but for
 *     a DELTA cut within its attribute part, which is read when applied
 *     (sc_msg_delta_apply, given the decoded DELTA and the first text: no
 *     crash), and a message cut just before its stamp, which is a message of
 *     a member without stamps.
 */
#include "fuzz_common.h"

#include <string.h>

#include "apr_hash.h"

#include "apr_strings.h"
#include "apr_lib.h"
#include "sc_repl.h"
#include "sc_store.h"

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

/* ---- sc_repl_apply's reference: the earlier implementation, which parsed
 * a copy of the data (sc_data_parse), applied the delta to the pairs and
 * joined them (sc_data_join); sc_repl_apply must give the same bytes, and
 * refuse the same deltas ---- */

static apr_hash_t *ref_kv_index(apr_pool_t *p, const apr_array_header_t *kv)
{
    apr_hash_t *h = apr_hash_make(p);
    int i;
    for (i = 0; i + 1 < kv->nelts; i += 2) {
        const char *k = APR_ARRAY_IDX(kv, i, const char *);
        if (!apr_hash_get(h, k, APR_HASH_KEY_STRING)) {
            apr_hash_set(h, k, APR_HASH_KEY_STRING, (void *)(apr_uintptr_t)(i + 1));
        }
    }
    return h;
}

static const char *ref_apply(apr_pool_t *p, const char *data, sc_rd *r)
{
    apr_array_header_t *kv = sc_data_parse(p, data);
    apr_hash_t *idx = ref_kv_index(p, kv);
    apr_uint32_t nset = sc_rd_u32(r), nrem, i;
    for (i = 0; i < nset && !r->bad; i++) {
        apr_uint32_t kl = sc_rd_u32(r);
        const unsigned char *k = sc_rd_bytes(r, kl);
        apr_uint32_t vl = sc_rd_u32(r);
        const unsigned char *v = sc_rd_bytes(r, vl);
        const char *ks, *vs;
        apr_uintptr_t at;
        if (!k || !v || memchr(k, '\0', kl) || memchr(v, '\0', vl)) {
            return NULL;
        }
        ks = apr_pstrmemdup(p, (const char *)k, kl);
        vs = apr_pstrmemdup(p, (const char *)v, vl);
        if (strchr(ks, '&') || strchr(ks, '=') || strchr(vs, '&')) {
            return NULL;              /* not mod_session's escaped form */
        }
        at = (apr_uintptr_t)apr_hash_get(idx, ks, APR_HASH_KEY_STRING);
        if (at) {
            int j;
            /* every occurrence of a repeated key takes the value */
            for (j = (int)at - 1; j + 1 < kv->nelts; j += 2) {
                const char *kj = APR_ARRAY_IDX(kv, j, const char *);
                if (kj && !strcmp(kj, ks)) {
                    APR_ARRAY_IDX(kv, j + 1, const char *) = vs;
                }
            }
        }
        else {
            APR_ARRAY_PUSH(kv, const char *) = ks;
            APR_ARRAY_PUSH(kv, const char *) = vs;
            apr_hash_set(idx, ks, APR_HASH_KEY_STRING, (void *)(apr_uintptr_t)(kv->nelts - 1));
        }
    }
    nrem = sc_rd_u32(r);
    for (i = 0; i < nrem && !r->bad; i++) {
        apr_uint32_t kl = sc_rd_u32(r);
        const unsigned char *k = sc_rd_bytes(r, kl);
        const char *ks;
        apr_uintptr_t at;
        int j;
        if (!k || memchr(k, '\0', kl)) {
            return NULL;
        }
        ks = apr_pstrmemdup(p, (const char *)k, kl);
        at = (apr_uintptr_t)apr_hash_get(idx, ks, APR_HASH_KEY_STRING);
        if (!at) {
            continue;
        }
        for (j = (int)at - 1; j + 1 < kv->nelts; j += 2) {
            const char *kj = APR_ARRAY_IDX(kv, j, const char *);
            if (kj && !strcmp(kj, ks)) {
                APR_ARRAY_IDX(kv, j, const char *) = NULL;   /* removed */
            }
        }
        apr_hash_set(idx, ks, APR_HASH_KEY_STRING, NULL);
    }
    if (r->bad) {
        return NULL;
    }
    return sc_data_join(p, kv);
}

/* The text's pairs as sc_store_hash splits them (between '&', empty ones
 * left out): is a key (up to a pair's first '=') there twice, and is a pair
 * without '=' there? */
static void raw_pairs(apr_pool_t *p, const char *t, int *repeated, int *no_eq)
{
    apr_hash_t *seen = apr_hash_make(p);
    *repeated = *no_eq = 0;
    while (*t) {
        apr_size_t n = strcspn(t, "&"), kl = strcspn(t, "&=");
        if (n) {
            *no_eq |= kl == n;
            *repeated |= apr_hash_get(seen, t, (apr_ssize_t)kl) != NULL;
            apr_hash_set(seen, t, (apr_ssize_t)kl, "");
        }
        t += n + (t[n] ? 1 : 0);
    }
}

/* sc_repl_apply_kept(data, delta at r) with data's hash: the same result as
 * sc_repl_apply, its length, and a hash that is sc_store_hash's of the
 * result, made whenever every pair of data has its '='; every range it says
 * kept is in both texts, after the one before, at least SC_REPL_KEPT_MIN
 * bytes, and the same bytes in both (what the store then does not compare) */
static void apply_hash_checked(apr_pool_t *p, const char *data, const sc_rd *r,
                               const char *got)
{
    sc_rd c = *r;
    apr_uint64_t base = sc_store_hash(data, (apr_uint32_t)strlen(data)), h = 7;
    apr_size_t len = 0, dlen = strlen(data), end = 0;
    apr_array_header_t *kept = NULL;
    const char *again = sc_repl_apply_kept(p, data, &c, base, &h, &len, &kept);
    int repeated, no_eq, i;
    FUZZ_CHECK((again == NULL) == (got == NULL));
    if (!again) {
        return;
    }
    FUZZ_CHECK(strcmp(again, got) == 0 && len == strlen(got));
    for (i = 0; kept && i < kept->nelts; i++) {
        const sc_store_range *k = &APR_ARRAY_IDX(kept, i, sc_store_range);
        FUZZ_CHECK(k->off >= end && k->len >= SC_REPL_KEPT_MIN);
        FUZZ_CHECK(k->off + k->len <= len && k->off + k->len <= dlen);
        FUZZ_CHECK(memcmp(got + k->off, data + k->off, k->len) == 0);
        end = k->off + k->len;
    }
    FUZZ_CHECK(!h || h == sc_store_hash(got, (apr_uint32_t)len));
    raw_pairs(p, data, &repeated, &no_eq);
    FUZZ_CHECK(h || no_eq || base <= 1);
}

/* sc_repl_apply(data, delta at r) against ref_apply: the same result (or
 * both refused) and the reader left at the same place (r: where
 * sc_repl_apply left it). */
static const char *apply_checked(apr_pool_t *p, const char *data, sc_rd *r)
{
    sc_rd a = *r, b = *r;
    const char *got = sc_repl_apply(p, data, &a), *want = ref_apply(p, data, &b);
    FUZZ_CHECK((got == NULL) == (want == NULL));
    FUZZ_CHECK(!got || strcmp(got, want) == 0);
    FUZZ_CHECK(!got || (a.bad == b.bad && a.left == b.left));
    apply_hash_checked(p, data, r, got);
    *r = a;
    return got;
}

/* a filter of pairs kept on the member that set them: keys starting 'L' */
static int local_l(const char *key, apr_size_t klen)
{
    return klen && key[0] == 'L';
}

/* A writer's new hash made from its old one (sc_repl_delta_how leaving
 * the local pairs out, as a save does): the DELTA's bytes are
 * sc_repl_delta's of the texts without them (sc_repl_distributed), the hash sc_store_hash's of the whole new text, made
 * whenever no key is there twice; and the DELTA applied to the whole old
 * text (local pairs kept, as another member does) checked as above. */
static void hashes_checked(apr_pool_t *p, const char *old_data, const char *new_data,
                           int filter)
{
    sc_buf b1, b2;
    sc_rd r;
    sc_msg_delta m;
    sc_delta_how how;
    apr_uint64_t oh, h = 7;
    const char *od, *nd, *got;
    int rep_o, rep_n, no_eq;

    sc_store_set_hash_filter(filter ? local_l : NULL);
    sc_repl_set_local_filter(filter ? local_l : NULL);
    od = sc_repl_distributed(p, old_data, NULL);
    nd = sc_repl_distributed(p, new_data, NULL);
    oh = sc_store_hash(old_data, (apr_uint32_t)strlen(old_data));
    sc_buf_init(&b1, p, 0);
    sc_buf_init(&b2, p, 0);
    sc_repl_delta(&b1, TEST_ID, 41, 42, 5, 1800, od, nd);
    how.local_out = 1;
    how.old_hash = oh;
    how.new_hash = &h;
    how.copied = NULL;
    sc_repl_delta_how(&b2, TEST_ID, 41, 42, 5, 1800, old_data, new_data, &how);
    FUZZ_CHECK(b1.len == b2.len && memcmp(b1.buf, b2.buf, b1.len) == 0);
    FUZZ_CHECK(!h || h == sc_store_hash(new_data, (apr_uint32_t)strlen(new_data)));
    raw_pairs(p, od, &rep_o, &no_eq);
    raw_pairs(p, nd, &rep_n, &no_eq);
    FUZZ_CHECK(h || rep_o || rep_n || oh <= 1);
    sc_rd_init(&r, b1.buf, b1.len);
    FUZZ_CHECK(sc_msg_delta_decode(&r, p, &m));
    sc_rd_init(&r, m.attrs, m.attrs_len);
    got = sc_repl_apply(p, old_data, &r);
    FUZZ_CHECK(got != NULL);
    sc_rd_init(&r, m.attrs, m.attrs_len);
    apply_hash_checked(p, old_data, &r, got);
    sc_store_set_hash_filter(NULL);
    sc_repl_set_local_filter(NULL);
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
    result = apply_checked(p, old_data, &r);
    FUZZ_CHECK(result != NULL);
    /* then the empty stamp */
    FUZZ_CHECK(!r.bad && r.left == SC_DELTA_STAMP_LEN && r.p[0] == SC_STAMP_TAG);

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

static void check_record(const sc_sess_copy *s)
{
    FUZZ_CHECK(sc_sid_valid(s->id));
    FUZZ_CHECK(s->version > 0);
    FUZZ_CHECK(s->data != NULL && s->data[s->data_len] == '\0');
    FUZZ_CHECK(strlen(s->data) == s->data_len);
}

/* The message with its type's encoder, after checking what the decoder
 * promises of it. */
static void encode_checked(sc_buf *b, const sc_msg *m)
{
    apr_uint32_t i;
    switch (m->type) {
    case SC_REPL_FULL:
        check_record(&m->full);
        sc_msg_full_encode(b, &m->full);
        break;
    case SC_REPL_DELTA:
        FUZZ_CHECK(sc_sid_valid(m->delta.id));
        FUZZ_CHECK(m->delta.version > m->delta.base);
        sc_msg_delta_encode(b, &m->delta);
        break;
    case SC_REPL_REMOVE:
        FUZZ_CHECK(sc_sid_valid(m->remove.id));
        sc_msg_remove_encode(b, &m->remove);
        break;
    case SC_REPL_EXPIRE:
        FUZZ_CHECK(sc_sid_valid(m->expire.id));
        sc_msg_expire_encode(b, &m->expire);
        break;
    case SC_REPL_TOUCH:
        for (i = 0; i < m->touch.n; i++) {
            FUZZ_CHECK(sc_sid_valid(m->touch.ids[i]));
        }
        sc_msg_touch_encode(b, &m->touch);
        break;
    case SC_REPL_GET_ALL:
        sc_msg_get_all_encode(b);
        break;
    case SC_REPL_ALL_DATA:
        for (i = 0; i < m->all_data.n; i++) {
            check_record(&m->all_data.s[i]);
        }
        sc_msg_all_data_encode(b, &m->all_data);
        break;
    case SC_REPL_COMPLETE:
        sc_msg_complete_encode(b, &m->complete);
        break;
    case SC_REPL_GET_SESSION:
        FUZZ_CHECK(sc_sid_valid(m->get_session.id));
        sc_msg_get_session_encode(b, &m->get_session);
        break;
    case SC_REPL_REBIND:
        FUZZ_CHECK(sc_sid_valid(m->rebind.old_id) && sc_sid_valid(m->rebind.new_id));
        /* the same base: the hex before msm's "-<node>" or the '.' */
        FUZZ_CHECK(strcspn(m->rebind.old_id, "-.") == strcspn(m->rebind.new_id, "-.")
                   && !strncmp(m->rebind.old_id, m->rebind.new_id,
                               strcspn(m->rebind.old_id, "-.")));
        sc_msg_rebind_encode(b, &m->rebind);
        break;
    case SC_REPL_DEAD:
        for (i = 0; i < m->dead.n; i++) {
            const char *c = m->dead.bases[i];
            FUZZ_CHECK(*c && strlen(c) < SC_TOMB_BASE);
            for (; *c; c++) {
                FUZZ_CHECK(apr_isxdigit(*c));
            }
        }
        sc_msg_dead_encode(b, &m->dead);
        break;
    case SC_REPL_DIGEST:
        for (i = 0; i < m->digest.n; i++) {
            const sc_digest_entry *d = &m->digest.e[i];
            if (d->dead) {
                const char *c = d->id;
                FUZZ_CHECK(*c && strlen(c) < SC_TOMB_BASE);
                for (; *c; c++) {
                    FUZZ_CHECK(apr_isxdigit(*c));
                }
            }
            else {
                FUZZ_CHECK(sc_sid_valid(d->id));
                FUZZ_CHECK(d->stamp.version > 0);
            }
        }
        sc_msg_digest_encode(b, &m->digest);
        break;
    case SC_REPL_LOCATE:
    case SC_REPL_MAP:
        for (i = 0; i < m->locate.n; i++) {
            const sc_loc_item *it = &m->locate.items[i];
            FUZZ_CHECK(sc_sid_valid(it->id));
            FUZZ_CHECK(strlen(it->primary) <= SC_BK_ROUTE_MAX);
            FUZZ_CHECK(strlen(it->backup) <= SC_BK_ROUTE_MAX);
        }
        sc_msg_locate_encode(b, m->type, &m->locate);
        break;
    case SC_REPL_FETCH:
        FUZZ_CHECK(sc_sid_valid(m->fetch.id));
        sc_msg_fetch_encode(b, &m->fetch);
        break;
    case SC_REPL_NOT_HERE:
        FUZZ_CHECK(sc_sid_valid(m->not_here.id));
        FUZZ_CHECK(m->not_here.dead == 0 || m->not_here.dead == 1);
        sc_msg_not_here_encode(b, &m->not_here);
        break;
    case SC_REPL_OWNER:
        FUZZ_CHECK(sc_sid_valid(m->owner.id));
        FUZZ_CHECK(strlen(m->owner.primary) <= SC_BK_ROUTE_MAX);
        sc_msg_owner_encode(b, &m->owner);
        break;
    case SC_REPL_GET_MAP:
        sc_msg_get_map_encode(b);
        break;
    case SC_REPL_HERE:
        check_record(&m->here.s);
        sc_msg_here_encode(b, &m->here);
        break;
    default:
        fprintf(stderr, "fuzz_session: sc_msg_decode read a message of type %u\n", m->type);
        abort();
    }
}

static void message(apr_pool_t *p, const uint8_t *data, size_t size, const char *old_data)
{
    sc_rd r;
    sc_msg m;
    sc_buf b;
    apr_size_t used, stamp_len, cuts[3], ncuts;
    int ok, stamped;

    sc_rd_init(&r, data, size);
    memset(&m, 0, sizeof(m));
    ok = sc_msg_decode(&r, p, &m);
    FUZZ_CHECK(ok == !r.bad);
    FUZZ_CHECK(!ok || sc_msg_name(m.type) != NULL);
    if (!ok) {
        return;
    }
    used = size - r.left;
    /* the stamp after the last field, as read: stamped, and its length */
    switch (m.type) {
    case SC_REPL_FULL:
        stamped = m.full.stamped;
        stamp_len = SC_FULL_STAMP_LEN;
        break;
    case SC_REPL_DELTA:
        stamped = m.delta.stamped;
        stamp_len = SC_DELTA_STAMP_LEN;
        break;
    case SC_REPL_HERE:
        stamped = m.here.s.stamped;
        stamp_len = SC_FULL_STAMP_LEN;
        break;
    case SC_REPL_ALL_DATA:
        stamped = m.all_data.n ? m.all_data.s[0].stamped : used > 5;
        stamp_len = 1 + 9 * (apr_size_t)m.all_data.n;
        break;
    default:
        stamped = -1;                 /* has none */
        stamp_len = 0;
    }
    sc_buf_init(&b, p, 64);
    encode_checked(&b, &m);
    if (stamped == 0) {
        /* read without one: re-encoded with an empty stamp after its bytes */
        FUZZ_CHECK(b.len == used + stamp_len);
        FUZZ_CHECK(b.buf[used] == SC_STAMP_TAG);
    }
    else {
        FUZZ_CHECK(b.len == used);
    }
    FUZZ_CHECK(memcmp(b.buf, data, used) == 0);
    if (m.type == SC_REPL_DELTA) {
        apr_size_t hdr = 1 + 1 + strlen(m.delta.id) + 4 * 8;
        (void)sc_msg_delta_apply(p, old_data, &m.delta);
        /* the type, the id, four numbers, the attribute part, the stamp */
        FUZZ_CHECK(used == hdr + m.delta.attrs_len + (stamped ? stamp_len : 0));
        /* without a stamp, the attribute part is what was left, unless a
         * well-formed one was followed by bytes that are no stamp */
        FUZZ_CHECK(stamped || r.left == 0 || r.p[0] != SC_STAMP_TAG);
        /* cut within the header, or within the stamp */
        ncuts = 0;
        cuts[ncuts++] = hdr - 1;
        cuts[ncuts++] = hdr / 2;
        if (stamped) {
            cuts[ncuts++] = used - 1;
        }
    }
    else {
        ncuts = 0;
        if (!(stamped == 1 && stamp_len == 1)) {
            cuts[ncuts++] = used - 1;
        }
        if (!(stamped == 1 && used / 2 == used - stamp_len)) {
            cuts[ncuts++] = used / 2;
        }
    }
    {
        /* cut short: refused (read from copies of exactly that length) */
        apr_size_t k;
        for (k = 0; k < ncuts; k++) {
            unsigned char *cut = malloc(cuts[k] ? cuts[k] : 1);
            sc_msg again;
            if (!cut) {
                abort();
            }
            memcpy(cut, data, cuts[k]);
            sc_rd_init(&r, cut, cuts[k]);
            FUZZ_CHECK(!sc_msg_decode(&r, p, &again));
            free(cut);
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
    hashes_checked(p, old_data, new_data, size && (data[0] & 1));

    sc_rd_init(&r, data, size);
    (void)apply_checked(p, old_data, &r);

    message(p, data, size, old_data);
    return 0;
}
