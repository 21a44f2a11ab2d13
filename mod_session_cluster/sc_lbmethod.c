/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_lbmethod.c -- what a member tells the fronts, and how a front balances
 * with it (issue 21).
 *
 * A member announces in its heartbeats (the tag, sc_proto.h) the URL a front
 * uses for it (SessionClusterURL, or one made from its first Listen and its
 * ServerName) and its load: the busy workers of its MPM (the scoreboard,
 * counted five times a second by a mod_watchdog singleton thread in one of
 * its children, else by the parent about every ten seconds), its MPM's
 * capacity (ap_mpm_query: MaxRequestWorkers) and the sessions it holds.  A
 * front with SessionClusterBalancer adds a BalancerMember for a member it has
 * none for (sc_balancer.c) and can balance new sessions with:
 *
 *   lbmethod=bycluster  the usable member with the lowest share of busy
 *                       workers (what the member counted, plus the front's
 *                       requests in flight to it, which count at once);
 *                       equal shares: in turn (weighted by loadfactor).  The
 *                       sessions a member holds are published and shown, not
 *                       weighed: with DeltaManager every member holds every
 *                       session, and a member that just joined received
 *                       them all.  A member that announces
 *                       no load (an earlier version, or no route=) counts
 *                       only the front's requests in flight to it, against a
 *                       capacity of 100.
 *   lbmethod=bysource   the client's address (r->useragent_ip, which
 *                       mod_remoteip sets from a trusted proxy's header)
 *                       hashed with each usable worker's route (rendezvous
 *                       hashing): a client keeps its member while that member
 *                       is usable, and when one leaves only its clients move,
 *                       each to the next member in its own order.
 *
 * Both are mod_proxy_balancer lbmethod providers, registered as the
 * lbmethod_* modules register theirs, and pick through mod_proxy's
 * ap_proxy_balancer_get_best_worker (lbset, hot standby, draining and
 * retry as for the others).  Sticky requests never reach them: the balancer
 * follows the session's route first.
 */
#include "sc_supervisor.h"
#include "sc_balancer.h"
#include "sc_lbmethod.h"

#include "mod_proxy.h"
#include "mod_watchdog.h"
#include "ap_listen.h"
#include "ap_mpm.h"
#include "mpm_common.h"
#include "ap_provider.h"
#include "scoreboard.h"
#include "apr_strings.h"

APLOG_USE_MODULE(session_cluster);

static APR_OPTIONAL_FN_TYPE(proxy_balancer_get_best_worker) *get_best;

static proxy_worker *best_worker(proxy_balancer *b, request_rec *r,
                                 proxy_is_best_callback_fn_t *is_best, void *baton)
{
    if (!get_best) {
        get_best = APR_RETRIEVE_OPTIONAL_FN(proxy_balancer_get_best_worker);
        if (!get_best) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCLOGNO(1810)
                          "%s: lbmethod=%s needs mod_proxy 2.4.35 or later",
                          b->s->name, b->lbmethod->name);
            return NULL;
        }
    }
    return get_best(b, r, is_best, baton);
}

/* ------------------------------------------------------------------------- */
/* bycluster                                                                   */
/* ------------------------------------------------------------------------- */

typedef struct {
    const sc_shm_t *shm;
    int total;                        /* the loadfactors seen, for the turn */
} cluster_pick;

/* A worker's share of busy workers, in 1/10000. */
static apr_uint64_t cluster_load(const cluster_pick *x, proxy_worker *w)
{
    sc_shm_member m;
    apr_uint64_t busy = w->s->busy, cap = 100;
    if (x->shm && w->s->route[0] && sc_balancer_member_of(x->shm, w->s->route, &m)
        && m.has_load) {
        busy += m.busy;
        cap = m.capacity ? m.capacity : 100;
    }
    return busy * 10000 / cap;
}

static int is_best_bycluster(proxy_worker *cur, proxy_worker *best, void *baton)
{
    cluster_pick *x = baton;
    apr_uint64_t lc, lb;

    cur->s->lbstatus += cur->s->lbfactor;
    x->total += cur->s->lbfactor;
    if (!best) {
        return 1;
    }
    lc = cluster_load(x, cur);
    lb = cluster_load(x, best);
    if (lc != lb) {
        return lc < lb;
    }
    return cur->s->lbstatus > best->s->lbstatus;
}

static proxy_worker *find_bycluster(proxy_balancer *b, request_rec *r)
{
    cluster_pick x;
    proxy_worker *w;
    x.shm = sc_retained_get(r->server)->shm;
    x.total = 0;
    w = best_worker(b, r, is_best_bycluster, &x);
    if (w) {
        w->s->lbstatus -= x.total;
    }
    return w;
}

/* mod_proxy_balancer's reset (a balancer-manager change of method): the
 * turn starts again */
static apr_status_t reset_lbstatus(proxy_balancer *b, server_rec *s)
{
    proxy_worker **w = (proxy_worker **)b->workers->elts;
    int i;
    (void)s;
    for (i = 0; i < b->workers->nelts; i++) {
        w[i]->s->lbstatus = 0;
    }
    return APR_SUCCESS;
}

static apr_status_t no_age(proxy_balancer *b, server_rec *s)
{
    (void)b;
    (void)s;
    return APR_SUCCESS;
}

static const proxy_balancer_method bycluster = {
    "bycluster", find_bycluster, NULL, reset_lbstatus, no_age, NULL
};

/* ------------------------------------------------------------------------- */
/* bysource                                                                    */
/* ------------------------------------------------------------------------- */

/* 64-bit FNV-1a, then a final mix so that close inputs land far apart. */
static apr_uint64_t hash_more(apr_uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static apr_uint64_t mix(apr_uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb93fe53b9a87ULL;
    h ^= h >> 33;
    return h;
}

/* The client's weight for a worker: its route (its URL when it has none)
 * hashed with the address; the loadfactor scales it. */
static apr_uint64_t source_weight(const char *ip, proxy_worker *w)
{
    apr_uint64_t h = hash_more(0xcbf29ce484222325ULL, ip);
    h = hash_more(h ^ 0x2f, w->s->route[0] ? w->s->route : w->s->name);
    h = mix(h) >> 8;                  /* room for the factor */
    return h / 100 * (apr_uint64_t)(w->s->lbfactor > 0 ? w->s->lbfactor : 1);
}

static int is_best_bysource(proxy_worker *cur, proxy_worker *best, void *baton)
{
    const char *ip = baton;
    return !best || source_weight(ip, cur) > source_weight(ip, best);
}

static proxy_worker *find_bysource(proxy_balancer *b, request_rec *r)
{
    const char *ip = r->useragent_ip ? r->useragent_ip : r->connection->client_ip;
    return best_worker(b, r, is_best_bysource, (void *)(ip ? ip : ""));
}

static apr_status_t no_reset(proxy_balancer *b, server_rec *s)
{
    (void)b;
    (void)s;
    return APR_SUCCESS;
}

static const proxy_balancer_method bysource = {
    "bysource", find_bysource, NULL, no_reset, no_age, NULL
};

/* ------------------------------------------------------------------------- */
/* A member's URL                                                              */
/* ------------------------------------------------------------------------- */

const char *sc_lb_check_url(apr_pool_t *p, const char *url)
{
    const char *host, *c;
    if (strncasecmp(url, "http://", 7) == 0) {
        host = url + 7;
    }
    else if (strncasecmp(url, "https://", 8) == 0) {
        host = url + 8;
    }
    else {
        return apr_psprintf(p, "'%s': expected http://host[:port] or https://host[:port]",
                            url);
    }
    if (!*host || *host == '/' || *host == ':') {
        return apr_psprintf(p, "'%s': no host", url);
    }
    if (strlen(url) > SC_URL_MAX) {
        return apr_psprintf(p, "'%s' is longer than %d characters (heartbeats carry it)",
                            url, SC_URL_MAX);
    }
    for (c = url; *c; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
            return apr_psprintf(p, "'%s' holds a space or a character that is not "
                                "printable", url);
        }
    }
    return NULL;
}

/* The first Listen's scheme, address and port; a wildcard address gives way
 * to ServerName's host. */
static const char *default_url(apr_pool_t *p, server_rec *s, const char *receiver)
{
    ap_listen_rec *lr = ap_listeners;
    const char *scheme = "http", *host = NULL;
    char *ip = NULL;
    if (!lr || !lr->bind_addr) {
        return NULL;
    }
    if (lr->protocol && !strcasecmp(lr->protocol, "https")) {
        scheme = "https";
    }
    if (apr_sockaddr_ip_get(&ip, lr->bind_addr) == APR_SUCCESS && ip
        && strcmp(ip, "0.0.0.0") && strcmp(ip, "::")) {
        host = ip;
    }
    else if (s->server_hostname && *s->server_hostname) {
        host = s->server_hostname;
    }
    else {
        host = receiver;
    }
    if (!host || !*host) {
        return NULL;
    }
    if (strchr(host, ':')) {
        host = apr_pstrcat(p, "[", host, "]", NULL);
    }
    return apr_psprintf(p, "%s://%s:%u", scheme, host, (unsigned)lr->bind_addr->port);
}

/* ------------------------------------------------------------------------- */
/* A member's load                                                             */
/* ------------------------------------------------------------------------- */

/* The MPM's busy workers (as mod_status counts them: neither ready, starting,
 * dead nor told to go) and its capacity, into the segment. */
static void measure_load(sc_shm_t *shm)
{
    int server_limit = 0, thread_limit = 0, daemons = 0, threads = 0, i, j;
    apr_uint32_t busy = 0, cap;

    if (!shm || !ap_exists_scoreboard_image()) {
        return;
    }
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &server_limit);
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_THREADS, &thread_limit);
    ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons);
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    if (thread_limit < 1) {
        thread_limit = 1;
    }
    for (i = 0; i < server_limit; i++) {
        process_score *ps = ap_get_scoreboard_process(i);
        if (!ps || !ps->pid) {
            continue;
        }
        for (j = 0; j < thread_limit; j++) {
            worker_score *ws = ap_get_scoreboard_worker_from_indexes(i, j);
            int st = ws ? ws->status : SERVER_DEAD;
            if (st != SERVER_DEAD && st != SERVER_READY && st != SERVER_STARTING
                && st != SERVER_IDLE_KILL) {
                busy++;
            }
        }
    }
    cap = (apr_uint32_t)(daemons > 0 ? daemons : 1) * (apr_uint32_t)(threads > 0 ? threads : 1);
    __atomic_store_n(&shm->self_busy, busy, __ATOMIC_RELAXED);
    __atomic_store_n(&shm->self_capacity, cap, __ATOMIC_RELAXED);
}

#define SC_LOAD_WATCHDOG "_session_cluster_load_"

static apr_status_t load_tick(int state, void *data, apr_pool_t *pool)
{
    (void)pool;
    if (state == AP_WATCHDOG_STATE_RUNNING) {
        measure_load(sc_retained_get((server_rec *)data)->shm);
    }
    return APR_SUCCESS;
}

/* The parent, about every ten seconds: the figure without mod_watchdog. */
static int load_monitor(apr_pool_t *p, server_rec *s)
{
    sc_server_conf *sc = sc_server_conf_get(s);
    (void)p;
    if (sc->route && sc->cluster) {
        measure_load(sc_retained_get(s)->shm);
    }
    return DECLINED;
}

void sc_lb_member_post_config(apr_pool_t *pconf, server_rec *s, const char *url)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback;
    sc_retained *ret = sc_retained_get(s);
    ap_watchdog_t *wd = NULL;
    const char *from = "SessionClusterURL";
    apr_status_t rv;

    if (!ret->shm) {
        return;
    }
    if (!url) {
        url = default_url(pconf, s, ret->shm->self_addr);
        from = "made from its first Listen and its ServerName; SessionClusterURL "
               "sets another";
        if (url && sc_lb_check_url(pconf, url)) {
            url = NULL;
        }
    }
    apr_cpystrn(ret->shm->self_url, url ? url : "", sizeof(ret->shm->self_url));
    if (url) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SCLOGNO(1800)
                     "this member announces %s to the fronts (%s)", url, from);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCLOGNO(1801)
                     "this member announces no URL to the fronts (no Listen and "
                     "ServerName to make one of, within %d characters): a front adds "
                     "no BalancerMember for it; set SessionClusterURL", SC_URL_MAX);
    }
    measure_load(ret->shm);
    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!get_instance || !register_callback) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, SCLOGNO(1802)
                     "without mod_watchdog this member's load (busy workers) is "
                     "measured about every ten seconds");
        return;
    }
    rv = get_instance(&wd, SC_LOAD_WATCHDOG, 0, 1, pconf);
    if (rv == APR_SUCCESS) {
        rv = register_callback(wd, apr_time_from_msec(200), s, load_tick);
    }
    if (rv != APR_SUCCESS && rv != APR_EEXIST) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, SCLOGNO(1803)
                     "no watchdog thread for this member's load: measured about "
                     "every ten seconds");
    }
}

void sc_lb_register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, PROXY_LBMETHOD, "bycluster", "0", &bycluster);
    ap_register_provider(p, PROXY_LBMETHOD, "bysource", "0", &bysource);
    ap_hook_monitor(load_monitor, NULL, NULL, APR_HOOK_MIDDLE);
}
