#!perl
# The front's balancing methods of issue 21, on a front with no BalancerMember
# line (members added as they announce themselves) and members node1..node3:
#   A. lbmethod=bycluster (balancer://members, /app): node1 is made busy by
#      12 connections that send a request line and one header, then nothing:
#      each holds one of its MPM's 32 workers reading the request (a
#      connection that sends nothing at all holds none: the event MPM waits
#      for its first bytes without a worker); once the front sees node1's busy
#      figure (its heartbeats), 15 new sessions through the front all go to
#      node2 and node3.  The connections closed and the figure back down,
#      new sessions reach node1 again.
#   B. lbmethod=bysource (balancer://src, /src, no stickiness): mod_remoteip
#      on the front takes the client's address from X-Forwarded-For (127.0.0.1
#      a trusted proxy); 30 clients 10.9.0.1..30 each land on one member,
#      every time, and the three members share them.  node3 stopped: the
#      clients of node1 and node2 stay where they were, only node3's move.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of check within app demo_module demo_conf balancer_member bm_line
                status_has num);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 90;
$SIG{ALRM} = sub { die "lbmethod_cluster.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
my $SRC = <<'EOC';
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy 127.0.0.1
<Proxy balancer://src>
    ProxySet lbmethod=bysource growth=4
</Proxy>
ProxyPass /src balancer://src/app
SessionClusterBalancer balancer://src
EOC

my $c = SC::Cluster->new(
    members     => 3,
    front       => 'front',
    extra_conf  => $APP,
    member_opts => {
        front => { modules => [ 'remoteip' ],
                   extra_conf => sub {
                       SC::Cluster::front_conf(@_, members => [], proxyset => 'lbmethod=bycluster growth=4')
                           . $SRC } },
    },
);
my $F = $c->front;
my @N = qw(node1 node2 node3);

sub front_member {
    my ($n) = @_;
    my $p = status_of($c, $F) or return undef;
    my ($m) = grep { ($_->{route} // '') eq $n } @{ $p->{members} };
    return $m;
}
sub ready_workers {
    my ($bal, @names) = @_;
    my $p = status_of($c, $F) or return 0;
    for my $n (@names) {
        my ($w) = grep { ($_->{route} // '') eq $n && ($_->{balancer} // '') eq $bal }
                  @{ $p->{balancer_members} };
        return 0 unless $w && status_has($w->{status}, 'Ok') && !status_has($w->{status}, 'Err');
    }
    return 1;
}
sub new_sessions {
    my ($n) = @_;
    my %route;
    for (1 .. $n) {
        my $r = app($c, $F, 'auto');
        $route{ $r->{status} == 200 ? ($r->{route} // '?') : "status $r->{status}" }++;
    }
    return \%route;
}
sub loads { join(', ', map { my $m = front_member($_); "$_ busy=" . ($m ? "$m->{busy}/$m->{capacity}" : '?') } @N) }
sub show_routes { my ($h) = @_; join(' ', map { "$_=$h->{$_}" } sort keys %$h) . '; ' . loads() }

$c->start_all;
my $ok = within(20, sub { ready_workers('balancer://members', @N) && ready_workers('balancer://src', @N) });
check($ok, $c, 'the front added node1..node3 to both balancers, Ok', loads());

# A. bycluster --------------------------------------------------------------------------------
{
    my $port = $c->member('node1')->{http_port};
    my @held;
    for (1 .. 12) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
                                      Timeout => 3);
        next unless $s;
        print $s "GET /app HTTP/1.1\r\nHost: localhost\r\n";
        push @held, $s;
    }
    is(scalar @held, 12, 'A. 12 connections to node1 that send half a request');
    my $m;
    my $seen = within(20, sub { $m = front_member('node1'); $m && ($m->{busy} // 0) >= 10 });
    check($seen, $c, 'A. the front sees node1 busy (at least 10 workers, from its heartbeats)', loads());
    my $r = new_sessions(15);
    ok(!$r->{node1} && 15 == ($r->{node2} // 0) + ($r->{node3} // 0),
       'A. 15 new sessions through the front: none to the busy node1, node2 and node3 took all')
        or diag(show_routes($r));
    close $_ for @held;
    $seen = within(40, sub { $m = front_member('node1'); $m && ($m->{busy} // 99) <= 1 });
    check($seen, $c, 'A. the connections closed, the front sees node1 idle again', loads());
    $r = new_sessions(15);
    ok($r->{node1}, 'A. new sessions reach node1 again') or diag(show_routes($r));
}

# B. bysource ---------------------------------------------------------------------------------
{
    my (%at, @bad);
    for my $i (1 .. 30) {
        my $ip = "10.9.0.$i";
        for (1 .. 2) {
            my ($s, undef, $b) = $c->get($F, '/src?auto', headers => { 'X-Forwarded-For' => $ip },
                                         timeout => 5);
            my ($route) = ($b // '') =~ /^Route: (\S+)/m;
            if ($s != 200 || !$route) { push @bad, "$ip: status $s"; next }
            push @bad, "$ip: $at{$ip} then $route" if defined $at{$ip} && $at{$ip} ne $route;
            $at{$ip} = $route;
        }
    }
    is(scalar @bad, 0, 'B. bysource: each of 30 client addresses lands on one member every time')
        or diag(join('; ', @bad));
    my %count;
    $count{$_}++ for values %at;
    ok(@N == grep({ $count{$_} } @N), 'B. ... and the three members share them')
        or diag(join(' ', map { "$_=" . ($count{$_} // 0) } @N));
    $c->stop('node3');
    $ok = within(20, sub {
        my $p = status_of($c, $F) or return 0;
        my ($w) = grep { ($_->{route} // '') eq 'node3' && ($_->{balancer} // '') eq 'balancer://src' }
                  @{ $p->{balancer_members} };
        return $w && status_has($w->{status}, 'Err');
    });
    check($ok, $c, 'B. node3 stopped: its worker in balancer://src is in error');
    my (@moved, @lost);
    for my $ip (sort keys %at) {
        my ($s, undef, $b) = $c->get($F, '/src?auto', headers => { 'X-Forwarded-For' => $ip },
                                     timeout => 5);
        my ($route) = ($b // '') =~ /^Route: (\S+)/m;
        $route //= "status $s";
        if ($at{$ip} eq 'node3') { push @lost, "$ip -> $route" if $route !~ /^node[12]$/ }
        elsif ($route ne $at{$ip}) { push @moved, "$ip: $at{$ip} -> $route" }
    }
    is(scalar @moved, 0, "B. the clients of node1 and node2 stay where they were") or diag(join('; ', @moved));
    is(scalar @lost, 0, "B. node3's clients ($count{node3}) went to node1 or node2") or diag(join('; ', @lost));
}

done_testing();
