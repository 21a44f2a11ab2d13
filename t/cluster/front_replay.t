#!perl
# Replay on the front (issue 20): a request through a SessionClusterBalancer
# front whose member dies after the request reached it, before any byte of the
# answer, is sent again to another ready member, which serves the session
# (re-bound to its route); only requests that can be sent twice are.
# A front (BalancerMembers route=node1..node3, kept connections to them) and
# three members.  Each case makes a session on one member, waits until the
# others hold it, freezes that member (SIGSTOP: its kernel still takes the
# connection and the request), sends the request through the front, and
# kills the member (SIGKILL): the front's connection is reset with nothing
# answered.
#   A. GET on a new client connection: 200 with the counter one up (nothing
#      lost, nothing reset), from another member, with a cookie re-bound to
#      that member's route; the front's page counts the replay
#      (FrontReplays 1) and its log says SC1661 naming the dead member.
#   B. GET as the 2nd request of a kept-alive client connection (where
#      mod_proxy_http alone closes the client's connection without an
#      answer): the same, and the client's connection stays usable.
#   C. POST with a body: not sent twice: the client gets no 200, the page
#      counts FrontNotReplayed 1, SC1660 says why (method POST), and
#      FrontReplays did not move.
#   D. A member frozen with a GET in flight and left frozen (the worker's
#      timeout is 60 s): once the front's membership holds it suspect, the
#      front cuts that connection (SC1663) and the GET is answered 200 by
#      the other member with the counter one up, while the member is still
#      frozen.
#   E. A kept connection its member closes as a POST goes out (a member's MPM
#      closes idle kept connections when all its workers are busy, and at a
#      graceful restart; front_graceful.t lost 2 POSTs to it once: 502): a
#      second balancer (SessionClusterBalancer too) whose one member, a small
#      HTTP server here, answers the first request of each connection
#      (keep-alive) and closes the connection without an answer when a second
#      comes on it.  6 POSTs with a body through the front (3 on client
#      connections of their own, 3 on one kept-alive client connection): every one
#      answered 200, each on a connection of its own (a POST goes to its
#      member on a new connection, never a kept one: a POST that failed so
#      could not be sent again), FrontNotReplayed unchanged, and the client
#      connection's Keep-Alive max= one down at each (its count of requests
#      kept while the front asks for a new connection).  Then 3 GETs:
#      one goes out on a kept connection (which the member closes): what can
#      be sent twice still reuses kept connections.
#   F. A replay whose member fails too goes on to a third member: node3
#      drains, node2 is frozen, a GET of a session of node1's is sent while
#      node1 is frozen and node1 is killed: the GET is sent again to node2
#      (SC1661), where it waits unread; node3 is made ready again and node2
#      killed: the GET is answered 200 by node3 with the counter one up, the
#      log says SC1661 for node2 -> node3, FrontReplays two more.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVTIMEO);
use Time::HiRes qw(sleep);
use SC::Cluster;
use SC::KeepAlive;
use SC::Test qw(worker_ok body_field status_of check within app show demo_module demo_conf balancer_member status_has
                session_on valid_sid unread_bytes page_action);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 150;
$SIG{ALRM} = sub { die "front_replay.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $APP = demo_conf(demo_module());
# E.'s member: a small HTTP server (one request per connection answered)
my $kept_port = SC::Cluster::free_port();
my %FRONT = (retry => 300, connectiontimeout => 5, timeout => 60);
my $c = SC::Cluster->new(
    members    => 3,
    # a worker's timeout far beyond the freeze: the front waits for the answer
    # until the member dies, never times out first
    front      => { name => 'front', %FRONT },
    member_opts => { front => { extra_conf => sub {
        SC::Cluster::front_conf($_[0], $_[1], %FRONT)
        . "<Proxy balancer://kept>\n    BalancerMember http://127.0.0.1:$kept_port retry=0\n</Proxy>\n"
        . "ProxyPass /kept balancer://kept/kept\nSessionClusterBalancer balancer://kept\n" } } },
    loglevel   => 'info',
    extra_conf => $APP,
    # a frozen member is suspected after 5 s: F keeps node2 frozen (alive to
    # the front) through a few steps of its own, under a loaded machine too
    cluster    => sub { SC::Cluster::static_block($_[0], $_[1], membership => { dropTime => 5000 }) },
);
my $F = $c->front;
SC::Test::dump_options(extra => SC::Test::front_extra($F));
$c->start_all;

my @routes = qw(node1 node2 node3);
check(within(30, sub {
    my $p = status_of($c, $F) or return 0;
    return !grep { !worker_ok(balancer_member($p, $_)) } @routes;
}), $c, 'the front shows the three BalancerMembers Ok');

sub base_of { my ($id) = @_; return defined $id && $id =~ /^([0-9A-Fa-f]{32})\./ ? lc $1 : '' }
sub route_of { my ($id) = @_; return defined $id && $id =~ /\.([^.]+)$/ ? $1 : '' }
sub front_page { status_of($c, $F) || {} }

# A session made on $n with its counter at 2, held by every other running member.
sub session_held_everywhere {
    my ($n, @others) = @_;
    my $id = app($c, $n, 'auto')->{cookie};
    my $r = app($c, $n, 'auto', $id);
    check(valid_sid($id, $n) && ($r->{counter} // '') eq '2', $c, "a session made on $n (counter 2)", show($r));
    my $v = (session_on($c, $n, $id) || {})->{SessionVersion} // 'none';
    check(within(20, sub { !grep { ((session_on($c, $_, $id) || {})->{SessionVersion} // '') ne $v } @others }),
          $c, "... held at version $v by @others");
    return $id;
}

# A raw request to the front on $sock (a new connection when undef); returns
# the socket after sending.
sub send_request {
    my ($sock, $method, $path, $id, $body) = @_;
    $sock //= IO::Socket::INET->new(PeerAddr => $c->member($F)->{addr},
                                    PeerPort => $c->member($F)->{http_port},
                                    Proto => 'tcp', Timeout => 30) or die "connect to the front: $!";
    # an answer that does not come within 30 s is a failure, not a hang
    setsockopt($sock, SOL_SOCKET, SO_RCVTIMEO, pack('l!l!', 30, 0));
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\nCookie: JSESSIONID=$id\r\n";
    $req .= defined $body ? "Content-Type: application/x-www-form-urlencoded\r\n"
                            . "Content-Length: " . length($body) . "\r\n\r\n$body" : "\r\n";
    print {$sock} $req;
    return $sock;
}


# Freezes $n, sends the request (on $sock or a new connection), waits until
# the request waits unread in $n's kernel, kills $n, and reads the answer.
sub across_a_death {
    my ($n, $sock, $method, $path, $id, $body, %o) = @_;
    $c->sigstop($n);
    my $port = $c->member($n)->{http_port};
    my $before = unread_bytes($port);
    $sock = send_request($sock, $method, $path, $id, $body);
    # in flight: the front passed it on, and the frozen member's kernel holds
    # it unread (a connection to its port with bytes waiting)
    ok(within(10, sub { unread_bytes($port) > $before }),
       "$n holds the request unread (frozen) before it is killed");
    $c->kill9($n) unless $o{frozen};
    return ($sock, SC::KeepAlive::read_response($sock));
}

# A. GET, new client connection ------------------------------------------------------
{
    my $id = session_held_everywhere('node1', 'node2', 'node3');
    my $off = length $c->error_log($F);
    my (undef, $s, $h, $b) = across_a_death('node1', undef, 'GET', '/app?auto', $id);
    is($s, 200, 'A. the GET that node1 took before it died is answered 200') or diag($b);
    is(body_field($b, 'Counter'), 3, 'A. ... with the counter one up (3): nothing lost, nothing reset');
    my $route = body_field($b, 'Route') // '';
    ok($route eq 'node2' || $route eq 'node3', "A. ... by another member ($route)");
    my ($new) = ($h->{'set-cookie'} // '') =~ /JSESSIONID=([^;,\s]+)/;
    ok(defined $new && base_of($new) eq base_of($id) && route_of($new) eq $route,
       "A. ... which re-bound the session to its route ($route)") or diag($h->{'set-cookie'} // '(no Set-Cookie)');
    my $p = front_page();
    is($p->{FrontReplays}, 1, 'A. the front counts one replay (FrontReplays 1)');
    is($p->{FrontReplaysFailed}, 0, 'A. ... that did not fail (FrontReplaysFailed 0)');
    like(substr($c->error_log($F), $off), qr/SC1661: SessionClusterBalancer: GET \/app failed on \S+ \(route node1\): no answer[^;]*; sent again to \S+ \(route $route\)/,
         'A. the front logs SC1661: failed on node1, sent again to the member that answered');
}

# B. GET, 2nd request of a kept-alive client connection --------------------------------
{
    my $id = session_held_everywhere('node2', 'node3');
    my $sock = send_request(undef, 'GET', '/app?read', $id);
    my ($s0, undef, $b0) = SC::KeepAlive::read_response($sock);
    is($s0, 200, 'B. a first request on a kept-alive client connection (read)') or diag($b0);
    is(body_field($b0, 'Route'), 'node2', 'B. ... served by node2 (the sticky route)');
    my (undef, $s, $h, $b) = across_a_death('node2', $sock, 'GET', '/app?auto', $id);
    is($s, 200, 'B. the 2nd request, which node2 took before it died, is answered 200, not a closed connection')
        or diag($b);
    is(body_field($b, 'Counter'), 3, 'B. ... with the counter one up (3)');
    is(body_field($b, 'Route'), 'node3', 'B. ... by node3');
    my ($new) = ($h->{'set-cookie'} // '') =~ /JSESSIONID=([^;,\s]+)/;
    send_request($sock, 'GET', '/app?read', $new // $id);
    my ($s2, undef, $b2) = SC::KeepAlive::read_response($sock);
    ok($s2 == 200 && (body_field($b2, 'Counter') // '') eq '3',
       'B. the client\'s connection stays usable: a 3rd request on it reads counter 3') or diag("status $s2\n$b2");
    # (one replay, or two: node1, killed in A a moment ago, may still be
    # alive to the front; its refused connection sends the GET on)
    my $rb = front_page()->{FrontReplays} // 0;
    ok($rb == 2 || $rb == 3, "B. FrontReplays one or two more ($rb)");
}

# C. POST with a body: not replayed ---------------------------------------------------
{
    # node3 is the last member: a fresh one takes the replay's place
    $c->start('node1');
    check(within(30, sub { worker_ok(balancer_member(front_page(), 'node1')) }), $c,
          'C. node1 started again and Ok on the front');
    my $id = session_held_everywhere('node3', 'node1');
    my $replays = front_page()->{FrontReplays} // 0;
    my $off = length $c->error_log($F);
    my (undef, $s, undef, $b) = across_a_death('node3', undef, 'POST', '/app?auto', $id, 'a=1');
    isnt($s, 200, "C. the POST that node3 took before it died is not answered 200 (status $s)");
    my $p = front_page();
    is($p->{FrontNotReplayed}, 1, 'C. the front counts it not replayed (FrontNotReplayed 1)');
    is($p->{FrontReplays}, $replays, "C. ... and no replay (FrontReplays still $replays)");
    like(substr($c->error_log($F), $off), qr/SC1660: SessionClusterBalancer: POST failed on \S+ \(route node3\): no answer[^;]*; not sent again: method POST/,
         'C. SC1660 says why it was not sent again (method POST)');
}

# D. in flight to a member that stays frozen --------------------------------------------
{
    $c->start('node2');
    check(within(30, sub { worker_ok(balancer_member(front_page(), 'node2')) }), $c,
          'D. node2 started again and Ok on the front');
    my $id = session_held_everywhere('node1', 'node2');
    my $replays = front_page()->{FrontReplays} // 0;
    my $off = length $c->error_log($F);
    my (undef, $s, $h, $b) = across_a_death('node1', undef, 'GET', '/app?auto', $id, undef, frozen => 1);
    my $still = $c->member('node1')->{state} eq 'sigstopped';
    is($s, 200, 'D. the GET held by frozen node1 is answered 200') or diag($b);
    ok($still, 'D. ... while node1 is still frozen (not by its timeout: 60 s)');
    is(body_field($b, 'Counter'), 3, 'D. ... with the counter one up (3)');
    is(body_field($b, 'Route'), 'node2', 'D. ... by node2');
    like(substr($c->error_log($F), $off), qr/SC1663: SessionClusterBalancer: a request in flight to member node1 cut: the cluster holds it (?:suspect|dead)/,
         'D. the front logs SC1663: the request in flight to node1 cut, node1 suspect or dead');
    is(front_page()->{FrontReplays}, $replays + 1, 'D. FrontReplays one more');
    $c->sigcont('node1');
}

# E. a kept connection closed by its member as the request goes out -----------------------
{
    my $log = $c->base_dir . '/kept-server.log';
    sub slurp { open my $fh, '<', $_[0] or return undef; local $/; return <$fh> }
    # one line per request: "CONN N METHOD answered|closed"
    my $server = <<'PERL';
use strict; use warnings; use IO::Socket::INET; use IO::Select;
my ($port) = @ARGV; $| = 1;
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 64,
                              ReuseAddr => 1) or die "listen $port: $!";
print "listening\n";
my $sel = IO::Select->new($l); my (%buf, %n, %id); my $conns = 0;
while (1) {
    for my $s ($sel->can_read) {
        if ($s == $l) { my $a = $l->accept or next; $sel->add($a); $buf{$a} = ''; $n{$a} = 0;
                        $id{$a} = ++$conns; next }
        my $r = sysread($s, $buf{$s}, 65536, length $buf{$s});
        if (!$r) { $sel->remove($s); close $s; next }
        while ($buf{$s} =~ /\A(.*?\r\n\r\n)/s) {
            my $head = $1; my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi; $len //= 0;
            last if length($buf{$s}) < length($head) + $len;
            substr($buf{$s}, 0, length($head) + $len, '');
            my ($m) = $head =~ /^(\S+)/;
            if ($n{$s}++) {     # a second request on a kept connection: closed
                print "CONN $id{$s} $m closed\n"; $sel->remove($s); close $s; last;
            }
            print "CONN $id{$s} $m answered\n";
            syswrite($s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
                         . "Connection: keep-alive\r\n\r\nanswered\n");
        }
    }
}
PERL
    my $h = $c->spawn(undef, { out => $log }, $^X, '-e', $server, $kept_port);
    check(within(10, sub { (slurp($log) // '') =~ /listening/ }), $c, "E. the kept-connection member listens");
    my $p0 = front_page();
    my @post = map { ($c->post($F, '/kept', 'a=1', timeout => 10))[0] } 1 .. 3;
    # and 3 on one kept-alive client connection (its 2nd and 3rd requests:
    # mod_proxy_http's proxy-initial-not-pooled alone is for a first one)
    my $sock = IO::Socket::INET->new(PeerAddr => $c->member($F)->{addr},
                                     PeerPort => $c->member($F)->{http_port},
                                     Proto => 'tcp', Timeout => 30) or die "connect to the front: $!";
    setsockopt($sock, SOL_SOCKET, SO_RCVTIMEO, pack('l!l!', 30, 0));
    my @left;
    for (1 .. 3) {
        print {$sock} "POST /kept HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n"
            . "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=1";
        my ($st, $hd) = SC::KeepAlive::read_response($sock);
        push @post, $st;
        push @left, (($hd || {})->{'keep-alive'} // '') =~ /max=(\d+)/ ? $1 : '?';
    }
    close $sock;
    my $p1 = front_page();
    # then GETs: the second on a connection finds it closed (no replay: this
    # member is none of the cluster's)
    $c->get($F, '/kept', timeout => 10) for 1 .. 3;
    my @lines = (slurp($log) // '') =~ /^CONN (\d+) (\S+) (\w+)$/mg;
    my (%posts_on, $get_reused);
    while (my ($conn, $m, $what) = splice @lines, 0, 3) {
        $posts_on{$conn}++ if $m eq 'POST';
        $get_reused++ if $m eq 'GET' && $what eq 'closed';
    }
    is_deeply(\@post, [ (200) x 6 ], 'E. 6 POSTs through the front to a member that closes kept '
              . 'connections as a request comes: all answered 200 (' . join(' ', @post) . ')');
    ok(keys %posts_on == 6 && !grep({ $_ != 1 } values %posts_on),
       'E. ... each on a connection of its own (' . scalar(keys %posts_on) . ' connections)')
        or diag(slurp($log));
    is($p1->{FrontNotReplayed}, $p0->{FrontNotReplayed}, 'E. ... FrontNotReplayed unchanged');
    ok($left[0] =~ /^\d+$/ && $left[1] eq $left[0] - 1 && $left[2] eq $left[0] - 2,
       "E. ... the kept-alive client connection counts its POSTs (Keep-Alive max=@left): "
       . 'MaxKeepAliveRequests holds');
    ok($get_reused, 'E. a GET went out on a kept connection (the member closed it)')
        or diag(slurp($log));
    kill 'KILL', $h->{pid};
    $c->finish($h, timeout => 5);
}

# F. a replay whose member fails too: sent again to a third ----------------------------------
{
    $c->start('node3');
    check(within(30, sub { worker_ok(balancer_member(front_page(), 'node3')) }), $c,
          'F. node3 started again and Ok on the front');
    my $id = session_held_everywhere('node1', 'node2', 'node3');
    # node3 drains: the first replay can only go to node2
    check(within(20, sub { ((status_of($c, 'node3') || {})->{EngineState} // '') eq 'ready' }), $c,
          'F. node3 says EngineState: ready');
    my ($sd) = page_action($c, 'node3', action => 'state', state => 'draining',
                           nonce => (status_of($c, 'node3') || {})->{Nonce} // '');
    check(within(20, sub { my $w = balancer_member(front_page(), 'node3');
                           $w && ($w->{member} // '') eq 'draining' }), $c,
          "F. the front sees node3 draining (POST state=draining: $sd)");
    my $replays = front_page()->{FrontReplays} // 0;
    my $off = length $c->error_log($F);
    # node1 frozen with the GET unread; node2 frozen just before node1 dies:
    # it takes the replay (alive to the front for dropTime) and holds it
    # unread
    $c->sigstop('node1');
    my $port1 = $c->member('node1')->{http_port};
    my $port2 = $c->member('node2')->{http_port};
    my $before1 = unread_bytes($port1);
    my $sock = send_request(undef, 'GET', '/app?auto', $id);
    ok(within(10, sub { unread_bytes($port1) > $before1 }), 'F. node1 holds the GET unread (frozen)');
    my $before2 = unread_bytes($port2);
    $c->sigstop('node2');
    $c->kill9('node1');
    my $first = $c->wait_for(sub {
        substr($c->error_log($F), $off) =~ /(SC1661: [^\n]*\(route node1\)[^\n]*sent again to \S+ \(route node2\))/
            ? $1 : '';
    }, timeout => 10);
    ok($first, 'F. node1 killed: the GET is sent again to node2 (node3 drains)')
        or diag(substr($c->error_log($F), $off));
    ok(within(10, sub { unread_bytes($port2) > $before2 }), 'F. ... where frozen node2 holds it unread');
    # node3 ready again, then node2 dies too: the GET must go on to node3
    my ($sr) = page_action($c, 'node3', action => 'state', state => 'ready',
                           nonce => (status_of($c, 'node3') || {})->{Nonce} // '');
    check(within(20, sub { worker_ok(balancer_member(front_page(), 'node3'))
                           && (balancer_member(front_page(), 'node3')->{member} // '') eq 'ready' }), $c,
          "F. the front sees node3 ready again (POST state=ready: $sr)");
    $c->kill9('node2');
    my ($s, $h, $b) = SC::KeepAlive::read_response($sock);
    is($s, 200, 'F. node2 killed with the replayed GET unread: the GET is answered 200 all the same')
        or diag($b);
    is(body_field($b, 'Counter'), 3, 'F. ... with the counter one up (3)');
    is(body_field($b, 'Route'), 'node3', 'F. ... by node3');
    like(substr($c->error_log($F), $off),
         qr/SC1661: SessionClusterBalancer: GET \/app\S* failed on \S+ \(route node2\): (?:no answer|its member stopped answering)[^;]*; sent again to \S+ \(route node3\)/,
         'F. the front logs SC1661 again: failed on node2, sent again to node3');
    my $p = front_page();
    is($p->{FrontReplays}, $replays + 2, 'F. FrontReplays two more (one request, two replays)');
}

$c->teardown;
done_testing();
