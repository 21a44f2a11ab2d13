/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * test_membership.c -- the member view (sc_membership.c) without sockets:
 * static members, heartbeats, restarts (new incarnations), older incarnations
 * refused, goodbyes, dropTime and the TCP failure detector through
 * sc_mb_tick's clock, routes claimed twice.  Links sc_membership.c and the
 * layers below it (fixture.c replaces the transport).
 */
#include "unit.h"
#include "fixture.h"
#include "sc_membership.h"

#define ID_A 0xa1                      /* this member, nodeA at :4000 */
#define ID_B 0xb2                      /* static member nodeB at :4001 */
#define ID_C 0xc3                      /* static member nodeC at :4002 */
#define ID_X 0xd4                      /* not listed */

#define MEMBER(port, id) \
    "      <Member className=\"org.apache.catalina.tribes.membership.StaticMember\"\n" \
    "              host=\"127.0.0.1\" port=\"" #port "\" uniqueId=\"{" id "}\"/>\n"
#define UID(b) #b "," #b "," #b "," #b "," #b "," #b "," #b "," #b "," \
               #b "," #b "," #b "," #b "," #b "," #b "," #b "," #b

/* StaticMembershipService: nodeB and nodeC (and this member itself, whom one
 * list serves too), a heartbeat every 500 ms, expirationTime 3000 ms; with or
 * without TcpFailureDetector (connectTimeout 1500 ms; Tomcat's default: 1000). */
static const char *block(int failure_detector)
{
    return apr_pstrcat(
        ut_pool(),
        "<Cluster className=\"org.apache.catalina.ha.tcp.SimpleTcpCluster\">\n"
        "  <Channel className=\"org.apache.catalina.tribes.group.GroupChannel\">\n"
        "    <Membership className=\"org.apache.catalina.tribes.membership.StaticMembershipService\"\n"
        "                pingInterval=\"500\" expirationTime=\"3000\">\n"
        MEMBER(4000, UID(161))
        MEMBER(4001, UID(178))
        MEMBER(4002, UID(195))
        "    </Membership>\n"
        "    <Receiver className=\"org.apache.catalina.tribes.transport.nio.NioReceiver\"\n"
        "              address=\"127.0.0.1\" port=\"4000\"/>\n",
        /* an interceptor written: Tomcat's defaults (TcpFailureDetector among
         * them) are not added */
        "    <Interceptor className=\"org.apache.catalina.tribes.group.interceptors"
        ".MessageDispatchInterceptor\"/>\n",
        failure_detector
            ? "    <Interceptor className=\"org.apache.catalina.tribes.group.interceptors"
              ".TcpFailureDetector\" connectTimeout=\"1500\"/>\n"
            : "",
        "  </Channel>\n"
        "</Cluster>\n", NULL);
}

static sc_peer *find_port(sc_engine *e, int port)
{
    sc_peer *p;
    for (p = e->peers; p; p = p->next) {
        if (p->port == port) {
            return p;
        }
    }
    return NULL;
}

static int npeers(sc_engine *e)
{
    sc_peer *p;
    int n = 0;
    for (p = e->peers; p; p = p->next) {
        n++;
    }
    return n;
}

/* A heartbeat frame on connection c, through the frame handler the transport
 * calls (the engine's table: HELLO, PING, PONG). */
static void heard(sc_engine *e, sc_conn *c, int type, unsigned char id, apr_uint64_t inc,
                  const char *route, int port, int state)
{
    sc_heartbeat hb;
    sc_frame_hdr h;
    unsigned char buf[SC_HB_MAX_LEN];
    ut_heartbeat(&hb, id, inc, route, port, state);
    ut_heartbeat_frame(&hb, type, ++c->rx_seq, &h, buf, sizeof(buf));
    sc_mb_on_heartbeat_frame(e, c, &h, buf);
    apr_pool_clear(e->tmp);
}

static void goodbye(sc_engine *e, sc_conn *c, unsigned char id, int state)
{
    sc_frame_hdr h;
    unsigned char st = (unsigned char)state;
    ut_hdr(&h, SC_MSG_GOODBYE, 0, id, ++c->rx_seq, 1);
    sc_mb_on_goodbye_frame(e, c, &h, &st);
}

static void static_members(void)
{
    sc_engine *e = ut_engine("nodeA", ID_A, block(0), 0);
    sc_peer *b, *c;

    note("static members");
    sc_mb_init(e);
    b = find_port(e, 4001);
    c = find_port(e, 4002);
    is(npeers(e), 2, "the block's three members are two members: this one is not listed");
    ok(b && c, "nodeB and nodeC are listed");
    if (!b || !c) {
        return;
    }
    ok(b->is_static && c->is_static, "both static");
    is(b->view, SC_VIEW_CONFIGURED, "nodeB not heard yet: configured");
    ok(b->resolved, "its address resolves (numeric)");
    ok(b->id[0] == ID_B && b->id[15] == ID_B, "its uniqueId is read from the block");
    ok(!b->id_known, "but not known as its id until it says so");

    /* the tick keeps a connection to every static member */
    ut.connects = ut.opened = ut.mcast_sends = 0;
    sc_mb_tick(e, apr_time_now());
    ok(b->out && c->out, "the tick connects to both static members");
    is(ut.mcast_sends, 1, "and sends its heartbeat");
}

static void heartbeats(void)
{
    sc_engine *e = ut_engine("nodeA", ID_A, block(0), 0);
    sc_peer *b, *x;
    sc_conn *in;
    apr_uint64_t restarts;

    note("heartbeats, incarnations, goodbyes");
    sc_mb_init(e);
    b = find_port(e, 4001);
    in = ut_conn(e, NULL, SC_CONN_IN);
    ut_reset_frames();

    heard(e, in, SC_MSG_HELLO, ID_B, 100, "nodeB", 4001, SC_MS_READY);
    is(b->view, SC_VIEW_ALIVE, "a HELLO from static member nodeB makes it alive");
    is_str(b->route, "nodeB", "its route is the heartbeat's");
    ok(b->id_known && b->incarnation == 100, "its id and incarnation are known");
    is(b->hb_state, SC_MS_READY, "its state is the heartbeat's");
    ok(in->peer == b, "the inbound connection is nodeB's now");
    is(ut_count(SC_MSG_PONG, in), 1, "the HELLO is answered with a PONG on its connection");
    is(b->restarts_seen, 0, "a member first heard is no restart");
    ok(sc_mb_find_route(e, "nodeB") == b, "nodeB is found by its route");

    ut_reset_frames();
    heard(e, in, SC_MSG_PONG, ID_B, 100, "nodeB", 4001, SC_MS_READY);
    is(ut_count(0, in), 0, "a PONG is not answered");

    /* a restart: the same id with a new incarnation; its frames are
     * numbered from 1 again, so its replay window starts over */
    b->replay = calloc(1, sizeof(*b->replay));
    b->replay->top = 5000;
    b->replay->bits[3] = 0xff;
    b->hb_seq_max = 77;
    ut.replay_takes = 0;
    in->rx_seq = 6;        /* heard() numbers this one 7 */
    heard(e, in, SC_MSG_PING, ID_B, 200, "nodeB", 4001, SC_MS_READY);
    is(b->incarnation, 200, "a new incarnation is taken");
    is(b->restarts_seen, 1, "and counted as a restart");
    is(b->view, SC_VIEW_ALIVE, "it stays alive");
    is(b->replay->top, 0, "its replay window is reset");
    is(b->replay->bits[3], 0, "with none of the old numbers left in it");
    is(ut.replay_takes, 1, "the connection's number is taken into the new window");
    is(ut.replay_seq, 7, "the number of the frame that carried the heartbeat");
    is(b->hb_seq_max, 0, "its multicast heartbeat numbers start over too");

    /* an older incarnation: a heartbeat from before the restart */
    restarts = b->restarts_seen;
    {
        sc_heartbeat hb;
        ut_heartbeat(&hb, ID_B, 150, "nodeB", 4001, SC_MS_READY);
        ok(sc_mb_on_heartbeat(e, &hb, in, "test") == NULL,
           "a heartbeat of an older incarnation is refused");
    }
    is(b->incarnation, 200, "the newer incarnation stays");
    is(b->restarts_seen, restarts, "no restart counted");

    /* a goodbye */
    goodbye(e, in, ID_B, SC_MS_LEAVING);
    is(b->view, SC_VIEW_LEFT, "a GOODBYE makes it left");
    like(b->verdict, "goodbye", "the verdict says it said goodbye");
    heard(e, in, SC_MSG_PING, ID_B, 200, "nodeB", 4001, SC_MS_READY);
    is(b->view, SC_VIEW_LEFT, "a heartbeat of the same incarnation still in flight "
                              "does not bring it back");
    heard(e, in, SC_MSG_HELLO, ID_B, 300, "nodeB", 4001, SC_MS_STARTING);
    is(b->view, SC_VIEW_ALIVE, "a new incarnation after the goodbye is alive again");
    is(b->restarts_seen, restarts + 1, "and counted as a restart");
    is(b->hb_state, SC_MS_STARTING, "starting, as its heartbeat says");

    /* a goodbye announcing a restart */
    goodbye(e, in, ID_B, SC_MS_RESTARTING);
    is(b->view, SC_VIEW_RESTARTING, "a GOODBYE with 'restarting' holds it as restarting");
    /* the clock from when it was last heard: no assumption on how long the
     * test itself takes */
    sc_mb_tick(e, b->last_heard + apr_time_from_msec(3000 + 500));
    is(b->view, SC_VIEW_RESTARTING, "still held after dropTime");
    sc_mb_tick(e, b->last_heard + apr_time_from_msec(2 * 3000 + 500));
    is(b->view, SC_VIEW_DEAD, "dead when it did not come back within twice dropTime");

    /* StaticMembershipService: a member not listed is no member */
    {
        sc_heartbeat hb;
        int before = npeers(e);
        ut_heartbeat(&hb, ID_X, 1, "nodeX", 4999, SC_MS_READY);
        x = sc_mb_on_heartbeat(e, &hb, NULL, "test");
        ok(x == NULL, "a heartbeat of a member the block does not list is ignored");
        is(npeers(e), before, "and adds no member");
    }
}

static void silence(void)
{
    sc_engine *e = ut_engine("nodeA", ID_A, block(0), 0);
    sc_peer *b, *c;
    sc_conn *in;
    apr_time_t t0;
    apr_uint64_t dead0;

    note("dropTime without a failure detector");
    sc_mb_init(e);
    b = find_port(e, 4001);
    c = find_port(e, 4002);
    in = ut_conn(e, NULL, SC_CONN_IN);
    heard(e, in, SC_MSG_HELLO, ID_B, 100, "nodeB", 4001, SC_MS_READY);
    t0 = b->last_heard;
    dead0 = e->shm->ic.fd_dead;

    sc_mb_tick(e, t0 + apr_time_from_msec(3000 - 500));
    is(b->view, SC_VIEW_ALIVE, "silent for less than dropTime: alive");
    sc_mb_tick(e, t0 + apr_time_from_msec(3000 + 500));
    is(b->view, SC_VIEW_DEAD, "silent for more than dropTime: dead");
    like(b->verdict, "no heartbeat for 3000 ms", "the verdict names dropTime");
    is(e->shm->ic.fd_dead, dead0 + 1, "counted as a member declared dead");
    is(c->view, SC_VIEW_CONFIGURED, "a member never heard is not declared dead");

    note("the TCP failure detector");
    e = ut_engine("nodeA", ID_A, block(1), 0);
    sc_mb_init(e);
    b = find_port(e, 4001);
    c = find_port(e, 4002);
    in = ut_conn(e, NULL, SC_CONN_IN);
    heard(e, in, SC_MSG_HELLO, ID_B, 100, "nodeB", 4001, SC_MS_READY);
    heard(e, in, SC_MSG_HELLO, ID_C, 100, "nodeC", 4002, SC_MS_READY);
    ok(b->out != NULL, "nodeB has a connection of ours");
    t0 = c->last_heard > b->last_heard ? c->last_heard : b->last_heard;
    ut_reset_frames();
    /* the next heartbeat is not due: only the failure detector pings */
    e->next_heartbeat = e->next_ping = t0 + apr_time_from_sec(3600);
    sc_mb_tick(e, t0 + apr_time_from_msec(3000 + 100));
    is(b->view, SC_VIEW_SUSPECT, "silent for dropTime: suspected, not dead");
    ok(b->checking, "a TCP check runs");
    is(ut_count(SC_MSG_PING, b->out), 1, "a PING goes to it on its connection");
    like(b->verdict, "TCP check running", "the verdict says so");
    /* a suspected member that answers was a false alarm */
    {
        apr_uint64_t false0 = e->shm->ic.fd_false_alarms;
        is(c->view, SC_VIEW_SUSPECT, "nodeC, as silent, is suspected too");
        heard(e, in, SC_MSG_PONG, ID_C, 100, "nodeC", 4002, SC_MS_READY);
        is(c->view, SC_VIEW_ALIVE, "its answer makes it alive again");
        is(e->shm->ic.fd_false_alarms, false0 + 1, "counted as a false alarm");
    }
    sc_mb_tick(e, t0 + apr_time_from_msec(3000 + 100 + 1000));
    is(b->view, SC_VIEW_SUSPECT, "nodeB still suspected within connectTimeout");
    sc_mb_tick(e, t0 + apr_time_from_msec(3000 + 100 + 1500 + 100));
    is(b->view, SC_VIEW_DEAD, "dead when the check is not answered within connectTimeout");
    like(b->verdict, "no answer to the TCP check within 1500 ms", "the verdict says why");

    /* a refused connection to a live member: dead at once */
    heard(e, in, SC_MSG_PING, ID_C, 100, "nodeC", 4002, SC_MS_READY);
    is(c->view, SC_VIEW_ALIVE, "nodeC heard again: alive");
    sc_mb_on_refused(e, c, "connection refused");
    is(c->view, SC_VIEW_DEAD, "a refused connection makes a live member dead "
                              "(TcpFailureDetector)");
    like(c->verdict, "TCP check: connection refused", "the verdict says why");
}

static void conflicts(void)
{
    sc_engine *e = ut_engine("nodeA", ID_A, block(0), 0);
    sc_peer *b, *c;
    sc_conn *in_b, *in_c, *in_x;
    int closes;

    note("routes claimed twice");
    sc_mb_init(e);
    b = find_port(e, 4001);
    c = find_port(e, 4002);
    in_b = ut_conn(e, NULL, SC_CONN_IN);
    in_c = ut_conn(e, NULL, SC_CONN_IN);
    heard(e, in_b, SC_MSG_HELLO, ID_B, 100, "nodeB", 4001, SC_MS_READY);
    is(b->view, SC_VIEW_ALIVE, "nodeB is alive");

    /* nodeC's address and id, claiming nodeB's route */
    closes = ut.closes;
    ut_reset_frames();
    heard(e, in_c, SC_MSG_HELLO, ID_C, 100, "nodeB", 4002, SC_MS_READY);
    is(c->view, SC_VIEW_REFUSED, "a second id claiming a live member's route is refused");
    like(c->verdict, "route nodeB is held by 127.0.0.1:4001", "the verdict names the holder");
    is(b->view, SC_VIEW_ALIVE, "the holder stays alive");
    is(ut.closes, closes + 1, "the claimant's connection is closed");
    is(in_c->state, SC_CS_CLOSED, "that one");
    is(ut_count(SC_MSG_PONG, in_c), 0, "and not answered");
    ok(sc_mb_find_route(e, "nodeB") == b, "the route still leads to its holder");

    /* this member's own route, claimed by a member not listed at all */
    in_x = ut_conn(e, NULL, SC_CONN_IN);
    closes = ut.closes;
    heard(e, in_x, SC_MSG_HELLO, ID_X, 1, "nodeA", 4999, SC_MS_READY);
    is(ut.closes, closes + 1, "a member claiming this member's route is refused");
    like(ut.closed_why, "duplicate route", "as a duplicate route");
    {
        unsigned char x[SC_ID_LEN];
        memset(x, ID_X, sizeof(x));
        ok(memcmp(e->conflict_id, x, SC_ID_LEN) == 0,
           "the claimant is remembered (logged once a minute)");
    }

    /* a listed member that takes this member's route */
    {
        sc_conn *out_b = b->out;
        sc_heartbeat hb;
        ut_heartbeat(&hb, ID_B, 100, "nodeA", 4001, SC_MS_READY);
        ok(out_b != NULL, "nodeB has a connection of ours");
        ok(sc_mb_on_heartbeat(e, &hb, out_b, "test") == NULL,
           "a listed member claiming this member's route is refused");
        is(b->view, SC_VIEW_REFUSED, "and no longer a member");
        like(b->verdict, "uses this member's route nodeA", "the verdict says why");
    }
}

int main(void)
{
    ut_pool();
    static_members();
    heartbeats();
    silence();
    conflicts();
    return unit_done("test_membership");
}
