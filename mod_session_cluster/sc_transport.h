/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_transport.h -- the engine's sockets and frames (sc_transport.c).
 */
#ifndef SC_TRANSPORT_H
#define SC_TRANSPORT_H

#include "sc_core.h"

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
