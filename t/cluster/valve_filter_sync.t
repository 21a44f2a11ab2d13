#!perl
# ReplicationValve filter=".*\.css" with synchronous replication
# (channelSendOptions 6: use_ack, synchronous), as Tomcat: a session created
# on a filtered URL is still sent (SESSION_CREATED), a change made on one is
# not sent then but rides with the next request that is not filtered.  Two
# members; the demo application at /app (so /app/style.css is a filtered URL
# of the same application):
#   1. a session made through /app/style.css on node1 is on node2 when the
#      answer comes (a synchronous send: node2 acknowledged it), at node1's
#      version;
#   2. changed through /app/style.css (counter 2), then through /app (counter
#      3): the second answer is 200, not 503 (before: a DELTA over a version
#      node2 never got, held there and refused), and node2 reads counter 3 at
#      node1's version when it comes;
#   3. changed through /app/style.css again (counter 4), then only read
#      through /app (?read changes nothing): node2 holds node1's version and
#      reads counter 4 when the answer comes (Tomcat sends the pending
#      changes with the next request that is not filtered, changed or not);
#   4. another session made through /app/x.css on node1, and node1 killed
#      (SIGKILL) at once: node2 still holds it and reads its counter.
# Against the module before this change 1, 2 (503), 3 and 4 fail.
# No duration is asserted; deadlines are polling limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(check within app show demo_module demo_conf valid_sid ready_and_alive);
SC::Test::dump_options(tail => 40);

$SIG{ALRM} = sub { die "valve_filter_sync.t: time limit (120 s) reached\n" };
alarm 120;

my $DEMO_SO = demo_module();
my $VALVES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve" filter=".*\.css"/>} ];
my $c = SC::Cluster->new(members => 2, extra_conf => demo_conf($DEMO_SO),
                         cluster => sub { SC::Cluster::static_block(@_, valves => $VALVES,
                                                                    channelSendOptions => 6) });
$c->start_all;

sub session_on { SC::Test::session_on($c, @_) }
sub version_on { my $f = session_on(@_); return $f ? $f->{SessionVersion} : -1 }

check(within(30, sub { ready_and_alive($c, 'node1', 'node2') }), $c,
      'node1 and node2 are ready and see each other alive');

# 1. created on a filtered URL: sent all the same, synchronously
my $r = app($c, 'node1', 'auto', path => '/style.css');
my $id = $r->{cookie};
check(valid_sid($id, 'node1'), $c, '1. /app/style.css on node1 makes a session', show($r));
is($r->{status}, 200, '1. answered 200') or diag show($r);
my $v1 = version_on('node1', $id);
is(version_on('node2', $id), $v1,
   "1. node2 holds it at node1's version $v1 when the answer comes (acknowledged)");
$r = app($c, 'node2', 'read', $id);
is($r->{counter}, 1, '1. node2 reads counter 1') or diag show($r);

# 2. changed on a filtered URL, then on one that is not
$r = app($c, 'node1', 'auto', $id, path => '/style.css');
is($r->{status}, 200, '2. /app/style.css changes it on node1: 200') or diag show($r);
is($r->{counter}, 2, '2. ... counter 2') or diag show($r);
$r = app($c, 'node1', 'auto', $id);
is($r->{status}, 200, '2. then /app changes it: 200, not 503 (the change before rides with it)')
    or diag show($r);
is($r->{counter}, 3, '2. ... counter 3') or diag show($r);
ok(!defined $r->{headers}{'session-cluster-change'},
   '2. ... and no Session-Cluster-Change header (the change reached every member)')
    or diag show($r);
my $v3 = version_on('node1', $id);
is(version_on('node2', $id), $v3, "2. node2 holds node1's version $v3 when the answer comes");
$r = app($c, 'node2', 'read', $id);
is($r->{counter}, 3, '2. node2 reads counter 3') or diag show($r);

# 3. a filtered change, then a request that only reads
$r = app($c, 'node1', 'auto', $id, path => '/style.css');
is($r->{counter}, 4, '3. /app/style.css changes it on node1: counter 4') or diag show($r);
$r = app($c, 'node1', 'read', $id);
is($r->{status}, 200, '3. /app?read on node1: 200') or diag show($r);
is($r->{counter}, 4, '3. ... reads counter 4') or diag show($r);
my $v4 = version_on('node1', $id);
is(version_on('node2', $id), $v4,
   "3. node2 holds node1's version $v4 when the answer comes (the pending change went with it)");
$r = app($c, 'node2', 'read', $id);
is($r->{counter}, 4, '3. node2 reads counter 4') or diag show($r);

# 4. a crash right after a session is made on a filtered URL
$r = app($c, 'node1', 'auto', path => '/x.css');
my $id2 = $r->{cookie};
check(valid_sid($id2, 'node1'), $c, '4. /app/x.css on node1 makes another session', show($r));
$c->kill9('node1');
ok(session_on('node2', $id2), '4. node1 killed: node2 holds the session made on the filtered URL');
$r = app($c, 'node2', 'read', $id2);
is($r->{counter}, 1, '4. node2 reads its counter 1') or diag show($r);

$c->teardown;
done_testing();
