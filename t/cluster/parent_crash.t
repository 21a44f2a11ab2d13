#!perl
# A crash of httpd's parent process alone (kill -9 of the pid in its pid file;
# its MPM children and its cluster engine are not touched) is a crash of the
# member, never an orderly leave.  Three static members run the demo
# application at /app; node1 is the one whose parent is killed.  Twice:
#   A. every member's Manager says expireSessionsOnShutdown="true" (an orderly
#      stop expires the member's sessions on every member: sessions_shutdown.t),
#      acknowledged replication (channelSendOptions 6);
#   B. the default Manager, asynchronous replication (channelSendOptions 8).
# Each time:
#   1. ten sessions made on each member (thirty), each written twice (counter
#      2), all thirty readable with counter 2 on every member;
#   2. SC::Cluster::kill_parent('node1'): SIGKILL to node1's parent only;
#   3. node1's engine (EnginePid on its page before the kill, a child of the
#      parent) exits by itself; node1's error_log says SC1237 at error level
#      (the parent is gone) and neither SC1234 (the engine's orderly stop, whose
#      goodbye tells the peers it left) nor SC1279 (sessions expired at stop);
#   4. node2 and node3 show node1 as dead, never "left" ("said goodbye");
#   5. on node2 and node3 all thirty sessions are still there (SessionsActive
#      30, SessionsExpired and SessionsRemoved unchanged) and each reads with
#      counter 2; a write on node2 to a session made on node1 reaches node3.
# Before the fix (b9e52e8) the engine took the orderly-leave path: in A every
# session was expired on every member (30 -> 0), in B node1 was shown "left:
# said goodbye".  Every deadline is a polling limit, nothing is timed.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(status_of member_on check within app show valid_sid demo_module demo_conf
                sess_line ready_and_alive num);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "parent_crash.t: time limit (400 s) reached\n" };
alarm 400;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
# ReplicationValve only: ids keep their route whichever member serves them
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my $PER_MEMBER = 10;
my ($V, @OTHERS) = qw(node1 node2 node3);    # V: the member whose parent dies

sub member_row {
    my ($m) = @_;
    return '(no row)' unless $m;
    return join(' ', map { "$_=" . ($m->{$_} // '?') } qw(route state member_state))
         . ' verdict="' . ($m->{verdict} // '') . '"';
}

# Polls until session $id reads with counter $want on member $n (up to $secs).
sub reads_as {
    my ($c, $n, $id, $want, $secs) = @_;
    my $r;
    my $ok = within($secs, sub {
        $r = app($c, $n, 'read', $id);
        ($r->{session} // '') eq $id && ($r->{counter} // '') eq $want;
    });
    return (defined $ok, $r);
}

sub scenario {
    my ($part, %o) = @_;
    my $c = SC::Cluster->new(
        members    => 3,
        loglevel   => 'info',
        extra_conf => $APP,
        cluster    => sub {
            my ($m, $all) = @_;
            return SC::Cluster::static_block($m, $all, channelSendOptions => $o{send},
                                             valves => $KEEP_ROUTES,
                                             ($o{manager} ? (manager => $o{manager}) : ()));
        },
    );
    $c->start_all(timeout => 30);
    check(defined within(40, sub { ready_and_alive($c, $V, @OTHERS) }), $c,
          "$part: three members ready, each sees the other two (polled up to 40 s)");

    # 1. thirty sessions, on every member ------------------------------------------
    my %sess;    # id => member that made it
    for my $n ($V, @OTHERS) {
        for (1 .. $PER_MEMBER) {
            my $r = app($c, $n, 'auto');
            my $id = $r->{cookie};
            my $r2 = valid_sid($id, $n) ? app($c, $n, 'auto', $id) : undef;
            if ($r2 && ($r2->{session} // '') eq $id && ($r2->{counter} // '') eq '2') {
                $sess{$id} = $n;
            }
            else {
                check(0, $c, "$part: a session made on $n", show($r), $r2 ? show($r2) : ());
            }
        }
    }
    my $total = 3 * $PER_MEMBER;
    is(scalar keys %sess, $total, "$part 1. $total sessions made, $PER_MEMBER on each member");
    for my $n ($V, @OTHERS) {
        my $p;
        my $ok = within(30, sub { $p = status_of($c, $n); num($p, 'SessionsActive') == $total });
        check(defined $ok, $c, "$part 1. $n holds all $total sessions (polled up to 30 s)",
              "$n: " . sess_line($p));
        my ($bad, $first) = (0, undef);
        for my $id (sort keys %sess) {
            my ($got, $r) = reads_as($c, $n, $id, '2', 20);
            next if $got;
            $bad++;
            $first //= "$id (made on $sess{$id}): " . show($r);
        }
        check($bad == 0, $c, "$part 1. every session reads with counter 2 on $n", $first);
    }

    # counters of the survivors before the crash
    my %before;
    for my $n (@OTHERS) {
        my $p = status_of($c, $n);
        $before{$n} = { map { $_ => num($p, $_) } qw(SessionsExpired SessionsRemoved) };
    }
    my $pv = status_of($c, $V);
    my $engine = $pv && ($pv->{EnginePid} // '') =~ /^([1-9]\d*)$/ ? $1 : undef;
    ok($engine && SC::Cluster::pid_alive($engine), "$part: ${V}'s engine runs (pid "
       . ($engine // '?') . ')') or diag(sess_line($pv));
    my $log0 = length $c->error_log($V);

    # 2. kill -9 of node1's parent only ------------------------------------------------
    my $parent = $c->member($V)->{pid};
    my @left = $c->kill_parent($V);
    ok(!SC::Cluster::pid_alive($parent), "$part 2. ${V}'s parent (pid $parent) is gone");
    ok($engine && (grep { $_ == $engine } @left),
       "$part 2. its engine was still running when the parent died (children: @left)");

    # 3. its engine exits by itself, as a crash -----------------------------------------
    my $gone = within(30, sub { !$engine || !SC::Cluster::pid_alive($engine) });
    check(defined $gone, $c, "$part 3. ${V}'s engine (pid " . ($engine // '?')
          . ") exits by itself (polled up to 30 s)");
    my $log = substr($c->error_log($V), $log0);
    my ($sc1237) = $log =~ /^(.*\bSC1237\b.*)$/m;
    ok(defined $sc1237 && $sc1237 =~ /\[(?:\w+:)?error\]/,
       "$part 3. $V logs SC1237 (its parent is gone) at error level")
        or diag("$V error_log since the kill:\n$log");
    my @orderly = $log =~ /^(.*\bSC12(?:34|79)\b.*)$/mg;
    ok(!@orderly, "$part 3. $V logs no orderly stop (SC1234) and no sessions expired at "
       . 'stop (SC1279)') or diag(join "\n", @orderly);
    {
        # its orphaned MPM children may still answer (httpd's event MPM keeps
        # them serving): then its page shows no engine
        my $p = status_of($c, $V);
        if ($p) {
            ok(num($p, 'EnginePid') == 0 && ($p->{EngineState} // '') eq 'not running',
               "$part 3. ${V}'s orphaned children still answer, and its page shows no engine")
                or diag(sess_line($p) . ' EnginePid=' . ($p->{EnginePid} // '?'));
        }
        else {
            pass("$part 3. $V no longer answers its page (its children are gone too)");
        }
    }

    # 4. the others find it dead, not left -----------------------------------------------
    my %row;
    my $decided = within(60, sub {
        for my $n (@OTHERS) {
            $row{$n} = member_on($c, $n, $V);
            return 0 unless $row{$n} && $row{$n}{state} !~ /^(?:alive|suspect)$/;
        }
        1;
    });
    check(defined $decided, $c, "$part 4. node2 and node3 no longer count $V alive "
          . '(polled up to 60 s)', map { "$_: " . member_row($row{$_}) } @OTHERS);
    for my $n (@OTHERS) {
        my $m = $row{$n};
        check($m && $m->{state} eq 'dead' && ($m->{verdict} // '') !~ /goodbye/i, $c,
              "$part 4. $n shows $V dead, not left", "$n: " . member_row($m));
    }

    # 5. no session lost ----------------------------------------------------------------
    # (an orderly leave's expiries precede its goodbye on the same connection:
    # a member that has handled the goodbye has applied them)
    for my $n (@OTHERS) {
        my $p = status_of($c, $n);
        is(num($p, 'SessionsActive'), $total, "$part 5. $n still holds all $total sessions")
            or diag("$n: " . sess_line($p));
        for my $k (qw(SessionsExpired SessionsRemoved)) {
            is(num($p, $k) - $before{$n}{$k}, 0, "$part 5. $n: $k unchanged");
        }
        my ($bad, $first) = (0, undef);
        for my $id (sort keys %sess) {
            my $r = app($c, $n, 'read', $id);
            next if ($r->{session} // '') eq $id && ($r->{counter} // '') eq '2';
            $bad++;
            $first //= "$id (made on $sess{$id}): " . show($r);
        }
        check($bad == 0, $c, "$part 5. every session still reads with counter 2 on $n",
              $bad ? "$bad of $total did not; the first: $first" : ());
    }
    {
        my ($id) = grep { $sess{$_} eq $V } sort keys %sess;
        my $w = app($c, $OTHERS[0], 'auto', $id);
        my ($got, $r) = reads_as($c, $OTHERS[1], $id, '3', 20);
        check(($w->{session} // '') eq $id && ($w->{counter} // '') eq '3' && $got, $c,
              "$part 5. a write on $OTHERS[0] to a session made on $V (counter 3) reaches "
              . "$OTHERS[1] (polled up to 20 s)", show($w), show($r));
    }

    $c->teardown;
    is_deeply([ $c->problems ], [], "$part: teardown found no hang or crash");
}

scenario('A (expireSessionsOnShutdown="true", acknowledged)', send => 6,
         manager => { expireSessionsOnShutdown => 'true' });
scenario('B (default Manager, asynchronous)', send => 8);

done_testing();
