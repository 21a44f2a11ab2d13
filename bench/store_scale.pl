#!/usr/bin/env perl
# The store at scale: the same two-member cluster (no capacity setting at all:
# maxActiveSessions -1, maxStoreSize 0, i.e. a quarter of the machine's memory
# at most 1 GiB) holding N sessions of 1 KB, for each N given, measured in one
# run and printed side by side with the ratio of the last N to the first:
#
#   - fill: N sessions made on member 1 (GET /app?set=pad&fill=1024, kept-alive
#     connections, FILL_CLIENTS clients in parallel), sessions/s;
#   - replication: from the end of the fill until member 2 holds all N;
#   - the store's memory on both members (SessionsStoreBytes,
#     SessionsBudgetUsed, SessionsBytesInUse from /cluster-manager?auto) and
#     the members' PSS (smaps_rollup over their processes), after the fill;
#   - the request rate on member 1 with wrk (2 threads, 16 connections):
#     (a) reads + updates of existing sessions picked at random (GET
#     /app?auto with one of the N cookies), (b) new sessions (GET /app?auto
#     without a cookie); req/s, p99 latency, non-2xx answers;
#   - the machine's load (/proc/loadavg) before and after each N.
#
#   perl bench/store_scale.pl [SECONDS] [N ...]      (defaults: 10 1000 100000)
#   FILL_CLIENTS=4 (parallel fill connections), SESSION_BYTES=1024,
#   STORE_ROUNDS=1 (rounds in alternating order; the table shows medians)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use SC::Cluster;
use SC::KeepAlive;
use SC::Bench;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';
my $secs = shift // 10;
my @counts = @ARGV ? @ARGV : (1000, 100000);
die "usage: perl bench/store_scale.pl [SECONDS] [N ...]\n"
    if grep { !/^\d+$/ || $_ < 1 } $secs, @counts;
my $clients = $ENV{FILL_CLIENTS} || 4;
my $rounds = $ENV{STORE_ROUNDS} || 1;
my $size = $ENV{SESSION_BYTES} || 1024;
my $conns = 16;
my $threads = 2;
my $demo = $ENV{SC_DEMO_SO} || "$FindBin::Bin/../demo/.libs/mod_session_cluster_demo.so";
die "build first (make)\n" unless -f $demo;
-x '/usr/bin/wrk' or die "wrk is missing: apt-get install wrk\n";

my $tmp = tempdir('sc-store-scale-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub loadavg { SC::Bench::loadavg() }
sub load1 { SC::Bench::load1(@_) }
sub status { SC::Bench::status(@_) }
sub pss_of { SC::Bench::pss_of(@_) }
sub req { SC::KeepAlive::get(@_) }

sub fill { SC::Bench::fill(@_, clients => $clients, size => $size) }

sub wrk { my ($port, $lua, @args) = @_;
          SC::Bench::wrk($port, $lua, { threads => $threads, conns => $conns, secs => $secs }, @args) }

# (a) an existing session picked at random per request, the cookie list read
# from a file in init; (b) no cookie: every request makes a new session
my $lua_existing = "$tmp/existing.lua";
SC::Bench::write_lua_existing($lua_existing);

my $lua_new = "$tmp/new.lua";
open my $lf, '>', $lua_new or die;
print $lf "request = function() return wrk.format('GET', '/app?auto') end\n";
close $lf;

# One N: a fresh cluster, filled, measured, stopped.
sub measure {
    my ($count) = @_;
    my %r = (n => $count, load_before => loadavg());
    print STDERR "N=$count: starting two members\n";
    my $c = SC::Cluster->new(
        members => 2, loglevel => 'warn', mpm => 'event',
        start_timeout => 30,
        cluster => sub { SC::Cluster::static_block($_[0], $_[1], channelSendOptions => 8) },
        # (ThreadLimit: SC::Cluster's 16 would cap ThreadsPerChild, see
        # bench/sessions.pl; kept connections for the fill)
        extra_conf => "LoadModule session_cluster_demo_module $demo\n"
                      . "ThreadLimit 25\nThreadsPerChild 25\nMaxRequestWorkers 100\n"
                      . "ServerLimit 4\nKeepAliveTimeout 30\nMaxKeepAliveRequests 0\n"
                      . "<Location /app>\n  Session On\n  SessionCluster On\n"
                      . "  SetHandler session-cluster-demo\n</Location>\n");
    $c->start_all;
    $c->wait_for(sub {
        my $ok = 1;
        for my $n (qw(node1 node2)) {
            my $p = status($c, $n);
            $ok &&= ($p->{EngineState} // '') eq 'ready' && ($p->{MembersAlive} // 0) >= 1;
        }
        $ok;
    }, timeout => 30);
    my $p0 = status($c, 'node1');
    $r{budget} = $p0->{SessionsBudgetBytes};

    print STDERR "N=$count: filling node1\n";
    my $fill_deadline = time + 60 + $count / 250;
    my ($ids, $t, $failed, $why) = fill($c, 'node1', $count, "$tmp/ids-$count", $fill_deadline);
    $r{made} = @$ids;
    $r{fill_failed} = $failed;
    $r{fill_why} = $why;
    $r{fill_rate} = $t > 0 ? @$ids / $t : 0;
    my $want = (status($c, 'node1')->{SessionsActive} // scalar @$ids);
    $r{held1} = $want;

    # member 2 holds all of them: how long after the fill
    my $t1 = time;
    my $held = 0;
    while (time - $t1 < 60 + $count / 500) {
        $held = status($c, 'node2')->{SessionsActive} // 0;
        last if $held >= $want;
        sleep 0.1;
    }
    $r{held2} = $held;
    $r{repl_s} = $want && $held >= $want ? time - $t1 : undef;
    $r{all2_s} = defined $r{repl_s} ? $t + $r{repl_s} : undef;

    # the store's memory, after the fill (before the load adds sessions)
    for my $n (qw(node1 node2)) {
        my $p = status($c, $n);
        $r{"$n.$_"} = $p->{$_} for qw(SessionsStoreBytes SessionsBudgetUsed SessionsBytesInUse);
        $r{"$n.pss"} = pss_of($c, $n);
    }

    my $port = $c->member('node1')->{http_port};
    open my $idf, '>', "$tmp/cookies-$count" or die;
    print {$idf} "$_\n" for @$ids;
    close $idf;
    print STDERR "N=$count: wrk, existing sessions\n";
    $r{a} = @$ids ? wrk($port, $lua_existing, "$tmp/cookies-$count") : { errors => 0 };
    print STDERR "N=$count: wrk, new sessions\n";
    $r{b} = wrk($port, $lua_new);
    $r{after} = status($c, 'node1')->{SessionsActive};
    my $log = $c->error_log('node1') // '';
    $r{crash} = $log =~ /exit signal|Segmentation|AH00052/ ? 1 : 0;
    $c->teardown;
    $r{load_after} = loadavg();
    return \%r;
}

# STORE_ROUNDS rounds over the N given, in alternating order (forward,
# backward, ...); the table shows medians per N
my $load_start = loadavg();
my %res;
for my $round (1 .. $rounds) {
    for my $count ($round % 2 ? @counts : reverse @counts) {
        print STDERR "round $round: " if $rounds > 1;
        push @{ $res{$count} }, measure($count);
    }
}
my $load_end = loadavg();
my %seen_n;
my @rows = map { $res{$_} } grep { !$seen_n{$_}++ } @counts;

# ---- the table ----
my $MB = 1048576;
my @cols = (
    [ 'N', '%9s', sub { $_[0]{n} } ],
    [ 'fill/s', '%8.0f', sub { $_[0]{fill_rate} } ],
    [ 'repl s', '%7.2f', sub { $_[0]{repl_s} } ],
    [ 'n2 all s', '%8.2f', sub { $_[0]{all2_s} } ],
    [ 'upd r/s', '%8.0f', sub { $_[0]{a}{rps} } ],
    [ 'upd p99', '%8.2f', sub { $_[0]{a}{p99} } ],
    [ 'new r/s', '%8.0f', sub { $_[0]{b}{rps} } ],
    [ 'new p99', '%8.2f', sub { $_[0]{b}{p99} } ],
    [ 'store1', '%8.1f', sub { _mb($_[0]{'node1.SessionsStoreBytes'}) } ],
    [ 'store2', '%8.1f', sub { _mb($_[0]{'node2.SessionsStoreBytes'}) } ],
    [ 'budg1', '%8.1f', sub { _mb($_[0]{'node1.SessionsBudgetUsed'}) } ],
    [ 'budg2', '%8.1f', sub { _mb($_[0]{'node2.SessionsBudgetUsed'}) } ],
    [ 'inuse1', '%8.1f', sub { _mb($_[0]{'node1.SessionsBytesInUse'}) } ],
    [ 'inuse2', '%8.1f', sub { _mb($_[0]{'node2.SessionsBytesInUse'}) } ],
    [ 'pss1', '%7.1f', sub { _mb($_[0]{'node1.pss'}) } ],
    [ 'pss2', '%7.1f', sub { _mb($_[0]{'node2.pss'}) } ],
    [ 'B/sess1', '%8.0f', sub { defined $_[0]{'node1.SessionsStoreBytes'} && $_[0]{held1}
                                   ? $_[0]{'node1.SessionsStoreBytes'} / $_[0]{held1} : undef } ],
    [ 'load', '%11s', sub { load1($_[0]{load_before}) . '>' . load1($_[0]{load_after}) } ],
);
sub _mb { defined $_[0] && $_[0] =~ /^\d/ ? $_[0] / $MB : undef }
sub med { my @v = sort { $a <=> $b } grep { defined } @_; @v ? $v[int(@v / 2)] : undef }
# a column's figure for one N: the median over its rounds (the load: before
# the first round, after the last)
sub figure {
    my ($col, $list) = @_;
    return load1($list->[0]{load_before}) . '>' . load1($list->[-1]{load_after})
        if $col->[0] eq 'load';
    return $list->[0]{n} if $col->[0] eq 'N';
    return med(map { $col->[2]->($_) } @$list);
}
sub cell {
    my ($fmt, $v) = @_;
    (my $w = $fmt) =~ s/^%(\d+).*/$1/;
    return defined $v ? sprintf($fmt, $v) : sprintf("%${w}s", '-');
}
print "\n";
print join(' ', map { my ($w) = $_->[1] =~ /^%(\d+)/; sprintf("%${w}s", $_->[0]) } @cols), "\n";
for my $list (@rows) {
    print join(' ', map { cell($_->[1], figure($_, $list)) } @cols), "\n";
}
if (@rows >= 2) {
    my ($lo, $hi) = ($rows[0], $rows[-1]);
    my @cells;
    for my $col (@cols) {
        my ($w) = $col->[1] =~ /^%(\d+)/;
        if ($col->[0] eq 'N') { push @cells, sprintf("%${w}s", 'ratio'); next }
        if ($col->[0] eq 'load') { push @cells, sprintf("%${w}s", ''); next }
        my ($a, $b) = (figure($col, $lo), figure($col, $hi));
        # (a time under 10 ms is no base for a ratio)
        push @cells, defined $a && defined $b && $a > ($col->[0] =~ / s$/ ? 0.01 : 0)
            ? sprintf("%${w}s", sprintf('%.2f', $b / $a)) : sprintf("%${w}s", '-');
    }
    print join(' ', @cells), "\n";
    print "(ratio: the row of N=$hi->[0]{n} over the row of N=$lo->[0]{n})\n";
}
print "\n";
for my $list (@rows) {
    my $i = 0;
    for my $r (@$list) {
        $i++;
        my @n;
        push @n, "made $r->{made} of $r->{n} sessions" . ($r->{fill_failed} ? ", $r->{fill_failed} "
                 . "failed fill request(s): " . join(' | ', @{ $r->{fill_why} }[0 .. ($#{ $r->{fill_why} } < 2 ? $#{ $r->{fill_why} } : 2)]) : '');
        push @n, "node1 held $r->{held1}, node2 $r->{held2}" . (defined $r->{repl_s} || !$r->{held1} ? '' : ' (not all: timed out)');
        push @n, sprintf('req/s upd %.0f new %.0f', $r->{a}{rps} // 0, $r->{b}{rps} // 0) if @$list > 1;
        push @n, "non-2xx: upd $r->{a}{errors}, new $r->{b}{errors}";
        push @n, "socket errors: upd $r->{a}{sockerr}" if $r->{a}{sockerr};
        push @n, "socket errors: new $r->{b}{sockerr}" if $r->{b}{sockerr};
        push @n, "sessions on node1 after the load: " . ($r->{after} // '?');
        push @n, "budget " . ($r->{budget} // '?') . " bytes";
        push @n, "CRASH in node1's error_log" if $r->{crash};
        print "N=$r->{n}" . (@$list > 1 ? " round $i" : '') . ': ', join('; ', @n), "\n";
    }
}
printf "\nloadavg at the start: %s; at the end: %s (%d cores)\n", $load_start, $load_end,
    scalar(grep { /^processor\s*:/ } do { open my $f, '<', '/proc/cpuinfo'; <$f> });
printf "two members, no capacity setting (maxActiveSessions -1, maxStoreSize 0), "
     . "channelSendOptions 8; sessions of %d bytes (one attribute) made on node1 by %d "
     . "kept-alive clients; repl s: from the end of the fill until node2 held them all (n2 all s: from the start of the fill); "
     . "store/budg/inuse: SessionsStoreBytes (resident), SessionsBudgetUsed, "
     . "SessionsBytesInUse in MB on node1/node2 after the fill; pss: the member's "
     . "processes' PSS in MB; B/sess1: store bytes per session on node1; wrk -t%d -c%d "
     . "for %d s on node1: upd = GET /app?auto on an existing session picked at random "
     . "(read + counter update), new = GET /app?auto without a cookie (a new session "
     . "each); p99 in ms; load: 1-minute load before > after; %d round(s), medians\n",
     $size, $clients, $threads, $conns, $secs, $rounds;
