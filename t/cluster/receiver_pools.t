#!perl
# The Receiver's two pools (sc_transport.c): a flood of connections from many
# addresses, silent or with forged HELLOs, does not keep members out.
#
# Three static members on 127.0.0.1 (node1's Transport timeout 60 s, so that
# silent connections are not closed by it).  A flooder of this test (a forked
# process) holds 8 connections from each of 127.0.0.2-25 (24 addresses, 192
# connections) to node1's Receiver: half of them silent, half sending a
# forged HELLO (route "flood", an id no member lists: answered with a PONG,
# never adopted), and opens a new one (16 at most per 50 ms) wherever node1
# closed one.  With the flood on:
#   (a) node1 refuses or displaces the flood's connections (ConnsRefused
#       grows), and node3, whose connection to node1 was open before, still
#       replicates to it;
#   (b) node2 is stopped and started again: node1 and node2 see each other
#       alive, a session made on node2 reaches node1 and one made on node1
#       reaches node2 (each polled with a generous limit), and node2 never
#       logs that node1 closed or refused its connection (SC1351);
#   (c) node1 answers forged HELLOs and then closes those connections (at
#       their deadline, or when a newer connection takes their place);
#   (d) the flood held (no new connections, the open ones kept): node1 closes
#       every one of them, silent or forged;
#   (e) the members' connections were never closed by the flood: node3's
#       connection to node1 is the same socket at the end, and node1 logs no
#       refusal or closing (SC1295, SC1296, SC1401-SC1403) naming 127.0.0.1.
# Before the pools (one limit of 128 connections, 8 per address, and a HELLO
# answered kept its connection open for good) the flood held every place:
# node2's new connections were refused, its sessions never reached node1
# (SC1351 on node2), the forged HELLOs' connections stayed open.
# No duration is asserted: deadlines are polling limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(need status_of check within app show demo_module demo_conf alive_on num
               log_since);
use SC::Forge qw(sc_forge add_sender);

my $FORGE = sc_forge();
my $DEMO_SO = demo_module();

$SIG{ALRM} = sub { die "receiver_pools.t: time limit (300 s) reached\n" };
alarm 300;
$SIG{PIPE} = 'IGNORE';

my @ADDRS = map { "127.0.0.$_" } 2 .. 25;
my $PER_ADDR = 8;
{
    # loopback aliases: Linux answers on all of 127/8
    my $s = IO::Socket::INET->new(LocalAddr => $ADDRS[-1], Proto => 'tcp', Listen => 1);
    need($s, "binding $ADDRS[-1] (loopback addresses beyond 127.0.0.1)");
    close $s;
}

my $APP = demo_conf($DEMO_SO);
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];

my $c = SC::Cluster->new(
    members    => 3,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all, valves => $KEEP_ROUTES);
        $x = add_sender($x, 60000) if $m->{name} eq 'node1';
        return $x;
    },
);
$c->start_all;

my $P1 = $c->member('node1')->{cluster_port};

# sc_forge's bytes: a HELLO to send from here
sub forge_bytes {
    open my $fh, '-|', 'sh', '-c', 'exec "$0" "$@" 2>/dev/null', $FORGE, @_ or die "sc_forge: $!";
    binmode $fh;
    local $/;
    my $b = <$fh>;
    close $fh;
    return $b // '';
}

# a session made on $from is read on $to with counter 1
sub replicates {
    my ($from, $to, $label, $limit) = @_;
    my $r = app($c, $from, 'auto');
    my $last;
    my $ok = $r->{status} == 200 && $r->{cookie}
             && within($limit, sub { $last = app($c, $to, 'read', $r->{cookie});
                                     ($last->{counter} // '') eq '1' });
    check($ok, $c, "$label: a session made on $from reaches $to", show($last || $r));
}

# Member $n's engine's connection to node1's Receiver: its local port (from
# /proc/net/tcp and the engine's descriptors), or undef.
sub conn_to_node1 {
    my ($n) = @_;
    my $pid = num(status_of($c, $n), 'EnginePid') or return undef;
    my %inode;
    opendir my $d, "/proc/$pid/fd" or return undef;
    for my $f (readdir $d) {
        my $l = readlink "/proc/$pid/fd/$f" // next;
        $inode{$1} = 1 if $l =~ /^socket:\[(\d+)\]$/;
    }
    open my $fh, '<', '/proc/net/tcp' or return undef;
    my $rem = sprintf '0100007F:%04X', $P1;
    while (<$fh>) {
        my @f = split;
        next unless ($f[2] // '') eq $rem && $f[3] eq '01' && $inode{ $f[9] // '' };
        my ($lp) = $f[1] =~ /:([0-9A-F]+)$/;
        return hex $lp;
    }
    return undef;
}

# ---------------------------------------------------------------------------
# the flooder
# ---------------------------------------------------------------------------
my $STATS = $c->base_dir . '/flood.stats';
my $FLOOD_PID;
END {
    if ($FLOOD_PID) {
        kill 'KILL', $FLOOD_PID;
        waitpid($FLOOD_PID, 0);
    }
}

# Holds $PER_ADDR connections from each of @ADDRS (even ones silent, odd ones
# sending their address's HELLO), reading them and opening a new one where
# node1 closed one (16 at most per 50 ms; none after SIGUSR1); writes its
# counts to $STATS after every sweep.  Ends on SIGTERM or after 280 s.
sub flooder {
    my ($hello) = @_;
    my @slots;
    for my $a (@ADDRS) {
        push @slots, { addr => $a, forged => $_ % 2 } for 0 .. $PER_ADDR - 1;
    }
    my %n = map { $_ => 0 } qw(opened connect_failed answered closed_silent
                               closed_forged_answered closed_forged_unanswered);
    my $hold = 0;
    $SIG{USR1} = sub { $hold = 1 };
    $SIG{TERM} = sub { POSIX::_exit(0) };
    my $end = time + 280;
    while (time < $end) {
        my $opened = 0;
        for my $s (@slots) {
            if ($s->{sock}) {
                my $got = sysread($s->{sock}, my $buf, 65536);
                if (defined $got && $got > 0) {
                    $n{answered}++ if $s->{forged} && !$s->{answered}++;
                    next;
                }
                next if !defined $got && ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR);
                # node1 closed it (end of stream, or a reset)
                $n{ !$s->{forged} ? 'closed_silent'
                    : $s->{answered} ? 'closed_forged_answered' : 'closed_forged_unanswered' }++;
                close $s->{sock};
                $s->{sock} = undef;
                $s->{answered} = 0;
            }
            next if $hold || $opened >= 16;
            $opened++;
            my $sock = IO::Socket::INET->new(LocalAddr => $s->{addr}, PeerAddr => '127.0.0.1',
                                             PeerPort => $P1, Proto => 'tcp', Timeout => 1);
            if (!$sock) {
                $n{connect_failed}++;
                next;
            }
            $sock->blocking(0);
            $n{opened}++;
            syswrite($sock, $hello->{ $s->{addr} }) if $s->{forged};
            $s->{sock} = $sock;
        }
        $n{open} = grep { $_->{sock} } @slots;
        $n{sweeps}++;
        $n{elapsed_ms} = int((time - $end + 280) * 1000);
        $n{hold} = $hold;
        if (open my $fh, '>', "$STATS.tmp") {
            print $fh map { "$_=$n{$_}\n" } sort keys %n;
            close $fh;
            rename "$STATS.tmp", $STATS;
        }
        sleep 0.05;
    }
    POSIX::_exit(0);
}

sub flood_stats {
    my %n;
    open my $fh, '<', $STATS or return {};
    while (<$fh>) { $n{$1} = $2 if /^(\w+)=(\d+)$/ }
    return \%n;
}

sub stats_text { my $n = flood_stats(); join ' ', map { "$_=$n->{$_}" } sort keys %$n }

# ---------------------------------------------------------------------------
my $all_alive = within(30, sub {
    for my $a (qw(node1 node2 node3)) {
        for my $b (qw(node1 node2 node3)) {
            next if $a eq $b;
            return 0 unless alive_on($c, $a, $b);
        }
    }
    return 1;
});
check($all_alive, $c, 'node1, node2 and node3 see each other alive');
replicates('node2', 'node1', 'before the flood', 20);

my $n3_port = conn_to_node1('node3');
ok($n3_port, 'node3 holds a connection to node1\'s Receiver (local port ' . ($n3_port // 'none') . ')');

my %hello;
for my $i (0 .. $#ADDRS) {
    $hello{ $ADDRS[$i] } = forge_bytes('-r', 'flood', '-a', $ADDRS[$i], '-p', 9,
                                       '-i', sprintf('f1%030x', $i + 1), 'hello');
}
is(scalar(grep { length $_ > 40 } values %hello), scalar @ADDRS, 'a forged HELLO for each flooding address');

my $before = status_of($c, 'node1') || {};
my $off1 = length $c->error_log('node1');
STDOUT->flush;
STDERR->flush;
$FLOOD_PID = fork;
die "fork: $!" unless defined $FLOOD_PID;
if (!$FLOOD_PID) {
    eval { flooder(\%hello) };
    POSIX::_exit(1);
}

# (a) ------------------------------------------------------------------------
{
    my $refused = 0;
    my $full = within(60, sub {
        my $n = flood_stats();
        $refused = num(status_of($c, 'node1'), 'ConnsRefused') - num($before, 'ConnsRefused');
        # every place taken once, and as many connections again
        return ($n->{opened} // 0) >= 2 * @ADDRS * $PER_ADDR && $refused >= 100;
    });
    check($full, $c, "(a) the flood fills node1's Receiver: ConnsRefused grew by $refused ("
                     . stats_text() . ')');
    replicates('node3', 'node1', '(a) with the flood on', 30);
}

# (b) ------------------------------------------------------------------------
{
    $c->stop('node2');
    my $off2 = length $c->error_log('node2');
    $c->start('node2');
    my $alive = within(90, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') });
    check($alive, $c, '(b) node2, restarted during the flood, and node1 see each other alive',
          stats_text());
    replicates('node2', 'node1', '(b) node2 restarted, the flood on', 60);
    replicates('node1', 'node2', '(b) node2 restarted, the flood on', 60);
    my @refused = log_since($c, 'node2', $off2) =~ /^(.*SC1351: connection to member \S+ \(127\.0\.0\.1:$P1\) [^\n]*)$/mg;
    is(scalar @refused, 0, '(b) node2 never logs node1 closing or refusing its connection (SC1351)')
        or diag(join "\n", @refused[0 .. ($#refused > 4 ? 4 : $#refused)]);
}

# (c) ------------------------------------------------------------------------
{
    my $n;
    my $ok = within(30, sub { $n = flood_stats(); ($n->{closed_forged_answered} // 0) > 0 });
    check($ok, $c, '(c) node1 answered forged HELLOs and then closed their connections ('
                   . ($n->{closed_forged_answered} // 0) . ' so far; ' . stats_text() . ')');
    like(log_since($c, 'node1', $off1), qr/SC1401: connection from 127\.0\.0\.(?:[2-9]|1\d|2[0-5]):\d+ closed: /,
         '(c) node1 logs SC1401: a flood\'s connection closed for a newer one');
}

# (d) ------------------------------------------------------------------------
{
    my $mid = status_of($c, 'node1') || {};
    kill 'USR1', $FLOOD_PID;
    my $n;
    my $ok = within(60, sub { $n = flood_stats(); $n->{hold} && defined $n->{open} && $n->{open} == 0 });
    check($ok, $c, '(d) the flood held: node1 closes every connection it kept open, silent or forged ('
                   . stats_text() . ')');
    my $timed_out = num(status_of($c, 'node1'), 'ConnsTimedOut') - num($mid, 'ConnsTimedOut');
    cmp_ok($timed_out, '>', 0, "(d) ... at their deadline (ConnsTimedOut grew by $timed_out)");
}

# (e) ------------------------------------------------------------------------
{
    my $now = conn_to_node1('node3');
    is($now, $n3_port, '(e) node3\'s connection to node1 is the one it had before the flood');
    my @lines = log_since($c, 'node1', $off1) =~ /^(.*SC(?:1295|1296|1401|1402|1403): connection from 127\.0\.0\.1:[^\n]*)$/mg;
    is(scalar @lines, 0, '(e) node1 refused or closed no connection from 127.0.0.1 (the members\' address)')
        or diag(join "\n", @lines[0 .. ($#lines > 4 ? 4 : $#lines)]);
    my $p = status_of($c, 'node1') || {};
    is($p->{EnginePid}, $before->{EnginePid}, '(e) node1: the same engine process');
    check(alive_on($c, 'node1', 'node3') && alive_on($c, 'node3', 'node1'), $c,
          '(e) node1 and node3 still see each other alive');
}

kill 'TERM', $FLOOD_PID;
waitpid($FLOOD_PID, 0);
$FLOOD_PID = undef;
for my $n ($c->members) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
