/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * test_ipc.c -- the engine's answers as an asker reads them from its local
 * socket (sc_ipc.c), over a real AF_UNIX stream socket pair: an answer
 * written whole, byte by byte, or two in one write or split across writes;
 * bytes beyond the answers (the stream out of step); the longest answer; the
 * receive timeout, and the deadline with nothing written, with part of an
 * answer, and kept when a piece comes late; the peer gone before a whole
 * answer; headers that are not an answer's; counts out of
 * range; and a signal (SIGALRM, without SA_RESTART) interrupting the wait in
 * recv and in poll.
 *
 * The writer is a thread (SIGALRM blocked in it, so that the signal
 * interrupts the reader); timings are generous bounds that tell a wait from
 * none, not measurements.
 */
#include "unit.h"
#include "sc_ipc.h"
#include "sc_clock.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define TEXT_ACK "applied"
#define TEXT_FAIL "refused: no such session"

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The deadline has come (to the millisecond the reader counts in): a read
 * that gave up gave up at its deadline, not before (a cause, not a duration:
 * nothing here bounds how long it took). */
static int past(apr_time_t deadline)
{
    return sc_steady_us() > deadline - apr_time_from_msec(1);
}

/* an answer as the engine writes it: the header, its time in microseconds,
 * then the text; returns its length */
static apr_size_t make_answer(unsigned char *buf, int type, apr_uint64_t seq,
                              apr_uint64_t usec, const char *text)
{
    sc_frame_hdr h;
    apr_size_t tlen = strlen(text);
    memset(&h, 0, sizeof(h));
    h.type = (apr_byte_t)type;
    h.seq = seq;
    h.length = (apr_uint32_t)(8 + tlen);
    memset(h.sender, 0x5c, SC_ID_LEN);
    sc_frame_hdr_encode(&h, buf);
    sc_put64(buf + SC_FRAME_HDR_LEN, usec);
    memcpy(buf + SC_FRAME_HDR_LEN + 8, text, tlen);
    return SC_FRAME_HDR_LEN + 8 + tlen;
}

static int pair(int sv[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

/* ---- the writer: a thread sending chunks with pauses between them ---- */

#define CHUNKS_MAX 8

static atomic_int alarms;             /* SIGALRMs handled */

typedef struct {
    int fd;
    const unsigned char *data;
    apr_size_t len;
    apr_size_t end[CHUNKS_MAX];       /* chunk i ends at end[i] */
    long pause_ms[CHUNKS_MAX];        /* pause before chunk i */
    int chunks;
    long byte_ms;                     /* > 0: one byte a send, this pause after each */
    int after_alarm;                  /* chunk 1 waits for the SIGALRM first */
    int shut;                         /* close the writer's end at the end */
    pthread_t th;
} writer;

static int send_all(int fd, const unsigned char *p, apr_size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (apr_size_t)w;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    apr_size_t at = 0;
    int i;
    if (w->byte_ms > 0) {
        for (at = 0; at < w->len; at++) {
            if (send_all(w->fd, w->data + at, 1) != 0) {
                break;
            }
            sleep_ms(w->byte_ms);
        }
    }
    else {
        for (i = 0; i < w->chunks; i++) {
            if (i == 1 && w->after_alarm) {
                while (atomic_load(&alarms) == 0) {
                    sleep_ms(1);
                }
            }
            if (w->pause_ms[i] > 0) {
                sleep_ms(w->pause_ms[i]);
            }
            if (send_all(w->fd, w->data + at, w->end[i] - at) != 0) {
                break;
            }
            at = w->end[i];
        }
    }
    if (w->shut) {
        close(w->fd);
    }
    return NULL;
}

/* starts w in a thread that does not take SIGALRM */
static void writer_start(writer *w)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    if (pthread_create(&w->th, NULL, writer_main, w) != 0) {
        perror("pthread_create");
        exit(2);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void writer_join(writer *w)
{
    pthread_join(w->th, NULL);
}

/* a writer of data; writer_chunk adds a chunk ending at end, sent pause ms
 * after the one before */
static void writer_init(writer *w, int fd, const unsigned char *data, apr_size_t len)
{
    memset(w, 0, sizeof(*w));
    w->fd = fd;
    w->data = data;
    w->len = len;
}

static void writer_chunk(writer *w, apr_size_t end, long pause)
{
    w->end[w->chunks] = end;
    w->pause_ms[w->chunks] = pause;
    w->chunks++;
}

/* ---- answers that come ---- */

static void whole(void)
{
    int sv[2], extra = 7;
    unsigned char msg[SC_IPC_ANSWER_MAX], buf[SC_IPC_ANSWER_MAX + 16];
    apr_size_t n = make_answer(msg, SC_MSG_ACK, 41, 1234567, TEXT_ACK), i;
    sc_frame_hdr h;
    int guard_ok = 1;

    note("one answer written whole");
    ok(pair(sv) == 0, "a socket pair");
    is(sc_ipc_set_wait(sv[0], 2000), 0, "its receive timeout set");
    ok(send_all(sv[1], msg, n) == 0, "an ACK written whole (%zu bytes)", n);
    memset(&h, 0, sizeof(h));
    is(sc_ipc_read_answer(sv[0], sc_steady_us() + apr_time_from_sec(3), buf, &h, &extra), 1,
       "sc_ipc_read_answer: 1");
    is(h.type, SC_MSG_ACK, "its type");
    is((long long)h.seq, 41, "its sequence number");
    is(h.length, 8 + strlen(TEXT_ACK), "its payload's length");
    is(extra, 0, "nothing beyond it");
    ok(memcmp(buf, msg, n) == 0, "the frame at the buffer's start, intact");
    is((long long)sc_get64(buf + SC_FRAME_HDR_LEN), 1234567, "the engine's time");

    {
        apr_size_t off = 99;
        memset(&h, 0, sizeof(h));
        ok(send_all(sv[1], msg, n) == 0, "another written");
        is(sc_ipc_read_answers(sv[0], sc_steady_us() + apr_time_from_sec(3), buf, 1, &h, &off,
                               &extra), 1, "sc_ipc_read_answers, count 1: 1");
        is((long long)off, 0, "its offset 0");
        is(h.type, SC_MSG_ACK, "its type");
        is((long long)h.seq, 41, "its sequence number");
        is(extra, 0, "nothing beyond it");
    }

    /* the longest answer fills the buffer exactly, and nothing past it */
    {
        char text[SC_IPC_TEXT_MAX + 1];
        memset(text, 't', SC_IPC_TEXT_MAX);
        text[SC_IPC_TEXT_MAX] = '\0';
        n = make_answer(msg, SC_MSG_FAIL_ACK, 42, 7, text);
        ok(n == SC_IPC_ANSWER_MAX, "the longest answer is SC_IPC_ANSWER_MAX bytes");
        memset(buf, 0xee, sizeof(buf));
        ok(send_all(sv[1], msg, n) == 0, "written");
        is(sc_ipc_read_answer(sv[0], sc_steady_us() + apr_time_from_sec(3), buf, &h, &extra), 1,
           "read: 1");
        is(h.type, SC_MSG_FAIL_ACK, "a FAIL_ACK");
        is(h.length, 8 + SC_IPC_TEXT_MAX, "its payload's length");
        is(extra, 0, "nothing beyond it");
        ok(memcmp(buf, msg, n) == 0, "intact");
        for (i = SC_IPC_ANSWER_MAX; i < sizeof(buf); i++) {
            guard_ok &= buf[i] == 0xee;
        }
        ok(guard_ok, "nothing written past the buffer");
    }
    close(sv[0]);
    close(sv[1]);
}

static void byte_by_byte(void)
{
    int sv[2], extra = 7;
    unsigned char msg[SC_IPC_ANSWER_MAX], buf[SC_IPC_ANSWER_MAX];
    apr_size_t n = make_answer(msg, SC_MSG_FAIL_ACK, 77, 99, TEXT_FAIL);
    sc_frame_hdr h;
    writer w;
    int rv;

    note("one answer written a byte at a time, 1 ms apart");
    ok(pair(sv) == 0, "a socket pair");
    is(sc_ipc_set_wait(sv[0], 2000), 0, "its receive timeout set");
    writer_init(&w, sv[1], msg, n);
    w.byte_ms = 1;
    writer_start(&w);
    memset(buf, 0, sizeof(buf));
    rv = sc_ipc_read_answer(sv[0], sc_steady_us() + apr_time_from_sec(5), buf, &h, &extra);
    writer_join(&w);
    is(rv, 1, "read: 1 (%zu bytes, one a send)", n);
    is(h.type, SC_MSG_FAIL_ACK, "its type");
    is((long long)h.seq, 77, "its sequence number");
    is(h.length, 8 + strlen(TEXT_FAIL), "its payload's length");
    is(extra, 0, "nothing beyond it");
    ok(memcmp(buf, msg, n) == 0, "the bytes intact");
    close(sv[0]);
    close(sv[1]);
}

/* two answers, the HELLO's and the change's, as sc_client.c reads them */
static void check_two(const unsigned char *msg, apr_size_t n1, apr_size_t n2,
                      const unsigned char *buf, const sc_frame_hdr *h, const apr_size_t *off,
                      int rv, int extra, const char *how)
{
    is(rv, 1, "%s: read: 1", how);
    is(h[0].type, SC_MSG_ACK, "%s: the first's type", how);
    is((long long)h[0].seq, 1, "%s: the first's sequence number", how);
    is(h[0].length, 8 + strlen(TEXT_ACK), "%s: the first's length", how);
    is((long long)off[0], 0, "%s: the first at offset 0", how);
    is(h[1].type, SC_MSG_FAIL_ACK, "%s: the second's type", how);
    is((long long)h[1].seq, 2, "%s: the second's sequence number", how);
    is(h[1].length, 8 + strlen(TEXT_FAIL), "%s: the second's length", how);
    is((long long)off[1], n1, "%s: the second right after the first", how);
    is(extra, 0, "%s: nothing beyond them", how);
    ok(memcmp(buf, msg, n1 + n2) == 0, "%s: both intact", how);
}

static void two_answers(void)
{
    int sv[2], extra = 7, rv;
    unsigned char msg[2 * SC_IPC_ANSWER_MAX], buf[2 * SC_IPC_ANSWER_MAX];
    apr_size_t n1 = make_answer(msg, SC_MSG_ACK, 1, 10, TEXT_ACK);
    apr_size_t n2 = make_answer(msg + n1, SC_MSG_FAIL_ACK, 2, 20, TEXT_FAIL);
    /* where the first is cut: in its header, at its end, in its time, in
     * its text, one byte before its end */
    apr_size_t cuts[] = { 1, 20, SC_FRAME_HDR_LEN - 1, SC_FRAME_HDR_LEN,
                          SC_FRAME_HDR_LEN + 3, SC_FRAME_HDR_LEN + 10, n1 - 1 };
    sc_frame_hdr h[2];
    apr_size_t off[2], c;
    char how[64];

    note("two answers in one write");
    ok(pair(sv) == 0, "a socket pair");
    is(sc_ipc_set_wait(sv[0], 1000), 0, "its receive timeout set");
    ok(send_all(sv[1], msg, n1 + n2) == 0, "both written at once");
    memset(h, 0, sizeof(h));
    off[0] = off[1] = 99;
    rv = sc_ipc_read_answers(sv[0], sc_steady_us() + apr_time_from_sec(1), buf, 2, h, off,
                             &extra);
    check_two(msg, n1, n2, buf, h, off, rv, extra, "in one write");

    note("two answers, the first split across writes, the second with its tail");
    for (c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
        writer w;
        writer_init(&w, sv[1], msg, n1 + n2);
        writer_chunk(&w, cuts[c], 0);
        writer_chunk(&w, n1 + n2, 10);
        writer_start(&w);
        memset(h, 0, sizeof(h));
        memset(buf, 0, sizeof(buf));
        off[0] = off[1] = 99;
        extra = 7;
        rv = sc_ipc_read_answers(sv[0], sc_steady_us() + apr_time_from_sec(3), buf, 2, h, off,
                                 &extra);
        writer_join(&w);
        snprintf(how, sizeof(how), "cut after %zu bytes", cuts[c]);
        check_two(msg, n1, n2, buf, h, off, rv, extra, how);
    }

    note("two answers, the first in three pieces, the second in two");
    {
        writer w;
        writer_init(&w, sv[1], msg, n1 + n2);
        writer_chunk(&w, 5, 0);
        writer_chunk(&w, SC_FRAME_HDR_LEN + 2, 5);
        writer_chunk(&w, n1 + 7, 5);
        writer_chunk(&w, n1 + n2, 5);
        writer_start(&w);
        memset(h, 0, sizeof(h));
        memset(buf, 0, sizeof(buf));
        rv = sc_ipc_read_answers(sv[0], sc_steady_us() + apr_time_from_sec(3), buf, 2, h, off,
                                 &extra);
        writer_join(&w);
        check_two(msg, n1, n2, buf, h, off, rv, extra, "four writes");
    }
    close(sv[0]);
    close(sv[1]);
}

static void out_of_step(void)
{
    int sv[2], extra = 0, rv;
    unsigned char msg[3 * SC_IPC_ANSWER_MAX], buf[2 * SC_IPC_ANSWER_MAX];
    apr_size_t n1 = make_answer(msg, SC_MSG_ACK, 5, 50, TEXT_ACK);
    apr_size_t n2 = make_answer(msg + n1, SC_MSG_ACK, 6, 60, TEXT_ACK);
    apr_size_t n3 = make_answer(msg + n1 + n2, SC_MSG_ACK, 7, 70, TEXT_ACK);
    sc_frame_hdr h[2];
    apr_size_t off[2];

    note("an answer followed by more bytes: the stream out of step");
    ok(pair(sv) == 0, "a socket pair");
    is(sc_ipc_set_wait(sv[0], 1000), 0, "its receive timeout set");
    ok(send_all(sv[1], msg, n1 + 12) == 0, "an answer and a second's first 12 bytes");
    rv = sc_ipc_read_answer(sv[0], sc_steady_us() + apr_time_from_sec(3), buf, &h[0], &extra);
    is(rv, 1, "read: 1");
    is((long long)h[0].seq, 5, "the first answer's");
    is(extra, 1, "extra: 1");
    close(sv[0]);
    close(sv[1]);

    ok(pair(sv) == 0, "a socket pair");
    is(sc_ipc_set_wait(sv[0], 1000), 0, "its receive timeout set");
    extra = 0;
    ok(send_all(sv[1], msg, n1 + n2 + n3) == 0, "three answers written at once");
    rv = sc_ipc_read_answers(sv[0], sc_steady_us() + apr_time_from_sec(3), buf, 2, h, off,
                             &extra);
    is(rv, 1, "two read: 1");
    is((long long)h[0].seq, 5, "the first's");
    is((long long)h[1].seq, 6, "the second's");
    is((long long)off[1], n1, "the second's offset");
    is(extra, 1, "extra: 1 (a third came)");
    close(sv[0]);
    close(sv[1]);
}

/* ---- answers that do not come ---- */

static void no_answer(void)
{
    int sv[2], extra = 7, rv;
    unsigned char buf[SC_IPC_ANSWER_MAX], msg[SC_IPC_ANSWER_MAX];
    sc_frame_hdr h;
    struct timeval tv;
    socklen_t tl = sizeof(tv);
    apr_time_t dl;

    note("the receive timeout");
    ok(pair(sv) == 0, "a socket pair");
    is(sc_ipc_set_wait(sv[0], 1500), 0, "sc_ipc_set_wait 1500 ms: 0");
    memset(&tv, 0, sizeof(tv));
    is(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &tl), 0, "SO_RCVTIMEO read");
    /* the kernel keeps it in clock ticks: within one of 1.5 s */
    ok(tv.tv_sec == 1 && tv.tv_usec >= 490000 && tv.tv_usec <= 510000,
       "SO_RCVTIMEO is 1.5 s (%ld s %ld us)", (long)tv.tv_sec, (long)tv.tv_usec);
    is(sc_ipc_set_wait(sv[0], 50), 0, "sc_ipc_set_wait 50 ms: 0");
    memset(&tv, 0, sizeof(tv));
    tl = sizeof(tv);
    is(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &tl), 0, "SO_RCVTIMEO read");
    ok(tv.tv_sec == 0 && tv.tv_usec >= 40000 && tv.tv_usec <= 60000,
       "SO_RCVTIMEO is 50 ms (%ld s %ld us)", (long)tv.tv_sec, (long)tv.tv_usec);
    errno = 0;
    is(sc_ipc_set_wait(-1, 50), -1, "on no descriptor: -1");
    is(errno, EBADF, "errno EBADF");

    note("nothing written: the deadline");
    dl = sc_steady_us() + apr_time_from_msec(150);
    rv = sc_ipc_read_answer(sv[0], dl, buf, &h, &extra);
    is(rv, 0, "a wait of 50 ms, a deadline 150 ms away: 0");
    ok(past(dl), "given at the deadline: the receive timeouts before it did not end the read");

    note("a deadline past: nothing read");
    {
        apr_size_t n = make_answer(msg, SC_MSG_ACK, 5, 5, TEXT_ACK);
        ok(send_all(sv[1], msg, n) == 0, "a whole answer written");
        rv = sc_ipc_read_answer(sv[0], sc_steady_us() - apr_time_from_msec(1), buf, &h, &extra);
        is(rv, 0, "a deadline past: 0");
        rv = sc_ipc_read_answer(sv[0], sc_steady_us() + apr_time_from_sec(5), buf, &h, &extra);
        ok(rv == 1 && h.seq == 5, "the answer was left unread: the next read gets it");
    }

    note("half an answer written: the deadline");
    {
        apr_size_t n = make_answer(msg, SC_MSG_ACK, 3, 3, TEXT_ACK);
        ok(send_all(sv[1], msg, n / 2) == 0, "half an answer written");
        dl = sc_steady_us() + apr_time_from_msec(150);
        rv = sc_ipc_read_answer(sv[0], dl, buf, &h, &extra);
        is(rv, 0, "0");
        ok(past(dl), "given at the deadline");
    }
    close(sv[0]);
    close(sv[1]);

    /* a piece that comes before the deadline does not start another whole
     * receive timeout in recv: the rest of the answer, written after the
     * deadline but within that timeout, is not read */
    note("pieces of an answer at 0 and 500 ms, the rest at 1200 ms; a deadline of 600 ms, "
         "a receive timeout of 1500 ms");
    {
        apr_size_t n = make_answer(msg, SC_MSG_ACK, 4, 4, TEXT_ACK), got;
        unsigned char rest[SC_IPC_ANSWER_MAX];
        writer w;
        ok(pair(sv) == 0, "a socket pair");
        is(sc_ipc_set_wait(sv[0], 1500), 0, "a receive timeout of 1500 ms");
        writer_init(&w, sv[1], msg, n);
        writer_chunk(&w, 10, 0);
        writer_chunk(&w, 30, 500);
        writer_chunk(&w, n, 700);
        writer_start(&w);
        rv = sc_ipc_read_answer(sv[0], sc_steady_us() + apr_time_from_msec(600), buf, &h,
                                &extra);
        writer_join(&w);
        is(rv, 0, "0: given at the deadline, not after a receive timeout from the last piece");
        got = (apr_size_t)recv(sv[0], rest, sizeof(rest), MSG_DONTWAIT);
        is((long long)got, (long long)(n - 30), "the rest, written after the deadline, is left "
           "unread");
        close(sv[0]);
        close(sv[1]);
    }
}

static void peer_gone(void)
{
    int sv[2], extra = 7, rv, k;
    unsigned char msg[SC_IPC_ANSWER_MAX], buf[SC_IPC_ANSWER_MAX];
    apr_size_t n = make_answer(msg, SC_MSG_ACK, 9, 9, TEXT_ACK);
    /* nothing, part of the header, the header, all but a byte */
    apr_size_t parts[] = { 0, 10, SC_FRAME_HDR_LEN, n - 1 };
    sc_frame_hdr h;
    apr_time_t dl;

    note("the peer closes before a whole answer: 0 at once");
    for (k = 0; k < (int)(sizeof(parts) / sizeof(parts[0])); k++) {
        ok(pair(sv) == 0, "a socket pair");
        is(sc_ipc_set_wait(sv[0], 5000), 0, "a receive timeout of 5 s");
        ok(parts[k] == 0 || send_all(sv[1], msg, parts[k]) == 0, "%zu bytes written",
           parts[k]);
        close(sv[1]);
        dl = sc_steady_us() + apr_time_from_sec(5);
        rv = sc_ipc_read_answer(sv[0], dl, buf, &h, &extra);
        is(rv, 0, "%zu bytes then closed: 0", parts[k]);
        ok(!past(dl), "%zu bytes then closed: given before the deadline (the close ended it)",
           parts[k]);
        close(sv[0]);
    }

    note("the peer closes while the reader waits");
    {
        writer w;
        ok(pair(sv) == 0, "a socket pair");
        is(sc_ipc_set_wait(sv[0], 5000), 0, "a receive timeout of 5 s");
        writer_init(&w, sv[1], msg, n);
        writer_chunk(&w, 20, 0);
        w.shut = 1;
        writer_start(&w);
        dl = sc_steady_us() + apr_time_from_sec(5);
        rv = sc_ipc_read_answer(sv[0], dl, buf, &h, &extra);
        writer_join(&w);
        is(rv, 0, "20 bytes then closed: 0");
        ok(!past(dl), "given before the deadline (the close ended it)");
        close(sv[0]);
    }
}

/* a header that is not an answer's (its length given, byte set to value
 * unless byte is -1), then a payload of the length it says and, for count 2,
 * a good answer: read as count answers, 0 at once (were the header taken as
 * an answer's, the read would give 1) */
static void bad_one(const char *what, int count, apr_uint32_t length, int byte, int value)
{
    int sv[2], extra = 7, rv;
    unsigned char msg[3 * SC_IPC_ANSWER_MAX + 64], buf[2 * SC_IPC_ANSWER_MAX];
    sc_frame_hdr h[2], bad;
    apr_size_t off[2], n;
    apr_time_t dl;

    memset(&bad, 0, sizeof(bad));
    bad.type = SC_MSG_ACK;
    bad.seq = 13;
    bad.length = length;
    sc_frame_hdr_encode(&bad, msg);
    if (byte >= 0) {
        msg[byte] = (unsigned char)value;
    }
    memset(msg + SC_FRAME_HDR_LEN, 'x', length);
    n = SC_FRAME_HDR_LEN + length;
    if (count == 2) {
        n += make_answer(msg + n, SC_MSG_ACK, 14, 14, TEXT_ACK);
    }
    ok(pair(sv) == 0, "a socket pair");
    is(sc_ipc_set_wait(sv[0], 3000), 0, "a receive timeout of 3 s");
    ok(send_all(sv[1], msg, n) == 0, "%s: written", what);
    dl = sc_steady_us() + apr_time_from_sec(3);
    rv = sc_ipc_read_answers(sv[0], dl, buf, count, h, off, &extra);
    is(rv, 0, "%s: 0", what);
    ok(!past(dl), "%s: given before the deadline (the header refused)", what);
    close(sv[0]);
    close(sv[1]);
}

static void not_an_answer(void)
{
    note("headers that are not an answer's");
    bad_one("a payload of 7 bytes (no room for the time)", 1, 7, -1, 0);
    bad_one("an empty payload", 1, 0, -1, 0);
    bad_one("a payload one longer than the longest answer's", 2, 8 + SC_IPC_TEXT_MAX + 1, -1,
            0);
    bad_one("a bad magic", 1, 8 + 3, 0, 'X');
    bad_one("another protocol version", 1, 8 + 3, 4, SC_PROTO_VERSION + 1);
    bad_one("an unknown message type", 1, 8 + 3, 5, SC_MSG_MAX + 1);
    bad_one("unknown flags", 1, 8 + 3, 7, 0x80);
    bad_one("reserved bytes not zero", 1, 8 + 3, 39, 1);
    bad_one("the first of two with a payload of 4 bytes", 2, 4, -1, 0);
}

static void bad_count(void)
{
    int sv[2], extra = 7, rv, k;
    unsigned char msg[3 * SC_IPC_ANSWER_MAX], buf[3 * SC_IPC_ANSWER_MAX];
    apr_size_t n = 0, off[3];
    sc_frame_hdr h[3];
    apr_time_t t0;

    note("counts out of range");
    for (k = 0; k < 3; k++) {
        n += make_answer(msg + n, SC_MSG_ACK, (apr_uint64_t)(20 + k), 0, TEXT_ACK);
    }
    ok(pair(sv) == 0, "a socket pair");
    is(sc_ipc_set_wait(sv[0], 500), 0, "its receive timeout set");
    ok(send_all(sv[1], msg, n) == 0, "three answers written");
    t0 = sc_steady_us();
    rv = sc_ipc_read_answers(sv[0], t0 + apr_time_from_sec(1), buf, 0, h, off, &extra);
    is(rv, 0, "count 0: 0");
    rv = sc_ipc_read_answers(sv[0], t0 + apr_time_from_sec(1), buf, 3, h, off, &extra);
    is(rv, 0, "count 3: 0");
    rv = sc_ipc_read_answers(sv[0], t0 + apr_time_from_sec(1), buf, -1, h, off, &extra);
    is(rv, 0, "count -1: 0");
    rv = sc_ipc_read_answers(sv[0], sc_steady_us() + apr_time_from_sec(1), buf, 2, h, off,
                             &extra);
    is(rv, 1, "none of them read a byte: count 2 then reads 1");
    is((long long)h[0].seq, 20, "the first answer");
    is((long long)h[1].seq, 21, "the second");
    is(extra, 1, "and the third beyond them");
    close(sv[0]);
    close(sv[1]);
}

/* ---- a signal during the wait ---- */

static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add(&alarms, 1);
}

/* the answer written in pieces: first (0: none) at once, the rest 40 ms
 * after the SIGALRM that comes at 20 ms, while the reader waits in recv
 * (first 0) or in poll (after a partial read) */
static void signalled(apr_size_t first, const char *where)
{
    int sv[2], extra = 7, rv;
    unsigned char msg[SC_IPC_ANSWER_MAX], buf[SC_IPC_ANSWER_MAX];
    apr_size_t n = make_answer(msg, SC_MSG_ACK, 31, 31, TEXT_ACK);
    struct itimerval it;
    sc_frame_hdr h;
    writer w;
    apr_time_t dl;

    ok(pair(sv) == 0, "a socket pair");
    is(sc_ipc_set_wait(sv[0], 2000), 0, "a receive timeout of 2 s");
    writer_init(&w, sv[1], msg, n);
    writer_chunk(&w, first, 0);
    writer_chunk(&w, n, 40);
    w.after_alarm = 1;
    atomic_store(&alarms, 0);
    memset(&it, 0, sizeof(it));
    it.it_value.tv_usec = 20000;
    dl = sc_steady_us() + apr_time_from_sec(3);
    writer_start(&w);
    ok(setitimer(ITIMER_REAL, &it, NULL) == 0, "%s: SIGALRM in 20 ms", where);
    rv = sc_ipc_read_answer(sv[0], dl, buf, &h, &extra);
    writer_join(&w);
    is(atomic_load(&alarms), 1, "%s: the signal came", where);
    is(rv, 1, "%s: the answer read all the same: 1", where);
    is((long long)h.seq, 31, "%s: its sequence number", where);
    ok(memcmp(buf, msg, n) == 0, "%s: intact", where);
    is(extra, 0, "%s: nothing beyond it", where);
    close(sv[0]);
    close(sv[1]);
}

static void interrupted(void)
{
    struct sigaction sa, old;

    note("a signal interrupts the wait (no SA_RESTART)");
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ok(sigaction(SIGALRM, &sa, &old) == 0, "a SIGALRM handler without SA_RESTART");
    signalled(0, "waiting in recv");
    signalled(15, "waiting in poll after 15 bytes");
    sigaction(SIGALRM, &old, NULL);
}

int main(void)
{
    apr_initialize();
    whole();
    byte_by_byte();
    two_answers();
    out_of_step();
    no_answer();
    peer_gone();
    not_an_answer();
    bad_count();
    interrupted();
    return unit_done("test_ipc");
}
