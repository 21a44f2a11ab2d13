#!perl
# A member that goes silent behind a front balancer (issue 5), in network
# namespaces: three members (node1..node3, the demo application at /app with
# JvmRouteBinderValve, channelSendOptions 6, static membership with Tomcat's
# default dropTime 3000 ms and TcpFailureDetector) and a front httpd
# (mod_proxy_balancer, BalancerMembers route=node1..node3 with
# connectiontimeout=5 timeout=10 retry=300) each in its own namespace on one
# bridge.  "Silent": an nftables table in node2's namespace drops every
# packet in and out (its link stays up; peers get no reset, no ICMP).
# A probe client inside the front's namespace starts a request every 0.2 s
# with a session stuck to node2 (not waiting for the earlier ones, 15 s
# client timeout); node2 goes silent once node2 has answered it twice:
#   (a) with SessionClusterBalancer: the front's failure detector suspects
#       node2 (SC1221, FdSuspected or FdDead) and its page shows node2's
#       worker in Err with member=suspect or dead; from then on the front
#       never elects node2's worker again (its Elected count on
#       /balancer-manager stays put) while every request started after that
#       succeeds on node1 or node3 with the same session (re-bound, not lost:
#       10 of them at least); nothing is answered by node2 after the silence;
#       then node2 speaks again and the front puts it back (member=ready, Ok)
#       although retry=300 has not passed;
#   (p) a partition of node2 under load through the front (issue 20): 15
#       sessions, 5 made on each member (4 sending GETs, one POSTs), one
#       request after the other each (SC::Load in the front's namespace);
#       node2's link goes down once each had 5 answers, and comes up again
#       4 s after the front held node2 in Err (the load then starts no more
#       requests).  Synchronous replication: no GET failed (those in flight
#       to node2 are cut once the front holds it suspect, and replayed), no
#       session lost nor an acknowledged write (every answer of a session has
#       its id and a counter above its last), no POST failed but one sent to
#       node2 before the Err (not replayed: it waits in node2), every session
#       served after the Err; the longest stall of a session printed; node2
#       back in rotation after the heal.
#   (b) the same with the front restarted without its <Cluster> block and
#       SessionClusterBalancer (its page says Cluster: none, it runs no
#       engine), stock mod_proxy_balancer: the session is not lost either:
#       requests succeed on another member with the same session (5 at
#       least), none answered by node2 after the silence.
# How long each takes (the stall of stock mod_proxy_balancer against
# SessionClusterBalancer) is a benchmark, not a test: bench/failover_netns.pl.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Load;
use SC::Test qw(need status_of check within app show valid_sid demo_module demo_conf
                balancer_member bm_line status_has need_netns);
SC::Test::dump_options(tail => 20, cut => 300);

need_netns();
need(SC::Cluster::which("nft"), "the nft command (nftables; build/install-deps.sh installs it)");

$SIG{ALRM} = sub { die "balancer_netns.t: time limit (180 s) reached\n" };
alarm 180;

my $DEMO_SO = demo_module();
my $LIB = "$FindBin::Bin/../lib";
$LIB = Cwd::abs_path($LIB) if eval { require Cwd; 1 };

my $APP = "StartServers 4\nMinSpareThreads 32\nMaxSpareThreads 32\n"
        . demo_conf($DEMO_SO);
# retry=300: far beyond any polling limit below, so that a worker back in
# rotation was brought back by the cluster, never by the retry timer
my %FRONT = (retry => 300, connectiontimeout => 5, timeout => 10);
my $c = SC::Cluster->new(
    members    => 3,
    netns      => 1,
    front      => { name => 'front', %FRONT },
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all, channelSendOptions => 6,
                                         jvm_route_binder => defined $m->{route});
    },
);
my @N = $c->routed;
my $F = $c->front;
my $fm = $c->member($F);

sub worker { balancer_member(status_of($c, $F), $_[0]) }
sub base_of { my ($id) = @_; return defined $id && $id =~ /^([0-9A-Fa-f]{32})\./ ? $1 : '' }

# The Elected count of node2's worker on the front's /balancer-manager.
sub elected {
    my ($u) = @_;
    my ($s, undef, $b) = $c->get($F, '/balancer-manager', timeout => 5,
                                 headers => { Referer => 'http://localhost/balancer-manager' });
    return undef unless $s == 200;
    for my $row (split m{</tr>}i, $b) {
        next unless index($row, $u) >= 0;
        (my $t = $row) =~ s/<[^>]*>/ /g;
        # ... Status Elected Busy Load To From
        return $t =~ /\s(\d+)\s+(-?\d+)\s+(-?\d+)\s+\S+\s+\S+\s*$/ ? $1 : undef;
    }
    return undef;
}

sub records_of { my ($h) = @_; my $t = ''; if (open my $fh, '<', $h->{out}) { local $/; $t = <$fh> // '' } SC::Load::parse_tsv($t) }

# Runs the probe client in the front's namespace with session $id; silences
# node2 once node2 has answered it twice; then calls $until->($t_silent,
# [records so far]) until it is true (a 40 s polling limit) and stops the
# probe.  Returns ($t_silent, [records], whether $until held).
sub probe_silence_until {
    my ($what, $id, $until) = @_;
    my $h = $c->spawn($F, $^X, "-I$LIB", '-MSC::Load', '-e', 'exit SC::Load::main(@ARGV)',
                      "addr=$fm->{addr}", "port=$fm->{http_port}", 'duration=120',
                      'timeout=15', 'interval=0.2', 'overlap=1', "session=S:$id");
    my $recs = [];
    my $ok = within(20, sub { $recs = records_of($h);
                               (grep { $_->{status} == 200 && ($_->{route} // '') eq 'node2' } @$recs) >= 2 });
    check($ok, $c, "$what node2 answered the probe twice before the silence",
          join('', map { SC::Load::to_tsv($_) } @$recs[0 .. ($#$recs < 4 ? $#$recs : 4)]));
    $c->silence('node2');
    my $t_s = time;
    my $held = within(40, sub { $recs = records_of($h); $until->($t_s, $recs) });
    my $running = waitpid($h->{pid}, POSIX::WNOHANG()) == 0;
    kill 'TERM', -$h->{pid};
    my (undef, $out) = $c->finish($h, timeout => 10);
    ok($running, "$what the probe client ran until it was stopped") or diag(substr($out, -1500));
    return ($t_s, SC::Load::parse_tsv($out), $held);
}

# The requests around the silence, compactly: start (s after the silence),
# latency, status, route.
sub timeline {
    my ($t_s, $recs) = @_;
    return join(' ', map { sprintf('%+.1f:%.2fs/%s/%s', $_->{t} - $t_s, $_->{lat}, $_->{status},
                                   $_->{route} // '-') }
                     grep { $_->{t} >= $t_s - 0.5 }
                     sort { $a->{t} <=> $b->{t} } @$recs);
}

# Answers after the silence that lost the session, or came from node2.
sub lost_and_node2 {
    my ($t_s, $recs, $base) = @_;
    my (@lost, @n2);
    for my $r (grep { $_->{status} == 200 } @$recs) {
        push @lost, SC::Load::to_tsv($r)
            if ($r->{session} // '') eq '(new)' || base_of($r->{session}) ne $base;
        push @n2, SC::Load::to_tsv($r) if $r->{t} > $t_s && ($r->{route} // '') eq 'node2';
    }
    return (\@lost, \@n2);
}

# ---------------------------------------------------------------------------
$c->start_all(timeout => 15);
{
    my $p;
    my $ok = within(10, sub {
        $p = status_of($c, $F) or return 0;
        for my $n (@N) {
            my $w = balancer_member($p, $n) or return 0;
            return 0 unless status_has($w->{status}, 'Ok') && ($w->{member} // '') eq 'ready';
        }
        return 1;
    });
    check(defined $ok, $c, 'the front shows node1..node3 Ok, member=ready',
          join(' | ', map { bm_line($_) } @{ $p ? $p->{balancer_members} : [] }));
}

# (a) with SessionClusterBalancer ------------------------------------------------
{
    my $r0 = app($c, 'node2', 'auto');
    my $S = $r0->{cookie};
    check(valid_sid($S, 'node2'), $c, '(a) a session on node2', show($r0));
    my $r1 = app($c, $F, 'auto', $S);
    check(($r1->{route} // '') eq 'node2' && ($r1->{counter} // '') eq '2', $c,
          '(a) through the front it sticks to node2', show($r1));
    my $u2 = balancer_member(status_of($c, $F), 'node2');
    $u2 = $u2 ? $u2->{url} : 'http://node2.invalid';

    # until the front has put node2 in Err for the cluster's verdict, and 10
    # requests started after that have come back
    my ($t_err, $w, $e0, @after);
    my ($t_s, $recs, $held) = probe_silence_until('(a)', $S, sub {
        my ($t_s, $recs) = @_;
        if (!defined $t_err) {
            $w = worker('node2');
            return 0 unless $w && status_has($w->{status}, 'Err') && ($w->{member} // '') =~ /^(?:suspect|dead)$/;
            $t_err = time;
            $e0 = elected($u2);
        }
        @after = grep { $_->{t} >= $t_err } @$recs;
        return @after >= 10;
    });
    note('(a) requests (start after the silence:latency/status/route): ' . timeline($t_s, $recs));
    note(sprintf '(a) the front showed node2 in Err (%s) %.2fs after the silence',
         bm_line($w), ($t_err // $t_s) - $t_s) if defined $t_err;
    check(defined $t_err, $c, '(a) the front puts node2\'s worker in Err, member=suspect or dead', bm_line($w));
    my $fp = status_of($c, $F) || {};
    cmp_ok(($fp->{FdSuspected} // 0) + ($fp->{FdDead} // 0), '>=', 1,
           "(a) ... for its failure detector's verdict (FdSuspected $fp->{FdSuspected}, FdDead $fp->{FdDead})");
    my @fd = grep { /SC1221\b.*\bnode2\b.*alive -> (?:suspect|dead)/ } split /\n/, $c->error_log($F);
    ok(@fd, '(a) ... which the front logged (SC1221 node2 alive -> suspect/dead)');
    check($held, $c, '(a) 10 requests started after the Err came back (' . scalar(@after) . ')');
    my @bad = grep { $_->{status} != 200 || ($_->{route} // '') !~ /^node[13]$/
                     || base_of($_->{session}) ne base_of($S) } @after;
    ok(@after >= 10 && !@bad, '(a) every one of them succeeded on node1 or node3 with the session ('
       . scalar(@after) . ' requests)') or diag(join('', map { SC::Load::to_tsv($_) } @bad[0 .. ($#bad < 4 ? $#bad : 4)]));
    my $e1 = elected($u2);
    ok(defined $e0 && defined $e1 && $e1 == $e0,
       '(a) the front did not elect node2\'s worker again after the Err (Elected '
       . ($e0 // '?') . ' -> ' . ($e1 // '?') . ')');
    my ($lost, $n2) = lost_and_node2($t_s, $recs, base_of($S));
    is(scalar @$lost, 0, '(a) the session was never lost (no new session)') or diag(join('', @$lost));
    is(scalar @$n2, 0, '(a) nothing was answered by node2 after the silence') or diag(join('', @$n2));
    my @rb = grep { $_->{cookie} } @$recs;
    ok(@rb && base_of($rb[0]{cookie}) eq base_of($S) && $rb[0]{cookie} =~ /\.node[13]$/,
       '(a) the session was re-bound to node1 or node3 (Set-Cookie, same base)')
        or diag('Set-Cookies: ' . join(' ', map { $_->{cookie} } @rb));

    # node2 speaks again: back in rotation without waiting for retry=300
    $c->unsilence('node2');
    my $back = within(20, sub {
        $w = worker('node2');
        $w && ($w->{member} // '') eq 'ready' && status_has($w->{status}, 'Ok') && !status_has($w->{status}, 'Err');
    });
    check(defined $back, $c, '(a) node2 heard again: the front puts it back (member=ready, Ok) before retry=300',
          bm_line($w));
}

# (p) a partition of node2 under load, synchronous replication (issue 20) ------
# 15 sessions, 5 made on each member (4 of them sending GETs, one POSTs a=1),
# one request after the other each, through the front from its namespace.
{
    # the cluster settled after (a): every member sees the others alive and
    # none is in a minority (node2 takes writes again)
    my $settled = within(20, sub {
        for my $n (@N) {
            my $p = status_of($c, $n) or return 0;
            return 0 if ($p->{Minority} // 1) != 0;
            for my $o (grep { $_ ne $n } @N) {
                my ($m) = grep { ($_->{route} // '') eq $o } @{ $p->{members} || [] };
                return 0 unless $m && ($m->{state} // '') eq 'alive';
            }
        }
        return 1;
    });
    check(defined $settled, $c, '(p) node1..node3 see each other alive, none in a minority');
    my (%sid, @names, %made_on);
    for my $n (@N) {
        for my $i (1 .. 5) {
            my $r = app($c, $n, 'auto');
            check(valid_sid($r->{cookie}, $n), $c, "(p) a session made on $n", show($r));
            my $name = ($i == 5 ? 'p' : 'g') . (scalar(@names) + 1);
            push @names, $name;
            ($sid{$name}, $made_on{$name}) = ($r->{cookie}, $n);
        }
    }
    my $h = $c->spawn($F, $^X, "-I$LIB", '-MSC::Load', '-e', 'exit SC::Load::main(@ARGV)',
                      "addr=$fm->{addr}", "port=$fm->{http_port}", 'duration=60',
                      'timeout=15', 'interval=0.05',
                      map { "session=$_:$sid{$_}:" . (/^p/ ? 'POST' : 'GET') } @names);
    my $recs = [];
    my $under_way = within(20, sub {
        $recs = records_of($h);
        my %n;
        $n{ $_->{name} }++ for grep { $_->{status} == 200 } @$recs;
        return !grep { ($n{$_} // 0) < 5 } @names;
    });
    my %on2;
    $on2{ $_->{name} } = 1 for grep { $_->{status} == 200 && ($_->{route} // '') eq 'node2' } @$recs;
    check(defined $under_way && keys %on2 == 5, $c, '(p) the load is under way: every session had 5 '
          . 'answers, those made on node2 from node2 (' . join(' ', sort keys %on2) . ')');
    $c->partition('node2');
    my $t_cut = time;
    my $w;
    my $t_err = within(20, sub {
        $w = worker('node2');
        $w && status_has($w->{status}, 'Err') && ($w->{member} // '') =~ /^(?:suspect|dead)$/;
    });
    $t_err = defined $t_err ? time : undef;
    check(defined $t_err, $c, '(p) the front puts node2\'s worker in Err, member=suspect or dead', bm_line($w));
    note(sprintf '(p) node2 cut off; the front held it in Err %.2fs after the cut', $t_err - $t_cut);
    # the load goes on 4 s after the front acted, then starts no more
    # requests; the partition heals (a POST still waiting in node2, not
    # replayable, is answered by it then, or fails at the worker's timeout)
    sleep 0.1 while time < $t_err + 4;
    kill 'USR1', -$h->{pid};
    $c->heal('node2');
    my $t_heal = time;
    note(sprintf '(p) the partition lasted %.1fs', $t_heal - $t_cut);
    my ($rc, $out) = $c->finish($h, timeout => 30);
    is($rc, 0, '(p) the load client ran to its end') or diag(substr($out, -1500));
    $recs = SC::Load::parse_tsv($out);

    my (%by, @failed_get, @failed_post, @lost, @jumped, @unserved);
    push @{ $by{ $_->{name} } }, $_ for sort { $a->{seq} <=> $b->{seq} } @$recs;
    my ($maxlat, $stall, $stall_who) = (0, 0, '');
    for my $n (@names) {
        my ($base, $last, $last_end, $after) = (base_of($sid{$n}), 1, undef, 0);
        for my $r (@{ $by{$n} || [] }) {
            my $end = $r->{t} + $r->{lat};
            $maxlat = $r->{lat} if $r->{lat} > $maxlat;
            if ($r->{status} != 200) {
                push @failed_get, "$n: " . SC::Load::to_tsv($r) if $n =~ /^g/;
                push @failed_post, [ $n, $r ] if $n =~ /^p/;
                next;
            }
            ($stall, $stall_who) = ($end - $last_end, $n)
                if defined $last_end && $r->{t} >= $t_cut - 0.5 && $end - $last_end > $stall;
            $last_end = $end;
            $after++ if $r->{t} >= $t_err;
            my $b = base_of($r->{session});
            my $cn = $r->{counter} // -1;
            if ($b eq '' || $b ne $base || $cn <= $last) {
                push @lost, "$n seq $r->{seq}: session " . ($r->{session} // '-') . " counter $cn after $last";
            }
            elsif ($cn > $last + 1) {
                push @jumped, "$n seq $r->{seq}: counter $cn after $last (route " . ($r->{route} // '-') . ')';
            }
            $last = $cn if $cn > $last;
        }
        # a POST session whose request waits in node2 is not served again
        push @unserved, $n unless $after || ($n =~ /^p/ && $made_on{$n} eq 'node2');
    }
    my @gets = grep { $_->{name} =~ /^g/ } @$recs;
    my @posts = grep { $_->{name} =~ /^p/ } @$recs;
    my $fp = status_of($c, $F) || {};
    my ($t_first, $t_last) = (time, 0);
    for (@$recs) { $t_first = $_->{t} if $_->{t} < $t_first; $t_last = $_->{t} + $_->{lat} if $_->{t} + $_->{lat} > $t_last }
    note(sprintf '(p) load: %d GETs and %d POSTs over %.1fs, the cut %.1fs into it (%d sessions on node2 before the cut), '
         . '%d GETs and %d POSTs failed; longest request %.3fs, longest stall of a session across the '
         . 'partition %.3fs (%s); %d answers whose counter went up by more than one (a request node2 '
         . 'applied and replicated whose answer the partition cut, replayed); FrontReplays %s, '
         . 'FrontNotReplayed %s',
         scalar @gets, scalar @posts, $t_last - $t_first, $t_cut - $t_first, scalar(keys %on2), scalar @failed_get,
         scalar @failed_post, $maxlat, $stall, $stall_who, scalar @jumped,
         $fp->{FrontReplays} // '?', $fp->{FrontNotReplayed} // '?');
    note("(p) failed POST (sent to node2 before the front held it in Err, not replayed): $_->[0]: "
         . SC::Load::to_tsv($_->[1])) for @failed_post;
    note("(p) $_") for @jumped[0 .. ($#jumped < 4 ? $#jumped : 4)];
    cmp_ok(scalar @gets, '>=', 12 * 10, '(p) the load ran (' . scalar(@gets) . ' GETs)');
    is(scalar @failed_get, 0, '(p) no GET failed across the partition: every one answered 200')
        or diag(join('', @failed_get[0 .. ($#failed_get < 9 ? $#failed_get : 9)]));
    is(scalar @lost, 0, '(p) no session lost, no acknowledged write lost: every answer of a session '
       . 'has its id and a counter above the last one it answered (GETs and POSTs)')
        or diag(join("\n", @lost[0 .. ($#lost < 9 ? $#lost : 9)]));
    my @bad_post = grep { $_->[1]{t} >= $t_err || $made_on{ $_->[0] } ne 'node2' } @failed_post;
    is(scalar @bad_post, 0, '(p) no POST failed but one sent to node2 before the front held it in Err')
        or diag(join('', map { "$_->[0]: " . SC::Load::to_tsv($_->[1]) } @bad_post));
    is(scalar @unserved, 0, '(p) every session was served after the front held node2 in Err '
       . '(but a POST session whose request waited in node2)') or diag(join(' ', @unserved));

    my $back = within(30, sub {
        $w = worker('node2');
        $w && ($w->{member} // '') eq 'ready' && status_has($w->{status}, 'Ok') && !status_has($w->{status}, 'Err');
    });
    check(defined $back, $c, '(p) healed: the front puts node2 back (member=ready, Ok)', bm_line($w));
}

# (b) stock mod_proxy_balancer ----------------------------------------------------
{
    $c->configure($F, cluster => '',
                  extra_conf => sub { SC::Cluster::front_conf($_[0], $_[1], %FRONT,
                                                              session_cluster_balancer => 0) });
    $c->restart($F, timeout => 15);
    my $p = status_of($c, $F);
    is($p && $p->{Cluster}, 'none', '(b) the front runs without a cluster block (Cluster: none)');
    ok($p && !exists $p->{EnginePid} && !@{ $p->{balancer_members} },
       '(b) ... with no engine and no BalancerMember tied to a cluster on its page');
    unlike($c->error_log($F, since_start => 1), qr/\bSC1236\b/, '(b) ... and started no cluster engine');

    my $r0 = app($c, 'node2', 'auto');
    my $S = $r0->{cookie};
    check(valid_sid($S, 'node2'), $c, '(b) a session on node2', show($r0));
    my $r1 = app($c, $F, 'auto', $S);
    check(($r1->{route} // '') eq 'node2', $c, '(b) through the front it sticks to node2', show($r1));

    my @else;
    my ($t_s, $recs, $held) = probe_silence_until('(b)', $S, sub {
        my ($t_s, $recs) = @_;
        @else = grep { $_->{t} >= $t_s && $_->{status} == 200 && ($_->{route} // '') ne 'node2' } @$recs;
        return @else >= 5;
    });
    note('(b) requests (start after the silence:latency/status/route): ' . timeline($t_s, $recs));
    check($held, $c, '(b) stock mod_proxy_balancer: requests started after the silence succeed on another member ('
          . scalar(@else) . ')');
    my @wrong = grep { ($_->{route} // '') !~ /^node[13]$/ } @else;
    ok(@else >= 5 && !@wrong, '(b) ... node1 or node3');
    my ($lost, $n2) = lost_and_node2($t_s, $recs, base_of($S));
    is(scalar @$lost, 0, '(b) the session was never lost (no new session)') or diag(join('', @$lost));
    is(scalar @$n2, 0, '(b) nothing was answered by node2 after the silence') or diag(join('', @$n2));
    $c->unsilence('node2');
}

for my $n (@N) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
