#!/usr/bin/env perl
# The failover benchmark: how long a front balancer keeps sending requests to
# a member that went silent, with SessionClusterBalancer and with stock
# mod_proxy_balancer (the figures t/cluster/balancer_netns.t used to print;
# the test now asserts only what must hold, this measures how long it takes).
#
# Three members (node1..node3: the demo application at /app with
# JvmRouteBinderValve, channelSendOptions 6, static membership, dropTime
# 3000 ms, TcpFailureDetector) and a front httpd (mod_proxy_balancer,
# BalancerMembers connectiontimeout=5 timeout=10 retry=60), each in its own
# network namespace.  A probe client in the front's namespace starts a
# request every 0.2 s with a session stuck to node2 (not waiting for the
# earlier ones, 15 s client timeout); node2 goes silent (nftables drops
# everything in and out) 2 s into it:
#   (a) the front with SessionClusterBalancer and its <Cluster> block;
#   (b) the front without them (stock mod_proxy_balancer).
# For each: when the first request succeeded on another member, when the
# last request that did not succeed at once (< 1 s) on another member started,
# the longest request, failed requests, and (a) when the front's page showed
# node2's worker in Err.
# Then a partition under load (issue 20), with each front: 15 sessions, 5
# made on each member (4 sending GETs, one POSTs a=1), one request after the
# other each, through the front from its namespace; node2's link goes down
# 2 s into it for PARTITION seconds (30), and the load goes on 3 s after the
# heal.  For each: failed GETs and POSTs, lost sessions (an answer with
# another session, or a counter not above the session's last), the longest
# stall of a session (between two of its answers), of a GET session, of a
# session on node2, and the longest request.  Needs root (network namespaces) and nft.
#
#   perl bench/failover_netns.pl [PROBE_A_SECONDS] [PROBE_B_SECONDS] [ROUNDS]
#                                [PARTITION_SECONDS]   (defaults 14 20 1 30; 0: none)
# make bench-failover [FAILOVER_PROBE_A=14 FAILOVER_PROBE_B=20 FAILOVER_ROUNDS=1
#                      FAILOVER_PARTITION=30]
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Cwd qw(abs_path);
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Load;
use SC::Test qw(status_of within app valid_sid demo_module balancer_member bm_line status_has);

my $PROBE_A = shift // 14;
my $PROBE_B = shift // 20;
my $ROUNDS = shift // 1;
my $PARTITION = shift // 30;
my $why = SC::Cluster->netns_unavailable;
die "bench/failover_netns.pl: network namespaces needed (run as root): $why\n" if $why;
die "bench/failover_netns.pl: the nft command is needed (nftables)\n" unless SC::Cluster::which('nft');

my $DEMO_SO = $ENV{SC_DEMO_SO} || demo_module();
my $LIB = abs_path("$FindBin::Bin/../t/lib");
my $APP = "StartServers 4\nMinSpareThreads 32\nMaxSpareThreads 32\n"
        . "LoadModule session_cluster_demo_module \"$DEMO_SO\"\n"
        . "<Location /app>\n  Session On\n  SessionCluster On\n"
        . "  SetHandler session-cluster-demo\n</Location>\n";
my %FRONT = (retry => 60, connectiontimeout => 5, timeout => 10);

sub base_of { my ($id) = @_; return defined $id && $id =~ /^([0-9A-Fa-f]{32})\./ ? $1 : '' }

# Runs the probe client in the front's namespace with session $id for $secs;
# silences node2 after 2 s; calls $during->($t_silent) while the probe runs.
# Returns ($t_silent, [records]).
sub probe_and_silence {
    my ($c, $id, $secs, $during) = @_;
    my $F = $c->front;
    my $fm = $c->member($F);
    my $t0 = time;
    my $h = $c->spawn($F, $^X, "-I$LIB", '-MSC::Load', '-e', 'exit SC::Load::main(@ARGV)',
                      "addr=$fm->{addr}", "port=$fm->{http_port}", "duration=$secs",
                      'timeout=15', 'interval=0.2', 'overlap=1', "session=S:$id");
    sleep 2 - (time - $t0) if time - $t0 < 2;
    $c->silence('node2');
    my $t_s = time;
    $during->($t_s) if $during;
    my ($rc, $out) = $c->finish($h, timeout => $secs + 30);
    warn "the probe client exited $rc\n" if $rc != 0;
    return ($t_s, SC::Load::parse_tsv($out));
}

# Figures of a probe run: first success elsewhere after the silence, when the
# front stopped sending to node2 (from then on every request succeeded on
# another member in under 1 s), the longest request, failures, lost sessions.
sub figures {
    my ($t_s, $recs, $base) = @_;
    my %f = (requests => scalar @$recs, failed => 0, lost => 0, longest => 0, on_node2_after => 0);
    for my $r (grep { $_->{t} + $_->{lat} >= $t_s } @$recs) {
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
    my $last_bad;
    for my $r (grep { $_->{t} >= $t_s } @$recs) {
        my $good = $r->{status} == 200 && ($r->{route} // '') ne 'node2' && $r->{lat} < 1.0;
        $last_bad = $r->{t} - $t_s if !$good && (!defined $last_bad || $r->{t} - $t_s > $last_bad);
    }
    $f{stopped} = $last_bad // 0;
    my $late = (sort { $b->{t} <=> $a->{t} } grep { $_->{t} >= $t_s } @$recs)[0];
    $f{covered} = $late ? $late->{t} - $t_s : 0;
    return \%f;
}

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
                   . '%d of %d requests failed; %d lost; %d answered by node2 after it; probe covered %.1fs',
                   defined $f->{first_other} ? sprintf('%.2fs', $f->{first_other}) : 'never',
                   $f->{stopped}, $f->{longest}, $f->{failed}, $f->{requests}, $f->{lost},
                   $f->{on_node2_after}, $f->{covered});
}

# A session on node2, stuck to it through the front.
sub node2_session {
    my ($c) = @_;
    my $r0 = app($c, 'node2', 'auto');
    die "no session on node2: status $r0->{status}\n" unless valid_sid($r0->{cookie}, 'node2');
    my $r1 = app($c, $c->front, 'auto', $r0->{cookie});
    die "through the front the session is not on node2\n" unless ($r1->{route} // '') eq 'node2';
    return $r0->{cookie};
}

# A partition of node2 for $secs under load through the front: figures.
sub partition_load {
    my ($c, $secs) = @_;
    my $F = $c->front;
    my $fm = $c->member($F);
    # after a silence node2 refuses writes until it hears the others again
    # (its minority): the members see each other alive, none in a minority
    within(30, sub {
        for my $n ($c->routed) {
            my $p = status_of($c, $n) or return 0;
            return 0 if ($p->{Minority} // 1) != 0;
            for my $o (grep { $_ ne $n } $c->routed) {
                my ($m) = grep { ($_->{route} // '') eq $o } @{ $p->{members} || [] };
                return 0 unless $m && ($m->{state} // '') eq 'alive';
            }
        }
        return 1;
    }) // warn "the members do not all see each other alive, or one is in a minority\n";
    my (%sid, %on, @names);
    for my $n ($c->routed) {
        for my $i (1 .. 5) {
            my $r = app($c, $n, 'auto');
            die "no session on $n: status $r->{status}\n" unless valid_sid($r->{cookie}, $n);
            my $name = ($i == 5 ? 'p' : 'g') . (@names + 1);
            push @names, $name;
            ($sid{$name}, $on{$name}) = ($r->{cookie}, $n);
        }
    }
    my $t0 = time;
    my $h = $c->spawn($F, $^X, "-I$LIB", '-MSC::Load', '-e', 'exit SC::Load::main(@ARGV)',
                      "addr=$fm->{addr}", "port=$fm->{http_port}", 'duration=' . ($secs + 5),
                      'timeout=15', 'interval=0.05',
                      map { "session=$_:$sid{$_}:" . (/^p/ ? 'POST' : 'GET') } @names);
    sleep 2 - (time - $t0) if time - $t0 < 2;
    $c->partition('node2');
    my $t_cut = time;
    my $t_err = within($secs, sub {
        my $w = balancer_member(status_of($c, $F), 'node2');
        $w && status_has($w->{status}, 'Err');
    }, $t_cut);
    sleep $secs - (time - $t_cut) if time - $t_cut < $secs;
    $c->heal('node2');
    my ($rc, $out) = $c->finish($h, timeout => $secs + 40);
    warn "the load client exited $rc\n" if $rc != 0;
    my $recs = SC::Load::parse_tsv($out);
    my %f = (failures => [], gets => 0, posts => 0, get_failed => 0, post_failed => 0, lost => 0, stall => 0,
             stall_get => 0, stall_node2 => 0, longest => 0, err => $t_err);
    my %by;
    push @{ $by{ $_->{name} } }, $_ for sort { $a->{seq} <=> $b->{seq} } @$recs;
    for my $n (@names) {
        my ($base, $last, $last_end) = (base_of($sid{$n}), 1, $t0);
        for my $r (@{ $by{$n} || [] }) {
            $f{ $n =~ /^g/ ? 'gets' : 'posts' }++;
            $f{longest} = $r->{lat} if $r->{lat} > $f{longest};
            if ($r->{status} != 200) {
                $f{ $n =~ /^g/ ? 'get_failed' : 'post_failed' }++;
                push @{ $f{failures} }, sprintf('%s (made on %s) seq %d, %+.2fs after the cut, %.2fs: '
                                                . 'status %s %s', $n, $on{$n}, $r->{seq}, $r->{t} - $t_cut,
                                                $r->{lat}, $r->{status}, $r->{err} // '');
                next;
            }
            my $end = $r->{t} + $r->{lat};
            $f{stall} = $end - $last_end if $end - $last_end > $f{stall};
            $f{stall_get} = $end - $last_end if $n =~ /^g/ && $end - $last_end > $f{stall_get};
            $f{stall_node2} = $end - $last_end if $on{$n} eq 'node2' && $end - $last_end > $f{stall_node2};
            $last_end = $end;
            my $cn = $r->{counter} // -1;
            $f{lost}++ if base_of($r->{session}) ne $base || $cn <= $last;
            $last = $cn if $cn > $last;
        }
    }
    return \%f;
}

sub partition_line {
    my ($f) = @_;
    return sprintf('%d of %d GETs and %d of %d POSTs failed; %d answers lost a session or a write; '
                   . 'longest stall of a session %.2fs (of a GET session %.2fs, of a session on node2 '
                   . '%.2fs); longest request '
                   . '%.2fs; node2 in Err on the front %s after the cut',
                   $f->{get_failed}, $f->{gets}, $f->{post_failed}, $f->{posts}, $f->{lost},
                   $f->{stall}, $f->{stall_get}, $f->{stall_node2}, $f->{longest},
                   defined $f->{err} ? sprintf('%.2fs', $f->{err}) : 'never');
}

# the front back to node2 in rotation (after an unsilence or a heal)
sub node2_back {
    my ($c, $round) = @_;
    within(30, sub { my $x = balancer_member(status_of($c, $c->front), 'node2');
                     $x && (($x->{member} // 'ready') eq 'ready') && !status_has($x->{status}, 'Err') })
        // warn "round $round: node2 not back in rotation on the front within 30 s\n";
}

my @rows;
for my $round (1 .. $ROUNDS) {
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
    my $F = $c->front;
    $c->start_all(timeout => 15);
    within(20, sub {
        my $p = status_of($c, $F) or return 0;
        !grep { my $w = balancer_member($p, $_); !($w && status_has($w->{status}, 'Ok')
                                                   && ($w->{member} // '') eq 'ready') } $c->routed;
    }) // die "the front does not show node1..node3 ready\n";

    # (a) SessionClusterBalancer
    my $S = node2_session($c);
    my ($t_err, $w);
    my ($t_s, $recs) = probe_and_silence($c, $S, $PROBE_A, sub {
        my ($t_s) = @_;
        $t_err = within($PROBE_A, sub {
            $w = balancer_member(status_of($c, $F), 'node2');
            $w && status_has($w->{status}, 'Err');
        }, $t_s);
    });
    my $fa = figures($t_s, $recs, base_of($S));
    $fa->{err} = $t_err;
    print "round $round (a) SessionClusterBalancer: " . fig_line($fa)
        . sprintf('; the front showed node2 in Err %s after the silence (%s)',
                  defined $t_err ? sprintf('%.2fs', $t_err) : 'never', bm_line($w)) . "\n";
    print "round $round (a) requests (start:latency/status/route): " . timeline($t_s, $recs) . "\n";
    $c->unsilence('node2');
    node2_back($c, $round);
    my ($pa, $pb);
    if ($PARTITION > 0) {
        $pa = partition_load($c, $PARTITION);
        print "round $round (a) partition of node2 for ${PARTITION}s under load, SessionClusterBalancer: "
            . partition_line($pa) . "\n";
        print "round $round (a) failed: $_\n" for @{ $pa->{failures} };
        node2_back($c, $round);
    }

    # (b) stock mod_proxy_balancer
    $c->configure($F, cluster => '',
                  extra_conf => sub { SC::Cluster::front_conf($_[0], $_[1], %FRONT,
                                                              session_cluster_balancer => 0) });
    $c->restart($F, timeout => 15);
    $S = node2_session($c);
    ($t_s, $recs) = probe_and_silence($c, $S, $PROBE_B);
    my $fb = figures($t_s, $recs, base_of($S));
    print "round $round (b) stock mod_proxy_balancer: " . fig_line($fb) . "\n";
    print "round $round (b) requests (start:latency/status/route): " . timeline($t_s, $recs) . "\n";
    $c->unsilence('node2');
    if ($PARTITION > 0) {
        # stock mod_proxy_balancer holds node2's worker in error until retry=
        # passes: a fresh front, node2 in rotation
        $c->restart($F, timeout => 15);
        $pb = partition_load($c, $PARTITION);
        print "round $round (b) partition of node2 for ${PARTITION}s under load, stock mod_proxy_balancer: "
            . partition_line($pb) . "\n";
        print "round $round (b) failed: $_\n" for @{ $pb->{failures} };
    }
    $c->teardown;
    push @rows, [ $round, $fa, $fb, $pa, $pb ];
}

print "\n";
printf "%-6s %-28s %14s %14s %12s %8s %6s\n", 'round', 'front', 'first_other_s', 'stall_until_s',
       'longest_s', 'failed', 'lost';
for my $r (@rows) {
    my ($round, $fa, $fb) = @$r;
    for ([ 'SessionClusterBalancer', $fa ], [ 'stock mod_proxy_balancer', $fb ]) {
        my ($name, $f) = @$_;
        printf "%-6d %-28s %14s %14.2f %12.2f %8d %6d\n", $round, $name,
               defined $f->{first_other} ? sprintf('%.2f', $f->{first_other}) : 'never',
               $f->{stopped}, $f->{longest}, $f->{failed}, $f->{lost};
    }
}

exit 0 unless $PARTITION > 0;
print "\npartition of node2 for ${PARTITION}s under load (15 sessions, 3 of them POSTing; synchronous replication)\n";
printf "%-6s %-28s %12s %12s %6s %9s %13s %15s %10s %9s\n", 'round', 'front', 'GETs_failed',
       'POSTs_failed', 'lost', 'stall_s', 'stall_get_s', 'stall_node2_s', 'longest_s', 'err_s';
for my $r (@rows) {
    my ($round, undef, undef, $pa, $pb) = @$r;
    for ([ 'SessionClusterBalancer', $pa ], [ 'stock mod_proxy_balancer', $pb ]) {
        my ($name, $f) = @$_;
        next unless $f;
        printf "%-6d %-28s %5d/%-6d %5d/%-6d %6d %9.2f %13.2f %15.2f %10.2f %9s\n", $round, $name,
               $f->{get_failed}, $f->{gets}, $f->{post_failed}, $f->{posts}, $f->{lost}, $f->{stall},
               $f->{stall_get}, $f->{stall_node2}, $f->{longest},
               defined $f->{err} ? sprintf('%.2f', $f->{err}) : '-';
    }
}
