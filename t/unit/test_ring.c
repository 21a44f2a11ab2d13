/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * test_ring.c -- the children's hand-off ring (sc_ring.c): order and bytes
 * kept across wrap-arounds, room refused and given back, writers in several
 * processes and threads at once, a writer that dies holding the lock, the
 * engine's sleep and wake-up, its choice to gather, and a record that is
 * not well formed.
 *
 * sc_ring.c is compiled into this file (not linked), so that the test can
 * take the ring's lock itself as a writer dying mid-copy would hold it.
 */
#include "unit.h"
#include "../../mod_session_cluster/sc_ring.c"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

/* a message: [producer:4][seq:4][length:4][bytes...][sum:4] */
static apr_size_t make_msg(unsigned char *buf, apr_uint32_t who, apr_uint32_t seq,
                           apr_size_t len)
{
    apr_uint32_t sum = who * 131u + seq, i;
    memcpy(buf, &who, 4);
    memcpy(buf + 4, &seq, 4);
    memcpy(buf + 8, &len, 4);
    for (i = 0; i < len; i++) {
        buf[12 + i] = (unsigned char)(seq * 7u + i + who);
        sum = sum * 31u + buf[12 + i];
    }
    memcpy(buf + 12 + len, &sum, 4);
    return 16 + len;
}

/* 1 when a message is whole (its length and its sum agree) */
static int check_msg(const unsigned char *m, apr_size_t n, apr_uint32_t *who,
                     apr_uint32_t *seq)
{
    apr_uint32_t len, sum, want, i;
    if (n < 16) {
        return 0;
    }
    memcpy(who, m, 4);
    memcpy(seq, m + 4, 4);
    memcpy(&len, m + 8, 4);
    if (n != 16u + len) {
        return 0;
    }
    want = *who * 131u + *seq;
    for (i = 0; i < len; i++) {
        want = want * 31u + m[12 + i];
    }
    memcpy(&sum, m + 12 + len, 4);
    return sum == want;
}

#define WHO_MAX 16
typedef struct {
    apr_uint32_t next[WHO_MAX];       /* the next seq expected of each writer */
    apr_size_t got, torn, out_of_order, bytes;
} reader;

/* counts the messages taken, whatever they hold */
static void count_msg(void *ctx, const unsigned char *m, apr_size_t n)
{
    (void)m;
    (void)n;
    (*(apr_uint64_t *)ctx)++;
}

static void on_msg(void *ctx, const unsigned char *m, apr_size_t n)
{
    reader *rd = ctx;
    apr_uint32_t who, seq;
    rd->got++;
    rd->bytes += n;
    if (!check_msg(m, n, &who, &seq) || who >= WHO_MAX) {
        rd->torn++;
        return;
    }
    if (seq != rd->next[who]) {
        rd->out_of_order++;
    }
    rd->next[who] = seq + 1;
}

static int put_msg(sc_ring *r, apr_uint32_t who, apr_uint32_t seq, apr_size_t len)
{
    unsigned char *buf = malloc(len + 16);
    apr_size_t n = make_msg(buf, who, seq, len);
    /* two parts, as a child hands over a frame's head and its message */
    apr_size_t cut = n > 50 ? 50 : n / 2;
    int rv = sc_ring_put(r, buf, cut, buf + cut, n - cut);
    free(buf);
    return rv;
}

static void one_writer(void)
{
    sc_ring *r = sc_ring_create();
    reader rd;
    sc_ring_counts c;
    apr_uint32_t seq = 0, k;
    int bad = 0, b, refused = 0;
    apr_size_t taken = 0;

    ok(r != NULL, "a ring is made");
    memset(&rd, 0, sizeof(rd));
    /* about 30 MB through a 4 MB ring: many wrap-arounds, sizes that leave
     * every remainder at the end (padding records) */
    for (k = 0; k < 4000; k++) {
        apr_size_t len = (k * 2654435761u) % 15000u + (k % 7 == 0 ? 0 : 1);
        if (put_msg(r, 1, seq, len) == 0) {
            seq++;
        }
        else {
            refused++;
        }
        if (k % 37 == 0) {
            taken += sc_ring_take(r, on_msg, &rd, &b);
            bad |= b;
        }
    }
    taken += sc_ring_take(r, on_msg, &rd, &b);
    bad |= b;
    is(refused, 0, "one writer, taken often enough: no append refused");
    is((long long)taken, seq, "every message appended is taken once (%u)", seq);
    is((long long)rd.got, seq, "the reader saw each of them");
    is((long long)rd.torn, 0, "none torn across the ring's end");
    is((long long)rd.out_of_order, 0, "in the order they were appended");
    is(bad, 0, "no record reported not well formed");
    ok(rd.bytes > 3u * SC_RING_BYTES, "the ring went round several times (%zu bytes)",
       rd.bytes);
    is(sc_ring_pending(r), 0, "nothing pending once taken");

    /* full: no room is refused, not overwritten */
    for (k = 0; k < 1000 && put_msg(r, 2, k, 60000) == 0; k++) {
    }
    ok(k >= SC_RING_BYTES / 60032 - 1 && k <= SC_RING_BYTES / 60032,
       "a full ring refuses the append that does not fit (%u of 60 KB taken)", k);
    sc_ring_counts_get(r, &c);
    is((long long)c.full, 1, "the refusal is counted");
    memset(&rd, 0, sizeof(rd));
    is((long long)sc_ring_take(r, on_msg, &rd, &b), k, "what it held is all there");
    is((long long)rd.torn, 0, "intact");
    is(b, 0, "well formed");
    is(put_msg(r, 2, k, 60000), 0, "room is given back once taken");
    is(put_msg(r, 3, 0, SC_RING_MSG_MAX), -1, "a message larger than the ring takes is refused");
    sc_ring_counts_get(r, &c);
    is((long long)c.large, 1, "and counted as too large");
    is(put_msg(r, 3, 0, 0), 0, "an empty body is a message too");
}

/* ---- several processes and threads at once ---- */

typedef struct {
    sc_ring *r;
    apr_uint32_t who, count;
} writer_arg;

static void *writer_thread(void *a)
{
    writer_arg *w = a;
    apr_uint32_t seq = 0;
    apr_time_t until = apr_time_now() + apr_time_from_sec(60);
    /* bounded: a reader that stopped (a failed run) does not leave writers
     * spinning */
    while (seq < w->count && apr_time_now() < until) {
        if (put_msg(w->r, w->who, seq, (seq * 37u + w->who * 101u) % 3000u) == 0) {
            seq++;
        }
        else {
            sched_yield();            /* full: the reader makes room */
        }
    }
    return NULL;
}

static void many_writers(void)
{
    sc_ring *r = sc_ring_create();
    pid_t kids[3];
    int i, k, status, all_ok = 1, bad = 0;
    reader rd;
    const apr_uint32_t per = 20000;
    apr_size_t want = 3u * 2u * per;

    memset(&rd, 0, sizeof(rd));
    for (i = 0; i < 3; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            pthread_t t[2];
            writer_arg a[2];
            for (k = 0; k < 2; k++) {
                a[k].r = r;
                a[k].who = (apr_uint32_t)(i * 2 + k);
                a[k].count = per;
                pthread_create(&t[k], NULL, writer_thread, &a[k]);
            }
            for (k = 0; k < 2; k++) {
                pthread_join(t[k], NULL);
            }
            _exit(0);
        }
    }
    {
        apr_time_t until = apr_time_now() + apr_time_from_sec(60);
        while (rd.got < want && apr_time_now() < until) {
            int b = 0;
            if (!sc_ring_take(r, on_msg, &rd, &b)) {
                usleep(100);
            }
            bad |= b;
        }
    }
    for (i = 0; i < 3; i++) {
        waitpid(kids[i], &status, 0);
        all_ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    ok(all_ok, "3 writer processes of 2 threads each ended well");
    is((long long)rd.got, (long long)want, "every message of every writer taken");
    is((long long)rd.torn, 0, "none torn");
    is((long long)rd.out_of_order, 0, "each writer's messages in its order");
    for (i = 0, k = 1; i < 6; i++) {
        k &= rd.next[i] == per;
    }
    ok(k, "each writer's last message is its last (%u)", per);
    is(bad, 0, "no record reported not well formed");
}

/* ---- a writer that dies holding the lock ---- */

static void dead_writer(void)
{
    sc_ring *r = sc_ring_create();
    reader rd;
    sc_ring_counts c;
    pid_t kid;
    int status, bad = 1;

    memset(&rd, 0, sizeof(rd));
    is(put_msg(r, 0, 0, 100), 0, "a message before the writer dies");
    kid = fork();
    if (kid == 0) {
        /* as a child killed in the middle of its copy: the lock held, half
         * a record written past the tail, the tail not moved */
        apr_uint32_t w[2] = { 5000, REC_MSG };
        pthread_mutex_lock(&r->lock);
        memcpy(r->data + r->tail % r->size, w, sizeof(w));
        memset(r->data + r->tail % r->size + 8, 0xee, 1000);
        _exit(0);
    }
    waitpid(kid, &status, 0);
    is(put_msg(r, 0, 1, 200), 0, "the next append takes the dead writer's lock");
    sc_ring_counts_get(r, &c);
    is((long long)c.owner_died, 1, "and counts the writer that died");
    is(put_msg(r, 0, 2, 300), 0, "the lock is whole again for the appends after it");
    is((long long)sc_ring_take(r, on_msg, &rd, &bad), 3,
       "the reader takes the three whole messages, not the half one");
    is((long long)rd.torn, 0, "both intact");
    is((long long)rd.out_of_order, 0, "in order");
    is(bad, 0, "nothing not well formed was read");
}

/* ---- the engine's sleep ---- */

static int readable(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, 0) == 1;
}

static void sleep_and_wake(void)
{
    sc_ring *r = sc_ring_create();
    reader rd;
    sc_ring_counts c;
    apr_uint64_t n;
    int bad;

    memset(&rd, 0, sizeof(rd));
    is(sc_ring_sleep(r), 0, "an empty ring: the engine may sleep");
    ok(!readable(sc_ring_wake_fd(r)), "not woken yet");
    is(put_msg(r, 0, 0, 10), 0, "an append while it sleeps");
    ok(readable(sc_ring_wake_fd(r)), "wakes it (its descriptor is readable)");
    is(put_msg(r, 0, 1, 10), 0, "a second append before it woke");
    sc_ring_counts_get(r, &c);
    is((long long)c.wakes, 1, "wakes it once only");
    ok(read(sc_ring_wake_fd(r), &n, sizeof(n)) == sizeof(n) && n == 1, "one wake-up to read");
    sc_ring_awake(r);
    is(put_msg(r, 0, 2, 10), 0, "an append while it is awake");
    ok(!readable(sc_ring_wake_fd(r)), "makes no system call to wake it");
    is(sc_ring_sleep(r), 1, "the engine does not sleep while the ring holds messages");
    sc_ring_awake(r);
    is((long long)sc_ring_take(r, on_msg, &rd, &bad), 3, "all three taken");
    is((long long)rd.out_of_order, 0, "in order");

    /* gathering: woken by the append that makes SC_RING_BATCH wait */
    {
        apr_uint32_t k;
        int early = 0;
        is(sc_ring_gather(r), 0, "an empty ring: the engine may gather");
        for (k = 0; k + 1 < SC_RING_BATCH; k++) {
            put_msg(r, 0, 3 + k, 10);
            early |= readable(sc_ring_wake_fd(r));
        }
        ok(!early, "%u appends while it gathers do not wake it", SC_RING_BATCH - 1);
        is(put_msg(r, 0, 3 + k, 10), 0, "the next append");
        ok(readable(sc_ring_wake_fd(r)), "makes %u wait: it wakes the engine", SC_RING_BATCH);
        ok(read(sc_ring_wake_fd(r), &n, sizeof(n)) == sizeof(n) && n == 1, "once");
        sc_ring_awake(r);
        is(sc_ring_gather(r), 1, "with %u waiting the engine does not gather", SC_RING_BATCH);
        sc_ring_awake(r);
        is((long long)sc_ring_take(r, on_msg, &rd, &bad), SC_RING_BATCH, "all taken");
        is(sc_ring_gather(r), 0, "taken: it may gather again");
        sc_ring_awake(r);
        is((long long)rd.out_of_order, 0, "in order");
    }

    /* a message its writer waits for, appended while the engine was awake
     * (no wake-up then): the engine does not start to gather over it */
    {
        unsigned char m[16];
        memset(m, 'u', sizeof(m));
        sc_ring_awake(r);
        is(sc_ring_put_waited(r, m, sizeof(m), NULL, 0), 0,
           "an append its writer waits for while the engine is awake");
        ok(!readable(sc_ring_wake_fd(r)), "no wake-up (it is awake)");
        is(sc_ring_gather(r), 1, "the engine does not gather: a message waited for is there");
        sc_ring_awake(r);
        n = 0;
        sc_ring_take(r, count_msg, &n, &bad);
        is((long long)n, 1, "taken");
        is(sc_ring_gather(r), 0, "taken: it may gather again");
        sc_ring_awake(r);
        is(sc_ring_put(r, m, sizeof(m), NULL, 0), 0, "an append not waited for while it is awake");
        is(sc_ring_gather(r), 0, "it gathers over that one");
        sc_ring_awake(r);
        n = 0;
        sc_ring_take(r, count_msg, &n, &bad);
    }

    /* a message its writer waits for wakes a gathering engine at once */
    {
        unsigned char m[16];
        memset(m, 'w', sizeof(m));
        is(sc_ring_gather(r), 0, "an empty ring: the engine gathers");
        is(sc_ring_put(r, m, sizeof(m), NULL, 0), 0, "an append not waited for");
        ok(!readable(sc_ring_wake_fd(r)), "does not wake it");
        is(sc_ring_put_waited(r, m, sizeof(m), NULL, 0), 0, "an append its writer waits for");
        ok(readable(sc_ring_wake_fd(r)), "wakes it at once");
        ok(read(sc_ring_wake_fd(r), &n, sizeof(n)) == sizeof(n) && n == 1, "once");
        sc_ring_awake(r);
        is(sc_ring_sleep(r), 1, "the engine does not sleep: the ring holds them");
        sc_ring_awake(r);
        n = 0;
        sc_ring_take(r, count_msg, &n, &bad);
        is((long long)n, 2, "both taken");
    }
}

/* the engine's choice between a gathering wait and a sleep (sc_gather_next) */
static void gathering(void)
{
    sc_gather g;
    apr_time_t t = apr_time_from_sec(100), t2;
    int k, all;

    memset(&g, 0, sizeof(g));
    is(sc_gather_next(&g, t, 0), 0, "nothing sent yet: the engine sleeps");
    is(sc_gather_next(&g, t, 1), 0, "the first change after a quiet spell: it sleeps "
       "(the next one goes out at once)");
    /* a client's writes one after the other: each waits for its answer,
     * and the next comes 50 us later; none may wait for a gathering */
    for (k = 0, all = 0, t2 = t; k < 200; k++) {
        t2 += 50;
        all |= sc_gather_next(&g, t2, 1);
    }
    ok(!all, "one change a turn, turns 50 us apart: never (each goes out at once)");
    is(sc_gather_next(&g, t2 + 1, 2), 1, "two changes in a turn: under load, it gathers");
    t2 += 1;
    is(sc_gather_next(&g, t2 + SC_ASYNC_GATHER_HOLD_US / 2, 0),
       1, "a turn with no change of its own (a socket woke it) within the hold: it gathers still");
    is(sc_gather_next(&g, t2 + SC_ASYNC_GATHER_HOLD_US - 10, 1),
       1, "one change within the hold: it gathers");
    is(sc_gather_next(&g, t2 + SC_ASYNC_GATHER_HOLD_US, 0), 0,
       "... but that did not extend the hold: at its end it sleeps");
    t2 += SC_ASYNC_GATHER_HOLD_US;
    is(sc_gather_next(&g, t2 + SC_ASYNC_GATHER_HOLD_US / 2, 2), 1, "two changes in a turn: it gathers");
    is(sc_gather_next(&g, t2 + SC_ASYNC_GATHER_HOLD_US + SC_ASYNC_GATHER_HOLD_US / 2 - 1, 0), 1,
       "... and the hold runs from that turn");
    is(sc_gather_next(&g, t2 + 10 * SC_ASYNC_GATHER_HOLD_US, 1), 0,
       "a change after the hold: it sleeps (that change went out at once)");

    memset(&g, 0, sizeof(g));
    is(sc_gather_next(&g, t, 3), 1, "a turn that sent several: it gathers");

    /* turns as the engine makes them while it gathers: nothing wakes it,
     * each wait lasts SC_ASYNC_GATHER_US and its turn takes a little more.
     * Two changes in each wait keep it gathering; a wait that ends with one
     * (a client's writes one after the other) ends it; and one change every
     * wait never gets there from a quiet start. */
    memset(&g, 0, sizeof(g));
    t2 = t;
    sc_gather_next(&g, t2, 2);
    for (k = 0, all = 1; k < 100; k++) {
        t2 += SC_ASYNC_GATHER_US + 20;
        all &= sc_gather_next(&g, t2, 2);
    }
    ok(all, "two changes in each gathering wait (a turn every %d us) after a burst: it "
       "gathers at every turn", SC_ASYNC_GATHER_US + 20);
    t2 += SC_ASYNC_GATHER_US + 20;
    is(sc_gather_next(&g, t2, 1), 0, "a wait that gathered one change: it sleeps");
    memset(&g, 0, sizeof(g));
    for (k = 0, all = 0; k < 100; k++) {
        t2 += SC_ASYNC_GATHER_HOLD_US + 1;
        all |= sc_gather_next(&g, t2, 1);
    }
    ok(!all, "one change every %d us: never (each goes out at once)", SC_ASYNC_GATHER_HOLD_US + 1);
}

/* ---- memory that something else wrote ---- */

static void not_well_formed(void)
{
    sc_ring *r = sc_ring_create();
    reader rd;
    sc_ring_counts c;
    apr_uint32_t w[2] = { 26, 0x12345678u };   /* its length kept */
    int bad = 0;

    memset(&rd, 0, sizeof(rd));
    is(put_msg(r, 0, 0, 10), 0, "a message");
    is(put_msg(r, 0, 1, 10), 0, "a second one");
    /* the second record's kind overwritten */
    memcpy(r->data + rec_size(26), w, sizeof(w));
    is((long long)sc_ring_take(r, on_msg, &rd, &bad), 1, "the message before it is taken");
    is(bad, 1, "the record that is not well formed is reported");
    sc_ring_counts_get(r, &c);
    is((long long)c.bad, 1, "and counted");
    is(sc_ring_pending(r), 0, "the rest is dropped");
    is(put_msg(r, 0, 2, 10), 0, "the ring is usable again");
    is((long long)sc_ring_take(r, on_msg, &rd, &bad), 1, "and read");
    is(bad, 0, "well formed");

    /* the status page's reset */
    sc_ring_counts_get(r, &c);
    is((long long)c.puts, 3, "3 appends counted");
    sc_ring_counts_reset(r);
    sc_ring_counts_get(r, &c);
    ok(c.puts == 0 && c.bad == 0 && c.taken == 0, "a reset zeroes the counts");
    is(put_msg(r, 0, 3, 10), 0, "one more append");
    sc_ring_counts_get(r, &c);
    is((long long)c.puts, 1, "counted from the reset on");
}

int main(void)
{
    apr_initialize();
    one_writer();
    many_writers();
    dead_writer();
    sleep_and_wake();
    gathering();
    not_well_formed();
    return unit_done("test_ring");
}
