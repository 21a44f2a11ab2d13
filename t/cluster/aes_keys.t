#!perl
# AES-128 and AES-192 keys at run time (README "Security": "AES-128, -192 or
# -256 after the key's 16, 24 or 32 bytes").  For a 16- and a 24-byte
# encryptionKey: node1 and node2 share the key, node3 has another key of the
# same size.  node1 and node2 see each other alive and a session made on
# node1 is read on node2; the page shows the key by its size only
# (128-bit / 192-bit) and Encryption AES-GCM; node3's traffic is refused by
# node1 (AuthFailures grows) and node3 is never alive on node1 or node2.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(page status_of member_on check within app show demo_module demo_conf valid_sid);

$SIG{ALRM} = sub { die "aes_keys.t: time limit (90 s) reached\n" };
alarm 90;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];

for my $bytes (16, 24) {
    my $bits = $bytes * 8;
    my $key   = join '', map { sprintf '%02x', $_ } 1 .. $bytes;
    my $other = join '', map { sprintf '%02x', 255 - $_ } 1 .. $bytes;
    my $c = SC::Cluster->new(
        members    => 3,
        extra_conf => $APP,
        cluster    => sub {
            my ($m, $all) = @_;
            my $k = $m->{name} eq 'node3' ? $other : $key;
            my $x = SC::Cluster::static_block($m, $all, channelSendOptions => 6, valves => $KEEP_ROUTES);
            $x =~ s{(  </Channel>)}{    <Interceptor className="org.apache.catalina.tribes.group.interceptors.EncryptInterceptor" encryptionKey="$k"/>\n$1}
                or die 'no </Channel>';
            return $x;
        },
    );
    $c->start_all;
    my $t = "AES-$bits";
    for my $n ($c->members) {
        my $b = page($c, $n) // '';
        like($b, qr/^Interceptor\.\d+\.encryptionKey = \(set, $bits-bit key\)/m, "$t: ${n}'s page shows a $bits-bit key");
        unlike($b, qr/\Q$key\E|\Q$other\E/i, "$t: ${n}'s page does not show the key");
        like($b, qr/^Encryption: AES-GCM/m, "$t: ${n}'s page says Encryption: AES-GCM");
    }
    check(within(20, sub {
        my ($a, $b) = (member_on($c, 'node1', 'node2'), member_on($c, 'node2', 'node1'));
        $a && $b && $a->{state} eq 'alive' && $b->{state} eq 'alive'
            && (status_of($c, 'node2')->{EngineState} // '') eq 'ready';
    }), $c, "$t: node1 and node2 (same key) see each other alive");
    my $r = app($c, 'node1', 'auto');
    my $id = $r->{cookie};
    check(valid_sid($id, 'node1') && $r->{status} == 200, $c, "$t: a session made on node1 (acknowledged)", show($r));
    $r = app($c, 'node2', 'read', $id);
    check(($r->{session} // '') eq $id && ($r->{counter} // '') eq '1', $c, "$t: node2 reads it at once", show($r));
    for my $n (qw(node1 node2)) {
        my $p;
        check(within(20, sub { $p = status_of($c, $n); $p && ($p->{AuthFailures} // 0) > 0 }), $c,
              "$t: $n refuses node3's traffic (another $bits-bit key): AuthFailures "
              . ($p ? $p->{AuthFailures} // '?' : '?'));
    }
    # (after both refused node3's frames above)
    for my $n (qw(node1 node2)) {
        my $m = member_on($c, $n, 'node3');
        ok(!$m || $m->{state} ne 'alive', "$t: node3 is not alive on $n")
            or diag(join(' ', %$m));
    }
    is((status_of($c, 'node2') || {})->{EngineState}, 'ready', "$t: node2 is ready");
    for my $n ($c->members) {
        unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052|SC1291/, "$t: $n: no crash, key accepted (no SC1291)");
    }
    $c->teardown;
}
done_testing();
