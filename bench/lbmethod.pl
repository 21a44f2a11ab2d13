#!/usr/bin/env perl
# The front's balancing methods with one member made slow (issue 21):
# lbmethod=bycluster (this module: the members' busy workers, from their
# heartbeats) against mod_proxy_balancer's byrequests and bybusyness.
#
# Three members (node1..node3, the demo application at /app, static
# membership, event MPM with 32 workers each) and a front with three
# balancers that list no BalancerMember (the members are added as they
# announce themselves: growth=4), one per method, on /rq (byrequests),
# /bb (bybusyness) and /bc (bycluster), all sticky on JSESSIONID.
#
# node1 is made slow: 31 of its 32 workers (BENCH_HELD) are held by connections that send
# half a request (a request line and a header, then nothing), as a member
# loaded by other traffic; its one free worker queues what comes.  The
# connections are opened again before each round (the members' Timeout is
# 30 s).
#
# Each round: new sessions of 5 requests each (the first without a cookie:
# the method picks; the others follow their cookie, so they stay on the
# member the method picked), 24 sessions at once, for BENCH_SECONDS, through
# one path; the methods take turns in alternating
# order, BENCH_REPEATS rounds each.  Printed per method (medians over the
# rounds, and the spread): requests/s, latency p50, p99 and the longest, the
# share of new sessions node1 got, failed requests, and the requests the
# front sent again to another member after their member closed a kept
# connection under them (FrontReplays: the replay goes to the member the
# front has the fewest requests in flight to, which may be the slow one).
#
#   perl bench/lbmethod.pl            (BENCH_SECONDS=10 BENCH_REPEATS=3)
#   make bench-lbmethod
# BENCH_HELD: node1's workers held (31); BENCH_PATHS: the methods to run
# ("rq bb bc"); BENCH_DEBUG=1 lists the requests slower than 2 s.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Load;
use SC::Test qw(status_of within demo_module demo_conf status_has);

my $SECONDS = $ENV{BENCH_SECONDS} || 10;
my $REPEATS = $ENV{BENCH_REPEATS} || 3;
my $HELD = $ENV{BENCH_HELD} || 31;
my %METHOD = (rq => 'byrequests', bb => 'bybusyness', bc => 'bycluster');
my @PATHS = split " ", ($ENV{BENCH_PATHS} || "rq bb bc");

my $DEMO_SO = $ENV{SC_DEMO_SO} || demo_module();
my $APP = demo_conf($DEMO_SO);

sub front_text {
    my ($front, $all) = @_;
    my $lib = $ENV{SC_LIBEXECDIR} || '/usr/lib/apache2/modules';
    my $x = '';
    for my $mod (qw(proxy_http proxy_balancer lbmethod_byrequests lbmethod_bybusyness
                    slotmem_shm)) {
        $x .= qq{<IfModule !mod_$mod.c>\n    LoadModule ${mod}_module "$lib/mod_$mod.so"\n</IfModule>\n};
    }
    for my $p (@PATHS) {
        $x .= "<Proxy balancer://$p>\n"
            . "    ProxySet stickysession=JSESSIONID|jsessionid lbmethod=$METHOD{$p} growth=4\n"
            . "</Proxy>\n"
            . "ProxyPass /$p balancer://$p/app\n"
            . "SessionClusterBalancer balancer://$p\n";
    }
    return $x;
}

my $c = SC::Cluster->new(
    members     => 3,
    front       => 'front',
    extra_conf  => $APP,
    member_opts => { front => { extra_conf => \&front_text } },
);
my $F = $c->front;
my $fm = $c->member($F);
$c->start_all;
my $ready = within(30, sub {
    my $p = status_of($c, $F) or return 0;
    my $ok = grep { status_has($_->{status}, 'Ok') && !status_has($_->{status}, 'Err') }
             @{ $p->{balancer_members} };
    return $ok == 3 * @PATHS;
});
die "bench/lbmethod.pl: the front did not add the three members to its balancers\n" unless $ready;

my @held;
sub hold_node1 {
    close $_ for @held;
    @held = ();
    my $port = $c->member('node1')->{http_port};
    for (1 .. $HELD) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
                                      Timeout => 3) or next;
        print $s "GET /app HTTP/1.1\r\nHost: localhost\r\n";
        push @held, $s;
    }
    # until the front's view of node1 shows them (its heartbeats)
    within(10, sub {
        my $p = status_of($c, $F) or return 0;
        my ($m) = grep { ($_->{route} // '') eq 'node1' } @{ $p->{members} };
        return $m && ($m->{busy} // 0) >= $HELD - 2;
    });
}

sub pct {
    my ($q, @v) = @_;
    return 0 unless @v;
    @v = sort { $a <=> $b } @v;
    return $v[ int($q * $#v + 0.5) ];
}
sub median { my @v = sort { $a <=> $b } @_; return @v ? $v[int(@v / 2)] : 0 }

my %res;    # path => [ { rps, p50, p99, node1, failed } ]
my $seq = 0;
for my $round (1 .. $REPEATS) {
    my @order = $round % 2 ? @PATHS : reverse @PATHS;
    for my $p (@order) {
        hold_node1();
        my @sess = map { { name => 's' . ++$seq, requests => 5 } } 1 .. 50000;
        my $replays0 = (status_of($c, $F) // {})->{FrontReplays} // 0;
        my $t0 = time;
        my $recs = SC::Load::run(addr => $fm->{addr}, port => $fm->{http_port},
                                 path => "/$p?auto", sessions => \@sess, concurrency => 24,
                                 duration => $SECONDS, timeout => 30);
        my $dt = time - $t0;
        $dt = $SECONDS if $dt < $SECONDS;
        my @ok = grep { $_->{status} == 200 } @$recs;
        if ($ENV{BENCH_DEBUG}) {
            printf STDERR "slow: %s seq %d route %s %.1f s after start, %.1f s\n", $_->{name}, $_->{seq},
                $_->{route} // '-', $_->{t} - $t0, $_->{lat} for grep { $_->{lat} > 2 } @$recs;
        }
        my %first;
        for my $r (@ok) { $first{ $r->{name} } //= $r->{route} if $r->{seq} == 1 }
        my $n1 = grep { ($_ // '') eq 'node1' } values %first;
        push @{ $res{$p} }, {
            rps    => @ok / ($dt || 1),
            p50    => 1000 * pct(0.5, map { $_->{lat} } @ok),
            p99    => 1000 * pct(0.99, map { $_->{lat} } @ok),
            max    => 1000 * pct(1, map { $_->{lat} } @ok),
            node1  => %first ? 100 * $n1 / keys %first : 0,
            failed => @$recs - @ok,
            replays => ((status_of($c, $F) // {})->{FrontReplays} // 0) - $replays0,
        };
    }
}
close $_ for @held;

printf "%-12s %14s %10s %10s %14s %14s %8s %8s\n", 'lbmethod', 'req/s', 'p50 ms', 'p99 ms',
       'max ms', 'node1 share %', 'failed', 'replays';
for my $p (@PATHS) {
    my @r = @{ $res{$p} };
    my $col = sub {
        my ($k) = @_;
        my @v = map { $_->{$k} } @r;
        my @s = sort { $a <=> $b } @v;
        return sprintf('%.0f', median(@v)) . (@v > 1 ? sprintf(' (%.0f-%.0f)', $s[0], $s[-1]) : '');
    };
    printf "%-12s %14s %10s %10s %14s %14s %8s %8s\n", $METHOD{$p}, $col->('rps'),
           $col->('p50'), $col->('p99'), $col->('max'), $col->('node1'), $col->('failed'),
           $col->('replays');
}
print "node1: $HELD of its 32 workers held by half-sent requests; $REPEATS round(s) of "
    . "$SECONDS s per method, sessions of 5 requests, 24 at once\n";
