#!perl
# Cluster isolation with multicast membership (McastService) in network
# namespaces, four members behind one bridge:
#   node1, node2  DomainFilterInterceptor domain="prod",    group 228.0.0.4:45564
#   node3         DomainFilterInterceptor domain="staging", group 228.0.0.4:45564
#   node4         DomainFilterInterceptor domain="prod",    group 228.0.0.5:45564
# After ~2.5 s (five heartbeat periods):
#   - node1 and node2 see each other alive and know neither node3 (another
#     domain) nor node4 (another group): no Member line for them at all;
#   - node3 hears the prod heartbeats (HeartbeatsIn grows) but knows nobody
#     alive: it filters them by domain;
#   - node4 hears nothing (HeartbeatsIn 0: its socket is bound to its own
#     group) and knows nobody alive;
#   - node1's HeartbeatsIn grows, so multicast works at all and the test
#     cannot pass vacuously.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(need status_of member_on check);

my $why = SC::Cluster->netns_unavailable;
need(!$why, "network namespaces (run as root): " . ($why // ''));

$SIG{ALRM} = sub { die "isolation.t: time limit (60 s) reached\n" };
alarm 60;

# ---------------------------------------------------------------------------
# helpers (the ?auto page helpers are in SC::Test)
# ---------------------------------------------------------------------------

sub member_lines {
    my ($p) = @_;
    return '(no page)' unless $p;
    return join("\n", map { my $m = $_; join(' ', map { "$_=" . ($m->{$_} // '') } sort keys %$m) }
                      @{ $p->{members} }) || '(no Member lines)';
}

sub alive_routes {
    my ($p) = @_;
    return () unless $p;
    return map { $_->{route} // '?' } grep { ($_->{state} // '') eq 'alive' } @{ $p->{members} };
}

# ---------------------------------------------------------------------------
my %domain = (node1 => 'prod', node2 => 'prod', node3 => 'staging', node4 => 'prod');
my %group  = (node1 => '228.0.0.4', node2 => '228.0.0.4', node3 => '228.0.0.4',
              node4 => '228.0.0.5');

my $c = SC::Cluster->new(
    members => 4,
    netns   => 1,
    cluster => sub {
        my ($m) = @_;
        my $d = $domain{ $m->{name} };
        my $g = $group{ $m->{name} };
        return <<"EOB";
<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelSendOptions="8" channelStartOptions="15">
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Membership className="org.apache.catalina.tribes.membership.McastService" address="$g" port="45564" frequency="500" dropTime="3000"/>
    <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver" address="$m->{addr}" port="$m->{cluster_port}" autoBind="1"/>
    <Interceptor className="org.apache.catalina.tribes.group.interceptors.DomainFilterInterceptor" domain="$d"/>
    <Interceptor className="org.apache.catalina.tribes.group.interceptors.TcpFailureDetector"/>
  </Channel>
</Cluster>
EOB
    },
);
my @names = $c->members;

$c->start_all;
my $t0 = time;

# the configuration took: each member runs multicast on its own group
for my $n (@names) {
    my $p = status_of($c, $n) || {};
    is($p->{Multicast}, "$group{$n}:45564", "$n: Multicast: $group{$n}:45564");
}
my $hb1_start = (status_of($c, 'node1') || {})->{HeartbeatsIn} // 0;

# node1 and node2 find each other (well within the 2.5 s)
my $pair = $c->wait_for(sub {
    my $a = member_on($c, 'node1', 'node2');
    my $b = member_on($c, 'node2', 'node1');
    return $a && $a->{state} eq 'alive' && $b && $b->{state} eq 'alive';
}, timeout => 2.5, interval => 0.05);
check($pair, $c, sprintf('node1 and node2 see each other alive (%.2fs after start_all)', time - $t0));

# then let five heartbeat periods pass since the start, so any leak would show
my $rest = 2.5 - (time - $t0);
sleep $rest if $rest > 0;

my %p = map { $_ => status_of($c, $_) } @names;
for my $n (qw(node1 node2)) {
    my $other = $n eq 'node1' ? 'node2' : 'node1';
    my $p = $p{$n};
    my ($m) = grep { ($_->{route} // '') eq $other } @{ $p ? $p->{members} : [] };
    check($m && $m->{state} eq 'alive', $c, "after 2.5 s: $n sees $other alive",
          "$n members:\n" . member_lines($p));
    is($p && $p->{MembersAlive}, 1, "after 2.5 s: $n has MembersAlive 1");
    for my $stranger (qw(node3 node4)) {
        my @l = grep { ($_->{route} // '') eq $stranger } @{ $p ? $p->{members} : [] };
        check($p && !@l, $c,
              "after 2.5 s: $n knows no $stranger (" . ($stranger eq 'node3'
                  ? 'another domain' : 'another multicast group') . ')',
              "$n members:\n" . member_lines($p));
    }
}
for my $n (qw(node3 node4)) {
    my $p = $p{$n};
    my @alive = alive_routes($p);
    check($p && !@alive, $c, "after 2.5 s: $n knows nobody alive",
          "$n alive: @alive", "$n members:\n" . member_lines($p));
    is($p && $p->{MembersAlive}, 0, "after 2.5 s: $n has MembersAlive 0");
}

# not vacuous: multicast heartbeats flow on 228.0.0.4
my $hb1 = ($p{node1} || {})->{HeartbeatsIn} // 0;
check($hb1 > $hb1_start && $hb1 > 0, $c,
      "node1's HeartbeatsIn grows ($hb1_start -> $hb1): multicast works");
# node3 is isolated by the domain filter, not by the network: it hears them
my $hb3 = ($p{node3} || {})->{HeartbeatsIn} // 0;
check($hb3 > 0, $c, "node3 hears multicast heartbeats (HeartbeatsIn $hb3) yet filters them");
# node4 is alone on 228.0.0.5: its socket is bound to its group, nothing comes in
my $hb4 = ($p{node4} || {})->{HeartbeatsIn} // 0;
check($hb4 == 0, $c, "node4 hears no heartbeats of the other group (HeartbeatsIn $hb4)");
my $hbo4 = ($p{node4} || {})->{HeartbeatsOut} // 0;
cmp_ok($hbo4, '>', 0, "node4 does send heartbeats on its own group (HeartbeatsOut $hbo4)");

for my $n (@names) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052|died \(status/,
           "$n: no crash in the error_log");
}
note(sprintf 'isolation.t: cluster part took %.1fs', time - $t0);
$c->teardown;
done_testing();
