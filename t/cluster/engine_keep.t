#!perl
# The engine across httpd's restarts (README "The engine", "Manager attributes
# here"), two static members with the demo application, node1 with
# expireSessionsOnShutdown="true":
#   1. three sessions (two made on node1, one on node2), held by both;
#   2. `apachectl -k restart` of node1 (SIGHUP: httpd's hard restart, every
#      child replaced) with an unchanged block keeps its engine: the same
#      EnginePid, Incarnation and EngineStarts; node2 counts no restart of
#      node1, shows the same incarnation and never saw node1 other than alive
#      while the restart ran; nothing expired (node1 still reads every
#      session's counter; SC1279 not logged);
#   3. a graceful restart of node1 without its <Cluster> block (and without
#      SessionClusterRoute and SessionCluster, which httpd -t refuses without
#      a block): node1 logs SC1242, its engine is gone and the page says no
#      engine runs; node2 shows node1 `left` (it said goodbye); with
#      expireSessionsOnShutdown node1 expired the three sessions it held
#      (SC1279 with the number) and node2 dropped them; a cookie of one of
#      them gets a new session on node2 (never adopted).
# No duration is asserted; deadlines are polling limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of member_on counter check within app show valid_sid demo_module demo_conf sess_line);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "engine_keep.t: time limit (90 s) reached\n" };
alarm 90;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all, channelSendOptions => 6, valves => $KEEP_ROUTES,
                                         manager => { expireSessionsOnShutdown =>
                                                      $m->{name} eq 'node1' ? 'true' : 'false' });
    },
);
$c->start_all;
check(within(20, sub {
    my ($a, $b) = (member_on($c, 'node1', 'node2'), member_on($c, 'node2', 'node1'));
    $a && $b && $a->{state} eq 'alive' && $b->{state} eq 'alive'
        && (status_of($c, 'node2')->{EngineState} // '') eq 'ready';
}), $c, 'node1 and node2 alive to each other, node2 ready');

# 1. three sessions ------------------------------------------------------------------
my %count;
for my $n (qw(node1 node1 node2)) {
    my $r = app($c, $n, 'auto');
    my $id = $r->{cookie};
    $r = app($c, $n, 'auto', $id);
    check(valid_sid($id, $n) && ($r->{counter} // '') eq '2', $c, "1. a session made on $n", show($r));
    $count{$id} = 2;
}
is(scalar keys %count, 3, '1. three sessions made');
is(counter($c, $_, 'SessionsActive'), 3, "1. $_ holds the three") for qw(node1 node2);

# 2. -k restart (SIGHUP) with an unchanged block ----------------------------------------
{
    my $p0 = status_of($c, 'node1') || {};
    my $m0 = member_on($c, 'node2', 'node1') || {};
    ok(($p0->{EnginePid} // 0) > 0, "2. node1's engine runs (EnginePid $p0->{EnginePid})");
    my $off = length $c->error_log('node1');
    my $m = $c->member('node1');
    my $resumed = sub { my @n = $c->error_log('node1') =~ /resuming normal operations/g; scalar @n };
    my $before = $resumed->();
    my %kids0 = map { $_ => 1 } grep { $_ != $m->{pid} && $_ != $p0->{EnginePid} } $c->pids('node1');
    kill 'HUP', $m->{pid} or die "SIGHUP to node1 ($m->{pid}): $!";
    my (%views, $samples);
    my $done = within(30, sub {
        my $v = member_on($c, 'node2', 'node1');
        $views{ $v ? $v->{state} : '(no line)' }++;
        $samples++;
        return 0 unless $resumed->() > $before;
        my ($s) = $c->get('node1', '/cluster-manager?auto', timeout => 2);
        return $s == 200;
    });
    check($done, $c, '2. node1 restarted (SIGHUP: "resuming normal operations" again) and answers');
    my @old_kids = grep { SC::Cluster::pid_alive($_) } keys %kids0;
    is(scalar @old_kids, 0, '2. it was a hard restart: none of node1\'s ' . scalar(keys %kids0)
                            . ' children before it is left') or diag("still there: @old_kids");
    my $p1 = status_of($c, 'node1') || {};
    is($p1->{EnginePid}, $p0->{EnginePid}, '2. node1 keeps its engine: same EnginePid');
    is($p1->{Incarnation}, $p0->{Incarnation}, '2. ... same Incarnation');
    is($p1->{EngineStarts}, $p0->{EngineStarts}, "2. ... EngineStarts still $p0->{EngineStarts}");
    is($p1->{EngineState}, 'ready', '2. ... and it is ready');
    my $m1 = member_on($c, 'node2', 'node1') || {};
    is($m1->{incarnation}, $m0->{incarnation}, '2. node2 shows the same incarnation of node1');
    is($m1->{restarts}, $m0->{restarts}, "2. node2 counts no restart of node1 ($m0->{restarts})");
    is(join(',', sort keys %views), 'alive',
       "2. node2 saw node1 alive throughout the restart ($samples samples)")
        or diag(join(' ', %views));
    my $log = substr($c->error_log('node1'), $off);
    unlike($log, qr/SC1238|SC1236|starting a new one|SC1279/,
           '2. node1 neither started an engine (SC1236/SC1238) nor expired sessions (SC1279)');
    my @wrong;
    for my $id (sort keys %count) {
        my $r = app($c, 'node1', 'read', $id);
        push @wrong, "$id: " . show($r) unless ($r->{session} // '') eq $id && ($r->{counter} // '') eq $count{$id};
    }
    is(scalar @wrong, 0, '2. node1 still reads all three sessions with their counters') or diag(join("\n", @wrong));
}

# 3. the block removed -------------------------------------------------------------------
{
    my $p0 = status_of($c, 'node1') || {};
    my $engine = $p0->{EnginePid};
    my $active2 = counter($c, 'node2', 'SessionsActive');
    my $off = length $c->error_log('node1');
    $c->configure('node1', cluster => '', route => undef, extra_conf => '');
    unlike($c->config_text('node1'), qr/^\s*(?:<Cluster|SessionClusterRoute\s|SessionCluster\s+On)/mi,
           '3. node1\'s new configuration has no <Cluster> block, route or SessionCluster');
    $c->graceful('node1');
    my $log = '';
    check(within(20, sub { $log = substr($c->error_log('node1'), $off); $log =~ /SC1242/ }), $c,
          '3. node1 logs SC1242 (the <Cluster> block is gone: the engine leaves)');
    like($log, qr/SC1242: the <Cluster> block is gone: the cluster engine leaves/, '3. SC1242 says so');
    check(within(20, sub { !SC::Cluster::pid_alive($engine) }), $c, "3. node1's engine ($engine) is gone");
    my $p1 = status_of($c, 'node1') || {};
    ok(!$p1->{EnginePid} || $p1->{EnginePid} eq '0' || $p1->{EnginePid} ne $engine,
       '3. node1\'s page names no running engine') or diag('EnginePid: ' . ($p1->{EnginePid} // 'none'));
    my $v;
    check(within(20, sub { $v = member_on($c, 'node2', 'node1'); $v && $v->{state} eq 'left' }), $c,
          '3. node2 shows node1 left (a goodbye, not a failure)',
          'node1 on node2: ' . ($v ? join(' ', %$v) : '(none)'));
    check(within(20, sub { $log = substr($c->error_log('node1'), $off); $log =~ /SC1279/ }), $c,
          '3. node1 logs SC1279 (expireSessionsOnShutdown)');
    like($log, qr/SC1279:[^\n]*\b3\b/, '3. SC1279 counts the three sessions') or diag($log);
    my $p2;
    check(within(20, sub { $p2 = status_of($c, 'node2'); $p2 && ($p2->{SessionsActive} // -1) == 0 }), $c,
          "3. node2 dropped the three sessions node1 expired (SessionsActive $active2 -> 0)",
          'node2: ' . sess_line($p2));
    my ($id) = sort keys %count;
    my $r = app($c, 'node2', 'auto', $id);
    check(($r->{counter} // '') eq '1' && valid_sid($r->{cookie}, 'node2') && $r->{cookie} ne $id, $c,
          '3. a cookie of an expired session gets a new session on node2', show($r));
}

for my $n ($c->members) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
