/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_status.c -- the cluster-manager page (SetHandler cluster-manager).
 *
 * What the engine publishes in shared memory, the session store's counters and
 * the effective configuration are first gathered into one model: sections of
 * named values and tables of rows.  The same model is then written as
 *
 *   HTML           (default; ?refresh=N reloads it every N seconds): sc_page.c
 *   ?auto          mod_status style "Key: value" lines, one "Member: k=v ..."
 *                  line per row
 *   ?json          one object: a member per section, arrays per table
 *   ?format=prometheus   Prometheus text exposition, session_cluster_*
 *
 * so a figure has one name everywhere: CamelCase in ?auto and HTML, the same
 * words in snake_case in JSON and Prometheus.  Values from the network (a
 * member's route or domain, a verdict) are escaped for each format.
 *
 * Actions are POSTs carrying the page's nonce (balancer-manager's way): set
 * this member draining or ready, expire one session or all, reset the
 * counters, redo the state transfer, ping a member (a message of at most
 * SC_PING_MAX bytes through the engine).  A POST whose Origin (or, without
 * one, Referer) names another site is refused: a foreign page cannot make a
 * browser act here, even one that learnt the nonce.  Every answer forbids
 * framing (X-Frame-Options, CSP frame-ancestors).  A page with no Require of
 * its own is open to anyone who reaches the server: the first request to it
 * after each start logs a warning (open_page_check).
 */
#include "sc_supervisor.h"
#include "sc_client.h"
#include "sc_repl.h"
#include "sc_balancer.h"
#include "sc_status.h"
#include "sc_page.h"
#include "sc_msm.h"

#include "util_script.h"
#include "apr_lib.h"
#include "apr_fnmatch.h"
#include "apr_shm.h"
#include "apr_uri.h"

#include <errno.h>
#include <stddef.h>

APLOG_USE_MODULE(session_cluster);

/* ------------------------------------------------------------------------- */
/* The model                                                                  */
/* ------------------------------------------------------------------------- */

/* The types (field, section, table, model) are in sc_model.h: sc_page.c
 * writes the same model as HTML. */

static section *new_section(model *m, const char *name, const char *title)
{
    section *s = apr_pcalloc(m->p, sizeof(*s));
    s->name = name;
    s->title = title;
    s->fields = apr_array_make(m->p, 16, sizeof(field));
    APR_ARRAY_PUSH(m->sections, section *) = s;
    return s;
}

static table *new_table(model *m, const char *name, const char *title, const char *tag,
                        const char *label)
{
    table *t = apr_pcalloc(m->p, sizeof(*t));
    t->name = name;
    t->title = title;
    t->auto_tag = tag;
    t->label = label;
    t->rows = apr_array_make(m->p, 8, sizeof(apr_array_header_t *));
    APR_ARRAY_PUSH(m->tables, table *) = t;
    return t;
}

static apr_array_header_t *new_row(model *m, table *t)
{
    apr_array_header_t *row = apr_array_make(m->p, 16, sizeof(field));
    APR_ARRAY_PUSH(t->rows, apr_array_header_t *) = row;
    return row;
}

static void put_num(apr_pool_t *p, apr_array_header_t *fs, const char *key, apr_uint64_t v,
                    int counter, const char *help)
{
    field *f = apr_array_push(fs);
    f->key = key;
    f->num = v;
    f->text = apr_psprintf(p, "%" APR_UINT64_T_FMT, v);
    f->kind = V_NUM;
    f->counter = counter;
    f->help = help;
}

static void put_str(apr_array_header_t *fs, const char *key, const char *v, const char *help)
{
    field *f = apr_array_push(fs);
    f->key = key;
    f->text = v ? v : "";
    f->num = 0;
    f->kind = V_STR;
    f->counter = 0;
    f->help = help;
}

/* Counters shown as they are: name, where, counter (or gauge), help. */
typedef struct {
    const char *key;
    apr_size_t off;
    int counter;
    const char *help;
} counter_def;

#define SHM_C(f) offsetof(sc_shm_t, f)
static const counter_def channel_fields[] = {
    { "MsgsIn", SHM_C(c.msgs_in), 1, "cluster messages received" },
    { "MsgsOut", SHM_C(c.msgs_out), 1, "cluster messages sent" },
    { "BytesIn", SHM_C(c.bytes_in), 1, "bytes received" },
    { "BytesOut", SHM_C(c.bytes_out), 1, "bytes sent" },
    { "HeartbeatsIn", SHM_C(c.heartbeats_in), 1, "multicast heartbeats received" },
    { "HeartbeatsOut", SHM_C(c.heartbeats_out), 1, "multicast heartbeats sent" },
    { "BadFrames", SHM_C(c.bad_frames), 1, "frames refused" },
    { "BadHeartbeats", SHM_C(c.bad_heartbeats), 1, "heartbeats refused" },
    { "AuthFailures", SHM_C(c.auth_failures), 1,
      "EncryptInterceptor: frames and heartbeats that were not authentic" },
    { "Replays", SHM_C(c.replays), 1,
      "EncryptInterceptor: authentic frames and heartbeats refused as replays" },
    { "PreviousKeyUsed", SHM_C(c.previous_key), 1,
      "EncryptInterceptor: messages opened with previousEncryptionKey" },
    { "ConnsRefused", SHM_C(c.conns_refused), 1,
      "Receiver: connections refused or closed for room (too many strangers from an "
      "address, a stranger displaced by a newer one, a member's over its limit, an "
      "address that sent bad frames)" },
    { "ConnsTimedOut", SHM_C(c.conns_timed_out), 1,
      "Receiver: connections closed not adopted in time (silent, or a heartbeat that "
      "was not adopted) or stalled in a frame" },
    { "QueueFull", SHM_C(c.queue_full), 1,
      "connections closed because their send queue was full" },
    { "AcksIn", SHM_C(c.acks_in), 1, "acknowledgements received" },
    { "AcksOut", SHM_C(c.acks_out), 1, "acknowledgements sent" },
    { "AckTimeouts", SHM_C(c.ack_timeouts), 1, "acknowledged sends that timed out" },
    { "SendFailures", SHM_C(c.send_failures), 1, "sends that failed" },
    { "Connects", SHM_C(c.connects), 1, "connections made to members" },
    { "ConnectFailures", SHM_C(c.connect_failures), 1, "connections to members that failed" },
    { "QueueDepth", SHM_C(queue_depth), 0,
      "acknowledged sends waiting for their acknowledgements" },
    { "QueueBytes", SHM_C(queue_bytes), 0, "bytes written but not yet taken by the network" },
    { "FdChecks", SHM_C(ic.fd_checks), 1,
      "TcpFailureDetector: TCP checks of a silent or lost member" },
    { "FdSuspected", SHM_C(ic.fd_suspected), 1,
      "TcpFailureDetector: members silent for dropTime" },
    { "FdDead", SHM_C(ic.fd_dead), 1, "members declared dead" },
    { "FdFalseAlarms", SHM_C(ic.fd_false_alarms), 1,
      "TcpFailureDetector: suspected members that answered" },
    { "PingsOut", SHM_C(ic.pings_out), 1,
      "TCP pings (heartbeats) sent to connected members: with every heartbeat, "
      "and every TcpPingInterceptor interval when shorter" },
    { "DomainFiltered", SHM_C(ic.domain_filtered), 1,
      "DomainFilterInterceptor: heartbeats of another domain dropped" },
    { "DispatchAsync", SHM_C(ic.dispatch_async), 1,
      "messages a request did not wait for, queued and sent by the engine (with or "
      "without MessageDispatchInterceptor)" },
    { "ThroughputReports", SHM_C(ic.throughput_reports), 1,
      "ThroughputInterceptor: reports logged" },
    { NULL, 0, 0, NULL }
};

#define STORE_C(f) offsetof(sc_store_hdr, f)
static const counter_def session_fields[] = {
    { "SessionsCreated", STORE_C(created), 1, "sessions created here or replicated in" },
    { "SessionsUpdated", STORE_C(updated), 1, "session updates" },
    { "SessionsUpdatedInPlace", STORE_C(updated_in_place), 1,
      "session updates written over the blocks they changed, not in a copy of their own "
      "(in SessionsUpdated too)" },
    { "SessionsRemoved", STORE_C(removed), 1, "sessions removed" },
    { "SessionsExpired", STORE_C(expired), 1, "sessions expired" },
    { "SessionsRejectedFull", STORE_C(rejected_full), 1, "sessions refused: the store was full" },
    { "SessionsEvicted", STORE_C(evicted), 1,
      "sessions that saw a single request and gave way to a new one: the store was full" },
    { "SessionsExpiredOnProbation", STORE_C(probation_expired), 1,
      "sessions that saw a single request, expired after probationInactiveInterval "
      "(in SessionsExpired too)" },
    { "SessionsRejectedSize", STORE_C(rejected_size), 1,
      "sessions refused: larger than maxSessionSize" },
    { "ReplicatedIn", STORE_C(replicated_in), 1, "session messages received" },
    { "ReplicatedOut", STORE_C(replicated_out), 1, "session messages sent" },
    { "TransferIn", STORE_C(transfer_in), 1, "sessions received by state transfer" },
    { "TransferOut", STORE_C(transfer_out), 1, "sessions sent by state transfer" },
    { "LastTransferMs", STORE_C(last_transfer_ms), 0, "duration of the last state transfer in" },
    { "LastTransferSessions", STORE_C(last_transfer_count), 0,
      "sessions of the last state transfer in" },
    { "SessionsRebound", STORE_C(rebound), 1,
      "sessions re-bound to this member's route (JvmRouteBinderValve)" },
    { "SessionWritesUndone", STORE_C(writes_undone), 1,
      "session writes undone: their writer died in them" },
    { "SessionsDeadRefused", STORE_C(dead_refused), 1,
      "writes refused: the session was invalidated or expired (a request that "
      "loaded it before, a copy from a member that had not heard it)" },
    { "Tombstones", STORE_C(tombs_set), 1, "removed sessions whose id was kept dead" },
    { "TombstonesEvicted", STORE_C(tombs_evicted), 1,
      "tombstones given up before their time (the table was full there)" },
    { "ReplicationTooLarge", STORE_C(repl_too_big), 1,
      "changes not replicated: larger than this member's Receiver maxMessageSize" },
    { "Minority", STORE_C(minority), 0,
      "1 while this member sees fewer than half of the members it knows (a partition's "
      "small side): its writes give way to the majority's, synchronous ones are refused" },
    { "QuorumSeen", STORE_C(quorum_seen), 0,
      "members this one sees (alive or suspect, itself included), for Minority" },
    { "QuorumKnown", STORE_C(quorum_known), 0,
      "members it knows: itself and every member heard within 300 s that did not leave" },
    { "MinorityRefused", STORE_C(minority_refused), 1,
      "synchronous writes refused (503) while this member was in a minority" },
    { "Conflicts", STORE_C(conflicts), 1,
      "copies of a session here replaced by a concurrent version under the conflict rule "
      "(a partition, or changes that crossed)" },
    { "AntiEntropyRounds", STORE_C(ae_rounds), 1,
      "digests of this member's sessions sent to another member (anti-entropy)" },
    { "AntiEntropyAsked", STORE_C(ae_asked), 1,
      "sessions asked for after another member's digest: missing here, or older under "
      "the conflict rule" },
    { "AntiEntropyRemoved", STORE_C(ae_removed), 1,
      "sessions removed here by another member's tombstone in its digest" },
    { NULL, 0, 0, NULL }
};

/* BackupManager's figures (sc_backup.c), under it only. */
static const counter_def backup_fields[] = {
    { "SessionsPrimary", STORE_C(bk_primary), 0, "sessions this member is primary of" },
    { "SessionsBackup", STORE_C(bk_backup), 0, "sessions this member backs up" },
    { "SessionsProxy", STORE_C(bk_proxy), 0,
      "sessions known here by location only (no data)" },
    { "BackupUpdates", STORE_C(bk_updates), 1,
      "updates of this member's sessions handed to replication" },
    { "BackupCopiesSent", STORE_C(bk_copies), 1,
      "session messages (FULL, DELTA) sent to backups: one per update" },
    { "BackupFetches", STORE_C(bk_fetches), 1,
      "sessions known here by location only fetched from another member" },
    { "BackupFetchesNotHere", STORE_C(bk_fetch_not_here), 1,
      "fetches answered \"not here\" by every member asked" },
    { "BackupFetchesFailed", STORE_C(bk_fetch_failed), 1,
      "fetches without an answer within rpcTimeout" },
    { "BackupFetchP50Us", STORE_C(bk_fetch_p50_us), 0,
      "fetch latency, median, microseconds (the last 1024 fetches)" },
    { "BackupFetchP99Us", STORE_C(bk_fetch_p99_us), 0,
      "fetch latency, 99th percentile, microseconds (the last 1024 fetches)" },
    { "BackupPromotions", STORE_C(bk_promotions), 1,
      "sessions this member took over (fetched, or its backup copy promoted)" },
    { "BackupReplacements", STORE_C(bk_replacements), 1,
      "sessions given a new backup after their backup left" },
    { "BackupReplacing", STORE_C(bk_replacing), 0,
      "sessions waiting for a new backup now (no member to take one)" },
    { NULL, 0, 0, NULL }
};

/* Every 64-bit counter of a table, read from 'base'. */
static void put_fields(apr_pool_t *p, apr_array_header_t *fs, const void *base,
                       const counter_def *defs)
{
    for (; defs->key; defs++) {
        apr_uint64_t v;
        memcpy(&v, (const char *)base + defs->off, sizeof(v));
        put_num(p, fs, defs->key, v, defs->counter, defs->help);
    }
}

/* milliseconds since t, 0 when t is unset */
static apr_uint64_t ms_since(apr_time_t t)
{
    apr_time_t d = apr_time_now() - t;
    return t && d > 0 ? (apr_uint64_t)apr_time_as_msec(d) : 0;
}

/* "EngineUptimeMs" -> "engine_uptime_ms"; row keys are snake_case already. */
static const char *snake(apr_pool_t *p, const char *k)
{
    apr_size_t n = strlen(k), i, o = 0;
    char *out = apr_palloc(p, 2 * n + 1);
    for (i = 0; i < n; i++) {
        char c = k[i];
        if (apr_isupper(c)) {
            if (i > 0 && (apr_islower(k[i - 1]) || apr_isdigit(k[i - 1])
                          || (i + 1 < n && apr_islower(k[i + 1])
                              && apr_isupper(k[i - 1])))) {
                out[o++] = '_';
            }
            out[o++] = (char)apr_tolower(c);
        }
        else {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------------- */
/* Escaping, one per format                                                   */
/* ------------------------------------------------------------------------- */

/* ?auto: printable ASCII stays, except that a value with a space, a quote or a
 * backslash is quoted, and everything else is \xHH: no value can start a line
 * of its own. */
static const char *esc_auto(apr_pool_t *p, const char *v, int quote_spaces)
{
    const unsigned char *s = (const unsigned char *)v;
    int plain = 1;
    apr_size_t i, o = 0;
    char *out;
    for (i = 0; s[i]; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\') {
            plain = 0;
            break;
        }
    }
    if (plain) {
        return v;
    }
    out = apr_palloc(p, 4 * i + 4 * strlen(v + i) + 3);
    if (quote_spaces) {
        out[o++] = '"';
    }
    for (i = 0; s[i]; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            out[o++] = '\\';
            out[o++] = (char)s[i];
        }
        else if (s[i] == ' ' || (s[i] > 0x20 && s[i] < 0x7f)) {
            out[o++] = (char)s[i];
        }
        else {
            apr_snprintf(out + o, 5, "\\x%02x", s[i]);
            o += 4;
        }
    }
    if (quote_spaces) {
        out[o++] = '"';
    }
    out[o] = '\0';
    return out;
}

/* The length of the valid UTF-8 sequence at s (1-4), or 0. */
static int utf8_len(const unsigned char *s)
{
    int n, i;
    if (s[0] < 0x80) {
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
    }
    else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
    }
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
    }
    else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0)
        || (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90)) {
        return 0;                     /* overlong, surrogate, beyond U+10FFFF */
    }
    return n;
}

/* A configuration line in ?auto: as it is, but a byte that is not printable
 * ASCII becomes \xHH, so no value can start a line of its own. */
static const char *esc_line(apr_pool_t *p, const char *v)
{
    const unsigned char *s = (const unsigned char *)v;
    apr_size_t n = strlen(v), i, o = 0;
    char *out;
    for (i = 0; i < n && s[i] >= 0x20 && s[i] < 0x7f; i++) {
    }
    if (i == n) {
        return v;
    }
    out = apr_palloc(p, 4 * n + 1);
    for (i = 0; i < n; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f) {
            out[o++] = (char)s[i];
        }
        else {
            apr_snprintf(out + o, 5, "\\x%02x", s[i]);
            o += 4;
        }
    }
    out[o] = '\0';
    return out;
}

typedef enum { ESC_JSON, ESC_PROM } esc_mode;

/* JSON string contents (RFC 8259 escapes; '<', '>' and '&' too, so the JSON
 * is also safe inside HTML; a byte that is not UTF-8 becomes U+FFFD) or a
 * Prometheus label value (backslash, quote and newline escaped; other
 * controls and bytes that are not UTF-8 become '?').  Valid UTF-8 passes. */
static const char *esc_text(apr_pool_t *p, const char *v, esc_mode mode)
{
    const unsigned char *s = (const unsigned char *)v;
    apr_size_t n = strlen(v), i = 0, o = 0;
    char *out = apr_palloc(p, 6 * n + 1);
    int json = mode == ESC_JSON;
    while (i < n) {
        unsigned char c = s[i];
        int l = 1;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        }
        else if (c == '\n' && !json) {
            out[o++] = '\\';
            out[o++] = 'n';
        }
        else if (c >= 0x20 && c < 0x7f && !(json && (c == '<' || c == '>' || c == '&'))) {
            out[o++] = (char)c;
        }
        else if (c >= 0x80 && (l = utf8_len(s + i)) > 0) {
            memcpy(out + o, s + i, (size_t)l);
            o += (apr_size_t)l;
        }
        else if (!json) {
            out[o++] = '?';
            l = 1;
        }
        else {
            if (c < 0x80) {
                apr_snprintf(out + o, 7, "\\u%04x", c);
            }
            else {
                memcpy(out + o, "\\ufffd", 6);
            }
            o += 6;
            l = 1;
        }
        i += (apr_size_t)l;
    }
    out[o] = '\0';
    return out;
}

#define esc_json(p, v) esc_text((p), (v), ESC_JSON)
#define esc_prom(p, v) esc_text((p), (v), ESC_PROM)

/* ------------------------------------------------------------------------- */
/* Gathering                                                                  */
/* ------------------------------------------------------------------------- */

static void read_view(server_rec *s, sc_view *v)
{
    sc_retained *r = sc_retained_get(s);
    int i;
    v->have = 0;
    v->n = 0;
    if (!r->shm || !sc_server_conf_get(s)->cluster) {
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

typedef struct {
    model *m;
    table *bm;
    apr_array_header_t *unmatched;    /* ?auto lines */
} bal_ctx;

static void gather_balancer(void *ctx, const char *balancer, struct proxy_worker *w,
                            const sc_shm_member *mem)
{
    bal_ctx *x = ctx;
    apr_pool_t *p = x->m->p;
    if (balancer && w) {
        apr_array_header_t *row = new_row(x->m, x->bm);
        const char *route = sc_balancer_worker_route(w);
        put_str(row, "balancer", balancer, NULL);
        put_str(row, "route", route, NULL);
        put_str(row, "url", sc_balancer_worker_name(w), NULL);
        put_str(row, "status", sc_balancer_worker_status(p, w), NULL);
        put_str(row, "member", sc_balancer_member_state(mem), NULL);
        put_str(row, "redirect", sc_balancer_worker_redirect(w)[0]
                                 ? sc_balancer_worker_redirect(w) : "-",
                "where its sticky sessions go while it is unusable");
        if (!mem) {
            APR_ARRAY_PUSH(x->unmatched, const char *) =
                apr_psprintf(p, "UnmatchedBalancerMember: %s %s", esc_auto(p, balancer, 1),
                             route[0] ? esc_auto(p, route, 1) : "-");
        }
    }
    else if (balancer) {
        APR_ARRAY_PUSH(x->unmatched, const char *) =
            apr_psprintf(p, "MissingBalancer: %s", esc_auto(p, balancer, 1));
    }
    else if (mem) {
        APR_ARRAY_PUSH(x->unmatched, const char *) =
            apr_psprintf(p, "UnmatchedMember: %s", esc_auto(p, mem->route, 1));
    }
}

/* The session server's fields (sc_msm.c): general ones in their section,
 * row > 0 in the table of its nodes. */
typedef struct {
    model *m;
    section *s;
    table *t;
    apr_array_header_t *row;
    int row_no;
} msm_ctx;

static void msm_field(void *ctx, int row, const char *key, const char *text,
                      apr_uint64_t num, int is_num, int counter, const char *help)
{
    msm_ctx *x = ctx;
    apr_array_header_t *fs;
    if (row == 0) {
        if (!x->s) {
            x->s = new_section(x->m, "session_server", "Session server (msm)");
        }
        fs = x->s->fields;
        key = apr_pstrcat(x->m->p, "SessionServer", key, NULL);
    }
    else {
        if (!x->t) {
            x->t = new_table(x->m, "session_server_nodes", "Session server nodes",
                             "SessionServerNode", "node");
        }
        if (row != x->row_no) {
            x->row = new_row(x->m, x->t);
            x->row_no = row;
        }
        fs = x->row;
    }
    if (is_num) {
        put_num(x->m->p, fs, key, num, counter, help);
    }
    else {
        put_str(fs, key, text, help);
    }
}

static void gather(model *m, const sc_view *v)
{
    request_rec *r = m->r;
    apr_pool_t *p = m->p;
    sc_server_conf *sc = sc_server_conf_get(r->server);
    sc_retained *ret = sc_retained_get(r->server);
    const sc_shm_t *h = &v->hdr;
    section *s;
    table *t;
    int i, alive = 0;

    m->route = sc->route ? sc->route : "";
    APR_ARRAY_PUSH(m->lines, const char *) =
        apr_psprintf(p, "Route: %s", esc_auto(p, m->route, 1));
    APR_ARRAY_PUSH(m->lines, const char *) =
        apr_psprintf(p, "Cluster: %s", sc->cluster ? "configured" : "none");
    if (!v->have) {
        return;
    }

    /* this member and its engine */
    s = new_section(m, "member", "This member");
    put_str(s->fields, "Role", ret->store ? "member" : "balancer",
            "member (holds sessions) or balancer (a front with SessionClusterBalancer)");
    put_num(p, s->fields, "EnginePid", (apr_uint64_t)h->engine_pid, 0,
            "the cluster engine's process id (0: not running)");
    put_str(s->fields, "EngineState",
            h->engine_pid ? sc_member_state_name((int)h->engine_state) : "not running",
            "starting, ready, draining, leaving or restarting");
    put_num(p, s->fields, "EngineStarts", h->engine_starts, 1,
            "engines this httpd started (1 + restarts after a crash or a changed block)");
    put_num(p, s->fields, "EngineUptimeMs", h->engine_pid ? ms_since(h->engine_started) : 0,
            0, "milliseconds since the engine started");
    put_str(s->fields, "EnginePlacement",
            apr_psprintf(p, "daemon process of httpd's parent (pid %u)", h->parent_pid),
            NULL);
    put_num(p, s->fields, "EnginePublishedMsAgo", ms_since(h->published_at), 0,
            "milliseconds since the engine last published (about 100 when healthy)");
    put_str(s->fields, "EngineHealth",
            !h->engine_pid ? "not running"
            : ms_since(h->published_at) < 2000 ? "ok" : "not publishing",
            "ok when the engine publishes within 2 s");
    put_num(p, s->fields, "Incarnation", h->incarnation, 0,
            "this engine's incarnation (new at every start)");
    put_str(s->fields, "Receiver", apr_psprintf(p, "%s:%u", h->self_addr, h->self_port),
            NULL);
    put_str(s->fields, "Domain", h->self_domain, NULL);
    put_str(s->fields, "Membership", h->membership, NULL);
    put_str(s->fields, "Multicast", h->mcast[0] ? h->mcast : "off", NULL);
    put_str(s->fields, "NotImplemented", h->not_implemented, NULL);
    put_str(s->fields, "EngineSocket", h->ipc_path, NULL);
    for (i = 0; i < v->n; i++) {
        if (v->m[i].view == SC_VIEW_ALIVE) {
            alive++;
        }
    }
    put_num(p, s->fields, "MembersKnown", (apr_uint64_t)v->n, 0, "members this member knows of");
    put_num(p, s->fields, "MembersAlive", (apr_uint64_t)alive, 0, "members heard within dropTime");
    put_num(p, s->fields, "CountersSinceMs", ms_since(h->counters_since), 0,
            "milliseconds since the counters started or were reset");

    /* the channel */
    s = new_section(m, "channel", "Channel");
    {
        apr_uint64_t secs = ms_since(h->counters_since) / 1000;
        put_num(p, s->fields, "MsgsPerSec",
                secs ? (h->c.msgs_in + h->c.msgs_out) / secs : 0, 0,
                "messages in and out per second since the counters started");
    }
    put_str(s->fields, "Encryption", ret->cfg && ret->cfg->set->encrypted
            ? "AES-GCM (EncryptInterceptor)" : "none: traffic is not authenticated", NULL);
    put_fields(p, s->fields, h, channel_fields);
    if (ret->ring) {
        /* the children's hand-offs through shared memory (sc_ring.h) */
        sc_ring_counts rc;
        sc_ring_counts_get(ret->ring, &rc);
        put_num(p, s->fields, "HandoffsRing", rc.puts, 1,
                "changes for every member the children handed to the engine through "
                "shared memory (no system call to hand them over)");
        put_num(p, s->fields, "HandoffsRingFull", rc.full + rc.large, 1,
                "changes handed over on the engine's socket instead: the ring was full, "
                "or the change larger than it takes (512 KB)");
        put_num(p, s->fields, "HandoffsRingWakes", rc.wakes, 1,
                "hand-offs that woke the engine from its wait (the others found it busy)");
        put_num(p, s->fields, "HandoffsRingBad", rc.bad, 1,
                "times the engine found a record in the ring not well formed and dropped "
                "the rest (SC2104)");
    }
    /* the sessions (one manager per httpd) */
    if (ret->store) {
        const sc_store_hdr *sh = ret->store->hdr;
        s = new_section(m, "sessions", "Sessions (DeltaManager)");
        /* the class that runs */
        put_str(s->fields, "Manager", !ret->cfg || !ret->cfg->manager ? ""
                : ret->cfg->set->backup_manager ? "BackupManager" : "DeltaManager", NULL);
        put_num(p, s->fields, "SessionsActive", sh->count, 0, "sessions held");
        put_num(p, s->fields, "SessionsCapacity",
                sh->count_limit && sh->count_limit < sh->capacity ? sh->count_limit
                                                                 : sh->capacity, 0,
                "most sessions the store can hold: maxActiveSessions, or (-1) as many "
                "of the smallest as the budget allows");
        put_num(p, s->fields, "SessionsBudgetBytes", sh->budget, 0,
                "the store's memory budget (maxStoreSize): slots of the sessions held "
                "and their data blocks");
        put_num(p, s->fields, "SessionsBudgetUsed", sc_store_bytes_counted(ret->store), 0,
                "bytes of the budget in use");
        put_num(p, s->fields, "SessionMaxSize", sh->slot_data, 0,
                "bytes a session may take (maxSessionSize)");
        put_num(p, s->fields, "SessionsBytesInUse", sc_store_bytes_in_use(ret->store), 0,
                "bytes of session data held");
        put_num(p, s->fields, "SessionsStoreBytes", sc_store_bytes_resident(ret->store), 0,
                "bytes of the store's shared memory in use (slots and data blocks taken)");
        put_fields(p, s->fields, sh, session_fields);
        if (ret->cfg && ret->cfg->set->backup_manager) {
            put_fields(p, s->fields, sh, backup_fields);
        }
    }

    if (sc_msm_on()) {
        msm_ctx x;
        memset(&x, 0, sizeof(x));
        x.m = m;
        sc_msm_fields(p, msm_field, &x);
    }

    /* the members */
    t = new_table(m, "members", "Members", "Member", "route");
    for (i = 0; i < v->n; i++) {
        const sc_shm_member *mm = &v->m[i];
        apr_array_header_t *row = new_row(m, t);
        put_str(row, "route", mm->route[0] ? mm->route : "-", NULL);
        put_str(row, "addr", apr_psprintf(p, "%s:%u", mm->addr, mm->port), NULL);
        put_str(row, "state", sc_view_name((int)mm->view),
                "configured, alive, suspect, dead, left, refused or restarting");
        put_str(row, "role", mm->observer ? "balancer" : "member", NULL);
        put_str(row, "member_state",
                mm->hb_state ? sc_member_state_name((int)mm->hb_state) : "-",
                "what it announces: starting, ready, draining, leaving, restarting");
        put_str(row, "domain", mm->domain[0] ? mm->domain : "-", NULL);
        put_num(p, row, "incarnation", mm->incarnation, 0, NULL);
        put_num(p, row, "restarts", mm->restarts_seen, 1, "new incarnations seen");
        put_num(p, row, "alive_ms", mm->alive_ms, 0, "its uptime, from its heartbeat");
        put_str(row, "url", mm->url[0] ? mm->url : "-", "the URL it gives the fronts");
        put_num(p, row, "busy", mm->busy, 0, "its MPM's busy workers, from its heartbeat");
        put_num(p, row, "capacity", mm->capacity, 0, "its MPM's workers (0: not told)");
        put_num(p, row, "sessions_held", mm->sessions, 0, "sessions it holds, from its "
                "heartbeat");
        put_str(row, "heard_ms_ago",
                mm->last_heard ? apr_psprintf(p, "%" APR_UINT64_T_FMT,
                                              ms_since(mm->last_heard)) : "-", NULL);
        put_num(p, row, "static", mm->is_static, 0, NULL);
        put_num(p, row, "msgs_in", mm->c.msgs_in, 1, "messages from it");
        put_num(p, row, "msgs_out", mm->c.msgs_out, 1, "messages to it");
        put_num(p, row, "bytes_in", mm->c.bytes_in, 1, "bytes from it");
        put_num(p, row, "bytes_out", mm->c.bytes_out, 1, "bytes to it");
        put_num(p, row, "bad_frames", mm->c.bad_frames, 1, "frames from it refused");
        put_num(p, row, "send_failures", mm->c.send_failures, 1, "sends to it that failed");
        put_num(p, row, "connect_failures", mm->c.connect_failures, 1,
                "connections to it that failed");
        put_num(p, row, "ack_timeouts", mm->c.ack_timeouts, 1,
                "acknowledgements it did not send in time");
        put_str(row, "verdict", mm->verdict, "the failure detector's last word");
    }

    /* a front's balancers */
    if (sc->balancers->nelts) {
        bal_ctx x;
        s = new_section(m, "front", "Front (SessionClusterBalancer)");
        put_num(p, s->fields, "FrontReplays", h->f.replays, 1,
                "times a request that failed on a member before any byte of its "
                "response (reset, closed, no answer) was sent again to another member "
                "(a request sent on twice counts 2)");
        put_num(p, s->fields, "FrontReplaysFailed", h->f.replays_failed, 1,
                "requests sent again that failed there too and were not sent on");
        put_num(p, s->fields, "FrontNotReplayed", h->f.not_replayed, 1,
                "requests that failed so but could not be sent again (a method other than "
                "GET, HEAD or OPTIONS, a body, no other ready member)");
        put_num(p, s->fields, "FrontWorkersAdded", h->f.workers_added, 1,
                "BalancerMembers added for members that announced their URL (growth)");
        put_num(p, s->fields, "FrontCrossDomain", h->f.cross_domain, 1,
                "sticky requests answered by a member of another domain than their "
                "session's member (its domain had no usable member, or a replay)");
        put_num(p, s->fields, "FrontGrowthRoom", sc_balancer_free_slots(r->server), 0,
                "worker slots left for members to come (the balancers' growth=)");
        x.m = m;
        x.bm = new_table(m, "balancer_members", "Balancers", "BalancerMember", "route");
        x.unmatched = apr_array_make(p, 4, sizeof(const char *));
        sc_balancer_each(r->server, p, gather_balancer, &x);
        sc_balancer_growth_lines(r->server, p, x.unmatched);
        for (i = 0; i < x.unmatched->nelts; i++) {
            APR_ARRAY_PUSH(m->lines, const char *) = APR_ARRAY_IDX(x.unmatched, i,
                                                                   const char *);
        }
    }
}

/* ------------------------------------------------------------------------- */
/* Writing                                                                    */
/* ------------------------------------------------------------------------- */

static void write_auto(model *m, const char *nonce)
{
    request_rec *r = m->r;
    int i, j, k;
    for (i = 0; i < m->lines->nelts; i++) {
        const char *l = APR_ARRAY_IDX(m->lines, i, const char *);
        if (strncmp(l, "Unmatched", 9) != 0 && strncmp(l, "Missing", 7) != 0) {
            ap_rprintf(r, "%s\n", l);
        }
    }
    for (i = 0; i < m->sections->nelts; i++) {
        section *s = APR_ARRAY_IDX(m->sections, i, section *);
        for (j = 0; j < s->fields->nelts; j++) {
            field *f = &APR_ARRAY_IDX(s->fields, j, field);
            ap_rprintf(r, "%s: %s\n", f->key, esc_auto(r->pool, f->text, 0));
        }
    }
    if (nonce) {
        ap_rprintf(r, "Nonce: %s\n", nonce);
    }
    for (i = 0; i < m->tables->nelts; i++) {
        table *t = APR_ARRAY_IDX(m->tables, i, table *);
        for (j = 0; j < t->rows->nelts; j++) {
            apr_array_header_t *row = APR_ARRAY_IDX(t->rows, j, apr_array_header_t *);
            ap_rprintf(r, "%s:", t->auto_tag);
            for (k = 0; k < row->nelts; k++) {
                field *f = &APR_ARRAY_IDX(row, k, field);
                /* free text (the verdict) is quoted, and comes last */
                if (!strcmp(f->key, "verdict")) {
                    ap_rprintf(r, " verdict=\"%s\"", esc_auto(r->pool, f->text, 0));
                }
                else {
                    ap_rprintf(r, " %s=%s", f->key, esc_auto(r->pool, f->text, 1));
                }
            }
            ap_rputs("\n", r);
        }
    }
    for (i = 0; i < m->lines->nelts; i++) {
        const char *l = APR_ARRAY_IDX(m->lines, i, const char *);
        if (!strncmp(l, "Unmatched", 9) || !strncmp(l, "Missing", 7)) {
            ap_rprintf(r, "%s\n", l);
        }
    }
    for (i = 0; i < m->config->nelts; i++) {
        ap_rprintf(r, "%s\n", esc_line(r->pool, APR_ARRAY_IDX(m->config, i, const char *)));
    }
}

static void json_fields(request_rec *r, apr_array_header_t *fs)
{
    int j;
    ap_rputs("{", r);
    for (j = 0; j < fs->nelts; j++) {
        field *f = &APR_ARRAY_IDX(fs, j, field);
        ap_rprintf(r, "%s\"%s\": ", j ? ", " : "", snake(r->pool, f->key));
        if (f->kind == V_NUM) {
            ap_rprintf(r, "%" APR_UINT64_T_FMT, f->num);
        }
        else {
            ap_rprintf(r, "\"%s\"", esc_json(r->pool, f->text));
        }
    }
    ap_rputs("}", r);
}

static void write_json(model *m, const char *nonce)
{
    request_rec *r = m->r;
    int i, j;
    ap_rprintf(r, "{\"route\": \"%s\", \"cluster\": %s, \"version\": \"%s\"",
               esc_json(r->pool, m->route),
               sc_server_conf_get(r->server)->cluster ? "true" : "false",
               MOD_SESSION_CLUSTER_VERSION);
    if (nonce) {
        ap_rprintf(r, ", \"nonce\": \"%s\"", nonce);
    }
    for (i = 0; i < m->sections->nelts; i++) {
        section *s = APR_ARRAY_IDX(m->sections, i, section *);
        ap_rprintf(r, ",\n \"%s\": ", s->name);
        json_fields(r, s->fields);
    }
    for (i = 0; i < m->tables->nelts; i++) {
        table *t = APR_ARRAY_IDX(m->tables, i, table *);
        ap_rprintf(r, ",\n \"%s\": [", t->name);
        for (j = 0; j < t->rows->nelts; j++) {
            ap_rputs(j ? ",\n  " : "\n  ", r);
            json_fields(r, APR_ARRAY_IDX(t->rows, j, apr_array_header_t *));
        }
        ap_rputs("]", r);
    }
    ap_rputs(",\n \"unmatched\": [", r);
    for (i = 0, j = 0; i < m->lines->nelts; i++) {
        const char *l = APR_ARRAY_IDX(m->lines, i, const char *);
        if (!strncmp(l, "Unmatched", 9) || !strncmp(l, "Missing", 7)) {
            ap_rprintf(r, "%s\"%s\"", j++ ? ", " : "", esc_json(r->pool, l));
        }
    }
    ap_rputs("],\n \"configuration\": [", r);
    for (i = 0; i < m->config->nelts; i++) {
        ap_rprintf(r, "%s\"%s\"", i ? ",\n  " : "\n  ",
                   esc_json(r->pool, APR_ARRAY_IDX(m->config, i, const char *)));
    }
    ap_rputs("]}\n", r);
}

static void prom_family(request_rec *r, const char *name, const char *help, int counter)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help ? help : name, name,
               counter ? "counter" : "gauge");
}

static void write_prom(model *m)
{
    request_rec *r = m->r;
    apr_pool_t *p = r->pool;
    const char *self = apr_psprintf(p, "route=\"%s\"", esc_prom(p, m->route));
    int i, j, k;

    /* the text fields of the sections, as one info metric */
    prom_family(r, "session_cluster_info", "this member: text fields as labels", 0);
    ap_rprintf(r, "session_cluster_info{%s,version=\"%s\"", self, MOD_SESSION_CLUSTER_VERSION);
    for (i = 0; i < m->sections->nelts; i++) {
        section *s = APR_ARRAY_IDX(m->sections, i, section *);
        for (j = 0; j < s->fields->nelts; j++) {
            field *f = &APR_ARRAY_IDX(s->fields, j, field);
            if (f->kind == V_STR) {
                ap_rprintf(r, ",%s=\"%s\"", snake(p, f->key), esc_prom(p, f->text));
            }
        }
    }
    ap_rputs("} 1\n", r);
    for (i = 0; i < m->sections->nelts; i++) {
        section *s = APR_ARRAY_IDX(m->sections, i, section *);
        for (j = 0; j < s->fields->nelts; j++) {
            field *f = &APR_ARRAY_IDX(s->fields, j, field);
            const char *name;
            if (f->kind != V_NUM) {
                continue;
            }
            name = apr_pstrcat(p, "session_cluster_", snake(p, f->key),
                               f->counter ? "_total" : "", NULL);
            prom_family(r, name, f->help, f->counter);
            ap_rprintf(r, "%s{%s} %" APR_UINT64_T_FMT "\n", name, self, f->num);
        }
    }
    /* tables: one family per numeric column, text columns as labels */
    for (i = 0; i < m->tables->nelts; i++) {
        table *t = APR_ARRAY_IDX(m->tables, i, table *);
        apr_array_header_t *first;
        const char *single = !strcmp(t->name, "members") ? "member"
                             : !strcmp(t->name, "session_server_nodes") ? "session_server_node"
                             : "balancer_member";
        apr_array_header_t *labels = apr_array_make(p, t->rows->nelts, sizeof(const char *));
        if (!t->rows->nelts) {
            continue;
        }
        for (j = 0; j < t->rows->nelts; j++) {
            apr_array_header_t *row = APR_ARRAY_IDX(t->rows, j, apr_array_header_t *);
            const char *l = self;
            for (k = 0; k < row->nelts; k++) {
                field *f = &APR_ARRAY_IDX(row, k, field);
                if (f->kind == V_STR && strcmp(f->key, "verdict") != 0
                    && strcmp(f->key, "heard_ms_ago") != 0) {
                    l = apr_pstrcat(p, l, ",", !strcmp(f->key, "route") ? single : f->key,
                                    "=\"", esc_prom(p, f->text), "\"", NULL);
                }
            }
            APR_ARRAY_PUSH(labels, const char *) = l;
        }
        first = APR_ARRAY_IDX(t->rows, 0, apr_array_header_t *);
        prom_family(r, apr_pstrcat(p, "session_cluster_", single, "_info", NULL),
                    apr_pstrcat(p, t->title, ": text fields as labels", NULL), 0);
        for (j = 0; j < t->rows->nelts; j++) {
            ap_rprintf(r, "session_cluster_%s_info{%s} 1\n", single,
                       APR_ARRAY_IDX(labels, j, const char *));
        }
        for (k = 0; k < first->nelts; k++) {
            field *f0 = &APR_ARRAY_IDX(first, k, field);
            const char *name;
            if (f0->kind != V_NUM) {
                continue;
            }
            name = apr_pstrcat(p, "session_cluster_", single, "_", f0->key,
                               f0->counter ? "_total" : "", NULL);
            prom_family(r, name, f0->help, f0->counter);
            for (j = 0; j < t->rows->nelts; j++) {
                apr_array_header_t *row = APR_ARRAY_IDX(t->rows, j, apr_array_header_t *);
                const char *id = "";
                int q;
                for (q = 0; q < row->nelts; q++) {
                    if (!strcmp(APR_ARRAY_IDX(row, q, field).key, t->label)) {
                        id = APR_ARRAY_IDX(row, q, field).text;
                    }
                }
                ap_rprintf(r, "%s{%s,%s=\"%s\"} %" APR_UINT64_T_FMT "\n", name, self, single,
                           esc_prom(p, id), APR_ARRAY_IDX(row, k, field).num);
            }
        }
    }
}

/* ------------------------------------------------------------------------- */
/* Guards: framing, the origin of actions, a page open to all                 */
/* ------------------------------------------------------------------------- */

/* On every answer of the page, errors and redirects too: no other site may
 * show it in a frame (a click on a framed button would be the operator's). */
static void guard_headers(request_rec *r)
{
    apr_table_setn(r->err_headers_out, "X-Frame-Options", "DENY");
    apr_table_setn(r->err_headers_out, "Content-Security-Policy", "frame-ancestors 'none'");
}

/* Whether host[:port] text (a Host header, an X-Forwarded-Host entry) names
 * host and port; a missing port is the default one of the origin's scheme. */
static int authority_is(apr_pool_t *p, const char *authority, const char *host,
                        apr_port_t port, apr_port_t dflt)
{
    char *h = NULL, *scope = NULL;
    apr_port_t ap = 0;
    while (*authority == ' ' || *authority == '\t') {
        authority++;
    }
    if (!*authority || apr_parse_addr_port(&h, &scope, &ap, authority, p) != APR_SUCCESS
        || !h || scope) {
        return 0;
    }
    return !strcasecmp(h, host) && (ap ? ap : dflt) == port;
}

/* NULL when a POST may act as far as its origin goes, else the foreign
 * origin (or "null", or a header that is no URL).  A browser sends Origin
 * with every POST (else a Referer, unless a policy removes it) and cannot
 * forge either, nor add headers to a cross-site form, so a form that another
 * site makes a browser send here names that site.  The page's origin is what
 * the browser asked for: the Host header, or behind a proxy the first
 * X-Forwarded-Host (mod_proxy's, the name the browser used; a browser cannot
 * send that header cross-site, a proxy that does not set it passes the Host
 * with ProxyPreserveHost On).  The scheme is not compared: a proxy that ends
 * TLS turns https into http.  Without either header (curl, scripts) the nonce
 * alone decides. */
static const char *foreign_origin(request_rec *r)
{
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *src = origin ? origin : apr_table_get(r->headers_in, "Referer");
    const char *host = apr_table_get(r->headers_in, "Host");
    const char *fwd = apr_table_get(r->headers_in, "X-Forwarded-Host");
    apr_uri_t u;
    apr_port_t port, dflt;

    if (!src) {
        return NULL;
    }
    if (apr_uri_parse(r->pool, src, &u) != APR_SUCCESS || !u.scheme || !u.hostname
        || !*u.hostname || (strcasecmp(u.scheme, "http") && strcasecmp(u.scheme, "https"))) {
        return src;
    }
    dflt = strcasecmp(u.scheme, "https") ? 80 : 443;
    port = u.port_str && *u.port_str ? u.port : dflt;
    if (host ? authority_is(r->pool, host, u.hostname, port, dflt)
             : (r->hostname && !strcasecmp(r->hostname, u.hostname) && port == dflt)) {
        return NULL;
    }
    if (fwd) {
        char *first = apr_pstrdup(r->pool, fwd), *comma = strchr(first, ',');
        if (comma) {
            *comma = '\0';
        }
        if (authority_is(r->pool, first, u.hostname, port, dflt)) {
            return NULL;
        }
    }
    return src;
}

/* Refusals a client can provoke at will are logged at most once per 10 s by
 * each child, with the count of those left out (sc_log_gate). */

static const char *gate_note(apr_pool_t *p, apr_uint32_t n)
{
    return n ? apr_psprintf(p, "; %u more refused in this process since the last line, "
                            "not logged", n) : "";
}

/* A refused origin (a page that makes browsers post here could post often). */
static void log_foreign(request_rec *r, const char *src)
{
    static sc_log_gate gate;
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *host = apr_table_get(r->headers_in, "Host");
    apr_uint32_t n;

    if (!sc_log_gate_open(&gate, 0, apr_time_now(), &n)) {
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1407)
                  "cluster-manager: action refused: its %s %s is not this page's origin "
                  "(Host %s; client %s): another site's page made a browser post it%s",
                  origin ? "Origin" : "Referer", ap_escape_logitem(r->pool, src),
                  host ? ap_escape_logitem(r->pool, host) : "(none)", r->useragent_ip,
                  gate_note(r->pool, n));
}

/* A page with no Require of its own.  httpd grants what no Require denies
 * (and a DocumentRoot's <Directory> often says Require all granted), so a
 * <Location> with SetHandler cluster-manager alone is open to anyone who
 * reaches the server: its figures, and with the nonce it shows its actions.
 *
 * httpd keeps no public record of which sections set a handler (SetHandler
 * is an expression), so the check runs on the page's own requests: the
 * <Location> and <LocationMatch> sections that cover the request's URL are
 * looked up in the server's configuration, as httpd's location walk matches
 * them, and the page counts as guarded when one of them has a Require (or
 * <RequireAny>, ...) that applies to GET and to POST (mod_authz_core's own
 * answer for that section), or an Allow/Deny of mod_access_compat.  A Require
 * that comes only from a <Directory> or the server level does not count: it
 * is usually the document root's, meant for files.  The warning is logged
 * once per location and start (a shared page of flags made in post_config,
 * inherited by every child), at the first request to the page. */
#define SC_OPEN_SLOTS 32
static apr_uint64_t *open_warned;     /* SC_OPEN_SLOTS keys, shared by the children */
static apr_uint64_t open_warned_own[SC_OPEN_SLOTS];    /* without the shared page */

static int status_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                              server_rec *s)
{
    apr_shm_t *shm;
    (void)plog;
    (void)ptemp;
    (void)s;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    open_warned = NULL;
    memset(open_warned_own, 0, sizeof(open_warned_own));
    if (apr_shm_create(&shm, sizeof(apr_uint64_t) * SC_OPEN_SLOTS, NULL, pconf)
        == APR_SUCCESS) {
        open_warned = apr_shm_baseaddr_get(shm);
        memset(open_warned, 0, sizeof(apr_uint64_t) * SC_OPEN_SLOTS);
    }
    return OK;
}

void sc_status_register_hooks(void)
{
    ap_hook_post_config(status_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    sc_page_register_hooks();
}

/* 1 the first time key is claimed in this generation, else 0 (also when
 * every slot is taken: silence rather than a line per request). */
static int claim_warning(apr_uint64_t key)
{
    apr_uint64_t *slots = open_warned ? open_warned : open_warned_own;
    int i;
    for (i = 0; i < SC_OPEN_SLOTS; i++) {
        apr_uint64_t v = __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE);
        if (v == key) {
            return 0;
        }
        if (!v) {
            apr_uint64_t expected = 0;
            if (__atomic_compare_exchange_n(&slots[i], &expected, key, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                return 1;
            }
            if (expected == key) {
                return 0;
            }
        }
    }
    return 0;
}

/* Whether a <Location> pattern covers uri, as httpd's location walk decides:
 * a regex anywhere, a wildcard by path segments, else a prefix that ends at
 * a slash or at the end of the URL ("/a" covers "/a" and "/a/x", not "/ab"). */
static int location_covers(const core_dir_config *d, const char *uri)
{
    apr_size_t n;
    if (d->r) {
        return ap_regexec(d->r, uri, 0, NULL, 0) == 0;
    }
    if (!d->d) {
        return 0;
    }
    if (d->d_is_fnmatch) {
        return apr_fnmatch(d->d, uri, APR_FNM_PATHNAME) == APR_SUCCESS;
    }
    n = strlen(d->d);
    return strncmp(d->d, uri, n) == 0
           && (n == 0 || d->d[n - 1] == '/' || uri[n] == '/' || uri[n] == '\0');
}

static void open_page_check(request_rec *r)
{
    APR_OPTIONAL_FN_TYPE(authz_some_auth_required) *required =
        APR_RETRIEVE_OPTIONAL_FN(authz_some_auth_required);
    module *authz = ap_find_linked_module("mod_authz_core.c");
    module *compat = ap_find_linked_module("mod_access_compat.c");
    core_server_config *sconf = ap_get_core_module_config(r->server->module_config);
    ap_conf_vector_t **sec = (ap_conf_vector_t **)sconf->sec_url->elts;
    const char *where = NULL, *any;
    int i, get = 0, post = 0, any_get, any_post;
    apr_uint64_t key = 1469598103934665603ULL;      /* FNV-1a over server and location */
    const unsigned char *c;
    request_rec probe;

    for (i = 0; i < sconf->sec_url->nelts; i++) {
        core_dir_config *d = ap_get_core_module_config(sec[i]);
        if (!d || !location_covers(d, r->uri)) {
            continue;
        }
        where = d->d;
        if (compat && ap_get_module_config(sec[i], compat)) {
            get = post = 1;           /* Order/Allow/Deny: guarded its old way */
        }
        if (authz && ap_get_module_config(sec[i], authz)) {
            if (!required) {
                get = post = 1;
                continue;
            }
            probe = *r;
            probe.per_dir_config = sec[i];
            probe.method_number = M_GET;
            get |= required(&probe);
            probe.method_number = M_POST;
            post |= required(&probe);
        }
    }
    if (get && post) {
        return;
    }
    for (c = (const unsigned char *)&r->server; c < (const unsigned char *)(&r->server + 1); c++) {
        key = (key ^ *c) * 1099511628211ULL;
    }
    for (c = (const unsigned char *)(where ? where : r->uri); *c; c++) {
        key = (key ^ *c) * 1099511628211ULL;
    }
    if (!claim_warning(key | 1)) {
        return;
    }
    /* what applies to the request as merged: a Require from elsewhere, or none */
    probe = *r;
    probe.method_number = M_GET;
    any_get = required ? required(&probe) : 0;
    probe.method_number = M_POST;
    any_post = required ? required(&probe) : 0;
    any = (!get && any_get) || (!post && any_post)
              ? "; the Require that applies comes from a <Directory> or the server "
                "level (usually the document root's, e.g. Require all granted)"
              : "; no Require applies to it at all";
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1408)
                  "cluster-manager page %s (%s%s%s, server %s:%u) has no access control "
                  "of its own: no Require for %s in a <Location> for it%s.  Anyone who "
                  "reaches this server can read it and, with the nonce it shows, drain this "
                  "member or expire every session.  Add to its <Location> e.g. "
                  "`Require local` or `Require ip 10.0.0.0/8`.  (Logged once per start.)",
                  ap_escape_logitem(r->pool, r->uri), where ? "<Location " : "",
                  where ? ap_escape_logitem(r->pool, where) : "not in a <Location>",
                  where ? ">" : "", ap_get_server_name(r), ap_get_server_port(r),
                  !get && !post ? "GET or POST" : !get ? "GET" : "POST (its actions)", any);
}

/* ------------------------------------------------------------------------- */
/* Actions                                                                    */
/* ------------------------------------------------------------------------- */

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

static apr_table_t *read_form(request_rec *r)
{
    apr_array_header_t *pairs = NULL;
    apr_table_t *form = apr_table_make(r->pool, 8);
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    int i;

    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        return NULL;                  /* what the page's forms send, only */
    }
    if (ap_parse_form_data(r, NULL, &pairs, 16, 4096) != OK || !pairs) {
        return NULL;
    }
    for (i = 0; i < pairs->nelts; i++) {
        ap_form_pair_t *pair = &APR_ARRAY_IDX(pairs, i, ap_form_pair_t);
        apr_off_t len;
        apr_size_t size;
        char *buf;
        apr_brigade_length(pair->value, 1, &len);
        if (len < 0 || len > 256) {
            return NULL;
        }
        size = (apr_size_t)len;
        buf = apr_palloc(r->pool, size + 1);
        apr_brigade_flatten(pair->value, buf, &size);
        buf[size] = '\0';
        apr_table_setn(form, pair->name, buf);
    }
    return form;
}

/* Expires one session here and tells every member. */
static int expire_one(request_rec *r, sc_retained *ret, const char *id)
{
    sc_msg_expire m = { id };
    sc_buf b;
    const char *result;
    double ms;
    if (!id || !sc_sid_valid(id) || sc_store_remove(ret->store, id) != SC_STORE_OK) {
        return 0;
    }
    __atomic_add_fetch(&ret->store->hdr->expired, 1, __ATOMIC_RELAXED);
    sc_buf_init(&b, r->pool, 128);
    sc_msg_expire_encode(&b, &m);
    if (!sc_client_request(r->pool, r->server, NULL, b.buf, b.len,
                           ret->cfg->set->replication_acked, &result, &ms, NULL)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1114)
                      "cluster-manager: expiry of %s not replicated: %s", id, result);
    }
    return 1;
}

/* An answer of status with a text that says why, as the page's other text. */
static int refuse_text(request_rec *r, int status, const char *why)
{
    r->status = status;
    ap_set_content_type(r, "text/plain; charset=utf-8");
    ap_rprintf(r, "Result: refused\nDetail: %s\n", why);
    return OK;
}

/* POST ping=ROUTE[&size=N][&ack=0] (with the nonce): a message of N bytes
 * (default 100, at most SC_PING_MAX and maxMessageSize less the frame's
 * room) to that member through the engine, and its acknowledgement.  A
 * diagnostic, but the bytes go through the engine and over the network: a
 * POST with the nonce, as the actions. */
static int ping_post(request_rec *r, apr_table_t *form)
{
    const char *route = apr_table_get(form, "ping");
    const char *size_s = apr_table_get(form, "size");
    const char *ack_s = apr_table_get(form, "ack");
    int acked = !(ack_s && !strcmp(ack_s, "0"));
    sc_retained *ret = sc_retained_get(r->server);
    long max = ret->cfg ? ret->cfg->set->max_message_size - 128 : 0;
    apr_int64_t size = 100;
    const char *result;
    double ms;
    int ok;

    if (max > SC_PING_MAX) {
        max = SC_PING_MAX;
    }
    if (!route || !sc_valid_route(route)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1105)
                      "cluster-manager: bad ping request: no route (client %s)",
                      r->useragent_ip);
        return refuse_text(r, HTTP_BAD_REQUEST, "ping= is not a route (1-63 letters, "
                           "digits, - and _)");
    }
    if (size_s) {
        char *end;
        errno = 0;
        size = apr_strtoi64(size_s, &end, 10);
        if (end == size_s || *end || errno || size < 0) {
            return refuse_text(r, HTTP_BAD_REQUEST, "size= is not a number of bytes");
        }
    }
    if (size > max) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1409)
                      "cluster-manager: ping of %s refused: size %" APR_INT64_T_FMT
                      " is over %ld bytes (client %s)", route, size, max, r->useragent_ip);
        return refuse_text(r, HTTP_BAD_REQUEST,
                           apr_psprintf(r->pool, "size %" APR_INT64_T_FMT " is over the "
                                        "ping's bound of %ld bytes (at most %d, 1 MiB, and "
                                        "maxMessageSize less 128)", size, max, SC_PING_MAX));
    }
    ok = sc_client_probe(r->pool, r->server, route, (apr_size_t)size, acked, &result, &ms);
    ap_set_content_type(r, "text/plain; charset=utf-8");
    ap_rprintf(r, "Ping: %s\nSize: %" APR_INT64_T_FMT "\nMode: %s\nResult: %s\n"
               "TimeMs: %.3f\nDetail: %s\n", route, size, acked ? "ack" : "no-ack",
               ok ? (acked ? "acknowledged" : "sent") : "failed", ms, result);
    return OK;
}

/* A front's action=drain|disable|enable with route=ROUTE: an admin's choice
 * for the BalancerMembers with that route (sc_balancer_admin), the same
 * bits balancer-manager sets; the cluster never takes it back. */
static int front_action(request_rec *r, apr_table_t *form, const char *action)
{
    const char *route = apr_table_get(form, "route");
    int n;
    if (!sc_server_conf_get(r->server)->balancers->nelts) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1900)
                      "cluster-manager: action %s refused: this server is no front "
                      "(no SessionClusterBalancer) (client %s)", action, r->useragent_ip);
        return HTTP_CONFLICT;
    }
    if (!route || !*route || strlen(route) > SC_ROUTE_MAX) {
        return HTTP_BAD_REQUEST;
    }
    n = sc_balancer_admin(r->server, route, action);
    if (n < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1901)
                      "cluster-manager: %s: no BalancerMember with route %s (client %s)",
                      action, ap_escape_logitem(r->pool, route), r->useragent_ip);
        return HTTP_NOT_FOUND;
    }
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCLOGNO(1902)
                  "cluster-manager: %s the BalancerMember(s) with route %s (%d), asked "
                  "by client %s", action, ap_escape_logitem(r->pool, route), n,
                  r->useragent_ip);
    if (apr_table_get(form, "auto")) {
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_rprintf(r, "Action: %s\nRoute: %s\nWorkers: %d\nResult: accepted\n", action,
                   ap_escape_logitem(r->pool, route), n);
        return OK;
    }
    apr_table_setn(r->headers_out, "Location", ap_escape_uri(r->pool, r->uri));
    return HTTP_SEE_OTHER;
}

/* POST /cluster-manager: action=state (state=draining|ready), expire (id=),
 * expire_all, reset, transfer or ping (ping=ROUTE, see ping_post; action=
 * may be left out), on a front drain, disable or enable (route=, see
 * front_action), with nonce= the page's nonce (new at every start and
 * restart: a page from before is stale), from no other site (Origin or
 * Referer, see foreign_origin).  Every action is logged with the client's
 * address. */
static int action_post(request_rec *r)
{
    sc_retained *ret = sc_retained_get(r->server);
    const char *foreign = foreign_origin(r);
    apr_table_t *form;
    const char *action, *nonce, *what;
    apr_uint32_t bit = 0;

    if (foreign) {
        log_foreign(r, foreign);
        return HTTP_FORBIDDEN;        /* before the body: nothing of it is read */
    }
    form = read_form(r);
    if (!form) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1108)
                      "cluster-manager: action refused: not an "
                      "application/x-www-form-urlencoded form of at most 16 fields of "
                      "256 bytes (client %s)", r->useragent_ip);
        return HTTP_BAD_REQUEST;
    }
    action = apr_table_get(form, "action");
    nonce = apr_table_get(form, "nonce");
    if (!ret->shm || !nonce || !same_secret(nonce, ret->shm->nonce)) {
        static sc_log_gate gate;
        apr_uint32_t n;
        if (sc_log_gate_open(&gate, 0, apr_time_now(), &n)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1109)
                          "cluster-manager: action %s refused: %s nonce (client %s)%s",
                          action ? ap_escape_logitem(r->pool, action) : "(none)",
                          nonce ? "a wrong or stale" : "no", r->useragent_ip,
                          gate_note(r->pool, n));
        }
        return HTTP_FORBIDDEN;
    }
    if ((!action && apr_table_get(form, "ping")) || (action && !strcmp(action, "ping"))) {
        return ping_post(r, form);
    }
    if (!action) {
        return HTTP_BAD_REQUEST;
    }
    if (!strcmp(action, "drain") || !strcmp(action, "disable") || !strcmp(action, "enable")) {
        return front_action(r, form, action);
    }
    if (!ret->store || !ret->shm->engine_pid) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1111)
                      "cluster-manager: action %s refused: this %s (client %s)",
                      ap_escape_logitem(r->pool, action),
                      ret->store ? "member's engine is not running"
                                 : "server holds no sessions", r->useragent_ip);
        return HTTP_CONFLICT;
    }
    if (!strcmp(action, "state")) {
        const char *want = apr_table_get(form, "state");
        if (!want || (strcmp(want, "draining") != 0 && strcmp(want, "ready") != 0)) {
            return HTTP_BAD_REQUEST;
        }
        if (ret->shm->engine_state != SC_MS_READY
            && ret->shm->engine_state != SC_MS_DRAINING) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCLOGNO(1115)
                          "cluster-manager: state %s refused: this member is %s (client %s)",
                          want, sc_member_state_name((int)ret->shm->engine_state),
                          r->useragent_ip);
            return HTTP_CONFLICT;
        }
        __atomic_store_n(&ret->shm->requested_state,
                         !strcmp(want, "draining") ? SC_MS_DRAINING : SC_MS_READY,
                         __ATOMIC_RELEASE);
        what = apr_pstrcat(r->pool, "state ", want, NULL);
    }
    else if (!strcmp(action, "expire")) {
        const char *id = apr_table_get(form, "id");
        if (!expire_one(r, ret, id)) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1116)
                          "cluster-manager: expire: no such session (client %s)",
                          r->useragent_ip);
            return HTTP_NOT_FOUND;
        }
        what = apr_pstrcat(r->pool, "expire ", id, NULL);
    }
    else if (!strcmp(action, "expire_all")) {
        bit = SC_ACT_EXPIRE_ALL;
        what = "expire all sessions";
    }
    else if (!strcmp(action, "reset")) {
        bit = SC_ACT_RESET_COUNTERS;
        what = "reset counters";
    }
    else if (!strcmp(action, "transfer")) {
        bit = SC_ACT_TRANSFER;
        what = "redo the state transfer";
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1110)
                      "cluster-manager: unknown action %s (client %s)",
                      ap_escape_logitem(r->pool, action), r->useragent_ip);
        return HTTP_BAD_REQUEST;
    }
    if (bit) {
        __atomic_or_fetch(&ret->shm->requested_actions, bit, __ATOMIC_ACQ_REL);
    }
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCLOGNO(1112)
                  "cluster-manager: %s, asked by client %s", what, r->useragent_ip);
    if (apr_table_get(form, "auto")) {
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_rprintf(r, "Action: %s\nResult: accepted\n", action);
        return OK;
    }
    apr_table_setn(r->headers_out, "Location", ap_escape_uri(r->pool, r->uri));
    return HTTP_SEE_OTHER;
}

/* GET ?session=ID: what this member holds of one session (not its data):
 * whether it is held, the id as stored (its route may differ after a
 * re-binding), version (one more at every write), times and size.  Comparing
 * members' versions shows whether replication kept up.  Text lines as ?auto,
 * or JSON with &json. */
static int session_page(request_rec *r, apr_table_t *args)
{
    const char *id = apr_table_get(args, "session");
    int json = apr_table_get(args, "json") != NULL;
    sc_retained *ret = sc_retained_get(r->server);
    sc_sess_copy c;
    sc_loc_info l;
    int held, backup;
    static const char *const role_name[] = { "none", "primary", "backup", "proxy" };

    if (!sc_sid_valid(id)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1302)
                      "cluster-manager: session= is not a session id of this cluster's "
                      "shape (%" APR_SIZE_T_FMT " characters)", strlen(id));
        return HTTP_BAD_REQUEST;
    }
    if (!ret->store) {
        return HTTP_NOT_FOUND;        /* a front holds no sessions */
    }
    held = sc_store_get(ret->store, r->pool, id, 0, &c) == SC_STORE_OK;
    backup = ret->cfg && ret->cfg->set->backup_manager;
    if (!backup || !sc_loc_find(ret->store, id, &l)) {
        memset(&l, 0, sizeof(l));
    }
    ap_set_content_type(r, json ? "application/json" : "text/plain; charset=utf-8");
    if (r->header_only) {
        return OK;
    }
    if (json) {
        ap_rprintf(r, "{\"session\": {\"asked\": \"%s\", \"held\": %s", id,
                   held ? "true" : "false");
        if (held) {
            ap_rprintf(r, ", \"id\": \"%s\", \"version\": %" APR_UINT64_T_FMT
                       ", \"created_ms_ago\": %" APR_UINT64_T_FMT
                       ", \"accessed_ms_ago\": %" APR_UINT64_T_FMT
                       ", \"max_inactive_s\": %" APR_INT64_T_FMT ", \"bytes\": %u",
                       c.id, c.version, ms_since(c.created), ms_since(c.last_access),
                       c.max_inactive, c.data_len);
        }
        if (backup) {
            ap_rprintf(r, ", \"role\": \"%s\", \"primary\": \"%s\", \"backup\": \"%s\""
                       ", \"epoch\": %" APR_UINT64_T_FMT,
                       role_name[l.role & 3], l.primary, l.backup, l.epoch);
        }
        ap_rputs("}}\n", r);
        return OK;
    }
    ap_rprintf(r, "Session: %s\nSessionHeld: %s\n", id, held ? "yes" : "no");
    if (held) {
        ap_rprintf(r, "SessionId: %s\nSessionVersion: %" APR_UINT64_T_FMT "\n"
                   "SessionCreatedMsAgo: %" APR_UINT64_T_FMT "\n"
                   "SessionAccessedMsAgo: %" APR_UINT64_T_FMT "\n"
                   "SessionMaxInactive: %" APR_INT64_T_FMT "\nSessionBytes: %u\n",
                   c.id, c.version, ms_since(c.created), ms_since(c.last_access),
                   c.max_inactive, c.data_len);
    }
    if (backup) {
        ap_rprintf(r, "SessionRole: %s\nSessionPrimary: %s\nSessionBackup: %s\n"
                   "SessionEpoch: %" APR_UINT64_T_FMT "\n", role_name[l.role & 3],
                   l.primary, l.backup, l.epoch);
    }
    return OK;
}

/* ------------------------------------------------------------------------- */
/* The handler                                                                */
/* ------------------------------------------------------------------------- */

/* The effective configuration, as httpd -D DUMP_CLUSTER prints it: from the
 * module's optional function (mod_session_cluster.c), a line each. */
static void effective_config(request_rec *r, apr_array_header_t *lines)
{
    APR_OPTIONAL_FN_TYPE(sc_effective_config) *fn = APR_RETRIEVE_OPTIONAL_FN(sc_effective_config);
    char *text = fn ? (char *)fn(r->pool, r->server) : NULL;
    char *line, *last;
    if (!text) {
        APR_ARRAY_PUSH(lines, const char *) = "# no <Cluster> block";
        return;
    }
    for (line = apr_strtok(text, "\n", &last); line; line = apr_strtok(NULL, "\n", &last)) {
        APR_ARRAY_PUSH(lines, const char *) = line;
    }
}

int sc_status_handler(request_rec *r)
{
    apr_table_t *args = NULL;
    const char *fmt, *nonce = NULL, *refresh_s;
    sc_retained *ret;
    sc_view *v;
    model m;
    int refresh = 0;

    if (strcmp(r->handler, SC_STATUS_HANDLER) != 0) {
        return DECLINED;
    }
    ap_allow_standard_methods(r, REPLACE_ALLOW, M_GET, M_POST, -1);
    guard_headers(r);
    open_page_check(r);
    if (r->method_number == M_POST) {
        return action_post(r);
    }
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    ap_args_to_table(r, &args);
    if (apr_table_get(args, "action")) {
        /* actions change things: POST only, as balancer-manager's forms */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1107)
                      "cluster-manager: action by GET refused (client %s)",
                      r->useragent_ip);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    if (apr_table_get(args, "ping")) {
        /* the bytes go through the engine and the network: a POST with the
         * nonce, as the actions */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCLOGNO(1410)
                      "cluster-manager: ping by GET refused (client %s)", r->useragent_ip);
        apr_table_setn(r->headers_out, "Allow", "POST");
        return refuse_text(r, HTTP_METHOD_NOT_ALLOWED,
                           "a ping is a POST of ping=ROUTE[&size=BYTES][&ack=0] with "
                           "nonce= the page's nonce (?auto shows it as Nonce:)");
    }
    if (apr_table_get(args, "session")) {
        return session_page(r, args);
    }
    fmt = apr_table_get(args, "format");
    if (apr_table_get(args, "auto")) {
        fmt = "auto";
    }
    else if (apr_table_get(args, "json")) {
        fmt = "json";
    }
    else if (!fmt) {
        fmt = "html";
    }
    if (strcmp(fmt, "auto") != 0 && strcmp(fmt, "json") != 0
        && strcmp(fmt, "prometheus") != 0 && strcmp(fmt, "html") != 0) {
        return HTTP_BAD_REQUEST;
    }
    refresh_s = apr_table_get(args, "refresh");
    if (refresh_s) {
        char *end;
        long n = strtol(refresh_s, &end, 10);
        if (*end || end == refresh_s || n < 1 || n > 3600) {
            return HTTP_BAD_REQUEST;
        }
        refresh = (int)n;
    }

    /* a front shows its BalancerMembers as of now */
    sc_balancer_sync(r->server);
    ret = sc_retained_get(r->server);
    if (ret->shm && ret->shm->engine_pid) {
        nonce = apr_pstrdup(r->pool, ret->shm->nonce);   /* a front: for ping only */
    }
    v = apr_palloc(r->pool, sizeof(*v));
    read_view(r->server, v);
    memset(&m, 0, sizeof(m));
    m.r = r;
    m.p = r->pool;
    m.sections = apr_array_make(r->pool, 8, sizeof(section *));
    m.tables = apr_array_make(r->pool, 4, sizeof(table *));
    m.lines = apr_array_make(r->pool, 8, sizeof(const char *));
    m.config = apr_array_make(r->pool, 256, sizeof(const char *));
    m.view = v;
    gather(&m, v);
    effective_config(r, m.config);

    if (!strcmp(fmt, "auto")) {
        ap_set_content_type(r, "text/plain; charset=utf-8");
    }
    else if (!strcmp(fmt, "json")) {
        ap_set_content_type(r, "application/json");
    }
    else if (!strcmp(fmt, "prometheus")) {
        ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    }
    else {
        ap_set_content_type(r, "text/html; charset=utf-8");
    }
    if (r->header_only) {
        return OK;
    }
    if (!strcmp(fmt, "auto")) {
        write_auto(&m, nonce);
    }
    else if (!strcmp(fmt, "json")) {
        write_json(&m, nonce);
    }
    else if (!strcmp(fmt, "prometheus")) {
        write_prom(&m);
    }
    else {
        sc_page_write_html(&m, nonce, refresh);
    }
    return OK;
}
