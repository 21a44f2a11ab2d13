/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_session.c -- the mod_session provider: sessions of locations with
 * `SessionCluster On` live in the cluster's store.
 *
 * load: the id comes from the cookie (SessionClusterCookieName) or a
 *       ";jsessionid=" path parameter; it must have the cluster's shape (hex,
 *       '.', route: sc_sid_valid) and be held by the store, or the request
 *       starts with a fresh session (an id the cluster does not hold is
 *       never adopted).
 * save: a new session gets sessionIdLength random bytes (16: 128 bits) as
 *       hex plus ".route"; a changed one is written over the version that
 *       was read (re-read and merged if another request wrote meanwhile); the delta goes to the engine, which
 *       replicates it: asynchronously, or waiting for every member's ACK when
 *       channelSendOptions asks for acknowledgements.
 *
 * mod_session's hooks are looked up at run time, so the module also loads on a
 * front balancer without mod_session.
 */
#include "sc_supervisor.h"
#include "sc_client.h"
#include "sc_repl.h"
#include "sc_session.h"
#include "sc_msm.h"

#include "mod_session.h"
#include "util_cookies.h"

#include <dlfcn.h>

APLOG_USE_MODULE(session_cluster);

/* What a request read, kept on the main request. */
typedef struct {
    session_rec *z;
    const char *id;                   /* NULL: no stored session yet */
    apr_uint64_t version;
    const char *data;                 /* as read, for the delta (this module's own
                                       * pairs too: SC_SENT_KEY) */
    apr_time_t created;
    apr_uint64_t hash;                /* the stamp's hash of that version (0: not
                                       * known): a delta's base, not hashed again */
    int filtered;                     /* ReplicationValve filter matched */
    int locked;                       /* holds the session server's lock of id */
    const char *loaded;               /* z->encoded as the load set it (in the
                                       * main request's pool, never written) */
    apr_ssize_t loaded_len;           /* its length (-1: not known) */
    apr_hash_t *spans;                /* a value in z->entries (its pointer) ->
                                       * sc_span: its text as read (below) */
    apr_table_t *held;                /* z->entries while mod_session's own
                                       * encoder runs (sc_session_encode_pre) */
    const char *enc;                  /* this module's encoding of them */
    apr_hash_t *copied;               /* the values of enc copied from their text
                                       * read: the address of one in enc -> the
                                       * text's (sc_delta_how) */
    apr_uint32_t read_slot, read_seq; /* where the store's copy of loaded was
                                       * read (sc_store_kept; slot 0: none) */
    const char *kept_enc;             /* the encoding whose parts copied from
                                       * loaded at their own offsets are kept */
    apr_array_header_t *kept;         /* (sc_store_range) */
} sc_req;

static sc_req *req_get(request_rec *r)
{
    request_rec *m = r->main ? r->main : r;
    return ap_get_module_config(m->request_config, &session_cluster_module);
}

static sc_dir_conf *dir_conf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &session_cluster_module);
}

/* The session cookie's value in the request's Cookie headers, if any. */
typedef struct {
    apr_pool_t *p;
    const char *name;
    const char *value;
} cookie_find;

static int find_cookie(void *ctx, const char *key, const char *val)
{
    cookie_find *f = ctx;
    (void)key;
    f->value = sc_cookie_value(f->p, val, f->name);
    return f->value == NULL;           /* the first one found */
}

static const char *cookie_id(request_rec *r, const char *name)
{
    cookie_find f;
    f.p = r->pool;
    f.name = name;
    f.value = NULL;
    apr_table_do(find_cookie, &f, r->headers_in, "Cookie", NULL);
    return f.value;
}

/* ReplicationValve primaryIndicator: tell the application whether this member
 * is the session's primary (its route is the id's), as a request note and an
 * environment variable named by primaryIndicatorName. */
static void primary_indicator(request_rec *r, const sc_settings *set, const char *id,
                              const char *route)
{
    int i;
    for (i = 0; i < set->nreplication_valves; i++) {
        const sc_replication_valve_settings *v = &set->replication_valves[i];
        const char *dot;
        const char *name, *val;
        if (!v->primary_indicator) {
            continue;
        }
        name = v->primary_indicator_name;
        dot = id ? strchr(id, '.') : NULL;
        val = (!id || (dot && !strcmp(dot + 1, route))) ? "true" : "false";
        apr_table_setn(r->notes, name, val);
        apr_table_setn(r->subprocess_env, name, val);
    }
}

/* ---- attributes kept on this member ----
 *
 * Manager sessionAttributeNameFilter, as Tomcat's willAttributeDistribute:
 * an attribute whose name (URL-decoded, the whole of it) does not match the
 * filter is kept in the session on the member that set it and never sent to
 * another one: not in a FULL or a DELTA, not in a state transfer or an answer
 * to anti-entropy (sc_repl_set_local_filter: every FULL record leaves it
 * out).  mod_session's "expiry" always travels.  The hash of a version
 * (sc_store_hash) leaves such pairs out too (sc_store_set_hash_filter), so
 * members holding a version with and without them hold the same version:
 * anti-entropy and the conflict rule see no difference, and a DELTA from
 * another member applies on the copy here, keeping them.
 *
 * Keys starting with '!' (which mod_session's encoding never writes: it
 * escapes '!') are this module's own pairs, always kept here and never shown
 * to mod_session: SC_SENT_KEY (below). */

/* The version of a session the other members were last sent, when changes
 * made since on URLs the ReplicationValve filter matches were not sent. */
#define SC_SENT_KEY "!sc-sent"

static const ap_regex_t *name_filter(void)
{
    static sc_retained *ret;
    if (!ret) {
        ret = sc_retained_get(NULL);
    }
    return ret->cfg && ret->cfg->set ? ret->cfg->set->attr_name_filter : NULL;
}

/* The key of a pair, URL-decoded as mod_session decodes it; NULL when it
 * does not decode (mod_session drops such a pair). */
static char *key_decode(char *buf, apr_size_t size, const char *key, apr_size_t klen)
{
    char *k = klen < size ? buf : malloc(klen + 1);
    if (!k) {
        return NULL;
    }
    memcpy(k, key, klen);
    k[klen] = '\0';
    if (ap_unescape_urlencoded(k) != OK) {
        if (k != buf) {
            free(k);
        }
        return NULL;
    }
    return k;
}

/* sc_repl's and sc_store's test: does the pair of this key stay here? */
static int attr_local(const char *key, apr_size_t klen)
{
    const ap_regex_t *re;
    char buf[256], *k;
    int local;
    if (klen && key[0] == '!') {
        return 1;
    }
    if (!klen || (klen == 6 && !memcmp(key, "expiry", 6)) || !(re = name_filter())) {
        return 0;
    }
    if (!(k = key_decode(buf, sizeof(buf), key, klen))) {
        return 0;
    }
    local = ap_regexec(re, k, 0, NULL, 0) != 0;
    if (k != buf) {
        free(k);
    }
    return local;
}

/* data without this module's own pairs ('!'), and the value of SC_SENT_KEY
 * in *sent (0: none). */
static const char *own_pairs_out(apr_pool_t *p, const char *data, apr_uint64_t *sent)
{
    const char *pair, *end;
    char *out;
    apr_size_t o = 0;
    *sent = 0;
    if (!data || !strchr(data, '!')) {
        return data;
    }
    out = apr_palloc(p, strlen(data) + 1);
    for (pair = data; *pair; pair = *end ? end + 1 : end) {
        end = pair + strcspn(pair, "&");
        if (end == pair) {
            continue;
        }
        if (*pair == '!') {
            apr_size_t kl = strlen(SC_SENT_KEY);
            if (!strncmp(pair, SC_SENT_KEY "=", kl + 1)) {
                *sent = (apr_uint64_t)apr_atoi64(pair + kl + 1);
            }
            continue;
        }
        if (o) {
            out[o++] = '&';
        }
        memcpy(out + o, pair, (apr_size_t)(end - pair));
        o += (apr_size_t)(end - pair);
    }
    out[o] = '\0';
    return out;
}

/* Says which attributes this save keeps here (set or changed by it, their
 * names not matching sessionAttributeNameFilter): a WARNING with
 * warnOnSessionAttributeFilterFailure, else at debug level, as Tomcat's; at
 * most the first ten lines, then one every ten seconds with the count. */
static void kept_local_line(request_rec *r, const sc_settings *set, const char *id,
                            const char *before, const char *after)
{
    static sc_log_gate gate;
    apr_uint32_t skipped;
    apr_array_header_t *a, *b;
    apr_table_t *old;
    const char *names = NULL;
    int i, level = set->warn_attr_filter ? APLOG_WARNING : APLOG_DEBUG;

    if (!set->attr_name_filter || !APLOG_R_IS_LEVEL(r, level)) {
        return;
    }
    a = sc_data_parse(r->pool, after);
    b = sc_data_parse(r->pool, before ? before : "");
    old = apr_table_make(r->pool, 8);
    for (i = 0; i + 1 < b->nelts; i += 2) {
        apr_table_setn(old, APR_ARRAY_IDX(b, i, const char *),
                       APR_ARRAY_IDX(b, i + 1, const char *));
    }
    for (i = 0; i + 1 < a->nelts; i += 2) {
        const char *k = APR_ARRAY_IDX(a, i, const char *);
        const char *was = apr_table_get(old, k);
        char *name;
        if (*k == '!' || !attr_local(k, strlen(k))
            || (was && !strcmp(was, APR_ARRAY_IDX(a, i + 1, const char *)))) {
            continue;
        }
        name = apr_pstrdup(r->pool, k);
        if (ap_unescape_urlencoded(name) != OK) {
            name = apr_pstrdup(r->pool, k);
        }
        name = apr_pstrcat(r->pool, "'", ap_escape_logitem(r->pool, name), "'", NULL);
        names = names ? apr_pstrcat(r->pool, names, ", ", name, NULL) : name;
    }
    if (!names) {
        return;
    }
    if (!sc_log_gate_open(&gate, 10, apr_time_now(), &skipped)) {
        return;
    }
    ap_log_rerror(APLOG_MARK, level, 0, r, SCLOGNO(1440)
                  "session %s: attribute(s) %s not distributed: the name does not match "
                  "Manager sessionAttributeNameFilter \"%s\"; kept on this member only "
                  "(%" APR_UINT64_T_FMT " such save(s) since the last line; these lines: "
                  "the first 10, then at most one every 10 s)", id ? id : "(new)", names,
                  set->attr_name_filter_text, (apr_uint64_t)skipped + 1);
}

static int filter_matches(request_rec *r, const sc_settings *set)
{
    int i;
    for (i = 0; i < set->nreplication_valves; i++) {
        ap_regex_t *re = set->replication_valves[i].filter;
        if (re && ap_regexec(re, r->uri, 0, NULL, 0) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *cookie_attrs(request_rec *r, sc_dir_conf *dc);
static void replicate(request_rec *r, sc_retained *ret, const sc_buf *b, const char *what);

/* JvmRouteBinderValve: a session that arrives here with another member's
 * route (that member failed, the balancer sent the client elsewhere) is
 * re-bound to this member, so the balancer's stickiness follows it: same
 * base, this route, a new cookie, and every member told.  'sent' is the id
 * the client sent; rq->id the session's id in the store. */
static void rebind(request_rec *r, sc_retained *ret, sc_dir_conf *dc, sc_req *rq,
                   const char *sent)
{
    /* the first enabled JvmRouteBinderValve's sessionIdAttribute */
    const char *attr = ret->cfg->set->rebind_attribute;
    const char *dot = strchr(rq->id, '.');
    const char *now_id;
    char was[SC_SID_MAX];

    if (!attr || !dot) {
        return;
    }
    now_id = apr_pstrcat(r->pool, apr_pstrmemdup(r->pool, rq->id, (apr_size_t)(dot - rq->id)),
                         ".", ret->route, NULL);
    if (strcmp(sent, rq->id) != 0) {
        /* an id the session had before it was re-bound (the client has not
         * seen the new cookie yet): it learns the id in use, wherever that
         * points, also on the member its old id names; the session is
         * re-bound once, not again by every member an old id reaches */
        now_id = rq->id;
    }
    else if (strcmp(sent, now_id) == 0) {
        return;                       /* the client has this member's id */
    }
    else {
        /* only over the id it was loaded with: re-bound meanwhile, it stays */
        sc_store_rc rc = sc_store_rebind(ret->store, now_id, rq->id, was);
        if (rc == SC_STORE_OK) {
            sc_msg_rebind m = { was, now_id };
            sc_buf b;
            __atomic_add_fetch(&ret->store->hdr->rebound, 1, __ATOMIC_RELAXED);
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1280)
                          "session %s re-bound to this member: %s", was, now_id);
            sc_buf_init(&b, r->pool, 2 * SC_SID_MAX + 8);
            sc_msg_rebind_encode(&b, &m);
            replicate(r, ret, &b, now_id);
        }
        else if (rc != SC_STORE_STALE) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1281)
                          "session %s not re-bound: %s", rq->id, sc_store_rc_text(rc));
            return;
        }
        else {
            /* re-bound since it was loaded (here or elsewhere): its id now */
            sc_sess_copy c;
            if (sc_store_get(ret->store, r->pool, now_id, 0, &c) != SC_STORE_OK) {
                return;
            }
            now_id = apr_pstrdup(r->pool, c.id);
        }
    }
    /* re-bound now or by a request just before: the client learns its id */
    apr_table_set(r->notes, attr, sent);
    apr_table_set(r->subprocess_env, attr, sent);
    rq->id = now_id;
    ap_cookie_write(r, dc->cookie_name, now_id, cookie_attrs(r, dc), 0, r->err_headers_out,
                    NULL);
}

/* Reads the session id names.  Under BackupManager, one this member knows
 * only by its location (another member serves it) is fetched first: the
 * engine asks its backup, then its primary, within rpcTimeout, and this
 * member becomes its primary (sc_backup.c); one it backs is taken over the
 * same way.  An id without a location costs nothing and is not adopted. */
static sc_store_rc load_copy(request_rec *r, sc_retained *ret, apr_pool_t *p,
                             const char *id, sc_sess_copy *s)
{
    sc_store_rc rc = sc_store_get(ret->store, p, id, 1, s);
    sc_loc_info l;
    sc_msg_fetch f;
    sc_buf b;
    const char *result;
    double ms;

    if ((rc != SC_STORE_NOTFOUND && rc != SC_STORE_OK) || !ret->cfg->set->backup_manager
        || !sc_loc_find(ret->store, id, &l)
        || l.role != (rc == SC_STORE_OK ? SC_ROLE_BACKUP : SC_ROLE_PROXY)) {
        return rc;
    }
    /* held here as a backup: the engine makes this member its primary
     * (the same request; answered once a new backup has the data) */
    f.req = 0;
    f.id = id;
    f.dead = 0;
    sc_buf_init(&b, r->pool, 128);
    sc_msg_fetch_encode(&b, &f);
    if (!sc_client_request(r->pool, r->server, NULL, b.buf, b.len, 1, &result, &ms, NULL)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1510)
                      "session %s (primary %s, backup %s) could not be fetched: %s",
                      id, l.primary[0] ? l.primary : "none",
                      l.backup[0] ? l.backup : "none", result);
        return rc;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCLOGNO(1511)
                  "session %s fetched (%s, %.3f ms)", id, result, ms);
    return sc_store_get(ret->store, p, id, 1, s);
}

/* msm's <Manager>, sticky: a session this member does not hold (its member
 * failed, or every member was restarted) is loaded from the session server
 * into the store; an id invalidated here (a tombstone) is not.  1: it is in
 * the store now. */
static int msm_fetch(request_rec *r, sc_retained *ret, const char *id)
{
    const char *data;
    apr_time_t created;
    apr_int64_t max_inactive;
    apr_uint64_t version;
    sc_store_rc rc;
    int got;

    if (!sc_msm_on() || !sc_msm_sticky() || sc_msm_ignored(r)
        || sc_store_dead(ret->store, id)) {
        return 0;
    }
    got = sc_msm_load(r, r->pool, id, &data, &created, &max_inactive);
    if (got <= 0) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCLOGNO(1706)
                      "session %s: %s", id, got < 0 ? "the session server could not be "
                      "asked" : "not on the session server");
        return 0;
    }
    if (strlen(data) > ret->store->hdr->slot_data) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1707)
                      "session %s from the session server: %" APR_SIZE_T_FMT " bytes, more "
                      "than Manager maxSessionSize %u; not taken", id, strlen(data),
                      ret->store->hdr->slot_data);
        return 0;
    }
    /* as a replica arrives: its creation time kept, not on probation; STALE:
     * another request loaded it first */
    rc = sc_store_put(ret->store, id, data, (apr_uint32_t)strlen(data), 0, 0, created,
                      apr_time_now(), max_inactive, &version);
    if (rc == SC_STORE_STALE) {
        return 1;
    }
    if (rc != SC_STORE_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1708)
                      "session %s from the session server not stored here: %s", id,
                      sc_store_rc_text(rc));
        return 0;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1709)
                  "session %s loaded from the session server", id);
    return 1;
}

/* msm's <Manager>, non-sticky: the session server is the store.  The
 * member's copy is made what the server holds now (another member may have
 * written it since), or removed when the server no longer holds it
 * (invalidated or expired elsewhere: never served again).  1: held now, 0:
 * not on the server, -1: the server could not be asked (the request gets an
 * error: never another version, never an empty session). */
static int msm_refresh(request_rec *r, sc_retained *ret, const char *id)
{
    const char *data;
    apr_time_t created;
    apr_int64_t max_inactive;
    int got = sc_msm_load(r, r->pool, id, &data, &created, &max_inactive);
    int tries;

    if (got < 0) {
        return -1;
    }
    if (got == 0) {
        sc_sess_copy held;
        if (sc_store_get(ret->store, r->pool, id, 0, &held) == SC_STORE_OK) {
            sc_store_remove(ret->store, id);
        }
        return 0;
    }
    if (strlen(data) > ret->store->hdr->slot_data) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1710)
                      "session %s from the session server: %" APR_SIZE_T_FMT " bytes, more "
                      "than Manager maxSessionSize %u", id, strlen(data),
                      ret->store->hdr->slot_data);
        return -1;
    }
    for (tries = 0; tries < 10; tries++) {
        sc_sess_copy cur;
        apr_uint64_t base = 0, version;
        sc_store_rc rc;
        if (sc_store_get(ret->store, r->pool, id, 0, &cur) == SC_STORE_OK) {
            if (cur.data_len == strlen(data) && !memcmp(cur.data, data, cur.data_len)) {
                return 1;             /* the member's copy is the server's */
            }
            base = cur.version;
        }
        rc = sc_store_put(ret->store, id, data, (apr_uint32_t)strlen(data), base, 0,
                          created, apr_time_now(), max_inactive, &version);
        if (rc == SC_STORE_OK) {
            return 1;
        }
        if (rc == SC_STORE_DEAD) {
            return 0;                 /* invalidated here meanwhile */
        }
        if (rc != SC_STORE_STALE) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1711)
                          "session %s from the session server not stored here: %s", id,
                          sc_store_rc_text(rc));
            return -1;
        }
    }
    return -1;
}

/* The session server did not take a change the next request may need on
 * another member (non-sticky): the client is told, never shown success. */
static void msm_not_saved(request_rec *r, const char *id)
{
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1712)
                  "session %s: the session server did not take the change "
                  "(sticky=\"false\": it is the store); 503 to the client", id);
    r->status = HTTP_SERVICE_UNAVAILABLE;
    r->status_line = NULL;
    apr_table_setn(r->err_headers_out, "Retry-After", "1");
    apr_table_setn(r->err_headers_out, "Session-Cluster-Refused",
                   "the session server did not take the change");
    apr_table_setn(r->notes, "SESSION_CLUSTER_REPLICATION", "refused");
}

/* lockingMode, non-sticky: the session's lock could not be had in time (or
 * the server could not be asked): the session is neither read nor changed,
 * and the client is told to come again. */
static void msm_locked_out(request_rec *r)
{
    const char *was = apr_table_get(r->notes, "SESSION_CLUSTER_REPLICATION");
    if (was && !strcmp(was, "locked")) {
        return;                       /* said already (an error response has
                                       * its headers in headers_out now) */
    }
    apr_table_setn(r->err_headers_out, "Retry-After", "1");
    apr_table_setn(r->err_headers_out, "Session-Cluster-Refused",
                   "the session is locked by another request");
    apr_table_setn(r->notes, "SESSION_CLUSTER_REPLICATION", "locked");
}

static apr_status_t sc_session_load(request_rec *r, session_rec **z)
{
    sc_dir_conf *dc = dir_conf(r);
    sc_retained *ret;
    request_rec *m = r->main ? r->main : r;
    sc_req *rq;
    const char *id = NULL;
    sc_sess_copy s;
    session_rec *zz;
    apr_uint64_t sent = 0;

    if (!dc || !dc->enabled) {
        return DECLINED;
    }
    rq = req_get(r);
    if (rq) {
        *z = rq->z;
        return OK;
    }
    ret = sc_retained_get(r->server);
    if (!ret->store) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1270)
                      "SessionCluster On, but this server has no session store (no "
                      "<Cluster> block, or the store could not be created)");
        return DECLINED;
    }
    rq = apr_pcalloc(m->pool, sizeof(*rq));
    id = cookie_id(r, dc->cookie_name);
    if (!id) {
        id = sc_url_sid(r->pool, r->uri);
    }
    if (id && !sc_sid_valid(id)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1271)
                      "session id of a foreign shape ignored (%" APR_SIZE_T_FMT
                      " characters): a new session starts", strlen(id));
        id = NULL;
    }
    zz = apr_pcalloc(m->pool, sizeof(*zz));
    zz->pool = m->pool;
    zz->entries = apr_table_make(zz->pool, 10);
    if (id && sc_msm_on() && !sc_msm_sticky() && sc_msm_lock_wanted(r)) {
        /* lockingMode: the lock before the read (taken already by
         * sc_session_fixups when the id came with the request) */
        const char *why;
        if (!sc_msm_lock(r, id, &why)) {
            msm_locked_out(r);
            return APR_EGENERAL;
        }
        rq->locked = 1;
    }
    if (id && sc_msm_on() && !sc_msm_sticky() && !sc_msm_ignored(r)
        && msm_refresh(r, ret, id) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1713)
                      "session %s: the session server (sticky=\"false\": the store) "
                      "could not be read: the session is not loaded", id);
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
        apr_table_setn(r->notes, "SESSION_CLUSTER_REPLICATION", "unavailable");
        return APR_EGENERAL;
    }
    if (id && (load_copy(r, ret, m->pool, id, &s) == SC_STORE_OK
               || (msm_fetch(r, ret, id)
                   && load_copy(r, ret, m->pool, id, &s) == SC_STORE_OK))) {
        if (sc_store_idled_out(apr_time_now(), s.last_access,
                               sc_store_idle_limit(ret->store, s.created, s.last_access,
                                                   s.max_inactive))) {
            /* idle too long; the engine's sweep removes it */
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCLOGNO(1272)
                          "session %s has expired", id);
        }
        else {
            /* the id as the store has it now (another route if it was
             * re-bound meanwhile) */
            rq->id = apr_pstrdup(m->pool, s.id);
            rq->version = s.version;
            rq->data = s.data;
            rq->hash = s.hash;
            rq->created = s.created;
            /* mod_session sees the attributes, not this module's pairs */
            zz->encoded = own_pairs_out(m->pool, s.data, &sent);
            rq->loaded = zz->encoded;
            rq->loaded_len = zz->encoded == s.data ? (apr_ssize_t)s.data_len : -1;
            /* the store's very bytes: parts copied from them at their own
             * offsets need no comparison at the save (sc_store_kept) */
            rq->read_slot = zz->encoded == s.data ? s.read_slot : 0;
            rq->read_seq = s.read_seq;
        }
    }
    else if (id) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCLOGNO(1273)
                      "session %s is not held by the cluster: not adopted", id);
    }
    rq->z = zz;
    rq->filtered = filter_matches(r, ret->cfg->set);
    if (rq->id && sent && !rq->filtered) {
        /* changes made on filtered URLs are pending: as in Tomcat, they go
         * with this request, whether it changes the session or not (saved,
         * it sends them: sc_session_save) */
        zz->dirty = 1;
    }
    if (rq->id) {
        rebind(r, ret, dc, rq, id);
        if (sc_msm_on() && strcmp(rq->id, id) != 0) {
            /* re-bound: the server keeps it under its new id (saved now),
             * not under the old one */
            sc_msm_remove(r, id);
            zz->dirty = 1;
        }
        else if (sc_msm_on() && sc_msm_node_ids()
                 && strcmp(sc_msm_node_id(r->pool, rq->id, SC_SID_MAX), rq->id) != 0) {
            /* the node its id names is down: saved, it moves (msm_save) */
            zz->dirty = 1;
        }
        else if (sc_msm_on()) {
            /* read: its expiry on the server follows, unless it is saved */
            sc_msm_touch(r, rq->id, rq->data, rq->created, s.max_inactive);
        }
    }
    if (rq->id && sc_msm_on() && !sc_msm_sticky()) {
        sc_msm_auto_note(r, 0);       /* read (lockingMode="auto") */
    }
    apr_table_setn(r->subprocess_env, "SESSION_CLUSTER_ROUTE", ret->route);
    primary_indicator(r, ret->cfg->set, rq->id, ret->route);
    if (rq->id) {
        apr_table_setn(r->notes, "SESSION_CLUSTER_ID", rq->id);
        apr_table_setn(r->subprocess_env, "SESSION_CLUSTER_ID", rq->id);
    }
    ap_set_module_config(m->request_config, &session_cluster_module, rq);
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache, private");
    *z = zz;
    return OK;
}

static const char *cookie_attrs(request_rec *r, sc_dir_conf *dc)
{
    const char *a = dc->cookie_attrs;
    if (!ap_strcasestr(a, "httponly")) {
        a = apr_pstrcat(r->pool, a, ";HttpOnly", NULL);
    }
    if (!strcmp(ap_http_scheme(r), "https") && !ap_strcasestr(a, "secure")) {
        a = apr_pstrcat(r->pool, a, ";Secure", NULL);
    }
    return a;
}

/* Synchronous replication promises that a change the client sees is on every
 * live member; this one is not (not acknowledged by all, or not sent), so the
 * client is not told it succeeded: 503 (the header filter sends it).  But the
 * change is in effect on this member, and on the members that acknowledged
 * it: the answer says so (Session-Cluster-Change: kept), so that a client, or
 * a balancer, does not apply a non-idempotent change twice by retrying.
 * nowhere_else: the message never left this member (too large, or the engine
 * could not be reached), so no other member has the change: the answer says
 * that too (Session-Cluster-Replicated: none), and a front may send an
 * idempotent request again to another member (sc_balancer.c). */
static void not_replicated(request_rec *r, int nowhere_else)
{
    r->status = HTTP_SERVICE_UNAVAILABLE;
    r->status_line = NULL;
    apr_table_setn(r->err_headers_out, "Retry-After", "1");
    apr_table_setn(r->err_headers_out, "Session-Cluster-Change", "kept");
    if (nowhere_else) {
        apr_table_setn(r->err_headers_out, "Session-Cluster-Replicated", "none");
    }
    apr_table_setn(r->notes, "SESSION_CLUSTER_REPLICATION", "failed");
}

/* Hands a message to the engine; synchronous when channelSendOptions asks
 * for acknowledgements. */
static void replicate(request_rec *r, sc_retained *ret, const sc_buf *b, const char *what)
{
    const sc_settings *set = ret->cfg->set;
    /* BackupManager: mapSendOptions, to the session's backup */
    int acked = set->backup_manager ? set->map_acked : set->replication_acked;
    const char *result;
    double ms;
    int handed;
    int i, others = set->backup_manager;  /* its engine records every change */

    /* an engine that is starting has not met the members yet, perhaps: it
     * keeps the change for those its predecessor saw (sc_channel.c, "Early
     * changes"), or sends it to nobody */
    if (__atomic_load_n(&ret->shm->engine_state, __ATOMIC_RELAXED) == SC_MS_STARTING) {
        others = 1;
    }
    /* alone in the cluster: nobody to tell (a joining member gets the state) */
    for (i = 0; i < SC_MAX_MEMBERS && !others; i++) {
        others = ret->shm->members[i].view == SC_VIEW_ALIVE
                 && !ret->shm->members[i].observer;
    }
    if (!others) {
        return;
    }
    /* the engine takes no frame longer than this member's Receiver
     * maxMessageSize (the route's length byte, then the message): refused
     * there it would be lost without a word */
    if (1 + b->len > (apr_size_t)set->max_message_size) {
        __atomic_add_fetch(&ret->store->hdr->repl_too_big, 1, __ATOMIC_RELAXED);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1384)
                      "replication of %s: not sent, the message (%" APR_SIZE_T_FMT
                      " bytes) is larger than this member's Receiver maxMessageSize %ld; "
                      "Manager maxSessionSize %u lets sessions grow larger than that: "
                      "raise maxMessageSize or lower maxSessionSize", what, b->len + 1,
                      set->max_message_size, ret->store->hdr->slot_data);
        if (acked) {
            not_replicated(r, 1);
        }
        return;
    }
    if (!sc_client_request(r->pool, r->server, NULL, b->buf, b->len, acked, &result, &ms,
                           &handed)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1274)
                      "replication of %s: %s", what, result);
        if (acked) {
            not_replicated(r, !handed);
        }
    }
}

/* Does the session hold anything but mod_session's own "expiry"? */
static int count_attr(void *n, const char *key, const char *val)
{
    if (strcmp(key, "expiry") != 0) {
        ++*(int *)n;
    }
    return 1;
}

static int has_attributes(session_rec *z)
{
    int n = 0;
    apr_table_do(count_attr, &n, z->entries, NULL);
    return n > 0;
}

static int login_in(request_rec *r, const char *before, const char *after);
static void change_id(request_rec *r, sc_retained *ret, sc_dir_conf *dc, sc_req *rq);

/* A flood of new sessions fills the store in a moment: lines about it come
 * at a rate limit shared by every process (the first few, then one every
 * SC_FLOOD_LINE_S seconds with the count), never one per request. */
static void evicted_line(request_rec *r, sc_store *st, apr_time_t now, apr_time_t idle)
{
    apr_uint64_t n = __atomic_load_n(&st->hdr->evicted, __ATOMIC_RELAXED);
    if (sc_store_line_due(&st->hdr->evict_logged, n, now)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1431)
                      "the session store is full (%u sessions, %" APR_UINT64_T_FMT " of "
                      "its %" APR_UINT64_T_FMT " bytes: Manager maxStoreSize, "
                      "maxActiveSessions): a new session took the place of one that saw "
                      "a single request, idle %" APR_TIME_T_FMT " ms "
                      "(probationInactiveInterval %" APR_INT64_T_FMT " s); %"
                      APR_UINT64_T_FMT " given up so far (these lines: the first %d, then "
                      "at most one every %d s)", st->hdr->count, sc_store_bytes_counted(st),
                      st->hdr->budget, apr_time_as_msec(idle), st->hdr->probation_s, n,
                      SC_FLOOD_LINES, SC_FLOOD_LINE_S);
    }
}

static void full_refused(request_rec *r, sc_store *st, apr_time_t now)
{
    apr_uint64_t n = __atomic_load_n(&st->hdr->rejected_full, __ATOMIC_RELAXED);
    if (sc_store_line_due(&st->hdr->full_logged, n, now)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1432)
                      "new session not saved (507 to the client): the session store is "
                      "full (%u sessions, %" APR_UINT64_T_FMT " of its %" APR_UINT64_T_FMT
                      " bytes: Manager maxStoreSize, maxActiveSessions) and none of the "
                      "sessions looked at is on probation (each saw a second request%s); "
                      "%" APR_UINT64_T_FMT " refused so far (these lines: the first %d, "
                      "then at most one every %d s)", st->hdr->count,
                      sc_store_bytes_counted(st), st->hdr->budget,
                      st->hdr->probation_s > 0 ? ""
                      : ", or probationInactiveInterval is off", n, SC_FLOOD_LINES,
                      SC_FLOOD_LINE_S);
    }
}

/* Synchronous replication, and this member sees fewer than half of the
 * members it knows (sc_store.h, "Versions and conflicts"): it may be the
 * small side of a partition, where the others go on without it.  The change
 * is not made (a removal still is: it cannot conflict), the client gets 503
 * and why; a line at a rate limit (the first, then one every 10 s with the
 * count since). */
static void minority_refused(request_rec *r, sc_store *st)
{
    static sc_log_gate gate;
    apr_uint32_t skipped;
    apr_uint64_t n = __atomic_add_fetch(&st->hdr->minority_refused, 1, __ATOMIC_RELAXED);
    const char *why = apr_psprintf(r->pool, "minority: this member sees %" APR_UINT64_T_FMT
                                   " of the %" APR_UINT64_T_FMT " members it knows",
                                   st->hdr->quorum_seen, st->hdr->quorum_known);
    r->status = HTTP_SERVICE_UNAVAILABLE;
    r->status_line = NULL;
    apr_table_setn(r->err_headers_out, "Retry-After", "1");
    apr_table_setn(r->err_headers_out, "Session-Cluster-Refused", why);
    apr_table_setn(r->notes, "SESSION_CLUSTER_REPLICATION", "refused");
    if (sc_log_gate_open(&gate, 0, apr_time_now(), &skipped)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1426)
                      "session change refused (%" APR_UINT64_T_FMT " since the last such "
                      "line, %" APR_UINT64_T_FMT " in all): %s, and synchronous "
                      "replication (channelSendOptions with acknowledgements) promises a "
                      "change on every member; the session stays as it was (503)",
                      (apr_uint64_t)skipped + 1, n, why);
    }
}

/* A change the store cannot take (full, too large, or moved by a restart):
 * the client is told with an error status and why, never a page that looks
 * as if the change was kept.  A full store or a too large session: 507
 * (Insufficient Storage); a store moved by a restart: 503, try again. */
static void store_refused(request_rec *r, sc_store_rc rc)
{
    r->status = rc == SC_STORE_MOVED ? HTTP_SERVICE_UNAVAILABLE : HTTP_INSUFFICIENT_STORAGE;
    r->status_line = NULL;
    if (rc == SC_STORE_MOVED) {
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
    }
    apr_table_setn(r->err_headers_out, "Session-Cluster-Refused", sc_store_rc_text(rc));
    apr_table_setn(r->notes, "SESSION_CLUSTER_REPLICATION", "refused");
}

static apr_status_t save_session(request_rec *r, session_rec *z);

/* Set-Cookie for the session cookie, in place of one this request set
 * already (a session moved in the request that made it): one header. */
static void cookie_replace(request_rec *r, sc_dir_conf *dc, const char *id)
{
    const apr_array_header_t *a = apr_table_elts(r->err_headers_out);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    apr_size_t nl = strlen(dc->cookie_name);
    apr_array_header_t *keep = apr_array_make(r->pool, 2, sizeof(const char *));
    int i, mine = 0;
    for (i = 0; i < a->nelts; i++) {
        if (e[i].key && !strcasecmp(e[i].key, "Set-Cookie")) {
            if (!strncmp(e[i].val, dc->cookie_name, nl) && e[i].val[nl] == '=') {
                mine = 1;
            }
            else {
                APR_ARRAY_PUSH(keep, const char *) = e[i].val;
            }
        }
    }
    if (mine) {
        apr_table_unset(r->err_headers_out, "Set-Cookie");
        for (i = 0; i < keep->nelts; i++) {
            apr_table_addn(r->err_headers_out, "Set-Cookie",
                           APR_ARRAY_IDX(keep, i, const char *));
        }
    }
    ap_cookie_write(r, dc->cookie_name, id, cookie_attrs(r, dc), 0, r->err_headers_out,
                    NULL);
}

/* msm's node id (several memcached nodes): a session whose id names a node
 * that is down (or no configured node, or a failover node while a regular
 * one is up) moves to the node it goes to now, as msm changes the id: the
 * same hex and route with that node's id, re-bound in the store (the node
 * part is not the session's base, like the route: sc_store.c) and on the
 * other members, the client given the new cookie, the server's copy under the
 * old id removed.  1: moved. */
static int msm_place(request_rec *r, sc_retained *ret, sc_dir_conf *dc, sc_req *rq)
{
    const char *nid;
    char was[SC_SID_MAX];
    sc_store_rc rc;
    if (!sc_msm_node_ids() || !rq->id) {
        return 0;
    }
    nid = sc_msm_node_id(r->pool, rq->id, SC_SID_MAX);
    if (!strcmp(nid, rq->id)) {
        return 0;
    }
    rc = sc_store_rebind(ret->store, nid, rq->id, was);
    if (rc != SC_STORE_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1718)
                      "session %s not moved to session server node %s: %s", rq->id, nid,
                      sc_store_rc_text(rc));
        return 0;
    }
    {
        sc_msg_rebind m = { was, nid };
        sc_buf b;
        sc_buf_init(&b, r->pool, 2 * SC_SID_MAX + 8);
        sc_msg_rebind_encode(&b, &m);
        replicate(r, ret, &b, nid);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1717)
                  "session %s moved to another session server node: %s", was, nid);
    rq->id = nid;
    apr_table_setn(r->notes, "SESSION_CLUSTER_ID", nid);
    cookie_replace(r, dc, nid);
    sc_msm_remove(r, apr_pstrdup(r->pool, was));
    return 1;
}

/* The session server's copy of the session the request saved: on the node
 * its id names; moved first when that node is known to be down, and again
 * when it failed during this backup (the backup went to the next node).  0:
 * a synchronous backup no node took. */
static int msm_save(request_rec *r, sc_retained *ret, sc_dir_conf *dc, sc_req *rq,
                    apr_int64_t max_inactive)
{
    int ok;
    msm_place(r, ret, dc, rq);
    ok = sc_msm_backup(r, rq->id, rq->data, rq->created, max_inactive);
    if (ok && msm_place(r, ret, dc, rq)) {
        ok = sc_msm_backup(r, rq->id, rq->data, rq->created, max_inactive);
    }
    return ok;
}

/* lockingMode, non-sticky: a change is written only under the session's
 * lock, with time left to write it before the lock could expire; the lock
 * is released once the session is stored (msm's order), or at the
 * request's end (sc_msm.c) when it is not saved. */
static apr_status_t sc_session_save(request_rec *r, session_rec *z)
{
    sc_dir_conf *dc = dir_conf(r);
    sc_req *rq = dc && dc->enabled ? req_get(r) : NULL;
    apr_status_t rv;
    if (rq && rq->locked && rq->id && !sc_msm_lock_valid(r, rq->id)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1715)
                      "session %s: not changed, its lock (lockingMode) was held so long it "
                      "could expire while the change is written (lock life %d ms); 503 to "
                      "the client", rq->id, SC_MSM_LOCK_EXPIRY_MS);
        r->status = HTTP_SERVICE_UNAVAILABLE;
        r->status_line = NULL;
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
        apr_table_setn(r->err_headers_out, "Session-Cluster-Refused",
                       "the session's lock expired before the change was written");
        apr_table_setn(r->notes, "SESSION_CLUSTER_REPLICATION", "refused");
        sc_msm_unlock(r);
        rq->locked = 0;
        return OK;
    }
    if (rq && sc_msm_on() && !sc_msm_sticky()) {
        /* lockingMode="auto" learns which requests change their session */
        apr_uint64_t sent;
        const char *read = rq->id ? own_pairs_out(r->pool, rq->data, &sent) : NULL;
        sc_msm_auto_note(r, !read || strcmp(read, z->encoded ? z->encoded : "") != 0);
    }
    rv = save_session(r, z);
    if (rq && rq->locked) {
        sc_msm_unlock(r);
        rq->locked = 0;
    }
    return rv;
}

static apr_status_t save_session(request_rec *r, session_rec *z)
{
    sc_dir_conf *dc = dir_conf(r);
    sc_retained *ret;
    sc_req *rq;
    apr_time_t now = apr_time_now();
    apr_int64_t max_inactive;
    const char *data = z->encoded ? z->encoded : "";
    apr_size_t dlen = strlen(data);   /* once: a pass over a 32 KB session each */
    apr_uint64_t version;
    sc_store_rc rc;
    sc_buf b;
    int tries;
    apr_time_t evicted_idle;
    const char *app;

    if (!dc || !dc->enabled) {
        return DECLINED;
    }
    rq = req_get(r);
    ret = sc_retained_get(r->server);
    if (!rq || !ret->store) {
        return DECLINED;
    }
    max_inactive = z->maxage > 0 ? z->maxage
                                 : ret->cfg->set->max_inactive_s;
    sc_buf_init(&b, r->pool, 256 + dlen);

    /* emptied (mod_session still encodes its "expiry" then) or expired:
     * invalidate */
    if (!*data || !has_attributes(z) || (z->expiry && z->expiry < now)) {
        if (rq->id) {
            sc_msg_remove m = { rq->id };
            if (sc_store_remove(ret->store, rq->id) == SC_STORE_MOVED) {
                /* a graceful restart moved the store: the logout must not
                 * be lost, so the client is told to try again */
                store_refused(r, SC_STORE_MOVED);
                return OK;
            }
            ap_cookie_remove(r, dc->cookie_name, cookie_attrs(r, dc),
                             r->err_headers_out, NULL);
            if (!sc_msm_remove(r, rq->id) && !sc_msm_sticky()) {
                msm_not_saved(r, rq->id);
            }
            sc_msg_remove_encode(&b, &m);
            replicate(r, ret, &b, rq->id);
            rq->id = NULL;
        }
        return OK;
    }
    if (dlen > ret->store->hdr->slot_data) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1275)
                      "session not saved: %" APR_SIZE_T_FMT " bytes, more than Manager "
                      "maxSessionSize %u", dlen, ret->store->hdr->slot_data);
        __atomic_add_fetch(&ret->store->hdr->rejected_size, 1, __ATOMIC_RELAXED);
        store_refused(r, SC_STORE_TOOBIG);
        return OK;
    }
    if (ret->cfg->set->replication_acked
        && __atomic_load_n(&ret->store->hdr->minority, __ATOMIC_ACQUIRE)) {
        minority_refused(r, ret->store);
        return OK;
    }

    if (!rq->id) {
        const char *id = sc_sid_new(r->pool, ret->route,
                                    (int)ret->cfg->set->session_id_length);
        if (!id) {
            return APR_EGENERAL;
        }
        if (sc_msm_on()) {
            /* several memcached nodes: msm's node id, the node it goes to */
            id = sc_msm_node_id(r->pool, id, SC_SID_MAX);
        }
        rc = sc_store_put_new(ret->store, id, data, (apr_uint32_t)dlen, now,
                              max_inactive, sc_store_origin(r->useragent_ip), &version,
                              &evicted_idle);
        if (rc == SC_STORE_FULL) {
            /* no session: said at a rate limit and counted, the client gets
             * 507, and OK to mod_session, whose own error line (AH01823)
             * would come once per request */
            full_refused(r, ret->store, now);
            store_refused(r, rc);
            return OK;
        }
        if (rc == SC_STORE_MOVED || rc == SC_STORE_TOOBIG) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1500)
                          "new session not saved: %s", sc_store_rc_text(rc));
            store_refused(r, rc);
            return OK;
        }
        if (rc != SC_STORE_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1276)
                          "new session not saved: %s", sc_store_rc_text(rc));
            return APR_EGENERAL;
        }
        if (evicted_idle >= 0) {
            evicted_line(r, ret->store, now, evicted_idle);
        }
        rq->id = id;
        rq->version = version;
        rq->data = data;
        apr_table_setn(r->notes, "SESSION_CLUSTER_ID", id);
        /* err_headers_out: sent with error responses too, and only once */
        ap_cookie_write(r, dc->cookie_name, id, cookie_attrs(r, dc), 0,
                        r->err_headers_out, NULL);
        kept_local_line(r, ret->cfg->set, id, NULL, data);
        {
            /* sent also when the ReplicationValve filter matched, as
             * Tomcat's SESSION_CREATED: a change on a filtered URL can be
             * kept for a later request only when the others hold the
             * session (the attributes kept here stay here: the FULL
             * record leaves them out) */
            sc_sess_copy s;
            memset(&s, 0, sizeof(s));
            apr_cpystrn(s.id, id, sizeof(s.id));
            s.version = version;
            s.created = s.last_access = now;
            s.max_inactive = max_inactive;
            s.data = (char *)data;
            s.data_len = (apr_uint32_t)dlen;
            sc_msg_full_encode(&b, &s);
            replicate(r, ret, &b, id);
        }
        rq->created = now;
        if (sc_msm_on() && !msm_save(r, ret, dc, rq, max_inactive) && !sc_msm_sticky()) {
            msm_not_saved(r, rq->id);
        }
        return OK;
    }

    /* an update: over the version read, merged if another request wrote
     * first.  app: the attributes (mod_session's encoding); data: what is
     * stored, with this module's own pairs */
    app = data;
    for (tries = 0; tries < 20; tries++) {
        apr_uint64_t base = rq->version, sent, next_hash = 0, made_hash;
        int delta_made;
        const char *read = own_pairs_out(r->pool, rq->data, &sent);
        if (rq->filtered) {
            /* the ReplicationValve filter matched: the change is not sent
             * now (Tomcat keeps it for the next request that is not
             * filtered); the session keeps the version the others were
             * last sent, which the next such request's change is sent
             * over */
            data = apr_psprintf(r->pool, "%s%s" SC_SENT_KEY "=%" APR_UINT64_T_FMT, app,
                                *app ? "&" : "", sent ? sent : base);
        }
        else {
            data = app;
        }
        made_hash = 0;
        delta_made = !rq->filtered && !sent;
        if (delta_made) {
            /* the DELTA before the write: finding the pairs that changed, it
             * makes the new version's hash from the version read's (its
             * stamp) with only those pairs hashed, which the store then does
             * not make again over the whole session.  Stamps made under
             * another hash function or filter (a store kept over a restart)
             * are not built on: sc_store_hash_trusted */
            sc_delta_how how;
            b.len = 0;
            how.local_out = 1;
            how.old_hash = rq->hash;
            how.new_hash = rq->hash && sc_store_hash_trusted(ret->store) ? &made_hash : NULL;
            /* the values the encoding copied from the text read (a merge's
             * texts are others, at other addresses) */
            how.copied = rq->copied;
            sc_repl_delta_how(&b, rq->id, base, base + 1, now, max_inactive,
                              read ? read : "", app, &how);
        }
        {
            /* this module's encoding stored as it is, on the version the
             * text it copied from was (no merge yet): the parts it copied at
             * their own offsets are the store's bytes while it holds that
             * version, and are not compared */
            sc_store_kept kept, *kp = NULL;
            if (!tries && rq->kept && data == z->encoded && data == rq->kept_enc
                && rq->read_slot && rq->data == rq->loaded) {
                kept.read_slot = rq->read_slot;
                kept.read_seq = rq->read_seq;
                kept.n = rq->kept->nelts;
                kept.r = (const sc_store_range *)rq->kept->elts;
                kp = &kept;
            }
            rc = sc_store_put_hashed(ret->store, rq->id, data,
                                     (apr_uint32_t)(data == z->encoded ? dlen : strlen(data)),
                                     base, now, max_inactive, made_hash, kp, &version);
        }
        if (rc == SC_STORE_OK) {
            kept_local_line(r, ret->cfg->set, rq->id, read, app);
            if (!rq->filtered && sent) {
                /* changes made on filtered URLs since version 'sent' were
                 * not sent: the others get the whole session (what they
                 * hold is older than the version this one is made on) */
                sc_sess_copy c;
                if (sc_store_get(ret->store, r->pool, rq->id, 0, &c) == SC_STORE_OK) {
                    c.flags &= SC_SF_WIRE;
                    sc_buf_init(&b, r->pool, 256 + c.data_len);
                    sc_msg_full_encode(&b, &c);
                    replicate(r, ret, &b, rq->id);
                }
            }
            else if (!rq->filtered) {
                /* sent even when no attribute changed (a merge can make the
                 * write identical): the other members need every version;
                 * between the parts that travel (the attributes kept here
                 * stay here) */
                sc_stamp made;
                if (!delta_made || version != base + 1) {
                    b.len = 0;
                    sc_repl_delta(&b, rq->id, base, version, now, max_inactive,
                                  sc_repl_distributed(r->pool, read, NULL),
                                  sc_repl_distributed(r->pool, app, NULL));
                }
                /* the version's stamp, and the data it applies to (a member
                 * holding other data at that number does not apply it) */
                if (sc_store_stamp(ret->store, rq->id, &made) == SC_STORE_OK
                    && made.version == version) {
                    /* the base's hash is the stamp of the version read, as
                     * the store holds it: hashing 'read' again would cost
                     * a pass over the whole session (tens of microseconds
                     * for 32 KB) for the same figure ('read' differs from
                     * what was read only by this module's own pairs, which
                     * the hash leaves out) */
                    sc_repl_delta_stamp(&b, &made, rq->hash ? rq->hash
                                        : sc_store_hash(read ? read : "",
                                                        read ? (apr_uint32_t)strlen(read) : 0));
                    next_hash = made.hash;
                }
                replicate(r, ret, &b, rq->id);
            }
            {
                request_rec *m = r->main ? r->main : r;
                int login = dc->change_id_on_login && login_in(r, read, app);
                const char *was = rq->id;
                rq->version = version;
                rq->data = data;
                rq->hash = next_hash;
                if (login || apr_table_get(m->notes, SC_CHANGE_ID_NOTE)) {
                    apr_table_unset(m->notes, SC_CHANGE_ID_NOTE);
                    change_id(r, ret, dc, rq);
                }
                if (sc_msm_on()) {
                    if (strcmp(was, rq->id) != 0) {
                        sc_msm_remove(r, was);
                    }
                    if (!msm_save(r, ret, dc, rq, max_inactive) && !sc_msm_sticky()) {
                        msm_not_saved(r, rq->id);
                    }
                }
            }
            return OK;
        }
        if (rc == SC_STORE_STALE) {
            sc_sess_copy cur;
            sc_msg_delta m;
            sc_buf d;
            sc_rd rd;
            const char *merged;
            apr_uint64_t ignored;
            if (sc_store_get(ret->store, r->pool, rq->id, 0, &cur) != SC_STORE_OK) {
                rc = SC_STORE_NOTFOUND;  /* removed since: not created again */
                break;
            }
            /* our change, applied to what is there now */
            sc_buf_init(&d, r->pool, 256);
            sc_repl_delta(&d, rq->id, base, base + 1, now, max_inactive, read, app);
            sc_rd_init(&rd, d.buf, d.len);
            merged = sc_msg_delta_decode(&rd, r->pool, &m)
                     ? sc_msg_delta_apply(r->pool, cur.data, &m) : NULL;
            if (!merged) {
                return APR_EGENERAL;
            }
            rq->data = cur.data;
            rq->version = cur.version;
            rq->hash = cur.hash;
            app = own_pairs_out(r->pool, merged, &ignored);
            continue;
        }
        break;
    }
    if (rc == SC_STORE_NOTFOUND || rc == SC_STORE_DEAD) {
        /* removed while this request ran (invalidated here or on another
         * member, expired, its id changed): an invalidated id stays dead, so
         * this request's change is dropped; the page is served, and the
         * client is told to forget the id */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1383)
                      "session %s was removed (invalidated or expired) while this "
                      "request ran: its change is dropped, the session is not created "
                      "again", rq->id);
        ap_cookie_remove(r, dc->cookie_name, cookie_attrs(r, dc), r->err_headers_out,
                         NULL);
        apr_table_unset(r->notes, "SESSION_CLUSTER_ID");
        return OK;
    }
    if (tries < 20) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1277)
                      "session %s not saved (it stays as it was): %s", rq->id,
                      sc_store_rc_text(rc));
        if (rc == SC_STORE_FULL || rc == SC_STORE_TOOBIG || rc == SC_STORE_MOVED) {
            store_refused(r, rc);
            return OK;
        }
        return APR_EGENERAL;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1278)
                  "session %s not saved: too many concurrent updates", rq->id);
    return APR_EGENERAL;
}

/* sc_session_change_id: the session gets a new id when it is saved. */
static int sc_session_change_id(request_rec *r)
{
    sc_dir_conf *dc = dir_conf(r);
    request_rec *m = r->main ? r->main : r;
    if (!dc || !dc->enabled) {
        return 0;
    }
    apr_table_setn(m->notes, SC_CHANGE_ID_NOTE, "1");
    return 1;
}

/* Did this save log a user in?  mod_auth_form keeps the user under
 * "<AuthName>-user" (mod_session's user key): a value there that the session
 * did not have when it was read. */
static int login_in(request_rec *r, const char *before, const char *after)
{
    apr_array_header_t *a = sc_data_parse(r->pool, after);
    apr_table_t *old = apr_table_make(r->pool, 8);
    apr_array_header_t *b = sc_data_parse(r->pool, before ? before : "");
    int i;
    for (i = 0; b && i + 1 < b->nelts; i += 2) {
        apr_table_setn(old, APR_ARRAY_IDX(b, i, const char *),
                       APR_ARRAY_IDX(b, i + 1, const char *));
    }
    for (i = 0; a && i + 1 < a->nelts; i += 2) {
        const char *k = APR_ARRAY_IDX(a, i, const char *);
        const char *v = APR_ARRAY_IDX(a, i + 1, const char *);
        apr_size_t kl = strlen(k);
        const char *was;
        if (kl >= 5 && !strcmp(k + kl - 5, "-user") && *v) {
            was = apr_table_get(old, k);
            if (!was || strcmp(was, v) != 0) {
                return 1;
            }
        }
    }
    return 0;
}

/* Moves the saved session to a new id: the new one stored and sent to every
 * member, the old one removed everywhere, the client given the new cookie. */
static void change_id(request_rec *r, sc_retained *ret, sc_dir_conf *dc, sc_req *rq)
{
    const char *nid = sc_sid_new(r->pool, ret->route,
                                 (int)ret->cfg->set->session_id_length);
    sc_sess_copy s;
    if (nid && sc_msm_on()) {
        /* several memcached nodes: msm's node id, the node it goes to */
        nid = sc_msm_node_id(r->pool, nid, SC_SID_MAX);
    }
    apr_uint64_t version, sent;
    const char *data = NULL;
    sc_buf b;
    if (nid && sc_store_get(ret->store, r->pool, rq->id, 0, &s) == SC_STORE_OK) {
        /* the new id is sent whole at once: nothing is pending for it */
        data = own_pairs_out(r->pool, s.data, &sent);
    }
    if (!data || sc_store_put(ret->store, nid, data, (apr_uint32_t)strlen(data), 0, 0,
                              s.created, apr_time_now(), s.max_inactive, &version)
                 != SC_STORE_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1299)
                      "session %s: its id could not be changed", rq->id);
        return;
    }
    sc_store_remove(ret->store, rq->id);
    {
        /* sent also when the ReplicationValve filter matched, as Tomcat's
         * change of a session's id */
        sc_msg_remove m = { rq->id };
        memset(&s, 0, sizeof(s));
        sc_store_get(ret->store, r->pool, nid, 0, &s);
        sc_buf_init(&b, r->pool, 256 + s.data_len);
        sc_msg_full_encode(&b, &s);
        replicate(r, ret, &b, nid);
        sc_buf_init(&b, r->pool, 128);
        sc_msg_remove_encode(&b, &m);
        replicate(r, ret, &b, rq->id);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1300)
                  "session %s changed its id to %s", rq->id, nid);
    rq->id = nid;
    rq->version = version;
    rq->data = data;
    rq->hash = s.version == version ? s.hash : 0;
    apr_table_setn(r->notes, "SESSION_CLUSTER_ID", nid);
    ap_cookie_write(r, dc->cookie_name, nid, cookie_attrs(r, dc), 0, r->err_headers_out,
                    NULL);
}

/* ---- mod_session's encoding, without escaping again what was read ----
 *
 * mod_session keeps a session as pairs "key=value" joined by '&', key and
 * value URL-escaped (ap_escape_urlencoded_buffer: a byte that needs no escape
 * as itself, a space as '+', any other byte as "%xx", lower-case hex), in the
 * order of the session's table.  Its own encoder runs first on every save and escapes
 * every attribute again, changed or not: a pass of a table lookup per byte
 * over the whole session (13-16 us per request for a 32 KB attribute).
 *
 * For a session this provider loaded, sc_session_decode keeps, for each value
 * whose text as read is exactly the escaping of what it decodes to (every
 * text mod_session writes is), that text and the decoded value as read; the
 * table gets its own copy.  At save (sc_session_encode_pre) a value still
 * equal to the one read is written as the text read, any other one escaped:
 * the same bytes as mod_session's encoder gives, so the store and the other
 * members see no difference.  mod_session's encoder still runs (its hook is
 * not ours to skip), on an empty table for that moment; the one after it
 * (sc_session_encode_post) puts the table and this encoding back, before any
 * other encoder (mod_session_crypto's) sees them.
 *
 * Which bytes the escaper writes as themselves, and the case of its hex
 * digits, are learnt from httpd's own escaper (esc_learn); should it ever
 * escape otherwise than said above, nothing read is reused and every value is
 * escaped. */

typedef struct {
    const char *table_val;            /* the table's copy (the hash's key) */
    const char *text;                 /* the value's text as read */
    apr_size_t text_len;
    const char *value;                /* its decoded value as read */
    apr_size_t len;
    apr_ssize_t loaded_off;           /* where text is in rq->loaded (-1: not
                                       * there) */
} sc_span;

/* The smallest part of an encoding worth telling the store it was copied
 * (sc_store_kept): one that holds a whole block of the store (a shorter one
 * only splits a block's comparison).  The fuzz targets build with less. */
#ifndef SC_KEPT_MIN
#define SC_KEPT_MIN (2 * SC_STORE_BLOCK)
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SC_PLAIN_AVX2 1
#include <immintrin.h>
static int plain_avx2;                /* the CPU has AVX2 (esc_learn) */
#endif
static unsigned char esc_plain[256];  /* 1: the escaper writes it as itself */
static signed char esc_hexval[256];   /* a hex digit of the escaper's case: its
                                       * value; -1 any other byte */
static int esc_known = -1;            /* -1 not learnt; 0 unlike the above; 1 */
static int esc_usual;                 /* the bytes written as themselves are
                                       * letters, digits and ".-*_" */

/* Does the escaper write every byte that it escapes with the hex digits of
 * 'hex' (httpd writes lower-case ones)? */
static int esc_learn_case(const char *hex)
{
    int c, ok = 1;
    for (c = 1; c < 256; c++) {
        char in[2], out[8];
        in[0] = (char)c;
        in[1] = '\0';
        ap_escape_urlencoded_buffer(out, in);
        esc_plain[c] = 0;
        if (c == ' ') {
            ok &= !strcmp(out, "+");
        }
        else if (out[0] == (char)c && out[1] == '\0' && c != '+' && c != '%') {
            esc_plain[c] = 1;
        }
        else {
            ok &= out[0] == '%' && out[1] == hex[c >> 4] && out[2] == hex[c & 15]
                  && out[3] == '\0';
        }
    }
    esc_plain[0] = 0;
    for (c = 0; c < 256; c++) {
        esc_hexval[c] = -1;
    }
    for (c = 0; c < 16; c++) {
        esc_hexval[(unsigned char)hex[c]] = (signed char)c;
    }
    return ok;
}

static void esc_learn(void)
{
    int c;
    esc_known = esc_learn_case("0123456789abcdef") || esc_learn_case("0123456789ABCDEF");
    esc_usual = esc_known == 1;
    for (c = 0; c < 256; c++) {
        esc_usual &= esc_plain[c] == (apr_isalnum(c) || (c && strchr(".-*_", c)));
    }
#ifdef SC_PLAIN_AVX2
    __builtin_cpu_init();
    plain_avx2 = __builtin_cpu_supports("avx2");
#endif
}

#ifdef SC_PLAIN_AVX2

/* plain_run's 64 bytes a step (AVX2): how far from t the bytes are all the
 * usual ones; a multiple of 64, the rest for plain_run to look at.  A byte is
 * classed by its two halves, each looked up in a table of 16 (vpshufb): the
 * high half's entry is a bit for its row of the ASCII table (0x2_ for ".-*",
 * 0x3_ digits, 0x4_ and 0x6_ letters, 0x5_ letters and '_', 0x7_ letters; 0
 * for any other row, and for bytes over 0x7F), the low half's entry the rows
 * in which that column is a usual byte: one when they share a bit.  Four
 * instructions a vector, against a dozen for ranges compared one by one. */
__attribute__((target("avx2")))
static apr_size_t plain_run64(const unsigned char *t, apr_size_t n)
{
    /* rows: 0x01 ".-*" (columns A, D, E of row 2), 0x02 digits (0-9 of row
     * 3), 0x04 letters (1-F of rows 4 and 6), 0x08 (0-A and F of row 5: 'P'
     * to 'Z', '_'), 0x10 (0-A of row 7: 'p' to 'z') */
    const __m256i col = _mm256_setr_epi8(
        0x1A, 0x1E, 0x1E, 0x1E, 0x1E, 0x1E, 0x1E, 0x1E, 0x1E, 0x1E, 0x1D, 0x04, 0x04, 0x05, 0x05,
        0x0C, 0x1A, 0x1E, 0x1E, 0x1E, 0x1E, 0x1E, 0x1E, 0x1E, 0x1E, 0x1E, 0x1D, 0x04, 0x04, 0x05,
        0x05, 0x0C);
    const __m256i row = _mm256_setr_epi8(
        0, 0, 0x01, 0x02, 0x04, 0x08, 0x04, 0x10, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0x01, 0x02, 0x04, 0x08, 0x04, 0x10, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i low = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
    apr_size_t i = 0;
    for (; n - i >= 64; i += 64) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(t + i));
        __m256i d = _mm256_loadu_si256((const __m256i *)(const void *)(t + i + 32));
        __m256i a = _mm256_and_si256(
            _mm256_shuffle_epi8(col, _mm256_and_si256(c, low)),
            _mm256_shuffle_epi8(row, _mm256_and_si256(_mm256_srli_epi16(c, 4), low)));
        __m256i b = _mm256_and_si256(
            _mm256_shuffle_epi8(col, _mm256_and_si256(d, low)),
            _mm256_shuffle_epi8(row, _mm256_and_si256(_mm256_srli_epi16(d, 4), low)));
        __m256i other = _mm256_or_si256(_mm256_cmpeq_epi8(a, zero), _mm256_cmpeq_epi8(b, zero));
        if (!_mm256_testz_si256(other, other)) {
            return i;
        }
    }
    return i;
}
#endif

/* The length of the run of bytes at t (at most n) that the escaper writes
 * as themselves.  When they are the usual ones (esc_usual), 64 bytes are
 * looked at a step with AVX2 (when the CPU has it), then 16. */
static apr_size_t plain_run(const unsigned char *t, apr_size_t n)
{
    apr_size_t i = 0;
#if defined(__GNUC__)
    if (esc_usual) {
#ifdef SC_PLAIN_AVX2
        if (plain_avx2) {
            i = plain_run64(t, n);
        }
#endif
        typedef unsigned char v16 __attribute__((vector_size(16)));
        typedef signed char m16 __attribute__((vector_size(16)));
        for (; n - i >= 16; i += 16) {
            v16 c, l;
            m16 m;
            apr_uint64_t w[2];
            memcpy(&c, t + i, sizeof(c));
            l = c | 0x20;
            m = ((c >= '0') & (c <= '9')) | ((l >= 'a') & (l <= 'z')) | (c == '.') | (c == '-')
                | (c == '*') | (c == '_');
            memcpy(w, &m, sizeof(w));
            if ((w[0] & w[1]) != ~(apr_uint64_t)0) {
                break;
            }
        }
    }
#endif
    while (i < n && esc_plain[t[i]]) {
        i++;
    }
    return i;
}

/* text (n bytes, of which the first 'plain' are known to be written as
 * themselves) decoded, when it is exactly what escaping the result gives:
 * 2 when every byte is written as itself (the value is the text: *out not
 * set), 1 when decoded into *out (n + 1 bytes from p, NUL-terminated, its
 * length in *len).  0 otherwise (anything else: hex digits of the other
 * case, an escaped byte that needs none, a bad escape, an escaped NUL). */
static int canon_decode(apr_pool_t *p, const char *text, apr_size_t n, apr_size_t plain,
                        char **out, apr_size_t *len)
{
    const unsigned char *t = (const unsigned char *)text;
    apr_size_t i = plain + plain_run(t + plain, n - plain), o;
    char *d;
    if (i == n) {
        *len = n;
        return 2;
    }
    d = apr_palloc(p, n + 1);
    memcpy(d, t, i);
    o = i;
    while (i < n) {
        unsigned char c = t[i];
        apr_size_t run;
        int hi, lo, v;
        if (c == '+') {
            d[o++] = ' ';
            i++;
        }
        else if (c != '%' || n - i < 3 || (hi = esc_hexval[t[i + 1]]) < 0
                 || (lo = esc_hexval[t[i + 2]]) < 0) {
            return 0;
        }
        else {
            v = hi * 16 + lo;
            if (!v || v == ' ' || esc_plain[v]) {
                return 0;
            }
            d[o++] = (char)v;
            i += 3;
        }
        run = plain_run(t + i, n - i);
        memcpy(d + o, t + i, run);
        o += run;
        i += run;
    }
    d[o] = '\0';
    *out = d;
    *len = o;
    return 1;
}

/* session_decode for the sessions this provider loaded: the same format and
 * rules as mod_session's own identity decoder (pairs split on '&', key and
 * value on '=', both URL-decoded; a key without a value removes it; "expiry"
 * is the session's expiry), which runs after this one and finds nothing left
 * to do.  It splits with strchr: mod_session's apr_strtok calls strchr once
 * per character, which made every request with a 32 KB attribute spend a
 * millisecond there.  The values' texts as read are kept for the save
 * (above): they must last until then, in the main request's pool; the text
 * the load set is there already and never written (it is the delta's base),
 * any other (mod_session_crypto's, decrypted in a subrequest) is copied. */
static int sc_session_decode(request_rec *r, session_rec *z)
{
    sc_dir_conf *dc = dir_conf(r);
    request_rec *m = r->main ? r->main : r;
    sc_req *rq;
    const char *text, *pair, *end, *tend;
    int fast;

    if (!dc || !dc->enabled || !z || !z->encoded) {
        return DECLINED;
    }
    rq = req_get(r);
    if (!rq || rq->z != z) {
        return DECLINED;              /* another provider's session */
    }
    if (esc_known < 0) {
        esc_learn();                  /* learnt at start in httpd (the hooks) */
    }
    text = z->encoded == rq->loaded ? z->encoded : apr_pstrdup(m->pool, z->encoded);
    tend = text + (text == rq->loaded && rq->loaded_len >= 0 ? (apr_size_t)rq->loaded_len
                                                            : strlen(text));
    if (!rq->spans) {
        rq->spans = apr_hash_make(m->pool);
    }
    /* one pass over a value: its run of bytes written as themselves (never
     * '&', '=', '%', '+' or NUL when the escaper is the usual one) is looked
     * at once, for its end and the pair's, and not again by canon_decode */
    fast = esc_known == 1 && !esc_plain['&'] && !esc_plain['='];
    for (pair = text; pair < tend; pair = end < tend ? end + 1 : end) {
        const char *k, *ke, *v, *ve;
        char *key, *val;
        apr_size_t len = 0, plain = 0;
        int canon;
        for (k = pair; k < tend && *k == '='; k++) {
        }
        if (k == tend || *k == '&') {
            end = k;
            continue;
        }
        for (ke = k; ke < tend && *ke != '=' && *ke != '&'; ke++) {
        }
        v = ve = end = ke;
        if (ke < tend && *ke == '=') {
            for (v = ke + 1; v < tend && *v == '='; v++) {
            }
            if (fast) {
                plain = plain_run((const unsigned char *)v, (apr_size_t)(tend - v));
            }
            if (!(end = strchr(v + plain, '&'))) {
                end = tend;
            }
            if (!(ve = memchr(v + plain, '=', (apr_size_t)(end - v - plain)))) {
                ve = end;
            }
        }
        else {
            ke = NULL;
        }
        key = apr_pstrmemdup(m->pool, k, (apr_size_t)((ke ? ke : end) - k));
        if (v == ve) {
            apr_table_unset(z->entries, key);  /* the key as written */
            continue;
        }
        val = NULL;
        canon = esc_known == 1 ? canon_decode(m->pool, v, (apr_size_t)(ve - v), plain, &val,
                                              &len) : 0;
        if (!canon) {
            val = apr_pstrmemdup(m->pool, v, (apr_size_t)(ve - v));
        }
        if (ap_unescape_urlencoded(key) != OK || (!canon && ap_unescape_urlencoded(val) != OK)) {
            continue;
        }
        if (canon == 2) {
            /* the value is the text: the table's copy, compared with the
             * text at the save */
            val = apr_pstrmemdup(m->pool, v, len);
        }
        if (!strcmp(key, "expiry")) {
            z->expiry = (apr_time_t)apr_atoi64(val);
        }
        else if (canon) {
            sc_span *sp = apr_palloc(m->pool, sizeof(*sp));
            sp->table_val = canon == 2 ? val : apr_pmemdup(m->pool, val, len + 1);
            sp->text = v;
            sp->text_len = (apr_size_t)(ve - v);
            sp->value = canon == 2 ? v : val;
            sp->len = len;
            sp->loaded_off = text == rq->loaded && rq->loaded_len >= 0
                             ? (apr_ssize_t)(v - text) : -1;
            apr_hash_set(rq->spans, &sp->table_val, sizeof(sp->table_val), sp);
            apr_table_setn(z->entries, key, sp->table_val);
        }
        else {
            apr_table_setn(z->entries, key, val);
        }
    }
    z->encoded = NULL;
    return OK;
}

/* The text of a value as read, when the value is still the one read (the
 * table's copy, sp->len + 1 bytes: compared within them, a NUL written into
 * it differs from the value, which has none). */
static const sc_span *span_of(sc_req *rq, const char *val)
{
    const sc_span *sp;
    if (!rq->spans || !val) {
        return NULL;
    }
    sp = apr_hash_get(rq->spans, &val, sizeof(val));
    return sp && !memcmp(val, sp->value, sp->len) && !val[sp->len] ? sp : NULL;
}

/* This module's encoding of the session (above): the pairs of its table in
 * order, as mod_session's encoder writes them; its "expiry" set first as
 * that encoder sets it. */
static const char *encode_entries(request_rec *r, sc_req *rq, session_rec *z)
{
    const apr_array_header_t *a;
    const apr_table_entry_t *e;
    const sc_span **sp;
    apr_size_t size = 1, reused = 0;
    char *buf, *d;
    int i, nreused = 0;

    if (z->expiry) {
        apr_table_setn(z->entries, "expiry",
                       apr_psprintf(z->pool, "%" APR_INT64_T_FMT, z->expiry));
    }
    a = apr_table_elts(z->entries);
    e = (const apr_table_entry_t *)a->elts;
    sp = apr_palloc(r->pool, sizeof(*sp) * (apr_size_t)(a->nelts + 1));
    for (i = 0; i < a->nelts; i++) {
        sp[i] = span_of(rq, e[i].val);
        size += 3 * strlen(e[i].key ? e[i].key : "") + 2
                + (sp[i] ? sp[i]->text_len : 3 * strlen(e[i].val ? e[i].val : ""));
    }
    d = buf = apr_palloc(r->pool, size);
    rq->copied = NULL;
    rq->kept = NULL;
    rq->kept_enc = buf;
    for (i = 0; i < a->nelts; i++) {
        if (i) {
            *d++ = '&';
        }
        ap_escape_urlencoded_buffer(d, e[i].key ? e[i].key : "");
        d += strlen(d);
        *d++ = '=';
        if (sp[i]) {
            /* the delta need not compare it with the text read again */
            const char **at = apr_palloc(r->pool, sizeof(*at));
            *at = d;
            if (!rq->copied) {
                rq->copied = apr_hash_make(r->pool);
            }
            apr_hash_set(rq->copied, at, sizeof(*at), sp[i]->text);
            if (sp[i]->loaded_off == d - buf && sp[i]->text_len >= SC_KEPT_MIN
                && rq->loaded && sp[i]->text == rq->loaded + sp[i]->loaded_off
                && rq->loaded_len >= (apr_ssize_t)(sp[i]->loaded_off + sp[i]->text_len)) {
                /* where it was in the text read: the store need not compare */
                sc_store_range *k;
                if (!rq->kept) {
                    rq->kept = apr_array_make(r->pool, 4, sizeof(sc_store_range));
                }
                k = apr_array_push(rq->kept);
                k->off = (apr_uint32_t)(d - buf);
                k->len = (apr_uint32_t)sp[i]->text_len;
            }
            memcpy(d, sp[i]->text, sp[i]->text_len);
            d += sp[i]->text_len;
            reused += sp[i]->text_len;
            nreused++;
        }
        else {
            ap_escape_urlencoded_buffer(d, e[i].val ? e[i].val : "");
            d += strlen(d);
        }
    }
    *d = '\0';
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                  "session encoded: %d of %d value(s) as read (%" APR_SIZE_T_FMT
                  " bytes), the others escaped; %" APR_SIZE_T_FMT " bytes",
                  nreused, a->nelts, reused, (apr_size_t)(d - buf));
    return buf;
}

/* session_encode, before mod_session's own encoder: this provider's session
 * encoded here, its table held back while that encoder runs (on an empty
 * one: it costs nothing then). */
static int sc_session_encode_pre(request_rec *r, session_rec *z)
{
    sc_dir_conf *dc = dir_conf(r);
    sc_req *rq;
    if (!dc || !dc->enabled || !z || z->encoded || esc_known != 1) {
        return DECLINED;              /* z->encoded: an encoder ran already */
    }
    rq = req_get(r);
    if (!rq || rq->z != z) {
        return DECLINED;
    }
    rq->enc = encode_entries(r, rq, z);
    rq->held = z->entries;
    z->entries = apr_table_make(z->pool, 1);
    return OK;
}

/* session_encode, right after mod_session's own encoder: the table back,
 * and this module's encoding in place of that encoder's (of nothing). */
static int sc_session_encode_post(request_rec *r, session_rec *z)
{
    sc_req *rq = z ? req_get(r) : NULL;
    if (!rq || rq->z != z || !rq->held) {
        return DECLINED;
    }
    z->entries = rq->held;
    z->encoded = rq->enc;
    rq->held = NULL;
    rq->enc = NULL;
    return OK;
}

/* mod_session's hook registration, found at run time (it is another DSO). */
typedef void (*sc_hook_load_reg)(ap_HOOK_session_load_t *pf, const char *const *pre,
                                 const char *const *succ, int order);
typedef void (*sc_hook_save_reg)(ap_HOOK_session_save_t *pf, const char *const *pre,
                                 const char *const *succ, int order);
typedef void (*sc_hook_decode_reg)(ap_HOOK_session_decode_t *pf, const char *const *pre,
                                   const char *const *succ, int order);
typedef void (*sc_hook_encode_reg)(ap_HOOK_session_encode_t *pf, const char *const *pre,
                                   const char *const *succ, int order);

/* lockingMode, non-sticky: a request that comes with a session id takes the
 * session's lock before the handler runs, so that a lock not free in time is
 * a clean 503 with Retry-After (a handler whose session fails to load answers
 * 500).  The load (above) takes it for a request that reaches it otherwise. */
static int sc_session_fixups(request_rec *r)
{
    sc_dir_conf *dc;
    const char *id, *why;
    if (r->main || !sc_msm_on() || sc_msm_sticky() || !(dc = dir_conf(r)) || !dc->enabled) {
        return DECLINED;
    }
    id = cookie_id(r, dc->cookie_name);
    if (!id) {
        id = sc_url_sid(r->pool, r->uri);
    }
    if (!id || !sc_sid_valid(id) || !sc_msm_lock_wanted(r)) {
        return DECLINED;              /* a new session: nothing to lock */
    }
    if (!sc_msm_lock(r, id, &why)) {
        msm_locked_out(r);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    return DECLINED;
}

int sc_session_register_hooks(void)
{
    sc_hook_load_reg hl;
    sc_hook_save_reg hs;
    sc_hook_decode_reg hd;
    sc_hook_encode_reg he;
    *(void **)&hl = dlsym(RTLD_DEFAULT, "ap_hook_session_load");
    *(void **)&hs = dlsym(RTLD_DEFAULT, "ap_hook_session_save");
    *(void **)&hd = dlsym(RTLD_DEFAULT, "ap_hook_session_decode");
    *(void **)&he = dlsym(RTLD_DEFAULT, "ap_hook_session_encode");
    if (!hl || !hs || !hd) {
        return 0;
    }
    APR_REGISTER_OPTIONAL_FN(sc_session_change_id);
    /* the pairs that stay on this member (above): left out of what is sent
     * and of the versions' hashes, in every process (the engine's too,
     * forked from this one) */
    sc_repl_set_local_filter(attr_local);
    sc_store_set_hash_filter(attr_local);
    /* before mod_session's own fixups, which load the session (SessionEnv) */
    ap_hook_fixups(sc_session_fixups, NULL, NULL, APR_HOOK_FIRST);
    hl(sc_session_load, NULL, NULL, APR_HOOK_MIDDLE);
    hs(sc_session_save, NULL, NULL, APR_HOOK_MIDDLE);
    hd(sc_session_decode, NULL, NULL, APR_HOOK_MIDDLE);
    esc_learn();
    if (he) {
        /* around mod_session's own encoder (APR_HOOK_REALLY_FIRST) */
        he(sc_session_encode_pre, NULL, NULL, APR_HOOK_REALLY_FIRST - 1);
        he(sc_session_encode_post, NULL, NULL, APR_HOOK_REALLY_FIRST + 1);
    }
    return 1;
}
