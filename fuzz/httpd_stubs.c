/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * httpd_stubs.c -- the few httpd symbols sc_config.c needs that are not in a
 * library (they live in the httpd binary itself), for fuzz_config only.  Each
 * replaces the httpd function of the same name; `nm -u` of sc_config.o and
 * sc_classes.o lists exactly these.  Minimal on purpose:
 *
 *   session_cluster_module   the module record (APLOG_USE_MODULE takes its
 *                            index); zeroed, nothing reads more.
 *   ap_log_error_            a no-op: warnings (sc_warn_once) are not checked.
 *   ap_log_assert            httpd logs and abort()s; so does this.
 *   ap_pregcomp              NOT a regex compiler: returns a pool-allocated
 *                            dummy ap_regex_t, so every pattern is accepted
 *                            (httpd compiles with PCRE2 and refuses bad ones).
 *                            sc_config.c only stores the result; nothing here
 *                            calls ap_regexec on it.
 *   ap_resolve_env           a copy of the text, no ${VAR} expansion (only
 *                            sc_config_read_block, the directive reader, calls it).
 *   ap_varbuf_init,          a real, simplified version (sc_config_parse_text
 *   ap_varbuf_strmemcat      builds its text with them): the buffer is malloc'd
 *                            to exactly its length + NUL, so AddressSanitizer
 *                            sees a read past the end, and freed when its pool
 *                            is cleared or destroyed.
 *   ap_varbuf_cfg_getline,   used only by sc_config_read_block (the directive
 *   ap_varbuf_free           reader, which needs a real httpd config file):
 *                            abort() if ever called.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_regex.h"
#include "util_varbuf.h"
#include "apr_strings.h"

module AP_MODULE_DECLARE_DATA session_cluster_module;

AP_DECLARE(void) ap_log_error_(const char *file, int line, int module_index, int level,
                               apr_status_t status, const server_rec *s,
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
