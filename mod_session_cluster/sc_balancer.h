/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_balancer.h -- SessionClusterBalancer (sc_balancer.c).
 */
#ifndef SC_BALANCER_H
#define SC_BALANCER_H

#include "sc_private.h"
#include "sc_shm.h"

struct proxy_worker;

/* Registers the monitor hook and, when mod_proxy is loaded before this
 * module, proxy's pre_request hook; returns 0 when mod_proxy is not there. */
int sc_balancer_register_hooks(void);
/* post_config: a watchdog thread keeps the bits up to date (mod_watchdog). */
void sc_balancer_post_config(apr_pool_t *pconf, server_rec *s);
/* NULL when the front has what SessionClusterBalancer needs, else why not. */
const char *sc_balancer_check(void);
/* Brings the named balancers' BalancerMembers in line with the members. */
void sc_balancer_sync(server_rec *s);
/* An admin's choice on this front's page for the BalancerMembers with
 * 'route' in the named balancers: "drain" (N), "disable" (D), or "enable"
 * (N, D and S cleared); the cluster never takes it back.  The number of
 * workers changed, -1 if none has that route. */
int sc_balancer_admin(server_rec *s, const char *route, const char *what);
/* Logs, once per configuration, what does not match. */
void sc_balancer_report(server_rec *s, apr_pool_t *pconf);
/* Every BalancerMember of the named balancers with its member (or NULL), then
 * every member without a BalancerMember (balancer and w NULL); a named
 * balancer that does not exist comes with w and m NULL. */
void sc_balancer_each(server_rec *s, apr_pool_t *p,
                      void (*fn)(void *ctx, const char *balancer, struct proxy_worker *w,
                                 const sc_shm_member *m),
                      void *ctx);
/* The member announcing 'route' (not a front), copied; 0 if none was heard. */
int sc_balancer_member_of(const sc_shm_t *shm, const char *route, sc_shm_member *out);
/* "MissingGrowthRoom: balancer route" lines for the ready members that have
 * no worker in a named balancer with no spare worker slot left. */
void sc_balancer_growth_lines(server_rec *s, apr_pool_t *p, apr_array_header_t *lines);
/* The spare worker slots (the balancers' growth=) left in the named balancers. */
unsigned int sc_balancer_free_slots(server_rec *s);
/* mod_proxy's status words for a worker ("Ok", "Drn Ok", "Err", ...). */
const char *sc_balancer_worker_status(apr_pool_t *p, struct proxy_worker *w);
/* The worker's name (its URL) and route. */
const char *sc_balancer_worker_name(struct proxy_worker *w);
const char *sc_balancer_worker_route(struct proxy_worker *w);
/* Its redirect route: where its sticky sessions go while it is unusable
 * (set by the configuration, balancer-manager, or the domain steering). */
const char *sc_balancer_worker_redirect(struct proxy_worker *w);
/* A member's state as a word: its announced state when alive, else its view;
 * "none" for NULL. */
const char *sc_balancer_member_state(const sc_shm_member *m);

#endif /* SC_BALANCER_H */
