#!perl
# Per-member send_failures and ack_timeouts on the page (issue 14, item 10),
# and the Transport's maxRetryAttempts (README "Channel": acknowledged sends
# "retry maxRetryAttempts times on a broken connection").  Four static
# members, synchronous replication (channelSendOptions 6), node2 the one that
# is frozen (SIGSTOP) and whose connections are broken (ss -K, a reset of the
# writer's socket to node2); dropTime and TcpFailureDetector connectTimeout
# 60 s, so a frozen node2 stays a live member that must be waited for:
#   node1: Transport timeout 1000 ms.  node2 frozen: a change on node1 answers
#     503; node1's Member line for node2 shows ack_timeouts and send_failures
#     grown, its lines for node3 and node4 none.
#   node3: timeout 30 s, maxRetryAttempts 0.  node2 frozen, a change on node3
#     waits for node2's ACK; node3's connection to node2 broken once: the
#     change answers 503 at once (node2 still frozen), SC1274 says the
#     connection was lost; node3's line for node2: send_failures +1,
#     ack_timeouts 0.
#   node4: timeout 30 s, maxRetryAttempts 2.  A change waits; its connection
#     to node2 broken twice: each time node4 connects again and the change is
#     still waiting; node2 resumed, it answers 200 and node2 has it; node4's
#     send_failures for node2 unchanged.  Again with node2 frozen: broken
#     twice the change still waits, the third break answers 503 and
#     send_failures for node2 grows by one.
# Nothing here is timed; deadlines are polling limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep);
use SC::Cluster;
use SC::Test qw(status_of member_on check within app show demo_module demo_conf need);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "member_counters.t: time limit (120 s) reached\n" };
alarm 120;

my $SS = SC::Cluster::which('ss');
my $CURL = SC::Cluster::which('curl');
need($SS && $CURL, 'ss (iproute2) and curl');

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my %TRANSPORT = (node1 => 'timeout="1000"', node2 => 'timeout="1000"',
                 node3 => 'timeout="30000" maxRetryAttempts="0"',
                 node4 => 'timeout="30000" maxRetryAttempts="2"');

my $c = SC::Cluster->new(
    members    => 4,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all, channelSendOptions => 6, valves => $KEEP_ROUTES,
                                          membership => { dropTime => 60000 });
        $x =~ s{(TcpFailureDetector")/>}{$1 connectTimeout="60000"/>} or die 'no TcpFailureDetector';
        my $sender = qq{    <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">\n}
                   . qq{      <Transport className="org.apache.catalina.tribes.transport.nio.PooledParallelSender" $TRANSPORT{$m->{name}}/>\n}
                   . qq{    </Sender>\n};
        $x =~ s{(  </Channel>)}{$sender$1} or die 'no </Channel>';
        return $x;
    },
);
$c->start_all;
my @N = $c->members;
my $P2 = $c->member('node2')->{cluster_port};

check(within(20, sub {
    for my $a (@N) {
        for my $b (@N) {
            next if $a eq $b;
            my $m = member_on($c, $a, $b);
            return 0 unless $m && $m->{state} eq 'alive';
        }
        return 0 unless (status_of($c, $a)->{EngineState} // '') eq 'ready';
    }
    return 1;
}), $c, 'four members alive to each other and ready');
like(SC::Test::page($c, 'node4') // '',
     qr/^Transport\.maxRetryAttempts = 2\b/m, 'node4 runs with maxRetryAttempts 2');
like(SC::Test::page($c, 'node3') // '', qr/^Transport\.maxRetryAttempts = 0\b/m,
     'node3 runs with maxRetryAttempts 0');

sub line { my ($n, $r) = @_; return member_on($c, $n, $r) || {} }
sub fig { my ($n, $r, $k) = @_; return line($n, $r)->{$k} // 'none' }
# the page is published every 100 ms: a figure is polled until it reaches
# $want (then compared exactly: one more than that fails too)
sub fig_reaches {
    my ($n, $r, $k, $want) = @_;
    my $v;
    within(10, sub { $v = fig($n, $r, $k); $v ne 'none' && $v >= $want });
    return $v;
}

# a session per writer, on every member
my %sid;
for my $w (qw(node1 node3 node4)) {
    my $r = app($c, $w, 'auto');
    $sid{$w} = $r->{cookie};
    check($r->{status} == 200 && defined $sid{$w}, $c, "a session made on $w (acknowledged)", show($r));
}

# the writer's engine's sockets to node2's Receiver: local ports
sub conns_to_node2 {
    my ($w) = @_;
    my $pid = (status_of($c, $w) || {})->{EnginePid} or return ();
    my $out = `$SS -tnpH state established dst 127.0.0.1 dport = :$P2 2>/dev/null`;
    return map { /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:$P2\b/ ? $1 : () } grep { /pid=$pid,/ } split /\n/, $out;
}
sub break_conn {
    my ($w) = @_;
    my @p = conns_to_node2($w);
    system("$SS -K src 127.0.0.1 sport = :$_ dst 127.0.0.1 dport = :$P2 >/dev/null 2>&1")
        for @p;
    return @p;
}
sub change_in_background {
    my ($w) = @_;
    my $port = $c->member($w)->{http_port};
    return $c->spawn(undef, $CURL, '-s', '-i', '-m', '60', '-H', "Cookie: JSESSIONID=$sid{$w}",
                     "http://127.0.0.1:$port/app?auto");
}
sub running { my ($h) = @_; return SC::Cluster::pid_alive($h->{pid}) }
sub waiting_on { my ($w) = @_; return ((status_of($c, $w) || {})->{QueueDepth} // 0) >= 1 }
sub resume_node2 {
    $c->sigcont('node2');
    check(within(20, sub { app($c, 'node1', 'auto', $sid{node1})->{status} == 200 }), $c,
          'node2 resumed: an acknowledged change on node1 answers 200 again');
}

# node1: an ACK that times out ------------------------------------------------------------
{
    my %before = map { $_ => line('node1', $_) } qw(node2 node3 node4);
    is($before{node2}{ack_timeouts}, 0, 'node1: ack_timeouts for node2 is 0 before');
    $c->sigstop('node2');
    my $r = app($c, 'node1', 'auto', $sid{node1}, timeout => 20);
    check($r->{status} == 503, $c, 'node2 frozen: a change on node1 answers 503', show($r));
    fig_reaches('node1', 'node2', 'ack_timeouts', $before{node2}{ack_timeouts} + 1);
    my $after = line('node1', 'node2');
    cmp_ok($after->{ack_timeouts} // 0, '>', $before{node2}{ack_timeouts},
           "node1: ack_timeouts for node2 grew ($before{node2}{ack_timeouts} -> " . ($after->{ack_timeouts} // '?') . ')');
    cmp_ok($after->{send_failures} // 0, '>', $before{node2}{send_failures},
           "node1: send_failures for node2 grew ($before{node2}{send_failures} -> " . ($after->{send_failures} // '?') . ')');
    for my $o (qw(node3 node4)) {
        my $l = line('node1', $o);
        ok(($l->{ack_timeouts} // '') eq '0' && ($l->{send_failures} // '') eq '0',
           "node1: no ack_timeouts or send_failures for $o (it acknowledged)")
            or diag(join(' ', %$l));
    }
    my $p = status_of($c, 'node1') || {};
    cmp_ok($p->{AckTimeouts} // 0, '>=', $after->{ack_timeouts} // 0,
           'node1: AckTimeouts (all members) is at least node2\'s share');
    resume_node2();
}

# node3: maxRetryAttempts 0, the connection breaks once ---------------------------------------
{
    my $sf0 = fig('node3', 'node2', 'send_failures');
    my $at0 = fig('node3', 'node2', 'ack_timeouts');
    my $off = length $c->error_log('node3');
    $c->sigstop('node2');
    my $h = change_in_background('node3');
    check(within(20, sub { waiting_on('node3') }), $c, 'node3: the change waits for node2\'s ACK (QueueDepth 1)');
    ok(running($h), 'node3: the request is still waiting');
    my @killed = break_conn('node3');
    ok(@killed >= 1, "node3's connection to node2 broken (local port @killed)");
    my ($rc, $out) = $c->finish($h, timeout => 20);
    # (node2 is resumed only after this answer: it came while node2 was frozen)
    like($out, qr{^HTTP/1\.\d 503}m, 'node3 (maxRetryAttempts 0): the change answers 503 after one break')
        or diag($out);
    my $log = $c->wait_for(sub { substr($c->error_log('node3'), $off) =~ /^(.*SC1274:[^\n]*)$/m ? $1 : '' }, timeout => 10);
    like($log, qr/connection to node2 lost/, 'node3: SC1274 says the connection to node2 was lost') or diag($log);
    is(fig_reaches('node3', 'node2', 'send_failures', $sf0 + 1), $sf0 + 1, "node3: send_failures for node2 grew by one ($sf0 -> +1)");
    is(fig('node3', 'node2', 'ack_timeouts'), $at0, "node3: ack_timeouts for node2 unchanged ($at0)");
    resume_node2();
}

# node4: maxRetryAttempts 2 ---------------------------------------------------------------------
sub breaks_waiting {
    my ($h, $times, $tag) = @_;
    my @prev;
    for my $i (1 .. $times) {
        my @now;
        check(within(20, sub { @now = grep { my $p = $_; !grep { $_ == $p } @prev } conns_to_node2('node4'); @now }),
              $c, "$tag: node4 has a connection to node2 before break $i (@now)");
        my @k = break_conn('node4');
        @prev = (@prev, @k);
        ok(@k >= 1, "$tag: break $i of node4's connection to node2 (port @k)");
        # node4 connects again at once and sends the change on the new connection
        check(within(20, sub { my @n = grep { my $p = $_; !grep { $_ == $p } @prev } conns_to_node2('node4'); @n }),
              $c, "$tag: after break $i node4 has connected to node2 again") if $i < $times;
        # the page is republished every 100 ms: polled; an answered request
        # never runs again, so this cannot pass once the change was answered
        ok(within(20, sub { running($h) && waiting_on('node4') }),
           "$tag: after break $i the change still waits") if $i < $times;
    }
}
{
    my $sf0 = fig('node4', 'node2', 'send_failures');
    $c->sigstop('node2');
    my $h = change_in_background('node4');
    check(within(20, sub { waiting_on('node4') }), $c, 'X: node4\'s change waits for node2\'s ACK');
    breaks_waiting($h, 2, 'X');
    ok(running($h), 'X: two breaks: the change is still waiting for node2 (retried twice)');
    $c->sigcont('node2');
    my ($rc, $out) = $c->finish($h, timeout => 30);
    like($out, qr{^HTTP/1\.\d 200}m, 'X: node2 resumed, the change answers 200 (the resent message was applied)')
        or diag($out);
    my ($counter) = $out =~ /^Counter: (\d+)/m;
    my $r = app($c, 'node2', 'read', $sid{node4});
    is($r->{counter}, $counter, "X: node2 reads the counter node4 answered (" . ($counter // '?') . ')') or diag show($r);
    is(fig('node4', 'node2', 'send_failures'), $sf0, "X: node4's send_failures for node2 unchanged ($sf0)");

    $c->sigstop('node2');
    $h = change_in_background('node4');
    check(within(20, sub { waiting_on('node4') }), $c, 'Y: node4\'s change waits for node2\'s ACK');
    breaks_waiting($h, 3, 'Y');
    ($rc, $out) = $c->finish($h, timeout => 20);
    # (node2 is resumed only after this answer)
    like($out, qr{^HTTP/1\.\d 503}m, 'Y: the third break (retries spent) answers 503') or diag($out);
    is(fig_reaches('node4', 'node2', 'send_failures', $sf0 + 1), $sf0 + 1, "Y: node4's send_failures for node2 grew by one");
    is(fig('node4', 'node2', 'ack_timeouts'), 0, 'Y: node4\'s ack_timeouts for node2 stays 0 (no timeout, breaks)');
    resume_node2();
}

for my $n (@N) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
