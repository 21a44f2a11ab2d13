#!perl
# "With channelSendOptions holding use_ack and not asynchronous, the request
# returns once every live member has applied the change; if that cannot be
# done ... the client gets 503 with Retry-After: 1 (SC1274)" (README,
# Replication; issue 14, item 6).  Two static members on 127.0.0.1,
# channelSendOptions 6; node1: Manager maxSessionSize 131072, Receiver
# maxMessageSize 65536, Transport timeout 1000 ms; node2: maxSessionSize 32768.
#   (a) a copy node2's store refuses is not acknowledged: a change on node1
#       of 40000 bytes (more than node2's maxSessionSize, less than node1's)
#       answers 503 with Retry-After: 1, as a new session (FULL) and as a
#       change of a session node2 holds (DELTA); node1 logs SC1274 naming
#       node2 and the reason, node2 logs SC1261 for that session and counts
#       it (SessionsRejectedSize); node2 keeps the version before it; a small
#       change before and after answers 200 and is on node2 when it returns;
#   (b) at the wire, as member "forge" of node2 (t/tools/sc_forge, listed in
#       node2's block): a DELTA that waits for an ACK and whose session has
#       not come yet is held, then acknowledged (ACK, not FAIL_ACK) when its
#       session arrives in a state-transfer block (ALL_DATA), and node2 holds
#       the delta's version; one whose base never comes is refused
#       (FAIL_ACK); a held DELTA found malformed when its base arrives is
#       refused (FAIL_ACK), not acknowledged; a FULL whose data holds a NUL
#       byte is a bad message (connection closed, BadFrames +1, SC1260) and
#       not stored; a FULL with a last access far ahead and a
#       maxInactiveInterval of 2^62 s is stored with them bounded (SC1340,
#       SessionMaxInactive 2147483647);
#   (c) a send that fails at once to a live member counts as not
#       acknowledged: "fake", a member of node1's block whose Receiver is a
#       socket of this test that never reads, is sent changes of 30 KB (by
#       24 clients at once: each waits the Transport timeout for fake) until
#       node1 closes its connection (QueueFull): every one of those changes
#       answers 503 (none 200: fake never acknowledges), and the one whose
#       send found the queue full says so in SC1274 ("send to fake failed")
#       instead of being answered as acknowledged by node2 alone.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);
use POSIX ();
use SC::Cluster;
use SC::Test qw(need page status_of member_on check within app show demo_module sess_line demo_conf
               alive_on num log_since);
use SC::Forge qw(sc_forge silent_receiver member_line add_sender);

my $FORGE = sc_forge();
my $DEMO_SO = demo_module();

$SIG{ALRM} = sub { die "sync_applied.t: time limit (150 s) reached\n" };
alarm 150;
$SIG{PIPE} = 'IGNORE';

my $APP = demo_conf($DEMO_SO, server => "LimitRequestLine 70000\n");
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];

my ($FAKE, $FAKE_PORT) = silent_receiver();     # node1's member "fake"
my ($FORGE_L, $FORGE_PORT) = silent_receiver(); # node2's member "forge"
my @FAKE_ID = (70, 65, 75, 69, 1 .. 12);         # "FAKE" ...
my @FORGE_ID = (70, 79, 82, 71, 69, 1 .. 11);    # "FORGE" ...
my $hex = sub { join '', map { sprintf '%02x', $_ } @_ };
my ($FAKE_ID_HEX, $FORGE_ID_HEX) = ($hex->(@FAKE_ID), $hex->(@FORGE_ID));

my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        my $node1 = $m->{name} eq 'node1';
        my %o = (channelSendOptions => 6, valves => $KEEP_ROUTES,
                 membership => { dropTime => 600000 },
                 manager => { maxSessionSize => $node1 ? 131072 : 32768 });
        my $x = SC::Cluster::static_block($m, $all, %o);
        my $extra = $node1 ? member_line('127.0.0.1', $FAKE_PORT, @FAKE_ID)
                           : member_line('127.0.0.1', $FORGE_PORT, @FORGE_ID);
        $x =~ s{(    </Interceptor>)}{$extra$1} or die 'no Interceptor';
        if ($node1) {
            $x =~ s{(<Receiver [^>]*?)/>}{$1 maxMessageSize="65536"/>} or die 'no Receiver';
            $x = add_sender($x, 1000);
        }
        return $x;
    },
);
$c->start_all;

# node2's view of one session: { SessionHeld, SessionVersion, SessionBytes, ... }
sub held_on {
    my ($n, $id) = @_;
    my ($s, undef, $b) = $c->get($n, "/cluster-manager?session=$id");
    my %h = (status => $s);
    $h{$1} = $2 while ($b // '') =~ /^(\w+): (.*)$/mg;
    return \%h;
}

my $p1 = page($c, 'node1') // '';
like($p1, qr/^Receiver\.maxMessageSize = 65536\b/m, 'node1 runs with Receiver maxMessageSize 65536');
like($p1, qr/^Transport\.timeout = 1000\b/m, 'node1 runs with Transport timeout 1000 ms');
my $ready = within(20, sub {
    alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1')
        && (status_of($c, 'node1')->{EngineState} // '') eq 'ready'
        && (status_of($c, 'node2')->{EngineState} // '') eq 'ready';
});
check($ready, $c, 'node1 and node2 ready and see each other alive');
ok(!alive_on($c, 'node1', 'fake'), 'fake (no HELLO yet) is not alive on node1: not waited for in (a)');

# (a) a copy node2's store refuses ---------------------------------------------
{
    my $big = 'b' x 40000;
    my $r = app($c, 'node1', 'set=k&value=small');
    my $id = $r->{cookie};
    ok($r->{status} == 200 && defined $id, '(a) a small new session on node1: 200') or diag(show($r));
    # synchronous: on node2 when the answer came (no polling)
    my $h = held_on('node2', $id // 'none');
    is($h->{SessionHeld}, 'yes', '(a) ... node2 holds it when node1 has answered')
        or diag(join ', ', map { "$_=$h->{$_}" } sort keys %$h);
    my $v0 = $h->{SessionVersion} // '';

    my $off1 = length $c->error_log('node1');
    my $off2 = length $c->error_log('node2');
    my $rej0 = num(status_of($c, 'node2'), 'SessionsRejectedSize');

    # a new session of 20000 bytes: FULL, refused by node2
    my $n = app($c, 'node1', "set=big&value=$big");
    is($n->{status}, 503, '(a) a new session of 40000 bytes (node2 takes 32768): 503')
        or diag(substr(show($n), 0, 400));
    is($n->{headers}{'retry-after'}, '1', '(a) ... with Retry-After: 1');
    my $nid = $n->{cookie} // '';
    # a change of 20000 bytes to the session node2 holds: DELTA, refused
    my $d = app($c, 'node1', "set=big&value=$big", $id);
    is($d->{status}, 503, '(a) a change to 40000 bytes of a session node2 holds: 503')
        or diag(substr(show($d), 0, 400));
    is($d->{headers}{'retry-after'}, '1', '(a) ... with Retry-After: 1');

    my @l1 = log_since($c, 'node1', $off1) =~ /^(.*\bSC1274: .*)$/mg;
    is(scalar(@l1), 2, '(a) node1 logs SC1274 twice') or diag(log_since($c, 'node1', $off1));
    is(scalar(grep { /did not acknowledge: node2: session not stored: the session is larger than Manager maxSessionSize/ } @l1),
       2, '(a) ... each naming node2 and its refusal');
    my $l2 = log_since($c, 'node2', $off2);
    like($l2, qr/SC1261: replicated session \Q$nid\E not stored: the session is larger than Manager maxSessionSize/,
         "(a) node2 logs SC1261 for the new session ($nid)");
    like($l2, qr/SC1261: replicated session \Q$id\E not stored: the session is larger/,
         "(a) node2 logs SC1261 for the changed one ($id)");
    is(num(status_of($c, 'node2'), 'SessionsRejectedSize') - $rej0, 2,
       '(a) node2 counts both (SessionsRejectedSize +2)');
    is(held_on('node2', $nid)->{SessionHeld}, 'no', '(a) node2 does not hold the new session');
    $h = held_on('node2', $id);
    is($h->{SessionVersion}, $v0, "(a) node2 keeps the version before the change ($v0)");

    # a small change of another session still answers 200 and is on node2
    my $s = app($c, 'node1', 'set=k&value=after');
    my $sid = $s->{cookie} // 'none';
    is($s->{status}, 200, '(a) a small new session after them: 200') or diag(show($s));
    is(held_on('node2', $sid)->{SessionHeld}, 'yes', '(a) ... on node2 when node1 has answered');
}

# (b) at the wire, as member "forge" of node2 ------------------------------------
my $N2 = '127.0.0.1:' . $c->member('node2')->{cluster_port};
my @FORGE_HELLO = ('-c', $N2, '-r', 'forge', '-a', '127.0.0.1', '-p', $FORGE_PORT,
                   '-i', $FORGE_ID_HEX, 'hello', 'expect', 'PONG', 5000);

sub forge {
    my ($rc, $out) = $c->exec_in('node2', { timeout => 30 }, $FORGE, @FORGE_HELLO, @_);
    return $out // '';
}

sub now_us { int(time() * 1e6) }
sub sid { join('', map { sprintf '%X', int rand 16 } 1 .. 32) . '.forge' }
# sc_repl.h: a FULL record (without its type byte)
sub full_rec {
    my ($id, $version, $data, %o) = @_;
    my $now = now_us();
    return pack('C/a* Q> Q> Q> q> N/a*', $id, $version, $o{created} // $now,
                $o{last_access} // $now, $o{max_inactive} // 1800, $data);
}
sub full_msg { unpack 'H*', pack('C', 1) . full_rec(@_) }
sub all_data_msg { unpack 'H*', pack('C N', 7, 1) . full_rec(@_) }
sub delta_msg {
    my ($id, $base, $version, %set) = @_;
    my $m = pack('C C/a* Q> Q> Q> q> N', 2, $id, $base, $version, now_us(), 1800, scalar keys %set);
    $m .= pack('N/a* N/a*', $_, $set{$_}) for sort keys %set;
    return unpack 'H*', $m . pack('N', 0);
}
sub answers {
    my ($out, $seq) = @_;
    return [ $out =~ /^recv ((?:FAIL_)?ACK) seq=\d+ acked=$seq$/mg ];
}

{
    # control: a held delta whose base never comes is refused
    my $s0 = sid();
    my $out = forge('-s', 100, '-F', 1, '-D', delta_msg($s0, 1, 2, a => 1), 'data',
                    'expect', 'FAIL_ACK', 10000);
    like($out, qr/^recv PONG /m, '(b) node2 answers forge\'s HELLO') or diag($out);
    is_deeply(answers($out, 100), ['FAIL_ACK'],
              '(b) a DELTA whose base never comes: FAIL_ACK (the ACK read here can fail)')
        or diag($out);

    # a held delta whose session arrives in a state-transfer block
    my $s1 = sid();
    $out = forge('-s', 200, '-F', 1, '-D', delta_msg($s1, 1, 2, a => 1), 'data',
                 '-F', 0, '-D', all_data_msg($s1, 1, 'x=0'), 'data',
                 'expect', 'ACK', 10000);
    is_deeply(answers($out, 200), ['ACK'],
              '(b) a DELTA ahead of its session, which then comes in ALL_DATA: ACK')
        or diag($out);
    my $h = held_on('node2', $s1);
    is($h->{SessionVersion}, 2, '(b) ... node2 holds the delta\'s version 2');
    is($h->{SessionBytes}, length('x=0&a=1'), '(b) ... with the delta applied (x=0&a=1)');

    # a held delta, malformed in its attributes, whose base then comes
    my $s2 = sid();
    $out = forge('-s', 300, '-F', 1, '-D', delta_msg($s2, 1, 2, 'a&b' => 1), 'data',
                 '-F', 0, '-D', full_msg($s2, 1, 'x=0'), 'data',
                 'expect', 'FAIL_ACK', 10000);
    is_deeply(answers($out, 300), ['FAIL_ACK'],
              '(b) a held DELTA found malformed when its base (FULL) comes: FAIL_ACK')
        or diag($out);
    is(held_on('node2', $s2)->{SessionVersion}, 1, '(b) ... node2 holds the base, version 1');

    # times out of bounds
    my $s3 = sid();
    my $off2 = length $c->error_log('node2');
    $out = forge('-s', 400, '-F', 1,
                 '-D', full_msg($s3, 1, 'x=0', last_access => 2**62, max_inactive => 2**62),
                 'data', 'expect', 'ACK', 10000);
    is_deeply(answers($out, 400), ['ACK'], '(b) a FULL with a last access far ahead and maxInactive 2^62 s: ACK')
        or diag($out);
    $h = held_on('node2', $s3);
    is($h->{SessionMaxInactive}, 2147483647, '(b) ... stored with maxInactive 2147483647 s')
        or diag(join ', ', map { "$_=$h->{$_}" } sort keys %$h);
    like(log_since($c, 'node2', $off2), qr/SC1340: replicated session \Q$s3\E from forge has a last access more than a minute ahead/,
         '(b) ... node2 logs SC1340');

    # a NUL byte in a FULL's data
    my $s4 = sid();
    my $bad0 = num(status_of($c, 'node2'), 'BadFrames');
    $off2 = length $c->error_log('node2');
    $out = forge('-s', 500, '-F', 1, '-D', full_msg($s4, 1, "x=0\0y=1"), 'data', 'wait', 10000);
    like($out, qr/^(?:eof|reset) after/m, '(b) a FULL whose data holds a NUL: connection closed')
        or diag($out);
    is_deeply(answers($out, 500), [], '(b) ... not acknowledged');
    is(num(status_of($c, 'node2'), 'BadFrames') - $bad0, 1, '(b) ... one bad frame counted');
    like(log_since($c, 'node2', $off2), qr/SC1260: bad session message from [^\n]*: malformed FULL/,
         '(b) ... SC1260 "malformed FULL"');
    is(held_on('node2', $s4)->{SessionHeld}, 'no', '(b) ... and not stored');
}

# (c) a send that fails at once: QueueFull --------------------------------------
{
    my @held;
    my $hello = do {
        open my $fh, '-|', 'sh', '-c', 'exec "$0" "$@" 2>/dev/null', $FORGE,
             '-r', 'fake', '-a', '127.0.0.1', '-p', $FAKE_PORT, '-i', $FAKE_ID_HEX, 'hello'
            or die "sc_forge: $!";
        binmode $fh;
        local $/;
        my $b = <$fh>;
        close $fh;
        $b // '';
    };
    my $in = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->member('node1')->{cluster_port},
                                   Proto => 'tcp', Timeout => 5) or die "connect node1: $!";
    syswrite($in, $hello) == length $hello or die "write HELLO: $!";
    push @held, $in;
    my $accept = sub { while (accept(my $s, $FAKE)) { push @held, $s } };
    check(within(20, sub { $accept->(); alive_on($c, 'node1', 'fake') && @held > 1 }), $c,
          '(c) fake (its HELLO sent, its Receiver never reading) is alive on node1, connected to');

    my $before = status_of($c, 'node1') || {};
    my $off1 = length $c->error_log('node1');
    # 24 clients, each changing a session of its own until told to stop; each
    # change waits for fake's ACK (the Transport timeout) or fails at once
    my $dir = $c->base_dir . '/sync_applied';
    mkdir $dir;
    my @kids;
    for my $k (1 .. 24) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open my $out, '>', "$dir/client$k" or POSIX::_exit(1);
            $out->autoflush(1);
            my $value = 'q' x 30000;
            my $id;
            for (my $i = 0; !-e "$dir/stop" && $i < 400; $i++) {
                my $r = app($c, 'node1', "set=v&value=$value$i", defined $id ? (id => $id) : ());
                $id //= $r->{cookie};
                print $out "$r->{status}\n";
            }
            close $out;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    my $full = within(90, sub {
        $accept->();
        return num(status_of($c, 'node1'), 'QueueFull') > num($before, 'QueueFull');
    });
    open my $stop, '>', "$dir/stop" or die "$dir/stop: $!";
    close $stop;
    waitpid($_, 0) for @kids;
    my @status;
    for my $k (1 .. 24) {
        open my $in, '<', "$dir/client$k" or next;
        chomp(my @l = <$in>);
        push @status, @l;
    }
    check($full, $c, '(c) node1 counts QueueFull after ' . scalar(@status) . ' changes of 30 KB');
    my @ok = grep { $_ != 503 } @status;
    ok(@status > 0 && !@ok, '(c) every one of the ' . scalar(@status) . ' changes answered 503 (none 200)')
        or diag("statuses: @status");
    like(log_since($c, 'node1', $off1), qr/SC1274: replication of [^\n]*did not acknowledge: send to fake failed/,
         '(c) node1 logs SC1274 "send to fake failed" for the change whose send found the queue full')
        or diag(join "\n", log_since($c, 'node1', $off1) =~ /^(.*\bSC(?:1274|1303): .*)$/mg);
    check(alive_on($c, 'node1', 'node2'), $c, '(c) node2 still alive on node1');
    close $_ for @held;
}

close $FAKE;
close $FORGE_L;
$c->stop_all;
done_testing();
