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
/* httpd -k stop or graceful-stop, before it signals the running httpd
 * (sc_supervisor.c): asks the engine behind the socket 'path' to tell every
 * member now that this one leaves, and waits for its answer (at most
 * timeout_ms).  Fills 'result' with the engine's sentence or why there was
 * none; returns 1 when the engine answered that it did. */
int sc_client_announce_stop(apr_pool_t *p, const char *path, long timeout_ms,
                            const char **result);

#endif /* SC_CLIENT_H */
