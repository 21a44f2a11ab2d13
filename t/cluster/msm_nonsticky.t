#!perl
# The session server as the store (issue 19): msm's <Manager> with
# sticky="false" on Redis, no <Cluster> block, two members that know nothing
# of each other; every request reads the session from Redis and writes it back.
#   1. requests alternating between the members, one after another: the
#      counter never loses an update (1..12), the id keeps its route (no
#      re-binding), Redis holds the last version;
#   2. a change written to Redis behind the members' backs is what the next
#      request sees, on either member (the member's own copy is not trusted);
#   3. invalidated on node2: node1 does not serve it again (a new session);
#   4. Redis stopped: the client gets an error, never an empty or a new
#      session; Redis back: the session continues where it was.
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
$SIG{ALRM} = sub { die "msm_nonsticky.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $rs = SC::SessionServer->new('redis');
my $port = $rs->port;
sub redis_start { $rs->start }
sub redis_stop { $rs->stop }
sub redis { $rs->redis(@_) }

redis_start();
my $DEMO_SO = demo_module();
my $manager = qq{<Manager className="de.javakaffee.web.msm.MemcachedBackupSessionManager"\n}
            . qq{         memcachedNodes="redis://127.0.0.1:$port" sticky="false"\n}
            . qq{         lockingMode="none" sessionBackupTimeout="5000" operationTimeout="5000"/>\n};
my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => demo_conf($DEMO_SO),
    cluster    => $manager,
);
$c->start_all;

# 1
my $r = app($c, 'node1', 'auto');
my $id = $r->{cookie} // '';
like($id, qr/^[0-9A-Fa-f]{32}\.node1$/, '1. a session made on node1') or diag(show($r));
my @seen = ($r->{counter} // 0);
my @ids;
for my $i (2 .. 12) {
    my $n = $i % 2 ? 'node1' : 'node2';
    $r = app($c, $n, 'auto', $id);
    push @seen, $r->{counter} // "status $r->{status}";
    push @ids, $r->{cookie} if defined $r->{cookie};
}
is("@seen", join(' ', 1 .. 12), '1. alternating between the members: no update lost');
is(scalar(@ids), 0, '1. ... and the id never changes (no Set-Cookie)') or diag("@ids");
like(redis('GET', $id) // '', qr/counter=12\b/, '1. Redis holds the last version');

# 2
my $v = redis('GET', $id) // '';
(my $w = $v) =~ s/counter=12\b/counter=100/;
is(redis('SET', $id, $w), 'OK', '2. counter set to 100 in Redis behind the members\' backs');
$r = app($c, 'node1', 'auto', $id);
is($r->{counter}, 101, '2. node1 sees it (101)') or diag(show($r));
$r = app($c, 'node2', 'auto', $id);
is($r->{counter}, 102, '2. node2 too (102)') or diag(show($r));

# 3
$r = app($c, 'node2', 'invalidate', $id);
is($r->{status}, 200, '3. invalidated on node2') or diag(show($r));
ok(!defined redis('GET', $id), '3. ... Redis no longer holds it');
$r = app($c, 'node1', 'auto', $id);
is($r->{counter}, 1, '3. node1, which held a copy, does not serve it again: a new session')
    or diag(show($r));
isnt($r->{cookie} // $id, $id, '3. ... with a new id');
$id = $r->{cookie} // $id;
$r = app($c, 'node2', 'auto', $id);
is($r->{counter}, 2, '3. the new session goes on on node2 (2)') or diag(show($r));

# 4
redis_stop();
$r = app($c, 'node1', 'auto', $id);
isnt($r->{status}, 200, "4. Redis stopped: an error ($r->{status})") or diag(show($r));
ok(!defined $r->{counter}, '4. ... never a page with an empty or a new session') or diag(show($r));
redis_start();
# the new redis is empty: put the session back as it was
my $ok = within(15, sub {
    $r = app($c, 'node2', 'auto', $id);
    return $r->{status} == 200;
});
ok($ok, '4. Redis back (empty): requests are served again') or diag(show($r));
is($r->{counter}, 1, '4. ... the session Redis lost starts again (1), not an old copy')
    or diag(show($r));
my $p = status_of($c, 'node1');
is($p->{SessionServerMode}, 'non-sticky', '4. the page: SessionServerMode non-sticky');
cmp_ok($p->{SessionServerLoadFailed} // 0, '>=', 1, '4. ... the failed load counted');
ok(!$c->problems, 'no crash') or diag(join "\n", $c->problems);

done_testing;
