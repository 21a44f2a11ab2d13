/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_config.c -- reads a Tomcat <Cluster> block pasted into httpd.conf.
 *
 * httpd cannot parse XML sections itself (a normal container would treat every
 * self-closing <Member .../> as an unterminated section), so <Cluster is an
 * EXEC_ON_READ directive: it reads the raw lines up to the matching </Cluster>
 * from the open configuration file, the way mod_macro and mod_perl read their
 * sections.  The reading goes through three steps:
 *
 *   1. lines -> text:   ap_varbuf_cfg_getline + ap_resolve_env per line (${VAR}
 *                       from Define), '#' lines skipped, and a small structural
 *                       scanner that finds the end of the root element, rejects
 *                       httpd sections and a DOCTYPE, and remembers the file line
 *                       of every tag and attribute;
 *   2. text -> tree:    libxml2, no network, no DTD, no entity expansion;
 *   3. tree -> typed:   the class catalogue (sc_classes.c) gives every element
 *                       its attributes with Tomcat's defaults; Tomcat 5.5 names
 *                       and the manager./sender./... prefixes map onto them; the
 *                       defaults Tomcat's SimpleTcpCluster adds are added.
 *
 * Errors name the file and line inside httpd.conf; httpd itself only knows the
 * line of <Cluster.  Nothing here has side effects outside the pools, because
 * httpd parses its configuration twice at startup and on every restart.
 */
#include "sc_private.h"
#include "sc_repl.h"

#include "util_varbuf.h"
#include "ap_regex.h"

#include <stdarg.h>
#include <stdlib.h>
#include <errno.h>
#include <limits.h>
#include <arpa/inet.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

APLOG_USE_MODULE(session_cluster);

/* ------------------------------------------------------------------------- */
/* Warnings, once per process                                                 */
/* ------------------------------------------------------------------------- */

void sc_warn_once(server_rec *s, const char *file, int line, const char *fmt, ...)
{
    static const char key[] = "mod_session_cluster:warned";
    apr_pool_t *pp = s->process->pool;
    apr_hash_t *seen = NULL;
    const char *msg, *hkey;
    va_list ap;

    va_start(ap, fmt);
    msg = apr_pvsprintf(pp, fmt, ap);
    va_end(ap);

    apr_pool_userdata_get((void **)&seen, key, pp);
    if (!seen) {
        seen = apr_hash_make(pp);
        apr_pool_userdata_set(seen, key, apr_pool_cleanup_null, pp);
    }
    hkey = apr_psprintf(pp, "%s:%d:%s", file ? file : "", line, msg);
    if (apr_hash_get(seen, hkey, APR_HASH_KEY_STRING)) {
        return;
    }
    apr_hash_set(seen, hkey, APR_HASH_KEY_STRING, "");
    /* the message carries the caller's SCLOGNO tag */
    if (file) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s (%s:%d)", msg, file, line);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s", msg);
    }
}

/* ------------------------------------------------------------------------- */
/* Values                                                                     */
/* ------------------------------------------------------------------------- */

static const char *trim(apr_pool_t *p, const char *s)
{
    const char *e;
    while (apr_isspace(*s)) {
        s++;
    }
    e = s + strlen(s);
    while (e > s && apr_isspace(e[-1])) {
        e--;
    }
    return apr_pstrmemdup(p, s, e - s);
}

static const char *parse_long(apr_pool_t *p, const char *text, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0') {
        return apr_psprintf(p, "'%s' is not a number", text);
    }
    if (errno == ERANGE) {
        return apr_psprintf(p, "'%s' is too large", text);
    }
    *out = v;
    return NULL;
}

/* "{0,1,2,...}" as used by Tomcat for uniqueId, domain and host bytes. */
static const char *parse_byte_list(apr_pool_t *p, const char *text,
                                   unsigned char *out, int max, int *n)
{
    const char *c = text + 1;
    *n = 0;
    for (;;) {
        char *end;
        long v;
        while (apr_isspace(*c)) {
            c++;
        }
        if (*c == '}' && *n == 0) {
            c++;
            break;
        }
        errno = 0;
        v = strtol(c, &end, 10);
        if (end == c || errno == ERANGE || v < -128 || v > 255) {
            return apr_psprintf(p, "'%s' is not a list of bytes like {0,1,2}", text);
        }
        if (*n >= max) {
            return apr_psprintf(p, "'%s' has more than %d bytes", text, max);
        }
        out[(*n)++] = (unsigned char)(v & 0xff);
        c = end;
        while (apr_isspace(*c)) {
            c++;
        }
        if (*c == ',') {
            c++;
            continue;
        }
        if (*c == '}') {
            c++;
            break;
        }
        return apr_psprintf(p, "'%s' is not a list of bytes like {0,1,2}", text);
    }
    while (apr_isspace(*c)) {
        c++;
    }
    if (*c) {
        return apr_psprintf(p, "'%s' has text after the closing brace", text);
    }
    return NULL;
}

static const struct {
    const char *name;
    long bit;
} send_option_names[] = {
    { "byte_message", SC_SEND_BYTE_MESSAGE },
    { "byte", SC_SEND_BYTE_MESSAGE },
    { "use_ack", SC_SEND_USE_ACK },
    { "ack", SC_SEND_USE_ACK },
    { "synchronized_ack", SC_SEND_SYNCHRONIZED_ACK },
    { "sync", SC_SEND_SYNCHRONIZED_ACK },
    { "asynchronous", SC_SEND_ASYNCHRONOUS },
    { "async", SC_SEND_ASYNCHRONOUS },
    { "secure", SC_SEND_SECURE },
    { "udp", SC_SEND_UDP },
    { "multicast", SC_SEND_MULTICAST },
    { NULL, 0 }
};

const char *sc_parse_send_options(const char *text, long *out)
{
    char buf[256];
    char *tok, *last;
    long v = 0;

    if (apr_isdigit(*text)) {
        char *end;
        errno = 0;
        v = strtol(text, &end, 0);
        if (*end != '\0' || errno == ERANGE || v < 0 || v > 0xFFFF) {
            return "is not a number of send-option bits (0-65535)";
        }
        *out = v;
        return NULL;
    }
    if (strlen(text) >= sizeof(buf)) {
        return "is too long";
    }
    strcpy(buf, text);
    for (tok = apr_strtok(buf, ", \t|", &last); tok; tok = apr_strtok(NULL, ", \t|", &last)) {
        int i, found = 0;
        for (i = 0; send_option_names[i].name; i++) {
            if (strcasecmp(tok, send_option_names[i].name) == 0) {
                v |= send_option_names[i].bit;
                found = 1;
                break;
            }
        }
        if (!found) {
            return "names an unknown send option (known: byte_message, use_ack, "
                   "synchronized_ack, asynchronous, secure, udp, multicast; "
                   "short forms byte, ack, sync, async)";
        }
    }
    *out = v;
    return NULL;
}

const char *sc_send_options_names(apr_pool_t *p, long opts)
{
    static const struct { long bit; const char *name; } bits[] = {
        { SC_SEND_BYTE_MESSAGE, "byte_message" },
        { SC_SEND_USE_ACK, "use_ack" },
        { SC_SEND_SYNCHRONIZED_ACK, "synchronized_ack" },
        { SC_SEND_ASYNCHRONOUS, "asynchronous" },
        { SC_SEND_SECURE, "secure" },
        { SC_SEND_UDP, "udp" },
        { SC_SEND_MULTICAST, "multicast" },
        { 0, NULL }
    };
    const char *s = NULL;
    int i;
    for (i = 0; bits[i].name; i++) {
        if (opts & bits[i].bit) {
            s = s ? apr_pstrcat(p, s, ",", bits[i].name, NULL) : bits[i].name;
        }
    }
    if (opts & ~0x7FL) {
        const char *hi = apr_psprintf(p, "0x%lx", opts & ~0x7FL);
        s = s ? apr_pstrcat(p, s, ",", hi, NULL) : hi;
    }
    return s ? s : "none";
}

static int is_multicast(const char *text)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, text, &a4) == 1) {
        return (ntohl(a4.s_addr) & 0xF0000000UL) == 0xE0000000UL;
    }
    if (inet_pton(AF_INET6, text, &a6) == 1) {
        return a6.s6_addr[0] == 0xff;
    }
    return -1;
}

static int valid_host(const char *s)
{
    apr_size_t n = strlen(s);
    if (n == 0 || n > 255) {
        return 0;
    }
    for (; *s; s++) {
        if (!apr_isalnum(*s) && !strchr(".-_:%", *s)) {
            return 0;
        }
    }
    return 1;
}

const char *sc_parse_value(apr_pool_t *p, const sc_attr_def *def,
                           const char *raw, sc_value_t *out)
{
    const char *text = trim(p, raw);
    const char *err;
    const char *c;

    memset(out, 0, sizeof(*out));
    switch (def->type) {
    case SC_T_INT:
        if ((err = parse_long(p, text, &out->num))) {
            return err;
        }
        if (out->num < def->min || out->num > def->max) {
            return apr_psprintf(p, "%ld is out of range (%ld-%ld%s%s)", out->num,
                                def->min, def->max, def->unit ? " " : "",
                                def->unit ? def->unit : "");
        }
        return NULL;

    case SC_T_BOOL:
        if (!strcasecmp(text, "true") || !strcasecmp(text, "yes")
            || !strcasecmp(text, "on") || !strcmp(text, "1")) {
            out->num = 1;
        }
        else if (!strcasecmp(text, "false") || !strcasecmp(text, "no")
                 || !strcasecmp(text, "off") || !strcmp(text, "0")) {
            out->num = 0;
        }
        else {
            return apr_psprintf(p, "'%s' is not true or false", text);
        }
        return NULL;

    case SC_T_CLASS:
    case SC_T_STR:
        if ((long)strlen(text) > def->max) {
            return apr_psprintf(p, "is longer than %ld characters", def->max);
        }
        if ((long)strlen(text) < def->min) {
            return "must not be empty";
        }
        for (c = text; *c; c++) {
            if (apr_iscntrl(*c)) {
                return "contains a control character";
            }
        }
        out->str = text;
        return NULL;

    case SC_T_SENDOPTS:
        if ((err = sc_parse_send_options(text, &out->num))) {
            return apr_psprintf(p, "'%s' %s", text, err);
        }
        out->str = text;
        return NULL;

    case SC_T_MCAST:
        switch (is_multicast(text)) {
        case 1:
            out->str = text;
            return NULL;
        case 0:
            return apr_psprintf(p, "'%s' is not a multicast address "
                                "(224.0.0.0/4 or ff00::/8)", text);
        default:
            return apr_psprintf(p, "'%s' is not an IP address", text);
        }

    case SC_T_ADDR:
        if (text[0] == '{') {
            unsigned char b[16];
            int n;
            char buf[64];
            if ((err = parse_byte_list(p, text, b, 16, &n))) {
                return err;
            }
            if (n == 4) {
                out->str = apr_psprintf(p, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
            }
            else if (n == 16 && inet_ntop(AF_INET6, b, buf, sizeof(buf))) {
                out->str = apr_pstrdup(p, buf);
            }
            else {
                return apr_psprintf(p, "'%s' is neither 4 nor 16 address bytes", text);
            }
            return NULL;
        }
        if (!valid_host(text)) {
            return apr_psprintf(p, "'%s' is not a host name or IP address", text);
        }
        out->str = text;
        return NULL;

    case SC_T_REGEX55:
    case SC_T_REGEX: {
        const char *pattern = text;
        if (def->type == SC_T_REGEX55) {
            /* Tomcat 5.5: ".*\.gif;.*\.js;" -> ".*\.gif|.*\.js" */
            char *copy = apr_pstrdup(p, text), *tok, *last;
            pattern = NULL;
            for (tok = apr_strtok(copy, ";", &last); tok; tok = apr_strtok(NULL, ";", &last)) {
                tok = (char *)trim(p, tok);
                if (*tok) {
                    pattern = pattern ? apr_pstrcat(p, pattern, "|", tok, NULL) : tok;
                }
            }
            if (!pattern) {
                pattern = "";
            }
        }
        if ((long)strlen(pattern) > def->max) {
            return apr_psprintf(p, "is longer than %ld characters", def->max);
        }
        out->str = pattern;
        if (*pattern) {
            /* Java's Matcher.matches(): the whole string must match */
            out->re = ap_pregcomp(p, apr_pstrcat(p, "^(?:", pattern, ")$", NULL), 0);
            if (!out->re) {
                return apr_psprintf(p, "'%s' is not a valid regular expression", pattern);
            }
        }
        return NULL;
    }

    case SC_T_UNIQUEID:
        if (text[0] != '{') {
            return apr_psprintf(p, "'%s' is not 16 bytes written as {0,1,...,15}", text);
        }
        if ((err = parse_byte_list(p, text, out->bytes, 16, &out->nbytes))) {
            return err;
        }
        if (out->nbytes != 16) {
            return apr_psprintf(p, "'%s' has %d bytes, a uniqueId has 16", text,
                                out->nbytes);
        }
        out->str = text;
        return NULL;

    case SC_T_DOMAIN:
        if (text[0] == '{') {
            if ((err = parse_byte_list(p, text, out->bytes, sizeof(out->bytes),
                                       &out->nbytes))) {
                return err;
            }
        }
        else {
            apr_size_t n = strlen(text);
            if (n > sizeof(out->bytes)) {
                return apr_psprintf(p, "is longer than %d bytes", (int)sizeof(out->bytes));
            }
            for (c = text; *c; c++) {
                if (apr_iscntrl(*c)) {
                    return "contains a control character";
                }
            }
            memcpy(out->bytes, text, n);
            out->nbytes = (int)n;
        }
        out->str = text;
        return NULL;

    case SC_T_HEXKEY: {
        apr_size_t n = strlen(text), i;
        if (n != 32 && n != 48 && n != 64) {
            return "must be 32, 48 or 64 hex digits (a 128, 192 or 256-bit key)";
        }
        for (i = 0; i < n; i += 2) {
            char pair[3] = { text[i], text[i + 1], 0 };
            if (!apr_isxdigit(pair[0]) || !apr_isxdigit(pair[1])) {
                return "contains a character that is not a hex digit";
            }
            out->bytes[i / 2] = (unsigned char)strtol(pair, NULL, 16);
        }
        out->nbytes = (int)(n / 2);
        out->str = text;
        return NULL;
    }
    }
    return "has an unknown type";
}

sc_elem_t *sc_elem_new(apr_pool_t *p, const sc_class_def *cls,
                       const char *class_name, const char *file, int line)
{
    sc_elem_t *el = apr_pcalloc(p, sizeof(*el));
    int n = 0, i;

    while (cls->attrs[n].name) {
        n++;
    }
    el->cls = cls;
    el->class_name = class_name ? class_name : cls->canonical;
    el->file = file;
    el->line = line;
    el->values = apr_pcalloc(p, sizeof(sc_value_t) * (n ? n : 1));
    el->srcs = apr_pcalloc(p, sizeof(sc_value_src) * (n ? n : 1));
    el->lines = apr_pcalloc(p, sizeof(int) * (n ? n : 1));
    el->used = apr_pcalloc(p, n ? n : 1);
    el->children = apr_array_make(p, 2, sizeof(sc_elem_t *));
    for (i = 0; i < n; i++) {
        el->values[i].num = -1;
        if (cls->attrs[i].defval) {
            /* catalogue defaults are valid by construction */
            const char *err = sc_parse_value(p, &cls->attrs[i], cls->attrs[i].defval,
                                             &el->values[i]);
            ap_assert(err == NULL);
        }
        el->srcs[i] = SC_SRC_DEFAULT;
    }
    return el;
}

int sc_cluster_encrypted(const sc_cluster_cfg *cfg)
{
    return cfg->set->encrypted;
}

/* ------------------------------------------------------------------------- */
/* Step 1: lines -> text, with a structural scanner                           */
/* ------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int line;
} sc_attr_pos;

typedef struct {
    const char *name;
    int line;                         /* line of '<' */
    apr_array_header_t *attrs;        /* sc_attr_pos */
} sc_tag_pos;

typedef enum {
    SCAN_TEXT, SCAN_TAG, SCAN_QUOTE, SCAN_COMMENT, SCAN_PI, SCAN_CDATA
} scan_state;

typedef struct {
    apr_pool_t *p;
    const char *file;
    scan_state state;
    char quote;
    int quote_line;
    int depth;
    int done;                         /* root element closed */
    int done_line;
    /* the tag being read */
    apr_size_t tag_start;             /* offset of '<' in text */
    int tag_line;
    int tag_end;                      /* </...> */
    char prev;                        /* last non-space char inside the tag */
    char name[64];
    int name_len;
    int reading_name;
    char attr[128];
    int attr_len;
    int attr_line;
    sc_tag_pos *cur;
    apr_array_header_t *tags;         /* sc_tag_pos, start tags in document order */
} scanner;

static const char *scan_error(scanner *sc, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *scan_error(scanner *sc, int line, const char *fmt, ...)
{
    va_list ap;
    const char *msg;
    va_start(ap, fmt);
    msg = apr_pvsprintf(sc->p, fmt, ap);
    va_end(ap);
    return apr_psprintf(sc->p, "%s:%d: %s", sc->file, line, msg);
}

static int is_httpd_section(const char *name)
{
    static const char *const sections[] = {
        "IfModule", "IfDefine", "IfFile", "IfDirective", "IfSection", "If", "Else",
        "ElseIf", "VirtualHost", "Location", "LocationMatch", "Directory",
        "DirectoryMatch", "Files", "FilesMatch", "Proxy", "ProxyMatch", "Macro",
        "Limit", "LimitExcept", "RequireAll", "RequireAny", "RequireNone", NULL
    };
    int i;
    for (i = 0; sections[i]; i++) {
        if (strcasecmp(name, sections[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A start or end tag is complete ('>' seen outside quotes). */
static const char *scan_tag_done(scanner *sc, int line)
{
    int self_closing = (sc->prev == '/');

    sc->name[sc->name_len] = '\0';
    if (sc->tag_end) {
        sc->depth--;
        if (sc->depth == 0) {
            if (strcmp(sc->name, "Cluster") != 0) {
                return scan_error(sc, line, "</%s> closes the <Cluster> block; "
                                  "expected </Cluster>", sc->name);
            }
            sc->done = 1;
            sc->done_line = line;
        }
        else if (sc->depth < 0) {
            return scan_error(sc, line, "</%s> without a matching start tag", sc->name);
        }
        return NULL;
    }
    if (sc->depth == 0 && sc->tags->nelts > 1) {
        return scan_error(sc, line, "text after the end of the <Cluster> block");
    }
    if (sc->depth > 0 && strcmp(sc->name, "Cluster") == 0) {
        if (self_closing) {
            return scan_error(sc, sc->tag_line, "<Cluster/> does not close the block "
                              "opened at line %d: a self-closing tag opens and closes "
                              "a new element; write </Cluster>",
                              APR_ARRAY_IDX(sc->tags, 0, sc_tag_pos).line);
        }
        return scan_error(sc, sc->tag_line, "<Cluster> cannot be nested inside "
                          "<Cluster> (a missing </Cluster>?)");
    }
    if (is_httpd_section(sc->name)) {
        return scan_error(sc, sc->tag_line, "the httpd section <%s> cannot be used "
                          "inside <Cluster>: the block is Tomcat XML, not httpd "
                          "configuration", sc->name);
    }
    if (!self_closing) {
        sc->depth++;
        if (sc->depth > SC_MAX_BLOCK_DEPTH) {
            return scan_error(sc, sc->tag_line, "elements nested deeper than %d levels",
                              SC_MAX_BLOCK_DEPTH);
        }
    }
    else if (sc->depth == 0) {
        /* <Cluster .../> on its own: the whole block */
        sc->done = 1;
        sc->done_line = line;
    }
    return NULL;
}

static void scan_attr_done(scanner *sc)
{
    if (sc->attr_len > 0 && sc->cur) {
        sc_attr_pos *a = apr_array_push(sc->cur->attrs);
        a->name = apr_pstrmemdup(sc->p, sc->attr, sc->attr_len);
        a->line = sc->attr_line;
    }
    sc->attr_len = 0;
}

/* Feeds one line (already appended to 'text' at offset 'off'). */
static const char *scan_line(scanner *sc, const char *text, apr_size_t off,
                             apr_size_t len, int line)
{
    apr_size_t i;
    const char *err;

    for (i = off; i < off + len; i++) {
        char c = text[i];
        if (sc->done) {
            if (!apr_isspace(c)) {
                return scan_error(sc, line, "text after </Cluster> on the same line");
            }
            continue;
        }
        switch (sc->state) {
        case SCAN_TEXT:
            if (c == '<') {
                const char *rest = text + i;
                apr_size_t left = off + len - i;
                if (left >= 4 && strncmp(rest, "<!--", 4) == 0) {
                    sc->state = SCAN_COMMENT;
                    i += 3;
                }
                else if (left >= 9 && strncmp(rest, "<![CDATA[", 9) == 0) {
                    sc->state = SCAN_CDATA;
                    i += 8;
                }
                else if (left >= 2 && rest[1] == '?') {
                    sc->state = SCAN_PI;
                    i += 1;
                }
                else if (left >= 2 && rest[1] == '!') {
                    return scan_error(sc, line, "a DOCTYPE or other <! declaration is "
                                      "not allowed in the <Cluster> block");
                }
                else {
                    sc->state = SCAN_TAG;
                    sc->tag_start = i;
                    sc->tag_line = line;
                    sc->tag_end = (left >= 2 && rest[1] == '/');
                    if (sc->tag_end) {
                        i++;
                    }
                    sc->name_len = 0;
                    sc->reading_name = 1;
                    sc->attr_len = 0;
                    sc->prev = 0;
                    sc->cur = NULL;
                }
            }
            else if (!apr_isspace(c)) {
                /* character data: never meaningful in a Cluster block, and the
                 * usual sign of an httpd directive (Include ...) inside it */
                apr_size_t e = i;
                while (e < off + len && text[e] != '<') {
                    e++;
                }
                return scan_error(sc, line, "unexpected text '%s' inside <Cluster>: "
                                  "only Tomcat elements are allowed here (httpd "
                                  "directives such as Include cannot be used inside "
                                  "the block)",
                                  apr_pstrmemdup(sc->p, text + i, e - i));
            }
            break;

        case SCAN_TAG:
            if (c == '"' || c == '\'') {
                scan_attr_done(sc);
                sc->quote = c;
                sc->quote_line = line;
                sc->state = SCAN_QUOTE;
                sc->prev = c;
                break;
            }
            if (c == '>') {
                if (sc->reading_name && !sc->tag_end) {
                    /* <Name> with no attributes */
                    sc->reading_name = 0;
                }
                if (!sc->cur && !sc->tag_end) {
                    sc_tag_pos *t = apr_array_push(sc->tags);
                    t->name = apr_pstrmemdup(sc->p, sc->name, sc->name_len);
                    t->line = sc->tag_line;
                    t->attrs = apr_array_make(sc->p, 4, sizeof(sc_attr_pos));
                    sc->cur = t;
                }
                sc->state = SCAN_TEXT;
                if ((err = scan_tag_done(sc, line))) {
                    return err;
                }
                break;
            }
            if (sc->reading_name) {
                if (apr_isspace(c) || c == '/') {
                    if (sc->name_len > 0) {
                        sc->reading_name = 0;
                        if (!sc->tag_end) {
                            sc_tag_pos *t = apr_array_push(sc->tags);
                            sc->name[sc->name_len] = '\0';
                            t->name = apr_pstrmemdup(sc->p, sc->name, sc->name_len);
                            t->line = sc->tag_line;
                            t->attrs = apr_array_make(sc->p, 4, sizeof(sc_attr_pos));
                            sc->cur = t;
                        }
                    }
                }
                else if (sc->name_len < (int)sizeof(sc->name) - 1) {
                    sc->name[sc->name_len++] = c;
                }
                else {
                    return scan_error(sc, line, "element name too long");
                }
            }
            else if (c == '=') {
                /* attr name complete; its line is where it started */
            }
            else if (apr_isspace(c)) {
                /* separator */
            }
            else if (c != '/') {
                if (sc->attr_len == 0) {
                    sc->attr_line = line;
                }
                if (sc->attr_len < (int)sizeof(sc->attr) - 1) {
                    sc->attr[sc->attr_len++] = c;
                }
            }
            if (!apr_isspace(c)) {
                sc->prev = c;
            }
            break;

        case SCAN_QUOTE:
            if (c == sc->quote) {
                sc->state = SCAN_TAG;
            }
            else if (c == '<') {
                return scan_error(sc, line, "'<' inside an attribute value: the "
                                  "quote opened at line %d is never closed (a stray "
                                  "quote?)", sc->quote_line);
            }
            break;

        case SCAN_COMMENT:
            if (c == '>' && i >= 2 && text[i - 1] == '-' && text[i - 2] == '-') {
                sc->state = SCAN_TEXT;
            }
            break;

        case SCAN_PI:
            if (c == '>' && i >= 1 && text[i - 1] == '?') {
                sc->state = SCAN_TEXT;
            }
            break;

        case SCAN_CDATA:
            if (c == '>' && i >= 2 && text[i - 1] == ']' && text[i - 2] == ']') {
                sc->state = SCAN_TEXT;
            }
            break;
        }
    }
    /* a line break inside a tag separates attributes */
    if (sc->state == SCAN_TAG) {
        if (sc->reading_name && sc->name_len > 0) {
            sc->reading_name = 0;
            if (!sc->tag_end) {
                sc_tag_pos *t = apr_array_push(sc->tags);
                t->name = apr_pstrmemdup(sc->p, sc->name, sc->name_len);
                t->line = sc->tag_line;
                t->attrs = apr_array_make(sc->p, 4, sizeof(sc_attr_pos));
                sc->cur = t;
            }
        }
    }
    return NULL;
}

typedef struct {
    apr_pool_t *p;
    const char *file;
    int first_line;
    char *text;
    apr_size_t len;
    apr_array_header_t *line_map;     /* int: file line of each text line */
    apr_array_header_t *tags;         /* sc_tag_pos */
} sc_block_text;

static int text_line_to_file(const sc_block_text *bt, int xml_line)
{
    if (xml_line >= 1 && xml_line <= bt->line_map->nelts) {
        return APR_ARRAY_IDX(bt->line_map, xml_line - 1, int);
    }
    return bt->first_line;
}

/* Appends a line to the growing text and feeds it to the scanner. */
static const char *add_line(scanner *sc, sc_block_text *bt, struct ap_varbuf *vb,
                            const char *line, int file_line)
{
    apr_size_t n = strlen(line);
    apr_size_t off = bt->len;         /* what the text holds so far */
    if (off + n + 1 > SC_MAX_BLOCK_BYTES) {
        return scan_error(sc, file_line, "the <Cluster> block is larger than %d bytes",
                          SC_MAX_BLOCK_BYTES);
    }
    if (bt->line_map->nelts >= SC_MAX_BLOCK_LINES) {
        return scan_error(sc, file_line, "the <Cluster> block has more than %d lines",
                          SC_MAX_BLOCK_LINES);
    }
    ap_varbuf_strmemcat(vb, line, (int)n);
    ap_varbuf_strmemcat(vb, "\n", 1);
    bt->len = off + n + 1;
    APR_ARRAY_PUSH(bt->line_map, int) = file_line;
    return scan_line(sc, vb->buf, off, n, file_line);
}

static const char *unclosed_error(scanner *sc, const char *file, int first_line,
                                  const char *where)
{
    if (sc->state == SCAN_QUOTE) {
        return apr_psprintf(sc->p, "%s:%d: <Cluster> has no matching </Cluster> %s: "
                            "the quote opened at line %d is never closed (a stray "
                            "quote?)", file, first_line, where, sc->quote_line);
    }
    if (sc->state == SCAN_COMMENT) {
        return apr_psprintf(sc->p, "%s:%d: <Cluster> has no matching </Cluster> %s: "
                            "a <!-- comment is never closed with -->", file,
                            first_line, where);
    }
    return apr_psprintf(sc->p, "%s:%d: <Cluster> has no matching </Cluster> %s",
                        file, first_line, where);
}

static void scanner_init(scanner *sc, apr_pool_t *p, const char *file)
{
    memset(sc, 0, sizeof(*sc));
    sc->p = p;
    sc->file = file;
    sc->state = SCAN_TEXT;
    sc->tags = apr_array_make(p, 32, sizeof(sc_tag_pos));
}

/* ------------------------------------------------------------------------- */
/* Step 3: tree -> typed settings                                             */
/* ------------------------------------------------------------------------- */

typedef struct {
    apr_pool_t *p;
    apr_pool_t *ptemp;
    server_rec *s;
    sc_block_text *bt;
    sc_cluster_cfg *cfg;
    int tag_index;                    /* next sc_tag_pos to match */
    apr_table_t *prefixed;            /* "manager.x" -> value (from <Cluster>) */
    apr_table_t *prefixed_line;
    const char *managerClassName;
    int managerClassLine;
    const char *lookup_err;           /* the first lookup of a name a class lacks */
    int taking;                       /* reads now take values into cfg->set: the
                                       * attributes read act (sc_elem_t used) */
    apr_array_header_t *no_effect;    /* sc_no_effect: written, and acting not */
} sc_builder;

/* An attribute written in the block that has no effect here, for the one
 * warning of the block (SC1413). */
typedef struct {
    int line;
    int seq;                          /* order of finding, for equal lines */
    const char *what;                 /* "NioReceiver.selectorTimeout" */
} sc_no_effect;

static const char *build_error(sc_builder *b, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *build_error(sc_builder *b, int line, const char *fmt, ...)
{
    va_list ap;
    const char *msg;
    va_start(ap, fmt);
    msg = apr_pvsprintf(b->p, fmt, ap);
    va_end(ap);
    return apr_psprintf(b->p, "%s:%d: %s", b->bt->file, line, msg);
}

/* ------------------------------------------------------------------------- */
/* The attributes the module reads, by name, in one place                     */
/* ------------------------------------------------------------------------- */

/* Every attribute the module's code reads (the reader's mapping and checks
 * below, and the typed settings every other file reads), named once with the
 * class that has it.  check_keys() looks each one up in the catalogue at every
 * start, whatever the block holds, so a misspelt name here refuses every
 * configuration; a read (key_index) looks the name up in the element's own
 * class and refuses the configuration when that class lacks it.
 *
 * What acts and what does not follows from these reads, not from a list:
 * an attribute acts when build_settings() reads it into cfg->set (or a
 * mapping step takes it into a value that is read there, as Tomcat 5.5's
 * tcpListenMaxPort into autoBind); every other attribute of the catalogue,
 * written or not, has no effect here.  A read that only checks a value
 * (validate(), minThreads against maxThreads) does not make it act.  Giving
 * an attribute its meaning is a key, a field of sc_settings and its read in
 * build_settings(); the dump, the page and the warning follow. */
typedef enum {
    K_SEND_OPTIONS, K_START_OPTIONS,
    K_MAX_ACTIVE, K_MAX_INACTIVE, K_MAX_SESSION_SIZE, K_MAX_STORE_SIZE,
    K_ATTR_NAME_FILTER, K_WARN_ATTR_FILTER,
    K_EXPIRE_ON_SHUTDOWN, K_PROBATION,
    K_STATE_TRANSFER_TIMEOUT, K_SEND_ALL_SIZE, K_MAP_SEND_OPTIONS,
    K_PROCESS_EXPIRES, K_SEND_ALL, K_SEND_ALL_WAIT,
    K_RPC_TIMEOUT, K_ACCESS_TIMEOUT, K_TERMINATE_ON_START,
    K_MCAST_ADDRESS, K_MCAST_PORT, K_MCAST_FREQUENCY, K_MCAST_DROP_TIME, K_MCAST_BIND,
    K_MCAST_TTL, K_MCAST_DOMAIN, K_MCAST_LOOPBACK_DISABLED,
    K_STATIC_PING_INTERVAL, K_STATIC_EXPIRATION,
    K_CLOUD_PROVIDER, K_CLOUD_DNS_NAME, K_CLOUD_REFRESH, K_CLOUD_EXPIRATION,
    K_CLOUD_CONNECT_TIMEOUT, K_CLOUD_READ_TIMEOUT,
    K_RX_ADDRESS, K_RX_PORT, K_RX_AUTO_BIND, K_RX_MAX_MESSAGE, K_RX_MIN_THREADS,
    K_RX_MAX_THREADS, K_RX_MAX_PORT,
    K_TX_TIMEOUT, K_TX_RETRIES, K_TX_MODE, K_TX_WAIT_FOR_ACK, K_TX_POOL_SIZE,
    K_TX_KEEP_ALIVE_COUNT, K_TX_KEEP_ALIVE_TIME,
    K_FD_CONNECT_TIMEOUT, K_FD_READ_TEST, K_FD_READ_TEST_TIMEOUT,
    K_PING_INTERVAL, K_THROUGHPUT_INTERVAL, K_FILTER_DOMAIN,
    K_ENC_KEY, K_ENC_PREVIOUS_KEY, K_ENC_ALGORITHM,
    K_MEMBER_HOST, K_MEMBER_PORT, K_MEMBER_UNIQUE_ID, K_MEMBER_DOMAIN,
    K_RV_FILTER, K_RV_PRIMARY_INDICATOR, K_RV_PRIMARY_INDICATOR_NAME,
    K_BINDER_ENABLED, K_BINDER_ATTRIBUTE,
    K_SID_LENGTH,
    K_COUNT
} sc_key;

static const struct {
    sc_class_id cls;
    const char *name;
} keys[K_COUNT] = {
    [K_SEND_OPTIONS] = { SC_C_SIMPLE_TCP_CLUSTER, "channelSendOptions" },
    [K_START_OPTIONS] = { SC_C_SIMPLE_TCP_CLUSTER, "channelStartOptions" },
    /* DeltaManager and BackupManager share these four */
    [K_MAX_ACTIVE] = { SC_C_DELTA_MANAGER, "maxActiveSessions" },
    [K_MAX_INACTIVE] = { SC_C_DELTA_MANAGER, "maxInactiveInterval" },
    [K_MAX_SESSION_SIZE] = { SC_C_DELTA_MANAGER, "maxSessionSize" },
    [K_MAX_STORE_SIZE] = { SC_C_DELTA_MANAGER, "maxStoreSize" },
    [K_ATTR_NAME_FILTER] = { SC_C_DELTA_MANAGER, "sessionAttributeNameFilter" },
    [K_WARN_ATTR_FILTER] = { SC_C_DELTA_MANAGER, "warnOnSessionAttributeFilterFailure" },
    [K_EXPIRE_ON_SHUTDOWN] = { SC_C_DELTA_MANAGER, "expireSessionsOnShutdown" },
    [K_PROBATION] = { SC_C_DELTA_MANAGER, "probationInactiveInterval" },
    [K_STATE_TRANSFER_TIMEOUT] = { SC_C_DELTA_MANAGER, "stateTransferTimeout" },
    [K_SEND_ALL_SIZE] = { SC_C_DELTA_MANAGER, "sendAllSessionsSize" },
    [K_MAP_SEND_OPTIONS] = { SC_C_BACKUP_MANAGER, "mapSendOptions" },
    [K_RPC_TIMEOUT] = { SC_C_BACKUP_MANAGER, "rpcTimeout" },
    [K_ACCESS_TIMEOUT] = { SC_C_BACKUP_MANAGER, "accessTimeout" },
    [K_TERMINATE_ON_START] = { SC_C_BACKUP_MANAGER, "terminateOnStartFailure" },
    [K_PROCESS_EXPIRES] = { SC_C_DELTA_MANAGER, "processExpiresFrequency" },
    [K_SEND_ALL] = { SC_C_DELTA_MANAGER, "sendAllSessions" },
    [K_SEND_ALL_WAIT] = { SC_C_DELTA_MANAGER, "sendAllSessionsWaitTime" },
    [K_MCAST_ADDRESS] = { SC_C_MCAST_SERVICE, "address" },
    [K_MCAST_PORT] = { SC_C_MCAST_SERVICE, "port" },
    [K_MCAST_FREQUENCY] = { SC_C_MCAST_SERVICE, "frequency" },
    [K_MCAST_DROP_TIME] = { SC_C_MCAST_SERVICE, "dropTime" },
    [K_MCAST_BIND] = { SC_C_MCAST_SERVICE, "bind" },
    [K_MCAST_TTL] = { SC_C_MCAST_SERVICE, "ttl" },
    [K_MCAST_DOMAIN] = { SC_C_MCAST_SERVICE, "domain" },
    [K_MCAST_LOOPBACK_DISABLED] = { SC_C_MCAST_SERVICE, "localLoopbackDisabled" },
    [K_STATIC_PING_INTERVAL] = { SC_C_STATIC_MEMBERSHIP_SERVICE, "pingInterval" },
    [K_STATIC_EXPIRATION] = { SC_C_STATIC_MEMBERSHIP_SERVICE, "expirationTime" },
    [K_CLOUD_PROVIDER] = { SC_C_CLOUD_MEMBERSHIP_SERVICE, "membershipProviderClassName" },
    [K_CLOUD_DNS_NAME] = { SC_C_CLOUD_MEMBERSHIP_SERVICE, "dnsServiceName" },
    [K_CLOUD_REFRESH] = { SC_C_CLOUD_MEMBERSHIP_SERVICE, "refreshInterval" },
    [K_CLOUD_EXPIRATION] = { SC_C_CLOUD_MEMBERSHIP_SERVICE, "expirationTime" },
    [K_CLOUD_CONNECT_TIMEOUT] = { SC_C_CLOUD_MEMBERSHIP_SERVICE, "connectTimeout" },
    [K_CLOUD_READ_TIMEOUT] = { SC_C_CLOUD_MEMBERSHIP_SERVICE, "readTimeout" },
    [K_RX_ADDRESS] = { SC_C_NIO_RECEIVER, "address" },
    [K_RX_PORT] = { SC_C_NIO_RECEIVER, "port" },
    [K_RX_AUTO_BIND] = { SC_C_NIO_RECEIVER, "autoBind" },
    [K_RX_MAX_MESSAGE] = { SC_C_NIO_RECEIVER, "maxMessageSize" },
    [K_RX_MIN_THREADS] = { SC_C_NIO_RECEIVER, "minThreads" },
    [K_RX_MAX_THREADS] = { SC_C_NIO_RECEIVER, "maxThreads" },
    [K_RX_MAX_PORT] = { SC_C_NIO_RECEIVER, "tcpListenMaxPort" },
    /* the Sender (ReplicationTransmitter) has the Transport's table */
    [K_TX_TIMEOUT] = { SC_C_POOLED_PARALLEL_SENDER, "timeout" },
    [K_TX_RETRIES] = { SC_C_POOLED_PARALLEL_SENDER, "maxRetryAttempts" },
    [K_TX_MODE] = { SC_C_POOLED_PARALLEL_SENDER, "replicationMode" },
    [K_TX_WAIT_FOR_ACK] = { SC_C_POOLED_PARALLEL_SENDER, "waitForAck" },
    [K_TX_POOL_SIZE] = { SC_C_POOLED_PARALLEL_SENDER, "poolSize" },
    [K_TX_KEEP_ALIVE_COUNT] = { SC_C_POOLED_PARALLEL_SENDER, "keepAliveCount" },
    [K_TX_KEEP_ALIVE_TIME] = { SC_C_POOLED_PARALLEL_SENDER, "keepAliveTime" },
    [K_FD_CONNECT_TIMEOUT] = { SC_C_TCP_FAILURE_DETECTOR, "connectTimeout" },
    [K_FD_READ_TEST] = { SC_C_TCP_FAILURE_DETECTOR, "performReadTest" },
    [K_FD_READ_TEST_TIMEOUT] = { SC_C_TCP_FAILURE_DETECTOR, "readTestTimeout" },
    [K_PING_INTERVAL] = { SC_C_TCP_PING, "interval" },
    [K_THROUGHPUT_INTERVAL] = { SC_C_THROUGHPUT, "interval" },
    [K_FILTER_DOMAIN] = { SC_C_DOMAIN_FILTER, "domain" },
    [K_ENC_KEY] = { SC_C_ENCRYPT, "encryptionKey" },
    [K_ENC_PREVIOUS_KEY] = { SC_C_ENCRYPT, "previousEncryptionKey" },
    [K_ENC_ALGORITHM] = { SC_C_ENCRYPT, "encryptionAlgorithm" },
    /* <Member> and <LocalMember> */
    [K_MEMBER_HOST] = { SC_C_STATIC_MEMBER, "host" },
    [K_MEMBER_PORT] = { SC_C_STATIC_MEMBER, "port" },
    [K_MEMBER_UNIQUE_ID] = { SC_C_STATIC_MEMBER, "uniqueId" },
    [K_MEMBER_DOMAIN] = { SC_C_STATIC_MEMBER, "domain" },
    [K_RV_FILTER] = { SC_C_REPLICATION_VALVE, "filter" },
    [K_RV_PRIMARY_INDICATOR] = { SC_C_REPLICATION_VALVE, "primaryIndicator" },
    [K_RV_PRIMARY_INDICATOR_NAME] = { SC_C_REPLICATION_VALVE, "primaryIndicatorName" },
    [K_BINDER_ENABLED] = { SC_C_JVMROUTE_BINDER_VALVE, "enabled" },
    [K_BINDER_ATTRIBUTE] = { SC_C_JVMROUTE_BINDER_VALVE, "sessionIdAttribute" },
    [K_SID_LENGTH] = { SC_C_SESSION_ID_GENERATOR, "sessionIdLength" },
};

static const char *lookup_error(sc_builder *b, const char *cls, const char *name)
{
    return build_error(b, b->cfg->line, "mod_session_cluster reads attribute \"%s\" of "
                       "%s, which that class does not have: a mistake in the module "
                       "(sc_config.c), not in the block; please report it", name, cls);
}

/* Every key names an attribute its class has (run at every start). */
static const char *check_keys(sc_builder *b)
{
    int k;
    for (k = 0; k < K_COUNT; k++) {
        const sc_class_def *cls = sc_class_by_id(keys[k].cls);
        if (!keys[k].name || !cls || sc_attr_index(cls, keys[k].name, NULL) < 0) {
            return lookup_error(b, cls ? cls->short_name : "an unknown class",
                                keys[k].name ? keys[k].name : "(none)");
        }
    }
    return NULL;
}

/* The index of key k's attribute in el's class, or -1 when that class lacks
 * it: the configuration is then refused (b->lookup_err, checked by build()).
 * While the settings are taken (b->taking), the attribute read acts. */
static int key_index(sc_builder *b, const sc_elem_t *el, sc_key k)
{
    int i = sc_attr_index(el->cls, keys[k].name, NULL);
    if (i < 0 && !b->lookup_err) {
        b->lookup_err = lookup_error(b, el->cls->short_name, keys[k].name);
    }
    if (i >= 0 && b->taking) {
        el->used[i] = 1;
    }
    return i;
}

/* A mapping step takes attribute i of el into a value that acts. */
static void takes(sc_elem_t *el, int i)
{
    if (i >= 0) {
        el->used[i] = 1;
    }
}

/* Key k's value in el (an unset value when its class lacks it, see key_index). */
static const sc_value_t *key_value(sc_builder *b, const sc_elem_t *el, sc_key k)
{
    static const sc_value_t unset = { -1, NULL, NULL, { 0 }, 0 };
    int i = key_index(b, el, k);
    return i < 0 ? &unset : &el->values[i];
}

static long key_num(sc_builder *b, const sc_elem_t *el, sc_key k)
{
    return key_value(b, el, k)->num;
}

static const char *key_str(sc_builder *b, const sc_elem_t *el, sc_key k)
{
    return key_value(b, el, k)->str;
}

static int attr_line(sc_tag_pos *tag, const char *name, int fallback)
{
    int i;
    if (!tag) {
        return fallback;
    }
    for (i = 0; i < tag->attrs->nelts; i++) {
        sc_attr_pos *a = &APR_ARRAY_IDX(tag->attrs, i, sc_attr_pos);
        if (strcmp(a->name, name) == 0) {
            return a->line;
        }
    }
    return fallback;
}

static void note_ignored(sc_builder *b, int line, const char *what, const char *why)
{
    APR_ARRAY_PUSH(b->cfg->ignored, const char *) =
        apr_psprintf(b->p, "%s:%d: %s (%s)", b->bt->file, line, what, why);
    sc_warn_once(b->s, b->bt->file, line,
                 SCLOGNO(1001) "%s is ignored: %s", what, why);
}

/* How the warning names an attribute: the class as written (the element for
 * a static member, whose class says less) and the attribute as written. */
static const char *attr_label(apr_pool_t *p, const sc_elem_t *el, const char *name)
{
    const char *dot = strrchr(el->class_name, '.');
    const char *who = el->cls->kind == SC_EL_MEMBER || el->cls->kind == SC_EL_LOCALMEMBER
                      ? sc_elem_kind_name(el->cls->kind)
                      : (dot ? dot + 1 : el->class_name);
    return apr_pstrcat(p, who, ".", name, NULL);
}

/* Attribute 'what', written at 'line', has no effect here. */
static void no_effect(sc_builder *b, int line, const char *what)
{
    sc_no_effect *n = apr_array_push(b->no_effect);
    n->line = line;
    n->seq = b->no_effect->nelts;
    n->what = what;
}

/* Sets attribute 'name' of 'el' from text; unknown names are warned about. */
static const char *set_attr(sc_builder *b, sc_elem_t *el, const char *name,
                            const char *value, int line, sc_value_src src)
{
    int legacy = 0;
    int i = sc_attr_index(el->cls, name, &legacy);
    const char *why, *err;
    sc_attr_def def;

    if (i < 0) {
        if ((why = sc_attr_ignored_reason(name))) {
            /* named in the block's one warning (SC1413), explained in the dump */
            APR_ARRAY_PUSH(b->cfg->ignored, const char *) =
                apr_psprintf(b->p, "%s:%d: %s attribute %s (%s)", b->bt->file, line,
                             el->cls->short_name, name, why);
            no_effect(b, line, attr_label(b->p, el, name));
        }
        else if (el->cls->ignored_reason) {
            /* the whole element is ignored: its attributes need no checking */
        }
        else {
            sc_warn_once(b->s, b->bt->file, line,
                         SCLOGNO(1002) "unknown attribute %s on %s <%s>: ignored",
                         name, el->cls->short_name, sc_elem_kind_name(el->cls->kind));
            APR_ARRAY_PUSH(b->cfg->ignored, const char *) =
                apr_psprintf(b->p, "%s:%d: unknown attribute %s on %s", b->bt->file,
                             line, name, el->cls->short_name);
        }
        return NULL;
    }
    def = el->cls->attrs[i];
    /* Tomcat 5.5's ReplicationValve filter is a ';'-separated list */
    if (def.type == SC_T_REGEX && el->cls->id == SC_C_REPLICATION_VALVE
        && strncmp(el->class_name, "org.apache.catalina.cluster.", 28) == 0) {
        def.type = SC_T_REGEX55;
    }
    if ((err = sc_parse_value(b->p, &def, value, &el->values[i]))) {
        return build_error(b, line, "%s %s=\"%s\": %s", el->cls->short_name, name,
                           value, err);
    }
    el->srcs[i] = legacy && src == SC_SRC_BLOCK ? SC_SRC_LEGACY : src;
    el->lines[i] = line;
    return NULL;
}

static sc_elem_t *make_default(sc_builder *b, sc_class_id id)
{
    const sc_class_def *cls = sc_class_by_id(id);
    return sc_elem_new(b->p, cls, NULL, b->bt->file, 0);
}

static const char *singleton(sc_builder *b, sc_elem_t **slot, sc_elem_t *el)
{
    if (*slot) {
        return build_error(b, el->line, "a second <%s> (the first is at line %d); "
                           "Tomcat allows one", sc_elem_kind_name(el->cls->kind),
                           (*slot)->line);
    }
    *slot = el;
    return NULL;
}

static const char *walk(sc_builder *b, xmlNodePtr node, sc_elem_kind parent_kind,
                        sc_elem_t *parent);

/* Steps over the descendants of an ignored element, keeping the scanner's tag
 * list (document order) aligned with the tree. */
static void skip_subtree(sc_builder *b, xmlNodePtr node)
{
    xmlNodePtr c;
    for (c = node->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            b->tag_index++;
            skip_subtree(b, c);
        }
    }
}

/* Converts one element and its children. */
static const char *convert(sc_builder *b, xmlNodePtr node, sc_elem_kind parent_kind,
                           sc_elem_t *parent)
{
    const char *tag = (const char *)node->name;
    sc_tag_pos *tpos = NULL;
    int line = text_line_to_file(b->bt, (int)xmlGetLineNo(node));
    sc_elem_kind kind;
    const sc_class_def *cls;
    const char *class_name = NULL, *err;
    int legacy = 0;
    sc_elem_t *el;
    xmlAttrPtr a;

    if (b->tag_index < b->bt->tags->nelts) {
        sc_tag_pos *t = &APR_ARRAY_IDX(b->bt->tags, b->tag_index, sc_tag_pos);
        if (strcmp(t->name, tag) == 0) {
            tpos = t;
            line = t->line;
        }
    }
    b->tag_index++;

    if (node->ns || strchr(tag, ':')) {
        return build_error(b, line, "namespaced element <%s> is not part of a Tomcat "
                           "<Cluster> block", tag);
    }
    if (!sc_elem_kind_from_tag(tag, &kind) || kind == SC_EL_CLUSTER) {
        sc_warn_once(b->s, b->bt->file, line,
                     SCLOGNO(1003) "unknown element <%s> inside <Cluster>: ignored "
                     "with its content", tag);
        APR_ARRAY_PUSH(b->cfg->ignored, const char *) =
            apr_psprintf(b->p, "%s:%d: unknown element <%s>", b->bt->file, line, tag);
        skip_subtree(b, node);
        return NULL;
    }

    /* which class? */
    {
        xmlChar *cn = xmlGetNoNsProp(node, (const xmlChar *)"className");
        if (cn) {
            class_name = trim(b->p, (const char *)cn);
            xmlFree(cn);
        }
    }
    if (class_name) {
        cls = sc_class_lookup(kind, class_name, &legacy);
    }
    else {
        static const sc_class_id defaults[SC_EL_COUNT] = {
            SC_C_SIMPLE_TCP_CLUSTER, SC_C_DELTA_MANAGER, SC_C_SESSION_ID_GENERATOR,
            SC_C_GROUP_CHANNEL, SC_C_MCAST_SERVICE, SC_C_NIO_RECEIVER,
            SC_C_REPLICATION_TRANSMITTER, SC_C_POOLED_PARALLEL_SENDER, SC_C_NONE,
            SC_C_STATIC_MEMBER, SC_C_STATIC_MEMBER, SC_C_NONE, SC_C_FARM_WAR_DEPLOYER,
            SC_C_NONE
        };
        if (defaults[kind] == SC_C_NONE) {
            return build_error(b, line, "<%s> needs a className attribute", tag);
        }
        cls = sc_class_by_id(defaults[kind]);
        if (kind == SC_EL_LOCALMEMBER) {
            cls = sc_class_lookup(kind, "StaticMember", NULL);
        }
    }
    if (!cls) {
        switch (kind) {
        case SC_EL_MANAGER:
            if (strstr(class_name, "MemcachedBackupSessionManager")
                || strstr(class_name, "MemcachedSessionManager")) {
                return build_error(b, line, "Manager class '%s': msm's <Manager> belongs "
                                   "outside the <Cluster> block, at server level",
                                   class_name);
            }
            return build_error(b, line, "unknown Manager class '%s': use "
                               "org.apache.catalina.ha.session.DeltaManager or "
                               "org.apache.catalina.ha.session.BackupManager", class_name);
        case SC_EL_MEMBERSHIP:
            return build_error(b, line, "unknown Membership class '%s': use McastService, "
                               "StaticMembershipService or CloudMembershipService",
                               class_name);
        case SC_EL_RECEIVER:
        case SC_EL_SENDER:
        case SC_EL_TRANSPORT:
        case SC_EL_CHANNEL:
        case SC_EL_MEMBER:
        case SC_EL_LOCALMEMBER:
            return build_error(b, line, "unknown %s class '%s'", tag, class_name);
        default:
            note_ignored(b, line, apr_psprintf(b->p, "unknown %s class %s", tag,
                                               class_name),
                         "httpd has no implementation of it");
            skip_subtree(b, node);
            return NULL;
        }
    }
    /* where may it sit? */
    if (kind == SC_EL_MEMBER || kind == SC_EL_LOCALMEMBER) {
        int ok = parent && ((parent->cls->id == SC_C_STATIC_MEMBERSHIP)
                            || parent->cls->id == SC_C_STATIC_MEMBERSHIP_SERVICE
                            || parent->cls->id == SC_C_CLOUD_MEMBERSHIP_SERVICE);
        if (!ok) {
            return build_error(b, line, "<%s> belongs inside a StaticMembershipInterceptor "
                               "<Interceptor> or a StaticMembershipService <Membership>",
                               tag);
        }
    }
    else if (parent_kind == SC_EL_CLUSTER && (legacy || b->cfg->legacy)
             && (kind == SC_EL_MEMBERSHIP || kind == SC_EL_RECEIVER
                 || kind == SC_EL_SENDER)) {
        /* Tomcat 5.5 had no <Channel>: these sat directly in <Cluster> */
    }
    else if (sc_default_parent(kind) != parent_kind) {
        return build_error(b, line, "<%s> belongs inside <%s>, not <%s>", tag,
                           sc_elem_kind_name(sc_default_parent(kind)),
                           sc_elem_kind_name(parent_kind));
    }

    if (legacy) {
        b->cfg->legacy = 1;
    }

    el = sc_elem_new(b->p, cls, class_name, b->bt->file, line);
    if (cls->ignored_reason) {
        note_ignored(b, line, apr_psprintf(b->p, "<%s className=\"%s\">", tag,
                                           el->class_name), cls->ignored_reason);
    }

    for (a = node->properties; a; a = a->next) {
        const char *name = (const char *)a->name;
        xmlChar *v;
        int aline = attr_line(tpos, name, line);
        if (strcmp(name, "className") == 0) {
            continue;
        }
        v = xmlNodeListGetString(node->doc, a->children, 1);
        if (!v) {
            continue;
        }
        err = set_attr(b, el, name, (const char *)v, aline, SC_SRC_BLOCK);
        xmlFree(v);
        if (err) {
            return err;
        }
    }

    /* file it */
    switch (kind) {
    case SC_EL_MANAGER:
        if ((err = singleton(b, &b->cfg->manager, el))) {
            return err;
        }
        break;
    case SC_EL_CHANNEL:
        if ((err = singleton(b, &b->cfg->channel, el))) {
            return err;
        }
        break;
    case SC_EL_MEMBERSHIP:
        if ((err = singleton(b, &b->cfg->membership, el))) {
            return err;
        }
        break;
    case SC_EL_RECEIVER:
        if ((err = singleton(b, &b->cfg->receiver, el))) {
            return err;
        }
        break;
    case SC_EL_SENDER:
        if ((err = singleton(b, &b->cfg->sender, el))) {
            return err;
        }
        break;
    case SC_EL_TRANSPORT:
        if ((err = singleton(b, &b->cfg->transport, el))) {
            return err;
        }
        break;
    case SC_EL_DEPLOYER:
        if ((err = singleton(b, &b->cfg->deployer, el))) {
            return err;
        }
        break;
    case SC_EL_INTERCEPTOR:
        APR_ARRAY_PUSH(b->cfg->interceptors, sc_elem_t *) = el;
        break;
    case SC_EL_MEMBER:
        APR_ARRAY_PUSH(b->cfg->members, sc_elem_t *) = el;
        break;
    case SC_EL_LOCALMEMBER:
        if ((err = singleton(b, &b->cfg->local_member, el))) {
            return err;
        }
        break;
    case SC_EL_VALVE:
        APR_ARRAY_PUSH(b->cfg->valves, sc_elem_t *) = el;
        break;
    case SC_EL_LISTENER:
        APR_ARRAY_PUSH(b->cfg->listeners, sc_elem_t *) = el;
        break;
    case SC_EL_SESSIONIDGEN:
        if ((err = singleton(b, &b->cfg->session_id_generator, el))) {
            return err;
        }
        break;
    case SC_EL_CLUSTER:
    case SC_EL_COUNT:
        break;
    }
    if (parent) {
        APR_ARRAY_PUSH(parent->children, sc_elem_t *) = el;
    }
    return walk(b, node, kind, el);
}

static const char *walk(sc_builder *b, xmlNodePtr node, sc_elem_kind parent_kind,
                        sc_elem_t *parent)
{
    xmlNodePtr c;
    const char *err;
    for (c = node->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) {
            continue;
        }
        if ((err = convert(b, c, parent_kind, parent))) {
            return err;
        }
    }
    return NULL;
}

/* Attributes of <Cluster> itself, including the Tomcat 5.5 prefixes. */
static const char *cluster_attrs(sc_builder *b, xmlNodePtr root, sc_tag_pos *tpos)
{
    xmlAttrPtr a;
    const char *err;
    for (a = root->properties; a; a = a->next) {
        const char *name = (const char *)a->name;
        int line = attr_line(tpos, name, b->cfg->line);
        xmlChar *v = xmlNodeListGetString(root->doc, a->children, 1);
        const char *value = v ? apr_pstrdup(b->p, (const char *)v) : "";
        const char *dot = strchr(name, '.');
        if (v) {
            xmlFree(v);
        }
        if (strcmp(name, "className") == 0) {
            continue;
        }
        if (strcmp(name, "managerClassName") == 0) {
            b->managerClassName = trim(b->p, value);
            b->managerClassLine = line;
            b->cfg->legacy = 1;
            continue;
        }
        if (dot) {
            apr_size_t plen = dot - name;
            if ((plen == 7 && !strncmp(name, "manager", 7))
                || (plen == 6 && !strncmp(name, "sender", 6))
                || (plen == 8 && !strncmp(name, "receiver", 8))
                || (plen == 7 && !strncmp(name, "service", 7))
                || (plen == 5 && !strncmp(name, "valve", 5))
                || (plen == 8 && !strncmp(name, "listener", 8))) {
                apr_table_setn(b->prefixed, name, value);
                apr_table_setn(b->prefixed_line, name, apr_itoa(b->p, line));
                b->cfg->legacy = 1;
                continue;
            }
        }
        if ((err = set_attr(b, b->cfg->cluster, name, value, line, SC_SRC_BLOCK))) {
            return err;
        }
    }
    return NULL;
}

typedef struct {
    sc_builder *b;
    const char *err;
} prefix_ctx;

static int apply_prefix(void *vctx, const char *key, const char *value)
{
    prefix_ctx *ctx = vctx;
    sc_builder *b = ctx->b;
    sc_cluster_cfg *cfg = b->cfg;
    const char *dot = strchr(key, '.');
    const char *name = dot + 1;
    int line = atoi(apr_table_get(b->prefixed_line, key));
    sc_elem_t *el = NULL;
    int i;

    if (!strncmp(key, "manager.", 8)) {
        el = cfg->manager;
    }
    else if (!strncmp(key, "sender.", 7)) {
        el = cfg->transport;
    }
    else if (!strncmp(key, "receiver.", 9)) {
        el = cfg->receiver;
    }
    else if (!strncmp(key, "service.", 8)) {
        el = cfg->membership;
    }
    else if (!strncmp(key, "valve.", 6)) {
        for (i = 0; i < cfg->valves->nelts; i++) {
            sc_elem_t *v = APR_ARRAY_IDX(cfg->valves, i, sc_elem_t *);
            if (v->cls->id == SC_C_REPLICATION_VALVE) {
                el = v;
            }
        }
    }
    else if (!strncmp(key, "listener.", 9) && cfg->listeners->nelts) {
        el = APR_ARRAY_IDX(cfg->listeners, 0, sc_elem_t *);
    }
    if (!el || !strcmp(name, "className")) {
        return 1;
    }
    i = sc_attr_index(el->cls, name, NULL);
    if (i >= 0 && el->srcs[i] != SC_SRC_DEFAULT) {
        /* the nested element says it too: the nested element wins */
        sc_warn_once(b->s, b->bt->file, line,
                     SCLOGNO(1004) "%s on <Cluster> is overridden by the nested "
                     "element at line %d", key, el->line);
        return 1;
    }
    ctx->err = set_attr(b, el, name, value, line, SC_SRC_PREFIX);
    return ctx->err == NULL;
}

/* Tomcat 5.5 sender: replicationMode and waitForAck become send options, and the
 * Sender's attributes move onto the Transport (where Tomcat 8.5+ has them). */
static const char *finish_sender(sc_builder *b)
{
    sc_cluster_cfg *cfg = b->cfg;
    sc_elem_t *s = cfg->sender, *t = cfg->transport;
    int i, si;
    const char *mode;
    long wait_for_ack;
    int opts_idx = key_index(b, cfg->cluster, K_SEND_OPTIONS);

    si = key_index(b, t, K_TX_WAIT_FOR_ACK);
    if (opts_idx < 0 || si < 0) {
        return NULL;                  /* refused: b->lookup_err */
    }
    for (i = 0; t->cls->attrs[i].name; i++) {
        if (s->srcs[i] != SC_SRC_DEFAULT && t->srcs[i] == SC_SRC_DEFAULT) {
            t->values[i] = s->values[i];
            t->srcs[i] = s->srcs[i];
            t->lines[i] = s->lines[i];
        }
    }
    mode = key_str(b, t, K_TX_MODE);
    wait_for_ack = t->srcs[si] != SC_SRC_DEFAULT ? t->values[si].num : 0;

    if (!cfg->legacy && !mode && t->srcs[si] == SC_SRC_DEFAULT) {
        return NULL;
    }
    if (!mode) {
        /* 5.5: a <Cluster/> without a Sender ran fastasyncqueue; a Sender
         * without replicationMode ran pooled */
        mode = (s->line || t->line) ? "pooled" : "fastasyncqueue";
    }
    if (strcmp(mode, "pooled") && strcmp(mode, "synchronous")
        && strcmp(mode, "asynchronous") && strcmp(mode, "fastasyncqueue")) {
        int line = s->line ? s->line : cfg->line;
        return build_error(b, line, "Sender replicationMode=\"%s\": use pooled, "
                           "synchronous, asynchronous or fastasyncqueue", mode);
    }
    if (cfg->cluster->srcs[opts_idx] == SC_SRC_DEFAULT) {
        long opts;
        if (!strcmp(mode, "asynchronous") || !strcmp(mode, "fastasyncqueue")) {
            opts = SC_SEND_ASYNCHRONOUS | (wait_for_ack ? SC_SEND_USE_ACK : 0);
        }
        else {
            opts = wait_for_ack ? SC_SEND_USE_ACK : 0;
        }
        cfg->cluster->values[opts_idx].num = opts;
        cfg->cluster->values[opts_idx].str = NULL;
        cfg->cluster->srcs[opts_idx] = SC_SRC_DERIVED;
        /* channelSendOptions acts: what it is derived from does */
        takes(t, key_index(b, t, K_TX_MODE));
        takes(t, si);
        APR_ARRAY_PUSH(cfg->notes, const char *) =
            apr_psprintf(b->p, "Cluster.channelSendOptions=%ld derived from Tomcat 5.5 "
                         "replicationMode=\"%s\" waitForAck=\"%s\"", opts, mode,
                         wait_for_ack ? "true" : "false");
    }
    if (!strcmp(mode, "synchronous")) {
        int pi = key_index(b, t, K_TX_POOL_SIZE);
        if (pi >= 0 && t->srcs[pi] == SC_SRC_DEFAULT) {
            t->values[pi].num = 1;
            t->srcs[pi] = SC_SRC_DERIVED;
        }
    }
    return NULL;
}

static const char *finish_receiver(sc_builder *b)
{
    sc_elem_t *r = b->cfg->receiver;
    int mi = key_index(b, r, K_RX_MAX_PORT);
    int ai = key_index(b, r, K_RX_AUTO_BIND);
    int ni = key_index(b, r, K_RX_MIN_THREADS);
    long port = key_num(b, r, K_RX_PORT);
    long max_threads = key_num(b, r, K_RX_MAX_THREADS);

    if (mi < 0 || ai < 0 || ni < 0) {
        return NULL;                  /* refused: b->lookup_err */
    }
    if (r->values[ai].num <= 0) {
        /* as Tomcat's ReceiverBase.setAutoBind: below 1 means 1, the port alone */
        APR_ARRAY_PUSH(b->cfg->notes, const char *) =
            apr_psprintf(b->p, "Receiver autoBind=\"%ld\" is taken as 1, as Tomcat does: "
                         "only port %ld is tried", r->values[ai].num, port);
        r->values[ai].num = 1;
    }
    if (r->srcs[mi] != SC_SRC_DEFAULT) {
        long maxport = r->values[mi].num;
        if (maxport < port) {
            return build_error(b, r->line ? r->line : b->cfg->line,
                               "Receiver tcpListenMaxPort=%ld is below port %ld",
                               maxport, port);
        }
        if (r->srcs[ai] == SC_SRC_DEFAULT) {
            r->values[ai].num = maxport - port + 1;
            r->srcs[ai] = SC_SRC_DERIVED;
            takes(r, mi);             /* autoBind acts: tcpListenMaxPort does */
        }
    }
    if (port + r->values[ai].num - 1 > 65535) {
        /* autoBind past the last port just stops at 65535 */
        r->values[ai].num = 65535 - port + 1;
        r->srcs[ai] = SC_SRC_DERIVED;
    }
    if (r->values[ni].num > max_threads) {
        sc_warn_once(b->s, b->bt->file, r->line ? r->line : b->cfg->line,
                     SCLOGNO(1005) "Receiver minThreads %ld is above maxThreads %ld: "
                     "using %ld", r->values[ni].num, max_threads, max_threads);
        r->values[ni].num = max_threads;
        r->srcs[ni] = SC_SRC_DERIVED;
    }
    return NULL;
}

/* Tomcat 5.5's one-line <Cluster/> defaults (cluster-howto, "default mode"). */
static void legacy_defaults(sc_builder *b, int membership_written, int receiver_written)
{
    sc_cluster_cfg *cfg = b->cfg;
    static const struct { sc_key key; const char *value; } mcast55[] = {
        { K_MCAST_PORT, "8012" }, { K_MCAST_FREQUENCY, "1000" },
        { K_MCAST_DROP_TIME, "30000" }, { K_COUNT, NULL }
    };
    static const struct { sc_key key; const char *value; } recv55[] = {
        { K_RX_PORT, "8015" }, { K_RX_AUTO_BIND, "5" }, { K_COUNT, NULL }
    };
    int i, k;
    if (!membership_written && cfg->membership->cls->id == SC_C_MCAST_SERVICE) {
        for (k = 0; mcast55[k].value; k++) {
            if ((i = key_index(b, cfg->membership, mcast55[k].key)) < 0) {
                return;               /* refused: b->lookup_err */
            }
            sc_parse_value(b->p, &cfg->membership->cls->attrs[i], mcast55[k].value,
                           &cfg->membership->values[i]);
        }
        APR_ARRAY_PUSH(cfg->notes, const char *) =
            "Membership: Tomcat 5.5 default mode (port 8012, frequency 1000, dropTime 30000)";
    }
    if (!receiver_written) {
        for (k = 0; recv55[k].value; k++) {
            if ((i = key_index(b, cfg->receiver, recv55[k].key)) < 0) {
                return;               /* refused: b->lookup_err */
            }
            sc_parse_value(b->p, &cfg->receiver->cls->attrs[i], recv55[k].value,
                           &cfg->receiver->values[i]);
        }
        APR_ARRAY_PUSH(cfg->notes, const char *) =
            "Receiver: Tomcat 5.5 default mode (first free port of 8015-8019)";
    }
}

/* Cross-checks Tomcat would make (or should have made) at startup. */
static const char *validate(sc_builder *b)
{
    sc_cluster_cfg *cfg = b->cfg;
    int i, j;
    long opts = key_num(b, cfg->cluster, K_SEND_OPTIONS);
    long session_size = key_num(b, cfg->manager, K_MAX_SESSION_SIZE);
    long message_size = key_num(b, cfg->receiver, K_RX_MAX_MESSAGE);
    int line;

    if (cfg->membership->cls->id == SC_C_MCAST_SERVICE) {
        long freq = key_num(b, cfg->membership, K_MCAST_FREQUENCY);
        long drop = key_num(b, cfg->membership, K_MCAST_DROP_TIME);
        if (drop <= freq) {
            /* Tomcat takes it as it is; so does the engine */
            line = cfg->membership->line ? cfg->membership->line : cfg->line;
            sc_warn_once(b->s, b->bt->file, line,
                         SCLOGNO(1415) "McastService dropTime %ld ms is not longer than "
                         "frequency %ld ms: a member is dropped whenever a heartbeat "
                         "comes late, and between two heartbeats (Tomcat accepts it "
                         "too); make dropTime a few times frequency", drop, freq);
        }
    }
    if (cfg->membership->cls->id == SC_C_CLOUD_MEMBERSHIP_SERVICE) {
        /* what sc_cloud_start() can run (sc_cloud.c, sc_kube.c); the engine
         * would exit on any other */
        const char *provider = key_str(b, cfg->membership, K_CLOUD_PROVIDER);
        int pi = key_index(b, cfg->membership, K_CLOUD_PROVIDER);
        if (pi >= 0 && provider && strcasecmp(provider, "dns") != 0
            && !strstr(provider, "DNSMembershipProvider")
            && strcasecmp(provider, "kubernetes") != 0
            && !strstr(provider, "KubernetesMembershipProvider")) {
            line = cfg->membership->lines[pi] ? cfg->membership->lines[pi]
                                              : cfg->membership->line;
            return build_error(b, line, "CloudMembershipService membershipProviderClassName="
                               "\"%s\" is not implemented: the member would leave the "
                               "cluster at start. Use \"kubernetes\" (Tomcat's default: the "
                               "pods the Kubernetes API server lists) or \"dns\" (the "
                               "addresses of dnsServiceName=\"...\" or of "
                               "DNS_MEMBERSHIP_SERVICE_NAME in httpd's environment)",
                               provider);
        }
    }
    if (sc_class_caveat(cfg->manager->cls)) {
        line = cfg->manager->line ? cfg->manager->line : cfg->line;
        sc_warn_once(b->s, b->bt->file, line, SCLOGNO(1414) "%s",
                     sc_class_caveat(cfg->manager->cls));
        APR_ARRAY_PUSH(cfg->notes, const char *) =
            apr_pstrcat(b->p, "Manager: ", sc_class_caveat(cfg->manager->cls), NULL);
    }
    {
        long sid = key_num(b, cfg->session_id_generator, K_SID_LENGTH);
        if (sid < 16) {
            line = cfg->session_id_generator->line ? cfg->session_id_generator->line
                                                   : cfg->line;
            sc_warn_once(b->s, b->bt->file, line,
                         SCLOGNO(1416) "SessionIdGenerator sessionIdLength %ld: session "
                         "ids of %ld random bits are easier to guess than Tomcat's "
                         "default of 16 bytes (128 bits)", sid, sid * 8);
        }
    }
    if (opts & SC_SEND_MULTICAST) {
        return build_error(b, cfg->line, "Cluster channelSendOptions includes multicast "
                           "(64): Tomcat does not send such messages at all; remove it");
    }
    if ((opts & SC_SEND_SYNCHRONIZED_ACK) && !(opts & SC_SEND_USE_ACK)) {
        sc_warn_once(b->s, b->bt->file, cfg->line,
                     SCLOGNO(1006) "channelSendOptions synchronized_ack (4) only works "
                     "together with use_ack (2)");
    }
    if (opts & SC_SEND_SECURE) {
        sc_warn_once(b->s, b->bt->file, cfg->line,
                     SCLOGNO(1007) "channelSendOptions secure (16) has no effect, as in "
                     "Tomcat; use EncryptInterceptor");
    }
    if (cfg->manager->cls->id == SC_C_BACKUP_MANAGER
        && (key_num(b, cfg->manager, K_MAP_SEND_OPTIONS) & SC_SEND_MULTICAST)) {
        return build_error(b, cfg->manager->line, "BackupManager mapSendOptions includes "
                           "multicast (64), which Tomcat never sends");
    }

    {
        long budget = key_num(b, cfg->manager, K_MAX_STORE_SIZE);
        line = cfg->manager->line ? cfg->manager->line : cfg->line;
        if (budget > 0 && budget < 1048576L) {
            return build_error(b, line, "Manager maxStoreSize=\"%ld\": the session "
                               "store's budget is at least 1048576 bytes (1 MiB); 0 "
                               "chooses it (a quarter of the machine's memory, at most "
                               "1 GiB)", budget);
        }
        if (budget > 0 && session_size > budget / 2) {
            return build_error(b, line, "Manager maxSessionSize=\"%ld\" is more than "
                               "half of maxStoreSize=\"%ld\": the store could not take a "
                               "new version of such a session while it holds the old one",
                               session_size, budget);
        }
    }
    if (session_size + SC_REPL_FULL_OVERHEAD > message_size) {
        /* a session as large as the store takes would not be replicated */
        line = cfg->manager->line ? cfg->manager->line : cfg->line;
        sc_warn_once(b->s, b->bt->file, line,
                     SCLOGNO(1386) "Manager maxSessionSize %ld is more than this "
                     "member's Receiver maxMessageSize %ld can carry (a change travels "
                     "with up to %d bytes more): a session larger than %ld bytes is "
                     "stored but not replicated (SC1384); raise maxMessageSize or lower "
                     "maxSessionSize", session_size, message_size, SC_REPL_FULL_OVERHEAD,
                     message_size - SC_REPL_FULL_OVERHEAD);
    }

    for (i = 0; i < cfg->interceptors->nelts; i++) {
        sc_elem_t *ic = APR_ARRAY_IDX(cfg->interceptors, i, sc_elem_t *);
        if (ic->cls->id == SC_C_DOMAIN_FILTER && !key_str(b, ic, K_FILTER_DOMAIN)) {
            return build_error(b, ic->line, "DomainFilterInterceptor needs a domain "
                               "attribute");
        }
        if (ic->cls->id == SC_C_ENCRYPT && !key_str(b, ic, K_ENC_KEY)) {
            return build_error(b, ic->line, "EncryptInterceptor needs an encryptionKey "
                               "attribute (hex)");
        }
        for (j = 0; j < i; j++) {
            sc_elem_t *o = APR_ARRAY_IDX(cfg->interceptors, j, sc_elem_t *);
            if (o->cls == ic->cls && ic->cls->id != SC_C_OTHER_INTERCEPTOR) {
                return build_error(b, ic->line, "%s is listed twice (first at line %d)",
                                   ic->cls->short_name, o->line);
            }
        }
    }

    for (i = 0; i < cfg->members->nelts; i++) {
        sc_elem_t *m = APR_ARRAY_IDX(cfg->members, i, sc_elem_t *);
        const char *host = key_str(b, m, K_MEMBER_HOST);
        long port = key_num(b, m, K_MEMBER_PORT);
        const sc_value_t *u1 = key_value(b, m, K_MEMBER_UNIQUE_ID);
        if (!host) {
            return build_error(b, m->line, "<Member> needs a host attribute");
        }
        if (port < 1) {
            return build_error(b, m->line, "<Member> needs a port attribute");
        }
        if (!strcmp(host, "auto")) {
            return build_error(b, m->line, "<Member host=\"auto\">: a static member "
                               "needs its real address");
        }
        for (j = 0; j < i; j++) {
            sc_elem_t *o = APR_ARRAY_IDX(cfg->members, j, sc_elem_t *);
            const sc_value_t *u2 = key_value(b, o, K_MEMBER_UNIQUE_ID);
            if (!strcmp(host, key_str(b, o, K_MEMBER_HOST))
                && port == key_num(b, o, K_MEMBER_PORT)) {
                return build_error(b, m->line, "<Member host=\"%s\" port=\"%ld\"> is "
                                   "listed twice (first at line %d)", host, port, o->line);
            }
            if (u1->nbytes == 16 && u2->nbytes == 16
                && !memcmp(u1->bytes, u2->bytes, 16)) {
                return build_error(b, m->line, "<Member> uniqueId %s is also used at "
                                   "line %d", u1->str, o->line);
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* The typed settings                                                          */
/* ------------------------------------------------------------------------- */

static const sc_elem_t *find_interceptor(const sc_cluster_cfg *cfg, sc_class_id id)
{
    int i;
    for (i = 0; i < cfg->interceptors->nelts; i++) {
        const sc_elem_t *el = APR_ARRAY_IDX(cfg->interceptors, i, const sc_elem_t *);
        if (el->cls->id == id) {
            return el;
        }
    }
    return NULL;
}

/* A uniqueId's 16 bytes, or NULL when it is not set. */
static const unsigned char *unique_id(const sc_value_t *v)
{
    return v->nbytes == 16 ? v->bytes : NULL;
}

/* cfg->set: every value the module's code reads, read once, after the checks
 * (sc_config.h says what each field means). */
static void build_settings(sc_builder *b)
{
    sc_cluster_cfg *cfg = b->cfg;
    sc_settings *set = apr_pcalloc(b->p, sizeof(*set));
    const sc_elem_t *m = cfg->membership, *mgr = cfg->manager, *rx = cfg->receiver;
    const sc_elem_t *el;
    const sc_value_t *d;
    sc_member_settings *members;
    sc_replication_valve_settings *rvs;
    int i, n;

    b->taking = 1;                    /* what is read here acts */
    set->send_options = key_num(b, cfg->cluster, K_SEND_OPTIONS);
    set->start_options = key_num(b, cfg->cluster, K_START_OPTIONS);
    set->replication_acked = (set->send_options & SC_SEND_USE_ACK)
                             && !(set->send_options & SC_SEND_ASYNCHRONOUS);

    /* the membership service: what the others have not reads -1 or NULL */
    set->mcast_port = set->mcast_ttl = set->mcast_loopback_disabled = -1;
    set->cloud_refresh_ms = set->cloud_connect_ms = set->cloud_read_ms = -1;
    switch (m->cls->id) {
    case SC_C_MCAST_SERVICE:
        set->heartbeat_ms = key_num(b, m, K_MCAST_FREQUENCY);
        set->drop_ms = key_num(b, m, K_MCAST_DROP_TIME);
        set->mcast_receive = (set->start_options & 4) != 0;
        set->mcast_send = (set->start_options & 8) != 0;
        set->mcast_address = key_str(b, m, K_MCAST_ADDRESS);
        set->mcast_port = key_num(b, m, K_MCAST_PORT);
        set->mcast_bind = key_str(b, m, K_MCAST_BIND);
        set->mcast_ttl = key_num(b, m, K_MCAST_TTL);
        set->mcast_loopback_disabled = key_num(b, m, K_MCAST_LOOPBACK_DISABLED);
        break;
    case SC_C_STATIC_MEMBERSHIP_SERVICE:
        set->heartbeat_ms = key_num(b, m, K_STATIC_PING_INTERVAL);
        set->drop_ms = key_num(b, m, K_STATIC_EXPIRATION);
        break;
    case SC_C_CLOUD_MEMBERSHIP_SERVICE:
        set->heartbeat_ms = 500;
        set->drop_ms = key_num(b, m, K_CLOUD_EXPIRATION);
        set->cloud_provider = key_str(b, m, K_CLOUD_PROVIDER);
        set->cloud_refresh_ms = key_num(b, m, K_CLOUD_REFRESH);
        /* what the provider reads (the others have no effect) */
        if (set->cloud_provider && (!strcasecmp(set->cloud_provider, "dns")
                                    || strstr(set->cloud_provider, "DNSMembershipProvider"))) {
            set->cloud_dns_name = key_str(b, m, K_CLOUD_DNS_NAME);
        }
        else {
            set->cloud_connect_ms = key_num(b, m, K_CLOUD_CONNECT_TIMEOUT);
            set->cloud_read_ms = key_num(b, m, K_CLOUD_READ_TIMEOUT);
        }
        break;
    default:
        set->heartbeat_ms = 500;
        set->drop_ms = -1;
        break;
    }

    set->receiver_address = key_str(b, rx, K_RX_ADDRESS);
    set->receiver_port = key_num(b, rx, K_RX_PORT);
    set->receiver_auto_bind = key_num(b, rx, K_RX_AUTO_BIND);
    set->max_message_size = key_num(b, rx, K_RX_MAX_MESSAGE);
    set->send_timeout_ms = key_num(b, cfg->transport, K_TX_TIMEOUT);
    set->max_retries = key_num(b, cfg->transport, K_TX_RETRIES);
    set->keep_alive_count = key_num(b, cfg->transport, K_TX_KEEP_ALIVE_COUNT);
    set->keep_alive_ms = key_num(b, cfg->transport, K_TX_KEEP_ALIVE_TIME);

    set->max_active_sessions = key_num(b, mgr, K_MAX_ACTIVE);
    set->max_session_size = key_num(b, mgr, K_MAX_SESSION_SIZE);
    set->max_store_size = key_num(b, mgr, K_MAX_STORE_SIZE);
    {
        const sc_value_t *f = key_value(b, mgr, K_ATTR_NAME_FILTER);
        set->attr_name_filter = f->re;
        set->attr_name_filter_text = f->re ? f->str : NULL;
        set->warn_attr_filter = key_num(b, mgr, K_WARN_ATTR_FILTER) == 1;
    }
    set->max_inactive_s = key_num(b, mgr, K_MAX_INACTIVE);
    set->process_expires_frequency = key_num(b, mgr, K_PROCESS_EXPIRES);
    set->probation_s = key_num(b, mgr, K_PROBATION);
    set->expire_sessions_on_shutdown = key_num(b, mgr, K_EXPIRE_ON_SHUTDOWN) == 1;
    set->session_id_length = key_num(b, cfg->session_id_generator, K_SID_LENGTH);
    if (mgr->cls->id == SC_C_DELTA_MANAGER) {
        set->state_transfer_timeout_s = key_num(b, mgr, K_STATE_TRANSFER_TIMEOUT);
        set->send_all_sessions_size = key_num(b, mgr, K_SEND_ALL_SIZE);
        set->send_all_sessions = key_num(b, mgr, K_SEND_ALL) == 1;
        set->send_all_sessions_wait_ms = key_num(b, mgr, K_SEND_ALL_WAIT);
    }
    else {
        /* BackupManager has neither */
        set->backup_manager = 1;
        set->map_send_options = key_num(b, mgr, K_MAP_SEND_OPTIONS);
        if (!set->map_send_options) {
            set->map_send_options = SC_SEND_USE_ACK | SC_SEND_SYNCHRONIZED_ACK;  /* as Tomcat */
        }
        set->map_acked = (set->map_send_options & SC_SEND_USE_ACK)
                         && !(set->map_send_options & SC_SEND_ASYNCHRONOUS);
        set->rpc_timeout_ms = key_num(b, mgr, K_RPC_TIMEOUT);
        set->access_timeout_ms = key_num(b, mgr, K_ACCESS_TIMEOUT);
        set->terminate_on_start_failure = key_num(b, mgr, K_TERMINATE_ON_START) == 1;
        set->state_transfer_timeout_s = set->send_all_sessions_size = -1;
        set->send_all_sessions = 1;
        set->send_all_sessions_wait_ms = 0;
    }

    el = find_interceptor(cfg, SC_C_TCP_FAILURE_DETECTOR);
    set->has_tcp_failure_detector = el != NULL;
    set->tcp_check_timeout_ms = el ? key_num(b, el, K_FD_CONNECT_TIMEOUT) : 1000;
    /* readTestTimeout acts with performReadTest only (as in Tomcat) */
    set->tcp_read_test = el && key_num(b, el, K_FD_READ_TEST) == 1;
    set->tcp_answer_timeout_ms = set->tcp_read_test ? key_num(b, el, K_FD_READ_TEST_TIMEOUT)
                                                    : set->tcp_check_timeout_ms;
    el = find_interceptor(cfg, SC_C_TCP_PING);
    set->has_tcp_ping = el != NULL;
    set->tcp_ping_interval_ms = el ? key_num(b, el, K_PING_INTERVAL) : -1;
    set->tcp_ping_ms = el && set->tcp_ping_interval_ms < set->heartbeat_ms
                       ? set->tcp_ping_interval_ms : set->heartbeat_ms;
    set->has_message_dispatch = find_interceptor(cfg, SC_C_MESSAGE_DISPATCH) != NULL;
    el = find_interceptor(cfg, SC_C_THROUGHPUT);
    set->has_throughput = el != NULL;
    set->throughput_interval = el ? key_num(b, el, K_THROUGHPUT_INTERVAL) : 0;

    /* the domain: DomainFilterInterceptor's, else the McastService's, else
     * the LocalMember's */
    el = find_interceptor(cfg, SC_C_DOMAIN_FILTER);
    set->has_domain_filter = el != NULL;
    d = el ? key_value(b, el, K_FILTER_DOMAIN)
           : (m->cls->id == SC_C_MCAST_SERVICE ? key_value(b, m, K_MCAST_DOMAIN) : NULL);
    if ((!d || !d->nbytes) && cfg->local_member) {
        d = key_value(b, cfg->local_member, K_MEMBER_DOMAIN);
    }
    if (d && d->nbytes) {
        set->domain = d->bytes;
        set->domain_len = d->nbytes;
    }

    if ((el = find_interceptor(cfg, SC_C_ENCRYPT))) {
        const sc_value_t *k = key_value(b, el, K_ENC_KEY);
        const sc_value_t *pk = key_value(b, el, K_ENC_PREVIOUS_KEY);
        set->encrypted = 1;
        set->encryption_key = k->nbytes ? k->bytes : NULL;
        set->encryption_key_len = k->nbytes;
        set->previous_encryption_key = pk->nbytes ? pk->bytes : NULL;
        set->previous_encryption_key_len = pk->nbytes;
        set->encryption_algorithm = key_str(b, el, K_ENC_ALGORITHM);
        set->encrypt_file = el->file;
        set->encrypt_line = el->line;
    }
    for (i = 0; i < cfg->interceptors->nelts; i++) {
        el = APR_ARRAY_IDX(cfg->interceptors, i, const sc_elem_t *);
        if (!sc_interceptor_runs(el->cls->id)) {
            set->not_run = set->not_run ? apr_pstrcat(b->p, set->not_run, ", ",
                                                      el->cls->short_name, NULL)
                                        : el->cls->short_name;
        }
    }

    if (cfg->local_member) {
        set->local_unique_id = unique_id(key_value(b, cfg->local_member,
                                                   K_MEMBER_UNIQUE_ID));
    }
    n = cfg->members->nelts;
    members = apr_pcalloc(b->p, sizeof(*members) * (n ? n : 1));
    for (i = 0; i < n; i++) {
        el = APR_ARRAY_IDX(cfg->members, i, const sc_elem_t *);
        members[i].host = key_str(b, el, K_MEMBER_HOST);
        members[i].port = key_num(b, el, K_MEMBER_PORT);
        members[i].unique_id = unique_id(key_value(b, el, K_MEMBER_UNIQUE_ID));
    }
    set->members = members;
    set->nmembers = n;

    n = 0;
    rvs = apr_pcalloc(b->p, sizeof(*rvs) * (cfg->valves->nelts ? cfg->valves->nelts : 1));
    for (i = 0; i < cfg->valves->nelts; i++) {
        el = APR_ARRAY_IDX(cfg->valves, i, const sc_elem_t *);
        switch (el->cls->id) {
        case SC_C_REPLICATION_VALVE:
            rvs[n].primary_indicator = key_num(b, el, K_RV_PRIMARY_INDICATOR) != 0;
            rvs[n].primary_indicator_name = key_str(b, el, K_RV_PRIMARY_INDICATOR_NAME);
            rvs[n].filter = key_value(b, el, K_RV_FILTER)->re;
            n++;
            break;
        case SC_C_JVMROUTE_BINDER_VALVE:
            if (!set->rebind_attribute && key_num(b, el, K_BINDER_ENABLED) == 1) {
                set->rebind_attribute = key_str(b, el, K_BINDER_ATTRIBUTE);
            }
            break;
        default:
            break;
        }
    }
    set->replication_valves = rvs;
    set->nreplication_valves = n;
    cfg->set = set;
    b->taking = 0;
}

/* The attributes of el written in the block that do not act ('from': the
 * Sender, whose written attributes the Transport holds, to name them as
 * written). */
static void find_no_effect(sc_builder *b, const sc_elem_t *el, const sc_elem_t *from)
{
    int i;
    for (i = 0; el->cls->attrs[i].name; i++) {
        const sc_attr_def *def = &el->cls->attrs[i];
        const sc_elem_t *who = el;
        const char *name = def->name, *why;
        if (el->used[i] || el->srcs[i] == SC_SRC_DEFAULT || el->srcs[i] == SC_SRC_DERIVED) {
            continue;
        }
        if (from && from->srcs[i] != SC_SRC_DEFAULT && from->lines[i] == el->lines[i]) {
            who = from;
        }
        if (el->srcs[i] == SC_SRC_LEGACY && def->legacy && *def->legacy) {
            name = def->legacy;
        }
        no_effect(b, el->lines[i], attr_label(b->p, who, name));
        if ((why = sc_attr_no_effect(el->cls, def->name))) {
            APR_ARRAY_PUSH(b->cfg->ignored, const char *) =
                apr_psprintf(b->p, "%s:%d: %s attribute %s (%s)", b->bt->file,
                             el->lines[i], el->cls->short_name, def->name, why);
        }
    }
}

static void find_no_effect_list(sc_builder *b, apr_array_header_t *els)
{
    int i;
    for (i = 0; i < els->nelts; i++) {
        find_no_effect(b, APR_ARRAY_IDX(els, i, const sc_elem_t *), NULL);
    }
}

static int by_line(const void *va, const void *vb)
{
    const sc_no_effect *a = va, *b = vb;
    return a->line != b->line ? (a->line < b->line ? -1 : 1)
                              : (a->seq < b->seq ? -1 : a->seq > b->seq);
}

/* One warning for the block: every attribute written in it that has no
 * effect here, in the order they are written (SC1413). */
static void warn_no_effect(sc_builder *b)
{
    sc_cluster_cfg *cfg = b->cfg;
    const char *list = NULL;
    int i, n;

    find_no_effect(b, cfg->cluster, NULL);
    find_no_effect(b, cfg->manager, NULL);
    find_no_effect(b, cfg->session_id_generator, NULL);
    find_no_effect(b, cfg->channel, NULL);
    find_no_effect(b, cfg->membership, NULL);
    if (cfg->local_member) {
        find_no_effect(b, cfg->local_member, NULL);
    }
    find_no_effect_list(b, cfg->members);
    find_no_effect(b, cfg->receiver, NULL);
    find_no_effect(b, cfg->transport, cfg->sender);
    find_no_effect_list(b, cfg->interceptors);
    find_no_effect_list(b, cfg->valves);
    find_no_effect_list(b, cfg->listeners);
    n = b->no_effect->nelts;
    if (n == 0) {
        return;
    }
    qsort(b->no_effect->elts, n, sizeof(sc_no_effect), by_line);
    for (i = 0; i < n; i++) {
        const sc_no_effect *e = &APR_ARRAY_IDX(b->no_effect, i, sc_no_effect);
        const char *one = apr_psprintf(b->ptemp, "%s (line %d)", e->what, e->line);
        list = list ? apr_pstrcat(b->ptemp, list, ", ", one, NULL) : one;
    }
    sc_warn_once(b->s, cfg->file, cfg->line,
                 SCLOGNO(1413) "%d attribute%s written in the <Cluster> block ha%s no "
                 "effect in httpd: %s; -D DUMP_CLUSTER and the cluster-manager page mark "
                 "%s \"no effect\"", n, n == 1 ? "" : "s", n == 1 ? "s" : "ve", list,
                 n == 1 ? "it" : "them");
}

static const char *build(sc_builder *b, xmlNodePtr root)
{
    sc_cluster_cfg *cfg = b->cfg;
    sc_tag_pos *tpos = NULL;
    const sc_class_def *cls;
    const char *err, *cn = NULL;
    int legacy = 0, membership_written, receiver_written;
    prefix_ctx pctx;

    if ((err = check_keys(b))) {
        return err;
    }
    if (b->bt->tags->nelts > 0) {
        tpos = &APR_ARRAY_IDX(b->bt->tags, 0, sc_tag_pos);
    }
    b->tag_index = 1;
    {
        xmlChar *v = xmlGetNoNsProp(root, (const xmlChar *)"className");
        if (v) {
            cn = trim(b->p, (const char *)v);
            xmlFree(v);
        }
    }
    if (cn) {
        cls = sc_class_lookup(SC_EL_CLUSTER, cn, &legacy);
        if (!cls) {
            return build_error(b, cfg->line, "unknown Cluster class '%s': use "
                               "org.apache.catalina.ha.tcp.SimpleTcpCluster", cn);
        }
    }
    else {
        cls = sc_class_by_id(SC_C_SIMPLE_TCP_CLUSTER);
    }
    cfg->legacy = legacy;
    cfg->cluster = sc_elem_new(b->p, cls, cn, b->bt->file, cfg->line);

    if ((err = cluster_attrs(b, root, tpos))) {
        return err;
    }
    if ((err = walk(b, root, SC_EL_CLUSTER, cfg->cluster))) {
        return err;
    }

    /* Tomcat 5.5 managerClassName / manager.className */
    if (!b->managerClassName && apr_table_get(b->prefixed, "manager.className")) {
        b->managerClassName = trim(b->p, apr_table_get(b->prefixed, "manager.className"));
        b->managerClassLine = atoi(apr_table_get(b->prefixed_line, "manager.className"));
    }
    if (b->managerClassName) {
        if (cfg->manager) {
            sc_warn_once(b->s, b->bt->file, b->managerClassLine,
                         SCLOGNO(1008) "managerClassName on <Cluster> is overridden by "
                         "<Manager> at line %d", cfg->manager->line);
        }
        else {
            const sc_class_def *mc = sc_class_lookup(SC_EL_MANAGER, b->managerClassName,
                                                     NULL);
            if (!mc) {
                return build_error(b, b->managerClassLine, "unknown Manager class '%s': "
                                   "use org.apache.catalina.ha.session.DeltaManager or "
                                   "org.apache.catalina.ha.session.BackupManager",
                                   b->managerClassName);
            }
            cfg->manager = sc_elem_new(b->p, mc, b->managerClassName, b->bt->file,
                                       b->managerClassLine);
        }
    }

    /* the elements Tomcat fills in when they are not written */
    membership_written = cfg->membership != NULL;
    receiver_written = cfg->receiver != NULL;
    if (!cfg->manager) {
        cfg->manager = make_default(b, SC_C_DELTA_MANAGER);
    }
    if (!cfg->session_id_generator) {
        cfg->session_id_generator = make_default(b, SC_C_SESSION_ID_GENERATOR);
    }
    if (!cfg->channel) {
        cfg->channel = make_default(b, SC_C_GROUP_CHANNEL);
    }
    if (!cfg->membership) {
        cfg->membership = make_default(b, SC_C_MCAST_SERVICE);
    }
    if (!cfg->receiver) {
        cfg->receiver = make_default(b, SC_C_NIO_RECEIVER);
    }
    if (!cfg->sender) {
        cfg->sender = make_default(b, SC_C_REPLICATION_TRANSMITTER);
    }
    if (!cfg->transport) {
        cfg->transport = make_default(b, SC_C_POOLED_PARALLEL_SENDER);
    }
    if (cfg->valves->nelts == 0) {
        APR_ARRAY_PUSH(cfg->valves, sc_elem_t *) = make_default(b, SC_C_JVMROUTE_BINDER_VALVE);
        APR_ARRAY_PUSH(cfg->valves, sc_elem_t *) = make_default(b, SC_C_REPLICATION_VALVE);
        APR_ARRAY_PUSH(cfg->notes, const char *) =
            "Valve: none written, Tomcat's defaults added (JvmRouteBinderValve, "
            "ReplicationValve)";
    }
    if (cfg->listeners->nelts == 0) {
        APR_ARRAY_PUSH(cfg->listeners, sc_elem_t *) =
            make_default(b, SC_C_CLUSTER_SESSION_LISTENER);
        APR_ARRAY_PUSH(cfg->notes, const char *) =
            "ClusterListener: none written, Tomcat's default added (ClusterSessionListener)";
    }
    if (cfg->interceptors->nelts == 0) {
        APR_ARRAY_PUSH(cfg->interceptors, sc_elem_t *) = make_default(b, SC_C_MESSAGE_DISPATCH);
        APR_ARRAY_PUSH(cfg->interceptors, sc_elem_t *) =
            make_default(b, SC_C_TCP_FAILURE_DETECTOR);
        APR_ARRAY_PUSH(cfg->notes, const char *) =
            "Interceptor: none written, Tomcat's defaults added (MessageDispatchInterceptor, "
            "TcpFailureDetector)";
    }
    if (cfg->legacy && cls->id == SC_C_SIMPLE_TCP_CLUSTER
        && strstr(cfg->cluster->class_name, ".cluster.")) {
        legacy_defaults(b, membership_written, receiver_written);
    }

    pctx.b = b;
    pctx.err = NULL;
    apr_table_do(apply_prefix, &pctx, b->prefixed, NULL);
    if (pctx.err) {
        return pctx.err;
    }
    err = finish_sender(b);
    if (!err) {
        err = finish_receiver(b);
    }
    if (!err) {
        err = validate(b);
    }
    if (!err) {
        build_settings(b);
    }
    if (b->lookup_err) {
        return b->lookup_err;         /* a misspelt name explains any error after it */
    }
    if (err) {
        return err;
    }
    {
        /* what the interceptors do here, where it is not what Tomcat does */
        apr_array_header_t *ic = sc_cfg_interceptor_notes(b->p, b->cfg);
        apr_array_cat(b->cfg->notes, ic);
    }
    warn_no_effect(b);
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* What the interceptors do here                                              */
/* ------------------------------------------------------------------------- */

apr_array_header_t *sc_cfg_interceptor_notes(apr_pool_t *p, const sc_cluster_cfg *cfg)
{
    apr_array_header_t *out = apr_array_make(p, 4, sizeof(const char *));
    const sc_settings *set = cfg->set;
    long hb = set->heartbeat_ms;
    int i, written = 0;

    if (set->has_message_dispatch) {
        APR_ARRAY_PUSH(out, const char *) =
            "MessageDispatchInterceptor changes nothing here: a message the request "
            "does not wait for (channelSendOptions asynchronous 8, or without use_ack "
            "2) is queued by the engine and sent from its own loop with or without it; "
            "its maxQueueSize, alwaysSend, maxThreads, maxSpareThreads and "
            "keepAliveTime have no effect";
    }
    else if (set->send_options & SC_SEND_ASYNCHRONOUS) {
        APR_ARRAY_PUSH(out, const char *) =
            "channelSendOptions asynchronous (8) without MessageDispatchInterceptor: "
            "Tomcat would send from the request's thread; here the engine queues the "
            "message and sends it from its own loop all the same";
    }
    if (set->has_tcp_ping) {
        long iv = set->tcp_ping_interval_ms;
        APR_ARRAY_PUSH(out, const char *) = iv < hb
            ? apr_psprintf(p, "TcpPingInterceptor: every connected member gets a TCP "
                           "ping every %ld ms (interval) instead of with each heartbeat "
                           "(every %ld ms), sent by the engine's loop whatever useThread "
                           "says; staticOnly has no effect", iv, hb)
            : apr_psprintf(p, "TcpPingInterceptor changes nothing here: every connected "
                           "member gets a TCP ping with each heartbeat, every %ld ms, at "
                           "least as often as interval %ld ms; useThread and staticOnly "
                           "have no effect", hb, iv);
    }
    for (i = 0; i < cfg->interceptors->nelts; i++) {
        written += APR_ARRAY_IDX(cfg->interceptors, i, const sc_elem_t *)->line > 0;
    }
    if (written > 1) {
        APR_ARRAY_PUSH(out, const char *) =
            "Interceptor order has no effect here: each interceptor acts at its own place "
            "in the engine, wherever it is written (EncryptInterceptor seals and opens "
            "next to the wire, DomainFilterInterceptor drops heartbeats before the "
            "membership sees them, TcpFailureDetector checks every member that falls "
            "silent, static members too)";
    }
    return out;
}

/* ------------------------------------------------------------------------- */
/* Step 2 and the entry points                                                */
/* ------------------------------------------------------------------------- */

/* libxml2 reports every error; the first one is the cause, the rest follow
 * from its recovery.  Keep the first. */
typedef struct {
    int set;
    int line;
    char msg[512];
} sc_xml_error;

static void xml_first_error(void *ctx, xmlErrorPtr e)
{
    /* libxml2 passes ctxt->userData, which the SAX2 handlers need to be the
     * parser context itself; our record hangs off its _private */
    sc_xml_error *fe = ((xmlParserCtxtPtr)ctx)->_private;
    if (!fe || fe->set || !e || e->level < XML_ERR_ERROR) {
        return;
    }
    fe->set = 1;
    fe->line = e->line;
    apr_cpystrn(fe->msg, e->message ? e->message : "malformed XML", sizeof(fe->msg));
}

/* libxml2's messages say "line N" of its own text; make that the file's line. */
static const char *map_message_lines(apr_pool_t *p, const sc_block_text *bt,
                                     const char *msg)
{
    const char *out = "", *c = msg, *hit;
    while ((hit = strstr(c, "line ")) && apr_isdigit(hit[5])) {
        char *end;
        long n = strtol(hit + 5, &end, 10);
        out = apr_pstrcat(p, out, apr_pstrmemdup(p, c, hit - c), "line ",
                          apr_itoa(p, text_line_to_file(bt, (int)n)), NULL);
        c = end;
    }
    return apr_pstrcat(p, out, c, NULL);
}

static const char *parse_block(apr_pool_t *p, apr_pool_t *ptemp, server_rec *s,
                               sc_block_text *bt, sc_cluster_cfg **out)
{
    xmlParserCtxtPtr ctxt;
    xmlDocPtr doc;
    xmlNodePtr root;
    sc_builder b;
    sc_cluster_cfg *cfg;
    const char *err;

    xmlInitParser();        /* idempotent; other modules may share libxml2 */
    sc_xml_error first;

    memset(&first, 0, sizeof(first));
    ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        return "cannot allocate an XML parser";
    }
    /* a structured handler on this parser only: no process-wide state */
    ctxt->sax->serror = xml_first_error;
    ctxt->sax->initialized = XML_SAX2_MAGIC;
    ctxt->_private = &first;
    doc = xmlCtxtReadMemory(ctxt, bt->text, (int)bt->len, "Cluster", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING
                            | XML_PARSE_NOCDATA);
    if (!doc || !ctxt->wellFormed) {
        xmlErrorPtr xe = xmlCtxtGetLastError(ctxt);
        const char *msg;
        int line;
        if (first.set) {
            msg = trim(p, first.msg);
            line = text_line_to_file(bt, first.line);
        }
        else {
            msg = xe && xe->message ? trim(p, xe->message) : "malformed XML";
            line = text_line_to_file(bt, xe ? xe->line : 1);
        }
        msg = map_message_lines(p, bt, msg);
        if (doc) {
            xmlFreeDoc(doc);
        }
        xmlFreeParserCtxt(ctxt);
        return apr_psprintf(p, "%s:%d: malformed XML in the <Cluster> block: %s",
                            bt->file, line, msg);
    }
    xmlFreeParserCtxt(ctxt);

    root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "Cluster") != 0) {
        xmlFreeDoc(doc);
        return apr_psprintf(p, "%s:%d: the block must be a <Cluster> element",
                            bt->file, bt->first_line);
    }

    cfg = apr_pcalloc(p, sizeof(*cfg));
    cfg->file = bt->file;
    cfg->line = bt->first_line;
    cfg->interceptors = apr_array_make(p, 4, sizeof(sc_elem_t *));
    cfg->members = apr_array_make(p, 4, sizeof(sc_elem_t *));
    cfg->valves = apr_array_make(p, 2, sizeof(sc_elem_t *));
    cfg->listeners = apr_array_make(p, 2, sizeof(sc_elem_t *));
    cfg->ignored = apr_array_make(p, 2, sizeof(const char *));
    cfg->notes = apr_array_make(p, 2, sizeof(const char *));

    memset(&b, 0, sizeof(b));
    b.p = p;
    b.ptemp = ptemp;
    b.s = s;
    b.bt = bt;
    b.cfg = cfg;
    b.prefixed = apr_table_make(ptemp, 4);
    b.prefixed_line = apr_table_make(ptemp, 4);
    b.no_effect = apr_array_make(ptemp, 8, sizeof(sc_no_effect));

    err = build(&b, root);
    xmlFreeDoc(doc);
    if (err) {
        return err;
    }
    *out = cfg;
    return NULL;
}

const char *sc_config_parse_text(apr_pool_t *p, apr_pool_t *ptemp, server_rec *s,
                                 const char *file, int first_line,
                                 const char *text, apr_size_t len,
                                 sc_cluster_cfg **cfg)
{
    scanner sc;
    sc_block_text bt;
    struct ap_varbuf vb;
    const char *err = NULL;
    apr_size_t start = 0, i;
    int line = first_line;

    scanner_init(&sc, p, file);
    memset(&bt, 0, sizeof(bt));
    bt.p = p;
    bt.file = file;
    bt.first_line = first_line;
    bt.line_map = apr_array_make(ptemp, 64, sizeof(int));
    ap_varbuf_init(ptemp, &vb, 4096);

    for (i = 0; i <= len && !err; i++) {
        if (i == len || text[i] == '\n') {
            const char *l = apr_pstrmemdup(ptemp, text + start, i - start);
            if (i == len && i == start) {
                break;
            }
            err = add_line(&sc, &bt, &vb, l, line++);
            start = i + 1;
            if (sc.done) {
                break;
            }
        }
    }
    if (!err && !sc.done) {
        err = unclosed_error(&sc, file, first_line, "at the end of the text");
    }
    if (err) {
        return err;
    }
    bt.text = vb.buf;
    bt.tags = sc.tags;
    return parse_block(p, ptemp, s, &bt, cfg);
}

const char *sc_config_read_block(cmd_parms *cmd, const char *args,
                                 sc_cluster_cfg **cfg)
{
    scanner sc;
    sc_block_text bt;
    struct ap_varbuf vb, lb;
    const char *file = cmd->config_file->name;
    int first_line = cmd->config_file->line_number;
    const char *err;

    scanner_init(&sc, cmd->pool, file);
    memset(&bt, 0, sizeof(bt));
    bt.p = cmd->pool;
    bt.file = file;
    bt.first_line = first_line;
    bt.line_map = apr_array_make(cmd->temp_pool, 64, sizeof(int));
    ap_varbuf_init(cmd->temp_pool, &vb, 4096);
    ap_varbuf_init(cmd->temp_pool, &lb, 1024);

    /* the directive line: "<Cluster" + its arguments (${VAR} already resolved) */
    err = add_line(&sc, &bt, &vb, apr_pstrcat(cmd->temp_pool, "<Cluster ", args, NULL),
                   first_line);
    while (!err && !sc.done) {
        const char *l;
        apr_status_t rv = ap_varbuf_cfg_getline(&lb, cmd->config_file,
                                                SC_MAX_BLOCK_BYTES);
        if (rv == APR_EOF) {
            err = unclosed_error(&sc, file, first_line, "before the end of the file");
            break;
        }
        if (rv != APR_SUCCESS) {
            err = apr_psprintf(cmd->pool, "%s:%d: line too long or unreadable inside "
                               "<Cluster>", file, cmd->config_file->line_number);
            break;
        }
        l = lb.buf;
        if (sc.state == SCAN_TEXT && l[0] == '#') {
            continue;           /* an httpd comment line */
        }
        l = ap_resolve_env(cmd->temp_pool, l);
        err = add_line(&sc, &bt, &vb, l, cmd->config_file->line_number);
    }
    ap_varbuf_free(&lb);
    if (err) {
        return err;
    }
    bt.text = vb.buf;
    bt.tags = sc.tags;
    return parse_block(cmd->pool, cmd->temp_pool, cmd->server, &bt, cfg);
}

/* A route (SessionClusterRoute, jvmRoute): 1-63 letters, digits, '-' or '_'. */
int sc_valid_route(const char *r)
{
    apr_size_t n = strlen(r);
    if (n == 0 || n > SC_MAX_ROUTE_LEN) {
        return 0;
    }
    for (; *r; r++) {
        if (!apr_isalnum(*r) && *r != '-' && *r != '_') {
            return 0;
        }
    }
    return 1;
}
