#!perl
# A front httpd balancing three members with mod_proxy_balancer, tied to the
# cluster by SessionClusterBalancer (issue 5), on loopback.  The members run
# the demo application at /app (Session On, SessionCluster On) with
# JvmRouteBinderValve and channelSendOptions 6 (every change acknowledged by
# every member before the request returns); the front has BalancerMembers
# route=node1..node3 (retry=300, connectiontimeout=5, timeout=10), sticky on
# JSESSIONID|jsessionid, one more BalancerMember route=node9 at a closed port
# (status=+H, no cluster member has that route), and the same static
# membership as the members (it joins as an observer, `role=balancer`).
#   1. Startup: the front's page shows node1..node3 as `BalancerMember:` with
#      status Ok and member=ready; every member shows the front as
#      role=balancer and the other members as role=member member_state=ready.
#   2. Stickiness: 200 sessions through the front, 21 requests each: every
#      answer comes from the route in the id, the counter goes 1..21 without
#      a gap; every member gets some of the sessions.
#   3. Direct re-binding (no front): a node1 session requested on node3 gets
#      `Set-Cookie: JSESSIONID=<same 32 hex>.node3; path=/; HttpOnly`, the
#      valve's sessionIdAttribute (Tomcat's default name,
#      org.apache.catalina.ha.session.JvmRouteOrignalSessionID) carries the
#      old id, SessionsRebound grows by one; the old id again on node3 gets
#      the re-bound id but no second re-bind; the old id on node1 still finds
#      the session.
#   4. kill -9 of node2 under load: 30 sessions (10 per member) kept busy
#      through the front (SC_BALANCER_LOAD_SECONDS, default 6 s), node2
#      killed once every session has had 3 answers: the front shows node2's
#      worker in `Err` with member=dead (also on /balancer-manager); every
#      one of the 30 sessions is served (200) after the kill, its last answer
#      is a success and it reads back through the front with the counter of
#      its last answer; no session lost (no `Session: (new)`, no counter
#      going back or skipping beyond the failed requests, or beyond one
#      more for an answer the front's replay gave: X-Replayed, a GET node2
#      may have made before it died, made again); every request
#      started after the whole cluster knew (front Err, node1 and node3 see
#      node2 dead) succeeds; every node2 session re-bound exactly once (one
#      Set-Cookie, same base, new route, then it sticks), the others never;
#      SessionsRebound on node1+node3 grows by the number of node2 sessions;
#      no request waited for a timeout (none in the front's error_log or the
#      load client); no request failed at all (issue 20: no 503 for a member
#      that died with writes waiting for its ACK, no 502 for a request it
#      took).  The longest stall is noted.
#   5. node2 restarts: it receives the state, says ready, and the front puts
#      its worker back (Ok, member=ready) although retry=300 has not passed,
#      also in mod_proxy_balancer's own memory: /balancer-manager, polled
#      without any traffic through the front, shows it; new sessions
#      land on node2 again; a session invalidated through the front while
#      node2 was down is not resurrected on node2; node2 has every session
#      with its last counter.
#   6. Drain: POSTs to node3's /cluster-manager without the nonce, with a
#      wrong nonce (403) and a GET with the action (405) change nothing
#      (node3's engine published since and is ready, node1 and the front
#      have a later heartbeat of it and see it ready); the
#      POST with the page's nonce makes node3 `draining`, the front shows its
#      worker as `Drn` (member=draining; /balancer-manager without
#      traffic), new sessions go to node1/node2 only (node3 having been made
#      the byrequests favourite first, so that this means something) while a
#      node3 session still reaches node3; state=ready puts it back and the
#      next new sessions go to node3.
#   7. The BalancerMember without a cluster member (node9) shows as
#      `UnmatchedBalancerMember: balancer://members node9` (and member=none)
#      on the front's page, is logged once, and took no traffic.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Load;
use SC::Test qw(page status_of member_on check within app show valid_sid demo_module demo_conf
                balancer_member bm_line status_has page_action bm_row);
SC::Test::dump_options(tail => 30, cut => 300);

my $LOAD_S = $ENV{SC_BALANCER_LOAD_SECONDS} || 6;
my $LIMIT = 150 + $LOAD_S;
$SIG{ALRM} = sub { die "balancer.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $DEMO_SO = demo_module();
my $LIB = "$FindBin::Bin/../lib";
my $ORIG_ATTR = 'org.apache.catalina.ha.session.JvmRouteOrignalSessionID';

# ---------------------------------------------------------------------------
my $ALT_ATTR = 'org.apache.catalina.ha.session.JvmRouteOriginalSessionID';    # (a misspelling of it)
# the members start all their children at once: the front keeps up to 32
# pooled connections per member, and a single event child with 8 threads
# closes idle keep-alive connections under that, so that the front's next
# request on one of them fails with 502 "error reading status line" (a
# mod_proxy race, not the module's)
my $APP = "StartServers 4\nMinSpareThreads 32\nMaxSpareThreads 32\n"
        . demo_conf($DEMO_SO, location =>
                    "  Header always set X-Orig-Id \"%{$ORIG_ATTR}e\"\n"
                  . "  Header always set X-Orig-Id-Alt \"%{$ALT_ATTR}e\"\n");
my $CLOSED = SC::Cluster::free_port();    # nothing listens there
# the front's retry=: far beyond any polling limit below, so that a worker
# back in rotation was brought back by the cluster, never by the retry timer
my $RETRY = 300;
my %FRONT = (retry => $RETRY, connectiontimeout => 5, timeout => 10, worker => 'disablereuse=On',
             extra_members => [ "http://127.0.0.1:$CLOSED route=node9 status=+H" ]);
my $c = SC::Cluster->new(
    members    => 3,
    # disablereuse: a new connection per proxied request; a pooled connection
    # that a member closes as idle just when the front reuses it fails with
    # 502 "error reading status line" (mod_proxy's race, not this test's subject)
    front      => { name => 'front', %FRONT },
    # the front's answers after a replay say so (case 4): X-Replayed, the
    # route of the member that failed (SESSION_CLUSTER_REPLAYED)
    member_opts => { front => { extra_conf => sub {
        my $lib = $ENV{SC_LIBEXECDIR} || '/usr/lib/apache2/modules';
        SC::Cluster::front_conf($_[0], $_[1], %FRONT)
        . qq{<IfModule !mod_headers.c>\n    LoadModule headers_module "$lib/mod_headers.so"\n</IfModule>\n}
        . qq{<Location /app>\n    Header always set X-Replayed "%{SESSION_CLUSTER_REPLAYED}e" }
        . qq{env=SESSION_CLUSTER_REPLAYED\n</Location>\n} } } },
    loglevel   => 'info',
    modules    => [ 'headers' ],
    extra_conf => $APP,
    cluster    => sub {
        my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all, channelSendOptions => 6,
                                         jvm_route_binder => defined $m->{route});
    },
);
my @N = $c->routed;                       # node1 node2 node3
my $F = $c->front;
my $fm = $c->member($F);
my %url = map { $_ => "http://127.0.0.1:" . $c->member($_)->{http_port} } @N;

SC::Test::dump_options(extra => SC::Test::front_extra($F));

# The front's worker line for $route, from a fresh page.
sub worker { balancer_member(status_of($c, $F), $_[0]) }

sub rebound_total {
    my $sum = 0;
    for my $n (@_) {
        my $p = status_of($c, $n) or return undef;
        return undef unless defined $p->{SessionsRebound} && $p->{SessionsRebound} =~ /^\d+$/;
        $sum += $p->{SessionsRebound};
    }
    return $sum;
}

# { member => SessionsRebound } of the running members
sub rebound_each {
    return { map { my $p = status_of($c, $_); ($_ => $p ? $p->{SessionsRebound} : undef) }
             grep { $c->is_running($_) } @N };
}

sub delta_line {
    my ($a, $b) = @_;
    return join(' ', map { "$_+" . (defined $a->{$_} && defined $b->{$_} ? $b->{$_} - $a->{$_} : '?') }
                     sort keys %$b);
}

sub base_of { my ($id) = @_; return defined $id && $id =~ /^([0-9A-Fa-f]{32})\./ ? $1 : '' }
sub route_of { my ($id) = @_; return defined $id && $id =~ /\.([^.]+)$/ ? $1 : '' }

# New sessions through the front until each route in %$want has that many
# (mod_proxy's byrequests may favour one member for a long run after
# concurrent load: its lbstatus drifts), at most $max.
sub sessions_until {
    my ($want, $max) = @_;
    my (%s, @bad, %n);
    my $tries = 0;
    while ($tries < $max) {
        last unless grep { ($n{$_} // 0) < $want->{$_} } keys %$want;
        $tries++;
        my $r = app($c, $F, 'auto');
        if ($r->{status} == 200 && ($r->{session} // '') eq '(new)' && $r->{cookie}
            && valid_sid($r->{cookie}, $r->{route} // '-')) {
            $s{ $r->{cookie} } = $r->{route};
            $n{ $r->{route} }++;
        }
        else { push @bad, $r; last if @bad > 5 }
    }
    return (\%s, \@bad, $tries);
}

# mod_proxy_balancer's lbstatus ("Load" on /balancer-manager) of a worker URL.
sub lb_load {
    my ($u) = @_;
    my $row = bm_row($c, $F, $u) // return undef;
    return $row =~ /\s(-?\d+)\s(-?\d+)\s(-?\d+)\s\S+\s\S+\s*$/ ? $3 : undef;
}

# Polls /balancer-manager alone (no ?auto page of the front, which syncs the
# workers itself) until $cond->(row text) holds: the seconds since $t0, or undef.
sub bm_within {
    my ($timeout, $u, $cond, $t0) = @_;
    my $last;
    my $took = within($timeout, sub { $last = bm_row($c, $F, $u); defined $last && $cond->($last) }, $t0);
    return wantarray ? ($took, $last) : $took;
}

# Member $n's page once its engine has published after $t (epoch): the
# engine's loop, which takes a state asked for on the page before it
# publishes, has run since $t.  The page, or undef after 20 s.
sub page_published_after {
    my ($n, $t) = @_;
    my $p;
    within(20, sub {
        my $t_req = time;
        $p = status_of($c, $n) or return 0;
        my $ago = $p->{EnginePublishedMsAgo} // '';
        return $ago =~ /^\d+$/ && $t_req - $ago / 1000 > $t;
    }) // return undef;
    return $p;
}

# $on's Member line for $route once it holds a heartbeat that $route sent
# when its engine had been up more than $uptime_ms (later than the page that
# showed that uptime).  The line, or undef after 20 s.
sub heartbeat_after {
    my ($on, $route, $uptime_ms) = @_;
    my $m;
    within(20, sub {
        $m = member_on($c, $on, $route);
        return $m && ($m->{alive_ms} // '') =~ /^\d+$/ && $m->{alive_ms} > $uptime_ms;
    }) // return undef;
    return $m;
}

sub count_routes {
    my ($s) = @_;
    my %n = map { $_ => 0 } @N;
    $n{$_}++ for values %$s;
    return \%n;
}

sub fmt_counts { my ($h) = @_; join(' ', map { "$_=" . ($h->{$_} // 0) } sort keys %$h) }

my $t_start = time;

# 1. startup ------------------------------------------------------------------
$c->start_all(timeout => 15);
{
    my $p;
    my $took = within(20, sub {
        $p = status_of($c, $F) or return 0;
        for my $n (@N) {
            my $w = balancer_member($p, $n) or return 0;
            return 0 unless status_has($w->{status}, 'Ok') && !status_has($w->{status}, 'Err')
                && !status_has($w->{status}, 'Drn') && ($w->{member} // '') eq 'ready';
        }
        return 1;
    });
    check(defined $took, $c, '1. the front shows node1..node3 as BalancerMember status Ok member=ready',
          'front lines: ' . join(' | ', map { bm_line($_) } @{ $p ? $p->{balancer_members} : [] }));
    note(sprintf '1. front shows all workers Ok/ready %.2fs after start_all returned', $took // -1);
    for my $n (@N) {
        my $w = balancer_member($p, $n);
        is($w && $w->{balancer}, 'balancer://members', "1. ${n}'s line names balancer://members");
        is($w && $w->{url}, $url{$n}, "1. ${n}'s line has its url $url{$n}");
    }
    my @bm = @{ $p ? $p->{balancer_members} : [] };
    is(scalar @bm, 4, '1. the front lists 4 BalancerMember lines (node1..node3, node9)')
        or diag(join("\n", map { bm_line($_) } @bm));
    is($p && $p->{Route}, '', '1. the front has no route');

    my $front_addr = "$fm->{addr}:$fm->{cluster_port}";
    for my $n (@N) {
        my $q;
        my $ok = within(20, sub {
            $q = status_of($c, $n) or return 0;
            my ($fr) = grep { ($_->{role} // '') eq 'balancer' } @{ $q->{members} };
            return 0 unless $fr;
            for my $o (grep { $_ ne $n } @N) {
                my ($m) = grep { ($_->{route} // '') eq $o } @{ $q->{members} };
                return 0 unless $m && ($m->{role} // '') eq 'member'
                    && ($m->{member_state} // '') eq 'ready';
            }
            return 1;
        });
        my ($fr) = grep { ($_->{role} // '') eq 'balancer' } @{ $q ? $q->{members} : [] };
        check(defined $ok, $c, "1. $n shows the front as role=balancer and the others as role=member member_state=ready",
              join("\n", map { my $m = $_; join(' ', map { "$_=" . ($m->{$_} // '?') } sort keys %$m) }
                         @{ $q ? $q->{members} : [] }));
        like($fr ? $fr->{addr} : '', qr/^\Q$front_addr\E$/, "1. $n: the balancer is the front ($front_addr)");
        note("1. $n sees the front as: " . join(' ', map { "$_=" . ($fr->{$_} // '?') } sort keys %$fr)) if $fr;
    }
}

# 2. stickiness -----------------------------------------------------------------
{
    my $K = 200;
    my $t0 = time;
    my $recs = SC::Load::run(addr => $fm->{addr}, port => $fm->{http_port}, timeout => 10,
                             sessions => [ map { { name => "s$_", requests => 21 } } 1 .. $K ],
                             concurrency => 20, duration => 60);
    my $took = time - $t0;
    my %by;
    push @{ $by{ $_->{name} } }, $_ for sort { $a->{seq} <=> $b->{seq} } @$recs;
    my (%route_of, @bad);
    for my $name (map { "s$_" } 1 .. $K) {
        my $rs = $by{$name} || [];
        my $first = $rs->[0];
        my $why;
        if (@$rs != 21) { $why = scalar(@$rs) . ' answers, not 21' }
        elsif ($first->{status} != 200 || ($first->{session} // '') ne '(new)'
               || ($first->{counter} // '') ne '1' || !valid_sid($first->{cookie}, $first->{route} // '-')) {
            $why = 'first answer: ' . SC::Load::to_tsv($first);
        }
        else {
            my $id = $first->{cookie};
            my $route = $first->{route};
            for my $r (@$rs[1 .. 20]) {
                if ($r->{status} != 200 || ($r->{route} // '') ne $route || ($r->{session} // '') ne $id
                    || ($r->{counter} // '') ne $r->{seq} || defined $r->{cookie}) {
                    $why = "answer $r->{seq}: " . SC::Load::to_tsv($r);
                    last;
                }
            }
            $route_of{$name} = $route unless $why;
        }
        push @bad, "$name: $why" if $why;
    }
    ok(!@bad, "2. $K sessions x 21 requests through the front: every answer from the id's route, counter 1..21")
        or diag(scalar(@bad) . " bad, first ones:\n" . join("\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)]));
    my %n = map { $_ => 0 } @N;
    $n{$_}++ for values %route_of;
    note(sprintf '2. %d requests in %.2fs; sessions per member: %s', scalar @$recs, $took, fmt_counts(\%n));
    for my $m (@N) {
        cmp_ok($n{$m}, '>=', $K / 10, "2. $m got some of the sessions ($n{$m} of $K)");
    }
}

# 3. re-binding, directly on the members -------------------------------------------
{
    my $r0 = app($c, 'node1', 'auto');
    my $S = $r0->{cookie};
    check(valid_sid($S, 'node1'), $c, '3. node1 creates a session', show($r0));
    my $base = base_of($S);
    my $before3 = rebound_total('node3');
    my $reb_before = rebound_each();
    my $r1 = app($c, 'node3', 'auto', $S);
    my $sc = $r1->{headers}{'set-cookie'} // '';
    check($r1->{status} == 200 && ($r1->{counter} // '') eq '2' && ($r1->{route} // '') eq 'node3', $c,
          '3. node3 serves the node1 session (counter 2)', show($r1));
    like($sc, qr/^JSESSIONID=\Q$base\E\.node3;\s*path=\/;\s*HttpOnly$/i,
         "3. node3 re-binds it: Set-Cookie: JSESSIONID=$base.node3; path=/; HttpOnly");
    is($r1->{headers}{'x-orig-id'}, $S, "3. the request got the old id in $ORIG_ATTR (Tomcat's default name)")
        or diag("the same under $ALT_ATTR: " . ($r1->{headers}{'x-orig-id-alt'} // '(none)'));
    my $after3 = rebound_total('node3');
    is(defined $before3 && defined $after3 ? $after3 - $before3 : undef, 1,
       '3. node3 counts one re-bind (SessionsRebound)');
    like($c->error_log('node3'), qr/\Q$S\E.*\Q$base\E\.node3|\Q$base\E\.node3.*\Q$S\E/,
         '3. node3 logs the re-bind with both ids');
    my $reb_after = rebound_each();
    my @others = grep { $_ ne 'node3' && ($reb_after->{$_} // -1) != ($reb_before->{$_} // -2) } @N;
    ok(!@others, '3. the other members do not count node3\'s re-bind as theirs (SessionsRebound unchanged)')
        or diag('SessionsRebound deltas: ' . delta_line($reb_before, $reb_after));

    my $r2 = app($c, 'node3', 'auto', $S);
    check(($r2->{counter} // '') eq '3' && ($r2->{cookie} // '') eq "$base.node3", $c,
          '3. the old id again on node3: the session (counter 3) and the re-bound id in Set-Cookie',
          show($r2));
    is(rebound_total('node3'), $after3, '3. ... but no second re-bind');
    my $r3 = app($c, 'node1', 'auto', $S);
    check(($r3->{counter} // '') eq '4' && ($r3->{session} // '') ne '(new)', $c,
          '3. the old id on node1 still finds the session (counter 4)', show($r3));
    my $r4 = app($c, 'node3', 'auto', "$base.node3");
    check(($r4->{counter} // '') eq '5' && !$r4->{cookie}, $c,
          '3. the re-bound id on node3: counter 5, no Set-Cookie', show($r4));
    my $r5 = app($c, 'node2', 'read', "$base.node3");
    is($r5->{counter}, '5', '3. node2 has the re-bound session (replicated)') or diag show($r5);
}

# 4. kill -9 of node2 under load ------------------------------------------------------------
my %load;           # id at start => { route, cur (id now), name }
my $invalidated;    # a session invalidated through the front while node2 is down
{
    # a session node2 holds before the kill, invalidated while it is down
    my $rx = app($c, 'node1', 'auto');
    $invalidated = $rx->{cookie};
    my $rx2 = app($c, 'node2', 'read', $invalidated);
    check(valid_sid($invalidated, 'node1') && ($rx2->{counter} // '') eq '1', $c,
          '4. a session made on node1 is on node2 too', show($rx), show($rx2));

    # 10 sessions made on each member (through the front, byrequests may
    # favour one member for hundreds of new sessions: it counts the sticky
    # requests of step 2 too); the front keeps them there by their routes
    my (%s, @bad);
    for my $n (@N) {
        for (1 .. 10) {
            my $r = app($c, $n, 'auto');
            if (valid_sid($r->{cookie}, $n)) { $s{ $r->{cookie} } = $n } else { push @bad, $r }
        }
    }
    my $s = \%s;
    ok(!@bad, '4. 10 load sessions made on each member') or diag(show($bad[0]));
    is(scalar keys %s, 30, '4. 30 distinct load sessions');
    my $i = 0;
    for my $id (sort keys %$s) {
        $load{$id} = { route => $s->{$id}, name => 'L' . ++$i };
    }
    my %by_name = map { $load{$_}{name} => $_ } keys %load;
    my $reb0 = rebound_total('node1', 'node3');
    my $reb0_each = rebound_each();

    my $t0 = time;
    my $h = $c->spawn(undef, $^X, "-I$LIB", '-MSC::Load', '-e', 'exit SC::Load::main(@ARGV)',
                      "addr=$fm->{addr}", "port=$fm->{http_port}", "duration=$LOAD_S",
                      'timeout=15', 'interval=0.05',
                      map { "session=$load{$_}{name}:$_" } sort keys %load);
    # node2 dies once the load is under way on every session (3 answers each)
    my %answered;
    my $warm = within(20, sub {
        my $text = '';
        if (open my $fh, '<', $h->{out}) { local $/; $text = <$fh> // '' }
        %answered = ();
        $answered{ $_->{name} }++ for grep { $_->{status} == 200 } @{ SC::Load::parse_tsv($text) };
        return !grep { ($answered{ $load{$_}{name} } // 0) < 3 } keys %load;
    });
    check(defined $warm, $c, '4. the load is under way: every session had 3 answers before the kill',
          join(' ', map { "$load{$_}{name}=" . ($answered{ $load{$_}{name} } // 0) } sort keys %load));
    note(sprintf '4. node2 killed %.2fs into the load', time - $t0);
    my $t_kill = time;
    $c->kill9('node2');
    my $t_killed = time;
    # the front's verdict on node2's worker (a polling limit, not a budget)
    my ($w, $t_err);
    my $took = within(20, sub { $w = worker('node2'); $w && status_has($w->{status}, 'Err') }, $t_kill);
    check(defined $took, $c, '4. the front shows node2\'s worker in Err after the kill', 'node2 line: ' . bm_line($w));
    note(sprintf '4. the front showed node2\'s worker in Err %s after the kill',
         defined $took ? sprintf('%.2fs', $took) : 'not within 20 s');
    my $took_m = within(20, sub { $w = worker('node2'); $w && ($w->{member} // '') =~ /^(?:dead|left|suspect)$/ },
                        $t_kill);
    check(defined $took_m, $c, '4. ... and member=dead (or suspect/left): the cluster\'s verdict',
          'node2 line: ' . bm_line($w));
    my $row = bm_row($c, $F, $url{node2});
    like($row // '', qr/\bErr\b/, '4. /balancer-manager shows node2\'s worker in Err too')
        or diag('row: ' . ($row // '(none)'));
    # from when the whole cluster knows: the front (Err) and both survivors
    # (node2 dead or left on their pages); every request started later must
    # succeed: nothing is left that could make it fail
    my %seen2;
    my $known = within(20, sub {
        for my $n (qw(node1 node3)) {
            my $m = member_on($c, $n, 'node2');
            $seen2{$n} = $m ? "$m->{state} \"" . ($m->{verdict} // '') . '"' : 'absent';
            return 0 unless $m && $m->{state} =~ /^(?:dead|left)$/;
        }
        return 1;
    }, $t_kill);
    my $t_known = time;
    check(defined $known, $c, '4. node1 and node3 see node2 dead (or left)',
          join(', ', map { "$_: node2 $seen2{$_}" } sort keys %seen2));
    my $load_running = waitpid($h->{pid}, POSIX::WNOHANG()) == 0;
    ok($load_running, '4. the load was still running when the whole cluster knew of the kill');
    my ($rc, $out) = $c->finish($h, timeout => $LOAD_S + 30);
    is($rc, 0, '4. the load client finished') or diag(substr($out, -2000));
    my $recs = SC::Load::parse_tsv($out);
    my %by;
    push @{ $by{ $_->{name} } }, $_ for sort { $a->{t} <=> $b->{t} } @$recs;

    my ($failed, $lost, $backwards, $maxlat, $maxlat_rec, $stall) = (0, 0, 0, 0, undef, 0);
    my @failed_recs;
    my (@lost, @back, @rebind_bad, @sticky_bad, @unserved, @last_bad, @late_failed, @err_cookies,
        @twice);
    my ($n2, $n_served, $n_late) = (0, 0, 0);
    for my $id (sort keys %load) {
        my $L = $load{$id};
        my $rs = $by{ $L->{name} } || [];
        my $cur = $id;
        my $exp = 1;          # last counter seen
        my $pending = 0;      # failed requests since (each may have counted)
        my @cookies;
        my $last_ok_end;
        my $served_after_kill = 0;
        for my $r (@$rs) {
            my $end = $r->{t} + $r->{lat};
            if ($r->{t} >= $t_kill && $r->{lat} > $maxlat) { $maxlat = $r->{lat}; $maxlat_rec = $r }
            if ($r->{t} >= $t_known) {
                $n_late++;
                push @late_failed, "$L->{name}: " . SC::Load::to_tsv($r) if $r->{status} != 200;
            }
            if ($r->{status} != 200) {
                $failed++;
                push @failed_recs, "$L->{name}: " . SC::Load::to_tsv($r);
                $pending++;
                # a re-bind answered with an error (a synchronous write that
                # node2, not yet known dead, did not acknowledge: 503) still
                # names the new id, and the client follows it as a browser does
                if ($r->{cookie}) {
                    push @err_cookies, "$L->{name}: " . SC::Load::to_tsv($r);
                    push @cookies, $r;
                    $cur = $r->{cookie};
                }
                next;
            }
            if ($r->{t} >= $t_killed) {
                $stall = $end - $last_ok_end if defined $last_ok_end && $end - $last_ok_end > $stall;
                $served_after_kill++;
            }
            $last_ok_end = $end;
            my $cn = $r->{counter} // -1;
            if (($r->{session} // '') eq '(new)' || base_of($r->{session}) ne base_of($id)) {
                $lost++;
                push @lost, "$L->{name} ($id): new session: " . SC::Load::to_tsv($r);
            }
            elsif ($cn <= $exp) {
                $backwards++;
                push @back, "$L->{name} ($id): counter $cn after $exp: " . SC::Load::to_tsv($r);
            }
            elsif ($cn > $exp + 1 + $pending + ($r->{replayed} ? 1 : 0)) {
                $lost++;
                push @lost, "$L->{name} ($id): counter $cn after $exp with $pending failed: "
                          . SC::Load::to_tsv($r);
            }
            elsif ($cn > $exp + 1 + $pending) {
                # a GET the front sent again after node2 failed to answer it:
                # node2 may have made (and synchronously replicated) its change
                # before it died, and the replay makes it again: a GET that
                # changes state is applied twice then, nothing is lost
                push @twice, "$L->{name} ($id): counter $cn after $exp, answered after a "
                           . "replay from $r->{replayed}: " . SC::Load::to_tsv($r);
            }
            $exp = $cn if $cn =~ /^\d+$/ && $cn > $exp;
            $pending = 0;
            if ($r->{cookie}) {
                push @cookies, $r;
                $cur = $r->{cookie};
            }
            elsif (($r->{route} // '') ne route_of($cur)) {
                push @sticky_bad, "$L->{name}: answered by " . ($r->{route} // '?') . " for $cur: "
                                . SC::Load::to_tsv($r);
            }
        }
        if ($L->{route} eq 'node2') {
            $n2++;
            my $c1 = $cookies[0];
            if (@cookies != 1) {
                push @rebind_bad, "$L->{name} ($id, node2): " . scalar(@cookies) . " Set-Cookies: "
                                . join(' ', map { $_->{cookie} } @cookies);
            }
            elsif (base_of($c1->{cookie}) ne base_of($id) || route_of($c1->{cookie}) !~ /^node[13]$/
                   || ($c1->{status} == 200 && ($c1->{route} // '') ne route_of($c1->{cookie}))) {
                push @rebind_bad, "$L->{name} ($id, node2): re-bound to $c1->{cookie} by "
                                . ($c1->{route} // '?');
            }
        }
        elsif (@cookies) {
            push @rebind_bad, "$L->{name} ($id, $L->{route}): Set-Cookie " . $cookies[0]{cookie};
        }
        # served after the kill, and its last answer a success (a session
        # answered once and then only 503s is not served)
        if ($served_after_kill) { $n_served++ }
        else { push @unserved, "$L->{name} ($id, $L->{route}): " . scalar(@$rs) . ' answers, none 200 after the kill' }
        push @last_bad, "$L->{name} ($id, $L->{route}): last answer " . ($rs->[-1] ? SC::Load::to_tsv($rs->[-1]) : '(none)')
            unless $rs->[-1] && $rs->[-1]{status} == 200;
        $L->{cur} = $cur;
        $L->{counter} = $exp;
    }
    my $total = @$recs;
    note(sprintf('4. load: %d requests over %.1fs, %d failed (non-200), longest request after the kill '
                 . '%.3fs, longest stall of a session %.3fs; %d sessions were on node2',
                 $total, $LOAD_S, $failed, $maxlat, $stall, $n2));
    note('4. slowest request: ' . SC::Load::to_tsv($maxlat_rec)) if $maxlat_rec;
    note('4. error answers that re-bound a session: ' . join('', @err_cookies)) if @err_cookies;
    note('4. answers after a replay (X-Replayed): ' . scalar(grep { $_->{replayed} } @$recs));
    note("4. changes applied twice (a replayed GET node2 had made before it died): \n"
         . join("\n", @twice)) if @twice;
    cmp_ok($total, '>=', 30 * 5, '4. the load client made requests');
    # a write waiting for node2's ACK when it died is released once its
    # connection is refused (no 503), and a request node2 took is replayed
    is($failed, 0, '4. no request failed across the kill (synchronous replication)')
        or diag(join('', @failed_recs[0 .. ($#failed_recs < 9 ? $#failed_recs : 9)]));
    is($lost, 0, '4. no session lost (sync replication)') or diag(join("\n", @lost[0 .. ($#lost < 9 ? $#lost : 9)]));
    is($backwards, 0, '4. no counter went backwards') or diag(join("\n", @back[0 .. ($#back < 9 ? $#back : 9)]));
    ok(!@rebind_bad, "4. every node2 session re-bound exactly once to node1/node3, the others never")
        or diag(join("\n", @rebind_bad[0 .. ($#rebind_bad < 9 ? $#rebind_bad : 9)]));
    ok(!@sticky_bad, '4. every answer came from the route of the id sent (re-bound sessions stick)')
        or diag(join("\n", @sticky_bad[0 .. ($#sticky_bad < 9 ? $#sticky_bad : 9)]));
    my $n_made = keys %load;
    is($n_served, $n_made, "4. every one of the $n_made sessions made before the kill was served (200) after it")
        or diag(join("\n", @unserved[0 .. ($#unserved < 9 ? $#unserved : 9)]));
    ok(!@last_bad, '4. the last answer of every load session was a success')
        or diag(scalar(@last_bad) . " not:\n" . join("\n", @last_bad[0 .. ($#last_bad < 9 ? $#last_bad : 9)]));
    cmp_ok($n_late, '>=', $n_made, '4. requests started after the whole cluster knew of the kill'
           . " ($n_late)");
    ok(!@late_failed, '4. every one of them succeeded')
        or diag(scalar(@late_failed) . " failed:\n" . join('', @late_failed[0 .. ($#late_failed < 9 ? $#late_failed : 9)]));
    # each session now holds the counter of its last answer, through the front
    # on the member of its (re-bound) id
    my (@final_bad, $n_final);
    for my $id (sort keys %load) {
        my $L = $load{$id};
        my $r = app($c, $F, 'read', $L->{cur});
        if ($r->{status} == 200 && ($r->{counter} // '') eq $L->{counter}
            && ($r->{session} // '') eq $L->{cur} && ($r->{route} // '') eq route_of($L->{cur})) { $n_final++ }
        else { push @final_bad, "$L->{name} ($L->{cur}): want counter $L->{counter}, got " . show($r) }
    }
    is($n_final // 0, $n_made, "4. all $n_made sessions read back through the front with the counter of "
       . 'their last answer, on the route of their id')
        or diag(join("\n", @final_bad[0 .. ($#final_bad < 4 ? $#final_bad : 4)]));
    # no connect-timeout stall: the cause, not the figure: the front never
    # timed out connecting to or reading from node2 (it knew it dead at once)
    my @tmo = grep { /\[proxy/ && /\((?:110|70007)\)|timed out|timeout specified/i } split /\n/, $c->error_log($F);
    my @tmo_rec = grep { ($_->{err} // '') =~ /timeout/ || $_->{status} == 504 } @$recs;
    ok(!@tmo && !@tmo_rec, '4. no request waited for a timeout (no timeout in the front\'s error_log, '
       . 'none in the load client)')
        or diag(join("\n", @tmo[0 .. ($#tmo < 4 ? $#tmo : 4)], map { SC::Load::to_tsv($_) } @tmo_rec[0 .. ($#tmo_rec < 4 ? $#tmo_rec : 4)]));
    my $reb1 = rebound_total('node1', 'node3');
    is(defined $reb0 && defined $reb1 ? $reb1 - $reb0 : undef, $n2,
       "4. SessionsRebound on node1+node3 grew by the $n2 node2 sessions")
        or diag('SessionsRebound deltas: ' . delta_line($reb0_each, rebound_each()));

    # the node1 session made before the kill, invalidated while node2 is down
    my $r = app($c, $F, 'invalidate=1', $invalidated);
    check($r->{status} == 200 && ($r->{invalidated} // '') eq 'yes' && ($r->{route} // '') eq 'node1', $c,
          '4. a session invalidated through the front (on node1) while node2 is down', show($r));
}

# 5. node2 restarts ----------------------------------------------------------------------------
{
    my $t0 = time;
    $c->restart('node2', timeout => 15);
    my ($p, $t_ready);
    within(15, sub {
        $p = status_of($c, 'node2');
        return $p && ($p->{EngineState} // '') eq 'ready';
    }, $t0);
    $t_ready = time;
    check($p && ($p->{EngineState} // '') eq 'ready', $c, '5. restarted node2 reports ready',
          SC::Test::sess_line($p));
    note(sprintf '5. node2 ready %.2fs after the restart began', $t_ready - $t0);
    cmp_ok($p ? $p->{LastTransferSessions} // 0 : 0, '>=', 1, '5. node2 received sessions in its state transfer')
        or diag(SC::Test::sess_line($p));
    # without traffic through the front and without its page (which brings
    # the workers up to date itself): what mod_proxy_balancer's own memory says
    # (20 s of polling at most, far from retry=$RETRY: only the cluster's
    # "ready" can have brought the worker back)
    my ($took_bm, $row) = bm_within(20, $url{node2}, sub { $_[0] !~ /\bErr\b/ && $_[0] =~ /\bOk\b/ },
                                    $t_ready);
    check(defined $took_bm, $c,
          "5. /balancer-manager shows node2's worker back (Ok, no Err) without traffic, before retry=$RETRY",
          'row: ' . ($row // '(none)'));
    note(sprintf '5. /balancer-manager showed node2 back %s after ready',
         defined $took_bm ? sprintf('%.2fs', $took_bm) : '(never)');
    my $w;
    my $t_ok = within(20, sub {
        $w = worker('node2');
        return $w && status_has($w->{status}, 'Ok') && !status_has($w->{status}, 'Err')
            && ($w->{member} // '') eq 'ready';
    }, $t_ready);
    check(defined $t_ok, $c, "5. the front's page shows node2's worker Ok, member=ready (retry=$RETRY)",
          'node2 line: ' . bm_line($w));

    my ($s, $bad, $tries) = sessions_until({ node2 => 3 }, 1000);
    ok(!@$bad, '5. new sessions through the front') or diag(show($bad->[0]));
    my $cnt = count_routes($s);
    note("5. new sessions per member: " . fmt_counts($cnt) . " ($tries made)");
    cmp_ok($cnt->{node2}, '>=', 3, '5. new sessions land on node2 again');

    # the invalidated session stays gone on node2
    my $r = app($c, 'node2', 'auto', $invalidated);
    check(($r->{session} // '') eq '(new)' && ($r->{cookie} // $invalidated) ne $invalidated
          && ($r->{counter} // '') eq '1', $c,
          '5. the session invalidated while node2 was down is not resurrected on node2', show($r));
    # the load sessions are all on node2 too
    my @missing;
    for my $id (grep { $load{$_}{cur} } sort keys %load) {
        my $r = app($c, 'node2', 'read', $load{$id}{cur});
        push @missing, "$load{$id}{cur}: want counter " . ($load{$id}{counter} // '?') . ', got ' . show($r)
            unless ($r->{counter} // '') eq ($load{$id}{counter} // '');
    }
    is(scalar(keys %load) - @missing, 30, '5. node2 has all 30 load sessions with their last counters')
        or diag(scalar(@missing) . " not:\n" . join("\n", @missing[0 .. ($#missing < 2 ? $#missing : 2)]));
}

# 6. drain ---------------------------------------------------------------------------------------
{
    my $p = status_of($c, 'node3');
    my $nonce = $p ? $p->{Nonce} : undef;
    like($nonce // '', qr/^[0-9a-f]{16,}$/i, '6. node3\'s page shows a Nonce');
    my ($s1) = page_action($c, 'node3', action => 'state', state => 'draining');
    is($s1, 403, '6. POST state=draining without the nonce: 403');
    my $wrong = $nonce // '0';
    $wrong =~ tr/0-9a-f/1-9a-f0/;
    my ($s2) = page_action($c, 'node3', action => 'state', state => 'draining', nonce => $wrong);
    is($s2, 403, '6. ... with a wrong nonce: 403');
    my ($s3) = $c->get('node3', "/cluster-manager?action=state&state=draining&nonce=" . ($nonce // ''));
    is($s3, 405, '6. GET with the action (and the right nonce): 405');
    my $t_refused = time;
    # not "nothing happened within a while": node3's engine has taken the
    # page's requested state since (it does before each publish), and node1
    # and the front have a heartbeat node3 sent after that
    my $p3 = page_published_after('node3', $t_refused);
    check($p3, $c, '6. node3\'s engine published after the refused requests');
    is($p3 && $p3->{EngineState}, 'ready', '6. ... node3 is still ready');
    my $up3 = $p3 ? $p3->{EngineUptimeMs} // 0 : 0;
    my $m1 = heartbeat_after('node1', 'node3', $up3);
    ok($m1, '6. node1 has a later heartbeat of node3') or diag explain member_on($c, 'node1', 'node3');
    is($m1 && $m1->{member_state}, 'ready', '6. ... and node1 sees it ready');
    my $mf = heartbeat_after($F, 'node3', $up3);
    ok($mf, '6. the front has a later heartbeat of node3') or diag explain member_on($c, $F, 'node3');
    my $w = worker('node3');
    ok($w && !status_has($w->{status}, 'Drn') && ($w->{member} // '') eq 'ready',
       '6. ... and the front does not drain it (member=ready)') or diag bm_line($w);
    unlike($c->error_log('node3'), qr/\bSC1282\b/, '6. node3 logged no change of state (SC1282)');

    # byrequests counts sticky requests too (every usable worker is credited,
    # the chosen one debited): after the failover node3 is far behind, and new
    # sessions would not go to it, drained or not.  Sticky requests to node1
    # and node2 until node3 leads by ~30 elections, so that the new sessions
    # below would go to node3 if it were not drained.
    my %id = map { $_ => app($c, $_, 'auto')->{cookie} } @N;
    my ($gap, $rounds) = (undef, 0);
    while ($rounds++ < 6) {
        my %l = map { $_ => lb_load($url{$_}) } qw(node1 node2 node3);
        last if grep { !defined } values %l;
        $gap = ($l{node1} > $l{node2} ? $l{node1} : $l{node2}) - $l{node3};
        last if $gap < -3000;
        my $k = int(($gap + 3000) / 400) + 10;
        SC::Load::run(addr => $fm->{addr}, port => $fm->{http_port}, timeout => 10, concurrency => 2,
                      sessions => [ { name => 'p1', id => $id{node1}, requests => $k },
                                    { name => 'p2', id => $id{node2}, requests => $k } ], duration => 30);
    }
    note(sprintf '6. node3 leads the byrequests election by %s (lbstatus) before the drain',
         defined $gap ? -$gap : '?');
    ok(defined $gap && $gap < -3000, '6. node3 would be elected for new sessions (lbstatus leads by > 3000)');

    my ($s4, undef, $b4) = page_action($c, 'node3', action => 'state', state => 'draining', nonce => $nonce);
    ok($s4 >= 200 && $s4 < 400, "6. POST state=draining with the nonce accepted ($s4)") or diag($b4);
    my $q;
    my $took = within(20, sub { $q = status_of($c, 'node3'); $q && ($q->{EngineState} // '') eq 'draining' });
    check(defined $took, $c, '6. node3 says EngineState: draining', SC::Test::sess_line($q));
    my $t_d = time;
    ok(within(20, sub { $m1 = member_on($c, 'node1', 'node3'); $m1 && ($m1->{member_state} // '') eq 'draining' }),
       '6. node1 sees node3 with member_state=draining') or diag explain $m1;
    my ($took_bm, $row) = bm_within(20, $url{node3}, sub { $_[0] =~ /\bDrn\b/ }, $t_d);
    check(defined $took_bm, $c, '6. /balancer-manager shows node3\'s worker as Drn, without traffic',
          'row: ' . ($row // '(none)'));
    my $took_f = within(20, sub { $w = worker('node3'); $w && status_has($w->{status}, 'Drn')
                                  && ($w->{member} // '') eq 'draining' });
    check(defined $took_f, $c, '6. the front\'s page shows node3\'s worker as Drn, member=draining', bm_line($w));

    my ($s, $bad, $tries) = sessions_until({ node1 => 15, node2 => 15 }, 100);
    ok(!@$bad, '6. new sessions through the front while node3 drains') or diag(show($bad->[0]));
    my $cnt = count_routes($s);
    note("6. new sessions per member while node3 drains: " . fmt_counts($cnt) . " ($tries made)");
    is($cnt->{node3}, 0, '6. none of them on node3');
    my $r = app($c, $F, 'auto', $id{node3});
    check(($r->{route} // '') eq 'node3' && ($r->{counter} // '') eq '2' && !$r->{cookie}, $c,
          "6. an existing node3 session still reaches node3 (counter 2)", show($r));

    $p = status_of($c, 'node3');
    my ($s5, undef, $b5) = page_action($c, 'node3', action => 'state', state => 'ready',
                                       nonce => $p ? $p->{Nonce} : '');
    ok($s5 >= 200 && $s5 < 400, "6. POST state=ready with the nonce accepted ($s5)") or diag($b5);
    $took = within(20, sub { $q = status_of($c, 'node3'); $q && ($q->{EngineState} // '') eq 'ready' });
    check(defined $took, $c, '6. node3 is ready again', SC::Test::sess_line($q));
    my $t_r = time;
    ($took_bm, $row) = bm_within(20, $url{node3}, sub { $_[0] !~ /\bDrn\b/ && $_[0] =~ /\bOk\b/ }, $t_r);
    check(defined $took_bm, $c, '6. /balancer-manager shows node3\'s worker without Drn, without traffic',
          'row: ' . ($row // '(none)'));
    $took_f = within(20, sub { $w = worker('node3'); $w && !status_has($w->{status}, 'Drn')
                               && status_has($w->{status}, 'Ok') && ($w->{member} // '') eq 'ready' });
    check(defined $took_f, $c, '6. the front\'s page shows node3\'s worker Ok, member=ready again', bm_line($w));
    ($s, $bad, $tries) = sessions_until({ node3 => 1 }, 10);
    $cnt = count_routes($s);
    cmp_ok($cnt->{node3}, '>=', 1, "6. new sessions reach node3 again ($tries made)") or diag fmt_counts($cnt);
}

# 7. the unmatched BalancerMember -------------------------------------------------------------------
{
    my $p = status_of($c, $F);
    my @u = @{ $p ? $p->{unmatched_balancer_members} : [] };
    ok((grep { $_->[0] eq 'balancer://members' && $_->[1] eq 'node9' } @u),
       '7. the front shows UnmatchedBalancerMember: balancer://members node9')
        or diag(SC::Test::head_of_page(page($c, $F)));
    is(scalar @u, 1, '7. ... and no other unmatched BalancerMember');
    is(scalar @{ $p ? $p->{unmatched_members} : [] }, 0, '7. no UnmatchedMember (every member has a BalancerMember)');
    my $w = balancer_member($p, 'node9');
    is($w && $w->{member}, 'none', '7. node9\'s BalancerMember line says member=none') or diag bm_line($w);
    my @log = grep { /node9/ } split /\n/, $c->error_log($F);
    is(scalar @log, 1, '7. the front logs the unmatched node9 once') or diag(join("\n", @log));
    my @tried = grep { /:$CLOSED\b/ && !/session_cluster:/ } split /\n/, $c->error_log($F);
    is(scalar @tried, 0, '7. the hot-standby node9 (closed port) was never tried')
        or diag(join("\n", @tried[0 .. ($#tried < 4 ? $#tried : 4)]));
}

# nothing crashed ------------------------------------------------------------------------------------
for my $n ($c->members) {
    ok($c->is_running($n), "$n still runs");
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
note(sprintf 'scenario took %.1fs', time - $t_start);

$c->teardown;
done_testing();
