#!perl
# EncryptInterceptor, replay refusal, the Receiver's limits and membership
# spoofing, attacked with forged traffic (t/tools/sc_forge) from a namespace
# of its own ("mallory", never started) on the members' bridge.  Members in
# network namespaces, multicast membership (McastService, channelStartOptions
# 15), channelSendOptions 6, Transport timeout 1000 ms, the demo application
# at /app (Session On, SessionCluster On):
#   (a) node1 and node2 with the same key form a cluster and share sessions
#       (12 made on both, each read on the other); the page shows
#       "Encryption: AES-GCM (EncryptInterceptor)"; no SC1293 in their logs;
#       the unencrypted cluster of (f) logs SC1293 once per member;
#   (b) at node1's Receiver: HELLOs sealed with a wrong key and in clear
#       (AuthFailures), a HELLO and an acknowledged DATA frame sealed with the
#       valid key (answered PONG and ACK) whose DATA bytes are sent again on
#       the same connection and on a new one (Replays), frames cut short in
#       the payload and in the header (their connections closed after the
#       Transport timeout: ConnsTimedOut), a
#       length of 2^31 and 5000-byte frames before HELLO (BadFrames), version
#       byte 9 (BadFrames); multicast heartbeats in clear, sealed with a wrong
#       key and garbage after "SCE1" (AuthFailures), node2's own sealed
#       heartbeat captured and sent again (Replays); node1 stays healthy (same
#       engine, EngineHealth ok, both members alive, no crash) and every
#       session reads the same on both members before and after;
#   (e) Receiver limits: 10 silent connections from mallory: 2 are refused at
#       once (ConnsRefused, SC1295), the others closed after the Transport
#       timeout (ConnsTimedOut, SC1296); then bad frames until mallory's
#       address is refused (SC1294) while node2 still replicates to node1;
#   (c) key rotation as the README says: phase 1, node2 then node1 restarted
#       with the old key and the new one as previousEncryptionKey (still one
#       cluster); phase 2, node2 with the new key and the old one as previous:
#       they still form a cluster (both PreviousKeyUsed grow, node1 refuses
#       nothing, node2 receives the sessions, and reconnects at most with a
#       backoff, never in a loop); node1 restarted the same way: still one cluster,
#       sessions replicate, none was lost; node3 with an unrelated key never
#       joins (not alive on node1 or node2; their AuthFailures grow);
#   (d) node4 with node3's key: two clusters on one multicast group and port,
#       each member sees only its own cluster's members; AuthFailures grow on
#       all four;
#   (f) an unencrypted cluster (node1, node2, mallory): a heartbeat claiming
#       node2's route from mallory's address with another id, by multicast and
#       over TCP, is refused (SC1224 on node1, SC1222 on node2); node2's real
#       id (sniffed from its clear heartbeat) with an older incarnation is
#       refused (SC1225); node2 keeps its route, address and incarnation.
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
use SC::Test qw(need status_of member_on check within app show dump_cluster demo_module);

my $why = SC::Cluster->netns_unavailable;
need(!$why, "network namespaces (run as root): " . ($why // ''));
my $FORGE = SC::Cluster::repo_dir() . '/t/tools/sc_forge';
need(-x $FORGE, "$FORGE: run make t/tools/sc_forge");
my $DEMO_SO = demo_module();

$SIG{ALRM} = sub { die "security.t: time limit (90 s) reached\n" };
alarm 90;

my $KEY_OLD   = join '', map { sprintf '%02x', $_ } 0 .. 31;
my $KEY_NEW   = join '', map { sprintf '%02x', $_ } 32 .. 63;
my $KEY_OTHER = join '', map { sprintf '%02x', $_ } 160 .. 191;
my $KEY_WRONG = 'ee' x 32;
my $GROUP     = '228.0.0.4:45564';

# per member: [ encryptionKey, previousEncryptionKey ] (undef: no interceptor)
my %KEYS = (node1 => [ $KEY_OLD ], node2 => [ $KEY_OLD ],
            node3 => [ $KEY_OTHER ], node4 => [ $KEY_OTHER ], mallory => [ $KEY_OLD ]);

sub block {
    my ($m, $keys) = @_;
    my ($key, $prev) = @{ $keys || [] };
    my $enc = !defined $key ? ''
        : qq{    <Interceptor className="org.apache.catalina.tribes.group.interceptors.EncryptInterceptor" encryptionKey="$key"}
          . (defined $prev ? qq{ previousEncryptionKey="$prev"} : '') . "/>\n";
    return <<"EOB";
<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelSendOptions="6" channelStartOptions="15">
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <Membership className="org.apache.catalina.tribes.membership.McastService" address="228.0.0.4" port="45564" frequency="500" dropTime="3000"/>
    <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver" address="$m->{addr}" port="$m->{cluster_port}" autoBind="1"/>
    <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">
      <Transport className="org.apache.catalina.tribes.transport.nio.PooledParallelSender" timeout="1000"/>
    </Sender>
    <Interceptor className="org.apache.catalina.tribes.group.interceptors.TcpFailureDetector"/>
$enc  </Channel>
  <Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>
</Cluster>
EOB
}

my $APP = "LoadModule session_cluster_demo_module \"$DEMO_SO\"\n"
        . "<Location /app>\n  Session On\n  SessionCluster On\n"
        . "  SetHandler session-cluster-demo\n</Location>\n";

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

my $c;    # the cluster the helpers work on

# sc_forge run in mallory's namespace: its report (stdout and stderr)
sub forge {
    my (@args) = @_;
    my ($rc, $out) = $c->exec_in('mallory', { timeout => 30 }, $FORGE, @args);
    note("sc_forge @args:\n$out") if $ENV{SC_VERBOSE};
    return $out;
}

# sc_forge run here writing to stdout: the bytes as hex
sub forge_hex {
    my (@args) = @_;
    open my $fh, '-|', $FORGE, @args or die "sc_forge: $!";
    binmode $fh;
    local $/;
    my $b = <$fh>;
    close $fh;
    return unpack 'H*', $b // '';
}

sub rx { my ($n) = @_; return $c->member($n)->{addr} . ':' . $c->member($n)->{cluster_port} }

sub num { my ($p, $k) = @_; return ($p && defined $p->{$k} && $p->{$k} =~ /^\d+$/) ? $p->{$k} : 0 }

sub log_since { my ($n, $off) = @_; return substr($c->error_log($n), $off // 0) }

sub alive_on {
    my ($n, $route) = @_;
    my $m = member_on($c, $n, $route);
    return $m && $m->{state} eq 'alive' ? 1 : 0;
}

# the counter of every session as $n reads it: "id=counter,..." and its MD5
sub sessions_sum {
    my ($n, @ids) = @_;
    my @parts;
    for my $id (@ids) {
        my $r = app($c, $n, 'read', $id);
        push @parts, "$id=" . (($r->{session} // '') eq $id ? $r->{counter} : 'MISSING');
    }
    my $text = join ',', @parts;
    return (md5_hex($text), $text);
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
    cluster    => sub { block($_[0], $KEYS{ $_[0]{name} }) },
);
my $MALLORY = $c->member('mallory')->{addr};
my $NODE1 = rx('node1');

# (a) -----------------------------------------------------------------------
$c->start('node1');
$c->start('node2');
check(within(6, sub { alive_on('node1', 'node2') && alive_on('node2', 'node1')
                      && (status_of($c, 'node1')->{EngineState} // '') eq 'ready'
                      && (status_of($c, 'node2')->{EngineState} // '') eq 'ready' }),
      $c, '(a) node1 and node2 (same key) see each other alive and are ready');
for my $n (qw(node1 node2)) {
    my $p = status_of($c, $n) || {};
    is($p->{Encryption}, 'AES-GCM (EncryptInterceptor)', "(a) ${n}'s page: Encryption: AES-GCM (EncryptInterceptor)");
    unlike($c->error_log($n), qr/SC1293/, "(a) $n logs no SC1293 (traffic not authenticated)");
}
my @SIDS;
for my $i (1 .. 12) {
    my $n = $i % 2 ? 'node1' : 'node2';
    my $r = app($c, $n, 'auto');
    my $id = $r->{cookie};
    app($c, $n, 'auto', $id) for 1 .. ($i % 4);
    push @SIDS, $id if defined $id;
}
is(scalar @SIDS, 12, '(a) 12 sessions made, 6 on each member');
{
    my $bad = 0;
    for my $i (0 .. $#SIDS) {
        my $other = $i % 2 ? 'node1' : 'node2';   # made on the other one
        my $r = app($c, $other, 'read', $SIDS[$i]);
        my $want = 1 + (($i + 1) % 4);
        $bad++, diag("(a) $SIDS[$i] on $other: " . show($r))
            unless ($r->{session} // '') eq $SIDS[$i] && ($r->{counter} // '') eq $want;
    }
    check(!$bad, $c, '(a) every session made on one member is read on the other, with its counter');
}
my ($SUM1) = sessions_sum('node1', @SIDS);
my ($SUM2, $text) = sessions_sum('node2', @SIDS);
is($SUM1, $SUM2, '(a) the sessions read the same on both members') or diag($text);

# (b) forged frames at node1's Receiver ---------------------------------------
{
    my $before = status_of($c, 'node1');
    my $before2 = status_of($c, 'node2');
    my $off = length $c->error_log('node1');
    my @id = ('-r', 'mallory', '-a', $MALLORY, '-i', 'aa' x 16);

    my $out = forge('-c', $NODE1, '-k', $KEY_WRONG, @id, 'hello', 'wait', 1500);
    like($out, qr/^eof after/m, '(b) a HELLO sealed with a wrong key: connection closed') or diag($out);
    unlike($out, qr/^recv/m, '(b) ... and not answered');
    $out = forge('-c', $NODE1, @id, 'hello', 'wait', 1500);
    like($out, qr/^eof after/m, '(b) a HELLO in clear (no tag): connection closed') or diag($out);
    unlike($out, qr/^recv/m, '(b) ... and not answered');

    # valid key: HELLO (seq 10), DATA (seq 20, ACK asked), the same DATA bytes
    # again; then a new connection: HELLO (seq 15), the same DATA bytes
    my @k = ('-k', $KEY_OLD, @id);
    my $hello1 = forge_hex(@k, '-s', 10, 'hello');
    my $data   = forge_hex(@k, '-s', 20, '-F', 1, 'data');
    my $hello2 = forge_hex(@k, '-S', 7, '-s', 15, 'hello');
    $out = forge('-c', $NODE1, '-k', $KEY_OLD, 'raw', $hello1, 'wait', 400, 'raw', $data, 'wait', 400,
                 'raw', $data, 'wait', 1500);
    like($out, qr/^recv PONG .*route=node1$/m, '(b) a HELLO sealed with the valid key is answered (PONG)')
        or diag($out);
    like($out, qr/^recv ACK .*acked=20$/m, '(b) its DATA frame is acknowledged (ACK 20)') or diag($out);
    like($out, qr/acked=20\n(?:open after \d+ ms\n)sent raw bytes=\d+\n(?:eof|reset) after/,
         '(b) the same DATA bytes again on that connection: closed, not acknowledged') or diag($out);
    $out = forge('-c', $NODE1, '-k', $KEY_OLD, 'raw', $hello2, 'wait', 400, 'raw', $data, 'wait', 1500);
    like($out, qr/^recv PONG/m, '(b) a new connection with a new HELLO is answered') or diag($out);
    unlike($out, qr/^recv ACK/m, '(b) the same DATA bytes on the new connection are not acknowledged')
        or diag($out);
    like($out, qr/^(?:eof|reset) after/m, '(b) ... and the connection is closed') or diag($out);

    # cut short (in the payload, in the header), then silence
    for my $cut (60, 20) {
        $out = forge('-c', $NODE1, '-k', $KEY_OLD, @id, '-T', $cut, 'hello', 'wait', 3000);
        my ($ms) = $out =~ /^(?:eof|reset) after (\d+) ms/m;
        ok(defined $ms && $ms >= 800 && $ms <= 2800,
           "(b) a frame cut after $cut bytes: connection closed after the Transport timeout (1000 ms): "
           . ($ms // 'not closed') . ' ms') or diag($out);
    }
    # lengths and version
    $out = forge('-c', $NODE1, '-k', $KEY_OLD, @id, '-L', 2**31, 'hello', 'wait', 1500);
    like($out, qr/^(?:eof|reset) after/m, '(b) a length of 2^31: connection closed') or diag($out);
    $out = forge('-c', $NODE1, '-k', $KEY_OLD, @id, '-d', 'x' x 5000, 'data', 'wait', 1500);
    like($out, qr/^(?:eof|reset) after/m, '(b) a 5000-byte frame before HELLO (over 4096): closed') or diag($out);
    $out = forge('-c', $NODE1, '-k', $KEY_OLD, @id, '-L', 5000, 'hello', 'wait', 1500);
    like($out, qr/^(?:eof|reset) after/m, '(b) a HELLO claiming 5000 bytes: closed') or diag($out);
    $out = forge('-c', $NODE1, '-k', $KEY_OLD, @id, '-V', 9, 'hello', 'wait', 1500);
    like($out, qr/^(?:eof|reset) after/m, '(b) version byte 9: closed') or diag($out);
    unlike($out, qr/^recv/m, '(b) ... and not answered');

    # forged multicast heartbeats; the replayed one is node2's own datagram,
    # as an eavesdropper captures it (the key only picks node2's among them)
    my $cap = forge('-k', $KEY_OLD, '-r', 'node2', 'sniff', $GROUP, 3000);
    my ($raw) = $cap =~ /^heartbeat route=node2 .* raw=([0-9a-f]+)$/m;
    ok($raw, "(b) node2's sealed heartbeat captured on the group") or diag($cap);
    $out = forge('-u', $GROUP, '-r', 'mallory', '-a', $MALLORY, '-i', 'ab' x 16, '-I', 5, 'mcast',
                 '-k', $KEY_WRONG, 'mcast', 'raw', unpack('H*', 'SCE1') . ('5a' x 80),
                 'raw', $raw // '00');
    is(() = $out =~ /^sent /mg, 4, '(b) 4 forged datagrams sent: clear, wrong key, garbage, the captured one')
        or diag($out);

    my $after;
    within(3, sub {
        $after = status_of($c, 'node1');
        num($after, 'AuthFailures') - num($before, 'AuthFailures') >= 5
            && num($after, 'Replays') - num($before, 'Replays') >= 3
    });
    $after ||= {};
    my %d = map { $_ => num($after, $_) - num($before, $_) }
            qw(AuthFailures Replays BadFrames ConnsTimedOut BadHeartbeats);
    note('(b) node1 counters grew by: ' . join(' ', map { "$_=$d{$_}" } sort keys %d));
    cmp_ok($d{AuthFailures}, '>=', 5, '(b) AuthFailures on node1: +2 frames (wrong key, clear), +3 heartbeats');
    cmp_ok($d{Replays}, '>=', 3, '(b) Replays on node1: +2 frames (same connection, new connection), +1 heartbeat');
    cmp_ok($d{BadFrames}, '>=', 4, '(b) BadFrames on node1: 2^31, 5000 bytes twice, version 9');
    cmp_ok($d{ConnsTimedOut}, '>=', 2, '(b) ConnsTimedOut on node1: the 2 frames cut short');
    my $a2 = status_of($c, 'node2') || {};
    cmp_ok(num($a2, 'AuthFailures') - num($before2, 'AuthFailures'), '>=', 3,
           '(b) node2 refused the 3 forged heartbeats as well (AuthFailures)');

    my $log = log_since('node1', $off);
    my @auth = $log =~ /SC1290: EncryptInterceptor: frame from \Q$MALLORY\E:\d+ refused: not authentic/g;
    cmp_ok(scalar @auth, '>=', 2, '(b) SC1290 "not authentic" logged for the frames from mallory');
    my @rep = $log =~ /SC1290: EncryptInterceptor: frame from \Q$MALLORY\E:\d+ refused: a replayed/g;
    cmp_ok(scalar @rep, '>=', 2, '(b) SC1290 "replayed" logged for the replayed frames');
    like($log, qr/SC1290: EncryptInterceptor: heartbeat from \Q$MALLORY\E:\d+ refused: not authentic/,
         '(b) SC1290 logged for the forged heartbeats');
    like($log, qr/SC1213: bad frame from \Q$MALLORY\E:\d+: frame longer than the maximum/,
         '(b) SC1213 for the lengths');
    like($log, qr/SC1213: bad frame from \Q$MALLORY\E:\d+: unsupported protocol version/,
         '(b) SC1213 for the version');
    like($log, qr/SC1296: connection from \Q$MALLORY\E:\d+ closed: /, '(b) SC1296 for the frame cut short');

    is($after->{EnginePid}, $before->{EnginePid}, '(b) node1: the same engine process');
    is($after->{EngineStarts}, $before->{EngineStarts}, '(b) node1: EngineStarts unchanged');
    is($after->{EngineHealth}, 'ok', '(b) node1: EngineHealth ok');
    is($after->{EngineState}, 'ready', '(b) node1: EngineState ready');
    check(alive_on('node1', 'node2') && alive_on('node2', 'node1'), $c,
          '(b) node1 and node2 still see each other alive');
    is(num($after, 'MembersAlive'), 1, '(b) node1 counts one member alive (mallory is none)')
        or diag(join "\n", map { "$_->{route} $_->{state} $_->{verdict}" } @{ $after->{members} });
    no_crash($_, '(b)') for qw(node1 node2);
    my ($s1) = sessions_sum('node1', @SIDS);
    my ($s2, $t2) = sessions_sum('node2', @SIDS);
    is($s1, $SUM1, '(b) the sessions on node1 are what they were (checksum)');
    is($s2, $SUM1, '(b) the sessions on node2 are what they were (checksum)') or diag($t2);
}

# (e) Receiver limits -------------------------------------------------------
{
    my $before = status_of($c, 'node1');
    my $off = length $c->error_log('node1');
    my $out = forge('-c', $NODE1, 'conns', 10, 3000);
    my @fast = grep { $_ < 500 } $out =~ /^conn \d+ closed after (\d+) ms$/mg;
    my @slow = grep { $_ >= 800 } $out =~ /^conn \d+ closed after (\d+) ms$/mg;
    is(scalar @fast, 2, '(e) of 10 connections from one address, 2 are closed at once (at most 8)')
        or diag($out);
    is(scalar @slow, 8, '(e) the 8 others (silent) are closed after the Transport timeout') or diag($out);
    my $mid = status_of($c, 'node1');
    cmp_ok(num($mid, 'ConnsRefused') - num($before, 'ConnsRefused'), '>=', 2, '(e) ConnsRefused grew by 2');
    cmp_ok(num($mid, 'ConnsTimedOut') - num($before, 'ConnsTimedOut'), '>=', 8, '(e) ConnsTimedOut grew by 8');
    my $log = log_since('node1', $off);
    like($log, qr/SC1295: connection from \Q$MALLORY\E:\d+ refused: too many connections from that address/,
         '(e) SC1295 logged');
    like($log, qr/SC1296: connection from \Q$MALLORY\E:\d+ closed: no HELLO within the Transport timeout/,
         '(e) SC1296 logged');

    # bad frames until the address is refused (20 within a minute; (b) sent
    # 8 already)
    my @flood = ('-c', $NODE1, '-r', 'mallory', '-a', $MALLORY);
    push @flood, '-V', 9, 'hello', 'wait', 300, 'reconnect' for 1 .. 22;
    $out = forge(@flood, 'wait', 300);
    $log = log_since('node1', $off);
    like($log, qr/SC1294: \d+ bad frames from \Q$MALLORY\E within 60 s: its connections are refused for 30 s/,
         '(e) SC1294: mallory\'s address is refused after 20 bad frames') or diag($out);
    $out = forge('-c', $NODE1, 'conns', 1, 1500);
    like($out, qr/^conn 0 closed after ([0-9]|[1-9][0-9]|[1-4][0-9][0-9]) ms$/m,
         '(e) a new connection from mallory is closed at once') or diag($out);
    like(log_since('node1', $off), qr/SC1295: connection from \Q$MALLORY\E:\d+ refused: it sent too many bad frames lately/,
         '(e) SC1295 names the bad frames');
    my $after = status_of($c, 'node1');
    cmp_ok(num($after, 'ConnsRefused'), '>', num($mid, 'ConnsRefused'), '(e) ConnsRefused grew');
    # node2 is not affected: an update made on node2 is read on node1
    my $r = app($c, 'node2', 'auto', $SIDS[0]);
    my $r1 = app($c, 'node1', 'read', $SIDS[0]);
    ok(defined $r->{counter} && ($r1->{counter} // '') eq $r->{counter},
       "(e) an update on node2 still arrives on node1 (counter $r->{counter})") or diag(show($r1));
    check(alive_on('node1', 'node2'), $c, '(e) node2 still alive on node1');
    is($after->{EngineHealth}, 'ok', '(e) node1: EngineHealth ok');
    no_crash('node1', '(e)');
}

# (c) key rotation ----------------------------------------------------------
{
    my $r = app($c, 'node1', 'auto', $SIDS[2]);
    my $want = $r->{counter};
    my $af1 = num(status_of($c, 'node1'), 'AuthFailures');
    # phase 1, every member accepts the new key (sealing with the old one)
    for my $n (qw(node2 node1)) {
        $KEYS{$n} = [ $KEY_OLD, $KEY_NEW ];
        $c->write_conf($n);
        $c->restart($n);
        my $ok = within(6, sub { alive_on('node1', 'node2') && alive_on('node2', 'node1') });
        check($ok, $c, "(c) phase 1: $n restarted with the old key and the new one as "
                       . 'previousEncryptionKey: still one cluster');
    }
    # phase 2, every member seals with the new key (and still accepts the old)
    $af1 = num(status_of($c, 'node1'), 'AuthFailures');   # node1 restarted: anew
    $KEYS{node2} = [ $KEY_NEW, $KEY_OLD ];
    $c->write_conf('node2');
    $c->restart('node2');
    my $ok = within(6, sub { alive_on('node1', 'node2') && alive_on('node2', 'node1') });
    check($ok, $c, '(c) phase 2: node2 (new key, previous = old) and node1 (old key, '
                   . 'previous = new) form a cluster');
    my $p2 = status_of($c, 'node2') || {};
    # whatever the verdict, a member must not reconnect in a loop
    cmp_ok(num($p2, 'Connects'), '<', 100,
           "(c) node2 opened few connections meanwhile (Connects $p2->{Connects}; a backoff, no loop)");
    cmp_ok(num($p2, 'PreviousKeyUsed'), '>', 0, "(c) node2 opens node1's messages with the previous key (PreviousKeyUsed $p2->{PreviousKeyUsed})");
    my $p1 = status_of($c, 'node1') || {};
    cmp_ok(num($p1, 'PreviousKeyUsed'), '>', 0, "(c) node1 opens node2's messages with its second key (PreviousKeyUsed $p1->{PreviousKeyUsed})");
    is(num($p1, 'AuthFailures') - $af1, 0,
       "(c) node1 refuses none of node2's messages (AuthFailures on node1 do not grow)");
    my $r2 = app($c, 'node2', 'read', $SIDS[2]);
    is($r2->{counter}, $want, '(c) node2 received the sessions (state transfer) across the rotation')
        or diag(show($r2));

    $KEYS{node1} = [ $KEY_NEW, $KEY_OLD ];
    $c->write_conf('node1');
    $c->restart('node1');
    $ok = within(6, sub { alive_on('node1', 'node2') && alive_on('node2', 'node1') });
    check($ok, $c, '(c) node1 moved to the new key too: still one cluster');
    my $new = app($c, 'node1', 'auto');
    my $n2 = app($c, 'node2', 'read', $new->{cookie});
    is($n2->{counter}, 1, '(c) a session made on node1 is read on node2') or diag(show($n2));
    my $old = app($c, 'node1', 'read', $SIDS[2]);
    is($old->{counter}, $want, '(c) a session made before the rotation is still there (no session lost)')
        or diag(show($old));

    my %af = map { $_ => num(status_of($c, $_), 'AuthFailures') } qw(node1 node2);
    $c->start('node3');
    sleep 2.5;    # five heartbeats of node3
    for my $n (qw(node1 node2)) {
        my $m = member_on($c, $n, 'node3');
        ok(!$m || $m->{state} ne 'alive', "(c) node3 (unrelated key) is not alive on $n");
        cmp_ok(num(status_of($c, $n), 'AuthFailures'), '>', $af{$n}, "(c) $n: AuthFailures grow (node3's heartbeats)");
    }
    my $p3 = status_of($c, 'node3') || {};
    is(num($p3, 'MembersAlive'), 0, '(c) node3 sees no member alive');
}

# (d) two clusters, one multicast group -----------------------------------------
{
    my %af = map { $_ => num(status_of($c, $_), 'AuthFailures') } qw(node1 node2 node3 node4);
    $c->start('node4');
    my $ok = within(5, sub { alive_on('node3', 'node4') && alive_on('node4', 'node3') });
    check($ok, $c, '(d) node3 and node4 (their key) form a cluster');
    sleep 1;
    my %mine = (node1 => 'node2', node2 => 'node1', node3 => 'node4', node4 => 'node3');
    for my $n (sort keys %mine) {
        my $p = status_of($c, $n) || {};
        my @alive = sort map { $_->{route} } grep { $_->{state} eq 'alive' } @{ $p->{members} || [] };
        is("@alive", $mine{$n}, "(d) $n sees only $mine{$n} alive");
        cmp_ok(num($p, 'AuthFailures'), '>', $af{$n}, "(d) $n: AuthFailures grow (the other cluster's heartbeats)");
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
        cluster    => sub { block($_[0], undef) },
    );
    $c->start('node1');
    $c->start('node2');
    check(within(5, sub { alive_on('node1', 'node2') && alive_on('node2', 'node1') }), $c,
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

    my $cap = forge('-r', 'node2', 'sniff', $GROUP, 3000);
    my ($id, $inc) = $cap =~ /^heartbeat route=node2 id=([0-9a-f]{32}) incarnation=(\d+)/m;
    ok($id, "(f) node2's clear heartbeat sniffed: id $id incarnation $inc") or diag($cap);
    $id //= '00' x 16;
    $inc //= 2;

    # its route, another id, mallory's address: by multicast ...
    my $out = forge('-u', $GROUP, '-r', 'node2', '-a', $MALLORY2, '-i', 'cd' x 16, '-I', $inc + 1000,
                    '-S', 1, 'mcast', 'sleep', 200, 'mcast');
    like($out, qr/^sent heartbeat/m, '(f) a heartbeat claiming route node2 sent by multicast') or diag($out);
    my $l1 = $c->wait_for(sub { log_since('node1', $off{node1}) =~ /(SC1224: [^\n]*)/ ? $1 : '' }, timeout => 2);
    like($l1, qr/SC1224: the member at \Q$MALLORY2\E:4000 claims route node2, which the member at \Q$N2\E:4000 holds: refused/,
         '(f) node1 refuses it: SC1224') or diag(log_since('node1', $off{node1}));
    my $l2 = $c->wait_for(sub { log_since('node2', $off{node2}) =~ /(SC1222: [^\n]*)/ ? $1 : '' }, timeout => 2);
    like($l2, qr/SC1222: the member at \Q$MALLORY2\E:4000 .*uses this member's route node2: (?:it is refused|it was here first)/,
         '(f) node2 refuses it: SC1222 (its own route)') or diag(log_since('node2', $off{node2}));
    # ... and over TCP (a HELLO to node1, another id and port)
    %off = map { $_ => length $c->error_log($_) } qw(node1 node2);
    $out = forge('-c', rx('node1'), '-r', 'node2', '-a', $MALLORY2, '-p', 4001, '-i', 'ce' x 16,
                 '-I', $inc + 2000, 'hello', 'wait', 1000);
    my $l3 = $c->wait_for(sub { log_since('node1', $off{node1}) =~ /(SC1224: [^\n]*)/ ? $1 : '' }, timeout => 2);
    like($l3, qr/SC1224: the member at \Q$MALLORY2\E:4001 claims route node2/,
         '(f) a HELLO claiming route node2 over TCP: SC1224') or diag($out);
    # node2's own id with an older incarnation
    $out = forge('-u', $GROUP, '-r', 'node2', '-a', $MALLORY2, '-i', $id, '-I', $inc - 1,
                 '-S', 1_000_000, 'mcast');
    my $l4 = $c->wait_for(sub { log_since('node1', $off{node1}) =~ /(SC1225: [^\n]*)/ ? $1 : '' }, timeout => 2);
    like($l4, qr/SC1225: heartbeat of node2 from \Q$MALLORY2\E:\d+ has an older incarnation/,
         "(f) node2's id with an older incarnation: SC1225") or diag(log_since('node1', $off{node1}));

    sleep 0.6;
    my $p = status_of($c, 'node1') || {};
    my @holders = grep { $_->{route} eq 'node2' && $_->{state} eq 'alive' } @{ $p->{members} || [] };
    is(scalar @holders, 1, '(f) one member holds route node2 on node1')
        or diag(join "\n", map { "$_->{route} $_->{addr} $_->{state} $_->{verdict}" } @{ $p->{members} || [] });
    like($holders[0] ? $holders[0]{addr} : '', qr/^\Q$N2\E:/, "(f) ... node2, at its own address $N2");
    is($holders[0] ? $holders[0]{incarnation} : '', $before->{incarnation}, '(f) ... with its own incarnation');
    my ($m) = grep { $_->{route} eq 'node2' && $_->{addr} =~ /^\Q$MALLORY2\E:/ } @{ $p->{members} || [] };
    is($m ? $m->{state} : 'refused', 'refused', '(f) the claimant at mallory\'s address is refused');
    check(alive_on('node2', 'node1'), $c, '(f) node2 still sees node1');
    my $s = app($c, 'node1', 'auto');
    is(app($c, 'node2', 'read', $s->{cookie})->{counter}, 1, '(f) replication node1 -> node2 still works');
    no_crash($_, '(f)') for qw(node1 node2);
}
$c->teardown;
done_testing();
