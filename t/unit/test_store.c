/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * test_store.c -- probation in the session store (sc_store.h, "Probation")
 * and the engine's sweep of it (sc_manager.c): a session that saw a single
 * request has the short idle limit and is the one that gives way when a new
 * session finds the store full (the oldest, one of the same client address
 * first; never one that saw a second request); the second request ends the
 * probation even within a second of the first; the sweep removes sessions
 * idle past the probation without a tombstone and without an EXPIRE, and
 * others as before; lines about a full store come at a rate limit; the
 * hash of a version's data (sc_store_hash): its properties and its fixed
 * values; the sweep's walk of the store reads each session's slot, not its
 * data; a reader never sees a torn value while a writer in another process
 * rewrites a 32 KB session; a state transfer's pages made resident ahead,
 * within the figures asked for and the store (sc_store_prefault); the
 * bytes a session takes (SC_STORE_VERSION 8: a 1,005-byte session in 1,232
 * bytes of slot and blocks); a writer that died inside its write is undone
 * (id, times and data back) by whoever takes its lock next, also when that
 * lock is shared with another slot; writes in place (an update that changes
 * at most SC_STORE_PATCH blocks and SC_STORE_PATCH_BYTES bytes, of as many
 * blocks: over them, a request's and a copy's; a writer that died inside one
 * undone, its bytes back; no
 * torn read while two processes write in place; a write whose comparison
 * another writer made old is a chain of its own).  Links
 * sc_manager.c and the layers below (fixture.c replaces the transport).
 */
#include "unit.h"
#include "fixture.h"
#include "sc_manager.h"
#include "sc_repl.h"
#include "sc_shm.h"

#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define ID_A 0xa1
#define ID_B 0xb2

static const char block[] =
    "<Cluster className=\"org.apache.catalina.ha.tcp.SimpleTcpCluster\">\n"
    "  <Manager className=\"org.apache.catalina.ha.session.DeltaManager\"\n"
    "           probationInactiveInterval=\"60\"/>\n"
    "  <Channel className=\"org.apache.catalina.tribes.group.GroupChannel\">\n"
    "    <Receiver className=\"org.apache.catalina.tribes.transport.nio.NioReceiver\"\n"
    "              address=\"127.0.0.1\" port=\"4000\"/>\n"
    "  </Channel>\n"
    "</Cluster>\n";

static apr_pool_t *mp;

static const char *sid(int n)
{
    return apr_psprintf(mp, "9a0be100%024X.nodeA", (unsigned)n);
}

static int held(sc_store *st, int n)
{
    sc_sess_copy c;
    return sc_store_get(st, mp, sid(n), 0, &c) == SC_STORE_OK;
}

/* A request's new session n, made 'ago' before now, from client 'origin'. */
static sc_store_rc made(sc_store *st, int n, apr_time_t ago, apr_uint32_t origin,
                        apr_time_t *evicted_idle)
{
    apr_uint64_t v;
    apr_time_t idle;
    return sc_store_put_new(st, sid(n), "counter=1", 9, apr_time_now() - ago, 1800, origin,
                            &v, evicted_idle ? evicted_idle : &idle);
}

/* The second request of session n: a read that records the access. */
static int second_request(sc_store *st, int n)
{
    sc_sess_copy c;
    return sc_store_get(st, mp, sid(n), 1, &c) == SC_STORE_OK;
}

static void settings(void)
{
    sc_engine *e = ut_engine("nodeA", ID_A, block, 4);
    is(e->set->probation_s, 60, "Manager probationInactiveInterval is read into the settings");
    sc_store_set_probation(e->store, e->set->probation_s);
    is(sc_store_idle_limit(e->store, 5, 5, 1800), 60,
       "on probation (created == last access): the probation's idle limit");
    is(sc_store_idle_limit(e->store, 5, 5, 30), 30, "... or the session's own when shorter");
    is(sc_store_idle_limit(e->store, 5, 5, -1), 60, "... also for a session that never expires");
    is(sc_store_idle_limit(e->store, 5, 6, 1800), 1800, "after a second access: its own");
    sc_store_set_probation(e->store, 0);
    is(sc_store_idle_limit(e->store, 5, 5, 1800), 1800, "probationInactiveInterval 0: no probation");
}

static void eviction(void)
{
    sc_engine *e = ut_engine("nodeA", ID_A, block, 4);
    sc_store *st = e->store;
    apr_time_t idle = 0;
    apr_uint64_t v;
    int i;

    sc_store_set_probation(st, 60);
    for (i = 1; i <= 4; i++) {
        is(made(st, i, apr_time_from_sec(10 - i), 7, NULL), SC_STORE_OK, "session %d made", i);
    }
    ok(second_request(st, 1), "session 1 (the oldest) sees a second request at once");
    {
        sc_sess_copy c;
        sc_store_get(st, mp, sid(1), 0, &c);
        ok(!sc_store_on_probation(c.created, c.last_access),
           "... which ends its probation (the access is written within the second)");
    }
    is(made(st, 5, 0, 7, &idle), SC_STORE_OK, "a fifth session in a store of 4 is made");
    ok(idle >= apr_time_from_sec(8), "... in the place of one idle for %ld ms", (long)(idle / 1000));
    ok(held(st, 1) && !held(st, 2) && held(st, 3) && held(st, 4) && held(st, 5),
       "the oldest session on probation (2) gave way, not the older one that saw two "
       "requests (1)");
    is(st->hdr->evicted, 1, "SessionsEvicted 1");
    ok(!sc_store_dead(st, sid(2)), "it left no tombstone");
    is(st->hdr->count, 4, "the store holds 4");

    /* the same client address first */
    is(made(st, 6, 0, 9, NULL), SC_STORE_OK, "a session of another client (9) comes");
    ok(!held(st, 3) && held(st, 4) && held(st, 5) && held(st, 6),
       "... in the place of the oldest on probation (3)");
    is(made(st, 7, 0, 9, NULL), SC_STORE_OK, "another of client 9");
    ok(held(st, 4) && held(st, 5) && !held(st, 6) && held(st, 7),
       "... takes the place of client 9's own (6), not of older ones of client 7");

    /* a replica follows the same rule */
    is(sc_store_put(st, sid(8), "x=1", 3, 0, 3, apr_time_now(), apr_time_now(), 1800, &v),
       SC_STORE_OK, "a replica of a new session is stored in the full store");
    ok(!held(st, 4) && held(st, 8), "... in the place of the oldest on probation (4)");

    /* nothing on probation: refused */
    for (i = 5; i <= 8; i++) {
        if (held(st, i)) {
            second_request(st, i);
        }
    }
    second_request(st, 1);
    {
        apr_uint64_t full0 = st->hdr->rejected_full, ev0 = st->hdr->evicted;
        is(made(st, 9, 0, 7, NULL), SC_STORE_FULL,
           "every session saw two requests: a new one is refused");
        is(st->hdr->rejected_full, full0 + 1, "SessionsRejectedFull counts it");
        is(st->hdr->evicted, ev0, "nothing gave way");
        ok(held(st, 1) && held(st, 5) && held(st, 7) && held(st, 8), "the 4 are all there");
    }
    /* probation off: no eviction */
    sc_store_set_probation(st, 0);
    sc_store_remove(st, sid(8));
    is(made(st, 10, 0, 7, NULL), SC_STORE_OK, "with probation off, a session fits in a free slot");
    is(made(st, 11, 0, 7, NULL), SC_STORE_FULL,
       "... and the next is refused although session 10 saw a single request");
}

static void expiry(void)
{
    sc_engine *e = ut_engine("nodeA", ID_A, block, 16);
    sc_store *st = e->store;
    sc_peer *b = ut_peer(e, "nodeB", ID_B, 4001);
    apr_uint64_t v;
    apr_time_t now = apr_time_now(), idle;

    ut_conn(e, b, SC_CONN_OUT);
    sc_store_set_probation(st, 60);
    /* 1: a single request 100 s ago; 2: made 200 s ago, last used 100 s ago;
     * 3: a single request 10 s ago; 4: a single request 100 s ago, its own
     * limit 30 s; 5: two requests, idle past its own 50 s */
    made(st, 1, apr_time_from_sec(100), 7, NULL);
    sc_store_put(st, sid(2), "a=1", 3, 0, 2, now - apr_time_from_sec(200),
                 now - apr_time_from_sec(100), 1800, &v);
    made(st, 3, apr_time_from_sec(10), 7, NULL);
    sc_store_put_new(st, sid(4), "a=1", 3, now - apr_time_from_sec(100), 30, 7, &v, &idle);
    sc_store_put(st, sid(5), "a=1", 3, 0, 2, now - apr_time_from_sec(200),
                 now - apr_time_from_sec(100), 50, &v);
    {
        sc_sess_copy c;
        ok(sc_store_get(st, mp, sid(1), 1, &c) == SC_STORE_NOTFOUND,
           "a request with the cookie of a session idle past its probation does not find "
           "it (and does not revive it)");
    }
    ut_reset_frames();
    e->next_sweep = 0;
    sc_dm_tick(e, apr_time_now());
    ok(!held(st, 1) && !held(st, 4), "the sweep removes the sessions idle past their probation");
    ok(held(st, 2) && held(st, 3), "... not one that saw two requests, nor a younger one");
    ok(!held(st, 5), "... and the others idle past their own limit, as before");
    ok(!sc_store_dead(st, sid(1)) && !sc_store_dead(st, sid(4)),
       "those on probation leave no tombstone");
    ok(sc_store_dead(st, sid(5)), "... the other one does");
    is(ut_count_repl(SC_REPL_EXPIRE, NULL), 1,
       "one EXPIRE is sent (the other one's): every member expires its copies on probation");
    is(st->hdr->probation_expired, 2, "SessionsExpiredOnProbation 2");
    is(st->hdr->expired, 3, "SessionsExpired 3");

    /* a second request between the sweep's look and the removal */
    made(st, 6, 0, 7, NULL);
    second_request(st, 6);
    is(sc_store_drop_probation(st, sid(6)), SC_STORE_STALE,
       "a session that saw a second request is not removed as on probation");
    ok(held(st, 6), "... it stays");
}

/* The store's walks: sc_store_each copies every session with its data (a
 * state transfer's blocks), sc_store_each_meta gives the sweep every
 * session's id, times and length without reading its data blocks (a walk of
 * a million sessions a second would copy a gigabyte otherwise), and
 * sc_store_each_due the sweep's own: only the sessions touched or idle. */
typedef struct {
    int n, no_data, data_ok, times_ok, touched;
} walk_seen;

static int walk_one(void *ctx, const sc_sess_copy *s, int touched)
{
    walk_seen *w = ctx;
    w->n++;
    w->no_data += s->data == NULL;
    w->data_ok += s->data && s->data_len == 9 && !memcmp(s->data, "counter=1", 10);
    w->times_ok += s->data_len == 9 && s->created > 0 && s->last_access >= s->created
                   && s->max_inactive == 1800 && !strncmp(s->id, "9a0be100", 8);
    w->touched += touched;
    return 1;
}

static void walks(void)
{
    sc_engine *e = ut_engine("nodeA", ID_A, block, 16);
    sc_store *st = e->store;
    walk_seen all = { 0 }, meta = { 0 }, again = { 0 }, broken = { 0 };
    apr_int32_t i;
    int k;

    for (k = 1; k <= 3; k++) {
        made(st, k, apr_time_from_sec(5), 7, NULL);
    }
    second_request(st, 2);
    sc_store_each(st, mp, walk_one, &all, 0);
    is(all.n, 3, "sc_store_each: every session");
    is(all.data_ok, 3, "... each with its data");
    sc_store_each_meta(st, walk_one, &meta, 1);
    is(meta.n, 3, "sc_store_each_meta: every session");
    is(meta.no_data, 3, "... none with a copy of its data");
    is(meta.times_ok, 3, "... each with its id, times, idle limit and data length");
    is(meta.touched, 1, "... the one touched since the last look says so");
    sc_store_each_meta(st, walk_one, &again, 1);
    is(again.touched, 0, "... and only once (cleared)");

    /* the sweep's walk: only the sessions it has something to do with */
    {
        walk_seen touched = { 0 }, idle = { 0 }, none = { 0 };
        apr_uint64_t v;
        apr_time_t now = apr_time_now();
        sc_store_put(st, sid(4), "counter=1", 9, 0, 2, now - apr_time_from_sec(200),
                     now - apr_time_from_sec(100), 50, &v);
        second_request(st, 1);
        sc_store_each_due(st, now, 0, walk_one, &touched);
        is(touched.n, 1, "sc_store_each_due, not expiring: of 4 sessions, the one touched "
           "since the last look alone");
        is(touched.touched, 1, "... it says it was touched");
        sc_store_each_due(st, now, 1, walk_one, &idle);
        is(idle.n, 1, "... expiring: the one idle past its limit alone (the touch was "
           "taken)");
        ok(idle.no_data == 1 && idle.touched == 0, "... without its data, not touched");
        sc_store_each_due(st, now, 0, walk_one, &none);
        is(none.n, 0, "... and, not expiring, none");
        sc_store_remove(st, sid(4));
    }

    /* a session whose data blocks cannot be read (a chain pointing past the
     * blocks): the copying walk leaves it out, the sweep's walk does not
     * read them, and still sees it (it can still expire) */
    i = -1;
    for (k = 0; k < (int)st->hdr->slot_hwm; k++) {
        if (st->slots[k].cur.used && sc_store_same(st->slots[k].cur.id, sid(3))) {
            i = k;
        }
    }
    ok(i >= 0, "session 3's slot");
    if (i >= 0) {
        walk_seen copies = { 0 };
        st->slots[i].cur.head = st->hdr->nblocks + 7;
        sc_store_each(st, mp, walk_one, &copies, 0);
        sc_store_each_meta(st, walk_one, &broken, 0);
        is(copies.n, 2, "with session 3's chain unreadable, sc_store_each gives 2");
        is(broken.n, 3, "... sc_store_each_meta 3: it never reads a chain");
    }
}

static void log_rate(void)
{
    apr_time_t last = 0, t = apr_time_now();
    ok(sc_store_line_due(&last, 1, t) && sc_store_line_due(&last, 2, t)
       && sc_store_line_due(&last, 3, t), "the first %d lines are due", SC_FLOOD_LINES);
    ok(!sc_store_line_due(&last, 4, t + apr_time_from_sec(1)),
       "the next is not, within %d s", SC_FLOOD_LINE_S);
    ok(sc_store_line_due(&last, 500, t + apr_time_from_sec(SC_FLOOD_LINE_S)),
       "one is due %d s later", SC_FLOOD_LINE_S);
    ok(!sc_store_line_due(&last, 501, t + apr_time_from_sec(SC_FLOOD_LINE_S)),
       "... only one");
}

/* sc_log_gate (sc_private.h): the request side's log lines a client can
 * provoke (sessionAttributeNameFilter's SC1440, a minority's SC1426, the
 * page's refusals) */
static void log_gate(void)
{
    sc_log_gate g = { 0, 0, 0 }, h = { 0, 0, 0 };
    apr_time_t t = apr_time_from_sec(1000000);
    apr_uint32_t skipped = 99;
    int i, open = 0;
    for (i = 0; i < 10; i++) {
        open += sc_log_gate_open(&g, 10, t, &skipped);
    }
    is(open, 10, "the first 10 calls of a gate with first=10 log");
    ok(!sc_log_gate_open(&g, 10, t + apr_time_from_sec(9), &skipped)
       && !sc_log_gate_open(&g, 10, t + apr_time_from_sec(9), &skipped),
       "the next ones within 10 s do not");
    ok(sc_log_gate_open(&g, 10, t + apr_time_from_sec(10), &skipped) && skipped == 2,
       "one logs 10 s after the last line, saying 2 were left out (%u)", skipped);
    ok(!sc_log_gate_open(&g, 10, t + apr_time_from_sec(10), &skipped), "... only one");
    ok(sc_log_gate_open(&h, 0, t, &skipped) && skipped == 0, "first=0: the first call logs");
    ok(!sc_log_gate_open(&h, 0, t + apr_time_from_sec(5), &skipped), "... the next within 10 s not");
}

/* sc_store_hash: the same attributes in any order hash alike, empty pairs
 * count for nothing, one byte changed anywhere in a pair (its 8-byte steps
 * and its tail) changes the hash, local pairs are left out; and its values
 * are fixed (they travel in DELTA stamps: another function needs
 * SC_PROTO_VERSION raised). */
static int bang_local(const char *key, apr_size_t klen)
{
    return klen && key[0] == '!';
}

static void hashes(void)
{
    char *big = apr_palloc(mp, 32769), *big2;
    apr_size_t n, at;
    int differ = 1;

    ok(sc_store_hash("a=1&b=2", 7) == sc_store_hash("b=2&a=1", 7), "hash: order of pairs");
    ok(sc_store_hash("a=1&&b=2&", 9) == sc_store_hash("a=1&b=2", 7), "hash: empty pairs");
    ok(sc_store_hash("a=1&b=2", 7) != sc_store_hash("a=1&b=3", 7), "hash: a value");
    ok(sc_store_hash("a=1&a=1", 7) != sc_store_hash("a=1", 3), "hash: a pair twice");
    ok(sc_store_hash("", 0) != 0, "hash: never 0");
    for (n = 1; n <= 40 && differ; n++) {
        char x[41], y[41];
        for (at = 0; at < n && differ; at++) {
            memset(x, 'x', n);
            memcpy(y, x, n);
            y[at] = 'y';
            differ = sc_store_hash(x, (apr_uint32_t)n) != sc_store_hash(y, (apr_uint32_t)n);
        }
    }
    ok(differ, "hash: one byte changed in a pair of 1-40 bytes (last: %d at %d)",
       (int)n - 1, (int)at - 1);
    memset(big, 'x', 32768);
    memcpy(big, "data=", 5);
    big[32768] = '\0';
    big2 = apr_pstrdup(mp, big);
    big2[32767] = 'y';
    ok(sc_store_hash(big, 32768) != sc_store_hash(big2, 32768), "hash: 32 KB, its last byte");
    big2[32767] = 'x';
    big2[16001] = 'y';
    ok(sc_store_hash(big, 32768) != sc_store_hash(big2, 32768), "hash: 32 KB, a middle byte");
    sc_store_set_hash_filter(bang_local);
    ok(sc_store_hash("a=1&!sc-sent=4", 14) == sc_store_hash("a=1", 3),
       "hash: a local pair left out");
    sc_store_set_hash_filter(NULL);
    ok(sc_store_hash("a=1&!sc-sent=4", 14) != sc_store_hash("a=1", 3),
       "hash: counted without the filter");
    /* the values every member computes, whatever its byte order */
    is((long long)sc_store_hash("count=7", 7), (long long)APR_UINT64_C(0xde46dacc7ca8c84c), "hash: count=7");
    is((long long)sc_store_hash("expiry=1764931200000000&data=0123456789abcdef", 45),
       (long long)APR_UINT64_C(0xa5b13f5e4734f7db), "hash: two pairs");
}

/* A new version's hash made from its old one's with only the pairs that
 * changed hashed (sc_store_hash_sum, sc_store_hash_pair, sc_store_hash_make)
 * is sc_store_hash's of its data; a store's stamps are built on only under
 * the regime the store was made with (sc_store_hash_trusted); and a write
 * given its hash stores that one (sc_store_put_hashed). */
static void hash_steps(void)
{
    const char *old = "a=1&b=22&!own=5&c=333", *nw = "a=1&c=3&!own=6&d=4444";
    apr_uint64_t sum = 0, h, v;
    sc_store *st, *st2, *st3;
    sc_sess_copy c;

    sc_store_set_hash_filter(bang_local);
    ok(sc_store_hash_sum(sc_store_hash(old, (apr_uint32_t)strlen(old)), 3, &sum),
       "hash steps: the sum of the pairs found again from a hash");
    ok(!sc_store_hash_pair("!own=5", 6, &h), "hash steps: a local pair is not hashed");
    ok(!sc_store_hash_pair("", 0, &h), "hash steps: nor an empty one");
    ok(sc_store_hash_pair("b=22", 4, &h), "hash steps: a pair is");
    sum -= h;
    ok(sc_store_hash_pair("c=333", 5, &h), "hash steps: another");
    sum -= h;
    ok(sc_store_hash_pair("c=3", 3, &h) && (sum += h, 1), "hash steps: a new one");
    ok(sc_store_hash_pair("d=4444", 6, &h) && (sum += h, 1), "hash steps: another new one");
    is((long long)sc_store_hash_make(sum, 3),
       (long long)sc_store_hash(nw, (apr_uint32_t)strlen(nw)),
       "hash steps: the new version's hash is sc_store_hash's of its data");
    sc_store_set_hash_filter(NULL);
    ok(!sc_store_hash_sum(1, 3, &sum) && !sc_store_hash_sum(0, 3, &sum),
       "hash steps: no sum from a hash of 1 (0 made 1) or 0");

    if (sc_store_create(mp, 4, 1024, &st) != APR_SUCCESS
        || sc_store_create(mp, 4, 1024, &st2) != APR_SUCCESS
        || sc_store_create(mp, 4, 1024, &st3) != APR_SUCCESS) {
        printf("Bail out! sc_store_create failed\n");
        exit(1);
    }
    ok(!sc_store_hash_trusted(st), "regime: a store given none is not trusted");
    sc_store_hash_regime(st, 100, 1);
    ok(sc_store_hash_trusted(st), "regime: a new store is");
    sc_store_hash_regime(st, 100, 0);
    ok(sc_store_hash_trusted(st), "regime: kept under the same one, it still is");
    sc_store_hash_regime(st, 200, 0);
    ok(!sc_store_hash_trusted(st), "regime: kept under another one, not");
    sc_store_hash_regime(st, 100, 0);
    ok(!sc_store_hash_trusted(st), "regime: ... nor when kept again under the first");
    sc_store_hash_regime(st2, 100, 0);
    ok(!sc_store_hash_trusted(st2), "regime: a store kept from a build that did not record "
       "one is not trusted");
    sc_store_hash_regime(st, 100, 1);
    sc_store_hash_regime_from(st3, st);
    sc_store_hash_regime(st3, 100, 0);
    ok(sc_store_hash_trusted(st3), "regime: a store the sessions moved to takes the trust "
       "of theirs");
    sc_store_hash_regime_from(st3, st2);
    sc_store_hash_regime(st3, 100, 0);
    ok(!sc_store_hash_trusted(st3), "regime: ... also when it was none");

    ok(sc_store_put_new(st, sid(1), "a=1", 3, apr_time_now(), 1800, 1, &v, NULL)
       == SC_STORE_OK, "put_hashed: a session");
    ok(sc_store_put_hashed(st, sid(1), "a=2", 3, v, apr_time_now(), 1800, 12345, NULL, &v)
       == SC_STORE_OK && sc_store_get(st, mp, sid(1), 0, &c) == SC_STORE_OK
       && c.hash == 12345 && c.version == 2 && !strcmp(c.data, "a=2"),
       "put_hashed: the hash given is the stamp's");
    ok(sc_store_put_hashed(st, sid(1), "a=3", 3, v, apr_time_now(), 1800, 0, NULL, &v)
       == SC_STORE_OK && sc_store_get(st, mp, sid(1), 0, &c) == SC_STORE_OK
       && c.hash == sc_store_hash("a=3", 3), "put_hashed: none given, the data is hashed");
}

/* A reader never sees a torn value: a forked writer rewrites a session of
 * about 32 KB (a chain of some 260 blocks, its old chain freed and taken
 * again by the next write at once) with values of one byte repeated, each
 * byte with its own length, while this process reads it without locks
 * (sc_store_get): every read is one whole value, and its stamp's hash is
 * that value's. */
static int one_value(const sc_sess_copy *c)
{
    apr_uint32_t i, want;
    char b;
    if (c->data_len < 3 || memcmp(c->data, "a=", 2) != 0 || c->data[c->data_len] != '\0') {
        return 0;
    }
    b = c->data[2];
    want = 2 + 30000 + (apr_uint32_t)(b - 'A') * 101;
    if (b < 'A' || b > 'Z' || c->data_len != want) {
        return 0;
    }
    for (i = 2; i < c->data_len; i++) {
        if (c->data[i] != b) {
            return 0;
        }
    }
    return c->hash == sc_store_hash(c->data, c->data_len);
}

static void torn_reads(void)
{
    sc_store *st;
    apr_pool_t *rp;
    char *buf = apr_palloc(mp, 2 + 30000 + 26 * 101 + 1);
    const char *id = sid(7);
    apr_uint64_t v;
    apr_time_t until;
    long reads = 0, torn = 0, writes = 0;
    int status = 0;
    pid_t pid;

    if (sc_store_create(mp, 4, 65536, &st) != APR_SUCCESS) {
        ok(0, "torn reads: store created");
        return;
    }
    memcpy(buf, "a=", 2);
    memset(buf + 2, 'A', 30000);
    buf[2 + 30000] = '\0';
    ok(sc_store_put_new(st, id, buf, 2 + 30000, apr_time_now(), 1800, 1, &v, NULL)
       == SC_STORE_OK, "torn reads: the session made");
    pid = fork();
    if (pid == 0) {
        apr_time_t end = apr_time_now() + apr_time_from_msec(600);
        int i;
        for (i = 0; apr_time_now() < end; i++) {
            char b = (char)('A' + i % 26);
            apr_uint32_t len = 2 + 30000 + (apr_uint32_t)(b - 'A') * 101;
            memset(buf + 2, b, len - 2);
            buf[len] = '\0';
            if (sc_store_put(st, id, buf, len, 0, 0, 0, apr_time_now(), 1800, &v)
                != SC_STORE_OK) {
                _exit(2);
            }
        }
        _exit(i > 100 ? 0 : 3);
    }
    apr_pool_create(&rp, mp);
    until = apr_time_now() + apr_time_from_msec(500);
    while (apr_time_now() < until) {
        sc_sess_copy c;
        apr_pool_clear(rp);
        if (sc_store_get(st, rp, id, 0, &c) == SC_STORE_OK) {
            reads++;
            torn += !one_value(&c);
        }
    }
    waitpid(pid, &status, 0);
    writes = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    ok(writes == 0, "torn reads: the writer wrote (exit %ld)", writes);
    ok(reads > 100 && torn == 0, "torn reads: %ld reads of a 32 KB session rewritten meanwhile, "
       "%ld of them not one whole value with its hash", reads, torn);
    apr_pool_destroy(rp);
}

/* Is the page of 'at' resident (in the segment's memory)? */
static int resident(const void *at)
{
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char v = 0;
    void *page = (void *)((uintptr_t)at & ~(uintptr_t)(pg - 1));
    return mincore(page, (size_t)pg, &v) == 0 && (v & 1);
}

/* Are all pages of [at, at + len) resident? */
static int all_resident(const unsigned char *at, apr_size_t len)
{
    apr_size_t o;
    long pg = sysconf(_SC_PAGESIZE);
    for (o = 0; o < len; o += (apr_size_t)pg) {
        if (!resident(at + o)) {
            return 0;
        }
    }
    return resident(at + len - 1);
}

/* sc_store_prefault: the pages a store of so many sessions and data blocks
 * fills, from its marks up, are made resident on a thread of their own; not
 * one page further, however far beyond the store the figures go. */
static void prefault(void)
{
    sc_store *st;
    int tries;
    unsigned char *slots, *blocks;

    if (sc_store_create(mp, 20000, 1024, &st) != APR_SUCCESS) {
        ok(0, "prefault: a store of 20,000 sessions");
        return;
    }
    slots = (unsigned char *)st->slots;
    blocks = st->blocks;
    ok(!resident(slots + 1000 * sizeof(sc_sess)) && !resident(blocks + 9000 * SC_STORE_BLOCK),
       "prefault: a new store's slots and blocks are not resident");
    ok(st->hdr->nlocks == SC_STORE_LOCKS
       && !resident((const char *)st->locks + 1000 * sizeof(sc_slot_lock))
       && !resident((const char *)st->locks + (SC_STORE_LOCKS - 1) * sizeof(sc_slot_lock)),
       "... nor its %u slot locks (each is made with the first slot that uses it)",
       st->hdr->nlocks);
    is(sc_store_prefault(st, 1000, 9000), 0, "prefault: for 1,000 sessions in 9,000 blocks");
    for (tries = 0; tries < 500 && !(resident(slots + 999 * sizeof(sc_sess))
                                     && resident(blocks + 8999 * SC_STORE_BLOCK)); tries++) {
        apr_sleep(apr_time_from_msec(10));
    }
    sc_store_prefault_stop(st);
    ok(all_resident(slots, 1000 * sizeof(sc_sess))
       && all_resident(blocks, 9000 * SC_STORE_BLOCK),
       "prefault: the slots of 1,000 sessions and 9,000 blocks are resident");
    ok(!resident(slots + 1000 * sizeof(sc_sess) + 8192)
       && !resident(blocks + 9000 * SC_STORE_BLOCK + 8192),
       "prefault: the pages after them are not");
    ok(sc_store_prefaulted(st) >= (1000 * sizeof(sc_sess) + 9000 * SC_STORE_BLOCK) / 4096,
       "prefault: %" APR_UINT64_T_FMT " pages counted", sc_store_prefaulted(st));
    /* far beyond what the store has: its own slots and blocks only */
    is(sc_store_prefault(st, 4000000, 400000000), 0, "prefault: for more than the store holds");
    for (tries = 0; tries < 1000 && !resident(blocks + (st->hdr->nblocks - 1)
                                              * (apr_size_t)SC_STORE_BLOCK); tries++) {
        apr_sleep(apr_time_from_msec(10));
    }
    sc_store_prefault_stop(st);
    ok(all_resident(slots, st->hdr->capacity * sizeof(sc_sess))
       && all_resident(blocks, st->hdr->nblocks * (apr_size_t)SC_STORE_BLOCK),
       "prefault: then every slot and block of the store (%u, %u)",
       st->hdr->capacity, st->hdr->nblocks);
    ok(!resident(st->tombs + 64) && !resident(st->locs),
       "prefault: nothing after its blocks (tombstones, locations)");
}

/* The bytes a session takes (sc_store.h, "Bytes a session costs"): a slot
 * of 176 bytes and one 128-byte block (and its 4-byte link) per 128 bytes of
 * data, counted against the budget as such; so a session of 1,005 bytes (one
 * 1,000-byte attribute, the state transfer's benchmark) takes 8 blocks and
 * 1,232 bytes in all, within 1.23x, and a small one (200 bytes) 2 blocks. */
static void session_bytes(void)
{
    sc_store *st;
    char *data = apr_palloc(mp, 32769);
    static const apr_uint32_t lens[] = { 200, 1005, 32768 };
    static const apr_uint32_t want[] = { 2, 8, 256 };
    apr_uint64_t v;
    int k;

    if (sc_store_create(mp, 16, 32768, &st) != APR_SUCCESS) {
        ok(0, "session bytes: store created");
        return;
    }
    memset(data, 'x', 32768);
    memcpy(data, "data=", 5);
    is((long)sizeof(sc_sess), 176, "a slot is 176 bytes (id, fields, sequence: no lock, no undo)");
    for (k = 0; k < 3; k++) {
        apr_uint32_t before = st->hdr->blocks_used;
        apr_uint64_t counted = sc_store_bytes_counted(st);
        ok(sc_store_put_new(st, sid(100 + k), data, lens[k], apr_time_now(), 1800, 1, &v,
                            NULL) == SC_STORE_OK, "session bytes: a session of %u bytes stored",
           lens[k]);
        is((long)(st->hdr->blocks_used - before), (long)want[k],
           "... in %u data blocks", want[k]);
        is((long)(sc_store_bytes_counted(st) - counted),
           (long)(176 + want[k] * (SC_STORE_BLOCK + 4)),
           "... counted against the budget as its slot and its blocks with their links");
    }
    ok(176 + 8 * (SC_STORE_BLOCK + 4) <= 1005 * 123 / 100,
       "1,005 bytes of data take %d bytes of store, within 1.23x",
       (int)(176 + 8 * (SC_STORE_BLOCK + 4)));
    {
        sc_sess_copy c;
        ok(sc_store_get(st, mp, sid(101), 0, &c) == SC_STORE_OK && c.data_len == 1005
           && !memcmp(c.data, data, 1005) && c.data[1005] == '\0',
           "... and reads back whole");
    }
}

/* The slot of session id in st, or -1. */
static apr_int32_t slot_of(sc_store *st, const char *id)
{
    apr_uint32_t k;
    for (k = 0; k < st->hdr->slot_hwm; k++) {
        if (st->slots[k].cur.used && !strcmp(st->slots[k].cur.id, id)) {
            return (apr_int32_t)k;
        }
    }
    return -1;
}

/* Opens a write of slot k as the store's writers do (write_open), its lock
 * held by the caller: the slot's cur saved in the lock's undo record, no
 * bytes written in place yet, the slot named there, the sequence odd. */
static sc_sess *open_write(sc_store *st, apr_int32_t k, sc_slot_lock *l)
{
    sc_sess *s = &st->slots[k];
    l->undo = s->cur;
    l->patched = 0;
    l->writing = (apr_uint32_t)k + 1;
    sc_shm_write_begin(&s->seq);
    return s;
}

/* slot k's lock */
static sc_slot_lock *lock_of_slot(sc_store *st, apr_int32_t k)
{
    return &st->locks[(apr_uint32_t)k & (st->hdr->nlocks - 1)];
}

/* A writer process that dies inside its write of slot k: it takes the
 * slot's lock and opens its write as the store's writers do (the slot's cur
 * saved in the lock's undo record, the slot named there, the sequence
 * odd), changes the session's id (a re-bind), version, times and chain (its
 * data: none), and is gone, the lock held, the sequence odd. */
static int die_inside_write(sc_store *st, apr_int32_t k)
{
    int status = 0;
    pid_t pid = fork();
    if (pid == 0) {
        sc_slot_lock *l = lock_of_slot(st, k);
        sc_sess *s;
        pthread_mutex_lock(&l->lock);
        s = open_write(st, k, l);
        memcpy(strchr(s->cur.id, '.') + 1, "nodeZ", 5);
        s->cur.version += 5;
        s->cur.last_access += apr_time_from_sec(1);
        s->cur.head = 0;
        s->cur.data_len = 0;
        _exit(0);
    }
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Is session n held as it was made (its id, version 1, data)? */
static int whole(sc_store *st, int n, const char *data)
{
    sc_sess_copy c;
    return sc_store_get(st, mp, sid(n), 0, &c) == SC_STORE_OK && !strcmp(c.id, sid(n))
           && c.version == 1 && c.data_len == strlen(data) && !strcmp(c.data, data);
}

/* A writer that died inside its write is undone by whoever takes its lock
 * next: a reader that finds the sequence odd too long, or a writer of
 * another slot that shares the lock (a store of more slots than
 * SC_STORE_LOCKS); the session's id, version and data are its last
 * committed ones again, SessionWritesUndone counts it, and it can be
 * written. */
static void dead_writer(void)
{
    sc_store *st;
    apr_uint64_t v;
    apr_int32_t k, k0;
    int n;
    const char *d = "a=committed&b=0123456789abcdef0123456789abcdef0123456789abcdef"
                    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    if (sc_store_create(mp, 8, 1024, &st) != APR_SUCCESS) {
        ok(0, "dead writer: store created");
        return;
    }
    sc_store_put_new(st, sid(1), d, (apr_uint32_t)strlen(d), apr_time_now(), 1800, 1, &v, NULL);
    k = slot_of(st, sid(1));
    ok(k >= 0 && die_inside_write(st, k), "dead writer: a writer died inside its write of "
       "a session of %d bytes (its id re-bound, its data gone)", (int)strlen(d));
    ok(st->slots[k].seq & 1, "... the slot's sequence is left odd");
    ok(whole(st, 1, d), "a reader gets the last committed id, version and data");
    is((long)st->hdr->writes_undone, 1, "... it undid the write (SessionWritesUndone 1)");
    ok(!(st->slots[k].seq & 1), "... the sequence is even again");
    ok(sc_store_put(st, sid(1), "a=2", 3, 1, 0, 0, apr_time_now(), 1800, &v) == SC_STORE_OK
       && v == 2, "... and the session is written again (version 2)");

    /* more slots than locks: slot k and slot k + SC_STORE_LOCKS share one */
    if (sc_store_create(mp, SC_STORE_LOCKS + 8, 1024, &st) != APR_SUCCESS) {
        ok(0, "dead writer: a store of %d slots created", SC_STORE_LOCKS + 8);
        return;
    }
    is((long)st->hdr->nlocks, SC_STORE_LOCKS, "a store of %d slots has %d locks",
       SC_STORE_LOCKS + 8, SC_STORE_LOCKS);
    for (n = 1; n <= SC_STORE_LOCKS + 1; n++) {
        if (sc_store_put_new(st, sid(1000 + n), d, (apr_uint32_t)strlen(d), apr_time_now(),
                             1800, 1, &v, NULL) != SC_STORE_OK) {
            break;
        }
    }
    k0 = slot_of(st, sid(1001));
    k = slot_of(st, sid(1001 + SC_STORE_LOCKS));
    ok(k0 >= 0 && k == k0 + SC_STORE_LOCKS, "sessions in slots %d and %d (one lock)",
       (int)k0, (int)k);
    if (k0 < 0 || k != k0 + SC_STORE_LOCKS) {
        return;
    }
    ok(die_inside_write(st, k), "a writer died inside its write of slot %d", (int)k);
    ok(sc_store_put(st, sid(1001), "a=2", 3, 1, 0, 0, apr_time_now(), 1800, &v)
       == SC_STORE_OK, "a write of the session in slot %d, which shares the lock, is done",
       (int)k0);
    is((long)st->hdr->writes_undone, 1, "... and it undid the dead write of slot %d", (int)k);
    ok(!(st->slots[k].seq & 1) && whole(st, 1001 + SC_STORE_LOCKS, d),
       "... whose session has its last committed id, version and data again");
}


/* ---- writes in place (sc_store.h, "Writes in place") ---- */

#define PATCH_LEN (2 + 30000)

/* 'a=' and 30000 bytes of 'x', with byte 2 + at[k] set to c for each k < n. */
static char *patched_text(const apr_uint32_t *at, int n, char c)
{
    char *b = apr_palloc(mp, PATCH_LEN + 8);
    int k;
    memcpy(b, "a=", 2);
    memset(b + 2, 'x', 30000);
    b[PATCH_LEN] = '\0';
    for (k = 0; k < n; k++) {
        b[2 + at[k]] = c;
    }
    return b;
}

/* Does session id read exactly data (len bytes), with data's hash? */
static int reads_as(sc_store *st, const char *id, const char *data, apr_uint32_t len)
{
    sc_sess_copy c;
    return sc_store_get(st, mp, id, 0, &c) == SC_STORE_OK && c.data_len == len
           && !memcmp(c.data, data, len) && c.data[len] == '\0'
           && c.hash == sc_store_hash(data, len);
}

/* Parts a writer says it copied from the version it read (sc_store_kept)
 * are not compared while the slot holds that version: a part said kept is
 * not written even when it differs (the store trusts the writer, as
 * sc_store.h says); a write in between (a touch moves the slot's sequence
 * without a new version), or a read of another slot, and every byte is
 * compared again. */
static void kept_ranges(void)
{
    sc_store *st;
    apr_uint64_t v;
    apr_int32_t k;
    const char *id = sid(36);
    sc_sess_copy c;
    sc_store_kept kept;
    sc_store_range rest = { 128, PATCH_LEN - 128 };
    char *d, *want;

    if (sc_store_create(mp, 8, 65536, &st) != APR_SUCCESS) {
        ok(0, "kept: store created");
        return;
    }
    d = patched_text(NULL, 0, 0);
    ok(sc_store_put_new(st, id, d, PATCH_LEN, apr_time_now(), 1800, 1, &v, NULL) == SC_STORE_OK,
       "kept: a session of %d bytes made", PATCH_LEN);
    k = slot_of(st, id);
    ok(sc_store_get(st, mp, id, 0, &c) == SC_STORE_OK && c.read_slot == (apr_uint32_t)k + 1
       && c.read_seq == st->slots[k].seq && !(c.read_seq & 1),
       "a copy read says where: its slot and the slot's sequence then");
    kept.read_slot = c.read_slot;
    kept.read_seq = c.read_seq;
    kept.n = 1;
    kept.r = &rest;

    d = patched_text((const apr_uint32_t[]){ 10 }, 1, 'K');
    ok(sc_store_put_hashed(st, id, d, PATCH_LEN, c.version, apr_time_now(), 1800, 0, &kept, &v)
       == SC_STORE_OK && st->hdr->updated_in_place == 1 && reads_as(st, id, d, PATCH_LEN),
       "a change in the first block, the rest said kept: in place, reads as written");

    /* a writer that says a part it changed was kept */
    ok(sc_store_get(st, mp, id, 0, &c) == SC_STORE_OK, "read again");
    kept.read_seq = c.read_seq;
    d = patched_text((const apr_uint32_t[]){ 10, 20000 }, 2, 'L');
    ok(sc_store_put_hashed(st, id, d, PATCH_LEN, c.version, apr_time_now(), 1800, 0, &kept, &v)
       == SC_STORE_OK && st->hdr->updated_in_place == 2, "a change said kept: in place");
    want = apr_pstrdup(mp, d);
    want[2 + 20000] = 'x';
    ok(sc_store_get(st, mp, id, 0, &c) == SC_STORE_OK && c.data_len == PATCH_LEN
       && !memcmp(c.data, want, PATCH_LEN),
       "... its bytes said kept were not compared, so not written: the old byte stays");

    /* a touch between the read and the write */
    d = patched_text((const apr_uint32_t[]){ 10, 20000 }, 2, 'M');
    ok(sc_store_put(st, id, d, PATCH_LEN, c.version, 0, 0, apr_time_now(), 1800, &v)
       == SC_STORE_OK && reads_as(st, id, d, PATCH_LEN), "written whole without kept parts");
    ok(sc_store_get(st, mp, id, 0, &c) == SC_STORE_OK, "read again");
    kept.read_seq = c.read_seq;
    sc_store_touch(st, id, apr_time_now() + apr_time_from_sec(5));
    ok(st->slots[k].seq != c.read_seq && st->slots[k].cur.version == c.version,
       "a touch moved the slot's sequence, not its version");
    d = patched_text((const apr_uint32_t[]){ 10, 20000 }, 2, 'N');
    ok(sc_store_put_hashed(st, id, d, PATCH_LEN, c.version, apr_time_now(), 1800, 0, &kept, &v)
       == SC_STORE_OK && st->hdr->updated_in_place == 4 && reads_as(st, id, d, PATCH_LEN),
       "after it the part said kept is compared: written in place, reads as written");

    /* ranges that end and start inside blocks: the bytes between them are
     * compared (1023, the last of a block, and 1500, inside one) */
    ok(sc_store_get(st, mp, id, 0, &c) == SC_STORE_OK, "read again");
    {
        static const sc_store_range gaps[] = { { 128, 895 }, { 1024, 476 },
                                               { 1501, PATCH_LEN - 1501 } };
        sc_store_kept two = { 0, 0, 3, gaps };
        two.read_slot = c.read_slot;
        two.read_seq = c.read_seq;
        d = apr_pstrdup(mp, c.data);
        d[1023] = d[1500] = 'G';
        ok(sc_store_put_hashed(st, id, d, PATCH_LEN, c.version, apr_time_now(), 1800, 0, &two,
                               &v) == SC_STORE_OK && st->hdr->updated_in_place == 5
           && reads_as(st, id, d, PATCH_LEN),
           "a byte right after a range said kept, and one between two: in place, written");
    }

    /* a read that records the access (a request's load, here the second
     * of a session on probation): the touch is the only write since, and
     * the parts said kept are still not compared */
    {
        const char *id2 = sid(37);
        apr_int32_t k2;
        apr_uint32_t seq;
        sc_sess_copy c2;
        d = patched_text(NULL, 0, 0);
        ok(sc_store_put_new(st, id2, d, PATCH_LEN, apr_time_now() - apr_time_from_sec(5), 1800,
                            1, &v, NULL) == SC_STORE_OK, "a second session, made 5 s ago");
        k2 = slot_of(st, id2);
        seq = st->slots[k2].seq;
        ok(sc_store_get(st, mp, id2, 1, &c2) == SC_STORE_OK && st->slots[k2].seq == seq + 2
           && c2.read_seq == seq + 2, "a read with its access recorded: the touch moved the "
           "sequence, and the read says the sequence after it");
        kept.read_slot = c2.read_slot;
        kept.read_seq = c2.read_seq;
        d = patched_text((const apr_uint32_t[]){ 10, 20000 }, 2, 'U');
        want = apr_pstrdup(mp, d);
        want[2 + 20000] = 'x';
        ok(sc_store_put_hashed(st, id2, d, PATCH_LEN, c2.version, apr_time_now(), 1800, 0,
                               &kept, &v) == SC_STORE_OK
           && sc_store_get(st, mp, id2, 0, &c2) == SC_STORE_OK
           && !memcmp(c2.data, want, PATCH_LEN),
           "... a part said kept is not compared after it (its changed byte not written)");
        kept.read_slot = c.read_slot;
    }

    /* said read from another slot */
    ok(sc_store_get(st, mp, id, 0, &c) == SC_STORE_OK, "read again");
    kept.read_slot = c.read_slot + 1;
    kept.read_seq = c.read_seq;
    d = patched_text((const apr_uint32_t[]){ 10, 20000 }, 2, 'P');
    ok(sc_store_put_hashed(st, id, d, PATCH_LEN, c.version, apr_time_now(), 1800, 0, &kept, &v)
       == SC_STORE_OK && reads_as(st, id, d, PATCH_LEN),
       "a read of another slot: every byte compared, reads as written");

    /* a copy from another member, made here on the version read (a DELTA
     * applied to it: sc_store_take_kept) */
    ok(sc_store_get(st, mp, id, 0, &c) == SC_STORE_OK, "read again");
    kept.read_slot = c.read_slot;
    kept.read_seq = c.read_seq;
    c.data = patched_text((const apr_uint32_t[]){ 10, 20000 }, 2, 'Q');
    c.version++;
    c.hash = sc_store_hash(c.data, c.data_len);
    want = apr_pstrdup(mp, c.data);
    want[2 + 20000] = 'P';            /* the part said kept, as read */
    ok(sc_store_take_kept(st, &c, 1, 1, NULL, NULL, &(sc_store_rc){ 0 }, &kept)
       == SC_TAKE_STORED && st->hdr->updated_in_place == 8,
       "a copy taken with the rest said kept: in place");
    ok(sc_store_get(st, mp, id, 0, &c) == SC_STORE_OK && c.data_len == PATCH_LEN
       && !memcmp(c.data, want, PATCH_LEN),
       "... the part said kept not compared: its changed byte not written");
    kept.read_seq = c.read_seq;
    sc_store_touch(st, id, apr_time_now() + apr_time_from_sec(10));
    c.data = patched_text((const apr_uint32_t[]){ 10, 20000 }, 2, 'R');
    c.version++;
    c.hash = sc_store_hash(c.data, c.data_len);
    ok(sc_store_take_kept(st, &c, 1, 1, NULL, NULL, &(sc_store_rc){ 0 }, &kept)
       == SC_TAKE_STORED && st->hdr->updated_in_place == 9
       && reads_as(st, id, c.data, PATCH_LEN),
       "a copy taken after a touch: the part said kept is compared, reads as written");
}

/* An update that differs from the version it replaces in at most
 * SC_STORE_PATCH blocks and SC_STORE_PATCH_BYTES bytes (from the first that
 * differs in a block to the last), of as many blocks, is written over them: the chain
 * stays, no block is taken or given back, SessionsUpdatedInPlace counts it,
 * and the session reads as written; one more block changed, or a block more
 * or less, makes a chain of its own; a copy from another member
 * (sc_store_take) is written in place as a request's update is. */
static void in_place(void)
{
    sc_store *st;
    apr_uint64_t v;
    apr_int32_t k;
    apr_uint32_t head, used;
    const char *id = sid(31);
    static const apr_uint32_t four[] = { 10, 5000, 12000, 29990 };
    static const apr_uint32_t five[] = { 10, 5000, 12000, 20000, 29990 };
    char *d, *canary;
    sc_sess_copy c;

    if (sc_store_create(mp, 8, 65536, &st) != APR_SUCCESS) {
        ok(0, "in place: store created");
        return;
    }
    /* a neighbour, whose blocks no write in place may touch */
    canary = patched_text((const apr_uint32_t[]){ 1, 2, 3 }, 3, 'N');
    ok(sc_store_put_new(st, sid(35), canary, PATCH_LEN, apr_time_now(), 1800, 1, &v, NULL)
       == SC_STORE_OK, "in place: a neighbour session made");
    d = patched_text(NULL, 0, 0);
    ok(sc_store_put_new(st, id, d, PATCH_LEN, apr_time_now(), 1800, 1, &v, NULL) == SC_STORE_OK,
       "in place: a session of %d bytes made", PATCH_LEN);
    k = slot_of(st, id);
    head = st->slots[k].cur.head;
    used = st->hdr->blocks_used;

    d = patched_text(four, 1, 'B');
    ok(sc_store_put(st, id, d, PATCH_LEN, 1, 0, 0, apr_time_now(), 1800, &v) == SC_STORE_OK
       && v == 2, "one byte changed: written (version 2)");
    is((long)st->hdr->updated_in_place, 1, "... in place (SessionsUpdatedInPlace 1)");
    ok(st->slots[k].cur.head == head && st->hdr->blocks_used == used,
       "... over its own chain: the same first block, %u blocks in use as before", used);
    ok(reads_as(st, id, d, PATCH_LEN), "... and it reads as written, with its hash");

    d = patched_text(four, 4, 'C');
    ok(sc_store_put(st, id, d, PATCH_LEN, 2, 0, 0, apr_time_now(), 1800, &v) == SC_STORE_OK
       && st->hdr->updated_in_place == 2 && st->slots[k].cur.head == head
       && reads_as(st, id, d, PATCH_LEN),
       "%d blocks changed, the first and the last among them: in place, reads as written",
       SC_STORE_PATCH);

    d = patched_text(five, 5, 'D');
    ok(sc_store_put(st, id, d, PATCH_LEN, 3, 0, 0, apr_time_now(), 1800, &v) == SC_STORE_OK
       && reads_as(st, id, d, PATCH_LEN), "5 blocks changed: written, reads as written");
    is((long)st->hdr->updated_in_place, 2, "... not in place (SessionsUpdatedInPlace still 2)");
    ok(st->slots[k].cur.head != head && st->hdr->blocks_used == used,
       "... in a chain of its own, the old one given back (%u blocks in use)",
       (unsigned)st->hdr->blocks_used);
    head = st->slots[k].cur.head;

    /* 30002 bytes end 50 bytes into their last block: 40 more fit in it */
    d = patched_text(five, 5, 'D');
    memset(d + PATCH_LEN, 'y', 40);
    d[PATCH_LEN + 40] = '\0';
    ok(sc_store_put(st, id, d, PATCH_LEN + 40, 4, 0, 0, apr_time_now(), 1800, &v)
       == SC_STORE_OK && st->hdr->updated_in_place == 3 && st->slots[k].cur.head == head
       && reads_as(st, id, d, PATCH_LEN + 40),
       "40 bytes more, within the last block: in place, reads as written");
    d[PATCH_LEN + 20] = '\0';
    ok(sc_store_put(st, id, d, PATCH_LEN + 20, 5, 0, 0, apr_time_now(), 1800, &v)
       == SC_STORE_OK && st->hdr->updated_in_place == 4 && reads_as(st, id, d, PATCH_LEN + 20),
       "20 bytes fewer, within it: in place, reads as written");
    d = patched_text(five, 5, 'D');
    memset(d + PATCH_LEN, 'y', 100);
    d[PATCH_LEN + 100] = '\0';
    ok(sc_store_put(st, id, d, PATCH_LEN + 100, 6, 0, 0, apr_time_now(), 1800, &v)
       == SC_STORE_OK && st->hdr->updated_in_place == 4 && st->slots[k].cur.head != head
       && reads_as(st, id, d, PATCH_LEN + 100),
       "100 bytes more (a block more): a chain of its own, reads as written");

    /* the bytes from the first that differs to the last, a block: at most
     * SC_STORE_PATCH_BYTES in all */
    d = apr_pstrdup(mp, d);
    memset(d + 2 + 300, 'F', 64);     /* 302-365: in one block; 1002-1065: */
    memset(d + 2 + 1000, 'F', 64);    /* in two (1024 starts one): 128 bytes */
    ok(sc_store_put(st, id, d, PATCH_LEN + 100, 7, 0, 0, apr_time_now(), 1800, &v)
       == SC_STORE_OK && st->hdr->updated_in_place == 5 && reads_as(st, id, d, PATCH_LEN + 100),
       "%d bytes changed in three blocks: in place, reads as written", SC_STORE_PATCH_BYTES);
    d = apr_pstrdup(mp, d);
    d[2050] = d[2150] = 'G';          /* one block (2048-2175): 101 bytes */
    d[5002] = d[5029] = 'G';          /* one block (4992-5119): 28 bytes */
    ok(sc_store_put(st, id, d, PATCH_LEN + 100, 8, 0, 0, apr_time_now(), 1800, &v)
       == SC_STORE_OK && st->hdr->updated_in_place == 5 && reads_as(st, id, d, PATCH_LEN + 100),
       "4 bytes changed, %d from the first to the last in their blocks: not in place, reads "
       "as written", 101 + 28);
    head = st->slots[k].cur.head;

    /* a copy from another member, made on this version */
    memset(&c, 0, sizeof(c));
    strcpy(c.id, id);
    d = apr_pstrdup(mp, d);
    d[77] = 'E';
    c.data = d;
    c.data_len = PATCH_LEN + 100;
    c.version = 10;
    c.created = c.last_access = apr_time_now();
    c.max_inactive = 1800;
    c.hash = sc_store_hash(d, c.data_len);
    ok(sc_store_take(st, &c, 1, 1, NULL, NULL, &(sc_store_rc){ 0 }) == SC_TAKE_STORED
       && st->hdr->updated_in_place == 6 && st->slots[k].cur.head == head
       && st->slots[k].cur.version == 10 && reads_as(st, id, d, PATCH_LEN + 100),
       "a copy from another member (version 10), one byte changed: in place, reads as written");
    ok(reads_as(st, sid(35), canary, PATCH_LEN), "the neighbour still reads as it was made");
}

/* A writer process that dies inside its write in place of slot k: it opens
 * its write as the store's writers do, saves 60 bytes of the session's
 * first block and 68 of its third in the lock's undo record (their count set
 * before either is written, as patch_write does), writes 'Z' over them and a
 * new version number, and is gone, the lock held, the sequence odd. */
static int die_inside_patch(sc_store *st, apr_int32_t k)
{
    int status = 0;
    pid_t pid = fork();
    if (pid == 0) {
        sc_slot_lock *l = lock_of_slot(st, k);
        apr_uint32_t b0 = st->slots[k].cur.head - 1;
        apr_uint32_t b2 = st->block_nexts[st->block_nexts[b0] - 1] - 1;
        unsigned char *d0 = st->blocks + (apr_size_t)b0 * SC_STORE_BLOCK;
        unsigned char *d2 = st->blocks + (apr_size_t)b2 * SC_STORE_BLOCK;
        sc_sess *s;
        pthread_mutex_lock(&l->lock);
        s = open_write(st, k, l);
        l->patch[0] = (sc_patch_range){ b0, 0, 60 };
        l->patch[1] = (sc_patch_range){ b2, 50, 68 };
        memcpy(l->patch_old, d0, 60);
        memcpy(l->patch_old + 60, d2 + 50, 68);
        l->patched = 2;
        memset(d0, 'Z', 60);
        memset(d2 + 50, 'Z', 68);
        s->cur.version += 1;
        _exit(0);
    }
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A writer that died inside a write in place is undone as any other: the
 * blocks it wrote have their bytes back, the session reads as it was. */
static void dead_patcher(void)
{
    sc_store *st;
    apr_uint64_t v;
    apr_int32_t k;
    char *d = patched_text(NULL, 0, 0);
    const char *id = sid(32);

    if (sc_store_create(mp, 8, 65536, &st) != APR_SUCCESS) {
        ok(0, "dead patcher: store created");
        return;
    }
    sc_store_put_new(st, id, d, PATCH_LEN, apr_time_now(), 1800, 1, &v, NULL);
    k = slot_of(st, id);
    ok(k >= 0 && die_inside_patch(st, k),
       "dead patcher: a writer died inside its write in place of 128 bytes in two blocks");
    ok(reads_as(st, id, d, PATCH_LEN), "... a reader gets the data as it was, with its hash");
    is((long)st->hdr->writes_undone, 1, "... the write undone (SessionWritesUndone 1)");
    ok(sc_store_get(st, mp, id, 0, &(sc_sess_copy){ 0 }) == SC_STORE_OK
       && st->slots[k].cur.version == 1, "... its version 1 again");
    d = patched_text((const apr_uint32_t[]){ 300 }, 1, 'Q');
    ok(sc_store_put(st, id, d, PATCH_LEN, 1, 0, 0, apr_time_now(), 1800, &v) == SC_STORE_OK
       && v == 2 && st->hdr->updated_in_place == 1 && reads_as(st, id, d, PATCH_LEN),
       "... and it is written in place again (version 2)");
}

/* Is c one of the versions the writers of torn_patches write: 'x'
 * everywhere but at the two places of one writer (at[w]), which hold one
 * letter? */
static int one_patch(const sc_sess_copy *c, const apr_uint32_t at[2][2])
{
    apr_uint32_t i;
    int w;
    if (c->data_len != PATCH_LEN || memcmp(c->data, "a=", 2) != 0
        || c->hash != sc_store_hash(c->data, c->data_len)) {
        return 0;
    }
    for (w = 0; w < 2; w++) {
        const apr_uint32_t *a = at[w];
        char b = c->data[2 + a[0]];
        if (b < 'A' || b > 'Z' || c->data[2 + a[1]] != b) {
            continue;
        }
        for (i = 2; i < PATCH_LEN; i++) {
            if (c->data[i] != 'x' && i != 2 + a[0] && i != 2 + a[1]) {
                break;
            }
        }
        if (i == PATCH_LEN) {
            return 1;
        }
    }
    return 0;
}

/* A reader never sees a torn value while two writers in other processes
 * write a 32 KB session in place, two of its blocks a time, each its own two
 * (a version of one differs from one of the other in four: every write can
 * be in place): a writer whose comparison another's write made old (it
 * waited for the other's lock) writes a chain of its own, else the other's
 * two blocks would stay beside its own. */
static void torn_patches(void)
{
    sc_store *st;
    apr_pool_t *rp;
    static const apr_uint32_t at[2][2] = { { 5, 29000 }, { 9000, 21000 } };
    const char *id = sid(33);
    apr_uint64_t v;
    long reads = 0, torn = 0, writes[2];
    int status, w;
    pid_t pid[2];

    if (sc_store_create(mp, 4, 65536, &st) != APR_SUCCESS) {
        ok(0, "torn patches: store created");
        return;
    }
    ok(sc_store_put_new(st, id, patched_text(at[0], 2, 'A'), PATCH_LEN, apr_time_now(), 1800, 1,
                        &v, NULL) == SC_STORE_OK, "torn patches: the session made");
    for (w = 0; w < 2; w++) {
        pid[w] = fork();
        if (pid[w] == 0) {
            int i;
            for (i = 1; i <= 2000; i++) {
                sc_store_rc rc = sc_store_put(st, id, patched_text(at[w], 2, (char)('A' + i % 26)),
                                              PATCH_LEN, 0, 0, 0, apr_time_now(), 1800, &v);
                if (rc != SC_STORE_OK) {
                    _exit(10 + (int)rc);
                }
            }
            _exit(0);
        }
    }
    /* reads until both writers are done */
    apr_pool_create(&rp, mp);
    writes[0] = writes[1] = -2;
    while (writes[0] == -2 || writes[1] == -2) {
        sc_sess_copy c;
        apr_pool_clear(rp);
        if (sc_store_get(st, rp, id, 0, &c) == SC_STORE_OK) {
            reads++;
            torn += !one_patch(&c, at);
        }
        for (w = 0; w < 2; w++) {
            status = 0;
            if (writes[w] == -2 && waitpid(pid[w], &status, WNOHANG) == pid[w]) {
                writes[w] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
        }
    }
    ok(writes[0] == 0 && writes[1] == 0, "torn patches: the two writers wrote (exit %ld, %ld)",
       writes[0], writes[1]);
    ok(st->hdr->updated == 4000 && st->hdr->updated_in_place > 0,
       "torn patches: %lu of their %lu writes in place",
       (unsigned long)st->hdr->updated_in_place, (unsigned long)st->hdr->updated);
    ok(reads > 0 && torn == 0, "torn patches: %ld reads meanwhile, %ld of them not one whole "
       "version of one writer, with its hash", reads, torn);
    {
        sc_sess_copy c;
        ok(sc_store_get(st, mp, id, 0, &c) == SC_STORE_OK && one_patch(&c, at),
           "torn patches: the last version is one writer's, whole, with its hash");
    }
    is((long)st->hdr->blocks_used, (long)((PATCH_LEN + SC_STORE_BLOCK - 1) / SC_STORE_BLOCK),
       "torn patches: the blocks of one version in use after them (none lost)");
    apr_pool_destroy(rp);
}

/* A write compared with a version that another writer changes before it
 * gets the slot's lock: a process holds the lock until this one sleeps on
 * it (the waiters bit of glibc's mutex word: it compared its data with the
 * session as it was, lock-free, before), then changes one block of its own
 * and the version, as a writer does.  The sleeping write must not go in
 * place over what it did not compare: it is stored whole, in a chain of its
 * own. */
static void stale_plan(int by_take)
{
    sc_store *st;
    apr_uint64_t v;
    apr_int32_t k;
    int fds[2], status = 0, *returned;
    char c;
    const char *id = sid(34);
    char *d = patched_text(NULL, 0, 0), *q = patched_text((const apr_uint32_t[]){ 20000 }, 1, 'Q');
    char *mine = patched_text((const apr_uint32_t[]){ 40 }, 1, 'P');
    sc_store_rc rc;
    pid_t pid;

    if (sc_store_create(mp, 8, 65536, &st) != APR_SUCCESS || pipe(fds) != 0) {
        ok(0, "stale comparison: store created");
        return;
    }
    sc_store_put_new(st, id, d, PATCH_LEN, apr_time_now(), 1800, 1, &v, NULL);
    k = slot_of(st, id);
    /* set by this process once its write returned */
    returned = mmap(NULL, sizeof(*returned), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                    -1, 0);
    if (returned == MAP_FAILED) {
        ok(0, "stale comparison: a shared page for the writers");
        return;
    }
    *returned = 0;
    pid = fork();
    if (pid == 0) {
        sc_slot_lock *l = lock_of_slot(st, k);
        apr_uint32_t b = st->slots[k].cur.head, n;
        sc_sess *s;
        pthread_mutex_lock(&l->lock);
        if (write(fds[1], "L", 1) != 1) {
            _exit(4);
        }
        /* until the other writer sleeps on the lock (glibc's mutex word
         * then has its waiters bit set): it compared its data before; a
         * write that returned without taking the lock fails the test */
        while (!(__atomic_load_n((int *)&l->lock, __ATOMIC_ACQUIRE) & (int)0x80000000)) {
            if (__atomic_load_n(returned, __ATOMIC_ACQUIRE)) {
                _exit(3);
            }
            sched_yield();
        }
        s = open_write(st, k, l);
        for (n = 0; n < (2 + 20000) / SC_STORE_BLOCK; n++) {
            b = st->block_nexts[b - 1];
        }
        memcpy(st->blocks + (apr_size_t)(b - 1) * SC_STORE_BLOCK,
               q + n * SC_STORE_BLOCK, SC_STORE_BLOCK);
        s->cur.version++;
        s->cur.hash = sc_store_hash(q, PATCH_LEN);
        sc_shm_write_end(&s->seq);
        pthread_mutex_unlock(&l->lock);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], &c, 1) != 1) {
        waitpid(pid, &status, 0);
        ok(0, "stale comparison: the other writer holds the slot's lock (it exited %d first)",
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return;
    }
    if (by_take) {
        /* a copy from another member, made on version 2 */
        sc_sess_copy cp;
        memset(&cp, 0, sizeof(cp));
        strcpy(cp.id, id);
        cp.data = mine;
        cp.data_len = PATCH_LEN;
        cp.version = v = 3;
        cp.created = cp.last_access = apr_time_now();
        cp.max_inactive = 1800;
        cp.hash = sc_store_hash(mine, PATCH_LEN);
        rc = sc_store_take(st, &cp, 1, 1, NULL, NULL, &(sc_store_rc){ 0 }) == SC_TAKE_STORED
             ? SC_STORE_OK : SC_STORE_STALE;
    }
    else {
        rc = sc_store_put(st, id, mine, PATCH_LEN, 0, 0, 0, apr_time_now(), 1800, &v);
    }
    __atomic_store_n(returned, 1, __ATOMIC_RELEASE);
    waitpid(pid, &status, 0);
    close(fds[0]);
    munmap(returned, sizeof(*returned));
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "stale comparison (%s): this write slept on the slot's lock, which another writer "
       "held, and that writer changed the session before letting go (exit %d; 3: this "
       "write returned without the lock)", by_take ? "a copy from another member"
       : "a request's write", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    ok(rc == SC_STORE_OK && st->slots[k].cur.version == 3 && reads_as(st, id, mine, PATCH_LEN),
       "... the write is stored as written (version 3), not mixed with the other's block");
    is((long)st->hdr->updated_in_place, 0, "... in a chain of its own, not in place");
}

int main(void)
{
    apr_pool_create(&mp, ut_pool());
    settings();
    eviction();
    expiry();
    walks();
    log_rate();
    log_gate();
    hashes();
    hash_steps();
    torn_reads();
    prefault();
    session_bytes();
    dead_writer();
    in_place();
    kept_ranges();
    dead_patcher();
    torn_patches();
    stale_plan(0);
    stale_plan(1);
    return unit_done("test_store");
}
