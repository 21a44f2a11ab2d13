/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_supervisor.h -- the parent side of the cluster engine: starts, keeps,
 * replaces and stops the engine process (sc_supervisor.c), and what outlives
 * a restart (sc_retained), which request-side code reads.
 *
 * Placement.  The engine is a daemon forked by httpd's parent process in
 * post_config, like mod_cgid's daemon, and supervised through httpd's
 * "other child" registry: if it dies it is started again.  Unlike mod_cgid's,
 * it is tied to the process pool, not to pconf: a graceful or hard restart that
 * leaves the cluster configuration unchanged keeps the same engine, so peers see
 * nothing at all; a restart that changes it replaces the engine, which first
 * tells its peers it is restarting.  Child processes (MaxConnectionsPerChild,
 * idle trimming) never host it, so their recycling cannot move it.
 */
#ifndef SC_SUPERVISOR_H
#define SC_SUPERVISOR_H

#include "sc_private.h"
#include "sc_proto.h"
#include "sc_shm.h"
#include "sc_store.h"
#include "sc_ring.h"

#define SC_FP_LEN 32

/* The layout of what outlives a restart (this struct, the status segment,
 * the session store).  A graceful restart loads the module's file again but
 * keeps what the parent retained: a build whose layout differs must not read
 * it.  Raise it with any change to sc_retained, sc_shm_t or the store. */
#ifndef SC_RETAINED_LAYOUT
#define SC_RETAINED_LAYOUT 0x53430010u
#endif

/* Values that must outlive a restart (process-pool lifetime). */
typedef struct {
    apr_uint32_t layout;              /* SC_RETAINED_LAYOUT; first, always */
    sc_shm_t *shm;
    pid_t engine_pid;
    apr_proc_t proc;
    /* SHA-256 of the configuration the engine runs (sc_supervisor.c: salted,
     * keys included as bytes; in memory only, never printed) */
    unsigned char fingerprint[SC_FP_LEN];
    int fingerprint_set;
    unsigned char fp_salt[32];        /* drawn when httpd starts */
    unsigned char id[SC_ID_LEN];      /* this member's id, kept for its lifetime */
    apr_uint64_t starts;
    int registered;                   /* other_child registration done */
    server_rec *s;                    /* current generation's main server */
    apr_pool_t *pconf;                /* current generation's pconf */
    sc_cluster_cfg *cfg;
    const char *route;
    int observer;
    sc_store *store;                  /* sessions (sc_store.c), NULL on a front */
    sc_ring *ring;                    /* asynchronous hand-offs (sc_ring.h); NULL:
                                       * none could be made, the socket only */
} sc_retained;

sc_retained *sc_retained_get(server_rec *s);
/* post_config: start, keep or replace the engine. */
int sc_supervisor_post_config(apr_pool_t *pconf, server_rec *s, sc_cluster_cfg *cfg,
                              const char *route, int observer);
/* check_config of `httpd -k stop` or `-k graceful-stop` (apachectl stop,
 * graceful-stop), which signals the running httpd once its hooks have run:
 * the running member's engine tells the cluster first that it leaves. */
void sc_supervisor_announce_stop(apr_pool_t *ptemp, server_rec *s);

#endif /* SC_SUPERVISOR_H */
