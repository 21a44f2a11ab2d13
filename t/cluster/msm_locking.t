#!perl
# The session server as the store with msm's lockingMode (issue 19): two
# members, sticky="false", no <Cluster> block.
#   1. memcached, lockingMode="all": parallel clients increment one session's
#      counter on both members for a bounded time; the final counter is 1 +
#      the number of increments that succeeded (no update lost), each
#      request took the lock (SessionServerLocks), none is left on memcached;
#   2. a lock held by someone else ("lock:<id>" added on memcached by the
#      test): the request waits operationTimeout, then 503 with Retry-After,
#      the session unchanged; counted (SessionServerLockTimeouts) and logged
#      (SC1714);
#   3. Redis, lockingMode="uriPattern:GET /app\?auto" (graceful restart): the
#      same load on the matching URI loses no update either (SET NX PX, and
#      the compare-and-delete release); on a URI outside the pattern the
#      requests take no lock (SessionServerLocks unchanged,
#      SessionServerLockNotRequired counts them); what the unlocked load
#      loses is printed, not asserted (it depends on timing);
#   4. memcached, lockingMode="auto" (graceful restart): a request id not seen
#      before takes the lock; one seen to leave the session unchanged (GET
#      /app?read) does not the next time (SessionServerLockNotRequired,
#      AutoReadOnly); one that changes it (GET /app?auto) always does
#      (AutoModifying), and parallel clients on it lose no update.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use POSIX ();
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::SessionServer;
use SC::Test qw(status_of app demo_module demo_conf show);
SC::Test::dump_options(tail => 20, cut => 300);

my $LIMIT = 60;
$SIG{ALRM} = sub { die "msm_locking.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $mc = SC::SessionServer->new('memcached');
my $rs = SC::SessionServer->new('redis');
$mc->start;
$rs->start;
my $DEMO_SO = demo_module();

sub manager {
    my ($nodes, $mode) = @_;
    return qq{<Manager className="de.javakaffee.web.msm.MemcachedBackupSessionManager"\n}
         . qq{         memcachedNodes="$nodes" sticky="false" lockingMode="$mode"\n}
         . qq{         sessionBackupTimeout="3000" operationTimeout="1500"/>\n};
}

my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => demo_conf($DEMO_SO),
    cluster    => manager('n1:127.0.0.1:' . $mc->port, 'all'),
);
$c->start_all;

# $clients processes, each for $secs: GET /app?$query with the session,
# alternating between the members; (increments that succeeded, other answers)
sub load {
    my ($id, $query, $clients, $secs) = @_;
    my @kids;
    for my $k (1 .. $clients) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $rd;
            my ($ok, $other, $i) = (0, 0, $k);
            my $end = time + $secs;
            while (time < $end) {
                my $r = app($c, $i++ % 2 ? 'node1' : 'node2', $query, $id, timeout => 10);
                if ($r->{status} == 200 && defined $r->{counter}) { $ok++ }
                else { $other++ }
            }
            print $wr "$ok $other\n";
            close $wr;
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    my ($ok, $other) = (0, 0);
    for (@kids) {
        my ($pid, $rd) = @$_;
        my $l = <$rd> // '0 0';
        waitpid $pid, 0;
        my ($a, $b) = split ' ', $l;
        $ok += $a;
        $other += $b;
    }
    return ($ok, $other);
}

sub sum_pages {
    my ($k) = @_;
    my $n = 0;
    $n += status_of($c, $_)->{$k} // 0 for qw(node1 node2);
    return $n;
}

# 1
my $r = app($c, 'node1', 'auto');
my $id = $r->{cookie} // '';
is($r->{counter}, 1, '1. a session made on node1') or diag(show($r));
my $locks0 = sum_pages('SessionServerLocks');
my ($ok, $other) = load($id, 'auto', 4, 1.5);
$r = app($c, 'node2', 'read', $id);
note("lockingMode=all: $ok increments, $other other answers, final counter "
     . ($r->{counter} // '?'));
cmp_ok($ok, '>', 10, '1. the parallel clients made increments');
is($r->{counter}, 1 + $ok, '1. lockingMode="all": the counter is 1 + the increments that '
   . 'succeeded (no update lost)') or diag(show($r));
cmp_ok(sum_pages('SessionServerLocks') - $locks0, '>=', $ok,
       '1. ... every request took the lock (SessionServerLocks)');
ok(!defined $mc->get("lock:$id"), '1. ... and no lock is left on memcached');
my $p = status_of($c, 'node1');
is($p->{SessionServerLockingMode}, 'all', '1. the page: SessionServerLockingMode all');

# 2
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $mc->port, Timeout => 2);
    print $s "add lock:$id 0 30 5\r\nother\r\n";
    my $l = <$s> // '';
    is($l, "STORED\r\n", '2. a lock of another holder on memcached');
}
my $t0 = time;
$r = app($c, 'node1', 'auto', $id, timeout => 10);
my $waited = time - $t0;
is($r->{status}, 503, '2. the request gets 503') or diag(show($r));
is($r->{headers}{"retry-after"}, "1", "2. ... with Retry-After") or diag(show($r), join(" ", %{$r->{headers}}));
cmp_ok($waited, '>=', 1.4, sprintf('2. ... after waiting operationTimeout (%.2f s)', $waited));
is($mc->get("lock:$id"), 'other', '2. ... the other holder\'s lock is left alone');
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $mc->port, Timeout => 2);
    print $s "delete lock:$id\r\n";
    <$s>;
}
$r = app($c, 'node2', 'read', $id);
is($r->{counter}, 1 + $ok, '2. the session is unchanged') or diag(show($r));
cmp_ok(sum_pages('SessionServerLockTimeouts'), '>=', 1,
       '2. the page counts it (SessionServerLockTimeouts)');
ok(SC::Cluster::wait_for(sub {
       $c->error_log('node1') =~ /SC1714: session \Q$id\E: its lock /
   }, timeout => 5), '2. ... and logs it (SC1714, at most one line every 10 s)');

# 3
my $pattern = 'uriPattern:GET /app\?auto';
for my $n (qw(node1 node2)) {
    $c->configure($n, cluster => manager('redis://127.0.0.1:' . $rs->port, $pattern));
    $c->graceful($n);
}
$r = app($c, 'node1', 'auto');
$id = $r->{cookie} // '';
is($r->{counter}, 1, '3. Redis, uriPattern: a session made on node1') or diag(show($r));
($ok, $other) = load($id, 'auto', 4, 1.5);
$r = app($c, 'node2', 'read', $id);
note("uriPattern, matching URI: $ok increments, $other other answers, final counter "
     . ($r->{counter} // '?'));
cmp_ok($ok, '>', 10, '3. the parallel clients made increments');
is($r->{counter}, 1 + $ok, '3. a URI the pattern matches: no update lost') or diag(show($r));
ok(!defined $rs->redis('GET', "lock:$id"), '3. ... no lock left on Redis');
my $before = $r->{counter};
$locks0 = sum_pages('SessionServerLocks');
my $nl0 = sum_pages('SessionServerLockNotRequired');
($ok, $other) = load($id, 'auto&unlocked', 4, 1.5);
$r = app($c, 'node2', 'read', $id);
note("uriPattern, URI outside: $ok increments, $other other answers, counter from $before to "
     . ($r->{counter} // '?') . ': ' . ($before + $ok - ($r->{counter} // 0))
     . ' updates lost without the lock');
is(sum_pages('SessionServerLocks') - $locks0, 0,
   '3. a URI outside the pattern takes no lock (SessionServerLocks unchanged)');
cmp_ok(sum_pages('SessionServerLockNotRequired') - $nl0, '>=', $ok + $other,
       '3. ... each such request counted (SessionServerLockNotRequired)');
(my $shown = $pattern) =~ s/\\/\\\\/g;     # the page escapes '\'
is(status_of($c, 'node2')->{SessionServerLockingMode}, $shown,
   '3. the page: SessionServerLockingMode');

# 4
for my $n (qw(node1 node2)) {
    $c->configure($n, cluster => manager('n1:127.0.0.1:' . $mc->port, 'auto'));
    $c->graceful($n);
}
$r = app($c, 'node1', 'auto');
$id = $r->{cookie} // '';
is($r->{counter}, 1, '4. lockingMode="auto": a session made on node1') or diag(show($r));
sub page1 { status_of($c, 'node1')->{$_[0]} // 0 }
$locks0 = page1('SessionServerLocks');
$nl0 = page1('SessionServerLockNotRequired');
$r = app($c, 'node1', 'read', $id);
is($r->{counter}, 1, '4. GET /app?read') or diag(show($r));
is(page1('SessionServerLocks') - $locks0, 1, '4. ... not seen before: it took the lock');
ok(SC::Cluster::wait_for(sub { page1('SessionServerAutoReadOnly') >= 1 }, timeout => 5),
   '4. ... it left the session unchanged: taken for read-only (AutoReadOnly)');
$r = app($c, 'node1', 'read', $id);
is($r->{counter}, 1, '4. GET /app?read again') or diag(show($r));
is(page1('SessionServerLocks') - $locks0, 1, '4. ... takes no lock now');
is(page1('SessionServerLockNotRequired') - $nl0, 1, '4. ... counted (LockNotRequired)');
$r = app($c, 'node1', 'auto', $id) for 1 .. 3;
is($r->{counter}, 4, '4. GET /app?auto three times') or diag(show($r));
is(page1('SessionServerLocks') - $locks0, 4, '4. ... each took the lock (it changes the session)');
ok(SC::Cluster::wait_for(sub { page1('SessionServerAutoModifying') >= 3 }, timeout => 5),
   '4. ... AutoModifying');
($ok, $other) = load($id, 'auto', 4, 1.5);
$r = app($c, 'node2', 'read', $id);
note("auto, GET /app?auto: $ok increments, $other other answers, final counter "
     . ($r->{counter} // '?'));
cmp_ok($ok, '>', 10, '4. the parallel clients made increments');
is($r->{counter}, 4 + $ok, '4. lockingMode="auto": no update lost') or diag(show($r));
is(page1('SessionServerLockingMode'), 'auto', '4. the page: SessionServerLockingMode auto');
ok(!$c->problems, 'no crash') or diag(join "\n", $c->problems);

done_testing;
