/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_shm.c -- the shared segment and its sequence locks (see sc_shm.h).
 */
#include "sc_shm.h"

#include <string.h>
#include <stddef.h>
#include <sched.h>

apr_status_t sc_shm_create(apr_pool_t *p, sc_shm_t **out)
{
    apr_shm_t *shm;
    apr_status_t rv = apr_shm_create(&shm, sizeof(sc_shm_t), NULL, p);
    sc_shm_t *s;
    if (rv != APR_SUCCESS) {
        return rv;
    }
    s = apr_shm_baseaddr_get(shm);
    memset(s, 0, sizeof(*s));
    s->magic = SC_SHM_MAGIC;
    s->version = SC_SHM_VERSION;
    *out = s;
    return APR_SUCCESS;
}

void sc_shm_write_begin(volatile apr_uint32_t *seq)
{
    __atomic_add_fetch(seq, 1, __ATOMIC_ACQ_REL);     /* odd: writing */
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

void sc_shm_write_end(volatile apr_uint32_t *seq)
{
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_add_fetch(seq, 1, __ATOMIC_ACQ_REL);     /* even: stable */
}

/* Copies len bytes at src under the sequence lock at seq. */
static void read_consistent(const volatile apr_uint32_t *seq, void *dst,
                            const void *src, size_t len)
{
    int tries = 0;
    for (;;) {
        apr_uint32_t before = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
        if ((before & 1) == 0) {
            memcpy(dst, src, len);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(seq, __ATOMIC_ACQUIRE) == before) {
                return;
            }
        }
        if (++tries > 64) {
            sched_yield();
        }
    }
}

void sc_shm_read_header(const sc_shm_t *shm, sc_shm_t *copy)
{
    read_consistent(&shm->seq, copy, shm, offsetof(sc_shm_t, members));
}

int sc_shm_read_member(const sc_shm_t *shm, int i, sc_shm_member *out)
{
    const sc_shm_member *m = &shm->members[i];
    read_consistent(&m->seq, out, m, sizeof(*m));
    return out->view != SC_VIEW_FREE;
}

const char *sc_view_name(int view)
{
    static const char *const names[] = {
        "free", "alive", "suspect", "dead", "left", "refused", "restarting", "configured"
    };
    return view >= 0 && view <= SC_VIEW_CONFIGURED ? names[view] : "?";
}
