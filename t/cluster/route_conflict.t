#!perl
# Two members with the same SessionClusterRoute (node1), static members of
# each other, on loopback:
#   (a) both error logs name the duplicate route node1 (SC1222) within 2 s:
#       the first member says the other is refused, the later one that it is
#       refused itself; neither shows the other alive; the error is not
#       repeated in a flood, and the members do not reconnect to each other
#       in a tight loop;
#   (b) with a third member (its own route): the one that came later is
#       refused on it (SC1224), the first stays alive there.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of dump_cluster check);
SC::Test::dump_options(tail => 8, cut => 240);   # (a flood of one line would hide everything else: short lines)

$SIG{ALRM} = sub { die "route_conflict.t: time limit (60 s) reached\n" };
alarm 60;

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
    like($c->config_text('node2'), qr/^SessionClusterRoute node1$/m,
         'node2 is configured with SessionClusterRoute node1');
    my ($port1, $port2) = map { $c->member($_)->{cluster_port} } qw(node1 node2);

    # node1 first, then node2: node2 is the later one
    $c->start('node1');
    sleep 0.2;
    my $t0 = time;
    $c->start('node2');
    is((status_of($c, 'node2') || {})->{Route}, 'node1', 'node2 answers with Route: node1');

    my %line;
    my $ok = $c->wait_for(sub {
        for my $n (qw(node1 node2)) {
            ($line{$n}) = lines_matching($c->error_log($n, since_start => 1),
                                         qr/SC1222\b.*\bnode1\b/) unless $line{$n};
        }
        return $line{node1} && $line{node2};
    }, timeout => 2);
    my $took = time - $t0;
    for my $n (qw(node1 node2)) {
        check($line{$n}, $c, "(a) $n error_log has an SC1222 error naming the duplicate route node1 within 2 s")
            and note("$n: $line{$n}");
        like($line{$n} // '', qr/\[session_cluster:error\]/, "(a) $n: logged at level error");
    }
    like($line{node1} // '', qr/\bit is refused\b/, '(a) node1 (first) says the other member is refused');
    like($line{node2} // '', qr/this member is refused/, '(a) node2 (later) says it is refused itself');

    # let them carry on for a while: still no membership, and no flood
    my $t_watch = time;
    my @seen_alive;
    while (time - $t_watch < 1.5) {
        for ([ node1 => $port2 ], [ node2 => $port1 ]) {
            my ($n, $p) = @$_;
            my $m = member_at($c, $n, $p);
            push @seen_alive, "$n sees :$p $m->{state}" if $m && $m->{state} eq 'alive';
        }
        sleep 0.1;
    }
    ok(!@seen_alive, '(a) neither member ever shows the other alive') or diag join("\n", @seen_alive);
    for ([ node1 => $port2 ], [ node2 => $port1 ]) {
        my ($n, $p) = @$_;
        my $st = status_of($c, $n) || {};
        is($st->{MembersAlive}, 0, "(a) $n: MembersAlive 0");
        my $m = member_at($c, $n, $p);
        ok($m && $m->{state} ne 'alive', "(a) $n: the member at :$p is not alive (state "
           . ($m ? $m->{state} : 'none') . ", verdict \"" . ($m ? $m->{verdict} : '') . '")');
    }
    my $elapsed = time - $t0;
    for my $n (qw(node1 node2)) {
        my @all = lines_matching($c->error_log($n, since_start => 1), qr/SC1222/);
        my $st = status_of($c, $n) || {};
        check(@all <= 50, $c,
              sprintf("(a) $n: SC1222 logged a bounded number of times (%d in %.1fs; at most 50)",
                      scalar @all, $elapsed),
              "MsgsIn $st->{MsgsIn}, MsgsOut $st->{MsgsOut} on $n: a reconnect loop?");
    }
    # refused or not, the two must not reconnect to each other in a tight
    # loop: a static member is connected with backoff and pinged every 500 ms,
    # which is a few dozen frames in these ~2 s, not thousands
    for ([ node1 => $port2 ], [ node2 => $port1 ]) {
        my ($n, $p) = @$_;
        my $st = status_of($c, $n) || {};
        my $m = member_at($c, $n, $p) || {};
        check(($st->{MsgsIn} // 1e9) <= 200 && ($m->{msgs_out} // 1e9) <= 200, $c,
              sprintf("(a) $n: no reconnect loop with the refused member (MsgsIn %s, msgs_out to it %s "
                      . "in %.1fs; at most 200 each)", $st->{MsgsIn} // '?', $m->{msgs_out} // '?',
                      time - $t0));
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
                    timeout => 2), '(b) node3 sees the first node1 alive')
        or dump_cluster($c, '(b) startup');
    sleep 0.2;
    $c->start('node2');

    my $line;
    $c->wait_for(sub {
        ($line) = lines_matching($c->error_log('node3', since_start => 1), qr/SC1224\b.*\bnode1\b/);
        return $line;
    }, timeout => 2);
    check($line, $c, '(b) node3 logs SC1224 for the second member claiming route node1 within 2 s')
        and note("node3: $line");
    like($line // '', qr/:\Q$port{node2}\E\b.*claims route node1.*:\Q$port{node1}\E\b/,
         '(b) ... naming the later member (node2) as the claimant and node1 as the holder');
    like($line // '', qr/\[session_cluster:error\]/, '(b) ... at level error');

    sleep 0.5;
    my $m1 = member_at($c, 'node3', $port{node1}) || {};
    my $m2 = member_at($c, 'node3', $port{node2}) || {};
    is($m1->{state}, 'alive', '(b) node3: the first node1 stays alive');
    is($m1->{route}, 'node1', '(b) node3: ... with route node1');
    is($m2->{state}, 'refused', '(b) node3: the later one is refused');
    like($m2->{verdict} // '', qr/node1/, "(b) node3: its verdict names the route (\"" . ($m2->{verdict} // '') . '")');
    my $st3 = status_of($c, 'node3') || {};
    is($st3->{MembersAlive}, 1, '(b) node3: MembersAlive 1');

    my (undef, undef, $pb) = $c->get('node3', '/cluster-manager?ping=node1', timeout => 8);
    like($pb // '', qr/^Result: acknowledged$/m, '(b) ping node3 -> node1 acknowledged (by the first one)')
        or diag $pb;
    my @dups = lines_matching($c->error_log('node3', since_start => 1), qr/SC1224/);
    cmp_ok(scalar @dups, '<=', 10, '(b) node3 does not repeat SC1224 in a flood (' . scalar(@dups) . ')');
    for my $n ($c->members) {
        unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052|died \(status/,
               "(b) $n: no crash in the error_log");
    }
    $c->teardown;
}

done_testing();
