/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_config.h -- the typed settings a pasted Tomcat <Cluster> block turns into.
 *
 * Every element of the block becomes one sc_elem_t: the class it names, where it
 * was written, and a typed struct holding every attribute of that class with
 * Tomcat's default filled in.  The class catalogue (sc_classes.c) describes each
 * class's attributes with a table of sc_attr_def; the reader (sc_config.c), the
 * dump (sc_dump.c) and later the engine all work from those tables, so one
 * attribute is described exactly once.
 */
#ifndef SC_CONFIG_H
#define SC_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "ap_regex.h"
#include "apr_tables.h"

/* Which element of the block (the XML tag). */
typedef enum {
    SC_EL_CLUSTER = 0,
    SC_EL_MANAGER,
    SC_EL_SESSIONIDGEN,     /* <SessionIdGenerator> inside <Manager> */
    SC_EL_CHANNEL,
    SC_EL_MEMBERSHIP,
    SC_EL_RECEIVER,
    SC_EL_SENDER,
    SC_EL_TRANSPORT,
    SC_EL_INTERCEPTOR,
    SC_EL_MEMBER,           /* <Member> (static member) */
    SC_EL_LOCALMEMBER,      /* <LocalMember> */
    SC_EL_VALVE,
    SC_EL_DEPLOYER,
    SC_EL_LISTENER,         /* <ClusterListener> */
    SC_EL_COUNT
} sc_elem_kind;

/* What a class is, once its name is resolved (Tomcat 8.5-10 and 5.5 names). */
typedef enum {
    SC_C_NONE = 0,
    SC_C_SIMPLE_TCP_CLUSTER,
    SC_C_DELTA_MANAGER,
    SC_C_BACKUP_MANAGER,
    SC_C_SESSION_ID_GENERATOR,
    SC_C_GROUP_CHANNEL,
    SC_C_MCAST_SERVICE,
    SC_C_STATIC_MEMBERSHIP_SERVICE,
    SC_C_CLOUD_MEMBERSHIP_SERVICE,
    SC_C_NIO_RECEIVER,
    SC_C_REPLICATION_TRANSMITTER,
    SC_C_POOLED_PARALLEL_SENDER,
    SC_C_TCP_FAILURE_DETECTOR,
    SC_C_TCP_PING,
    SC_C_MESSAGE_DISPATCH,
    SC_C_THROUGHPUT,
    SC_C_DOMAIN_FILTER,
    SC_C_FRAGMENTATION,
    SC_C_STATIC_MEMBERSHIP,
    SC_C_ENCRYPT,
    SC_C_GZIP,
    SC_C_ORDER,
    SC_C_OTHER_INTERCEPTOR,   /* coordinators, 2PC: accepted, mean nothing here */
    SC_C_STATIC_MEMBER,
    SC_C_REPLICATION_VALVE,
    SC_C_JVMROUTE_BINDER_VALVE,
    SC_C_CLUSTER_SSO_VALVE,
    SC_C_FARM_WAR_DEPLOYER,
    SC_C_CLUSTER_SESSION_LISTENER,
    SC_C_JVMROUTE_ID_BINDER_LISTENER,
    SC_C_MSM_MANAGER,       /* msm's <Manager>, at server level (sc_msm.c) */
    SC_C_COUNT
} sc_class_id;

/* Channel send-option bits (Tomcat's Channel.SEND_OPTIONS_*). */
#define SC_SEND_BYTE_MESSAGE     0x01
#define SC_SEND_USE_ACK          0x02
#define SC_SEND_SYNCHRONIZED_ACK 0x04
#define SC_SEND_ASYNCHRONOUS     0x08
#define SC_SEND_SECURE           0x10
#define SC_SEND_UDP              0x20
#define SC_SEND_MULTICAST        0x40

/* Attribute value types; each has one parser and one printer. */
typedef enum {
    SC_T_INT,        /* integer within [min,max] */
    SC_T_BOOL,       /* true/false (also yes/no, on/off, 1/0) */
    SC_T_STR,        /* free text, bounded length */
    SC_T_SENDOPTS,   /* integer or comma list of send-option names */
    SC_T_MCAST,      /* IPv4/IPv6 multicast group */
    SC_T_ADDR,       /* host name or IP, or "auto" */
    SC_T_REGEX,      /* regular expression (compiled) */
    SC_T_REGEX55,    /* Tomcat 5.5 valve filter: ';'-separated patterns */
    SC_T_UNIQUEID,   /* 16 bytes: {0,1,...,15} */
    SC_T_DOMAIN,     /* text or {b,b,...} bytes */
    SC_T_HEXKEY,     /* hex string of 16, 24 or 32 bytes */
    SC_T_CLASS       /* a class name (used for nested class attributes) */
} sc_attr_type;

/* A typed attribute value; the field used depends on the type. */
typedef struct {
    long num;                 /* INT, BOOL, SENDOPTS */
    const char *str;          /* STR, ADDR, MCAST, DOMAIN, HEXKEY, CLASS, REGEX source */
    ap_regex_t *re;           /* REGEX, REGEX55 (NULL: empty filter) */
    unsigned char bytes[32];  /* UNIQUEID, DOMAIN, HEXKEY */
    int nbytes;
} sc_value_t;

/* Where a value came from, for the dump. */
typedef enum {
    SC_SRC_DEFAULT = 0,   /* Tomcat's default */
    SC_SRC_BLOCK,         /* written in the block */
    SC_SRC_LEGACY,        /* written in the block under its Tomcat 5.5 name */
    SC_SRC_PREFIX,        /* written on <Cluster> as manager.x / sender.x / ... */
    SC_SRC_DERIVED        /* computed from other settings (5.5 replicationMode ...) */
} sc_value_src;

typedef struct {
    const char *name;      /* current Tomcat name, e.g. "dropTime" */
    sc_attr_type type;
    const char *defval;    /* Tomcat's default as text; NULL: unset */
    long min, max;         /* INT bounds; STR maximum length in max */
    const char *unit;      /* "ms", "s", "bytes", or NULL */
    const char *legacy;    /* Tomcat 5.5 name, or NULL; "" marks an attribute
                            * only Tomcat 5.5 had (dumped only when written) */
} sc_attr_def;

typedef struct {
    sc_class_id id;
    sc_elem_kind kind;
    const char *short_name;       /* "McastService" */
    const char *canonical;        /* the current fully-qualified name */
    const char *const *aliases;   /* other short names (5.5, MessageDispatch15Interceptor) */
    const sc_attr_def *attrs;     /* terminated by name == NULL */
    const char *ignored_reason;   /* non-NULL: accepted, means nothing in httpd */
} sc_class_def;

/* One element of the block. */
typedef struct sc_elem_t sc_elem_t;
struct sc_elem_t {
    const sc_class_def *cls;
    const char *class_name;   /* as written (or the canonical name for defaults) */
    const char *file;
    int line;                 /* line in file; 0 for an element Tomcat adds by default */
    sc_value_t *values;       /* one per cls->attrs entry */
    sc_value_src *srcs;
    int *lines;               /* where each was written; 0: not written */
    unsigned char *used;      /* 1: the module acts on the value (the reader
                               * took it into cfg->set, or mapped it onto a
                               * value that is); 0: it has no effect here */
    apr_array_header_t *children;  /* sc_elem_t * (Sender: Transport; Manager: ...) */
};

/* ---- the typed settings ----
 * What the module's code reads of the block, one field per meaning, built once
 * when the block is read, in the configuration pool (sc_config.c, the only code
 * that looks attributes up by name, through a checked lookup: a name the
 * element's class does not have refuses the configuration).  Everything else
 * reads these fields.  The Tomcat attribute each one comes from is in its
 * comment.  A number an element of another class does not have reads -1, a
 * text or a set of bytes NULL. */

/* A static <Member> of StaticMembershipService/StaticMembershipInterceptor. */
typedef struct {
    const char *host;                    /* host */
    long port;                           /* port */
    const unsigned char *unique_id;      /* uniqueId: 16 bytes, or NULL */
} sc_member_settings;

/* A ReplicationValve, in block order. */
typedef struct {
    int primary_indicator;               /* primaryIndicator */
    const char *primary_indicator_name;  /* primaryIndicatorName */
    ap_regex_t *filter;                  /* filter, compiled; NULL: none */
} sc_replication_valve_settings;

typedef struct {
    /* <Cluster> */
    long send_options;               /* channelSendOptions (SC_SEND_*) */
    long start_options;              /* channelStartOptions */
    int replication_acked;           /* derived: send_options has use_ack and not
                                      * asynchronous: a request waits for every
                                      * member's ACK */

    /* <Membership> (cfg->membership->cls->id says which service) */
    long heartbeat_ms;               /* derived: McastService frequency,
                                      * StaticMembershipService pingInterval,
                                      * 500 for CloudMembershipService */
    long drop_ms;                    /* McastService dropTime, else expirationTime */
    int mcast_receive;               /* derived: McastService and start_options 4 */
    int mcast_send;                  /* derived: McastService and start_options 8 */
    const char *mcast_address;       /* McastService address */
    long mcast_port;                 /* McastService port */
    const char *mcast_bind;          /* McastService bind */
    long mcast_ttl;                  /* McastService ttl (-1: unset) */
    long mcast_loopback_disabled;    /* McastService localLoopbackDisabled (0/1) */
    const char *cloud_provider;      /* CloudMembershipService membershipProviderClassName */
    const char *cloud_dns_name;      /* CloudMembershipService dnsServiceName */
    long cloud_refresh_ms;           /* CloudMembershipService refreshInterval */
    long cloud_connect_ms;           /* CloudMembershipService connectTimeout (kubernetes) */
    long cloud_read_ms;              /* CloudMembershipService readTimeout (kubernetes) */

    /* <Receiver> */
    const char *receiver_address;    /* address ("auto" or NULL: find one) */
    long receiver_port;              /* port */
    long receiver_auto_bind;         /* autoBind: ports to try from port on (the
                                      * last one 65535 at most) */
    long max_message_size;           /* maxMessageSize (bytes) */

    /* <Transport> (the Tomcat 5.5 Sender's attributes folded in) */
    long send_timeout_ms;            /* timeout */
    long max_retries;                /* maxRetryAttempts */
    long keep_alive_count;           /* keepAliveCount: messages a connection of ours
                                      * carries before it is closed and opened
                                      * again (-1: no limit) */
    long keep_alive_ms;              /* keepAliveTime: its life in ms (-1: none) */

    /* <Manager> */
    long state_transfer_timeout_s;   /* DeltaManager stateTransferTimeout */
    long send_all_sessions_size;     /* DeltaManager sendAllSessionsSize */
    int send_all_sessions;           /* DeltaManager sendAllSessions (0/1): the
                                      * state in as few messages as maxMessageSize
                                      * allows, else blocks of the size above */
    long send_all_sessions_wait_ms;  /* DeltaManager sendAllSessionsWaitTime: the
                                      * pause after each block (blocks only) */
    int expire_sessions_on_shutdown; /* expireSessionsOnShutdown (0/1) */
    long max_active_sessions;        /* maxActiveSessions (-1: unlimited) */
    long max_session_size;           /* maxSessionSize (bytes) */
    long max_store_size;             /* maxStoreSize (ours, bytes; 0: automatic) */
    const ap_regex_t *attr_name_filter; /* sessionAttributeNameFilter, compiled
                                      * (whole-name match); NULL: every attribute
                                      * is distributed (sc_session.c) */
    const char *attr_name_filter_text; /* ... as written */
    int warn_attr_filter;            /* warnOnSessionAttributeFilterFailure (0/1) */
    long max_inactive_s;             /* maxInactiveInterval */
    long process_expires_frequency;  /* processExpiresFrequency: idle sessions are
                                      * expired every this many ticks of the
                                      * engine (one a second) */
    long probation_s;                /* probationInactiveInterval (ours): the idle
                                      * limit of a session that saw a single
                                      * request (<= 0: none; sc_store.h) */
    /* BackupManager (sc_backup.c): read only under it, else 0 */
    int backup_manager;              /* the Manager is BackupManager, and runs so */
    long map_send_options;           /* mapSendOptions (SC_SEND_*) */
    int map_acked;                   /* derived: mapSendOptions has use_ack and not
                                      * asynchronous: a request waits for its
                                      * session's backup to apply the change */
    long rpc_timeout_ms;             /* rpcTimeout: a fetch's and the map's wait */
    long access_timeout_ms;          /* accessTimeout */
    int terminate_on_start_failure;  /* terminateOnStartFailure (0/1) */
    long session_id_length;          /* SessionIdGenerator sessionIdLength: random
                                      * bytes of a new session id (2 hex
                                      * characters each, before ".route") */

    /* <Interceptor>s: which are present, and what the engine takes of them */
    int has_tcp_failure_detector;    /* TcpFailureDetector */
    long tcp_check_timeout_ms;       /* its connectTimeout; 1000 without it */
    int tcp_read_test;               /* its performReadTest (0/1) */
    long tcp_answer_timeout_ms;      /* derived: how long a check waits for the
                                      * member's answer: readTestTimeout with
                                      * performReadTest, else connectTimeout */
    int has_tcp_ping;                /* TcpPingInterceptor */
    long tcp_ping_interval_ms;       /* its interval; -1 without it */
    long tcp_ping_ms;                /* derived: every connected member gets a TCP
                                      * ping this often: heartbeat_ms, or the
                                      * interval when that is shorter */
    int has_message_dispatch;        /* MessageDispatchInterceptor */
    int has_throughput;              /* ThroughputInterceptor */
    long throughput_interval;        /* its interval (messages); 0 without it */
    int has_domain_filter;           /* DomainFilterInterceptor */
    const unsigned char *domain;     /* derived: DomainFilterInterceptor domain, else
                                      * McastService domain, else LocalMember
                                      * domain; NULL: none */
    int domain_len;
    int encrypted;                   /* EncryptInterceptor */
    const unsigned char *encryption_key;           /* its encryptionKey */
    int encryption_key_len;
    const unsigned char *previous_encryption_key;  /* previousEncryptionKey, or NULL */
    int previous_encryption_key_len;
    const char *encryption_algorithm;              /* encryptionAlgorithm */
    const char *encrypt_file;        /* where the EncryptInterceptor is written */
    int encrypt_line;
    const char *not_run;             /* short names of the interceptors written but
                                      * not implemented, ", "-separated; NULL: none */

    /* <LocalMember>, static <Member>s */
    const unsigned char *local_unique_id;  /* LocalMember uniqueId: 16 bytes, or NULL */
    const sc_member_settings *members;     /* in block order */
    int nmembers;

    /* <Valve>s */
    const sc_replication_valve_settings *replication_valves;  /* in block order */
    int nreplication_valves;
    const char *rebind_attribute;    /* sessionIdAttribute of the first enabled
                                      * JvmRouteBinderValve; NULL: no re-binding */
} sc_settings;

/* The effective cluster configuration: the parsed block after defaults and the
 * Tomcat 5.5 mapping.  Pointers into elements are shortcuts for consumers. */
typedef struct {
    const sc_settings *set;    /* what the code reads: fields, never names */
    const char *file;          /* httpd.conf that held the block */
    int line;                  /* line of <Cluster */
    int legacy;                /* the block uses Tomcat 5.5 class names */
    sc_elem_t *cluster;
    sc_elem_t *manager;
    sc_elem_t *session_id_generator;    /* <SessionIdGenerator>, or Tomcat's default */
    sc_elem_t *channel;
    sc_elem_t *membership;
    sc_elem_t *receiver;
    sc_elem_t *sender;
    sc_elem_t *transport;
    apr_array_header_t *interceptors;   /* sc_elem_t *, in block order */
    apr_array_header_t *members;        /* sc_elem_t * static <Member>s */
    sc_elem_t *local_member;            /* <LocalMember>, or NULL */
    apr_array_header_t *valves;         /* sc_elem_t * */
    apr_array_header_t *listeners;      /* sc_elem_t * */
    sc_elem_t *deployer;                /* NULL unless written */
    apr_array_header_t *ignored;        /* const char *: "file:line: what" */
    apr_array_header_t *notes;          /* const char *: defaults Tomcat adds, mapping notes */
} sc_cluster_cfg;

/* ---- class catalogue (sc_classes.c) ---- */
const sc_class_def *sc_class_lookup(sc_elem_kind kind, const char *class_name,
                                    int *legacy);
const sc_class_def *sc_class_by_id(sc_class_id id);
int sc_attr_index(const sc_class_def *cls, const char *name, int *legacy);
const char *sc_elem_kind_name(sc_elem_kind kind);
int sc_elem_kind_from_tag(const char *tag, sc_elem_kind *kind);
sc_elem_kind sc_default_parent(sc_elem_kind kind);
/* Why an attribute the catalogue does not parse (JMX, Tomcat 5.5 statistics
 * and queue tuning, ...) means nothing in httpd, or NULL. */
const char *sc_attr_ignored_reason(const char *name);
/* 1 when the engine runs the interceptor of this class id (the others are
 * reported as not run) */
int sc_interceptor_runs(int id);
/* Why an attribute of an interceptor the engine runs changes nothing here, or
 * NULL when no reason is written down.  Whether an attribute acts at all is
 * what the reader found (sc_elem_t used); this is only the explanation. */
const char *sc_attr_no_effect(const sc_class_def *cls, const char *name);
/* What a class does here that is not what Tomcat's does, for the dump and the
 * startup warning, or NULL (none at present). */
const char *sc_class_caveat(const sc_class_def *cls);
/* What the dump says of how a class acts here (BackupManager: how backups are
 * chosen), or NULL. */
const char *sc_class_note(const sc_class_def *cls);

/* ---- values (sc_config.c) ---- */
const char *sc_parse_value(apr_pool_t *p, const sc_attr_def *def,
                           const char *text, sc_value_t *out);
const char *sc_parse_send_options(const char *text, long *out);
const char *sc_send_options_names(apr_pool_t *p, long opts);
sc_elem_t *sc_elem_new(apr_pool_t *p, const sc_class_def *cls,
                       const char *class_name, const char *file, int line);

/* ---- the block reader (sc_config.c) ---- */
/* Reads the body of a <Cluster ...> section from cmd->config_file (the directive
 * line's arguments are 'args'), parses and validates it.  Returns NULL and sets
 * *cfg, or returns the error text (naming file and line). */
const char *sc_config_read_block(cmd_parms *cmd, const char *args,
                                 sc_cluster_cfg **cfg);
/* Parses a whole block held in memory (tests, fuzzers): 'text' starts at
 * "<Cluster"; 'first_line' is its line in 'file'. */
const char *sc_config_parse_text(apr_pool_t *p, apr_pool_t *ptemp, server_rec *s,
                                 const char *file, int first_line,
                                 const char *text, apr_size_t len,
                                 sc_cluster_cfg **cfg);

/* ---- what the engine makes of the block (sc_config.c) ---- */
/* What the interceptors do here where it is not what Tomcat's do (one text
 * each): the build adds them to the block's notes, the engine logs them. */
apr_array_header_t *sc_cfg_interceptor_notes(apr_pool_t *p, const sc_cluster_cfg *cfg);

/* Does the block have an EncryptInterceptor? (cfg->set->encrypted) */
int sc_cluster_encrypted(const sc_cluster_cfg *cfg);

/* ---- the dump (sc_dump.c) ---- */
/* Appends "Key = value  # origin" lines describing the effective configuration. */
void sc_config_dump(apr_pool_t *p, const sc_cluster_cfg *cfg,
                    apr_array_header_t *lines);
const char *sc_value_text(apr_pool_t *p, const sc_attr_def *def,
                          const sc_value_t *v);
/* Hands every setting of the block to 'visit', in the dump's order, with the
 * dump's key ("Interceptor.3.encryptionKey") and its value as bytes: what the
 * value is, not how the dump prints it (a key comes as its bytes, although the
 * dump prints only its size).  For the engine's fingerprint; never print what
 * it is given. */
typedef void sc_config_visit_fn(void *baton, const char *key, const void *value,
                                apr_size_t len);
void sc_config_visit(apr_pool_t *p, const sc_cluster_cfg *cfg, sc_config_visit_fn *visit,
                     void *baton);

#endif /* SC_CONFIG_H */
