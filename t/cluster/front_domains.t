#!perl
# Domains as balancing groups, and two fronts (issue 21).  node1 and node2 in
# domain "east", node3 and node4 in "west" (DomainFilterInterceptor: each
# domain its own replication group, synchronous sends, JvmRouteBinderValve);
# two fronts, fronta and frontb, with SessionClusterBalancer and no
# BalancerMember line (the members added as they announce themselves,
# lbmethod=byrequests), both in every member's static membership and without a
# domain filter of their own, so they hear both domains.
#   A. Both fronts add a BalancerMember for node1..node4, Ok, and see each
#      member's domain.
#   B. 16 new sessions through fronta (byrequests: some on every member);
#      each session's next request through frontb goes to the member it was
#      created on, and its counter goes on (2), and once more through fronta (3).
#   R. node3 frozen with a GET of one of its sessions in flight through
#      fronta, then killed: fronta sends the GET again to node4 (node3's
#      domain), although node4 is made the busiest member (6 half requests
#      holding its workers; the least loaded would be node1 or node2),
#      counter one up, SC1661, FrontCrossDomain 0.
#   C. node1 killed: on both fronts its worker is in error with its sessions'
#      redirect route node2 (the usable member of its domain).  Each of node1's
#      sessions, with the cookie that still names node1, through fronta then
#      frontb: answered by node2 both times, the counter going on (4, 5);
#      FrontCrossDomain stays 0 on both.  (Every member's static membership
#      lists all six: node3 and node4 are refused on node2 as of another
#      domain, not counted in its quorum, so node2 alone still takes
#      synchronous writes.)  (Without the domain preference
#      byrequests sends them to node2, node3 and node4 in turn, and west does
#      not hold east's sessions: a new session, counter 1.)  fronta's
#      balancer://fixed, one BalancerMember line for node1 with redirect=node3,
#      keeps that redirect (the configuration's).
#   D. node2 killed too: east has no usable member, the redirect is cleared,
#      and a session of east through fronta lands in west (a new session
#      there); fronta counts it (FrontCrossDomain 1) and says so (SC1813).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(status_of member_on check within app demo_module demo_conf bm_line status_has num show
                unread_bytes);
use SC::KeepAlive;
use IO::Socket::INET;
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 90;
$SIG{ALRM} = sub { die "front_domains.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my %domain = (node1 => 'east', node2 => 'east', node3 => 'west', node4 => 'west');
my $FILTER = 'org.apache.catalina.tribes.group.interceptors.DomainFilterInterceptor';
# a balancer whose configuration line sets redirect= (to another domain): kept
my $FIXED = <<'EOC';
<Proxy balancer://fixed>
    BalancerMember http://127.0.0.1:NODE1PORT route=node1 redirect=node3
    ProxySet stickysession=JSESSIONID|jsessionid
</Proxy>
SessionClusterBalancer balancer://fixed
EOC
my $front_conf = sub { SC::Cluster::front_conf(@_, members => [], proxyset => 'growth=6') };

my $c = SC::Cluster->new(
    members     => [ qw(node1 node2 node3 node4 frontb) ],
    front       => 'fronta',
    loglevel    => 'info',
    extra_conf  => demo_conf(demo_module()),
    member_opts => {
        fronta => { extra_conf => sub {
            my $port = (grep { $_->{name} eq 'node1' } @{ $_[1] })[0]{http_port};
            $front_conf->(@_) . ($FIXED =~ s/NODE1PORT/$port/r) } },
        frontb => { route => undef, extra_conf => $front_conf,
                    modules => [ @SC::Cluster::FRONT_MODULES ] },
    },
    cluster     => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all, channelSendOptions => 6,
                                          jvm_route_binder => defined $m->{route});
        my $d = $domain{ $m->{name} } or return $x;
        $x =~ s{(\n\s*<Interceptor [^\n]*TcpFailureDetector"/>)}
               {\n    <Interceptor className="$FILTER" domain="$d"/>$1} or die "no interceptor line";
        return $x;
    },
);
my @N = qw(node1 node2 node3 node4);
my @F = qw(fronta frontb);

sub workers {
    my ($p, $bal) = @_;
    $bal //= 'balancer://members';
    return { map { ($_->{route} // '') => $_ }
             grep { ($_->{balancer} // '') eq $bal } @{ $p ? $p->{balancer_members} : [] } };
}
sub lines { my ($p) = @_; join(' | ', map { bm_line($_) } @{ $p ? $p->{balancer_members} : [] }) }

# A. both fronts, four members, two domains ---------------------------------------------------
$c->start($_) for @N, @F;
for my $f (@F) {
    my $p;
    my $ok = within(20, sub {
        $p = status_of($c, $f) or return 0;
        my $w = workers($p);
        my %dom = map { ($_->{route} // '') => ($_->{domain} // '') } @{ $p->{members} };
        return !grep { !$w->{$_} || !status_has($w->{$_}{status}, 'Ok')
                       || status_has($w->{$_}{status}, 'Err') || $dom{$_} ne $domain{$_} } @N;
    });
    check($ok, $c, "A. $f added node1..node4, Ok, and sees their domains (east, east, west, west)",
          lines($p));
}

# B. sessions made through fronta follow their member through frontb ------------------------
my (%sess, @bad);
for (1 .. 16) {
    my $r = app($c, 'fronta', 'auto');
    if ($r->{status} != 200 || !$r->{cookie} || ($r->{counter} // 0) != 1) {
        push @bad, 'new: ' . show($r);
        next;
    }
    $sess{ $r->{cookie} } = { route => $r->{route}, counter => 1 };
}
for my $id (sort keys %sess) {
    for my $f (qw(frontb fronta)) {
        my $r = app($c, $f, 'auto', $id);
        my $want = $sess{$id}{counter} + 1;
        push @bad, "$id through $f: " . show($r)
            unless $r->{status} == 200 && ($r->{route} // '') eq $sess{$id}{route}
                   && ($r->{counter} // 0) == $want;
        $sess{$id}{counter} = $want;
    }
}
is(scalar @bad, 0, 'B. 16 sessions made through fronta: through frontb, then fronta again, each '
                 . 'reaches its member, counter 2 then 3') or diag(join("\n", @bad));
my @east = grep { $sess{$_}{route} eq 'node1' } sort keys %sess;
ok(@east >= 3, 'B. ... of which node1 has 3 or more (byrequests: ' . scalar(@east) . ')')
    or diag(join(' ', map { $sess{$_}{route} } sort keys %sess));

# R. a GET of one of node3's sessions in flight through fronta: node3 frozen
# takes it, then dies; fronta sends it again to node4 (its domain), not to
# node1 or node2 (east, less busy than node4)
{
    my @west = grep { $sess{$_}{route} eq 'node3' } sort keys %sess;
    check(scalar @west, $c, 'R. node3 has a session (byrequests: ' . scalar(@west) . ')');
    my $id = $west[0];
    # node4 made the busiest member by its own figure: 6 connections that
    # send half a request each hold 6 of its 32 workers (the least loaded
    # member of all would be node1 or node2; more would make node4's MPM
    # close its idle kept connections, the front's among them)
    my @held;
    for (1 .. 6) {
        my $h = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->member('node4')->{http_port},
                                      Proto => 'tcp', Timeout => 3) or next;
        print $h "GET /app HTTP/1.1\r\nHost: localhost\r\n";
        push @held, $h;
    }
    my $busy = sub { my ($m) = grep { ($_->{route} // '') eq 'node4' } @{ (status_of($c, 'fronta') || {})->{members} || [] };
                     return $m ? $m->{busy} // 0 : 0 };
    check(within(20, sub { $busy->() >= 5 }), $c, 'R. fronta sees node4 busy (5 workers or more, its heartbeats)');
    my $port = $c->member('node3')->{http_port};
    $c->sigstop('node3');
    my $before = unread_bytes($port);
    my $sock = IO::Socket::INET->new(PeerAddr => $c->member('fronta')->{addr},
                                     PeerPort => $c->member('fronta')->{http_port},
                                     Proto => 'tcp', Timeout => 30) or die "connect to fronta: $!";
    print {$sock} "GET /app?auto HTTP/1.1\r\nHost: localhost\r\nCookie: JSESSIONID=$id\r\n\r\n";
    check(within(10, sub { unread_bytes($port) > $before }), $c,
          'R. node3 (frozen) holds a GET of one of its sessions, sent through fronta');
    $c->kill9('node3');
    my ($s, undef, $b) = SC::KeepAlive::read_response($sock);
    my $want = $sess{$id}{counter} + 1;
    my ($route) = ($b // '') =~ /^Route: ?(\S+)/m;
    my ($n) = ($b // '') =~ /^Counter: ?(\d+)/m;
    ok($s == 200 && ($route // '') eq 'node4' && ($n // 0) == $want,
       "R. ... node3 killed: fronta sends the GET again to node4 (its domain), counter $want")
        or diag("status $s\n" . ($b // ''));
    like($c->error_log('fronta'), qr/SC1661: .*\(route node3\).*sent again to \S+ \(route node4\)/,
         'R. ... fronta logs SC1661: sent again to node4');
    is(num(status_of($c, 'fronta'), 'FrontCrossDomain'), 0, 'R. fronta: FrontCrossDomain 0');
    close $_ for @held;
}

# C. node1 killed: its sessions stay in east, on node2, through both fronts -------------------
$c->kill9('node1');
my $ok;
for my $f (@F) {
    my $p;
    $ok = within(20, sub {
        $p = status_of($c, $f) or return 0;
        my $w = workers($p)->{node1};
        return $w && status_has($w->{status}, 'Err') && ($w->{redirect} // '') eq 'node2';
    });
    check($ok, $c, "C. $f: node1's worker in error, its sessions redirected to node2", lines($p));
}
{
    my $w = workers(status_of($c, 'fronta'), 'balancer://fixed')->{node1};
    is($w && $w->{redirect}, 'node3', 'C. fronta, balancer://fixed: the redirect=node3 of its '
                                    . 'configuration line is kept') or diag(bm_line($w));
}
# (node2's synchronous sends to node1 fail until it holds node1 dead: wait for it)
$ok = within(20, sub { my $m = member_on($c, 'node2', 'node1'); $m && $m->{state} =~ /^(?:dead|left)$/ });
check($ok, $c, 'C. node2 holds node1 dead');
@bad = ();
for my $id (@east) {
    for my $f (@F) {
        my $r = app($c, $f, 'auto', $id);
        my $want = $sess{$id}{counter} + 1;
        push @bad, "$id through $f: " . show($r)
            unless $r->{status} == 200 && ($r->{route} // '') eq 'node2'
                   && ($r->{counter} // 0) == $want;
        $sess{$id}{counter} = $want;
    }
}
is(scalar @bad, 0, 'C. node1\'s ' . scalar(@east) . ' sessions (cookie naming node1) through fronta, '
                 . 'then frontb: node2 answers both, counter up by one each') or diag(join("\n", @bad));
is(num(status_of($c, $_), 'FrontCrossDomain'), 0, "C. $_: FrontCrossDomain 0") for @F;

# D. east gone: a session of east goes to west, counted and said ------------------------------
$c->kill9('node2');
my $p;
$ok = within(20, sub {
    $p = status_of($c, 'fronta') or return 0;
    my $w = workers($p);
    return $w->{node2} && status_has($w->{node2}{status}, 'Err')
           && ($w->{node1}{redirect} // '') eq '-' && ($w->{node2}{redirect} // '') eq '-';
});
check($ok, $c, 'D. node2 killed too: fronta has both east workers in error, no redirect', lines($p));
my $r = app($c, 'fronta', 'auto', $east[0]);
ok($r->{status} == 200 && ($r->{route} // '') =~ /^node[34]$/ && ($r->{counter} // 0) == 1,
   'D. a session of east through fronta: answered in west, as a new session (counter 1)')
    or diag(show($r));
is(num(status_of($c, 'fronta'), 'FrontCrossDomain'), 1, 'D. fronta: FrontCrossDomain 1');
like($c->error_log('fronta'),
     qr/SC1813: SessionClusterBalancer balancer:\/\/members: a session of member node1 \(domain 'east'\) went to member node[34] of domain 'west' \(no member of its domain was usable\)/,
     'D. fronta logged SC1813 (a session of east answered in west)');

done_testing();
