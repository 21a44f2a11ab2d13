#!perl
# The valves' settings on the request path (sc_session.c reads them from the
# typed settings, cfg->set).  Two members whose block has a ReplicationValve
# with filter=".*\.gif", primaryIndicator="true" and primaryIndicatorName
# "sc.primary", and a JvmRouteBinderValve with enabled="false"; the demo
# application copies the variable into a response header:
#   1. a new session on node1: sc.primary is "true" (a new session's primary
#      is the member that makes it), and again for a request with it there;
#   2. the session read on node2: sc.primary is "false" (node1's route), and
#      no Set-Cookie: the only JvmRouteBinderValve is disabled, so nothing is
#      re-bound;
#   3. a change through /app/pic.gif on node1 (the filter matches): stored on
#      node1 (version up, counter 3) but not replicated: once a later session
#      made on node1 has reached node2, node2 still holds the first one at
#      the version before;
#   4. the next change through /app (not filtered) reaches node2 (node2 ends
#      at node1's version, counter 4).
# No duration is asserted; deadlines are polling limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(check within app show demo_module demo_conf valid_sid alive_on);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "replication_valve.t: time limit (90 s) reached\n" };
alarm 90;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO, location => "  Header always set X-Primary \"%{sc.primary}e\"\n");
my $VALVES = [
    q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve" filter=".*\.gif" }
  . q{primaryIndicator="true" primaryIndicatorName="sc.primary"/>},
    q{<Valve className="org.apache.catalina.ha.session.JvmRouteBinderValve" enabled="false"/>},
];
my $c = SC::Cluster->new(members => 2, modules => ['headers'], extra_conf => $APP,
                         cluster => sub { SC::Cluster::static_block(@_, valves => $VALVES) });
$c->start_all;

sub session_on { SC::Test::session_on($c, @_) }
sub version_on { my $f = session_on(@_); return $f ? $f->{SessionVersion} : -1 }

check(within(20, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') }),
      $c, 'node1 and node2 see each other alive');

# 1. primaryIndicator on the member that holds the session's route
my $r = app($c, 'node1', 'auto');
my $id = $r->{cookie};
check(valid_sid($id, 'node1'), $c, '1. a session made on node1', show($r));
is($r->{headers}{'x-primary'}, 'true', '1. sc.primary is "true" for the new session') or diag show($r);
$r = app($c, 'node1', 'auto', $id);
is($r->{headers}{'x-primary'}, 'true', '1. ... and "true" for a request with it on node1')
    or diag show($r);
is($r->{counter}, 2, '1. counter 2 on node1') or diag show($r);

# 2. another member: not primary; the disabled JvmRouteBinderValve re-binds nothing
my $v1 = version_on('node1', $id);
check(within(20, sub { version_on('node2', $id) == $v1 }), $c,
      "2. node2 holds the session at node1's version $v1");
$r = app($c, 'node2', 'read', $id);
is($r->{counter}, 2, '2. node2 reads it with counter 2') or diag show($r);
is($r->{headers}{'x-primary'}, 'false', '2. sc.primary is "false" on node2 (node1\'s route)')
    or diag show($r);
ok(!defined $r->{cookie}, '2. no Set-Cookie on node2: JvmRouteBinderValve enabled="false" '
   . 're-binds nothing') or diag show($r);

# 3. a filtered URI: stored, not replicated
$r = app($c, 'node1', 'auto', $id, path => '/pic.gif');
is($r->{counter}, 3, '3. /app/pic.gif on node1 changes the session (counter 3)') or diag show($r);
my $v2 = version_on('node1', $id);
cmp_ok($v2, '>', $v1, "3. node1 holds it at a later version ($v2)");
my $later = app($c, 'node1', 'auto')->{cookie};
check(valid_sid($later, 'node1') && within(20, sub { session_on('node2', $later) }), $c,
      '3. a session made on node1 afterwards reaches node2');
is(version_on('node2', $id), $v1,
   "3. ... while node2 still holds the first one at version $v1: the filtered change was not sent");

# 4. the same session through /app: replicated again
$r = app($c, 'node1', 'auto', $id);
is($r->{counter}, 4, '4. /app on node1: counter 4') or diag show($r);
my $v3 = version_on('node1', $id);
check(within(20, sub { version_on('node2', $id) == $v3 }), $c,
      "4. node2 reaches node1's version $v3");
$r = app($c, 'node2', 'read', $id);
is($r->{counter}, 4, '4. node2 reads counter 4') or diag show($r);

$c->teardown;
done_testing();
