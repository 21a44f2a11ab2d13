/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_supervisor.c -- the parent side of the cluster engine (see sc_supervisor.h):
 * post_config starts the engine, keeps it when the cluster configuration is
 * unchanged, or replaces it; httpd's "other child" registry restarts it if it
 * dies; the end of the last generation stops it.
 */
#include "sc_supervisor.h"
#include "sc_engine.h"

#include "ap_mpm.h"
#include "mpm_common.h"

#include <openssl/evp.h>

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

APLOG_USE_MODULE(session_cluster);

#define SC_DEFAULT_CAPACITY 10000     /* sessions, when maxActiveSessions is -1 */

static const char retained_key[] = "mod_session_cluster";

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
 * the route and the role, salted with random bytes drawn when httpd started.
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
    if (f.ok && (EVP_DigestFinal_ex(f.md, out, &n) != 1 || n != SC_FP_LEN)) {
        f.ok = 0;
    }
    EVP_MD_CTX_free(f.md);
    return f.ok ? 0 : -1;
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
    if (!observer) {
        long cap = cfg->set->max_active_sessions;
        long slot = cfg->set->max_session_size;
        if (cap <= 0) {
            cap = SC_DEFAULT_CAPACITY;
        }
        if (!r->store) {
            apr_status_t rv = sc_store_create(s->process->pool, (apr_uint32_t)cap,
                                              (apr_uint32_t)slot, &r->store);
            if (rv != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCLOGNO(1247)
                             "cannot create the session store (%ld sessions of %ld "
                             "bytes)", cap, slot);
                return !OK;
            }
            r->store_capacity = (apr_uint32_t)cap;
            r->store_slot = (apr_uint32_t)slot;
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, SCLOGNO(1248)
                         "session store: %ld sessions of up to %ld bytes", cap, slot);
        }
        else if (r->store_capacity != (apr_uint32_t)cap
                 || r->store_slot != (apr_uint32_t)slot) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCLOGNO(1249)
                         "the session store keeps %u sessions of %u bytes until httpd "
                         "is stopped and started: a restart keeps the sessions, so it "
                         "cannot resize the store", r->store_capacity, r->store_slot);
        }
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
