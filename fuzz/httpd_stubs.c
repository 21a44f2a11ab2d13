/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * httpd_stubs.c -- the httpd symbols the module's sources need that are not
 * in a library (they live in the httpd binary itself), for the fuzz targets
 * that compile those sources.  Each replaces the httpd function of the same
 * name; `nm -u` of the module's objects lists them.  Minimal on purpose:
 *
 *   session_cluster_module   the module record (APLOG_USE_MODULE takes its
 *                            index); zeroed: module_index 0, nothing reads more.
 *   ap_log_error_,           no-ops: log lines are not checked.
 *   ap_log_rerror_
 *   ap_log_assert            httpd logs and abort()s; so does this.
 *   ap_pregcomp              NOT a regex compiler: returns a pool-allocated
 *                            dummy ap_regex_t, so every pattern is accepted
 *                            (httpd compiles with PCRE2 and refuses bad ones).
 *                            sc_config.c only stores the result.
 *   ap_resolve_env           a copy of the text, no ${VAR} expansion (only
 *                            sc_config_read_block, the directive reader, calls it).
 *   ap_varbuf_init,          a real, simplified version (sc_config_parse_text
 *   ap_varbuf_strmemcat      builds its text with them): the buffer is malloc'd
 *                            to exactly its length + NUL, so AddressSanitizer
 *                            sees a read past the end, and freed when its pool
 *                            is cleared or destroyed.
 *   ap_unescape_urlencoded   a real one, written from httpd's documented rules
 *                            (server/util.c; no code taken): '+' becomes a
 *                            space, "%XX" (two hex digits) the byte XX, in
 *                            place.  A '%' without two hex digits after it
 *                            stays and the result is HTTP_BAD_REQUEST; an
 *                            escape of NUL gives HTTP_NOT_FOUND; both go on to
 *                            the end of the string.  OK otherwise.
 *                            sc_session_decode (fuzz_session_decode) calls it.
 *   ap_escape_urlencoded_buffer  a real one, from httpd's documented rules:
 *                            letters, digits and ".-*_" as themselves, a space
 *                            as '+', any other byte as "%xx" (lower-case hex,
 *                            as httpd's c2x writes).
 *                            sc_session.c's encoder learns from it which bytes
 *                            those are (fuzz_session_decode).
 *   ap_strcasestr            a real one (case-insensitive strstr).
 *   ap_varbuf_cfg_getline,   abort() if ever called: the directive reader, the
 *   ap_varbuf_free,          request paths of sc_session.c (cookies, the
 *   ap_cookie_write,         ReplicationValve filter, the scheme) are not
 *   ap_cookie_remove,        reached by the targets that link them.
 *   ap_regexec,
 *   ap_run_http_scheme,
 *   ap_runtime_dir_relative  (the engine's listeners: not reached either)
 *   ap_unixd_config          zeroed (the same)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_regex.h"
#include "util_varbuf.h"
#include "util_cookies.h"
#include "http_protocol.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "unixd.h"

module AP_MODULE_DECLARE_DATA session_cluster_module;

AP_DECLARE(void) ap_log_error_(const char *file, int line, int module_index, int level,
                               apr_status_t status, const server_rec *s,
                               const char *fmt, ...)
{
}

AP_DECLARE(void) ap_log_rerror_(const char *file, int line, int module_index, int level,
                                apr_status_t status, const request_rec *r,
                                const char *fmt, ...)
{
}

AP_DECLARE(void) ap_log_assert(const char *szExp, const char *szFile, int nLine)
{
    fprintf(stderr, "ap_assert(%s) failed at %s:%d\n", szExp, szFile, nLine);
    abort();
}

AP_DECLARE(ap_regex_t *) ap_pregcomp(apr_pool_t *p, const char *pattern, int cflags)
{
    return apr_pcalloc(p, sizeof(ap_regex_t));
}

AP_DECLARE(const char *) ap_resolve_env(apr_pool_t *p, const char *word)
{
    return apr_pstrdup(p, word);
}

struct ap_varbuf_info {
    char *mem;                 /* what vb->buf points to, malloc'd */
};

static apr_status_t varbuf_cleanup(void *data)
{
    struct ap_varbuf_info *info = data;
    free(info->mem);
    info->mem = NULL;
    return APR_SUCCESS;
}

AP_DECLARE(void) ap_varbuf_init(apr_pool_t *pool, struct ap_varbuf *vb,
                                apr_size_t init_size)
{
    vb->pool = pool;
    vb->info = apr_pcalloc(pool, sizeof(*vb->info));
    vb->info->mem = calloc(1, 1);
    if (!vb->info->mem) {
        abort();
    }
    apr_pool_cleanup_register(pool, vb->info, varbuf_cleanup, apr_pool_cleanup_null);
    vb->buf = vb->info->mem;
    vb->avail = 0;
    vb->strlen = 0;
}

AP_DECLARE(void) ap_varbuf_strmemcat(struct ap_varbuf *vb, const char *str, int len)
{
    apr_size_t have;
    char *mem;
    if (len <= 0) {
        return;
    }
    have = vb->strlen == AP_VARBUF_UNKNOWN ? strlen(vb->buf) : vb->strlen;
    mem = realloc(vb->info->mem, have + (apr_size_t)len + 1);
    if (!mem) {
        abort();
    }
    memcpy(mem + have, str, (apr_size_t)len);
    mem[have + (apr_size_t)len] = '\0';
    vb->info->mem = vb->buf = mem;
    vb->strlen = have + (apr_size_t)len;
    vb->avail = vb->strlen;
}

AP_DECLARE(apr_status_t) ap_varbuf_cfg_getline(struct ap_varbuf *vb, ap_configfile_t *cfp,
                                               apr_size_t max_len)
{
    fprintf(stderr, "httpd_stubs: ap_varbuf_cfg_getline is not available here\n");
    abort();
}

AP_DECLARE(void) ap_varbuf_free(struct ap_varbuf *vb)
{
    fprintf(stderr, "httpd_stubs: ap_varbuf_free is not available here\n");
    abort();
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

AP_DECLARE(int) ap_unescape_urlencoded(char *query)
{
    char *in, *out;
    int bad_escape = 0, nul = 0;
    if (!query) {
        return OK;
    }
    for (in = out = query; *in; in++, out++) {
        int hi, lo;
        if (*in == '+') {
            *out = ' ';
        }
        else if (*in != '%') {
            *out = *in;
        }
        else if ((hi = hex_value(in[1])) < 0 || (lo = hex_value(in[2])) < 0) {
            *out = '%';
            bad_escape = 1;
        }
        else {
            *out = (char)(hi * 16 + lo);
            nul |= *out == '\0';
            in += 2;
        }
    }
    *out = '\0';
    return bad_escape ? HTTP_BAD_REQUEST : nul ? HTTP_NOT_FOUND : OK;
}

AP_DECLARE(char *) ap_escape_urlencoded_buffer(char *copy, const char *buffer)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *in = (const unsigned char *)buffer;
    char *out = copy;
    for (; *in; in++) {
        if (apr_isalnum(*in) || strchr(".-*_", *in)) {
            *out++ = (char)*in;
        }
        else if (*in == ' ') {
            *out++ = '+';
        }
        else {
            *out++ = '%';
            *out++ = hex[*in >> 4];
            *out++ = hex[*in & 15];
        }
    }
    *out = '\0';
    return copy;
}

AP_DECLARE(char *) ap_strcasestr(const char *s1, const char *s2)
{
    apr_size_t n = strlen(s2);
    for (; *s1; s1++) {
        if (!strncasecmp(s1, s2, n)) {
            return (char *)s1;
        }
    }
    return *s2 ? NULL : (char *)s1;
}

static void not_here(const char *what)
{
    fprintf(stderr, "httpd_stubs: %s is not available here\n", what);
    abort();
}

AP_DECLARE(apr_status_t) ap_cookie_write(request_rec *r, const char *name, const char *val,
                                         const char *attrs, long maxage, ...)
{
    not_here("ap_cookie_write");
    return APR_EGENERAL;
}

AP_DECLARE(apr_status_t) ap_cookie_remove(request_rec *r, const char *name,
                                          const char *attrs, ...)
{
    not_here("ap_cookie_remove");
    return APR_EGENERAL;
}

AP_DECLARE(int) ap_regexec(const ap_regex_t *preg, const char *string, apr_size_t nmatch,
                           ap_regmatch_t *pmatch, int eflags)
{
    not_here("ap_regexec");
    return AP_REG_NOMATCH;
}

AP_DECLARE(const char *) ap_run_http_scheme(const request_rec *r)
{
    not_here("ap_run_http_scheme");
    return NULL;
}

AP_DECLARE(char *) ap_runtime_dir_relative(apr_pool_t *p, const char *fname)
{
    fprintf(stderr, "httpd_stubs: ap_runtime_dir_relative is not provided\n");
    abort();
}

AP_DECLARE_DATA unixd_config_rec ap_unixd_config;
