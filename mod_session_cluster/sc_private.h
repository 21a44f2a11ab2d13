/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_private.h -- declarations shared by the module's source files.
 */
#ifndef SC_PRIVATE_H
#define SC_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_tables.h"
#include "apr_hash.h"

#include "mod_session_cluster.h"
#include "sc_config.h"
#include "sc_clock.h"

/* Log tags: one per call site, never reused; the next free number is in
 * build/logno-next (build/logno reserves numbers). */
#define SCLOGNO(n) "SC" #n ": "

extern module AP_MODULE_DECLARE_DATA session_cluster_module;

/* Limits on what the <Cluster> reader accepts from httpd.conf. */
#define SC_MAX_BLOCK_BYTES   (1024 * 1024)
#define SC_MAX_BLOCK_LINES   20000
#define SC_MAX_BLOCK_DEPTH   16
#define SC_MAX_ROUTE_LEN     63     /* mod_proxy's route field holds 64 bytes */
#define SC_MAX_COOKIE_ATTRS  512

/* Server configuration: everything here is global (main server only). */
typedef struct {
    sc_cluster_cfg *cluster;          /* NULL: no <Cluster> block */
    const char *route;                /* SessionClusterRoute */
    const char *route_where;          /* "file:line" of SessionClusterRoute */
    apr_array_header_t *balancers;    /* sc_balancer_ref */
    struct sc_msm_cfg *msm;           /* msm's <Manager> at server level (sc_msm.c),
                                       * or NULL */
    int cluster_made;                 /* the <Cluster> is the one a <Manager>
                                       * alone runs with (sc_msm_cluster_text) */
} sc_server_conf;

typedef struct {
    const char *name;                 /* "balancer://tcsrvs" */
    const char *where;                /* "file:line" */
} sc_balancer_ref;

/* A route: 1-63 letters, digits, '-' or '_'. */
int sc_valid_route(const char *r);

/* The main server's module configuration: the first member of the module's
 * server record (mod_session_cluster.c checks that it stays first). */
static APR_INLINE sc_server_conf *sc_server_conf_get(server_rec *s)
{
    return ap_get_module_config(s->module_config, &session_cluster_module);
}

/* Per-directory configuration (<Location>): which locations store their
 * mod_session sessions in the cluster, and under which cookie. */
typedef struct {
    int enabled;                      /* SessionCluster On|Off */
    int enabled_set;
    const char *where;                /* "file:line" of SessionCluster On */
    const char *cookie_name;          /* SessionClusterCookieName */
    const char *cookie_attrs;
    int cookie_set;
    int change_id_on_login;           /* SessionClusterChangeIdOnLogin */
    int change_id_set;
} sc_dir_conf;

#define SC_DEFAULT_COOKIE_NAME  "JSESSIONID"
#define SC_DEFAULT_COOKIE_ATTRS "path=/"

/* Logs a configuration warning once per httpd process, although httpd reads
 * its configuration twice at startup and again on every restart. */
void sc_warn_once(server_rec *s, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A log line that requests can provoke at will, limited in one process (its
 * threads share the gate: atomic operations, no lock): the first `first`
 * calls log, then at most one every 10 s.  sc_log_gate_open (when: now) says
 * whether this call logs and, when it does, how many calls did not since the
 * last line that did (*skipped).  A gate is a zeroed static of the call site. */
typedef struct {
    apr_uint32_t last;                /* second of the last line logged; 0: none */
    apr_uint32_t skipped;             /* calls not logged since */
    apr_uint32_t seen;                /* calls in all (for `first`) */
} sc_log_gate;

static APR_INLINE int sc_log_gate_open(sc_log_gate *g, apr_uint32_t first, apr_time_t when,
                                       apr_uint32_t *skipped)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(when);
    apr_uint32_t seen = __atomic_add_fetch(&g->seen, 1, __ATOMIC_RELAXED);
    apr_uint32_t prev = __atomic_load_n(&g->last, __ATOMIC_RELAXED);
    if (seen <= first) {
        __atomic_store_n(&g->last, now, __ATOMIC_RELAXED);
    }
    else if ((prev && now - prev < 10)
             || !__atomic_compare_exchange_n(&g->last, &prev, now, 0, __ATOMIC_RELAXED,
                                             __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&g->skipped, 1, __ATOMIC_RELAXED);
        return 0;
    }
    *skipped = __atomic_exchange_n(&g->skipped, 0, __ATOMIC_RELAXED);
    return 1;
}


#endif /* SC_PRIVATE_H */
