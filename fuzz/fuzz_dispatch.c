/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fuzz_dispatch -- the DeltaManager's message dispatcher (sc_dm_on_message,
 * sc_manager.c) against a real session store (sc_store.c, a small anonymous
 * segment made by sc_store_create for every input), as the engine runs it
 * for the DATA frames of a member's connection.
 *
 * Input: a sequence of messages, each [ctl:1][len:2, big-endian][len bytes]
 * (the last one takes what is left when its length runs past the end).
 * ctl bit 0: the sender waits for an ACK (the frame's number is passed as
 * ack_seq); bit 1: the connection has not said HELLO (no peer); bit 2: from
 * member B instead of member A.  Each message is copied into a buffer of
 * exactly its length, so AddressSanitizer sees a read past it.  A connection
 * the dispatcher closes (a malformed message) is replaced by a new one for
 * the next message, as a member reconnects.  After the last message the
 * engine's tick runs an hour later (sc_dm_tick): held deltas time out, a
 * requested state transfer is sent, the sweep expires and touches.
 *
 * The module's own code runs: sc_manager.c, sc_store.c, sc_shm.c, sc_repl.c,
 * sc_proto.c.  Replaced (below): the transport (sc_tr_send_frame records what
 * would be sent, sc_tr_close marks the connection closed as the real one
 * does, sc_tr_connect gives the member a new open connection), the engine's
 * sc_ch_ack and sc_ch_broadcast (recorded), and httpd's logging
 * (fuzz/httpd_stubs.c).  The settings are the target's (set, below).
 *
 * Known module bugs are tolerated with -DFUZZ_TOLERATE_<BUG> (Makefile.am's
 * FUZZ_KNOWN_BUGS; fuzz/README, "Known bugs").
 *
 * Properties, after every message:
 *  - the store is consistent (check_store): slots, index, free slot stack,
 *    block chains and free block list agree with the header's counts, no
 *    block is in two chains, every stored session is found by its id, no
 *    lock is left taken, no write left half done (undone);
 *  - a session's version never goes down under the conflict rule (its stamp,
 *    sc_stamp_cmp: a copy replaced by one the rule puts above it, a delta
 *    applied on it), a stored version's hash is that of its data, and a
 *    version and hash always come with the same data;
 *  - sessions appear only through FULL and ALL_DATA, disappear only through
 *    REMOVE or EXPIRE of their id, DEAD or a DIGEST's dead entry naming it;
 *  - a message of an unknown type (a probe's filler) changes nothing; one
 *    before HELLO closes the connection and changes nothing;
 *  - the dispatcher closes the connection exactly when it counts a bad
 *    frame; only a FULL or a DELTA is not acknowledged at once (return 0):
 *    a delta held (one more is held), or a change not applied;
 *  - a message refused as malformed changes nothing: it is read to its end
 *    before any of it is applied (so a TOUCH, ALL_DATA or DEAD with one bad
 *    entry, or without its count, applies none); a count or a field missing
 *    is malformed, bytes after the last field are ignored;
 *  - every message sent with an ACK asked for is answered exactly once: by
 *    the dispatcher (FAIL_ACK with a reason, at once or when a held delta is
 *    given up; ACK when a held delta is applied) or by its caller (ACK when
 *    it returns 1 on an open connection); an ACK means applied: the store
 *    holds the message's version (FULL, DELTA) or one the rule puts above it
 *    (a DELTA without a stamp: a later number);
 *  - times a replica carries are kept within bounds (SC1340): every stored
 *    session was created and last accessed not before 1970 and not after
 *    now, with a maxInactiveInterval a Java int holds;
 *  - FULL: a copy the rule puts above the stored one (or none stored) is
 *    stored, with its data and id (when the store has room: the size and the
 *    capacity allow it);
 *    REMOVE/EXPIRE: the session is gone; TOUCH: last access is the latest of
 *    the stored one and the touches; ALL_DATA: the transfer counters grow by
 *    its count; GET_SESSION: the stored session is sent back, and only when
 *    there is one, else its tombstone in a DIGEST when it has one; COMPLETE
 *    from the member we asked: ready; DIGEST (once ready): every session its
 *    dead entries name is gone and stays dead, every GET_SESSION sent names
 *    one of its live entries, and one that asks for an answer starts a round
 *    of this member's digest, sent by the tick;
 *  - everything the dispatcher sends (FULL, GET_SESSION, ACKs, and in the
 *    tick: ALL_DATA blocks, COMPLETE, TOUCH, EXPIRE, DIGEST) is a
 *    well-formed message, read back to its last byte;
 * and at the end:
 *  - every message that asked for an ACK was answered (a held delta whose
 *    base never came: FAIL_ACK), and nothing is still held;
 *  - a state transfer sends every stored session exactly once, as stored,
 *    and COMPLETE carries that number;
 *  - no leak (LeakSanitizer): held deltas and transfers are freed.
 */
#include "fuzz_common.h"

#include <string.h>

#include "apr_strings.h"
#include "apr_hash.h"
#include "apr_lib.h"
#include "sc_core.h"
#include "sc_transport.h"
#include "sc_channel.h"
#include "sc_manager.h"
#include "sc_repl.h"

/* The store's layout constants that sc_store.c keeps to itself. */
#define ST_EMPTY   0
#define ST_DELETED (-1)
#define ST_BLOCK_DATA SC_STORE_BLOCK

#ifdef SC_TOMB_PROBE
#define REPL_LAST SC_REPL_DIGEST      /* the store keeps tombstones, and stamps */
#else
#define REPL_LAST SC_REPL_REBIND
#endif

#define CAPACITY  12          /* sessions: small, so a full store is reached */
#define SLOT_DATA 600         /* Manager maxSessionSize, bytes */
#define TRANSFER_BLOCK 3      /* Manager sendAllSessionsSize */

/* ---- what the replaced engine functions saw --------------------------------- */

typedef struct {
    int is_ack;               /* ACK or FAIL_ACK frame */
    int ok;
    apr_uint64_t seq;         /* ACK: the acknowledged frame */
    int broadcast;
    sc_peer *to;
    unsigned char *msg;       /* DATA payload */
    apr_size_t len;
} sent_t;

/* A message sent with an ACK asked for: answered exactly once, by the
 * dispatcher (sc_ch_ack: at once, or later for a held delta) or by its
 * caller (an ACK, when it returns 1 on an open connection); an ACK means the
 * store holds the message's version. */
typedef struct {
    apr_uint64_t seq;
    char id[SC_SID_MAX];      /* FULL, DELTA: the session ("": no version to check) */
    sc_stamp stamp;           /* the version it makes (hash 0: not known) */
    int answered;
} asked_t;

static struct {
    apr_pool_t *p;            /* the input's pool */
    apr_array_header_t *sent; /* sent_t */
    apr_array_header_t *asked;      /* asked_t */
    int closes;
    int in_tick;              /* sc_dm_tick runs */
} rec;

static sc_engine eng;
static sc_shm_t shm;
static sc_cluster_cfg cfg;
static sc_settings set;
static sc_peer peer_a, peer_b;
static sc_conn conn_in, out_a, out_b;

static void check_sent(const unsigned char *msg, apr_size_t len);

void sc_tr_close(sc_engine *e, sc_conn *c, const char *why)
{
    (void)e;
    FUZZ_CHECK(why && *why);
    if (c->state == SC_CS_CLOSED) {
        return;
    }
    c->state = SC_CS_CLOSED;
    c->fd = -1;
    if (c->peer && c->peer->out == c) {
        c->peer->out = NULL;
    }
    rec.closes++;
}

/* the DATA handler's refusal of a frame before HELLO (the target hands
 * messages to sc_dm_on_message itself: never called) */
void sc_tr_bad_frame(sc_engine *e, sc_conn *c, const char *why)
{
    fprintf(stderr, "fuzz_dispatch: sc_tr_bad_frame(%s) is not expected\n", why);
    abort();
}

void sc_tr_connect(sc_engine *e, sc_peer *p)
{
    sc_conn *c = p == &peer_a ? &out_a : &out_b;
    (void)e;
    if (p->out) {
        return;
    }
    memset(c, 0, sizeof(*c));
    c->kind = SC_CONN_OUT;
    c->state = SC_CS_OPEN;
    c->peer = p;
    c->fd = -1;
    p->out = c;
}

static sent_t *record(const void *msg, apr_size_t len)
{
    sent_t *s = apr_array_push(rec.sent);
    memset(s, 0, sizeof(*s));
    s->msg = apr_pmemdup(rec.p, msg, len ? len : 1);
    s->len = len;
    return s;
}

int sc_tr_send_frame(sc_engine *e, sc_conn *c, int type, int flags, apr_uint64_t seq,
                     const void *payload, apr_size_t len)
{
    sent_t *s;
    (void)e;
    (void)seq;
    FUZZ_CHECK(c != NULL);
    if (c->state == SC_CS_CLOSED) {
        return -1;
    }
    FUZZ_CHECK(type == SC_MSG_DATA || type == SC_MSG_ACK || type == SC_MSG_FAIL_ACK);
    FUZZ_CHECK(flags == 0);
    s = record(payload, len);
    s->to = c->peer;
    if (type == SC_MSG_DATA) {
        check_sent(payload, len);
    }
    else {
        FUZZ_CHECK(len >= 8 && len <= 8 + 200);
        s->is_ack = 1;
        s->ok = type == SC_MSG_ACK;
        s->seq = sc_get64(payload);
    }
    return 0;
}

/* Was a GET_SESSION naming session 'id' sent? */
static int asked_for(const char *id)
{
    int i;
    for (i = 0; i < rec.sent->nelts; i++) {
        const sent_t *x = &APR_ARRAY_IDX(rec.sent, i, sent_t);
        sc_rd r;
        const char *got;
        if (x->is_ack || !x->msg || !x->len || x->msg[0] != SC_REPL_GET_SESSION) {
            continue;
        }
        sc_rd_init(&r, x->msg, x->len);
        sc_rd_u8(&r);
        got = sc_rd_id(&r, rec.p);
        if (got && !strcmp(got, id)) {
            return 1;
        }
    }
    return 0;
}

/* A message's version as the store takes it (sc_store_take): the flags that
 * travel, and a fork only with SC_SF_MINOR. */
static sc_stamp wire_stamp(apr_uint64_t version, apr_uint64_t hash, apr_uint32_t flags,
                           apr_uint64_t fork)
{
    sc_stamp s;
    s.version = version;
    s.hash = hash;
    s.flags = flags;
    s.fork = fork;
    sc_stamp_norm(&s);
    return s;
}

/* Does a stored version 'here' hold the change of 'want': the same, or one
 * the rule puts above it (want's hash 0, not known: at the same number, the
 * one here)? */
static int stamp_holds(const sc_stamp *here, const sc_stamp *want)
{
    sc_stamp h = *here;
    h.flags &= SC_SF_WIRE;
    return sc_stamp_cmp(&h, want) >= 0;
}

/* An answer to a message sent with an ACK asked for: once, and an ACK
 * only for what the store holds. */
static void answer(sc_store *st, apr_uint64_t seq, int ok)
{
    asked_t *d = NULL;
    int i;
    for (i = 0; i < rec.asked->nelts; i++) {
        if (APR_ARRAY_IDX(rec.asked, i, asked_t).seq == seq) {
            d = &APR_ARRAY_IDX(rec.asked, i, asked_t);
        }
    }
    FUZZ_CHECK(d != NULL);          /* a frame that asked for an answer */
    FUZZ_CHECK(!d->answered);       /* once */
    d->answered = 1;
    if (ok && d->id[0]) {
        /* "an ACK means applied": that version (or one the rule puts above
         * it) is here; or, while this member takes a state transfer
         * (catching up), the session was asked for (a GET_SESSION naming it
         * was sent) */
        sc_stamp cur;
        if (sc_store_stamp(st, d->id, &cur) != SC_STORE_OK || !stamp_holds(&cur, &d->stamp)) {
            FUZZ_CHECK(eng.state == SC_MS_STARTING);
            FUZZ_CHECK(asked_for(d->id));
        }
    }
}

/* sc_channel.c: answers frame 'seq' (ACK or FAIL_ACK with a reason). */
void sc_ch_ack(sc_engine *e, sc_peer *p, sc_conn *c, apr_uint64_t seq, int ok,
                   const char *why)
{
    (void)c;
    FUZZ_CHECK(p == &peer_a || p == &peer_b);
    FUZZ_CHECK(ok || (why && *why));
    answer(e->store, seq, ok);
    {
        sent_t *s = record("", 0);
        s->is_ack = 1;
        s->ok = ok;
        s->seq = seq;
        s->to = p;
    }
}

int sc_ch_broadcast(sc_engine *e, const void *msg, apr_size_t len, sc_peer *except)
{
    sent_t *s;
    (void)e;
    (void)except;
    check_sent(msg, len);
    s = record(msg, len);
    s->broadcast = 1;
    return 2;
}

/* ---- reading messages back ---------------------------------------------------- */

static int base_same(const char *a, const char *b)
{
    return sc_store_same(a, b);
}

/* A session's base: its hex, before msm's "-<node>" or the '.' (the store
 * keys a session by it: ids that differ after it are the same session). */
static const char *base_of(apr_pool_t *p, const char *id)
{
    return apr_pstrmemdup(p, id, strcspn(id, "-."));
}

/* What the dispatcher (or the tick) sends must read back to its last byte. */
static void check_sent(const unsigned char *msg, apr_size_t len)
{
    int in_tick = rec.in_tick;
    apr_pool_t *p;
    sc_rd r;
    sc_sess_copy s;
    apr_uint32_t n, i;
    unsigned type;

    apr_pool_create(&p, rec.p);
    sc_rd_init(&r, msg, len);
    type = sc_rd_u8(&r);
    switch (type) {
    case SC_REPL_FULL:
        /* the answer to a GET_SESSION, or a copy sent back for a conflict */
        FUZZ_CHECK(!in_tick);
        sc_rd_init(&r, msg, len);
        FUZZ_CHECK(sc_msg_full_decode(&r, p, &s) && s.stamped);
        break;
    case SC_REPL_DIGEST: {
        sc_msg_digest d;
        sc_rd_init(&r, msg, len);
        FUZZ_CHECK(sc_msg_digest_decode(&r, p, &d));
        FUZZ_CHECK(in_tick || (d.n == 1 && d.e[0].dead && !d.flags));
        for (i = 0; i < d.n; i++) {
            FUZZ_CHECK(d.e[i].dead ? d.e[i].life_s >= 1 : d.e[i].stamp.version >= 1);
        }
        break;
    }
    case SC_REPL_GET_SESSION:
    case SC_REPL_EXPIRE:
        FUZZ_CHECK(sc_rd_id(&r, p) != NULL);
        break;
    case SC_REPL_GET_ALL:
        break;
    case SC_REPL_TOUCH:
        FUZZ_CHECK(in_tick);
        n = sc_rd_u32(&r);
        FUZZ_CHECK(n >= 1 && n <= CAPACITY);
        for (i = 0; i < n; i++) {
            FUZZ_CHECK(sc_rd_id(&r, p) != NULL);
            sc_rd_u64(&r);
        }
        break;
    case SC_REPL_ALL_DATA: {
        sc_msg_all_data a;
        FUZZ_CHECK(in_tick);
        sc_rd_init(&r, msg, len);
        FUZZ_CHECK(sc_msg_all_data_decode(&r, p, &a));
        FUZZ_CHECK(a.n >= 1 && a.n <= TRANSFER_BLOCK && a.s[0].stamped);
        break;
    }
    case SC_REPL_COMPLETE:
        FUZZ_CHECK(in_tick);
        n = sc_rd_u32(&r);
        FUZZ_CHECK(n <= CAPACITY);
        break;
#ifdef SC_TOMB_PROBE
    case SC_REPL_DEAD:
        /* a state transfer's tombstones: id bases, hex */
        FUZZ_CHECK(in_tick);
        n = sc_rd_u32(&r);
        FUZZ_CHECK(n >= 1);
        for (i = 0; i < n; i++) {
            unsigned blen = sc_rd_u8(&r);
            const unsigned char *b = sc_rd_bytes(&r, blen);
            apr_size_t k;
            FUZZ_CHECK(b && blen >= 1 && blen < SC_TOMB_BASE);
            for (k = 0; k < blen; k++) {
                FUZZ_CHECK(apr_isxdigit(b[k]));
            }
        }
        break;
#endif
    default:
        fprintf(stderr, "fuzz_dispatch: sent a message of type %u\n", type);
        abort();
    }
    FUZZ_CHECK(!r.bad);
    FUZZ_CHECK(r.left == 0);
    apr_pool_destroy(p);
}

/* ---- the store: consistency and snapshots --------------------------------------- */

static apr_uint32_t blocks_for(apr_uint32_t len)
{
    return (apr_uint32_t)((len + ST_BLOCK_DATA - 1) / ST_BLOCK_DATA);
}

/* A lock nobody holds: taken and given back at once. */
static int lock_free(pthread_mutex_t *m)
{
    if (pthread_mutex_trylock(m) != 0) {
        return 0;
    }
    pthread_mutex_unlock(m);
    return 1;
}

static void check_store(sc_store *st, apr_pool_t *p)
{
    sc_store_hdr *h = st->hdr;
    unsigned char *owner;
    apr_uint32_t k, used = 0, blocks = 0, nfree = 0, nindex = 0, b;
    unsigned char *slot_seen;

    FUZZ_CHECK(h->capacity == CAPACITY && h->slot_data == SLOT_DATA);
    FUZZ_CHECK(lock_free(&h->index_lock) && lock_free(&h->data_lock));
    for (k = 0; k < h->nlocks && k < h->slot_hwm; k++) {
        FUZZ_CHECK(lock_free(&st->locks[k].lock));
    }
    FUZZ_CHECK(h->writes_undone == 0);
    FUZZ_CHECK(h->slot_hwm <= h->capacity);
    FUZZ_CHECK(h->free_slots <= h->slot_hwm);
    FUZZ_CHECK(h->count <= h->capacity);
    FUZZ_CHECK(h->count + h->free_slots == h->slot_hwm);
    FUZZ_CHECK(h->block_hwm <= h->nblocks);
    owner = apr_pcalloc(p, h->nblocks + 1);
    slot_seen = apr_pcalloc(p, h->capacity + 1);

    for (k = 0; k < h->slot_hwm; k++) {
        sc_sess *s = &st->slots[k];
        sc_sess_rec *c = &s->cur;
        FUZZ_CHECK((s->seq & 1) == 0);
        if (!c->used) {
            FUZZ_CHECK(c->head == 0 && c->data_len == 0 && c->id[0] == '\0');
            continue;
        }
        used++;
        FUZZ_CHECK(memchr(c->id, '\0', SC_SID_MAX) != NULL);
        FUZZ_CHECK(sc_sid_valid(c->id));
        FUZZ_CHECK(c->data_len <= h->slot_data);
        {
            apr_uint32_t need = blocks_for(c->data_len), n = 0;
            for (b = c->head; b; b = st->block_nexts[b - 1]) {
                FUZZ_CHECK(b <= h->block_hwm);
                FUZZ_CHECK(!owner[b - 1]);     /* in one chain only */
                owner[b - 1] = 1;
                FUZZ_CHECK(++n <= need);
            }
            FUZZ_CHECK(n == need);
            blocks += n;
        }
        {
            /* found through the index, as itself */
            sc_sess_copy x;
            FUZZ_CHECK(sc_store_get(st, p, c->id, 0, &x) == SC_STORE_OK);
            FUZZ_CHECK(!strcmp(x.id, c->id));
            FUZZ_CHECK(x.version == c->version && x.data_len == c->data_len);
            /* session data is mod_session's text: no NUL inside */
            FUZZ_CHECK(strlen(x.data) == x.data_len);
        }
    }
    FUZZ_CHECK(used == h->count);
    FUZZ_CHECK(blocks == h->blocks_used);
    /* two live sessions never share a base */
    for (k = 0; k < h->slot_hwm; k++) {
        apr_uint32_t j;
        for (j = k + 1; j < h->slot_hwm && st->slots[k].cur.used; j++) {
            FUZZ_CHECK(!st->slots[j].cur.used
                       || !base_same(st->slots[k].cur.id, st->slots[j].cur.id));
        }
    }
    /* the free slot stack: distinct unused slots below the high-water mark */
    for (k = 0; k < h->free_slots; k++) {
        apr_int32_t f = st->free_slots[k];
        FUZZ_CHECK(f >= 0 && (apr_uint32_t)f < h->slot_hwm);
        FUZZ_CHECK(!st->slots[f].cur.used);
        FUZZ_CHECK(!slot_seen[f]);
        slot_seen[f] = 1;
    }
    /* the index: every entry names a distinct live slot, one per session (no
     * writer dies here, so none is left on an unused slot) */
    memset(slot_seen, 0, h->capacity + 1);
    for (k = 0; k < h->index_size; k++) {
        apr_int32_t v = st->index[k];
        FUZZ_CHECK(v == ST_EMPTY || v == ST_DELETED || v > 0);
        if (v > 0) {
            v--;                        /* an entry holds its slot's number + 1 */
            FUZZ_CHECK((apr_uint32_t)v < h->slot_hwm);
            FUZZ_CHECK(st->slots[v].cur.used);
            FUZZ_CHECK(!slot_seen[v]);
            slot_seen[v] = 1;
            nindex++;
        }
    }
    FUZZ_CHECK(nindex == h->count);
    /* the free block list: blocks no chain holds; with the chains, every
     * block ever taken */
    for (b = h->free_block; b; b = st->block_nexts[b - 1]) {
        FUZZ_CHECK(b <= h->block_hwm);
        FUZZ_CHECK(!owner[b - 1]);
        owner[b - 1] = 2;
        FUZZ_CHECK(++nfree <= h->block_hwm);
    }
    FUZZ_CHECK(nfree + h->blocks_used == h->block_hwm);
}

typedef struct {
    char id[SC_SID_MAX];
    apr_uint64_t version;
    apr_time_t last_access;
    apr_time_t created;
    apr_int64_t max_inactive;
    const char *data;
    apr_uint32_t data_len;
    sc_stamp st;              /* its stamp, the flags that travel */
} snap_sess;

static int same_data(const snap_sess *x, const char *data, apr_uint32_t len)
{
    return x->data_len == len && !memcmp(x->data, data, len);
}

/* base -> snap_sess */
static int snap_one(void *ctx, const sc_sess_copy *s, int touched)
{
    apr_hash_t *h = ctx;
    apr_pool_t *p = apr_hash_pool_get(h);
    snap_sess *x = apr_pcalloc(p, sizeof(*x));
    (void)touched;
    memcpy(x->id, s->id, SC_SID_MAX);
    x->version = s->version;
    x->last_access = s->last_access;
    x->max_inactive = s->max_inactive;
    x->created = s->created;
    x->data = apr_pstrmemdup(p, s->data, s->data_len);
    x->data_len = s->data_len;
    x->st.version = s->version;
    x->st.hash = s->hash;
    x->st.fork = s->fork;
    x->st.flags = s->flags & SC_SF_WIRE;
    /* a stored version's hash is its data's */
    FUZZ_CHECK(s->hash == sc_store_hash(s->data, s->data_len));
    FUZZ_CHECK(apr_hash_get(h, base_of(p, s->id), APR_HASH_KEY_STRING) == NULL);
    apr_hash_set(h, base_of(p, s->id), APR_HASH_KEY_STRING, x);
    return 1;
}

static apr_hash_t *snapshot(apr_pool_t *p)
{
    apr_hash_t *h = apr_hash_make(p);
    sc_store_each(eng.store, p, snap_one, h, 0);
    FUZZ_CHECK(apr_hash_count(h) == eng.store->hdr->count);
    return h;
}

/* Times a replica carries are kept within bounds where they enter (SC1340):
 * a creation and a last access not before 1970 and not after now, a
 * maxInactiveInterval a Java int holds. */
static void check_times(apr_hash_t *h)
{
    apr_time_t now = apr_time_now();
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(apr_hash_pool_get(h), h); hi; hi = apr_hash_next(hi)) {
        snap_sess *x = apr_hash_this_val(hi);
        FUZZ_CHECK(x->created >= 0 && x->created <= now);
        FUZZ_CHECK(x->max_inactive <= APR_INT64_C(2147483647));
        FUZZ_CHECK(x->last_access >= 0);
        FUZZ_CHECK(x->last_access <= now);
    }
}

static snap_sess *snap_get(apr_hash_t *h, const char *id)
{
    return apr_hash_get(h, base_of(apr_hash_pool_get(h), id), APR_HASH_KEY_STRING);
}

/* Nothing in the store changed. */
static void check_unchanged(apr_hash_t *before, apr_hash_t *after)
{
    apr_hash_index_t *hi;
    FUZZ_CHECK(apr_hash_count(before) == apr_hash_count(after));
    for (hi = apr_hash_first(apr_hash_pool_get(before), before); hi; hi = apr_hash_next(hi)) {
        snap_sess *b = apr_hash_this_val(hi);
        snap_sess *a = apr_hash_get(after, apr_hash_this_key(hi), APR_HASH_KEY_STRING);
        FUZZ_CHECK(a != NULL);
        FUZZ_CHECK(!strcmp(a->id, b->id) && a->version == b->version);
        FUZZ_CHECK(a->last_access == b->last_access && a->created == b->created
                   && a->max_inactive == b->max_inactive);
        FUZZ_CHECK(same_data(a, b->data, b->data_len));
    }
}

/* ---- one input ------------------------------------------------------------------ */

static void reset(apr_pool_t *p)
{
    apr_time_t now = apr_time_now();
    sc_store *st = NULL;

    memset(&eng, 0, sizeof(eng));
    memset(&shm, 0, sizeof(shm));
    memset(&cfg, 0, sizeof(cfg));
    memset(&set, 0, sizeof(set));
    set.heartbeat_ms = 500;
    set.max_message_size = 16 * 1024 * 1024;  /* Receiver maxMessageSize, the default */
    set.send_all_sessions_size = TRANSFER_BLOCK;
    set.state_transfer_timeout_s = 60;
    cfg.set = &set;
    memset(&peer_a, 0, sizeof(peer_a));
    memset(&peer_b, 0, sizeof(peer_b));
    memset(&conn_in, 0, sizeof(conn_in));
    memset(&out_a, 0, sizeof(out_a));
    memset(&out_b, 0, sizeof(out_b));
    if (sc_store_create(p, CAPACITY, SLOT_DATA, &st) != APR_SUCCESS) {
        fprintf(stderr, "fuzz_dispatch: sc_store_create failed\n");
        abort();
    }
    eng.store = st;
    eng.shm = &shm;
    eng.cfg = &cfg;
    eng.set = &set;
    eng.route = "self";
    sc_engine_clock_set(&eng);           /* as the engine's start does */
    eng.started = now;
    eng.state = SC_MS_STARTING;
    eng.listen_fd = eng.mcast_fd = eng.ipc_fd = eng.wake_fd = -1;
    apr_pool_create(&eng.tmp, p);
    eng.frame_tmp = eng.tmp;
    apr_cpystrn(peer_a.route, "nodeA", sizeof(peer_a.route));
    apr_cpystrn(peer_b.route, "nodeB", sizeof(peer_b.route));
    peer_a.view = peer_b.view = SC_VIEW_ALIVE;
    peer_a.hb_state = peer_b.hb_state = SC_MS_READY;
    peer_a.next = &peer_b;
    eng.peers = &peer_a;
    sc_tr_connect(&eng, &peer_a);
    sc_tr_connect(&eng, &peer_b);
    eng.transfer_from = &peer_a;         /* asked for a state transfer */
    eng.transfer_started = now;

    rec.p = p;
    rec.sent = apr_array_make(p, 16, sizeof(sent_t));
    rec.asked = apr_array_make(p, 8, sizeof(asked_t));
    rec.closes = 0;
    rec.in_tick = 0;
}

static void new_conn(sc_peer *peer)
{
    memset(&conn_in, 0, sizeof(conn_in));
    conn_in.kind = SC_CONN_IN;
    conn_in.state = SC_CS_OPEN;
    conn_in.fd = -1;
    conn_in.peer = peer;
    apr_cpystrn(conn_in.remote, "192.0.2.1:4000", sizeof(conn_in.remote));
}

/* Session versions and data across one input: while a session lives, a
 * version and hash always come with the same data.  base -> ("version
 * hash" -> data) */
static apr_hash_t *seen_versions;

#ifdef SC_TOMB_PROBE
/* Bases removed in this input (REMOVE, EXPIRE, DEAD): their tombstones live
 * at least SC_TOMB_MIN_S, longer than an input runs. */
static apr_hash_t *dead_bases;
#endif

/* removable: the bases the message may remove (NULL: none) */
static void check_transition(apr_pool_t *p, apr_hash_t *before, apr_hash_t *after,
                             unsigned type, apr_hash_t *removable, int may_create)
{
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(p, before); hi; hi = apr_hash_next(hi)) {
        const char *base = apr_hash_this_key(hi);
        snap_sess *b = apr_hash_this_val(hi);
        snap_sess *a = apr_hash_get(after, base, APR_HASH_KEY_STRING);
        if (!a) {
            /* gone: only by REMOVE or EXPIRE of its id (or DEAD naming it) */
            FUZZ_CHECK(removable && apr_hash_get(removable, base, APR_HASH_KEY_STRING));
            apr_hash_set(seen_versions, base, APR_HASH_KEY_STRING, NULL);
            continue;
        }
        /* never down under the rule; the same version, the same data */
        FUZZ_CHECK(sc_stamp_cmp(&a->st, &b->st) >= 0);
        if (a->version == b->version && a->st.hash == b->st.hash) {
            FUZZ_CHECK(same_data(a, b->data, b->data_len));
        }
        FUZZ_CHECK(a->last_access >= b->last_access);
    }
    for (hi = apr_hash_first(p, after); hi; hi = apr_hash_next(hi)) {
        const char *base = apr_hash_this_key(hi);
        snap_sess *a = apr_hash_this_val(hi);
        apr_hash_t *vers;
        const char *key, *was;
        if (!apr_hash_get(before, base, APR_HASH_KEY_STRING)) {
            FUZZ_CHECK(may_create);
#ifdef SC_TOMB_PROBE
            /* a removed session is not created again while its tombstone
             * lives (unless the table gave it up early) */
            FUZZ_CHECK(!apr_hash_get(dead_bases, base, APR_HASH_KEY_STRING)
                       || eng.store->hdr->tombs_evicted > 0);
#endif
        }
        vers = apr_hash_get(seen_versions, base, APR_HASH_KEY_STRING);
        if (!vers) {
            vers = apr_hash_make(apr_hash_pool_get(seen_versions));
            apr_hash_set(seen_versions,
                         apr_pstrdup(apr_hash_pool_get(seen_versions), base),
                         APR_HASH_KEY_STRING, vers);
        }
        key = apr_psprintf(apr_hash_pool_get(seen_versions), "%" APR_UINT64_T_FMT " %"
                           APR_UINT64_T_FMT, a->version, a->st.hash);
        was = apr_hash_get(vers, key, APR_HASH_KEY_STRING);
        if (was) {
            apr_uint32_t wl;
            memcpy(&wl, was, sizeof(wl));
            FUZZ_CHECK(same_data(a, was + sizeof(wl), wl));
        }
        else {
            /* the length, then the bytes */
            char *v = apr_palloc(apr_hash_pool_get(seen_versions),
                                 sizeof(apr_uint32_t) + a->data_len + 1);
            memcpy(v, &a->data_len, sizeof(apr_uint32_t));
            memcpy(v + sizeof(apr_uint32_t), a->data, a->data_len + 1);
            apr_hash_set(vers, key, APR_HASH_KEY_STRING, v);
        }
    }
}

static apr_uint64_t frame_seq;
/* the clock before and after the dispatch: the module's "now" lies between */
static apr_time_t dispatch_from, dispatch_to;
static int trace;             /* FUZZ_TRACE=1: a line per message and sent frame */

static void one_message(apr_pool_t *p, const unsigned char *data, apr_size_t len, int ctl)
{
    unsigned char *msg = malloc(len ? len : 1);
    apr_hash_t *before, *after;
    sc_peer *from = (ctl & 4) ? &peer_b : &peer_a;
    apr_uint64_t ack_seq = (ctl & 1) ? ++frame_seq : 0;
    apr_uint64_t bad0 = shm.c.bad_frames, in0, tin0 = 0;
    apr_uint32_t recv0 = eng.transfer_received;
    int nheld0 = eng.nheld, closes0 = rec.closes, nsent0 = rec.sent->nelts, rv;
    unsigned type = len ? data[0] : 0;
    apr_hash_t *removable;
    int state0 = eng.state, asked_at = -1;
    asked_t *asked = NULL;
    sc_rd r;

    if (!msg) {
        abort();
    }
    memcpy(msg, data, len);
    if (conn_in.state != SC_CS_OPEN || conn_in.peer != ((ctl & 2) ? NULL : from)) {
        new_conn((ctl & 2) ? NULL : from);
    }
    before = snapshot(p);
    in0 = eng.store->hdr->replicated_in;
    tin0 = eng.store->hdr->transfer_in;
    if (ack_seq) {
        /* the version an ACK must mean is stored (FULL, DELTA) */
        sc_sess_copy fs;
        asked = apr_array_push(rec.asked);
        memset(asked, 0, sizeof(*asked));
        asked->seq = ack_seq;
        sc_rd_init(&r, msg, len);
        if (type == SC_REPL_FULL && sc_msg_full_decode(&r, p, &fs)) {
            apr_cpystrn(asked->id, fs.id, sizeof(asked->id));
            asked->stamp = wire_stamp(fs.version, sc_store_hash(fs.data, fs.data_len),
                                      fs.flags, fs.fork);
        }
        else if (type == SC_REPL_DELTA) {
            sc_msg_delta dm;
            if (sc_msg_delta_decode(&r, p, &dm)) {
                apr_cpystrn(asked->id, dm.id, sizeof(asked->id));
                asked->stamp = wire_stamp(dm.version, dm.hash, dm.flags, dm.fork);
            }
        }
        asked_at = rec.asked->nelts - 1;
    }

    dispatch_from = apr_time_now();
    rv = sc_dm_on_message(&eng, &conn_in, msg, len, ack_seq);
    dispatch_to = apr_time_now();
    apr_pool_clear(eng.tmp);          /* the engine clears it after each frame */
    if (trace) {
        fprintf(stderr, "dispatch: type %u len %zu ack %d peer %s -> %d%s, %u session(s), "
                "%d held, %d sent\n", type, (size_t)len, ack_seq > 0,
                conn_in.peer ? conn_in.peer->route : "none", rv,
                conn_in.state == SC_CS_CLOSED ? " closed" : "", eng.store->hdr->count,
                eng.nheld, rec.sent->nelts - nsent0);
    }

    check_store(eng.store, p);
    after = snapshot(p);

    FUZZ_CHECK(rv == 0 || rv == 1);
    FUZZ_CHECK(rec.closes - closes0 == (int)(shm.c.bad_frames - bad0));
    FUZZ_CHECK(rec.closes - closes0 <= 1);
    FUZZ_CHECK((conn_in.state == SC_CS_CLOSED) == (rec.closes > closes0));
    FUZZ_CHECK(eng.nheld >= 0 && eng.nheld <= 4096);
    check_times(after);
    if (conn_in.state == SC_CS_CLOSED) {
        /* refused as a whole: a message is read to its end before any of it
         * is applied (a DELTA's attributes when applied, before storing) */
        check_unchanged(before, after);
        FUZZ_CHECK(eng.nheld == nheld0 && eng.state == state0);
        FUZZ_CHECK(eng.transfer_received == recv0);
        FUZZ_CHECK(eng.store->hdr->transfer_in == tin0);
    }
    if (rv == 0) {
        /* not acknowledged now: a change held (a delta ahead of its base)
         * or not applied (then answered FAIL_ACK at once) */
        FUZZ_CHECK(type == SC_REPL_FULL || type == SC_REPL_DELTA);
        FUZZ_CHECK(conn_in.state == SC_CS_OPEN);
        FUZZ_CHECK(eng.nheld == nheld0 + 1 || eng.nheld <= nheld0);
        if (ack_seq) {
            asked = &APR_ARRAY_IDX(rec.asked, asked_at, asked_t);
            FUZZ_CHECK(asked->answered || eng.nheld == nheld0 + 1);
        }
    }
    else {
        FUZZ_CHECK(eng.nheld <= nheld0);
        if (ack_seq) {
            asked = &APR_ARRAY_IDX(rec.asked, asked_at, asked_t);
            FUZZ_CHECK(!asked->answered);
            if (conn_in.state == SC_CS_OPEN) {
                answer(eng.store, ack_seq, 1);   /* the caller's ACK */
            }
            else {
                asked->answered = 1;  /* a bad frame: the connection closed, no answer */
            }
        }
    }

    if (type < SC_REPL_FULL || type > REPL_LAST) {
        /* a probe's filler: nothing happens */
        FUZZ_CHECK(rv == 1 && rec.closes == closes0);
        FUZZ_CHECK(eng.store->hdr->replicated_in == in0);
        FUZZ_CHECK(rec.sent->nelts == nsent0);
        check_transition(p, before, after, type, NULL, 0);
        free(msg);
        return;
    }
    if (ctl & 2) {
        /* before HELLO: refused, the connection closed */
        FUZZ_CHECK(rec.closes == closes0 + 1);
        FUZZ_CHECK(eng.store->hdr->replicated_in == in0);
        check_transition(p, before, after, type, NULL, 0);
        free(msg);
        return;
    }
    FUZZ_CHECK(eng.store->hdr->replicated_in == in0 + 1);

    sc_rd_init(&r, msg, len);
    sc_rd_u8(&r);
    switch (type) {
    case SC_REPL_FULL: {
        sc_sess_copy s;
        sc_rd_init(&r, msg, len);
        if (sc_msg_full_decode(&r, p, &s)) {
            snap_sess *b = snap_get(before, s.id), *a = snap_get(after, s.id);
            sc_stamp in = wire_stamp(s.version, sc_store_hash(s.data, s.data_len), s.flags,
                                     s.fork);
            FUZZ_CHECK(conn_in.state == SC_CS_OPEN);
            if (s.data_len <= SLOT_DATA && (b || apr_hash_count(before) < CAPACITY)
                && (!b || sc_stamp_cmp(&in, &b->st) > 0) && s.version > 0
#ifdef SC_TOMB_PROBE
                && !apr_hash_get(dead_bases, base_of(p, s.id), APR_HASH_KEY_STRING)
#endif
                ) {
                /* it stays over the copy here: stored */
                FUZZ_CHECK(a != NULL);
                FUZZ_CHECK(sc_stamp_cmp(&a->st, &in) >= 0);
                if (a->version == s.version && a->st.hash == in.hash) {
                    FUZZ_CHECK(!strcmp(a->id, s.id));
                    FUZZ_CHECK(same_data(a, s.data, s.data_len));
                }
            }
            if (rv == 1) {
                /* applied, or that version (or one above it) was here */
                FUZZ_CHECK(a != NULL && sc_stamp_cmp(&a->st, &in) >= 0);
            }
        }
        else {
            FUZZ_CHECK(conn_in.state == SC_CS_CLOSED);
        }
        check_transition(p, before, after, type, NULL, 1);
        break;
    }
    case SC_REPL_DELTA: {
        sc_msg_delta dm;
        sc_rd_init(&r, msg, len);
        if (!sc_msg_delta_decode(&r, p, &dm)) {
            FUZZ_CHECK(conn_in.state == SC_CS_CLOSED);
        }
        else if (conn_in.state == SC_CS_OPEN) {
            snap_sess *b = snap_get(before, dm.id), *a = snap_get(after, dm.id);
            sc_stamp in = wire_stamp(dm.version, dm.hash, dm.flags, dm.fork);
            FUZZ_CHECK(!!a == !!b);
            if (rv == 1) {
                /* applied on its base, or that version (or one above it)
                 * was here; or, catching up, the session was asked for */
                FUZZ_CHECK((a != NULL && stamp_holds(&a->st, &in))
                           || (eng.state == SC_MS_STARTING && asked_for(dm.id)));
            }
            if (rv == 0 && eng.nheld <= nheld0 && b) {
                /* not applied: nothing changed */
                FUZZ_CHECK(a->version == b->version && a->st.hash == b->st.hash);
            }
        }
        check_transition(p, before, after, type, NULL, 0);
        break;
    }
    case SC_REPL_REMOVE:
    case SC_REPL_EXPIRE: {
        const char *id = sc_rd_id(&r, p);
        if (!id) {
            FUZZ_CHECK(conn_in.state == SC_CS_CLOSED);
            check_transition(p, before, after, type, NULL, 0);
            break;
        }
        FUZZ_CHECK(conn_in.state == SC_CS_OPEN);
        FUZZ_CHECK(snap_get(after, id) == NULL);
        removable = apr_hash_make(p);
        apr_hash_set(removable, base_of(p, id), APR_HASH_KEY_STRING, "");
#ifdef SC_TOMB_PROBE
        /* its tombstone is left, held or not */
        apr_hash_set(dead_bases, base_of(apr_hash_pool_get(dead_bases), id),
                     APR_HASH_KEY_STRING, "");
#endif
        check_transition(p, before, after, type, removable, 0);
        break;
    }
    case SC_REPL_TOUCH: {
        apr_uint32_t n = sc_rd_u32(&r), i;
        apr_hash_t *latest = apr_hash_make(p);
        /* no count, or a count past what the message holds: refused */
        for (i = 0; i < n && !r.bad; i++) {
            const char *id = sc_rd_id(&r, p);
            apr_time_t when = (apr_time_t)sc_rd_u64(&r);
            apr_time_t *w;
            if (!id || r.bad) {
                break;
            }
            w = apr_hash_get(latest, base_of(p, id), APR_HASH_KEY_STRING);
            if (!w) {
                w = apr_palloc(p, sizeof(*w));
                *w = when;
                apr_hash_set(latest, base_of(p, id), APR_HASH_KEY_STRING, w);
            }
            else if (when > *w) {
                *w = when;
            }
        }
        if (r.bad) {
            FUZZ_CHECK(conn_in.state == SC_CS_CLOSED);
        }
        else {
            apr_hash_index_t *hi;
            FUZZ_CHECK(conn_in.state == SC_CS_OPEN);
            for (hi = apr_hash_first(p, after); hi; hi = apr_hash_next(hi)) {
                snap_sess *a = apr_hash_this_val(hi);
                snap_sess *b = snap_get(before, a->id);
                FUZZ_CHECK(b != NULL);
                apr_time_t *w = apr_hash_get(latest, apr_hash_this_key(hi),
                                             APR_HASH_KEY_STRING);
                apr_time_t want = b->last_access;
                /* a TOUCH's time is kept not after the module's now, which
                 * lies between dispatch_from and dispatch_to */
                if (w && *w > dispatch_from && *w > want) {
                    apr_time_t low = dispatch_from > want ? dispatch_from : want;
                    apr_time_t high = *w < dispatch_to ? *w : dispatch_to;
                    FUZZ_CHECK(a->last_access >= low
                               && a->last_access <= (high > want ? high : want));
                    continue;
                }
                if (w && *w > want) {
                    want = *w;
                }
                FUZZ_CHECK(a->last_access == want);
            }
        }
        check_transition(p, before, after, type, NULL, 0);
        break;
    }
    case SC_REPL_GET_ALL: {
        sc_transfer_out *t;
        int mine = 0;
        for (t = eng.transfers; t; t = t->next) {
            mine += t->to == from;
        }
        FUZZ_CHECK(mine == 1);
        FUZZ_CHECK(conn_in.state == SC_CS_OPEN);
        check_transition(p, before, after, type, NULL, 0);
        break;
    }
    case SC_REPL_ALL_DATA:
        if (conn_in.state == SC_CS_OPEN) {
            apr_uint32_t n = sc_rd_u32(&r);   /* no count: read as none */
            FUZZ_CHECK(eng.transfer_received == recv0 + n);
            FUZZ_CHECK(eng.store->hdr->transfer_in == tin0 + n);
        }
        else {
            FUZZ_CHECK(eng.transfer_received == recv0);
            FUZZ_CHECK(eng.store->hdr->transfer_in == tin0);
        }
        check_transition(p, before, after, type, NULL, 1);
        break;
    case SC_REPL_COMPLETE:
        sc_rd_u32(&r);
        if (r.bad) {
            /* no total: refused, nothing changes */
            FUZZ_CHECK(conn_in.state == SC_CS_CLOSED);
            FUZZ_CHECK(eng.state == state0);
            check_transition(p, before, after, type, NULL, 0);
            break;
        }
        FUZZ_CHECK(conn_in.state == SC_CS_OPEN);
        if (from == &peer_a && state0 == SC_MS_STARTING) {
            FUZZ_CHECK(eng.state == SC_MS_READY);
        }
        else {
            FUZZ_CHECK(eng.state == state0);
        }
        check_transition(p, before, after, type, NULL, 0);
        break;
    case SC_REPL_GET_SESSION: {
        const char *id = sc_rd_id(&r, p);
        if (!id) {
            FUZZ_CHECK(conn_in.state == SC_CS_CLOSED);
        }
        else {
            snap_sess *b = snap_get(before, id);
#ifdef SC_TOMB_PROBE
            int dead = !b && apr_hash_get(dead_bases, base_of(p, id), APR_HASH_KEY_STRING);
#else
            int dead = 0;
#endif
            FUZZ_CHECK(rec.sent->nelts == nsent0 + (b || dead ? 1 : 0));
            if (dead) {
                /* its tombstone, in a DIGEST naming its base alone */
                sent_t *s = &APR_ARRAY_IDX(rec.sent, nsent0, sent_t);
                sc_rd rr;
                sc_msg_digest d;
                FUZZ_CHECK(s->to == from && !s->is_ack && !s->broadcast);
                sc_rd_init(&rr, s->msg, s->len);
                FUZZ_CHECK(sc_msg_digest_decode(&rr, p, &d) && d.n == 1 && d.e[0].dead);
                FUZZ_CHECK(!strcmp(d.e[0].id, base_of(p, id)));
            }
            if (b) {
                sent_t *s = &APR_ARRAY_IDX(rec.sent, nsent0, sent_t);
                sc_rd rr;
                sc_sess_copy c;
                FUZZ_CHECK(s->to == from && !s->is_ack && !s->broadcast);
                sc_rd_init(&rr, s->msg, s->len);
                FUZZ_CHECK(sc_rd_u8(&rr) == SC_REPL_FULL);
                FUZZ_CHECK(sc_rd_full_record(&rr, p, &c));
                FUZZ_CHECK(!strcmp(c.id, b->id) && c.version == b->version);
                FUZZ_CHECK(same_data(b, c.data, c.data_len));
            }
        }
        check_transition(p, before, after, type, NULL, 0);
        break;
    }
    case SC_REPL_REBIND: {
        const char *id = sc_rd_id(&r, p), *to = sc_rd_id(&r, p);
        if (!id || !to || !base_same(id, to)) {
            FUZZ_CHECK(conn_in.state == SC_CS_CLOSED);
        }
        else {
            snap_sess *b = snap_get(before, id), *a = snap_get(after, id);
            FUZZ_CHECK(conn_in.state == SC_CS_OPEN);
            FUZZ_CHECK(!!a == !!b);
            if (b) {
                /* moved to 'to' only over the id 'id' */
                FUZZ_CHECK(!strcmp(a->id, !strcmp(b->id, id) ? to : b->id));
            }
        }
        check_transition(p, before, after, type, NULL, 0);
        break;
    }
#ifdef SC_TOMB_PROBE
    case SC_REPL_DIGEST: {
        sc_msg_digest d;
        apr_uint32_t i;
        int j;
        sc_rd_init(&r, msg, len);
        if (!sc_msg_digest_decode(&r, p, &d)) {
            FUZZ_CHECK(conn_in.state == SC_CS_CLOSED);
            check_transition(p, before, after, type, NULL, 0);
            break;
        }
        FUZZ_CHECK(conn_in.state == SC_CS_OPEN);
        if (state0 == SC_MS_STARTING) {
            /* taking a state transfer: it brings everything; nothing done */
            FUZZ_CHECK(rec.sent->nelts == nsent0 && !eng.ae_rounds);
            check_transition(p, before, after, type, NULL, 0);
            break;
        }
        /* dead entries: gone, and dead */
        removable = apr_hash_make(p);
        for (i = 0; i < d.n; i++) {
            if (d.e[i].dead) {
                apr_hash_set(removable, d.e[i].id, APR_HASH_KEY_STRING, "");
                apr_hash_set(dead_bases, apr_pstrdup(apr_hash_pool_get(dead_bases), d.e[i].id),
                             APR_HASH_KEY_STRING, "");
                FUZZ_CHECK(apr_hash_get(after, d.e[i].id, APR_HASH_KEY_STRING) == NULL);
            }
        }
        /* what it sends: GET_SESSION for some of its live entries */
        for (j = nsent0; j < rec.sent->nelts; j++) {
            sent_t *x = &APR_ARRAY_IDX(rec.sent, j, sent_t);
            sc_rd rr;
            const char *got;
            int named = 0;
            FUZZ_CHECK(!x->is_ack && !x->broadcast && x->to == from);
            sc_rd_init(&rr, x->msg, x->len);
            FUZZ_CHECK(sc_rd_u8(&rr) == SC_REPL_GET_SESSION);
            got = sc_rd_id(&rr, p);
            for (i = 0; got && i < d.n && !named; i++) {
                named = !d.e[i].dead && !strcmp(d.e[i].id, got);
            }
            FUZZ_CHECK(named);
        }
        if (d.flags & SC_DIGEST_ANSWER) {
            /* a round of this member's digest to it (sent by the tick) */
            sc_ae_round *x;
            int mine = 0;
            for (x = eng.ae_rounds; x; x = x->next) {
                mine += x->to == from;
            }
            FUZZ_CHECK(mine == 1);
        }
        check_transition(p, before, after, type, removable, 0);
        break;
    }
    case SC_REPL_DEAD: {
        /* a state transfer's tombstones: each base [len:1][hex] is removed
         * here and stays dead; one bad base (or no count) refuses them all */
        apr_uint32_t n = sc_rd_u32(&r), i;
        int bad = r.bad;              /* no count */
        apr_array_header_t *bases = apr_array_make(p, 4, sizeof(const char *));
        for (i = 0; i < n && !bad; i++) {
            unsigned blen = sc_rd_u8(&r);
            const unsigned char *b = sc_rd_bytes(&r, blen);
            apr_size_t k;
            bad = !b || blen < 1 || blen >= SC_TOMB_BASE;
            for (k = 0; !bad && k < blen; k++) {
                bad = !apr_isxdigit(b[k]);
            }
            if (!bad) {
                APR_ARRAY_PUSH(bases, const char *) = apr_pstrmemdup(p, (const char *)b, blen);
            }
        }
        FUZZ_CHECK((conn_in.state == SC_CS_CLOSED) == bad);
        removable = apr_hash_make(p);
        for (i = 0; !bad && i < (apr_uint32_t)bases->nelts; i++) {
            const char *base = APR_ARRAY_IDX(bases, i, const char *);
            apr_hash_set(removable, base, APR_HASH_KEY_STRING, "");
            apr_hash_set(dead_bases, apr_pstrdup(apr_hash_pool_get(dead_bases), base),
                         APR_HASH_KEY_STRING, "");
            FUZZ_CHECK(apr_hash_get(after, base, APR_HASH_KEY_STRING) == NULL);
        }
        check_transition(p, before, after, type, removable, 0);
        break;
    }
#endif
    }
    free(msg);
}

/* The ticks an hour later (and a minute after that): held deltas time out
 * (each answered once; one whose sender waits is asked for again first), a
 * requested transfer is sent (every stored session once, as stored). */
static void final_tick(apr_pool_t *p)
{
    apr_time_t now = apr_time_now() + apr_time_from_sec(3600);
    apr_hash_t *before, *got[2];
#ifdef SC_TOMB_PROBE
    apr_hash_t *tombs[2];
#endif
    int nsent0 = rec.sent->nelts, i, k, asked[2] = { 0, 0 }, completes[2] = { 0, 0 };
    sc_transfer_out *t;
    apr_uint32_t complete_total[2] = { 0, 0 };

    before = snapshot(p);
    got[0] = apr_hash_make(p);
    got[1] = apr_hash_make(p);
#ifdef SC_TOMB_PROBE
    tombs[0] = apr_hash_make(p);
    tombs[1] = apr_hash_make(p);
#endif
    for (t = eng.transfers; t; t = t->next) {
        FUZZ_CHECK(t->to == &peer_a || t->to == &peer_b);
        asked[t->to == &peer_b]++;
    }
    rec.in_tick = 1;
    sc_dm_tick(&eng, now);
    /* a held delta whose sender waits is first asked for once more (its
     * session asked of the sender, a second wait): given up a tick later */
    apr_pool_clear(eng.tmp);
    sc_dm_tick(&eng, now + apr_time_from_sec(60));
    rec.in_tick = 0;
    apr_pool_clear(eng.tmp);
    check_store(eng.store, p);
    FUZZ_CHECK(eng.held == NULL && eng.nheld == 0);
    FUZZ_CHECK(eng.transfers == NULL);
    FUZZ_CHECK(eng.ae_rounds == NULL);    /* digests asked for: sent whole */
    for (i = 0; i < rec.asked->nelts; i++) {
        FUZZ_CHECK(APR_ARRAY_IDX(rec.asked, i, asked_t).answered);
    }
    if (trace) {
        for (i = nsent0; i < rec.sent->nelts; i++) {
            sent_t *s = &APR_ARRAY_IDX(rec.sent, i, sent_t);
            fprintf(stderr, "tick: %s %s%s seq %" APR_UINT64_T_FMT " type %u len %zu\n",
                    s->is_ack ? (s->ok ? "ACK" : "FAIL_ACK") : "DATA",
                    s->broadcast ? "broadcast" : "to ", s->to ? s->to->route : "",
                    s->seq, s->len ? s->msg[0] : 0, (size_t)s->len);
        }
    }
    for (i = nsent0; i < rec.sent->nelts; i++) {
        sent_t *s = &APR_ARRAY_IDX(rec.sent, i, sent_t);
        sc_rd r;
        apr_uint32_t n, j;
        if (s->is_ack || s->broadcast) {
            continue;
        }
        k = s->to == &peer_b;
        sc_rd_init(&r, s->msg, s->len);
        switch (sc_rd_u8(&r)) {
        case SC_REPL_ALL_DATA:
            FUZZ_CHECK(asked[k] && !completes[k]);
            n = sc_rd_u32(&r);
            for (j = 0; j < n; j++) {
                sc_sess_copy c;
                snap_sess *b;
                FUZZ_CHECK(sc_rd_full_record(&r, p, &c));
                b = snap_get(before, c.id);
                FUZZ_CHECK(b != NULL);
                FUZZ_CHECK(!strcmp(b->id, c.id) && b->version == c.version);
                FUZZ_CHECK(same_data(b, c.data, c.data_len));
                /* once */
                FUZZ_CHECK(apr_hash_get(got[k], base_of(p, c.id), APR_HASH_KEY_STRING) == NULL);
                apr_hash_set(got[k], base_of(p, c.id), APR_HASH_KEY_STRING, b);
            }
            break;
        case SC_REPL_COMPLETE:
            completes[k]++;
            complete_total[k] = sc_rd_u32(&r);
            break;
#ifdef SC_TOMB_PROBE
        case SC_REPL_DEAD:
            /* after the blocks, before COMPLETE: ids no session here has */
            FUZZ_CHECK(asked[k] && !completes[k]);
            n = sc_rd_u32(&r);
            for (j = 0; j < n; j++) {
                unsigned blen = sc_rd_u8(&r);
                const char *base = apr_pstrmemdup(p, (const char *)sc_rd_bytes(&r, blen), blen);
                FUZZ_CHECK(apr_hash_get(before, base, APR_HASH_KEY_STRING) == NULL);
                apr_hash_set(tombs[k], base, APR_HASH_KEY_STRING, "");
            }
            break;
#endif
        default:
            break;
        }
    }
    for (k = 0; k < 2; k++) {
        FUZZ_CHECK(completes[k] == asked[k]);
#ifdef SC_TOMB_PROBE
        if (asked[k] && eng.store->hdr->tombs_evicted == 0) {
            /* every tombstone this input left is sent */
            apr_hash_index_t *hi;
            for (hi = apr_hash_first(p, dead_bases); hi; hi = apr_hash_next(hi)) {
                FUZZ_CHECK(apr_hash_get(tombs[k], apr_hash_this_key(hi),
                                        APR_HASH_KEY_STRING) != NULL);
            }
        }
#endif
        if (asked[k]) {
            /* every session, each once, and COMPLETE says how many */
            FUZZ_CHECK(apr_hash_count(got[k]) == apr_hash_count(before));
            FUZZ_CHECK(complete_total[k] == apr_hash_count(before));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    size_t off = 0;
    int n = 0;

    trace = getenv("FUZZ_TRACE") != NULL;
    reset(p);
    seen_versions = apr_hash_make(p);
#ifdef SC_TOMB_PROBE
    dead_bases = apr_hash_make(p);
#endif
    frame_seq = 0;
    new_conn(&peer_a);
    while (off < size && n < 64) {
        int ctl = data[off];
        size_t len = 0;
        if (off + 3 <= size) {
            len = ((size_t)data[off + 1] << 8) | data[off + 2];
            off += 3;
        }
        else {
            off = size;
        }
        if (len > size - off) {
            len = size - off;
        }
        one_message(p, data + off, len, ctl);
        off += len;
        n++;
    }
    final_tick(p);
    return 0;
}
