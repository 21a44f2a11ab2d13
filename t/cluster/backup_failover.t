#!perl
# BackupManager (issue 18): kill -9 of a primary under load through the
# front.  A front httpd (mod_proxy_balancer + SessionClusterBalancer, as in
# balancer.t) and node1..node4 with <Manager className="...BackupManager"/>
# (mapSendOptions left at its default 6: an update is acknowledged by the
# backup before the answer), JvmRouteBinderValve, the demo application; the
# front has the same block (it is a member of the channel without sessions,
# and never a backup):
#   1. all ready; 12 sessions made on node1 and 6 on node2 (the latter: whose
#      primary survives); every one settled: one primary, one backup among
#      node1..node4 (never the front), proxies elsewhere;
#   2. the 18 sessions are incremented in a loop through the front
#      (SC_BACKUP_LOAD_SECONDS, default 6 s); node1 is killed (kill -9) once
#      every session has had 3 answers;
#   3. every session continues: no new session, no counter going back, no
#      counter skipping beyond the requests that failed (an increment
#      acknowledged to the client is never lost); each one is served after
#      the kill and its last answer is a success; every request started
#      after the whole cluster knew of the kill succeeded; every node1
#      session was re-bound exactly once (to node2..node4), the others never;
#      each reads back through the front with the counter of its last answer;
#   4. afterwards every session is settled on node2..node4 (one primary, one
#      backup, both alive; the node2 sessions still primaried on node2 with
#      their epoch unchanged); each node1 session was taken over (its epoch
#      rose); the promotions counted on node2..node4 (BackupPromotions) are
#      at least the 12 node1 sessions and equal the epochs' rises: a
#      promotion where the backup took over when node1 was found dead, plus
#      one for each fetch by a member the front sent the session to next (the
#      front does not know which member holds the backup, so the brief's
#      "promotions sum to node1's sessions" holds only when it happens to
#      choose the backup); nothing waits for re-placement (BackupReplacing 0);
#   5. no crash, no module error in the error_logs of the survivors.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Load;
use SC::Test qw(status_of member_on check within app show valid_sid demo_module demo_conf
                balancer_member bm_line status_has num);
SC::Test::dump_options(tail => 30, cut => 300);

my $LOAD_S = $ENV{SC_BACKUP_LOAD_SECONDS} || 6;
my $LIMIT = 150 + $LOAD_S;
$SIG{ALRM} = sub { die "backup_failover.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $POLL = 30;
my ($K1, $K2) = (12, 6);
my $DEMO_SO = demo_module();
my $LIB = "$FindBin::Bin/../lib";
# (as balancer.t: children started at once, so that the front's pooled
# connections are not closed under it as idle)
my $APP = "StartServers 4\nMinSpareThreads 32\nMaxSpareThreads 32\n" . demo_conf($DEMO_SO);

sub bm_block {
    my ($m, $all, $mgr, %o) = @_;
    my $x = SC::Cluster::static_block($m, $all, %o, manager => { %{ $mgr || {} } });
    $x =~ s/session\.DeltaManager"/session.BackupManager"/ or die "no Manager element\n";
    return $x;
}

my $t_start = time;
my $c = SC::Cluster->new(
    members    => 4,
    front      => { name => 'front', retry => 300, connectiontimeout => 5, timeout => 10,
                    worker => 'disablereuse=On' },
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub { bm_block($_[0], $_[1], {}, jvm_route_binder => defined $_[0]{route}) },
);
my @N = $c->routed;    # node1..node4
my $F = $c->front;
my $fm = $c->member($F);
my ($DEAD, @SURV) = @N;
SC::Test::dump_options(extra => SC::Test::front_extra($F));

sub view {
    my ($n, $id) = @_;
    my ($s, undef, $b) = $c->get($n, "/cluster-manager?session=$id", timeout => 3);
    return undef unless $s == 200;
    my %f = $b =~ /^(\w+): ?(.*)$/mg;
    return \%f;
}
sub roles {
    my ($id, @n) = @_;
    my %r;
    for my $n (@n) {
        my $v = view($n, $id) || {};
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
my $settle_failed = 0;
sub settle {
    my ($id, @n) = @_;
    my ($r, @s);
    my $ok = within($settle_failed ? 0 : $POLL, sub { $r = roles($id, @n); @s = settled($r) });
    $settle_failed = 1 unless defined $ok;
    return (\@s, $r);
}
sub base_of { my ($id) = @_; return defined $id && $id =~ /^([0-9A-Fa-f]{32})\./ ? $1 : '' }
sub route_of { my ($id) = @_; return defined $id && $id =~ /\.([^.]+)$/ ? $1 : '' }
sub first { my ($n, @l) = @_; return @l[0 .. ($#l < $n - 1 ? $#l : $n - 1)] }

$c->start_all(timeout => 15);

# 1. ---------------------------------------------------------------------------------
my (%load, %before);
{
    my %p;
    my $ok = within(20, sub {
        for my $n (@N) {
            $p{$n} = status_of($c, $n) or return 0;
            return 0 unless ($p{$n}{EngineState} // '') eq 'ready' && ($p{$n}{Manager} // '') eq 'BackupManager'
                            && defined $p{$n}{SessionsPrimary};
        }
        my $fp = status_of($c, $F) or return 0;
        for my $n (@N) {
            my $w = balancer_member($fp, $n) or return 0;
            return 0 unless status_has($w->{status}, 'Ok') && ($w->{member} // '') eq 'ready';
        }
        1;
    });
    check($ok, $c, '1. node1..node4 ready with BackupManager, the front shows their workers Ok/ready',
          map { "$_: Manager=" . ($p{$_}{Manager} // '?') . ' state=' . ($p{$_}{EngineState} // '?') } @N);
    my @bad;
    my $i = 0;
    for ([ $DEAD, $K1 ], [ $SURV[0], $K2 ]) {
        my ($n, $k) = @$_;
        for (1 .. $k) {
            my $r = app($c, $n, 'auto');
            if (valid_sid($r->{cookie}, $n) && ($r->{counter} // '') eq '1') {
                $load{ $r->{cookie} } = { route => $n, name => 'L' . ++$i };
            }
            else { push @bad, show($r) }
        }
    }
    check(!@bad && keys %load == $K1 + $K2, $c, "1. $K1 sessions made on $DEAD, $K2 on $SURV[0]", first(2, @bad));
    my @uns;
    for my $id (sort keys %load) {
        my ($s, $r) = settle($id, @N);
        if (@$s && $s->[0] eq $load{$id}{route}) { $before{$id} = $s }
        else { push @uns, "$id: " . roles_line($r) }
    }
    check(!@uns, $c, '1. every session settled: primary where it was made, one backup among the members '
          . '(not the front), proxies elsewhere', first(3, @uns));
}

# 2. the load, and kill -9 of node1 ----------------------------------------------------------
my ($t_kill, $t_known, $recs, $p_before);
{
    $p_before = { map { $_ => status_of($c, $_) || {} } @SURV };
    my $h = $c->spawn(undef, $^X, "-I$LIB", '-MSC::Load', '-e', 'exit SC::Load::main(@ARGV)',
                      "addr=$fm->{addr}", "port=$fm->{http_port}", "duration=$LOAD_S",
                      'timeout=15', 'interval=0.05',
                      map { "session=$load{$_}{name}:$_" } sort keys %load);
    my %answered;
    my $warm = within(20, sub {
        my $text = '';
        if (open my $fh, '<', $h->{out}) { local $/; $text = <$fh> // '' }
        %answered = ();
        $answered{ $_->{name} }++ for grep { $_->{status} == 200 } @{ SC::Load::parse_tsv($text) };
        return !grep { ($answered{ $load{$_}{name} } // 0) < 3 } keys %load;
    });
    check(defined $warm, $c, '2. the load is under way: every session had 3 answers before the kill',
          join(' ', map { "$load{$_}{name}=" . ($answered{ $load{$_}{name} } // 0) } sort keys %load));
    $t_kill = time;
    $c->kill9($DEAD);
    my %seen;
    my $known = within(20, sub {
        my $w = balancer_member(status_of($c, $F), $DEAD);
        $seen{front} = $w ? bm_line($w) : 'absent';
        return 0 unless $w && status_has($w->{status}, 'Err');
        for my $n (@SURV) {
            my $m = member_on($c, $n, $DEAD);
            $seen{$n} = $m ? $m->{state} : 'absent';
            return 0 unless $m && $m->{state} =~ /^(?:dead|left)$/;
        }
        1;
    }, $t_kill);
    $t_known = time;
    check(defined $known, $c, "2. the front (Err) and node2..node4 (dead) know of the kill",
          map { "$_: $seen{$_}" } sort keys %seen);
    ok(waitpid($h->{pid}, POSIX::WNOHANG()) == 0, '2. the load was still running when the cluster knew');
    my ($rc, $out) = $c->finish($h, timeout => $LOAD_S + 30);
    is($rc, 0, '2. the load client finished') or diag(substr($out, -2000));
    $recs = SC::Load::parse_tsv($out);
}

# 3. every session continues -------------------------------------------------------------------
{
    my %by;
    push @{ $by{ $_->{name} } }, $_ for sort { $a->{t} <=> $b->{t} } @$recs;
    my (@lost, @back, @rebind_bad, @unserved, @last_bad, @late_failed);
    my ($failed, $n_late) = (0, 0);
    for my $id (sort keys %load) {
        my $L = $load{$id};
        my ($cur, $exp, $pending, $served_after) = ($id, 1, 0, 0);
        my @cookies;
        for my $r (@{ $by{ $L->{name} } || [] }) {
            if ($r->{t} >= $t_known) {
                $n_late++;
                push @late_failed, "$L->{name}: " . SC::Load::to_tsv($r) if $r->{status} != 200;
            }
            if ($r->{status} != 200) {
                $failed++;
                $pending++;
                if ($r->{cookie}) { push @cookies, $r; $cur = $r->{cookie} }
                next;
            }
            $served_after++ if $r->{t} >= $t_kill;
            my $cn = $r->{counter} // -1;
            if (($r->{session} // '') eq '(new)' || base_of($r->{session}) ne base_of($id)) {
                push @lost, "$L->{name} ($id): a new session: " . SC::Load::to_tsv($r);
            }
            elsif ($cn <= $exp) {
                push @back, "$L->{name} ($id): counter $cn after $exp: " . SC::Load::to_tsv($r);
            }
            elsif ($cn > $exp + 1 + $pending) {
                push @lost, "$L->{name} ($id): counter $cn after $exp with $pending failed: " . SC::Load::to_tsv($r);
            }
            $exp = $cn if $cn =~ /^\d+$/ && $cn > $exp;
            $pending = 0;
            if ($r->{cookie}) { push @cookies, $r; $cur = $r->{cookie} }
        }
        if ($L->{route} eq $DEAD) {
            push @rebind_bad, "$L->{name} ($id): " . scalar(@cookies) . ' Set-Cookies: ' . join(' ', map { $_->{cookie} } @cookies)
                unless @cookies == 1 && base_of($cookies[0]{cookie}) eq base_of($id)
                       && grep { $_ eq route_of($cookies[0]{cookie}) } @SURV;
        }
        elsif (@cookies) { push @rebind_bad, "$L->{name} ($id, $L->{route}): Set-Cookie $cookies[0]{cookie}" }
        my $rs = $by{ $L->{name} } || [];
        push @unserved, "$L->{name} ($id, $L->{route})" unless $served_after;
        push @last_bad, "$L->{name}: " . ($rs->[-1] ? SC::Load::to_tsv($rs->[-1]) : '(none)')
            unless $rs->[-1] && $rs->[-1]{status} == 200;
        $L->{cur} = $cur;
        $L->{counter} = $exp;
    }
    note(sprintf '3. %d requests, %d failed (non-200), %d started after the cluster knew', scalar @$recs,
         $failed, $n_late);
    ok(!@lost, '3. no session lost, no acknowledged increment lost') or diag(join("\n", first(10, @lost)));
    ok(!@back, '3. no counter went backwards') or diag(join("\n", first(10, @back)));
    ok(!@unserved, '3. every session was served (200) after the kill') or diag(join("\n", first(10, @unserved)));
    ok(!@last_bad, '3. the last answer of every session was a success') or diag(join("\n", first(10, @last_bad)));
    cmp_ok($n_late, '>=', scalar keys %load, '3. requests started after the cluster knew of the kill');
    ok(!@late_failed, '3. ... every one of them succeeded') or diag(join('', first(10, @late_failed)));
    ok(!@rebind_bad, "3. every $DEAD session re-bound exactly once to a survivor, the others never")
        or diag(join("\n", first(10, @rebind_bad)));
    my @final_bad;
    for my $id (sort keys %load) {
        my $L = $load{$id};
        my $r = app($c, $F, 'read', $L->{cur});
        push @final_bad, "$L->{name} ($L->{cur}): want counter $L->{counter}: " . show($r)
            unless $r->{status} == 200 && ($r->{counter} // '') eq $L->{counter} && ($r->{session} // '') eq $L->{cur};
    }
    ok(!@final_bad, '3. every session reads back through the front with the counter of its last answer')
        or diag(join("\n", first(4, @final_bad)));
}

# 4. roles and promotions afterwards ---------------------------------------------------------------
{
    my (@uns, @not_taken, @moved, $rises);
    for my $id (sort keys %load) {
        my $L = $load{$id};
        my ($s, $r) = settle($L->{cur}, @SURV);
        unless (@$s) { push @uns, "$L->{name} ($L->{cur}): " . roles_line($r); next }
        my ($P, $B, $e) = @$s;
        my $e0 = $before{$id} ? $before{$id}[2] : undef;
        if ($L->{route} eq $DEAD) {
            if (defined $e0 && $e =~ /^\d+$/ && $e > $e0) { $rises += $e - $e0 }
            else { push @not_taken, "$L->{name}: epoch " . ($e0 // '?') . " -> $e: " . roles_line($r) }
        }
        else {
            push @moved, "$L->{name}: " . roles_line($r)
                unless $P eq $L->{route} && defined $e0 && $e eq $e0;
        }
    }
    check(!@uns, $c, '4. every session settled on node2..node4: one primary, one backup, proxies elsewhere',
          first(3, @uns));
    ok(!@not_taken, "4. every $DEAD session was taken over (its epoch rose)") or diag(join("\n", first(4, @not_taken)));
    ok(!@moved, "4. the $SURV[0] sessions stayed with their primary, epoch unchanged")
        or diag(join("\n", first(4, @moved)));
    my %p1 = map { $_ => status_of($c, $_) || {} } @SURV;
    my $prom = 0;
    $prom += num($p1{$_}, 'BackupPromotions') - num($p_before->{$_}, 'BackupPromotions') for @SURV;
    note('4. BackupPromotions grew by ' . join(' ', map {
        "$_ +" . (num($p1{$_}, 'BackupPromotions') - num($p_before->{$_}, 'BackupPromotions')) } @SURV)
        . ", epochs rose by " . ($rises // 0));
    cmp_ok($prom, '>=', $K1, "4. the promotions on node2..node4 cover the $K1 $DEAD sessions");
    is($prom, $rises // 0, '4. ... and equal the rises of their epochs (one per takeover)');
    my $pn;
    my $ok = within($POLL, sub {
        $pn = { map { $_ => status_of($c, $_) || {} } @SURV };
        my %sum;
        for my $n (@SURV) { $sum{$_} += num($pn->{$n}, $_) for qw(SessionsPrimary SessionsBackup SessionsProxy BackupReplacing) }
        my $k = $K1 + $K2;
        return $sum{SessionsPrimary} == $k && $sum{SessionsBackup} == $k && $sum{SessionsProxy} == $k
            && $sum{BackupReplacing} == 0;
    });
    check($ok, $c, '4. counts on node2..node4: ' . ($K1 + $K2) . ' primaries, as many backups and locations, '
          . 'none waiting for a backup',
          map { my $n = $_; "$n: " . join(' ', map { "$_=" . ($pn->{$n}{$_} // '?') }
                qw(SessionsPrimary SessionsBackup SessionsProxy BackupReplacing BackupReplacements)) } @SURV);
}

# 5. ------------------------------------------------------------------------------------------------
for my $n (@SURV, $F) {
    my $log = $c->error_log($n);
    unlike($log, qr/exit signal|Segmentation|AH00052/, "5. $n: no crash in the error_log");
    my @errs = grep { !/SC1293/ } $log =~ /^(.*\[session_cluster:(?:error|crit|alert|emerg)\].*)$/mg;
    ok(!@errs, "5. $n: no session_cluster error in the error_log") or diag(join("\n", first(10, @errs)));
}
note(sprintf 'backup_failover.t took %.1fs', time - $t_start);
$c->teardown;
done_testing();
