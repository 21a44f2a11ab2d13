/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * gen_seeds -- writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/)
 * with the module's own encoders, so every seed is a valid input the decoders
 * accept (but for a few fuzz_dispatch seeds made to be refused): frames (sc_frame_hdr_encode, sealed ones with sc_crypto_seal under
 * the test keys of fuzz_common.h), heartbeats (sc_heartbeat_encode, plain and
 * sealed), session records, deltas and every DeltaManager message (the
 * sc_msg_*_encode of sc_repl.c),
 * Cookie headers and URIs, and the <Cluster> blocks of the given fixture files
 * (t/fixtures/NAME.conf) with their leading '#' comment lines removed, since
 * sc_config_parse_text takes text that starts at "<Cluster", and ${SC_PORT}
 * (which the tests define) replaced by a port number.
 *
 *   gen_seeds CORPUS_DIR [FIXTURE.conf ...]     (make fuzz-seeds)
 *
 * A sealed seed carries a random nonce: an existing one that still opens to
 * the same message is kept, so regenerating does not rewrite it.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "apr_strings.h"
#include "sc_proto.h"
#include "sc_crypto.h"
#include "sc_repl.h"

static const char *outdir;
static apr_pool_t *pool;
static sc_crypto *cur, *prev_only, *both;
static int written, kept;

static void mkdir_p(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        perror(dir);
        exit(1);
    }
}

static const char *seed_path(const char *target, const char *name)
{
    const char *dir = apr_pstrcat(pool, outdir, "/", target, NULL);
    mkdir_p(dir);
    return apr_pstrcat(pool, dir, "/", name, NULL);
}

static void write_seed(const char *target, const char *name, const void *buf, apr_size_t len)
{
    const char *path = seed_path(target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    written++;
}

static unsigned char *read_file(const char *path, apr_size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = apr_palloc(pool, (apr_size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = (apr_size_t)n;
    return buf;
}

/* aad (the prefix written in the clear) + seal(plain): kept when the file
 * already holds the same message sealed under the test keys. */
static void write_sealed(const char *target, const char *name, sc_crypto *c,
                         const unsigned char *aad, apr_size_t aadlen,
                         const unsigned char *plain, apr_size_t plen)
{
    apr_size_t len = aadlen + plen + SC_SEAL_OVERHEAD, have = 0;
    unsigned char *buf = apr_palloc(pool, len), *old, *opened;
    int used_prev = 0;

    old = read_file(seed_path(target, name), &have);
    if (old && have == len && memcmp(old, aad, aadlen) == 0) {
        opened = apr_palloc(pool, plen + 1);
        if (sc_crypto_open(both, old, aadlen, old + aadlen, plen + SC_SEAL_OVERHEAD, opened,
                           &used_prev) == 0
            && used_prev == (c == prev_only) && memcmp(opened, plain, plen) == 0) {
            kept++;
            return;
        }
    }
    memcpy(buf, aad, aadlen);
    if (sc_crypto_seal(c, aad, aadlen, plain, plen, buf + aadlen) != 0) {
        fprintf(stderr, "gen_seeds: sc_crypto_seal failed\n");
        exit(1);
    }
    write_seed(target, name, buf, len);
}

/* ---- heartbeats ---------------------------------------------------------- */

static apr_size_t heartbeat(unsigned char *buf, int v6, const char *route,
                            const char *domain, int observer, int state)
{
    sc_heartbeat hb;
    apr_size_t n;
    int i;
    memset(&hb, 0, sizeof(hb));
    hb.state = (apr_byte_t)state;
    hb.flags = observer ? SC_HF_OBSERVER : 0;
    for (i = 0; i < SC_ID_LEN; i++) {
        hb.id[i] = (unsigned char)(i * 17 + (v6 ? 3 : 1));
    }
    hb.incarnation = 0x0123456789abcdefULL;
    hb.alive_ms = 123456;
    hb.seq = 42;
    hb.port = 4000;
    hb.family = v6 ? 6 : 4;
    if (v6) {
        hb.addr[15] = 1;                      /* ::1 */
    }
    else {
        hb.addr[0] = 127;
        hb.addr[3] = 1;                       /* 127.0.0.1 */
    }
    apr_cpystrn(hb.route, route, sizeof(hb.route));
    hb.domain_len = (apr_byte_t)strlen(domain);
    memcpy(hb.domain, domain, hb.domain_len);
    n = sc_heartbeat_encode(&hb, buf, SC_HB_MAX_LEN);
    if (!n) {
        fprintf(stderr, "gen_seeds: sc_heartbeat_encode refused\n");
        exit(1);
    }
    return n;
}

static void heartbeats(void)
{
    unsigned char hb[SC_HB_MAX_LEN], tagged[SC_HB_MAX_LEN];
    apr_size_t n;

    n = heartbeat(hb, 0, "node1", "", 0, SC_MS_READY);
    write_seed("fuzz_heartbeat", "hb-v4-ready", hb, n);
    write_sealed("fuzz_heartbeat", "hb-sealed", cur, (const unsigned char *)SC_HB_SEALED_MAGIC,
                 4, hb, n);
    write_sealed("fuzz_heartbeat", "hb-sealed-previous-key", prev_only,
                 (const unsigned char *)SC_HB_SEALED_MAGIC, 4, hb, n);
    n = heartbeat(hb, 1, "app-server_2", "cluster-domain-a", 0, SC_MS_STARTING);
    write_seed("fuzz_heartbeat", "hb-v6-domain", hb, n);
    n = heartbeat(hb, 0, "balancer", "d10", 1, SC_MS_DRAINING);
    write_seed("fuzz_heartbeat", "hb-observer", hb, n);
    /* the same with a (still unused) 8-byte authentication tag */
    memcpy(tagged, hb, n);
    sc_put16(tagged + n - 2, 8);
    memcpy(tagged + n, "TAGTAGTA", 8);
    write_seed("fuzz_heartbeat", "hb-tag-length", tagged, n + 8);
    n = heartbeat(hb, 0, "n", "", 0, SC_MS_RESTARTING);
    write_seed("fuzz_heartbeat", "hb-short-route", hb, n);
}

/* ---- frames -------------------------------------------------------------- */

static void frame(const char *name, int type, int flags, apr_uint64_t seq,
                  const unsigned char *payload, apr_size_t len)
{
    sc_frame_hdr h;
    unsigned char *buf = apr_palloc(pool, SC_FRAME_HDR_LEN + len + 1);
    int i;
    memset(&h, 0, sizeof(h));
    h.type = (apr_byte_t)type;
    h.flags = (apr_uint16_t)flags;
    for (i = 0; i < SC_ID_LEN; i++) {
        h.sender[i] = (unsigned char)(0xa0 + i);
    }
    h.seq = seq;
    h.length = (apr_uint32_t)len;
    sc_frame_hdr_encode(&h, buf);
    memcpy(buf + SC_FRAME_HDR_LEN, payload, len);
    write_seed("fuzz_frame", name, buf, SC_FRAME_HDR_LEN + len);
}

static void sealed_frame(const char *name, sc_crypto *c, int type, int flags,
                         apr_uint64_t seq, const unsigned char *payload, apr_size_t len)
{
    sc_frame_hdr h;
    unsigned char hdr[SC_FRAME_HDR_LEN];
    int i;
    memset(&h, 0, sizeof(h));
    h.type = (apr_byte_t)type;
    h.flags = (apr_uint16_t)(flags | SC_FF_TAGGED);
    for (i = 0; i < SC_ID_LEN; i++) {
        h.sender[i] = (unsigned char)(0xb0 + i);
    }
    h.seq = seq;
    h.length = (apr_uint32_t)len;
    h.tag_length = SC_SEAL_OVERHEAD;
    sc_frame_hdr_encode(&h, hdr);
    write_sealed("fuzz_frame", name, c, hdr, SC_FRAME_HDR_LEN, payload, len);
}

static void frames(const sc_buf *delta)
{
    unsigned char hb[SC_HB_MAX_LEN], ack[8 + 32];
    apr_size_t n = heartbeat(hb, 0, "node1", "", 0, SC_MS_READY);

    frame("frame-hello", SC_MSG_HELLO, 0, 1, hb, n);
    frame("frame-goodbye", SC_MSG_GOODBYE, 0, 7, (const unsigned char *)"", 0);
    sc_put64(ack, 5);
    frame("frame-ack", SC_MSG_ACK, 0, 8, ack, 8);
    memcpy(ack + 8, "session store full", 18);
    frame("frame-fail-ack", SC_MSG_FAIL_ACK, 0, 9, ack, 8 + 18);
    frame("frame-data-delta", SC_MSG_DATA, SC_FF_ACK | SC_FF_SYNC_ACK, 10, delta->buf,
          delta->len);
    sealed_frame("frame-sealed-ping", cur, SC_MSG_PING, 0, 11, hb, n);
    sealed_frame("frame-sealed-data", cur, SC_MSG_DATA, SC_FF_ACK, 12, delta->buf,
                 delta->len);
    sealed_frame("frame-sealed-previous-key", prev_only, SC_MSG_PONG, 0, 13, hb, n);
    sealed_frame("frame-sealed-empty", cur, SC_MSG_GOODBYE, 0, 14, (const unsigned char *)"", 0);
}

/* ---- byte streams (fuzz_stream) ------------------------------------------ */

/* fuzz_stream reads [mode:1][k:1][k chunk sizes][stream]; mode bits 0-1: the
 * connection (0 inbound after HELLO, 1 inbound before HELLO, 2 outbound,
 * 3 local), bit 2: sealed, bits 3-5: maxMessageSize (0: 16 MiB, 4: 1024). */
#define ST_IN 0
#define ST_STRANGER 1
#define ST_OUT 2
#define ST_LOCAL 3
#define ST_SEALED 4
#define ST_MAX(i) ((i) << 3)

/* Appends a frame (sealed with c when not NULL) to the stream.  A sealed
 * frame already at that place in the old seed file (same header, opens to
 * the same payload) is kept, so regenerating does not rewrite the file. */
static void stream_frame(sc_buf *s, const unsigned char *old, apr_size_t old_len,
                         sc_crypto *c, int type, int flags, apr_uint64_t seq,
                         const unsigned char *payload, apr_size_t len)
{
    sc_frame_hdr h;
    unsigned char hdr[SC_FRAME_HDR_LEN];
#ifdef SC_DEST_LEN
    unsigned char dest[SC_DEST_LEN];
#endif
    apr_size_t at = s->len, total;
    int i, prev = 0;
    memset(&h, 0, sizeof(h));
    h.type = (apr_byte_t)type;
    h.flags = (apr_uint16_t)(flags | (c ? SC_FF_TAGGED : 0));
    for (i = 0; i < SC_ID_LEN; i++) {
        h.sender[i] = (unsigned char)(i * 17 + 1);    /* heartbeat()'s IPv4 id */
    }
    h.seq = seq;
    h.length = (apr_uint32_t)len;
    h.tag_length = c ? SC_SEAL_OVERHEAD : 0;
    sc_frame_hdr_encode(&h, hdr);
    sc_buf_put(s, hdr, sizeof(hdr));
    if (!c) {
        sc_buf_put(s, payload, len);
        return;
    }
    total = SC_FRAME_HDR_LEN + len + SC_SEAL_OVERHEAD;
#ifdef SC_DEST_LEN
    /* frames are sealed for their destination: fuzz_stream's engine */
    {
        unsigned char self[SC_ID_LEN];
        for (i = 0; i < SC_ID_LEN; i++) {
            self[i] = FUZZ_SELF_ID_BYTE(i);
        }
        sc_crypto_dest_id(dest, self);
    }
#define SEAL(c, hdr, in, len, out) sc_crypto_seal_frame(c, hdr, sizeof(hdr), dest, in, len, out)
#define OPEN(c, hdr, in, len, out, prev) \
    sc_crypto_open_frame(c, hdr, sizeof(hdr), dest, in, len, out, prev)
#else
#define SEAL(c, hdr, in, len, out) sc_crypto_seal(c, hdr, sizeof(hdr), in, len, out)
#define OPEN(c, hdr, in, len, out, prev) sc_crypto_open(c, hdr, sizeof(hdr), in, len, out, prev)
#endif
    if (old && old_len >= at + total && !memcmp(old + at, hdr, sizeof(hdr))) {
        unsigned char *opened = apr_palloc(pool, len + 1);
        if (OPEN(both, hdr, old + at + SC_FRAME_HDR_LEN, len + SC_SEAL_OVERHEAD, opened,
                 &prev) == 0
            && prev == (c == prev_only) && !memcmp(opened, payload, len)) {
            sc_buf_put(s, old + at + SC_FRAME_HDR_LEN, len + SC_SEAL_OVERHEAD);
            return;
        }
    }
    {
        unsigned char *sealed = apr_palloc(pool, len + SC_SEAL_OVERHEAD);
        if (SEAL(c, hdr, payload, len, sealed) != 0) {
            fprintf(stderr, "gen_seeds: sc_crypto_seal failed\n");
            exit(1);
        }
        sc_buf_put(s, sealed, len + SC_SEAL_OVERHEAD);
    }
#undef SEAL
#undef OPEN
}

/* One stream seed: mode, chunk sizes, then the frames; sealed with c (NULL:
 * clear).  The frames: a HELLO (unless 'hello' is 0), DATA with and without
 * an ACK asked for, a probe's filler, PING, ACK, FAIL_ACK, GOODBYE. */
static void stream_seed(const char *name, int mode, const char *chunks, sc_crypto *c,
                        int hello, const sc_buf *delta)
{
    unsigned char hb[SC_HB_MAX_LEN], ack[8 + 32];
    apr_size_t n = heartbeat(hb, 0, "node1", "", 0, SC_MS_READY), old_len = 0;
    const unsigned char *old = read_file(seed_path("fuzz_stream", name), &old_len);
    apr_size_t k = strlen(chunks);
    apr_uint64_t seq = 1;
    sc_buf s;

    sc_buf_init(&s, pool, 0);
    sc_buf_u8(&s, (unsigned)mode);
    sc_buf_u8(&s, (unsigned)k);
    sc_buf_put(&s, chunks, k);
    if (hello) {
        stream_frame(&s, old, old_len, c, SC_MSG_HELLO, 0, seq++, hb, n);
    }
    stream_frame(&s, old, old_len, c, SC_MSG_DATA, SC_FF_ACK | SC_FF_SYNC_ACK, seq++,
                 delta->buf, delta->len);
    stream_frame(&s, old, old_len, c, SC_MSG_DATA, 0, seq++, delta->buf, delta->len);
    stream_frame(&s, old, old_len, c, SC_MSG_DATA, SC_FF_ACK, seq++,
                 (const unsigned char *)"\0filler", 7);
    stream_frame(&s, old, old_len, c, SC_MSG_PING, 0, seq++, hb, n);
    sc_put64(ack, 5);
    stream_frame(&s, old, old_len, c, SC_MSG_ACK, 0, seq++, ack, 8);
    memcpy(ack + 8, "session store full", 18);
    stream_frame(&s, old, old_len, c, SC_MSG_FAIL_ACK, 0, seq++, ack, 8 + 18);
    stream_frame(&s, old, old_len, c, SC_MSG_GOODBYE, 0, seq++, (const unsigned char *)"", 0);
    write_seed("fuzz_stream", name, s.buf, s.len);
}

static void streams(const sc_buf *delta)
{
    sc_buf s;
    unsigned char hb[SC_HB_MAX_LEN];
    apr_size_t n = heartbeat(hb, 0, "node1", "", 0, SC_MS_READY);
    int i;

    /* chunk sizes are byte + 1: "\x27" is 40 bytes, a header */
    stream_seed("stream-member", ST_IN, "\x27\x06\x00\xff", NULL, 1, delta);
    stream_seed("stream-stranger-hello", ST_STRANGER, "\x13\x50", NULL, 1, delta);
    stream_seed("stream-stranger-no-hello", ST_STRANGER, "", NULL, 0, delta);
    stream_seed("stream-outbound", ST_OUT | ST_MAX(2), "\x03\x7f", NULL, 1, delta);
    stream_seed("stream-outbound-sealed", ST_OUT | ST_SEALED, "\x27\x05", cur, 1, delta);
    stream_seed("stream-local", ST_LOCAL | ST_MAX(4), "\x01\x27\x40", NULL, 0, delta);
    stream_seed("stream-sealed", ST_IN | ST_SEALED, "\x27\x1b\x00\x80", cur, 1, delta);
    stream_seed("stream-sealed-previous-key", ST_STRANGER | ST_SEALED | ST_MAX(3), "\x63",
                prev_only, 1, delta);

    /* local frames around a bad one: closed at its header */
    sc_buf_init(&s, pool, 0);
    sc_buf_u8(&s, ST_LOCAL);
    sc_buf_u8(&s, 2);
    sc_buf_put(&s, "\x10\x2f", 2);
    for (i = 0; i < 3; i++) {
        stream_frame(&s, NULL, 0, NULL, SC_MSG_DATA, 0, (apr_uint64_t)i + 1, delta->buf,
                     delta->len);
    }
    sc_buf_put(&s, "SCF2", 4);
    stream_frame(&s, NULL, 0, NULL, SC_MSG_DATA, 0, 9, delta->buf, delta->len);
    write_seed("fuzz_stream", "stream-local-bad-magic", s.buf, s.len);

    /* a member's stream cut in the middle of a frame: the rest stays */
    sc_buf_init(&s, pool, 0);
    sc_buf_u8(&s, ST_IN | ST_MAX(4));
    sc_buf_u8(&s, 1);
    sc_buf_u8(&s, 0x0c);
    stream_frame(&s, NULL, 0, NULL, SC_MSG_PING, 0, 1, hb, n);
    stream_frame(&s, NULL, 0, NULL, SC_MSG_DATA, 0, 2, delta->buf, delta->len);
    s.len -= 10;
    write_seed("fuzz_stream", "stream-partial", s.buf, s.len);
}

/* ---- sessions ------------------------------------------------------------ */

static sc_sess_copy sess(const char *id, apr_uint64_t version, const char *data)
{
    sc_sess_copy s;
    memset(&s, 0, sizeof(s));
    apr_cpystrn(s.id, id, sizeof(s.id));
    s.version = version;
    s.created = (apr_time_t)1700000000000000LL;
    s.last_access = s.created + 5000000;
    s.max_inactive = 1800;
    s.data = (char *)data;
    s.data_len = (apr_uint32_t)strlen(data);
    return s;
}

static void full(sc_buf *b, const char *id, apr_uint64_t version, const char *data)
{
    sc_sess_copy s = sess(id, version, data);
    sc_repl_full_record(b, &s);
}

#define ID1 "0123456789ABCDEF0123456789ABCDEF.node1"
#define ID2 "fedcba9876543210fedcba9876543210.app-server_2"

/* Every message type, as fuzz_session reads it (sc_msg_decode). */
static void messages(void)
{
    static const char *const ids[] = { ID1, ID2 };
    static const char *const bases[] = { "0123456789ABCDEF0123456789ABCDEF", "fedcba98" };
    apr_time_t times[] = { 1700000100000000LL, 1700000200000000LL };
    sc_sess_copy two[2];
    sc_msg_remove one = { ID1 };
    sc_msg_touch touch = { 2, (const char **)ids, times };
    sc_msg_all_data all = { 2, two, 0, 0, 0 };
    sc_msg_all_data sized = { 2, two, 1, 1000000, 9000000 };
    sc_msg_complete complete = { 2 };
    sc_msg_rebind rebind = { ID1, "0123456789ABCDEF0123456789ABCDEF.nodeB" };
    sc_msg_dead dead = { 2, (const char **)bases };
    sc_buf b;

    two[0] = sess(ID1, 3, "count=1&user=alice");
    two[1] = sess(ID2, 1, "");
    sc_buf_init(&b, pool, 0);
    sc_msg_full_encode(&b, &two[0]);
    write_seed("fuzz_session", "msg-full", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_repl_delta(&b, ID1, 3, 4, (apr_time_t)1700000005000000LL, 1800, "a=1&b=2", "a=3&c=4");
    write_seed("fuzz_session", "msg-delta", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_msg_remove_encode(&b, &one);
    write_seed("fuzz_session", "msg-remove", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_msg_expire_encode(&b, &one);
    write_seed("fuzz_session", "msg-expire", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_msg_touch_encode(&b, &touch);
    write_seed("fuzz_session", "msg-touch", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_msg_get_all_encode(&b);
    write_seed("fuzz_session", "msg-get-all", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_msg_all_data_encode(&b, &all);
    write_seed("fuzz_session", "msg-all-data", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_msg_all_data_encode(&b, &sized);
    write_seed("fuzz_session", "msg-all-data-sized", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_msg_complete_encode(&b, &complete);
    write_seed("fuzz_session", "msg-complete", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_msg_get_session_encode(&b, &one);
    write_seed("fuzz_session", "msg-get-session", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_msg_rebind_encode(&b, &rebind);
    write_seed("fuzz_session", "msg-rebind", b.buf, b.len);
    sc_buf_init(&b, pool, 0);
    sc_msg_dead_encode(&b, &dead);
    write_seed("fuzz_session", "msg-dead", b.buf, b.len);

    /* stamps: a minority's FULL, a DELTA's whole stamp, a FULL of a member
     * without stamps (nothing after its record) */
    two[0].flags = SC_SF_MINOR | SC_SF_SETTLED;
    two[0].fork = 2;
    sc_buf_init(&b, pool, 0);
    sc_msg_full_encode(&b, &two[0]);
    write_seed("fuzz_session", "msg-full-minority", b.buf, b.len);
    write_seed("fuzz_session", "msg-full-unstamped", b.buf, b.len - SC_FULL_STAMP_LEN);
    {
        sc_stamp made = { 4, 0x0123456789abcdefULL, 2, SC_SF_MINOR };
        sc_buf_init(&b, pool, 0);
        sc_repl_delta(&b, ID1, 3, 4, (apr_time_t)1700000005000000LL, 1800, "a=1&b=2",
                      "a=3&c=4");
        sc_repl_delta_stamp(&b, &made, 0xfedcba9876543210ULL);
        write_seed("fuzz_session", "msg-delta-stamped", b.buf, b.len);
    }
    /* DIGEST: live entries (one a minority's), a tombstone */
    {
        sc_stamp a = { 7, 0x1111, 0, 0 }, c = { 9, 0x2222, 5, SC_SF_MINOR };
        sc_buf_init(&b, pool, 0);
        sc_msg_digest_open(&b);
        sc_msg_digest_add_live(&b, ID1, &a, 0);
        sc_msg_digest_add_live(&b, ID2, &c, 0);
        sc_msg_digest_add_dead(&b, bases[1], 1800, 0);
        sc_msg_digest_close(&b, SC_DIGEST_ANSWER | SC_DIGEST_LAST, 3);
        write_seed("fuzz_session", "msg-digest", b.buf, b.len);
    }
}

static void sessions(sc_buf *delta_out)
{
    sc_buf b;
    apr_size_t hdr;
    static const char *const texts[][2] = {
        { "count=1&user=alice", "count=2&user=alice&cart=3%20items" },
        { "a=1&b=2&c=3", "c=3&a=1" },
        { "", "k=v" },
        { "x=%26%3D&empty=&y=a=b", "x=%26%3D&y=a%3Db" },
    };
    int i;

    sc_buf_init(&b, pool, 0);
    full(&b, ID1, 3, "count=1&user=alice");
    write_seed("fuzz_session", "full-record", b.buf, b.len);
    full(&b, ID2, 1, "");
    write_seed("fuzz_session", "full-records-two", b.buf, b.len);

    for (i = 0; i < (int)(sizeof(texts) / sizeof(texts[0])); i++) {
        const char *t = apr_pstrcat(pool, texts[i][0], "\n", texts[i][1], NULL);
        write_seed("fuzz_session", apr_psprintf(pool, "data-old-new-%d", i + 1), t, strlen(t));
    }

    /* a DELTA's attribute part, as sc_repl_apply reads it: after the type,
     * the id and the four 8-byte numbers */
    sc_buf_init(delta_out, pool, 0);
    sc_repl_delta(delta_out, ID1, 3, 4, (apr_time_t)1700000005000000LL, 1800, texts[0][0],
                  texts[0][1]);
    hdr = 1 + 1 + strlen(ID1) + 4 * 8;
    /* the attribute part alone: the DELTA without its header and stamp */
    write_seed("fuzz_session", "delta-attributes", delta_out->buf + hdr,
               delta_out->len - hdr - SC_DELTA_STAMP_LEN);
    {
        sc_buf d;
        sc_buf_init(&d, pool, 0);
        sc_repl_delta(&d, ID1, 3, 4, 0, 0, texts[1][0], texts[1][1]);
        write_seed("fuzz_session", "delta-attributes-remove", d.buf + hdr,
                   d.len - hdr - SC_DELTA_STAMP_LEN);
    }
}

/* ---- DeltaManager messages (fuzz_dispatch) -------------------------------- */

/* fuzz_dispatch reads [ctl:1][len:2][message] records; ctl bit 0: the sender
 * waits for an ACK, bit 1: before HELLO (no peer), bit 2: from member B. */
#define DM_ACK 1
#define DM_NOHELLO 2
#define DM_FROM_B 4
#define ID3 "00000000000000000000000000000003.node1"
#define ID4 "00000000000000000000000000000004.nodeB"

static void dm_add(sc_buf *seq, int ctl, const sc_buf *msg)
{
    sc_buf_u8(seq, (unsigned)ctl);
    sc_buf_u16(seq, (unsigned)msg->len);
    sc_buf_put(seq, msg->buf, msg->len);
}

static void dm_full(sc_buf *seq, int ctl, const char *id, apr_uint64_t version,
                    const char *data)
{
    sc_sess_copy s = sess(id, version, data);
    sc_buf m;
    sc_buf_init(&m, pool, 0);
    sc_msg_full_encode(&m, &s);
    dm_add(seq, ctl, &m);
}

static void dm_delta(sc_buf *seq, int ctl, const char *id, apr_uint64_t base,
                     const char *old_data, const char *new_data)
{
    sc_buf m;
    sc_buf_init(&m, pool, 0);
    sc_repl_delta(&m, id, base, base + 1, (apr_time_t)1700000009000000LL, 1800, old_data,
                  new_data);
    dm_add(seq, ctl, &m);
}

/* REMOVE, EXPIRE, GET_SESSION of id; GET_ALL */
static void dm_id(sc_buf *seq, int ctl, int type, const char *id)
{
    sc_msg_remove one = { id };
    sc_buf m;
    sc_buf_init(&m, pool, 0);
    switch (type) {
    case SC_REPL_REMOVE:
        sc_msg_remove_encode(&m, &one);
        break;
    case SC_REPL_EXPIRE:
        sc_msg_expire_encode(&m, &one);
        break;
    case SC_REPL_GET_SESSION:
        sc_msg_get_session_encode(&m, &one);
        break;
    default:
        sc_msg_get_all_encode(&m);
        break;
    }
    dm_add(seq, ctl, &m);
}

static void dm_write(const char *name, sc_buf *seq)
{
    write_seed("fuzz_dispatch", name, seq->buf, seq->len);
    sc_buf_init(seq, pool, 0);
}

static void dispatch(void)
{
    sc_buf s, m;
    static const char *const d1 = "count=1&user=alice", *const d2 = "count=2&user=alice",
                             *const d3 = "count=3&user=alice&cart=3%20items";

    sc_buf_init(&s, pool, 0);
    dm_full(&s, 0, ID1, 3, d1);
    dm_write("dm-full", &s);

    dm_full(&s, DM_ACK, ID1, 3, d1);
    dm_full(&s, DM_ACK, ID1, 2, "older=1");           /* stale: kept */
    dm_full(&s, DM_ACK, ID1, 7, d3);                  /* newer: replaces */
    dm_write("dm-full-versions", &s);

    dm_full(&s, 0, ID1, 3, d1);
    dm_delta(&s, DM_ACK, ID1, 3, d1, d2);
    dm_delta(&s, DM_ACK, ID1, 4, d2, "user=alice");
    dm_write("dm-delta", &s);

    /* a delta ahead of its base is held, then applied when the base comes */
    dm_delta(&s, DM_ACK, ID1, 4, d2, d3);
    dm_full(&s, 0, ID1, 3, d1);
    dm_delta(&s, DM_ACK, ID1, 3, d1, d2);
    dm_write("dm-delta-held", &s);

    /* ... or answered with FAIL_ACK when it never comes (the tick) */
    dm_full(&s, 0, ID2, 1, "a=1");
    dm_delta(&s, DM_ACK, ID2, 5, "a=1", "a=2");
    dm_write("dm-delta-held-timeout", &s);

    dm_full(&s, 0, ID1, 3, d1);
    dm_full(&s, 0, ID2, 1, "");
    dm_id(&s, 0, SC_REPL_REMOVE, ID1);
    dm_id(&s, 0, SC_REPL_EXPIRE, ID2);
    dm_write("dm-remove-expire", &s);

    dm_full(&s, 0, ID1, 3, d1);
    dm_full(&s, 0, ID2, 1, "b=2");
    sc_buf_init(&m, pool, 0);
    sc_msg_list_open(&m, SC_REPL_TOUCH);
    sc_msg_touch_add(&m, ID1, 1700000100000000LL);
    sc_msg_touch_add(&m, ID2, 1600000000000000LL);    /* older: no change */
    sc_msg_touch_add(&m, ID3, 1700000100000000LL);    /* not held: ignored */
    sc_msg_list_close(&m, 3);
    dm_add(&s, 0, &m);
    dm_write("dm-touch", &s);

    /* a joining member asks for everything: sent in blocks on the tick */
    dm_full(&s, 0, ID1, 3, d1);
    dm_full(&s, 0, ID2, 1, "b=2");
    dm_full(&s, 0, ID3, 9, d3);
    dm_full(&s, 0, ID4, 1, "");
    dm_id(&s, DM_FROM_B, SC_REPL_GET_ALL, NULL);
    dm_write("dm-get-all", &s);

    /* the state transfer we asked member A for */
    sc_buf_init(&m, pool, 0);
    sc_msg_list_open(&m, SC_REPL_ALL_DATA);
    full(&m, ID1, 3, d1);
    full(&m, ID2, 1, "");
    full(&m, ID3, 2, "x=%26%3D");
    sc_msg_list_close(&m, 3);
    dm_add(&s, 0, &m);
    sc_buf_init(&m, pool, 0);
    sc_msg_complete_encode(&m, &(sc_msg_complete){ 3 });
    dm_add(&s, 0, &m);
    dm_write("dm-all-data-complete", &s);

    dm_full(&s, 0, ID1, 3, d1);
    dm_id(&s, 0, SC_REPL_GET_SESSION, ID1);
    dm_id(&s, 0, SC_REPL_GET_SESSION, ID2);
    dm_write("dm-get-session", &s);

    dm_full(&s, 0, ID1, 3, d1);
    sc_buf_init(&m, pool, 0);
    sc_msg_rebind_encode(&m, &(sc_msg_rebind){ ID1, "0123456789ABCDEF0123456789ABCDEF.nodeB" });
    dm_add(&s, DM_FROM_B, &m);
    dm_write("dm-rebind", &s);

    /* removed sessions stay dead (tombstones): a copy after the removal, a
     * state transfer's DEAD (type 11: [n:4] ([len:1][id base])*, a filler
     * for a module without tombstones), then a transfer that sends them */
    dm_full(&s, 0, ID1, 3, d1);
    dm_id(&s, 0, SC_REPL_REMOVE, ID1);
    dm_full(&s, DM_ACK, ID1, 4, d2);
    sc_buf_init(&m, pool, 0);
    sc_msg_list_open(&m, SC_REPL_DEAD);
    sc_msg_dead_add(&m, apr_pstrndup(pool, ID2, 32), 0);
    sc_msg_list_close(&m, 1);
    dm_add(&s, 0, &m);
    dm_full(&s, DM_ACK, ID2, 1, "b=2");
    dm_full(&s, 0, ID3, 1, "c=3");
    dm_id(&s, DM_FROM_B, SC_REPL_GET_ALL, NULL);
    dm_write("dm-dead", &s);

    /* malformed, refused whole with nothing applied: a TOUCH, an ALL_DATA
     * and a DEAD whose second entry is bad (the first is good), a COMPLETE
     * without its total */
    dm_full(&s, 0, ID1, 3, d1);
    sc_buf_init(&m, pool, 0);
    sc_msg_list_open(&m, SC_REPL_TOUCH);
    sc_msg_touch_add(&m, ID1, 1700000100000000LL);
    sc_buf_put(&m, "\x03" "bad", 4);
    sc_buf_u64(&m, 1700000100000000ULL);
    sc_msg_list_close(&m, 2);
    dm_add(&s, 0, &m);
    sc_buf_init(&m, pool, 0);
    sc_msg_list_open(&m, SC_REPL_ALL_DATA);
    full(&m, ID2, 1, "b=2");
    sc_buf_put(&m, "\x03" "bad", 4);
    sc_msg_list_close(&m, 2);
    dm_add(&s, 0, &m);
    sc_buf_init(&m, pool, 0);
    sc_msg_list_open(&m, SC_REPL_DEAD);
    sc_msg_dead_add(&m, apr_pstrndup(pool, ID1, 32), 0);
    sc_buf_put(&m, "\x02" "zz", 3);
    sc_msg_list_close(&m, 2);
    dm_add(&s, 0, &m);
    sc_buf_init(&m, pool, 0);
    sc_buf_u8(&m, SC_REPL_COMPLETE);
    dm_add(&s, 0, &m);
    dm_write("dm-malformed-whole", &s);

    /* a probe's filler and a type nobody knows (both ignored), then a
     * session message before HELLO */
    sc_buf_init(&m, pool, 0);
    sc_buf_put(&m, "xxxxxxxx", 8);
    dm_add(&s, DM_ACK, &m);
    sc_buf_init(&m, pool, 0);
    sc_buf_u8(&m, 0);
    sc_buf_put(&m, "filler", 6);
    dm_add(&s, DM_ACK, &m);
    dm_full(&s, DM_NOHELLO, ID1, 3, d1);
    dm_write("dm-filler-nohello", &s);

    /* versions and conflicts (sc_store.h): once ready (COMPLETE from A), a
     * copy of the majority's; a minority's branched before it (refused, sent
     * back); one branched from it (taken); a delta with its stamp on it; a
     * delta whose base has other data here (refused); the same number with
     * other data (the rule decides) */
    sc_buf_init(&m, pool, 0);
    sc_msg_complete_encode(&m, &(sc_msg_complete){ 0 });
    dm_add(&s, 0, &m);
    dm_full(&s, DM_ACK, ID1, 3, d1);
    {
        sc_sess_copy x = sess(ID1, 5, "count=5&user=alice");
        sc_stamp made;
        x.flags = SC_SF_MINOR;
        x.fork = 2;
        sc_buf_init(&m, pool, 0);
        sc_msg_full_encode(&m, &x);
        dm_add(&s, DM_ACK | DM_FROM_B, &m);
        x = sess(ID1, 4, d2);
        x.flags = SC_SF_MINOR;
        x.fork = 3;
        sc_buf_init(&m, pool, 0);
        sc_msg_full_encode(&m, &x);
        dm_add(&s, DM_ACK | DM_FROM_B, &m);
        made.version = 5;
        made.hash = sc_store_hash(d3, (apr_uint32_t)strlen(d3));
        made.fork = 3;
        made.flags = SC_SF_MINOR;
        sc_buf_init(&m, pool, 0);
        sc_repl_delta(&m, ID1, 4, 5, (apr_time_t)1700000009000000LL, 1800, d2, d3);
        sc_repl_delta_stamp(&m, &made, sc_store_hash(d2, (apr_uint32_t)strlen(d2)));
        dm_add(&s, DM_ACK | DM_FROM_B, &m);
        made.version = 6;
        made.hash = 77;
        made.flags = 0;
        made.fork = 0;
        sc_buf_init(&m, pool, 0);
        sc_repl_delta(&m, ID1, 5, 6, (apr_time_t)1700000009000000LL, 1800, d1, d2);
        sc_repl_delta_stamp(&m, &made, 12345);
        dm_add(&s, DM_ACK, &m);
        made.version = 5;
        sc_buf_init(&m, pool, 0);
        sc_repl_delta(&m, ID1, 4, 5, (apr_time_t)1700000009000000LL, 1800, d1, d2);
        sc_repl_delta_stamp(&m, &made, sc_store_hash(d2, (apr_uint32_t)strlen(d2)));
        dm_add(&s, DM_ACK, &m);
    }
    dm_write("dm-conflict", &s);

    /* anti-entropy, once ready: B's digest asks for this member's; its live
     * entries missing or above the copies here are asked for, its dead entry
     * removes a session; a GET_SESSION of that one is answered with its
     * tombstone; the tick sends this member's digest to B */
    sc_buf_init(&m, pool, 0);
    sc_msg_complete_encode(&m, &(sc_msg_complete){ 0 });
    dm_add(&s, 0, &m);
    dm_full(&s, 0, ID1, 3, d1);
    dm_full(&s, 0, ID2, 1, "b=2");
    dm_full(&s, 0, ID4, 2, "d=2");
    {
        sc_stamp hi = { 5, 99, 0, 0 }, lo = { 1, 98, 0, 0 }, minor = { 9, 97, 1, SC_SF_MINOR };
        sc_buf_init(&m, pool, 0);
        sc_msg_digest_open(&m);
        sc_msg_digest_add_live(&m, ID1, &hi, 0);
        sc_msg_digest_add_live(&m, ID3, &lo, 0);
        sc_msg_digest_add_live(&m, ID4, &minor, 0);
        sc_msg_digest_add_dead(&m, apr_pstrndup(pool, ID2, 32), 600, 0);
        sc_msg_digest_close(&m, SC_DIGEST_ANSWER | SC_DIGEST_LAST, 4);
        dm_add(&s, DM_FROM_B, &m);
    }
    dm_id(&s, DM_FROM_B, SC_REPL_GET_SESSION, ID2);
    dm_write("dm-digest", &s);
}

/* ---- session texts (fuzz_session_decode) ----------------------------------- */

static void decodes(void)
{
    /* one or two texts, split at a NUL: the second decoded over the first */
    static const struct {
        const char *name, *text;
        apr_size_t len;
    } seeds[] = {
#define DECODE_SEED(name, text) { name, text, sizeof(text) - 1 }
        DECODE_SEED("decode-plain", "count=1&user=alice&expiry=1700000000000000"),
        DECODE_SEED("decode-remove", "a=1&b=2&c=3\0b&a==&c="),
        DECODE_SEED("decode-escapes", "x=%26%3D&y=a%3Db&sp=a+b%2Bc&utf=%C3%A9t%c3%a9"),
        DECODE_SEED("decode-equals", "==k==v==w&&&=&k2&===&k3=v3="),
        DECODE_SEED("decode-bad-escapes", "bad=%zz&nul=%00&ok=%41&%4=1&end=%4&pct=%"),
        DECODE_SEED("decode-case", "EXPIRY=5&Key=1\0key=2&KEY&expiry=-7"),
#undef DECODE_SEED
    };
    char big[4 + 300 + 1];
    int i;
    for (i = 0; i < (int)(sizeof(seeds) / sizeof(seeds[0])); i++) {
        write_seed("fuzz_session_decode", seeds[i].name, seeds[i].text, seeds[i].len);
    }
    memcpy(big, "big=", 4);
    memset(big + 4, 'x', 300);
    write_seed("fuzz_session_decode", "decode-long-value", big, 4 + 300);
}

/* ---- session ids ---------------------------------------------------------- */

static void sids(void)
{
    static const char *const seeds[][2] = {
        { "JSESSIONID=" ID1, "/app/index.html;jsessionid=" ID1 "?a=b" },
        { "theme=dark; JSESSIONID=\"" ID2 "\"; lang=en", "/;JSESSIONID=" ID2 "#top" },
        { "a=b,JSESSIONID = " ID1 " ;x", "/a;jsessionid=;b" },
        { "JSESSIONIDX=1; JSESSIONID=", "/x;jsessionid=" ID1 ";foo=bar/y" },
        { "SESSION_CLUSTER=" ID2, "/app;jsessionid=0123456789ABCDEF0123456789ABCDEF.bad.route" },
        /* msm's node id; then every part at its longest (34 hex, a node id
         * of 16, a route of 63): 115 characters, more than the store holds */
        { "JSESSIONID=0123456789abcdef0123456789abcdef-n1.nodeB",
          "0123456789abcdef0123456789abcdef01-nodeid_of_16_chr."
          "a_route_of_sixty_three_characters_is_the_longest_one_allowed_ok" },
    };
    int i;
    for (i = 0; i < (int)(sizeof(seeds) / sizeof(seeds[0])); i++) {
        apr_size_t a = strlen(seeds[i][0]), b = strlen(seeds[i][1]);
        char *buf = apr_palloc(pool, a + 1 + b);
        memcpy(buf, seeds[i][0], a + 1);      /* with its NUL: the split */
        memcpy(buf + a + 1, seeds[i][1], b);
        write_seed("fuzz_sid", apr_psprintf(pool, "cookie-uri-%d", i + 1), buf, a + 1 + b);
    }
}

/* ---- <Cluster> blocks ---------------------------------------------------- */

static void config_fixture(const char *path)
{
    apr_size_t len;
    char *text = (char *)read_file(path, &len), *c, *at;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path, *out;
    if (!text) {
        perror(path);
        exit(1);
    }
    c = text;
    while (*c == '#') {                       /* leading comment lines */
        char *nl = strchr(c, '\n');
        c = nl ? nl + 1 : c + strlen(c);
    }
    out = "";
    while ((at = strstr(c, "${SC_PORT}"))) {
        out = apr_pstrcat(pool, out, apr_pstrmemdup(pool, c, (apr_size_t)(at - c)), "4000",
                          NULL);
        c = at + strlen("${SC_PORT}");
    }
    out = apr_pstrcat(pool, out, c, NULL);
    write_seed("fuzz_config", base, out, strlen(out));
}

int main(int argc, char **argv)
{
    sc_buf delta;
    const char *err;
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: gen_seeds CORPUS_DIR [FIXTURE.conf ...]\n");
        return 2;
    }
    outdir = argv[1];
    mkdir_p(outdir);
    pool = fuzz_global_pool();
    if ((err = sc_crypto_create(pool, fuzz_key, sizeof(fuzz_key), NULL, 0, &cur))
        || (err = sc_crypto_create(pool, fuzz_prev_key, sizeof(fuzz_prev_key), NULL, 0,
                                   &prev_only))
        || (err = sc_crypto_create(pool, fuzz_key, sizeof(fuzz_key), fuzz_prev_key,
                                   sizeof(fuzz_prev_key), &both))) {
        fprintf(stderr, "gen_seeds: %s\n", err);
        return 1;
    }
    heartbeats();
    sessions(&delta);
    messages();
    frames(&delta);
    streams(&delta);
    dispatch();
    decodes();
    sids();
    for (i = 2; i < argc; i++) {
        config_fixture(argv[i]);
    }
    printf("gen_seeds: %d seed files written, %d sealed ones kept, in %s\n", written, kept,
           outdir);
    return 0;                 /* apr_terminate at exit: fuzz_global_pool */
}
