/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_msm.h -- the session server: memcached-session-manager's <Manager>
 * (de.javakaffee.web.msm.MemcachedBackupSessionManager), written at server
 * level in httpd.conf, with or without a <Cluster> block.
 *
 * Sticky mode (msm's default): the member keeps its sessions in its own store
 * as it does in a cluster, and backs every change up to memcached or Redis
 * (within sessionBackupTimeout, or after the response with
 * sessionBackupAsync); a member asked for a session it does not hold loads it
 * from the server.  The clients (memcached's text protocol, Redis's RESP) are
 * small, bounded and run in the request's thread with a deadline: a server
 * that is slow or down costs a request at most its timeout, and a node that
 * failed is skipped for SC_MSM_RETRY_S before it is tried again.
 *
 * Non-sticky mode (sticky="false"): the server is the store, read and written
 * per request; lockingMode all / auto / uriPattern:<regex> lock the session on the
 * server from before it is read until it is stored (sc_msm_lock); with several
 * memcached nodes every write is followed by msm's secondary copy
 * ("bak:<id>") on the node after the session's own, read when that node is
 * down (sc_msm_load).
 *
 * Layer: request side (called by sc_session.c, the page by sc_status.c); it
 * calls nothing of the engine.
 */
#ifndef SC_MSM_H
#define SC_MSM_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"

#define SC_MSM_MAX_NODES 16
#define SC_MSM_RETRY_S 1

/* lockingMode (non-sticky) */
#define SC_MSM_LOCK_NONE 0
#define SC_MSM_LOCK_ALL  1
#define SC_MSM_LOCK_AUTO 2
#define SC_MSM_LOCK_URI  3
/* A lock's life on the server (msm's: memcached "add" with 5 s), and its
 * wait: msm's retries (10 ms, doubled up to 500 ms) within operationTimeout. */
#define SC_MSM_LOCK_EXPIRY_MS 5000
#define SC_MSM_LOCK_RETRY_MS 10
#define SC_MSM_LOCK_RETRY_MAX_MS 500

typedef struct sc_msm_cfg sc_msm_cfg;

/* Reads the element from its directive line ('args': what follows "<Manager")
 * and, when it spans several lines, the following lines of cmd->config_file up
 * to "/>" or "</Manager>"; checks every attribute.  NULL and *out set, or the
 * error text naming file and line. */
const char *sc_msm_read(cmd_parms *cmd, const char *args, sc_msm_cfg **out);
/* The same from memory (tests, fuzzers): 'text' holds the attributes. */
const char *sc_msm_parse(apr_pool_t *p, const char *file, int line, const char *text,
                         sc_msm_cfg **out);

/* Where the element was written ("file:line"). */
const char *sc_msm_where(const sc_msm_cfg *c);
/* Without a <Cluster> block: the block the member runs with (a member alone:
 * no membership, no peers; the JvmRouteBinderValve re-binds a session loaded
 * from the server to this member's route). */
const char *sc_msm_cluster_text(apr_pool_t *p, const sc_msm_cfg *c);
/* Lines for -D DUMP_CLUSTER: every attribute, and why the ones that do not act
 * have no effect here ('cluster_block': a <Cluster> block is written, whose
 * Manager sets maxInactiveInterval). */
void sc_msm_dump(apr_pool_t *p, const sc_msm_cfg *c, int cluster_block,
                 apr_array_header_t *lines);
/* The "no effect" attributes written, as "name (reason)" texts, for the startup
 * warning; NULL when there are none. */
const char *sc_msm_no_effect(apr_pool_t *p, const sc_msm_cfg *c, int cluster_block);

/* post_config: resolves the nodes, makes the counters every process shares,
 * and makes 'c' the active configuration (NULL: none). */
const char *sc_msm_activate(apr_pool_t *pconf, server_rec *s, sc_msm_cfg *c);
int sc_msm_on(void);
/* 1: sticky (the member's store holds the sessions, the server a backup);
 * 0: non-sticky (the server is the store: read and written per request). */
int sc_msm_sticky(void);

/* msm's node id: with several memcached nodes a session id is
 * "<hex>-<node id>.<route>" and the session lives on that node (asked first);
 * Redis, or a single node: no node id.  1: ids carry it. */
int sc_msm_node_ids(void);
/* The id a session should have now: 'id' itself while the node it names is
 * up (and is not a failover node while a regular one is up), else the same
 * hex and route with the node it goes to now (a new id without a node part:
 * placed by its hash; a node part that names no node is ignored).  An id
 * that would not fit in 'max' bytes (with its NUL) is made without a node
 * part (said once in the log). */
const char *sc_msm_node_id(apr_pool_t *p, const char *id, apr_size_t max);

/* Does requestUriIgnorePattern match this request (msm leaves it alone)? */
int sc_msm_ignored(request_rec *r);
/* Loads a session from the server: 1 found (*data, *created, *max_inactive
 * set, in p), 0 not there, -1 the server could not be asked.  Non-sticky
 * with several memcached nodes, a session whose own node is down is read
 * from its secondary copy ("bak:<id>") on the nodes after it. */
int sc_msm_load(request_rec *r, apr_pool_t *p, const char *id, const char **data,
                apr_time_t *created, apr_int64_t *max_inactive);
/* Backs a session up (synchronously within sessionBackupTimeout, or after the
 * response with sessionBackupAsync); the server lets it expire after
 * max_inactive seconds without a backup (<= 0: never).  0: a synchronous
 * backup no node took. */
int sc_msm_backup(request_rec *r, const char *id, const char *data, apr_time_t created,
                  apr_int64_t max_inactive);
/* A session this request read and may not save: after the response, unless
 * the request backed it up or removed it, its expiry on the server is pushed
 * back to max_inactive seconds from now (memcached "touch", Redis "PEXPIRE"),
 * so that a session only read stays on the server as long as on the member;
 * one the server does not hold (restarted, evicted) is backed up again with
 * 'data'. */
void sc_msm_touch(request_rec *r, const char *id, const char *data, apr_time_t created,
                  apr_int64_t max_inactive);
/* Removes a session from the server (invalidated, or its id changed).  0: a
 * node could not be asked (down, or failed). */
int sc_msm_remove(request_rec *r, const char *id);

/* lockingMode, non-sticky: does this request take its session's lock before
 * it reads it (all: every request; uriPattern: the ones whose "METHOD
 * uri?query" matches, the query left out for POST as msm does; auto: the
 * ones whose "METHOD uri?query" was not seen to leave the session unchanged;
 * none, sticky, requestUriIgnorePattern: no)?  A request that needs none is
 * counted. */
int sc_msm_lock_wanted(request_rec *r);
/* lockingMode="auto": this request read its session (changed 0) or changed
 * it (1); at its end its request id is remembered as read-only or as
 * modifying (msm's ReadOnlyRequestsCache). */
void sc_msm_auto_note(request_rec *r, int changed);
/* Takes the lock of session 'id' for this request (the main one; held until
 * sc_msm_unlock or the request's end): memcached "add lock:<id>", Redis "SET
 * lock:<id> <token> NX PX", retried within operationTimeout.  1: held (or
 * already held by this request), 0: not taken in time, or the server could
 * not be asked (*why says which); the caller answers 503. */
int sc_msm_lock(request_rec *r, const char *id, const char **why);
/* Does this request hold the lock of 'id' and may it still write under it
 * (not so close to the lock's expiry that another request could take it
 * while the write is under way)?  1 yes, 0 no: the caller refuses the
 * change. */
int sc_msm_lock_valid(request_rec *r, const char *id);
/* Releases the request's lock, if it holds one (only its own: Redis compares
 * the token, memcached deletes it only while it cannot have expired). */
void sc_msm_unlock(request_rec *r);

/* The page: general fields, then one row per node. */
typedef void sc_msm_field_fn(void *ctx, int row, const char *key, const char *text,
                             apr_uint64_t num, int is_num, int counter, const char *help);
void sc_msm_fields(apr_pool_t *p, sc_msm_field_fn *fn, void *ctx);

#endif /* SC_MSM_H */
