#!perl
# Graceful stop through the front, and the front's page acting (issue 20).
# A front (SessionClusterBalancer, BalancerMembers route=node1, node2) and two
# members (DeltaManager: each holds every session).
#   B. The front's page drains node2 (its HTML has the button; POST
#      action=drain&route=node2 with the page's nonce; without it: 403): the front's page and balancer-manager
#      show it Drn, and it stays so through the cluster's state passes (every
#      request, the watchdog), which cleared it within a moment before; new
#      sessions through the front avoid node2, a session stuck to node2 goes
#      on there.  Disable: that session goes to node1, counter one up.
#      Enable: neither Drn nor Dis, and new sessions reach node2 again.
#      Drain set in balancer-manager itself stays too (1 s, new sessions all
#      to node1), and clears there.  A route no BalancerMember has: 404.
#   A. Stops under load: 8 sticky sessions through the front (4 sending GETs,
#      4 POSTs a=1, one request after the other each) for 3 s, while
#      `httpd -k graceful-stop` (apachectl's command, node1's configuration)
#      stops node1 after 1 s; then node1 is started again, half of the
#      sessions are moved back to it (node2 disabled on the front's page for
#      one request each), and the same with `httpd -k stop`, which cuts
#      requests in flight.  Each time: node1's engine told the members before
#      httpd was signalled and both took it in (SC1905, SC1906); no request
#      failed (every answer 200: no POST was sent to node1 once it was
#      leaving); no session lost a write (its counter goes up by one at every
#      request, across the stop).  Then node1 started again, half of the
#      sessions moved back, and the same load across a graceful restart of
#      node1 (SIGUSR1, httpd -k graceful) with a changed <Cluster> block
#      (DeltaManager stateTransferTimeout): same httpd, a new engine
#      (EnginePid); no request failed, no session lost a write.  The longest request and the longest pause of a session
#      are printed.
#   C. A change made on node1 while its new engine (another graceful restart
#      with a changed block) has not met node2, frozen meanwhile: node2 gets
#      it when they meet (see the section).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Load;
use SC::Test qw(worker_ok status_of check within app show demo_module demo_conf balancer_member status_has
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
# balancer-manager's form: Drain on ($on 1) or off for $route's worker
sub bm_drain {
    my ($route, $on) = @_;
    my $ref = { Referer => 'http://localhost/balancer-manager' };
    my (undef, undef, $page) = $c->get($F, '/balancer-manager', timeout => 5, headers => $ref);
    my ($nonce) = ($page // '') =~ /nonce=([0-9A-Fa-f-]+)/;
    my $u = 'http://127.0.0.1:' . $c->member($route)->{http_port};
    my ($s) = $c->post($F, '/balancer-manager', "w_status_N=$on&b=members&w=" . url_escape($u)
                       . '&nonce=' . ($nonce // ''), timeout => 5, headers => $ref);
    return $s;
}
{
    my $stuck = through_front(undef);
    $stuck = through_front(undef) while ($stuck->{route} // '') ne 'node2';
    my ($id, $count) = ($stuck->{cookie}, $stuck->{counter});
    my (undef, undef, $html) = $c->get($F, '/cluster-manager', timeout => 5);
    my $nonce = front_page()->{Nonce} // 'none';
    ok(($html // '') =~ /<form[^>]*>(?:(?!<\/form>).)*name="action" value="drain"(?:(?!<\/form>).)*name="nonce" value="\Q$nonce\E"(?:(?!<\/form>).)*name="route" value="node2"/s,
       "B. the front's HTML page has a Drain button for node2 with the page's nonce");
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
    # replication is asynchronous: node1 has the session's last write first
    my $v = (SC::Test::session_on($c, 'node2', $id) || {})->{SessionVersion} // 'none';
    check(within(10, sub { ((SC::Test::session_on($c, 'node1', $id) || {})->{SessionVersion} // '') eq $v }),
          $c, "B. node1 holds the session at node2's version ($v)");
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
    # balancer-manager's own Drain: the cluster's passes leave it too
    is(bm_drain('node2', 1), 200, 'B. Drain set for node2 in balancer-manager');
    ok(status_has(bm_status('node2'), 'Drn'), '... node2 is Drn') or diag(bm_status('node2'));
    %r = new_routes(4);
    sleep 1;
    ok(status_has(bm_status('node2'), 'Drn') && !$r{node2},
       'B. ... and still Drn after 1 s and 4 new sessions, which all went to node1 ('
       . join(' ', %r) . ')') or diag(bm_status('node2'));
    is(bm_drain('node2', 0), 200, 'B. Drain cleared in balancer-manager');
    ok(!status_has(bm_status('node2'), 'Drn'), '... node2 is not Drn') or diag(bm_status('node2'));
    ($s) = front_act('drain', 'nosuchroute');
    is($s, 404, 'B. drain of a route no BalancerMember has: 404');
}

# A. stops under load -----------------------------------------------------------------
# 8 sessions made through the front, on both members; the first 4 send GETs,
# the others POSTs
my (@sess, %on);
for my $i (1 .. 8) {
    my $r = through_front(undef);
    check(($r->{status} // 0) == 200 && $r->{cookie}, $c, "A. session $i made through the front",
          "status " . ($r->{status} // 0) . ' ' . ($r->{err} // ''));
    push @sess, { name => "s$i", id => $r->{cookie}, method => $i <= 4 ? 'GET' : 'POST',
                  last => $r->{counter} };
    $on{ $r->{route} // '' }++;
}
ok($on{node1} && $on{node2}, 'A. sessions on both members (node1 ' . ($on{node1} // 0)
                             . ', node2 ' . ($on{node2} // 0) . ')');

# The load through the front for 3 s; `httpd -k $how` for node1 after 1 s.
sub stop_under_load {
    my ($how) = @_;
    check(within(20, sub { !grep { my $s = $_; grep { !SC::Test::session_on($c, $_, $s->{id}) } qw(node1 node2) } @sess }),
          $c, "A. $how: both members hold the 8 sessions");
    my $out = $c->base_dir . "/load-$how.tsv";
    my $h = $c->spawn(undef, { out => $out }, $^X, "-I$FindBin::Bin/../lib", '-MSC::Load',
                      '-e', 'SC::Load::main(@ARGV)', "addr=$front_addr", "port=$front_port",
                      'duration=3', 'interval=0.02', 'timeout=20',
                      map { "session=$_->{name}:$_->{id}:$_->{method}" } @sess);
    my ($pid0, $engine0) = ($c->member('node1')->{pid}, SC::Test::num(status_of($c, 'node1'), 'EnginePid'));
    sleep 1;
    my $t_stop = time;
    if ($how eq 'graceful') {
        # a changed <Cluster> block: the engine is replaced, httpd keeps
        # serving (README: why not one that turns synchronous replication on)
        $c->configure('node1', cluster => sub {
            SC::Cluster::static_block($_[0], $_[1], manager => { stateTransferTimeout => 30 }) });
        $c->graceful('node1', timeout => 20);
    }
    else {
        $c->ctl('node1', $how);
    }
    my $t_ctl = time - $t_stop;
    my ($rc, $tsv) = $c->finish($h, timeout => 40);
    is($rc, 0, "A. $how: the load client ran to its end");
    if ($how eq 'graceful') {
        my $engine1;
        ok($c->is_running('node1') && $c->member('node1')->{pid} == $pid0
           && within(20, sub { $engine1 = SC::Test::num(status_of($c, 'node1'), 'EnginePid');
                               $engine1 && $engine1 != $engine0 }),
           "A. $how: node1 restarted gracefully with the changed block: same httpd, a new engine ("
           . ($engine0 // '?') . ' -> ' . ($engine1 // '?') . ')');
    }
    else {
        ok($c->wait_for(sub { !$c->is_running('node1') }, timeout => 20),
           "A. $how: node1 stopped on httpd -k $how");
        $c->stop('node1');
        like($c->error_log('node1', since_start => 1),
             qr/SC1905: httpd is being stopped.*\n(?s:.*)SC1906: this member's leave announced: 2 of 2 member\(s\) took it in/,
             "A. $how: node1's engine told the others before httpd was signalled, and both took it in (SC1905, SC1906)");
    }
    my $recs = SC::Load::parse_tsv($tsv);
    my @bad = grep { ($_->{status} // 0) != 200 } @$recs;
    my %by;
    push @{ $by{ $_->{name} } }, $_ for @$recs;
    my ($max_lat, $max_pause) = (0, 0);
    my @lost;
    for my $s (@sess) {
        my $prev_end;
        for my $r (sort { $a->{seq} <=> $b->{seq} } @{ $by{ $s->{name} } || [] }) {
            $max_lat = $r->{lat} if $r->{lat} > $max_lat;
            $max_pause = $r->{t} - $prev_end if defined $prev_end && $r->{t} - $prev_end > $max_pause;
            $prev_end = $r->{t} + $r->{lat};
            next unless ($r->{status} // 0) == 200;
            if (!defined $r->{counter} || $r->{counter} != $s->{last} + 1) {
                push @lost, "$s->{name} ($s->{method}) seq $r->{seq}: counter "
                    . ($r->{counter} // 'none') . " after $s->{last} (route " . ($r->{route} // '?') . ')';
            }
            $s->{last} = $r->{counter} // $s->{last};
            $s->{id} = $r->{cookie} if $r->{cookie};     # re-bound: the id in use
        }
    }
    my %routes;
    $routes{ $_->{route} // '-' }++ for @$recs;
    my @posts = grep { $_->{name} =~ /^s[5-8]$/ } @$recs;
    note(sprintf('A. %s: %d requests (%d POST) in 3 s, httpd -k %s at +1 s (the command took %.0f ms); '
                 . 'served by %s; longest request %.0f ms, longest stall of a session %.0f ms',
                 $how, scalar @$recs, scalar @posts, $how, $t_ctl * 1000,
                 join(', ', map { "$_ $routes{$_}" } sort keys %routes), $max_lat * 1000,
                 ($max_lat > $max_pause ? $max_lat : $max_pause) * 1000));
    ok(@$recs > 40 && @posts > 20, "A. $how: the load ran (" . scalar(@$recs) . ' requests)');
    is(scalar @bad, 0, "A. $how: no request failed across the stop")
        or diag(join "\n", map { "$_->{name} seq $_->{seq} status $_->{status} "
                                 . ($_->{err} // '') } @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
    is(scalar @lost, 0, "A. $how: no session lost a write: every counter went up by one at each request")
        or diag(join "\n", @lost[0 .. ($#lost < 9 ? $#lost : 9)]);
}

# node1 started again; the sessions went to node2 at the stop: half of them
# back to node1 (node2 disabled on the front's page for one request each)
sub back_to_node1 {
    my ($after) = @_;
    $c->start('node1');
    check(within(30, sub { worker_ok(balancer_member(front_page(), 'node1')) }), $c,
          "A. node1 started again after $after and Ok on the front");
    is((front_act('disable', 'node2'))[0], 200, 'A. node2 disabled on the front\'s page');
    for my $s (@sess[0, 1, 4, 5]) {
        my $r = through_front($s->{id}, method => $s->{method});
        check(($r->{route} // '') eq 'node1' && ($r->{counter} // 0) == $s->{last} + 1, $c,
              "A. $s->{name} moved to node1 (counter one up)", join ' ', map { "$_=" . ($r->{$_} // '') } sort keys %$r);
        ($s->{id}, $s->{last}) = ($r->{cookie} // $s->{id}, $r->{counter});
    }
    is((front_act('enable', 'node2'))[0], 200, 'A. node2 enabled again');
}

stop_under_load('graceful-stop');
back_to_node1('graceful-stop');
stop_under_load('stop');
back_to_node1('stop');
stop_under_load('graceful');

# C. A change made on node1 before its new engine met node2 -----------------------------
# node2's engine frozen (SIGSTOP) while node1 restarts gracefully with another
# changed block: node1's new engine cannot meet node2 and stays starting; a
# request on node1 then changes a session (200).  node2's engine resumed (well
# within dropTime: node2 does not take itself for stopped, SC1421): node2 holds
# the change, and got it as such (SC2142 on node1), not by anti-entropy's
# repair (node2's AntiEntropyAsked unchanged).  Before, node1 sent it to nobody.
{
    check(within(20, sub { (status_of($c, 'node1')->{EngineState} // '') eq 'ready'
                           && (status_of($c, 'node2')->{EngineState} // '') eq 'ready' }),
          $c, 'C. node1 and node2 ready');
    my $r = app($c, 'node1', 'auto');
    my $id = $r->{cookie} // 'none';
    my $v0 = (SC::Test::session_on($c, 'node1', $id) || {})->{SessionVersion} // 'none';
    check(within(10, sub { ((SC::Test::session_on($c, 'node2', $id) || {})->{SessionVersion} // '') eq $v0 }),
          $c, "C. a session made on node1, held by node2 at its version ($v0)");
    my $s2 = status_of($c, 'node2');
    my ($engine2, $asked0) = (SC::Test::num($s2, 'EnginePid'), SC::Test::num($s2, 'AntiEntropyAsked'));
    my $engine0 = SC::Test::num(status_of($c, 'node1'), 'EnginePid');
    my ($log1, $log2) = (length $c->error_log('node1'), length $c->error_log('node2'));
    ok($engine2 && SC::Cluster::freeze_pids($engine2), "C. node2's engine (pid $engine2) frozen");
    my ($w, $state, $engine1);
    my $ok = eval {
        $c->configure('node1', cluster => sub {
            SC::Cluster::static_block($_[0], $_[1], manager => { stateTransferTimeout => 31 }) });
        $c->graceful('node1', timeout => 20);
        within(10, sub { $engine1 = SC::Test::num(status_of($c, 'node1'), 'EnginePid');
                         $engine1 && $engine1 != $engine0 });
        $w = app($c, 'node1', 'auto', $id);
        $state = status_of($c, 'node1')->{EngineState} // '';
        1;
    };
    kill 'CONT', $engine2 if $engine2;
    ok($ok && $engine1 && $engine1 != $engine0,
       "C. node1 restarted gracefully with a changed block: a new engine ($engine0 -> "
       . ($engine1 // '?') . ')') or diag($@);
    ok($w && $w->{status} == 200 && ($w->{counter} // 0) == ($r->{counter} // 0) + 1,
       'C. a change on node1 meanwhile: 200, counter one up') or diag($w ? show($w) : 'none');
    is($state, 'starting', "C. ... while node1's new engine had not met node2 (starting)");
    my $v1 = (SC::Test::session_on($c, 'node1', $id) || {})->{SessionVersion} // 'none';
    check(within(10, sub { ((SC::Test::session_on($c, 'node2', $id) || {})->{SessionVersion} // '') eq $v1 }),
          $c, "C. node2's engine resumed: node2 holds the change (version $v1)");
    unlike(SC::Test::log_since($c, 'node2', $log2), qr/SC1421:/,
           'C. node2 was frozen for less than dropTime (no SC1421)');
    like(SC::Test::log_since($c, 'node1', $log1), qr/SC2142: [1-9]\d* change\(s\) made here before this engine met/,
         'C. node1 kept the change until it met node2, then sent it (SC2142)');
    is(SC::Test::num(status_of($c, 'node2'), 'AntiEntropyAsked'), $asked0,
       "C. node2 got the change itself, not by anti-entropy's repair (AntiEntropyAsked $asked0)");
}

$c->teardown;
done_testing();
