#!perl
# Bad session input on one member (node1 of two static members, acknowledged
# replication, demo application at /app, LimitRequestFieldSize 16384 so that
# 8 KB cookies reach the module):
#   - an oversized cookie (8192 characters; 32 hex + '.' + an 8000-character
#     route), ids of the wrong length (31 and 33 hex), with 'g' characters,
#     `../../etc/passwd`, a quoted id, an id with a well-formed route of
#     another member (node2) that the cluster does not hold, the attacker's
#     own well-formed id (cookie, and ;jsessionid= path parameter), an id
#     that was held but invalidated, `;jsessionid=` with traversal characters:
#     every answer is 200 with a NEW session (Session: (new), a Set-Cookie
#     with a fresh id of this member's shape, counter 1), never the one sent;
#     the ids sent are not held afterwards on either member; SessionsActive
#     grows by exactly one per request; nothing crashes;
#   - a held id given as ;jsessionid= is adopted (so the path parameter is
#     read at all);
# and on a second cluster with Manager maxSessionSize="512"
# maxActiveSessions="20" probationInactiveInterval="0" (no probation: no
# session gives way to a new one; session_flood.t tests probation):
#   - a full store: of 25 new sessions 20 are stored and get a cookie, 5 are
#     refused (SessionsRejectedFull +5, SC1432 in the error_log), the 20 still
#     work (on both members), no session is evicted;
#   - a session too large (an attribute of 1000 bytes) is refused
#     (SessionsRejectedSize grows, SC1275 in the error_log), the session keeps
#     its previous data on both members and the other sessions are intact;
#     a new session that is too large is refused the same way;
#   - after one invalidation a new session fits again;
# and on a third cluster with Manager maxInactiveInterval="2":
#   - an expired id presented again (GET /app?read, while both engines are
#     frozen so that no sweep removes it first) is never served again, and
#     the sweep still removes it afterwards (SessionsExpired +3 on both).
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
use SC::Test qw(page status_of counter check within app valid_sid demo_module demo_conf sess_line);

$SIG{ALRM} = sub { die "sessions_input.t: time limit (90 s) reached\n" };
alarm 90;

my $DEMO_SO = demo_module();

# ---------------------------------------------------------------------------
# helpers (the ?auto page and demo app helpers are in SC::Test)
# ---------------------------------------------------------------------------

sub short {
    my ($s) = @_;
    $s //= '';
    return length $s > 120 ? substr($s, 0, 100) . '...(' . length($s) . ' chars)' : $s;
}

sub show {
    my ($r) = @_;
    my $b = $r->{body};
    $b = substr($b, 0, 600) . "...\n" if length $b > 600;
    return "GET " . short($r->{path}) . ": status $r->{status}" . ($r->{error} ? " ($r->{error})" : '')
         . ", Set-Cookie: " . short($r->{headers}{'set-cookie'} // '(none)') . "\n$b";
}

sub rand_hex { join '', map { sprintf '%X', int rand 16 } 1 .. $_[0] }

sub wait_ready {
    my ($c) = @_;
    my %p;
    my $ok = within(20, sub {
        for my $n ($c->members) {
            $p{$n} = status_of($c, $n) or return 0;
            return 0 unless $p{$n}{EngineState} eq 'ready' && ($p{$n}{MembersAlive} // 0) >= 1;
        }
        return 1;
    });
    check(defined $ok, $c, 'all members ready and seeing each other',
          map { "$_: " . sess_line($p{$_}) } sort keys %p);
}

sub no_crash {
    my ($c, $label) = @_;
    for my $n ($c->members) {
        ok($c->is_running($n), "$label: $n still runs");
        unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/,
               "$label: $n: no crash in the error_log");
    }
}

my $APP = demo_conf($DEMO_SO, server => "LimitRequestFieldSize 16384\n");

# ===========================================================================
# Part 1: bad ids
# ===========================================================================
{
    my $c = SC::Cluster->new(
        members    => 2,
        loglevel   => 'info',
        extra_conf => $APP,
        cluster    => sub { SC::Cluster::static_block($_[0], $_[1], channelSendOptions => 6, valves => $KEEP_ROUTES) },
    );
    $c->start_all;
    wait_ready($c);
    my $engine_pid = counter($c, 'node1', 'EnginePid');

    # a real session, held by the cluster
    my $real = app($c, 'node1', 'auto');
    my $REAL = $real->{cookie};
    ok(valid_sid($REAL, 'node1'), "a real session is made on node1 ($REAL)") or diag(show($real));
    # and one that was held, then invalidated
    my $gone = app($c, 'node1', 'auto');
    my $GONE = $gone->{cookie};
    my $inv = app($c, 'node1', 'invalidate=1', id => $GONE);
    is($inv->{invalidated}, 'yes', 'another one is made and invalidated') or diag(show($inv));

    # the path parameter is read: a held id given as ;jsessionid= is adopted
    {
        my $r = app($c, 'node1', 'auto', path => "/;jsessionid=$REAL");
        check(($r->{session} // '') eq $REAL && ($r->{counter} // '') eq '2' && !$r->{cookie}, $c,
              'a held id as ;jsessionid= path parameter is adopted (counter 2, no new cookie)',
              show($r));
        $r = app($c, 'node2', 'auto', path => "/x;jsessionid=$REAL");
        check(($r->{session} // '') eq $REAL && ($r->{counter} // '') eq '3', $c,
              'on node2 too (/app/x;jsessionid=..., counter 3)', show($r));
    }

    my $attacker  = 'DEADBEEF' x 4 . '.node1';
    my $attacker2 = lc('C0FFEE00' x 4) . '.node1';
    my $foreign   = rand_hex(32) . '.node2';
    my $hex32     = rand_hex(32);
    my @cases = (
        [ 'oversized cookie: 8192 hex characters',
          cookie => 'JSESSIONID=' . ('A' x 8192) ],
        [ 'oversized cookie: 32 hex + an 8000-character route',
          cookie => "JSESSIONID=$hex32." . ('r' x 8000) ],
        [ 'route of 64 characters (one more than allowed)',
          id => "$hex32." . ('n' x 64) ],
        [ '31 hex characters', id => substr($hex32, 1) . '.node1' ],
        [ '33 hex characters', id => "${hex32}A.node1" ],
        [ "'g' characters", id => 'g' x 32 . '.node1' ],
        [ "one 'g' among 31 hex", id => substr($hex32, 0, 31) . 'g.node1' ],
        [ 'no route', id => "$hex32." ],
        [ 'no dot', id => "${hex32}node1" ],
        [ 'route with a slash', id => "$hex32.node1/../x" ],
        [ '../../etc/passwd', id => '../../etc/passwd' ],
        [ 'quoted id', cookie => qq{JSESSIONID="$attacker"} ],
        [ "well-formed id with another member's route (node2), not held", id => $foreign ],
        [ "the attacker's own well-formed id (cookie)", id => $attacker ],
        [ "the attacker's own well-formed id, lower-case hex (cookie)", id => $attacker2 ],
        [ "the attacker's own id among other cookies",
          cookie => "a=1; JSESSIONID=$attacker; b=2" ],
        [ "the attacker's own well-formed id (;jsessionid=)", path => "/;jsessionid=$attacker" ],
        [ 'an invalidated id', id => $GONE ],
        [ ';jsessionid=../../etc/passwd', path => '/;jsessionid=../../etc/passwd' ],
        [ ';jsessionid=..\\..\\etc\\passwd', path => '/;jsessionid=..\\..\\etc\\passwd' ],
        [ ';jsessionid=....//....//etc/passwd', path => '/x;jsessionid=....//....//etc/passwd' ],
        [ ';jsessionid=ID.%2e%2e (encoded dots as the route)', path => "/;jsessionid=$hex32.%2e%2e" ],
        [ ';jsessionid= with a space in the route', path => "/;jsessionid=$hex32.no%20de1" ],
        [ ';jsessionid= of 200 characters', path => '/;jsessionid=' . ('B' x 200) ],
    );

    my $active0 = counter($c, 'node1', 'SessionsActive');
    my $created0 = counter($c, 'node1', 'SessionsCreated');
    my %sent;     # ids the test sent
    my %new;      # ids the cluster gave out
    my $expected_new = 0;
    for my $case (@cases) {
        my ($name, %o) = @$case;
        my $r = app($c, 'node1', 'auto', %o);
        $expected_new++;
        my $given = $o{id} // ($o{cookie} && $o{cookie} =~ /JSESSIONID="?([^";]*)/ ? $1 : undef)
                  // ($o{path} && $o{path} =~ /jsessionid=(.*)$/ ? $1 : undef);
        $sent{$given} = 1 if defined $given;
        my $ok = $r->{status} == 200
              && ($r->{session} // '') eq '(new)'
              && valid_sid($r->{cookie}, 'node1')
              && (!defined $given || lc $r->{cookie} ne lc $given)
              && !$new{ $r->{cookie} }
              && ($r->{counter} // '') eq '1';
        check($ok, $c, "$name: 200 with a new session (new id, counter 1)", show($r));
        $new{ $r->{cookie} } = 1 if $r->{cookie};
    }
    my $active1 = counter($c, 'node1', 'SessionsActive');
    check($active1 - $active0 == $expected_new, $c,
          "SessionsActive on node1 grew by exactly the $expected_new new sessions ($active0 -> $active1)");
    is(counter($c, 'node1', 'SessionsCreated') - $created0, $expected_new,
       "SessionsCreated on node1 grew by $expected_new");
    is(counter($c, 'node2', 'SessionsActive'), $active1, 'node2 holds as many sessions as node1');

    # the ids sent are not held: reading them (which stores nothing) starts
    # no session and adopts none, on either member
    for my $n (qw(node1 node2)) {
        my @adopted;
        my $probed = 0;
        for my $id (sort keys %sent) {
            next if length $id > 200 || $id =~ /[\s;"]/;
            my $r = app($c, $n, 'read', id => $id);
            $probed++;
            push @adopted, short($id) . ' -> ' . ($r->{session} // "status $r->{status}")
                unless ($r->{session} // '') eq '(new)' && $r->{status} == 200;
        }
        # (the two oversized ones cannot be sent as a plain cookie header here)
        ok(!@adopted && $probed >= 15,
           "$n: none of the ids the test sent is held afterwards ($probed ids read back, at least 15)")
            or diag(join("\n", @adopted));
    }
    # and the real session is still there, on both
    for my $n (qw(node1 node2)) {
        my $r = app($c, $n, 'read', id => $REAL);
        check(($r->{session} // '') eq $REAL && ($r->{counter} // '') eq '3', $c,
              "$n: the real session is intact (counter 3)", show($r));
    }
    is(counter($c, 'node1', 'SessionsActive'), $active1, 'reads did not create sessions');
    like($c->error_log('node1'), qr/SC1271: session id of a foreign shape ignored/,
         'node1 logs ids of a foreign shape (SC1271, info)');
    is(counter($c, 'node1', 'EnginePid'), $engine_pid, 'node1 still runs the same engine');
    no_crash($c, 'bad ids');
    $c->teardown;
}

# ===========================================================================
# Part 2: a full store and a too large session
# ===========================================================================
{
    my $MANAGER = { maxActiveSessions => '20', maxSessionSize => '512',
                    probationInactiveInterval => '0' };
    my $c = SC::Cluster->new(
        members    => 2,
        extra_conf => $APP,
        cluster    => sub {
            my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all, channelSendOptions => 6, valves => $KEEP_ROUTES, manager => $MANAGER);
        },
    );
    $c->start_all;
    wait_ready($c);
    my $p0 = status_of($c, 'node1');
    is($p0->{SessionsCapacity}, 20, 'maxActiveSessions 20: SessionsCapacity 20');
    is($p0->{SessionMaxSize}, 512, 'maxSessionSize 512: SessionMaxSize 512');

    # full store --------------------------------------------------------------
    my (@ids, @refused);
    for my $i (1 .. 25) {
        my $r = app($c, 'node1', 'auto');
        if ($r->{cookie}) { push @ids, $r->{cookie} }
        else              { push @refused, $r }
    }
    my $p1 = status_of($c, 'node1');
    check(@ids == 20, $c, '25 new sessions on a store of 20: 20 get a cookie',
          scalar(@ids) . ' got a cookie', 'node1: ' . sess_line($p1));
    is(scalar @refused, 5, '... and 5 get none');
    ok(@refused == 5 && !(grep { $_->{status} != 507
                                 || ($_->{headers}{'session-cluster-refused'} // '') !~ /store is full/ } @refused),
       '... the 5 refused ones are told: 507 with Session-Cluster-Refused (the store is full), never a page that looks kept')
        or diag(join("\n", map { show($_) } @refused[0 .. ($#refused < 1 ? $#refused : 1)]));
    is($p1->{SessionsActive}, 20, 'node1: SessionsActive 20');
    is($p1->{SessionsRejectedFull}, 5, 'node1: SessionsRejectedFull 5');
    like($c->error_log('node1'), qr/SC1432: new session not saved \(507 to the client\): the session store is full \(20 sessions, \d+ of its \d+ bytes/,
         'node1 logs SC1432 (store full)');
    is(counter($c, 'node2', 'SessionsActive'), 20, 'node2 holds the 20 sessions');
    # the 20 still work, on both members
    {
        my @bad;
        for my $k (0 .. $#ids) {
            my $n = $k % 2 ? 'node2' : 'node1';
            my $r = app($c, $n, 'auto', id => $ids[$k]);
            push @bad, "$n: " . show($r)
                unless ($r->{session} // '') eq $ids[$k] && ($r->{counter} // '') eq '2';
        }
        check(!@bad, $c, 'the 20 stored sessions still work on either member (counter 2)',
              @bad[0 .. ($#bad < 2 ? $#bad : 2)]);
    }
    is(counter($c, 'node1', 'SessionsRemoved'), 0, 'no session was evicted (SessionsRemoved 0)');

    # a session too large ---------------------------------------------------------
    my $size0 = counter($c, 'node1', 'SessionsRejectedSize');
    my $victim = $ids[0];
    my $big = 'x' x 1000;
    my $r = app($c, 'node1', "set=big&value=$big", id => $victim);
    is($r->{status}, 507, 'a 1000-byte attribute: the request gets 507 (the change is not kept)')
        or diag(show($r));
    my $size1 = counter($c, 'node1', 'SessionsRejectedSize');
    check($size1 > $size0, $c, "a 1000-byte attribute: SessionsRejectedSize grows ($size0 -> $size1)",
          show($r));
    is($size1 - $size0, 1, '... by one');
    like($c->error_log('node1'), qr/SC1275: session not saved: \d+ bytes, more than Manager maxSessionSize 512/,
         'node1 logs SC1275 (session too large)');
    for my $n (qw(node1 node2)) {
        my $rr = app($c, $n, 'read', id => $victim);
        check(($rr->{session} // '') eq $victim && ($rr->{counter} // '') eq '2'
              && !exists $rr->{attrs}{big}, $c,
              "$n: the session keeps its previous data (counter 2, no 'big' attribute)", show($rr));
    }
    {
        my @bad;
        for my $k (1 .. $#ids) {
            my $n = $k % 2 ? 'node1' : 'node2';
            my $rr = app($c, $n, 'read', id => $ids[$k]);
            push @bad, "$n: " . show($rr)
                unless ($rr->{session} // '') eq $ids[$k] && ($rr->{counter} // '') eq '2';
        }
        check(!@bad, $c, 'the other 19 sessions are intact', @bad[0 .. ($#bad < 2 ? $#bad : 2)]);
    }
    # an attribute that fits is still stored (the session is not broken)
    $r = app($c, 'node1', 'set=small&value=' . ('y' x 100), id => $victim);
    my $rr = app($c, 'node2', 'read', id => $victim);
    check(($rr->{attrs}{small} // '') eq 'y' x 100, $c,
          'a 100-byte attribute on the same session is stored and replicated', show($rr));

    # a new session that is too large (the store is full too: size is refused first)
    my $full0 = counter($c, 'node1', 'SessionsRejectedFull');
    $r = app($c, 'node1', "set=big&value=$big");
    check(!$r->{cookie}, $c, 'a new session with a 1000-byte attribute gets no cookie', show($r));
    is(counter($c, 'node1', 'SessionsRejectedSize'), $size1 + 1, '... SessionsRejectedSize grows again');
    is(counter($c, 'node1', 'SessionsRejectedFull'), $full0, '... SessionsRejectedFull does not');
    is(counter($c, 'node1', 'SessionsActive'), 20, 'still 20 sessions');

    # one invalidation makes room again
    $r = app($c, 'node2', 'invalidate=1', id => $ids[-1]);
    is($r->{invalidated}, 'yes', 'one session invalidated (on node2)');
    my $ok = within(20, sub { (counter($c, 'node1', 'SessionsActive') // 0) == 19 });
    ok(defined $ok, 'node1 holds 19 sessions (polled up to 20 s)');
    $r = app($c, 'node1', 'auto');
    check(valid_sid($r->{cookie}, 'node1') && ($r->{counter} // '') eq '1', $c,
          'a new session fits again', show($r));
    is(counter($c, 'node1', 'SessionsActive'), 20, 'node1 holds 20 sessions again');
    my $rv = app($c, 'node1', 'read', id => $victim);
    is($rv->{counter}, 2, 'the first session is still there');

    for my $n (qw(node1 node2)) {
        unlike($c->error_log($n), qr/SC1261/, "$n: no replicated session was refused (SC1261)");
    }
    no_crash($c, 'full store / large session');
    $c->teardown;
}

# ===========================================================================
# Part 3: an expired id presented again is not brought back
# ===========================================================================
# Manager maxInactiveInterval="2" (no SessionMaxAge, so only the cluster
# decides): three sessions made on node1; both members' engines are then
# frozen (SIGSTOP), so no sweep can remove them; from 2.03 s after the last
# one's answer (the member's own idle time is longer), every id is presented
# three times, 0.1 s apart (GET /app?read, which stores nothing): every
# answer must be a new session, never the expired one, while the status page
# (?session=ID, read from the store without the engine) still shows it held:
# the requests met the expired sessions themselves, not their absence.  The
# engines are thawed and the sweep must then remove all three on both members
# despite those requests (SessionsExpired +3 on each; polled, at most 30 s).
{
    my $MANAGER = { maxInactiveInterval => '2' };
    my $c = SC::Cluster->new(
        members    => 2,
        loglevel   => 'info',
        extra_conf => $APP,
        cluster    => sub {
            my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all, channelSendOptions => 6, valves => $KEEP_ROUTES, manager => $MANAGER);
        },
    );
    $c->start_all;
    wait_ready($c);
    my %exp0 = map { $_ => counter($c, $_, 'SessionsExpired') } qw(node1 node2);
    my %engine = map { $_ => counter($c, $_, 'EnginePid') } qw(node1 node2);
    my @ids;
    for my $i (1 .. 3) {
        my $r = app($c, 'node1', 'auto');
        push @ids, $r->{cookie};
        ok(valid_sid($r->{cookie}, 'node1'), "expiry: session $i made") or diag(show($r));
    }
    my $t_last = time;
    my $held_by = sub {    # the members whose store still holds $id
        my ($id) = @_;
        return grep { my (undef, undef, $b) = $c->get($_, "/cluster-manager?session=$id");
                      ($b // '') =~ /^SessionHeld: yes$/m } qw(node1 node2);
    };
    my @frozen = grep { ($engine{$_} // 0) > 1 && SC::Cluster::freeze_pids($engine{$_}) } qw(node1 node2);
    my (%adopted, %probes, %held);
    my $ok = eval {
        sleep 2.03 - (time - $t_last) if time - $t_last < 2.03;
        for my $round (1 .. 3) {
            for my $id (@ids) {
                my $r = app($c, 'node1', 'read', id => $id);
                $probes{$id}++;
                push @{ $adopted{$id} }, sprintf('%.2fs after its last use: %s', time - $t_last,
                                                 $r->{session} // "status $r->{status}")
                    unless ($r->{session} // '') eq '(new)' && $r->{status} == 200;
            }
            sleep 0.1;
        }
        $held{$_} = join(' ', $held_by->($_)) for @ids;
        1;
    };
    my $err = $@;
    kill 'CONT', $engine{$_} for @frozen;
    die $err unless $ok;
    is(scalar @frozen, 2, "expiry: both members' engines frozen (SIGSTOP) while the ids are presented");
    for my $k (0 .. $#ids) {
        my $id = $ids[$k];
        my $a = $adopted{$id} || [];
        my $n = $probes{$id} // 0;
        check(!@$a && $n == 3, $c,
              "expiry: session " . ($k + 1) . " is never served again once expired ($n requests with its id)",
              'served again ' . scalar(@$a) . ' times, first: ' . ($a->[0] // ''));
        is($held{$id}, 'node1 node2', 'expiry: session ' . ($k + 1)
           . ' was still held by both stores when those requests were refused (no sweep ran)');
    }
    my %p;
    my $gone = within(30, sub {
        $p{$_} = status_of($c, $_) for qw(node1 node2);
        return !grep { !$p{$_} || ($p{$_}{SessionsActive} // -1) != 0
                       || ($p{$_}{SessionsExpired} // 0) - $exp0{$_} < 3 } qw(node1 node2);
    });
    check(defined $gone, $c, 'expiry: once the engines run again, all three are removed on both members '
          . 'despite the requests with their ids (polled up to 30 s)',
          map { "$_: SessionsExpired before $exp0{$_}; " . sess_line($p{$_}) } qw(node1 node2));
    for my $n (qw(node1 node2)) {
        is(($p{$n}{SessionsExpired} // 0) - $exp0{$n}, 3, "expiry: $n counts 3 expired sessions");
        is(counter($c, $n, 'EnginePid'), $engine{$n}, "expiry: $n still runs the same engine");
    }
    no_crash($c, 'expired ids');
    $c->teardown;
}

done_testing();
