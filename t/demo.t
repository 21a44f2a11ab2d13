# The README's demo command works as written: build/demo.sh starts a cluster of
# members that share sessions, and `build/demo.sh stop` stops them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(remove_tree);
use SC::ConfTest qw(repo_dir);
use SC::Cluster;

plan tests => 10;

my $repo = repo_dir();
my $dir = "/tmp/sc-demo-test-$$";
local $ENV{DEMO_DIR} = $dir;
local $ENV{DEMO_PORT} = SC::Cluster::free_port();
local $ENV{DEMO_MEMBERS} = 2;
my $p1 = $ENV{DEMO_PORT};
my $p2 = $p1 + 1;

my $out = `bash $repo/build/demo.sh 2>&1`;
is($? >> 8, 0, 'build/demo.sh exits 0') or diag($out);
like($out, qr{demo: node1 is up .* demo page http://127\.0\.0\.1:$p1/app}, 'node1 is announced');
like($out, qr{demo: node2 is up .* demo page http://127\.0\.0\.1:$p2/app}, 'node2 is announced');

my $page = `curl -s --max-time 5 -i 'http://127.0.0.1:$p1/app?auto'`;
my ($cookie) = $page =~ /Set-Cookie: (JSESSIONID=[0-9A-F]{32}\.node1)/i;
ok($cookie, 'node1 gives a session cookie with its route') or diag($page);
like($page, qr/^Counter: 1\r?$/m, 'counter 1 on node1');
$page = `curl -s --max-time 5 -H 'Cookie: $cookie' 'http://127.0.0.1:$p1/app?auto'`;
like($page, qr/^Counter: 2$/m, 'counter 2 on node1');
$page = '';
for (1 .. 40) {             # asynchronous replication: a moment at most
    $page = `curl -s --max-time 5 -H 'Cookie: $cookie' 'http://127.0.0.1:$p2/app?read'`;
    last if $page =~ /^Counter: 2$/m;
    select undef, undef, undef, 0.05;
}
like($page, qr/^Route: node2$/m, 'node2 answers');
like($page, qr/^Counter: 2$/m, 'node2 serves the same session: counter 2');

$out = `bash $repo/build/demo.sh stop 2>&1`;
like($out, qr/demo: stopped node1 .*demo: stopped node2/s, 'build/demo.sh stop stops both');
my $left = `curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$p1/app`;
isnt($left, '200', 'nothing answers any more');

remove_tree($dir);
