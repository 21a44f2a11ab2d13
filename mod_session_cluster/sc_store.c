/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_store.c -- the shared-memory session store (layout in sc_store.h).
 */
#include "sc_store.h"
#include "sc_clock.h"
#include "sc_shm.h"

#include "apr_shm.h"
#include "apr_strings.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define SC_STORE_MAGIC 0x53435353u   /* "SCSS" */
/* index entries: a slot's number + 1; 0 never used (a new segment is zero
 * filled, so the index is not written at creation and its pages become
 * resident as sessions come), -1 deleted */
#define EMPTY   0
#define DELETED (-1)

/* A block is all data: its link lies in the next[] array (sc_store.h). */
#define BLOCK_DATA SC_STORE_BLOCK

/* The sizes sc_store.h's arithmetic of a session's bytes rests on. */
_Static_assert(sizeof(sc_sess_rec) == 168, "a session's record: 168 bytes");
_Static_assert(sizeof(sc_sess) == 176, "a slot: 176 bytes");
_Static_assert(sizeof(sc_slot_lock) == 216 + SC_STORE_PATCH * sizeof(sc_patch_range)
                                       + SC_STORE_PATCH_BYTES,
               "a slot lock and its undo record: 376 bytes (216, and 160 for a write in "
               "place)");
_Static_assert(SC_STORE_BLOCK <= 65535, "a block's offsets fit a patch range's");
_Static_assert((SC_STORE_LOCKS & (SC_STORE_LOCKS - 1)) == 0, "SC_STORE_LOCKS: a power of two");

static apr_uint64_t blocks_for(apr_uint64_t len)
{
    return (len + BLOCK_DATA - 1) / BLOCK_DATA;
}

/* ---- locks ----
 * Robust process-shared mutexes: one whose owner dies is released by the
 * kernel, and the next pthread_mutex_lock() says EOWNERDEAD: that caller owns
 * it and puts right what the dead owner left half done (sc_store.h). */
static int lock_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rv = pthread_mutexattr_init(&a);
    if (rv != 0) {
        return rv;
    }
    rv = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rv == 0) {
        rv = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    }
    if (rv == 0) {
        rv = pthread_mutex_init(m, &a);
    }
    pthread_mutexattr_destroy(&a);
    return rv;
}

/* Takes a lock: 1 when its owner died holding it (the caller repairs, then
 * calls pthread_mutex_consistent), else 0.  Nothing else can come back from
 * an initialised robust mutex that is always made consistent after its
 * owner's death: anything else is a corrupt segment. */
static int lock_raw(pthread_mutex_t *m)
{
    int rv = pthread_mutex_lock(m);
    if (rv == EOWNERDEAD) {
        return 1;
    }
    if (rv != 0) {
        abort();
    }
    return 0;
}

/* The index and data locks: their updates are short, and one cut short at
 * worst loses a slot or a chain's blocks (never hands them out twice). */
static void lock_take(pthread_mutex_t *m)
{
    if (lock_raw(m)) {
        pthread_mutex_consistent(m);
    }
}

static void lock_give(pthread_mutex_t *m)
{
    pthread_mutex_unlock(m);
}

/* Where the parts of a store laid out for 'slots' sessions and 'nblocks'
 * data blocks lie (bytes from the segment's start), and its size; -1: too
 * large. */
typedef struct {
    apr_uint64_t nlocks, index_size, nblocks, ntombs, nlocix, nlocs;  /* entries */
    apr_uint64_t locks_at, index_at, free_at, slots_at, nexts_at, blocks_at, tombs_at,
                 locix_at, locs_at, total;
} store_layout;

static int layout_of(apr_uint64_t cap, apr_uint64_t nblocks, store_layout *l)
{
    apr_uint64_t isz = 1, ntombs = 1, nlocix = SC_LOC_MIN, nlocks = 1;

    if (!cap || cap > 0x3fffffff || nblocks >= 0x7fffffff) {
        return -1;
    }
    while (isz < cap * 2) {
        isz <<= 1;
    }
    /* slot locks: one per slot for a small store, SC_STORE_LOCKS at most */
    while (nlocks < cap && nlocks < SC_STORE_LOCKS) {
        nlocks <<= 1;
    }
    /* tombstones: 2 x capacity, bounded (sc_store.h) */
    while (ntombs < 2 * (cap < 512 ? 512 : cap > 32768 ? 32768 : cap)) {
        ntombs <<= 1;
    }
    /* locations: an index of 2 x capacity, entries for 3/4 of it (sc_store.h) */
    while (nlocix < cap * 2) {
        nlocix <<= 1;
    }
    l->nlocks = nlocks;
    l->index_size = isz;
    l->nblocks = nblocks;
    l->ntombs = ntombs;
    l->nlocix = nlocix;
    l->nlocs = nlocix / 4 * 3;
    l->locks_at = APR_ALIGN(sizeof(sc_store_hdr), 64);
    l->index_at = l->locks_at + APR_ALIGN_DEFAULT(nlocks * sizeof(sc_slot_lock));
    l->free_at = l->index_at + APR_ALIGN_DEFAULT(isz * sizeof(apr_int32_t));
    l->slots_at = l->free_at + APR_ALIGN_DEFAULT(cap * sizeof(apr_int32_t));
    l->nexts_at = l->slots_at + APR_ALIGN_DEFAULT(cap * sizeof(sc_sess));
    /* blocks on a cache line: a block is two whole lines */
    l->blocks_at = APR_ALIGN(l->nexts_at + nblocks * sizeof(apr_uint32_t), 64);
    l->tombs_at = l->blocks_at + nblocks * SC_STORE_BLOCK;
    l->locix_at = APR_ALIGN_DEFAULT(l->tombs_at + ntombs * sizeof(sc_tomb));
    l->locs_at = APR_ALIGN_DEFAULT(l->locix_at + nlocix * sizeof(apr_uint32_t));
    l->total = l->locs_at + l->nlocs * sizeof(sc_loc);
    return l->total == (apr_size_t)l->total ? 0 : -1;
}

/* The layout for a budget: as many slots as sessions of the least cost fit
 * in it (fewer with a count limit), and data blocks for all of it. */
static int layout_budget(apr_uint64_t budget, apr_uint32_t count_limit, store_layout *l)
{
    apr_uint64_t cap = budget / SC_STORE_MIN_COST;
    if (count_limit && count_limit < cap) {
        cap = count_limit;
    }
    return layout_of(cap, budget / SC_STORE_BLOCK_COST, l);
}

static apr_status_t create_laid(apr_pool_t *p, const store_layout *l, apr_uint64_t budget,
                                apr_uint32_t count_limit, apr_uint32_t slot_data,
                                sc_store **out)
{
    apr_shm_t *shm;
    apr_status_t rv;
    sc_store *st;
    char *base;

    /* a new segment is zero-filled: free slots, an empty free list and an
     * empty index.  Nothing past the header is written here: the rest is
     * touched as sessions come (a slot lock with the first slot that uses
     * it, slot_take). */
    rv = apr_shm_create(&shm, (apr_size_t)l->total, NULL, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    base = apr_shm_baseaddr_get(shm);
    memset(base, 0, (apr_size_t)l->locks_at);
    if (lock_init(&((sc_store_hdr *)base)->index_lock) != 0
        || lock_init(&((sc_store_hdr *)base)->data_lock) != 0) {
        apr_shm_destroy(shm);
        return APR_EGENERAL;
    }
    st = apr_pcalloc(p, sizeof(*st));
    st->pool = p;
    st->shm = shm;
    st->hdr = (sc_store_hdr *)base;
    st->locks = (sc_slot_lock *)(base + l->locks_at);
    st->index = (apr_int32_t *)(base + l->index_at);
    st->free_slots = (apr_int32_t *)(base + l->free_at);
    st->slots = (sc_sess *)(base + l->slots_at);
    st->block_nexts = (apr_uint32_t *)(base + l->nexts_at);
    st->blocks = (unsigned char *)(base + l->blocks_at);
    st->tombs = (sc_tomb *)(base + l->tombs_at);
    st->loc_index = (apr_uint32_t *)(base + l->locix_at);
    st->locs = (sc_loc *)(base + l->locs_at);
    st->hdr->magic = SC_STORE_MAGIC;
    st->hdr->version = SC_STORE_VERSION;
    st->hdr->header_size = (apr_uint32_t)sizeof(sc_store_hdr);
    st->hdr->slot_size = (apr_uint32_t)sizeof(sc_sess);
    st->hdr->block_size = SC_STORE_BLOCK;
    st->hdr->tomb_entry_size = (apr_uint32_t)sizeof(sc_tomb);
    st->hdr->total_size = l->total;
    st->hdr->budget_laid = budget;
    st->hdr->nlocks = (apr_uint32_t)l->nlocks;
    st->hdr->index_size = (apr_uint32_t)l->index_size;
    st->hdr->nblocks = (apr_uint32_t)l->nblocks;
    st->hdr->tomb_size = (apr_uint32_t)l->ntombs;
    st->hdr->tomb_default_s = 1800;
    st->hdr->loc_size = (apr_uint32_t)l->nlocs;
    st->hdr->loc_entry_size = (apr_uint32_t)sizeof(sc_loc);
    st->hdr->loc_index_size = (apr_uint32_t)l->nlocix;
    st->hdr->budget = budget;
    st->hdr->count_limit = count_limit;
    st->hdr->slot_data = slot_data;
    *out = st;
    return APR_SUCCESS;
}

apr_status_t sc_store_create(apr_pool_t *p, apr_uint32_t capacity, apr_uint32_t slot_data,
                             sc_store **out)
{
    store_layout l;
    apr_uint64_t nblocks = ((apr_uint64_t)capacity + 256) * blocks_for(slot_data);
    apr_uint64_t budget = (apr_uint64_t)capacity * sizeof(sc_sess)
                          + nblocks * SC_STORE_BLOCK_COST;
    apr_status_t rv;

    if (layout_of(capacity, nblocks, &l) != 0) {
        return APR_ENOMEM;
    }
    rv = create_laid(p, &l, budget, capacity, slot_data, out);
    if (rv == APR_SUCCESS) {
        (*out)->hdr->capacity = capacity;
    }
    return rv;
}

apr_status_t sc_store_create_budget(apr_pool_t *p, apr_uint64_t budget,
                                    apr_uint32_t count_limit, apr_uint32_t slot_data,
                                    sc_store **out)
{
    store_layout l;
    apr_status_t rv;

    if (budget < SC_STORE_MIN_BUDGET || layout_budget(budget, count_limit, &l) != 0) {
        return APR_ENOMEM;
    }
    rv = create_laid(p, &l, budget, count_limit, slot_data, out);
    if (rv == APR_SUCCESS) {
        apr_uint64_t cap = budget / SC_STORE_MIN_COST;
        (*out)->hdr->capacity = (apr_uint32_t)(count_limit && count_limit < cap
                                               ? count_limit : cap);
    }
    return rv;
}

int sc_store_set_limits(sc_store *st, apr_uint64_t budget, apr_uint32_t count_limit,
                        apr_uint32_t slot_data)
{
    sc_store_hdr *h = st->hdr;
    if (budget > h->budget_laid || count_limit > h->capacity
        /* no count limit, but the slots were laid out for one */
        || (!count_limit && h->capacity < h->budget_laid / SC_STORE_MIN_COST)) {
        return -1;
    }
    h->budget = budget;
    h->count_limit = count_limit;
    h->slot_data = slot_data;
    return 0;
}

apr_uint64_t sc_store_bytes_counted(const sc_store *st)
{
    const sc_store_hdr *h = st->hdr;
    return (apr_uint64_t)__atomic_load_n(&h->count, __ATOMIC_RELAXED) * sizeof(sc_sess)
           + (apr_uint64_t)__atomic_load_n(&h->blocks_used, __ATOMIC_RELAXED)
             * SC_STORE_BLOCK_COST;
}

/* The most bytes of data a chain can hold (every block ever taken): a
 * reader's bound on a length read while a writer changes it, so that a torn
 * read never makes it allocate more than the store has held. */
static apr_uint64_t data_bound(const sc_store *st)
{
    return (apr_uint64_t)__atomic_load_n(&st->hdr->block_hwm, __ATOMIC_RELAXED) * BLOCK_DATA;
}

const char *sc_store_check(const sc_store *st, apr_pool_t *p)
{
    const sc_store_hdr *h = st->hdr;
    const char *diff = NULL;
    const char *base = (const char *)h;
    store_layout l;

    if (h->magic != SC_STORE_MAGIC) {
        return apr_psprintf(p, "magic number 0x%08x (this build: 0x%08x)",
                            (unsigned)h->magic, (unsigned)SC_STORE_MAGIC);
    }
    sc_layout_differs(p, &diff, "version", h->version, SC_STORE_VERSION);
    sc_layout_differs(p, &diff, "header bytes", h->header_size, sizeof(sc_store_hdr));
    sc_layout_differs(p, &diff, "bytes per session slot", h->slot_size, sizeof(sc_sess));
    sc_layout_differs(p, &diff, "bytes per data block", h->block_size, SC_STORE_BLOCK);
    sc_layout_differs(p, &diff, "bytes per tombstone", h->tomb_entry_size,
                      sizeof(sc_tomb));
    sc_layout_differs(p, &diff, "bytes per location", h->loc_entry_size, sizeof(sc_loc));
    if (!diff) {
        /* the same parts: laid out the same way for this capacity? */
        if (layout_of(h->capacity, h->nblocks, &l) != 0) {
            return apr_psprintf(p, "%u sessions and %u data blocks (this build: too "
                                "many to lay out)",
                                (unsigned)h->capacity, (unsigned)h->nblocks);
        }
        sc_layout_differs(p, &diff, "bytes in all", h->total_size, l.total);
        sc_layout_differs(p, &diff, "slot locks", h->nlocks, l.nlocks);
        sc_layout_differs(p, &diff, "index entries", h->index_size, l.index_size);
        sc_layout_differs(p, &diff, "data blocks", h->nblocks, l.nblocks);
        sc_layout_differs(p, &diff, "tombstones", h->tomb_size, l.ntombs);
        sc_layout_differs(p, &diff, "slot locks at byte", (const char *)st->locks - base,
                          l.locks_at);
        sc_layout_differs(p, &diff, "index at byte", (const char *)st->index - base,
                          l.index_at);
        sc_layout_differs(p, &diff, "free slot stack at byte",
                          (const char *)st->free_slots - base, l.free_at);
        sc_layout_differs(p, &diff, "slots at byte", (const char *)st->slots - base,
                          l.slots_at);
        sc_layout_differs(p, &diff, "block links at byte",
                          (const char *)st->block_nexts - base, l.nexts_at);
        sc_layout_differs(p, &diff, "blocks at byte", (const char *)st->blocks - base,
                          l.blocks_at);
        sc_layout_differs(p, &diff, "tombstones at byte", (const char *)st->tombs - base,
                          l.tombs_at);
        sc_layout_differs(p, &diff, "location index entries", h->loc_index_size, l.nlocix);
        sc_layout_differs(p, &diff, "location index at byte",
                          (const char *)st->loc_index - base, l.locix_at);
        sc_layout_differs(p, &diff, "locations", h->loc_size, l.nlocs);
        sc_layout_differs(p, &diff, "locations at byte", (const char *)st->locs - base,
                          l.locs_at);
    }
    return diff;
}

static sc_sess *slot(sc_store *st, apr_int32_t i)
{
    return &st->slots[i];
}

/* Block n (0-based): its link (the next block + 1, 0: the last), and its
 * BLOCK_DATA bytes. */
static apr_uint32_t *block_next(sc_store *st, apr_uint32_t n)
{
    return &st->block_nexts[n];
}

static unsigned char *block_data(sc_store *st, apr_uint32_t n)
{
    return st->blocks + (apr_size_t)n * SC_STORE_BLOCK;
}

/* Asks for block n's cache lines ahead of their use (write: to be written). */
static void block_prefetch(sc_store *st, apr_uint32_t n, int write)
{
#if defined(__GNUC__)
    const unsigned char *b = st->blocks + (apr_size_t)n * SC_STORE_BLOCK;
    if (write) {
        __builtin_prefetch(b, 1);
        __builtin_prefetch(b + SC_STORE_BLOCK - 1, 1);
    }
    else {
        __builtin_prefetch(b, 0);
        __builtin_prefetch(b + SC_STORE_BLOCK - 1, 0);
    }
#else
    (void)st;
    (void)n;
    (void)write;
#endif
}

/* Takes blocks for len bytes and fills them with data: the chain's first
 * block + 1 (0 for no data) in *head.  0, or -1 when the store has no blocks
 * left.  The chain is the writer's own until it is swapped into a slot. */
static int chain_new(sc_store *st, const char *data, apr_uint32_t len, apr_uint32_t *head)
{
    sc_store_hdr *h = st->hdr;
    apr_uint32_t need = (apr_uint32_t)blocks_for(len), got = 0, first = 0, last = 0, off;

    *head = 0;
    if (!need) {
        return 0;
    }
    lock_take(&h->data_lock);
    /* within the blocks laid out, and the budget: these blocks with those
     * in use and the slots of the sessions held (a count read racing a new
     * session: a figure a slot off at most) */
    if (h->nblocks - h->blocks_used < need
        || ((apr_uint64_t)h->blocks_used + need) * SC_STORE_BLOCK_COST
           + (apr_uint64_t)__atomic_load_n(&h->count, __ATOMIC_RELAXED) * sizeof(sc_sess)
           > h->budget) {
        lock_give(&h->data_lock);
        return -1;
    }
    /* freed blocks first (they are resident already), linked as they are */
    if (h->free_block) {
        first = last = h->free_block - 1;
        got = 1;
        while (got < need && *block_next(st, last)) {
            last = *block_next(st, last) - 1;
            got++;
        }
        h->free_block = *block_next(st, last);
    }
    /* then new ones from the top */
    for (; got < need; got++) {
        apr_uint32_t b = h->block_hwm++;
        if (got) {
            *block_next(st, last) = b + 1;
        }
        else {
            first = b;
        }
        last = b;
    }
    *block_next(st, last) = 0;
    h->blocks_used += need;
    lock_give(&h->data_lock);

    /* full blocks with a copy of constant size (inlined, no call per
     * block), the next block's lines asked for before this one is written:
     * a 32 KB session is some 260 blocks, and a block last written on the
     * other core costs a miss per line otherwise waited for in turn */
    for (off = 0, got = first; len - off > BLOCK_DATA; off += BLOCK_DATA) {
        apr_uint32_t next = *block_next(st, got) - 1;
        block_prefetch(st, next, 1);
        memcpy(block_data(st, got), data + off, BLOCK_DATA);
        got = next;
    }
    if (len > off) {
        memcpy(block_data(st, got), data + off, len - off);
    }
    *head = first + 1;
    return 0;
}

/* Gives a chain back (no longer in any slot; readers that raced the swap
 * see the slot's sequence move and read again). */
static void chain_free(sc_store *st, apr_uint32_t head)
{
    sc_store_hdr *h = st->hdr;
    apr_uint32_t last, n = 1;
    if (!head || head > h->nblocks) {
        return;
    }
    for (last = head - 1; *block_next(st, last) && n <= h->nblocks; n++) {
        last = *block_next(st, last) - 1;
    }
    lock_take(&h->data_lock);
    *block_next(st, last) = h->free_block;
    h->free_block = head;
    h->blocks_used -= n;
    lock_give(&h->data_lock);
}

/* ---- a slot's writes ----
 * Under the slot's lock (one of the table: sc_store.h): write_open saves
 * what readers see in the lock's undo record, with the slot's number, and
 * makes the sequence odd; write_close makes it even again.  Whoever takes
 * the lock of a writer that died between the two finds that slot's sequence
 * odd and undoes the write: undo back into cur (the version before the
 * write: id, times, stamp, chain), the chain the dead writer had swapped in
 * given back, the sequence even. */
static sc_slot_lock *lock_of(sc_store *st, const sc_sess *s)
{
    return &st->locks[(apr_size_t)(s - st->slots) & (st->hdr->nlocks - 1)];
}

static void write_open(sc_store *st, sc_sess *s)
{
    sc_slot_lock *l = lock_of(st, s);
    l->undo = s->cur;
    l->patched = 0;
    l->writing = (apr_uint32_t)(s - st->slots) + 1;
    sc_shm_write_begin(&s->seq);   /* its fences order the copy before the write */
}

static void write_close(sc_sess *s)
{
    sc_shm_write_end(&s->seq);
}

static void slot_repair(sc_store *st, sc_slot_lock *l)
{
    apr_uint32_t dead_chain, w = l->writing;
    sc_sess *s;
    /* the one slot whose sequence the dead holder could have left odd */
    if (!w || w > st->hdr->capacity
        || ((w - 1) & (st->hdr->nlocks - 1)) != (apr_uint32_t)(l - st->locks)) {
        return;
    }
    s = &st->slots[w - 1];
    if (!(__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) & 1)) {
        return;                       /* it died before or after its write */
    }
    dead_chain = s->cur.head;
    /* the bytes it wrote in place (patch_write): as they were before it */
    if (l->patched <= SC_STORE_PATCH) {
        apr_uint32_t k, used = 0;
        for (k = 0; k < l->patched; k++) {
            const sc_patch_range *r = &l->patch[k];
            if (r->block < st->hdr->nblocks && r->at + r->len <= BLOCK_DATA
                && used + r->len <= SC_STORE_PATCH_BYTES) {
                memcpy(block_data(st, r->block) + r->at, l->patch_old + used, r->len);
            }
            used += r->len;
        }
    }
    /* the bytes back before the count goes (a repairer that dies here
     * leaves the next one the same work) */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    l->patched = 0;
    s->cur = l->undo;
    sc_shm_write_end(&s->seq);
    /* the dead writer's own chain, if it got into the slot (readers never
     * validated a read of it: the sequence was odd) */
    if (dead_chain && dead_chain != s->cur.head) {
        chain_free(st, dead_chain);
    }
    __atomic_add_fetch(&st->hdr->writes_undone, 1, __ATOMIC_RELAXED);
}

static void slot_lock(sc_store *st, sc_sess *s)
{
    sc_slot_lock *l = lock_of(st, s);
    if (lock_raw(&l->lock)) {
        slot_repair(st, l);
        pthread_mutex_consistent(&l->lock);
    }
}

static void slot_unlock(sc_store *st, sc_sess *s)
{
    pthread_mutex_unlock(&lock_of(st, s)->lock);
}

/* Copies len bytes of a chain into out (len + 1 bytes, NUL-terminated).
 * -1 if the chain is shorter or leaves the block area: a reader racing a
 * writer, which reads again. */
static int chain_copy(sc_store *st, apr_uint32_t head, apr_uint32_t len, char *out)
{
    apr_uint32_t off = 0, b = head, nblocks = st->hdr->nblocks;
    /* the next block's number read first and its lines asked for, so that
     * its misses overlap this block's copy (chain_new) */
    while (len - off > BLOCK_DATA) {
        apr_uint32_t next;
        if (!b || b > nblocks) {
            return -1;
        }
        next = __atomic_load_n(block_next(st, b - 1), __ATOMIC_RELAXED);
        if (next && next <= nblocks) {
            block_prefetch(st, next - 1, 0);
        }
        memcpy(out + off, block_data(st, b - 1), BLOCK_DATA);
        off += BLOCK_DATA;
        b = next;
    }
    if (len > off) {
        if (!b || b > nblocks) {
            return -1;
        }
        memcpy(out + off, block_data(st, b - 1), len - off);
    }
    out[len] = '\0';
    return 0;
}

/* A session is known by its id's base, the part before the first '.' (and
 * before msm's "-<node id>", sc_msm.h): the route after it may change
 * (JvmRouteBinderValve re-binds a session to the member that took it over),
 * as may the session server node it names, and every id with the same base
 * names the same session. */
static apr_size_t base_len(const char *id)
{
    return strcspn(id, "-.");
}

int sc_store_same(const char *a, const char *b)
{
    apr_size_t n = base_len(a);
    return n == base_len(b) && !memcmp(a, b, n);
}

static apr_uint32_t hash_id(const char *id)
{
    apr_uint32_t h = 2166136261u;
    for (; *id && *id != '.' && *id != '-'; id++) {
        h = (h ^ (unsigned char)*id) * 16777619u;
    }
    return h;
}

/* Can a and b name the same session?  0 when their first characters say
 * not (a base's first, or both bases empty): most entries a lookup passes,
 * without sc_store_same's two scans. */
static int is_base_end(char c)
{
    return c == '.' || c == '-' || c == '\0';
}

static int maybe_same(const char *a, const char *b)
{
    return a[0] == b[0] || (is_base_end(a[0]) && is_base_end(b[0]));
}

/* Index position of id (under the index lock or racing readers: a reader that
 * misses an entry being inserted just does not find the new session yet). */
static apr_int32_t index_find(sc_store *st, const char *id, apr_uint32_t *pos_out)
{
    apr_uint32_t mask = st->hdr->index_size - 1, pos = hash_id(id) & mask, n;
    for (n = 0; n <= mask; n++, pos = (pos + 1) & mask) {
        apr_int32_t v = __atomic_load_n(&st->index[pos], __ATOMIC_ACQUIRE);
        if (v == EMPTY) {
            return -1;
        }
        if (v > 0 && maybe_same(slot(st, v - 1)->cur.id, id)
            && sc_store_same(slot(st, v - 1)->cur.id, id)) {
            if (pos_out) {
                *pos_out = pos;
            }
            return v - 1;
        }
    }
    return -1;
}

void sc_store_prefetch(sc_store *st, const char *id, int slot_too)
{
    apr_uint32_t pos = hash_id(id) & (st->hdr->index_size - 1);
    if (!slot_too) {
        __builtin_prefetch(&st->index[pos]);
    }
    else {
        apr_int32_t v = __atomic_load_n(&st->index[pos], __ATOMIC_RELAXED);
        if (v > 0 && (apr_uint32_t)v <= st->hdr->capacity) {
            __builtin_prefetch(slot(st, v - 1)->cur.id);
        }
    }
}

/* ---- tombstones (under the index lock) ---- */

static apr_time_t tomb_life(apr_int64_t seconds)
{
    if (seconds <= 0 || seconds > SC_TOMB_MAX_S) {
        seconds = SC_TOMB_MAX_S;        /* never expires: the longest */
    }
    else if (seconds < SC_TOMB_MIN_S) {
        seconds = SC_TOMB_MIN_S;
    }
    return apr_time_from_sec(seconds);
}

static int tomb_is(const sc_tomb *t, apr_uint32_t h, const char *id, apr_size_t n)
{
    return t->hash == h && t->len == n && !memcmp(t->base, id, n);
}

/* The live tombstone of id, or NULL. */
static sc_tomb *tomb_find(sc_store *st, const char *id, apr_time_t now)
{
    apr_size_t n;
    apr_uint32_t h, mask = st->hdr->tomb_size - 1, k;
    /* none was ever set (a joining member's store): no entry to look at
     * (each lookup's entry would be a cache miss of its own) */
    if (!st->hdr->tomb_size || !st->hdr->tombs_set
        || (n = base_len(id)) >= SC_TOMB_BASE) {
        return NULL;
    }
    h = hash_id(id);
    for (k = 0; k < SC_TOMB_PROBE && k <= mask; k++) {
        sc_tomb *t = &st->tombs[(h + k) & mask];
        if (!t->until) {
            return NULL;                /* never used: nothing was put past it */
        }
        if (t->until > now && tomb_is(t, h, id, n)) {
            return t;
        }
    }
    return NULL;
}

/* Leaves (or lengthens) id's tombstone for 'life'. */
static void tomb_set(sc_store *st, const char *id, apr_time_t life)
{
    apr_size_t n = base_len(id);
    apr_uint32_t h = hash_id(id), mask = st->hdr->tomb_size - 1, k;
    apr_time_t now = apr_time_now();
    sc_tomb *use = NULL, *oldest = NULL;
    if (!st->hdr->tomb_size || n >= SC_TOMB_BASE) {
        return;
    }
    for (k = 0; k < SC_TOMB_PROBE && k <= mask; k++) {
        sc_tomb *t = &st->tombs[(h + k) & mask];
        if (t->until && tomb_is(t, h, id, n)) {
            use = t;                    /* its own, live or not */
            break;
        }
        if (!use && t->until <= now) {
            use = t;                    /* free (the first: a lookup stops at a never used one) */
        }
        if (!t->until) {
            break;
        }
        if (!oldest || t->until < oldest->until) {
            oldest = t;
        }
    }
    if (!use) {
        use = oldest;                   /* a full neighbourhood: the nearest its end goes */
        st->hdr->tombs_evicted++;
    }
    if (use->until && tomb_is(use, h, id, n) && use->until > now + life) {
        return;                         /* lives longer already */
    }
    use->hash = h;
    use->len = (apr_uint32_t)n;
    memset(use->base, 0, SC_TOMB_BASE);
    memcpy(use->base, id, n);
    use->until = now + life;
    st->hdr->tombs_set++;
}

int sc_store_dead(sc_store *st, const char *id)
{
    int dead;
    lock_take(&st->hdr->index_lock);
    dead = tomb_find(st, id, apr_time_now()) != NULL;
    lock_give(&st->hdr->index_lock);
    return dead;
}

void sc_store_set_tomb_default(sc_store *st, apr_int64_t seconds)
{
    st->hdr->tomb_default_s = (apr_uint32_t)(apr_time_sec(tomb_life(seconds)));
}

void sc_store_each_tomb(sc_store *st, apr_pool_t *p,
                        int (*fn)(void *ctx, const char *base), void *ctx)
{
    apr_array_header_t *ids = apr_array_make(p, 64, sizeof(const char *));
    apr_time_t now = apr_time_now();
    apr_uint32_t k;
    int i;
    lock_take(&st->hdr->index_lock);
    for (k = 0; k < st->hdr->tomb_size; k++) {
        sc_tomb *t = &st->tombs[k];
        if (t->until > now && t->len < SC_TOMB_BASE) {
            APR_ARRAY_PUSH(ids, const char *) = apr_pstrmemdup(p, t->base, t->len);
        }
    }
    lock_give(&st->hdr->index_lock);
    for (i = 0; i < ids->nelts; i++) {
        if (!fn(ctx, APR_ARRAY_IDX(ids, i, const char *))) {
            return;
        }
    }
}

/* Copies what s holds of session id into out (NOTFOUND: not that session);
 * *torn: its chain did not read whole (a reader racing a writer). */
static sc_store_rc copy_out(sc_store *st, sc_sess *s, const char *id, apr_pool_t *p,
                            sc_sess_copy *out, int *torn)
{
    apr_uint32_t len, head;
    *torn = 0;
    if (!s->cur.used || !sc_store_same(s->cur.id, id)) {
        return SC_STORE_NOTFOUND;
    }
    len = s->cur.data_len;
    head = s->cur.head;
    if (len > data_bound(st)) {
        len = 0;                      /* torn: the sequence check retries */
    }
    if (!out->data || len > out->data_len) {
        out->data = apr_palloc(p, len + 1);
    }
    memcpy(out->id, s->cur.id, SC_SID_MAX);
    out->id[SC_SID_MAX - 1] = '\0';
    out->version = s->cur.version;
    out->created = s->cur.created;
    out->last_access = s->cur.last_access;
    out->max_inactive = s->cur.max_inactive;
    out->hash = s->cur.hash;
    out->fork = s->cur.fork;
    out->flags = s->cur.flags;
    out->stamped = 0;
    out->read_slot = out->read_seq = 0;   /* (sc_store_get says where) */
    out->data_len = len;
    *torn = chain_copy(st, head, len, out->data) != 0;
    return SC_STORE_OK;
}

/* Optimistic reads that find a write in progress this many times in a row
 * give way to the slot's lock (a writer takes microseconds; one that does not
 * finish died, or is stopped). */
#define SC_READ_TRIES 256

/* Records an access to slot s (session id) at 'when', if later than the
 * last one.  read_seq (may be NULL): the sequence of a read of it; when the
 * touch is the only write since, it becomes the sequence after the touch,
 * which changes no byte of the data (sc_store_kept holds on). */
static void touch_slot(sc_store *st, sc_sess *s, const char *id, apr_time_t when,
                       apr_uint32_t *read_seq)
{
    slot_lock(st, s);
    if (s->cur.used && sc_store_same(s->cur.id, id) && when > s->cur.last_access) {
        int only = read_seq && __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == *read_seq;
        write_open(st, s);
        s->cur.last_access = when;
        write_close(s);
        if (only) {
            *read_seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        }
    }
    slot_unlock(st, s);
}

sc_store_rc sc_store_get(sc_store *st, apr_pool_t *p, const char *id, int touch,
                         sc_sess_copy *out)
{
    apr_int32_t i;
    sc_sess *s;
    int tries = 0, broken = 0, torn;
    sc_store_rc rc;

    if (strlen(id) >= SC_SID_MAX) {
        return SC_STORE_NOTFOUND;
    }
    i = index_find(st, id, NULL);
    if (i < 0) {
        return SC_STORE_NOTFOUND;
    }
    s = slot(st, i);
    out->data = NULL;
    for (;;) {
        apr_uint32_t before = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if ((before & 1) == 0) {
            rc = copy_out(st, s, id, p, out, &torn);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == before) {
                if (rc != SC_STORE_OK) {
                    return rc;
                }
                if (!torn) {
                    out->read_slot = (apr_uint32_t)i + 1;
                    out->read_seq = before;
                    break;
                }
                if (++broken > 3) {
                    return SC_STORE_NOTFOUND;   /* a chain no writer is changing */
                }
            }
        }
        if (++tries >= SC_READ_TRIES) {
            /* under the lock: waits for a live writer, undoes a dead one's write */
            slot_lock(st, s);
            rc = copy_out(st, s, id, p, out, &torn);
            out->read_slot = (apr_uint32_t)i + 1;
            out->read_seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
            slot_unlock(st, s);
            if (rc != SC_STORE_OK || torn) {
                return SC_STORE_NOTFOUND;
            }
            break;
        }
        if (tries > 64) {
            sched_yield();
        }
    }
    if (touch) {
        apr_time_t now = apr_time_now();
        int probation = sc_store_on_probation(out->created, out->last_access);
        /* idle too long: gone, even before the engine's sweep removes it, and
         * not to be revived by this access */
        if (sc_store_idled_out(now, out->last_access,
                               sc_store_idle_limit(st, out->created, out->last_access,
                                                   out->max_inactive))) {
            return SC_STORE_NOTFOUND;
        }
        /* an access within a second of the last one is not worth a write,
         * but the second request of a session on probation always is: it
         * ends the probation, here and (touched) on the other members */
        if (!probation && out->last_access > now - apr_time_from_sec(1)) {
            return SC_STORE_OK;
        }
        touch_slot(st, s, id, now > out->last_access ? now : out->last_access + 1,
                   &out->read_seq);
        __atomic_store_n(&s->touched, 1, __ATOMIC_RELAXED);
    }
    return SC_STORE_OK;
}

/* A slot for a new session (under the index lock): a freed one, else the
 * next never used (slot k < nlocks is the first of lock k's slots: the lock
 * is made with it, so that its page becomes resident only then); -1 when
 * all are taken. */
static apr_int32_t slot_take(sc_store *st)
{
    sc_store_hdr *h = st->hdr;
    if (h->free_slots) {
        return st->free_slots[--h->free_slots];
    }
    if (h->slot_hwm < h->capacity
        && (h->slot_hwm >= h->nlocks || lock_init(&st->locks[h->slot_hwm].lock) == 0)) {
        return (apr_int32_t)h->slot_hwm++;
    }
    return -1;
}

static void set_id(sc_sess *s, const char *id)
{
    memset(s->cur.id, 0, SC_SID_MAX);
    apr_cpystrn(s->cur.id, id, SC_SID_MAX);
}

static sc_store_rc remove_id(sc_store *st, const char *id, int tomb, int only_probation);

/* ---- probation (sc_store.h) ---- */

int sc_store_on_probation(apr_time_t created, apr_time_t last_access)
{
    return created == last_access;
}

apr_int64_t sc_store_idle_limit(const sc_store *st, apr_time_t created,
                                apr_time_t last_access, apr_int64_t max_inactive)
{
    apr_int64_t p = st->hdr->probation_s;
    if (p <= 0 || !sc_store_on_probation(created, last_access)) {
        return max_inactive;
    }
    return max_inactive <= 0 || max_inactive > p ? p : max_inactive;
}

void sc_store_set_probation(sc_store *st, apr_int64_t seconds)
{
    st->hdr->probation_s = seconds > 0 ? seconds : 0;
}

apr_uint32_t sc_store_origin(const char *addr)
{
    apr_uint32_t h = 2166136261u;
    for (; addr && *addr; addr++) {
        h = (h ^ (unsigned char)*addr) * 16777619u;
    }
    return h ? h : 1;
}

int sc_store_line_due(apr_time_t *last, apr_uint64_t n, apr_time_t now)
{
    apr_time_t was = __atomic_load_n(last, __ATOMIC_RELAXED);
    if (n <= SC_FLOOD_LINES) {
        __atomic_store_n(last, now, __ATOMIC_RELAXED);
        return 1;
    }
    if (now - was < apr_time_from_sec(SC_FLOOD_LINE_S)) {
        return 0;
    }
    /* one process of those that found it due logs */
    return __atomic_compare_exchange_n(last, &was, now, 0, __ATOMIC_RELAXED,
                                       __ATOMIC_RELAXED);
}

/* Makes room for a new session (for_id) in a full store: the oldest session
 * on probation among SC_EVICT_LOOK slots from a place the new id picks (ids
 * are random), one of the same origin first, is removed without a tombstone.
 * 1 if one was (*idle: how long it had been idle), 0 if none gave way.  The
 * slots are looked at without their locks (a hint); the choice is checked
 * under the locks, and a session that saw a second request meanwhile stays. */
static int evict_one(sc_store *st, const char *for_id, apr_uint32_t origin, apr_time_t *idle)
{
    apr_uint32_t top = __atomic_load_n(&st->hdr->slot_hwm, __ATOMIC_RELAXED), n, start;
    apr_int32_t best = -1;
    int best_same = 0, ok;
    apr_time_t best_t = 0;
    char id[SC_SID_MAX];
    sc_sess *s;

    if (st->hdr->probation_s <= 0 || !top) {
        return 0;
    }
    start = hash_id(for_id) % top;
    for (n = 0; n < top && n < SC_EVICT_LOOK; n++) {
        apr_int32_t k = (apr_int32_t)((start + n) % top);
        apr_time_t c, a;
        int same;
        s = slot(st, k);
        if (!__atomic_load_n(&s->cur.used, __ATOMIC_RELAXED)) {
            continue;
        }
        c = __atomic_load_n(&s->cur.created, __ATOMIC_RELAXED);
        a = __atomic_load_n(&s->cur.last_access, __ATOMIC_RELAXED);
        if (!sc_store_on_probation(c, a)) {
            continue;
        }
        same = origin && __atomic_load_n(&s->cur.origin, __ATOMIC_RELAXED) == origin;
        if (best < 0 || same > best_same || (same == best_same && a < best_t)) {
            best = k;
            best_same = same;
            best_t = a;
        }
    }
    if (best < 0) {
        return 0;
    }
    s = slot(st, best);
    slot_lock(st, s);
    ok = s->cur.used && sc_store_on_probation(s->cur.created, s->cur.last_access);
    if (ok) {
        memcpy(id, s->cur.id, SC_SID_MAX);
        id[SC_SID_MAX - 1] = '\0';
        best_t = s->cur.last_access;
    }
    slot_unlock(st, s);
    if (!ok || remove_id(st, id, 0, 1) != SC_STORE_OK) {
        return 0;
    }
    __atomic_add_fetch(&st->hdr->evicted, 1, __ATOMIC_RELAXED);
    if (idle) {
        *idle = apr_time_now() - best_t;
    }
    return 1;
}

#define SC_EVICT_TRIES 3              /* evictions one new session may make */

/* Do the n (at most BLOCK_DATA) bytes at a and at b differ?  A whole block
 * is looked at 32 bytes a step, without a call. */
static int block_differs(const unsigned char *a, const unsigned char *b, apr_uint32_t n)
{
#if defined(__GNUC__)
    if (n == BLOCK_DATA) {
        typedef apr_uint64_t v4 __attribute__((vector_size(32)));
        v4 x = { 0, 0, 0, 0 }, p, q;
        apr_uint32_t i;
        for (i = 0; i < BLOCK_DATA; i += sizeof(p)) {
            memcpy(&p, a + i, sizeof(p));
            memcpy(&q, b + i, sizeof(q));
            x |= p ^ q;
        }
        return (x[0] | x[1] | x[2] | x[3]) != 0;
    }
#endif
    return memcmp(a, b, n) != 0;
}

/* A write in place (sc_store.h, "Writes in place"): the bytes of the
 * version it replaces that differ from the new data, a range a block (its
 * first byte that differs to its last), when there are at most
 * SC_STORE_PATCH such blocks and SC_STORE_PATCH_BYTES such bytes and both
 * have the same number of blocks. */
typedef struct {
    apr_int32_t slot;                 /* -1: no write in place */
    apr_uint32_t seq;                 /* the slot's sequence when compared */
    apr_uint32_t n, bytes;
    sc_patch_range r[SC_STORE_PATCH];
    apr_uint32_t off[SC_STORE_PATCH]; /* where its block starts in the data */
} patch_plan;

/* Is [from, to) of the data within one range of kept, from index k on (the
 * ranges before k end before from)? */
static int kept_covers(const sc_store_kept *kept, int k, apr_uint32_t from, apr_uint32_t to)
{
    for (; k < kept->n && kept->r[k].off <= from; k++) {
        if (kept->r[k].off + kept->r[k].len >= to) {
            return 1;
        }
    }
    return 0;
}

/* The bytes [*first, *end) of a block (0 <= *first < *end <= fill) from
 * the first that differs to the last, comparing the block's bytes 'at'
 * with 'want' (its part of the data, starting 'off' bytes into the data)
 * except within the ranges of kept (those from index *k on may touch this
 * block; *k moves past the ones that end in it).  0 if none differs. */
static int block_range(const unsigned char *at, const unsigned char *want, apr_uint32_t off,
                       apr_uint32_t fill, const sc_store_kept *kept, int *k,
                       apr_uint32_t *first, apr_uint32_t *end)
{
    apr_uint32_t pos = 0, f = 0, e = 0;
    int found = 0;
    if (!kept) {
        if (!block_differs(at, want, fill)) {
            return 0;
        }
        for (f = 0; f < fill && at[f] == want[f]; f++) {
        }
        if (f == fill) {
            return 0;                 /* (changed meanwhile: the plan is dropped) */
        }
        for (e = fill; e > f && at[e - 1] == want[e - 1]; e--) {
        }
        *first = f;
        *end = e;
        return 1;
    }
    while (pos < fill) {
        apr_uint32_t seg_end, a, z;
        const sc_store_range *r;
        while (*k < kept->n && kept->r[*k].off + kept->r[*k].len <= off + pos) {
            ++*k;
        }
        r = *k < kept->n ? &kept->r[*k] : NULL;
        if (r && r->off <= off + pos) {
            /* copied from the version read: the same bytes */
            pos = r->off + r->len - off < fill ? r->off + r->len - off : fill;
            continue;
        }
        seg_end = r && r->off - off < fill ? r->off - off : fill;
        /* (bounded scans: a writer may change the block between the
         * comparison and them; the sequence check then drops the plan) */
        if (block_differs(at + pos, want + pos, seg_end - pos)) {
            for (a = pos; a < seg_end && at[a] == want[a]; a++) {
            }
            for (z = seg_end; z > a && at[z - 1] == want[z - 1]; z--) {
            }
        }
        else {
            a = z = seg_end;
        }
        if (a < z) {
            if (!found) {
                f = a;
                found = 1;
            }
            e = z;
        }
        pos = seg_end;
    }
    *first = f;
    *end = e;
    return found;
}

/* Compares data with session id's version as it is (lock-free, as a reader:
 * the comparison holds only if the slot's sequence has not moved when the
 * write takes the lock) and plans the write in place when it can be one.
 * kept (may be NULL): the parts the writer copied from the version it read,
 * not compared while the slot is still as it was read. */
static void patch_plan_make(sc_store *st, const char *id, const char *data, apr_uint32_t len,
                            const sc_store_kept *kept, patch_plan *pl)
{
    apr_uint32_t before, old_len, b, off, nblocks = st->hdr->nblocks;
    apr_int32_t i;
    int k = 0;
    sc_sess *s;

    pl->slot = -1;
    pl->n = pl->bytes = 0;
    if (!len || (i = index_find(st, id, NULL)) < 0) {
        return;
    }
    s = slot(st, i);
    before = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
    if (before & 1) {
        return;
    }
    old_len = s->cur.data_len;
    b = s->cur.head;
    if (!s->cur.used || !sc_store_same(s->cur.id, id) || blocks_for(old_len) != blocks_for(len)) {
        return;
    }
    if (kept && (kept->read_slot != (apr_uint32_t)i + 1 || kept->read_seq != before
                 || kept->n <= 0)) {
        kept = NULL;                  /* written since that read: all compared */
    }
    /* a block's bytes past the new data's end (the last block's, when the
     * data is shorter) are not looked at: no reader reads them */
    for (off = 0; off < len; off += BLOCK_DATA) {
        apr_uint32_t fill = len - off < BLOCK_DATA ? len - off : BLOCK_DATA;
        const unsigned char *at, *want = (const unsigned char *)data + off;
        apr_uint32_t next, first, end;
        if (!b || b > nblocks) {
            return;                   /* torn: a writer swapped the chain */
        }
        next = __atomic_load_n(block_next(st, b - 1), __ATOMIC_RELAXED);
        while (kept && k < kept->n && kept->r[k].off + kept->r[k].len <= off) {
            k++;                      /* ended before this block */
        }
        if (kept && kept_covers(kept, k, off, off + fill)) {
            b = next;                 /* none of its bytes to compare */
            continue;
        }
        if (next && next <= nblocks
            && !(kept && kept_covers(kept, k, off + BLOCK_DATA, off + 2 * BLOCK_DATA))) {
            block_prefetch(st, next - 1, 0);
        }
        at = block_data(st, b - 1);
        if (block_range(at, want, off, fill, kept, &k, &first, &end)) {
            if (pl->n == SC_STORE_PATCH || pl->bytes + (end - first) > SC_STORE_PATCH_BYTES) {
                return;
            }
            pl->r[pl->n].block = b - 1;
            pl->r[pl->n].at = (apr_uint16_t)first;
            pl->r[pl->n].len = (apr_uint16_t)(end - first);
            pl->bytes += end - first;
            pl->off[pl->n++] = off;
        }
        b = next;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (b || __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != before) {
        return;
    }
    pl->slot = i;
    pl->seq = before;
}

/* The planned ranges written in place (under the slot's lock, its write
 * open): their bytes saved in the lock's undo record first, so that whoever
 * repairs after a writer that died here puts them back. */
static void patch_write(sc_store *st, sc_sess *s, const patch_plan *pl, const char *data)
{
    sc_slot_lock *l = lock_of(st, s);
    apr_uint32_t k, used = 0;
    for (k = 0; k < pl->n; k++) {
        l->patch[k] = pl->r[k];
        memcpy(l->patch_old + used, block_data(st, pl->r[k].block) + pl->r[k].at, pl->r[k].len);
        used += pl->r[k].len;
    }
    /* the saved bytes before their count, and their count before any is
     * written over (a dead process's stores are all seen, in order: only
     * the compiler's order matters here) */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    l->patched = pl->n;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    for (k = 0; k < pl->n; k++) {
        memcpy(block_data(st, pl->r[k].block) + pl->r[k].at, data + pl->off[k] + pl->r[k].at,
               pl->r[k].len);
    }
}

/* A chain of its own for data (chain_new); over the budget, a session on
 * probation gives way, as for a slot (put). */
static sc_store_rc chain_build(sc_store *st, const char *id, const char *data, apr_uint32_t len,
                               apr_uint32_t origin, int *evictions, apr_time_t *evicted_idle,
                               apr_uint32_t *chain)
{
    while (chain_new(st, data, len, chain) != 0) {
        if (*evictions < SC_EVICT_TRIES
            && evict_one(st, id, origin, *evictions ? NULL : evicted_idle)) {
            (*evictions)++;
            continue;
        }
        __atomic_add_fetch(&st->hdr->rejected_full, 1, __ATOMIC_RELAXED);
        return SC_STORE_FULL;
    }
    return SC_STORE_OK;
}

static void stamp_write(sc_store *st, sc_sess_rec *r, const sc_stamp *take, int replica,
                        const sc_stamp *prev, apr_uint64_t hash);

/* take: the stamp of a copy taken by the rule (sc_store_take), NULL for a
 * request's write (stamped here) or an unstamped replica (force_version). */
static sc_store_rc put(sc_store *st, const char *id, const char *data, apr_uint32_t len,
                       apr_uint64_t base_version, apr_uint64_t force_version,
                       apr_time_t created, apr_time_t last_access, apr_int64_t max_inactive,
                       apr_uint32_t origin, apr_uint64_t *new_version, apr_time_t *evicted_idle,
                       const sc_stamp *take, apr_uint64_t known_hash, const sc_store_kept *kept)
{
    apr_int32_t i;
    sc_sess *s;
    sc_store_rc rc = SC_STORE_OK;
    apr_uint32_t chain = 0, old_chain = 0;
    apr_uint64_t hash;
    int evictions = 0, patch, rebuild = 0;
    patch_plan plan;

    if (evicted_idle) {
        *evicted_idle = -1;
    }

    if (__atomic_load_n(&st->hdr->moved, __ATOMIC_ACQUIRE)) {
        return SC_STORE_MOVED;
    }
    if (len > st->hdr->slot_data) {
        __atomic_add_fetch(&st->hdr->rejected_size, 1, __ATOMIC_RELAXED);
        return SC_STORE_TOOBIG;
    }
    if (strlen(id) >= SC_SID_MAX) {
        return SC_STORE_TOOBIG;
    }
    /* the version's hash before any lock is taken: a pass over the data
     * (some microseconds for 32 KB) that the slot's lock-free readers would
     * otherwise wait for (and, for a new session, every writer of one) */
    hash = take && take->hash ? take->hash : known_hash ? known_hash : sc_store_hash(data, len);
    /* the data first: compared with the version it replaces for a write in
     * place, else in blocks of its own (a copy taken by the rule is always
     * a chain of its own) */
    plan.slot = -1;
    plan.seq = plan.n = plan.bytes = 0;
    if (!take && !origin) {
        /* (origin: a request's new session, sc_store_put_new: nothing to
         * compare with) */
        patch_plan_make(st, id, data, len, kept, &plan);
    }
    if (plan.slot < 0
        && (rc = chain_build(st, id, data, len, origin, &evictions, evicted_idle, &chain))
           != SC_STORE_OK) {
        return rc;
    }
again:
    lock_take(&st->hdr->index_lock);
    if (__atomic_load_n(&st->hdr->moved, __ATOMIC_ACQUIRE)) {
        lock_give(&st->hdr->index_lock);
        chain_free(st, chain);
        return SC_STORE_MOVED;        /* sc_store_move: set under this lock */
    }
    i = index_find(st, id, NULL);
    if (i < 0 && ((base_version && !force_version)
                  || tomb_find(st, id, apr_time_now()))) {
        /* an update of a session no longer here (removed since the writer
         * read it), or one whose id is dead: not created again */
        rc = base_version && !force_version && !tomb_find(st, id, apr_time_now())
             ? SC_STORE_NOTFOUND : SC_STORE_DEAD;
        st->hdr->dead_refused++;
        lock_give(&st->hdr->index_lock);
        chain_free(st, chain);
        return rc;
    }
    if (i < 0 && !chain && len) {
        /* planned in place, and removed since: a new session's own chain */
        lock_give(&st->hdr->index_lock);
        plan.slot = -1;
        if ((rc = chain_build(st, id, data, len, origin, &evictions, evicted_idle, &chain))
            != SC_STORE_OK) {
            return rc;
        }
        goto again;
    }
    if (i < 0) {
        /* a new session: a free slot and an index position.  The position is
         * taken before the slot is written (lookups skip it until the id is
         * there), so that a writer dying anywhere leaves no session that the
         * index does not find. */
        apr_uint32_t mask = st->hdr->index_size - 1, pos = hash_id(id) & mask, n;
        sc_store_hdr *h = st->hdr;
        apr_uint32_t most = h->count_limit && h->count_limit < h->capacity
                            ? h->count_limit : h->capacity;
        apr_int32_t k = h->count < most
                        && ((apr_uint64_t)h->count + 1) * sizeof(sc_sess)
                           + (apr_uint64_t)__atomic_load_n(&h->blocks_used, __ATOMIC_RELAXED)
                             * SC_STORE_BLOCK_COST <= h->budget
                        ? slot_take(st) : -1;
        if (k < 0) {
            lock_give(&st->hdr->index_lock);
            /* full: a session on probation gives way (another writer may
             * take the slot it frees first: a few tries) */
            if (evictions < SC_EVICT_TRIES
                && evict_one(st, id, origin, evictions ? NULL : evicted_idle)) {
                evictions++;
                goto again;
            }
            chain_free(st, chain);
            __atomic_add_fetch(&st->hdr->rejected_full, 1, __ATOMIC_RELAXED);
            return SC_STORE_FULL;
        }
        s = slot(st, k);
        slot_lock(st, s);
        for (n = 0; n <= mask; n++, pos = (pos + 1) & mask) {
            if (st->index[pos] <= 0) {
                __atomic_store_n(&st->index[pos], k + 1, __ATOMIC_RELEASE);
                break;
            }
        }
        write_open(st, s);
        set_id(s, id);
        s->cur.used = 1;
        s->touched = 0;
        s->cur.version = force_version ? force_version : 1;
        s->cur.created = created;
        s->cur.last_access = last_access;
        s->cur.max_inactive = max_inactive;
        s->cur.origin = origin;
        s->cur.head = chain;
        s->cur.data_len = len;
        stamp_write(st, &s->cur, take, force_version != 0, NULL, hash);
        write_close(s);
        *new_version = s->cur.version;
        slot_unlock(st, s);
        st->hdr->count++;
        st->hdr->created++;
        lock_give(&st->hdr->index_lock);
        return SC_STORE_OK;
    }
    lock_give(&st->hdr->index_lock);

    s = slot(st, i);
    slot_lock(st, s);
    /* in place only over the version compared (no write since: the
     * sequence moves with every one) */
    patch = plan.slot == i && __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == plan.seq;
    if (__atomic_load_n(&st->hdr->moved, __ATOMIC_ACQUIRE)) {
        rc = SC_STORE_MOVED;          /* the mover copied this slot, or will
                                       * find it so; either way not here */
    }
    else if (!s->cur.used || !sc_store_same(s->cur.id, id)) {
        rc = SC_STORE_NOTFOUND;
    }
    else if (!force_version && base_version && base_version != s->cur.version) {
        *new_version = s->cur.version;
        rc = SC_STORE_STALE;
    }
    else if (force_version && force_version <= s->cur.version) {
        *new_version = s->cur.version;    /* an older or repeated replica */
        rc = SC_STORE_STALE;
    }
    else if (!force_version && base_version && (s->cur.flags & SC_SF_REPLACED)) {
        /* the version read was replaced by a concurrent copy of the same
         * number (sc_store_take): the writer merges onto it, once */
        write_open(st, s);
        s->cur.flags &= ~SC_SF_REPLACED;
        write_close(s);
        *new_version = s->cur.version;
        rc = SC_STORE_STALE;
    }
    else if (!patch && !chain && len) {
        rebuild = 1;                  /* written since it was compared */
    }
    else {
        sc_stamp prev;
        prev.version = s->cur.version;
        prev.hash = s->cur.hash;
        prev.fork = s->cur.fork;
        prev.flags = s->cur.flags;
        write_open(st, s);
        if (patch) {
            patch_write(st, s, &plan, data);
        }
        stamp_write(st, &s->cur, take, force_version != 0, &prev, hash);
        if (force_version && strcmp(s->cur.id, id) != 0) {
            /* a replica carries the id as its writer has it (re-bound) */
            set_id(s, id);
        }
        s->cur.version = force_version ? force_version : s->cur.version + 1;
        if (last_access > s->cur.last_access) {
            s->cur.last_access = last_access;
        }
        s->cur.max_inactive = max_inactive;
        if (!patch) {
            old_chain = s->cur.head;
            s->cur.head = chain;
        }
        s->cur.data_len = len;
        write_close(s);
        *new_version = s->cur.version;
        chain = 0;
        __atomic_add_fetch(&st->hdr->updated, 1, __ATOMIC_RELAXED);
        if (patch) {
            __atomic_add_fetch(&st->hdr->updated_in_place, 1, __ATOMIC_RELAXED);
        }
    }
    slot_unlock(st, s);
    if (rebuild) {
        rebuild = 0;
        plan.slot = -1;
        if ((rc = chain_build(st, id, data, len, origin, &evictions, evicted_idle, &chain))
            != SC_STORE_OK) {
            return rc;
        }
        goto again;
    }
    chain_free(st, chain);            /* not stored */
    chain_free(st, old_chain);        /* replaced */
    return rc;
}

sc_store_rc sc_store_put(sc_store *st, const char *id, const char *data, apr_uint32_t len,
                         apr_uint64_t base_version, apr_uint64_t force_version,
                         apr_time_t created, apr_time_t last_access,
                         apr_int64_t max_inactive, apr_uint64_t *new_version)
{
    return put(st, id, data, len, base_version, force_version, created, last_access,
               max_inactive, 0, new_version, NULL, NULL, 0, NULL);
}

sc_store_rc sc_store_put_hashed(sc_store *st, const char *id, const char *data,
                                apr_uint32_t len, apr_uint64_t base_version, apr_time_t now,
                                apr_int64_t max_inactive, apr_uint64_t hash,
                                const sc_store_kept *kept, apr_uint64_t *new_version)
{
    return put(st, id, data, len, base_version, 0, 0, now, max_inactive, 0, new_version,
               NULL, NULL, hash, kept);
}

sc_store_rc sc_store_put_new(sc_store *st, const char *id, const char *data, apr_uint32_t len,
                             apr_time_t now, apr_int64_t max_inactive, apr_uint32_t origin,
                             apr_uint64_t *new_version, apr_time_t *evicted_idle)
{
    return put(st, id, data, len, 0, 0, now, now, max_inactive, origin, new_version,
               evicted_idle, NULL, 0, NULL);
}

/* Removes id, leaving its tombstone when tomb; only_probation: only while
 * it is on probation (STALE when it is not). */
static sc_store_rc remove_id(sc_store *st, const char *id, int tomb, int only_probation)
{
    apr_uint32_t pos, chain;
    apr_int32_t i;
    sc_sess *s;
    lock_take(&st->hdr->index_lock);
    if (__atomic_load_n(&st->hdr->moved, __ATOMIC_ACQUIRE)) {
        lock_give(&st->hdr->index_lock);
        return SC_STORE_MOVED;        /* sc_store_move: set under this lock */
    }
    i = index_find(st, id, &pos);
    if (i < 0) {
        /* not held here (yet): its id is dead all the same */
        if (tomb) {
            tomb_set(st, id, tomb_life(st->hdr->tomb_default_s));
        }
        lock_give(&st->hdr->index_lock);
        return SC_STORE_NOTFOUND;
    }
    s = slot(st, i);
    slot_lock(st, s);
    if (!s->cur.used || !sc_store_same(s->cur.id, id)) {
        /* a writer died making it (undone): its index position stays, unused */
        slot_unlock(st, s);
        if (tomb) {
            tomb_set(st, id, tomb_life(st->hdr->tomb_default_s));
        }
        lock_give(&st->hdr->index_lock);
        return SC_STORE_NOTFOUND;
    }
    if (only_probation && !sc_store_on_probation(s->cur.created, s->cur.last_access)) {
        slot_unlock(st, s);
        lock_give(&st->hdr->index_lock);
        return SC_STORE_STALE;        /* a second request came meanwhile */
    }
    if (tomb) {
        tomb_set(st, id, tomb_life(s->cur.max_inactive));
    }
    write_open(st, s);
    s->cur.used = 0;
    s->cur.data_len = 0;
    s->cur.id[0] = '\0';
    chain = s->cur.head;
    s->cur.head = 0;
    write_close(s);
    slot_unlock(st, s);
    __atomic_store_n(&st->index[pos], DELETED, __ATOMIC_RELEASE);
    st->free_slots[st->hdr->free_slots++] = i;
    st->hdr->count--;
    st->hdr->removed++;
    lock_give(&st->hdr->index_lock);
    chain_free(st, chain);
    return SC_STORE_OK;
}

sc_store_rc sc_store_remove(sc_store *st, const char *id)
{
    return remove_id(st, id, 1, 0);
}

sc_store_rc sc_store_drop(sc_store *st, const char *id)
{
    return remove_id(st, id, 0, 0);
}

sc_store_rc sc_store_drop_probation(sc_store *st, const char *id)
{
    return remove_id(st, id, 0, 1);
}

sc_store_rc sc_store_rebind(sc_store *st, const char *new_id, const char *expect,
                            char *was)
{
    apr_int32_t i;
    sc_sess *s;
    sc_store_rc rc = SC_STORE_OK;

    if (strlen(new_id) >= SC_SID_MAX) {
        return SC_STORE_TOOBIG;
    }
    i = index_find(st, new_id, NULL);
    if (i < 0) {
        return SC_STORE_NOTFOUND;
    }
    s = slot(st, i);
    slot_lock(st, s);
    if (!s->cur.used || !sc_store_same(s->cur.id, new_id)) {
        rc = SC_STORE_NOTFOUND;
    }
    else if (!strcmp(s->cur.id, new_id) || (expect && strcmp(s->cur.id, expect) != 0)) {
        rc = SC_STORE_STALE;        /* already bound there, or bound elsewhere */
    }
    else {
        if (was) {
            apr_cpystrn(was, s->cur.id, SC_SID_MAX);
        }
        write_open(st, s);
        set_id(s, new_id);
        write_close(s);
    }
    slot_unlock(st, s);
    return rc;
}

apr_uint64_t sc_store_bytes_in_use(sc_store *st)
{
    apr_uint64_t total = 0;
    apr_uint32_t i, top = st->hdr->slot_hwm;
    for (i = 0; i < top; i++) {
        sc_sess *s = slot(st, (apr_int32_t)i);
        if (s->cur.used) {
            total += s->cur.data_len; /* a racy sum: a figure for the page */
        }
    }
    return total;
}

/* Pages of [from, to) in memory (mincore(2)); the whole range when that
 * cannot be told. */
static apr_uint64_t resident_in(const char *from, const char *to)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a, b;
    apr_uint64_t n = 0, i, pages;
    unsigned char vec[4096];

    if (pg <= 0 || to <= from) {
        return to > from ? (apr_uint64_t)(to - from) : 0;
    }
    a = (uintptr_t)from & ~((uintptr_t)pg - 1);
    b = ((uintptr_t)to + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    pages = (b - a) / (uintptr_t)pg;
    for (i = 0; i < pages; i += sizeof(vec)) {
        apr_uint64_t k, m = pages - i < sizeof(vec) ? pages - i : sizeof(vec);
        if (mincore((void *)(a + i * (uintptr_t)pg), (size_t)(m * (uintptr_t)pg), vec) != 0) {
            return (apr_uint64_t)(to - from);
        }
        for (k = 0; k < m; k++) {
            n += vec[k] & 1;
        }
    }
    return n * (apr_uint64_t)pg;
}

apr_uint64_t sc_store_bytes_resident(sc_store *st)
{
    sc_store_hdr *h = st->hdr;
    /* the index and the free slot stack are written where sessions hash
     * and as slots are freed: their pages in memory, not their size */
    /* the slot locks made so far (one with each of the first slots) */
    return (apr_uint64_t)((char *)st->locks - (char *)h)
           + (apr_uint64_t)(h->slot_hwm < h->nlocks ? h->slot_hwm : h->nlocks)
             * sizeof(sc_slot_lock)
           + resident_in((const char *)st->index, (const char *)st->slots)
           + (apr_uint64_t)h->slot_hwm * sizeof(sc_sess)
           + (apr_uint64_t)h->block_hwm * SC_STORE_BLOCK_COST;
}

int sc_store_idled_out(apr_time_t now, apr_time_t last_access, apr_int64_t max_inactive)
{
    apr_uint64_t idle;
    if (max_inactive <= 0 || last_access >= now) {
        return 0;
    }
    /* now > last_access: the difference is exact in 64 unsigned bits */
    idle = (apr_uint64_t)now - (apr_uint64_t)last_access;
    if ((apr_uint64_t)max_inactive > APR_UINT64_MAX / (apr_uint64_t)APR_USEC_PER_SEC) {
        return 0;                     /* longer than time can count */
    }
    return idle > (apr_uint64_t)max_inactive * (apr_uint64_t)APR_USEC_PER_SEC;
}

void sc_store_untouch(sc_store *st, const char *id)
{
    apr_int32_t i;
    if (strlen(id) < SC_SID_MAX && (i = index_find(st, id, NULL)) >= 0) {
        __atomic_store_n(&slot(st, i)->touched, 0, __ATOMIC_RELAXED);
    }
}

void sc_store_touch(sc_store *st, const char *id, apr_time_t when)
{
    apr_int32_t i = index_find(st, id, NULL);
    if (i >= 0) {
        touch_slot(st, slot(st, i), id, when, NULL);
    }
}

/* Reads slot s into c under its lock (with_data: its data too, into a
 * buffer of p that grows as needed, *room its size): 1 if it holds a session
 * (whose data read whole), 0 if not; *touched: its touched mark, cleared
 * when clear_touched. */
static int visit(sc_store *st, sc_sess *s, apr_pool_t *p, sc_sess_copy *c,
                 apr_uint32_t *room, int with_data, int clear_touched, int *touched)
{
    int ok = 0;
    slot_lock(st, s);
    if (s->cur.used) {
        apr_uint32_t len = s->cur.data_len <= data_bound(st) ? s->cur.data_len : 0;
        if (with_data && (!c->data || len > *room)) {
            *room = len > 1024 ? len : 1024;
            c->data = apr_palloc(p, *room + 1);
        }
        memcpy(c->id, s->cur.id, SC_SID_MAX);
        c->id[SC_SID_MAX - 1] = '\0';
        c->version = s->cur.version;
        c->created = s->cur.created;
        c->last_access = s->cur.last_access;
        c->max_inactive = s->cur.max_inactive;
        c->hash = s->cur.hash;
        c->fork = s->cur.fork;
        c->read_slot = c->read_seq = 0;
        c->flags = s->cur.flags;
        c->stamped = 0;
        c->data_len = len;
        ok = !with_data || chain_copy(st, s->cur.head, len, c->data) == 0;
    }
    *touched = __atomic_exchange_n(&s->touched, clear_touched ? 0 : s->touched,
                                   __ATOMIC_RELAXED);
    slot_unlock(st, s);
    return ok;
}

/* The walk of sc_store_each_from and sc_store_each_meta: with_data, each
 * session's data is copied out of its chain (into p); without, only the
 * slot's fields are read. */
static apr_uint32_t each_from(sc_store *st, apr_pool_t *p, apr_uint32_t start,
                              apr_uint32_t max,
                              int (*fn)(void *ctx, const sc_sess_copy *s, int touched),
                              void *ctx, int clear_touched, int with_data)
{
    apr_uint32_t k, seen = 0, top = st->hdr->slot_hwm, room = 0;
    sc_sess_copy c;
    c.data = NULL;
    for (k = start; k < top && seen < max; k++) {
        sc_sess *s = slot(st, (apr_int32_t)k);
        int touched;
        if (!__atomic_load_n(&s->cur.used, __ATOMIC_RELAXED)) {
            continue;
        }
        if (visit(st, s, p, &c, &room, with_data, clear_touched, &touched)) {
            seen++;
            if (!fn(ctx, &c, touched)) {
                return k + 1;
            }
        }
    }
    return k < top ? k : st->hdr->capacity;
}

void sc_store_each_due(sc_store *st, apr_time_t now, int expire,
                       int (*fn)(void *ctx, const sc_sess_copy *s, int touched), void *ctx)
{
    apr_uint32_t k, top = st->hdr->slot_hwm, room = 0;
    sc_sess_copy c;
    c.data = NULL;
    for (k = 0; k < top; k++) {
        sc_sess *s = slot(st, (apr_int32_t)k);
        apr_uint32_t seq;
        apr_time_t created, last;
        apr_int64_t max_inactive;
        int touched;
        if (!__atomic_load_n(&s->cur.used, __ATOMIC_RELAXED)) {
            continue;
        }
        /* a look without the lock at the few fields that decide (as
         * sc_store_get reads: the sequence even and unchanged around it);
         * most sessions are neither touched nor idle, and are left so */
        seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        created = __atomic_load_n(&s->cur.created, __ATOMIC_RELAXED);
        last = __atomic_load_n(&s->cur.last_access, __ATOMIC_RELAXED);
        max_inactive = __atomic_load_n(&s->cur.max_inactive, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (!(seq & 1) && __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == seq
            && !__atomic_load_n(&s->touched, __ATOMIC_RELAXED)
            && (!expire || !sc_store_idled_out(now, last,
                                               sc_store_idle_limit(st, created, last,
                                                                   max_inactive)))) {
            continue;
        }
        /* due (or caught in a write): read under the lock, fn decides */
        if (visit(st, s, NULL, &c, &room, 0, 1, &touched) && !fn(ctx, &c, touched)) {
            return;
        }
    }
}

void sc_store_each(sc_store *st, apr_pool_t *p,
                   int (*fn)(void *ctx, const sc_sess_copy *s, int touched), void *ctx,
                   int clear_touched)
{
    each_from(st, p, 0, st->hdr->capacity, fn, ctx, clear_touched, 1);
}

apr_uint32_t sc_store_each_from(sc_store *st, apr_pool_t *p, apr_uint32_t start,
                                apr_uint32_t max,
                                int (*fn)(void *ctx, const sc_sess_copy *s, int touched),
                                void *ctx, int clear_touched)
{
    return each_from(st, p, start, max, fn, ctx, clear_touched, 1);
}

void sc_store_each_meta(sc_store *st,
                        int (*fn)(void *ctx, const sc_sess_copy *s, int touched), void *ctx,
                        int clear_touched)
{
    each_from(st, NULL, 0, st->hdr->capacity, fn, ctx, clear_touched, 0);
}

const char *sc_store_rc_text(sc_store_rc rc)
{
    switch (rc) {
    case SC_STORE_OK:
        return "ok";
    case SC_STORE_NOTFOUND:
        return "no such session";
    case SC_STORE_FULL:
        return "the session store is full (Manager maxStoreSize or maxActiveSessions)";
    case SC_STORE_TOOBIG:
        return "the session is larger than Manager maxSessionSize";
    case SC_STORE_STALE:
        return "the session changed meanwhile";
    case SC_STORE_DEAD:
        return "the session was invalidated or expired (its id stays dead)";
    case SC_STORE_MOVED:
        return "a restart moved the sessions to a larger store";
    }
    return "?";
}

/* ---- versions and conflicts (sc_store.h) ---- */

/* A 64-bit finalizer (splitmix64's): every bit of x moves every bit out. */
static apr_uint64_t mix64(apr_uint64_t x)
{
    x ^= x >> 30;
    x *= APR_UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= APR_UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* sc_store_set_hash_filter's: pairs it names local are not hashed */
static int (*hash_local)(const char *key, apr_size_t klen);

void sc_store_set_hash_filter(int (*is_local)(const char *key, apr_size_t klen))
{
    hash_local = is_local;
}

/* One pair's hash, eight bytes a step, the bytes read in one order on every
 * machine (little-endian, whatever the host's).  The product of a word does
 * not wait for the state, so a step costs about one multiply of latency:
 * byte-wise FNV-1a, which this replaced (SC_PROTO_VERSION 2), took a
 * multiply per byte, some 40 us for a 32 KB session, twice per request. */
static apr_uint64_t pair_hash(const unsigned char *p, apr_size_t n)
{
    apr_uint64_t h = APR_UINT64_C(0x9e3779b97f4a7c15) ^ ((apr_uint64_t)n * APR_UINT64_C(0xff51afd7ed558ccd));
    apr_uint64_t w;
    apr_size_t i;
    while (n >= 8) {
        w = (apr_uint64_t)p[0] | (apr_uint64_t)p[1] << 8 | (apr_uint64_t)p[2] << 16
            | (apr_uint64_t)p[3] << 24 | (apr_uint64_t)p[4] << 32 | (apr_uint64_t)p[5] << 40
            | (apr_uint64_t)p[6] << 48 | (apr_uint64_t)p[7] << 56;
        w *= APR_UINT64_C(0x87c37b91114253d5);
        w = (w << 31) | (w >> 33);
        h ^= w * APR_UINT64_C(0x4cf5ad432745937f);
        h = ((h << 27) | (h >> 37)) * APR_UINT64_C(5) + APR_UINT64_C(0x52dce729);
        p += 8;
        n -= 8;
    }
    w = 0;
    for (i = 0; i < n; i++) {
        w |= (apr_uint64_t)p[i] << (8 * i);
    }
    w *= APR_UINT64_C(0x87c37b91114253d5);
    w = (w << 31) | (w >> 33);
    h ^= w * APR_UINT64_C(0x4cf5ad432745937f);
    return mix64(h);
}

/* mix64 undone: each step's inverse in the reverse order (x ^= x >> s is
 * undone by applying it until the shifted bits run out; a multiply by an
 * odd number, by a multiply by its inverse modulo 2^64) */
static apr_uint64_t unshift(apr_uint64_t y, unsigned s)
{
    apr_uint64_t x = y;
    unsigned t;
    for (t = s; t < 64; t += s) {
        x = y ^ (x >> s);
    }
    return x;
}

static apr_uint64_t odd_inverse(apr_uint64_t c)
{
    apr_uint64_t x = c;               /* right in 3 bits; each step doubles them */
    int i;
    for (i = 0; i < 5; i++) {
        x *= 2 - c * x;
    }
    return x;
}

static apr_uint64_t unmix64(apr_uint64_t x)
{
    x = unshift(x, 31);
    x *= odd_inverse(APR_UINT64_C(0x94d049bb133111eb));
    x = unshift(x, 27);
    x *= odd_inverse(APR_UINT64_C(0xbf58476d1ce4e5b9));
    return unshift(x, 30);
}

int sc_store_hash_pair(const char *pair, apr_size_t len, apr_uint64_t *h)
{
    if (!len) {
        return 0;
    }
    if (hash_local) {
        const char *eq = memchr(pair, '=', len);
        if (hash_local(pair, (apr_size_t)((eq ? eq : pair + len) - pair))) {
            return 0;
        }
    }
    if (h) {
        *h = pair_hash((const unsigned char *)pair, len);
    }
    return 1;
}

apr_uint64_t sc_store_hash_make(apr_uint64_t sum, apr_uint64_t n)
{
    apr_uint64_t h = mix64(sum ^ mix64(n));
    return h ? h : 1;
}

int sc_store_hash_sum(apr_uint64_t hash, apr_uint64_t n, apr_uint64_t *sum)
{
    if (hash <= 1) {
        return 0;                     /* 0: not known; 1: 1 or 0 made */
    }
    *sum = unmix64(hash) ^ mix64(n);
    return 1;
}

apr_uint64_t sc_store_hash(const char *data, apr_uint32_t len)
{
    /* the pairs of "k=v&k2=v2" in any order: a member that applied a delta
     * may hold them in another order than the writer (a key removed and set
     * again in one request), with the same attributes */
    apr_uint64_t sum = 0, n = 0;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (apr_size_t)(end - p)), *e = amp ? amp : end;
        if (e > p) {
            int local = 0;
            if (hash_local) {
                /* a pair kept on this member: left out */
                const char *eq = memchr(p, '=', (apr_size_t)(e - p));
                local = hash_local(p, (apr_size_t)((eq ? eq : e) - p));
            }
            if (!local) {
                sum += pair_hash((const unsigned char *)p, (apr_size_t)(e - p));
                n++;
            }
        }
        p = amp ? amp + 1 : end;
    }
    return sc_store_hash_make(sum, n);  /* never 0: "not known" in a message */
}

void sc_store_hash_regime(sc_store *st, apr_uint32_t regime, int fresh)
{
    regime |= 2;                      /* never 0 (not recorded) nor 1 (mixed) */
    if (fresh) {
        st->hdr->hash_regime = regime;
    }
    else if (st->hdr->hash_regime != regime) {
        st->hdr->hash_regime = 1;     /* for as long as this store lives */
    }
    st->regime = regime;
}

void sc_store_hash_regime_from(sc_store *to, const sc_store *from)
{
    to->hdr->hash_regime = from->hdr->hash_regime;
}

int sc_store_hash_trusted(const sc_store *st)
{
    return st->regime && st->hdr->hash_regime == st->regime;
}

/* A copy's rank under the rule: the version for one written with a
 * majority, the version it branched from for a minority's. */
static apr_uint64_t stamp_rank(const sc_stamp *s)
{
    return (s->flags & SC_SF_MINOR) ? s->fork : s->version;
}

int sc_stamp_cmp(const sc_stamp *a, const sc_stamp *b)
{
    apr_uint64_t ra = stamp_rank(a), rb = stamp_rank(b);
    unsigned ma = (a->flags & SC_SF_MINOR) != 0, mb = (b->flags & SC_SF_MINOR) != 0;
    if (a->version == b->version && a->hash == b->hash) {
        return 0;
    }
    if (ra != rb) {
        return ra > rb ? 1 : -1;
    }
    if (ma != mb) {
        /* a minority's copy branched from the majority's version of that
         * number: it comes after it */
        return ma > mb ? 1 : -1;
    }
    if (a->version != b->version) {
        return a->version > b->version ? 1 : -1;
    }
    return a->hash > b->hash ? 1 : -1;
}

void sc_stamp_norm(sc_stamp *s)
{
    s->flags &= SC_SF_WIRE;
    if (!(s->flags & SC_SF_MINOR)) {
        s->flags = 0;
        s->fork = 0;
    }
    else if (s->fork >= s->version) {
        s->fork = s->version ? s->version - 1 : 0;
    }
}

int sc_stamp_conflict(const sc_stamp *winner, const sc_stamp *loser)
{
    int wm = (winner->flags & SC_SF_MINOR) != 0, lm = (loser->flags & SC_SF_MINOR) != 0;
    if (!wm && !lm) {
        /* the same number, other data: two writes on one version */
        return loser->version == winner->version;
    }
    if (wm && !lm) {
        return loser->version > winner->fork;        /* not before the branch */
    }
    if (!wm) {
        /* a minority's writes that no member outside it took, or not
         * before the majority's copy */
        return !(loser->flags & SC_SF_SETTLED) || loser->version >= winner->version;
    }
    if (loser->fork == winner->fork) {
        return loser->version == winner->version;
    }
    return loser->version > winner->fork;
}

/* The stamp a write gives the version it makes, under the slot's lock and
 * inside its write: take's (a copy taken by the rule); none for an unstamped
 * replica (written with a majority); for a request's write, minor on a
 * minority's branch not settled yet (its fork kept), minor when this member
 * is in a minority (branching from the version written over), else none.
 * prev: the version written over (NULL: a new session); hash: the data's,
 * or take's (put: computed before the locks). */
static void stamp_write(sc_store *st, sc_sess_rec *r, const sc_stamp *take, int replica,
                        const sc_stamp *prev, apr_uint64_t hash)
{
    r->hash = hash;
    if (take) {
        r->flags = take->flags;
        r->fork = take->fork;
    }
    else if (replica) {
        r->flags = 0;
        r->fork = 0;
    }
    else if (prev && (prev->flags & SC_SF_MINOR) && !(prev->flags & SC_SF_SETTLED)) {
        r->flags = SC_SF_MINOR;
        r->fork = prev->fork;
    }
    else if (__atomic_load_n(&st->hdr->minority, __ATOMIC_RELAXED)) {
        r->flags = SC_SF_MINOR;
        r->fork = prev ? prev->version : 0;
    }
    else {
        r->flags = 0;
        r->fork = 0;
    }
}

static void stamp_of(const sc_sess_rec *r, sc_stamp *out)
{
    out->version = r->version;
    out->hash = r->hash;
    out->fork = r->fork;
    out->flags = r->flags;
}

/* ---- state transfer: pages made resident ahead of the writers ----
 * A new page of the segment costs its first writer a fault, and the kernel
 * clears it then: on a virtual machine several microseconds a page, 30-40%
 * of a joining engine's time at 1,000,000 sessions of 1 KB (bench/README).
 * While a transfer comes in, a thread of the engine makes those pages
 * resident (MADV_POPULATE_WRITE: faulted in writable, their bytes untouched,
 * so a writer racing it loses nothing) from the high-water marks up to what
 * the transfer fills, a stretch at a time, on the machine's other core. */
struct sc_prefault {
    sc_store *st;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    apr_uint32_t sessions, blocks;    /* what the store will hold (absolute) */
    int stop;
    apr_uint64_t pages;               /* made resident so far */
};

#define PREFAULT_STEP 1024            /* sessions' slots (and their blocks) a turn */
#define PREFAULT_LEAD 64              /* sessions ahead of writers that caught up */

/* Makes [from, to) of 'size' bytes each at 'at' resident: the pages asked
 * for (whole pages, within the segment).  -1 when the kernel cannot. */
static int populate(sc_store *st, unsigned char *at, apr_uint64_t from, apr_uint64_t to,
                    apr_size_t size, apr_uint64_t *pages)
{
#ifdef MADV_POPULATE_WRITE
    long pagesz = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
    uintptr_t a, b, end = (uintptr_t)st->hdr + (uintptr_t)st->hdr->total_size;
    if (from >= to) {
        return 0;
    }
    a = ((uintptr_t)at + (uintptr_t)(from * size)) & ~((uintptr_t)pagesz - 1);
    b = ((uintptr_t)at + (uintptr_t)(to * size) + (uintptr_t)pagesz - 1)
        & ~((uintptr_t)pagesz - 1);
    if (b > (end & ~((uintptr_t)pagesz - 1))) {
        b = end & ~((uintptr_t)pagesz - 1);   /* the segment's last whole page */
    }
    if (a < (uintptr_t)st->hdr) {
        a = (uintptr_t)st->hdr;
    }
    if (a >= b) {
        return 0;
    }
    if (madvise((void *)a, b - a, MADV_POPULATE_WRITE) != 0) {
        return -1;
    }
    *pages += (b - a) / (uintptr_t)pagesz;
    return 0;
#else
    (void)st; (void)at; (void)from; (void)to; (void)size; (void)pages;
    return -1;
#endif
}

static void *prefault_run(void *arg)
{
    struct sc_prefault *pf = arg;
    sc_store *st = pf->st;
    sc_store_hdr *h = st->hdr;
    /* (where the writers are as it starts: a mark they pass later means
     * they caught up with this thread) */
    apr_uint64_t s_done = __atomic_load_n(&h->slot_hwm, __ATOMIC_RELAXED);
    apr_uint64_t b_done = __atomic_load_n(&h->block_hwm, __ATOMIC_RELAXED);
    pthread_mutex_lock(&pf->lock);
    while (!pf->stop) {
        apr_uint64_t s_to = pf->sessions, b_to = pf->blocks, s_from, b_from, s_end, b_end;
        apr_uint64_t most_blocks = h->budget / SC_STORE_BLOCK_COST, pages = 0;
        apr_uint32_t limit = h->count_limit && h->count_limit < h->capacity
                             ? h->count_limit : h->capacity;
        int rv;
        /* within the store's slots, blocks and budget */
        s_to = s_to < limit ? s_to : limit;
        b_to = b_to < h->nblocks ? b_to : h->nblocks;
        b_to = b_to < most_blocks ? b_to : most_blocks;
        /* from where this thread got to; where the writers caught up with
         * it, a stretch ahead of them (the pages right at their mark they
         * fault in themselves: the two never wait on the same page) */
        s_from = __atomic_load_n(&h->slot_hwm, __ATOMIC_RELAXED);
        b_from = __atomic_load_n(&h->block_hwm, __ATOMIC_RELAXED);
        s_from = s_from > s_done ? s_from + PREFAULT_LEAD : s_done;
        b_from = b_from > b_done ? b_from + (s_to ? PREFAULT_LEAD * b_to / s_to : 0) : b_done;
        if (s_from >= s_to && b_from >= b_to) {
            pthread_cond_wait(&pf->cond, &pf->lock);   /* new figures, or stop */
            continue;
        }
        /* a stretch of slots, and the blocks that many sessions take */
        s_end = s_from + PREFAULT_STEP < s_to ? s_from + PREFAULT_STEP : s_to;
        b_end = b_from + (s_to ? PREFAULT_STEP * b_to / s_to : 0) + 1;
        if (s_from >= s_to) {
            b_end = b_from + PREFAULT_STEP * 8;          /* the slots are done */
        }
        b_end = b_end < b_to ? b_end : b_to;
        pthread_mutex_unlock(&pf->lock);
        rv = populate(st, (unsigned char *)st->slots, s_from, s_end, sizeof(sc_sess), &pages);
        if (rv == 0) {
            rv = populate(st, st->blocks, b_from, b_end, SC_STORE_BLOCK, &pages);
        }
        if (rv == 0) {
            rv = populate(st, (unsigned char *)st->block_nexts, b_from, b_end,
                          sizeof(apr_uint32_t), &pages);
        }
        pthread_mutex_lock(&pf->lock);
        pf->pages += pages;
        s_done = s_end > s_from ? s_end : s_done;
        b_done = b_end > b_from ? b_end : b_done;
        if (rv != 0) {
            break;                    /* the kernel cannot: the writers fault */
        }
    }
    pthread_mutex_unlock(&pf->lock);
    return NULL;
}

static void prefault_stop(sc_store *st, int kill_cleanup);

/* The store's pool goes (its segment with it): the thread stops first (its
 * cleanup, registered after the segment's, runs before it). */
static apr_status_t prefault_cleanup(void *data)
{
    prefault_stop(data, 0);
    return APR_SUCCESS;
}

int sc_store_prefault(sc_store *st, apr_uint32_t sessions, apr_uint32_t blocks)
{
    struct sc_prefault *pf = st->prefault;
#ifndef MADV_POPULATE_WRITE
    (void)sessions; (void)blocks;
    return -1;
#endif
    if (!pf) {
        pthread_attr_t a;
        int rv;
        pf = calloc(1, sizeof(*pf));
        if (!pf) {
            return -1;
        }
        pf->st = st;
        pf->sessions = sessions;
        pf->blocks = blocks;
        if (pthread_mutex_init(&pf->lock, NULL) != 0) {
            free(pf);
            return -1;
        }
        if (pthread_cond_init(&pf->cond, NULL) != 0) {
            pthread_mutex_destroy(&pf->lock);
            free(pf);
            return -1;
        }
        /* a small stack: it calls madvise and nothing else */
        rv = pthread_attr_init(&a);
        if (rv == 0) {
            /* signals stay the engine's main thread's (SIGTERM must end its
             * waits, not land here): the thread starts with all blocked */
            sigset_t all, old;
            sigfillset(&all);
            pthread_sigmask(SIG_SETMASK, &all, &old);
            pthread_attr_setstacksize(&a, 64 * 1024);
            rv = pthread_create(&pf->thread, &a, prefault_run, pf);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            pthread_attr_destroy(&a);
        }
        if (rv != 0) {
            pthread_cond_destroy(&pf->cond);
            pthread_mutex_destroy(&pf->lock);
            free(pf);
            return -1;
        }
        st->prefault = pf;
        if (st->pool) {
            apr_pool_cleanup_register(st->pool, st, prefault_cleanup, apr_pool_cleanup_null);
        }
        return 0;
    }
    pthread_mutex_lock(&pf->lock);
    if (pf->sessions != sessions || pf->blocks != blocks) {
        pf->sessions = sessions;
        pf->blocks = blocks;
        pthread_cond_signal(&pf->cond);
    }
    pthread_mutex_unlock(&pf->lock);
    return 0;
}

void sc_store_prefault_stop(sc_store *st)
{
    prefault_stop(st, 1);
}

static void prefault_stop(sc_store *st, int kill_cleanup)
{
    struct sc_prefault *pf = st ? st->prefault : NULL;
    if (!pf) {
        return;
    }
    if (kill_cleanup && st->pool) {
        apr_pool_cleanup_kill(st->pool, st, prefault_cleanup);
    }
    pthread_mutex_lock(&pf->lock);
    pf->stop = 1;
    pthread_cond_signal(&pf->cond);
    pthread_mutex_unlock(&pf->lock);
    pthread_join(pf->thread, NULL);
    st->prefault_pages += pf->pages;
    st->prefault = NULL;
    pthread_cond_destroy(&pf->cond);
    pthread_mutex_destroy(&pf->lock);
    free(pf);
}

apr_uint64_t sc_store_prefaulted(const sc_store *st)
{
    return st->prefault_pages + (st->prefault ? st->prefault->pages : 0);
}

sc_store_rc sc_store_stamp(sc_store *st, const char *id, sc_stamp *out)
{
    apr_int32_t i;
    sc_sess *s;
    sc_store_rc rc = SC_STORE_NOTFOUND;
    if (strlen(id) >= SC_SID_MAX || (i = index_find(st, id, NULL)) < 0) {
        return SC_STORE_NOTFOUND;
    }
    s = slot(st, i);
    slot_lock(st, s);
    if (s->cur.used && sc_store_same(s->cur.id, id)) {
        stamp_of(&s->cur, out);
        rc = SC_STORE_OK;
    }
    slot_unlock(st, s);
    return rc;
}

sc_take_rc sc_store_take(sc_store *st, const sc_sess_copy *c, int descends, int settle,
                         int *conflict, sc_stamp *was, sc_store_rc *rc)
{
    return sc_store_take_kept(st, c, descends, settle, conflict, was, rc, NULL);
}

sc_take_rc sc_store_take_kept(sc_store *st, const sc_sess_copy *c, int descends, int settle,
                              int *conflict, sc_stamp *was, sc_store_rc *rc,
                              const sc_store_kept *kept)
{
    sc_stamp in, here;
    apr_uint32_t chain, old_chain;
    apr_int32_t i;
    sc_sess *s;
    int tries, planned = 0, patch;
    patch_plan plan;

    if (conflict) {
        *conflict = 0;
    }
    *rc = SC_STORE_OK;
    in.version = c->version;
    in.hash = c->hash ? c->hash : sc_store_hash(c->data, c->data_len);
    in.flags = c->flags;
    in.fork = c->fork;
    sc_stamp_norm(&in);
    if ((in.flags & SC_SF_MINOR) && settle) {
        in.flags |= SC_SF_SETTLED;
    }
    if (__atomic_load_n(&st->hdr->moved, __ATOMIC_ACQUIRE)) {
        *rc = SC_STORE_MOVED;
        return SC_TAKE_REFUSED;
    }
    if (c->data_len > st->hdr->slot_data || strlen(c->id) >= SC_SID_MAX) {
        __atomic_add_fetch(&st->hdr->rejected_size, 1, __ATOMIC_RELAXED);
        *rc = SC_STORE_TOOBIG;
        return SC_TAKE_REFUSED;
    }
    for (tries = 0; tries < 3; tries++) {
        i = index_find(st, c->id, NULL);
        if (i < 0) {
            apr_uint64_t v;
            /* new here: created with its stamp (a tombstone refuses it, a
             * full store makes room as for any new session) */
            *rc = put(st, c->id, c->data, c->data_len, 0, c->version, c->created,
                      c->last_access, c->max_inactive, 0, &v, NULL, &in, 0, NULL);
            if (*rc == SC_STORE_OK) {
                return SC_TAKE_STORED;
            }
            if (*rc == SC_STORE_STALE) {
                continue;             /* made meanwhile: compare with it */
            }
            return SC_TAKE_REFUSED;
        }
        /* in place when it can be (put), once: a write that came between
         * the comparison and the lock makes it a chain of its own */
        plan.slot = -1;
        plan.seq = plan.n = plan.bytes = 0;
        chain = 0;
        if (!planned++) {
            patch_plan_make(st, c->id, c->data, c->data_len, kept, &plan);
        }
        if (plan.slot != i && chain_new(st, c->data, c->data_len, &chain) != 0) {
            __atomic_add_fetch(&st->hdr->rejected_full, 1, __ATOMIC_RELAXED);
            *rc = SC_STORE_FULL;
            return SC_TAKE_REFUSED;
        }
        s = slot(st, i);
        slot_lock(st, s);
        if (__atomic_load_n(&st->hdr->moved, __ATOMIC_ACQUIRE)) {
            /* the mover copied this slot, or will find it so (put) */
            slot_unlock(st, s);
            chain_free(st, chain);
            *rc = SC_STORE_MOVED;
            return SC_TAKE_REFUSED;
        }
        patch = plan.slot == i && __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == plan.seq;
        if (plan.slot == i && !patch) {
            slot_unlock(st, s);
            tries--;
            continue;
        }
        if (!s->cur.used || !sc_store_same(s->cur.id, c->id)) {
            slot_unlock(st, s);
            chain_free(st, chain);
            continue;                 /* removed meanwhile */
        }
        stamp_of(&s->cur, &here);
        if (descends && (in.flags & SC_SF_MINOR) && in.fork < stamp_rank(&here)) {
            /* a minority's change made on the version here: its branch
             * starts there, and it ranks so (never below the copy it was
             * made on) */
            in.fork = stamp_rank(&here);
        }
        if (!descends) {
            int cmp = sc_stamp_cmp(&in, &here);
            if (cmp <= 0) {
                if (!cmp && (here.flags & SC_SF_MINOR) && !(here.flags & SC_SF_SETTLED)
                    && (!(in.flags & SC_SF_MINOR) || (in.flags & SC_SF_SETTLED))) {
                    /* the same version, taken outside a minority: settled */
                    write_open(st, s);
                    s->cur.flags |= SC_SF_SETTLED;
                    write_close(s);
                }
                slot_unlock(st, s);
                chain_free(st, chain);
                return !cmp ? SC_TAKE_SAME
                       : sc_stamp_conflict(&here, &in) ? SC_TAKE_CONCURRENT : SC_TAKE_LOST;
            }
            if (sc_stamp_conflict(&in, &here)) {
                __atomic_add_fetch(&st->hdr->conflicts, 1, __ATOMIC_RELAXED);
                if (conflict) {
                    *conflict = 1;
                }
                if (was) {
                    *was = here;
                }
            }
        }
        write_open(st, s);
        if (patch) {
            patch_write(st, s, &plan, c->data);
        }
        if (strcmp(s->cur.id, c->id) != 0) {
            set_id(s, c->id);         /* as its writer has it (re-bound) */
        }
        s->cur.version = in.version;
        s->cur.hash = in.hash;
        s->cur.fork = in.fork;
        /* a request that read the number replaced merges onto this copy */
        s->cur.flags = in.flags | (in.version == here.version ? SC_SF_REPLACED : 0);
        if (c->last_access > s->cur.last_access) {
            s->cur.last_access = c->last_access;
        }
        s->cur.max_inactive = c->max_inactive;
        old_chain = 0;
        if (!patch) {
            old_chain = s->cur.head;
            s->cur.head = chain;
        }
        s->cur.data_len = c->data_len;
        write_close(s);
        slot_unlock(st, s);
        chain_free(st, old_chain);
        __atomic_add_fetch(&st->hdr->updated, 1, __ATOMIC_RELAXED);
        if (patch) {
            __atomic_add_fetch(&st->hdr->updated_in_place, 1, __ATOMIC_RELAXED);
        }
        return SC_TAKE_STORED;
    }
    *rc = SC_STORE_STALE;
    return SC_TAKE_REFUSED;
}

apr_uint32_t sc_store_each_stamp(sc_store *st, apr_uint32_t start, apr_uint32_t max,
                                 int (*fn)(void *ctx, const char *id, const sc_stamp *s),
                                 void *ctx)
{
    apr_uint32_t k, seen = 0, top = st->hdr->slot_hwm;
    for (k = start; k < top && seen < max; k++) {
        sc_sess *s = slot(st, (apr_int32_t)k);
        char id[SC_SID_MAX];
        sc_stamp stamp;
        int ok = 0;
        if (!__atomic_load_n(&s->cur.used, __ATOMIC_RELAXED)) {
            continue;
        }
        slot_lock(st, s);
        if (s->cur.used) {
            memcpy(id, s->cur.id, SC_SID_MAX);
            id[SC_SID_MAX - 1] = '\0';
            stamp_of(&s->cur, &stamp);
            ok = id[0] != '\0';
        }
        slot_unlock(st, s);
        if (ok) {
            seen++;
            if (!fn(ctx, id, &stamp)) {
                return k + 1;
            }
        }
    }
    return k < top ? k : st->hdr->capacity;
}

void sc_store_each_tomb_life(sc_store *st, apr_pool_t *p,
                             int (*fn)(void *ctx, const char *base, apr_uint32_t life_s),
                             void *ctx)
{
    apr_array_header_t *ids = apr_array_make(p, 64, sizeof(const char *));
    apr_array_header_t *lives = apr_array_make(p, 64, sizeof(apr_uint32_t));
    apr_time_t now = apr_time_now();
    apr_uint32_t k;
    int i;
    lock_take(&st->hdr->index_lock);
    for (k = 0; k < st->hdr->tomb_size; k++) {
        sc_tomb *t = &st->tombs[k];
        if (t->until > now && t->len < SC_TOMB_BASE) {
            apr_time_t left = apr_time_sec(t->until - now);
            APR_ARRAY_PUSH(ids, const char *) = apr_pstrmemdup(p, t->base, t->len);
            APR_ARRAY_PUSH(lives, apr_uint32_t) = left < 1 ? 1
                                                  : left > SC_TOMB_MAX_S ? SC_TOMB_MAX_S
                                                  : (apr_uint32_t)left;
        }
    }
    lock_give(&st->hdr->index_lock);
    for (i = 0; i < ids->nelts; i++) {
        if (!fn(ctx, APR_ARRAY_IDX(ids, i, const char *), APR_ARRAY_IDX(lives, i, apr_uint32_t))) {
            return;
        }
    }
}

sc_store_rc sc_store_bury(sc_store *st, const char *id, apr_uint32_t life_s)
{
    sc_store_rc rc;
    if (base_len(id) >= SC_TOMB_BASE) {
        return SC_STORE_NOTFOUND;
    }
    /* the session first, without a tombstone of its own life: the one it
     * had there follows (a write in between finds no session to update, and
     * a replica comes only from this engine) */
    rc = remove_id(st, id, 0, 0);
    lock_take(&st->hdr->index_lock);
    tomb_set(st, id, tomb_life(life_s));
    lock_give(&st->hdr->index_lock);
    return rc == SC_STORE_OK ? SC_STORE_OK : SC_STORE_NOTFOUND;
}

int sc_store_settle(sc_store *st, const char *id, const sc_stamp *there)
{
    apr_int32_t i;
    sc_sess *s;
    int done = 0;
    if ((there->flags & SC_SF_MINOR) && !(there->flags & SC_SF_SETTLED)) {
        return 0;
    }
    if (strlen(id) >= SC_SID_MAX || (i = index_find(st, id, NULL)) < 0) {
        return 0;
    }
    s = slot(st, i);
    slot_lock(st, s);
    if (s->cur.used && sc_store_same(s->cur.id, id) && s->cur.version == there->version
        && s->cur.hash == there->hash && (s->cur.flags & SC_SF_MINOR)
        && !(s->cur.flags & SC_SF_SETTLED)) {
        write_open(st, s);
        s->cur.flags |= SC_SF_SETTLED;
        write_close(s);
        done = 1;
    }
    slot_unlock(st, s);
    return done;
}

/* ---- moving to a larger store (a restart raised the budget) ---- */

/* Puts a live tombstone as it is (its time left kept) into st's table. */
static void tomb_copy(sc_store *st, const sc_tomb *t)
{
    apr_uint32_t mask = st->hdr->tomb_size - 1, k;
    for (k = 0; k < SC_TOMB_PROBE && k <= mask; k++) {
        sc_tomb *u = &st->tombs[(t->hash + k) & mask];
        if (!u->until) {
            *u = *t;
            return;
        }
    }
    st->hdr->tombs_evicted++;         /* a full neighbourhood: given up */
}

/* ---- locations (BackupManager; sc_store.h) ---- */

#define LOC_USED 1
#define LOC_FREED 2
#define LOC_IX_DELETED 0xffffffffu   /* an index entry whose location was removed */
#define LOC_NO_POS 0xffffffffu

/* The engine writes under loc_seq as sc_shm's writers do: one that died
 * inside a change left it odd, and the next change still ends even (an odd
 * sequence is made odd again, then even), never the other way round. */
static void loc_write_begin(sc_store *st)
{
    sc_shm_write_begin(&st->hdr->loc_seq);
}

static void loc_write_end(sc_store *st)
{
    sc_shm_write_end(&st->hdr->loc_seq);
}

static void loc_count(sc_store *st, int role, int by)
{
    apr_uint64_t *c = role == SC_ROLE_PRIMARY ? &st->hdr->bk_primary
                      : role == SC_ROLE_BACKUP ? &st->hdr->bk_backup
                      : role == SC_ROLE_PROXY ? &st->hdr->bk_proxy : NULL;
    if (c) {
        *c += (apr_uint64_t)(apr_int64_t)by;
    }
}

/* Lays the index, the free list and the counts anew from the entries below
 * loc_hwm (inside a change: readers wait for it): when deleted index
 * entries make lookups long, and after a change the engine died in (an
 * entry taken but not indexed, one freed but not on the list).  Writes the
 * whole index (the only part written where ids hash), and no entry past
 * loc_hwm. */
static void loc_rebuild(sc_store *st)
{
    sc_store_hdr *h = st->hdr;
    apr_uint32_t mask = h->loc_index_size - 1, k, top = h->loc_hwm;
    if (top > h->loc_size) {
        top = h->loc_hwm = h->loc_size;
    }
    memset(st->loc_index, 0, (apr_size_t)h->loc_index_size * sizeof(apr_uint32_t));
    h->loc_used = h->loc_deleted = 0;
    h->loc_free = 0;
    h->bk_primary = h->bk_backup = h->bk_proxy = 0;
    /* from the top down, so the free list hands out the lowest entries first */
    for (k = top; k-- > 0;) {
        sc_loc *l = &st->locs[k];
        apr_uint32_t j;
        if (l->state == LOC_USED && l->len < SC_LOC_BASE) {
            for (j = 0; j <= mask; j++) {
                apr_uint32_t *ix = &st->loc_index[(l->hash + j) & mask];
                if (!*ix) {
                    *ix = k + 1;
                    break;
                }
            }
            h->loc_used++;
            loc_count(st, l->role, 1);
            continue;
        }
        l->state = LOC_FREED;
        l->hash = h->loc_free;
        h->loc_free = k + 1;
    }
}

void sc_loc_repair(sc_store *st)
{
    apr_uint32_t s;
    if (!st || !st->hdr) {
        return;
    }
    s = __atomic_load_n(&st->hdr->loc_seq, __ATOMIC_ACQUIRE);
    if (s & 1) {
        /* a writer (the engine before this one) died inside a change: what
         * it left half made in the index or the free list is laid anew from
         * the entries (an entry is marked used only once it is filled) */
        sc_shm_write_begin(&st->hdr->loc_seq);
        if (st->hdr->loc_index_size) {
            loc_rebuild(st);
        }
        sc_shm_write_end(&st->hdr->loc_seq);
    }
}

static int loc_is(const sc_loc *l, apr_uint32_t h, const char *id, apr_size_t n)
{
    return l->state == LOC_USED && l->hash == h && l->len == n && !memcmp(l->base, id, n);
}

/* id's entry (the engine, or a reader under loc_seq), or NULL; *at: its
 * index entry; *free_pos: the first unused or deleted index entry met, for
 * an insertion (LOC_NO_POS: none). */
static sc_loc *loc_lookup(sc_store *st, const char *id, apr_uint32_t *at,
                          apr_uint32_t *free_pos)
{
    apr_size_t n = base_len(id);
    apr_uint32_t h = hash_id(id), mask = st->hdr->loc_index_size - 1, k;
    if (free_pos) {
        *free_pos = LOC_NO_POS;
    }
    if (!st->hdr->loc_index_size || n >= SC_LOC_BASE) {
        return NULL;
    }
    for (k = 0; k <= mask; k++) {
        apr_uint32_t pos = (h + k) & mask;
        apr_uint32_t v = __atomic_load_n(&st->loc_index[pos], __ATOMIC_RELAXED);
        sc_loc *l;
        if (!v || v == LOC_IX_DELETED) {
            if (free_pos && *free_pos == LOC_NO_POS) {
                *free_pos = pos;
            }
            if (!v) {
                return NULL;
            }
            continue;
        }
        if (v > st->hdr->loc_size) {
            continue;                 /* a reader racing a change: read again */
        }
        l = &st->locs[v - 1];
        if (loc_is(l, h, id, n)) {
            if (at) {
                *at = pos;
            }
            return l;
        }
    }
    return NULL;
}

/* The route with index i + 1 (0: none) as text. */
static void loc_route_copy(const sc_store *st, unsigned i, char *out)
{
    out[0] = '\0';
    if (i && i <= SC_LOC_ROUTES) {
        memcpy(out, st->hdr->loc_route[i - 1], SC_LOC_ROUTE_LEN);
        out[SC_LOC_ROUTE_LEN - 1] = '\0';
    }
}

static void loc_info(const sc_store *st, const sc_loc *l, sc_loc_info *out)
{
    out->role = l->role;
    out->epoch = l->epoch;
    out->news = l->news;
    loc_route_copy(st, l->primary, out->primary);
    loc_route_copy(st, l->backup, out->backup);
}

/* How long a reader waits for a change that does not end (loc_seq odd and
 * unchanged): the engine, the only writer, died or is stopped inside it.  A
 * reader that gave up on one value of loc_seq does not wait for it again:
 * it answers "no location" at once until the sequence moves (a new engine
 * repairs it at its start, sc_loc_repair). */
#define SC_LOC_STUCK_WRITE apr_time_from_msec(200)

int sc_loc_find(sc_store *st, const char *id, sc_loc_info *out)
{
    int tries = 0;
    apr_uint32_t watched = 0;
    apr_time_t since = 0;
    memset(out, 0, sizeof(*out));
    for (;;) {
        apr_uint32_t seq = __atomic_load_n(&st->hdr->loc_seq, __ATOMIC_ACQUIRE);
        sc_loc *l;
        int found = 0;
        if (seq & 1) {
            apr_time_t now;
            if (seq == __atomic_load_n(&st->loc_stuck, __ATOMIC_RELAXED)) {
                return 0;             /* waited for this one already */
            }
            if (++tries <= 64) {
                sched_yield();
                continue;
            }
            now = sc_steady_us();
            if (!since || seq != watched) {
                watched = seq;        /* a change began: its time starts */
                since = now;
            }
            else if (now - since > SC_LOC_STUCK_WRITE) {
                __atomic_store_n(&st->loc_stuck, seq, __ATOMIC_RELAXED);
                return 0;             /* a writer that died inside a change */
            }
            sched_yield();
            continue;
        }
        l = loc_lookup(st, id, NULL, NULL);
        if (l) {
            sc_loc copy = *l;
            found = copy.state == LOC_USED;
            if (found) {
                loc_info(st, &copy, out);
            }
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&st->hdr->loc_seq, __ATOMIC_ACQUIRE) == seq) {
            return found;
        }
    }
}

/* The index + 1 of a route, named if new; 0 for none or when the table of
 * routes is full. */
static unsigned loc_route(sc_store *st, const char *route)
{
    sc_store_hdr *h = st->hdr;
    apr_uint32_t i;
    if (!route || !*route || strlen(route) >= SC_LOC_ROUTE_LEN) {
        return 0;
    }
    apr_uint32_t hole = SC_LOC_ROUTES;
    for (i = 0; i < h->loc_routes && i < SC_LOC_ROUTES; i++) {
        if (!strcmp(h->loc_route[i], route)) {
            return i + 1;
        }
        if (!h->loc_route[i][0] && hole == SC_LOC_ROUTES) {
            hole = i;                 /* reclaimed (sc_loc_reclaim_routes) */
        }
    }
    if (hole < SC_LOC_ROUTES) {
        /* no entry names a reclaimed route: a change of it is one write */
        loc_write_begin(st);
        apr_cpystrn(h->loc_route[hole], route, SC_LOC_ROUTE_LEN);
        loc_write_end(st);
        return hole + 1;
    }
    if (h->loc_routes >= SC_LOC_ROUTES) {
        return 0;
    }
    apr_cpystrn(h->loc_route[h->loc_routes], route, SC_LOC_ROUTE_LEN);
    return ++h->loc_routes;
}

/* The entries looked at by a scan: [0, loc_hwm), never past the array. */
static apr_uint32_t loc_top(const sc_store *st)
{
    apr_uint32_t top = st->hdr->loc_hwm;
    return top < st->hdr->loc_size ? top : st->hdr->loc_size;
}

apr_uint32_t sc_loc_reclaim_routes(sc_store *st, const char *keep)
{
    sc_store_hdr *h = st->hdr;
    unsigned char used[SC_LOC_ROUTES + 1];
    apr_uint32_t k, n = 0, top = loc_top(st);
    memset(used, 0, sizeof(used));
    for (k = 0; k < top; k++) {
        const sc_loc *l = &st->locs[k];
        if (l->state == LOC_USED) {
            used[l->primary] = 1;
            used[l->backup] = 1;
        }
    }
    loc_write_begin(st);
    for (k = 0; k < h->loc_routes && k < SC_LOC_ROUTES; k++) {
        if (!used[k + 1] && h->loc_route[k][0]
            && (!keep || strcmp(h->loc_route[k], keep) != 0)) {
            memset(h->loc_route[k], 0, SC_LOC_ROUTE_LEN);
            n++;
        }
    }
    loc_write_end(st);
    return n;
}

/* An entry for a new location (inside a change): a freed one (resident
 * already), else the next never used; LOC_NO_POS when all are taken. */
static apr_uint32_t loc_take(sc_store *st)
{
    sc_store_hdr *h = st->hdr;
    if (h->loc_free) {
        apr_uint32_t k = h->loc_free - 1;
        if (k < h->loc_hwm && k < h->loc_size && st->locs[k].state == LOC_FREED) {
            h->loc_free = st->locs[k].hash;
            return k;
        }
        /* not a freed entry (a change cut short): the list is given up
         * here, and the next rebuild lays it anew */
        h->loc_free = 0;
    }
    if (h->loc_hwm < h->loc_size) {
        return h->loc_hwm++;
    }
    return LOC_NO_POS;
}

int sc_loc_set(sc_store *st, const char *id, int role, apr_uint64_t epoch,
               const char *primary, const char *backup, apr_time_t news)
{
    sc_store_hdr *h = st->hdr;
    sc_loc *l;
    apr_uint32_t free_pos, k;
    apr_size_t n = base_len(id);
    unsigned pi = loc_route(st, primary), bi = loc_route(st, backup);
    int rc = 0;

    if (n >= SC_LOC_BASE || !h->loc_index_size
        || (primary && *primary && !pi) || (backup && *backup && !bi)) {
        h->bk_loc_full++;
        return -1;
    }
    loc_write_begin(st);
    l = loc_lookup(st, id, NULL, &free_pos);
    if (!l && (apr_uint64_t)(h->loc_used + h->loc_deleted + 1) * 4
              > (apr_uint64_t)h->loc_index_size * 3) {
        if (h->loc_deleted) {
            loc_rebuild(st);
            l = loc_lookup(st, id, NULL, &free_pos);
        }
        if ((apr_uint64_t)(h->loc_used + 1) * 4 > (apr_uint64_t)h->loc_index_size * 3) {
            free_pos = LOC_NO_POS;
        }
    }
    if (!l) {
        k = free_pos == LOC_NO_POS ? LOC_NO_POS : loc_take(st);
        if (k == LOC_NO_POS) {
            h->bk_loc_full++;
            rc = -1;
            goto done;
        }
        l = &st->locs[k];
        /* filled before it is marked used, and indexed after: a change cut
         * short leaves at most an entry the repair frees or indexes */
        memset(l, 0, sizeof(*l));
        l->hash = hash_id(id);
        l->len = (unsigned char)n;
        memcpy(l->base, id, n);
        l->role = (unsigned char)role;
        l->epoch = epoch;
        l->primary = (unsigned char)pi;
        l->backup = (unsigned char)bi;
        l->news = news;
        l->state = LOC_USED;
        if (st->loc_index[free_pos] == LOC_IX_DELETED) {
            h->loc_deleted--;
        }
        __atomic_store_n(&st->loc_index[free_pos], k + 1, __ATOMIC_RELEASE);
        h->loc_used++;
        loc_count(st, role, 1);
        goto done;
    }
    loc_count(st, l->role, -1);
    l->role = (unsigned char)role;
    l->epoch = epoch;
    l->primary = (unsigned char)pi;
    l->backup = (unsigned char)bi;
    l->news = news;
    loc_count(st, role, 1);
done:
    loc_write_end(st);
    return rc;
}

int sc_loc_del(sc_store *st, const char *id)
{
    sc_store_hdr *h = st->hdr;
    sc_loc *l;
    apr_uint32_t at = 0;
    loc_write_begin(st);
    l = loc_lookup(st, id, &at, NULL);
    if (l) {
        loc_count(st, l->role, -1);
        /* the entry on the free list first, then its index entry: cut
         * short, an index entry is left to an entry no longer used (found
         * by no lookup; the repair lays the index anew) */
        l->hash = h->loc_free;
        l->state = LOC_FREED;
        h->loc_free = (apr_uint32_t)(l - st->locs) + 1;
        __atomic_store_n(&st->loc_index[at], LOC_IX_DELETED, __ATOMIC_RELEASE);
        h->loc_used--;
        h->loc_deleted++;
    }
    loc_write_end(st);
    return l != NULL;
}

apr_uint32_t sc_loc_each_from(sc_store *st, apr_uint32_t start, apr_uint32_t max,
                              int (*fn)(void *ctx, const char *base,
                                        const sc_loc_info *l), void *ctx)
{
    apr_uint32_t k, seen = 0;
    /* loc_top read at every turn: fn may add locations */
    for (k = start; k < loc_top(st) && seen < max; k++) {
        sc_loc copy = st->locs[k];
        char base[SC_LOC_BASE + 1];
        sc_loc_info info;
        if (copy.state != LOC_USED || copy.len >= SC_LOC_BASE) {
            continue;
        }
        seen++;
        memcpy(base, copy.base, copy.len);
        base[copy.len] = '\0';
        loc_info(st, &copy, &info);
        if (!fn(ctx, base, &info)) {
            return k;                 /* fn stopped before this one: it comes next */
        }
    }
    return k < loc_top(st) ? k : st->hdr->loc_size;
}

/* A restart's move: every location, the routes and the counters go along. */
static void loc_move(sc_store *from, sc_store *to)
{
    sc_store_hdr *fh = from->hdr, *th = to->hdr;
    apr_uint32_t k, top = loc_top(from);
    for (k = 0; k < top; k++) {
        sc_loc *l = &from->locs[k];
        char base[SC_LOC_BASE + 1], pr[SC_LOC_ROUTE_LEN], bk[SC_LOC_ROUTE_LEN];
        if (l->state != LOC_USED || l->len >= SC_LOC_BASE) {
            continue;
        }
        memcpy(base, l->base, l->len);
        base[l->len] = '\0';
        loc_route_copy(from, l->primary, pr);
        loc_route_copy(from, l->backup, bk);
        sc_loc_set(to, base, l->role, l->epoch, pr, bk, l->news);
    }
    th->bk_updates = fh->bk_updates;
    th->bk_copies = fh->bk_copies;
    th->bk_fetches = fh->bk_fetches;
    th->bk_fetch_not_here = fh->bk_fetch_not_here;
    th->bk_fetch_failed = fh->bk_fetch_failed;
    th->bk_fetch_p50_us = fh->bk_fetch_p50_us;
    th->bk_fetch_p99_us = fh->bk_fetch_p99_us;
    th->bk_promotions = fh->bk_promotions;
    th->bk_replacements = fh->bk_replacements;
    th->bk_replacing = fh->bk_replacing;
    th->bk_rr = fh->bk_rr;
}

apr_status_t sc_store_move(sc_store *from, sc_store *to, apr_uint64_t *copied)
{
    sc_store_hdr *fh = from->hdr, *th = to->hdr;
    apr_uint32_t k, top, room = 0;
    apr_time_t now = apr_time_now();
    char *buf = NULL;
    apr_status_t rv = APR_SUCCESS;

    *copied = 0;
    /* from now on no write lands here: a writer that took the index lock or
     * a slot's lock before this finished before its slot is read below */
    lock_take(&fh->index_lock);
    __atomic_store_n(&fh->moved, 1, __ATOMIC_RELEASE);
    top = fh->slot_hwm;
    lock_give(&fh->index_lock);

    for (k = 0; k < top && rv == APR_SUCCESS; k++) {
        sc_sess *s = slot(from, (apr_int32_t)k), *t;
        sc_sess_rec rec;
        apr_uint32_t chain, mask, pos, n;
        apr_int32_t ks;
        int ok = 0;
        if (!__atomic_load_n(&s->cur.used, __ATOMIC_RELAXED)) {
            continue;
        }
        slot_lock(from, s);
        rec = s->cur;
        if (rec.used && rec.data_len <= data_bound(from)) {
            if (!buf || rec.data_len > room) {
                free(buf);
                room = rec.data_len > 65536 ? rec.data_len : 65536;
                buf = malloc((apr_size_t)room + 1);
            }
            ok = buf && chain_copy(from, rec.head, rec.data_len, buf) == 0;
        }
        slot_unlock(from, s);
        if (!ok) {
            if (!buf) {
                rv = APR_ENOMEM;
            }
            continue;
        }
        rec.id[SC_SID_MAX - 1] = '\0';
        if (chain_new(to, buf, rec.data_len, &chain) != 0) {
            rv = APR_ENOSPC;
            break;
        }
        lock_take(&th->index_lock);
        ks = th->count < th->capacity ? slot_take(to) : -1;
        if (ks < 0) {
            lock_give(&th->index_lock);
            chain_free(to, chain);
            rv = APR_ENOSPC;
            break;
        }
        t = slot(to, ks);
        slot_lock(to, t);
        rec.head = chain;
        t->cur = rec;
        t->touched = 0;
        slot_unlock(to, t);
        mask = th->index_size - 1;
        for (n = 0, pos = hash_id(rec.id) & mask; n <= mask; n++, pos = (pos + 1) & mask) {
            if (to->index[pos] <= 0) {
                __atomic_store_n(&to->index[pos], ks + 1, __ATOMIC_RELEASE);
                break;
            }
        }
        th->count++;
        lock_give(&th->index_lock);
        ++*copied;
    }
    free(buf);
    if (rv != APR_SUCCESS) {
        __atomic_store_n(&fh->moved, 0, __ATOMIC_RELEASE);
        return rv;
    }

    lock_take(&fh->index_lock);
    lock_take(&th->index_lock);
    for (k = 0; k < fh->tomb_size; k++) {
        if (from->tombs[k].until > now && from->tombs[k].len < SC_TOMB_BASE) {
            tomb_copy(to, &from->tombs[k]);
        }
    }
    /* what the page counts goes on from where it was */
    th->created = fh->created;
    th->updated = fh->updated;
    th->removed = fh->removed;
    th->expired = fh->expired;
    th->rejected_full = fh->rejected_full;
    th->rejected_size = fh->rejected_size;
    th->replicated_in = fh->replicated_in;
    th->replicated_out = fh->replicated_out;
    th->transfer_in = fh->transfer_in;
    th->transfer_out = fh->transfer_out;
    th->last_transfer_ms = fh->last_transfer_ms;
    th->last_transfer_count = fh->last_transfer_count;
    th->rebound = fh->rebound;
    th->writes_undone = fh->writes_undone;
    th->updated_in_place = fh->updated_in_place;
    th->tomb_default_s = fh->tomb_default_s;
    th->tombs_set = fh->tombs_set;
    th->tombs_evicted += fh->tombs_evicted;
    th->dead_refused = fh->dead_refused;
    th->repl_too_big = fh->repl_too_big;
    th->probation_s = fh->probation_s;
    th->evicted = fh->evicted;
    th->probation_expired = fh->probation_expired;
    th->minority = fh->minority;
    th->quorum_seen = fh->quorum_seen;
    th->quorum_known = fh->quorum_known;
    th->minority_since = fh->minority_since;
    th->conflicts = fh->conflicts;
    th->minority_refused = fh->minority_refused;
    th->ae_rounds = fh->ae_rounds;
    th->ae_asked = fh->ae_asked;
    th->ae_removed = fh->ae_removed;
    lock_give(&th->index_lock);
    lock_give(&fh->index_lock);
    loc_move(from, to);
    return APR_SUCCESS;
}
