#!perl
# One cluster engine per httpd, whatever the MPM: for prefork (StartServers 4),
# worker and event (StartServers 2 each, so that several children answer),
# two static members on loopback:
#   - 20 concurrent GET /cluster-manager?auto to node1, answered by several
#     children, all show the same EnginePid, and EngineStarts 1;
#   - that pid is a child of node1's httpd parent (not the parent itself, not a
#     worker child: it never serves a request), and it is the one process of
#     node1 that holds the cluster Receiver's listening socket (exactly one
#     engine), while it holds no HTTP listener;
#   - node2 sees node1 alive;
#   - a worker child of node1 killed with SIGKILL changes nothing: the same
#     engine (pid, start time, EngineStarts 1) carries on and node2 sees node1
#     alive throughout the next 2 s.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(parse_auto status_of member_on check);
SC::Test::dump_options(max => 6, extra => sub {
    my ($c, $n) = @_;
    return "--- $n processes: " . join(' ', map { "$_(ppid " . (ppid_of($_) // '?') . ')' }
                                          $c->pids($n));
});

$SIG{ALRM} = sub { die "mpm.t: time limit (60 s) reached\n" };
alarm 60;

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
# $n concurrent GETs (loopback): a list of [status, body]
# ---------------------------------------------------------------------------
sub parallel_get {
    my ($addr, $port, $path, $n, $timeout) = @_;
    my (@socks, %buf, %idx, @res);
    my $req = "GET $path HTTP/1.0\r\nHost: localhost\r\nUser-Agent: mpm.t\r\n"
            . "Connection: close\r\n\r\n";
    for my $i (0 .. $n - 1) {
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

sub pid_log_pids {
    my ($c, $n) = @_;
    open my $fh, '<', $c->member($n)->{dir} . '/logs/pid_log' or return ();
    my %p;
    while (my $l = <$fh>) { $p{$1}++ if $l =~ /^(\d+) / }
    close $fh;
    return \%p;
}

# ---------------------------------------------------------------------------
sub run_mpm {
    my ($mpm) = @_;
    my $t_start = time;
    my $starts = $mpm eq 'prefork' ? 4 : 2;
    my $c = SC::Cluster->new(
        members    => 2,
        mpm        => $mpm,
        extra_conf => sub {
            my ($m) = @_;
            # which child served a request: %P
            return qq{StartServers $starts\n}
                 . qq{LogFormat "%P %U" scpid\n}
                 . qq{CustomLog "$m->{dir}/logs/pid_log" scpid\n};
        },
    );
    $c->start_all;
    my $parent = $c->member('node1')->{pid};
    my $m1 = $c->member('node1');

    # wait until node1 runs as configured: all its start children are up
    $c->wait_for(sub { my @k = children_of($parent); @k >= $starts + 1 }, timeout => 3);

    # the same engine on every page, whichever child answers
    my @res = parallel_get($m1->{addr}, $m1->{http_port}, '/cluster-manager?auto', 20, 10);
    my @ok = grep { $_->[0] == 200 } @res;
    check(@ok == 20, $c, "$mpm: all 20 concurrent GETs of node1's ?auto answered 200 (" . scalar(@ok) . ')',
          map { "status $_->[0]: $_->[1]" } grep { $_->[0] != 200 } @res);
    my %epids;
    my %starts;
    for (@ok) {
        my $p = parse_auto($_->[1]);
        $epids{ $p->{EnginePid} // 'none' }++;
        $starts{ $p->{EngineStarts} // 'none' }++;
    }
    my @epids = keys %epids;
    check(@epids == 1 && $epids[0] =~ /^[1-9]\d*$/, $c,
          "$mpm: every page shows the same EnginePid (" . join(', ', map { "$_ x$epids{$_}" } @epids) . ')');
    my $epid = $epids[0];
    is(join(',', keys %starts), '1', "$mpm: every page shows EngineStarts 1");

    my $served = pid_log_pids($c, 'node1');
    my @servers = sort { $a <=> $b } keys %$served;
    note("$mpm: node1's requests were served by children: "
         . join(' ', map { "$_ (x$served->{$_})" } @servers));
    my $logged = 0;
    $logged += $_ for values %$served;
    cmp_ok($logged, '>=', 20, "$mpm: node1's pid_log recorded the requests ($logged lines)");
    if ($mpm eq 'prefork') {
        # the premise of "whichever child answers": prefork serves one
        # connection per child, so 20 at once need several children
        cmp_ok(scalar(@servers), '>=', 2, "$mpm: several children answered (@servers)");
    }
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
    }, timeout => 2);
    check($alive, $c, "$mpm: node2 sees node1 alive");

    # SIGKILL a worker child of node1 (one that served, if any)
    my $engine_st = starttime_of($epid);
    my @workers = grep { $_ != $epid } children_of($parent);
    my ($victim) = (grep({ my $w = $_; grep { $_ == $w } @servers } @workers), @workers);
    KILL_WORKER: {
        unless (check($victim, $c, "$mpm: node1 has a worker child to kill (@workers)")) {
            fail("$mpm: no worker child to kill") for 1 .. 7;
            last KILL_WORKER;
        }
        my $victim_st = starttime_of($victim);
        my $t0 = time;
        kill 'KILL', $victim;
        my (@changes, $prev, @epid_seen, @starts_seen);
        while (time - $t0 < 2.0) {
            my $m = member_on($c, 'node2', 'node1');
            my $st = $m ? $m->{state} : 'absent';
            if ($st ne ($prev // '')) {
                push @changes, sprintf('%6.3fs %s "%s"', time - $t0, $st, $m ? $m->{verdict} // '' : '');
                $prev = $st;
            }
            if (my $p = status_of($c, 'node1')) {
                push @epid_seen, $p->{EnginePid} // 'none';
                push @starts_seen, $p->{EngineStarts} // 'none';
            }
            sleep 0.05;
        }
        my $gone = !defined starttime_of($victim)
            || (starttime_of($victim) // '') ne ($victim_st // '');
        ok($gone, "$mpm: the killed worker child $victim is gone");
        check(@changes == 1 && $changes[0] =~ / alive /, $c,
              "$mpm: node2 sees node1 alive throughout 2 s after a worker child died",
              "node1 on node2:\n" . join("\n", @changes));
        my %e = map { $_ => 1 } @epid_seen;
        check(@epid_seen && keys(%e) == 1 && exists $e{$epid}, $c,
              "$mpm: node1's pages keep EnginePid $epid (" . scalar(@epid_seen) . ' pages: '
              . join(',', sort keys %e) . ')');
        my %s = map { $_ => 1 } @starts_seen;
        is(join(',', sort keys %s), '1', "$mpm: EngineStarts stays 1");
        is(starttime_of($epid) // 'gone', $engine_st // 'none',
           "$mpm: the engine process $epid itself lives on (same start time)");
        is(ppid_of($epid) // -1, $parent, "$mpm: ... still a child of the httpd parent");
        my $m = member_on($c, 'node1', 'node2');
        is($m && $m->{state}, 'alive', "$mpm: node1 still sees node2 alive");
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
