/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fuzz_session_decode -- the session_decode hook of the mod_session provider
 * (sc_session_decode, sc_session.c): the text of a session read from the
 * store (which another member may have written) turned into the session's
 * table, in place of mod_session's own identity decoder.
 *
 * sc_session.c is compiled into this target (#include below: the hook is
 * static), and the hook is called as mod_session calls it, for a request of
 * a `SessionCluster On` location whose session the provider loaded.  Its
 * other code is linked but not reached: the store and the codec are the
 * module's (sc_store.c, sc_repl.c, sc_proto.c, sc_shm.c), httpd's functions
 * come from fuzz/httpd_stubs.c (ap_unescape_urlencoded there is a real one),
 * and the engine's, the configuration's and apr-util's optional function
 * registry are replaced below (abort() if called).  apr_pstrdup is replaced too (below): each copy is a malloc'd
 * block of exactly its length, freed with its pool, so AddressSanitizer sees
 * a read past the end of the copy the decoder works on.
 *
 * Once per run, plain_run (with and without AVX2) and its 64-byte steps are
 * checked against esc_plain with every byte value at every place of a run of
 * 150 usual bytes.
 *
 * Input: one or two session texts, split at the first NUL.  The second is
 * decoded into the table the first left, as mod_session decodes into a
 * session's table.  Each text is given in a malloc'd buffer of exactly its
 * length + NUL.
 *
 * Property: the table (keys, values, order) and the expiry are exactly those
 * of a plain reference decoder here, written from mod_session's rules for
 * its identity decoding (modules/session/mod_session.c, read, not copied):
 *  - the text is split at '&'; empty pieces are skipped;
 *  - in a piece, the key is what follows any leading '=' up to the next '=';
 *    the value what follows the '='s after the key, up to the next '=' (the
 *    rest of the piece is ignored); a piece of '='s only is skipped;
 *  - no value, or an empty one: the key (as written, not unescaped) is
 *    removed from the table;
 *  - otherwise key and value are URL-decoded ('+' is a space, %XX a byte);
 *    a bad escape or an escaped NUL in either drops the pair; the key
 *    "expiry" sets the session's expiry (apr_atoi64 of the value), any
 *    other key is set (apr_table_set: replacing, case-insensitive keys);
 *  - the hook answers OK and leaves nothing encoded.
 * Then the save's encoding (sc_session_encode_pre and _post, around where
 * mod_session's own encoder runs): the table is back as it was (plus
 * "expiry" when the session has one) and the text is exactly what escaping
 * every pair gives (a reference encoder here: letters, digits and ".-*_" as
 * themselves, a space as '+', any other byte as "%xx", lower-case hex as
 * httpd writes it; "k=v" pairs in the
 * table's order, joined by '&'), though the values read unchanged are
 * written as their text read; again after one value is changed in place,
 * another shortened in place and a third one set anew to its same value.
 * and the sanitizers: no read or write outside a buffer, no leak.
 */
#include "fuzz_common.h"

#include <string.h>

#include "sc_session.c"            /* mod_session_cluster/, by -I */

/* ---- what sc_session.c needs and this target does not reach -------------------- */

static void not_reached(const char *what)
{
    fprintf(stderr, "fuzz_session_decode: %s is not provided\n", what);
    abort();
}

sc_retained *sc_retained_get(server_rec *s)
{
    not_reached("sc_retained_get");
    return NULL;
}

int sc_client_request(apr_pool_t *p, server_rec *s, const char *route, const void *msg,
                      apr_size_t size, int acked, const char **result, double *ms,
                      int *handed)
{
    not_reached("sc_client_request");
    return 0;
}

/* apr-util's, for sc_session_register_hooks (not linked: not reached) */
APU_DECLARE_NONSTD(void) apr_dynamic_fn_register(const char *szName,
                                                 apr_opt_fn_t *pfn)
{
    not_reached("apr_dynamic_fn_register");
}

/* ---- apr_pstrdup: exact-size copies ------------------------------------------- */

static apr_status_t free_copy(void *data)
{
    free(data);
    return APR_SUCCESS;
}

APR_DECLARE(char *) apr_pstrdup(apr_pool_t *p, const char *s)
{
    apr_size_t n;
    char *copy;
    if (!s) {
        return NULL;
    }
    n = strlen(s) + 1;
    copy = malloc(n);
    if (!copy) {
        abort();
    }
    memcpy(copy, s, n);
    apr_pool_cleanup_register(p, copy, free_copy, apr_pool_cleanup_null);
    return copy;
}

/* ---- the reference decoder ------------------------------------------------------ */

/* URL-decoding: a new string, or NULL when the text has a bad escape or an
 * escaped NUL. */
static char *ref_unescape(apr_pool_t *p, const char *s, apr_size_t len)
{
    char *out = apr_palloc(p, len + 1);
    apr_size_t i, o = 0;
    int ok = 1;
    for (i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        }
        else if (s[i] == '%' && i + 2 < len && apr_isxdigit(s[i + 1])
                 && apr_isxdigit(s[i + 2])) {
            char two[3] = { s[i + 1], s[i + 2], '\0' };
            long byte = strtol(two, NULL, 16);
            ok &= byte != 0;
            out[o++] = (char)byte;
            i += 2;
        }
        else {
            ok &= s[i] != '%';
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return ok ? out : NULL;
}

static void ref_decode(apr_pool_t *p, const char *text, apr_table_t *t, apr_time_t *expiry)
{
    apr_size_t n = strlen(text), i = 0;
    while (i < n) {
        apr_size_t start = i, end, a, b, c, d;
        while (i < n && text[i] != '&') {
            i++;
        }
        end = i;
        i++;                                 /* past the '&' */
        a = start;
        while (a < end && text[a] == '=') {
            a++;
        }
        if (a == end) {
            continue;                        /* empty, or '='s only */
        }
        for (b = a; b < end && text[b] != '='; b++) {
        }
        for (c = b; c < end && text[c] == '='; c++) {
        }
        for (d = c; d < end && text[d] != '='; d++) {
        }
        if (c == d) {
            /* no value: the key as written goes */
            apr_table_unset(t, apr_pstrmemdup(p, text + a, b - a));
        }
        else {
            char *key = ref_unescape(p, text + a, b - a);
            char *val = key ? ref_unescape(p, text + c, d - c) : NULL;
            if (key && val) {
                if (!strcmp(key, "expiry")) {
                    *expiry = (apr_time_t)apr_atoi64(val);
                }
                else {
                    apr_table_set(t, key, val);
                }
            }
        }
    }
}

/* ---- the reference encoder ------------------------------------------------------ */

static void same_tables(const apr_table_t *x, const apr_table_t *y);

struct text_out {
    char *buf;
    apr_size_t len, cap;
};

static void out_byte(struct text_out *o, char c)
{
    if (o->len + 1 >= o->cap) {
        char *n = malloc(o->cap * 2 + 16);
        if (!n) {
            abort();
        }
        if (o->len) {
            memcpy(n, o->buf, o->len);
        }
        free(o->buf);
        o->buf = n;
        o->cap = o->cap * 2 + 16;
    }
    o->buf[o->len++] = c;
    o->buf[o->len] = '\0';
}

static void ref_escape(apr_pool_t *p, struct text_out *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *c;
    (void)p;
    for (c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
            || *c == '.' || *c == '-' || *c == '*' || *c == '_') {
            out_byte(o, (char)*c);
        }
        else if (*c == ' ') {
            out_byte(o, '+');
        }
        else {
            out_byte(o, '%');
            out_byte(o, hex[*c >> 4]);
            out_byte(o, hex[*c & 15]);
        }
    }
}

/* the encoding of table t: checked against the hooks' */
static void check_encode(apr_pool_t *p, request_rec *r, session_rec *z)
{
    struct text_out o = { NULL, 0, 0 };
    apr_table_t *before = apr_table_copy(p, z->entries);
    const apr_array_header_t *a;
    int i;

    z->encoded = NULL;
    FUZZ_CHECK(sc_session_encode_pre(r, z) == OK);
    /* mod_session's own encoder runs here, on an empty table */
    FUZZ_CHECK(apr_is_empty_table(z->entries));
    FUZZ_CHECK(sc_session_encode_post(r, z) == OK);
    FUZZ_CHECK(z->encoded != NULL);
    if (z->expiry) {
        apr_table_setn(before, "expiry", apr_psprintf(p, "%" APR_INT64_T_FMT, z->expiry));
    }
    same_tables(z->entries, before);
    a = apr_table_elts(z->entries);
    out_byte(&o, '\0');
    o.len = 0;
    for (i = 0; i < a->nelts; i++) {
        const apr_table_entry_t *e = &((const apr_table_entry_t *)a->elts)[i];
        if (i) {
            out_byte(&o, '&');
        }
        ref_escape(p, &o, e->key);
        out_byte(&o, '=');
        ref_escape(p, &o, e->val);
    }
    if (getenv("FUZZ_TRACE")) {
        fprintf(stderr, "encoded [%s]\nexpected [%s]\n", z->encoded, o.buf);
    }
    FUZZ_CHECK(!strcmp(z->encoded, o.buf));
    free(o.buf);
    {
        /* the values the encoding says it copied from their text read (the
         * delta does not compare them again): within the encoding, and the
         * same bytes and length as the text they came from */
        sc_req *rq = req_get(r);
        apr_hash_index_t *hi;
        apr_size_t n = strlen(z->encoded);
        for (hi = rq->copied ? apr_hash_first(p, rq->copied) : NULL; hi;
             hi = apr_hash_next(hi)) {
            const void *k;
            void *v;
            const char *at, *from;
            apr_size_t vl;
            apr_hash_this(hi, &k, NULL, &v);
            at = *(const char *const *)k;
            from = v;
            FUZZ_CHECK(at > z->encoded && at <= z->encoded + n && at[-1] == '=');
            vl = strcspn(at, "&");
            FUZZ_CHECK(strcspn(from, "&") >= vl && (from[vl] == '&' || from[vl] == '\0'
                                                    || from[vl] == '='));
            FUZZ_CHECK(memcmp(at, from, vl) == 0);
        }
        /* the parts it says it copied from the text loaded at their own
         * offsets (sc_store_kept): in order, within both texts, and the
         * same bytes there (what the store then does not compare) */
        if (rq->kept) {
            apr_size_t end = 0;
            FUZZ_CHECK(rq->kept_enc == z->encoded && rq->loaded && rq->loaded_len >= 0);
            for (i = 0; i < rq->kept->nelts; i++) {
                const sc_store_range *k = &APR_ARRAY_IDX(rq->kept, i, sc_store_range);
                FUZZ_CHECK(k->off >= end && k->len >= SC_KEPT_MIN);
                FUZZ_CHECK(k->off + k->len <= n && k->off + k->len <= (apr_size_t)rq->loaded_len);
                FUZZ_CHECK(memcmp(z->encoded + k->off, rq->loaded + k->off, k->len) == 0);
                end = k->off + k->len;
            }
        }
    }
    /* as before the save (the next check encodes again) */
    z->encoded = NULL;
}

static void same_tables(const apr_table_t *x, const apr_table_t *y)
{
    const apr_array_header_t *ax = apr_table_elts(x), *ay = apr_table_elts(y);
    const apr_table_entry_t *ex = (const apr_table_entry_t *)ax->elts;
    const apr_table_entry_t *ey = (const apr_table_entry_t *)ay->elts;
    int i;
    FUZZ_CHECK(ax->nelts == ay->nelts);
    for (i = 0; i < ax->nelts; i++) {
        FUZZ_CHECK(!strcmp(ex[i].key, ey[i].key));
        FUZZ_CHECK(!strcmp(ex[i].val, ey[i].val));
    }
}

/* ---- one input ------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    request_rec *r = apr_pcalloc(p, sizeof(*r));
    void **dir_vec = apr_pcalloc(p, sizeof(void *));
    void **req_vec = apr_pcalloc(p, sizeof(void *));
    sc_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));
    sc_req *rq = apr_pcalloc(p, sizeof(*rq));
    session_rec *z = apr_pcalloc(p, sizeof(*z));
    apr_table_t *ref = apr_table_make(p, 4);
    apr_time_t ref_expiry = 0;
    size_t off = 0;
    char *loaded = NULL;
    int round;

    FUZZ_CHECK(session_cluster_module.module_index == 0);
#ifdef SC_PLAIN_AVX2
    if (esc_known < 0) {
        esc_learn();
    }
    /* plain_run's two ways, every other input: 64 bytes a step with AVX2
     * (where the CPU has it), 16 a step without */
    plain_avx2 = (size & 1) && __builtin_cpu_supports("avx2");
    {
        /* once, both ways: every byte value at every place of a run of
         * usual bytes (the 64-byte steps, the 16-byte ones, the tail) */
        static int swept;
        unsigned char run[150];
        int c, at, way, saved = plain_avx2;
        for (way = 0; !swept && way < 2; way++) {
            plain_avx2 = way && __builtin_cpu_supports("avx2");
            for (c = 0; c < 256; c++) {
                for (at = 0; at < (int)sizeof(run); at++) {
                    int f;
                    /* neighbours from every row of usual bytes */
                    for (f = 0; f < (int)sizeof(run); f++) {
                        run[f] = (unsigned char)"aZz_09.-*AP"[f % 11];
                    }
                    run[at] = (unsigned char)c;
                    FUZZ_CHECK(plain_run(run, sizeof(run))
                               == (esc_plain[c] ? sizeof(run) : (size_t)at));
                    /* the 64-byte steps alone: a byte they misjudge as not
                     * usual would only hand the run over early to the others */
                    FUZZ_CHECK(!plain_avx2 || !esc_usual
                               || plain_run64(run, sizeof(run))
                                  == (esc_plain[c] || at >= 128 ? 128 : (size_t)(at / 64 * 64)));
                }
            }
        }
        swept = 1;
        plain_avx2 = saved;
    }
#endif
    {
        /* plain_run against a byte at a time, from every offset of the
         * first 64 */
        size_t from;
        for (from = 0; from < size && from < 64; from++) {
            size_t i = from;
            while (i < size && esc_plain[data[i]]) {
                i++;
            }
            FUZZ_CHECK(plain_run(data + from, size - from) == i - from);
        }
    }
    dc->enabled = 1;
    dir_vec[0] = dc;
    req_vec[0] = rq;
    struct ap_logconf *log = apr_pcalloc(p, sizeof(*log));
    log->level = APLOG_WARNING;       /* the encoder's trace line: not logged */
    r->log = log;
    r->pool = p;
    r->per_dir_config = (ap_conf_vector_t *)dir_vec;
    r->request_config = (ap_conf_vector_t *)req_vec;
    z->pool = p;
    z->entries = apr_table_make(p, 4);
    rq->z = z;

    for (round = 0; round < 2 && off <= size; round++) {
        const uint8_t *nul = memchr(data + off, '\0', size - off);
        size_t len = nul ? (size_t)(nul - (data + off)) : size - off;
        char *text = malloc(len + 1);
        if (!text) {
            abort();
        }
        memcpy(text, data + off, len);
        text[len] = '\0';
        z->encoded = text;
        /* the first text as the load sets it: read in place, its length
         * known (rq->loaded_len); any other copied by the decoder */
        rq->loaded = round == 0 ? text : NULL;
        rq->loaded_len = round == 0 ? (apr_ssize_t)len : -1;
        FUZZ_CHECK(sc_session_decode(r, z) == OK);
        FUZZ_CHECK(z->encoded == NULL);
        ref_decode(p, text, ref, &ref_expiry);
        if (getenv("FUZZ_TRACE")) {
            const apr_array_header_t *a = apr_table_elts(z->entries);
            int i;
            fprintf(stderr, "round %d: expiry %" APR_TIME_T_FMT ",", round + 1, z->expiry);
            for (i = 0; i < a->nelts; i++) {
                const apr_table_entry_t *e = &((const apr_table_entry_t *)a->elts)[i];
                fprintf(stderr, " [%s]=[%s]", e->key, e->val);
            }
            fprintf(stderr, "\n");
        }
        same_tables(z->entries, ref);
        FUZZ_CHECK(z->expiry == ref_expiry);
        if (round == 0) {
            loaded = text;            /* its values' texts are the spans' */
        }
        else {
            free(text);
        }
        if (!nul) {
            break;
        }
        off += len + 1;
    }
    check_encode(p, r, z);
    {
        /* one value changed in place (the decoder gave the table its own
         * copy), another shortened in place, a third set anew to the same
         * value: all escaped again */
        const apr_array_header_t *a = apr_table_elts(z->entries);
        apr_table_entry_t *e = (apr_table_entry_t *)a->elts;
        if (a->nelts > 0 && e[0].val[0]) {
            e[0].val[0] = e[0].val[0] == 'a' ? 'b' : 'a';
        }
        if (a->nelts > 2 && e[1].val[0]) {
            e[1].val[strlen(e[1].val) - 1] = '\0';   /* shortened in place */
        }
        if (a->nelts > 1) {
            apr_table_set(z->entries, e[a->nelts - 1].key, e[a->nelts - 1].val);
        }
        check_encode(p, r, z);
    }
    free(loaded);
    /* another provider's session, or none loaded: declined, untouched */
    {
        session_rec other;
        memset(&other, 0, sizeof(other));
        other.encoded = "a=1";
        other.entries = apr_table_make(p, 1);
        FUZZ_CHECK(sc_session_decode(r, &other) == DECLINED);
        FUZZ_CHECK(other.encoded != NULL && apr_is_empty_table(other.entries));
    }
    return 0;
}
