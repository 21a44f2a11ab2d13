#!perl
# A step of one member's wall clock (an administrator's `date -s`, an NTP
# step, a VM resumed with the host's time) changes nothing the cluster shows:
# the engine keeps its deadlines (heartbeats, dropTime, publishing) on a
# clock that does not step.  Three static members with Tomcat's defaults
# where they matter (McastService frequency 500 ms and dropTime 3000 ms,
# TcpFailureDetector), the demo application at /app, a ReplicationValve
# alone (ids keep their route wherever they are read).  node1's httpd (its
# parent, children and engine) runs with t/lib/clockstep.c preloaded, built
# here: gettimeofday, time and clock_gettime(CLOCK_REALTIME) answer the real
# time plus an offset the test writes to a file the shim maps, every other
# clock (CLOCK_MONOTONIC, CLOCK_BOOTTIME) is left alone.  The shim is proven
# first on a perl run under it (its wall clock shifted both ways, the second
# time while it runs, its monotonic clock not), then on node1 (it is mapped
# in every process of node1, and node1's Date header follows each step while
# node2's does not).
#   (a) after start, six sessions (three made on node1, three on node2) read
#       on every member with their counter;
#   (b) node1's clock is stepped BACK 120 s;
#   (c) then FORWARD 240 s (to 120 s ahead of the real time).
# After each step, for 12 s (four times dropTime) while the sessions are
# written on their own member every 2 s and every member's page is read
# every 0.2 s, asserted:
#   1. no member logs another leaving alive (SC1221 "alive -> ...") and none
#      counts a suspected or dead member (FdSuspected, FdDead);
#   2. no member logs SC1421 (its engine did not run for longer than
#      dropTime) nor takes its sessions again by a state transfer
#      (TransferIn);
#   3. every page read shows each other member alive, its own engine ready
#      and each other member's uptime (alive_ms, from its heartbeats) never
#      negative (one is sent unsigned: 2^64 less its size) and never going
#      back; so do the pages at the end;
#   4. node1 goes on sending its heartbeats (PingsOut grows) and every page
#      counts the messages each other member sends it (its row's msgs_in);
#   5. every write answers 200 with the next counter, and afterwards every
#      session reads on every member with the counter of its last write.
#   6. In (b), node1's clock still behind: node3 frozen (SIGSTOP), node1's
#      page shows it dead as node2's does (polled up to 20 s); resumed, every
#      member is ready and alive again and the sessions read everywhere.
#   7. In (b), node1's HTML page's history plot (sampled by httpd's parent
#      every 5 s at most) has more points than before the step.
#   (d) node1's clock back again (to 120 s before its first engine's start)
#       and its engine killed:
#       httpd's parent starts a new one, ready; its incarnation is above the
#       one before, node2 and node3 see node1 alive with it and log no SC1225
#       (an older incarnation's heartbeats refused); every member ready and
#       alive, the sessions read everywhere.
# The step back is 120 s so that an engine whose timers wait for the wall
# clock to come back stays stalled for the whole of (b), 6 included, with
# room to spare: the 20 s limit of 6 is several times what the detection
# takes (dropTime, then the TCP check's 1 s).  Nothing is timed: the 12 s
# are how long the cluster is watched, every other deadline is a polling
# limit.
# Before the engine kept its deadlines on a clock that does not step (the
# build of 7f6ec62): after the step back node1's timers wait for the wall
# clock to reach them again, so it sends no heartbeat and publishes nothing
# (4 fails: PingsOut and node1's rows' msgs_in do not move; 6 fails: node1's
# engine logs node3 dead on time, but its page shows it alive, "heard 0 ms
# ago", until the 20 s are out; 7 fails: its HTML page shows no history
# plot at all until its clock is back past its last sample), and the peers
# show node1's uptime as
# 18446744073709432716 ms (3 fails: a negative uptime sent unsigned).  The
# peers do not drop node1 (its engine answers their TCP pings at once, so
# they hear it).  After the step forward node1 logs SC1421 ("did not run for
# 240039 ms"), finds node2 and node3 suspect at once (SC1221 "alive ->
# suspect", FdSuspected +2, its page shows them suspect: 1, 2 and 3 fail)
# and, suspecting every member, keeps its own sessions without a transfer
# (SC1266; TransferIn does not move).  In (d) that build fails as below.
# Writes and reads pass in both builds (16 of 58 fail in all).
# With the clock that does not step but a new engine's incarnation taken
# from the wall clock alone, (d) fails: the new engine's incarnation is
# below its predecessor's, node2 and node3 log SC1225 and keep node1 dead,
# and the new engine stays starting (no member sends it the sessions).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep clock_gettime CLOCK_MONOTONIC);
use Time::Local qw(timegm);
use SC::Cluster;
use SC::Test qw(need page status_of member_on check within app show valid_sid demo_module demo_conf
                ready_and_alive num log_since);
SC::Test::dump_options(tail => 40, cut => 300);

my $LIMIT = 600;
$SIG{ALRM} = sub { die "clock_step.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $DEMO_SO = demo_module();
my $CC = SC::Cluster::which('cc');
need($CC, 'a C compiler (cc, build-essential) to build the clock shim t/lib/clockstep.c');

my @N = qw(node1 node2 node3);
my $S = 'node1';                       # the member whose clock steps
my $DROP_MS = 3000;
my $WATCH = 4 * $DROP_MS / 1000;       # s watched after each step
my $WRITE_EVERY = 2;                   # s between two rounds of writes
my $STEP = 120;                        # s: back to -120 s, then forward to +120 s

# The offset file the shim maps: a signed 64-bit integer of microseconds
# and its complement, little-endian, at offset 0 (the shim takes a pair
# that agrees), written in place (16 bytes, one write) and never shortened.
sub offset_bytes { my ($us) = @_; return pack('q<q<', $us, -$us - 1) }
sub set_offset {
    my ($file, $us) = @_;
    open my $fh, '+<', $file or die "clock_step.t: open $file: $!\n";
    binmode $fh;
    sysseek($fh, 0, 0) or die "clock_step.t: seek $file: $!\n";
    my $n = syswrite($fh, offset_bytes($us), 16);
    die "clock_step.t: write $file: " . ($n // $!) . "\n" unless ($n // 0) == 16;
    close $fh or die "clock_step.t: close $file: $!\n";
}

sub new_offset_file {
    my ($file, $us) = @_;
    open my $fh, '>', $file or die "clock_step.t: create $file: $!\n";
    binmode $fh;
    print $fh offset_bytes($us);
    close $fh or die "clock_step.t: close $file: $!\n";
    chmod 0644, $file;
}

# The Date header of member $n's answer to a page request, as epoch seconds
# (undef without one), and the test's own time at the answer.
my %MON = (Jan => 0, Feb => 1, Mar => 2, Apr => 3, May => 4, Jun => 5,
           Jul => 6, Aug => 7, Sep => 8, Oct => 9, Nov => 10, Dec => 11);
sub date_of {
    my ($c, $n) = @_;
    my ($s, $h) = $c->get($n, '/cluster-manager?auto', timeout => 5);
    my $now = time;
    return (undef, $now)
        unless $s == 200 && ($h->{date} // '') =~ /^\w+, (\d+) (\w+) (\d+) (\d+):(\d+):(\d+) GMT$/
            && exists $MON{$2};
    return (timegm($6, $5, $4, $1, $MON{$2}, $3), $now);
}

# ---------------------------------------------------------------------------
my $c = SC::Cluster->new(
    members    => 3,
    loglevel   => 'info',              # SC1221 is a notice
    extra_conf => demo_conf($DEMO_SO),
    cluster    => sub {
        my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all,
            membership => { frequency => 500, dropTime => $DROP_MS },
            valves     => [ '<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>' ]);
    },
);
my $dir = $c->base_dir;

# the shim, built here with the project's warnings ----------------------------
my $SO = "$dir/clockstep.so";
my $SRC = SC::Cluster::repo_dir() . '/t/lib/clockstep.c';
{
    my ($rc, $out) = $c->exec_in($S, { timeout => 120 }, $CC, '-shared', '-fPIC', '-O2',
                                 '-std=gnu11', '-Wall', '-Wextra', '-Werror', '-o', $SO, $SRC,
                                 '-ldl');
    is($rc, 0, 'the clock shim builds without a warning (cc -Wall -Wextra -Werror)')
        or do { diag($out); done_testing(); exit 1 };
    chmod 0755, $SO;
}

# the instrument: a perl run under the shim -----------------------------------
# It reads CLOCK_REALTIME, gettimeofday, time and CLOCK_MONOTONIC with the
# offset at +1000 s, writes -1000 s into the file itself, and reads them again.
{
    my $probe = "$dir/clockstep.probe";
    new_offset_file($probe, 1_000_000_000);
    my $code = q{
        use Time::HiRes qw(clock_gettime CLOCK_REALTIME CLOCK_MONOTONIC);
        my $r = sub { join ' ', clock_gettime(CLOCK_REALTIME), Time::HiRes::time(), time(),
                                clock_gettime(CLOCK_MONOTONIC) };
        my $a = $r->();
        open my $fh, '+<', $ARGV[0] or die "open: $!";
        binmode $fh;
        syswrite($fh, pack('q<q<', -1_000_000_000, 999_999_999), 16) == 16 or die "write: $!";
        close $fh;
        print $a, "\n", $r->(), "\n";
    };
    my ($w0, $m0) = (time, clock_gettime(CLOCK_MONOTONIC));
    my ($rc, $out);
    {
        local $ENV{LD_PRELOAD} = join ':', grep { defined && length } $ENV{LD_PRELOAD}, $SO;
        local $ENV{SC_CLOCKSTEP_FILE} = $probe;
        ($rc, $out) = $c->exec_in($S, { timeout => 30 }, $^X, '-e', $code, $probe);
    }
    my ($w1, $m1) = (time, clock_gettime(CLOCK_MONOTONIC));
    my @l = map { [ split ' ' ] } grep { /\S/ } split /\n/, $out;
    my $in = sub { my ($v, $lo, $hi) = @_; defined $v && $v >= $lo - 2 && $v <= $hi + 2 };
    my ($plus, $minus) = map { $_ || [] } @l[0, 1];
    ok($rc == 0 && @l == 2
       && (3 == grep { $in->($_, $w0 + 1000, $w1 + 1000) } @{$plus}[0 .. 2])
       && $in->($plus->[3], $m0, $m1)
       && (3 == grep { $in->($_, $w0 - 1000, $w1 - 1000) } @{$minus}[0 .. 2])
       && $in->($minus->[3], $m0, $m1),
       'the shim moves the wall clock only (CLOCK_REALTIME, gettimeofday and time by +1000 s, '
       . 'then by -1000 s written while it runs; CLOCK_MONOTONIC as it is)')
        or diag("exit $rc; the test's wall clock $w0 .. $w1, monotonic $m0 .. $m1; "
                . "the probe (realtime gettimeofday time monotonic):\n$out");
}

# node1 under the shim ---------------------------------------------------------
my $OFFSET = "$dir/clockstep.offset";
new_offset_file($OFFSET, 0);
$c->configure($S, env => {
    LD_PRELOAD        => join(':', grep { defined && length } $ENV{LD_PRELOAD}, $SO),
    SC_CLOCKSTEP_FILE => $OFFSET,
});

# (a) --------------------------------------------------------------------------
my $T_START = time;                    # before any engine started
my %UPTIME;                            # viewer => member => the last alive_ms it showed
$c->start_all(timeout => 30);
check(defined within(40, sub { ready_and_alive($c, @N) }), $c,
      'start: three members ready, each sees the other two alive (polled up to 40 s)');
my $pg = page($c, $S) // '';
ok($pg =~ /^Membership\.dropTime = $DROP_MS\b/m && $pg =~ /^Membership\.frequency = 500\b/m
   && $pg =~ /TcpFailureDetector/, "McastService frequency 500 ms, dropTime $DROP_MS ms, "
   . 'TcpFailureDetector (Tomcat\'s defaults)')
    or diag(join "\n", grep { /Membership|TcpFailure/ } split /\n/, $pg);
{
    my $engine = (status_of($c, $S) || {})->{EnginePid} // 0;
    my @p = $c->pids($S);
    my @without = grep {
        my $maps = '';
        if (open my $fh, '<', "/proc/$_/maps") { local $/; $maps = <$fh> // '' }
        index($maps, $SO) < 0;
    } @p;
    ok(@p >= 3 && (grep { $_ == $engine } @p) && !@without,
       "the shim is loaded in every process of $S (@p), its engine $engine among them")
        or diag('without it: ' . join(' ', @without));
}

my %sess;    # name => { id, home, counter }
for my $n (qw(node1 node2)) {
    for my $i (1 .. 3) {
        my $r = app($c, $n, 'auto');
        if ($r->{status} == 200 && valid_sid($r->{cookie}, $n) && ($r->{counter} // '') eq '1') {
            $sess{"$n-$i"} = { id => $r->{cookie}, home => $n, counter => 1 };
        }
        else {
            check(0, $c, "a session made on $n", show($r));
        }
    }
}
is(scalar keys %sess, 6, 'six sessions made, three on node1 and three on node2');

# Every session reads on every member with the counter of its last write
# (polled up to 15 s: replication is asynchronous).
sub reads_everywhere {
    my ($what) = @_;
    for my $n (@N) {
        my %left = map { $_ => 1 } keys %sess;
        my %got;
        within(15, sub {
            for my $name (sort keys %left) {
                my $s = $sess{$name};
                my $r = $got{$name} = app($c, $n, 'read', $s->{id});
                delete $left{$name}
                    if $r->{status} == 200 && ($r->{session} // '') eq $s->{id}
                       && ($r->{counter} // '') eq $s->{counter};
            }
            return !%left;
        });
        check(!%left, $c, "$what every session reads on $n with the counter of its last write",
              map { "$_ ($sess{$_}{id}): counter $sess{$_}{counter} expected, read: status "
                    . "$got{$_}{status} counter " . ($got{$_}{counter} // '-') . ' session '
                    . ($got{$_}{session} // '-') } sort keys %left);
    }
}
reads_everywhere('(a)');

# One write of every session on its own member: the counter goes up by one.
sub write_round {
    my ($bad) = @_;
    for my $name (sort keys %sess) {
        my $s = $sess{$name};
        my $r = app($c, $s->{home}, 'auto', $s->{id});
        my $want = $s->{counter} + 1;
        if ($r->{status} == 200 && ($r->{session} // '') eq $s->{id}
            && ($r->{counter} // '') eq $want) {
            $s->{counter} = $want;
            next;
        }
        push @$bad, sprintf('%s on %s at %s: counter %d expected, got %s', $name, $s->{home},
                            scalar(gmtime), $want, show($r));
        # what the member answered is what the next write goes on from
        $s->{counter} = $r->{counter}
            if $r->{status} == 200 && ($r->{counter} // '') =~ /^\d+$/ && $r->{counter} > $s->{counter};
    }
}

# The figures of every page that must not move while the clock steps, and
# those that must: its heartbeats sent (PingsOut) and, from its rows, the
# messages it received from each other member (in_<route>).
sub figures {
    my %f;
    for my $n (@N) {
        my $p = status_of($c, $n);
        $f{$n} = { map { $_ => num($p, $_) } qw(FdSuspected FdDead FdChecks TransferIn PingsOut) };
        for my $m (@{ $p ? $p->{members} : [] }) {
            $f{$n}{"in_$m->{route}"} = $m->{msgs_in} // 0 if defined $m->{route};
        }
    }
    return \%f;
}

sub step_and_watch {
    my ($what, $offset_us, $want_skew) = @_;
    my %log0 = map { $_ => length $c->error_log($_) } @N;
    my $f0 = figures();
    set_offset($OFFSET, $offset_us);
    my $t_step = time;

    # the step took: node1's Date header moved, node2's did not (whole
    # seconds, read a moment apart: within 10 s of the step is enough)
    for my $n ($S, 'node2') {
        my $want = $n eq $S ? $want_skew : 0;
        my ($d, $now) = date_of($c, $n);
        ok(defined $d && abs($d - $now - $want) < 10,
           "$what: $n\'s Date header is " . ($want ? "${want} s off" : 'the real time'))
            or diag("$n: Date " . ($d // 'none') . ', the test\'s clock ' . int($now));
    }

    # watched: a round of writes every $WRITE_EVERY s, every page every 0.2 s
    my (%odd, @bad_writes, @bad_uptime);
    my ($rounds, $reads, $next_write) = (0, 0, time);
    while (time < $t_step + $WATCH) {
        if (time >= $next_write) {
            write_round(\@bad_writes);
            $rounds++;
            $next_write = time + $WRITE_EVERY;
        }
        for my $n (@N) {
            my $p = status_of($c, $n);
            $reads++;
            if (!$p) { $odd{"$n: its page did not answer"}++; next }
            my $st = $p->{EngineState} // '?';
            $odd{"$n: EngineState $st"}++ if $st ne 'ready';
            for my $o (grep { $_ ne $n } @N) {
                my ($m) = grep { ($_->{route} // '') eq $o } @{ $p->{members} };
                my $v = $m ? $m->{state} // '?' : '(no row)';
                $odd{"$n shows $o $v"}++ if $v ne 'alive';
                # its uptime, from its heartbeats: never negative (a
                # negative one is sent unsigned, 2^64 less its size) and
                # never back (no engine of these restarts here)
                my $up = $m ? $m->{alive_ms} : undef;
                next unless defined $up && $up =~ /^\d+$/;
                my $negative = length($up) >= 19 && $up >= 9.2e18;
                push @bad_uptime, sprintf('%s shows %s up %s ms %s', $n, $o, $up,
                                          $negative ? '(a negative uptime, sent unsigned)'
                                                    : "(after $UPTIME{$n}{$o} ms)")
                    if $negative || $up < ($UPTIME{$n}{$o} // 0);
                $UPTIME{$n}{$o} = $up;
            }
        }
        sleep 0.2;
    }
    note(sprintf('%s: watched %.1f s after the step: %d rounds of writes, %d page reads',
                 $what, time - $t_step, $rounds, $reads));

    # 1. nobody left alive
    my (@left_alive, @all1221);
    for my $n (@N) {
        my $log = log_since($c, $n, $log0{$n});
        push @all1221, map { "$n: $_" } $log =~ /^(.*\bSC1221\b.*)$/mg;
        push @left_alive, map { "$n: $_" } $log =~ /^(.*\bSC1221\b.*\): alive -> .*)$/mg;
    }
    check(!@left_alive, $c, "$what 1. no member logs another leaving alive (SC1221 "
          . '"alive -> ...")', @all1221 ? join("\n", 'every SC1221 line since the step:', @all1221) : ());
    my $f1 = figures();
    my @moved_fd = map { my $n = $_; map { "$n $_: $f0->{$n}{$_} -> $f1->{$n}{$_}" }
                         grep { $f1->{$n}{$_} != $f0->{$n}{$_} } qw(FdSuspected FdDead) } @N;
    ok(!@moved_fd, "$what 1. no member suspects or finds another dead (FdSuspected, FdDead)")
        or diag(join "\n", @moved_fd, map { my $n = $_; "$n FdChecks: $f0->{$n}{FdChecks} -> $f1->{$n}{FdChecks}" } @N);

    # 2. no engine thought it had stopped, no state transfer again
    my @sc1421 = map { my $n = $_; map { "$n: $_" } log_since($c, $n, $log0{$n}) =~ /^(.*\bSC1421\b.*)$/mg } @N;
    ok(!@sc1421, "$what 2. no member logs SC1421 (its engine did not run for longer than dropTime)")
        or diag(join "\n", @sc1421);
    my @moved_ti = map { "$_ TransferIn: $f0->{$_}{TransferIn} -> $f1->{$_}{TransferIn}" }
                   grep { $f1->{$_}{TransferIn} != $f0->{$_}{TransferIn} } @N;
    ok(!@moved_ti, "$what 2. no member takes its sessions again by a state transfer (TransferIn)")
        or diag(join "\n", @moved_ti);

    # 3. the pages: alive and ready throughout, and at the end
    ok(!%odd, "$what 3. every page read ($reads) shows the other members alive and its engine ready")
        or diag(join "\n", 'seen instead (page reads):', map { "$_ x$odd{$_}" } sort keys %odd);
    ok(!@bad_uptime, "$what 3. every page read shows each other member's uptime (alive_ms) "
       . 'never negative and never going back')
        or diag(join "\n", scalar(@bad_uptime) . ' reads did not, the first:',
                @bad_uptime[0 .. ($#bad_uptime < 9 ? $#bad_uptime : 9)]);
    check(ready_and_alive($c, @N), $c, "$what 3. at the end every member is ready and sees the two others alive");

    # 4. the heartbeats go on, and each page follows its engine
    ok($f1->{$S}{PingsOut} > $f0->{$S}{PingsOut}, "$what 4. $S goes on sending its heartbeats "
       . "(PingsOut $f0->{$S}{PingsOut} -> $f1->{$S}{PingsOut})");
    my @flat = map { my $n = $_; map { "$n: msgs_in from $_ " . ($f0->{$n}{"in_$_"} // '-') . ' -> '
                                       . ($f1->{$n}{"in_$_"} // '-') }
                                 grep { ($f1->{$n}{"in_$_"} // 0) <= ($f0->{$n}{"in_$_"} // 0) }
                                 grep { $_ ne $n } @N } @N;
    ok(!@flat, "$what 4. every page counts the messages of each other member (its row's msgs_in grows)")
        or diag(join "\n", @flat);

    # 5. the sessions
    ok($rounds >= 3 && !@bad_writes, "$what 5. every write ($rounds rounds of " . scalar(keys %sess)
       . ') answers 200 with the next counter')
        or diag(join "\n", @bad_writes);
    reads_everywhere("$what 5.");
}

# The points of the messages plot on member $n's HTML page (its history
# samples in the plot's window, and the live one); -1 without the plot.
sub plot_points {
    my ($n) = @_;
    my ($st, undef, $html) = $c->get($n, '/cluster-manager', timeout => 5);
    return -1 unless $st == 200 && defined $html
        && $html =~ m{id="plot-msgs">.*?<polyline class="line" points="([-0-9., ]*)"}s;
    my $pts = $1;
    return scalar(() = $pts =~ /-?[0-9.]+,-?[0-9.]+/g);
}

# (b) ---------------------------------------------------------------------------
# node1's HTML page has history samples before the step (one every 5 s at
# most, from httpd's parent)
my $points0 = -1;
within(30, sub { $points0 = plot_points($S); return $points0 >= 2 });
ok($points0 >= 2, "(b) before the step, ${S}'s HTML page plots its history ($points0 points; "
   . 'polled up to 30 s)');
step_and_watch("(b) back $STEP s", -$STEP * 1_000_000, -$STEP);

# 6. node1's clock still behind, node3 stops answering (frozen): node1's page
# shows it dead, as node2's does
{
    my $V = 'node3';
    $c->sigstop($V);
    my (%dead, %row);
    within(20, sub {
        for my $n (grep { $_ ne $V } @N) {
            next if $dead{$n};
            $row{$n} = member_on($c, $n, $V);
            $dead{$n} = 1 if $row{$n} && $row{$n}{state} eq 'dead';
        }
        return 2 == keys %dead;
    });
    for my $n (grep { $_ ne $V } @N) {
        check($dead{$n}, $c, "(b) 6. $V frozen: ${n}'s page shows it dead (polled up to 20 s)",
              "${n}'s row for $V: " . ($row{$n} ? join(' ', map { "$_=" . ($row{$n}{$_} // '?') }
                                                      qw(state heard_ms_ago msgs_in))
                                                 . ' verdict="' . ($row{$n}{verdict} // '') . '"'
                                                : '(none)'));
    }
    $c->sigcont($V);
    check(defined within(40, sub { ready_and_alive($c, @N) }), $c,
          "(b) 6. $V resumed: every member ready again, each sees the two others alive "
          . '(polled up to 40 s)');
    reads_everywhere("(b) 6. after ${V}'s return:");
}
# 7. the clock still behind: node1's page went on taking history samples
{
    my $points1 = -1;
    within(20, sub { $points1 = plot_points($S); return $points1 > $points0 });
    ok($points1 > $points0, "(b) 7. ${S}'s HTML page went on sampling its history: "
       . "$points0 points before the step, $points1 now (polled up to 20 s)");
}

# (c) ---------------------------------------------------------------------------
step_and_watch('(c) forward ' . 2 * $STEP . ' s', $STEP * 1_000_000, $STEP);

# (d) ---------------------------------------------------------------------------
# node1's clock back again, STEP s before the first engine's start, and its
# engine killed: httpd's parent starts a new one, whose start on the wall
# clock is earlier than its predecessor's (whatever the time the test took
# so far).  Its incarnation must still be the newer one, or the others
# refuse its heartbeats as an older incarnation's (SC1225).
{
    my %log0 = map { $_ => length $c->error_log($_) } @N;
    set_offset($OFFSET, -int((time - $T_START + $STEP) * 1_000_000));
    my $p0 = status_of($c, $S) || {};
    my ($epid, $inc0) = (num($p0, 'EnginePid') // 0, $p0->{Incarnation} // '');
    my @ours = $c->pids($S);
    ok($epid && $inc0 =~ /^\d+$/ && (grep { $_ == $epid } @ours) && $epid != $c->member($S)->{pid},
       "(d) ${S}'s engine $epid (incarnation $inc0) is one of its processes (@ours), not the parent");
    kill 'KILL', $epid if $epid && (grep { $_ == $epid } @ours) && $epid != $c->member($S)->{pid};
    my $new;
    within(20, sub {
        my $p = status_of($c, $S) or return 0;
        $new = $p if $p->{EnginePid} && $p->{EnginePid} ne $epid
            && ($p->{EngineState} // '') eq 'ready';
        return $new;
    });
    check($new, $c, "(d) engine killed with the clock before its first start: $S runs a new engine, ready "
          . '(polled up to 20 s)');
    my $inc1 = $new ? $new->{Incarnation} // '' : '';
    ok($inc1 =~ /^\d+$/ && $inc0 =~ /^\d+$/ && $inc1 > $inc0,
       "(d) the new engine's incarnation ($inc1) is above the one before ($inc0)");
    my %seen;
    within(20, sub {
        for my $n (grep { $_ ne $S } @N) {
            my $m = member_on($c, $n, $S);
            $seen{$n} = $m && $m->{state} eq 'alive' && $inc1 ne ''
                        && ($m->{incarnation} // '') eq $inc1;
        }
        return !grep { !$seen{$_} } grep { $_ ne $S } @N;
    });
    for my $n (grep { $_ ne $S } @N) {
        my $m = member_on($c, $n, $S) || {};
        check($seen{$n}, $c, "(d) $n sees $S alive with its new incarnation (polled up to 20 s)",
              "${n}'s row for $S: state " . ($m->{state} // '-') . ' incarnation '
              . ($m->{incarnation} // '-') . " (the new engine's: $inc1)");
    }
    my @refused = map { my $n = $_; map { "$n: $_" } log_since($c, $n, $log0{$n}) =~ /^(.*\bSC1225\b.*)$/mg }
                  grep { $_ ne $S } @N;
    ok(!@refused, "(d) no member refuses ${S}'s heartbeats as an older incarnation's (SC1225)")
        or diag(join "\n", @refused);
    check(defined within(40, sub { ready_and_alive($c, @N) }), $c,
          '(d) every member ready, each sees the two others alive (polled up to 40 s)');
    reads_everywhere('(d)');
}

$c->teardown;
is_deeply([ $c->problems ], [], 'teardown found no hang or crash');
done_testing();
