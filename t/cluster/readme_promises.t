#!perl
# What the README states about membership and sessions that no other test
# checks (issue 14, "also untested"), through httpd.conf, HTTP and the page:
#   A. StaticMembershipService with <LocalMember> (README "Status": static
#      members "StaticMembershipService with <LocalMember>/<Member>"): two
#      members whose <Membership> is that service, no
#      StaticMembershipInterceptor, the LocalMember naming their domain; the
#      page says StaticMembershipService and the domain, each sees the other
#      alive in that domain, a session made on node1 is read on node2.
#   B. SESSION_CLUSTER_ID (README "Re-binding"): mod_headers copies the
#      variable into a response header.  A request with an existing session
#      carries its id; a request that re-binds it on node2 carries the id in
#      use (node2's route) while sessionIdAttribute's variable carries the id
#      it came with.
#   C. Accesses batched to the other members (README "Expiry"):
#      maxInactiveInterval 3 s; S1 is only read on node1 (no change), S2 and
#      later S3 are left alone.  node2 drops S2, then S3 (made after S2 was
#      gone), while S1, older than S3, stays on node2: only node1's accesses,
#      sent in batches, kept it there.  A read on node2 then finds S1.
#   D. A missed version fetches the whole session (README "Replication"):
#      node2 frozen until node1 holds it suspect (so node1 sends it nothing);
#      a change on node1; node2 resumed and live again, still at the old
#      version (after a later change of another session has reached it); the
#      next change on node1 is a delta node2 cannot apply: it asks for the
#      session and ends with node1's version and data, the missed attribute
#      included.
#   E. stateTransferTimeout and SC1264 (README "State transfer"): node1, the
#      only ready member, frozen; node2 redoes its state transfer (the page's
#      action): it reports starting, never ready before it logs SC1264 naming
#      node1 and the 2 s timeout, then it is ready.
# No duration is asserted; deadlines are polling limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep);
use SC::Cluster;
use SC::Test qw(page status_of member_on check within app show demo_module demo_conf page_action valid_sid);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "readme_promises.t: time limit (120 s) reached\n" };
alarm 120;

my $DEMO_SO = demo_module();
my $ORIG = 'org.apache.catalina.ha.session.JvmRouteOrignalSessionID';
my $APP = demo_conf($DEMO_SO, location =>
                    "  Header always set X-Session-Cluster-Id \"%{SESSION_CLUSTER_ID}e\"\n"
                  . "  Header always set X-Orig-Id \"%{$ORIG}e\"\n");

sub session_on {
    my ($c, $n, $id) = @_;
    my ($s, $h, $b) = $c->get($n, "/cluster-manager?session=$id", timeout => 3);
    return undef unless $s == 200;
    my %f = $b =~ /^(\w+): (.*)$/mg;
    return \%f;
}
sub held_on { my $f = session_on(@_); return $f && ($f->{SessionHeld} // '') eq 'yes' ? $f : undef }
sub gone_on { my $f = session_on(@_); return $f && ($f->{SessionHeld} // '') eq 'no' }
sub base_of { my ($id) = @_; return defined $id && $id =~ /^([0-9A-Fa-f]{32})\./ ? lc $1 : '' }

# ===========================================================================
# Cluster 1: StaticMembershipService with LocalMember (A, B, C)
# ===========================================================================
my $service_block = sub {
    my ($m, $all) = @_;
    my $x = qq{<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelSendOptions="8">\n}
          . qq{  <Manager className="org.apache.catalina.ha.session.DeltaManager" maxInactiveInterval="3"/>\n}
          . qq{  <Channel className="org.apache.catalina.tribes.group.GroupChannel">\n}
          . qq{    <Membership className="org.apache.catalina.tribes.membership.StaticMembershipService" pingInterval="500">\n}
          . qq{      <LocalMember className="org.apache.catalina.tribes.membership.StaticMember" domain="readme-dom" uniqueId="$m->{unique_id}"/>\n};
    for my $o (grep { $_->{name} ne $m->{name} } @$all) {
        $x .= qq{      <Member className="org.apache.catalina.tribes.membership.StaticMember" host="$o->{addr}" }
            . qq{port="$o->{cluster_port}" domain="readme-dom" uniqueId="$o->{unique_id}"/>\n};
    }
    $x .= qq{    </Membership>\n}
        . qq{    <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver" address="$m->{addr}" port="$m->{cluster_port}" autoBind="1"/>\n}
        . qq{    <Interceptor className="org.apache.catalina.tribes.group.interceptors.TcpFailureDetector"/>\n}
        . qq{  </Channel>\n}
        . qq{  <Valve className="org.apache.catalina.ha.session.JvmRouteBinderValve"/>\n}
        . qq{  <Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>\n}
        . qq{</Cluster>\n};
    return $x;
};

my $c = SC::Cluster->new(members => 2, modules => ['headers'], extra_conf => $APP,
                         cluster => $service_block);
$c->start_all;

# A. StaticMembershipService with LocalMember ---------------------------------
{
    unlike($c->config_text('node1'), qr/StaticMembershipInterceptor/,
           'A. the block has no StaticMembershipInterceptor: members come from the service');
    for my $n (qw(node1 node2)) {
        my $p = status_of($c, $n) || {};
        is($p->{Membership}, 'StaticMembershipService', "A. $n: Membership: StaticMembershipService");
        is($p->{Domain}, 'readme-dom', "A. $n: Domain is the LocalMember's (readme-dom)");
    }
    my ($m12, $m21);
    my $ok = within(20, sub {
        $m12 = member_on($c, 'node1', 'node2');
        $m21 = member_on($c, 'node2', 'node1');
        return $m12 && $m21 && $m12->{state} eq 'alive' && $m21->{state} eq 'alive'
            && (status_of($c, 'node2')->{EngineState} // '') eq 'ready';
    });
    check($ok, $c, 'A. node1 and node2 (the service\'s Members) see each other alive, node2 ready');
    is($m12 && $m12->{domain}, 'readme-dom', 'A. node1 shows node2 in domain readme-dom');
    my $r = app($c, 'node1', 'auto');
    my $id = $r->{cookie};
    check(valid_sid($id, 'node1') && ($r->{counter} // '') eq '1', $c, 'A. a session made on node1', show($r));
    app($c, 'node1', 'auto', $id);
    my $seen = within(20, sub { my $f = held_on($c, 'node2', $id); $f && $f->{SessionVersion} == (held_on($c, 'node1', $id) || {})->{SessionVersion} });
    check($seen, $c, 'A. node2 holds the session at node1\'s version (replicated)');
    my $x = app($c, 'node2', 'read', $id);
    check(($x->{counter} // '') eq '2' && base_of($x->{sid}) eq base_of($id), $c,
          'A. node2 reads the session with counter 2', show($x));
}

# B. SESSION_CLUSTER_ID --------------------------------------------------------
{
    my $r = app($c, 'node1', 'auto');
    my $id = $r->{cookie};
    check(valid_sid($id, 'node1'), $c, 'B. a session made on node1', show($r));
    $r = app($c, 'node1', 'auto', $id);
    is($r->{headers}{'x-session-cluster-id'}, $id,
       'B. a request on node1 with that session: SESSION_CLUSTER_ID is its id') or diag show($r);
    check(within(20, sub { held_on($c, 'node2', $id) }), $c, 'B. node2 holds the session');
    $r = app($c, 'node2', 'auto', $id);
    my $new = $r->{cookie};
    check(valid_sid($new, 'node2') && base_of($new) eq base_of($id), $c,
          'B. on node2 the session is re-bound: a new cookie with node2\'s route', show($r));
    is($r->{headers}{'x-session-cluster-id'}, $new,
       'B. ... and SESSION_CLUSTER_ID is the id in use (node2\'s), not the one sent') or diag show($r);
    is($r->{headers}{'x-orig-id'}, $id,
       "B. ... while $ORIG carries the id the request came with") or diag show($r);
}

# C. accesses batched to the other members keep a session alive ----------------
{
    my ($s1, $s2) = map { app($c, 'node1', 'auto')->{cookie} } 1, 2;
    check(valid_sid($s1, 'node1') && valid_sid($s2, 'node1'), $c, 'C. S1 and S2 made on node1');
    check(within(20, sub { held_on($c, 'node2', $s1) && held_on($c, 'node2', $s2) }), $c,
          'C. node2 holds S1 and S2');
    my ($reads, $bad) = (0, undef);
    my $touch = sub {
        my $r = app($c, 'node1', 'read', $s1);
        $reads++;
        $bad //= show($r) unless ($r->{session} // '') eq $s1 && ($r->{counter} // '') eq '1';
        sleep 0.3;
    };
    my $g2 = within(30, sub { $touch->(); gone_on($c, 'node2', $s2) });
    check($g2, $c, "C. node2 drops S2, left alone past maxInactiveInterval ($reads reads of S1 on node1 meanwhile)");
    my $s3 = app($c, 'node1', 'auto')->{cookie};
    check(valid_sid($s3, 'node1') && within(20, sub { held_on($c, 'node2', $s3) }), $c,
          'C. S3 made on node1 after S2 was gone, held by node2');
    my $g3 = within(30, sub { $touch->(); gone_on($c, 'node2', $s3) });
    check($g3, $c, "C. node2 drops S3 too ($reads reads of S1 on node1 in all)");
    ok(!defined $bad, 'C. every read of S1 on node1 found it unchanged (counter 1)') or diag $bad;
    my $f = held_on($c, 'node2', $s1);
    check($f, $c, 'C. S1, made before S3 and only read on node1, is still held by node2',
          'node2 ?session: ' . join(' ', %{ session_on($c, 'node2', $s1) || {} }));
    # each member expires its own copy of a session that saw one request (on
    # probation, no EXPIRE sent): node1's sweep may come a moment after node2's
    check(within(20, sub { gone_on($c, 'node1', $s2) && gone_on($c, 'node1', $s3) }), $c,
          'C. node1 dropped S2 and S3 as well');
    my $r = app($c, 'node2', 'read', $s1);
    check(base_of($r->{sid}) eq base_of($s1) && ($r->{counter} // '') eq '1', $c,
          'C. a read on node2 finds S1 (counter 1): not expired there', show($r));
}
$c->teardown;

# ===========================================================================
# Cluster 2: a missed version (D) and stateTransferTimeout (E).  node1 holds a
# silent member suspect after 2 s (dropTime) and keeps checking it for 60 s
# (TcpFailureDetector connectTimeout); node2 keeps a silent node1 alive for
# 30 s, longer than its stateTransferTimeout of 2 s.
# ===========================================================================
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my $d = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    extra_conf => $APP,
    modules    => ['headers'],
    cluster    => sub {
        my ($m, $all) = @_;
        my $drop = $m->{name} eq 'node1' ? 2000 : 30000;
        my $x = SC::Cluster::static_block($m, $all, channelSendOptions => 8, valves => $KEEP_ROUTES,
                                          membership => { dropTime => $drop },
                                          manager => { stateTransferTimeout => 2 });
        $x =~ s{(TcpFailureDetector")/>}{$1 connectTimeout="60000"/>} or die 'no TcpFailureDetector';
        return $x;
    },
);
$d->start_all;
sub alive_on { my $m = member_on($d, @_); return $m && $m->{state} eq 'alive' }
check(within(20, sub { alive_on('node1', 'node2') && alive_on('node2', 'node1')
                       && (status_of($d, 'node2')->{EngineState} // '') eq 'ready' }),
      $d, 'node1 and node2 alive to each other, node2 ready');

# D. a missed version ------------------------------------------------------------
{
    my $r = app($d, 'node1', 'auto');
    my $id = $r->{cookie};
    my $t = app($d, 'node1', 'auto')->{cookie};
    check(valid_sid($id, 'node1') && valid_sid($t, 'node1'), $d, 'D. sessions S and T made on node1', show($r));
    my $v1 = (held_on($d, 'node1', $id) || {})->{SessionVersion} // 'none';
    check(within(20, sub { ((held_on($d, q{node2}, $id) || {})->{SessionVersion} // q{}) eq $v1 }), $d,
          "D. node2 holds S at version $v1");
    $d->sigstop('node2');
    my $m;
    my $sus = within(20, sub { $m = member_on($d, 'node1', 'node2'); $m && $m->{state} eq 'suspect' });
    check($sus, $d, 'D. node2 frozen: node1 holds it suspect (and sends it no changes)',
          'node2 on node1: ' . ($m ? join(' ', %$m) : '(none)'));
    $r = app($d, 'node1', "set=gap&value=while-away", $id);
    check($r->{status} == 200 && ($r->{attrs}{gap} // '') eq 'while-away', $d,
          'D. a change on node1 while node2 is suspect (gap=while-away)', show($r));
    my $v2 = (held_on($d, 'node1', $id) || {})->{SessionVersion} // 0;
    cmp_ok($v2, '>', $v1, "D. node1's S went from version $v1 to $v2");
    $d->sigcont('node2');
    check(within(20, sub { alive_on('node1', 'node2') && alive_on('node2', 'node1') }), $d,
          'D. node2 resumed: both alive to each other again');
    # a change of T after the resume reaches node2: S's missed version did not
    my $rt = app($d, 'node1', 'auto', $t);
    my $vt = (held_on($d, 'node1', $t) || {})->{SessionVersion} // 'none';
    check(($rt->{counter} // '') eq '2'
          && within(20, sub { ((held_on($d, 'node2', $t) || {})->{SessionVersion} // '') eq $vt }), $d,
          "D. a later change of T reaches node2 (version $vt)");
    my $f2 = held_on($d, 'node2', $id) || {};
    is($f2->{SessionVersion}, $v1, "D. node2 still holds S at version $v1: it missed version $v2");
    $r = app($d, 'node1', 'auto', $id);
    check(($r->{counter} // '') eq '2', $d, 'D. the next change of S on node1 (counter 2)', show($r));
    my $v3 = (held_on($d, 'node1', $id) || {})->{SessionVersion} // 'none';
    my $got = within(20, sub { ((held_on($d, 'node2', $id) || {})->{SessionVersion} // '') eq $v3 });
    check($got, $d, "D. node2 catches up to node1's version $v3 (it asked for the whole session)",
          'node2 ?session: ' . join(' ', %{ session_on($d, 'node2', $id) || {} }));
    my $x = app($d, 'node2', 'read', $id);
    check(($x->{counter} // '') eq '2' && ($x->{attrs}{gap} // '') eq 'while-away', $d,
          'D. node2 reads counter 2 and the missed gap=while-away', show($x));
}

# E. stateTransferTimeout and SC1264 -----------------------------------------------
{
    my $nonce = (status_of($d, 'node2') || {})->{Nonce} // '';
    my $off = length $d->error_log('node2');
    $d->sigstop('node1');
    my ($s, undef, $b) = page_action($d, 'node2', action => 'transfer', nonce => $nonce, auto => 1);
    is($s, 200, 'E. node2 accepts the page action "transfer"') or diag($b // '');
    my (%seen, $early, $line);
    my $done = within(30, sub {
        my $st = (status_of($d, 'node2') || {})->{EngineState} // '(no page)';
        $seen{$st}++;
        # the engine logs SC1264 before it turns ready and publishes it: the
        # log read after a page that says ready must hold the line
        my $log_after = substr($d->error_log('node2'), $off);
        $early //= "page said $st after starting, before SC1264" if $st eq q{ready} && $seen{starting} && $log_after !~ /SC1264/;
        ($line) = $log_after =~ /^(.*SC1264: [^\n]*)$/m;
        return $line && $st eq 'ready';
    });
    check($done, $d, 'E. node2 logs SC1264 and is ready', 'states seen: ' . join(' ', %seen));
    ok($seen{starting}, "E. node2 reported starting while node1 could not send ($seen{starting} page(s))")
        or diag('states seen: ' . join(' ', %seen));
    ok(!defined $early, 'E. once starting, node2 was never ready before SC1264') or diag $early;
    like($line // '', qr/SC1264: state transfer from node1 did not complete within stateTransferTimeout 2 s/,
         'E. SC1264 names node1 and stateTransferTimeout 2 s');
    unlike(substr($d->error_log('node2'), $off), qr/SC1263|SC1266/,
           'E. node2 neither completed the transfer (SC1263) nor started alone (SC1266)');
    $d->sigcont('node1');
    check(within(20, sub { alive_on('node2', 'node1') && (status_of($d, 'node1')->{EngineState} // '') eq 'ready' }),
          $d, 'E. node1 resumed: alive on node2 and ready');
}

for my $n ($d->members) {
    unlike($d->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$d->teardown;
done_testing();
