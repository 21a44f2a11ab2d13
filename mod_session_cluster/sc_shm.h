/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_shm.h -- what the engine knows, in shared memory every child can read.
 *
 * One anonymous segment, created once per httpd instance in the parent (on the
 * process pool, so restarts keep it) and inherited by the engine and by every
 * child of every generation:
 *
 *   +------------------------+
 *   | sc_shm_t header        |  this member, engine state, channel counters
 *   +------------------------+
 *   | sc_shm_member [64]     |  one slot per known member
 *   +------------------------+
 *   | sc_shm_front_route [64]|  a front: the drain bits it set, by route
 *   +------------------------+
 *
 * The engine writes the records; besides it, only the parent writes (the
 * page's nonce and the counters' start, in post_config, before any child
 * reads), and a child's page action sets requested_state/requested_actions
 * with atomic operations, which the engine takes.  Readers copy a record
 * under a sequence lock:
 * the writer makes 'seq' odd, writes, makes it even; a reader retries while
 * the sequence is odd or changed, so it never sees a half-written record.
 * A writer killed inside its write leaves 'seq' odd: the next write still
 * goes odd then even, and a reader that sees one odd value for 200 ms takes
 * the record as it is rather than wait for a writer that is gone.  The store
 * (sc_store.h) uses the same begin/end on its slots, under their locks.
 */
#ifndef SC_SHM_H
#define SC_SHM_H

#include "apr.h"
#include "apr_time.h"
#include "apr_shm.h"
#include "apr_pools.h"
#include <sys/types.h>

#include "sc_proto.h"

#define SC_SHM_MAGIC        0x53435348u   /* "SCSH" */
/* Raise with any change to the layout of sc_shm_t or sc_shm_member (and
 * SC_RETAINED_LAYOUT with it); a test builds a variant with another one. */
#ifndef SC_SHM_VERSION
#define SC_SHM_VERSION      7
#endif
#define SC_MAX_MEMBERS      64

/* How this member sees another member. */
typedef enum {
    SC_VIEW_FREE = 0,        /* slot unused */
    SC_VIEW_ALIVE = 1,       /* heard within dropTime */
    SC_VIEW_SUSPECT = 2,     /* silent for dropTime; the failure detector checks */
    SC_VIEW_DEAD = 3,        /* check failed, or connection refused */
    SC_VIEW_LEFT = 4,        /* said goodbye */
    SC_VIEW_REFUSED = 5,     /* conflicting route: not a member */
    SC_VIEW_RESTARTING = 6,  /* announced a restart: held for dropTime */
    SC_VIEW_CONFIGURED = 7   /* a static member never heard from */
} sc_view_state;

typedef struct {
    apr_uint64_t msgs_in, msgs_out;
    apr_uint64_t bytes_in, bytes_out;
    apr_uint64_t heartbeats_in, heartbeats_out;
    apr_uint64_t bad_frames, bad_heartbeats;
    apr_uint64_t auth_failures;         /* EncryptInterceptor: not authentic */
    apr_uint64_t replays;               /* authentic, but old: refused */
    apr_uint64_t previous_key;          /* opened with the previous key */
    apr_uint64_t conns_refused;         /* Receiver: connections refused (limits, penalty) */
    apr_uint64_t conns_timed_out;       /* Receiver: silent or slow connections closed */
    apr_uint64_t queue_full;            /* connections closed: their send queue was full */
    apr_uint64_t acks_in, acks_out, ack_timeouts, send_failures;
    apr_uint64_t connects, connect_failures;
} sc_counters;

/* What the interceptors did (the page's channel section). */
typedef struct {
    apr_uint64_t fd_checks;             /* TcpFailureDetector: TCP checks started */
    apr_uint64_t fd_suspected;          /*   members silent for dropTime */
    apr_uint64_t fd_dead;               /*   members declared dead */
    apr_uint64_t fd_false_alarms;       /*   suspected members that answered */
    apr_uint64_t pings_out;             /* TcpPingInterceptor / TCP heartbeats sent */
    apr_uint64_t domain_filtered;       /* DomainFilterInterceptor: heartbeats dropped */
    apr_uint64_t dispatch_async;        /* MessageDispatchInterceptor: sent without waiting */
    apr_uint64_t throughput_reports;    /* ThroughputInterceptor: log lines */
} sc_icounters;

/* What a front's children did with requests that failed before any byte of
 * their response (SessionClusterBalancer, sc_balancer.c): counted by the
 * children with atomic operations; the engine only zeroes them. */
typedef struct {
    apr_uint64_t replays;               /* re-sent to another member */
    apr_uint64_t replays_failed;        /*   and failed there too */
    apr_uint64_t not_replayed;          /* not re-sent: method, body, no other member */
    apr_uint64_t workers_added;         /* BalancerMembers added for members (growth) */
    apr_uint64_t cross_domain;          /* sticky requests answered in another domain */
} sc_fcounters;

/* Page actions (requested_actions bits), carried out by the engine. */
#define SC_ACT_EXPIRE_ALL     0x1u      /* expire every session, on every member */
#define SC_ACT_RESET_COUNTERS 0x2u      /* zero this member's counters */
#define SC_ACT_TRANSFER       0x4u      /* ask a ready member for all sessions again */

typedef struct {
    volatile apr_uint32_t seq;
    apr_uint32_t view;                  /* sc_view_state */
    apr_uint32_t hb_state;              /* sc_member_state it announced */
    apr_uint32_t is_static;             /* listed in the block */
    apr_uint32_t observer;
    unsigned char id[16];
    apr_uint64_t incarnation;
    apr_uint64_t restarts_seen;         /* incarnations after the first */
    char route[64];
    char addr[48];                      /* receiver address, text */
    apr_uint32_t port;
    char domain[65];
    apr_time_t first_seen;
    apr_time_t last_heard;
    apr_time_t state_since;
    apr_time_t serving_since;           /* alive and ready/draining since; 0: not */
    apr_uint32_t returned;              /* serving again after it had stopped serving */
    apr_uint64_t alive_ms;              /* its own uptime, from its heartbeat */
    char verdict[128];                  /* the failure detector's last word */
    /* from its heartbeat's tag (issue 21); has_load 0: it sent none */
    apr_uint32_t has_load;
    apr_uint32_t busy, capacity;        /* its MPM's busy workers, of how many */
    apr_uint32_t sessions;              /* sessions it holds */
    char url[SC_URL_MAX + 1];           /* the URL a front uses for it */
    sc_counters c;
} sc_shm_member;

/* A front (SessionClusterBalancer, sc_balancer.c): whether the drain bit
 * of a route's BalancerMembers was set for the member's own draining, so
 * that the cluster takes back only what it set, never an admin's drain.
 * Written by the front's children with atomic operations: a slot is claimed
 * (used 0 -> 1), its route written, then published (used 2); never freed. */
typedef struct {
    volatile apr_uint32_t used;         /* 0 free, 1 being claimed, 2 in use */
    volatile apr_uint32_t drained;      /* 1: the cluster set the drain bit */
    char route[64];
} sc_shm_front_route;

typedef struct {
    /* The stamp: what laid the segment out, written at creation and checked
     * when a restart reuses the segment (sc_shm_check).  These fields come
     * first and never move, whatever the version. */
    apr_uint32_t magic;                 /* SC_SHM_MAGIC */
    apr_uint32_t version;               /* SC_SHM_VERSION */
    apr_uint32_t header_size;           /* offsetof(sc_shm_t, members) */
    apr_uint32_t member_size;           /* sizeof(sc_shm_member) */
    apr_uint32_t max_members;           /* SC_MAX_MEMBERS */
    apr_uint32_t total_size;            /* sizeof(sc_shm_t) */
    volatile apr_uint32_t seq;
    pid_t engine_pid;
    apr_uint32_t engine_state;          /* sc_member_state of this member */
    apr_time_t engine_started;
    apr_uint64_t incarnation;
    apr_uint64_t engine_starts;         /* how many engines this httpd ran */
    unsigned char self_id[16];
    char self_route[64];
    char self_addr[48];
    apr_uint32_t self_port;
    char self_domain[65];
    char membership[32];                /* "multicast", "static", ... */
    char mcast[64];                     /* group:port, or empty */
    char ipc_path[256];                 /* the engine's local socket */
    apr_uint64_t throughput_msgs;       /* ThroughputInterceptor */
    apr_uint64_t queue_depth, queue_bytes;
    sc_counters c;
    char not_implemented[256];          /* interceptors named but not implemented */
    char nonce[33];                     /* the page's actions (hex, per start) */
    volatile apr_uint32_t requested_state; /* set by a page action, taken by the engine */
    volatile apr_uint32_t requested_actions; /* SC_ACT_* bits, the same way */
    apr_time_t published_at;            /* the engine's last publication */
    apr_time_t counters_since;          /* counters started (or were reset) */
    apr_uint32_t parent_pid;            /* httpd's parent, the engine's */
    apr_uint32_t pending_acks;          /* acknowledged sends waiting */
    sc_icounters ic;
    sc_fcounters f;
    /* what this member's heartbeats announce (issue 21): its URL, written by
     * the parent at every start; its MPM's busy workers and capacity, written
     * by one child (the load watchdog) or the parent's monitor */
    char self_url[SC_URL_MAX + 1];
    volatile apr_uint32_t self_busy;
    volatile apr_uint32_t self_capacity;
    sc_shm_member members[SC_MAX_MEMBERS];
    sc_shm_front_route front_routes[SC_MAX_MEMBERS];
} sc_shm_t;

/* Creates the segment (once per httpd instance). */
apr_status_t sc_shm_create(apr_pool_t *p, sc_shm_t **out);

/* Was the segment laid out by this build (a graceful restart keeps it and
 * may load another build of the module)?  NULL if so, else what differs,
 * found and expected, allocated from p: "version 1 (this build: 2), bytes
 * per member row 560 (this build: 568)". */
const char *sc_shm_check(const sc_shm_t *shm, apr_pool_t *p);

/* Appends "<what> <found> (this build: <expected>)" to *diff when found and
 * expected differ (the check functions' sentences). */
void sc_layout_differs(apr_pool_t *p, const char **diff, const char *what,
                       apr_uint64_t found, apr_uint64_t expected);

/* Writer side (the engine). */
void sc_shm_write_begin(volatile apr_uint32_t *seq);
void sc_shm_write_end(volatile apr_uint32_t *seq);

/* Reader side: consistent copies. */
void sc_shm_read_header(const sc_shm_t *shm, sc_shm_t *copy_without_members);
int sc_shm_read_member(const sc_shm_t *shm, int i, sc_shm_member *out);

/* This process's id, without a system call once known (getpid is one). */
pid_t sc_self_pid(void);

const char *sc_view_name(int view);

#endif /* SC_SHM_H */
