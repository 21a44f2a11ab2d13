/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * test_channel.c -- the channel's ACK and retry layer (sc_channel.c) without
 * sockets: a child's send that waits for an ACK, its ACK or FAIL_ACK, a lost
 * connection's retries (maxRetryAttempts), the Transport timeout, a member
 * found dead, and broadcasts answered once when every member settled;
 * a new engine's changes kept until it met the members known before.
 * Links sc_channel.c and the layers below it (fixture.c replaces the
 * transport).
 */
#include "unit.h"
#include "fixture.h"
#include "sc_channel.h"

#define ID_A 0xa1
#define ID_B 0xb2
#define ID_C 0xc3
#define ID_D 0xd4

/* Transport timeout 2500 ms, maxRetryAttempts 3 (Tomcat's defaults: 3000, 1). */
static const char block[] =
    "<Cluster className=\"org.apache.catalina.ha.tcp.SimpleTcpCluster\""
    " channelSendOptions=\"6\">\n"
    "  <Channel className=\"org.apache.catalina.tribes.group.GroupChannel\">\n"
    "    <Receiver className=\"org.apache.catalina.tribes.transport.nio.NioReceiver\"\n"
    "              address=\"127.0.0.1\" port=\"4000\"/>\n"
    "    <Sender className=\"org.apache.catalina.tribes.transport.ReplicationTransmitter\">\n"
    "      <Transport className=\"org.apache.catalina.tribes.transport.nio.PooledParallelSender\"\n"
    "                 timeout=\"2500\" maxRetryAttempts=\"3\"/>\n"
    "    </Sender>\n"
    "  </Channel>\n"
    "</Cluster>\n";

static const unsigned char msg[] = "\x01 a replication message";
#define MSG_LEN (sizeof(msg) - 1)

typedef struct {
    sc_engine *e;
    sc_peer *b, *c;
    sc_conn *child;
} world;

static world setup(void)
{
    world w;
    w.e = ut_engine("nodeA", ID_A, block, 16);
    w.b = ut_peer(w.e, "nodeB", ID_B, 4001);
    w.c = ut_peer(w.e, "nodeC", ID_C, 4002);
    ut_conn(w.e, w.b, SC_CONN_OUT);
    ut_conn(w.e, w.c, SC_CONN_OUT);
    w.child = ut_conn(w.e, NULL, SC_CONN_IPC);
    ut_reset_frames();
    return w;
}

/* An ACK (ok) or FAIL_ACK frame of 'seq' from the member on connection c,
 * through the frame handler the transport calls. */
static void acked(sc_engine *e, sc_conn *c, apr_uint64_t seq, int ok_, const char *reason)
{
    unsigned char buf[8 + 200];
    apr_size_t rl = reason ? strlen(reason) : 0;
    sc_frame_hdr h;
    sc_put64(buf, seq);
    memcpy(buf + 8, reason ? reason : "", rl);
    ut_hdr(&h, ok_ ? SC_MSG_ACK : SC_MSG_FAIL_ACK, 0, c->peer->id[0], 99, 8 + rl);
    sc_ch_on_ack_frame(e, c, &h, buf);
    apr_pool_clear(e->tmp);
}

/* The answers the child got (ACK or FAIL_ACK frames on its connection). */
static int answers(world *w)
{
    return ut_count(SC_MSG_ACK, w->child) + ut_count(SC_MSG_FAIL_ACK, w->child);
}

/* The connection to p broke: the transport closed it, the engine hands the
 * event to the channel. */
static void lost(sc_engine *e, sc_peer *p)
{
    if (p->out) {
        sc_tr_close(e, p->out, "broken");
    }
    sc_ch_on_conn_lost(e, p);
    apr_pool_clear(e->tmp);
}

static void one_member(void)
{
    world w = setup();
    const ut_frame *f, *a;
    apr_uint64_t seq, fail0;

    note("a send that waits for an ACK");
    sc_ch_send_request(w.e, w.child, 41, w.b, msg, MSG_LEN, 1);
    f = ut_last(SC_MSG_DATA, w.b->out);
    ok(f != NULL, "the message goes to nodeB on its connection");
    if (!f) {
        return;
    }
    ok(f->flags & SC_FF_ACK, "asking for an ACK");
    ok(f->len == MSG_LEN && !memcmp(f->payload, msg, MSG_LEN), "with the message");
    seq = f->seq;
    is(ut_npending(w.e), 1, "the send waits (one pending)");
    is(answers(&w), 0, "the child is not answered yet");

    acked(w.e, w.b->out, seq + 100, 1, NULL);
    is(answers(&w), 0, "an ACK of another frame answers nothing");
    is(ut_npending(w.e), 1, "the send still waits");

    acked(w.e, w.b->out, seq, 1, NULL);
    a = ut_last(SC_MSG_ACK, w.child);
    ok(a != NULL, "its ACK answers the child: ok");
    is(a ? a->seq : 0, 41, "the answer carries the child's request number");
    like(ut_answer_text(a), "acknowledged by nodeB", "and says who acknowledged");
    is(ut_npending(w.e), 0, "nothing waits any more");
    acked(w.e, w.b->out, seq, 1, NULL);
    is(answers(&w), 1, "a repeated ACK answers nothing more");

    note("a FAIL_ACK");
    ut_reset_frames();
    fail0 = w.e->shm->c.send_failures;
    sc_ch_send_request(w.e, w.child, 42, w.b, msg, MSG_LEN, 1);
    seq = ut_last(SC_MSG_DATA, w.b->out)->seq;
    acked(w.e, w.b->out, seq, 0, "session not stored: the store is full");
    a = ut_last(SC_MSG_FAIL_ACK, w.child);
    ok(a != NULL, "a FAIL_ACK answers the child: not ok");
    is(ut_count(SC_MSG_ACK, w.child), 0, "and no ACK");
    like(ut_answer_text(a), "nodeB refused the message: session not stored: the store is full",
         "with the member's reason");
    is(w.e->shm->c.send_failures, fail0 + 1, "counted as a send failure");
    is(ut_npending(w.e), 0, "nothing waits any more");

    note("a send without an ACK");
    ut_reset_frames();
    sc_ch_send_request(w.e, w.child, 43, w.b, msg, MSG_LEN, 0);
    f = ut_last(SC_MSG_DATA, w.b->out);
    ok(f && !(f->flags & SC_FF_ACK), "goes without asking for an ACK");
    like(ut_answer_text(ut_last(SC_MSG_ACK, w.child)), "without acknowledgement",
         "and is answered at once");
    is(ut_npending(w.e), 0, "nothing waits");

    note("a member that cannot be reached");
    ut_reset_frames();
    lost(w.e, w.c);
    ut.refuse_connect = 1;
    sc_ch_send_request(w.e, w.child, 44, w.c, msg, MSG_LEN, 1);
    ut.refuse_connect = 0;
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)), "cannot connect to nodeC",
         "no connection: answered not ok at once");
    is(ut_npending(w.e), 0, "nothing waits");
}

static void retries(void)
{
    world w = setup();
    const ut_frame *f;
    apr_uint64_t seq;
    int i;

    note("a lost connection: retries (maxRetryAttempts 3)");
    sc_ch_send_request(w.e, w.child, 51, w.b, msg, MSG_LEN, 1);
    seq = ut_last(SC_MSG_DATA, NULL)->seq;
    for (i = 1; i <= 3; i++) {
        int opened = ut.opened;
        lost(w.e, w.b);
        ok(ut.opened == opened + 1 && w.b->out, "retry %d: a new connection to nodeB", i);
        f = ut_last(SC_MSG_DATA, NULL);
        ok(f && f->conn == w.b->out && (f->flags & SC_FF_ACK)
           && f->len == MSG_LEN && !memcmp(f->payload, msg, MSG_LEN),
           "retry %d: the message is sent again on it, asking for an ACK", i);
        ok(f && f->seq != seq, "retry %d: under a number of its own", i);
        seq = f ? f->seq : 0;
        is(answers(&w), 0, "retry %d: the child is not answered", i);
        is(ut_npending(w.e), 1, "retry %d: the send still waits", i);
    }
    is(ut_count(SC_MSG_DATA, NULL), 4, "sent once and retried three times");
    lost(w.e, w.b);
    is(ut_count(SC_MSG_DATA, NULL), 4, "after maxRetryAttempts it is not sent again");
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)), "connection to nodeB lost",
         "the child is answered not ok");
    is(ut_npending(w.e), 0, "nothing waits any more");

    note("a retry's ACK");
    ut_reset_frames();
    sc_ch_send_request(w.e, w.child, 52, w.b, msg, MSG_LEN, 1);
    lost(w.e, w.b);
    seq = ut_last(SC_MSG_DATA, NULL)->seq;
    acked(w.e, w.b->out, seq, 1, NULL);
    like(ut_answer_text(ut_last(SC_MSG_ACK, w.child)), "acknowledged by nodeB",
         "the ACK of the retried frame answers the child ok");

    note("a lost connection to a member no longer alive is not retried");
    ut_reset_frames();
    sc_ch_send_request(w.e, w.child, 53, w.b, msg, MSG_LEN, 1);
    w.b->view = SC_VIEW_SUSPECT;
    lost(w.e, w.b);
    is(ut_count(SC_MSG_DATA, NULL), 1, "not sent again");
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)), "connection to nodeB lost (suspect)",
         "the child is answered not ok at once");
}

static void deadlines(void)
{
    world w = setup();
    apr_uint64_t timeouts0 = w.e->shm->c.ack_timeouts;
    apr_time_t t0 = apr_time_now();           /* before the send */

    note("the Transport timeout, the member heard since (slow, not gone)");
    sc_ch_send_request(w.e, w.child, 61, w.b, msg, MSG_LEN, 1);
    sc_ch_tick(w.e, t0 + apr_time_from_msec(1000));
    is(answers(&w), 0, "within the timeout: still waiting");
    is(ut_npending(w.e), 1, "one pending");
    /* a heartbeat came just before the tick: alive */
    w.b->last_heard = apr_time_now() + apr_time_from_msec(2500 + 400);
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(2500 + 500));
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)),
         "no ACK from nodeB within 2500 ms (Transport timeout)",
         "past it: the child is answered not ok");
    is(w.e->shm->c.ack_timeouts, timeouts0 + 1, "counted as an ACK timeout");
    is(ut_npending(w.e), 0, "nothing waits any more");

    /* dropTime 3000 + connectTimeout 1000 + a heartbeat period 500 after
     * the member was last heard: the verdict; the send waits for it when it
     * comes by 2500 + 1700 ms after the send */
    note("the Transport timeout, the member silent for 1 s before the send and since");
    ut_reset_frames();
    w.b->view = SC_VIEW_ALIVE;
    w.b->last_heard = apr_time_now() - apr_time_from_msec(1000);
    sc_ch_send_request(w.e, w.child, 63, w.b, msg, MSG_LEN, 1);
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(2500 + 500));
    is(answers(&w), 0, "past the timeout: not answered, the verdict on nodeB is waited for");
    is(ut_npending(w.e), 1, "still pending");
    w.b->view = SC_VIEW_DEAD;
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(2500 + 600));
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)), "nodeB is dead",
         "found dead: answered, as a send to a dead member");
    is(ut_npending(w.e), 0, "nothing waits any more");
    w.b->view = SC_VIEW_ALIVE;
    w.b->last_heard = apr_time_now() - apr_time_from_msec(1000);
    sc_ch_send_request(w.e, w.child, 64, w.b, msg, MSG_LEN, 1);
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(2500 + 500));
    is(answers(&w), 1, "silent again: waits for the verdict");
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(2500 + 500 + 3000 + 2500 + 1000));
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)), "no ACK from nodeB within 2500 ms",
         "no verdict by when it was due (the member answers the detector but not this): "
         "answered not ok");
    is(ut_npending(w.e), 0, "nothing waits any more");
    w.b->view = SC_VIEW_ALIVE;

    note("the member silent only since just before the send: its verdict would "
         "come after the child stops waiting");
    w.b->last_heard = apr_time_now() - apr_time_from_msec(10);
    sc_ch_send_request(w.e, w.child, 65, w.b, msg, MSG_LEN, 1);
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(2500 + 500));
    ok(answers(&w) == 3 && ut_npending(w.e) == 0,
       "past the timeout: answered not ok at once, as without a failure detector");
    w.b->last_heard = apr_time_now();

    note("a member found dead");
    ut_reset_frames();
    sc_ch_send_request(w.e, w.child, 62, w.b, msg, MSG_LEN, 1);
    w.b->view = SC_VIEW_DEAD;
    sc_ch_tick(w.e, apr_time_now());
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)), "nodeB is dead",
         "a send to a member found dead is answered not ok at the next tick");
    is(ut_npending(w.e), 0, "nothing waits any more");
}

/* A broadcast waiting for its ACKs (request req), nodeB's ACK in: what is
 * left waits for nodeC. */
static void broadcast_b_acked(world *w, apr_uint64_t req)
{
    const ut_frame *fb;
    sc_ch_broadcast_request(w->e, w->child, req, msg, MSG_LEN, 1);
    fb = ut_last(SC_MSG_DATA, w->b->out);
    ok(fb != NULL, "request %d: sent to nodeB", (int)req);
    if (fb) {
        acked(w->e, w->b->out, fb->seq, 1, NULL);
    }
}

/* A broadcast whose share for nodeC is left waiting (nodeB's ACK in), its
 * connection broken while nodeC is suspected and checked. */
static void share_lost_while_checked(world *w, apr_uint64_t req)
{
    ut_reset_frames();
    broadcast_b_acked(w, req);
    w->c->view = SC_VIEW_SUSPECT;
    w->c->checking = 1;
    lost(w->e, w->c);
}

static void broadcasts(void)
{
    world w = setup();
    sc_peer *d;
    sc_conn *nc;
    int i;
    const ut_frame *fb, *fc, *a;
    apr_uint64_t async0;

    note("a broadcast that waits for every ACK");
    d = ut_peer(w.e, "front", ID_D, 4003);
    d->observer = 1;
    ut_conn(w.e, d, SC_CONN_OUT);
    sc_ch_broadcast_request(w.e, w.child, 71, msg, MSG_LEN, 1);
    fb = ut_last(SC_MSG_DATA, w.b->out);
    fc = ut_last(SC_MSG_DATA, w.c->out);
    ok(fb && fc, "the message goes to nodeB and nodeC");
    ok(fb && fc && (fb->flags & SC_FF_ACK) && (fc->flags & SC_FF_ACK), "asking for ACKs");
    is(ut_count(SC_MSG_DATA, d->out), 0, "not to an observer (a front)");
    is(ut_npending(w.e), 2, "two shares wait");
    if (!fb || !fc) {
        return;
    }
    acked(w.e, w.b->out, fb->seq, 1, NULL);
    is(answers(&w), 0, "one ACK: the child still waits");
    acked(w.e, w.c->out, fc->seq, 1, NULL);
    is(answers(&w), 1, "every ACK: the child is answered, once");
    a = ut_last(SC_MSG_ACK, w.child);
    is(a ? a->seq : 0, 71, "ok, to its request");
    like(ut_answer_text(a), "acknowledged by 2 member(s)", "by both");

    note("a broadcast with a FAIL_ACK");
    ut_reset_frames();
    sc_ch_broadcast_request(w.e, w.child, 72, msg, MSG_LEN, 1);
    fb = ut_last(SC_MSG_DATA, w.b->out);
    fc = ut_last(SC_MSG_DATA, w.c->out);
    acked(w.e, w.c->out, fc->seq, 0, "a version before it is missing here");
    is(answers(&w), 0, "a FAIL_ACK of one: the child still waits for the other");
    acked(w.e, w.b->out, fb->seq, 1, NULL);
    is(answers(&w), 1, "answered once when both settled");
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)),
         "1 of 2 member(s) did not acknowledge: nodeC: a version before it is missing here",
         "not ok, with the refusal");

    note("a broadcast and a member found dead");
    ut_reset_frames();
    sc_ch_broadcast_request(w.e, w.child, 73, msg, MSG_LEN, 1);
    fb = ut_last(SC_MSG_DATA, w.b->out);
    w.c->view = SC_VIEW_DEAD;
    sc_ch_tick(w.e, apr_time_now());
    is(answers(&w), 0, "nodeC found dead: settled, the child still waits for nodeB");
    is(ut_npending(w.e), 1, "one share waits");
    acked(w.e, w.b->out, fb->seq, 1, NULL);
    a = ut_last(SC_MSG_ACK, w.child);
    ok(a != NULL && answers(&w) == 1, "nodeB's ACK: answered ok, once "
                                      "(a dead member is not waited for)");
    like(ut_answer_text(a), "acknowledged by 2 member(s)", "the change is on every live member");
    w.c->view = SC_VIEW_ALIVE;

    note("a broadcast past its deadline, nodeC heard since the send");
    ut_reset_frames();
    sc_ch_broadcast_request(w.e, w.child, 74, msg, MSG_LEN, 1);
    fb = ut_last(SC_MSG_DATA, w.b->out);
    acked(w.e, w.b->out, fb->seq, 1, NULL);
    w.c->last_heard = apr_time_now() + apr_time_from_msec(2500 + 400);
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(2500 + 500));
    is(answers(&w), 1, "answered once");
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)),
         "1 of 2 member(s) did not acknowledge: no ACK from nodeC within 2500 ms",
         "not ok: nodeC did not acknowledge in time");
    is(ut_npending(w.e), 0, "nothing waits any more");

    note("a broadcast past its deadline, nodeC silent since 1 s before the send (frozen)");
    ut_reset_frames();
    w.c->last_heard = apr_time_now() - apr_time_from_msec(1000);
    sc_ch_broadcast_request(w.e, w.child, 76, msg, MSG_LEN, 1);
    fb = ut_last(SC_MSG_DATA, w.b->out);
    acked(w.e, w.b->out, fb->seq, 1, NULL);
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(2500 + 500));
    is(answers(&w), 0, "past the deadline: the verdict on nodeC is waited for, no failure");
    w.c->view = SC_VIEW_DEAD;
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(2500 + 600));
    a = ut_last(SC_MSG_ACK, w.child);
    ok(a != NULL && answers(&w) == 1, "nodeC found dead: answered ok, once");
    like(ut_answer_text(a), "acknowledged by 2 member(s)",
         "the change is on every live member; the frozen one is not waited for");
    is(ut_npending(w.e), 0, "nothing waits any more");
    w.c->view = SC_VIEW_ALIVE;
    w.c->last_heard = apr_time_now();

    note("a broadcast whose child gave up");
    ut_reset_frames();
    sc_ch_broadcast_request(w.e, w.child, 75, msg, MSG_LEN, 1);
    fb = ut_last(SC_MSG_DATA, w.b->out);
    fc = ut_last(SC_MSG_DATA, w.c->out);
    sc_ch_forget_conn(w.e, w.child);
    acked(w.e, w.b->out, fb->seq, 1, NULL);
    acked(w.e, w.c->out, fc->seq, 1, NULL);
    is(answers(&w), 0, "a child connection forgotten (freed) is not answered");
    is(ut_npending(w.e), 0, "and nothing waits");

    note("a broadcast whose share's connection broke while nodeC is checked");
    ut_reset_frames();
    broadcast_b_acked(&w, 79);
    w.c->view = SC_VIEW_SUSPECT;      /* not retried: the check decides */
    w.c->checking = 1;
    w.c->last_heard = apr_time_now() - apr_time_from_msec(50);
    lost(w.e, w.c);
    is(answers(&w), 0, "the share waits for the check's verdict");
    ut_conn(w.e, w.c, SC_CONN_OUT);
    sc_ch_tick(w.e, apr_time_now());
    is(answers(&w), 0, "a new connection that nodeC's kernel accepted, nothing heard on it: "
                       "still waiting (a process being killed takes one too)");
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(200));
    is(answers(&w), 0, "... 200 ms later, still waiting (a dying process closes it within ms)");
    w.c->view = SC_VIEW_DEAD;         /* then refused: found dead */
    sc_ch_tick(w.e, apr_time_now());
    a = ut_last(SC_MSG_ACK, w.child);
    ok(a != NULL && answers(&w) == 1, "nodeC found dead: answered ok, once");
    like(ut_answer_text(a), "acknowledged by 2 member(s)", "the change is on every live member");
    is(ut_npending(w.e), 0, "nothing waits any more");

    note("... nodeC alive, checked, its retries spent (a kill under load): "
         "answered on a new connection, its share failed");
    ut_reset_frames();
    w.c->view = SC_VIEW_ALIVE;
    w.c->checking = 0;
    if (!w.c->out) {
        ut_conn(w.e, w.c, SC_CONN_OUT);
    }
    broadcast_b_acked(&w, 80);
    w.c->checking = 1;
    for (i = 0; i < 5; i++) {
        lost(w.e, w.c);               /* maxRetryAttempts 3: retried 4 times, then waits */
    }
    is(ut_count(SC_MSG_DATA, NULL) >= 5 ? 1 : 0, 1, "sent again on each new connection first");
    is(answers(&w), 0, "retries spent: the share waits for the check's verdict");
    nc = ut_conn(w.e, w.c, SC_CONN_OUT);
    w.c->last_heard = apr_time_now() + apr_time_from_msec(1);   /* a backlog read late */
    sc_ch_tick(w.e, apr_time_now());
    is(answers(&w), 0, "a new connection, nothing read on it (and a frame heard on no new "
                       "connection): still waiting");
    nc->last_rx = nc->opened + apr_time_from_msec(1);
    sc_ch_tick(w.e, apr_time_now() + apr_time_from_msec(2));
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)),
         "1 of 2 member(s) did not acknowledge: connection to nodeC lost",
         "nodeC answered on it: not ok, the message went with the broken connection");
    is(ut_npending(w.e), 0, "nothing waits any more");

    note("... nodeC frozen: a new connection its kernel took, held open without a word");
    share_lost_while_checked(&w, 82);
    nc = ut_conn(w.e, w.c, SC_CONN_OUT);
    sc_ch_tick(w.e, nc->opened + apr_time_from_msec(100));
    is(answers(&w), 0, "open and silent for 100 ms: waiting");
    sc_ch_tick(w.e, nc->opened + apr_time_from_msec(300));
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)),
         "1 of 2 member(s) did not acknowledge: connection to nodeC lost",
         "held open without a word for 300 ms: its process holds it: not ok at once "
         "(maxRetryAttempts spent), not at the Transport timeout");
    is(ut_npending(w.e), 0, "nothing waits any more");
    w.c->view = SC_VIEW_ALIVE;
    w.c->checking = 0;

    note("... a lost share whose member's check ended without a verdict: failed");
    share_lost_while_checked(&w, 81);
    sc_ch_tick(w.e, apr_time_now());
    is(answers(&w), 0, "waiting while nodeC is checked");
    w.c->checking = 0;
    sc_ch_tick(w.e, apr_time_now());
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)),
         "1 of 2 member(s) did not acknowledge: connection to nodeC lost",
         "the check over, nodeC not found dead: not ok");
    w.c->view = SC_VIEW_ALIVE;
    w.c->last_heard = apr_time_now();
    if (!w.c->out) {
        ut_conn(w.e, w.c, SC_CONN_OUT);
    }

    note("a broadcast with nobody to send to");
    ut_reset_frames();
    w.b->view = w.c->view = SC_VIEW_LEFT;
    sc_ch_broadcast_request(w.e, w.child, 76, msg, MSG_LEN, 1);
    like(ut_answer_text(ut_last(SC_MSG_ACK, w.child)), "no other member to replicate to",
         "answered ok at once");
    w.b->view = w.c->view = SC_VIEW_ALIVE;

    note("a broadcast that does not wait");
    ut_reset_frames();
    async0 = w.e->shm->ic.dispatch_async;
    sc_ch_broadcast_request(w.e, w.child, 77, msg, MSG_LEN, 0);
    is(ut_count(SC_MSG_DATA, NULL), 2, "sent to both");
    ok(!(ut_last(SC_MSG_DATA, NULL)->flags & SC_FF_ACK), "without asking for ACKs");
    is(answers(&w), 0, "the child is not answered (it does not wait)");
    is(ut_npending(w.e), 0, "nothing waits");
    is(w.e->shm->ic.dispatch_async, async0 + 1, "counted as sent asynchronously");

    note("a broadcast a member's connection refuses");
    ut_reset_frames();
    ut.refuse_sends = 1;
    sc_ch_broadcast_request(w.e, w.child, 78, msg, MSG_LEN, 1);
    ut.refuse_sends = 0;
    like(ut_answer_text(ut_last(SC_MSG_FAIL_ACK, w.child)),
         "2 of 2 member(s) did not acknowledge: send to nodeB failed",
         "answered not ok at once");
    is(ut_npending(w.e), 0, "nothing waits");
}

static void member_acks(void)
{
    world w = setup();
    sc_conn *in_b = ut_conn(w.e, w.b, SC_CONN_IN);
    const ut_frame *f;

    note("acknowledging a member's frame");
    sc_ch_ack(w.e, w.b, in_b, 1234, 1, NULL);
    f = ut_last(SC_MSG_ACK, in_b);
    ok(f != NULL, "an ACK goes on the connection the frame came on");
    is(ut_acked_seq(f), 1234, "naming the frame");
    sc_ch_ack(w.e, w.b, in_b, 1235, 0, "malformed delta");
    f = ut_last(SC_MSG_FAIL_ACK, in_b);
    is(ut_acked_seq(f), 1235, "a FAIL_ACK names the frame");
    is_str(ut_ack_reason(f), "malformed delta", "and the reason");
    sc_tr_close(w.e, in_b, "broken");
    ut_reset_frames();
    sc_ch_ack(w.e, w.b, in_b, 1236, 1, NULL);
    f = ut_last(SC_MSG_ACK, NULL);
    ok(f && f->conn == w.b->out, "that connection closed: the ACK goes on another to the member");
    is(ut_acked_seq(f), 1236, "naming the frame");
}

/* A row of the shared members' table as a previous engine left it. */
static void table_row(sc_engine *e, int slot, unsigned char id_byte, const char *route,
                      int view, int observer)
{
    sc_shm_member *m = &e->shm->members[slot];
    memset(m, 0, sizeof(*m));
    memset(m->id, id_byte, SC_ID_LEN);
    apr_cpystrn(m->route, route, sizeof(m->route));
    m->view = (apr_uint32_t)view;
    m->observer = (apr_uint32_t)observer;
}

static void early_changes(void)
{
    world w = setup();
    const ut_frame *f;
    static unsigned char big[64 * 1024];
    int i, n;

    note("a new engine: members its predecessor saw alive are waited for");
    table_row(w.e, 0, ID_B, "nodeB", SC_VIEW_ALIVE, 0);
    table_row(w.e, 1, ID_C, "nodeC", SC_VIEW_CONFIGURED, 0);   /* not alive then */
    table_row(w.e, 2, ID_D, "front", SC_VIEW_ALIVE, 1);        /* an observer */
    table_row(w.e, 3, ID_A, "nodeA", SC_VIEW_ALIVE, 0);        /* itself */
    sc_ch_expect_init(w.e);
    is(w.e->nexpect, 1, "one member expected: nodeB (not one that was not alive, not "
                        "a front, not itself)");
    w.b->view = SC_VIEW_CONFIGURED;   /* not met yet by this engine */
    sc_ch_broadcast_request(w.e, w.child, 81, msg, MSG_LEN, 0);
    sc_ch_broadcast_request(w.e, w.child, 82, msg, MSG_LEN, 1);
    is(ut_count(SC_MSG_DATA, NULL), 0, "a change for every member is kept: sent to nobody, "
                                       "nodeC alive included");
    is(answers(&w), 0, "the child that waits is not answered yet");
    sc_ch_tick(w.e, apr_time_now());
    apr_pool_clear(w.e->tmp);
    is(ut_count(SC_MSG_DATA, NULL), 0, "still kept while nodeB is not met");
    w.b->view = SC_VIEW_ALIVE;        /* met */
    sc_ch_tick(w.e, apr_time_now());
    apr_pool_clear(w.e->tmp);
    is(ut_count(SC_MSG_DATA, w.b->out), 2, "nodeB met: both sent to it");
    is(ut_count(SC_MSG_DATA, w.c->out), 2, "and to nodeC");
    f = ut_first(SC_MSG_DATA, w.b->out);
    ok(f && !(f->flags & SC_FF_ACK), "in their order: the one not waited for first");
    f = ut_last(SC_MSG_DATA, w.b->out);
    ok(f && (f->flags & SC_FF_ACK), "then the one waited for");
    is(w.e->nexpect, 0, "nobody expected any more");
    if (f) {
        acked(w.e, w.b->out, f->seq, 1, NULL);
        acked(w.e, w.c->out, ut_last(SC_MSG_DATA, w.c->out)->seq, 1, NULL);
    }
    f = ut_last(SC_MSG_ACK, w.child);
    ok(f && f->seq == 82, "the child is answered once both acknowledged");
    ut_reset_frames();
    sc_ch_broadcast_request(w.e, w.child, 83, msg, MSG_LEN, 0);
    is(ut_count(SC_MSG_DATA, NULL), 2, "a later change goes out at once");

    note("a member expected that does not come: dropTime at most");
    {
        /* the engine's clock is the tick's argument: a moment just inside
         * dropTime from the start and one past it */
        apr_interval_time_t drop = apr_time_from_msec(w.e->set->drop_ms > 0
                                                      ? w.e->set->drop_ms : 3000);
        apr_time_t t0, t1;
        ut_reset_frames();
        t0 = sc_engine_now(w.e);
        sc_ch_expect_init(w.e);
        t1 = sc_engine_now(w.e);
        w.b->view = SC_VIEW_CONFIGURED;
        sc_ch_broadcast_request(w.e, w.child, 84, msg, MSG_LEN, 0);
        is(ut_count(SC_MSG_DATA, NULL), 0, "kept");
        sc_ch_tick(w.e, t0 + drop - apr_time_from_msec(1));
        apr_pool_clear(w.e->tmp);
        is(ut_count(SC_MSG_DATA, NULL), 0, "still kept just inside dropTime");
        is(w.e->nexpect, 1, "nodeB still expected then");
        sc_ch_tick(w.e, t1 + drop);
        apr_pool_clear(w.e->tmp);
        is(ut_count(SC_MSG_DATA, w.c->out), 1, "dropTime past: sent to the members met");
        is(w.e->nexpect, 0, "and nodeB no longer expected");
    }

    note("a member expected that is found gone");
    ut_reset_frames();
    sc_ch_expect_init(w.e);
    sc_ch_broadcast_request(w.e, w.child, 85, msg, MSG_LEN, 0);
    w.b->view = SC_VIEW_DEAD;
    sc_ch_broadcast_request(w.e, w.child, 86, msg, MSG_LEN, 0);
    is(ut_count(SC_MSG_DATA, w.c->out), 2, "nodeB dead: what was kept, then the new one, "
                                           "go to the members alive");
    w.b->view = SC_VIEW_ALIVE;

    note("at most SC_EARLY_MAX_BYTES kept");
    ut_reset_frames();
    sc_ch_expect_init(w.e);
    w.b->view = SC_VIEW_CONFIGURED;
    memset(big, 'x', sizeof(big));
    n = SC_EARLY_MAX_BYTES / (int)sizeof(big) + 8;
    for (i = 0; i < n; i++) {
        sc_ch_broadcast_request(w.e, w.child, 100 + i, big, sizeof(big), 0);
    }
    ok(w.e->early_bytes <= SC_EARLY_MAX_BYTES, "the bytes kept stay within the bound");
    ok(ut_count(SC_MSG_DATA, w.c->out) >= 8 && ut_count(SC_MSG_DATA, w.c->out) < n,
       "the oldest beyond it went to the members met");
    is(ut_count(SC_MSG_DATA, w.b->out), 0, "not to nodeB, not met");
    sc_ch_broadcast_request(w.e, w.child, 99, msg, MSG_LEN, 1);
    sc_ch_forget_conn(w.e, w.child);
    sc_ch_early_flush(w.e);           /* the engine leaves */
    apr_pool_clear(w.e->tmp);
    is(ut_count(SC_MSG_DATA, w.c->out), n + 1, "leaving: the rest goes to the members met");
    ok(w.e->early == NULL && w.e->early_bytes == 0, "nothing kept any more");
    is(answers(&w), 0, "a child connection forgotten is not answered");
    w.b->view = SC_VIEW_ALIVE;
}

int main(void)
{
    ut_pool();
    one_member();
    retries();
    deadlines();
    broadcasts();
    member_acks();
    early_changes();
    return unit_done("test_channel");
}
