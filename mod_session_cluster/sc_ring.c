/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_ring.c -- the children's asynchronous hand-off to the engine through
 * shared memory (see sc_ring.h).
 *
 * The ring is a run of bytes read as records of [length:4][kind:4][message,
 * padded to 8 bytes].  'tail' (the end of the last whole record) moves only
 * under the lock, after the record is written; 'head' (the start of the
 * oldest record not yet taken) only by the engine, after it has read the
 * record.  Both count bytes from the ring's start, never wrapped; a record
 * never wraps: one that does not fit before the end is put at the start,
 * behind a padding record that fills the rest.
 */
#include "sc_ring.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#define REC_MSG 0x52434d31u          /* "RCM1": a message */
#define REC_PAD 0x52435031u          /* "RCP1": padding to the ring's end */
#define REC_HDR 8u
#define RING_MAGIC 0x53435247u       /* "SCRG" */

/* what the engine does (sleeping): looks at the ring by itself; waits, to be
 * woken by the next append; gathers, to be woken once SC_RING_BATCH
 * messages wait (else its wait's end) */
#define RING_AWAKE     0u
#define RING_ASLEEP    1u
#define RING_GATHERING 2u

struct sc_ring {
    apr_uint32_t magic;
    apr_uint32_t size;                /* bytes in data[], a multiple of 8 */
    int wake_fd;                      /* eventfd: the same number in every process */
    pthread_mutex_t lock;             /* appends */
    /* the writers' side, its own cache line */
    apr_uint64_t tail __attribute__((aligned(64)));
    apr_uint64_t puts_base;           /* msgs at the status page's last reset */
    apr_uint64_t owner_died;
    apr_uint64_t msgs;                /* messages ever appended (never reset) */
    /* the engine's side */
    apr_uint64_t head __attribute__((aligned(64)));
    apr_uint32_t sleeping;            /* RING_AWAKE, RING_ASLEEP or RING_GATHERING */
    pid_t consumer;
    apr_uint64_t taken, bad;
    apr_uint64_t msgs_taken;          /* messages ever taken (never reset) */
    apr_uint32_t urgent;              /* a waited-for message is in the ring since the
                                       * engine's last take (set by its writer; in
                                       * what was padding: a ring made by an older
                                       * build has 0 here) */
    /* counted by writers outside the lock */
    apr_uint64_t full __attribute__((aligned(64)));
    apr_uint64_t large, wakes;
    unsigned char data[] __attribute__((aligned(64)));
};

static apr_size_t rec_size(apr_size_t len)
{
    return REC_HDR + ((len + 7u) & ~(apr_size_t)7u);
}

sc_ring *sc_ring_create(void)
{
    apr_size_t total = sizeof(sc_ring) + SC_RING_BYTES;
    pthread_mutexattr_t a;
    sc_ring *r;
    int rv, fd;

    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    r = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) {
        rv = errno;
        close(fd);
        errno = rv;
        return NULL;
    }
    /* the pages are zero: only what is not zero is set */
    r->magic = RING_MAGIC;
    r->size = SC_RING_BYTES;
    r->wake_fd = fd;
    rv = pthread_mutexattr_init(&a);
    if (rv == 0) {
        rv = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        if (rv == 0) {
            rv = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        }
        if (rv == 0) {
            rv = pthread_mutex_init(&r->lock, &a);
        }
        pthread_mutexattr_destroy(&a);
    }
    if (rv != 0) {
        munmap(r, total);
        close(fd);
        errno = rv;
        return NULL;
    }
    return r;
}

int sc_ring_read_by(const sc_ring *r, pid_t engine)
{
    return r && engine > 0 && __atomic_load_n(&r->consumer, __ATOMIC_ACQUIRE) == engine;
}

static int ring_put(sc_ring *r, const void *head, apr_size_t hlen, const void *body,
                    apr_size_t blen, int waited)
{
    apr_size_t len = hlen + blen, need, off, pad = 0;
    apr_uint64_t tail, h, msgs;
    apr_uint32_t state;
    unsigned char *at;
    apr_uint32_t w[2];
    int rv;

    if (len > SC_RING_MSG_MAX) {
        __atomic_add_fetch(&r->large, 1, __ATOMIC_RELAXED);
        return -1;
    }
    need = rec_size(len);
    rv = pthread_mutex_lock(&r->lock);
    if (rv == EOWNERDEAD) {
        /* its writer died before the tail moved: its record was never in
         * the ring, and nothing else is changed under this lock */
        pthread_mutex_consistent(&r->lock);
        __atomic_add_fetch(&r->owner_died, 1, __ATOMIC_RELAXED);
    }
    else if (rv != 0) {
        return -1;                    /* ENOTRECOVERABLE: the socket will do */
    }
    tail = r->tail;
    h = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    off = (apr_size_t)(tail % r->size);
    if (off + need > r->size) {
        pad = r->size - off;          /* at least 8: both are multiples of 8 */
    }
    if (tail + pad + need - h > r->size) {
        pthread_mutex_unlock(&r->lock);
        __atomic_add_fetch(&r->full, 1, __ATOMIC_RELAXED);
        return -1;
    }
    if (pad) {
        w[0] = (apr_uint32_t)(pad - REC_HDR);
        w[1] = REC_PAD;
        memcpy(r->data + off, w, sizeof(w));
        off = 0;
    }
    at = r->data + off;
    w[0] = (apr_uint32_t)len;
    w[1] = REC_MSG;
    memcpy(at, w, sizeof(w));
    if (hlen) {
        memcpy(at + REC_HDR, head, hlen);
    }
    if (blen) {
        memcpy(at + REC_HDR + hlen, body, blen);
    }
    msgs = __atomic_add_fetch(&r->msgs, 1, __ATOMIC_SEQ_CST);
    /* the record is whole: now the engine may read it (and, in one order
     * with the engine's own store of 'sleeping', see whether it sleeps) */
    __atomic_store_n(&r->tail, tail + pad + need, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&r->lock);
    if (waited) {
        /* before 'sleeping' is read: an engine that starts to gather after
         * this load sees the flag (sc_ring_gather), one that started before
         * it is woken below */
        __atomic_store_n(&r->urgent, 1, __ATOMIC_SEQ_CST);
    }
    state = __atomic_load_n(&r->sleeping, __ATOMIC_SEQ_CST);
    if ((state == RING_ASLEEP
         || (state == RING_GATHERING
             && (waited
                 || msgs - __atomic_load_n(&r->msgs_taken, __ATOMIC_SEQ_CST) >= SC_RING_BATCH)))
        && __atomic_compare_exchange_n(&r->sleeping, &state, RING_AWAKE, 0,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        apr_uint64_t one = 1;
        if (write(r->wake_fd, &one, sizeof(one)) == (ssize_t)sizeof(one)) {
            __atomic_add_fetch(&r->wakes, 1, __ATOMIC_RELAXED);
        }
        /* a failed write (the counter full: cannot be, the engine reads
         * it) leaves the engine to its wait's timeout */
    }
    return 0;
}

int sc_ring_put(sc_ring *r, const void *head, apr_size_t hlen, const void *body,
                apr_size_t blen)
{
    return ring_put(r, head, hlen, body, blen, 0);
}

int sc_ring_put_waited(sc_ring *r, const void *head, apr_size_t hlen, const void *body,
                       apr_size_t blen)
{
    return ring_put(r, head, hlen, body, blen, 1);
}

void sc_ring_consume(sc_ring *r, pid_t pid)
{
    __atomic_store_n(&r->consumer, pid, __ATOMIC_RELEASE);
}

int sc_ring_wake_fd(const sc_ring *r)
{
    return r->wake_fd;
}

int sc_ring_sleep(sc_ring *r)
{
    __atomic_store_n(&r->sleeping, RING_ASLEEP, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->tail, __ATOMIC_SEQ_CST) != r->head) {
        __atomic_store_n(&r->sleeping, RING_AWAKE, __ATOMIC_RELAXED);
        return 1;
    }
    return 0;
}

int sc_ring_gather(sc_ring *r)
{
    __atomic_store_n(&r->sleeping, RING_GATHERING, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->urgent, __ATOMIC_SEQ_CST)
        || __atomic_load_n(&r->msgs, __ATOMIC_SEQ_CST) - r->msgs_taken >= SC_RING_BATCH) {
        __atomic_store_n(&r->sleeping, RING_AWAKE, __ATOMIC_RELAXED);
        return 1;
    }
    return 0;
}

int sc_gather_next(sc_gather *g, apr_time_t now, unsigned sent)
{
    /* a turn that sends one change neither starts nor extends it: after a
     * gathering wait (a full SC_ASYNC_GATHER_US when nothing woke it) that
     * is one change a wait, and a batch of one saves nothing.  Nor does how
     * soon it follows the turn before: a client's writes one after the other
     * (each waits for its answer, and the next may follow within 0.1 ms)
     * would each wait the whole wait. */
    if (sent > 1) {
        g->until = now + SC_ASYNC_GATHER_HOLD_US;
    }
    return now < g->until;
}

void sc_ring_awake(sc_ring *r)
{
    __atomic_store_n(&r->sleeping, RING_AWAKE, __ATOMIC_RELAXED);
}

int sc_ring_pending(const sc_ring *r)
{
    return __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) != r->head;
}

apr_size_t sc_ring_take(sc_ring *r, sc_ring_fn fn, void *ctx, int *bad)
{
    apr_uint64_t head = r->head, tail;
    apr_size_t n = 0;

    /* cleared before the tail is read: a flag set before this was set after
     * its message's tail, which this take reads */
    if (__atomic_load_n(&r->urgent, __ATOMIC_RELAXED)) {
        __atomic_store_n(&r->urgent, 0, __ATOMIC_SEQ_CST);
    }
    tail = __atomic_load_n(&r->tail, __ATOMIC_SEQ_CST);

    if (bad) {
        *bad = 0;
    }
    if (tail - head > r->size || (head & 7u)) {
        goto broken;
    }
    while (head < tail) {
        apr_size_t off = (apr_size_t)(head % r->size), rec;
        apr_uint32_t w[2];
        memcpy(w, r->data + off, sizeof(w));
        if (w[0] > r->size) {
            goto broken;
        }
        rec = rec_size(w[0]);
        if (off + rec > r->size || rec > tail - head
            || (w[1] == REC_PAD && off + rec != r->size)
            || (w[1] != REC_PAD && (w[1] != REC_MSG || w[0] > SC_RING_MSG_MAX))) {
            goto broken;
        }
        if (w[1] == REC_MSG) {
            fn(ctx, r->data + off + REC_HDR, w[0]);
            n++;
            __atomic_store_n(&r->msgs_taken, r->msgs_taken + 1, __ATOMIC_RELEASE);
        }
        head += rec;
        /* its room is free now */
        __atomic_store_n(&r->head, head, __ATOMIC_RELEASE);
    }
    r->taken += n;
    return n;

broken:
    /* only the engine moves head, and only writers under the lock write
     * records: a record that is not well formed is memory that something
     * else wrote.  What the ring held from here is dropped. */
    r->bad++;
    r->taken += n;
    /* what was dropped counts as taken: the writers' count of what waits */
    __atomic_store_n(&r->msgs_taken, __atomic_load_n(&r->msgs, __ATOMIC_ACQUIRE),
                     __ATOMIC_RELEASE);
    __atomic_store_n(&r->head, tail, __ATOMIC_RELEASE);
    if (bad) {
        *bad = 1;
    }
    return n;
}

void sc_ring_counts_get(const sc_ring *r, sc_ring_counts *c)
{
    c->puts = __atomic_load_n(&r->msgs, __ATOMIC_RELAXED)
              - __atomic_load_n(&r->puts_base, __ATOMIC_RELAXED);
    c->full = __atomic_load_n(&r->full, __ATOMIC_RELAXED);
    c->large = __atomic_load_n(&r->large, __ATOMIC_RELAXED);
    c->wakes = __atomic_load_n(&r->wakes, __ATOMIC_RELAXED);
    c->taken = __atomic_load_n(&r->taken, __ATOMIC_RELAXED);
    c->bad = __atomic_load_n(&r->bad, __ATOMIC_RELAXED);
    c->owner_died = __atomic_load_n(&r->owner_died, __ATOMIC_RELAXED);
}

void sc_ring_counts_reset(sc_ring *r)
{
    __atomic_store_n(&r->puts_base, __atomic_load_n(&r->msgs, __ATOMIC_RELAXED),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&r->full, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->large, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->wakes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->taken, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->bad, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->owner_died, 0, __ATOMIC_RELAXED);
}
