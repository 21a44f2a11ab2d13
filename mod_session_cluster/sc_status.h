/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_status.h -- the cluster-manager page (sc_status.c).
 */
#ifndef SC_STATUS_H
#define SC_STATUS_H

#include "sc_private.h"

/* The handler for SetHandler cluster-manager. */
int sc_status_handler(request_rec *r);

/* The page's own hooks (post_config: the flags of its open-page warning). */
void sc_status_register_hooks(void);

#endif /* SC_STATUS_H */
