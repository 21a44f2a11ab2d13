/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_msm.c -- the session server (memcached-session-manager's <Manager>): its
 * element, its settings, and bounded clients for memcached's text protocol and
 * Redis's RESP.  See sc_msm.h.
 *
 * What is stored: under the session id, "SCM1 <created us> <maxInactive s>\n"
 * then the session's data as the store holds it.  memcached: "set" with the
 * idle limit as exptime; Redis: "SET ... PX".
 *
 * Nodes: memcachedNodes="n1:host:port n2:host:port" (',' or ' ' between) or
 * "redis://host:port".  With several memcached nodes a session id carries
 * msm's node id ("<hex>-<node>.<route>", sc_msm_node_id): the session goes to
 * the node its id names, then to the others; a new one to the node its hex
 * hashes to among the nodes that are not failoverNodes and are not marked
 * down (the failover nodes last).  A load asks the nodes in the same order
 * until one has it.  Non-sticky sessions may be locked (lockingMode: "Locks"
 * below).  Non-sticky with several memcached nodes, msm's secondary copy:
 * every write of a session is followed by one of "bak:<id>" on the node
 * after its own (the next regular node that is up, in memcachedNodes' order;
 * a failover node when no other regular one is); a session whose own node is
 * down, or no longer holds it, is read from that copy (a session whose node
 * is down then moves: sc_msm_node_id).  A node that fails an operation
 * (refused, timed out, a reply that is not the protocol's) is marked down
 * for SC_MSM_RETRY_S seconds: requests meanwhile do not wait for it.
 *
 * Connections: kept per process and node (at most SC_MSM_KEEP idle), taken
 * under a mutex, used by one thread at a time; every socket is non-blocking,
 * every wait has the operation's deadline, every reply is bounded
 * (SC_MSM_MAX_VALUE).  A connection that saw any error is closed.
 */
#include "sc_private.h"
#include "sc_msm.h"
#include "sc_repl.h"             /* SC_SID_NODE_MAX */

#include <stddef.h>

#include "http_log.h"
#include "ap_regex.h"
#include "apr_network_io.h"
#include "apr_shm.h"
#include "util_varbuf.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

APLOG_USE_MODULE(session_cluster);

#define SC_MSM_CLASS "de.javakaffee.web.msm.MemcachedBackupSessionManager"
#define SC_MSM_KEEP 8
#define SC_MSM_MAX_VALUE (256u * 1024u * 1024u + 256u)
#define SC_MSM_MAX_ELEMENT 65536
#define SC_MSM_LOG_EVERY_S 10

typedef struct {
    const char *id;                   /* "n1" */
    const char *host;
    apr_port_t port;
    int failover;
    struct sockaddr_storage sa;       /* resolved at post_config */
    socklen_t salen;
} msm_node;

typedef struct {
    const char *name;
    const char *value;
    int line;
} msm_attr;

struct sc_msm_cfg {
    const char *file;
    int line;
    const char *where;                /* "file:line" */
    int redis;
    msm_node *nodes;
    int nnodes;
    int sticky;
    int backup_async;
    int backup_timeout_ms;            /* sessionBackupTimeout */
    int operation_timeout_ms;         /* operationTimeout */
    int enabled;
    int max_inactive;                 /* maxInactiveInterval (s); -2: not written */
    ap_regex_t *ignore;               /* requestUriIgnorePattern */
    const char *locking_mode;
    int lock_mode;                    /* SC_MSM_LOCK_* (non-sticky) */
    ap_regex_t *lock_re;              /* lockingMode="uriPattern:<regex>" */
    apr_array_header_t *attrs;        /* msm_attr: as written */
};

/* ---- the counters every process shares ---- */
typedef struct {
    apr_uint64_t gets, hits, misses, sets, deletes, errors, timeouts, skipped;
    apr_uint64_t lat_us, lat_n, lat_max_us;
    apr_uint64_t down_until;          /* apr_time_t: skipped until then */
    apr_uint64_t last_ok_at;          /* apr_time_t of the last answer */
    apr_uint64_t last_error_at;
    char last_error[120];             /* the latest error, best effort */
} msm_node_stats;

/* lockingMode="auto": msm's ReadOnlyRequestsCache, per member (every
 * process of it): request ids ("METHOD uri?query", as a 64-bit hash) seen
 * to leave the session unchanged, and those seen to change it (the
 * blacklist); msm keeps 1000 and 50000 of them for 6 hours, least recently
 * used given up first.  Here: sets of SC_MSM_AUTO_WAYS entries, the least
 * recently used of a set given up. */
#define SC_MSM_AUTO_RO_SETS 128       /* x 8: 1024 read-only ids */
#define SC_MSM_AUTO_BL_SETS 8192      /* x 8: 65536 modifying ids */
#define SC_MSM_AUTO_WAYS 8
#define SC_MSM_AUTO_LIFE apr_time_from_sec(6 * 3600)

typedef struct {
    apr_uint64_t hash;
    apr_uint64_t used;                /* apr_time_t; 0: empty */
} msm_auto_entry;

typedef struct {
    apr_uint64_t loaded, load_missing, load_failed, backups, backups_async,
                 backup_failed, removed, ignored, touches, touch_restored;
    apr_uint64_t locks, lock_retries, lock_timeouts, lock_failed, lock_released,
                 lock_left, lock_lost, lock_not_required, lock_wait_us, lock_wait_max_us;
    apr_uint64_t logged_at, unlogged, lock_logged_at, lock_unlogged;
    apr_uint64_t auto_readonly, auto_modifying, auto_unlocked_writes;
    apr_uint64_t second_backups, second_failed, second_loaded, second_touches,
                 second_restored;
    apr_uint32_t auto_busy;           /* the tables' spin lock */
    msm_auto_entry auto_ro[SC_MSM_AUTO_RO_SETS * SC_MSM_AUTO_WAYS];
    msm_auto_entry auto_bl[SC_MSM_AUTO_BL_SETS * SC_MSM_AUTO_WAYS];
    msm_node_stats n[SC_MSM_MAX_NODES];
} msm_shared;

static sc_msm_cfg *active;
static msm_shared *shared;

/* Idle connections kept by this process. */
static pthread_mutex_t keep_mu = PTHREAD_MUTEX_INITIALIZER;
static int keep_fd[SC_MSM_MAX_NODES][SC_MSM_KEEP];
static int keep_n[SC_MSM_MAX_NODES];

/* ------------------------------------------------------------------------- */
/* The element                                                                */
/* ------------------------------------------------------------------------- */

/* Attributes that change nothing here, and why. */
static const struct {
    const char *name;
    const char *reason;
} msm_java_only[] = {
    { "transcoderFactoryClass", "Java serialization: sessions are stored as mod_session's "
      "encoded attributes" },
    { "copyCollectionsForSerialization", "Java serialization: sessions are stored as "
      "mod_session's encoded attributes" },
    { "customConverter", "Java serialization: sessions are stored as mod_session's "
      "encoded attributes" },
    { "backupThreadCount", "an asynchronous backup is made by the request's own thread "
      "after the response is sent: there is no backup thread pool" },
    { "enableStatistics", "the counters are always kept: see the cluster-manager page" },
    { "memcachedProtocol", "memcached's text protocol is always used" },
    { "username", "SASL authentication is not implemented: do not expose the servers" },
    { "password", "SASL authentication is not implemented: do not expose the servers" },
    { "storageKeyPrefix", "sessions are stored under their id" },
    { "sessionAttributeFilter", "every attribute is backed up (see the <Cluster>'s "
      "Manager sessionAttributeNameFilter for attributes kept on one member)" },
    { "lockingMode", "sticky sessions are not locked (msm locks only in non-sticky mode)" },
    { "sessionBackupAsync", "non-sticky sessions are written before the response: the "
      "next request may go to another member" },
    { NULL, NULL }
};

/* Attributes that act (checked by sc_msm_parse). */
static const char *const acting[] = {
    "className", "memcachedNodes", "failoverNodes", "sticky", "sessionBackupAsync",
    "sessionBackupTimeout", "operationTimeout", "requestUriIgnorePattern", "enabled",
    "maxInactiveInterval", NULL
};

/* Where an attribute that is a number or a flag goes, or NULL. */
static int *int_attr(sc_msm_cfg *c, const char *name)
{
    static const struct {
        const char *name;
        size_t off;
    } ints[] = {
        { "sticky", offsetof(sc_msm_cfg, sticky) },
        { "enabled", offsetof(sc_msm_cfg, enabled) },
        { "sessionBackupAsync", offsetof(sc_msm_cfg, backup_async) },
        { "sessionBackupTimeout", offsetof(sc_msm_cfg, backup_timeout_ms) },
        { "operationTimeout", offsetof(sc_msm_cfg, operation_timeout_ms) },
        { "maxInactiveInterval", offsetof(sc_msm_cfg, max_inactive) },
    };
    size_t i;
    for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (!strcmp(ints[i].name, name)) {
            return (int *)((char *)c + ints[i].off);
        }
    }
    return NULL;
}

static const char *no_effect_reason(const char *name)
{
    int i;
    for (i = 0; msm_java_only[i].name; i++) {
        if (!strcmp(msm_java_only[i].name, name)) {
            return msm_java_only[i].reason;
        }
    }
    return "it has no use in httpd";
}

#define MAX_INACTIVE_NOTE "a <Cluster> block is written: its Manager's " \
    "maxInactiveInterval applies"

static int is_acting(const char *name, int cluster_block, int sticky)
{
    int i;
    if (cluster_block && !strcmp(name, "maxInactiveInterval")) {
        return 0;
    }
    if (!strcmp(name, "lockingMode")) {
        return !sticky;               /* non-sticky: "none" is the mode */
    }
    if (!strcmp(name, "sessionBackupAsync")) {
        return sticky;
    }
    for (i = 0; acting[i]; i++) {
        if (!strcmp(acting[i], name)) {
            return 1;
        }
    }
    return 0;
}

/* XML's five entities and numeric ASCII references; NULL: a bad one. */
static char *xml_unescape(apr_pool_t *p, const char *s, apr_size_t n)
{
    char *out = apr_palloc(p, n + 1), *o = out;
    apr_size_t i = 0;
    while (i < n) {
        if (s[i] != '&') {
            *o++ = s[i++];
            continue;
        }
        if (!strncmp(s + i, "&amp;", 5)) { *o++ = '&'; i += 5; }
        else if (!strncmp(s + i, "&lt;", 4)) { *o++ = '<'; i += 4; }
        else if (!strncmp(s + i, "&gt;", 4)) { *o++ = '>'; i += 4; }
        else if (!strncmp(s + i, "&quot;", 6)) { *o++ = '"'; i += 6; }
        else if (!strncmp(s + i, "&apos;", 6)) { *o++ = '\''; i += 6; }
        else if (s[i + 1] == '#') {
            apr_size_t j = i + 2;
            long v = 0;
            while (j < n && apr_isdigit(s[j]) && v < 1000) {
                v = v * 10 + (s[j++] - '0');
            }
            if (j >= n || s[j] != ';' || v < 32 || v > 126) {
                return NULL;
            }
            *o++ = (char)v;
            i = j + 1;
        }
        else {
            return NULL;
        }
    }
    *o = '\0';
    return out;
}

/* A numeric or boolean default of the catalogue (0 if it has none). */
static long default_num(apr_pool_t *p, const sc_class_def *cls, const char *name)
{
    sc_value_t v;
    int i = cls ? sc_attr_index(cls, name, NULL) : -1;
    if (i < 0 || !cls->attrs[i].defval
        || sc_parse_value(p, &cls->attrs[i], cls->attrs[i].defval, &v)) {
        return 0;
    }
    return v.num;
}

static const char *parse_nodes(apr_pool_t *p, sc_msm_cfg *c, const char *v)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(msm_node));
    char *list = apr_pstrdup(p, v), *last, *tok;
    if (!strncmp(v, "redis://", 8)) {
        char *host, *scope;
        apr_port_t port;
        msm_node *n;
        if (apr_parse_addr_port(&host, &scope, &port, v + 8, p) != APR_SUCCESS || !host
            || scope || strchr(v + 8, '/')) {
            return apr_psprintf(p, "memcachedNodes=\"%s\": expected redis://host:port", v);
        }
        c->redis = 1;
        n = apr_array_push(a);
        memset(n, 0, sizeof(*n));
        n->id = "redis";
        n->host = host;
        n->port = port ? port : 6379;
        c->nodes = (msm_node *)a->elts;
        c->nnodes = 1;
        return NULL;
    }
    for (tok = apr_strtok(list, ", \t\r\n", &last); tok;
         tok = apr_strtok(NULL, ", \t\r\n", &last)) {
        /* id:host:port (host may be [v6]) */
        char *colon = strchr(tok, ':');
        char *host, *scope;
        apr_port_t port;
        msm_node *n;
        int i;
        if (!colon || colon == tok) {
            return apr_psprintf(p, "memcachedNodes: '%s' is not id:host:port (e.g. "
                                "n1:10.0.0.5:11211)", tok);
        }
        *colon = '\0';
        if (strlen(tok) > SC_SID_NODE_MAX) {
            return apr_psprintf(p, "memcachedNodes: node id '%s': at most %d characters (it "
                                "goes into session ids)", tok, SC_SID_NODE_MAX);
        }
        for (i = 0; tok[i]; i++) {
            if (!apr_isalnum(tok[i]) && tok[i] != '_' && tok[i] != '-') {
                return apr_psprintf(p, "memcachedNodes: node id '%s': letters, digits, "
                                    "'-' and '_'", tok);
            }
        }
        if (apr_parse_addr_port(&host, &scope, &port, colon + 1, p) != APR_SUCCESS
            || !host || scope || !port) {
            return apr_psprintf(p, "memcachedNodes: '%s:%s' is not id:host:port", tok,
                                colon + 1);
        }
        for (i = 0; i < a->nelts; i++) {
            if (!strcmp(APR_ARRAY_IDX(a, i, msm_node).id, tok)) {
                return apr_psprintf(p, "memcachedNodes: node id '%s' is given twice", tok);
            }
        }
        if (a->nelts >= SC_MSM_MAX_NODES) {
            return apr_psprintf(p, "memcachedNodes: at most %d nodes", SC_MSM_MAX_NODES);
        }
        n = apr_array_push(a);
        memset(n, 0, sizeof(*n));
        n->id = tok;
        n->host = host;
        n->port = port;
    }
    if (a->nelts == 0) {
        return "memcachedNodes: no node (n1:host:port,... or redis://host:port)";
    }
    c->nodes = (msm_node *)a->elts;
    c->nnodes = a->nelts;
    return NULL;
}

const char *sc_msm_parse(apr_pool_t *p, const char *file, int line, const char *text,
                         sc_msm_cfg **out)
{
    const sc_class_def *cls = sc_class_by_id(SC_C_MSM_MANAGER);
    sc_msm_cfg *c = apr_pcalloc(p, sizeof(*c));
    const char *s = text, *err = NULL, *failover = NULL, *nodes = NULL;
    int cur = line, i, closed = 0, nodes_line = line, failover_line = line;
#define FAIL(...) return apr_psprintf(p, "%s:%d: <Manager>: %s", file, cur, \
                                      apr_psprintf(p, __VA_ARGS__))

    c->file = file;
    c->line = line;
    c->where = apr_psprintf(p, "%s:%d", file, line);
    /* the catalogue's defaults (sc_classes.c) */
    c->sticky = (int)default_num(p, cls, "sticky");
    c->enabled = (int)default_num(p, cls, "enabled");
    c->backup_async = (int)default_num(p, cls, "sessionBackupAsync");
    c->backup_timeout_ms = (int)default_num(p, cls, "sessionBackupTimeout");
    c->operation_timeout_ms = (int)default_num(p, cls, "operationTimeout");
    c->max_inactive = -2;             /* not written: the store's default */
    c->attrs = apr_array_make(p, 8, sizeof(msm_attr));
    for (;;) {
        const char *n0, *v0;
        char q;
        msm_attr *a;
        while (apr_isspace(*s)) {
            cur += *s++ == '\n';
        }
        if (!*s) {
            break;
        }
        if (!strncmp(s, "/>", 2) || *s == '>') {
            int self_closed = *s == '/';
            closed = 1;
            s += self_closed ? 2 : 1;
            while (apr_isspace(*s)) {
                cur += *s++ == '\n';
            }
            if (!self_closed) {
                if (strncmp(s, "</Manager>", 10) != 0) {
                    FAIL("<Manager> holds no elements here: close it with \"/>\"");
                }
                s += 10;
                while (apr_isspace(*s)) {
                    cur += *s++ == '\n';
                }
            }
            if (*s) {
                FAIL("text after the element's end: '%.40s'", s);
            }
            break;
        }
        n0 = s;
        while (apr_isalnum(*s) || *s == '_' || *s == '-' || *s == '.' || *s == ':') {
            s++;
        }
        if (s == n0) {
            FAIL("expected an attribute name, found '%.20s'", s);
        }
        a = apr_array_push(c->attrs);
        a->name = apr_pstrmemdup(p, n0, (apr_size_t)(s - n0));
        a->line = cur;
        while (apr_isspace(*s)) {
            cur += *s++ == '\n';
        }
        if (*s != '=') {
            FAIL("attribute %s has no value (name=\"value\")", a->name);
        }
        s++;
        while (apr_isspace(*s)) {
            cur += *s++ == '\n';
        }
        q = *s;
        if (q != '"' && q != '\'') {
            FAIL("attribute %s: the value must be quoted", a->name);
        }
        v0 = ++s;
        while (*s && *s != q) {
            if (*s == '<') {
                FAIL("attribute %s: '<' in a value (write &lt;)", a->name);
            }
            cur += *s++ == '\n';
        }
        if (!*s) {
            FAIL("attribute %s: the value's quote is not closed", a->name);
        }
        a->value = xml_unescape(p, v0, (apr_size_t)(s - v0));
        if (!a->value) {
            FAIL("attribute %s: a bad entity (&amp; &lt; &gt; &quot; &apos; &#N;)", a->name);
        }
        s++;
        for (i = 0; i < c->attrs->nelts - 1; i++) {
            if (!strcmp(APR_ARRAY_IDX(c->attrs, i, msm_attr).name, a->name)) {
                FAIL("attribute %s is written twice", a->name);
            }
        }
    }
    if (!closed) {
        FAIL("the element is not closed (\"/>\")");
    }
    for (i = 0; i < c->attrs->nelts; i++) {
        msm_attr *a = &APR_ARRAY_IDX(c->attrs, i, msm_attr);
        const char *n = a->name, *v = a->value;
        cur = a->line;
        int idx, *slot;
        sc_value_t val;
        if (!strcmp(n, "className")) {
            if (strcmp(v, SC_MSM_CLASS)
                && strcmp(v, "de.javakaffee.web.msm.MemcachedSessionManager")) {
                FAIL("className \"%s\": a <Manager> at server level is msm's "
                     SC_MSM_CLASS " (a DeltaManager or BackupManager belongs in the "
                     "<Cluster> block)", v);
            }
            continue;
        }
        /* the catalogue's definition (sc_classes.c): type, bounds, default */
        idx = cls ? sc_attr_index(cls, n, NULL) : -1;
        if (idx < 0) {
            FAIL("unknown attribute %s (msm's attributes: memcachedNodes, failoverNodes, "
                 "sticky, sessionBackupAsync, sessionBackupTimeout, operationTimeout, "
                 "requestUriIgnorePattern, lockingMode, ...)", n);
        }
        if ((err = sc_parse_value(p, &cls->attrs[idx], v, &val))) {
            FAIL("%s=\"%s\": %s", n, v, err);
        }
        if (!strcmp(n, "memcachedNodes")) {
            nodes = v;
            nodes_line = a->line;
        }
        else if (!strcmp(n, "failoverNodes")) {
            failover = v;
            failover_line = a->line;
        }
        else if ((slot = int_attr(c, n))) {
            *slot = (int)val.num;     /* a number or flag: read as the catalogue says */
        }
        else if (!strcmp(n, "requestUriIgnorePattern")) {
            c->ignore = val.re;       /* the whole URI must match, as msm's */
        }
        else if (!strcmp(n, "lockingMode")) {
            if (strcmp(v, "none") && strcmp(v, "all") && strcmp(v, "auto")
                && strncmp(v, "uriPattern:", 11)) {
                FAIL("lockingMode=\"%s\": none, all, auto or uriPattern:<regex>", v);
            }
            c->locking_mode = v;
            if (!strcmp(v, "all")) {
                c->lock_mode = SC_MSM_LOCK_ALL;
            }
            else if (!strcmp(v, "auto")) {
                c->lock_mode = SC_MSM_LOCK_AUTO;
            }
            else if (!strncmp(v, "uriPattern:", 11)) {
                /* msm matches the whole "METHOD uri?query" (Java's
                 * Matcher.matches) */
                if (!v[11] || strlen(v + 11) > 1024) {
                    FAIL("lockingMode=\"%s\": uriPattern: needs a regular expression "
                         "(at most 1024 characters)", v);
                }
                c->lock_mode = SC_MSM_LOCK_URI;
                c->lock_re = ap_pregcomp(p, apr_pstrcat(p, "^(?:", v + 11, ")$", NULL), 0);
                if (!c->lock_re) {
                    FAIL("lockingMode=\"%s\": '%s' is not a regular expression", v, v + 11);
                }
            }
        }
        if (err) {
            FAIL("%s", err);
        }
    }
    cur = line;
    if (!nodes) {
        FAIL("memcachedNodes is required (n1:host:11211,... or redis://host:6379)");
    }
    cur = nodes_line;
    if ((err = parse_nodes(p, c, nodes))) {
        FAIL("%s", err);
    }
    cur = failover_line;
    if (failover) {
        char *list = apr_pstrdup(p, failover), *last, *tok;
        if (c->redis) {
            FAIL("failoverNodes: Redis has a single node (memcachedNodes=\"redis://...\")");
        }
        for (tok = apr_strtok(list, ", \t\r\n", &last); tok;
             tok = apr_strtok(NULL, ", \t\r\n", &last)) {
            int found = 0;
            for (i = 0; i < c->nnodes; i++) {
                if (!strcmp(c->nodes[i].id, tok)) {
                    c->nodes[i].failover = 1;
                    found = 1;
                }
            }
            if (!found) {
                FAIL("failoverNodes: '%s' is not a node of memcachedNodes", tok);
            }
        }
        for (i = 0; i < c->nnodes && c->nodes[i].failover; i++) {
        }
        if (i == c->nnodes) {
            FAIL("failoverNodes names every node: at least one must not be a failover node");
        }
    }
    cur = line;
    *out = c;
    return NULL;
#undef FAIL
}

const char *sc_msm_read(cmd_parms *cmd, const char *args, sc_msm_cfg **out)
{
    struct ap_varbuf vb, lb;
    const char *file = cmd->config_file ? cmd->config_file->name : "(memory)";
    int line = cmd->config_file ? cmd->config_file->line_number : 0;
    const char *err;

    ap_varbuf_init(cmd->temp_pool, &vb, 1024);
    ap_varbuf_init(cmd->temp_pool, &lb, 1024);
    ap_varbuf_strcat(&vb, args);
    /* the element ends at "/>" or at "</Manager>" */
    while (!strstr(vb.buf, "/>") && !strstr(vb.buf, "</Manager>")) {
        apr_status_t rv;
        if (!cmd->config_file) {
            break;
        }
        rv = ap_varbuf_cfg_getline(&lb, cmd->config_file, SC_MSM_MAX_ELEMENT);
        if (rv == APR_EOF) {
            return apr_psprintf(cmd->pool, "%s:%d: <Manager> is not closed (\"/>\") before "
                                "the end of the file", file, line);
        }
        if (rv != APR_SUCCESS || vb.strlen + lb.strlen > SC_MSM_MAX_ELEMENT) {
            return apr_psprintf(cmd->pool, "%s:%d: <Manager>: a line too long, or the "
                                "element longer than %d bytes", file,
                                cmd->config_file->line_number, SC_MSM_MAX_ELEMENT);
        }
        if (lb.buf[0] == '#') {
            ap_varbuf_strcat(&vb, "\n");
            continue;
        }
        ap_varbuf_strcat(&vb, "\n");
        ap_varbuf_strcat(&vb, ap_resolve_env(cmd->temp_pool, lb.buf));
    }
    err = sc_msm_parse(cmd->pool, file, line, vb.buf, out);
    ap_varbuf_free(&lb);
    ap_varbuf_free(&vb);
    return err;
}

const char *sc_msm_where(const sc_msm_cfg *c)
{
    return c ? c->where : "";
}

const char *sc_msm_cluster_text(apr_pool_t *p, const sc_msm_cfg *c)
{
    /* a member alone: no multicast (channelStartOptions 3), no static
     * members; its Receiver on loopback with autoBind so members on one
     * host do not collide; the binder valve re-binds a session loaded from
     * the server */
    return apr_pstrcat(p,
        "<Cluster className=\"org.apache.catalina.ha.tcp.SimpleTcpCluster\" "
        "channelStartOptions=\"3\">\n",
        c->max_inactive >= -1
        ? apr_psprintf(p, "  <Manager className=\"org.apache.catalina.ha.session.DeltaManager\" "
                       "maxInactiveInterval=\"%d\"/>\n", c->max_inactive) : "",
        "  <Channel className=\"org.apache.catalina.tribes.group.GroupChannel\">\n"
        "    <Receiver className=\"org.apache.catalina.tribes.transport.nio.NioReceiver\" "
        "address=\"127.0.0.1\" port=\"4000\" autoBind=\"100\"/>\n"
        "  </Channel>\n",
        /* non-sticky: a session is served wherever the request goes; its
         * id keeps the route it was made with */
        c->sticky ? "  <Valve className=\"org.apache.catalina.ha.session.JvmRouteBinderValve\"/>\n"
                  : "",
        "  <Valve className=\"org.apache.catalina.ha.tcp.ReplicationValve\"/>\n"
        "</Cluster>\n", NULL);
}

static const char *node_list(apr_pool_t *p, const sc_msm_cfg *c)
{
    const char *s = "";
    int i;
    for (i = 0; i < c->nnodes; i++) {
        s = apr_psprintf(p, "%s%s%s %s:%u%s", s, i ? ", " : "", c->nodes[i].id,
                         c->nodes[i].host, c->nodes[i].port,
                         c->nodes[i].failover ? " (failover)" : "");
    }
    return s;
}

void sc_msm_dump(apr_pool_t *p, const sc_msm_cfg *c, int cluster_block,
                 apr_array_header_t *lines)
{
    int i;
    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(p, "SessionServer = %s (%s), %s  # <Manager> at %s:%d",
                     c->redis ? "redis" : "memcached", node_list(p, c),
                     c->sticky ? "sticky" : "non-sticky", c->file, c->line);
    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(p, "SessionServer.enabled = %s", c->enabled ? "true" : "false");
    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(p, "SessionServer.sessionBackupAsync = %s",
                     c->backup_async ? "true" : "false");
    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(p, "SessionServer.sessionBackupTimeout = %d ms", c->backup_timeout_ms);
    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(p, "SessionServer.operationTimeout = %d ms", c->operation_timeout_ms);
    for (i = 0; i < c->attrs->nelts; i++) {
        msm_attr *a = &APR_ARRAY_IDX(c->attrs, i, msm_attr);
        if (!strcmp(a->name, "requestUriIgnorePattern")) {
            APR_ARRAY_PUSH(lines, const char *) =
                apr_psprintf(p, "SessionServer.requestUriIgnorePattern = %s", a->value);
        }
    }
    for (i = 0; i < c->attrs->nelts; i++) {
        msm_attr *a = &APR_ARRAY_IDX(c->attrs, i, msm_attr);
        if (!is_acting(a->name, cluster_block, c->sticky)) {
            APR_ARRAY_PUSH(lines, const char *) =
                apr_psprintf(p, "# ignored: SessionServer.%s = %s  # %s:%d: no effect: %s",
                             a->name, a->value, c->file, a->line,
                             !strcmp(a->name, "maxInactiveInterval") ? MAX_INACTIVE_NOTE
                             : no_effect_reason(a->name));
        }
    }
}

const char *sc_msm_no_effect(apr_pool_t *p, const sc_msm_cfg *c, int cluster_block)
{
    const char *s = NULL;
    int i;
    for (i = 0; i < c->attrs->nelts; i++) {
        msm_attr *a = &APR_ARRAY_IDX(c->attrs, i, msm_attr);
        if (!is_acting(a->name, cluster_block, c->sticky)) {
            s = apr_psprintf(p, "%s%s%s (%s)", s ? s : "", s ? "; " : "", a->name,
                             !strcmp(a->name, "maxInactiveInterval") ? MAX_INACTIVE_NOTE
                             : no_effect_reason(a->name));
        }
    }
    return s;
}

/* ------------------------------------------------------------------------- */
/* Activation                                                                 */
/* ------------------------------------------------------------------------- */

static apr_status_t deactivate(void *unused)
{
    (void)unused;
    active = NULL;
    shared = NULL;
    return APR_SUCCESS;
}

const char *sc_msm_activate(apr_pool_t *pconf, server_rec *s, sc_msm_cfg *c)
{
    apr_shm_t *shm;
    apr_status_t rv;
    int i;

    (void)s;
    active = NULL;
    shared = NULL;
    if (!c || !c->enabled) {
        return NULL;
    }
    for (i = 0; i < c->nnodes; i++) {
        apr_sockaddr_t *sa;
        rv = apr_sockaddr_info_get(&sa, c->nodes[i].host, APR_UNSPEC, c->nodes[i].port, 0,
                                   pconf);
        if (rv != APR_SUCCESS || sa->salen > sizeof(c->nodes[i].sa)) {
            return apr_psprintf(pconf, "<Manager> at %s:%d: node %s: host %s does not "
                                "resolve", c->file, c->line, c->nodes[i].id,
                                c->nodes[i].host);
        }
        memcpy(&c->nodes[i].sa, &sa->sa, sa->salen);
        c->nodes[i].salen = (socklen_t)sa->salen;
    }
    rv = apr_shm_create(&shm, sizeof(msm_shared), NULL, pconf);
    if (rv != APR_SUCCESS) {
        return apr_psprintf(pconf, "<Manager> at %s:%d: the session server's counters: "
                            "no shared memory", c->file, c->line);
    }
    shared = apr_shm_baseaddr_get(shm);
    memset(shared, 0, sizeof(*shared));
    active = c;
    apr_pool_cleanup_register(pconf, NULL, deactivate, apr_pool_cleanup_null);
    return NULL;
}

int sc_msm_on(void)
{
    return active != NULL;
}

int sc_msm_sticky(void)
{
    return !active || active->sticky;
}

int sc_msm_ignored(request_rec *r)
{
    return active && active->ignore && !ap_regexec(active->ignore, r->uri, 0, NULL, 0);
}

/* ------------------------------------------------------------------------- */
/* The clients                                                                */
/* ------------------------------------------------------------------------- */

#define ADD(f, v) __atomic_add_fetch(&(f), (v), __ATOMIC_RELAXED)

typedef struct {
    int fd;
    apr_time_t deadline;
    const char *err;                  /* what went wrong */
    int timed_out;
} io;

static int wait_fd(io *x, short ev)
{
    for (;;) {
        struct pollfd pfd;
        apr_time_t left = x->deadline - apr_time_now();
        int rc;
        if (left <= 0) {
            x->timed_out = 1;
            x->err = "timed out";
            return 0;
        }
        pfd.fd = x->fd;
        pfd.events = ev;
        pfd.revents = 0;
        rc = poll(&pfd, 1, (int)((left + 999) / 1000));
        if (rc > 0) {
            return 1;
        }
        if (rc < 0 && errno != EINTR) {
            x->err = "poll failed";
            return 0;
        }
    }
}

static int conn_open(io *x, const msm_node *n)
{
    int one = 1, soerr = 0;
    socklen_t len = sizeof(soerr);
    x->fd = socket(n->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (x->fd < 0) {
        x->err = "no socket";
        return 0;
    }
    setsockopt(x->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(x->fd, (const struct sockaddr *)&n->sa, n->salen) == 0) {
        return 1;
    }
    if (errno != EINPROGRESS) {
        x->err = errno == ECONNREFUSED ? "connection refused" : "connect failed";
        return 0;
    }
    if (!wait_fd(x, POLLOUT)) {
        return 0;
    }
    if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) || soerr) {
        x->err = soerr == ECONNREFUSED ? "connection refused" : "connect failed";
        return 0;
    }
    return 1;
}

static int send_all(io *x, const char *b, apr_size_t n)
{
    while (n > 0) {
        ssize_t w = send(x->fd, b, n, MSG_NOSIGNAL);
        if (w > 0) {
            b += w;
            n -= (apr_size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_fd(x, POLLOUT)) {
                return 0;
            }
            continue;
        }
        x->err = "send failed";
        return 0;
    }
    return 1;
}

/* How long the reply in b[0..len) is: >0 complete, 0 more needed, -1 not the
 * protocol (or longer than the bound). */
static long reply_len(int redis, const char *b, apr_size_t len)
{
    const char *eol = memchr(b, '\n', len);
    apr_size_t first;
    char *end;
    long n;
    if (!eol) {
        return len > 512 ? -1 : 0;
    }
    first = (apr_size_t)(eol - b) + 1;
    /* the first line's bound whether or not its end came in the same read */
    if (first < 2 || b[first - 2] != '\r' || first - 1 > 512) {
        return -1;
    }
    if (redis) {
        if (b[0] == '+' || b[0] == '-' || b[0] == ':') {
            return (long)first;
        }
        if (b[0] != '$') {
            return -1;
        }
        if (first == 5 && !memcmp(b, "$-1", 3)) {
            return (long)first;       /* nil: no such key */
        }
        /* digits only, read within the line (strtol would skip white space,
         * past the line and the bytes received, and take a sign) */
        for (n = 0, end = (char *)b + 1; end < b + first - 2; end++) {
            if (!apr_isdigit(*end) || n > (long)SC_MSM_MAX_VALUE) {
                return -1;
            }
            n = n * 10 + (*end - '0');
        }
        if (end == b + 1 || (apr_uint64_t)n > SC_MSM_MAX_VALUE) {
            return -1;
        }
        if (len < first + (apr_size_t)n + 2) {
            return 0;
        }
        /* the value's own CRLF */
        if (b[first + n] != '\r' || b[first + n + 1] != '\n') {
            return -1;
        }
        return (long)(first + (apr_size_t)n + 2);
    }
    if (strncmp(b, "VALUE ", 6) != 0) {
        return (long)first;
    }
    /* VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n */
    end = (char *)b + first - 2;
    while (end > b && apr_isdigit(end[-1])) {
        end--;
    }
    if (end == b + first - 2) {
        return -1;                    /* no digits: strtol would read past the line */
    }
    n = strtol(end, NULL, 10);
    if (n < 0 || (apr_uint64_t)n > SC_MSM_MAX_VALUE) {
        return -1;
    }
    return len >= first + (apr_size_t)n + 7 ? (long)(first + (apr_size_t)n + 7) : 0;
}

/* Reads one reply; *out (NUL-terminated) and *outlen. */
static int read_reply(io *x, apr_pool_t *p, int redis, char **out, apr_size_t *outlen)
{
    apr_size_t cap = 4096, len = 0;
    char *b = apr_palloc(p, cap + 1);
    for (;;) {
        ssize_t rd;
        long need = len ? reply_len(redis, b, len) : 0;
        if (need < 0) {
            x->err = "a reply that is not the protocol's";
            return 0;
        }
        if (need > 0) {
            if ((apr_size_t)need != len) {
                x->err = "more data than one reply";
                return 0;
            }
            b[len] = '\0';
            *out = b;
            *outlen = len;
            return 1;
        }
        if (len == cap) {
            char *nb;
            if (cap >= SC_MSM_MAX_VALUE + 1024) {
                x->err = "a reply longer than the bound";
                return 0;
            }
            /* grows with what arrives, never past the bound */
            cap = cap * 4 > SC_MSM_MAX_VALUE + 1024 ? SC_MSM_MAX_VALUE + 1024 : cap * 4;
            nb = apr_palloc(p, cap + 1);
            memcpy(nb, b, len);
            b = nb;
        }
        rd = recv(x->fd, b + len, cap - len, 0);
        if (rd > 0) {
            len += (apr_size_t)rd;
            continue;
        }
        if (rd == 0) {
            x->err = "the server closed the connection";
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            x->err = "recv failed";
            return 0;
        }
        if (!wait_fd(x, POLLIN)) {
            return 0;
        }
    }
}

static int conn_take(int i)
{
    int fd = -1;
    pthread_mutex_lock(&keep_mu);
    if (keep_n[i] > 0) {
        fd = keep_fd[i][--keep_n[i]];
    }
    pthread_mutex_unlock(&keep_mu);
    return fd;
}

static void conn_give(int i, int fd)
{
    pthread_mutex_lock(&keep_mu);
    if (keep_n[i] < SC_MSM_KEEP) {
        keep_fd[i][keep_n[i]++] = fd;
        fd = -1;
    }
    pthread_mutex_unlock(&keep_mu);
    if (fd >= 0) {
        close(fd);
    }
}

/* A line about a failure, at most one every SC_MSM_LOG_EVERY_S seconds for
 * all processes (with the count of the ones not logged). */
static void failure_line(server_rec *s, const msm_node *n, const char *op, const char *what)
{
    apr_time_t now = apr_time_now();
    apr_uint64_t last = __atomic_load_n(&shared->logged_at, __ATOMIC_RELAXED);
    if ((apr_uint64_t)now - last < (apr_uint64_t)apr_time_from_sec(SC_MSM_LOG_EVERY_S)
        || !__atomic_compare_exchange_n(&shared->logged_at, &last, (apr_uint64_t)now, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        ADD(shared->unlogged, 1);
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCLOGNO(1700)
                 "session server %s (%s:%u): %s: %s; the node is skipped for %d s "
                 "(%" APR_UINT64_T_FMT " more failures since the last such line; these "
                 "lines: at most one every %d s)", n->id, n->host, n->port, op, what,
                 SC_MSM_RETRY_S, __atomic_exchange_n(&shared->unlogged, 0, __ATOMIC_RELAXED),
                 SC_MSM_LOG_EVERY_S);
}

/* One request and its reply on node i: 1 done (*reply set), 0 failed (the
 * node is marked down). */
static int exchange(server_rec *s, apr_pool_t *p, int i, const char *req, apr_size_t reqlen,
                    apr_time_t deadline, const char *op, char **reply, apr_size_t *rlen)
{
    const msm_node *n = &active->nodes[i];
    msm_node_stats *st = &shared->n[i];
    apr_time_t t0 = apr_time_now();
    io x;
    int fresh = 0, ok;
    apr_uint64_t us;

    memset(&x, 0, sizeof(x));
    x.deadline = deadline;
    x.fd = conn_take(i);
    if (x.fd < 0) {
        fresh = 1;
        if (!conn_open(&x, n)) {
            goto failed;
        }
    }
    ok = send_all(&x, req, reqlen) && read_reply(&x, p, active->redis, reply, rlen);
    if (!ok && !fresh && !x.timed_out) {
        /* a kept connection the server closed meanwhile: once more, new */
        close(x.fd);
        memset(&x, 0, sizeof(x));
        x.deadline = deadline;
        if (!conn_open(&x, n)) {
            goto failed;
        }
        ok = send_all(&x, req, reqlen) && read_reply(&x, p, active->redis, reply, rlen);
    }
    if (!ok) {
        goto failed;
    }
    conn_give(i, x.fd);
    us = (apr_uint64_t)(apr_time_now() - t0);
    ADD(st->lat_us, us);
    ADD(st->lat_n, 1);
    {
        apr_uint64_t mx = __atomic_load_n(&st->lat_max_us, __ATOMIC_RELAXED);
        while (us > mx && !__atomic_compare_exchange_n(&st->lat_max_us, &mx, us, 0,
                                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
    }
    __atomic_store_n(&st->down_until, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&st->last_ok_at, (apr_uint64_t)apr_time_now(), __ATOMIC_RELAXED);
    return 1;

failed:
    if (x.fd >= 0) {
        close(x.fd);
    }
    ADD(st->errors, 1);
    if (x.timed_out) {
        ADD(st->timeouts, 1);
    }
    __atomic_store_n(&st->down_until,
                     (apr_uint64_t)(apr_time_now() + apr_time_from_sec(SC_MSM_RETRY_S)),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&st->last_error_at, (apr_uint64_t)apr_time_now(), __ATOMIC_RELAXED);
    apr_snprintf(st->last_error, sizeof(st->last_error), "%s: %s", op,
                 x.err ? x.err : "failed");
    failure_line(s, n, op, x.err ? x.err : "failed");
    return 0;
}

static int node_down(int i)
{
    return (apr_uint64_t)apr_time_now()
           < __atomic_load_n(&shared->n[i].down_until, __ATOMIC_RELAXED);
}

int sc_msm_node_ids(void)
{
    return active && !active->redis && active->nnodes > 1;
}

/* The id's node part ("<hex>-<node>.<route>"): *len and where, or NULL. */
static const char *id_node_part(const char *id, apr_size_t *len)
{
    const char *dot = strchr(id, '.');
    const char *dash = memchr(id, '-', dot ? (apr_size_t)(dot - id) : strlen(id));
    if (!dash) {
        return NULL;
    }
    *len = dot ? (apr_size_t)(dot - dash - 1) : strlen(dash + 1);
    return dash + 1;
}

/* The configured node the id names, or -1 (none, or one not configured:
 * untrusted, it is ignored). */
static int id_node(const char *id)
{
    apr_size_t len;
    const char *n = sc_msm_node_ids() ? id_node_part(id, &len) : NULL;
    int i;
    if (!n) {
        return -1;
    }
    for (i = 0; i < active->nnodes; i++) {
        if (strlen(active->nodes[i].id) == len && !memcmp(active->nodes[i].id, n, len)) {
            return i;
        }
    }
    return -1;
}

/* The nodes in the order a session's operations try them: the node its id
 * names (msm's node id), then the regular nodes from the one its id (without
 * the node part) hashes to, then the failover nodes. */
static int node_order(const char *id, int *order)
{
    unsigned h = 5381;
    int i, k = 0, nreg = 0, reg[SC_MSM_MAX_NODES], named = id_node(id);
    apr_size_t nlen = 0;
    const char *np = named >= 0 ? id_node_part(id, &nlen) : NULL;
    for (; *id; id++) {
        if (np && id == np - 1) {
            id += nlen;               /* "-<node>" left out */
            continue;
        }
        h = h * 33 + (unsigned char)*id;
    }
    if (named >= 0) {
        order[k++] = named;
    }
    for (i = 0; i < active->nnodes; i++) {
        if (!active->nodes[i].failover) {
            reg[nreg++] = i;
        }
    }
    for (i = 0; i < nreg; i++) {
        int j = reg[(h + (unsigned)i) % (unsigned)nreg];
        if (j != named) {
            order[k++] = j;
        }
    }
    for (i = 0; i < active->nnodes; i++) {
        if (active->nodes[i].failover && i != named) {
            order[k++] = i;
        }
    }
    return k;
}

const char *sc_msm_node_id(apr_pool_t *p, const char *id, apr_size_t max)
{
    int order[SC_MSM_MAX_NODES], n, k, named, i;
    apr_size_t nlen = 0;
    const char *np, *dot, *nid, *plain;
    if (!sc_msm_node_ids() || !(dot = strchr(id, '.'))) {
        return id;
    }
    named = id_node(id);
    /* on a failover node (the own host's: msm's failoverNodes) while a
     * regular node is up: back to a regular one at once (msm moves it only
     * when another member takes the session over) */
    if (named >= 0 && active->nodes[named].failover) {
        for (i = 0; i < active->nnodes; i++) {
            if (!active->nodes[i].failover && !node_down(i)) {
                named = -1;
                break;
            }
        }
    }
    np = id_node_part(id, &nlen);
    plain = np ? apr_pstrcat(p, apr_pstrmemdup(p, id, (apr_size_t)(np - 1 - id)), dot, NULL)
               : id;
    n = node_order(named >= 0 ? id : plain, order);
    for (k = 0; k < n && node_down(order[k]); k++) {
    }
    if (k == n) {
        return id;                    /* every node down: it stays where it is */
    }
    if (order[k] == named) {
        return id;
    }
    nid = apr_pstrcat(p, apr_pstrmemdup(p, plain, (apr_size_t)(strchr(plain, '.') - plain)),
                      "-", active->nodes[order[k]].id, strchr(plain, '.'), NULL);
    if (strlen(nid) >= max) {
        static int said;
        if (!said) {
            said = 1;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, NULL, SCLOGNO(1716)
                         "session server: an id with msm's node id (%s) would be longer "
                         "than the store holds (%" APR_SIZE_T_FMT " bytes): ids are made "
                         "without it (placed by their hash; a shorter SessionClusterRoute "
                         "or node id makes room)", nid, max - 1);
        }
        return plain;
    }
    return nid;
}

static const char *req_get(apr_pool_t *p, const char *key, apr_size_t *len)
{
    const char *r = active->redis
        ? apr_psprintf(p, "*2\r\n$3\r\nGET\r\n$%" APR_SIZE_T_FMT "\r\n%s\r\n", strlen(key), key)
        : apr_psprintf(p, "get %s\r\n", key);
    *len = strlen(r);
    return r;
}

static const char *req_del(apr_pool_t *p, const char *key, apr_size_t *len)
{
    const char *r = active->redis
        ? apr_psprintf(p, "*2\r\n$3\r\nDEL\r\n$%" APR_SIZE_T_FMT "\r\n%s\r\n", strlen(key), key)
        : apr_psprintf(p, "delete %s\r\n", key);
    *len = strlen(r);
    return r;
}

static const char *req_set(apr_pool_t *p, const char *key, const char *val, apr_size_t vlen,
                           apr_int64_t max_inactive, apr_size_t *len)
{
    const char *head, *tail;
    char *r;
    if (active->redis) {
        if (max_inactive > 0) {
            const char *ms = apr_psprintf(p, "%" APR_INT64_T_FMT, max_inactive * 1000);
            head = apr_psprintf(p, "*5\r\n$3\r\nSET\r\n$%" APR_SIZE_T_FMT "\r\n%s\r\n$%"
                                APR_SIZE_T_FMT "\r\n", strlen(key), key, vlen);
            tail = apr_psprintf(p, "\r\n$2\r\nPX\r\n$%" APR_SIZE_T_FMT "\r\n%s\r\n",
                                strlen(ms), ms);
        }
        else {
            head = apr_psprintf(p, "*3\r\n$3\r\nSET\r\n$%" APR_SIZE_T_FMT "\r\n%s\r\n$%"
                                APR_SIZE_T_FMT "\r\n", strlen(key), key, vlen);
            tail = "\r\n";
        }
    }
    else {
        /* memcached: an exptime over 30 days is taken for a Unix time */
        apr_int64_t exp = max_inactive <= 0 ? 0
                          : max_inactive > 2592000 ? apr_time_sec(apr_time_now()) + max_inactive
                          : max_inactive;
        head = apr_psprintf(p, "set %s 0 %" APR_INT64_T_FMT " %" APR_SIZE_T_FMT "\r\n", key,
                            exp, vlen);
        tail = "\r\n";
    }
    *len = strlen(head) + vlen + strlen(tail);
    r = apr_palloc(p, *len + 1);
    memcpy(r, head, strlen(head));
    memcpy(r + strlen(head), val, vlen);
    memcpy(r + strlen(head) + vlen, tail, strlen(tail) + 1);
    return r;
}

/* The value of a GET reply: 1 found, 0 missing, -1 not a reply to GET. */
static int get_value(const char *reply, apr_size_t rlen, const char **v, apr_size_t *vlen)
{
    const char *eol = strstr(reply, "\r\n");
    if (!eol) {
        return -1;
    }
    if (active->redis) {
        if (!strncmp(reply, "$-1\r\n", 5)) {
            return 0;
        }
        if (reply[0] != '$') {
            return -1;
        }
    }
    else {
        if (!strcmp(reply, "END\r\n")) {
            return 0;
        }
        if (strncmp(reply, "VALUE ", 6) != 0 || rlen < 7
            || strcmp(reply + rlen - 7, "\r\nEND\r\n") != 0) {
            return -1;
        }
        *v = eol + 2;
        *vlen = rlen - (apr_size_t)(eol + 2 - reply) - 7;
        return 1;
    }
    *v = eol + 2;
    *vlen = rlen - (apr_size_t)(eol + 2 - reply) - 2;
    return 1;
}

/* The stored value "SCM1 <created> <maxInactive>\n<data>": 1 read (*data in
 * p), 0 not one this module stored (logged; ignored). */
static int decode_value(request_rec *r, apr_pool_t *p, int i, const char *key,
                        const char *v, apr_size_t vlen, const char **data,
                        apr_time_t *created, apr_int64_t *max_inactive)
{
    const char *nl = memchr(v, '\n', vlen);
    apr_int64_t c_us, mi;
    char *end;
    if (strncmp(v, "SCM1 ", vlen < 5 ? vlen : 5) != 0 || vlen < 5 || !nl) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1701)
                      "session %s on session server %s: not a session this module "
                      "stored; ignored", key, active->nodes[i].id);
        return 0;
    }
    c_us = apr_strtoi64(v + 5, &end, 10);
    mi = apr_strtoi64(end, &end, 10);
    if (end != nl || c_us < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1702)
                      "session %s on session server %s: a bad header; ignored", key,
                      active->nodes[i].id);
        return 0;
    }
    *data = apr_pstrmemdup(p, nl + 1, vlen - (apr_size_t)(nl + 1 - v));
    if (memchr(*data, '\0', vlen - (apr_size_t)(nl + 1 - v))) {
        return 0;
    }
    *created = (apr_time_t)c_us;
    *max_inactive = mi;
    return 1;
}

/* One "get" of 'key' on node i: 1 found and read, 0 missing (or not ours),
 * -1 the node could not be asked (down, failed, not the protocol). */
static int get_one(request_rec *r, apr_pool_t *p, int i, const char *key,
                   apr_time_t deadline, const char **data, apr_time_t *created,
                   apr_int64_t *max_inactive)
{
    apr_size_t qlen, rlen, vlen = 0;
    const char *q, *v = NULL;
    char *reply;
    int got;
    if (node_down(i)) {
        ADD(shared->n[i].skipped, 1);
        return -1;
    }
    q = req_get(r->pool, key, &qlen);
    ADD(shared->n[i].gets, 1);
    if (!exchange(r->server, r->pool, i, q, qlen, deadline, "get", &reply, &rlen)) {
        return -1;
    }
    got = get_value(reply, rlen, &v, &vlen);
    if (got < 0) {
        ADD(shared->n[i].errors, 1);
        apr_snprintf(shared->n[i].last_error, sizeof(shared->n[i].last_error),
                     "get: %.80s", reply);
        return -1;
    }
    if (got == 0) {
        ADD(shared->n[i].misses, 1);
        return 0;
    }
    ADD(shared->n[i].hits, 1);
    return decode_value(r, p, i, key, v, vlen, data, created, max_inactive);
}

/* msm's secondary copy (non-sticky, several memcached nodes)? */
static int secondary_on(void)
{
    return active && !active->sticky && sc_msm_node_ids();
}

/* The nodes after node 'own' in memcachedNodes' order, the regular ones
 * first, then the failover ones ('own' left out); *n of them. */
static int after_order(int own, int *order)
{
    int i, k = 0, pass;
    for (pass = 0; pass < 2; pass++) {
        for (i = 1; i < active->nnodes; i++) {
            int j = (own + i) % active->nnodes;
            if (active->nodes[j].failover == pass) {
                order[k++] = j;
            }
        }
    }
    return k;
}

/* Where the secondary copy of a session on node 'own' goes now: the first
 * node after it that is not down, or -1. */
static int secondary_node(int own)
{
    int order[SC_MSM_MAX_NODES], n = after_order(own, order), k;
    for (k = 0; k < n; k++) {
        if (!node_down(order[k])) {
            return order[k];
        }
    }
    return -1;
}

int sc_msm_load(request_rec *r, apr_pool_t *p, const char *id, const char **data,
                apr_time_t *created, apr_int64_t *max_inactive)
{
    int order[SC_MSM_MAX_NODES], n, k, failed = 0, own_failed = 0, own_missed = 0, own;
    apr_time_t deadline;

    if (!active) {
        return 0;
    }
    deadline = apr_time_now() + apr_time_from_msec(active->operation_timeout_ms);
    n = node_order(id, order);
    own = id_node(id);
    for (k = 0; k < n; k++) {
        int got = get_one(r, p, order[k], id, deadline, data, created, max_inactive);
        if (got > 0) {
            ADD(shared->loaded, 1);
            return 1;
        }
        if (got < 0) {
            failed++;
            own_failed |= order[k] == own;
        }
        else {
            own_missed |= order[k] == own;
        }
    }
    if (own >= 0 && (own_failed || own_missed) && secondary_on()) {
        /* its own node is gone (or lost it: restarted, evicted; msm reads
         * the copy only in the first case): msm's copy "bak:<id>", on the
         * node after it (the first that is up then; the others too, in
         * their order: the nodes between may have been down at the write).
         * An invalidated or moved session has no copy left (sc_msm_remove),
         * an expired one's has expired with it. */
        const char *key = apr_pstrcat(r->pool, "bak:", id, NULL);
        n = after_order(own, order);
        for (k = 0; k < n; k++) {
            if (get_one(r, p, order[k], key, deadline, data, created, max_inactive) > 0) {
                ADD(shared->second_loaded, 1);
                ADD(shared->loaded, 1);
                ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1719)
                              "session %s: its session server node %s %s: read from its "
                              "secondary copy on %s", id, active->nodes[own].id,
                              own_failed ? "is down (the session moves when saved)"
                              : "does not hold it (restarted or evicted)",
                              active->nodes[order[k]].id);
                return 1;
            }
        }
    }
    if (failed) {
        /* some node could not be asked: it may hold the session */
        ADD(shared->load_failed, 1);
        return -1;
    }
    ADD(shared->load_missing, 1);
    return 0;
}

typedef struct {
    server_rec *s;
    apr_pool_t *p;
    const char *id;
    const char *req;
    apr_size_t len;
    int node;                         /* out: the node that took it */
} backup_job;

/* The backup of one session: on the first node of its order that takes it. */
static int backup_now(backup_job *j, apr_time_t deadline)
{
    int order[SC_MSM_MAX_NODES], n, k;
    n = node_order(j->id, order);
    for (k = 0; k < n; k++) {
        int i = order[k];
        char *reply;
        apr_size_t rlen;
        if (node_down(i)) {
            ADD(shared->n[i].skipped, 1);
            continue;
        }
        ADD(shared->n[i].sets, 1);
        if (!exchange(j->s, j->p, i, j->req, j->len, deadline, "set", &reply, &rlen)) {
            continue;
        }
        if (strcmp(reply, active->redis ? "+OK\r\n" : "STORED\r\n") != 0) {
            ADD(shared->n[i].errors, 1);
            apr_snprintf(shared->n[i].last_error, sizeof(shared->n[i].last_error),
                         "set: %.80s", reply);
            continue;
        }
        ADD(shared->backups, 1);
        j->node = i;
        return 1;
    }
    ADD(shared->backup_failed, 1);
    return 0;
}

/* msm's secondary copy of a session node 'own' took (non-sticky): "bak:<id>"
 * set on the node after it; counted, a failure logged as every one (the node
 * is then skipped for a while).  Written before the response (msm writes it
 * from a thread pool after it): the copy is never older than what the client
 * saw. */
static int secondary_write(server_rec *s, apr_pool_t *p, const char *id, const char *v,
                            apr_size_t vlen, apr_int64_t max_inactive, int own,
                            apr_time_t deadline)
{
    int i = secondary_node(own);
    const char *q;
    char *reply;
    apr_size_t qlen, rlen;
    if (i < 0) {
        ADD(shared->second_failed, 1);  /* no other node is up */
        return 0;
    }
    q = req_set(p, apr_pstrcat(p, "bak:", id, NULL), v, vlen, max_inactive, &qlen);
    ADD(shared->n[i].sets, 1);
    if (!exchange(s, p, i, q, qlen, deadline, "set", &reply, &rlen)) {
        ADD(shared->second_failed, 1);
        return 0;
    }
    if (strcmp(reply, "STORED\r\n") != 0) {
        ADD(shared->n[i].errors, 1);
        apr_snprintf(shared->n[i].last_error, sizeof(shared->n[i].last_error),
                     "set: %.80s", reply);
        ADD(shared->second_failed, 1);
        return 0;
    }
    ADD(shared->second_backups, 1);
    return 1;
}

/* Cleanups of the request's pool run once the response is sent; what they
 * allocate goes to a pool of their own, not to the one being destroyed. */
static apr_status_t backup_after(void *data)
{
    backup_job *j = data;
    apr_pool_t *tmp;
    if (active && apr_pool_create(&tmp, NULL) == APR_SUCCESS) {
        j->p = tmp;
        backup_now(j, apr_time_now() + apr_time_from_msec(active->operation_timeout_ms));
        apr_pool_destroy(tmp);
    }
    return APR_SUCCESS;
}

/* The request's touch job, if any: the request's own backup or removal makes
 * it unnecessary. */
#define SC_MSM_TOUCH_KEY "sc-msm-touch"

typedef struct {
    server_rec *s;
    apr_pool_t *p;
    const char *id;
    const char *data;
    apr_time_t created;
    apr_int64_t max_inactive;
    int done;
} touch_job;

static void touch_done(request_rec *r)
{
    void *t = NULL;
    request_rec *m = r->main ? r->main : r;
    apr_pool_userdata_get(&t, SC_MSM_TOUCH_KEY, m->pool);
    if (t) {
        ((touch_job *)t)->done = 1;
    }
}

static apr_status_t touch_run(touch_job *t);

static apr_status_t touch_after(void *data)
{
    touch_job *t = data;
    apr_pool_t *tmp;
    if (!active || t->done || apr_pool_create(&tmp, NULL) != APR_SUCCESS) {
        return APR_SUCCESS;
    }
    t->p = tmp;
    touch_run(t);
    apr_pool_destroy(tmp);
    return APR_SUCCESS;
}

static const char *touch_value(touch_job *t)
{
    return apr_psprintf(t->p, "SCM1 %" APR_INT64_T_FMT " %" APR_INT64_T_FMT "\n%s",
                        (apr_int64_t)t->created, t->max_inactive, t->data);
}

/* The session's secondary copy follows its expiry too (msm "pings" it): one
 * the node after 'own' does not hold (it was down at the write, restarted,
 * evicted) is written again. */
static void touch_secondary(touch_job *t, int own, apr_time_t deadline)
{
    int i = secondary_node(own);
    const char *key, *q, *v;
    char *reply;
    if (i < 0) {
        return;
    }
    key = apr_pstrcat(t->p, "bak:", t->id, NULL);
    q = apr_psprintf(t->p, "touch %s %" APR_INT64_T_FMT "\r\n", key,
                     t->max_inactive > 2592000
                     ? apr_time_sec(apr_time_now()) + t->max_inactive : t->max_inactive);
    {
        apr_size_t rlen;
        if (!exchange(t->s, t->p, i, q, strlen(q), deadline, "touch", &reply, &rlen)) {
            return;
        }
    }
    ADD(shared->second_touches, 1);
    if (!strcmp(reply, "TOUCHED\r\n")) {
        return;
    }
    v = touch_value(t);
    if (secondary_write(t->s, t->p, t->id, v, strlen(v), t->max_inactive, own, deadline)) {
        ADD(shared->second_restored, 1);
    }
}

static apr_status_t touch_run(touch_job *t)
{
    int order[SC_MSM_MAX_NODES], n, k;
    apr_time_t deadline;
    const char *q;
    apr_size_t qlen;
    if (!active || t->done) {
        return APR_SUCCESS;
    }
    deadline = apr_time_now() + apr_time_from_msec(active->operation_timeout_ms);
    if (active->redis) {
        const char *ms = apr_psprintf(t->p, "%" APR_INT64_T_FMT, t->max_inactive * 1000);
        q = apr_psprintf(t->p, "*3\r\n$7\r\nPEXPIRE\r\n$%" APR_SIZE_T_FMT "\r\n%s\r\n$%"
                         APR_SIZE_T_FMT "\r\n%s\r\n", strlen(t->id), t->id, strlen(ms), ms);
    }
    else {
        q = apr_psprintf(t->p, "touch %s %" APR_INT64_T_FMT "\r\n", t->id,
                         t->max_inactive > 2592000
                         ? apr_time_sec(apr_time_now()) + t->max_inactive : t->max_inactive);
    }
    qlen = strlen(q);
    n = node_order(t->id, order);
    for (k = 0; k < n; k++) {
        int i = order[k];
        char *reply;
        apr_size_t rlen;
        if (node_down(i)) {
            ADD(shared->n[i].skipped, 1);
            continue;
        }
        if (!exchange(t->s, t->p, i, q, qlen, deadline, "touch", &reply, &rlen)) {
            continue;
        }
        ADD(shared->touches, 1);
        if (!strcmp(reply, active->redis ? ":1\r\n" : "TOUCHED\r\n")) {
            if (secondary_on()) {
                touch_secondary(t, i, deadline);
            }
            return APR_SUCCESS;
        }
        break;                        /* not there: backed up again, below */
    }
    if (k < n) {
        backup_job j;
        const char *v = touch_value(t);
        j.s = t->s;
        j.p = t->p;
        j.id = t->id;
        j.node = -1;
        j.req = req_set(t->p, t->id, v, strlen(v), t->max_inactive, &j.len);
        if (backup_now(&j, deadline)) {
            ADD(shared->touch_restored, 1);
            if (secondary_on()) {
                secondary_write(t->s, t->p, t->id, v, strlen(v), t->max_inactive, j.node,
                                deadline);
            }
        }
    }
    return APR_SUCCESS;
}

void sc_msm_touch(request_rec *r, const char *id, const char *data, apr_time_t created,
                  apr_int64_t max_inactive)
{
    request_rec *m = r->main ? r->main : r;
    touch_job *t;
    if (!active || max_inactive <= 0 || sc_msm_ignored(r)) {
        return;
    }
    t = apr_pcalloc(m->pool, sizeof(*t));
    t->s = m->server;
    t->p = m->pool;
    t->id = apr_pstrdup(m->pool, id);
    t->data = data;
    t->created = created;
    t->max_inactive = max_inactive;
    apr_pool_userdata_setn(t, SC_MSM_TOUCH_KEY, NULL, m->pool);
    apr_pool_cleanup_register(m->pool, t, touch_after, apr_pool_cleanup_null);
}

int sc_msm_backup(request_rec *r, const char *id, const char *data, apr_time_t created,
                  apr_int64_t max_inactive)
{
    backup_job *j;
    const char *v;
    apr_time_t deadline;
    if (active) {
        touch_done(r);
    }
    if (!active || sc_msm_ignored(r)) {
        if (active) {
            ADD(shared->ignored, 1);
        }
        return 1;
    }
    j = apr_palloc(r->pool, sizeof(*j));
    j->s = r->server;
    j->p = r->pool;
    j->id = apr_pstrdup(r->pool, id);
    v = apr_psprintf(r->pool, "SCM1 %" APR_INT64_T_FMT " %" APR_INT64_T_FMT "\n%s",
                     (apr_int64_t)created, max_inactive, data);
    j->req = req_set(r->pool, id, v, strlen(v), max_inactive, &j->len);
    j->node = -1;
    if (active->backup_async && active->sticky) {
        /* after the response: r->pool's cleanups run once it is sent */
        ADD(shared->backups_async, 1);
        apr_pool_cleanup_register(r->pool, j, backup_after, apr_pool_cleanup_null);
        return 1;
    }
    deadline = apr_time_now() + apr_time_from_msec(active->backup_timeout_ms);
    if (!backup_now(j, deadline)) {
        apr_table_setn(r->notes, "SESSION_CLUSTER_BACKUP", "failed");
        return 0;
    }
    if (secondary_on()) {
        secondary_write(r->server, r->pool, j->id, v, strlen(v), max_inactive, j->node,
                        deadline);
    }
    return 1;
}

int sc_msm_remove(request_rec *r, const char *id)
{
    int i, pass, ok = 1;
    apr_size_t qlen;
    const char *q;
    apr_time_t deadline;
    if (!active) {
        return 1;
    }
    touch_done(r);
    deadline = apr_time_now() + apr_time_from_msec(active->operation_timeout_ms);
    /* every node: a copy left on a node used while another was down goes
     * too, and so does msm's secondary copy ("bak:<id>", non-sticky) */
    for (pass = 0; pass < (secondary_on() ? 2 : 1); pass++) {
        q = req_del(r->pool, pass ? apr_pstrcat(r->pool, "bak:", id, NULL) : id, &qlen);
        for (i = 0; i < active->nnodes; i++) {
            char *reply;
            apr_size_t rlen;
            if (node_down(i)) {
                ADD(shared->n[i].skipped, 1);
                ok = 0;
                continue;
            }
            ADD(shared->n[i].deletes, 1);
            if (!exchange(r->server, r->pool, i, q, qlen, deadline, "delete", &reply,
                          &rlen)) {
                ok = 0;
            }
            else if (active->redis ? reply[0] != ':'
                     : strcmp(reply, "DELETED\r\n") && strcmp(reply, "NOT_FOUND\r\n")) {
                ADD(shared->n[i].errors, 1);
                apr_snprintf(shared->n[i].last_error, sizeof(shared->n[i].last_error),
                             "delete: %.80s", reply);
                ok = 0;
            }
        }
    }
    ADD(shared->removed, 1);
    return ok;
}

/* ------------------------------------------------------------------------- */
/* Locks (lockingMode, non-sticky)                                            */
/* ------------------------------------------------------------------------- */

/* The lock a request holds, kept on its main request's pool (an internal
 * redirect keeps the pool, and so the lock). */
#define SC_MSM_LOCK_KEY "sc-msm-lock"

typedef struct {
    server_rec *s;
    const char *id;                   /* the session; NULL: none held */
    const char *key;                  /* "lock:<id>" */
    char token[33];                   /* this request's: only it releases */
    int node;
    apr_time_t taken;                 /* before the "add"/"SET" that took it */
    const char *refused;              /* not had for this session: not asked
                                       * again in this request (mod_session's
                                       * output filter loads it once more) */
    const char *refused_why;
    apr_uint64_t auto_hash;           /* lockingMode="auto": the request id's */
    int auto_noted;                   /* 0 not, 1 read, 2 changed the session */
    int auto_unlocked;                /* taken for read-only: not locked */
} lock_rec;

static lock_rec *lock_get(request_rec *r, int make);

/* How long after 'taken' the lock surely still exists: memcached counts its
 * expiry in whole seconds (it may end up to one second early). */
static apr_time_t lock_life(void)
{
    return apr_time_from_msec(SC_MSM_LOCK_EXPIRY_MS - (active->redis ? 0 : 1000));
}

static void lock_line(request_rec *r, const char *id, const char *what)
{
    apr_time_t now = apr_time_now();
    apr_uint64_t last = __atomic_load_n(&shared->lock_logged_at, __ATOMIC_RELAXED);
    if ((apr_uint64_t)now - last < (apr_uint64_t)apr_time_from_sec(SC_MSM_LOG_EVERY_S)
        || !__atomic_compare_exchange_n(&shared->lock_logged_at, &last, (apr_uint64_t)now, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        ADD(shared->lock_unlogged, 1);
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1714)
                  "session %s: its lock (lockingMode=\"%s\") %s: 503 to the client, the "
                  "session is neither read nor changed (%" APR_UINT64_T_FMT " more such "
                  "requests since the last such line; these lines: at most one every %d s)",
                  id, active->locking_mode, what,
                  __atomic_exchange_n(&shared->lock_unlogged, 0, __ATOMIC_RELAXED),
                  SC_MSM_LOG_EVERY_S);
}

/* The tables' lock: held for a few loads and stores.  Bounded: a process
 * killed while holding it must not stop the others (after 10000 yields the
 * tables are left alone: the request is locked, nothing is learnt). */
static int auto_take(void)
{
    int spins = 0;
    while (__atomic_exchange_n(&shared->auto_busy, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&shared->auto_busy, __ATOMIC_RELAXED)) {
            if (++spins > 10000) {
                /* taken over: its holder is gone, or slower than all this */
                __atomic_store_n(&shared->auto_busy, 0, __ATOMIC_RELEASE);
                return 0;
            }
            sched_yield();
        }
    }
    return 1;
}

static void auto_give(void)
{
    __atomic_store_n(&shared->auto_busy, 0, __ATOMIC_RELEASE);
}

/* The entry of h in a table (under auto_take), or NULL; 'make': the least
 * recently used entry of its set made h's. */
static msm_auto_entry *auto_find(msm_auto_entry *t, unsigned sets, apr_uint64_t h,
                                 apr_time_t now, int make)
{
    msm_auto_entry *set = t + (h % sets) * SC_MSM_AUTO_WAYS, *lru = set;
    int i;
    for (i = 0; i < SC_MSM_AUTO_WAYS; i++) {
        msm_auto_entry *e = &set[i];
        if (e->used && (apr_time_t)e->used + SC_MSM_AUTO_LIFE > now && e->hash == h) {
            return e;
        }
        if (!e->used || (apr_time_t)e->used + SC_MSM_AUTO_LIFE <= now) {
            e->used = 0;              /* older than msm's 6 hours: gone */
        }
        if (e->used < lru->used) {
            lru = e;
        }
    }
    if (!make) {
        return NULL;
    }
    lru->hash = h;
    lru->used = 0;
    return lru;
}

/* msm's request id, "METHOD uri?query" (no query for POST). */
static const char *request_id(request_rec *r)
{
    request_rec *m = r->main ? r->main : r;
    return apr_pstrcat(r->pool, m->method ? m->method : "", " ",
                       m->parsed_uri.path ? m->parsed_uri.path : m->uri,
                       m->args && m->method_number != M_POST ? "?" : "",
                       m->args && m->method_number != M_POST ? m->args : "", NULL);
}

static apr_uint64_t request_hash(const char *s)
{
    apr_uint64_t h = 14695981039346656037ULL;   /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h ? h : 1;
}

/* lockingMode="auto": is this request id one seen to leave the session
 * unchanged (and not since seen to change it)? */
static int auto_readonly(request_rec *r, lock_rec *l)
{
    apr_time_t now = apr_time_now();
    msm_auto_entry *e;
    if (!l->auto_hash) {
        l->auto_hash = request_hash(request_id(r));
    }
    if (!auto_take()) {
        return 0;
    }
    e = auto_find(shared->auto_ro, SC_MSM_AUTO_RO_SETS, l->auto_hash, now, 0);
    if (e) {
        e->used = (apr_uint64_t)now;
    }
    auto_give();
    return e != NULL;
}

/* At the request's end: what it did to its session, remembered as msm's
 * ReadOnlyRequestsCache does (changed: on the blacklist and no longer
 * read-only; only read: read-only, unless blacklisted). */
static void auto_learn(lock_rec *l)
{
    apr_time_t now = apr_time_now();
    msm_auto_entry *e;
    if (!auto_take()) {
        return;
    }
    if (l->auto_noted == 2) {
        e = auto_find(shared->auto_bl, SC_MSM_AUTO_BL_SETS, l->auto_hash, now, 1);
        e->used = (apr_uint64_t)now;
        if ((e = auto_find(shared->auto_ro, SC_MSM_AUTO_RO_SETS, l->auto_hash, now, 0))) {
            e->used = 0;
        }
        ADD(shared->auto_modifying, 1);
    }
    else if (!auto_find(shared->auto_bl, SC_MSM_AUTO_BL_SETS, l->auto_hash, now, 0)) {
        e = auto_find(shared->auto_ro, SC_MSM_AUTO_RO_SETS, l->auto_hash, now, 1);
        e->used = (apr_uint64_t)now;
        ADD(shared->auto_readonly, 1);
    }
    auto_give();
}

void sc_msm_auto_note(request_rec *r, int changed)
{
    lock_rec *l;
    if (!active || active->sticky || active->lock_mode != SC_MSM_LOCK_AUTO
        || sc_msm_ignored(r) || !(l = lock_get(r, 1))) {
        return;
    }
    if (!l->auto_hash) {
        l->auto_hash = request_hash(request_id(r));
    }
    if (changed && l->auto_unlocked && l->auto_noted < 2) {
        /* taken for read-only, it changed the session without the lock (as
         * in msm; its request id is not taken for read-only again) */
        ADD(shared->auto_unlocked_writes, 1);
    }
    if (l->auto_noted < (changed ? 2 : 1)) {
        l->auto_noted = changed ? 2 : 1;
    }
}

int sc_msm_lock_wanted(request_rec *r)
{
    request_rec *m = r->main ? r->main : r;
    if (!active || active->sticky || active->lock_mode == SC_MSM_LOCK_NONE
        || sc_msm_ignored(r)) {
        return 0;
    }
    if (active->lock_mode == SC_MSM_LOCK_ALL) {
        return 1;
    }
    if (active->lock_mode == SC_MSM_LOCK_AUTO) {
        lock_rec *l = lock_get(r, 1);
        if (l->id || !auto_readonly(r, l)) {
            return 1;
        }
        l->auto_unlocked = 1;
    }
    else if (active->lock_re
             && !ap_regexec(active->lock_re, request_id(r), 0, NULL, 0)) {
        return 1;
    }
    {
        /* counted once per request (the load may ask again) */
        void *seen = NULL;
        apr_pool_userdata_get(&seen, "sc-msm-nolock", m->pool);
        if (!seen) {
            apr_pool_userdata_setn((void *)1, "sc-msm-nolock", NULL, m->pool);
            ADD(shared->lock_not_required, 1);
        }
    }
    return 0;
}

static void unlock_rec(lock_rec *l, apr_pool_t *p);

/* The request ends (its pool is destroyed once the response is sent): a
 * lock it still holds is released, with a pool of its own. */
static apr_status_t lock_cleanup(void *data)
{
    lock_rec *l = data;
    apr_pool_t *tmp;
    if (active && l->auto_noted && l->auto_hash) {
        auto_learn(l);
    }
    if (active && l->id && apr_pool_create(&tmp, NULL) == APR_SUCCESS) {
        unlock_rec(l, tmp);
        apr_pool_destroy(tmp);
    }
    return APR_SUCCESS;
}

static lock_rec *lock_get(request_rec *r, int make)
{
    request_rec *m = r->main ? r->main : r;
    void *v = NULL;
    lock_rec *l;
    apr_pool_userdata_get(&v, SC_MSM_LOCK_KEY, m->pool);
    if (v || !make) {
        return v;
    }
    l = apr_pcalloc(m->pool, sizeof(*l));
    l->s = m->server;
    apr_pool_userdata_setn(l, SC_MSM_LOCK_KEY, NULL, m->pool);
    apr_pool_cleanup_register(m->pool, l, lock_cleanup, apr_pool_cleanup_null);
    return l;
}

/* A lock this request could not have: remembered, the answer 0. */
static int refuse(request_rec *r, lock_rec *l, const char *id, const char *why)
{
    request_rec *m = r->main ? r->main : r;
    l->refused = apr_pstrdup(m->pool, id);
    l->refused_why = apr_pstrdup(m->pool, why);
    return 0;
}

int sc_msm_lock(request_rec *r, const char *id, const char **why)
{
    request_rec *m = r->main ? r->main : r;
    int order[SC_MSM_MAX_NODES], n, k, node = -1;
    apr_interval_time_t wait = apr_time_from_msec(SC_MSM_LOCK_RETRY_MS);
    apr_time_t t0 = apr_time_now(), deadline;
    unsigned char rnd[16];
    lock_rec *l;
    const char *q;
    apr_size_t qlen;
    apr_uint64_t us;

    *why = NULL;
    if (!active) {
        return 1;
    }
    l = lock_get(r, 1);
    if (l->refused && !strcmp(l->refused, id)) {
        *why = l->refused_why;
        return 0;
    }
    if (l->id) {
        if (!strcmp(l->id, id)) {
            return 1;                 /* this request holds it already */
        }
        sc_msm_unlock(r);             /* another session's (its id changed) */
    }
    deadline = t0 + apr_time_from_msec(active->operation_timeout_ms);
    /* on the session's node: the first of its order that is up */
    n = node_order(id, order);
    for (k = 0; k < n && node < 0; k++) {
        if (!node_down(order[k])) {
            node = order[k];
        }
    }
    if (node < 0) {
        ADD(shared->lock_failed, 1);
        *why = "could not be asked for: every node is down";
        lock_line(r, id, *why);
        return refuse(r, l, id, *why);
    }
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        ADD(shared->lock_failed, 1);
        *why = "could not be taken: no random bytes for its token";
        return refuse(r, l, id, *why);
    }
    for (k = 0; k < 16; k++) {
        apr_snprintf(l->token + 2 * k, 3, "%02x", rnd[k]);
    }
    l->key = apr_pstrcat(m->pool, "lock:", id, NULL);
    if (active->redis) {
        const char *ms = apr_psprintf(r->pool, "%d", SC_MSM_LOCK_EXPIRY_MS);
        q = apr_psprintf(r->pool, "*6\r\n$3\r\nSET\r\n$%" APR_SIZE_T_FMT "\r\n%s\r\n$32\r\n"
                         "%s\r\n$2\r\nNX\r\n$2\r\nPX\r\n$%" APR_SIZE_T_FMT "\r\n%s\r\n",
                         strlen(l->key), l->key, l->token, strlen(ms), ms);
    }
    else {
        q = apr_psprintf(r->pool, "add %s 0 %d 32\r\n%s\r\n", l->key,
                         SC_MSM_LOCK_EXPIRY_MS / 1000, l->token);
    }
    qlen = strlen(q);
    for (;;) {
        char *reply;
        apr_size_t rlen;
        apr_time_t before = apr_time_now(), left;
        /* each attempt has operationTimeout (the last one may start when
         * the wait is nearly over): a lock is had or refused within twice
         * operationTimeout */
        if (!exchange(r->server, r->pool, node, q, qlen,
                      before + apr_time_from_msec(active->operation_timeout_ms), "lock",
                      &reply, &rlen)) {
            ADD(shared->lock_failed, 1);
            *why = "could not be asked for: the session server failed";
            lock_line(r, id, *why);
            return refuse(r, l, id, *why);
        }
        if (!strcmp(reply, active->redis ? "+OK\r\n" : "STORED\r\n")) {
            l->id = apr_pstrdup(m->pool, id);
            l->node = node;
            l->taken = before;
            break;
        }
        if (strcmp(reply, active->redis ? "$-1\r\n" : "NOT_STORED\r\n") != 0) {
            ADD(shared->n[node].errors, 1);
            apr_snprintf(shared->n[node].last_error, sizeof(shared->n[node].last_error),
                         "lock: %.80s", reply);
            ADD(shared->lock_failed, 1);
            *why = "could not be taken: the session server's answer was not the protocol's";
            lock_line(r, id, *why);
            return refuse(r, l, id, *why);
        }
        /* held by another request: msm's back-off, within operationTimeout */
        left = deadline - apr_time_now();
        if (left <= 0) {
            ADD(shared->lock_timeouts, 1);
            *why = apr_psprintf(r->pool, "was not free within operationTimeout (%d ms)",
                                active->operation_timeout_ms);
            lock_line(r, id, *why);
            return refuse(r, l, id, *why);
        }
        ADD(shared->lock_retries, 1);
        apr_sleep(wait < left ? wait : left);
        wait = wait * 2 > apr_time_from_msec(SC_MSM_LOCK_RETRY_MAX_MS)
               ? apr_time_from_msec(SC_MSM_LOCK_RETRY_MAX_MS) : wait * 2;
    }
    us = (apr_uint64_t)(apr_time_now() - t0);
    ADD(shared->locks, 1);
    ADD(shared->lock_wait_us, us);
    {
        apr_uint64_t mx = __atomic_load_n(&shared->lock_wait_max_us, __ATOMIC_RELAXED);
        while (us > mx && !__atomic_compare_exchange_n(&shared->lock_wait_max_us, &mx, us, 0,
                                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
    }
    return 1;
}

int sc_msm_lock_valid(request_rec *r, const char *id)
{
    lock_rec *l;
    apr_time_t margin;
    if (!active) {
        return 1;
    }
    l = lock_get(r, 0);
    if (!l || !l->id || strcmp(l->id, id) != 0) {
        return 0;
    }
    /* the write that follows may take sessionBackupTimeout */
    margin = apr_time_from_msec(active->backup_timeout_ms > active->operation_timeout_ms
                                ? active->backup_timeout_ms : active->operation_timeout_ms);
    if (apr_time_now() - l->taken + margin >= lock_life()) {
        ADD(shared->lock_lost, 1);
        return 0;
    }
    return 1;
}

void sc_msm_unlock(request_rec *r)
{
    lock_rec *l;
    if (active && (l = lock_get(r, 0)) && l->id) {
        unlock_rec(l, r->pool);
    }
}

static void unlock_rec(lock_rec *l, apr_pool_t *p)
{
    const char *q;
    char *reply;
    apr_size_t rlen;
    apr_time_t deadline;
    deadline = apr_time_now() + apr_time_from_msec(active->operation_timeout_ms);
    if (active->redis) {
        /* compare-and-delete: only this request's token */
        static const char lua[] = "if redis.call('get',KEYS[1])==ARGV[1] then return "
                                  "redis.call('del',KEYS[1]) else return 0 end";
        q = apr_psprintf(p, "*5\r\n$4\r\nEVAL\r\n$%" APR_SIZE_T_FMT "\r\n%s\r\n$1\r\n1"
                         "\r\n$%" APR_SIZE_T_FMT "\r\n%s\r\n$32\r\n%s\r\n", strlen(lua), lua,
                         strlen(l->key), l->key, l->token);
    }
    else if (deadline - l->taken >= lock_life()) {
        /* it may have expired and been taken by another request before a
         * "delete" arrived: left to expire */
        ADD(shared->lock_left, 1);
        l->id = NULL;
        return;
    }
    else {
        /* memcached's text protocol has no compare-and-delete: the delete
         * arrives before the lock can have expired (above), so the lock is
         * still this request's */
        q = apr_psprintf(p, "delete %s\r\n", l->key);
    }
    if (exchange(l->s, p, l->node, q, strlen(q), deadline, "unlock", &reply, &rlen)
        && (active->redis ? !strcmp(reply, ":1\r\n") : !strcmp(reply, "DELETED\r\n"))) {
        ADD(shared->lock_released, 1);
    }
    else {
        ADD(shared->lock_left, 1);
    }
    l->id = NULL;
}

/* ------------------------------------------------------------------------- */
/* The page                                                                   */
/* ------------------------------------------------------------------------- */

#define LD(f) __atomic_load_n(&(f), __ATOMIC_RELAXED)

void sc_msm_fields(apr_pool_t *p, sc_msm_field_fn *fn, void *ctx)
{
    int i;
    if (!active || !shared) {
        return;
    }
    fn(ctx, 0, "Backend", active->redis ? "redis" : "memcached", 0, 0, 0,
       "memcached or redis (memcachedNodes)");
    fn(ctx, 0, "Mode", active->sticky ? "sticky" : "non-sticky", 0, 0, 0,
       "sticky: sessions live on the member and are backed up to the server");
    fn(ctx, 0, "BackupMode", active->backup_async ? "async" : "sync", 0, 0, 0,
       "sync: within sessionBackupTimeout; async: after the response");
    fn(ctx, 0, "Loaded", NULL, LD(shared->loaded), 1, 1,
       "sessions this member did not hold, loaded from the server");
    fn(ctx, 0, "LoadMissing", NULL, LD(shared->load_missing), 1, 1,
       "sessions asked for that no node held");
    fn(ctx, 0, "LoadFailed", NULL, LD(shared->load_failed), 1, 1,
       "loads that could not ask every node (down, timed out)");
    fn(ctx, 0, "Backups", NULL, LD(shared->backups), 1, 1, "sessions backed up");
    fn(ctx, 0, "BackupsAsync", NULL, LD(shared->backups_async), 1, 1,
       "backups left for after the response");
    fn(ctx, 0, "BackupFailed", NULL, LD(shared->backup_failed), 1, 1,
       "backups no node took: the member's copy is the only one");
    fn(ctx, 0, "Removed", NULL, LD(shared->removed), 1, 1,
       "sessions removed from the server (invalidated, or re-bound)");
    fn(ctx, 0, "Touches", NULL, LD(shared->touches), 1, 1,
       "expiries pushed back for sessions read but not changed");
    fn(ctx, 0, "TouchRestored", NULL, LD(shared->touch_restored), 1, 1,
       "sessions read here that the server no longer held, backed up again");
    fn(ctx, 0, "Ignored", NULL, LD(shared->ignored), 1, 1,
       "requests requestUriIgnorePattern matched: no backup");
    if (!active->sticky) {
        apr_uint64_t nl = LD(shared->locks);
        fn(ctx, 0, "LockingMode", active->locking_mode ? active->locking_mode : "none", 0, 0,
           0, "lockingMode: which requests take their session's lock");
        fn(ctx, 0, "Locks", NULL, nl, 1, 1, "session locks taken");
        fn(ctx, 0, "LockRetries", NULL, LD(shared->lock_retries), 1, 1,
           "attempts that found the lock held by another request, and waited");
        fn(ctx, 0, "LockTimeouts", NULL, LD(shared->lock_timeouts), 1, 1,
           "locks not free within operationTimeout: 503 to the client");
        fn(ctx, 0, "LockFailed", NULL, LD(shared->lock_failed), 1, 1,
           "locks the server could not be asked for: 503 to the client");
        fn(ctx, 0, "LockLost", NULL, LD(shared->lock_lost), 1, 1,
           "changes refused (503): held so long the lock could expire during the write");
        fn(ctx, 0, "LocksReleased", NULL, LD(shared->lock_released), 1, 1,
           "locks released by their request");
        fn(ctx, 0, "LocksLeft", NULL, LD(shared->lock_left), 1, 1,
           "locks left to expire (a release that failed, or came too late)");
        fn(ctx, 0, "LockNotRequired", NULL, LD(shared->lock_not_required), 1, 1,
           "requests lockingMode did not lock (uriPattern did not match, or auto "
           "took them for read-only)");
        if (active->lock_mode == SC_MSM_LOCK_AUTO) {
            fn(ctx, 0, "AutoReadOnly", NULL, LD(shared->auto_readonly), 1, 1,
               "requests that left their session unchanged: their request id is "
               "taken for read-only (not locked) next time");
            fn(ctx, 0, "AutoModifying", NULL, LD(shared->auto_modifying), 1, 1,
               "requests that changed their session: their request id is always locked");
            fn(ctx, 0, "AutoUnlockedWrites", NULL, LD(shared->auto_unlocked_writes), 1, 1,
               "requests taken for read-only that changed the session without the lock "
               "(as in msm)");
        }
        if (secondary_on()) {
            fn(ctx, 0, "SecondaryBackups", NULL, LD(shared->second_backups), 1, 1,
               "msm's secondary copies (\"bak:<id>\") written to the node after a "
               "session's own");
            fn(ctx, 0, "SecondaryFailed", NULL, LD(shared->second_failed), 1, 1,
               "secondary copies not written (no other node up, or it failed)");
            fn(ctx, 0, "SecondaryLoaded", NULL, LD(shared->second_loaded), 1, 1,
               "sessions read from their secondary copy: their own node was down");
            fn(ctx, 0, "SecondaryTouches", NULL, LD(shared->second_touches), 1, 1,
               "expiries of secondary copies pushed back (sessions only read)");
            fn(ctx, 0, "SecondaryRestored", NULL, LD(shared->second_restored), 1, 1,
               "secondary copies the node no longer held, written again");
        }
        fn(ctx, 0, "LockWaitAvgUs", NULL, nl ? LD(shared->lock_wait_us) / nl : 0, 1, 0,
           "the average time to take a lock");
        fn(ctx, 0, "LockWaitMaxUs", NULL, LD(shared->lock_wait_max_us), 1, 0, NULL);
    }
    for (i = 0; i < active->nnodes; i++) {
        const msm_node *n = &active->nodes[i];
        msm_node_stats *st = &shared->n[i];
        apr_uint64_t ln = LD(st->lat_n);
        int row = i + 1;
        char err[sizeof(st->last_error)];
        memcpy(err, st->last_error, sizeof(err));
        err[sizeof(err) - 1] = '\0';
        fn(ctx, row, "node", n->id, 0, 0, 0, NULL);
        fn(ctx, row, "addr", apr_psprintf(p, "%s:%u", n->host, n->port), 0, 0, 0, NULL);
        fn(ctx, row, "role", n->failover ? "failover" : "regular", 0, 0, 0, NULL);
        /* down: its last operation failed (skipped for a second after each
         * failure, then tried again) */
        fn(ctx, row, "state", LD(st->last_error_at) > LD(st->last_ok_at) ? "down" : "up",
           0, 0, 0, "up, or down: its last operation failed");
        fn(ctx, row, "gets", NULL, LD(st->gets), 1, 1, NULL);
        fn(ctx, row, "hits", NULL, LD(st->hits), 1, 1, NULL);
        fn(ctx, row, "misses", NULL, LD(st->misses), 1, 1, NULL);
        fn(ctx, row, "sets", NULL, LD(st->sets), 1, 1, NULL);
        fn(ctx, row, "deletes", NULL, LD(st->deletes), 1, 1, NULL);
        fn(ctx, row, "errors", NULL, LD(st->errors), 1, 1, NULL);
        fn(ctx, row, "timeouts", NULL, LD(st->timeouts), 1, 1, NULL);
        fn(ctx, row, "skipped", NULL, LD(st->skipped), 1, 1,
           "operations not tried: the node was down");
        fn(ctx, row, "latency_avg_us", NULL, ln ? LD(st->lat_us) / ln : 0, 1, 0, NULL);
        fn(ctx, row, "latency_max_us", NULL, LD(st->lat_max_us), 1, 0, NULL);
        fn(ctx, row, "last_error", err[0] ? err : "-", 0, 0, 0, NULL);
    }
}
