/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_transport.c -- the engine's sockets: the receiver (NioReceiver), outgoing
 * connections to members (PooledParallelSender: one persistent connection per
 * member, reconnected with backoff), the multicast socket (McastService) and
 * the local socket children use to reach the engine.  Frames are read into a
 * bounded buffer; a frame that fails its checks closes its connection, is
 * counted and logged, and never reaches anything else.
 *
 * The engine is Unix-only (it is a forked daemon, like mod_cgid's), so it uses
 * poll(2) and BSD sockets directly.
 */
#include "sc_core.h"
#include "sc_transport.h"
#include "sc_ring.h"
#include "sc_crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <netdb.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>

#include "unixd.h"

APLOG_USE_MODULE(session_cluster);

#define SC_RBUF_INITIAL 16384
#define SC_BUF_KEEP (64 * 1024)   /* larger buffers are given back when empty */

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static const char *sa_text(const struct sockaddr *sa, char *buf, apr_size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    }
    else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    apr_snprintf(buf, len, "%s:%d", host, port);
    return buf;
}

/* "auto": the first address of an interface that is up and not loopback
 * (Tomcat advertises whatever the host name resolves to, which is 127.0.1.1 on
 * many systems: its most common pitfall).  Only when there is none, loopback. */
const char *sc_tr_resolve_auto(apr_pool_t *p, int *family, unsigned char *bytes,
                               char *text, apr_size_t textlen)
{
    struct ifaddrs *ifa, *i;
    const char *how = NULL;
    if (getifaddrs(&ifa) == 0) {
        for (i = ifa; i; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET
                || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) {
                continue;
            }
            memset(bytes, 0, 16);
            memcpy(bytes, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
            *family = 4;
            inet_ntop(AF_INET, bytes, text, textlen);
            how = apr_psprintf(p, "the address of interface %s", i->ifa_name);
            break;
        }
        freeifaddrs(ifa);
    }
    if (!how) {
        memset(bytes, 0, 16);
        bytes[0] = 127;
        bytes[3] = 1;
        *family = 4;
        apr_cpystrn(text, "127.0.0.1", textlen);
        how = "loopback: this host has no other interface up";
    }
    return how;
}

static int parse_addr(const char *text, int *family, unsigned char *bytes)
{
    memset(bytes, 0, 16);
    if (inet_pton(AF_INET, text, bytes) == 1) {
        *family = 4;
        return 1;
    }
    if (inet_pton(AF_INET6, text, bytes) == 1) {
        *family = 6;
        return 1;
    }
    return 0;
}

static socklen_t make_sa(struct sockaddr_storage *ss, int family,
                         const unsigned char *bytes, int port)
{
    memset(ss, 0, sizeof(*ss));
    if (family == 4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((unsigned short)port);
        memcpy(&in->sin_addr, bytes, 4);
        return sizeof(*in);
    }
    else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)port);
        memcpy(&in6->sin6_addr, bytes, 16);
        return sizeof(*in6);
    }
}

int sc_tr_listen(sc_engine *e)
{
    const char *addr = e->set->receiver_address;
    long port = e->set->receiver_port;
    long tries = e->set->receiver_auto_bind;
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd = -1, one = 1, i;
    apr_time_t give_up = sc_engine_now(e) + apr_time_from_sec(5);

    if (!addr || !strcmp(addr, "auto")) {
        const char *how = sc_tr_resolve_auto(e->pool, &e->self_family,
                                             e->self_addr_bytes, e->self_addr,
                                             sizeof(e->self_addr));
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1201)
                     "Receiver address=\"auto\": using %s (%s)", e->self_addr, how);
    }
    else if (parse_addr(addr, &e->self_family, e->self_addr_bytes)) {
        apr_cpystrn(e->self_addr, addr, sizeof(e->self_addr));
    }
    else {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(addr, NULL, &hints, &res) != 0 || !res) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1202)
                         "Receiver address \"%s\" does not resolve", addr);
            return -1;
        }
        sa_text(res->ai_addr, e->self_addr, sizeof(e->self_addr));
        *strrchr(e->self_addr, ':') = '\0';
        parse_addr(e->self_addr, &e->self_family, e->self_addr_bytes);
        freeaddrinfo(res);
    }

    for (;;) {
        for (i = 0; i < tries; i++) {
            sl = make_sa(&ss, e->self_family, e->self_addr_bytes, (int)(port + i));
            fd = socket(ss.ss_family, SOCK_STREAM, 0);
            if (fd < 0) {
                return -1;
            }
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (bind(fd, (struct sockaddr *)&ss, sl) == 0 && listen(fd, 128) == 0) {
                set_nonblock(fd);
                e->listen_fd = fd;
                e->self_port = (int)(port + i);
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1203)
                             "Receiver listening on %s:%d", e->self_addr, e->self_port);
                return 0;
            }
            close(fd);
        }
        /* a replaced engine may still hold the port for a moment */
        if (sc_engine_now(e) > give_up) {
            break;
        }
        apr_sleep(apr_time_from_msec(100));
    }
    ap_log_error(APLOG_MARK, APLOG_ERR, errno, e->s, SCLOGNO(1204)
                 "Receiver cannot bind %s, ports %ld-%ld (autoBind %ld)", e->self_addr,
                 port, port + tries - 1, tries);
    return -1;
}

int sc_tr_mcast_open(sc_engine *e)
{
    const char *group = e->set->mcast_address;
    long port = e->set->mcast_port;
    const char *bind_addr = e->set->mcast_bind;
    long ttl = e->set->mcast_ttl;
    int loop = !e->set->mcast_loopback_disabled;
    int fd, one = 1;
    struct sockaddr_in sin;
    struct ip_mreq mreq;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, group, &sin.sin_addr) != 1) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1205)
                     "McastService: only IPv4 multicast groups are supported, not %s",
                     group);
        return -1;
    }
    memcpy(&e->mcast_sa, &sin, sizeof(sin));
    e->mcast_salen = sizeof(sin);

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
#ifdef SO_REUSEPORT
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
#endif
    /* bound to the group: datagrams of other groups on the same port stay out */
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, e->s, SCLOGNO(1206)
                     "McastService: cannot bind %s:%ld", group, port);
        close(fd);
        return -1;
    }
    memset(&mreq, 0, sizeof(mreq));
    mreq.imr_multiaddr = sin.sin_addr;
    mreq.imr_interface.s_addr = htonl(INADDR_ANY);
    if (bind_addr && inet_pton(AF_INET, bind_addr, &mreq.imr_interface) == 1) {
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq.imr_interface,
                   sizeof(mreq.imr_interface));
    }
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, e->s, SCLOGNO(1207)
                     "McastService: cannot join %s (is there a route for 224.0.0.0/4?)",
                     group);
        close(fd);
        return -1;
    }
    if (ttl >= 0) {
        unsigned char t = (unsigned char)ttl;
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &t, sizeof(t));
    }
    {
        unsigned char l = (unsigned char)loop;
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &l, sizeof(l));
    }
    set_nonblock(fd);
    e->mcast_fd = fd;
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1208)
                 "McastService: heartbeats every %ld ms on %s:%ld, dropTime %ld ms",
                 e->set->heartbeat_ms, group, port, e->set->drop_ms);
    return 0;
}

int sc_tr_ipc_listen(sc_engine *e)
{
    struct sockaddr_un sun;
    int fd;
    const char *path = ap_runtime_dir_relative(e->pool,
                           apr_psprintf(e->pool, "session-cluster.%" APR_PID_T_FMT ".sock",
                                        e->parent));
    if (strlen(path) >= sizeof(sun.sun_path)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, e->s, SCLOGNO(1209)
                     "the engine socket path %s is too long", path);
        return -1;
    }
    apr_cpystrn(e->ipc_path, path, sizeof(e->ipc_path));
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    apr_cpystrn(sun.sun_path, path, sizeof(sun.sun_path));
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0
        || listen(fd, 4096) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, e->s, SCLOGNO(1210)
                     "cannot create the engine socket %s", path);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    chmod(path, 0600);
    if (geteuid() == 0) {
        /* children run as User/Group */
        if (chown(path, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, errno, e->s, SCLOGNO(1211)
                         "cannot give %s to the server's User", path);
        }
    }
    set_nonblock(fd);
    e->ipc_fd = fd;
    return 0;
}

static sc_conn *conn_new(sc_engine *e, int fd, int kind, const char *remote)
{
    sc_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    c->fd = fd;
    c->kind = kind;
    c->state = SC_CS_OPEN;
    c->opened = c->last_rx = sc_engine_now(e);
    apr_cpystrn(c->remote, remote, sizeof(c->remote));
    c->next = e->conns;
    e->conns = c;
    return c;
}

static void conn_free(sc_engine *e, sc_conn *c)
{
    sc_conn **pp;
    for (pp = &e->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}

void sc_tr_close(sc_engine *e, sc_conn *c, const char *why)
{
    if (c->state == SC_CS_CLOSED) {
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, e->s, SCLOGNO(1212)
                 "connection %s (%s) closed: %s", c->remote,
                 c->kind == SC_CONN_OUT ? "out" : c->kind == SC_CONN_IN ? "in" : "local",
                 why);
    c->state = SC_CS_CLOSED;
    close(c->fd);
    c->fd = -1;
    if (c->peer && c->peer->out == c) {
        c->peer->out = NULL;
    }
}

/* Queues an event for the layers above (sc_tr_next_event). */
static void event_queue(sc_engine *e, int kind, sc_conn *c, sc_peer *p, const char *why)
{
    sc_tr_event *ev = calloc(1, sizeof(*ev));
    if (!ev) {
        return;
    }
    ev->kind = kind;
    ev->conn = c;
    ev->peer = p;
    ev->goodbye = c ? c->goodbye : 0;
    apr_cpystrn(ev->why, why ? why : "", sizeof(ev->why));
    if (e->ev_tail) {
        e->ev_tail->next = ev;
    }
    else {
        e->ev_head = ev;
    }
    e->ev_tail = ev;
}

int sc_tr_next_event(sc_engine *e, sc_tr_event *out)
{
    sc_tr_event *ev = e->ev_head;
    if (!ev) {
        return 0;
    }
    e->ev_head = ev->next;
    if (!e->ev_head) {
        e->ev_tail = NULL;
    }
    *out = *ev;
    out->next = NULL;
    free(ev);
    return 1;
}

/* The other side closed c, or it broke: closed here, and said above. */
static void conn_lost(sc_engine *e, sc_conn *c)
{
    sc_peer *p = c->kind == SC_CONN_IPC ? NULL : c->peer;
    sc_tr_close(e, c, "closed by the other side");
    event_queue(e, SC_EV_LOST, c, p, "closed without goodbye");
}

void sc_tr_connect(sc_engine *e, sc_peer *p)
{
    int fd, one = 1;
    sc_conn *c;
    char buf[80];

    if (p->out || !p->resolved) {
        return;
    }
    fd = socket(p->sa.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        return;
    }
    set_nonblock(fd);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    e->shm->c.connects++;
    p->c.connects++;
    if (connect(fd, (struct sockaddr *)&p->sa, p->salen) != 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        p->c.connect_failures++;
        e->shm->c.connect_failures++;
        if (err == ECONNREFUSED) {
            event_queue(e, SC_EV_REFUSED, NULL, p, "connection refused");
        }
        return;
    }
    c = conn_new(e, fd, SC_CONN_OUT, sa_text((struct sockaddr *)&p->sa, buf, sizeof(buf)));
    if (!c) {
        close(fd);
        return;
    }
    c->state = SC_CS_CONNECTING;
    c->peer = p;
    p->out = c;
    /* frames on it are sealed for the member's id once it is known from the
     * member itself, else for the address it is reached at (a configured
     * uniqueId is not trusted for this: if it were wrong, nothing would pass) */
    if (p->id_known) {
        sc_crypto_dest_id(c->dest, p->id);
    }
    else {
        int family = p->sa.ss_family == AF_INET6 ? 6 : 4;
        const unsigned char *a = family == 6
            ? (const unsigned char *)&((struct sockaddr_in6 *)&p->sa)->sin6_addr
            : (const unsigned char *)&((struct sockaddr_in *)&p->sa)->sin_addr;
        int port = family == 6 ? ntohs(((struct sockaddr_in6 *)&p->sa)->sin6_port)
                               : ntohs(((struct sockaddr_in *)&p->sa)->sin_port);
        sc_crypto_dest_addr(c->dest, family, a, port);
    }
    c->dest_set = 1;
}

/* Queues bytes on a connection and tries to write them at once. */
/* Sends what the connection has buffered, as far as the socket takes it. */
static int conn_flush(sc_engine *e, sc_conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (apr_size_t)n;
        }
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        else if (n < 0 && errno == EINTR) {
            continue;
        }
        else {
            conn_lost(e, c);
            return -1;
        }
    }
    if (c->woff == c->wlen && c->wcap > SC_BUF_KEEP && !c->keep_buffers) {
        /* all sent: a buffer grown for a large frame is given back (not
         * between the blocks of a state transfer: mapped again for each,
         * its pages would be faulted in and cleared again for each) */
        free(c->wbuf);
        c->wbuf = NULL;
        c->wlen = c->woff = c->wcap = 0;
    }
    return 0;
}

/* Buffers data on the connection and sends it: at once, or, while the engine
 * handles a round of poll events (e->corked), when the round ends, so that
 * the frames (header and payload) and messages of one round go out in one
 * send per connection. */
static int conn_write(sc_engine *e, sc_conn *c, const unsigned char *data, apr_size_t len)
{
    if (c->state == SC_CS_CLOSED) {
        return -1;
    }
    if (c->wlen - c->woff + len > (apr_size_t)e->set->max_message_size * 4 + 65536) {
        /* the peer does not read: give up on it rather than buffer forever */
        apr_uint64_t n = ++e->shm->c.queue_full;
        if (c->peer) {
            c->peer->c.queue_full++;
        }
        /* the first ten, then one in a hundred */
        if (n <= 10 || n % 100 == 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1303)
                         "connection %s %s%s%s closed: it does not read what it is sent "
                         "(%" APR_SIZE_T_FMT " bytes waiting, more than 4 x maxMessageSize"
                         "): QueueFull (%" APR_UINT64_T_FMT " so far)",
                         c->kind == SC_CONN_OUT ? "to" : "from", c->remote,
                         c->peer && c->peer->route[0] ? " of " : "",
                         c->peer && c->peer->route[0] ? c->peer->route : "",
                         c->wlen - c->woff, n);
        }
        sc_tr_close(e, c, "send buffer full");
        return -1;
    }
    if (c->woff > 0 && (c->woff == c->wlen || c->wlen + len > c->wcap)) {
        /* what was sent goes before the buffer grows: the part not sent yet
         * (at most the bound above) moves to the front.  Appending behind
         * it instead grew the buffer by everything sent meanwhile, for as
         * long as the queue never emptied: a state transfer's whole size */
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
    }
    if (c->wlen + len > c->wcap) {
        apr_size_t ncap = c->wcap ? c->wcap : 4096;
        unsigned char *nb;
        while (ncap < c->wlen + len) {
            ncap *= 2;
        }
        nb = realloc(c->wbuf, ncap);
        if (!nb) {
            sc_tr_close(e, c, "out of memory");
            return -1;
        }
        c->wbuf = nb;
        c->wcap = ncap;
    }
    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    if (c->state == SC_CS_OPEN && !e->corked) {
        return conn_flush(e, c);
    }
    return 0;
}

int sc_tr_send_frame(sc_engine *e, sc_conn *c, int type, int flags, apr_uint64_t seq,
                     const void *payload, apr_size_t len)
{
    unsigned char hdr[SC_FRAME_HDR_LEN];
    sc_frame_hdr h;
    int sealed = e->crypto && c->kind != SC_CONN_IPC;
    apr_size_t extra = sealed ? SC_SEAL_OVERHEAD : 0;
    unsigned char *sealed_buf = NULL;
    memset(&h, 0, sizeof(h));
    h.type = (apr_byte_t)type;
    h.flags = (apr_uint16_t)(flags | (sealed ? SC_FF_TAGGED : 0));
    memcpy(h.sender, e->id, SC_ID_LEN);
    /* to members every frame has a number of its own (EncryptInterceptor
     * refuses one seen before); to a child, an answer has its question's */
    h.seq = seq;
    h.length = (apr_uint32_t)len;
    h.tag_length = (apr_uint16_t)extra;
    sc_frame_hdr_encode(&h, hdr);
    if (sealed) {
        /* malloc'd, not from e->tmp: a state transfer seals many blocks of a
         * megabyte in one turn of the loop */
        if (!c->dest_set) {
            /* cannot happen: an inbound connection answers only what it
             * opened, which named its sender */
            sc_tr_close(e, c, "EncryptInterceptor: no destination to seal for");
            return -1;
        }
        sealed_buf = malloc(len + extra);
        if (!sealed_buf
            || sc_crypto_seal_frame(e->crypto, hdr, sizeof(hdr), c->dest, payload, len,
                                    sealed_buf) != 0) {
            free(sealed_buf);
            sc_tr_close(e, c, "EncryptInterceptor: sealing failed");
            return -1;
        }
        payload = sealed_buf;
    }
    {
        /* header and payload in one send */
        int was = e->corked, rc;
        e->corked = 1;
        rc = conn_write(e, c, hdr, sizeof(hdr));
        e->corked = was;
        if (rc == 0) {
            rc = conn_write(e, c, len + extra ? payload : (const void *)"", len + extra);
        }
        free(sealed_buf);
        if (rc != 0) {
            return -1;
        }
    }
    if (type == SC_MSG_DATA) {
        c->data_out++;
    }
    if (c->kind != SC_CONN_IPC) {
        e->shm->c.msgs_out++;
        e->shm->c.bytes_out += SC_FRAME_HDR_LEN + len + extra;
        if (c->peer) {
            c->peer->c.msgs_out++;
            c->peer->c.bytes_out += SC_FRAME_HDR_LEN + len + extra;
        }
    }
    return 0;
}

void sc_tr_mcast_send(sc_engine *e, int state)
{
    unsigned char buf[SC_HB_MAX_LEN];
    apr_size_t n;
    if (e->mcast_fd < 0 || !e->use_mcast_tx) {
        return;
    }
    n = e->handlers->heartbeat(e, state, buf, sizeof(buf));
    if (n && e->crypto) {
        /* "SCE2", then the heartbeat sealed with the magic as its data */
        unsigned char sealed[4 + SC_HB_MAX_LEN + SC_SEAL_OVERHEAD];
        memcpy(sealed, SC_HB_SEALED_MAGIC, 4);
        if (sc_crypto_seal(e->crypto, sealed, 4, buf, n, sealed + 4) != 0) {
            return;
        }
        n += 4 + SC_SEAL_OVERHEAD;
        if (sendto(e->mcast_fd, sealed, n, 0, (struct sockaddr *)&e->mcast_sa,
                   e->mcast_salen) == (ssize_t)n) {
            e->shm->c.heartbeats_out++;
        }
        return;
    }
    if (n && sendto(e->mcast_fd, buf, n, 0, (struct sockaddr *)&e->mcast_sa,
                    e->mcast_salen) == (ssize_t)n) {
        e->shm->c.heartbeats_out++;
    }
}

/* The remote address of a connection's text ("1.2.3.4:5678", "[::1]:5"). */
static const char *addr_only(const char *remote, char *buf, apr_size_t len)
{
    const char *colon = strrchr(remote, ':');
    apr_size_t n = colon ? (apr_size_t)(colon - remote) : strlen(remote);
    if (n >= len) {
        n = len - 1;
    }
    memcpy(buf, remote, n);
    buf[n] = '\0';
    return buf;
}

/* Counts a bad frame against its sender's address: SC_PENALTY_BAD of them
 * within SC_PENALTY_WINDOW_S and the address is refused for SC_PENALTY_S, so
 * a flood of garbage costs one accept() and close() per connection, and good
 * members are still served. */
static void penalize(sc_engine *e, const char *remote)
{
    char addr[48];
    apr_time_t now = sc_engine_now(e);
    sc_penalty *slot = NULL, *oldest = &e->penalty[0];
    int i;
    addr_only(remote, addr, sizeof(addr));
    for (i = 0; i < SC_PENALTY_SLOTS; i++) {
        if (!strcmp(e->penalty[i].addr, addr)) {
            slot = &e->penalty[i];
            break;
        }
        if (e->penalty[i].first < oldest->first) {
            oldest = &e->penalty[i];
        }
    }
    if (!slot || now - slot->first > apr_time_from_sec(SC_PENALTY_WINDOW_S)) {
        if (!slot) {
            slot = oldest;
        }
        memset(slot, 0, sizeof(*slot));
        apr_cpystrn(slot->addr, addr, sizeof(slot->addr));
        slot->first = now;
    }
    if (++slot->bad == SC_PENALTY_BAD) {
        slot->until = now + apr_time_from_sec(SC_PENALTY_S);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1294)
                     "%u bad frames from %s within %d s: its connections are refused "
                     "for %d s", slot->bad, addr, SC_PENALTY_WINDOW_S, SC_PENALTY_S);
    }
}

void sc_tr_forgive(sc_engine *e, const char *addr)
{
    int i;
    for (i = 0; i < SC_PENALTY_SLOTS; i++) {
        /* only a refusal in force: the count of bad frames stays */
        if (!strcmp(e->penalty[i].addr, addr) && e->penalty[i].until > sc_engine_now(e)) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, e->s, SCLOGNO(1352)
                         "%s: a member there is heard, authentic, as a new incarnation: "
                         "its connections are taken again", addr);
            memset(&e->penalty[i], 0, sizeof(e->penalty[i]));
        }
    }
}

static int penalized(sc_engine *e, const char *remote)
{
    char addr[48];
    apr_time_t now = sc_engine_now(e);
    int i;
    addr_only(remote, addr, sizeof(addr));
    for (i = 0; i < SC_PENALTY_SLOTS; i++) {
        if (!strcmp(e->penalty[i].addr, addr)) {
            return e->penalty[i].until > now;
        }
    }
    return 0;
}

static void bad_input(sc_engine *e, sc_conn *c, const char *what, int heartbeat)
{
    apr_uint64_t n;
    if (c && c->kind == SC_CONN_IN) {
        penalize(e, c->remote);
    }
    if (heartbeat) {
        n = ++e->shm->c.bad_heartbeats;
    }
    else {
        n = ++e->shm->c.bad_frames;
        if (c && c->peer) {
            c->peer->c.bad_frames++;
        }
    }
    /* the first ten, then one in a hundred: a flood must not flood the log */
    if (n <= 10 || n % 100 == 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1213)
                     "bad %s from %s: %s (%" APR_UINT64_T_FMT " so far)%s",
                     heartbeat ? "heartbeat" : "frame", c ? c->remote : "multicast",
                     what, n, heartbeat ? "" : "; connection closed");
    }
}

/* A frame or heartbeat that EncryptInterceptor refuses: counted, logged at a
 * rate limit (the first ten, then one in a hundred), and for a frame the
 * connection is closed. */
static void auth_failure(sc_engine *e, sc_conn *c, const char *from, int replay)
{
    apr_uint64_t n;
    if (replay == 2) {
        n = ++e->shm->c.replays;
    }
    else {
        n = ++e->shm->c.auth_failures;
    }
    if (c && c->peer) {
        c->peer->c.bad_frames++;
    }
    if (c && c->kind == SC_CONN_IN) {
        penalize(e, c->remote);
    }
    else if (c && c->kind == SC_CONN_OUT && c->peer) {
        /* the member's answer on our own connection: it uses another key */
        event_queue(e, SC_EV_AUTH_REFUSED, NULL, c->peer,
                    replay == 2 ? "it answered with a replayed frame"
                                : "its answer is not authentic");
    }
    if (n <= 10 || n % 100 == 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1290)
                     "EncryptInterceptor: %s from %s refused: %s (%" APR_UINT64_T_FMT
                     " so far)", c ? "frame" : "heartbeat", from,
                     replay == 2 ? "a replayed or old sequence number"
                                 : "not authentic (another key, altered, or not encrypted)",
                     n);
    }
    if (c) {
        sc_tr_close(e, c, replay == 2 ? "replayed frame" : "frame not authentic");
    }
}

/* EncryptInterceptor: the frame's payload, opened, or NULL (refused).  Every
 * frame on a connection must take a higher sequence number than the one
 * before; the first one on a new connection is checked against the sender's
 * highest (in on_frame, once its heartbeat says which incarnation it is). */
static const unsigned char *open_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h)
{
    unsigned char *plain;
    int prev = 0;
    if (!(h->flags & SC_FF_TAGGED) || h->tag_length != SC_SEAL_OVERHEAD) {
        auth_failure(e, c, c->remote, 1);
        return NULL;
    }
    plain = apr_palloc(e->tmp, h->length + 1);
    {
        /* sealed for this member: its id, or (a sender that did not know the
         * id yet) the address it connected to, which only an inbound
         * connection has; a frame sealed for another member fails here */
        unsigned char self[SC_DEST_LEN];
        sc_crypto_dest_id(self, e->id);
        if (sc_crypto_open_frame(e->crypto, c->rbuf, SC_FRAME_HDR_LEN, self,
                                 c->rbuf + SC_FRAME_HDR_LEN,
                                 (apr_size_t)h->length + SC_SEAL_OVERHEAD, plain, &prev) != 0
            && (c->kind != SC_CONN_IN || !c->local_dest_set
                || sc_crypto_open_frame(e->crypto, c->rbuf, SC_FRAME_HDR_LEN, c->local_dest,
                                        c->rbuf + SC_FRAME_HDR_LEN,
                                        (apr_size_t)h->length + SC_SEAL_OVERHEAD, plain,
                                        &prev) != 0)) {
            auth_failure(e, c, c->remote, 1);
            return NULL;
        }
    }
    if (prev) {
        e->shm->c.previous_key++;
    }
    /* replays: in order on one connection, and never twice from a sender */
    if (c->rx_frames && h->seq <= c->rx_seq) {
        auth_failure(e, c, c->remote, 2);
        return NULL;
    }
    {
        sc_peer *p = c->peer;
        if (!p) {
            for (p = e->peers; p; p = p->next) {
                if (p->id_known && !memcmp(p->id, h->sender, SC_ID_LEN)) {
                    break;
                }
            }
        }
        /* a connection's first heartbeat may come from a new incarnation,
         * which numbers its frames from 1 again: on_frame checks it once the
         * heartbeat says which incarnation sent it */
        int first_hb = !c->hello_seen && (h->type == SC_MSG_HELLO || h->type == SC_MSG_PING
                                          || h->type == SC_MSG_PONG);
        if (!first_hb && p && p->id_known && !memcmp(p->id, h->sender, SC_ID_LEN) && p->replay
            && sc_replay_take(p->replay, h->seq) != 0) {
            auth_failure(e, c, c->remote, 2);
            return NULL;
        }
    }
    c->rx_seq = h->seq;
    c->rx_frames++;
    if (c->kind == SC_CONN_IN && !c->dest_set) {
        /* answers go to the sender of the first authentic frame */
        sc_crypto_dest_id(c->dest, h->sender);
        c->dest_set = 1;
    }
    else if (c->kind == SC_CONN_OUT && c->peer) {
        /* the member opened what we sent and answered: our key works there */
        c->peer->auth_backoff_ms = 0;
        sc_crypto_dest_id(c->dest, h->sender);
    }
    return plain;
}

int sc_replay_take(sc_replay *w, apr_uint64_t seq)
{
    apr_uint64_t i;
    if (seq > w->top) {
        if (seq - w->top >= SC_REPLAY_WINDOW) {
            memset(w->bits, 0, sizeof(w->bits));
        }
        else {
            for (i = w->top + 1; i < seq; i++) {
                w->bits[(i % SC_REPLAY_WINDOW) / 8] &= (unsigned char)~(1u << (i % 8));
            }
        }
        w->top = seq;
    }
    else if (w->top - seq >= SC_REPLAY_WINDOW
             || (w->bits[(seq % SC_REPLAY_WINDOW) / 8] & (1u << (seq % 8)))) {
        return -1;
    }
    w->bits[(seq % SC_REPLAY_WINDOW) / 8] |= (unsigned char)(1u << (seq % 8));
    return 0;
}

void sc_tr_bad_frame(sc_engine *e, sc_conn *c, const char *why)
{
    bad_input(e, c, why, 0);
    sc_tr_close(e, c, why);
}

void sc_tr_replayed(sc_engine *e, sc_conn *c)
{
    auth_failure(e, c, c->remote, 2);
}

/* A complete frame from a member's connection: counted, then handed to the
 * handler of its type. */
static void on_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                     const unsigned char *payload)
{
    e->shm->c.msgs_in++;
    e->shm->c.bytes_in += SC_FRAME_HDR_LEN + h->length + h->tag_length;
    if (c->peer) {
        c->peer->c.msgs_in++;
        c->peer->c.bytes_in += SC_FRAME_HDR_LEN + h->length + h->tag_length;
        c->peer->last_heard = sc_engine_now(e);
    }
    if (h->type == SC_MSG_GOODBYE) {
        c->goodbye = 1;               /* its close that follows is no loss */
    }
    if (h->type <= SC_MSG_MAX && e->handlers->frame[h->type]) {
        e->handlers->frame[h->type](e, c, h, payload);
    }
}

static void member_joined(sc_engine *e, sc_conn *c);

/* Reads what is available; handles every complete frame. */
static void conn_read(sc_engine *e, sc_conn *c)
{
    apr_size_t got = 0;
    for (;;) {
        ssize_t n;
        apr_size_t want;
        if (got >= SC_READ_PER_TURN) {
            break;                    /* the others' turn; poll brings us back */
        }
        if (c->rcap - c->rlen < 4096) {
            apr_size_t limit = SC_FRAME_HDR_LEN + (apr_size_t)e->set->max_message_size + SC_TAG_MAX;
            apr_size_t ncap = c->rcap ? c->rcap * 2 : SC_RBUF_INITIAL;
            unsigned char *nb;
            if (ncap > limit + 4096) {
                ncap = limit + 4096;
            }
            if (ncap <= c->rcap) {
                /* cannot happen: a frame longer than the limit fails its header */
                bad_input(e, c, "read buffer limit", 0);
                sc_tr_close(e, c, "read buffer limit");
                return;
            }
            nb = realloc(c->rbuf, ncap);
            if (!nb) {
                sc_tr_close(e, c, "out of memory");
                return;
            }
            c->rbuf = nb;
            c->rcap = ncap;
        }
        want = c->rcap - c->rlen;
        n = recv(c->fd, c->rbuf + c->rlen, want, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (c->kind == SC_CONN_OUT && c->peer && !c->hello_seen && !c->rx_frames
                && !c->goodbye) {
                /* closed before it answered our HELLO: it refused what we
                 * sealed (another key), or us (its route conflict, its
                 * penalty, another domain); not again at once */
                event_queue(e, SC_EV_AUTH_REFUSED, NULL, c->peer,
                            "it closed our connection before answering");
            }
            conn_lost(e, c);
            return;
        }
        c->rlen += (apr_size_t)n;
        got += (apr_size_t)n;
        c->last_rx = sc_engine_now(e);

        /* every complete frame in the buffer */
        for (;;) {
            sc_frame_hdr h;
            const char *err;
            apr_size_t total;
            if (c->rlen < SC_FRAME_HDR_LEN) {
                /* a partial header must at least start right */
                if (c->rlen >= 4 && memcmp(c->rbuf, SC_FRAME_MAGIC, 4) != 0) {
                    bad_input(e, c, "bad frame magic", 0);
                    sc_tr_close(e, c, "bad frame magic");
                    return;
                }
                break;
            }
            /* a stranger (before its HELLO) may send small frames only, and
             * none larger than maxMessageSize (the receive buffer's limit) */
            err = sc_frame_hdr_decode(c->rbuf, c->rlen,
                                      c->kind == SC_CONN_IN && !c->peer
                                          && e->set->max_message_size > SC_PREHELLO_MAX
                                          ? SC_PREHELLO_MAX : e->set->max_message_size, &h);
            if (err) {
                bad_input(e, c, err, 0);
                sc_tr_close(e, c, err);
                return;
            }
            total = SC_FRAME_HDR_LEN + h.length + h.tag_length;
            if (c->rlen < total) {
                break;
            }
            {
                /* each frame's work in a pool cleared after it: one turn of
                 * the loop can handle thousands of frames (a megabyte per
                 * connection), and a delta to a 32 KB session makes copies
                 * of it, which e->tmp would keep until the turn ends */
                apr_pool_t *turn = e->tmp;
                int refused = 0;
                int stranger = c->kind == SC_CONN_IN && !c->peer;
                e->tmp = e->frame_tmp;
                if (c->kind == SC_CONN_IPC) {
                    e->handlers->ipc(e, c, &h, c->rbuf + SC_FRAME_HDR_LEN);
                }
                else if (e->crypto) {
                    const unsigned char *plain = open_frame(e, c, &h);
                    if (plain) {
                        on_frame(e, c, &h, plain);
                    }
                    refused = !plain;   /* and the connection closed */
                }
                else {
                    on_frame(e, c, &h, c->rbuf + SC_FRAME_HDR_LEN);
                }
                e->tmp = turn;
                apr_pool_clear(e->frame_tmp);
                if (stranger && c->peer && c->state == SC_CS_OPEN) {
                    /* membership adopted its heartbeat: a member's now */
                    member_joined(e, c);
                }
                if (refused || c->state == SC_CS_CLOSED) {
                    return;
                }
            }
            memmove(c->rbuf, c->rbuf + total, c->rlen - total);
            c->rlen -= total;
        }
        if ((apr_size_t)n < want) {
            break;
        }
    }
    /* a large frame grew the buffer: given back once it is read (a child's
     * connection is kept for every request of its thread), unless the blocks
     * of a state transfer come on it, one after the other */
    if (c->rcap > SC_BUF_KEEP && c->rlen <= SC_RBUF_INITIAL && !c->keep_buffers) {
        unsigned char *nb = realloc(c->rbuf, SC_RBUF_INITIAL);
        if (nb) {
            c->rbuf = nb;
            c->rcap = SC_RBUF_INITIAL;
        }
    }
}

static void on_connected(sc_engine *e, sc_conn *c)
{
    int err = 0;
    socklen_t el = sizeof(err);
    unsigned char buf[SC_HB_MAX_LEN];
    apr_size_t n;

    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        sc_peer *p = c->peer;
        c->peer = NULL;
        if (p && p->out == c) {
            p->out = NULL;
        }
        sc_tr_close(e, c, strerror(err));
        if (p) {
            p->c.connect_failures++;
            e->shm->c.connect_failures++;
            if (err == ECONNREFUSED || err == ECONNRESET) {
                event_queue(e, SC_EV_REFUSED, NULL, p, strerror(err));
            }
        }
        return;
    }
    c->state = SC_CS_OPEN;
    /* the backoff is reset only once the member answers (sc_mb_on_heartbeat):
     * one that accepts and then closes must not be reconnected in a loop */
    n = e->handlers->heartbeat(e, e->state, buf, sizeof(buf));
    /* flush what was queued while connecting, after the HELLO */
    {
        unsigned char *queued = c->wbuf;
        apr_size_t qlen = c->wlen - c->woff, qoff = c->woff;
        c->wbuf = NULL;
        c->wlen = c->woff = c->wcap = 0;
        sc_tr_send_frame(e, c, SC_MSG_HELLO, 0, ++e->seq, buf, n);
        if (queued && qlen && c->state == SC_CS_OPEN) {
            conn_write(e, c, queued + qoff, qlen);
        }
        free(queued);
    }
}

/* The Receiver's pools.
 *
 * An inbound connection is a stranger's until membership adopts a heartbeat
 * on it (sc_mb_on_heartbeat_frame sets c->peer); from then on it is a
 * member's.  A flood of connections, silent or with forged HELLOs, must not
 * keep members out, so the two are counted apart:
 *
 *   strangers  (no c->peer: nothing said yet, or a heartbeat answered but not
 *              adopted, from a forged or unlisted member) at most
 *              SC_MAX_STRANGERS in all, SC_MAX_INBOUND_PER_IP from one
 *              address (more from it are refused: ConnsRefused, SC1295).
 *              Each has until its deadline, SC_STRANGER_HELLO_MS after its
 *              accept (the Transport timeout if that is shorter), to be
 *              adopted, or it is closed (ConnsTimedOut, SC1296).  With the
 *              pool full, a new connection takes the place of the oldest
 *              stranger (ConnsRefused, SC1401): a flood churns the pool, and
 *              a member's connection, whose HELLO comes right after its
 *              connect, is adopted before its turn to go comes.  For that,
 *              each round reads the connections before it accepts new ones
 *              (sc_tr_handle), a connection accepted in a round is never
 *              displaced in the same round (the newcomers wait in the listen
 *              queue), a new connection is read at once, and a stranger is
 *              read one last time before it is closed (displaced or at its
 *              deadline): a HELLO there is still adopted.
 *   members    at most SC_MAX_INBOUND in all and SC_MAX_INBOUND_PER_MEMBER
 *              of one member, checked when a connection joins the pool: past
 *              the member's own limit its oldest connection goes (those from
 *              before its restart, which may linger half-open, are the oldest;
 *              ConnsRefused, SC1402), past the overall one the oldest of the
 *              member that holds the most (SC1403).  No limit by address:
 *              members may share a host.  Strangers never take a member's place.
 *
 * An address that sent too many bad frames is refused for a while (SC1294),
 * whatever it is.  These are the transport's own decisions: it reads c->peer,
 * which the layer above sets, and calls nothing above it.
 */
/* besides SC_MAX_INBOUND (members' connections) and SC_MAX_INBOUND_PER_IP
 * (strangers from one address) in sc_core.h: */
#define SC_MAX_STRANGERS          16   /* connections no member is known on */
#define SC_STRANGER_HELLO_MS      2000 /* to be adopted (or the Transport timeout) */
#define SC_MAX_INBOUND_PER_MEMBER 4    /* one member's connections */

static int is_stranger(const sc_conn *c)
{
    return c->kind == SC_CONN_IN && c->state == SC_CS_OPEN && !c->peer;
}

/* How long a stranger has to be adopted. */
static apr_interval_time_t stranger_deadline(const sc_engine *e, int *is_transport)
{
    long t = e->set->send_timeout_ms > 0 ? e->set->send_timeout_ms : 3000;
    *is_transport = t <= SC_STRANGER_HELLO_MS;
    return apr_time_from_msec(*is_transport ? t : SC_STRANGER_HELLO_MS);
}

/* A stranger about to be closed is read once more: a heartbeat there may be
 * adopted yet.  1: it is still a stranger's, open. */
static int still_stranger(sc_engine *e, sc_conn *c)
{
    if (is_stranger(c)) {
        conn_read(e, c);
    }
    return is_stranger(c);
}

/* Why an inbound connection from 'remote' is not taken, or NULL. */
static const char *accept_refusal(sc_engine *e, const char *remote)
{
    char addr[48], other[48];
    sc_conn *c;
    int same = 0;
    if (penalized(e, remote)) {
        return "it sent too many bad frames lately";
    }
    addr_only(remote, addr, sizeof(addr));
    for (c = e->conns; c; c = c->next) {
        if (is_stranger(c) && !strcmp(addr_only(c->remote, other, sizeof(other)), addr)) {
            same++;
        }
    }
    if (same >= SC_MAX_INBOUND_PER_IP) {
        return "too many connections from that address";
    }
    return NULL;
}

/* The strangers' pool: how many it holds, and the oldest one accepted before
 * 'round' (a new connection may take its place), or NULL. */
static int strangers(sc_engine *e, apr_time_t round, sc_conn **oldest)
{
    sc_conn *c;
    int n = 0;
    *oldest = NULL;
    for (c = e->conns; c; c = c->next) {
        if (is_stranger(c)) {
            n++;
            if (c->opened < round && (!*oldest || c->opened < (*oldest)->opened)) {
                *oldest = c;
            }
        }
    }
    return n;
}

/* Room in the strangers' pool for a connection accepted in 'round': the
 * oldest strangers go (after their last read) until there is: 1, or 0 when
 * every place is held by one accepted in this round. */
static int stranger_room(sc_engine *e, apr_time_t round)
{
    sc_conn *old;
    /* each turn, one stranger less (adopted, closed by its end, or here) */
    while (strangers(e, round, &old) >= SC_MAX_STRANGERS) {
        if (!old) {
            return 0;
        }
        if (still_stranger(e, old)) {
            apr_uint64_t n = ++e->shm->c.conns_refused;
            if (n <= 10 || n % 100 == 0) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1401)
                             "connection from %s closed: %s, and the Receiver's %d places "
                             "for connections no member is known on are taken: a new one "
                             "takes the place of the oldest (%" APR_UINT64_T_FMT " so far)",
                             old->remote, old->hello_seen ? "its heartbeat was not adopted"
                                                          : "it sent no HELLO yet",
                             SC_MAX_STRANGERS, n);
            }
            sc_tr_close(e, old, "a stranger, displaced by a newer connection");
        }
    }
    return 1;
}

/* Closes a member's connection the members' pool has no place for. */
static void member_conn_close(sc_engine *e, sc_conn *x, int mine, int overall)
{
    apr_uint64_t n = ++e->shm->c.conns_refused;
    x->peer->c.conns_refused++;
    if (n <= 10 || n % 100 == 0) {
        if (overall) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1403)
                         "connection from %s of member %s closed: the Receiver holds its "
                         "maximum of %d members' connections, and that member the most "
                         "(%d): its oldest goes (%" APR_UINT64_T_FMT " so far)", x->remote,
                         x->peer->route[0] ? x->peer->route : "?", SC_MAX_INBOUND, mine, n);
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1402)
                         "connection from %s of member %s closed: the member holds %d "
                         "connections to this Receiver, at most %d are kept: its oldest "
                         "goes (one from before its restart, perhaps) (%" APR_UINT64_T_FMT
                         " so far)", x->remote, x->peer->route[0] ? x->peer->route : "?",
                         mine, SC_MAX_INBOUND_PER_MEMBER, n);
        }
    }
    sc_tr_close(e, x, overall ? "the members' pool is full" : "the member's oldest connection");
}

/* c, a stranger's connection until now, is a member's: the members' limits. */
static void member_joined(sc_engine *e, sc_conn *c)
{
    sc_peer *p = c->peer;
    sc_conn *x, *y;
    /* each turn closes one connection or ends */
    for (;;) {
        sc_conn *old = NULL;
        int mine = 0;
        for (x = e->conns; x; x = x->next) {
            if (x->kind == SC_CONN_IN && x->state == SC_CS_OPEN && x->peer == p) {
                mine++;
                if (x != c && (!old || x->opened < old->opened)) {
                    old = x;
                }
            }
        }
        if (mine <= SC_MAX_INBOUND_PER_MEMBER || !old) {
            break;
        }
        member_conn_close(e, old, mine, 0);
    }
    for (;;) {
        sc_conn *victim = NULL;
        int total = 0, most = 0;
        for (x = e->conns; x; x = x->next) {
            int held = 0;
            if (x->kind != SC_CONN_IN || x->state != SC_CS_OPEN || !x->peer) {
                continue;
            }
            total++;
            if (x == c) {
                continue;
            }
            for (y = e->conns; y; y = y->next) {
                if (y->kind == SC_CONN_IN && y->state == SC_CS_OPEN && y->peer == x->peer) {
                    held++;
                }
            }
            if (held > most || (held == most && victim && x->opened < victim->opened)) {
                most = held;
                victim = x;
            }
        }
        if (total <= SC_MAX_INBOUND || !victim) {
            break;
        }
        member_conn_close(e, victim, most, 1);
    }
}

void sc_tr_tick(sc_engine *e, apr_time_t now)
{
    sc_conn *c;
    apr_interval_time_t limit = apr_time_from_msec(e->set->send_timeout_ms > 0
                                                   ? e->set->send_timeout_ms : 3000);
    int is_transport;
    apr_interval_time_t hello = stranger_deadline(e, &is_transport);
    for (c = e->conns; c; c = c->next) {
        const char *why = NULL;
        if (c->kind != SC_CONN_IN || c->state != SC_CS_OPEN) {
            continue;
        }
        if (!c->peer && now - c->opened > hello) {
            if (!still_stranger(e, c)) {
                continue;             /* adopted on its last read, or closed */
            }
            why = c->hello_seen
                ? apr_psprintf(e->tmp, "its heartbeat was not adopted (not a member) within "
                               "%" APR_TIME_T_FMT " ms", apr_time_as_msec(hello))
                : is_transport ? "no HELLO within the Transport timeout"
                : apr_psprintf(e->tmp, "no HELLO within %" APR_TIME_T_FMT " ms (a stranger's "
                               "deadline)", apr_time_as_msec(hello));
        }
        else if (c->rlen > 0 && now - c->last_rx > limit) {
            why = "a frame left incomplete for the Transport timeout";
        }
        if (why) {
            apr_uint64_t n = ++e->shm->c.conns_timed_out;
            if (c->peer) {
                c->peer->c.conns_timed_out++;
            }
            if (n <= 10 || n % 100 == 0) {
                ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, SCLOGNO(1296)
                             "connection from %s closed: %s (%" APR_UINT64_T_FMT
                             " so far)", c->remote, why, n);
            }
            sc_tr_close(e, c, why);
        }
    }
}

/* An inbound connection's own end, as a sender that does not know this
 * member's id seals for it (sc_crypto_dest_addr): the address it connected to. */
static void local_dest(sc_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (!c || getsockname(c->fd, (struct sockaddr *)&ss, &sl) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        sc_crypto_dest_addr(c->local_dest, 4, (const unsigned char *)&in->sin_addr,
                            ntohs(in->sin_port));
        c->local_dest_set = 1;
    }
    else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        const unsigned char *a = (const unsigned char *)&in6->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            sc_crypto_dest_addr(c->local_dest, 4, a + 12, ntohs(in6->sin6_port));
        }
        else {
            sc_crypto_dest_addr(c->local_dest, 6, a, ntohs(in6->sin6_port));
        }
        c->local_dest_set = 1;
    }
}

/* Connections taken off the Receiver's listen queue in one round at most:
 * the others' turn, then more. */
#define SC_ACCEPT_PER_ROUND (4 * SC_MAX_STRANGERS)

static void accept_inbound(sc_engine *e)
{
    apr_time_t round = sc_engine_now(e);
    int i;
    for (i = 0; i < SC_ACCEPT_PER_ROUND; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char buf[80];
        int one = 1, fd;
        const char *why;
        sc_conn *c, *old;
        if (strangers(e, round, &old) >= SC_MAX_STRANGERS && !old) {
            return;                   /* every place taken in this round: next round */
        }
        fd = accept(e->listen_fd, (struct sockaddr *)&ss, &sl);
        if (fd < 0) {
            return;
        }
        set_nonblock(fd);
        sa_text((struct sockaddr *)&ss, buf, sizeof(buf));
        why = accept_refusal(e, buf);
        if (!why && !stranger_room(e, round)) {
            why = "the places for connections no member is known on are taken";
        }
        if (why) {
            apr_uint64_t n = ++e->shm->c.conns_refused;
            close(fd);
            if (n <= 10 || n % 100 == 0) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, e->s, SCLOGNO(1295)
                             "connection from %s refused: %s (%" APR_UINT64_T_FMT
                             " so far)", buf, why, n);
            }
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = conn_new(e, fd, SC_CONN_IN, buf);
        if (!c) {
            close(fd);
            continue;
        }
        local_dest(c);
        conn_read(e, c);              /* its HELLO may be there already */
    }
}

static void do_accept(sc_engine *e, int lfd, int kind)
{
    if (kind == SC_CONN_IN) {
        accept_inbound(e);
        return;
    }
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            return;
        }
        set_nonblock(fd);
        if (!conn_new(e, fd, kind, "local")) {
            close(fd);
        }
    }
}

static void mcast_read(sc_engine *e)
{
    for (;;) {
        unsigned char buf[2048];
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char from[80];
        sc_heartbeat hb;
        const char *err;
        ssize_t n = recvfrom(e->mcast_fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);
        if (n < 0) {
            return;
        }
        if (!e->use_mcast_rx) {
            continue;
        }
        sa_text((struct sockaddr *)&ss, from, sizeof(from));
        if (e->crypto) {
            unsigned char plain[sizeof(buf)];
            int prev = 0;
            if (n < 4 + SC_SEAL_OVERHEAD || memcmp(buf, SC_HB_SEALED_MAGIC, 4) != 0
                || sc_crypto_open(e->crypto, buf, 4, buf + 4, (apr_size_t)n - 4, plain,
                                  &prev) != 0) {
                auth_failure(e, NULL, from, 1);
                continue;
            }
            if (prev) {
                e->shm->c.previous_key++;
            }
            n -= 4 + SC_SEAL_OVERHEAD;
            memcpy(buf, plain, (size_t)n);
        }
        if ((err = sc_heartbeat_decode(buf, (apr_size_t)n, &hb))) {
            bad_input(e, NULL, apr_psprintf(e->tmp, "%s (from %s)", err, from), 1);
            continue;
        }
        if (!memcmp(hb.id, e->id, SC_ID_LEN)) {
            continue;                 /* our own, looped back */
        }
        e->shm->c.heartbeats_in++;
        e->handlers->heard(e, &hb, NULL, from);
    }
}

int sc_tr_pollfds(sc_engine *e, struct pollfd *pfds, int max)
{
    int n = 0;
    sc_conn *c, *next;

    /* reap closed connections first, once the layers above have had every
     * event that names them */
    for (c = e->conns; c && !e->ev_head; c = next) {
        next = c->next;
        if (c->state == SC_CS_CLOSED) {
            e->handlers->forget(e, c);
            conn_free(e, c);
        }
    }
    if (e->listen_fd >= 0 && n < max) {
        pfds[n].fd = e->listen_fd;
        pfds[n++].events = POLLIN;
    }
    if (e->mcast_fd >= 0 && n < max) {
        pfds[n].fd = e->mcast_fd;
        pfds[n++].events = POLLIN;
    }
    if (e->ipc_fd >= 0 && n < max) {
        pfds[n].fd = e->ipc_fd;
        pfds[n++].events = POLLIN;
    }
    for (c = e->conns; c && n < max; c = c->next) {
        pfds[n].fd = c->fd;
        pfds[n].events = (short)(c->state == SC_CS_CONNECTING ? POLLOUT
                                 : (POLLIN | (c->woff < c->wlen ? POLLOUT : 0)));
        n++;
    }
    return n;
}

/* ---- the loop's wait: an epoll set kept between turns ----
 *
 * The set changes only where a connection's interest does (opened, closed,
 * output pending or not): a turn costs one epoll_wait plus a walk of the
 * list in memory, where poll(2) had the kernel look at every connection,
 * one per child thread of every child, on every turn.  What is ready goes
 * to sc_tr_handle as poll would have given it: the same pollfd entries, in
 * the same order (the listeners, then the connections as listed). */

static unsigned conn_wants(const sc_conn *c)
{
    if (c->fd < 0 || c->state == SC_CS_CLOSED) {
        return 0;
    }
    return c->state == SC_CS_CONNECTING ? EPOLLOUT
           : (EPOLLIN | (c->woff < c->wlen ? EPOLLOUT : 0));
}

/* Brings one registration in line: 0 on success. */
static int ep_sync(sc_engine *e, int fd, unsigned *have, unsigned want, void *tag)
{
    struct epoll_event ev;
    int op;
    if (*have == want) {
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = want;
    ev.data.ptr = tag;
    op = !*have ? EPOLL_CTL_ADD : !want ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (epoll_ctl(e->ep_fd, op, fd, &ev) != 0 && op != EPOLL_CTL_DEL) {
        return -1;                    /* (a descriptor closed is out of the set) */
    }
    *have = want;
    return 0;
}

static short poll_bits(unsigned ev)
{
    return (short)(((ev & EPOLLIN) ? POLLIN : 0) | ((ev & EPOLLOUT) ? POLLOUT : 0)
                   | ((ev & EPOLLHUP) ? POLLHUP : 0) | ((ev & EPOLLERR) ? POLLERR : 0));
}

static void ep_give_up(sc_engine *e, const char *what)
{
    sc_conn *c;
    ap_log_error(APLOG_MARK, APLOG_WARNING, errno, e->s, SCLOGNO(1950)
                 "cluster engine: %s failed: it waits with poll(2) from now on", what);
    if (e->ep_fd >= 0) {
        close(e->ep_fd);
    }
    e->ep_fd = -2;
    for (c = e->conns; c; c = c->next) {
        c->ep_events = c->ep_ready = 0;
    }
    if (e->ring) {
        /* poll(2) does not watch the ring's wake-up: the children hand over
         * on the socket from now on (the loop still takes what the ring
         * holds) */
        sc_ring_consume(e->ring, 0);
    }
}

/* epoll_wait for 'us' microseconds: epoll_pwait2 when it is not whole
 * milliseconds (one system call); a kernel without it (before 5.11) sleeps
 * first, then looks without waiting. */
static int ep_wait(sc_engine *e, struct epoll_event *evs, int n, apr_interval_time_t us)
{
    if (us % 1000) {
        struct timespec ts;
        ts.tv_sec = (time_t)(us / 1000000);
        ts.tv_nsec = (long)(us % 1000000) * 1000L;
        if (!e->no_pwait2) {
            int got = epoll_pwait2(e->ep_fd, evs, n, &ts, NULL);
            if (got >= 0 || errno != ENOSYS) {
                return got;
            }
            e->no_pwait2 = 1;
        }
        nanosleep(&ts, NULL);         /* a signal cuts it short: looked at now */
        return epoll_wait(e->ep_fd, evs, n, 0);
    }
    return epoll_wait(e->ep_fd, evs, n, (int)(us / 1000));
}

int sc_tr_wait(sc_engine *e, struct pollfd *pfds, int max, apr_interval_time_t timeout_us)
{
    struct epoll_event evs[256];
    int *fds[4] = { &e->listen_fd, &e->mcast_fd, &e->ipc_fd, &e->wake_fd };
    unsigned ready[4] = { 0, 0, 0, 0 };
    sc_conn *c;
    int i, n, got;
    apr_time_t t0;

    if (e->ep_fd == -1) {
        e->ep_fd = epoll_create1(EPOLL_CLOEXEC);
        e->ep_fds[0] = e->ep_fds[1] = e->ep_fds[2] = e->ep_fds[3] = -1;
        if (e->ep_fd < 0) {
            ep_give_up(e, "epoll_create1");
        }
    }
    if (e->ep_fd < 0) {
        n = sc_tr_pollfds(e, pfds, max);
        return poll(pfds, (nfds_t)n, (int)((timeout_us + 999) / 1000)) > 0 ? n : 0;
    }
    /* reap closed connections first (sc_tr_pollfds: once the layers above
     * had every event that names them); their descriptors are closed, so
     * out of the set already */
    {
        sc_conn *next;
        for (c = e->conns; c && !e->ev_head; c = next) {
            next = c->next;
            if (c->state == SC_CS_CLOSED) {
                e->handlers->forget(e, c);
                conn_free(e, c);
            }
        }
    }
    for (i = 0; i < 4; i++) {
        if (e->ep_fds[i] != *fds[i]) {
            unsigned have = e->ep_fds[i] >= 0 ? EPOLLIN : 0, none = 0;
            if (have && ep_sync(e, e->ep_fds[i], &have, 0, NULL) != 0) {
                ep_give_up(e, "epoll_ctl");
                return 0;
            }
            e->ep_fds[i] = -1;
            if (*fds[i] >= 0) {
                if (ep_sync(e, *fds[i], &none, EPOLLIN, fds[i]) != 0) {
                    ep_give_up(e, "epoll_ctl");
                    return 0;
                }
                e->ep_fds[i] = *fds[i];
            }
        }
    }
    for (c = e->conns; c; c = c->next) {
        c->ep_ready = 0;
        if (c->fd >= 0 && ep_sync(e, c->fd, &c->ep_events, conn_wants(c), c) != 0) {
            ep_give_up(e, "epoll_ctl");
            return 0;
        }
        if (c->fd < 0) {
            c->ep_events = 0;          /* closed: the kernel dropped it */
        }
    }
    t0 = sc_engine_now(e);
    got = ep_wait(e, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout_us);
    if (got < 0 && errno == EINTR && sc_engine_now(e) - t0 >= timeout_us) {
        /* stopped (SIGSTOP, a debugger) and continued: epoll_wait fails
         * where poll(2) would have been restarted and reported what came
         * meanwhile.  Taken now, as poll did: the loop's next turn finds
         * the gap (came_back) with the members' traffic already read, so
         * they are not suspected for a silence that was this member's */
        got = epoll_wait(e->ep_fd, evs, (int)(sizeof(evs) / sizeof(evs[0])), 0);
    }
    if (got <= 0) {
        return 0;
    }
    for (i = 0; i < got; i++) {
        void *tag = evs[i].data.ptr;
        if (tag == fds[0] || tag == fds[1] || tag == fds[2] || tag == fds[3]) {
            ready[tag == fds[0] ? 0 : tag == fds[1] ? 1 : tag == fds[2] ? 2 : 3]
                |= evs[i].events;
        }
        else if (tag) {
            ((sc_conn *)tag)->ep_ready |= evs[i].events;
        }
    }
    if (ready[3]) {
        /* a child's append woke the loop: its count read, the messages are
         * taken from the ring by the loop (sc_engine.c) */
        apr_uint64_t count;
        if (read(e->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, errno, e->s, SCLOGNO(2102)
                         "cluster engine: cannot read the hand-off ring's wake-up");
        }
    }
    n = 0;
    for (i = 0; i < 3 && n < max; i++) {
        if (ready[i]) {
            pfds[n].fd = *fds[i];
            pfds[n].events = POLLIN;
            pfds[n++].revents = poll_bits(ready[i]);
        }
    }
    for (c = e->conns; c && n < max; c = c->next) {
        if (c->ep_ready) {
            pfds[n].fd = c->fd;
            pfds[n].events = (short)poll_bits(c->ep_events);
            pfds[n++].revents = poll_bits(c->ep_ready);
            c->ep_ready = 0;
        }
    }
    return n;
}

static sc_conn *conn_by_fd(sc_engine *e, int fd)
{
    sc_conn *c;
    for (c = e->conns; c; c = c->next) {
        if (c->fd == fd) {
            return c;
        }
    }
    return NULL;
}

void sc_tr_handle(sc_engine *e, struct pollfd *pfds, int n)
{
    int i, accept_in = 0;
    for (i = 0; i < n; i++) {
        sc_conn *c;
        if (!pfds[i].revents) {
            continue;
        }
        if (pfds[i].fd == e->listen_fd) {
            accept_in = 1;            /* after the connections are read */
            continue;
        }
        if (pfds[i].fd == e->mcast_fd) {
            mcast_read(e);
            continue;
        }
        if (pfds[i].fd == e->ipc_fd) {
            do_accept(e, e->ipc_fd, SC_CONN_IPC);
            continue;
        }
        c = conn_by_fd(e, pfds[i].fd);
        if (!c || c->state == SC_CS_CLOSED) {
            continue;
        }
        if (c->state == SC_CS_CONNECTING) {
            on_connected(e, c);
            continue;
        }
        if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            conn_read(e, c);
        }
        if (c->state == SC_CS_OPEN && (pfds[i].revents & POLLOUT)) {
            conn_write(e, c, (const unsigned char *)"", 0);
        }
    }
    /* new connections last: a HELLO that came on one accepted before is
     * adopted before a newcomer may take a stranger's place */
    if (accept_in) {
        do_accept(e, e->listen_fd, SC_CONN_IN);
    }
}

void sc_tr_cork(sc_engine *e)
{
    e->corked = 1;
}

void sc_tr_uncork(sc_engine *e)
{
    sc_conn *c;
    e->corked = 0;
    /* a broken connection's retries only add connections at the head (still
     * connecting, sent when connected): the walk goes on from c->next */
    for (c = e->conns; c; c = c->next) {
        if (c->state == SC_CS_OPEN && c->woff < c->wlen) {
            conn_flush(e, c);
        }
    }
}
