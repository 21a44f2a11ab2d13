/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_balancer.c -- SessionClusterBalancer: a front httpd with
 * mod_proxy_balancer follows the cluster's membership.
 *
 * The front runs an engine as an observer (it holds no sessions); what that
 * engine knows of the members is in shared memory (sc_shm.h).  Here, the
 * BalancerMembers of the named balancers are matched to members by route and
 * their status bits in mod_proxy_balancer's own shared memory follow the
 * members' states:
 *
 *   member alive and ready        usable: an error older than the moment it
 *                                 became ready is cleared (no wait for retry=)
 *   member alive and draining     drain mode (N): only its sticky sessions;
 *                                 the N is taken back when it serves again
 *                                 only if the cluster set it (an admin's N,
 *                                 from balancer-manager or this front's
 *                                 page, stays until an admin clears it)
 *   member starting, silent,      in error (E), error time renewed, so
 *   dead, gone                    mod_proxy's retry= never sends a request to it
 *   no member with that route     the same: in error, until a member announcing
 *   (never heard)                 that route is heard; reported once
 *   member restarting             left alone: httpd itself still serves
 *   member leaving (said goodbye) in error, as a gone member: it takes no
 *                                 request at all, POSTs included, while
 *                                 httpd -k stop / graceful-stop finishes
 *                                 (sc_supervisor.c announces the stop
 *                                 before httpd is signalled)
 *   BalancerMember without route= left alone: not the cluster's
 *
 * The admin's bits and the cluster's.  Disabled (D), Stopped (S), Hot
 * standby (H) are the admin's alone (balancer-manager, or this front's page:
 * drain, disable, enable a route's BalancerMembers): the cluster never
 * writes them.  The cluster writes the error bit (E) and adds a drain (N)
 * while a member drains; it takes back only the N it set itself (the
 * front_routes record in the segment), so an admin's choice sticks until an
 * admin changes it, and the cluster's states add to it.
 *
 * Growth (issue 21).  A member announces the URL a front uses for it
 * (SessionClusterURL, sc_lbmethod.c).  When a member is alive and ready and
 * no BalancerMember of a named balancer has its route, a child of the front
 * adds one (http://... route=...) in one of mod_proxy_balancer's spare
 * worker slots (the balancer's growth=, 0 unless set), as balancer-manager's "add worker" does:
 * every child takes it from the shared slots when it next syncs.  Workers
 * cannot be removed at run time: a member gone keeps its worker, in error as
 * any other, and the same route coming back finds it again (the same slot,
 * with the URL it was added with).  A BalancerMember line of the
 * configuration has the route first, so static lines keep working.  With no
 * spare slot left, the member stays without a worker: SC1806 in the log and
 * a MissingGrowthRoom line on the page.
 *
 * Domains (issue 21; mod_cluster's load-balancing groups).  A member's
 * heartbeats carry its domain (the Membership's or DomainFilterInterceptor's);
 * members without one form one group.  When the member of a worker is not
 * usable (gone, dead, in error, starting) and another group has a usable
 * member, its sessions fail over inside their own group: the worker's
 * mod_proxy "redirect" route, which mod_proxy_balancer follows for a sticky
 * route whose worker is unusable whatever the lbmethod, is set to the usable
 * member of the same group (alive, ready, not draining) with the lowest share
 * of busy workers it announced, ties broken by a hash of the two routes (so
 * every front, seeing the same members, picks the same); it is cleared when
 * the worker is usable again, or when its group has no usable member left:
 * then the lbmethod picks among the others, and a session that so lands in
 * another group is counted (FrontCrossDomain) and logged (SC1813, rate
 * limited) when its request is done (proxy's post_request hook).  Not when
 * every usable member is of the same group (the lbmethod picks, as without
 * domains), not with nofailover=On, and not on a worker whose configuration
 * line sets redirect= (kept as written).
 *
 * The status bits are brought up to date before every request that goes
 * through mod_proxy (proxy's pre_request hook, ahead of the balancer's own),
 * when the cluster-manager page is shown, five times a second by a
 * mod_watchdog singleton thread in one child (so balancer-manager shows them
 * even when no request comes), and by httpd's parent in its monitor hook
 * (about every ten seconds; without mod_watchdog, the only refresh without
 * requests).
 *
 * Replay.  mod_proxy tries another BalancerMember only when the connection to
 * the first could not be made (503).  A request whose member dies after it
 * was sent (a reset, a kept connection closed, an empty answer) fails with
 * 502 or 500, or, on a client's kept-alive connection, mod_proxy_http closes
 * the client's connection without an answer.  This module's scheme handler
 * comes first in proxy's scheme_handler hook for the named balancers: it runs
 * the real one (mod_proxy_http) under an output filter that holds back an
 * error (and end of connection) while no byte of the response went out, and
 * when the request failed so, it sends it once more to another ready member
 * (every member holds the session, or fetches it) with the same URL path;
 * that member re-binds the session's route.  A replay that fails so too goes
 * on to a member the request has not been to, each once at most.  Only requests that can be sent
 * twice are: GET, HEAD and OPTIONS without a body; any other goes to its
 * member on a new connection from the start (run_scheme_new_connection),
 * where a member's close of an idle kept connection cannot meet it.  A
 * timeout is not replayed
 * (the member may still be working on it); neither is a member's own answer,
 * whatever its status, but one: its 503 for a synchronous replication whose
 * message never left it (Session-Cluster-Change: kept,
 * Session-Cluster-Replicated: none), HAProxy's "retry-on 503", held back
 * while short and sent once to another member, as above.
 * That 503 does not put the member's worker in error even with
 * failonstatus=503 (member_503_taken): the member is up and answering.
 *
 * In flight.  A request whose member stops answering without a word (frozen,
 * its machine gone) would wait in mod_proxy_http's read up to the worker's
 * timeout.  Each child of a front lists the replayable requests it has in
 * flight with their member's connection (proxy's create_req hook, which
 * mod_proxy_http runs as it starts to wait for the answer), and a thread of
 * the child looks at them ten times a second: once the cluster holds their
 * member suspect, dead or gone, the connection is shut down, the read ends,
 * and the request is replayed as above.  The wait is so bounded by the
 * failure detection (dropTime, then the TCP check), not by the timeout.
 */
#include "sc_supervisor.h"
#include "sc_balancer.h"

#include "mod_proxy.h"
#include "mpm_common.h"
#include "mod_watchdog.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_optional_hooks.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

APLOG_USE_MODULE(session_cluster);

typedef void (*sc_proxy_hook_reg)(proxy_HOOK_pre_request_t *pf, const char *const *pre,
                                  const char *const *succ, int order);
typedef void (*sc_post_hook_reg)(proxy_HOOK_post_request_t *pf, const char *const *pre,
                                 const char *const *succ, int order);
typedef void (*sc_scheme_hook_reg)(proxy_HOOK_scheme_handler_t *pf, const char *const *pre,
                                   const char *const *succ, int order);
typedef int (*sc_scheme_run)(request_rec *r, proxy_worker *worker, proxy_server_conf *conf,
                             char *url, const char *proxyhost, apr_port_t proxyport);

typedef char *(*sc_define_worker_fn)(apr_pool_t *p, proxy_worker **worker,
                                     proxy_balancer *balancer, proxy_server_conf *conf,
                                     const char *url, int do_malloc);
typedef apr_status_t (*sc_share_worker_fn)(proxy_worker *worker, proxy_worker_shared *shm,
                                           int i);
typedef apr_status_t (*sc_init_worker_fn)(proxy_worker *worker, server_rec *s,
                                          apr_pool_t *p);
typedef apr_status_t (*sc_sync_balancer_fn)(proxy_balancer *b, server_rec *s,
                                            proxy_server_conf *conf);
typedef proxy_worker *(*sc_get_worker_fn)(apr_pool_t *p, proxy_balancer *balancer,
                                          proxy_server_conf *conf, const char *url);

/* mod_proxy's functions for growth, found when httpd loads this module. */
static sc_define_worker_fn define_worker;
static sc_share_worker_fn share_worker;
static sc_init_worker_fn init_worker;
static sc_sync_balancer_fn sync_balancer;
static sc_get_worker_fn get_worker;

static module *proxy_module_of(void)
{
    return ap_find_linked_module("mod_proxy.c");
}

static proxy_server_conf *proxy_conf_of(server_rec *s)
{
    module *m = proxy_module_of();
    return m ? ap_get_module_config(s->module_config, m) : NULL;
}

static proxy_balancer *find_balancer(proxy_server_conf *conf, const char *name)
{
    proxy_balancer *b;
    int i;
    if (!conf || !conf->balancers) {
        return NULL;
    }
    b = (proxy_balancer *)conf->balancers->elts;
    for (i = 0; i < conf->balancers->nelts; i++, b++) {
        if (b->s && !strcasecmp(b->s->name, name)) {
            return b;
        }
    }
    return NULL;
}

/* How much a record says about the member with its route: a live one beats a
 * suspect, a restarting one and the record of an earlier, dead incarnation
 * under another id; a member refused for claiming a held route says nothing. */
static int record_rank(const sc_shm_member *m)
{
    switch (m->view) {
    case SC_VIEW_ALIVE:
        return 4;
    case SC_VIEW_SUSPECT:
        return 3;
    case SC_VIEW_RESTARTING:
        return 2;
    case SC_VIEW_REFUSED:
    case SC_VIEW_FREE:
        return 0;
    default:
        return 1;
    }
}

/* The member (not an observer) announcing 'route', copied; 0 if no member
 * with that route was ever heard. */
static int member_of(const sc_shm_t *shm, const char *route, sc_shm_member *out)
{
    sc_shm_member m;
    int i, best = 0;
    for (i = 0; i < SC_MAX_MEMBERS; i++) {
        if (sc_shm_read_member(shm, i, &m) && !m.observer && m.route[0]
            && !strcmp(m.route, route) && record_rank(&m) > best) {
            best = record_rank(&m);
            *out = m;
        }
    }
    return best > 0;
}

int sc_balancer_member_of(const sc_shm_t *shm, const char *route, sc_shm_member *out)
{
    return member_of(shm, route, out);
}

/* This child's list of the balancer's workers takes in those another child
 * added (mod_proxy_balancer does it before it picks, under the same lock). */
static void refresh_workers(server_rec *s, proxy_server_conf *conf, proxy_balancer *b)
{
    if (sync_balancer && b->s && b->s->wupdated > b->wupdated) {
        PROXY_THREAD_LOCK(b);
        sync_balancer(b, s, conf);
        PROXY_THREAD_UNLOCK(b);
    }
}

static proxy_worker *worker_with_route(proxy_balancer *b, const char *route)
{
    proxy_worker **w = (proxy_worker **)b->workers->elts;
    int j;
    for (j = 0; j < b->workers->nelts; j++) {
        if (w[j]->s && !strcmp(w[j]->s->route, route)) {
            return w[j];
        }
    }
    return NULL;
}

/* Whether the member can have a worker made for it: alive, ready, a member
 * (not a front), with a URL. */
static int wants_worker(const sc_shm_member *m)
{
    return !m->observer && m->route[0] && m->url[0] && m->view == SC_VIEW_ALIVE
           && m->hb_state == SC_MS_READY;
}

static unsigned int free_slots(proxy_balancer *b)
{
    return b->storage && b->wslot && b->storage->num_free_slots
           ? b->storage->num_free_slots(b->wslot) : 0;
}

/* Adds a worker for the member, under both of the balancer's locks; the
 * caller synced the list.  1 if added. */
static int add_worker(server_rec *s, proxy_server_conf *conf, proxy_balancer *b,
                      const sc_shm_member *m, sc_shm_t *shm)
{
    static apr_time_t full_told, clash_told;
    apr_pool_t *scratch;              /* ap_proxy_get_worker's copy of the URL */
    proxy_worker *w = NULL, *other;
    proxy_worker_shared *ws;
    unsigned int index;
    apr_time_t now = apr_time_now();
    apr_status_t rv;
    char *err;

    if (!free_slots(b)) {
        if (now - full_told > apr_time_from_sec(60)) {
            full_told = now;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCLOGNO(1806)
                         "SessionClusterBalancer %s: no room to add a BalancerMember for "
                         "member %s (%s): every worker slot is taken; raise growth= "
                         "(ProxySet growth=N in <Proxy %s>: the room for workers added at "
                         "run time), or add a BalancerMember line for it", b->s->name,
                         m->route, m->url, b->s->name);
        }
        return 0;
    }
    if (apr_pool_create_unmanaged_ex(&scratch, NULL, NULL) != APR_SUCCESS) {
        return 0;
    }
    other = get_worker(scratch, b, conf, m->url);
    apr_pool_destroy(scratch);
    if (other) {
        if (now - clash_told > apr_time_from_sec(60)) {
            clash_told = now;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCLOGNO(1807)
                         "SessionClusterBalancer %s: member %s announces %s, the URL of "
                         "the BalancerMember with route=%s: no worker added for it",
                         b->s->name, m->route, m->url,
                         other->s->route[0] ? other->s->route : "(none)");
        }
        return 0;
    }
    err = define_worker(conf->pool, &w, b, conf, m->url, 0);
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, SCLOGNO(1808)
                     "SessionClusterBalancer %s: cannot add a BalancerMember %s for member "
                     "%s: %s", b->s->name, m->url, m->route, err);
        return 0;
    }
    PROXY_COPY_CONF_PARAMS(w, conf);
    if ((rv = b->storage->grab(b->wslot, &index)) != APR_SUCCESS
        || (rv = b->storage->dptr(b->wslot, index, (void *)&ws)) != APR_SUCCESS
        || (rv = share_worker(w, ws, (int)index)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, SCLOGNO(1809)
                     "SessionClusterBalancer %s: no worker slot for member %s (%s)",
                     b->s->name, m->route, m->url);
        return 0;
    }
    apr_cpystrn(w->s->route, m->route, sizeof(w->s->route));
    if ((rv = init_worker(w, s, conf->pool)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, SCLOGNO(1811)
                     "SessionClusterBalancer %s: the worker for member %s (%s) could not "
                     "be set up", b->s->name, m->route, m->url);
    }
    b->wupdated = b->s->wupdated = w->s->updated = apr_time_now();
    __atomic_add_fetch(&shm->f.workers_added, 1, __ATOMIC_RELAXED);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SCLOGNO(1805)
                 "SessionClusterBalancer %s: BalancerMember %s route=%s added for the "
                 "member that announced it (%u worker slots left)", b->s->name, m->url,
                 m->route, free_slots(b));
    return 1;
}

/* Set while httpd's parent brings the bits up to date (its monitor hook):
 * the parent adds no worker, its children do. */
static int parent_pass;

/* In a child: a worker for every ready member of the cluster that has none
 * in the balancer (the caller holds no lock; both of the balancer's are taken
 * here, which also guard the static data of add_worker). */
static void grow(server_rec *s, proxy_server_conf *conf, proxy_balancer *b, sc_shm_t *shm)
{
    sc_shm_member m;
    int i, locked = 0;

    if (!define_worker || !share_worker || !init_worker || !sync_balancer || !get_worker
        || parent_pass || (pid_t)shm->parent_pid == sc_self_pid()) {
        return;
    }
    for (i = 0; i < SC_MAX_MEMBERS; i++) {
        if (!sc_shm_read_member(shm, i, &m) || !wants_worker(&m)) {
            continue;
        }
        if (worker_with_route(b, m.route)) {
            continue;                 /* a line of the configuration, or added before */
        }
        if (!locked) {
            PROXY_THREAD_LOCK(b);
            PROXY_GLOBAL_LOCK(b);
            locked = 1;
            sync_balancer(b, s, conf);
            if (worker_with_route(b, m.route)) {
                continue;
            }
        }
        add_worker(s, conf, b, &m, shm);
    }
    if (locked) {
        PROXY_GLOBAL_UNLOCK(b);
        PROXY_THREAD_UNLOCK(b);
    }
}

void sc_balancer_growth_lines(server_rec *s, apr_pool_t *p, apr_array_header_t *lines)
{
    sc_server_conf *sc = sc_server_conf_get(s);
    sc_retained *ret = sc_retained_get(s);
    proxy_server_conf *conf = proxy_conf_of(s);
    int i, j;

    if (!ret->shm) {
        return;
    }
    for (i = 0; i < sc->balancers->nelts; i++) {
        sc_balancer_ref *ref = &APR_ARRAY_IDX(sc->balancers, i, sc_balancer_ref);
        proxy_balancer *b = find_balancer(conf, ref->name);
        if (!b || !b->workers || free_slots(b)) {
            continue;
        }
        refresh_workers(s, conf, b);
        for (j = 0; j < SC_MAX_MEMBERS; j++) {
            sc_shm_member m;
            if (sc_shm_read_member(ret->shm, j, &m) && wants_worker(&m)
                && !worker_with_route(b, m.route)) {
                APR_ARRAY_PUSH(lines, const char *) =
                    apr_psprintf(p, "MissingGrowthRoom: %s %s", ref->name, m.route);
            }
        }
    }
}

unsigned int sc_balancer_free_slots(server_rec *s)
{
    sc_server_conf *sc = sc_server_conf_get(s);
    proxy_server_conf *conf = proxy_conf_of(s);
    unsigned int n = 0;
    int i;
    for (i = 0; i < sc->balancers->nelts; i++) {
        proxy_balancer *b = find_balancer(conf, APR_ARRAY_IDX(sc->balancers, i,
                                                              sc_balancer_ref).name);
        if (b) {
            n += free_slots(b);
        }
    }
    return n;
}

const char *sc_balancer_member_state(const sc_shm_member *m)
{
    if (!m) {
        return "none";
    }
    if (m->view == SC_VIEW_ALIVE) {
        return sc_member_state_name((int)m->hb_state);
    }
    return sc_view_name((int)m->view);
}

/* Out of rotation, and kept out: the error time renewed on every pass, so
 * mod_proxy's retry= never comes round.  'now' is taken before the members
 * were read: a member that becomes ready after that has a later serving_since,
 * and the next pass clears the error. */
static void keep_out(proxy_worker *w, apr_time_t now)
{
    w->s->error_time = now;
    if (!(w->s->status & PROXY_WORKER_IN_ERROR)) {
        w->s->status |= PROXY_WORKER_IN_ERROR;
    }
}

/* How long after it was sent a request to the worker can still fail: its
 * connection timeout or its timeout (the server's Timeout when not set),
 * whichever is longer. */
static apr_interval_time_t worker_grace(const proxy_worker *w, const server_rec *s)
{
    apr_interval_time_t t = w->s->timeout_set ? w->s->timeout : s->timeout;
    if (w->s->conn_timeout_set && w->s->conn_timeout > t) {
        t = w->s->conn_timeout;
    }
    return t;
}

/* The front's record for 'route' (claimed when 'claim' and there is none):
 * NULL when there is none, or no free slot. */
static sc_shm_front_route *front_route(sc_shm_t *shm, const char *route, int claim)
{
    int i, spins;
    if (strlen(route) >= sizeof(shm->front_routes[0].route)) {
        return NULL;
    }
    for (i = 0; i < SC_MAX_MEMBERS; i++) {
        sc_shm_front_route *fr = &shm->front_routes[i];
        apr_uint32_t u = __atomic_load_n(&fr->used, __ATOMIC_ACQUIRE);
        /* a slot being claimed by another child is published within a moment */
        for (spins = 0; u == 1 && spins < 1000; spins++) {
            sched_yield();
            u = __atomic_load_n(&fr->used, __ATOMIC_ACQUIRE);
        }
        if (u == 2 && !strcmp(fr->route, route)) {
            return fr;
        }
        if (u == 0) {
            apr_uint32_t zero = 0;
            if (!claim) {
                return NULL;          /* slots are taken in order: no more */
            }
            if (__atomic_compare_exchange_n(&fr->used, &zero, 1, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                apr_cpystrn(fr->route, route, sizeof(fr->route));
                __atomic_store_n(&fr->drained, 0, __ATOMIC_RELAXED);
                __atomic_store_n(&fr->used, 2, __ATOMIC_RELEASE);
                return fr;
            }
            i--;                      /* lost the race: look at it again */
        }
    }
    return NULL;
}

/* The drain bit for the member's own draining: set it (and record that the
 * cluster did) while it drains; take it back when it no longer does, only
 * if the cluster set it. */
static void sync_drain(sc_shm_t *shm, proxy_worker_shared *ws, int draining)
{
    sc_shm_front_route *fr = front_route(shm, ws->route, draining);
    if (draining) {
        if (!(ws->status & PROXY_WORKER_DRAIN) && fr) {
            __atomic_store_n(&fr->drained, 1, __ATOMIC_RELEASE);
            ws->status |= PROXY_WORKER_DRAIN;
        }
    }
    else if (fr && __atomic_load_n(&fr->drained, __ATOMIC_ACQUIRE)
             && __atomic_exchange_n(&fr->drained, 0, __ATOMIC_ACQ_REL) == 1) {
        ws->status &= ~PROXY_WORKER_DRAIN;
    }
}

/* One worker's bits from its member's state. */
static void sync_worker(sc_shm_t *shm, proxy_worker *w, const sc_shm_member *m,
                        apr_time_t now, const server_rec *s)
{
    proxy_worker_shared *ws = w->s;
    unsigned int st = ws->status;
    int serving = m->view == SC_VIEW_ALIVE
                  && (m->hb_state == SC_MS_READY || m->hb_state == SC_MS_DRAINING);

    if (m->view == SC_VIEW_RESTARTING) {
        return;
    }
    if (serving) {
        /* an error from before it serves again; and, when it serves again
         * after an absence (it had served, then was silent, suspected, dead
         * or gone: a partition healed), one from a request sent to it while
         * it could not answer, which fails up to the worker's timeout after
         * its return.  A member serving since it was first heard has no such
         * grace: an error then is news (it may have just crashed) */
        if ((st & PROXY_WORKER_IN_ERROR)
            && (ws->error_time <= m->serving_since
                || (m->returned
                    && ws->error_time <= m->serving_since + worker_grace(w, s)))) {
            ws->status &= ~PROXY_WORKER_IN_ERROR;
        }
        sync_drain(shm, ws, m->hb_state == SC_MS_DRAINING);
        return;
    }
    /* not there, or not ready yet: out of rotation, and kept out */
    keep_out(w, now);
}

/* ------------------------------------------------------------------------- */
/* Domains (see the top of this file)                                         */
/* ------------------------------------------------------------------------- */

/* The workers whose configuration line sets redirect= ("balancer|worker"),
 * read at check_config, before mod_proxy_balancer shares the workers (so
 * never a value this module wrote); NULL: none.  Read-only after. */
static apr_hash_t *configured_redirects;

static const char *redirect_key(apr_pool_t *p, proxy_balancer *b, proxy_worker *w)
{
    return apr_pstrcat(p, b->s->name, "|", w->s->name, NULL);
}

static int sc_balancer_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                    server_rec *s)
{
    server_rec *v;
    int i, j;
    (void)plog;
    (void)ptemp;
    configured_redirects = NULL;
    for (v = s; v; v = v->next) {
        sc_server_conf *sc = sc_server_conf_get(v);
        proxy_server_conf *conf = proxy_conf_of(v);
        for (i = 0; sc->balancers && i < sc->balancers->nelts; i++) {
            proxy_balancer *b = find_balancer(conf, APR_ARRAY_IDX(sc->balancers, i,
                                                                  sc_balancer_ref).name);
            proxy_worker **w;
            if (!b || !b->workers) {
                continue;
            }
            w = (proxy_worker **)b->workers->elts;
            for (j = 0; j < b->workers->nelts; j++) {
                if (w[j]->s && w[j]->s->redirect[0]) {
                    if (!configured_redirects) {
                        configured_redirects = apr_hash_make(pconf);
                    }
                    apr_hash_set(configured_redirects, redirect_key(pconf, b, w[j]),
                                 APR_HASH_KEY_STRING, "");
                }
            }
        }
    }
    return OK;
}

static int redirect_configured(proxy_balancer *b, proxy_worker *w)
{
    char key[PROXY_BALANCER_MAX_NAME_SIZE + PROXY_WORKER_MAX_NAME_SIZE + 2];
    if (!configured_redirects) {
        return 0;
    }
    apr_snprintf(key, sizeof(key), "%s|%s", b->s->name, w->s->name);
    return apr_hash_get(configured_redirects, key, APR_HASH_KEY_STRING) != NULL;
}

/* A failed-over session's order of the candidates: a hash of both routes. */
static apr_uint64_t pair_hash(const char *from, const char *to)
{
    apr_uint64_t h = 0xcbf29ce484222325ULL;
    const char *c;
    for (c = from; *c; c++) {
        h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
    }
    h = (h ^ 0x1f) * 0x100000001b3ULL;
    for (c = to; *c; c++) {
        h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
    }
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

/* A worker that can take another member's sessions: usable, not draining,
 * its member alive and ready. */
static int takes_failover(proxy_worker *w, const sc_shm_member *m)
{
    return PROXY_WORKER_IS_USABLE(w) && !PROXY_WORKER_IS_DRAINING(w)
           && m->view == SC_VIEW_ALIVE && m->hb_state == SC_MS_READY;
}

typedef struct {
    int standby, lbset;
    apr_uint64_t load, hash;
} steer_rank;

static int rank_before(const steer_rank *a, const steer_rank *b)
{
    if (a->standby != b->standby) {
        return a->standby < b->standby;
    }
    if (a->lbset != b->lbset) {
        return a->lbset < b->lbset;
    }
    if (a->load != b->load) {
        return a->load < b->load;
    }
    return a->hash > b->hash;
}

/* The route the sessions of 'from' (its member: fm) go to: the best usable
 * member of its group, or NULL when its group has none, or when every usable
 * member is of its group (the lbmethod picks then). */
static const char *steer_target(proxy_balancer *b, proxy_worker *from,
                                const sc_shm_member *fm, const sc_shm_t *shm)
{
    proxy_worker **w = (proxy_worker **)b->workers->elts, *best = NULL;
    steer_rank best_rank = { 0, 0, 0, 0 };
    int j, outside = 0;
    for (j = 0; j < b->workers->nelts; j++) {
        sc_shm_member m;
        steer_rank rk;
        if (w[j] == from || !w[j]->s || !w[j]->s->route[0]
            || !member_of(shm, w[j]->s->route, &m) || !takes_failover(w[j], &m)) {
            continue;
        }
        if (strcmp(m.domain, fm->domain)) {
            outside = 1;
            continue;
        }
        rk.standby = PROXY_WORKER_IS_STANDBY(w[j]) ? 1 : 0;
        rk.lbset = w[j]->s->lbset;
        rk.load = m.has_load && m.capacity ? (apr_uint64_t)m.busy * 10000 / m.capacity : 0;
        rk.hash = pair_hash(from->s->route, w[j]->s->route);
        if (!best || rank_before(&rk, &best_rank)) {
            best = w[j];
            best_rank = rk;
        }
    }
    return best && outside ? best->s->route : NULL;
}

/* Each worker of b whose member is not usable: its sessions' redirect route
 * within its group (see the top); cleared once it is usable again. */
static void steer_by_domain(proxy_balancer *b, const sc_shm_t *shm)
{
    proxy_worker **w = (proxy_worker **)b->workers->elts;
    int i;
    for (i = 0; i < b->workers->nelts; i++) {
        proxy_worker_shared *ws = w[i]->s;
        const char *to = NULL;
        sc_shm_member m;
        int usable;
        if (!ws || !ws->route[0]) {
            continue;
        }
        usable = PROXY_WORKER_IS_USABLE(w[i]);
        if ((usable && !ws->redirect[0]) || redirect_configured(b, w[i])) {
            continue;                 /* the usual case: nothing to do */
        }
        if (!usable && !b->s->sticky_force && member_of(shm, ws->route, &m)) {
            to = steer_target(b, w[i], &m, shm);
        }
        if (!to) {
            if (ws->redirect[0]) {
                ws->redirect[0] = '\0';
            }
        }
        else if (strcmp(ws->redirect, to)) {
            apr_cpystrn(ws->redirect, to, sizeof(ws->redirect));
        }
    }
}

static int member_503_taken(proxy_worker *worker, proxy_balancer *balancer, request_rec *r);

/* proxy's post_request: a sticky request answered by a member of another
 * group than its route's member is counted and said (rate limited); a
 * member's own 503 is kept from putting its worker in error
 * (member_503_taken). */
static int sc_proxy_post_request(proxy_worker *worker, proxy_balancer *balancer,
                                 request_rec *r, proxy_server_conf *conf)
{
    static sc_log_gate gate;
    int rc = member_503_taken(worker, balancer, r);
    sc_retained *ret = sc_retained_get(r->server);
    const char *route = apr_table_get(r->subprocess_env, "BALANCER_SESSION_ROUTE");
    const char *to = apr_table_get(r->subprocess_env, "BALANCER_WORKER_ROUTE");
    sc_shm_member from_m, to_m;
    apr_uint32_t skipped = 0;
    (void)conf;

    if (!balancer || !route || !*route || !to || !*to || !strcmp(route, to) || !ret->shm
        || !sc_server_conf_get(r->server)->balancers->nelts
        || !member_of(ret->shm, route, &from_m) || !member_of(ret->shm, to, &to_m)
        || !strcmp(from_m.domain, to_m.domain)) {
        return rc;
    }
    __atomic_add_fetch(&ret->shm->f.cross_domain, 1, __ATOMIC_RELAXED);
    if (sc_log_gate_open(&gate, 5, apr_time_now(), &skipped)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1813)
                      "SessionClusterBalancer %s: a session of member %s (domain '%s') "
                      "went to member %s of domain '%s' (%s), which may not hold it "
                      "(%u such requests since the last such line)", balancer->s->name,
                      ap_escape_logitem(r->pool, route),
                      ap_escape_logitem(r->pool, from_m.domain),
                      ap_escape_logitem(r->pool, to),
                      ap_escape_logitem(r->pool, to_m.domain),
                      apr_table_get(r->subprocess_env, "SESSION_CLUSTER_REPLAYED")
                      ? "a request sent again after its member failed"
                      : "no member of its domain was usable", skipped);
    }
    return rc;
}

void sc_balancer_sync(server_rec *s)
{
    sc_server_conf *sc = sc_server_conf_get(s);
    sc_retained *ret = sc_retained_get(s);
    proxy_server_conf *conf;
    apr_time_t now;
    int i, j;

    if (!sc->balancers->nelts || !ret->shm || !ret->shm->engine_pid) {
        return;
    }
    conf = proxy_conf_of(s);
    now = apr_time_now();
    for (i = 0; i < sc->balancers->nelts; i++) {
        sc_balancer_ref *ref = &APR_ARRAY_IDX(sc->balancers, i, sc_balancer_ref);
        proxy_balancer *b = find_balancer(conf, ref->name);
        proxy_worker **w;
        if (!b || !b->workers) {
            continue;
        }
        refresh_workers(s, conf, b);
        grow(s, conf, b, ret->shm);
        w = (proxy_worker **)b->workers->elts;
        for (j = 0; j < b->workers->nelts; j++) {
            sc_shm_member m;
            if (!w[j]->s || !w[j]->s->route[0]) {
                continue;             /* no route=: not tied to a member */
            }
            if (member_of(ret->shm, w[j]->s->route, &m)) {
                sync_worker(ret->shm, w[j], &m, now, s);
            }
            else {
                /* no member with that route was ever heard: nothing says
                 * it serves, so it takes no request until it is heard */
                keep_out(w[j], now);
            }
        }
        steer_by_domain(b, ret->shm);
    }
}

int sc_balancer_admin(server_rec *s, const char *route, const char *what)
{
    sc_server_conf *sc = sc_server_conf_get(s);
    sc_retained *ret = sc_retained_get(s);
    proxy_server_conf *conf = proxy_conf_of(s);
    sc_shm_front_route *fr;
    int i, j, n = 0;

    if (!ret->shm || !route || !*route) {
        return -1;
    }
    for (i = 0; i < sc->balancers->nelts; i++) {
        sc_balancer_ref *ref = &APR_ARRAY_IDX(sc->balancers, i, sc_balancer_ref);
        proxy_balancer *b = find_balancer(conf, ref->name);
        proxy_worker **w;
        if (!b || !b->workers) {
            continue;
        }
        refresh_workers(s, conf, b);
        w = (proxy_worker **)b->workers->elts;
        for (j = 0; j < b->workers->nelts; j++) {
            proxy_worker_shared *ws = w[j]->s;
            if (!ws || strcmp(ws->route, route) != 0) {
                continue;
            }
            if (!strcmp(what, "drain")) {
                ws->status |= PROXY_WORKER_DRAIN;
            }
            else if (!strcmp(what, "disable")) {
                ws->status |= PROXY_WORKER_DISABLED;
            }
            else {
                ws->status &= ~(PROXY_WORKER_DRAIN | PROXY_WORKER_DISABLED
                                | PROXY_WORKER_STOPPED);
            }
            n++;
        }
    }
    if (!n) {
        return -1;
    }
    /* the drain is the admin's now (set or cleared): the cluster adds its
     * own again while the member drains, and takes back only that */
    fr = front_route(ret->shm, route, 0);
    if (fr) {
        __atomic_store_n(&fr->drained, 0, __ATOMIC_RELEASE);
    }
    return n;
}

/* proxy's pre_request: bring the bits up to date before the balancer picks. */
static int sc_proxy_pre_request(proxy_worker **worker, proxy_balancer **balancer,
                                request_rec *r, proxy_server_conf *conf, char **url)
{
    if (*url && !strncasecmp(*url, "balancer:", 9)) {
        sc_balancer_sync(r->server);
    }
    return DECLINED;
}

/* httpd's parent, about every ten seconds (its monitor hook): the bits, and
 * what does not match. */
static int sc_balancer_monitor(apr_pool_t *p, server_rec *s)
{
    sc_server_conf *sc = sc_server_conf_get(s);
    sc_retained *ret = sc_retained_get(s);
    if (!sc->balancers->nelts || !ret->shm) {
        return DECLINED;
    }
    parent_pass = 1;
    sc_balancer_sync(s);
    parent_pass = 0;
    sc_balancer_report(s, p);
    return DECLINED;
}

/* Walks the pairs: fn(ctx, balancer name, worker or NULL, member or NULL). */
void sc_balancer_each(server_rec *s, apr_pool_t *p,
                      void (*fn)(void *ctx, const char *balancer, proxy_worker *w,
                                 const sc_shm_member *m),
                      void *ctx)
{
    sc_server_conf *sc = sc_server_conf_get(s);
    sc_retained *ret = sc_retained_get(s);
    proxy_server_conf *conf = proxy_conf_of(s);
    apr_hash_t *matched = apr_hash_make(p);
    int i, j;

    if (!ret->shm || !sc->balancers->nelts) {
        return;
    }
    for (i = 0; i < sc->balancers->nelts; i++) {
        sc_balancer_ref *ref = &APR_ARRAY_IDX(sc->balancers, i, sc_balancer_ref);
        proxy_balancer *b = find_balancer(conf, ref->name);
        proxy_worker **w;
        if (!b || !b->workers) {
            fn(ctx, ref->name, NULL, NULL);
            continue;
        }
        refresh_workers(s, conf, b);
        w = (proxy_worker **)b->workers->elts;
        for (j = 0; j < b->workers->nelts; j++) {
            sc_shm_member m;
            int have = w[j]->s && w[j]->s->route[0]
                       && member_of(ret->shm, w[j]->s->route, &m);
            if (have) {
                apr_hash_set(matched, apr_pstrdup(p, m.route), APR_HASH_KEY_STRING, "");
            }
            fn(ctx, ref->name, w[j], have ? &m : NULL);
        }
    }
    for (i = 0; i < SC_MAX_MEMBERS; i++) {
        sc_shm_member m;
        if (sc_shm_read_member(ret->shm, i, &m) && !m.observer && m.route[0]
            && !apr_hash_get(matched, m.route, APR_HASH_KEY_STRING)) {
            fn(ctx, NULL, NULL, &m);
        }
    }
}

/* mod_proxy's status letters for a worker, as balancer-manager shows them. */
const char *sc_balancer_worker_status(apr_pool_t *p, proxy_worker *w)
{
    unsigned int st = w->s->status;
    const char *out = "";
    if (st & PROXY_WORKER_DRAIN) {
        out = apr_pstrcat(p, out, "Drn ", NULL);
    }
    if (st & PROXY_WORKER_DISABLED) {
        out = apr_pstrcat(p, out, "Dis ", NULL);
    }
    if (st & PROXY_WORKER_STOPPED) {
        out = apr_pstrcat(p, out, "Stop ", NULL);
    }
    if (st & PROXY_WORKER_HOT_STANDBY) {
        out = apr_pstrcat(p, out, "Stby ", NULL);
    }
    if (st & PROXY_WORKER_IN_ERROR) {
        out = apr_pstrcat(p, out, "Err ", NULL);
    }
    if (st & PROXY_WORKER_HC_FAIL) {
        out = apr_pstrcat(p, out, "HcFl ", NULL);
    }
    if (PROXY_WORKER_IS_USABLE(w)) {
        out = apr_pstrcat(p, out, "Ok ", NULL);
    }
    if (!*out) {
        return "-";
    }
    return apr_pstrmemdup(p, out, strlen(out) - 1);
}

/* The parent reports, once per configuration, a BalancerMember whose route no
 * member announces (after the membership had dropTime to form) and a member
 * that no BalancerMember names. */
typedef struct {
    server_rec *s;
    apr_hash_t *told;
    apr_pool_t *p;                    /* this round's */
    apr_pool_t *keep;                 /* the configuration's: what was told */
    int settled;
} report_ctx;

static void report_one(void *vctx, const char *balancer, proxy_worker *w,
                       const sc_shm_member *m)
{
    report_ctx *x = vctx;
    const char *key;
    if (w && !m && x->settled && w->s->route[0]) {
        key = apr_pstrcat(x->p, "w ", balancer, " ", w->s->route, NULL);
        if (!apr_hash_get(x->told, key, APR_HASH_KEY_STRING)) {
            apr_hash_set(x->told, apr_pstrdup(x->keep, key), APR_HASH_KEY_STRING, "");
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, x->s, SCLOGNO(1284)
                         "SessionClusterBalancer %s: BalancerMember %s (route %s) matches "
                         "no cluster member: it stays in error (out of rotation) until a "
                         "member with that route is heard", balancer, w->s->name,
                         w->s->route);
        }
    }
    else if (!balancer && m) {
        key = apr_pstrcat(x->p, "m ", m->route, NULL);
        if (!apr_hash_get(x->told, key, APR_HASH_KEY_STRING)) {
            apr_hash_set(x->told, apr_pstrdup(x->keep, key), APR_HASH_KEY_STRING, "");
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, x->s, SCLOGNO(1285)
                         "SessionClusterBalancer: cluster member %s (%s:%u) has no "
                         "BalancerMember with route=%s", m->route, m->addr, m->port,
                         m->route);
        }
    }
    else if (balancer && !w) {
        key = apr_pstrcat(x->p, "b ", balancer, NULL);
        if (!apr_hash_get(x->told, key, APR_HASH_KEY_STRING)) {
            apr_hash_set(x->told, apr_pstrdup(x->keep, key), APR_HASH_KEY_STRING, "");
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, x->s, SCLOGNO(1286)
                         "SessionClusterBalancer %s: no such balancer (a <Proxy %s> "
                         "with BalancerMembers, in this server)", balancer, balancer);
        }
    }
}

void sc_balancer_report(server_rec *s, apr_pool_t *pconf)
{
    static const char key[] = "mod_session_cluster balancer reports";
    sc_retained *ret = sc_retained_get(s);
    report_ctx x;
    void *told = NULL;

    apr_pool_userdata_get(&told, key, pconf);
    if (!told) {
        told = apr_hash_make(pconf);
        apr_pool_userdata_set(told, key, apr_pool_cleanup_null, pconf);
    }
    if (apr_pool_create(&x.p, pconf) != APR_SUCCESS) {
        return;
    }
    x.s = s;
    x.told = told;
    x.keep = pconf;
    /* members announce their routes within a heartbeat or two */
    x.settled = ret->shm->engine_pid
                && apr_time_now() - ret->shm->engine_started > apr_time_from_sec(5);
    sc_balancer_each(s, x.p, report_one, &x);
    apr_pool_destroy(x.p);
}

/* mod_watchdog's singleton child thread brings the bits up to date five times
 * a second, so balancer-manager shows a member's state even when no request
 * comes (httpd's monitor hook runs only every ten seconds or so). */
#define SC_BALANCER_WATCHDOG "_session_cluster_balancer_"

static apr_status_t watchdog_tick(int state, void *data, apr_pool_t *pool)
{
    if (state == AP_WATCHDOG_STATE_STARTING) {
        /* the singleton's thread took its mutex in this child */
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, (server_rec *)data, SCLOGNO(1330)
                     "SessionClusterBalancer: the watchdog thread of this child (pid %"
                     APR_PID_T_FMT ") brings the BalancerMembers up to date every 200 ms",
                     getpid());
    }
    else if (state == AP_WATCHDOG_STATE_RUNNING) {
        sc_balancer_sync((server_rec *)data);
    }
    return APR_SUCCESS;
}

/* A named balancer without room for workers added at run time: members
 * without a BalancerMember line stay out of it (said once per start). */
static void growth_check(server_rec *s)
{
    sc_server_conf *sc = sc_server_conf_get(s);
    proxy_server_conf *conf = proxy_conf_of(s);
    int i;
    for (i = 0; i < sc->balancers->nelts; i++) {
        sc_balancer_ref *ref = &APR_ARRAY_IDX(sc->balancers, i, sc_balancer_ref);
        proxy_balancer *b = find_balancer(conf, ref->name);
        if (b && b->growth <= 0) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SCLOGNO(1812)
                         "SessionClusterBalancer %s: the balancer has no room for workers "
                         "added at run time (growth=0): a member without a BalancerMember "
                         "line is not added; ProxySet growth=N in <Proxy %s> makes room for "
                         "N", ref->name, ref->name);
        }
    }
}

void sc_balancer_post_config(apr_pool_t *pconf, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback;
    ap_watchdog_t *wd = NULL;
    apr_status_t rv;

    if (!sc_server_conf_get(s)->balancers->nelts) {
        return;
    }
    growth_check(s);
    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!get_instance || !register_callback) {
        sc_warn_once(s, NULL, 0, SCLOGNO(1298) "SessionClusterBalancer without "
                     "mod_watchdog: requests "
                     "through the balancer follow the members at once, but "
                     "balancer-manager shows a change only when a request comes or "
                     "within about ten seconds; LoadModule watchdog_module for 200 ms");
        return;
    }
    rv = get_instance(&wd, SC_BALANCER_WATCHDOG, 0, 1, pconf);
    if (rv == APR_SUCCESS) {
        rv = register_callback(wd, apr_time_from_msec(200), s, watchdog_tick);
    }
    if (rv != APR_SUCCESS && rv != APR_EEXIST) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, SCLOGNO(1297)
                     "SessionClusterBalancer: no watchdog thread; balancer-manager "
                     "follows the members only when requests come");
    }
}

/* ------------------------------------------------------------------------- */
/* Replay (see the top of this file)                                          */
/* ------------------------------------------------------------------------- */

#define SC_REPLAY_FILTER "SESSION_CLUSTER_REPLAY"
#define SC_REPLAY_NOTE   "session-cluster-replay"

/* Set once when httpd loads the module (register_hooks), read after. */
static sc_scheme_run run_scheme;

typedef struct {
    int started;                      /* a byte of the response went on */
    apr_bucket_brigade *held;         /* an error and end of connection held back */
    const char *route;                /* the member asked */
    int replayable;                   /* the request may be sent twice */
    int replayed;                     /* ... and was, once */
    int slot;                         /* its place in the in-flight list, or -1 */
    int cut;                          /* ... whose connection was cut */
    int kept503;                      /* the member's own 503: a change it kept
                                       * but could not replicate, held back */
    apr_off_t held_len;               /* bytes of that answer held back */
    int hidden_keepalives;            /* the client connection's count of
                                       * requests, hidden from mod_proxy_http
                                       * until the answer starts */
} replay_guard;

/* A member's 503 for a synchronous replication it could not complete
 * (sc_session.c's not_replicated): held back at most this long, to be sent
 * again elsewhere. */
#define SC_REPLAY_HOLD_MAX (64 * 1024)
#define SC_MEMBER_503_NOTE "session-cluster-member-503"

/* The answer in r is a member's own 503 for a change it kept but could not
 * replicate: the member is up and answering (not one for failonstatus). */
static int member_replication_503(request_rec *r)
{
    const char *k = apr_table_get(r->headers_out, "Session-Cluster-Change");
    return r->status == HTTP_SERVICE_UNAVAILABLE && k && !strcasecmp(k, "kept");
}

/* ... and the change is on no other member (Session-Cluster-Replicated:
 * none: its message never left that member): another member runs the
 * request on the session as it was, so a replay applies it once.  A 503
 * after the message went out (some member may have acknowledged it) is not
 * sent again: the change could be applied twice. */
static int replayable_503(request_rec *r)
{
    const char *n = apr_table_get(r->headers_out, "Session-Cluster-Replicated");
    return member_replication_503(r) && n && !strcasecmp(n, "none");
}

#define SC_REPLAY_GUARD_KEY "session-cluster-replay-guard"
#define SC_INFLIGHT_SOCK_KEY "session-cluster-inflight"

/* A child's requests in flight that may be replayed (see the top): a slot
 * each, written by the requests' threads and the watching thread under the
 * mutex.  One per child process, made in child_init (the process model's
 * own state: NULL in httpd's parent and where no front is configured). */
typedef struct {
    apr_socket_t *sock;               /* NULL: free */
    apr_os_sock_t fd;
    char route[64];
    int cut;
    replay_guard *owner;              /* the request waiting on it */
} inflight_slot;

typedef struct {
    apr_thread_mutex_t *mu;
    inflight_slot *slots;
    int n;
    volatile int stop;
    apr_thread_t *thread;
    server_rec *s;
} inflight_list;

static inflight_list *inflight;

/* Frees g's slot (the request is done with that member), noting whether its
 * connection was cut; under the mutex.  A slot freed already (its connection
 * closed, inflight_sock_closing) told g then; one another request took since
 * is not g's. */
static void inflight_release(replay_guard *g)
{
    /* only g's own thread sets g->slot to a slot, and only under the mutex
     * does anyone set it to -1: a -1 read here needs no lock */
    if (!inflight || g->slot < 0) {
        return;
    }
    apr_thread_mutex_lock(inflight->mu);
    if (g->slot >= 0 && inflight->slots[g->slot].owner == g) {
        g->cut = inflight->slots[g->slot].cut;
        inflight->slots[g->slot].sock = NULL;
        inflight->slots[g->slot].owner = NULL;
    }
    g->slot = -1;
    apr_thread_mutex_unlock(inflight->mu);
}

/* The member's connection is closing (mod_proxy clears its pool, before the
 * socket's own cleanup closes it: mod_proxy_http releases a connection that
 * failed inside its handler, before inflight_release): its slot is freed,
 * so that the watching thread never shuts down a descriptor that another
 * connection took over, and the request waiting on it is told whether it
 * was cut. */
static apr_status_t inflight_sock_closing(void *data)
{
    apr_socket_t *sock = data;
    int i;
    if (inflight) {
        apr_thread_mutex_lock(inflight->mu);
        for (i = 0; i < inflight->n; i++) {
            if (inflight->slots[i].sock == sock) {
                if (inflight->slots[i].owner) {
                    inflight->slots[i].owner->cut = inflight->slots[i].cut;
                    inflight->slots[i].owner->slot = -1;
                }
                inflight->slots[i].sock = NULL;
                inflight->slots[i].owner = NULL;
            }
        }
        apr_thread_mutex_unlock(inflight->mu);
    }
    return APR_SUCCESS;
}

/* proxy's create_req: mod_proxy_http starts to wait for the member's answer
 * on pr's connection. */
static int sc_inflight_create_req(request_rec *r, request_rec *pr)
{
    replay_guard *g = NULL;
    apr_socket_t *sock;
    apr_os_sock_t fd;
    void *seen = NULL;
    int i;

    if (!inflight || !pr || !pr->connection) {
        return OK;
    }
    apr_pool_userdata_get((void **)&g, SC_REPLAY_GUARD_KEY, r->pool);
    if (!g || !g->replayable || g->slot >= 0 || !g->route || !g->route[0]
        || !(sock = ap_get_conn_socket(pr->connection))
        || apr_os_sock_get(&fd, sock) != APR_SUCCESS) {
        return OK;
    }
    apr_socket_data_get(&seen, SC_INFLIGHT_SOCK_KEY, sock);
    apr_thread_mutex_lock(inflight->mu);
    for (i = 0; i < inflight->n && inflight->slots[i].sock; i++) {
    }
    if (i < inflight->n) {
        inflight->slots[i].sock = sock;
        inflight->slots[i].fd = fd;
        inflight->slots[i].cut = 0;
        inflight->slots[i].owner = g;
        apr_cpystrn(inflight->slots[i].route, g->route, sizeof(inflight->slots[i].route));
        g->slot = i;
    }
    apr_thread_mutex_unlock(inflight->mu);
    if (g->slot >= 0 && !seen) {
        apr_socket_data_set(sock, sock, SC_INFLIGHT_SOCK_KEY, inflight_sock_closing);
    }
    return OK;
}

/* The watching thread: ten times a second, the connections of requests in
 * flight to a member the cluster no longer holds alive are shut down. */
static void *APR_THREAD_FUNC inflight_watch(apr_thread_t *t, void *data)
{
    inflight_list *x = data;
    sc_retained *ret = sc_retained_get(x->s);
    int i;
    while (!x->stop) {
        apr_sleep(apr_time_from_msec(100));
        if (x->stop || !ret->shm) {
            continue;
        }
        apr_thread_mutex_lock(x->mu);
        for (i = 0; i < x->n; i++) {
            inflight_slot *sl = &x->slots[i];
            sc_shm_member m;
            if (!sl->sock || sl->cut || !member_of(ret->shm, sl->route, &m)
                || m.view == SC_VIEW_ALIVE || m.view == SC_VIEW_RESTARTING) {
                continue;
            }
            sl->cut = 1;
            shutdown(sl->fd, SHUT_RDWR);
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, x->s, SCLOGNO(1663)
                         "SessionClusterBalancer: a request in flight to member %s cut: "
                         "the cluster holds it %s (%s); it goes to another member",
                         sl->route, sc_view_name((int)m.view), m.verdict);
        }
        apr_thread_mutex_unlock(x->mu);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Before the child's pool goes (its subpools first: the thread's among them):
 * the thread stops and is joined. */
static apr_status_t inflight_stop(void *data)
{
    inflight_list *x = data;
    apr_status_t rv;
    x->stop = 1;
    if (x->thread) {
        apr_thread_join(&rv, x->thread);
    }
    inflight = NULL;
    return APR_SUCCESS;
}

static void sc_inflight_child_init(apr_pool_t *pchild, server_rec *s)
{
    server_rec *v;
    inflight_list *x;
    int threads = 1;

    for (v = s; v && !sc_server_conf_get(v)->balancers->nelts; v = v->next) {
    }
    if (!v || !run_scheme || !sc_retained_get(s)->shm) {
        return;                       /* no front here */
    }
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    x = apr_pcalloc(pchild, sizeof(*x));
    x->n = (threads > 0 ? threads : 1) * 2;
    x->slots = apr_pcalloc(pchild, sizeof(*x->slots) * (apr_size_t)x->n);
    x->s = s;
    if (apr_thread_mutex_create(&x->mu, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS) {
        return;
    }
    inflight = x;
    apr_pool_pre_cleanup_register(pchild, x, inflight_stop);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, SCLOGNO(1665)
                 "SessionClusterBalancer: this child (pid %" APR_PID_T_FMT ") watches up to "
                 "%d requests in flight", getpid(), x->n);
    if (apr_thread_create(&x->thread, NULL, inflight_watch, x, pchild) != APR_SUCCESS) {
        x->thread = NULL;
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCLOGNO(1664)
                     "SessionClusterBalancer: no thread to watch requests in flight in "
                     "this child: a request held by a frozen member waits for the "
                     "worker's timeout");
    }
}

/* Until the response starts: a brigade with an error bucket (mod_proxy's
 * "the backend broke": the error, an end of connection, an end of stream) is
 * held back whole (the request may be sent again), a flush is dropped (it
 * would send the headers); the first data or end of stream of a brigade
 * without an error lets everything through. */
static apr_status_t replay_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    replay_guard *g = f->ctx;
    apr_bucket *e, *next;

    if (!g->started && !g->kept503 && g->replayable && !g->replayed
        && APR_BRIGADE_EMPTY(g->held) && replayable_503(f->r)) {
        g->kept503 = 1;               /* its answer starts: hold it whole */
    }
    if (g->kept503 && !g->started) {
        apr_off_t len = 0;
        apr_brigade_length(bb, 0, &len);
        g->held_len += len > 0 ? len : 0;
        APR_BRIGADE_CONCAT(g->held, bb);
        if (g->held_len <= SC_REPLAY_HOLD_MAX) {
            return APR_SUCCESS;
        }
        /* not the short page of a member: let it through as it is */
        g->kept503 = 0;
        g->started = 1;
        APR_BRIGADE_CONCAT(bb, g->held);
        f->r->connection->keepalives += g->hidden_keepalives;
        g->hidden_keepalives = 0;
        return ap_pass_brigade(f->next, bb);
    }
    if (!g->started) {
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = APR_BUCKET_NEXT(e)) {
            if (AP_BUCKET_IS_ERROR(e)) {
                break;
            }
        }
        if (e != APR_BRIGADE_SENTINEL(bb) || !APR_BRIGADE_EMPTY(g->held)) {
            APR_BRIGADE_CONCAT(g->held, bb);
            return APR_SUCCESS;
        }
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = next) {
            next = APR_BUCKET_NEXT(e);
            if (APR_BUCKET_IS_FLUSH(e)) {
                apr_bucket_delete(e);
            }
            else if (!APR_BUCKET_IS_METADATA(e) || APR_BUCKET_IS_EOS(e)) {
                g->started = 1;
                break;
            }
        }
    }
    if (APR_BRIGADE_EMPTY(bb)) {
        return APR_SUCCESS;
    }
    if (g->started && g->hidden_keepalives) {
        /* the answer goes out (its keep-alive decision, MaxKeepAliveRequests,
         * comes next): the client connection's own count again */
        f->r->connection->keepalives += g->hidden_keepalives;
        g->hidden_keepalives = 0;
    }
    return ap_pass_brigade(f->next, bb);
}

/* Whether the request may be sent twice: NULL if so, else why not. */
static const char *not_replayable(request_rec *r)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t len;
    if (r->method_number != M_GET && r->method_number != M_OPTIONS) {
        return apr_psprintf(r->pool, "method %s", r->method);
    }
    if (apr_table_get(r->headers_in, "Transfer-Encoding")
        || (cl && (!ap_parse_strict_length(&len, cl) || len > 0))) {
        return "it has a body";
    }
    return NULL;
}

/* Whether a replay may go to worker w: usable on this front, and its member
 * alive and ready to the cluster (*m: the member as published). */
static int replay_usable(sc_retained *ret, proxy_worker *w, sc_shm_member *m)
{
    return w->s && w->s->route[0] && PROXY_WORKER_IS_USABLE(w)
           && member_of(ret->shm, w->s->route, m) && m->view == SC_VIEW_ALIVE
           && m->hb_state == SC_MS_READY;
}

/* Another BalancerMember of b that can take the request: usable, its member
 * alive and ready (a draining one takes only its own sessions), not one of
 * the ntried workers the request went to already; one of the failed
 * member's domain first (another domain may not hold the session: domains
 * as failover groups), then the least loaded by the member's own figure (its
 * MPM's busy workers of its capacity, from its heartbeats), then by this
 * front's requests in flight to it.  same_ok: the failed worker itself when
 * no other can (still alive and ready).  NULL if none. */
static proxy_worker *replay_target(request_rec *r, proxy_balancer *b, proxy_worker *failed,
                                   int same_ok, proxy_worker *const *tried, int ntried)
{
    sc_retained *ret = sc_retained_get(r->server);
    proxy_worker **w = (proxy_worker **)b->workers->elts, *best = NULL;
    apr_uint64_t best_load = 0;
    sc_shm_member fm;
    int i, best_same = 0;
    int known = failed && failed->s && member_of(ret->shm, failed->s->route, &fm);
    for (i = 0; i < b->workers->nelts; i++) {
        sc_shm_member m;
        apr_uint64_t load;
        int same, k;
        for (k = 0; k < ntried && (tried[k] != w[i] || w[i] == failed); k++) {
        }
        if (k < ntried) {
            continue;                 /* it had the request already */
        }
        if ((w[i] == failed && !same_ok) || !replay_usable(ret, w[i], &m)) {
            continue;
        }
        same = !known || !strcmp(m.domain, fm.domain);
        load = m.capacity ? (apr_uint64_t)m.busy * 1000 / m.capacity : 0;
        if (w[i] == failed) {
            same = -1;                /* itself: only when nobody else can */
        }
        if (!best || same > best_same
            || (same == best_same
                && (load < best_load
                    || (load == best_load && w[i]->s->busy < best->s->busy)))) {
            best = w[i];
            best_load = load;
            best_same = same;
        }
    }
    return best;
}

/* Why replay_target found no member, for the log: each other BalancerMember
 * and what kept it out. */
static const char *no_target_why(request_rec *r, proxy_balancer *b, proxy_worker *failed,
                                 proxy_worker *const *tried, int ntried)
{
    sc_retained *ret = sc_retained_get(r->server);
    proxy_worker **w = (proxy_worker **)b->workers->elts;
    const char *out = NULL;
    int i, k;
    for (i = 0; i < b->workers->nelts; i++) {
        sc_shm_member m;
        const char *why;
        if (w[i] == failed || !w[i]->s || !w[i]->s->route[0]) {
            continue;
        }
        for (k = 0; k < ntried && tried[k] != w[i]; k++) {
        }
        why = k < ntried ? "the request went there already"
              : !PROXY_WORKER_IS_USABLE(w[i])
                ? apr_psprintf(r->pool, "its worker is not usable (status %s)",
                               sc_balancer_worker_status(r->pool, w[i]))
              : !member_of(ret->shm, w[i]->s->route, &m) ? "no such member known"
              : m.view != SC_VIEW_ALIVE ? sc_view_name(m.view)
              : m.hb_state != SC_MS_READY ? sc_member_state_name(m.hb_state)
              : "usable";
        out = apr_psprintf(r->pool, "%s%s%s: %s", out ? out : "", out ? ", " : "",
                           w[i]->s->route, why);
    }
    return out ? out : "no other BalancerMember with a route";
}

/* The balancer of this request, when SessionClusterBalancer names it. */
static proxy_balancer *replay_balancer(request_rec *r)
{
    sc_server_conf *sc = sc_server_conf_get(r->server);
    const char *name = apr_table_get(r->subprocess_env, "BALANCER_NAME");
    int i;
    if (!name) {
        return NULL;
    }
    for (i = 0; i < sc->balancers->nelts; i++) {
        if (!strcasecmp(APR_ARRAY_IDX(sc->balancers, i, sc_balancer_ref).name, name)) {
            return find_balancer(proxy_conf_of(r->server), name);
        }
    }
    return NULL;
}

/* mod_proxy_http's handler for worker, on a new connection to its member,
 * never a kept one: the member's MPM closes idle kept connections at any
 * moment (all its workers busy, a graceful restart's old children: "kill
 * them all" on their keep-alive queue), and one it closes as the request
 * goes out fails with no answer, which may be sent again only if the request
 * can be.  mod_proxy_http's proxy-initial-not-pooled asks for a new
 * connection, but reads it for a client connection's first request only: the
 * count of the client's requests is hidden from it until the answer starts
 * (replay_filter gives it back then, before httpd's keep-alive decision, or
 * here).  The new connection goes back to the pool afterwards. */
static int run_scheme_new_connection(request_rec *r, replay_guard *g, proxy_worker *worker,
                                     proxy_server_conf *conf, char *url,
                                     const char *proxyhost, apr_port_t proxyport)
{
    int st;
    int set = apr_table_get(r->subprocess_env, "proxy-initial-not-pooled") == NULL;
    g->hidden_keepalives += r->connection->keepalives;
    r->connection->keepalives = 0;
    if (set) {
        apr_table_setn(r->subprocess_env, "proxy-initial-not-pooled", "1");
    }
    st = run_scheme(r, worker, conf, url, proxyhost, proxyport);
    r->connection->keepalives += g->hidden_keepalives;
    g->hidden_keepalives = 0;
    if (set) {
        apr_table_unset(r->subprocess_env, "proxy-initial-not-pooled");
    }
    return st;
}

/* Why the request failed on its member before any byte of the response went
 * out, when it did: an error held back (a client's kept-alive connection,
 * which mod_proxy_http would close), or a 502/500 of mod_proxy's own
 * (ap_proxyerror's error note: the member's connection broke), not a
 * member's answer (ProxyErrorOverride passes a member's 5xx on as a status),
 * or the member's 503 for a change it kept; for a replay to worker 'to'
 * (sent at 'since'), also a connection to its member that could not be made:
 * mod_proxy's own 503, which put that worker in error meanwhile, never a
 * member's 503 (with ProxyErrorOverride a member's status comes back with
 * nothing started; a member's 503 for a change may not go elsewhere).  (On
 * the first send mod_proxy itself tries another worker after a 503.)  NULL
 * when it did not fail so. */
static const char *failed_unanswered(request_rec *r, const replay_guard *g, int st,
                                     const proxy_worker *to, apr_time_t since)
{
    return g->kept503 ? "its member could not replicate the change (its 503: the "
                        "change kept there, on no other member)"
           : g->started ? NULL
           : g->cut ? "its member stopped answering (connection cut)"
           : apr_table_get(r->notes, "proxy_timedout") ? NULL
           : to && st == HTTP_SERVICE_UNAVAILABLE && APR_BRIGADE_EMPTY(g->held)
             && (to->s->status & PROXY_WORKER_IN_ERROR) && to->s->error_time >= since
             && !apr_table_get(r->headers_out, "Session-Cluster-Change")
             ? "its member could not be reached (503)"
           : !APR_BRIGADE_EMPTY(g->held) ? "no answer (connection closed or reset)"
           : !apr_table_get(r->notes, "error-notes") ? NULL
           : st == HTTP_BAD_GATEWAY ? "no answer (502)"
           : st == HTTP_INTERNAL_SERVER_ERROR ? "no answer (500)" : NULL;
}

static int sc_replay_scheme_handler(request_rec *r, proxy_worker *worker,
                                    proxy_server_conf *conf, char *url,
                                    const char *proxyhost, apr_port_t proxyport)
{
    sc_retained *ret = sc_retained_get(r->server);
    proxy_balancer *b;
    proxy_worker *alt, **tried = NULL;
    replay_guard *g;
    ap_filter_t *f;
    const char *why, *no, *type, *cur_url;
    apr_table_t *headers;
    char *alt_url;
    int ntried = 1, cap = 0;        /* worker (tried[0], once it failed) */
    int first_again = 0;              /* the first member may have it once more */
    apr_time_t sent = 0;              /* when the last replay went out */
    apr_size_t nl;
    int st;

    if (!run_scheme || proxyhost || !ret->shm || apr_table_get(r->notes, SC_REPLAY_NOTE)
        || !(b = replay_balancer(r))) {
        return DECLINED;
    }
    apr_table_setn(r->notes, SC_REPLAY_NOTE, "1");
    g = apr_pcalloc(r->pool, sizeof(*g));
    g->held = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    g->route = worker->s->route;
    g->replayable = not_replayable(r) == NULL;
    g->slot = -1;
    apr_pool_userdata_setn(g, SC_REPLAY_GUARD_KEY, NULL, r->pool);
    /* what the response had before the member was asked: a replay starts
     * from it (mod_proxy_http keeps Set-Cookie lines it finds there) */
    headers = apr_table_copy(r->pool, r->headers_out);
    type = r->content_type;
    apr_table_unset(r->notes, "error-notes");
    r->status_line = NULL;
    f = ap_add_output_filter(SC_REPLAY_FILTER, g, r, r->connection);
    /* a request that cannot be sent twice goes out on a new connection: on
     * a kept one that its member closes as the request goes out, it would
     * fail with no answer and could not be sent again (a 502 for a POST) */
    st = g->replayable ? run_scheme(r, worker, conf, url, proxyhost, proxyport)
                       : run_scheme_new_connection(r, g, worker, conf, url, proxyhost, proxyport);
    inflight_release(g);

    /* failed before any byte of the response: sent again to another member,
     * and again to another while each fails so (a replay that meets a
     * member frozen since, cut once the cluster holds it suspect), each
     * member once at most */
    cur_url = url;
    while ((why = failed_unanswered(r, g, st, ntried > 1 ? tried[ntried - 1] : NULL,
                                    sent)) != NULL) {
        proxy_worker *failed;
        if (!tried) {
            /* every worker once, and the first one twice at most; the
             * balancer may get more workers meanwhile (a sync in another
             * thread): not these.  Made on the first failure only: a
             * request that did not fail takes no lock here */
            PROXY_THREAD_LOCK(b);
            cap = b->workers->nelts + 1;
            PROXY_THREAD_UNLOCK(b);
            tried = apr_palloc(r->pool, sizeof(*tried) * (apr_size_t)cap);
            tried[0] = worker;
        }
        failed = tried[ntried - 1];
        nl = strlen(failed->s->name);
        no = not_replayable(r);
        /* the member itself, when nobody else can take it: a kept
         * connection that the member closed as the request went out (its
         * MPM closes idle kept connections when its workers run short) is
         * no failure of the member; not after a cut or the member's 503.
         * After a replay that failed too, only the first member may have it
         * again (below) */
        if (ntried == 1) {
            first_again = !g->cut && !g->kept503;
        }
        /* the balancer's list of workers is read under its lock: another
         * thread's sync may add to it (and move it) meanwhile; the workers
         * themselves stay where they are */
        PROXY_THREAD_LOCK(b);
        alt = no ? NULL
              : ntried >= cap - 1 ? NULL
              : replay_target(r, b, failed, ntried == 1 && first_again, tried, ntried);
        if (alt == tried[0]) {
            first_again = 0;          /* its second send: this one */
        }
        else if (!no && !alt && first_again && ntried < cap) {
            /* every other member failed too or is out (a replay that met a
             * member frozen since, cut once the cluster held it suspect):
             * the first member once more, on a new connection, when its
             * failure was only no answer, not a cut nor its 503: that may
             * have been a kept connection it closed as the request went
             * out, and it is still alive and ready to the cluster */
            sc_shm_member m;
            first_again = 0;
            if (tried[0] != failed && replay_usable(ret, tried[0], &m)) {
                alt = tried[0];
            }
        }
        if (!no && !alt) {
            no = apr_pstrcat(r->pool, "no other ready member (",
                             no_target_why(r, b, failed, tried, ntried), ")", NULL);
        }
        PROXY_THREAD_UNLOCK(b);
        if (!no && strncasecmp(cur_url, failed->s->name, nl)) {
            no = "its URL is not the worker's";
        }
        /* a balancer's worker gets its connection pool in a child when
         * that child first sends it a request (mod_proxy's handler does it
         * after the balancer chose it): one this child never used has none */
        if (!no && (!init_worker || init_worker(alt, r->server, conf->pool) != APR_SUCCESS)) {
            no = "its worker could not be made ready in this child";
        }
        if (no && ntried == 1) {
            __atomic_add_fetch(&ret->shm->f.not_replayed, 1, __ATOMIC_RELAXED);
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1660)
                          "SessionClusterBalancer: %s failed on %s (route %s): %s; "
                          "not sent again: %s", r->method, failed->s->name,
                          failed->s->route, why, no);
            break;
        }
        if (no) {
            __atomic_add_fetch(&ret->shm->f.replays_failed, 1, __ATOMIC_RELAXED);
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(2106)
                          "SessionClusterBalancer: %s %s sent again to %s failed "
                          "too (status %d): %s; not sent again: %s", r->method, r->uri,
                          failed->s->name, st, why, no);
            break;
        }
        /* the failed worker stays in rotation: a kept connection that its
         * member closed as the request went out fails so too (a keep-alive
         * race), and a member that died is taken out by the cluster (or by
         * the next connection refused) */
        alt_url = apr_pstrcat(r->pool, alt->s->name, cur_url + nl, NULL);
        __atomic_add_fetch(&ret->shm->f.replays, 1, __ATOMIC_RELAXED);
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCLOGNO(1661)
                      "SessionClusterBalancer: %s %s failed on %s (route %s): %s; "
                      "sent again to %s (route %s)", r->method, r->uri,
                      failed->s->name, failed->s->route, why, alt->s->name,
                      alt->s->route);
        apr_brigade_cleanup(g->held);
        g->kept503 = 0;
        g->held_len = 0;
        g->replayed = 1;
        r->status = HTTP_OK;
        r->status_line = NULL;
        r->headers_out = apr_table_copy(r->pool, headers);
        r->content_type = type;
        r->clength = 0;
        apr_table_unset(r->notes, "error-notes");
        apr_table_unset(r->notes, "verbose-error-to");
        apr_table_unset(r->notes, "proxy_timedout");
        apr_table_setn(r->subprocess_env, "BALANCER_WORKER_NAME", alt->s->name);
        apr_table_setn(r->subprocess_env, "BALANCER_WORKER_ROUTE", alt->s->route);
        apr_table_setn(r->subprocess_env, "SESSION_CLUSTER_REPLAYED", failed->s->route);
        r->filename = apr_pstrcat(r->pool, "proxy:", alt_url, NULL);
        g->route = alt->s->route;
        g->cut = 0;
        /* on a new connection to the member: a kept one may be closed by
         * the member as the request goes out, as the first may have been */
        sent = apr_time_now();
        st = run_scheme_new_connection(r, g, alt, conf, alt_url, NULL, 0);
        inflight_release(g);
        tried[ntried++] = alt;
        cur_url = alt_url;
        if (!failed_unanswered(r, g, st, alt, sent)
            && (g->started ? (st != OK && st != DONE) || member_replication_503(r)
                : !APR_BRIGADE_EMPTY(g->held) || st != OK)) {
            /* failed otherwise (a timeout, its answer cut short): not again */
            __atomic_add_fetch(&ret->shm->f.replays_failed, 1, __ATOMIC_RELAXED);
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1662)
                          "SessionClusterBalancer: %s %s sent again to %s failed "
                          "too (status %d)", r->method, r->uri, alt->s->name, st);
        }
    }
    if (ntried > 1 && !g->started
        && (st == HTTP_SERVICE_UNAVAILABLE || st == HTTP_INTERNAL_SERVER_ERROR)) {
        /* a replay's failure: mod_proxy's handler takes a 503 or 500 from
         * here as the first worker's and puts that worker in error (and,
         * for a 503, sends the request once more through the balancer):
         * the first member did not fail so, and the request went to every
         * member it could already */
        st = HTTP_BAD_GATEWAY;
    }
    ap_remove_output_filter(f);
    if (member_replication_503(r)) {
        /* the member answered: it is up (see member_503_taken) */
        apr_table_setn(r->notes, SC_MEMBER_503_NOTE, g->route);
    }
    if (!APR_BRIGADE_EMPTY(g->held)) {
        /* what mod_proxy_http meant to send: the error, the connection's end */
        ap_pass_brigade(r->output_filters, g->held);
    }
    apr_table_unset(r->notes, SC_REPLAY_NOTE);
    return st;
}

/* Whether proxy's hook could be registered: decided when httpd loads this
 * module (LoadModule), so mod_proxy must be loaded before it. */
static int proxy_hooked;

/* proxy's post_request hook runs its first answer only; ahead of
 * mod_proxy_balancer's, which puts the worker in error for a status listed in
 * failonstatus (and for a timeout with failontimeout), this module's
 * (sc_proxy_post_request) takes the request whose answer was a member's own
 * 503 for a change it kept but could not replicate: OK here.  That member is
 * up and answering, and putting its worker in error would send its sessions
 * elsewhere for the worker's retry time (with nothing in the cluster's state
 * to clear it).  Nothing else of the balancer's post_request is left out: it
 * does no more than those two checks (the busy count is a cleanup of the
 * request's pool).  DECLINED for every other request. */
static int member_503_taken(proxy_worker *worker, proxy_balancer *balancer, request_rec *r)
{
    const char *route = apr_table_get(r->notes, SC_MEMBER_503_NOTE);
    if (!route || !balancer || r->status != HTTP_SERVICE_UNAVAILABLE) {
        return DECLINED;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCLOGNO(1666)
                  "SessionClusterBalancer: 503 of member %s for a change it kept but "
                  "could not replicate: worker %s not put in error", route,
                  worker && worker->s ? worker->s->name : "-");
    return OK;
}

int sc_balancer_register_hooks(void)
{
    sc_proxy_hook_reg reg;
    sc_post_hook_reg post_reg;
    sc_scheme_hook_reg sreg;
    ap_hook_monitor(sc_balancer_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    *(void **)&define_worker = dlsym(RTLD_DEFAULT, "ap_proxy_define_worker");
    *(void **)&share_worker = dlsym(RTLD_DEFAULT, "ap_proxy_share_worker");
    *(void **)&init_worker = dlsym(RTLD_DEFAULT, "ap_proxy_initialize_worker");
    *(void **)&sync_balancer = dlsym(RTLD_DEFAULT, "ap_proxy_sync_balancer");
    *(void **)&get_worker = dlsym(RTLD_DEFAULT, "ap_proxy_get_worker");
    *(void **)&reg = dlsym(RTLD_DEFAULT, "proxy_hook_pre_request");
    proxy_hooked = reg != NULL;
    if (reg) {
        reg(sc_proxy_pre_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    }
    /* ahead of mod_proxy_balancer's, which ends the hook (it runs the first) */
    *(void **)&post_reg = dlsym(RTLD_DEFAULT, "proxy_hook_post_request");
    if (post_reg) {
        post_reg(sc_proxy_post_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    }
    ap_hook_check_config(sc_balancer_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    *(void **)&sreg = dlsym(RTLD_DEFAULT, "proxy_hook_scheme_handler");
    *(void **)&run_scheme = dlsym(RTLD_DEFAULT, "proxy_run_scheme_handler");
    if (sreg && run_scheme) {
        sreg(sc_replay_scheme_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
        ap_register_output_filter(SC_REPLAY_FILTER, replay_filter, NULL, AP_FTYPE_RESOURCE);
        /* create_req is one of proxy's optional hooks (aprutil's registry) */
        APR_OPTIONAL_HOOK(proxy, create_req, sc_inflight_create_req, NULL, NULL,
                          APR_HOOK_MIDDLE);
        ap_hook_child_init(sc_inflight_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    }
    return proxy_hooked;
}

const char *sc_balancer_check(void)
{
    if (!proxy_hooked) {
        return "needs mod_proxy, loaded before mod_session_cluster (LoadModule "
               "proxy_module first)";
    }
    if (!ap_find_linked_module("mod_proxy_balancer.c")) {
        return "needs mod_proxy_balancer (LoadModule proxy_balancer_module)";
    }
    return NULL;
}

const char *sc_balancer_worker_name(proxy_worker *w)
{
    return w->s->name;
}

const char *sc_balancer_worker_route(proxy_worker *w)
{
    return w->s->route;
}

const char *sc_balancer_worker_redirect(proxy_worker *w)
{
    return w->s->redirect;
}
