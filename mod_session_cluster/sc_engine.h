/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_engine.h -- the cluster engine process: one per httpd instance, forked by
 * httpd's parent (sc_supervisor.c) and running membership, the channel and
 * DeltaManager until it is told to leave.
 */
#ifndef SC_ENGINE_H
#define SC_ENGINE_H

#include "sc_private.h"
#include "sc_shm.h"
#include "sc_store.h"
#include "sc_proto.h"

/* Exit status of an engine that cannot start: do not restart it.  httpd's
 * MPMs hand the maintenance function the exit code alone (or the number of
 * the signal), APR's own reaping the raw wait status: 78 reads the same way
 * in both, as no signal has that number. */
#define SC_ENGINE_STARTUP_ERROR 78

/* What the supervisor hands the engine process it forks. */
typedef struct {
    server_rec *s;
    sc_cluster_cfg *cfg;
    sc_shm_t *shm;
    sc_store *store;                  /* NULL on a front (observer) */
    const char *route;
    int observer;
    unsigned char id[SC_ID_LEN];
} sc_engine_args;

/* The engine process: runs until told to leave, then exits. */
void sc_engine_run(const sc_engine_args *a) __attribute__((noreturn));

/* transitional: request-side files still include this header */
#include "sc_supervisor.h"
#include "sc_client.h"
#define sc_engine_request sc_client_request
#define sc_engine_probe sc_client_probe
#define sc_engine_post_config sc_supervisor_post_config

#endif /* SC_ENGINE_H */
