#!perl
# BackupManager (issue 18): roles, counts and reads on four members, through
# httpd.conf and HTTP.  node1..node4 with <Manager className="...BackupManager"/>
# (mapSendOptions left at its default 6), a ReplicationValve only (ids keep
# their route here, re-binding is backup_failover.t's), the demo application:
#   1. the page names the class that runs: Manager: BackupManager;
#   2. K sessions made on node1 (a counter and an attribute each): node1 is
#      the primary of all K (SessionsPrimary K, no backups, no proxies); the
#      backups are on node2..node4 and sum to K, spread by the round robin
#      (the counts differ by at most one); every other member holds a
#      location (SessionsProxy sums to 2K); per session (?session=) exactly
#      one primary (node1), one backup, two proxies, all agreeing on who is
#      primary and backup, data (SessionHeld yes) only on the two;
#   3. one copy per update: U updates on node1 make BackupUpdates and
#      BackupCopiesSent on node1 grow by exactly U (the other members send
#      nothing), AcksIn on node1 by U (each copy acknowledged by the backup
#      before the answer: the default mapSendOptions 6), and each session's
#      backup holds the version of its primary while the proxies hold no
#      data;
#   4. every session is read on node2, then node3, then node4, with its
#      cookie: the value is intact every time; after each read the reader is
#      the primary (epoch one more), one other member the backup, the rest
#      proxies; when the reader was a proxy the backup stayed and the old
#      primary became a proxy (its data dropped); the fetches and promotions
#      counted on the readers match the reads that needed them, and each
#      reader's page has its fetch latency fields (BackupFetchP50Us, P99Us);
#   5. a cookie with an unknown id of the right shape (node1's route) gets a
#      fresh session on node1 and on node2, and no fetch is counted anywhere
#      (BackupFetches, BackupFetchesNotHere, BackupFetchesFailed unchanged);
#   6. no crash, no module warning or error in the error_logs.
# States and counters only; within() is a polling limit, never a figure.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of check within app show valid_sid demo_module demo_conf num);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 180;
$SIG{ALRM} = sub { die "backup_roles.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $K = 12;    # sessions
my $U = 10;    # counted updates
my $POLL = 30; # seconds: a polling limit

my $DEMO_SO = demo_module();
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];

# A static block with a BackupManager element (attributes %$mgr).
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
    extra_conf => demo_conf($DEMO_SO),
    cluster    => sub { bm_block($_[0], $_[1], {}, valves => $KEEP_ROUTES) },
);
my @N = $c->members;    # node1..node4
my ($M1, @OTHERS) = @N;

# Member $n's ?session= page for $id: all its fields (also when not held).
sub view {
    my ($n, $id) = @_;
    my ($s, undef, $b) = $c->get($n, "/cluster-manager?session=$id", timeout => 3);
    return undef unless $s == 200;
    my %f = $b =~ /^(\w+): ?(.*)$/mg;
    return \%f;
}

# Every member's view of $id: { member => { role, primary, backup, epoch, held, version } }.
sub roles {
    my ($id, @n) = @_;
    my %r;
    for my $n (@n ? @n : @N) {
        my $v = view($n, $id) || {};
        $r{$n} = { role => $v->{SessionRole} // '?', primary => $v->{SessionPrimary} // '?',
                   backup => $v->{SessionBackup} // '?', epoch => $v->{SessionEpoch} // '?',
                   held => $v->{SessionHeld} // '?', version => $v->{SessionVersion} // '-' };
    }
    return \%r;
}
sub roles_line {
    my ($r) = @_;
    return join(' | ', map { my $x = $r->{$_};
                             "$_: $x->{role} p=$x->{primary} b=$x->{backup} e=$x->{epoch} "
                             . "held=$x->{held} v=$x->{version}" } sort keys %$r);
}
# ($primary, $backup, $epoch) when the views agree: one primary P, one backup
# B (another member), proxies elsewhere; every member names P and B, the
# same epoch; data held on P and B only.  () otherwise.
sub settled {
    my ($r) = @_;
    my @p = grep { $r->{$_}{role} eq 'primary' } keys %$r;
    my @b = grep { $r->{$_}{role} eq 'backup' } keys %$r;
    return () unless @p == 1 && @b == 1;
    my ($P, $B) = ($p[0], $b[0]);
    my $e = $r->{$P}{epoch};
    for my $n (keys %$r) {
        my $x = $r->{$n};
        return () unless $x->{primary} eq $P && $x->{backup} eq $B && $x->{epoch} eq $e;
        return () unless $x->{held} eq ($n eq $P || $n eq $B ? 'yes' : 'no');
        return () unless $n eq $P || $n eq $B || $x->{role} eq 'proxy';
    }
    return ($P, $B, $e);
}
# Polls until $id's views are settled and $want->(P, B, epoch) holds; after
# one such wait failed, looks once only (a broken build fails in seconds,
# not in a poll per session).
my $settle_failed = 0;
sub settle {
    my ($id, $want) = @_;
    my ($r, @s);
    my $ok = within($settle_failed ? 0 : $POLL,
                    sub { $r = roles($id); @s = settled($r); @s && (!$want || $want->(@s)) });
    $settle_failed = 1 unless defined $ok;
    @s = () unless defined $ok;
    return (\@s, $r);
}

# (BackupFetchP50Us and BackupFetchP99Us: checked once there were fetches)
my @FIELDS = qw(SessionsPrimary SessionsBackup SessionsProxy BackupUpdates BackupCopiesSent
                BackupFetches BackupFetchesNotHere BackupFetchesFailed BackupPromotions
                BackupReplacements BackupReplacing);
# BackupFetchP50Us and BackupFetchP99Us of member $n's ?auto page (read
# here: SC::Test::parse_auto takes field names of letters only).
sub latency {
    my ($n) = @_;
    my $b = SC::Test::page($c, $n) // '';
    return map { $b =~ /^$_: (\d+)$/m ? $1 : '' } qw(BackupFetchP50Us BackupFetchP99Us);
}
sub pages { return { map { $_ => status_of($c, $_) || {} } @N } }
sub fields_line {
    my ($p, @k) = @_;
    return join("\n", map { my $n = $_; "$n: " . join(' ', map { "$_=" . ($p->{$n}{$_} // '?') } @k) } @N);
}

$c->start_all;

# 1. -------------------------------------------------------------------------------
{
    my $p;
    my $ok = within(20, sub {
        for my $n (@N) {
            $p->{$n} = status_of($c, $n) or return 0;
            return 0 unless ($p->{$n}{EngineState} // '') eq 'ready' && ($p->{$n}{MembersAlive} // 0) == 3;
        }
        1;
    });
    check($ok, $c, '1. the four members are ready and see each other');
    for my $n (@N) {
        is($p->{$n}{Manager}, 'BackupManager', "1. $n runs BackupManager (Manager: line)");
        my @missing = grep { !defined $p->{$n}{$_} || $p->{$n}{$_} !~ /^\d+$/ } @FIELDS;
        ok(!@missing, "1. ${n}'s page has BackupManager's figures") or diag("missing: @missing");
    }
}

# 2. --------------------------------------------------------------------------------
my (@ids, %val, %count);
{
    my @bad;
    for my $i (1 .. $K) {
        my $r = app($c, $M1, "set=v&value=s$i-value");
        my $id = $r->{cookie};
        my $r2 = valid_sid($id, $M1) ? app($c, $M1, 'auto', $id) : undef;
        if ($r2 && ($r2->{counter} // '') eq '1' && ($r2->{attrs}{v} // '') eq "s$i-value") {
            push @ids, $id;
            $val{$id} = "s$i-value";
            $count{$id} = 1;
        }
        else { push @bad, show($r2 || $r) }
    }
    check(@ids == $K, $c, "2. $K sessions made on $M1 (an attribute, then the counter)", @bad[0 .. ($#bad < 2 ? $#bad : 2)]);

    my $p;
    my $ok = within($POLL, sub {
        $p = pages();
        return 0 unless num($p->{$M1}, 'SessionsPrimary') == $K;
        my ($b, $x) = (0, 0);
        $b += num($p->{$_}, 'SessionsBackup'), $x += num($p->{$_}, 'SessionsProxy') for @OTHERS;
        return $b == $K && $x == 2 * $K;
    });
    check($ok, $c, "2. counts: $M1 primary of $K, backups on the others sum to $K, proxies to "
          . 2 * $K, fields_line($p, qw(SessionsPrimary SessionsBackup SessionsProxy)));
    is(num($p->{$M1}, 'SessionsBackup') + num($p->{$M1}, 'SessionsProxy'), 0,
       "2. $M1 holds no backup and no location (it is the primary of all)");
    is(0 + grep({ num($p->{$_}, 'SessionsPrimary') } @OTHERS), 0, '2. the others are primary of none');
    my @b = map { num($p->{$_}, 'SessionsBackup') } @OTHERS;
    my ($lo, $hi) = (sort { $a <=> $b } @b)[0, -1];
    ok($hi - $lo <= 1, "2. the backups are spread by the round robin (@b on @OTHERS)");
    for my $n (@OTHERS) {
        is(num($p->{$n}, 'SessionsBackup') + num($p->{$n}, 'SessionsProxy'), $K,
           "2. $n knows every session: a backup or a location for each");
    }
    my (@unsettled, %backup_of);
    for my $id (@ids) {
        my ($s, $r) = settle($id);
        if (@$s && $s->[0] eq $M1) { $backup_of{$id} = $s->[1] }
        else { push @unsettled, "$id: " . roles_line($r) }
    }
    check(!@unsettled, $c, "2. per session: primary $M1, one backup, proxies elsewhere, data on the "
          . 'two only, every member agreeing', @unsettled[0 .. ($#unsettled < 3 ? $#unsettled : 3)]);
    my %per;
    $per{$_}++ for values %backup_of;
    is_deeply({ map { $_ => $per{$_} // 0 } @OTHERS },
              { map { $_ => num($p->{$_}, 'SessionsBackup') } @OTHERS },
              '2. the per-session backups match the SessionsBackup counts');
    my %e = map { (roles($_, $M1)->{$M1}{epoch}) => 1 } @ids;
    is_deeply([ keys %e ], [ 1 ], '2. every new session has epoch 1');
}

# 3. one copy per update ------------------------------------------------------------------
{
    my $p0 = pages();
    my @bad;
    for my $i (0 .. $U - 1) {
        my $id = $ids[$i % @ids];
        my $r = app($c, $M1, 'auto', $id);
        if (($r->{counter} // '') eq $count{$id} + 1) { $count{$id}++ } else { push @bad, show($r) }
    }
    ok(!@bad, "3. $U updates on $M1 answered the next counter") or diag($bad[0]);
    # (mapSendOptions 6: the copy was acknowledged before the answer)
    my $p1 = pages();
    my %d = map { my $n = $_; $n => { map { $_ => num($p1->{$n}, $_) - num($p0->{$n}, $_) }
                                      qw(BackupUpdates BackupCopiesSent) } } @N;
    is($d{$M1}{BackupUpdates}, $U, "3. BackupUpdates on $M1 grew by $U");
    is($d{$M1}{BackupCopiesSent}, $U, "3. BackupCopiesSent on $M1 grew by exactly $U: one copy per "
       . 'update with 4 members');
    # mapSendOptions 6 (synchronous, acknowledged): each copy was acknowledged
    # by the backup before the answer (nothing else asks for an ACK here)
    is(num($p1->{$M1}, 'AcksIn') - num($p0->{$M1}, 'AcksIn'), $U,
       "3. AcksIn on $M1 grew by $U: the backup acknowledged each copy (mapSendOptions 6)");
    is(0 + grep({ $d{$_}{BackupCopiesSent} || $d{$_}{BackupUpdates} } @OTHERS), 0,
       '3. the other members sent no copies') or diag(explain \%d);
    note('3. ReplicatedIn on the others grew by ' . join(' ', map {
        "$_ +" . (num($p1->{$_}, 'ReplicatedIn') - num($p0->{$_}, 'ReplicatedIn')) } @OTHERS));
    my @stale;
    for my $id (@ids[0 .. ($U - 1 < $#ids ? $U - 1 : $#ids)]) {
        my $r = roles($id);
        my $B = (grep { $r->{$_}{role} eq 'backup' } @N)[0] // '';
        push @stale, "$id: " . roles_line($r)
            unless $B && $r->{$B}{version} eq $r->{$M1}{version} && $r->{$B}{held} eq 'yes'
                   && !grep { $r->{$_}{role} eq 'proxy' && $r->{$_}{held} ne 'no' } @N;
    }
    ok(!@stale, '3. each updated session\'s backup holds its primary\'s version, the proxies no data')
        or diag(join("\n", @stale[0 .. ($#stale < 2 ? $#stale : 2)]));
}

# 4. reads on node2, node3, node4 in turn ---------------------------------------------------
{
    my $p0 = pages();
    my (@bad_value, @bad_roles, %need_fetch, %local);
    my %cur = map { my ($s) = settle($_); ($_ => $s) } @ids;    # [P, B, epoch]
    for my $reader (@OTHERS) {
        my %was;
        for my $id (@ids) {
            my ($P, $B) = @{ $cur{$id} || [] };
            $was{$id} = !defined $P ? 'unknown' : $reader eq $P ? 'primary' : $reader eq $B ? 'backup' : 'proxy';
            my $r = app($c, $reader, 'read', $id);
            if (($r->{session} // '') eq $id && ($r->{counter} // '') eq $count{$id}
                && ($r->{attrs}{v} // '') eq $val{$id}) {
                $need_fetch{$reader}++ if $was{$id} eq 'proxy';
                $local{$reader}++ if $was{$id} eq 'backup';
            }
            else {
                push @bad_value, "$id on $reader (it was $was{$id}): want counter $count{$id} v=$val{$id}: " . show($r);
            }
        }
        # then every session settles with the reader as its primary (the
        # locations travel in the engines' next ticks)
        my %now;
        within($settle_failed ? 0 : $POLL, sub {
            for my $id (@ids) {
                next if $now{$id} && @{ $now{$id}[0] };
                my $rr = roles($id);
                my @s = settled($rr);
                $now{$id} = [ (@s && $s[0] eq $reader) ? \@s : [], $rr ];
            }
            return !grep { !@{ $now{$_}[0] } } @ids;
        }) // ($settle_failed = 1);
        for my $id (@ids) {
            my ($P, $B, $e) = @{ $cur{$id} || [] };
            my ($s, $rr) = @{ $now{$id} };
            my @why;
            if (!@$s) { push @why, 'not settled with the reader as primary' }
            else {
                my $want_e = defined $e ? ($was{$id} eq 'primary' ? $e : $e + 1) : undef;
                push @why, "epoch $s->[2], want $want_e" if defined $want_e && $s->[2] ne $want_e;
                if ($was{$id} eq 'proxy') {
                    push @why, "backup $s->[1], want $B (unchanged)" if $s->[1] ne $B;
                    push @why, "old primary $P is $rr->{$P}{role}, want proxy" if $rr->{$P}{role} ne 'proxy';
                }
            }
            push @bad_roles, "$id read on $reader (it was $was{$id} of P=" . ($P // '?') . ' B=' . ($B // '?')
                . ' e=' . ($e // '?') . "): @why: " . roles_line($rr) if @why;
            $cur{$id} = $s if @$s;
        }
    }
    check(!@bad_value, $c, "4. every session read on @OTHERS in turn: its counter and attribute intact",
          @bad_value[0 .. ($#bad_value < 3 ? $#bad_value : 3)]);
    check(!@bad_roles, $c, '4. after each read the reader is primary (epoch +1); from a proxy the backup '
          . 'stays and the old primary becomes a proxy', @bad_roles[0 .. ($#bad_roles < 3 ? $#bad_roles : 3)]);
    my $p1 = pages();
    for my $n (@OTHERS) {
        my $f = num($p1->{$n}, 'BackupFetches') - num($p0->{$n}, 'BackupFetches');
        my $pr = num($p1->{$n}, 'BackupPromotions') - num($p0->{$n}, 'BackupPromotions');
        is($f, $need_fetch{$n} // 0, "4. $n fetched the sessions it knew as a location only ("
           . ($need_fetch{$n} // 0) . ')');
        is($pr, ($need_fetch{$n} // 0) + ($local{$n} // 0),
           "4. $n counts a promotion for each session it took over (fetched or backed)");
        # the page has the fetch latency fields (their figures are bench/'s:
        # make bench-managers)
        my ($p50, $p99) = latency($n);
        ok(defined $p50 && defined $p99 && $p50 =~ /^\d+$/ && $p99 =~ /^\d+$/,
           "4. ${n}'s page has BackupFetchP50Us and BackupFetchP99Us");
        note("4. $n: fetch p50 $p50 us, p99 $p99 us") if defined $p50 && defined $p99;
    }
    is(0 + grep({ num($p1->{$_}, 'BackupFetchesNotHere') != num($p0->{$_}, 'BackupFetchesNotHere')
                  || num($p1->{$_}, 'BackupFetchesFailed') != num($p0->{$_}, 'BackupFetchesFailed') } @N), 0,
       '4. no fetch was answered "not here" nor went unanswered')
        or diag(fields_line($p1, qw(BackupFetches BackupFetchesNotHere BackupFetchesFailed)));
    my $pn;
    my $ok = within($POLL, sub {
        $pn = pages();
        my %sum;
        for my $n (@N) { $sum{$_} += num($pn->{$n}, $_) for qw(SessionsPrimary SessionsBackup SessionsProxy) }
        return num($pn->{$OTHERS[-1]}, 'SessionsPrimary') == $K && $sum{SessionsPrimary} == $K
            && $sum{SessionsBackup} == $K && $sum{SessionsProxy} == 2 * $K;
    });
    check($ok, $c, "4. counts: $OTHERS[-1] (the last reader) primary of all $K, one backup and two "
          . 'locations per session over the cluster',
          fields_line($pn, qw(SessionsPrimary SessionsBackup SessionsProxy)));
}

# 5. an unknown id of the right shape ---------------------------------------------------------
{
    my $p0 = pages();
    my @bad;
    for my $n ($M1, $OTHERS[0]) {
        my $unknown = join('', map { sprintf '%X', int rand 16 } 1 .. 32) . ".$M1";
        my $r = app($c, $n, 'auto', $unknown);
        push @bad, "$n: " . show($r)
            unless $r->{status} == 200 && ($r->{session} // '') eq '(new)' && ($r->{counter} // '') eq '1'
                   && valid_sid($r->{cookie}, $n) && $r->{cookie} ne $unknown;
        my $v = view($n, $unknown) || {};
        push @bad, "$n holds the unknown id: " . join(' ', %$v) if ($v->{SessionHeld} // '') eq 'yes'
            || ($v->{SessionRole} // 'none') ne 'none';
    }
    ok(!@bad, "5. an unknown id of $M1\'s shape gets a fresh session on $M1 and on $OTHERS[0]")
        or diag(join("\n", @bad));
    my $p1 = pages();
    my @moved = grep { my $n = $_; grep { num($p1->{$n}, $_) != num($p0->{$n}, $_) }
                       qw(BackupFetches BackupFetchesNotHere BackupFetchesFailed) } @N;
    ok(!@moved, '5. ... and no fetch is counted anywhere')
        or diag(fields_line($p0, qw(BackupFetches BackupFetchesNotHere BackupFetchesFailed)) . "\n->\n"
                . fields_line($p1, qw(BackupFetches BackupFetchesNotHere BackupFetchesFailed)));
}

# 6. -------------------------------------------------------------------------------------------
for my $n (@N) {
    my $log = $c->error_log($n);
    unlike($log, qr/exit signal|Segmentation|AH00052/, "6. $n: no crash in the error_log");
    # (SC1293: the startup warning that traffic is not authenticated)
    my @errs = grep { !/SC1293/ } $log =~ /^(.*\[session_cluster:(?:error|warn|crit|alert|emerg)\].*)$/mg;
    ok(!@errs, "6. $n: no session_cluster error or warning in the error_log")
        or diag(join("\n", @errs[0 .. ($#errs < 9 ? $#errs : 9)]));
}
note(sprintf 'backup_roles.t took %.1fs', time - $t_start);
$c->teardown;
done_testing();
