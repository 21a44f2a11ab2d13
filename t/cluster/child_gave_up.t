#!perl
# A child that gave up waiting for its synchronous write (README,
# "Replication"): the engine must not answer it after it is gone.
# node1 and node2, channelSendOptions 6 (use_ack, synchronous), Transport
# timeout 1000 ms (a child waits 1000 + 2000 ms for the engine's answer), a
# dropTime of 60 s (a frozen node2 stays a live member that is waited for).
#   - node2 frozen (SIGSTOP, every process), node1's engine alone frozen: a
#     change on node1 waits for the engine, gives up (503, SC1274 "no answer
#     from the cluster engine") and closes its connection to the engine;
#   - node1's engine resumed: it reads the request, sends it to node2, finds
#     the child's connection closed and frees it; the missing ACK from node2
#     then settles the broadcast (AckTimeouts grows).  That answer must not go
#     to the freed connection (it did: a use after free that corrupted the
#     heap, "malloc(): unsorted double linked list corrupted", SIGABRT, SC1238;
#     make check-asan reports it as heap-use-after-free);
#   - node1's engine is the same process afterwards, and with node2 resumed a
#     change on node1 answers 200 again.
# Nothing here is timed: each step waits for the event that ends it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Forge qw(sync_block);
use SC::Test qw(page status_of check within app show demo_module demo_conf alive_on);

$SIG{ALRM} = sub { die "child_gave_up.t: time limit (60 s) reached\n" };
alarm 60;

# With the normal build the freed connection is used without a word (the heap
# corrupted for later); glibc without its per-thread cache and filling what
# is freed makes that use crash at once (AddressSanitizer needs neither).
$ENV{GLIBC_TUNABLES} = join ':', grep { length } $ENV{GLIBC_TUNABLES} // '',
    'glibc.malloc.tcache_count=0', 'glibc.malloc.perturb=165';

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

# the engine frozen alone is resumed whatever happens (else httpd's stop waits)
my $frozen_engine;
END { kill 'CONT', $frozen_engine if $frozen_engine }

my $p1 = page($c, 'node1') // '';
like($p1, qr/^Cluster\.channelSendOptions = 6\b/m, 'node1 runs with channelSendOptions 6');
like($p1, qr/^Transport\.timeout = 1000\b/m, 'node1 runs with Transport timeout 1000 ms');
check(within(20, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1')
                       && (status_of($c, 'node2')->{EngineState} // '') eq 'ready' }),
      $c, 'node1 and node2 see each other alive, node2 ready');

my $r = app($c, 'node1', 'auto');
my $id = $r->{cookie};
check($r->{status} == 200 && defined $id && ($r->{counter} // '') eq '1', $c,
      'a session made on node1: 200, counter 1', show($r));

my $before = status_of($c, 'node1') || {};
my $engine = $before->{EnginePid} // 0;
ok($engine > 0 && SC::Cluster::pid_alive($engine), "node1's engine runs (EnginePid $engine)")
    or BAIL_OUT('no engine pid on node1\'s page');
my $off = length $c->error_log('node1');

# node2 frozen (no ACK will come), then node1's engine alone
$c->sigstop('node2');
is(SC::Cluster::freeze_pids($engine), 1, "node1's engine ($engine) frozen");
$frozen_engine = $engine;

# the child sends its request to the frozen engine and gives up on it
$r = app($c, 'node1', 'auto', $id, timeout => 20);
check($r->{status} == 503, $c, 'the change on node1 answers 503 (the child gave up)', show($r));
my $line = $c->wait_for(sub {
    substr($c->error_log('node1'), $off) =~ /^(.*SC1274: replication of [^\n]*)$/m ? $1 : '';
}, timeout => 10);
like($line, qr/SC1274: replication of .*no answer from the cluster engine within 3000 ms/,
     'node1 logs SC1274: no answer from the cluster engine (the child gave up, closing its connection)')
    or diag(substr($c->error_log('node1'), $off));

# the engine resumed: the request is read after its child closed the connection
is(kill('CONT', $engine), 1, "node1's engine ($engine) resumed");
$frozen_engine = undef;
# the broadcast is settled by node2's missing ACK (counted before it answers)
my $acks;
check(within(20, sub {
    $acks = (status_of($c, 'node1') || {})->{AckTimeouts};
    defined $acks && $acks > ($before->{AckTimeouts} // 0);
}), $c, 'node1\'s engine counted the missing ACK from node2 (AckTimeouts '
      . ($before->{AckTimeouts} // '?') . ' -> ' . ($acks // '?') . ')');

# node2 resumed: a synchronous change is acknowledged again
$c->sigcont('node2');
my ($last, $tries) = (undef, 0);
my $ok = within(20, sub {
    $tries++;
    $last = app($c, 'node1', 'auto', $id, timeout => 10);
    return $last->{status} == 200;
});
check($ok, $c, "node2 resumed: a change on node1 answers 200 again ($tries tries)",
      $last ? show($last) : undef);

# the same engine did all that: it did not die answering the gone child
ok(SC::Cluster::pid_alive($engine), "node1's engine ($engine) is still running");
my $now = status_of($c, 'node1') || {};
is($now->{EnginePid}, $engine, 'node1\'s page names the same engine');
my $log = substr($c->error_log('node1'), $off);
unlike($log, qr/\bSC1238\b|\bSC1236\b|exit signal|double linked list|corrupted/,
       'node1 logged no engine death nor restart (SC1238/SC1236) and no heap corruption');

for my $n ($c->members) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
