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
#include "sc_core.h"
#include "sc_transport.h"
#include "sc_membership.h"
#include "sc_channel.h"
#include "sc_manager.h"
#include "sc_backup.h"
#include "sc_cloud.h"
#include "sc_crypto.h"
#include "sc_ring.h"

#include <time.h>

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
#if defined(__GLIBC__)
#include <malloc.h>
#endif

APLOG_USE_MODULE(session_cluster);

#define SC_POLL_MAX 4096

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

/* What the block asks of the engine (cfg->set); reports the interceptors it
 * does not run. */
static int engine_settings(sc_engine *e)
{
    const sc_settings *set = e->cfg->set;

    e->set = set;
    e->use_mcast_rx = set->mcast_receive;
    e->use_mcast_tx = set->mcast_send;
    if (set->domain && set->domain_len) {
        e->domain_len = set->domain_len > SC_DOMAIN_MAX ? SC_DOMAIN_MAX : set->domain_len;
        memcpy(e->domain, set->domain, (size_t)e->domain_len);
    }
    if (set->encrypted) {
        const char *err;
        if (!set->encryption_key || !set->encryption_key_len) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1230)
                         "EncryptInterceptor (%s:%d) has no encryptionKey: the engine "
                         "does not start rather than send in clear", set->encrypt_file,
                         set->encrypt_line);
            return -1;
        }
        err = sc_crypto_create(e->pool, set->encryption_key, set->encryption_key_len,
                               set->previous_encryption_key,
                               set->previous_encryption_key_len, &e->crypto);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1291)
                         "EncryptInterceptor (%s:%d): %s: the engine does not start",
                         set->encrypt_file, set->encrypt_line, err);
            return -1;
        }
        if (set->encryption_algorithm
            && strncasecmp(set->encryption_algorithm, "AES/GCM", 7) != 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1292)
                         "EncryptInterceptor (%s:%d): encryptionAlgorithm %s is not "
                         "authenticated; cluster traffic uses AES-%d-GCM instead",
                         set->encrypt_file, set->encrypt_line, set->encryption_algorithm,
                         set->encryption_key_len * 8);
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
        apr_array_header_t *notes = sc_cfg_interceptor_notes(e->pool, e->cfg);
        int i;
        for (i = 0; i < notes->nelts; i++) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1331) "%s",
                         APR_ARRAY_IDX(notes, i, const char *));
        }
    }
    if (set->not_run) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1231)
                     "interceptors named in the <Cluster> block but not implemented, "
                     "so not run: %s", set->not_run);
        apr_cpystrn(e->shm->not_implemented, set->not_run, sizeof(e->shm->not_implemented));
    }
    return 0;
}

static void publish_self(sc_engine *e);

/* The answer to httpd -k stop|graceful-stop (announce_leave): once every
 * member told has answered, or at the deadline. */
static void leave_tick(sc_engine *e, apr_time_t now)
{
    sc_peer *p;
    int waiting = 0;
    const char *text;
    for (p = e->peers; p; p = p->next) {
        waiting += p->leave_wait != 0;
    }
    if (waiting && now < e->leave_deadline) {
        return;
    }
    text = apr_psprintf(e->tmp, "%d of %d member(s) took it in", e->leave_told - waiting,
                        e->leave_told);
    ap_log_error(APLOG_MARK, waiting ? APLOG_WARNING : APLOG_INFO, 0, e->s, SCLOGNO(1906)
                 "this member's leave announced: %s%s", text,
                 waiting ? " (the others did not answer within 2 s)" : "");
    for (p = e->peers; p; p = p->next) {
        p->leave_wait = 0;
    }
    sc_ch_answer(e, e->leave_ipc, e->leave_ipc_seq, 1,
                 (double)(now - e->leave_started) / 1000.0, text);
    e->leave_ipc = NULL;
    e->leave_deadline = 0;
}

/* httpd is about to be stopped (httpd -k stop|graceful-stop, before it
 * signals the parent: sc_supervisor_announce_stop): every member is told now
 * that this one leaves, GOODBYE then a PING on the same connection, so its
 * PONG says it took the goodbye in (a front has taken this member out of
 * rotation then).  The engine goes on with what this member's children still
 * hand it (their requests in flight replicate as before) until httpd's
 * parent stops it (leave(), the goodbye once more). */
static void announce_leave(sc_engine *e, sc_conn *ipc, apr_uint64_t seq)
{
    unsigned char st = SC_MS_LEAVING, buf[SC_HB_MAX_LEN];
    apr_size_t n;
    sc_peer *p;
    sc_conn *c;

    if (e->leave_ipc || e->state == SC_MS_LEAVING) {
        sc_ch_answer(e, ipc, seq, 1, 0, "the leave was announced already");
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1905)
                 "httpd is being stopped (httpd -k stop or graceful-stop): the members "
                 "are told that this one leaves, before httpd is signalled");
    e->state = SC_MS_LEAVING;
    publish_self(e);
    e->leave_told = 0;
    if (e->use_mcast_tx) {
        sc_tr_mcast_send(e, st);
    }
    n = sc_mb_heartbeat(e, e->state, buf, sizeof(buf));
    for (p = e->peers; p; p = p->next) {
        p->leave_wait = 0;
        c = p->out && p->out->state == SC_CS_OPEN ? p->out : NULL;
        if (!c) {
            /* a front connects to the members, not they to it */
            for (c = e->conns; c; c = c->next) {
                if (c->kind == SC_CONN_IN && c->state == SC_CS_OPEN && c->peer == p) {
                    break;
                }
            }
        }
        if (!c || p->view != SC_VIEW_ALIVE) {
            continue;
        }
        if (sc_tr_send_frame(e, c, SC_MSG_GOODBYE, 0, ++e->seq, &st, 1) == 0
            && sc_tr_send_frame(e, c, SC_MSG_PING, 0, ++e->seq, buf, n) == 0) {
            p->leave_wait = 1;
            e->leave_told++;
        }
    }
    e->leave_ipc = ipc;
    e->leave_ipc_seq = seq;
    e->leave_started = sc_engine_now(e);
    e->leave_deadline = e->leave_started + apr_time_from_sec(2);
    leave_tick(e, e->leave_started);
}

static void take_ring(sc_engine *e);

/* A child's connection names itself (a HELLO of 8 bytes on the local
 * socket: a token the child drew at random): its synchronous changes come
 * through the ring with the token in place of a sequence number, and are
 * answered on this connection.  A token another open connection holds is
 * refused (the child then hands its changes over on the socket). */
static void bind_ring_conn(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                           const unsigned char *payload)
{
    apr_uint64_t token;
    sc_conn *other;
    if (!e->ring || h->length != 8 || !(token = sc_get64(payload))) {
        sc_ch_answer(e, c, h->seq, 0, 0, "malformed request");
        return;
    }
    other = apr_hash_get(e->ring_conns, &token, sizeof(token));
    if (other && other != c) {
        sc_ch_answer(e, c, h->seq, 0, 0, "token in use");
        return;
    }
    if (c->ipc_token && c->ipc_token != token) {
        apr_hash_set(e->ring_conns, &c->ipc_token, sizeof(c->ipc_token), NULL);
    }
    c->ipc_token = token;
    apr_hash_set(e->ring_conns, &c->ipc_token, sizeof(c->ipc_token), c);
    sc_ch_answer(e, c, h->seq, 1, 0, "bound");
}

/* A request from a child: [route length][route][message]; from httpd -k
 * stop|graceful-stop, a GOODBYE (announce_leave); a child's HELLO binds its
 * connection (bind_ring_conn).  From the ring, c is NULL for an asynchronous
 * message (to every member: nobody to answer) and the bound connection for a
 * synchronous one. */
static void on_ipc(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                   const unsigned char *payload)
{
    char route[SC_ROUTE_MAX + 1];
    apr_size_t rlen;
    sc_peer *p;
    int acked = (h->flags & SC_FF_ACK) != 0;

    if (c && e->ring && !e->in_ring) {
        /* what the ring holds was handed over before this was sent: it goes
         * first, so a session's changes keep their order (sc_ring.h) */
        take_ring(e);
    }
    if (h->type == SC_MSG_HELLO && c && !e->in_ring) {
        bind_ring_conn(e, c, h, payload);
        return;
    }
    if (h->type == SC_MSG_GOODBYE && h->length == 1 && payload[0] == SC_MS_LEAVING) {
        announce_leave(e, c, h->seq);
        return;
    }
    if (h->type != SC_MSG_DATA || h->length < 1
        || payload[0] > SC_ROUTE_MAX || h->length < 1u + payload[0]) {
        sc_ch_answer(e, c, h->seq, 0, 0, "malformed request");
        return;
    }
    rlen = payload[0];
    if (rlen == 0 && sc_bk_active(e)) {
        /* BackupManager: to the session's backup, or a fetch */
        sc_bk_on_request(e, c, h->seq, payload + 1, h->length - 1, acked);
        return;
    }
    if (rlen == 0) {
        /* replication: to every live member */
        sc_ch_broadcast_request(e, c, h->seq, payload + 1, h->length - 1, acked);
        return;
    }
    memcpy(route, payload + 1, rlen);
    route[rlen] = '\0';
    p = sc_mb_find_route(e, route);
    if (!p) {
        sc_ch_answer(e, c, h->seq, 0, 0,
                         apr_psprintf(e->tmp, "no member has route %s", route));
        return;
    }
    if (p->view != SC_VIEW_ALIVE) {
        sc_ch_answer(e, c, h->seq, 0, 0,
                         apr_psprintf(e->tmp, "member %s is %s", route,
                                      sc_view_name(p->view)));
        return;
    }
    sc_ch_send_request(e, c, h->seq, p, payload + 1 + rlen, h->length - 1 - rlen, acked);
}

/* One message from the ring: a frame as a child writes on the socket, for
 * every member (sc_client.c): not waited for, or (SC_FF_ACK) waited for on
 * the connection its sequence number names (bind_ring_conn); each in a pool
 * cleared after it, as conn_read does for a frame. */
static void ring_message(void *ctx, const unsigned char *msg, apr_size_t len)
{
    sc_engine *e = ctx;
    apr_pool_t *outer = e->tmp;
    sc_frame_hdr h;
    sc_conn *c = NULL;
    const char *err = len < SC_FRAME_HDR_LEN ? "shorter than a frame's header"
                      : sc_frame_hdr_decode(msg, len, (apr_uint32_t)e->set->max_message_size,
                                            &h);
    if (!err && (h.type != SC_MSG_DATA
                 || (apr_size_t)h.length + SC_FRAME_HDR_LEN != len || h.length < 1
                 || msg[SC_FRAME_HDR_LEN] != 0)) {
        err = "not a message for every member";
    }
    if (!err && (h.flags & SC_FF_ACK)) {
        c = apr_hash_get(e->ring_conns, &h.seq, sizeof(h.seq));
        if (!c || c->state == SC_CS_CLOSED) {
            /* its child closed the connection (it gave up waiting, or it
             * exited): nobody waits for the answer, but the change is in
             * this member's store: it goes out as one not waited for (as
             * the engine would still send one read from a socket closed
             * after it was sent) */
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, e->s, SCLOGNO(2105)
                         "cluster engine: a synchronous change in the children's hand-off "
                         "ring names a connection that is closed: sent without waiting "
                         "for its ACKs");
            h.flags &= (apr_uint16_t)~SC_FF_ACK;
            c = NULL;
        }
    }
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(2103)
                     "cluster engine: a message of %" APR_SIZE_T_FMT " bytes in the "
                     "children's hand-off ring was dropped: %s", len, err);
        return;
    }
    e->tmp = e->ring_tmp;
    e->in_ring = 1;
    on_ipc(e, c, &h, msg + SC_FRAME_HDR_LEN);
    e->in_ring = 0;
    e->tmp = outer;
    apr_pool_clear(e->ring_tmp);
}

/* Everything the children put in the ring so far, in its order. */
static void take_ring(sc_engine *e)
{
    int bad = 0;
    sc_ring_take(e->ring, ring_message, e, &bad);
    if (bad) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, e->s, SCLOGNO(2104)
                     "cluster engine: the children's hand-off ring held a record that is "
                     "not well formed (shared memory written by something else): what it "
                     "held from there was dropped; the sessions those changes were for "
                     "are repaired by anti-entropy or their next change");
    }
}

/* DATA: a session message, to the manager the block runs. */
static void on_data_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                          const unsigned char *payload)
{
    if (sc_bk_active(e)) {
        sc_bk_on_data_frame(e, c, h, payload);
    }
    else {
        sc_dm_on_data_frame(e, c, h, payload);
    }
}

/* c is about to be freed: the channel's pending sends and BackupManager's
 * fetches forget it. */
static void forget_conn(sc_engine *e, sc_conn *c)
{
    if (e->leave_ipc == c) {
        e->leave_ipc = NULL;          /* httpd -k gave up waiting: no answer */
    }
    if (c->ipc_token
        && apr_hash_get(e->ring_conns, &c->ipc_token, sizeof(c->ipc_token)) == c) {
        apr_hash_set(e->ring_conns, &c->ipc_token, sizeof(c->ipc_token), NULL);
    }
    sc_ch_forget_conn(e, c);
    if (sc_bk_active(e)) {
        sc_bk_forget_conn(e, c);
    }
}

/* Who handles what the transport receives: one entry per frame type. */
static const sc_tr_handlers handlers = {
    .frame = {
        [SC_MSG_HELLO] = sc_mb_on_heartbeat_frame,
        [SC_MSG_PING] = sc_mb_on_heartbeat_frame,
        [SC_MSG_PONG] = sc_mb_on_heartbeat_frame,
        [SC_MSG_GOODBYE] = sc_mb_on_goodbye_frame,
        [SC_MSG_DATA] = on_data_frame,
        [SC_MSG_ACK] = sc_ch_on_ack_frame,
        [SC_MSG_FAIL_ACK] = sc_ch_on_ack_frame,
    },
    .ipc = on_ipc,
    .heartbeat = sc_mb_heartbeat,
    .heard = sc_mb_on_heartbeat,
    .forget = forget_conn,
};

/* What befell connections since the last call, to the layers that care:
 * membership first (a lost member is suspected before its sends are tried
 * again), then the channel.  Handling one may queue more (a retry's new
 * connection refused at once): taken in the same call. */
static void take_events(sc_engine *e)
{
    sc_tr_event ev;
    while (sc_tr_next_event(e, &ev)) {
        switch (ev.kind) {
        case SC_EV_REFUSED:
            sc_mb_on_refused(e, ev.peer, ev.why);
            break;
        case SC_EV_AUTH_REFUSED:
            sc_mb_on_auth_refused(e, ev.peer, ev.why);
            break;
        case SC_EV_LOST:
            if (ev.peer) {
                if (!ev.goodbye) {
                    sc_mb_on_conn_lost(e, ev.peer, ev.why);
                }
                /* a member's own connection closed with a goodbye while it
                 * stays (its keepAliveCount or keepAliveTime): nothing of
                 * ours went on it */
                if (!(ev.goodbye && ev.conn && ev.conn->kind == SC_CONN_IN
                      && ev.peer->view == SC_VIEW_ALIVE)) {
                    sc_ch_on_conn_lost(e, ev.peer);
                }
            }
            break;
        }
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
    shm->engine_started = sc_engine_wall(e, e->started);
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
                     e->set->mcast_address, e->set->mcast_port);
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
    if (!e->set->has_throughput || e->set->throughput_interval <= 0) {
        return;
    }
    if (total - e->thr_last_msgs < (apr_uint64_t)e->set->throughput_interval) {
        return;
    }
    e->thr_last_msgs = total;
    e->shm->throughput_msgs = total;
    e->shm->ic.throughput_reports++;
    secs = (double)(sc_engine_now(e) - e->started) / 1e6;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1233)
                 "ThroughputInterceptor: tx %" APR_UINT64_T_FMT " messages, %.2f MB; rx %"
                 APR_UINT64_T_FMT " messages, %.2f MB; %.1f messages/s since start",
                 e->shm->c.msgs_out, (double)e->shm->c.bytes_out / 1048576.0,
                 e->shm->c.msgs_in, (double)e->shm->c.bytes_in / 1048576.0,
                 secs > 0 ? (double)total / secs : 0.0);
}

/* The loop did not turn for longer than dropTime: the process was stopped
 * (SIGSTOP, a debugger) or starved.  The others may have found this member
 * dead meanwhile and stopped sending it their changes, so its sessions may
 * be stale: it takes every session again (a state transfer, starting until
 * done: a front keeps its worker in error and sends its users elsewhere)
 * rather than serve old versions. */
static void came_back(sc_engine *e, apr_interval_time_t gap)
{
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1421)
                 "the cluster engine did not run for %" APR_TIME_T_FMT " ms (more than "
                 "dropTime, %ld ms: stopped or starved of CPU); the other members may "
                 "have found it dead and changed sessions meanwhile%s",
                 apr_time_as_msec(gap), e->set->drop_ms,
                 e->store && !e->observer
                     && (e->state == SC_MS_READY || e->state == SC_MS_DRAINING)
                     ? ": it takes every session again before it serves" : "");
    if (e->store && !e->observer
        && (e->state == SC_MS_READY || e->state == SC_MS_DRAINING)) {
        sc_dm_redo_transfer(e);
        publish_self(e);
        e->next_heartbeat = 0;        /* tell the others at once */
    }
}

/* httpd's parent died without stopping the engine (it was killed, or it
 * crashed): a crash, not a leave.  No goodbye and no expiry of the sessions
 * (expireSessionsOnShutdown is for an orderly stop): the others find this
 * member dead, as they would find the whole instance had it crashed, and keep
 * its sessions. */
static void parent_gone(sc_engine *e) __attribute__((noreturn));
static void parent_gone(sc_engine *e)
{
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1237)
                 "httpd's parent process (pid %ld) is gone without stopping the cluster "
                 "engine: the engine stops as a crashed member would, without a goodbye "
                 "and without expiring sessions; the other members keep them",
                 (long)e->parent);
    if (e->ipc_path[0]) {
        unlink(e->ipc_path);
    }
    sc_shm_write_begin(&e->shm->seq);
    e->shm->engine_pid = 0;
    sc_shm_write_end(&e->shm->seq);
    _exit(1);
}

/* Tells every member we are leaving (or restarting), then closes everything. */
static void leave(sc_engine *e, int restarting)
{
    sc_peer *p;
    sc_conn *c;
    unsigned char st = restarting ? SC_MS_RESTARTING : SC_MS_LEAVING;
    apr_time_t until;

    if (!restarting && sc_bk_active(e)) {
        sc_bk_shutdown(e);
    }
    else if (!restarting) {
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
    until = sc_engine_now(e) + apr_time_from_msec(300);
    while (sc_engine_now(e) < until) {
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
        if (e->ring) {
            sc_ring_counts_reset(e->ring);
        }
        memset(&e->shm->f, 0, sizeof(e->shm->f));
        for (p = e->peers; p; p = p->next) {
            memset(&p->c, 0, sizeof(p->c));
        }
        if (e->store) {
            sc_store_hdr *h = e->store->hdr;
            h->created = h->updated = h->removed = h->expired = 0;
            h->rejected_full = h->rejected_size = 0;
            h->replicated_in = h->replicated_out = h->transfer_in = h->transfer_out = 0;
            h->rebound = 0;
            h->writes_undone = h->updated_in_place = 0;
            h->dead_refused = h->repl_too_big = 0;
            h->tombs_set = h->tombs_evicted = 0;
            h->evicted = h->probation_expired = 0;
            h->conflicts = h->minority_refused = 0;
            h->ae_rounds = h->ae_asked = h->ae_removed = 0;
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

/* This turn sent what the children handed over without waiting for it
 * (asynchronous replication, nothing of ours waits for an ACK): the next ones
 * are let gather for SC_ASYNC_GATHER_US before the loop looks again, instead
 * of a wake-up and a send per request on this member and a wake-up and a
 * read on every other.  With the ring (sc_ring.h) the loop's wait lasts that
 * long, or until SC_RING_BATCH changes wait in the ring (at a high rate a
 * change waits less than the bound), and no other asynchronous append wakes
 * it (a synchronous change does, in the ring or on a socket: its writer
 * waits, sc_ring_put_waited); without it (the socket only: poll
 * instead of epoll, or no ring could be made) the engine sleeps that long
 * here and a child's hand-off only queues on its socket.  The first change
 * after a quiet spell still goes out at once; under load each one waits at
 * most that long.  Not while a state transfer runs here (its blocks go out
 * turn by turn).  Only under load (sc_gather_next, sc_ring.h): for
 * SC_ASYNC_GATHER_HOLD_US after a turn that sent several; a change now and
 * then, or one after the other, goes out at once. */
static void gather_async(sc_engine *e)
{
    struct timespec ts;
    ts.tv_sec = 0;
    ts.tv_nsec = SC_ASYNC_GATHER_US * 1000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !engine_stop) {
    }
}

void sc_engine_run(const sc_engine_args *r)
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
#if defined(__GLIBC__)
    /* a large message's buffers are mapped apart and unmapped when given
     * back (the transport frees them once a large frame is through), so the
     * engine's memory follows what it holds: glibc otherwise raises this
     * threshold after the first such free, and the heap keeps their room */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
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
    e->ring = r->ring;
    e->wake_fd = r->ring ? sc_ring_wake_fd(r->ring) : -1;
    apr_pool_create(&e->ring_tmp, pool);
    e->ring_conns = apr_hash_make(pool);
    e->route = r->route;
    e->observer = r->observer;
    e->parent = getppid();
    memcpy(e->id, r->id, SC_ID_LEN);
    sc_engine_clock_set(e);
    e->started = e->clock_wall;
    /* a new incarnation's number is above its last one's, even when the
     * wall clock was set back since that one started (the others refuse an
     * older incarnation's heartbeats: SC1225) */
    e->incarnation = (apr_uint64_t)e->started;
    if (e->incarnation <= r->shm->incarnation) {
        e->incarnation = r->shm->incarnation + 1;
    }
    e->state = SC_MS_STARTING;
    e->listen_fd = e->mcast_fd = e->ipc_fd = -1;
    e->ep_fd = -1;
    e->handlers = &handlers;

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
    if (e->store && !e->observer) {
        sc_ch_expect_init(e);         /* before this engine publishes its members */
    }
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

    if (e->ring) {
        /* the children put asynchronous changes in the ring from now on */
        sc_ring_consume(e->ring, getpid());
    }
    while (!engine_stop) {
        apr_time_t now = sc_engine_now(e);
        apr_interval_time_t wait_us;
        int n, gather;
        apr_pool_clear(e->tmp);
        if (now >= e->next_publish && getppid() != e->parent) {
            parent_gone(e);           /* looked at every 100 ms (publish) */
        }
        if (e->last_turn && now - e->last_turn > apr_time_from_msec(e->set->drop_ms)) {
            came_back(e, now - e->last_turn);
        }
        e->last_turn = now;
        sc_cloud_tick(e);
        sc_mb_tick(e, now);
        if (e->store && sc_bk_active(e)) {
            sc_bk_tick(e, now);
        }
        else if (e->store) {
            sc_dm_tick(e, now);
        }
        sc_ch_tick(e, now);
        sc_tr_tick(e, now);
        throughput_tick(e);
        if (e->leave_deadline) {
            leave_tick(e, now);
        }
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
        take_events(e);              /* of the ticks' sends */
        wait_us = apr_time_from_msec(50);
        gather = sc_gather_next(&e->gather, now, e->turn_async);
        if (gather && !e->pending && !e->transfers && !sc_dm_receiving_state(e) && SC_ASYNC_GATHER_US > 0) {
            if (e->ring && e->ep_fd >= 0) {
                /* the ring's asynchronous appends meanwhile wake it only
                 * once SC_RING_BATCH wait; a synchronous one, and what
                 * comes on a socket, at once */
                wait_us = sc_ring_gather(e->ring) ? 0 : SC_ASYNC_GATHER_US;
            }
            else {
                gather_async(e);
            }
        }
        else if (e->ring && sc_ring_sleep(e->ring)) {
            wait_us = 0;              /* the ring holds messages: no sleep */
        }
        /* (else asleep: the next append wakes it) */
        e->turn_async = 0;
        n = sc_tr_wait(e, pfds, SC_POLL_MAX, wait_us);
        if (e->ring) {
            sc_ring_awake(e->ring);
        }
        if (n > 0 || (e->ring && sc_ring_pending(e->ring))) {
            sc_tr_cork(e);
            if (e->ring) {
                take_ring(e);         /* before the sockets: sc_ring.h */
            }
            if (n > 0) {
                sc_tr_handle(e, pfds, n);
            }
            take_events(e);
            sc_tr_uncork(e);
            take_events(e);           /* of the flush */
        }
    }
    if (e->ring) {
        sc_ring_consume(e->ring, 0);  /* the children use the socket (if any) */
    }
    sc_ch_early_flush(e);
    sc_cloud_stop(e);
    leave(e, engine_stop == 2);
    sc_mb_publish(e);
    _exit(0);
}
