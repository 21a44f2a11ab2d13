/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_dump.c -- the effective configuration as text.
 *
 * One line per setting, "Element.attribute = value  # origin", so that users see
 * what their pasted block means (defaults, Tomcat 5.5 names, derived values,
 * and "no effect" for what the module takes into no setting) and tests can
 * match single lines.  Printed by `httpd -t -D DUMP_CLUSTER` and by the
 * cluster-manager page.  Keys never leak: an encryptionKey prints as its size.
 * The same walk hands every value to sc_config_visit()'s visitor, keys as their
 * bytes, for the fingerprint of the configuration (sc_supervisor.c).
 */
#include "sc_private.h"

const char *sc_value_text(apr_pool_t *p, const sc_attr_def *def, const sc_value_t *v)
{
    switch (def->type) {
    case SC_T_INT:
        return v->num == -1 && !def->defval && def->min >= 0 ? "(unset)"
                                                             : apr_ltoa(p, v->num);
    case SC_T_BOOL:
        return v->num == -1 ? "(unset)" : (v->num ? "true" : "false");
    case SC_T_SENDOPTS:
        return apr_psprintf(p, "%ld (%s)", v->num, sc_send_options_names(p, v->num));
    case SC_T_REGEX:
    case SC_T_REGEX55:
        return v->str && *v->str ? v->str : "(none)";
    case SC_T_HEXKEY:
        return v->nbytes ? apr_psprintf(p, "(set, %d-bit key)", v->nbytes * 8) : "(unset)";
    case SC_T_UNIQUEID: {
        const char *s = NULL;
        int i;
        if (v->nbytes != 16) {
            return "(unset)";
        }
        for (i = 0; i < 16; i++) {
            s = apr_psprintf(p, "%s%s%d", s ? s : "{", i ? "," : "",
                             (int)(signed char)v->bytes[i]);
        }
        return apr_pstrcat(p, s, "}", NULL);
    }
    default:
        return v->str ? v->str : "(unset)";
    }
}

static const char *origin(apr_pool_t *p, const sc_elem_t *el, int i)
{
    const sc_attr_def *def = &el->cls->attrs[i];
    const char *unit = def->unit ? apr_pstrcat(p, def->unit, ", ", NULL) : "";
    if (!el->used[i]) {
        /* the reader took it into no setting (sc_config.c): it changes nothing */
        switch (el->srcs[i]) {
        case SC_SRC_BLOCK:
            return apr_psprintf(p, "%sno effect (written in the block)", unit);
        case SC_SRC_LEGACY:
            return apr_psprintf(p, "%sno effect (written as Tomcat 5.5 %s)", unit,
                                def->legacy);
        case SC_SRC_PREFIX:
            return apr_psprintf(p, "%sno effect (written as a prefixed attribute on "
                                "<Cluster>)", unit);
        case SC_SRC_DERIVED:
            return apr_psprintf(p, "%sderived, no effect", unit);
        default:
            return apr_psprintf(p, "%sdefault, no effect", unit);
        }
    }
    switch (el->srcs[i]) {
    case SC_SRC_BLOCK:
        return apr_psprintf(p, "%sset in the block", unit);
    case SC_SRC_LEGACY:
        return apr_psprintf(p, "%sset as Tomcat 5.5 %s", unit, def->legacy);
    case SC_SRC_PREFIX:
        return apr_psprintf(p, "%sset by a prefixed attribute on <Cluster>", unit);
    case SC_SRC_DERIVED:
        return apr_psprintf(p, "%sderived", unit);
    default:
        return apr_psprintf(p, "%sdefault", unit);
    }
}

/* One walk over the configuration serves the dump (lines of text) and the
 * engine's fingerprint (a visitor that sees every value, the masked ones as
 * their bytes). */
typedef struct {
    apr_pool_t *p;
    apr_array_header_t *lines;        /* the dump, or NULL */
    sc_config_visit_fn *visit;        /* the fingerprint, or NULL */
    void *baton;
} walk_ctx;

static void visit_text(walk_ctx *w, const char *key, const char *text)
{
    w->visit(w->baton, key, text, strlen(text));
}

/* A value for the visitor: what it is, not how the dump prints it.  A key is
 * printed only by its size, so the visitor gets its bytes (a new key of the
 * same size is a change); text values come as written, marked set or unset
 * (the dump's "(unset)" and "(none)" could be a value written as such). */
static void visit_value(walk_ctx *w, const char *key, const sc_attr_def *def,
                        const sc_value_t *v)
{
    switch (def->type) {
    case SC_T_HEXKEY:
        w->visit(w->baton, key, v->bytes, v->nbytes > 0 ? (apr_size_t)v->nbytes : 0);
        return;
    case SC_T_INT:
    case SC_T_BOOL:
    case SC_T_SENDOPTS:
    case SC_T_UNIQUEID:
        /* numbers (or "(unset)"), printed in full */
        visit_text(w, key, sc_value_text(w->p, def, v));
        return;
    case SC_T_REGEX:
    case SC_T_REGEX55:
        /* an empty filter and no filter are the same */
        visit_text(w, key, v->str ? v->str : "");
        return;
    default:
        visit_text(w, key, v->str ? apr_pstrcat(w->p, "=", v->str, NULL) : "");
        return;
    }
}

static void dump_elem(walk_ctx *w, const char *key, const sc_elem_t *el)
{
    apr_pool_t *p = w->p;
    int i;

    if (w->lines) {
        const char *where = el->line ? apr_psprintf(p, "line %d", el->line)
                                     : "added by default";
        if (el->cls->ignored_reason) {
            where = apr_pstrcat(p, where, ", ignored: ", el->cls->ignored_reason, NULL);
        }
        else if (el->cls->kind == SC_EL_INTERCEPTOR && !sc_interceptor_runs(el->cls->id)) {
            where = apr_pstrcat(p, where, ", not run here: no effect", NULL);
        }
        if (sc_class_caveat(el->cls)) {
            where = apr_pstrcat(p, where, ", ", sc_class_caveat(el->cls), NULL);
        }
        if (sc_class_note(el->cls)) {
            where = apr_pstrcat(p, where, ", ", sc_class_note(el->cls), NULL);
        }
        APR_ARRAY_PUSH(w->lines, const char *) =
            apr_psprintf(p, "%s.className = %s  # %s", key, el->class_name, where);
    }
    if (w->visit) {
        visit_text(w, apr_pstrcat(p, key, ".className", NULL), el->class_name);
    }
    for (i = 0; el->cls->attrs[i].name; i++) {
        const sc_attr_def *def = &el->cls->attrs[i];
        const sc_value_t *v = &el->values[i];
        /* attributes only Tomcat 5.5 had show only when they were written */
        if (def->legacy && !*def->legacy && el->srcs[i] == SC_SRC_DEFAULT) {
            continue;
        }
        if (w->lines) {
            APR_ARRAY_PUSH(w->lines, const char *) =
                apr_psprintf(p, "%s.%s = %s  # %s", key, def->name,
                             sc_value_text(p, def, v), origin(p, el, i));
        }
        if (w->visit) {
            visit_value(w, apr_pstrcat(p, key, ".", def->name, NULL), def, v);
        }
    }
}

static void dump_list(walk_ctx *w, const char *key, apr_array_header_t *els)
{
    int i;
    for (i = 0; i < els->nelts; i++) {
        dump_elem(w, apr_psprintf(w->p, "%s.%d", key, i + 1),
                  APR_ARRAY_IDX(els, i, const sc_elem_t *));
    }
}

static void walk(walk_ctx *w, const sc_cluster_cfg *cfg)
{
    apr_pool_t *p = w->p;

    dump_elem(w, "Cluster", cfg->cluster);
    dump_elem(w, "Manager", cfg->manager);
    if (cfg->session_id_generator) {
        dump_elem(w, "SessionIdGenerator", cfg->session_id_generator);
    }
    dump_elem(w, "Channel", cfg->channel);
    dump_elem(w, "Membership", cfg->membership);
    if (cfg->local_member) {
        dump_elem(w, "LocalMember", cfg->local_member);
    }
    dump_list(w, "Member", cfg->members);
    dump_elem(w, "Receiver", cfg->receiver);
    /* the Sender's attributes are the Transport's (sc_config.c) */
    if (w->lines) {
        APR_ARRAY_PUSH(w->lines, const char *) =
            apr_psprintf(p, "Sender.className = %s  # %s", cfg->sender->class_name,
                         cfg->sender->line ? apr_psprintf(p, "line %d", cfg->sender->line)
                                           : "added by default");
    }
    if (w->visit) {
        visit_text(w, "Sender.className", cfg->sender->class_name);
    }
    dump_elem(w, "Transport", cfg->transport);
    dump_list(w, "Interceptor", cfg->interceptors);
    dump_list(w, "Valve", cfg->valves);
    if (cfg->deployer) {
        dump_elem(w, "Deployer", cfg->deployer);
    }
    dump_list(w, "ClusterListener", cfg->listeners);
}

void sc_config_visit(apr_pool_t *p, const sc_cluster_cfg *cfg, sc_config_visit_fn *visit,
                     void *baton)
{
    walk_ctx w = { p, NULL, visit, baton };
    walk(&w, cfg);
}

void sc_config_dump(apr_pool_t *p, const sc_cluster_cfg *cfg, apr_array_header_t *lines)
{
    walk_ctx w = { p, lines, NULL, NULL };
    int i;

    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(p, "# <Cluster> block at %s:%d%s", cfg->file, cfg->line,
                     cfg->legacy ? " (Tomcat 5.5 syntax, mapped)" : "");
    walk(&w, cfg);
    for (i = 0; i < cfg->notes->nelts; i++) {
        APR_ARRAY_PUSH(lines, const char *) =
            apr_pstrcat(p, "# note: ", APR_ARRAY_IDX(cfg->notes, i, const char *), NULL);
    }
    for (i = 0; i < cfg->ignored->nelts; i++) {
        APR_ARRAY_PUSH(lines, const char *) =
            apr_pstrcat(p, "# ignored: ", APR_ARRAY_IDX(cfg->ignored, i, const char *),
                        NULL);
    }
}
