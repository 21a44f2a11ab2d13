/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_channel.h -- the channel's ACK and retry layer: sends that wait for an ACK, broadcasts,
 * answers to children (sc_channel.c).
 */
#ifndef SC_CHANNEL_H
#define SC_CHANNEL_H

#include "sc_core.h"

/* Answers a child's request on its engine connection (ok, the time it took,
 * and a sentence). */
void sc_ch_answer(sc_engine *e, sc_conn *ipc, apr_uint64_t ipc_seq, int ok,
                  double ms, const char *text);
/* Acknowledges frame 'seq' to member p (ok, or refused with a reason), on
 * connection c or, if that is gone, any open one to p. */
void sc_ch_ack(sc_engine *e, sc_peer *p, sc_conn *c, apr_uint64_t seq, int ok,
               const char *why);
/* An ACK or FAIL_ACK of frame 'seq' from the member on connection c. */
void sc_ch_on_ack(sc_engine *e, sc_conn *c, apr_uint64_t seq, int ok, const char *reason);
/* A connection to p was lost: p's acknowledged sends are sent again on a new
 * connection (maxRetryAttempts) or fail. */
void sc_ch_on_conn_lost(sc_engine *e, sc_peer *p);
/* c is about to be freed: nothing answers it any more. */
void sc_ch_forget_conn(sc_engine *e, sc_conn *c);
/* Frame handler (the engine's table): ACK and FAIL_ACK. */
void sc_ch_on_ack_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                        const unsigned char *payload);
/* Settles the sends whose member is gone or whose ACK is late. */
void sc_ch_tick(sc_engine *e, apr_time_t now);
/* Sends a DeltaManager message to every live member, without waiting;
 * returns to how many. */
int sc_ch_broadcast(sc_engine *e, const void *msg, apr_size_t len, sc_peer *except);
/* A child's replication message to every live member; acked: the child waits
 * for every member's ACK (one answer when all are settled).  Kept a moment
 * while members known before are not met yet (sc_ch_expect_init). */
void sc_ch_broadcast_request(sc_engine *e, sc_conn *c, apr_uint64_t ipc_seq,
                             const unsigned char *msg, apr_size_t len, int acked);
/* The members the previous engine saw alive (the shared members' table as
 * it left it, read before this engine publishes its own): a child's change
 * for every member is kept until they are met, or for dropTime
 * (sc_channel.c, "Early changes"). */
void sc_ch_expect_init(sc_engine *e);
/* The engine leaves: what was kept goes to the members met, now. */
void sc_ch_early_flush(sc_engine *e);
/* A child's message to member p; acked: the child waits for p's ACK. */
void sc_ch_send_request(sc_engine *e, sc_conn *c, apr_uint64_t ipc_seq, sc_peer *p,
                        const unsigned char *msg, apr_size_t len, int acked);

#endif /* SC_CHANNEL_H */
