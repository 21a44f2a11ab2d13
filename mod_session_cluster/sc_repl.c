/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_repl.c -- DeltaManager messages: an encoder and a decoder per message,
 * next to each other, on checked buffers; session data and its deltas;
 * session ids (sc_repl.h).
 */
#include "sc_repl.h"
#include "sc_proto.h"

#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_hash.h"

#include <string.h>

/* ---- buffers and readers ---- */

void sc_buf_init(sc_buf *b, apr_pool_t *p, apr_size_t cap)
{
    b->p = p;
    b->cap = cap ? cap : 256;
    b->buf = apr_palloc(p, b->cap);
    b->len = 0;
}

void sc_buf_put(sc_buf *b, const void *data, apr_size_t len)
{
    if (b->len + len > b->cap) {
        apr_size_t ncap = b->cap * 2;
        unsigned char *nb;
        while (ncap < b->len + len) {
            ncap *= 2;
        }
        nb = apr_palloc(b->p, ncap);
        memcpy(nb, b->buf, b->len);
        b->buf = nb;
        b->cap = ncap;
    }
    memcpy(b->buf + b->len, data, len);
    b->len += len;
}

void sc_buf_u8(sc_buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    sc_buf_put(b, &c, 1);
}

void sc_buf_u16(sc_buf *b, unsigned v)
{
    unsigned char c[2];
    sc_put16(c, (apr_uint16_t)v);
    sc_buf_put(b, c, 2);
}

void sc_buf_u32(sc_buf *b, apr_uint32_t v)
{
    unsigned char c[4];
    sc_put32(c, v);
    sc_buf_put(b, c, 4);
}

void sc_buf_u64(sc_buf *b, apr_uint64_t v)
{
    unsigned char c[8];
    sc_put64(c, v);
    sc_buf_put(b, c, 8);
}

void sc_buf_id(sc_buf *b, const char *id)
{
    apr_size_t n = strlen(id);
    sc_buf_u8(b, (unsigned)n);
    sc_buf_put(b, id, n);
}

void sc_rd_init(sc_rd *r, const unsigned char *p, apr_size_t len)
{
    r->p = p;
    r->left = len;
    r->bad = 0;
}

const unsigned char *sc_rd_bytes(sc_rd *r, apr_size_t n)
{
    const unsigned char *at = r->p;
    if (r->bad || n > r->left) {
        r->bad = 1;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return at;
}

unsigned sc_rd_u8(sc_rd *r)
{
    const unsigned char *b = sc_rd_bytes(r, 1);
    return b ? b[0] : 0;
}

unsigned sc_rd_u16(sc_rd *r)
{
    const unsigned char *b = sc_rd_bytes(r, 2);
    return b ? sc_get16(b) : 0;
}

apr_uint32_t sc_rd_u32(sc_rd *r)
{
    const unsigned char *b = sc_rd_bytes(r, 4);
    return b ? sc_get32(b) : 0;
}

apr_uint64_t sc_rd_u64(sc_rd *r)
{
    const unsigned char *b = sc_rd_bytes(r, 8);
    return b ? sc_get64(b) : 0;
}

const char *sc_rd_id(sc_rd *r, apr_pool_t *p)
{
    unsigned n = sc_rd_u8(r);
    const unsigned char *b = sc_rd_bytes(r, n);
    const char *id;
    if (!b || n >= SC_SID_MAX || memchr(b, '\0', n)) {
        r->bad = 1;
        return NULL;
    }
    id = apr_pstrmemdup(p, (const char *)b, n);
    if (!sc_sid_valid(id)) {
        r->bad = 1;
        return NULL;
    }
    return id;
}


/* ---- session ids ---- */

int sc_sid_valid(const char *id)
{
    const char *dot = strchr(id, '.');
    const char *dash;
    apr_size_t i, hex, node = 0, rl;
    /* it must fit in the store (SC_SID_MAX with its NUL): the longest of each
     * part below together (34 hex, a 16-character node id, a 63-character
     * route) would not */
    if (!dot || strlen(id) >= SC_SID_MAX) {
        return 0;
    }
    /* msm's node id, with several memcached nodes: "<hex>-<node>.<route>" */
    dash = memchr(id, '-', (apr_size_t)(dot - id));
    hex = (apr_size_t)((dash ? dash : dot) - id);
    if (dash) {
        node = (apr_size_t)(dot - dash - 1);
        if (node < 1 || node > SC_SID_NODE_MAX) {
            return 0;
        }
        for (i = 1; i <= node; i++) {
            if (!apr_isalnum(dash[i]) && dash[i] != '-' && dash[i] != '_') {
                return 0;
            }
        }
    }
    rl = strlen(dot + 1);
    /* an even count of hex digits (the random bytes of sessionIdLength), '.',
     * a route of 1 to 63 letters, digits, '-' or '_' */
    if (hex < 2 || hex > 2 * SC_SID_BYTES_MAX || (hex & 1) || rl < 1 || rl > 63) {
        return 0;
    }
    for (i = 0; i < hex; i++) {
        if (!apr_isxdigit(id[i])) {
            return 0;
        }
    }
    for (i = 0; i < rl; i++) {
        if (!apr_isalnum(dot[1 + i]) && dot[1 + i] != '-' && dot[1 + i] != '_') {
            return 0;
        }
    }
    return 1;
}

const char *sc_sid_new(apr_pool_t *p, const char *route, int nbytes)
{
    unsigned char b[SC_SID_BYTES_MAX];
    char hex[2 * SC_SID_BYTES_MAX + 1];
    int i;
    if (nbytes < 1 || nbytes > SC_SID_BYTES_MAX) {
        nbytes = SC_SID_BYTES_DEFAULT;
    }
    if (apr_generate_random_bytes(b, (apr_size_t)nbytes) != APR_SUCCESS) {
        return NULL;
    }
    for (i = 0; i < nbytes; i++) {
        apr_snprintf(hex + i * 2, 3, "%02X", b[i]);
    }
    return apr_pstrcat(p, hex, ".", route, NULL);
}

const char *sc_cookie_value(apr_pool_t *p, const char *header, const char *name)
{
    apr_size_t nl = strlen(name);
    const char *c = header;
    while (c && *c) {
        const char *end, *v;
        apr_size_t vl;
        while (*c == ' ' || *c == '\t' || *c == ';' || *c == ',') {
            c++;
        }
        end = c + strcspn(c, ";");
        if ((apr_size_t)(end - c) > nl && !strncmp(c, name, nl)) {
            v = c + nl;
            while (v < end && (*v == ' ' || *v == '\t')) {
                v++;
            }
            if (v < end && *v == '=') {
                v++;
                while (v < end && (*v == ' ' || *v == '\t')) {
                    v++;
                }
                vl = (apr_size_t)(end - v);
                while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
                    vl--;
                }
                if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                    v++;
                    vl -= 2;
                }
                if (vl == 0 || vl >= SC_SID_MAX) {
                    return NULL;
                }
                return apr_pstrmemdup(p, v, vl);
            }
        }
        c = *end ? end + 1 : NULL;
    }
    return NULL;
}

const char *sc_url_sid(apr_pool_t *p, const char *uri)
{
    const char *at;
    apr_size_t n;
    if (!uri) {
        return NULL;
    }
    for (at = uri; *at; at++) {
        if (!strncasecmp(at, ";jsessionid=", 12)) {
            break;
        }
    }
    if (!*at) {
        return NULL;
    }
    at += 12;
    n = strcspn(at, ";/?#");
    if (n == 0 || n >= SC_SID_MAX) {
        return NULL;
    }
    return apr_pstrmemdup(p, at, n);
}

/* ---- session data ---- */

/* "k=v&k2=v2" -> [k, v, k2, v2] (raw, still escaped); empty pairs are skipped,
 * as apr_strtok skips them.  strchr, not apr_strtok: apr_strtok calls strchr on
 * its separators once per character, which made a 32 KB value cost a
 * millisecond per parse. */
apr_array_header_t *sc_data_parse(apr_pool_t *p, const char *data)
{
    apr_array_header_t *kv = apr_array_make(p, 8, sizeof(const char *));
    char *pair, *amp;
    if (!data || !*data) {
        return kv;
    }
    for (pair = apr_pstrdup(p, data); pair; pair = amp ? amp + 1 : NULL) {
        char *eq;
        amp = strchr(pair, '&');
        if (amp) {
            *amp = '\0';
        }
        if (!*pair) {
            continue;
        }
        eq = strchr(pair, '=');
        if (eq) {
            *eq = '\0';
        }
        APR_ARRAY_PUSH(kv, const char *) = pair;
        APR_ARRAY_PUSH(kv, const char *) = eq ? eq + 1 : "";
    }
    return kv;
}

const char *sc_data_join(apr_pool_t *p, const apr_array_header_t *kv)
{
    apr_size_t total = 1, o = 0, l;
    char *out;
    int i;
    for (i = 0; i + 1 < kv->nelts; i += 2) {
        if (APR_ARRAY_IDX(kv, i, const char *)) {
            total += strlen(APR_ARRAY_IDX(kv, i, const char *))
                     + strlen(APR_ARRAY_IDX(kv, i + 1, const char *)) + 2;
        }
    }
    out = apr_palloc(p, total);
    for (i = 0; i + 1 < kv->nelts; i += 2) {
        const char *k = APR_ARRAY_IDX(kv, i, const char *);
        const char *v = APR_ARRAY_IDX(kv, i + 1, const char *);
        if (!k) {
            continue;                 /* removed (sc_repl_apply) */
        }
        if (o) {
            out[o++] = '&';
        }
        memcpy(out + o, k, l = strlen(k));
        o += l;
        out[o++] = '=';
        memcpy(out + o, v, l = strlen(v));
        o += l;
    }
    out[o] = '\0';
    return out;
}

/* ---- pairs kept on this member (sc_repl.h) ---- */

static int (*local_key)(const char *key, apr_size_t klen);

void sc_repl_set_local_filter(int (*is_local)(const char *key, apr_size_t klen))
{
    local_key = is_local;
}

/* The end of the pair at 'pair' (its '&', or the data's NUL) in *end, and
 * the length of its key (up to its first '=', or the whole pair): what
 * strcspn(pair, "&=") and strcspn(pair, "&") give, without scanning the
 * value twice a byte at a time (strchr and memchr look at whole words). */
static apr_size_t pair_end(const char *pair, const char **end)
{
    const char *amp = strchr(pair, '&'), *eq;
    *end = amp ? amp : pair + strlen(pair);
    eq = memchr(pair, '=', (apr_size_t)(*end - pair));
    return (apr_size_t)((eq ? eq : *end) - pair);
}

const char *sc_repl_distributed(apr_pool_t *p, const char *data, apr_uint32_t *len)
{
    const char *pair, *end;
    char *out = NULL;
    apr_size_t o = 0;
    int dropped = 0;
    if (!data) {
        data = "";
    }
    if (local_key) {
        for (pair = data; *pair; pair = *end ? end + 1 : end) {
            apr_size_t klen = pair_end(pair, &end);
            if (end == pair || !local_key(pair, klen)) {
                continue;
            }
            dropped = 1;
            break;
        }
    }
    if (dropped) {
        /* copied pair by pair, the local ones left out */
        out = apr_palloc(p, strlen(data) + 1);
        for (pair = data; *pair; pair = *end ? end + 1 : end) {
            apr_size_t klen = pair_end(pair, &end);
            if (end == pair || local_key(pair, klen)) {
                continue;
            }
            if (o) {
                out[o++] = '&';
            }
            memcpy(out + o, pair, (apr_size_t)(end - pair));
            o += (apr_size_t)(end - pair);
        }
        out[o] = '\0';
        data = out;
    }
    if (len) {
        *len = (apr_uint32_t)strlen(data);
    }
    return data;
}

/* ---- the messages: each encoder next to its decoder ---- */

/* The least an id takes on the wire: its length byte, 2 hex, '.', a route
 * of one character (sc_sid_valid).  Counts are checked against it. */
#define ID_MIN (1 + 4)

static const char *const names[SC_REPL_COUNT] = {
    [SC_REPL_FULL] = "FULL",
    [SC_REPL_DELTA] = "DELTA",
    [SC_REPL_REMOVE] = "REMOVE",
    [SC_REPL_EXPIRE] = "EXPIRE",
    [SC_REPL_TOUCH] = "TOUCH",
    [SC_REPL_GET_ALL] = "GET_ALL",
    [SC_REPL_ALL_DATA] = "ALL_DATA",
    [SC_REPL_COMPLETE] = "COMPLETE",
    [SC_REPL_GET_SESSION] = "GET_SESSION",
    [SC_REPL_REBIND] = "REBIND",
    [SC_REPL_DEAD] = "DEAD",
    [SC_REPL_DIGEST] = "DIGEST",
    [SC_REPL_LOCATE] = "LOCATE",
    [SC_REPL_FETCH] = "FETCH",
    [SC_REPL_NOT_HERE] = "NOT_HERE",
    [SC_REPL_OWNER] = "OWNER",
    [SC_REPL_GET_MAP] = "GET_MAP",
    [SC_REPL_MAP] = "MAP",
    [SC_REPL_HERE] = "HERE",
};

const char *sc_msg_name(unsigned type)
{
    return type < SC_REPL_COUNT ? names[type] : NULL;
}

/* The type byte, which must be 'type'. */
static int rd_type(sc_rd *r, unsigned type)
{
    if (sc_rd_u8(r) != type || r->bad) {
        r->bad = 1;
        return 0;
    }
    return 1;
}

/* A count of entries of at least 'least' bytes each: 0 (bad) when the
 * message cannot hold that many. */
static int rd_count(sc_rd *r, apr_size_t least, apr_uint32_t *n)
{
    *n = sc_rd_u32(r);
    if (r->bad || *n > r->left / least) {
        r->bad = 1;
        return 0;
    }
    return 1;
}

/* ---- a FULL record: FULL's body, ALL_DATA's entries ---- */

#define FULL_RECORD_MIN (ID_MIN + 4 * 8 + 4)

void sc_repl_full_record(sc_buf *b, const sc_sess_copy *s)
{
    const char *data = s->data;
    apr_uint32_t len = s->data_len;
    if (local_key && data) {
        /* the pairs kept on this member stay here */
        data = sc_repl_distributed(b->p, s->data, &len);
        if (data == s->data) {
            len = s->data_len;
        }
    }
    sc_buf_id(b, s->id);
    sc_buf_u64(b, s->version);
    sc_buf_u64(b, (apr_uint64_t)s->created);
    sc_buf_u64(b, (apr_uint64_t)s->last_access);
    sc_buf_u64(b, (apr_uint64_t)s->max_inactive);
    sc_buf_u32(b, len);
    sc_buf_put(b, data, len);
}

int sc_rd_full_record(sc_rd *r, apr_pool_t *p, sc_sess_copy *s)
{
    const char *id = sc_rd_id(r, p);
    const unsigned char *d;
    if (!id) {
        return 0;
    }
    apr_cpystrn(s->id, id, sizeof(s->id));
    s->version = sc_rd_u64(r);
    s->created = (apr_time_t)sc_rd_u64(r);
    s->last_access = (apr_time_t)sc_rd_u64(r);
    s->max_inactive = (apr_int64_t)sc_rd_u64(r);
    s->data_len = sc_rd_u32(r);
    d = sc_rd_bytes(r, s->data_len);
    if (!d || r->bad) {
        return 0;
    }
    if (s->version == 0) {
        /* versions start at 1; 0 would be taken for a local write */
        r->bad = 1;
        return 0;
    }
    if (memchr(d, '\0', s->data_len)) {
        /* session data is mod_session's encoded text, read as a C string by
         * every reader: a NUL inside is not a session */
        r->bad = 1;
        return 0;
    }
    s->data = apr_pstrmemdup(p, (const char *)d, s->data_len);
    s->hash = 0;
    s->fork = 0;
    s->flags = 0;
    s->stamped = 0;
    return 1;
}

/* ---- stamps, after a message's last field ---- */

/* Is a stamp of 'len' bytes next?  1 yes; 0 no (nothing, or bytes that are
 * not one: ignored); a stamp cut short is malformed (bad). */
static int rd_stamp_next(sc_rd *r, apr_size_t len)
{
    if (r->bad || !r->left || r->p[0] != SC_STAMP_TAG) {
        return 0;
    }
    if (r->left < len) {
        r->bad = 1;
        return 0;
    }
    sc_rd_u8(r);
    return 1;
}

static void buf_stamp(sc_buf *b, apr_uint32_t flags, apr_uint64_t fork)
{
    sc_buf_u8(b, flags & 0xff);
    sc_buf_u64(b, fork);
}

/* ---- FULL ---- */

void sc_msg_full_encode(sc_buf *b, const sc_sess_copy *s)
{
    sc_buf_u8(b, SC_REPL_FULL);
    sc_repl_full_record(b, s);
    sc_buf_u8(b, SC_STAMP_TAG);
    buf_stamp(b, s->flags, s->fork);
}

int sc_msg_full_decode(sc_rd *r, apr_pool_t *p, sc_sess_copy *s)
{
    if (!rd_type(r, SC_REPL_FULL) || !sc_rd_full_record(r, p, s)) {
        return 0;
    }
    if (rd_stamp_next(r, SC_FULL_STAMP_LEN)) {
        s->flags = sc_rd_u8(r);
        s->fork = sc_rd_u64(r);
        s->stamped = 1;
    }
    return !r->bad;
}

/* ---- DELTA ---- */

void sc_msg_delta_encode(sc_buf *b, const sc_msg_delta *m)
{
    sc_buf_u8(b, SC_REPL_DELTA);
    sc_buf_id(b, m->id);
    sc_buf_u64(b, m->base);
    sc_buf_u64(b, m->version);
    sc_buf_u64(b, (apr_uint64_t)m->last_access);
    sc_buf_u64(b, (apr_uint64_t)m->max_inactive);
    sc_buf_put(b, m->attrs, m->attrs_len);
    sc_buf_u8(b, SC_STAMP_TAG);
    buf_stamp(b, m->flags, m->fork);
    sc_buf_u64(b, m->hash);
    sc_buf_u64(b, m->base_hash);
}

/* The length of a well-formed attribute part at the start of p (its counts
 * and lengths within the bytes; what the keys and values hold is checked
 * when it is applied), or 0. */
static apr_size_t attrs_walk(const unsigned char *p, apr_size_t left)
{
    sc_rd r;
    apr_uint32_t n, i;
    int part;
    sc_rd_init(&r, p, left);
    for (part = 0; part < 2; part++) {
        n = sc_rd_u32(&r);
        if (r.bad || n > r.left / (part ? 4 : 8)) {
            return 0;
        }
        for (i = 0; i < n && !r.bad; i++) {
            sc_rd_bytes(&r, sc_rd_u32(&r));
            if (!part) {
                sc_rd_bytes(&r, sc_rd_u32(&r));
            }
        }
        if (r.bad) {
            return 0;
        }
    }
    return left - r.left;
}

int sc_msg_delta_decode(sc_rd *r, apr_pool_t *p, sc_msg_delta *m)
{
    if (!rd_type(r, SC_REPL_DELTA) || !(m->id = sc_rd_id(r, p))) {
        return 0;
    }
    m->base = sc_rd_u64(r);
    m->version = sc_rd_u64(r);
    m->last_access = (apr_time_t)sc_rd_u64(r);
    m->max_inactive = (apr_int64_t)sc_rd_u64(r);
    /* a change makes a newer version: one not above its base (0, or a base
     * of 2^64 - 1 wrapped) is no change a member sends */
    if (r->bad || m->version <= m->base) {
        r->bad = 1;
        return 0;
    }
    /* the attribute part: read when applied (sc_msg_delta_apply); a stamp
     * after it when it is well formed, else it is the rest */
    m->flags = 0;
    m->fork = m->hash = m->base_hash = 0;
    m->stamped = 0;
    m->attrs_len = attrs_walk(r->p, r->left);
    if (!m->attrs_len) {
        m->attrs_len = r->left;
    }
    m->attrs = sc_rd_bytes(r, m->attrs_len);
    if (rd_stamp_next(r, SC_DELTA_STAMP_LEN)) {
        m->flags = sc_rd_u8(r);
        m->fork = sc_rd_u64(r);
        m->hash = sc_rd_u64(r);
        m->base_hash = sc_rd_u64(r);
        m->stamped = 1;
    }
    return !r->bad;
}

void sc_repl_delta_stamp(sc_buf *b, const sc_stamp *made, apr_uint64_t base_hash)
{
    unsigned char *at;
    if (b->len < SC_DELTA_STAMP_LEN || b->buf[b->len - SC_DELTA_STAMP_LEN] != SC_STAMP_TAG) {
        return;
    }
    at = b->buf + b->len - SC_DELTA_STAMP_LEN + 1;
    at[0] = (unsigned char)(made->flags & SC_SF_WIRE);
    sc_put64(at + 1, (made->flags & SC_SF_MINOR) ? made->fork : 0);
    sc_put64(at + 9, made->hash);
    sc_put64(at + 17, base_hash);
}

const char *sc_msg_delta_apply(apr_pool_t *p, const char *data, const sc_msg_delta *m)
{
    sc_rd r;
    sc_rd_init(&r, m->attrs, m->attrs_len);
    return sc_repl_apply(p, data, &r);
}

/* The pairs of data as sc_data_parse splits them, in place: no copy of the
 * data (a delta compares two versions of a session of up to maxSessionSize
 * on every save). */
typedef struct {
    const char *k, *v;
    apr_size_t kl, vl;
    apr_size_t pl;                    /* the pair's length in the data, '=' and
                                       * all ("k" and "k=" differ there);
                                       * sc_repl_apply: 0 once changed */
} sc_kv_at;

/* local_out: the pairs sc_repl_distributed leaves out are left out here,
 * in the same pass */
static apr_array_header_t *kv_at(apr_pool_t *p, const char *data, apr_hash_t **index,
                                 int local_out)
{
    apr_array_header_t *kv = apr_array_make(p, 8, sizeof(sc_kv_at));
    const char *pair, *amp;
    *index = apr_hash_make(p);
    for (pair = data ? data : ""; *pair; pair = amp + 1) {
        sc_kv_at *e;
        const char *eq;
        apr_size_t len;
        amp = strchr(pair, '&');
        len = amp ? (apr_size_t)(amp - pair) : strlen(pair);
        if (!len) {
            continue;                 /* "&&": amp is set */
        }
        eq = memchr(pair, '=', len);
        if (local_out && local_key && local_key(pair, eq ? (apr_size_t)(eq - pair) : len)) {
            if (!amp) {
                break;
            }
            continue;
        }
        e = apr_array_push(kv);
        e->k = pair;
        e->kl = eq ? (apr_size_t)(eq - pair) : len;
        e->v = eq ? eq + 1 : "";
        e->vl = eq ? len - e->kl - 1 : 0;
        e->pl = len;
        if (!apr_hash_get(*index, e->k, (apr_ssize_t)e->kl)) {
            /* the first one, by its index + 1 (a push may move the array) */
            apr_hash_set(*index, e->k, (apr_ssize_t)e->kl, (void *)(apr_uintptr_t)kv->nelts);
        }
        if (!amp) {
            break;
        }
    }
    return kv;
}

int sc_repl_delta(sc_buf *b, const char *id, apr_uint64_t base, apr_uint64_t version,
                  apr_time_t last_access, apr_int64_t max_inactive,
                  const char *old_data, const char *new_data)
{
    static const sc_delta_how plain;
    return sc_repl_delta_how(b, id, base, version, last_access, max_inactive, old_data,
                             new_data, &plain);
}

/* A pair's part in sc_store_hash: *sum and *n moved by its hash and by one
 * (sign -1: a pair gone), nothing for a pair the hash leaves out. */
static void hash_step(const char *pair, apr_size_t len, int sign, apr_uint64_t *sum,
                      apr_uint64_t *n)
{
    apr_uint64_t h;
    if (sc_store_hash_pair(pair, len, &h)) {
        *sum += sign > 0 ? h : -h;
        *n += sign > 0 ? 1 : (apr_uint64_t)-1;
    }
}

/* How many pairs of kv the hash covers (sc_store_hash's count). */
static apr_uint64_t hashed_count(const apr_array_header_t *kv)
{
    apr_uint64_t n = 0;
    int i;
    for (i = 0; i < kv->nelts; i++) {
        const sc_kv_at *e = &APR_ARRAY_IDX(kv, i, sc_kv_at);
        n += (apr_uint64_t)sc_store_hash_pair(e->k, e->pl, NULL);
    }
    return n;
}

int sc_repl_delta_how(sc_buf *b, const char *id, apr_uint64_t base, apr_uint64_t version,
                      apr_time_t last_access, apr_int64_t max_inactive,
                      const char *old_data, const char *new_data, const sc_delta_how *how)
{
    apr_hash_t *oi, *ni;
    apr_array_header_t *o = kv_at(b->p, old_data, &oi, how->local_out);
    apr_array_header_t *n = kv_at(b->p, new_data, &ni, how->local_out);
    apr_uint64_t *new_hash = how->new_hash;
    sc_buf sets, rems;
    apr_uint32_t nset = 0, nrem = 0;
    sc_msg_delta m;
    apr_uint64_t sum = 0, count = 0;
    int i, hashing = 0;

    if (new_hash) {
        /* from the old hash, when each key is there once in each version (a
         * pair is then matched with the one of its key; a repeated key
         * would need every occurrence matched): the sum less the old
         * version's pairs that are not in the new one byte for byte, plus
         * the new one's that are not in the old */
        *new_hash = 0;
        count = hashed_count(o);
        hashing = (int)apr_hash_count(oi) == o->nelts && (int)apr_hash_count(ni) == n->nelts
                  && sc_store_hash_sum(how->old_hash, count, &sum);
    }

    sc_buf_init(&sets, b->p, 256);
    sc_buf_init(&rems, b->p, 64);
    sc_buf_u32(&sets, 0);
    sc_buf_u32(&rems, 0);
    for (i = 0; i < n->nelts; i++) {
        const sc_kv_at *e = &APR_ARRAY_IDX(n, i, sc_kv_at);
        apr_uintptr_t at = (apr_uintptr_t)apr_hash_get(oi, e->k, (apr_ssize_t)e->kl);
        const sc_kv_at *was = at ? &APR_ARRAY_IDX(o, (int)at - 1, sc_kv_at) : NULL;
        int same = was && was->vl == e->vl
                   && (was->v == e->v
                       || (how->copied
                           && apr_hash_get(how->copied, &e->v, sizeof(e->v)) == was->v)
                       || memcmp(was->v, e->v, e->vl) == 0);
        if (!same) {
            sc_buf_u32(&sets, (apr_uint32_t)e->kl);
            sc_buf_put(&sets, e->k, e->kl);
            sc_buf_u32(&sets, (apr_uint32_t)e->vl);
            sc_buf_put(&sets, e->v, e->vl);
            nset++;
        }
        if (hashing && (!same || was->pl != e->pl)) {
            if (was) {
                hash_step(was->k, was->pl, -1, &sum, &count);
            }
            hash_step(e->k, e->pl, 1, &sum, &count);
        }
    }
    for (i = 0; i < o->nelts; i++) {
        const sc_kv_at *e = &APR_ARRAY_IDX(o, i, sc_kv_at);
        if (!apr_hash_get(ni, e->k, (apr_ssize_t)e->kl)) {
            sc_buf_u32(&rems, (apr_uint32_t)e->kl);
            sc_buf_put(&rems, e->k, e->kl);
            nrem++;
            if (hashing) {
                hash_step(e->k, e->pl, -1, &sum, &count);
            }
        }
    }
    if (hashing) {
        *new_hash = sc_store_hash_make(sum, count);
    }
    sc_put32(sets.buf, nset);
    sc_put32(rems.buf, nrem);
    sc_buf_put(&sets, rems.buf, rems.len);
    m.id = id;
    m.base = base;
    m.version = version;
    m.last_access = last_access;
    m.max_inactive = max_inactive;
    m.attrs = sets.buf;
    m.attrs_len = sets.len;
    m.flags = 0;
    m.fork = m.hash = m.base_hash = 0;
    m.stamped = 0;
    sc_msg_delta_encode(b, &m);
    return nset + nrem > 0;
}

/* sc_repl_apply's pairs are kv_at's (split as sc_data_parse splits them,
 * in place in the data or in the delta, with their lengths); k NULL: removed. */

/* The first pair of key (k, kl) at or after pair i (kv->nelts when none). */
static int kv_ap_next(const apr_array_header_t *kv, int i, const char *k, apr_size_t kl)
{
    for (; i < kv->nelts; i++) {
        const sc_kv_at *e = &APR_ARRAY_IDX(kv, i, sc_kv_at);
        if (e->k && e->kl == kl && !memcmp(e->k, k, kl)) {
            break;
        }
    }
    return i;
}

/* The same result as parsing data (sc_data_parse), setting and removing
 * keys, and joining (sc_data_join), with no copy of the data before the
 * join and no length measured twice: on a member that applies a change to
 * a 32 KB session, a copy and a pass over it less per change. */
const char *sc_repl_apply(apr_pool_t *p, const char *data, sc_rd *r)
{
    return sc_repl_apply_hash(p, data, r, 0, NULL, NULL);
}

/* A pair of data changed by the delta: its old bytes' hash taken out of the
 * sum once (hashing), and marked so (pl 0: its hash is made at the join). */
static void kv_changed(sc_kv_at *e, int hashing, apr_uint64_t *sum, apr_uint64_t *n)
{
    if (e->pl) {
        if (hashing) {
            hash_step(e->k, e->pl, -1, sum, n);
        }
        e->pl = 0;
    }
}

const char *sc_repl_apply_hash(apr_pool_t *p, const char *data, sc_rd *r,
                               apr_uint64_t base_hash, apr_uint64_t *hash, apr_size_t *len)
{
    return sc_repl_apply_kept(p, data, r, base_hash, hash, len, NULL);
}

const char *sc_repl_apply_kept(apr_pool_t *p, const char *data, sc_rd *r,
                               apr_uint64_t base_hash, apr_uint64_t *hash, apr_size_t *len,
                               apr_array_header_t **kept)
{
    apr_hash_t *idx;                   /* key -> its first pair's index + 1 */
    apr_array_header_t *kv = kv_at(p, data, &idx, 0);
    apr_uint32_t nset, nrem, i;
    apr_size_t total = 1, o = 0;
    apr_uint64_t sum = 0, count = 0;
    char *out;
    int j, hashing = 0;

    if (hash) {
        /* the result's hash from the base's: its pairs that are not changed
         * stay in the sum as they are (every pair is joined as "k=v": one
         * written "k" in the data would not be, and the hash is made whole) */
        *hash = 0;
        count = hashed_count(kv);
        hashing = sc_store_hash_sum(base_hash, count, &sum);
        for (j = 0; hashing && j < kv->nelts; j++) {
            const sc_kv_at *e = &APR_ARRAY_IDX(kv, j, sc_kv_at);
            hashing = e->pl > e->kl;
        }
    }

    nset = sc_rd_u32(r);
    for (i = 0; i < nset && !r->bad; i++) {
        apr_uint32_t kl = sc_rd_u32(r);
        const unsigned char *k = sc_rd_bytes(r, kl);
        apr_uint32_t vl = sc_rd_u32(r);
        const unsigned char *v = sc_rd_bytes(r, vl);
        apr_uintptr_t at;
        if (!k || !v || memchr(k, '\0', kl) || memchr(v, '\0', vl)) {
            return NULL;
        }
        if (memchr(k, '&', kl) || memchr(k, '=', kl) || memchr(v, '&', vl)) {
            return NULL;              /* not mod_session's escaped form */
        }
        at = (apr_uintptr_t)apr_hash_get(idx, k, (apr_ssize_t)kl);
        if (at) {
            /* every occurrence of a repeated key takes the value */
            for (j = kv_ap_next(kv, (int)at - 1, (const char *)k, kl); j < kv->nelts;
                 j = kv_ap_next(kv, j + 1, (const char *)k, kl)) {
                kv_changed(&APR_ARRAY_IDX(kv, j, sc_kv_at), hashing, &sum, &count);
                APR_ARRAY_IDX(kv, j, sc_kv_at).v = (const char *)v;
                APR_ARRAY_IDX(kv, j, sc_kv_at).vl = vl;
            }
        }
        else {
            sc_kv_at *e = apr_array_push(kv);
            e->k = (const char *)k;
            e->kl = kl;
            e->v = (const char *)v;
            e->vl = vl;
            e->pl = 0;                /* new */
            apr_hash_set(idx, k, (apr_ssize_t)kl, (void *)(apr_uintptr_t)kv->nelts);
        }
    }
    nrem = sc_rd_u32(r);
    for (i = 0; i < nrem && !r->bad; i++) {
        apr_uint32_t kl = sc_rd_u32(r);
        const unsigned char *k = sc_rd_bytes(r, kl);
        apr_uintptr_t at;
        if (!k || memchr(k, '\0', kl)) {
            return NULL;
        }
        at = (apr_uintptr_t)apr_hash_get(idx, k, (apr_ssize_t)kl);
        if (!at) {
            continue;
        }
        for (j = kv_ap_next(kv, (int)at - 1, (const char *)k, kl); j < kv->nelts;
             j = kv_ap_next(kv, j + 1, (const char *)k, kl)) {
            kv_changed(&APR_ARRAY_IDX(kv, j, sc_kv_at), hashing, &sum, &count);
            APR_ARRAY_IDX(kv, j, sc_kv_at).k = NULL;   /* removed */
        }
        apr_hash_set(idx, k, (apr_ssize_t)kl, NULL);
    }
    if (r->bad) {
        return NULL;
    }
    /* joined as sc_data_join joins: "k=v" pairs between '&' */
    for (j = 0; j < kv->nelts; j++) {
        const sc_kv_at *e = &APR_ARRAY_IDX(kv, j, sc_kv_at);
        if (e->k) {
            total += e->kl + e->vl + 2;
        }
    }
    out = apr_palloc(p, total);
    if (kept) {
        *kept = NULL;
    }
    for (j = 0; j < kv->nelts; j++) {
        const sc_kv_at *e = &APR_ARRAY_IDX(kv, j, sc_kv_at);
        apr_size_t at;
        if (!e->k) {
            continue;
        }
        if (o) {
            out[o++] = '&';
        }
        at = o;
        if (kept && e->pl && e->pl == e->kl + 1 + e->vl && e->pl >= SC_REPL_KEPT_MIN
            && (apr_size_t)(e->k - data) == at) {
            /* a pair not changed, "k=v" in data as it is joined, where it
             * was: the same bytes at the same offsets */
            sc_store_range *k;
            if (!*kept) {
                *kept = apr_array_make(p, 4, sizeof(sc_store_range));
            }
            k = apr_array_push(*kept);
            k->off = (apr_uint32_t)at;
            k->len = (apr_uint32_t)e->pl;
        }
        memcpy(out + o, e->k, e->kl);
        o += e->kl;
        out[o++] = '=';
        memcpy(out + o, e->v, e->vl);
        o += e->vl;
        if (hashing && !e->pl) {
            hash_step(out + at, o - at, 1, &sum, &count);
        }
    }
    out[o] = '\0';
    if (hashing) {
        *hash = sc_store_hash_make(sum, count);
    }
    if (len) {
        *len = o;
    }
    return out;
}

/* ---- REMOVE, EXPIRE, GET_SESSION: [idlen:1][id] ---- */

static void id_encode(sc_buf *b, unsigned type, const char *id)
{
    sc_buf_u8(b, type);
    sc_buf_id(b, id);
}

static int id_decode(sc_rd *r, apr_pool_t *p, unsigned type, const char **id)
{
    return rd_type(r, type) && (*id = sc_rd_id(r, p)) != NULL;
}

void sc_msg_remove_encode(sc_buf *b, const sc_msg_remove *m)
{
    id_encode(b, SC_REPL_REMOVE, m->id);
}

int sc_msg_remove_decode(sc_rd *r, apr_pool_t *p, sc_msg_remove *m)
{
    return id_decode(r, p, SC_REPL_REMOVE, &m->id);
}

void sc_msg_expire_encode(sc_buf *b, const sc_msg_expire *m)
{
    id_encode(b, SC_REPL_EXPIRE, m->id);
}

int sc_msg_expire_decode(sc_rd *r, apr_pool_t *p, sc_msg_expire *m)
{
    return id_decode(r, p, SC_REPL_EXPIRE, &m->id);
}

void sc_msg_get_session_encode(sc_buf *b, const sc_msg_get_session *m)
{
    id_encode(b, SC_REPL_GET_SESSION, m->id);
}

int sc_msg_get_session_decode(sc_rd *r, apr_pool_t *p, sc_msg_get_session *m)
{
    return id_decode(r, p, SC_REPL_GET_SESSION, &m->id);
}

/* ---- lists: TOUCH, ALL_DATA, DEAD ---- */

void sc_msg_list_open(sc_buf *b, unsigned type)
{
    sc_buf_u8(b, type);
    sc_buf_u32(b, 0);                 /* the count, written on closing */
}

void sc_msg_list_close(sc_buf *b, apr_uint32_t n)
{
    sc_put32(b->buf + 1, n);
}

/* ---- TOUCH ---- */

void sc_msg_touch_add(sc_buf *b, const char *id, apr_time_t last_access)
{
    sc_buf_id(b, id);
    sc_buf_u64(b, (apr_uint64_t)last_access);
}

void sc_msg_touch_encode(sc_buf *b, const sc_msg_touch *m)
{
    apr_uint32_t i;
    sc_msg_list_open(b, SC_REPL_TOUCH);
    for (i = 0; i < m->n; i++) {
        sc_msg_touch_add(b, m->ids[i], m->last_access[i]);
    }
    sc_msg_list_close(b, m->n);
}

int sc_msg_touch_decode(sc_rd *r, apr_pool_t *p, sc_msg_touch *m)
{
    apr_uint32_t i;
    if (!rd_type(r, SC_REPL_TOUCH) || !rd_count(r, ID_MIN + 8, &m->n)) {
        return 0;
    }
    m->ids = apr_palloc(p, sizeof(*m->ids) * (m->n ? m->n : 1));
    m->last_access = apr_palloc(p, sizeof(*m->last_access) * (m->n ? m->n : 1));
    for (i = 0; i < m->n; i++) {
        m->ids[i] = sc_rd_id(r, p);
        m->last_access[i] = (apr_time_t)sc_rd_u64(r);
        if (!m->ids[i] || r->bad) {
            return 0;
        }
    }
    return 1;
}

/* ---- GET_ALL ---- */

void sc_msg_get_all_encode(sc_buf *b)
{
    sc_buf_u8(b, SC_REPL_GET_ALL);
}

int sc_msg_get_all_decode(sc_rd *r)
{
    return rd_type(r, SC_REPL_GET_ALL);
}

/* ---- ALL_DATA ---- */

void sc_msg_all_data_add(sc_buf *b, const sc_sess_copy *s)
{
    sc_repl_full_record(b, s);
}

void sc_msg_all_data_stamps(sc_buf *b, const sc_sess_copy *s, apr_uint32_t n)
{
    apr_uint32_t i;
    sc_buf_u8(b, SC_STAMP_TAG);
    for (i = 0; i < n; i++) {
        buf_stamp(b, s[i].flags, s[i].fork);
    }
}

void sc_msg_all_data_size(sc_buf *b, apr_uint32_t sessions, apr_uint32_t blocks)
{
    sc_buf_u8(b, SC_SIZE_TAG);
    sc_buf_u32(b, sessions);
    sc_buf_u32(b, blocks);
}

void sc_msg_all_data_encode(sc_buf *b, const sc_msg_all_data *m)
{
    apr_uint32_t i;
    sc_msg_list_open(b, SC_REPL_ALL_DATA);
    for (i = 0; i < m->n; i++) {
        sc_msg_all_data_add(b, &m->s[i]);
    }
    sc_msg_list_close(b, m->n);
    sc_msg_all_data_stamps(b, m->s, m->n);
    if (m->sized) {
        sc_msg_all_data_size(b, m->held_sessions, m->held_blocks);
    }
}

int sc_msg_all_data_decode(sc_rd *r, apr_pool_t *p, sc_msg_all_data *m)
{
    apr_uint32_t i;
    if (!rd_type(r, SC_REPL_ALL_DATA) || !rd_count(r, FULL_RECORD_MIN, &m->n)) {
        return 0;
    }
    m->s = apr_palloc(p, sizeof(*m->s) * (m->n ? m->n : 1));
    for (i = 0; i < m->n; i++) {
        if (!sc_rd_full_record(r, p, &m->s[i])) {
            return 0;
        }
    }
    m->sized = 0;
    m->held_sessions = m->held_blocks = 0;
    if (rd_stamp_next(r, 1 + (apr_size_t)m->n * 9)) {
        for (i = 0; i < m->n; i++) {
            m->s[i].flags = sc_rd_u8(r);
            m->s[i].fork = sc_rd_u64(r);
            m->s[i].stamped = 1;
        }
        /* then what the sender holds, from a sender that says it */
        if (!r->bad && r->left && r->p[0] == SC_SIZE_TAG) {
            if (r->left < SC_SIZE_LEN) {
                r->bad = 1;
                return 0;
            }
            sc_rd_u8(r);
            m->held_sessions = sc_rd_u32(r);
            m->held_blocks = sc_rd_u32(r);
            m->sized = 1;
        }
    }
    return !r->bad;
}

/* ---- COMPLETE ---- */

void sc_msg_complete_encode(sc_buf *b, const sc_msg_complete *m)
{
    sc_buf_u8(b, SC_REPL_COMPLETE);
    sc_buf_u32(b, m->total);
}

int sc_msg_complete_decode(sc_rd *r, sc_msg_complete *m)
{
    if (!rd_type(r, SC_REPL_COMPLETE)) {
        return 0;
    }
    m->total = sc_rd_u32(r);
    return !r->bad;
}

/* ---- REBIND ---- */

void sc_msg_rebind_encode(sc_buf *b, const sc_msg_rebind *m)
{
    sc_buf_u8(b, SC_REPL_REBIND);
    sc_buf_id(b, m->old_id);
    sc_buf_id(b, m->new_id);
}

int sc_msg_rebind_decode(sc_rd *r, apr_pool_t *p, sc_msg_rebind *m)
{
    if (!rd_type(r, SC_REPL_REBIND) || !(m->old_id = sc_rd_id(r, p))
        || !(m->new_id = sc_rd_id(r, p))) {
        return 0;
    }
    /* the same session (the same base: the hex, then msm's "-<node>" or
     * '.'), another route or session server node */
    if (strcspn(m->old_id, "-.") != strcspn(m->new_id, "-.")
        || memcmp(m->old_id, m->new_id, strcspn(m->old_id, "-.")) != 0) {
        r->bad = 1;
        return 0;
    }
    return 1;
}

/* ---- DEAD ---- */

int sc_msg_dead_add(sc_buf *b, const char *base, apr_size_t max)
{
    apr_size_t n = strlen(base);
    if (max && b->len + 1 + n > max) {
        return 0;
    }
    sc_buf_u8(b, (unsigned)n);
    sc_buf_put(b, base, n);
    return 1;
}

void sc_msg_dead_encode(sc_buf *b, const sc_msg_dead *m)
{
    apr_uint32_t i;
    sc_msg_list_open(b, SC_REPL_DEAD);
    for (i = 0; i < m->n; i++) {
        sc_msg_dead_add(b, m->bases[i], 0);
    }
    sc_msg_list_close(b, m->n);
}

int sc_msg_dead_decode(sc_rd *r, apr_pool_t *p, sc_msg_dead *m)
{
    apr_uint32_t i;
    if (!rd_type(r, SC_REPL_DEAD) || !rd_count(r, 1 + 1, &m->n)) {
        return 0;
    }
    m->bases = apr_palloc(p, sizeof(*m->bases) * (m->n ? m->n : 1));
    for (i = 0; i < m->n; i++) {
        unsigned len = sc_rd_u8(r);
        const unsigned char *base = sc_rd_bytes(r, len);
        unsigned k;
        if (!base || !len || len >= SC_TOMB_BASE) {
            r->bad = 1;
            return 0;
        }
        for (k = 0; k < len; k++) {
            if (!apr_isxdigit(base[k])) {
                r->bad = 1;
                return 0;
            }
        }
        m->bases[i] = apr_pstrmemdup(p, (const char *)base, len);
    }
    return 1;
}

/* ---- DIGEST ---- */

void sc_msg_digest_open(sc_buf *b)
{
    sc_buf_u8(b, SC_REPL_DIGEST);
    sc_buf_u8(b, 0);                  /* the flags and */
    sc_buf_u32(b, 0);                 /* the count, written on closing */
}

void sc_msg_digest_close(sc_buf *b, unsigned flags, apr_uint32_t n)
{
    b->buf[1] = (unsigned char)flags;
    sc_put32(b->buf + 2, n);
}

int sc_msg_digest_add_live(sc_buf *b, const char *id, const sc_stamp *s, apr_size_t max)
{
    apr_size_t n = strlen(id);
    if (max && b->len + 2 + n + 25 > max) {
        return 0;
    }
    sc_buf_u8(b, SC_DIGEST_LIVE);
    sc_buf_id(b, id);
    sc_buf_u64(b, s->version);
    sc_buf_u64(b, s->hash);
    sc_buf_u64(b, s->fork);
    sc_buf_u8(b, s->flags & 0xff);
    return 1;
}

int sc_msg_digest_add_dead(sc_buf *b, const char *base, apr_uint32_t life_s, apr_size_t max)
{
    apr_size_t n = strlen(base);
    if (max && b->len + 2 + n + 4 > max) {
        return 0;
    }
    sc_buf_u8(b, SC_DIGEST_DEAD);
    sc_buf_u8(b, (unsigned)n);
    sc_buf_put(b, base, n);
    sc_buf_u32(b, life_s);
    return 1;
}

void sc_msg_digest_encode(sc_buf *b, const sc_msg_digest *m)
{
    apr_uint32_t i;
    sc_msg_digest_open(b);
    for (i = 0; i < m->n; i++) {
        if (m->e[i].dead) {
            sc_msg_digest_add_dead(b, m->e[i].id, m->e[i].life_s, 0);
        }
        else {
            sc_msg_digest_add_live(b, m->e[i].id, &m->e[i].stamp, 0);
        }
    }
    sc_msg_digest_close(b, m->flags, m->n);
}

/* An id base: 1 to SC_TOMB_BASE - 1 hex digits (DEAD's, DIGEST's). */
static const char *rd_base(sc_rd *r, apr_pool_t *p)
{
    unsigned len = sc_rd_u8(r), k;
    const unsigned char *base = sc_rd_bytes(r, len);
    if (!base || !len || len >= SC_TOMB_BASE) {
        r->bad = 1;
        return NULL;
    }
    for (k = 0; k < len; k++) {
        if (!apr_isxdigit(base[k])) {
            r->bad = 1;
            return NULL;
        }
    }
    return apr_pstrmemdup(p, (const char *)base, len);
}

int sc_msg_digest_decode(sc_rd *r, apr_pool_t *p, sc_msg_digest *m)
{
    apr_uint32_t i;
    if (!rd_type(r, SC_REPL_DIGEST)) {
        return 0;
    }
    m->flags = sc_rd_u8(r);
    /* the least an entry takes: a dead one of a one-digit base */
    if (!rd_count(r, 1 + 1 + 1 + 4, &m->n)) {
        return 0;
    }
    m->e = apr_pcalloc(p, sizeof(*m->e) * (m->n ? m->n : 1));
    for (i = 0; i < m->n; i++) {
        sc_digest_entry *e = &m->e[i];
        unsigned kind = sc_rd_u8(r);
        if (kind == SC_DIGEST_LIVE) {
            if (!(e->id = sc_rd_id(r, p))) {
                return 0;
            }
            e->stamp.version = sc_rd_u64(r);
            e->stamp.hash = sc_rd_u64(r);
            e->stamp.fork = sc_rd_u64(r);
            e->stamp.flags = sc_rd_u8(r);
            if (!r->bad && e->stamp.version == 0) {
                r->bad = 1;           /* versions start at 1 */
            }
        }
        else if (kind == SC_DIGEST_DEAD) {
            e->dead = 1;
            if (!(e->id = rd_base(r, p))) {
                return 0;
            }
            e->life_s = sc_rd_u32(r);
        }
        else {
            r->bad = 1;
        }
        if (r->bad) {
            return 0;
        }
    }
    return 1;
}

/* ---- any message ---- */

/* ---- BackupManager's messages ---- */

static void buf_route(sc_buf *b, const char *route)
{
    apr_size_t n = route ? strlen(route) : 0;
    if (n > SC_BK_ROUTE_MAX) {
        n = 0;                        /* never sent: not a route */
    }
    sc_buf_u8(b, (unsigned)n);
    sc_buf_put(b, route, n);
}

/* A route, "" for none: at most SC_BK_ROUTE_MAX characters of a route's
 * shape (letters, digits, '-', '_'). */
static const char *rd_route(sc_rd *r, apr_pool_t *p)
{
    unsigned n = sc_rd_u8(r), i;
    const unsigned char *b = sc_rd_bytes(r, n);
    if (!b || n > SC_BK_ROUTE_MAX) {
        r->bad = 1;
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (!apr_isalnum(b[i]) && b[i] != '-' && b[i] != '_') {
            r->bad = 1;
            return NULL;
        }
    }
    return apr_pstrmemdup(p, (const char *)b, n);
}

#define LOC_MIN (ID_MIN + 8 + 1 + 1)

void sc_msg_locate_add(sc_buf *b, const sc_loc_item *it)
{
    sc_buf_id(b, it->id);
    sc_buf_u64(b, it->epoch);
    buf_route(b, it->primary);
    buf_route(b, it->backup);
}

void sc_msg_locate_encode(sc_buf *b, unsigned type, const sc_msg_locate *m)
{
    apr_uint32_t i;
    sc_msg_list_open(b, type);
    for (i = 0; i < m->n; i++) {
        sc_msg_locate_add(b, &m->items[i]);
    }
    sc_msg_list_close(b, m->n);
}

int sc_msg_locate_decode(sc_rd *r, apr_pool_t *p, unsigned type, sc_msg_locate *m)
{
    apr_uint32_t i;
    if ((type != SC_REPL_LOCATE && type != SC_REPL_MAP) || !rd_type(r, type)
        || !rd_count(r, LOC_MIN, &m->n)) {
        r->bad = 1;
        return 0;
    }
    m->items = apr_palloc(p, sizeof(*m->items) * (m->n ? m->n : 1));
    for (i = 0; i < m->n; i++) {
        sc_loc_item *it = &m->items[i];
        it->id = sc_rd_id(r, p);
        it->epoch = sc_rd_u64(r);
        it->primary = rd_route(r, p);
        it->backup = rd_route(r, p);
        if (!it->id || !it->primary || !it->backup || r->bad) {
            return 0;
        }
    }
    return 1;
}

static void fetch_encode(sc_buf *b, unsigned type, const sc_msg_fetch *m)
{
    sc_buf_u8(b, type);
    sc_buf_u64(b, m->req);
    sc_buf_id(b, m->id);
}

static int fetch_decode(sc_rd *r, apr_pool_t *p, unsigned type, sc_msg_fetch *m)
{
    if (!rd_type(r, type)) {
        return 0;
    }
    m->req = sc_rd_u64(r);
    m->id = sc_rd_id(r, p);
    m->dead = 0;
    return m->id && !r->bad;
}

void sc_msg_fetch_encode(sc_buf *b, const sc_msg_fetch *m)
{
    fetch_encode(b, SC_REPL_FETCH, m);
}

int sc_msg_fetch_decode(sc_rd *r, apr_pool_t *p, sc_msg_fetch *m)
{
    return fetch_decode(r, p, SC_REPL_FETCH, m);
}

void sc_msg_not_here_encode(sc_buf *b, const sc_msg_not_here *m)
{
    fetch_encode(b, SC_REPL_NOT_HERE, m);
    sc_buf_u8(b, m->dead ? 1 : 0);
}

int sc_msg_not_here_decode(sc_rd *r, apr_pool_t *p, sc_msg_not_here *m)
{
    unsigned dead;
    if (!fetch_decode(r, p, SC_REPL_NOT_HERE, m)) {
        return 0;
    }
    dead = sc_rd_u8(r);
    if (r->bad || dead > 1) {
        r->bad = 1;
        return 0;
    }
    m->dead = (int)dead;
    return 1;
}

void sc_msg_owner_encode(sc_buf *b, const sc_msg_owner *m)
{
    sc_buf_u8(b, SC_REPL_OWNER);
    sc_buf_id(b, m->id);
    sc_buf_u64(b, m->epoch);
    buf_route(b, m->primary);
}

int sc_msg_owner_decode(sc_rd *r, apr_pool_t *p, sc_msg_owner *m)
{
    if (!rd_type(r, SC_REPL_OWNER)) {
        return 0;
    }
    m->id = sc_rd_id(r, p);
    m->epoch = sc_rd_u64(r);
    m->primary = rd_route(r, p);
    return m->id && m->primary && !r->bad;
}

void sc_msg_get_map_encode(sc_buf *b)
{
    sc_buf_u8(b, SC_REPL_GET_MAP);
}

int sc_msg_get_map_decode(sc_rd *r)
{
    return rd_type(r, SC_REPL_GET_MAP);
}

void sc_msg_here_encode(sc_buf *b, const sc_msg_here *m)
{
    sc_buf_u8(b, SC_REPL_HERE);
    sc_buf_u64(b, m->req);
    sc_buf_u64(b, m->epoch);
    sc_repl_full_record(b, &m->s);
    sc_buf_u8(b, SC_STAMP_TAG);
    buf_stamp(b, m->s.flags, m->s.fork);
}

int sc_msg_here_decode(sc_rd *r, apr_pool_t *p, sc_msg_here *m)
{
    if (!rd_type(r, SC_REPL_HERE)) {
        return 0;
    }
    m->req = sc_rd_u64(r);
    m->epoch = sc_rd_u64(r);
    if (r->bad || !sc_rd_full_record(r, p, &m->s)) {
        r->bad = 1;
        return 0;
    }
    if (rd_stamp_next(r, SC_FULL_STAMP_LEN)) {
        m->s.flags = sc_rd_u8(r);
        m->s.fork = sc_rd_u64(r);
        m->s.stamped = 1;
    }
    return !r->bad;
}

int sc_msg_decode(sc_rd *r, apr_pool_t *p, sc_msg *m)
{
    m->type = r->left ? r->p[0] : 0;
    switch (m->type) {
    case SC_REPL_FULL:
        return sc_msg_full_decode(r, p, &m->full);
    case SC_REPL_DELTA:
        return sc_msg_delta_decode(r, p, &m->delta);
    case SC_REPL_REMOVE:
        return sc_msg_remove_decode(r, p, &m->remove);
    case SC_REPL_EXPIRE:
        return sc_msg_expire_decode(r, p, &m->expire);
    case SC_REPL_TOUCH:
        return sc_msg_touch_decode(r, p, &m->touch);
    case SC_REPL_GET_ALL:
        return sc_msg_get_all_decode(r);
    case SC_REPL_ALL_DATA:
        return sc_msg_all_data_decode(r, p, &m->all_data);
    case SC_REPL_COMPLETE:
        return sc_msg_complete_decode(r, &m->complete);
    case SC_REPL_GET_SESSION:
        return sc_msg_get_session_decode(r, p, &m->get_session);
    case SC_REPL_REBIND:
        return sc_msg_rebind_decode(r, p, &m->rebind);
    case SC_REPL_DEAD:
        return sc_msg_dead_decode(r, p, &m->dead);
    case SC_REPL_DIGEST:
        return sc_msg_digest_decode(r, p, &m->digest);
    case SC_REPL_LOCATE:
    case SC_REPL_MAP:
        return sc_msg_locate_decode(r, p, m->type, &m->locate);
    case SC_REPL_FETCH:
        return sc_msg_fetch_decode(r, p, &m->fetch);
    case SC_REPL_NOT_HERE:
        return sc_msg_not_here_decode(r, p, &m->not_here);
    case SC_REPL_OWNER:
        return sc_msg_owner_decode(r, p, &m->owner);
    case SC_REPL_GET_MAP:
        return sc_msg_get_map_decode(r);
    case SC_REPL_HERE:
        return sc_msg_here_decode(r, p, &m->here);
    default:
        r->bad = 1;
        return 0;
    }
}
