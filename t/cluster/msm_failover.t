#!perl
# The session server's nodes (issue 19): msm's <Manager> on two memcached
# nodes, m2 a failover node (msm's failoverNodes: used only when the others
# are gone), two members, no <Cluster>.  With several memcached nodes the
# session id carries msm's node id: <hex>-<node>.<route>.
#   1. a session made on node1: its id names m1, the regular node, and it is
#      backed up there (memcached asked directly), not to m2;
#   2. m1 killed: the session moves to m2: the same hex and route with m2 in
#      its id (a new cookie), m2 holds it under that id and nothing under the
#      old one; m1 is skipped for a second, then tried again; its failures are
#      logged once (SC1700 at a rate limit) and m1 is down on the page;
#   3. kill -9 of node1: node2 finds the session on m2 (the node its id names)
#      and goes on with its counter, re-bound to node2, still on m2;
#   4. m1 back: once its second of rest is over, the session moves back to m1
#      at its next save (a failover node is used only while the others are
#      gone; msm itself moves it off only when another member takes it over);
#   5. untrusted ids: a node id that names no node is ignored (the session is
#      found by its hex, as with a wrong route, and the client learns its id);
#      an unknown hex, or a node id too long: a new session, on m1;
#   6. non-sticky (sticky="false", m1 and m2 both regular): msm's secondary
#      copy: a session written on its node is also on the other one under
#      "bak:<id>"; its node killed, the next request (on the other member)
#      reads the copy and goes on with its counter, the session then lives on
#      the other node (its id names it, the old copy and its "bak:" gone), and
#      the first member goes on with it too;
#   7. the killed node back (empty): the copy goes to it again; the session's
#      node restarted (empty, never seen down): the next request reads the
#      copy and goes on (msm reads it only when the node is down); a request
#      that only reads it touches the copy too.
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
$SIG{ALRM} = sub { die "msm_failover.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my %mc = map { $_ => SC::SessionServer->new('memcached') } qw(m1 m2);
my %port = map { $_ => $mc{$_}->port } keys %mc;
sub mc_start { $mc{ $_[0] }->start }
sub mc_stop { $mc{ $_[0] }->stop }
sub mc_get { my ($n, $key) = @_; return $mc{$n}->get($key) }

mc_start($_) for qw(m1 m2);
my $DEMO_SO = demo_module();
my $manager = qq{<Manager className="de.javakaffee.web.msm.MemcachedBackupSessionManager"\n}
            . qq{         memcachedNodes="m1:127.0.0.1:$port{m1} m2:127.0.0.1:$port{m2}"\n}
            . qq{         failoverNodes="m2" sessionBackupTimeout="5000" operationTimeout="5000"/>\n};
my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => demo_conf($DEMO_SO),
    cluster    => $manager,
);
$c->start_all;

sub rows {
    my ($n) = @_;
    my (undef, undef, $b) = $c->get($n, '/cluster-manager?auto', timeout => 3);
    return { map { my $r = kv_line($_); ($r->{node} => $r) }
             ($b // '') =~ /^SessionServerNode: (.*)$/mg };
}

# 1
my $r = app($c, 'node1', 'auto');
my $id = $r->{cookie} // '';
like($id, qr/^[0-9A-F]{32}-m1\.node1$/, '1. a session made on node1: its id names m1')
    or diag(show($r));
my ($hex) = $id =~ /^([0-9A-F]{32})/;
$hex //= 'none';
like(mc_get('m1', $id) // '', qr/counter=1\b/, '1. backed up to m1 under that id');
ok(!defined mc_get('m2', $id), '1. ... not to m2, the failover node');
my $rw = rows('node1');
is($rw->{m2}{role}, 'failover', '1. the page: m2 is a failover node') or diag(explain($rw));

# 2
mc_stop('m1');
my $off = length $c->error_log('node1');
my $old = $id;
my @moved;
for my $i (2 .. 6) {
    # (after request 4, m1's second of rest is over: request 5 tries it again)
    sleep 1.2 if $i == 5;
    $r = app($c, 'node1', 'auto', $id);
    is($r->{counter}, $i, "2. m1 killed: request $i served") or diag(show($r));
    if (defined $r->{cookie}) {
        push @moved, $r->{cookie};
        $id = $r->{cookie};
    }
}
is($moved[0] // '', "$hex-m2.node1", '2. ... the session moved to m2: its id names m2 (new cookie)');
is($id, "$hex-m2.node1", '2. ... and stays there (the id the client has last)');
like(mc_get('m2', $id) // '', qr/counter=6\b/, '2. ... m2 holds it under that id');
ok(!defined mc_get('m2', $old), '2. ... and nothing under the old id');
my $lines = () = substr($c->error_log('node1'), $off) =~ /SC1700: session server m1 /g;
is($lines, 1, '2. ... the failure of m1 logged once (a rate limit), not per request');
like(substr($c->error_log('node1'), $off), qr/SC1717: session \Q$old\E moved to another session server node: \Q$hex\E-m2\.node1/,
     '2. ... the move logged (SC1717)');
$rw = rows('node1');
is($rw->{m1}{state}, 'down', '2. the page: m1 down') or diag(explain($rw));
cmp_ok($rw->{m1}{errors} // 0, '>=', 2, '2. ... it failed twice (tried again after its rest)');
cmp_ok($rw->{m1}{skipped} // 0, '>=', 1, '2. ... skipped while down, not waited for');

# 3
$c->kill9('node1');
$r = app($c, 'node2', 'auto', $id);
is($r->{counter}, 7, '3. node1 killed: node2 finds the session on m2 and goes on (7)')
    or diag(show($r));
$id = $r->{cookie} // $id;
is($id, "$hex-m2.node2", '3. ... re-bound to node2, still on m2');
like(mc_get('m2', $id) // '', qr/counter=7\b/, '3. ... m2 holds it under that id');

# 4
mc_start('m1');
my $ok = within(15, sub {
    my $x = app($c, 'node2', 'auto', $id);
    $id = $x->{cookie} // $id;
    return $x->{status} == 200 && $id eq "$hex-m1.node2" && defined mc_get('m1', $id);
});
ok($ok, "4. m1 back: the session moves back to m1 ($id)");
ok(!defined mc_get('m2', "$hex-m2.node2"), '4. ... m2 no longer holds it');
$rw = rows('node2');
is($rw->{m1}{state}, 'up', '4. the page: m1 up') or diag(explain($rw));

# 5
my $before = app($c, 'node2', 'read', $id)->{counter} // 0;
$r = app($c, 'node2', 'auto', "$hex-nosuch.node2");
is($r->{counter}, $before + 1, '5. a cookie whose node id names no node: ignored, the session '
   . 'is found by its hex (as a wrong route is)') or diag(show($r));
is($r->{cookie} // '', $id, '5. ... and the client learns its id') or diag(show($r));
for my $bad ('0123456789ABCDEF0123456789ABCDEF-nosuch.node2',
             "$hex-" . ('n' x 17) . '.node2') {
    $r = app($c, 'node2', 'auto', $bad);
    is($r->{counter}, 1, "5. a cookie $bad: a new session") or diag(show($r));
    like($r->{cookie} // '', qr/^[0-9A-F]{32}-m1\.node2$/, '5. ... whose id names m1');
}

# 6
my $ns = qq{<Manager className="de.javakaffee.web.msm.MemcachedBackupSessionManager"\n}
       . qq{         memcachedNodes="m1:127.0.0.1:$port{m1} m2:127.0.0.1:$port{m2}"\n}
       . qq{         sticky="false" sessionBackupTimeout="5000" operationTimeout="5000"/>\n};
$c->configure($_, cluster => $ns) for qw(node1 node2);
$c->start('node1');
$c->graceful('node2');
$r = app($c, 'node1', 'auto');
$id = $r->{cookie} // '';
my ($own) = $id =~ /^[0-9A-F]{32}-(m[12])\.node1$/;
ok($own, "6. non-sticky: a session made on node1 ($id)") or diag(show($r));
$own //= 'm1';
my $other = $own eq 'm1' ? 'm2' : 'm1';
($hex) = $id =~ /^([0-9A-F]{32})/;
$hex //= 'none';
$r = app($c, 'node2', 'auto', $id);
$r = app($c, 'node1', 'auto', $id);
is($r->{counter}, 3, '6. ... alternating between the members (3)') or diag(show($r));
like(mc_get($own, $id) // '', qr/counter=3\b/, "6. ... $own, its node, holds it");
like(mc_get($other, "bak:$id") // '', qr/counter=3\b/,
     "6. ... and $other its secondary copy (bak:<id>), up to date");
mc_stop($own);
$off = length $c->error_log('node2');
$r = app($c, 'node2', 'auto', $id);
is($r->{counter}, 4, "6. $own killed: node2 goes on with the session (4), read from bak:")
    or diag(show($r));
is($r->{cookie} // '', "$hex-$other.node1", "6. ... it moves to $other: its id names it")
    or diag(show($r));
my $nid = $r->{cookie} // $id;
like(mc_get($other, $nid) // '', qr/counter=4\b/, "6. ... $other holds it under that id");
ok(!defined mc_get($other, "bak:$id"), '6. ... the secondary copy of the old id is gone');
like(substr($c->error_log('node2'), $off),
     qr/SC1719: session \Q$id\E: its session server node $own is down .*: read from its secondary copy on $other/,
     '6. ... logged (SC1719)');
$r = app($c, 'node1', 'auto', $nid);
is($r->{counter}, 5, '6. node1 goes on with it too (5)') or diag(show($r));

# 7
mc_start($own);
my $n = 5;
$ok = within(10, sub {
    sleep 0.1;                        # (node1 rests $own for a second)
    my $x = app($c, 'node1', 'auto', $nid);
    $n = $x->{counter} if defined $x->{counter};
    return defined $x->{counter} && (mc_get($own, "bak:$nid") // '') =~ /counter=$n\b/;
});
ok($ok, "7. $own back: the secondary copy goes to it again ($n)");
mc_stop($other);
mc_start($other);
$off = length $c->error_log('node2');
$r = app($c, 'node2', 'auto', $nid);
is($r->{counter}, $n + 1, "7. $other, its node, restarted empty: the session goes on from the copy")
    or diag(show($r));
ok(!defined $r->{cookie}, '7. ... and stays on it (the same id)') or diag(show($r));
like(mc_get($other, $nid) // '', qr/counter=@{[$n + 1]}\b/, "7. ... $other holds it again");
like(substr($c->error_log('node2'), $off),
     qr/SC1719: session \Q$nid\E: its session server node $other does not hold it/,
     '7. ... logged (SC1719)');
$r = app($c, 'node2', 'read', $nid);
is($r->{counter}, $n + 1, '7. a request that only reads it') or diag(show($r));
my $p;
ok(within(5, sub { $p = status_of($c, 'node2'); ($p->{SessionServerSecondaryTouches} // 0) >= 1 }),
   '7. ... pushes its copy\'s expiry back too (SecondaryTouches)') or diag(explain($p));
cmp_ok($p->{SessionServerSecondaryLoaded} // 0, '>=', 2, '7. the page: SecondaryLoaded counted');
cmp_ok($p->{SessionServerSecondaryBackups} // 0, '>=', 1, '7. ... and SecondaryBackups')
    or diag(explain($p));
ok(!$c->problems, 'no crash') or diag(join "\n", $c->problems);

done_testing;
