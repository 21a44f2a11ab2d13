/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_engine.h -- the cluster engine: one process per httpd instance that runs
 * membership and the TCP channel (sc_engine.c: lifecycle and event loop;
 * sc_membership.c: the member view and failure detection; sc_transport.c:
 * sockets and frames).
 *
 * Placement.  The engine is a daemon forked by httpd's parent process in
 * post_config, like mod_cgid's daemon, and supervised through httpd's
 * "other child" registry: if it dies it is started again.  Unlike mod_cgid's,
 * it is tied to the process pool, not to pconf: a graceful or hard restart that
 * leaves the cluster configuration unchanged keeps the same engine, so peers see
 * nothing at all; a restart that changes it replaces the engine, which first
 * tells its peers it is restarting.  Child processes (MaxConnectionsPerChild,
 * idle trimming) never host it, so their recycling cannot move it.
 */
#ifndef SC_ENGINE_H
#define SC_ENGINE_H

#include "sc_private.h"
#include "sc_proto.h"
#include "sc_shm.h"
#include "sc_store.h"

#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define SC_FP_LEN 32

/* The layout of what outlives a restart (this struct, the status segment,
 * the session store).  A graceful restart loads the module's file again but
 * keeps what the parent retained: a build whose layout differs must not read
 * it.  Raise it with any change to sc_retained, sc_shm_t or the store. */
#ifndef SC_RETAINED_LAYOUT
#define SC_RETAINED_LAYOUT 0x53430004u
#endif

/* Values that must outlive a restart (process-pool lifetime). */
typedef struct {
    apr_uint32_t layout;              /* SC_RETAINED_LAYOUT; first, always */
    sc_shm_t *shm;
    pid_t engine_pid;
    apr_proc_t proc;
    /* SHA-256 of the configuration the engine runs (sc_engine.c: salted,
     * keys included as bytes; in memory only, never printed) */
    unsigned char fingerprint[SC_FP_LEN];
    int fingerprint_set;
    unsigned char fp_salt[32];        /* drawn when httpd starts */
    unsigned char id[SC_ID_LEN];      /* this member's id, kept for its lifetime */
    apr_uint64_t starts;
    int registered;                   /* other_child registration done */
    server_rec *s;                    /* current generation's main server */
    apr_pool_t *pconf;                /* current generation's pconf */
    sc_cluster_cfg *cfg;
    const char *route;
    int observer;
    sc_store *store;                  /* sessions (sc_store.c), NULL on a front */
    apr_uint32_t store_capacity, store_slot;
} sc_retained;

/* ---- sc_engine.c ---- */
sc_retained *sc_retained_get(server_rec *s);
/* post_config: start, keep or replace the engine. */
int sc_engine_post_config(apr_pool_t *pconf, server_rec *s, sc_cluster_cfg *cfg,
                          const char *route, int observer);
/* Request from a child (cluster-manager): send a probe message to 'route' and
 * wait for its acknowledgement.  Fills 'result' with a sentence; returns 1 when
 * the member acknowledged. */
int sc_engine_probe(apr_pool_t *p, server_rec *s, const char *route, apr_size_t size,
                    int acked, const char **result, double *ms);
/* Hands a message to the engine: to member 'route', or to every live member when
 * route is NULL (DeltaManager replication); acked: wait for the members' ACKs. */
int sc_engine_request(apr_pool_t *p, server_rec *s, const char *route,
                      const void *msg, apr_size_t size, int acked, const char **result,
                      double *ms);

/* ---- engine internals ---- */
typedef struct sc_engine sc_engine;
typedef struct sc_peer sc_peer;
typedef struct sc_conn sc_conn;
typedef struct sc_dns sc_dns;

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
    int goodbye;                       /* the other side said goodbye */
    apr_uint64_t rx_seq;               /* last sequence number taken (encrypted) */
    apr_uint64_t rx_frames;            /* frames taken on this connection */
    int hello_seen;                    /* a heartbeat came on it */
    unsigned char dest[20];            /* EncryptInterceptor: whom frames on it are
                                        * sealed for (SC_DEST_LEN, sc_crypto.h) */
    int dest_set;
    unsigned char local_dest[20];      /* in: this end's address, as a destination */
    int local_dest_set;
    sc_conn *next;
};

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
    apr_uint64_t alive_ms;
    apr_uint64_t restarts_seen;
    sc_conn *out;
    apr_time_t next_connect;
    int backoff_ms;
    int auth_backoff_ms;               /* it refused us, or we it (EncryptInterceptor):
                                        * no connection before next_connect */
    int checking;                      /* failure detector check running */
    apr_time_t check_deadline;
    apr_time_t last_ping;
    char verdict[128];
    int from_dns;                      /* found by CloudMembershipService */
    sc_counters c;
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
    struct sc_transfer_out *next;
} sc_transfer_out;

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
    struct sc_held *next;
} sc_held;

/* An acknowledged send waiting for its ACK (from a child's request). */
typedef struct sc_pending {
    sc_group *group;                   /* a broadcast's share, or NULL */
    apr_uint64_t round;                /* sc_engine_conn_broken's pass that saw it */
    apr_uint64_t seq;
    sc_peer *peer;
    sc_conn *ipc;                      /* who to answer */
    apr_uint64_t ipc_seq;
    apr_time_t started, deadline;
    int tries;
    unsigned char *frame;              /* for a retry after a broken connection */
    apr_size_t frame_len;
    struct sc_pending *next;
} sc_pending;

/* EncryptInterceptor's replay window: the highest sequence number taken from
 * a member's incarnation and which of the SC_REPLAY_WINDOW before it were. */
#define SC_REPLAY_WINDOW 8192
typedef struct sc_replay {
    apr_uint64_t top;
    unsigned char bits[SC_REPLAY_WINDOW / 8];
} sc_replay;
/* 0: new, taken; -1: seen already, or older than the window. */
int sc_replay_take(sc_replay *w, apr_uint64_t seq);

/* The Receiver's limits (sc_transport.c). */
#define SC_MAX_INBOUND        (2 * SC_MAX_MEMBERS)  /* connections accepted at once */
#define SC_MAX_INBOUND_PER_IP 8                     /* from one address */
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
    apr_pool_t *pool;
    apr_pool_t *tmp;                   /* cleared on every turn of the loop */
    apr_pool_t *frame_tmp;             /* e->tmp while a frame is handled */
    struct sc_crypto *crypto;          /* EncryptInterceptor, or NULL */
    apr_uint64_t broken_round;         /* passes of sc_engine_conn_broken */
    sc_penalty penalty[SC_PENALTY_SLOTS]; /* addresses that sent bad frames */
    server_rec *s;
    sc_cluster_cfg *cfg;
    sc_shm_t *shm;
    const char *route;
    int observer;
    unsigned char id[SC_ID_LEN];
    apr_uint64_t incarnation;
    apr_time_t started;
    int state;                         /* sc_member_state */
    /* what the block asked for */
    int use_mcast_rx, use_mcast_tx;
    int has_tcp_fd, has_throughput, has_domain_filter;
    long frequency_ms, drop_ms;        /* the membership's heartbeat period, dropTime */
    long connect_timeout_ms, check_timeout_ms;
    long send_timeout_ms, max_retries;
    long ping_interval_ms;             /* TCP pings: frequency, or TcpPingInterceptor's
                                        * interval when shorter */
    long throughput_interval;
    apr_uint32_t max_message;
    long send_options;
    unsigned char domain[SC_DOMAIN_MAX];
    int domain_len;
    /* sockets */
    int listen_fd;
    int mcast_fd;
    int ipc_fd;
    struct sockaddr_storage mcast_sa;
    socklen_t mcast_salen;
    char self_addr[48];
    int self_family;
    unsigned char self_addr_bytes[16];
    int self_port;
    char ipc_path[256];
    sc_conn *conns;
    int corked;                        /* sends wait for sc_tr_uncork */
    sc_peer *peers;
    sc_pending *pending;
    apr_uint64_t seq;
    apr_uint64_t hb_seq;
    apr_time_t next_heartbeat;
    apr_time_t next_ping;              /* TCP pings between heartbeats */
    apr_time_t next_publish;
    volatile int stop;                 /* 1: leave (goodbye); 2: restarting */
    pid_t parent;
    apr_uint64_t thr_last_msgs;
    sc_dns *dns;                /* CloudMembershipService (sc_cloud.c) */
    sc_store *store;
    /* DeltaManager (sc_manager.c) */
    sc_peer *transfer_from;            /* the member sending us its sessions */
    apr_time_t transfer_started, transfer_asked;
    apr_uint32_t transfer_received;
    sc_transfer_out *transfers;
    sc_held *held;
    int nheld;
    apr_time_t next_sweep;
    unsigned char conflict_id[SC_ID_LEN];   /* last member that claimed our route */
    apr_time_t conflict_logged;
    apr_time_t stranger_logged;       /* last "not a listed member" warning */
    apr_uint64_t dns_seen;
};

/* sc_transport.c */
int sc_tr_listen(sc_engine *e);
int sc_tr_mcast_open(sc_engine *e);
int sc_tr_ipc_listen(sc_engine *e);
void sc_tr_connect(sc_engine *e, sc_peer *p);
void sc_tr_close(sc_engine *e, sc_conn *c, const char *why);
int sc_tr_send_frame(sc_engine *e, sc_conn *c, int type, int flags, apr_uint64_t seq,
                     const void *payload, apr_size_t len);
void sc_tr_handle(sc_engine *e, struct pollfd *pfds, int n);
/* While corked, writes are buffered; uncorking sends every connection's. */
void sc_tr_cork(sc_engine *e);
void sc_tr_uncork(sc_engine *e);
int sc_tr_pollfds(sc_engine *e, struct pollfd *pfds, int max);
void sc_tr_mcast_send(sc_engine *e, int state);
/* Closes connections that stay silent before HELLO or stall in a frame. */
void sc_tr_tick(sc_engine *e, apr_time_t now);
const char *sc_tr_resolve_auto(apr_pool_t *p, int *family, unsigned char *bytes,
                               char *text, apr_size_t textlen);

/* sc_membership.c */
void sc_mb_init(sc_engine *e);
apr_size_t sc_mb_heartbeat(sc_engine *e, int state, unsigned char *buf, apr_size_t cap);
sc_peer *sc_mb_on_heartbeat(sc_engine *e, const sc_heartbeat *hb, sc_conn *via,
                            const char *from);
void sc_mb_on_goodbye(sc_engine *e, sc_peer *p, const char *why);
void sc_mb_on_conn_lost(sc_engine *e, sc_peer *p, const char *why);
void sc_mb_on_refused(sc_engine *e, sc_peer *p, const char *why);
/* Our connection to p was refused (closed before p answered our HELLO, or
 * p's answer failed authentication): back off exponentially; cleared when p
 * answers on a connection of ours or comes back as a new incarnation. */
void sc_mb_on_auth_refused(sc_engine *e, sc_peer *p, const char *why);
/* The penalty of an address lifted (a member there restarted, authentic). */
void sc_tr_forgive(sc_engine *e, const char *addr);
void sc_mb_tick(sc_engine *e, apr_time_t now);
void sc_mb_publish(sc_engine *e);
void sc_mb_set_view(sc_engine *e, sc_peer *p, int view, const char *verdict);
sc_peer *sc_mb_find_route(sc_engine *e, const char *route);
sc_peer *sc_mb_add_member(sc_engine *e, const char *host, int port);

/* sc_manager.c (DeltaManager in the engine) */
/* A session message from a member.  ack_seq: the frame's number when the
 * sender waits for an ACK (0 if not).  Returns 1 when the message is applied
 * (or this member has its version already, or it needs no applying): the
 * caller acknowledges now.  Returns 0 when it is not acknowledged now: a
 * delta held until the version before it arrives (answered when applied, or
 * refused if it cannot be), or a change not applied (the store refused it,
 * or a version before it is missing): refused at once with FAIL_ACK. */
int sc_dm_on_message(sc_engine *e, sc_conn *c, const unsigned char *msg, apr_size_t len,
                     apr_uint64_t ack_seq);
/* Acknowledges frame 'seq' to member p (ok, or refused with a reason). */
void sc_engine_ack(sc_engine *e, sc_peer *p, sc_conn *c, apr_uint64_t seq, int ok,
                   const char *why);
void sc_dm_tick(sc_engine *e, apr_time_t now);
void sc_dm_shutdown(sc_engine *e);
/* Expires every session here and on every member; returns how many. */
apr_uint32_t sc_dm_expire_all(sc_engine *e);
/* Starts over as a joining member: starting until a state transfer is done. */
void sc_dm_redo_transfer(sc_engine *e);
int sc_dm_broadcast(sc_engine *e, const void *msg, apr_size_t len, sc_peer *except);

/* sc_cloud.c */
int sc_cloud_start(sc_engine *e);
void sc_cloud_tick(sc_engine *e);
void sc_cloud_stop(sc_engine *e);

/* sc_engine.c, used by the others */
void sc_engine_answer(sc_engine *e, sc_conn *ipc, apr_uint64_t ipc_seq, int ok,
                      double ms, const char *text);
void sc_engine_on_ack(sc_engine *e, sc_conn *c, apr_uint64_t seq, int ok,
                      const char *reason);
void sc_engine_on_ipc(sc_engine *e, sc_conn *c, const sc_frame_hdr *h,
                      const unsigned char *payload);
void sc_engine_conn_broken(sc_engine *e, sc_conn *c);

#endif /* SC_ENGINE_H */
