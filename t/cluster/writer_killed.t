#!perl
# A writer killed inside its write cannot block a session (README, "Store":
# "writes it under a per-session lock that a killed writer cannot leave
# held"; readers use a sequence lock).  node1 and node2, asynchronous
# replication, a dropTime of 60 s, the demo application at /app; node1 runs
# one child process (ServerLimit 1).  A child is stopped by gdb inside its
# write of a session to the store (in sc_store_put_hashed, at sc_shm_write_end: the
# slot's lock held and its sequence number odd) and SIGKILLed there:
#   (a) session A: the engine's sweep (every second, under each slot's lock)
#       takes the dead writer's lock and undoes its write (a write in place:
#       the bytes it wrote over are put back)
#       (SessionWritesUndone +1, no request touches A meanwhile); A then reads
#       the last committed counter on node1, a change on node2 is applied on
#       node1 (by the engine) and a change on node1 answers 200 and reaches
#       node2;
#   (b) session B, with node1's engine frozen (SIGSTOP: no sweep): a read of
#       B on node1 is not left spinning on the odd sequence number: the
#       reader takes the lock, undoes the write (SessionWritesUndone +1 while
#       the engine is frozen) and answers the last committed counter; after
#       SIGCONT B changes and replicates as before;
#   (c) the engine is stopped by gdb inside a write of the shared status
#       segment (sc_shm_write_end, its sequence number odd) and SIGKILLed,
#       with httpd's parent frozen (SIGSTOP: no new engine yet): the page
#       still answers (its readers do not wait for the dead writer); the
#       parent resumed, httpd starts a new engine, the page shows the new
#       EnginePid, node2 alive, and sessions replicate.
# Nothing is timed: each step waits for its event (with a generous limit).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(need status_of member_on check within app show demo_module demo_conf alive_on);

need($> == 0, 'root (gdb attaches to httpd processes)');
my $GDB = SC::Cluster::which('gdb');
need($GDB, 'gdb (build/install-deps.sh installs it)');
my $DEMO_SO = demo_module();

$SIG{ALRM} = sub { die "writer_killed.t: time limit (90 s) reached\n" };
alarm 90;

my $APP = demo_conf($DEMO_SO);
# one child process on node1 (after the harness's MPM lines: these win)
my $ONE_CHILD = "ServerLimit 1\nStartServers 1\nMaxRequestWorkers 8\nThreadsPerChild 8\n"
              . "MinSpareThreads 1\nMaxSpareThreads 8\n";
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];

my $c = SC::Cluster->new(
    members     => 2,
    extra_conf  => $APP,
    member_opts => { node1 => { extra_conf => $APP . $ONE_CHILD } },
    cluster     => sub { SC::Cluster::static_block($_[0], $_[1], membership => { dropTime => 60000 },
                                                   valves => $KEEP_ROUTES) },
);
$c->start_all;


sub num { my ($p, $k) = @_; return ($p && defined $p->{$k} && $p->{$k} =~ /^\d+$/) ? $p->{$k} : undef }

# node1's child processes (not its parent, not its engine)
sub children {
    my $engine = num(status_of($c, 'node1'), 'EnginePid') // -1;
    my ($parent, @rest) = $c->pids('node1');
    return grep { $_ != $engine } @rest;
}

# Runs gdb on $pid in the background with @ex (gdb commands); returns
# [ gdb pid, output file ].
my $GDB_N = 0;
sub gdb_start {
    my ($pid, @ex) = @_;
    my $out = $c->base_dir . '/gdb.' . ++$GDB_N . '.out';
    my $g = fork // die "fork: $!";
    if (!$g) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        { exec $GDB, '-q', '-nx', '-batch', '-iex', 'set debuginfod enabled off', '-p', $pid,
             '-ex', 'set pagination off', '-ex', 'set confirm off',
             '-ex', 'handle SIGPIPE SIGUSR1 SIGUSR2 SIGHUP SIGTERM SIGWINCH SIGALRM SIGCHLD nostop noprint pass',
             map { ('-ex', $_) } @ex };
        POSIX::_exit(127);
    }
    return [ $g, $out ];
}

# Is $pid traced by gdb $g and running (gdb has set its breakpoint and said
# continue)?
sub traced_and_running {
    my ($pid, $g) = @_;
    my $st = slurp("/proc/$pid/status");
    my ($tracer) = $st =~ /^TracerPid:\s*(\d+)/m;
    my ($state) = $st =~ /^State:\s*(\S)/m;
    return defined $tracer && $tracer == $g->[0] && defined $state && $state ne 't';
}

# 4 bytes (native unsigned) at address $at in process $pid, or undef.
sub peek32 {
    my ($pid, $at) = @_;
    return undef unless defined $at;
    open my $fh, '<:raw', "/proc/$pid/mem" or return undef;
    sysseek($fh, $at, 0) or return undef;
    my $buf = '';
    return (sysread($fh, $buf, 4) // 0) == 4 ? unpack('L', $buf) : undef;
}

sub slurp { my ($f) = @_; open my $fh, '<', $f or return ''; local $/; return <$fh> // '' }

# Waits for gdb to exit; returns its output ('' if it did not within $limit s).
sub gdb_wait {
    my ($g, $limit) = @_;
    my $done = within($limit, sub { waitpid($g->[0], WNOHANG) == $g->[0] });
    if (!defined $done) {
        kill 'KILL', $g->[0];
        waitpid $g->[0], 0;
        diag("gdb did not finish:\n" . slurp($g->[1]));
        return '';
    }
    return slurp($g->[1]);
}

# Stops child $pid inside its next write of a session to the store (in
# sc_store_put_hashed, a request's update, at sc_shm_write_end) and SIGKILLs
# it there; $trigger makes the request that writes.  Returns gdb's output.
sub kill_child_inside_store_write {
    my ($pid, $label, $trigger) = @_;
    my $g = gdb_start($pid, 'break sc_store_put_hashed', 'continue', 'delete',
                      'break sc_shm_write_end', 'continue',
                      'bt 4', 'printf "SEQ=%u\n", *seq', 'kill');
    # the breakpoint is in once gdb lets the process run again
    my $ready = within(30, sub { traced_and_running($pid, $g) });
    check($ready, $c, "$label: gdb attached to node1's child $pid", slurp($g->[1]));
    my $r = $trigger->();
    my $out = gdb_wait($g, 30);
    # (write_close, inlined, may show as a frame between the two)
    ok($out =~ /^#0\s.*\bsc_shm_write_end \(/m && $out =~ /^#[1-3]\s.*\bsc_store_put_hashed \(/m,
       "$label: the child stopped in sc_store_put_hashed's write (at sc_shm_write_end)")
        or diag($out);
    my ($seq) = $out =~ /^SEQ=(\d+)$/m;
    ok(defined $seq && $seq % 2 == 1, "$label: ... with the slot's sequence number odd (" . ($seq // '?') . ')');
    ok(within(10, sub { !kill 0, $pid }), "$label: the child ($pid) was SIGKILLed there");
    isnt($r->{status}, 200, "$label: the request it was serving got no answer (status $r->{status})");
    return $out;
}

check(within(20, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1')
                       && (status_of($c, 'node2')->{EngineState} // '') eq 'ready' }),
      $c, 'node1 and node2 see each other alive, node2 ready');

# a session with counter 2 on both members: $id
sub make_session {
    my ($label) = @_;
    my $r = app($c, 'node1', 'auto');
    my $id = $r->{cookie};
    $r = app($c, 'node1', 'auto', $id);
    check($r->{status} == 200 && ($r->{counter} // '') eq '2', $c, "$label: made on node1, counter 2", show($r));
    my $seen = within(20, sub { (app($c, 'node2', 'read', $id)->{counter} // '') eq '2' });
    check($seen, $c, "$label: node2 reads counter 2");
    return $id;
}

# after the dead writer: the session reads 2 on node1 and changes on both
sub goes_on {
    my ($label, $id) = @_;
    my $r = app($c, 'node2', 'auto', $id, timeout => 10);
    check($r->{status} == 200 && ($r->{counter} // '') eq '3', $c,
          "$label: a change on node2 answers 200, counter 3", show($r));
    my $last;
    my $ok = within(20, sub { $last = app($c, 'node1', 'read', $id, timeout => 10);
                              ($last->{counter} // '') eq '3' });
    check($ok, $c, "$label: node1's engine applies it: node1 reads counter 3", $last ? show($last) : undef);
    $r = app($c, 'node1', 'auto', $id, timeout => 10);
    check($r->{status} == 200 && ($r->{counter} // '') eq '4', $c,
          "$label: a change on node1 answers 200, counter 4", show($r));
    $ok = within(20, sub { $last = app($c, 'node2', 'read', $id); ($last->{counter} // '') eq '4' });
    check($ok, $c, "$label: node2 reads counter 4", show($last));
}

my @kids = children();
check(@kids == 1, $c, 'node1 runs one child process', "children: @kids");

# (a) the sweep takes the dead writer's lock -------------------------------------
{
    my $A = make_session('(a) session A');
    # its change 1 -> 2 was written in place (as many bytes): so is the
    # write 2 -> 3 killed below, whose bytes the repair must put back
    ok(num(status_of($c, 'node1'), 'SessionsUpdatedInPlace') >= 1,
       '(a) node1 writes the session\'s changes in place (SessionsUpdatedInPlace)');
    my $undone0 = num(status_of($c, 'node1'), 'SessionWritesUndone');
    ok(defined $undone0, '(a) node1\'s page shows SessionWritesUndone (' . ($undone0 // 'missing') . ')');
    $undone0 //= 0;
    my ($pid) = children();
    kill_child_inside_store_write($pid, '(a)', sub { app($c, 'node1', 'auto', $A, timeout => 30) });
    # no request touches A now: the engine's sweep, under A's lock, finds it
    my $p;
    my $ok = within(20, sub { $p = status_of($c, 'node1');
                              (num($p, 'SessionWritesUndone') // 0) > $undone0 });
    check($ok, $c, '(a) the engine\'s sweep takes the dead writer\'s lock and undoes its write '
                   . "(SessionWritesUndone $undone0 -> " . (num($p, 'SessionWritesUndone') // '?') . ')');
    is(num($p, 'SessionWritesUndone'), $undone0 + 1, '(a) ... one write undone');
    my $r = app($c, 'node1', 'read', $A, timeout => 10);
    check($r->{status} == 200 && ($r->{counter} // '') eq '2', $c,
          '(a) node1 reads the last committed counter (2) of A', show($r));
    goes_on('(a)', $A);
}

# (b) a reader finds the odd sequence number: no sweep (engine frozen) ----------
{
    my $B = make_session('(b) session B');
    my $p = status_of($c, 'node1');
    my $engine = num($p, 'EnginePid');
    my $undone0 = num($p, 'SessionWritesUndone') // 0;
    check(defined $engine && SC::Cluster::freeze_pids($engine), $c, "(b) node1's engine ($engine) frozen (SIGSTOP)");
    my @k = children();
    check(@k == 1, $c, '(b) node1 runs one child process again', "children: @k");
    kill_child_inside_store_write($k[0], '(b)', sub { app($c, 'node1', 'auto', $B, timeout => 30) });
    my $r;
    my $ok = within(20, sub { $r = app($c, 'node1', 'read', $B, timeout => 10); $r->{status} == 200 });
    check($ok && ($r->{counter} // '') eq '2', $c,
          '(b) a read of B on node1 answers 200 with the last committed counter (2)', show($r));
    $p = status_of($c, 'node1');
    is(num($p, 'SessionWritesUndone'), $undone0 + 1,
       '(b) the reader undid the dead write itself (SessionWritesUndone +1, the engine frozen)');
    kill 'CONT', $engine;
    goes_on('(b)', $B);
}

# (c) the engine killed inside a write of the status segment ---------------------
{
    my $S = make_session('(c) session C');
    my $p = status_of($c, 'node1');
    my ($engine, $starts) = (num($p, 'EnginePid'), num($p, 'EngineStarts'));
    # httpd's parent frozen: no new engine until it is resumed
    my $parent = $c->member('node1')->{pid};
    check(SC::Cluster::freeze_pids($parent), $c, "(c) node1's parent ($parent) frozen (SIGSTOP)");
    my $g = gdb_start($engine, 'break sc_shm_write_end', 'continue',
                      'bt 2', 'printf "SEQ=%u AT=%lu\n", *seq, (unsigned long)seq', 'kill');
    my $out = gdb_wait($g, 30);
    like($out, qr/^#0\s.*\bsc_shm_write_end\b/m, '(c) the engine stopped at sc_shm_write_end') or diag($out);
    my ($seq, $at) = $out =~ /^SEQ=(\d+) AT=(\d+)$/m;
    ok(defined $seq && $seq % 2 == 1, '(c) ... with the sequence number odd (' . ($seq // '?') . ')');
    # (a zombie until the parent reaps it: its state says it is dead)
    ok(within(10, sub { my ($st) = slurp("/proc/$engine/status") =~ /^State:\s*(\S)/m;
                        !defined $st || $st eq 'Z' }),
       "(c) the engine ($engine) was SIGKILLed there");
    # no engine writes now: a reader must not wait for the one that died
    my $q;
    my $ok = within(20, sub { $q = status_of($c, 'node1') });
    check($ok, $c, '(c) with no engine (the parent frozen), the page still answers');
    is(num($q, 'EnginePid'), $engine, '(c) ... with the dead engine\'s pid');
    kill 'CONT', $parent;
    $ok = within(30, sub {
        $p = status_of($c, 'node1');
        my $e = num($p, 'EnginePid');
        $e && $e != $engine && ($p->{EngineState} // '') eq 'ready' && alive_on($c, 'node1', 'node2');
    });
    check($ok, $c, '(c) the page answers with a new engine, ready, node2 alive on node1');
    is(num($p, 'EngineStarts'), ($starts // 0) + 1, '(c) EngineStarts grew by one');
    # the record the dead engine left odd is written by the new one: even
    # again (read in httpd's parent, which maps the segment at that address)
    my $v;
    $ok = within(10, sub { $v = peek32($parent, $at); defined $v && $v % 2 == 0 });
    check($ok, $c, '(c) the sequence number the dead engine left odd is even again after the '
                   . 'new engine\'s writes (' . ($seq // '?') . ' -> ' . ($v // '?') . ')');
    my $r = app($c, 'node1', 'auto', $S, timeout => 10);
    check($r->{status} == 200 && ($r->{counter} // '') eq '3', $c, '(c) session C goes on: counter 3 on node1', show($r));
    my $last;
    $ok = within(20, sub { $last = app($c, 'node2', 'read', $S); ($last->{counter} // '') eq '3' });
    check($ok, $c, '(c) node2 reads counter 3', show($last));
}

$c->teardown;
done_testing();
