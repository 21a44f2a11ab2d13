#!perl
# Membership of three static members on loopback, as each member's
# /cluster-manager?auto page shows it:
#   (a) after start, every member sees the two others alive within 1 s
#       (2 x Membership frequency) of the last start;
#   (b) a member killed with SIGKILL is dead on the others within 1 s, by the
#       refused connection (not by dropTime);
#   (c) restarted, it is alive again within 2 s, with a new incarnation and
#       restarts=1;
#   (d) a member stopped with SIGTERM says goodbye: `left` within 0.5 s;
#   (e) when only the engine process dies, httpd's parent starts a new one
#       (EngineStarts 2, new EnginePid) and the peers see it come back with a
#       new incarnation.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of member_on check within);

$SIG{ALRM} = sub { die "membership.t: time limit (90 s) reached\n" };
alarm 90;

# ---------------------------------------------------------------------------
my $c = SC::Cluster->new(members => 3);
my @names = $c->members;

# (a) -----------------------------------------------------------------------
$c->start_all;
my $t_ready = time;
# the last start: the youngest engine's start, from its uptime
my $last_start = 0;
my %st;
for my $n (@names) {
    my $t = time;
    $st{$n} = status_of($c, $n);
    my $up = ($st{$n} && $st{$n}{EngineUptimeMs} =~ /^\d+$/) ? $st{$n}{EngineUptimeMs} : 0;
    $last_start = $t - $up / 1000 if $t - $up / 1000 > $last_start;
}
$last_start ||= $t_ready;
note(sprintf 'last engine start %.3fs before start_all returned', $t_ready - $last_start);

my $all_alive = sub {
    for my $n (@names) {
        my $p = status_of($c, $n) or return 0;
        return 0 unless ($p->{MembersAlive} // '') eq '2';
        for my $o (grep { $_ ne $n } @names) {
            my ($m) = grep { $_->{route} eq $o } @{ $p->{members} };
            return 0 unless $m && $m->{state} eq 'alive';
        }
    }
    return 1;
};
my $took = within(1.0, $all_alive, $last_start);
check(defined $took, $c, 'start: every member sees the two others alive (MembersAlive: 2) within 1 s of the last start')
    and note(sprintf 'all alive %.3fs after the last start', $took);
for my $n (@names) {
    # starting until the session state transfer is settled (a second or so
    # when all members start together)
    my $p;
    within(3.0, sub { $p = status_of($c, $n); return $p && $p->{EngineState} eq 'ready' });
    is($p && $p->{EngineState}, 'ready', "$n: EngineState ready (state transfer settled)");
    is($p && $p->{EngineStarts}, 1, "$n: EngineStarts 1");
    is($p && $p->{MembersKnown}, 2, "$n: MembersKnown 2");
}
my %inc;     # incarnations as seen by the others
for my $n (@names) {
    $inc{$n} = status_of($c, $n)->{Incarnation};
}
for my $n (@names) {
    for my $o (grep { $_ ne $n } @names) {
        my $m = member_on($c, $n, $o);
        is($m && $m->{incarnation}, $inc{$o}, "$n knows $o by the incarnation $o announces");
        is($m && $m->{static}, 1, "$n: $o is a static member");
        is($m && $m->{restarts}, 0, "$n: $o has restarts=0");
    }
}

# (b) kill9 node3 -----------------------------------------------------------
{
    my $t0 = time;
    $c->kill9('node3');
    my %seen;
    my $took = within(1.0, sub {
        for my $n (qw(node1 node2)) {
            next if $seen{$n};
            my $m = member_on($c, $n, 'node3');
            $seen{$n} = { %$m, t => time - $t0 } if $m && $m->{state} eq 'dead';
        }
        return $seen{node1} && $seen{node2};
    }, $t0);
    for my $n (qw(node1 node2)) {
        check($seen{$n}, $c, "kill9 node3: $n shows node3 dead within 1 s")
            and note(sprintf "$n: node3 dead after %.3fs: %s", $seen{$n}{t}, $seen{$n}{verdict});
        my $v = $seen{$n} ? $seen{$n}{verdict} : (member_on($c, $n, 'node3') || {})->{verdict};
        like($v // '', qr/refused/i, "kill9 node3: ${n}'s verdict names the refused connection");
        unlike($v // '', qr/dropTime|silent|no heartbeat/i, "kill9 node3: ${n}'s verdict is not the dropTime path");
        my $p = status_of($c, $n);
        is($p && $p->{MembersAlive}, 1, "kill9 node3: $n has MembersAlive 1");
    }
    # it stays dead (does not flap back) while node3 is down
    sleep 0.3;
    for my $n (qw(node1 node2)) {
        my $m = member_on($c, $n, 'node3');
        is($m && $m->{state}, 'dead', "kill9 node3: $n still shows node3 dead 0.3 s later");
    }
}

# (c) restart node3 ----------------------------------------------------------
{
    my $t0 = time;
    $c->restart('node3');
    my $new_inc = status_of($c, 'node3')->{Incarnation};
    isnt($new_inc, $inc{node3}, "restart node3: its engine has a new incarnation ($new_inc)");
    my %seen;
    my $took = within(2.0, sub {
        for my $n (qw(node1 node2)) {
            next if $seen{$n};
            my $m = member_on($c, $n, 'node3');
            $seen{$n} = { %$m, t => time - $t0 }
                if $m && $m->{state} eq 'alive' && $m->{incarnation} ne $inc{node3};
        }
        return $seen{node1} && $seen{node2};
    }, $t0);
    for my $n (qw(node1 node2)) {
        check($seen{$n}, $c, "restart node3: $n shows node3 alive with a new incarnation within 2 s")
            and note(sprintf "$n: node3 alive again after %.3fs", $seen{$n}{t});
        my $m = $seen{$n} || member_on($c, $n, 'node3') || {};
        is($m->{incarnation}, $new_inc, "restart node3: $n has node3's new incarnation");
        is($m->{restarts}, 1, "restart node3: $n shows restarts=1 for node3");
        my $p = status_of($c, $n);
        is($p && $p->{MembersKnown}, 2, "restart node3: $n still knows 2 members (no duplicate entry)");
        is($p && $p->{MembersAlive}, 2, "restart node3: $n has MembersAlive 2 again");
    }
    $inc{node3} = $new_inc;
}

# (d) stop node2 (SIGTERM) ---------------------------------------------------
{
    my $t0 = time;
    my $clean = $c->stop('node2');
    my $t_stopped = time - $t0;
    ok($clean, sprintf 'stop node2: went down on SIGTERM (%.3fs)', $t_stopped);
    my $seen;
    my $took = within(0.5, sub {
        my $m = member_on($c, 'node1', 'node2');
        $seen = { %$m, t => time - $t0 } if $m && $m->{state} eq 'left';
        return $seen;
    }, $t0);
    check($seen, $c, 'stop node2: node1 shows node2 left within 0.5 s of the SIGTERM')
        and note(sprintf 'node2 left after %.3fs', $seen->{t});
    my $m = $seen || member_on($c, 'node1', 'node2') || {};
    is($m->{verdict}, 'said goodbye', 'stop node2: verdict "said goodbye"');
    # and never dead in between
    sleep 0.2;
    my $after = member_on($c, 'node1', 'node2') || {};
    is($after->{state}, 'left', 'stop node2: still left, not dead, a moment later');
    my $m3 = member_on($c, 'node3', 'node2') || {};
    is($m3->{state}, 'left', 'stop node2: node3 also shows node2 left');
}

# (e) the engine process of node1 dies ----------------------------------------
{
    my $p1 = status_of($c, 'node1');
    my $epid = $p1->{EnginePid};
    my $old_inc = $p1->{Incarnation};
    my @ours = $c->pids('node1');
    ok($epid && (grep { $_ == $epid } @ours),
       "node1's EnginePid $epid is one of node1's processes (@ours)");
    ok($epid && $epid != $c->member('node1')->{pid}, 'the engine is not the httpd parent');
    KILL_ENGINE: {
        # the premise was asserted just above; without it the rest cannot run
        unless ($epid && (grep { $_ == $epid } @ours)
                && $epid != $c->member('node1')->{pid}) {
            fail('engine killed: no engine pid of ours to kill') for 1 .. 8;
            last KILL_ENGINE;
        }
        my $t0 = time;
        kill 'KILL', $epid;
        my $new;
        my $took = within(3.5, sub {
            my $p = status_of($c, 'node1') or return 0;
            $new = $p if ($p->{EngineStarts} // '') eq '2' && $p->{EnginePid}
                && $p->{EnginePid} ne $epid && $p->{EngineState} eq 'ready';
            return $new;
        }, $t0);
        check($new, $c, 'engine killed: node1 runs a new engine (EngineStarts 2, new EnginePid, ready) within ~3 s')
            and note(sprintf 'new engine pid %s after %.3fs', $new->{EnginePid}, $took);
        ok(!SC::Cluster::pid_alive($epid), "the old engine $epid is gone");
        ok($c->is_running('node1'), 'node1 httpd itself still runs');
        isnt($new && $new->{Incarnation}, $old_inc, 'the new engine has a new incarnation');
        my $seen;
        my $t_back = within(3.0, sub {
            my $m = member_on($c, 'node3', 'node1');
            $seen = $m if $m && $m->{state} eq 'alive' && $new
                && $m->{incarnation} eq $new->{Incarnation};
            return $seen;
        });
        check($seen, $c, 'engine killed: node3 sees node1 alive again with the new incarnation')
            and note(sprintf 'node3 saw node1 back %.3fs later', $t_back);
        is($seen && $seen->{restarts}, 1, 'node3 counts one restart of node1');
        my $m1;
        within(2.0, sub {
            $m1 = member_on($c, 'node1', 'node3');
            return $m1 && $m1->{state} eq 'alive';
        });
        ok($m1 && $m1->{state} eq 'alive', 'the new engine of node1 sees node3 alive')
            or diag explain $m1;
        like($c->error_log('node1'), qr/cluster engine \(pid $epid\) died/,
             "node1's error_log says the engine $epid died and a new one starts");
    }
}

# no crash anywhere
for my $n (@names) {
    my $log = $c->error_log($n);
    unlike($log, qr/exit signal|Segmentation|AH00052/, "$n: no child crashed (error_log)");
}

$c->teardown;
done_testing();
