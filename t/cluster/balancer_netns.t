#!perl
# A member that goes silent behind a front balancer (issue 5), in network
# namespaces: three members (node1..node3, the demo application at /app with
# JvmRouteBinderValve, channelSendOptions 6, static membership with Tomcat's
# default dropTime 3000 ms and TcpFailureDetector) and a front httpd
# (mod_proxy_balancer, BalancerMembers route=node1..node3 with
# connectiontimeout=5 timeout=10 retry=60) each in its own namespace on one
# bridge.  "Silent": an nftables table in node2's namespace drops every
# packet in and out (its link stays up; peers get no reset, no ICMP).
# A probe client inside the front's namespace starts a request every 0.2 s
# with a session stuck to node2 (not waiting for the earlier ones, 15 s
# client timeout), and node2 goes silent 2 s into it:
#   (a) with SessionClusterBalancer: the front's page shows node2's worker in
#       Err once node2 drops out of membership, requests succeed again on
#       another member (the session re-bound, not lost) within 6 s
#       (dropTime 3 s + the TCP check + margin), and every request started
#       after that succeeds quickly; then node2 speaks again and the front
#       puts it back (member=ready, Ok) without waiting for retry=60;
#   (b) the same with the front's SessionClusterBalancer line (and its
#       <Cluster> block) removed, stock mod_proxy_balancer: the stall is
#       measured and noted (how long until requests succeed elsewhere, the
#       longest request), not asserted.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Load;
use SC::Test qw(need status_of check within app show valid_sid demo_module
                balancer_member bm_line status_has);
SC::Test::dump_options(tail => 20, cut => 300);

my $why = SC::Cluster->netns_unavailable;
need(!$why, "network namespaces (run as root): " . ($why // ''));
need(SC::Cluster::which("nft"), "the nft command (nftables; build/install-deps.sh installs it)");

my $PROBE_A = $ENV{SC_NETNS_PROBE_A} || 14;    # seconds of probing, (a)
my $PROBE_B = $ENV{SC_NETNS_PROBE_B} || 20;    # and (b): the stock stall may reach timeout=10
my $LIMIT = 60 + $PROBE_A + $PROBE_B;
$SIG{ALRM} = sub { die "balancer_netns.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $DEMO_SO = demo_module();
my $LIB = "$FindBin::Bin/../lib";
$LIB = Cwd::abs_path($LIB) if eval { require Cwd; 1 };

my $APP = "StartServers 4\nMinSpareThreads 32\nMaxSpareThreads 32\n"
        . "LoadModule session_cluster_demo_module \"$DEMO_SO\"\n"
        . "<Location /app>\n  Session On\n  SessionCluster On\n"
        . "  SetHandler session-cluster-demo\n</Location>\n";
my %FRONT = (retry => 60, connectiontimeout => 5, timeout => 10);
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

# Runs the probe client in the front's namespace with session $id for $secs;
# silences node2 after 2 s; calls $during->($t_silent) while the probe runs.
# Returns ($t_silent, [records]).
sub probe_and_silence {
    my ($id, $secs, $during) = @_;
    my $t0 = time;
    my $h = $c->spawn($F, $^X, "-I$LIB", '-MSC::Load', '-e', 'exit SC::Load::main(@ARGV)',
                      "addr=$fm->{addr}", "port=$fm->{http_port}", "duration=$secs",
                      'timeout=15', 'interval=0.2', 'overlap=1', "session=S:$id");
    sleep 2 - (time - $t0) if time - $t0 < 2;
    $c->silence('node2');
    my $t_s = time;
    $during->($t_s) if $during;
    my ($rc, $out) = $c->finish($h, timeout => $secs + 30);
    is($rc, 0, 'the probe client finished') or diag(substr($out, -1500));
    return ($t_s, SC::Load::parse_tsv($out));
}

# Figures of a probe run: first success elsewhere after the silence, when the
# front stopped sending to node2 (from then on every request succeeded on
# another member in under 1 s), the longest request, failures, lost sessions.
sub figures {
    my ($t_s, $recs, $base) = @_;
    my %f = (requests => scalar @$recs, failed => 0, lost => 0, longest => 0, on_node2_after => 0);
    my @after = grep { $_->{t} + $_->{lat} >= $t_s } @$recs;
    for my $r (@after) {
        $f{longest} = $r->{lat} if $r->{lat} > $f{longest};
        $f{failed}++ if $r->{status} != 200;
        $f{lost}++ if $r->{status} == 200
            && (($r->{session} // '') eq '(new)' || base_of($r->{session}) ne $base);
        if ($r->{status} == 200 && ($r->{route} // '') ne 'node2') {
            my $end = $r->{t} + $r->{lat} - $t_s;
            $f{first_other} = $end if !defined $f{first_other} || $end < $f{first_other};
        }
        $f{on_node2_after}++ if $r->{status} == 200 && ($r->{route} // '') eq 'node2' && $r->{t} > $t_s;
    }
    # the last request started after the silence that did not succeed quickly elsewhere
    my $last_bad;
    for my $r (grep { $_->{t} >= $t_s } @$recs) {
        my $good = $r->{status} == 200 && ($r->{route} // '') ne 'node2' && $r->{lat} < 1.0;
        $last_bad = $r->{t} - $t_s if !$good && (!defined $last_bad || $r->{t} - $t_s > $last_bad);
    }
    $f{stopped} = defined $last_bad ? $last_bad : 0;
    $f{started_after} = scalar grep { $_->{t} >= $t_s } @$recs;
    my $late = (sort { $b->{t} <=> $a->{t} } grep { $_->{t} >= $t_s } @$recs)[0];
    $f{covered} = $late ? $late->{t} - $t_s : 0;
    return \%f;
}

# The requests around the silence, compactly: start (s after the silence),
# latency, status, route.
sub timeline {
    my ($t_s, $recs) = @_;
    return join(' ', map { sprintf('%+.1f:%.2fs/%s/%s', $_->{t} - $t_s, $_->{lat}, $_->{status},
                                   $_->{route} // '-') }
                     grep { $_->{t} >= $t_s - 0.5 && $_->{t} <= $t_s + 7 }
                     sort { $a->{t} <=> $b->{t} } @$recs);
}

sub fig_line {
    my ($f) = @_;
    return sprintf('first success on another member %s after the silence; the last request that did not '
                   . 'succeed at once on another member started %.2fs after it; longest request %.2fs; '
                   . '%d of %d requests failed; %d answered by node2 after it',
                   defined $f->{first_other} ? sprintf('%.2fs', $f->{first_other}) : 'never',
                   $f->{stopped}, $f->{longest}, $f->{failed}, $f->{requests}, $f->{on_node2_after});
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

    my ($t_err, $w);
    my ($t_s, $recs) = probe_and_silence($S, $PROBE_A, sub {
        my ($t_s) = @_;
        $t_err = within(8, sub { $w = worker('node2'); $w && status_has($w->{status}, 'Err') }, $t_s);
    });
    my $f = figures($t_s, $recs, base_of($S));
    diag('(a) with SessionClusterBalancer: ' . fig_line($f));
    note('(a) requests (start after the silence:latency/status/route): ' . timeline($t_s, $recs));
    note(sprintf '(a) the front\'s page showed node2 in Err %s after the silence (%s)',
         defined $t_err ? sprintf('%.2fs', $t_err) : 'not within 8 s', bm_line($w));
    check(defined $t_err && $t_err <= 6, $c,
          sprintf('(a) the front puts node2\'s worker in Err within 6 s of the silence (%s)',
                  defined $t_err ? sprintf('%.2fs', $t_err) : 'not within 8 s'), bm_line($w));
    cmp_ok($t_err // 99, '>=', 2.0, '(a) ... not before dropTime (3 s) could have passed, about');
    ok(defined $f->{first_other} && $f->{first_other} <= 6,
       sprintf('(a) requests succeed again on another member within 6 s (%s)',
               defined $f->{first_other} ? sprintf('%.2fs', $f->{first_other}) : 'never'));
    cmp_ok($f->{stopped}, '<=', 6, sprintf('(a) every request started 6 s after the silence succeeds at once '
                                          . 'on another member (the last that did not: %.2fs)', $f->{stopped}));
    cmp_ok($f->{covered}, '>=', 8, '(a) the probe ran long enough after the silence to tell');
    is($f->{lost}, 0, '(a) the session was never lost (no new session)');
    is($f->{on_node2_after}, 0, '(a) nothing was answered by node2 after the silence');
    my @rb = grep { $_->{cookie} } @$recs;
    ok(@rb && base_of($rb[0]{cookie}) eq base_of($S) && $rb[0]{cookie} =~ /\.node[13]$/,
       '(a) the session was re-bound to node1 or node3 (Set-Cookie, same base)')
        or diag('Set-Cookies: ' . join(' ', map { $_->{cookie} } @rb));

    # node2 speaks again: back in rotation without waiting for retry=60
    my $t_h = time;
    $c->unsilence('node2');
    my $back = within(15, sub {
        $w = worker('node2');
        $w && ($w->{member} // '') eq 'ready' && status_has($w->{status}, 'Ok') && !status_has($w->{status}, 'Err');
    }, $t_h);
    check(defined $back, $c,
          sprintf('(a) node2 heard again: the front puts it back (member=ready, Ok) %s, before retry=60',
                  defined $back ? sprintf('%.2fs later', $back) : 'not within 15 s'), bm_line($w));
}

# (b) stock mod_proxy_balancer ----------------------------------------------------
{
    $c->configure($F, cluster => '',
                  extra_conf => sub { SC::Cluster::front_conf($_[0], $_[1], %FRONT,
                                                              session_cluster_balancer => 0) });
    unlike($c->config_text($F), qr/^\s*SessionClusterBalancer|<Cluster/m,
           '(b) the front\'s configuration has no SessionClusterBalancer and no <Cluster>');
    $c->restart($F, timeout => 15);
    my $p = status_of($c, $F);
    is($p && $p->{Cluster}, 'none', '(b) the front runs without a cluster block');

    my $r0 = app($c, 'node2', 'auto');
    my $S = $r0->{cookie};
    check(valid_sid($S, 'node2'), $c, '(b) a session on node2', show($r0));
    my $r1 = app($c, $F, 'auto', $S);
    check(($r1->{route} // '') eq 'node2', $c, '(b) through the front it sticks to node2', show($r1));

    my ($t_s, $recs) = probe_and_silence($S, $PROBE_B);
    my $f = figures($t_s, $recs, base_of($S));
    diag('(b) stock mod_proxy_balancer (connectiontimeout=5 timeout=10): ' . fig_line($f));
    note('(b) requests (start after the silence:latency/status/route): ' . timeline($t_s, $recs));
    ok($f->{started_after} > 0, '(b) the stall of stock mod_proxy_balancer was measured');
    $c->unsilence('node2');
}

for my $n (@N) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
