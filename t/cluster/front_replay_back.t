#!perl
# A replay that fails too comes back to the first member (issue 22's CI saw
# front_failover.t answer one GET 502 so): a GET failed on its member with
# no answer (a kept connection the member closed as the request went out:
# its MPM does so when its workers run short), was sent again to the only
# other member, frozen and not yet suspect, and cut there once the cluster
# held it suspect; with every member tried once, the front answered 502 while
# the first member was alive, ready and able to answer.
#
# A front (SessionClusterBalancer) and two members.  The front reaches node1
# through a small relay of this test's that, once armed, closes the
# connection of the next request it sees without passing it on (what a
# member's close of a kept connection looks like to the front), then passes
# everything on again.  A session made on node1, held by node2; the relay
# armed; node2 frozen (alive to the front until its dropTime); a GET through
# the front.  Asserted: 200 with the counter one up, served by node1; the
# front's log says SC1661 twice (node1 -> node2 with no answer, node2 ->
# node1 with node2's connection cut once the cluster held it suspect),
# FrontReplays two more; the relay closed one request unanswered.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep);
use SC::Cluster;
use SC::Test qw(worker_ok body_field status_of check within app show demo_module demo_conf balancer_member
                session_on valid_sid);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 120;
$SIG{ALRM} = sub { die "front_replay_back.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $relay_port = SC::Cluster::free_port();
my %FRONT = (retry => 300, connectiontimeout => 5, timeout => 60);
my $c = SC::Cluster->new(
    members     => 2,
    front       => { name => 'front', %FRONT },
    member_opts => { front => { extra_conf => sub {
        my ($f, $all) = @_;
        my $x = SC::Cluster::front_conf($f, $all, %FRONT);
        my ($n1) = grep { $_->{name} eq 'node1' } @$all;
        # node1's BalancerMember goes through the relay (same route)
        $x =~ s{http://\Q$n1->{addr}\E:$n1->{http_port} route=node1}{http://127.0.0.1:$relay_port route=node1}
            or die "front_conf: node1's BalancerMember not found\n";
        return $x;
    } } },
    loglevel    => 'info',
    extra_conf  => demo_conf(demo_module()),
    # node2 stays alive to the front for 8 s after its freeze: the first
    # replay must find it so, under a loaded machine too
    cluster     => sub { SC::Cluster::static_block($_[0], $_[1], membership => { dropTime => 8000 }) },
);
my $F = $c->front;
SC::Test::dump_options(extra => SC::Test::front_extra($F));

# the relay: every connection passed on to node1; while the arm file exists,
# the next data from a client connection (a request) closes that connection
# unanswered and removes the file
my $arm = $c->base_dir . '/relay-arm';
my $log = $c->base_dir . '/relay.log';
my $relay = <<'PERL';
use strict; use warnings; use IO::Socket::INET; use IO::Select;
my ($port, $to_port, $arm) = @ARGV; $| = 1;
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 64,
                              ReuseAddr => 1) or die "listen $port: $!";
print "listening\n";
my $sel = IO::Select->new($l); my (%peer, %client);
sub drop { my ($s) = @_; my $p = delete $peer{$s}; delete $client{$s};
           $sel->remove($s); close $s;
           if ($p) { delete $peer{$p}; delete $client{$p}; $sel->remove($p); close $p } }
while (1) {
    for my $s ($sel->can_read) {
        if ($s == $l) {
            my $a = $l->accept or next;
            my $b = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $to_port, Proto => 'tcp');
            if (!$b) { print "NOCONNECT\n"; close $a; next }
            $peer{$a} = $b; $peer{$b} = $a; $client{$a} = 1; $sel->add($a); $sel->add($b);
            next;
        }
        next unless $peer{$s};
        my $r = sysread($s, my $buf, 65536);
        if (!$r) { drop($s); next }
        if ($client{$s} && unlink $arm) { print "CUT\n"; drop($s); next }
        my $off = 0;
        while ($off < length $buf) {
            my $w = syswrite($peer{$s}, $buf, length($buf) - $off, $off);
            if (!defined $w) { drop($s); last }
            $off += $w;
        }
    }
}
PERL
my $h = $c->spawn(undef, { out => $log }, $^X, '-e', $relay, $relay_port,
                  $c->member('node1')->{http_port}, $arm);
sub slurp { open my $fh, '<', $_[0] or return ''; local $/; return <$fh> // '' }
check(within(10, sub { slurp($log) =~ /listening/ }), $c, 'the relay to node1 listens');

$c->start_all;
sub front_page { status_of($c, $F) || {} }
check(within(30, sub { my $p = front_page(); !grep { !worker_ok(balancer_member($p, $_)) } qw(node1 node2) }),
      $c, 'the front shows node1 and node2 Ok');

my $id = app($c, 'node1', 'auto')->{cookie};
my $r = app($c, 'node1', 'auto', $id);
check(valid_sid($id, 'node1') && ($r->{counter} // '') eq '2', $c, 'a session made on node1 (counter 2)', show($r));
my $v = (session_on($c, 'node1', $id) || {})->{SessionVersion} // 'none';
check(within(20, sub { ((session_on($c, 'node2', $id) || {})->{SessionVersion} // '') eq $v }), $c,
      "... held at version $v by node2");
my ($s0, undef, $b0) = $c->get($F, '/app?read', headers => { Cookie => "JSESSIONID=$id" }, timeout => 10);
check($s0 == 200 && (body_field($b0, 'Route') // '') eq 'node1', $c,
      'a GET through the front reaches node1 through the relay', "status $s0\n$b0");

my $replays = front_page()->{FrontReplays} // 0;
my $off = length $c->error_log($F);
open my $af, '>', $arm or die "$arm: $!";
close $af;
$c->sigstop('node2');
my ($s, undef, $b) = $c->get($F, '/app?auto', headers => { Cookie => "JSESSIONID=$id" }, timeout => 30);
my $log_now = substr($c->error_log($F), $off);
is($s, 200, 'a GET closed unanswered on node1, then sent to node2 (frozen) and cut there, is answered 200')
    or diag("$b\n--- the front's log:\n$log_now");
is(body_field($b, 'Counter'), 3, '... with the counter one up (3)');
is(body_field($b, 'Route'), 'node1', '... by node1, on a new connection');
like($log_now, qr/SC1661: SessionClusterBalancer: GET \/app\S* failed on \S+ \(route node1\): no answer[^;]*; sent again to \S+ \(route node2\)/,
     'the front logs SC1661: failed on node1, sent again to node2');
like($log_now, qr/SC1661: SessionClusterBalancer: GET \/app\S* failed on \S+ \(route node2\): its member stopped answering \(connection cut\); sent again to \S+ \(route node1\)/,
     '... and SC1661 again: failed on node2, its connection cut, sent again to node1');
is(front_page()->{FrontReplays}, $replays + 2, 'FrontReplays two more (one request, two replays)');
my @cuts = slurp($log) =~ /^CUT$/mg;
is(scalar @cuts, 1, 'the relay closed one request unanswered') or diag(slurp($log));
ok(!-e $arm, '... and was disarmed');

$c->sigcont('node2');
kill 'KILL', $h->{pid};
$c->finish($h, timeout => 5);
$c->teardown;
done_testing();
