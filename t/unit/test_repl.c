/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * test_repl.c -- the session messages' codec (sc_repl.c): a DELTA as
 * sc_repl.h lays it out, applied to its base gives the new data; a chain of
 * deltas applied in turn; a delta applied on another base than its own loses
 * the changes between (why DeltaManager holds a delta until its base is
 * stored); FULL records read back; truncated and malformed messages refused;
 * a DELTA told which values were copied (sc_repl_delta_how).  Links sc_repl.c
 * and sc_proto.c, and sc_store.c and sc_shm.c for the hash's parts.
 * Session ids: the shapes sc_sid_valid accepts, and none the store cannot
 * hold (SC_SID_MAX).  A DELTA applied says which pairs stayed where they
 * were (sc_repl_apply_kept), for the store's write in place.
 */
#include "unit.h"

#include "apr_general.h"
#include "apr_strings.h"
#include "apr_hash.h"
#include "sc_repl.h"

#include <stdlib.h>

static apr_pool_t *p;

#define ID "0123456789abcdef0123456789ABCDEF.nodeB"

/* The data's attributes as "k=v" -> 1, to compare data whatever the order. */
static apr_hash_t *attrs(const char *data)
{
    apr_array_header_t *kv = sc_data_parse(p, data);
    apr_hash_t *h = apr_hash_make(p);
    int i;
    for (i = 0; i + 1 < kv->nelts; i += 2) {
        apr_hash_set(h, apr_pstrcat(p, APR_ARRAY_IDX(kv, i, const char *), "=",
                                    APR_ARRAY_IDX(kv, i + 1, const char *), NULL),
                     APR_HASH_KEY_STRING, "");
    }
    return h;
}

static int same_attrs(const char *a, const char *b)
{
    apr_hash_t *ha, *hb;
    apr_hash_index_t *hi;
    if (!a || !b) {
        return 0;
    }
    ha = attrs(a);
    hb = attrs(b);
    if (apr_hash_count(ha) != apr_hash_count(hb)) {
        return 0;
    }
    for (hi = apr_hash_first(p, ha); hi; hi = apr_hash_next(hi)) {
        if (!apr_hash_get(hb, apr_hash_this_key(hi), APR_HASH_KEY_STRING)) {
            return 0;
        }
    }
    return 1;
}

/* Reads a DELTA message's header as the engine does, r left at its
 * attribute part; 0 when it is not a DELTA. */
static int delta_header(const sc_buf *m, sc_rd *r, apr_uint64_t *base, apr_uint64_t *version)
{
    sc_rd_init(r, m->buf, m->len);
    if (sc_rd_u8(r) != SC_REPL_DELTA || !sc_rd_id(r, p)) {
        return 0;
    }
    *base = sc_rd_u64(r);
    *version = sc_rd_u64(r);
    sc_rd_u64(r);
    sc_rd_u64(r);
    return 1;
}

/* Applies a DELTA message to data: reads its header as the engine does,
 * then the attribute part.  NULL when malformed. */
static const char *apply(const sc_buf *m, const char *data, apr_uint64_t *base,
                         apr_uint64_t *version)
{
    sc_rd r;
    const char *out;
    if (!delta_header(m, &r, base, version)) {
        return NULL;
    }
    out = sc_repl_apply(p, data, &r);
    /* after the attribute part: nothing (a member without stamps), or the
     * stamp whole */
    if (r.left && (r.left != SC_DELTA_STAMP_LEN || r.p[0] != SC_STAMP_TAG)) {
        return NULL;
    }
    return out && !r.bad ? out : NULL;
}

static sc_buf delta(apr_uint64_t base, apr_uint64_t version, const char *old_data,
                    const char *new_data, int *changed)
{
    sc_buf b;
    sc_buf_init(&b, p, 64);
    *changed = sc_repl_delta(&b, ID, base, version, 1234567, 1800, old_data, new_data);
    return b;
}

static void layout(void)
{
    int changed;
    sc_buf m = delta(6, 7, "a=1&b=2&c=3", "a=1&b=9&d=4", &changed);
    sc_rd r;
    apr_uint32_t n, kl, vl;
    const unsigned char *k, *v;

    note("a DELTA's layout");
    ok(changed, "a change makes a delta");
    sc_rd_init(&r, m.buf, m.len);
    is(sc_rd_u8(&r), SC_REPL_DELTA, "type DELTA");
    is_str(sc_rd_id(&r, p), ID, "the session id");
    is(sc_rd_u64(&r), 6, "its base version");
    is(sc_rd_u64(&r), 7, "its version");
    is(sc_rd_u64(&r), 1234567, "the last access");
    is(sc_rd_u64(&r), 1800, "maxInactiveInterval");
    n = sc_rd_u32(&r);
    is(n, 2, "two attributes set (b changed, d new)");
    kl = sc_rd_u32(&r);
    k = sc_rd_bytes(&r, kl);
    vl = sc_rd_u32(&r);
    v = sc_rd_bytes(&r, vl);
    ok(k && v && kl == 1 && vl == 1 && k[0] == 'b' && v[0] == '9', "b=9 first");
    kl = sc_rd_u32(&r);
    k = sc_rd_bytes(&r, kl);
    vl = sc_rd_u32(&r);
    v = sc_rd_bytes(&r, vl);
    ok(k && v && kl == 1 && vl == 1 && k[0] == 'd' && v[0] == '4', "then d=4");
    is(sc_rd_u32(&r), 1, "one attribute removed");
    kl = sc_rd_u32(&r);
    k = sc_rd_bytes(&r, kl);
    ok(k && kl == 1 && k[0] == 'c', "c");
    is(sc_rd_u8(&r), SC_STAMP_TAG, "then the stamp's tag");
    is(sc_rd_u8(&r), 0, "an empty stamp: flags");
    is(sc_rd_u64(&r), 0, "fork");
    is(sc_rd_u64(&r), 0, "hash (not known)");
    is(sc_rd_u64(&r), 0, "base hash (not known)");
    ok(!r.bad && r.left == 0, "nothing else");
    {
        sc_stamp st = { 7, 0x1234, 5, SC_SF_MINOR };
        sc_msg_delta d;
        sc_repl_delta_stamp(&m, &st, 0x5678);
        sc_rd_init(&r, m.buf, m.len);
        ok(sc_msg_delta_decode(&r, p, &d) && d.stamped && d.flags == SC_SF_MINOR
           && d.fork == 5 && d.hash == 0x1234 && d.base_hash == 0x5678 && r.left == 0,
           "sc_repl_delta_stamp writes the stamp, read back by the decoder");
        ok(d.attrs_len == m.len - (1 + 1 + strlen(ID) + 32) - SC_DELTA_STAMP_LEN,
           "the attribute part ends before it");
    }
}

static void apply_chain(void)
{
    const char *v1 = "user=ann&cart=1", *v2 = "user=ann&cart=2&tmp=x",
               *v3 = "user=ann&cart=2&lang=fr&note=a%26b%3Dc";
    int changed;
    sc_buf d12 = delta(1, 2, v1, v2, &changed), d23 = delta(2, 3, v2, v3, &changed);
    apr_uint64_t base, version;
    const char *got;

    note("applying deltas");
    got = apply(&d12, v1, &base, &version);
    ok(same_attrs(got, v2), "v1 + delta(1->2) = v2");
    ok(base == 1 && version == 2, "read back as 1 -> 2");
    got = apply(&d23, got, &base, &version);
    ok(same_attrs(got, v3), "+ delta(2->3) = v3 (a removal, new attributes, an escaped value)");
    like(got, "note=a%26b%3Dc", "escaped values stay escaped");

    /* a version gap: delta(2->3) on v1, v2 never applied */
    got = apply(&d23, v1, &base, &version);
    ok(got != NULL, "a delta applies to any data");
    ok(!same_attrs(got, v3), "but on another base than its own it does not give its version");
    ok(got && strstr(got, "cart=1") && !strstr(got, "cart=2"),
       "the change of the version skipped is missing (why a delta waits for its base)");

    {
        sc_buf same = delta(3, 4, v3, v3, &changed);
        ok(!changed, "no change: no delta to send");
        got = apply(&same, v3, &base, &version);
        ok(same_attrs(got, v3), "and applying it changes nothing");
    }
    {
        sc_buf all = delta(3, 4, v3, "", &changed);
        ok(changed, "every attribute removed is a change");
        got = apply(&all, v3, &base, &version);
        is_str(got, "", "applied: no attribute left");
    }
}

static void malformed(void)
{
    int changed, cut, refused = 0, cuts = 0;
    sc_buf m = delta(1, 2, "a=1&b=2", "a=1&b=3&c=4", &changed);
    apr_uint64_t base, version;

    note("malformed messages");
    for (cut = 0; cut < (int)m.len; cut++) {
        sc_buf t = m;
        sc_rd r;
        sc_msg_delta d;
        if (cut == (int)(m.len - SC_DELTA_STAMP_LEN)) {
            /* without its stamp: a DELTA of a member that has none */
            t.len = (apr_size_t)cut;
            ok(apply(&t, "a=1&b=2", &base, &version) != NULL,
               "a DELTA without its stamp applies (as from a member without stamps)");
            continue;
        }
        t.len = (apr_size_t)cut;
        cuts++;
        sc_rd_init(&r, t.buf, t.len);
        refused += apply(&t, "a=1&b=2", &base, &version) == NULL
                   || (cut > (int)(m.len - SC_DELTA_STAMP_LEN) && !sc_msg_delta_decode(&r, p, &d));
    }
    is(refused, cuts, "a DELTA cut anywhere else is refused (%d cuts; in its stamp, by the "
       "decoder)", cuts);
    {
        /* an attribute value holding '&' is not mod_session's escaped form */
        sc_buf b;
        sc_buf_init(&b, p, 64);
        sc_buf_u8(&b, SC_REPL_DELTA);
        sc_buf_id(&b, ID);
        sc_buf_u64(&b, 1);
        sc_buf_u64(&b, 2);
        sc_buf_u64(&b, 0);
        sc_buf_u64(&b, 0);
        sc_buf_u32(&b, 1);
        sc_buf_u32(&b, 1);
        sc_buf_put(&b, "k", 1);
        sc_buf_u32(&b, 3);
        sc_buf_put(&b, "x&y", 3);
        sc_buf_u32(&b, 0);
        ok(apply(&b, "k=1", &base, &version) == NULL, "a value holding '&' is refused");
    }
    {
        sc_rd r;
        sc_buf b;
        sc_buf_init(&b, p, 64);
        sc_buf_id(&b, "not-a-session-id");
        sc_rd_init(&r, b.buf, b.len);
        ok(sc_rd_id(&r, p) == NULL && r.bad, "an id of another shape is refused");
    }
}

static void full_records(void)
{
    sc_sess_copy s, back;
    sc_buf b;
    sc_rd r;

    note("FULL records");
    memset(&s, 0, sizeof(s));
    apr_cpystrn(s.id, ID, sizeof(s.id));
    s.version = 42;
    s.created = 1000;
    s.last_access = 2000;
    s.max_inactive = 1800;
    s.data = "a=1&b=2";
    s.data_len = 7;
    sc_buf_init(&b, p, 64);
    sc_repl_full_record(&b, &s);
    sc_rd_init(&r, b.buf, b.len);
    ok(sc_rd_full_record(&r, p, &back), "a record reads back");
    ok(!strcmp(back.id, ID) && back.version == 42 && back.created == 1000
       && back.last_access == 2000 && back.max_inactive == 1800
       && back.data_len == 7 && !strcmp(back.data, "a=1&b=2"), "as written");
    ok(r.left == 0, "to its last byte");

    s.version = 0;
    sc_buf_init(&b, p, 64);
    sc_repl_full_record(&b, &s);
    sc_rd_init(&r, b.buf, b.len);
    ok(!sc_rd_full_record(&r, p, &back), "version 0 is refused (versions start at 1)");

    s.version = 1;
    s.data = "a=1\0b";
    s.data_len = 5;
    sc_buf_init(&b, p, 64);
    sc_repl_full_record(&b, &s);
    sc_rd_init(&r, b.buf, b.len);
    ok(!sc_rd_full_record(&r, p, &back), "data holding a NUL byte is refused");
}

/* sc_repl_delta_how: the values it is told new_data copied from old_data
 * are not compared again (told so wrongly, the change is not seen: the
 * encoding that tells it must be right); the others are; its DELTA is
 * sc_repl_delta's otherwise, and the new hash made from the old one's is
 * sc_store_hash's. */
static void delta_how(void)
{
    const char *old_data = "a=1&big=0123456789abcdef&c=3";
    const char *new_data = apr_pstrdup(p, "a=2&big=0123456789abcdef&c=4");
    const char *old_big = strstr(old_data, "0123"), *new_big = strstr(new_data, "0123");
    const char *new_c = strstr(new_data, "c=4") + 2, *old_c = strstr(old_data, "c=3") + 2;
    const char **key = apr_palloc(p, 2 * sizeof(*key));
    sc_delta_how how;
    sc_buf plain, told;
    apr_uint64_t h = 0, base, version;
    int changed;

    note("a DELTA told which values were copied");
    memset(&how, 0, sizeof(how));
    how.copied = apr_hash_make(p);
    key[0] = new_big;
    apr_hash_set(how.copied, &key[0], sizeof(key[0]), old_big);
    how.old_hash = sc_store_hash(old_data, (apr_uint32_t)strlen(old_data));
    how.new_hash = &h;
    plain = delta(6, 7, old_data, new_data, &changed);
    sc_buf_init(&told, p, 64);
    sc_repl_delta_how(&told, ID, 6, 7, 1234567, 1800, old_data, new_data, &how);
    ok(told.len == plain.len && !memcmp(told.buf, plain.buf, plain.len),
       "a value copied as told: the same DELTA as sc_repl_delta's");
    is((long long)h, (long long)sc_store_hash(new_data, (apr_uint32_t)strlen(new_data)),
       "and the new version's hash, made from the old one's");
    key[1] = new_c;
    apr_hash_set(how.copied, &key[1], sizeof(key[1]), old_c);
    sc_buf_init(&told, p, 64);
    sc_repl_delta_how(&told, ID, 6, 7, 1234567, 1800, old_data, new_data, &how);
    is_str(apply(&told, old_data, &base, &version), "a=2&big=0123456789abcdef&c=3",
           "a value told copied is taken as unchanged without a comparison");
}

/* The DELTA from old_data to new_data applied by sc_repl_apply_kept: the
 * result must be new_data, and its kept ranges, as "off+len,..." ("" none),
 * want. */
static void kept_case(const char *old_data, const char *new_data, const char *want,
                      const char *label)
{
    int changed, i;
    sc_buf m = delta(1, 2, old_data, new_data, &changed);
    sc_rd r;
    apr_uint64_t base, version;
    apr_array_header_t *kept = NULL;
    const char *out = NULL, *ranges = "";
    if (delta_header(&m, &r, &base, &version)) {
        out = sc_repl_apply_kept(p, old_data, &r, 0, NULL, NULL, &kept);
    }
    for (i = 0; kept && i < kept->nelts; i++) {
        const sc_store_range *k = &APR_ARRAY_IDX(kept, i, sc_store_range);
        ranges = apr_psprintf(p, "%s%s%u+%u", ranges, i ? "," : "", k->off, k->len);
    }
    is_str(out, new_data, "%s: applied", label);
    is_str(ranges, want, "%s: kept %s", label, *want ? want : "nothing");
}

static void kept_pairs(void)
{
    char *big = apr_palloc(p, 400);
    const char *was;
    memset(big, 'b', 397);
    big[397] = '\0';
    /* "n=1&big=<397 b>&s=short": big's pair is 401 bytes at offset 4; the
     * short pairs are never listed */
    was = apr_pstrcat(p, "n=1&big=", big, "&s=short", NULL);
    kept_case(was, apr_pstrcat(p, "n=2&big=", big, "&s=short", NULL), "4+401",
              "a counter changed before a big value");
    kept_case(was, apr_pstrcat(p, "n=10&big=", big, "&s=short", NULL), "",
              "the counter a byte longer (the big pair moved)");
    kept_case(was, apr_pstrcat(p, "n=1&big=", big, "&s=other", NULL), "4+401",
              "a change after the big pair");
    kept_case(was, apr_pstrcat(p, "n=1&big=", big, "x&s=short", NULL), "",
              "the big value changed");
    kept_case(apr_pstrcat(p, "n=1&big", big, "&s=short", NULL),
              apr_pstrcat(p, "n=2&big", big, "=&s=short", NULL), "",
              "a pair written without '=' (joined with one)");
}

/* "<hex digits>[-<node>].<route>", each part n characters of c */
static const char *sid(int hex, int node, int route)
{
    char *b = apr_palloc(p, (apr_size_t)(hex + node + route + 3)), *q = b;
    memset(q, 'a', (apr_size_t)hex);
    q += hex;
    if (node) {
        *q++ = '-';
        memset(q, 'n', (apr_size_t)node);
        q += node;
    }
    *q++ = '.';
    memset(q, 'r', (apr_size_t)route);
    q[route] = '\0';
    return b;
}

static void session_ids(void)
{
    ok(sc_sid_valid(ID), "an id of 32 hex digits and a route");
    ok(sc_sid_valid(sid(2, 0, 1)) && sc_sid_valid(sid(34, 0, 63)),
       "the shortest and the longest without a node id");
    ok(!sc_sid_valid(sid(36, 0, 1)) && !sc_sid_valid(sid(3, 0, 1))
       && !sc_sid_valid(sid(32, 0, 64)) && !sc_sid_valid(sid(32, 0, 0)),
       "too many or an odd count of hex digits, a route too long or empty: refused");
    ok(sc_sid_valid(sid(32, 16, 8)) && !sc_sid_valid(sid(32, 17, 8))
       && !sc_sid_valid("aa-.r"),
       "msm's node id: 1 to 16 characters, not empty");
    /* 34 + 1 + 16 + 1 + route: the parts each within their bounds, the
     * whole id not always within what the store holds */
    is((long long)strlen(sid(34, 16, SC_SID_MAX - 53)), SC_SID_MAX - 1,
       "(the longest id the store holds, with a node id)");
    ok(sc_sid_valid(sid(34, 16, SC_SID_MAX - 53)),
       "an id of SC_SID_MAX - 1 characters with every part near its longest: accepted");
    ok(!sc_sid_valid(sid(34, 16, SC_SID_MAX - 52)) && !sc_sid_valid(sid(34, 16, 63)),
       "one character more, or every part at its longest: refused (the store would not hold it)");
}

int main(void)
{
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&p, NULL) != APR_SUCCESS) {
        printf("Bail out! cannot initialize APR\n");
        return 2;
    }
    atexit(apr_terminate);
    layout();
    apply_chain();
    malformed();
    full_records();
    delta_how();
    session_ids();
    kept_pairs();
    return unit_done("test_repl");
}
