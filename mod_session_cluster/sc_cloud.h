/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_cloud.h -- CloudMembershipService: members listed by the Kubernetes API
 * server (sc_kube.c) or found in DNS (sc_cloud.c).
 */
#ifndef SC_CLOUD_H
#define SC_CLOUD_H

#include "sc_core.h"

int sc_cloud_start(sc_engine *e);
void sc_cloud_tick(sc_engine *e);
void sc_cloud_stop(sc_engine *e);

#endif /* SC_CLOUD_H */
