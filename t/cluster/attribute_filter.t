#!perl
# Manager sessionAttributeNameFilter="^(counter|user)$" with
# warnOnSessionAttributeFilterFailure="true" (Tomcat's willAttributeDistribute:
# an attribute whose name does not match stays on the member that set it).
# Three members, node3 started later; the demo application at /app (?set=K
# sets an attribute, ?read shows them all):
#   1. a session made on node1, 'secret' set there, then the counter changed:
#      node2 reaches node1's version and reads the counter, but not 'secret';
#      node1 still reads 'secret'; node1's log names 'secret' in a warning
#      (SC1440), and holds more bytes of the session than node2;
#   2. node2 stopped, node3 started: its state transfer (from node1, the only
#      member left) brings the session without 'secret'; node3 holds it at
#      node1's version;
#   3. the two copies of one version (node1's with 'secret', node3's without)
#      are the same version to anti-entropy: once node1 and node3 exchanged
#      digests (first contact, then every 15 to 25 s), neither asked for the
#      other's copy nor counted a conflict, and node1 still reads 'secret';
#   4. a change on node3 (a DELTA to node1) keeps 'secret' on node1, which
#      reads the new counter; node3 still lacks 'secret'.
# Against a build that ignores the filter, 1-4's 'secret' checks and the
# warning fail; against one that hashes every attribute, 3 and 4 fail.
# No duration is asserted; deadlines are polling limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(check within app show demo_module demo_conf valid_sid ready_and_alive status_of num);
SC::Test::dump_options(tail => 40);

$SIG{ALRM} = sub { die "attribute_filter.t: time limit (240 s) reached\n" };
alarm 240;

my $DEMO_SO = demo_module();
my $MANAGER = { sessionAttributeNameFilter => '^(counter|user)$',
                warnOnSessionAttributeFilterFailure => 'true' };
my $c = SC::Cluster->new(members => 3, extra_conf => demo_conf($DEMO_SO),
                         cluster => sub { SC::Cluster::static_block(@_, manager => $MANAGER) });
$c->start('node1');
$c->start('node2');

sub session_on { SC::Test::session_on($c, @_) }
sub version_on { my $f = session_on(@_); return $f ? $f->{SessionVersion} : -1 }
sub bytes_on { my $f = session_on(@_); return $f ? $f->{SessionBytes} : -1 }
sub read_on { return app($c, $_[0], 'read', $_[1]) }

check(within(30, sub { ready_and_alive($c, 'node1', 'node2') }), $c,
      'node1 and node2 are ready and see each other alive');

# 1. set on node1: the counter travels, 'secret' does not
my $r = app($c, 'node1', 'auto');
my $id = $r->{cookie};
check(valid_sid($id, 'node1'), $c, '1. a session made on node1', show($r));
$r = app($c, 'node1', 'set=secret&value=s3cr3t', $id);
is($r->{attrs}{secret}, 's3cr3t', "1. 'secret' set on node1") or diag show($r);
$r = app($c, 'node1', 'auto', $id);
is($r->{counter}, 2, '1. counter 2 on node1') or diag show($r);
my $v1 = version_on('node1', $id);
check(within(20, sub { version_on('node2', $id) == $v1 }), $c,
      "1. node2 holds the session at node1's version $v1");
$r = read_on('node2', $id);
is($r->{counter}, 2, '1. node2 reads counter 2 (the counter is distributed)') or diag show($r);
ok(!exists $r->{attrs}{secret}, "1. node2 lacks 'secret' (its name does not match the filter)")
    or diag show($r);
$r = read_on('node1', $id);
is($r->{attrs}{secret}, 's3cr3t', "1. node1 still reads 'secret'") or diag show($r);
cmp_ok(bytes_on('node1', $id), '>', bytes_on('node2', $id),
       '1. node1 holds more bytes of the session than node2');
like($c->error_log('node1'),
     qr/SC1440: .*attribute\(s\)[^\n]*'secret'[^\n]*not distributed[^\n]*sessionAttributeNameFilter/,
     "1. node1's log warns that 'secret' is kept on node1 (warnOnSessionAttributeFilterFailure)");
unlike($c->error_log('node1'), qr/SC1440: [^\n]*'counter'/,
       "1. ... and never names 'counter'");

# 2. state transfer to node3 from node1 alone
$c->stop('node2');
$c->start('node3');
check(within(30, sub { version_on('node3', $id) == $v1 }), $c,
      "2. node3 holds the session at node1's version $v1 (state transfer from node1)");
$r = read_on('node3', $id);
is($r->{counter}, 2, '2. node3 reads counter 2') or diag show($r);
ok(!exists $r->{attrs}{secret}, "2. node3 lacks 'secret': the state transfer left it out")
    or diag show($r);

# 3. anti-entropy between node1 and node3: one version, no conflict
my $rounds = sub { num(status_of($c, $_[0]), 'AntiEntropyRounds') };
check(within(60, sub { $rounds->('node1') >= 2 && $rounds->('node3') >= 1 }), $c,
      '3. node1 and node3 ran anti-entropy');
sleep 2;                                 # the digests' answers, if any, are read
my ($s1, $s3) = (status_of($c, 'node1'), status_of($c, 'node3'));
is(num($s1, 'AntiEntropyAsked') + num($s3, 'AntiEntropyAsked'), 0,
   '3. neither asked for the other\'s copy: one version, one hash (the attributes '
   . 'kept on node1 are not hashed)') or diag "node1: $s1->{AntiEntropyAsked}, node3: $s3->{AntiEntropyAsked}";
is(num($s1, 'Conflicts') + num($s3, 'Conflicts'), 0, '3. no conflict counted');
$r = read_on('node1', $id);
is($r->{attrs}{secret}, 's3cr3t', "3. node1 still reads 'secret'") or diag show($r);
is(version_on('node1', $id), $v1, "3. node1 still holds version $v1");

# 4. a change on node3 reaches node1 as a DELTA: 'secret' stays there
$r = app($c, 'node3', 'auto', $id);
is($r->{counter}, 3, '4. node3 changes the session: counter 3') or diag show($r);
my $v2 = version_on('node3', $id);
check(within(20, sub { version_on('node1', $id) == $v2 }), $c,
      "4. node1 reaches node3's version $v2");
$r = read_on('node1', $id);
is($r->{counter}, 3, '4. node1 reads counter 3') or diag show($r);
is($r->{attrs}{secret}, 's3cr3t', "4. node1 still reads 'secret' after the other member's change")
    or diag show($r);
$r = read_on('node3', $id);
ok(!exists $r->{attrs}{secret}, "4. node3 still lacks 'secret'") or diag show($r);

$c->teardown;
done_testing();
