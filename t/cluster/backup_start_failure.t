#!perl
# BackupManager (issue 18): terminateOnStartFailure, through httpd.conf and
# HTTP.  Two members with <Manager className="...BackupManager"/>: node2
# joins node1 with rpcTimeout 2000, hearing node1 (node2's
# previousEncryptionKey is node1's encryptionKey, so node2 opens node1's
# heartbeats) while node1 cannot open node2's messages (sealed with a key
# node1 does not have): node1 is alive and ready on node2's page, and no
# member can send node2 the session map.
#   1. terminateOnStartFailure="false": node2 turns ready without the map;
#   2. terminateOnStartFailure="true": node2 stays not ready (its page
#      polled for three times as long as case 1 took plus 3 rpcTimeouts:
#      never "ready") and says why in its error_log, naming
#      terminateOnStartFailure.
# Case 1 is the control: the same setup with the other value turns ready, so
# case 2 fails for a member that ignores the attribute.  The map source
# turning suspect on node2 (node1 refuses node2's connections, as a frozen or
# overloaded member would not answer them) is part of "no member able to send
# the map": it must not let node2 in.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of member_on check within app show valid_sid demo_module demo_conf
                encrypt_interceptor channel_add);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 120;
$SIG{ALRM} = sub { die "backup_start_failure.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $POLL = 30;
my $DEMO_SO = demo_module();
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my $APP = demo_conf($DEMO_SO);

sub bm_block {
    my ($m, $all, $mgr, %o) = @_;
    my $x = SC::Cluster::static_block($m, $all, %o, manager => { %{ $mgr || {} } });
    $x =~ s/session\.DeltaManager"/session.BackupManager"/ or die "no Manager element\n";
    return $x;
}

my $t_start = time;
{
    my $t_f = time;
    my $OLD = join '', map { sprintf '%02x', $_ } 0 .. 31;
    my $NEW = join '', map { sprintf '%02x', $_ } 64 .. 95;
    my $RPC = 2000;
    my $tosf = 'false';
    my $d = SC::Cluster->new(
        members    => 2,
        loglevel   => 'info',
        extra_conf => $APP,
        cluster    => sub {
            my ($m, $all) = @_;
            my $joiner = $m->{name} eq 'node2';
            my $x = bm_block($m, $all, $joiner ? { rpcTimeout => $RPC, terminateOnStartFailure => $tosf } : {},
                             valves => $KEEP_ROUTES);
            return channel_add($x, $joiner ? encrypt_interceptor($NEW, $OLD) : encrypt_interceptor($OLD));
        },
    );
    $d->start('node1');
    my $r = app($d, 'node1', 'auto');
    check(valid_sid($r->{cookie}, 'node1'), $d, 'node1 alone, with a session', show($r));
    my %took;
    for my $case ('false', 'true') {
        $tosf = $case;
        $d->configure('node2');    # (the block is written again with $tosf)
        like($d->config_text('node2'), qr/terminateOnStartFailure="$case"/, "node2's block has terminateOnStartFailure=\"$case\"");
        $d->start('node2');
        my $heard = within(20, sub { my $m = member_on($d, 'node2', 'node1');
                                     $m && $m->{state} eq 'alive' && ($m->{member_state} // '') eq 'ready' });
        check($heard, $d, "($case) node2 hears node1, ready", join(' ', %{ member_on($d, 'node2', 'node1') || {} }));
        my $t_heard = time;
        if ($case eq 'false') {
            my $st;
            my $ok = within($POLL, sub { $st = (status_of($d, 'node2') || {})->{EngineState} // '?'; $st eq 'ready' });
            $took{false} = time - $t_heard;
            check($ok, $d, '(false) no member could send the map: node2 turns ready without it', "EngineState $st");
            note(sprintf '(false) ready %.1fs after node2 heard node1', $took{false});
            $d->stop('node2');
            next;
        }
        my $window = 3 * ($took{false} // 5) + 3 * $RPC / 1000;
        my (%seen, $st);
        within($window, sub { $st = (status_of($d, 'node2') || {})->{EngineState} // '(no page)'; $seen{$st}++;
                              $st eq 'ready' });
        ok(!$seen{ready}, sprintf('(true) node2 stays not ready (%.0f s watched: %s)', $window,
                                  join(' ', map { "$_ x$seen{$_}" } sort keys %seen)))
            or diag("node2's error_log since its start:\n" . join("\n", grep { /session_cluster/ }
                    split /\n/, $d->error_log('node2', since_start => 1)));
        like($d->error_log('node2', since_start => 1), qr/terminateOnStartFailure/,
             '(true) node2 says why in its error_log, naming terminateOnStartFailure');
    }
    $d->teardown;
    note(sprintf 'backup_start_failure.t took %.1fs', time - $t_f);
}
done_testing();
