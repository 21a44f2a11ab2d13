# The README's demo works as written: build/demo.sh starts the seeds'
# topology (a front balancer with SessionClusterBalancer and three members that
# share sessions); through the front a session sticks to its member; `demo.sh
# crash nodeN` kills that member and the next request through the front is
# served by another member with the counter going on and the id re-bound to
# it; `demo.sh` again brings the member back (ready, and in the front's
# rotation again); `build/demo.sh stop` stops everything: every process of the
# front and of the members (parents, children, engines) is gone.  The demo
# runs what the suite tests (SC_HTTPD, SC_MODULE_SO, SC_DEMO_SO,
# SC_LIBEXECDIR: under make check-asan the sanitized build): each member has
# that module and demo page mapped (and the sanitizer runtime under
# check-asan).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Cwd qw(realpath);
use File::Path qw(remove_tree);
use IO::Socket::INET;
use SC::ConfTest qw(repo_dir);
use SC::Cluster;

plan tests => 30;

my $repo = repo_dir();
my $dir = "/tmp/sc-demo-test-$$";

# three member ports and the front's, one below them, all free; below the
# ephemeral range (the suite's many short connections leave thousands of its
# ports in TIME_WAIT, where a listener cannot bind)
my ($eph) = do { open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range'; (<$fh> // '') =~ /(\d+)/ };
$eph = 32768 unless $eph && $eph > 12000;
# (reserved as SC::Cluster reserves its members' ports: a cluster test
# running beside this one never takes them)
my $p1;
for (1 .. 200) {
    my $p = 10001 + int(rand($eph - 10010));
    my $ok = 1;
    for my $q ($p - 1 .. $p + 2) {
        $ok = SC::Cluster::reserve_port($q) or last;
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

# The pids of a demo httpd (front, node1..node3): its parent (pid file) and
# every descendant, from /proc.
sub tree {
    my ($name) = @_;
    open my $fh, '<', "$dir/$name/httpd.pid" or return ();
    my ($root) = (<$fh> // '') =~ /(\d+)/;
    return () unless $root && SC::Cluster::pid_alive($root);
    my %kids;
    opendir my $dh, '/proc' or return ($root);
    for my $p (grep { /^\d+$/ } readdir $dh) {
        open my $sf, '<', "/proc/$p/stat" or next;
        my ($ppid) = (<$sf> // '') =~ /\)\s+\S+\s+(\d+)/;
        push @{ $kids{$ppid} }, $p if defined $ppid;
    }
    my @out = ($root);
    for (my $i = 0; $i < @out; $i++) { push @out, @{ $kids{ $out[$i] } || [] } }
    return @out;
}

sub maps_of {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/maps" or return '';
    local $/;
    return scalar <$fh>;
}

my $MODULE = realpath($ENV{SC_MODULE_SO} || "$repo/mod_session_cluster/.libs/mod_session_cluster.so") // '?';
my $DEMO   = realpath($ENV{SC_DEMO_SO} || "$repo/demo/.libs/mod_session_cluster_demo.so") // '?';

my $out = `bash $repo/build/demo.sh 2>&1`;
is($? >> 8, 0, 'build/demo.sh exits 0') or diag($out);
for my $i (1 .. 3) {
    my $p = $p1 + $i - 1;
    like($out, qr{demo: node$i is up .* demo page http://127\.0\.0\.1:$p/app}, "node$i is announced");
}
like($out, qr{demo: front is up .* demo page http://127\.0\.0\.1:$front/app}, 'the front is announced');

my %procs = map { $_ => [ tree($_) ] } qw(front node1 node2 node3);
ok(!(grep { @{ $procs{$_} } < 3 } keys %procs),
   'the front and each member run a parent, an engine and an MPM child')
    or diag(join '; ', map { "$_: @{ $procs{$_} }" } sort keys %procs);
{
    # what runs is what the suite tests: the engine (a child of the parent)
    # has the module mapped, a member's MPM children the demo page too
    my @no_mod = grep { my $n = $_; !grep { index(maps_of($_), $MODULE) >= 0 } @{ $procs{$n} } }
                 sort keys %procs;
    ok(!@no_mod, "every demo httpd runs $MODULE") or diag("not mapped in: @no_mod");
    my @no_demo = grep { my $n = $_; !grep { index(maps_of($_), $DEMO) >= 0 } @{ $procs{$n} } }
                  qw(node1 node2 node3);
    ok(!@no_demo, "every member runs the demo page $DEMO") or diag("not mapped in: @no_demo");
    my $want_san = $ENV{SC_SANITIZER_LOGS} ? 1 : 0;
    my @san = grep { maps_of($procs{$_}[0]) =~ /libasan/ } sort keys %procs;
    is(scalar @san, $want_san ? 4 : 0,
       $want_san ? 'under check-asan every demo httpd runs with the sanitizer runtime (SC_HTTPD)'
                 : 'without check-asan no demo httpd has the sanitizer runtime');
}

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
my @crashed = grep { SC::Cluster::pid_alive($_) } @{ $procs{$route} };
ok(!@crashed, "... none of $route\'s processes (@{ $procs{$route} }) is left") or diag("alive: @crashed");
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
like($out, qr/demo: $route is up/, "it starts $route again") or diag($out);
my @already = sort $out =~ /demo: (?:the )?(\w+) runs already/g;
is_deeply(\@already, [ sort 'front', grep { $_ ne $route } qw(node1 node2 node3) ],
          "... and only that: the front and the two others run already") or diag($out);
$procs{$route} = [ tree($route) ];
$auto = get($front, '/cluster-manager?auto');
like($auto, qr/^BalancerMember: .* route=$route .* status=Ok member=ready/m,
     "the front has $route back in rotation") or diag($auto);
$page = get($front, '/app?auto', $rebound);
like($page, qr/^Counter: 6\r?$/m, 'the session still counts through the front: 6') or diag($page);

my @all = map { @{ $procs{$_} } } sort keys %procs;
$out = `bash $repo/build/demo.sh stop 2>&1`;
is($? >> 8, 0, 'build/demo.sh stop exits 0') or diag($out);
like($out, qr/demo: stopped front .*demo: stopped node1 .*demo: stopped node2 .*demo: stopped node3/s,
     'build/demo.sh stop says it stopped the front and the members') or diag($out);
my @alive = grep { SC::Cluster::pid_alive($_) } @all;
ok(@all >= 12 && !@alive, 'every process of the front and the members is gone (' . scalar(@all) . ' pids)')
    or diag("still alive: @alive");
for my $port ($front, $p1 .. $p1 + 2) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 5);
    ok(!$s && $! =~ /refused/i, "port $port refuses connections") or diag("connect: $!");
}

remove_tree($dir);
