#!perl
# BackupManager (issue 18): a member joining, expiry, invalidation, a change
# of id, and kill -9 of a backup then of the primary, through httpd.conf and
# HTTP (the brief's backup_join, backup_expiry and backup_replace in one file:
# one cluster serves the three in turn, the kills last).  node1..node4 with
# <Manager className="...BackupManager" maxInactiveInterval="3"
# processExpiresFrequency="1" probationInactiveInterval="0"/>, a
# ReplicationValve only (ids keep their route), the demo application at /app
# (sessions idle out after 3 s there: a read saves nothing, so only the
# engines' accesses (TOUCH) keep a backup's copy fresh), /app/long with
# SessionMaxAge 1800 (the sessions of A, C, D and E, which must stay) and
# /app/long/login with SessionClusterChangeIdOnLogin On.
#
# A. join: node1..node3 start, 6 sessions made on node1 and 3 on node2, 6
#    updates on node1 send 6 copies (BackupCopiesSent, 3 members); node4
#    starts while node1 and node2 are frozen: ready on node3's map, it keeps
#    all 9 locations although it has not heard the members that hold 4 of
#    them yet; node1 and node2 resumed, it is ready with SessionsProxy 9,
#    seeing the three others, no primary and no backup, each
#    session a location with no data (SessionHeld no) naming the primary and
#    backup the others name; each cookie on node4 returns its session intact
#    (fetched: BackupFetches +9 on node4), node4 becomes its primary (the
#    backup unchanged); the fetch latency p50/p99 is printed.
# B. expiry (4 members), at /app: a session idle past its 3 s is removed from its
#    primary, its backup and the locations (every member's ?session= says
#    role none), SessionsExpired +1 on its primary, its cookie then gets a
#    fresh session and no fetch; a session read every 0.5 s on its primary
#    over three times its limit stays on its backup all along (role backup,
#    data held) and reads back intact.
# C. invalidation of a session on node2, which fetched it from node1: gone on
#    every member, its cookie gets a fresh session on node1, node3 and node4.
# D. SessionClusterChangeIdOnLogin: a session of node1 logged in on node2
#    (/app/long/login?set=realm-user): a new id with node2's route; the old id is
#    known nowhere; the new one settled with node2 primary, its data intact
#    when read on node3; the old cookie gets a fresh session on node4.
# E. re-placement: 12 sessions made on node1; kill -9 of node3: each session
#    it backed gets a new backup among node2 and node4 (?session= on every
#    survivor, data held there), node1's BackupReplacements grows by their
#    number and BackupReplacing comes back to 0, the other sessions keep
#    their backup; an update of each re-placed session on node1 sends one
#    copy each (BackupCopiesSent, 3 members); kill -9 of node1: every session
#    is still served with its last counter on the survivor that is not its
#    backup (it fetches: only the new backup held the data of the re-placed
#    ones).
#    (terminateOnStartFailure: backup_start_failure.t.)
# States, counters and logs only; within() is a polling limit.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of member_on check within app show valid_sid demo_module demo_conf num
                log_since);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 300;
$SIG{ALRM} = sub { die "backup_lifecycle.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $POLL = 30;
my $MAX_AGE = 3;       # Manager maxInactiveInterval: sessions at /app
my $LONG = '/long';    # /app/long: SessionMaxAge 1800, for the sessions that must stay
my $DEMO_SO = demo_module();
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my $APP = demo_conf($DEMO_SO)
        . "<Location /app$LONG>\n  SessionMaxAge 1800\n</Location>\n"
        . "<Location /app$LONG/login>\n  SessionClusterChangeIdOnLogin On\n</Location>\n";

sub bm_block {
    my ($m, $all, $mgr, %o) = @_;
    my $x = SC::Cluster::static_block($m, $all, %o, manager => { %{ $mgr || {} } });
    $x =~ s/session\.DeltaManager"/session.BackupManager"/ or die "no Manager element\n";
    return $x;
}

my $t_start = time;
my $c = SC::Cluster->new(
    members    => 4,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub { bm_block($_[0], $_[1], { processExpiresFrequency => 1, probationInactiveInterval => 0,
                                               maxInactiveInterval => $MAX_AGE },
                                 valves => $KEEP_ROUTES,
                                 # A freezes node1 and node2 while node4 starts: well
                                 # inside this, however slow the start (sanitizers)
                                 membership => { dropTime => 8000 }) },
);
my @N = $c->members;

# --- the page's view of sessions (as in backup_roles.t) ---
sub view {
    my ($cl, $n, $id) = @_;
    my ($s, undef, $b) = $cl->get($n, "/cluster-manager?session=$id", timeout => 3);
    return undef unless $s == 200;
    my %f = $b =~ /^(\w+): ?(.*)$/mg;
    return \%f;
}
sub roles {
    my ($id, @n) = @_;
    my %r;
    for my $n (@n) {
        my $v = view($c, $n, $id) || {};
        $r{$n} = { role => $v->{SessionRole} // '?', primary => $v->{SessionPrimary} // '?',
                   backup => $v->{SessionBackup} // '?', epoch => $v->{SessionEpoch} // '?',
                   held => $v->{SessionHeld} // '?' };
    }
    return \%r;
}
sub roles_line {
    my ($r) = @_;
    return join(' | ', map { my $x = $r->{$_};
                             "$_: $x->{role} p=$x->{primary} b=$x->{backup} e=$x->{epoch} held=$x->{held}" }
                sort keys %$r);
}
sub settled {
    my ($r) = @_;
    my @p = grep { $r->{$_}{role} eq 'primary' } keys %$r;
    my @b = grep { $r->{$_}{role} eq 'backup' } keys %$r;
    return () unless @p == 1 && @b == 1;
    my ($P, $B) = ($p[0], $b[0]);
    for my $n (keys %$r) {
        my $x = $r->{$n};
        return () unless $x->{primary} eq $P && $x->{backup} eq $B && $x->{epoch} eq $r->{$P}{epoch};
        return () unless $x->{held} eq ($n eq $P || $n eq $B ? 'yes' : 'no');
        return () unless $n eq $P || $n eq $B || $x->{role} eq 'proxy';
    }
    return ($P, $B, $r->{$P}{epoch});
}
# Polls until $id is settled over @n (and $want->(P, B, epoch) holds); after
# one failed wait, looks once only.
my $settle_failed = 0;
sub settle {
    my ($id, $want, @n) = @_;
    my ($r, @s);
    my $ok = within($settle_failed ? 0 : $POLL,
                    sub { $r = roles($id, @n); @s = settled($r); @s && (!$want || $want->(@s)) });
    $settle_failed = 1 unless defined $ok;
    @s = () unless defined $ok;
    return (\@s, $r);
}
# 1 when no member of @n knows $id (role none, no data).
sub gone {
    my ($id, @n) = @_;
    my $r = roles($id, @n);
    return (!grep { $r->{$_}{role} ne 'none' || $r->{$_}{held} ne 'no' } @n) ? 1 : 0;
}
# BackupFetchP50Us and BackupFetchP99Us of member $n's ?auto page (read
# here: SC::Test::parse_auto takes field names of letters only).
sub latency {
    my ($n) = @_;
    my $b = SC::Test::page($c, $n) // '';
    return map { $b =~ /^$_: (\d+)$/m ? $1 : '' } qw(BackupFetchP50Us BackupFetchP99Us);
}
sub pages { my (@n) = @_; return { map { $_ => status_of($c, $_) || {} } @n } }
sub fields_line {
    my ($p, @k) = @_;
    return map { my $n = $_; "$n: " . join(' ', map { "$_=" . ($p->{$n}{$_} // '?') } @k) } sort keys %$p;
}
sub delta { my ($p0, $p1, $n, $k) = @_; return num($p1->{$n}, $k) - num($p0->{$n}, $k) }
sub first { my ($n, @l) = @_; return @l[0 .. ($#l < $n - 1 ? $#l : $n - 1)] }
# A fresh session in answer to $id on $n (the cookie names no session held).
sub fresh {
    my ($n, $id, $path) = @_;
    my $r = app($c, $n, 'auto', $id, path => $path // '');
    my $ok = $r->{status} == 200 && ($r->{session} // '') eq '(new)' && ($r->{counter} // '') eq '1'
             && defined $r->{cookie} && $r->{cookie} ne $id;
    # (and gone again: E counts the sessions node1 serves)
    app($c, $n, 'invalidate=1', $r->{cookie}, path => $path // '') if $r->{cookie};
    return ($ok ? 1 : 0, $r);
}
sub ready_all {
    my (@n) = @_;
    my %p;
    my $ok = within(20, sub {
        for my $n (@n) {
            $p{$n} = status_of($c, $n) or return 0;
            return 0 unless ($p{$n}{EngineState} // '') eq 'ready' && ($p{$n}{MembersAlive} // 0) >= @n - 1
                            && defined $p{$n}{SessionsPrimary};
        }
        1;
    });
    return ($ok, \%p);
}

# A. join -------------------------------------------------------------------------------------
my @A3 = @N[0 .. 2];
$c->start($_) for @A3;
{
    my ($ok, $p) = ready_all(@A3);
    check($ok, $c, 'A. node1..node3 ready with BackupManager\'s figures, seeing each other',
          fields_line($p, qw(EngineState MembersAlive Manager SessionsPrimary)));
    my (%count, @ids, @bad);
    for ([ 'node1', 6 ], [ 'node2', 3 ]) {
        my ($n, $k) = @$_;
        for my $i (1 .. $k) {
            my $r = app($c, $n, "set=v&value=$n-$i", path => $LONG);
            if (valid_sid($r->{cookie}, $n)) { push @ids, $r->{cookie}; $count{ $r->{cookie} } = 0 }
            else { push @bad, show($r) }
        }
    }
    my $K = @ids;
    check(!@bad, $c, "A. $K sessions made on node1 and node2", first(2, @bad));
    my @uns = grep { my ($s) = settle($_, undef, @A3); !@$s } @ids;
    check(!@uns, $c, 'A. every session settled on node1..node3', map { "$_: " . roles_line(roles($_, @A3)) } first(3, @uns));
    my $p0 = pages(@A3);
    my @m1 = grep { /\.node1$/ } @ids;
    @bad = ();
    for my $id (@m1) {
        my $r = app($c, 'node1', 'auto', $id, path => $LONG);
        if (($r->{counter} // '') eq '1') { $count{$id} = 1 } else { push @bad, show($r) }
    }
    my $p1 = pages(@A3);
    ok(!@bad, 'A. ' . scalar(@m1) . ' updates on node1') or diag($bad[0]);
    is(delta($p0, $p1, 'node1', 'BackupCopiesSent'), scalar @m1,
       'A. BackupCopiesSent on node1 grew by ' . scalar(@m1) . ': one copy per update with 3 members');
    my %was = map { my ($s) = settle($_, undef, @A3); ($_ => $s) } @ids;

    # node1 and node2 frozen while node4 starts: it hears node3 alone, takes
    # node3's map and is ready before it has heard the members that hold 4
    # of the sessions (primary and backup both among node1 and node2).  Those
    # are members it has not heard yet, not gone ones: the locations stay.
    # (Unfrozen within a few seconds, inside the members' dropTime of 8 s:
    # neither node3 nor node4 may take them for gone meanwhile.)
    $c->sigstop($_) for qw(node1 node2);
    my $t_frozen = time;
    $c->start('node4');
    my $p4;
    my $alone = within(10, sub {
        $p4 = status_of($c, 'node4') or return 0;
        ($p4->{EngineState} // '') eq 'ready';
    });
    sleep 0.3;                      # several turns of node4's look at its locations
    $p4 = status_of($c, 'node4') || {};
    my $frozen_for = time - $t_frozen;
    $c->sigcont($_) for qw(node1 node2);
    check($frozen_for < 6, $c, sprintf('A. node1 and node2 frozen for %.1f s only (the test\'s own '
                                       . 'limit: dropTime is 8 s)', $frozen_for));
    check($alone && num($p4, 'SessionsProxy') == $K && num($p4, 'MembersAlive') == 1, $c,
          "A. node4, ready with node1 and node2 not heard yet, keeps the $K locations of node3's map",
          sprintf('frozen %.1f s: ', $frozen_for) . join(' ', fields_line({ node4 => $p4 },
          qw(EngineState MembersAlive SessionsProxy))));
    my $ready = within(20, sub {
        $p4 = status_of($c, 'node4') or return 0;
        ($p4->{EngineState} // '') eq 'ready' && ($p4->{MembersAlive} // 0) == 3;
    });
    check($ready, $c, 'A. node4 joins: ready, seeing the three others', join(' ', fields_line({ node4 => $p4 },
          qw(EngineState MembersAlive SessionsPrimary SessionsBackup SessionsProxy))));
    # ready means the map arrived: the counts are read at once
    check(num($p4, 'SessionsProxy') == $K && num($p4, 'SessionsPrimary') == 0 && num($p4, 'SessionsBackup') == 0,
          $c, "A. ... with SessionsProxy $K (the map), no primary and no backup",
          fields_line({ node4 => $p4 }, qw(SessionsPrimary SessionsBackup SessionsProxy SessionsActive SessionsBudgetUsed)));
    my @wrong;
    for my $id (@ids) {
        my $v = view($c, 'node4', $id) || {};
        my ($P, $B) = @{ $was{$id} || [] };
        push @wrong, "$id (P=" . ($P // '?') . ' B=' . ($B // '?') . '): ' . join(' ', map { "$_=" . ($v->{$_} // '?') }
                     qw(SessionRole SessionHeld SessionPrimary SessionBackup))
            unless ($v->{SessionRole} // '') eq 'proxy' && ($v->{SessionHeld} // '') eq 'no'
                   && defined $P && ($v->{SessionPrimary} // '') eq $P && ($v->{SessionBackup} // '') eq $B;
    }
    ok(!@wrong, 'A. node4 holds each session as a location only, naming the primary and backup the others name')
        or diag(join("\n", first(4, @wrong)));

    my $f0 = pages('node4');
    my (@bad_read, @bad_roles);
    for my $id (@ids) {
        my ($n) = $id =~ /\.(node\d)$/;
        my $r = app($c, 'node4', 'read', $id, path => $LONG);
        unless (($r->{session} // '') eq $id && ($r->{counter} // '') eq $count{$id}
                && ($r->{attrs}{v} // '') =~ /^\Q$n\E-\d+$/) {
            push @bad_read, "$id on node4: want counter $count{$id}: " . show($r);
            next;
        }
        my ($B) = ($was{$id} || [])->[1] // '?';
        my ($s, $rr) = settle($id, sub { $_[0] eq 'node4' && $_[1] eq $B }, @N);
        push @bad_roles, "$id (backup was $B): " . roles_line($rr) unless @$s;
    }
    check(!@bad_read, $c, "A. each of the $K cookies on node4 returns its session intact", first(3, @bad_read));
    check(!@bad_roles, $c, 'A. node4 is then its primary, the backup unchanged', first(3, @bad_roles));
    my $f1 = pages('node4');
    is(delta($f0, $f1, 'node4', 'BackupFetches'), $K, "A. node4 fetched the $K sessions (BackupFetches)");
    my ($p50, $p99) = latency('node4');
    ok($p50 =~ /^\d+$/ && $p99 =~ /^\d+$/ && $p50 <= $p99, "A. node4 shows its fetch latency: p50 $p50 us, p99 $p99 us");
}

# B. expiry ---------------------------------------------------------------------------------------
{
    my $ri = app($c, 'node1', 'auto');
    my $rb = app($c, 'node1', 'auto');
    my ($idle, $busy) = ($ri->{cookie}, $rb->{cookie});
    check(valid_sid($idle, 'node1') && valid_sid($busy, 'node1'), $c,
          "B. two sessions made on node1 at /app (maxInactiveInterval $MAX_AGE)", show($ri), show($rb));
    my ($si, $ri0) = settle($idle, undef, @N);
    my ($sb, $rb0) = settle($busy, undef, @N);
    check((@$si && @$sb) ? 1 : 0, $c, 'B. both settled on the four members', roles_line($ri0), roles_line($rb0));
    my $Bb = $sb->[1] // 'none';
    is((view($c, 'node1', $busy) || {})->{SessionMaxInactive}, $MAX_AGE, "B. their idle limit is $MAX_AGE s");
    my $p0 = pages(@N);
    my ($t0, $gone_at, @busy_bad, @backup_bad, $samples) = (time);
    while (time - $t0 < 3 * $MAX_AGE) {
        my $r = app($c, 'node1', 'read', $busy);
        push @busy_bad, show($r) unless ($r->{session} // '') eq $busy && ($r->{counter} // '') eq '1';
        my $v = view($c, $Bb, $busy) || {};
        $samples++;
        push @backup_bad, sprintf('%.1fs: %s', time - $t0, join(' ', map { "$_=" . ($v->{$_} // '?') }
                                  qw(SessionRole SessionHeld SessionPrimary)))
            unless ($v->{SessionRole} // '') eq 'backup' && ($v->{SessionHeld} // '') eq 'yes';
        $gone_at //= time - $t0 if gone($idle, @N);
        sleep 0.5;
    }
    $gone_at //= within($POLL, sub { gone($idle, @N) }, $t0);
    check(defined $gone_at, $c, 'B. the idle session is removed from its primary, its backup and every location',
          roles_line(roles($idle, @N)));
    my $p1 = pages(@N);
    is(delta($p0, $p1, 'node1', 'SessionsExpired'), 1, 'B. SessionsExpired +1 on node1 (its primary)');
    my ($ok, $r) = fresh('node3', $idle);
    ok($ok, 'B. its cookie then gets a fresh session on node3') or diag(show($r));
    is(delta($p0, pages('node3'), 'node3', 'BackupFetches') + delta($p0, pages('node3'), 'node3', 'BackupFetchesNotHere'),
       0, '... and node3 fetched nothing for it');
    ok(!@busy_bad, "B. the busy session answered every read on node1 over " . 3 * $MAX_AGE . ' s')
        or diag(join("\n", first(3, @busy_bad)));
    ok(!@backup_bad, "B. ... and stayed on its backup $Bb all along ($samples looks: role backup, data held)")
        or diag(join("\n", first(5, @backup_bad)));
    my $rr = app($c, $Bb, 'read', $busy);
    is($rr->{session}, $busy, "B. it reads back on $Bb") or diag(show($rr));
    app($c, $Bb, 'invalidate=1', $busy);    # (E counts the sessions node1 serves)
}

# C. invalidation on a fetched primary -------------------------------------------------------------
{
    my $r = app($c, 'node1', 'set=v&value=to-invalidate', path => $LONG);
    my $id = $r->{cookie};
    my ($s) = settle($id, undef, @N);
    my $r2 = app($c, 'node2', 'read', $id, path => $LONG);
    my ($s2, $rr) = settle($id, sub { $_[0] eq 'node2' }, @N);
    check((@$s && ($r2->{attrs}{v} // '') eq 'to-invalidate' && @$s2) ? 1 : 0, $c,
          'C. a session made on node1, read on node2 (fetched: node2 its primary)', show($r2), roles_line($rr));
    my $ri = app($c, 'node2', 'invalidate=1', $id, path => $LONG);
    is($ri->{invalidated}, 'yes', 'C. invalidated on node2') or diag(show($ri));
    my $g = within($POLL, sub { gone($id, @N) });
    check($g, $c, 'C. no member knows it any more', roles_line(roles($id, @N)));
    my @bad;
    for my $n (qw(node1 node3 node4)) {
        my ($ok, $x) = fresh($n, $id, $LONG);
        push @bad, "$n: " . show($x) unless $ok;
    }
    ok(!@bad, 'C. its cookie gets a fresh session on node1, node3 and node4') or diag(join("\n", @bad));
}

# D. SessionClusterChangeIdOnLogin --------------------------------------------------------------------
{
    my $r = app($c, 'node1', 'set=v&value=before-login', path => $LONG);
    my $old = $r->{cookie};
    my ($s) = settle($old, undef, @N);
    my $rl = app($c, 'node2', 'set=realm-user&value=bob', $old, path => "$LONG/login");
    my $new = $rl->{cookie};
    check((@$s && $rl->{status} == 200 && valid_sid($new, 'node2') && substr($new, 0, 32) ne substr($old, 0, 32)) ? 1 : 0,
          $c, 'D. a login (realm-user) on node2 with the node1 session gives it a new id with node2\'s route',
          show($rl));
    my ($s2, $rr) = settle($new, sub { $_[0] eq 'node2' }, @N);
    check(scalar @$s2, $c, 'D. the new id settled: node2 primary, one backup, locations elsewhere', roles_line($rr));
    my $g = within($POLL, sub { gone($old, @N) });
    check($g, $c, 'D. the old id is known nowhere', roles_line(roles($old, @N)));
    my $r3 = app($c, 'node3', 'read', $new, path => $LONG);
    ok(($r3->{session} // '') eq $new && ($r3->{attrs}{v} // '') eq 'before-login'
       && ($r3->{attrs}{'realm-user'} // '') eq 'bob', 'D. the new id on node3: the data intact')
        or diag(show($r3));
    my ($ok, $x) = fresh('node4', $old, $LONG);
    ok($ok, 'D. the old cookie gets a fresh session on node4') or diag(show($x));
}

# E. re-placement after kill -9 of a backup, then kill -9 of the primary ---------------------------------
{
    my (@ids, %B, @bad);
    for my $i (1 .. 12) {
        my $r = app($c, 'node1', 'auto', path => $LONG);
        valid_sid($r->{cookie}, 'node1') ? push @ids, $r->{cookie} : push @bad, show($r);
    }
    for my $id (@ids) {
        my ($s, $rr) = settle($id, sub { $_[0] eq 'node1' }, @N);
        @$s ? ($B{$id} = $s->[1]) : push @bad, roles_line($rr);
    }
    check(!@bad && @ids == 12, $c, 'E. 12 sessions made on node1, settled', first(3, @bad));
    my @R = grep { ($B{$_} // '') eq 'node3' } @ids;
    my @keep = grep { ($B{$_} // '') ne 'node3' } @ids;
    cmp_ok(scalar @R, '>', 0, 'E. node3 backs ' . scalar(@R) . ' of them');
    my @S = qw(node1 node2 node4);
    my $p0 = pages(@S);
    $c->kill9('node3');
    my $dead = within($POLL, sub { my $m = member_on($c, 'node1', 'node3'); $m && $m->{state} =~ /^(?:dead|left)$/ });
    check($dead, $c, 'E. node3 killed: node1 sees it dead');
    my (%nb, @unplaced);
    for my $id (@R) {
        my ($s, $rr) = settle($id, sub { $_[0] eq 'node1' && $_[1] =~ /^node[24]$/ }, @S);
        if (@$s) { $nb{$id} = $s->[1] } else { push @unplaced, "$id: " . roles_line($rr) }
    }
    check(!@unplaced, $c, 'E. each session node3 backed has a new backup among node2 and node4, holding its data',
          first(3, @unplaced));
    my @moved = grep { my ($s) = settle($_, undef, @S); !@$s || $s->[1] ne $B{$_} } @keep;
    ok(!@moved, 'E. the other sessions kept their backup') or diag(join("\n", map { "$_: was $B{$_}: " . roles_line(roles($_, @S)) } first(3, @moved)));
    my $p1;
    my $ok = within($POLL, sub { $p1 = pages(@S); num($p1->{node1}, 'BackupReplacing') == 0
                                 && delta($p0, $p1, 'node1', 'BackupReplacements') >= @R });
    check($ok, $c, 'E. node1 re-placed them and waits for none (BackupReplacing 0)',
          fields_line($p1, qw(BackupReplacements BackupReplacing)));
    is(delta($p0, $p1, 'node1', 'BackupReplacements'), scalar @R, 'E. BackupReplacements on node1 grew by ' . scalar @R);
    my $q0 = pages('node1');
    my @upd_bad;
    for my $id (@R) {
        my $r = app($c, 'node1', 'auto', $id, path => $LONG);
        push @upd_bad, show($r) unless ($r->{counter} // '') eq '2';
    }
    my $q1 = pages('node1');
    ok(!@upd_bad, 'E. an update of each re-placed session on node1 (counter 2)') or diag($upd_bad[0]);
    is(delta($q0, $q1, 'node1', 'BackupCopiesSent'), scalar @R, 'E. ... one copy each (BackupCopiesSent, 3 members)');

    $c->kill9('node1');
    my @lost;
    for my $id (@ids) {
        my $want = grep({ $_ eq $id } @R) ? 2 : 1;
        my $b = $nb{$id} // $B{$id};
        my ($reader) = grep { $_ ne $b } qw(node2 node4);
        my $r = app($c, $reader, 'read', $id, timeout => 20, path => $LONG);
        push @lost, "$id (backup $b) on $reader: want counter $want: " . show($r)
            unless ($r->{session} // '') eq $id && ($r->{counter} // '') eq $want;
    }
    check(!@lost, $c, 'E. node1 killed: every session still served with its last counter on the survivor '
          . 'that is not its backup (the new backups held the re-placed ones)', first(4, @lost));
}

for my $n (grep { $c->is_running($_) } @N) {
    my $log = $c->error_log($n);
    unlike($log, qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
    my @errs = grep { !/SC1293/ } $log =~ /^(.*\[session_cluster:(?:error|crit|alert|emerg)\].*)$/mg;
    ok(!@errs, "$n: no session_cluster error in the error_log") or diag(join("\n", first(10, @errs)));
}
$c->teardown;

note(sprintf 'backup_lifecycle.t took %.1fs', time - $t_start);
done_testing();
