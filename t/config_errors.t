# Bad configuration fails `httpd -t` with the file, the line inside it and the
# reason; things that mean nothing in httpd are warnings that name them once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SC::ConfTest qw(httpd_t fixture);

my $CL = 'className="org.apache.catalina.ha.tcp.SimpleTcpCluster"';
my $MC = 'className="org.apache.catalina.tribes.membership.McastService"';

# [ name, text, line of the error in cluster.conf, regex ]
my @errors = (
    [ 'malformed XML (unquoted attribute)', <<"X", 3, qr/malformed XML in the <Cluster> block: .*AttValue/ ],
<Cluster $CL>
  <Manager className="org.apache.catalina.ha.session.DeltaManager"/>
  <Channel className=org.apache.catalina.tribes.group.GroupChannel/>
</Cluster>
X
    [ 'malformed XML (mismatched tags)', <<"X", 4, qr/malformed XML.*Opening and ending tag mismatch: Sender line 3 and Channel/ ],
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">
  </Channel>
  </Sender>
</Cluster>
X
    [ 'unclosed block', <<"X", 1, qr/<Cluster> has no matching <\/Cluster> before the end of the file/ ],
<Cluster $CL>
  <Manager className="org.apache.catalina.ha.session.DeltaManager"/>
X
    [ 'stray quote (seed 000)', <<"X", 1, qr/no matching <\/Cluster>.*the quote opened at line 1 is never closed/ ],
<Cluster className="org.apache.catalina.tcp.SimpleTcpCluster" managerClassName="org.apache.catalina.cluster.session.DeltaManager" manager.stateTransferTimeout="120" "/>
X
    [ '<Cluster/> as a closing tag (seed 000)', <<"X", 4, qr/<Cluster\/> does not close the block opened at line 1.*write <\/Cluster>/ ],
<Cluster className="org.apache.catalina.cluster.tcp.SimpleTcpCluster" service.mcastBindAddress="127.0.0.1" >
<ClusterListener className="org.apache.catalina.cluster.session.ClusterSessionListener" />
<Valve className="org.apache.catalina.cluster.session.JvmRouteBinderValve" enabled="true" />
<Cluster/>
X
    [ 'two Cluster blocks', <<"X", 2, qr/a second <Cluster> block \(the first is at \S+cluster\.conf:1\)/ ],
<Cluster $CL/>
<Cluster $CL/>
X
    [ 'port out of range', <<"X", 5, qr/McastService port="99999": 99999 is out of range \(1-65535\)/ ],
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Membership $MC
                address="228.0.0.4"
                port="99999"
                frequency="500"/>
  </Channel>
</Cluster>
X
    [ 'non-numeric frequency', <<"X", 3, qr/McastService frequency="abc": 'abc' is not a number/ ],
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Membership $MC frequency="abc"/>
  </Channel>
</Cluster>
X
    [ 'address that is not multicast', <<"X", 4, qr/McastService address="10\.0\.0\.1": '10\.0\.0\.1' is not a multicast address/ ],
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Membership $MC
        address="10.0.0.1"/>
  </Channel>
</Cluster>
X
    [ 'unknown Manager class', <<"X", 2, qr/unknown Manager class 'com\.example\.StickyManager'/ ],
<Cluster $CL>
  <Manager className="com.example.StickyManager"/>
</Cluster>
X
    [ 'unknown Manager class through 5.5 managerClassName', <<"X", 1, qr/unknown Manager class 'org\.apache\.catalina\.cluster\.session\.SimpleManager'/ ],
<Cluster className="org.apache.catalina.cluster.tcp.SimpleTcpCluster" managerClassName="org.apache.catalina.cluster.session.SimpleManager"/>
X
    [ 'unknown Cluster class', <<"X", 1, qr/unknown Cluster class 'org\.example\.MyCluster'/ ],
<Cluster className="org.example.MyCluster"/>
X
    [ 'Include inside the block', <<"X", 2, qr/unexpected text 'Include \/etc\/other\.conf' inside <Cluster>/ ],
<Cluster $CL>
Include /etc/other.conf
</Cluster>
X
    [ 'httpd section inside the block', <<"X", 2, qr/the httpd section <IfModule> cannot be used inside <Cluster>/ ],
<Cluster $CL>
<IfModule mod_ssl.c>
</IfModule>
</Cluster>
X
    [ 'DOCTYPE inside the block', <<"X", 2, qr/DOCTYPE or other <! declaration is not allowed/ ],
<Cluster $CL>
<!DOCTYPE x [ <!ENTITY a "aaaaaaaa"> ]>
</Cluster>
X
    [ 'text after </Cluster>', <<"X", 2, qr/text after <\/Cluster> on the same line/ ],
<Cluster $CL>
</Cluster> ServerName x
X
    [ 'unknown send option', <<"X", 1, qr/channelSendOptions="fast": 'fast' names an unknown send option/ ],
<Cluster $CL channelSendOptions="fast"/>
X
    [ 'multicast send option', <<"X", 1, qr/channelSendOptions includes multicast \(64\)/ ],
<Cluster $CL channelSendOptions="72"/>
X
    [ 'uniqueId of 15 bytes', <<"X", 5, qr/StaticMember uniqueId=.*has 15 bytes, a uniqueId has 16/ ],
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Interceptor className="org.apache.catalina.tribes.group.interceptors.StaticMembershipInterceptor">
      <Member className="org.apache.catalina.tribes.membership.StaticMember" host="127.0.0.1" port="4001"
              uniqueId="{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14}"/>
    </Interceptor>
  </Channel>
</Cluster>
X
    [ 'Member without host', <<"X", 4, qr/<Member> needs a host attribute/ ],
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Interceptor className="org.apache.catalina.tribes.group.interceptors.StaticMembershipInterceptor">
      <Member className="org.apache.catalina.tribes.membership.StaticMember" port="4001"/>
    </Interceptor>
  </Channel>
</Cluster>
X
    [ 'Member outside a static membership', <<"X", 3, qr/<Member> belongs inside a StaticMembershipInterceptor/ ],
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Member host="127.0.0.1" port="4001"/>
  </Channel>
</Cluster>
X
    [ 'two Managers', <<"X", 3, qr/a second <Manager> \(the first is at line 2\)/ ],
<Cluster $CL>
  <Manager className="org.apache.catalina.ha.session.DeltaManager"/>
  <Manager className="org.apache.catalina.ha.session.BackupManager"/>
</Cluster>
X
    [ 'Receiver outside Channel (current syntax)', <<"X", 2, qr/<Receiver> belongs inside <Channel>, not <Cluster>/ ],
<Cluster $CL>
  <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver"/>
</Cluster>
X
    [ 'bad replicationMode (5.5)', <<"X", 2, qr/replicationMode="turbo": use pooled, synchronous, asynchronous or fastasyncqueue/ ],
<Cluster className="org.apache.catalina.cluster.tcp.SimpleTcpCluster">
 <Sender className="org.apache.catalina.cluster.tcp.ReplicationTransmitter" replicationMode="turbo"/>
</Cluster>
X
    [ 'bad regular expression', <<"X", 2, qr/ReplicationValve filter=".*\(\.gif": '.*\(\.gif' is not a valid regular expression/ ],
<Cluster $CL>
  <Valve className="org.apache.catalina.ha.tcp.ReplicationValve" filter=".*(.gif"/>
</Cluster>
X
    [ 'EncryptInterceptor without key', <<"X", 3, qr/EncryptInterceptor needs an encryptionKey/ ],
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Interceptor className="org.apache.catalina.tribes.group.interceptors.EncryptInterceptor"/>
  </Channel>
</Cluster>
X
    [ 'Interceptor without className', <<"X", 3, qr/<Interceptor> needs a className attribute/ ],
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Interceptor/>
  </Channel>
</Cluster>
X
    [ 'Cluster inside VirtualHost', <<"X", 2, qr/the cluster block belongs in the main server configuration/ ],
<VirtualHost 127.0.0.1:1>
<Cluster $CL/>
</VirtualHost>
X
);

# Errors of the module's own directives: [ name, text, regex, route ]
my @directive_errors = (
    [ 'route with a dot', "<Cluster $CL/>\n", qr/SessionClusterRoute 'node\.1': a route is 1-63 letters, digits/, 'node.1' ],
    [ 'route set twice', "<Cluster $CL/>\nSessionClusterRoute node2\n",
      qr/SessionClusterRoute is already set to 'node1' at \S+httpd\.conf:\d+/, 'node1' ],
    [ 'route without Cluster', "", qr/SC1101: SessionClusterRoute at \S+:\d+ needs a <Cluster> block/, 'node1' ],
    [ 'Cluster without route', "<Cluster $CL/>\n",
      qr/SC1104: the <Cluster> block at \S+cluster\.conf:1 needs SessionClusterRoute/, undef ],
    [ 'SessionCluster On without Cluster', "<Location /app>\nSessionCluster On\n</Location>\n",
      qr/SC1103: SessionCluster On at \S+cluster\.conf:2 \(\/app\) needs a <Cluster> block/, undef ],
    [ 'balancer that is not balancer://', "<Cluster $CL/>\nSessionClusterBalancer http://x\n",
      qr/SessionClusterBalancer 'http:\/\/x': expected balancer:\/\/name/, undef ],
    [ 'bad cookie name', "<Cluster $CL/>\n<Location /app>\nSessionClusterCookieName JSESS;ID\n</Location>\n",
      qr/SessionClusterCookieName 'JSESS;ID': a cookie name is/, 'node1' ],
    [ 'cookie attributes with a comma', "<Cluster $CL/>\n<Location /app>\nSessionClusterCookieName JSESSIONID path=/,x\n</Location>\n",
      qr/the attributes may not contain control characters or ','/, 'node1' ],
    [ 'SessionClusterRoute in a VirtualHost', "<Cluster $CL/>\n<VirtualHost 127.0.0.1:1>\nSessionClusterRoute node9\n</VirtualHost>\n",
      qr/SessionClusterRoute cannot occur within <VirtualHost> section/, 'node1' ],
);

# Warnings: [ name, text, [ regexes each expected exactly once ] ]
my @warnings = (
    [ 'unknown attribute, unknown interceptor, JMX and deployer', <<"X",
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel" jmxEnabled="false">
    <Membership $MC fancyMode="on"/>
    <Interceptor className="com.example.MagicInterceptor"/>
  </Channel>
  <Deployer className="org.apache.catalina.ha.deploy.FarmWarDeployer" watchEnabled="false"/>
  <Bogus/>
</Cluster>
X
      [ qr/SC1413: 1 attribute written in the <Cluster> block has no effect in httpd: GroupChannel\.jmxEnabled \(line 2\);.* \(\S+cluster\.conf:1\)/,
        qr/SC1002: unknown attribute fancyMode on McastService <Membership>: ignored \(\S+cluster\.conf:3\)/,
        qr/SC1001: unknown Interceptor class com\.example\.MagicInterceptor is ignored: httpd has no implementation of it \(\S+cluster\.conf:4\)/,
        qr/SC1001: <Deployer className="org\.apache\.catalina\.ha\.deploy\.FarmWarDeployer"> is ignored: httpd deploys no WAR files \(\S+cluster\.conf:6\)/,
        qr/SC1003: unknown element <Bogus> inside <Cluster>: ignored with its content \(\S+cluster\.conf:7\)/,
      ] ],
    # Tomcat takes a dropTime that is not above frequency as it is (issue 17)
    [ 'dropTime not above frequency', <<"X",
<Cluster $CL>
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Membership $MC frequency="1000" dropTime="500"/>
  </Channel>
</Cluster>
X
      [ qr/SC1415: McastService dropTime 500 ms is not longer than frequency 1000 ms: .* \(\S+cluster\.conf:3\)/ ] ],
);

my $warned = 0;
$warned += @{ $_->[2] } for @warnings;
plan tests => 3 * @errors + 2 * @directive_errors + 2 * @warnings + $warned;

for my $e (@errors) {
    my ($name, $text, $line, $re) = @$e;
    my $r = httpd_t($text);
    isnt($r->{status}, 0, "$name: httpd -t fails");
    like($r->{err}, $re, "$name: the reason") or diag($r->{err});
    # every error names its line: a case without one is a mistake in this file
    ok(defined $line && $r->{err} =~ /cluster\.conf:\Q$line\E: /,
       "$name: names cluster.conf:" . ($line // '(no line given in the test)'))
        or diag($r->{err});
}

for my $e (@directive_errors) {
    my ($name, $text, $re, $route) = @$e;
    my $r = httpd_t($text, route => $route);
    isnt($r->{status}, 0, "$name: httpd -t fails");
    like($r->{err}, $re, "$name: the reason") or diag($r->{err});
}

for my $w (@warnings) {
    my ($name, $text, $res) = @$w;
    my $r = httpd_t($text);
    is($r->{status}, 0, "$name: accepted") or diag($r->{err});
    like($r->{err}, qr/Syntax OK/, "$name: Syntax OK");
    for my $re (@$res) {
        my @hits = $r->{err} =~ /$re/g;
        is(scalar @hits, 1, "$name: warned once: $re") or diag($r->{err});
    }
}
