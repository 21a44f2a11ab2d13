/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_client.c -- the child side of the cluster engine (see sc_client.h): each
 * child thread keeps one connection to the engine's local socket and waits
 * for the answer to what it hands over.
 */
#include "sc_client.h"
#include "sc_supervisor.h"
#include "sc_proto.h"
#include "sc_ipc.h"
#include "sc_ring.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>

/* ------------------------------------------------------------------------- */
/* Child side                                                                 */
/* ------------------------------------------------------------------------- */

/* Each child thread keeps one connection to the engine (a request is answered
 * before the next is sent on it); a fork or a replaced engine makes a new one. */
static __thread int ipc_fd = -1;
static __thread pid_t ipc_pid = 0;
static __thread char ipc_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static __thread long ipc_wait_ms;   /* its receive timeout (sc_ipc_set_wait) */
static __thread pid_t ipc_engine;       /* the engine it was made to */
static __thread apr_uint64_t ipc_token;  /* the engine bound it to this (0: not) */
static __thread int ipc_bind_tried;     /* a bind was asked for on it */

/* Did the engine close the thread's connection (or send on it what nobody
 * asked for)?  One poll(2) that does not wait. */
static int engine_left(int fd)
{
    struct pollfd pfd;
    pfd.fd = fd;
    pfd.events = POLLIN | POLLRDHUP;
    pfd.revents = 0;
    return poll(&pfd, 1, 0) != 0;
}

static void ipc_drop(void)
{
    if (ipc_fd >= 0 && ipc_pid == sc_self_pid()) {
        close(ipc_fd);
    }
    ipc_fd = -1;
    ipc_token = 0;
    ipc_bind_tried = 0;
}

/* The thread's connection to the engine (pid engine: one made to an engine
 * since replaced is closed, and a new one made), its receive timeout wait_ms
 * (an answer is read by a recv that waits, set once for the connection, not
 * per request). */
static int ipc_connect(const char *path, pid_t engine, long wait_ms)
{
    int fd;
    if (ipc_fd >= 0 && ipc_pid == sc_self_pid() && !strcmp(ipc_path, path)
        && ipc_engine == engine) {
        if (ipc_wait_ms != wait_ms) {
            /* sendTimeout changed by a graceful restart */
            if (sc_ipc_set_wait(ipc_fd, wait_ms) != 0) {
                ipc_drop();
                return -1;
            }
            ipc_wait_ms = wait_ms;
        }
        return ipc_fd;
    }
    ipc_drop();
    fd = sc_ipc_connect(path);
    if (fd < 0) {
        return -1;
    }
    if (sc_ipc_set_wait(fd, wait_ms) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    ipc_fd = fd;
    ipc_pid = sc_self_pid();
    ipc_engine = engine;
    ipc_wait_ms = wait_ms;
    apr_cpystrn(ipc_path, path, sizeof(ipc_path));
    return fd;
}

/* A token for the thread's connection, drawn at random: the child asks the
 * engine to bind it (a HELLO frame sent just before its first synchronous
 * change on that connection, both answered in order); from then on, its
 * synchronous changes go through the ring named by it (the engine's
 * bind_ring_conn).  0 when none could be drawn. */
static apr_uint64_t ipc_new_token(void)
{
    apr_uint64_t token = 0;
    if (apr_generate_random_bytes((unsigned char *)&token, sizeof(token)) != APR_SUCCESS) {
        return 0;
    }
    return token;
}

/* The frame's head and the message as they are, in one system call (the
 * message is not copied behind the head first: 32 KB a request for a large
 * session). */
static int send_all(int fd, const unsigned char *head, apr_size_t hlen,
                    const unsigned char *body, apr_size_t blen)
{
    struct iovec iov[2];
    struct msghdr mh;
    apr_size_t off = 0, len = hlen + blen;
    while (off < len) {
        ssize_t n;
        int k = 0;
        if (off < hlen) {
            iov[k].iov_base = (void *)(head + off);
            iov[k++].iov_len = hlen - off;
        }
        if (blen) {
            apr_size_t b = off > hlen ? off - hlen : 0;
            iov[k].iov_base = (void *)(body + b);
            iov[k++].iov_len = blen - b;
        }
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)k;
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
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

int sc_client_request(apr_pool_t *p, server_rec *s, const char *route,
                      const void *msg, apr_size_t size, int acked, const char **result,
                      double *ms, int *handed)
{
    sc_retained *r = sc_retained_get(s);
    sc_shm_t hdr;
    unsigned char *req;
    apr_uint64_t bind_token = 0;
    apr_size_t rlen = route ? strlen(route) : 0, len;
    sc_frame_hdr h, rh;
    int fd, tries, extra;
    apr_time_t deadline;
    long timeout_ms;
    int answered = acked || route;     /* the engine answers these */

    *ms = 0;
    if (handed) {
        *handed = 0;
    }
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
    timeout_ms = r->cfg->set->send_timeout_ms + 2000;
    len = SC_FRAME_HDR_LEN + 1 + rlen;
    req = apr_palloc(p, len + (msg ? 0 : size));
    memset(&h, 0, sizeof(h));
    h.type = SC_MSG_DATA;
    h.flags = acked ? SC_FF_ACK : 0;
    h.seq = 1;
    h.length = (apr_uint32_t)(1 + rlen + size);
    sc_frame_hdr_encode(&h, req);
    req[SC_FRAME_HDR_LEN] = (unsigned char)rlen;
    memcpy(req + SC_FRAME_HDR_LEN + 1, route ? route : "", rlen);
    if (!msg) {
        /* a probe: its filler follows the head */
        memset(req + len, 'x', size);
        len += size;
        size = 0;
    }

    /* asynchronous replication: into the shared ring when the engine reads
     * it (no system call); the socket when it does not, or the ring is full
     * (the engine takes the ring before what comes on a socket: sc_ring.h) */
    if (!answered && msg && sc_ring_read_by(r->ring, hdr.engine_pid)
        && sc_ring_put(r->ring, req, len, msg, size) == 0) {
        if (handed) {
            *handed = 1;
        }
        *result = "handed to the engine";
        return 1;
    }

    /* a kept connection may have been closed by a replaced engine: one retry */
    deadline = sc_steady_us() + apr_time_from_msec(timeout_ms);
    for (tries = 0; tries < 2; tries++) {
        fd = ipc_connect(hdr.ipc_path, hdr.engine_pid, timeout_ms);
        if (fd < 0) {
            *result = apr_psprintf(p, "cannot reach the cluster engine at %s: %s",
                                   hdr.ipc_path, strerror(errno));
            return 0;
        }
        bind_token = 0;
        if (acked && !route && msg && sc_ring_read_by(r->ring, hdr.engine_pid)) {
            if (ipc_token && engine_left(fd)) {
                /* the engine closed the connection: gone (killed, its
                 * parent not yet aware); a change put in the ring now would
                 * go out with the next engine, after this request was told
                 * it failed.  Afresh: the socket says whether an engine
                 * listens */
                ipc_drop();
                continue;
            }
            if (ipc_token) {
                /* a synchronous change for every member: into the ring,
                 * named by the connection's token, its answer read on the
                 * socket (the engine reads no socket for it) */
                h.seq = ipc_token;
                sc_frame_hdr_encode(&h, req);
                if (sc_ring_put_waited(r->ring, req, len, msg, size) == 0) {
                    break;
                }
            }
            else if (!ipc_bind_tried && (bind_token = ipc_new_token()) != 0) {
                /* the connection's first: a HELLO binding a token to it,
                 * then the change, on the socket; two answers in order */
                unsigned char *both = apr_palloc(p, SC_FRAME_HDR_LEN + 8 + len);
                sc_frame_hdr bh;
                memset(&bh, 0, sizeof(bh));
                bh.type = SC_MSG_HELLO;
                bh.seq = 1;
                bh.length = 8;
                sc_frame_hdr_encode(&bh, both);
                sc_put64(both + SC_FRAME_HDR_LEN, bind_token);
                memcpy(both + SC_FRAME_HDR_LEN + 8, req, len);
                ipc_bind_tried = 1;
                if (send_all(fd, both, SC_FRAME_HDR_LEN + 8 + len, msg, size) == 0) {
                    break;
                }
                ipc_drop();
                continue;
            }
        }
        if (send_all(fd, req, len, msg, size) == 0) {
            break;
        }
        ipc_drop();
    }
    if (tries == 2) {
        *result = "cannot send to the cluster engine";
        return 0;
    }
    if (handed) {
        *handed = 1;                  /* the engine may act on it from now on */
    }
    if (!answered) {
        /* asynchronous replication: handed over, the request goes on */
        *result = "handed to the engine";
        return 1;
    }
    {
        /* the HELLO's answer first when one was sent: ACK, the token is
         * bound (an engine of an earlier build refuses it: the socket then,
         * as before); then the change's */
        unsigned char replies[2 * SC_IPC_ANSWER_MAX];
        sc_frame_hdr hs[2];
        apr_size_t off[2];
        int count = bind_token ? 2 : 1;
        if (sc_ipc_read_answers(fd, deadline, replies, count, hs, off, &extra)) {
            const unsigned char *a = replies + off[count - 1];
            if (bind_token && hs[0].type == SC_MSG_ACK) {
                ipc_token = bind_token;
            }
            rh = hs[count - 1];
            *ms = (double)sc_get64(a + SC_FRAME_HDR_LEN) / 1000.0;
            *result = apr_pstrmemdup(p, (const char *)a + SC_FRAME_HDR_LEN + 8, rh.length - 8);
            if (extra) {
                ipc_drop();           /* out of step: start afresh next time */
            }
            return rh.type == SC_MSG_ACK;
        }
    }
    ipc_drop();                       /* the answer may still come: not on this one */
    *result = apr_psprintf(p, "no answer from the cluster engine within %ld ms",
                           timeout_ms);
    return 0;
}

int sc_client_probe(apr_pool_t *p, server_rec *s, const char *route, apr_size_t size,
                    int acked, const char **result, double *ms)
{
    if (!route || !*route) {
        *result = "bad route";
        return 0;
    }
    return sc_client_request(p, s, route, NULL, size, acked, result, ms, NULL);
}
