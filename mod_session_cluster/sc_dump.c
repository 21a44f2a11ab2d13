/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_dump.c -- the effective configuration as text.
 *
 * One line per setting, "Element.attribute = value  # origin", so that users see
 * what their pasted block means (defaults, Tomcat 5.5 names, derived values) and
 * tests can match single lines.  Printed by `httpd -t -D DUMP_CLUSTER` and by the
 * cluster-manager page.  Keys never leak: an encryptionKey prints as its size.
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

static void dump_elem(apr_pool_t *p, const char *key, const sc_elem_t *el,
                      apr_array_header_t *lines)
{
    int i;
    const char *where = el->line ? apr_psprintf(p, "line %d", el->line)
                                 : "added by default";
    if (el->cls->ignored_reason) {
        where = apr_pstrcat(p, where, ", ignored: ", el->cls->ignored_reason, NULL);
    }
    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(p, "%s.className = %s  # %s", key, el->class_name, where);
    for (i = 0; el->cls->attrs[i].name; i++) {
        const sc_attr_def *def = &el->cls->attrs[i];
        /* attributes only Tomcat 5.5 had show only when they were written */
        if (def->legacy && !*def->legacy && el->srcs[i] == SC_SRC_DEFAULT) {
            continue;
        }
        APR_ARRAY_PUSH(lines, const char *) =
            apr_psprintf(p, "%s.%s = %s  # %s", key, def->name,
                         sc_value_text(p, def, &el->values[i]), origin(p, el, i));
    }
}

static void dump_list(apr_pool_t *p, const char *key, apr_array_header_t *els,
                      apr_array_header_t *lines)
{
    int i;
    for (i = 0; i < els->nelts; i++) {
        dump_elem(p, apr_psprintf(p, "%s.%d", key, i + 1),
                  APR_ARRAY_IDX(els, i, const sc_elem_t *), lines);
    }
}

void sc_config_dump(apr_pool_t *p, const sc_cluster_cfg *cfg, apr_array_header_t *lines)
{
    int i;

    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(p, "# <Cluster> block at %s:%d%s", cfg->file, cfg->line,
                     cfg->legacy ? " (Tomcat 5.5 syntax, mapped)" : "");
    dump_elem(p, "Cluster", cfg->cluster, lines);
    dump_elem(p, "Manager", cfg->manager, lines);
    dump_elem(p, "Channel", cfg->channel, lines);
    dump_elem(p, "Membership", cfg->membership, lines);
    if (cfg->local_member) {
        dump_elem(p, "LocalMember", cfg->local_member, lines);
    }
    dump_list(p, "Member", cfg->members, lines);
    dump_elem(p, "Receiver", cfg->receiver, lines);
    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(p, "Sender.className = %s  # %s", cfg->sender->class_name,
                     cfg->sender->line ? apr_psprintf(p, "line %d", cfg->sender->line)
                                       : "added by default");
    dump_elem(p, "Transport", cfg->transport, lines);
    dump_list(p, "Interceptor", cfg->interceptors, lines);
    dump_list(p, "Valve", cfg->valves, lines);
    if (cfg->deployer) {
        dump_elem(p, "Deployer", cfg->deployer, lines);
    }
    dump_list(p, "ClusterListener", cfg->listeners, lines);
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
