# SessionIdGenerator sessionIdLength (Tomcat's bytes of a session id) acts:
# two members with <SessionIdGenerator sessionIdLength="N"/> in their Manager,
# node1 with 8 bytes and node2 with 17 (the most the store holds beside a
# 63-character route).  A new session's id has 2 x N hex digits before its
# route; it replicates and is read on the other member, whose own length
# differs (an id of the cluster's shape is any even count of hex digits);
# an update on the other member reaches back.  An id of an odd count of hex
# digits, or of more than 17 bytes, is not the cluster's and starts a new
# session.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(check within alive_on app show demo_module demo_conf);

plan tests => 12;

$SIG{ALRM} = sub { die "session_id_length.t: time limit (120 s) reached\n" };
alarm 120;

my %LEN = (node1 => 8, node2 => 17);

my $c = SC::Cluster->new(
    members => 2,
    extra_conf => demo_conf(demo_module()),
    cluster => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all, channelSendOptions => 6,
                                          valves => [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ]);
        my $gen = qq{  <Manager className="org.apache.catalina.ha.session.DeltaManager">\n}
                . qq{    <SessionIdGenerator className="org.apache.catalina.util.StandardSessionIdGenerator" }
                . qq{sessionIdLength="$LEN{ $m->{name} }"/>\n  </Manager>\n};
        $x =~ s{^(<Cluster [^\n]*>\n)}{$1$gen} or die "no <Cluster> line";
        return $x;
    },
);
$c->start_all;
check(within(30, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') }), $c,
      'node1 and node2 see each other alive');

for my $n (qw(node1 node2)) {
    my $other = $n eq 'node1' ? 'node2' : 'node1';
    my $hex = 2 * $LEN{$n};
    my $r = app($c, $n, 'auto');
    my $id = $r->{cookie} // '';
    like($id, qr/^[0-9A-F]{$hex}\.\Q$n\E$/,
         "$n (sessionIdLength $LEN{$n}): a new session's id has $hex hex digits, then its route")
        or diag(show($r));
    my $x = app($c, $other, 'auto', $id);
    is($x->{counter} // '', '2', "$other reads it and updates it (counter 2)") or diag(show($x));
    my $y = app($c, $n, 'read', $id);
    is($y->{counter} // '', '2', "$n has the update made on $other") or diag(show($y));
}

# ids not of the cluster's shape: a fresh session, never adopted
my $odd = ('A' x 15) . '.node1';
my $r = app($c, 'node1', 'auto', $odd);
ok(($r->{session} // '') eq '(new)' && ($r->{cookie} // '') ne $odd,
   'an odd count of hex digits is not an id of the cluster: a new session') or diag(show($r));
my $long = ('B' x 36) . '.node1';
$r = app($c, 'node1', 'auto', $long);
ok(($r->{session} // '') eq '(new)' && ($r->{cookie} // '') ne $long,
   'nor 18 bytes (more than the store holds): a new session') or diag(show($r));
my $short = 'C1.node1';
$r = app($c, 'node1', 'auto', $short);
ok(($r->{session} // '') eq '(new)', 'one byte of hex (2 digits) the cluster does not hold: a new session, not adopted')
    or diag(show($r));
like($r->{cookie} // '', qr/^[0-9A-F]{16}\.node1$/, '... with an id of node1\'s length') or diag(show($r));

$c->stop_all;
ok(!$c->problems, 'no member hung or crashed') or diag(join("\n", $c->problems));
