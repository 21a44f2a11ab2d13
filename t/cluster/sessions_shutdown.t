#!perl
# Manager expireSessionsOnShutdown, through httpd's own stop and restart
# signals.  Two static members running the demo application at /app with
# acknowledged replication (channelSendOptions 6); node1's block says
# expireSessionsOnShutdown="true", node2's the default "false":
#   1. three sessions made on each member (six in all, held by both);
#   2. node2 stops (SIGTERM, `apachectl -k stop`): with "false" node1 keeps
#      all six, with their counters, still after it has handled node2's
#      goodbye (which came after anything node2 sent before it left);
#   3. node2 starts again and receives them (state transfer);
#   4. node1 restarts gracefully (SIGUSR1): the engine stays, nothing expires
#      (checked after a later write on node1 has reached node2);
#   5. node1 stops: with "true" it expires every session it holds and tells
#      node2, which drops all six (SessionsActive 0, Expired +6); node1 logs
#      SC1279 with the number, and a cookie of an expired session gets a new
#      session on node2 (never adopted).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
# ReplicationValve only: ids keep their route here, whichever member serves
# them (re-binding with JvmRouteBinderValve is balancer.t's subject)
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
use SC::Test qw(status_of counter check within app show valid_sid demo_module demo_conf sess_line);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "sessions_shutdown.t: time limit (90 s) reached\n" };
alarm 90;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
my ($A, $B) = qw(node1 node2);
my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        my $expire = $m->{name} eq $A ? 'true' : 'false';
        return SC::Cluster::static_block($m, $all, channelSendOptions => 6, valves => $KEEP_ROUTES,
                                         manager => { expireSessionsOnShutdown => $expire });
    },
);

sub ready {
    my ($n, $secs) = @_;
    my $p;
    my $ok = within($secs, sub { $p = status_of($c, $n); $p && $p->{EngineState} eq 'ready' });
    check(defined $ok, $c, "$n is ready", 'last page: ' . sess_line($p));
}

$c->start($A);
ready($A, 20);
$c->start($B);
ready($B, 20);

# 1. three sessions on each member ------------------------------------------------
my %count;    # id => counter
for my $n ($A, $B) {
    for (1 .. 3) {
        my $r = app($c, $n, 'auto');
        my $id = $r->{cookie};
        my $r2 = app($c, $n, 'auto', $id);
        if (valid_sid($id, $n) && ($r2->{counter} // '') eq '2') {
            $count{$id} = 2;
        }
        else {
            check(0, $c, "a session made on $n", show($r), show($r2));
        }
    }
}
is(scalar keys %count, 6, '1. six sessions made, three on each member');
is(counter($c, $_, 'SessionsActive'), 6, "1. $_ holds all six") for $A, $B;

# 2. node2 (expireSessionsOnShutdown false) stops: node1 keeps them ----------------
my $expired_a = counter($c, $A, 'SessionsExpired') // 0;
ok($c->stop($B), '2. node2 stops on SIGTERM');
{
    # node2's goodbye comes after anything it sent before leaving: once node1
    # has handled it (node2 no longer alive there), an expiry would have been
    # applied
    my $p;
    my $ok = within(20, sub { $p = status_of($c, $A); $p && ($p->{MembersAlive} // -1) == 0 });
    check(defined $ok, $c, '2. node1 has handled node2 leaving (MembersAlive 0; polled up to 20 s)',
          'node1: ' . sess_line($p) . ' MembersAlive=' . ($p ? $p->{MembersAlive} // '?' : '?'));
    is($p && $p->{SessionsActive}, 6, '2. node1 still holds six sessions') or diag(sess_line($p));
    is($p && ($p->{SessionsExpired} // 0) - $expired_a, 0, '2. ... and counts no expiry');
    my $bad = 0;
    for my $id (sort keys %count) {
        my $r = app($c, $A, 'auto', $id);
        if (($r->{session} // '') eq $id && ($r->{counter} // '') eq $count{$id} + 1) {
            $count{$id}++;
        }
        else {
            $bad++ or diag(show($r));
        }
    }
    is($bad, 0, '2. node1 serves all six with their counters');
    unlike($c->error_log($B), qr/SC1279/, '2. node2 did not expire anything on its way out');
}

# 3. node2 back, with the state -----------------------------------------------------
$c->start($B);
ready($B, 20);
is(counter($c, $B, 'SessionsActive'), 6, '3. node2 received the six sessions again');

# 4. a graceful restart of node1 expires nothing --------------------------------------
{
    my $pid = counter($c, $A, 'EnginePid');
    my $expired_b = counter($c, $B, 'SessionsExpired') // 0;
    my $log0 = length $c->error_log($A);
    $c->graceful($A);
    is(counter($c, $A, 'EnginePid'), $pid, '4. node1 keeps its engine across a graceful restart');
    # a write on node1 after the restart, acknowledged by node2 (sent by the
    # same engine after anything the restart could have made it send)
    my ($id) = sort keys %count;
    my $r = app($c, $A, 'auto', $id);
    my $rb = app($c, $B, 'read', $id);
    my $want = $count{$id} + 1;
    check(($r->{counter} // '') eq $want && ($rb->{session} // '') eq $id && ($rb->{counter} // '') eq $want,
          $c, "4. after it, a write on node1 (counter $want) is on node2", show($r), show($rb));
    $count{$id} = $want;
    is(counter($c, $B, 'SessionsActive'), 6, '4. node2 still holds six sessions after it');
    is((counter($c, $B, 'SessionsExpired') // 0) - $expired_b, 0, '4. ... and counts no expiry');
    is(counter($c, $A, 'SessionsActive'), 6, '4. ... and node1 holds six too');
    unlike(substr($c->error_log($A), $log0), qr/SC1279/, '4. node1 expired nothing (no SC1279)');
}

# 5. node1 (expireSessionsOnShutdown true) stops: node2 drops everything -------------
{
    my $expired0 = counter($c, $B, 'SessionsExpired') // 0;
    ok($c->stop($A), '5. node1 stops on SIGTERM');
    like($c->error_log($A), qr/SC1279: expireSessionsOnShutdown: 6 session\(s\) expired/,
         '5. node1 logs that it expired its six sessions');
    my $p;
    my $ok = within(20, sub {
        $p = status_of($c, $B);
        $p && ($p->{SessionsActive} // -1) == 0 && ($p->{SessionsExpired} // 0) - $expired0 >= 6;
    });
    check(defined $ok, $c, '5. node2 holds no session any more (polled up to 20 s)', 'last page: ' . sess_line($p));
    is(($p->{SessionsExpired} // 0) - $expired0, 6, '5. node2 counts six expiries');
    my ($id) = sort keys %count;
    my $r = app($c, $B, 'auto', $id);
    ok(($r->{session} // '') eq '(new)' && valid_sid($r->{cookie}, $B) && $r->{cookie} ne $id,
       '5. an expired session\'s cookie gets a new session on node2') or diag(show($r));
    is(counter($c, $B, 'SessionsActive'), 1, '5. ... and node2 holds just that one');
}

ok($c->is_running($B), 'node2 still runs');
my @err = grep { /SC12\d\d/ && /\[(?:\w+:)?(?:error|crit|alert|emerg)\]/ } split /\n/, $c->error_log($B);
ok(!@err, 'node2 logged no session errors') or diag(join "\n", @err);

$c->teardown;
done_testing();
