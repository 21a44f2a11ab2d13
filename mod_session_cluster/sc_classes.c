/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_classes.c -- the catalogue of Tomcat cluster classes and their attributes.
 *
 * One table per class: attribute name, type, Tomcat's default (as text, parsed by
 * the same code as the block), bounds, unit and the Tomcat 5.5 name where one
 * existed.  Defaults follow Tomcat 8.5-10 (webapps/docs/config/cluster-*.xml) and
 * the 5.5 cluster-howto for the legacy names.
 */
#include "sc_private.h"
#include "sc_store.h"

#include <limits.h>

#define INTMAX_ INT_MAX
#define PORT_MAX 65535
/* The longest session id the store holds (SC_SID_MAX with its NUL) is 2 hex
 * characters per random byte, '.' and a route of up to SC_MAX_ROUTE_LEN. */
#define SID_BYTES_MAX ((SC_SID_MAX - 2 - SC_MAX_ROUTE_LEN) / 2)

/* ---- <Cluster className="...SimpleTcpCluster"> ---- */
static const sc_attr_def cluster_attrs[] = {
    { "channelSendOptions", SC_T_SENDOPTS, "8", 0, 0xFFFF, NULL, NULL },
    { "channelStartOptions", SC_T_INT, "15", 1, 15, NULL, NULL },
    { "heartbeatBackgroundEnabled", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "notifyLifecycleListenerOnFailure", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "clusterName", SC_T_STR, NULL, 0, 256, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- <Manager>: DeltaManager and BackupManager ---- */
#define SC_MANAGER_COMMON_ATTRS \
    { "name", SC_T_STR, NULL, 0, 256, NULL, NULL }, \
    { "notifyListenersOnReplication", SC_T_BOOL, "true", 0, 1, NULL, NULL }, \
    { "processExpiresFrequency", SC_T_INT, "6", 1, INTMAX_, NULL, NULL }, \
    { "maxActiveSessions", SC_T_INT, "-1", -1, INTMAX_, NULL, NULL }, \
    { "maxInactiveInterval", SC_T_INT, "1800", -1, INTMAX_, "s", NULL }, \
    /* ours: the idle limit of a session that saw a single request */ \
    { "probationInactiveInterval", SC_T_INT, "60", -1, INTMAX_, "s", NULL }, \
    { "maxSessionSize", SC_T_INT, "1048576", 64, 268435456, "bytes", NULL }, \
    /* ours: the store's memory budget; 0: a quarter of the machine's \
     * memory, at most 1 GiB (sc_supervisor.c) */ \
    { "maxStoreSize", SC_T_INT, "0", 0, 1099511627776L, "bytes", NULL }, \
    { "expireSessionsOnShutdown", SC_T_BOOL, "false", 0, 1, NULL, NULL }, \
    { "secureRandomClass", SC_T_STR, NULL, 0, 256, NULL, NULL }, \
    { "secureRandomProvider", SC_T_STR, NULL, 0, 256, NULL, NULL }, \
    { "secureRandomAlgorithm", SC_T_STR, "SHA1PRNG", 0, 256, NULL, NULL }, \
    { "sessionAttributeNameFilter", SC_T_REGEX, NULL, 0, 4096, NULL, NULL }, \
    { "sessionAttributeValueClassNameFilter", SC_T_REGEX, NULL, 0, 4096, NULL, NULL }, \
    { "warnOnSessionAttributeFilterFailure", SC_T_BOOL, "false", 0, 1, NULL, NULL }

static const sc_attr_def delta_manager_attrs[] = {
    SC_MANAGER_COMMON_ATTRS,
    { "enableStatistics", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "recordAllActions", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "notifySessionListenersOnReplication", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "notifyContainerListenersOnReplication", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "stateTransferTimeout", SC_T_INT, "60", -1, INTMAX_, "s", NULL },
    { "sendAllSessions", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "sendAllSessionsSize", SC_T_INT, "1000", 1, INTMAX_, NULL, NULL },
    { "sendAllSessionsWaitTime", SC_T_INT, "2000", 0, INTMAX_, "ms", NULL },
    { "stateTimestampDrop", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    /* Tomcat 5.5 DeltaManager */
    { "sendClusterDomainOnly", SC_T_BOOL, "true", 0, 1, NULL, "" },
    { "updateActiveInterval", SC_T_INT, "60", 0, INTMAX_, "s", "" },
    { "expireTolerance", SC_T_INT, "300", 0, INTMAX_, "s", "" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def backup_manager_attrs[] = {
    SC_MANAGER_COMMON_ATTRS,
    { "mapSendOptions", SC_T_SENDOPTS, "6", 0, 0xFFFF, NULL, NULL },
    { "rpcTimeout", SC_T_INT, "15000", 1, INTMAX_, "ms", NULL },
    { "terminateOnStartFailure", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "accessTimeout", SC_T_INT, "5000", 1, INTMAX_, "ms", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def session_id_generator_attrs[] = {
    { "sessionIdLength", SC_T_INT, "16", 1, SID_BYTES_MAX, "bytes", NULL },
    { "jvmRoute", SC_T_STR, NULL, 0, 63, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- <Channel className="...GroupChannel"> ---- */
static const sc_attr_def group_channel_attrs[] = {
    { "heartbeat", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "heartbeatSleeptime", SC_T_INT, "5000", 1, INTMAX_, "ms", NULL },
    { "optionCheck", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- <Membership> ---- */
static const sc_attr_def mcast_service_attrs[] = {
    { "address", SC_T_MCAST, "228.0.0.4", 0, 0, NULL, "mcastAddr" },
    { "port", SC_T_INT, "45564", 1, PORT_MAX, NULL, "mcastPort" },
    { "frequency", SC_T_INT, "500", 1, 3600000, "ms", "mcastFrequency" },
    { "dropTime", SC_T_INT, "3000", 1, 86400000, "ms", "mcastDropTime" },
    { "bind", SC_T_ADDR, NULL, 0, 0, NULL, "mcastBindAddress" },
    { "ttl", SC_T_INT, NULL, 0, 255, NULL, "mcastTTL" },
    { "domain", SC_T_DOMAIN, NULL, 0, 0, NULL, "mcastClusterDomain" },
    { "soTimeout", SC_T_INT, "-1", -1, INTMAX_, "ms", "mcastSoTimeout" },
    { "recoveryEnabled", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "recoveryCounter", SC_T_INT, "10", 1, INTMAX_, NULL, NULL },
    { "recoverySleepTime", SC_T_INT, "5000", 1, INTMAX_, "ms", NULL },
    { "localLoopbackDisabled", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def static_membership_service_attrs[] = {
    { "connectTimeout", SC_T_INT, "500", 1, INTMAX_, "ms", NULL },
    { "expirationTime", SC_T_INT, "5000", 1, INTMAX_, "ms", NULL },
    { "rpcTimeout", SC_T_INT, "3000", 1, INTMAX_, "ms", NULL },
    { "useThread", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "pingInterval", SC_T_INT, "1000", 1, INTMAX_, "ms", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def cloud_membership_service_attrs[] = {
    { "membershipProviderClassName", SC_T_STR, "kubernetes", 1, 256, NULL, NULL },
    /* ours: the DNS name of the members (Tomcat reads the environment variable
     * DNS_MEMBERSHIP_SERVICE_NAME, which is used when this is unset) */
    { "dnsServiceName", SC_T_ADDR, NULL, 0, 0, NULL, NULL },
    { "refreshInterval", SC_T_INT, "1000", 100, 3600000, "ms", NULL },
    { "connectTimeout", SC_T_INT, "1000", 1, INTMAX_, "ms", NULL },
    { "readTimeout", SC_T_INT, "1000", 1, INTMAX_, "ms", NULL },
    { "expirationTime", SC_T_INT, "5000", 1, INTMAX_, "ms", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- <Receiver className="...NioReceiver"> ---- */
static const sc_attr_def nio_receiver_attrs[] = {
    { "address", SC_T_ADDR, "auto", 0, 0, NULL, "tcpListenAddress" },
    { "port", SC_T_INT, "4000", 1, PORT_MAX, NULL, "tcpListenPort" },
    /* Tomcat takes a value below 1 as 1 (the reader does the same) */
    { "autoBind", SC_T_INT, "100", INT_MIN, PORT_MAX, "ports", NULL },
    { "securePort", SC_T_INT, "-1", -1, PORT_MAX, NULL, NULL },
    { "udpPort", SC_T_INT, "-1", -1, PORT_MAX, NULL, NULL },
    { "selectorTimeout", SC_T_INT, "5000", 1, INTMAX_, "ms", "tcpSelectorTimeout" },
    { "maxThreads", SC_T_INT, "15", 1, 1024, NULL, "tcpThreadCount" },
    { "minThreads", SC_T_INT, "6", 1, 1024, NULL, NULL },
    { "maxIdleTime", SC_T_INT, "60000", 1, INTMAX_, "ms", NULL },
    { "rxBufSize", SC_T_INT, "65536", 1024, 67108864, "bytes", NULL },
    { "txBufSize", SC_T_INT, "25188", 1024, 67108864, "bytes", NULL },
    { "udpRxBufSize", SC_T_INT, "25188", 1024, 67108864, "bytes", NULL },
    { "udpTxBufSize", SC_T_INT, "65536", 1024, 67108864, "bytes", NULL },
    { "direct", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "ooBInline", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "soKeepAlive", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "soReuseAddress", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "soLingerOn", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "soLingerTime", SC_T_INT, "3", 0, 3600, "s", NULL },
    { "tcpNoDelay", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "timeout", SC_T_INT, "3000", 1, INTMAX_, "ms", NULL },
    { "useBufferPool", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    /* ours, not Tomcat's: the largest frame a member accepts */
    { "maxMessageSize", SC_T_INT, "16777216", 1024, 1073741824, "bytes", NULL },
    /* Tomcat 5.5 ReplicationListener: last port to try; mapped onto autoBind */
    { "tcpListenMaxPort", SC_T_INT, NULL, 1, PORT_MAX, NULL, "" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- <Sender className="...ReplicationTransmitter"> and
 *      <Transport className="...PooledParallelSender">.
 * Tomcat 8.5+ puts these on the Transport; Tomcat 5.5 put them on the Sender.
 * Both carry the same table and the reader folds the Sender's into the
 * Transport's (sc_config.c, finish_sender). */
static const sc_attr_def transport_attrs[] = {
    { "rxBufSize", SC_T_INT, "25188", 1024, 67108864, "bytes", NULL },
    { "txBufSize", SC_T_INT, "65536", 1024, 67108864, "bytes", NULL },
    { "udpRxBufSize", SC_T_INT, "25188", 1024, 67108864, "bytes", NULL },
    { "udpTxBufSize", SC_T_INT, "65536", 1024, 67108864, "bytes", NULL },
    { "directBuffer", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "keepAliveCount", SC_T_INT, "-1", -1, INTMAX_, NULL, "keepAliveMaxRequestCount" },
    { "keepAliveTime", SC_T_INT, "-1", -1, INTMAX_, "ms", "keepAliveTimeout" },
    { "timeout", SC_T_INT, "3000", 1, INTMAX_, "ms", "ackTimeout" },
    { "maxRetryAttempts", SC_T_INT, "1", 0, 100, NULL, NULL },
    { "soTrafficClass", SC_T_INT, "28", 0, 255, NULL, NULL },
    { "tcpNoDelay", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "soLingerOn", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "soLingerTime", SC_T_INT, "3", 0, 3600, "s", NULL },
    { "ooBInline", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "soKeepAlive", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "soReuseAddress", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "throwOnFailedAck", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "poolSize", SC_T_INT, "25", 1, 1024, NULL, "maxPoolSocketLimit" },
    { "maxWait", SC_T_INT, "3000", 0, INTMAX_, "ms", NULL },
    /* Tomcat 5.5 ReplicationTransmitter */
    { "replicationMode", SC_T_STR, NULL, 1, 32, NULL, "" },
    { "waitForAck", SC_T_BOOL, NULL, 0, 1, NULL, "" },
    { "autoConnect", SC_T_BOOL, "false", 0, 1, NULL, "" },
    { "resend", SC_T_BOOL, "false", 0, 1, NULL, "" },
    { "recoverTimeout", SC_T_INT, "5000", 0, INTMAX_, "ms", "" },
    { "recoverCounter", SC_T_INT, "0", 0, INTMAX_, NULL, "" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- <Interceptor> ---- */
#define SC_OPTION_FLAG(def) { "optionFlag", SC_T_INT, def, 0, INTMAX_, NULL, NULL }

static const sc_attr_def tcp_failure_detector_attrs[] = {
    SC_OPTION_FLAG("0"),
    { "connectTimeout", SC_T_INT, "1000", 1, INTMAX_, "ms", NULL },
    { "performSendTest", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "performReadTest", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "readTestTimeout", SC_T_INT, "5000", 1, INTMAX_, "ms", NULL },
    { "removeSuspectsTimeout", SC_T_INT, "300", -1, INTMAX_, "s", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def tcp_ping_attrs[] = {
    SC_OPTION_FLAG("0"),
    { "interval", SC_T_INT, "1000", 1, INTMAX_, "ms", NULL },
    { "useThread", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "staticOnly", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def message_dispatch_attrs[] = {
    SC_OPTION_FLAG("8"),
    { "alwaysSend", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "maxQueueSize", SC_T_INT, "67108864", 1024, INTMAX_, "bytes", NULL },
    { "maxThreads", SC_T_INT, "10", 1, 1024, NULL, NULL },
    { "maxSpareThreads", SC_T_INT, "2", 0, 1024, NULL, NULL },
    { "keepAliveTime", SC_T_INT, "5000", 0, INTMAX_, "ms", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def throughput_attrs[] = {
    SC_OPTION_FLAG("0"),
    { "interval", SC_T_INT, "10000", 1, INTMAX_, "messages", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def domain_filter_attrs[] = {
    SC_OPTION_FLAG("0"),
    { "domain", SC_T_DOMAIN, NULL, 0, 0, NULL, NULL },
    { "logInterval", SC_T_INT, "100", 1, INTMAX_, "messages", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def fragmentation_attrs[] = {
    SC_OPTION_FLAG("0"),
    { "expire", SC_T_INT, "60000", 1, INTMAX_, "ms", NULL },
    { "maxSize", SC_T_INT, "102400", 64, INTMAX_, "bytes", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def static_membership_attrs[] = {
    SC_OPTION_FLAG("0"),
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def encrypt_attrs[] = {
    SC_OPTION_FLAG("0"),
    { "encryptionAlgorithm", SC_T_STR, "AES/GCM/NoPadding", 1, 64, NULL, NULL },
    { "encryptionKey", SC_T_HEXKEY, NULL, 0, 0, NULL, NULL },
    { "previousEncryptionKey", SC_T_HEXKEY, NULL, 0, 0, NULL, NULL },
    { "providerName", SC_T_STR, NULL, 0, 64, NULL, NULL },
    { "replayWindowTime", SC_T_INT, "10000", 1, INTMAX_, "ms", NULL },
    { "replayWindowMessageCount", SC_T_INT, "8192", 1, INTMAX_, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def gzip_attrs[] = {
    SC_OPTION_FLAG("256"),
    { "compressionMinSize", SC_T_INT, "0", 0, INTMAX_, "bytes", NULL },
    { "statsEnabled", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "interval", SC_T_INT, "0", 0, INTMAX_, "ms", NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def order_attrs[] = {
    SC_OPTION_FLAG("0"),
    { "expire", SC_T_INT, "3000", 1, INTMAX_, "ms", NULL },
    { "maxQueue", SC_T_INT, "2147483647", 1, INTMAX_, NULL, NULL },
    { "forwardExpired", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def other_interceptor_attrs[] = {
    SC_OPTION_FLAG("0"),
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- <Member> / <LocalMember className="...StaticMember"> ---- */
static const sc_attr_def static_member_attrs[] = {
    { "host", SC_T_ADDR, NULL, 0, 0, NULL, NULL },
    { "port", SC_T_INT, NULL, 1, PORT_MAX, NULL, NULL },
    { "securePort", SC_T_INT, "-1", -1, PORT_MAX, NULL, NULL },
    { "udpPort", SC_T_INT, "-1", -1, PORT_MAX, NULL, NULL },
    { "domain", SC_T_DOMAIN, NULL, 0, 0, NULL, NULL },
    { "uniqueId", SC_T_UNIQUEID, NULL, 0, 0, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- <Valve> ---- */
static const sc_attr_def replication_valve_attrs[] = {
    { "filter", SC_T_REGEX, "", 0, 4096, NULL, NULL },
    { "primaryIndicator", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "primaryIndicatorName", SC_T_STR, "org.apache.catalina.ha.tcp.isPrimarySession",
      1, 256, NULL, NULL },
    { "statistics", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const sc_attr_def jvmroute_binder_valve_attrs[] = {
    { "enabled", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "sessionIdAttribute", SC_T_STR,
      /* Tomcat's own spelling (its documentation and code): applications
       * look the old id up under this name */
      "org.apache.catalina.ha.session.JvmRouteOrignalSessionID", 1, 256, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- msm's <Manager> (memcached-session-manager), written at server level,
 * outside <Cluster>: sc_msm.c reads it with these definitions and says which
 * act; a <Cluster> block never takes it (sc_class_lookup) ---- */
static const sc_attr_def msm_manager_attrs[] = {
    { "memcachedNodes", SC_T_STR, NULL, 1, 4096, NULL, NULL },
    { "failoverNodes", SC_T_STR, NULL, 0, 4096, NULL, NULL },
    { "sticky", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { "sessionBackupAsync", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "sessionBackupTimeout", SC_T_INT, "100", 1, 600000, "ms", NULL },
    { "operationTimeout", SC_T_INT, "1000", 1, 600000, "ms", NULL },
    { "requestUriIgnorePattern", SC_T_REGEX, NULL, 0, 4096, NULL, NULL },
    { "enabled", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    /* the member's idle limit when no <Cluster> block is written */
    { "maxInactiveInterval", SC_T_INT, "1800", -1, INTMAX_, "s", NULL },
    { "lockingMode", SC_T_STR, NULL, 0, 4096, NULL, NULL },
    { "backupThreadCount", SC_T_INT, NULL, 1, 1024, NULL, NULL },
    { "memcachedProtocol", SC_T_STR, "text", 0, 16, NULL, NULL },
    { "username", SC_T_STR, NULL, 0, 256, NULL, NULL },
    { "password", SC_T_STR, NULL, 0, 256, NULL, NULL },
    { "storageKeyPrefix", SC_T_STR, NULL, 0, 256, NULL, NULL },
    { "sessionAttributeFilter", SC_T_STR, NULL, 0, 4096, NULL, NULL },
    { "transcoderFactoryClass", SC_T_STR, NULL, 0, 256, NULL, NULL },
    { "copyCollectionsForSerialization", SC_T_BOOL, "false", 0, 1, NULL, NULL },
    { "customConverter", SC_T_STR, NULL, 0, 4096, NULL, NULL },
    { "enableStatistics", SC_T_BOOL, "true", 0, 1, NULL, NULL },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* Accepted and ignored elements keep their attributes as text, unchecked. */
static const sc_attr_def no_attrs[] = {
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const char *const a_receiver[] = { "ReplicationListener", "SocketReplicationListener",
                                          "BioReceiver", NULL };
static const char *const a_transport[] = { "MultipointBioSender", "PooledMultiSender",
                                           "ParallelNioSender", NULL };
static const char *const a_dispatch[] = { "MessageDispatch15Interceptor", NULL };
static const char *const a_none[] = { NULL };

static const sc_class_def classes[] = {
    { SC_C_SIMPLE_TCP_CLUSTER, SC_EL_CLUSTER, "SimpleTcpCluster",
      "org.apache.catalina.ha.tcp.SimpleTcpCluster", a_none, cluster_attrs, NULL },
    { SC_C_DELTA_MANAGER, SC_EL_MANAGER, "DeltaManager",
      "org.apache.catalina.ha.session.DeltaManager", a_none, delta_manager_attrs, NULL },
    { SC_C_BACKUP_MANAGER, SC_EL_MANAGER, "BackupManager",
      "org.apache.catalina.ha.session.BackupManager", a_none, backup_manager_attrs, NULL },
    { SC_C_SESSION_ID_GENERATOR, SC_EL_SESSIONIDGEN, "StandardSessionIdGenerator",
      "org.apache.catalina.util.StandardSessionIdGenerator", a_none,
      session_id_generator_attrs, NULL },
    { SC_C_GROUP_CHANNEL, SC_EL_CHANNEL, "GroupChannel",
      "org.apache.catalina.tribes.group.GroupChannel", a_none, group_channel_attrs, NULL },
    { SC_C_MCAST_SERVICE, SC_EL_MEMBERSHIP, "McastService",
      "org.apache.catalina.tribes.membership.McastService", a_none,
      mcast_service_attrs, NULL },
    { SC_C_STATIC_MEMBERSHIP_SERVICE, SC_EL_MEMBERSHIP, "StaticMembershipService",
      "org.apache.catalina.tribes.membership.StaticMembershipService", a_none,
      static_membership_service_attrs, NULL },
    { SC_C_CLOUD_MEMBERSHIP_SERVICE, SC_EL_MEMBERSHIP, "CloudMembershipService",
      "org.apache.catalina.tribes.membership.cloud.CloudMembershipService", a_none,
      cloud_membership_service_attrs, NULL },
    { SC_C_NIO_RECEIVER, SC_EL_RECEIVER, "NioReceiver",
      "org.apache.catalina.tribes.transport.nio.NioReceiver", a_receiver,
      nio_receiver_attrs, NULL },
    { SC_C_REPLICATION_TRANSMITTER, SC_EL_SENDER, "ReplicationTransmitter",
      "org.apache.catalina.tribes.transport.ReplicationTransmitter", a_none,
      transport_attrs, NULL },
    { SC_C_POOLED_PARALLEL_SENDER, SC_EL_TRANSPORT, "PooledParallelSender",
      "org.apache.catalina.tribes.transport.nio.PooledParallelSender", a_transport,
      transport_attrs, NULL },
    { SC_C_TCP_FAILURE_DETECTOR, SC_EL_INTERCEPTOR, "TcpFailureDetector",
      "org.apache.catalina.tribes.group.interceptors.TcpFailureDetector", a_none,
      tcp_failure_detector_attrs, NULL },
    { SC_C_TCP_PING, SC_EL_INTERCEPTOR, "TcpPingInterceptor",
      "org.apache.catalina.tribes.group.interceptors.TcpPingInterceptor", a_none,
      tcp_ping_attrs, NULL },
    { SC_C_MESSAGE_DISPATCH, SC_EL_INTERCEPTOR, "MessageDispatchInterceptor",
      "org.apache.catalina.tribes.group.interceptors.MessageDispatchInterceptor",
      a_dispatch, message_dispatch_attrs, NULL },
    { SC_C_THROUGHPUT, SC_EL_INTERCEPTOR, "ThroughputInterceptor",
      "org.apache.catalina.tribes.group.interceptors.ThroughputInterceptor", a_none,
      throughput_attrs, NULL },
    { SC_C_DOMAIN_FILTER, SC_EL_INTERCEPTOR, "DomainFilterInterceptor",
      "org.apache.catalina.tribes.group.interceptors.DomainFilterInterceptor", a_none,
      domain_filter_attrs, NULL },
    { SC_C_FRAGMENTATION, SC_EL_INTERCEPTOR, "FragmentationInterceptor",
      "org.apache.catalina.tribes.group.interceptors.FragmentationInterceptor", a_none,
      fragmentation_attrs, NULL },
    { SC_C_STATIC_MEMBERSHIP, SC_EL_INTERCEPTOR, "StaticMembershipInterceptor",
      "org.apache.catalina.tribes.group.interceptors.StaticMembershipInterceptor", a_none,
      static_membership_attrs, NULL },
    { SC_C_ENCRYPT, SC_EL_INTERCEPTOR, "EncryptInterceptor",
      "org.apache.catalina.tribes.group.interceptors.EncryptInterceptor", a_none,
      encrypt_attrs, NULL },
    { SC_C_GZIP, SC_EL_INTERCEPTOR, "GzipInterceptor",
      "org.apache.catalina.tribes.group.interceptors.GzipInterceptor", a_none,
      gzip_attrs, NULL },
    { SC_C_ORDER, SC_EL_INTERCEPTOR, "OrderInterceptor",
      "org.apache.catalina.tribes.group.interceptors.OrderInterceptor", a_none,
      order_attrs, NULL },
    { SC_C_OTHER_INTERCEPTOR, SC_EL_INTERCEPTOR, "NonBlockingCoordinator",
      "org.apache.catalina.tribes.group.interceptors.NonBlockingCoordinator", a_none,
      other_interceptor_attrs, "coordinator election has no use in httpd" },
    { SC_C_OTHER_INTERCEPTOR, SC_EL_INTERCEPTOR, "SimpleCoordinator",
      "org.apache.catalina.tribes.group.interceptors.SimpleCoordinator", a_none,
      other_interceptor_attrs, "coordinator election has no use in httpd" },
    { SC_C_OTHER_INTERCEPTOR, SC_EL_INTERCEPTOR, "TwoPhaseCommitInterceptor",
      "org.apache.catalina.tribes.group.interceptors.TwoPhaseCommitInterceptor", a_none,
      other_interceptor_attrs, "two-phase commit of Tribes messages has no use here" },
    { SC_C_STATIC_MEMBER, SC_EL_MEMBER, "StaticMember",
      "org.apache.catalina.tribes.membership.StaticMember", a_none,
      static_member_attrs, NULL },
    { SC_C_STATIC_MEMBER, SC_EL_LOCALMEMBER, "StaticMember",
      "org.apache.catalina.tribes.membership.StaticMember", a_none,
      static_member_attrs, NULL },
    { SC_C_REPLICATION_VALVE, SC_EL_VALVE, "ReplicationValve",
      "org.apache.catalina.ha.tcp.ReplicationValve", a_none,
      replication_valve_attrs, NULL },
    { SC_C_JVMROUTE_BINDER_VALVE, SC_EL_VALVE, "JvmRouteBinderValve",
      "org.apache.catalina.ha.session.JvmRouteBinderValve", a_none,
      jvmroute_binder_valve_attrs, NULL },
    { SC_C_CLUSTER_SSO_VALVE, SC_EL_VALVE, "ClusterSingleSignOn",
      "org.apache.catalina.ha.authenticator.ClusterSingleSignOn", a_none, no_attrs,
      "httpd has no single sign-on valve to replicate" },
    { SC_C_FARM_WAR_DEPLOYER, SC_EL_DEPLOYER, "FarmWarDeployer",
      "org.apache.catalina.ha.deploy.FarmWarDeployer", a_none, no_attrs,
      "httpd deploys no WAR files" },
    { SC_C_CLUSTER_SESSION_LISTENER, SC_EL_LISTENER, "ClusterSessionListener",
      "org.apache.catalina.ha.session.ClusterSessionListener", a_none, no_attrs, NULL },
    { SC_C_JVMROUTE_ID_BINDER_LISTENER, SC_EL_LISTENER, "JvmRouteSessionIDBinderListener",
      "org.apache.catalina.ha.session.JvmRouteSessionIDBinderListener", a_none, no_attrs,
      NULL },
    { SC_C_MSM_MANAGER, SC_EL_MANAGER, "MemcachedBackupSessionManager",
      "de.javakaffee.web.msm.MemcachedBackupSessionManager", a_none, msm_manager_attrs,
      NULL },
    { SC_C_NONE, SC_EL_COUNT, NULL, NULL, NULL, NULL, NULL }
};

static const char *const kind_names[SC_EL_COUNT] = {
    "Cluster", "Manager", "SessionIdGenerator", "Channel", "Membership", "Receiver",
    "Sender", "Transport", "Interceptor", "Member", "LocalMember", "Valve", "Deployer",
    "ClusterListener"
};

/* The element each element must sit in (SC_EL_COUNT: directly in <Cluster>, or
 * anywhere for <Member>, which may sit in a StaticMembershipInterceptor or in a
 * <Membership className="...StaticMembershipService">). */
static const sc_elem_kind parents[SC_EL_COUNT] = {
    SC_EL_COUNT,       /* Cluster: the root */
    SC_EL_CLUSTER,     /* Manager */
    SC_EL_MANAGER,     /* SessionIdGenerator */
    SC_EL_CLUSTER,     /* Channel */
    SC_EL_CHANNEL,     /* Membership */
    SC_EL_CHANNEL,     /* Receiver */
    SC_EL_CHANNEL,     /* Sender */
    SC_EL_SENDER,      /* Transport */
    SC_EL_CHANNEL,     /* Interceptor */
    SC_EL_COUNT,       /* Member: checked by the reader */
    SC_EL_COUNT,       /* LocalMember: checked by the reader */
    SC_EL_CLUSTER,     /* Valve */
    SC_EL_CLUSTER,     /* Deployer */
    SC_EL_CLUSTER      /* ClusterListener */
};

const char *sc_elem_kind_name(sc_elem_kind kind)
{
    return kind < SC_EL_COUNT ? kind_names[kind] : "?";
}

sc_elem_kind sc_default_parent(sc_elem_kind kind)
{
    return kind < SC_EL_COUNT ? parents[kind] : SC_EL_COUNT;
}

int sc_elem_kind_from_tag(const char *tag, sc_elem_kind *kind)
{
    int i;
    for (i = 0; i < SC_EL_COUNT; i++) {
        if (strcmp(tag, kind_names[i]) == 0) {
            *kind = (sc_elem_kind)i;
            return 1;
        }
    }
    return 0;
}

/* A class name matches a catalogue entry when its last component is the entry's
 * short name (or an alias) and it lives in Tomcat's packages: 8.5+
 * (org.apache.catalina.ha / .tribes), 5.5 (org.apache.catalina.cluster) and the
 * misspelt "org.apache.catalina.tcp." of the 5.5 documents. */
const sc_class_def *sc_class_lookup(sc_elem_kind kind, const char *class_name,
                                    int *legacy)
{
    const char *dot = strrchr(class_name, '.');
    const char *short_name = dot ? dot + 1 : class_name;
    int i, j;

    if (legacy) {
        *legacy = strncmp(class_name, "org.apache.catalina.cluster.", 28) == 0;
    }
    if (dot && strncmp(class_name, "org.apache.catalina.", 20) != 0) {
        return NULL;
    }
    for (i = 0; classes[i].short_name; i++) {
        if (classes[i].kind != kind || classes[i].id == SC_C_MSM_MANAGER) {
            continue;                 /* msm's <Manager> is not a <Cluster> class */
        }
        if (strcmp(classes[i].short_name, short_name) == 0) {
            return &classes[i];
        }
        for (j = 0; classes[i].aliases[j]; j++) {
            if (strcmp(classes[i].aliases[j], short_name) == 0) {
                return &classes[i];
            }
        }
    }
    return NULL;
}

const sc_class_def *sc_class_by_id(sc_class_id id)
{
    int i;
    for (i = 0; classes[i].short_name; i++) {
        if (classes[i].id == id) {
            return &classes[i];
        }
    }
    return NULL;
}

int sc_attr_index(const sc_class_def *cls, const char *name, int *legacy)
{
    int i;
    for (i = 0; cls->attrs[i].name; i++) {
        if (strcmp(cls->attrs[i].name, name) == 0) {
            if (legacy) {
                *legacy = 0;
            }
            return i;
        }
        if (cls->attrs[i].legacy && strcmp(cls->attrs[i].legacy, name) == 0) {
            if (legacy) {
                *legacy = 1;
            }
            return i;
        }
    }
    return -1;
}

/* Attributes Tomcat users write that mean nothing in httpd: JMX registration,
 * Java statistics and queue tuning of Tomcat 5.5, the cluster log. */
static const struct {
    const char *name;
    const char *reason;
} ignored_attrs[] = {
    { "jmxEnabled", "there is no JMX in httpd; see the cluster-manager page" },
    { "jmxDomain", "there is no JMX in httpd; see the cluster-manager page" },
    { "jmxPrefix", "there is no JMX in httpd; see the cluster-manager page" },
    { "doClusterLog", "cluster messages go to httpd's ErrorLog" },
    { "clusterLogName", "cluster messages go to httpd's ErrorLog" },
    { "doTransmitterProcessingStats", "statistics are always kept" },
    { "doProcessingStats", "statistics are always kept" },
    { "doWaitAckStats", "statistics are always kept" },
    { "queueDoStats", "statistics are always kept" },
    { "queueCheckLock", "Java queue tuning has no equivalent" },
    { "queueTimeWait", "Java queue tuning has no equivalent" },
    { "queueAddWaitTimeout", "Java queue tuning has no equivalent" },
    { "queueRemoveWaitTimeout", "Java queue tuning has no equivalent" },
    { "maxQueueLength", "Java queue tuning has no equivalent" },
    { "threadPriority", "Java thread priorities have no equivalent" },
    { "processSenderFrequency", "senders are checked by the engine" },
    { "compress", "use GzipInterceptor" },
    { "useDirtyFlag", "sessions are replicated when their attributes change" },
    { NULL, NULL }
};

const char *sc_attr_ignored_reason(const char *name)
{
    int i;
    for (i = 0; ignored_attrs[i].name; i++) {
        if (strcmp(ignored_attrs[i].name, name) == 0) {
            return ignored_attrs[i].reason;
        }
    }
    return NULL;
}

/* Why attributes of the interceptors the engine runs change nothing here
 * (SC_C_NONE: every such interceptor).  Whether an attribute acts is not
 * decided here but by the reader (sc_config.c: what it takes into the typed
 * settings); a reason is shown only for an attribute that indeed does not
 * act: under "# ignored:" in the dump and on the page when a block writes it
 * (the startup warning SC1413 names it with the others). */
static const struct {
    sc_class_id cls;
    const char *name;
    const char *reason;
} no_effect_attrs[] = {
    { SC_C_NONE, "optionFlag",
      "the interceptors here are not a stack of message filters: each acts on all "
      "the traffic it concerns" },
    { SC_C_TCP_FAILURE_DETECTOR, "performSendTest",
      "the check of a suspect always sends a PING over TCP and waits for its answer" },
    { SC_C_TCP_FAILURE_DETECTOR, "readTestTimeout",
      "it acts with performReadTest=\"true\" only: without it the check of a suspect "
      "waits connectTimeout for its answer" },
    { SC_C_TCP_FAILURE_DETECTOR, "removeSuspectsTimeout",
      "the check declares a suspect dead or alive; none stays suspect" },
    { SC_C_TCP_PING, "useThread",
      "the engine's own loop sends the pings every interval, as Tomcat's ping thread "
      "(useThread=true) does" },
    { SC_C_TCP_PING, "staticOnly",
      "every connected member gets the pings: they carry this member's heartbeat" },
    { SC_C_MESSAGE_DISPATCH, "alwaysSend",
      "the engine queues every message per connection, with or without this "
      "interceptor" },
    { SC_C_MESSAGE_DISPATCH, "maxQueueSize",
      "the engine queues every message per connection, with or without this "
      "interceptor" },
    { SC_C_MESSAGE_DISPATCH, "maxThreads",
      "the engine sends from its own loop; there are no sender threads" },
    { SC_C_MESSAGE_DISPATCH, "maxSpareThreads",
      "the engine sends from its own loop; there are no sender threads" },
    { SC_C_MESSAGE_DISPATCH, "keepAliveTime",
      "the engine sends from its own loop; there are no sender threads" },
    { SC_C_DOMAIN_FILTER, "logInterval",
      "heartbeats of other domains are counted on the page (DomainFiltered), not "
      "logged" },
    { SC_C_ENCRYPT, "providerName", "OpenSSL's AES-GCM is always used" },
    { SC_C_ENCRYPT, "replayWindowTime",
      "replays are refused by sequence numbers per sender and connection, without "
      "a window" },
    { SC_C_ENCRYPT, "replayWindowMessageCount",
      "replays are refused by sequence numbers per sender and connection, without "
      "a window" },
    { SC_C_NONE, NULL, NULL }
};

int sc_interceptor_runs(int id)
{
    switch (id) {
    case SC_C_TCP_FAILURE_DETECTOR:
    case SC_C_TCP_PING:
    case SC_C_MESSAGE_DISPATCH:
    case SC_C_THROUGHPUT:
    case SC_C_DOMAIN_FILTER:
    case SC_C_STATIC_MEMBERSHIP:
    case SC_C_ENCRYPT:
        return 1;
    default:
        return 0;
    }
}

const char *sc_attr_no_effect(const sc_class_def *cls, const char *name)
{
    int i;
    if (cls->kind != SC_EL_INTERCEPTOR || cls->ignored_reason
        || !sc_interceptor_runs(cls->id)) {
        return NULL;          /* not run at all: reported as such */
    }
    for (i = 0; no_effect_attrs[i].name; i++) {
        if ((no_effect_attrs[i].cls == SC_C_NONE || no_effect_attrs[i].cls == cls->id)
            && !strcmp(no_effect_attrs[i].name, name)) {
            return no_effect_attrs[i].reason;
        }
    }
    return NULL;
}

const char *sc_class_caveat(const sc_class_def *cls)
{
    (void)cls;                        /* none at present */
    return NULL;
}

const char *sc_class_note(const sc_class_def *cls)
{
    if (cls && cls->id == SC_C_BACKUP_MANAGER) {
        return "one backup per session, chosen round robin over the ready members "
               "sorted by route, starting after this member's route (joins do not move "
               "existing backups); accessTimeout: how long a fetch waits for one "
               "member before it asks the next";
    }
    return NULL;
}
