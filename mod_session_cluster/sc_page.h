/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_page.h -- the cluster-manager page as HTML (sc_page.c).
 */
#ifndef SC_PAGE_H
#define SC_PAGE_H

#include "sc_model.h"

/* Writes the page for model m (nonce NULL: no actions; refresh > 0: the page
 * reloads itself every refresh seconds).  Sets the answer's
 * Content-Security-Policy first (a superset of the guard's). */
void sc_page_write_html(const model *m, const char *nonce, int refresh);

/* The page's history: a segment made once per httpd (post_config) and
 * sampled by httpd's parent in its monitor hook. */
void sc_page_register_hooks(void);

#endif /* SC_PAGE_H */
