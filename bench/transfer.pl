#!/usr/bin/env perl
# State transfer: how long a joining member takes to receive N sessions of
# about 1 KB from a ready member (the member's own LastTransferMs, from asking
# to the last block), for each N given.
#
#   perl bench/transfer.pl [N ...]        (default: 10000 100000)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use SC::Cluster;
use Time::HiRes qw(time sleep);
use POSIX ();

$SIG{PIPE} = 'IGNORE';
my @counts = @ARGV ? @ARGV : (10000, 100000);
my $demo = $ENV{SC_DEMO_SO} || "$FindBin::Bin/../demo/.libs/mod_session_cluster_demo.so";
-x '/usr/bin/wrk' or die "wrk is missing: apt-get install wrk\n";

# CPU seconds (user + system) so far of a member's processes, or of its
# engine alone (engine => 1: the pid its start line names)
sub cpu_s {
    my ($c, $n, %o) = @_;
    my $t = 0;
    my @pids = $c->pids($n);
    if ($o{engine}) {
        my @e = $c->error_log($n) =~ /SC1236: cluster engine started \(pid (\d+)\)/g;
        @pids = @e ? ($e[-1]) : ();
    }
    for my $pid (@pids) {
        # main => 1: its main thread alone (not a thread it started, nor one
        # that ended)
        open my $st, '<', $o{main} ? "/proc/$pid/task/$pid/stat" : "/proc/$pid/stat" or next;
        my $l = <$st>;
        $l =~ s/^.*\)\s+//;
        my @f = split ' ', $l;
        $t += $f[11] + $f[12];            # utime, stime (fields 14, 15)
    }
    return $t / POSIX::sysconf(POSIX::_SC_CLK_TCK());
}

sub page_value {
    my ($c, $n, $key) = @_;
    my (undef, undef, $b) = $c->get($n, '/cluster-manager?auto');
    return $b =~ /^\Q$key\E: (\S+)$/m ? $1 : undef;
}

my @rows;
for my $count (@counts) {
    my $cap = $count + 1000;
    # room for them all: the default budget (a quarter of the memory, at most
    # 1 GiB) holds about 690,000 of these; 2 KB a session is more than they
    # take.  No probation: each of these sessions sees a single request, and
    # would expire 60 s after it (probationInactiveInterval) while a large N
    # is still being made
    my $budget = $cap * 2048;
    my $c = SC::Cluster->new(
        members => 2, loglevel => 'warn',
        cluster => sub {
            my $x = SC::Cluster::static_block($_[0], $_[1], channelSendOptions => 8);
            $x =~ s{(<Cluster[^>]*>\n)}{$1  <Manager className="org.apache.catalina.ha.session.DeltaManager" maxActiveSessions="$cap" maxStoreSize="$budget" maxSessionSize="2048" probationInactiveInterval="0" stateTransferTimeout="120"/>\n};
            return $x;
        },
        extra_conf => "LoadModule session_cluster_demo_module $demo\nThreadsPerChild 25\n"
                      . "MaxRequestWorkers 100\nServerLimit 4\n<Location /app>\nSession On\n"
                      . "SessionCluster On\nSetHandler session-cluster-demo\n</Location>\n");
    $c->start('node1');
    $c->wait_for(sub { (page_value($c, 'node1', 'EngineState') // '') eq 'ready' }, timeout => 10);
    # N new sessions of about 1 KB: every request without a cookie makes one
    my $port = $c->member('node1')->{http_port};
    my $v = 'x' x 1000;
    my $lua = "/tmp/sc-transfer-$$.lua";
    open my $fh, '>', $lua or die;
    print $fh "request = function() return wrk.format('GET', '/app?set=data&value=$v') end\n";
    close $fh;
    my $t0 = time;
    while ((page_value($c, 'node1', 'SessionsActive') // 0) < $count
           && time - $t0 < 120 + $count / 5000) {
        my $left = $count - (page_value($c, 'node1', 'SessionsActive') // 0);
        my $secs = int($left / 8000) + 1;
        `wrk -t2 -c16 -d${secs}s -s $lua http://127.0.0.1:$port/ 2>&1`;
    }
    unlink $lua;
    my $have = page_value($c, 'node1', 'SessionsActive');
    my ($cpu1, $eng1) = (cpu_s($c, 'node1'), cpu_s($c, 'node1', engine => 1));
    $c->start('node2');
    # TRANSFER_PERF=FILE: perf record -g of the joining engine while it
    # receives the largest N (FILE gets the N appended)
    my $perf;
    if ($ENV{TRANSFER_PERF} && $count == (sort { $b <=> $a } @counts)[0]) {
        my ($epid2) = $c->error_log('node2') =~ /.*SC1236: cluster engine started \(pid (\d+)\)/s;
        if ($epid2) {
            $perf = fork;
            if (defined $perf && !$perf) {
                exec 'perf', 'record', '-q', '-g', '-p', $epid2, '-o', "$ENV{TRANSFER_PERF}.$count";
                exit 127;
            }
        }
    }
    # (every 0.25 s: each look at the page walks the store's slots, in a child
    # that competes with the two engines for this machine's CPUs)
    # and the most anonymous memory (RssAnon: heap and buffers, not the
    # store) seen of member 1's engine while it sends
    my ($epid1) = $c->error_log('node1') =~ /.*SC1236: cluster engine started \(pid (\d+)\)/s;
    my $anon1 = 0;
    $c->wait_for(sub {
        if ($epid1 && open my $st, '<', "/proc/$epid1/status") {
            while (<$st>) { $anon1 = $1 if /^RssAnon:\s+(\d+)/ && $1 > $anon1 }
        }
        return (page_value($c, 'node2', 'EngineState') // '') eq 'ready';
    }, timeout => 130, interval => 0.25);
    if ($perf) { kill 'INT', $perf; waitpid $perf, 0 }
    my @cpu = (cpu_s($c, 'node1') - $cpu1, cpu_s($c, 'node2'),
               cpu_s($c, 'node1', engine => 1) - $eng1, cpu_s($c, 'node2', engine => 1),
               cpu_s($c, 'node2', engine => 1, main => 1));
    my $ms = page_value($c, 'node2', 'LastTransferMs');
    my $got = page_value($c, 'node2', 'LastTransferSessions');
    my $payload = page_value($c, 'node2', 'SessionsBytesInUse') // 0;
    my ($rss, $pss) = (0, 0);
    for my $pid ($c->pids('node2')) {
        if (open my $st, '<', "/proc/$pid/status") {
            while (<$st>) { $rss += $1 if /^VmRSS:\s+(\d+)/ }
        }
        if (open my $sr, '<', "/proc/$pid/smaps_rollup") {
            while (<$sr>) { $pss += $1 if /^Pss:\s+(\d+)/ }
        }
    }
    my $load = do { open my $la, '<', '/proc/loadavg'; my $l = <$la>; (split ' ', $l)[0] };
    push @rows, [ $have, $got, $ms, map({ $_ * 1000 } @cpu), $anon1 / 1024, $rss / 1024, $pss / 1024, $payload / 1048576,
                  $payload ? $pss * 1024 / $payload : 0, $load ];
    $c->stop_all;
}
printf "%-9s %-9s %-9s %-7s %-7s %-7s %-7s %-7s %-7s %-7s %-7s %-8s %-8s %s\n", 'member 1',
    'member 2', 'ms', 'CPU m1', 'CPU m2', 'eng m1', 'eng m2', 'main m2', 'anon m1', 'RSS MB',
    'PSS MB', 'payload', 'PSS/pay', 'load';
printf "%-9s %-9s %-9s %-7.0f %-7.0f %-7.0f %-7.0f %-7.0f %-7.0f %-7.0f %-7.0f %-8.0f %-8.2f %s\n",
    @$_ for @rows;
print "\nsessions of about 1 KB (one 1000-byte attribute); sendAllSessionsSize 1000 (Tomcat's "
    . "default); ms: the joining member's own measure, from asking for the state to the last block; "
    . "member 1: sessions it held, member 2: sessions it received; CPU m1, m2: ms of user + "
    . "system time of each member's processes (all of them: parent, children, engine) from "
    . "member 2's start until it was ready (a figure the machine's other load changes less "
    . "than the time), eng m1, m2: of its engine alone; main m2: of member 2's engine's "
    . "main thread (the one that stores the sessions; eng m2 less main m2 is the thread "
    . "that readies the store's pages); anon m1: the most anonymous memory "
    . "(RssAnon, MB: heap and buffers, not the store) of member 1's engine seen while it "
    . "sent (every 0.25 s); member 2's memory after the "
    . "transfer (MB of 2^20 bytes), summed over its processes: RSS counts the store's shared "
    . "pages once per process that touched them, PSS shares them out; payload: its "
    . "SessionsBytesInUse (MB); PSS/pay: PSS over payload; load: the 1-minute load average when "
    . "it was ready\n";
