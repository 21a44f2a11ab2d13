/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * test_manager.c -- DeltaManager in the engine (sc_manager.c) against a real
 * session store, without sockets: FULL, DELTA on its base, a DELTA ahead of
 * its base held until the missing version comes (its ACK sent then), or given
 * up (the session asked for with GET_SESSION, the sender refused), REMOVE,
 * and the state transfer both ways (GET_ALL answered with ALL_DATA blocks of
 * sendAllSessionsSize, the tombstones and COMPLETE; ALL_DATA and COMPLETE
 * making a starting member ready); the conflict rule between versions
 * (sc_stamp_cmp) and what the DeltaManager does with concurrent copies (the
 * one the rule puts below refused and the other sent back, a minority's copy
 * on a version it branched from taken and settled, Conflicts counted, a
 * DELTA on other data at its base refused); a minority (members dead: its
 * writes marked, the store says so); anti-entropy (a member seen again gets
 * a digest asking for its own; a digest read: what is missing or below it
 * asked for, what it has a tombstone for removed and dead, a removed session
 * asked for answered with its tombstone; this member's digest, all its
 * sessions and tombstones, in parts within maxMessageSize).  Links
 * sc_manager.c, sc_channel.c (its ACKs) and the layers below (fixture.c
 * replaces the transport).
 */
#include "unit.h"
#include "fixture.h"
#include "sc_manager.h"
#include "sc_channel.h"
#include "sc_repl.h"
#include "sc_membership.h"

#define ID_A 0xa1
#define ID_B 0xb2
#define ID_C 0xc3

/* DeltaManager: blocks of 3 sessions (Tomcat's default: 1000). */
static const char block[] =
    "<Cluster className=\"org.apache.catalina.ha.tcp.SimpleTcpCluster\">\n"
    "  <Manager className=\"org.apache.catalina.ha.session.DeltaManager\"\n"
    "           sendAllSessions=\"false\" sendAllSessionsSize=\"3\"\n"
    "           sendAllSessionsWaitTime=\"0\" stateTransferTimeout=\"60\"/>\n"
    "  <Channel className=\"org.apache.catalina.tribes.group.GroupChannel\">\n"
    "    <Receiver className=\"org.apache.catalina.tribes.transport.nio.NioReceiver\"\n"
    "              address=\"127.0.0.1\" port=\"4000\"/>\n"
    "  </Channel>\n"
    "</Cluster>\n";

static apr_pool_t *mp;                 /* the messages' pool */
static apr_uint64_t frame_seq = 1000;

typedef struct {
    sc_engine *e;
    sc_peer *b, *c;
    sc_conn *in_b, *in_c;
} world;

static world setup(int state)
{
    world w;
    w.e = ut_engine("nodeA", ID_A, block, 32);
    w.e->state = state;
    w.e->next_sweep = apr_time_now() + apr_time_from_sec(3600);   /* no sweep */
    w.b = ut_peer(w.e, "nodeB", ID_B, 4001);
    w.c = ut_peer(w.e, "nodeC", ID_C, 4002);
    ut_conn(w.e, w.b, SC_CONN_OUT);
    ut_conn(w.e, w.c, SC_CONN_OUT);
    w.in_b = ut_conn(w.e, w.b, SC_CONN_IN);
    w.in_c = ut_conn(w.e, w.c, SC_CONN_IN);
    ut_reset_frames();
    return w;
}

static const char *sid(int n)
{
    return apr_psprintf(mp, "5e551011%024X.nodeB", (unsigned)n);
}

static sc_buf full_msg(const char *id, apr_uint64_t version, const char *data)
{
    sc_buf b;
    sc_sess_copy s;
    memset(&s, 0, sizeof(s));
    apr_cpystrn(s.id, id, sizeof(s.id));
    s.version = version;
    s.created = s.last_access = apr_time_now() - apr_time_from_sec(10);
    s.max_inactive = 1800;
    s.data = (char *)data;
    s.data_len = (apr_uint32_t)strlen(data);
    sc_buf_init(&b, mp, 256);
    sc_buf_u8(&b, SC_REPL_FULL);
    sc_repl_full_record(&b, &s);
    return b;
}

/* A FULL whose times are its sender's clock's, ahead of ours by 'ahead'
 * (created, then used again 'used' later). */
static sc_buf full_msg_ahead(const char *id, apr_interval_time_t ahead,
                             apr_interval_time_t used)
{
    sc_buf b;
    sc_sess_copy s;
    memset(&s, 0, sizeof(s));
    apr_cpystrn(s.id, id, sizeof(s.id));
    s.version = 1;
    s.created = apr_time_now() + ahead;
    s.last_access = s.created + used;
    s.max_inactive = 1800;
    s.data = (char *)"a=1";
    s.data_len = 3;
    sc_buf_init(&b, mp, 256);
    sc_buf_u8(&b, SC_REPL_FULL);
    sc_repl_full_record(&b, &s);
    return b;
}

static sc_buf delta_msg(const char *id, apr_uint64_t base, apr_uint64_t version,
                        const char *old_data, const char *new_data)
{
    sc_buf b;
    sc_buf_init(&b, mp, 256);
    sc_repl_delta(&b, id, base, version, apr_time_now(), 1800, old_data, new_data);
    return b;
}

static sc_buf id_msg(unsigned type, const char *id)
{
    sc_buf b;
    sc_buf_init(&b, mp, 64);
    sc_buf_u8(&b, type);
    if (id) {
        sc_buf_id(&b, id);
    }
    return b;
}

/* A DATA frame carrying msg on connection c, through the frame handler the
 * transport calls; acked: its sender waits for an ACK.  Returns its number. */
static apr_uint64_t deliver(sc_engine *e, sc_conn *c, const sc_buf *msg, int acked)
{
    sc_frame_hdr h;
    apr_uint64_t seq = ++frame_seq;
    unsigned char *copy = malloc(msg->len);       /* exactly its length */
    memcpy(copy, msg->buf, msg->len);
    ut_hdr(&h, SC_MSG_DATA, acked ? SC_FF_ACK : 0, c->peer ? c->peer->id[0] : 0x99, seq,
           msg->len);
    sc_dm_on_data_frame(e, c, &h, copy);
    free(copy);
    apr_pool_clear(e->tmp);
    return seq;
}

/* How frame 'seq' was answered to its sender: ACK frames naming it (ok),
 * FAIL_ACK frames naming it (refused), and the last reason. */
typedef struct {
    int acks, fails;
    const char *reason;
} answer;

static answer answer_of(apr_uint64_t seq)
{
    answer a = { 0, 0, NULL };
    int i;
    for (i = 0; i < ut.nframes; i++) {
        const ut_frame *f = &ut.frames[i];
        if (f->kind == SC_CONN_IPC || ut_acked_seq(f) != seq) {
            continue;
        }
        if (f->type == SC_MSG_ACK) {
            a.acks++;
        }
        else if (f->type == SC_MSG_FAIL_ACK) {
            a.fails++;
            a.reason = ut_ack_reason(f);
        }
    }
    return a;
}

static int stored(sc_engine *e, const char *id, sc_sess_copy *out)
{
    return sc_store_get(e->store, mp, id, 0, out) == SC_STORE_OK;
}

static apr_uint64_t version_of(sc_engine *e, const char *id)
{
    sc_sess_copy s;
    return stored(e, id, &s) ? s.version : 0;
}

static const char *data_of(sc_engine *e, const char *id)
{
    sc_sess_copy s;
    return stored(e, id, &s) ? apr_pstrdup(mp, s.data) : NULL;
}

static void full_and_delta(void)
{
    world w = setup(SC_MS_READY);
    const char *id = sid(1);
    sc_buf m;
    apr_uint64_t s1, s2, s3, s4;
    apr_time_t t0;
    answer a;

    note("FULL and DELTA");
    m = full_msg(id, 1, "a=1");
    s1 = deliver(w.e, w.in_b, &m, 1);
    is(version_of(w.e, id), 1, "FULL creates the session, at its version");
    is_str(data_of(w.e, id), "a=1", "with its data");
    a = answer_of(s1);
    ok(a.acks == 1 && a.fails == 0, "and is acknowledged, once");
    is(w.e->store->hdr->replicated_in, 1, "counted as replicated in");

    m = delta_msg(id, 1, 2, "a=1", "a=1&b=2");
    s2 = deliver(w.e, w.in_b, &m, 1);
    is(version_of(w.e, id), 2, "a DELTA on the stored version applies");
    is_str(data_of(w.e, id), "a=1&b=2", "its change is in the data");
    a = answer_of(s2);
    ok(a.acks == 1 && a.fails == 0, "and it is acknowledged");

    note("a DELTA ahead of its base: held");
    m = delta_msg(id, 3, 4, "a=1&b=2&c=3", "a=1&b=2&c=3&d=4");
    t0 = apr_time_now();                      /* before it is held */
    s4 = deliver(w.e, w.in_b, &m, 1);
    is(version_of(w.e, id), 2, "a DELTA on version 3 (2 stored) is not applied");
    is(w.e->nheld, 1, "it is held");
    a = answer_of(s4);
    ok(a.acks == 0 && a.fails == 0, "and not answered yet");
    /* within its wait (100 ms from when it was held, after t0) */
    sc_dm_tick(w.e, t0 + apr_time_from_msec(50));
    is(w.e->nheld, 1, "a tick before its wait is over keeps it");
    is(ut_count_repl(SC_REPL_GET_SESSION, NULL), 0, "and asks for nothing");

    m = delta_msg(id, 2, 3, "a=1&b=2", "a=1&b=2&c=3");
    s3 = deliver(w.e, w.in_c, &m, 1);
    is(version_of(w.e, id), 4, "the missing version arrives: both apply, in turn");
    is_str(data_of(w.e, id), "a=1&b=2&c=3&d=4", "with both changes");
    is(w.e->nheld, 0, "nothing is held any more");
    a = answer_of(s3);
    ok(a.acks == 1 && a.fails == 0, "the missing version is acknowledged");
    a = answer_of(s4);
    ok(a.acks == 1 && a.fails == 0, "and the held one too, once it is applied");
    {
        int i;
        const ut_frame *held_ack = NULL;
        for (i = 0; i < ut.nframes; i++) {
            if (ut.frames[i].type == SC_MSG_ACK && ut_acked_seq(&ut.frames[i]) == s4) {
                held_ack = &ut.frames[i];
            }
        }
        ok(held_ack && held_ack->peer == w.b, "the held one's ACK goes to its sender, nodeB");
    }

    note("a DELTA of a version stored already");
    m = delta_msg(id, 2, 3, "a=1&b=2", "a=1&b=2&c=3");
    s3 = deliver(w.e, w.in_c, &m, 1);
    is(version_of(w.e, id), 4, "changes nothing");
    a = answer_of(s3);
    ok(a.acks == 1 && a.fails == 0, "and is acknowledged (this member has it)");

    note("a FULL older than the stored version");
    m = full_msg(id, 2, "a=old");
    s1 = deliver(w.e, w.in_c, &m, 1);
    is(version_of(w.e, id), 4, "changes nothing");
    is_str(data_of(w.e, id), "a=1&b=2&c=3&d=4", "the data stays");
    a = answer_of(s1);
    ok(a.acks == 1 && a.fails == 0, "and is acknowledged (this member has a newer one)");

    note("a DELTA whose base never comes");
    m = delta_msg(id, 9, 10, "a=1", "a=2");
    s4 = deliver(w.e, w.in_b, &m, 1);
    is(w.e->nheld, 1, "held");
    ut_reset_frames();
    sc_dm_tick(w.e, apr_time_now() + apr_time_from_sec(1));
    is(w.e->nheld, 1, "after its wait still held: its sender waits for the ACK");
    {
        const ut_frame *g = ut_last_repl(SC_REPL_GET_SESSION, w.b->out);
        sc_rd r;
        ok(g != NULL, "the session is asked for: GET_SESSION to its sender");
        if (g) {
            sc_rd_init(&r, g->payload, g->len);
            sc_rd_u8(&r);
            is_str(sc_rd_id(&r, mp), id, "naming the session");
        }
    }
    a = answer_of(s4);
    ok(a.acks == 0 && a.fails == 0, "the sender is not answered yet");
    ut_reset_frames();
    sc_dm_tick(w.e, apr_time_now() + apr_time_from_sec(3));
    is(w.e->nheld, 0, "given up when no copy came within the renewed wait");
    is(ut_count_repl(SC_REPL_GET_SESSION, NULL), 0, "the session is not asked for twice");
    a = answer_of(s4);
    ok(a.acks == 0 && a.fails == 1, "the sender is refused (FAIL_ACK), once");
    like(a.reason, "a version before it never came", "saying why");
    is(version_of(w.e, id), 4, "the stored version stays");

    note("a DELTA whose base never came here, then its sender's copy (asked for)");
    m = full_msg(sid(2), 1, "a=1");
    deliver(w.e, w.in_b, &m, 0);
    m = delta_msg(sid(2), 2, 3, "a=2", "a=3");
    s4 = deliver(w.e, w.in_b, &m, 1);
    sc_dm_tick(w.e, apr_time_now() + apr_time_from_sec(1));
    is(w.e->nheld, 1, "held, the session asked for");
    ut_reset_frames();
    m = full_msg(sid(2), 3, "a=3");
    deliver(w.e, w.in_b, &m, 0);
    is(version_of(w.e, sid(2)), 3, "the sender's copy is taken (version 3)");
    is(w.e->nheld, 0, "nothing is held any more");
    a = answer_of(s4);
    ok(a.acks == 1 && a.fails == 0, "the held DELTA is acknowledged: the copy holds its version");

    note("the same while this member takes a state transfer (joining, or back from a freeze)");
    {
        int was = w.e->state;
        apr_uint64_t s5;
        w.e->state = SC_MS_STARTING;
        m = delta_msg(id, 11, 12, "a=1", "a=3");
        s5 = deliver(w.e, w.in_b, &m, 1);
        ut_reset_frames();
        sc_dm_tick(w.e, apr_time_now() + apr_time_from_sec(1));
        ok(ut_last_repl(SC_REPL_GET_SESSION, w.b->out) != NULL, "the session is asked for");
        sc_dm_tick(w.e, apr_time_now() + apr_time_from_sec(3));
        is(w.e->nheld, 0, "given up after its waits");
        a = answer_of(s5);
        ok(a.acks == 1 && a.fails == 0,
           "the sender's wait ends with an ACK: the session comes with the transfer");
        w.e->state = was;
    }

    note("GET_SESSION");
    ut_reset_frames();
    m = id_msg(SC_REPL_GET_SESSION, id);
    deliver(w.e, w.in_c, &m, 0);
    {
        const ut_frame *f = ut_last_repl(SC_REPL_FULL, w.in_c);
        sc_rd r;
        sc_sess_copy s;
        ok(f != NULL, "answered with a FULL on the connection it came on");
        if (f) {
            sc_rd_init(&r, f->payload, f->len);
            sc_rd_u8(&r);
            ok(sc_rd_full_record(&r, mp, &s) && !strcmp(s.id, id) && s.version == 4
               && !strcmp(s.data, "a=1&b=2&c=3&d=4"), "holding the stored session");
        }
    }
    ut_reset_frames();
    m = id_msg(SC_REPL_GET_SESSION, sid(999));
    deliver(w.e, w.in_c, &m, 0);
    is(ut_count(SC_MSG_DATA, NULL), 0, "a session not here: nothing sent");
}

static void removal(void)
{
    world w = setup(SC_MS_READY);
    const char *id = sid(2);
    sc_buf m;
    apr_uint64_t s;
    answer a;

    note("REMOVE");
    m = full_msg(id, 1, "x=1");
    deliver(w.e, w.in_b, &m, 1);
    is(version_of(w.e, id), 1, "a session");
    m = id_msg(SC_REPL_REMOVE, id);
    s = deliver(w.e, w.in_b, &m, 1);
    ok(!stored(w.e, id, &(sc_sess_copy){ 0 }), "REMOVE removes it");
    a = answer_of(s);
    ok(a.acks == 1, "and is acknowledged");
    ok(sc_store_dead(w.e->store, id), "its id stays dead");
    m = delta_msg(id, 1, 2, "x=1", "x=2");
    s = deliver(w.e, w.in_c, &m, 1);
    ok(!stored(w.e, id, &(sc_sess_copy){ 0 }), "a DELTA to it does not bring it back");
    is(w.e->nheld, 0, "nor is held");
    a = answer_of(s);
    ok(a.fails == 1 && a.acks == 0, "it is refused");
    like(a.reason, "invalidated or expired", "saying why");
    m = full_msg(id, 3, "x=3");
    s = deliver(w.e, w.in_c, &m, 1);
    ok(!stored(w.e, id, &(sc_sess_copy){ 0 }), "nor does a FULL");
    ok(answer_of(s).fails == 1, "refused too");
}

static void bad_frames(void)
{
    world w = setup(SC_MS_READY);
    sc_conn *stranger = ut_conn(w.e, NULL, SC_CONN_IN);
    sc_buf m;
    apr_uint64_t s;
    int bad0 = ut.bad_frames;

    note("malformed and untimely messages");
    m = full_msg(sid(3), 1, "a=1");
    deliver(w.e, stranger, &m, 1);
    is(ut.bad_frames, bad0 + 1, "DATA before HELLO is a bad frame");
    like(ut.bad_why, "before HELLO", "said so");
    is(stranger->state, SC_CS_CLOSED, "its connection is closed");
    ok(!stored(w.e, sid(3), &(sc_sess_copy){ 0 }), "nothing stored");

    m = delta_msg(sid(3), 5, 5, "a=1", "a=2");
    s = deliver(w.e, w.in_b, &m, 1);
    is(w.in_b->state, SC_CS_CLOSED, "a DELTA not above its base closes the connection");
    like(ut.closed_why, "malformed DELTA", "as malformed");
    is(w.e->nheld, 0, "nothing held");
    ok(answer_of(s).acks == 0, "and it is not acknowledged");
}

/* What the last ALL_DATA read says its sender holds: sessions, data blocks. */
static apr_uint32_t blocks_held[2];

/* The sessions of ALL_DATA blocks sent on c, in order, and their counts. */
static void read_blocks(const sc_conn *c, apr_hash_t *seen, int *blocks, int *counts,
                        int *total, int *first_ix, int *last_ix)
{
    int i;
    *blocks = *total = 0;
    *first_ix = *last_ix = -1;
    for (i = 0; i < ut.nframes; i++) {
        const ut_frame *f = &ut.frames[i];
        sc_rd r;
        apr_uint32_t n, k;
        if (f->conn != c || f->type != SC_MSG_DATA || f->payload[0] != SC_REPL_ALL_DATA) {
            continue;
        }
        if (*first_ix < 0) {
            *first_ix = i;
        }
        *last_ix = i;
        sc_rd_init(&r, f->payload, f->len);
        sc_rd_u8(&r);
        n = sc_rd_u32(&r);
        if (*blocks < 16) {
            counts[*blocks] = (int)n;
        }
        (*blocks)++;
        for (k = 0; k < n; k++) {
            sc_sess_copy s;
            if (!sc_rd_full_record(&r, mp, &s)) {
                counts[0] = -1;
                return;
            }
            apr_hash_set(seen, apr_pstrdup(mp, s.id), APR_HASH_KEY_STRING,
                         apr_psprintf(mp, "%" APR_UINT64_T_FMT " %s", s.version, s.data));
            (*total)++;
        }
        /* then the sessions' stamps, and what the sender holds */
        if (sc_rd_u8(&r) != SC_STAMP_TAG || !sc_rd_bytes(&r, (apr_size_t)n * 9)) {
            counts[0] = -1;
        }
        if (sc_rd_u8(&r) != SC_SIZE_TAG) {
            counts[0] = -1;
        }
        blocks_held[0] = sc_rd_u32(&r);
        blocks_held[1] = sc_rd_u32(&r);
        if (r.left || r.bad) {
            counts[0] = -1;
        }
    }
}

/* sendAllSessions="true" with a Receiver maxMessageSize of 64 KB: 1,500
 * sessions of about 100 bytes go in as few messages as that allows, each
 * block encoded in the transfer's own buffer and its stamps in the
 * transfer's own array (grown past its first 256 once, kept for the next
 * blocks); after COMPLETE the connection gives its buffers back. */
static const char block_all[] =
    "<Cluster className=\"org.apache.catalina.ha.tcp.SimpleTcpCluster\">\n"
    "  <Manager className=\"org.apache.catalina.ha.session.DeltaManager\"\n"
    "           sendAllSessions=\"true\" maxSessionSize=\"1024\"/>\n"
    "  <Channel className=\"org.apache.catalina.tribes.group.GroupChannel\">\n"
    "    <Receiver className=\"org.apache.catalina.tribes.transport.nio.NioReceiver\"\n"
    "              address=\"127.0.0.1\" port=\"4000\" maxMessageSize=\"65536\"/>\n"
    "  </Channel>\n"
    "</Cluster>\n";

static void transfer_out_large(void)
{
    sc_engine *e = ut_engine("nodeA", ID_A, block_all, 2000);
    sc_peer *b = ut_peer(e, "nodeB", ID_B, 4001);
    sc_conn *out = ut_conn(e, b, SC_CONN_OUT), *in = ut_conn(e, b, SC_CONN_IN);
    apr_hash_t *seen = apr_hash_make(mp);
    int blocks, counts[16], total, first, last, i, nmatch = 0, tries;
    char pad[101];
    sc_buf m;

    note("a state transfer of 1,500 sessions in messages of at most 64 KB");
    e->state = SC_MS_READY;
    e->next_sweep = apr_time_now() + apr_time_from_sec(3600);
    ut_reset_frames();
    memset(pad, 'p', 100);
    pad[100] = '\0';
    for (i = 0; i < 1500; i++) {
        const char *data = apr_psprintf(mp, "n=%d&pad=%s", i, pad);
        apr_uint64_t v;
        sc_store_put(e->store, sid(5000 + i), data, (apr_uint32_t)strlen(data), 0, 0,
                     apr_time_now(), apr_time_now(), 1800, &v);
    }
    m = id_msg(SC_REPL_GET_ALL, NULL);
    deliver(e, in, &m, 0);
    for (tries = 0; tries < 10 && !ut_count_repl(SC_REPL_COMPLETE, out); tries++) {
        sc_dm_tick(e, apr_time_now());
    }
    read_blocks(out, seen, &blocks, counts, &total, &first, &last);
    ok(blocks >= 3 && counts[0] > 256,
       "1,500 sessions of about 110 bytes in %d messages (the first of %d sessions)",
       blocks, counts[0]);
    ok(counts[0] >= 0, "each message: its sessions, then a stamp for each, what the sender "
       "holds, nothing more");
    is(total, 1500, "1,500 sessions sent");
    for (i = 0; i < 1500; i++) {
        const char *got = apr_hash_get(seen, sid(5000 + i), APR_HASH_KEY_STRING);
        nmatch += got && !strcmp(got, apr_psprintf(mp, "1 n=%d&pad=%s", i, pad));
    }
    is(nmatch, 1500, "each once, as stored");
    for (i = 0; i < ut.nframes; i++) {
        if (ut.frames[i].conn == out && ut.frames[i].payload[0] == SC_REPL_ALL_DATA) {
            ok(ut.frames[i].len <= 65536, "a message within maxMessageSize (%d bytes)",
               (int)ut.frames[i].len);
            break;
        }
    }
    is(ut_count_repl(SC_REPL_COMPLETE, out), 1, "then COMPLETE");
    ok(!e->transfers && !out->keep_buffers,
       "the transfer is over, and the connection keeps its buffers no longer");
}

static void transfer_out(void)
{
    world w = setup(SC_MS_READY);
    apr_hash_t *seen = apr_hash_make(mp);
    int blocks, counts[16], total, first, last, i, nmatch = 0, complete_ix = -1, dead_ix = -1;
    const ut_frame *f;
    sc_buf m;

    note("a state transfer: sending");
    for (i = 0; i < 8; i++) {
        const char *data = apr_psprintf(mp, "n=%d", i);
        apr_uint64_t v;
        sc_store_put(w.e->store, sid(100 + i), data, (apr_uint32_t)strlen(data), 0, 0,
                     apr_time_now(), apr_time_now(), 1800, &v);
    }
    sc_store_remove(w.e->store, sid(107));
    is(w.e->store->hdr->count, 7, "seven sessions here, one removed");

    m = id_msg(SC_REPL_GET_ALL, NULL);
    deliver(w.e, w.in_b, &m, 0);
    ok(w.e->transfers && w.e->transfers->to == w.b, "GET_ALL from nodeB: a transfer to it");
    deliver(w.e, w.in_b, &m, 0);
    ok(w.e->transfers && !w.e->transfers->next, "asked again: still one transfer (it starts over)");
    is(ut_count(SC_MSG_DATA, NULL), 0, "sent by the tick, not at once");
    sc_dm_tick(w.e, apr_time_now());
    read_blocks(w.b->out, seen, &blocks, counts, &total, &first, &last);
    is(blocks, 3, "seven sessions in blocks of sendAllSessionsSize 3: three ALL_DATA");
    ok(blocks == 3 && counts[0] == 3 && counts[1] == 3 && counts[2] == 1,
       "of 3, 3 and 1 session(s)");
    is(total, 7, "seven sessions sent");
    ok(blocks_held[0] == 7 && blocks_held[1] == w.e->store->hdr->blocks_used,
       "each block says what the sender holds: %u session(s), %u data block(s)",
       blocks_held[0], blocks_held[1]);
    is(apr_hash_count(seen), 7, "each once");
    for (i = 0; i < 7; i++) {
        const char *got = apr_hash_get(seen, sid(100 + i), APR_HASH_KEY_STRING);
        nmatch += got && !strcmp(got, apr_psprintf(mp, "%d n=%d", 1, i));
    }
    is(nmatch, 7, "each as stored (version and data)");
    ok(!apr_hash_get(seen, sid(107), APR_HASH_KEY_STRING), "not the removed one");
    for (i = 0; i < ut.nframes; i++) {
        f = &ut.frames[i];
        if (f->conn == w.b->out && f->type == SC_MSG_DATA) {
            if (f->payload[0] == SC_REPL_COMPLETE) {
                complete_ix = i;
            }
            else if (f->payload[0] == SC_REPL_DEAD) {
                dead_ix = i;
            }
        }
    }
    is(ut_count_repl(SC_REPL_COMPLETE, w.b->out), 1, "one COMPLETE");
    ok(complete_ix > last, "COMPLETE follows the blocks");
    ok(dead_ix > last && dead_ix < complete_ix, "the tombstones (DEAD) come between them");
    if (dead_ix >= 0) {
        sc_rd r;
        f = &ut.frames[dead_ix];
        sc_rd_init(&r, f->payload, f->len);
        sc_rd_u8(&r);
        is(sc_rd_u32(&r), 1, "one tombstone");
        {
            unsigned bl = sc_rd_u8(&r);
            const unsigned char *base = sc_rd_bytes(&r, bl);
            ok(base && !strncmp(sid(107), (const char *)base, bl) && bl == 32,
               "the removed session's id base");
        }
    }
    if (complete_ix >= 0) {
        sc_rd r;
        f = &ut.frames[complete_ix];
        sc_rd_init(&r, f->payload, f->len);
        sc_rd_u8(&r);
        is(sc_rd_u32(&r), 7, "COMPLETE says how many sessions were sent");
    }
    is(ut_count(SC_MSG_DATA, w.c->out), 0, "nothing to nodeC");
    ok(w.e->transfers == NULL, "the transfer is done");
    is(w.e->store->hdr->transfer_out, 7, "counted as sent in transfers");
    ut_reset_frames();
    sc_dm_tick(w.e, apr_time_now());
    is(ut_count(SC_MSG_DATA, NULL), 0, "the next tick sends nothing more");
}

static void transfer_in(void)
{
    world w = setup(SC_MS_STARTING);
    const ut_frame *f;
    const char *id1 = sid(201), *id2 = sid(202);
    sc_buf m;
    apr_uint64_t sd;
    answer a;

    note("a state transfer: receiving");
    sc_dm_tick(w.e, apr_time_now());
    f = ut_last_repl(SC_REPL_GET_ALL, NULL);
    ok(f != NULL, "a starting member asks a ready member for all sessions (GET_ALL)");
    ok(f && f->len == 1, "GET_ALL is one byte");
    ok(w.e->transfer_from != NULL && f && f->conn == w.e->transfer_from->out,
       "and remembers whom it asked");
    is(w.e->state, SC_MS_STARTING, "it is still starting");
    ok(sc_dm_receiving_state(w.e), "a state transfer to it runs (the engine does not gather)");
    if (!w.e->transfer_from) {
        return;
    }

    /* a delta ahead of its session's copy in the transfer */
    m = delta_msg(id1, 5, 6, "k=5", "k=6");
    sd = deliver(w.e, w.in_c, &m, 1);
    is(w.e->nheld, 1, "a delta to a session the transfer has not brought yet is held");

    {
        sc_buf b;
        sc_sess_copy s;
        sc_buf_init(&b, mp, 512);
        sc_buf_u8(&b, SC_REPL_ALL_DATA);
        sc_buf_u32(&b, 2);
        memset(&s, 0, sizeof(s));
        s.created = s.last_access = apr_time_now();
        s.max_inactive = 1800;
        apr_cpystrn(s.id, id1, sizeof(s.id));
        s.version = 5;
        s.data = "k=5";
        s.data_len = 3;
        sc_repl_full_record(&b, &s);
        apr_cpystrn(s.id, id2, sizeof(s.id));
        s.version = 9;
        s.data = "j=9";
        sc_repl_full_record(&b, &s);
        deliver(w.e, w.e->transfer_from == w.b ? w.in_b : w.in_c, &b, 0);
    }
    is(version_of(w.e, id2), 9, "ALL_DATA stores its sessions");
    is_str(data_of(w.e, id2), "j=9", "as sent");
    is(version_of(w.e, id1), 6, "and the held delta applies on its session's copy");
    is_str(data_of(w.e, id1), "k=6", "with its change");
    a = answer_of(sd);
    ok(a.acks == 1 && a.fails == 0, "the held delta is acknowledged then");
    is(w.e->transfer_received, 2, "two sessions received");
    is(w.e->state, SC_MS_STARTING, "still starting before COMPLETE");

    {
        sc_buf b;
        sc_peer *other = w.e->transfer_from == w.b ? w.c : w.b;
        sc_conn *other_in = other == w.b ? w.in_b : w.in_c;
        sc_buf_init(&b, mp, 8);
        sc_buf_u8(&b, SC_REPL_COMPLETE);
        sc_buf_u32(&b, 2);
        deliver(w.e, other_in, &b, 0);
        is(w.e->state, SC_MS_STARTING, "COMPLETE from a member not asked changes nothing");
        deliver(w.e, w.e->transfer_from == w.b ? w.in_b : w.in_c, &b, 0);
        is(w.e->state, SC_MS_READY, "COMPLETE from the member asked: ready");
        ok(!sc_dm_receiving_state(w.e),
           "no state transfer runs any more (the engine gathers its asynchronous changes "
           "again)");
        is(w.e->store->hdr->last_transfer_count, 2, "the transfer's count is recorded");
        is(w.e->next_heartbeat, 0, "the others are told at once (next heartbeat now)");
    }
    ut_reset_frames();
    sc_dm_tick(w.e, apr_time_now());
    is(ut_count_repl(SC_REPL_GET_ALL, NULL), 0, "a ready member asks for nothing more");
}

/* ---- versions, conflicts, anti-entropy ---- */

static sc_stamp stamp(apr_uint64_t v, apr_uint64_t h, apr_uint32_t flags, apr_uint64_t fork)
{
    sc_stamp s;
    s.version = v;
    s.hash = h;
    s.flags = flags;
    s.fork = fork;
    return s;
}

static void conflict_rule(void)
{
    sc_stamp maj6 = stamp(6, 11, 0, 0), maj7 = stamp(7, 12, 0, 0), maj5 = stamp(5, 10, 0, 0);
    sc_stamp min9 = stamp(9, 13, SC_SF_MINOR, 5), min9b = stamp(9, 14, SC_SF_MINOR, 5);
    sc_stamp min8f6 = stamp(8, 15, SC_SF_MINOR, 6), same6 = stamp(6, 11, SC_SF_MINOR, 4);
    sc_stamp maj6b = stamp(6, 99, 0, 0);

    note("the conflict rule (sc_stamp_cmp)");
    ok(sc_stamp_cmp(&maj7, &maj6) > 0 && sc_stamp_cmp(&maj6, &maj7) < 0,
       "with a majority, the higher version stays");
    ok(sc_stamp_cmp(&maj6, &min9) > 0 && sc_stamp_cmp(&min9, &maj6) < 0,
       "a majority's version after the minority branched (6 > 5) stays over the minority's, "
       "whatever its number (9)");
    ok(sc_stamp_cmp(&min9, &maj5) > 0,
       "a minority's change on a session the majority left at the version it branched from "
       "stays");
    ok(sc_stamp_cmp(&min8f6, &maj6) > 0, "... also branched from the majority's latest (6)");
    ok(sc_stamp_cmp(&maj6b, &maj6) > 0 && sc_stamp_cmp(&maj6, &maj6b) < 0,
       "the same number, other data: the higher hash stays, the same either way round");
    ok(sc_stamp_cmp(&min9b, &min9) > 0, "... between a minority's copies too");
    is(sc_stamp_cmp(&same6, &maj6), 0, "the same number and hash: the same version");
    ok(sc_stamp_conflict(&maj6, &min9), "a minority's copy replaced by the majority's: a conflict");
    ok(!sc_stamp_conflict(&min9, &maj5), "the majority's version it branched from: no conflict");
    ok(sc_stamp_conflict(&maj6b, &maj6), "two writes on one number: a conflict");
    ok(!sc_stamp_conflict(&maj7, &maj6), "an older version: no conflict");
    {
        /* every member orders any three copies the same way (no cycle) */
        sc_stamp all[] = { maj5, maj6, maj7, min9, min9b, min8f6, maj6b,
                           stamp(8, 1, SC_SF_MINOR, 7), stamp(9, 2, SC_SF_MINOR, 3) };
        int n = (int)(sizeof(all) / sizeof(all[0])), i, j, k, bad = 0;
        for (i = 0; i < n; i++) {
            for (j = 0; j < n; j++) {
                for (k = 0; k < n; k++) {
                    if (sc_stamp_cmp(&all[i], &all[j]) > 0 && sc_stamp_cmp(&all[j], &all[k]) > 0
                        && sc_stamp_cmp(&all[i], &all[k]) <= 0) {
                        bad++;
                    }
                }
            }
        }
        is(bad, 0, "the rule is transitive over %d copies", n);
    }
}

/* A FULL with a stamp. */
static sc_buf full_stamped(const char *id, apr_uint64_t version, const char *data,
                           apr_uint32_t flags, apr_uint64_t fork)
{
    sc_buf b;
    sc_sess_copy s;
    memset(&s, 0, sizeof(s));
    apr_cpystrn(s.id, id, sizeof(s.id));
    s.version = version;
    s.created = s.last_access = apr_time_now() - apr_time_from_sec(10);
    s.max_inactive = 1800;
    s.data = (char *)data;
    s.data_len = (apr_uint32_t)strlen(data);
    s.flags = flags;
    s.fork = fork;
    sc_buf_init(&b, mp, 256);
    sc_msg_full_encode(&b, &s);
    return b;
}

static sc_stamp stamp_of(sc_engine *e, const char *id)
{
    sc_stamp s;
    memset(&s, 0, sizeof(s));
    sc_store_stamp(e->store, id, &s);
    return s;
}

static void conflicts(void)
{
    world w = setup(SC_MS_READY);
    const char *id = sid(300), *id2 = sid(301);
    sc_buf m;
    apr_uint64_t s;
    answer a;
    const ut_frame *f;

    note("concurrent copies");
    m = full_msg(id, 6, "count=6");
    deliver(w.e, w.in_b, &m, 0);
    ut_reset_frames();
    m = full_stamped(id, 9, "count=9", SC_SF_MINOR, 5);
    s = deliver(w.e, w.in_c, &m, 1);
    is_str(data_of(w.e, id), "count=6", "a minority's copy branched before the version here (6) "
           "is not taken, however high its number (9)");
    a = answer_of(s);
    ok(a.fails == 1 && a.acks == 0, "refused (FAIL_ACK): not in effect here");
    like(a.reason, "conflict", "saying why");
    f = ut_last_repl(SC_REPL_FULL, w.in_c);
    ok(f != NULL, "and the copy here is sent back to its sender");
    if (f) {
        sc_rd r;
        sc_sess_copy c;
        sc_rd_init(&r, f->payload, f->len);
        ok(sc_msg_full_decode(&r, mp, &c) && c.version == 6 && !strcmp(c.data, "count=6")
           && c.stamped && c.flags == 0, "version 6, as stored, with its stamp");
    }
    is(w.e->store->hdr->conflicts, 0, "no conflict counted here: the copy here stayed");

    m = full_stamped(id2, 3, "a=1", 0, 0);
    deliver(w.e, w.in_b, &m, 0);
    m = full_stamped(id2, 5, "a=1&b=2", SC_SF_MINOR, 3);
    s = deliver(w.e, w.in_c, &m, 1);
    is(version_of(w.e, id2), 5, "a minority's copy branched from the version here is taken");
    ok(answer_of(s).acks == 1, "and acknowledged");
    ok(stamp_of(w.e, id2).flags == (SC_SF_MINOR | SC_SF_SETTLED) && stamp_of(w.e, id2).fork == 3,
       "kept a minority's (branched from 3) and settled: this member is outside any minority");

    note("a minority's copy here replaced by the majority's");
    m = full_stamped(id2, 4, "a=9", 0, 0);
    s = deliver(w.e, w.in_b, &m, 1);
    is_str(data_of(w.e, id2), "a=9", "the majority's version 4, after the branch at 3, "
           "replaces the minority's 5, though its number is lower");
    ok(answer_of(s).acks == 1, "acknowledged");
    is(w.e->store->hdr->conflicts, 1, "counted as a conflict (Conflicts)");
    m = full_stamped(id2, 6, "a=7", SC_SF_MINOR, 3);
    deliver(w.e, w.in_c, &m, 0);
    is(version_of(w.e, id2), 4, "a later copy of that minority's branch is not taken either");
    {
        world v = setup(SC_MS_READY);
        const char *id3 = sid(302);
        apr_uint64_t v2;
        m = full_stamped(id3, 5, "n=5", SC_SF_MINOR, 3);
        deliver(v.e, v.in_c, &m, 0);
        m = full_stamped(id3, 5, "n=50", 0, 0);
        deliver(v.e, v.in_b, &m, 0);
        is_str(data_of(v.e, id3), "n=50", "a majority's version 5 replaces a minority's 5");
        /* a request that read the minority's version 5 saves over it */
        ok(sc_store_put(v.e->store, id3, "n=6", 3, 5, 0, 0, apr_time_now(), 1800, &v2)
           == SC_STORE_STALE, "a request that read the number replaced merges (STALE) "
           "instead of writing over the copy that replaced it");
        ok(sc_store_put(v.e->store, id3, "n=51", 4, 5, 0, 0, apr_time_now(), 1800, &v2)
           == SC_STORE_OK && v2 == 6, "then writes on it");
    }

    note("a DELTA whose base here has other data");
    {
        sc_stamp made = stamp(7, 0, 0, 0);
        sc_buf d;
        m = full_stamped(id, 6, "count=6", 0, 0);
        sc_buf_init(&d, mp, 256);
        sc_repl_delta(&d, id, 6, 7, apr_time_now(), 1800, "count=5", "count=7");
        made.hash = sc_store_hash("count=7", 7);
        sc_repl_delta_stamp(&d, &made, sc_store_hash("count=5", 7));
        ut_reset_frames();
        s = deliver(w.e, w.in_c, &d, 1);
        is_str(data_of(w.e, id), "count=6", "is not applied on the data here");
        a = answer_of(s);
        ok(a.fails == 1, "refused");
        ok(ut_last_repl(SC_REPL_GET_SESSION, w.in_c) != NULL,
           "and the writer's copy, which the rule puts above (7 > 6), is asked for");
        made.flags = SC_SF_MINOR;
        made.fork = 4;
        ut_reset_frames();
        sc_buf_init(&d, mp, 256);
        sc_repl_delta(&d, id, 6, 7, apr_time_now(), 1800, "count=5", "count=7");
        sc_repl_delta_stamp(&d, &made, sc_store_hash("count=5", 7));
        s = deliver(w.e, w.in_c, &d, 1);
        a = answer_of(s);
        ok(a.fails == 1 && strstr(a.reason ? a.reason : "", "conflict") != NULL,
           "a minority's (branched from 4) is refused as a conflict");
        ok(ut_last_repl(SC_REPL_FULL, w.in_c) != NULL, "and the copy here sent back");
    }
}

/* A DELTA's result is checked against the writer's hash, also when this
 * member makes the result's hash from the base's (its stamps trusted:
 * sc_store_hash_trusted) rather than over the whole data: a wrong hash is
 * refused and the writer's copy asked for, the right one applied and kept
 * as the stamp's. */
static void delta_result_hash(void)
{
    world w = setup(SC_MS_READY);
    const char *before = "a=1&big=0123456789abcdef", *after = "a=2&big=0123456789abcdef";
    int trusted;

    for (trusted = 0; trusted < 2; trusted++) {
        const char *id = sid(500 + trusted), *how = trusted ? "from the base's" : "whole";
        sc_stamp made = stamp(2, 0, 0, 0);
        sc_buf m, d;
        answer a;
        if (trusted) {
            sc_store_hash_regime(w.e->store, 7, 1);
        }
        note("a DELTA's result, its hash made %s", how);
        ok(sc_store_hash_trusted(w.e->store) == trusted, "the store's stamps trusted: %d",
           trusted);
        m = full_stamped(id, 1, before, 0, 0);
        deliver(w.e, w.in_b, &m, 0);
        sc_buf_init(&d, mp, 256);
        sc_repl_delta(&d, id, 1, 2, apr_time_now(), 1800, before, after);
        made.hash = sc_store_hash("a=3&big=0123456789abcdef", 24);
        sc_repl_delta_stamp(&d, &made, sc_store_hash(before, 24));
        ut_reset_frames();
        a = answer_of(deliver(w.e, w.in_b, &d, 1));
        ok(a.fails == 1 && strstr(a.reason ? a.reason : "", "does not give") != NULL,
           "a wrong hash of the result is refused (%s)", how);
        is_str(data_of(w.e, id), before, "and the delta not applied (%s)", how);
        ok(ut_last_repl(SC_REPL_GET_SESSION, w.in_b) != NULL,
           "the writer's copy is asked for (%s)", how);
        sc_buf_init(&d, mp, 256);
        sc_repl_delta(&d, id, 1, 2, apr_time_now(), 1800, before, after);
        made.hash = sc_store_hash(after, 24);
        sc_repl_delta_stamp(&d, &made, sc_store_hash(before, 24));
        a = answer_of(deliver(w.e, w.in_b, &d, 1));
        ok(a.fails == 0, "the right hash is applied (%s)", how);
        is_str(data_of(w.e, id), after, "the result (%s)", how);
        ok(stamp_of(w.e, id).hash == made.hash, "its stamp has that hash (%s)", how);
    }
}

static void minority(void)
{
    world w = setup(SC_MS_READY);
    apr_time_t now = apr_time_now();
    const char *id = sid(400);
    apr_uint64_t v;
    sc_stamp st;

    note("a minority");
    sc_dm_tick(w.e, now);
    is(w.e->store->hdr->minority, 0, "three members alive: not a minority");
    is(w.e->store->hdr->quorum_seen, 3, "sees 3 ...");
    is(w.e->store->hdr->quorum_known, 3, "... of 3");
    sc_store_put(w.e->store, id, "a=1", 3, 0, 0, now, now, 1800, &v);
    ok(stamp_of(w.e, id).flags == 0, "a write: a majority's");
    sc_mb_set_view(w.e, w.b, SC_VIEW_DEAD, "test");
    sc_dm_tick(w.e, now);
    is(w.e->store->hdr->minority, 0, "one of the two others dead: 2 of 3, not a minority");
    sc_mb_set_view(w.e, w.c, SC_VIEW_DEAD, "test");
    sc_dm_tick(w.e, now);
    is(w.e->store->hdr->minority, 1, "both dead (heard just now: known): 1 of 3, a minority");
    sc_store_put(w.e->store, id, "a=2", 3, 1, 0, 0, now, 1800, &v);
    st = stamp_of(w.e, id);
    ok(st.flags == SC_SF_MINOR && st.fork == 1, "a write there is a minority's, branched from 1");
    sc_store_put(w.e->store, id, "a=3", 3, 2, 0, 0, now, 1800, &v);
    st = stamp_of(w.e, id);
    ok(st.flags == SC_SF_MINOR && st.fork == 1, "and the next one stays on that branch");
    w.b->view = SC_VIEW_ALIVE;
    w.c->view = SC_VIEW_ALIVE;
    sc_dm_tick(w.e, now);
    is(w.e->store->hdr->minority, 0, "the others back: no longer a minority");
    sc_store_put(w.e->store, id, "a=4", 3, 3, 0, 0, now, 1800, &v);
    st = stamp_of(w.e, id);
    ok(st.flags == SC_SF_MINOR && st.fork == 1,
       "a write on the branch not settled yet stays a minority's (the majority may have "
       "changed the session meanwhile)");
    w.b->view = w.c->view = SC_VIEW_DEAD;
    sc_dm_tick(w.e, now + apr_time_from_sec(400));
    is(w.e->store->hdr->minority, 0, "members unheard for longer than 300 s are not counted");
}

/* The DIGEST frames sent on c: their entries (live: "id v", dead: "base"),
 * their flags in order. */
static int digests_on(const sc_conn *c, apr_hash_t *live, apr_hash_t *dead, unsigned *flags,
                      int max)
{
    int i, n = 0;
    for (i = 0; i < ut.nframes; i++) {
        const ut_frame *f = &ut.frames[i];
        sc_rd r;
        sc_msg_digest d;
        apr_uint32_t k;
        if (f->conn != c || f->type != SC_MSG_DATA || f->payload[0] != SC_REPL_DIGEST) {
            continue;
        }
        sc_rd_init(&r, f->payload, f->len);
        if (!sc_msg_digest_decode(&r, mp, &d)) {
            return -1;
        }
        if (n < max) {
            flags[n] = d.flags;
        }
        n++;
        for (k = 0; k < d.n; k++) {
            if (d.e[k].dead) {
                apr_hash_set(dead, d.e[k].id, APR_HASH_KEY_STRING, "");
            }
            else {
                apr_hash_set(live, d.e[k].id, APR_HASH_KEY_STRING,
                             apr_psprintf(mp, "%" APR_UINT64_T_FMT, d.e[k].stamp.version));
            }
        }
    }
    return n;
}

static void anti_entropy(void)
{
    world w = setup(SC_MS_READY);
    apr_time_t now = apr_time_now();
    const char *have = sid(500), *older = sid(501), *newer = sid(502), *gone = sid(503),
               *missing = sid(504), *removed = sid(505);
    sc_buf m;
    sc_stamp st;
    apr_uint64_t v;
    apr_hash_t *live = apr_hash_make(mp), *dead = apr_hash_make(mp);
    unsigned flags[16];
    int parts, i;

    note("anti-entropy: a digest read");
    sc_store_put(w.e->store, have, "h=1", 3, 0, 0, now, now, 1800, &v);
    m = full_msg(older, 2, "o=2");
    deliver(w.e, w.in_b, &m, 0);
    m = full_msg(newer, 7, "n=7");
    deliver(w.e, w.in_b, &m, 0);
    m = full_msg(gone, 1, "g=1");
    deliver(w.e, w.in_b, &m, 0);
    sc_store_put(w.e->store, removed, "r=1", 3, 0, 0, now, now, 1800, &v);
    sc_store_remove(w.e->store, removed);
    sc_dm_tick(w.e, now);                 /* the members as they are now */
    ut_reset_frames();
    sc_buf_init(&m, mp, 512);
    sc_msg_digest_open(&m);
    st = stamp(1, sc_store_hash("h=1", 3), 0, 0);
    sc_msg_digest_add_live(&m, have, &st, 0);
    st = stamp(5, 1234, 0, 0);
    sc_msg_digest_add_live(&m, older, &st, 0);
    st = stamp(3, 1234, 0, 0);
    sc_msg_digest_add_live(&m, newer, &st, 0);
    st = stamp(1, 1234, 0, 0);
    sc_msg_digest_add_live(&m, missing, &st, 0);
    sc_msg_digest_add_live(&m, removed, &st, 0);
    sc_msg_digest_add_dead(&m, apr_pstrndup(mp, gone, 32), 900, 0);
    sc_msg_digest_close(&m, SC_DIGEST_ANSWER | SC_DIGEST_LAST, 6);
    ok(deliver(w.e, w.in_b, &m, 1) && answer_of(frame_seq).acks == 1, "a DIGEST from nodeB, acknowledged");
    {
        int asked_older = 0, asked_missing = 0, asked_other = 0;
        for (i = 0; i < ut.nframes; i++) {
            const ut_frame *f = &ut.frames[i];
            sc_rd r;
            const char *got;
            if (f->type != SC_MSG_DATA || f->payload[0] != SC_REPL_GET_SESSION) {
                continue;
            }
            sc_rd_init(&r, f->payload, f->len);
            sc_rd_u8(&r);
            got = sc_rd_id(&r, mp);
            if (got && !strcmp(got, older) && f->peer == w.b) {
                asked_older++;
            }
            else if (got && !strcmp(got, missing) && f->peer == w.b) {
                asked_missing++;
            }
            else {
                asked_other++;
            }
        }
        is(asked_older, 1, "a session whose copy there is above the one here is asked for");
        is(asked_missing, 1, "one missing here too");
        is(asked_other, 0, "nothing else (the same version, an older one there, one removed here)");
    }
    ok(!stored(w.e, gone, &(sc_sess_copy){ 0 }) && sc_store_dead(w.e->store, gone),
       "a session it has a tombstone for is removed here and stays dead");
    is(w.e->store->hdr->ae_removed, 1, "counted (AntiEntropyRemoved)");
    is(w.e->store->hdr->ae_asked, 2, "and the two asked for (AntiEntropyAsked)");
    ok(w.e->ae_rounds && w.e->ae_rounds->to == w.b && !(w.e->ae_rounds->flags & SC_DIGEST_ANSWER),
       "its digest asked for this member's: a round to nodeB, asking for nothing back");
    is(ut_count_repl(SC_REPL_DIGEST, NULL), 0, "sent by the tick, not at once");

    note("anti-entropy: this member's digest");
    sc_dm_tick(w.e, now);
    parts = digests_on(w.b->out, live, dead, flags, 16);
    ok(parts >= 1, "DIGEST to nodeB (%d part(s))", parts);
    ok(parts >= 1 && (flags[parts - 1] & SC_DIGEST_LAST) && !(flags[0] & SC_DIGEST_ANSWER),
       "the last part marked so");
    ok(apr_hash_get(live, have, APR_HASH_KEY_STRING) && apr_hash_get(live, newer, APR_HASH_KEY_STRING)
       && apr_hash_get(live, older, APR_HASH_KEY_STRING), "every session held, by id ...");
    is_str(apr_hash_get(live, newer, APR_HASH_KEY_STRING), "7", "... with its version");
    ok(!apr_hash_get(live, gone, APR_HASH_KEY_STRING)
       && apr_hash_get(dead, apr_pstrndup(mp, gone, 32), APR_HASH_KEY_STRING)
       && apr_hash_get(dead, apr_pstrndup(mp, removed, 32), APR_HASH_KEY_STRING),
       "and every tombstone, by id base");
    ok(w.e->ae_rounds == NULL, "the round is done");

    note("a removed session asked for");
    ut_reset_frames();
    m = id_msg(SC_REPL_GET_SESSION, removed);
    deliver(w.e, w.in_c, &m, 0);
    apr_hash_clear(dead);
    ok(digests_on(w.in_c, live, dead, flags, 16) == 1
       && apr_hash_get(dead, apr_pstrndup(mp, removed, 32), APR_HASH_KEY_STRING),
       "answered with its tombstone (a DIGEST on the connection it came on)");

    note("a member seen again");
    ut_reset_frames();
    sc_mb_set_view(w.e, w.c, SC_VIEW_DEAD, "test");
    sc_dm_tick(w.e, now);
    w.c->view = SC_VIEW_ALIVE;
    sc_dm_tick(w.e, now);
    ok(w.e->ae_rounds == NULL, "not at once (it settles for %d ms)", 300);
    sc_dm_tick(w.e, now + apr_time_from_msec(400));
    apr_hash_clear(live);
    apr_hash_clear(dead);
    parts = digests_on(w.c->out, live, dead, flags, 16);
    ok(parts >= 1 && (flags[0] & SC_DIGEST_ANSWER),
       "then this member's digest goes to it, asking for its own");
    is(w.e->store->hdr->ae_rounds, 2, "two rounds so far (AntiEntropyRounds)");

    note("a digest in parts within maxMessageSize");
    {
        world x = setup(SC_MS_READY);
        int total = 0;
        apr_hash_index_t *hi;
        for (i = 0; i < 30; i++) {
            sc_store_put(x.e->store, sid(600 + i), "p=1", 3, 0, 0, now, now, 1800, &v);
        }
        x.e->set = apr_pmemdup(mp, x.e->set, sizeof(*x.e->set));
        ((sc_settings *)x.e->set)->max_message_size = 256 + 700;
        apr_hash_clear(live);
        apr_hash_clear(dead);
        sc_dm_tick(x.e, now);
        sc_dm_tick(x.e, now + apr_time_from_msec(400));
        parts = digests_on(x.b->out, live, dead, flags, 16);
        for (hi = apr_hash_first(mp, live); hi; hi = apr_hash_next(hi)) {
            total++;
        }
        ok(parts >= 3, "30 sessions, parts of at most 700 bytes: %d parts", parts);
        is(total, 30, "every session once");
        {
            int biggest = 0;
            for (i = 0; i < ut.nframes; i++) {
                if (ut.frames[i].conn == x.b->out && ut.frames[i].payload[0] == SC_REPL_DIGEST
                    && (int)ut.frames[i].len > biggest) {
                    biggest = (int)ut.frames[i].len;
                }
            }
            ok(biggest <= 700, "none longer (%d bytes)", biggest);
        }
    }
}

/* A replica from a member whose clock is ahead keeps its last access at our
 * now, and its age: one used since its creation is not put on probation
 * (created == last access) by the bound. */
static void times_ahead(void)
{
    world w = setup(SC_MS_READY);
    sc_sess_copy s;
    sc_buf m;
    apr_time_t before;

    note("replicas from a clock ahead");
    before = apr_time_now();
    m = full_msg_ahead(sid(41), apr_time_from_sec(100), apr_time_from_sec(10));
    deliver(w.e, w.in_b, &m, 1);
    ok(stored(w.e, sid(41), &s), "a FULL 100 s ahead is stored");
    ok(s.last_access >= before && s.last_access <= apr_time_now(),
       "its last access is this member's now");
    ok(s.created < s.last_access && s.last_access - s.created == apr_time_from_sec(10),
       "its creation keeps its distance (10 s) to the last access");
    ok(!sc_store_on_probation(s.created, s.last_access), "so it is not on probation");
    {
        /* a DELTA from that clock: its last access bounded too, and the
         * creation the store holds kept */
        apr_time_t created = s.created;
        sc_buf_init(&m, mp, 256);
        sc_repl_delta(&m, sid(41), 1, 2, apr_time_now() + apr_time_from_sec(100), 1800, "a=1",
                      "a=2");
        deliver(w.e, w.in_b, &m, 1);
        ok(stored(w.e, sid(41), &s) && s.version == 2 && s.created == created
           && s.last_access <= apr_time_now(),
           "a DELTA 100 s ahead: its last access is now, the creation stays as stored");
    }

    m = full_msg_ahead(sid(42), apr_time_from_sec(100), 0);
    deliver(w.e, w.in_b, &m, 1);
    ok(stored(w.e, sid(42), &s) && sc_store_on_probation(s.created, s.last_access),
       "one of a single request (created == last access) stays on probation");

    m = full_msg_ahead(sid(43), apr_time_from_sec(30), apr_time_from_sec(5));
    deliver(w.e, w.in_b, &m, 1);
    ok(stored(w.e, sid(43), &s) && s.last_access - s.created == apr_time_from_sec(5)
       && s.last_access <= apr_time_now(), "30 s ahead (no warning): the same");
}

int main(void)
{
    apr_pool_create(&mp, ut_pool());
    full_and_delta();
    delta_result_hash();
    removal();
    bad_frames();
    transfer_out();
    transfer_out_large();
    transfer_in();
    conflict_rule();
    conflicts();
    minority();
    anti_entropy();
    times_ahead();
    return unit_done("test_manager");
}
