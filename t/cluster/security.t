#!perl
# EncryptInterceptor, replay refusal, the Receiver's limits and membership
# spoofing, attacked with forged traffic (t/tools/sc_forge) from a namespace
# of its own ("mallory", never started) on the members' bridge.  Members in
# network namespaces, multicast membership (McastService, channelStartOptions
# 15), channelSendOptions 6, Transport timeout 1000 ms, the demo application
# at /app (Session On, SessionCluster On):
#   (a) node1 and node2 with the same key form a cluster and share sessions
#       (12 made on both, each read on the other, all 12 read the same on
#       both members); the page shows
#       "Encryption: AES-GCM (EncryptInterceptor)"; no SC1293 in their logs;
#       the unencrypted cluster of (f) logs SC1293 once per member;
#   (b) at node1's Receiver: HELLOs sealed with a wrong key and in clear
#       (AuthFailures), a HELLO and an acknowledged DATA frame sealed with the
#       valid key (answered PONG and ACK) whose DATA bytes are sent again on
#       the same connection and on a new one (Replays), frames cut short in
#       the payload and in the header (their connections closed by the
#       Transport timeout: ConnsTimedOut, SC1296 for each), a
#       length of 2^31 and 5000-byte frames before HELLO (BadFrames), version
#       byte 9 (BadFrames); multicast heartbeats in clear, sealed with a wrong
#       key and garbage after "SCE2" (AuthFailures), node2's own sealed
#       heartbeat captured and sent again (Replays); each counter grows by
#       exactly what was sent; node1 stays healthy (same engine, EngineHealth
#       ok, both members alive, no crash) and all 12 sessions read the same
#       on both members before and after;
#   (e) Receiver limits: 10 silent connections from mallory: 2 are refused
#       (ConnsRefused, SC1295 naming those 2 connections), the other 8 closed
#       by the Transport timeout (ConnsTimedOut, SC1296 naming those 8); then
#       bad frames, one connection each, until mallory's address is refused
#       (SC1294 at the 20th within 60 s: 8 came from (b)); a new connection
#       from it is then refused (SC1295) while node2 still replicates to node1;
#   (c) key rotation as the README says: phase 1, node2 then node1 restarted
#       with the old key and the new one as previousEncryptionKey (still one
#       cluster); phase 2, node2 with the new key and the old one as previous:
#       they still form a cluster (both PreviousKeyUsed grow, node1 refuses
#       nothing, node2 received all 12 sessions, and while writes replicate
#       both ways node2 opens no new connection: no reconnection loop); node1
#       restarted the same way: still one cluster, sessions replicate, none of
#       the 12 was lost (on either member); node3 with an unrelated key never
#       joins (once node1 and node2 refused several of its heartbeats, it is
#       not alive on either, and it sees nobody alive);
#   (d) node4 with node3's key: two clusters on one multicast group and port;
#       once every member refused more of the other cluster's heartbeats
#       (AuthFailures grow on all four), each sees only its own cluster's
#       members;
#   (f) an unencrypted cluster (node1, node2, mallory): a heartbeat claiming
#       node2's route from mallory's address with another id, by multicast and
#       over TCP, is refused (SC1224 on node1, SC1222 on node2); node2's real
#       id (sniffed from its clear heartbeat) with an older incarnation is
#       refused (SC1225); once node1 heard node2's real heartbeats after all
#       that, node2 keeps its route, address and incarnation there, and the
#       claimant's row (at mallory's address) is refused.
# Every sc_forge run must exit 0 (or 3 where nothing is expected to come).
# No duration is asserted: deadlines are polling limits (sc_forge's "wait"
# returns when the member closes the connection, "expect" when the frame
# comes), and the causes are read from counters and log lines.
# In the order a, b, e, c, d, f: (b) counts and reads logs before the other
# cluster's heartbeats add refusals of their own, and (e) leaves mallory's
# address refused for 30 s.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use Digest::MD5 qw(md5_hex);
use SC::Cluster;
use SC::Test qw(need status_of member_on check within app show dump_cluster demo_module demo_conf
               alive_on num log_since need_netns);
use SC::Forge qw(sc_forge forge_ok forge_args lport closed_by_member rx mcast_block);

need_netns();
my $FORGE = sc_forge();
my $DEMO_SO = demo_module();

$SIG{ALRM} = sub { die "security.t: time limit (180 s) reached\n" };
alarm 180;

my $KEY_OLD   = join '', map { sprintf '%02x', $_ } 0 .. 31;
my $KEY_NEW   = join '', map { sprintf '%02x', $_ } 32 .. 63;
my $KEY_OTHER = join '', map { sprintf '%02x', $_ } 160 .. 191;
my $KEY_WRONG = 'ee' x 32;
my $GROUP     = '228.0.0.4:45564';

# per member: [ encryptionKey, previousEncryptionKey ] (undef: no interceptor)
my %KEYS = (node1 => [ $KEY_OLD ], node2 => [ $KEY_OLD ],
            node3 => [ $KEY_OTHER ], node4 => [ $KEY_OTHER ], mallory => [ $KEY_OLD ]);

my $APP = demo_conf($DEMO_SO);

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

my $c;    # the cluster the helpers work on
my @SIDS; # the 12 sessions of (a)

# sc_forge run in mallory's namespace: its report (stdout and stderr).  Its
# exit status must be 0 (an assertion of its own): it connected and sent
# everything, and every expect and sniff found what it waited for.
sub forge { forge_ok($c, 'mallory', @_) }

# sc_forge run here writing to stdout: the bytes as hex (it must exit 0)
sub forge_hex {
    my (@args) = @_;
    open my $fh, '-|', $FORGE, @args or die "sc_forge: $!";
    binmode $fh;
    local $/;
    my $b = <$fh>;
    close $fh;
    is($? >> 8, 0, 'sc_forge exits 0: ' . forge_args(@args));
    return unpack 'H*', $b // '';
}

# the counter of every session as $n reads it: "id=counter,...", its MD5 and
# how many of them $n has (read back under their own id)
sub sessions_sum {
    my ($n, @ids) = @_;
    my @parts;
    my $found = 0;
    for my $id (@ids) {
        my $r = app($c, $n, 'read', $id);
        my $have = ($r->{session} // '') eq $id && $r->{status} == 200;
        $found++ if $have;
        push @parts, "$id=" . ($have ? $r->{counter} : 'MISSING');
    }
    my $text = join ',', @parts;
    return (md5_hex($text), $text, $found);
}

# all @SIDS on $n read as $sum says (and every one of them is there)
sub sessions_are {
    my ($n, $sum, $label) = @_;
    my ($s, $text, $found) = sessions_sum($n, @SIDS);
    is($found, 12, "$label: all 12 sessions are on $n") or diag($text);
    is($s, $sum, "$label: the 12 sessions on $n read as before (checksum of their counters)")
        or diag($text);
}

# $n's counter $k once $cond->(value) holds (a generous polling limit), else
# the last value read
sub counter_when {
    my ($n, $k, $cond) = @_;
    my $v;
    within(20, sub { $v = num(status_of($c, $n), $k); $cond->($v) });
    return $v;
}

sub no_crash {
    my ($n, $label) = @_;
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052|SC1240|died \(status/,
           "$label: no crash in ${n}'s error_log");
}

# ===========================================================================
$c = SC::Cluster->new(
    members    => [qw(node1 node2 node3 node4 mallory)],
    netns      => 1,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub { mcast_block($_[0], @{ $KEYS{ $_[0]{name} } || [] }) },
);
my $MALLORY = $c->member('mallory')->{addr};
my $NODE1 = rx($c, 'node1');

# (a) -----------------------------------------------------------------------
$c->start('node1');
$c->start('node2');
check(within(20, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1')
                      && (status_of($c, 'node1')->{EngineState} // '') eq 'ready'
                      && (status_of($c, 'node2')->{EngineState} // '') eq 'ready' }),
      $c, '(a) node1 and node2 (same key) see each other alive and are ready');
for my $n (qw(node1 node2)) {
    my $p = status_of($c, $n) || {};
    is($p->{Encryption}, 'AES-GCM (EncryptInterceptor)', "(a) ${n}'s page: Encryption: AES-GCM (EncryptInterceptor)");
    unlike($c->error_log($n), qr/SC1293/, "(a) $n logs no SC1293 (traffic not authenticated)");
}
for my $i (1 .. 12) {
    my $n = $i % 2 ? 'node1' : 'node2';
    my $r = app($c, $n, 'auto');
    my $id = $r->{cookie};
    app($c, $n, 'auto', $id) for 1 .. ($i % 4);
    push @SIDS, $id if defined $id;
}
is(scalar @SIDS, 12, '(a) 12 sessions made, 6 on each member');
{
    my ($bad, $checked) = (0, 0);
    for my $i (0 .. $#SIDS) {
        my $other = $i % 2 ? 'node1' : 'node2';   # made on the other one
        my $r = app($c, $other, 'read', $SIDS[$i]);
        my $want = 1 + (($i + 1) % 4);
        $checked++;
        $bad++, diag("(a) $SIDS[$i] on $other: " . show($r))
            unless ($r->{session} // '') eq $SIDS[$i] && ($r->{counter} // '') eq $want;
    }
    check(!$bad && $checked == 12, $c,
          "(a) every session made on one member is read on the other, with its counter ($checked checked, $bad wrong)");
}
my ($SUM1, $text1, $found1) = sessions_sum('node1', @SIDS);
my ($SUM2, $text2, $found2) = sessions_sum('node2', @SIDS);
is($found1, 12, '(a) node1 has all 12 sessions') or diag($text1);
is($found2, 12, '(a) node2 has all 12 sessions') or diag($text2);
is($SUM1, $SUM2, '(a) the sessions read the same on both members') or diag("$text1\n$text2");

# (b) forged frames at node1's Receiver ---------------------------------------
{
    my $before = status_of($c, 'node1');
    my $before2 = status_of($c, 'node2');
    my $off = length $c->error_log('node1');
    my @id = ('-r', 'mallory', '-a', $MALLORY, '-i', 'aa' x 16);

    # "wait 20000" returns as soon as node1 closes the connection
    my $out = forge('-c', $NODE1, '-k', $KEY_WRONG, @id, 'hello', 'wait', 20000);
    ok(closed_by_member($out), '(b) a HELLO sealed with a wrong key: node1 closes the connection') or diag($out);
    unlike($out, qr/^recv/m, '(b) ... and does not answer it');
    $out = forge('-c', $NODE1, @id, 'hello', 'wait', 20000);
    ok(closed_by_member($out), '(b) a HELLO in clear (no tag): node1 closes the connection') or diag($out);
    unlike($out, qr/^recv/m, '(b) ... and does not answer it');

    # valid key: HELLO (seq 10), DATA (seq 20, ACK asked), the same DATA bytes
    # again; then a new connection: HELLO (seq 15), the same DATA bytes
    # (sealed for node1's Receiver address, as a sender that does not know
    # node1's id seals: -t)
    my @k = ('-k', $KEY_OLD, '-t', $NODE1, @id);
    my $hello1 = forge_hex(@k, '-s', 10, 'hello');
    my $data   = forge_hex(@k, '-s', 20, '-F', 1, 'data');
    my $hello2 = forge_hex(@k, '-S', 7, '-s', 15, 'hello');
    $out = forge('-c', $NODE1, '-k', $KEY_OLD, @id, 'raw', $hello1, 'expect', 'PONG', 20000,
                 'raw', $data, 'expect', 'ACK', 20000, 'raw', $data, 'wait', 20000);
    like($out, qr/^recv PONG .*route=node1$/m, '(b) a HELLO sealed with the valid key is answered (PONG)')
        or diag($out);
    like($out, qr/^recv ACK .*acked=20$/m, '(b) its DATA frame is acknowledged (ACK 20)') or diag($out);
    {
        # what came after the replay was sent: no ACK, then node1's close
        my ($after_replay) = $out =~ /acked=20\n.*?^sent raw bytes=\d+\n(.*)\z/ms;
        ok(defined $after_replay && $after_replay !~ /^recv ACK/m && closed_by_member($out),
           '(b) the same DATA bytes again on that connection: not acknowledged, connection closed')
            or diag($out);
    }
    $out = forge('-c', $NODE1, '-k', $KEY_OLD, @id, 'raw', $hello2, 'expect', 'PONG', 20000,
                 'raw', $data, 'wait', 20000);
    like($out, qr/^recv PONG/m, '(b) a new connection with a new HELLO is answered') or diag($out);
    unlike($out, qr/^recv ACK/m, '(b) the same DATA bytes on the new connection are not acknowledged')
        or diag($out);
    ok(closed_by_member($out), '(b) ... and node1 closes the connection') or diag($out);

    # cut short (in the payload, in the header), then silence: node1 closes
    # each by its Transport timeout (SC1296 names the connection)
    for my $cut (60, 20) {
        $out = forge('-c', $NODE1, '-k', $KEY_OLD, @id, '-T', $cut, 'hello', 'wait', 20000);
        ok(closed_by_member($out), "(b) a frame cut after $cut bytes, then silence: node1 closes the connection")
            or diag($out);
        my $lp = lport($out);
        like(log_since($c, 'node1', $off),
             qr/SC1296: connection from \Q$MALLORY\E:$lp closed: (?:no HELLO|a frame left incomplete) within the Transport timeout/,
             "(b) ... by its Transport timeout (SC1296 for that connection, port $lp)");
    }
    # lengths and version: each connection closed, with an SC1213 naming it
    for my $t ([ 'a length of 2^31', 'frame longer than the maximum', '-L', 2**31, 'hello' ],
               [ 'a 5000-byte frame before HELLO (over 4096)', 'frame longer than the maximum',
                 '-d', 'x' x 5000, 'data' ],
               [ 'a HELLO claiming 5000 bytes', 'frame longer than the maximum', '-L', 5000, 'hello' ],
               [ 'version byte 9', 'unsupported protocol version', '-V', 9, 'hello' ]) {
        my ($what, $why, @a) = @$t;
        $out = forge('-c', $NODE1, '-k', $KEY_OLD, @id, @a, 'wait', 20000);
        ok(closed_by_member($out), "(b) $what: node1 closes the connection") or diag($out);
        unlike($out, qr/^recv/m, "(b) $what: not answered");
        my $lp = lport($out);
        like(log_since($c, 'node1', $off), qr/SC1213: bad frame from \Q$MALLORY\E:$lp: \Q$why\E/,
             "(b) $what: SC1213 for that connection (port $lp): $why");
    }

    # forged multicast heartbeats; the replayed one is node2's own datagram,
    # as an eavesdropper captures it (the key only picks node2's among them)
    my $cap = forge('-k', $KEY_OLD, '-r', 'node2', 'sniff', $GROUP, 20000);
    my ($raw) = $cap =~ /^heartbeat route=node2 .* raw=([0-9a-f]+)$/m;
    ok($raw, "(b) node2's sealed heartbeat captured on the group") or diag($cap);
    $out = forge('-u', $GROUP, '-r', 'mallory', '-a', $MALLORY, '-i', 'ab' x 16, '-I', 5, 'mcast',
                 '-k', $KEY_WRONG, 'mcast', 'raw', unpack('H*', 'SCE2') . ('5a' x 80),
                 'raw', $raw // '00');
    is(() = $out =~ /^sent /mg, 4, '(b) 4 forged datagrams sent: clear, wrong key, garbage, the captured one')
        or diag($out);

    # every count exactly what was sent: 2 frames (wrong key, clear) and 3
    # heartbeats not authentic; 2 frames (same connection, new connection)
    # and 1 heartbeat replayed; 4 bad frames; 2 connections timed out
    my %want = (AuthFailures => 5, Replays => 3, BadFrames => 4, ConnsTimedOut => 2);
    my $after;
    within(20, sub {
        $after = status_of($c, 'node1');
        !grep { num($after, $_) - num($before, $_) < $want{$_} } keys %want;
    });
    $after ||= {};
    my %d = map { $_ => num($after, $_) - num($before, $_) }
            qw(AuthFailures Replays BadFrames ConnsTimedOut BadHeartbeats);
    note('(b) node1 counters grew by: ' . join(' ', map { "$_=$d{$_}" } sort keys %d));
    is($d{AuthFailures}, 5, '(b) AuthFailures on node1: +2 frames (wrong key, clear), +3 heartbeats');
    is($d{Replays}, 3, '(b) Replays on node1: +2 frames (same connection, new connection), +1 heartbeat');
    is($d{BadFrames}, 4, '(b) BadFrames on node1: 2^31, 5000 bytes twice, version 9');
    is($d{ConnsTimedOut}, 2, '(b) ConnsTimedOut on node1: the 2 frames cut short');
    my $af2 = counter_when('node2', 'AuthFailures', sub { $_[0] - num($before2, 'AuthFailures') >= 3 });
    is($af2 - num($before2, 'AuthFailures'), 3,
       '(b) node2 refused the 3 forged heartbeats as well (AuthFailures +3)');

    my $log = log_since($c, 'node1', $off);
    my @auth = $log =~ /SC1290: EncryptInterceptor: frame from \Q$MALLORY\E:\d+ refused: not authentic/g;
    is(scalar @auth, 2, '(b) SC1290 "not authentic" logged for the 2 frames from mallory');
    my @rep = $log =~ /SC1290: EncryptInterceptor: frame from \Q$MALLORY\E:\d+ refused: a replayed/g;
    is(scalar @rep, 2, '(b) SC1290 "replayed" logged for the 2 replayed frames');
    like($log, qr/SC1290: EncryptInterceptor: heartbeat from \Q$MALLORY\E:\d+ refused: not authentic/,
         '(b) SC1290 logged for the forged heartbeats');

    is($after->{EnginePid}, $before->{EnginePid}, '(b) node1: the same engine process');
    is($after->{EngineStarts}, $before->{EngineStarts}, '(b) node1: EngineStarts unchanged');
    is($after->{EngineHealth}, 'ok', '(b) node1: EngineHealth ok');
    is($after->{EngineState}, 'ready', '(b) node1: EngineState ready');
    check(alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1'), $c,
          '(b) node1 and node2 still see each other alive');
    is(num($after, 'MembersAlive'), 1, '(b) node1 counts one member alive (mallory is none)')
        or diag(join "\n", map { "$_->{route} $_->{state} $_->{verdict}" } @{ $after->{members} });
    no_crash($_, '(b)') for qw(node1 node2);
    sessions_are('node1', $SUM1, '(b)');
    sessions_are('node2', $SUM1, '(b)');
}

# (e) Receiver limits -------------------------------------------------------
{
    my $before = status_of($c, 'node1');
    my $off = length $c->error_log('node1');
    # 10 silent connections; conns returns once node1 closed all of them
    my $out = forge('-c', $NODE1, 'conns', 10, 30000);
    my %closed = $out =~ /^conn (\d+) closed after \d+ ms local=[\d.]+:(\d+)$/mg;
    my %mine = reverse %closed;          # port => conn
    is(scalar keys %closed, 10, '(e) node1 closes all 10 silent connections from one address')
        or diag($out);
    my $mid = status_of($c, 'node1');
    my $log = log_since($c, 'node1', $off);
    my @refused = $log =~ /SC1295: connection from \Q$MALLORY\E:(\d+) refused: too many connections from that address/g;
    my @timed = $log =~ /SC1296: connection from \Q$MALLORY\E:(\d+) closed: no HELLO within the Transport timeout/g;
    my %seen;
    $seen{$_}++ for @refused, @timed;
    is(scalar @refused, 2, '(e) 2 of them are refused at accept, over 8 from one address (SC1295)')
        or diag($log);
    is(scalar @timed, 8, '(e) the 8 others are closed by the Transport timeout, having sent nothing (SC1296)')
        or diag($log);
    ok(scalar(keys %seen) == 10 && !grep({ !exists $mine{$_} } keys %seen) && !grep({ $_ > 1 } values %seen),
       '(e) those SC1295 and SC1296 lines name our 10 connections, each once')
        or diag("ours: @{[ sort keys %mine ]}\nrefused: @refused\ntimed out: @timed");
    is(num($mid, 'ConnsRefused') - num($before, 'ConnsRefused'), 2, '(e) ConnsRefused grew by 2');
    is(num($mid, 'ConnsTimedOut') - num($before, 'ConnsTimedOut'), 8, '(e) ConnsTimedOut grew by 8');

    # bad frames, one connection each, until the address is refused: 20
    # within a minute, of which (b) sent 8 (2 not authentic, 2 replayed, 4
    # bad frames); each run ends when node1 closes the connection, after it
    # counted (and logged) the bad frame
    my ($sent, $penalty) = (0, '');
    for my $i (1 .. 20) {
        my $o = forge('-c', $NODE1, '-r', 'mallory', '-a', $MALLORY, '-V', 9, 'hello', 'wait', 20000);
        $sent++;
        ok(closed_by_member($o), "(e) bad frame $i: node1 closes the connection") or diag($o);
        if (log_since($c, 'node1', $off) =~ /^(.*SC1294: [^\n]*)$/m) {
            $penalty = $1;
            last;
        }
    }
    like($penalty, qr/SC1294: 20 bad frames from \Q$MALLORY\E within 60 s: its connections are refused for 30 s/,
         "(e) SC1294: mallory's address is refused after 20 bad frames");
    is($sent, 12, '(e) ... the 12th sent here (8 came from (b))');
    $out = forge('-c', $NODE1, 'conns', 1, 30000);
    like($out, qr/^conns opened=1 closed=1$/m, '(e) a new connection from mallory is closed') or diag($out);
    my ($lp) = $out =~ /^conn 0 closed after \d+ ms local=[\d.]+:(\d+)$/m;
    $lp //= 'none';
    like(log_since($c, 'node1', $off),
         qr/SC1295: connection from \Q$MALLORY\E:$lp refused: it sent too many bad frames lately/,
         "(e) ... refused at accept: SC1295 for it (port $lp) names the bad frames");
    my $after = status_of($c, 'node1');
    is(num($after, 'ConnsRefused') - num($mid, 'ConnsRefused'), 1, '(e) ConnsRefused grew by 1');
    # node2 is not affected: an update made on node2 is read on node1
    my $r = app($c, 'node2', 'auto', $SIDS[0]);
    my $r1 = app($c, 'node1', 'read', $SIDS[0]);
    ok(($r->{session} // '') eq $SIDS[0] && ($r1->{session} // '') eq $SIDS[0]
       && defined $r->{counter} && ($r1->{counter} // '') eq $r->{counter},
       "(e) an update on node2 still arrives on node1 (counter $r->{counter})") or diag(show($r1));
    check(alive_on($c, 'node1', 'node2'), $c, '(e) node2 still alive on node1');
    is($after->{EngineHealth}, 'ok', '(e) node1: EngineHealth ok');
    no_crash('node1', '(e)');
}

# (c) key rotation ----------------------------------------------------------
{
    # phase 1, every member accepts the new key (sealing with the old one)
    for my $n (qw(node2 node1)) {
        $KEYS{$n} = [ $KEY_OLD, $KEY_NEW ];
        $c->write_conf($n);
        $c->restart($n);
        my $ok = within(20, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') });
        check($ok, $c, "(c) phase 1: $n restarted with the old key and the new one as "
                       . 'previousEncryptionKey: still one cluster');
    }
    # phase 2, every member seals with the new key (and still accepts the old)
    my $af1 = num(status_of($c, 'node1'), 'AuthFailures');   # node1 restarted: anew
    $KEYS{node2} = [ $KEY_NEW, $KEY_OLD ];
    $c->write_conf('node2');
    $c->restart('node2');
    my $ok = within(20, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') });
    check($ok, $c, '(c) phase 2: node2 (new key, previous = old) and node1 (old key, '
                   . 'previous = new) form a cluster');
    # writes both ways now: each must replicate, and node2 must not open new
    # connections meanwhile (a member whose messages are refused reconnects)
    my $p2 = status_of($c, 'node2') || {};
    my $p1 = status_of($c, 'node1') || {};
    my $w2 = app($c, 'node2', 'auto', $SIDS[1]);
    my $r2 = app($c, 'node1', 'read', $SIDS[1]);
    ok(($w2->{session} // '') eq $SIDS[1] && ($r2->{session} // '') eq $SIDS[1]
       && defined $w2->{counter} && ($r2->{counter} // '') eq $w2->{counter},
       "(c) phase 2: an update on node2 is read on node1 (counter $w2->{counter})") or diag(show($r2));
    my $w1 = app($c, 'node1', 'auto', $SIDS[2]);
    my $r1 = app($c, 'node2', 'read', $SIDS[2]);
    ok(($w1->{session} // '') eq $SIDS[2] && ($r1->{session} // '') eq $SIDS[2]
       && defined $w1->{counter} && ($r1->{counter} // '') eq $w1->{counter},
       "(c) phase 2: an update on node1 is read on node2 (counter $w1->{counter})") or diag(show($r1));
    my $q2 = status_of($c, 'node2') || {};
    my $q1 = status_of($c, 'node1') || {};
    is(num($q2, 'Connects'), num($p2, 'Connects'),
       "(c) node2 opened no new connection while both updates replicated (Connects $q2->{Connects}: no reconnection loop)");
    is(num($q2, 'ConnectFailures'), num($p2, 'ConnectFailures'), '(c) ... and none failed (ConnectFailures)');
    cmp_ok(num($q2, 'PreviousKeyUsed'), '>', num($p2, 'PreviousKeyUsed'),
           "(c) node2 opens node1's messages with the previous key (PreviousKeyUsed $p2->{PreviousKeyUsed} -> $q2->{PreviousKeyUsed})");
    cmp_ok(num($q1, 'PreviousKeyUsed'), '>', num($p1, 'PreviousKeyUsed'),
           "(c) node1 opens node2's messages with its second key (PreviousKeyUsed $p1->{PreviousKeyUsed} -> $q1->{PreviousKeyUsed})");
    is(num($q1, 'AuthFailures') - $af1, 0,
       "(c) node1 refuses none of node2's messages (AuthFailures on node1 do not grow)");
    # node2 was restarted: it has all 12 sessions from node1 (state transfer),
    # as node1 reads them
    my ($sum, $text, $found) = sessions_sum('node1', @SIDS);
    is($found, 12, '(c) node1 has all 12 sessions') or diag($text);
    sessions_are('node2', $sum, '(c) phase 2, node2 received them across the rotation');

    $KEYS{node1} = [ $KEY_NEW, $KEY_OLD ];
    $c->write_conf('node1');
    $c->restart('node1');
    $ok = within(20, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') });
    check($ok, $c, '(c) node1 moved to the new key too: still one cluster');
    my $new = app($c, 'node1', 'auto');
    my $n2 = app($c, 'node2', 'read', $new->{cookie});
    ok(defined $new->{cookie} && ($n2->{session} // '') eq $new->{cookie} && ($n2->{counter} // '') eq '1',
       '(c) a session made on node1 is read on node2') or diag(show($n2));
    # no session lost: all 12, on both members, as they were
    sessions_are('node1', $sum, '(c) node1 restarted with the new key, no session lost');
    sessions_are('node2', $sum, '(c) after the rotation, no session lost');

    # node3, an unrelated key: once node1 and node2 refused several of its
    # heartbeats (and it theirs), it is alive on neither
    my %af = map { $_ => num(status_of($c, $_), 'AuthFailures') } qw(node1 node2);
    $c->start('node3');
    for my $n (qw(node1 node2)) {
        my $v = counter_when($n, 'AuthFailures', sub { $_[0] - $af{$n} >= 4 });
        cmp_ok($v - $af{$n}, '>=', 4, "(c) $n: AuthFailures grow (it refused node3's heartbeats)");
    }
    my $a3 = counter_when('node3', 'AuthFailures', sub { $_[0] >= 4 });
    cmp_ok($a3, '>=', 4, "(c) node3: AuthFailures grow (it refused node1's and node2's heartbeats)");
    for my $n (qw(node1 node2)) {
        my $m = member_on($c, $n, 'node3');
        ok(!$m || $m->{state} ne 'alive', "(c) node3 (unrelated key) is not alive on $n")
            or diag(explain $m);
    }
    my $p3 = status_of($c, 'node3') || {};
    is(num($p3, 'MembersAlive'), 0, '(c) node3 sees no member alive');
}

# (d) two clusters, one multicast group -----------------------------------------
{
    $c->start('node4');
    my $ok = within(20, sub { alive_on($c, 'node3', 'node4') && alive_on($c, 'node4', 'node3') });
    check($ok, $c, '(d) node3 and node4 (their key) form a cluster');
    # from here on node4 sends heartbeats; once each member refused 4 more of
    # the other cluster's (two senders at 500 ms), any of node4's would have
    # reached node1 and node2 (and node1's and node2's node4)
    my %af = map { $_ => num(status_of($c, $_), 'AuthFailures') } qw(node1 node2 node3 node4);
    my %mine = (node1 => 'node2', node2 => 'node1', node3 => 'node4', node4 => 'node3');
    for my $n (sort keys %mine) {
        my $v = counter_when($n, 'AuthFailures', sub { $_[0] - $af{$n} >= 4 });
        cmp_ok($v - $af{$n}, '>=', 4, "(d) $n: AuthFailures grow (the other cluster's heartbeats)");
    }
    for my $n (sort keys %mine) {
        my $p = status_of($c, $n) || {};
        my @alive = sort map { $_->{route} } grep { $_->{state} eq 'alive' } @{ $p->{members} || [] };
        is("@alive", $mine{$n}, "(d) $n sees only $mine{$n} alive");
    }
    no_crash($_, '(d)') for qw(node1 node2 node3 node4);
}
$c->teardown;

# (f) an unencrypted cluster: route and incarnation spoofing -------------------
{
    %KEYS = ();
    $c = SC::Cluster->new(
        members    => [qw(node1 node2 mallory)],
        netns      => 1,
        loglevel   => 'info',
        extra_conf => $APP,
        cluster    => sub { mcast_block($_[0]) },
    );
    $c->start('node1');
    $c->start('node2');
    check(within(20, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') }), $c,
          '(f) the unencrypted node1 and node2 see each other');
    for my $n (qw(node1 node2)) {
        my @w = $c->error_log($n) =~ /SC1293/g;
        is(scalar @w, 1, "(a) $n without EncryptInterceptor logs SC1293 once");
        is((status_of($c, $n) || {})->{Encryption}, 'none: traffic is not authenticated',
           "(a) ${n}'s page: Encryption: none");
    }
    my $MALLORY2 = $c->member('mallory')->{addr};
    my $N2 = $c->member('node2')->{addr};
    my $before = member_on($c, 'node1', 'node2') || {};
    my %off = map { $_ => length $c->error_log($_) } qw(node1 node2);

    my $cap = forge('-r', 'node2', 'sniff', $GROUP, 20000);
    my ($id, $inc) = $cap =~ /^heartbeat route=node2 id=([0-9a-f]{32}) incarnation=(\d+)/m;
    ok($id, "(f) node2's clear heartbeat sniffed: id $id incarnation $inc") or diag($cap);
    $id //= '00' x 16;
    $inc //= 2;

    # its route, another id, mallory's address: by multicast ...
    my $out = forge('-u', $GROUP, '-r', 'node2', '-a', $MALLORY2, '-i', 'cd' x 16, '-I', $inc + 1000,
                    '-S', 1, 'mcast', 'sleep', 200, 'mcast');
    like($out, qr/^sent heartbeat/m, '(f) a heartbeat claiming route node2 sent by multicast') or diag($out);
    my $l1 = $c->wait_for(sub { log_since($c, 'node1', $off{node1}) =~ /(SC1224: [^\n]*)/ ? $1 : '' }, timeout => 20);
    like($l1, qr/SC1224: the member at \Q$MALLORY2\E:4000 claims route node2, which the member at \Q$N2\E:4000 holds: refused/,
         '(f) node1 refuses it: SC1224') or diag(log_since($c, 'node1', $off{node1}));
    my $l2 = $c->wait_for(sub { log_since($c, 'node2', $off{node2}) =~ /(SC1222: [^\n]*)/ ? $1 : '' }, timeout => 20);
    like($l2, qr/SC1222: the member at \Q$MALLORY2\E:4000 .*uses this member's route node2: (?:it is refused|it was here first)/,
         '(f) node2 refuses it: SC1222 (its own route)') or diag(log_since($c, 'node2', $off{node2}));
    # ... and over TCP (a HELLO to node1, another id and port): refused, so
    # not answered and its connection closed ("wait" returns at the close)
    %off = map { $_ => length $c->error_log($_) } qw(node1 node2);
    $out = forge('-c', rx($c, 'node1'), '-r', 'node2', '-a', $MALLORY2, '-p', 4001, '-i', 'ce' x 16,
                 '-I', $inc + 2000, 'hello', 'wait', 20000);
    my $l3 = $c->wait_for(sub { log_since($c, 'node1', $off{node1}) =~ /(SC1224: [^\n]*)/ ? $1 : '' }, timeout => 20);
    like($l3, qr/SC1224: the member at \Q$MALLORY2\E:4001 claims route node2/,
         '(f) a HELLO claiming route node2 over TCP: SC1224') or diag($out);
    unlike($out, qr/^recv/m, '(f) ... not answered (no PONG)') or diag($out);
    ok(closed_by_member($out), '(f) ... and node1 closes the connection') or diag($out);
    # node2's own id with an older incarnation
    $out = forge('-u', $GROUP, '-r', 'node2', '-a', $MALLORY2, '-i', $id, '-I', $inc - 1,
                 '-S', 1_000_000, 'mcast');
    my $l4 = $c->wait_for(sub { log_since($c, 'node1', $off{node1}) =~ /(SC1225: [^\n]*)/ ? $1 : '' }, timeout => 20);
    like($l4, qr/SC1225: heartbeat of node2 from \Q$MALLORY2\E:\d+ has an older incarnation/,
         "(f) node2's id with an older incarnation: SC1225") or diag(log_since($c, 'node1', $off{node1}));

    # after the forgeries, node1 hears node2's real heartbeats again (mallory
    # sends nothing more): by then any effect of the forged ones shows
    my $hb0 = num(status_of($c, 'node1'), 'HeartbeatsIn');
    my $hb = counter_when('node1', 'HeartbeatsIn', sub { $_[0] >= $hb0 + 2 });
    cmp_ok($hb, '>=', $hb0 + 2, "(f) node1 heard more heartbeats after the forged ones (HeartbeatsIn $hb0 -> $hb)");
    my $p = status_of($c, 'node1') || {};
    my @holders = grep { $_->{route} eq 'node2' && $_->{state} eq 'alive' } @{ $p->{members} || [] };
    is(scalar @holders, 1, '(f) one member holds route node2 on node1')
        or diag(join "\n", map { "$_->{route} $_->{addr} $_->{state} $_->{verdict}" } @{ $p->{members} || [] });
    like($holders[0] ? $holders[0]{addr} : '', qr/^\Q$N2\E:/, "(f) ... node2, at its own address $N2");
    is($holders[0] ? $holders[0]{incarnation} : '', $before->{incarnation}, '(f) ... with its own incarnation');
    my ($m) = grep { $_->{addr} eq "$MALLORY2:4000" } @{ $p->{members} || [] };
    ok($m, "(f) node1 has a row for the claimant at mallory's address $MALLORY2:4000")
        or diag(join "\n", map { "$_->{route} $_->{addr} $_->{state} $_->{verdict}" } @{ $p->{members} || [] });
    is($m && $m->{state}, 'refused', "(f) ... and it is refused");
    my @others = grep { $_->{addr} =~ /^\Q$MALLORY2\E:/ && $_->{state} ne 'refused' } @{ $p->{members} || [] };
    ok(!@others, "(f) no row at mallory's address is anything but refused")
        or diag(join "\n", map { "$_->{route} $_->{addr} $_->{state} $_->{verdict}" } @others);
    check(alive_on($c, 'node2', 'node1'), $c, '(f) node2 still sees node1');
    my $s = app($c, 'node1', 'auto');
    my $s2 = app($c, 'node2', 'read', $s->{cookie});
    ok(defined $s->{cookie} && ($s2->{session} // '') eq $s->{cookie} && ($s2->{counter} // '') eq '1',
       '(f) replication node1 -> node2 still works') or diag(show($s2));
    no_crash($_, '(f)') for qw(node1 node2);
}
$c->teardown;
done_testing();
