/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_repl.h -- DeltaManager messages (the payload of DATA frames) and the
 * session data format they carry.
 *
 * Session data is mod_session's encoded form, "k=v&k2=v2" with url-escaped keys
 * and values; a delta names the keys set and removed since the version it is
 * based on, so only changed attributes travel.
 *
 *   FULL      1 [idlen:1][id][version:8][created:8][last_access:8][max_inactive:8]
 *                [len:4][data]                     created, or the whole session
 *   DELTA     2 [idlen:1][id][base:8][version:8][last_access:8][max_inactive:8]
 *                [nset:4] ([klen:4][k][vlen:4][v])* [nrem:4] ([klen:4][k])*
 *   REMOVE    3 [idlen:1][id]                      invalidated
 *   EXPIRE    4 [idlen:1][id]                      idled out
 *   TOUCH     5 [n:4] ([idlen:1][id][last_access:8])*   accessed, unchanged
 *   GET_ALL   6                                    state transfer request
 *   ALL_DATA  7 [n:4] (FULL without its type byte)*     one block
 *   COMPLETE  8 [total:4]                          state transfer done
 *   GET_SESSION 9 [idlen:1][id]                    "I missed a delta"
 *   REBIND   10 [idlen:1][old id][idlen:1][new id] the session moved to the
 *                                                  new id's route
 *   DEAD     11 [n:4] ([len:1][id base])*          tombstones (state transfer,
 *                                                  after the sessions): removed
 *                                                  ids, not to be created again
 *
 * Times are apr_time_t (microseconds since 1970), max_inactive seconds (<= 0:
 * never).  A receiver keeps a replica's times within bounds (not after now,
 * not before 1970, max_inactive at most 2147483647 s; SC1340) and refuses
 * data holding a NUL byte.  A message sent with an ACK asked for is answered
 * ACK only once applied (or when that version is there already); FAIL_ACK
 * when it is not (the store refused it, a version before it is missing, a
 * held delta turned out malformed).
 */
#ifndef SC_REPL_H
#define SC_REPL_H

#include "apr_pools.h"
#include "apr_tables.h"
#include "apr_time.h"
#include "sc_store.h"

enum {
    SC_REPL_FULL = 1,
    SC_REPL_DELTA = 2,
    SC_REPL_REMOVE = 3,
    SC_REPL_EXPIRE = 4,
    SC_REPL_TOUCH = 5,
    SC_REPL_GET_ALL = 6,
    SC_REPL_ALL_DATA = 7,
    SC_REPL_COMPLETE = 8,
    SC_REPL_GET_SESSION = 9,
    SC_REPL_REBIND = 10,
    SC_REPL_DEAD = 11
};

/* The most a FULL message adds to its session's data (type, id, times,
 * length), plus the route byte of a child's request to its engine. */
#define SC_REPL_FULL_OVERHEAD (1 + 1 + SC_SID_MAX + 4 * 8 + 4 + 1)

/* A growable message buffer. */
typedef struct {
    apr_pool_t *p;
    unsigned char *buf;
    apr_size_t len, cap;
} sc_buf;

void sc_buf_init(sc_buf *b, apr_pool_t *p, apr_size_t cap);
void sc_buf_put(sc_buf *b, const void *data, apr_size_t len);
void sc_buf_u8(sc_buf *b, unsigned v);
void sc_buf_u16(sc_buf *b, unsigned v);
void sc_buf_u32(sc_buf *b, apr_uint32_t v);
void sc_buf_u64(sc_buf *b, apr_uint64_t v);
void sc_buf_id(sc_buf *b, const char *id);
void sc_repl_full_record(sc_buf *b, const sc_sess_copy *s);

/* A checked reader over a received message. */
typedef struct {
    const unsigned char *p;
    apr_size_t left;
    int bad;
} sc_rd;

void sc_rd_init(sc_rd *r, const unsigned char *p, apr_size_t len);
unsigned sc_rd_u8(sc_rd *r);
unsigned sc_rd_u16(sc_rd *r);
apr_uint32_t sc_rd_u32(sc_rd *r);
apr_uint64_t sc_rd_u64(sc_rd *r);
const unsigned char *sc_rd_bytes(sc_rd *r, apr_size_t n);
/* A session id: checked shape (32 hex, '.', route); NULL if bad. */
const char *sc_rd_id(sc_rd *r, apr_pool_t *p);
/* A FULL record (after its type byte); 0 when malformed, also when its data
 * holds a NUL byte (session data is text). */
int sc_rd_full_record(sc_rd *r, apr_pool_t *p, sc_sess_copy *s);

/* Session data <-> ordered key/value table (values stay url-escaped). */
apr_array_header_t *sc_data_parse(apr_pool_t *p, const char *data);
const char *sc_data_join(apr_pool_t *p, const apr_array_header_t *kv);
/* Builds a DELTA of new against old; returns 0 when nothing changed. */
int sc_repl_delta(sc_buf *b, const char *id, apr_uint64_t base, apr_uint64_t version,
                  apr_time_t last_access, apr_int64_t max_inactive,
                  const char *old_data, const char *new_data);
/* Applies the attribute part of a DELTA to data; NULL if malformed. */
const char *sc_repl_apply(apr_pool_t *p, const char *data, sc_rd *r);

/* Session id checks. */
int sc_sid_valid(const char *id);
/* A new session id: 128 bits from APR's random source (the system's CSPRNG)
 * as 32 hex characters, '.', the route; NULL if no random bytes. */
const char *sc_sid_new(apr_pool_t *p, const char *route);
/* The value of cookie 'name' in one Cookie header ("a=b; c=d"), without
 * surrounding quotes; NULL when absent, empty or longer than SC_SID_MAX. */
const char *sc_cookie_value(apr_pool_t *p, const char *header, const char *name);
/* The id of a ";jsessionid=ID" path parameter (case-insensitive name, up to
 * ';', '/', '?' or '#'); NULL when absent, empty or longer than SC_SID_MAX. */
const char *sc_url_sid(apr_pool_t *p, const char *uri);

#endif /* SC_REPL_H */
