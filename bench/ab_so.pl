#!/usr/bin/env perl
# Two (or more) builds of the module side by side (issue 22): the same short
# runs against each .so in turn, round after round in alternating order, on
# a two-member cluster (t/lib/SC/Cluster.pm, static membership, the demo
# page), with compare.pl's client (bench/compare/sessions.lua: 16
# connections, one session each plus one per wrk thread).  For each run:
# req/s, p99, and the CPU time both members' processes (parents, children,
# engines) used per request (perf stat -e task-clock over the run), which a
# busy machine disturbs far less than req/s.
#
#   perl bench/ab_so.pl ROUNDS SECONDS A.so B.so ...
#   AB_SCEN="plain async sync async32"   plain: /plain (Session Off) on the same
#       httpd; async/sync: channelSendOptions 8/6; a number after it: one more
#       attribute of that many KB in every session
#   AB_PROF=DIR   perf record -e task-clock -g of each member's processes
#       during the first round of the first .so: DIR/SCEN-nodeN.data (and
#       .pids), DIR/SCEN.rps
#   AB_SYSREC=DIR   perf record -e raw_syscalls:sys_enter of each member's
#       processes during the first round of the first .so: DIR/SCEN-nodeN.sys
#       (and .pids); bench/syscalls.pl DIR/SCEN.rps ... counts them per request,
#       by process role and system call
# Needs wrk and perf (linux-perf); root for perf on httpd's processes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
require SC::Cluster;

my ($rounds, $secs, @sos) = @ARGV;
die "usage: ab_so.pl ROUNDS SECONDS A.so B.so ...\n" unless $secs && $secs >= 2 && @sos;
my @scen = split ' ', ($ENV{AB_SCEN} || 'plain async sync async32');
my $repo = SC::Cluster::repo_dir();
my $demo = $ENV{SC_DEMO_SO} || "$repo/demo/.libs/mod_session_cluster_demo.so";
my $prof = $ENV{AB_PROF};
my $sysrec = $ENV{AB_SYSREC};
my $tmp = tempdir('sc-ab-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $LUA = do { local $/; open my $f, '<', "$repo/bench/compare/sessions.lua" or die "$!\n"; <$f> };
my $conf = "LoadModule session_cluster_demo_module $demo\n"
  . "ServerLimit 2\nThreadLimit 64\nThreadsPerChild 64\nMaxRequestWorkers 128\n"
  . "StartServers 2\nMinSpareThreads 64\nMaxSpareThreads 192\n"
  . "LimitRequestLine 70000\nHeader echo ^X-Bench\$\n"
  . "<Location /app>\n    Session On\n    SessionCluster On\n    SetHandler session-cluster-demo\n</Location>\n"
  . "<Location /plain>\n    Session Off\n    SetHandler session-cluster-demo\n</Location>\n";

sub get {
    my ($port, $path, $ck) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
                                  Timeout => 5) or die "connect $port: $!\n";
    print $s "GET $path HTTP/1.0\r\nHost: x\r\n" . ($ck ? "Cookie: $ck\r\n" : '') . "\r\n";
    local $/;
    my $r = <$s> // '';
    my ($st) = $r =~ /^HTTP\/\S+ (\d+)/;
    my ($c) = $r =~ /^Set-Cookie: ([^;\r\n]+)/mi;
    return ($st // 0, $c);
}
sub spawn { my @cmd = @_; my $pid = fork // die "fork: $!\n"; if (!$pid) { { exec @cmd } POSIX::_exit(127) } $pid }
sub slurp { my $f = shift; open my $fh, '<', $f or return ''; local $/; <$fh> }
sub med { my @v = sort { $a <=> $b } @_; $v[int(@v / 2)] }

my (%rps, %cpu, %csw, %sys);
for my $round (1 .. $rounds) {
    for my $i ($round % 2 ? (0 .. $#sos) : reverse(0 .. $#sos)) {
        for my $sc (@scen) {
            my $send = $sc =~ /^sync/ ? 6 : 8;
            my ($kb) = $sc =~ /(\d+)$/;
            my $c = SC::Cluster->new(members => 2, loglevel => 'error', mpm => 'event',
                module_so => $sos[$i], modules => ['headers'], extra_conf => $conf,
                cluster => sub { SC::Cluster::static_block($_[0], $_[1], channelSendOptions => $send,
                    manager => { maxSessionSize => 65536, maxActiveSessions => 1000 }) });
            $c->start_all(timeout => 30);
            $c->wait_for(sub { my (undef, undef, $b) = $c->get('node1', '/cluster-manager?auto');
                               $b =~ /^EngineState: ready$/m && $b =~ /^MembersAlive: (\d+)$/m && $1 >= 1 },
                         timeout => 15) or die "node1 does not see node2\n";
            my $port = $c->member('node1')->{http_port};
            my @ck;
            for my $k (1 .. 18) {
                if ($sc eq 'plain') { push @ck, ''; next }
                my ($st, $ck) = get($port, "/app?set=bench&value=$k");
                die "session setup: status $st\n" unless $st == 200;
                ($st) = get($port, "/app?set=data&value=" . ('x' x ($kb * 1024)), $ck) if $kb;
                die "session setup: status $st\n" unless $st == 200;
                push @ck, $ck;
            }
            my $lua = "$tmp/ab.lua";
            open my $lf, '>', $lua or die "$lua: $!\n";
            print $lf "nthreads = 2\npath = \"" . ($sc eq 'plain' ? '/plain' : '/app') . "\"\nall = {"
                . join(',', map { "\"$_\"" } @ck) . "}\n$LUA";
            close $lf;
            my $url = "http://127.0.0.1:$port/";
            system("wrk -t2 -c16 -d1s -s $lua $url >/dev/null 2>&1");     # warm-up
            my @pids = ($c->pids('node1'), $c->pids('node2'));
            my @rec;
            if ($prof && $i == 0 && $round == 1) {
                for my $n ('node1', 'node2') {
                    my @p = $c->pids($n);
                    open my $pf, '>', "$prof/$sc-$n.pids" or die "$prof: $!\n";
                    print $pf "@p\n";
                    push @rec, spawn('perf', 'record', '-q', '-e', 'task-clock', '-g', '-o',
                                     "$prof/$sc-$n.data", '-p', join(',', @p), '--', 'sleep', $secs - 1);
                }
            }
            if ($sysrec && $i == 0 && $round == 1) {
                for my $n ('node1', 'node2') {
                    my @p = $c->pids($n);
                    open my $pf, '>', "$sysrec/$sc-$n.pids" or die "$sysrec: $!\n";
                    print $pf "@p\n";
                    push @rec, spawn('perf', 'record', '-q', '-e', 'raw_syscalls:sys_enter', '-o',
                                     "$sysrec/$sc-$n.sys", '-p', join(',', @p), '--', 'sleep', $secs - 1);
                }
            }
            my $stat = spawn('sh', '-c', "exec perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter -p " . join(',', @pids)
                             . " -- sleep " . ($secs - 1) . " 2>$tmp/stat.txt");
            my $out = `wrk -t2 -c16 -d${secs}s --latency -s $lua $url 2>&1`;
            waitpid($_, 0) for $stat, @rec;
            my ($tc) = slurp("$tmp/stat.txt") =~ /^([\d.]+),msec,task-clock/m;
            my ($cs) = slurp("$tmp/stat.txt") =~ /^(\d+),,context-switches/m;
            my ($sysc) = slurp("$tmp/stat.txt") =~ /^(\d+),,raw_syscalls:sys_enter/m;
            my ($r) = $out =~ /Requests\/sec:\s+([\d.]+)/;
            my ($p99, $u) = $out =~ /^\s+99%\s+([\d.]+)(us|ms|s)/m;
            $p99 *= $u eq 'us' ? 0.001 : $u eq 's' ? 1000 : 1 if defined $p99;
            my ($failed) = $out =~ /^BENCH_FAILED ([\d.]+)$/m;
            my $us = $tc && $r ? $tc * 1000 / ($r * ($secs - 1)) : 0;
            my $csr = $cs && $r ? $cs / ($r * ($secs - 1)) : 0;
            my $scr = $sysc && $r ? $sysc / ($r * ($secs - 1)) : 0;
            for my $d (grep { $_ && $i == 0 && $round == 1 } $prof, $sysrec) {
                open my $rf, '>', "$d/$sc.rps"; print $rf ($r // 0), "\n";
            }
            printf "round %d %-8s so%d %8.0f req/s  p99 %7.2f ms  CPU %6.1f us a request  %5.2f switches %5.2f syscalls a request  failed %s  load %s\n",
                $round, $sc, $i, $r // 0, $p99 // -1, $us, $csr, $scr, $failed // '?', (split ' ', slurp('/proc/loadavg'))[0];
            push @{ $rps{$sc}[$i] }, $r // 0;
            push @{ $cpu{$sc}[$i] }, $us;
            push @{ $csw{$sc}[$i] }, $csr;
            push @{ $sys{$sc}[$i] }, $scr;
            $c->teardown;
        }
    }
}
print "\nmedians [rounds]; so0 = $sos[0]", (map { ", so$_ = $sos[$_]" } 1 .. $#sos), "\n";
for my $sc (@scen) {
    printf "%-8s req/s       %s\n", $sc, join('  ', map { sprintf 'so%d %6.0f [%s]', $_, med(@{ $rps{$sc}[$_] }),
        join(' ', map { sprintf '%.0f', $_ } @{ $rps{$sc}[$_] }) } 0 .. $#sos);
    printf "%-8s CPU us/req  %s\n", $sc, join('  ', map { sprintf 'so%d %6.1f [%s]', $_, med(@{ $cpu{$sc}[$_] }),
        join(' ', map { sprintf '%.1f', $_ } @{ $cpu{$sc}[$_] }) } 0 .. $#sos);
    printf "%-8s switches/req %s\n", $sc, join('  ', map { sprintf 'so%d %5.2f [%s]', $_, med(@{ $csw{$sc}[$_] }),
        join(' ', map { sprintf '%.2f', $_ } @{ $csw{$sc}[$_] }) } 0 .. $#sos);
    printf "%-8s syscalls/req %s\n", $sc, join('  ', map { sprintf 'so%d %5.2f [%s]', $_, med(@{ $sys{$sc}[$_] }),
        join(' ', map { sprintf '%.2f', $_ } @{ $sys{$sc}[$_] }) } 0 .. $#sos);
}
