#!perl
# A replay whose member refuses the connection goes on to the next member
# (issue 20's replay, issue 22's review): the front's replay loop takes
# mod_proxy's own 503 for a connection it could not make (the worker put in
# error during the attempt, no Session-Cluster-Change in the answer) as a
# failure before any byte, and sends the request on; after the replays, what
# still fails is answered 502, never 503 (mod_proxy would put the first
# worker in error for a 503 and try the balancer again).
# A front (BalancerMembers route=node1..node3, retry=300) and three members,
# node1 and node2 in the Membership's domain "east", node3 in "west"
# (failover goes to the failed member's domain first: the replay's first
# target is node2, deterministically).  A session made on node1 is held by
# node2 and node3.  The front's engine is frozen (SIGSTOP): its children
# route by what it last published, every member alive and ready; node2 is
# killed (its HTTP port refuses connections while the front still takes it
# for ready).  node1 is frozen with a GET of the session unread and killed:
# the front sends the GET again to node2 (its domain), whose connection is
# refused, then to node3, which answers 200 with the counter one up,
# re-bound to route node3.  The front's log says SC1661 twice (node1 ->
# node2, then node2 -> node3: "could not be reached (503)"), FrontReplays is
# two more, FrontReplaysFailed unchanged, and node2's worker is in error on
# the front (mod_proxy put it there: the loop took that as the refusal).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVTIMEO);
use SC::Cluster;
use SC::KeepAlive;
use SC::Test qw(worker_ok body_field status_of check within app show demo_module demo_conf balancer_member status_has
                session_on valid_sid unread_bytes);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 120;
$SIG{ALRM} = sub { die "front_replay_refused.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my %domain = (node1 => 'east', node2 => 'east', node3 => 'west');
my %FRONT = (retry => 300, connectiontimeout => 5, timeout => 60);
my $c = SC::Cluster->new(
    members    => 3,
    front      => { name => 'front', %FRONT },
    loglevel   => 'info',
    extra_conf => demo_conf(demo_module()),
    cluster    => sub {
        my ($m, $all) = @_;
        my %mb = (dropTime => 5000);
        $mb{domain} = $domain{ $m->{name} } if $domain{ $m->{name} };
        return SC::Cluster::static_block($m, $all, membership => \%mb);
    },
);
my $F = $c->front;
SC::Test::dump_options(extra => SC::Test::front_extra($F));
$c->start_all;

sub front_page { status_of($c, $F) || {} }

my @routes = qw(node1 node2 node3);
check(within(30, sub {
    my $p = status_of($c, $F) or return 0;
    my %dom = map { ($_->{route} // '') => ($_->{domain} // '') } @{ $p->{members} || [] };
    return !grep { !worker_ok(balancer_member($p, $_)) || $dom{$_} ne $domain{$_} } @routes;
}), $c, 'the front shows the three BalancerMembers Ok, and their domains (east, east, west)');

my $id = app($c, 'node1', 'auto')->{cookie};
my $r = app($c, 'node1', 'auto', $id);
check(valid_sid($id, 'node1') && ($r->{counter} // '') eq '2', $c, 'a session made on node1 (counter 2)', show($r));
my $v = (session_on($c, 'node1', $id) || {})->{SessionVersion} // 'none';
check(within(20, sub { !grep { ((session_on($c, $_, $id) || {})->{SessionVersion} // '') ne $v } qw(node2 node3) }),
      $c, "... held at version $v by node2 and node3");

my $front_engine = front_page()->{EnginePid};
check(defined $front_engine && $front_engine =~ /^\d+$/ && $front_engine > 1, $c,
      "the front's engine pid ($front_engine)");
my $p0 = front_page();
my ($replays, $failed) = ($p0->{FrontReplays} // 0, $p0->{FrontReplaysFailed} // 0);

# the front's view held as it is: every member alive and ready
SC::Cluster::freeze_pids($front_engine) or die "SIGSTOP $front_engine: $!";
my $port2 = $c->member('node2')->{http_port};
$c->kill9('node2');
sub refused { my $s = IO::Socket::INET->new(PeerAddr => $c->member('node2')->{addr}, PeerPort => $port2,
                                            Proto => 'tcp', Timeout => 2);
              return !$s }
check(within(10, \&refused), $c, "node2 killed: its HTTP port refuses connections");
check(worker_ok(balancer_member(front_page(), 'node2')), $c,
      "... while the front still shows node2's worker Ok (its engine frozen)");

my $off = length $c->error_log($F);
$c->sigstop('node1');
my $port1 = $c->member('node1')->{http_port};
my $before = unread_bytes($port1);
my $sock = IO::Socket::INET->new(PeerAddr => $c->member($F)->{addr}, PeerPort => $c->member($F)->{http_port},
                                 Proto => 'tcp', Timeout => 30) or die "connect to the front: $!";
setsockopt($sock, SOL_SOCKET, SO_RCVTIMEO, pack('l!l!', 30, 0));
print {$sock} "GET /app?auto HTTP/1.1\r\nHost: localhost\r\nCookie: JSESSIONID=$id\r\n\r\n";
ok(within(10, sub { unread_bytes($port1) > $before }), 'node1 holds the GET unread (frozen)');
$c->kill9('node1');
my ($s, $h, $b) = SC::KeepAlive::read_response($sock);
my $log = substr($c->error_log($F), $off);
is($s, 200, 'node1 killed, node2 refusing: the GET is answered 200') or diag($b, "\n", $log);
is(body_field($b, 'Route'), 'node3', '... by node3');
is(body_field($b, 'Counter'), 3, '... with the counter one up (3)');
my ($new) = ($h->{'set-cookie'} // '') =~ /JSESSIONID=([^;,\s]+)/;
ok(defined $new && $new =~ /\.node3$/, '... re-bound to route node3') or diag($h->{'set-cookie'} // '(no Set-Cookie)');
like($log, qr/SC1661: SessionClusterBalancer: GET \/app\S* failed on \S+ \(route node1\): [^;]*; sent again to \S+ \(route node2\)/,
     'the front logs SC1661: failed on node1, sent again to node2 (its domain)');
like($log, qr/SC1661: SessionClusterBalancer: GET \/app\S* failed on \S+ \(route node2\): its member could not be reached \(503\); sent again to \S+ \(route node3\)/,
     'the front logs SC1661: node2 could not be reached (503), sent again to node3');
my $p = front_page();
is($p->{FrontReplays}, $replays + 2, 'FrontReplays two more (one request, two replays)');
is($p->{FrontReplaysFailed} // 0, $failed, 'FrontReplaysFailed unchanged');
ok(status_has((balancer_member($p, 'node2') || {})->{status}, 'Err'),
   "node2's worker is in error on the front (mod_proxy's, from the refused connection)")
    or diag((balancer_member($p, 'node2') || {})->{status} // '(no node2 worker)');

kill 'CONT', $front_engine;
$c->teardown;
done_testing();
