#!perl
# Manager processExpiresFrequency (README "Expiry"): the engine's sweep
# removes idle sessions every processExpiresFrequency ticks (a tick is a
# second here), as Tomcat's background process does every
# processExpiresFrequency-th time it runs.  One member each time, Manager
# maxInactiveInterval="2" (no SessionMaxAge: only the cluster decides),
# probationInactiveInterval="0" (no probation), sessions that saw two
# requests:
#   A. processExpiresFrequency="3600": the first expiry run comes an hour
#      after the engine starts.  Five seconds past their idle limit the three
#      sessions are still held (?session=ID: SessionHeld: yes) and
#      SessionsExpired has not moved, while a request that presents one of
#      the ids gets a new session: an idle session is gone for requests at
#      once, and stays in the store until the sweep.
#   B. processExpiresFrequency="1": three sessions made the same way are
#      removed (SessionHeld: no, SessionsExpired +3), polled up to 30 s.
# No duration is asserted; the 30 s deadline is a polling limit.  A module
# that ignores the attribute (a sweep every second) fails A; one with
# Tomcat's 60 s clock whatever the attribute says fails B.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of counter check within app show valid_sid demo_module demo_conf);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "expires_frequency.t: time limit (150 s) reached\n" };
alarm 150;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);

sub held {
    my ($c, $n, $id) = @_;
    my ($s, undef, $b) = $c->get($n, "/cluster-manager?session=$id", timeout => 3);
    return undef unless $s == 200;
    return ($b // '') =~ /^SessionHeld: yes$/m ? 1 : ($b // '') =~ /^SessionHeld: no$/m ? 0 : undef;
}

sub cluster {
    my ($freq) = @_;
    my $c = SC::Cluster->new(
        members    => 1,
        loglevel   => 'info',
        extra_conf => $APP,
        cluster    => sub {
            my ($m, $all) = @_;
            return SC::Cluster::static_block($m, $all, manager => {
                maxInactiveInterval => '2', probationInactiveInterval => '0',
                processExpiresFrequency => $freq });
        },
    );
    $c->start_all;
    my $ready = within(20, sub { (status_of($c, 'node1')->{EngineState} // '') eq 'ready' });
    check($ready, $c, "processExpiresFrequency=$freq: node1 ready");
    like($c->config_text('node1'), qr/processExpiresFrequency="$freq"/,
         "processExpiresFrequency=$freq: written in the block");
    return $c;
}

# three sessions with two requests each; returns their ids and the time of
# the last answer
sub sessions {
    my ($c, $part) = @_;
    my @ids;
    for my $i (1 .. 3) {
        my $r = app($c, 'node1', 'auto');
        my $id = $r->{cookie};
        my $r2 = app($c, 'node1', 'auto', $id);
        check(valid_sid($id, 'node1') && ($r2->{counter} // '') eq '2', $c,
              "$part. session $i made (counter 2)", show($r), show($r2));
        push @ids, $id;
    }
    return (\@ids, time);
}

# A. a large processExpiresFrequency ------------------------------------------
{
    my $c = cluster(3600);
    my $exp0 = counter($c, 'node1', 'SessionsExpired');
    my ($ids, $t) = sessions($c, 'A');
    sleep 2 + 5 - (time - $t) if time - $t < 2 + 5;
    my @held = grep { held($c, 'node1', $_) } @$ids;
    check(@held == 3, $c, 'A. 5 s past maxInactiveInterval (2 s) all three sessions are still held: '
          . 'the sweep has not run (processExpiresFrequency=3600)',
          'held: ' . scalar(@held));
    is(counter($c, 'node1', 'SessionsExpired'), $exp0, 'A. ... and SessionsExpired has not moved');
    my $r = app($c, 'node1', 'read', $ids->[0]);
    check(($r->{session} // '') eq '(new)' && $r->{status} == 200, $c,
          'A. a request with one of the ids gets a new session (idle too long for requests)', show($r));
    $c->teardown;
}

# B. processExpiresFrequency="1" -----------------------------------------------
{
    my $c = cluster(1);
    my $exp0 = counter($c, 'node1', 'SessionsExpired');
    my ($ids) = sessions($c, 'B');
    my $gone = within(30, sub { !grep { held($c, 'node1', $_) } @$ids });
    check($gone, $c, 'B. processExpiresFrequency=1: the three sessions are removed by the sweep');
    cmp_ok(counter($c, 'node1', 'SessionsExpired') - $exp0, '>=', 3,
           'B. ... counted in SessionsExpired (+3)');
    $c->teardown;
}

done_testing();
