/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * mod_session_cluster_demo.c -- the demo application (not part of the module):
 * like the TomcatA/TomcatB JSP page of the Tomcat clustering documents, it shows
 * which member answered (in its own colour), the session id, when the session
 * was created and a counter that every request increments.  It only uses
 * mod_session's public functions, so it works with any session provider.
 *
 *   SetHandler session-cluster-demo
 *   GET /demo            HTML page, counter + 1
 *   GET /demo?auto       the same as "Key: value" text
 *   GET /demo?read       show without incrementing (text)
 *   GET /demo?invalidate end the session (text)
 *   GET /demo?set=KEY&value=VALUE   set an attribute (text)
 */
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_log.h"
#include "http_core.h"
#include "util_script.h"
#include "apr_strings.h"
#include "apr_optional.h"
#include "mod_session.h"

module AP_MODULE_DECLARE_DATA session_cluster_demo_module;

static APR_OPTIONAL_FN_TYPE(ap_session_load) *demo_load;
static APR_OPTIONAL_FN_TYPE(ap_session_get) *demo_get;
static APR_OPTIONAL_FN_TYPE(ap_session_set) *demo_set;

static const char *colour(const char *route)
{
    static const char *const c[] = { "#c0392b", "#2471a3", "#229954", "#b9770e",
                                     "#7d3c98", "#148f77" };
    unsigned h = 0;
    for (; route && *route; route++) {
        h = h * 31 + (unsigned char)*route;
    }
    return c[h % 6];
}

static int demo_handler(request_rec *r)
{
    apr_table_t *args = NULL;
    session_rec *z = NULL;
    const char *counter = NULL, *created = NULL, *id, *route;
    long n;
    int text;

    if (!r->handler || strcmp(r->handler, "session-cluster-demo")) {
        return DECLINED;
    }
    if (!demo_load || !demo_get || !demo_set) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "demo: mod_session is not loaded");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_args_to_table(r, &args);
    text = apr_table_get(args, "auto") || apr_table_get(args, "read")
           || apr_table_get(args, "invalidate") || apr_table_get(args, "set");
    if (demo_load(r, &z) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!z) {
        /* Session Off here: the page without a session (a benchmark baseline) */
        ap_set_content_type(r, "text/plain");
        ap_rputs("Session: none\n", r);
        return OK;
    }
    route = apr_table_get(r->subprocess_env, "SESSION_CLUSTER_ROUTE");
    if (!route) {
        route = ap_get_server_name(r);
    }
    if (apr_table_get(args, "invalidate")) {
        apr_table_clear(z->entries);
        z->dirty = 1;
        ap_set_content_type(r, "text/plain");
        ap_rprintf(r, "Route: %s\nInvalidated: yes\n", route);
        return OK;
    }
    if (apr_table_get(args, "set")) {
        const char *v = apr_table_get(args, "value");
        const char *fill = apr_table_get(args, "fill");
        if (fill) {
            /* fill=N: a value of N bytes ("0123456789abcdef" over and over),
             * for sessions larger than a URL can carry; at most 64 MiB */
            static const char pat[] = "0123456789abcdef";
            long len = atol(fill), i;
            char *buf;
            if (len < 0 || len > 64L * 1024 * 1024) {
                return HTTP_BAD_REQUEST;
            }
            buf = apr_palloc(r->pool, (apr_size_t)len + 1);
            for (i = 0; i < len; i++) {
                buf[i] = pat[i % 16];
            }
            buf[len] = '\0';
            v = buf;
        }
        demo_set(r, z, apr_table_get(args, "set"), v);
    }
    demo_get(r, z, "counter", &counter);
    demo_get(r, z, "created", &created);
    n = counter ? atol(counter) : 0;
    if (!apr_table_get(args, "read") && !apr_table_get(args, "set")) {
        n++;
        demo_set(r, z, "counter", apr_ltoa(r->pool, n));
        if (!created) {
            char buf[APR_RFC822_DATE_LEN];
            apr_rfc822_date(buf, apr_time_now());
            created = apr_pstrdup(r->pool, buf);
            demo_set(r, z, "created", created);
        }
    }
    id = apr_table_get(r->notes, "SESSION_CLUSTER_ID");
    if (text) {
        const apr_array_header_t *a = apr_table_elts(z->entries);
        const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
        int i;
        ap_set_content_type(r, "text/plain");
        ap_rprintf(r, "Route: %s\nSession: %s\nCounter: %ld\nCreated: %s\n", route,
                   id ? id : "(new)", n, created ? created : "");
        for (i = 0; i < a->nelts; i++) {
            ap_rprintf(r, "Attribute: %s=%s\n", e[i].key, e[i].val);
        }
        return OK;
    }
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rprintf(r, "<!DOCTYPE html><html><head><title>Session on %s</title></head>"
               "<body style=\"font-family: sans-serif\"><h1 style=\"color: %s\">%s</h1>"
               "<table border=\"1\" style=\"border-collapse: collapse\">"
               "<tr><th>Session id</th><td>%s</td></tr>"
               "<tr><th>Created</th><td>%s</td></tr>"
               "<tr><th>Counter</th><td>%ld</td></tr></table></body></html>\n",
               ap_escape_html(r->pool, route), colour(route), ap_escape_html(r->pool, route),
               ap_escape_html(r->pool, id ? id : "(new)"),
               ap_escape_html(r->pool, created ? created : ""), n);
    return OK;
}

static void demo_optional(void)
{
    demo_load = APR_RETRIEVE_OPTIONAL_FN(ap_session_load);
    demo_get = APR_RETRIEVE_OPTIONAL_FN(ap_session_get);
    demo_set = APR_RETRIEVE_OPTIONAL_FN(ap_session_set);
}

static void demo_register_hooks(apr_pool_t *p)
{
    ap_hook_handler(demo_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_optional_fn_retrieve(demo_optional, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA session_cluster_demo_module = {
    STANDARD20_MODULE_STUFF,
    NULL, NULL, NULL, NULL, NULL,
    demo_register_hooks,
    0
};
