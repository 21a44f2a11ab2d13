#!perl
# A restarted member's frames are not replays (EncryptInterceptor).  Every
# sealed frame carries a sequence number, and a member keeps a replay window
# per sender id; a member that restarts (same uniqueId, a new incarnation)
# numbers its frames from 1 again.  The first heartbeat on a new connection
# was checked against the old incarnation's window before its incarnation was
# read: a restarted member's HELLO whose number the old incarnation had used
# was refused as a replay (and key_rotation.t lost node1's updates after a
# graceful restart about once in 15 runs).
# node1 (static membership on 127.0.0.1, an EncryptInterceptor) lists "fake"
# (never started: its uniqueId, address and port are known), played by
# t/tools/sc_forge with the key:
#   (1) incarnation 1: a HELLO numbered 1 and PINGs 2..5 on one connection,
#       each answered with a PONG; node1's row for fake shows incarnation 1;
#   (2) fake "restarts": incarnation 2, a HELLO numbered 1 again and PINGs 2
#       and 3 on a new connection, each answered with a PONG (the bug: the
#       HELLO was refused and the connection closed); node1's row shows
#       incarnation 2 and one restart; Replays unchanged;
#   (3) replays of incarnation 2: its HELLO (1) and its PING 3, the same
#       bytes, each the first frame of a new connection: not answered, the
#       connection closed by node1, Replays +2 (SC1290 "a replayed" for each
#       connection);
#   (4) incarnation 1 again (older than the one known), numbered 50: SC1225
#       ("older incarnation"), its DATA frame not acknowledged and the
#       connection closed (it was not taken as fake's); Replays unchanged;
#       incarnation 2 then goes on (HELLO 10, PING 11, answered) and the row
#       still shows incarnation 2 with one restart.
# No duration is asserted: sc_forge's "expect" returns when the frame comes,
# "wait" when node1 closes the connection; counters are polled.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(status_of member_on within num log_since encrypt_interceptor channel_add);
use SC::Forge qw(sc_forge forge_args lport closed_by_member);

my $FORGE = sc_forge();

$SIG{ALRM} = sub { die "replay_restart.t: time limit (90 s) reached\n" };
alarm 90;

my $KEY = join '', map { sprintf '%02x', $_ } 40 .. 71;

my $c = SC::Cluster->new(
    members  => [qw(node1 fake)],
    loglevel => 'info',
    cluster  => sub {
        my ($m, $all) = @_;
        return channel_add(SC::Cluster::static_block($m, $all), encrypt_interceptor($KEY));
    },
);
$c->start('node1');

my $N1 = '127.0.0.1:' . $c->member('node1')->{cluster_port};
my $F = $c->member('fake');
my $FID = join '', map { sprintf '%02x', $_ } $F->{unique_id} =~ /(\d+)/g;
# fake's heartbeat fields, as node1 lists it
my @FAKE = ('-k', $KEY, '-r', 'fake', '-a', $F->{addr}, '-p', $F->{cluster_port}, '-i', $FID);

# sc_forge's exit status and report
sub forge {
    my ($rc, $out) = $c->exec_in('node1', { timeout => 60 }, $FORGE, @_);
    note("sc_forge " . forge_args(@_) . ":\n$out") if $ENV{SC_VERBOSE};
    return ($rc, $out);
}

# one frame's bytes as hex (sc_forge without -c, sealed for node1's address)
sub frame_hex {
    open my $fh, '-|', 'sh', '-c', 'exec "$0" "$@" 2>/dev/null', $FORGE, '-t', $N1, @_
        or die "sc_forge: $!";
    binmode $fh;
    local $/;
    my $b = <$fh> // '';
    close $fh;
    return unpack 'H*', $b;
}

sub pongs { my ($out) = @_; return scalar(() = $out =~ /^recv PONG seq=\d+ route=node1$/mg) }

sub replays { num(status_of($c, 'node1'), 'Replays') }

# node1's row for fake once it shows incarnation $inc (the page shows what
# the engine last published: polled), else the last one read
sub row_with {
    my ($inc) = @_;
    my $row;
    within(20, sub { $row = member_on($c, 'node1', 'fake') || {}; ($row->{incarnation} // '') eq $inc });
    return $row;
}

my $replays0 = replays();

# (1) incarnation 1 ----------------------------------------------------------
{
    my @a = (@FAKE, '-I', 1, '-s', 1, 'hello', 'expect', 'PONG', 20000);
    push @a, 'ping', 'expect', 'PONG', 20000 for 2 .. 5;
    my ($rc, $out) = forge('-c', $N1, @a);
    is($rc, 0, '(1) incarnation 1: sc_forge exits 0 (every expected PONG came)') or diag($out);
    is(pongs($out), 5, '(1) the HELLO (1) and the PINGs 2..5 are each answered with a PONG') or diag($out);
    my $row = row_with(1);
    is($row->{incarnation}, 1, "(1) node1's row for fake: incarnation 1");
    is(replays(), $replays0, '(1) Replays unchanged');
}

# (2) incarnation 2, numbering from 1 again ----------------------------------
my %HEX = map { $_->[0] => frame_hex(@FAKE, '-I', 2, '-s', $_->[1], $_->[2]) }
          [ hello => 1, 'hello' ], [ ping2 => 2, 'ping' ], [ ping3 => 3, 'ping' ];
ok(!grep({ length $_ < 2 * (40 + 28) } values %HEX), '(2) incarnation 2\'s HELLO 1, PING 2 and PING 3 made');
{
    my $off = length $c->error_log('node1');
    my ($rc, $out) = forge('-c', $N1, @FAKE, 'raw', $HEX{hello}, 'expect', 'PONG', 20000,
                           'raw', $HEX{ping2}, 'expect', 'PONG', 20000,
                           'raw', $HEX{ping3}, 'expect', 'PONG', 20000);
    is($rc, 0, '(2) incarnation 2: sc_forge exits 0 (every expected PONG came)') or diag($out);
    is(pongs($out), 3, '(2) its HELLO numbered 1 again and its PINGs 2, 3 are each answered with a PONG')
        or diag($out, log_since($c, 'node1', $off));
    my $row = row_with(2);
    is($row->{incarnation}, 2, "(2) node1's row for fake: incarnation 2");
    is($row->{restarts}, 1, '(2) ... one restart seen');
    is(replays(), $replays0, '(2) Replays unchanged (no frame of incarnation 2 taken for a replay)');
    unlike(log_since($c, 'node1', $off), qr/SC1290: [^\n]*replayed/, '(2) no SC1290 "replayed"');
}

# (3) incarnation 2's frames again, each first on a new connection ------------
{
    my $off = length $c->error_log('node1');
    my %port;
    for my $t ([ 'HELLO 1', $HEX{hello} ], [ 'PING 3', $HEX{ping3} ]) {
        my ($what, $hex) = @$t;
        my ($rc, $out) = forge('-c', $N1, @FAKE, 'raw', $hex, 'wait', 20000);
        is($rc, 0, "(3) incarnation 2's $what sent again on a new connection: sc_forge exits 0") or diag($out);
        unlike($out, qr/^recv/m, "(3) ... not answered") or diag($out);
        ok(closed_by_member($out), '(3) ... and node1 closes the connection') or diag($out);
        $port{$what} = lport($out);
    }
    my $r = replays();
    within(20, sub { ($r = replays()) - $replays0 >= 2 });
    is($r - $replays0, 2, '(3) node1 counts the 2 as Replays');
    my $log = log_since($c, 'node1', $off);
    for my $what (sort keys %port) {
        like($log, qr/SC1290: EncryptInterceptor: frame from 127\.0\.0\.1:$port{$what} refused: a replayed/,
             "(3) SC1290 'a replayed' for the connection of the ${what} (port $port{$what})");
    }
    my $row = member_on($c, 'node1', 'fake') || {};
    is($row->{incarnation}, 2, "(3) node1's row for fake keeps incarnation 2");
    is($row->{restarts}, 1, '(3) ... and one restart');
}

# (4) incarnation 1 after incarnation 2 ---------------------------------------
{
    my $off = length $c->error_log('node1');
    my $r0 = replays();
    my $in0 = num(member_on($c, 'node1', 'fake'), 'msgs_in');
    my ($rc, $out) = forge('-c', $N1, @FAKE, '-I', 1, '-s', 50, 'hello', '-F', 1, 'data', 'wait', 20000);
    is($rc, 0, '(4) incarnation 1 again (HELLO 50, DATA 51): sc_forge exits 0') or diag($out);
    my $l = $c->wait_for(sub { log_since($c, 'node1', $off) =~ /(SC1225: [^\n]*)/ ? $1 : '' }, timeout => 20);
    like($l, qr/SC1225: heartbeat of fake from \S+ has an older incarnation/,
         '(4) node1 refuses the older incarnation (SC1225)') or diag(log_since($c, 'node1', $off));
    unlike($out, qr/^recv ACK/m, '(4) ... its DATA frame is not acknowledged') or diag($out);
    ok(closed_by_member($out), '(4) ... and node1 closes the connection') or diag($out);
    is(replays(), $r0, '(4) Replays unchanged (refused as older, not as a replay)');
    # incarnation 2 once more (its numbers go on): had incarnation 1 been
    # taken, the row would now count 2 more restarts; read once node1
    # published what it heard on this connection (msgs_in: the frames after
    # a connection's HELLO)
    ($rc, $out) = forge('-c', $N1, @FAKE, '-I', 2, '-s', 10, 'hello', 'expect', 'PONG', 20000,
                     'ping', 'expect', 'PONG', 20000);
    is($rc, 0, '(4) then incarnation 2 (HELLO 10, PING 11) on a new connection: answered') or diag($out);
    my $row = {};
    within(20, sub { $row = member_on($c, 'node1', 'fake') || {};
                     num($row, 'msgs_in') > $in0 && ($row->{incarnation} // '') eq '2' });
    cmp_ok(num($row, 'msgs_in'), '>', $in0, "(4) node1's row for fake counts the PING");
    is($row->{incarnation}, 2, '(4) ... shows incarnation 2');
    is($row->{restarts}, 1, '(4) ... and still one restart (incarnation 1 was never taken back)');
}

unlike($c->error_log('node1'), qr/exit signal|Segmentation|AH00052|SC1240|died \(status/,
       "no crash in node1's error_log");
$c->teardown;
done_testing();
