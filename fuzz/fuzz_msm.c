/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fuzz_msm -- the session server (sc_msm.c, issue 19): what its clients read
 * from memcached and Redis over the network, and the <Manager> element of
 * httpd.conf with its node lists.
 *
 * sc_msm.c is compiled into this target (#include below: its readers are
 * static), with sc_config.c and sc_classes.c (the element's attributes are
 * checked against the class catalogue) and fuzz/httpd_stubs.c.
 *
 * Input: [mode:1][rest]; mode % 4:
 *   0  the rest is what a memcached server answers (text protocol),
 *   1  the same from a Redis server (RESP),
 *   2  the rest is a <Manager> element's text after "<Manager" (sc_msm_parse),
 *   3  the rest is "memcachedNodes\0failoverNodes" (split at the first NUL).
 *
 * A reply (modes 0, 1) goes through:
 *  - reply_len, the test of a complete reply, on a malloc'd buffer of exactly
 *    the reply's length (ASan sees a read past it): -1, 0, or a length within
 *    the buffer; a reply complete at k is complete on its first k bytes, and
 *    every shorter prefix asks for more (0), whatever way the bytes arrive;
 *  - read_reply, through a socketpair whose other end holds the bytes and is
 *    then shut (so nothing waits): it succeeds exactly when the whole input is
 *    one complete reply, and gives back those bytes, NUL-terminated;
 *  - get_value, the value of a GET reply: within the reply, its length the
 *    one the reply declares, a Redis bulk value followed by its CRLF, a
 *    memcached one by "\r\nEND\r\n";
 *  - sc_msm_load itself, for a session id, with the reply waiting on a kept
 *    connection of the configured node (a memcached or a Redis one): a
 *    session loaded is the value's text after its "SCM1 <created> <max>\n"
 *    header, with no NUL, and no longer than the input.
 * An element (mode 2) that parses has 1 to SC_MSM_MAX_NODES nodes with ids of
 * letters, digits, '-' and '_', unique, a host and a port; Redis: one node, no
 * failover node; else at least one regular node; its attributes written once;
 * node_order gives every node once, the regular ones first; the dump and the
 * "no effect" text are made.  An error names the file.
 * Node lists (mode 3): parse_nodes on the first part directly, and the element
 * memcachedNodes="..." failoverNodes="..." with both parts XML-escaped: the
 * element parses only if the list does, with the same nodes; a node's id and
 * host are taken from the list's text.
 *
 * FUZZ_TRACE=1 in the environment: each input's outcome on stderr.
 */
#include "fuzz_common.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sc_msm.c"                /* mod_session_cluster/, by -I */

static sc_msm_cfg *cfg_memcached, *cfg_redis;
static msm_shared fuzz_shared;
static server_rec fuzz_server;
static int trace;                  /* FUZZ_TRACE=1: say what each input did */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    apr_pool_t *g = fuzz_global_pool();
    (void)argc;
    (void)argv;
    trace = getenv("FUZZ_TRACE") != NULL;
    if (sc_msm_parse(g, "fuzz.conf", 1,
                     " className=\"de.javakaffee.web.msm.MemcachedBackupSessionManager\""
                     " memcachedNodes=\"n1:127.0.0.1:11211\"/>", &cfg_memcached)
        || sc_msm_parse(g, "fuzz.conf", 1,
                        " className=\"de.javakaffee.web.msm.MemcachedBackupSessionManager\""
                        " memcachedNodes=\"redis://127.0.0.1:6379\"/>", &cfg_redis)) {
        fprintf(stderr, "fuzz_msm: the target's own <Manager> elements do not parse\n");
        abort();
    }
    FUZZ_CHECK(!cfg_memcached->redis && cfg_redis->redis);
    return 0;
}

/* A copy of b[0..n) in a malloc'd block of exactly n bytes (1 if n is 0). */
static char *exact_copy(const void *b, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (!c) {
        abort();
    }
    memcpy(c, b, n);
    return c;
}

/* b[0..n) and a NUL in a malloc'd block of exactly n + 1 bytes. */
static char *exact_str(const void *b, size_t n)
{
    char *c = malloc(n + 1);
    if (!c) {
        abort();
    }
    memcpy(c, b, n);
    c[n] = '\0';
    return c;
}

/* ---- replies ---------------------------------------------------------------------- */

static void check_reply_len(int redis, const char *in, size_t len, long *whole)
{
    char *b = exact_copy(in, len);
    long k = reply_len(redis, b, len);
    FUZZ_CHECK(k >= -1 && k <= (long)len);
    *whole = k;
    if (k > 0) {
        /* complete at its own length; every prefix (as recv may deliver it)
         * asks for more: the first line's end, around it, and a few others */
        size_t eol = (size_t)((const char *)memchr(b, '\n', len) - b), cut[8];
        int i, n = 0;
        char *head = exact_copy(b, (size_t)k);
        FUZZ_CHECK(reply_len(redis, head, (size_t)k) == k);
        free(head);
        cut[n++] = 1;
        cut[n++] = eol;
        cut[n++] = eol + 1;
        cut[n++] = (size_t)k - 1;
        cut[n++] = (size_t)k / 2;
        cut[n++] = eol + 1 + ((size_t)k - eol - 1) / 2;
        cut[n++] = 512;
        cut[n++] = 513;
        for (i = 0; i < n; i++) {
            if (cut[i] >= 1 && cut[i] < (size_t)k) {
                char *pre = exact_copy(b, cut[i]);
                long kp = reply_len(redis, pre, cut[i]);
                free(pre);
                FUZZ_CHECK(kp == 0);
            }
        }
    }
    free(b);
}

/* read_reply over a socketpair holding the bytes; 1 and the reply, or 0. */
static int via_socket(apr_pool_t *p, int redis, const char *in, size_t len, char **out,
                      apr_size_t *outlen, int *peer_fd, int *my_fd)
{
    int sv[2];
    io x;
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    if (len) {
        FUZZ_CHECK(send(sv[1], in, len, MSG_NOSIGNAL) == (ssize_t)len);
    }
    FUZZ_CHECK(shutdown(sv[1], SHUT_WR) == 0);
    if (my_fd) {
        /* for sc_msm_load: the connection handed over, the peer kept */
        *my_fd = sv[0];
        *peer_fd = sv[1];
        return 0;
    }
    memset(&x, 0, sizeof(x));
    x.fd = sv[0];
    x.deadline = apr_time_now() + apr_time_from_sec(5);
    {
        int ok = read_reply(&x, p, redis, out, outlen);
        FUZZ_CHECK(!x.timed_out);
        close(sv[0]);
        close(sv[1]);
        return ok;
    }
}

static void check_get_value(int redis, const char *reply, apr_size_t rlen)
{
    const char *v = NULL;
    apr_size_t vlen = 0;
    int got;
    active = redis ? cfg_redis : cfg_memcached;
    got = get_value(reply, rlen, &v, &vlen);
    active = NULL;
    FUZZ_CHECK(got >= -1 && got <= 1);
    if (got != 1) {
        return;
    }
    FUZZ_CHECK(v > reply && v <= reply + rlen);
    FUZZ_CHECK(vlen <= rlen && vlen <= (apr_size_t)(reply + rlen - v));
    if (redis) {
        /* $<n>\r\n<n bytes>\r\n */
        FUZZ_CHECK(reply[0] == '$');
        FUZZ_CHECK(strtol(reply + 1, NULL, 10) == (long)vlen);
        FUZZ_CHECK(v + vlen + 2 == reply + rlen && !memcmp(v + vlen, "\r\n", 2));
    }
    else {
        /* VALUE <key> <flags> <n>\r\n<n bytes>\r\nEND\r\n */
        const char *e = v - 2;
        FUZZ_CHECK(!strncmp(reply, "VALUE ", 6));
        while (e > reply && apr_isdigit(e[-1])) {
            e--;
        }
        FUZZ_CHECK(strtol(e, NULL, 10) == (long)vlen);
        FUZZ_CHECK(v + vlen + 7 == reply + rlen && !memcmp(v + vlen, "\r\nEND\r\n", 7));
    }
}

/* sc_msm_load with the reply waiting on node 0's kept connection. */
static void check_load(apr_pool_t *p, int redis, const char *in, size_t len,
                       int whole_reply)
{
    request_rec r;
    const char *data = NULL;
    apr_time_t created = -1;
    apr_int64_t mi = 0;
    int mine = -1, peer = -1, rc;

    memset(&r, 0, sizeof(r));
    r.pool = p;
    r.server = &fuzz_server;
    memset(&fuzz_shared, 0, sizeof(fuzz_shared));
    shared = &fuzz_shared;
    active = redis ? cfg_redis : cfg_memcached;
    via_socket(p, redis, in, len, NULL, NULL, &peer, &mine);
    keep_n[0] = 1;
    keep_fd[0][0] = mine;
    rc = sc_msm_load(&r, p, "0123456789ABCDEF0123456789ABCDEF.n1", &data, &created, &mi);
    /* a reply taken: the connection kept again; else exchange closed it and
     * its new connection (to a node that never resolved) failed */
    if (keep_n[0] > 0) {
        FUZZ_CHECK(keep_n[0] == 1 && keep_fd[0][0] == mine && whole_reply);
        close(mine);
        keep_n[0] = 0;
    }
    else {
        FUZZ_CHECK(rc == -1);
    }
    close(peer);
    active = NULL;
    shared = NULL;
    FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (trace) {
        fprintf(stderr, "fuzz_msm: %s reply of %zu bytes: %s; sc_msm_load %d%s%s\n",
                redis ? "Redis" : "memcached", len, whole_reply ? "one reply" : "refused",
                rc, rc == 1 ? ", data: " : "", rc == 1 ? data : "");
    }
    if (rc == 1) {
        /* the header, then the data: a text no longer than the input */
        const char *scm = memmem(in, len, "SCM1 ", 5);
        size_t dlen = strlen(data);
        FUZZ_CHECK(scm && created >= 0);
        FUZZ_CHECK(dlen < len);
        FUZZ_CHECK(memmem(scm, len - (size_t)(scm - in), data, dlen) != NULL);
        FUZZ_CHECK(fuzz_shared.loaded == 1);
    }
    else {
        /* *data is not for the caller (a value with a NUL leaves it set) */
        FUZZ_CHECK(fuzz_shared.loaded == 0);
    }
}

static void one_reply(apr_pool_t *p, int redis, const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char *out = NULL;
    apr_size_t outlen = 0;
    long whole;
    int ok;

    check_reply_len(redis, in, size, &whole);
    ok = via_socket(p, redis, in, size, &out, &outlen, NULL, NULL);
    /* one reply, all of the input, read as it was sent */
    FUZZ_CHECK(ok == (whole > 0 && (size_t)whole == size));
    if (ok) {
        FUZZ_CHECK(outlen == size && out[outlen] == '\0' && !memcmp(out, in, size));
        check_get_value(redis, out, outlen);
    }
    check_load(p, redis, in, size, ok);
}

/* ---- the element ------------------------------------------------------------------ */

static int id_ok(const char *id)
{
    if (!*id) {
        return 0;
    }
    for (; *id; id++) {
        if (!apr_isalnum(*id) && *id != '_' && *id != '-') {
            return 0;
        }
    }
    return 1;
}

static void check_cfg(apr_pool_t *p, const sc_msm_cfg *c)
{
    int i, j, reg = 0, order[SC_MSM_MAX_NODES], n, seen[SC_MSM_MAX_NODES];
    static const char *const ids[] = { "", "a", "0123456789ABCDEF.n1", "zz" };
    apr_array_header_t *lines = apr_array_make(p, 8, sizeof(const char *));

    FUZZ_CHECK(c->nnodes >= 1 && c->nnodes <= SC_MSM_MAX_NODES && c->nodes);
    FUZZ_CHECK(c->where && !strncmp(c->where, "fuzz.conf:", 10));
    if (c->redis) {
        FUZZ_CHECK(c->nnodes == 1 && !strcmp(c->nodes[0].id, "redis"));
    }
    for (i = 0; i < c->nnodes; i++) {
        FUZZ_CHECK(c->nodes[i].host && *c->nodes[i].host && c->nodes[i].port > 0);
        FUZZ_CHECK(c->redis || id_ok(c->nodes[i].id));
        FUZZ_CHECK(!c->redis || !c->nodes[i].failover);
        for (j = 0; j < i; j++) {
            FUZZ_CHECK(strcmp(c->nodes[i].id, c->nodes[j].id) != 0);
        }
        reg += !c->nodes[i].failover;
    }
    FUZZ_CHECK(reg >= 1);
    for (i = 0; i < c->attrs->nelts; i++) {
        for (j = 0; j < i; j++) {
            FUZZ_CHECK(strcmp(APR_ARRAY_IDX(c->attrs, i, msm_attr).name,
                              APR_ARRAY_IDX(c->attrs, j, msm_attr).name) != 0);
        }
    }
    /* the order a session's operations try the nodes in */
    active = (sc_msm_cfg *)c;
    for (j = 0; j < (int)(sizeof(ids) / sizeof(ids[0])); j++) {
        n = node_order(ids[j], order);
        FUZZ_CHECK(n == c->nnodes);
        memset(seen, 0, sizeof(seen));
        for (i = 0; i < n; i++) {
            FUZZ_CHECK(order[i] >= 0 && order[i] < c->nnodes && !seen[order[i]]);
            seen[order[i]] = 1;
            FUZZ_CHECK(c->nodes[order[i]].failover == (i >= reg));
        }
    }
    active = NULL;
    sc_msm_dump(p, c, 0, lines);
    sc_msm_dump(p, c, 1, lines);
    FUZZ_CHECK(lines->nelts >= 10);
    sc_msm_no_effect(p, c, 0);
    sc_msm_no_effect(p, c, 1);
    FUZZ_CHECK(sc_msm_cluster_text(p, c) != NULL);
}

static const char *parse_element(apr_pool_t *p, const char *text, sc_msm_cfg **c)
{
    const char *err;
    *c = NULL;
    err = sc_msm_parse(p, "fuzz.conf", 7, text, c);
    if (trace) {
        fprintf(stderr, "fuzz_msm: element: %s%s\n", err ? err : "parsed, nodes: ",
                err ? "" : node_list(p, *c));
    }
    if (err) {
        FUZZ_CHECK(!strncmp(err, "fuzz.conf:", 10) && strstr(err, "<Manager>: "));
        *c = NULL;
        return err;
    }
    FUZZ_CHECK(*c);
    check_cfg(p, *c);
    return NULL;
}

/* s as an attribute value between double quotes */
static const char *xml_escape(apr_pool_t *p, const char *s)
{
    char *o = apr_palloc(p, strlen(s) * 6 + 1), *w = o;
    for (; *s; s++) {
        if (*s == '&') {
            memcpy(w, "&amp;", 5);
            w += 5;
        }
        else if (*s == '<') {
            memcpy(w, "&lt;", 4);
            w += 4;
        }
        else if (*s == '"') {
            memcpy(w, "&quot;", 6);
            w += 6;
        }
        else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return o;
}

static void node_lists(apr_pool_t *p, const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t n1 = nul ? (size_t)(nul - data) : size;
    char *list = exact_str(data, n1), *fail = NULL;
    sc_msm_cfg direct, *c;
    const char *err, *eerr;
    int i;

    if (nul) {
        const uint8_t *end = memchr(nul + 1, 0, size - n1 - 1);
        size_t n2 = end ? (size_t)(end - nul - 1) : size - n1 - 1;
        fail = exact_str(nul + 1, n2);
    }
    memset(&direct, 0, sizeof(direct));
    err = parse_nodes(p, &direct, list);
    if (trace) {
        fprintf(stderr, "fuzz_msm: parse_nodes: %s\n", err ? err : node_list(p, &direct));
    }
    if (!err) {
        FUZZ_CHECK(direct.nnodes >= 1 && direct.nnodes <= SC_MSM_MAX_NODES);
        for (i = 0; i < direct.nnodes; i++) {
            FUZZ_CHECK(direct.nodes[i].host && *direct.nodes[i].host);
            FUZZ_CHECK(strlen(direct.nodes[i].host) < n1);
            FUZZ_CHECK(strstr(list, direct.nodes[i].host) != NULL);
            FUZZ_CHECK(direct.redis ? direct.nnodes == 1 && !strcmp(direct.nodes[i].id, "redis")
                                    : id_ok(direct.nodes[i].id)
                                      && strstr(list, direct.nodes[i].id) != NULL
                                      && direct.nodes[i].port > 0);
        }
    }
    eerr = parse_element(p, apr_pstrcat(p, " memcachedNodes=\"", xml_escape(p, list), "\"",
                                        fail ? " failoverNodes=\"" : "",
                                        fail ? xml_escape(p, fail) : "", fail ? "\"" : "",
                                        "/>", NULL), &c);
    if (!eerr) {
        /* the element's nodes are the list's */
        FUZZ_CHECK(!err && c->nnodes == direct.nnodes && c->redis == direct.redis);
        for (i = 0; i < c->nnodes; i++) {
            FUZZ_CHECK(!strcmp(c->nodes[i].id, direct.nodes[i].id));
            FUZZ_CHECK(!strcmp(c->nodes[i].host, direct.nodes[i].host));
            FUZZ_CHECK(c->nodes[i].port == direct.nodes[i].port);
        }
    }
    free(list);
    free(fail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    sc_msm_cfg *c;
    if (size < 1) {
        return 0;
    }
    switch (data[0] % 4) {
    case 0:
    case 1:
        one_reply(p, data[0] % 4, data + 1, size - 1);
        break;
    case 2: {
        char *text = exact_str(data + 1, size - 1);
        parse_element(p, text, &c);
        free(text);
        break;
    }
    default:
        node_lists(p, data + 1, size - 1);
        break;
    }
    return 0;
}
