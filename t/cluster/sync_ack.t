#!perl
# A synchronous write that cannot be acknowledged (README, "Replication"):
# node1 and node2, channelSendOptions 6 (use_ack, synchronous), Transport
# timeout 1000 ms, a dropTime of 60 s (so that a frozen node2 stays a live
# member that must be waited for), the demo application at /app.
#   - a session made on node1 is on node2 when the answer comes (200);
#   - node2 frozen (SIGSTOP, every process of it): a change to the session on
#     node1 answers 503 with "Retry-After: 1", node1 logs SC1274 naming the
#     missing ACK, AckTimeouts grows, node2 is still a live member;
#   - node2 resumed (SIGCONT): a change answers 200 again and both members
#     read the same counter.
# Nothing here is timed: the 503 is the cause (the missing ACK), not a delay.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Forge qw(sync_block);
use SC::Test qw(page status_of member_on check within app show demo_module demo_conf alive_on);

$SIG{ALRM} = sub { die "sync_ack.t: time limit (60 s) reached\n" };
alarm 60;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);

my $c = SC::Cluster->new(
    members    => 2,
    extra_conf => $APP,
    cluster    => sub {
        return sync_block($_[0], $_[1], 1000);
    },
);
$c->start_all;


my $p1 = page($c, 'node1') // '';
like($p1, qr/^Cluster\.channelSendOptions = 6\b/m, 'node1 runs with channelSendOptions 6');
like($p1, qr/^Transport\.timeout = 1000\b/m, 'node1 runs with Transport timeout 1000 ms');
check(within(20, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1')
                       && (status_of($c, 'node2')->{EngineState} // '') eq 'ready' }),
      $c, 'node1 and node2 see each other alive, node2 ready');

# a synchronous write that is acknowledged --------------------------------------
my $r = app($c, 'node1', 'auto');
my $id = $r->{cookie};
check($r->{status} == 200 && defined $id && ($r->{counter} // '') eq '1', $c,
      'a session made on node1: 200, counter 1', show($r));
$r = app($c, 'node1', 'auto', $id);
check($r->{status} == 200 && ($r->{counter} // '') eq '2', $c, 'a change on node1: 200, counter 2', show($r));
# acknowledged: node2 has it when node1 has answered, without waiting
$r = app($c, 'node2', 'read', $id);
check(($r->{session} // '') eq $id && ($r->{counter} // '') eq '2', $c,
      'node2 has counter 2 as soon as node1 answered (acknowledged write)', show($r));

# node2 frozen: the write cannot be acknowledged ---------------------------------
my $before = status_of($c, 'node1') || {};
my $off = length $c->error_log('node1');
$c->sigstop('node2');
$r = app($c, 'node1', 'auto', $id, timeout => 20);
check($r->{status} == 503, $c, 'node2 frozen: the change on node1 answers 503', show($r));
is($r->{headers}{'retry-after'}, '1', 'node2 frozen: the 503 carries "Retry-After: 1"');
is($r->{headers}{'session-cluster-change'}, 'kept',
   'node2 frozen: ... and "Session-Cluster-Change: kept" (the change is in effect on node1: '
   . 'a retry would apply it twice)');
my $line = $c->wait_for(sub {
    substr($c->error_log('node1'), $off) =~ /^(.*SC1274: replication of [^\n]*)$/m ? $1 : '';
}, timeout => 10);
like($line, qr/SC1274: replication of .*no ACK from node2 within 1000 ms/,
     'node1 logs SC1274: replication failed, no ACK from node2 within the Transport timeout')
    or diag(substr($c->error_log('node1'), $off));
my $after = status_of($c, 'node1') || {};
cmp_ok($after->{AckTimeouts} // 0, '>', $before->{AckTimeouts} // 0,
       "AckTimeouts on node1 grew ($before->{AckTimeouts} -> " . ($after->{AckTimeouts} // '?') . ')');
# the member was waited for because it is live: node2 is frozen, not dead
ok(alive_on($c, 'node1', 'node2'), 'node2 is still a live member on node1 (frozen, not dead)');

# node2 resumed: writes are acknowledged again ------------------------------------
$c->sigcont('node2');
my ($last, $tries) = (undef, 0);
my $ok = within(20, sub {
    $tries++;
    $last = app($c, 'node1', 'auto', $id, timeout => 10);
    return $last->{status} == 200;
});
check($ok, $c, "node2 resumed: a change on node1 answers 200 again ($tries tries)",
      $last ? show($last) : undef);
my $want = $last->{counter} // 'none';
$r = app($c, 'node2', 'read', $id);
check(($r->{counter} // '') eq $want, $c,
      "node2 resumed: node2 reads the counter node1 answered ($want), at once", show($r));
$r = app($c, 'node1', 'read', $id);
is($r->{counter}, $want, "node1 reads the same counter ($want)");

for my $n ($c->members) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
