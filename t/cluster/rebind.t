#!perl
# JvmRouteBinderValve re-binds a session once (issue 14, item 8).  Three
# members with the valve and the demo application; requests go straight to
# a member, as a balancer would send them:
#   1. a session made on node1 (X.node1), held by all three;
#   2. X.node1 on node3: re-bound to X.node3 (Set-Cookie, SessionsRebound +1
#      on node3), every member then holds it as X.node3;
#   3. the old X.node1 on node2 (a request that still had the old cookie):
#      not re-bound again: its Set-Cookie is X.node3, node2's SessionsRebound
#      stays 0, and once node2's write has reached node1 and node3 (same
#      version everywhere) every member still holds it as X.node3;
#   4. the old X.node1 on node1, the member its old route names: it gets the
#      id in use too (Set-Cookie X.node3), no re-binding;
#   5. X.node3 on node3: no Set-Cookie (the client has the id in use);
#   6. SessionsRebound over the three members: 1; the counter went 1..5.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of check within app demo_module demo_conf show);
SC::Test::dump_options(tail => 20, cut => 300);

my $LIMIT = 90;
$SIG{ALRM} = sub { die "rebind.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $DEMO_SO = demo_module();
my $c = SC::Cluster->new(
    members    => 3,
    loglevel   => 'info',
    extra_conf => demo_conf($DEMO_SO),
    cluster    => sub { SC::Cluster::static_block(@_, jvm_route_binder => 1) },
);
my @N = qw(node1 node2 node3);
$c->start_all;

# member $n's view of session $id: { SessionHeld, SessionId, SessionVersion }
sub held {
    my ($n, $id) = @_;
    my ($s, undef, $b) = $c->get($n, "/cluster-manager?session=$id", timeout => 3);
    return {} unless $s == 200;
    return { map { /^(\w+): (.*)$/ ? ($1 => $2) : () } split /\n/, $b };
}
sub rebound { my $p = status_of($c, $_[0]); return $p ? $p->{SessionsRebound} : undef }
sub cookie_of { my ($r) = @_; return ($r->{headers}{'set-cookie'} // '') =~ /JSESSIONID=([^;,\s]+)/ ? $1 : undef }

{
    my $ok = within(20, sub {
        my $p = status_of($c, 'node1') or return 0;
        2 == grep { ($_->{route} // '') =~ /^node[23]$/ && ($_->{member_state} // '') eq 'ready' } @{ $p->{members} };
    });
    check($ok, $c, 'node1 sees node2 and node3 ready');
}

# 1
my $r = app($c, 'node1', 'auto');
my $old = $r->{cookie} // '';
like($old, qr/^[0-9A-Fa-f]{32}\.node1$/, '1. a session made on node1') or diag(show($r));
my ($base) = $old =~ /^([0-9A-Fa-f]{32})\./;
$base //= '0' x 32;
my $new = "$base.node3";
for my $n (qw(node2 node3)) {
    my $h;
    my $ok = within(20, sub { $h = held($n, $old); ($h->{SessionHeld} // '') eq 'yes' });
    check($ok, $c, "1. $n holds it", join(' ', map { "$_=$h->{$_}" } sort keys %$h));
}

# 2
my %rb0 = map { $_ => rebound($_) } @N;
$r = app($c, 'node3', 'auto', $old);
is($r->{status}, 200, '2. the old id on node3: 200');
is(cookie_of($r), $new, "2. ... re-bound: Set-Cookie $new") or diag(show($r));
is($r->{counter}, 2, '2. ... counter 2');
is(rebound('node3'), $rb0{node3} + 1, '2. ... SessionsRebound on node3 +1');
for my $n (qw(node1 node2)) {
    my $h;
    my $ok = within(20, sub { $h = held($n, $old); ($h->{SessionId} // '') eq $new });
    check($ok, $c, "2. $n holds it as $new", join(' ', map { "$_=$h->{$_}" } sort keys %$h));
}

# 3
$r = app($c, 'node2', 'auto', $old);
is($r->{status}, 200, '3. the old id on node2: 200');
is(cookie_of($r), $new, "3. ... not re-bound again: Set-Cookie $new (the id in use), not $base.node2")
    or diag(show($r));
is($r->{counter}, 3, '3. ... counter 3');
is(rebound('node2'), $rb0{node2}, '3. ... SessionsRebound on node2 unchanged');
my $v2 = held('node2', $old)->{SessionVersion} // -1;
for my $n (qw(node1 node3)) {
    my $h;
    my $ok = within(20, sub { $h = held($n, $old); ($h->{SessionVersion} // -2) == $v2 });
    check($ok, $c, "3. node2's write (version $v2) reached $n",
          join(' ', map { "$_=$h->{$_}" } sort keys %$h));
    is($h->{SessionId}, $new, "3. ... and $n still holds it as $new");
}
is(held('node2', $old)->{SessionId}, $new, "3. node2 holds it as $new");

# 4
$r = app($c, 'node1', 'auto', $old);
is($r->{status}, 200, '4. the old id on node1 (its old route): 200');
is(cookie_of($r), $new, "4. ... Set-Cookie $new: the client learns the id in use") or diag(show($r));
is($r->{counter}, 4, '4. ... counter 4');
is(rebound('node1'), $rb0{node1}, '4. ... SessionsRebound on node1 unchanged');
is(held('node1', $old)->{SessionId}, $new, "4. node1 holds it as $new");

# 5
$r = app($c, 'node3', 'auto', $new);
is($r->{status}, 200, "5. $new on node3: 200");
is(cookie_of($r), undef, '5. ... no Set-Cookie: the client has the id in use') or diag(show($r));
is($r->{counter}, 5, '5. ... counter 5');

# 6
my $total = 0;
$total += (rebound($_) // 0) - ($rb0{$_} // 0) for @N;
is($total, 1, '6. the session was re-bound once over the three members');

$c->teardown;
done_testing;
