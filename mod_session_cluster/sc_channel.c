/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_channel.c -- the channel's ACK and retry layer (see sc_channel.h): what a
 * child hands the engine goes to one member or to every live one; a send
 * that waits for an ACK is kept until the ACK, a FAIL_ACK, its member's
 * death or its deadline settles it, and sent again on a new connection when
 * its connection breaks (maxRetryAttempts).
 */
#include "sc_channel.h"
#include "sc_transport.h"
#include "sc_membership.h"

#include <stdlib.h>

void sc_ch_answer(sc_engine *e, sc_conn *ipc, apr_uint64_t ipc_seq, int ok,
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

void sc_ch_ack(sc_engine *e, sc_peer *p, sc_conn *c, apr_uint64_t seq, int ok,
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
        double ms = (double)(sc_engine_now(e) - g->started) / 1000.0;
        if (g->failed) {
            sc_ch_answer(e, g->ipc, g->ipc_seq, 0, ms,
                             apr_psprintf(e->tmp, "%d of %d member(s) did not "
                                          "acknowledge: %s", g->failed, g->sent,
                                          g->first_error));
        }
        else {
            sc_ch_answer(e, g->ipc, g->ipc_seq, 1, ms,
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

void sc_ch_on_ack(sc_engine *e, sc_conn *c, apr_uint64_t seq, int ok,
                      const char *reason)
{
    sc_pending *pd;
    e->shm->c.acks_in++;
    for (pd = e->pending; pd; pd = pd->next) {
        if (pd->seq == seq && pd->peer == c->peer) {
            double ms = (double)(sc_engine_now(e) - pd->started) / 1000.0;
            if (pd->group) {
                group_settle(e, pd, ok, apr_psprintf(e->tmp, "%s: %s", pd->peer->route,
                                                     reason ? reason : "refused"));
            }
            else if (ok) {
                sc_ch_answer(e, pd->ipc, pd->ipc_seq, 1, ms,
                                 apr_psprintf(e->tmp, "acknowledged by %s",
                                              pd->peer->route));
            }
            else {
                e->shm->c.send_failures++;
                pd->peer->c.send_failures++;
                sc_ch_answer(e, pd->ipc, pd->ipc_seq, 0, ms,
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

/* How much past the Transport timeout a send may wait for the failure
 * detection's verdict on a silent member: less than the child waits beyond
 * the timeout for the engine's answer (sc_client.c: 2 s). */
#define SC_CH_VERDICT_GRACE_MS 1700

static void keep_alive(sc_engine *e, apr_time_t now);
static void early_tick(sc_engine *e, apr_time_t now);

/* Did p answer on our connection to it made at 'since' or later?  Only
 * bytes read on such a connection prove that its process lives: a new
 * connection its kernel merely accepted proves nothing (a member being
 * killed can still take one on its Receiver after its own connections
 * closed: seen under load, a burst of 503s; a frozen one takes them all
 * along), nor does a frame it sent before and read here after (a backlog
 * on its own connection, a heartbeat still queued). */
static int answered_since(const sc_peer *p, apr_time_t since)
{
    const sc_conn *c = p->out;
    return c && c->state == SC_CS_OPEN && c->opened >= since && c->last_rx > c->opened;
}

/* How long a connection made since the loss may stay open without a word
 * before the member is taken for a process that holds it (frozen, or alive
 * and slow): a dying one closes what its kernel took within milliseconds,
 * its Receiver's refusal following. */
#define SC_CH_SILENT_CONN_MS 250

/* Is our connection to p, made at 'since' or later, open without a word for
 * SC_CH_SILENT_CONN_MS?  Then its process holds it: not dying (that would
 * have closed it), so not to be waited for as one. */
static int held_silent_since(const sc_peer *p, apr_time_t since, apr_time_t now)
{
    const sc_conn *c = p->out;
    return c && c->state == SC_CS_OPEN && c->opened >= since
           && now - c->opened >= apr_time_from_msec(SC_CH_SILENT_CONN_MS);
}

void sc_ch_tick(sc_engine *e, apr_time_t now)
{
    sc_pending *pd, *next;
    if (e->nexpect || e->early) {
        early_tick(e, now);
    }
    keep_alive(e, now);
    for (pd = e->pending; pd; pd = next) {
        apr_time_t due;
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
                sc_ch_answer(e, pd->ipc, pd->ipc_seq, 0,
                                 (double)(now - pd->started) / 1000.0,
                                 apr_psprintf(e->tmp, "%s is %s", pd->peer->route,
                                              sc_view_name(pd->peer->view)));
            }
            pending_remove(e, pd);
        }
        else if (pd->lost && (!pd->peer->checking || answered_since(pd->peer, pd->lost_at)
                              || held_silent_since(pd->peer, pd->lost_at, now))) {
            /* the member answered on a connection made since the break, or
             * holds one open (its process lives, or is frozen), or its check
             * ended without a verdict: not gone, and this share's message
             * went with the broken connection: failed, as without the wait
             * (maxRetryAttempts spent) */
            e->shm->c.send_failures++;
            pd->peer->c.send_failures++;
            group_settle(e, pd, 0, apr_psprintf(e->tmp, "connection to %s lost",
                                                pd->peer->route));
            pending_remove(e, pd);
        }
        else if (now > pd->deadline && !pd->waited_verdict
                 && now - pd->peer->last_heard > apr_time_from_msec(2 * e->set->heartbeat_ms)
                 && (due = sc_mb_verdict_due(e, pd->peer)) != 0
                 && due <= pd->started + apr_time_from_msec(e->set->send_timeout_ms
                                                            + SC_CH_VERDICT_GRACE_MS)) {
            /* no ACK, and not a frame from the member (not even a heartbeat)
             * for two heartbeat periods: frozen or gone, perhaps.  When the
             * failure detection gives its verdict before the child stops
             * waiting, the verdict is waited for, once, instead of failing
             * now: found dead, the member is not waited for (the change is on
             * every live member); heard again, it was only slow, and the send
             * fails below at the new deadline */
            pd->waited_verdict = 1;
            pd->deadline = due;
        }
        else if (now > pd->deadline && pd->group) {
            e->shm->c.ack_timeouts++;
            pd->peer->c.ack_timeouts++;
            e->shm->c.send_failures++;
            pd->peer->c.send_failures++;
            group_settle(e, pd, 0, apr_psprintf(e->tmp, "no ACK from %s within %ld ms",
                                                pd->peer->route, e->set->send_timeout_ms));
            pending_remove(e, pd);
        }
        else if (now > pd->deadline) {
            e->shm->c.ack_timeouts++;
            pd->peer->c.ack_timeouts++;
            e->shm->c.send_failures++;
            pd->peer->c.send_failures++;
            sc_ch_answer(e, pd->ipc, pd->ipc_seq, 0,
                             (double)(now - pd->started) / 1000.0,
                             apr_psprintf(e->tmp, "no ACK from %s within %ld ms "
                                          "(Transport timeout)", pd->peer->route,
                                          e->set->send_timeout_ms));
            pending_remove(e, pd);
        }
    }
}

/* Transport keepAliveCount and keepAliveTime, as PooledParallelSender's: a
 * connection of ours to a member is closed after that many messages (DATA
 * frames; 0: after each one) or once it is that many ms old (-1: no limit),
 * and a new one made at once (it carries the TCP heartbeat too).  It is
 * closed at a quiet moment: all it was given written, no acknowledged send
 * to that member waiting for its ACK (which comes back on it), the member
 * alive and not being checked.  A GOODBYE in this member's state tells the
 * other side that only the connection ends (sc_mb_on_goodbye_frame). */
static void keep_alive(sc_engine *e, apr_time_t now)
{
    long count = e->set->keep_alive_count, ms = e->set->keep_alive_ms;
    sc_peer *p;
    if (count < 0 && ms < 0) {
        return;
    }
    for (p = e->peers; p; p = p->next) {
        sc_conn *c = p->out;
        sc_pending *pd;
        unsigned char st = (unsigned char)e->state;
        const char *why;
        if (!c || c->state != SC_CS_OPEN || c->woff < c->wlen || p->view != SC_VIEW_ALIVE
            || p->checking) {
            continue;
        }
        if (count >= 0 && c->data_out >= (apr_uint64_t)(count > 0 ? count : 1)) {
            why = apr_psprintf(e->tmp, "keepAliveCount: %" APR_UINT64_T_FMT
                               " messages sent on it", c->data_out);
        }
        else if (ms >= 0 && now - c->opened > apr_time_from_msec(ms)) {
            why = apr_psprintf(e->tmp, "keepAliveTime: open for %" APR_TIME_T_FMT " ms",
                               apr_time_as_msec(now - c->opened));
        }
        else {
            continue;
        }
        for (pd = e->pending; pd && pd->peer != p; pd = pd->next) {
        }
        if (pd || st == SC_MS_LEAVING || st == SC_MS_RESTARTING) {
            continue;                 /* an ACK to come on it: later */
        }
        sc_tr_send_frame(e, c, SC_MSG_GOODBYE, 0, ++e->seq, &st, 1);
        sc_tr_close(e, c, why);
        sc_tr_connect(e, p);
    }
}

void sc_ch_on_conn_lost(sc_engine *e, sc_peer *p)
{
    sc_pending *pd, *next;
    /* acknowledged sends in flight to p: sent again on a new connection
     * (maxRetryAttempts) or failed; a send never calls back up here (the
     * transport queues what befalls connections), so one walk does */
    for (pd = e->pending; pd; pd = next) {
        next = pd->next;
        if (pd->peer != p) {
            continue;
        }
        if (pd->tries <= e->set->max_retries && p->view == SC_VIEW_ALIVE) {
            pd->tries++;
            sc_tr_connect(e, p);
            pd->seq = ++e->seq;       /* a number of its own, as every frame */
            if (p->out && sc_tr_send_frame(e, p->out, SC_MSG_DATA, SC_FF_ACK, pd->seq,
                                           pd->frame, pd->frame_len) == 0) {
                continue;
            }
        }
        if (pd->group && p->checking
            && (p->view == SC_VIEW_ALIVE || p->view == SC_VIEW_SUSPECT)) {
            /* the failure detection is checking the member (its connection
             * broke, and a new one is on its way): what becomes of that
             * settles this share (sc_ch_tick).  Refused, the member's
             * process is gone: found dead, it is not waited for; taken, the
             * send fails as it would have here.  A member killed with
             * writes in flight so costs no 503. */
            pd->lost = 1;
            /* from the loss the membership saw (before it connected anew
             * for its check: that connection's answer counts) */
            pd->lost_at = sc_engine_now(e);
            if (p->last_lost && p->last_lost <= pd->lost_at
                && pd->lost_at - p->last_lost < apr_time_from_sec(1)) {
                pd->lost_at = p->last_lost;
            }
            continue;
        }
        e->shm->c.send_failures++;
        p->c.send_failures++;
        if (pd->group) {
            int gone = p->view == SC_VIEW_DEAD || p->view == SC_VIEW_LEFT;
            group_settle(e, pd, gone, apr_psprintf(e->tmp, "connection to %s lost",
                                                   p->route));
        }
        else {
            sc_ch_answer(e, pd->ipc, pd->ipc_seq, 0,
                         (double)(sc_engine_now(e) - pd->started) / 1000.0,
                         apr_psprintf(e->tmp, "connection to %s lost (%s)", p->route,
                                      sc_view_name(p->view)));
        }
        pending_remove(e, pd);
    }
}

void sc_ch_forget_conn(sc_engine *e, sc_conn *c)
{
    sc_pending *pd;
    /* nothing may answer it once freed: neither an acknowledged send nor its
     * broadcast (a group waits as long as one of its entries is listed; a
     * child that gave up closed its connection first) */
    sc_early *k;
    for (k = e->early; k; k = k->next) {
        if (k->ipc == c) {
            k->ipc = NULL;
        }
    }
    for (pd = e->pending; pd; pd = pd->next) {
        if (pd->ipc == c) {
            pd->ipc = NULL;
        }
        if (pd->group && pd->group->ipc == c) {
            pd->group->ipc = NULL;
        }
    }
}

void sc_ch_on_ack_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                        const unsigned char *payload)
{
    if (h->length < 8) {
        sc_tr_bad_frame(e, c, "short ACK");
        return;
    }
    sc_ch_on_ack(e, c, sc_get64(payload), h->type == SC_MSG_ACK,
                 h->type == SC_MSG_FAIL_ACK && h->length > 8
                     ? apr_pstrmemdup(e->tmp, (const char *)payload + 8,
                                      h->length - 8 > 200 ? 200 : h->length - 8)
                     : NULL);
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
    pd->started = sc_engine_now(e);
    pd->deadline = pd->started + apr_time_from_msec(e->set->send_timeout_ms);
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
int sc_ch_broadcast(sc_engine *e, const void *msg, apr_size_t len, sc_peer *except)
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

static void broadcast_now(sc_engine *e, sc_conn *c, apr_uint64_t ipc_seq,
                          const unsigned char *msg, apr_size_t len, int acked)
{
    sc_peer *p;
    sc_group *g = NULL;

    e->store->hdr->replicated_out++;
    if (!acked) {
        /* asynchronous: the child does not wait for an answer */
        e->shm->ic.dispatch_async++;
        e->turn_async++;
        sc_ch_broadcast(e, msg, len, NULL);
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
            g->ipc_seq = ipc_seq;
            g->started = sc_engine_now(e);
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
        sc_ch_answer(e, c, ipc_seq, 0, (double)(sc_engine_now(e) - g->started) / 1000.0,
                         apr_psprintf(e->tmp, "%d of %d member(s) did not acknowledge: %s",
                                      g->failed, g->sent, g->first_error));
        free(g);
    }
    else if (!g || g->waiting == 0) {
        free(g);
        sc_ch_answer(e, c, ipc_seq, 1, 0, "no other member to replicate to");
    }
}

/* ---- Early changes ----
 *
 * An engine that replaces another (a graceful restart that changed the
 * <Cluster> block, or an engine that died) starts alone: the members its
 * predecessor was talking to are met again over the next moments (a few ms
 * for static members, a heartbeat period by multicast).  Meanwhile httpd's
 * children serve requests, often ones that waited in the accept queue, and
 * their changes are handed to it (sc_session.c replicate: an engine that is
 * starting takes them).  Sent only to the members met so far they would miss
 * the others, which the next request of the session may reach.  So the
 * members the predecessor saw alive (the shared members' table as it left
 * it) are expected: every change for every member is kept, in order, until
 * each of them is met (alive here) or gone (dead, left, restarting, refused),
 * or for dropTime at most; then they are sent, before any later one, and a
 * change waited for is answered then.  Meanwhile the engine stays starting
 * (sc_manager.c ask_for_state: it does not call itself alone and ready while
 * they may answer), so its children keep handing it their changes.  The
 * receivers' versions order them
 * against the state transfer this member takes meanwhile (a copy of the
 * version before such a change loses to it here, and the change applies on
 * that version there).  At most SC_EARLY_MAX_BYTES are kept: beyond, the
 * oldest are sent at once to the members met so far, with a line. */

/* How long members known before are waited for: dropTime (Tomcat's
 * McastService default where the membership has none). */
static long expect_ms(const sc_engine *e)
{
    return e->set->drop_ms > 0 ? e->set->drop_ms : 3000;
}

void sc_ch_expect_init(sc_engine *e)
{
    sc_shm_member m;
    int i;
    char *routes = "";

    for (i = 0; i < SC_MAX_MEMBERS; i++) {
        static const unsigned char zero[SC_ID_LEN];
        sc_expected *x;
        if (!sc_shm_read_member(e->shm, i, &m) || m.observer
            || (m.view != SC_VIEW_ALIVE && m.view != SC_VIEW_SUSPECT)
            || !memcmp(m.id, zero, SC_ID_LEN) || !memcmp(m.id, e->id, SC_ID_LEN)) {
            continue;
        }
        x = &e->expect[e->nexpect++];
        memcpy(x->id, m.id, SC_ID_LEN);
        apr_cpystrn(x->route, m.route, sizeof(x->route));
        routes = apr_pstrcat(e->tmp, routes, *routes ? ", " : "", x->route, NULL);
    }
    if (e->nexpect) {
        e->expect_until = sc_engine_now(e) + apr_time_from_msec(expect_ms(e));
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(2140)
                     "the previous cluster engine saw %d member(s) alive (%s): this one "
                     "is starting until it has met them (or for dropTime, %ld ms), and "
                     "changes made here meanwhile are kept for them", e->nexpect, routes,
                     expect_ms(e));
    }
}

/* Are members known before still to be met?  Those met or gone are
 * crossed off; at the deadline, all of them, with a line. */
static int expecting(sc_engine *e, apr_time_t now)
{
    int i = 0;
    while (i < e->nexpect) {
        sc_expected *x = &e->expect[i];
        sc_peer *p;
        int done = 0;
        for (p = e->peers; p && !done; p = p->next) {
            if (!memcmp(p->id, x->id, SC_ID_LEN)) {
                done = p->view == SC_VIEW_ALIVE || p->view == SC_VIEW_DEAD
                       || p->view == SC_VIEW_LEFT || p->view == SC_VIEW_REFUSED
                       || p->view == SC_VIEW_RESTARTING;
            }
        }
        if (done) {
            *x = e->expect[--e->nexpect];
        }
        else {
            i++;
        }
    }
    if (e->nexpect && now >= e->expect_until) {
        char *routes = "";
        for (i = 0; i < e->nexpect; i++) {
            routes = apr_pstrcat(e->tmp, routes, i ? ", " : "", e->expect[i].route, NULL);
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(2141)
                     "member(s) %s, alive for the previous cluster engine, not met within "
                     "dropTime (%ld ms): the changes kept for them go to the members met; "
                     "they get them when they are met (anti-entropy) or take this "
                     "member's sessions (state transfer)", routes, expect_ms(e));
        e->nexpect = 0;
    }
    return e->nexpect > 0;
}

/* Sends what was kept, oldest first (n at most, or all: 0). */
static void early_send(sc_engine *e, apr_uint32_t n)
{
    apr_uint32_t sent = 0;
    while (e->early && (!n || sent < n)) {
        sc_early *k = e->early;
        e->early = k->next;
        if (!e->early) {
            e->early_tail = NULL;
        }
        e->early_bytes -= sizeof(*k) + k->len;
        broadcast_now(e, k->ipc, k->ipc_seq, k->msg, k->len, k->acked);
        free(k);
        sent++;
    }
}

static void early_release(sc_engine *e, apr_time_t now)
{
    apr_time_t first = e->early->kept;
    apr_uint32_t n = 0;
    sc_early *k;
    for (k = e->early; k; k = k->next) {
        n++;
    }
    early_send(e, 0);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(2142)
                 "%u change(s) made here before this engine met the members were sent "
                 "(the first kept %" APR_TIME_T_FMT " ms; %u sent earlier, over the "
                 "bound)", n, apr_time_as_msec(now - first), e->early_sent_early);
}

/* Keeps a change for the members expected; false when it cannot (memory). */
static int early_keep(sc_engine *e, sc_conn *c, apr_uint64_t ipc_seq,
                      const unsigned char *msg, apr_size_t len, int acked, apr_time_t now)
{
    sc_early *k = malloc(sizeof(*k) + len);
    if (!k) {
        return 0;
    }
    k->ipc = c;
    k->ipc_seq = ipc_seq;
    k->acked = acked;
    k->kept = now;
    k->len = len;
    k->next = NULL;
    memcpy(k->msg, msg, len);
    if (e->early_tail) {
        e->early_tail->next = k;
    }
    else {
        e->early = k;
    }
    e->early_tail = k;
    e->early_bytes += sizeof(*k) + len;
    if (e->early_bytes > SC_EARLY_MAX_BYTES && e->early != k) {
        apr_uint32_t n = 0;
        while (e->early_bytes > SC_EARLY_MAX_BYTES && e->early != k) {
            early_send(e, 1);
            n++;
        }
        if (!e->early_sent_early) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(2143)
                         "changes kept for the members this engine has not met yet "
                         "exceed %d bytes: the oldest (%u) were sent to the members met "
                         "so far; the others get them when they are met (anti-entropy)",
                         SC_EARLY_MAX_BYTES, n);
        }
        e->early_sent_early += n;
    }
    return 1;
}

void sc_ch_broadcast_request(sc_engine *e, sc_conn *c, apr_uint64_t ipc_seq,
                             const unsigned char *msg, apr_size_t len, int acked)
{
    if (e->nexpect || e->early) {
        apr_time_t now = sc_engine_now(e);
        if (expecting(e, now) && early_keep(e, c, ipc_seq, msg, len, acked, now)) {
            return;
        }
        if (e->early) {
            early_release(e, now);    /* before this one: the order is kept */
        }
    }
    broadcast_now(e, c, ipc_seq, msg, len, acked);
}

static void early_tick(sc_engine *e, apr_time_t now)
{
    if (!expecting(e, now) && e->early) {
        early_release(e, now);
    }
}

void sc_ch_early_flush(sc_engine *e)
{
    if (e->early) {
        early_release(e, sc_engine_now(e));
    }
    e->nexpect = 0;
}

/* Sends a child's message to member p; acked: the child waits for p's ACK
 * (answered when it comes, or when the send fails or times out). */
void sc_ch_send_request(sc_engine *e, sc_conn *c, apr_uint64_t ipc_seq, sc_peer *p,
                        const unsigned char *msg, apr_size_t len, int acked)
{
    if (!p->out) {
        sc_tr_connect(e, p);
    }
    if (!p->out) {
        sc_ch_answer(e, c, ipc_seq, 0, 0,
                         apr_psprintf(e->tmp, "cannot connect to %s", p->route));
        return;
    }
    ++e->seq;
    if (sc_tr_send_frame(e, p->out, SC_MSG_DATA, acked ? SC_FF_ACK : 0, e->seq, msg, len) != 0) {
        e->shm->c.send_failures++;
        p->c.send_failures++;
        sc_ch_answer(e, c, ipc_seq, 0, 0,
                         apr_psprintf(e->tmp, "send to %s failed", p->route));
        return;
    }
    if (!acked) {
        sc_ch_answer(e, c, ipc_seq, 1, 0,
                         apr_psprintf(e->tmp, "sent to %s without acknowledgement", p->route));
        return;
    }
    {
        sc_pending *pd = pending_new(e, p, e->seq, msg, len);
        if (!pd) {
            sc_ch_answer(e, c, ipc_seq, 0, 0, "out of memory");
            return;
        }
        pd->ipc = c;
        pd->ipc_seq = ipc_seq;
    }
}
