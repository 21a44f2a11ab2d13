#!/usr/bin/env perl
# Two (or more) builds of the module side by side (issue 22): the same short
# runs against each .so in turn, round after round in alternating order, on
# a two-member cluster (t/lib/SC/Cluster.pm, static membership, the demo
# page), with compare.pl's client (bench/compare/sessions.lua: 16
# connections, one session each plus one per wrk thread).  For each run:
# req/s, p99, and the CPU time both members' processes (parents, children,
# engines) used per request (perf stat -e task-clock over the run), which a
# busy machine disturbs far less than req/s, and the part of it in user
# space (the processes' user and system ticks, /proc/PID/stat).
#
#   perl bench/ab_so.pl ROUNDS SECONDS A.so B.so ...
#   AB_SCEN="plain async sync async32"   plain: /plain (Session Off) on the same
#       httpd; async/sync: channelSendOptions 8/6; a number after it: one more
#       attribute of that many KB in every session; cookie: /cookie on the
#       same httpd, the same page with mod_session_cookie's session (the
#       session in the cookie, no store, nothing replicated)
#     front scenarios (through a third httpd, a front balancer as compare.pl's
#       setup_ours builds it: mod_proxy_balancer + SessionClusterBalancer, the
#       sessions made directly on each member in turn so half live on each):
#       frontasync, frontsync (/app), frontplain (/plain with the same cookies:
#       the same sticky routing, compare.pl's "no session, our front"),
#       frontbare (/plain without cookies: the balancer's own pick),
#       frontcookie (/cookie, mod_session_cookie's session: no cookie the
#       balancer is sticky to, so its own pick as frontbare's).  Their
#       lines give the CPU a request of the front's processes and of the
#       members' apart (switches and syscalls too), the members' shares
#       of the requests (balancer-manager's Elected counts), and for each
#       member the share of its changes whose hand-off woke its engine (the
#       status page's HandoffsRingWakes of HandoffsRing: low when it gathers)
#   AB_PROF=DIR   perf record -e task-clock -g of each member's processes
#       during the first round of the first .so: DIR/SCEN-nodeN.data (and
#       .pids), DIR/SCEN.rps; front scenarios: DIR/SCEN-front.data too
#   AB_SYSREC=DIR   perf record -e raw_syscalls:sys_enter of each member's
#       processes during the first round of the first .so: DIR/SCEN-nodeN.sys
#       (and .pids), DIR/SCEN.rps; bench/syscalls.pl DIR SECONDS counts them
#       per request, by process role and system call
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
for (@scen) {
    die "ab_so.pl: unknown scenario '$_' (plain, cookie, async[KB], sync[KB]; front: frontplain, "
        . "frontbare, frontcookie, frontasync[KB], frontsync[KB])\n"
        unless /^(?:plain|cookie|async\d*|sync\d*|front(?:plain|bare|cookie|async\d*|sync\d*))$/;
}
my $repo = SC::Cluster::repo_dir();
my $demo = $ENV{SC_DEMO_SO} || "$repo/demo/.libs/mod_session_cluster_demo.so";
my $prof = $ENV{AB_PROF};
my $sysrec = $ENV{AB_SYSREC};
my $tmp = tempdir('sc-ab-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $LUA = do { local $/; open my $f, '<', "$repo/bench/compare/sessions.lua" or die "$!\n"; <$f> };
my $mpm = "ServerLimit 2\nThreadLimit 64\nThreadsPerChild 64\nMaxRequestWorkers 128\n"
  . "StartServers 2\nMinSpareThreads 64\nMaxSpareThreads 192\n";
my $conf = "LoadModule session_cluster_demo_module $demo\n"
  . $mpm
  . "LimitRequestLine 70000\nHeader echo ^X-Bench\$\n"
  . "<Location /app>\n    Session On\n    SessionCluster On\n    SetHandler session-cluster-demo\n</Location>\n"
  . "<Location /plain>\n    Session Off\n    SetHandler session-cluster-demo\n</Location>\n"
  . "<Location /cookie>\n    Session On\n    SessionCookieName session path=/\n"
  . "    SetHandler session-cluster-demo\n</Location>\n";

# the front's (compare.pl's setup_ours): /app and /plain through one balancer
my $front_conf = sub {
    SC::Cluster::front_conf($_[0], $_[1]) . "ProxyPass /plain balancer://members/plain\n"
        . "ProxyPass /cookie balancer://members/cookie\n$mpm"
        . "LimitRequestLine 70000\nHeader always echo ^X-Bench\$\n";
};

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
# user and system clock ticks of processes, all their threads (/proc/PID/stat)
sub ticks {
    my ($u, $k) = (0, 0);
    for my $p (@_) {
        my $t = slurp("/proc/$p/stat");
        $t =~ s/^.*\) //s or next;
        my @f = split ' ', $t;
        $u += $f[11];
        $k += $f[12];
    }
    return ($u, $k);
}

# The CPU time (ns, from the scheduler's own account) of the engines among
# these processes: a process other than httpd's parent (the first of each
# member's) with one thread
sub engine_ns {
    my ($ns, %parent) = (0, map { $_ => 1 } @{ shift() });
    for my $p (grep { !$parent{$_} } @_) {
        my @t = glob("/proc/$p/task/*");
        next unless @t == 1;
        my ($n) = slurp("/proc/$p/schedstat") =~ /^(\d+)/;
        $ns += $n // 0;
    }
    return $ns;
}

# perf stat's figures a request over a run: (CPU us, switches, syscalls)
sub stat_per {
    my ($file, $r) = @_;
    my $t = slurp($file);
    my ($tc) = $t =~ /^([\d.]+),msec,task-clock/m;
    my ($cs) = $t =~ /^(\d+),,context-switches/m;
    my ($sysc) = $t =~ /^(\d+),,raw_syscalls:sys_enter/m;
    my $n = $r ? $r * ($secs - 1) : 0;
    return ($tc && $n ? $tc * 1000 / $n : 0, $cs && $n ? $cs / $n : 0, $sysc && $n ? $sysc / $n : 0);
}
# The requests each BalancerMember was elected for, and its status, by route
# (balancer-manager's table)
sub elected {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
                                  Timeout => 5) or return ({}, {});
    print $s "GET /balancer-manager HTTP/1.0\r\nHost: x\r\n\r\n";
    local $/;
    my $b = <$s> // '';
    my (%e, %st);
    while ($b =~ m{<td>([^<]+)</td><td>[^<]*</td><td>[\d.]+</td><td>\d+</td><td>([^<]*)</td><td>(\d+)</td>}g) {
        ($st{$1}, $e{$1}) = ($2, $3);
    }
    return (\%e, \%st);
}

# A member's hand-off counters (status page): (changes put in the ring, of
# them those that woke its engine)
sub ring_counts {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
                                  Timeout => 5) or return (0, 0);
    print $s "GET /cluster-manager?auto HTTP/1.0\r\nHost: x\r\n\r\n";
    local $/;
    my $b = <$s> // '';
    my ($n) = $b =~ /^HandoffsRing: (\d+)/m;
    my ($w) = $b =~ /^HandoffsRingWakes: (\d+)/m;
    return ($n // 0, $w // 0);
}

my (%rps, %cpu, %ucpu, %ecpu, %csw, %sys, %fcpu, %fcsw, %fsys, %share, %wake1, %wake2);
for my $round (1 .. $rounds) {
    for my $i ($round % 2 ? (0 .. $#sos) : reverse(0 .. $#sos)) {
        for my $sc (@scen) {
            my ($front, $kind) = $sc =~ /^(front)?(.*)$/;
            my $send = $kind =~ /^sync/ ? 6 : 8;
            my ($kb) = $kind =~ /(\d+)$/;
            my $plain = $kind eq 'plain' || $kind eq 'bare';
            my $made = $kind eq 'cookie' ? '/cookie' : '/app';      # where its sessions are made
            my $path = $plain ? '/plain' : $made;
            my $c = SC::Cluster->new(members => 2, loglevel => 'error', mpm => 'event',
                module_so => $sos[$i], modules => ['headers', 'session_cookie'], extra_conf => $conf,
                $front ? (front => { name => 'front' },
                          member_opts => { front => { extra_conf => $front_conf } }) : (),
                cluster => sub { SC::Cluster::static_block($_[0], $_[1], channelSendOptions => $send,
                    manager => { maxSessionSize => 65536, maxActiveSessions => 1000 }) });
            $c->start_all(timeout => 30);
            $c->wait_for(sub { my (undef, undef, $b) = $c->get('node1', '/cluster-manager?auto');
                               $b =~ /^EngineState: ready$/m && $b =~ /^MembersAlive: (\d+)$/m
                               && $1 >= ($front ? 2 : 1) },
                         timeout => 15) or die "node1 does not see node2" . ($front ? ' and the front' : '') . "\n";
            my @mport = map { $c->member($_)->{http_port} } 'node1', 'node2';
            my $port = $front ? $c->member('front')->{http_port} : $mport[0];
            if ($front) {
                # both members in rotation on the front (its engine heard them ready)
                $c->wait_for(sub { my (undef, $st) = elected($port);
                                   2 == grep { ($st->{$_} // '') =~ /\bOk\b/ && $st->{$_} !~ /Err/ }
                                       'node1', 'node2' },
                             timeout => 15) or die "the front does not route to both members\n";
            }
            my @ck;
            for my $k (1 .. 18) {
                if ($kind eq 'plain' && !$front || $kind eq 'bare') { push @ck, ''; next }
                # through a front: made on each member in turn (half live on each)
                my $on = $front ? $mport[$k % 2] : $port;
                my ($st, $ck) = get($on, "$made?set=bench&value=$k");
                die "session setup: status $st\n" unless $st == 200;
                ($st) = get($on, "/app?set=data&value=" . ('x' x ($kb * 1024)), $ck) if $kb;
                die "session setup: status $st\n" unless $st == 200;
                push @ck, $ck;
            }
            my $lua = "$tmp/ab.lua";
            open my $lf, '>', $lua or die "$lua: $!\n";
            print $lf "nthreads = 2\npath = \"$path\"\nall = {"
                . join(',', map { "\"$_\"" } @ck) . "}\n$LUA";
            close $lf;
            my $url = "http://127.0.0.1:$port/";
            system("wrk -t2 -c16 -d1s -s $lua $url >/dev/null 2>&1");     # warm-up
            my @pids = ($c->pids('node1'), $c->pids('node2'));
            my @fpids = $front ? $c->pids('front') : ();
            my @rec;
            if ($prof && $i == 0 && $round == 1) {
                for my $n ('node1', 'node2', $front ? 'front' : ()) {
                    my @p = $c->pids($n);
                    my $tag = $n eq 'front' ? "$sc-front" : "$sc-$n";
                    open my $pf, '>', "$prof/$tag.pids" or die "$prof: $!\n";
                    print $pf "@p\n";
                    push @rec, spawn('perf', 'record', '-q', '-e', 'task-clock', '-g', '-o',
                                     "$prof/$tag.data", '-p', join(',', @p), '--', 'sleep', $secs - 1);
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
            my $events = '-e task-clock,context-switches,raw_syscalls:sys_enter';
            my @t0 = ticks(@pids);
            my $parents = [ ($c->pids('node1'))[0], ($c->pids('node2'))[0] ];
            my $en0 = engine_ns($parents, @pids);
            my $stat = spawn('sh', '-c', "exec perf stat -x, $events -p " . join(',', @pids)
                             . " -- sleep " . ($secs - 1) . " 2>$tmp/stat.txt");
            my $fstat = $front ? spawn('sh', '-c', "exec perf stat -x, $events -p " . join(',', @fpids)
                                       . " -- sleep " . ($secs - 1) . " 2>$tmp/fstat.txt") : undef;
            my ($e0) = $front ? elected($port) : ({});
            my @r0 = $front ? map { [ ring_counts($_) ] } @mport : ();
            my $out = `wrk -t2 -c16 -d${secs}s --latency -s $lua $url 2>&1`;
            waitpid($_, 0) for $stat, @rec, $fstat // ();
            my @t1 = ticks(@pids);
            my $en1 = engine_ns($parents, @pids);
            my ($du, $dk) = ($t1[0] - $t0[0], $t1[1] - $t0[1]);
            my $upct = $du + $dk ? 100 * $du / ($du + $dk) : 0;
            my ($e1) = $front ? elected($port) : ({});
            my @r1 = $front ? map { [ ring_counts($_) ] } @mport : ();
            my ($r) = $out =~ /Requests\/sec:\s+([\d.]+)/;
            my ($p99, $u) = $out =~ /^\s+99%\s+([\d.]+)(us|ms|s)/m;
            $p99 *= $u eq 'us' ? 0.001 : $u eq 's' ? 1000 : 1 if defined $p99;
            my ($failed) = $out =~ /^BENCH_FAILED ([\d.]+)$/m;
            my ($us, $csr, $scr) = stat_per("$tmp/stat.txt", $r);
            # both engines' CPU us a request (over wrk's whole run)
            my $eus = $r ? ($en1 - $en0) / 1000 / ($r * $secs) : 0;
            for my $d (grep { $_ && $i == 0 && $round == 1 } $prof, $sysrec) {
                open my $rf, '>', "$d/$sc.rps"; print $rf ($r // 0), "\n";
            }
            if ($front) {
                my ($fus, $fcs, $fsc) = stat_per("$tmp/fstat.txt", $r);
                my @d = map { ($e1->{$_} // 0) - ($e0->{$_} // 0) } 'node1', 'node2';
                my $sh = $d[0] + $d[1] ? $d[0] / ($d[0] + $d[1]) : 0;
                # the changes whose hand-off woke the member's engine
                my @wk = map { my $n = $r1[$_][0] - $r0[$_][0];
                               $n > 0 ? 100 * ($r1[$_][1] - $r0[$_][1]) / $n : 0 } 0, 1;
                printf "round %d %-10s so%d %8.0f req/s  p99 %7.2f ms  front: CPU %6.1f us  %5.2f switches %5.2f syscalls"
                    . "  members: CPU %6.1f us (engines %4.1f)  %5.2f switches %5.2f syscalls a request  node1 %3.0f%%"
                    . "  engine woken node1 %3.0f%% node2 %3.0f%%  failed %s  load %s\n",
                    $round, $sc, $i, $r // 0, $p99 // -1, $fus, $fcs, $fsc, $us, $eus, $csr, $scr, 100 * $sh,
                    @wk, $failed // '?', (split ' ', slurp('/proc/loadavg'))[0];
                push @{ $wake1{$sc}[$i] }, $wk[0];
                push @{ $wake2{$sc}[$i] }, $wk[1];
                push @{ $fcpu{$sc}[$i] }, $fus;
                push @{ $fcsw{$sc}[$i] }, $fcs;
                push @{ $fsys{$sc}[$i] }, $fsc;
                push @{ $share{$sc}[$i] }, 100 * $sh;
            }
            else {
                printf "round %d %-8s so%d %8.0f req/s  p99 %7.2f ms  CPU %6.1f us a request (user %4.1f, engines %4.1f)  %5.2f switches %5.2f syscalls a request  failed %s  load %s\n",
                    $round, $sc, $i, $r // 0, $p99 // -1, $us, $us * $upct / 100, $eus, $csr, $scr, $failed // '?', (split ' ', slurp('/proc/loadavg'))[0];
            }
            push @{ $rps{$sc}[$i] }, $r // 0;
            push @{ $cpu{$sc}[$i] }, $us;
            push @{ $ucpu{$sc}[$i] }, $us * $upct / 100;
            push @{ $ecpu{$sc}[$i] }, $eus;
            push @{ $csw{$sc}[$i] }, $csr;
            push @{ $sys{$sc}[$i] }, $scr;
            $c->teardown;
        }
    }
}
sub line {
    my ($sc, $what, $fmt, $h) = @_;
    return unless $h->{$sc};
    printf "%-8s %-12s %s\n", $sc, $what, join('  ', map { sprintf "so%d $fmt [%s]", $_, med(@{ $h->{$sc}[$_] }),
        join(' ', map { sprintf $fmt =~ /2f/ ? '%.2f' : $fmt =~ /1f/ ? '%.1f' : '%.0f', $_ } @{ $h->{$sc}[$_] }) } 0 .. $#sos);
}
print "\nmedians [rounds]; so0 = $sos[0]", (map { ", so$_ = $sos[$_]" } 1 .. $#sos), "\n";
for my $sc (@scen) {
    if ($sc =~ /^front/) {
        line($sc, 'req/s', '%6.0f', \%rps);
        line($sc, 'front us/req', '%6.1f', \%fcpu);
        line($sc, 'front sw/req', '%5.2f', \%fcsw);
        line($sc, 'front sc/req', '%5.2f', \%fsys);
        line($sc, 'membs us/req', '%6.1f', \%cpu);
        line($sc, 'engines us/req', '%6.1f', \%ecpu);
        line($sc, 'membs sw/req', '%5.2f', \%csw);
        line($sc, 'membs sc/req', '%5.2f', \%sys);
        line($sc, 'node1 %', '%3.0f', \%share);
        if (grep { $_ } map { @$_ } @{ $wake1{$sc} }) {
            line($sc, 'woken1 %', '%3.0f', \%wake1);
            line($sc, 'woken2 %', '%3.0f', \%wake2);
        }
        next;
    }
    printf "%-8s req/s       %s\n", $sc, join('  ', map { sprintf 'so%d %6.0f [%s]', $_, med(@{ $rps{$sc}[$_] }),
        join(' ', map { sprintf '%.0f', $_ } @{ $rps{$sc}[$_] }) } 0 .. $#sos);
    printf "%-8s CPU us/req  %s\n", $sc, join('  ', map { sprintf 'so%d %6.1f [%s]', $_, med(@{ $cpu{$sc}[$_] }),
        join(' ', map { sprintf '%.1f', $_ } @{ $cpu{$sc}[$_] }) } 0 .. $#sos);
    line($sc, 'user us/req', '%6.1f', \%ucpu);
    line($sc, 'engines us/req', '%6.1f', \%ecpu);
    printf "%-8s switches/req %s\n", $sc, join('  ', map { sprintf 'so%d %5.2f [%s]', $_, med(@{ $csw{$sc}[$_] }),
        join(' ', map { sprintf '%.2f', $_ } @{ $csw{$sc}[$_] }) } 0 .. $#sos);
    printf "%-8s syscalls/req %s\n", $sc, join('  ', map { sprintf 'so%d %5.2f [%s]', $_, med(@{ $sys{$sc}[$_] }),
        join(' ', map { sprintf '%.2f', $_ } @{ $sys{$sc}[$_] }) } 0 .. $#sos);
}
