#!/usr/bin/env perl
# The channel benchmark: messages/s and round-trip latency p50/p99 between two
# members on loopback, 100 B and 10 KB messages, acknowledged and not, next to a
# minimal C ping-pong over loopback TCP (the physical limit).  Every scenario
# runs REPEATS times, in alternating order; the table shows medians and the
# spread (min-max of the medians' runs).
#
#   perl bench/channel.pl [SECONDS_PER_RUN] [REPEATS]      (defaults 3 and 3)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use SC::Cluster;
use Time::HiRes qw(sleep);

my $secs = shift // 3;
my $repeats = shift // 3;
my $bin = "$FindBin::Bin/sc_channel_bench";
die "build it first: make bench-build\n" unless -x $bin;

my $c = SC::Cluster->new(members => 2, loglevel => 'warn');
$c->start_all;
$c->wait_for(sub {
    my (undef, undef, $b) = $c->get('node1', '/cluster-manager?auto');
    $b =~ /^MembersAlive: 1$/m;
}, timeout => 10) or die "members do not see each other\n";
my (undef, undef, $page) = $c->get('node1', '/cluster-manager?auto');
my ($sock) = $page =~ /^EngineSocket: (\S+)$/m or die "no EngineSocket on the page\n";

my $pp_port = SC::Cluster::free_port();
my $srv = fork // die;
if (!$srv) { exec $bin, 'pingpong-server', $pp_port; exit 1 }
sleep 0.3;

my @scen = (
    [ 'tcp ping-pong 100 B (limit)',  [ 'pingpong', '127.0.0.1', $pp_port, 100, $secs ] ],
    [ 'channel 100 B acked',          [ 'engine', $sock, 'node2', 100, 1, $secs, 1 ] ],
    [ 'channel 100 B async',          [ 'engine', $sock, 'node2', 100, 0, $secs, 1 ] ],
    [ 'tcp ping-pong 10 KB (limit)',  [ 'pingpong', '127.0.0.1', $pp_port, 10240, $secs ] ],
    [ 'channel 10 KB acked',          [ 'engine', $sock, 'node2', 10240, 1, $secs, 1 ] ],
    [ 'channel 10 KB async',          [ 'engine', $sock, 'node2', 10240, 0, $secs, 1 ] ],
);
my %res;
for my $rep (1 .. $repeats) {
    my @order = $rep % 2 ? @scen : reverse @scen;
    for my $s (@order) {
        my $out = `$bin @{ $s->[1] }`;
        my %r = $out =~ /(\w+)=([\d.]+)/g;
        warn "$s->[0]: $out" if !$r{n} || $out =~ /last_error/;
        push @{ $res{$s->[0]} }, \%r;
    }
}
kill 'TERM', $srv;
waitpid $srv, 0;
$c->stop_all;

sub median { my @v = sort { $a <=> $b } @_; return $v[int(@v / 2)] }
sub spread { my @v = sort { $a <=> $b } @_; return sprintf '%s-%s', $v[0], $v[-1] }

printf "%-30s %12s %18s %10s %10s\n", 'scenario', 'msgs/s', '(spread)', 'p50 ms', 'p99 ms';
for my $s (@scen) {
    my $r = $res{$s->[0]};
    my @m = map { $_->{msgs_per_s} // 0 } @$r;
    printf "%-30s %12.0f %18s %10.3f %10.3f\n", $s->[0], median(@m), spread(@m),
        median(map { $_->{p50_ms} // 0 } @$r), median(map { $_->{p99_ms} // 0 } @$r);
}
printf "\n%d run(s) of %s s each per scenario, alternating order; one connection; "
     . "channel = child -> engine (local socket) -> member -> ACK -> engine -> child\n",
     $repeats, $secs;
