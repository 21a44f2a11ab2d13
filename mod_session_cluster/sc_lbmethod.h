/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_lbmethod.h -- what a member announces to the fronts (its URL, its load)
 * and the balancing methods of a front (sc_lbmethod.c).
 */
#ifndef SC_LBMETHOD_H
#define SC_LBMETHOD_H

#include "sc_private.h"

/* register_hooks: the lbmethod providers "bycluster" and "bysource" (read
 * by mod_proxy_balancer when it reads lbmethod=) and the parent's monitor. */
void sc_lb_register_hooks(apr_pool_t *p);

/* SessionClusterURL's value: NULL if it can be a BalancerMember's URL, else
 * why not. */
const char *sc_lb_check_url(apr_pool_t *p, const char *url);

/* post_config of a member (not a front): the URL its heartbeats announce
 * (url, from SessionClusterURL, or one made from its Listen and ServerName),
 * said in the log; and the thread that measures its MPM's load. */
void sc_lb_member_post_config(apr_pool_t *pconf, server_rec *s, const char *url);

#endif /* SC_LBMETHOD_H */
