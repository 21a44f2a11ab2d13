#!perl
# Writes in place (README, "Store"): an update that changes at most 4 of the
# blocks of the version it replaces, of as many blocks, is written over them,
# on the member that served the request and on the member that applies the
# change.  Two members, asynchronous replication, the demo application at
# /app; a session with a 20,000-byte attribute 'big' (?set=big&fill=20000)
# set after its counter:
#   1. eight increments on node1 (counter 2 to 9: as many bytes each time,
#      'big' unchanged): node1's SessionsUpdatedInPlace grows by 8, and
#      node2's by 8 once it holds node1's version;
#   2. both members read counter 9 and 'big' whole (its 20,000 bytes, the
#      pattern intact), and hold the session at one version and size;
#   3. the tenth increment (counter 10: a byte more, every byte after it
#      moved) is written in blocks of its own on both members
#      (SessionsUpdatedInPlace as it was), and both read it and 'big' whole.
# 'big', left where it was, is not compared with the store's bytes
# (sc_store_kept): on node1 the encoding copied it from the text read, on
# node2 the DELTA applied left it in place.  Against a build that never
# writes in place, 1 fails; one that writes in place what moved, 3 fails;
# one that says 'big' kept although it moved: 3 fails, on node1 (the
# encoder's ranges) or node2 (sc_repl_apply_kept's).  No duration is asserted; deadlines are polling
# limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(check within app show demo_module demo_conf valid_sid ready_and_alive status_of num);
SC::Test::dump_options(tail => 40);

$SIG{ALRM} = sub { die "store_in_place.t: time limit (120 s) reached\n" };
alarm 120;

my $c = SC::Cluster->new(members => 2, extra_conf => demo_conf(demo_module()));
$c->start_all;
check(within(30, sub { ready_and_alive($c, 'node1', 'node2') }), $c,
      'node1 and node2 are ready and see each other alive');

sub version_on { my $f = SC::Test::session_on($c, @_); return $f ? $f->{SessionVersion} : -1 }
sub bytes_on { my $f = SC::Test::session_on($c, @_); return $f ? $f->{SessionBytes} : -1 }
sub in_place { num(status_of($c, $_[0]), 'SessionsUpdatedInPlace') }
my $BIG = substr('0123456789abcdef' x 1250, 0, 20000);

# both members at node1's version; each reads counter $n and 'big' whole
sub both_read {
    my ($id, $n, $label) = @_;
    my $v = version_on('node1', $id);
    check(within(20, sub { version_on('node2', $id) == $v }), $c,
          "$label: node2 holds the session at node1's version $v");
    is(bytes_on('node2', $id), bytes_on('node1', $id), "$label: ... of as many bytes");
    for my $m ('node1', 'node2') {
        my $r = app($c, $m, 'read', $id);
        is($r->{counter}, $n, "$label: $m reads counter $n") or diag show($r);
        ok(($r->{attrs}{big} // '') eq $BIG, "$label: $m reads 'big' whole (20,000 bytes)")
            or diag 'big: ' . length($r->{attrs}{big} // '') . ' bytes';
    }
}

my $r = app($c, 'node1', 'auto');
my $id = $r->{cookie};
check(valid_sid($id, 'node1'), $c, 'a session made on node1 (counter 1)', show($r));
$r = app($c, 'node1', 'set=big&fill=20000', $id);
is(length($r->{attrs}{big} // ''), 20000, "'big' set on node1: 20,000 bytes") or diag show($r);
both_read($id, 1, '0');

# 1. eight increments of as many bytes
my %before = map { $_ => in_place($_) } qw(node1 node2);
for my $n (2 .. 9) {
    $r = app($c, 'node1', 'auto', $id);
    is($r->{counter}, $n, "1. node1 answers counter $n") or diag show($r);
}
is(in_place('node1') - $before{node1}, 8,
   '1. node1 wrote the eight increments in place (SessionsUpdatedInPlace +8)');
both_read($id, 9, '2');
is(in_place('node2') - $before{node2}, 8,
   '1. node2 applied the eight changes in place (SessionsUpdatedInPlace +8)');

# 3. a byte more: everything after the counter moves
%before = map { $_ => in_place($_) } qw(node1 node2);
$r = app($c, 'node1', 'auto', $id);
is($r->{counter}, 10, '3. node1 answers counter 10') or diag show($r);
both_read($id, 10, '3');
is(in_place('node1') - $before{node1}, 0, '3. node1 wrote it in blocks of its own');
is(in_place('node2') - $before{node2}, 0, '3. node2 applied it in blocks of its own');

$c->teardown;
done_testing();
