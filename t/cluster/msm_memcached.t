#!perl
# The session server on memcached (issue 19): msm's <Manager> at server level,
# no <Cluster> block, two members that know nothing of each other, sticky
# (msm's default), backups synchronous.  Requests go straight to a member, as a
# balancer would send them.
#   1. a session made on node1 (counter 1, 2): memcached holds it under its id;
#   2. kill -9 of node1: the session continues on node2 with its counter (3),
#      loaded from memcached (SessionServerLoaded), re-bound to node2's route;
#      memcached holds it under the new id, not under the old one;
#   3. every member stopped, then started: the session is still there (4);
#   4. memcached stopped: the page is still served from the member's copy (5),
#      the failure counted on the page (the node's errors, BackupFailed) and
#      logged (SC1700); memcached started again: the next backups reach it
#      (the session is in the new, empty memcached) and the node is up;
#   5. memcached restarted (empty): a request that only reads the session
#      (no backup) puts it back on the server: its expiry there follows the
#      member's (touch), and a session the server lost is backed up again;
#   6. memcached frozen (SIGSTOP) with 300 ms timeouts: the request is
#      answered from the member's copy, the timeout counted.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::SessionServer;
use SC::Test qw(status_of check within app demo_module demo_conf show kv_line);
SC::Test::dump_options(tail => 20, cut => 300);

my $LIMIT = 60;
$SIG{ALRM} = sub { die "msm_memcached.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $mc = SC::SessionServer->new('memcached');
my $port = $mc->port;
sub mc_start { $mc->start }
sub mc_stop { $mc->stop }
sub mc_get { $mc->get(@_) }

mc_start();
my $DEMO_SO = demo_module();
my $manager = qq{<Manager className="de.javakaffee.web.msm.MemcachedBackupSessionManager"\n}
            . qq{         memcachedNodes="m1:127.0.0.1:$port"\n}
            . qq{         sticky="true" sessionBackupAsync="false" sessionBackupTimeout="5000"\n}
            . qq{         operationTimeout="5000" requestUriIgnorePattern=".*\\.(ico|png)\$"\n}
            . qq{         transcoderFactoryClass="de.javakaffee.web.msm.serializer.kryo.KryoTranscoderFactory"/>\n};
my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => demo_conf($DEMO_SO),
    cluster    => $manager,
);
$c->start_all;

sub node_row {
    my ($n) = @_;
    my $p = status_of($c, $n) or return ({}, {});
    return ($p, $p->{SessionServerNode} ? kv_line($p->{SessionServerNode}) : {});
}
sub base_of { my ($id) = @_; return ($id // '') =~ /^([0-9A-Fa-f]+)\./ ? $1 : 'none' }

# 1
my $r = app($c, 'node1', 'auto');
my $id1 = $r->{cookie} // '';
like($id1, qr/^[0-9A-Fa-f]{32}\.node1$/, '1. a session made on node1') or diag(show($r));
$r = app($c, 'node1', 'auto', $id1);
is($r->{counter}, 2, '1. ... counter 2 on node1') or diag(show($r));
like(mc_get($id1) // '(none)', qr/^SCM1 \d+ \d+\n.*counter/s,
     '1. memcached holds the session under its id');

# 2
$c->kill9('node1');
$r = app($c, 'node2', 'auto', $id1);
is($r->{status}, 200, '2. node1 killed: its session on node2: 200') or diag(show($r));
is($r->{counter}, 3, '2. ... with its counter: 3') or diag(show($r));
my $id2 = base_of($id1) . '.node2';
is($r->{cookie}, $id2, "2. ... re-bound to node2: Set-Cookie $id2") or diag(show($r));
my ($p) = node_row('node2');
cmp_ok($p->{SessionServerLoaded} // 0, '>=', 1, '2. ... loaded from the session server');
ok(defined mc_get($id2), '2. memcached holds it under the new id');
ok(!defined mc_get($id1), '2. ... and no longer under the old one');

# 3
$c->stop('node2');
$c->start($_) for qw(node1 node2);
$r = app($c, 'node1', 'auto', $id2);
is($r->{counter}, 4, '3. every member restarted: the session continues (4)') or diag(show($r));
my $id3 = $r->{cookie} // $id2;

# 4
mc_stop();
$r = app($c, 'node1', 'auto', $id3);
is($r->{status}, 200, '4. memcached stopped: the page is served') or diag(show($r));
is($r->{counter}, 5, '4. ... from the member\'s copy (5)') or diag(show($r));
my $row;
($p, $row) = node_row('node1');
cmp_ok($row->{errors} // 0, '>=', 1, '4. ... the failure counted on the node') or diag(explain($row));
cmp_ok($p->{SessionServerBackupFailed} // 0, '>=', 1, '4. ... and as a failed backup');
like($c->error_log('node1'), qr/SC1700: session server m1 .*: set: /, '4. ... and logged');
mc_start();
my $ok = within(15, sub {
    my $x = app($c, 'node1', 'auto', $id3);
    return $x->{status} == 200 && defined mc_get($id3);
});
ok($ok, '4. memcached back: the session is backed up to it again');
($p, $row) = node_row('node1');
is($row->{state}, 'up', '4. ... and the node is up') or diag(explain($row));

# 5
mc_stop();
mc_start();
$r = app($c, 'node1', 'read', $id3);
is($r->{status}, 200, '5. memcached restarted (empty): a request that only reads the session');
$ok = within(5, sub { defined mc_get($id3) });
ok($ok, '5. ... puts it back on the server (its expiry pushed back, or backed up again)');
($p) = node_row('node1');
cmp_ok($p->{SessionServerTouchRestored} // 0, '>=', 1, '5. ... counted: SessionServerTouchRestored');

# 6
my $fast = $manager;
$fast =~ s/sessionBackupTimeout="5000"/sessionBackupTimeout="300"/;
$fast =~ s/operationTimeout="5000"/operationTimeout="300"/;
$c->configure('node1', cluster => $fast);
$c->stop('node1');
$c->start('node1');
$r = app($c, 'node1', 'auto', $id3);
my $n6 = $r->{counter} // 0;
cmp_ok($n6, '>=', 6, '6. node1 restarted with operationTimeout 300: the session continues (its counter goes on)')
    or diag(show($r));
my (undef, $row0) = node_row('node1');
$mc->freeze;
$r = app($c, 'node1', 'auto', $id3, timeout => 20);
$mc->thaw;
is($r->{status}, 200, '6. memcached frozen (SIGSTOP): the request is answered') or diag(show($r));
is($r->{counter}, $n6 + 1, '6. ... from the member\'s copy') or diag(show($r));
($p, $row) = node_row('node1');
cmp_ok($row->{timeouts} // 0, '>', $row0->{timeouts} // 0, '6. ... the timeout counted')
    or diag(explain($row));
ok(!$c->problems, 'no crash') or diag(join "\n", $c->problems);

done_testing;
