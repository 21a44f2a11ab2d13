#!perl
# Two members with the same SessionClusterRoute (node1), static members of
# each other, on loopback:
#   (a) node2 answers with Route: node1; node1 starts first (its engine is up
#       before node2 is started: the engine start times decide who is
#       first); both error logs name the duplicate route node1 (SC1222): the
#       first member says the other is refused, the later one that it is
#       refused itself; while each handles more of the other's messages after
#       that, neither shows the other alive, SC1222 is not repeated (once per
#       claimant and minute), and the members do not reconnect to each other
#       in a tight loop (connections and messages per second of the engine's
#       own uptime, a bound no slowness of the machine can exceed);
#   (b) with a third member (its own route): the one that came later is
#       refused on it (SC1224, once), the first stays alive there, also after
#       node3 has handled more messages of both.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of member_on dump_cluster check);
SC::Test::dump_options(tail => 8, cut => 240);   # (a flood of one line would hide everything else: short lines)

$SIG{ALRM} = sub { die "route_conflict.t: time limit (120 s) reached\n" };
alarm 120;

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# the Member: line on $n's page for the member listening on $port
sub member_at {
    my ($c, $n, $port) = @_;
    my $p = status_of($c, $n) or return undef;
    my ($m) = grep { ($_->{addr} // '') =~ /:\Q$port\E$/ } @{ $p->{members} };
    return $m;
}

sub lines_matching {
    my ($text, $re) = @_;
    return grep { /$re/ } split /\n/, $text;
}

# ---------------------------------------------------------------------------
# (a) two members, one route
# ---------------------------------------------------------------------------
{
    my $c = SC::Cluster->new(members => 2);
    $c->configure('node2', route => 'node1');
    my ($port1, $port2) = map { $c->member($_)->{cluster_port} } qw(node1 node2);

    # node1 first: its engine is up before node2 is even started
    $c->start('node1');
    my $p1;
    check($c->wait_for(sub { $p1 = status_of($c, 'node1');
                             $p1 && ($p1->{EnginePid} // 0) > 0 && ($p1->{EngineUptimeMs} // 0) > 0 },
                       timeout => 20), $c, '(a) node1\'s engine is up (it is the first)');
    is($p1 && $p1->{Route}, 'node1', 'node1 answers with Route: node1');
    $c->start('node2');
    is((status_of($c, 'node2') || {})->{Route}, 'node1', 'node2 answers with Route: node1');

    my %line;
    $c->wait_for(sub {
        for my $n (qw(node1 node2)) {
            ($line{$n}) = lines_matching($c->error_log($n, since_start => 1),
                                         qr/SC1222\b.*\bnode1\b/) unless $line{$n};
        }
        return $line{node1} && $line{node2};
    }, timeout => 20);
    for my $n (qw(node1 node2)) {
        check($line{$n}, $c, "(a) $n error_log has an SC1222 error naming the duplicate route node1")
            and note("$n: $line{$n}");
        like($line{$n} // '', qr/\[session_cluster:error\]/, "(a) $n: logged at level error");
    }
    like($line{node1} // '', qr/\bit is refused\b/, '(a) node1 (first) says the other member is refused');
    like($line{node2} // '', qr/this member is refused/, '(a) node2 (later) says it is refused itself');

    # they carry on: each handles more of the other's messages (more claims
    # of the route); all the while no membership, and no repetition
    my %st0 = map { $_ => status_of($c, $_) || {} } qw(node1 node2);
    my (@seen_alive, %st1, $polls);
    my $more = $c->wait_for(sub {
        $polls++;
        for ([ node1 => $port2 ], [ node2 => $port1 ]) {
            my ($n, $p) = @$_;
            my $m = member_at($c, $n, $p);
            push @seen_alive, "$n sees :$p $m->{state}" if $m && $m->{state} eq 'alive';
        }
        %st1 = map { $_ => status_of($c, $_) || {} } qw(node1 node2);
        return !grep { ($st1{$_}{MsgsIn} // 0) < ($st0{$_}{MsgsIn} // 1e9) + 2 } qw(node1 node2);
    }, timeout => 20);
    check($more, $c, '(a) each member handled at least 2 more messages of the other ('
          . join(', ', map { "$_ MsgsIn $st0{$_}{MsgsIn} -> " . ($st1{$_}{MsgsIn} // '?') } qw(node1 node2)) . ')');
    ok(!@seen_alive, "(a) neither member ever shows the other alive ($polls polls)") or diag join("\n", @seen_alive);
    for ([ node1 => $port2 ], [ node2 => $port1 ]) {
        my ($n, $p) = @$_;
        my $st = status_of($c, $n) || {};
        is($st->{MembersAlive}, 0, "(a) $n: MembersAlive 0");
        my $m = member_at($c, $n, $p);
        ok($m && $m->{state} ne 'alive', "(a) $n: the member at :$p is not alive (state "
           . ($m ? $m->{state} : 'none') . ", verdict \"" . ($m ? $m->{verdict} : '') . '")');
    }
    for my $n (qw(node1 node2)) {
        my @all = lines_matching($c->error_log($n, since_start => 1), qr/SC1222/);
        check(@all == 1, $c, sprintf("(a) $n: SC1222 logged once, not for each later claim (%d)", scalar @all),
              @all);
    }
    # refused or not, the two must not reconnect to each other in a tight
    # loop: a static member is connected with backoff and pinged every
    # 500 ms, a few connections and messages a second of the engine's own
    # uptime (a loop makes thousands); a slow machine makes fewer, not more
    for my $n (qw(node1 node2)) {
        my ($a0, $a1) = ($st0{$n}, $st1{$n});
        my $secs = (($a1->{EngineUptimeMs} // 0) - ($a0->{EngineUptimeMs} // 0)) / 1000;
        my $d = (($a1->{Connects} // 1e9) - ($a0->{Connects} // 0)) + (($a1->{MsgsIn} // 1e9) - ($a0->{MsgsIn} // 0));
        my $rate = $d / ($secs > 1 ? $secs : 1);
        check($rate <= 20, $c,
              sprintf("(a) $n: no reconnect loop with the refused member (%d connections and messages in "
                      . "in %.1f s of engine uptime; at most 20 a second)", $d, $secs));
    }
    for my $n (qw(node1 node2)) {
        unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052|died \(status/,
               "(a) $n: no crash in the error_log");
    }
    $c->teardown;
}

# ---------------------------------------------------------------------------
# (b) a third member sees both
# ---------------------------------------------------------------------------
{
    my $c = SC::Cluster->new(members => 3);
    $c->configure('node2', route => 'node1');
    my %port = map { $_ => $c->member($_)->{cluster_port} } $c->members;

    $c->start('node3');
    $c->start('node1');
    ok($c->wait_for(sub { my $m = member_at($c, 'node3', $port{node1}); $m && $m->{state} eq 'alive' },
                    timeout => 20), '(b) node3 sees the first node1 alive')
        or dump_cluster($c, '(b) startup');
    # (node1 holds the route on node3 now: node2 is the later one)
    $c->start('node2');

    my $line;
    $c->wait_for(sub {
        ($line) = lines_matching($c->error_log('node3', since_start => 1), qr/SC1224\b.*\bnode1\b/);
        return $line;
    }, timeout => 20);
    check($line, $c, '(b) node3 logs SC1224 for the second member claiming route node1')
        and note("node3: $line");
    like($line // '', qr/:\Q$port{node2}\E\b.*claims route node1.*:\Q$port{node1}\E\b/,
         '(b) ... naming the later member (node2) as the claimant and node1 as the holder');
    like($line // '', qr/\[session_cluster:error\]/, '(b) ... at level error');

    # not "after a while": once node3 has handled 2 more messages of each
    my %in0 = map { $_ => (member_at($c, 'node3', $port{$_}) || {})->{msgs_in} // 1e9 } qw(node1 node2);
    my %in1;
    my $more = $c->wait_for(sub {
        %in1 = map { $_ => (member_at($c, 'node3', $port{$_}) || {})->{msgs_in} // 0 } qw(node1 node2);
        return !grep { $in1{$_} < $in0{$_} + 2 } qw(node1 node2);
    }, timeout => 20);
    check($more, $c, '(b) node3 handled 2 more messages of each of them ('
          . join(', ', map { "$_ $in0{$_} -> $in1{$_}" } qw(node1 node2)) . ')');
    my $m1 = member_at($c, 'node3', $port{node1}) || {};
    my $m2 = member_at($c, 'node3', $port{node2}) || {};
    is($m1->{state}, 'alive', '(b) node3: the first node1 stays alive');
    is($m1->{route}, 'node1', '(b) node3: ... with route node1');
    is($m2->{state}, 'refused', '(b) node3: the later one is refused');
    like($m2->{verdict} // '', qr/node1/, "(b) node3: its verdict names the route (\"" . ($m2->{verdict} // '') . '")');
    my $st3 = status_of($c, 'node3') || {};
    is($st3->{MembersAlive}, 1, '(b) node3: MembersAlive 1');
    # the claimant's messages do not come faster than the holder's heartbeats
    # (counted against each other on node3: no clock)
    my ($d1, $d2) = (($m1->{msgs_in} // 0) - $in0{node1}, ($m2->{msgs_in} // 1e9) - $in0{node2});
    check($d2 <= 2 * $d1 + 4, $c, "(b) node3: no flood from the refused member ($d2 messages while the "
          . "holder sent $d1)");

    my (undef, undef, $pb) = SC::Test::page_ping($c, 'node3', 'node1');
    like($pb // '', qr/^Result: acknowledged$/m, '(b) ping node3 -> node1 acknowledged (by the first one)')
        or diag $pb;
    my @dups = lines_matching($c->error_log('node3', since_start => 1), qr/SC1224/);
    is(scalar @dups, 1, '(b) node3 logs SC1224 once, not for each later claim') or diag join("\n", @dups);
    for my $n ($c->members) {
        unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052|died \(status/,
               "(b) $n: no crash in the error_log");
    }
    $c->teardown;
}

done_testing();
