# The README's demo works as written: build/demo.sh starts the seeds'
# topology (a front balancer with SessionClusterBalancer and three members that
# share sessions); through the front a session sticks to its member; `demo.sh
# crash nodeN` kills that member and the next request through the front is
# served by another member with the counter going on and the id re-bound to
# it; `demo.sh` again brings the member back (ready, and in the front's
# rotation again); `build/demo.sh stop` stops everything.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(remove_tree);
use IO::Socket::INET;
use SC::ConfTest qw(repo_dir);
use SC::Cluster;

plan tests => 19;

my $repo = repo_dir();
my $dir = "/tmp/sc-demo-test-$$";

# three member ports and the front's, one below them, all free
my $p1;
for (1 .. 50) {
    my $p = SC::Cluster::free_port();
    my $ok = 1;
    for my $q ($p - 1, $p + 1, $p + 2) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $q,
                                      Proto => 'tcp', ReuseAddr => 1, Listen => 1);
        $ok = 0 unless $s;
        close $s if $s;
    }
    if ($ok) { $p1 = $p; last }
}
BAIL_OUT('no four free ports in a row') unless $p1;
local $ENV{DEMO_DIR} = $dir;
local $ENV{DEMO_PORT} = $p1;
my $front = $p1 - 1;

sub get {
    my ($port, $path, $cookie) = @_;
    my $h = $cookie ? "-H 'Cookie: $cookie'" : '';
    return scalar `curl -s --max-time 5 -i $h 'http://127.0.0.1:$port$path'`;
}

my $out = `bash $repo/build/demo.sh 2>&1`;
is($? >> 8, 0, 'build/demo.sh exits 0') or diag($out);
for my $i (1 .. 3) {
    my $p = $p1 + $i - 1;
    like($out, qr{demo: node$i is up .* demo page http://127\.0\.0\.1:$p/app}, "node$i is announced");
}
like($out, qr{demo: front is up .* demo page http://127\.0\.0\.1:$front/app}, 'the front is announced');

# through the front: a session, sticky to its member
my $page = get($front, '/app?auto');
my ($cookie, $route) = $page =~ /Set-Cookie: (JSESSIONID=[0-9A-F]{32}\.(node\d))/i;
ok($cookie, 'the front gives a session cookie with a member route') or diag($page);
$route //= 'node1';
like($page, qr/^Counter: 1\r?$/m, "counter 1 on $route");
my $sticky = 1;
for my $n (2 .. 4) {
    $page = get($front, '/app?auto', $cookie);
    $sticky = 0 unless $page =~ /^Route: \Q$route\E\r?$/m && $page =~ /^Counter: $n\r?$/m;
}
ok($sticky, "three more requests through the front stay on $route, counter 2..4") or diag($page);

# a crash of that member
$out = `bash $repo/build/demo.sh crash $route 2>&1`;
like($out, qr/demo: killed $route /, "demo.sh crash $route") or diag($out);
$page = get($front, '/app?auto', $cookie);
my ($new_route) = $page =~ /^Route: (node\d)\r?$/m;
ok($new_route && $new_route ne $route, "another member answers through the front ($new_route)")
    or diag($page);
like($page, qr/^Counter: 5\r?$/m, 'the counter goes on: 5');
my ($rebound) = $page =~ /Set-Cookie: (JSESSIONID=[0-9A-F]{32}\.node\d)/i;
my ($base) = $cookie =~ /=([0-9A-F]{32})\./;
ok($rebound && $rebound =~ /\Q$base\E\.\Q$new_route\E$/,
   'the session was re-bound to that member: same 32 hex, its route') or diag($page);
my $auto = get($front, '/cluster-manager?auto');
like($auto, qr/^BalancerMember: .* route=$route .* status=Err/m,
     "the front shows the BalancerMember of $route in error") or diag($auto);

# back again
$out = `bash $repo/build/demo.sh 2>&1`;
is($? >> 8, 0, 'build/demo.sh again exits 0') or diag($out);
like($out, qr/demo: $route is up/, "it starts $route again, and only that") or diag($out);
$auto = get($front, '/cluster-manager?auto');
like($auto, qr/^BalancerMember: .* route=$route .* status=Ok member=ready/m,
     "the front has $route back in rotation") or diag($auto);
$page = get($front, '/app?auto', $rebound);
like($page, qr/^Counter: 6\r?$/m, 'the session still counts through the front: 6') or diag($page);

$out = `bash $repo/build/demo.sh stop 2>&1`;
like($out, qr/demo: stopped front .*demo: stopped node1 .*demo: stopped node2 .*demo: stopped node3/s,
     'build/demo.sh stop stops the front and the members') or diag($out);
my $left = `curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$front/app`;
isnt($left, '200', 'nothing answers any more');

remove_tree($dir);
