/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_ipc.c -- the engine's local socket as its askers see it (see sc_ipc.h).
 */
#include "sc_ipc.h"
#include "sc_clock.h"

#include <errno.h>
#include <poll.h>
#include <sys/time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

int sc_ipc_connect(const char *path)
{
    struct sockaddr_un sun;
    int fd, err;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    apr_cpystrn(sun.sun_path, path, sizeof(sun.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

int sc_ipc_set_wait(int fd, long ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

int sc_ipc_read_answers(int fd, apr_time_t deadline, unsigned char *buf, int count,
                        sc_frame_hdr *h, apr_size_t *off, int *extra)
{
    apr_size_t got = 0, cap = (apr_size_t)count * SC_IPC_ANSWER_MAX, at = 0;
    int reads = 0, done = 0;
    *extra = 0;
    if (count < 1 || count > 2) {
        return 0;
    }
    while (got < cap) {
        struct pollfd pfd;
        ssize_t n;
        int left = (int)apr_time_as_msec(deadline - sc_steady_us());
        if (left <= 0) {
            return 0;
        }
        if (reads++) {
            /* after a partial answer, a signal or the receive timeout: for
             * what is left of the deadline (the receive timeout is the whole
             * wait's) */
            pfd.fd = fd;
            pfd.events = POLLIN;
            if (poll(&pfd, 1, left) <= 0) {
                continue;             /* EINTR, or the deadline: looked at above */
            }
        }
        n = recv(fd, buf + got, cap - got, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
            continue;                 /* a signal, or the receive timeout: the
                                       * deadline is looked at above */
        }
        if (n <= 0) {
            return 0;
        }
        got += (apr_size_t)n;
        /* every answer complete in what came so far */
        while (done < count && got - at >= SC_FRAME_HDR_LEN) {
            if (sc_frame_hdr_decode(buf + at, got - at, 8 + SC_IPC_TEXT_MAX, &h[done]) != NULL
                || h[done].length < 8) {
                return 0;
            }
            if (got - at < SC_FRAME_HDR_LEN + h[done].length) {
                break;
            }
            off[done++] = at;
            at += SC_FRAME_HDR_LEN + h[done - 1].length;
        }
        if (done == count) {
            *extra = got != at;
            return 1;
        }
    }
    return 0;
}

int sc_ipc_read_answer(int fd, apr_time_t deadline, unsigned char *buf, sc_frame_hdr *h,
                       int *extra)
{
    apr_size_t off;
    return sc_ipc_read_answers(fd, deadline, buf, 1, h, &off, extra);
}
