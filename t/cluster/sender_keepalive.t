#!perl
# Transport keepAliveCount and keepAliveTime (PooledParallelSender; README
# "Channel"): a connection to a member is closed after that many messages or
# once it is that many ms old, and a new one is made.  Two static members,
# channelSendOptions 6 (every change waits for the other member's ACK):
#   node1: <Transport keepAliveCount="2">, node2: <Transport keepAliveTime="1000">.
#   A. 12 changes of one session on node1 (counter 1..12), each answered 200:
#      node1 made at least 3 more connections (Connects) meanwhile, node2
#      reads the session with counter 12, no send failed (SendFailures,
#      AckTimeouts 0 on node1), node1 is alive on node2's page all along and
#      node2 ran no TCP check for it (FdChecks unchanged): the closes come
#      with a goodbye that says only the connection ends.
#   B. Idle (no request) for a while: node1's Connects does not move (its
#      limit is a count of messages, not a time), while node2's grows by 3 or
#      more (keepAliveTime 1000 ms; polled, 30 s limit); both still see each
#      other alive and a change made on node2 then reads on node1.
# A module that ignores keepAliveCount fails A's Connects; one that ignores
# keepAliveTime fails B's; one that closes without the goodbye fails A's
# FdChecks.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of member_on counter check within app show valid_sid demo_module demo_conf);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "sender_keepalive.t: time limit (120 s) reached\n" };
alarm 120;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my %TRANSPORT = (node1 => 'keepAliveCount="2"', node2 => 'keepAliveTime="1000"');

my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'debug',
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all, channelSendOptions => 6, valves => $KEEP_ROUTES);
        my $t = qq{    <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">\n}
              . qq{      <Transport className="org.apache.catalina.tribes.transport.nio.PooledParallelSender" }
              . qq{$TRANSPORT{$m->{name}}/>\n    </Sender>\n};
        $x =~ s{(  </Channel>)}{$t$1};
        return $x;
    },
);
$c->start_all;
my $ready = within(30, sub {
    my ($a, $b) = (member_on($c, 'node1', 'node2'), member_on($c, 'node2', 'node1'));
    $a && $b && $a->{state} eq 'alive' && $b->{state} eq 'alive'
        && (status_of($c, 'node2')->{EngineState} // '') eq 'ready'
        && (status_of($c, 'node1')->{EngineState} // '') eq 'ready';
});
check($ready, $c, 'node1 and node2 ready, each alive on the other\'s page');
like($c->config_text('node1'), qr/keepAliveCount="2"/, 'node1\'s Transport has keepAliveCount="2"');
like($c->config_text('node2'), qr/keepAliveTime="1000"/, 'node2\'s Transport has keepAliveTime="1000"');

sub alive_on { my $m = member_on($c, $_[0], $_[1]); return $m && $m->{state} eq 'alive' }

# A. keepAliveCount ---------------------------------------------------------------
my $id;
{
    my $con0 = counter($c, 'node1', 'Connects');
    my $chk0 = counter($c, 'node2', 'FdChecks');
    my ($bad, $dead) = (0, 0);
    for my $i (1 .. 12) {
        my $r = app($c, 'node1', 'auto', defined $id ? ($id) : ());
        $id //= $r->{cookie};
        $bad++ or diag(show($r)) unless $r->{status} == 200 && ($r->{counter} // '') eq $i;
        $dead++ unless alive_on('node2', 'node1');
        sleep 0.2;
    }
    ok(valid_sid($id, 'node1'), 'A. a session made on node1');
    is($bad, 0, 'A. 12 changes on node1, each answered 200 with its counter');
    my $grew = within(20, sub { counter($c, 'node1', 'Connects') - $con0 >= 3 });
    check($grew, $c, 'A. node1 made 3 connections or more meanwhile (keepAliveCount="2")',
          'Connects: ' . $con0 . ' -> ' . counter($c, 'node1', 'Connects'));
    my $r = app($c, 'node2', 'read', $id);
    check(($r->{counter} // '') eq '12' && ($r->{session} // '') eq $id, $c,
          'A. node2 reads the session with counter 12', show($r));
    is(counter($c, 'node1', 'SendFailures'), 0, 'A. node1: no send failed');
    is(counter($c, 'node1', 'AckTimeouts'), 0, 'A. node1: no ACK timed out');
    is($dead, 0, 'A. node1 alive on node2\'s page after every change');
    is(counter($c, 'node2', 'FdChecks'), $chk0,
       'A. node2 ran no TCP check of node1 for its closed connections (they came with a goodbye)');
}

# B. keepAliveTime ------------------------------------------------------------------
{
    sleep 1.5;    # the accesses of A sent (one tick), then no request
    my $con1 = counter($c, 'node1', 'Connects');
    my $con2 = counter($c, 'node2', 'Connects');
    my $grew = within(30, sub { counter($c, 'node2', 'Connects') - $con2 >= 3 });
    check($grew, $c, 'B. idle: node2 made 3 connections or more (keepAliveTime="1000")',
          'Connects: ' . $con2 . ' -> ' . counter($c, 'node2', 'Connects'));
    is(counter($c, 'node1', 'Connects'), $con1,
       'B. ... while node1 made none (keepAliveCount counts messages, not time)');
    ok(alive_on('node1', 'node2') && alive_on('node2', 'node1'), 'B. both still see each other alive');
    my $r = app($c, 'node2', 'auto', $id);
    check($r->{status} == 200 && ($r->{counter} // '') eq '13', $c, 'B. a change on node2 (counter 13)', show($r));
    my $seen = within(20, sub { (app($c, 'node1', 'read', $id)->{counter} // '') eq '13' });
    check($seen, $c, 'B. ... reads on node1');
    is(counter($c, 'node2', 'SendFailures'), 0, 'B. node2: no send failed');
}

$c->teardown;
done_testing();
