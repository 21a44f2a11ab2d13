#!perl
# A graceful restart keeps the two shared segments (the status segment,
# sc_shm.h, and the session store, sc_store.h) and may load a rebuilt module
# over them.  Each segment records its magic, version and layout sizes; a
# build that lays a segment out differently refuses the new generation
# instead of reading the old segment as its own, even when the retained
# layout number (SC_RETAINED_LAYOUT, layout_upgrade.t) was not raised:
#   - a graceful restart onto the same build keeps the session (no refusal);
#   - onto a build with other segment versions (SC_SHM_VERSION,
#     SC_STORE_VERSION): SC1387 and SC1388 name each segment's version found
#     and this build's, and say to stop and start httpd; the parent exits
#     without a crash and leaves no process behind; started afresh, that
#     build runs and holds a session;
#   - onto a build whose layout changed without a new version (a member row
#     8 bytes longer, data blocks of 256 bytes): the same refusal, naming the
#     sizes that differ and no version.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Temp ();
use SC::Cluster;
use SC::Test qw(need status_of check app show valid_sid demo_module demo_conf);

$SIG{ALRM} = sub { die "segment_check.t: time limit (240 s) reached\n" };
alarm 240;

my $repo = SC::Cluster::repo_dir();
my $apxs = $ENV{SC_APXS} || SC::Cluster::which('apxs') || SC::Cluster::which('apxs2');
need($apxs, 'apxs (apache2-dev) to build the module with another segment layout');
my $DEMO_SO = $ENV{SC_DEMO_SO} || demo_module();

sub slurp { my ($f) = @_; local (@ARGV, $/) = ($f); return scalar <> }

# the segment versions of the module under test
my ($SHM_V) = slurp("$repo/mod_session_cluster/sc_shm.h") =~ /#define SC_SHM_VERSION\s+(\d+)/;
my ($STORE_V) = slurp("$repo/mod_session_cluster/sc_store.h") =~ /#define SC_STORE_VERSION\s+(\d+)/;
die "no SC_SHM_VERSION in sc_shm.h\n" unless defined $SHM_V;
die "no SC_STORE_VERSION in sc_store.h\n" unless defined $STORE_V;

# --- the other builds ------------------------------------------------------------
my @TMP;
# This module's sources compiled again with extra defines, after the
# substitutions given (file => [regex, replacement]); the .so's path.
sub other_build {
    my ($what, $defines, %subst) = @_;
    my $tmp = File::Temp->newdir('sc-segment-XXXXXX', TMPDIR => 1);
    push @TMP, $tmp;
    chmod 0755, "$tmp";
    system('cp', glob("$repo/mod_session_cluster/*.c"), glob("$repo/mod_session_cluster/*.h"),
           glob("$repo/include/*.h"), "$tmp") == 0 or die "cp: $?";
    for my $f (sort keys %subst) {
        my ($re, $to) = @{ $subst{$f} };
        my $text = slurp("$tmp/$f");
        my $n = ($text =~ s/$re/$to/g);
        is($n, 1, "$what: $f changed ($to)") or BAIL_OUT("$f: no $re");
        open my $fh, '>', "$tmp/$f" or die "$tmp/$f: $!";
        print $fh $text;
        close $fh or die "$tmp/$f: $!";
    }
    my ($cflags, $libs) = SC::Test::module_build_flags();
    my @srcs = map { s{.*/}{}r } glob("$repo/mod_session_cluster/*.c");
    my @wc = map { "-Wc,$_" } ('-std=c11', '-D_GNU_SOURCE', @$defines, @$cflags);
    my $out = `cd '$tmp' && '$apxs' -c -o mod_session_cluster.la @wc -I. @srcs @$libs 2>&1`;
    my $so = "$tmp/.libs/mod_session_cluster.so";
    ok(-f $so, "$what: built") or diag($out), BAIL_OUT("no build: $what");
    return $so;
}

my $VERSIONS = other_build('segment versions 99', [ '-DSC_SHM_VERSION=99', '-DSC_STORE_VERSION=99' ]);
my $SIZES = other_build('segment sizes changed, versions not',
                        [],
                        'sc_shm.h' => [ qr/char verdict\[128\];/, 'char verdict[136];' ],
                        'sc_store.h' => [ qr/#define SC_STORE_BLOCK 128\b/, '#define SC_STORE_BLOCK 256' ]);

# --- a member on this build, with a session ------------------------------------------
my $c = SC::Cluster->new(members => 1, extra_conf => demo_conf($DEMO_SO));
$c->start_all;
my $m = $c->member('node1');
my $conf = SC::Cluster::_slurp($m->{conf});
my $engine = (status_of($c, 'node1') || {})->{EnginePid};

# a new session on node1 ($S)
my $S;
sub new_session {
    my ($what) = @_;
    my $r = app($c, 'node1', 'auto');
    $S = $r->{cookie};
    check(valid_sid($S, 'node1') && ($r->{counter} // '') eq '1', $c, "$what: a session is created",
          show($r));
}
new_session('this build');

# the same build after a graceful restart: the segments pass the check
$c->graceful('node1');
{
    my $r = app($c, 'node1', 'auto', $S);
    check(($r->{session} // '') eq $S && ($r->{counter} // '') eq '2', $c,
          'a graceful restart onto the same build keeps the session (counter 2)', show($r));
    unlike($c->error_log('node1', since_start => 1), qr/SC138[78]/,
           '... and refuses nothing');
}

# Loads $so by a graceful restart; the parent must exit.  What the error_log
# says from the restart on.
sub graceful_onto {
    my ($so, $what) = @_;
    my @before = $c->pids('node1');
    my $from = length $c->error_log('node1');
    my $text = $conf;
    my $n = ($text =~ s{LoadModule session_cluster_module "[^"]+"}{LoadModule session_cluster_module "$so"});
    is($n, 1, "$what: the configuration now loads it");
    SC::Cluster::_write_file($m->{conf}, $text, 0644);
    kill 'USR1', $m->{pid};
    my $gone = $c->wait_for(sub { !SC::Cluster::pid_alive($m->{pid}) }, timeout => 30);
    ok($gone, "$what: httpd's parent exits instead of running its generation");
    my $log = substr($c->error_log('node1'), $from);
    unlike($log, qr/AH0005[12]:|AH00060:|Sanitizer|runtime error:|exit signal (?!Killed|Terminated)/,
           "$what: no crash in the error_log");
    my $all_gone = $c->wait_for(sub { !grep { SC::Cluster::pid_alive($_) } @before }, timeout => 15);
    ok($all_gone, "$what: no process of node1 is left (children and engine gone): "
       . join(' ', grep { SC::Cluster::pid_alive($_) } @before));
    $m->{state} = 'exited';          # the harness saw it exit on purpose
    return $log;
}

my $TAIL = qr/; a restart cannot carry (?:it|the sessions) over: stop httpd and start it again/;

# --- other segment versions ---------------------------------------------------------------
{
    my $log = graceful_onto($VERSIONS, 'versions 99');
    like($log, qr/SC1387: mod_session_cluster was replaced by a build that lays out the status segment differently from the one httpd kept: version \Q$SHM_V\E \(this build: 99\)$TAIL/,
         'SC1387 names the status segment\'s version and this build\'s, and says to stop and start httpd');
    like($log, qr/SC1388: mod_session_cluster was replaced by a build that lays out the session store differently from the one httpd kept: version \Q$STORE_V\E \(this build: 99\)$TAIL/,
         'SC1388 names the session store\'s version and this build\'s, and says to stop and start httpd');
    unlike($log, qr/SC1236: cluster engine started|SC1350/,
           'no engine of the other build started, no retained layout refusal');

    # started afresh, the other build makes its own segments and runs
    $c->start('node1');
    my $q = status_of($c, 'node1') || {};
    check(($q->{EnginePid} // 0) > 0 && ($q->{EnginePid} // 0) != ($engine // 0), $c,
          'started afresh, the other build runs a new engine (pid ' . ($q->{EnginePid} // 'none') . ')');
    new_session('started afresh, the other build');
    unlike($c->error_log('node1', since_start => 1), qr/SC138[78]/, '... and refuses nothing');
    $c->stop('node1');
}

# --- sizes changed, versions not ---------------------------------------------------------
{
    SC::Cluster::_write_file($m->{conf}, $conf, 0644);
    $c->start('node1');
    new_session('this build again');
    my $log = graceful_onto($SIZES, 'sizes changed');
    my ($row, $row_new) = $log =~ /SC1387: .* kept: .*bytes per member row (\d+) \(this build: (\d+)\)/;
    like($log, qr/SC1387: mod_session_cluster was replaced by a build that lays out the status segment differently from the one httpd kept: bytes per member row \d+ \(this build: \d+\), bytes in all \d+ \(this build: \d+\)$TAIL/,
         'SC1387 names the member row\'s size and the segment\'s, found and this build\'s');
    is(($row_new // 0) - ($row // 0), 8, '... the row 8 bytes longer in the other build');
    like($log, qr/SC1388: mod_session_cluster was replaced by a build that lays out the session store differently from the one httpd kept: bytes per data block 128 \(this build: 256\)$TAIL/,
         'SC1388 names the data block\'s size, found and this build\'s');
    unlike($log, qr/SC138[78]: [^\n]*version/, '... and no version: the sizes were checked');
}

$c->teardown;
done_testing;
