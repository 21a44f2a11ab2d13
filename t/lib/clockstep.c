/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * clockstep.c -- an LD_PRELOAD shim that steps the wall clock of the
 * processes it is loaded into, and nothing else, for t/cluster/clock_step.t
 * (which builds it).  Not part of the module.
 *
 *   LD_PRELOAD=clockstep.so SC_CLOCKSTEP_FILE=/path/to/offset httpd ...
 *
 * gettimeofday, time and clock_gettime(CLOCK_REALTIME and
 * CLOCK_REALTIME_COARSE) answer the real time plus an offset; every other
 * clock (CLOCK_MONOTONIC, CLOCK_BOOTTIME, the CPU clocks) is passed through
 * as it is, as an administrator's `date -s` or an NTP step leaves them.
 * The offset is a signed 64-bit integer of microseconds followed by its
 * complement (~offset), both little-endian, at offset 0 of the file
 * SC_CLOCKSTEP_FILE names; the file is mapped shared and read-only once,
 * when the shim is loaded, so that a process forked afterwards (httpd's
 * children, its cluster engine) reads the same page, and a test steps the
 * clock of them all by writing 16 bytes to the file (no signal, no
 * restart).  Without the variable, or when the file cannot be
 * mapped, the offset is 0.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*gettimeofday_fn)(struct timeval *restrict, void *restrict);
typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static void *real_gettimeofday;
static void *real_clock_gettime;
static const volatile int64_t *offset_map;   /* [offset, ~offset]; NULL: 0 */

/* The real function called name, kept in *slot: the next definition after
 * this library's own.  Looked up when the shim is loaded, or at the first
 * call if that comes earlier (another library's constructor); two threads
 * racing there store the same pointer. */
static void *real_fn(void **slot, const char *name)
{
    void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!f) {
        f = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, f, __ATOMIC_RELEASE);
    }
    return f;
}

static gettimeofday_fn get_real_gettimeofday(void)
{
    return (gettimeofday_fn)real_fn(&real_gettimeofday, "gettimeofday");
}

static clock_gettime_fn get_real_clock_gettime(void)
{
    return (clock_gettime_fn)real_fn(&real_clock_gettime, "clock_gettime");
}

__attribute__((constructor)) static void clockstep_init(void)
{
    const char *path = getenv("SC_CLOCKSTEP_FILE");
    struct stat st;
    int fd;
    void *m;

    get_real_gettimeofday();
    get_real_clock_gettime();
    if (!path || !*path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        return;
    }
    /* a read past the end of the file would be a SIGBUS: it must hold the
     * 16 bytes already (the test writes them before it starts httpd, and
     * never shortens the file) */
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)(2 * sizeof(int64_t))) {
        close(fd);
        return;
    }
    m = mmap(NULL, 2 * sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);                        /* the mapping keeps the file */
    if (m != MAP_FAILED) {
        __atomic_store_n(&offset_map, (const volatile int64_t *)m, __ATOMIC_RELEASE);
    }
}

/* The offset in microseconds.  Nothing promises that the kernel copies the
 * test's 16 bytes at once: the pair is read until the value and its
 * complement agree, so that a read that crossed the write (even one of a
 * writer stalled halfway) is not taken. */
static int64_t offset_us(void)
{
    const volatile int64_t *m = __atomic_load_n(&offset_map, __ATOMIC_ACQUIRE);
    int64_t v, c;
    if (!m) {
        return 0;
    }
    do {
        v = m[0];
        c = m[1];
    } while (c != ~v);
    return v;
}

/* ts + us, normalised (tv_nsec in [0, 1e9)). */
static void add_us(struct timespec *ts, int64_t us)
{
    int64_t ns = (int64_t)ts->tv_nsec + (us % 1000000) * 1000;
    ts->tv_sec += (time_t)(us / 1000000);
    if (ns < 0) {
        ns += 1000000000;
        ts->tv_sec--;
    }
    else if (ns >= 1000000000) {
        ns -= 1000000000;
        ts->tv_sec++;
    }
    ts->tv_nsec = (long)ns;
}

int clock_gettime(clockid_t id, struct timespec *tp)
{
    clock_gettime_fn real = get_real_clock_gettime();
    int rv;
    if (!real) {
        return -1;
    }
    rv = real(id, tp);
    if (rv == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        add_us(tp, offset_us());
    }
    return rv;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    gettimeofday_fn real = get_real_gettimeofday();
    int rv;
    if (!real) {
        return -1;
    }
    rv = real(tv, tz);
    if (rv == 0) {                    /* (tv is declared non-null) */
        struct timespec ts;
        ts.tv_sec = tv->tv_sec;
        ts.tv_nsec = (long)tv->tv_usec * 1000;
        add_us(&ts, offset_us());
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
    }
    return rv;
}

/* time() as glibc's: the seconds of CLOCK_REALTIME_COARSE (here shifted). */
time_t time(time_t *tloc)
{
    struct timespec ts;
    time_t t;
    if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0) {
        return (time_t)-1;
    }
    t = ts.tv_sec;
    if (tloc) {
        *tloc = t;
    }
    return t;
}
