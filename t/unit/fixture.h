/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fixture.h -- an engine in memory for the unit tests of its layers, and the
 * one seam: the transport (fixture.c says what it does instead).
 */
#ifndef SC_UNIT_FIXTURE_H
#define SC_UNIT_FIXTURE_H

#include "sc_core.h"
#include "sc_transport.h"

/* A frame the code under test sent (sc_tr_send_frame). */
typedef struct {
    sc_conn *conn;                 /* the connection it went on */
    sc_peer *peer;                 /* conn->peer then (NULL: a child's) */
    int kind;                      /* conn->kind then */
    int type, flags;
    apr_uint64_t seq;
    unsigned char *payload;        /* a copy (NUL after it) */
    apr_size_t len;
} ut_frame;

/* What the transport was asked to do, and the test's switches. */
typedef struct {
    ut_frame *frames;
    int nframes, cap;
    int connects;                  /* sc_tr_connect calls */
    int opened;                    /* ... that gave the member a connection */
    int refuse_connect;            /* switch: sc_tr_connect opens nothing */
    int refuse_sends;              /* switch: sends to members fail (-1) */
    int closes;                    /* sc_tr_close of an open connection */
    char closed_why[128];          /* the last reason */
    int bad_frames;                /* sc_tr_bad_frame */
    char bad_why[128];
    int replayed;                  /* sc_tr_replayed */
    int mcast_sends;               /* sc_tr_mcast_send */
    int forgiven;                  /* sc_tr_forgive */
    int replay_takes;              /* sc_replay_take */
    apr_uint64_t replay_seq;       /* ... its last number */
} ut_seam;

extern ut_seam ut;

/* The process's pool (APR initialized on the first call). */
apr_pool_t *ut_pool(void);

/* An engine as sc_engine_run sets it up, without a socket: the <Cluster>
 * block parsed by the module's reader (its settings in e->set), a status
 * segment, a session store of 'capacity' sessions (0: none), this member's
 * route, id (16 times id_byte) and Receiver address 127.0.0.1 at the block's
 * port; state READY.  A block the reader refuses ends the program. */
sc_engine *ut_engine(const char *route, unsigned char id_byte, const char *block,
                     apr_uint32_t capacity);

/* A member the engine knows: alive and ready, id 16 times id_byte, at
 * 127.0.0.1:port, listed last. */
sc_peer *ut_peer(sc_engine *e, const char *route, unsigned char id_byte, int port);

/* An open connection: SC_CONN_OUT (becomes p->out), SC_CONN_IN (from p, or
 * NULL: not said HELLO yet) or SC_CONN_IPC (a child's; p NULL). */
sc_conn *ut_conn(sc_engine *e, sc_peer *p, int kind);

/* A heartbeat of member id_byte at 127.0.0.1:port. */
void ut_heartbeat(sc_heartbeat *hb, unsigned char id_byte, apr_uint64_t incarnation,
                  const char *route, int port, int state);
/* ... encoded as the payload of a HELLO/PING/PONG frame; hdr for its handler. */
apr_size_t ut_heartbeat_frame(const sc_heartbeat *hb, int type, apr_uint64_t seq,
                              sc_frame_hdr *hdr, unsigned char *buf, apr_size_t cap);

/* A frame header of 'type' from member id_byte, for a frame handler. */
void ut_hdr(sc_frame_hdr *h, int type, int flags, unsigned char id_byte, apr_uint64_t seq,
            apr_size_t len);

/* Forgets the frames recorded so far. */
void ut_reset_frames(void);
/* The frames of 'type' (0: any) on connection c (NULL: any); how many. */
int ut_count(int type, const sc_conn *c);
/* The last (or the first) frame of 'type' on c (NULL: any); NULL if none. */
const ut_frame *ut_last(int type, const sc_conn *c);
const ut_frame *ut_first(int type, const sc_conn *c);
/* DATA frames on c whose DeltaManager message is of type repl (first byte). */
int ut_count_repl(unsigned repl, const sc_conn *c);
const ut_frame *ut_last_repl(unsigned repl, const sc_conn *c);

/* An answer to a child (ACK or FAIL_ACK on its connection): the text after
 * the time; an ACK frame to a member: the number acknowledged, and the reason
 * of a FAIL_ACK (NUL-terminated copies in the frame). */
const char *ut_answer_text(const ut_frame *f);
apr_uint64_t ut_acked_seq(const ut_frame *f);
const char *ut_ack_reason(const ut_frame *f);

/* How many pending sends (waiting for an ACK) the engine holds. */
int ut_npending(const sc_engine *e);

#endif /* SC_UNIT_FIXTURE_H */
