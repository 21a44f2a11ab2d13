#!perl
# The TCP channel between two static members, through the page's
# POST ping=ROUTE[&size=N][&ack=0] (with its nonce): an acknowledged message
# node1 -> node2 (counted in AcksIn / AcksOut), a 10000-byte one, one without
# acknowledgement (it reaches node2, which sends no ACK for it: the next,
# acknowledged ping on the same connection is the only one ACKed), one to a
# route nobody has; with node2 frozen (SIGSTOP) the ping fails with "no ACK
# from node2 within 1000 ms" (the Transport timeout) and AckTimeouts grows,
# while node2 stays alive (an ACK timeout is no membership verdict; dropTime
# is 30 s here so that the freeze never reaches it); after SIGCONT pings are
# acknowledged again.  Durations are not asserted (bench/channel.pl measures
# them); deadlines are polling limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(page status_of member_on counter dump_cluster check);

$SIG{ALRM} = sub { die "channel.t: time limit (60 s) reached\n" };
alarm 60;

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# POST ping=ROUTE&k=v...: (\%fields, $status, $raw_body)
sub ping {
    my ($c, $from, $query, %o) = @_;
    my ($route, @kv) = split /&/, $query;
    my ($s, $h, $b) = SC::Test::page_ping($c, $from, $route, (map { split /=/, $_, 2 } @kv),
                                          timeout => $o{timeout} || 8);
    my %f;
    for (split /\n/, $b // '') {
        $f{$1} = $2 if /^(\w+): ?(.*)$/;
    }
    return (\%f, $s, $b);
}

# ---------------------------------------------------------------------------
my $SENDER = qq{    <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">\n}
           . qq{      <Transport className="org.apache.catalina.tribes.transport.nio.PooledParallelSender" timeout="1000"/>\n}
           . qq{    </Sender>\n};
my $c = SC::Cluster->new(
    members => 2,
    cluster => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all,
                                          membership => { frequency => 500, dropTime => 30000 });
        $x =~ s{(  </Channel>)}{$SENDER$1} or die "no </Channel> in the static block";
        return $x;
    },
);
$c->start_all;

like(page($c, 'node1') // '', qr/^Transport\.timeout = 1000\b/m,
     'node1 runs with Transport timeout 1000 ms');
like(page($c, 'node1') // '', qr/^Membership\.dropTime = 30000\b/m,
     'node1 runs with dropTime 30000 ms');
ok($c->wait_for(sub { my $m = member_on($c, 'node1', 'node2'); $m && $m->{state} eq 'alive' },
                timeout => 20), 'node1 sees node2 alive')
    or dump_cluster($c, 'startup');

# acknowledged ping ------------------------------------------------------------
{
    my $acks_in  = counter($c, 'node1', 'AcksIn');
    my $acks_out = counter($c, 'node2', 'AcksOut');
    my ($f, $s, $raw) = ping($c, 'node1', 'node2');
    is($s, 200, 'ping node2: 200');
    is($f->{Ping}, 'node2', 'ping: Ping: node2');
    is($f->{Size}, 100, 'ping: default size 100');
    is($f->{Mode}, 'ack', 'ping: Mode ack');
    check(($f->{Result} // '') eq 'acknowledged', $c, 'ping node1 -> node2: acknowledged', $raw);
    like($f->{Detail} // '', qr/acknowledged by node2/, 'ping: Detail names node2');
    like($f->{TimeMs} // '', qr/^\d+(?:\.\d+)?$/, "ping: TimeMs is a number ($f->{TimeMs})");
    cmp_ok(counter($c, 'node1', 'AcksIn'), '>', $acks_in, "AcksIn on node1 grew (was $acks_in)");
    cmp_ok(counter($c, 'node2', 'AcksOut'), '>', $acks_out, "AcksOut on node2 grew (was $acks_out)");
}

# 10000 bytes ------------------------------------------------------------------
{
    my $bytes_in = counter($c, 'node2', 'BytesIn');
    my ($f, $s, $raw) = ping($c, 'node1', 'node2&size=10000');
    is($f->{Size}, 10000, 'ping size=10000: Size 10000');
    check(($f->{Result} // '') eq 'acknowledged', $c, 'ping size=10000: acknowledged', $raw);
    cmp_ok(counter($c, 'node2', 'BytesIn') - $bytes_in, '>=', 10000,
           'node2 received at least 10000 more bytes');
}

# no acknowledgement -----------------------------------------------------------
{
    my $acks_out = counter($c, 'node2', 'AcksOut');
    my $bytes_in = counter($c, 'node2', 'BytesIn');
    my ($f, $s, $raw) = ping($c, 'node1', 'node2&ack=0&size=10000');
    is($f->{Mode}, 'no-ack', 'ping ack=0: Mode no-ack');
    check(($f->{Result} // '') eq 'sent', $c, 'ping ack=0: Result: sent', $raw);
    # an acknowledged ping after it, on the same connection: once it is
    # acknowledged, node2 has handled the ack=0 one before it
    my ($f2, undef, $raw2) = ping($c, 'node1', 'node2');
    check(($f2->{Result} // '') eq 'acknowledged', $c, 'ping ack=0: the acknowledged ping after it is acknowledged', $raw2);
    cmp_ok(counter($c, 'node2', 'BytesIn') - $bytes_in, '>=', 10000 + 100,
           'ping ack=0: its 10000 bytes reached node2 (BytesIn), before the acknowledged ping');
    is(counter($c, 'node2', 'AcksOut') - $acks_out, 1,
       'ping ack=0: node2 sent no ACK for it (AcksOut grew by 1: the acknowledged ping only)');
}

# unknown route ----------------------------------------------------------------
{
    my ($f, $s, $raw) = ping($c, 'node1', 'nodeX');
    is($s, 200, 'ping nodeX: 200');
    is($f->{Result}, 'failed', 'ping nodeX: Result failed');
    like($f->{Detail} // '', qr/no member has route nodeX/, 'ping nodeX: "no member has route nodeX"');
}

# node2 frozen -----------------------------------------------------------------
{
    my $timeouts = counter($c, 'node1', 'AckTimeouts');
    my $p0 = status_of($c, 'node1') || {};
    $c->sigstop('node2');
    my ($f, $s, $raw) = ping($c, 'node1', 'node2', timeout => 30);
    is($s, 200, 'frozen node2: ping answers 200');
    check(($f->{Result} // '') eq 'failed', $c, 'frozen node2: ping fails', $raw);
    like($f->{Detail} // '', qr/no ACK from node2 within 1000 ms/,
         'frozen node2: "no ACK from node2 within 1000 ms" (the Transport timeout)');
    my $p1 = status_of($c, 'node1') || {};
    is(($p1->{AckTimeouts} // 0) - $timeouts, 1, "frozen node2: AckTimeouts on node1 grew by 1 (was $timeouts)");
    my ($m) = grep { $_->{route} eq 'node2' } @{ $p1->{members} || [] };
    is($m && $m->{state}, 'alive', 'frozen node2: still alive on node1 (an ACK timeout is no membership verdict)');
    is($p1->{FdDead}, $p0->{FdDead}, 'frozen node2: FdDead on node1 unchanged');

    $c->sigcont('node2');
    my $last;
    my $ok = $c->wait_for(sub {
        ($last) = ping($c, 'node1', 'node2');
        return ($last->{Result} // '') eq 'acknowledged';
    }, timeout => 20, interval => 0.1);
    check($ok, $c, 'after SIGCONT: ping node1 -> node2 acknowledged again',
          "last ping: " . join(' | ', map { "$_: $last->{$_}" } sort keys %$last));
    my $m2 = member_on($c, 'node1', 'node2');
    is($m2 && $m2->{state}, 'alive', 'after SIGCONT: node2 alive on node1');
}

# and the other way round, node2 -> node1
{
    my ($f, $s, $raw) = ping($c, 'node2', 'node1');
    check(($f->{Result} // '') eq 'acknowledged', $c, 'ping node2 -> node1: acknowledged', $raw);
}

for my $n ($c->members) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}

$c->teardown;
done_testing();
