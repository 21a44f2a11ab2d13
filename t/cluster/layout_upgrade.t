#!perl
# A graceful restart into a build of the module whose retained data and
# shared memory are laid out differently (SC_RETAINED_LAYOUT, sc_supervisor.h)
# must not read what the old build left in httpd's parent:
#   - httpd refuses the new generation with SC1350, naming both layouts and
#     telling the administrator to stop and start httpd; the parent exits
#     without a crash and leaves no process behind (the old engine included);
#   - started afresh, the other build runs: its page answers and its engine
#     holds a session.
# The other build is this module compiled again with another layout number.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Temp ();
use Cwd qw(abs_path);
use SC::Cluster;
use SC::Test qw(need status_of check within);

$SIG{ALRM} = sub { die "layout_upgrade.t: time limit (150 s) reached\n" };
alarm 150;

my $repo = SC::Cluster::repo_dir();
my $apxs = $ENV{SC_APXS} || SC::Cluster::which('apxs') || SC::Cluster::which('apxs2');
need($apxs, 'apxs (apache2-dev) to build the module with another layout');

# the layout number of the module under test (sc_supervisor.h)
my ($LAYOUT) = do { local (@ARGV, $/) = ("$repo/mod_session_cluster/sc_supervisor.h"); <> }
    =~ /#define SC_RETAINED_LAYOUT (0x[0-9a-f]+)u/;
die "no SC_RETAINED_LAYOUT in sc_supervisor.h\n" unless $LAYOUT;

# --- the other build --------------------------------------------------------
my $tmp = File::Temp->newdir('sc-layout-XXXXXX', TMPDIR => 1);
chmod 0755, "$tmp";
system('cp', glob("$repo/mod_session_cluster/*.c"), glob("$repo/mod_session_cluster/*.h"),
       glob("$repo/include/*.h"), "$tmp") == 0 or die "cp: $?";
my ($cflags, $libs) = SC::Test::module_build_flags();
my @srcs = map { s{.*/}{}r } glob("$repo/mod_session_cluster/*.c");
my @wc = map { "-Wc,$_" } ('-std=c11', '-D_GNU_SOURCE', '-DSC_RETAINED_LAYOUT=0x5343ff01u',
                           @$cflags);
my $build = `cd '$tmp' && '$apxs' -c -o mod_session_cluster.la @wc -I. @srcs @$libs 2>&1`;
my $other = "$tmp/.libs/mod_session_cluster.so";
ok(-f $other, 'the module built with another layout number')
    or diag($build), BAIL_OUT('no other build');

# --- a member on this build ---------------------------------------------------
my $c = SC::Cluster->new(members => 1, extra_conf => "<Location /app>\n    SessionCluster On\n</Location>\n");
$c->start_all;
my $m = $c->member('node1');
my $p = status_of($c, 'node1') || {};
my $engine = $p->{EnginePid};
check(defined $engine && $engine =~ /^\d+$/ && $engine > 0, $c, "node1 runs an engine (pid "
      . ($engine // 'none') . ')');
my @before = $c->pids('node1');
ok(@before >= 2, 'node1 has its parent and children (' . scalar(@before) . ' processes)');

# --- graceful restart into the other build -------------------------------------
my $conf = SC::Cluster::_slurp($m->{conf});
my $n = ($conf =~ s{LoadModule session_cluster_module "[^"]+"}{LoadModule session_cluster_module "$other"});
is($n, 1, 'the configuration now loads the other build');
SC::Cluster::_write_file($m->{conf}, $conf, 0644);
kill 'USR1', $m->{pid};
my $gone = $c->wait_for(sub { !SC::Cluster::pid_alive($m->{pid}) }, timeout => 30);
ok($gone, "httpd's parent exits instead of running the other build's generation");
my $log = $c->error_log('node1', since_start => 1);
like($log, qr/SC1350: mod_session_cluster was replaced by a build whose shared memory is laid out differently \(retained layout \Q$LAYOUT\E, this build 0x5343ff01\).*stop httpd and start it again/,
     'SC1350 names both layouts and says to stop and start httpd');
unlike($log, qr/AH0005[12]:|AH00060:|Sanitizer|runtime error:|exit signal (?!Killed|Terminated)/,
       'no crash in the error_log');
my $all_gone = $c->wait_for(sub { !grep { SC::Cluster::pid_alive($_) } @before }, timeout => 15);
ok($all_gone, 'no process of node1 is left (children and engine gone): '
   . join(' ', grep { SC::Cluster::pid_alive($_) } @before));
# the harness saw it exit on purpose
$m->{state} = 'exited';

# --- the other build started afresh ------------------------------------------------
$c->start('node1');
my $q = status_of($c, 'node1') || {};
check(($q->{EnginePid} // 0) > 0 && ($q->{EnginePid} // 0) != $engine, $c,
      'started afresh, the other build runs a new engine (pid ' . ($q->{EnginePid} // 'none') . ')');
my ($s, $h, $b) = $c->get('node1', '/cluster-manager?auto');
is($s, 200, 'its page answers');
like($c->error_log('node1', since_start => 1), qr/SC1236: cluster engine started/,
     'its engine logged its start');
unlike($c->error_log('node1', since_start => 1), qr/SC1350/, 'no layout refusal on a fresh start');

$c->teardown;
done_testing;
