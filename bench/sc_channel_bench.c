/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_channel_bench.c -- load generator for the cluster channel benchmark.
 *
 *   sc_channel_bench engine SOCKET ROUTE SIZE ACK SECONDS CONNS
 *       Sends messages of SIZE bytes to member ROUTE through a member's engine
 *       (its local socket, as httpd's children do), from CONNS connections for
 *       SECONDS; ACK 1 waits for the remote member's acknowledgement, ACK 0 for
 *       the engine's "sent".  Prints: messages/s, p50 and p99 latency (ms).
 *
 *   sc_channel_bench pingpong-server PORT
 *   sc_channel_bench pingpong HOST PORT SIZE SECONDS
 *       The physical limit: a minimal C ping-pong over loopback TCP (one
 *       connection, the server echoes SIZE bytes).  Same output.
 */
#include "sc_proto.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const unsigned char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, unsigned char *b, size_t n)
{
    while (n) {
        ssize_t r = read(fd, b, n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

typedef struct {
    const char *sock;
    const char *route;
    size_t size;
    int ack;
    double seconds;
    double *lat;            /* latencies, seconds */
    size_t nlat, cap;
    unsigned long failures;
    char last_error[256];
} worker;

static void *engine_worker(void *arg)
{
    worker *w = arg;
    struct sockaddr_un sun;
    size_t rlen = strlen(w->route), len = SC_FRAME_HDR_LEN + 1 + rlen + w->size;
    unsigned char *req = calloc(1, len), reply[SC_FRAME_HDR_LEN + 8 + 256];
    sc_frame_hdr h;
    double end;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    apr_uint64_t seq = 0;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strncpy(sun.sun_path, w->sock, sizeof(sun.sun_path) - 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        snprintf(w->last_error, sizeof(w->last_error), "connect %s: %s", w->sock,
                 strerror(errno));
        w->failures++;
        free(req);
        return NULL;
    }
    req[SC_FRAME_HDR_LEN] = (unsigned char)rlen;
    memcpy(req + SC_FRAME_HDR_LEN + 1, w->route, rlen);
    memset(req + SC_FRAME_HDR_LEN + 1 + rlen, 'x', w->size);
    end = now_s() + w->seconds;
    while (now_s() < end) {
        double t0 = now_s();
        sc_frame_hdr rh;
        memset(&h, 0, sizeof(h));
        h.type = SC_MSG_DATA;
        h.flags = w->ack ? SC_FF_ACK : 0;
        h.seq = ++seq;
        h.length = (apr_uint32_t)(1 + rlen + w->size);
        sc_frame_hdr_encode(&h, req);
        if (write_all(fd, req, len) != 0
            || read_all(fd, reply, SC_FRAME_HDR_LEN) != 0
            || sc_frame_hdr_decode(reply, SC_FRAME_HDR_LEN, 8 + 256, &rh) != NULL
            || read_all(fd, reply + SC_FRAME_HDR_LEN, rh.length) != 0) {
            snprintf(w->last_error, sizeof(w->last_error), "engine connection failed");
            w->failures++;
            break;
        }
        if (rh.type != SC_MSG_ACK) {
            w->failures++;
            snprintf(w->last_error, sizeof(w->last_error), "%.*s",
                     (int)(rh.length > 8 ? rh.length - 8 : 0),
                     (const char *)reply + SC_FRAME_HDR_LEN + 8);
            continue;
        }
        if (w->nlat == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 65536;
            w->lat = realloc(w->lat, w->cap * sizeof(double));
        }
        w->lat[w->nlat++] = now_s() - t0;
    }
    close(fd);
    free(req);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(double *lat, size_t n, double seconds, unsigned long failures,
                   const char *err)
{
    qsort(lat, n, sizeof(double), cmp_d);
    printf("msgs_per_s=%.0f p50_ms=%.3f p99_ms=%.3f n=%zu failures=%lu%s%s\n",
           (double)n / seconds, n ? lat[n / 2] * 1e3 : 0.0,
           n ? lat[(size_t)((double)n * 0.99)] * 1e3 : 0.0, n, failures,
           err && *err ? " last_error=" : "", err && *err ? err : "");
}

static int engine_bench(char **argv)
{
    int conns = atoi(argv[7]), i;
    worker *ws = calloc((size_t)conns, sizeof(worker));
    pthread_t *ts = calloc((size_t)conns, sizeof(pthread_t));
    double *all = NULL;
    size_t n = 0;
    unsigned long failures = 0;
    const char *err = "";
    double seconds = atof(argv[6]);

    for (i = 0; i < conns; i++) {
        ws[i].sock = argv[2];
        ws[i].route = argv[3];
        ws[i].size = (size_t)atol(argv[4]);
        ws[i].ack = atoi(argv[5]);
        ws[i].seconds = seconds;
        pthread_create(&ts[i], NULL, engine_worker, &ws[i]);
    }
    for (i = 0; i < conns; i++) {
        pthread_join(ts[i], NULL);
        all = realloc(all, (n + ws[i].nlat + 1) * sizeof(double));
        memcpy(all + n, ws[i].lat, ws[i].nlat * sizeof(double));
        n += ws[i].nlat;
        failures += ws[i].failures;
        if (ws[i].last_error[0]) {
            err = ws[i].last_error;
        }
    }
    report(all, n, seconds, failures, err);
    return n ? 0 : 1;
}

static int pingpong_server(int port)
{
    struct sockaddr_in sin;
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 8) != 0) {
        perror("bind");
        return 1;
    }
    for (;;) {
        unsigned char buf[65536];
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        for (;;) {
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0 || write_all(fd, buf, (size_t)r) != 0) {
                break;
            }
        }
        close(fd);
    }
}

static int pingpong_client(const char *host, int port, size_t size, double seconds)
{
    struct sockaddr_in sin;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    unsigned char *buf = calloc(1, size);
    double *lat = NULL, end;
    size_t n = 0, cap = 0;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, host, &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        perror("connect");
        return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    end = now_s() + seconds;
    while (now_s() < end) {
        double t0 = now_s();
        if (write_all(fd, buf, size) != 0 || read_all(fd, buf, size) != 0) {
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            lat = realloc(lat, cap * sizeof(double));
        }
        lat[n++] = now_s() - t0;
    }
    report(lat, n, seconds, 0, "");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 8 && !strcmp(argv[1], "engine")) {
        return engine_bench(argv);
    }
    if (argc == 3 && !strcmp(argv[1], "pingpong-server")) {
        return pingpong_server(atoi(argv[2]));
    }
    if (argc == 6 && !strcmp(argv[1], "pingpong")) {
        return pingpong_client(argv[2], atoi(argv[3]), (size_t)atol(argv[4]),
                               atof(argv[5]));
    }
    fprintf(stderr, "usage: %s engine SOCKET ROUTE SIZE ACK SECONDS CONNS\n"
                    "       %s pingpong-server PORT\n"
                    "       %s pingpong HOST PORT SIZE SECONDS\n", argv[0], argv[0],
            argv[0]);
    return 2;
}
