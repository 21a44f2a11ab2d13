#!perl
# Multicast membership (McastService) with TcpFailureDetector, three members
# each in its own network namespace behind a private bridge:
#   (a) all see all by multicast within 1.5 s (Multicast: 228.0.0.4:45564,
#       MembersAlive 2);
#   (b) node3 frozen (SIGSTOP): node1 suspects it after dropTime (~3 s, not
#       before 2.5 s) and declares it dead by ~5 s after the TCP check; thawed
#       (SIGCONT) it is alive again within 2 s;
#   (c) node2 cut off the bridge: node1 and node3 declare it dead within ~5 s;
#       healed, it is alive again on both within 3 s.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(need status_of member_on dump_cluster check);

my $why = SC::Cluster->netns_unavailable;
need(!$why, "network namespaces (run as root): " . ($why // ''));

$SIG{ALRM} = sub { die "multicast.t: time limit (90 s) reached\n" };
alarm 90;

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# Polls $n's view of $route until $timeout; records every change of state as
# [seconds since $t0, state, verdict].  Stops early when $until->($m) is true.
sub follow {
    my ($c, $n, $route, $t0, $timeout, $until) = @_;
    return follow_many($c, [$n], $route, $t0, $timeout, $until)->{$n};
}

# The same for several watchers at once: { watcher => [changes] }; stops early
# when $until is true for every watcher.
sub follow_many {
    my ($c, $watchers, $route, $t0, $timeout, $until) = @_;
    my (%changes, %prev, %done);
    while (time - $t0 < $timeout) {
        for my $n (@$watchers) {
            next if $done{$n};
            my $m = member_on($c, $n, $route);
            my $st = $m ? $m->{state} : 'absent';
            if ($st ne ($prev{$n} // '')) {
                push @{ $changes{$n} }, [ time - $t0, $st, $m ? $m->{verdict} : '' ];
                $prev{$n} = $st;
            }
            $done{$n} = 1 if $m && $until && $until->($m);
        }
        last if keys %done == @$watchers;
        sleep 0.05;
    }
    $changes{$_} ||= [] for @$watchers;
    return \%changes;
}

sub first_in {
    my ($changes, $state) = @_;
    my ($x) = grep { $_->[1] eq $state } @$changes;
    return $x;
}

sub show {
    my ($changes) = @_;
    return join("\n", map { sprintf('%6.3fs %s "%s"', @$_) } @$changes);
}

# ---------------------------------------------------------------------------
my $c = SC::Cluster->new(
    members => 3,
    netns   => 1,
    cluster => sub {
        my ($m) = @_;
        return <<"EOB";
<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelSendOptions="8" channelStartOptions="15">
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Membership className="org.apache.catalina.tribes.membership.McastService" address="228.0.0.4" port="45564" frequency="500" dropTime="3000"/>
    <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver" address="$m->{addr}" port="$m->{cluster_port}" autoBind="1"/>
    <Interceptor className="org.apache.catalina.tribes.group.interceptors.TcpFailureDetector"/>
  </Channel>
</Cluster>
EOB
    },
);
my @names = $c->members;

# (a) ---------------------------------------------------------------------------
$c->start_all;
my $t_ready = time;
my $all_alive = sub {
    for my $n (@names) {
        my $p = status_of($c, $n) or return 0;
        return 0 unless ($p->{MembersAlive} // '') eq '2';
    }
    return 1;
};
my $ok = $c->wait_for($all_alive, timeout => 1.5, interval => 0.05);
my $took = time - $t_ready;
check($ok, $c, sprintf('(a) every member has MembersAlive 2 within 1.5 s (%.2fs)', $took));
for my $n (@names) {
    my $p = status_of($c, $n) || {};
    is($p->{Multicast}, '228.0.0.4:45564', "(a) $n: Multicast: 228.0.0.4:45564");
    is($p->{Membership}, 'McastService', "(a) $n: Membership: McastService");
    my $addr = $c->member($n)->{addr};
    like($p->{Receiver} // '', qr/^\Q$addr\E:\d+$/, "(a) $n: Receiver on its own address $addr");
    # the first members may have found a later one over TCP (the earlier
    # ones connect when they hear its first heartbeat); its own first
    # multicast heartbeat from the others comes within one period
    my $hb_in = $c->wait_for(sub { (status_of($c, $n) || {})->{HeartbeatsIn} },
                             timeout => 1.5 - (time - $t_ready));
    cmp_ok($hb_in || 0, '>', 0, "(a) $n: multicast heartbeats came in within 1.5 s of the start");
    cmp_ok($p->{HeartbeatsOut} // 0, '>', 0, "(a) $n: multicast heartbeats went out");
    for my $o (grep { $_ ne $n } @names) {
        my ($m) = grep { $_->{route} eq $o } @{ $p->{members} || [] };
        ok($m && $m->{state} eq 'alive' && $m->{static} eq '0',
           "(a) $n sees $o alive, not as a static member (static=0)")
            or diag explain $m;
        my $oaddr = $c->member($o)->{addr};
        like($m ? $m->{addr} : '', qr/^\Q$oaddr\E:/, "(a) $n knows $o at $oaddr");
    }
}

# (b) node3 frozen ----------------------------------------------------------------
{
    my $t0 = time;
    $c->sigstop('node3');
    my $ch = follow($c, 'node1', 'node3', $t0, 6.0, sub { $_[0]{state} eq 'dead' });
    note("(b) node3 on node1 after SIGSTOP:\n" . show($ch));
    my $sus  = first_in($ch, 'suspect');
    my $dead = first_in($ch, 'dead');
    check($sus, $c, '(b) node1 marks the frozen node3 suspect', show($ch));
    ok($sus && $sus->[0] >= 2.5, sprintf('(b) ... not before 2.5 s (%.2fs)', $sus ? $sus->[0] : -1));
    ok($sus && $sus->[0] <= 3.75, sprintf('(b) ... by ~3 s of silence (%.2fs)', $sus ? $sus->[0] : -1));
    check($dead && $dead->[0] <= 5.0, $c,
          sprintf('(b) node1 declares node3 dead by ~5 s (%.2fs)', $dead ? $dead->[0] : -1), show($ch));
    like($dead ? $dead->[2] : '', qr/TCP check/, '(b) the verdict names the TCP check');
    my @other = grep { $_->[1] ne 'alive' && $_->[1] ne 'suspect' && $_->[1] ne 'dead' } @$ch;
    ok(!@other, '(b) node3 went alive -> suspect -> dead only') or diag show($ch);

    my $t1 = time;
    $c->sigcont('node3');
    my $back = follow($c, 'node1', 'node3', $t1, 2.0, sub { $_[0]{state} eq 'alive' });
    my $alive = first_in($back, 'alive');
    check($alive, $c, sprintf('(b) SIGCONT: node3 alive again on node1 within 2 s (%.2fs)',
                              $alive ? $alive->[0] : -1), show($back));
    # and on node2, which lost it too
    ok($c->wait_for(sub { my $m = member_on($c, 'node2', 'node3'); $m && $m->{state} eq 'alive' },
                    timeout => 2), '(b) SIGCONT: node3 alive again on node2');
    ok($c->wait_for($all_alive, timeout => 3), '(b) every member has MembersAlive 2 again')
        or dump_cluster($c, '(b) after SIGCONT');
}

# (c) node2 cut off ----------------------------------------------------------------
{
    my $t0 = time;
    $c->partition('node2');
    my $chs = follow_many($c, [qw(node1 node3)], 'node2', $t0, 6.0, sub { $_[0]{state} eq 'dead' });
    my ($ch1, $ch3) = @$chs{qw(node1 node3)};
    note("(c) node2 on node1 after the partition:\n" . show($ch1));
    note("(c) node2 on node3 after the partition:\n" . show($ch3));
    for ([ node1 => $ch1 ], [ node3 => $ch3 ]) {
        my ($n, $ch) = @$_;
        my $d = first_in($ch, 'dead');
        check($d && $d->[0] <= 5.0, $c,
              sprintf("(c) $n declares the cut-off node2 dead within ~5 s (%.2fs)", $d ? $d->[0] : -1),
              show($ch));
        like($d ? $d->[2] : '', qr/TCP check/, "(c) $n: the verdict names the TCP check");
        my $s = first_in($ch, 'suspect');
        ok(!$s || $s->[0] >= 2.5, "(c) $n did not suspect node2 before dropTime");
    }
    # the two others still see each other
    my $m = member_on($c, 'node1', 'node3');
    is($m && $m->{state}, 'alive', '(c) node1 still sees node3 alive');

    my $t1 = time;
    $c->heal('node2');
    my %back;
    my $ok = $c->wait_for(sub {
        for my $n (qw(node1 node3)) {
            next if $back{$n};
            my $m = member_on($c, $n, 'node2');
            $back{$n} = time - $t1 if $m && $m->{state} eq 'alive';
        }
        return $back{node1} && $back{node3};
    }, timeout => 3);
    for my $n (qw(node1 node3)) {
        check(defined $back{$n}, $c,
              sprintf("(c) heal: node2 alive again on $n within 3 s (%.2fs)", $back{$n} // -1));
    }
    ok($c->wait_for(sub { my $m = member_on($c, 'node2', 'node1'); $m && $m->{state} eq 'alive' },
                    timeout => 3), '(c) heal: node2 sees node1 alive again');
}

for my $n (@names) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052|died \(status/,
           "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
