#!perl
# DeltaManager sendAllSessions, sendAllSessionsSize, sendAllSessionsWaitTime
# (README "State transfer"), through a joining member's log.  node1 starts
# alone and gets 12 sessions (two requests each); then node2 starts and takes
# node1's state transfer.  Both members have sendAllSessionsSize="5" and
# sendAllSessionsWaitTime="1500":
#   A. sendAllSessions="false": node2 reports the transfer complete (SC1263)
#      with 12 sessions in 3 messages (blocks of 5, 5, 2), and node1 that it
#      sent them in 3 messages (SC1267).  node1 pauses 1500 ms between two
#      blocks: while it does, node2's page shows it still starting with part
#      of the sessions received (0 < TransferIn < 12), a state that a sender
#      ignoring the wait passes through in a moment.  node2 then serves every
#      session with its counter.
#   B. sendAllSessions="true" (Tomcat's default: the state in one go): 12
#      sessions in 1 message, whatever sendAllSessionsSize says, on both
#      sides; node2 serves them.
#   C. sendAllSessions="true" with the Receiver's maxMessageSize="16384"
#      (Manager maxSessionSize="4096") and 12 sessions of about 3 KB each
#      (an attribute of 3000 bytes): "in one go" is at most a message of
#      maxMessageSize (less room for one session), so the 36 KB come in 3 or
#      more messages, each within the limit node2 accepts; node2 serves every
#      session with its attribute.
# In A and B node2 also logs that it readied its store's pages for what node1
# holds (SC2100, "N page(s) ... made resident ahead of its writes"): node1's
# blocks say how many sessions and data blocks it holds, and node2's engine
# makes those pages resident on a thread of its own while it stores them.
# A module that ignores sendAllSessions (blocks always, or never) fails A or
# B; one that ignores sendAllSessionsWaitTime fails A's partial state; one that
# fills a message past maxMessageSize fails C (node2 refuses the frame).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of check within app show valid_sid demo_module demo_conf);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "send_all_sessions.t: time limit (150 s) reached\n" };
alarm 150;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my $N = 12;
my $WAIT = 1500;

sub ready {
    my ($c, $n) = @_;
    return within(30, sub { (status_of($c, $n)->{EngineState} // '') eq 'ready' });
}

sub transfer {
    my ($part, $send_all, %o) = @_;
    my $c = SC::Cluster->new(
        members    => 2,
        loglevel   => 'info',
        extra_conf => $APP,
        cluster    => sub {
            my ($m, $all) = @_;
            my $x = SC::Cluster::static_block($m, $all, channelSendOptions => 6,
                valves => $KEEP_ROUTES, manager => {
                    sendAllSessions => $send_all, sendAllSessionsSize => '5',
                    sendAllSessionsWaitTime => $WAIT, probationInactiveInterval => '0',
                    %{ $o{manager} || {} } });
            $x =~ s{autoBind="1"/>}{autoBind="1" $o{receiver}/>} if $o{receiver};
            return $x;
        },
    );
    $c->start('node1');
    check(ready($c, 'node1'), $c, "$part. node1 (alone) is ready");
    my %s;
    for my $i (1 .. $N) {
        my $r = app($c, 'node1', 'auto');
        my $r2 = app($c, 'node1', 'auto', $r->{cookie});
        if ($o{value}) {
            my $r3 = app($c, 'node1', "set=big&value=$o{value}", $r->{cookie});
            next unless ($r3->{attrs}{big} // '') eq $o{value};
        }
        $s{ $r->{cookie} } = 2 if valid_sid($r->{cookie}, 'node1') && ($r2->{counter} // '') eq '2';
    }
    is(scalar keys %s, $N, "$part. $N sessions made on node1");
    $c->start('node2');
    # what node2's page shows while the transfer runs (state, sessions received)
    my %seen;
    check(within(30, sub {
              my $p = status_of($c, 'node2') || {};
              my $st = $p->{EngineState} // '';
              $seen{"$st " . ($p->{TransferIn} // '-')} = 1;
              $st eq 'ready';
          }), $c, "$part. node2 is ready after its state transfer");
    my @partial = grep { /^starting (\d+)$/ && $1 > 0 && $1 < $N } keys %seen;
    my ($line) = $c->error_log('node2') =~ /^(.*\bSC1263: state transfer from node1 complete.*)$/m;
    ok(defined $line, "$part. node2 logs the transfer from node1 complete (SC1263)");
    my ($n, $msgs) = ($line // '') =~ /complete: (\d+) session\(s\) in (\d+) message\(s\)/;
    my $sent;
    within(10, sub { ($sent) = $c->error_log('node1') =~ /^(.*\bSC1267: state transfer to node2: .*)$/m });
    my ($n1, $msgs1) = ($sent // '') =~ /: (\d+) session\(s\) sent in (\d+) message\(s\)/;
    my $bad = 0;
    for my $id (sort keys %s) {
        my $r = app($c, 'node2', 'auto', $id);
        $bad++ or diag(show($r)) unless ($r->{session} // '') eq $id && ($r->{counter} // '') eq '3'
                                         && (!$o{value} || ($r->{attrs}{big} // '') eq $o{value});
    }
    is($bad, 0, "$part. node2 serves every session with its counter (3)");
    my ($ready) = $c->error_log('node2') =~ /^(.*\bSC2100: state transfer: \d+ page.*)$/m;
    my @r = ($c, $line, $sent, $n, $msgs, \@partial, $n1, $msgs1, [ sort keys %seen ], $ready);
    $c->teardown;
    return @r;
}

# A. blocks ----------------------------------------------------------------------
{
    my ($c, $line, $sent, $n, $msgs, $partial, $n1, $msgs1, $seen, $ready) = transfer('A', 'false');
    ok(defined $ready, "A. node2 readied its store's pages for node1's sessions (SC2100)")
        or diag($line // '(no SC1263 line)');
    is($n, $N, "A. node2: $N sessions received") or diag($line // '(no SC1263 line)');
    is($msgs, 3, 'A. node2: in 3 messages (blocks of sendAllSessionsSize 5)') or diag($line // '');
    ok(@$partial, "A. node2's page showed it starting with part of the $N sessions (TransferIn "
       . join(', ', map { (split ' ')[1] } @$partial) . "): node1 paused "
       . 'sendAllSessionsWaitTime between the blocks') or diag('seen: ' . join(' | ', @$seen));
    is($n1, $N, "A. node1: $N sessions sent") or diag($sent // '(no SC1267 line)');
    is($msgs1, 3, 'A. node1: in 3 messages') or diag($sent // '');
}

# B. in one go ----------------------------------------------------------------------
{
    my ($c, $line, $sent, $n, $msgs, undef, $n1, $msgs1, undef, $ready) = transfer('B', 'true');
    ok(defined $ready, "B. node2 readied its store's pages for node1's sessions (SC2100)");
    is($n, $N, "B. node2: $N sessions received") or diag($line // '(no SC1263 line)');
    is($msgs, 1, 'B. node2: in 1 message (sendAllSessions="true": sendAllSessionsSize does not apply)')
        or diag($line // '');
    is($n1, $N, "B. node1: $N sessions sent") or diag($sent // '(no SC1267 line)');
    is($msgs1, 1, 'B. node1: in 1 message') or diag($sent // '');
}

# C. in one go, within maxMessageSize ---------------------------------------------
{
    my $v = join('', map { ('a' .. 'z')[$_ % 26] } 1 .. 3000);
    my ($c, $line, $sent, $n, $msgs, undef, $n1, $msgs1) = transfer('C', 'true',
        value => $v, manager => { maxSessionSize => '4096' },
        receiver => 'maxMessageSize="16384"');
    is($n, $N, "C. node2: $N sessions of about 3 KB received") or diag($line // '(no SC1263 line)');
    cmp_ok($msgs // 0, '>=', 3, 'C. node2: in 3 messages or more (each within maxMessageSize 16384)')
        or diag($line // '');
    cmp_ok($msgs // 99, '<=', $N, 'C. node2: ... and not more than one per session') or diag($line // '');
    is($msgs1, $msgs, 'C. node1 counts the same messages') or diag($sent // '');
}

done_testing();
