/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_engine.h -- the cluster engine process, and the map of the module.
 *
 * One engine per httpd instance: a daemon forked by httpd's parent in
 * post_config (like mod_cgid's), which runs membership, the channel and
 * DeltaManager, and outlives graceful restarts that leave the cluster
 * configuration as it was.  Children never host it: they read what it
 * publishes in shared memory and hand it their messages over a local socket.
 *
 * The layers, top to bottom.  Each file calls only the files below it; the
 * transport reaches the layers above only through the handler table the
 * engine gives it, and reports what befalls connections as queued events
 * (build/check-layers.pl checks this at `make check`):
 *
 *   request side   mod_session_cluster.c (hooks, directives), sc_session.c
 *                  (mod_session's store), sc_status.c (the page: its model,
 *                  ?auto, ?json, Prometheus), sc_page.c (the page as HTML, its
 *                  history), sc_balancer.c (mod_proxy_balancer's workers)
 *   session server sc_msm.c: msm's <Manager>, its memcached and Redis clients
 *                  (called by the request side; calls nothing of the engine)
 *   parent/child   sc_supervisor.c: starts, keeps, replaces, stops the engine
 *                  (sc_retained: what outlives a restart); sc_client.c: a
 *                  child's requests to the engine
 *   engine         sc_engine.c: the composition root: settings, the handler
 *                  table, the event loop, the status it publishes
 *   BackupManager  sc_backup.c: where sessions are (primary, backup, locations),
 *                  fetches, promotions, re-placed backups; data changes
 *                  applied through DeltaManager's handlers
 *   DeltaManager   sc_manager.c: session messages applied to the store, held
 *                  deltas, state transfer, expiry
 *   channel        sc_channel.c: sends that wait for an ACK, retries,
 *                  broadcasts, answers to children; sc_cloud.c: members
 *                  found by CloudMembershipService (its asking thread, the
 *                  DNS provider), sc_kube.c (the Kubernetes API provider)
 *   membership     sc_membership.c: who is in the cluster, heartbeats,
 *                  failure detection
 *   transport      sc_transport.c: sockets, connections, frames, sealing,
 *                  replays, the Receiver's limits
 *   ground         sc_proto.c (frames, heartbeats), sc_repl.c (session
 *                  messages and deltas), sc_crypto.c, sc_shm.c (the published
 *                  segment), sc_store.c (the session store), sc_config.c,
 *                  sc_classes.c, sc_dump.c (the <Cluster> block)
 *
 * Data: sc_core.h holds the engine's structs (connections, members, sends
 * waiting for an ACK, the engine); each layer's functions are in its header.
 * A new frame type is a value in sc_proto.h plus one entry in the handler
 * table (sc_engine.c) pointing at its layer's handler; a new DeltaManager
 * message is one entry in sc_manager.c's table plus its codec in sc_repl.c.
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
    struct sc_ring *ring;             /* the children's hand-offs, or NULL */
    const char *route;
    int observer;
    unsigned char id[SC_ID_LEN];
} sc_engine_args;

/* The engine process: runs until told to leave, then exits. */
void sc_engine_run(const sc_engine_args *a) __attribute__((noreturn));

#endif /* SC_ENGINE_H */
