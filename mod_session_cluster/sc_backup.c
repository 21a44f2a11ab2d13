/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_backup.c -- BackupManager (sc_backup.h; docs/design/backup-manager.md
 * says what Tomcat's does and section 6, with its "As built", what this one
 * does).
 *
 * Roles live in the store's location table (sc_store.h), written here only.
 * Session messages that change data (FULL, DELTA, REMOVE, EXPIRE, TOUCH,
 * REBIND, GET_SESSION) are applied by DeltaManager's handlers
 * (sc_dm_on_message); this file decides where they go and keeps the
 * locations, and handles its own messages (LOCATE, FETCH, NOT_HERE, OWNER,
 * GET_MAP, MAP, HERE; sc_repl.h).
 *
 * Backup choice: round robin over the ready members (not fronts) sorted by
 * route, starting after this member's own route: the k-th choice of a member
 * is the ((position of its route among them) + k)-th of that order, so that
 * each member spreads its sessions over all the others in turn, and two
 * members do not start on the same one.  Joins do not move existing backups.
 */
#include "sc_backup.h"
#include "sc_manager.h"
#include "sc_channel.h"
#include "sc_membership.h"
#include "sc_transport.h"
#include "sc_repl.h"

#include <stdlib.h>

APLOG_USE_MODULE(session_cluster);

#define BK_SCAN_BATCH 512             /* locations looked at per tick (losses, joins) */
#define BK_MAP_BATCH 1000             /* locations looked at per MAP message, at most */
#define BK_MAP_PER_TICK 4             /* MAP messages per tick and joiner, at most */
#define BK_SAMPLES 1024               /* fetch latencies kept for p50/p99 */
#define BK_SCAN_EVERY_S 5             /* a full look at the locations at least this often */

/* A fetch in progress: a child waits for it. */
typedef struct bk_fetch {
    apr_uint64_t req;
    char id[SC_SID_MAX];
    char target[2][SC_LOC_ROUTE_LEN]; /* backup, then primary */
    int next;                         /* the next target to ask */
    char asked[SC_LOC_ROUTE_LEN];     /* the member asked now */
    apr_time_t asked_at;
    sc_conn *ipc;
    apr_uint64_t ipc_seq;
    apr_time_t started, deadline;
    struct bk_fetch *next_f;
} bk_fetch;

/* The locations being sent to a joining member. */
typedef struct bk_map_out {
    sc_peer *to;
    apr_uint32_t cursor;
    apr_uint32_t sent;
    struct bk_map_out *next;
} bk_map_out;

/* BackupManager's own state (one engine per process). */
static struct {
    bk_fetch *fetches;
    apr_uint64_t next_req;
    bk_map_out *maps;
    sc_peer *map_from;                /* joining: the member asked for the map */
    apr_time_t map_wanted;            /* joining since */
    int map_saw_ready;                /* joining: a ready member was seen */
    apr_time_t map_asked;
    int map_failed_logged;
    /* members that could hold data: their routes, at the last look */
    char known[SC_MAX_MEMBERS][SC_LOC_ROUTE_LEN];
    int nknown;
    int scanning;                     /* a look at every location is under way */
    apr_uint32_t scan_cursor;
    apr_uint64_t scan_replacing;
    apr_time_t next_scan, next_sweep;
    long sweeps;
    apr_uint64_t samples[BK_SAMPLES];
    apr_uint32_t nsamples;
    int repaired;                     /* the location table taken over */
} bk;

int sc_bk_active(const sc_engine *e)
{
    return e->set && e->set->backup_manager && e->store && !e->observer;
}

static long rpc_ms(const sc_engine *e)
{
    long ms = e->set->rpc_timeout_ms > 0 ? e->set->rpc_timeout_ms : 15000;
    /* a child waits for the engine's answer sendTimeout + 2 s (sc_client.c):
     * a fetch answers before that */
    long child = e->set->send_timeout_ms + 1000;
    return child > 0 && child < ms ? child : ms;
}

/* ---- members ---- */

static int serving(const sc_peer *p)
{
    return p->view == SC_VIEW_ALIVE && !p->observer
           && (p->hb_state == SC_MS_READY || p->hb_state == SC_MS_DRAINING);
}

/* A member holding data can still be asked: alive, or announced a restart. */
static int reachable_route(sc_engine *e, const char *route)
{
    sc_peer *p;
    if (!route || !*route) {
        return 0;
    }
    p = sc_mb_find_route(e, route);
    return p && !p->observer
           && (p->view == SC_VIEW_ALIVE || p->view == SC_VIEW_SUSPECT
               || p->view == SC_VIEW_RESTARTING);
}

/* A member this engine has not heard from yet, within dropTime of its start:
 * it may hold data (the others named it, and a joining member hears its
 * members one by one), so it is not taken for gone.  A member's route is
 * learnt when it is first heard (a static member's, a multicast one's whose
 * entry comes with its first heartbeat): a route no member here has counts
 * as such a member.  A location naming it is not an orphan, nor is its
 * backup's copy promoted, nor a new backup picked, until it is heard or
 * dropTime passes; then the next look at the locations (on a membership
 * change, or every BK_SCAN_EVERY_S) settles it as for a member gone. */
static int not_heard_yet(sc_engine *e, const char *route, apr_time_t now)
{
    sc_peer *p;
    if (!route || !*route || e->set->drop_ms <= 0
        || now - e->started >= apr_time_from_msec(e->set->drop_ms)) {
        return 0;
    }
    p = sc_mb_find_route(e, route);
    return !p || (!p->observer && p->view == SC_VIEW_CONFIGURED);
}

static int route_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The next backup by the round robin (sc_bk_choice_text), not 'avoid'
 * (may be NULL); NULL when no member can take one. */
static sc_peer *pick_backup(sc_engine *e, const char *avoid)
{
    const char *r[SC_MAX_MEMBERS];
    sc_peer *p;
    int n = 0, pos = 0, i, tries;
    for (p = e->peers; p && n < SC_MAX_MEMBERS; p = p->next) {
        if (serving(p) && p->hb_state == SC_MS_READY && p->route[0]
            && strcmp(p->route, e->route) != 0) {
            r[n++] = p->route;
        }
    }
    if (!n) {
        return NULL;
    }
    qsort(r, (size_t)n, sizeof(r[0]), route_cmp);
    while (pos < n && strcmp(r[pos], e->route) < 0) {
        pos++;
    }
    for (tries = 0; tries < n; tries++) {
        i = (int)((pos + e->store->hdr->bk_rr++) % (apr_uint64_t)n);
        if (!avoid || strcmp(r[i], avoid) != 0 || n == 1) {
            if (avoid && n == 1 && !strcmp(r[i], avoid)) {
                return NULL;
            }
            return sc_mb_find_route(e, r[i]);
        }
    }
    return NULL;
}

/* ---- sending ---- */

static int send_peer(sc_engine *e, sc_peer *p, const sc_buf *b)
{
    if (!p->out) {
        sc_tr_connect(e, p);
    }
    if (!p->out) {
        return -1;
    }
    return sc_tr_send_frame(e, p->out, SC_MSG_DATA, 0, ++e->seq, b->buf, b->len);
}

/* A location to every member but self (and 'except'). */
static void tell_location(sc_engine *e, const char *id, apr_uint64_t epoch,
                          const char *primary, const char *backup, sc_peer *except)
{
    sc_buf b;
    sc_loc_item it;
    it.id = id;
    it.epoch = epoch;
    it.primary = primary;
    it.backup = backup ? backup : "";
    sc_buf_init(&b, e->tmp, 128);
    sc_msg_list_open(&b, SC_REPL_LOCATE);
    sc_msg_locate_add(&b, &it);
    sc_msg_list_close(&b, 1);
    sc_ch_broadcast(e, b.buf, b.len, except);
}

/* The whole session, as held here, to p (a new backup).  ipc: a child waits
 * for p's ACK of it (or NULL). */
static int send_full(sc_engine *e, sc_peer *p, const char *id, sc_conn *ipc,
                     apr_uint64_t ipc_seq, int acked)
{
    sc_sess_copy s;
    sc_buf b;
    if (sc_store_get(e->store, e->tmp, id, 0, &s) != SC_STORE_OK) {
        if (ipc && acked) {
            sc_ch_answer(e, ipc, ipc_seq, 0, 0, "the session is no longer here");
        }
        return -1;
    }
    sc_buf_init(&b, e->tmp, s.data_len + 256);
    sc_msg_full_encode(&b, &s);
    e->store->hdr->bk_copies++;
    if (ipc) {
        if (acked) {
            sc_ch_send_request(e, ipc, ipc_seq, p, b.buf, b.len, 1);
            return 0;
        }
    }
    return send_peer(e, p, &b);
}

/* A child's change to its backup p, as it came. */
static void forward(sc_engine *e, sc_conn *ipc, apr_uint64_t ipc_seq, sc_peer *p,
                    const unsigned char *msg, apr_size_t len, int acked)
{
    e->store->hdr->bk_copies++;
    if (acked) {
        sc_ch_send_request(e, ipc, ipc_seq, p, msg, len, 1);
    }
    else {
        sc_buf b;
        b.buf = (unsigned char *)msg;
        b.len = len;
        send_peer(e, p, &b);
    }
}

/* ---- taking a session over ---- */

/* This member becomes id's primary at 'epoch' with backup 'b' (NULL: none
 * can be had); every other member is told. */
static void become_primary(sc_engine *e, const char *id, apr_uint64_t epoch, sc_peer *b)
{
    sc_loc_set(e->store, id, SC_ROLE_PRIMARY, epoch, e->route, b ? b->route : "",
               apr_time_now());
    tell_location(e, id, epoch, e->route, b ? b->route : "", NULL);
}

/* A request is served here for a session this member backs: it takes the
 * session over (Tomcat's behaviour), with a new backup that gets the data. */
static void promote(sc_engine *e, const char *id, const sc_loc_info *l, const char *why,
                    sc_conn *ipc, apr_uint64_t ipc_seq, int acked)
{
    sc_peer *b = pick_backup(e, NULL);
    apr_uint64_t epoch = l->epoch + 1;
    e->store->hdr->bk_promotions++;
    become_primary(e, id, epoch, b);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, e->s, SCLOGNO(1501)
                 "session %s: this member is its primary now (epoch %" APR_UINT64_T_FMT
                 ", %s), backup %s", id, epoch, why, b ? b->route : "none");
    if (b) {
        send_full(e, b, id, ipc, ipc_seq, acked);
    }
    else if (ipc && acked) {
        sc_ch_answer(e, ipc, ipc_seq, 1, 0, "no member to hold a backup");
    }
}

/* ---- a child's messages ---- */

static void fetch_done(sc_engine *e, bk_fetch *f, int ok, const char *text);
static void fetch_next(sc_engine *e, bk_fetch *f);

static void start_fetch(sc_engine *e, sc_conn *ipc, apr_uint64_t ipc_seq, const char *id)
{
    sc_loc_info l;
    sc_sess_copy s;
    bk_fetch *f;
    if (sc_store_get(e->store, e->tmp, id, 0, &s) == SC_STORE_OK) {
        if (sc_loc_find(e->store, id, &l) && l.role == SC_ROLE_BACKUP) {
            /* a request for a session this member backs: it serves it now
             * (answered once its new backup has the data) */
            promote(e, s.id, &l, "a request read it here", ipc, ipc_seq, 1);
            return;
        }
        sc_ch_answer(e, ipc, ipc_seq, 1, 0, "held here");
        return;
    }
    if (!sc_loc_find(e->store, id, &l) || l.role != SC_ROLE_PROXY) {
        /* an id nobody told this member of: no traffic, never a session */
        sc_ch_answer(e, ipc, ipc_seq, 0, 0, "no location known");
        return;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        sc_ch_answer(e, ipc, ipc_seq, 0, 0, "out of memory");
        return;
    }
    f->req = ++bk.next_req;
    apr_cpystrn(f->id, id, sizeof(f->id));
    apr_cpystrn(f->target[0], l.backup, sizeof(f->target[0]));
    apr_cpystrn(f->target[1], l.primary, sizeof(f->target[1]));
    f->ipc = ipc;
    f->ipc_seq = ipc_seq;
    f->started = sc_engine_now(e);
    f->deadline = f->started + apr_time_from_msec(rpc_ms(e));
    f->next_f = bk.fetches;
    bk.fetches = f;
    fetch_next(e, f);
}

static void on_update(sc_engine *e, sc_conn *ipc, apr_uint64_t ipc_seq, const char *id,
                      const unsigned char *msg, apr_size_t len, int acked)
{
    sc_loc_info l;
    sc_peer *b;
    int known = sc_loc_find(e->store, id, &l);

    e->store->hdr->bk_updates++;
    e->store->hdr->replicated_out++;
    if (!known || l.role == SC_ROLE_NONE || l.role == SC_ROLE_PROXY) {
        /* a new session (or one whose location came after it was made here) */
        b = pick_backup(e, NULL);
        become_primary(e, id, known ? l.epoch + 1 : 1, b);
        if (!b) {
            if (acked) {
                sc_ch_answer(e, ipc, ipc_seq, 1, 0, "no member to hold a backup");
            }
            return;
        }
        if (msg[0] == SC_REPL_FULL) {
            forward(e, ipc, ipc_seq, b, msg, len, acked);
        }
        else {
            send_full(e, b, id, ipc, ipc_seq, acked);
        }
        return;
    }
    if (l.role == SC_ROLE_BACKUP) {
        promote(e, id, &l, "a request changed it here", ipc, ipc_seq, acked);
        return;
    }
    b = reachable_route(e, l.backup) ? sc_mb_find_route(e, l.backup) : NULL;
    if (b && b->view == SC_VIEW_ALIVE) {
        forward(e, ipc, ipc_seq, b, msg, len, acked);
        return;
    }
    /* its backup is gone: a new one, with the whole session */
    b = pick_backup(e, NULL);
    sc_loc_set(e->store, id, SC_ROLE_PRIMARY, l.epoch, e->route, b ? b->route : "",
               apr_time_now());
    if (!b) {
        if (acked) {
            sc_ch_answer(e, ipc, ipc_seq, 1, 0, "no member to hold a backup");
        }
        return;
    }
    if (l.backup[0]) {
        e->store->hdr->bk_replacements++;
    }
    tell_location(e, id, l.epoch, e->route, b->route, NULL);
    send_full(e, b, id, ipc, ipc_seq, acked);
}

void sc_bk_on_request(sc_engine *e, sc_conn *c, apr_uint64_t ipc_seq,
                      const unsigned char *msg, apr_size_t len, int acked)
{
    sc_rd r;
    sc_msg m;
    const char *id = NULL;

    sc_rd_init(&r, msg, len);
    if (!len || !sc_msg_decode(&r, e->tmp, &m)) {
        if (acked) {
            sc_ch_answer(e, c, ipc_seq, 0, 0, "malformed request");
        }
        return;
    }
    switch (m.type) {
    case SC_REPL_FETCH:
        start_fetch(e, c, ipc_seq, m.fetch.id);
        return;
    case SC_REPL_FULL:
        e->turn_async += !acked;      /* the next ones may gather (sc_engine.c) */
        on_update(e, c, ipc_seq, m.full.id, msg, len, acked);
        return;
    case SC_REPL_DELTA:
        e->turn_async += !acked;
        on_update(e, c, ipc_seq, m.delta.id, msg, len, acked);
        return;
    case SC_REPL_REMOVE:
        id = m.remove.id;
        break;
    case SC_REPL_EXPIRE:
        id = m.expire.id;
        break;
    default:
        break;
    }
    if (id) {
        sc_loc_del(e->store, id);
    }
    /* removals and re-bindings: every member (tombstones everywhere) */
    sc_ch_broadcast_request(e, c, ipc_seq, msg, len, acked);
}

/* ---- fetches ---- */

static void sample(sc_engine *e, apr_time_t us)
{
    apr_uint64_t sorted[BK_SAMPLES];
    apr_uint32_t n;
    bk.samples[bk.nsamples % BK_SAMPLES] = (apr_uint64_t)us;
    bk.nsamples++;
    n = bk.nsamples < BK_SAMPLES ? bk.nsamples : BK_SAMPLES;
    memcpy(sorted, bk.samples, n * sizeof(sorted[0]));
    {
        /* insertion sort: at most BK_SAMPLES, once per fetch */
        apr_uint32_t i, j;
        for (i = 1; i < n; i++) {
            apr_uint64_t v = sorted[i];
            for (j = i; j > 0 && sorted[j - 1] > v; j--) {
                sorted[j] = sorted[j - 1];
            }
            sorted[j] = v;
        }
    }
    e->store->hdr->bk_fetch_p50_us = sorted[(n - 1) / 2];
    e->store->hdr->bk_fetch_p99_us = sorted[(n - 1) * 99 / 100];
}

static void fetch_unlink(bk_fetch *f)
{
    bk_fetch **pp;
    for (pp = &bk.fetches; *pp; pp = &(*pp)->next_f) {
        if (*pp == f) {
            *pp = f->next_f;
            return;
        }
    }
}

static void fetch_done(sc_engine *e, bk_fetch *f, int ok, const char *text)
{
    fetch_unlink(f);
    sc_ch_answer(e, f->ipc, f->ipc_seq, ok, (double)(sc_engine_now(e) - f->started) / 1000.0,
                 text);
    free(f);
}

/* Asks the next member that may hold the session; none left: not here. */
static void fetch_next(sc_engine *e, bk_fetch *f)
{
    while (f->next < 2) {
        const char *route = f->target[f->next++];
        sc_peer *p;
        sc_buf b;
        sc_msg_fetch m;
        if (!route[0] || !strcmp(route, e->route) || !reachable_route(e, route)) {
            continue;
        }
        if (f->next == 2 && !strcmp(route, f->target[0])) {
            continue;
        }
        p = sc_mb_find_route(e, route);
        m.req = f->req;
        m.id = f->id;
        m.dead = 0;
        sc_buf_init(&b, e->tmp, 128);
        sc_msg_fetch_encode(&b, &m);
        if (send_peer(e, p, &b) == 0) {
            apr_cpystrn(f->asked, route, sizeof(f->asked));
            f->asked_at = sc_engine_now(e);
            return;
        }
    }
    e->store->hdr->bk_fetch_not_here++;
    fetch_done(e, f, 0, "not here: no member that holds it has it");
}

static bk_fetch *fetch_by_req(apr_uint64_t req)
{
    bk_fetch *f;
    for (f = bk.fetches; f; f = f->next_f) {
        if (f->req == req) {
            return f;
        }
    }
    return NULL;
}

static void on_here(sc_engine *e, sc_conn *c, sc_msg_here *h)
{
    bk_fetch *f = fetch_by_req(h->req);
    sc_loc_info l;
    sc_buf b;
    sc_sess_copy s;
    sc_peer *bp = NULL;
    apr_uint64_t epoch;
    int from_backup;

    if (!f || !sc_store_same(f->id, h->s.id) || strcmp(c->peer->route, f->asked) != 0) {
        return;                       /* late, or not ours: ignored */
    }
    /* stored as any copy from a member (times bounded, the stamp's rule) */
    sc_buf_init(&b, e->tmp, h->s.data_len + 256);
    sc_msg_full_encode(&b, &h->s);
    sc_dm_on_message(e, c, b.buf, b.len, 0);
    if (sc_store_get(e->store, e->tmp, h->s.id, 0, &s) != SC_STORE_OK) {
        e->store->hdr->bk_fetch_failed++;
        fetch_done(e, f, 0, "the session fetched could not be stored here");
        return;
    }
    sc_loc_find(e->store, f->id, &l);
    epoch = (l.epoch > h->epoch ? l.epoch : h->epoch) + 1;
    from_backup = !strcmp(c->peer->route, f->target[0]);
    if (from_backup) {
        sc_msg_owner o;
        bp = c->peer;
        o.id = s.id;
        o.epoch = epoch;
        o.primary = e->route;
        sc_buf_init(&b, e->tmp, 128);
        sc_msg_owner_encode(&b, &o);
        send_peer(e, bp, &b);
        sc_loc_set(e->store, s.id, SC_ROLE_PRIMARY, epoch, e->route, bp->route,
                   apr_time_now());
        tell_location(e, s.id, epoch, e->route, bp->route, bp);
    }
    else {
        /* the primary answered (the backup was gone or had nothing): a new
         * backup gets the data */
        bp = pick_backup(e, NULL);
        become_primary(e, s.id, epoch, bp);
        if (bp) {
            send_full(e, bp, s.id, NULL, 0, 0);
        }
    }
    e->store->hdr->bk_fetches++;
    e->store->hdr->bk_promotions++;
    sample(e, sc_engine_now(e) - f->started);
    fetch_done(e, f, 1, apr_psprintf(e->tmp, "fetched from %s", c->peer->route));
}

static void on_not_here(sc_engine *e, sc_conn *c, const sc_msg_not_here *m)
{
    bk_fetch *f = fetch_by_req(m->req);
    if (!f || strcmp(c->peer->route, f->asked) != 0) {
        return;
    }
    if (m->dead) {
        sc_loc_del(e->store, f->id);
        sc_store_remove(e->store, f->id);      /* its tombstone here too */
        e->store->hdr->bk_fetch_not_here++;
        fetch_done(e, f, 0, "not here: the session was removed");
        return;
    }
    f->asked[0] = '\0';
    fetch_next(e, f);
}

void sc_bk_forget_conn(sc_engine *e, sc_conn *c)
{
    bk_fetch *f;
    (void)e;
    /* a child's connection about to be freed: its fetches go on (their
     * session still comes here) but answer nobody */
    for (f = bk.fetches; f; f = f->next_f) {
        if (f->ipc == c) {
            f->ipc = NULL;
        }
    }
}

static void fetch_tick(sc_engine *e, apr_time_t now)
{
    bk_fetch *f, *nx;
    for (f = bk.fetches; f; f = nx) {
        nx = f->next_f;
        if (f->ipc && f->ipc->state == SC_CS_CLOSED) {
            f->ipc = NULL;
        }
        if (now >= f->deadline) {
            e->store->hdr->bk_fetch_failed++;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1502)
                         "session %s: no answer from %s within rpcTimeout (%ld ms): the "
                         "request goes on without it", f->id, f->asked[0] ? f->asked : "-",
                         rpc_ms(e));
            fetch_done(e, f, 0, "no answer within rpcTimeout");
        }
        else if (f->asked[0] && e->set->access_timeout_ms > 0 && f->next < 2
                 && now - f->asked_at > apr_time_from_msec(e->set->access_timeout_ms)) {
            /* accessTimeout: a member that does not answer is passed over for
             * the next one that may hold the session */
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1512)
                         "session %s: %s did not answer within accessTimeout (%ld ms): "
                         "asking the next member that may hold it", f->id, f->asked,
                         e->set->access_timeout_ms);
            f->asked[0] = '\0';
            fetch_next(e, f);
        }
    }
}

/* ---- other members' messages ---- */

/* May a route from another member's message be named in the location
 * table: this member's, the sender's or a member's it knows (never any
 * route-shaped text: the table has SC_LOC_ROUTES places). */
static int route_known(sc_engine *e, const sc_peer *from, const char *route)
{
    return !strcmp(route, e->route) || (from && !strcmp(route, from->route))
           || sc_mb_find_route(e, route) != NULL;
}

/* The primary a location here names: this member when it is primary. */
static const char *known_primary(const sc_engine *e, const sc_loc_info *l)
{
    return l->role == SC_ROLE_PRIMARY ? e->route : l->primary;
}

/* Does a claim (epoch, primary) lose to the location known here?  Claims are
 * ordered by epoch, then, at one epoch, by the primary's route (the higher
 * keeps it): every member settles two equal claims the same way, whichever
 * it hears first.  A claim of the primary known here is never older news at
 * its own epoch (it replaces its backup at the same epoch). */
static int claim_loses(const sc_engine *e, const sc_loc_info *l, apr_uint64_t epoch,
                       const char *primary)
{
    const char *cur = known_primary(e, l);
    if (epoch != l->epoch) {
        return epoch < l->epoch;
    }
    return cur[0] && strcmp(cur, primary) > 0;
}

/* This member holds session id's backup copy from now on (role: what the
 * location said before).  An access it served before, as the session's
 * primary, and that the sweep has not looked at yet, is no read of the
 * backup's copy: the sweep would take the session over for it (a second
 * takeover, a new backup) right after another member took it. */
static void backup_from_now(sc_engine *e, const char *id, int role)
{
    if (role != SC_ROLE_BACKUP) {
        sc_store_untouch(e->store, id);
    }
}

/* A location from another member: the higher epoch wins. */
static void take_location(sc_engine *e, const sc_peer *from, const sc_loc_item *in,
                          int asked_map)
{
    sc_loc_info l;
    sc_sess_copy s;
    sc_loc_item item = *in, *it = &item;
    int known, held;
    /* the map this member asked for, as it joins, names members it may not
     * have heard yet (it asked the first ready member it heard): taken as
     * the sender knows them */
    if (!it->primary[0] || (!asked_map && !route_known(e, from, it->primary))) {
        return;                       /* a primary nobody here knows of */
    }
    if (it->backup[0] && !asked_map && !route_known(e, from, it->backup)) {
        it->backup = "";              /* the primary will do */
    }
    known = sc_loc_find(e->store, it->id, &l);
    if (known && claim_loses(e, &l, it->epoch, it->primary)) {
        return;                       /* older news, or an equal claim that loses */
    }
    if (sc_store_dead(e->store, it->id)) {
        return;
    }
    if (!strcmp(it->primary, e->route)) {
        if (known && l.role == SC_ROLE_PRIMARY) {
            return;                   /* what this member knows already */
        }
        /* this member is named primary of a session it is not primary of
         * (a map from a member that missed a change): it keeps what it has */
        if (!known) {
            sc_loc_set(e->store, it->id, SC_ROLE_PROXY, it->epoch, it->primary,
                       it->backup, apr_time_now());
        }
        return;
    }
    held = sc_store_get(e->store, e->tmp, it->id, 0, &s) == SC_STORE_OK;
    if (held && known && l.role == SC_ROLE_PRIMARY && it->epoch == l.epoch) {
        /* the same epoch claimed by two: the higher route keeps it, also when
         * the other names this member its backup (else each could give way
         * to the other) */
        if (strcmp(e->route, it->primary) > 0) {
            return;
        }
    }
    if (!strcmp(it->backup, e->route)) {
        if (held) {
            backup_from_now(e, it->id, known ? l.role : SC_ROLE_NONE);
        }
        sc_loc_set(e->store, it->id, held ? SC_ROLE_BACKUP : SC_ROLE_PROXY, it->epoch,
                   it->primary, it->backup, apr_time_now());
        return;
    }
    if (held) {
        /* another member serves it now: the data goes (it has it and its
         * backup has it) */
        sc_store_drop(e->store, it->id);
    }
    sc_loc_set(e->store, it->id, SC_ROLE_PROXY, it->epoch, it->primary, it->backup,
               apr_time_now());
}

static void on_owner(sc_engine *e, const sc_peer *from, const sc_msg_owner *o)
{
    sc_loc_info l;
    sc_sess_copy s;
    int known, held;
    if (!route_known(e, from, o->primary)) {
        return;                       /* (the taker sends it: its own route) */
    }
    known = sc_loc_find(e->store, o->id, &l);
    if (known && claim_loses(e, &l, o->epoch, o->primary)) {
        return;                       /* a higher claim is known here */
    }
    held = sc_store_get(e->store, e->tmp, o->id, 0, &s) == SC_STORE_OK;
    if (held) {
        backup_from_now(e, o->id, known ? l.role : SC_ROLE_NONE);
    }
    sc_loc_set(e->store, o->id, held ? SC_ROLE_BACKUP : SC_ROLE_PROXY,
               o->epoch, o->primary, e->route, apr_time_now());
}

static void on_fetch(sc_engine *e, sc_conn *c, const sc_msg_fetch *f)
{
    sc_sess_copy s;
    sc_buf b;
    if (sc_store_get(e->store, e->tmp, f->id, 0, &s) == SC_STORE_OK) {
        sc_msg_here h;
        sc_loc_info l;
        memset(&l, 0, sizeof(l));
        h.req = f->req;
        h.epoch = sc_loc_find(e->store, f->id, &l) ? l.epoch : 0;
        h.s = s;
        if (l.role == SC_ROLE_BACKUP && c->peer) {
            /* the asker takes it over (its OWNER follows) at h.epoch + 1:
             * this member records that epoch now, so that it does not
             * promote itself meanwhile (one takeover, one new epoch), and so
             * that a second member fetching at once is answered with it and
             * becomes primary one higher: concurrent takeovers end with
             * distinct epochs, the later one winning everywhere (its OWNER
             * here, its LOCATE elsewhere), instead of two primaries at one */
            sc_loc_set(e->store, f->id, SC_ROLE_BACKUP, l.epoch + 1, c->peer->route,
                       e->route, apr_time_now());
        }
        sc_buf_init(&b, e->tmp, s.data_len + 256);
        sc_msg_here_encode(&b, &h);
    }
    else {
        /* never a new session: an id this member does not hold is answered so */
        sc_msg_not_here n;
        n.req = f->req;
        n.id = f->id;
        n.dead = sc_store_dead(e->store, f->id);
        sc_buf_init(&b, e->tmp, 128);
        sc_msg_not_here_encode(&b, &n);
    }
    sc_tr_send_frame(e, c, SC_MSG_DATA, 0, ++e->seq, b.buf, b.len);
}

static void on_get_map(sc_engine *e, sc_peer *from)
{
    bk_map_out *m;
    for (m = bk.maps; m; m = m->next) {
        if (m->to == from) {
            m->cursor = 0;            /* asked again: from the start */
            m->sent = 0;
            return;
        }
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        return;
    }
    m->to = from;
    m->next = bk.maps;
    bk.maps = m;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1503)
                 "%s asks for the session locations (joining)", from->route);
}

typedef struct {
    sc_engine *e;
    sc_buf *b;
    apr_uint32_t n;
    apr_size_t max;                   /* bytes a MAP message may have */
} map_ctx;

/* The byte bound of a MAP message: what the Receiver's maxMessageSize
 * carries (less room for the frame), 64 KiB at most, as DeltaManager's
 * blocks. */
static apr_size_t map_max(const sc_engine *e)
{
    apr_size_t msg = e->set->max_message_size > 512
                     ? (apr_size_t)e->set->max_message_size - 256 : 256;
    return msg < 64 * 1024 ? msg : 64 * 1024;
}

static int map_add(void *ctx, const char *base, const sc_loc_info *l)
{
    map_ctx *mc = ctx;
    sc_loc_item it;
    const char *pr = l->role == SC_ROLE_PRIMARY ? mc->e->route : l->primary;
    const char *bu = l->role == SC_ROLE_BACKUP ? mc->e->route : l->backup;
    if (!pr[0]) {
        return 1;                     /* nobody known to hold it */
    }
    it.id = apr_pstrcat(mc->e->tmp, base, ".", pr, NULL);
    if (!sc_sid_valid(it.id)) {
        return 1;
    }
    if (mc->n && mc->b->len + 1 + strlen(it.id) + 8 + 1 + strlen(pr) + 1 + strlen(bu)
                 > mc->max) {
        return 0;                     /* full: this one opens the next message */
    }
    it.epoch = l->epoch;
    it.primary = pr;
    it.backup = bu;
    sc_msg_locate_add(mc->b, &it);
    mc->n++;
    return 1;
}

static void maps_tick(sc_engine *e)
{
    bk_map_out *m, **pp = &bk.maps;
    while ((m = *pp)) {
        int k;
        if (m->to->view != SC_VIEW_ALIVE) {
            *pp = m->next;
            free(m);
            continue;
        }
        for (k = 0; k < BK_MAP_PER_TICK && m->cursor < e->store->hdr->loc_size; k++) {
            sc_buf b;
            map_ctx mc;
            sc_conn *c = m->to->out;
            if (c && (c->state != SC_CS_OPEN || c->wlen > c->woff)) {
                /* the next message once the last one is written (a joiner
                 * that reads slowly does not fill this member's memory) */
                break;
            }
            mc.max = map_max(e);
            sc_buf_init(&b, e->tmp, mc.max + 64);
            sc_msg_list_open(&b, SC_REPL_MAP);
            mc.e = e;
            mc.b = &b;
            mc.n = 0;
            m->cursor = sc_loc_each_from(e->store, m->cursor, BK_MAP_BATCH, map_add, &mc);
            if (mc.n) {
                sc_msg_list_close(&b, mc.n);
                send_peer(e, m->to, &b);
                m->sent += mc.n;
            }
        }
        if (m->cursor >= e->store->hdr->loc_size) {
            sc_buf b;
            sc_msg_complete c;
            c.total = m->sent;
            sc_buf_init(&b, e->tmp, 16);
            sc_msg_complete_encode(&b, &c);
            send_peer(e, m->to, &b);
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1504)
                         "%u session location(s) sent to %s", m->sent, m->to->route);
            *pp = m->next;
            free(m);
            continue;
        }
        pp = &m->next;
    }
}

/* A change (FULL, DELTA) from 'from' that must not be applied here: this
 * member knows of a primary other than the sender (its own claim lost, or
 * was overtaken: a member that took the session over after it).  A
 * primary's LOCATE naming this member backup comes before its data on the
 * same connection, so a sender that still serves the session is the
 * primary known here by the time its data arrives; data from one that no
 * longer is would make this member a backup nobody names, holding a copy
 * under a claim (sender, epoch known here) nobody made.  0: apply it. */
static int stale_change(sc_engine *e, const sc_peer *from, const sc_msg *m)
{
    sc_loc_info l;
    const char *id;
    if (m->type != SC_REPL_FULL && m->type != SC_REPL_DELTA) {
        return 0;
    }
    id = m->type == SC_REPL_FULL ? m->full.id : m->delta.id;
    if (!from || !sc_loc_find(e->store, id, &l) || l.role == SC_ROLE_PRIMARY
        || l.role == SC_ROLE_NONE || !l.primary[0]) {
        return 0;                     /* nothing known, or a copy back to the primary */
    }
    return strcmp(l.primary, from->route) != 0;
}

/* After DeltaManager applied a change from 'from': where the session is. */
static void after_dm(sc_engine *e, sc_peer *from, const sc_msg *m)
{
    sc_loc_info l;
    sc_sess_copy s;
    const char *id;
    int known;
    switch (m->type) {
    case SC_REPL_FULL:
    case SC_REPL_DELTA:
        id = m->type == SC_REPL_FULL ? m->full.id : m->delta.id;
        if (sc_store_get(e->store, e->tmp, id, 0, &s) != SC_STORE_OK) {
            return;
        }
        known = sc_loc_find(e->store, id, &l);
        if (known && l.role == SC_ROLE_PRIMARY) {
            /* a copy sent back to the primary (a concurrent version under the
             * conflict rule): it stays primary; who serves a session is
             * settled by locations (LOCATE, OWNER), never by data */
            return;
        }
        backup_from_now(e, id, known ? l.role : SC_ROLE_NONE);
        sc_loc_set(e->store, id, SC_ROLE_BACKUP, known ? l.epoch : 1, from->route,
                   e->route, apr_time_now());
        return;
    case SC_REPL_REMOVE:
        sc_loc_del(e->store, m->remove.id);
        return;
    case SC_REPL_EXPIRE:
        sc_loc_del(e->store, m->expire.id);
        return;
    default:
        return;
    }
}

void sc_bk_on_data_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                         const unsigned char *payload)
{
    int ack_now = 1;
    unsigned type = h->length ? payload[0] : 0;
    if (!c->peer) {
        sc_tr_bad_frame(e, c, "DATA before HELLO");
        return;
    }
    if (h->length > 0 && type >= SC_REPL_LOCATE && type < SC_REPL_COUNT) {
        sc_rd r;
        sc_msg m;
        sc_rd_init(&r, payload, h->length);
        e->store->hdr->replicated_in++;
        if (!sc_msg_decode(&r, e->tmp, &m)) {
            sc_tr_bad_frame(e, c, apr_pstrcat(e->tmp, "malformed ", sc_msg_name(type),
                                              NULL));
            return;
        }
        switch (m.type) {
        case SC_REPL_LOCATE:
        case SC_REPL_MAP: {
            apr_uint32_t i;
            for (i = 0; i < m.locate.n; i++) {
                take_location(e, c->peer, &m.locate.items[i],
                              m.type == SC_REPL_MAP && c->peer == bk.map_from);
            }
            break;
        }
        case SC_REPL_FETCH:
            on_fetch(e, c, &m.fetch);
            break;
        case SC_REPL_NOT_HERE:
            on_not_here(e, c, &m.not_here);
            break;
        case SC_REPL_OWNER:
            on_owner(e, c->peer, &m.owner);
            break;
        case SC_REPL_GET_MAP:
            on_get_map(e, c->peer);
            break;
        case SC_REPL_HERE:
            on_here(e, c, &m.here);
            break;
        default:
            break;
        }
    }
    else if (h->length > 0 && type == SC_REPL_COMPLETE) {
        /* the map this member asked for is complete */
        if (c->peer == bk.map_from && e->state == SC_MS_STARTING) {
            e->state = SC_MS_READY;
            e->next_heartbeat = 0;
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1505)
                         "session locations received from %s (%u of them on its side): "
                         "this member is ready", c->peer->route,
                         h->length >= 5 ? sc_get32(payload + 1) : 0);
        }
    }
    else if (h->length > 0 && type != SC_REPL_GET_ALL && type != SC_REPL_ALL_DATA) {
        sc_rd r;
        sc_msg m;
        int decoded;
        sc_rd_init(&r, payload, h->length);
        decoded = type < SC_REPL_COUNT && sc_msg_decode(&r, e->tmp, &m);
        if (decoded && stale_change(e, c->peer, &m)) {
            const char *id = m.type == SC_REPL_FULL ? m.full.id : m.delta.id;
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, e->s, SCLOGNO(1580)
                         "session %s: %s from %s refused: another member serves it "
                         "now, as this member knows", id, sc_msg_name(m.type),
                         c->peer->route);
            if (h->flags & SC_FF_ACK) {
                sc_ch_ack(e, c->peer, c, h->seq, 0,
                          "not the primary this member knows: another took it over");
            }
            return;
        }
        ack_now = sc_dm_on_message(e, c, payload, h->length,
                                   (h->flags & SC_FF_ACK) ? h->seq : 0);
        if (c->state == SC_CS_CLOSED) {
            return;
        }
        if (decoded) {
            after_dm(e, c->peer, &m);
        }
    }
    if ((h->flags & SC_FF_ACK) && ack_now) {
        sc_ch_ack(e, c->peer, c, h->seq, 1, NULL);
    }
}

/* ---- membership changes: new backups, promotions, orphans ---- */

typedef struct {
    sc_engine *e;
    apr_time_t now;                   /* the engine's clock (sc_engine_now) */
    apr_time_t wall;                  /* the wall clock, the locations' news' */
    apr_uint32_t done;
} scan_ctx;

static int scan_one(void *ctx, const char *base, const sc_loc_info *l)
{
    scan_ctx *sx = ctx;
    sc_engine *e = sx->e;
    sc_sess_copy s;
    int p_ok, b_ok;
    const char *id;

    if (sx->done >= 64) {
        return 0;                     /* sends per tick: bounded (this one next tick) */
    }
    switch (l->role) {
    case SC_ROLE_PRIMARY:
        if (reachable_route(e, l->backup) || not_heard_yet(e, l->backup, sx->now)) {
            return 1;
        }
        if (sc_store_get(e->store, e->tmp, base, 0, &s) != SC_STORE_OK) {
            sc_loc_del(e->store, base);
            return 1;
        }
        {
            sc_peer *b = pick_backup(e, NULL);
            if (!b) {
                bk.scan_replacing++;
                return 1;
            }
            sc_loc_set(e->store, s.id, SC_ROLE_PRIMARY, l->epoch, e->route, b->route,
                       apr_time_now());
            tell_location(e, s.id, l->epoch, e->route, b->route, NULL);
            send_full(e, b, s.id, NULL, 0, 0);
            if (l->backup[0]) {
                e->store->hdr->bk_replacements++;
            }
            sx->done++;
        }
        return 1;
    case SC_ROLE_BACKUP:
        if (reachable_route(e, l->primary) || not_heard_yet(e, l->primary, sx->now)) {
            return 1;
        }
        if (sc_store_get(e->store, e->tmp, base, 0, &s) != SC_STORE_OK) {
            sc_loc_del(e->store, base);
            return 1;
        }
        /* its primary is gone: this member serves it now */
        promote(e, s.id, l, apr_psprintf(e->tmp, "its primary %s is gone", l->primary),
                NULL, 0, 0);
        sx->done++;
        return 1;
    case SC_ROLE_PROXY:
        p_ok = reachable_route(e, l->primary) || not_heard_yet(e, l->primary, sx->now);
        b_ok = reachable_route(e, l->backup) || not_heard_yet(e, l->backup, sx->now);
        if (!p_ok && !b_ok) {
            /* both holders gone: an orphan */
            sc_loc_del(e->store, base);
            return 1;
        }
        if (e->set->max_inactive_s > 0
            && sx->wall - l->news > apr_time_from_sec(2 * e->set->max_inactive_s)
            && !p_ok) {
            sc_loc_del(e->store, base);
        }
        (void)id;
        return 1;
    default:
        return 1;
    }
}

/* Which members could hold data changed (one left, or one is ready): every
 * location is looked at again, in batches. */
static void watch_members(sc_engine *e, apr_time_t now)
{
    char cur[SC_MAX_MEMBERS][SC_LOC_ROUTE_LEN];
    int n = 0, i, j, changed = 0;
    sc_peer *p;
    for (p = e->peers; p && n < SC_MAX_MEMBERS; p = p->next) {
        if (!p->observer && p->route[0]
            && (serving(p) || p->view == SC_VIEW_SUSPECT || p->view == SC_VIEW_RESTARTING)) {
            apr_cpystrn(cur[n++], p->route, SC_LOC_ROUTE_LEN);
        }
    }
    if (n != bk.nknown) {
        changed = 1;
    }
    for (i = 0; i < n && !changed; i++) {
        for (j = 0; j < bk.nknown && strcmp(cur[i], bk.known[j]) != 0; j++) {
        }
        changed = j == bk.nknown;
    }
    if (changed) {
        memcpy(bk.known, cur, sizeof(cur[0]) * (size_t)n);
        bk.nknown = n;
    }
    if ((changed || now >= bk.next_scan) && !bk.scanning) {
        bk.scanning = 1;
        bk.scan_cursor = 0;
        bk.scan_replacing = 0;
        bk.next_scan = now + apr_time_from_sec(BK_SCAN_EVERY_S);
    }
    else if (changed) {
        bk.scan_cursor = 0;           /* again from the start */
        bk.scan_replacing = 0;
    }
    if (bk.scanning) {
        scan_ctx sx;
        sx.e = e;
        sx.now = now;
        sx.wall = sc_engine_wall(e, now);
        sx.done = 0;
        bk.scan_cursor = sc_loc_each_from(e->store, bk.scan_cursor, BK_SCAN_BATCH,
                                          scan_one, &sx);
        if (bk.scan_cursor >= e->store->hdr->loc_size) {
            bk.scanning = 0;
            e->store->hdr->bk_replacing = bk.scan_replacing;
            /* routes no location names any more free their place */
            sc_loc_reclaim_routes(e->store, e->route);
        }
    }
}

/* ---- joining ---- */

/* The map cannot be had (no answer within rpcTimeout, or no ready member
 * can be reached): terminateOnStartFailure keeps this member starting (out
 * of the balancer) and it asks again; else it is ready without the map. */
static void map_failed(sc_engine *e, const char *why)
{
    if (e->set->terminate_on_start_failure) {
        if (!bk.map_failed_logged) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1506)
                         "the session locations cannot be had (%s, rpcTimeout %ld ms): "
                         "terminateOnStartFailure keeps this member starting, out of the "
                         "balancer, and it asks again", why, rpc_ms(e));
            bk.map_failed_logged = 1;
        }
        bk.map_from = NULL;
        bk.map_wanted = 0;            /* asked again */
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1507)
                 "the session locations cannot be had (%s, rpcTimeout %ld ms): this "
                 "member is ready without them (it learns them as sessions change; "
                 "terminateOnStartFailure is false)", why, rpc_ms(e));
    e->state = SC_MS_READY;
    e->next_heartbeat = 0;
}

static void ask_for_map(sc_engine *e, apr_time_t now)
{
    sc_peer *p;
    int ready = 0, alive = 0;
    if (!bk.map_wanted) {
        bk.map_wanted = now;
    }
    if (bk.map_from && bk.map_from->view == SC_VIEW_ALIVE) {
        if (now - bk.map_asked > apr_time_from_msec(rpc_ms(e))) {
            map_failed(e, apr_psprintf(e->tmp, "%s did not send them in time",
                                       bk.map_from->route));
        }
        return;
    }
    bk.map_from = NULL;
    for (p = e->peers; p; p = p->next) {
        if (p->view == SC_VIEW_ALIVE && !p->observer) {
            alive++;
            ready += p->hb_state == SC_MS_READY;
        }
        if (p->view == SC_VIEW_ALIVE && !p->observer && p->hb_state == SC_MS_READY
            && p->out && p->out->state == SC_CS_OPEN) {
            sc_buf b;
            sc_buf_init(&b, e->tmp, 8);
            sc_msg_get_map_encode(&b);
            if (send_peer(e, p, &b) == 0) {
                bk.map_from = p;
                bk.map_asked = now;
                ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1508)
                             "asking %s for the session locations", p->route);
                return;
            }
        }
    }
    if (ready) {
        bk.map_saw_ready = 1;
    }
    if (ready || (e->set->terminate_on_start_failure && bk.map_saw_ready)) {
        /* ready members, none of which can be reached now (or, with
         * terminateOnStartFailure, a ready member was seen and is gone again:
         * not an empty cluster either) */
        if (now - bk.map_wanted > apr_time_from_msec(rpc_ms(e))) {
            map_failed(e, "no ready member can be reached");
        }
        return;
    }
    /* nobody ready to ask: after two heartbeats of discovery (or at once when
     * every member heard of is starting too), this member starts the
     * cluster; with terminateOnStartFailure not before rpcTimeout, so that
     * a member not heard yet is not taken for an empty cluster */
    if (((alive && now - e->started > apr_time_from_msec(e->set->heartbeat_ms))
         || now - e->started > apr_time_from_msec(e->set->heartbeat_ms * 2))
        && (!e->set->terminate_on_start_failure
            || now - e->started > apr_time_from_msec(rpc_ms(e)))) {
        e->state = SC_MS_READY;
        e->next_heartbeat = 0;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1509)
                     "no ready member to ask for session locations (%d starting): "
                     "this member is ready", alive);
    }
}

/* ---- expiry and accesses ---- */

typedef struct {
    sc_engine *e;
    apr_time_t now;
    int expire;
    apr_array_header_t *expired, *dropped, *promote;
    apr_hash_t *touch;                /* backup route -> sc_buf* of TOUCH */
    apr_hash_t *ntouch;
} sweep_ctx;

static int sweep_one(void *ctx, const sc_sess_copy *s, int touched)
{
    sweep_ctx *sw = ctx;
    sc_engine *e = sw->e;
    sc_loc_info l;
    int known = sc_loc_find(e->store, s->id, &l);
    apr_int64_t limit = sc_store_idle_limit(e->store, s->created, s->last_access,
                                            s->max_inactive);
    if (known && l.role == SC_ROLE_BACKUP) {
        /* a backup's copy idles out at twice the limit (Tomcat's leak guard),
         * silently: its primary says when the session expires */
        if (sw->expire && limit > 0 && limit < APR_INT64_C(1) << 40
            && sc_store_idled_out(sw->now, s->last_access, 2 * limit)) {
            APR_ARRAY_PUSH(sw->dropped, const char *) = apr_pstrdup(e->tmp, s->id);
        }
        else if (touched) {
            APR_ARRAY_PUSH(sw->promote, const char *) = apr_pstrdup(e->tmp, s->id);
        }
        return 1;
    }
    if (sw->expire && sc_store_idled_out(sw->now, s->last_access, limit)) {
        APR_ARRAY_PUSH(sw->expired, const char *) = apr_pstrdup(e->tmp, s->id);
        return 1;
    }
    if (touched && known && l.role == SC_ROLE_PRIMARY && l.backup[0]) {
        sc_buf *b = apr_hash_get(sw->touch, l.backup, APR_HASH_KEY_STRING);
        apr_uint32_t *n;
        if (!b) {
            const char *k = apr_pstrdup(e->tmp, l.backup);
            b = apr_palloc(e->tmp, sizeof(*b));
            sc_buf_init(b, e->tmp, 1024);
            sc_msg_list_open(b, SC_REPL_TOUCH);
            apr_hash_set(sw->touch, k, APR_HASH_KEY_STRING, b);
            n = apr_pcalloc(e->tmp, sizeof(*n));
            apr_hash_set(sw->ntouch, k, APR_HASH_KEY_STRING, n);
        }
        n = apr_hash_get(sw->ntouch, l.backup, APR_HASH_KEY_STRING);
        sc_msg_touch_add(b, s->id, s->last_access);
        ++*n;
    }
    return 1;
}

static void sweep(sc_engine *e, apr_time_t now)
{
    sweep_ctx sw;
    apr_hash_index_t *hi;
    long every = e->set->process_expires_frequency > 0 ? e->set->process_expires_frequency : 1;
    int i;
    sw.e = e;
    sw.now = now;
    sw.expire = bk.sweeps % every == 0;
    bk.sweeps = (bk.sweeps + 1) % every;
    sw.expired = apr_array_make(e->tmp, 16, sizeof(const char *));
    sw.dropped = apr_array_make(e->tmp, 16, sizeof(const char *));
    sw.promote = apr_array_make(e->tmp, 16, sizeof(const char *));
    sw.touch = apr_hash_make(e->tmp);
    sw.ntouch = apr_hash_make(e->tmp);
    sc_store_each_due(e->store, now, sw.expire, sweep_one, &sw);
    for (hi = apr_hash_first(e->tmp, sw.touch); hi; hi = apr_hash_next(hi)) {
        const void *k;
        void *v;
        sc_peer *p;
        apr_hash_this(hi, &k, NULL, &v);
        p = sc_mb_find_route(e, k);
        if (p && p->view == SC_VIEW_ALIVE) {
            sc_buf *b = v;
            sc_msg_list_close(b, *(apr_uint32_t *)apr_hash_get(sw.ntouch, k,
                                                               APR_HASH_KEY_STRING));
            send_peer(e, p, b);
        }
    }
    for (i = 0; i < sw.expired->nelts; i++) {
        sc_msg_expire m = { APR_ARRAY_IDX(sw.expired, i, const char *) };
        sc_buf b;
        sc_loc_del(e->store, m.id);
        if (sc_store_remove(e->store, m.id) != SC_STORE_OK) {
            continue;
        }
        e->store->hdr->expired++;
        sc_buf_init(&b, e->tmp, 128);
        sc_msg_expire_encode(&b, &m);
        sc_ch_broadcast(e, b.buf, b.len, NULL);
    }
    for (i = 0; i < sw.dropped->nelts; i++) {
        const char *id = APR_ARRAY_IDX(sw.dropped, i, const char *);
        sc_loc_del(e->store, id);
        if (sc_store_drop(e->store, id) == SC_STORE_OK) {
            e->store->hdr->expired++;
        }
    }
    for (i = 0; i < sw.promote->nelts; i++) {
        const char *id = APR_ARRAY_IDX(sw.promote, i, const char *);
        sc_loc_info l;
        if (sc_loc_find(e->store, id, &l) && l.role == SC_ROLE_BACKUP) {
            promote(e, id, &l, "a request read it here", NULL, 0, 0);
        }
    }
}

/* expireSessionsOnShutdown under BackupManager: the sessions this member is
 * primary of expire on every member; the copies it backs stay with their
 * primaries, which give them a new backup when this member is gone. */
static int collect_primary(void *ctx, const sc_sess_copy *s, int touched)
{
    apr_array_header_t *ids = ctx;
    (void)touched;
    APR_ARRAY_PUSH(ids, const char *) = apr_pstrdup(ids->pool, s->id);
    return 1;
}

void sc_bk_shutdown(sc_engine *e)
{
    apr_array_header_t *ids;
    apr_uint32_t n = 0;
    int i;
    if (!e->set->expire_sessions_on_shutdown) {
        return;
    }
    ids = apr_array_make(e->tmp, 64, sizeof(const char *));
    sc_store_each_meta(e->store, collect_primary, ids, 0);
    for (i = 0; i < ids->nelts; i++) {
        sc_msg_expire m = { APR_ARRAY_IDX(ids, i, const char *) };
        sc_loc_info l;
        sc_buf b;
        if (sc_loc_find(e->store, m.id, &l) && l.role == SC_ROLE_BACKUP) {
            continue;
        }
        sc_loc_del(e->store, m.id);
        if (sc_store_remove(e->store, m.id) != SC_STORE_OK) {
            continue;
        }
        e->store->hdr->expired++;
        n++;
        sc_buf_init(&b, e->tmp, 128);
        sc_msg_expire_encode(&b, &m);
        sc_ch_broadcast(e, b.buf, b.len, NULL);
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1513)
                 "expireSessionsOnShutdown: %u session(s) this member is primary of "
                 "expired on every member as it leaves", n);
}

void sc_bk_tick(sc_engine *e, apr_time_t now)
{
    if (!bk.repaired) {
        /* the first turn of this engine, the table's only writer: a change
         * the engine before it left half made (it died inside it) must not
         * leave the table unreadable for good */
        sc_loc_repair(e->store);
        bk.repaired = 1;
    }
    if (e->state == SC_MS_STARTING) {
        ask_for_map(e, now);
    }
    else {
        bk.map_from = NULL;
        bk.map_wanted = 0;
        bk.map_saw_ready = 0;
    }
    if (bk.fetches) {
        fetch_tick(e, now);
    }
    if (bk.maps) {
        maps_tick(e);
    }
    if (e->state != SC_MS_STARTING) {
        watch_members(e, now);
    }
    if (now >= bk.next_sweep) {
        bk.next_sweep = now + apr_time_from_sec(1);
        sweep(e, sc_engine_wall(e, now));   /* sessions' times: the wall clock's */
    }
}
