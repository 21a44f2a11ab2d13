#!perl
# What the README promises of the Receiver and of membership, through real
# members (static, on 127.0.0.1), forged traffic (t/tools/sc_forge) and plain
# sockets from this test:
#   (a) SC1301: a HELLO carrying node2's id (a live member) from another
#       address is refused (connection closed, no PONG) and logged; node2
#       keeps its address, port and incarnation on node1 and still
#       replicates;
#   (b) QueueFull: "fake", a member listed in node1's block whose Receiver is
#       a socket of this test that never reads (and a HELLO of its own, so
#       that node1 takes it for alive), is sent node1's replication traffic,
#       changes of 15 KB (node1's Receiver maxMessageSize 16384: the limit is
#       4 x 16384 + 64 KB, after what the kernel buffers): node1 closes its
#       connection to fake (fake reads the end of the stream), counts
#       QueueFull and logs SC1303; every change made meanwhile reaches node2;
#   (c) the strangers' pool: connections that send nothing (node1's
#       Transport timeout is 60 s, a stranger's deadline the shorter 2 s)
#       from 127.0.0.2-20, 8 per address (152): node1 never holds more than
#       16 of them (SC_MAX_STRANGERS in sc_transport.c), none is refused for
#       its address (8 each), and node1 closes every one of them, a new one
#       taking the place of the oldest (ConnsRefused, SC1401) or at its
#       deadline (ConnsTimedOut): the two counters grow by 152 together;
#       node2's connection, a member's, is not one of them: it still
#       replicates to node1 and is alive there; then a new connection is
#       served (a HELLO answered with a PONG).  (Before the pools this was
#       one limit of 128 connections, which a flood held: receiver_pools.t);
#   (d) a configured maxMessageSize (node1's Receiver: 16384): node2's
#       replication of a session of 20000 bytes is a bad frame on node1
#       (BadFrames, SC1213 "frame longer than the maximum"), one of 1000
#       bytes made after it reaches node1, the big one never does.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(need page status_of member_on check within app show demo_module demo_conf
               alive_on num log_since);
use SC::Forge qw(sc_forge silent_receiver member_line add_sender);

my $FORGE = sc_forge();
my $DEMO_SO = demo_module();

$SIG{ALRM} = sub { die "receiver_limits.t: time limit (150 s) reached\n" };
alarm 150;
$SIG{PIPE} = 'IGNORE';

my $APP = demo_conf($DEMO_SO);
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];

# fake: its Receiver is this socket, which never reads (a small receive
# buffer, set before listen() so that its connections have it)
my ($FAKE, $FAKE_PORT) = silent_receiver();
my @FAKE_ID = (70, 65, 75, 69, 1 .. 12);       # "FAKE" ...
my $FAKE_ID_HEX = join '', map { sprintf '%02x', $_ } @FAKE_ID;

my $c = SC::Cluster->new(
    members     => 2,
    # changes of 15 and 20 KB in the query string
    extra_conf  => $APP . "LimitRequestLine 40000\n",
    cluster     => sub {
        my ($m, $all) = @_;
        my %o = (membership => { dropTime => 60000 }, valves => $KEEP_ROUTES,
                 manager => { maxSessionSize => 65536 });
        my $x = SC::Cluster::static_block($m, $all, %o);
        # its own id as the others list it (a LocalMember): node2's is known
        $x =~ s{(<Interceptor className="org\.apache\.catalina\.tribes\.group\.interceptors\.StaticMembershipInterceptor">\n)}
               {$1      <LocalMember className="org.apache.catalina.tribes.membership.StaticMember" uniqueId="$m->{unique_id}"/>\n}
            or die 'no StaticMembershipInterceptor';
        if ($m->{name} eq 'node1') {
            $x =~ s{(<Receiver [^>]*?)/>}{$1 maxMessageSize="16384"/>} or die 'no Receiver';
            my $fake = member_line('127.0.0.1', $FAKE_PORT, @FAKE_ID);
            $x =~ s{(    </Interceptor>)}{$fake$1} or die 'no Interceptor';
            $x = add_sender($x, 60000);
        }
        return $x;
    },
);
$c->start_all;

my $N1 = '127.0.0.1:' . $c->member('node1')->{cluster_port};

# sc_forge's report (stdout and stderr)
sub forge {
    my ($rc, $out) = $c->exec_in('node1', { timeout => 30 }, $FORGE, @_);
    return $out;
}

# sc_forge's bytes (no -c): a frame to send from here
sub forge_bytes {
    open my $fh, '-|', 'sh', '-c', 'exec "$0" "$@" 2>/dev/null', $FORGE, @_ or die "sc_forge: $!";
    binmode $fh;
    local $/;
    my $b = <$fh>;
    close $fh;
    return $b // '';
}

# a session made on node1 is read on node2 with counter $want
sub replicates {
    my ($label) = @_;
    my $r = app($c, 'node1', 'auto');
    my $id = $r->{cookie};
    my $last;
    my $ok = $r->{status} == 200
             && within(20, sub { $last = app($c, 'node2', 'read', $id); ($last->{counter} // '') eq '1' });
    check($ok, $c, "$label: a session made on node1 reaches node2", show($last || $r));
    return $id;
}

my $p1 = page($c, 'node1') // '';
like($p1, qr/^Receiver\.maxMessageSize = 16384\b/m, 'node1 runs with Receiver maxMessageSize 16384');
like($p1, qr/^Transport\.timeout = 60000\b/m, 'node1 runs with Transport timeout 60000 ms');
check(within(20, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1')
                       && (status_of($c, 'node2')->{EngineState} // '') eq 'ready' }),
      $c, 'node1 and node2 see each other alive, node2 ready');

# (a) SC1301 ---------------------------------------------------------------------
{
    my $before = member_on($c, 'node1', 'node2') || {};
    my $n2 = $c->member('node2');
    my ($id_hex) = join '', map { sprintf '%02x', $_ } $n2->{unique_id} =~ /(\d+)/g;
    my $off = length $c->error_log('node1');
    my $claimed = $n2->{cluster_port} + 1;
    # its id and route, a higher incarnation, another port
    my $out = forge('-c', $N1, '-r', 'node2', '-a', '127.0.0.1', '-p', $claimed, '-i', $id_hex,
                    '-I', '4611686018427387904', 'hello', 'wait', 3000);
    like($out, qr/^(?:eof|reset) after/m, "(a) a HELLO with node2's id claiming 127.0.0.1:$claimed: closed")
        or diag($out);
    unlike($out, qr/^recv /m, '(a) ... and not answered');
    my $line = $c->wait_for(sub { log_since($c, 'node1', $off) =~ /^(.*\bSC1301: [^\n]*)$/m ? $1 : '' },
                            timeout => 10);
    like($line, qr/SC1301: heartbeat in the name of live member node2 \(127\.0\.0\.1:$n2->{cluster_port}\) claims 127\.0\.0\.1:$claimed .*rejected/,
         '(a) node1 logs SC1301 naming node2, its address and the claimed one')
        or diag(log_since($c, 'node1', $off));
    my $after = member_on($c, 'node1', 'node2') || {};
    is($after->{addr}, "127.0.0.1:$n2->{cluster_port}", '(a) node2 keeps its address on node1');
    is($after->{incarnation}, $before->{incarnation}, '(a) ... and its incarnation');
    is($after->{state}, 'alive', '(a) ... and stays alive');
    my $p = status_of($c, 'node1') || {};
    is(scalar(grep { ($_->{route} // '') eq 'node2' } @{ $p->{members} || [] }), 1,
       '(a) one member holds route node2 on node1');
    unlike(log_since($c, 'node1', $off), qr/SC1226/, '(a) no "rejoined with a new incarnation" (SC1226)');
    replicates('(a)');
}

# (b) QueueFull ------------------------------------------------------------------
my @held;     # fake's accepted connections
{
    my $hello = forge_bytes('-r', 'fake', '-a', '127.0.0.1', '-p', $FAKE_PORT, '-i', $FAKE_ID_HEX,
                            'hello');
    my $in = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->member('node1')->{cluster_port},
                                   Proto => 'tcp', Timeout => 5) or die "connect node1: $!";
    syswrite($in, $hello) == length $hello or die "write HELLO: $!";
    push @held, $in;
    my $accept = sub { while (accept(my $s, $FAKE)) { push @held, $s } };
    check(within(20, sub { $accept->(); alive_on($c, 'node1', 'fake') }), $c,
          '(b) fake (its HELLO sent, its Receiver never reading) is alive on node1');
    my $first = within(20, sub { $accept->(); @held > 1 }) ? $held[1] : undef;
    ok($first, '(b) node1 connected to fake\'s Receiver');

    my $before = status_of($c, 'node1') || {};
    my $off = length $c->error_log('node1');
    my $id = app($c, 'node1', 'auto')->{cookie};
    my ($writes, $last) = (0, undef);
    my $value = 'q' x 15000;
    my $full = within(60, sub {
        $accept->();
        $last = app($c, 'node1', "set=v&value=$value$writes", $id);
        $writes++;
        return num(status_of($c, 'node1'), 'QueueFull') > num($before, 'QueueFull');
    });
    check($full, $c, "(b) node1 counts QueueFull after $writes changes of 15 KB (fake reads nothing)",
          $last ? show($last) : undef);
    my $line = $c->wait_for(sub { log_since($c, 'node1', $off) =~ /^(.*\bSC1303: [^\n]*)$/m ? $1 : '' },
                            timeout => 10);
    like($line, qr/SC1303: connection to 127\.0\.0\.1:$FAKE_PORT of fake closed: it does not read .*QueueFull/,
         '(b) node1 logs SC1303 naming fake\'s connection') or diag(log_since($c, 'node1', $off));
    # fake's side: the stream ends (after what the kernel had buffered)
    my ($eof, $got) = (0, 0);
    if ($first) {
        $first->blocking(0);
        within(20, sub {
            while (1) {
                my $n = sysread($first, my $buf, 65536);
                if (!defined $n) { return 0 if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR; $eof = 1; return 1 }
                if ($n == 0) { $eof = 1; return 1 }
                $got += $n;
            }
        });
    }
    ok($eof, "(b) fake's first connection was closed by node1 (fake read $got bytes, then the end)");
    # every change made meanwhile reached node2
    my $want = $value . ($writes - 1);
    my $r;
    my $ok = within(20, sub { $r = app($c, 'node2', 'read', $id); ($r->{attrs}{v} // '') eq $want });
    check($ok, $c, "(b) node2 has the last of the $writes changes", substr(show($r), 0, 300));
    my $p = status_of($c, 'node1') || {};
    is($p->{EnginePid}, $before->{EnginePid}, '(b) node1: the same engine process');
    check(alive_on($c, 'node1', 'node2'), $c, '(b) node2 still alive on node1');
    close $_ for @held;
    close $FAKE;
    @held = ();
}

# (c) the strangers' pool ---------------------------------------------------------
# node1's Receiver in /proc/net/tcp: (established server-side sockets from
# 127.0.0.1, those from the other addresses of 127/8, the listening socket's
# accept queue, server-side sockets whose peer closed and node1 has not yet)
sub rx_sockets {
    my $port = sprintf '%04X', $c->member('node1')->{cluster_port};
    my ($est, $others, $queue, $close_wait) = (0, 0, undef, 0);
    open my $fh, '<', '/proc/net/tcp' or return (undef, undef, undef, undef);
    while (<$fh>) {
        my @f = split;
        next unless ($f[1] // '') =~ /^0100007F:$port$/;
        if ($f[3] eq '01') { if ($f[2] =~ /^0100007F:/) { $est++ } else { $others++ } }
        elsif ($f[3] eq '08') { $close_wait++ }
        elsif ($f[3] eq '0A') { ($queue) = $f[4] =~ /:([0-9A-F]+)$/; $queue = hex $queue }
    }
    return ($est, $others, $queue, $close_wait);
}
{
    my $before = status_of($c, 'node1') || {};
    my $off = length $c->error_log('node1');
    # node1 has closed fake's HELLO connection (closed at our end) and taken
    # everything off its listen queue: what it holds now stays
    my ($pre, $q, $cw);
    my $quiet = within(20, sub { ($pre, undef, $q, $cw) = rx_sockets(); defined $q && $q == 0 && $cw == 0 });
    ok($quiet && $pre >= 1, "(c) node1 holds $pre inbound connection(s) before (node2's), none closing");
    my @conns;
    my ($batches, $most) = (0, 0);
    for my $a (2 .. 20) {
        for (1 .. 8) {
            my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.$a", PeerAddr => '127.0.0.1',
                                          PeerPort => $c->member('node1')->{cluster_port},
                                          Proto => 'tcp', Timeout => 10);
            push @conns, $s if $s;
        }
        # node1's engine has accepted them (its listen queue is empty): what
        # it holds of ours now.  Read again 50 ms after the queue emptied:
        # /proc/net/tcp is not read in one instant, and a displaced
        # stranger's line read before its close would count with the queue's
        # line read after the last accept
        my $others;
        $batches++ if within(20, sub {
            (undef, $others, $q) = rx_sockets();
            return 0 unless defined $q && $q == 0;
            sleep 0.05;
            (undef, $others, $q) = rx_sockets();
            defined $q && $q == 0;
        });
        $most = $others if ($others // 0) > $most;
    }
    is(scalar @conns, 152, '(c) 152 connections opened from 127.0.0.2-20 (8 per address)');
    is($batches, 19, '(c) node1 took each batch of 8 off its listen queue');
    cmp_ok($most, '<=', 16, "(c) node1 never held more than 16 of them (at most $most after a batch)");
    cmp_ok($most, '>=', 8, '(c) ... and held them (a batch at least)');
    $_->blocking(0) for @conns;
    my %closed;
    my ($refused, $timed_out) = (0, 0);
    my $settled = within(30, sub {
        for my $i (0 .. $#conns) {
            next if $closed{$i};
            my $n = sysread($conns[$i], my $buf, 1);
            $closed{$i} = 1 if defined $n || ($! != EAGAIN && $! != EWOULDBLOCK);
        }
        my $p = status_of($c, 'node1');
        $refused = num($p, 'ConnsRefused') - num($before, 'ConnsRefused');
        $timed_out = num($p, 'ConnsTimedOut') - num($before, 'ConnsTimedOut');
        return keys %closed == @conns && $refused + $timed_out == @conns;
    });
    check($settled, $c, '(c) node1 closed all ' . scalar(keys %closed) . " of them: $refused to make room "
                        . "(ConnsRefused), $timed_out at their deadline (ConnsTimedOut)");
    cmp_ok($refused, '>', 0, '(c) ... some of them to make room for newer ones');
    my $log = log_since($c, 'node1', $off);
    like($log, qr/SC1401: connection from 127\.0\.0\.\d+:\d+ closed: it sent no HELLO yet, and the Receiver's 16 places for connections no member is known on are taken/,
         '(c) SC1401: "a new one takes the place of the oldest"');
    unlike($log, qr/too many connections from that address/,
           '(c) no address went over 8');
    unlike($log, qr/SC1(?:295|296|401|402|403): connection from 127\.0\.0\.1:/,
           '(c) no connection from 127.0.0.1 (node2\'s) refused or closed');
    # a legitimate member's connection is not a stranger's: node2 still replicates
    my $r = app($c, 'node2', 'auto');
    my $last;
    my $ok = $r->{status} == 200
             && within(20, sub { $last = app($c, 'node1', 'read', $r->{cookie}); ($last->{counter} // '') eq '1' });
    check($ok, $c, '(c) after the flood of strangers, a session made on node2 reaches node1', show($last || $r));
    check(alive_on($c, 'node1', 'node2'), $c, '(c) node2 is alive on node1');
    close $_ for @conns;
    check(within(20, sub { my ($e, $o) = rx_sockets(); defined $e && $e <= $pre && !$o }), $c,
          '(c) our connections closed, node1 is back to what it held');
    my $out = '';
    $ok = within(20, sub {
        $out = forge('-c', $N1, '-r', 'probe', '-a', '127.0.0.1', '-p', 9, '-i', 'cc' x 16,
                     'hello', 'wait', 500);
        $out =~ /^recv PONG/m;
    });
    ok($ok, '(c) a new connection is served again (its HELLO answered with a PONG)') or diag($out);
}

# (d) a configured maxMessageSize ---------------------------------------------------
{
    my $before = status_of($c, 'node1') || {};
    my $off = length $c->error_log('node1');
    my $big = app($c, 'node2', 'set=big&value=' . ('b' x 20000));
    check($big->{status} == 200 && $big->{cookie}, $c, '(d) a session of 20000 bytes made on node2',
          substr(show($big), 0, 300));
    my $line = $c->wait_for(sub { log_since($c, 'node1', $off) =~ /^(.*\bSC1213: [^\n]*)$/m ? $1 : '' },
                            timeout => 20);
    like($line, qr/SC1213: bad frame from 127\.0\.0\.1:\d+: frame longer than the maximum/,
         '(d) node1 refuses its replication: SC1213 "frame longer than the maximum"')
        or diag(log_since($c, 'node1', $off));
    my $after = status_of($c, 'node1') || {};
    cmp_ok(num($after, 'BadFrames'), '>', num($before, 'BadFrames'),
           '(d) BadFrames on node1 grew (' . num($before, 'BadFrames') . ' -> ' . num($after, 'BadFrames') . ')');
    my $small = app($c, 'node2', 'set=small&value=' . ('s' x 1000));
    my $r;
    my $ok = $small->{status} == 200
             && within(20, sub { $r = app($c, 'node1', 'read', $small->{cookie});
                                 ($r->{attrs}{small} // '') eq 's' x 1000 });
    check($ok, $c, '(d) a session of 1000 bytes made after it reaches node1', $r ? substr(show($r), 0, 300) : undef);
    $r = app($c, 'node1', 'read', $big->{cookie});
    isnt($r->{session} // '', $big->{cookie}, '(d) the big one never reached node1');
    check(alive_on($c, 'node2', 'node1') && alive_on($c, 'node1', 'node2'), $c, '(d) node1 and node2 still see each other');
}

for my $n ($c->members) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
