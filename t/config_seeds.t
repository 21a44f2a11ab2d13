# Every seed's <Cluster> block, pasted verbatim, passes `httpd -t` and means
# what Tomcat would make of it: checked line by line in -D DUMP_CLUSTER.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SC::ConfTest qw(httpd_t fixture);

# setting($dump, 'Membership.port') -> value, without the "# origin" comment
sub setting {
    my ($dump, $key) = @_;
    return $dump =~ /^\Q$key\E = (.*?)(?:  # (.*))?$/m ? $1 : undef;
}
sub origin {
    my ($dump, $key) = @_;
    return $dump =~ /^\Q$key\E = .*?  # (.*)$/m ? $1 : undef;
}

# fixture => [ [key, value] ... ], plus optional stderr expectations
my @cases = (
    [ 'seed002-default.conf', [
        [ 'Cluster.className', 'org.apache.catalina.ha.tcp.SimpleTcpCluster' ],
        [ 'Cluster.channelSendOptions', '8 (asynchronous)' ],
        [ 'Manager.className', 'org.apache.catalina.ha.session.DeltaManager' ],
        [ 'Manager.expireSessionsOnShutdown', 'false' ],
        [ 'Manager.notifyListenersOnReplication', 'true' ],
        [ 'Manager.stateTransferTimeout', '60' ],
        [ 'Manager.sendAllSessionsSize', '1000' ],
        [ 'Channel.className', 'org.apache.catalina.tribes.group.GroupChannel' ],
        [ 'Membership.className', 'org.apache.catalina.tribes.membership.McastService' ],
        [ 'Membership.address', '228.0.0.4' ],
        [ 'Membership.port', '45564' ],
        [ 'Membership.frequency', '500' ],
        [ 'Membership.dropTime', '3000' ],
        [ 'Receiver.address', 'auto' ],
        [ 'Receiver.port', '4000' ],
        [ 'Receiver.autoBind', '100' ],
        [ 'Receiver.selectorTimeout', '5000' ],
        [ 'Receiver.maxThreads', '6' ],
        [ 'Receiver.minThreads', '6' ],
        [ 'Sender.className', 'org.apache.catalina.tribes.transport.ReplicationTransmitter' ],
        [ 'Transport.className', 'org.apache.catalina.tribes.transport.nio.PooledParallelSender' ],
        [ 'Transport.timeout', '3000' ],
        [ 'Transport.maxRetryAttempts', '1' ],
        [ 'Transport.poolSize', '25' ],
        [ 'Transport.keepAliveCount', '-1' ],
        [ 'Interceptor.1.className', 'org.apache.catalina.tribes.group.interceptors.TcpFailureDetector' ],
        [ 'Interceptor.1.connectTimeout', '1000' ],
        [ 'Interceptor.2.className', 'org.apache.catalina.tribes.group.interceptors.MessageDispatchInterceptor' ],
        [ 'Interceptor.2.optionFlag', '8' ],
        [ 'Valve.1.className', 'org.apache.catalina.ha.tcp.ReplicationValve' ],
        [ 'Valve.1.filter', '(none)' ],
        [ 'Valve.2.className', 'org.apache.catalina.ha.session.JvmRouteBinderValve' ],
        [ 'Valve.2.enabled', 'true' ],
        [ 'ClusterListener.1.className', 'org.apache.catalina.ha.session.ClusterSessionListener' ],
      ], { origins => [ [ 'Membership.dropTime', qr/^ms, set in the block$/ ],
                        [ 'Transport.timeout', qr/^ms, default$/ ] ],
           warn_once => [ qr/SC1001: <Deployer className="org\.apache\.catalina\.ha\.deploy\.FarmWarDeployer"> is ignored: httpd deploys no WAR files \(\S+:33\)/ ] } ],
    [ 'seed002-backup.conf', [
        [ 'Cluster.channelSendOptions', '6 (use_ack,synchronized_ack)' ],
        # the commented-out DeltaManager stays a comment
        [ 'Manager.className', 'org.apache.catalina.ha.session.BackupManager' ],
        [ 'Manager.mapSendOptions', '6 (use_ack,synchronized_ack)' ],
        [ 'Manager.rpcTimeout', '15000' ],
        [ 'Manager.accessTimeout', '5000' ],
        [ 'Receiver.port', '5000' ],
        [ 'Receiver.selectorTimeout', '100' ],
        [ 'Receiver.autoBind', '100' ],
        [ 'Interceptor.3.className', 'org.apache.catalina.tribes.group.interceptors.ThroughputInterceptor' ],
        [ 'Interceptor.3.interval', '10000' ],
        [ 'Valve.1.filter', '.*\.gif|.*\.js|.*\.jpeg|.*\.jpg|.*\.png|.*\.htm|.*\.html|.*\.css|.*\.txt' ],
      ] ],
    [ 'seed001-default.conf', [
        [ 'Cluster.channelSendOptions', '8 (asynchronous)' ],
        # Tomcat 8's MessageDispatch15Interceptor is the same interceptor
        [ 'Interceptor.2.className', 'org.apache.catalina.tribes.group.interceptors.MessageDispatch15Interceptor' ],
        [ 'Interceptor.2.optionFlag', '8' ],
        [ 'Interceptor.2.maxQueueSize', '67108864' ],
        [ 'Receiver.port', '4000' ],
      ] ],
    [ 'seed001-backup.conf', [
        [ 'Manager.className', 'org.apache.catalina.ha.session.BackupManager' ],
        [ 'Receiver.port', '5000' ],
        [ 'Interceptor.3.className', 'org.apache.catalina.tribes.group.interceptors.ThroughputInterceptor' ],
      ] ],
    [ 'seed003.conf', [
        [ 'Manager.className', 'org.apache.catalina.ha.session.DeltaManager' ],
        [ 'Membership.frequency', '500' ],
        [ 'ClusterListener.1.className', 'org.apache.catalina.ha.session.JvmRouteSessionIDBinderListener' ],
        [ 'ClusterListener.2.className', 'org.apache.catalina.ha.session.ClusterSessionListener' ],
      ] ],
    # Tomcat 5.5: the one-line default mode
    [ 'seed000-oneline.conf', [
        [ 'Cluster.channelSendOptions', '8 (asynchronous)' ],
        [ 'Manager.className', 'org.apache.catalina.ha.session.DeltaManager' ],
        [ 'Membership.address', '228.0.0.4' ],
        [ 'Membership.port', '8012' ],
        [ 'Membership.frequency', '1000' ],
        [ 'Membership.dropTime', '30000' ],
        [ 'Receiver.port', '8015' ],
        [ 'Receiver.autoBind', '5' ],
        [ 'Valve.1.className', 'org.apache.catalina.ha.session.JvmRouteBinderValve' ],
        [ 'Valve.2.className', 'org.apache.catalina.ha.tcp.ReplicationValve' ],
        [ 'Interceptor.1.className', 'org.apache.catalina.tribes.group.interceptors.MessageDispatchInterceptor' ],
        [ 'Interceptor.2.className', 'org.apache.catalina.tribes.group.interceptors.TcpFailureDetector' ],
        [ 'ClusterListener.1.className', 'org.apache.catalina.ha.session.ClusterSessionListener' ],
      ], { origins => [ [ 'Cluster.channelSendOptions', qr/^derived$/ ] ],
           dump_like => [ qr/^# <Cluster> block at \S+:2 \(Tomcat 5\.5 syntax, mapped\)$/m ] } ],
    [ 'seed000-laptop.conf', [
        [ 'Membership.bind', '127.0.0.1' ],
        [ 'Receiver.port', '9070' ],
        [ 'Receiver.autoBind', '6' ],
      ], { origins => [ [ 'Membership.bind', qr/^set by a prefixed attribute on <Cluster>$/ ],
                        [ 'Receiver.autoBind', qr/derived/ ] ] } ],
    [ 'seed000-complex.conf', [
        [ 'Cluster.channelSendOptions', '10 (use_ack,asynchronous)' ],
        [ 'Manager.className', 'org.apache.catalina.cluster.session.DeltaManager' ],
        [ 'Manager.notifyListenersOnReplication', 'false' ],
        [ 'Manager.notifySessionListenersOnReplication', 'false' ],
        [ 'Manager.sendAllSessions', 'false' ],
        [ 'Manager.sendAllSessionsSize', '500' ],
        [ 'Manager.sendAllSessionsWaitTime', '20' ],
        [ 'Membership.address', '228.0.0.4' ],
        [ 'Membership.bind', '127.0.0.1' ],
        [ 'Membership.domain', 'd10' ],
        [ 'Membership.port', '45564' ],
        [ 'Membership.frequency', '1000' ],
        [ 'Membership.dropTime', '30000' ],
        [ 'Receiver.address', 'auto' ],
        [ 'Receiver.port', '9015' ],
        [ 'Receiver.selectorTimeout', '100' ],
        [ 'Receiver.maxThreads', '6' ],
        [ 'Transport.timeout', '15000' ],
        [ 'Transport.keepAliveTime', '80000' ],
        [ 'Transport.keepAliveCount', '-1' ],
        [ 'Transport.replicationMode', 'fastasyncqueue' ],
        [ 'Valve.1.filter', '.*\.gif|.*\.js|.*\.css|.*\.png|.*\.jpeg|.*\.jpg|.*\.htm|.*\.html|.*\.txt' ],
        [ 'Valve.1.primaryIndicator', 'true' ],
        [ 'ClusterListener.2.className', 'org.apache.catalina.cluster.session.JvmRouteSessionIDBinderListener' ],
      ], { origins => [ [ 'Membership.port', qr/^set as Tomcat 5\.5 mcastPort$/ ],
                        [ 'Receiver.maxThreads', qr/^no effect \(written as Tomcat 5\.5 tcpThreadCount\)$/ ],
                        [ 'Transport.timeout', qr/^ms, set as Tomcat 5\.5 ackTimeout$/ ] ],
           warn_once => [ qr/SC1413: \d+ attributes written in the <Cluster> block have no effect in httpd: .*SimpleTcpCluster\.doClusterLog \(line 4\)/,
                          qr/SC1413: .*ReplicationTransmitter\.queueCheckLock \(line 7\)/,
                          qr/SC1001: <Deployer className="org\.apache\.catalina\.cluster\.deploy\.FarmWarDeployer"> is ignored/ ] } ],
    [ 'seed000-failover.conf', [
        [ 'Valve.1.className', 'org.apache.catalina.cluster.tcp.ReplicationValve' ],
        [ 'Valve.1.filter', '.*\.gif|.*\.js|.*\.css|.*\.png|.*\.jpeg|.*\.jpg|.*\.htm|.*\.html|.*\.txt' ],
        [ 'Valve.2.className', 'org.apache.catalina.cluster.session.JvmRouteBinderValve' ],
        [ 'ClusterListener.1.className', 'org.apache.catalina.cluster.session.ClusterSessionListener' ],
        [ 'Receiver.port', '9070' ],
        [ 'Receiver.autoBind', '6' ],
      ] ],
    [ 'seed000-deltamanager.conf', [
        [ 'Manager.className', 'org.apache.catalina.cluster.session.DeltaManager' ],
        [ 'Manager.stateTransferTimeout', '120' ],
        [ 'Manager.sendAllSessions', 'false' ],
        [ 'Manager.sendAllSessionsSize', '100' ],
        [ 'Manager.sendAllSessionsWaitTime', '5000' ],
      ] ],
    [ 'static-interceptor.conf', [
        [ 'Cluster.channelSendOptions', '6 (use_ack,synchronized_ack)' ],
        [ 'Receiver.address', '127.0.0.1' ],
        [ 'Receiver.port', '4100' ],                 # ${SC_PORT} from Define
        [ 'Receiver.autoBind', '1' ],
        [ 'Interceptor.1.className', 'org.apache.catalina.tribes.group.interceptors.TcpPingInterceptor' ],
        [ 'Interceptor.1.interval', '1000' ],
        [ 'Interceptor.3.className', 'org.apache.catalina.tribes.group.interceptors.StaticMembershipInterceptor' ],
        [ 'Member.1.host', '127.0.0.1' ],
        [ 'Member.1.port', '4001' ],
        [ 'Member.1.domain', 'staging-cluster' ],
        [ 'Member.1.uniqueId', '{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,1}' ],
        [ 'Member.2.host', '127.0.0.1' ],             # written as {127,0,0,1}
        [ 'Member.2.port', '4002' ],
        [ 'Membership.className', 'org.apache.catalina.tribes.membership.McastService' ],
      ], { defines => [ 'SC_PORT 4100' ] } ],
    [ 'static-service.conf', [
        [ 'Membership.className', 'org.apache.catalina.tribes.membership.StaticMembershipService' ],
        [ 'Membership.pingInterval', '750' ],
        [ 'Membership.connectTimeout', '500' ],
        [ 'Membership.expirationTime', '5000' ],
        [ 'LocalMember.domain', 'prod' ],
        [ 'LocalMember.uniqueId', '{1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}' ],
        [ 'Member.1.host', '10.200.0.2' ],
        [ 'Member.1.port', '4000' ],
      ] ],
);

my $n = 0;
$n += 3 + @{ $_->[1] } + @{ ($_->[2] || {})->{origins} || [] }
      + @{ ($_->[2] || {})->{warn_once} || [] }
      + @{ ($_->[2] || {})->{dump_like} || [] } for @cases;
plan tests => $n + 10;

for my $case (@cases) {
    my ($fx, $expect, $opt) = @$case;
    $opt ||= {};
    my $r = httpd_t(fixture($fx), args => [ '-D', 'DUMP_CLUSTER' ],
                    defines => $opt->{defines});
    is($r->{status}, 0, "$fx: httpd -t accepts it") or diag($r->{err});
    like($r->{err}, qr/Syntax OK/, "$fx: Syntax OK");
    unlike($r->{err}, qr/\[session_cluster:(?:error|emerg)/, "$fx: no errors logged");
    for my $kv (@$expect) {
        is(setting($r->{out}, $kv->[0]), $kv->[1], "$fx: $kv->[0] = $kv->[1]");
    }
    for my $o (@{ $opt->{origins} || [] }) {
        like(origin($r->{out}, $o->[0]) // '', $o->[1], "$fx: origin of $o->[0]");
    }
    for my $w (@{ $opt->{warn_once} || [] }) {
        my @hits = $r->{err} =~ /$w/g;
        is(scalar @hits, 1, "$fx: warned exactly once: $w");
    }
    for my $d (@{ $opt->{dump_like} || [] }) {
        like($r->{out}, $d, "$fx: dump matches $d");
    }
}

# The dump also tells about the module's own directives.
{
    my $text = fixture('seed002-default.conf') . <<'EOF';
<Location /app>
    SessionCluster On
    SessionClusterCookieName JSESSIONID path=/app;HttpOnly
</Location>
EOF
    my $r = httpd_t($text, args => [ '-D', 'DUMP_CLUSTER' ], route => 'node-7_a');
    is($r->{status}, 0, 'member with a location: accepted') or diag($r->{err});
    is(setting($r->{out}, 'SessionClusterRoute'), 'node-7_a', 'route in the dump');
    like($r->{out}, qr{^Location /app: SessionCluster On  # \S+:\d+$}m, 'SessionCluster On in the dump');
    like($r->{out}, qr{^Location /app: SessionClusterCookieName JSESSIONID path=/app;HttpOnly  #}m,
         'cookie name in the dump');
}

# A front balancer: SessionClusterBalancer instead of a route.
{
    my $r = httpd_t(fixture('seed002-default.conf') . "SessionClusterBalancer balancer://TCsrvs\n",
                    route => undef, args => [ '-D', 'DUMP_CLUSTER' ],
                    modules_before => [qw(proxy proxy_balancer slotmem_shm)]);
    is($r->{status}, 0, 'front balancer: accepted') or diag($r->{err});
    is(setting($r->{out}, 'SessionClusterBalancer'), 'balancer://tcsrvs', 'balancer in the dump');

    # without mod_proxy loaded first, httpd -t says what is missing
    $r = httpd_t(fixture('seed002-default.conf') . "SessionClusterBalancer balancer://TCsrvs\n",
                 route => undef);
    isnt($r->{status}, 0, 'front balancer without mod_proxy: refused');
    like($r->{err}, qr/SC1113: SessionClusterBalancer balancer:\/\/tcsrvs at \S+ needs mod_proxy, loaded before mod_session_cluster/,
         '... saying that mod_proxy must be loaded first');
    $r = httpd_t(fixture('seed002-default.conf') . "SessionClusterBalancer balancer://TCsrvs\n",
                 route => undef, modules_before => ['proxy']);
    isnt($r->{status}, 0, 'front balancer with mod_proxy but without mod_proxy_balancer: refused');
    like($r->{err}, qr/SC1113: .* needs mod_proxy_balancer/, '... saying that mod_proxy_balancer must be loaded first');
}
