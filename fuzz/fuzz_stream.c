/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fuzz_stream -- frame reassembly: the engine's reading of a connection's
 * byte stream (sc_transport.c: conn_read, which fills the receive buffer
 * and takes every complete frame out of it, and on_frame / open_frame, which
 * handle each), with the stream delivered in chunks of sizes taken from the
 * input.
 *
 * Input: [mode:1][k:1][k chunk sizes, 1 byte each][stream].  mode bits 0-1:
 * the connection (0 an inbound one from a member that said HELLO, 1 an
 * inbound one before HELLO, 2 an outbound one, 3 a child's local
 * connection); bit 2: EncryptInterceptor on (the keys of fuzz_common.h);
 * bits 3-5: the Receiver's maxMessageSize (16 MiB, the default; 65536, 4096,
 * 2000, 1024: the smallest it accepts).
 * Chunk sizes are byte + 1, used in turn; k = 0 sends one byte at a time.
 *
 * The real code runs: sc_transport.c, sc_proto.c, sc_crypto.c.  The stream
 * goes through a socketpair: the target writes a chunk into one end, then
 * calls sc_tr_handle for the other end (POLLIN), as the engine's loop does
 * after poll, and takes the connection events it queued; the connection is
 * an sc_conn linked into the engine's list (conn_new is static).  The layers
 * above are the target's handler table (below): each handler records what it
 * is given; a heartbeat frame is taken as from one member (the connection is
 * then that member's) and a HELLO or PING answered with a fixed PONG.  Also
 * replaced: httpd's logging, ap_runtime_dir_relative and ap_unixd_config
 * (fuzz/httpd_stubs.c; only the listeners use the last two).
 *
 * Properties:
 *  - the same events (frames handed on, with their bytes), the same outcome
 *    (connection open or closed; bad frames, authentication failures and
 *    replays counted), the same bytes left in the receive buffer and the
 *    same answers written back (their lengths, when sealed with a random
 *    nonce) whether the stream arrives in one piece or in the input's
 *    chunks;
 *  - on a local connection (every frame goes to the ipc handler), the
 *    frames are those a plain reading of the stream finds: header after
 *    header (sc_frame_hdr_decode), each payload its length, the tag
 *    skipped, the connection closed at the first bad header (or a partial
 *    one not starting with the magic), the rest kept;
 *  - no read or write outside a buffer, no leak (the sanitizers).
 */
#include "fuzz_common.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/socket.h>

#include "apr_strings.h"
#include "sc_core.h"
#include "sc_transport.h"
#include "sc_crypto.h"
#include "unixd.h"

/* ---- events ------------------------------------------------------------------ */

typedef struct {
    unsigned char *buf;
    size_t len, cap;
} evbuf;

static evbuf *events;           /* the run's */
static int trace;               /* FUZZ_TRACE=1: each run's events */
static sc_peer member;          /* the member every heartbeat names */

static void ev_put(const void *data, size_t len)
{
    if (events->len + len > events->cap) {
        size_t ncap = events->cap ? events->cap * 2 : 1024;
        while (ncap < events->len + len) {
            ncap *= 2;
        }
        events->buf = realloc(events->buf, ncap);
        if (!events->buf) {
            abort();
        }
        events->cap = ncap;
    }
    memcpy(events->buf + events->len, data, len);
    events->len += len;
}

static void ev_u64(apr_uint64_t v)
{
    ev_put(&v, sizeof(v));
}

static void ev_rec(char tag, const void *data, size_t len)
{
    if (trace) {
        fprintf(stderr, "%c%zu ", tag, len);
    }
    ev_put(&tag, 1);
    ev_u64(len);
    ev_put(data, len);
}

static void ev_hdr(const sc_frame_hdr *h)
{
    ev_put(&h->type, 1);
    ev_put(&h->flags, sizeof(h->flags));
    ev_put(h->sender, SC_ID_LEN);
    ev_u64(h->seq);
    ev_u64(h->length);
    ev_u64(h->tag_length);
}

/* ---- the layers above: the handler table ------------------------------------- */

/* A child's request. */
static void fz_ipc(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                   const unsigned char *payload)
{
    FUZZ_CHECK(c->kind == SC_CONN_IPC);
    ev_hdr(h);
    ev_rec('I', payload, h->length);
}

/* This member's heartbeat: a fixed one. */
static apr_size_t fz_heartbeat(sc_engine *e, int state, unsigned char *buf, apr_size_t cap)
{
    sc_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    hb.state = SC_MS_READY;
    memcpy(hb.id, e->id, SC_ID_LEN);
    hb.incarnation = 7;
    hb.port = 4000;
    hb.family = 4;
    hb.addr[0] = 127;
    hb.addr[3] = 1;
    apr_cpystrn(hb.route, "self", sizeof(hb.route));
    return sc_heartbeat_encode(&hb, buf, cap);
}

/* A member's frame, of any type: recorded.  A heartbeat is taken as
 * membership takes one it accepts: the connection is then the member's (its
 * size limit is maxMessageSize from now on), and a HELLO or PING is answered
 * with a PONG (the transport's write path, sealed when the connection is). */
static void fz_frame(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                     const unsigned char *payload)
{
    FUZZ_CHECK(c->kind != SC_CONN_IPC);
    ev_hdr(h);
    ev_rec('F', payload, h->length);
    if (h->type == SC_MSG_HELLO || h->type == SC_MSG_PING || h->type == SC_MSG_PONG) {
        c->hello_seen = 1;
        if (c->kind == SC_CONN_IN && !c->peer) {
            member.id_known = 1;
            memcpy(member.id, h->sender, SC_ID_LEN);
            c->peer = &member;
        }
        if (h->type != SC_MSG_PONG) {
            unsigned char buf[SC_HB_MAX_LEN];
            apr_size_t n = fz_heartbeat(e, e->state, buf, sizeof(buf));
            sc_tr_send_frame(e, c, SC_MSG_PONG, 0, ++e->seq, buf, n);
        }
    }
}

static sc_peer *fz_heard(sc_engine *e, const sc_heartbeat *hb, sc_conn *via,
                         const char *from)
{
    fprintf(stderr, "fuzz_stream: no multicast here\n");
    abort();
}

static void fz_forget(sc_engine *e, sc_conn *c)
{
}

static const sc_tr_handlers fz_handlers = {
    .frame = {
        [SC_MSG_HELLO] = fz_frame, [SC_MSG_GOODBYE] = fz_frame, [SC_MSG_DATA] = fz_frame,
        [SC_MSG_ACK] = fz_frame, [SC_MSG_FAIL_ACK] = fz_frame, [SC_MSG_PING] = fz_frame,
        [SC_MSG_PONG] = fz_frame,
    },
    .ipc = fz_ipc,
    .heartbeat = fz_heartbeat,
    .heard = fz_heard,
    .forget = fz_forget,
};

/* The connection events the transport queued: recorded. */
static void take_events(sc_engine *e)
{
    sc_tr_event tev;
    while (sc_tr_next_event(e, &tev)) {
        char tag = tev.kind == SC_EV_LOST ? 'B' : tev.kind == SC_EV_REFUSED ? 'R' : 'U';
        FUZZ_CHECK(tev.kind != SC_EV_AUTH_REFUSED || tev.peer == &member);
        ev_rec(tag, tev.why, strlen(tev.why));
    }
}


/* ---- one run ------------------------------------------------------------------ */

static const apr_uint32_t max_messages[] = { 16777216, 65536, 4096, 2000, 1024 };
static sc_crypto *fz_crypto;

typedef struct {
    evbuf ev;
    int closed;
    apr_uint64_t bad_frames, auth_failures, replays, msgs_in, bytes_in;
    unsigned char *left;        /* what stayed in the receive buffer */
    size_t left_len;
    unsigned char *back;        /* what the engine wrote on the connection */
    size_t back_len;
} outcome;

static int same_bytes(const unsigned char *a, size_t alen, const unsigned char *b,
                      size_t blen)
{
    return alen == blen && (!alen || !memcmp(a, b, alen));
}

static int outcomes_equal(const outcome *a, const outcome *b, int sealed)
{
    return same_bytes(a->ev.buf, a->ev.len, b->ev.buf, b->ev.len)
           && a->closed == b->closed && a->bad_frames == b->bad_frames
           && a->auth_failures == b->auth_failures && a->replays == b->replays
           && a->msgs_in == b->msgs_in && a->bytes_in == b->bytes_in
           && same_bytes(a->left, a->left_len, b->left, b->left_len)
           && (sealed ? a->back_len == b->back_len
                      : same_bytes(a->back, a->back_len, b->back, b->back_len));
}

static void drain(int fd, outcome *o)
{
    for (;;) {
        unsigned char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0) {
            return;
        }
        o->back = realloc(o->back, o->back_len + (size_t)n);
        if (!o->back) {
            abort();
        }
        memcpy(o->back + o->back_len, buf, (size_t)n);
        o->back_len += (size_t)n;
    }
}

/* Delivers the stream in chunks (sizes[] in turn; nsizes 0: all at once)
 * and fills o. */
static void run(apr_pool_t *p, int mode, const unsigned char *stream, size_t len,
                const unsigned char *sizes, size_t nsizes, outcome *o)
{
    static sc_engine e;
    static sc_shm_t shm;
    static sc_store store;      /* only tested for NULL: DATA goes to the dispatcher */
    static sc_settings set;
    sc_conn *c;
    int sv[2], kind = mode & 3;
    size_t off = 0, k = 0;
    int i;

    memset(o, 0, sizeof(*o));
    events = &o->ev;
    memset(&e, 0, sizeof(e));
    sc_engine_clock_set(&e);             /* as the engine's start does */
    memset(&shm, 0, sizeof(shm));
    memset(&member, 0, sizeof(member));
    apr_cpystrn(member.route, "nodeA", sizeof(member.route));
    member.view = SC_VIEW_ALIVE;
    e.shm = &shm;
    e.store = &store;
    e.listen_fd = e.mcast_fd = e.ipc_fd = e.wake_fd = -1;
    e.handlers = &fz_handlers;
    memset(&set, 0, sizeof(set));
    set.max_message_size = max_messages[((mode >> 3) & 7) % 5];
    e.set = &set;
    e.crypto = (mode & 4) && kind != 3 ? fz_crypto : NULL;
    for (i = 0; i < SC_ID_LEN; i++) {
        e.id[i] = FUZZ_SELF_ID_BYTE(i);
    }
    apr_pool_create(&e.tmp, p);
    apr_pool_create(&e.frame_tmp, p);

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        perror("fuzz_stream: socketpair");
        abort();
    }
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL, 0) | O_NONBLOCK);
    c = calloc(1, sizeof(*c));
    if (!c) {
        abort();
    }
    c->fd = sv[1];
    c->kind = kind == 3 ? SC_CONN_IPC : kind == 2 ? SC_CONN_OUT : SC_CONN_IN;
    c->state = SC_CS_OPEN;
    c->opened = c->last_rx = apr_time_now();
    apr_cpystrn(c->remote, kind == 3 ? "local" : "192.0.2.7:4000", sizeof(c->remote));
    if (kind == 0 || kind == 2) {
        c->peer = &member;          /* said HELLO already / ours */
        if (kind == 2) {
            member.out = c;
        }
    }
#ifdef SC_DEST_LEN
    if (kind == 2) {
        /* EncryptInterceptor seals what goes out on our connection for the
         * member (sc_tr_connect): the seeds' sender id, i * 17 + 1 */
        unsigned char id[SC_ID_LEN];
        for (i = 0; i < SC_ID_LEN; i++) {
            id[i] = (unsigned char)(i * 17 + 1);
        }
        sc_crypto_dest_id(c->dest, id);
        c->dest_set = 1;
    }
#endif
    e.conns = c;

    while (off < len && c->state == SC_CS_OPEN) {
        size_t n = nsizes ? (size_t)sizes[k++ % nsizes] + 1 : len;
        struct pollfd pfd;
        if (n > len - off) {
            n = len - off;
        }
        if (send(sv[0], stream + off, n, 0) != (ssize_t)n) {
            perror("fuzz_stream: send");
            abort();
        }
        off += n;
        pfd.fd = sv[1];
        pfd.events = POLLIN;
        pfd.revents = POLLIN;
        sc_tr_handle(&e, &pfd, 1);
        take_events(&e);
        apr_pool_clear(e.tmp);
        if (kind != 3) {
            drain(sv[0], o);
        }
    }
    drain(sv[0], o);
    o->closed = c->state == SC_CS_CLOSED;
    if (trace) {
        fprintf(stderr, "| %s, %zu chunk size(s): %s, %" APR_UINT64_T_FMT " bad, %"
                APR_UINT64_T_FMT " frames in, %zu left, %zu bytes written back\n",
                nsizes ? "chunked" : "whole", nsizes, o->closed ? "closed" : "open",
                shm.c.bad_frames + shm.c.auth_failures + shm.c.replays, shm.c.msgs_in,
                o->closed ? (size_t)0 : (size_t)c->rlen, o->back_len);
    }
    o->bad_frames = shm.c.bad_frames;
    o->auth_failures = shm.c.auth_failures;
    o->replays = shm.c.replays;
    o->msgs_in = shm.c.msgs_in;
    o->bytes_in = shm.c.bytes_in;
    if (!o->closed) {
        FUZZ_CHECK(c->rlen <= c->rcap);
        o->left_len = c->rlen;
        if (c->rlen) {
            o->left = malloc(c->rlen);
            if (!o->left) {
                abort();
            }
            memcpy(o->left, c->rbuf, c->rlen);
        }
        close(sv[1]);
    }
    else {
        FUZZ_CHECK(c->fd == -1);       /* sc_tr_close closed sv[1] */
    }
    close(sv[0]);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
    free(member.replay);
    member.replay = NULL;
    events = NULL;
}

static void outcome_free(outcome *o)
{
    free(o->ev.buf);
    free(o->left);
    free(o->back);
}

/* A local connection: the frames a plain reading of the stream finds. */
static void reference_ipc(apr_uint32_t max, const unsigned char *s, size_t len,
                          outcome *o)
{
    size_t pos = 0;
    memset(o, 0, sizeof(*o));
    events = &o->ev;
    for (;;) {
        sc_frame_hdr h;
        size_t rest = len - pos, total;
        if (rest < SC_FRAME_HDR_LEN) {
            if (rest >= 4 && memcmp(s + pos, SC_FRAME_MAGIC, 4) != 0) {
                o->closed = 1;
            }
            break;
        }
        if (sc_frame_hdr_decode(s + pos, rest, max, &h) != NULL) {
            o->closed = 1;
            break;
        }
        total = SC_FRAME_HDR_LEN + (size_t)h.length + h.tag_length;
        if (rest < total) {
            break;
        }
        ev_hdr(&h);
        ev_rec('I', s + pos + SC_FRAME_HDR_LEN, h.length);
        pos += total;
    }
    if (!o->closed) {
        o->left = (unsigned char *)s + pos;    /* not freed: points into the input */
        o->left_len = len - pos;
    }
    events = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *err = sc_crypto_create(fuzz_global_pool(), fuzz_key, sizeof(fuzz_key),
                                       fuzz_prev_key, sizeof(fuzz_prev_key), &fz_crypto);
    if (err) {
        fprintf(stderr, "fuzz_stream: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    outcome whole, chunked;
    const unsigned char *sizes, *stream;
    size_t nsizes, len;
    int mode, sealed;

    trace = getenv("FUZZ_TRACE") != NULL;
    if (size < 2) {
        return 0;
    }
    mode = data[0];
    nsizes = data[1];
    if (nsizes > size - 2) {
        nsizes = size - 2;
    }
    sizes = data + 2;
    stream = data + 2 + nsizes;
    len = size - 2 - nsizes;
    sealed = (mode & 4) && (mode & 3) != 3;

    run(p, mode, stream, len, NULL, 0, &whole);
    if (nsizes) {
        run(p, mode, stream, len, sizes, nsizes, &chunked);
    }
    else {
        static const unsigned char one = 0;      /* a byte at a time */
        run(p, mode, stream, len, &one, 1, &chunked);
    }
    if (!outcomes_equal(&whole, &chunked, sealed)) {
        fprintf(stderr, "fuzz_stream: the stream read whole and in chunks differ: "
                "closed %d/%d, bad frames %" APR_UINT64_T_FMT "/%" APR_UINT64_T_FMT
                ", events %zu/%zu bytes, left %zu/%zu, written back %zu/%zu bytes\n",
                whole.closed, chunked.closed, whole.bad_frames, chunked.bad_frames,
                whole.ev.len, chunked.ev.len, whole.left_len, chunked.left_len,
                whole.back_len, chunked.back_len);
        FUZZ_CHECK(outcomes_equal(&whole, &chunked, sealed));
    }
    if ((mode & 3) == 3) {
        outcome ref;
        reference_ipc(max_messages[((mode >> 3) & 7) % 5], stream, len, &ref);
        FUZZ_CHECK(ref.closed == whole.closed);
        FUZZ_CHECK(same_bytes(ref.ev.buf, ref.ev.len, whole.ev.buf, whole.ev.len));
        FUZZ_CHECK(same_bytes(ref.left, ref.left_len, whole.left, whole.left_len));
        free(ref.ev.buf);
    }
    outcome_free(&whole);
    outcome_free(&chunked);
    return 0;
}
