#!perl
# A member's own 503 for a synchronous replication it could not complete
# (issue 20: HAProxy's "retry-on 503").  A front (ProxySet failonstatus=503,
# its own membership with dropTime 30000 ms, so that it keeps node1 ready
# below) and two members replicating synchronously (channelSendOptions 6,
# Transport timeout 1000 ms, dropTime 10000 ms).  A session is made on node1
# and held by node2.
#   C. node1's cluster engine frozen (SIGSTOP): node1's child hands the change
#      to the engine and gets no answer; after 1000 ms + 2 s it answers 503
#      with Session-Cluster-Change: kept and no "Session-Cluster-Replicated:
#      none" (the engine may still send the change: another member may have
#      it).  The front passes that 503 on (a GET is not sent again: it could
#      be applied twice) and node1's worker is not put in error
#      (failonstatus=503 would).  The engine is resumed and the members agree
#      on the session again.
#   Then the window between a member's engine dying and the front learning of
#   it, held open: the front's own engine frozen (its children route by what
#   it last published: node1 ready), node1's parent frozen (no new engine),
#   node1's engine killed.  node1's children cannot reach an engine: the
#   change never leaves node1, and they answer 503 with
#   Session-Cluster-Replicated: none.
#   A. POST (not sent twice): the client gets that 503; node1's worker is not
#      in error.
#   B. GET: that 503 is held back and the GET sent to node2, which answers
#      200 with the counter one up from what node2 held (node1's kept change
#      of A is on node1 only), re-bound to route node2 (node2 finds node1's
#      engine gone: its connection refused, it does not wait); the front
#      counts the replay (FrontReplays 1, FrontReplaysFailed 0) and logs
#      SC1661 with the reason; node1's worker is still not in error.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(worker_ok body_field status_of check within app show demo_module demo_conf balancer_member status_has
                session_on valid_sid);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 90;
$SIG{ALRM} = sub { die "front_replay_503.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $APP = demo_conf(demo_module());
my $c = SC::Cluster->new(
    members    => 2,
    front      => { name => 'front', retry => 300, connectiontimeout => 5, timeout => 60,
                    proxyset => 'failonstatus=503' },
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all, channelSendOptions => 6,
                    membership => { frequency => 500, dropTime => $m->{is_front} ? 30000 : 10000 });
        my $sender = qq{    <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">\n}
                   . qq{      <Transport className="org.apache.catalina.tribes.transport.nio.PooledParallelSender" timeout="1000"/>\n}
                   . qq{    </Sender>\n};
        $x =~ s{(  </Channel>)}{$sender$1} or die 'no </Channel>';
        return $x;
    },
);
my $F = $c->front;
SC::Test::dump_options(extra => SC::Test::front_extra($F));
$c->start_all;

sub front_page { status_of($c, $F) || {} }

check(within(30, sub { my $p = front_page(); worker_ok(balancer_member($p, 'node1'))
                                              && worker_ok(balancer_member($p, 'node2')) }),
      $c, 'the front shows node1 and node2 Ok');

my $id = app($c, 'node1', 'auto')->{cookie};
my $r = app($c, 'node1', 'auto', $id);
check(valid_sid($id, 'node1') && ($r->{counter} // '') eq '2', $c, 'a session made on node1 (counter 2)', show($r));
my $v = (session_on($c, 'node1', $id) || {})->{SessionVersion} // 'none';
check(within(20, sub { ((session_on($c, 'node2', $id) || {})->{SessionVersion} // '') eq $v }),
      $c, "... held by node2 at version $v");

sub node2_counter {
    my (undef, undef, $b) = $c->request('node2', 'GET', '/app?read', headers => { Cookie => "JSESSIONID=$id" });
    return body_field($b, 'Counter');
}
sub agree {
    my $v1 = (session_on($c, 'node1', $id) || {})->{SessionVersion} // 'none';
    return ((session_on($c, 'node2', $id) || {})->{SessionVersion} // '') eq $v1;
}
my $n1 = status_of($c, 'node1') || {};
my $engine = $n1->{EnginePid};
check(defined $engine && $engine =~ /^\d+$/ && $engine > 1, $c, "node1's engine pid ($engine)");

# C. a 503 after the change went to the engine: passed on -----------------------------
{
    SC::Cluster::freeze_pids($engine) or die "SIGSTOP $engine: $!";
    my ($st, $h, $b) = $c->request($F, 'GET', '/app?auto', headers => { Cookie => "JSESSIONID=$id" },
                                   timeout => 30);
    kill 'CONT', $engine;
    is($st, 503, "C. a GET whose change node1's frozen engine never answered gets node1's 503") or diag($b);
    ok(lc($h->{'session-cluster-change'} // '') eq 'kept' && !defined $h->{'session-cluster-replicated'},
       'C. ... Session-Cluster-Change: kept, no Session-Cluster-Replicated: none (the change may be elsewhere)')
        or diag(join "\n", map { "$_: $h->{$_}" } sort keys %$h);
    my $p = front_page();
    is($p->{FrontReplays} // 0, 0, 'C. the front did not send it again (FrontReplays 0)');
    my $w = balancer_member($p, 'node1');
    ok(worker_ok($w), "C. node1's worker is not in error despite failonstatus=503 ($w->{status})");
    check(within(20, \&agree), $c, 'C. node1 (engine resumed) and node2 agree on the session again');
}

my $before = node2_counter();
check(defined $before && $before =~ /^\d+$/, $c, "node2's counter before A ($before)");
my $front_engine = (status_of($c, $F) || {})->{EnginePid};
check(defined $front_engine && $front_engine =~ /^\d+$/ && $front_engine > 1, $c,
      "the front's engine pid ($front_engine)");
my $parent = $c->member('node1')->{pid};
SC::Cluster::freeze_pids($front_engine) or die "SIGSTOP $front_engine: $!";
SC::Cluster::freeze_pids($parent) or die "SIGSTOP $parent: $!";
kill 'KILL', $engine or die "SIGKILL $engine: $!";
# gone (a zombie: its frozen parent does not reap it) before the requests:
# its sockets closed, a child's hand-off cannot reach it
sub proc_state { my ($pid) = @_; open(my $fh, '<', "/proc/$pid/stat") or return 'gone';
                 my $st = <$fh> // ''; return $st =~ /\)\s+(\S)/ ? $1 : '?' }
check(within(10, sub { proc_state($engine) =~ /^(?:Z|X|gone)$/ }), $c,
      "node1's engine is gone (" . proc_state($engine) . ')');
my $off = length $c->error_log($F);

# A. POST: not sent twice ----------------------------------------------------------
{
    my ($st, $h, $b) = $c->request($F, 'POST', '/app?auto', headers => { Cookie => "JSESSIONID=$id" },
                                   body => 'a=1', timeout => 30);
    is($st, 503, "A. a POST that node1 could not hand to an engine answers node1's 503") or diag($b);
    ok(lc($h->{'session-cluster-change'} // '') eq 'kept' && lc($h->{'session-cluster-replicated'} // '') eq 'none',
       'A. ... saying Session-Cluster-Change: kept, Session-Cluster-Replicated: none')
        or diag(join "\n", map { "$_: $h->{$_}" } sort keys %$h);
    my $w = balancer_member(front_page(), 'node1');
    ok(worker_ok($w), "A. node1's worker is not in error despite failonstatus=503 ($w->{status})");
}

# B. GET: sent again to node2 --------------------------------------------------------
{
    my ($st, $h, $b) = $c->request($F, 'GET', '/app?auto', headers => { Cookie => "JSESSIONID=$id" },
                                   timeout => 30);
    is($st, 200, "B. a GET that node1 could not hand to an engine is answered 200") or diag($b);
    is(body_field($b, 'Route'), 'node2', 'B. ... by node2');
    is(body_field($b, 'Counter'), $before + 1, "B. ... with node2's counter one up (" . ($before + 1) . ")");
    my ($new) = ($h->{'set-cookie'} // '') =~ /JSESSIONID=([^;,\s]+)/;
    ok(defined $new && $new =~ /\.node2$/, 'B. ... re-bound to route node2') or diag($h->{'set-cookie'} // '(no Set-Cookie)');
    my $p = front_page();
    is($p->{FrontReplays}, 1, 'B. the front counts one replay (FrontReplays 1)');
    is($p->{FrontReplaysFailed}, 0, 'B. ... that did not fail (FrontReplaysFailed 0)');
    like(substr($c->error_log($F), $off),
         qr/SC1661: SessionClusterBalancer: GET \/app failed on \S+ \(route node1\): its member could not replicate the change[^;]*; sent again to \S+ \(route node2\)/,
         'B. the front logs SC1661: node1 could not replicate, sent again to node2');
    my $w = balancer_member($p, 'node1');
    ok(worker_ok($w), "B. node1's worker is still not in error ($w->{status})");
}

kill 'CONT', $parent;
kill 'CONT', $front_engine;
# node1's parent starts a new engine (the harness then sees it stop in order)
check(within(20, sub { my $e = (status_of($c, 'node1') || {})->{EnginePid} // 0;
                       $e =~ /^\d+$/ && $e > 1 && $e != $engine }),
      $c, "node1 runs a new engine after its parent is resumed");
$c->teardown;
done_testing();
