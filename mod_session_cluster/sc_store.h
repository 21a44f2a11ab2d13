/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_store.h -- the session store: one shared memory segment, created once per
 * httpd instance (so graceful restarts keep it) and written by children (their
 * requests) and by the engine (replication, expiry).
 *
 *   +-------------------------+
 *   | sc_store_hdr            |  capacity, sizes, counters, locks
 *   +-------------------------+
 *   | sc_slot_lock lock[nl]   |  the slots' writers' locks, each with the undo
 *   |                         |  record of the write in progress under it
 *   +-------------------------+
 *   | int32 index[index_size] |  open addressing on the id's hash: slot, -1 free,
 *   |                         |  -2 deleted
 *   +-------------------------+
 *   | int32 free_slots[cap]   |  a stack of the slots freed below slot_hwm
 *   +-------------------------+
 *   | sc_sess slot[cap]       |  a session's id, version, times, and where its
 *   |                         |  data starts
 *   +-------------------------+
 *   | uint32 next[nblocks]    |  block n's next block + 1 (0: the last)
 *   +-------------------------+
 *   | block 0 | block 1 | ... |  SC_STORE_BLOCK bytes of data each
 *   +-------------------------+
 *
 * A session's data is a chain of blocks, so it takes what it needs and not
 * maxSessionSize: memory follows the payload.  A block is all data (128
 * bytes, two cache lines); the chain's links lie apart in next[], 4 bytes a
 * block, so that a session of 1,005 bytes takes 8 blocks (1,024 bytes and 32
 * of links) where a link inside each block took 9 (1,152).  The segment is
 * reserved for capacity sessions of maxSessionSize, but only the pages
 * written are resident: slots and blocks are taken from the bottom (freed
 * ones first), and nothing walks past the highest ever taken.
 *
 * Bytes a session costs (SC_STORE_VERSION 7 and 8): its slot (176: id 100, the
 * fields 68, sequence and touched mark 8) and a block and its link (132) per
 * 128 bytes of data; a session of 1,005 bytes 1,232 (1.23x; 1,560 in version
 * 6, whose slots held their own lock and undo copy: 400).  The locks and
 * their undo records (376 bytes each, at most SC_STORE_LOCKS: 1.5 MiB; a
 * lock is made, and its page written, with the first slot that uses it) and
 * the index (8 bytes a session of capacity) come on top.
 *
 * Readers copy a slot and its chain under the slot's sequence lock; writers
 * take the slot's lock, the index lock for insertions and removals, and the
 * data lock to take or give back blocks.  A writer fills a new chain before it
 * swaps it in and frees the old one after, so a reader never sees a chain
 * being written; one that raced a swap sees the sequence move and reads
 * again (a write in place, below, writes a chain with the sequence odd, and
 * readers read again the same way).  An oversize session is refused with a reason; a full store makes
 * room only by giving up a session on probation (below), else it refuses.
 *
 * Probation.  A session that saw a single request (never read or written
 * again since it was made: last_access == created, which every copy of it
 * carries, so members agree without a flag) is on probation: it idles out
 * after probation_s (Manager probationInactiveInterval, ours; 60 s by
 * default) when that is shorter than its maxInactiveInterval.  The next
 * request that brings its cookie touches it (always, not only once a second)
 * and it has its whole maxInactiveInterval from then on: a client that kept
 * the cookie (a browser), not one that throws it away (a flood).  When a new
 * session (a request's, a replica, a state transfer's) finds every slot
 * taken, the oldest session on probation among SC_EVICT_LOOK slots looked at
 * from a random place gives way, one made by the same client address first
 * (origin, a hash of it, known only where the request came in); a session
 * that saw two requests never does (SessionsEvicted).  Sessions on probation
 * that idle out or give way leave no tombstone and the expiry is not sent:
 * every member expires its copy from the same times, and a flood must not
 * push the tombstones of invalidated sessions out of their table; a copy that
 * comes back is on probation with its old times, and idles out again.
 *
 * A writer can die anywhere (a child SIGKILLed, a crash), and must not block
 * the session.  The locks are robust process-shared mutexes: when the owner
 * dies the kernel releases them and the next process to take one is told.  A
 * slot's lock is one of a table (SC_STORE_LOCKS at most, slot k's the
 * (k mod their number)-th: a store of fewer slots has one per slot), which
 * the slots sharing it take in turn; nothing holds two slots' locks at once.
 * A writer saves what readers see (cur) in its lock's undo record, and the
 * slot's number there, before it makes the slot's sequence odd: only the
 * holder of a slot's lock makes its sequence odd, so whoever takes the lock
 * of a writer that died finds the one slot it was writing there; if that
 * slot's sequence is odd it puts undo back (the last committed version: id,
 * times, stamp and chain), gives back the chain the dead writer had swapped
 * in and makes the sequence even again (SessionWritesUndone counts it).  One
 * undo record a lock, not one a slot: a slot is the smaller by a record.  A
 * reader that finds the sequence odd for long takes the lock, which waits for
 * a live writer and repairs after a dead one, so no reader spins on a dead
 * writer.
 *
 * Writes in place.  An update whose data fills as many blocks as the version
 * it replaces, and differs from it in at most SC_STORE_PATCH blocks and
 * SC_STORE_PATCH_BYTES bytes (from the first byte that differs in a block to
 * the last), is written over those bytes instead of into a chain of its own:
 * an unchanged 32 KB attribute is compared, not copied, and no blocks are
 * taken or given back under the data lock.  The writer compares before it
 * takes the slot's lock, as a reader (under the sequence lock); it writes in
 * place only if the sequence has not moved since (no write came between),
 * else it makes a chain of its own as any other write.  Under the lock, with
 * the sequence odd, it saves the bytes it is about to write over in the undo
 * record (patch, patch_old, and their count 'patched', set before any is
 * written) and then writes them, so the repair after a writer that died
 * there puts them back with cur.  Readers that raced it see the sequence
 * move and read again, as for a swap.  A writer that copied parts of its
 * data unchanged from the version it read, at the same offsets, may say so
 * (sc_store_kept, with where that version was read: sc_sess_copy's
 * read_slot and read_seq): while the slot's sequence is still the one of
 * that read, the slot holds that version's very bytes, and those parts are
 * not compared (the sequence moves by 2 with every write: equal again only
 * after 2^31 writes to that slot, which no request outlives).  The index and data locks guard
 * short updates whose interruption can at worst lose a slot or a chain's
 * blocks (never hand them out twice): they are just taken over.
 *
 * Tombstones.  A session removed (invalidated, expired, its id changed, or
 * removed by a replicated REMOVE/EXPIRE, also for an id this member never
 * held) leaves its id's base in a tombstone table after the blocks, under the
 * index lock: open addressing on the id's hash, probing at most
 * SC_TOMB_PROBE entries.  While a tombstone lives no write creates that
 * session again (SC_STORE_DEAD): not a replica (FULL, DELTA, ALL_DATA, the
 * answer to a GET_SESSION), not a request's save.  A tombstone lives for the
 * session's maxInactiveInterval (Manager maxInactiveInterval for an id not
 * held), at least SC_TOMB_MIN_S and at most SC_TOMB_MAX_S: by then every copy
 * a member that missed the removal still held has idled out there too, unless
 * a client kept using it there.  The table holds 2 x maxActiveSessions
 * entries (512 to 32768 sessions' worth, 64 bytes each); when a neighbourhood
 * is full of live tombstones the one closest to its end is given up early
 * (TombstonesEvicted).  Updating a session needs it in the store: a save based
 * on a version read before the session was removed finds it gone
 * (SC_STORE_NOTFOUND) whatever the tombstone's age, and never creates it.
 * A tombstone beats every copy of its session, whatever its version: ids are
 * random, so a removed session never comes back (anti-entropy, sc_manager.c,
 * carries tombstones with their remaining life to members that missed them).
 *
 * Locations (BackupManager, sc_backup.c).  A table after the tombstones says,
 * for every session of the cluster this member knows of, this member's role
 * (primary or backup: the data is in a slot; proxy: only where it is), the
 * routes of its primary and its backup (as indexes into a table of up to
 * SC_LOC_ROUTES routes in the header, so an entry stays 64 bytes) and the
 * primary's epoch (each new primary raises it).  Its memory follows the
 * entries in use, as the slots' does: an index (open addressing on the id
 * base's hash, 2 x capacity 32-bit entries, at least SC_LOC_MIN: an entry's
 * number + 1, 0 never used, all ones deleted) points into an array of 3/4
 * as many entries taken from the bottom (freed ones first, a free list
 * through them) up to a high-water mark (loc_hwm).  Only the index is
 * written where ids hash (4 bytes an entry); the entries in use lie in the
 * array's first pages, and the scans walk the array up to loc_hwm, so the
 * pages past it are never touched.  Only the engine writes the table, a
 * whole change inside one turn of the table's sequence number (loc_seq):
 * children (a request, the page) read under it, as they read a slot, and
 * see no half-made change; a change the engine died in is undone by laying
 * the index and the free list anew from the array (sc_loc_repair).
 *
 * Versions and conflicts.  Every version of a session carries a stamp
 * (sc_stamp): its number, a hash of its data (sc_store_hash: members holding
 * the same content at the same number agree without comparing data), and
 * whether it was written in a minority.  A member that sees fewer than half
 * of the members it knows says so in the header (minority, set by the
 * engine); a write there is stamped SC_SF_MINOR with the number of the
 * version it branched from (fork), and so is every write on such a version
 * until a member outside any minority has taken it (SC_SF_SETTLED).  When two
 * members hold different copies (a partition healed, deltas that crossed),
 * one rule, which every member computes alike, picks the copy that stays
 * (sc_stamp_cmp): the higher of (rank, minor, version, hash), where rank is
 * the version for a copy written with a majority and the fork for a minority
 * copy.  So a majority's change made after a minority branched off beats the
 * minority's, however many writes the minority made; a minority's change to
 * a session the majority left alone (its version at most the fork) is kept;
 * between copies of one side the higher version wins, and at the same
 * version with different data the higher hash.  A copy replaced by a
 * concurrent one counts as a conflict (Conflicts) unless it was an ancestor
 * of the winner (sc_stamp_conflict).  A replaced version is marked
 * (SC_SF_REPLACED): a request that read the copy before and saves over its
 * number merges onto the winner (SC_STORE_STALE once) instead of writing
 * over it.
 */
#ifndef SC_STORE_H
#define SC_STORE_H

#include "apr.h"
#include "apr_pools.h"
#include "apr_time.h"

#include <pthread.h>

#define SC_SID_MAX 100              /* 32 hex + '.' + route (63) + NUL, rounded */

#define SC_STORE_BLOCK 128           /* bytes per data block */
#define SC_STORE_BLOCK_COST (SC_STORE_BLOCK + sizeof(apr_uint32_t)) /* with its link */
#define SC_STORE_LOCKS 4096          /* slot locks at most (sc_slot_lock) */
#define SC_STORE_PATCH 4             /* blocks a write may change in place */
#define SC_STORE_PATCH_BYTES 128     /* ... and bytes in all */

/* Raise with any change to the layout of the segment (the header, a slot, a
 * block, a tombstone, the order of the parts; and SC_RETAINED_LAYOUT with
 * it); a test builds a variant with another one. */
#ifndef SC_STORE_VERSION
#define SC_STORE_VERSION 8
#endif

#define SC_TOMB_PROBE 32             /* tombstone entries probed per id */
#define SC_TOMB_BASE 48              /* an id's base held (32 hex fit) */
#define SC_TOMB_MIN_S 60             /* a tombstone lives at least this long */
#define SC_TOMB_MAX_S 86400          /* ... and at most (never-expiring sessions) */
#define SC_EVICT_LOOK 256            /* slots looked at for a session to give way */
#define SC_FLOOD_LINES 3             /* lines about a full store: the first few, */
#define SC_FLOOD_LINE_S 10           /* ... then at most one this often (s) */

#define SC_LOC_ROUTES 255            /* routes the location table names */
#define SC_LOC_ROUTE_LEN 64          /* a route and its NUL */
#define SC_LOC_BASE 36               /* an id's base held (34 hex fit) */
#define SC_LOC_MIN 1024              /* index entries at the least */

/* A session's role here (sc_loc.role). */
#define SC_ROLE_NONE    0
#define SC_ROLE_PRIMARY 1            /* served here; its data is here */
#define SC_ROLE_BACKUP  2            /* its data is here, kept for its primary */
#define SC_ROLE_PROXY   3            /* only where it is */

typedef struct {
    apr_uint32_t hash;               /* state 2: the next freed entry + 1 */
    unsigned char state;             /* 0 never used, 1 used, 2 freed */
    unsigned char role;              /* SC_ROLE_* */
    unsigned char primary;           /* route index + 1; 0: none */
    unsigned char backup;
    unsigned char len;               /* of base */
    unsigned char pad[3];
    char base[SC_LOC_BASE];
    apr_uint64_t epoch;
    apr_time_t news;                 /* last heard of (the orphan rule) */
} sc_loc;

/* A dead session's id (its base), until 'until'. */
typedef struct {
    apr_time_t until;               /* 0: never used; past: free again */
    apr_uint32_t hash;
    apr_uint32_t len;               /* of base */
    char base[SC_TOMB_BASE];
} sc_tomb;

/* What readers see of a session: everything a write changes. */
typedef struct {
    apr_uint32_t used;
    apr_uint32_t data_len;
    apr_uint32_t head;              /* first data block + 1; 0: no data */
    apr_uint32_t origin;            /* hash of the creating client's address; 0: unknown */
    apr_uint64_t version;
    apr_time_t created;
    apr_time_t last_access;
    apr_int64_t max_inactive;       /* seconds; <= 0: never */
    apr_uint64_t hash;              /* of the data (sc_store_hash) */
    apr_uint64_t fork;              /* SC_SF_MINOR: the version it branched from */
    apr_uint32_t flags;             /* SC_SF_* of this version */
    char id[SC_SID_MAX];
} sc_sess_rec;                      /* 168 bytes */

typedef struct {
    volatile apr_uint32_t seq;      /* odd while a write is in progress */
    apr_uint32_t touched;           /* accessed since the engine last looked */
    sc_sess_rec cur;                /* the session */
} sc_sess;                          /* 176 bytes */

/* Bytes [at, at + len) of block 'block', written in place (below). */
typedef struct {
    apr_uint32_t block;
    apr_uint16_t at, len;
} sc_patch_range;

/* A slot lock (above): the writers' lock of the slots k with k mod the
 * number of locks = its own, and the undo record of the write in progress
 * under it. */
typedef struct {
    pthread_mutex_t lock;           /* robust, process-shared */
    volatile apr_uint32_t writing;  /* the slot written (or last written) + 1 */
    volatile apr_uint32_t patched;  /* ranges of its chain the write in progress
                                     * changes in place (patch), their bytes
                                     * before it one after the other in
                                     * patch_old (0: none; set before any is
                                     * written) */
    sc_sess_rec undo;               /* that slot's cur before the write */
    sc_patch_range patch[SC_STORE_PATCH];
    unsigned char patch_old[SC_STORE_PATCH_BYTES];
} sc_slot_lock;

typedef struct {
    /* The stamp: what laid the segment out, written at creation and checked
     * when a restart reuses the segment (sc_store_check).  These fields come
     * first and never move, whatever the version. */
    apr_uint32_t magic;             /* SC_STORE_MAGIC */
    apr_uint32_t version;           /* SC_STORE_VERSION */
    apr_uint32_t header_size;       /* sizeof(sc_store_hdr) */
    apr_uint32_t slot_size;         /* sizeof(sc_sess) */
    apr_uint32_t block_size;        /* SC_STORE_BLOCK */
    apr_uint32_t tomb_entry_size;   /* sizeof(sc_tomb) */
    apr_uint64_t total_size;        /* bytes of the segment */
    apr_uint64_t budget_laid;       /* the budget the segment was laid out for */
    apr_uint32_t capacity;          /* slots laid out (the most sessions it can hold) */
    apr_uint32_t index_size;        /* power of two */
    /* the limits, set at creation and by a restart (sc_store_set_limits) */
    volatile apr_uint64_t budget;   /* bytes: slots in use and data blocks in use */
    volatile apr_uint32_t count_limit; /* Manager maxActiveSessions; 0: none */
    volatile apr_uint32_t slot_data; /* most bytes of data of one session */
    volatile apr_uint32_t moved;    /* a restart moved the sessions to a larger
                                     * segment: writes here are refused */
    apr_uint32_t nlocks;            /* slot locks laid out (a power of two) */
    pthread_mutex_t index_lock;     /* robust, process-shared, like data_lock */
    volatile apr_uint32_t count;
    apr_uint64_t created, updated, removed, expired;
    apr_uint64_t rejected_full, rejected_size;
    apr_uint64_t replicated_in, replicated_out, transfer_in, transfer_out;
    apr_time_t last_transfer_ms;    /* duration of the last state transfer */
    apr_uint32_t slot_hwm;          /* slots ever taken: [0, slot_hwm) */
    apr_uint32_t free_slots;        /* entries on the free slot stack */
    apr_uint64_t last_transfer_count;
    apr_uint64_t rebound;           /* ids re-bound (JvmRouteBinderValve) */
    apr_uint64_t writes_undone;     /* writes whose writer died in them, undone */
    apr_uint64_t updated_in_place;  /* updates written in place (in 'updated' too) */
    /* data blocks, under data_lock */
    pthread_mutex_t data_lock;
    apr_uint32_t nblocks;
    apr_uint32_t block_hwm;         /* blocks ever taken: [0, block_hwm) */
    apr_uint32_t free_block;        /* first of the free list + 1; 0: empty */
    apr_uint32_t blocks_used;
    /* the stamps' hashes: sc_store_hash_regime (was padding: the layout is
     * the same, and builds before it leave it 0) */
    volatile apr_uint32_t hash_regime;
    /* tombstones, under index_lock */
    apr_uint32_t tomb_size;         /* entries, a power of two */
    apr_uint32_t tomb_default_s;    /* lifetime for an id not held (s) */
    apr_uint64_t tombs_set;         /* sessions that left a tombstone */
    apr_uint64_t tombs_evicted;     /* tombstones given up before their time */
    apr_uint64_t dead_refused;      /* writes refused: the session was removed */
    apr_uint64_t repl_too_big;      /* changes not replicated: > maxMessageSize */
    /* probation (above) */
    apr_int64_t probation_s;        /* Manager probationInactiveInterval; <= 0: none */
    apr_uint64_t evicted;           /* sessions on probation that gave way */
    apr_uint64_t probation_expired; /* ... that idled out (in 'expired' too) */
    apr_time_t evict_logged;        /* the last line about an eviction (rate limit) */
    apr_time_t full_logged;         /* ... about a refusal, the store full */
    /* versions and conflicts (above); the engine writes these */
    volatile apr_uint64_t minority; /* this member sees fewer than half of the
                                     * members it knows: writes stamped minor,
                                     * synchronous ones refused */
    apr_uint64_t quorum_seen;       /* members seen (this one included) ... */
    apr_uint64_t quorum_known;      /* ... of those it knows */
    apr_time_t minority_since;      /* 0: not in a minority */
    apr_uint64_t conflicts;         /* copies replaced by a concurrent one */
    apr_uint64_t minority_refused;  /* synchronous writes refused in a minority */
    apr_uint64_t ae_rounds;         /* anti-entropy exchanges started */
    apr_uint64_t ae_asked;          /* sessions asked for by them (missing or older here) */
    apr_uint64_t ae_removed;        /* sessions removed by a tombstone they brought */
    /* locations (BackupManager; above): the engine writes these */
    apr_uint32_t loc_size;          /* entries laid out: 3/4 of loc_index_size */
    apr_uint32_t loc_entry_size;    /* sizeof(sc_loc) */
    apr_uint32_t loc_index_size;    /* index entries, a power of two */
    volatile apr_uint32_t loc_seq;  /* odd while the engine changes the table */
    apr_uint32_t loc_used;          /* entries in use */
    apr_uint32_t loc_deleted;       /* index entries marked deleted */
    apr_uint32_t loc_hwm;           /* entries ever taken: [0, loc_hwm) */
    apr_uint32_t loc_free;          /* first freed entry + 1; 0: none */
    apr_uint32_t loc_routes;        /* routes named so far */
    apr_uint32_t loc_pad;
    apr_uint64_t bk_primary, bk_backup, bk_proxy;  /* entries of each role */
    apr_uint64_t bk_updates;        /* updates of primaries handed to replication */
    apr_uint64_t bk_copies;         /* FULL/DELTA messages sent to backups */
    apr_uint64_t bk_fetches, bk_fetch_not_here, bk_fetch_failed;
    apr_uint64_t bk_fetch_p50_us, bk_fetch_p99_us;
    apr_uint64_t bk_promotions, bk_replacements, bk_replacing;
    apr_uint64_t bk_rr;             /* the round robin's next turn */
    apr_uint64_t bk_loc_full;       /* locations not kept: the table was full */
    char loc_route[SC_LOC_ROUTES][SC_LOC_ROUTE_LEN];
} sc_store_hdr;

typedef struct {
    struct apr_shm_t *shm;          /* the segment (NULL: attached elsewhere) */
    sc_store_hdr *hdr;
    apr_int32_t *index;
    apr_int32_t *free_slots;
    sc_slot_lock *locks;
    sc_sess *slots;
    apr_uint32_t *block_nexts;
    unsigned char *blocks;
    sc_tomb *tombs;
    apr_uint32_t *loc_index;
    sc_loc *locs;
    /* this process's own: the odd loc_seq a reader gave up waiting on (a
     * writer that died inside a change; sc_loc_find) */
    volatile apr_uint32_t loc_stuck;
    apr_pool_t *pool;               /* the one it was made in */
    struct sc_prefault *prefault;   /* this process's: sc_store_prefault */
    apr_uint64_t prefault_pages;    /* made resident by the ones stopped */
    apr_uint32_t regime;            /* sc_store_hash_regime's, in this process */
} sc_store;

/* Ranges of a writer's data (offset, length) that it copied unchanged from
 * the version it read (sc_sess_copy.data) at the same offsets, in
 * increasing order without overlap, and where that version was read
 * (read_slot, read_seq).  A write in place does not compare them while the
 * slot's sequence has not moved since that read ("Writes in place"): the
 * writer vouches for them, and a range that was not copied so would leave
 * the old bytes stored under the new data's hash. */
typedef struct {
    apr_uint32_t off, len;
} sc_store_range;
typedef struct {
    apr_uint32_t read_slot, read_seq;
    int n;
    const sc_store_range *r;
} sc_store_kept;

/* A copy of one session, as read. */
typedef struct {
    char id[SC_SID_MAX];
    apr_uint64_t version;
    apr_time_t created;
    apr_time_t last_access;
    apr_int64_t max_inactive;
    apr_uint32_t data_len;
    char *data;                     /* data_len bytes + NUL */
    /* the version's stamp (sc_stamp): hash and, SC_SF_MINOR, fork */
    apr_uint64_t hash;
    apr_uint64_t fork;
    apr_uint32_t flags;
    int stamped;                    /* a message carried the stamp (sc_repl.h) */
    /* where sc_store_get read it: its slot + 1 (0: not from the store) and
     * the slot's sequence then (sc_store_kept) */
    apr_uint32_t read_slot;
    apr_uint32_t read_seq;
} sc_sess_copy;

/* A version's stamp (Versions and conflicts, above). */
#define SC_SF_MINOR    0x1u          /* written in a minority, or on such a version */
#define SC_SF_SETTLED  0x2u          /* ... and taken by a member outside any minority */
#define SC_SF_WIRE     0x3u          /* the flags that travel */
#define SC_SF_REPLACED 0x4u          /* here only: replaced by a concurrent copy */
typedef struct {
    apr_uint64_t version;
    apr_uint64_t hash;
    apr_uint64_t fork;
    apr_uint32_t flags;
} sc_stamp;

typedef enum {
    SC_STORE_OK = 0,
    SC_STORE_NOTFOUND,
    SC_STORE_FULL,
    SC_STORE_TOOBIG,
    SC_STORE_STALE,                 /* an update based on another version */
    SC_STORE_DEAD,                  /* removed: its tombstone forbids creating it */
    SC_STORE_MOVED                  /* the store was moved by a restart: writes go there */
} sc_store_rc;

/* A store of at most 'capacity' sessions of at most slot_data bytes, laid
 * out for all of them at their largest (the tests' and fuzzers' store). */
apr_status_t sc_store_create(apr_pool_t *p, apr_uint32_t capacity, apr_uint32_t slot_data,
                             sc_store **out);
/* The store of a member: its memory bounded by 'budget' bytes (the slots of
 * the sessions held and their data blocks), at most count_limit sessions
 * (0: no count limit, the budget alone bounds them), each of at most
 * slot_data bytes.  The segment is laid out for the budget (the most
 * sessions it can hold: budget / SC_STORE_MIN_COST), but only the pages
 * written are resident. */
apr_status_t sc_store_create_budget(apr_pool_t *p, apr_uint64_t budget,
                                    apr_uint32_t count_limit, apr_uint32_t slot_data,
                                    sc_store **out);
/* The smallest budget a store is made with (bytes). */
#define SC_STORE_MIN_BUDGET (1024u * 1024u)
/* What a session costs at the least: its slot and one data block with its
 * link. */
#define SC_STORE_MIN_COST (sizeof(sc_sess) + SC_STORE_BLOCK_COST)
/* New limits for a store kept by a restart: 0, or -1 when the budget is
 * more than the segment was laid out for (a larger store is needed:
 * sc_store_move) or the count limit more than its slots. */
int sc_store_set_limits(sc_store *st, apr_uint64_t budget, apr_uint32_t count_limit,
                        apr_uint32_t slot_data);
/* Copies every session of 'from' (data, versions, times, stamps), its live
 * tombstones and its counters into the empty store 'to', and marks 'from'
 * moved: a writer still on it (a child of the generation a graceful restart
 * replaces) is refused (SC_STORE_MOVED) rather than writing where nobody
 * reads.  The number of sessions copied in *copied; APR_ENOSPC when they do
 * not fit (nothing is marked then). */
apr_status_t sc_store_move(sc_store *from, sc_store *to, apr_uint64_t *copied);
/* Bytes the store's limits count: slots of the sessions held and data
 * blocks in use (SC_STORE_BLOCK_COST each: a block and its link). */
apr_uint64_t sc_store_bytes_counted(const sc_store *st);
/* Was the store laid out by this build (a graceful restart keeps it and may
 * load another build of the module)?  NULL if so, else what differs, found
 * and expected, allocated from p (as sc_shm_check).  With the same sizes,
 * also where the parts lie for the store's capacity. */
const char *sc_store_check(const sc_store *st, apr_pool_t *p);
/* Reads a session; touch != 0 also records the access. */
sc_store_rc sc_store_get(sc_store *st, apr_pool_t *p, const char *id, int touch,
                         sc_sess_copy *out);
/* Creates or replaces a session.  base_version: the version the writer read
 * (0: create); on SC_STORE_STALE the store holds another version.  On success
 * *new_version is the stored version (base + 1, or 'force_version' if set).
 * A session that is not there is created only by a create (base_version 0)
 * or a replica (force_version): an update finds it NOTFOUND; and not while
 * its id has a tombstone: DEAD. */
sc_store_rc sc_store_put(sc_store *st, const char *id, const char *data, apr_uint32_t len,
                         apr_uint64_t base_version, apr_uint64_t force_version,
                         apr_time_t created, apr_time_t last_access,
                         apr_int64_t max_inactive, apr_uint64_t *new_version);
/* sc_store_put of a request's update (created 0, last access now) whose
 * data's sc_store_hash the writer made from the version read's
 * (sc_store_hash_make): not hashed again.  hash 0: hashed here.  kept (may
 * be NULL): the parts of data copied from the version read (above). */
sc_store_rc sc_store_put_hashed(sc_store *st, const char *id, const char *data,
                                apr_uint32_t len, apr_uint64_t base_version, apr_time_t now,
                                apr_int64_t max_inactive, apr_uint64_t hash,
                                const sc_store_kept *kept, apr_uint64_t *new_version);
/* A request's new session, as sc_store_put with base_version 0 and created
 * = last_access = now (on probation); origin: a hash of the client's address
 * (sc_store_origin).  When the store is full a session on probation gives way
 * (above): *evicted_idle is then how long it had been idle, else -1. */
sc_store_rc sc_store_put_new(sc_store *st, const char *id, const char *data, apr_uint32_t len,
                             apr_time_t now, apr_int64_t max_inactive, apr_uint32_t origin,
                             apr_uint64_t *new_version, apr_time_t *evicted_idle);
/* The origin of a client address (never 0). */
apr_uint32_t sc_store_origin(const char *addr);
/* Is a session with these times on probation (it saw a single request)? */
int sc_store_on_probation(apr_time_t created, apr_time_t last_access);
/* A session's idle limit in seconds (<= 0: never): max_inactive, or the
 * store's probation_s while it is on probation, when that is shorter. */
apr_int64_t sc_store_idle_limit(const sc_store *st, apr_time_t created,
                                apr_time_t last_access, apr_int64_t max_inactive);
/* Manager probationInactiveInterval (s; <= 0: no probation). */
void sc_store_set_probation(sc_store *st, apr_int64_t seconds);
/* Removes a session that is still on probation, without a tombstone (its
 * expiry by the sweep); STALE when it saw a second request meanwhile. */
sc_store_rc sc_store_drop_probation(sc_store *st, const char *id);
/* Is a line about the store being full due, for the n-th event of its kind
 * (the first SC_FLOOD_LINES, then one per SC_FLOOD_LINE_S shared by every
 * process)?  last: the header's evict_logged or full_logged. */
int sc_store_line_due(apr_time_t *last, apr_uint64_t n, apr_time_t now);
/* Removes a session and leaves its tombstone (also when it is not held:
 * NOTFOUND then, the tombstone set all the same). */
sc_store_rc sc_store_remove(sc_store *st, const char *id);
/* Has id a live tombstone? */
int sc_store_dead(sc_store *st, const char *id);
/* How long a tombstone of an id this member does not hold lives (Manager
 * maxInactiveInterval; bounded by SC_TOMB_MIN_S and SC_TOMB_MAX_S). */
void sc_store_set_tomb_default(sc_store *st, apr_int64_t seconds);
/* Calls fn with every live tombstone's id base (NUL-terminated); fn returns 0
 * to stop.  Copies under the index lock, calls after it. */
void sc_store_each_tomb(sc_store *st, apr_pool_t *p,
                        int (*fn)(void *ctx, const char *base), void *ctx);
/* Bytes of session data held (approximate while writers run). */
apr_uint64_t sc_store_bytes_in_use(sc_store *st);
/* Bytes of the segment in use: header, the slot locks made, index, the
 * slots and blocks taken. */
apr_uint64_t sc_store_bytes_resident(sc_store *st);
/* Two ids name the same session when their bases (before the '.') match. */
int sc_store_same(const char *a, const char *b);
/* Re-binds the session with new_id's base to new_id (a new route).  expect:
 * only if the session's id is exactly that (NULL: whatever it is).  OK: done,
 * the previous id in 'was' (SC_SID_MAX bytes, may be NULL); STALE: it already
 * had new_id, or another id than 'expect'; NOTFOUND. */
sc_store_rc sc_store_rebind(sc_store *st, const char *new_id, const char *expect,
                            char *was);
/* Has a session last accessed at last_access idled out at now, with
 * max_inactive seconds allowed (<= 0: never)?  Free of overflow whatever the
 * values (a replica's come from another member). */
int sc_store_idled_out(apr_time_t now, apr_time_t last_access, apr_int64_t max_inactive);
/* Raises last_access (replicated touches). */
void sc_store_touch(sc_store *st, const char *id, apr_time_t when);
/* Clears the session's mark of an access since the engine last looked (a
 * member that becomes the session's backup: what it served as its primary
 * is not a read of the backup's copy). */
void sc_store_untouch(sc_store *st, const char *id);
/* Calls fn for every session (a copy); fn returns 0 to stop. */
void sc_store_each(sc_store *st, apr_pool_t *p,
                   int (*fn)(void *ctx, const sc_sess_copy *s, int touched), void *ctx,
                   int clear_touched);
/* The same from slot 'start', for at most 'max' sessions; returns the slot to
 * continue from (capacity when done). */
apr_uint32_t sc_store_each_from(sc_store *st, apr_pool_t *p, apr_uint32_t start,
                                apr_uint32_t max,
                                int (*fn)(void *ctx, const sc_sess_copy *s, int touched),
                                void *ctx, int clear_touched);
/* Calls fn for every session without its data (s->data NULL, s->data_len its
 * length): the sweep's walk, which reads times and ids only. */
void sc_store_each_meta(sc_store *st,
                        int (*fn)(void *ctx, const sc_sess_copy *s, int touched), void *ctx,
                        int clear_touched);
/* The sweep's walk: fn (as sc_store_each_meta's, touched cleared) only for
 * the sessions touched since the last look and, when expire, those idle past
 * their limit at now (sc_store_idle_limit); the others are looked at without
 * their locks and left as they are. */
void sc_store_each_due(sc_store *st, apr_time_t now, int expire,
                       int (*fn)(void *ctx, const sc_sess_copy *s, int touched), void *ctx);
const char *sc_store_rc_text(sc_store_rc rc);

/* ---- versions and conflicts (above) ---- */

/* The hash of a session's data, the same on every member: of its pairs
 * ("k=v", between '&'), whatever their order (each hashed eight bytes a
 * step, mixed and added); never 0.  Its values are part of the protocol
 * (SC_PROTO_VERSION).  A store kept over a graceful restart into a build
 * with another function keeps its stamps as they were: members compare
 * stamps as stored and sent (a delta's base is the stamp of the version
 * read, sc_session.c), not against a hash of the data made again, except
 * for a delta's result (the writer's new stamp, made by the same build) and
 * a copy that comes without its stamp. */
apr_uint64_t sc_store_hash(const char *data, apr_uint32_t len);
/* Pairs whose key (as stored, URL-encoded) is_local names are left out of
 * sc_store_hash: attributes kept on the member that set them (Manager
 * sessionAttributeNameFilter; sc_session.c), which other members never
 * receive, so that every member's hash covers what they all hold.
 * Process-wide; NULL (the default): every pair. */
void sc_store_set_hash_filter(int (*is_local)(const char *key, apr_size_t klen));
/* The parts of sc_store_hash, for a writer or a member applying a change
 * that knows which pairs changed: the hash is made from the sum of its
 * pairs' hashes and their count (sc_store_hash_make), and that sum found
 * again from a hash and the count (sc_store_hash_sum; 0 when it cannot be:
 * a hash of 0 or 1), so that a new version's hash is the old one's less the
 * pairs gone and plus the pairs new: the same value as sc_store_hash of the
 * new data without a pass over its unchanged bytes.  sc_store_hash_pair: 1
 * and the hash of one pair ("k=v", no '&') when it is hashed, 0 when it is
 * left out (empty, or local: sc_store_set_hash_filter); h NULL: only which
 * (the pair is not hashed). */
int sc_store_hash_pair(const char *pair, apr_size_t len, apr_uint64_t *h);
apr_uint64_t sc_store_hash_make(apr_uint64_t sum, apr_uint64_t n);
int sc_store_hash_sum(apr_uint64_t hash, apr_uint64_t n, apr_uint64_t *sum);
/* Are the stamps' hashes in this store those of their data as this process
 * hashes it?  A hash made from the stamp of the version read is right only
 * when that stamp's was, and a store kept over a graceful restart may hold
 * stamps made with another hash function (another build) or another
 * sessionAttributeNameFilter, which a write that hashes its data whole
 * corrects and one made from the stamp would carry on.  The parent says,
 * when the store is made or kept, what this build and configuration hash
 * with (regime: a number of them, the same in every process), and whether
 * the store is new (sc_store_hash_regime): a kept store whose stamps were
 * made under another one, or by a build that did not record it, is not
 * trusted until it is made again (a stop and a start).
 * sc_store_hash_regime_from: a store the sessions were moved to (sc_store_move)
 * takes the trust of the one they came from. */
void sc_store_hash_regime(sc_store *st, apr_uint32_t regime, int fresh);
void sc_store_hash_regime_from(sc_store *to, const sc_store *from);
int sc_store_hash_trusted(const sc_store *st);
/* The rule: > 0 when a's copy stays over b's, < 0 when b's does, 0 when they
 * are the same version (number and hash). */
int sc_stamp_cmp(const sc_stamp *a, const sc_stamp *b);
/* Was 'loser', replaced by 'winner' under the rule, a concurrent change (a
 * conflict) rather than an ancestor of it? */
int sc_stamp_conflict(const sc_stamp *winner, const sc_stamp *loser);
/* A stamp as it came from another member, made what this member stores:
 * only the flags that travel, a fork only with SC_SF_MINOR, and below the
 * version (a branch starts before its first write). */
void sc_stamp_norm(sc_stamp *s);
/* The stamp of the version held of id (OK), or NOTFOUND. */
sc_store_rc sc_store_stamp(sc_store *st, const char *id, sc_stamp *out);

/* State transfer: makes resident, on a thread of this process, the pages a
 * store holding 'sessions' sessions in 'blocks' data blocks fills from its
 * slots' and blocks' high-water marks up (within its capacity, blocks and
 * budget), a stretch at a time just ahead of the writers, so that they do not
 * take each new page's first-touch fault (MADV_POPULATE_WRITE; nothing where
 * the kernel lacks it).  Nothing beyond those figures: an idle store stays
 * as small as it is.  Called again, it takes the new figures; 0, or -1 when
 * no thread could be started.  sc_store_prefault_stop ends it (and waits):
 * before the process leaves the store, and when the transfer ends. */
int sc_store_prefault(sc_store *st, apr_uint32_t sessions, apr_uint32_t blocks);
void sc_store_prefault_stop(sc_store *st);
/* The pages made resident so far by sc_store_prefault (this process). */
apr_uint64_t sc_store_prefaulted(const sc_store *st);

/* A hint, for a caller about to store many copies (a state transfer's
 * block): the cache line of id's index entry (slot_too 0), or of the slot
 * that entry names (1, once the first is in the cache), fetched ahead of
 * the lookup; reads nothing else, changes nothing. */
void sc_store_prefetch(sc_store *st, const char *id, int slot_too);

/* How a copy from another member is taken (sc_store_take). */
typedef enum {
    SC_TAKE_STORED = 0,               /* stored: it was new here, or it won */
    SC_TAKE_SAME,                     /* this member has that version already */
    SC_TAKE_LOST,                     /* the copy here stays: the copy is older */
    SC_TAKE_CONCURRENT,               /* the copy here stays over a concurrent one */
    SC_TAKE_REFUSED                   /* not stored: *rc says why (DEAD, FULL, TOOBIG) */
} sc_take_rc;

/* Takes a copy of a session from another member (its stamp in s: version,
 * hash (0: computed here), flags, fork) by the rule: stored when this member
 * has no copy (and no tombstone), or when the copy wins over the one here;
 * descends: the copy was made on the version held here (a delta on it), so
 * it is stored whatever the rule says of the two.  settle: this member is
 * outside any minority, so a minority copy it stores is settled.  An equal
 * version that is settled, or written with a majority, settles the one here.
 * *conflict: the copy here was replaced by a concurrent one (counted in the
 * header's conflicts), and then *was its stamp; either may be NULL. */
sc_take_rc sc_store_take(sc_store *st, const sc_sess_copy *s, int descends, int settle,
                         int *conflict, sc_stamp *was, sc_store_rc *rc);
/* sc_store_take of a copy made from a version read here (a DELTA applied
 * to it): kept, the parts of its data copied from that version at the same
 * offsets (sc_store_kept), not compared for a write in place while the
 * slot still holds it. */
sc_take_rc sc_store_take_kept(sc_store *st, const sc_sess_copy *s, int descends, int settle,
                              int *conflict, sc_stamp *was, sc_store_rc *rc,
                              const sc_store_kept *kept);
/* Calls fn with the id and stamp of every session from slot 'start', for at
 * most 'max' sessions, without their data; returns the slot to continue from
 * (capacity when done).  fn returns 0 to stop. */
apr_uint32_t sc_store_each_stamp(sc_store *st, apr_uint32_t start, apr_uint32_t max,
                                 int (*fn)(void *ctx, const char *id, const sc_stamp *s),
                                 void *ctx);
/* Calls fn with every live tombstone's id base and the seconds it has left
 * (at least 1); as sc_store_each_tomb. */
void sc_store_each_tomb_life(sc_store *st, apr_pool_t *p,
                             int (*fn)(void *ctx, const char *base, apr_uint32_t life_s),
                             void *ctx);
/* A tombstone from another member, with the life it has left there: the
 * session (if held) is removed (OK), and the id stays dead for life_s
 * seconds (bounded by SC_TOMB_MIN_S and SC_TOMB_MAX_S) unless its tombstone
 * here lives longer already (NOTFOUND when no session was held). */
sc_store_rc sc_store_bury(sc_store *st, const char *id, apr_uint32_t life_s);
/* Another member holds the version of id held here (number and hash), and
 * it was written with a majority or is settled: a minority version here is
 * settled too.  1 if it was. */
int sc_store_settle(sc_store *st, const char *id, const sc_stamp *there);

/* Removes a session without a tombstone (a copy given up: its data went to
 * another member, or a backup's copy idled out); NOTFOUND if not held. */
sc_store_rc sc_store_drop(sc_store *st, const char *id);

/* ---- locations (BackupManager; above) ---- */

/* What a reader gets of a location. */
typedef struct {
    int role;                         /* SC_ROLE_*; NONE: no location */
    apr_uint64_t epoch;
    char primary[SC_LOC_ROUTE_LEN];   /* "" none */
    char backup[SC_LOC_ROUTE_LEN];
    apr_time_t news;
} sc_loc_info;

/* The location of id (a child or the engine): 1 with *out filled, 0 none.
 * A change that does not end (the engine died inside it) is waited for
 * 200 ms once; later lookups answer 0 at once until the table is repaired. */
int sc_loc_find(sc_store *st, const char *id, sc_loc_info *out);
/* The engine at its start (the table's only writer): a change its
 * predecessor left half made is taken as ended, so that readers read again. */
void sc_loc_repair(sc_store *st);
/* The engine's writes.  Sets id's location (created or changed; routes ""
 * or NULL: none); 0, or -1 when the table is full or a route cannot be
 * named (bk_loc_full counts it). */
int sc_loc_set(sc_store *st, const char *id, int role, apr_uint64_t epoch,
               const char *primary, const char *backup, apr_time_t news);
/* Removes id's location (0: there was none). */
int sc_loc_del(sc_store *st, const char *id);
/* The engine: routes no location names any more (but 'keep', this member's
 * own; may be NULL) are given up, their places in the table of routes free
 * for others; how many. */
apr_uint32_t sc_loc_reclaim_routes(sc_store *st, const char *keep);
/* Calls fn with the locations from entry 'start', at most 'max' of them;
 * returns the entry to go on from (loc_size when done: every entry up to
 * loc_hwm was looked at; entries never move, so a scan in batches visits
 * each location that lives throughout once).  fn gets the id
 * base (NUL-terminated) and the location; it may set or delete locations.
 * fn returns 0 to stop BEFORE it did anything with that location: the entry
 * returned is then that location's, which the next call visits first. */
apr_uint32_t sc_loc_each_from(sc_store *st, apr_uint32_t start, apr_uint32_t max,
                              int (*fn)(void *ctx, const char *base,
                                        const sc_loc_info *l), void *ctx);

#endif /* SC_STORE_H */
