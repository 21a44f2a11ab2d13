/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_clock.h -- a clock for intervals and deadlines that a step of the wall
 * clock must not stretch or cut short (the engine's own clock, sc_engine_now
 * in sc_core.h, is built on it).
 */
#ifndef SC_CLOCK_H
#define SC_CLOCK_H

#include "apr_time.h"

#include <time.h>

/* Microseconds of a clock that no one sets and that counts a suspend too
 * (CLOCK_BOOTTIME; CLOCK_MONOTONIC where that is missing).  Its values mean
 * nothing across a reboot, and nothing to another machine or in shared
 * records that outlive the machine's uptime. */
static APR_INLINE apr_time_t sc_steady_us(void)
{
    struct timespec ts;
#ifdef CLOCK_BOOTTIME
    if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0) {
        return (apr_time_t)ts.tv_sec * APR_USEC_PER_SEC + ts.tv_nsec / 1000;
    }
#endif
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (apr_time_t)ts.tv_sec * APR_USEC_PER_SEC + ts.tv_nsec / 1000;
}

#endif /* SC_CLOCK_H */
