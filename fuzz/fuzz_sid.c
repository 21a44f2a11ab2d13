/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fuzz_sid -- the session id parsers of sc_repl.c that read what a client
 * sends: sc_cookie_value (a Cookie header), sc_url_sid (";jsessionid=" in a
 * URI) and sc_sid_valid.
 *
 * The input is split in two at its first NUL (else half way): the first part
 * is the Cookie header, the second the URI (and each is tried as the other
 * too).  Properties: a value returned is non-empty, shorter than SC_SID_MAX,
 * holds no ';' (nor, from a URI, '/', '?' or '#'), and is a piece of the text
 * it came from; an id sc_sid_valid accepts has the shape it documents (an
 * even count of 2 to 2 x SC_SID_BYTES_MAX hex digits, msm's optional
 * "-<node id>" of 1 to SC_SID_NODE_MAX letters, digits, '-' or '_', '.', a
 * route of 1-63 letters, digits, '-' or '_').
 */
#include "fuzz_common.h"

#include <string.h>

#include "apr_strings.h"
#include "sc_repl.h"

static int hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int route_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || c == '-' || c == '_';
}

static void check_valid(const char *id)
{
    apr_size_t n = strlen(id), i, h = 0;
    if (!sc_sid_valid(id)) {
        return;
    }
    while (h < n && id[h] != '.' && id[h] != '-') {
        FUZZ_CHECK(hex(id[h]));
        h++;
    }
    FUZZ_CHECK(h >= 2 && h <= 2 * SC_SID_BYTES_MAX && h % 2 == 0);
    i = h;
    if (id[h] == '-') {
        /* msm's node id */
        for (h++; h < n && id[h] != '.'; h++) {
            FUZZ_CHECK(route_char(id[h]));
        }
        FUZZ_CHECK(h - i - 1 >= 1 && h - i - 1 <= SC_SID_NODE_MAX);
    }
    FUZZ_CHECK(id[h] == '.');
    FUZZ_CHECK(n - h - 1 >= 1 && n - h - 1 <= 63);
    FUZZ_CHECK(n < SC_SID_MAX);
    for (i = h + 1; i < n; i++) {
        FUZZ_CHECK(route_char(id[i]));
    }
}

static void check_value(const char *v, const char *from, const char *forbidden)
{
    apr_size_t n;
    if (!v) {
        return;
    }
    n = strlen(v);
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(n < SC_SID_MAX);
    FUZZ_CHECK(strpbrk(v, forbidden) == NULL);
    FUZZ_CHECK(strstr(from, v) != NULL);
    check_valid(v);
}

static void one(apr_pool_t *p, const char *header, const char *uri)
{
    check_value(sc_cookie_value(p, header, "JSESSIONID"), header, ";");
    check_value(sc_cookie_value(p, header, "SESSION_CLUSTER"), header, ";");
    check_value(sc_url_sid(p, uri), uri, ";/?#");
    check_valid(header);
    check_valid(uri);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    const char *nul = memchr(data, '\0', size);
    apr_size_t split = nul ? (apr_size_t)(nul - (const char *)data) : size / 2;
    const char *a = apr_pstrmemdup(p, (const char *)data, split);
    const char *b = apr_pstrmemdup(p, (const char *)data + split + (nul ? 1 : 0),
                                   size - split - (nul ? 1 : 0));
    one(p, a, b);
    one(p, b, a);
    return 0;
}
