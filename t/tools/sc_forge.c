/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_forge.c -- forged cluster traffic for the tests (t/cluster/security.t):
 * frames and heartbeats in the module's wire formats (sc_proto.h), sealed
 * with an EncryptInterceptor key as the engine seals them (sc_crypto.c) or in
 * clear, and deliberately broken ones.  Written to stdout, or sent over TCP to
 * a member's Receiver or as UDP datagrams (to a multicast group).  It uses the
 * module's own codec, so what it sends is what a member would send, except
 * where an option says otherwise.  Run without arguments for the usage text.
 *
 * Built by `make t/tools/sc_forge` (Makefile.am); not installed.
 */
#include "sc_proto.h"
#include "sc_crypto.h"

#include "apr_general.h"
#include "apr_pools.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netpacket/packet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char usage[] =
"usage: sc_forge [OPTION | VERB]...\n"
"Options and verbs are taken in order: an option changes what the verbs after\n"
"it emit; a verb emits (or does) one thing.\n"
"\n"
"Where it goes (default: the bytes to stdout; reports then go to stderr):\n"
"  -c HOST:PORT  TCP to a member's Receiver (connects before the first frame\n"
"                or wait, printing \"connected local=ADDR:PORT\"; reports go\n"
"                to stdout)\n"
"  -u HOST:PORT  UDP: every frame or heartbeat is one datagram (a multicast\n"
"                group is fine; TTL 1)\n"
"Sealing (EncryptInterceptor):\n"
"  -k HEX        seal with this key (16, 24 or 32 bytes as hex): frames get\n"
"                flag TAGGED and 28 bytes (nonce, tag) after the payload, with\n"
"                the 40-byte header and the destination as additional data;\n"
"                datagrams are \"SCE2\" and the sealed heartbeat.  -k - : clear\n"
"                again (the default)\n"
"  -t DEST       the destination frames are sealed for: a member id (16 bytes\n"
"                as hex) or HOST:PORT (its Receiver, as a member that does not\n"
"                know its id yet seals); default: the -c HOST:PORT.  Frames\n"
"                received are opened as sealed for -i (the member id)\n"
"Heartbeat fields (hello, ping, mcast):\n"
"  -r ROUTE      route (default forge)           -i HEX  member id, 16 bytes\n"
"  -I N          incarnation (default 1)         -S N    heartbeat sequence\n"
"                                                        number (then +1 each)\n"
"  -a IPV4       receiver address (127.0.0.1)    -p N    receiver port (4000)\n"
"  -m N          state 1-5 (2: ready)            -A N    alive ms (1000)\n"
"  -o DOMAIN     domain (none)\n"
"Frame fields (hello, ping, data; the sender is the member id):\n"
"  -s N          sequence number of the next frame (default 1; then +1 each)\n"
"  -F N          flags to add (1: ACK, 2: SYNC_ACK)\n"
"  -d TEXT       DATA payload (default \"forged\")   -D HEX  DATA payload as hex\n"
"For the next frame only (applied to the header before sealing):\n"
"  -V N          version byte N                  -L N    claim payload length N\n"
"  -T N          emit only the first N bytes of the frame\n"
"Verbs:\n"
"  hello | ping | data   a HELLO / PING (payload: the heartbeat) / DATA frame\n"
"  again         the previous frame's bytes, unchanged (a replay)\n"
"  mcast         a heartbeat datagram (\"SCE2\" + sealed with -k, else clear)\n"
"  raw HEX       these bytes as they are (a datagram with -u)\n"
"  reconnect     (-c) close the connection; the next frame or wait opens a\n"
"                new one\n"
"  wait MS       (-c) read for up to MS ms; prints one line per frame received\n"
"                (\"recv PONG seq=5 route=node1\", \"recv ACK seq=5 acked=7\"), then\n"
"                \"eof after N ms\", \"reset after N ms\" or \"open after N ms\"\n"
"                (it returns as soon as the other side closes)\n"
"  expect TYPE MS (-c) read as wait does, but stop after the first frame of\n"
"                TYPE (PONG, ACK, ...); if none comes within MS ms or the\n"
"                connection closes first: \"expect TYPE: not received\" and exit\n"
"                status 3.  Frames after it stay buffered for the next wait\n"
"  sleep MS      pause\n"
"  conns N MS    (-c) N more connections (besides the one above, if open)\n"
"                that send nothing, watched for MS ms: \"conn I closed after\n"
"                N ms local=ADDR:PORT\" or \"conn I open local=ADDR:PORT\" each,\n"
"                then \"conns opened=N closed=K\";\n"
"                then they are closed\n"
"  tcpsniff SRC DST:PORT TYPE MS   (raw socket, in the receiver's network\n"
"                namespace) the first frame of TYPE (HELLO, PING, ...) in a TCP\n"
"                segment from address SRC to DST:PORT within MS ms, printed as\n"
"                \"frame type=T seq=N sender=HEX src=A:P raw=HEX\" (the frame's\n"
"                bytes as sent); else \"tcpsniff: none\" (exit status 3)\n"
"  sniff HOST:PORT MS   join that multicast group; the first heartbeat from\n"
"                route -r within MS ms (opened with -k when sealed; \"-r -\": any)\n"
"                is printed as \"heartbeat route=R id=HEX incarnation=N seq=N\n"
"                alive=N addr=A port=N state=N raw=HEX\"; else \"sniff: none\"\n"
"                (exit status 3)\n"
"Exit status: 0, or 2 on bad usage, 1 when a connection or a send failed, 3\n"
"when an expect or a sniff found nothing (1 wins over 3).\n"
"\n"
"Example: a sealed HELLO, a DATA frame and its replay on one connection:\n"
"  sc_forge -c 10.200.7.1:4000 -k 00..1f -r mallory -a 10.200.7.9 hello \\\n"
"           -F 1 data again wait 1000\n";

static sc_crypto *key;            /* NULL: clear */
static unsigned char dest[SC_DEST_LEN];
static int dest_given;
static sc_heartbeat hb;
static apr_uint64_t seq = 1;
static apr_uint16_t extra_flags;
static unsigned char payload[65536];
static apr_size_t payload_len;
static int once_version = -1;
static long long once_length = -1, once_truncate = -1;
static unsigned char last[SC_FRAME_HDR_LEN + sizeof(payload) + SC_SEAL_OVERHEAD];
static apr_size_t last_len;
static int mode;                  /* 0: stdout, 'c': TCP, 'u': UDP */
static int tcp_fd = -1, udp_fd = -1;
static int need_connect;          /* -c or reconnect: connect before the next frame */
static struct sockaddr_in peer;   /* -c or -u */
static int status;
static apr_pool_t *pool;

static void die_usage(const char *why, const char *arg)
{
    fprintf(stderr, "sc_forge: %s%s%s\n\n%s", why, arg ? ": " : "", arg ? arg : "", usage);
    exit(2);
}

static double now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

static long long num(const char *s)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 0);
    if (errno || !*s || *end) {
        die_usage("not a number", s);
    }
    return v;
}

/* hex text -> bytes; returns the length, or -1 */
static long hex(const char *s, unsigned char *out, size_t cap)
{
    size_t n = strlen(s), i;
    if (n % 2 || n / 2 > cap) {
        return -1;
    }
    for (i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (unsigned char)v;
    }
    return (long)(n / 2);
}

static void hexout(FILE *f, const unsigned char *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        fprintf(f, "%02x", b[i]);
    }
}

static void host_port(const char *s, struct sockaddr_in *sin)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host)) {
        die_usage("HOST:PORT expected", s);
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((unsigned short)num(colon + 1));
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        die_usage("an IPv4 address expected", host);
    }
}

/* "ADDR:PORT" of a socket's local end (the member logs connections by it) */
static const char *local_name(int fd)
{
    static char buf[64];
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char a[INET_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&sin, &sl) != 0
        || !inet_ntop(AF_INET, &sin.sin_addr, a, sizeof(a))) {
        return "?";
    }
    snprintf(buf, sizeof(buf), "%s:%u", a, (unsigned)ntohs(sin.sin_port));
    return buf;
}

/* what has been read on the connection and not printed yet (wait, expect) */
static unsigned char rbuf[SC_FRAME_HDR_LEN + 65536 + SC_TAG_MAX];
static apr_size_t rhave;

static void fail_soft(void)
{
    if (!status) {
        status = 3;
    }
}

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    rhave = 0;
    if (fd < 0 || connect(fd, (struct sockaddr *)&peer, sizeof(peer)) != 0) {
        printf("connect failed: %s\n", strerror(errno));
        fflush(stdout);
        if (fd >= 0) {
            close(fd);
        }
        status = 1;
        return -1;
    }
    printf("connected local=%s\n", local_name(fd));
    fflush(stdout);
    return fd;
}

/* Writes bytes where they go. */
static void emit(const unsigned char *b, apr_size_t n, const char *what)
{
    if (mode == 'c' && need_connect) {
        need_connect = 0;
        tcp_fd = tcp_connect();
    }
    if (mode == 'c' && tcp_fd < 0) {
        printf("not sent (%s): not connected\n", what);
        status = 1;
    }
    else if (mode == 'u') {
        if (sendto(udp_fd, b, n, 0, (struct sockaddr *)&peer, sizeof(peer)) != (ssize_t)n) {
            printf("sendto failed (%s): %s\n", what, strerror(errno));
            status = 1;
        }
        else {
            printf("sent %s bytes=%zu\n", what, (size_t)n);
        }
    }
    else if (mode == 'c') {
        apr_size_t off = 0;
        while (off < n) {
            ssize_t w = send(tcp_fd, b + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                printf("send failed (%s): %s\n", what, strerror(errno));
                status = 1;
                break;
            }
            off += (apr_size_t)w;
        }
        if (off == n) {
            printf("sent %s bytes=%zu\n", what, (size_t)n);
        }
    }
    else if (fwrite(b, 1, n, stdout) != n) {
        status = 1;
    }
    else {
        fprintf(stderr, "sc_forge: %s bytes=%zu\n", what, (size_t)n);
    }
    fflush(stdout);
}

static apr_size_t heartbeat(unsigned char *buf, apr_size_t cap)
{
    apr_size_t n = sc_heartbeat_encode(&hb, buf, cap);
    if (!n) {
        die_usage("the heartbeat's fields are out of bounds", hb.route);
    }
    hb.seq++;
    return n;
}

/* One frame (type, payload) into last[], emitted. */
static void frame(int type, const unsigned char *pl, apr_size_t len)
{
    sc_frame_hdr h;
    char what[64];
    memset(&h, 0, sizeof(h));
    h.type = (apr_byte_t)type;
    h.flags = (apr_uint16_t)(extra_flags | (key ? SC_FF_TAGGED : 0));
    memcpy(h.sender, hb.id, SC_ID_LEN);
    h.seq = seq;
    h.length = (apr_uint32_t)len;
    h.tag_length = key ? SC_SEAL_OVERHEAD : 0;
    sc_frame_hdr_encode(&h, last);
    if (once_version >= 0) {
        last[4] = (unsigned char)once_version;
    }
    if (once_length >= 0) {
        sc_put32(last + 32, (apr_uint32_t)once_length);
    }
    if (key) {
        if (!dest_given && mode == 'c') {
            sc_crypto_dest_addr(dest, 4, (const unsigned char *)&peer.sin_addr,
                                ntohs(peer.sin_port));
        }
        else if (!dest_given) {
            die_usage("a sealed frame needs a destination: -t or -c", NULL);
        }
        if (sc_crypto_seal_frame(key, last, SC_FRAME_HDR_LEN, dest, pl, len,
                                 last + SC_FRAME_HDR_LEN)) {
            fprintf(stderr, "sc_forge: sealing failed\n");
            exit(1);
        }
        last_len = SC_FRAME_HDR_LEN + len + SC_SEAL_OVERHEAD;
    }
    else {
        memcpy(last + SC_FRAME_HDR_LEN, pl, len);
        last_len = SC_FRAME_HDR_LEN + len;
    }
    if (once_truncate >= 0 && (apr_size_t)once_truncate < last_len) {
        last_len = (apr_size_t)once_truncate;
    }
    snprintf(what, sizeof(what), "%s seq=%llu", sc_msg_type_name(type),
             (unsigned long long)seq);
    seq++;
    once_version = -1;
    once_length = once_truncate = -1;
    emit(last, last_len, what);
}

static void datagram(void)
{
    unsigned char plain[SC_HB_MAX_LEN], out[4 + SC_HB_MAX_LEN + SC_SEAL_OVERHEAD];
    char what[64];
    unsigned long long s = (unsigned long long)hb.seq;
    apr_size_t n = heartbeat(plain, sizeof(plain));
    snprintf(what, sizeof(what), "heartbeat seq=%llu%s", s, key ? " sealed" : "");
    if (!key) {
        emit(plain, n, what);
        return;
    }
    memcpy(out, SC_HB_SEALED_MAGIC, 4);
    if (sc_crypto_seal(key, out, 4, plain, n, out + 4)) {
        fprintf(stderr, "sc_forge: sealing failed\n");
        exit(1);
    }
    emit(out, 4 + n + SC_SEAL_OVERHEAD, what);
}

/* Prints the complete frames in rbuf[] (at most up to the first of type
 * 'until' when until >= 0); returns 1 when a frame of type 'until' was
 * printed, -1 on garbage (the buffer is dropped then), else 0. */
static int print_frames(int until)
{
    for (;;) {
        sc_frame_hdr h;
        unsigned char plain[65536];
        const unsigned char *pl;
        sc_heartbeat ans;
        apr_size_t total;
        const char *err;
        if (rhave < SC_FRAME_HDR_LEN) {
            return 0;
        }
        if ((err = sc_frame_hdr_decode(rbuf, rhave, 65536, &h))) {
            printf("recv garbage: %s\n", err);
            rhave = 0;
            return -1;
        }
        total = SC_FRAME_HDR_LEN + h.length + h.tag_length;
        if (rhave < total) {
            return 0;
        }
        pl = rbuf + SC_FRAME_HDR_LEN;
        printf("recv %s seq=%llu", sc_msg_type_name(h.type), (unsigned long long)h.seq);
        if (h.flags & SC_FF_TAGGED) {
            unsigned char self[SC_DEST_LEN];
            sc_crypto_dest_id(self, hb.id);
            if (!key || h.tag_length != SC_SEAL_OVERHEAD
                || sc_crypto_open_frame(key, rbuf, SC_FRAME_HDR_LEN, self, pl,
                                        h.length + SC_SEAL_OVERHEAD, plain, NULL)) {
                printf(" sealed, not opened");
                pl = NULL;
            }
            else {
                pl = plain;
            }
        }
        if (pl && (h.type == SC_MSG_PONG || h.type == SC_MSG_PING || h.type == SC_MSG_HELLO)
            && !sc_heartbeat_decode(pl, h.length, &ans)) {
            printf(" route=%s", ans.route);
        }
        if (pl && (h.type == SC_MSG_ACK || h.type == SC_MSG_FAIL_ACK) && h.length >= 8) {
            printf(" acked=%llu", (unsigned long long)sc_get64(pl));
        }
        printf("\n");
        memmove(rbuf, rbuf + total, rhave - total);
        rhave -= total;
        if (until >= 0 && h.type == until) {
            return 1;
        }
    }
}

/* Reads frames for up to ms and prints them, then how the connection stands
 * (wait: until < 0).  expect: stops after the first frame of type 'until'
 * and says so when there was none. */
static void wait_answers(long long ms, int until, const char *until_name)
{
    double t0 = now_ms(), left;
    int found = 0;
    if (mode != 'c') {
        die_usage(until < 0 ? "wait needs -c" : "expect needs -c", NULL);
    }
    if (need_connect) {
        need_connect = 0;
        tcp_fd = tcp_connect();
    }
    if (tcp_fd < 0) {
        printf("not connected\n");
        if (until >= 0) {
            printf("expect %s: not received\n", until_name);
            fail_soft();
        }
        fflush(stdout);
        return;
    }
    found = print_frames(until) == 1;
    while (!found && (left = t0 + (double)ms - now_ms()) > 0) {
        struct pollfd pfd = { tcp_fd, POLLIN, 0 };
        ssize_t r;
        if (poll(&pfd, 1, (int)left + 1) <= 0) {
            continue;
        }
        r = recv(tcp_fd, rbuf + rhave, sizeof(rbuf) - rhave, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            printf("%s after %.0f ms\n", r == 0 ? "eof" : errno == ECONNRESET ? "reset"
                   : strerror(errno), now_ms() - t0);
            close(tcp_fd);
            tcp_fd = -1;
            rhave = 0;
            break;
        }
        rhave += (apr_size_t)r;
        found = print_frames(until) == 1;
    }
    if (until >= 0 && !found) {
        if (tcp_fd >= 0) {
            printf("open after %.0f ms\n", now_ms() - t0);
        }
        printf("expect %s: not received\n", until_name);
        fail_soft();
    }
    else if (until < 0 && tcp_fd >= 0) {
        printf("open after %.0f ms\n", now_ms() - t0);
    }
    fflush(stdout);
}

/* A message type by its name (as sc_msg_type_name() prints it), or -1. */
static int type_by_name(const char *name)
{
    int t;
    for (t = 1; t < 256 && strcmp(name, "?"); t++) {
        if (!strcmp(sc_msg_type_name(t), name)) {
            return t;
        }
    }
    return -1;
}

static void conns(long long n, long long ms)
{
    int *fds = calloc((size_t)n, sizeof(int));
    double *closed = calloc((size_t)n, sizeof(double));
    double t0 = now_ms(), left;
    long long i, opened = 0, nclosed = 0;
    if (!fds || !closed || n <= 0 || mode != 'c') {
        die_usage("conns needs -c and N > 0", NULL);
    }
    for (i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&peer, sizeof(peer)) != 0) {
            printf("conn %lld connect failed: %s\n", i, strerror(errno));
            if (fds[i] >= 0) {
                close(fds[i]);
            }
            fds[i] = -1;
            status = 1;
            continue;
        }
        opened++;
    }
    while (nclosed < opened && (left = t0 + (double)ms - now_ms()) > 0) {
        struct pollfd pfd[1024];
        int k = 0;
        for (i = 0; i < n && k < 1024; i++) {
            if (fds[i] >= 0 && !closed[i]) {
                pfd[k].fd = fds[i];
                pfd[k].events = POLLIN;
                pfd[k++].revents = 0;
            }
        }
        if (poll(pfd, (nfds_t)k, (int)left + 1) <= 0) {
            continue;
        }
        for (i = 0; i < n; i++) {
            int j;
            for (j = 0; j < k; j++) {
                char b[256];
                if (pfd[j].fd != fds[i] || !pfd[j].revents) {
                    continue;
                }
                if (recv(fds[i], b, sizeof(b), 0) <= 0) {
                    closed[i] = now_ms() - t0 + 0.001;
                    nclosed++;
                }
            }
        }
    }
    for (i = 0; i < n; i++) {
        if (fds[i] < 0) {
            continue;
        }
        if (closed[i]) {
            printf("conn %lld closed after %.0f ms local=%s\n", i, closed[i],
                   local_name(fds[i]));
        }
        else {
            printf("conn %lld open local=%s\n", i, local_name(fds[i]));
        }
        close(fds[i]);
    }
    printf("conns opened=%lld closed=%lld\n", opened, nclosed);
    fflush(stdout);
    free(fds);
    free(closed);
}

static void sniff(const char *group, long long ms)
{
    struct sockaddr_in sin;
    struct ip_mreq mreq;
    int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    double t0 = now_ms(), left;
    host_port(group, &sin);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&mreq, 0, sizeof(mreq));
    mreq.imr_multiaddr = sin.sin_addr;
    mreq.imr_interface.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0
        || setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) != 0) {
        printf("sniff: cannot join %s: %s\n", group, strerror(errno));
        status = 1;
        close(fd);
        return;
    }
    while ((left = t0 + (double)ms - now_ms()) > 0) {
        unsigned char buf[2048], plain[2048];
        const unsigned char *h = buf;
        struct pollfd pfd = { fd, POLLIN, 0 };
        sc_heartbeat got;
        ssize_t n;
        apr_size_t hl;
        if (poll(&pfd, 1, (int)left + 1) <= 0) {
            continue;
        }
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            continue;
        }
        hl = (apr_size_t)n;
        if (n >= 4 + SC_SEAL_OVERHEAD && !memcmp(buf, SC_HB_SEALED_MAGIC, 4)) {
            if (!key || sc_crypto_open(key, buf, 4, buf + 4, (apr_size_t)n - 4, plain, NULL)) {
                continue;
            }
            h = plain;
            hl = (apr_size_t)n - 4 - SC_SEAL_OVERHEAD;
        }
        if (sc_heartbeat_decode(h, hl, &got)
            || (strcmp(hb.route, "-") && strcmp(hb.route, got.route))) {
            continue;
        }
        {
            char a[INET6_ADDRSTRLEN];
            inet_ntop(got.family == 6 ? AF_INET6 : AF_INET, got.addr, a, sizeof(a));
            printf("heartbeat route=%s id=", got.route);
            hexout(stdout, got.id, SC_ID_LEN);
            printf(" incarnation=%llu seq=%llu alive=%llu addr=%s port=%u state=%u raw=",
                   (unsigned long long)got.incarnation, (unsigned long long)got.seq,
                   (unsigned long long)got.alive_ms, a, got.port, got.state);
            hexout(stdout, buf, (size_t)n);
            printf("\n");
            fflush(stdout);
        }
        close(fd);
        return;
    }
    printf("sniff: none\n");
    fail_soft();
    fflush(stdout);
    close(fd);
}

/* The first frame of a type in a TCP segment from src to dst (an AF_PACKET
 * socket: root, in the namespace the segments reach). */
static void tcpsniff(const char *src, const char *dst, int type, long long ms)
{
    struct sockaddr_in want;
    struct in_addr from;
    double t0 = now_ms(), left;
    int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
    host_port(dst, &want);
    if (inet_pton(AF_INET, src, &from) != 1) {
        die_usage("tcpsniff: an IPv4 address expected", src);
    }
    if (fd < 0) {
        printf("tcpsniff: no packet socket: %s\n", strerror(errno));
        status = 1;
        fflush(stdout);
        return;
    }
    while ((left = t0 + (double)ms - now_ms()) > 0) {
        unsigned char pkt[65536];
        struct pollfd pfd = { fd, POLLIN, 0 };
        ssize_t n;
        size_t ihl, thl, tot;
        const unsigned char *tcp, *f;
        size_t flen;
        if (poll(&pfd, 1, (int)left + 1) <= 0) {
            continue;
        }
        n = recv(fd, pkt, sizeof(pkt), 0);
        if (n < 20 || (pkt[0] >> 4) != 4 || pkt[9] != 6) {
            continue;
        }
        ihl = (size_t)(pkt[0] & 15) * 4;
        tot = ((size_t)pkt[2] << 8) | pkt[3];
        if (tot > (size_t)n || ihl < 20 || ihl + 20 > tot
            || memcmp(pkt + 12, &from, 4) || memcmp(pkt + 16, &want.sin_addr, 4)) {
            continue;
        }
        tcp = pkt + ihl;
        thl = (size_t)(tcp[12] >> 4) * 4;
        if (memcmp(tcp + 2, &want.sin_port, 2) || thl < 20 || ihl + thl > tot) {
            continue;
        }
        f = tcp + thl;
        flen = tot - ihl - thl;
        if (flen < SC_FRAME_HDR_LEN || memcmp(f, SC_FRAME_MAGIC, 4) || f[5] != type) {
            continue;
        }
        {
            size_t whole = SC_FRAME_HDR_LEN + sc_get32(f + 32) + sc_get16(f + 36);
            if (whole > flen) {
                continue;             /* not all in this segment */
            }
            printf("frame type=%s seq=%llu sender=", sc_msg_type_name(type),
                   (unsigned long long)sc_get64(f + 24));
            hexout(stdout, f + 8, SC_ID_LEN);
            printf(" src=%s:%u raw=", src, (unsigned)((tcp[0] << 8) | tcp[1]));
            hexout(stdout, f, whole);
            printf("\n");
            fflush(stdout);
        }
        close(fd);
        return;
    }
    printf("tcpsniff: none\n");
    fail_soft();
    fflush(stdout);
    close(fd);
}

int main(int argc, char **argv)
{
    int i;
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    apr_initialize();
    apr_pool_create(&pool, NULL);
    memset(&hb, 0, sizeof(hb));
    hb.state = SC_MS_READY;
    hb.incarnation = 1;
    hb.alive_ms = 1000;
    hb.seq = 1;
    hb.port = 4000;
    hb.family = 4;
    hb.addr[0] = 127;
    hb.addr[3] = 1;
    strcpy(hb.route, "forge");
    memcpy(hb.id, "sc_forge-forged!", SC_ID_LEN);
    memcpy(payload, "forged", 6);
    payload_len = 6;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned char kb[32];
        long n;
        if (a[0] == '-' && a[1] && !a[2]) {
            if (!v) {
                die_usage("a value is missing after", a);
            }
            i++;
            switch (a[1]) {
            case 'c':
            case 'u':
                host_port(v, &peer);
                mode = a[1];
                if (a[1] == 'c') {
                    need_connect = 1;
                }
                else {
                    unsigned char ttl = 1;
                    udp_fd = socket(AF_INET, SOCK_DGRAM, 0);
                    setsockopt(udp_fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl));
                }
                break;
            case 'k':
                if (!strcmp(v, "-")) {
                    key = NULL;
                    break;
                }
                if ((n = hex(v, kb, sizeof(kb))) < 0
                    || sc_crypto_create(pool, kb, (int)n, NULL, 0, &key)) {
                    die_usage("a key is 16, 24 or 32 bytes as hex", v);
                }
                break;
            case 't':
                if (strchr(v, ':')) {
                    struct sockaddr_in t;
                    host_port(v, &t);
                    sc_crypto_dest_addr(dest, 4, (const unsigned char *)&t.sin_addr,
                                        ntohs(t.sin_port));
                }
                else {
                    unsigned char id[SC_ID_LEN];
                    if (hex(v, id, SC_ID_LEN) != SC_ID_LEN) {
                        die_usage("-t: a member id (16 bytes as hex) or HOST:PORT", v);
                    }
                    sc_crypto_dest_id(dest, id);
                }
                dest_given = 1;
                break;
            case 'r':
                if (strlen(v) > SC_ROUTE_MAX) {
                    die_usage("route too long", v);
                }
                strcpy(hb.route, v);
                break;
            case 'i':
                if (hex(v, hb.id, SC_ID_LEN) != SC_ID_LEN) {
                    die_usage("an id is 16 bytes as hex", v);
                }
                break;
            case 'I': hb.incarnation = (apr_uint64_t)num(v); break;
            case 'S': hb.seq = (apr_uint64_t)num(v); break;
            case 'a':
                memset(hb.addr, 0, sizeof(hb.addr));
                if (inet_pton(AF_INET, v, hb.addr) != 1) {
                    die_usage("an IPv4 address expected", v);
                }
                break;
            case 'p': hb.port = (apr_uint16_t)num(v); break;
            case 'm': hb.state = (apr_byte_t)num(v); break;
            case 'A': hb.alive_ms = (apr_uint64_t)num(v); break;
            case 'o':
                if (strlen(v) > SC_DOMAIN_MAX) {
                    die_usage("domain too long", v);
                }
                hb.domain_len = (apr_byte_t)strlen(v);
                memcpy(hb.domain, v, hb.domain_len);
                break;
            case 's': seq = (apr_uint64_t)num(v); break;
            case 'F': extra_flags = (apr_uint16_t)num(v); break;
            case 'd':
                payload_len = strlen(v) < sizeof(payload) ? strlen(v) : sizeof(payload);
                memcpy(payload, v, payload_len);
                break;
            case 'D':
                if ((n = hex(v, payload, sizeof(payload))) < 0) {
                    die_usage("bad hex", v);
                }
                payload_len = (apr_size_t)n;
                break;
            case 'V': once_version = (int)num(v); break;
            case 'L': once_length = num(v); break;
            case 'T': once_truncate = num(v); break;
            default:
                die_usage("unknown option", a);
            }
        }
        else if (!strcmp(a, "hello") || !strcmp(a, "ping")) {
            unsigned char b[SC_HB_MAX_LEN];
            apr_size_t len = heartbeat(b, sizeof(b));
            frame(a[0] == 'h' ? SC_MSG_HELLO : SC_MSG_PING, b, len);
        }
        else if (!strcmp(a, "data")) {
            frame(SC_MSG_DATA, payload, payload_len);
        }
        else if (!strcmp(a, "again")) {
            if (!last_len) {
                die_usage("again: no frame before it", NULL);
            }
            emit(last, last_len, "again");
        }
        else if (!strcmp(a, "mcast")) {
            datagram();
        }
        else if (!strcmp(a, "raw") && v) {
            static unsigned char b[65536];
            i++;
            if ((n = hex(v, b, sizeof(b))) < 0) {
                die_usage("bad hex", v);
            }
            emit(b, (apr_size_t)n, "raw");
        }
        else if (!strcmp(a, "reconnect")) {
            if (mode != 'c') {
                die_usage("reconnect needs -c", NULL);
            }
            if (tcp_fd >= 0) {
                close(tcp_fd);
                tcp_fd = -1;
            }
            need_connect = 1;
        }
        else if (!strcmp(a, "wait") && v) {
            i++;
            wait_answers(num(v), -1, NULL);
        }
        else if (!strcmp(a, "expect") && v && i + 2 < argc) {
            int t = type_by_name(v);
            if (t < 0) {
                die_usage("expect: unknown message type", v);
            }
            wait_answers(num(argv[i + 2]), t, v);
            i += 2;
        }
        else if (!strcmp(a, "sleep") && v) {
            i++;
            usleep((useconds_t)num(v) * 1000);
        }
        else if (!strcmp(a, "conns") && v && i + 2 < argc) {
            conns(num(v), num(argv[i + 2]));
            i += 2;
        }
        else if (!strcmp(a, "tcpsniff") && v && i + 4 < argc) {
            int t = type_by_name(argv[i + 3]);
            if (t < 0) {
                die_usage("tcpsniff: unknown message type", argv[i + 3]);
            }
            tcpsniff(v, argv[i + 2], t, num(argv[i + 4]));
            i += 4;
        }
        else if (!strcmp(a, "sniff") && v && i + 2 < argc) {
            sniff(v, num(argv[i + 2]));
            i += 2;
        }
        else {
            die_usage("unknown verb, or its arguments are missing", a);
        }
    }
    if (tcp_fd >= 0) {
        close(tcp_fd);
    }
    apr_pool_destroy(pool);
    apr_terminate();
    return status;
}
