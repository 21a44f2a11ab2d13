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
/* A delta the sender waits for, whose base never came: its session is asked
 * for, and the copy waited for this long before the delta is refused. */
#define SC_HELD_ASKED_WAIT_MS 1000
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
 * little ahead is usual and not worth a line; more than a minute is.  (The
 * store keeps a session's creation time once it holds it: a DELTA's does
 * not change it.) */
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
    /* a sender's clock ahead of ours moves both its times back by as much,
     * so that a session used again since its creation does not read as one
     * of a single request (created == last access: on probation, which a
     * young session only is when that is so, sc_store_on_probation) */
    if (s->last_access > now) {
        apr_time_t ahead = s->last_access - now;
        s->last_access = now;
        if (s->created > 0) {
            s->created = s->created > ahead ? s->created - ahead : 0;
        }
    }
    else if (s->last_access < 0) {
        s->last_access = 0;
    }
    if (s->created > s->last_access) {
        s->created = s->last_access;
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

/* "version 7" or "version 7 (a minority's, branched from 5)", for lines. */
static const char *stamp_text(apr_pool_t *p, const sc_stamp *st)
{
    if (st->flags & SC_SF_MINOR) {
        return apr_psprintf(p, "version %" APR_UINT64_T_FMT " (written in a minority, "
                            "branched from version %" APR_UINT64_T_FMT "%s)", st->version,
                            st->fork, (st->flags & SC_SF_SETTLED) ? ", settled" : "");
    }
    return apr_psprintf(p, "version %" APR_UINT64_T_FMT, st->version);
}

/* A conflict resolved here: this member's copy gave way to a concurrent one
 * (sc_store.h, "Versions and conflicts"); counted by the store (Conflicts),
 * said at a rate limit (the first ten, then one in a hundred). */
static void conflict_line(sc_engine *e, sc_peer *from, const char *id, const sc_stamp *won,
                          const sc_stamp *lost)
{
    static apr_uint64_t n;
    if (++n <= 10 || n % 100 == 0) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1425)
                     "session %s: conflicting versions (a partition, or changes that "
                     "crossed): the copy from %s, %s, stays over this member's, %s (%"
                     APR_UINT64_T_FMT " conflict(s) here so far)", id,
                     from ? from->route : "?", stamp_text(e->tmp, won),
                     stamp_text(e->tmp, lost),
                     __atomic_load_n(&e->store->hdr->conflicts, __ATOMIC_RELAXED));
    }
}

/* Takes a copy from another member by the rule (sc_store_take): OK when it
 * is stored, STALE when this member has that version or one that stays over
 * it (*taken says which), else why it is not stored.  descends: the copy was
 * made on the version held here; kept (may be NULL): the parts of its data
 * copied from that version as read here (sc_store_take_kept). */
static sc_store_rc take_copy(sc_engine *e, sc_peer *from, sc_sess_copy *s, int descends,
                             const sc_store_kept *kept, sc_take_rc *taken)
{
    sc_stamp here;
    int conflict = 0;
    sc_store_rc rc;
    /* (the stamp replaced comes back from the take: no lookup of its own) */
    sc_take_rc t = sc_store_take_kept(e->store, s, descends, !e->minority, &conflict, &here,
                                      &rc, kept);
    if (taken) {
        *taken = t;
    }
    if (conflict) {
        sc_stamp won;
        won.version = s->version;
        won.hash = s->hash;
        won.fork = s->fork;
        won.flags = s->flags;
        sc_stamp_norm(&won);
        conflict_line(e, from, s->id, &won, &here);
    }
    switch (t) {
    case SC_TAKE_STORED:
        return SC_STORE_OK;
    case SC_TAKE_SAME:
    case SC_TAKE_LOST:
    case SC_TAKE_CONCURRENT:
        return SC_STORE_STALE;
    default:
        return rc;
    }
}

/* Stores a replica by the rule.  OK, or STALE when this member has that
 * version or one that stays over it (*taken: which; may be NULL); else not
 * stored (SC1261).  kept: as take_copy's. */
static sc_store_rc put_replica(sc_engine *e, sc_peer *from, sc_sess_copy *s, int descends,
                               const sc_store_kept *kept, sc_take_rc *taken)
{
    sc_store_rc rc;
    bound_times(e, from, s);
    rc = take_copy(e, from, s, descends, kept, taken);
    if (rc == SC_STORE_FULL) {
        /* at a rate limit shared with the children's lines (a flood's
         * copies), never one per copy */
        apr_uint64_t n = __atomic_load_n(&e->store->hdr->rejected_full, __ATOMIC_RELAXED);
        if (sc_store_line_due(&e->store->hdr->full_logged, n, apr_time_now())) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1433)
                         "replicated session %s (%u bytes) not stored: the session "
                         "store is full (%u sessions, %" APR_UINT64_T_FMT " of its %"
                         APR_UINT64_T_FMT " bytes: Manager maxStoreSize, "
                         "maxActiveSessions) and none of the sessions looked at is on "
                         "probation; %" APR_UINT64_T_FMT " refused so far (these lines: "
                         "the first %d, then at most one every %d s)", s->id, s->data_len,
                         e->store->hdr->count, sc_store_bytes_counted(e->store),
                         e->store->hdr->budget, n, SC_FLOOD_LINES, SC_FLOOD_LINE_S);
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
    DELTA_DEAD,              /* removed here: not created again */
    DELTA_CONFLICT           /* a concurrent version here stays: refused, sent back */
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
        /* on its base now; or a whole copy brought that number meanwhile,
         * which the rule may put below it (a concurrent one) */
        rc = apply_delta(e, NULL, h->from, &d, h->msg, h->len, 0, 0, &why);
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
        if (now > h->deadline && h->ack_seq && !h->asked && h->from->view == SC_VIEW_ALIVE) {
            /* the sender waits (synchronous replication), and holds every
             * version up to this one: its copy, asked for now, brings the
             * missing one (drain_held then acknowledges the delta).  A
             * version the sender never sent anywhere (written by an engine
             * that had not yet heard this member: the first moment after a
             * graceful restart) is found so, not refused. */
            ask_session(e, h->from, NULL, h->id);
            h->asked = 1;
            h->deadline = now + apr_time_from_msec(SC_HELD_ASKED_WAIT_MS);
            pp = &h->next;
            continue;
        }
        if (now > h->deadline) {
            *pp = h->next;
            if (h->from->view == SC_VIEW_ALIVE && !h->asked) {
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

/* This member's copy of id, to member 'to' (on c, else its connection): the
 * sender of a delta refused for a concurrent version here takes it. */
static void push_copy(sc_engine *e, sc_peer *to, sc_conn *c, const char *id)
{
    sc_sess_copy cur;
    sc_buf b;
    if (sc_store_get(e->store, e->tmp, id, 0, &cur) != SC_STORE_OK) {
        return;
    }
    if (!c) {
        if (!to->out) {
            sc_tr_connect(e, to);
        }
        c = to->out;
    }
    if (!c) {
        return;
    }
    cur.flags &= SC_SF_WIRE;
    sc_buf_init(&b, e->tmp, 256 + cur.data_len);
    sc_msg_full_encode(&b, &cur);
    send_to(e, c, &b);
}

/* A delta whose version cannot be applied on the copy here, both stamped:
 * the rule decides.  The writer's stays: the session is asked for (MISSED);
 * the copy here stays and the delta's version was concurrent with it: the
 * delta is refused and the copy here sent to the writer (CONFLICT); else this
 * member has that change (HAVE). */
static delta_rc resolve_delta(sc_engine *e, sc_conn *c, sc_peer *from, const sc_msg_delta *d,
                              const sc_stamp *in, const sc_stamp *here, const char **why)
{
    static apr_uint64_t n;
    int cmp = sc_stamp_cmp(in, here);
    if (cmp > 0) {
        ask_session(e, from, c, d->id);
        *why = "another version of that number is here: the writer's stays under the "
               "conflict rule, and is asked for";
        return DELTA_MISSED;
    }
    if (cmp == 0 || !sc_stamp_conflict(here, in)) {
        return DELTA_HAVE;
    }
    push_copy(e, from, c, d->id);
    *why = apr_psprintf(e->tmp, "conflict: this member holds a concurrent %s, which stays "
                        "under the conflict rule over the delta's %s (sent back to the "
                        "writer)", stamp_text(e->tmp, here), stamp_text(e->tmp, in));
    if (++n <= 10 || n % 100 == 0) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1427)
                     "delta of session %s from %s refused: %s (%" APR_UINT64_T_FMT
                     " so far)", d->id, from ? from->route : "?", *why, n);
    }
    return DELTA_CONFLICT;
}

/* A DELTA (d, read from msg): applied when its base is the stored version
 * (and, stamped, the same data); held a moment when it is ahead (may_hold:
 * msg is kept); nothing to do when this version is here already; the
 * conflict rule decides between concurrent versions (resolve_delta).  *why:
 * what was not applied, for a refusal. */
static delta_rc apply_delta(sc_engine *e, sc_conn *c, sc_peer *from, const sc_msg_delta *d,
                            const unsigned char *msg, apr_size_t len, int may_hold,
                            apr_uint64_t ack_seq, const char **why)
{
    apr_pool_t *p = e->tmp;
    sc_sess_copy cur, s;
    sc_stamp in, here;
    int found;

    in.version = d->version;
    in.hash = d->hash;
    in.flags = d->flags;
    in.fork = d->fork;
    sc_stamp_norm(&in);
    found = sc_store_get(e->store, p, d->id, 0, &cur) == SC_STORE_OK;
    if (found) {
        here.version = cur.version;
        here.hash = cur.hash;
        here.fork = cur.fork;
        here.flags = cur.flags & SC_SF_WIRE;
    }
    if (found && cur.version == d->base && (!d->base_hash || d->base_hash == cur.hash)) {
        sc_store_rc rc;
        sc_rd ar;
        const char *data;
        apr_size_t made_len;
        apr_uint32_t data_len;
        apr_uint64_t made = 0;
        apr_array_header_t *same = NULL;
        sc_store_kept kept;
        sc_rd_init(&ar, d->attrs, d->attrs_len);
        /* the result's hash made from the base's when the stamps here are
         * this member's hashes of their data (sc_store_hash_trusted): only
         * the pairs the delta changed are hashed, not the whole session */
        /* (the pairs it leaves where they were are the store's bytes while
         * it holds the version read: not compared for a write in place) */
        data = sc_repl_apply_kept(p, cur.data, &ar, cur.hash,
                                  d->hash && sc_store_hash_trusted(e->store) ? &made : NULL,
                                  &made_len, &same);
        if (!data) {
            return DELTA_MALFORMED;
        }
        data_len = (apr_uint32_t)made_len;
        if (d->hash && d->hash != (made ? made : sc_store_hash(data, data_len))) {
            /* applied here it does not give the writer's attributes: the
             * writer's copy is asked for rather than a copy of its own */
            ask_session(e, from, c, d->id);
            *why = "the delta applied here does not give the writer's session: the "
                   "session is asked for";
            return DELTA_MISSED;
        }
        memset(&s, 0, sizeof(s));
        apr_cpystrn(s.id, d->id, sizeof(s.id));
        s.version = d->version;
        s.created = cur.created;
        s.last_access = d->last_access;
        s.max_inactive = d->max_inactive;
        s.data = (char *)data;
        s.data_len = data_len;
        s.flags = in.flags;
        s.fork = in.fork;
        s.hash = d->hash;             /* checked above: the store does not hash it again */
        kept.read_slot = cur.read_slot;
        kept.read_seq = cur.read_seq;
        kept.n = same ? same->nelts : 0;
        kept.r = same ? (const sc_store_range *)same->elts : NULL;
        rc = put_replica(e, from, &s, 1, same ? &kept : NULL, NULL);
        if (rc == SC_STORE_OK || rc == SC_STORE_STALE) {
            return rc == SC_STORE_OK ? DELTA_APPLIED : DELTA_HAVE;
        }
        *why = apr_psprintf(p, "session not stored: %s", sc_store_rc_text(rc));
        return DELTA_REFUSED;
    }
    if (found && cur.version >= d->version) {
        if (cur.version == d->version
            && (d->hash ? d->hash == cur.hash : !(here.flags & SC_SF_MINOR))) {
            /* that version (a delta without a stamp: that number, not a
             * minority's) */
            return DELTA_HAVE;
        }
        return resolve_delta(e, c, from, d, &in, &here, why);
    }
    if (found && cur.version == d->base) {
        /* that number here with other data: two writes on one version */
        return resolve_delta(e, c, from, d, &in, &here, why);
    }
    if (found && sc_stamp_cmp(&in, &here) < 0 && sc_stamp_conflict(&here, &in)) {
        /* ahead, but of a branch the copy here stays over: no use waiting */
        return resolve_delta(e, c, from, d, &in, &here, why);
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
            h->deadline = sc_engine_now(e) + apr_time_from_msec(SC_HELD_WAIT_MS);
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
    sc_take_rc taken = SC_TAKE_REFUSED;
    sc_store_rc rc = put_replica(in->e, in->from, &m->full, 0, NULL, &taken);
    if (rc != SC_STORE_OK && rc != SC_STORE_STALE) {
        return not_applied(in->e, in->c, in->ack_seq,
                           apr_psprintf(in->e->tmp, "session not stored: %s",
                                        sc_store_rc_text(rc)));
    }
    if (taken == SC_TAKE_CONCURRENT) {
        /* the copy here stays over the sender's, a concurrent one: not in
         * effect here, and the sender takes this one */
        push_copy(in->e, in->from, in->c, m->full.id);
        return not_applied(in->e, in->c, in->ack_seq,
                           "conflict: this member holds a concurrent version of the "
                           "session, which stays under the conflict rule (sent back)");
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
    case DELTA_CONFLICT:
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
            t->blocks = 0;
            t->next_block = 0;
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
    /* more blocks follow on this connection: its receive buffer, grown to
     * a block's size, is kept for them (given back after COMPLETE, or after
     * a block that comes once this member is ready) */
    in->c->keep_buffers = catching_up(in->e);
    if (catching_up(in->e) && in->from == in->e->transfer_from && m->all_data.sized) {
        /* the store's new pages, made resident on another thread ahead of
         * the writes below: as many as a store holding what the sender
         * holds fills, not one more */
        sc_store_prefault(in->e->store, m->all_data.held_sessions, m->all_data.held_blocks);
    }
    for (i = 0; i < m->all_data.n; i++) {
        /* each lookup's index entry, then the slot it names, asked for two
         * and one sessions ahead: cache misses, at a million sessions */
        if (i + 2 < m->all_data.n) {
            sc_store_prefetch(in->e->store, m->all_data.s[i + 2].id, 0);
        }
        if (i + 1 < m->all_data.n) {
            sc_store_prefetch(in->e->store, m->all_data.s[i + 1].id, 1);
        }
        put_replica(in->e, in->from, &m->all_data.s[i], 0, NULL, NULL);
        /* a delta may have come ahead of its session's copy */
        drain_held(in->e, m->all_data.s[i].id);
    }
    in->e->transfer_received += m->all_data.n;
    in->e->transfer_blocks++;
    in->e->store->hdr->transfer_in += m->all_data.n;
    return 1;
}

/* The transfer is over (complete, given up, or asked again): the thread
 * readying the store's pages stops (sc_store_prefault). */
static void prefault_end(sc_engine *e)
{
    apr_uint64_t before = e->store->prefault_pages;
    if (!e->store->prefault) {
        return;
    }
    sc_store_prefault_stop(e->store);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(2100)
                 "state transfer: %" APR_UINT64_T_FMT " page(s) of the session store "
                 "made resident ahead of its writes", e->store->prefault_pages - before);
}

static int on_complete(const dm_in *in, sc_msg *m)
{
    sc_engine *e = in->e;
    in->c->keep_buffers = 0;
    if (in->from == e->transfer_from && e->state == SC_MS_STARTING) {
        apr_time_t took = sc_engine_now(e) - e->transfer_started;
        prefault_end(e);
        e->store->hdr->last_transfer_ms = apr_time_as_msec(took);
        e->store->hdr->last_transfer_count = e->transfer_received;
        e->state = SC_MS_READY;
        e->next_heartbeat = 0;         /* tell the others at once */
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1263)
                     "state transfer from %s complete: %u session(s) in %u "
                     "message(s), %" APR_TIME_T_FMT " ms; this member is ready",
                     in->from->route, m->complete.total, e->transfer_blocks,
                     apr_time_as_msec(took));
    }
    return 1;
}

static void send_tomb(sc_engine *e, sc_conn *c, const char *id);

static int on_get_session(const dm_in *in, sc_msg *m)
{
    sc_sess_copy s;
    if (sc_store_get(in->e->store, in->e->tmp, m->get_session.id, 0, &s) == SC_STORE_OK) {
        sc_buf b;
        s.flags &= SC_SF_WIRE;
        sc_buf_init(&b, in->e->tmp, 256 + s.data_len);
        sc_msg_full_encode(&b, &s);
        send_to(in->e, in->c, &b);
    }
    else if (sc_store_dead(in->e->store, m->get_session.id)) {
        /* removed here: the asker learns it (a member of this version) */
        send_tomb(in->e, in->c, m->get_session.id);
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

/* ---- anti-entropy: digests of versions, then only the differences ----
 *
 * When a member is seen alive again (after a partition, a silence, a first
 * contact) and every SC_AE_PERIOD_MS or so (jittered) with one member in
 * turn, this member sends it a digest of what it holds: every session's id
 * and stamp, every tombstone's id base and life, in DIGEST messages within
 * the Receiver's maxMessageSize, a few per turn of the loop and only while
 * the connection's queue is short.  The first one asks for the other's
 * digest in return (SC_DIGEST_ANSWER).  Each side, reading the other's:
 * asks for a session it lacks or whose copy the rule puts below the other's
 * (GET_SESSION; the answer, a stamped FULL, is taken by the rule), settles a
 * minority copy the other holds settled, and removes a session the other has
 * a tombstone for (and keeps the id dead for the life the tombstone has left
 * there).  Nothing else travels: a session the other lacks, it asks for from
 * this member's digest. */

#define SC_AE_PERIOD_MS 15000           /* the periodic exchange, plus jitter */
#define SC_AE_JITTER_MS 10000
#define SC_AE_SETTLE_MS 300             /* after a member is seen again */
#define SC_AE_ANSWER_MS 5000            /* no answer to a digest within this of our own */
#define SC_AE_PARTS_PER_TURN 8
#define SC_QUORUM_MEMORY_S 300          /* a member unheard for longer is not counted */

/* A DIGEST's size: within maxMessageSize, and 64 KB at most. */
static apr_size_t digest_max(const sc_engine *e)
{
    return e->set->max_message_size > 64 * 1024 + 256 ? 64 * 1024
                                                       : e->set->max_message_size - 256;
}

/* A DIGEST holding id's tombstone alone (the answer to a GET_SESSION of a
 * session removed here). */
static void send_tomb(sc_engine *e, sc_conn *c, const char *id)
{
    sc_buf b;
    char base[SC_TOMB_BASE];
    apr_size_t n = strcspn(id, "-.");  /* the base (sc_store.c) */
    if (n >= SC_TOMB_BASE) {
        return;
    }
    memcpy(base, id, n);
    base[n] = '\0';
    sc_buf_init(&b, e->tmp, 128);
    sc_msg_digest_open(&b);
    sc_msg_digest_add_dead(&b, base, e->store->hdr->tomb_default_s, 0);
    sc_msg_digest_close(&b, 0, 1);
    send_to(e, c, &b);
}

static int ae_serving(int state)
{
    return state == SC_MS_READY || state == SC_MS_DRAINING;
}

/* Starts a round to p unless one runs; answer: ask for p's digest back. */
static void ae_start(sc_engine *e, sc_peer *p, int answer, const char *why)
{
    sc_ae_round *r;
    for (r = e->ae_rounds; r; r = r->next) {
        if (r->to == p) {
            return;
        }
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        return;
    }
    r->to = p;
    r->flags = answer ? SC_DIGEST_ANSWER : 0;
    r->next = e->ae_rounds;
    e->ae_rounds = r;
    p->ae_last = sc_engine_now(e);
    p->ae_due = 0;
    e->store->hdr->ae_rounds++;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, e->s, SCLOGNO(1428)
                 "anti-entropy with %s: sending this member's digest (%s)", p->route, why);
}

typedef struct {
    sc_buf *b;
    apr_size_t max;
    apr_uint32_t n;
} digest_ctx;

static int digest_live(void *ctx, const char *id, const sc_stamp *st)
{
    digest_ctx *dc = ctx;
    sc_stamp w = *st;
    w.flags &= SC_SF_WIRE;
    if (!(w.flags & SC_SF_MINOR)) {
        w.fork = 0;
    }
    sc_msg_digest_add_live(dc->b, id, &w, 0);
    dc->n++;
    /* stop after an entry once the next might not fit */
    return dc->b->len + 2 + SC_SID_MAX + 25 <= dc->max;
}

typedef struct {
    sc_engine *e;
    sc_ae_round *r;
    sc_conn *c;
    sc_buf b;
    apr_size_t max;
    apr_uint32_t n;
} tombs_ctx;

static void ae_send_part(sc_engine *e, sc_ae_round *r, sc_conn *c, sc_buf *b, apr_uint32_t n,
                         int last)
{
    sc_msg_digest_close(b, r->flags | (last ? SC_DIGEST_LAST : 0), n);
    send_to(e, c, b);
    r->entries += n;
    r->parts++;
}

static int digest_dead(void *ctx, const char *base, apr_uint32_t life_s)
{
    tombs_ctx *tc = ctx;
    if (!sc_msg_digest_add_dead(&tc->b, base, life_s, tc->max)) {
        ae_send_part(tc->e, tc->r, tc->c, &tc->b, tc->n, 0);
        tc->b.len = 0;
        sc_msg_digest_open(&tc->b);
        tc->n = 0;
        sc_msg_digest_add_dead(&tc->b, base, life_s, 0);
    }
    tc->n++;
    return 1;
}

/* Sends what is due of each round: its sessions' parts while the queue to
 * its member is short (a few per turn), then its tombstones, the last part
 * marked so. */
static void ae_send(sc_engine *e)
{
    sc_ae_round *r, **pp = &e->ae_rounds;
    while ((r = *pp)) {
        sc_conn *c = r->to->out;
        int parts = 0;
        if (r->to->view != SC_VIEW_ALIVE || !ae_serving(e->state)) {
            *pp = r->next;
            free(r);
            continue;
        }
        if (!c) {
            sc_tr_connect(e, r->to);
            if (!(c = r->to->out)) {
                pp = &r->next;
                continue;
            }
        }
        while (r->phase == 0 && c->state == SC_CS_OPEN && parts < SC_AE_PARTS_PER_TURN
               && c->wlen - c->woff < SC_TRANSFER_HIGH_WATER) {
            sc_buf b;
            digest_ctx dc;
            apr_pool_t *bp;
            apr_pool_create(&bp, e->tmp);
            dc.max = digest_max(e);
            sc_buf_init(&b, bp, dc.max + 256);
            sc_msg_digest_open(&b);
            dc.b = &b;
            dc.n = 0;
            r->cursor = sc_store_each_stamp(e->store, r->cursor, e->store->hdr->capacity,
                                            digest_live, &dc);
            if (r->cursor >= e->store->hdr->capacity) {
                r->phase = 1;
            }
            if (dc.n) {
                ae_send_part(e, r, c, &b, dc.n, 0);
                parts++;
            }
            apr_pool_destroy(bp);
        }
        if (r->phase == 1 && c->state == SC_CS_OPEN
            && c->wlen - c->woff < SC_TRANSFER_HIGH_WATER) {
            tombs_ctx tc;
            tc.e = e;
            tc.r = r;
            tc.c = c;
            tc.n = 0;
            tc.max = digest_max(e);
            sc_buf_init(&tc.b, e->tmp, tc.max + 64);
            sc_msg_digest_open(&tc.b);
            sc_store_each_tomb_life(e->store, e->tmp, digest_dead, &tc);
            ae_send_part(e, r, c, &tc.b, tc.n, 1);
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, e->s, SCLOGNO(1429)
                         "anti-entropy with %s: digest sent, %u entries in %u part(s)",
                         r->to->route, r->entries, r->parts);
            *pp = r->next;
            free(r);
            continue;
        }
        pp = &r->next;
    }
}

/* A member's digest, read entry by entry (see above). */
static int on_digest(const dm_in *in, sc_msg *m)
{
    sc_engine *e = in->e;
    sc_peer *from = in->from;
    apr_uint32_t i, seen = 0, asked = 0, buried = 0;

    if (!ae_serving(e->state) || from->observer) {
        return 1;                     /* taking a state transfer: it brings all */
    }
    if ((m->digest.flags & SC_DIGEST_ANSWER)
        && (!from->ae_last
            || sc_engine_now(e) - from->ae_last > apr_time_from_msec(SC_AE_ANSWER_MS))) {
        /* not when this member sent its own just now (both saw the other
         * come back): each side reads the other's once */
        ae_start(e, from, 0, "asked for by its digest");
    }
    for (i = 0; i < m->digest.n; i++) {
        const sc_digest_entry *d = &m->digest.e[i];
        sc_stamp here, there = d->stamp;
        if (d->dead) {
            if (sc_store_bury(e->store, d->id, d->life_s) == SC_STORE_OK) {
                buried++;
                e->store->hdr->ae_removed++;
            }
            continue;
        }
        seen++;
        sc_stamp_norm(&there);
        if (sc_store_stamp(e->store, d->id, &here) == SC_STORE_OK) {
            int cmp;
            here.flags &= SC_SF_WIRE;
            cmp = sc_stamp_cmp(&there, &here);
            if (cmp == 0) {
                sc_store_settle(e->store, d->id, &there);
                continue;
            }
            if (cmp < 0) {
                continue;             /* the copy here stays: the other asks */
            }
        }
        else if (sc_store_dead(e->store, d->id)) {
            continue;                 /* the other learns it from this digest */
        }
        ask_session(e, from, NULL, d->id);
        asked++;
    }
    e->store->hdr->ae_asked += asked;
    from->ae_seen += seen;
    from->ae_asked += asked;
    from->ae_buried += buried;
    if (m->digest.flags & SC_DIGEST_LAST) {
        ap_log_error(APLOG_MARK, from->ae_asked || from->ae_buried ? APLOG_INFO : APLOG_DEBUG,
                     0, e->s, SCLOGNO(1424)
                     "anti-entropy with %s: its digest read, %u session(s); %u asked for "
                     "(missing here, or the copy here below its own under the conflict "
                     "rule), %u removed here by its tombstones", from->route,
                     from->ae_seen, from->ae_asked, from->ae_buried);
        from->ae_seen = from->ae_asked = from->ae_buried = 0;
    }
    return 1;
}

/* Who this member sees of those it knows: itself, and every member that is
 * not a front, was heard within SC_QUORUM_MEMORY_S and did not leave (said
 * goodbye) or get refused; seen when alive or suspect.  Fewer than half seen:
 * a minority (sc_store.h): its writes are stamped so, and synchronous ones
 * refused (sc_session.c). */
static void quorum(sc_engine *e, apr_time_t now)
{
    sc_store_hdr *h = e->store->hdr;
    apr_uint64_t seen = 1, known = 1;
    int minority;
    sc_peer *p;
    for (p = e->peers; p; p = p->next) {
        if (p->observer || !p->last_heard || p->view == SC_VIEW_LEFT
            || p->view == SC_VIEW_REFUSED || p->view == SC_VIEW_FREE) {
            continue;
        }
        if (p->view == SC_VIEW_ALIVE || p->view == SC_VIEW_SUSPECT) {
            seen++;
            known++;
        }
        else if (now - p->last_heard < apr_time_from_sec(SC_QUORUM_MEMORY_S)) {
            known++;
        }
    }
    minority = 2 * seen < known;
    h->quorum_seen = seen;
    h->quorum_known = known;
    if (minority == e->minority) {
        return;
    }
    e->minority = minority;
    if (minority) {
        h->minority_since = now;
        __atomic_store_n(&h->minority, 1, __ATOMIC_RELEASE);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1422)
                     "this member sees %" APR_UINT64_T_FMT " of the %" APR_UINT64_T_FMT " members it knows (itself included): "
                     "fewer than half, a minority (a partition, or the others down); its "
                     "writes are marked so, and give way to the majority's when they "
                     "conflict; with synchronous replication (channelSendOptions with "
                     "acknowledgements) it refuses writes until it sees half of them",
                     seen, known);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1423)
                     "this member sees %" APR_UINT64_T_FMT " of the %" APR_UINT64_T_FMT " members it knows again: no longer a "
                     "minority (it was for %" APR_TIME_T_FMT " s); anti-entropy reconciles "
                     "the sessions", seen, known, apr_time_sec(now - h->minority_since));
        h->minority_since = 0;
        __atomic_store_n(&h->minority, 0, __ATOMIC_RELEASE);
    }
}

/* Members seen alive again get an exchange; one member in turn every
 * period; the rounds due start, and what is due of them is sent. */
static void ae_tick(sc_engine *e, apr_time_t now)
{
    sc_peer *p, *oldest = NULL;
    if (!e->next_ae) {
        e->next_ae = now + apr_time_from_msec(SC_AE_PERIOD_MS);
    }
    for (p = e->peers; p; p = p->next) {
        if (p->view == SC_VIEW_ALIVE && p->dm_view != SC_VIEW_ALIVE && !p->observer) {
            p->ae_due = now + apr_time_from_msec(SC_AE_SETTLE_MS);
        }
        p->dm_view = p->view;
    }
    if (now >= e->next_ae) {
        for (p = e->peers; p; p = p->next) {
            if (p->view == SC_VIEW_ALIVE && !p->observer && ae_serving(p->hb_state)
                && (!oldest || p->ae_last < oldest->ae_last)) {
                oldest = p;
            }
        }
        if (oldest && !oldest->ae_due) {
            oldest->ae_due = now;
        }
        e->next_ae = now + apr_time_from_msec(SC_AE_PERIOD_MS
                                              + (apr_int64_t)((apr_uint64_t)now % SC_AE_JITTER_MS));
    }
    if (ae_serving(e->state)) {
        for (p = e->peers; p; p = p->next) {
            if (p->ae_due && now >= p->ae_due && p->view == SC_VIEW_ALIVE && !p->observer
                && ae_serving(p->hb_state)) {
                ae_start(e, p, 1, p->ae_last ? "periodic, or seen again" : "first contact");
            }
        }
    }
    if (e->ae_rounds) {
        ae_send(e);
    }
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
    [SC_REPL_DIGEST] = on_digest,
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
            prefault_end(e);
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
            e->transfer_blocks = 0;
            send_to(e, p->out, &b);
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1265)
                         "asking %s for all sessions (state transfer)", p->route);
            return;
        }
    }
    /* nobody ready to ask: after two heartbeats of discovery (or at once when
     * every member heard of is starting too), this member starts the cluster;
     * not while members the previous engine saw alive may still answer
     * (sc_channel.c, "Early changes": dropTime at most) */
    if (e->nexpect) {
        return;
    }
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
    sc_sess_copy *stamps;             /* each one's stamp (flags, fork) */
} block_ctx;

static int add_to_block(void *ctx, const sc_sess_copy *s, int touched)
{
    block_ctx *bc = ctx;
    sc_msg_all_data_add(bc->b, s);
    bc->stamps[bc->n].flags = s->flags & SC_SF_WIRE;
    bc->stamps[bc->n].fork = s->fork;
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

/* A block of a state transfer ends at the session that brings it near the
 * size of a message (maxMessageSize, less room for one more session of
 * maxSessionSize and its stamp): the next block starts with the next one. */
typedef struct {
    block_ctx *bc;
    sc_transfer_out *t;
    apr_pool_t *p;
    apr_uint32_t room;                /* stamps bc->stamps has room for */
    apr_size_t limit;                 /* bytes of a block before its last session */
} bounded_ctx;

static int add_bounded(void *ctx, const sc_sess_copy *s, int touched)
{
    bounded_ctx *bd = ctx;
    if (bd->bc->n == bd->room) {
        /* the transfer's own array (kept for its next blocks), or else one
         * of the block's pool */
        apr_size_t want = sizeof(sc_sess_copy) * bd->room * 2;
        sc_sess_copy *more = bd->t && bd->t->stamps == bd->bc->stamps
                             ? realloc(bd->t->stamps, want) : NULL;
        if (more) {
            bd->t->stamps = more;
            bd->t->nstamps = bd->room * 2;
        }
        else {
            more = apr_palloc(bd->p, want);
            memcpy(more, bd->bc->stamps, sizeof(*more) * bd->room);
        }
        bd->bc->stamps = more;
        bd->room *= 2;
    }
    add_to_block(bd->bc, s, touched);
    return bd->bc->b->len + (apr_size_t)bd->bc->n * 9 < bd->limit;
}

/* The byte bound of a block: what a message carries (maxMessageSize, less
 * the frame's room), less one session as large as the store takes. */
static apr_size_t block_bytes(const sc_engine *e)
{
    apr_size_t msg = (apr_size_t)e->set->max_message_size > 512
                     ? (apr_size_t)e->set->max_message_size - 256 : 256;
    apr_size_t one = (apr_size_t)e->set->max_session_size + SC_REPL_FULL_OVERHEAD + 9 + 64;
    return msg > one ? msg - one : 1;
}

/* Manager sendAllSessions: "true" sends the state as Tomcat's single message
 * would, in as few messages as maxMessageSize allows, one after the other;
 * "false" in blocks of sendAllSessionsSize sessions (fewer when the block
 * reaches the message size) with sendAllSessionsWaitTime ms between two of
 * them.  The engine does not sleep: a transfer waiting for its next block
 * lets the loop go on, and is taken up again by a later tick. */
static void send_transfers(sc_engine *e)
{
    sc_transfer_out *t, **pp = &e->transfers;
    int blocks = !e->set->send_all_sessions;
    long block = blocks ? e->set->send_all_sessions_size : -1;
    apr_int64_t wait_ms = blocks ? e->set->send_all_sessions_wait_ms : 0;
    apr_time_t now = sc_engine_now(e);
    if (block <= 0 || block > (long)e->store->hdr->capacity) {
        block = (long)e->store->hdr->capacity;   /* no count bound: bytes only */
    }
    while ((t = *pp)) {
        sc_conn *c = t->to->out;
        if (t->to->view != SC_VIEW_ALIVE) {
            if (c) {
                c->keep_buffers = 0;
            }
            *pp = t->next;
            free(t->buf);
            free(t->stamps);
            free(t);
            continue;
        }
        if (!c) {
            sc_tr_connect(e, t->to);
            pp = &t->next;
            continue;
        }
        /* the blocks go out one after the other, each up to maxMessageSize:
         * each is encoded in the transfer's own buffer (not a buffer grown
         * from 64 KB by doubling, copied at each step), and the connection
         * keeps its send buffer from one to the next */
        c->keep_buffers = 1;
        if (!t->buf) {
            t->cap = (apr_size_t)e->set->max_message_size + 64 * 1024;
            t->buf = malloc(t->cap);   /* untouched pages cost nothing */
        }
        while (c->state == SC_CS_OPEN && c->wlen - c->woff < SC_TRANSFER_HIGH_WATER
               && t->cursor < e->store->hdr->capacity && now >= t->next_block) {
            sc_buf b;
            block_ctx bc;
            bounded_ctx bd;
            apr_pool_t *bp;
            /* a pool per block: while the socket takes them, many blocks go
             * out in one turn of the loop, and e->tmp would keep them all */
            apr_pool_create(&bp, e->tmp);
            if (t->buf) {
                b.p = bp;                 /* where it grows, if it must */
                b.buf = t->buf;
                b.cap = t->cap;
                b.len = 0;
            }
            else {
                sc_buf_init(&b, bp, 64 * 1024);
            }
            sc_msg_list_open(&b, SC_REPL_ALL_DATA);
            bc.b = &b;
            bc.n = 0;
            /* the stamps: in an array of the transfer's own as well (grown
             * and copied once, not for every block of thousands) */
            if (!t->stamps && (t->stamps = malloc(sizeof(*t->stamps) * 256))) {
                t->nstamps = 256;
            }
            bd.room = t->stamps ? t->nstamps : 256;
            bc.stamps = t->stamps ? t->stamps : apr_palloc(bp, sizeof(*bc.stamps) * bd.room);
            bd.t = t;
            bd.bc = &bc;
            bd.p = bp;
            bd.limit = block_bytes(e);
            t->cursor = sc_store_each_from(e->store, bp, t->cursor, (apr_uint32_t)block,
                                           add_bounded, &bd, 0);
            sc_msg_list_close(&b, bc.n);
            sc_msg_all_data_stamps(&b, bc.stamps, bc.n);
            /* what this member holds: the receiver readies its pages */
            sc_msg_all_data_size(&b, __atomic_load_n(&e->store->hdr->count, __ATOMIC_RELAXED),
                                 __atomic_load_n(&e->store->hdr->blocks_used,
                                                 __ATOMIC_RELAXED));
            if (bc.n) {
                send_to(e, c, &b);
                t->sent += bc.n;
                t->blocks++;
                e->store->hdr->transfer_out += bc.n;
                if (wait_ms > 0 && t->cursor < e->store->hdr->capacity) {
                    t->next_block = now + apr_time_from_msec(wait_ms);
                }
            }
            apr_pool_destroy(bp);
        }
        if (c->state == SC_CS_OPEN && t->cursor >= e->store->hdr->capacity) {
            sc_msg_complete m = { t->sent };
            sc_buf b;
            c->keep_buffers = 0;          /* given back once all is sent */
            send_tombstones(e, c);
            sc_buf_init(&b, e->tmp, 8);
            sc_msg_complete_encode(&b, &m);
            send_to(e, c, &b);
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1267)
                         "state transfer to %s: %u session(s) sent in %u message(s)%s",
                         t->to->route, t->sent, t->blocks,
                         blocks ? apr_psprintf(e->tmp, " (sendAllSessions false: blocks "
                                               "of at most %ld, %" APR_INT64_T_FMT
                                               " ms apart)", block, wait_ms)
                                : "");
            *pp = t->next;
            free(t->buf);
            free(t->stamps);
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
    int expire;                       /* this tick expires idle sessions */
} sweep_ctx;

static int sweep_one(void *ctx, const sc_sess_copy *s, int touched)
{
    sweep_ctx *sw = ctx;
    apr_int64_t limit = sc_store_idle_limit(sw->e->store, s->created, s->last_access,
                                            s->max_inactive);
    if (sw->expire && sc_store_idled_out(sw->now, s->last_access, limit)) {
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

/* Every tick (a second) the accesses go to the other members; every
 * processExpiresFrequency-th tick, as Tomcat's background process does every
 * processExpiresFrequency-th time it runs, the sessions idle past their
 * limit are also expired.  Until then such a session is still held (and
 * counted), but no request finds it (sc_store_get). */
static void sweep(sc_engine *e, apr_time_t now)
{
    sweep_ctx sw;
    long every = e->set->process_expires_frequency > 0 ? e->set->process_expires_frequency : 1;
    sw.expire = e->sweeps % every == 0;  /* the first tick, then every N-th */
    e->sweeps = (e->sweeps + 1) % every;
    sw.e = e;
    sw.now = now;
    sw.ntouch = 0;
    sw.expired = apr_array_make(e->tmp, 16, sizeof(const char *));
    sw.probation = apr_array_make(e->tmp, 16, sizeof(const char *));
    sc_buf_init(&sw.touch, e->tmp, 4096);
    sc_msg_list_open(&sw.touch, SC_REPL_TOUCH);
    sc_store_each_due(e->store, now, sw.expire, sweep_one, &sw);
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
    sc_store_each_meta(e->store, collect_id, ids, 0);
    return expire_ids(e, ids);
}

/* transfer_from stays set once this member is ready (whichever way: the
 * transfer complete, its timeout, nobody left to ask): it names the member
 * asked only while this one is starting.  The engine gathers no
 * asynchronous changes while a transfer runs; read alone, that pointer kept
 * a member that ever received a transfer from gathering for its whole life
 * (a wake-up and a send per change on it, and a wake-up and a read per
 * change on the others). */
int sc_dm_receiving_state(const sc_engine *e)
{
    return e->transfer_from && e->state == SC_MS_STARTING;
}

void sc_dm_redo_transfer(sc_engine *e)
{
    if (e->store) {
        prefault_end(e);
    }
    e->state = SC_MS_STARTING;
    e->transfer_from = NULL;
    e->transfer_received = 0;
    e->transfer_blocks = 0;
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
    if (!e->observer) {
        quorum(e, now);
        ae_tick(e, now);
    }
    if (e->held) {
        held_tick(e, now);
    }
    if (e->state == SC_MS_STARTING) {
        ask_for_state(e, now);
    }
    else if (e->store && e->store->prefault) {
        prefault_end(e);              /* ready some other way (no sender left) */
    }
    if (e->transfers) {
        send_transfers(e);
    }
    if (now >= e->next_sweep) {
        e->next_sweep = now + apr_time_from_sec(1);
        sweep(e, sc_engine_wall(e, now));   /* sessions' times: the wall clock's */
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
