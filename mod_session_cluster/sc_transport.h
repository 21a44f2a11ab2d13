/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_transport.h -- the engine's sockets and frames (sc_transport.c): the
 * bottom layer of the engine.  It knows connections, frames, sealing and
 * replays, and nothing of what frames mean: a complete frame goes to the
 * handler its type has in the table the engine hands it (sc_tr_handlers),
 * and what happens to connections (lost, refused) is queued as events that
 * the engine takes after each round of the loop (sc_tr_next_event), never
 * delivered from inside a send.
 *
 * Adding a frame type: a value in sc_proto.h (and SC_MSG_MAX), a handler in
 * the layer that owns it, and one entry in the engine's table (sc_engine.c).
 */
#ifndef SC_TRANSPORT_H
#define SC_TRANSPORT_H

#include "sc_core.h"

/* A complete frame from a member (its payload opened when sealed), or a
 * child's request on the engine's local socket. */
typedef void sc_frame_fn(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                         const unsigned char *payload);

struct sc_tr_handlers {
    sc_frame_fn *frame[SC_MSG_MAX + 1];  /* by type; NULL: ignored */
    sc_frame_fn *ipc;                    /* a child's request */
    /* this member's heartbeat (HELLO, PONG, multicast), in 'state' */
    apr_size_t (*heartbeat)(sc_engine *e, int state, unsigned char *buf, apr_size_t cap);
    /* a multicast heartbeat, decoded (and opened) */
    sc_peer *(*heard)(sc_engine *e, const sc_heartbeat *hb, sc_conn *via, const char *from);
    /* c is about to be freed: forget every reference to it */
    void (*forget)(sc_engine *e, sc_conn *c);
};

/* What happened to a connection, for the layers above. */
enum {
    SC_EV_LOST = 1,       /* closed by the other side, or broken (conn, peer, goodbye) */
    SC_EV_REFUSED,        /* our connection to peer was refused */
    SC_EV_AUTH_REFUSED    /* peer refused what we sealed, or we its answer */
};
struct sc_tr_event {
    int kind;
    sc_conn *conn;                       /* LOST: valid until the event is taken */
    sc_peer *peer;                       /* NULL for a child's connection */
    int goodbye;                         /* LOST: the other side said goodbye first */
    char why[96];
    struct sc_tr_event *next;
};

/* The next queued event into *ev (1), or 0 when there is none. */
int sc_tr_next_event(sc_engine *e, sc_tr_event *ev);
/* A frame a handler finds malformed: counted, logged, the connection closed. */
void sc_tr_bad_frame(sc_engine *e, sc_conn *c, const char *why);
/* A frame a handler finds replayed (EncryptInterceptor): counted, logged, the
 * connection closed. */
void sc_tr_replayed(sc_engine *e, sc_conn *c);

int sc_tr_listen(sc_engine *e);
int sc_tr_mcast_open(sc_engine *e);
int sc_tr_ipc_listen(sc_engine *e);
void sc_tr_connect(sc_engine *e, sc_peer *p);
void sc_tr_close(sc_engine *e, sc_conn *c, const char *why);
int sc_tr_send_frame(sc_engine *e, sc_conn *c, int type, int flags, apr_uint64_t seq,
                     const void *payload, apr_size_t len);
void sc_tr_handle(sc_engine *e, struct pollfd *pfds, int n);
/* While corked, writes are buffered; uncorking sends every connection's. */
void sc_tr_cork(sc_engine *e);
void sc_tr_uncork(sc_engine *e);
int sc_tr_pollfds(sc_engine *e, struct pollfd *pfds, int max);
/* The loop's wait: at most timeout_us (microseconds) for something to do;
 * fills pfds with what is ready (as poll(2) would report it) and returns how
 * many, 0 on a timeout.  An epoll set kept between turns; poll(2) where epoll
 * fails (whole milliseconds, rounded up). */
int sc_tr_wait(sc_engine *e, struct pollfd *pfds, int max, apr_interval_time_t timeout_us);
void sc_tr_mcast_send(sc_engine *e, int state);
/* Closes connections that stay silent before HELLO or stall in a frame. */
void sc_tr_tick(sc_engine *e, apr_time_t now);
const char *sc_tr_resolve_auto(apr_pool_t *p, int *family, unsigned char *bytes,
                               char *text, apr_size_t textlen);

/* The penalty of an address lifted (a member there restarted, authentic). */
void sc_tr_forgive(sc_engine *e, const char *addr);
/* EncryptInterceptor's replay window: 0: new, taken; -1: seen already, or
 * older than the window. */
int sc_replay_take(sc_replay *w, apr_uint64_t seq);

#endif /* SC_TRANSPORT_H */
