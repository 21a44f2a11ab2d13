/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_kube.c -- CloudMembershipService's kubernetes provider, as Tomcat's
 * KubernetesMembershipProvider: the members are the pods of a namespace
 * (optionally those a label selector picks) that the Kubernetes API server
 * lists in phase Running with a podIP, each at this member's Receiver port.
 *
 * Where things come from (the variables Tomcat reads, first one set wins):
 *   API server   KUBERNETES_SERVICE_HOST / OPENSHIFT_KUBE_PING_MASTER_HOST,
 *                KUBERNETES_SERVICE_PORT / OPENSHIFT_KUBE_PING_MASTER_PORT
 *                (443 when unset), KUBERNETES_MASTER_PROTOCOL /
 *                OPENSHIFT_KUBE_PING_MASTER_PROTOCOL (https when unset)
 *   namespace    KUBERNETES_NAMESPACE / OPENSHIFT_KUBE_PING_NAMESPACE, else
 *                (ours) the service account's namespace file
 *   labels       KUBERNETES_LABELS / OPENSHIFT_KUBE_PING_LABELS
 *   API version  KUBERNETES_API_VERSION / OPENSHIFT_KUBE_PING_API_VERSION (v1)
 *   token        SA_TOKEN_FILE / OPENSHIFT_KUBE_PING_SA_TOKEN_FILE, else the
 *                service account's token file; read again for every request
 *                (Kubernetes rotates projected tokens)
 *   CA           KUBERNETES_CA_CERTIFICATE_FILE /
 *                OPENSHIFT_KUBE_PING_CA_CERT_FILE, else the service
 *                account's ca.crt
 * Tomcat's client certificate mode (KUBERNETES_CLIENT_CERTIFICATE_FILE) is
 * not implemented: a request says so instead of being sent.
 *
 * One request is bounded everywhere: connectTimeout for the connection,
 * readTimeout for each wait on the socket (TLS handshake, request, answer),
 * SC_KUBE_TOTAL_MS for the whole exchange, SC_KUBE_MAX_RESPONSE bytes for
 * the answer, SC_KUBE_MAX_HEADERS for its headers, JSON nesting depth
 * SC_KUBE_JSON_DEPTH.  TLS is OpenSSL's, the server's certificate verified
 * against the CA file and the API server's name or address; the JSON is
 * json-c's.  The caller (sc_cloud.c's thread) logs what fails.
 */
#include "sc_private.h"
#include "sc_kube.h"

#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_time.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <json-c/json.h>

#define SC_KUBE_SA_DIR       "/var/run/secrets/kubernetes.io/serviceaccount"
#define SC_KUBE_TOTAL_MS     60000           /* one whole exchange */
#define SC_KUBE_MAX_HEADERS  (64 * 1024)
#define SC_KUBE_MAX_TOKEN    (64 * 1024)
#define SC_KUBE_JSON_DEPTH   64

struct sc_kube {
    apr_pool_t *pool;
    const char *problem;               /* set: no request can be made */
    const char *host;
    const char *port;
    int tls;
    const char *path;                  /* /api/v1/namespaces/NS/pods[?labelSelector=] */
    const char *url;
    const char *token_file;
    const char *ca_file;
    const char *self_addr;
    char own_name[256];                /* this pod's name (its host name) */
    long connect_ms, read_ms;
    volatile int *stop;                /* set: the engine stops; give up */
};

/* the first of two variables that is set (Tomcat's getEnv) */
static const char *env2(const char *a, const char *b)
{
    const char *v = getenv(a);
    if (!v && b) {
        v = getenv(b);
    }
    return v;
}

/* as a query or path component: unreserved characters kept, the rest %XX */
static const char *url_encode(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
            || c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* a small text file (at most max bytes), trailing white space cut; NULL and
 * why on failure */
static char *read_small_file(apr_pool_t *p, const char *path, apr_size_t max,
                             char *why, apr_size_t whylen)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    apr_size_t n;
    if (!f) {
        apr_snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = apr_palloc(p, max + 1);
    n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        apr_snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        fclose(f);
        return NULL;
    }
    fclose(f);
    if (n > max) {
        apr_snprintf(why, whylen, "%s is larger than %" APR_SIZE_T_FMT " bytes", path, max);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '
                     || buf[n - 1] == '\t')) {
        n--;
    }
    buf[n] = '\0';
    return buf;
}

sc_kube *sc_kube_new(apr_pool_t *p, const char *self_addr, long connect_ms, long read_ms,
                     volatile int *stop)
{
    sc_kube *k = apr_pcalloc(p, sizeof(*k));
    const char *ns, *labels, *ver, *proto;
    char why[300];

    k->pool = p;
    k->stop = stop;
    k->self_addr = apr_pstrdup(p, self_addr ? self_addr : "");
    k->connect_ms = connect_ms > 0 ? connect_ms : 1000;
    k->read_ms = read_ms > 0 ? read_ms : 1000;
    if (gethostname(k->own_name, sizeof(k->own_name) - 1) != 0) {
        k->own_name[0] = '\0';
    }
    k->host = env2("KUBERNETES_SERVICE_HOST", "OPENSHIFT_KUBE_PING_MASTER_HOST");
    k->port = env2("KUBERNETES_SERVICE_PORT", "OPENSHIFT_KUBE_PING_MASTER_PORT");
    if (!k->port || !*k->port) {
        k->port = "443";
    }
    proto = env2("KUBERNETES_MASTER_PROTOCOL", "OPENSHIFT_KUBE_PING_MASTER_PROTOCOL");
    k->tls = !proto || !*proto || strcasecmp(proto, "https") == 0;
    ver = env2("KUBERNETES_API_VERSION", "OPENSHIFT_KUBE_PING_API_VERSION");
    if (!ver || !*ver) {
        ver = "v1";
    }
    ns = env2("KUBERNETES_NAMESPACE", "OPENSHIFT_KUBE_PING_NAMESPACE");
    if (!ns || !*ns) {
        ns = read_small_file(p, SC_KUBE_SA_DIR "/namespace", 253, why, sizeof(why));
    }
    labels = env2("KUBERNETES_LABELS", "OPENSHIFT_KUBE_PING_LABELS");
    k->token_file = env2("SA_TOKEN_FILE", "OPENSHIFT_KUBE_PING_SA_TOKEN_FILE");
    if (!k->token_file || !*k->token_file) {
        k->token_file = SC_KUBE_SA_DIR "/token";
    }
    k->ca_file = env2("KUBERNETES_CA_CERTIFICATE_FILE", "OPENSHIFT_KUBE_PING_CA_CERT_FILE");
    if (!k->ca_file || !*k->ca_file) {
        k->ca_file = SC_KUBE_SA_DIR "/ca.crt";
    }
    k->path = apr_psprintf(p, "/api/%s/namespaces/%s/pods%s%s", url_encode(p, ver),
                           url_encode(p, ns && *ns ? ns : "(none)"),
                           labels && *labels ? "?labelSelector=" : "",
                           labels && *labels ? url_encode(p, labels) : "");
    k->url = apr_psprintf(p, "%s://%s%s%s:%s%s", k->tls ? "https" : "http",
                          k->host && strchr(k->host, ':') ? "[" : "",
                          k->host ? k->host : "(no host)",
                          k->host && strchr(k->host, ':') ? "]" : "", k->port, k->path);

    if (!k->host || !*k->host) {
        k->problem = "KUBERNETES_SERVICE_HOST is not in the engine's environment (Kubernetes "
                     "sets it in every pod; elsewhere give it to httpd's environment, as the "
                     "README says)";
    }
    else if (!ns || !*ns) {
        k->problem = apr_psprintf(p, "no namespace: KUBERNETES_NAMESPACE is not in the "
                                  "engine's environment and %s", why);
    }
    else if (proto && *proto && strcasecmp(proto, "https") != 0
             && strcasecmp(proto, "http") != 0) {
        k->problem = apr_psprintf(p, "KUBERNETES_MASTER_PROTOCOL \"%s\" is neither https "
                                  "nor http", proto);
    }
    else if (env2("KUBERNETES_CLIENT_CERTIFICATE_FILE", "OPENSHIFT_KUBE_PING_CLIENT_CERT_FILE")) {
        k->problem = "KUBERNETES_CLIENT_CERTIFICATE_FILE is set: the client certificate mode "
                     "is not implemented here; use the service account token (unset it)";
    }
    return k;
}

const char *sc_kube_problem(const sc_kube *k)
{
    return k->problem;
}

const char *sc_kube_url(const sc_kube *k)
{
    return k->url;
}

/* ---- one connection, bounded in time ---------------------------------------- */

/* poll() for up to ms, in slices, giving up when the engine stops: as poll()
 * (-1 with errno EINTR when stopping) */
static int poll_for(struct pollfd *pfd, long ms, volatile int *stop)
{
    apr_time_t end = sc_steady_us() + apr_time_from_msec(ms);
    for (;;) {
        apr_time_t left = end - sc_steady_us();
        int r, slice = left > apr_time_from_msec(100) ? 100
                                                      : (int)apr_time_as_msec(left) + 1;
        if (stop && *stop) {
            errno = EINTR;
            return -1;
        }
        r = poll(pfd, 1, left > 0 ? slice : 0);
        if (r != 0 || left <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            return r;
        }
    }
}

typedef struct {
    int fd;
    SSL *ssl;
    volatile int *stop;
    apr_time_t deadline;               /* of the whole exchange */
    long read_ms;                      /* each wait */
} kconn;

/* 1: ready; 0: timed out (why says which); -1: poll failed */
static int wait_fd(kconn *c, int for_write, char *err, apr_size_t errlen, const char *what)
{
    struct pollfd pfd;
    apr_time_t left = c->deadline - sc_steady_us();
    long ms = c->read_ms;
    int r;
    if (left <= 0) {
        apr_snprintf(err, errlen, "%s: the exchange took longer than %d s", what,
                     SC_KUBE_TOTAL_MS / 1000);
        return 0;
    }
    if (apr_time_as_msec(left) < ms) {
        ms = (long)apr_time_as_msec(left) + 1;
    }
    pfd.fd = c->fd;
    pfd.events = for_write ? POLLOUT : POLLIN;
    pfd.revents = 0;
    r = poll_for(&pfd, ms, c->stop);
    if (r < 0) {
        apr_snprintf(err, errlen, "%s: poll: %s", what, strerror(errno));
        return -1;
    }
    if (r == 0) {
        apr_snprintf(err, errlen, "%s: no answer within readTimeout (%ld ms)", what, c->read_ms);
        return 0;
    }
    return 1;
}

/* the OpenSSL error queue as one line */
static void ssl_reason(char *buf, apr_size_t len)
{
    unsigned long e = ERR_get_error();
    if (e) {
        ERR_error_string_n(e, buf, len);
    }
    else {
        apr_snprintf(buf, len, "%s", errno ? strerror(errno) : "connection closed");
    }
    ERR_clear_error();
}

/* an SSL call's result: 1 done, 0 try again after waiting, -1 failed */
static int ssl_step(kconn *c, int r, char *err, apr_size_t errlen, const char *what)
{
    char reason[256];
    int e;
    if (r > 0) {
        return 1;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return wait_fd(c, e == SSL_ERROR_WANT_WRITE, err, errlen, what) == 1 ? 0 : -1;
    }
    ssl_reason(reason, sizeof(reason));
    apr_snprintf(err, errlen, "%s: %s", what, reason);
    return -1;
}

static int connect_to(kconn *c, apr_pool_t *tmp, const sc_kube *k, long connect_ms, char *err,
                      apr_size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char last[200] = "no address";
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(k->host, k->port, &hints, &res);
    if (rc != 0) {
        apr_snprintf(err, errlen, "cannot resolve %s port %s: %s", k->host, k->port,
                     gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        ai->ai_protocol);
        if (fd < 0) {
            apr_snprintf(last, sizeof(last), "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            struct pollfd pfd = { fd, POLLOUT, 0 };
            int r, soerr = 0;
            socklen_t sl = sizeof(soerr);
            r = poll_for(&pfd, connect_ms, c->stop);
            if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
                c->fd = fd;
                freeaddrinfo(res);
                return 0;
            }
            apr_snprintf(last, sizeof(last), "%s", r == 0
                         ? apr_psprintf(tmp, "no connection within connectTimeout (%ld ms)",
                                        connect_ms)
                         : strerror(soerr ? soerr : errno));
        }
        else {
            apr_snprintf(last, sizeof(last), "%s", strerror(errno));
        }
        close(fd);
    }
    freeaddrinfo(res);
    apr_snprintf(err, errlen, "cannot connect to %s port %s: %s", k->host, k->port, last);
    return -1;
}

static int tls_start(kconn *c, SSL_CTX **ctxp, const sc_kube *k, char *err, apr_size_t errlen)
{
    SSL_CTX *ctx;
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, k->host, ip) == 1 || inet_pton(AF_INET6, k->host, ip) == 1;
    char reason[256];
    int r;

    ERR_clear_error();
    ctx = *ctxp = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_reason(reason, sizeof(reason));
        apr_snprintf(err, errlen, "TLS: %s", reason);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_load_verify_locations(ctx, k->ca_file, NULL) != 1) {
        ssl_reason(reason, sizeof(reason));
        apr_snprintf(err, errlen, "cannot load the CA certificate %s (KUBERNETES_CA_CERTIFICATE_FILE "
                     "or the service account's ca.crt): %s", k->ca_file, reason);
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        ssl_reason(reason, sizeof(reason));
        apr_snprintf(err, errlen, "TLS: %s", reason);
        return -1;
    }
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), k->host);
    }
    else {
        SSL_set_tlsext_host_name(c->ssl, k->host);
        SSL_set1_host(c->ssl, k->host);
    }
    while ((r = ssl_step(c, SSL_connect(c->ssl), err, errlen, "TLS handshake")) == 0) {
    }
    if (r < 0) {
        long v = SSL_get_verify_result(c->ssl);
        if (v != X509_V_OK) {
            apr_snprintf(err, errlen, "the API server's certificate is not trusted: %s "
                         "(verified against %s and the name %s)",
                         X509_verify_cert_error_string(v), k->ca_file, k->host);
        }
        return -1;
    }
    return 0;
}

static int send_all(kconn *c, const char *buf, apr_size_t len, char *err, apr_size_t errlen)
{
    apr_size_t off = 0;
    while (off < len) {
        if (c->ssl) {
            int r, st;
            ERR_clear_error();
            r = SSL_write(c->ssl, buf + off, (int)(len - off));
            st = ssl_step(c, r, err, errlen, "sending the request");
            if (st < 0) {
                return -1;
            }
            if (st > 0) {
                off += (apr_size_t)r;
            }
        }
        else {
            ssize_t w = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
            if (w > 0) {
                off += (apr_size_t)w;
            }
            else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                if (wait_fd(c, 1, err, errlen, "sending the request") != 1) {
                    return -1;
                }
            }
            else {
                apr_snprintf(err, errlen, "sending the request: %s", strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}

/* >0 bytes read; 0 the end; -1 failed (err) */
static long recv_some(kconn *c, char *buf, apr_size_t cap, char *err, apr_size_t errlen)
{
    for (;;) {
        if (c->ssl) {
            int r, e;
            ERR_clear_error();
            r = SSL_read(c->ssl, buf, (int)cap);
            if (r > 0) {
                return r;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN) {
                return 0;
            }
            if (ssl_step(c, r, err, errlen, "reading the answer") < 0) {
                return -1;
            }
        }
        else {
            ssize_t r = recv(c->fd, buf, cap, 0);
            if (r >= 0) {
                return (long)r;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                if (wait_fd(c, 0, err, errlen, "reading the answer") != 1) {
                    return -1;
                }
                continue;
            }
            apr_snprintf(err, errlen, "reading the answer: %s", strerror(errno));
            return -1;
        }
    }
}

/* ---- the HTTP answer -------------------------------------------------------- */

/* Walks a chunked body at b[0..len): 1 complete (the body, decoded, written
 * at dst when dst is not NULL, its length in *out), 0 more is needed, -1
 * malformed. dst may be b (the decoded body is never longer). */
static int chunks(char *b, apr_size_t len, char *dst, apr_size_t *out)
{
    apr_size_t i = 0, o = 0;
    for (;;) {
        apr_size_t size = 0;
        int digits = 0;
        while (i < len && apr_isxdigit(b[i])) {
            if (++digits > 8) {
                return -1;
            }
            size = size * 16 + (apr_size_t)(apr_isdigit(b[i]) ? b[i] - '0'
                                            : (apr_tolower(b[i]) - 'a' + 10));
            i++;
        }
        while (i < len && b[i] != '\n') {          /* extensions, CR */
            i++;
        }
        if (i >= len) {
            return 0;
        }
        if (!digits) {
            return -1;
        }
        i++;
        if (size == 0) {
            /* trailers up to an empty line */
            for (;;) {
                apr_size_t s = i;
                while (i < len && b[i] != '\n') {
                    i++;
                }
                if (i >= len) {
                    return 0;
                }
                i++;
                if (i - s <= 2) {
                    if (out) {
                        *out = o;
                    }
                    return 1;
                }
            }
        }
        if (size > len || len - i < size + 1) {
            return size > SC_KUBE_MAX_RESPONSE ? -1 : 0;
        }
        if (dst) {
            memmove(dst + o, b + i, size);
        }
        o += size;
        i += size;
        if (b[i] == '\r') {
            i++;
        }
        if (i >= len) {
            return 0;
        }
        if (b[i] != '\n') {
            return -1;
        }
        i++;
    }
}

typedef struct {
    int status;
    char reason[64];
    apr_size_t head_len;               /* up to and with the empty line */
    int chunked;
    apr_int64_t content_length;        /* -1: none */
} khead;

/* 1 the headers are complete (h filled), 0 not yet, -1 malformed (err) */
static int parse_head(const char *b, apr_size_t len, khead *h, char *err, apr_size_t errlen)
{
    const char *end = NULL, *p, *line;
    apr_size_t lim = len < SC_KUBE_MAX_HEADERS ? len : SC_KUBE_MAX_HEADERS;
    apr_size_t i;
    for (i = 0; i + 3 < lim; i++) {
        if (b[i] == '\r' && b[i + 1] == '\n' && b[i + 2] == '\r' && b[i + 3] == '\n') {
            end = b + i + 2;
            h->head_len = i + 4;
            break;
        }
    }
    if (!end) {
        if (len >= SC_KUBE_MAX_HEADERS) {
            apr_snprintf(err, errlen, "the answer's headers are longer than %d bytes",
                         SC_KUBE_MAX_HEADERS);
            return -1;
        }
        return 0;
    }
    if (len < 12 || strncmp(b, "HTTP/1.", 7) != 0 || !apr_isdigit(b[9]) || !apr_isdigit(b[10])
        || !apr_isdigit(b[11])) {
        apr_snprintf(err, errlen, "the answer is not HTTP/1.x");
        return -1;
    }
    h->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    h->reason[0] = '\0';
    p = b + 12;
    while (*p == ' ') {
        p++;
    }
    for (i = 0; i < sizeof(h->reason) - 1 && p[i] != '\r' && p[i] != '\n'; i++) {
        h->reason[i] = apr_isprint(p[i]) ? p[i] : '?';
    }
    h->reason[i] = '\0';
    h->chunked = 0;
    h->content_length = -1;
    for (line = memchr(b, '\n', (apr_size_t)(end - b)); line && line + 1 < end;
         line = memchr(line + 1, '\n', (apr_size_t)(end - line - 1))) {
        const char *l = line + 1;
        if (!strncasecmp(l, "Content-Length:", 15)) {
            char *stop;
            apr_int64_t v = apr_strtoi64(l + 15, &stop, 10);
            if (v < 0 || stop == l + 15) {
                apr_snprintf(err, errlen, "the answer's Content-Length is not a number");
                return -1;
            }
            h->content_length = v;
        }
        else if (!strncasecmp(l, "Transfer-Encoding:", 18)) {
            const char *e = memchr(l, '\n', (apr_size_t)(end - l));
            apr_size_t n = e ? (apr_size_t)(e - l) : 0;
            for (i = 18; i + 7 <= n; i++) {
                if (!strncasecmp(l + i, "chunked", 7)) {
                    h->chunked = 1;
                }
            }
        }
    }
    return 1;
}

/* ---- the PodList ------------------------------------------------------------ */

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v)
        && json_object_is_type(v, json_type_string)) {
        return json_object_get_string(v);
    }
    return NULL;
}

static json_object *jobj(json_object *o, const char *key)
{
    json_object *v;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v)
        && json_object_is_type(v, json_type_object)) {
        return v;
    }
    return NULL;
}

static json_object *parse_json(const char *body, apr_size_t len, char *err, apr_size_t errlen)
{
    json_tokener *tok = json_tokener_new_ex(SC_KUBE_JSON_DEPTH);
    json_object *root;
    enum json_tokener_error je;
    if (!tok) {
        apr_snprintf(err, errlen, "out of memory");
        return NULL;
    }
    root = json_tokener_parse_ex(tok, body, (int)len);
    je = json_tokener_get_error(tok);
    if (!root || je != json_tokener_success) {
        apr_snprintf(err, errlen, "the answer is not JSON: %s at byte %" APR_SIZE_T_FMT,
                     je == json_tokener_continue ? "it ends too early"
                                                 : json_tokener_error_desc(je),
                     (apr_size_t)json_tokener_get_parse_end(tok));
        if (root) {
            json_object_put(root);
            root = NULL;
        }
    }
    json_tokener_free(tok);
    return root;
}

/* printable, at most 300 characters */
static const char *clean(apr_pool_t *p, const char *s, apr_size_t len)
{
    apr_size_t n = len > 300 ? 300 : len, i;
    char *o = apr_palloc(p, n + 4);
    for (i = 0; i < n; i++) {
        o[i] = apr_isprint(s[i]) ? s[i] : ' ';
    }
    strcpy(o + n, len > n ? "..." : "");
    return o;
}

static int pods(sc_kube *k, apr_pool_t *tmp, json_object *root, char (*addrs)[INET6_ADDRSTRLEN], int max, int *n,
                char *note, apr_size_t notelen, char *err, apr_size_t errlen)
{
    json_object *items;
    apr_size_t i, count;
    int invalid = 0, not_running = 0, over = 0;

    *n = 0;
    if (!json_object_is_type(root, json_type_object)
        || !json_object_object_get_ex(root, "items", &items)
        || !json_object_is_type(items, json_type_array)) {
        const char *kind = jstr(root, "kind");
        apr_snprintf(err, errlen, "the answer is no PodList (no \"items\" array%s%s)",
                     kind ? "; kind " : "", kind ? clean(tmp, kind, strlen(kind)) : "");
        return -1;
    }
    count = json_object_array_length(items);
    for (i = 0; i < count; i++) {
        json_object *pod = json_object_array_get_idx(items, i);
        json_object *meta = jobj(pod, "metadata"), *status = jobj(pod, "status");
        const char *name = jstr(meta, "name"), *phase, *ip;
        unsigned char bin[16];
        char text[INET6_ADDRSTRLEN];
        int fam, j, dup = 0;

        if (!meta || !name || !status) {
            invalid++;
            continue;
        }
        phase = jstr(status, "phase");
        if (!phase || strcmp(phase, "Running") != 0) {
            not_running++;
            continue;
        }
        ip = jstr(status, "podIP");
        fam = !ip ? 0 : inet_pton(AF_INET, ip, bin) == 1 ? AF_INET
                      : inet_pton(AF_INET6, ip, bin) == 1 ? AF_INET6 : 0;
        if (!fam || !inet_ntop(fam, bin, text, sizeof(text))) {
            invalid++;
            continue;
        }
        if ((k->own_name[0] && !strcmp(name, k->own_name)) || !strcmp(text, k->self_addr)) {
            continue;                          /* this member */
        }
        for (j = 0; j < *n; j++) {
            dup |= !strcmp(addrs[j], text);
        }
        if (dup) {
            continue;
        }
        if (*n >= max) {
            over++;
            continue;
        }
        apr_cpystrn(addrs[(*n)++], text, INET6_ADDRSTRLEN);
    }
    note[0] = '\0';
    if (invalid || not_running || over) {
        apr_snprintf(note, notelen, "%" APR_SIZE_T_FMT " pod(s) listed; %d not running, %d "
                     "without name, status or a valid podIP%s", count, not_running, invalid,
                     over ? apr_psprintf(tmp, ", %d over the limit of %d members", over, max)
                          : "");
    }
    return 0;
}

/* ---- one request ---------------------------------------------------------------- */

int sc_kube_fetch(sc_kube *k, apr_pool_t *tmp, char (*addrs)[INET6_ADDRSTRLEN], int max,
                  int *n, char *note, apr_size_t notelen, char *err, apr_size_t errlen)
{
    kconn c = { -1, NULL, k->stop, 0, 0 };
    SSL_CTX *ctx = NULL;
    char *buf = NULL, *token = NULL;
    apr_size_t len = 0, cap = 0;
    const char *req;
    char why[300];
    khead h;
    int rc = -1, got_head = 0;
    json_object *root = NULL;

    *n = 0;
    err[0] = '\0';
    note[0] = '\0';
    if (k->problem) {
        apr_snprintf(err, errlen, "%s", k->problem);
        return -1;
    }
    token = read_small_file(tmp, k->token_file, SC_KUBE_MAX_TOKEN, why, sizeof(why));
    if (!token) {
        apr_snprintf(err, errlen, "the service account token: %s (SA_TOKEN_FILE names "
                     "another file; it must be readable by httpd's User)", why);
        return -1;
    }
    if (!*token || token[strcspn(token, "\r\n")]) {
        apr_snprintf(err, errlen, "the service account token in %s is %s", k->token_file,
                     *token ? "more than one line" : "empty");
        return -1;
    }
    c.read_ms = k->read_ms;
    c.deadline = sc_steady_us() + apr_time_from_msec(SC_KUBE_TOTAL_MS);
    if (connect_to(&c, tmp, k, k->connect_ms, err, errlen) != 0) {
        goto done;
    }
    if (k->tls && tls_start(&c, &ctx, k, err, errlen) != 0) {
        goto done;
    }
    req = apr_psprintf(tmp, "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                       "Authorization: Bearer %s\r\nAccept: application/json\r\n"
                       "User-Agent: mod_session_cluster\r\nConnection: close\r\n\r\n",
                       k->path, strchr(k->host, ':') ? "[" : "", k->host,
                       strchr(k->host, ':') ? "]" : "", k->port, token);
    if (send_all(&c, req, strlen(req), err, errlen) != 0) {
        goto done;
    }
    for (;;) {
        const apr_size_t limit = SC_KUBE_MAX_RESPONSE + SC_KUBE_MAX_HEADERS;
        long r;
        if (len >= limit) {
            apr_snprintf(err, errlen, "the answer is larger than %d MiB (a label selector "
                         "in KUBERNETES_LABELS makes it smaller)",
                         SC_KUBE_MAX_RESPONSE / (1024 * 1024));
            goto done;
        }
        if (cap - len < 16384 && cap < limit + 1) {
            apr_size_t ncap = cap ? cap * 2 : 65536;
            char *nb;
            if (ncap > limit + 1) {
                ncap = limit + 1;
            }
            nb = realloc(buf, ncap);
            if (!nb) {
                apr_snprintf(err, errlen, "out of memory for the answer");
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        r = recv_some(&c, buf + len, cap - len - 1, err, errlen);
        if (r < 0) {
            goto done;
        }
        len += (apr_size_t)r;
        if (!got_head) {
            got_head = parse_head(buf, len, &h, err, errlen);
            if (got_head < 0) {
                goto done;
            }
        }
        if (got_head) {
            apr_size_t body = len - h.head_len;
            if (h.chunked ? chunks(buf + h.head_len, body, NULL, NULL) != 0
                          : h.content_length >= 0 && (apr_int64_t)body >= h.content_length) {
                break;
            }
            if (h.content_length > SC_KUBE_MAX_RESPONSE) {
                /* the same words as a streamed one: the log line once */
                apr_snprintf(err, errlen, "the answer is larger than %d MiB (a label selector "
                             "in KUBERNETES_LABELS makes it smaller)",
                             SC_KUBE_MAX_RESPONSE / (1024 * 1024));
                goto done;
            }
        }
        if (r == 0) {
            break;
        }
    }
    if (!got_head) {
        apr_snprintf(err, errlen, "the connection closed before the answer's headers");
        goto done;
    }
    {
        char *body = buf + h.head_len;
        apr_size_t blen = len - h.head_len;
        if (h.chunked) {
            int cr = chunks(body, blen, body, &blen);
            if (cr != 1) {
                apr_snprintf(err, errlen, "the answer's chunked body is %s",
                             cr == 0 ? "cut short" : "malformed");
                goto done;
            }
        }
        else if (h.content_length >= 0) {
            if ((apr_int64_t)blen < h.content_length) {
                apr_snprintf(err, errlen, "the answer is cut short (%" APR_SIZE_T_FMT " of %"
                             APR_INT64_T_FMT " bytes)", blen, h.content_length);
                goto done;
            }
            blen = (apr_size_t)h.content_length;
        }
        if (h.status != 200) {
            /* the API server's Status object says why (403: the service
             * account may not list pods) */
            json_object *st = blen ? parse_json(body, blen, why, sizeof(why)) : NULL;
            const char *msg = jstr(st, "message");
            apr_snprintf(err, errlen, "the API server answered %d %s%s%s", h.status,
                         clean(tmp, h.reason, strlen(h.reason)), msg ? ": " : "",
                         msg ? clean(tmp, msg, strlen(msg)) : "");
            if (st) {
                json_object_put(st);
            }
            goto done;
        }
        root = parse_json(body, blen, err, errlen);
        if (!root) {
            goto done;
        }
        rc = pods(k, tmp, root, addrs, max, n, note, notelen, err, errlen);
    }

done:
    if (root) {
        json_object_put(root);
    }
    free(buf);
    if (c.ssl) {
        SSL_free(c.ssl);
    }
    if (ctx) {
        SSL_CTX_free(ctx);
    }
    if (c.fd >= 0) {
        close(c.fd);
    }
    if (token) {
        OPENSSL_cleanse(token, strlen(token));
    }
    return rc;
}
