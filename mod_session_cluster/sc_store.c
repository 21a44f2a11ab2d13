/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_store.c -- the shared-memory session store (layout in sc_store.h).
 */
#include "sc_store.h"
#include "sc_shm.h"

#include "apr_shm.h"
#include "apr_strings.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define SC_STORE_MAGIC 0x53435353u   /* "SCSS" */
#define EMPTY   (-1)
#define DELETED (-2)

apr_status_t sc_store_create(apr_pool_t *p, apr_uint32_t capacity, apr_uint32_t slot_data,
                             sc_store **out)
{
    apr_shm_t *shm;
    apr_size_t slot_size = APR_ALIGN_DEFAULT(sizeof(sc_sess) + slot_data + 1);
    apr_uint32_t isz = 1, i;
    apr_size_t hdr_size = APR_ALIGN_DEFAULT(sizeof(sc_store_hdr)), total;
    apr_status_t rv;
    sc_store *st;
    char *base;

    while (isz < capacity * 2) {
        isz <<= 1;
    }
    total = hdr_size + APR_ALIGN_DEFAULT(isz * sizeof(apr_int32_t)) + slot_size * capacity;
    rv = apr_shm_create(&shm, total, NULL, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    base = apr_shm_baseaddr_get(shm);
    memset(base, 0, hdr_size);
    st = apr_pcalloc(p, sizeof(*st));
    st->hdr = (sc_store_hdr *)base;
    st->index = (apr_int32_t *)(base + hdr_size);
    st->slots = base + hdr_size + APR_ALIGN_DEFAULT(isz * sizeof(apr_int32_t));
    st->slot_size = slot_size;
    st->hdr->magic = SC_STORE_MAGIC;
    st->hdr->capacity = capacity;
    st->hdr->slot_data = slot_data;
    st->hdr->index_size = isz;
    for (i = 0; i < isz; i++) {
        st->index[i] = EMPTY;
    }
    for (i = 0; i < capacity; i++) {
        memset(st->slots + slot_size * i, 0, sizeof(sc_sess));
    }
    *out = st;
    return APR_SUCCESS;
}

static sc_sess *slot(sc_store *st, apr_int32_t i)
{
    return (sc_sess *)(st->slots + st->slot_size * (apr_size_t)i);
}

static char *slot_data(sc_sess *s)
{
    return (char *)(s + 1);
}

/* A lock word holds its owner's pid; one whose owner died is taken over, so a
 * child killed in the middle of a write cannot stop the store. */
static void lock_take(volatile apr_int32_t *w)
{
    apr_int32_t me = (apr_int32_t)getpid();
    unsigned spins = 0;
    for (;;) {
        apr_int32_t cur = 0;
        if (__atomic_compare_exchange_n(w, &cur, me, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            return;
        }
        if (++spins % 1024 == 0) {
            if (cur > 0 && kill((pid_t)cur, 0) != 0 && errno == ESRCH
                && __atomic_compare_exchange_n(w, &cur, me, 0, __ATOMIC_ACQUIRE,
                                               __ATOMIC_RELAXED)) {
                return;
            }
            sched_yield();
        }
    }
}

static void lock_give(volatile apr_int32_t *w)
{
    __atomic_store_n(w, 0, __ATOMIC_RELEASE);
}

/* A session is known by its id's base, the part before the first '.': the
 * route after it may change (JvmRouteBinderValve re-binds a session to the
 * member that took it over), and every id with the same base names the same
 * session. */
static apr_size_t base_len(const char *id)
{
    return strcspn(id, ".");
}

int sc_store_same(const char *a, const char *b)
{
    apr_size_t n = base_len(a);
    return n == base_len(b) && !memcmp(a, b, n);
}

static apr_uint32_t hash_id(const char *id)
{
    apr_uint32_t h = 2166136261u;
    for (; *id && *id != '.'; id++) {
        h = (h ^ (unsigned char)*id) * 16777619u;
    }
    return h;
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
        if (v >= 0 && sc_store_same(slot(st, v)->id, id)) {
            if (pos_out) {
                *pos_out = pos;
            }
            return v;
        }
    }
    return -1;
}

sc_store_rc sc_store_get(sc_store *st, apr_pool_t *p, const char *id, int touch,
                         sc_sess_copy *out)
{
    apr_int32_t i;
    sc_sess *s;
    int tries = 0;

    if (strlen(id) >= SC_SID_MAX) {
        return SC_STORE_NOTFOUND;
    }
    i = index_find(st, id, NULL);
    if (i < 0) {
        return SC_STORE_NOTFOUND;
    }
    s = slot(st, i);
    out->data = apr_palloc(p, st->hdr->slot_data + 1);
    for (;;) {
        apr_uint32_t before = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if ((before & 1) == 0) {
            int ok = s->used && sc_store_same(s->id, id);
            if (ok) {
                apr_uint32_t len = s->data_len;
                if (len > st->hdr->slot_data) {
                    len = 0;
                }
                memcpy(out->id, s->id, SC_SID_MAX);
                out->version = s->version;
                out->created = s->created;
                out->last_access = s->last_access;
                out->max_inactive = s->max_inactive;
                out->data_len = len;
                memcpy(out->data, slot_data(s), len);
                out->data[len] = '\0';
            }
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == before) {
                if (!ok) {
                    return SC_STORE_NOTFOUND;
                }
                break;
            }
        }
        if (++tries > 64) {
            sched_yield();
        }
    }
    if (touch) {
        apr_time_t now = apr_time_now();
        /* idle too long: gone, even before the engine's sweep removes it, and
         * not to be revived by this access */
        if (out->max_inactive > 0
            && now - out->last_access > apr_time_from_sec(out->max_inactive)) {
            return SC_STORE_NOTFOUND;
        }
        /* an access within a second of the last one is not worth a write */
        if (now - out->last_access < apr_time_from_sec(1)) {
            return SC_STORE_OK;
        }
    }
    if (touch) {
        sc_store_touch(st, id, apr_time_now());
        __atomic_store_n(&s->touched, 1, __ATOMIC_RELAXED);
    }
    return SC_STORE_OK;
}

sc_store_rc sc_store_put(sc_store *st, const char *id, const char *data, apr_uint32_t len,
                         apr_uint64_t base_version, apr_uint64_t force_version,
                         apr_time_t created, apr_time_t last_access,
                         apr_int64_t max_inactive, apr_uint64_t *new_version)
{
    apr_int32_t i;
    sc_sess *s;
    sc_store_rc rc = SC_STORE_OK;

    if (len > st->hdr->slot_data) {
        __atomic_add_fetch(&st->hdr->rejected_size, 1, __ATOMIC_RELAXED);
        return SC_STORE_TOOBIG;
    }
    if (strlen(id) >= SC_SID_MAX) {
        return SC_STORE_TOOBIG;
    }
    lock_take(&st->hdr->index_lock);
    i = index_find(st, id, NULL);
    if (i < 0) {
        /* a new session: a free slot and an index position */
        apr_uint32_t mask = st->hdr->index_size - 1, pos = hash_id(id) & mask, n, k;
        if (st->hdr->count >= st->hdr->capacity) {
            lock_give(&st->hdr->index_lock);
            __atomic_add_fetch(&st->hdr->rejected_full, 1, __ATOMIC_RELAXED);
            return SC_STORE_FULL;
        }
        /* from the hint on, wrapping: creating N sessions stays O(N) */
        {
            apr_uint32_t cap = st->hdr->capacity, start = st->hdr->free_hint % cap, i2;
            k = cap;
            for (i2 = 0; i2 < cap; i2++) {
                apr_uint32_t cand = (start + i2) % cap;
                if (!slot(st, (apr_int32_t)cand)->used) {
                    k = cand;
                    break;
                }
            }
            st->hdr->free_hint = k + 1;
        }
        if (k == st->hdr->capacity) {
            lock_give(&st->hdr->index_lock);
            __atomic_add_fetch(&st->hdr->rejected_full, 1, __ATOMIC_RELAXED);
            return SC_STORE_FULL;
        }
        s = slot(st, (apr_int32_t)k);
        lock_take(&s->lock);
        sc_shm_write_begin(&s->seq);
        memset(s->id, 0, SC_SID_MAX);
        apr_cpystrn(s->id, id, SC_SID_MAX);
        s->used = 1;
        s->version = force_version ? force_version : 1;
        s->created = created;
        s->last_access = last_access;
        s->max_inactive = max_inactive;
        memcpy(slot_data(s), data, len);
        s->data_len = len;
        sc_shm_write_end(&s->seq);
        lock_give(&s->lock);
        for (n = 0; n <= mask; n++, pos = (pos + 1) & mask) {
            if (st->index[pos] < 0) {
                __atomic_store_n(&st->index[pos], (apr_int32_t)k, __ATOMIC_RELEASE);
                break;
            }
        }
        st->hdr->count++;
        st->hdr->created++;
        *new_version = s->version;
        lock_give(&st->hdr->index_lock);
        return SC_STORE_OK;
    }
    lock_give(&st->hdr->index_lock);

    s = slot(st, i);
    lock_take(&s->lock);
    if (!s->used || !sc_store_same(s->id, id)) {
        rc = SC_STORE_NOTFOUND;
    }
    else if (!force_version && base_version && base_version != s->version) {
        *new_version = s->version;
        rc = SC_STORE_STALE;
    }
    else if (force_version && force_version <= s->version) {
        *new_version = s->version;    /* an older or repeated replica */
        rc = SC_STORE_STALE;
    }
    else {
        sc_shm_write_begin(&s->seq);
        if (force_version && strcmp(s->id, id) != 0) {
            /* a replica carries the id as its writer has it (re-bound) */
            memset(s->id, 0, SC_SID_MAX);
            apr_cpystrn(s->id, id, SC_SID_MAX);
        }
        s->version = force_version ? force_version : s->version + 1;
        if (last_access > s->last_access) {
            s->last_access = last_access;
        }
        s->max_inactive = max_inactive;
        memcpy(slot_data(s), data, len);
        s->data_len = len;
        sc_shm_write_end(&s->seq);
        *new_version = s->version;
        __atomic_add_fetch(&st->hdr->updated, 1, __ATOMIC_RELAXED);
    }
    lock_give(&s->lock);
    return rc;
}

sc_store_rc sc_store_remove(sc_store *st, const char *id)
{
    apr_uint32_t pos;
    apr_int32_t i;
    sc_sess *s;
    lock_take(&st->hdr->index_lock);
    i = index_find(st, id, &pos);
    if (i < 0) {
        lock_give(&st->hdr->index_lock);
        return SC_STORE_NOTFOUND;
    }
    s = slot(st, i);
    lock_take(&s->lock);
    sc_shm_write_begin(&s->seq);
    s->used = 0;
    s->data_len = 0;
    s->id[0] = '\0';
    sc_shm_write_end(&s->seq);
    lock_give(&s->lock);
    __atomic_store_n(&st->index[pos], DELETED, __ATOMIC_RELEASE);
    st->hdr->count--;
    st->hdr->removed++;
    lock_give(&st->hdr->index_lock);
    return SC_STORE_OK;
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
    lock_take(&s->lock);
    if (!s->used || !sc_store_same(s->id, new_id)) {
        rc = SC_STORE_NOTFOUND;
    }
    else if (!strcmp(s->id, new_id) || (expect && strcmp(s->id, expect) != 0)) {
        rc = SC_STORE_STALE;        /* already bound there, or bound elsewhere */
    }
    else {
        if (was) {
            apr_cpystrn(was, s->id, SC_SID_MAX);
        }
        sc_shm_write_begin(&s->seq);
        memset(s->id, 0, SC_SID_MAX);
        apr_cpystrn(s->id, new_id, SC_SID_MAX);
        sc_shm_write_end(&s->seq);
    }
    lock_give(&s->lock);
    return rc;
}

apr_uint64_t sc_store_bytes_in_use(sc_store *st)
{
    apr_uint64_t total = 0;
    apr_uint32_t i;
    for (i = 0; i < st->hdr->capacity; i++) {
        sc_sess *s = slot(st, (apr_int32_t)i);
        if (s->used) {
            total += s->data_len;     /* a racy sum: a figure for the page */
        }
    }
    return total;
}

void sc_store_touch(sc_store *st, const char *id, apr_time_t when)
{
    apr_int32_t i = index_find(st, id, NULL);
    sc_sess *s;
    if (i < 0) {
        return;
    }
    s = slot(st, i);
    lock_take(&s->lock);
    if (s->used && sc_store_same(s->id, id) && when > s->last_access) {
        sc_shm_write_begin(&s->seq);
        s->last_access = when;
        sc_shm_write_end(&s->seq);
    }
    lock_give(&s->lock);
}

void sc_store_each(sc_store *st, apr_pool_t *p,
                   int (*fn)(void *ctx, const sc_sess_copy *s, int touched), void *ctx,
                   int clear_touched)
{
    sc_store_each_from(st, p, 0, st->hdr->capacity, fn, ctx, clear_touched);
}

apr_uint32_t sc_store_each_from(sc_store *st, apr_pool_t *p, apr_uint32_t start,
                                apr_uint32_t max,
                                int (*fn)(void *ctx, const sc_sess_copy *s, int touched),
                                void *ctx, int clear_touched)
{
    apr_uint32_t k, seen = 0;
    sc_sess_copy c;
    c.data = apr_palloc(p, st->hdr->slot_data + 1);
    for (k = start; k < st->hdr->capacity && seen < max; k++) {
        sc_sess *s = slot(st, (apr_int32_t)k);
        int touched, ok = 0;
        if (!__atomic_load_n(&s->used, __ATOMIC_RELAXED)) {
            continue;
        }
        lock_take(&s->lock);
        if (s->used) {
            apr_uint32_t len = s->data_len <= st->hdr->slot_data ? s->data_len : 0;
            memcpy(c.id, s->id, SC_SID_MAX);
            c.version = s->version;
            c.created = s->created;
            c.last_access = s->last_access;
            c.max_inactive = s->max_inactive;
            c.data_len = len;
            memcpy(c.data, slot_data(s), len);
            c.data[len] = '\0';
            ok = 1;
        }
        touched = __atomic_exchange_n(&s->touched, clear_touched ? 0 : s->touched,
                                      __ATOMIC_RELAXED);
        lock_give(&s->lock);
        if (ok) {
            seen++;
            if (!fn(ctx, &c, touched)) {
                return k + 1;
            }
        }
    }
    return k;
}

const char *sc_store_rc_text(sc_store_rc rc)
{
    switch (rc) {
    case SC_STORE_OK:
        return "ok";
    case SC_STORE_NOTFOUND:
        return "no such session";
    case SC_STORE_FULL:
        return "the session store is full (Manager maxActiveSessions)";
    case SC_STORE_TOOBIG:
        return "the session is larger than the store's slots (Manager maxSessionSize)";
    case SC_STORE_STALE:
        return "the session changed meanwhile";
    }
    return "?";
}
