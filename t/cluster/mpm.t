#!perl
# One cluster engine per httpd, whatever the MPM: for prefork (StartServers 4),
# worker and event (StartServers 3 of ThreadsPerChild 2 each, so that 20
# requests at once need several children), two static members on loopback:
#   - rounds of 20 concurrent GET /cluster-manager?auto to node1, each request
#     tagged, until at least two distinct children have answered (a CustomLog
#     with %P tells which child served which tag): every page shows the same
#     EnginePid, whichever child served it, and EngineStarts 1;
#   - that pid is a child of node1's httpd parent (not the parent itself, not a
#     worker child: it never serves a request), and it is the one process of
#     node1 that holds the cluster Receiver's listening socket (exactly one
#     engine), while it holds no HTTP listener;
#   - node2 sees node1 alive;
#   - a worker child of node1 killed with SIGKILL changes nothing: the same
#     engine (pid, start time, EngineStarts 1) carries on, node1's ping of
#     node2 through it is acknowledged, and node2 sees node1 alive (same
#     incarnation, no restart) in every sample from the kill until the killed
#     child was reaped and node2 holds a heartbeat node1 sent after the kill.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(parse_auto status_of member_on check within);
SC::Test::dump_options(max => 6, extra => sub {
    my ($c, $n) = @_;
    return "--- $n processes: " . join(' ', map { "$_(ppid " . (ppid_of($_) // '?') . ')' }
                                          $c->pids($n));
});

$SIG{ALRM} = sub { die "mpm.t: time limit (120 s) reached\n" };
alarm 120;

# ---------------------------------------------------------------------------
# processes and sockets (/proc)
# ---------------------------------------------------------------------------
sub stat_fields {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return;
    my $s = <$fh>;
    close $fh;
    return unless defined $s && $s =~ /\)\s+(.*)\z/s;
    return split ' ', $1;    # [0]=state [1]=ppid ... [19]=starttime
}

sub ppid_of { my @f = stat_fields($_[0]) or return undef; $f[1] }

# $pid (started at $st) reaped: no such process any more, or another one
# (not a zombie) under that pid
sub reaped {
    my ($pid, $st) = @_;
    my @f = stat_fields($pid) or return 1;
    return $f[0] ne 'Z' && $f[0] ne 'X' && $f[19] ne ($st // '');
}

sub starttime_of {
    my @f = stat_fields($_[0]) or return undef;
    return undef if $f[0] eq 'Z' || $f[0] eq 'X';
    return $f[19];
}

# direct children of $ppid (not zombies)
sub children_of {
    my ($ppid) = @_;
    opendir my $dh, '/proc' or return ();
    my @k;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my @f = stat_fields($pid) or next;
        next if $f[0] eq 'Z' || $f[0] eq 'X';
        push @k, $pid if $f[1] == $ppid;
    }
    closedir $dh;
    return sort { $a <=> $b } @k;
}

# inodes of the TCP sockets listening on 127.0.0.1:$port
sub listen_inodes {
    my ($port) = @_;
    my $want = sprintf '0100007F:%04X', $port;
    my %ino;
    open my $fh, '<', '/proc/net/tcp' or return ();
    while (<$fh>) {
        my @f = split ' ';
        next unless @f > 9 && $f[1] eq $want && $f[3] eq '0A';
        $ino{ $f[9] } = 1;
    }
    close $fh;
    return keys %ino;
}

# which of @pids hold one of the socket inodes
sub holders {
    my ($inodes, @pids) = @_;
    my %want = map { ("socket:[$_]" => 1) } @$inodes;
    my @h;
    for my $pid (@pids) {
        opendir my $dh, "/proc/$pid/fd" or next;
        for my $fd (grep { /^\d+$/ } readdir $dh) {
            my $l = readlink "/proc/$pid/fd/$fd";
            if (defined $l && $want{$l}) { push @h, $pid; last }
        }
        closedir $dh;
    }
    return @h;
}

# ---------------------------------------------------------------------------
# concurrent GETs of @$paths (loopback): a list of [status, body]
# ---------------------------------------------------------------------------
sub parallel_get {
    my ($addr, $port, $paths, $timeout) = @_;
    my (@socks, %buf, %idx, @res);
    for my $i (0 .. $#$paths) {
        my $req = "GET $paths->[$i] HTTP/1.0\r\nHost: localhost\r\nUser-Agent: mpm.t\r\n"
                . "Connection: close\r\n\r\n";
        my $s = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port, Proto => 'tcp',
                                      Timeout => $timeout);
        if (!$s) { $res[$i] = [ 0, "connect: $@" ]; next }
        $s->autoflush(1);
        print $s $req;
        push @socks, $s;
        $idx{ fileno $s } = $i;
        $buf{ fileno $s } = '';
    }
    my $sel = IO::Select->new(@socks);
    my $deadline = time + $timeout;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read($deadline - time)) {
            my $n = sysread($s, $buf{ fileno $s }, 65536, length $buf{ fileno $s });
            next if !defined $n && $!{EINTR};
            if (!$n) {
                $sel->remove($s);
                my $raw = $buf{ fileno $s };
                my ($head, $body) = split /\r?\n\r?\n/, $raw, 2;
                my $st = defined $head && $head =~ m{\AHTTP/\d\.\d\s+(\d{3})} ? $1 : 0;
                $res[ $idx{ fileno $s } ] = [ $st, $body // '' ];
                close $s;
            }
        }
    }
    for my $s ($sel->handles) {
        $res[ $idx{ fileno $s } ] = [ 0, 'timeout' ];
        close $s;
    }
    return @res;
}

# node1's pid_log: { tag => pid of the child that served it } for the
# requests tagged t=TAG
sub served_by {
    my ($c, $n) = @_;
    open my $fh, '<', $c->member($n)->{dir} . '/logs/pid_log' or return {};
    my %p;
    while (my $l = <$fh>) { $p{$2} = $1 if $l =~ /^(\d+) \S*[?&]t=([\w-]+)/ }
    close $fh;
    return \%p;
}

# ---------------------------------------------------------------------------
sub run_mpm {
    my ($mpm) = @_;
    my $t_start = time;
    my $starts = $mpm eq 'prefork' ? 4 : 3;
    # threaded MPMs: 2 threads a child, so that 20 requests at once are more
    # than one child can take (its listener stops accepting when all its
    # threads are busy) and the others get some
    my $threads = $mpm eq 'prefork' ? ''
        : "ThreadsPerChild 2\nMinSpareThreads 2\nMaxSpareThreads 8\nMaxRequestWorkers 8\n";
    my $c = SC::Cluster->new(
        members    => 2,
        mpm        => $mpm,
        extra_conf => sub {
            my ($m) = @_;
            # which child served which request: %P and the query string
            return qq{StartServers $starts\n$threads}
                 . qq{LogFormat "%P %U%q" scpid\n}
                 . qq{CustomLog "$m->{dir}/logs/pid_log" scpid\n};
        },
    );
    $c->start_all;
    my $parent = $c->member('node1')->{pid};
    my $m1 = $c->member('node1');

    # wait until node1 runs as configured: all its start children are up
    my @k0;
    check($c->wait_for(sub { @k0 = children_of($parent); @k0 >= $starts + 1 }, timeout => 20), $c,
          "$mpm: node1 runs its $starts children and the engine (children: @k0)");

    # rounds of 20 concurrent tagged requests until two children or more
    # have answered; each answer paired with the child that served it
    my (%epid_of_child, %starts, @bad, $made, $logged, $rounds);
    ($made, $logged, $rounds) = (0, 0, 0);
    while ($rounds < 10 && keys(%epid_of_child) < 2) {
        $rounds++;
        my @tags = map { "$rounds-$_" } 1 .. 20;
        my @res = parallel_get($m1->{addr}, $m1->{http_port},
                               [ map { "/cluster-manager?auto&t=$_" } @tags ], 10);
        $made += @tags;
        # the access log line is written after the answer: wait for all 20
        my $by;
        $c->wait_for(sub { $by = served_by($c, 'node1'); !grep { !$by->{$_} } @tags }, timeout => 20);
        for my $i (0 .. $#tags) {
            my ($st, $body) = @{ $res[$i] || [ 0, 'no answer' ] };
            my $child = $by->{ $tags[$i] };
            if ($st != 200 || !$child) {
                push @bad, "t=$tags[$i]: status $st, served by " . ($child // '(not logged)') . ": $body";
                next;
            }
            $logged++;
            my $p = parse_auto($body);
            $epid_of_child{$child}{ $p->{EnginePid} // 'none' }++;
            $starts{ $p->{EngineStarts} // 'none' }++;
        }
    }
    my @servers = sort { $a <=> $b } keys %epid_of_child;
    my $pairs = join(', ', map { my $k = $_; "child $k: EnginePid "
                                 . join('/', map { "$_ x$epid_of_child{$k}{$_}" } sort keys %{ $epid_of_child{$k} }) }
                           @servers);
    note("$mpm: $rounds round(s) of 20: $pairs");
    check(!@bad, $c, "$mpm: every concurrent GET of node1's ?auto answered 200 and was logged with its child",
          @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
    is($logged, $made, "$mpm: $made answers paired with the child that served them");
    cmp_ok(scalar(@servers), '>=', 2, "$mpm: several children answered (@servers)");
    my %epids = map { %{ $epid_of_child{$_} } } @servers;
    my @epids = keys %epids;
    check(@epids == 1 && $epids[0] =~ /^[1-9]\d*$/ && !grep({ keys(%{ $epid_of_child{$_} }) != 1 } @servers), $c,
          "$mpm: every page shows the same EnginePid, whichever child served it ($pairs)");
    my $epid = $epids[0] // 0;
    is(join(',', keys %starts), '1', "$mpm: every page shows EngineStarts 1");
    ok(!grep({ $_ == $epid } @servers), "$mpm: the engine $epid served none of the requests");

    # the engine is a child of the httpd parent, not the parent itself
    my @kids = children_of($parent);
    isnt($epid, $parent, "$mpm: the engine is not the httpd parent ($parent)");
    check((ppid_of($epid) // -1) == $parent, $c,
          "$mpm: the engine $epid is a child of node1's httpd parent $parent (ppid "
          . (ppid_of($epid) // 'none') . ')');
    is(scalar(grep { $_ == $epid } @kids), 1,
       "$mpm: exactly one child of the parent has pid == EnginePid (children: @kids)");

    # exactly one engine: the only process of node1 holding the Receiver socket
    my @rx_inodes = listen_inodes($m1->{cluster_port});
    my @rx_holders = holders(\@rx_inodes, $c->pids('node1'));
    check(@rx_inodes && "@rx_holders" eq "$epid", $c,
          "$mpm: exactly one process of node1 listens on the Receiver port "
          . "$m1->{cluster_port}: the engine (holders: @rx_holders)");
    my @http_holders = holders([ listen_inodes($m1->{http_port}) ], $epid);
    ok(!@http_holders, "$mpm: the engine holds no HTTP listening socket");

    # node2 sees node1 alive
    my $alive = $c->wait_for(sub {
        my $m = member_on($c, 'node2', 'node1');
        return $m && $m->{state} eq 'alive';
    }, timeout => 20);
    check($alive, $c, "$mpm: node2 sees node1 alive");

    # SIGKILL a worker child of node1 (one that served, if any)
    my $engine_st = starttime_of($epid);
    my @workers = grep { $_ != $epid } children_of($parent);
    my ($victim) = (grep({ my $w = $_; grep { $_ == $w } @servers } @workers), @workers);
    KILL_WORKER: {
        unless (check($victim, $c, "$mpm: node1 has a worker child to kill (@workers)")) {
            fail("$mpm: no worker child to kill") for 1 .. 11;
            last KILL_WORKER;
        }
        my $victim_st = starttime_of($victim);
        my $before = member_on($c, 'node2', 'node1') || {};
        my $t0 = time;
        kill 'KILL', $victim;
        # node1's engine uptime read after the kill: a heartbeat that node2
        # holds with a larger alive_ms was sent after the kill
        my $p_after = status_of($c, 'node1') || {};
        my $up_after = $p_after->{EngineUptimeMs} // 0;
        my (@changes, $prev, @epid_seen, @starts_seen, %incs, $m, $reaped);
        my $done = within(20, sub {
            $m = member_on($c, 'node2', 'node1');
            my $st = $m ? $m->{state} : 'absent';
            $incs{ $m ? $m->{incarnation} : 'none' }++;
            if ($st ne ($prev // '')) {
                push @changes, sprintf('%6.3fs %s "%s"', time - $t0, $st, $m ? $m->{verdict} // '' : '');
                $prev = $st;
            }
            if (my $p = status_of($c, 'node1')) {
                push @epid_seen, $p->{EnginePid} // 'none';
                push @starts_seen, $p->{EngineStarts} // 'none';
            }
            $reaped ||= reaped($victim, $victim_st);
            return $reaped && $m && ($m->{alive_ms} // '') =~ /^\d+$/ && $m->{alive_ms} > $up_after;
        });
        note(sprintf "$mpm: the killed child reaped and a later heartbeat of node1 on node2 after %.2fs, "
             . '%d samples', time - $t0, scalar @epid_seen);
        ok($reaped, "$mpm: the killed worker child $victim is gone (reaped by the parent)");
        check($done, $c, "$mpm: node2 holds a heartbeat node1 sent after the kill (alive_ms "
              . ($m ? $m->{alive_ms} // '?' : '?') . " > $up_after)");
        check(@changes == 1 && $changes[0] =~ / alive /, $c,
              "$mpm: node2 sees node1 alive in every sample from the kill to that heartbeat",
              "node1 on node2:\n" . join("\n", @changes));
        is(join(',', sort keys %incs), $before->{incarnation} // 'none',
           "$mpm: ... always with the incarnation it had before the kill");
        is($m && $m->{restarts}, 0, "$mpm: node2 counts no restart of node1");
        my (undef, undef, $pb) = SC::Test::page_ping($c, 'node1', 'node2');
        like($pb // '', qr/^Result: acknowledged$/m, "$mpm: node1's ping of node2 through its engine is acknowledged")
            or diag $pb;
        my %e = map { $_ => 1 } @epid_seen;
        check(@epid_seen && keys(%e) == 1 && exists $e{$epid}, $c,
              "$mpm: node1's pages keep EnginePid $epid (" . scalar(@epid_seen) . ' pages: '
              . join(',', sort keys %e) . ')');
        my %s = map { $_ => 1 } @starts_seen;
        is(join(',', sort keys %s), '1', "$mpm: EngineStarts stays 1");
        is(starttime_of($epid) // 'gone', $engine_st // 'none',
           "$mpm: the engine process $epid itself lives on (same start time)");
        is(ppid_of($epid) // -1, $parent, "$mpm: ... still a child of the httpd parent");
        my $m2 = member_on($c, 'node1', 'node2');
        is($m2 && $m2->{state}, 'alive', "$mpm: node1 still sees node2 alive");
    }

    for my $n ($c->members) {
        my $log = $c->error_log($n);
        unlike($log, qr/Segmentation|cluster engine \(pid \d+\) died|could not start/,
               "$mpm: $n: no crash and no engine death in the error_log");
    }
    $c->teardown;
    note(sprintf "$mpm: %.1fs", time - $t_start);
}

for my $mpm (qw(prefork worker event)) { run_mpm($mpm) }

done_testing();
