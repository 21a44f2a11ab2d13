/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_cloud.c -- CloudMembershipService: the members are the addresses a
 * provider lists, each at this member's Receiver port.  Two providers:
 *   dns         the addresses a DNS name resolves to (a Kubernetes headless
 *               service, say);
 *   kubernetes  (Tomcat's default) the running pods the Kubernetes API
 *               server lists (sc_kube.c).
 * A thread of the engine asks the provider every refreshInterval, so a slow
 * resolver or API server never stalls heartbeats.  The event loop turns new
 * addresses into members; as in Tomcat's CloudMembershipProvider, a member
 * missing from the answers for expirationTime has left.  A failed request
 * changes nothing (the members found last stay), it is logged when the reason
 * changes, and the next one comes a refreshInterval later.
 */
#include "sc_core.h"
#include "sc_cloud.h"
#include "sc_kube.h"
#include "sc_membership.h"
#include "sc_transport.h"

#include "apr_thread_proc.h"
#include "apr_thread_mutex.h"

#include <netdb.h>
#include <arpa/inet.h>

APLOG_USE_MODULE(session_cluster);

typedef struct {
    char addr[INET6_ADDRSTRLEN];
    apr_time_t listed;                 /* the last answer that listed it */
} sc_listed;

struct sc_dns {
    apr_thread_mutex_t *lock;
    apr_thread_t *thread;
    apr_pool_t *tpool;                 /* the thread's, cleared every round */
    int kube;                          /* the kubernetes provider (else dns) */
    const char *name;                  /* dns: the name; kubernetes: the URL */
    sc_kube *k;
    long interval_ms;
    volatile int stop;
    /* written by the thread, under lock */
    apr_uint64_t generation;           /* bumped when the list changes */
    apr_uint64_t answers;              /* bumped by every answer */
    apr_time_t answered;               /* when the last answer came */
    char addrs[SC_MAX_MEMBERS][INET6_ADDRSTRLEN];
    int naddrs;
    char note[256];                    /* what the last answer left out */
    char error[600];                   /* why the last request failed; "" if it did not */
    apr_uint64_t error_seq;            /* bumped when error changes */
    /* the event loop's */
    apr_uint64_t gen_seen, error_seen;
    char error_logged[600];
    sc_listed listed[2 * SC_MAX_MEMBERS];
};

static int addr_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int dns_fetch(sc_dns *d, char (*found)[INET6_ADDRSTRLEN], int *np, char *err,
                     apr_size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    int n = 0, rc, i;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(d->name, NULL, &hints, &res);
    if (rc != 0) {
        apr_snprintf(err, errlen, "cannot resolve %s: %s", d->name, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai && n < SC_MAX_MEMBERS; ai = ai->ai_next) {
        const void *a = ai->ai_family == AF_INET
            ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
            : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        int dup = 0;
        inet_ntop(ai->ai_family, a, found[n], INET6_ADDRSTRLEN);
        for (i = 0; i < n; i++) {
            dup |= !strcmp(found[i], found[n]);
        }
        if (!dup) {
            n++;
        }
    }
    freeaddrinfo(res);
    *np = n;
    return 0;
}

static void *APR_THREAD_FUNC asker(apr_thread_t *t, void *data)
{
    sc_dns *d = data;
    while (!d->stop) {
        char found[SC_MAX_MEMBERS][INET6_ADDRSTRLEN];
        char err[sizeof(d->error)], note[sizeof(d->note)];
        int n = 0, rc, i;

        err[0] = note[0] = '\0';
        apr_pool_clear(d->tpool);
        rc = d->kube ? sc_kube_fetch(d->k, d->tpool, found, SC_MAX_MEMBERS, &n, note,
                                     sizeof(note), err, sizeof(err))
                     : dns_fetch(d, found, &n, err, sizeof(err));
        if (rc == 0) {
            qsort(found, (size_t)n, INET6_ADDRSTRLEN, addr_cmp);
            err[0] = '\0';
        }
        apr_thread_mutex_lock(d->lock);
        if (strcmp(err, d->error) != 0) {
            apr_cpystrn(d->error, err, sizeof(d->error));
            d->error_seq++;
        }
        if (rc == 0) {
            if (!d->answers || n != d->naddrs || memcmp(found, d->addrs, (size_t)n * INET6_ADDRSTRLEN) != 0
                || strcmp(note, d->note) != 0) {
                memcpy(d->addrs, found, (size_t)n * INET6_ADDRSTRLEN);
                d->naddrs = n;
                apr_cpystrn(d->note, note, sizeof(d->note));
                d->generation++;
            }
            d->answers++;
            d->answered = sc_steady_us();   /* against dropTime: a step must not count */
        }
        apr_thread_mutex_unlock(d->lock);
        for (i = 0; i < d->interval_ms / 50 && !d->stop; i++) {
            apr_sleep(apr_time_from_msec(50));
        }
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static int is_provider(const char *provider, const char *short_name, const char *class_tail)
{
    return !strcasecmp(provider, short_name) || strstr(provider, class_tail) != NULL;
}

int sc_cloud_start(sc_engine *e)
{
    const char *provider = e->set->cloud_provider;
    const char *name = e->set->cloud_dns_name;
    sc_dns *d;
    int kube;

    if (!provider || !*provider
        || is_provider(provider, "kubernetes", "KubernetesMembershipProvider")) {
        kube = 1;
    }
    else if (is_provider(provider, "dns", "DNSMembershipProvider")) {
        kube = 0;
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1250)
                     "CloudMembershipService: provider \"%s\" is not implemented; use "
                     "membershipProviderClassName=\"kubernetes\", or \"dns\" with a headless "
                     "service name", provider);
        return -1;
    }
    d = apr_pcalloc(e->pool, sizeof(*d));
    d->kube = kube;
    d->interval_ms = e->set->cloud_refresh_ms;
    if (kube) {
        d->k = sc_kube_new(e->pool, e->self_addr, e->set->cloud_connect_ms,
                           e->set->cloud_read_ms, &d->stop);
        d->name = sc_kube_url(d->k);
        if (sc_kube_problem(d->k)) {
            /* the engine runs on (alone, or with the members that find it);
             * the thread's first round logs the problem too */
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1480)
                         "CloudMembershipService (kubernetes): %s", sc_kube_problem(d->k));
        }
    }
    else {
        if (!name || !*name) {
            name = getenv("DNS_MEMBERSHIP_SERVICE_NAME");
        }
        if (!name || !*name) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1251)
                         "CloudMembershipService (dns): no name to resolve: set "
                         "dnsServiceName on <Membership> or DNS_MEMBERSHIP_SERVICE_NAME in "
                         "httpd's environment");
            return -1;
        }
        d->name = apr_pstrdup(e->pool, name);
    }
    if (apr_pool_create(&d->tpool, e->pool) != APR_SUCCESS
        || apr_thread_mutex_create(&d->lock, APR_THREAD_MUTEX_DEFAULT, e->pool) != APR_SUCCESS
        || apr_thread_create(&d->thread, NULL, asker, d, e->pool) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1252)
                     "CloudMembershipService: cannot start the resolver thread");
        return -1;
    }
    e->dns = d;
    if (kube) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1481)
                     "CloudMembershipService: members are the running pods that %s lists, "
                     "port %d, asked every %ld ms (connectTimeout %ld ms, readTimeout %ld ms, "
                     "expirationTime %ld ms)", d->name, e->self_port, d->interval_ms,
                     e->set->cloud_connect_ms, e->set->cloud_read_ms, e->set->drop_ms);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1253)
                     "CloudMembershipService: members are the addresses of %s, port %d, "
                     "resolved every %ld ms", d->name, e->self_port, d->interval_ms);
    }
    return 0;
}

void sc_cloud_stop(sc_engine *e)
{
    apr_status_t rv;
    if (e->dns) {
        e->dns->stop = 1;
        apr_thread_join(&rv, e->dns->thread);
    }
}

/* the time the answers last listed addr (0: never), and a slot for it */
static sc_listed *listed_slot(sc_dns *d, const char *addr, int make)
{
    sc_listed *free_slot = NULL, *oldest = NULL;
    int i;
    for (i = 0; i < (int)(sizeof(d->listed) / sizeof(d->listed[0])); i++) {
        sc_listed *l = &d->listed[i];
        if (l->addr[0] && !strcmp(l->addr, addr)) {
            return l;
        }
        if (!l->addr[0]) {
            free_slot = free_slot ? free_slot : l;
        }
        else if (!oldest || l->listed < oldest->listed) {
            oldest = l;
        }
    }
    if (!make) {
        return NULL;
    }
    free_slot = free_slot ? free_slot : oldest;
    apr_cpystrn(free_slot->addr, addr, sizeof(free_slot->addr));
    free_slot->listed = 0;
    return free_slot;
}

void sc_cloud_tick(sc_engine *e)
{
    sc_dns *d = e->dns;
    char addrs[SC_MAX_MEMBERS][INET6_ADDRSTRLEN];
    char error[600], note[256];
    int n, i, changed, error_changed;
    apr_time_t answered;
    sc_peer *p;
    const char *list = "";
    const char *what;

    if (!d) {
        return;
    }
    apr_thread_mutex_lock(d->lock);
    if (d->answers == e->dns_seen && d->error_seq == d->error_seen) {
        apr_thread_mutex_unlock(d->lock);
        return;
    }
    changed = d->generation != d->gen_seen;
    error_changed = d->error_seq != d->error_seen;
    d->gen_seen = d->generation;
    d->error_seen = d->error_seq;
    e->dns_seen = d->answers;
    n = d->naddrs;
    answered = d->answered;
    memcpy(addrs, d->addrs, sizeof(addrs));
    apr_cpystrn(error, d->error, sizeof(error));
    apr_cpystrn(note, d->note, sizeof(note));
    apr_thread_mutex_unlock(d->lock);
    what = d->kube ? "kubernetes" : "dns";

    if (error_changed) {
        if (error[0]) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1482)
                         "CloudMembershipService (%s): %s; the members found last stay, "
                         "asking again every %ld ms", what, error, d->interval_ms);
        }
        else if (d->error_logged[0]) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1483)
                         "CloudMembershipService (%s): answered again (it failed with: %s)",
                         what, d->error_logged);
        }
        apr_cpystrn(d->error_logged, error, sizeof(d->error_logged));
    }
    if (!answered) {
        return;                        /* nothing listed yet */
    }
    for (i = 0; i < n; i++) {
        listed_slot(d, addrs[i], 1)->listed = answered;
    }

    /* members missing from the answers for expirationTime have left (as
     * Tomcat's Membership.expire after each fetch) */
    for (p = e->peers; p; p = p->next) {
        sc_listed *l;
        int listed = 0;
        if (!p->from_dns) {
            continue;
        }
        for (i = 0; i < n; i++) {
            listed |= !strcmp(p->host, addrs[i]) && p->port == e->self_port;
        }
        l = listed_slot(d, p->host, 0);
        if (!listed && (!l || answered - l->listed >= apr_time_from_msec(e->set->drop_ms))) {
            p->is_static = 0;
            if (p->view != SC_VIEW_LEFT && p->view != SC_VIEW_DEAD) {
                /* as Tomcat's cloud membership: gone from the answers, gone */
                sc_mb_set_view(e, p, SC_VIEW_LEFT,
                               d->kube ? apr_psprintf(e->tmp, "not listed by the API server "
                                                      "for %ld ms", e->set->drop_ms)
                                       : apr_psprintf(e->tmp, "no longer in the DNS answer "
                                                      "for %s", d->name));
                if (p->out) {
                    sc_tr_close(e, p->out, d->kube ? "no longer listed" : "no longer in DNS");
                }
            }
        }
        else {
            p->is_static = 1;
        }
    }
    if (!changed) {
        return;
    }
    for (i = 0; i < n; i++) {
        list = apr_pstrcat(e->tmp, list, i ? ", " : "", addrs[i], NULL);
        if (!strcmp(addrs[i], e->self_addr)) {
            continue;
        }
        p = sc_mb_add_member(e, addrs[i], e->self_port);
        if (p) {
            if (d->kube && !p->from_dns) {
                apr_snprintf(p->verdict, sizeof(p->verdict),
                             "listed by the API server, not heard yet");
            }
            p->from_dns = 1;
            p->is_static = 1;
        }
    }
    if (d->kube) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1484)
                     "CloudMembershipService: the API server lists %d running pod(s) besides "
                     "this one: %s%s%s%s", n, n ? list : "(none)", note[0] ? " (" : "", note,
                     note[0] ? ")" : "");
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1254)
                     "CloudMembershipService: %s resolves to %d address(es): %s", d->name, n,
                     list);
    }
}
