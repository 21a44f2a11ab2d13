/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_kube.h -- CloudMembershipService's kubernetes provider: one request to
 * the Kubernetes API server for the pods of a namespace (sc_kube.c).  Used by
 * sc_cloud.c's thread; it knows nothing of the engine.
 */
#ifndef SC_KUBE_H
#define SC_KUBE_H

#include "apr_pools.h"

#include <arpa/inet.h>

typedef struct sc_kube sc_kube;

/* At most this many bytes of an API server's answer are read. */
#define SC_KUBE_MAX_RESPONSE (16 * 1024 * 1024)

/* Reads the provider's environment (the variables Tomcat's
 * KubernetesMembershipProvider reads).  Never NULL: when something is
 * missing, sc_kube_problem() says what, and every fetch fails with it.
 * A request gives up soon after *stop becomes true. */
sc_kube *sc_kube_new(apr_pool_t *p, const char *self_addr, long connect_ms, long read_ms,
                     volatile int *stop);
const char *sc_kube_problem(const sc_kube *k);
/* The URL asked for (for the log). */
const char *sc_kube_url(const sc_kube *k);

/* One request: 0 with the addresses of the running pods (not this one, no
 * duplicates, at most max) in addrs[0..*n-1] and in note what was skipped
 * (empty if nothing); -1 with the reason in err.  tmp: for this request
 * only (the caller clears it). */
int sc_kube_fetch(sc_kube *k, apr_pool_t *tmp, char (*addrs)[INET6_ADDRSTRLEN], int max,
                  int *n, char *note, apr_size_t notelen, char *err, apr_size_t errlen);

#endif /* SC_KUBE_H */
