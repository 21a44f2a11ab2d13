#!perl
# The nine steps of Tomcat's cluster-howto failover scenario, with two static
# members A = node1 and B = node2 running the demo application at /app
# (`SessionMaxAge 3`, channelSendOptions 6: every change is acknowledged by
# the other member before the request returns; Manager sendAllSessions false,
# sendAllSessionsSize 2 and sendAllSessionsWaitTime 0, so the state transfer
# comes in several blocks, one right after the other):
#   1. A starts (and, alone, becomes ready by itself);
#   2. B starts and receives A's sessions before it reports ready: a few
#      sessions made on A first; B's page shows TransferIn >= their number on
#      the first page that says `EngineState: ready`, and B serves them;
#   3. A creates S1 (counter 1..3);
#   4. A is killed (SIGKILL);
#   5. B serves S1 with its data: the counter continues from A's value;
#   6. A restarts and receives B's state before it is ready
#      (LastTransferSessions >= 1 when it first says ready) and serves S1
#      with the right counter;
#   7. A invalidates S1 (/app?invalidate=1) and B drops it: B counts a
#      removal and S1's cookie gets a new session on B;
#   8. B creates S2 and A has it (the counter continues on A);
#   9. S2 idles out (SessionMaxAge 3: both members hold it with a maximum
#      idle time of 3 s) and is expired, not otherwise removed, on both: both
#      members count the expiry, hold no session any more (polled, 30 s
#      limit), and S2's cookie gets a new session on either.
# Polling limits (20-30 s) are limits, never figures checked.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
# ReplicationValve only: ids keep their route here, whichever member serves
# them (re-binding with JvmRouteBinderValve is balancer.t's subject)
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
use SC::Test qw(page status_of counter check within app show valid_sid demo_module demo_conf sess_line);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "sessions_seed002.t: time limit (90 s) reached\n" };
alarm 90;

my $DEMO_SO = demo_module();

# ---------------------------------------------------------------------------
# helpers (the ?auto page and demo app helpers are in SC::Test)
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
my $APP = demo_conf($DEMO_SO, session => "  SessionMaxAge 3\n");
my $MANAGER = { sendAllSessions => 'false', sendAllSessionsSize => '2', sendAllSessionsWaitTime => '0' };
my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all, channelSendOptions => 6, valves => $KEEP_ROUTES, manager => $MANAGER);
    },
);
my ($A, $B) = qw(node1 node2);
my $t_start = time;

# 1. A starts ------------------------------------------------------------------
$c->start($A);
{
    my $p;
    my $took = within(20, sub { $p = status_of($c, $A); $p && $p->{EngineState} eq 'ready' });
    check(defined $took, $c, '1. A (alone) becomes ready by itself',
          'last page: ' . sess_line($p))
        and note(sprintf 'A ready %.2fs after start returned', $took);
    like($c->error_log($A), qr/SC1266/, '1. A logs that no member was ready to send it sessions');
}

# sessions on A before B starts
my $K = 5;
my %early;    # id => counter
for my $i (1 .. $K) {
    my $r1 = app($c, $A, 'auto');
    my $id = $r1->{cookie};
    my $r2 = app($c, $A, 'auto', $id);
    if (!(valid_sid($id, $A) && ($r2->{counter} // '') eq '2' && ($r2->{session} // '') eq $id)) {
        check(0, $c, "early session $i on A: created and incremented to 2",
              show($r1), show($r2));
        next;
    }
    $early{$id} = 2;
}
is(scalar keys %early, $K, "$K sessions made on A before B starts");
is(counter($c, $A, 'SessionsActive'), $K, "A holds $K sessions");

# 2. B starts, receives A's sessions before it is ready --------------------------
{
    my $t0 = time;
    $c->start($B);
    my (@seen, $ready);
    my $took = within(20, sub {
        my $p = status_of($c, $B) or return 0;
        push @seen, $p;
        $ready = $p if $p->{EngineState} eq 'ready';
        return $ready;
    }, $t0);
    note('B pages until ready: ' . join(' | ', map { sess_line($_) } @seen[0 .. ($#seen < 3 ? $#seen : 3)])
         . (@seen > 4 ? ' ... ' . sess_line($seen[-1]) : ''));
    check(defined $took, $c, '2. B becomes ready', @seen ? 'last page: ' . sess_line($seen[-1]) : ());
    check($ready && ($ready->{TransferIn} // 0) >= $K, $c,
          "2. on the first page where B says ready, TransferIn >= $K",
          'that page: ' . sess_line($ready));
    check($ready && ($ready->{LastTransferSessions} // 0) >= $K, $c,
          "2. ... and LastTransferSessions >= $K", 'that page: ' . sess_line($ready));
    check($ready && ($ready->{SessionsActive} // 0) >= $K, $c,
          "2. ... and SessionsActive >= $K", 'that page: ' . sess_line($ready));
    my @early_ready = grep { $_->{EngineState} eq 'ready' && ($_->{TransferIn} // 0) < $K } @seen;
    ok(!@early_ready, '2. none of the pages of B polled said ready before it had the transfer')
        or diag('pages: ' . join("\n", map { sess_line($_) } @early_ready));
    like($c->error_log($B), qr/SC1263: state transfer from node1 complete/,
         '2. B logs the completed state transfer from A');
    cmp_ok(counter($c, $A, 'TransferOut') // 0, '>=', $K, "2. A counts TransferOut >= $K");

    # B serves them, counters continuing
    my $bad = 0;
    for my $id (sort keys %early) {
        my $r = app($c, $B, 'auto', $id);
        my $want = $early{$id} + 1;
        if (($r->{session} // '') eq $id && ($r->{counter} // '') eq $want
            && ($r->{route} // '') eq $B && !$r->{cookie}) {
            $early{$id} = $want;
        }
        else {
            $bad++ or check(0, $c, "2. B serves $id with counter $want", show($r));
        }
    }
    ok(!$bad, "2. B serves all $K transferred sessions with their counters continuing")
        or diag("$bad of $K wrong");
}

# 3. A creates S1 -----------------------------------------------------------------
my ($S1, $s1_counter);
{
    my $r = app($c, $A, 'auto');
    $S1 = $r->{cookie};
    check(valid_sid($S1, $A) && ($r->{counter} // '') eq '1' && ($r->{session} // '') eq '(new)',
          $c, "3. A creates S1 (counter 1, cookie ID.$A)", show($r));
    for my $want (2, 3) {
        $r = app($c, $A, 'auto', $S1);
        check(($r->{counter} // '') eq $want && ($r->{session} // '') eq ($S1 // '-'), $c,
              "3. A increments S1 to $want", show($r));
    }
    $s1_counter = $r->{counter} // 3;
    like($r->{attrs}{created} // '', qr/\d{4} \d\d:\d\d:\d\d GMT/, '3. S1 has its created attribute');
}
my $s1_created = app($c, $B, 'read', $S1)->{created};

# 4. A is killed -------------------------------------------------------------------
$c->kill9($A);
ok(!$c->is_running($A), '4. A is killed (SIGKILL)');

# 5. B serves S1 ---------------------------------------------------------------------
{
    my $r = app($c, $B, 'auto', $S1);
    my $want = $s1_counter + 1;
    check(($r->{session} // '') eq $S1 && ($r->{counter} // '') eq $want && !$r->{cookie}, $c,
          "5. B serves S1 with the counter continuing from A's value ($want)", show($r));
    is($r->{route}, $B, '5. ... answered by B');
    is($r->{created}, $s1_created, "5. ... with S1's created attribute from A");
    $s1_counter = $r->{counter} if ($r->{counter} // '') =~ /^\d+$/;
}

# 6. A restarts and receives B's state before it is ready --------------------------------
{
    my $t0 = time;
    $c->restart($A);
    my (@seen, $ready);
    my $took = within(20, sub {
        my $p = status_of($c, $A) or return 0;
        push @seen, $p;
        $ready = $p if $p->{EngineState} eq 'ready';
        return $ready;
    }, $t0);
    note(sprintf('A ready %.2fs after the restart began: ', $took // -1) . sess_line($ready));
    check(defined $took, $c, '6. restarted A becomes ready', @seen ? sess_line($seen[-1]) : ());
    check($ready && ($ready->{LastTransferSessions} // 0) >= 1, $c,
          '6. on the first page where A says ready, LastTransferSessions >= 1',
          'that page: ' . sess_line($ready));
    check($ready && ($ready->{SessionsActive} // 0) >= 1, $c,
          '6. ... and A holds sessions again', 'that page: ' . sess_line($ready));
    like($c->error_log($A, since_start => 1), qr/SC1263: state transfer from node2 complete/,
         '6. A logs the completed state transfer from B');

    my $r = app($c, $A, 'auto', $S1);
    my $want = $s1_counter + 1;
    check(($r->{session} // '') eq $S1 && ($r->{counter} // '') eq $want && !$r->{cookie}, $c,
          "6. restarted A serves S1 with the right counter ($want)", show($r));
    is($r->{route}, $A, '6. ... answered by A');
    $s1_counter = $r->{counter} if ($r->{counter} // '') =~ /^\d+$/;
}

# 7. A invalidates S1, B drops it ---------------------------------------------------------
{
    my $pb = status_of($c, $B);
    my $explicit_before = ($pb->{SessionsRemoved} // 0) - ($pb->{SessionsExpired} // 0);
    my $r = app($c, $A, 'invalidate=1', $S1);
    check($r->{status} == 200 && ($r->{invalidated} // '') eq 'yes', $c,
          '7. A invalidates S1 (Invalidated: yes)', show($r));
    like($r->{headers}{'set-cookie'} // '', qr/JSESSIONID=;?.*(?:Max-Age=0|expires=)/i,
         '7. ... and A removes the session cookie');
    my $pa = status_of($c, $A);
    my $pb2;
    # channelSendOptions 6: B acknowledged before the request returned;
    # polled all the same (20 s limit)
    my $took = within(20, sub {
        $pb2 = status_of($c, $B) or return 0;
        return (($pb2->{SessionsRemoved} // 0) - ($pb2->{SessionsExpired} // 0)) > $explicit_before;
    });
    check(defined $took, $c, '7. B counts S1 removed (SessionsRemoved grows by an invalidation, not an expiry)',
          "B before: removed-expired=$explicit_before; B now: " . sess_line($pb2),
          "A now: " . sess_line($pa));
    my $rb = app($c, $B, 'auto', $S1);
    check(($rb->{session} // '') eq '(new)' && valid_sid($rb->{cookie}, $B)
          && $rb->{cookie} ne $S1 && ($rb->{counter} // '') eq '1', $c,
          "7. S1's cookie on B gets a new session (new id, counter 1)", show($rb));
    my $ra = app($c, $A, 'auto', $S1);
    check(($ra->{session} // '') eq '(new)' && ($ra->{cookie} // $S1) ne $S1, $c,
          "7. S1's cookie on A gets a new session too", show($ra));
}

# 8. B creates S2, A has it -----------------------------------------------------------------
my $S2;
my $t_s2;
{
    my $r = app($c, $B, 'auto');
    $S2 = $r->{cookie};
    check(valid_sid($S2, $B) && ($r->{counter} // '') eq '1', $c,
          "8. B creates S2 (counter 1, cookie ID.$B)", show($r));
    $r = app($c, $B, 'auto', $S2);
    check(($r->{counter} // '') eq '2', $c, '8. B increments S2 to 2', show($r));
    $r = app($c, $A, 'auto', $S2);
    $t_s2 = time;    # S2's last access
    check(($r->{session} // '') eq ($S2 // '-') && ($r->{counter} // '') eq '3' && !$r->{cookie},
          $c, "8. A serves S2 with B's counter continuing (3)", show($r));
}

# 9. S2 idles out on A, and B drops it -------------------------------------------------------------
{
    my %before = map { $_ => status_of($c, $_) || {} } ($A, $B);
    # the cause of its expiry: both members hold S2 with SessionMaxAge's 3 s
    # as its maximum idle time (?session=ID, which does not touch it)
    for my $n ($A, $B) {
        my ($st, undef, $b) = $c->get($n, "/cluster-manager?session=$S2");
        check(!!(($st // 0) == 200 && ($b // '') =~ /^SessionHeld: yes$/m && $b =~ /^SessionMaxInactive: 3$/m), $c,
              "9. $n holds S2 with a maximum idle time of 3 s (SessionMaxAge 3)", "status " . ($st // '?') . ":\n" . ($b // ''));
    }
    # every other session was last used before S2, so S2 is gone when
    # neither member holds any session; nothing here touches S2 until then
    my (%p, %held, %why);
    my $done = sub {
        my $all = 1;
        for my $n ($A, $B) {
            my $p = $p{$n} = status_of($c, $n) or return 0;
            my $b = $before{$n};
            my (undef, undef, $sb) = $c->get($n, "/cluster-manager?session=$S2");
            $held{$n} = ($sb // '') =~ /^SessionHeld: (yes|no)$/m ? $1 : '?';
            my $expired = ($p->{SessionsExpired} // 0) - ($b->{SessionsExpired} // 0);
            my $other = ($p->{SessionsRemoved} // 0) - ($b->{SessionsRemoved} // 0) - $expired;
            $why{$n} = "$n: S2 held: $held{$n}; expired since: $expired; removed otherwise: $other; page: "
                     . sess_line($p);
            $all &&= $held{$n} eq 'no' && ($p->{SessionsActive} // -1) == 0 && $expired >= 1 && $other == 0;
        }
        return $all;
    };
    my $took = within(30, $done, $t_s2);
    check(defined $took, $c,
          '9. S2 expired on both members: not held, no session left, SessionsExpired grew and no session '
          . 'removed otherwise (polled up to 30 s)', map { $why{$_} } $A, $B);
    for my $n ($A, $B) {
        my $r = app($c, $n, 'auto', $S2);
        check(($r->{session} // '') eq '(new)' && valid_sid($r->{cookie}, $n) && $r->{cookie} ne $S2
              && ($r->{counter} // '') eq '1', $c,
              "9. S2's cookie on $n gets a new session", show($r));
    }
}

# nothing crashed ----------------------------------------------------------------------------------
for my $n ($A, $B) {
    ok($c->is_running($n), "$n still runs");
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
note(sprintf 'scenario took %.1fs', time - $t_start);

$c->teardown;
done_testing();
