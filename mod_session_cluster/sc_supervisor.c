/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_supervisor.c -- the parent side of the cluster engine (see sc_supervisor.h):
 * post_config starts the engine, keeps it when the cluster configuration is
 * unchanged, or replaces it; httpd's "other child" registry restarts it if it
 * dies; the end of the last generation stops it.
 */
#include "sc_supervisor.h"
#include "sc_engine.h"
#include "sc_ipc.h"

#include "ap_mpm.h"
#include "mpm_common.h"

#include <openssl/evp.h>

#include "apr_shm.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

APLOG_USE_MODULE(session_cluster);

#define SC_AUTO_BUDGET_MAX (1024ull * 1024 * 1024)  /* maxStoreSize 0: at most 1 GiB */

static const char retained_key[] = "mod_session_cluster";

/* The store's budget: Manager maxStoreSize, or (0) a quarter of the
 * machine's memory, at most SC_AUTO_BUDGET_MAX. */
static apr_uint64_t store_budget(const sc_settings *set)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    apr_uint64_t b;
    if (set->max_store_size > 0) {
        return (apr_uint64_t)set->max_store_size;
    }
    b = pages > 0 && size > 0 ? (apr_uint64_t)pages * (apr_uint64_t)size / 4
                              : SC_AUTO_BUDGET_MAX;
    if (b > SC_AUTO_BUDGET_MAX) {
        b = SC_AUTO_BUDGET_MAX;
    }
    return b < 64ull * 1024 * 1024 ? 64ull * 1024 * 1024 : b;
}

/* What the stamps' hashes depend on besides the data (sc_store_hash_regime):
 * the hash function (SC_PROTO_VERSION: its values are part of the protocol)
 * and the pairs it leaves out (Manager sessionAttributeNameFilter). */
static apr_uint32_t hash_regime(const sc_settings *set)
{
    const unsigned char *t = (const unsigned char *)(set->attr_name_filter_text
                                                     ? set->attr_name_filter_text : "");
    apr_uint32_t h = 2166136261u ^ (apr_uint32_t)SC_PROTO_VERSION;
    h = (h ^ (set->attr_name_filter_text ? 1u : 0u)) * 16777619u;
    for (; *t; t++) {
        h = (h ^ *t) * 16777619u;
    }
    return h;
}

/* The session store for this generation: made at the first start; kept by
 * a restart, with its limits set again where the segment allows; moved to
 * a new segment when the budget grew past what it was laid out for (or the
 * count limit past its slots): no full stop needed. */
static int store_ready(sc_retained *r, server_rec *s, const sc_settings *set)
{
    apr_uint64_t budget = store_budget(set), copied;
    apr_uint32_t limit = set->max_active_sessions > 0
                         ? (apr_uint32_t)set->max_active_sessions : 0;
    apr_uint32_t slot = (apr_uint32_t)set->max_session_size;
    sc_store *fresh;
    apr_status_t rv;

    if (r->store && sc_store_set_limits(r->store, budget, limit, slot) == 0) {
        apr_uint64_t used = sc_store_bytes_counted(r->store);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, SCLOGNO(1437)
                     "session store kept: budget %" APR_UINT64_T_FMT " bytes (%"
                     APR_UINT64_T_FMT " in use), %s%u sessions, up to %u bytes each",
                     budget, used, limit ? "at most " : "no count limit; room for ",
                     limit ? limit : r->store->hdr->capacity, slot);
        sc_store_hash_regime(r->store, hash_regime(set), 0);
        if (used > budget) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCLOGNO(1438)
                         "the session store holds %" APR_UINT64_T_FMT " bytes, more than "
                         "its new budget (Manager maxStoreSize %" APR_UINT64_T_FMT "): "
                         "every session is kept, and new ones are refused until enough "
                         "have expired", used, budget);
        }
        return OK;
    }
    rv = sc_store_create_budget(s->process->pool, budget, limit, slot, &fresh);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCLOGNO(1247)
                     "cannot create the session store (budget %" APR_UINT64_T_FMT
                     " bytes, Manager maxStoreSize%s): lower maxStoreSize", budget,
                     set->max_store_size > 0 ? "" : " 0: a quarter of this machine's "
                     "memory, at most 1 GiB");
        return !OK;
    }
    if (!r->store) {
        r->store = fresh;
        sc_store_hash_regime(fresh, hash_regime(set), 1);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, SCLOGNO(1248)
                     "session store: budget %" APR_UINT64_T_FMT " bytes (Manager "
                     "maxStoreSize%s), %s%u sessions, up to %u bytes each", budget,
                     set->max_store_size > 0 ? "" : " 0: a quarter of this machine's "
                     "memory, at most 1 GiB", limit ? "at most " : "no count limit; "
                     "room for ", fresh->hdr->capacity, slot);
        return OK;
    }
    rv = sc_store_move(r->store, fresh, &copied);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, SCLOGNO(1249)
                     "the session store keeps its budget of %" APR_UINT64_T_FMT
                     " bytes: its sessions do not fit in a new store of %" APR_UINT64_T_FMT
                     " bytes", r->store->hdr->budget, budget);
        apr_shm_destroy(fresh->shm);
        sc_store_hash_regime(r->store, hash_regime(set), 0);
        return OK;
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SCLOGNO(1439)
                 "session store moved to a larger one: budget %" APR_UINT64_T_FMT
                 " -> %" APR_UINT64_T_FMT " bytes, %" APR_UINT64_T_FMT " sessions "
                 "copied; a request still running in the previous generation that "
                 "changes a session now gets 503 (Retry-After: 1)",
                 r->store->hdr->budget_laid, budget, copied);
    sc_store_hash_regime_from(fresh, r->store);
    sc_store_hash_regime(fresh, hash_regime(set), 0);
    if (r->store->shm) {
        apr_shm_destroy(r->store->shm);
    }
    r->store = fresh;
    r->fingerprint_set = 0;            /* the engine must map the new store */
    return OK;
}

sc_retained *sc_retained_get(server_rec *s)
{
    sc_retained *r = ap_retained_data_get(retained_key);
    if (!r) {
        r = ap_retained_data_create(retained_key, sizeof(*r));
        r->layout = SC_RETAINED_LAYOUT;
    }
    return r;
}

/* ------------------------------------------------------------------------- */
/* Parent side: start, supervise, replace, stop                               */
/* ------------------------------------------------------------------------- */

static int engine_spawn(sc_retained *r);

static void engine_maint(int reason, void *data, apr_wait_t status)
{
    sc_retained *r = data;
    int mpm_state = AP_MPMQ_STOPPING;

    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        apr_proc_other_child_unregister(r);
        r->registered = 0;
        r->engine_pid = 0;
        if (reason == APR_OC_REASON_DEATH
            && (status == SC_ENGINE_STARTUP_ERROR
                || (WIFEXITED(status) && WEXITSTATUS(status) == SC_ENGINE_STARTUP_ERROR))) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, r->s, SCLOGNO(1246)
                         "the cluster engine could not start (see above); this "
                         "member stays out of the cluster until httpd restarts");
            break;
        }
        if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS
            && mpm_state != AP_MPMQ_STOPPING) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, r->s, SCLOGNO(1238)
                         "cluster engine (pid %" APR_PID_T_FMT ") died (status %d): "
                         "starting a new one", r->proc.pid, status);
            engine_spawn(r);
        }
        break;
    case APR_OC_REASON_RESTART:
        /* httpd restarts: the engine stays (post_config decides) */
        break;
    default:
        break;
    }
}

static int engine_spawn(sc_retained *r)
{
    pid_t pid;
    if (r->registered) {
        apr_proc_other_child_unregister(r);
        r->registered = 0;
    }
    pid = fork();
    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, r->s, SCLOGNO(1239)
                     "cannot fork the cluster engine");
        return -1;
    }
    if (pid == 0) {
        sc_engine_args a;
        a.s = r->s;
        a.cfg = r->cfg;
        a.shm = r->shm;
        a.store = r->store;
        a.ring = r->ring;
        a.route = r->route;
        a.observer = r->observer;
        memcpy(a.id, r->id, SC_ID_LEN);
        sc_engine_run(&a);
    }
    r->engine_pid = pid;
    r->proc.pid = pid;
    r->proc.in = r->proc.out = r->proc.err = NULL;
    r->starts++;
    /* on this generation's pool: httpd unloads this module (and engine_maint
     * with it) when a generation ends, so each one registers anew */
    apr_proc_other_child_register(&r->proc, engine_maint, r, NULL, r->pconf);
    r->registered = 1;
    return 0;
}

/* Stops the engine: SIGTERM (leave) or SIGUSR2 (replaced), then waits. */
static void engine_stop_wait(sc_retained *r, int sig)
{
    pid_t pid = r->engine_pid;
    int i, status;
    if (pid <= 0) {
        return;
    }
    if (r->registered) {
        apr_proc_other_child_unregister(r);
        r->registered = 0;
    }
    if (kill(pid, sig) != 0) {
        r->engine_pid = 0;            /* already gone */
        return;
    }
    for (i = 0; i < 60; i++) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno == ECHILD)) {
            /* exited (or reaped by the MPM already); an engine that died of
             * a signal at stop crashed there: say so */
            if (w == pid && WIFSIGNALED(status)) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, r->s, SCLOGNO(1380)
                             "the cluster engine (pid %ld) died of signal %d while "
                             "stopping", (long)pid, WTERMSIG(status));
            }
            else if (w == pid && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, r->s, SCLOGNO(1381)
                             "the cluster engine (pid %ld) exited with status %d while "
                             "stopping", (long)pid, WEXITSTATUS(status));
            }
            r->engine_pid = 0;
            return;
        }
        apr_sleep(apr_time_from_msec(50));
    }
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, r->s, SCLOGNO(1382)
                 "the cluster engine (pid %ld) did not stop within 3 s of signal %d: "
                 "killing it (SIGKILL); its peers will see it die instead of leave",
                 (long)pid, sig);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    r->engine_pid = 0;
}

/* process pool cleanup: httpd stops for good */
/* The end of a configuration generation (pconf's cleanup, which runs before
 * httpd unloads this module): when httpd stops for good the engine leaves;
 * on a restart it carries on, and the next generation registers it again. */
static apr_status_t generation_end(void *data)
{
    sc_retained *r = data;
    /* the registration lives in this pool: APR's own cleanup has removed it */
    r->registered = 0;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_EXITING) {
        engine_stop_wait(r, SIGTERM);
    }
    return APR_SUCCESS;
}

/* The fingerprint of the configuration an engine runs: SHA-256 of every
 * setting of the block as sc_config_visit() hands it over (keys as their
 * bytes, not as the dump's "(set, 256-bit key)": a new key of the same size
 * must replace the engine, or a rotation by graceful restarts does nothing),
 * the route, the role and the protocol version, salted with random bytes
 * drawn when httpd started.
 * It stays in the parent's memory, compared and never printed. */
typedef struct {
    EVP_MD_CTX *md;
    int ok;
} fp_ctx;

static void fp_put(fp_ctx *f, const void *b, apr_size_t len)
{
    unsigned char n[8];
    int i;
    for (i = 0; i < 8; i++) {
        n[i] = (unsigned char)((apr_uint64_t)len >> (56 - 8 * i));
    }
    /* each field with its length in front: no two settings read alike */
    if (f->ok && (EVP_DigestUpdate(f->md, n, sizeof(n)) != 1
                  || (len && EVP_DigestUpdate(f->md, b, len) != 1))) {
        f->ok = 0;
    }
}

static void fp_visit(void *baton, const char *key, const void *value, apr_size_t len)
{
    fp_put(baton, key, strlen(key));
    fp_put(baton, value, len);
}

/* 0 and the digest in 'out', or -1 (OpenSSL failed: the caller takes the
 * configuration as changed) */
static int fingerprint(sc_retained *r, apr_pool_t *pconf, sc_cluster_cfg *cfg,
                       const char *route, int observer, unsigned char out[SC_FP_LEN])
{
    fp_ctx f;
    apr_pool_t *tmp;
    unsigned int n = 0;
    const char *role = observer ? "observer" : "member";

    f.md = EVP_MD_CTX_new();
    f.ok = f.md && EVP_DigestInit_ex(f.md, EVP_sha256(), NULL) == 1;
    fp_put(&f, r->fp_salt, sizeof(r->fp_salt));
    apr_pool_create(&tmp, pconf);
    sc_config_visit(tmp, cfg, fp_visit, &f);
    apr_pool_destroy(tmp);
    fp_visit(&f, "route", route, strlen(route));
    fp_visit(&f, "role", role, strlen(role));
    {
        /* a graceful restart into a build of another protocol version (its
         * stamps' hash is another) replaces the engine, which runs the
         * build it was started with */
        unsigned char v = SC_PROTO_VERSION;
        fp_visit(&f, "protocol", &v, 1);
    }
    if (f.ok && (EVP_DigestFinal_ex(f.md, out, &n) != 1 || n != SC_FP_LEN)) {
        f.ok = 0;
    }
    EVP_MD_CTX_free(f.md);
    return f.ok ? 0 : -1;
}

/* httpd gives a module no hook between the signal that stops it and the
 * moment its listeners close: the parent closes its own and tells its
 * children at once, a child runs child_stopping as it closes its, and the
 * parent's pconf cleanup (generation_end) comes only once every child has
 * gone.  But `httpd -k stop|graceful-stop` (what apachectl runs) reads the
 * configuration and runs check_config before it reads the pid file and
 * signals the running parent: here, the running member's engine (its socket
 * is named after the parent's pid) tells every member that it leaves, and
 * answers once they took it in (a front has its BalancerMembers out of
 * rotation then), so no request, a POST least of all, is sent to it after
 * httpd is signalled.  A signal sent by other means (kill) gets the goodbye
 * at the end only, as before. */
/* Asks the engine behind the socket 'path' to tell every member now that
 * this one leaves (a GOODBYE frame, sc_engine.c announce_leave), and waits
 * for its answer, at most timeout_ms.  'result' is the engine's sentence or
 * why there was none; 1 when the engine answered that it did. */
static int ask_engine_to_announce(apr_pool_t *p, const char *path, long timeout_ms,
                                  const char **result)
{
    unsigned char req[SC_FRAME_HDR_LEN + 1], reply[SC_IPC_ANSWER_MAX];
    apr_time_t deadline = sc_steady_us() + apr_time_from_msec(timeout_ms);
    sc_frame_hdr h;
    int fd, extra, ok;

    fd = sc_ipc_connect(path);
    if (fd < 0 || sc_ipc_set_wait(fd, timeout_ms) != 0) {
        *result = apr_psprintf(p, "cannot reach the cluster engine at %s: %s", path,
                               strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    memset(&h, 0, sizeof(h));
    h.type = SC_MSG_GOODBYE;
    h.seq = 1;
    h.length = 1;
    sc_frame_hdr_encode(&h, req);
    req[SC_FRAME_HDR_LEN] = SC_MS_LEAVING;
    if (send(fd, req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
        close(fd);
        *result = "cannot send to the cluster engine";
        return 0;
    }
    ok = sc_ipc_read_answer(fd, deadline, reply, &h, &extra);
    close(fd);
    if (!ok) {
        *result = apr_psprintf(p, "no answer from the cluster engine within %ld ms",
                               timeout_ms);
        return 0;
    }
    *result = apr_pstrmemdup(p, (const char *)reply + SC_FRAME_HDR_LEN + 8, h.length - 8);
    return h.type == SC_MSG_ACK;
}

/* The -k argument httpd was started with, or NULL: the MPM's argument
 * parsing (ap_mpm_rewrite_args) takes -k out of process->argv and keeps it
 * to itself, so it is read from the command line as the kernel has it
 * (Linux's /proc/self/cmdline: NUL-separated, at most 64 KiB read). */
static const char *dash_k(apr_pool_t *p)
{
    apr_file_t *f;
    char *buf, *a, *end;
    apr_size_t len = 65536;
    const char *how = NULL;
    if (apr_file_open(&f, "/proc/self/cmdline", APR_FOPEN_READ, APR_OS_DEFAULT, p)
        != APR_SUCCESS) {
        return NULL;
    }
    buf = apr_palloc(p, len + 1);
    if (apr_file_read_full(f, buf, len, &len) != APR_SUCCESS && len == 0) {
        apr_file_close(f);
        return NULL;
    }
    apr_file_close(f);
    buf[len] = '\0';
    end = buf + len;
    /* skip argv[0]; then "-k VALUE" or "-kVALUE" (getopt's two forms) */
    for (a = buf + strlen(buf) + 1; a < end; a += strlen(a) + 1) {
        if (!strcmp(a, "-k") && a + 3 <= end) {
            how = a + 3;
        }
        else if (!strncmp(a, "-k", 2) && a[2]) {
            how = a + 2;
        }
        else if (!strcmp(a, "--")) {
            break;
        }
    }
    return how && how < end ? how : NULL;
}

void sc_supervisor_announce_stop(apr_pool_t *ptemp, server_rec *s)
{
    const char *how = dash_k(ptemp), *path, *result;
    pid_t pid;
    int ok;
    apr_time_t t0;

    if (!how || (strcmp(how, "stop") != 0 && strcmp(how, "graceful-stop") != 0)) {
        return;
    }
    if (ap_read_pid(ptemp, ap_pid_fname, &pid) != APR_SUCCESS || pid <= 0
        || kill(pid, 0) != 0) {
        return;                       /* not running: httpd says so itself */
    }
    path = ap_runtime_dir_relative(ptemp, apr_psprintf(ptemp, "session-cluster.%"
                                                       APR_PID_T_FMT ".sock", pid));
    if (!path || access(path, F_OK) != 0) {
        return;                       /* no engine runs there */
    }
    t0 = sc_steady_us();
    ok = ask_engine_to_announce(ptemp, path, 5000, &result);
    if (!ok) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCLOGNO(1903)
                     "httpd -k %s: the cluster could not be told first that this member "
                     "leaves (%s): it learns it when httpd has stopped, and a front may "
                     "send it requests meanwhile", how, result);
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, SCLOGNO(1904)
                 "httpd -k %s: the cluster was told that this member leaves (%s, %"
                 APR_TIME_T_FMT " ms)", how, result, apr_time_as_msec(sc_steady_us() - t0));
}

int sc_supervisor_post_config(apr_pool_t *pconf, server_rec *s, sc_cluster_cfg *cfg,
                              const char *route, int observer)
{
    sc_retained *r = sc_retained_get(s);
    unsigned char fp[SC_FP_LEN] = { 0 };
    int fp_ok;

    /* a graceful restart into another build of the module: what the parent
     * kept was laid out by that build (its first bytes are no layout number
     * of ours, or another one); reading it would corrupt the sessions */
    if (r->layout != SC_RETAINED_LAYOUT) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1350)
                     "mod_session_cluster was replaced by a build whose shared memory "
                     "is laid out differently (retained layout 0x%08x, this build "
                     "0x%08x): a restart cannot carry the sessions over; stop httpd "
                     "and start it again", (unsigned)r->layout,
                     (unsigned)SC_RETAINED_LAYOUT);
        return !OK;
    }
    /* the same retained layout, and yet segments laid out by another build
     * (a version or a size changed without SC_RETAINED_LAYOUT): refuse
     * before anything here reads or writes them */
    {
        const char *shm_diff = r->shm ? sc_shm_check(r->shm, pconf) : NULL;
        const char *store_diff = r->store ? sc_store_check(r->store, pconf) : NULL;
        if (shm_diff) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1387)
                         "mod_session_cluster was replaced by a build that lays out the "
                         "status segment differently from the one httpd kept: %s; a "
                         "restart cannot carry it over: stop httpd and start it again",
                         shm_diff);
        }
        if (store_diff) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1388)
                         "mod_session_cluster was replaced by a build that lays out the "
                         "session store differently from the one httpd kept: %s; a "
                         "restart cannot carry the sessions over: stop httpd and start "
                         "it again", store_diff);
        }
        if (shm_diff || store_diff) {
            return !OK;
        }
    }
    if (!r->shm) {
        apr_status_t rv = sc_shm_create(s->process->pool, &r->shm);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCLOGNO(1240)
                         "cannot create the cluster's shared memory");
            return !OK;
        }
        if (apr_generate_random_bytes(r->id, sizeof(r->id)) != APR_SUCCESS
            || apr_generate_random_bytes(r->fp_salt, sizeof(r->fp_salt)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1241)
                         "no random bytes for this member's id and its configuration "
                         "fingerprint");
            return !OK;
        }
        r->shm->counters_since = apr_time_now();
    }
    /* a new nonce for the page's actions at every (re)start: a page from
     * before is stale */
    {
        unsigned char nb[16];
        int k;
        if (apr_generate_random_bytes(nb, sizeof(nb)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCLOGNO(1283)
                         "no random bytes for the status page's nonce");
            return !OK;
        }
        for (k = 0; k < 16; k++) {
            apr_snprintf(r->shm->nonce + 2 * k, 3, "%02x", nb[k]);
        }
    }
    r->s = s;
    r->pconf = pconf;
    apr_pool_cleanup_register(pconf, r, generation_end, apr_pool_cleanup_null);

    if (!cfg) {
        if (r->engine_pid > 0) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SCLOGNO(1242)
                         "the <Cluster> block is gone: the cluster engine leaves");
            engine_stop_wait(r, SIGTERM);
        }
        return OK;
    }
    if (cfg->set->local_unique_id) {
        memcpy(r->id, cfg->set->local_unique_id, 16);
    }
    if (!observer && store_ready(r, s, cfg->set) != OK) {
        return !OK;
    }
    if (!observer && !r->ring) {
        /* made once, in the parent, before the engine and the children are
         * forked: all of them map it at the same address */
        r->ring = sc_ring_create();
        if (!r->ring) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s, SCLOGNO(2101)
                         "no shared memory for the children's hand-offs to the cluster "
                         "engine: asynchronous changes go over its socket, one system "
                         "call each");
        }
    }
    if (!observer) {
        /* how long an id not held here stays dead after a removal */
        sc_store_set_tomb_default(r->store,
                                  cfg->set->max_inactive_s);
        /* how long a session that saw a single request may idle */
        sc_store_set_probation(r->store, cfg->set->probation_s);
    }
    fp_ok = fingerprint(r, pconf, cfg, route, observer, fp) == 0;
    if (!fp_ok) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCLOGNO(1320)
                     "cannot compute the fingerprint of the cluster configuration "
                     "(OpenSSL's SHA-256 failed): the configuration is taken as changed");
    }
    r->cfg = cfg;
    r->route = route;
    r->observer = observer;

    if (r->engine_pid > 0 && kill(r->engine_pid, 0) == 0) {
        if (fp_ok && r->fingerprint_set && memcmp(fp, r->fingerprint, SC_FP_LEN) == 0) {
            /* the same cluster configuration: the engine carries on */
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, SCLOGNO(1243)
                         "cluster configuration unchanged: engine pid %" APR_PID_T_FMT
                         " carries on", r->engine_pid);
            if (!r->registered) {
                apr_proc_other_child_register(&r->proc, engine_maint, r, NULL, pconf);
                r->registered = 1;
            }
            return OK;
        }
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SCLOGNO(1244)
                     "cluster configuration changed: replacing engine pid %"
                     APR_PID_T_FMT, r->engine_pid);
        engine_stop_wait(r, SIGUSR2);
    }
    memcpy(r->fingerprint, fp, SC_FP_LEN);
    r->fingerprint_set = fp_ok;
    return engine_spawn(r) == 0 ? OK : !OK;
}
