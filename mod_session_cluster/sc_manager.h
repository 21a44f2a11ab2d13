/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_manager.h -- DeltaManager in the engine (sc_manager.c).
 */
#ifndef SC_MANAGER_H
#define SC_MANAGER_H

#include "sc_core.h"

/* A session message from a member (sc_repl.h), read whole and handed to its
 * type's handler.  ack_seq: the frame's number when the sender waits for an
 * ACK (0 if not).  Returns 1 when the message is applied (or this member has
 * its version already, or it needs no applying): the caller acknowledges now.
 * It also returns 1 for a message of a type this member does not know
 * (ignored, SC1397 at debug level), the probe's filler (ignored) and a
 * malformed message (its connection closed, SC1260).  Returns 0 when it is not
 * acknowledged now: a delta held until the version before it arrives
 * (answered when applied, or refused if it cannot be), or a change not
 * applied (the store refused it, a version before it is missing, or a
 * concurrent version here stays under the conflict rule, sc_store.h): refused
 * at once with FAIL_ACK. */
int sc_dm_on_message(sc_engine *e, sc_conn *c, const unsigned char *msg, apr_size_t len,
                     apr_uint64_t ack_seq);
/* Frame handler (the engine's table): DATA. */
void sc_dm_on_data_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                         const unsigned char *payload);
void sc_dm_tick(sc_engine *e, apr_time_t now);
void sc_dm_shutdown(sc_engine *e);
/* Expires every session here and on every member; returns how many. */
apr_uint32_t sc_dm_expire_all(sc_engine *e);
/* Starts over as a joining member: starting until a state transfer is done. */
void sc_dm_redo_transfer(sc_engine *e);
/* Whether a state transfer to this member runs: starting, it asked a member
 * for all sessions and has not yet had them all. */
int sc_dm_receiving_state(const sc_engine *e);

#endif /* SC_MANAGER_H */
