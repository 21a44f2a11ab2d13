/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_client.h -- the child side of the engine: a request's messages handed
 * to the engine over its local socket (sc_client.c).
 */
#ifndef SC_CLIENT_H
#define SC_CLIENT_H

#include "sc_private.h"

/* Request from a child (cluster-manager): send a probe message to 'route' and
 * wait for its acknowledgement.  Fills 'result' with a sentence; returns 1 when
 * the member acknowledged. */
int sc_client_probe(apr_pool_t *p, server_rec *s, const char *route, apr_size_t size,
                    int acked, const char **result, double *ms);
/* Hands a message to the engine: to member 'route', or to every live member when
 * route is NULL (DeltaManager replication); acked: wait for the members' ACKs. */
int sc_client_request(apr_pool_t *p, server_rec *s, const char *route,
                      const void *msg, apr_size_t size, int acked, const char **result,
                      double *ms);

#endif /* SC_CLIENT_H */
