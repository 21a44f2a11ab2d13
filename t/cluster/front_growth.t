#!perl
# Members join the front's balancer by themselves (issue 21): a front
# (SessionClusterBalancer) with no BalancerMember line, balancer://members
# with room for five workers added at run time (growth=5, lbmethod=bycluster)
# and balancer://small with one BalancerMember line, for node1 at
# http://localhost:PORT (not the URL node1 announces), and room for one more
# (growth=1); members node1..node4 announce their URL (their Listen:
# http://127.0.0.1:PORT).
#   A. node1..node3 started: the front's page shows a BalancerMember for each,
#      with the member's URL, Ok; 24 new sessions through the front reach
#      all three.
#   B. balancer://small: the line for node1 comes first (its one worker with
#      route=node1 is the configured one, nothing added for node1), one of
#      node2 and node3 is added and the other has no room: the front's page
#      says "MissingGrowthRoom: balancer://small <route>" and its log SC1806;
#      FrontGrowthRoom is 2 (two slots left in balancer://members).
#   C. node4 started later, the front untouched: it gets a BalancerMember
#      and new sessions through the front reach it.
#   D. node2 stopped: its worker stays, in error (Err), and no new session
#      reaches it; node2 started again: the same worker (one BalancerMember
#      with route node2; FrontWorkersAdded and FrontGrowthRoom unchanged: the
#      slot left was not taken) is Ok and new sessions reach it again.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(worker_ok status_of check within app demo_module demo_conf balancer_member bm_line
                status_has num);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 90;
$SIG{ALRM} = sub { die "front_growth.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
my $SMALL = <<'EOC';
<Proxy balancer://small>
    BalancerMember http://localhost:NODE1PORT route=node1
    ProxySet stickysession=JSESSIONID|jsessionid growth=1
</Proxy>
ProxyPass /small balancer://small/app
SessionClusterBalancer balancer://small
EOC

my $c = SC::Cluster->new(
    members     => 4,
    front       => 'front',
    loglevel    => 'info',
    extra_conf  => $APP,
    member_opts => {
        front => { extra_conf => sub {
            my $port = (grep { $_->{name} eq 'node1' } @{ $_[1] })[0]{http_port};
            SC::Cluster::front_conf(@_, members => [], proxyset => 'growth=5 lbmethod=bycluster')
                . ($SMALL =~ s/NODE1PORT/$port/r) } },
    },
);
my $F = $c->front;
my %url = map { $_ => "http://127.0.0.1:" . $c->member($_)->{http_port} } qw(node1 node2 node3 node4);
SC::Test::dump_options(extra => SC::Test::front_extra($F));

sub worker_err { my ($w) = @_; $w && status_has($w->{status}, 'Err') && !status_has($w->{status}, 'Ok') }
sub workers_of {
    my ($p, $route) = @_;
    return grep { ($_->{route} // '') eq $route && ($_->{balancer} // '') eq 'balancer://members' }
           @{ $p ? $p->{balancer_members} : [] };
}
sub all_lines { my ($p) = @_; join(' | ', map { bm_line($_) } @{ $p ? $p->{balancer_members} : [] }) }

# new sessions through the front: { route => count }
sub new_sessions {
    my ($n) = @_;
    my %route;
    for (1 .. $n) {
        my $r = app($c, $F, 'auto');
        $route{ $r->{status} == 200 ? ($r->{route} // '?') : "status $r->{status}" }++;
    }
    return \%route;
}
sub show_routes {
    my ($h) = @_;
    my $p = status_of($c, $F);
    return join(' ', map { "$_=$h->{$_}" } sort keys %$h) . '; the front sees: '
         . join(', ', map { "$_->{route} busy=" . ($_->{busy} // '?') . '/' . ($_->{capacity} // '?')
                            . ' sessions=' . ($_->{sessions_held} // '?') }
                grep { ($_->{role} // '') ne 'balancer' } @{ $p ? $p->{members} : [] });
}

# A. three members, no BalancerMember line ------------------------------------------------
$c->start($_) for qw(node1 node2 node3);
$c->start($F);
my $p;
my $ok = within(20, sub {
    $p = status_of($c, $F) or return 0;
    for my $n (qw(node1 node2 node3)) {
        my ($w) = workers_of($p, $n);
        return 0 unless worker_ok($w);
    }
    return 1;
});
check($ok, $c, 'A. the front added a BalancerMember for node1, node2 and node3, each Ok', all_lines($p));
for my $n (qw(node1 node2 node3)) {
    my @w = workers_of($p, $n);
    is(scalar @w, 1, "A. one BalancerMember with route=$n");
    is($w[0] && $w[0]{url}, $url{$n}, "A. ... with the URL $n announces ($url{$n})");
}
my $r = new_sessions(24);
ok($r->{node1} && $r->{node2} && $r->{node3} && 24 == ($r->{node1} // 0) + ($r->{node2} // 0) + ($r->{node3} // 0),
   'A. 24 new sessions through the front: all three members receive some')
    or diag(show_routes($r));

# B. growth room used up --------------------------------------------------------------------
{
    my @missing = $c->get($F, '/cluster-manager?auto', timeout => 3);
    my @lines = ($missing[2] // '') =~ /^MissingGrowthRoom: balancer:\/\/small (\S+)$/mg;
    ok(@lines == 1 && $lines[0] =~ /^node[23]$/,
       'B. the page says one of node2 and node3 has no room in balancer://small (growth=1)')
        or diag(join("\n", grep { /Missing|Unmatched|Growth/ } split /\n/, $missing[2] // ''));
    $p = status_of($c, $F);
    my @small = grep { ($_->{balancer} // '') eq 'balancer://small' } @{ $p ? $p->{balancer_members} : [] };
    my @one = grep { ($_->{route} // '') eq 'node1' } @small;
    ok(@one == 1 && $one[0]{url} eq 'http://localhost:' . $c->member('node1')->{http_port},
       'B. balancer://small: its BalancerMember line for node1 comes first (one worker, the configured URL)')
        or diag(all_lines($p));
    is(scalar(grep { ($_->{route} // '') =~ /^node[23]$/ } @small), 1,
       'B. ... and one of node2 and node3 was added to it') or diag(all_lines($p));
    is(num($p, 'FrontGrowthRoom'), 2, 'B. FrontGrowthRoom: 2 (balancer://members: 5 - 3)');
    like($c->error_log($F), qr/SC1806: SessionClusterBalancer balancer:\/\/small: no room/,
         'B. the front logged SC1806 (no room in balancer://small)');
}
my $added = num(status_of($c, $F), 'FrontWorkersAdded');
is($added, 4, 'B. FrontWorkersAdded: 4 (three in balancer://members, one in balancer://small)');

# C. a fourth member, started later -------------------------------------------------------
$c->start('node4');
$ok = within(20, sub {
    $p = status_of($c, $F) or return 0;
    my ($w) = workers_of($p, 'node4');
    return worker_ok($w);
});
check($ok, $c, 'C. node4 started later: the front added its BalancerMember, Ok', all_lines($p));
$r = new_sessions(24);
ok($r->{node4}, 'C. new sessions through the front reach node4') or diag(show_routes($r));

# D. stopped and started again: the same worker -----------------------------------------------
$p = status_of($c, $F);
$added = num($p, 'FrontWorkersAdded');
my $room = num($p, 'FrontGrowthRoom');
is($room, 1, 'D. FrontGrowthRoom: 1 before node2 stops (balancer://members: 5 - 4)');
$c->stop('node2');
$ok = within(20, sub {
    $p = status_of($c, $F) or return 0;
    my @w = workers_of($p, 'node2');
    return @w == 1 && worker_err($w[0]);
});
check($ok, $c, 'D. node2 stopped: its BalancerMember stays, in error (Err)', all_lines($p));
$r = new_sessions(12);
ok(!$r->{node2} && 12 == ($r->{node1} // 0) + ($r->{node3} // 0) + ($r->{node4} // 0),
   'D. ... and no new session reaches it; the others answer all') or diag(show_routes($r));
$c->start('node2');
$ok = within(20, sub {
    $p = status_of($c, $F) or return 0;
    my @w = workers_of($p, 'node2');
    return @w == 1 && worker_ok($w[0]);
});
check($ok, $c, 'D. node2 started again: its one BalancerMember is Ok again', all_lines($p));
is(num($p, 'FrontWorkersAdded'), $added, 'D. ... the same worker: FrontWorkersAdded unchanged');
is(num($p, 'FrontGrowthRoom'), $room, 'D. ... and FrontGrowthRoom unchanged (no slot taken)');
is(scalar(workers_of($p, 'node2')), 1, 'D. ... one BalancerMember with route=node2');
$r = new_sessions(24);
ok($r->{node2}, 'D. new sessions through the front reach node2 again') or diag(show_routes($r));

done_testing();
