/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_engine.c -- the engine's lifecycle and event loop (see sc_engine.h for why
 * it is a daemon of the parent process that outlives restarts).
 *
 *   parent, post_config ----fork----> engine: receiver, multicast, peers,
 *        |   (first start, config              local socket for children,
 *        |    change, or engine death)         shm writer
 *        |
 *        +-- children read the shm; they reach the engine over its local
 *            socket (session-cluster.<parent pid>.sock in DefaultRuntimeDir)
 */
#include "sc_engine.h"
#include "sc_crypto.h"

#include "ap_mpm.h"
#include "ap_listen.h"
#include "mpm_common.h"
#include "apr_hash.h"

#include <openssl/evp.h>

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#include <sys/un.h>

APLOG_USE_MODULE(session_cluster);

#define SC_POLL_MAX 4096
/* Exit status of an engine that cannot start: do not restart it.  httpd's
 * MPMs hand the maintenance function the exit code alone (or the number of
 * the signal), APR's own reaping the raw wait status: 78 reads the same way
 * in both, as no signal has that number. */
#define SC_ENGINE_STARTUP_ERROR 78
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
/* The engine process                                                         */
/* ------------------------------------------------------------------------- */

static volatile sig_atomic_t engine_stop = 0;

static void on_term(int sig)
{
    engine_stop = 1;                  /* leave: goodbye */
}

static void on_usr2(int sig)
{
    engine_stop = 2;                  /* being replaced: announce a restart */
}

static sc_elem_t *find_interceptor(sc_cluster_cfg *cfg, sc_class_id id)
{
    int i;
    for (i = 0; i < cfg->interceptors->nelts; i++) {
        sc_elem_t *el = APR_ARRAY_IDX(cfg->interceptors, i, sc_elem_t *);
        if (el->cls->id == id) {
            return el;
        }
    }
    return NULL;
}

/* What the block asks of the engine; reports interceptors it does not run. */
static int engine_settings(sc_engine *e)
{
    sc_cluster_cfg *cfg = e->cfg;
    sc_elem_t *m = cfg->membership, *el;
    long start = sc_elem_num(cfg->cluster, "channelStartOptions");
    const char *missing = NULL;
    int i;

    e->use_mcast_rx = m->cls->id == SC_C_MCAST_SERVICE && (start & 4);
    e->use_mcast_tx = m->cls->id == SC_C_MCAST_SERVICE && (start & 8);
    e->frequency_ms = sc_cfg_heartbeat_ms(cfg);
    e->drop_ms = sc_elem_num(m, m->cls->id == SC_C_MCAST_SERVICE ? "dropTime"
                                                                 : "expirationTime");
    /* TcpPingInterceptor: TCP pings more often than the heartbeats, never
     * the multicast heartbeat itself */
    e->ping_interval_ms = sc_cfg_tcp_ping_ms(cfg);
    el = find_interceptor(cfg, SC_C_TCP_FAILURE_DETECTOR);
    e->has_tcp_fd = el != NULL;
    e->check_timeout_ms = el ? sc_elem_num(el, "connectTimeout") : 1000;
    el = find_interceptor(cfg, SC_C_THROUGHPUT);
    e->has_throughput = el != NULL;
    e->throughput_interval = el ? sc_elem_num(el, "interval") : 0;
    e->send_timeout_ms = sc_elem_num(cfg->transport, "timeout");
    e->max_retries = sc_elem_num(cfg->transport, "maxRetryAttempts");
    e->max_message = (apr_uint32_t)sc_elem_num(cfg->receiver, "maxMessageSize");
    e->send_options = sc_elem_num(cfg->cluster, "channelSendOptions");

    /* the domain: DomainFilterInterceptor's, else the membership's */
    el = find_interceptor(cfg, SC_C_DOMAIN_FILTER);
    {
        const sc_value_t *d = el ? sc_elem_value(el, "domain")
                                 : (m->cls->id == SC_C_MCAST_SERVICE
                                        ? sc_elem_value(m, "domain") : NULL);
        if ((!d || !d->nbytes) && cfg->local_member) {
            d = sc_elem_value(cfg->local_member, "domain");
        }
        if (d && d->nbytes) {
            e->domain_len = d->nbytes > SC_DOMAIN_MAX ? SC_DOMAIN_MAX : d->nbytes;
            memcpy(e->domain, d->bytes, (size_t)e->domain_len);
        }
        e->has_domain_filter = el != NULL;
    }

    for (i = 0; i < cfg->interceptors->nelts; i++) {
        el = APR_ARRAY_IDX(cfg->interceptors, i, sc_elem_t *);
        switch (el->cls->id) {
        case SC_C_ENCRYPT: {
            const sc_value_t *k = sc_elem_value(el, "encryptionKey");
            const sc_value_t *pk = sc_elem_value(el, "previousEncryptionKey");
            const char *alg = sc_elem_str(el, "encryptionAlgorithm");
            const char *err;
            if (!k || !k->nbytes) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1230)
                             "EncryptInterceptor (%s:%d) has no encryptionKey: the engine "
                             "does not start rather than send in clear", el->file, el->line);
                return -1;
            }
            err = sc_crypto_create(e->pool, k->bytes, k->nbytes,
                                   pk && pk->nbytes ? pk->bytes : NULL,
                                   pk ? pk->nbytes : 0, &e->crypto);
            if (err) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1291)
                             "EncryptInterceptor (%s:%d): %s: the engine does not start",
                             el->file, el->line, err);
                return -1;
            }
            if (alg && strncasecmp(alg, "AES/GCM", 7) != 0) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1292)
                             "EncryptInterceptor (%s:%d): encryptionAlgorithm %s is not "
                             "authenticated; cluster traffic uses AES-%d-GCM instead",
                             el->file, el->line, alg, k->nbytes * 8);
            }
            break;
        }
        default:
            if (!sc_interceptor_runs(el->cls->id)) {
                missing = missing ? apr_pstrcat(e->pool, missing, ", ",
                                                el->cls->short_name, NULL)
                                  : el->cls->short_name;
            }
        }
    }
    if (!e->crypto) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1293)
                     "cluster traffic is not authenticated: anybody who can reach the "
                     "Receiver or the multicast group can join and send sessions; add an "
                     "EncryptInterceptor with an encryptionKey to the <Cluster> block, or "
                     "keep the cluster on a trusted network");
    }
    {
        /* what the interceptors that run do here, where Tomcat's differ */
        apr_array_header_t *notes = sc_cfg_interceptor_notes(e->pool, cfg);
        for (i = 0; i < notes->nelts; i++) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1331) "%s",
                         APR_ARRAY_IDX(notes, i, const char *));
        }
    }
    if (missing) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1231)
                     "interceptors named in the <Cluster> block but not implemented, "
                     "so not run: %s", missing);
        apr_cpystrn(e->shm->not_implemented, missing, sizeof(e->shm->not_implemented));
    }
    return 0;
}

void sc_engine_answer(sc_engine *e, sc_conn *ipc, apr_uint64_t ipc_seq, int ok,
                      double ms, const char *text)
{
    unsigned char buf[8 + 256];
    apr_size_t tl = strlen(text);
    if (!ipc || ipc->state == SC_CS_CLOSED) {
        return;
    }
    if (tl > 256) {
        tl = 256;
    }
    sc_put64(buf, (apr_uint64_t)(ms * 1000.0));
    memcpy(buf + 8, text, tl);
    sc_tr_send_frame(e, ipc, ok ? SC_MSG_ACK : SC_MSG_FAIL_ACK, 0, ipc_seq, buf, 8 + tl);
}

void sc_engine_ack(sc_engine *e, sc_peer *p, sc_conn *c, apr_uint64_t seq, int ok,
                   const char *why)
{
    unsigned char buf[8 + 200];
    apr_size_t wl = why ? strlen(why) : 0;
    if (!c || c->state != SC_CS_OPEN) {
        /* deferred: any open connection to that member will do */
        for (c = e->conns; c; c = c->next) {
            if (c->peer == p && c->state == SC_CS_OPEN && c->kind != SC_CONN_IPC) {
                break;
            }
        }
        if (!c && p) {
            c = p->out;
        }
        if (!c || c->state == SC_CS_CLOSED) {
            return;                   /* gone: its own timeout answers its child */
        }
    }
    if (wl > 200) {
        wl = 200;
    }
    sc_put64(buf, seq);
    if (wl) {
        memcpy(buf + 8, why, wl);
    }
    e->shm->c.acks_out++;
    sc_tr_send_frame(e, c, ok ? SC_MSG_ACK : SC_MSG_FAIL_ACK, 0, ++e->seq, buf, 8 + wl);
}

/* One member's share of a broadcast is settled: answer when all are. */
static void group_settle(sc_engine *e, sc_pending *pd, int ok, const char *why)
{
    sc_group *g = pd->group;
    if (!ok) {
        if (!g->failed++) {
            apr_cpystrn(g->first_error, why, sizeof(g->first_error));
        }
    }
    if (--g->waiting == 0) {
        double ms = (double)(apr_time_now() - g->started) / 1000.0;
        if (g->failed) {
            sc_engine_answer(e, g->ipc, g->ipc_seq, 0, ms,
                             apr_psprintf(e->tmp, "%d of %d member(s) did not "
                                          "acknowledge: %s", g->failed, g->sent,
                                          g->first_error));
        }
        else {
            sc_engine_answer(e, g->ipc, g->ipc_seq, 1, ms,
                             apr_psprintf(e->tmp, "acknowledged by %d member(s)",
                                          g->sent));
        }
        free(g);
    }
    pd->group = NULL;
}

static void pending_remove(sc_engine *e, sc_pending *pd)
{
    sc_pending **pp;
    for (pp = &e->pending; *pp; pp = &(*pp)->next) {
        if (*pp == pd) {
            *pp = pd->next;
            break;
        }
    }
    free(pd->frame);
    free(pd);
}

void sc_engine_on_ack(sc_engine *e, sc_conn *c, apr_uint64_t seq, int ok,
                      const char *reason)
{
    sc_pending *pd;
    e->shm->c.acks_in++;
    for (pd = e->pending; pd; pd = pd->next) {
        if (pd->seq == seq && pd->peer == c->peer) {
            double ms = (double)(apr_time_now() - pd->started) / 1000.0;
            if (pd->group) {
                group_settle(e, pd, ok, apr_psprintf(e->tmp, "%s: %s", pd->peer->route,
                                                     reason ? reason : "refused"));
            }
            else if (ok) {
                sc_engine_answer(e, pd->ipc, pd->ipc_seq, 1, ms,
                                 apr_psprintf(e->tmp, "acknowledged by %s",
                                              pd->peer->route));
            }
            else {
                e->shm->c.send_failures++;
                pd->peer->c.send_failures++;
                sc_engine_answer(e, pd->ipc, pd->ipc_seq, 0, ms,
                                 apr_psprintf(e->tmp, "%s refused the message: %s",
                                              pd->peer->route, reason ? reason : "?"));
            }
            pending_remove(e, pd);
            return;
        }
    }
    if (!ok && seq == 0 && reason) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1232)
                     "member at %s refused this member: %s", c->remote, reason);
    }
}

static void pending_tick(sc_engine *e, apr_time_t now)
{
    sc_pending *pd, *next;
    for (pd = e->pending; pd; pd = next) {
        int gone;
        next = pd->next;
        /* a member found dead or gone will not answer: do not wait for it */
        gone = pd->peer->view == SC_VIEW_DEAD || pd->peer->view == SC_VIEW_LEFT
               || pd->peer->view == SC_VIEW_REFUSED;
        if (gone) {
            e->shm->c.send_failures++;
            pd->peer->c.send_failures++;
            if (pd->group) {
                /* a member that is no longer live is not waited for: the
                 * change is on every live member */
                group_settle(e, pd, 1, NULL);
            }
            else {
                sc_engine_answer(e, pd->ipc, pd->ipc_seq, 0,
                                 (double)(now - pd->started) / 1000.0,
                                 apr_psprintf(e->tmp, "%s is %s", pd->peer->route,
                                              sc_view_name(pd->peer->view)));
            }
            pending_remove(e, pd);
        }
        else if (now > pd->deadline && pd->group) {
            e->shm->c.ack_timeouts++;
            pd->peer->c.ack_timeouts++;
            e->shm->c.send_failures++;
            pd->peer->c.send_failures++;
            group_settle(e, pd, 0, apr_psprintf(e->tmp, "no ACK from %s within %ld ms",
                                                pd->peer->route, e->send_timeout_ms));
            pending_remove(e, pd);
        }
        else if (now > pd->deadline) {
            e->shm->c.ack_timeouts++;
            pd->peer->c.ack_timeouts++;
            e->shm->c.send_failures++;
            pd->peer->c.send_failures++;
            sc_engine_answer(e, pd->ipc, pd->ipc_seq, 0,
                             (double)(now - pd->started) / 1000.0,
                             apr_psprintf(e->tmp, "no ACK from %s within %ld ms "
                                          "(Transport timeout)", pd->peer->route,
                                          e->send_timeout_ms));
            pending_remove(e, pd);
        }
    }
}

static int pending_listed(sc_engine *e, const sc_pending *pd)
{
    const sc_pending *q;
    for (q = e->pending; q; q = q->next) {
        if (q == pd) {
            return 1;
        }
    }
    return 0;
}

void sc_engine_conn_broken(sc_engine *e, sc_conn *c)
{
    sc_peer *p = c->peer;
    sc_pending *pd;
    apr_uint64_t round;
    int goodbye = c->goodbye;

    sc_tr_close(e, c, "closed by the other side");
    if (c->kind == SC_CONN_IPC || !p) {
        return;
    }
    if (!goodbye) {
        sc_mb_on_conn_lost(e, p, "closed without goodbye");
    }
    /* acknowledged sends in flight on it: retry (maxRetryAttempts) or fail.
     * A retry can break the new connection at once, and that call settles
     * and frees entries of this list: start over after every step. */
    round = ++e->broken_round;
again:
    for (pd = e->pending; pd; pd = pd->next) {
        if (pd->peer != p || pd->round == round) {
            continue;
        }
        pd->round = round;
        if (pd->tries <= e->max_retries && p->view == SC_VIEW_ALIVE) {
            pd->tries++;
            sc_tr_connect(e, p);
            pd->seq = ++e->seq;       /* a number of its own, as every frame */
            if (p->out && sc_tr_send_frame(e, p->out, SC_MSG_DATA, SC_FF_ACK, pd->seq,
                                           pd->frame, pd->frame_len) == 0) {
                goto again;
            }
            if (!pending_listed(e, pd)) {
                goto again;           /* settled by the failure of that send */
            }
        }
        e->shm->c.send_failures++;
        p->c.send_failures++;
        if (pd->group) {
            int gone = p->view == SC_VIEW_DEAD || p->view == SC_VIEW_LEFT;
            group_settle(e, pd, gone, apr_psprintf(e->tmp, "connection to %s lost",
                                                   p->route));
        }
        else {
            sc_engine_answer(e, pd->ipc, pd->ipc_seq, 0,
                             (double)(apr_time_now() - pd->started) / 1000.0,
                             apr_psprintf(e->tmp, "connection to %s lost (%s)", p->route,
                                          sc_view_name(p->view)));
        }
        pending_remove(e, pd);
        goto again;
    }
}

static sc_pending *pending_new(sc_engine *e, sc_peer *p, apr_uint64_t seq,
                               const unsigned char *msg, apr_size_t len)
{
    sc_pending *pd = calloc(1, sizeof(*pd));
    if (!pd) {
        return NULL;
    }
    pd->seq = seq;
    pd->peer = p;
    pd->started = apr_time_now();
    pd->deadline = pd->started + apr_time_from_msec(e->send_timeout_ms);
    pd->tries = 1;
    pd->frame_len = len;
    pd->frame = malloc(len ? len : 1);
    if (pd->frame) {
        memcpy(pd->frame, msg, len);
    }
    pd->next = e->pending;
    e->pending = pd;
    return pd;
}

static int broadcast_target(const sc_peer *p)
{
    return p->view == SC_VIEW_ALIVE && !p->observer;
}

/* Sends a DeltaManager message to every live member, without waiting. */
int sc_dm_broadcast(sc_engine *e, const void *msg, apr_size_t len, sc_peer *except)
{
    sc_peer *p;
    int n = 0;
    for (p = e->peers; p; p = p->next) {
        if (p == except || !broadcast_target(p)) {
            continue;
        }
        if (!p->out) {
            sc_tr_connect(e, p);
        }
        if (p->out && sc_tr_send_frame(e, p->out, SC_MSG_DATA, 0, ++e->seq, msg, len) == 0) {
            n++;
        }
    }
    return n;
}

static void broadcast_request(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                              const unsigned char *msg, apr_size_t len, int acked)
{
    sc_peer *p;
    sc_group *g = NULL;

    e->store->hdr->replicated_out++;
    if (!acked) {
        /* asynchronous: the child does not wait for an answer */
        e->shm->ic.dispatch_async++;
        sc_dm_broadcast(e, msg, len, NULL);
        return;
    }
    for (p = e->peers; p; p = p->next) {
        sc_pending *pd;
        if (!broadcast_target(p)) {
            continue;
        }
        if (!g) {
            g = calloc(1, sizeof(*g));
            if (!g) {
                break;
            }
            g->ipc = c;
            g->ipc_seq = h->seq;
            g->started = apr_time_now();
        }
        if (!p->out) {
            sc_tr_connect(e, p);
        }
        ++e->seq;
        if (!p->out
            || sc_tr_send_frame(e, p->out, SC_MSG_DATA, SC_FF_ACK, e->seq, msg, len) != 0) {
            /* a live member this could not be sent to (no connection, or its
             * send queue full: QueueFull) does not have the change: not
             * acknowledged, unless that failure found it gone meanwhile (a
             * member that died is not waited for) */
            e->shm->c.send_failures++;
            p->c.send_failures++;
            g->sent++;
            if (broadcast_target(p)) {
                g->failed++;
                if (g->failed == 1) {
                    apr_snprintf(g->first_error, sizeof(g->first_error),
                                 "send to %s failed", p->route);
                }
            }
            continue;
        }
        pd = pending_new(e, p, e->seq, msg, len);
        if (pd) {
            pd->group = g;
            pd->ipc = c;
            g->waiting++;
            g->sent++;
        }
    }
    if (g && g->waiting == 0 && g->failed) {
        /* nothing left to wait for, and a live member did not get it */
        sc_engine_answer(e, c, h->seq, 0, (double)(apr_time_now() - g->started) / 1000.0,
                         apr_psprintf(e->tmp, "%d of %d member(s) did not acknowledge: %s",
                                      g->failed, g->sent, g->first_error));
        free(g);
    }
    else if (!g || g->waiting == 0) {
        free(g);
        sc_engine_answer(e, c, h->seq, 1, 0, "no other member to replicate to");
    }
}

/* A request from a child: [route length][route][message]. */
void sc_engine_on_ipc(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                      const unsigned char *payload)
{
    char route[SC_ROUTE_MAX + 1];
    apr_size_t rlen;
    sc_peer *p;
    int acked = (h->flags & SC_FF_ACK) != 0;

    if (h->type != SC_MSG_DATA || h->length < 1
        || payload[0] > SC_ROUTE_MAX || h->length < 1u + payload[0]) {
        sc_engine_answer(e, c, h->seq, 0, 0, "malformed request");
        return;
    }
    rlen = payload[0];
    if (rlen == 0) {
        /* replication: to every live member */
        broadcast_request(e, c, h, payload + 1, h->length - 1, acked);
        return;
    }
    memcpy(route, payload + 1, rlen);
    route[rlen] = '\0';
    p = sc_mb_find_route(e, route);
    if (!p) {
        sc_engine_answer(e, c, h->seq, 0, 0,
                         apr_psprintf(e->tmp, "no member has route %s", route));
        return;
    }
    if (p->view != SC_VIEW_ALIVE) {
        sc_engine_answer(e, c, h->seq, 0, 0,
                         apr_psprintf(e->tmp, "member %s is %s", route,
                                      sc_view_name(p->view)));
        return;
    }
    if (!p->out) {
        sc_tr_connect(e, p);
    }
    if (!p->out) {
        sc_engine_answer(e, c, h->seq, 0, 0,
                         apr_psprintf(e->tmp, "cannot connect to %s", route));
        return;
    }
    ++e->seq;
    if (sc_tr_send_frame(e, p->out, SC_MSG_DATA, acked ? SC_FF_ACK : 0, e->seq,
                         payload + 1 + rlen, h->length - 1 - rlen) != 0) {
        e->shm->c.send_failures++;
        p->c.send_failures++;
        sc_engine_answer(e, c, h->seq, 0, 0,
                         apr_psprintf(e->tmp, "send to %s failed", route));
        return;
    }
    if (!acked) {
        sc_engine_answer(e, c, h->seq, 1, 0,
                         apr_psprintf(e->tmp, "sent to %s without acknowledgement", route));
        return;
    }
    {
        sc_pending *pd = pending_new(e, p, e->seq, payload + 1 + rlen,
                                     h->length - 1 - rlen);
        if (!pd) {
            sc_engine_answer(e, c, h->seq, 0, 0, "out of memory");
            return;
        }
        pd->ipc = c;
        pd->ipc_seq = h->seq;
    }
}

static void publish_self(sc_engine *e)
{
    sc_shm_t *shm = e->shm;
    sc_pending *pd;
    sc_conn *c;
    apr_uint32_t npending = 0;
    apr_uint64_t unsent = 0;
    for (pd = e->pending; pd; pd = pd->next) {
        npending++;
    }
    for (c = e->conns; c; c = c->next) {
        if (c->state != SC_CS_CLOSED && c->wlen > c->woff) {
            unsent += c->wlen - c->woff;
        }
    }
    sc_shm_write_begin(&shm->seq);
    shm->published_at = apr_time_now();
    shm->parent_pid = (apr_uint32_t)e->parent;
    shm->pending_acks = npending;
    shm->queue_depth = npending;
    shm->queue_bytes = unsent;
    shm->engine_pid = getpid();
    shm->engine_state = (apr_uint32_t)e->state;
    shm->engine_started = e->started;
    shm->incarnation = e->incarnation;
    memcpy(shm->self_id, e->id, 16);
    apr_cpystrn(shm->self_route, e->route, sizeof(shm->self_route));
    apr_cpystrn(shm->self_addr, e->self_addr, sizeof(shm->self_addr));
    shm->self_port = (apr_uint32_t)e->self_port;
    memcpy(shm->self_domain, e->domain, (size_t)e->domain_len);
    shm->self_domain[e->domain_len] = '\0';
    apr_cpystrn(shm->membership, e->cfg->membership->cls->short_name,
                sizeof(shm->membership));
    if (e->mcast_fd >= 0) {
        apr_snprintf(shm->mcast, sizeof(shm->mcast), "%s:%ld",
                     sc_elem_str(e->cfg->membership, "address"),
                     sc_elem_num(e->cfg->membership, "port"));
    }
    else {
        shm->mcast[0] = '\0';
    }
    apr_cpystrn(shm->ipc_path, e->ipc_path, sizeof(shm->ipc_path));
    sc_shm_write_end(&shm->seq);
}

static void throughput_tick(sc_engine *e)
{
    apr_uint64_t total = e->shm->c.msgs_in + e->shm->c.msgs_out;
    double secs;
    if (!e->has_throughput || e->throughput_interval <= 0) {
        return;
    }
    if (total - e->thr_last_msgs < (apr_uint64_t)e->throughput_interval) {
        return;
    }
    e->thr_last_msgs = total;
    e->shm->throughput_msgs = total;
    e->shm->ic.throughput_reports++;
    secs = (double)(apr_time_now() - e->started) / 1e6;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1233)
                 "ThroughputInterceptor: tx %" APR_UINT64_T_FMT " messages, %.2f MB; rx %"
                 APR_UINT64_T_FMT " messages, %.2f MB; %.1f messages/s since start",
                 e->shm->c.msgs_out, (double)e->shm->c.bytes_out / 1048576.0,
                 e->shm->c.msgs_in, (double)e->shm->c.bytes_in / 1048576.0,
                 secs > 0 ? (double)total / secs : 0.0);
}

/* Tells every member we are leaving (or restarting), then closes everything. */
static void leave(sc_engine *e, int restarting)
{
    sc_peer *p;
    sc_conn *c;
    unsigned char st = restarting ? SC_MS_RESTARTING : SC_MS_LEAVING;
    apr_time_t until;

    if (!restarting) {
        sc_dm_shutdown(e);
    }
    e->state = st;
    publish_self(e);
    sc_tr_mcast_send(e, st);
    sc_tr_mcast_send(e, st);
    for (p = e->peers; p; p = p->next) {
        if (p->out && p->out->state == SC_CS_OPEN) {
            sc_tr_send_frame(e, p->out, SC_MSG_GOODBYE, 0, ++e->seq, &st, 1);
        }
    }
    for (c = e->conns; c; c = c->next) {
        if (c->kind == SC_CONN_IN && c->state == SC_CS_OPEN && c->peer
            && (!c->peer->out || c->peer->out->state != SC_CS_OPEN)) {
            sc_tr_send_frame(e, c, SC_MSG_GOODBYE, 0, ++e->seq, &st, 1);
        }
    }
    /* let the goodbyes out, briefly */
    until = apr_time_now() + apr_time_from_msec(300);
    while (apr_time_now() < until) {
        struct pollfd pfds[SC_POLL_MAX];
        int n = 0, pending = 0;
        for (c = e->conns; c && n < SC_POLL_MAX; c = c->next) {
            if (c->state == SC_CS_OPEN && c->woff < c->wlen) {
                pfds[n].fd = c->fd;
                pfds[n++].events = POLLOUT;
                pending = 1;
            }
        }
        if (!pending) {
            break;
        }
        if (poll(pfds, n, 50) > 0) {
            sc_tr_handle(e, pfds, n);
        }
    }
    for (c = e->conns; c; c = c->next) {
        if (c->state != SC_CS_CLOSED) {
            shutdown(c->fd, SHUT_WR);
            sc_tr_close(e, c, "engine stopping");
        }
    }
    if (e->ipc_path[0]) {
        unlink(e->ipc_path);
    }
    sc_shm_write_begin(&e->shm->seq);
    e->shm->engine_pid = 0;
    e->shm->engine_state = st;
    sc_shm_write_end(&e->shm->seq);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1234)
                 "cluster engine %s: %s", restarting ? "replaced" : "stopped",
                 restarting ? "peers were told it restarts" : "peers were told it left");
}

/* A page action asked for another state: draining or ready, from ready or
 * draining (a starting member finishes its state transfer first). */
static void take_requested_state(sc_engine *e)
{
    apr_uint32_t want = __atomic_exchange_n(&e->shm->requested_state, 0, __ATOMIC_ACQ_REL);
    if ((want != SC_MS_DRAINING && want != SC_MS_READY)
        || (e->state != SC_MS_READY && e->state != SC_MS_DRAINING)
        || e->state == (int)want) {
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1282)
                 "this member is now %s (was %s), as asked on the status page",
                 sc_member_state_name((int)want), sc_member_state_name(e->state));
    e->state = (int)want;
    publish_self(e);
    e->next_heartbeat = 0;            /* tell the others now */
}

/* The page's other actions. */
static void take_requested_actions(sc_engine *e)
{
    apr_uint32_t a = __atomic_exchange_n(&e->shm->requested_actions, 0, __ATOMIC_ACQ_REL);
    if ((a & SC_ACT_EXPIRE_ALL) && e->store && !e->observer) {
        apr_uint32_t n = sc_dm_expire_all(e);
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1287)
                     "%u session(s) expired on every member, as asked on the status page",
                     n);
    }
    if (a & SC_ACT_RESET_COUNTERS) {
        sc_peer *p;
        memset(&e->shm->c, 0, sizeof(e->shm->c));
        memset(&e->shm->ic, 0, sizeof(e->shm->ic));
        for (p = e->peers; p; p = p->next) {
            memset(&p->c, 0, sizeof(p->c));
        }
        if (e->store) {
            sc_store_hdr *h = e->store->hdr;
            h->created = h->updated = h->removed = h->expired = 0;
            h->rejected_full = h->rejected_size = 0;
            h->replicated_in = h->replicated_out = h->transfer_in = h->transfer_out = 0;
            h->rebound = 0;
            h->writes_undone = 0;
        }
        e->shm->counters_since = apr_time_now();
        sc_mb_publish(e);
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1288)
                     "counters reset, as asked on the status page");
    }
    if ((a & SC_ACT_TRANSFER) && e->store && !e->observer
        && (e->state == SC_MS_READY || e->state == SC_MS_DRAINING)) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1289)
                     "state transfer asked on the status page: this member is starting "
                     "again until it has every session");
        sc_dm_redo_transfer(e);
        publish_self(e);
        e->next_heartbeat = 0;
    }
}

static void engine_run(sc_retained *r) __attribute__((noreturn));

static void engine_run(sc_retained *r)
{
    sc_engine *e;
    apr_pool_t *pool;
    sigset_t none;
    struct sigaction sa;
    static struct pollfd pfds[SC_POLL_MAX];

    /* httpd's parent handlers do not belong here */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);

    ap_close_listeners();
    apr_pool_create(&pool, NULL);
    apr_pool_tag(pool, "session_cluster_engine");
    e = apr_pcalloc(pool, sizeof(*e));
    e->pool = pool;
    apr_pool_create(&e->tmp, pool);
    apr_pool_create(&e->frame_tmp, pool);
    e->s = r->s;
    e->cfg = r->cfg;
    e->shm = r->shm;
    e->store = r->store;
    e->route = r->route;
    e->observer = r->observer;
    e->parent = getppid();
    memcpy(e->id, r->id, SC_ID_LEN);
    e->started = apr_time_now();
    e->incarnation = (apr_uint64_t)e->started;
    e->state = SC_MS_STARTING;
    e->listen_fd = e->mcast_fd = e->ipc_fd = -1;

    if (engine_settings(e) != 0) {
        _exit(SC_ENGINE_STARTUP_ERROR);
    }
    if (sc_tr_listen(e) != 0 || sc_tr_ipc_listen(e) != 0) {
        _exit(SC_ENGINE_STARTUP_ERROR);
    }
    if ((e->use_mcast_rx || e->use_mcast_tx) && sc_tr_mcast_open(e) != 0) {
        /* static members (if any) still work; the status page shows it */
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1245)
                     "multicast membership is not available: this member neither "
                     "sends nor hears heartbeats by multicast");
        e->use_mcast_rx = e->use_mcast_tx = 0;
    }
    if (ap_run_drop_privileges(pool, e->s) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1235)
                     "cluster engine cannot drop its privileges");
        _exit(SC_ENGINE_STARTUP_ERROR);
    }
    sc_mb_init(e);
    if (e->cfg->membership->cls->id == SC_C_CLOUD_MEMBERSHIP_SERVICE
        && sc_cloud_start(e) != 0) {
        _exit(SC_ENGINE_STARTUP_ERROR);
    }
    sc_shm_write_begin(&e->shm->seq);
    e->shm->engine_starts++;
    sc_shm_write_end(&e->shm->seq);
    /* starting until the state transfer (sc_manager.c) is done */
    e->state = e->store && !e->observer ? SC_MS_STARTING : SC_MS_READY;
    publish_self(e);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1236)
                 "cluster engine started (pid %" APR_PID_T_FMT "): route %s, receiver "
                 "%s:%d, membership %s%s, %d static member(s)", getpid(), e->route,
                 e->self_addr, e->self_port, e->cfg->membership->cls->short_name,
                 e->mcast_fd >= 0 ? " (multicast)" : "", e->cfg->members->nelts);

    while (!engine_stop) {
        apr_time_t now = apr_time_now();
        int n;
        apr_pool_clear(e->tmp);
        if (getppid() != e->parent) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1237)
                         "httpd's parent process is gone: the cluster engine leaves");
            break;
        }
        sc_cloud_tick(e);
        sc_mb_tick(e, now);
        if (e->store) {
            sc_dm_tick(e, now);
        }
        pending_tick(e, now);
        sc_tr_tick(e, now);
        throughput_tick(e);
        if (e->shm->requested_state) {
            take_requested_state(e);
        }
        if (e->shm->requested_actions) {
            take_requested_actions(e);
        }
        if (now >= e->next_publish) {
            e->next_publish = now + apr_time_from_msec(100);
            publish_self(e);
            sc_mb_publish(e);
        }
        n = sc_tr_pollfds(e, pfds, SC_POLL_MAX);
        if (poll(pfds, (nfds_t)n, 50) > 0) {
            sc_tr_cork(e);
            sc_tr_handle(e, pfds, n);
            sc_tr_uncork(e);
        }
    }
    sc_cloud_stop(e);
    leave(e, engine_stop == 2);
    sc_mb_publish(e);
    _exit(0);
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
        engine_run(r);
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

int sc_engine_post_config(apr_pool_t *pconf, server_rec *s, sc_cluster_cfg *cfg,
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
    if (cfg->local_member) {
        const sc_value_t *u = sc_elem_value(cfg->local_member, "uniqueId");
        if (u && u->nbytes == 16) {
            memcpy(r->id, u->bytes, 16);
        }
    }
    if (!observer) {
        long cap = sc_elem_num(cfg->manager, "maxActiveSessions");
        long slot = sc_elem_num(cfg->manager, "maxSessionSize");
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
                                  sc_elem_num(cfg->manager, "maxInactiveInterval"));
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

/* ------------------------------------------------------------------------- */
/* Child side                                                                 */
/* ------------------------------------------------------------------------- */

/* Each child thread keeps one connection to the engine (a request is answered
 * before the next is sent on it); a fork or a replaced engine makes a new one. */
static __thread int ipc_fd = -1;
static __thread pid_t ipc_pid = 0;
static __thread char ipc_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void ipc_drop(void)
{
    if (ipc_fd >= 0 && ipc_pid == getpid()) {
        close(ipc_fd);
    }
    ipc_fd = -1;
}

static int ipc_connect(const char *path)
{
    struct sockaddr_un sun;
    int fd;
    if (ipc_fd >= 0 && ipc_pid == getpid() && !strcmp(ipc_path, path)) {
        return ipc_fd;
    }
    ipc_drop();
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    apr_cpystrn(sun.sun_path, path, sizeof(sun.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        close(fd);
        return -1;
    }
    ipc_fd = fd;
    ipc_pid = getpid();
    apr_cpystrn(ipc_path, path, sizeof(ipc_path));
    return fd;
}

static int send_all(int fd, const unsigned char *b, apr_size_t len)
{
    apr_size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, b + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        off += (apr_size_t)n;
    }
    return 0;
}

int sc_engine_request(apr_pool_t *p, server_rec *s, const char *route,
                      const void *msg, apr_size_t size, int acked, const char **result,
                      double *ms)
{
    sc_retained *r = sc_retained_get(s);
    sc_shm_t hdr;
    unsigned char *req, reply[SC_FRAME_HDR_LEN + 8 + 256];
    apr_size_t rlen = route ? strlen(route) : 0, len, got = 0;
    sc_frame_hdr h;
    int fd, tries;
    apr_time_t deadline;
    long timeout_ms;
    int answered = acked || route;     /* the engine answers these */

    *ms = 0;
    if (!r->shm || !r->cfg) {
        *result = "this server runs no cluster engine";
        return 0;
    }
    sc_shm_read_header(r->shm, &hdr);
    if (!hdr.engine_pid || !hdr.ipc_path[0]) {
        *result = "the cluster engine is not running";
        return 0;
    }
    if (rlen > SC_ROUTE_MAX) {
        *result = "bad route";
        return 0;
    }
    timeout_ms = sc_elem_num(r->cfg->transport, "timeout") + 2000;
    len = SC_FRAME_HDR_LEN + 1 + rlen + size;
    req = apr_palloc(p, len);
    memset(&h, 0, sizeof(h));
    h.type = SC_MSG_DATA;
    h.flags = acked ? SC_FF_ACK : 0;
    h.seq = 1;
    h.length = (apr_uint32_t)(1 + rlen + size);
    sc_frame_hdr_encode(&h, req);
    req[SC_FRAME_HDR_LEN] = (unsigned char)rlen;
    memcpy(req + SC_FRAME_HDR_LEN + 1, route ? route : "", rlen);
    if (msg) {
        memcpy(req + SC_FRAME_HDR_LEN + 1 + rlen, msg, size);
    }
    else {
        memset(req + SC_FRAME_HDR_LEN + 1 + rlen, 'x', size);
    }

    /* a kept connection may have been closed by a replaced engine: one retry */
    for (tries = 0; tries < 2; tries++) {
        fd = ipc_connect(hdr.ipc_path);
        if (fd < 0) {
            *result = apr_psprintf(p, "cannot reach the cluster engine at %s: %s",
                                   hdr.ipc_path, strerror(errno));
            return 0;
        }
        if (send_all(fd, req, len) == 0) {
            break;
        }
        ipc_drop();
    }
    if (tries == 2) {
        *result = "cannot send to the cluster engine";
        return 0;
    }
    if (!answered) {
        /* asynchronous replication: handed over, the request goes on */
        *result = "handed to the engine";
        return 1;
    }
    deadline = apr_time_now() + apr_time_from_msec(timeout_ms);
    while (got < sizeof(reply)) {
        struct pollfd pfd;
        ssize_t n;
        int left = (int)apr_time_as_msec(deadline - apr_time_now());
        if (left <= 0) {
            break;
        }
        pfd.fd = fd;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, left) <= 0) {
            continue;
        }
        n = recv(fd, reply + got, sizeof(reply) - got, 0);
        if (n <= 0) {
            break;
        }
        got += (apr_size_t)n;
        if (got >= SC_FRAME_HDR_LEN) {
            sc_frame_hdr rh;
            if (sc_frame_hdr_decode(reply, got, 8 + 256, &rh) != NULL || rh.length < 8) {
                break;
            }
            if (got >= SC_FRAME_HDR_LEN + rh.length) {
                *ms = (double)sc_get64(reply + SC_FRAME_HDR_LEN) / 1000.0;
                *result = apr_pstrmemdup(p, (const char *)reply + SC_FRAME_HDR_LEN + 8,
                                         rh.length - 8);
                if (got != SC_FRAME_HDR_LEN + rh.length) {
                    ipc_drop();       /* out of step: start afresh next time */
                }
                return rh.type == SC_MSG_ACK;
            }
        }
    }
    ipc_drop();                       /* the answer may still come: not on this one */
    *result = apr_psprintf(p, "no answer from the cluster engine within %ld ms",
                           timeout_ms);
    return 0;
}

int sc_engine_probe(apr_pool_t *p, server_rec *s, const char *route, apr_size_t size,
                    int acked, const char **result, double *ms)
{
    if (!route || !*route) {
        *result = "bad route";
        return 0;
    }
    return sc_engine_request(p, s, route, NULL, size, acked, result, ms);
}
