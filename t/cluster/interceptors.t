#!perl
# What the interceptors do here, told truthfully (issue 14, item 9).
#   1. Configuration (httpd -t -D DUMP_CLUSTER): an attribute of an
#      interceptor the engine runs that changes nothing here (TcpPing
#      useThread/staticOnly, TcpFailureDetector performSendTest,
#      MessageDispatch maxThreads, optionFlag) is named once with its line
#      in the block's warning of what has no effect (SC1413) and listed with
#      its reason under "# ignored:"; one that works
#      (TcpPingInterceptor interval) is not.  "# note:" lines say that
#      MessageDispatchInterceptor changes nothing (also when Tomcat adds it
#      by default), what TcpPingInterceptor does with its interval (shorter
#      or not than the heartbeat), that an asynchronous channelSendOptions
#      without MessageDispatchInterceptor is asynchronous all the same, and
#      that the order of written interceptors has no effect (not said for
#      one interceptor, nor for Tomcat's defaults).
#   2. At run time: node1 with TcpPingInterceptor interval=100 and node2
#      without, both with a heartbeat every 1000 ms: node1's engine logs what
#      its interceptors do (SC1331) and its page shows the same notes; node1
#      sends at least 3 times as many TCP pings as node2 over the same
#      stretch (interval 100 against 1000: about 10 times); a session written
#      on node1 without MessageDispatchInterceptor is counted as DispatchAsync,
#      was handed to the engine through shared memory (HandoffsRing, none by
#      the socket for want of room, none not well formed) and reaches node2.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::ConfTest qw(httpd_t);
use SC::Cluster;
use SC::Test qw(status_of check within app demo_module demo_conf);
SC::Test::dump_options(tail => 20, cut => 300);

my $LIMIT = 120;
$SIG{ALRM} = sub { die "interceptors.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $IC = 'org.apache.catalina.tribes.group.interceptors';

sub block {
    my (%o) = @_;
    my $ics = join '', map { "    $_\n" } @{ $o{interceptors} || [] };
    return qq{<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelSendOptions="}
         . ($o{send} // 8) . qq{">\n}
         . qq{  <Channel className="org.apache.catalina.tribes.group.GroupChannel">\n}
         . qq{    <Membership className="org.apache.catalina.tribes.membership.McastService" frequency="}
         . ($o{frequency} // 500) . qq{" dropTime="5000"/>\n}
         . $ics
         . qq{  </Channel>\n</Cluster>\n};
}

sub notes { my ($out) = @_; return grep { /^# note: / } split /\n/, $out }

# 1. configuration ---------------------------------------------------------------------
{
    my $r = httpd_t(block(frequency => 1000, interceptors => [
        qq{<Interceptor className="$IC.TcpPingInterceptor" interval="100" useThread="true" staticOnly="true"/>},
        qq{<Interceptor className="$IC.TcpFailureDetector" performSendTest="false"/>},
        qq{<Interceptor className="$IC.MessageDispatchInterceptor" maxThreads="4" optionFlag="8"/>},
    ]), args => [ '-D', 'DUMP_CLUSTER' ]);
    is($r->{status}, 0, '1. the block passes httpd -t') or diag($r->{err});
    my %line = (TcpPingInterceptor => 4, TcpFailureDetector => 5, MessageDispatchInterceptor => 6);
    for my $t ([ TcpPingInterceptor => 'useThread', qr/the engine's own loop sends the pings every interval/ ],
               [ TcpPingInterceptor => 'staticOnly', qr/every connected member gets the pings/ ],
               [ TcpFailureDetector => 'performSendTest', qr/always sends a PING over TCP and waits for its answer/ ],
               [ MessageDispatchInterceptor => 'maxThreads', qr/there are no sender threads/ ],
               [ MessageDispatchInterceptor => 'optionFlag', qr/not a stack of message filters/ ]) {
        my ($cls, $attr, $why) = @$t;
        # the block's one warning of what has no effect (SC1413, issue 17) names it once
        my @w = grep { /SC1413: .*\b\Q$cls.$attr\E \(line $line{$cls}\)/ } split /\n/, $r->{err};
        is(scalar @w, 1, "1. $cls $attr: named once, with its line $line{$cls}, in the warning of what has no effect (SC1413)") or diag($r->{err});
        like($r->{out}, qr/^# ignored: \Q$r->{file}\E:$line{$cls}: \Q$cls\E attribute \Q$attr\E \(.*$why/m,
             "1. ... and listed under '# ignored:' in the dump, saying why");
    }
    unlike($r->{err}, qr/TcpPingInterceptor[ .](?:attribute )?interval/, '1. TcpPingInterceptor interval is not called ignored');
    unlike($r->{out}, qr/^# ignored: .*attribute interval\b/m, '1. ... nor listed as ignored');
    my @n = notes($r->{out});
    is(scalar(grep { /^# note: MessageDispatchInterceptor changes nothing here: .*queued by the engine and sent from its own loop with or without it/ } @n), 1,
       '1. a note: MessageDispatchInterceptor changes nothing here') or diag(join("\n", @n));
    is(scalar(grep { /^# note: TcpPingInterceptor: every connected member gets a TCP ping every 100 ms \(interval\) instead of with each heartbeat \(every 1000 ms\)/ } @n), 1,
       '1. a note: TcpPingInterceptor pings every 100 ms instead of every heartbeat (1000 ms)') or diag(join("\n", @n));
    is(scalar(grep { /^# note: Interceptor order has no effect here/ } @n), 1,
       '1. a note: the order of the interceptors has no effect') or diag(join("\n", @n));
}
{
    my $r = httpd_t(block(frequency => 500, interceptors => [
        qq{<Interceptor className="$IC.TcpPingInterceptor" interval="2000"/>},
    ]), args => [ '-D', 'DUMP_CLUSTER' ]);
    is($r->{status}, 0, '1. a TcpPingInterceptor alone passes httpd -t') or diag($r->{err});
    my @n = notes($r->{out});
    is(scalar(grep { /^# note: TcpPingInterceptor changes nothing here: every connected member gets a TCP ping with each heartbeat, every 500 ms, at least as often as interval 2000 ms/ } @n), 1,
       '1. interval 2000 above the heartbeat (500): a note says it changes nothing') or diag(join("\n", @n));
    is(scalar(grep { /Interceptor order/ } @n), 0, '1. one interceptor written: no note on order') or diag(join("\n", @n));
    is(scalar(grep { /^# note: channelSendOptions asynchronous \(8\) without MessageDispatchInterceptor: .*queues the message/ } @n), 1,
       '1. asynchronous without MessageDispatchInterceptor: a note says it is asynchronous all the same')
        or diag(join("\n", @n));
    unlike($r->{err}, qr/SC1001|SC1413/, '1. nothing written that has no effect: no SC1001, no SC1413') or diag($r->{err});
}
{
    my $r = httpd_t(block(send => 2), args => [ '-D', 'DUMP_CLUSTER' ]);
    is($r->{status}, 0, '1. a block without interceptors passes httpd -t') or diag($r->{err});
    my @n = notes($r->{out});
    is(scalar(grep { /^# note: Interceptor: none written, Tomcat's defaults added \(MessageDispatchInterceptor, TcpFailureDetector\)/ } @n), 1,
       '1. Tomcat\'s default interceptors are added') or diag(join("\n", @n));
    is(scalar(grep { /^# note: MessageDispatchInterceptor changes nothing here/ } @n), 1,
       '1. ... and the note says the default MessageDispatchInterceptor changes nothing') or diag(join("\n", @n));
    is(scalar(grep { /Interceptor order|without MessageDispatchInterceptor/ } @n), 0,
       '1. ... no note on order (none written) nor on a missing MessageDispatchInterceptor') or diag(join("\n", @n));
}

# 2. at run time --------------------------------------------------------------------------
my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all, membership => { frequency => 1000, dropTime => 5000 });
        if ($m->{name} eq 'node1') {
            $x =~ s{(\s*<Interceptor className="\Q$IC\E\.TcpFailureDetector"/>)}
                   {\n    <Interceptor className="$IC.TcpPingInterceptor" interval="100"/>$1}
                or die 'no TcpFailureDetector in the static block';
        }
        return $x;
    },
);
$c->start_all;
{
    my $ok = within(20, sub {
        my $p = status_of($c, 'node1') or return 0;
        my ($m) = grep { ($_->{route} // '') eq 'node2' } @{ $p->{members} };
        return $m && ($m->{state} // '') eq 'alive';
    });
    check($ok, $c, '2. node1 sees node2 alive');
    my $log1 = $c->error_log('node1');
    my @l = grep { /SC1331: TcpPingInterceptor: every connected member gets a TCP ping every 100 ms \(interval\) instead of with each heartbeat \(every 1000 ms\)/ }
            split /\n/, $log1;
    is(scalar @l, 1, '2. node1\'s engine logs what TcpPingInterceptor does here (SC1331), once')
        or diag(join("\n", grep { /SC1331/ } split /\n/, $log1));
    is(scalar(grep { /SC1331: Interceptor order has no effect here/ } split /\n/, $log1), 1,
       '2. ... and that the order has no effect');
    is(scalar(grep { /SC1331: TcpPingInterceptor/ } split /\n/, $c->error_log('node2')), 0,
       '2. node2 (no TcpPingInterceptor) logs nothing about one');
    my ($s, undef, $b) = $c->get('node1', '/cluster-manager?auto');
    like($b // '', qr/^# note: TcpPingInterceptor: every connected member gets a TCP ping every 100 ms/m,
         '2. node1\'s page shows the TcpPingInterceptor note');
    like($b // '', qr/^# note: channelSendOptions asynchronous \(8\) without MessageDispatchInterceptor/m,
         '2. ... and the note on asynchronous sends without MessageDispatchInterceptor');

    # pings over the same stretch: node2's 8 more (a heartbeat each, about
    # 8 s) against node1's in a window that encloses node2's
    my ($a1, $a2) = map { status_of($c, $_)->{PingsOut} } qw(node1 node2);
    my $b2;
    my $moved = within(30, sub {
        my $p = status_of($c, 'node2') or return 0;
        $b2 = $p->{PingsOut};
        return defined $b2 && $b2 >= $a2 + 8;
    });
    my $b1 = status_of($c, 'node1')->{PingsOut};
    check($moved, $c, '2. node2 sent 8 more TCP pings', "node2 PingsOut $a2 -> " . ($b2 // '?'));
    my ($d1, $d2) = ($b1 - $a1, $b2 - $a2);
    note("2. TCP pings over the same stretch: node1 +$d1 (interval 100), node2 +$d2 (heartbeat 1000)");
    cmp_ok($d1, '>=', 3 * $d2, "2. node1 (TcpPingInterceptor interval 100) sent at least 3 times node2's pings: $d1 against $d2");

    # asynchronous without MessageDispatchInterceptor
    my $q0 = status_of($c, 'node1')->{DispatchAsync};
    my $r = app($c, 'node1', 'auto');
    my $sid = $r->{cookie};
    like($sid // '', qr/^[0-9A-Fa-f]{32}\.node1$/, '2. a session made on node1');
    my $q1;
    within(20, sub { $q1 = status_of($c, 'node1')->{DispatchAsync}; $q1 > $q0 });
    cmp_ok($q1 // 0, '>', $q0, "2. node1 counted it as DispatchAsync ($q0 -> " . ($q1 // '?') . ') without MessageDispatchInterceptor');
    # handed to the engine through shared memory, not its socket
    my $st = status_of($c, 'node1');
    cmp_ok($st->{HandoffsRing} // 0, '>=', $q1 // 1,
           "2. node1's children handed every asynchronous change over through shared memory (HandoffsRing "
           . ($st->{HandoffsRing} // '?') . ", DispatchAsync $q1)");
    is($st->{HandoffsRingFull}, 0, '2. ... none went by the socket for want of room');
    is($st->{HandoffsRingBad}, 0, '2. ... and the engine found none not well formed');
    my $got;
    within(20, sub { my $x = app($c, 'node2', 'read', $sid); $got = $x; ($x->{counter} // '') eq '1' });
    # (node2 re-binds it to its route: JvmRouteBinderValve, a Tomcat default)
    my ($base) = ($sid // '') =~ /^([0-9A-Fa-f]{32})\./;
    like($got ? $got->{session} // '' : '', qr/^\Q$base\E\.node[12]$/, '2. ... and node2 has the session');
    is($got && $got->{counter}, 1, '2. ... with its counter');
}
$c->teardown;
done_testing;
