/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_membership.h -- the member view and failure detection (sc_membership.c).
 */
#ifndef SC_MEMBERSHIP_H
#define SC_MEMBERSHIP_H

#include "sc_core.h"

void sc_mb_init(sc_engine *e);
/* Frame handlers (the engine's table): HELLO, PING and PONG; GOODBYE. */
void sc_mb_on_heartbeat_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                              const unsigned char *payload);
void sc_mb_on_goodbye_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                            const unsigned char *payload);
apr_size_t sc_mb_heartbeat(sc_engine *e, int state, unsigned char *buf, apr_size_t cap);
sc_peer *sc_mb_on_heartbeat(sc_engine *e, const sc_heartbeat *hb, sc_conn *via,
                            const char *from);
void sc_mb_on_goodbye(sc_engine *e, sc_peer *p, const char *why);
void sc_mb_on_conn_lost(sc_engine *e, sc_peer *p, const char *why);
void sc_mb_on_refused(sc_engine *e, sc_peer *p, const char *why);
/* Our connection to p was refused (closed before p answered our HELLO, or
 * p's answer failed authentication): back off exponentially; cleared when p
 * answers on a connection of ours or comes back as a new incarnation. */
void sc_mb_on_auth_refused(sc_engine *e, sc_peer *p, const char *why);
void sc_mb_tick(sc_engine *e, apr_time_t now);
/* By when the failure detection will have given its verdict on p if p stays
 * silent (dead after dropTime, or suspect and checked within connectTimeout
 * with TcpFailureDetector); 0 when p is neither alive nor under check. */
apr_time_t sc_mb_verdict_due(const sc_engine *e, const sc_peer *p);
void sc_mb_publish(sc_engine *e);
void sc_mb_set_view(sc_engine *e, sc_peer *p, int view, const char *verdict);
sc_peer *sc_mb_find_route(sc_engine *e, const char *route);
sc_peer *sc_mb_add_member(sc_engine *e, const char *host, int port);

#endif /* SC_MEMBERSHIP_H */
