/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_session.h -- the mod_session provider (sc_session.c).
 */
#ifndef SC_SESSION_H
#define SC_SESSION_H

/* Registers the session_load/session_save hooks with mod_session, if it is
 * loaded (before this module); returns 0 when it is not. */
int sc_session_register_hooks(void);

#endif /* SC_SESSION_H */
