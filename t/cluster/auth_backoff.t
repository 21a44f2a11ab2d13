#!perl
# A member whose key no longer matches its peer's is not hammered (issue 14,
# item 11).  Two static members (StaticMembershipInterceptor) in network
# namespaces, with multicast heartbeats too (frequency 500 ms),
# TcpFailureDetector, EncryptInterceptor, halfway through a key change done
# wrong:
#   node1: encryptionKey = old;
#   node2: encryptionKey = new, previousEncryptionKey = old.
# node2 opens everything node1 seals (its previous key) and answers node1's
# HELLO; node1 opens nothing node2 seals (neither the PONG on its own
# connection nor node2's HELLO on node2's).  Before the fix node1 reconnected
# and resent at once after each refused PONG (thousands of AuthFailures and
# Connects a second).  Now:
#   - over a window of 30 of node1's own heartbeats (HeartbeatsOut), node1
#     and node2 each open fewer than 20 connections (Connects), and node1's
#     AuthFailures grow by fewer than 20 more than node2's multicast
#     heartbeats it could not open (node2's HeartbeatsOut over the window);
#   - each logs SC1351 (the refused connection and the time of the next one);
# then node1 gets node2's keys by a graceful restart (a new engine: the block
# changed): both see each other alive, and sessions made on each are read on
# the other; node1's AuthFailures do not grow over 10 more heartbeats.
# No duration is asserted: the window is counted in heartbeats; deadlines
# are polling limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(need status_of member_on check within app show demo_module demo_conf
               encrypt_interceptor channel_add alive_on num need_netns);

need_netns();
my $DEMO_SO = demo_module();

$SIG{ALRM} = sub { die "auth_backoff.t: time limit (150 s) reached\n" };
alarm 150;

my $KEY_OLD = join '', map { sprintf '%02x', $_ } 0 .. 31;
my $KEY_NEW = join '', map { sprintf '%02x', $_ } 200 .. 231;
my %KEYS = (node1 => [ $KEY_OLD ], node2 => [ $KEY_NEW, $KEY_OLD ]);

sub block {
    my ($m, $all) = @_;
    # static members (each connects to the other whether it hears it or
    # not) and multicast heartbeats (the window's clock)
    my $b = SC::Cluster::static_block($m, $all, channelSendOptions => 6, channelStartOptions => 15,
        membership => { address => '228.0.0.4', port => 45564, frequency => 500, dropTime => 3000 },
        valves => [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ]);
    return channel_add($b, encrypt_interceptor(@{ $KEYS{ $m->{name} } }));
}

my $APP = demo_conf($DEMO_SO);

my $c = SC::Cluster->new(
    members    => [qw(node1 node2)],
    netns      => 1,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => \&block,
);

sub counters {
    my %p = map { $_ => status_of($c, $_) || {} } qw(node1 node2);
    return { map { my $n = $_; map { ("$n.$_" => num($p{$n}, $_)) }
                       qw(HeartbeatsOut AuthFailures Connects PreviousKeyUsed) } qw(node1 node2) };
}

sub show_counters { my ($h) = @_; return join ' ', map { "$_=$h->{$_}" } sort keys %$h }

# ===========================================================================
$c->start('node1');
$c->start('node2');
# the mismatch has happened once both refused something or opened with the
# previous key: node2 hears node1 (previous key), node1 refused node2's traffic
check(within(30, sub { my $k = counters();
                       alive_on($c, 'node2', 'node1') && $k->{'node1.AuthFailures'} > 0
                       && $k->{'node2.PreviousKeyUsed'} > 0 }), $c,
      'node2 opens node1\'s heartbeats with its previous key, node1 refuses node2\'s traffic');

my $k0 = counters();
my $k1;
ok(within(60, sub { $k1 = counters(); $k1->{'node1.HeartbeatsOut'} >= $k0->{'node1.HeartbeatsOut'} + 30 }),
   'a window of 30 of node1\'s heartbeats passed') or diag(show_counters($k1));
my %d = map { $_ => $k1->{$_} - $k0->{$_} } keys %$k1;
note('over the window: ' . show_counters(\%d));
cmp_ok($d{'node1.Connects'}, '<', 20, "node1 opened fewer than 20 connections to node2 in the window ($d{'node1.Connects'})");
cmp_ok($d{'node2.Connects'}, '<', 20, "node2 opened fewer than 20 connections to node1 in the window ($d{'node2.Connects'})");
my $tcp_refused = $d{'node1.AuthFailures'} - $d{'node2.HeartbeatsOut'};
cmp_ok($tcp_refused, '<', 20,
       "node1's AuthFailures beyond node2's heartbeats: fewer than 20 ($d{'node1.AuthFailures'} - $d{'node2.HeartbeatsOut'})");
cmp_ok($d{'node2.AuthFailures'}, '<', 20, "node2's AuthFailures: fewer than 20 ($d{'node2.AuthFailures'})");
like($c->error_log('node1'),
     qr/SC1351: connection to member \S+ \([\d.]+:\d+\) refused \(its answer is not authentic\): the next one in \d+ ms/,
     'node1 logs SC1351: node2\'s answer on its connection is not authentic, the next try later');
like($c->error_log('node2'),
     qr/SC1351: connection to member node1 \([\d.]+:\d+\) refused \(it closed our connection before answering\)/,
     'node2 logs SC1351: node1 closed its connection unanswered, the next try later');

# node1 gets node2's keys (graceful restart: a new engine) --------------------
{
    my $pid = num(status_of($c, 'node1'), 'EnginePid');
    $KEYS{node1} = [ $KEY_NEW, $KEY_OLD ];
    $c->write_conf('node1');
    $c->graceful('node1', timeout => 20);
    my $now;
    within(20, sub { $now = num(status_of($c, 'node1'), 'EnginePid'); $now && $now != $pid });
    isnt($now, $pid, "node1's graceful restart with the new key replaced its engine ($pid -> $now)");
    check(within(30, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') }), $c,
          'with the same key again, node1 and node2 see each other alive');
    my ($bad, $checked) = (0, 0);
    for my $t ([ qw(node1 node2) ], [ qw(node2 node1) ]) {
        my ($from, $to) = @$t;
        my $r = app($c, $from, 'auto');
        my $x;
        within(20, sub { $x = app($c, $to, 'read', $r->{cookie}); ($x->{session} // '') eq ($r->{cookie} // '-') });
        $checked++;
        $bad++, diag("made on $from, read on $to: " . show($x))
            unless defined $r->{cookie} && ($x->{session} // '') eq $r->{cookie} && ($x->{counter} // '') eq '1';
    }
    check(!$bad && $checked == 2, $c, "sessions replicate both ways ($checked checked, $bad wrong)");
    my $a0 = counters();
    my $a1;
    ok(within(30, sub { $a1 = counters(); $a1->{'node1.HeartbeatsOut'} >= $a0->{'node1.HeartbeatsOut'} + 10 }),
       '10 more of node1\'s heartbeats') or diag(show_counters($a1));
    is($a1->{'node1.AuthFailures'} - $a0->{'node1.AuthFailures'}, 0, 'node1 refuses nothing any more');
    is($a1->{'node2.AuthFailures'} - $a0->{'node2.AuthFailures'}, 0, 'node2 refuses nothing');
}
for my $n (qw(node1 node2)) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052|SC1240|died \(status/,
           "no crash in ${n}'s error_log");
}
$c->teardown;
done_testing();
