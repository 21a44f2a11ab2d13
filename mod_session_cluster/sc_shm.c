/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_shm.c -- the shared segment and its sequence locks (see sc_shm.h).
 */
#include "sc_shm.h"
#include "sc_clock.h"

#include "apr_strings.h"

#include <string.h>
#include <stddef.h>
#include <sched.h>
#include <pthread.h>
#include <unistd.h>

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
    s->header_size = (apr_uint32_t)offsetof(sc_shm_t, members);
    s->member_size = (apr_uint32_t)sizeof(sc_shm_member);
    s->max_members = SC_MAX_MEMBERS;
    s->total_size = (apr_uint32_t)sizeof(sc_shm_t);
    *out = s;
    return APR_SUCCESS;
}

void sc_layout_differs(apr_pool_t *p, const char **diff, const char *what,
                       apr_uint64_t found, apr_uint64_t expected)
{
    if (found != expected) {
        *diff = apr_psprintf(p, "%s%s%s %" APR_UINT64_T_FMT " (this build: %"
                             APR_UINT64_T_FMT ")", *diff ? *diff : "",
                             *diff ? ", " : "", what, found, expected);
    }
}

const char *sc_shm_check(const sc_shm_t *s, apr_pool_t *p)
{
    const char *diff = NULL;
    if (s->magic != SC_SHM_MAGIC) {
        return apr_psprintf(p, "magic number 0x%08x (this build: 0x%08x)",
                            (unsigned)s->magic, (unsigned)SC_SHM_MAGIC);
    }
    sc_layout_differs(p, &diff, "version", s->version, SC_SHM_VERSION);
    sc_layout_differs(p, &diff, "header bytes", s->header_size,
                      offsetof(sc_shm_t, members));
    sc_layout_differs(p, &diff, "bytes per member row", s->member_size,
                      sizeof(sc_shm_member));
    sc_layout_differs(p, &diff, "member rows", s->max_members, SC_MAX_MEMBERS);
    sc_layout_differs(p, &diff, "bytes in all", s->total_size, sizeof(sc_shm_t));
    return diff;
}

/* A writer makes the sequence odd, writes, and makes it even.  One that died
 * in its write (a SIGKILLed child, a killed engine) left it odd: the next
 * writer still makes it odd and then even, never the other way round, so a
 * dead writer does not turn the sequence's meaning over for good. */
void sc_shm_write_begin(volatile apr_uint32_t *seq)
{
    apr_uint32_t s = __atomic_load_n(seq, __ATOMIC_RELAXED), n;
    do {
        n = s + ((s & 1) ? 2 : 1);                    /* odd: writing */
    } while (!__atomic_compare_exchange_n(seq, &s, n, 0, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

void sc_shm_write_end(volatile apr_uint32_t *seq)
{
    apr_uint32_t s, n;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    s = __atomic_load_n(seq, __ATOMIC_RELAXED);
    do {
        n = s + ((s & 1) ? 1 : 2);                    /* even: stable */
    } while (!__atomic_compare_exchange_n(seq, &s, n, 0, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
}

/* How long a reader waits for a write that does not end (the sequence odd
 * and unchanged) before it copies the record as it is: the engine, the only
 * writer here, died or is stopped in the middle of a write, and a record
 * for the page or the balancer, even torn, beats a request that never ends. */
#define SC_SHM_STUCK_WRITE apr_time_from_msec(200)

/* Copies len bytes at src under the sequence lock at seq; 0, or -1 when the
 * copy was taken while a write that did not end was in progress. */
static int read_consistent(const volatile apr_uint32_t *seq, void *dst,
                           const void *src, size_t len)
{
    int tries = 0;
    apr_uint32_t stuck = 0;
    apr_time_t since = 0;
    for (;;) {
        apr_uint32_t before = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
        if ((before & 1) == 0) {
            memcpy(dst, src, len);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(seq, __ATOMIC_ACQUIRE) == before) {
                return 0;
            }
        }
        else if (before != stuck) {
            stuck = before;           /* a write began: watch it */
            since = 0;
        }
        if (++tries > 64) {
            if ((before & 1) && before == stuck) {
                apr_time_t now = sc_steady_us();
                if (!since) {
                    since = now;
                }
                else if (now - since > SC_SHM_STUCK_WRITE) {
                    memcpy(dst, src, len);
                    return -1;
                }
            }
            sched_yield();
        }
    }
}

/* The text fields of a copy, terminated whatever a torn copy holds. */
#define TERMINATE(f) ((f)[sizeof(f) - 1] = '\0')

void sc_shm_read_header(const sc_shm_t *shm, sc_shm_t *copy)
{
    read_consistent(&shm->seq, copy, shm, offsetof(sc_shm_t, members));
    TERMINATE(copy->self_route);
    TERMINATE(copy->self_addr);
    TERMINATE(copy->self_domain);
    TERMINATE(copy->membership);
    TERMINATE(copy->mcast);
    TERMINATE(copy->ipc_path);
    TERMINATE(copy->not_implemented);
    TERMINATE(copy->nonce);
}

int sc_shm_read_member(const sc_shm_t *shm, int i, sc_shm_member *out)
{
    const sc_shm_member *m = &shm->members[i];
    apr_uint32_t before = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);
    /* a free slot (most of them) is not copied: a front looks at every slot
     * on every request */
    if (!(before & 1) && __atomic_load_n(&m->view, __ATOMIC_RELAXED) == SC_VIEW_FREE) {
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&m->seq, __ATOMIC_ACQUIRE) == before) {
            out->view = SC_VIEW_FREE;
            return 0;
        }
    }
    read_consistent(&m->seq, out, m, sizeof(*m));
    TERMINATE(out->route);
    TERMINATE(out->addr);
    TERMINATE(out->domain);
    TERMINATE(out->verdict);
    return out->view != SC_VIEW_FREE;
}

const char *sc_view_name(int view)
{
    static const char *const names[] = {
        "free", "alive", "suspect", "dead", "left", "refused", "restarting", "configured"
    };
    return view >= 0 && view <= SC_VIEW_CONFIGURED ? names[view] : "?";
}

/* This process's id without a system call each time (getpid is one; a
 * child's hand-off and a front's request ask it): kept once known, forgotten
 * in a forked child. */
static pid_t self_pid;
static pthread_once_t self_pid_once = PTHREAD_ONCE_INIT;

static void self_pid_forked(void)
{
    __atomic_store_n(&self_pid, 0, __ATOMIC_RELAXED);
}

static void self_pid_init(void)
{
    pthread_atfork(NULL, NULL, self_pid_forked);
}

pid_t sc_self_pid(void)
{
    pid_t pid;
    pthread_once(&self_pid_once, self_pid_init);
    pid = __atomic_load_n(&self_pid, __ATOMIC_RELAXED);
    if (!pid) {
        pid = getpid();
        __atomic_store_n(&self_pid, pid, __ATOMIC_RELAXED);
    }
    return pid;
}
