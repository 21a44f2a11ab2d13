package SC::Forge;

# Helpers of the tests that play a member at the wire: t/tools/sc_forge (its
# path, a run of it that must exit 0, reading its report), a Receiver that
# never reads, and the configuration pieces those tests share.
#
#   use SC::Forge qw(sc_forge forge_ok forge_args lport closed_by_member rx
#                    silent_receiver member_line add_sender mcast_block);

use strict;
use warnings;

use Exporter 'import';
use Test::More ();
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use Socket qw(PF_INET SOCK_STREAM IPPROTO_TCP SOL_SOCKET SO_RCVBUF inet_aton
              pack_sockaddr_in unpack_sockaddr_in);
use SC::Cluster ();
use SC::Test qw(need);

our @EXPORT_OK = qw(
    sc_forge forge_ok forge_args lport closed_by_member rx
    silent_receiver member_line add_sender mcast_block sync_block
);

# The sc_forge binary (need()s it: its absence fails the test file).
sub sc_forge {
    my $forge = SC::Cluster::repo_dir() . '/t/tools/sc_forge';
    need(-x $forge, "$forge: run make t/tools/sc_forge");
    return $forge;
}

# sc_forge's arguments, short enough for a test name
sub forge_args {
    return join ' ', map { length > 24 ? substr($_, 0, 12) . '..' : $_ } @_;
}

# sc_forge run in member $n's namespace: its report (stdout and stderr).  Its
# exit status must be 0 (an assertion of its own): it connected and sent
# everything, and every expect and sniff found what it waited for.
sub forge_ok {
    my ($c, $n, @args) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($rc, $out) = $c->exec_in($n, { timeout => 60 }, sc_forge(), @args);
    Test::More::note("sc_forge @args:\n$out") if $ENV{SC_VERBOSE};
    Test::More::is($rc, 0, 'sc_forge exits 0: ' . forge_args(@args)) or Test::More::diag($out);
    return $out;
}

# the local port of sc_forge's (first) connection, from its report
sub lport { my ($out) = @_; return $out =~ /^connected local=[\d.]+:(\d+)$/m ? $1 : 'none' }

# the report ends with the member closing the connection
sub closed_by_member { my ($out) = @_; return $out =~ /^(?:eof|reset) after \d+ ms\s*\z/m ? 1 : 0 }

# member $n's Receiver, address:port
sub rx { my ($c, $n) = @_; return $c->member($n)->{addr} . ':' . $c->member($n)->{cluster_port} }

# A Receiver of the test that never reads (a small receive buffer, set before
# listen() so that its connections have it); returns (socket, port).
sub silent_receiver {
    my $s;
    socket($s, PF_INET, SOCK_STREAM, IPPROTO_TCP) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack('i', 4096)) or die "SO_RCVBUF: $!";
    bind($s, pack_sockaddr_in(0, inet_aton('127.0.0.1'))) or die "bind: $!";
    listen($s, 16) or die "listen: $!";
    my ($port) = unpack_sockaddr_in(getsockname($s));
    my $fl = fcntl($s, F_GETFL, 0);
    fcntl($s, F_SETFL, $fl | O_NONBLOCK);
    return ($s, $port);
}

# A static <Member> line (inside the StaticMembershipInterceptor) for a
# member at $host:$port whose uniqueId is the bytes @id.
sub member_line {
    my ($host, $port, @id) = @_;
    return qq{      <Member className="org.apache.catalina.tribes.membership.StaticMember" }
         . qq{host="$host" port="$port" uniqueId="{@{[ join ',', @id ]}}"/>\n};
}

# Cluster block $x with a PooledParallelSender of timeout $ms before </Channel>.
sub add_sender {
    my ($x, $ms) = @_;
    return SC::Test::channel_add($x,
        qq{    <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">\n}
      . qq{      <Transport className="org.apache.catalina.tribes.transport.nio.PooledParallelSender" timeout="$ms"/>\n}
      . qq{    </Sender>\n});
}

# Member $m's static block for a synchronous pair (channelSendOptions 6), a
# PooledParallelSender of timeout $ms, dropTime 60 s (a frozen peer stays a
# live member to wait for) and a ReplicationValve only (ids keep their route:
# no re-binding).
sub sync_block {
    my ($m, $all, $ms) = @_;
    return add_sender(SC::Cluster::static_block($m, $all, channelSendOptions => 6,
                          membership => { dropTime => 60000 },
                          valves => [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ]),
                      $ms);
}

# A multicast member (228.0.0.4:45564, heartbeats every 500 ms, dropTime 3 s,
# synchronous replication), with an EncryptInterceptor when $key is given.
sub mcast_block {
    my ($m, $key, $prev) = @_;
    my $enc = !defined $key ? '' : SC::Test::encrypt_interceptor($key, $prev);
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

1;
