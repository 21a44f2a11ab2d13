/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_backup.h -- BackupManager in the engine (sc_backup.c), DeltaManager's
 * sibling: each session has a primary (the member that serves it) and one
 * backup holding its data; every other member keeps only its location (the
 * store's location table, sc_store.h).  An update goes to the backup alone;
 * a member asked for a session it knows only by location fetches it (from
 * the backup, then the primary) and becomes its primary.
 */
#ifndef SC_BACKUP_H
#define SC_BACKUP_H

#include "sc_core.h"

/* Does this engine run BackupManager (the block's Manager, a store, not a
 * front)? */
int sc_bk_active(const sc_engine *e);
/* Frame handler (in place of DeltaManager's): DATA. */
void sc_bk_on_data_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                         const unsigned char *payload);
/* A child's message (route empty): a FETCH of a session known here only by
 * location (answered once the session is here, or cannot be had), or a
 * change to replicate: FULL and DELTA go to the session's backup, the rest
 * to every member.  acked: the child waits for the answer. */
void sc_bk_on_request(sc_engine *e, sc_conn *c, apr_uint64_t ipc_seq,
                      const unsigned char *msg, apr_size_t len, int acked);
void sc_bk_tick(sc_engine *e, apr_time_t now);
/* c is about to be freed (the engine's forget handler): no fetch answers it. */
void sc_bk_forget_conn(sc_engine *e, sc_conn *c);
/* Leaving: expireSessionsOnShutdown expires the sessions this member is
 * primary of, on every member. */
void sc_bk_shutdown(sc_engine *e);

#endif /* SC_BACKUP_H */
