#!perl
# Hostile and broken input on a member's cluster port (its Receiver): each on
# its own raw TCP connection,
#   (i)   10 bytes of a header, then close
#   (ii)  a valid-looking header announcing 2^31 bytes of payload
#   (iii) a header with the wrong magic ("XXXX")
#   (iv)  the right magic with protocol version 9
#   (v)   4 KB of random garbage
#   (vi)  a header with the unknown message type 99
# and beyond the header (vii) a HELLO with a garbage heartbeat, (viii) DATA
# before HELLO.  For (i), and for a DATA frame cut off in its payload, we
# half-close the connection (FIN) and the member must close its side in turn,
# with no bad frame counted or logged for it.  For (ii)-(viii) the member
# closes the connection; each is counted (BadFrames, exactly one per case)
# and logged ("bad frame from ...", SC1213); the member keeps running, keeps
# its engine and its peer, still carries acknowledged messages, and a new
# connection to its Receiver is served (a HELLO from t/tools/sc_forge is
# answered with a PONG).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Errno qw(ECONNRESET EINTR);
use Socket qw(SHUT_WR);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(need status_of member_on dump_cluster check);

my $FORGE = SC::Cluster::repo_dir() . '/t/tools/sc_forge';
need(-x $FORGE, "$FORGE: run make t/tools/sc_forge");

$SIG{ALRM} = sub { die "bad_frames.t: time limit (60 s) reached\n" };
alarm 60;
$SIG{PIPE} = 'IGNORE';

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# A frame header (sc_proto.h): magic, version, type, flags, sender, seq,
# payload length, tag length, reserved.  The version: this build's.
my ($PROTO) = do { local (@ARGV, $/) = (SC::Cluster::repo_dir() . '/mod_session_cluster/sc_proto.h'); <> }
              =~ /#define SC_PROTO_VERSION\s+(\d+)/;
die "no SC_PROTO_VERSION in sc_proto.h\n" unless $PROTO;
sub header {
    my (%o) = @_;
    my $h = ($o{magic} // 'SCF1')
          . pack('C C n', $o{version} // $PROTO, $o{type} // 3, $o{flags} // 0)
          . ($o{sender} // ('T' x 16))
          . pack('N N', 0, $o{seq} // 1)                # 8-byte sequence
          . pack('N', $o{length} // 0)
          . pack('n n', $o{tag_length} // 0, 0);
    die "header is not 40 bytes" unless length $h == 40;
    return $h;
}

# Connects, sends $bytes, then waits up to $wait s (a polling limit: it
# returns as soon as the other side closes) for the other side to close.
# With half_close => 1 it first shuts down its own sending side (a FIN after
# the bytes), so the member reads EOF and must close in turn.  Returns (how,
# detail): how is 'eof' or 'reset' (the member closed), 'open' (still open
# after $wait), 'data' (it answered something), 'error', or 'connect' when it
# could not connect.  $LAST_LPORT is the local port used (the log names it).
our $LAST_LPORT;
sub send_and_watch {
    my ($port, $bytes, $wait, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 2)
        or return ('connect', "$@");
    $LAST_LPORT = $s->sockport;
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($s, $bytes, length($bytes) - $off, $off);
        if (!defined $n) {
            next if $! == EINTR;
            return ('reset', "write: $!") if $! == ECONNRESET || $!{EPIPE};
            return ('error', "write: $!");
        }
        $off += $n;
    }
    if ($o{half_close}) {
        shutdown($s, SHUT_WR) or return ('error', "shutdown: $!");
    }
    my $sel = IO::Select->new($s);
    my $deadline = time + $wait;
    my $t0 = time;
    while (1) {
        my $left = $deadline - time;
        if ($left <= 0) {
            close $s;
            return ('open', sprintf('still open after %.1fs', $wait));
        }
        next unless $sel->can_read($left);
        my $buf;
        my $n = sysread($s, $buf, 65536);
        if (!defined $n) {
            next if $! == EINTR;
            my $err = "$!";
            close $s;
            return ($! == ECONNRESET ? 'reset' : 'error', sprintf('%s after %.3fs', $err, time - $t0));
        }
        if ($n == 0) {
            close $s;
            return ('eof', sprintf('EOF after %.3fs', time - $t0));
        }
        close $s;
        return ('data', "answered " . length($buf) . " bytes");
    }
}

# ---------------------------------------------------------------------------
my $c = SC::Cluster->new(members => 2);
$c->start_all;
# wait until node1 is ready (its state transfer settled) before the bad input
check($c->wait_for(sub { ((status_of($c, 'node1') || {})->{EngineState} // '') eq 'ready' },
                   timeout => 20), $c, 'node1 is ready (EngineState: ready)');
ok($c->wait_for(sub { my $m = member_on($c, 'node1', 'node2'); $m && $m->{state} eq 'alive' },
                timeout => 20), 'node1 sees node2 alive')
    or dump_cluster($c, 'startup');

my $before = status_of($c, 'node1');
my ($rx_port) = ($before->{Receiver} // '') =~ /:(\d+)$/;
is($rx_port, $c->member('node1')->{cluster_port},
   "node1's Receiver: line names its cluster port ($before->{Receiver})");
$rx_port ||= $c->member('node1')->{cluster_port};
my $bad0 = $before->{BadFrames};
like($bad0 // '', qr/^\d+$/, "BadFrames on node1 before: $bad0");
my $log_off = length $c->error_log('node1');

# The SC1213 lines node1 logged since $log_off for a connection from local
# port $lport.
sub bad_frame_lines {
    my ($lport) = @_;
    my $new = substr($c->error_log('node1'), $log_off);
    return $new =~ /^(.*SC1213: bad frame from 127\.0\.0\.1:\Q$lport\E: [^\n]*)$/mg;
}

# Bytes that are no bad frame yet, then our FIN: node1 must close its side
# too (it read EOF), at once rather than by its Transport timeout, count
# nothing and log no bad frame for that connection.
sub cut_short {
    my ($name, $bytes) = @_;
    my $p0 = status_of($c, 'node1') || {};
    my ($bad, $timedout) = @$p0{qw(BadFrames ConnsTimedOut)};
    my ($how, $d) = send_and_watch($rx_port, $bytes, 20, half_close => 1);
    check($how eq 'eof' || $how eq 'reset', $c,
          "$name, then our FIN: node1 closes its side of the connection too ($how: $d)");
    # because of our FIN, not after the Transport timeout for a frame left
    # incomplete (which would close it too, a little later)
    is(status_of($c, 'node1')->{ConnsTimedOut}, $timedout,
       "$name: closed on our FIN, not by the Transport timeout (ConnsTimedOut unchanged: $timedout)");
    # node1 closed after it read everything we sent: any SC1213 for this
    # connection would be in the log by now
    my @l = bad_frame_lines($LAST_LPORT);
    ok(!@l, "$name: no bad frame logged for that connection (port $LAST_LPORT)") or diag(@l);
    is(status_of($c, 'node1')->{BadFrames}, $bad, "$name: BadFrames unchanged ($bad)");
}

# (i) 10 bytes of a header, then close
cut_short('(i) 10 header bytes', substr(header(type => 6, length => 80), 0, 10));

srand(20260522);
my $garbage = join '', map { chr(int rand 256) } 1 .. 4096;
substr($garbage, 0, 4) = 'Q7!z';      # never "SCF1" by chance

my @cases = (
    [ '(ii) a header announcing 2^31 bytes', header(type => 3, length => 2**31),
      'the length', qr/longer than the maximum|maximum message size|too long|length/i ],
    [ '(iii) wrong magic "XXXX"', header(magic => 'XXXX', type => 6, length => 0),
      'the magic', qr/magic/i ],
    [ '(iv) version 9', header(version => 9, type => 6, length => 0),
      'the version', qr/version/i ],
    [ '(v) 4 KB of random garbage', $garbage,
      'the magic', qr/magic/i ],
    [ '(vi) unknown type 99', header(type => 99, length => 0),
      'the type', qr/type/i ],
    # beyond the header: a HELLO whose heartbeat payload is garbage, and DATA
    # on a connection that never said HELLO
    [ '(vii) HELLO with a garbage heartbeat', header(type => 1, length => 12) . 'garbage-1234',
      'the heartbeat', qr/heartbeat/i ],
    [ '(viii) DATA before HELLO', header(type => 3, length => 5) . 'hello',
      'the missing HELLO', qr/HELLO/ ],
);
for my $case (@cases) {
    my ($name, $bytes, $what, $reason) = @$case;
    my ($how, $d) = send_and_watch($rx_port, $bytes, 20);
    # closing with unread input makes the kernel send a reset instead of a
    # FIN: either way the member closed the connection
    check($how eq 'eof' || $how eq 'reset', $c, "$name: node1 closes the connection ($how: $d)");
    # its log line (written before the close we saw): this connection, by our
    # port, once, with the reason
    my $from = "127.0.0.1:$LAST_LPORT";
    my @got = bad_frame_lines($LAST_LPORT);
    is(scalar @got, 1, "$name: logged (SC1213) once as a bad frame from $from") and note($got[0]);
    like($got[0] // '', $reason, "$name: the log line names $what");
}

# after all -------------------------------------------------------------------
{
    my $after = status_of($c, 'node1');
    check($after, $c, 'node1 still answers /cluster-manager?auto');
    $after ||= {};
    my $nbad = scalar @cases;
    is(($after->{BadFrames} // 0) - ($bad0 // 0), $nbad,
       "BadFrames on node1 grew by $nbad, one per bad connection ($bad0 -> " . ($after->{BadFrames} // '?') . ')');
    is($after->{EnginePid}, $before->{EnginePid}, 'the engine is the same process (it did not crash)');
    is($after->{EngineStarts}, $before->{EngineStarts}, 'EngineStarts unchanged');
    is($after->{EngineState}, 'ready', 'EngineState still ready');
    my ($m) = grep { $_->{route} eq 'node2' } @{ $after->{members} || [] };
    check($m && $m->{state} eq 'alive', $c, 'node2 is still alive on node1');
    is($m && $m->{bad_frames}, 0, 'none of the bad frames is blamed on node2');

    my $log = $c->error_log('node1');
    my @bad = substr($log, $log_off) =~ /^(.*SC1213.*bad frame from.*)$/mg;
    is(scalar @bad, $nbad, "node1 error_log has $nbad \"bad frame from\" lines with SC1213, one per case")
        or diag($c->log_tail('node1', 30));
    unlike($log, qr/exit signal|Segmentation|AH00052|died \(status/,
           'no crash in node1 error_log (no "exit signal", "Segmentation", no engine death)');

    my ($s, undef, $b) = SC::Test::page_ping($c, 'node1', 'node2');
    like($b // '', qr/^Result: acknowledged$/m, 'ping node1 -> node2 still acknowledged')
        or diag($b);
    ($s, undef, $b) = SC::Test::page_ping($c, 'node2', 'node1');
    like($b // '', qr/^Result: acknowledged$/m, 'ping node2 -> node1 still acknowledged')
        or diag($b);
}

# a connection can be closed mid-payload, and a new one still works
{
    cut_short('a DATA frame cut off mid-payload', header(type => 3, length => 1000) . ('z' x 10));
    # a new connection: a HELLO from a stranger (route "prober", not a listed
    # member) is answered with node1's heartbeat in a PONG
    my @cmd = ($FORGE, '-c', "127.0.0.1:$rx_port", '-r', 'prober', '-a', '127.0.0.1', '-p', 1,
               '-i', 'b0' x 16, 'hello', 'expect', 'PONG', 20000);
    my $out = `@cmd 2>&1`;
    my $rc = $? >> 8;
    is($rc, 0, 'a new connection after it: sc_forge exits 0 (connected, sent, PONG received)')
        or diag($out);
    like($out, qr/^recv PONG seq=\d+ route=node1$/m,
         'a new connection after it: a HELLO is answered with a PONG from node1') or diag($out);
    my $p = status_of($c, 'node1') || {};
    is($p->{EngineState}, 'ready', 'node1 engine still ready after it');
    is($p->{EnginePid}, $before->{EnginePid}, 'node1: still the same engine process');
    my (undef, undef, $b) = SC::Test::page_ping($c, 'node2', 'node1');
    like($b // '', qr/^Result: acknowledged$/m, 'ping node2 -> node1 still acknowledged after it')
        or diag($b);
}

$c->teardown;
done_testing();
