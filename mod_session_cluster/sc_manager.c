/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_manager.c -- the DeltaManager's engine side: applying what other members
 * replicate, the state transfer a joining member asks for, and the sweep that
 * expires idle sessions and tells the others which sessions were used.
 *
 * Children write their own changes to the store and hand the delta to the
 * engine (sc_session.c); the engine only forwards those.
 */
#include "sc_core.h"
#include "sc_manager.h"
#include "sc_channel.h"
#include "sc_transport.h"
#include "sc_membership.h"
#include "sc_repl.h"

APLOG_USE_MODULE(session_cluster);

#define SC_TRANSFER_HIGH_WATER (1024 * 1024)   /* bytes queued to a joiner */
#define SC_HELD_MAX 4096                        /* deltas waiting for their base */
#define SC_HELD_WAIT_MS 100
#define SC_MAX_INACTIVE APR_INT64_C(2147483647)  /* s: a Java int, as Tomcat's */

static apr_uint64_t bounded_times;             /* replicas whose times were bounded */

static void bad_message(sc_engine *e, sc_conn *c, const char *what)
{
    apr_uint64_t n = ++e->shm->c.bad_frames;
    if (c->peer) {
        c->peer->c.bad_frames++;
    }
    if (n <= 10 || n % 100 == 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1260)
                     "bad session message from %s: %s; connection closed",
                     c->remote, what);
    }
    sc_tr_close(e, c, what);
}

static void send_to(sc_engine *e, sc_conn *c, sc_buf *b)
{
    sc_tr_send_frame(e, c, SC_MSG_DATA, 0, ++e->seq, b->buf, b->len);
}

/* Times a replica carries come from another member: kept within what this
 * member's own arithmetic and configuration allow (a last access or creation
 * not after now and not before 1970, a maxInactiveInterval a Java int holds,
 * as Tomcat's), so that no reader computes with absurd values.  A clock a
 * little ahead is usual and not worth a line; more than a minute is. */
static void bound_times(sc_engine *e, sc_peer *from, sc_sess_copy *s)
{
    apr_time_t now = apr_time_now();
    const char *what = NULL;
    if (s->last_access > now + apr_time_from_sec(60) || s->last_access < 0) {
        what = "a last access more than a minute ahead or before 1970";
    }
    else if (s->max_inactive > SC_MAX_INACTIVE) {
        what = "a maxInactiveInterval above 2147483647 s";
    }
    else if (s->created > now + apr_time_from_sec(60) || s->created < 0) {
        what = "a creation time more than a minute ahead or before 1970";
    }
    if (what) {
        apr_uint64_t n = ++bounded_times;
        if (n <= 10 || n % 100 == 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1340)
                         "replicated session %s from %s has %s (last access %"
                         APR_TIME_T_FMT ", created %" APR_TIME_T_FMT ", maxInactive %"
                         APR_INT64_T_FMT " s; now %" APR_TIME_T_FMT "): stored within "
                         "bounds (%" APR_UINT64_T_FMT " so far)", s->id,
                         from ? from->route : "?", what, s->last_access, s->created,
                         s->max_inactive, now, n);
        }
    }
    if (s->last_access > now) {
        s->last_access = now;
    }
    else if (s->last_access < 0) {
        s->last_access = 0;
    }
    if (s->created > now) {
        s->created = now;
    }
    else if (s->created < 0) {
        s->created = 0;
    }
    if (s->max_inactive > SC_MAX_INACTIVE) {
        s->max_inactive = SC_MAX_INACTIVE;
    }
}

/* A copy of a session removed here (its tombstone lives): from a member that
 * had not yet heard the removal when it sent it.  Refused, logged at a rate
 * limit (the first ten, then one in a hundred). */
static void dead_copy(sc_engine *e, sc_peer *from, const char *id, const char *what)
{
    static apr_uint64_t n;
    if (++n <= 10 || n % 100 == 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1385)
                     "%s of session %s from %s refused: the session was invalidated or "
                     "expired here, its id stays dead (%" APR_UINT64_T_FMT " so far)",
                     what, id, from ? from->route : "?", n);
    }
}

/* Stores a replica.  OK, or STALE when this member has that version or a
 * newer one already: it has the change; else not stored (SC1261). */
static sc_store_rc put_replica(sc_engine *e, sc_peer *from, sc_sess_copy *s)
{
    apr_uint64_t v;
    sc_store_rc rc;
    bound_times(e, from, s);
    rc = sc_store_put(e->store, s->id, s->data, s->data_len, 0, s->version,
                      s->created, s->last_access, s->max_inactive, &v);
    if (rc == SC_STORE_FULL) {
        /* at a rate limit shared with the children's lines (a flood's
         * copies), never one per copy */
        apr_uint64_t n = __atomic_load_n(&e->store->hdr->rejected_full, __ATOMIC_RELAXED);
        if (sc_store_line_due(&e->store->hdr->full_logged, n, apr_time_now())) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1433)
                         "replicated session %s not stored: the session store is full "
                         "(Manager maxActiveSessions %u) and none of the sessions looked "
                         "at is on probation; %" APR_UINT64_T_FMT " refused so far (these "
                         "lines: the first %d, then at most one every %d s)", s->id,
                         e->store->hdr->capacity, n, SC_FLOOD_LINES, SC_FLOOD_LINE_S);
        }
    }
    else if (rc == SC_STORE_TOOBIG) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1261)
                     "replicated session %s not stored: %s", s->id, sc_store_rc_text(rc));
    }
    else if (rc == SC_STORE_DEAD) {
        dead_copy(e, from, s->id, "copy");
    }
    return rc;
}

/* A message that asked for an ACK and was not applied: the sender is told
 * at once (FAIL_ACK, which every member of this protocol reads as a refusal),
 * so that its synchronous wait reports the failure instead of an ACK. */
/* This member is taking a state transfer (joining, or back from a freeze):
 * a delta it cannot apply yet is no failure of the writer's change, which
 * every member that serves has; the session comes with the transfer, or as
 * asked for (ask_session). */
static int catching_up(const sc_engine *e)
{
    return e->state == SC_MS_STARTING;
}

static int not_applied(sc_engine *e, sc_conn *c, apr_uint64_t ack_seq, const char *why)
{
    if (ack_seq) {
        sc_ch_ack(e, c->peer, c, ack_seq, 0, why);
    }
    return 0;
}

static void ask_session(sc_engine *e, sc_peer *from, sc_conn *c, const char *id)
{
    sc_msg_get_session m = { id };
    sc_buf b;
    if (!c) {
        if (!from->out) {
            sc_tr_connect(e, from);
        }
        c = from->out;
    }
    if (!c) {
        return;
    }
    sc_buf_init(&b, e->tmp, 128);
    sc_msg_get_session_encode(&b, &m);
    send_to(e, c, &b);
}

/* What became of a DELTA. */
typedef enum {
    DELTA_MALFORMED,         /* its attribute part */
    DELTA_APPLIED,           /* stored on its base */
    DELTA_HAVE,              /* this version or a newer one is here already */
    DELTA_HELD,              /* ahead of the stored version: held a moment */
    DELTA_MISSED,            /* cannot be applied: the session is asked for */
    DELTA_REFUSED,           /* the store did not take the result */
    DELTA_DEAD               /* removed here: not created again */
} delta_rc;

static delta_rc apply_delta(sc_engine *e, sc_conn *c, sc_peer *from, const sc_msg_delta *d,
                            const unsigned char *msg, apr_size_t len, int may_hold,
                            apr_uint64_t ack_seq, const char **why);

/* A held DELTA, read again (it was read once when it came). */
static int held_read(apr_pool_t *p, const sc_held *h, sc_msg_delta *d)
{
    sc_rd r;
    sc_rd_init(&r, h->msg, h->len);
    return sc_msg_delta_decode(&r, p, d);
}

static void held_free(sc_engine *e, sc_held *h)
{
    e->nheld--;
    free(h->msg);
    free(h);
}

/* After session 'id' got a new version: applies the held deltas based on it
 * (in turn, as each makes the next applicable) and answers the ones whose
 * version is here now.  Each held delta that asked for an ACK is answered:
 * ACK when its version is stored, FAIL_ACK when it turned out malformed or
 * the store refused it. */
static void drain_held(sc_engine *e, const char *id)
{
    apr_pool_t *scan = NULL;          /* the held deltas read in one pass */
    for (;;) {
        sc_held *h, **pp;
        sc_sess_copy cur;
        sc_msg_delta d;
        const char *why = NULL;
        delta_rc rc;
        for (h = e->held; h && !sc_store_same(h->id, id); h = h->next) {
        }
        if (!h || sc_store_get(e->store, e->tmp, id, 0, &cur) != SC_STORE_OK) {
            break;
        }
        if (scan) {
            apr_pool_clear(scan);
        }
        else {
            apr_pool_create(&scan, e->tmp);
        }
        for (pp = &e->held; (h = *pp); pp = &h->next) {
            if (sc_store_same(h->id, id) && held_read(scan, h, &d)
                && (d.base == cur.version || d.version <= cur.version)) {
                break;
            }
        }
        if (!h) {
            break;
        }
        *pp = h->next;
        if (d.base == cur.version) {
            rc = apply_delta(e, NULL, h->from, &d, h->msg, h->len, 0, 0, &why);
        }
        else {
            rc = DELTA_HAVE;          /* a whole copy brought it meanwhile */
        }
        if (h->ack_seq) {
            if (rc == DELTA_APPLIED || rc == DELTA_HAVE
                || (rc == DELTA_MISSED && catching_up(e))) {
                /* applied now (or, catching up, asked for): the sender's wait ends */
                sc_ch_ack(e, h->from, NULL, h->ack_seq, 1, NULL);
            }
            else {
                sc_ch_ack(e, h->from, NULL, h->ack_seq, 0,
                              rc == DELTA_MALFORMED ? "malformed delta" : why);
            }
        }
        if (rc == DELTA_MALFORMED) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1341)
                         "held delta to session %s from %s is malformed: dropped, "
                         "the session is asked for", h->id, h->from->route);
            if (h->from->view == SC_VIEW_ALIVE) {
                ask_session(e, h->from, NULL, h->id);
            }
        }
        held_free(e, h);
    }
    if (scan) {
        apr_pool_destroy(scan);
    }
}

static void held_tick(sc_engine *e, apr_time_t now)
{
    sc_held *h, **pp = &e->held;
    while ((h = *pp)) {
        if (now > h->deadline) {
            *pp = h->next;
            if (h->from->view == SC_VIEW_ALIVE) {
                ask_session(e, h->from, NULL, h->id);
            }
            if (h->ack_seq) {
                /* a member catching up has the session asked for: no failure */
                sc_ch_ack(e, h->from, NULL, h->ack_seq, catching_up(e),
                          "a version before it never came: the session is asked for");
            }
            held_free(e, h);
            continue;
        }
        pp = &h->next;
    }
}

/* A DELTA (d, read from msg): applied when its base is the stored version;
 * held a moment when it is ahead (may_hold: msg is kept); nothing to do when
 * this version is here already.  *why: what was not applied, for a refusal. */
static delta_rc apply_delta(sc_engine *e, sc_conn *c, sc_peer *from, const sc_msg_delta *d,
                            const unsigned char *msg, apr_size_t len, int may_hold,
                            apr_uint64_t ack_seq, const char **why)
{
    apr_pool_t *p = e->tmp;
    sc_sess_copy cur, s;
    int found;

    found = sc_store_get(e->store, p, d->id, 0, &cur) == SC_STORE_OK;
    if (found && cur.version == d->base) {
        sc_store_rc rc;
        const char *data = sc_msg_delta_apply(p, cur.data, d);
        if (!data) {
            return DELTA_MALFORMED;
        }
        memset(&s, 0, sizeof(s));
        apr_cpystrn(s.id, d->id, sizeof(s.id));
        s.version = d->version;
        s.created = cur.created;
        s.last_access = d->last_access;
        s.max_inactive = d->max_inactive;
        s.data = (char *)data;
        s.data_len = (apr_uint32_t)strlen(data);
        rc = put_replica(e, from, &s);
        if (rc == SC_STORE_OK || rc == SC_STORE_STALE) {
            return rc == SC_STORE_OK ? DELTA_APPLIED : DELTA_HAVE;
        }
        *why = apr_psprintf(p, "session not stored: %s", sc_store_rc_text(rc));
        return DELTA_REFUSED;
    }
    if (found && cur.version >= d->version) {
        return DELTA_HAVE;
    }
    if (!found && sc_store_dead(e->store, d->id)) {
        /* removed here: neither held nor asked for (that would bring it back) */
        __atomic_add_fetch(&e->store->hdr->dead_refused, 1, __ATOMIC_RELAXED);
        dead_copy(e, from, d->id, "delta");
        *why = "the session was invalidated or expired on this member";
        return DELTA_DEAD;
    }
    if (may_hold && e->nheld < SC_HELD_MAX) {
        sc_held *h = calloc(1, sizeof(*h));
        if (h && (h->msg = malloc(len))) {
            apr_cpystrn(h->id, d->id, sizeof(h->id));
            h->base = d->base;
            h->from = from;
            memcpy(h->msg, msg, len);
            h->len = len;
            h->deadline = apr_time_now() + apr_time_from_msec(SC_HELD_WAIT_MS);
            h->ack_seq = ack_seq;
            h->next = e->held;
            e->held = h;
            e->nheld++;
            return DELTA_HELD;
        }
        free(h);
    }
    /* a delta we cannot apply: we missed one; ask for the session */
    ask_session(e, from, c, d->id);
    *why = "a version before it is missing here: the session is asked for";
    return DELTA_MISSED;
}

/* ---- the messages: a handler per type, and the dispatcher ---- */

/* What a handler has besides its message. */
typedef struct {
    sc_engine *e;
    sc_conn *c;
    sc_peer *from;                    /* c->peer: the member that sent it */
    apr_uint64_t ack_seq;             /* its frame's number, when an ACK is waited for */
    const unsigned char *msg;         /* the message as it came (a held delta keeps it) */
    apr_size_t len;
} dm_in;

/* Each returns what sc_dm_on_message returns (sc_manager.h): 1, acknowledge
 * now; 0, held or refused (answered by then or later). */
typedef int (*dm_handler)(const dm_in *in, sc_msg *m);

static int on_full(const dm_in *in, sc_msg *m)
{
    sc_store_rc rc = put_replica(in->e, in->from, &m->full);
    if (rc != SC_STORE_OK && rc != SC_STORE_STALE) {
        return not_applied(in->e, in->c, in->ack_seq,
                           apr_psprintf(in->e->tmp, "session not stored: %s",
                                        sc_store_rc_text(rc)));
    }
    drain_held(in->e, m->full.id);
    return 1;
}

static int on_delta(const dm_in *in, sc_msg *m)
{
    const char *why = NULL;
    switch (apply_delta(in->e, in->c, in->from, &m->delta, in->msg, in->len, 1,
                        in->ack_seq, &why)) {
    case DELTA_MALFORMED:
        bad_message(in->e, in->c, "malformed DELTA");
        return 1;
    case DELTA_HELD:
        return 0;                     /* answered when applied or given up */
    case DELTA_MISSED:
        if (catching_up(in->e)) {
            return 1;                 /* acknowledged: asked for, or in the transfer */
        }
        return not_applied(in->e, in->c, in->ack_seq, why);
    case DELTA_REFUSED:
    case DELTA_DEAD:
        return not_applied(in->e, in->c, in->ack_seq, why);
    case DELTA_APPLIED:
        drain_held(in->e, m->delta.id);
        return 1;
    case DELTA_HAVE:
        break;
    }
    return 1;
}

static int on_remove(const dm_in *in, sc_msg *m)
{
    sc_store_remove(in->e->store, m->remove.id);
    return 1;
}

static int on_expire(const dm_in *in, sc_msg *m)
{
    if (sc_store_remove(in->e->store, m->expire.id) == SC_STORE_OK) {
        in->e->store->hdr->expired++;
    }
    return 1;
}

static int on_touch(const dm_in *in, sc_msg *m)
{
    apr_time_t now = apr_time_now();
    apr_uint32_t i;
    for (i = 0; i < m->touch.n; i++) {
        /* as a replica's times (bound_times): not after now, not before
         * 1970, so a clock ahead cannot keep a session from expiring */
        apr_time_t when = m->touch.last_access[i] > now ? now : m->touch.last_access[i];
        if (when > 0) {
            sc_store_touch(in->e->store, m->touch.ids[i], when);
        }
    }
    return 1;
}

static int on_get_all(const dm_in *in, sc_msg *m)
{
    sc_engine *e = in->e;
    sc_transfer_out *t;
    (void)m;
    for (t = e->transfers; t; t = t->next) {
        if (t->to == in->from) {
            t->cursor = 0;            /* asked again: start over */
            t->sent = 0;
            return 1;
        }
    }
    t = calloc(1, sizeof(*t));
    if (t) {
        t->to = in->from;
        t->next = e->transfers;
        e->transfers = t;
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1262)
                     "state transfer to %s requested", in->from->route);
    }
    return 1;
}

static int on_all_data(const dm_in *in, sc_msg *m)
{
    apr_uint32_t i;
    for (i = 0; i < m->all_data.n; i++) {
        put_replica(in->e, in->from, &m->all_data.s[i]);
        /* a delta may have come ahead of its session's copy */
        drain_held(in->e, m->all_data.s[i].id);
    }
    in->e->transfer_received += m->all_data.n;
    in->e->store->hdr->transfer_in += m->all_data.n;
    return 1;
}

static int on_complete(const dm_in *in, sc_msg *m)
{
    sc_engine *e = in->e;
    if (in->from == e->transfer_from && e->state == SC_MS_STARTING) {
        apr_time_t took = apr_time_now() - e->transfer_started;
        e->store->hdr->last_transfer_ms = apr_time_as_msec(took);
        e->store->hdr->last_transfer_count = e->transfer_received;
        e->state = SC_MS_READY;
        e->next_heartbeat = 0;         /* tell the others at once */
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1263)
                     "state transfer from %s complete: %u session(s) in %"
                     APR_TIME_T_FMT " ms; this member is ready", in->from->route,
                     m->complete.total, apr_time_as_msec(took));
    }
    return 1;
}

static int on_get_session(const dm_in *in, sc_msg *m)
{
    sc_sess_copy s;
    if (sc_store_get(in->e->store, in->e->tmp, m->get_session.id, 0, &s) == SC_STORE_OK) {
        sc_buf b;
        sc_buf_init(&b, in->e->tmp, 256 + s.data_len);
        sc_msg_full_encode(&b, &s);
        send_to(in->e, in->c, &b);
    }
    return 1;
}

static int on_rebind(const dm_in *in, sc_msg *m)
{
    /* only over the id it had there: of two members re-binding one session
     * at once, each keeps its own, and the client's cookie decides (either
     * id finds the session everywhere) */
    sc_store_rebind(in->e->store, m->rebind.new_id, m->rebind.old_id, NULL);
    return 1;
}

static int on_dead(const dm_in *in, sc_msg *m)
{
    /* a state transfer's tombstones: the ids stay dead here too, and a copy
     * that came in the transfer's blocks (its sender removed it since) or
     * that this member kept goes */
    apr_uint32_t i;
    for (i = 0; i < m->dead.n; i++) {
        sc_store_remove(in->e->store, m->dead.bases[i]);
    }
    return 1;
}

/* A message's handler by its type (sc_repl.h says how to add one). */
static const dm_handler dm_on[SC_REPL_COUNT] = {
    [SC_REPL_FULL] = on_full,
    [SC_REPL_DELTA] = on_delta,
    [SC_REPL_REMOVE] = on_remove,
    [SC_REPL_EXPIRE] = on_expire,
    [SC_REPL_TOUCH] = on_touch,
    [SC_REPL_GET_ALL] = on_get_all,
    [SC_REPL_ALL_DATA] = on_all_data,
    [SC_REPL_COMPLETE] = on_complete,
    [SC_REPL_GET_SESSION] = on_get_session,
    [SC_REPL_REBIND] = on_rebind,
    [SC_REPL_DEAD] = on_dead,
};

/* A type this member does not know: a newer member's (DEAD reaches members
 * from before tombstones so), acknowledged and ignored as before. */
static void unknown_type(sc_engine *e, sc_conn *c, unsigned type, apr_size_t len)
{
    static apr_uint64_t n;
    if (++n <= 10 || n % 100 == 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, e->s, SCLOGNO(1397)
                     "session message of unknown type %u (%" APR_SIZE_T_FMT " bytes) "
                     "from %s: acknowledged and ignored (%" APR_UINT64_T_FMT " so far)",
                     type, len, c->peer ? c->peer->route : c->remote, n);
    }
}

int sc_dm_on_message(sc_engine *e, sc_conn *c, const unsigned char *msg, apr_size_t len,
                     apr_uint64_t ack_seq)
{
    unsigned type = len ? msg[0] : 0;
    dm_in in;
    sc_msg m;
    sc_rd r;

    if (type == SC_REPL_PROBE_FILLER) {
        return 1;                     /* the page's probe: it only travels */
    }
    if (type >= SC_REPL_COUNT || !dm_on[type]) {
        unknown_type(e, c, type, len);
        return 1;
    }
    if (!c->peer) {
        bad_message(e, c, "session message before HELLO");
        return 1;
    }
    e->store->hdr->replicated_in++;
    sc_rd_init(&r, msg, len);
    if (!sc_msg_decode(&r, e->tmp, &m)) {
        bad_message(e, c, apr_pstrcat(e->tmp, "malformed ", sc_msg_name(type), NULL));
        return 1;
    }
    in.e = e;
    in.c = c;
    in.from = c->peer;
    in.ack_seq = ack_seq;
    in.msg = msg;
    in.len = len;
    return dm_on[type](&in, &m);
}

/* ---- state transfer, receiving side ---- */

static void ask_for_state(sc_engine *e, apr_time_t now)
{
    sc_peer *p;
    long timeout_s = e->set->state_transfer_timeout_s;

    if (e->transfer_from && e->transfer_from->view == SC_VIEW_ALIVE
        && e->transfer_from->hb_state == SC_MS_READY) {
        if (timeout_s > 0 && now - e->transfer_started > apr_time_from_sec(timeout_s)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1264)
                         "state transfer from %s did not complete within "
                         "stateTransferTimeout %ld s (%u session(s) received): this "
                         "member is ready without the rest", e->transfer_from->route,
                         timeout_s, e->transfer_received);
            e->state = SC_MS_READY;
            e->next_heartbeat = 0;         /* tell the others at once */
        }
        return;
    }
    for (p = e->peers; p; p = p->next) {
        if (p->view == SC_VIEW_ALIVE && !p->observer && p->hb_state == SC_MS_READY
            && p->out && p->out->state == SC_CS_OPEN) {
            sc_buf b;
            sc_buf_init(&b, e->tmp, 8);
            sc_msg_get_all_encode(&b);
            if (!e->transfer_from) {
                e->transfer_started = now;
            }
            e->transfer_from = p;
            e->transfer_received = 0;
            send_to(e, p->out, &b);
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1265)
                         "asking %s for all sessions (state transfer)", p->route);
            return;
        }
    }
    /* nobody ready to ask: after two heartbeats of discovery (or at once when
     * every member heard of is starting too), this member starts the cluster */
    {
        int alive = 0, ready = 0;
        for (p = e->peers; p; p = p->next) {
            if (p->view == SC_VIEW_ALIVE && !p->observer) {
                alive++;
                ready += p->hb_state == SC_MS_READY;
            }
        }
        if (!ready && ((alive && now - e->started > apr_time_from_msec(e->set->heartbeat_ms))
                       || now - e->started > apr_time_from_msec(e->set->heartbeat_ms * 2))) {
            e->state = SC_MS_READY;
            e->next_heartbeat = 0;         /* tell the others at once */
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1266)
                         "no ready member to receive sessions from (%d starting): this "
                         "member is ready with its own", alive);
        }
    }
}

/* ---- state transfer, sending side ---- */

typedef struct {
    sc_buf *b;
    apr_uint32_t n;
} block_ctx;

static int add_to_block(void *ctx, const sc_sess_copy *s, int touched)
{
    block_ctx *bc = ctx;
    sc_msg_all_data_add(bc->b, s);
    bc->n++;
    return 1;
}

/* The tombstones a state transfer ends with, in DEAD messages within
 * maxMessageSize: a session removed here after its block went out, or kept
 * by a member that rejoins with its store, is removed there too. */
typedef struct {
    sc_engine *e;
    sc_conn *c;
    sc_buf b;
    apr_uint32_t n;
    apr_size_t max;
} tomb_ctx;

static void tombs_flush(tomb_ctx *tc)
{
    if (tc->n) {
        sc_msg_list_close(&tc->b, tc->n);
        send_to(tc->e, tc->c, &tc->b);
    }
    tc->b.len = 0;
    sc_msg_list_open(&tc->b, SC_REPL_DEAD);
    tc->n = 0;
}

static int add_tomb(void *ctx, const char *base)
{
    tomb_ctx *tc = ctx;
    if (!sc_msg_dead_add(&tc->b, base, tc->max)) {
        tombs_flush(tc);              /* full: this one starts the next */
        sc_msg_dead_add(&tc->b, base, 0);
    }
    tc->n++;
    return 1;
}

static void send_tombstones(sc_engine *e, sc_conn *c)
{
    tomb_ctx tc;
    tc.e = e;
    tc.c = c;
    tc.n = 0;
    tc.max = e->set->max_message_size > 64 * 1024 + 256 ? 64 * 1024 : e->set->max_message_size - 256;
    sc_buf_init(&tc.b, e->tmp, tc.max + 64);
    sc_msg_list_open(&tc.b, SC_REPL_DEAD);
    sc_store_each_tomb(e->store, e->tmp, add_tomb, &tc);
    tombs_flush(&tc);
}

static void send_transfers(sc_engine *e)
{
    sc_transfer_out *t, **pp = &e->transfers;
    long block = e->set->send_all_sessions_size;
    if (block <= 0) {
        block = 1000;
    }
    while ((t = *pp)) {
        sc_conn *c = t->to->out;
        if (t->to->view != SC_VIEW_ALIVE) {
            *pp = t->next;
            free(t);
            continue;
        }
        if (!c) {
            sc_tr_connect(e, t->to);
            pp = &t->next;
            continue;
        }
        while (c->state == SC_CS_OPEN && c->wlen - c->woff < SC_TRANSFER_HIGH_WATER
               && t->cursor < e->store->hdr->capacity) {
            sc_buf b;
            block_ctx bc;
            apr_pool_t *bp;
            /* a pool per block: while the socket takes them, many blocks go
             * out in one turn of the loop, and e->tmp would keep them all */
            apr_pool_create(&bp, e->tmp);
            sc_buf_init(&b, bp, 64 * 1024);
            sc_msg_list_open(&b, SC_REPL_ALL_DATA);
            bc.b = &b;
            bc.n = 0;
            t->cursor = sc_store_each_from(e->store, bp, t->cursor, (apr_uint32_t)block,
                                           add_to_block, &bc, 0);
            sc_msg_list_close(&b, bc.n);
            if (bc.n) {
                send_to(e, c, &b);
                t->sent += bc.n;
                e->store->hdr->transfer_out += bc.n;
            }
            apr_pool_destroy(bp);
        }
        if (c->state == SC_CS_OPEN && t->cursor >= e->store->hdr->capacity) {
            sc_msg_complete m = { t->sent };
            sc_buf b;
            send_tombstones(e, c);
            sc_buf_init(&b, e->tmp, 8);
            sc_msg_complete_encode(&b, &m);
            send_to(e, c, &b);
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1267)
                         "state transfer to %s: %u session(s) sent", t->to->route,
                         t->sent);
            *pp = t->next;
            free(t);
            continue;
        }
        pp = &t->next;
    }
}

/* ---- the sweep: expiry and touches ---- */

typedef struct {
    sc_engine *e;
    apr_time_t now;
    sc_buf touch;
    apr_uint32_t ntouch;
    apr_array_header_t *expired;
    apr_array_header_t *probation;    /* idled out on probation (sc_store.h) */
} sweep_ctx;

static int sweep_one(void *ctx, const sc_sess_copy *s, int touched)
{
    sweep_ctx *sw = ctx;
    apr_int64_t limit = sc_store_idle_limit(sw->e->store, s->created, s->last_access,
                                            s->max_inactive);
    if (sc_store_idled_out(sw->now, s->last_access, limit)) {
        int probation = sw->e->store->hdr->probation_s > 0
                        && sc_store_on_probation(s->created, s->last_access);
        APR_ARRAY_PUSH(probation ? sw->probation : sw->expired, const char *)
            = apr_pstrdup(sw->e->tmp, s->id);
        return 1;
    }
    if (touched) {
        sc_msg_touch_add(&sw->touch, s->id, s->last_access);
        sw->ntouch++;
    }
    return 1;
}

static apr_uint32_t expire_ids(sc_engine *e, const apr_array_header_t *ids);

/* Sessions that saw a single request and idled out on probation: removed
 * without a tombstone and without an EXPIRE (every member expires its copy
 * from the same times; sc_store.h), so that a flood expires itself without
 * a message per session or pushing out the tombstones of invalidations.  A
 * line at a rate limit (the first, then one every SC_FLOOD_LINE_S seconds
 * with the count since). */
static void expire_probation(sc_engine *e, const apr_array_header_t *ids, apr_time_t now)
{
    static apr_uint64_t since_line;
    static apr_time_t logged;
    apr_uint32_t n = 0;
    int i;
    for (i = 0; i < ids->nelts; i++) {
        if (sc_store_drop_probation(e->store, APR_ARRAY_IDX(ids, i, const char *))
            == SC_STORE_OK) {
            n++;
        }
    }
    if (!n && !since_line) {
        return;
    }
    __atomic_add_fetch(&e->store->hdr->expired, n, __ATOMIC_RELAXED);
    __atomic_add_fetch(&e->store->hdr->probation_expired, n, __ATOMIC_RELAXED);
    since_line += n;
    if (now - logged >= apr_time_from_sec(SC_FLOOD_LINE_S)) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1434)
                     "%" APR_UINT64_T_FMT " session(s) that saw a single request "
                     "expired after probationInactiveInterval %" APR_INT64_T_FMT " s "
                     "(%" APR_UINT64_T_FMT " so far; this line at most once every %d s)",
                     since_line, e->store->hdr->probation_s,
                     e->store->hdr->probation_expired, SC_FLOOD_LINE_S);
        since_line = 0;
        logged = now;
    }
}

static void sweep(sc_engine *e, apr_time_t now)
{
    sweep_ctx sw;
    sw.e = e;
    sw.now = now;
    sw.ntouch = 0;
    sw.expired = apr_array_make(e->tmp, 16, sizeof(const char *));
    sw.probation = apr_array_make(e->tmp, 16, sizeof(const char *));
    sc_buf_init(&sw.touch, e->tmp, 4096);
    sc_msg_list_open(&sw.touch, SC_REPL_TOUCH);
    sc_store_each(e->store, e->tmp, sweep_one, &sw, 1);
    if (sw.ntouch) {
        sc_msg_list_close(&sw.touch, sw.ntouch);
        sc_ch_broadcast(e, sw.touch.buf, sw.touch.len, NULL);
    }
    expire_ids(e, sw.expired);
    expire_probation(e, sw.probation, now);
}

/* Removes the sessions named and tells every member they expired. */
static apr_uint32_t expire_ids(sc_engine *e, const apr_array_header_t *ids)
{
    apr_uint32_t n = 0;
    int i;
    for (i = 0; i < ids->nelts; i++) {
        sc_msg_expire m = { APR_ARRAY_IDX(ids, i, const char *) };
        sc_buf b;
        if (sc_store_remove(e->store, m.id) != SC_STORE_OK) {
            continue;
        }
        e->store->hdr->expired++;
        n++;
        sc_buf_init(&b, e->tmp, 128);
        sc_msg_expire_encode(&b, &m);
        sc_ch_broadcast(e, b.buf, b.len, NULL);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, e->s, SCLOGNO(1268)
                     "session %s expired", m.id);
    }
    return n;
}

static int collect_id(void *ctx, const sc_sess_copy *s, int touched)
{
    apr_array_header_t *ids = ctx;
    (void)touched;
    APR_ARRAY_PUSH(ids, const char *) = apr_pstrdup(ids->pool, s->id);
    return 1;
}

/* Manager expireSessionsOnShutdown: as Tomcat's DeltaManager does when it
 * stops, every session this member holds expires, and the other members are
 * told (so they drop them too).  Only on leaving, not when the engine is
 * replaced by a changed block, and not when the store is not ours to empty. */
apr_uint32_t sc_dm_expire_all(sc_engine *e)
{
    apr_array_header_t *ids = apr_array_make(e->tmp, 64, sizeof(const char *));
    sc_store_each(e->store, e->tmp, collect_id, ids, 0);
    return expire_ids(e, ids);
}

void sc_dm_redo_transfer(sc_engine *e)
{
    e->state = SC_MS_STARTING;
    e->transfer_from = NULL;
    e->transfer_received = 0;
}

void sc_dm_shutdown(sc_engine *e)
{
    apr_uint32_t n;
    if (!e->store || e->observer || !e->cfg->manager
        || !e->set->expire_sessions_on_shutdown) {
        return;
    }
    n = sc_dm_expire_all(e);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1279)
                 "expireSessionsOnShutdown: %u session(s) expired on every member as "
                 "this member leaves", n);
}

void sc_dm_tick(sc_engine *e, apr_time_t now)
{
    if (e->held) {
        held_tick(e, now);
    }
    if (e->state == SC_MS_STARTING) {
        ask_for_state(e, now);
    }
    if (e->transfers) {
        send_transfers(e);
    }
    if (now >= e->next_sweep) {
        e->next_sweep = now + apr_time_from_sec(1);
        sweep(e, now);
    }
}

/* DATA: a DeltaManager message (or a probe's filler), acknowledged after it
 * is applied when its sender waits for that (synchronized_ack semantics). */
void sc_dm_on_data_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                         const unsigned char *payload)
{
    int ack_now = 1;
    if (!c->peer) {
        sc_tr_bad_frame(e, c, "DATA before HELLO");
        return;
    }
    if (h->length > 0 && e->store) {
        ack_now = sc_dm_on_message(e, c, payload, h->length,
                                   (h->flags & SC_FF_ACK) ? h->seq : 0);
        if (c->state == SC_CS_CLOSED) {
            return;
        }
    }
    if ((h->flags & SC_FF_ACK) && ack_now) {
        sc_ch_ack(e, c->peer, c, h->seq, 1, NULL);
    }
}
