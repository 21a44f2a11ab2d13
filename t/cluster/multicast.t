#!perl
# Multicast membership (McastService) with TcpFailureDetector, three members
# each in its own network namespace behind a private bridge:
#   (a) all see all by multicast (Multicast: 228.0.0.4:45564, MembersAlive 2,
#       heartbeats in and out);
#   (b) node3 frozen (SIGSTOP): node1 suspects it (FdSuspected +1) and
#       declares it dead after the TCP check (FdDead +1): its log (SC1221)
#       has exactly "alive -> suspect", then "suspect -> dead" with a verdict
#       naming the TCP check (within connectTimeout, 1000 ms) after a silence
#       of at least dropTime + that (the module suspects only after dropTime
#       of silence, then waits for the check); thawed (SIGCONT) it is alive
#       again;
#   (c) node2 cut off the bridge: node1 and node3 declare it dead the same
#       way; healed, it is alive again on both.
# No duration is measured against a budget: deadlines are polling limits;
# the causes are read from the counters and the verdicts.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(need status_of member_on dump_cluster check need_netns num);

need_netns();

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


# The changes of $route's state that $n logged (SC1221) after byte $off:
# ("alive -> suspect", "suspect -> dead: verdict", ...)
sub transitions {
    my ($c, $n, $route, $off) = @_;
    my $log = substr($c->error_log($n), $off);
    return $log =~ /SC1221: member \Q$route\E \([^)]*\): (\w+ -> \w+(?:: [^\n]*)?)$/mg;
}

# The dead verdict's figures are the module's own: it suspects a member once
# it was silent for more than dropTime, and declares it dead when the TCP
# check had no answer within its timeout, so the silence it reports then is
# at least dropTime + that timeout (more on a slow machine, never less).
sub check_dead_verdict {
    my ($v, $label) = @_;
    like($v, qr/^no answer to the TCP check within \d+ ms \(connectTimeout\) after \d+ ms of silence$/,
         "$label: the verdict names the TCP check after a silence");
    my ($check, $silence) = $v =~ /within (\d+) ms \(connectTimeout\) after (\d+) ms of silence/;
    cmp_ok($silence // 0, '>=', 3000 + ($check // 1e9),
           "$label: suspected only after dropTime (3000 ms) of silence, then the check's "
           . ($check // '?') . ' ms');
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
    members  => 3,
    netns    => 1,
    loglevel => 'notice',      # SC1221: every change of a member's state
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
my $all_alive = sub {
    for my $n (@names) {
        my $p = status_of($c, $n) or return 0;
        return 0 unless ($p->{MembersAlive} // '') eq '2';
    }
    return 1;
};
my $ok = $c->wait_for($all_alive, timeout => 20, interval => 0.05);
check($ok, $c, '(a) every member has MembersAlive 2');
for my $n (@names) {
    my $p = status_of($c, $n) || {};
    is($p->{Multicast}, '228.0.0.4:45564', "(a) $n: Multicast: 228.0.0.4:45564");
    is($p->{Membership}, 'McastService', "(a) $n: Membership: McastService");
    my $addr = $c->member($n)->{addr};
    like($p->{Receiver} // '', qr/^\Q$addr\E:\d+$/, "(a) $n: Receiver on its own address $addr");
    # the first members may have found a later one over TCP (the earlier
    # ones connect when they hear its first heartbeat); multicast heartbeats
    # from the others come in all the same
    my $hb_in = $c->wait_for(sub { (status_of($c, $n) || {})->{HeartbeatsIn} }, timeout => 20);
    cmp_ok($hb_in || 0, '>', 0, "(a) $n: multicast heartbeats came in");
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
    my $p0 = status_of($c, 'node1') || {};
    my $off = length $c->error_log('node1');
    my $t0 = time;
    $c->sigstop('node3');
    my $ch = follow($c, 'node1', 'node3', $t0, 30, sub { $_[0]{state} eq 'dead' });
    note("(b) node3 on node1 after SIGSTOP:\n" . show($ch));
    my $p1 = status_of($c, 'node1') || {};
    my $dead = first_in($ch, 'dead');
    check($dead, $c, '(b) node1 declares the frozen node3 dead', show($ch));
    is(num($p1, 'FdSuspected') - num($p0, 'FdSuspected'), 1, '(b) node1 suspected it first (FdSuspected +1)');
    is(num($p1, 'FdDead') - num($p0, 'FdDead'), 1, '(b) node1 declared one member dead (FdDead +1)');
    my @tr = transitions($c, 'node1', 'node3', $off);
    is(scalar @tr, 2, '(b) node1 logged two changes of node3 (SC1221)') or diag(join "\n", @tr);
    is($tr[0] // '', 'alive -> suspect', '(b) first alive -> suspect');
    like($tr[1] // '', qr/^suspect -> dead: /, '(b) then suspect -> dead');
    my ($v) = ($tr[1] // '') =~ /^suspect -> dead: (.*)$/;
    check_dead_verdict($v // '', '(b) node1');
    is($dead ? $dead->[2] : '', $v // '', '(b) the page shows that verdict');

    my $t1 = time;
    $c->sigcont('node3');
    my $back = follow($c, 'node1', 'node3', $t1, 20, sub { $_[0]{state} eq 'alive' });
    my $alive = first_in($back, 'alive');
    check($alive, $c, '(b) SIGCONT: node3 alive again on node1', show($back));
    # and on node2, which lost it too
    ok($c->wait_for(sub { my $m = member_on($c, 'node2', 'node3'); $m && $m->{state} eq 'alive' },
                    timeout => 20), '(b) SIGCONT: node3 alive again on node2');
    ok($c->wait_for($all_alive, timeout => 20), '(b) every member has MembersAlive 2 again')
        or dump_cluster($c, '(b) after SIGCONT');
    # the others gave up their connections to node3 when they found it dead;
    # thawed, node3 finds them closed and checks their members (a lost
    # connection's check): (c) begins once no such check is running, so that
    # its verdicts are its own
    my $checking = sub {
        join ' ', map {
            my $n = $_;
            map { "$n:$_->{route}" } grep { ($_->{verdict} // '') =~ /: checking$/ }
                @{ (status_of($c, $n) || {})->{members} || [] }
        } qw(node1 node2 node3);
    };
    my $still = '';
    ok($c->wait_for(sub { ($still = $checking->()) eq '' }, timeout => 20),
       '(b) ... and no member\'s check of a lost connection is running any more')
        or diag("still checking: $still");
}

# (c) node2 cut off ----------------------------------------------------------------
{
    my %p0 = map { $_ => status_of($c, $_) || {} } qw(node1 node3);
    my %off = map { $_ => length $c->error_log($_) } qw(node1 node3);
    my $t0 = time;
    $c->partition('node2');
    my $chs = follow_many($c, [qw(node1 node3)], 'node2', $t0, 30, sub { $_[0]{state} eq 'dead' });
    my ($ch1, $ch3) = @$chs{qw(node1 node3)};
    note("(c) node2 on node1 after the partition:\n" . show($ch1));
    note("(c) node2 on node3 after the partition:\n" . show($ch3));
    for ([ node1 => $ch1 ], [ node3 => $ch3 ]) {
        my ($n, $ch) = @$_;
        my $d = first_in($ch, 'dead');
        check($d, $c, "(c) $n declares the cut-off node2 dead", show($ch));
        my @tr = transitions($c, $n, 'node2', $off{$n});
        is(join(' | ', map { s/: .*//r } @tr), 'alive -> suspect | suspect -> dead',
           "(c) $n logged node2 alive -> suspect, then suspect -> dead (SC1221)") or diag(join "\n", @tr);
        my ($v) = ($tr[-1] // '') =~ /^suspect -> dead: (.*)$/;
        check_dead_verdict($v // '', "(c) $n");
        is(num(status_of($c, $n), 'FdDead') - num($p0{$n}, 'FdDead'), 1, "(c) $n: FdDead +1");
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
    }, timeout => 20);
    for my $n (qw(node1 node3)) {
        check(defined $back{$n}, $c, "(c) heal: node2 alive again on $n");
    }
    ok($c->wait_for(sub { my $m = member_on($c, 'node2', 'node1'); $m && $m->{state} eq 'alive' },
                    timeout => 20), '(c) heal: node2 sees node1 alive again');
}

for my $n (@names) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052|died \(status/,
           "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
