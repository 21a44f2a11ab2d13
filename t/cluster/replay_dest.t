#!perl
# Replays across members (issue 14, item 3): every sealed frame names its
# destination in its authenticated data, so a frame node1 sealed for node3
# is not authentic at node2.  Three members with one encryptionKey in network
# namespaces (multicast membership, TcpFailureDetector: a PING to every
# member with every heartbeat), and "mallory" (never started) holding the
# key, sending with t/tools/sc_forge:
#   (a) node1's HELLO and a PING to node3 are captured in node3's namespace
#       (sc_forge tcpsniff) as node3 joins, and sent as they are to node2,
#       each on a new connection: node2 does not answer (no PONG: it did not
#       take the connection as node1's), closes the connection, and counts
#       each as an AuthFailure (SC1290 "not authentic" naming it); node2's
#       row for node1 keeps node1's own address;
#   (b) HELLOs forged with the key by mallory: sealed for node2's address
#       (a sender that does not know node2's id) and for node2's id (sniffed
#       from its heartbeat), node2 answers (PONG, opened by sc_forge as sealed
#       for mallory's id); sealed for node3's address and for node3's id,
#       node2 refuses them (AuthFailures, no answer);
#   (c) a HELLO sealed with the key claiming node2's route from mallory's
#       address, sent to node1: refused (SC1224), not answered, and the
#       connection closed by node1 (the bug: it was answered with a PONG and
#       left open);
#   and after all that node1, node2 and node3 still replicate to each other.
# No duration is asserted: sc_forge's "wait" returns when the member closes
# the connection; counters are polled with generous limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(need status_of member_on check within app show demo_module demo_conf alive_on num log_since
               need_netns);
use SC::Forge qw(sc_forge forge_ok lport closed_by_member rx mcast_block);

need_netns();
my $FORGE = sc_forge();
my $DEMO_SO = demo_module();

$SIG{ALRM} = sub { die "replay_dest.t: time limit (150 s) reached\n" };
alarm 150;

my $KEY   = join '', map { sprintf '%02x', $_ } 100 .. 131;
my $GROUP = '228.0.0.4:45564';

my $APP = demo_conf($DEMO_SO);

my $c = SC::Cluster->new(
    members    => [qw(node1 node2 node3 mallory)],
    netns      => 1,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub { mcast_block($_[0], $KEY) },
);
my $MALLORY = $c->member('mallory')->{addr};
my $MID = 'ab' x 16;       # mallory's member id in the forged frames

# sc_forge in mallory's namespace (its exit status must be 0)
sub forge { forge_ok($c, 'mallory', @_) }

# a member's id, from its sealed heartbeat on the group
sub id_of {
    my ($n) = @_;
    my $out = forge('-k', $KEY, '-r', $n, 'sniff', $GROUP, 20000);
    my ($id) = $out =~ /^heartbeat route=\Q$n\E id=([0-9a-f]{32}) /m;
    ok($id, "${n}'s id read from its sealed heartbeat") or diag($out);
    return $id // '00' x 16;
}

# AuthFailures on $n once they grew by $d from $from (polled), the growth
sub af_growth {
    my ($n, $from, $d) = @_;
    my $v = $from;
    within(20, sub { $v = num(status_of($c, $n), 'AuthFailures'); $v - $from >= $d });
    return $v - $from;
}

# ===========================================================================
$c->start('node1');
$c->start('node2');
check(within(30, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') }), $c,
      'node1 and node2 see each other alive');

# (a) capture node1's HELLO and a PING to node3 in node3's namespace ----------
my $N1 = $c->member('node1')->{addr};
my $hello_sniff = $c->spawn('node3', $FORGE, 'tcpsniff', $N1, rx($c, 'node3'), 'HELLO', 40000);
my $ping_sniff = $c->spawn('node3', $FORGE, 'tcpsniff', $N1, rx($c, 'node3'), 'PING', 40000);
$c->start('node3');
my ($hrc, $hout) = $c->finish($hello_sniff, timeout => 60);
my ($prc, $pout) = $c->finish($ping_sniff, timeout => 60);
my ($HELLO, $hsender) = $hout =~ /^frame type=HELLO seq=\d+ sender=([0-9a-f]{32}) src=\S+ raw=([0-9a-f]+)$/m
    ? ($2, $1) : ('', '');
my ($PING, $psender) = $pout =~ /^frame type=PING seq=\d+ sender=([0-9a-f]{32}) src=\S+ raw=([0-9a-f]+)$/m
    ? ($2, $1) : ('', '');
is($hrc, 0, '(a) tcpsniff exits 0 (a HELLO from node1 to node3 captured)') or diag($hout);
is($prc, 0, '(a) tcpsniff exits 0 (a PING from node1 to node3 captured)') or diag($pout);
check(within(30, sub { alive_on($c, 'node1', 'node3') && alive_on($c, 'node3', 'node1')
                       && alive_on($c, 'node2', 'node3') }), $c,
      '(a) node3 joined: node1 and node3, node2 and node3 see each other alive');
my %ID = map { $_ => id_of($_) } qw(node1 node2 node3);
is($hsender, $ID{node1}, "(a) the captured HELLO is node1's (its sender id)");
is($psender, $ID{node1}, "(a) the captured PING is node1's (its sender id)");
# the frames are sealed: flag TAGGED (4) and a 28-byte tag; the version is
# this build's (sc_proto.h)
my ($PROTO) = do { local (@ARGV, $/) = (SC::Cluster::repo_dir() . '/mod_session_cluster/sc_proto.h'); <> }
              =~ /#define SC_PROTO_VERSION\s+(\d+)/;
die "no SC_PROTO_VERSION in sc_proto.h\n" unless $PROTO;
my $V = sprintf '%02x', $PROTO;
like($HELLO, qr/^53434631${V}010004/, "(a) the captured HELLO is sealed (version $PROTO, HELLO, flag TAGGED)");
like($PING, qr/^53434631${V}060004/, "(a) the captured PING is sealed (version $PROTO, PING, flag TAGGED)");

{
    my $before = status_of($c, 'node2');
    my $row0 = member_on($c, 'node2', 'node1') || {};
    my $off = length $c->error_log('node2');
    my %port;
    for my $t ([ HELLO => $HELLO ], [ PING => $PING ]) {
        my ($what, $hex) = @$t;
        my $out = forge('-c', rx($c, 'node2'), '-i', $ID{node1}, 'raw', $hex || '00', 'wait', 20000);
        unlike($out, qr/^recv/m, "(a) node1's $what for node3, sent to node2: not answered (no PONG)")
            or diag($out);
        ok(closed_by_member($out), "(a) ... and node2 closes the connection") or diag($out);
        $port{$what} = lport($out);
    }
    is(af_growth('node2', num($before, 'AuthFailures'), 2), 2,
       '(a) node2 counts the 2 frames as AuthFailures');
    my $log = log_since($c, 'node2', $off);
    for my $what (sort keys %port) {
        like($log, qr/SC1290: EncryptInterceptor: frame from \Q$MALLORY\E:$port{$what} refused: not authentic/,
             "(a) node2 logs SC1290 'not authentic' for the ${what}'s connection (port $port{$what})");
    }
    is(num(status_of($c, 'node2'), 'Replays') - num($before, 'Replays'), 0,
       '(a) ... as not authentic, not as replays (they were never for node2)');
    my $row = member_on($c, 'node2', 'node1') || {};
    is($row->{addr}, $row0->{addr}, "(a) node2's row for node1 keeps node1's address ($row0->{addr})");
    is($row->{state}, 'alive', '(a) ... and node1 is alive there');
}

# (b) forged HELLOs sealed for node2 and for node3 -----------------------------
{
    my $before = status_of($c, 'node2');
    my @me = ('-k', $KEY, '-r', 'mallory', '-a', $MALLORY, '-i', $MID);
    my $out = forge('-c', rx($c, 'node2'), @me, 'hello', 'expect', 'PONG', 20000);
    like($out, qr/^recv PONG seq=\d+ route=node2$/m,
         "(b) a HELLO sealed for node2's address: answered, the PONG sealed for mallory's id")
        or diag($out);
    # (each with a sequence number of its own: node2 knows mallory now)
    $out = forge('-c', rx($c, 'node2'), @me, '-s', 100, '-t', $ID{node2}, 'hello', 'expect', 'PONG', 20000);
    like($out, qr/^recv PONG seq=\d+ route=node2$/m, "(b) a HELLO sealed for node2's id: answered")
        or diag($out);
    for my $t ([ "node3's address", rx($c, 'node3'), 200 ], [ "node3's id", $ID{node3}, 300 ]) {
        my ($what, $dest, $seq) = @$t;
        $out = forge('-c', rx($c, 'node2'), @me, '-s', $seq, '-t', $dest, 'hello', 'wait', 20000);
        unlike($out, qr/^recv/m, "(b) a HELLO sealed for $what, sent to node2: not answered") or diag($out);
        ok(closed_by_member($out), '(b) ... and the connection closed') or diag($out);
    }
    is(af_growth('node2', num($before, 'AuthFailures'), 2), 2,
       "(b) node2: AuthFailures +2 (the HELLOs sealed for node3)");
    is(num(status_of($c, 'node2'), 'Replays') - num($before, 'Replays'), 0, '(b) node2: no Replays');
}

# (c) a HELLO claiming a live member's route from another address --------------
{
    my $off = length $c->error_log('node1');
    my $out = forge('-c', rx($c, 'node1'), '-k', $KEY, '-r', 'node2', '-a', $MALLORY, '-p', 4001,
                    '-i', 'ce' x 16, 'hello', 'wait', 20000);
    my $l = $c->wait_for(sub { log_since($c, 'node1', $off) =~ /(SC1224: [^\n]*)/ ? $1 : '' }, timeout => 20);
    like($l, qr/SC1224: the member at \Q$MALLORY\E:4001 claims route node2/,
         '(c) a HELLO claiming route node2 from mallory: refused (SC1224)') or diag($out);
    unlike($out, qr/^recv/m, '(c) ... not answered (no PONG)') or diag($out);
    ok(closed_by_member($out), '(c) ... and node1 closes the connection') or diag($out);
    check(alive_on($c, 'node1', 'node2'), $c, '(c) node2 is still alive on node1');
}

# the cluster still works: a session made on each member is read on the others
{
    my ($bad, $checked) = (0, 0);
    for my $n (qw(node1 node2 node3)) {
        my $r = app($c, $n, 'auto');
        for my $o (grep { $_ ne $n } qw(node1 node2 node3)) {
            my $x;
            within(20, sub { $x = app($c, $o, 'read', $r->{cookie}); ($x->{session} // '') eq ($r->{cookie} // '-') });
            $checked++;
            $bad++, diag("made on $n, read on $o: " . show($x))
                unless defined $r->{cookie} && ($x->{session} // '') eq $r->{cookie} && ($x->{counter} // '') eq '1';
        }
    }
    check(!$bad && $checked == 6, $c, "a session made on each member is read on the two others ($checked reads, $bad wrong)");
}
for my $n (qw(node1 node2 node3)) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052|SC1240|died \(status/,
           "no crash in ${n}'s error_log");
}
$c->teardown;
done_testing();
