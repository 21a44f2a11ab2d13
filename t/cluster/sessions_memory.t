#!perl
# The store's memory follows the sessions' data, not Manager's limits
# (2 members, synchronous replication, maxActiveSessions 2000 and
# maxSessionSize 65536: 128 MB reserved, of which only what is used is
# resident):
#   - started empty, SessionsStoreBytes (the shared memory the store has
#     used) is below 1 MB on both members;
#   - 150 sessions with an attribute of 2,000 to 12,000 bytes each, every
#     one different: each reads back exactly on the other member, and
#     SessionsStoreBytes grows by at most 1.1 x SessionsBytesInUse plus 552
#     bytes per session: its slot (176) and, for each of the first 4,096
#     sessions, a slot lock with its undo record (376; README, "Store") (a
#     fixed slot per session of maxSessionSize would be 10 MB here);
#   - the sessions shrink to 100 bytes (every change answered) and 100 of
#     them end (every invalidation answered; both members then hold 50, and
#     node2 none of the ended ones): the survivors
#     still read back; then 100 new big sessions fit in the blocks and slots
#     given back (SessionsStoreBytes does not grow past its high-water mark
#     by more than 10%);
#   - the member processes' resident memory (PSS, /proc/PID/smaps_rollup)
#     grows by less than 1.3 x the data plus 20 MB while the store fills.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(status_of check within app demo_module demo_conf sess_line);

$SIG{ALRM} = sub { die "sessions_memory.t: time limit (120 s) reached\n" };
alarm 120;

my $DEMO_SO = demo_module();
# ReplicationValve only: ids keep their route on node2 (no re-binding)
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my $APP = demo_conf($DEMO_SO, server => "LimitRequestLine 20000\n");

my $c = SC::Cluster->new(
    members    => 2,
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all, channelSendOptions => 6, valves => $KEEP_ROUTES,
            manager => { maxActiveSessions => 2000, maxSessionSize => 65536 });
    },
);
$c->start_all;
my %p;
check(defined within(20, sub {
          for my $n (qw(node1 node2)) {
              $p{$n} = status_of($c, $n) or return 0;
              return 0 unless $p{$n}{EngineState} eq 'ready' && ($p{$n}{MembersAlive} // 0) >= 1;
          }
          1;
      }), $c, 'both members ready', map { "$_: " . sess_line($p{$_}) } sort keys %p);

sub pss_of {
    my $sum = 0;
    for my $pid ($c->pids($_[0])) {
        open my $fh, '<', "/proc/$pid/smaps_rollup" or next;
        while (<$fh>) { $sum += $1 * 1024 if /^Pss:\s+(\d+) kB/ }
    }
    return $sum;
}

my %base = map { $_ => status_of($c, $_)->{SessionsStoreBytes} } qw(node1 node2);
for my $n (qw(node1 node2)) {
    ok(defined $base{$n} && $base{$n} < 1024 * 1024,
       "$n: an empty store of 2000 x 64 KB uses " . ($base{$n} // 'no figure') . ' bytes (< 1 MB)');
}
my $pss0 = pss_of('node1');

# 150 sessions, values of 2,000 to 12,000 bytes, each its own
my (%val, @ids);
for my $i (1 .. 150) {
    my $v = sprintf('v%04d', $i) . join('', map { chr(97 + ($i * 7 + $_) % 26) } 1 .. 1995 + ($i * 67) % 10000);
    my $r = app($c, 'node1', 'set=big&value=' . $v);
    my $id = $r->{cookie};
    next unless $r->{status} == 200 && $id;
    push @ids, $id;
    $val{$id} = $v;
}
is(scalar @ids, 150, '150 sessions with a big attribute made on node1');
my @wrong = grep { (app($c, 'node2', 'read', $_)->{attrs}{big} // '') ne $val{$_} } @ids;
check(!@wrong, $c, 'every big attribute reads back exactly on node2', "wrong: @wrong[0 .. ($#wrong < 4 ? $#wrong : 4)]");

my %full;
for my $n (qw(node1 node2)) {
    my $p = $full{$n} = status_of($c, $n);
    my $grew = $p->{SessionsStoreBytes} - $base{$n};
    my $limit = 1.1 * $p->{SessionsBytesInUse} + (176 + 376) * 150;
    check($p->{SessionsActive} == 150 && $grew >= $p->{SessionsBytesInUse} && $grew <= $limit, $c,
          sprintf('%s: the store grew by %d bytes for %d bytes of data in %d sessions (limit %d)',
                  $n, $grew, $p->{SessionsBytesInUse}, $p->{SessionsActive}, $limit));
}
my $pss1 = pss_of('node1');
my $data = $full{node1}{SessionsBytesInUse};
check($pss1 - $pss0 < 1.3 * $data + 20 * 1024 * 1024, $c,
      sprintf('node1: PSS grew by %.1f MB for %.1f MB of session data (limit 1.3 x data + 20 MB)',
              ($pss1 - $pss0) / 1048576, $data / 1048576));

# shrink them all, end 100, make 100 new big ones: blocks and slots are reused
my @unshrunk;
for my $id (@ids) {
    my $v = 'small' . substr($id, 0, 8);
    my $r = app($c, 'node1', "set=big&value=$v", $id);
    $val{$id} = $v;
    push @unshrunk, "$id: status $r->{status}, session " . ($r->{session} // '-')
        unless $r->{status} == 200 && ($r->{session} // '') eq $id && ($r->{attrs}{big} // '') eq $v;
}
check(!@unshrunk, $c, 'all 150 sessions shrunk to a small value on node1 (every answer 200 with it)',
      @unshrunk[0 .. ($#unshrunk < 4 ? $#unshrunk : 4)]);
my @ended = splice @ids, 0, 100;
my @not_ended = grep { (app($c, 'node1', 'invalidate=1', $_)->{invalidated} // '') ne 'yes' } @ended;
check(!@not_ended, $c, '100 of them invalidated on node1 (Invalidated: yes)', "not: @not_ended[0 .. ($#not_ended < 4 ? $#not_ended : 4)]");
{
    my %p;
    my $ok = within(20, sub {
        $p{$_} = status_of($c, $_) for qw(node1 node2);
        return !grep { ($p{$_} && $p{$_}{SessionsActive} // -1) != 50 } qw(node1 node2);
    });
    check(defined $ok, $c, 'both members then hold 50 sessions (polled up to 20 s)',
          map { "$_: " . sess_line($p{$_}) } qw(node1 node2));
    my @held = grep { my (undef, undef, $b) = $c->get('node2', "/cluster-manager?session=$_");
                      ($b // '') !~ /^SessionHeld: no$/m } @ended;
    check(!@held, $c, 'node2 holds none of the 100 ended sessions (?session=ID)', "held: @held[0 .. ($#held < 4 ? $#held : 4)]");
}
@wrong = grep { (app($c, 'node2', 'read', $_)->{attrs}{big} // '') ne $val{$_} } @ids;
check(@ids == 50 && !@wrong, $c, 'the 50 shrunk survivors read back on node2', "wrong: @wrong");
for my $i (151 .. 250) {
    my $v = sprintf('w%04d', $i) . ('z' x (1995 + ($i * 67) % 10000));
    my $r = app($c, 'node1', 'set=big&value=' . $v);
    next unless $r->{status} == 200 && $r->{cookie};
    push @ids, $r->{cookie};
    $val{ $r->{cookie} } = $v;
}
is(scalar @ids, 150, '100 new big sessions made');
is(status_of($c, $_)->{SessionsActive}, 150, "$_ holds 150 sessions again") for qw(node1 node2);
@wrong = grep { (app($c, 'node2', 'read', $_)->{attrs}{big} // '') ne $val{$_} } @ids;
check(!@wrong, $c, 'all 150 read back exactly on node2', "wrong: @wrong[0 .. ($#wrong < 4 ? $#wrong : 4)]");
for my $n (qw(node1 node2)) {
    my $p = status_of($c, $n);
    check($p->{SessionsStoreBytes} <= 1.1 * $full{$n}{SessionsStoreBytes}, $c,
          sprintf('%s: after the turnover the store uses %d bytes (high-water %d before)',
                  $n, $p->{SessionsStoreBytes}, $full{$n}{SessionsStoreBytes}));
}
for my $n (qw(node1 node2)) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|SC1276|SC1277/, "$n: no crash, nothing refused");
}
$c->teardown;
done_testing();
