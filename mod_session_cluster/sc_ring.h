/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_ring.h -- the children's hand-off to the engine through shared memory
 * (sc_ring.c).
 *
 * A request whose change goes to every member appends the message to a ring
 * in memory shared by httpd's
 * parent, its children and the engine, all forked from the parent after the
 * ring was made; the engine takes every message there at each turn of its
 * loop.  No system call on either side while the engine is busy; when it
 * sleeps in its wait, the first append after it went to sleep wakes it (an
 * eventfd in its wait set).  A synchronous change (channelSendOptions with
 * ACK) is appended the same way, its frame's sequence number holding the
 * token its child thread's connection to the engine was bound to (a HELLO on
 * that connection, answered before the first such append); the engine
 * answers it on that connection, and the thread waits there.
 *
 * The order of one session's changes: appends take the ring's lock, so the
 * ring holds messages in the order their appends finished, and a request's
 * append finishes before its answer goes out (a session's next request comes
 * after).  Whatever a child hands over on its socket instead (a message for
 * one member, an append that found the ring full, a thread's first
 * synchronous change with the HELLO that binds its connection) is
 * read by the engine only after it has taken everything in the ring
 * (sc_engine.c), so it comes after every change handed over before it.
 *
 * A writer that dies holding the lock (a child killed mid-copy) leaves the
 * lock to the next taker (a robust mutex); its message was not yet in the
 * ring (the tail moves only once a message is whole), so nothing half
 * written is ever read.  The engine checks every record it reads against the
 * ring's bounds all the same, and drops the rest of the ring (logged) if one
 * is not well formed.
 */
#ifndef SC_RING_H
#define SC_RING_H

#include "sc_private.h"

/* bytes of messages the ring holds; a larger message goes by the socket */
#define SC_RING_BYTES (4u * 1024 * 1024)
#define SC_RING_MSG_MAX (512u * 1024)
/* while the engine gathers (sc_ring_gather), the append that makes this many
 * messages wait wakes it before its wait ends */
#define SC_RING_BATCH 16u

/* the engine's gathering of asynchronous changes (sc_gather_next, sc_engine.c) */
#ifndef SC_ASYNC_GATHER_HOLD_US
#define SC_ASYNC_GATHER_HOLD_US 2000  /* under load (a turn that sent several)
                                       * and this long after the last such turn */
#endif
#ifndef SC_ASYNC_GATHER_US
#define SC_ASYNC_GATHER_US 2000       /* a gathering wait lasts at most this long:
                                       * at a member's share of a front's load (a
                                       * few thousand changes a second) 1 ms let
                                       * the two engines wake each other about
                                       * 1,600 times a second each; 2 ms halves
                                       * that and keeps the hold from lapsing
                                       * (bench/README, fourteenth session) */
#endif

typedef struct sc_ring sc_ring;

/* What the ring counted since it was made or reset. */
typedef struct {
    apr_uint64_t puts;          /* messages appended */
    apr_uint64_t full;          /* appends refused: the ring had no room */
    apr_uint64_t large;         /* appends refused: larger than SC_RING_MSG_MAX */
    apr_uint64_t wakes;         /* appends that woke a sleeping engine */
    apr_uint64_t taken;         /* messages the engine took */
    apr_uint64_t bad;           /* times the engine found a record not well formed */
    apr_uint64_t owner_died;    /* appends that found the lock left by a writer that died */
} sc_ring_counts;

/* Makes a ring in new shared anonymous memory, with its eventfd (close on
 * exec); for the life of the process that makes it and of every process
 * forked from it afterwards (never unmapped).  NULL with errno set. */
sc_ring *sc_ring_create(void);

/* ---- a child ---- */

/* 1 when the engine pid reads this ring (it said so: sc_ring_consume). */
int sc_ring_read_by(const sc_ring *r, pid_t engine);
/* Appends one message made of two parts (a head and a body, either may be
 * empty).  0: in the ring (and the engine woken if it slept); -1: not
 * appended (no room, too large, the lock unusable): the caller hands it over
 * another way.  Never blocks beyond other appends' copies. */
int sc_ring_put(sc_ring *r, const void *head, apr_size_t hlen, const void *body,
                apr_size_t blen);
/* The same for a message its writer waits for (a synchronous change): it
 * wakes a gathering engine too, whatever waits in the ring, so that the
 * writer does not wait out the engine's gathering. */
int sc_ring_put_waited(sc_ring *r, const void *head, apr_size_t hlen, const void *body,
                       apr_size_t blen);

/* ---- the engine ---- */

/* This process (pid) reads the ring from now on; 0: nobody does. */
void sc_ring_consume(sc_ring *r, pid_t pid);
/* The descriptor that becomes readable when an append wakes the engine. */
int sc_ring_wake_fd(const sc_ring *r);
/* Before the engine waits: 1 when the ring holds messages (do not sleep),
 * else 0 and any append from now on wakes it.  sc_ring_awake after the
 * wait, whichever it was (reads the wake descriptor's count). */
int sc_ring_sleep(sc_ring *r);
/* The same for a gathering wait (a bounded one): 1 when SC_RING_BATCH
 * messages wait already, or one its writer waits for (do not wait), else 0
 * and the append that makes them SC_RING_BATCH, or one waited for, wakes
 * it. */
int sc_ring_gather(sc_ring *r);
void sc_ring_awake(sc_ring *r);

/* Whether the engine's next wait gathers (sc_ring_gather) or sleeps until the
 * next append (sc_ring_sleep), from its own record of the turns before.
 * Under load it gathers: from a turn that sent several asynchronous
 * changes (more came while it was awake or asleep than one at a time), for
 * SC_ASYNC_GATHER_HOLD_US, turns woken by a socket with no change of its
 * own included: at a member's steady rate of a few thousand changes a
 * second (the rate through a front balancer, where every member serves its
 * share) the engine would otherwise sleep after nearly every turn and be
 * woken by nearly every append.  A turn that sends one change or none
 * neither starts nor extends it, so a change now and then, and a client's
 * writes one after the other however close, still go out at once. */
typedef struct {
    apr_time_t until;           /* under load until then */
} sc_gather;
/* After a turn at 'now' (a monotonic clock's, in us) that sent 'sent'
 * asynchronous changes: 1 when the engine's next wait gathers.  Under load
 * from a turn that sent several until SC_ASYNC_GATHER_HOLD_US after the
 * last such turn: turns in between that send one change or none (a socket
 * woke it) gather too. */
int sc_gather_next(sc_gather *g, apr_time_t now, unsigned sent);

/* 1 when the ring holds a message not taken yet. */
int sc_ring_pending(const sc_ring *r);

/* Calls fn for every message in the ring, oldest first, and frees their
 * room.  A message is at fn's disposal during the call only.  Returns how
 * many; *bad (may be NULL) is set when a record was not well formed (the
 * rest of the ring was dropped). */
typedef void (*sc_ring_fn)(void *ctx, const unsigned char *msg, apr_size_t len);
apr_size_t sc_ring_take(sc_ring *r, sc_ring_fn fn, void *ctx, int *bad);

void sc_ring_counts_get(const sc_ring *r, sc_ring_counts *c);
/* The status page's reset (the engine's): an append counted meanwhile may be
 * lost to it. */
void sc_ring_counts_reset(sc_ring *r);

#endif /* SC_RING_H */
