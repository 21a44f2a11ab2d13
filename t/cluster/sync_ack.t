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
use POSIX ();
use File::Temp ();
use SC::Cluster;
use SC::Forge qw(sync_block);
use SC::Test qw(page status_of member_on check within app show demo_module demo_conf alive_on);

$SIG{ALRM} = sub { die "sync_ack.t: time limit (120 s) reached\n" };
alarm 120;

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

# many synchronous writes at once, through the children's ring ------------------
# Each child thread hands its synchronous changes over through the shared ring,
# named by a token its connection was bound to, and reads the engine's answer
# on its own connection: the answers must reach the thread that waits for
# them.  8 clients at once, each with its own session, 15 writes each; after
# every 200, node2 must already hold that write's counter.
{
    my ($K, $N) = (8, 15);
    my @ids;
    for my $k (1 .. $K) {
        my $m = app($c, 'node1', 'auto');
        push @ids, $m->{cookie} if $m->{status} == 200 && defined $m->{cookie};
    }
    my $st0 = status_of($c, 'node1') || {};
    my @pids;
    my $dir = File::Temp::tempdir("sync-many-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    for my $k (0 .. $#ids) {
        my $pid = fork // die "fork: $!\n";
        if (!$pid) {
            my ($ok, $late, $bad) = (0, 0, 0);
            my $note = '';
            for my $i (1 .. $N) {
                my $w = app($c, 'node1', 'auto', $ids[$k], timeout => 10);
                if ($w->{status} != 200) { $bad++; $note ||= "write $i: status $w->{status}"; next }
                my $r2 = app($c, 'node2', 'read', $ids[$k]);
                if (($r2->{counter} // '') eq ($w->{counter} // 'x')) { $ok++ }
                else { $late++; $note ||= "write $i: node1 answered counter $w->{counter}, node2 read "
                                         . ($r2->{counter} // 'none') }
            }
            open my $f, '>', "$dir/sync_many.$k" or POSIX::_exit(1);
            print $f "$ok $late $bad $note\n";
            close $f;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid($_, 0) for @pids;
    my ($ok, $late, $bad, @notes) = (0, 0, 0);
    for my $k (0 .. $#ids) {
        open my $f, '<', "$dir/sync_many.$k" or next;
        my ($o, $l, $b, $n) = split ' ', scalar(<$f>), 4;
        unlink "$dir/sync_many.$k";
        ($ok, $late, $bad) = ($ok + $o, $late + $l, $bad + $b);
        push @notes, "client $k: $n" if $n && $n =~ /\S/;
    }
    is(scalar @ids, $K, "$K sessions made on node1 for the concurrent writes");
    is($bad, 0, "$K clients x $N synchronous writes at once on node1: every one answered 200")
        or diag(join "\n", @notes);
    is($ok, $K * $N, '... and node2 held each write\'s counter as soon as node1 answered it')
        or diag(join "\n", @notes);
    my $st1 = status_of($c, 'node1') || {};
    # (a thread's first change on its connection to the engine goes on the
    # socket, with the HELLO that binds it: at most one a worker thread, and
    # node1 has at most 32 (SC::Cluster's event MPM settings))
    my $ring = ($st1->{HandoffsRing} // 0) - ($st0->{HandoffsRing} // 0);
    ok($ring >= $K * $N - 32 && $ring <= $K * $N,
       "node1's children handed the synchronous changes over through the ring (HandoffsRing "
       . ($st0->{HandoffsRing} // '?') . ' -> ' . ($st1->{HandoffsRing} // '?') . ": $ring of "
       . $K * $N . ')');
    is($st1->{HandoffsRingBad} // -1, 0, '... and the engine found no record not well formed');
}

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
