#!perl
# A change larger than the sending member's own Receiver maxMessageSize is
# not lost without a word (issue 14).  Two static members with Receiver
# maxMessageSize="4096" and Manager maxSessionSize="65536", the demo
# application at /app, LimitRequestLine 16384 (a 10 KB value fits in one
# query string).  node1 replicates asynchronously (channelSendOptions 8),
# node2 synchronously (6).
#   - httpd -t warns that maxSessionSize is more than maxMessageSize can
#     carry (SC1386), and does not with maxMessageSize 69632;
#   - a 10 KB session made on node1: the page answers 200, node1 logs SC1384
#     naming maxMessageSize and maxSessionSize and counts it
#     (ReplicationTooLarge 1); node2 never holds it: checked after a small
#     session made on node1 later did reach node2 (the anchor);
#   - a 10 KB session made on node2 (synchronous): 503 with Retry-After,
#     SC1384 on node2, ReplicationTooLarge 1 there.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";
use SC::Test qw(need status_of check within app demo_module show demo_conf ready_and_alive);
$SC::Test::WITHIN_INTERVAL = 0.05;

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::ConfTest qw(httpd_t);

$SIG{ALRM} = sub { die "message_size.t: time limit (60 s) reached\n" };
alarm 60;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO, server => "LimitRequestLine 16384\n");
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
sub block {
    my ($send) = @_;
    return sub {
        my $x = SC::Cluster::static_block($_[0], $_[1], channelSendOptions => $send,
                                          manager => { maxSessionSize => 65536 },
                                          valves => $KEEP_ROUTES);
        $x =~ s/autoBind="1"/autoBind="1" maxMessageSize="4096"/ or die "no Receiver line";
        return $x;
    };
}

my $c = SC::Cluster->new(
    members     => 2,
    extra_conf  => $APP,
    member_opts => { node1 => { cluster => block(8) }, node2 => { cluster => block(6) } },
);
my ($A, $B) = qw(node1 node2);
$c->start_all;
{
    my $took = within(30, sub { ready_and_alive($c, $A, $B) });
    check(defined $took, $c, 'both members ready and seeing each other')
        or BAIL_OUT('the cluster did not form');
}

# httpd -t: the warning, and none when maxMessageSize carries maxSessionSize
{
    my $blk = sub {
        my ($mms) = @_;
        return qq{<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster">\n}
             . qq{  <Manager className="org.apache.catalina.ha.session.DeltaManager" maxSessionSize="65536"/>\n}
             . qq{  <Channel className="org.apache.catalina.tribes.group.GroupChannel">\n}
             . qq{    <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver" maxMessageSize="$mms"/>\n}
             . qq{  </Channel>\n</Cluster>\n};
    };
    my $r = httpd_t($blk->(4096));
    is($r->{status}, 0, 'httpd -t: maxSessionSize 65536 with maxMessageSize 4096 passes') or diag($r->{err});
    like($r->{err}, qr/SC1386: Manager maxSessionSize 65536 is more than this member's Receiver maxMessageSize 4096 can carry .*a session larger than \d+ bytes is stored but not replicated/,
         'httpd -t warns that maxSessionSize is more than maxMessageSize can carry (SC1386)');
    my $ok = httpd_t($blk->(65536 + 4096));
    is($ok->{status}, 0, 'httpd -t: maxMessageSize 69632 passes') or diag($ok->{err});
    unlike($ok->{err}, qr/SC1386/, '... and does not warn') or diag($ok->{err});
}

sub held {
    my ($n, $id) = @_;
    my ($st, undef, $b) = $c->get($n, "/cluster-manager?session=$id");
    return '' unless ($st // 0) == 200 && ($b // '') =~ /^SessionHeld: (yes|no)$/m;
    return $1;
}

my $BIG = 'x' x 10240;

# asynchronous: node1
{
    my $r = app($c, $A, "set=big&value=$BIG");
    my $id = $r->{sid};
    check(($r->{status} // 0) == 200 && defined $id, $c,
          'node1 (asynchronous): a 10 KB session answers 200 with a session id', show($r));
    my $logged = within(20, sub {
        $c->error_log($A) =~ /SC1384: replication of \Q$id\E: not sent, the message \(\d+ bytes\) is larger than this member's Receiver maxMessageSize 4096; Manager maxSessionSize 65536/
    });
    check(defined $logged, $c, 'node1 logs SC1384 naming maxMessageSize and maxSessionSize');
    is(status_of($c, $A)->{ReplicationTooLarge}, 1, 'node1 counts it: ReplicationTooLarge 1');
    is(held($A, $id), 'yes', 'node1 holds the 10 KB session');
    # the anchor: a later small session from node1 reaches node2
    my $s = app($c, $A, 'set=small&value=1');
    my $sid = $s->{sid};
    my $came = within(20, sub { defined $sid && held($B, $sid) eq 'yes' });
    check(defined $came, $c, 'a small session made on node1 afterwards reaches node2', show($s));
    is(held($B, $id), 'no', 'node2 does not hold the 10 KB session');
}

# synchronous: node2
{
    my $r = app($c, $B, "set=big&value=$BIG");
    check(($r->{status} // 0) == 503 && ($r->{headers}{'retry-after'} // '') eq '1', $c,
          'node2 (synchronous): a 10 KB session answers 503 with Retry-After: 1', show($r));
    my $logged = within(20, sub {
        $c->error_log($B) =~ /SC1384: replication of [0-9A-F]{32}\.node2: not sent, .*maxMessageSize 4096; Manager maxSessionSize 65536/
    });
    check(defined $logged, $c, 'node2 logs SC1384');
    is(status_of($c, $B)->{ReplicationTooLarge}, 1, 'node2 counts it: ReplicationTooLarge 1');
}

done_testing;
