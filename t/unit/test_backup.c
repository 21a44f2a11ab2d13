/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * test_backup.c -- BackupManager in the engine (sc_backup.c) and the
 * store's location table (sc_store.h, "Locations"), without sockets: a
 * writer that died inside a change of the table (loc_seq left odd) neither
 * makes every later lookup wait nor leaves the table unreadable (the next
 * change ends even, the engine's first turn repairs it); a child's
 * connection forgotten while its fetch goes on is never answered; a scan
 * in batches that stop visits every location; members not heard yet since
 * the engine's start (a static one whose route is unknown, routes no member
 * has) hold what the locations say until dropTime has passed, then the next
 * look settles them as gone; two members fetching one
 * session from its backup at once get distinct epochs, and an equal claim
 * does not make a higher primary give way by naming it backup; the map to
 * a joiner comes in messages within maxMessageSize, one only when the
 * joiner's write queue is empty; routes from the network are named only
 * for members known here, and routes no location names are given back; a
 * member overtaken in a takeover (its FULL to the backup it chose arrives
 * after the taker's LOCATE) makes nobody a backup, and equal claims end
 * with the higher route on every member; the location table's memory
 * follows the locations in use (entries freed are taken again, the
 * high-water mark stays at the peak, a scan in batches visits each live
 * location once, and the entries' resident pages are those in use).
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

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* ---- 3b: members not heard yet, within dropTime of the engine's start ---- */

static void hold(sc_engine *e, const char *id);

static void not_heard_yet_members(void)
{
    sc_engine *e = engine("nodeA", ID_A);
    sc_peer *b, *u;
    sc_loc_info l;
    apr_time_t t0 = e->started, later;
    const char *x = sid(1, "nodeC"), *y = sid(2, "nodeC"), *z = sid(3, "nodeA");

    b = ut_peer(e, "nodeB", ID_B, 4001);      /* heard: alive and ready */
    ut_conn(e, b, SC_CONN_OUT);
    u = ut_peer(e, "nodeU", ID_C, 4002);      /* a static member never heard: */
    u->view = SC_VIEW_CONFIGURED;             /* no route learnt yet */
    u->route[0] = '\0';
    /* nodeC and nodeD: routes no member here has (not heard yet) */
    sc_loc_set(e->store, x, SC_ROLE_PROXY, 2, "nodeC", "nodeD", t0);
    hold(e, y);
    sc_loc_set(e->store, y, SC_ROLE_BACKUP, 2, "nodeC", "nodeA", t0);
    hold(e, z);
    sc_loc_set(e->store, z, SC_ROLE_PRIMARY, 2, "nodeA", "nodeD", t0);

    ut_reset_frames();
    sc_bk_tick(e, t0 + apr_time_from_msec(10));   /* the members seen: a look at all */
    apr_pool_clear(e->tmp);
    memset(&l, 0, sizeof(l));
    ok(sc_loc_find(e->store, x, &l) && l.role == SC_ROLE_PROXY,
       "within dropTime: a location whose holders were not heard yet is kept");
    memset(&l, 0, sizeof(l));
    ok(sc_loc_find(e->store, y, &l) && l.role == SC_ROLE_BACKUP && !strcmp(l.primary, "nodeC"),
       "... a backup whose primary was not heard yet is not promoted");
    memset(&l, 0, sizeof(l));
    ok(sc_loc_find(e->store, z, &l) && l.role == SC_ROLE_PRIMARY && !strcmp(l.backup, "nodeD"),
       "... a primary whose backup was not heard yet keeps it");
    is(ut_count(SC_MSG_DATA, NULL), 0, "... and nothing is sent");

    /* past dropTime, the next look (every BK_SCAN_EVERY_S) settles them as gone */
    later = t0 + apr_time_from_msec(e->set->drop_ms) + apr_time_from_sec(6);
    sc_bk_tick(e, later);
    apr_pool_clear(e->tmp);
    ok(!sc_loc_find(e->store, x, &l), "past dropTime: the orphan location is removed");
    memset(&l, 0, sizeof(l));
    ok(sc_loc_find(e->store, y, &l) && l.role == SC_ROLE_PRIMARY,
       "... the backup whose primary never came serves it (promoted)");
    memset(&l, 0, sizeof(l));
    ok(sc_loc_find(e->store, z, &l) && l.role == SC_ROLE_PRIMARY && !strcmp(l.backup, "nodeB"),
       "... the primary picks a new backup among the members heard (%s)", l.backup);
    ok(ut_count(SC_MSG_DATA, b->out) > 0, "... and sends it the session");
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

/* ---- 8: the table's memory follows the locations in use ---- */

static sc_store *loc_store(apr_uint32_t capacity)
{
    sc_store *st = NULL;
    if (sc_store_create(mp, capacity, 1024, &st) != APR_SUCCESS) {
        return NULL;
    }
    return st;
}

static const char *lid(int n)
{
    return apr_psprintf(mp, "10c0%028X.nodeB", (unsigned)n);
}

/* Locations set and removed in turns take the entries freed: the high-water
 * mark stays at the most in use at once, and every lookup stays right
 * (through the rebuilds the deleted index entries bring). */
static void loc_reuse(void)
{
    sc_store *st = loc_store(1000);
    sc_loc_info l;
    int i, round, next = 0, lost = 0, ghosts = 0, live_lo = 0;
    apr_uint32_t peak;
    if (!st) {
        ok(0, "a store for 1000 sessions");
        return;
    }
    for (i = 0; i < 500; i++) {
        sc_loc_set(st, lid(next++), SC_ROLE_PROXY, 1, "nodeB", "nodeC", 1);
    }
    is(st->hdr->loc_used, 500, "500 locations in use");
    is(st->hdr->loc_hwm, 500, "... in the first 500 entries");
    peak = st->hdr->loc_hwm;
    /* 40 rounds: the oldest 250 removed, 250 new ones set (20,000 sets in a
     * table of 1536 entries) */
    for (round = 0; round < 40; round++) {
        for (i = 0; i < 250; i++) {
            if (!sc_loc_del(st, lid(live_lo + i))) {
                lost++;
            }
        }
        live_lo += 250;
        for (i = 0; i < 250; i++) {
            if (sc_loc_set(st, lid(next++), SC_ROLE_BACKUP, 2, "nodeB", "nodeC", 1) != 0) {
                lost++;
            }
        }
    }
    is(lost, 0, "every removal found its location, every set had an entry");
    is(st->hdr->loc_used, 500, "500 locations in use after 40 rounds");
    ok(st->hdr->loc_hwm <= peak, "the high-water mark stayed at the peak in use (%u <= %u)",
       (unsigned)st->hdr->loc_hwm, (unsigned)peak);
    for (i = 0; i < next; i++) {
        int found = sc_loc_find(st, lid(i), &l);
        if (found != (i >= live_lo)) {
            ghosts++;
        }
    }
    is(ghosts, 0, "the live locations are found, the removed ones are not");
    is(st->hdr->bk_backup + st->hdr->bk_proxy, 500, "the role counts follow");
}

typedef struct {
    unsigned char *visits;            /* by location number */
    int calls, stops, added;
    sc_store *st;
    int del_lo, del_hi;               /* removed during the scan */
    int add_from;
} visit_ctx;

static int visit_one(void *ctx, const char *base, const sc_loc_info *l)
{
    visit_ctx *x = ctx;
    int n;
    (void)l;
    if (++x->calls % 5 == 0) {
        x->stops++;
        return 0;                     /* stops before it did anything */
    }
    n = (int)strtol(base + 4, NULL, 16);
    if (n >= 0 && n < 4000) {
        x->visits[n]++;
    }
    if (x->calls == 40) {
        /* in the middle of the scan: some removed, some set (in the entries
         * the removals freed and past the high-water mark) */
        int i;
        for (i = x->del_lo; i < x->del_hi; i++) {
            sc_loc_del(x->st, lid(i));
        }
        for (i = 0; i < 60; i++) {
            sc_loc_set(x->st, lid(x->add_from + i), SC_ROLE_PROXY, 1, "nodeB", "", 1);
        }
    }
    return 1;
}

/* A scan in batches that stop visits every location that lives throughout
 * once, and none twice, while locations come and go. */
static void loc_scan_once(void)
{
    sc_store *st = loc_store(1000);
    visit_ctx x;
    apr_uint32_t cur = 0;
    int i, turns = 0, missed = 0, twice = 0;
    if (!st) {
        ok(0, "a store for 1000 sessions");
        return;
    }
    memset(&x, 0, sizeof(x));
    x.visits = apr_pcalloc(mp, 4000);
    x.st = st;
    for (i = 0; i < 300; i++) {
        sc_loc_set(st, lid(i), SC_ROLE_PROXY, 1, "nodeB", "nodeC", 1);
    }
    for (i = 0; i < 300; i += 3) {
        sc_loc_del(st, lid(i));       /* holes before the scan */
    }
    x.del_lo = 250;
    x.del_hi = 280;
    x.add_from = 1000;
    while (cur < st->hdr->loc_size && turns++ < 10000) {
        cur = sc_loc_each_from(st, cur, 7, visit_one, &x);
    }
    ok(cur >= st->hdr->loc_size, "the scan ends (%d turns)", turns);
    for (i = 0; i < 300; i++) {
        int lives = i % 3 != 0 && !(i >= x.del_lo && i < x.del_hi);
        if (lives && x.visits[i] != 1) {
            missed++;
        }
        if (x.visits[i] > 1) {
            twice++;
        }
    }
    for (i = x.add_from; i < x.add_from + 60; i++) {
        if (x.visits[i] > 1) {
            twice++;
        }
    }
    ok(x.stops > 10, "the scan was stopped %d times", x.stops);
    is(missed, 0, "every location that lived throughout was visited once");
    is(twice, 0, "none was visited twice");
}

/* Resident pages of [p, p + len) (of a shared mapping: the pages written or
 * read). */
static apr_size_t resident_pages(const void *p, apr_size_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1);
    apr_size_t n = ((uintptr_t)p + len - a + pg - 1) / pg, i, r = 0;
    unsigned char *vec = malloc(n);
    if (!vec || mincore((void *)a, n * pg, vec) != 0) {
        free(vec);
        return (apr_size_t)-1;
    }
    for (i = 0; i < n; i++) {
        r += vec[i] & 1;
    }
    free(vec);
    return r;
}

static int count_one(void *ctx, const char *base, const sc_loc_info *l)
{
    (void)base;
    (void)l;
    ++*(int *)ctx;
    return 1;
}

/* 5,000 locations in a table laid out for 200,000 sessions, scanned whole
 * and their routes reclaimed: the entries' resident pages are about
 * 5,000 x 64 bytes' worth, not the array's (a scattered table made nearly
 * every page resident). */
static void loc_resident(void)
{
    sc_store *st = loc_store(200000);
    apr_size_t pages, want, all;
    apr_uint32_t cur = 0;
    long pg = sysconf(_SC_PAGESIZE);
    int i, seen = 0;
    if (!st) {
        ok(0, "a store for 200,000 sessions");
        return;
    }
    for (i = 0; i < 5000; i++) {
        sc_loc_set(st, lid(i), SC_ROLE_PROXY, 1, "nodeB", "nodeC", 1);
    }
    while (cur < st->hdr->loc_size) {
        cur = sc_loc_each_from(st, cur, 512, count_one, &seen);
    }
    sc_loc_reclaim_routes(st, "nodeA");
    is(seen, 5000, "a scan saw the 5000 locations");
    all = (apr_size_t)st->hdr->loc_size * sizeof(sc_loc) / pg;
    want = (apr_size_t)5000 * sizeof(sc_loc) / pg + 1;
    pages = resident_pages(st->locs, (apr_size_t)st->hdr->loc_size * sizeof(sc_loc));
    ok(pages <= want + 2, "entries resident: %lu pages, about 5000 x 64 bytes' (%lu), "
       "of %lu laid out", (unsigned long)pages, (unsigned long)want, (unsigned long)all);
    pages = resident_pages(st->loc_index, (apr_size_t)st->hdr->loc_index_size * 4);
    ok(pages <= (apr_size_t)st->hdr->loc_index_size * 4 / pg + 1,
       "the index (4 bytes an entry) holds the rest: %lu pages", (unsigned long)pages);
}


/* ---- 8: a primary whose session another member took over ---- */

/* The old primary, named backup by the taker (a LOCATE naming it backup,
 * or an OWNER), must not take the session back at its next sweep for
 * accesses it served as the primary (the touched mark its own requests
 * left, not yet looked at); an access after it became the backup still
 * makes it the primary ("a request read it here"). */
static void taken_from_primary(void)
{
    sc_engine *e = engine("nodeA", ID_A);
    sc_peer *b = ut_peer(e, "nodeB", ID_B, 4001);
    sc_conn *in_b = ut_conn(e, b, SC_CONN_IN);
    const char *by_locate = sid(31, "nodeA"), *by_owner = sid(32, "nodeA");
    const char *read_after = sid(33, "nodeA");
    apr_uint64_t promotions;
    apr_time_t later = apr_time_now() + apr_time_from_sec(3600);
    sc_sess_copy c;
    sc_loc_info l;
    sc_buf q;

    ut_peer(e, "nodeC", ID_C, 4002);
    sc_bk_tick(e, apr_time_now());                /* the members seen */
    hold(e, by_locate);
    hold(e, by_owner);
    hold(e, read_after);
    sc_loc_set(e->store, by_locate, SC_ROLE_PRIMARY, 1, "nodeA", "nodeC", apr_time_now());
    sc_loc_set(e->store, by_owner, SC_ROLE_PRIMARY, 1, "nodeA", "nodeB", apr_time_now());
    sc_loc_set(e->store, read_after, SC_ROLE_PRIMARY, 1, "nodeA", "nodeC", apr_time_now());
    /* requests served here as the primary (their second request: touched) */
    ok(sc_store_get(e->store, mp, by_locate, 1, &c) == SC_STORE_OK
       && sc_store_get(e->store, mp, by_owner, 1, &c) == SC_STORE_OK,
       "taken from the primary: two sessions read here, the primary");
    /* nodeB takes them over */
    locate_at(e, in_b, by_locate, 2, "nodeB", "nodeA");
    {
        sc_msg_owner o = { by_owner, 2, "nodeB" };
        sc_buf_init(&q, mp, 128);
        sc_msg_owner_encode(&q, &o);
        deliver(e, in_b, &q);
    }
    locate_at(e, in_b, read_after, 2, "nodeB", "nodeA");
    memset(&l, 0, sizeof(l));
    ok(sc_loc_find(e->store, by_locate, &l) && l.role == SC_ROLE_BACKUP
       && !strcmp(l.primary, "nodeB"), "a LOCATE of nodeB's takeover names this member backup");
    memset(&l, 0, sizeof(l));
    ok(sc_loc_find(e->store, by_owner, &l) && l.role == SC_ROLE_BACKUP
       && !strcmp(l.primary, "nodeB"), "an OWNER of nodeB's takeover too");
    /* a request reads the third one here now, the backup */
    ok(sc_store_get(e->store, mp, read_after, 1, &c) == SC_STORE_OK,
       "a request reads the third one here, its backup now");
    promotions = e->store->hdr->bk_promotions;
    sc_bk_tick(e, later);                         /* the sweep */
    memset(&l, 0, sizeof(l));
    ok(sc_loc_find(e->store, by_locate, &l) && l.role == SC_ROLE_BACKUP
       && !strcmp(l.primary, "nodeB") && l.epoch == 2,
       "the sweep leaves the first with nodeB (backup here, epoch 2): the reads it served "
       "as the primary are no read of the backup");
    memset(&l, 0, sizeof(l));
    ok(sc_loc_find(e->store, by_owner, &l) && l.role == SC_ROLE_BACKUP
       && !strcmp(l.primary, "nodeB") && l.epoch == 2, "... and the second");
    memset(&l, 0, sizeof(l));
    ok(sc_loc_find(e->store, read_after, &l) && l.role == SC_ROLE_PRIMARY && l.epoch == 3,
       "the one read here since it became the backup is taken over (primary, epoch 3)");
    is((long)(e->store->hdr->bk_promotions - promotions), 1, "one promotion in all");
}

int main(void)
{
    apr_pool_create(&mp, ut_pool());
    dead_writer();
    fetch_forgets_conn();
    scan_stops();
    not_heard_yet_members();
    concurrent_takeovers();
    map_to_joiner();
    route_table();
    overtaken();
    loc_reuse();
    loc_scan_once();
    loc_resident();
    taken_from_primary();
    return unit_done("test_backup");
}
