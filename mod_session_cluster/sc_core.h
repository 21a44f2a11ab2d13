/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_core.h -- the engine process's data: its connections, the members it
 * knows, the sends that wait for an ACK, and the engine itself.  Each layer's
 * functions are declared in its own header (see sc_engine.h for the map).
 */
#ifndef SC_CORE_H
#define SC_CORE_H

#include "sc_private.h"
#include "sc_proto.h"
#include "sc_shm.h"
#include "sc_store.h"
#include "sc_ring.h"

#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>

typedef struct sc_engine sc_engine;
typedef struct sc_peer sc_peer;
typedef struct sc_conn sc_conn;
typedef struct sc_dns sc_dns;
typedef struct sc_tr_handlers sc_tr_handlers;   /* sc_transport.h */
typedef struct sc_tr_event sc_tr_event;

/* A connection (the transport's): ours to a member, a member's to us, or a
 * child's on the local socket. */
enum { SC_CONN_OUT = 1, SC_CONN_IN, SC_CONN_IPC };
enum { SC_CS_CONNECTING = 1, SC_CS_OPEN, SC_CS_CLOSED };

struct sc_conn {
    int fd;
    int kind;
    int state;
    sc_peer *peer;
    char remote[64];
    unsigned char *rbuf;
    apr_size_t rlen, rcap;
    unsigned char *wbuf;
    apr_size_t wlen, woff, wcap;
    apr_time_t opened;
    apr_time_t last_rx;
    int keep_buffers;                  /* a state transfer runs on it: buffers grown
                                        * for its blocks are kept from one block to
                                        * the next, given back when it ends */
    int goodbye;                       /* the other side said goodbye */
    unsigned ep_events;                /* what the engine's epoll set waits for on
                                        * it (0: not in the set) */
    unsigned ep_ready;                 /* what epoll_wait found, this turn */
    apr_uint64_t rx_seq;               /* last sequence number taken (encrypted) */
    apr_uint64_t rx_frames;            /* frames taken on this connection */
    apr_uint64_t data_out;             /* DATA frames sent on it (Transport
                                        * keepAliveCount) */
    int hello_seen;                    /* a heartbeat came on it */
    unsigned char dest[20];            /* EncryptInterceptor: whom frames on it are
                                        * sealed for (SC_DEST_LEN, sc_crypto.h) */
    int dest_set;
    unsigned char local_dest[20];      /* in: this end's address, as a destination */
    int local_dest_set;
    apr_uint64_t ipc_token;            /* a child's: the token its synchronous
                                        * changes in the ring name it by (0: none) */
    sc_conn *next;
};

/* A member as this one sees it (membership's; the transport reads where to
 * connect, its connection, its replay window and counts its traffic). */
struct sc_peer {
    int slot;                          /* index in shm->members */
    int is_static;
    char host[256];                    /* to connect to */
    int port;
    struct sockaddr_storage sa;
    socklen_t salen;
    int resolved;
    unsigned char id[SC_ID_LEN];
    int id_known;
    apr_uint64_t incarnation;
    char route[SC_ROUTE_MAX + 1];
    char domain[SC_DOMAIN_MAX + 1];
    int hb_state;
    int observer;
    struct sc_replay *replay;          /* EncryptInterceptor: frames seen (malloc) */
    apr_time_t last_lost;              /* its connection last broke */
    apr_time_t spoof_logged;           /* last refusal of a heartbeat in its name */
    apr_uint64_t hb_seq_max;           /* highest multicast heartbeat sequence */
    int view;                          /* sc_view_state */
    apr_time_t first_seen, last_heard, state_since;
    apr_time_t serving_since;          /* alive and ready/draining since */
    apr_uint64_t serving_incarnation;
    int stopped_serving;               /* it served, then stopped (an absence) */
    apr_uint64_t alive_ms;
    apr_uint64_t restarts_seen;
    int has_load;                      /* its heartbeat's tag (issue 21) */
    apr_uint32_t busy, capacity, sessions;
    char url[SC_URL_MAX + 1];
    sc_conn *out;
    apr_time_t next_connect;
    int backoff_ms;
    int auth_backoff_ms;               /* it refused us, or we it (EncryptInterceptor):
                                        * no connection before next_connect */
    int checking;                      /* failure detector check running */
    apr_time_t check_deadline;
    char verdict[128];
    int from_dns;                      /* found by CloudMembershipService */
    sc_counters c;
    /* DeltaManager's anti-entropy with it (sc_manager.c) */
    int dm_view;                       /* its view when the DeltaManager last looked */
    apr_time_t ae_due;                 /* an exchange with it is due then (0: none) */
    apr_time_t ae_last;                /* the last one started */
    apr_uint32_t ae_seen, ae_asked, ae_buried;   /* its digest so far */
    int leave_wait;                    /* told we leave: its PONG not back yet */
    sc_peer *next;
};

/* A broadcast waiting for every member's ACK. */
typedef struct sc_group {
    int waiting, sent, failed;
    sc_conn *ipc;
    apr_uint64_t ipc_seq;
    apr_time_t started;
    char first_error[160];
} sc_group;

/* A state transfer this member sends to a joining member. */
typedef struct sc_transfer_out {
    sc_peer *to;
    apr_uint32_t cursor;               /* next store slot */
    apr_uint32_t sent;
    apr_uint32_t blocks;               /* messages of sessions sent */
    apr_time_t next_block;             /* sendAllSessions="false": not before this,
                                        * sendAllSessionsWaitTime after the last */
    unsigned char *buf;                /* malloc'd: every block is encoded in it */
    apr_size_t cap;
    sc_sess_copy *stamps;              /* malloc'd: every block's stamps */
    apr_uint32_t nstamps;
    struct sc_transfer_out *next;
} sc_transfer_out;

/* A digest of this member's sessions being sent to a member (anti-entropy,
 * sc_manager.c). */
typedef struct sc_ae_round {
    sc_peer *to;
    unsigned flags;                    /* SC_DIGEST_ANSWER: it asks for the other's */
    int phase;                         /* 0 sessions, 1 tombstones */
    apr_uint32_t cursor;               /* the next store slot */
    apr_uint32_t entries, parts;
    struct sc_ae_round *next;
} sc_ae_round;

/* A delta that arrived before the version it applies to (children replicate
 * through separate connections, so one session's deltas may overtake each
 * other): held briefly for the missing one, else the session is asked for. */
typedef struct sc_held {
    char id[SC_SID_MAX];
    apr_uint64_t base;
    sc_peer *from;
    unsigned char *msg;
    apr_size_t len;
    apr_time_t deadline;
    apr_uint64_t ack_seq;              /* the sender waits for an ACK of this: 0 none */
    int asked;                         /* the session was asked for, the wait renewed */
    struct sc_held *next;
} sc_held;

/* An acknowledged send waiting for its ACK (from a child's request). */
typedef struct sc_pending {
    sc_group *group;                   /* a broadcast's share, or NULL */
    apr_uint64_t seq;
    sc_peer *peer;
    sc_conn *ipc;                      /* who to answer */
    apr_uint64_t ipc_seq;
    apr_time_t started, deadline;
    int tries;
    int waited_verdict;                /* its deadline passed with the member silent:
                                        * waiting for the failure detector instead */
    int lost;                          /* its connection broke, retries spent: waiting
                                        * for the failure detector's verdict */
    apr_time_t lost_at;                /* when (what the member says on a connection
                                        * made since: it lives) */
    unsigned char *frame;              /* for a retry after a broken connection */
    apr_size_t frame_len;
    struct sc_pending *next;
} sc_pending;

/* A child's change for every member, kept while this engine has not met
 * yet the members its predecessor saw alive (sc_channel.c, "Early changes"). */
typedef struct sc_early {
    sc_conn *ipc;                      /* the child that waits for its answer, or NULL */
    apr_uint64_t ipc_seq;
    int acked;
    apr_time_t kept;                   /* when it was kept */
    apr_size_t len;
    struct sc_early *next;
    unsigned char msg[];
} sc_early;

/* A member the previous engine saw alive, not met yet by this one. */
typedef struct {
    unsigned char id[SC_ID_LEN];
    char route[SC_ROUTE_MAX + 1];
} sc_expected;

#define SC_EARLY_MAX_BYTES (4 * 1024 * 1024)   /* early changes kept at most */

/* EncryptInterceptor's replay window: the highest sequence number taken from
 * a member's incarnation and which of the SC_REPLAY_WINDOW before it were. */
#define SC_REPLAY_WINDOW 8192
typedef struct sc_replay {
    apr_uint64_t top;
    unsigned char bits[SC_REPLAY_WINDOW / 8];
} sc_replay;

/* The Receiver's limits (sc_transport.c). */
#define SC_MAX_INBOUND        (2 * SC_MAX_MEMBERS)  /* members' connections at once */
#define SC_MAX_INBOUND_PER_IP 8                     /* strangers' from one address
                                                     * (the pools: sc_transport.c) */
#define SC_PREHELLO_MAX       4096                  /* a frame before HELLO */
#define SC_READ_PER_TURN      (1024 * 1024)         /* bytes read from one connection per turn */
#define SC_PENALTY_BAD        20                    /* bad frames from one address ... */
#define SC_PENALTY_WINDOW_S   60                    /* ... within this: refused for */
#define SC_PENALTY_S          30
#define SC_PENALTY_SLOTS      32

typedef struct {
    char addr[48];
    apr_uint32_t bad;
    apr_time_t first, until;
} sc_penalty;

struct sc_engine {
    /* the engine (sc_engine.c): what it is and runs on */
    apr_pool_t *pool;
    apr_pool_t *tmp;                   /* cleared on every turn of the loop */
    apr_pool_t *frame_tmp;             /* e->tmp while a frame is handled */
    server_rec *s;
    sc_cluster_cfg *cfg;
    const sc_settings *set;            /* the block's settings (cfg->set) */
    sc_shm_t *shm;                     /* what it publishes (sc_shm.h) */
    sc_store *store;                   /* sessions (sc_store.h), NULL on a front */
    const char *route;
    int observer;                      /* a front: holds no sessions */
    unsigned char id[SC_ID_LEN];
    apr_uint64_t incarnation;
    apr_time_t started;                /* on the engine's clock (sc_engine_now) */
    apr_time_t clock_wall, clock_boot; /* the wall clock and CLOCK_BOOTTIME when
                                        * the engine's clock was set */
    int state;                         /* sc_member_state */
    pid_t parent;                      /* httpd's parent: gone, the engine leaves */
    apr_time_t next_publish;
    apr_uint64_t thr_last_msgs;        /* ThroughputInterceptor's last report */
    apr_uint64_t seq;                  /* the number of the last frame sent */
    apr_time_t last_turn;              /* the event loop's last turn */
    struct sc_ring *ring;              /* children's asynchronous hand-offs, or NULL */
    apr_pool_t *ring_tmp;              /* e->tmp while a ring message is handled */
    apr_hash_t *ring_conns;            /* children's connections by token: where a
                                        * change taken from the ring is answered */
    int in_ring;                       /* a ring message is being handled */
    sc_gather gather;                  /* whether the engine gathers (sc_ring.h) */
    unsigned turn_async;               /* asynchronous messages children handed
                                        * over in this turn (gather_async) */

    /* transport (sc_transport.c) */
    struct sc_crypto *crypto;          /* EncryptInterceptor, or NULL */
    sc_penalty penalty[SC_PENALTY_SLOTS]; /* addresses that sent bad frames */
    int listen_fd;
    int mcast_fd;
    int ipc_fd;
    int ep_fd;                         /* the loop's epoll set (sc_tr_wait); -1: none,
                                        * poll(2) instead */
    int ep_fds[4];                     /* listen, mcast, ipc, wake as registered
                                        * (-1: not) */
    int wake_fd;                       /* the ring's wake-up (sc_ring.h), or -1 */
    int no_pwait2;                     /* the kernel has no epoll_pwait2 */
    struct sockaddr_storage mcast_sa;
    socklen_t mcast_salen;
    char self_addr[48];
    int self_family;
    unsigned char self_addr_bytes[16];
    int self_port;
    char ipc_path[256];
    sc_conn *conns;
    int corked;                        /* sends wait for sc_tr_uncork */
    const sc_tr_handlers *handlers;    /* the layers above (sc_engine.c) */
    sc_tr_event *ev_head, *ev_tail;    /* connection events not taken yet */

    /* membership (sc_membership.c; sc_cloud.c) */
    int use_mcast_rx, use_mcast_tx;    /* multicast heartbeats heard, sent: as the
                                        * block asks, off if the group cannot be
                                        * joined */
    unsigned char domain[SC_DOMAIN_MAX];
    int domain_len;
    sc_peer *peers;
    apr_uint64_t hb_seq;
    apr_time_t next_heartbeat;
    apr_time_t next_ping;              /* TCP pings between heartbeats */
    unsigned char conflict_id[SC_ID_LEN];   /* last member that claimed our route */
    apr_time_t conflict_logged;
    apr_time_t stranger_logged;        /* last "not a listed member" warning */
    sc_dns *dns;                       /* CloudMembershipService (sc_cloud.c) */
    apr_uint64_t dns_seen;

    /* channel (sc_channel.c) */
    sc_pending *pending;               /* sends waiting for their ACK */
    sc_expected expect[SC_MAX_MEMBERS]; /* members known before, not met yet */
    int nexpect;
    apr_time_t expect_until;           /* waited for until then (dropTime) */
    sc_early *early, *early_tail;      /* changes kept for them, oldest first */
    apr_size_t early_bytes;
    apr_uint32_t early_sent_early;     /* sent before they were met (the bound) */

    /* DeltaManager (sc_manager.c) */
    sc_peer *transfer_from;            /* the member sending us its sessions */
    apr_time_t transfer_started;
    apr_uint32_t transfer_received;
    apr_uint32_t transfer_blocks;      /* ALL_DATA messages of the transfer */
    sc_transfer_out *transfers;
    sc_held *held;
    int nheld;
    apr_time_t next_sweep;
    long sweeps;                       /* ticks of the sweep: idle sessions expire
                                        * every processExpiresFrequency-th */
    sc_ae_round *ae_rounds;            /* digests being sent (anti-entropy) */
    apr_time_t next_ae;                /* the next periodic exchange */
    int minority;                      /* sees fewer than half of the members it knows */

    /* httpd -k stop|graceful-stop announced (sc_engine.c announce_leave) */
    sc_conn *leave_ipc;                /* who waits for the members' PONGs */
    apr_uint64_t leave_ipc_seq;
    apr_time_t leave_started, leave_deadline;
    int leave_told;                    /* members told */
};

/* The engine's clock, in microseconds.  Every deadline, interval and age the
 * engine keeps for itself (heartbeats, dropTime, the TCP checks, the ACK
 * waits, the publish and its own "did not run" check) is on it: the wall
 * clock of the engine's start moved on by sc_steady_us(), so a step of the
 * machine's clock (date -s, ntpdate, a VM's clock corrected) neither stops
 * the heartbeats (a step back) nor makes every peer look silent at once (a
 * step forward).  It reads as the wall clock until a step and stays off by
 * the step after one, so the times that other processes or members compare
 * with their own wall clock are taken from apr_time_now() (a session's last
 * access, the locations' news, the status page's and the front's times) or
 * converted when published (sc_engine_wall). */
static APR_INLINE void sc_engine_clock_set(sc_engine *e)
{
    e->clock_wall = apr_time_now();
    e->clock_boot = sc_steady_us();
}

static APR_INLINE apr_time_t sc_engine_now(const sc_engine *e)
{
    return e->clock_wall + (sc_steady_us() - e->clock_boot);
}

/* A time of the engine's clock as the wall clock reads it now (0 stays 0):
 * for what the status page, the front and the children compare with their
 * own apr_time_now(). */
static APR_INLINE apr_time_t sc_engine_wall(const sc_engine *e, apr_time_t t)
{
    return t ? t + (apr_time_now() - sc_engine_now(e)) : 0;
}

#endif /* SC_CORE_H */
