/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * mod_session_cluster.h -- the public interface of mod_session_cluster for other
 * httpd modules: optional functions, fetched with APR_RETRIEVE_OPTIONAL_FN.
 */
#ifndef MOD_SESSION_CLUSTER_H
#define MOD_SESSION_CLUSTER_H

#include "httpd.h"
#include "apr_optional.h"

#define MOD_SESSION_CLUSTER_VERSION "0.1.0"

/* The handler name of the status page (SetHandler cluster-manager). */
#define SC_STATUS_HANDLER "cluster-manager"

/**
 * This member's route (SessionClusterRoute, Tomcat's jvmRoute), or NULL when
 * the server is not a cluster member.
 */
APR_DECLARE_OPTIONAL_FN(const char *, sc_member_route, (server_rec *s));

/**
 * The effective cluster configuration (the pasted <Cluster> block after
 * Tomcat's defaults and the Tomcat 5.5 mapping) as "Key = value  # origin"
 * lines, allocated from p; NULL when the server has no <Cluster> block.
 */
APR_DECLARE_OPTIONAL_FN(const char *, sc_effective_config, (apr_pool_t *p, server_rec *s));

/**
 * Gives the request's cluster session a new id when the response is saved
 * (new 128 random bits, this member's route; the old id stops working on every
 * member, the client gets the new cookie): what an application or an
 * authentication module calls when a user logs in, against session fixation.
 * The same is done when a module sets the request note
 * SC_CHANGE_ID_NOTE, and by SessionClusterChangeIdOnLogin On when mod_auth_form
 * logs a user in.  Returns 1 when the request is in a SessionCluster location.
 */
APR_DECLARE_OPTIONAL_FN(int, sc_session_change_id, (request_rec *r));
#define SC_CHANGE_ID_NOTE "session-cluster-change-id"

#endif /* MOD_SESSION_CLUSTER_H */
