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

$SIG{PIPE} = 'IGNORE';
my @counts = @ARGV ? @ARGV : (10000, 100000);
my $demo = $ENV{SC_DEMO_SO} || "$FindBin::Bin/../demo/.libs/mod_session_cluster_demo.so";
-x '/usr/bin/wrk' or die "wrk is missing: apt-get install wrk\n";

sub page_value {
    my ($c, $n, $key) = @_;
    my (undef, undef, $b) = $c->get($n, '/cluster-manager?auto');
    return $b =~ /^\Q$key\E: (\S+)$/m ? $1 : undef;
}

my @rows;
for my $count (@counts) {
    my $cap = $count + 1000;
    my $c = SC::Cluster->new(
        members => 2, loglevel => 'warn',
        cluster => sub {
            my $x = SC::Cluster::static_block($_[0], $_[1], channelSendOptions => 8);
            $x =~ s{(<Cluster[^>]*>\n)}{$1  <Manager className="org.apache.catalina.ha.session.DeltaManager" maxActiveSessions="$cap" maxSessionSize="2048" stateTransferTimeout="120"/>\n};
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
    while ((page_value($c, 'node1', 'SessionsActive') // 0) < $count && time - $t0 < 120) {
        my $left = $count - (page_value($c, 'node1', 'SessionsActive') // 0);
        my $secs = int($left / 8000) + 1;
        `wrk -t2 -c16 -d${secs}s -s $lua http://127.0.0.1:$port/ 2>&1`;
    }
    unlink $lua;
    my $have = page_value($c, 'node1', 'SessionsActive');
    $c->start('node2');
    $c->wait_for(sub { (page_value($c, 'node2', 'EngineState') // '') eq 'ready' }, timeout => 130);
    my $ms = page_value($c, 'node2', 'LastTransferMs');
    my $got = page_value($c, 'node2', 'LastTransferSessions');
    my $rss = 0;
    for my $pid ($c->pids('node2')) {
        open my $st, '<', "/proc/$pid/status" or next;
        while (<$st>) { $rss += $1 if /^VmRSS:\s+(\d+)/ }
    }
    push @rows, [ $have, $got, $ms, $rss / 1024 ];
    $c->stop_all;
}
printf "%-22s %-22s %-14s %s\n", 'sessions on member 1', 'received by member 2', 'transfer ms', 'member 2 RSS MB';
printf "%-22s %-22s %-14s %.0f\n", @$_ for @rows;
print "\nsessions of about 1 KB (one 1000-byte attribute); sendAllSessionsSize 1000 (Tomcat's "
    . "default); the joining member's own measure, from asking for the state to the last block\n";
