/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_proto.h -- the cluster wire formats: TCP frames and heartbeats.
 *
 * Everything is big-endian and length-checked before anything is allocated.
 * The codec has no I/O and no httpd dependencies beyond APR types, so it is unit
 * tested and fuzzed on its own.
 *
 * TCP frame (SC_FRAME_HDR_LEN = 40 bytes of header, then payload, then tag):
 *
 *   0   4  magic "SCF1"
 *   4   1  version (SC_PROTO_VERSION)
 *   5   1  type (sc_msg_type)
 *   6   2  flags (SC_FF_*; unknown bits are an error)
 *   8  16  sender member id (its uniqueId)
 *  24   8  sequence number (per sender, increasing)
 *  32   4  payload length (<= the receiver's maximum message size)
 *  36   2  authentication tag length (0 until EncryptInterceptor; <= 64)
 *  38   2  reserved, 0
 *  40   .  payload, then the tag
 *
 * Heartbeat (a UDP multicast datagram, and the payload of HELLO and PING):
 *
 *   0   4  magic "SCH1"
 *   4   1  version
 *   5   1  state (sc_member_state)
 *   6   2  flags (SC_HF_*)
 *   8  16  member id (uniqueId)
 *  24   8  incarnation (changes on every engine start)
 *  32   8  alive: ms since this incarnation started
 *  40   8  heartbeat sequence number
 *  48   2  receiver TCP port
 *  50   1  address family: 4 or 6
 *  51   1  route length (1..63)
 *  52  16  receiver address (IPv4 in the first 4 bytes)
 *  68   1  domain length (0..64)
 *  69   .  route, then domain
 *   .   2  tag length, then the tag: up to 64 bytes, which the first
 *          version's decoder checks for length and skips
 *
 * The tag (nothing authenticates a heartbeat there: EncryptInterceptor seals
 * the whole datagram or frame) carries, since issue 21, what a front needs to
 * add a member to its balancer and to balance by its load; members of the
 * first version skip it, and a tag that does not start with its marker is
 * skipped the same way:
 *
 *   0   1  marker SC_HB_EXT_MARK
 *   1   1  URL length (0..SC_URL_MAX)
 *   2   2  busy workers of its MPM
 *   4   2  its MPM's capacity (workers; 0: not known)
 *   6   4  sessions it holds
 *  10   .  the URL a front uses for it (SessionClusterURL), then anything a
 *          later version adds (skipped)
 */
#ifndef SC_PROTO_H
#define SC_PROTO_H

#include "apr.h"
#include "apr_errno.h"

#define SC_PROTO_VERSION      2   /* 2: sc_store_hash's values changed */
#define SC_FRAME_HDR_LEN      40
#define SC_FRAME_MAGIC        "SCF1"
#define SC_HB_MAGIC           "SCH1"
/* EncryptInterceptor: a sealed heartbeat follows.  "SCE2" since frames name
 * their destination (issue 14): a keyed member of an earlier version ("SCE1")
 * and one of this version are strangers, as members with different keys are,
 * rather than members that see each other and cannot open each other's frames */
#define SC_HB_SEALED_MAGIC    "SCE2"
#define SC_HB_FIXED_LEN       69
#define SC_ROUTE_MAX          63
#define SC_DOMAIN_MAX         64
#define SC_TAG_MAX            64
#define SC_HB_MAX_LEN         (SC_HB_FIXED_LEN + SC_ROUTE_MAX + SC_DOMAIN_MAX + 2 + SC_TAG_MAX)
#define SC_ID_LEN             16
#define SC_HB_EXT_MARK        0xE1
#define SC_HB_EXT_FIXED       10
#define SC_URL_MAX            (SC_TAG_MAX - SC_HB_EXT_FIXED)

/* Message types. */
typedef enum {
    SC_MSG_HELLO = 1,        /* first frame on a connection: sender's heartbeat */
    SC_MSG_GOODBYE = 2,      /* the sender leaves the cluster now */
    SC_MSG_DATA = 3,         /* an application message (sessions, later) */
    SC_MSG_ACK = 4,          /* payload: 8-byte sequence acknowledged (applied,
                              * for a DATA frame sent with SC_FF_ACK) */
    SC_MSG_FAIL_ACK = 5,     /* payload: 8-byte sequence, then a reason text:
                              * received but not applied (refused) */
    SC_MSG_PING = 6,         /* failure detector / static membership: heartbeat */
    SC_MSG_PONG = 7,         /* answer to PING: the answerer's heartbeat */
    SC_MSG_MAX = 7
} sc_msg_type;

#define SC_FF_ACK        0x0001   /* the sender waits for an ACK */
#define SC_FF_SYNC_ACK   0x0002   /* ... sent after processing, not on receipt */
#define SC_FF_TAGGED     0x0004   /* an authentication tag follows (later) */
#define SC_FF_KNOWN      0x0007

/* Member states, as heartbeats carry them. */
typedef enum {
    SC_MS_STARTING = 1,
    SC_MS_READY = 2,
    SC_MS_DRAINING = 3,
    SC_MS_LEAVING = 4,       /* sent once with GOODBYE semantics */
    SC_MS_RESTARTING = 5,    /* graceful restart in progress: hold, don't drop */
    SC_MS_MAX = 5
} sc_member_state;

#define SC_HF_OBSERVER   0x0001   /* a front balancer: holds no sessions */
#define SC_HF_KNOWN      0x0001

typedef struct {
    apr_byte_t type;
    apr_uint16_t flags;
    unsigned char sender[SC_ID_LEN];
    apr_uint64_t seq;
    apr_uint32_t length;         /* payload */
    apr_uint16_t tag_length;
} sc_frame_hdr;

typedef struct {
    apr_byte_t state;
    apr_uint16_t flags;
    unsigned char id[SC_ID_LEN];
    apr_uint64_t incarnation;
    apr_uint64_t alive_ms;
    apr_uint64_t seq;
    apr_uint16_t port;
    apr_byte_t family;           /* 4 or 6 */
    unsigned char addr[16];
    char route[SC_ROUTE_MAX + 1];
    unsigned char domain[SC_DOMAIN_MAX];
    apr_byte_t domain_len;
    /* the tag's fields (issue 21); has_ext 0: a member that sent none */
    apr_byte_t has_ext;
    apr_uint16_t busy, capacity;
    apr_uint32_t sessions;
    char url[SC_URL_MAX + 1];
} sc_heartbeat;

/* Encodes a frame header into out[SC_FRAME_HDR_LEN]. */
void sc_frame_hdr_encode(const sc_frame_hdr *h, unsigned char *out);

/* Decodes and checks a header (len must be >= SC_FRAME_HDR_LEN).  Returns
 * NULL, or a static text saying what is wrong (the connection must then be
 * closed: after a bad header the stream cannot be resynchronised). */
const char *sc_frame_hdr_decode(const unsigned char *buf, apr_size_t len,
                                apr_uint32_t max_payload, sc_frame_hdr *out);

/* Encodes a heartbeat; returns its length, or 0 if cap is too small or a field
 * is out of bounds. */
apr_size_t sc_heartbeat_encode(const sc_heartbeat *hb, unsigned char *buf,
                               apr_size_t cap);

/* Decodes and checks a heartbeat; NULL or a static text.  A tag without the
 * marker is skipped (has_ext 0); one with it must hold a URL of printable
 * characters without spaces. */
const char *sc_heartbeat_decode(const unsigned char *buf, apr_size_t len,
                                sc_heartbeat *out);

const char *sc_msg_type_name(int type);
const char *sc_member_state_name(int state);

/* Big-endian helpers. */
void sc_put16(unsigned char *p, apr_uint16_t v);
void sc_put32(unsigned char *p, apr_uint32_t v);
void sc_put64(unsigned char *p, apr_uint64_t v);
apr_uint16_t sc_get16(const unsigned char *p);
apr_uint32_t sc_get32(const unsigned char *p);
apr_uint64_t sc_get64(const unsigned char *p);

#endif /* SC_PROTO_H */
