/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * mod_session_cluster.c -- module record, directives and configuration hooks
 * (the cluster-manager page is sc_status.c).
 *
 * Directives (the README's configuration reference):
 *   <Cluster className="...SimpleTcpCluster" ...> ... </Cluster>   server config
 *   SessionClusterRoute   name                                       server config
 *   SessionClusterBalancer balancer://name                           server config
 *   SessionClusterURL     http://host[:port]                         server config
 *   SessionCluster        On|Off                                     directory
 *   SessionClusterCookieName name [attributes]                       directory
 *   SessionClusterChangeIdOnLogin On|Off                             directory
 */
#include "sc_private.h"
#include "sc_supervisor.h"
#include "sc_session.h"
#include "sc_balancer.h"
#include "sc_lbmethod.h"
#include "sc_status.h"
#include "sc_msm.h"
#include <dlfcn.h>
#include <stddef.h>

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
    const char *url;                  /* SessionClusterURL, or NULL */
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
    sr->url = base->url;
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
    dc->change_id_on_login = add->change_id_set ? add->change_id_on_login
                                                : base->change_id_on_login;
    dc->change_id_set = add->change_id_set || base->change_id_set;
    return dc;
}

static sc_server_rec *server_rec_of(server_rec *s)
{
    return ap_get_module_config(s->module_config, &session_cluster_module);
}

/* sc_server_conf_get() (sc_private.h) reads the record as its first member */
_Static_assert(offsetof(sc_server_rec, conf) == 0, "sc_server_rec: conf must stay first");

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
    if (sr->conf.cluster && !sr->conf.cluster_made) {
        return apr_psprintf(cmd->pool, "%s:%d: a second <Cluster> block (the first is at "
                            "%s:%d): one httpd is one cluster member", cfg->file,
                            cfg->line, sr->conf.cluster->file, sr->conf.cluster->line);
    }
    sr->conf.cluster = cfg;
    sr->conf.cluster_made = 0;        /* a <Manager> before it: this block runs */
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* msm's <Manager> at server level (sc_msm.c)                                 */
/* ------------------------------------------------------------------------- */

#define SC_PARSED_MSM_DIRECTIVE "<Manager>"

static const char *sc_cmd_msm_read(cmd_parms *cmd, void *mconfig, const char *args)
{
    ap_directive_t **sub_tree = mconfig;
    ap_directive_t *node;
    sc_msm_cfg *cfg = NULL;
    const char *file = cmd->config_file->name;
    int line = cmd->config_file->line_number;
    const char *err = sc_msm_read(cmd, args, &cfg);

    if (err) {
        return err;
    }
    node = apr_pcalloc(cmd->pool, sizeof(*node));
    node->directive = SC_PARSED_MSM_DIRECTIVE;
    node->args = "";
    node->filename = file;
    node->line_num = line;
    node->data = cfg;
    *sub_tree = node;
    return NULL;
}

static const char *sc_cmd_msm_apply(cmd_parms *cmd, void *dummy, const char *args)
{
    sc_server_rec *sr = server_rec_of(cmd->server);
    sc_msm_cfg *cfg = cmd->directive ? cmd->directive->data : NULL;
    const char *text, *err;
    sc_cluster_cfg *cl = NULL;

    if (!cfg) {
        return "<Manager> is read by mod_session_cluster's <Manager ...> section";
    }
    if (ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return apr_psprintf(cmd->pool, "<Manager> at %s: msm's manager belongs in the main "
                            "server configuration, outside <VirtualHost>, <Directory>, "
                            "<Location> and <Files>", sc_msm_where(cfg));
    }
    if (sr->conf.msm) {
        return apr_psprintf(cmd->pool, "<Manager> at %s: a second one (the first is at %s)",
                            sc_msm_where(cfg), sc_msm_where(sr->conf.msm));
    }
    sr->conf.msm = cfg;
    if (sr->conf.cluster) {
        return NULL;                  /* a <Cluster> block: the member runs with it */
    }
    text = sc_msm_cluster_text(cmd->temp_pool, cfg);
    err = sc_config_parse_text(cmd->pool, cmd->temp_pool, cmd->server,
                               cmd->directive->filename, cmd->directive->line_num, text,
                               strlen(text), &cl);
    if (err) {
        return apr_psprintf(cmd->pool, "<Manager> at %s: %s", sc_msm_where(cfg), err);
    }
    sr->conf.cluster = cl;
    sr->conf.cluster_made = 1;
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* The other directives                                                       */
/* ------------------------------------------------------------------------- */

static const char *sc_cmd_route(cmd_parms *cmd, void *dummy, const char *arg)
{
    sc_server_rec *sr = server_rec_of(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }
    if (!sc_valid_route(arg)) {
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

static const char *sc_cmd_url(cmd_parms *cmd, void *dummy, const char *arg)
{
    sc_server_rec *sr = server_rec_of(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_size_t n;
    char *url;

    if (err) {
        return err;
    }
    url = apr_pstrdup(cmd->pool, arg);
    n = strlen(url);
    while (n > 0 && url[n - 1] == '/') {
        url[--n] = '\0';             /* the request's path follows it */
    }
    if ((err = sc_lb_check_url(cmd->pool, url))) {
        return apr_pstrcat(cmd->pool, "SessionClusterURL ", err, NULL);
    }
    sr->url = url;
    return NULL;
}

/* Notes a location for the dump, the status page and the startup checks, at
 * startup only.  In a .htaccess file (read again for every request, in the
 * request's pool, by any thread) the setting lives in the per-directory record
 * alone: a note would append request-pool strings to the server's array,
 * without a lock, once per request, for the page to read after they are
 * freed. */
static void note_location(cmd_parms *cmd, const char *what)
{
    sc_server_rec *sr = server_rec_of(cmd->server);
    sc_location_note *n;

    if (ap_check_cmd_context(cmd, NOT_IN_HTACCESS) != NULL) {
        return;
    }
    n = apr_array_push(sr->locations);
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

static const char *sc_cmd_change_id(cmd_parms *cmd, void *dconf, int flag)
{
    sc_dir_conf *dc = dconf;
    dc->change_id_on_login = flag;
    dc->change_id_set = 1;
    return NULL;
}

static const command_rec sc_cmds[] = {
    AP_INIT_RAW_ARGS("<Cluster", sc_cmd_cluster_read, NULL, RSRC_CONF | EXEC_ON_READ,
                     "a Tomcat <Cluster> block, pasted verbatim, up to </Cluster>"),
    AP_INIT_RAW_ARGS(SC_PARSED_BLOCK_DIRECTIVE, sc_cmd_cluster_apply, NULL, RSRC_CONF,
                     "(internal: a <Cluster> block after reading)"),
    AP_INIT_RAW_ARGS("<Manager", sc_cmd_msm_read, NULL, RSRC_CONF | EXEC_ON_READ,
                     "memcached-session-manager's <Manager .../> (sessions backed up to "
                     "memcached or Redis), pasted as written in context.xml"),
    AP_INIT_RAW_ARGS(SC_PARSED_MSM_DIRECTIVE, sc_cmd_msm_apply, NULL, RSRC_CONF,
                     "(internal: msm's <Manager> after reading)"),
    AP_INIT_TAKE1("SessionClusterRoute", sc_cmd_route, NULL, RSRC_CONF,
                  "this member's route, as Tomcat's jvmRoute (e.g. node1)"),
    AP_INIT_TAKE1("SessionClusterBalancer", sc_cmd_balancer, NULL, RSRC_CONF,
                  "a balancer://name whose members follow cluster membership"),
    AP_INIT_TAKE1("SessionClusterURL", sc_cmd_url, NULL, RSRC_CONF,
                  "the URL this member's heartbeats give the fronts, which add a "
                  "BalancerMember with it (default: from its Listen and ServerName)"),
    AP_INIT_FLAG("SessionCluster", sc_cmd_session_cluster, NULL, RSRC_CONF | OR_AUTHCFG,
                 "On: mod_session keeps this location's sessions in the cluster"),
    AP_INIT_RAW_ARGS("SessionClusterCookieName", sc_cmd_cookie_name, NULL,
                     RSRC_CONF | OR_AUTHCFG,
                     "the session cookie's name and attributes (default JSESSIONID path=/)"),
    AP_INIT_FLAG("SessionClusterChangeIdOnLogin", sc_cmd_change_id, NULL,
                 RSRC_CONF | OR_AUTHCFG,
                 "On: a mod_auth_form login gives the session a new id (default Off)"),
    { NULL }
};

/* ------------------------------------------------------------------------- */
/* The effective configuration                                                */
/* ------------------------------------------------------------------------- */

/* The effective configuration as text: the module's own directives, then the
 * cluster block (sc_dump.c). */
static void sc_dump_all(apr_pool_t *p, server_rec *s, apr_array_header_t *lines)
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
    if (sr->conf.msm) {
        sc_msm_dump(p, sr->conf.msm, sr->conf.cluster && !sr->conf.cluster_made, lines);
    }
    if (sr->conf.cluster && sr->conf.cluster_made) {
        APR_ARRAY_PUSH(lines, const char *) =
            "# no <Cluster> block: this member runs alone, with msm's <Manager>";
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
    if (sr->conf.msm) {
        const char *none = sc_msm_no_effect(ptemp, sr->conf.msm, !sr->conf.cluster_made);
        if (none) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCLOGNO(1703)
                         "<Manager> at %s: attributes with no effect in httpd: %s",
                         sc_msm_where(sr->conf.msm), none);
        }
    }
    if (sr->conf.msm && !sr->conf.route) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1704)
                     "<Manager> at %s needs SessionClusterRoute (this member's route, "
                     "Tomcat's jvmRoute)", sc_msm_where(sr->conf.msm));
        bad = 1;
    }
    if (sr->conf.cluster && !sr->conf.cluster_made && !sr->conf.route
        && sr->conf.balancers->nelts == 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1104)
                     "the <Cluster> block at %s:%d needs SessionClusterRoute (this "
                     "member's route, Tomcat's jvmRoute), or SessionClusterBalancer on a "
                     "front balancer", sr->conf.cluster->file, sr->conf.cluster->line);
        bad = 1;
    }
    if (!bad && sr->conf.cluster) {
        /* httpd -k stop|graceful-stop: the cluster first (sc_supervisor.c) */
        sc_supervisor_announce_stop(ptemp, s);
    }
    return bad ? !OK : OK;
}

/* Starts, keeps or replaces the cluster engine (sc_supervisor.c). */
static int sc_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                          server_rec *s)
{
    sc_server_rec *sr = server_rec_of(s);
    int observer, rv;

    /* httpd reads its configuration twice at startup: act on the second */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    observer = !sr->conf.route && sr->conf.balancers->nelts > 0;
    {
        const char *err = sc_msm_activate(pconf, s, observer ? NULL : sr->conf.msm);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1705) "%s", err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    sc_balancer_post_config(pconf, s);
    rv = sc_supervisor_post_config(pconf, s, sr->conf.cluster,
                                   sr->conf.route ? sr->conf.route : "front", observer);
    if (rv == OK && sr->conf.cluster && sr->conf.route) {
        sc_lb_member_post_config(pconf, s, sr->url);
    }
    return rv;
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
    sc_lb_register_hooks(p);
    ap_hook_handler(sc_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    sc_status_register_hooks();
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
