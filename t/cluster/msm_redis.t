#!perl
# The session server on Redis (issue 19): msm's <Manager> with
# memcachedNodes="redis://host:port" at server level, no <Cluster> block, two
# members, sticky, backups asynchronous (after the response), and
# maxInactiveInterval="120".
#   1. a session made on node1: Redis gets it (after the response), with the
#      idle limit as its expiry (PTTL at most 120 s);
#   2. kill -9 of node1: the session continues on node2 with its counter,
#      re-bound to node2; Redis holds it under the new id only;
#   3. invalidated on node2: Redis no longer holds it;
#   4. Redis stopped: the page is still served, the failure counted; Redis
#      back: a new session reaches it;
#   5. the page (HTML, ?json, ?auto) shows the server and its counters.
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
$SIG{ALRM} = sub { die "msm_redis.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $rs = SC::SessionServer->new('redis');
my $port = $rs->port;
sub redis_start { $rs->start }
sub redis_stop { $rs->stop }
sub redis { $rs->redis(@_) }

redis_start();
my $DEMO_SO = demo_module();
my $manager = qq{<Manager className="de.javakaffee.web.msm.MemcachedBackupSessionManager"\n}
            . qq{         memcachedNodes="redis://127.0.0.1:$port" sticky="true"\n}
            . qq{         sessionBackupAsync="true" operationTimeout="5000"\n}
            . qq{         maxInactiveInterval="120" copyCollectionsForSerialization="false"/>\n};
my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => demo_conf($DEMO_SO),
    cluster    => $manager,
);
$c->start_all;
sub base_of { my ($id) = @_; return ($id // '') =~ /^([0-9A-Fa-f]+)\./ ? $1 : 'none' }

# 1
my $r = app($c, 'node1', 'auto');
my $id1 = $r->{cookie} // '';
like($id1, qr/^[0-9A-Fa-f]{32}\.node1$/, '1. a session made on node1') or diag(show($r));
$r = app($c, 'node1', 'auto', $id1);
is($r->{counter}, 2, '1. ... counter 2') or diag(show($r));
my $v;
my $ok = within(5, sub { $v = redis('GET', $id1); defined $v && $v =~ /counter=2/ });
ok($ok, '1. Redis holds it (backed up after the response)') or diag($v // '(none)');
my $pttl = redis('PTTL', $id1) // -9;
# the expiry the module gives the key is its maxInactiveInterval (120): a key
# with none (PTTL -1) or a longer one would outlive the session
ok($pttl > 0, "1. ... the key has an expiry of its own (PTTL $pttl)");
ok($pttl <= 120 * 1000, '1. ... not beyond maxInactiveInterval 120');

# 2
$c->kill9('node1');
$r = app($c, 'node2', 'auto', $id1);
is($r->{counter}, 3, '2. node1 killed: the session continues on node2 (3)') or diag(show($r));
my $id2 = base_of($id1) . '.node2';
is($r->{cookie}, $id2, '2. ... re-bound to node2') or diag(show($r));
$ok = within(5, sub { $v = redis('GET', $id2); defined $v && $v =~ /counter=3/ });
ok($ok, '2. Redis holds it under the new id') or diag($v // '(none)');
ok(!defined redis('GET', $id1), '2. ... not under the old one');

# 3
$r = app($c, 'node2', 'invalidate', $id2);
is($r->{status}, 200, '3. invalidated on node2') or diag(show($r));
ok(!defined redis('GET', $id2), '3. ... Redis no longer holds it');
my ($e0) = SC::Test::kv_line(status_of($c, 'node2')->{SessionServerNode} // '')->{errors} // 0;
$r = app($c, 'node2', 'auto', ('0123456789ABCDEF' x 2) . '.node1');
is($r->{counter}, 1, '3. an id no node holds: a new session') or diag(show($r));
my $p3 = status_of($c, 'node2');
cmp_ok($p3->{SessionServerLoadMissing} // 0, '>=', 1, '3. ... counted as missing');
is(SC::Test::kv_line($p3->{SessionServerNode} // '')->{errors} // 0, $e0, '3. ... not as an error');

# 4
redis_stop();
$r = app($c, 'node2', 'auto');
is($r->{status}, 200, '4. Redis stopped: the page is served') or diag(show($r));
is($r->{counter}, 1, '4. ... with a new session') or diag(show($r));
my $p;
$ok = within(5, sub {
    $p = status_of($c, 'node2') or return 0;
    ($p->{SessionServerBackupFailed} // 0) >= 1;
});
ok($ok, '4. ... the failed backup counted') or diag(explain($p));
redis_start();
my $id4;
$ok = within(15, sub {
    my $x = app($c, 'node2', 'auto');
    $id4 = $x->{cookie};
    return $id4 && within(2, sub { defined redis('GET', $id4) });
});
ok($ok, '4. Redis back: new sessions reach it');

# 5
$p = status_of($c, 'node2');
is($p->{SessionServerBackend}, 'redis', '5. ?auto: SessionServerBackend redis');
like($p->{SessionServerNode} // '', qr/node=redis .*addr=127\.0\.0\.1:$port\b/,
     '5. ?auto: the node, its address') or diag(explain($p));
my ($s, undef, $b) = $c->get('node2', '/cluster-manager?json', timeout => 3);
is($s, 200, '5. ?json: 200');
like($b // "", qr/"session_server_backups": [1-9]/, "5. ?json: the counters");
($s, undef, $b) = $c->get('node2', '/cluster-manager', timeout => 3);
is($s, 200, '5. HTML: 200');
like($b // '', qr/Session server/, '5. HTML: the section');
($s, undef, $b) = $c->get('node2', '/cluster-manager?format=prometheus', timeout => 3);
like($b // '', qr/^session_cluster_session_server_backups_total\{route="node2"\} [1-9]/m,
     '5. Prometheus: the counters');
like($b // '', qr/^session_cluster_session_server_node_sets_total\{route="node2",session_server_node="redis"\} [1-9]/m,
     '5. Prometheus: the node\'s counters, labelled by node');
ok(!$c->problems, 'no crash') or diag(join "\n", $c->problems);

done_testing;
