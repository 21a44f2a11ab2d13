/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_cloud.c -- CloudMembershipService with the DNS provider: the members are
 * the addresses a DNS name resolves to (a Kubernetes headless service, say),
 * each at this member's Receiver port.  A thread of the engine resolves the name
 * every refreshInterval, so a slow resolver never stalls heartbeats; the event
 * loop turns new addresses into members and lets the failure detector judge
 * those that vanished.
 */
#include "sc_core.h"
#include "sc_cloud.h"
#include "sc_membership.h"
#include "sc_transport.h"

#include "apr_thread_proc.h"
#include "apr_thread_mutex.h"

#include <netdb.h>
#include <arpa/inet.h>

APLOG_USE_MODULE(session_cluster);

struct sc_dns {
    apr_thread_mutex_t *lock;
    apr_thread_t *thread;
    const char *name;
    long interval_ms;
    volatile int stop;
    apr_uint64_t generation;           /* bumped when the answer changes */
    char addrs[SC_MAX_MEMBERS][INET6_ADDRSTRLEN];
    int naddrs;
    char error[160];
};

static int addr_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void *APR_THREAD_FUNC resolver(apr_thread_t *t, void *data)
{
    sc_dns *d = data;
    while (!d->stop) {
        struct addrinfo hints, *res = NULL, *ai;
        char found[SC_MAX_MEMBERS][INET6_ADDRSTRLEN];
        int n = 0, rc, changed, i;

        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        rc = getaddrinfo(d->name, NULL, &hints, &res);
        if (rc == 0) {
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
            qsort(found, (size_t)n, INET6_ADDRSTRLEN, addr_cmp);
        }
        apr_thread_mutex_lock(d->lock);
        if (rc != 0) {
            apr_snprintf(d->error, sizeof(d->error), "%s", gai_strerror(rc));
            changed = 0;
        }
        else {
            d->error[0] = '\0';
            changed = n != d->naddrs
                      || memcmp(found, d->addrs, (size_t)n * INET6_ADDRSTRLEN) != 0;
            if (changed) {
                memcpy(d->addrs, found, (size_t)n * INET6_ADDRSTRLEN);
                d->naddrs = n;
                d->generation++;
            }
        }
        apr_thread_mutex_unlock(d->lock);
        for (i = 0; i < d->interval_ms / 50 && !d->stop; i++) {
            apr_sleep(apr_time_from_msec(50));
        }
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

int sc_cloud_start(sc_engine *e)
{
    const char *provider = e->set->cloud_provider;
    const char *name = e->set->cloud_dns_name;
    sc_dns *d;

    if (!provider || (strcasecmp(provider, "dns") != 0
                      && !strstr(provider, "DNSMembershipProvider"))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1250)
                     "CloudMembershipService: provider \"%s\" is not implemented; use "
                     "membershipProviderClassName=\"dns\" with a headless service name",
                     provider ? provider : "");
        return -1;
    }
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
    d = apr_pcalloc(e->pool, sizeof(*d));
    d->name = apr_pstrdup(e->pool, name);
    d->interval_ms = e->set->cloud_refresh_ms;
    if (apr_thread_mutex_create(&d->lock, APR_THREAD_MUTEX_DEFAULT, e->pool) != APR_SUCCESS
        || apr_thread_create(&d->thread, NULL, resolver, d, e->pool) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1252)
                     "CloudMembershipService: cannot start the resolver thread");
        return -1;
    }
    e->dns = d;
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1253)
                 "CloudMembershipService: members are the addresses of %s, port %d, "
                 "resolved every %ld ms", d->name, e->self_port, d->interval_ms);
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

void sc_cloud_tick(sc_engine *e)
{
    sc_dns *d = e->dns;
    char addrs[SC_MAX_MEMBERS][INET6_ADDRSTRLEN];
    int n, i;
    sc_peer *p;
    const char *list = "";

    if (!d) {
        return;
    }
    apr_thread_mutex_lock(d->lock);
    if (d->generation == e->dns_seen) {
        apr_thread_mutex_unlock(d->lock);
        return;
    }
    e->dns_seen = d->generation;
    n = d->naddrs;
    memcpy(addrs, d->addrs, sizeof(addrs));
    apr_thread_mutex_unlock(d->lock);

    /* addresses gone from the answer: no more reconnecting once they die */
    for (p = e->peers; p; p = p->next) {
        int listed = 0;
        if (!p->from_dns) {
            continue;
        }
        for (i = 0; i < n; i++) {
            listed |= !strcmp(p->host, addrs[i]) && p->port == e->self_port;
        }
        p->is_static = listed;
        if (!listed && p->view != SC_VIEW_LEFT && p->view != SC_VIEW_DEAD) {
            /* as Tomcat's cloud membership: gone from the answer, gone */
            sc_mb_set_view(e, p, SC_VIEW_LEFT,
                           apr_psprintf(e->tmp, "no longer in the DNS answer for %s",
                                        d->name));
            if (p->out) {
                sc_tr_close(e, p->out, "no longer in DNS");
            }
        }
    }
    for (i = 0; i < n; i++) {
        list = apr_pstrcat(e->tmp, list, i ? ", " : "", addrs[i], NULL);
        if (!strcmp(addrs[i], e->self_addr)) {
            continue;
        }
        p = sc_mb_add_member(e, addrs[i], e->self_port);
        if (p) {
            p->from_dns = 1;
            p->is_static = 1;
        }
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1254)
                 "CloudMembershipService: %s resolves to %d address(es): %s", d->name, n,
                 list);
}
