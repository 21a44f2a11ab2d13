/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fixture.c -- an engine in memory for the unit tests of its layers, with no
 * socket, and the one seam: THE TRANSPORT.
 *
 * The tests link the module's own code for the layer under test and the
 * layers below it that open no socket (sc_membership.c, sc_channel.c,
 * sc_manager.c; sc_store.c, sc_shm.c, sc_repl.c, sc_proto.c, and the block
 * reader sc_config.c, sc_classes.c, sc_dump.c for the settings).  Only the
 * transport's functions, which the layers call to send and to connect, are
 * this file's instead of sc_transport.c's:
 *
 *   sc_tr_send_frame   records the frame (connection, member, type, flags,
 *                      number, a copy of the payload) in ut.frames; fails
 *                      (-1) on a closed connection, as the real one, or to a
 *                      member when the test sets ut.refuse_sends
 *   sc_tr_connect      gives a member with no connection an open one at once
 *                      (the real one opens it in the background), unless the
 *                      test sets ut.refuse_connect; counted
 *   sc_tr_close        marks the connection closed and forgets it as the
 *                      member's, as the real one; where the engine would hand
 *                      the layers a queued event (sc_tr_next_event), the tests
 *                      call the layer's handler themselves (sc_ch_on_conn_lost,
 *                      sc_mb_on_refused)
 *   sc_tr_bad_frame,   counted, and the connection closed, as the real ones
 *   sc_tr_replayed
 *   sc_tr_mcast_send,  counted
 *   sc_tr_forgive
 *   sc_replay_take     the transport's replay window: counted with the
 *                      number it was given, the window left as it is
 *
 * Nothing else of the module is replaced.  httpd's logging and the httpd
 * functions the block reader calls come from fuzz/httpd_stubs.c (logging
 * does nothing there).
 */
#include "fixture.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

ut_seam ut;

static apr_pool_t *root;
static process_rec process;
static server_rec server;

static void frames_free(void);

apr_pool_t *ut_pool(void)
{
    if (!root) {
        if (apr_initialize() != APR_SUCCESS || apr_pool_create(&root, NULL) != APR_SUCCESS) {
            printf("Bail out! cannot initialize APR\n");
            exit(2);
        }
        atexit(frames_free);
        atexit(apr_terminate);      /* first: frees the engines */
        process.pool = process.pconf = root;
        process.short_name = "unit";
        server.process = &process;
        server.log.level = APLOG_WARNING;
    }
    return root;
}

/* ---- the transport seam ---------------------------------------------------- */

int sc_tr_send_frame(sc_engine *e, sc_conn *c, int type, int flags, apr_uint64_t seq,
                     const void *payload, apr_size_t len)
{
    ut_frame *f;
    if (!c || c->state == SC_CS_CLOSED || (ut.refuse_sends && c->kind != SC_CONN_IPC)) {
        return -1;
    }
    if (ut.nframes == ut.cap) {
        ut.cap = ut.cap ? ut.cap * 2 : 64;
        ut.frames = realloc(ut.frames, (size_t)ut.cap * sizeof(*ut.frames));
        if (!ut.frames) {
            abort();
        }
    }
    f = &ut.frames[ut.nframes++];
    f->conn = c;
    f->peer = c->peer;
    f->kind = c->kind;
    f->type = type;
    f->flags = flags;
    f->seq = seq;
    f->len = len;
    f->payload = malloc(len + 1);
    if (!f->payload) {
        abort();
    }
    if (len) {
        memcpy(f->payload, payload, len);
    }
    f->payload[len] = '\0';
    return 0;
}

void sc_tr_connect(sc_engine *e, sc_peer *p)
{
    ut.connects++;
    if (p->out || !p->resolved || ut.refuse_connect) {
        return;
    }
    ut.opened++;
    ut_conn(e, p, SC_CONN_OUT);
}

void sc_tr_close(sc_engine *e, sc_conn *c, const char *why)
{
    if (c->state == SC_CS_CLOSED) {
        return;
    }
    ut.closes++;
    apr_cpystrn(ut.closed_why, why ? why : "", sizeof(ut.closed_why));
    c->state = SC_CS_CLOSED;
    if (c->peer && c->peer->out == c) {
        c->peer->out = NULL;
    }
}

void sc_tr_bad_frame(sc_engine *e, sc_conn *c, const char *why)
{
    ut.bad_frames++;
    apr_cpystrn(ut.bad_why, why ? why : "", sizeof(ut.bad_why));
    sc_tr_close(e, c, why);
}

void sc_tr_replayed(sc_engine *e, sc_conn *c)
{
    ut.replayed++;
    sc_tr_close(e, c, "replayed");
}

void sc_tr_mcast_send(sc_engine *e, int state)
{
    ut.mcast_sends++;
}

void sc_tr_forgive(sc_engine *e, const char *addr)
{
    ut.forgiven++;
}

int sc_replay_take(sc_replay *w, apr_uint64_t seq)
{
    ut.replay_takes++;
    ut.replay_seq = seq;
    return 0;
}

/* ---- the engine in memory ---------------------------------------------------- */

/* What the engine holds in malloc'd memory, freed with its pool (at exit:
 * apr_terminate), so that a leak sanitizer sees the module's own leaks only. */
static apr_status_t engine_free(void *data)
{
    sc_engine *e = data;
    while (e->pending) {
        sc_pending *pd = e->pending, *q;
        e->pending = pd->next;
        for (q = e->pending; pd->group && q; q = q->next) {
            if (q->group == pd->group) {
                q->group = NULL;        /* freed once, with the first share */
            }
        }
        free(pd->group);
        free(pd->frame);
        free(pd);
    }
    while (e->held) {
        sc_held *h = e->held;
        e->held = h->next;
        free(h->msg);
        free(h);
    }
    while (e->transfers) {
        sc_transfer_out *t = e->transfers;
        e->transfers = t->next;
        free(t);
    }
    while (e->conns) {
        sc_conn *c = e->conns;
        e->conns = c->next;
        free(c);
    }
    while (e->peers) {
        sc_peer *p = e->peers;
        e->peers = p->next;
        free(p->replay);
        free(p);
    }
    return APR_SUCCESS;
}

static void frames_free(void)
{
    ut_reset_frames();
    free(ut.frames);
    ut.frames = NULL;
    ut.cap = 0;
}

sc_engine *ut_engine(const char *route, unsigned char id_byte, const char *block,
                     apr_uint32_t capacity)
{
    apr_pool_t *p, *ptemp;
    sc_engine *e;
    sc_cluster_cfg *cfg = NULL;
    const char *err;

    apr_pool_create(&p, ut_pool());
    apr_pool_create(&ptemp, p);
    err = sc_config_parse_text(p, ptemp, &server, "unit.conf", 1, block, strlen(block), &cfg);
    apr_pool_destroy(ptemp);
    if (err) {
        printf("Bail out! the test's <Cluster> block is refused: %s\n", err);
        exit(2);
    }
    e = apr_pcalloc(p, sizeof(*e));
    apr_pool_cleanup_register(p, e, engine_free, apr_pool_cleanup_null);
    e->pool = p;
    apr_pool_create(&e->tmp, p);
    e->frame_tmp = e->tmp;
    e->s = &server;
    e->cfg = cfg;
    e->set = cfg->set;
    e->route = apr_pstrdup(p, route);
    memset(e->id, id_byte, SC_ID_LEN);
    sc_engine_clock_set(e);           /* as the engine's start does */
    e->started = e->clock_wall;
    e->incarnation = (apr_uint64_t)e->started;
    e->state = SC_MS_READY;
    e->listen_fd = e->mcast_fd = e->ipc_fd = e->wake_fd = -1;
    /* as the engine's own settings (sc_engine.c) */
    e->use_mcast_rx = e->set->mcast_receive;
    e->use_mcast_tx = e->set->mcast_send;
    if (e->set->domain && e->set->domain_len) {
        e->domain_len = e->set->domain_len > SC_DOMAIN_MAX ? SC_DOMAIN_MAX
                                                           : e->set->domain_len;
        memcpy(e->domain, e->set->domain, (size_t)e->domain_len);
    }
    /* as the transport's listen (sc_tr_listen) */
    apr_cpystrn(e->self_addr, "127.0.0.1", sizeof(e->self_addr));
    e->self_family = 4;
    inet_pton(AF_INET, "127.0.0.1", e->self_addr_bytes);
    e->self_port = (int)e->set->receiver_port;
    if (sc_shm_create(p, &e->shm) != APR_SUCCESS) {
        printf("Bail out! sc_shm_create failed\n");
        exit(2);
    }
    if (capacity && sc_store_create(p, capacity, 4096, &e->store) != APR_SUCCESS) {
        printf("Bail out! sc_store_create failed\n");
        exit(2);
    }
    return e;
}

sc_peer *ut_peer(sc_engine *e, const char *route, unsigned char id_byte, int port)
{
    sc_peer *p = calloc(1, sizeof(*p)), **pp;
    int n = 0;
    if (!p) {
        abort();
    }
    for (pp = &e->peers; *pp; pp = &(*pp)->next) {
        n++;
    }
    *pp = p;
    p->slot = n;
    apr_cpystrn(p->host, "127.0.0.1", sizeof(p->host));
    p->port = port;
    p->resolved = 1;
    memset(p->id, id_byte, SC_ID_LEN);
    p->id_known = 1;
    p->incarnation = 1000 + id_byte;
    apr_cpystrn(p->route, route, sizeof(p->route));
    p->view = SC_VIEW_ALIVE;
    p->hb_state = SC_MS_READY;
    p->first_seen = p->last_heard = p->state_since = apr_time_now();
    return p;
}

sc_conn *ut_conn(sc_engine *e, sc_peer *p, int kind)
{
    sc_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        abort();
    }
    c->fd = -1;
    c->kind = kind;
    c->state = SC_CS_OPEN;
    c->peer = p;
    c->opened = c->last_rx = apr_time_now();
    if (kind == SC_CONN_IPC) {
        apr_cpystrn(c->remote, "child", sizeof(c->remote));
    }
    else {
        apr_snprintf(c->remote, sizeof(c->remote), "127.0.0.1:%d", p ? p->port : 50000);
    }
    if (kind == SC_CONN_OUT && p) {
        p->out = c;
    }
    c->next = e->conns;
    e->conns = c;
    return c;
}

void ut_heartbeat(sc_heartbeat *hb, unsigned char id_byte, apr_uint64_t incarnation,
                  const char *route, int port, int state)
{
    static apr_uint64_t seq;
    memset(hb, 0, sizeof(*hb));
    hb->state = (apr_byte_t)state;
    memset(hb->id, id_byte, SC_ID_LEN);
    hb->incarnation = incarnation;
    hb->alive_ms = 1000;
    hb->seq = ++seq;
    hb->port = (apr_uint16_t)port;
    hb->family = 4;
    inet_pton(AF_INET, "127.0.0.1", hb->addr);
    apr_cpystrn(hb->route, route, sizeof(hb->route));
}

void ut_hdr(sc_frame_hdr *h, int type, int flags, unsigned char id_byte, apr_uint64_t seq,
            apr_size_t len)
{
    memset(h, 0, sizeof(*h));
    h->type = (apr_byte_t)type;
    h->flags = (apr_uint16_t)flags;
    memset(h->sender, id_byte, SC_ID_LEN);
    h->seq = seq;
    h->length = (apr_uint32_t)len;
}

apr_size_t ut_heartbeat_frame(const sc_heartbeat *hb, int type, apr_uint64_t seq,
                              sc_frame_hdr *hdr, unsigned char *buf, apr_size_t cap)
{
    apr_size_t n = sc_heartbeat_encode(hb, buf, cap);
    if (!n) {
        printf("Bail out! sc_heartbeat_encode refused the test's heartbeat\n");
        exit(2);
    }
    ut_hdr(hdr, type, 0, hb->id[0], seq, n);
    memcpy(hdr->sender, hb->id, SC_ID_LEN);
    return n;
}

/* ---- reading what was sent ------------------------------------------------------ */

void ut_reset_frames(void)
{
    int i;
    for (i = 0; i < ut.nframes; i++) {
        free(ut.frames[i].payload);
    }
    ut.nframes = 0;
}

static int matches(const ut_frame *f, int type, const sc_conn *c)
{
    return (!type || f->type == type) && (!c || f->conn == c);
}

int ut_count(int type, const sc_conn *c)
{
    int i, n = 0;
    for (i = 0; i < ut.nframes; i++) {
        n += matches(&ut.frames[i], type, c);
    }
    return n;
}

const ut_frame *ut_last(int type, const sc_conn *c)
{
    int i;
    for (i = ut.nframes - 1; i >= 0; i--) {
        if (matches(&ut.frames[i], type, c)) {
            return &ut.frames[i];
        }
    }
    return NULL;
}

const ut_frame *ut_first(int type, const sc_conn *c)
{
    int i;
    for (i = 0; i < ut.nframes; i++) {
        if (matches(&ut.frames[i], type, c)) {
            return &ut.frames[i];
        }
    }
    return NULL;
}

static int is_repl(const ut_frame *f, unsigned repl, const sc_conn *c)
{
    return matches(f, SC_MSG_DATA, c) && f->len >= 1 && f->payload[0] == repl;
}

int ut_count_repl(unsigned repl, const sc_conn *c)
{
    int i, n = 0;
    for (i = 0; i < ut.nframes; i++) {
        n += is_repl(&ut.frames[i], repl, c);
    }
    return n;
}

const ut_frame *ut_last_repl(unsigned repl, const sc_conn *c)
{
    int i;
    for (i = ut.nframes - 1; i >= 0; i--) {
        if (is_repl(&ut.frames[i], repl, c)) {
            return &ut.frames[i];
        }
    }
    return NULL;
}

const char *ut_answer_text(const ut_frame *f)
{
    return f && f->len >= 8 ? (const char *)f->payload + 8 : NULL;
}

apr_uint64_t ut_acked_seq(const ut_frame *f)
{
    return f && f->len >= 8 ? sc_get64(f->payload) : 0;
}

const char *ut_ack_reason(const ut_frame *f)
{
    return f && f->len >= 8 ? (const char *)f->payload + 8 : NULL;
}

int ut_npending(const sc_engine *e)
{
    const sc_pending *pd;
    int n = 0;
    for (pd = e->pending; pd; pd = pd->next) {
        n++;
    }
    return n;
}
