/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * mod_session_cluster.c -- module record, directives, configuration hooks and
 * the cluster-manager handler.
 *
 * Directives (DESIGN.md section 2):
 *   <Cluster className="...SimpleTcpCluster" ...> ... </Cluster>   server config
 *   SessionClusterRoute   name                                       server config
 *   SessionClusterBalancer balancer://name                           server config
 *   SessionCluster        On|Off                                     directory
 *   SessionClusterCookieName name [attributes]                       directory
 */
#include "sc_private.h"
#include "sc_engine.h"
#include "sc_session.h"
#include "sc_balancer.h"
#include <dlfcn.h>

#include "ap_mpm.h"
#include "http_main.h"
#include "util_cookies.h"
#include "util_script.h"

#include <stdio.h>

APLOG_USE_MODULE(session_cluster);

/* ------------------------------------------------------------------------- */
/* Configuration records                                                      */
/* ------------------------------------------------------------------------- */

/* Locations that use the cluster, kept for the dump and the startup checks. */
typedef struct {
    const char *path;
    const char *what;
    const char *where;
} sc_location_note;

typedef struct {
    sc_server_conf conf;
    apr_array_header_t *locations;    /* sc_location_note */
} sc_server_rec;

static void *sc_create_server_config(apr_pool_t *p, server_rec *s)
{
    sc_server_rec *sr = apr_pcalloc(p, sizeof(*sr));
    sr->conf.balancers = apr_array_make(p, 2, sizeof(sc_balancer_ref));
    sr->locations = apr_array_make(p, 4, sizeof(sc_location_note));
    return sr;
}

/* Everything in the server config is global: a virtual host sees the main
 * server's cluster, route and balancers; only its location notes are its own. */
static void *sc_merge_server_config(apr_pool_t *p, void *basev, void *addv)
{
    sc_server_rec *base = basev, *add = addv;
    sc_server_rec *sr = apr_pcalloc(p, sizeof(*sr));
    sr->conf = base->conf;
    sr->locations = apr_array_append(p, base->locations, add->locations);
    return sr;
}

static void *sc_create_dir_config(apr_pool_t *p, char *dir)
{
    sc_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));
    dc->cookie_name = SC_DEFAULT_COOKIE_NAME;
    dc->cookie_attrs = SC_DEFAULT_COOKIE_ATTRS;
    return dc;
}

static void *sc_merge_dir_config(apr_pool_t *p, void *basev, void *addv)
{
    sc_dir_conf *base = basev, *add = addv;
    sc_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));

    dc->enabled = add->enabled_set ? add->enabled : base->enabled;
    dc->enabled_set = add->enabled_set || base->enabled_set;
    dc->where = add->enabled_set ? add->where : base->where;
    dc->cookie_name = add->cookie_set ? add->cookie_name : base->cookie_name;
    dc->cookie_attrs = add->cookie_set ? add->cookie_attrs : base->cookie_attrs;
    dc->cookie_set = add->cookie_set || base->cookie_set;
    return dc;
}

static sc_server_rec *server_rec_of(server_rec *s)
{
    return ap_get_module_config(s->module_config, &session_cluster_module);
}

sc_server_conf *sc_server_conf_get(server_rec *s)
{
    return &server_rec_of(s)->conf;
}

static const char *where_of(cmd_parms *cmd)
{
    if (cmd->directive && cmd->directive->filename) {
        return apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                            cmd->directive->line_num);
    }
    return "(unknown)";
}

/* ------------------------------------------------------------------------- */
/* <Cluster>                                                                  */
/* ------------------------------------------------------------------------- */

/* The name of the node that carries a parsed block into the configuration walk.
 * httpd strips a trailing '>' from every directive name it reads, so no line in
 * a configuration file can invoke this name: only sc_cmd_cluster_read makes it. */
#define SC_PARSED_BLOCK_DIRECTIVE "<Cluster>"

/* EXEC_ON_READ: runs while httpd reads the file, with the file still open.
 * 'mconfig' is the ap_directive_t ** of the sub-tree to put in the block's
 * place; the parsed settings travel there as the node's data, so that the
 * placement checks run in the normal walk with the real server and context. */
static const char *sc_cmd_cluster_read(cmd_parms *cmd, void *mconfig, const char *args)
{
    ap_directive_t **sub_tree = mconfig;
    ap_directive_t *node;
    sc_cluster_cfg *cfg = NULL;
    const char *err;
    const char *file = cmd->config_file->name;
    int line = cmd->config_file->line_number;

    err = sc_config_read_block(cmd, args, &cfg);
    if (err) {
        return err;
    }
    node = apr_pcalloc(cmd->pool, sizeof(*node));
    node->directive = SC_PARSED_BLOCK_DIRECTIVE;
    node->args = "";
    node->filename = file;
    node->line_num = line;
    node->data = cfg;
    *sub_tree = node;
    return NULL;
}

static const char *sc_cmd_cluster_apply(cmd_parms *cmd, void *dummy, const char *args)
{
    sc_server_rec *sr = server_rec_of(cmd->server);
    sc_cluster_cfg *cfg = cmd->directive ? cmd->directive->data : NULL;
    const char *err;

    if (!cfg) {
        return "<Cluster> is read by mod_session_cluster's <Cluster ...> section";
    }
    if ((err = ap_check_cmd_context(cmd, GLOBAL_ONLY))) {
        return apr_psprintf(cmd->pool, "<Cluster> at %s:%d: the cluster block belongs "
                            "in the main server configuration, outside <VirtualHost>, "
                            "<Directory>, <Location> and <Files>", cfg->file, cfg->line);
    }
    if (sr->conf.cluster) {
        return apr_psprintf(cmd->pool, "%s:%d: a second <Cluster> block (the first is at "
                            "%s:%d): one httpd is one cluster member", cfg->file,
                            cfg->line, sr->conf.cluster->file, sr->conf.cluster->line);
    }
    sr->conf.cluster = cfg;
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* The other directives                                                       */
/* ------------------------------------------------------------------------- */

static int valid_route(const char *r)
{
    apr_size_t n = strlen(r);
    if (n == 0 || n > SC_MAX_ROUTE_LEN) {
        return 0;
    }
    for (; *r; r++) {
        if (!apr_isalnum(*r) && *r != '-' && *r != '_') {
            return 0;
        }
    }
    return 1;
}

static const char *sc_cmd_route(cmd_parms *cmd, void *dummy, const char *arg)
{
    sc_server_rec *sr = server_rec_of(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }
    if (!valid_route(arg)) {
        return apr_psprintf(cmd->pool, "SessionClusterRoute '%s': a route is 1-%d "
                            "letters, digits, '-' or '_' (it follows the '.' in "
                            "session ids and must match a BalancerMember route=)",
                            arg, SC_MAX_ROUTE_LEN);
    }
    if (sr->conf.route) {
        return apr_psprintf(cmd->pool, "SessionClusterRoute is already set to '%s' at %s",
                            sr->conf.route, sr->conf.route_where);
    }
    sr->conf.route = arg;
    sr->conf.route_where = where_of(cmd);
    return NULL;
}

static const char *sc_cmd_balancer(cmd_parms *cmd, void *dummy, const char *arg)
{
    sc_server_rec *sr = server_rec_of(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *name, *c;
    sc_balancer_ref *ref;
    int i;

    if (err) {
        return err;
    }
    if (strncasecmp(arg, "balancer://", 11) != 0 || arg[11] == '\0') {
        return apr_psprintf(cmd->pool, "SessionClusterBalancer '%s': expected "
                            "balancer://name, as in <Proxy balancer://name>", arg);
    }
    name = arg + 11;
    if (strlen(name) > 64) {
        return "SessionClusterBalancer: the balancer name is longer than 64 characters";
    }
    for (c = name; *c; c++) {
        if (!apr_isalnum(*c) && !strchr("-_.", *c)) {
            return apr_psprintf(cmd->pool, "SessionClusterBalancer '%s': the name may "
                                "hold letters, digits, '-', '_' and '.'", arg);
        }
    }
    for (i = 0; i < sr->conf.balancers->nelts; i++) {
        ref = &APR_ARRAY_IDX(sr->conf.balancers, i, sc_balancer_ref);
        if (strcasecmp(ref->name, arg) == 0) {
            return apr_psprintf(cmd->pool, "SessionClusterBalancer %s is already named "
                                "at %s", arg, ref->where);
        }
    }
    ref = apr_array_push(sr->conf.balancers);
    ref->name = apr_pstrcat(cmd->pool, "balancer://", name, NULL);
    ap_str_tolower((char *)ref->name);
    ref->where = where_of(cmd);
    return NULL;
}

static void note_location(cmd_parms *cmd, const char *what)
{
    sc_server_rec *sr = server_rec_of(cmd->server);
    sc_location_note *n = apr_array_push(sr->locations);
    n->path = cmd->path ? cmd->path : "(server)";
    n->what = what;
    n->where = where_of(cmd);
}

static const char *sc_cmd_session_cluster(cmd_parms *cmd, void *dconf, int flag)
{
    sc_dir_conf *dc = dconf;
    dc->enabled = flag;
    dc->enabled_set = 1;
    dc->where = where_of(cmd);
    note_location(cmd, flag ? "SessionCluster On" : "SessionCluster Off");
    return NULL;
}

/* RFC 6265 cookie-name: a token. */
static int valid_cookie_name(const char *n)
{
    if (!*n || strlen(n) > 128) {
        return 0;
    }
    for (; *n; n++) {
        if (*n <= 32 || *n >= 127 || strchr("()<>@,;:\\\"/[]?={}", *n)) {
            return 0;
        }
    }
    return 1;
}

static const char *sc_cmd_cookie_name(cmd_parms *cmd, void *dconf, const char *args)
{
    sc_dir_conf *dc = dconf;
    const char *name = ap_getword_conf(cmd->pool, &args);
    const char *attrs = args;
    const char *c;

    while (apr_isspace(*attrs)) {
        attrs++;
    }
    if (!valid_cookie_name(name)) {
        return apr_psprintf(cmd->pool, "SessionClusterCookieName '%s': a cookie name is "
                            "1-128 characters without spaces, controls or any of "
                            "()<>@,;:\\\"/[]?={}", name);
    }
    if (strlen(attrs) > SC_MAX_COOKIE_ATTRS) {
        return apr_psprintf(cmd->pool, "SessionClusterCookieName: the attributes are "
                            "longer than %d characters", SC_MAX_COOKIE_ATTRS);
    }
    for (c = attrs; *c; c++) {
        if (apr_iscntrl(*c) || *c == ',') {
            return "SessionClusterCookieName: the attributes may not contain control "
                   "characters or ','";
        }
    }
    dc->cookie_name = name;
    dc->cookie_attrs = *attrs ? apr_pstrdup(cmd->pool, attrs) : SC_DEFAULT_COOKIE_ATTRS;
    dc->cookie_set = 1;
    note_location(cmd, apr_psprintf(cmd->pool, "SessionClusterCookieName %s %s",
                                     dc->cookie_name, dc->cookie_attrs));
    return NULL;
}

static const command_rec sc_cmds[] = {
    AP_INIT_RAW_ARGS("<Cluster", sc_cmd_cluster_read, NULL, RSRC_CONF | EXEC_ON_READ,
                     "a Tomcat <Cluster> block, pasted verbatim, up to </Cluster>"),
    AP_INIT_RAW_ARGS(SC_PARSED_BLOCK_DIRECTIVE, sc_cmd_cluster_apply, NULL, RSRC_CONF,
                     "(internal: a <Cluster> block after reading)"),
    AP_INIT_TAKE1("SessionClusterRoute", sc_cmd_route, NULL, RSRC_CONF,
                  "this member's route, as Tomcat's jvmRoute (e.g. node1)"),
    AP_INIT_TAKE1("SessionClusterBalancer", sc_cmd_balancer, NULL, RSRC_CONF,
                  "a balancer://name whose members follow cluster membership"),
    AP_INIT_FLAG("SessionCluster", sc_cmd_session_cluster, NULL, RSRC_CONF | OR_AUTHCFG,
                 "On: mod_session keeps this location's sessions in the cluster"),
    AP_INIT_RAW_ARGS("SessionClusterCookieName", sc_cmd_cookie_name, NULL,
                     RSRC_CONF | OR_AUTHCFG,
                     "the session cookie's name and attributes (default JSESSIONID path=/)"),
    { NULL }
};

/* ------------------------------------------------------------------------- */
/* The effective configuration                                                */
/* ------------------------------------------------------------------------- */

void sc_dump_all(apr_pool_t *p, server_rec *s, apr_array_header_t *lines)
{
    sc_server_rec *sr = server_rec_of(s);
    server_rec *vs;
    int i;

    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(p, "# mod_session_cluster %s effective configuration",
                     MOD_SESSION_CLUSTER_VERSION);
    APR_ARRAY_PUSH(lines, const char *) =
        sr->conf.route ? apr_psprintf(p, "SessionClusterRoute = %s  # %s", sr->conf.route,
                                      sr->conf.route_where)
                       : "SessionClusterRoute = (unset)";
    for (i = 0; i < sr->conf.balancers->nelts; i++) {
        sc_balancer_ref *ref = &APR_ARRAY_IDX(sr->conf.balancers, i, sc_balancer_ref);
        APR_ARRAY_PUSH(lines, const char *) =
            apr_psprintf(p, "SessionClusterBalancer = %s  # %s", ref->name, ref->where);
    }
    for (vs = s; vs; vs = vs->next) {
        sc_server_rec *vr = server_rec_of(vs);
        for (i = 0; i < vr->locations->nelts; i++) {
            sc_location_note *n = &APR_ARRAY_IDX(vr->locations, i, sc_location_note);
            if (vs != s && i < sr->locations->nelts) {
                continue;     /* inherited from the main server, printed already */
            }
            APR_ARRAY_PUSH(lines, const char *) =
                apr_psprintf(p, "Location %s: %s  # %s", n->path, n->what, n->where);
        }
    }
    if (sr->conf.cluster) {
        sc_config_dump(p, sr->conf.cluster, lines);
    }
    else {
        APR_ARRAY_PUSH(lines, const char *) = "# no <Cluster> block";
    }
}

static const char *sc_effective_config(apr_pool_t *p, server_rec *s)
{
    apr_array_header_t *lines;
    if (!server_rec_of(s)->conf.cluster) {
        return NULL;
    }
    lines = apr_array_make(p, 256, sizeof(const char *));
    sc_dump_all(p, s, lines);
    return apr_array_pstrcat(p, lines, '\n');
}

static const char *sc_member_route(server_rec *s)
{
    return server_rec_of(s)->conf.route;
}

/* ------------------------------------------------------------------------- */
/* Startup checks and the dump                                                */
/* ------------------------------------------------------------------------- */

/* The locations (of every virtual host) with SessionCluster On. */
static apr_array_header_t *cluster_locations(apr_pool_t *p, server_rec *s)
{
    apr_array_header_t *on = apr_array_make(p, 4, sizeof(const sc_location_note *));
    server_rec *vs;
    int i;
    for (vs = s; vs; vs = vs->next) {
        sc_server_rec *vr = server_rec_of(vs);
        for (i = 0; i < vr->locations->nelts; i++) {
            const sc_location_note *n = &APR_ARRAY_IDX(vr->locations, i, sc_location_note);
            if (!strcmp(n->what, "SessionCluster On")) {
                APR_ARRAY_PUSH(on, const sc_location_note *) = n;
            }
        }
    }
    return on;
}

static int sc_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                           server_rec *s)
{
    apr_array_header_t *on = cluster_locations(ptemp, s);
    sc_server_rec *sr = server_rec_of(s);
    int i, bad = 0;

    if (!sr->conf.cluster) {
        if (sr->conf.route) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1101)
                         "SessionClusterRoute at %s needs a <Cluster> block",
                         sr->conf.route_where);
            bad = 1;
        }
        for (i = 0; i < sr->conf.balancers->nelts; i++) {
            sc_balancer_ref *ref = &APR_ARRAY_IDX(sr->conf.balancers, i, sc_balancer_ref);
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1102)
                         "SessionClusterBalancer %s at %s needs a <Cluster> block with "
                         "the members' Channel and Membership", ref->name, ref->where);
            bad = 1;
        }
        for (i = 0; i < on->nelts; i++) {
            const sc_location_note *n = APR_ARRAY_IDX(on, i, const sc_location_note *);
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1103)
                         "SessionCluster On at %s (%s) needs a <Cluster> block",
                         n->where, n->path);
            bad = 1;
        }
    }
    else if (!dlsym(RTLD_DEFAULT, "ap_hook_session_load")) {
        for (i = 0; i < on->nelts; i++) {
            const sc_location_note *n = APR_ARRAY_IDX(on, i, const sc_location_note *);
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1106)
                         "SessionCluster On at %s needs mod_session, loaded before "
                         "mod_session_cluster (LoadModule session_module first)", n->where);
            bad = 1;
        }
    }
    if (sr->conf.balancers->nelts > 0 && sc_balancer_check()) {
        sc_balancer_ref *ref = &APR_ARRAY_IDX(sr->conf.balancers, 0, sc_balancer_ref);
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1113)
                     "SessionClusterBalancer %s at %s %s", ref->name, ref->where,
                     sc_balancer_check());
        bad = 1;
    }
    if (sr->conf.cluster && !sr->conf.route && sr->conf.balancers->nelts == 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1104)
                     "the <Cluster> block at %s:%d needs SessionClusterRoute (this "
                     "member's route, Tomcat's jvmRoute), or SessionClusterBalancer on a "
                     "front balancer", sr->conf.cluster->file, sr->conf.cluster->line);
        bad = 1;
    }
    return bad ? !OK : OK;
}

/* Starts, keeps or replaces the cluster engine (sc_engine.c). */
static int sc_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                          server_rec *s)
{
    sc_server_rec *sr = server_rec_of(s);
    int observer;

    /* httpd reads its configuration twice at startup: act on the second */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    observer = !sr->conf.route && sr->conf.balancers->nelts > 0;
    return sc_engine_post_config(pconf, s, sr->conf.cluster,
                                 sr->conf.route ? sr->conf.route : "front", observer);
}

/* httpd -t -D DUMP_CLUSTER prints the effective configuration. */
static void sc_test_config(apr_pool_t *pconf, server_rec *s)
{
    apr_array_header_t *lines;
    int i;

    if (!ap_exists_config_define("DUMP_CLUSTER")) {
        return;
    }
    lines = apr_array_make(pconf, 256, sizeof(const char *));
    sc_dump_all(pconf, s, lines);
    for (i = 0; i < lines->nelts; i++) {
        printf("%s\n", APR_ARRAY_IDX(lines, i, const char *));
    }
    fflush(stdout);
}

/* ------------------------------------------------------------------------- */
/* cluster-manager handler                                                    */
/* ------------------------------------------------------------------------- */

/* What the engine knows, from shared memory. */
typedef struct {
    int have;                         /* an engine has published */
    sc_shm_t hdr;
    sc_shm_member m[SC_MAX_MEMBERS];
    int n;
} sc_view;

static void read_view(server_rec *s, sc_view *v)
{
    sc_retained *r = sc_retained_get(s);
    int i;
    v->have = 0;
    v->n = 0;
    if (!r->shm || !server_rec_of(s)->conf.cluster) {
        return;
    }
    sc_shm_read_header(r->shm, &v->hdr);
    v->have = 1;
    for (i = 0; i < SC_MAX_MEMBERS; i++) {
        if (sc_shm_read_member(r->shm, i, &v->m[v->n])) {
            v->n++;
        }
    }
}

static const char *ms_ago(apr_pool_t *p, apr_time_t t)
{
    return t ? apr_psprintf(p, "%" APR_TIME_T_FMT, apr_time_as_msec(apr_time_now() - t))
             : "-";
}

/* A front's BalancerMembers and their members (SessionClusterBalancer). */
static void auto_balancer(void *ctx, const char *balancer, struct proxy_worker *w,
                          const sc_shm_member *m)
{
    request_rec *r = ctx;
    if (balancer && w) {
        ap_rprintf(r, "BalancerMember: balancer=%s route=%s url=%s status=%s member=%s\n",
                   balancer, sc_balancer_worker_route(w), sc_balancer_worker_name(w),
                   sc_balancer_worker_status(r->pool, w), sc_balancer_member_state(m));
        if (!m) {
            ap_rprintf(r, "UnmatchedBalancerMember: %s %s\n", balancer,
                       sc_balancer_worker_route(w)[0] ? sc_balancer_worker_route(w) : "-");
        }
    }
    else if (balancer) {
        ap_rprintf(r, "MissingBalancer: %s\n", balancer);
    }
    else if (m) {
        ap_rprintf(r, "UnmatchedMember: %s\n", m->route);
    }
}

static void auto_engine(request_rec *r, const sc_view *v)
{
    const sc_shm_t *h = &v->hdr;
    int i, alive = 0;
    if (!v->have) {
        return;
    }
    ap_rprintf(r, "EnginePid: %" APR_PID_T_FMT "\n", h->engine_pid);
    ap_rprintf(r, "EngineState: %s\n", h->engine_pid ? sc_member_state_name((int)h->engine_state)
                                                      : "not running");
    ap_rprintf(r, "EngineStarts: %" APR_UINT64_T_FMT "\n", h->engine_starts);
    ap_rprintf(r, "EngineUptimeMs: %s\n", h->engine_pid ? ms_ago(r->pool, h->engine_started) : "-");
    ap_rprintf(r, "Incarnation: %" APR_UINT64_T_FMT "\n", h->incarnation);
    ap_rprintf(r, "Receiver: %s:%u\n", h->self_addr, h->self_port);
    ap_rprintf(r, "Membership: %s\n", h->membership);
    ap_rprintf(r, "Multicast: %s\n", h->mcast[0] ? h->mcast : "off");
    ap_rprintf(r, "NotImplemented: %s\n", h->not_implemented);
    ap_rprintf(r, "EngineSocket: %s\n", h->ipc_path);
    for (i = 0; i < v->n; i++) {
        if (v->m[i].view == SC_VIEW_ALIVE) {
            alive++;
        }
    }
    ap_rprintf(r, "MembersKnown: %d\n", v->n);
    ap_rprintf(r, "MembersAlive: %d\n", alive);
    ap_rprintf(r, "MsgsIn: %" APR_UINT64_T_FMT "\nMsgsOut: %" APR_UINT64_T_FMT "\n",
               h->c.msgs_in, h->c.msgs_out);
    ap_rprintf(r, "BytesIn: %" APR_UINT64_T_FMT "\nBytesOut: %" APR_UINT64_T_FMT "\n",
               h->c.bytes_in, h->c.bytes_out);
    ap_rprintf(r, "HeartbeatsIn: %" APR_UINT64_T_FMT "\nHeartbeatsOut: %" APR_UINT64_T_FMT "\n",
               h->c.heartbeats_in, h->c.heartbeats_out);
    ap_rprintf(r, "BadFrames: %" APR_UINT64_T_FMT "\nBadHeartbeats: %" APR_UINT64_T_FMT "\n",
               h->c.bad_frames, h->c.bad_heartbeats);
    ap_rprintf(r, "AcksIn: %" APR_UINT64_T_FMT "\nAcksOut: %" APR_UINT64_T_FMT "\n",
               h->c.acks_in, h->c.acks_out);
    ap_rprintf(r, "AckTimeouts: %" APR_UINT64_T_FMT "\nSendFailures: %" APR_UINT64_T_FMT "\n",
               h->c.ack_timeouts, h->c.send_failures);
    {
        sc_retained *ret = sc_retained_get(r->server);
        if (ret->store) {
            const sc_store_hdr *sh = ret->store->hdr;
            ap_rprintf(r, "SessionsActive: %u\nSessionsCapacity: %u\nSessionMaxSize: %u\n",
                       sh->count, sh->capacity, sh->slot_data);
            ap_rprintf(r, "SessionsCreated: %" APR_UINT64_T_FMT "\nSessionsUpdated: %"
                       APR_UINT64_T_FMT "\nSessionsRemoved: %" APR_UINT64_T_FMT
                       "\nSessionsExpired: %" APR_UINT64_T_FMT "\n", sh->created,
                       sh->updated, sh->removed, sh->expired);
            ap_rprintf(r, "SessionsRejectedFull: %" APR_UINT64_T_FMT
                       "\nSessionsRejectedSize: %" APR_UINT64_T_FMT "\n",
                       sh->rejected_full, sh->rejected_size);
            ap_rprintf(r, "ReplicatedIn: %" APR_UINT64_T_FMT "\nReplicatedOut: %"
                       APR_UINT64_T_FMT "\nTransferIn: %" APR_UINT64_T_FMT
                       "\nTransferOut: %" APR_UINT64_T_FMT "\nLastTransferMs: %"
                       APR_TIME_T_FMT "\nLastTransferSessions: %" APR_UINT64_T_FMT "\n",
                       sh->replicated_in, sh->replicated_out, sh->transfer_in,
                       sh->transfer_out, sh->last_transfer_ms, sh->last_transfer_count);
            ap_rprintf(r, "SessionsRebound: %" APR_UINT64_T_FMT "\n", sh->rebound);
        }
    }
    ap_rprintf(r, "Nonce: %s\n", h->nonce);
    sc_balancer_each(r->server, r->pool, auto_balancer, r);
    for (i = 0; i < v->n; i++) {
        const sc_shm_member *m = &v->m[i];
        ap_rprintf(r, "Member: route=%s addr=%s:%u state=%s role=%s member_state=%s "
                   "incarnation=%" APR_UINT64_T_FMT
                   " restarts=%" APR_UINT64_T_FMT " heard_ms_ago=%s static=%u msgs_in=%"
                   APR_UINT64_T_FMT " msgs_out=%" APR_UINT64_T_FMT " bad_frames=%"
                   APR_UINT64_T_FMT " verdict=\"%s\"\n",
                   m->route[0] ? m->route : "-", m->addr, m->port, sc_view_name((int)m->view),
                   m->observer ? "balancer" : "member",
                   m->hb_state ? sc_member_state_name((int)m->hb_state) : "-",
                   m->incarnation, m->restarts_seen, ms_ago(r->pool, m->last_heard),
                   m->is_static, m->c.msgs_in, m->c.msgs_out, m->c.bad_frames, m->verdict);
    }
}

static void html_balancer(void *ctx, const char *balancer, struct proxy_worker *w,
                          const sc_shm_member *m)
{
    request_rec *r = ctx;
    ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
               balancer ? ap_escape_html(r->pool, balancer) : "(none)",
               w ? ap_escape_html(r->pool, sc_balancer_worker_route(w))
                 : (m ? ap_escape_html(r->pool, m->route) : "-"),
               w ? ap_escape_html(r->pool, sc_balancer_worker_name(w))
                 : (balancer ? "no such balancer" : "no BalancerMember"),
               w ? sc_balancer_worker_status(r->pool, w) : "-",
               sc_balancer_member_state(m));
}

static void html_engine(request_rec *r, const sc_view *v)
{
    const sc_shm_t *h = &v->hdr;
    int i;
    if (!v->have) {
        return;
    }
    ap_rputs("<h2>Engine</h2>\n<table border=\"1\" style=\"border-collapse: collapse\">\n", r);
    ap_rprintf(r, "<tr><th align=\"left\">State</th><td>%s (pid %" APR_PID_T_FMT
               ", %" APR_UINT64_T_FMT " start(s))</td></tr>\n",
               h->engine_pid ? sc_member_state_name((int)h->engine_state) : "not running",
               h->engine_pid, h->engine_starts);
    ap_rprintf(r, "<tr><th align=\"left\">Receiver</th><td>%s:%u</td></tr>\n",
               ap_escape_html(r->pool, h->self_addr), h->self_port);
    ap_rprintf(r, "<tr><th align=\"left\">Membership</th><td>%s %s</td></tr>\n",
               ap_escape_html(r->pool, h->membership),
               ap_escape_html(r->pool, h->mcast[0] ? h->mcast : ""));
    ap_rprintf(r, "<tr><th align=\"left\">Messages in / out</th><td>%" APR_UINT64_T_FMT
               " / %" APR_UINT64_T_FMT "</td></tr>\n", h->c.msgs_in, h->c.msgs_out);
    ap_rprintf(r, "<tr><th align=\"left\">Bad frames / heartbeats</th><td>%" APR_UINT64_T_FMT
               " / %" APR_UINT64_T_FMT "</td></tr>\n", h->c.bad_frames, h->c.bad_heartbeats);
    ap_rputs("</table>\n<h2>Members</h2>\n<table border=\"1\" style=\"border-collapse: "
             "collapse\">\n<tr><th>Route</th><th>Address</th><th>State</th>"
             "<th>Role</th><th>Announced</th>"
             "<th>Incarnation</th><th>Heard (ms ago)</th><th>In</th><th>Out</th>"
             "<th>Verdict</th></tr>\n", r);
    for (i = 0; i < v->n; i++) {
        const sc_shm_member *m = &v->m[i];
        ap_rprintf(r, "<tr><td>%s</td><td>%s:%u</td><td>%s</td><td>%s</td><td>%s</td><td>%"
                   APR_UINT64_T_FMT
                   "</td><td>%s</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                   "</td><td>%s</td></tr>\n",
                   ap_escape_html(r->pool, m->route), ap_escape_html(r->pool, m->addr),
                   m->port, sc_view_name((int)m->view), m->observer ? "balancer" : "member",
                   m->hb_state ? sc_member_state_name((int)m->hb_state) : "-",
                   m->incarnation,
                   ms_ago(r->pool, m->last_heard), m->c.msgs_in, m->c.msgs_out,
                   ap_escape_html(r->pool, m->verdict));
    }
    ap_rputs("</table>\n", r);
    if (sc_server_conf_get(r->server)->balancers->nelts) {
        ap_rputs("<h2>Balancers</h2>\n<table border=\"1\" style=\"border-collapse: "
                 "collapse\">\n<tr><th>Balancer</th><th>Route</th><th>Worker URL</th>"
                 "<th>Status</th><th>Member</th></tr>\n", r);
        sc_balancer_each(r->server, r->pool, html_balancer, r);
        ap_rputs("</table>\n", r);
    }
    if (sc_retained_get(r->server)->store && h->engine_pid) {
        int draining = h->engine_state == SC_MS_DRAINING;
        ap_rprintf(r, "<h2>Actions</h2>\n<form method=\"post\" action=\"%s\">"
                   "<input type=\"hidden\" name=\"action\" value=\"state\" />"
                   "<input type=\"hidden\" name=\"nonce\" value=\"%s\" />"
                   "<input type=\"hidden\" name=\"state\" value=\"%s\" />"
                   "<input type=\"submit\" value=\"%s\" /></form>\n",
                   ap_escape_html(r->pool, r->uri), h->nonce,
                   draining ? "ready" : "draining",
                   draining ? "Set this member ready" : "Drain this member");
    }
}

/* ?ping=ROUTE[&size=N][&ack=0]: a message to that member through the engine,
 * and its acknowledgement (a read-only diagnostic). */
static int ping_page(request_rec *r, apr_table_t *args)
{
    const char *route = apr_table_get(args, "ping");
    const char *size_s = apr_table_get(args, "size");
    const char *ack_s = apr_table_get(args, "ack");
    apr_int64_t size = size_s ? apr_atoi64(size_s) : 100;
    int acked = !(ack_s && !strcmp(ack_s, "0"));
    const char *result;
    double ms;
    int ok;
    sc_retained *ret = sc_retained_get(r->server);
    long max = ret->cfg ? sc_elem_num(ret->cfg->receiver, "maxMessageSize") - 128 : 0;

    if (!valid_route(route) || size < 0 || size > max) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1105)
                      "cluster-manager: bad ping request");
        return HTTP_BAD_REQUEST;
    }
    ok = sc_engine_probe(r->pool, r->server, route, (apr_size_t)size, acked, &result, &ms);
    ap_set_content_type(r, "text/plain; charset=utf-8");
    ap_rprintf(r, "Ping: %s\nSize: %" APR_INT64_T_FMT "\nMode: %s\nResult: %s\n"
               "TimeMs: %.3f\nDetail: %s\n", route, size, acked ? "ack" : "no-ack",
               ok ? (acked ? "acknowledged" : "sent") : "failed", ms, result);
    return OK;
}

/* Compares in time independent of where they differ. */
static int same_secret(const char *a, const char *b)
{
    apr_size_t n = strlen(b), i;
    unsigned char d = 0;
    if (strlen(a) != n || n == 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        d |= (unsigned char)(a[i] ^ b[i]);
    }
    return d == 0;
}

/* POST /cluster-manager: action=state&state=draining|ready&nonce=N.  The
 * nonce is the one this page shows (?auto's Nonce:, the HTML form); a new one
 * is made at every start and restart.  Every action is logged with the
 * client's address. */
static int action_post(request_rec *r)
{
    sc_retained *ret = sc_retained_get(r->server);
    apr_array_header_t *pairs = NULL;
    apr_table_t *form = apr_table_make(r->pool, 8);
    const char *action, *nonce, *want, *back;
    int i, rv;

    rv = ap_parse_form_data(r, NULL, &pairs, 16, 4096);
    if (rv != OK || !pairs) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1108)
                      "cluster-manager: unreadable action form (client %s)",
                      r->useragent_ip);
        return HTTP_BAD_REQUEST;
    }
    for (i = 0; i < pairs->nelts; i++) {
        ap_form_pair_t *pair = &APR_ARRAY_IDX(pairs, i, ap_form_pair_t);
        apr_off_t len;
        apr_size_t size;
        char *buf;
        apr_brigade_length(pair->value, 1, &len);
        if (len < 0 || len > 256) {
            return HTTP_BAD_REQUEST;
        }
        size = (apr_size_t)len;
        buf = apr_palloc(r->pool, size + 1);
        apr_brigade_flatten(pair->value, buf, &size);
        buf[size] = '\0';
        apr_table_setn(form, pair->name, buf);
    }
    action = apr_table_get(form, "action");
    nonce = apr_table_get(form, "nonce");
    if (!ret->shm || !nonce || !same_secret(nonce, ret->shm->nonce)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1109)
                      "cluster-manager: action %s refused: %s nonce (client %s)",
                      action ? ap_escape_logitem(r->pool, action) : "(none)",
                      nonce ? "a wrong or stale" : "no", r->useragent_ip);
        return HTTP_FORBIDDEN;
    }
    if (!action || strcmp(action, "state") != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1110)
                      "cluster-manager: unknown action %s (client %s)",
                      action ? ap_escape_logitem(r->pool, action) : "(none)",
                      r->useragent_ip);
        return HTTP_BAD_REQUEST;
    }
    want = apr_table_get(form, "state");
    if (!want || (strcmp(want, "draining") != 0 && strcmp(want, "ready") != 0)) {
        return HTTP_BAD_REQUEST;
    }
    if (!ret->store || !ret->shm->engine_pid
        || (ret->shm->engine_state != SC_MS_READY
            && ret->shm->engine_state != SC_MS_DRAINING)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1111)
                      "cluster-manager: state %s refused: this %s is %s (client %s)", want,
                      ret->store ? "member" : "front", ret->shm->engine_pid
                      ? sc_member_state_name((int)ret->shm->engine_state) : "without engine",
                      r->useragent_ip);
        return HTTP_CONFLICT;
    }
    __atomic_store_n(&ret->shm->requested_state,
                     !strcmp(want, "draining") ? SC_MS_DRAINING : SC_MS_READY,
                     __ATOMIC_RELEASE);
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCLOGNO(1112)
                  "cluster-manager: state %s asked by client %s", want, r->useragent_ip);
    back = apr_table_get(form, "auto");
    if (back) {
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_rprintf(r, "Action: state\nState: %s\nResult: accepted\n", want);
        return OK;
    }
    apr_table_setn(r->headers_out, "Location", r->uri);
    return HTTP_SEE_OTHER;
}

/* The page: this member, the engine and its members, the configuration. */
static int sc_status_handler(request_rec *r)
{
    sc_server_rec *sr;
    apr_array_header_t *lines;
    apr_table_t *args = NULL;
    sc_view *v;
    int i, text;

    if (strcmp(r->handler, SC_STATUS_HANDLER) != 0) {
        return DECLINED;
    }
    r->allowed |= (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST);
    if (r->method_number == M_POST) {
        return action_post(r);
    }
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    sr = server_rec_of(r->server);
    ap_args_to_table(r, &args);
    if (apr_table_get(args, "action")) {
        /* actions change things: POST only, as balancer-manager's forms */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1107)
                      "cluster-manager: action by GET refused (client %s)",
                      r->useragent_ip);
        apr_table_setn(r->headers_out, "Allow", "GET, POST");
        return HTTP_METHOD_NOT_ALLOWED;
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    if (apr_table_get(args, "ping")) {
        return ping_page(r, args);
    }
    text = apr_table_get(args, "auto") != NULL;

    /* a front shows its BalancerMembers as of now */
    sc_balancer_sync(r->server);
    v = apr_palloc(r->pool, sizeof(*v));
    read_view(r->server, v);
    lines = apr_array_make(r->pool, 256, sizeof(const char *));
    sc_dump_all(r->pool, r->server, lines);

    if (text) {
        ap_set_content_type(r, "text/plain; charset=utf-8");
        if (r->header_only) {
            return OK;
        }
        ap_rprintf(r, "Route: %s\n", sr->conf.route ? sr->conf.route : "");
        ap_rprintf(r, "Cluster: %s\n", sr->conf.cluster ? "configured" : "none");
        auto_engine(r, v);
        for (i = 0; i < lines->nelts; i++) {
            ap_rprintf(r, "%s\n", APR_ARRAY_IDX(lines, i, const char *));
        }
        return OK;
    }

    ap_set_content_type(r, "text/html; charset=utf-8");
    if (r->header_only) {
        return OK;
    }
    ap_rputs(DOCTYPE_HTML_4_01 "<html><head><title>Cluster Manager</title></head>\n"
             "<body><h1>Cluster Manager for ", r);
    ap_rputs(ap_escape_html(r->pool, ap_get_server_name(r)), r);
    ap_rputs("</h1>\n<table border=\"1\" style=\"border-collapse: collapse\">\n", r);
    ap_rprintf(r, "<tr><th align=\"left\">Route</th><td>%s</td></tr>\n",
               sr->conf.route ? ap_escape_html(r->pool, sr->conf.route) : "(none)");
    ap_rprintf(r, "<tr><th align=\"left\">Server Version</th><td>%s</td></tr>\n",
               ap_escape_html(r->pool, ap_get_server_description()));
    ap_rprintf(r, "<tr><th align=\"left\">Module Version</th><td>%s</td></tr>\n",
               MOD_SESSION_CLUSTER_VERSION);
    ap_rputs("</table>\n", r);
    html_engine(r, v);
    ap_rputs("<h2>Effective configuration</h2>\n<pre>", r);
    for (i = 0; i < lines->nelts; i++) {
        ap_rputs(ap_escape_html(r->pool, APR_ARRAY_IDX(lines, i, const char *)), r);
        ap_rputs("\n", r);
    }
    ap_rputs("</pre>\n<hr /><address>mod_session_cluster ", r);
    ap_rputs(MOD_SESSION_CLUSTER_VERSION "</address></body></html>\n", r);
    return OK;
}

/* ------------------------------------------------------------------------- */
/* Hooks                                                                      */
/* ------------------------------------------------------------------------- */

static void sc_register_hooks(apr_pool_t *p)
{
    APR_REGISTER_OPTIONAL_FN(sc_member_route);
    APR_REGISTER_OPTIONAL_FN(sc_effective_config);
    ap_hook_check_config(sc_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_test_config(sc_test_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(sc_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    sc_session_register_hooks();
    sc_balancer_register_hooks();
    ap_hook_handler(sc_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA session_cluster_module = {
    STANDARD20_MODULE_STUFF,
    sc_create_dir_config,
    sc_merge_dir_config,
    sc_create_server_config,
    sc_merge_server_config,
    sc_cmds,
    sc_register_hooks,
    0                                 /* flags */
};
