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
 *   DIGEST   12 [flags:1][n:4] entries             anti-entropy: what a member
 *                 live [1][idlen:1][id][version:8][hash:8][fork:8][sflags:1]
 *                 dead [2][len:1][id base][life_s:4]
 *                                                  holds (flags: 1 answer with
 *                                                  yours, 2 the last part)
 *
 * BackupManager (sc_backup.c) adds these; a route is [len:1][route] (0 to
 * SC_BK_ROUTE_MAX characters of a route's shape; 0: none):
 *   LOCATE   13 [n:4] ([idlen:1][id][epoch:8][primary][backup])*
 *                                                  where sessions are held
 *   FETCH    14 [req:8][idlen:1][id]               "send me this session"
 *   NOT_HERE 15 [req:8][idlen:1][id][dead:1]       the answer: no copy here
 *                                                  (dead: it has a tombstone)
 *   OWNER    16 [idlen:1][id][epoch:8][primary]    to the backup: a new primary
 *   GET_MAP  17                                    a joining member asks for the
 *                                                  locations (answered by MAP
 *                                                  blocks, then COMPLETE)
 *   MAP      18 as LOCATE                          one block of them
 *   HERE     19 [req:8][epoch:8] FULL record [stamp as FULL's]
 *                                                  the answer: the session
 *
 * Stamps (sc_store.h, "Versions and conflicts") travel after a message's
 * last field, where members that do not know them ignore them:
 *   FULL      ... [0xA5][sflags:1][fork:8]
 *   DELTA     ... [0xA5][sflags:1][fork:8][hash:8][base hash:8]   (after the
 *                 attribute part; hashes 0: not known)
 *   ALL_DATA  ... [0xA5] ([sflags:1][fork:8]) once per session, in order
 *                 then [0xA6][sessions:4][blocks:4]: what its sender holds
 *                 (sessions, and data blocks of its store), from which the
 *                 receiver readies its store's pages (sc_store_prefault);
 *                 read only after the stamps; a member that does not know it
 *                 ignores it (bytes after the last field)
 * A message without one is a version written with a majority.  Encoders
 * always write it; a decoder reads it when the bytes after the last field
 * start with 0xA5 (stamped: 1), and refuses the message when they are
 * shorter than the stamp.
 *
 * Times are apr_time_t (microseconds since 1970), max_inactive seconds (<= 0:
 * never).  A receiver keeps a replica's times within bounds (not after now,
 * not before 1970, max_inactive at most 2147483647 s; SC1340) and refuses
 * data holding a NUL byte.  A message sent with an ACK asked for is answered
 * ACK only once applied (or when that version is there already); FAIL_ACK
 * when it is not (the store refused it, a version before it is missing, a
 * held delta turned out malformed).
 *
 * Each message has a struct, an encoder and a decoder, next to each other in
 * sc_repl.c: sc_msg_X_encode(b, m) appends the whole message, its type byte
 * first, to b; sc_msg_X_decode(r, p, m) reads it back from r (type byte
 * included), copying what it keeps into p, and returns 0 when the bytes are
 * not such a message: every length and count is checked against what the
 * message holds, ids have their shape (sc_rd_id).  Bytes after a message's
 * last field are ignored.  A DELTA's attribute part is checked when it is
 * applied (sc_msg_delta_apply): a delta held for a moment is refused then.
 * sc_msg_decode reads any known type into an sc_msg; the DeltaManager
 * (sc_manager.c) dispatches it through a table indexed by type.
 *
 * A new message type:
 *   1. its value below (before SC_REPL_COUNT), its layout in the table above;
 *   2. its struct, a member of sc_msg's union and the encode/decode pair,
 *      here and in sc_repl.c, plus its name and its case in sc_msg_decode;
 *   3. its handler, one entry in sc_manager.c's table (dm_on), or in
 *      sc_backup.c's (bk_on) for BackupManager's;
 *   4. a case in fuzz/fuzz_session.c's round trip (every decoder is fuzzed).
 * A member that does not know a type acknowledges and ignores it (SC1397 at
 * debug level): newer members may send types older ones skip.
 */
#ifndef SC_REPL_H
#define SC_REPL_H

#include "apr_pools.h"
#include "apr_tables.h"
#include "apr_time.h"
#include "apr_hash.h"
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
    SC_REPL_DEAD = 11,
    SC_REPL_DIGEST = 12,
    SC_REPL_LOCATE = 13,
    SC_REPL_FETCH = 14,
    SC_REPL_NOT_HERE = 15,
    SC_REPL_OWNER = 16,
    SC_REPL_GET_MAP = 17,
    SC_REPL_MAP = 18,
    SC_REPL_HERE = 19,
    SC_REPL_COUNT                     /* one past the last type */
};

/* The byte the cluster-manager page's probe fills its DATA message with
 * (sc_client_probe): a type no member knows, acknowledged and ignored. */
#define SC_REPL_PROBE_FILLER 'x'

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

/* A checked reader over a received message: a read past the end returns 0
 * (NULL) and sets bad, and so does every read after it. */
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

/* ---- the messages ---- */

#define SC_STAMP_TAG 0xA5
#define SC_FULL_STAMP_LEN (1 + 1 + 8)
#define SC_SIZE_TAG 0xA6
#define SC_SIZE_LEN (1 + 4 + 4)
#define SC_DELTA_STAMP_LEN (1 + 1 + 8 + 8 + 8)

/* A FULL record: FULL's body, and each entry of ALL_DATA (no stamp: FULL's
 * and ALL_DATA's come after).  The reader returns 0 when it is malformed,
 * also when its version is 0 (versions start at 1) or its data holds a NUL
 * byte (session data is text); it leaves the stamp unknown (hash 0, major). */
void sc_repl_full_record(sc_buf *b, const sc_sess_copy *s);
int sc_rd_full_record(sc_rd *r, apr_pool_t *p, sc_sess_copy *s);

/* FULL: an sc_sess_copy, its stamp from s->flags and s->fork. */
void sc_msg_full_encode(sc_buf *b, const sc_sess_copy *s);
int sc_msg_full_decode(sc_rd *r, apr_pool_t *p, sc_sess_copy *s);

/* DELTA: the attribute part is kept as it came, and read when applied. */
typedef struct {
    const char *id;
    apr_uint64_t base;                /* the version it applies to */
    apr_uint64_t version;             /* the version it makes: above base */
    apr_time_t last_access;
    apr_int64_t max_inactive;
    const unsigned char *attrs;       /* [nset:4] ... [nrem:4] ... */
    apr_size_t attrs_len;
    /* its stamp (0 when it came without one) */
    apr_uint32_t flags;               /* SC_SF_* of the version it makes */
    apr_uint64_t fork;
    apr_uint64_t hash;                /* of the data it makes: 0 not known */
    apr_uint64_t base_hash;           /* of the data it applies to: 0 not known */
    int stamped;
} sc_msg_delta;

void sc_msg_delta_encode(sc_buf *b, const sc_msg_delta *m);
int sc_msg_delta_decode(sc_rd *r, apr_pool_t *p, sc_msg_delta *m);
/* Builds the DELTA of new_data against old_data (sc_msg_delta_encode), with
 * an empty stamp; returns 0 when no attribute changed (the message is built
 * all the same). */
int sc_repl_delta(sc_buf *b, const char *id, apr_uint64_t base, apr_uint64_t version,
                  apr_time_t last_access, apr_int64_t max_inactive,
                  const char *old_data, const char *new_data);
/* How sc_repl_delta_how builds a DELTA (all 0: as sc_repl_delta). */
typedef struct {
    /* leave out the pairs kept on this member: the DELTA of the texts'
     * sc_repl_distributed, without a pass over each to take them out */
    int local_out;
    /* new_hash not NULL: *new_hash is the sc_store_hash of new_data made from
     * old_hash, old_data's, with only the pairs that differ hashed (0 when
     * it cannot be: a key twice in a version, an old_hash of 0 or 1).  The
     * texts are those the hash is made over, or the same with the pairs it
     * leaves out taken out (the same filter) */
    apr_uint64_t old_hash;
    apr_uint64_t *new_hash;
    /* values of new_data known to be byte for byte copies of values of
     * old_data: the address of a value in new_data (a const char *, as key
     * of sizeof(const char *)) -> the address in old_data it was copied
     * from; such a value is not compared again */
    apr_hash_t *copied;
} sc_delta_how;
int sc_repl_delta_how(sc_buf *b, const char *id, apr_uint64_t base, apr_uint64_t version,
                      apr_time_t last_access, apr_int64_t max_inactive,
                      const char *old_data, const char *new_data, const sc_delta_how *how);
/* Writes the stamp of the version a DELTA built by sc_repl_delta into b
 * makes (as stored: sc_store_stamp) and the hash of the data it applies to
 * (sc_store_hash of old_data), over its empty stamp. */
void sc_repl_delta_stamp(sc_buf *b, const sc_stamp *made, apr_uint64_t base_hash);
/* data with the delta's attributes applied; NULL if its attribute part is
 * malformed.  sc_repl_apply does the same from a reader at that part. */
const char *sc_msg_delta_apply(apr_pool_t *p, const char *data, const sc_msg_delta *m);
const char *sc_repl_apply(apr_pool_t *p, const char *data, sc_rd *r);
/* sc_repl_apply, and (hash not NULL) the result's sc_store_hash made from
 * base_hash, data's, with only the pairs the delta changed hashed (0 when it
 * cannot be: a pair of data written without '=', a base_hash of 0 or 1), and
 * (len not NULL) the result's length. */
const char *sc_repl_apply_hash(apr_pool_t *p, const char *data, sc_rd *r,
                               apr_uint64_t base_hash, apr_uint64_t *hash, apr_size_t *len);
/* sc_repl_apply_hash, and (kept not NULL) *kept: the pairs of the result
 * that are data's own bytes at the same offsets, as sc_store_range (in
 * increasing order; pairs shorter than SC_REPL_KEPT_MIN are left out), for
 * sc_store_take_kept; NULL when there is none. */
#ifndef SC_REPL_KEPT_MIN
#define SC_REPL_KEPT_MIN (2 * SC_STORE_BLOCK) /* a whole block held (the fuzz
                                                * targets build with less) */
#endif
const char *sc_repl_apply_kept(apr_pool_t *p, const char *data, sc_rd *r,
                               apr_uint64_t base_hash, apr_uint64_t *hash, apr_size_t *len,
                               apr_array_header_t **kept);

/* REMOVE, EXPIRE, GET_SESSION: one session id. */
typedef struct {
    const char *id;
} sc_msg_remove;
typedef sc_msg_remove sc_msg_expire;
typedef sc_msg_remove sc_msg_get_session;

void sc_msg_remove_encode(sc_buf *b, const sc_msg_remove *m);
int sc_msg_remove_decode(sc_rd *r, apr_pool_t *p, sc_msg_remove *m);
void sc_msg_expire_encode(sc_buf *b, const sc_msg_expire *m);
int sc_msg_expire_decode(sc_rd *r, apr_pool_t *p, sc_msg_expire *m);
void sc_msg_get_session_encode(sc_buf *b, const sc_msg_get_session *m);
int sc_msg_get_session_decode(sc_rd *r, apr_pool_t *p, sc_msg_get_session *m);

/* TOUCH, ALL_DATA and DEAD are a count and as many entries.  Their encoders
 * are also there in parts, for a sender that adds entries one at a time:
 * sc_msg_list_open(b, type) on an empty buffer, the type's _add for each
 * entry, then sc_msg_list_close(b, n) writes the count. */
void sc_msg_list_open(sc_buf *b, unsigned type);
void sc_msg_list_close(sc_buf *b, apr_uint32_t n);

/* TOUCH */
typedef struct {
    apr_uint32_t n;
    const char **ids;
    apr_time_t *last_access;
} sc_msg_touch;

void sc_msg_touch_add(sc_buf *b, const char *id, apr_time_t last_access);
void sc_msg_touch_encode(sc_buf *b, const sc_msg_touch *m);
int sc_msg_touch_decode(sc_rd *r, apr_pool_t *p, sc_msg_touch *m);

/* GET_ALL: no fields. */
void sc_msg_get_all_encode(sc_buf *b);
int sc_msg_get_all_decode(sc_rd *r);

/* ALL_DATA: one block of a state transfer. */
typedef struct {
    apr_uint32_t n;
    sc_sess_copy *s;
    /* what the sender held as it sent the block (sessions, and data blocks
     * of SC_STORE_BLOCK bytes: its store's own), so that the receiver can
     * ready its store's pages ahead; sized 0: not sent (an earlier build) */
    int sized;
    apr_uint32_t held_sessions, held_blocks;
} sc_msg_all_data;

void sc_msg_all_data_add(sc_buf *b, const sc_sess_copy *s);
void sc_msg_all_data_encode(sc_buf *b, const sc_msg_all_data *m);
/* ALL_DATA's stamps, once every entry is added and the list closed: those
 * of the n sessions s, in the order added. */
void sc_msg_all_data_stamps(sc_buf *b, const sc_sess_copy *s, apr_uint32_t n);
/* After the stamps: what the sender holds (sc_msg_all_data's held_*). */
void sc_msg_all_data_size(sc_buf *b, apr_uint32_t sessions, apr_uint32_t blocks);
int sc_msg_all_data_decode(sc_rd *r, apr_pool_t *p, sc_msg_all_data *m);

/* COMPLETE */
typedef struct {
    apr_uint32_t total;               /* sessions sent */
} sc_msg_complete;

void sc_msg_complete_encode(sc_buf *b, const sc_msg_complete *m);
int sc_msg_complete_decode(sc_rd *r, sc_msg_complete *m);

/* REBIND: both ids have the same base. */
typedef struct {
    const char *old_id;
    const char *new_id;
} sc_msg_rebind;

void sc_msg_rebind_encode(sc_buf *b, const sc_msg_rebind *m);
int sc_msg_rebind_decode(sc_rd *r, apr_pool_t *p, sc_msg_rebind *m);

/* DEAD: id bases, 1 to SC_TOMB_BASE - 1 hex digits each. */
typedef struct {
    apr_uint32_t n;
    const char **bases;
} sc_msg_dead;

/* Adds base unless the message would then be longer than max bytes (0: no
 * bound); returns whether it did. */
int sc_msg_dead_add(sc_buf *b, const char *base, apr_size_t max);
void sc_msg_dead_encode(sc_buf *b, const sc_msg_dead *m);
int sc_msg_dead_decode(sc_rd *r, apr_pool_t *p, sc_msg_dead *m);

/* DIGEST: a part of what a member holds, for anti-entropy.  A live entry
 * names a session (its id) and the stamp of the version held; a dead one an
 * id base with a tombstone and the seconds it has left. */
#define SC_DIGEST_ANSWER 0x1u         /* the receiver answers with its own digest */
#define SC_DIGEST_LAST   0x2u         /* the sender's last part */
#define SC_DIGEST_LIVE   1
#define SC_DIGEST_DEAD   2

typedef struct {
    int dead;
    const char *id;                   /* live: the session's id; dead: its base */
    sc_stamp stamp;                   /* live */
    apr_uint32_t life_s;              /* dead */
} sc_digest_entry;

typedef struct {
    unsigned flags;                   /* SC_DIGEST_* */
    apr_uint32_t n;
    sc_digest_entry *e;
} sc_msg_digest;

/* In parts, as the lists: open on an empty buffer, add entries (each returns
 * 0, adding nothing, when the message would then be longer than max bytes;
 * 0: no bound), close with the flags and the count. */
void sc_msg_digest_open(sc_buf *b);
int sc_msg_digest_add_live(sc_buf *b, const char *id, const sc_stamp *s, apr_size_t max);
int sc_msg_digest_add_dead(sc_buf *b, const char *base, apr_uint32_t life_s, apr_size_t max);
void sc_msg_digest_close(sc_buf *b, unsigned flags, apr_uint32_t n);
void sc_msg_digest_encode(sc_buf *b, const sc_msg_digest *m);
int sc_msg_digest_decode(sc_rd *r, apr_pool_t *p, sc_msg_digest *m);

/* ---- BackupManager's messages (sc_backup.c) ---- */

#define SC_BK_ROUTE_MAX 63            /* a route in a location: as SC_ROUTE_MAX */

/* One location: who holds a session's data (routes; "" none) and the epoch
 * of its primary (raised by each new primary; the higher wins). */
typedef struct {
    const char *id;
    apr_uint64_t epoch;
    const char *primary;
    const char *backup;
} sc_loc_item;

/* LOCATE and MAP: a count and as many locations.  In parts, as the lists:
 * sc_msg_list_open(b, SC_REPL_LOCATE or SC_REPL_MAP), _add, close. */
typedef struct {
    apr_uint32_t n;
    sc_loc_item *items;
} sc_msg_locate;
typedef sc_msg_locate sc_msg_map;

void sc_msg_locate_add(sc_buf *b, const sc_loc_item *it);
void sc_msg_locate_encode(sc_buf *b, unsigned type, const sc_msg_locate *m);
/* type: SC_REPL_LOCATE or SC_REPL_MAP */
int sc_msg_locate_decode(sc_rd *r, apr_pool_t *p, unsigned type, sc_msg_locate *m);

/* FETCH and NOT_HERE: a request's number and the id asked for. */
typedef struct {
    apr_uint64_t req;
    const char *id;
    int dead;                         /* NOT_HERE: the id has a tombstone there */
} sc_msg_fetch;
typedef sc_msg_fetch sc_msg_not_here;

void sc_msg_fetch_encode(sc_buf *b, const sc_msg_fetch *m);
int sc_msg_fetch_decode(sc_rd *r, apr_pool_t *p, sc_msg_fetch *m);
void sc_msg_not_here_encode(sc_buf *b, const sc_msg_not_here *m);
int sc_msg_not_here_decode(sc_rd *r, apr_pool_t *p, sc_msg_not_here *m);

/* OWNER: the session's new primary, to its backup. */
typedef struct {
    const char *id;
    apr_uint64_t epoch;
    const char *primary;
} sc_msg_owner;

void sc_msg_owner_encode(sc_buf *b, const sc_msg_owner *m);
int sc_msg_owner_decode(sc_rd *r, apr_pool_t *p, sc_msg_owner *m);

/* GET_MAP: no fields. */
void sc_msg_get_map_encode(sc_buf *b);
int sc_msg_get_map_decode(sc_rd *r);

/* HERE: the answer to FETCH with the session (s: as FULL's). */
typedef struct {
    apr_uint64_t req;
    apr_uint64_t epoch;
    sc_sess_copy s;
} sc_msg_here;

void sc_msg_here_encode(sc_buf *b, const sc_msg_here *m);
int sc_msg_here_decode(sc_rd *r, apr_pool_t *p, sc_msg_here *m);

/* Any message of a known type. */
typedef struct {
    unsigned type;                    /* SC_REPL_* */
    union {                           /* the member the type names */
        sc_sess_copy full;
        sc_msg_delta delta;
        sc_msg_remove remove;
        sc_msg_expire expire;
        sc_msg_touch touch;
        sc_msg_all_data all_data;
        sc_msg_complete complete;
        sc_msg_get_session get_session;
        sc_msg_rebind rebind;
        sc_msg_dead dead;
        sc_msg_digest digest;
        sc_msg_locate locate;
        sc_msg_map map;
        sc_msg_fetch fetch;
        sc_msg_not_here not_here;
        sc_msg_owner owner;
        sc_msg_here here;
    };
} sc_msg;

/* The message r holds, by its type byte; 0 when malformed, empty, or of a
 * type this member does not know (sc_msg_name returns NULL for those). */
int sc_msg_decode(sc_rd *r, apr_pool_t *p, sc_msg *m);
/* "FULL", "DELTA" ...; NULL for an unknown type. */
const char *sc_msg_name(unsigned type);

/* ---- session data ---- */

/* Session data <-> ordered key/value table (values stay url-escaped). */
apr_array_header_t *sc_data_parse(apr_pool_t *p, const char *data);
const char *sc_data_join(apr_pool_t *p, const apr_array_header_t *kv);

/* Attributes kept on the member that holds them (Manager
 * sessionAttributeNameFilter, and this module's own bookkeeping pairs; the
 * test is sc_session.c's): is_local(key, klen) says whether a pair's key, as
 * stored (URL-encoded), stays here.  Process-wide, set once by the module
 * (NULL, the default, as in the tests and fuzzers: every pair travels).
 * Set, every session a FULL record carries (FULL, ALL_DATA: the answers to
 * GET_SESSION, state transfer, a copy sent back) leaves those pairs out, and
 * a request's DELTA is built between the distributed parts
 * (sc_repl_distributed), so other members never receive them. */
void sc_repl_set_local_filter(int (*is_local)(const char *key, apr_size_t klen));
/* data without the pairs that stay here: data itself when none does (or no
 * filter is set), else a copy from p.  *len (may be NULL): its length. */
const char *sc_repl_distributed(apr_pool_t *p, const char *data, apr_uint32_t *len);

/* ---- session ids ---- */

/* SessionIdGenerator sessionIdLength: random bytes of an id, Tomcat's default
 * and the most an id of a 63-character route holds in the store (SC_SID_MAX) */
#define SC_SID_BYTES_DEFAULT 16
#define SC_SID_BYTES_MAX     17

/* msm's node id in a session id (sc_msm.h): at most this long */
#define SC_SID_NODE_MAX      16

/* 1 when id has the cluster's shape: 2 to 2 x SC_SID_BYTES_MAX hex digits
 * (an even count), msm's "-<node id>" (1 to SC_SID_NODE_MAX letters, digits,
 * '-' or '_') when several memcached nodes are configured, '.', a route; in
 * all shorter than SC_SID_MAX (what the store holds). */
int sc_sid_valid(const char *id);
/* A new session id: nbytes (sessionIdLength; out of 1..SC_SID_BYTES_MAX: 16)
 * from APR's random source (the system's CSPRNG) as hex, '.', the route; NULL
 * if no random bytes. */
const char *sc_sid_new(apr_pool_t *p, const char *route, int nbytes);
/* The value of cookie 'name' in one Cookie header ("a=b; c=d"), without
 * surrounding quotes; NULL when absent, empty or longer than SC_SID_MAX. */
const char *sc_cookie_value(apr_pool_t *p, const char *header, const char *name);
/* The id of a ";jsessionid=ID" path parameter (case-insensitive name, up to
 * ';', '/', '?' or '#'); NULL when absent, empty or longer than SC_SID_MAX. */
const char *sc_url_sid(apr_pool_t *p, const char *uri);

#endif /* SC_REPL_H */
