#!perl
# The front balancer's states that balancer.t does not reach (issue 14, item 7):
# a front (mod_proxy_balancer + SessionClusterBalancer, static membership,
# dropTime 6000 on the front) with BalancerMembers route=node1..node3, where
# node2 and node3 are not started at first and a stand-in HTTP server of the
# test listens on each of their ports (it answers "Route: impostor-PORT" and
# logs every connection), so that a request the front sends there is seen.
#   A. Never heard: with node1 ready, the front's page shows node2's and
#      node3's BalancerMember in error (Err, not Ok, member=none, and
#      UnmatchedBalancerMember lines), /balancer-manager shows Err for both,
#      and 20 new sessions through the front all land on node1 while the
#      stand-ins took no connection.
#   B. Heard: node2 is started (its stand-in stopped first); polling only
#      /balancer-manager (no request through the front, no ?auto page of the
#      front, which would sync the workers itself), node2's worker leaves
#      Err and is Ok: the refresh without requests is the watchdog thread,
#      logged once as SC1330 by one of the front's children (not its
#      parent).  The front's page shows it Ok, member=ready, and new sessions
#      through the front reach node2.
#   C. Starting -> error: node1 is frozen (SIGSTOP) and node2 asked, on its
#      page, to redo its state transfer: it is starting until it gives up on
#      node1; the front's page showing node2 member=starting shows its worker
#      in Err, not Ok.  After SIGCONT node2 is ready and Ok again.
#   D. Restarting -> left alone: node2 gets a graceful restart with a changed
#      <Cluster> block whose Receiver port the test holds, so the old engine
#      announces a restart and the new one cannot start (SC1246 in node2's
#      log): the front shows node2 member=restarting with its worker Ok (not
#      Err), and a request through the front with a node2 session is
#      answered by node2 while the front still shows it restarting.
#   E. The never-started node3 is logged once by the front (SC1284, "stays in
#      error") and its stand-in never took a connection.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of check within app demo_module demo_conf balancer_member bm_line status_has
                page_action bm_row);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 150;
$SIG{ALRM} = sub { die "front_states.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);

my $c = SC::Cluster->new(
    members     => 3,
    # retry=300: far beyond every polling limit here, so that a worker back
    # in rotation was put back by the cluster, not by mod_proxy's retry timer
    front       => { name => 'front', retry => 300, connectiontimeout => 5, timeout => 10,
                     worker => 'disablereuse=On' },
    loglevel    => 'info',
    extra_conf  => $APP,
    member_opts => {
        # the front holds a restarting member for 2 x dropTime: 12 s for D
        front => { cluster => sub { SC::Cluster::static_block(@_, membership => { dropTime => 6000 }) } },
    },
);
my $F = $c->front;
my %url = map { $_ => "http://127.0.0.1:" . $c->member($_)->{http_port} } qw(node1 node2 node3);

SC::Test::dump_options(extra => SC::Test::front_extra($F));

# A stand-in HTTP server on a member's port: logs "PORT" per connection
# (before it answers), answers 200 "Route: impostor-PORT".
my $STANDIN = <<'EOP';
use strict; use IO::Socket::INET; $| = 1;
my ($port, $log) = @ARGV;
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 16,
                              ReuseAddr => 1, Proto => 'tcp') or die "listen $port: $!";
print "listening\n";
while (my $s = $l->accept) {
    open my $fh, '>>', $log or die; print $fh "$port\n"; close $fh;
    while (defined(my $line = <$s>)) { last if $line =~ /^\r?\n$/ }
    print $s "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
           . "Route: impostor-$port\n";
    close $s;
}
EOP
my $STANDIN_LOG = $c->base_dir . '/standin.log';
{ open my $fh, '>', $STANDIN_LOG or die "$STANDIN_LOG: $!"; }
my %standin;
for my $n (qw(node2 node3)) {
    my $port = $c->member($n)->{http_port};
    my $out = $c->base_dir . "/standin-$n.out";
    $standin{$n} = $c->spawn(undef, { out => $out }, $^X, '-e', $STANDIN, $port, $STANDIN_LOG);
    my $up = within(10, sub { -s $out && do { open my $f, '<', $out; local $/; <$f> =~ /listening/ } });
    ok($up, "the stand-in for $n listens on its port $port") or BAIL_OUT("no stand-in for $n");
}
sub standin_hits {
    open my $fh, '<', $STANDIN_LOG or return ();
    my %n;
    while (<$fh>) { chomp; $n{$_}++ }
    return %n;
}

sub worker_ok  { my ($w) = @_; $w && status_has($w->{status}, 'Ok') && !status_has($w->{status}, 'Err') }
sub worker_err { my ($w) = @_; $w && status_has($w->{status}, 'Err') && !status_has($w->{status}, 'Ok') }

# A. never heard ---------------------------------------------------------------------
$c->start('node1');
$c->start($F);
{
    my $p;
    my $ok = within(30, sub {
        $p = status_of($c, $F) or return 0;
        my $w = balancer_member($p, 'node1');
        return worker_ok($w) && ($w->{member} // '') eq 'ready';
    });
    check($ok, $c, 'A. the front shows node1 Ok, member=ready',
          join(' | ', map { bm_line($_) } @{ $p ? $p->{balancer_members} : [] }));
    for my $n (qw(node2 node3)) {
        my $w = balancer_member($p, $n);
        ok(worker_err($w), "A. never heard: the front's page shows $n in error (Err, not Ok)")
            or diag bm_line($w);
        is($w && $w->{member}, 'none', "A. ... and member=none for $n");
        ok((grep { $_->[0] eq 'balancer://members' && $_->[1] eq $n }
                 @{ $p ? $p->{unmatched_balancer_members} : [] }),
           "A. ... and UnmatchedBalancerMember: balancer://members $n");
        my $row = bm_row($c, $F, $url{$n});
        like($row // '', qr/\bErr\b/, "A. /balancer-manager shows $n in error") or diag($row // '(no row)');
    }
    my (%route, @bad);
    for (1 .. 20) {
        my $r = app($c, $F, 'auto');
        if ($r->{status} == 200) { $route{ $r->{route} // '?' }++ }
        else { push @bad, "status $r->{status}" . ($r->{error} ? " ($r->{error})" : '') }
    }
    is_deeply(\%route, { node1 => 20 }, 'A. 20 new sessions through the front: all answered by node1')
        or diag('answers by route: ' . join(' ', map { "$_=$route{$_}" } sort keys %route)
                . (@bad ? '; failed: ' . join(', ', @bad) : ''));
    my %hits = standin_hits();
    is(scalar(keys %hits), 0, 'A. the stand-ins on node2\'s and node3\'s ports took no connection')
        or diag(join(' ', map { "port $_: $hits{$_}" } sort keys %hits));
}

# B. heard: into rotation --------------------------------------------------------------
{
    kill 'TERM', $standin{node2}{pid};
    my ($rc) = $c->finish($standin{node2}, timeout => 10);
    ok(defined $rc, 'B. the stand-in for node2 is stopped');
    $c->start('node2');
    # only /balancer-manager: nothing else brings the bits up to date
    my $row;
    my $ok = within(30, sub {
        $row = bm_row($c, $F, $url{node2});
        return defined $row && $row =~ /\bOk\b/ && $row !~ /\bErr\b/;
    });
    check($ok, $c, 'B. without requests through the front, /balancer-manager shows node2 Ok (no Err)',
          "row: " . ($row // '(none)'));
    my $front_pid = $c->member($F)->{pid};
    my @wd = $c->error_log($F) =~ /SC1330: SessionClusterBalancer: the watchdog thread of this child \(pid (\d+)\)/g;
    # (once per child that held the singleton: a recycled child hands it on)
    ok(scalar @wd, 'B. the front logged SC1330: its watchdog thread brings the workers up to date')
        or diag(join("\n", grep { /SC1330/ } split /\n/, $c->error_log($F)));
    is(scalar(grep { $_ == $front_pid || $_ == 0 } @wd), 0,
       "B. ... from a child (pid @wd), not httpd's parent ($front_pid)") if @wd;
    my $w = balancer_member(status_of($c, $F), 'node2');
    ok(worker_ok($w) && ($w->{member} // '') eq 'ready', 'B. the front\'s page shows node2 Ok, member=ready')
        or diag bm_line($w);
    my (%route, $tries);
    for ($tries = 1; $tries <= 20; $tries++) {
        my $r = app($c, $F, 'auto');
        $route{ $r->{status} == 200 ? ($r->{route} // '?') : "status $r->{status}" }++;
        last if ($r->{route} // '') eq 'node2';
    }
    ok($route{node2}, "B. a new session through the front reaches node2 (after $tries)")
        or diag(join(' ', map { "$_=$route{$_}" } sort keys %route));
    is(scalar(grep { !/^node[12]$/ } keys %route), 0, 'B. ... every answer came from node1 or node2')
        or diag(join(' ', map { "$_=$route{$_}" } sort keys %route));
}

# C. starting -> error ----------------------------------------------------------------------
{
    my $p2 = status_of($c, 'node2');
    my $nonce = $p2 ? $p2->{Nonce} : '';
    $c->sigstop('node1');
    my ($s, undef, $b) = page_action($c, 'node2', action => 'transfer', nonce => $nonce, auto => 1);
    is($s, 200, 'C. node2 accepts the page action "transfer" (redo the state transfer)')
        or diag($b // '');
    my ($p, $w);
    my $seen = within(20, sub {
        $p = status_of($c, $F) or return 0;
        $w = balancer_member($p, 'node2');
        return $w && ($w->{member} // '') eq 'starting';
    });
    check($seen, $c, 'C. the front sees node2 member=starting (node1 frozen: its state transfer waits)',
          'node2 line: ' . bm_line($w));
    # the page syncs the workers before it reads the members: the member may
    # turn starting between the two, so the worker follows on a later page
    # (the watchdog's next pass, 200 ms): one with node2 still starting
    my $err = $seen && within(20, sub {
        $p = status_of($c, $F) or return 0;
        $w = balancer_member($p, 'node2');
        return $w && ($w->{member} // '') eq 'starting' && worker_err($w);
    });
    ok($err, 'C. ... and while it is starting, node2\'s worker is in error (Err, not Ok), on the same page')
        or diag bm_line($w) if $seen;
    $c->sigcont('node1');
    my $back = within(30, sub {
        $p = status_of($c, $F) or return 0;
        for my $n (qw(node1 node2)) {
            my $x = balancer_member($p, $n);
            return 0 unless worker_ok($x) && ($x->{member} // '') eq 'ready';
        }
        return 1;
    });
    check($back, $c, 'C. after SIGCONT node1 and node2 are Ok and ready on the front again',
          join(' | ', map { bm_line($_) } @{ $p ? $p->{balancer_members} : [] }));
}

# D. restarting -> left alone --------------------------------------------------------
{
    my $r0 = app($c, 'node2', 'auto');
    my $sid = $r0->{cookie};
    like($sid // '', qr/^[0-9A-Fa-f]{32}\.node2$/, 'D. a session made on node2');
    # a port the new engine cannot have (autoBind="1" tries only it)
    my $hold = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1,
                                     Proto => 'tcp') or die "hold a port: $!";
    my $held = $hold->sockport;
    my $old = $c->member('node2')->{cluster_port};
    my $block = SC::Cluster::static_block($c->member('node2'), [ map { $c->member($_) } $c->members ]);
    my $n = ($block =~ s/port="$old" autoBind="1"/port="$held" autoBind="1"/);
    is($n, 1, "D. node2's new block has its Receiver on port $held (held by the test)");
    $c->configure('node2', cluster => $block);
    $c->graceful('node2');
    my ($p, $w);
    my $seen = within(20, sub {
        $p = status_of($c, $F) or return 0;
        $w = balancer_member($p, 'node2');
        return $w && ($w->{member} // '') eq 'restarting';
    });
    check($seen, $c, 'D. the front sees node2 member=restarting after its graceful restart',
          'node2 line: ' . bm_line($w));
    ok(worker_ok($w), 'D. ... and on that same page node2\'s worker is left alone: Ok, not Err')
        or diag bm_line($w) if $seen;
    my $r = app($c, $F, 'read', $sid);
    is($r->{status}, 200, 'D. a request through the front with the node2 session: 200');
    is($r->{route}, 'node2', 'D. ... answered by node2 (httpd still serves)') or diag(SC::Test::show($r));
    is($r->{session}, $sid, 'D. ... with its session');
    my $w2 = balancer_member(status_of($c, $F), 'node2');
    is($w2 && $w2->{member}, 'restarting', 'D. ... while the front still shows node2 restarting')
        or diag bm_line($w2);
    # the new engine tries its port for 5 s before it gives up: held until then
    my $l2 = '';
    within(20, sub { $l2 = $c->error_log('node2'); $l2 =~ /SC1246/ });
    like($l2, qr/SC1204: Receiver cannot bind 127\.0\.0\.1, ports $held-$held/,
         "D. node2's new engine could not bind port $held (SC1204)");
    like($l2, qr/SC1246: the cluster engine could not start/, 'D. ... and stays out of the cluster (SC1246)');
    close $hold;
}

# E. the never-started node3 ----------------------------------------------------------------
{
    my @l;
    my $ok = within(30, sub {
        @l = grep { /SC1284/ && /route node3\b/ } split /\n/, $c->error_log($F);
        return scalar @l;
    });
    check($ok, $c, 'E. the front logs node3\'s BalancerMember as matching no member (SC1284)');
    is(scalar @l, 1, 'E. ... once') or diag(join("\n", @l));
    like($l[0] // '', qr/stays in error \(out of rotation\) until a member with that route is heard/,
         'E. ... saying it stays in error');
    my %hits = standin_hits();
    is($hits{ $c->member('node3')->{http_port} } // 0, 0, 'E. node3\'s stand-in never took a connection');
    my $w = balancer_member(status_of($c, $F), 'node3');
    ok(worker_err($w), 'E. node3 is still in error on the front\'s page') or diag bm_line($w);
}

kill 'TERM', $standin{node3}{pid};
$c->finish($standin{node3}, timeout => 10);
$c->teardown;
done_testing;
