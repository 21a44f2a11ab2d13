#!perl
# Membership of three static members on loopback, as each member's
# /cluster-manager?auto page shows it:
#   (a) after start, every member sees the two others alive;
#   (b) a member killed with SIGKILL is dead on the others, by the refused
#       connection (the verdict), not by dropTime; it stays dead while the
#       others keep trying it (their connect_failures for it grow);
#   (c) restarted, it is alive again with a new incarnation and restarts=1;
#   (d) a member stopped with SIGTERM says goodbye: `left`, verdict "said
#       goodbye", on node1 and node3, and never dead while node1 keeps trying
#       it (its connect_failures grow);
#   (e) when only the engine process dies, httpd's parent starts a new one
#       (EngineStarts 2, new EnginePid) and the peers see it come back with a
#       new incarnation.
# No duration is asserted (how fast a death is seen is a benchmark's
# business); every deadline is a generous polling limit.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of member_on check within);

my $c;

$SIG{ALRM} = sub { die "membership.t: time limit (180 s) reached\n" };
alarm 180;

# the states $n shows for $route (recorded in @$seen, each change once)
# until $until->($member_line) holds, within a polling limit of 20 s;
# returns the line that made $until true, or undef
sub watch {
    my ($n, $route, $seen, $until) = @_;
    my $hit;
    within(20, sub {
        my $m = member_on($c, $n, $route);
        my $st = $m ? $m->{state} : '(no line)';
        push @$seen, $st unless @$seen && $seen->[-1] eq $st;
        $hit = $m if $m && $until->($m);
        return $hit;
    });
    return $hit;
}

# ---------------------------------------------------------------------------
$c = SC::Cluster->new(members => 3);
my @names = $c->members;

# (a) -----------------------------------------------------------------------
$c->start_all;

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
check(defined within(20, $all_alive), $c, 'start: every member sees the two others alive (MembersAlive: 2)');
for my $n (@names) {
    # starting until the session state transfer is settled (a second or so
    # when all members start together)
    my $p;
    within(20, sub { $p = status_of($c, $n); return $p && $p->{EngineState} eq 'ready' });
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
    $c->kill9('node3');
    my (%seen, %dead);
    for my $n (qw(node1 node2)) {
        $seen{$n} = [];
        $dead{$n} = watch($n, 'node3', $seen{$n}, sub { $_[0]{state} eq 'dead' });
    }
    for my $n (qw(node1 node2)) {
        check($dead{$n}, $c, "kill9 node3: $n shows node3 dead", "states seen: @{ $seen{$n} }")
            and note("$n: node3 dead: $dead{$n}{verdict}");
        my $v = $dead{$n} ? $dead{$n}{verdict} : (member_on($c, $n, 'node3') || {})->{verdict};
        like($v // '', qr/refused/i, "kill9 node3: ${n}'s verdict names the refused connection");
        unlike($v // '', qr/dropTime|silent|no heartbeat/i, "kill9 node3: ${n}'s verdict is not the dropTime path");
        my $p = status_of($c, $n);
        is($p && $p->{MembersAlive}, 1, "kill9 node3: $n has MembersAlive 1");
    }
    # it stays dead (does not flap back) while node3 is down: watched until
    # each has tried node3 again and been refused
    for my $n (qw(node1 node2)) {
        my $f0 = ($dead{$n} || {})->{connect_failures} // 0;
        my @after;
        my $tried = watch($n, 'node3', \@after, sub { ($_[0]{connect_failures} // 0) >= $f0 + 1 });
        ok($tried, "kill9 node3: $n tried node3 again (connect_failures $f0 -> "
                   . ($tried ? $tried->{connect_failures} : '?') . ')');
        is("@after", 'dead', "kill9 node3: meanwhile $n showed node3 dead only")
            or diag("states seen: @after");
    }
}

# (c) restart node3 ----------------------------------------------------------
{
    $c->restart('node3');
    my $new_inc = status_of($c, 'node3')->{Incarnation};
    isnt($new_inc, $inc{node3}, "restart node3: its engine has a new incarnation ($new_inc)");
    my %seen;
    within(20, sub {
        for my $n (qw(node1 node2)) {
            next if $seen{$n};
            my $m = member_on($c, $n, 'node3');
            $seen{$n} = $m if $m && $m->{state} eq 'alive' && $m->{incarnation} ne $inc{node3};
        }
        return $seen{node1} && $seen{node2};
    });
    for my $n (qw(node1 node2)) {
        check($seen{$n}, $c, "restart node3: $n shows node3 alive with a new incarnation");
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
    my $clean = $c->stop('node2');
    ok($clean, 'stop node2: went down on SIGTERM');
    my @states;
    my $left = watch('node1', 'node2', \@states, sub { $_[0]{state} eq 'left' });
    check($left, $c, 'stop node2: node1 shows node2 left', "states seen: @states");
    is($left && $left->{verdict}, 'said goodbye', 'stop node2: verdict "said goodbye"');
    # and never dead, while node1 tries node2 again (refused)
    my $f0 = ($left || {})->{connect_failures} // 0;
    my @after;
    my $tried = watch('node1', 'node2', \@after, sub { ($_[0]{connect_failures} // 0) >= $f0 + 1 });
    ok($tried, "stop node2: node1 tried node2 again (connect_failures $f0 -> "
               . ($tried ? $tried->{connect_failures} : '?') . ')');
    is("@after", 'left', 'stop node2: meanwhile node1 showed node2 left only (never dead)')
        or diag("states seen: @after");
    unlike("@states", qr/dead/, 'stop node2: node1 did not show node2 dead before it left either')
        or diag("states seen: @states");
    my @s3;
    my $m3 = watch('node3', 'node2', \@s3, sub { $_[0]{state} eq 'left' });
    ok($m3, 'stop node2: node3 also shows node2 left') or diag("states seen: @s3");
    is($m3 && $m3->{verdict}, 'said goodbye', 'stop node2: node3 says "said goodbye" too');
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
        kill 'KILL', $epid;
        my $new;
        within(20, sub {
            my $p = status_of($c, 'node1') or return 0;
            $new = $p if ($p->{EngineStarts} // '') eq '2' && $p->{EnginePid}
                && $p->{EnginePid} ne $epid && $p->{EngineState} eq 'ready';
            return $new;
        });
        check($new, $c, 'engine killed: node1 runs a new engine (EngineStarts 2, new EnginePid, ready)')
            and note("new engine pid $new->{EnginePid}");
        ok(!SC::Cluster::pid_alive($epid), "the old engine $epid is gone");
        ok($c->is_running('node1'), 'node1 httpd itself still runs');
        isnt($new && $new->{Incarnation}, $old_inc, 'the new engine has a new incarnation');
        my $seen;
        within(20, sub {
            my $m = member_on($c, 'node3', 'node1');
            $seen = $m if $m && $m->{state} eq 'alive' && $new
                && $m->{incarnation} eq $new->{Incarnation};
            return $seen;
        });
        check($seen, $c, 'engine killed: node3 sees node1 alive again with the new incarnation');
        is($seen && $seen->{restarts}, 1, 'node3 counts one restart of node1');
        my $m1;
        within(20, sub {
            $m1 = member_on($c, 'node1', 'node3');
            return $m1 && $m1->{state} eq 'alive';
        });
        ok($m1 && $m1->{state} eq 'alive', 'the new engine of node1 sees node3 alive')
            or diag explain $m1;
        like($c->error_log('node1'), qr/SC1238: cluster engine \(pid $epid\) died \(status \d+\): starting a new one/,
             "node1's error_log says the engine $epid died and a new one starts (SC1238)");
    }
}

# no crash anywhere
for my $n (@names) {
    my $log = $c->error_log($n);
    unlike($log, qr/exit signal|Segmentation|AH00052/, "$n: no child crashed (error_log)");
}

$c->teardown;
done_testing();
