/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_page.c -- the cluster-manager page as HTML, for an operator at a glance.
 *
 * sc_status.c gathers the model (sc_model.h) and writes it for machines
 * (?auto, ?json, Prometheus); this file writes the same model for a person
 * keeping the page open during an incident (HAProxy's stats page is the
 * anchor), top to bottom:
 *
 *   1. the summary: the cluster healthy, degraded or partitioned (the rule at
 *      cluster_word), members alive of known, this member's state with its
 *      drain button, sessions and bytes against the budget, replication
 *      errors in the last minute, encryption -- in words and colour;
 *   2. small plots of the last ten minutes (messages/s, sessions, sends
 *      awaiting acknowledgement, failures), inline SVG drawn from samples
 *      httpd's parent keeps (History below);
 *   3. the members, one row each coloured by state with the columns an
 *      operator scans (route, address, state, since, sessions, msgs/s,
 *      errors) and a ping button, the rest in a <details> row under it; on a
 *      front, its BalancerMembers the same way;
 *   4. the counters grouped by meaning (this member, traffic, failures,
 *      security, store), labelled in words, the ?auto name in a tooltip;
 *      fields this file has no label for are shown under their section's
 *      title with their ?auto name (nothing gathered is left out);
 *   5. the effective configuration.
 *
 * No script and nothing external: one <style> carrying a nonce new at every
 * answer, named by the answer's Content-Security-Policy (default-src 'none'),
 * no style= attribute (such a policy refuses them), bars are <meter>, plots
 * are SVG with attributes.  The page works offline and under that policy, and
 * fits 1280 px without horizontal scrolling (fixed table layouts, long values
 * wrap).  Everything that comes from the network is escaped (ap_escape_html).
 */
#include "sc_supervisor.h"
#include "sc_store.h"
#include "sc_page.h"

#include "apr_lib.h"
#include "apr_shm.h"
#include "apr_general.h"
#include "ap_mpm.h"
#include "mpm_common.h"

APLOG_USE_MODULE(session_cluster);

/* ------------------------------------------------------------------------- */
/* History: what the plots draw                                               */
/* ------------------------------------------------------------------------- */

/* httpd's parent samples the engine's counters and the store in its monitor
 * hook (about every ten seconds, INTERVAL_OF_WRITABLE_PROBES) into a ring in
 * a segment of its own, made once per httpd on the process pool (restarts
 * keep it; every child of every generation inherits it).  Why there: the
 * parent always runs, whether or not anyone reads the page (the plots have
 * the minutes before an incident when the operator opens it), it is the one
 * writer (no lock between children), and neither the engine nor the
 * engine's segment changes (its layout, SC_SHM_VERSION, stays).  The cost is
 * the resolution, about ten seconds; the page adds a live point of its own
 * at the right edge.  Readers copy the ring under its sequence lock. */
#define SC_HIST_SLOTS 64              /* about ten minutes at ten seconds */
#define SC_HIST_MIN_GAP apr_time_from_sec(5)
#define SC_HIST_WINDOW apr_time_from_sec(600)

typedef struct {
    apr_time_t t;                     /* sc_steady_us(): a time of this machine's
                                       * steady clock, only ever subtracted */
    apr_uint64_t msgs;                /* messages in and out */
    apr_uint64_t repl_err;            /* replication errors (sample_of) */
    apr_uint64_t fails;               /* failures, replication errors included */
    apr_uint64_t sessions;            /* sessions held */
    apr_uint64_t waiting;             /* acknowledged sends waiting */
} sc_hist_sample;

typedef struct {
    unsigned char id[16];
    apr_time_t t;                     /* sc_steady_us(); 0: unused */
    apr_uint64_t msgs;                /* its messages in and out at t */
} sc_hist_member;

typedef struct {
    volatile apr_uint32_t seq;
    apr_uint32_t n;                   /* samples held */
    apr_uint32_t next;                /* the slot the next one takes */
    sc_hist_sample s[SC_HIST_SLOTS];
    sc_hist_member last[SC_MAX_MEMBERS];   /* per member, at the last sample */
    sc_hist_member prev[SC_MAX_MEMBERS];   /* and at the one before */
} sc_hist;

typedef struct {
    sc_hist *h;
} sc_hist_retained;

static sc_hist *hist;                 /* NULL: no history (the segment failed) */

static apr_uint64_t up(apr_uint64_t now, apr_uint64_t before)
{
    /* a counter reset (the page's action) starts again from 0 */
    return now >= before ? now - before : now;
}

/* One sample of what the engine published (h) and the store holds.
 * Replication errors: sends that failed, acknowledgements not received in
 * time, changes too large to replicate.  Failures: those, connections to
 * members that failed, frames refused (bad or not authentic) and
 * connections closed because their send queue was full. */
static void sample_of(const sc_shm_t *h, const sc_store *store, apr_time_t now,
                      sc_hist_sample *out)
{
    out->t = now;
    out->msgs = h->c.msgs_in + h->c.msgs_out;
    out->repl_err = h->c.send_failures + h->c.ack_timeouts;
    if (store) {
        out->repl_err += __atomic_load_n(&store->hdr->repl_too_big, __ATOMIC_RELAXED);
        out->sessions = __atomic_load_n(&store->hdr->count, __ATOMIC_RELAXED);
    }
    else {
        out->sessions = 0;
    }
    out->fails = out->repl_err + h->c.connect_failures + h->c.bad_frames
                 + h->c.auth_failures + h->c.queue_full;
    out->waiting = h->queue_depth;
}

static int page_monitor(apr_pool_t *p, server_rec *s)
{
    sc_retained *ret = sc_retained_get(s);
    sc_shm_t *hdr;
    sc_shm_member mm;
    sc_hist_sample smp;
    apr_time_t now = sc_steady_us();  /* the samples' times: ages and rates only,
                                       * which a step of the wall clock must not
                                       * freeze or stretch */
    int i;
    (void)p;

    if (!hist || !ret->shm) {
        return DECLINED;
    }
    if (hist->n && hist->s[(hist->next + SC_HIST_SLOTS - 1) % SC_HIST_SLOTS].t > now) {
        /* samples of another clock: an earlier build's (wall clock), kept
         * over a graceful restart; the plots start again */
        sc_shm_write_begin(&hist->seq);
        hist->n = 0;
        hist->next = 0;
        memset(hist->last, 0, sizeof(hist->last));
        memset(hist->prev, 0, sizeof(hist->prev));
        sc_shm_write_end(&hist->seq);
    }
    if (hist->n && now - hist->s[(hist->next + SC_HIST_SLOTS - 1) % SC_HIST_SLOTS].t
                       < SC_HIST_MIN_GAP) {
        return DECLINED;              /* called early (a child exited) */
    }
    hdr = malloc(sizeof(*hdr));       /* the parent's: no pool to grow */
    if (!hdr) {
        return DECLINED;
    }
    sc_shm_read_header(ret->shm, hdr);
    sample_of(hdr, ret->store, now, &smp);
    free(hdr);
    sc_shm_write_begin(&hist->seq);
    hist->s[hist->next] = smp;
    hist->next = (hist->next + 1) % SC_HIST_SLOTS;
    if (hist->n < SC_HIST_SLOTS) {
        hist->n++;
    }
    for (i = 0; i < SC_MAX_MEMBERS; i++) {
        hist->prev[i] = hist->last[i];
        if (sc_shm_read_member(ret->shm, i, &mm)) {
            memcpy(hist->last[i].id, mm.id, 16);
            hist->last[i].t = now;
            hist->last[i].msgs = mm.c.msgs_in + mm.c.msgs_out;
        }
        else {
            hist->last[i].t = 0;
        }
    }
    sc_shm_write_end(&hist->seq);
    return DECLINED;
}

static int page_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                            server_rec *s)
{
    sc_hist_retained *hr;
    apr_shm_t *shm;
    apr_status_t rv;
    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    hr = ap_retained_data_get("sc_page_history");
    if (!hr) {
        hr = ap_retained_data_create("sc_page_history", sizeof(*hr));
    }
    if (!hr->h) {
        rv = apr_shm_create(&shm, sizeof(sc_hist), NULL, s->process->pool);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, SCLOGNO(1620)
                         "cluster-manager page: no shared memory for its history "
                         "(%" APR_SIZE_T_FMT " bytes): the page shows no plots",
                         sizeof(sc_hist));
        }
        else {
            hr->h = apr_shm_baseaddr_get(shm);
            memset(hr->h, 0, sizeof(sc_hist));
        }
    }
    hist = hr->h;
    return OK;
}

void sc_page_register_hooks(void)
{
    ap_hook_post_config(page_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(page_monitor, NULL, NULL, APR_HOOK_MIDDLE);
}

/* A consistent copy of the ring, oldest sample first; 0 when there is none. */
static int hist_copy(sc_hist *out)
{
    int tries;
    if (!hist) {
        return 0;
    }
    for (tries = 0; tries < 10000; tries++) {
        apr_uint32_t s1 = __atomic_load_n(&hist->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            continue;
        }
        memcpy(out, (const void *)hist, sizeof(*out));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&hist->seq, __ATOMIC_RELAXED) == s1) {
            sc_hist_sample tmp[SC_HIST_SLOTS];
            apr_uint32_t i, first = (out->next + SC_HIST_SLOTS - out->n) % SC_HIST_SLOTS;
            if (out->n > SC_HIST_SLOTS) {
                return 0;
            }
            for (i = 0; i < out->n; i++) {
                tmp[i] = out->s[(first + i) % SC_HIST_SLOTS];
            }
            memcpy(out->s, tmp, sizeof(tmp[0]) * out->n);
            return 1;
        }
    }
    return 0;
}

/* A member's messages per second: since the last sample, or the one before
 * when the last is under 3 s old; -1 when unknown. */
static double member_rate(const sc_hist *h, const sc_shm_member *mm, apr_time_t now)
{
    const sc_hist_member *lists[2];
    int l, i;
    if (!h) {
        return -1;
    }
    lists[0] = h->last;
    lists[1] = h->prev;
    for (l = 0; l < 2; l++) {
        for (i = 0; i < SC_MAX_MEMBERS; i++) {
            const sc_hist_member *e = &lists[l][i];
            if (e->t && !memcmp(e->id, mm->id, 16) && now - e->t >= apr_time_from_sec(3)) {
                return (double)up(mm->c.msgs_in + mm->c.msgs_out, e->msgs)
                       / ((double)(now - e->t) / APR_USEC_PER_SEC);
            }
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------- */
/* Reading the model                                                          */
/* ------------------------------------------------------------------------- */

static const field *find_in(const apr_array_header_t *fs, const char *key)
{
    int j;
    for (j = 0; fs && j < fs->nelts; j++) {
        const field *f = &APR_ARRAY_IDX(fs, j, field);
        if (!strcmp(f->key, key)) {
            return f;
        }
    }
    return NULL;
}

static const field *find_field(const model *m, const char *key)
{
    int i;
    for (i = 0; i < m->sections->nelts; i++) {
        const field *f = find_in(APR_ARRAY_IDX(m->sections, i, section *)->fields, key);
        if (f) {
            return f;
        }
    }
    return NULL;
}

static const char *ftext(const model *m, const char *key)
{
    const field *f = find_field(m, key);
    return f ? f->text : NULL;
}

static apr_uint64_t fnum(const model *m, const char *key, int *have)
{
    const field *f = find_field(m, key);
    if (have) {
        *have = f != NULL;
    }
    return f ? (f->kind == V_NUM ? f->num : (apr_uint64_t)apr_atoi64(f->text)) : 0;
}

static const char *rtext(const apr_array_header_t *row, const char *key)
{
    const field *f = find_in(row, key);
    return f ? f->text : "";
}

static apr_uint64_t rnum(const apr_array_header_t *row, const char *key)
{
    const field *f = find_in(row, key);
    return f ? f->num : 0;
}

static const table *find_table(const model *m, const char *name)
{
    int i;
    for (i = 0; i < m->tables->nelts; i++) {
        const table *t = APR_ARRAY_IDX(m->tables, i, table *);
        if (!strcmp(t->name, name)) {
            return t;
        }
    }
    return NULL;
}

/* A member row's state as one word: what it announces when alive (ready,
 * starting, draining, leaving, restarting), else how this member sees it
 * (suspect, dead, left, refused, restarting, configured: never heard). */
static const char *row_state(const apr_array_header_t *row)
{
    const char *view = rtext(row, "state");
    const char *announced = rtext(row, "member_state");
    if (!strcmp(view, "alive") && announced[0] && strcmp(announced, "-") != 0) {
        return announced;
    }
    return view[0] ? view : "unknown";
}

/* A word as a class name: letters and digits only. */
static const char *cls(apr_pool_t *p, const char *word)
{
    char *c = apr_pstrdup(p, word), *q;
    for (q = c; *q; q++) {
        if (!apr_isalnum(*q)) {
            *q = '-';
        }
    }
    return c;
}

/* ------------------------------------------------------------------------- */
/* Human units                                                                */
/* ------------------------------------------------------------------------- */

static const char *human_ms(apr_pool_t *p, apr_uint64_t ms)
{
    apr_uint64_t s = ms / 1000;
    if (ms < 10000) {
        return apr_psprintf(p, "%.1f s", (double)ms / 1000.0);
    }
    if (s < 60) {
        return apr_psprintf(p, "%u s", (unsigned)s);
    }
    if (s < 3600) {
        return apr_psprintf(p, "%u min %u s", (unsigned)(s / 60), (unsigned)(s % 60));
    }
    if (s < 86400) {
        return apr_psprintf(p, "%u h %u min", (unsigned)(s / 3600), (unsigned)(s % 3600 / 60));
    }
    return apr_psprintf(p, "%u d %u h", (unsigned)(s / 86400), (unsigned)(s % 86400 / 3600));
}

static const char *human_bytes(apr_pool_t *p, apr_uint64_t b)
{
    static const char *const unit[] = { "KB", "MB", "GB", "TB" };
    double v = (double)b;
    int u = -1;
    if (b < 1024) {
        return apr_psprintf(p, "%u B", (unsigned)b);
    }
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    return apr_psprintf(p, "%.1f %s", v, unit[u]);
}

/* 1234567 -> "1 234 567" (thin spaces would not copy well into a shell) */
static const char *human_num(apr_pool_t *p, apr_uint64_t v)
{
    char digits[32], out[48];
    int n = apr_snprintf(digits, sizeof(digits), "%" APR_UINT64_T_FMT, v), i, o = 0;
    for (i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) {
            out[o++] = ' ';
        }
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return apr_pstrdup(p, out);
}

static const char *human_rate(apr_pool_t *p, double r)
{
    if (r < 0) {
        return "-";
    }
    return r < 10 ? apr_psprintf(p, "%.1f", r) : apr_psprintf(p, "%.0f", r);
}

/* ------------------------------------------------------------------------- */
/* Labels: the counters by meaning                                            */
/* ------------------------------------------------------------------------- */

typedef enum { G_MEMBER, G_TRAFFIC, G_FAILURES, G_SECURITY, G_STORE, G_COUNT } group_id;
typedef enum { U_TEXT, U_NUM, U_BYTES, U_MS } unit_id;

static const char *const group_title[G_COUNT] = {
    "This member", "Traffic", "Failures", "Security", "Store"
};

typedef struct {
    const char *key;
    group_id group;
    unit_id unit;
    const char *label;
} label_def;

static const label_def labels[] = {
    { "Role", G_MEMBER, U_TEXT, "Role" },
    { "EngineState", G_MEMBER, U_TEXT, "State" },
    { "EngineHealth", G_MEMBER, U_TEXT, "Engine health" },
    { "EngineUptimeMs", G_MEMBER, U_MS, "Engine uptime" },
    { "EnginePublishedMsAgo", G_MEMBER, U_MS, "Engine last published (ago)" },
    { "EnginePid", G_MEMBER, U_TEXT, "Engine process id" },
    { "EngineStarts", G_MEMBER, U_NUM, "Engines started" },
    { "EnginePlacement", G_MEMBER, U_TEXT, "Engine runs as" },
    { "Incarnation", G_MEMBER, U_TEXT, "Incarnation" },
    { "Receiver", G_MEMBER, U_TEXT, "Receiver address" },
    { "Domain", G_MEMBER, U_TEXT, "Domain" },
    { "Membership", G_MEMBER, U_TEXT, "Membership" },
    { "Multicast", G_MEMBER, U_TEXT, "Multicast group" },
    { "MembersKnown", G_MEMBER, U_NUM, "Members known" },
    { "MembersAlive", G_MEMBER, U_NUM, "Members alive" },
    { "NotImplemented", G_MEMBER, U_TEXT, "Named but not implemented" },
    { "EngineSocket", G_MEMBER, U_TEXT, "Engine socket" },
    { "CountersSinceMs", G_MEMBER, U_MS, "Counters running for" },

    { "MsgsPerSec", G_TRAFFIC, U_NUM, "Messages per second (since the counters started)" },
    { "MsgsIn", G_TRAFFIC, U_NUM, "Messages received" },
    { "MsgsOut", G_TRAFFIC, U_NUM, "Messages sent" },
    { "BytesIn", G_TRAFFIC, U_BYTES, "Received" },
    { "BytesOut", G_TRAFFIC, U_BYTES, "Sent" },
    { "ReplicatedIn", G_TRAFFIC, U_NUM, "Session messages received" },
    { "ReplicatedOut", G_TRAFFIC, U_NUM, "Session messages sent" },
    { "HeartbeatsIn", G_TRAFFIC, U_NUM, "Heartbeats received" },
    { "HeartbeatsOut", G_TRAFFIC, U_NUM, "Heartbeats sent" },
    { "PingsOut", G_TRAFFIC, U_NUM, "TCP pings sent" },
    { "AcksIn", G_TRAFFIC, U_NUM, "Acknowledgements received" },
    { "AcksOut", G_TRAFFIC, U_NUM, "Acknowledgements sent" },
    { "Connects", G_TRAFFIC, U_NUM, "Connections made" },
    { "DispatchAsync", G_TRAFFIC, U_NUM, "Sent without waiting" },
    { "QueueDepth", G_TRAFFIC, U_NUM, "Sends awaiting acknowledgement" },
    { "QueueBytes", G_TRAFFIC, U_BYTES, "Written, not yet sent" },
    { "ThroughputReports", G_TRAFFIC, U_NUM, "Throughput reports logged" },
    { "TransferIn", G_TRAFFIC, U_NUM, "Sessions received by state transfer" },
    { "TransferOut", G_TRAFFIC, U_NUM, "Sessions sent by state transfer" },
    { "LastTransferMs", G_TRAFFIC, U_MS, "Last state transfer took" },
    { "LastTransferSessions", G_TRAFFIC, U_NUM, "Sessions in the last transfer" },

    { "SendFailures", G_FAILURES, U_NUM, "Sends failed" },
    { "AckTimeouts", G_FAILURES, U_NUM, "Acknowledgements timed out" },
    { "ConnectFailures", G_FAILURES, U_NUM, "Connections failed" },
    { "ReplicationTooLarge", G_FAILURES, U_NUM, "Changes too large to replicate" },
    { "QueueFull", G_FAILURES, U_NUM, "Closed: send queue full" },
    { "ConnsTimedOut", G_FAILURES, U_NUM, "Connections timed out" },
    { "ConnsRefused", G_FAILURES, U_NUM, "Connections refused" },
    { "BadFrames", G_FAILURES, U_NUM, "Frames refused" },
    { "BadHeartbeats", G_FAILURES, U_NUM, "Heartbeats refused" },
    { "FdChecks", G_FAILURES, U_NUM, "Failure detector checks" },
    { "FdSuspected", G_FAILURES, U_NUM, "Members suspected" },
    { "FdDead", G_FAILURES, U_NUM, "Members declared dead" },
    { "FdFalseAlarms", G_FAILURES, U_NUM, "Suspicions that were false alarms" },
    { "SessionWritesUndone", G_FAILURES, U_NUM, "Session writes undone (writer died)" },
    { "MinorityRefused", G_FAILURES, U_NUM, "Writes refused in a minority" },
    { "Conflicts", G_FAILURES, U_NUM, "Conflicting copies replaced" },

    { "Encryption", G_SECURITY, U_TEXT, "Encryption" },
    { "AuthFailures", G_SECURITY, U_NUM, "Not authentic (refused)" },
    { "Replays", G_SECURITY, U_NUM, "Replays refused" },
    { "PreviousKeyUsed", G_SECURITY, U_NUM, "Opened with the previous key" },
    { "DomainFiltered", G_SECURITY, U_NUM, "Heartbeats of another domain dropped" },

    { "Manager", G_STORE, U_TEXT, "Manager" },
    { "SessionsActive", G_STORE, U_NUM, "Sessions held" },
    { "SessionsCapacity", G_STORE, U_NUM, "Most sessions" },
    { "SessionsBudgetBytes", G_STORE, U_BYTES, "Memory budget" },
    { "SessionsBudgetUsed", G_STORE, U_BYTES, "Budget in use" },
    { "SessionMaxSize", G_STORE, U_BYTES, "Largest session allowed" },
    { "SessionsBytesInUse", G_STORE, U_BYTES, "Session data held" },
    { "SessionsStoreBytes", G_STORE, U_BYTES, "Shared memory in use" },
    { "SessionsCreated", G_STORE, U_NUM, "Created or replicated in" },
    { "SessionsUpdated", G_STORE, U_NUM, "Updated" },
    { "SessionsUpdatedInPlace", G_STORE, U_NUM, "Updated in place" },
    { "SessionsRemoved", G_STORE, U_NUM, "Removed" },
    { "SessionsExpired", G_STORE, U_NUM, "Expired" },
    { "SessionsRejectedFull", G_STORE, U_NUM, "Refused: store full" },
    { "SessionsEvicted", G_STORE, U_NUM, "Evicted for a new session" },
    { "SessionsExpiredOnProbation", G_STORE, U_NUM, "Expired on probation" },
    { "SessionsRejectedSize", G_STORE, U_NUM, "Refused: too large" },
    { "SessionsRebound", G_STORE, U_NUM, "Re-bound to this route" },
    { "SessionsDeadRefused", G_STORE, U_NUM, "Writes to dead sessions refused" },
    { "Tombstones", G_STORE, U_NUM, "Tombstones set" },
    { "TombstonesEvicted", G_STORE, U_NUM, "Tombstones given up early" },
    { "Minority", G_STORE, U_NUM, "In a minority (1: yes)" },
    { "QuorumSeen", G_STORE, U_NUM, "Members seen (quorum)" },
    { "QuorumKnown", G_STORE, U_NUM, "Members known (quorum)" },
    { "AntiEntropyRounds", G_STORE, U_NUM, "Anti-entropy digests sent" },
    { "AntiEntropyAsked", G_STORE, U_NUM, "Sessions asked for (anti-entropy)" },
    { "AntiEntropyRemoved", G_STORE, U_NUM, "Removed by a tombstone (anti-entropy)" },
    /* BackupManager's (a field not named here is shown under its section) */
    { "SessionsPrimary", G_STORE, U_NUM, "Sessions it is primary of" },
    { "SessionsBackup", G_STORE, U_NUM, "Sessions it backs up" },
    { "SessionsProxy", G_STORE, U_NUM, "Sessions known by location only" },
    { "BackupUpdates", G_TRAFFIC, U_NUM, "Updates handed to replication" },
    { "BackupCopiesSent", G_TRAFFIC, U_NUM, "Copies sent to backups" },
    { "BackupFetches", G_TRAFFIC, U_NUM, "Sessions fetched from another member" },
    { "BackupFetchesNotHere", G_FAILURES, U_NUM, "Fetches no member could answer" },
    { "BackupFetchesFailed", G_FAILURES, U_NUM, "Fetches without an answer in time" },
    { "BackupFetchP50Us", G_TRAFFIC, U_NUM, "Fetch time, median (microseconds)" },
    { "BackupFetchP99Us", G_TRAFFIC, U_NUM, "Fetch time, 99th percentile (microseconds)" },
    { "BackupPromotions", G_STORE, U_NUM, "Sessions taken over" },
    { "BackupReplacements", G_STORE, U_NUM, "Sessions given a new backup" },
    { "BackupReplacing", G_FAILURES, U_NUM, "Sessions waiting for a backup" },
    { NULL, G_MEMBER, U_TEXT, NULL }
};

static const label_def *label_of(const char *key)
{
    const label_def *d;
    for (d = labels; d->key; d++) {
        if (!strcmp(d->key, key)) {
            return d;
        }
    }
    return NULL;
}

/* A field's value in human units, escaped. */
static const char *shown(apr_pool_t *p, const field *f, unit_id u)
{
    if (f->kind == V_NUM) {
        switch (u) {
        case U_BYTES:
            return human_bytes(p, f->num);
        case U_MS:
            return human_ms(p, f->num);
        case U_TEXT:
            return f->text;
        default:
            return human_num(p, f->num);
        }
    }
    return ap_escape_html(p, f->text[0] ? f->text : "-");
}

/* ------------------------------------------------------------------------- */
/* Writing                                                                    */
/* ------------------------------------------------------------------------- */

/* Colours: a state's row background (light, the text stays dark and the
 * state is also a word: colour is never the only cue). */
static const char css[] =
    "*{box-sizing:border-box}"
    "body{font:14px/1.35 system-ui,sans-serif;color:#1b1f24;background:#fff;"
    "margin:0;padding:8px 16px 16px}"
    "h1{font-size:20px;margin:4px 0 2px}"
    "h2{font-size:16px;margin:18px 0 6px;padding-bottom:2px;border-bottom:1px solid #c9ced6}"
    "a{color:#0b57d0}"
    ".sub{color:#555;margin:0 0 10px;overflow-wrap:anywhere}"
    "td,th,dd,dt,li,p,summary{overflow-wrap:anywhere}"
    "form.act{display:inline;margin:0}#ping,#reset{margin:10px 0}"
    "form.act input[type=submit]{font-size:12px;padding:1px 6px;margin:1px 2px}"
    "#summary{border:2px solid #888;border-radius:6px;padding:8px 12px;background:#f6f7f9}"
    "#summary.c-healthy{border-color:#2e7d32;background:#edf7ee}"
    "#summary.c-degraded{border-color:#b26a00;background:#fff5e0}"
    "#summary.c-partitioned{border-color:#b3261e;background:#fdeceb}"
    "#summary.c-unknown{border-color:#666}"
    "#verdict{font-size:19px;font-weight:700;margin:0 0 2px}"
    ".c-healthy #verdict{color:#1e6b23}.c-degraded #verdict{color:#8a5200}"
    ".c-partitioned #verdict{color:#a1221b}"
    "#why{margin:0 0 8px}"
    ".tiles{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:6px 18px;margin:0}"
    ".tiles div{min-width:0}.tiles dt{font-size:12px;color:#555}"
    ".tiles dd{margin:0;font-weight:600}"
    "meter{width:160px;height:12px;vertical-align:middle}"
    ".good{color:#1e6b23}.warn{color:#8a5200}.bad{color:#a1221b}"
    ".plots{display:flex;flex-wrap:wrap;gap:8px 14px}"
    ".plot{width:290px}.plot p{margin:0;font-size:12px;color:#444;white-space:nowrap;"
    "overflow:hidden;text-overflow:ellipsis}"
    ".plot svg{display:block}"
    ".plot .axis{stroke:#9aa1ab;stroke-width:1}"
    ".plot .grid{stroke:#e3e6ea;stroke-width:1}"
    ".plot .line{fill:none;stroke:#0b57d0;stroke-width:1.6}"
    ".plot .line.f{stroke:#b3261e}"
    ".plot .dot{fill:#0b57d0}.plot .dot.f{fill:#b3261e}"
    ".plot text{font-size:10px;fill:#555}"
    "table.grid{width:100%;border-collapse:collapse;table-layout:fixed}"
    "table.grid th{text-align:left;background:#e9ecf0;font-weight:600;padding:3px 6px;"
    "border-bottom:1px solid #c9ced6}"
    "table.grid td{padding:3px 6px;border-top:1px solid #d5d9df;vertical-align:top}"
    "table.grid td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "col.c-route{width:17%}col.c-addr{width:18%}col.c-state{width:10%}col.c-since{width:11%}"
    "col.c-sess,col.c-rate,col.c-err{width:9%}col.c-act{width:17%}"
    "table.grid tr.more td{border-top:none;padding:0 6px 4px}"
    "details summary{cursor:pointer;color:#444;font-size:12px}"
    "dl.kv{display:grid;grid-template-columns:repeat(4,minmax(0,1fr) minmax(0,1.3fr));"
    "gap:1px 10px;margin:4px 0;font-size:12px}"
    "dl.kv dt{color:#555}dl.kv dd{margin:0}"
    "tbody.st-ready td{background:#e3f4e1}"
    "tbody.st-starting td,tbody.st-restarting td{background:#dde9fb}"
    "tbody.st-draining td,tbody.st-leaving td{background:#fdf1c7}"
    "tbody.st-suspect td{background:#ffdcae}"
    "tbody.st-dead td{background:#f6bfba}"
    "tbody.st-refused td{background:#ecd5f3}"
    "tbody.st-left td,tbody.st-configured td,tbody.st-none td,tbody.st-unknown td"
    "{background:#ececec;color:#555}"
    ".badge{font-weight:700}"
    ".groups{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:10px 16px;"
    "align-items:start}"
    "table.kv{width:100%;border-collapse:collapse;table-layout:fixed;font-size:13px}"
    "table.kv caption{text-align:left;font-weight:700;padding:2px 0}"
    "table.kv th{text-align:left;font-weight:400;color:#333;width:62%;padding:1px 4px;"
    "border-top:1px solid #e3e6ea}"
    "table.kv td{padding:1px 4px;border-top:1px solid #e3e6ea;font-variant-numeric:"
    "tabular-nums}"
    "table.kv .act{padding:4px 0}"
    "pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px;background:#f6f7f9;"
    "padding:6px;border:1px solid #e3e6ea}"
    "address{color:#666;font-size:12px}";

static void html_action(request_rec *r, const char *nonce, const char *action,
                        const char *extra, const char *label, const char *title)
{
    ap_rprintf(r, "<form class=\"act\" method=\"post\" action=\"%s\">"
               "<input type=\"hidden\" name=\"action\" value=\"%s\">"
               "<input type=\"hidden\" name=\"nonce\" value=\"%s\">%s"
               "<input type=\"submit\" value=\"%s\"%s%s%s></form>\n",
               ap_escape_html(r->pool, r->uri), action, nonce, extra, label,
               title ? " title=\"" : "", title ? title : "", title ? "\"" : "");
}

/* The cluster in one word, as this member sees it:
 *   partitioned  it sees fewer than half of the members it knows -- itself
 *                and those alive or suspect, out of itself and every member
 *                heard that did not leave and was not refused, fronts not
 *                counted: the quorum rule's minority, the small side of a
 *                split (a member's Minority, QuorumSeen and QuorumKnown; a
 *                front counts the same from its member rows);
 *   degraded     not partitioned, but a member it knows is not serving:
 *                suspect, dead, restarting, refused, never heard
 *                (configured), or alive and starting; or this member's
 *                engine is not running or not publishing, or it is starting;
 *   healthy      otherwise: every member it knows (not counting those that
 *                left) alive and ready or draining, itself too (a drain is
 *                asked for, not a fault).
 * 'why' gets the reasons, escaped. */
static const char *cluster_word(const model *m, const char **why)
{
    apr_pool_t *p = m->p;
    const table *t = find_table(m, "members");
    const char *state = ftext(m, "EngineState"), *health = ftext(m, "EngineHealth");
    apr_array_header_t *reasons = apr_array_make(p, 4, sizeof(const char *));
    int have_minority, seen = 1, known = 1, j;
    apr_uint64_t minority = fnum(m, "Minority", &have_minority);

    if (!state) {
        *why = "this server has no cluster engine (no &lt;Cluster&gt; block)";
        return "unknown";
    }
    if (!health || strcmp(health, "ok") != 0) {
        APR_ARRAY_PUSH(reasons, const char *) =
            apr_psprintf(p, "this member's engine is %s", ap_escape_html(p, health ? health : "?"));
    }
    else if (!strcmp(state, "starting") || !strcmp(state, "restarting")) {
        APR_ARRAY_PUSH(reasons, const char *) = apr_psprintf(p, "this member is %s", state);
    }
    for (j = 0; t && j < t->rows->nelts; j++) {
        const apr_array_header_t *row = APR_ARRAY_IDX(t->rows, j, apr_array_header_t *);
        const char *st = row_state(row), *view = rtext(row, "state");
        int observer = !strcmp(rtext(row, "role"), "balancer");
        if (!strcmp(view, "left")) {
            continue;
        }
        if (!observer && strcmp(view, "refused") != 0 && strcmp(view, "configured") != 0) {
            known++;
            if (!strcmp(view, "alive") || !strcmp(view, "suspect")) {
                seen++;
            }
        }
        if (strcmp(st, "ready") != 0 && strcmp(st, "draining") != 0) {
            APR_ARRAY_PUSH(reasons, const char *) =
                apr_psprintf(p, "%s %s", ap_escape_html(p, rtext(row, "route")), st);
        }
    }
    *why = "";
    for (j = 0; j < reasons->nelts; j++) {
        *why = apr_pstrcat(p, *why, j ? "; " : "", APR_ARRAY_IDX(reasons, j, const char *),
                           NULL);
    }
    if (have_minority) {
        seen = (int)fnum(m, "QuorumSeen", NULL);
        known = (int)fnum(m, "QuorumKnown", NULL);
    }
    if (have_minority ? minority != 0 : 2 * seen < known) {
        *why = apr_psprintf(p, "this member sees %d of the %d members it knows, "
                            "fewer than half%s%s", seen, known, *why[0] ? "; " : "", *why);
        return "partitioned";
    }
    return reasons->nelts ? "degraded" : "healthy";
}

/* One plot: points (x: seconds before now, y: value), drawn over the
 * window.  'f': a failure series (red). */
typedef struct {
    double age[SC_HIST_SLOTS + 1];    /* seconds before now */
    double v[SC_HIST_SLOTS + 1];
    int n;
} series;

#define PW 290
#define PH 86
#define PX0 38
#define PX1 284
#define PY0 6
#define PY1 70

static void svg_plot(request_rec *r, const char *id, const char *title, const char *unit,
                     const series *s, int f)
{
    apr_pool_t *p = r->pool;
    double max = 0, last = s->n ? s->v[s->n - 1] : 0, top;
    int i;
    for (i = 0; i < s->n; i++) {
        if (s->v[i] > max) {
            max = s->v[i];
        }
    }
    /* a round top: 1, 2 or 5 times a power of ten, at least 1 */
    {
        double d = 1;
        while (d * 10 <= max) {
            d *= 10;
        }
        top = max <= d ? d : max <= 2 * d ? 2 * d : max <= 5 * d ? 5 * d : 10 * d;
        if (top < 1) {
            top = 1;
        }
    }
    ap_rprintf(r, "<div class=\"plot\" id=\"%s\"><p><b>%s</b> &middot; now %s%s, "
               "max %s%s</p>\n", id, title, human_rate(p, last), unit, human_rate(p, max), unit);
    ap_rprintf(r, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
               "aria-label=\"%s over the last 10 minutes\">", PW, PH, PW, PH, title);
    ap_rprintf(r, "<line class=\"grid\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>",
               PX0, (PY0 + PY1) / 2, PX1, (PY0 + PY1) / 2);
    ap_rprintf(r, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
               "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>",
               PX0, PY0, PX0, PY1, PX0, PY1, PX1, PY1);
    ap_rprintf(r, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>"
               "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>",
               PX0 - 3, PY0 + 8, human_rate(p, top), PX0 - 3, PY1);
    ap_rprintf(r, "<text x=\"%d\" y=\"%d\">-10 min</text><text x=\"%d\" y=\"%d\" "
               "text-anchor=\"middle\">-5 min</text><text x=\"%d\" y=\"%d\" "
               "text-anchor=\"end\">now</text>", PX0, PH - 2, (PX0 + PX1) / 2, PH - 2,
               PX1, PH - 2);
    if (s->n) {
        ap_rprintf(r, "<polyline class=\"line%s\" points=\"", f ? " f" : "");
        for (i = 0; i < s->n; i++) {
            double x = PX1 - s->age[i] / 600.0 * (PX1 - PX0);
            double y = PY1 - s->v[i] / top * (PY1 - PY0);
            ap_rprintf(r, "%s%.1f,%.1f", i ? " " : "", x, y);
        }
        ap_rputs("\"/>", r);
        ap_rprintf(r, "<circle class=\"dot%s\" cx=\"%d\" cy=\"%.1f\" r=\"2.5\"/>",
                   f ? " f" : "", PX1, PY1 - last / top * (PY1 - PY0));
    }
    ap_rputs("</svg></div>\n", r);
}

static void write_plots(request_rec *r, const sc_hist *h, int nh, const sc_hist_sample *live,
                        int store)
{
    series msgs, sess, wait, fails;
    apr_time_t now = live->t, oldest = now - SC_HIST_WINDOW;
    int i;
    sc_hist_sample all[SC_HIST_SLOTS + 1];
    int n = 0;

    for (i = 0; i < nh; i++) {
        if (h->s[i].t >= oldest - apr_time_from_sec(20) && h->s[i].t < now) {
            all[n++] = h->s[i];
        }
    }
    all[n++] = *live;
    msgs.n = sess.n = wait.n = fails.n = 0;
    for (i = 0; i < n; i++) {
        double age = (double)(now - all[i].t) / APR_USEC_PER_SEC;
        if (age > 600) {
            age = 600;
        }
        sess.age[sess.n] = wait.age[wait.n] = age;
        sess.v[sess.n++] = (double)all[i].sessions;
        wait.v[wait.n++] = (double)all[i].waiting;
        if (i > 0) {
            double dt = (double)(all[i].t - all[i - 1].t) / APR_USEC_PER_SEC;
            if (dt <= 0.5) {
                continue;             /* the live point right after a sample */
            }
            msgs.age[msgs.n] = fails.age[fails.n] = age;
            msgs.v[msgs.n++] = (double)up(all[i].msgs, all[i - 1].msgs) / dt;
            fails.v[fails.n++] = (double)up(all[i].fails, all[i - 1].fails) * 60.0 / dt;
        }
    }
    ap_rputs("<h2 id=\"history\">Last 10 minutes</h2>\n", r);
    if (n < 2) {
        ap_rputs("<p>Collecting: httpd's parent takes a sample about every ten seconds "
                 "(the plots start with the second).</p>\n", r);
        return;
    }
    ap_rputs("<div class=\"plots\">\n", r);
    svg_plot(r, "plot-msgs", "Messages", "/s", &msgs, 0);
    if (store) {
        svg_plot(r, "plot-sessions", "Sessions held", "", &sess, 0);
    }
    svg_plot(r, "plot-waiting", "Sends awaiting ack", "", &wait, 0);
    svg_plot(r, "plot-failures", "Failures", "/min", &fails, 1);
    ap_rputs("</div>\n", r);
}

/* Replication errors since the newest sample at least a minute old (or the
 * oldest one there is); *secs gets the span, -1 without a sample. */
static apr_uint64_t errors_last_minute(const sc_hist *h, int nh, const sc_hist_sample *live,
                                       int *secs)
{
    const sc_hist_sample *base = NULL;
    int i;
    for (i = 0; i < nh; i++) {
        if (h->s[i].t <= live->t - apr_time_from_sec(60)) {
            base = &h->s[i];
        }
    }
    if (!base && nh) {
        base = &h->s[0];
    }
    if (!base || base->t >= live->t) {
        *secs = -1;
        return 0;
    }
    *secs = (int)apr_time_sec(live->t - base->t);
    return up(live->repl_err, base->repl_err);
}

static void tile(request_rec *r, const char *id, const char *label, const char *value)
{
    ap_rprintf(r, "<div id=\"%s\"><dt>%s</dt><dd>%s</dd></div>\n", id, label, value);
}

static void write_summary(const model *m, const char *nonce, const sc_hist *h, int nh,
                          const sc_hist_sample *live)
{
    request_rec *r = m->r;
    apr_pool_t *p = m->p;
    const char *why, *word = cluster_word(m, &why);
    const char *state = ftext(m, "EngineState"), *enc = ftext(m, "Encryption");
    sc_retained *ret = sc_retained_get(r->server);
    int have_sess, secs;
    apr_uint64_t known = fnum(m, "MembersKnown", NULL), alive = fnum(m, "MembersAlive", NULL);
    apr_uint64_t active = fnum(m, "SessionsActive", &have_sess);
    apr_uint64_t errs = errors_last_minute(h, nh, live, &secs);

    ap_rprintf(r, "<section id=\"summary\" class=\"c-%s\">\n<p id=\"verdict\">Cluster %s</p>\n",
               word, word);
    ap_rprintf(r, "<p id=\"why\">%s</p>\n",
               why[0] ? why : "every member it knows is alive and serving");
    if (!state) {
        ap_rputs("</section>\n", r);
        return;
    }
    ap_rputs("<dl class=\"tiles\">\n", r);
    tile(r, "t-members", "Members alive (this one not counted)",
         apr_psprintf(p, "<span class=\"%s\">%" APR_UINT64_T_FMT " of %" APR_UINT64_T_FMT
                      "</span> known", alive == known ? "good" : "bad", alive, known));
    ap_rprintf(r, "<div id=\"t-self\"><dt>This member (%s)</dt><dd><span class=\"%s\">%s</span>",
               m->route[0] ? ap_escape_html(p, m->route) : "no route",
               !strcmp(state, "ready") ? "good" : !strcmp(state, "draining") ? "warn" : "bad",
               ap_escape_html(p, state));
    if (nonce && ret->store) {
        int draining = !strcmp(state, "draining");
        ap_rputs(" ", r);
        html_action(r, nonce, "state",
                    draining ? "<input type=\"hidden\" name=\"state\" value=\"ready\">"
                             : "<input type=\"hidden\" name=\"state\" value=\"draining\">",
                    draining ? "Set this member ready" : "Drain this member",
                    draining ? "take new sessions again"
                             : "take no new sessions (the front sends them elsewhere)");
    }
    ap_rputs("</dd></div>\n", r);
    if (have_sess) {
        apr_uint64_t cap = fnum(m, "SessionsCapacity", NULL);
        apr_uint64_t budget = fnum(m, "SessionsBudgetBytes", NULL);
        apr_uint64_t used = fnum(m, "SessionsBudgetUsed", NULL);
        tile(r, "t-sessions", "Sessions held, of the most the store takes",
             apr_psprintf(p, "%s of %s <meter min=\"0\" max=\"%" APR_UINT64_T_FMT "\" "
                          "value=\"%" APR_UINT64_T_FMT "\" high=\"%" APR_UINT64_T_FMT
                          "\" title=\"SessionsActive / SessionsCapacity\"></meter>",
                          human_num(p, active), human_num(p, cap), cap ? cap : 1, active,
                          cap ? cap / 10 * 9 : 1));
        tile(r, "t-budget", "Memory in use, of the budget",
             apr_psprintf(p, "%s of %s (%.1f %%) <meter min=\"0\" max=\"%" APR_UINT64_T_FMT
                          "\" value=\"%" APR_UINT64_T_FMT "\" high=\"%" APR_UINT64_T_FMT
                          "\" title=\"SessionsBudgetUsed / SessionsBudgetBytes\"></meter>",
                          human_bytes(p, used), human_bytes(p, budget),
                          budget ? 100.0 * (double)used / (double)budget : 0.0,
                          budget ? budget : 1, used, budget ? budget / 10 * 9 : 1));
    }
    tile(r, "t-errors", "Replication errors, last minute",
         secs < 0 ? "<span>no sample yet</span>"
                  : apr_psprintf(p, "<span class=\"%s\">%" APR_UINT64_T_FMT "</span>%s",
                                 errs ? "bad" : "good", errs,
                                 secs < 55 ? apr_psprintf(p, " (in %d s: the history is "
                                                          "younger)", secs) : ""));
    tile(r, "t-encryption", "Encryption between members",
         enc && !strncmp(enc, "AES", 3)
             ? apr_psprintf(p, "<span class=\"good\">on</span>: %s", ap_escape_html(p, enc))
             : "<span class=\"warn\">off</span>: traffic is not authenticated");
    ap_rputs("</dl>\n</section>\n", r);
}

/* The details of a member row: every field not in the columns. */
static void member_details(request_rec *r, const apr_array_header_t *row)
{
    apr_pool_t *p = r->pool;
    int k;
    ap_rprintf(r, "<details><summary>more about %s</summary><dl class=\"kv\">",
               ap_escape_html(p, rtext(row, "route")));
    for (k = 0; k < row->nelts; k++) {
        const field *f = &APR_ARRAY_IDX(row, k, field);
        const char *v;
        if (!strcmp(f->key, "route") || !strcmp(f->key, "addr")) {
            continue;
        }
        if (!strcmp(f->key, "alive_ms")) {
            v = human_ms(p, f->num);
        }
        else if (!strcmp(f->key, "heard_ms_ago")) {
            v = strcmp(f->text, "-") ? apr_pstrcat(p, human_ms(p, (apr_uint64_t)
                                                              apr_atoi64(f->text)),
                                                   " ago", NULL) : "never";
        }
        else if (!strncmp(f->key, "bytes_", 6)) {
            v = human_bytes(p, f->num);
        }
        else if (f->kind == V_NUM) {
            v = human_num(p, f->num);
        }
        else {
            v = ap_escape_html(p, f->text);
        }
        ap_rprintf(r, "<dt title=\"%s%s%s\">%s</dt><dd>%s</dd>", f->key,
                   f->help ? ": " : "", f->help ? ap_escape_html(p, f->help) : "", f->key, v);
    }
    ap_rputs("</dl></details>", r);
}

static void write_members(const model *m, const char *nonce, const sc_hist *h)
{
    request_rec *r = m->r;
    apr_pool_t *p = m->p;
    const table *t = find_table(m, "members");
    apr_time_t now = apr_time_now();
    int j;

    if (!t) {
        return;
    }
    ap_rprintf(r, "<h2>%s</h2>\n<table id=\"members\" class=\"grid\">\n"
               "<colgroup><col class=\"c-route\"><col class=\"c-addr\"><col class=\"c-state\">"
               "<col class=\"c-since\"><col class=\"c-sess\"><col class=\"c-rate\">"
               "<col class=\"c-err\"><col class=\"c-act\"></colgroup>\n"
               "<thead><tr><th>Route</th><th>Address</th><th>State</th><th>Since</th>"
               "<th title=\"sessions it holds, when this member knows (under DeltaManager "
               "every member holds every session)\">Sessions</th>"
               "<th title=\"its messages in and out per second over the last sample "
               "(about 10 s)\">Msgs/s</th><th title=\"frames refused, sends failed, "
               "connections failed, acknowledgements timed out\">Errors</th><th></th>"
               "</tr></thead>\n", t->title);
    if (!t->rows->nelts) {
        ap_rputs("<tbody class=\"st-none\"><tr><td colspan=\"8\">(none: no other member "
                 "known yet)</td></tr></tbody>\n</table>\n", r);
        return;
    }
    for (j = 0; j < t->rows->nelts; j++) {
        const apr_array_header_t *row = APR_ARRAY_IDX(t->rows, j, apr_array_header_t *);
        const char *st = row_state(row), *route = rtext(row, "route");
        const sc_shm_member *mm = NULL;
        apr_uint64_t errs = rnum(row, "bad_frames") + rnum(row, "send_failures")
                            + rnum(row, "connect_failures") + rnum(row, "ack_timeouts");
        const field *sess = find_in(row, "sessions");
        apr_time_t since = 0;
        double rate = -1;

        if (m->view && j < m->view->n && !strcmp(m->view->m[j].route[0]
                                                 ? m->view->m[j].route : "-", route)) {
            mm = &m->view->m[j];
            since = mm->state_since ? mm->state_since : mm->first_seen;
            rate = member_rate(h, mm, sc_steady_us());   /* the samples' clock */
        }
        ap_rprintf(r, "<tbody class=\"st-%s\" id=\"member-%s\">\n<tr><td>%s</td>"
                   "<td>%s</td><td class=\"badge\" title=\"seen as %s; it announces %s\">%s</td>"
                   "<td title=\"in this state for\">%s</td><td class=\"n\">%s</td>"
                   "<td class=\"n\">%s</td><td class=\"n%s\">%s</td><td>",
                   cls(p, st), cls(p, route), ap_escape_html(p, route),
                   ap_escape_html(p, rtext(row, "addr")),
                   ap_escape_html(p, rtext(row, "state")),
                   ap_escape_html(p, rtext(row, "member_state")), ap_escape_html(p, st),
                   since && now > since ? human_ms(p, (apr_uint64_t)apr_time_as_msec(now - since))
                                        : "-",
                   sess ? (sess->kind == V_NUM ? human_num(p, sess->num)
                                               : ap_escape_html(p, sess->text)) : "-",
                   human_rate(p, rate), errs ? " bad" : "", human_num(p, errs));
        if (nonce && strcmp(route, "-") != 0 && !strcmp(rtext(row, "state"), "alive")) {
            html_action(r, nonce, "ping",
                        apr_psprintf(p, "<input type=\"hidden\" name=\"ping\" value=\"%s\">"
                                     "<input type=\"hidden\" name=\"size\" value=\"100\">",
                                     ap_escape_html(p, route)),
                        "Ping", "send it 100 bytes through the engine and time the "
                                "acknowledgement");
        }
        ap_rputs("</td></tr>\n<tr class=\"more\"><td colspan=\"8\">", r);
        member_details(r, row);
        ap_rputs("</td></tr>\n</tbody>\n", r);
    }
    ap_rputs("</table>\n", r);
}

/* A front's BalancerMembers, with the admin's actions per route (the
 * nonce's forms: drain, disable, enable; see sc_balancer_admin). */
static void write_balancers(const model *m, const char *nonce)
{
    request_rec *r = m->r;
    apr_pool_t *p = m->p;
    const table *t = find_table(m, "balancer_members");
    int j;
    if (!t) {
        return;
    }
    ap_rprintf(r, "<h2>%s</h2>\n<table id=\"balancer_members\" class=\"grid\">\n"
               "<thead><tr><th>Balancer</th><th>Route</th><th>URL</th>"
               "<th title=\"mod_proxy's status of the worker\">Proxy status</th>"
               "<th title=\"the member with this route, as this front sees it\">Member</th>"
               "%s</tr></thead>\n", t->title,
               nonce ? "<th title=\"the admin's choice for this route's BalancerMembers: "
                       "the cluster never takes it back\">Admin</th>" : "");
    if (!t->rows->nelts) {
        ap_rprintf(r, "<tbody class=\"st-none\"><tr><td colspan=\"%d\">(none)</td></tr>"
                   "</tbody>\n</table>\n", nonce ? 6 : 5);
        return;
    }
    for (j = 0; j < t->rows->nelts; j++) {
        const apr_array_header_t *row = APR_ARRAY_IDX(t->rows, j, apr_array_header_t *);
        const char *st = rtext(row, "member");
        const char *route = rtext(row, "route");
        ap_rprintf(r, "<tbody class=\"st-%s\"><tr><td>%s</td><td>%s</td><td>%s</td>"
                   "<td>%s</td><td class=\"badge\">%s</td>", cls(p, st),
                   ap_escape_html(p, rtext(row, "balancer")),
                   ap_escape_html(p, route), ap_escape_html(p, rtext(row, "url")),
                   ap_escape_html(p, rtext(row, "status")), ap_escape_html(p, st));
        if (nonce && strcmp(route, "-") != 0 && *route) {
            const char *extra = apr_psprintf(p, "<input type=\"hidden\" name=\"route\" "
                                             "value=\"%s\">", ap_escape_html(p, route));
            ap_rputs("<td>", r);
            html_action(r, nonce, "drain", extra, "Drain",
                        "new sessions go to the other members; this route's own go on");
            html_action(r, nonce, "disable", extra, "Disable",
                        "no request at all: its sessions go to the members that hold them");
            html_action(r, nonce, "enable", extra, "Enable",
                        "clears drain, disabled and stopped (the member's own drain stays)");
            ap_rputs("</td>", r);
        }
        else if (nonce) {
            ap_rputs("<td></td>", r);
        }
        ap_rputs("</tr></tbody>\n", r);
    }
    ap_rputs("</table>\n", r);
}

/* Any table the model has besides these two (written plainly). */
static void write_other_table(request_rec *r, const table *t)
{
    apr_pool_t *p = r->pool;
    const apr_array_header_t *first;
    int j, k;
    ap_rprintf(r, "<h2>%s</h2>\n<table id=\"%s\" class=\"grid\">\n", t->title, t->name);
    if (!t->rows->nelts) {
        ap_rputs("<tbody><tr><td>(none)</td></tr></tbody>\n</table>\n", r);
        return;
    }
    first = APR_ARRAY_IDX(t->rows, 0, apr_array_header_t *);
    ap_rputs("<thead><tr>", r);
    for (k = 0; k < first->nelts; k++) {
        ap_rprintf(r, "<th>%s</th>", APR_ARRAY_IDX(first, k, field).key);
    }
    ap_rputs("</tr></thead>\n<tbody>\n", r);
    for (j = 0; j < t->rows->nelts; j++) {
        const apr_array_header_t *row = APR_ARRAY_IDX(t->rows, j, apr_array_header_t *);
        ap_rputs("<tr>", r);
        for (k = 0; k < row->nelts; k++) {
            ap_rprintf(r, "<td>%s</td>", ap_escape_html(p, APR_ARRAY_IDX(row, k, field).text));
        }
        ap_rputs("</tr>\n", r);
    }
    ap_rputs("</tbody></table>\n", r);
}

static void kv_row(request_rec *r, const field *f, const char *label, unit_id u)
{
    apr_pool_t *p = r->pool;
    ap_rprintf(r, "<tr><th title=\"%s%s%s%s\">%s</th><td>%s</td></tr>\n", f->key,
               f->help ? ": " : "", f->help ? ap_escape_html(p, f->help) : "",
               f->kind == V_NUM && u != U_NUM && u != U_TEXT
                   ? apr_psprintf(p, " (%s)", f->text) : "",
               label, shown(p, f, u));
}

/* The counters by meaning; a group's actions under it. */
static void write_groups(const model *m, const char *nonce)
{
    request_rec *r = m->r;
    sc_retained *ret = sc_retained_get(r->server);
    static const char *const gid[G_COUNT] = {
        "g-member", "g-traffic", "g-failures", "g-security", "g-store"
    };
    int g, i, j;

    if (!m->sections->nelts) {
        return;
    }
    ap_rputs("<h2>Counters</h2>\n", r);
    if (nonce && ret->store) {
        ap_rputs("<div id=\"reset\">", r);
        html_action(r, nonce, "reset", "", "Reset counters",
                    "zero this member's counters (not the other members')");
        ap_rputs("</div>\n", r);
    }
    ap_rputs("<div class=\"groups\">\n", r);
    for (g = 0; g < G_COUNT; g++) {
        int any = 0;
        for (i = 0; i < m->sections->nelts; i++) {
            const section *s = APR_ARRAY_IDX(m->sections, i, section *);
            for (j = 0; j < s->fields->nelts; j++) {
                const field *f = &APR_ARRAY_IDX(s->fields, j, field);
                const label_def *d = label_of(f->key);
                if (!d || d->group != (group_id)g) {
                    continue;
                }
                if (!any++) {
                    ap_rprintf(r, "<table class=\"kv\" id=\"%s\"><caption>%s</caption>\n",
                               gid[g], group_title[g]);
                }
                kv_row(r, f, d->label, d->unit);
            }
        }
        if (g == G_STORE && any && nonce && ret->store) {
            ap_rputs("<tr><td colspan=\"2\" class=\"act\">", r);
            html_action(r, nonce, "expire_all", "", "Expire all sessions",
                        "on every member");
            html_action(r, nonce, "transfer", "", "Redo state transfer",
                        "ask a ready member for every session again");
            ap_rputs("<br>", r);
            html_action(r, nonce, "expire",
                        "<input type=\"text\" name=\"id\" size=\"26\" "
                        "placeholder=\"session id\" aria-label=\"session id\"> ",
                        "Expire this session", "on every member");
            ap_rputs("</td></tr>\n", r);
        }
        if (any) {
            ap_rputs("</table>\n", r);
        }
    }
    /* fields without a label here: under their section's title, as named */
    for (i = 0; i < m->sections->nelts; i++) {
        const section *s = APR_ARRAY_IDX(m->sections, i, section *);
        int any = 0;
        for (j = 0; j < s->fields->nelts; j++) {
            const field *f = &APR_ARRAY_IDX(s->fields, j, field);
            if (label_of(f->key)) {
                continue;
            }
            if (!any++) {
                ap_rprintf(r, "<table class=\"kv\" id=\"g-%s\"><caption>%s</caption>\n",
                           s->name, s->title);
            }
            kv_row(r, f, f->key, f->kind == V_NUM ? U_NUM : U_TEXT);
        }
        if (any) {
            ap_rputs("</table>\n", r);
        }
    }
    ap_rputs("</div>\n", r);
}

void sc_page_write_html(const model *m, const char *nonce, int refresh)
{
    request_rec *r = m->r;
    apr_pool_t *p = r->pool;
    sc_retained *ret = sc_retained_get(r->server);
    unsigned char rnd[16];
    char style_nonce[33];
    sc_hist *h = apr_palloc(p, sizeof(*h));
    sc_hist_sample live;
    int nh = 0, i, j;

    /* the one <style> may apply, nothing else may load or run */
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        memset(rnd, 0, sizeof(rnd));
        apr_cpystrn((char *)rnd, "sc-page-style", sizeof(rnd));
    }
    for (i = 0; i < 16; i++) {
        apr_snprintf(style_nonce + 2 * i, 3, "%02x", rnd[i]);
    }
    apr_table_setn(r->err_headers_out, "Content-Security-Policy",
                   apr_psprintf(p, "default-src 'none'; style-src 'nonce-%s'; "
                                "form-action 'self'; base-uri 'none'; "
                                "frame-ancestors 'none'", style_nonce));

    if (hist_copy(h)) {
        nh = (int)h->n;
    }
    else {
        h = NULL;
    }
    if (m->view && m->view->have) {
        sample_of(&m->view->hdr, ret->store, sc_steady_us(), &live);
    }
    else {
        memset(&live, 0, sizeof(live));
        live.t = sc_steady_us();
    }

    ap_rputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n", r);
    ap_rprintf(r, "<title>Cluster Manager%s%s</title>\n", m->route[0] ? ": " : "",
               ap_escape_html(p, m->route));
    if (refresh > 0) {
        ap_rprintf(r, "<meta http-equiv=\"refresh\" content=\"%d\">\n", refresh);
    }
    ap_rprintf(r, "<style nonce=\"%s\">%s</style>\n</head>\n<body>\n", style_nonce, css);
    ap_rprintf(r, "<h1>Cluster Manager for %s</h1>\n",
               ap_escape_html(p, ap_get_server_name(r)));
    ap_rprintf(r, "<p class=\"sub\">Route <b id=\"route\">%s</b> &middot; %s &middot; "
               "mod_session_cluster %s &middot; as text: <a href=\"?auto\">?auto</a>, "
               "<a href=\"?json\">?json</a>, <a href=\"?format=prometheus\">Prometheus</a>"
               " &middot; %s</p>\n",
               m->route[0] ? ap_escape_html(p, m->route) : "(none)",
               ap_escape_html(p, ap_get_server_description()), MOD_SESSION_CLUSTER_VERSION,
               refresh > 0 ? apr_psprintf(p, "reloads every %d s", refresh)
                           : "<a href=\"?refresh=10\">reload every 10 s</a>");

    write_summary(m, nonce, h, nh, &live);
    if (m->view && m->view->have) {
        write_plots(r, h, nh, &live, ret->store != NULL);
    }
    write_members(m, nonce, h);
    write_balancers(m, nonce);
    for (i = 0; i < m->tables->nelts; i++) {
        const table *t = APR_ARRAY_IDX(m->tables, i, table *);
        if (strcmp(t->name, "members") != 0 && strcmp(t->name, "balancer_members") != 0) {
            write_other_table(r, t);
        }
    }
    for (i = 0, j = 0; i < m->lines->nelts; i++) {
        const char *l = APR_ARRAY_IDX(m->lines, i, const char *);
        if (!strncmp(l, "Unmatched", 9) || !strncmp(l, "Missing", 7)) {
            ap_rprintf(r, "%s<li>%s</li>\n", j++ ? "" : "<h2>Not matched</h2>\n<ul>\n",
                       ap_escape_html(p, l));
        }
    }
    if (j) {
        ap_rputs("</ul>\n", r);
    }
    if (nonce) {
        ap_rputs("<div id=\"ping\">", r);
        html_action(r, nonce, "ping",
                    apr_psprintf(p, "Ping member <input type=\"text\" name=\"ping\" "
                                 "size=\"14\" aria-label=\"route\" placeholder=\"route\"> "
                                 "with <input type=\"text\" name=\"size\" value=\"100\" "
                                 "size=\"7\" aria-label=\"bytes\"> bytes (at most %d) ",
                                 SC_PING_MAX), "Ping", NULL);
        ap_rputs("</div>\n", r);
    }
    write_groups(m, nonce);
    ap_rprintf(r, "<h2>Effective configuration</h2>\n<details id=\"configuration\">"
               "<summary>%d lines, as httpd -D DUMP_CLUSTER prints them</summary><pre>",
               m->config->nelts);
    for (i = 0; i < m->config->nelts; i++) {
        ap_rputs(ap_escape_html(p, APR_ARRAY_IDX(m->config, i, const char *)), r);
        ap_rputs("\n", r);
    }
    ap_rputs("</pre></details>\n<hr><address>mod_session_cluster ", r);
    ap_rputs(MOD_SESSION_CLUSTER_VERSION "</address>\n</body></html>\n", r);
}
