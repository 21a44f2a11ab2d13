#!perl
# Graceful stop through the front, and the front's page acting (issue 20).
# A front (SessionClusterBalancer, BalancerMembers route=node1, node2) and two
# members (DeltaManager: each holds every session).
#   A. Graceful stop under load: 8 sticky sessions through the front, 4 of
#      them sending GETs and 4 POSTs (a=1), one request after the other each,
#      while `httpd -k graceful-stop` (apachectl's command, with node1's
#      configuration) stops node1: no request fails (every answer 200), and
#      no session loses a write (each session's counter goes up by one at
#      every request, across the stop: no gap, no reset).  The longest
#      request and the longest pause of a session are printed.
#   B. The front's page drains node2 (POST action=member route=node2
#      set=drain with the front page's nonce): the front's page and
#      balancer-manager show it Drn, and it stays so while the cluster's
#      state passes are made (it was overwritten within a moment before);
#      new sessions through the front avoid node2, a session stuck to node2
#      goes on there; without the nonce the action is refused (403).
#      Enable: new sessions reach node2 again.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Load;
use SC::Test qw(status_of check within app show demo_module demo_conf balancer_member status_has
                page_action bm_row url_escape);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 120;
$SIG{ALRM} = sub { die "front_graceful.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $APP = demo_conf(demo_module());
my $c = SC::Cluster->new(
    members    => 2,
    front      => { name => 'front', retry => 300, connectiontimeout => 5, timeout => 30 },
    loglevel   => 'info',
    extra_conf => $APP,
);
my $F = $c->front;
SC::Test::dump_options(extra => SC::Test::front_extra($F));
$c->start_all;

sub worker_ok { my ($w) = @_; $w && status_has($w->{status}, 'Ok') && !status_has($w->{status}, 'Err') }
sub front_page { status_of($c, $F) || {} }
check(within(30, sub { my $p = front_page(); !grep { !worker_ok(balancer_member($p, $_)) } qw(node1 node2) }),
      $c, 'the front shows both BalancerMembers Ok');
my $front_addr = $c->member($F)->{addr};
my $front_port = $c->member($F)->{http_port};

# A request through the front: the load client's record.
sub through_front {
    my ($id, %o) = @_;
    my $recs = SC::Load::run(addr => $front_addr, port => $front_port, duration => 10,
                             sessions => [ { name => 'one', id => $id, requests => 1,
                                             method => $o{method} // 'GET' } ]);
    return $recs->[0] || {};
}

# B. the front's page acts ------------------------------------------------------------
sub front_act {
    my ($action, $route, %o) = @_;
    my %form = (action => $action, route => $route, auto => 1);
    $form{nonce} = $o{nonce} // front_page()->{Nonce} // '' unless $o{no_nonce};
    my ($s, undef, $b) = page_action($c, $F, %form);
    return ($s, $b);
}
sub bm_status { (balancer_member(front_page(), $_[0]) || {})->{status} // '' }
sub new_routes {
    my ($n) = @_;
    my %r;
    $r{ through_front(undef)->{route} // 'none' }++ for 1 .. $n;
    return %r;
}
{
    my $stuck = through_front(undef);
    $stuck = through_front(undef) while ($stuck->{route} // '') ne 'node2';
    my ($id, $count) = ($stuck->{cookie}, $stuck->{counter});
    my ($s) = front_act('drain', 'node2', no_nonce => 1);
    is($s, 403, 'B. drain without the nonce: refused (403)');
    ok(!status_has(bm_status('node2'), 'Drn'), '... and node2 is not drained');
    my $b;
    ($s, $b) = front_act('drain', 'node2');
    ok($s == 200 && $b =~ /^Result: accepted$/m, "B. drain node2 on the front's page: accepted")
        or diag("status $s\n$b");
    ok(status_has(bm_status('node2'), 'Drn'), "B. the front's page shows node2 Drn") or diag(bm_status('node2'));
    # the cluster's passes (every request, the watchdog 5 times a second)
    # leave the admin's drain alone
    my %r = new_routes(6);
    sleep 1;
    ok(status_has(bm_status('node2'), 'Drn'), 'B. ... still Drn after 1 s and 6 requests through the front');
    like(SC::Test::bm_row($c, $F, $c->member('node2')->{http_port}) // '', qr/\bDrn\b/,
         'B. balancer-manager shows node2 Drn too');
    is_deeply(\%r, { node1 => 6 }, 'B. 6 new sessions through the front all go to node1')
        or diag(join ' ', %r);
    my $r = through_front($id);
    ok(($r->{route} // '') eq 'node2' && ($r->{counter} // 0) == $count + 1,
       'B. the session stuck to node2 goes on there (counter one up)') or diag(join ' ', %$r);
    ($s, $b) = front_act('disable', 'node2');
    is($s, 200, 'B. disable node2 on the front\'s page');
    $r = through_front($id);
    ok(($r->{route} // '') eq 'node1' && ($r->{counter} // 0) == $count + 2,
       'B. ... its session goes to node1 (counter one up)') or diag(join ' ', %$r);
    ($s, $b) = front_act('enable', 'node2');
    is($s, 200, 'B. enable node2 on the front\'s page');
    ok(!status_has(bm_status('node2'), 'Drn') && !status_has(bm_status('node2'), 'Dis'),
       'B. ... neither Drn nor Dis any more') or diag(bm_status('node2'));
    %r = new_routes(4);
    ok($r{node2}, 'B. new sessions reach node2 again (' . join(' ', %r) . ')');
    ($s) = front_act('drain', 'nosuchroute');
    is($s, 404, 'B. drain of a route no BalancerMember has: 404');
}

# A. graceful stop under load --------------------------------------------------------
{
    # sessions made through the front, on both members
    my (@sess, %on);
    for my $i (1 .. 8) {
        my $r = through_front(undef);
        check(($r->{status} // 0) == 200 && $r->{cookie}, $c, "A. session $i made through the front",
              "status " . ($r->{status} // 0) . ' ' . ($r->{err} // ''));
        push @sess, { name => "s$i", id => $r->{cookie}, method => $i <= 4 ? 'GET' : 'POST',
                      first => $r->{counter} };
        $on{ $r->{route} // '' }++;
    }
    ok($on{node1} && $on{node2}, "A. sessions on both members (node1 $on{node1}, node2 "
                                 . ($on{node2} // 0) . ')') ;
    # every member holds each one before the load starts
    check(within(20, sub { !grep { my $s = $_; grep { !(SC::Test::session_on($c, $_, $s->{id}) || {})->{SessionVersion} } qw(node1 node2) } @sess }),
          $c, 'A. both members hold the 8 sessions');

    my $out = $c->base_dir . '/load.tsv';
    my $h = $c->spawn(undef, { out => $out }, $^X, "-I$FindBin::Bin/../lib", '-MSC::Load',
                      '-e', 'SC::Load::main(@ARGV)', "addr=$front_addr", "port=$front_port",
                      'duration=5', 'interval=0.02', 'timeout=20',
                      map { "session=$_->{name}:$_->{id}:$_->{method}" } @sess);
    sleep 1.5;
    my $t_stop = time;
    $c->ctl('node1', $ENV{HOW} // 'graceful-stop');
    my $t_ctl = time - $t_stop;
    my ($rc, $tsv) = $c->finish($h, timeout => 40);
    is($rc, 0, 'A. the load client ran to its end');
    my $stopped = $c->wait_for(sub { !$c->is_running('node1') }, timeout => 20);
    ok($stopped, 'A. node1 stopped on httpd -k graceful-stop');
    $c->stop('node1');
    my $recs = SC::Load::parse_tsv($tsv);
    my @bad = grep { ($_->{status} // 0) != 200 } @$recs;
    my %by;
    push @{ $by{ $_->{name} } }, $_ for @$recs;
    my ($gaps, $lost) = (0, 0);
    my ($max_lat, $max_pause) = (0, 0);
    my @lost;
    for my $s (@sess) {
        my @r = sort { $a->{seq} <=> $b->{seq} } @{ $by{ $s->{name} } || [] };
        my $prev = $s->{first};
        my $prev_end;
        for my $r (@r) {
            $max_lat = $r->{lat} if $r->{lat} > $max_lat;
            my $end = $r->{t} + $r->{lat};
            $max_pause = $r->{t} - $prev_end if defined $prev_end && $r->{t} - $prev_end > $max_pause;
            $prev_end = $end;
            next unless ($r->{status} // 0) == 200;
            if (!defined $r->{counter} || $r->{counter} != $prev + 1) {
                push @lost, "$s->{name} ($s->{method}) seq $r->{seq}: counter "
                    . ($r->{counter} // 'none') . " after $prev (route " . ($r->{route} // '?') . ')';
            }
            $prev = $r->{counter} // $prev;
        }
    }
    my %routes;
    $routes{ $_->{route} // '-' }++ for @$recs;
    my @posts = grep { $_->{name} =~ /^s[5-8]$/ } @$recs;
    note(sprintf('A. %d requests (%d POST) in 5 s, graceful-stop at +1.5 s (the command took %.0f ms); '
                 . 'served by %s; longest request %.0f ms, longest stall of a session %.0f ms',
                 scalar @$recs, scalar @posts, $t_ctl * 1000,
                 join(', ', map { "$_ $routes{$_}" } sort keys %routes), $max_lat * 1000,
                 ($max_lat > $max_pause ? $max_lat : $max_pause) * 1000));
    ok(@$recs > 40 && @posts > 20, 'A. the load ran (' . scalar(@$recs) . ' requests)');
    is(scalar @bad, 0, 'A. no request failed across the graceful stop')
        or diag(join "\n", map { "$_->{name} seq $_->{seq} status $_->{status} "
                                 . ($_->{err} // '') } @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
    is(scalar @lost, 0, 'A. no session lost a write: every counter went up by one at each request')
        or diag(join "\n", @lost[0 .. ($#lost < 9 ? $#lost : 9)]);
    ok(!grep({ ($_->{route} // '') eq 'node1' } grep { $_->{t} > $t_stop + $t_ctl + 0.5 } @$recs),
       'A. no request answered by node1 after its stop');
}

$c->teardown;
done_testing();
