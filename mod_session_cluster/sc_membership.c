/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_membership.c -- who is in the cluster, as this member sees it.
 *
 * Members are learnt from multicast heartbeats (McastService), from the static
 * members of the block (StaticMembershipInterceptor, StaticMembershipService)
 * and from the HELLO/PING/PONG frames exchanged over the TCP channel, which
 * carry the same heartbeat.  A member unheard for dropTime is suspected; with
 * TcpFailureDetector it is declared dead only when a PING over TCP goes
 * unanswered for connectTimeout, and at once when its connection is refused
 * (its process is gone).  A goodbye removes it at once; an announced restart
 * is held for dropTime.
 */
#include "sc_core.h"
#include "sc_membership.h"
#include "sc_transport.h"

#include <arpa/inet.h>
#include <netdb.h>

APLOG_USE_MODULE(session_cluster);

static int alloc_slot(sc_engine *e)
{
    int i, used[SC_MAX_MEMBERS];
    sc_peer *p;
    memset(used, 0, sizeof(used));
    for (p = e->peers; p; p = p->next) {
        if (p->slot >= 0) {
            used[p->slot] = 1;
        }
    }
    for (i = 0; i < SC_MAX_MEMBERS; i++) {
        if (!used[i]) {
            return i;
        }
    }
    return -1;
}

static sc_peer *peer_new(sc_engine *e)
{
    sc_peer *p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->slot = alloc_slot(e);
    if (p->slot < 0) {
        /* reuse the slot of a member long gone */
        sc_peer *q, *oldest = NULL;
        for (q = e->peers; q; q = q->next) {
            if (!q->is_static && (q->view == SC_VIEW_DEAD || q->view == SC_VIEW_LEFT
                                  || q->view == SC_VIEW_REFUSED)
                && (!oldest || q->state_since < oldest->state_since)) {
                oldest = q;
            }
        }
        if (!oldest) {
            free(p);
            return NULL;
        }
        p->slot = oldest->slot;
        oldest->slot = -1;
    }
    p->view = SC_VIEW_CONFIGURED;
    p->first_seen = p->state_since = apr_time_now();
    p->next = e->peers;
    e->peers = p;
    return p;
}

static int resolve(sc_peer *p)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    apr_snprintf(port, sizeof(port), "%d", p->port);
    if (getaddrinfo(p->host, port, &hints, &res) != 0 || !res) {
        return 0;
    }
    memcpy(&p->sa, res->ai_addr, res->ai_addrlen);
    p->salen = res->ai_addrlen;
    p->resolved = 1;
    freeaddrinfo(res);
    return 1;
}

void sc_mb_init(sc_engine *e)
{
    int i;
    for (i = 0; i < e->set->nmembers; i++) {
        const sc_member_settings *m = &e->set->members[i];
        sc_peer *p = peer_new(e);
        if (!p) {
            break;
        }
        p->is_static = 1;
        apr_cpystrn(p->host, m->host, sizeof(p->host));
        p->port = (int)m->port;
        if (m->unique_id) {
            memcpy(p->id, m->unique_id, 16);
        }
        apr_snprintf(p->verdict, sizeof(p->verdict), "static member, not heard yet");
        if (p->port == e->self_port && !strcmp(p->host, e->self_addr)) {
            /* this member itself: one list can serve every member */
            e->peers = p->next;
            free(p);
            continue;
        }
        if (!resolve(p)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1220)
                         "static member %s:%d does not resolve yet", p->host, p->port);
        }
    }
}

/* A member to connect to at host:port (CloudMembershipService). */
sc_peer *sc_mb_add_member(sc_engine *e, const char *host, int port)
{
    sc_peer *p;
    for (p = e->peers; p; p = p->next) {
        if (p->port == port && !strcmp(p->host, host)) {
            return p;
        }
    }
    p = peer_new(e);
    if (!p) {
        return NULL;
    }
    apr_cpystrn(p->host, host, sizeof(p->host));
    p->port = port;
    apr_snprintf(p->verdict, sizeof(p->verdict), "found in DNS, not heard yet");
    resolve(p);
    return p;
}

apr_size_t sc_mb_heartbeat(sc_engine *e, int state, unsigned char *buf, apr_size_t cap)
{
    sc_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    hb.state = (apr_byte_t)state;
    hb.flags = e->observer ? SC_HF_OBSERVER : 0;
    memcpy(hb.id, e->id, SC_ID_LEN);
    hb.incarnation = e->incarnation;
    hb.alive_ms = (apr_uint64_t)apr_time_as_msec(sc_engine_now(e) - e->started);
    hb.seq = ++e->hb_seq;
    hb.port = (apr_uint16_t)e->self_port;
    hb.family = (apr_byte_t)e->self_family;
    memcpy(hb.addr, e->self_addr_bytes, 16);
    apr_cpystrn(hb.route, e->route, sizeof(hb.route));
    memcpy(hb.domain, e->domain, (size_t)e->domain_len);
    hb.domain_len = (apr_byte_t)e->domain_len;
    if (!e->observer) {
        /* what a front needs to add this member and balance by its load
         * (the tag: members of the first version skip it) */
        apr_uint32_t busy = e->shm->self_busy, capacity = e->shm->self_capacity;
        apr_uint32_t held = e->store ? e->store->hdr->count : 0;
        hb.has_ext = 1;
        hb.busy = (apr_uint16_t)(busy > 0xffff ? 0xffff : busy);
        hb.capacity = (apr_uint16_t)(capacity > 0xffff ? 0xffff : capacity);
        hb.sessions = held;
        apr_cpystrn(hb.url, e->shm->self_url, sizeof(hb.url));
    }
    return sc_heartbeat_encode(&hb, buf, cap);
}

void sc_mb_set_view(sc_engine *e, sc_peer *p, int view, const char *verdict)
{
    if (verdict) {
        apr_cpystrn(p->verdict, verdict, sizeof(p->verdict));
    }
    if (p->view == view) {
        return;
    }
    if (view == SC_VIEW_ALIVE || p->view == SC_VIEW_ALIVE || view == SC_VIEW_DEAD
        || view == SC_VIEW_LEFT) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1221)
                     "member %s (%s:%d): %s -> %s%s%s", p->route[0] ? p->route : "?",
                     p->host, p->port, sc_view_name(p->view), sc_view_name(view),
                     verdict ? ": " : "", verdict ? verdict : "");
    }
    if (view == SC_VIEW_SUSPECT) {
        e->shm->ic.fd_suspected++;
    }
    else if (view == SC_VIEW_DEAD) {
        e->shm->ic.fd_dead++;
    }
    else if (view == SC_VIEW_ALIVE && p->view == SC_VIEW_SUSPECT) {
        e->shm->ic.fd_false_alarms++;
    }
    p->view = view;
    p->state_since = apr_time_now();
    p->checking = 0;
    if (view == SC_VIEW_DEAD && p->out && p->out->state == SC_CS_OPEN) {
        /* found dead: what is queued on our connection waits for TCP's
         * retransmissions, which back off to tens of seconds while the
         * member is unreachable; a new connection reaches it as soon as it
         * is back (a partition healed) */
        sc_tr_close(e, p->out, "member found dead");
    }
}

sc_peer *sc_mb_find_route(sc_engine *e, const char *route)
{
    sc_peer *p, *best = NULL;
    for (p = e->peers; p; p = p->next) {
        if (!strcmp(p->route, route) && p->view != SC_VIEW_REFUSED
            && (!best || p->view == SC_VIEW_ALIVE)) {
            best = p;
        }
    }
    return best;
}

/* Does a static member's resolved address match the heartbeat's? */
static int same_address(const sc_peer *p, const sc_heartbeat *hb)
{
    if (!p->resolved) {
        return 0;
    }
    if (hb->family == 4 && p->sa.ss_family == AF_INET) {
        return !memcmp(&((const struct sockaddr_in *)&p->sa)->sin_addr, hb->addr, 4);
    }
    if (hb->family == 6 && p->sa.ss_family == AF_INET6) {
        return !memcmp(&((const struct sockaddr_in6 *)&p->sa)->sin6_addr, hb->addr, 16);
    }
    return 0;
}

static const char *hb_addr_text(const sc_heartbeat *hb, char *buf, apr_size_t len)
{
    inet_ntop(hb->family == 6 ? AF_INET6 : AF_INET, hb->addr, buf, (socklen_t)len);
    return buf;
}

sc_peer *sc_mb_on_heartbeat(sc_engine *e, const sc_heartbeat *hb, sc_conn *via,
                            const char *from)
{
    sc_peer *p, *q;
    char addr[INET6_ADDRSTRLEN];
    apr_time_t now = sc_engine_now(e);

    hb_addr_text(hb, addr, sizeof(addr));

    /* DomainFilterInterceptor: members of another domain are not members */
    if (e->set->has_domain_filter
        && (hb->domain_len != e->domain_len
            || memcmp(hb->domain, e->domain, (size_t)e->domain_len) != 0)) {
        ap_log_error(APLOG_MARK, APLOG_TRACE1, 0, e->s,
                     "heartbeat of %s from %s filtered: another domain", hb->route, from);
        e->shm->ic.domain_filtered++;
        if (via) {
            if (via->peer && via->peer->view != SC_VIEW_REFUSED) {
                /* a listed member of another domain (a static member list
                 * shared by two domains): not a member, so not one the quorum
                 * counts as known, and not worth reconnecting to often */
                sc_mb_set_view(e, via->peer, SC_VIEW_REFUSED, "another domain");
                apr_cpystrn(via->peer->route, hb->route, sizeof(via->peer->route));
                via->peer->next_connect = now + apr_time_from_sec(5);
            }
            sc_tr_close(e, via, "member of another domain");
        }
        return NULL;
    }

    /* our own route, claimed by another member */
    if (!e->observer && !strcmp(hb->route, e->route) && !(hb->flags & SC_HF_OBSERVER)) {
        apr_time_t their_start = now - apr_time_from_msec((apr_int64_t)hb->alive_ms);
        int we_are_first = e->started <= their_start;
        if (via && via->peer) {
            /* a listed member with our route: not a member, and not worth
             * reconnecting to often */
            sc_mb_set_view(e, via->peer, SC_VIEW_REFUSED,
                           apr_psprintf(e->tmp, "uses this member's route %s", hb->route));
            apr_cpystrn(via->peer->route, hb->route, sizeof(via->peer->route));
            via->peer->next_connect = now + apr_time_from_sec(5);
        }
        /* every heartbeat repeats the claim: say it once per claimant and minute */
        if (!memcmp(e->conflict_id, hb->id, SC_ID_LEN)
            && now - e->conflict_logged < apr_time_from_sec(60)) {
            if (via) {
                sc_tr_close(e, via, "duplicate route");
            }
            return NULL;
        }
        memcpy(e->conflict_id, hb->id, SC_ID_LEN);
        e->conflict_logged = now;
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1222)
                     "the member at %s:%u (from %s) uses this member's route %s: %s",
                     addr, hb->port, from, hb->route,
                     we_are_first ? "it is refused; give every member its own "
                                    "SessionClusterRoute"
                                  : "it was here first, so this member is refused; "
                                    "give every member its own SessionClusterRoute");
        if (via) {
            sc_tr_close(e, via, "duplicate route");
        }
        return NULL;
    }

    /* find it: by id, else by address (a restarted member, or a static member
     * heard for the first time) */
    for (p = e->peers; p; p = p->next) {
        if (p->id_known && !memcmp(p->id, hb->id, SC_ID_LEN)) {
            break;
        }
    }
    if (!p) {
        for (p = e->peers; p; p = p->next) {
            if (p->port == hb->port
                && (!strcmp(p->host, addr) || same_address(p, hb))) {
                break;
            }
        }
    }
    if (!p && via && via->peer) {
        p = via->peer;
    }
    if (!e->use_mcast_rx && (!p || (p->from_dns && !p->is_static))) {
        /* static or DNS membership: the members are the listed ones only */
        if (now - e->stranger_logged > apr_time_from_sec(60)) {
            e->stranger_logged = now;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1227)
                         "heartbeat of %s at %s:%u (from %s) ignored: not one of the "
                         "members listed by the <Cluster> block%s", hb->route, addr,
                         hb->port, from, e->dns ? " or the DNS answer" : "");
        }
        /* its PINGs are still answered (on_frame), so that it can tell we are
         * alive, as Tomcat's cloud members list members they cannot join */
        return NULL;
    }
    if (!p) {
        p = peer_new(e);
        if (!p) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1223)
                         "member table full (%d members): %s ignored", SC_MAX_MEMBERS,
                         hb->route);
            return NULL;
        }
        apr_cpystrn(p->host, addr, sizeof(p->host));
        p->port = hb->port;
        resolve(p);
    }

    /* another live member already holds this route */
    for (q = e->peers; q; q = q->next) {
        if (q != p && !strcmp(q->route, hb->route)
            && (q->view == SC_VIEW_ALIVE || q->view == SC_VIEW_SUSPECT)) {
            if (q->port == hb->port && !strcmp(q->host, addr)) {
                /* the same address: that member restarted under a new id */
                q->view = SC_VIEW_DEAD;
                q->route[0] = '\0';
                continue;
            }
            if (p->view != SC_VIEW_REFUSED) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1224)
                             "the member at %s:%u claims route %s, which the member at "
                             "%s:%d holds: refused", addr, hb->port, hb->route, q->host,
                             q->port);
            }
            apr_cpystrn(p->route, hb->route, sizeof(p->route));
            sc_mb_set_view(e, p, SC_VIEW_REFUSED,
                           apr_psprintf(e->tmp, "route %s is held by %s:%d", hb->route,
                                        q->host, q->port));
            if (via && via->kind == SC_CONN_IN) {
                /* refused: not answered, and its connection closed (it backs
                 * off: closed before an answer); our own connection to it
                 * stays, or we would reconnect to it in a loop */
                sc_tr_close(e, via, "route held by another member");
            }
            return NULL;
        }
    }

    if (p->id_known && !memcmp(p->id, hb->id, SC_ID_LEN)
        && hb->incarnation < p->incarnation) {
        if (now - p->spoof_logged > apr_time_from_sec(60)) {
            p->spoof_logged = now;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1225)
                         "heartbeat of %s from %s has an older incarnation than the one "
                         "known: rejected (said once a minute)", hb->route, from);
        }
        return NULL;
    }
    /* a live member's id from another address: somebody else speaking in its
     * name (a member that really moved is dead or gone here first) */
    if (p->id_known && !memcmp(p->id, hb->id, SC_ID_LEN)
        && (p->view == SC_VIEW_ALIVE || p->view == SC_VIEW_SUSPECT)
        && (p->port != hb->port || (strcmp(p->host, addr) != 0 && !same_address(p, hb)))) {
        if (now - p->spoof_logged > apr_time_from_sec(60)) {
            p->spoof_logged = now;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1301)
                         "heartbeat in the name of live member %s (%s:%d) claims %s:%u "
                         "(from %s): rejected (said once a minute)", p->route, p->host,
                         p->port, addr, hb->port, from);
        }
        if (via) {
            sc_tr_close(e, via, "heartbeat in another member's name");
        }
        return NULL;
    }
    if (hb->incarnation != p->incarnation) {
        /* a new incarnation (or a member first heard) may hold another key
         * than before: connect again at once, and take its address's
         * connections again (penalized for refused frames while it had a
         * wrong key); with a key, this heartbeat is authentic */
        if (p->auth_backoff_ms) {
            p->auth_backoff_ms = 0;
            p->next_connect = 0;
        }
        if (e->crypto) {
            sc_tr_forgive(e, addr);
        }
        /* a new incarnation numbers its frames and heartbeats from 1 again */
        if (p->replay) {
            memset(p->replay, 0, sizeof(*p->replay));
            if (via) {
                sc_replay_take(p->replay, via->rx_seq);
            }
        }
        p->hb_seq_max = 0;
    }
    else if (!via && p->hb_seq_max && hb->seq <= p->hb_seq_max) {
        /* an old or repeated multicast heartbeat */
        if (e->crypto) {
            e->shm->c.replays++;
        }
        return NULL;
    }
    if (!via) {
        p->hb_seq_max = hb->seq;
    }
    if (p->incarnation && hb->incarnation != p->incarnation
        && (p->view != SC_VIEW_CONFIGURED)) {
        p->restarts_seen++;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1226)
                     "member %s (%s:%u) rejoined with a new incarnation", hb->route,
                     addr, hb->port);
    }
    if (p->view == SC_VIEW_LEFT && hb->incarnation == p->incarnation) {
        return p;      /* a heartbeat still in flight after its goodbye */
    }

    memcpy(p->id, hb->id, SC_ID_LEN);
    p->id_known = 1;
    p->incarnation = hb->incarnation;
    apr_cpystrn(p->route, hb->route, sizeof(p->route));
    memcpy(p->domain, hb->domain, hb->domain_len);
    p->domain[hb->domain_len] = '\0';
    p->hb_state = hb->state;
    p->observer = (hb->flags & SC_HF_OBSERVER) != 0;
    p->alive_ms = hb->alive_ms;
    p->has_load = hb->has_ext;
    p->busy = hb->busy;
    p->capacity = hb->capacity;
    p->sessions = hb->sessions;
    apr_cpystrn(p->url, hb->url, sizeof(p->url));
    p->last_heard = now;
    p->backoff_ms = 0;
    if (strcmp(p->host, addr) != 0 || p->port != hb->port) {
        if (!p->is_static) {
            apr_cpystrn(p->host, addr, sizeof(p->host));
            p->port = hb->port;
            resolve(p);
        }
    }
    if (hb->state == SC_MS_LEAVING) {
        sc_mb_set_view(e, p, SC_VIEW_LEFT, "said goodbye");
    }
    else if (hb->state == SC_MS_RESTARTING) {
        sc_mb_set_view(e, p, SC_VIEW_RESTARTING, "announced a restart");
    }
    else if (p->view != SC_VIEW_ALIVE) {
        const char *why = p->view == SC_VIEW_SUSPECT
                              ? "answered after a silence"
                              : via ? "heard over TCP" : "heard by multicast";
        sc_mb_set_view(e, p, SC_VIEW_ALIVE, why);
    }
    if (!p->out && !p->observer && p->resolved
        && !(p->auth_backoff_ms && now < p->next_connect)) {
        sc_tr_connect(e, p);
    }
    return p;
}

static void backoff(sc_peer *p, apr_time_t now)
{
    if (p->backoff_ms < 100) {
        p->backoff_ms = 100;
    }
    else if (p->backoff_ms < 1000) {
        p->backoff_ms *= 2;
    }
    p->next_connect = now + apr_time_from_msec(p->backoff_ms);
}

void sc_mb_on_goodbye(sc_engine *e, sc_peer *p, const char *why)
{
    if (!strcmp(why, "restarting")) {
        sc_mb_set_view(e, p, SC_VIEW_RESTARTING, "announced a restart");
    }
    else {
        sc_mb_set_view(e, p, SC_VIEW_LEFT, "said goodbye");
    }
    /* published at once: a front's children see it before this engine
     * answers what follows the goodbye on the connection (a PING: the
     * leaving member waits for that PONG before httpd is signalled) */
    sc_mb_publish(e);
}

/* Its connection broke without a goodbye: check at once. */
void sc_mb_on_conn_lost(sc_engine *e, sc_peer *p, const char *why)
{
    apr_time_t now = sc_engine_now(e);
    if (p->auth_backoff_ms && now < p->next_connect) {
        /* it refused our key: no check, no reconnection before the time */
        p->last_lost = now;
        return;
    }
    if (now - p->last_lost < apr_time_from_sec(1)) {
        /* lost again at once (it closes what we open): back off, do not
         * hammer it; its heartbeats or dropTime decide */
        p->last_lost = now;
        backoff(p, now);
        return;
    }
    p->last_lost = now;
    if (p->view != SC_VIEW_ALIVE && p->view != SC_VIEW_SUSPECT) {
        backoff(p, sc_engine_now(e));
        return;
    }
    apr_snprintf(p->verdict, sizeof(p->verdict), "connection lost (%s): checking", why);
    e->shm->ic.fd_checks++;
    p->checking = 1;
    p->check_deadline = sc_engine_now(e) + apr_time_from_msec(e->set->tcp_answer_timeout_ms);
    p->next_connect = 0;
    sc_tr_connect(e, p);
}

void sc_mb_on_auth_refused(sc_engine *e, sc_peer *p, const char *why)
{
    apr_time_t now = sc_engine_now(e);
    /* 0.5 s, doubled up to 30 s: a member with another key (or one that
     * refuses us) is tried a few times a minute, not in a loop (each try is
     * an AuthFailure there or here) */
    p->auth_backoff_ms = p->auth_backoff_ms <= 0 ? 500
                         : p->auth_backoff_ms >= 15000 ? 30000 : p->auth_backoff_ms * 2;
    p->next_connect = now + apr_time_from_msec(p->auth_backoff_ms);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1351)
                 "connection to member %s (%s:%d) refused (%s): "
                 "the next one in %d ms", p->route[0] ? p->route : "?", p->host, p->port,
                 why, p->auth_backoff_ms);
}

void sc_mb_on_refused(sc_engine *e, sc_peer *p, const char *why)
{
    if (p->view == SC_VIEW_ALIVE || p->view == SC_VIEW_SUSPECT) {
        if (e->set->has_tcp_failure_detector || p->checking) {
            sc_mb_set_view(e, p, SC_VIEW_DEAD,
                           apr_psprintf(e->tmp, "TCP check: %s", why));
        }
    }
    else if (p->view == SC_VIEW_CONFIGURED) {
        apr_snprintf(p->verdict, sizeof(p->verdict), "not reachable: %s", why);
    }
    backoff(p, sc_engine_now(e));
}

/* TcpFailureDetector: the member is suspect until it answers a PING within
 * connectTimeout, else dead; with performReadTest="true", within
 * readTestTimeout (Tomcat's read test: a reply awaited that long after the
 * connection).  Unlike Tomcat's, a check without the read test still waits for
 * the answer: a frozen process's kernel accepts connections and takes what is
 * written, so an accepted connection proves nothing here. */
static void start_check(sc_engine *e, sc_peer *p, apr_time_t now, const char *verdict)
{
    sc_mb_set_view(e, p, SC_VIEW_SUSPECT, NULL);
    apr_cpystrn(p->verdict, verdict, sizeof(p->verdict));   /* on the page, not logged */
    p->checking = 1;
    e->shm->ic.fd_checks++;
    p->check_deadline = now + apr_time_from_msec(e->set->tcp_answer_timeout_ms);
    if (p->out && p->out->state == SC_CS_OPEN) {
        unsigned char buf[SC_HB_MAX_LEN];
        apr_size_t n = sc_mb_heartbeat(e, e->state, buf, sizeof(buf));
        sc_tr_send_frame(e, p->out, SC_MSG_PING, 0, ++e->seq, buf, n);
    }
}

apr_time_t sc_mb_verdict_due(const sc_engine *e, const sc_peer *p)
{
    apr_time_t due;
    if (p->view == SC_VIEW_SUSPECT && p->checking) {
        due = p->check_deadline;
    }
    else if (p->view == SC_VIEW_ALIVE) {
        /* silence past dropTime: dead, or suspect and checked */
        due = p->last_heard + apr_time_from_msec(e->set->drop_ms);
        if (e->set->has_tcp_failure_detector) {
            due += apr_time_from_msec(e->set->tcp_answer_timeout_ms);
        }
    }
    else {
        return 0;
    }
    /* the tick that gives it comes within a heartbeat period */
    return due + apr_time_from_msec(e->set->heartbeat_ms);
}

void sc_mb_tick(sc_engine *e, apr_time_t now)
{
    sc_peer *p;
    int send_hb = now >= e->next_heartbeat;
    /* a TCP ping goes with every heartbeat, and between heartbeats when
     * TcpPingInterceptor's interval is shorter */
    int send_ping = send_hb || now >= e->next_ping;

    if (send_hb) {
        e->next_heartbeat = now + apr_time_from_msec(e->set->heartbeat_ms);
        sc_tr_mcast_send(e, e->state);
    }
    if (send_ping) {
        e->next_ping = now + apr_time_from_msec(e->set->tcp_ping_ms);
    }
    for (p = e->peers; p; p = p->next) {
        apr_interval_time_t silent = now - p->last_heard;

        /* a connection of ours not connected within connectTimeout (at least
         * a second): its SYNs go unanswered (a partition, a host gone).  It
         * is given up and made again, so that a member back on the network is
         * reached at once, not at the kernel's next SYN retransmission, which
         * after a long partition comes tens of seconds later */
        if (p->out && p->out->state == SC_CS_CONNECTING
            && now - p->out->opened > apr_time_from_msec(e->set->tcp_check_timeout_ms > 1000
                                                         ? e->set->tcp_check_timeout_ms
                                                         : 1000)) {
            sc_tr_close(e, p->out, "not connected within connectTimeout");
            backoff(p, now);
        }
        /* keep a connection to every member that is or may be alive */
        if (!p->out && p->resolved && !p->observer
            && (p->is_static || p->view == SC_VIEW_ALIVE || p->view == SC_VIEW_SUSPECT
                || p->view == SC_VIEW_RESTARTING)
            && now >= p->next_connect) {
            sc_tr_connect(e, p);
            if (!p->out && p->next_connect <= now) {
                p->next_connect = now + apr_time_from_msec(p->backoff_ms ? p->backoff_ms
                                                                         : 100);
            }
        }
        /* TCP heartbeat (static members, TcpPingInterceptor, failure checks) */
        if (p->out && p->out->state == SC_CS_OPEN && send_ping) {
            unsigned char buf[SC_HB_MAX_LEN];
            apr_size_t n = sc_mb_heartbeat(e, e->state, buf, sizeof(buf));
            sc_tr_send_frame(e, p->out, SC_MSG_PING, 0, ++e->seq, buf, n);
            e->shm->ic.pings_out++;
        }

        switch (p->view) {
        case SC_VIEW_ALIVE:
            if (silent > apr_time_from_msec(e->set->drop_ms)) {
                if (e->set->has_tcp_failure_detector) {
                    start_check(e, p, now, apr_psprintf(e->tmp, "silent for %" APR_TIME_T_FMT
                                                        " ms: TCP check running",
                                                        apr_time_as_msec(silent)));
                }
                else {
                    sc_mb_set_view(e, p, SC_VIEW_DEAD,
                                   apr_psprintf(e->tmp, "no heartbeat for %ld ms (dropTime)",
                                                e->set->drop_ms));
                }
            }
            break;
        case SC_VIEW_SUSPECT:
            if (p->checking && now > p->check_deadline) {
                sc_mb_set_view(e, p, SC_VIEW_DEAD,
                               apr_psprintf(e->tmp, "no answer to the TCP check within "
                                            "%ld ms%s after %" APR_TIME_T_FMT " ms of "
                                            "silence", e->set->tcp_answer_timeout_ms,
                                            e->set->tcp_read_test ? " (readTestTimeout)"
                                                                  : " (connectTimeout)",
                                            apr_time_as_msec(silent)));
            }
            break;
        case SC_VIEW_RESTARTING:
            if (silent > apr_time_from_msec(e->set->drop_ms * 2)) {
                sc_mb_set_view(e, p, SC_VIEW_DEAD, "did not come back from its restart");
            }
            break;
        default:
            break;
        }
        /* a lost connection's check that found neither refusal nor answer */
        if (p->checking && p->view == SC_VIEW_ALIVE && now > p->check_deadline) {
            if (silent > apr_time_from_msec(e->set->tcp_answer_timeout_ms)) {
                sc_mb_set_view(e, p, SC_VIEW_DEAD,
                               apr_psprintf(e->tmp, "connection lost and no answer within "
                                            "%ld ms%s", e->set->tcp_answer_timeout_ms,
                                            e->set->tcp_read_test ? " (readTestTimeout)"
                                                                  : " (connectTimeout)"));
            }
            else {
                p->checking = 0;
                apr_cpystrn(p->verdict, "heard since its connection was lost",
                            sizeof(p->verdict));
            }
        }
    }
}

void sc_mb_publish(sc_engine *e)
{
    sc_shm_t *shm = e->shm;
    sc_peer *p;
    int seen[SC_MAX_MEMBERS], i;

    memset(seen, 0, sizeof(seen));
    for (p = e->peers; p; p = p->next) {
        sc_shm_member *m;
        if (p->slot < 0) {
            continue;
        }
        seen[p->slot] = 1;
        m = &shm->members[p->slot];
        sc_shm_write_begin(&m->seq);
        m->view = (apr_uint32_t)p->view;
        m->hb_state = (apr_uint32_t)p->hb_state;
        m->is_static = (apr_uint32_t)p->is_static;
        m->observer = (apr_uint32_t)p->observer;
        memcpy(m->id, p->id, 16);
        m->incarnation = p->incarnation;
        m->restarts_seen = p->restarts_seen;
        apr_cpystrn(m->route, p->route, sizeof(m->route));
        apr_cpystrn(m->addr, p->host, sizeof(m->addr));
        m->port = (apr_uint32_t)p->port;
        apr_cpystrn(m->domain, p->domain, sizeof(m->domain));
        m->first_seen = p->first_seen;
        m->last_heard = sc_engine_wall(e, p->last_heard);
        m->state_since = p->state_since;
        if (p->view == SC_VIEW_ALIVE
            && (p->hb_state == SC_MS_READY || p->hb_state == SC_MS_DRAINING)) {
            if (!p->serving_since || p->serving_incarnation != p->incarnation) {
                p->serving_since = apr_time_now();
                p->serving_incarnation = p->incarnation;
            }
        }
        else {
            if (p->serving_since) {
                p->stopped_serving = 1;
            }
            p->serving_since = 0;
        }
        m->serving_since = p->serving_since;
        m->returned = (apr_uint32_t)p->stopped_serving;
        m->alive_ms = p->alive_ms;
        m->has_load = (apr_uint32_t)p->has_load;
        m->busy = p->busy;
        m->capacity = p->capacity;
        m->sessions = p->sessions;
        apr_cpystrn(m->url, p->url, sizeof(m->url));
        apr_cpystrn(m->verdict, p->verdict, sizeof(m->verdict));
        m->c = p->c;
        sc_shm_write_end(&m->seq);
    }
    for (i = 0; i < SC_MAX_MEMBERS; i++) {
        if (!seen[i] && shm->members[i].view != SC_VIEW_FREE) {
            sc_shm_write_begin(&shm->members[i].seq);
            shm->members[i].view = SC_VIEW_FREE;
            sc_shm_write_end(&shm->members[i].seq);
        }
    }
}

/* A heartbeat on a member's connection (HELLO, PING or PONG): the member
 * heard, and answered with ours unless it is an answer itself. */
void sc_mb_on_heartbeat_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                              const unsigned char *payload)
{
    sc_heartbeat hb;
    const char *err;
    sc_peer *p;

    if ((err = sc_heartbeat_decode(payload, h->length, &hb))) {
        sc_tr_bad_frame(e, c, err);
        return;
    }
    if (memcmp(hb.id, h->sender, SC_ID_LEN) != 0) {
        sc_tr_bad_frame(e, c, "heartbeat id differs from the frame's sender");
        return;
    }
    if (e->crypto && !c->hello_seen) {
        /* the first heartbeat on this connection, not checked against its
         * sender's frames yet (the transport's open_frame): from the
         * incarnation known, its number must be new; a later incarnation
         * starts a new window (sc_mb_on_heartbeat), an earlier one is refused
         * there */
        sc_peer *q = c->peer;
        if (!q) {
            for (q = e->peers; q; q = q->next) {
                if (q->id_known && !memcmp(q->id, h->sender, SC_ID_LEN)) {
                    break;
                }
            }
        }
        if (q && q->id_known && !memcmp(q->id, h->sender, SC_ID_LEN) && q->replay
            && hb.incarnation == q->incarnation
            && sc_replay_take(q->replay, h->seq) != 0) {
            sc_tr_replayed(e, c);
            return;
        }
    }
    c->hello_seen = 1;
    p = sc_mb_on_heartbeat(e, &hb, c, c->remote);
    if (!p) {
        /* refused or filtered (the connection is closed then), or a member
         * that is not ours to list, which may still check that we live */
        if (c->state == SC_CS_OPEN && h->type != SC_MSG_PONG) {
            unsigned char buf[SC_HB_MAX_LEN];
            apr_size_t n = sc_mb_heartbeat(e, e->state, buf, sizeof(buf));
            sc_tr_send_frame(e, c, SC_MSG_PONG, 0, ++e->seq, buf, n);
        }
        return;
    }
    if (c->kind == SC_CONN_IN && !c->peer) {
        c->peer = p;
    }
    if (c->kind == SC_CONN_OUT && c->peer == p) {
        p->auth_backoff_ms = 0;       /* it answers on our connection */
    }
    if (e->crypto && !p->replay) {
        p->replay = calloc(1, sizeof(*p->replay));
        if (p->replay) {
            sc_replay_take(p->replay, h->seq);
        }
    }
    if (h->type != SC_MSG_PONG) {
        unsigned char buf[SC_HB_MAX_LEN];
        apr_size_t n = sc_mb_heartbeat(e, e->state, buf, sizeof(buf));
        sc_tr_send_frame(e, c, SC_MSG_PONG, 0, ++e->seq, buf, n);
    }
    else if (p->leave_wait) {
        p->leave_wait = 0;            /* it took our goodbye in (sc_engine.c) */
    }
}

/* GOODBYE: the member leaves, or restarts; from a member in another state
 * (starting, ready), only the connection it came on closes (the Transport's
 * keepAliveCount or keepAliveTime there): its close is no loss, and the
 * member stays as it is. */
void sc_mb_on_goodbye_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                            const unsigned char *payload)
{
    if (c->peer) {
        if (h->length && payload[0] != SC_MS_LEAVING && payload[0] != SC_MS_RESTARTING) {
            return;
        }
        sc_mb_on_goodbye(e, c->peer, h->length && payload[0] == SC_MS_RESTARTING
                         ? "restarting" : "left");
    }
}
