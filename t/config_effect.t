# Every attribute acts as in Tomcat, or says it has no effect (issue 17).
#
# A. Blocks with every class of the catalogue, first with no attribute but
#    the required ones (pass 1), then with every attribute written (pass 2):
#    the dump of pass 1 marks the attributes that have no effect ("default,
#    no effect"); in pass 2 `httpd -t` logs ONE warning for the block
#    (SC1413) naming each of them once, with its line, and nothing else (no
#    attribute that acts), and the dump marks them "no effect (written in the
#    block)" while those that act say "set in the block".  The set of
#    attributes with no effect is what the module takes into no setting: it
#    comes from the dump, not from a list in this file.  Tomcat 5.5's names
#    (its 5.5-only attributes, the JMX/statistics/queue names that mean
#    nothing in httpd) are checked in a block of their own.
# B. README's "Every element and attribute" lists, per class, exactly the
#    attributes that have no effect in any of the blocks of A.
# C. The reader's semantics, as Tomcat's: Receiver autoBind <= 0 is taken as
#    1; McastService dropTime <= frequency is accepted with a warning
#    (SC1415); BackupManager runs as itself, without a warning, and the dump
#    says how it chooses backups; CloudMembershipService takes the kubernetes provider
#    (Tomcat's default, by its short or class name) and dns, and refuses any
#    other with its line and both alternatives (connectTimeout and
#    readTimeout act with kubernetes, dnsServiceName with dns: block C has
#    one of each); SessionIdGenerator sessionIdLength is read (a
#    warning below 16 bytes, SC1416).
# (t/cluster/auto_bind.t starts members with autoBind="0" and reads the
# marks on the page.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SC::ConfTest qw(httpd_t repo_dir);

my $HA  = 'org.apache.catalina.ha';
my $TR  = 'org.apache.catalina.tribes';
my $IC  = "$TR.group.interceptors";
my $KEY = '000102030405060708090a0b0c0d0e0f';

# An element: { key => dump key, tag, class, attrs => { written always },
# children => [...] }.  render() writes one element per line and records the
# line of each key.
sub el {
    my ($key, $tag, $class, $attrs, @children) = @_;
    return { key => $key, tag => $tag, class => $class, attrs => $attrs || {},
             children => \@children };
}

sub render {
    my ($root, $extra) = @_;
    my (@lines, %line);
    my $walk;
    $walk = sub {
        my ($e, $depth) = @_;
        my %a = (%{ $e->{attrs} }, %{ ($e->{key} && $extra->{ $e->{key} }) || {} });
        my $open = ('  ' x $depth) . "<$e->{tag}" . ($e->{class} ? qq{ className="$e->{class}"} : '')
                 . join('', map { qq{ $_="$a{$_}"} } sort keys %a);
        push @lines, $open . (@{ $e->{children} } ? '>' : '/>');
        $line{ $e->{key} } = scalar @lines if $e->{key};
        if (@{ $e->{children} }) {
            $walk->($_, $depth + 1) for @{ $e->{children} };
            push @lines, ('  ' x $depth) . "</$e->{tag}>";
        }
    };
    $walk->($root, 0);
    return (join("\n", @lines) . "\n", \%line);
}

# The dump: { key => { attr => [ value, origin ] } } and { key => className }.
sub parse_dump {
    my ($out) = @_;
    my (%d, %cls);
    for (split /\n/, $out) {
        next unless /^(\S+)\.(\w+) = (.*?)  # (.*)$/;
        my ($k, $a, $v, $o) = ($1, $2, $3, $4);
        if ($a eq 'className') { $cls{$k} = $v; next }
        $d{$k}{$a} = [ $v, $o ];
    }
    return (\%d, \%cls);
}

# The names one SC1413 line gives: { "Class.attr (line N)" => count }, and
# the number it states.
sub sc1413 {
    my ($err) = @_;
    my @l = grep { /SC1413: / } split /\n/, $err;
    return (scalar @l) unless @l == 1;
    my ($n, $list) = $l[0] =~ /SC1413: (\d+) attributes? written in the <Cluster> block ha(?:s|ve) no effect in httpd: (.*); -D DUMP_CLUSTER and the cluster-manager page mark (?:it|them) "no effect" \(/
        or return (1, undef, undef, $l[0]);
    my %names;
    $names{$_}++ for split /, /, $list;
    return (1, \%names, $n, $l[0]);
}

sub short { my ($c) = @_; $c =~ s/.*\.//; return $c }

# How SC1413 names an attribute of the element with dump key $k.
sub label {
    my ($k, $class, $attr) = @_;
    return ($k =~ /^(LocalMember|Member)\b/ ? $1 : short($class)) . ".$attr";
}

my @blocks = (
    [ 'A: DeltaManager, McastService, every interceptor, the valves',
      el('Cluster', 'Cluster', "$HA.tcp.SimpleTcpCluster", {},
         el('Manager', 'Manager', "$HA.session.DeltaManager", {},
            el('SessionIdGenerator', 'SessionIdGenerator', 'org.apache.catalina.util.StandardSessionIdGenerator')),
         el('Channel', 'Channel', "$TR.group.GroupChannel", {},
            el('Membership', 'Membership', "$TR.membership.McastService"),
            el('Receiver', 'Receiver', "$TR.transport.nio.NioReceiver"),
            el(undef, 'Sender', "$TR.transport.ReplicationTransmitter", {},
               el('Transport', 'Transport', "$TR.transport.nio.PooledParallelSender")),
            el('Interceptor.1', 'Interceptor', "$IC.TcpFailureDetector"),
            el('Interceptor.2', 'Interceptor', "$IC.TcpPingInterceptor"),
            el('Interceptor.3', 'Interceptor', "$IC.MessageDispatchInterceptor"),
            el('Interceptor.4', 'Interceptor', "$IC.ThroughputInterceptor"),
            el('Interceptor.5', 'Interceptor', "$IC.DomainFilterInterceptor", { domain => 'd1' }),
            el('Interceptor.6', 'Interceptor', "$IC.FragmentationInterceptor"),
            el('Interceptor.7', 'Interceptor', "$IC.EncryptInterceptor", { encryptionKey => $KEY }),
            el('Interceptor.8', 'Interceptor', "$IC.GzipInterceptor"),
            el('Interceptor.9', 'Interceptor', "$IC.OrderInterceptor"),
            el('Interceptor.10', 'Interceptor', "$IC.NonBlockingCoordinator"),
            el('Interceptor.11', 'Interceptor', "$IC.SimpleCoordinator"),
            el('Interceptor.12', 'Interceptor', "$IC.TwoPhaseCommitInterceptor"),
            el('Interceptor.13', 'Interceptor', "$IC.StaticMembershipInterceptor", {},
               el('LocalMember', 'LocalMember', "$TR.membership.StaticMember",
                  { host => '127.0.0.1', port => 4012, uniqueId => '{9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9}' }),
               el('Member.1', 'Member', "$TR.membership.StaticMember",
                  { host => '127.0.0.1', port => 4011, uniqueId => '{1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}' }))),
         el('Valve.1', 'Valve', "$HA.tcp.ReplicationValve"),
         el('Valve.2', 'Valve', "$HA.session.JvmRouteBinderValve"),
         el('Valve.3', 'Valve', "$HA.authenticator.ClusterSingleSignOn"),
         el(undef, 'Deployer', "$HA.deploy.FarmWarDeployer"),
         el('ClusterListener.1', 'ClusterListener', "$HA.session.ClusterSessionListener")) ],
    [ 'B: BackupManager, StaticMembershipService',
      el('Cluster', 'Cluster', "$HA.tcp.SimpleTcpCluster", {},
         el('Manager', 'Manager', "$HA.session.BackupManager"),
         el('Channel', 'Channel', "$TR.group.GroupChannel", {},
            el('Membership', 'Membership', "$TR.membership.StaticMembershipService", {},
               el('LocalMember', 'LocalMember', "$TR.membership.StaticMember",
                  { host => '127.0.0.1', port => 4012, uniqueId => '{9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9}' }),
               el('Member.1', 'Member', "$TR.membership.StaticMember",
                  { host => '127.0.0.1', port => 4011, uniqueId => '{1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}' })),
            el('Receiver', 'Receiver', "$TR.transport.nio.NioReceiver"))) ],
    [ 'C: CloudMembershipService (dns)',
      el('Cluster', 'Cluster', "$HA.tcp.SimpleTcpCluster", {},
         el('Channel', 'Channel', "$TR.group.GroupChannel", {},
            el('Membership', 'Membership', "$TR.membership.cloud.CloudMembershipService",
               { membershipProviderClassName => 'dns', dnsServiceName => 'members.example' }))) ],
    [ 'C: CloudMembershipService (kubernetes, Tomcat\'s default)',
      el('Cluster', 'Cluster', "$HA.tcp.SimpleTcpCluster", {},
         el('Channel', 'Channel', "$TR.group.GroupChannel", {},
            el('Membership', 'Membership', "$TR.membership.cloud.CloudMembershipService"))) ],
);

# The written value of an attribute, from its dump value: undef when the dump
# value says nothing writable (unset, a key shown by its size).
sub writable {
    my ($v, $no_effect) = @_;
    return $1 if $v =~ /^(\d+) \(/;                 # send options: "8 (asynchronous)"
    return $v unless $v =~ /^\(/;
    return $no_effect ? 'x' : undef;                # any text, host name or pattern
}

my %acts;           # "Kind/Class" => { attr => 1 } acting in some block
my %seen;           # "Kind/Class" => { attr => 1 } in the dump of some block

# "Kind/Class" of a dump key, under the class's current name (README's headings)
my %ALIAS = (ReplicationListener => 'NioReceiver', SocketReplicationListener => 'NioReceiver',
             BioReceiver => 'NioReceiver', MultipointBioSender => 'PooledParallelSender',
             PooledMultiSender => 'PooledParallelSender', ParallelNioSender => 'PooledParallelSender',
             MessageDispatch15Interceptor => 'MessageDispatchInterceptor');
sub kind_class {
    my ($k, $class) = @_;
    (my $kind = $k) =~ s/\.\d+$//;
    my $c = short($class);
    return "$kind/" . ($ALIAS{$c} // $c);
}

plan tests => 8 * @blocks + 9 + 1 + 26;

for my $b (@blocks) {
    my ($name, $root) = @$b;
    # pass 1: the required attributes only
    my ($text, $line) = render($root, {});
    my $r = httpd_t($text, args => [ '-D', 'DUMP_CLUSTER' ]);
    is($r->{status}, 0, "$name: pass 1 accepted") or diag($r->{err});
    my ($d, $cls) = parse_dump($r->{out});
    my (%extra, %expect, %used, @default_marked, @default_unmarked);
    for my $k (sort keys %$line) {
        next unless $d->{$k};
        my $kc = kind_class($k, $cls->{$k});
        for my $a (sort keys %{ $d->{$k} }) {
            my ($v, $o) = @{ $d->{$k}{$a} };
            my $ne = $o =~ /\bno effect\b/;
            $seen{$kc}{$a} = 1;
            $acts{$kc}{$a} = 1 unless $ne;
            if ($ne && !exists((find($root, $k) || {})->{attrs}{$a})) {
                push @default_marked, "$k.$a" if $o =~ /(?:^|, )default, no effect$/;
                push @default_unmarked, "$k.$a ($o)" unless $o =~ /(?:^|, )default, no effect$/;
            }
            next if exists((find($root, $k) || {})->{attrs}{$a});
            my $w = writable($v, $ne);
            next unless defined $w;
            $extra{$k}{$a} = $w;
            if ($ne) { $expect{ label($k, $cls->{$k}, $a) . " (line $line->{$k})" } = 1 }
            else     { $used{"$k.$a"} = label($k, $cls->{$k}, $a) }
        }
        # the required attributes written in pass 1 that have no effect
        for my $a (keys %{ (find($root, $k) || {})->{attrs} }) {
            my $o = $d->{$k}{$a} ? $d->{$k}{$a}[1] : '';
            $expect{ label($k, $cls->{$k}, $a) . " (line $line->{$k})" } = 1 if $o =~ /\bno effect\b/;
        }
    }
    ok(@default_marked > 0 && !@default_unmarked,
       "$name: pass 1's dump marks " . scalar(@default_marked) . " attributes at Tomcat's default \"default, no effect\"")
        or diag("not marked so: @default_unmarked");

    # pass 2: every attribute written
    ($text, $line) = render($root, \%extra);
    $r = httpd_t($text, args => [ '-D', 'DUMP_CLUSTER' ]);
    is($r->{status}, 0, "$name: pass 2 (every attribute written) accepted") or diag($r->{err});
    my ($count, $names, $n, $l) = sc1413($r->{err});
    is($count, 1, "$name: one SC1413 warning for the block") or diag($r->{err});
    my @missing = grep { !$names->{$_} } sort keys %expect;
    my @twice = grep { $names->{$_} > 1 } sort keys %{ $names || {} };
    my @other = grep { !$expect{$_} } sort keys %{ $names || {} };
    ok($names && !@missing && !@twice && $n == keys %expect,
       "$name: it names each of the " . scalar(keys %expect) . " attributes written that have no effect once, with its line")
        or diag("missing: @missing\nnamed twice: @twice\nstated count: " . ($n // '?') . "\n" . ($l // $r->{err}));
    my @named_used = grep { my $u = $_; grep { index($_, "$u (") == 0 } keys %{ $names || {} } }
                     values %used;
    ok(keys(%used) > 0 && !@other && !@named_used,
       "$name: ... and none of the " . scalar(keys %used) . " written attributes that act")
        or diag("named but not expected: @other\nacting but named: @named_used");
    ($d) = parse_dump($r->{out});
    my @bad;
    for my $k (keys %extra) {
        for my $a (keys %{ $extra{$k} }) {
            my $o = $d->{$k}{$a} ? $d->{$k}{$a}[1] : '(not in the dump)';
            my $want = $used{"$k.$a"} ? qr/(?:^|, )set in the block$/
                                      : qr/(?:^|, )no effect \(written in the block\)$/;
            push @bad, "$k.$a: $o" unless $o =~ $want;
        }
    }
    ok(!@bad, "$name: pass 2's dump marks each written attribute 'no effect (written in the block)' or 'set in the block'")
        or diag(join("\n", @bad));
    like($r->{out}, qr/^# ignored: .*attribute \w+ \(/m, "$name: the reasons written down stay under '# ignored:'")
        if $name =~ /^A/;
    pass("$name: (no '# ignored:' reasons expected)") unless $name =~ /^A/;
}

# The element of dump key $k in a tree.
sub find {
    my ($e, $k) = @_;
    return $e if ($e->{key} // '') eq $k;
    for (@{ $e->{children} }) {
        my $f = find($_, $k);
        return $f if $f;
    }
    return undef;
}

# A, Tomcat 5.5: its 5.5-only attributes and the names that mean nothing in httpd.
my @IGNORED = qw(jmxEnabled jmxDomain jmxPrefix doClusterLog clusterLogName
                 doTransmitterProcessingStats doProcessingStats doWaitAckStats queueDoStats
                 queueCheckLock queueTimeWait queueAddWaitTimeout queueRemoveWaitTimeout
                 maxQueueLength threadPriority processSenderFrequency compress useDirtyFlag);
{
    my $C55 = 'org.apache.catalina.cluster';
    my @ign = @IGNORED;
    my $cl = join ' ', map { qq{$_="1"} } grep { /^(?:jmx|doCluster|clusterLog)/ } @ign;
    my $tx = join ' ', map { qq{$_="1"} } grep { !/^(?:jmx|doCluster|clusterLog|useDirtyFlag)/ } @ign;
    my $text = <<"X";
<Cluster className="$C55.tcp.SimpleTcpCluster" $cl>
  <Manager className="$C55.session.DeltaManager" sendClusterDomainOnly="true" updateActiveInterval="60" expireTolerance="300" useDirtyFlag="true"/>
  <Membership className="$C55.mcast.McastService" mcastAddr="228.0.0.4" mcastPort="45564" mcastFrequency="500" mcastDropTime="3000"/>
  <Receiver className="$C55.tcp.ReplicationListener" tcpListenAddress="auto" tcpListenPort="4001" tcpListenMaxPort="4010" tcpThreadCount="6"/>
  <Sender className="$C55.tcp.ReplicationTransmitter" replicationMode="pooled" waitForAck="true" autoConnect="false" resend="false" recoverTimeout="5000" recoverCounter="0" $tx/>
</Cluster>
X
    my %expect = map { ("$_ (line 1)" => 1) }
                 map { "SimpleTcpCluster.$_" } grep { /^(?:jmx|doCluster|clusterLog)/ } @ign;
    $expect{"DeltaManager.$_ (line 2)"} = 1 for qw(sendClusterDomainOnly updateActiveInterval expireTolerance useDirtyFlag);
    $expect{"ReplicationListener.tcpThreadCount (line 4)"} = 1;
    $expect{"ReplicationTransmitter.$_ (line 5)"} = 1
        for qw(autoConnect resend recoverTimeout recoverCounter), grep { !/^(?:jmx|doCluster|clusterLog|useDirtyFlag)/ } @ign;
    my $r = httpd_t($text, args => [ '-D', 'DUMP_CLUSTER' ]);
    is($r->{status}, 0, 'A, Tomcat 5.5: accepted') or diag($r->{err});
    my ($count, $names, $n, $l) = sc1413($r->{err});
    is($count, 1, 'A, Tomcat 5.5: one SC1413 warning');
    my @missing = grep { !$names->{$_} } sort keys %expect;
    my @other = grep { !$expect{$_} } sort keys %{ $names || {} };
    ok($names && !@missing && !@other && $n == keys %expect,
       'A, Tomcat 5.5: it names the ' . scalar(keys %expect) . ' 5.5-only and JMX/statistics/queue attributes '
       . 'that mean nothing here, and not mcastAddr..., tcpListenPort, tcpListenMaxPort (autoBind), replicationMode, waitForAck (channelSendOptions)')
        or diag("missing: @missing\nnot expected: @other\n" . ($l // $r->{err}));
    unlike($r->{err}, qr/SC100[12]: .*attribute/, 'A, Tomcat 5.5: no warning of its own for any of them (SC1001/SC1002)')
        or diag($r->{err});
    my ($d, $cls) = parse_dump($r->{out});
    like($d->{Manager}{updateActiveInterval}[1] // '', qr/^s, no effect \(written in the block\)$/,
         'A, Tomcat 5.5: the dump marks Manager.updateActiveInterval no effect');
    like($d->{Receiver}{maxThreads}[1] // '', qr/^no effect \(written as Tomcat 5\.5 tcpThreadCount\)$/,
         'A, Tomcat 5.5: ... and Receiver.maxThreads, written as tcpThreadCount');
    like($d->{Receiver}{tcpListenMaxPort}[1] // '', qr/^set in the block$/,
         'A, Tomcat 5.5: ... but not tcpListenMaxPort, which gives autoBind');
    like($d->{Transport}{replicationMode}[1] // '', qr/^set in the block$/,
         'A, Tomcat 5.5: ... nor replicationMode, which gives channelSendOptions');
    # for B: what acts here (its 5.5-only attributes, and McastService domain
    # without a DomainFilterInterceptor)
    for my $k (keys %$d) {
        next unless $cls->{$k};
        my $kc = kind_class($k, $cls->{$k});
        for my $a (keys %{ $d->{$k} }) {
            $seen{$kc}{$a} = 1;
            $acts{$kc}{$a} = 1 unless $d->{$k}{$a}[1] =~ /\bno effect\b/;
        }
    }
    # an attribute that only Tomcat 5.5 has is shown in the dump when written
    ok(exists $d->{Transport}{autoConnect}, 'A, Tomcat 5.5: 5.5-only attributes written are in the dump');
}

# B. README ---------------------------------------------------------------------------
{
    my $readme = do { local (@ARGV, $/) = (repo_dir() . '/README'); <> };
    my ($sec) = $readme =~ /^### Every element and attribute.*?\n(.*?)^## /ms;
    my (%said, $cur, @bad);
    for (split /\n/, $sec // '') {
        if (/^\*\*`<([^>]+)>` (\w+)\*\*/) {
            $cur = "$1/$2";
            $said{$cur} = {};
        }
        elsif ($cur && /^No effect here: (.*)$/) {
            $said{$cur}{$_} = 1 for $1 =~ /`(\w+)`/g;
        }
    }
    # the Sender's attributes are the Transport's
    my %truth = %seen;
    $truth{'Sender/ReplicationTransmitter'} = $seen{'Transport/PooledParallelSender'};
    $acts{'Sender/ReplicationTransmitter'} = $acts{'Transport/PooledParallelSender'};
    for my $kc (sort keys %truth) {
        my @ne = sort grep { !$acts{$kc}{$_} } keys %{ $truth{$kc} };
        my @says = sort keys %{ $said{$kc} || {} };
        next if "@ne" eq "@says" && ($said{$kc} || !@ne);
        push @bad, "$kc: README says no effect for (@says); the module: (@ne)\n"
                 . "  No effect here: " . join(', ', map { "`$_`" } @ne);
    }
    ok(!@bad, "B. README lists, per class, exactly the attributes that have no effect ("
              . scalar(keys %truth) . " classes)") or diag(join("\n", @bad));
}

# C. the reader's semantics ---------------------------------------------------------------
my $CL = qq{className="$HA.tcp.SimpleTcpCluster"};
sub one_channel {
    my ($inner, %o) = @_;
    return qq{<Cluster $CL>\n} . ($o{manager} // '')
         . qq{  <Channel className="$TR.group.GroupChannel">\n$inner  </Channel>\n</Cluster>\n};
}
{
    for my $v (0, -5) {
        my $r = httpd_t(one_channel(qq{    <Receiver className="$TR.transport.nio.NioReceiver" port="4100" autoBind="$v"/>\n}),
                        args => [ '-D', 'DUMP_CLUSTER' ]);
        is($r->{status}, 0, "C. Receiver autoBind=\"$v\": accepted (Tomcat takes it as 1)") or diag($r->{err});
        like($r->{out}, qr/^Receiver\.autoBind = 1  # ports, set in the block$/m, "C. ... the dump says autoBind = 1");
        like($r->{out}, qr/^# note: Receiver autoBind="\Q$v\E" is taken as 1, as Tomcat does: only port 4100 is tried$/m,
             '... and a note says why');
    }
}
{
    for my $fd ([ 1000, 500 ], [ 1000, 1000 ]) {
        my ($f, $d) = @$fd;
        my $r = httpd_t(one_channel(qq{    <Membership className="$TR.membership.McastService"\n}
                                    . qq{                frequency="$f" dropTime="$d"/>\n}),
                        args => [ '-D', 'DUMP_CLUSTER' ]);
        is($r->{status}, 0, "C. dropTime $d <= frequency $f: accepted, as Tomcat does") or diag($r->{err});
        my @w = $r->{err} =~ /(SC1415: McastService dropTime $d ms is not longer than frequency $f ms: .*\(\S+cluster\.conf:3\))/g;
        is(scalar @w, 1, '... with one warning (SC1415) naming the line of <Membership>') or diag($r->{err});
    }
    my $r = httpd_t(one_channel(qq{    <Membership className="$TR.membership.McastService" frequency="500" dropTime="501"/>\n}));
    unlike($r->{err}, qr/SC1415/, 'C. dropTime above frequency: no warning');
}
{
    my $r = httpd_t(one_channel('', manager => qq{  <Manager className="$HA.session.BackupManager"/>\n}),
                    args => [ '-D', 'DUMP_CLUSTER' ]);
    is($r->{status}, 0, 'C. BackupManager: accepted');
    unlike($r->{err}, qr/SC1414/, 'C. BackupManager: runs as itself, no warning (SC1414)');
    like($r->{out}, qr/^Manager\.className = \Q$HA\E\.session\.BackupManager  # line 2, one backup per session, chosen round robin over the ready members sorted by route, starting after this member's route/m,
         'C. BackupManager: the dump (and the page) says how backups are chosen on Manager.className');
    unlike($r->{out}, qr/not implemented yet/, 'C. BackupManager: ... and nothing says it is not implemented');
    $r = httpd_t(one_channel('', manager => qq{  <Manager className="$HA.session.DeltaManager"/>\n}));
    unlike($r->{err}, qr/SC1414/, 'C. DeltaManager: no such warning');
}
{
    my $CMS = "$TR.membership.cloud.CloudMembershipService";
    my $r = httpd_t(one_channel(qq{    <Membership className="$CMS"/>\n}));
    is($r->{status}, 0, 'C. CloudMembershipService with Tomcat\'s default provider (kubernetes): accepted') or diag($r->{err});
    $r = httpd_t(one_channel(qq{    <Membership className="$CMS"\n}
                             . qq{      membershipProviderClassName="$TR.membership.cloud.KubernetesMembershipProvider"/>\n}));
    is($r->{status}, 0, 'C. KubernetesMembershipProvider written by its class name: accepted') or diag($r->{err});
    $r = httpd_t(one_channel(qq{    <Membership className="$CMS"\n}
                             . qq{      membershipProviderClassName="com.example.MyMembershipProvider"/>\n}));
    isnt($r->{status}, 0, 'C. another provider class: refused at httpd -t');
    like($r->{err}, qr/cluster\.conf:4: CloudMembershipService membershipProviderClassName="com\.example\.MyMembershipProvider" is not implemented: .*"kubernetes".*"dns".*dnsServiceName.*DNS_MEMBERSHIP_SERVICE_NAME/,
         'C. ... at the attribute\'s line, with both providers as the alternatives') or diag($r->{err});
    for my $p ('dns', 'DNS', "$TR.membership.cloud.DNSMembershipProvider") {
        $r = httpd_t(one_channel(qq{    <Membership className="$CMS" membershipProviderClassName="$p" dnsServiceName="m.example"/>\n}));
        is($r->{status}, 0, "C. provider \"$p\": accepted") or diag($r->{err});
    }
}
{
    my $r = httpd_t(one_channel('', manager => qq{  <Manager className="$HA.session.DeltaManager">\n}
                                     . qq{    <SessionIdGenerator sessionIdLength="12"/>\n  </Manager>\n}),
                    args => [ '-D', 'DUMP_CLUSTER' ]);
    is($r->{status}, 0, 'C. SessionIdGenerator sessionIdLength="12": accepted') or diag($r->{err});
    like($r->{out}, qr/^SessionIdGenerator\.sessionIdLength = 12  # bytes, set in the block$/m,
         'C. ... read: the dump shows it set, and acting') or diag($r->{out});
    like($r->{err}, qr/SC1416: SessionIdGenerator sessionIdLength 12: session ids of 96 random bits .*\(\S+cluster\.conf:3\)/,
         'C. ... with a warning below 16 bytes (SC1416)') or diag($r->{err});
}
