# The README's demo command works as written: build/demo.sh starts a member
# whose cluster-manager page answers, and `build/demo.sh stop` stops it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use File::Path qw(remove_tree);
use SC::ConfTest qw(repo_dir);

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1) or die "socket: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

plan tests => 7;

my $repo = repo_dir();
my $dir = "/tmp/sc-demo-test-$$";
local $ENV{DEMO_DIR} = $dir;
local $ENV{DEMO_PORT} = free_port();
local $ENV{DEMO_CLUSTER_PORT} = free_port();

my $out = `bash $repo/build/demo.sh 2>&1`;
is($? >> 8, 0, 'build/demo.sh exits 0') or diag($out);
like($out, qr{demo: cluster-manager page   http://127\.0\.0\.1:$ENV{DEMO_PORT}/cluster-manager},
     'it prints the page address');

my $page = `curl -s --max-time 5 http://127.0.0.1:$ENV{DEMO_PORT}/cluster-manager?auto`;
like($page, qr/^Route: node1$/m, 'the member answers with its route');
like($page, qr/^Receiver\.port = $ENV{DEMO_CLUSTER_PORT}  # set in the block$/m,
     'its cluster block is the demo one');

open my $fh, '<', "$dir/node1/httpd.pid";
my $pid = <$fh> // '';
chomp $pid;
ok($pid && kill(0, $pid), "httpd runs (pid $pid)");

$out = `bash $repo/build/demo.sh stop 2>&1`;
like($out, qr/demo: stopped node1 \(pid $pid\)/, 'build/demo.sh stop stops it');
ok(!kill(0, $pid), 'the process is gone');

remove_tree($dir);
