/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * fuzz_config -- the <Cluster> block reader: sc_config_parse_text (sc_config.c:
 * the structural scanner, libxml2, the class catalogue of sc_classes.c, the
 * Tomcat 5.5 mapping, the defaults and the validation) on the input as the
 * text of a block (which, by its contract, starts at "<Cluster").
 *
 * As in httpd, the block is read with a temporary pool that is destroyed
 * afterwards (httpd clears ptemp after the configuration is read); what was
 * parsed, in the configuration pool, is then dumped (sc_config_dump,
 * sc_dump.c), so anything the configuration kept from the temporary pool is
 * a use after free for AddressSanitizer.  Properties: a refusal is a
 * non-empty text naming the file; a success sets the configuration, with
 * the elements every consumer takes for granted.
 *
 * httpd's own functions that sc_config.c calls are in httpd_stubs.c.
 */
#include "fuzz_common.h"

#include <string.h>

#include "sc_private.h"

#define FUZZ_FILE "fuzz.conf"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static process_rec process;
    static server_rec server;
    apr_pool_t *p = fuzz_pool(), *ptemp;
    sc_cluster_cfg *cfg = NULL;
    apr_array_header_t *lines;
    const char *err;

    /* sc_warn_once keeps what it warned about in the process pool */
    process.pool = process.pconf = p;
    process.short_name = "fuzz_config";
    server.process = &process;
    server.log.level = APLOG_WARNING;

    if (apr_pool_create(&ptemp, p) != APR_SUCCESS) {
        abort();
    }
    err = sc_config_parse_text(p, ptemp, &server, FUZZ_FILE, 1, (const char *)data, size,
                               &cfg);
    apr_pool_destroy(ptemp);
    if (err) {
        FUZZ_CHECK(*err != '\0');
        FUZZ_CHECK(strncmp(err, FUZZ_FILE ":", sizeof(FUZZ_FILE)) == 0);
        return 0;
    }
    FUZZ_CHECK(cfg != NULL);
    FUZZ_CHECK(cfg->cluster && cfg->manager && cfg->channel && cfg->membership
               && cfg->receiver && cfg->sender && cfg->transport);
    FUZZ_CHECK(cfg->interceptors && cfg->members && cfg->valves && cfg->listeners
               && cfg->ignored && cfg->notes);
    lines = apr_array_make(p, 64, sizeof(const char *));
    sc_config_dump(p, cfg, lines);
    FUZZ_CHECK(lines->nelts > 0);
    (void)sc_cluster_encrypted(cfg);
    return 0;
}
