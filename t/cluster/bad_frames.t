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
# before HELLO.  For (ii)-(viii) the member closes the connection; each is counted (BadFrames)
# and logged ("bad frame from ...", SC1213); the member keeps running, keeps
# its engine and its peer, and still carries acknowledged messages.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Errno qw(ECONNRESET EINTR);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of member_on dump_cluster check);

$SIG{ALRM} = sub { die "bad_frames.t: time limit (60 s) reached\n" };
alarm 60;
$SIG{PIPE} = 'IGNORE';

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# A frame header (sc_proto.h): magic, version, type, flags, sender, seq,
# payload length, tag length, reserved.
sub header {
    my (%o) = @_;
    my $h = ($o{magic} // 'SCF1')
          . pack('C C n', $o{version} // 1, $o{type} // 3, $o{flags} // 0)
          . ($o{sender} // ('T' x 16))
          . pack('N N', 0, $o{seq} // 1)                # 8-byte sequence
          . pack('N', $o{length} // 0)
          . pack('n n', $o{tag_length} // 0, 0);
    die "header is not 40 bytes" unless length $h == 40;
    return $h;
}

# Connects, sends $bytes, then waits up to $wait s for the other side to
# close.  Returns (how, detail): how is 'eof', 'reset', 'open' (nothing within
# $wait) or 'data' (it answered something), or 'connect' when it could not
# connect.  $LAST_LPORT is the local port used (the log names it).
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
    if ($o{close_after_write}) {
        close $s;
        return ('closed-by-us', '');
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
{
    my $t0 = time;
    while (time - $t0 < 5) {
        my (undef, undef, $b) = $c->get('node1', '/cluster-manager?auto');
        last if $b =~ /^EngineState: ready$/m;
        sleep 0.05;
    }
}
ok($c->wait_for(sub { my $m = member_on($c, 'node1', 'node2'); $m && $m->{state} eq 'alive' },
                timeout => 3), 'node1 sees node2 alive')
    or dump_cluster($c, 'startup');

my $before = status_of($c, 'node1');
my ($rx_port) = ($before->{Receiver} // '') =~ /:(\d+)$/;
is($rx_port, $c->member('node1')->{cluster_port},
   "node1's Receiver: line names its cluster port ($before->{Receiver})");
$rx_port ||= $c->member('node1')->{cluster_port};
my $bad0 = $before->{BadFrames};
like($bad0 // '', qr/^\d+$/, "BadFrames on node1 before: $bad0");
my $log_off = length $c->error_log('node1');

# (i) 10 bytes of a header, then close
{
    my ($how, $d) = send_and_watch($rx_port, substr(header(type => 6, length => 80), 0, 10), 0,
                                   close_after_write => 1);
    is($how, 'closed-by-us', '(i) 10 header bytes, then our close');
}

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
    my $t0 = time;
    my ($how, $d) = send_and_watch($rx_port, $bytes, 2);
    # closing with unread input makes the kernel send a reset instead of a
    # FIN: either way the member closed the connection
    check($how eq 'eof' || $how eq 'reset', $c, "$name: node1 closes the connection within 2 s ($how: $d)");
    # its log line: this connection (by our port), with the reason
    my $from = "127.0.0.1:$LAST_LPORT";
    my $got = $c->wait_for(sub {
        my $new = substr($c->error_log('node1'), $log_off);
        return $new =~ /^(.*SC1213: bad frame from \Q$from\E: [^\n]*)$/m ? $1 : '';
    }, timeout => 1);
    ok($got, "$name: logged (SC1213) as a bad frame from $from") and note($got);
    like($got || '', $reason, "$name: the log line names $what");
}

# after all -------------------------------------------------------------------
{
    my $after = status_of($c, 'node1');
    check($after, $c, 'node1 still answers /cluster-manager?auto');
    $after ||= {};
    my $nbad = scalar @cases;
    cmp_ok(($after->{BadFrames} // 0) - ($bad0 // 0), '>=', $nbad,
           "BadFrames on node1 grew by at least $nbad, one per bad connection ($bad0 -> " . ($after->{BadFrames} // '?') . ')');
    is($after->{EnginePid}, $before->{EnginePid}, 'the engine is the same process (it did not crash)');
    is($after->{EngineStarts}, $before->{EngineStarts}, 'EngineStarts unchanged');
    is($after->{EngineState}, 'ready', 'EngineState still ready');
    my ($m) = grep { $_->{route} eq 'node2' } @{ $after->{members} || [] };
    check($m && $m->{state} eq 'alive', $c, 'node2 is still alive on node1');
    is($m && $m->{bad_frames}, 0, 'none of the bad frames is blamed on node2');

    my $log = $c->error_log('node1');
    my @bad = $log =~ /^(.*SC1213.*bad frame from.*)$/mg;
    cmp_ok(scalar @bad, '>=', $nbad, "node1 error_log has at least $nbad \"bad frame from\" lines with SC1213")
        or diag($c->log_tail('node1', 30));
    unlike($log, qr/exit signal|Segmentation|AH00052|died \(status/,
           'no crash in node1 error_log (no "exit signal", "Segmentation", no engine death)');

    my ($s, undef, $b) = $c->get('node1', '/cluster-manager?ping=node2', timeout => 8);
    like($b // '', qr/^Result: acknowledged$/m, 'ping node1 -> node2 still acknowledged')
        or diag($b);
    ($s, undef, $b) = $c->get('node2', '/cluster-manager?ping=node1', timeout => 8);
    like($b // '', qr/^Result: acknowledged$/m, 'ping node2 -> node1 still acknowledged')
        or diag($b);
}

# a connection can be closed mid-payload, and a new one still works
{
    my ($how) = send_and_watch($rx_port, header(type => 3, length => 1000) . ('z' x 10), 0,
                               close_after_write => 1);
    is($how, 'closed-by-us', 'a frame cut off mid-payload, then our close');
    sleep 0.2;
    is(status_of($c, 'node1')->{EngineState}, 'ready', 'node1 engine still ready after it');
}

$c->teardown;
done_testing();
