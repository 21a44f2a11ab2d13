/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * test_backup.c -- BackupManager in the engine (sc_backup.c) and the
 * store's location table (sc_store.h, "Locations"), without sockets: a
 * writer that died inside a change of the table (loc_seq left odd) neither
 * makes every later lookup wait nor leaves the table unreadable (the next
 * change ends even, the engine's first turn repairs it); a child's
 * connection forgotten while its fetch goes on is never answered; a scan
 * in batches that stop visits every location; two members fetching one
 * session from its backup at once get distinct epochs, and an equal claim
 * does not make a higher primary give way by naming it backup; the map to
 * a joiner comes in messages within maxMessageSize, one only when the
 * joiner's write queue is empty; routes from the network are named only
 * for members known here, and routes no location names are given back; a
 * member overtaken in a takeover (its FULL to the backup it chose arrives
 * after the taker's LOCATE) makes nobody a backup, and equal claims end
 * with the higher route on every member.
 * Links sc_backup.c, sc_manager.c,
 * sc_channel.c and the layers below (fixture.c replaces the transport).
 */
#include "unit.h"
#include "fixture.h"
#include "sc_backup.h"
#include "sc_manager.h"
#include "sc_channel.h"
#include "sc_repl.h"
#include "sc_membership.h"

#define ID_A 0xa1
#define ID_B 0xb2
#define ID_C 0xc3
#define ID_J 0xd4

static const char block[] =
    "<Cluster className=\"org.apache.catalina.ha.tcp.SimpleTcpCluster\">\n"
    "  <Manager className=\"org.apache.catalina.ha.session.BackupManager\"/>\n"
    "  <Channel className=\"org.apache.catalina.tribes.group.GroupChannel\">\n"
    "    <Receiver className=\"org.apache.catalina.tribes.transport.nio.NioReceiver\"\n"
    "              address=\"127.0.0.1\" port=\"4000\" maxMessageSize=\"4096\"/>\n"
    "  </Channel>\n"
    "</Cluster>\n";

static apr_pool_t *mp;
static apr_uint64_t frame_seq = 1000;

static const char *sid(int n, const char *route)
{
    return apr_psprintf(mp, "bac0ce00%024X.%s", (unsigned)n, route);
}

static sc_engine *engine(const char *route, unsigned char id_byte)
{
    sc_engine *e = ut_engine(route, id_byte, block, 64);
    e->state = SC_MS_READY;
    ut_reset_frames();
    return e;
}

/* A DATA frame carrying msg from the member at the other end of c, through
 * BackupManager's frame handler. */
static void deliver(sc_engine *e, sc_conn *c, const sc_buf *msg)
{
    sc_frame_hdr h;
    unsigned char *copy = malloc(msg->len);       /* exactly its length */
    memcpy(copy, msg->buf, msg->len);
    ut_hdr(&h, SC_MSG_DATA, 0, c->peer->id[0], ++frame_seq, msg->len);
    sc_bk_on_data_frame(e, c, &h, copy);
    free(copy);
    apr_pool_clear(e->tmp);
}

/* The message of a recorded DATA frame, decoded (0: not one). */
static int decoded(const ut_frame *f, sc_msg *m)
{
    sc_rd r;
    if (!f || f->type != SC_MSG_DATA) {
        return 0;
    }
    sc_rd_init(&r, f->payload, f->len);
    return sc_msg_decode(&r, mp, m);
}

/* The last DATA frame on c carrying a message of 'type', decoded. */
static int last_msg(const sc_conn *c, unsigned type, sc_msg *m)
{
    int i;
    for (i = ut.nframes - 1; i >= 0; i--) {
        const ut_frame *f = &ut.frames[i];
        if ((!c || f->conn == c) && f->type == SC_MSG_DATA && f->len && f->payload[0] == type) {
            return decoded(f, m);
        }
    }
    return 0;
}

/* ---- 1: a writer that died inside a change ---- */

static void dead_writer(void)
{
    sc_engine *e = engine("nodeA", ID_A);
    sc_store *st = e->store;
    sc_loc_info l;
    apr_time_t t0;
    int i, found = 0;

    ut_peer(e, "nodeB", ID_B, 4001);      /* the holders are members: the */
    ut_peer(e, "nodeC", ID_C, 4002);      /* engine's scan keeps the locations */
    ok(sc_loc_set(st, sid(1, "nodeB"), SC_ROLE_PROXY, 3, "nodeB", "nodeC",
                  apr_time_now()) == 0, "a location set");
    ok(sc_loc_find(st, sid(1, "nodeB"), &l) && l.epoch == 3, "... and found");

    /* the engine dies between the two turns of loc_seq */
    st->hdr->loc_seq++;
    t0 = apr_time_now();
    for (i = 0; i < 200; i++) {
        found += sc_loc_find(st, sid(1, "nodeB"), &l);
    }
    is(found, 0, "a change that never ends: no location read");
    /* the old reader made each of them yield 100,000 times (about 50 ms
     * each here, 10 s in all); now the first waits 200 ms and the others
     * answer at once (a generous bound) */
    ok(apr_time_now() - t0 < apr_time_from_sec(5),
       "200 lookups under a dead writer do not each wait (%" APR_TIME_T_FMT " ms)",
       apr_time_as_msec(apr_time_now() - t0));

    /* the next engine's change ends with the sequence even, not odd */
    ok(sc_loc_set(st, sid(2, "nodeB"), SC_ROLE_PROXY, 4, "nodeB", "nodeC",
                  apr_time_now()) == 0, "a change after the dead writer");
    is(st->hdr->loc_seq & 1, 0, "... leaves loc_seq even");
    ok(sc_loc_find(st, sid(1, "nodeB"), &l) && l.epoch == 3, "... the table is read again");
    ok(sc_loc_find(st, sid(2, "nodeB"), &l) && l.epoch == 4, "... with the new change");

    /* dead again; the engine's first turn repairs it before any change */
    st->hdr->loc_seq++;
    sc_bk_tick(e, apr_time_now());
    is(st->hdr->loc_seq & 1, 0, "the engine's first turn makes loc_seq even");
    ok(sc_loc_find(st, sid(1, "nodeB"), &l) && l.epoch == 3, "... and the table is read");
    apr_pool_clear(e->tmp);
}

/* ---- 2: a child's connection freed while its fetch goes on ---- */

static void fetch_forgets_conn(void)
{
    sc_engine *e = engine("nodeA", ID_A);
    sc_peer *b = ut_peer(e, "nodeB", ID_B, 4001), *c = ut_peer(e, "nodeC", ID_C, 4002);
    sc_conn *in_b = ut_conn(e, b, SC_CONN_IN), *in_c = ut_conn(e, c, SC_CONN_IN);
    sc_conn *ipc = ut_conn(e, NULL, SC_CONN_IPC);
    const char *id = sid(7, "nodeC");
    sc_msg_fetch fm;
    sc_msg m;
    sc_buf q;
    apr_uint64_t req;

    ut_conn(e, b, SC_CONN_OUT);
    ut_conn(e, c, SC_CONN_OUT);
    sc_loc_set(e->store, id, SC_ROLE_PROXY, 3, "nodeC", "nodeB", apr_time_now());
    ut_reset_frames();
    fm.req = 0;
    fm.id = id;
    fm.dead = 0;
    sc_buf_init(&q, mp, 128);
    sc_msg_fetch_encode(&q, &fm);
    sc_bk_on_request(e, ipc, 77, q.buf, q.len, 1);
    ok(last_msg(b->out, SC_REPL_FETCH, &m), "a child's FETCH asks the backup");
    req = m.fetch.req;

    /* the child's connection is freed in this turn of the loop (the engine's
     * forget handler); its memory, recycled, is another child's connection */
    sc_bk_forget_conn(e, ipc);
    ut_reset_frames();
    {
        sc_msg_not_here nh = { req, id, 0 };
        sc_buf_init(&q, mp, 128);
        sc_msg_not_here_encode(&q, &nh);
        deliver(e, in_b, &q);
        ok(last_msg(c->out, SC_REPL_FETCH, &m), "the backup had nothing: the primary asked");
        sc_buf_init(&q, mp, 128);
        sc_msg_not_here_encode(&q, &nh);
        deliver(e, in_c, &q);
    }
    is(ut_count(0, ipc), 0, "the fetch ended, nothing answered on the forgotten connection");
}

/* ---- 3: a scan in batches that stop ---- */

typedef struct {
    int calls, visited;
    char seen[128];
} each_ctx;

static int each_stop(void *ctx, const char *base, const sc_loc_info *l)
{
    each_ctx *x = ctx;
    int n;
    (void)l;
    if (++x->calls % 10 == 0) {
        return 0;                     /* stops before doing anything with it */
    }
    n = (int)strtol(base + 8, NULL, 16);
    if (n >= 0 && n < 128 && !x->seen[n]) {
        x->seen[n] = 1;
        x->visited++;
    }
    return 1;
}

static void scan_stops(void)
{
    sc_engine *e = engine("nodeA", ID_A);
    each_ctx x;
    apr_uint32_t cur = 0;
    int i, turns = 0;
    memset(&x, 0, sizeof(x));
    for (i = 0; i < 100; i++) {
        sc_loc_set(e->store, sid(i, "nodeB"), SC_ROLE_PROXY, 1, "nodeB", "nodeC",
                   apr_time_now());
    }
    while (cur < e->store->hdr->loc_size && turns++ < 1000) {
        cur = sc_loc_each_from(e->store, cur, 512, each_stop, &x);
    }
    is(x.visited, 100, "a scan stopped every 10 locations visits all 100");
}

/* ---- 4: two members take one session over at once ---- */

static void hold(sc_engine *e, const char *id)
{
    apr_uint64_t v;
    apr_time_t idle;
    sc_store_put_new(e->store, id, "counter=1", 9, apr_time_now(), 1800, 1, &v, &idle);
}

static apr_uint64_t here_epoch(sc_engine *e, sc_conn *in, const char *id, apr_uint64_t req)
{
    sc_msg_fetch fm = { req, id, 0 };
    sc_msg m;
    sc_buf q;
    sc_buf_init(&q, mp, 128);
    sc_msg_fetch_encode(&q, &fm);
    deliver(e, in, &q);
    return last_msg(in, SC_REPL_HERE, &m) && m.here.req == req ? m.here.epoch : 0;
}

static void concurrent_takeovers(void)
{
    sc_engine *e = engine("nodeB", ID_B);             /* the backup */
    sc_peer *a = ut_peer(e, "nodeA", ID_A, 4000), *c = ut_peer(e, "nodeC", ID_C, 4002);
    sc_conn *in_a = ut_conn(e, a, SC_CONN_IN), *in_c = ut_conn(e, c, SC_CONN_IN);
    const char *id = sid(9, "nodeP");
    apr_uint64_t ea, ec;
    sc_loc_info l;
    sc_buf q;

    hold(e, id);
    sc_loc_set(e->store, id, SC_ROLE_BACKUP, 5, "nodeP", "nodeB", apr_time_now());
    ea = here_epoch(e, in_a, id, 1);
    ec = here_epoch(e, in_c, id, 2);
    is(ea, 5, "the first fetcher is answered with the epoch as it was");
    ok(ec > ea, "the second one with a higher one (%" APR_UINT64_T_FMT " > %"
       APR_UINT64_T_FMT "): their takeovers get distinct epochs", ec, ea);
    /* their OWNERs, the first one's last: the second keeps the session */
    {
        sc_msg_owner oc = { id, ec + 1, "nodeC" }, oa = { id, ea + 1, "nodeA" };
        sc_buf_init(&q, mp, 128);
        sc_msg_owner_encode(&q, &oc);
        deliver(e, in_c, &q);
        sc_buf_init(&q, mp, 128);
        sc_msg_owner_encode(&q, &oa);
        deliver(e, in_a, &q);
    }
    memset(&l, 0, sizeof(l));
    sc_loc_find(e->store, id, &l);
    ok(l.role == SC_ROLE_BACKUP && !strcmp(l.primary, "nodeC"),
       "the backup names the later taker primary (%s)", l.primary);

    /* the tie rule comes first: a primary named backup by an equal claim of
     * a lower route stays primary */
    {
        sc_engine *z = engine("nodeC", ID_C);
        sc_peer *pa = ut_peer(z, "nodeA", ID_A, 4000);
        sc_conn *za = ut_conn(z, pa, SC_CONN_IN);
        const char *id2 = sid(10, "nodeC");
        sc_loc_item it = { id2, 6, "nodeA", "nodeC" };
        ut_peer(z, "nodeB", ID_B, 4001);
        hold(z, id2);
        sc_loc_set(z->store, id2, SC_ROLE_PRIMARY, 6, "nodeC", "nodeB", apr_time_now());
        sc_buf_init(&q, mp, 256);
        sc_msg_list_open(&q, SC_REPL_LOCATE);
        sc_msg_locate_add(&q, &it);
        sc_msg_list_close(&q, 1);
        deliver(z, za, &q);
        memset(&l, 0, sizeof(l));
        sc_loc_find(z->store, id2, &l);
        is(l.role, SC_ROLE_PRIMARY,
           "an equal claim naming this (higher) member backup: it stays primary");
    }
}

/* ---- 5: the map to a joiner: maxMessageSize and flow control ---- */

static void map_to_joiner(void)
{
    sc_engine *e = engine("nodeA", ID_A);
    sc_peer *j;
    sc_conn *in_j, *out_j;
    sc_msg m;
    sc_buf q;
    int i, ticks = 0, maps = 0, items = 0, too_big = 0, complete = 0;
    apr_size_t biggest = 0;

    ut_peer(e, "nodeB", ID_B, 4001);
    ut_peer(e, "nodeC", ID_C, 4002);
    j = ut_peer(e, "nodeJ", ID_J, 4003);
    in_j = ut_conn(e, j, SC_CONN_IN);
    out_j = ut_conn(e, j, SC_CONN_OUT);
    for (i = 0; i < 300; i++) {
        sc_loc_set(e->store, sid(i, "nodeB"), SC_ROLE_PROXY, 2, "nodeB", "nodeC",
                   apr_time_now());
    }
    sc_bk_tick(e, apr_time_now());            /* settles the members seen */
    ut_reset_frames();
    sc_buf_init(&q, mp, 16);
    sc_msg_get_map_encode(&q);
    deliver(e, in_j, &q);

    out_j->wlen = 100;                        /* a write queued to the joiner */
    out_j->woff = 0;
    sc_bk_tick(e, apr_time_now());
    apr_pool_clear(e->tmp);
    is(ut_count(SC_MSG_DATA, out_j), 0, "no MAP while the joiner's write queue is not empty");
    out_j->wlen = 0;

    while (!ut_count(SC_MSG_DATA, out_j) || !ut_last(SC_MSG_DATA, out_j)
           || ut_last(SC_MSG_DATA, out_j)->payload[0] != SC_REPL_COMPLETE) {
        if (ticks++ >= 100) {
            break;
        }
        sc_bk_tick(e, apr_time_now());
        apr_pool_clear(e->tmp);
    }
    for (i = 0; i < ut.nframes; i++) {
        const ut_frame *f = &ut.frames[i];
        if (f->conn != out_j || f->type != SC_MSG_DATA || !f->len) {
            continue;
        }
        if (f->payload[0] == SC_REPL_COMPLETE) {
            complete = 1;
        }
        else if (f->payload[0] == SC_REPL_MAP && decoded(f, &m)) {
            maps++;
            items += (int)m.locate.n;
            if (f->len > 4096 - 256) {
                too_big++;
            }
            if (f->len > biggest) {
                biggest = f->len;
            }
        }
    }
    ok(complete, "the map ends with COMPLETE");
    is(items, 300, "every location sent once, in %d MAP message(s)", maps);
    is(too_big, 0, "none over maxMessageSize 4096 less 256 (the biggest %d bytes)",
       (int)biggest);
}

/* ---- 6: the table of routes ---- */

static void locate_from(sc_engine *e, sc_conn *in, const char *id, const char *primary,
                        const char *backup)
{
    sc_loc_item it = { id, 1, primary, backup };
    sc_buf q;
    sc_buf_init(&q, mp, 256);
    sc_msg_list_open(&q, SC_REPL_LOCATE);
    sc_msg_locate_add(&q, &it);
    sc_msg_list_close(&q, 1);
    deliver(e, in, &q);
}

static void route_table(void)
{
    sc_engine *e = engine("nodeA", ID_A);
    sc_peer *b = ut_peer(e, "nodeB", ID_B, 4001);
    sc_conn *in_b = ut_conn(e, b, SC_CONN_IN);
    sc_loc_info l;
    apr_uint32_t routes;
    int i, refused = 0;

    ut_peer(e, "nodeC", ID_C, 4002);
    routes = e->store->hdr->loc_routes;
    locate_from(e, in_b, sid(1, "nodeX1"), "nodeX1", "nodeX2");
    ok(!sc_loc_find(e->store, sid(1, "nodeX1"), &l),
       "a location whose primary no member knows of is not kept");
    locate_from(e, in_b, sid(2, "nodeB"), "nodeB", "nodeX3");
    memset(&l, 0, sizeof(l));
    sc_loc_find(e->store, sid(2, "nodeB"), &l);
    ok(l.role == SC_ROLE_PROXY && !strcmp(l.primary, "nodeB") && !l.backup[0],
       "... one with an unknown backup is kept without it");
    locate_from(e, in_b, sid(3, "nodeC"), "nodeC", "nodeB");
    is(e->store->hdr->loc_routes, routes + 2, "only members' routes were named");

    /* routes no location names any more are given back */
    for (i = 0; i < 600; i++) {
        const char *r = apr_psprintf(mp, "gone%d", i);
        if (sc_loc_set(e->store, sid(4, "nodeB"), SC_ROLE_PROXY, 1, r, "", apr_time_now())) {
            refused++;
        }
        if (i % 100 == 99) {
            sc_loc_reclaim_routes(e->store, e->route);
        }
    }
    is(refused, 0, "600 routes in turn, reclaimed every 100: none refused");
    memset(&l, 0, sizeof(l));
    sc_loc_find(e->store, sid(3, "nodeC"), &l);
    ok(!strcmp(l.primary, "nodeC") && !strcmp(l.backup, "nodeB"),
       "the routes still named are kept (%s, %s)", l.primary, l.backup);
}

/* ---- 7: a takeover overtaken: stale data and equal claims ---- */

static void locate_at(sc_engine *e, sc_conn *in, const char *id, apr_uint64_t epoch,
                      const char *primary, const char *backup)
{
    sc_loc_item it;
    sc_buf q;
    it.id = id;
    it.epoch = epoch;
    it.primary = primary;
    it.backup = backup;
    sc_buf_init(&q, mp, 256);
    sc_msg_list_open(&q, SC_REPL_LOCATE);
    sc_msg_locate_add(&q, &it);
    sc_msg_list_close(&q, 1);
    deliver(e, in, &q);
}

/* The whole of id as FULL (the session made here, taken, and dropped: this
 * member holds nothing of it afterwards). */
static void full_of(sc_engine *e, const char *id, sc_buf *q)
{
    sc_sess_copy s;
    hold(e, id);
    sc_store_get(e->store, mp, id, 0, &s);
    sc_buf_init(q, mp, s.data_len + 256);
    sc_msg_full_encode(q, &s);
    sc_store_drop(e->store, id);
}

static int held_here(sc_engine *e, const char *id)
{
    sc_sess_copy s;
    return sc_store_get(e->store, mp, id, 0, &s) == SC_STORE_OK;
}

static void overtaken(void)
{
    /* node2's view of a session of node1 (killed) that node3 backs: node3
     * promotes itself (epoch 2, backup node2: its LOCATE, then its FULL to
     * node2) while node4 fetches it from node3 (epoch 3, backup node3); node2
     * hears node4's LOCATE between node3's two messages */
    sc_engine *e = engine("node2", ID_B);
    sc_peer *p3 = ut_peer(e, "node3", ID_C, 4002), *p4 = ut_peer(e, "node4", ID_J, 4003);
    sc_conn *in3 = ut_conn(e, p3, SC_CONN_IN), *in4 = ut_conn(e, p4, SC_CONN_IN);
    const char *id = sid(20, "node1");
    sc_loc_info l;
    sc_buf full;

    ut_peer(e, "node1", ID_A, 4000);
    sc_loc_set(e->store, id, SC_ROLE_PROXY, 1, "node1", "node3", apr_time_now());
    full_of(e, id, &full);
    locate_at(e, in3, id, 2, "node3", "node2");
    locate_at(e, in4, id, 3, "node4", "node3");
    deliver(e, in3, &full);
    memset(&l, 0, sizeof(l));
    sc_loc_find(e->store, id, &l);
    ok(l.role == SC_ROLE_PROXY && !strcmp(l.primary, "node4") && !strcmp(l.backup, "node3")
       && l.epoch == 3,
       "the overtaken primary's FULL after the taker's LOCATE: node2 stays a proxy of "
       "node4/node3 at epoch 3 (role %d p=%s b=%s e=%" APR_UINT64_T_FMT ")",
       l.role, l.primary, l.backup, l.epoch);
    ok(!held_here(e, id), "... and holds no copy");

    /* the same FULL asked to be acknowledged: refused, with a reason */
    {
        sc_frame_hdr h;
        unsigned char *copy = malloc(full.len);
        const ut_frame *f;
        memcpy(copy, full.buf, full.len);
        ut_reset_frames();
        ut_hdr(&h, SC_MSG_DATA, SC_FF_ACK, ID_C, ++frame_seq, full.len);
        sc_bk_on_data_frame(e, in3, &h, copy);
        free(copy);
        apr_pool_clear(e->tmp);
        f = ut_last(SC_MSG_FAIL_ACK, NULL);
        ok(f && ut_acked_seq(f) == frame_seq,
           "an acknowledged FULL from the overtaken primary is refused (FAIL_ACK)");
        ok(!held_here(e, id), "... and not stored");
    }

    /* the other order: the data first (node2 its backup), then the taker's
     * LOCATE naming another backup: the copy goes */
    {
        const char *id2 = sid(21, "node1");
        sc_buf full2;
        sc_loc_set(e->store, id2, SC_ROLE_PROXY, 1, "node1", "node3", apr_time_now());
        full_of(e, id2, &full2);
        locate_at(e, in3, id2, 2, "node3", "node2");
        deliver(e, in3, &full2);
        memset(&l, 0, sizeof(l));
        sc_loc_find(e->store, id2, &l);
        ok(l.role == SC_ROLE_BACKUP && !strcmp(l.primary, "node3") && held_here(e, id2),
           "node3's LOCATE then FULL: node2 backs it for node3");
        locate_at(e, in4, id2, 3, "node4", "node3");
        memset(&l, 0, sizeof(l));
        sc_loc_find(e->store, id2, &l);
        ok(l.role == SC_ROLE_PROXY && !strcmp(l.primary, "node4") && !held_here(e, id2),
           "... node4's higher claim naming node3 backup: a proxy, its copy dropped");
    }

    /* equal claims: the higher route keeps it on every member, whichever
     * claim it hears first (a proxy, and a member named backup by OWNER) */
    {
        const char *id3 = sid(22, "node1");
        sc_msg_owner o;
        sc_buf q;
        sc_loc_set(e->store, id3, SC_ROLE_PROXY, 3, "node4", "node3", apr_time_now());
        locate_at(e, in3, id3, 3, "node3", "node2");
        memset(&l, 0, sizeof(l));
        sc_loc_find(e->store, id3, &l);
        ok(l.role == SC_ROLE_PROXY && !strcmp(l.primary, "node4"),
           "an equal claim of a lower route after node4's: node4 stays primary (p=%s)",
           l.primary);
        o.id = id3;
        o.epoch = 3;
        o.primary = "node3";
        sc_buf_init(&q, mp, 128);
        sc_msg_owner_encode(&q, &o);
        deliver(e, in3, &q);
        memset(&l, 0, sizeof(l));
        sc_loc_find(e->store, id3, &l);
        ok(!strcmp(l.primary, "node4") && !strcmp(l.backup, "node3"),
           "... an equal OWNER of a lower route too (p=%s b=%s)", l.primary, l.backup);
        locate_at(e, in4, id3, 3, "node4", "node2");
        memset(&l, 0, sizeof(l));
        sc_loc_find(e->store, id3, &l);
        ok(!strcmp(l.primary, "node4") && !strcmp(l.backup, "node2"),
           "... while the primary's own new backup at its epoch is taken (b=%s)", l.backup);
    }
}

int main(void)
{
    apr_pool_create(&mp, ut_pool());
    dead_writer();
    fetch_forgets_conn();
    scan_stops();
    concurrent_takeovers();
    map_to_joiner();
    route_table();
    overtaken();
    return unit_done("test_backup");
}
