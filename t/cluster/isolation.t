#!perl
# Cluster isolation with multicast membership (McastService) in network
# namespaces, four members behind one bridge:
#   node1, node2  DomainFilterInterceptor domain="prod",    group 228.0.0.4:45564
#   node3         DomainFilterInterceptor domain="staging", group 228.0.0.4:45564
#   node4         DomainFilterInterceptor domain="prod",    group 228.0.0.5:45564
# No fixed wait: the negative checks come once the heartbeats that would
# break them have demonstrably been handled:
#   - node1 and node2 see each other alive; once each dropped two or more of
#     node3's heartbeats by domain (DomainFiltered) and heard two more
#     heartbeats after node4 had sent three (HeartbeatsOut), they know neither
#     node3 (another domain) nor node4 (another group): no Member line;
#   - node3 hears the prod heartbeats and drops them by domain
#     (DomainFiltered grows by 4 or more: two of node1's and node2's) and
#     knows nobody alive;
#   - node4 hears nothing (HeartbeatsIn 0: its socket is bound to its own
#     group) although node1, node2 and node3 sent two or more heartbeats each
#     while it ran, and knows nobody alive;
#   - node1's HeartbeatsIn grows, so multicast works at all and the test
#     cannot pass vacuously.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(need status_of member_on check within need_netns num);

need_netns();

$SIG{ALRM} = sub { die "isolation.t: time limit (180 s) reached\n" };
alarm 180;

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

# the configuration took: each member runs multicast on its own group
for my $n (@names) {
    my $p = status_of($c, $n) || {};
    is($p->{Multicast}, "$group{$n}:45564", "$n: Multicast: $group{$n}:45564");
}
my $hb1_start = (status_of($c, 'node1') || {})->{HeartbeatsIn} // 0;
# every member runs now: what each has sent so far
my %out0 = map { $_ => num(status_of($c, $_), 'HeartbeatsOut') } @names;

# node1 and node2 find each other
my $pair = $c->wait_for(sub {
    my $a = member_on($c, 'node1', 'node2');
    my $b = member_on($c, 'node2', 'node1');
    return $a && $a->{state} eq 'alive' && $b && $b->{state} eq 'alive';
}, timeout => 20, interval => 0.05);
check($pair, $c, 'node1 and node2 see each other alive');

# the events after which a leak would show (polling limits of 20 s each)
my %filtered;
for my $t ([ node3 => 4 ], [ node1 => 2 ], [ node2 => 2 ]) {
    my ($n, $want) = @$t;
    within(20, sub { ($filtered{$n} = num(status_of($c, $n), 'DomainFiltered')) >= $want });
    cmp_ok($filtered{$n}, '>=', $want, "$n dropped $want or more heartbeats of another domain (DomainFiltered $filtered{$n})");
}
my $o4;
within(20, sub { ($o4 = num(status_of($c, 'node4'), 'HeartbeatsOut')) >= 3 });
cmp_ok($o4, '>=', 3, "node4 sent 3 or more heartbeats on its own group (HeartbeatsOut $o4)");
for my $n (qw(node1 node2)) {
    my $h0 = num(status_of($c, $n), 'HeartbeatsIn');
    my $h;
    within(20, sub { ($h = num(status_of($c, $n), 'HeartbeatsIn')) >= $h0 + 2 });
    cmp_ok($h, '>=', $h0 + 2, "$n heard 2 more heartbeats after that (HeartbeatsIn $h0 -> $h)");
}
for my $n (qw(node1 node2 node3)) {
    my $o;
    within(20, sub { ($o = num(status_of($c, $n), 'HeartbeatsOut')) >= $out0{$n} + 2 });
    cmp_ok($o, '>=', $out0{$n} + 2, "$n sent 2 or more heartbeats on 228.0.0.4 while node4 ran ($out0{$n} -> $o)");
}

my %p = map { $_ => status_of($c, $_) } @names;
for my $n (qw(node1 node2)) {
    my $other = $n eq 'node1' ? 'node2' : 'node1';
    my $p = $p{$n};
    my ($m) = grep { ($_->{route} // '') eq $other } @{ $p ? $p->{members} : [] };
    check($m && $m->{state} eq 'alive', $c, "$n sees $other alive",
          "$n members:\n" . member_lines($p));
    is($p && $p->{MembersAlive}, 1, "$n has MembersAlive 1");
    for my $stranger (qw(node3 node4)) {
        my @l = grep { ($_->{route} // '') eq $stranger } @{ $p ? $p->{members} : [] };
        check($p && !@l, $c,
              "$n knows no $stranger (" . ($stranger eq 'node3'
                  ? 'another domain' : 'another multicast group') . ')',
              "$n members:\n" . member_lines($p));
    }
}
for my $n (qw(node3 node4)) {
    my $p = $p{$n};
    my @alive = alive_routes($p);
    check($p && !@alive, $c, "$n knows nobody alive",
          "$n alive: @alive", "$n members:\n" . member_lines($p));
    is($p && $p->{MembersAlive}, 0, "$n has MembersAlive 0");
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
$c->teardown;
done_testing();
