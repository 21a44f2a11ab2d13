/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_repl.c -- DeltaManager message codec and session data deltas (sc_repl.h).
 */
#include "sc_repl.h"
#include "sc_proto.h"

#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_hash.h"

#include <string.h>

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

void sc_repl_full_record(sc_buf *b, const sc_sess_copy *s)
{
    sc_buf_id(b, s->id);
    sc_buf_u64(b, s->version);
    sc_buf_u64(b, (apr_uint64_t)s->created);
    sc_buf_u64(b, (apr_uint64_t)s->last_access);
    sc_buf_u64(b, (apr_uint64_t)s->max_inactive);
    sc_buf_u32(b, s->data_len);
    sc_buf_put(b, s->data, s->data_len);
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

int sc_sid_valid(const char *id)
{
    apr_size_t i, n = strlen(id), rl;
    if (n < 34 || n > 32 + 1 + 63) {
        return 0;
    }
    for (i = 0; i < 32; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    if (id[32] != '.') {
        return 0;
    }
    rl = n - 33;
    for (i = 33; i < n; i++) {
        if (!apr_isalnum(id[i]) && id[i] != '-' && id[i] != '_') {
            return 0;
        }
    }
    return rl >= 1;
}

const char *sc_sid_new(apr_pool_t *p, const char *route)
{
    unsigned char b[16];
    char hex[33];
    int i;
    if (apr_generate_random_bytes(b, sizeof(b)) != APR_SUCCESS) {
        return NULL;
    }
    for (i = 0; i < 16; i++) {
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
    return 1;
}

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

/* key -> index of the key in kv (the first of repeated keys) */
static apr_hash_t *kv_index(apr_pool_t *p, const apr_array_header_t *kv)
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

int sc_repl_delta(sc_buf *b, const char *id, apr_uint64_t base, apr_uint64_t version,
                  apr_time_t last_access, apr_int64_t max_inactive,
                  const char *old_data, const char *new_data)
{
    apr_array_header_t *o = sc_data_parse(b->p, old_data);
    apr_array_header_t *n = sc_data_parse(b->p, new_data);
    apr_hash_t *oi = kv_index(b->p, o), *ni = kv_index(b->p, n);
    sc_buf sets, rems;
    apr_uint32_t nset = 0, nrem = 0;
    int i;

    sc_buf_init(&sets, b->p, 256);
    sc_buf_init(&rems, b->p, 64);
    for (i = 0; i + 1 < n->nelts; i += 2) {
        const char *k = APR_ARRAY_IDX(n, i, const char *);
        const char *v = APR_ARRAY_IDX(n, i + 1, const char *);
        apr_uintptr_t at = (apr_uintptr_t)apr_hash_get(oi, k, APR_HASH_KEY_STRING);
        const char *ov = at ? APR_ARRAY_IDX(o, (int)at, const char *) : NULL;
        if (!ov || strcmp(ov, v) != 0) {
            sc_buf_u32(&sets, (apr_uint32_t)strlen(k));
            sc_buf_put(&sets, k, strlen(k));
            sc_buf_u32(&sets, (apr_uint32_t)strlen(v));
            sc_buf_put(&sets, v, strlen(v));
            nset++;
        }
    }
    for (i = 0; i + 1 < o->nelts; i += 2) {
        const char *k = APR_ARRAY_IDX(o, i, const char *);
        if (!apr_hash_get(ni, k, APR_HASH_KEY_STRING)) {
            sc_buf_u32(&rems, (apr_uint32_t)strlen(k));
            sc_buf_put(&rems, k, strlen(k));
            nrem++;
        }
    }
    sc_buf_u8(b, SC_REPL_DELTA);
    sc_buf_id(b, id);
    sc_buf_u64(b, base);
    sc_buf_u64(b, version);
    sc_buf_u64(b, (apr_uint64_t)last_access);
    sc_buf_u64(b, (apr_uint64_t)max_inactive);
    sc_buf_u32(b, nset);
    sc_buf_put(b, sets.buf, sets.len);
    sc_buf_u32(b, nrem);
    sc_buf_put(b, rems.buf, rems.len);
    return nset + nrem > 0;
}

const char *sc_repl_apply(apr_pool_t *p, const char *data, sc_rd *r)
{
    apr_array_header_t *kv = sc_data_parse(p, data);
    apr_hash_t *idx = kv_index(p, kv);
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
