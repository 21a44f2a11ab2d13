/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sid_draw.c -- prints session ids made by the module's own sc_sid_new()
 * (sc_repl.c), one a line, for t/cluster/session_ids.t to check their shape,
 * uniqueness and the distribution of their bits.
 *
 *   sid_draw COUNT ROUTE
 *
 * Built by `make t/tools/sid_draw` (Makefile.am); not installed.
 */
#include "sc_repl.h"

#include "apr_general.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    apr_pool_t *pool, *tmp;
    long n, i;
    char *end;

    if (argc != 3 || (n = strtol(argv[1], &end, 10)) <= 0 || *end) {
        fprintf(stderr, "usage: sid_draw COUNT ROUTE\n"
                        "  prints COUNT session ids from sc_sid_new(ROUTE), one a line\n");
        return 2;
    }
    apr_initialize();
    apr_pool_create(&pool, NULL);
    apr_pool_create(&tmp, pool);
    for (i = 0; i < n; i++) {
        const char *id = sc_sid_new(tmp, argv[2], SC_SID_BYTES_DEFAULT);
        if (!id) {
            fprintf(stderr, "sid_draw: sc_sid_new failed after %ld ids\n", i);
            return 1;
        }
        puts(id);
        if (i % 1000 == 999) {
            apr_pool_clear(tmp);
        }
    }
    apr_pool_destroy(pool);
    apr_terminate();
    return fflush(stdout) == 0 ? 0 : 1;
}
