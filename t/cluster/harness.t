#!perl
# Proves t/lib/SC/Cluster.pm, the multi-member harness the cluster tests use:
# members start, answer on /cluster-manager with their own route, stop cleanly
# on SIGTERM, die on kill9 without hurting the others, come back on restart,
# freeze on sigstop (a request sent meanwhile is answered after sigcont),
# survive a graceful restart; teardown leaves nothing behind, also when the
# test script dies or is killed with SIGTERM; a member that hangs at stop,
# leaves processes behind or crashed fails the test script that stopped it
# (explicit stop, a fixed plan, done_testing, teardown from DESTROY or END),
# and one that was kill9ed or left frozen does not; with netns => 1 members
# sit in their own namespaces and can be cut off and healed; a member's env
# reaches every process of its httpd and no other.  Nothing here is timed:
# deadlines are polling limits.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use SC::Cluster;

# A process is gone when /proc has no live entry for it.  (Not `kill 0`: the
# daemonised httpd parent is reaped by PID 1, which may do so lazily; a zombie
# has exited but still answers kill 0.)
sub gone { !SC::Cluster::pid_alive($_[0]) }

sub route_of {
    my ($body) = @_;
    return $body =~ /^Route: (\S*)$/m ? $1 : '(no Route line)';
}

# The environment of a process (/proc/PID/environ), '' if gone.
sub environ_of {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/environ" or return '';
    local $/;
    return <$fh> // '';
}

# The state letter of a process in /proc/PID/stat (T: stopped), or '' if gone.
sub proc_state {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return '';
    my $s = <$fh> // '';
    return $s =~ /\)\s+(\S)/ ? $1 : '';
}

# ---------------------------------------------------------------------------
# A member that hangs or crashes at stop fails the test script; kill9 and a
# member left frozen do not
# ---------------------------------------------------------------------------
# Two test scripts run side by side (their own Test::More; their TAP and exit
# status are what is checked here):
#   A (done_testing; the cluster torn down in END, after the plan is printed):
#     hang   its ErrorLog is a piped logger that ignores SIGTERM: httpd waits
#            3 s for it before it SIGKILLs it, so stop(timeout => 1) finds
#            the parent still running -> a failed test, stop returns 0; the
#            harness kills both its loggers (httpd starts one before it
#            daemonises, which is no descendant of its parent);
#     orphan its piped logger starts a process that ignores SIGTERM and
#            outlives httpd -> "left processes behind";
#     seg    one of its MPM children gets SIGSEGV (the test waits for httpd's
#            AH00052 about it), and a sanitizer report names its parent's pid
#            (SC_SANITIZER_LOGS) -> two failed tests;
#     engstop its engine is SIGSTOPped and stop(cont => 0) leaves it so:
#            httpd SIGKILLs it after 3 s and logs nothing, the engine's
#            goodbye (SC1234) is missing -> a failed test;
#     k9     kill9ed, frozen: sigstopped and never continued -> nothing.
#   B (plan tests => 2; the cluster goes out of scope in the middle: DESTROY):
#     seg    as above -> a failed test at the end of the scope.
my $HANG_LOG   = q{ErrorLog "|/bin/sh -c 'trap \"\" TERM HUP INT USR1 PIPE; while :; do sleep 1; done'"};
my $ORPHAN_LOG = q{ErrorLog "|/bin/sh -c '(trap \"\" TERM HUP INT PIPE; exec sleep 300) & exec cat >/dev/null'"};
my $SEGV_CHILD = q{
    # the engine's pid, once its page shows one
    sub engine_pid {
        my ($c, $n) = @_;
        return $c->wait_for(sub {
            my (undef, undef, $b) = $c->get($n, '/cluster-manager?auto');
            ($b // '') =~ /^EnginePid: ([1-9]\d*)$/m ? $1 : 0;
        }, timeout => 20);
    }
    sub segv_child {
        my ($c, $n) = @_;
        my $engine = engine_pid($c, $n);
        my ($parent, @kids) = $c->pids($n);
        my @workers = grep { $_ != ($engine // 0) } @kids;
        ok($engine && @workers, "$n: an MPM child to crash (@workers; engine " . ($engine // '?') . ')');
        kill 'SEGV', $workers[0] if @workers;
        ok($c->wait_for(sub { $c->error_log($n) =~ /AH0005[12]: child pid $workers[0] exit signal/ },
                        timeout => 30), "$n: httpd logged the crash of $workers[0]");
    }
};
my $SCRIPT_A = $SEGV_CHILD . q{
    my $c = SC::Cluster->new(members => [qw(hang orphan seg engstop k9 frozen)],
                             member_opts => { hang => { extra_conf => "$ENV{HANG_LOG}\n" },
                                              orphan => { extra_conf => "$ENV{ORPHAN_LOG}\n" } });
    $c->start_all;
    ok(1, 'six members started');
    segv_child($c, 'seg');
    my $rep = "$ENV{SC_SANITIZER_LOGS}/asan." . $c->member('seg')->{pid};
    open my $fh, '>', $rep or die "$rep: $!";
    print $fh "==1==ERROR: AddressSanitizer: heap-use-after-free (a report the test wrote)\n";
    close $fh;
    $c->kill9('k9');
    $c->sigstop('frozen');
    my $r = $c->stop('hang', timeout => 1);
    print "stop-hang-returned=$r\n";
    my $engine = engine_pid($c, 'engstop');
    ok($engine && SC::Cluster::freeze_pids($engine), "engstop: its engine $engine is frozen");
    $r = $c->stop('engstop', cont => 0);
    print "stop-engstop-returned=$r engine-alive=", (SC::Cluster::pid_alive($engine) ? 1 : 0), "\n";
    done_testing();
};
my $SCRIPT_B = $SEGV_CHILD . q{
    plan tests => 3;
    {
        my $c = SC::Cluster->new(members => [qw(seg)]);
        $c->start_all;
        segv_child($c, 'seg');
    }
    ok(1, 'after the scope of the cluster');
};

# Starts perl -e $code (with Test::More and SC::Cluster) in the background,
# stdout and stderr to a file: [pid, file].
sub start_script {
    my ($code, %env) = @_;
    my $out = File::Temp->new(TEMPLATE => 'sc-harness-XXXXXX', TMPDIR => 1);
    STDOUT->flush;
    STDERR->flush;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        delete $ENV{SC_KEEP};
        @ENV{keys %env} = values %env;
        open STDOUT, '>', $out->filename or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec';
          exec $^X, "-I$FindBin::Bin/../lib", '-MTest::More', '-MSC::Cluster', '-e', $code; }
        POSIX::_exit(127);
    }
    return [ $pid, $out ];
}

# Waits for it (at most 120 s: a polling limit): ($exit status, output).
sub finish_script {
    my ($h) = @_;
    my $deadline = time + 120;
    while (waitpid($h->[0], POSIX::WNOHANG()) == 0) {
        if (time > $deadline) { kill 'KILL', $h->[0]; waitpid($h->[0], 0); last }
        sleep 0.05;
    }
    my $st = $?;
    open my $fh, '<', $h->[1]->filename or return ($st, '');
    local $/;
    return ($st, scalar <$fh>);
}

# they run while the rest of this file does
my $reports = tempdir('sc-harness-reports-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 01777, $reports;
# the cores of the deliberate crashes go to a directory of this test's own
# (with cores on: build/test.sh's SC_CORE_DIR), not the run's cores/, where
# Apache::Test's later tests report every core they find as a crash of theirs
my @cores;
if ($ENV{SC_CORE_DIR}) {
    my $dir = tempdir('sc-harness-cores-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 01777, $dir;
    @cores = (SC_CORE_DIR => $dir);
}
my $ha = start_script($SCRIPT_A, HANG_LOG => $HANG_LOG, ORPHAN_LOG => $ORPHAN_LOG,
                      SC_SANITIZER_LOGS => $reports, @cores);
my $hb = start_script($SCRIPT_B, SC_SANITIZER_LOGS => $reports, @cores);

# ---------------------------------------------------------------------------
# 1 + 3: three members on loopback, static membership
# ---------------------------------------------------------------------------
{
    my $c = SC::Cluster->new(members => 3,
                             member_opts => { node2 => { env => { SC_HARNESS_ENV => 'node2 only' } } });
    my @names = $c->members;
    is_deeply(\@names, [qw(node1 node2 node3)], 'members => 3 makes node1..node3');

    my $t0 = time;
    ok(eval { $c->start_all; 1 }, 'start_all: three members start') or diag $@;
    note(sprintf 'start_all took %.2fs', time - $t0);

    my (%pid, %ports);
    for my $n (@names) {
        my $m = $c->member($n);
        my ($status, $h, $body) = $c->get($n, '/cluster-manager?auto');
        is($status, 200, "$n: GET /cluster-manager?auto answers 200")
            or diag explain $h;
        like($h->{'content-type'} || '', qr{^text/plain}, "$n: as text/plain");
        is(route_of($body), $n, "$n: the page says Route: $n");
        # the default <Cluster> block lists the two other members
        my @others = grep { $_ ne $n } @names;
        for my $o (@others) {
            my $p = $c->member($o)->{cluster_port};
            like($body, qr/^Member\.\d+\.port = $p\b/m,
                 "$n: its block lists $o (port $p) as a static member");
        }
        unlike($body, qr/^Member\.\d+\.port = $m->{cluster_port}\b/m,
               "$n: its block does not list itself");
        like($body, qr/^Receiver\.port = $m->{cluster_port}\b/m,
             "$n: its Receiver listens on its own cluster port");

        my $conf = do { local (@ARGV, $/) = $m->{conf}; <> };
        like($conf, qr/^<Cluster className=/m, "$n: <Cluster starts a line of httpd.conf");
        like($conf, qr{^</Cluster>$}m, "$n: </Cluster> is a line of its own");

        $pid{$n} = $m->{pid};
        ok($m->{pid} && !gone($m->{pid}), "$n: pid $m->{pid} is alive");
        $ports{$_}++ for $m->{http_port}, $m->{cluster_port};
    }
    is(scalar(keys %{ { reverse %pid } }), 3, 'the three parent pids are distinct');
    is(scalar(keys %ports), 6, 'six distinct ports (http and cluster for each member)');

    # -- env: node2's processes (parent, children, engine) and only they
    for my $n (@names) {
        my @p = $c->pids($n);
        my @with = grep { environ_of($_) =~ /(?:\A|\0)SC_HARNESS_ENV=node2 only(?:\0|\z)/ } @p;
        if ($n eq 'node2') {
            ok(@p >= 3 && @with == @p, "env: every process of node2 (@p) has SC_HARNESS_ENV")
                or diag("with it: @with");
        }
        else {
            ok(@p >= 3 && !@with, "env: no process of $n (@p) has SC_HARNESS_ENV");
        }
    }
    ok(!exists $ENV{SC_HARNESS_ENV}, "env: the test script's own environment is as it was");

    # -- kill9: a crash of node2 -------------------------------------------
    my @children = grep { $_ != $pid{node2} } $c->pids('node2');
    ok(@children >= 1, 'node2 has child processes (' . join(',', @children) . ')');
    my @killed = $c->kill9('node2');
    ok((grep { $_ == $pid{node2} } @killed), 'kill9 names the parent among the killed');
    ok(gone($pid{node2}), "kill9: no process with node2's pid $pid{node2} is left");
    ok(!(grep { !gone($_) } @children), "kill9: node2's children are gone too");
    is($c->member('node2')->{pid}, undef, 'kill9: node2 has no pid any more');
    my ($ks, $kh) = $c->get('node2', '/cluster-manager?auto', timeout => 5);
    ok($ks == 0 && ($kh->{_error} // '') =~ /^connect .*refused/i,
       "kill9: node2's port refuses connections (" . ($kh->{_error} // "status $ks") . ')');
    for my $n (qw(node1 node3)) {
        my ($status, undef, $body) = $c->get($n, '/cluster-manager?auto');
        ok($status == 200 && route_of($body) eq $n, "after kill9 of node2, $n still answers");
    }
    # every process was frozen before the first SIGKILL: the engine never saw
    # its parent die (SC1237) nor said goodbye (SC1234), and the others find
    # node2 dead, not left.  (Its processes are gone: its log is final.)
    unlike($c->error_log('node2', since_start => 1), qr/SC1237|SC1234/,
           'kill9: node2\'s engine did not outlive its parent (no SC1237, no SC1234 goodbye)');
    my $row;
    $c->wait_for(sub {
        my (undef, undef, $b) = $c->get('node1', '/cluster-manager?auto', timeout => 3);
        ($row) = ($b // '') =~ /^(Member: route=node2 .*)$/m;
        return $row && $row !~ / state=alive /;
    }, timeout => 20);
    like($row // '', qr/ state=dead /, 'kill9: node1 finds node2 dead (not left)') or diag($row);

    # -- restart after the crash -------------------------------------------
    ok(eval { $c->restart('node2'); 1 }, 'restart: node2 starts again') or diag $@;
    my $new = $c->member('node2')->{pid};
    ok($new && $new != $pid{node2} && !gone($new), "restart: node2 runs as new pid $new");
    is(route_of(($c->get('node2', '/cluster-manager?auto'))[2]), 'node2',
       'restart: node2 answers with its route');
    $pid{node2} = $new;

    # -- sigstop / sigcont -------------------------------------------------
    # A request sent to the frozen member is not answered while it is frozen,
    # and is answered once it goes on: the silence was the freeze.
    my @frozen = $c->sigstop('node3');
    my @not_t = grep { proc_state($_) ne 'T' } @frozen;
    ok(@frozen >= 2 && !@not_t, "sigstop: node3's processes (@frozen) are all stopped (state T)")
        or diag("not in state T: " . join(' ', map { "$_=" . proc_state($_) } @not_t));
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->member('node3')->{http_port},
                                     Proto => 'tcp', Timeout => 5);
    ok($sock, 'sigstop: the kernel still accepts a connection to node3') or diag("connect: $@");
    my $answer = '';
    if ($sock) {
        print $sock "GET /cluster-manager?auto HTTP/1.0\r\nHost: localhost\r\n\r\n";
        my $sel = IO::Select->new($sock);
        ok(!$sel->can_read(1), 'sigstop: nothing answers the request while node3 is frozen');
        $c->sigcont('node3');
        my $deadline = time + 20;
        while (time < $deadline && $sel->can_read($deadline - time)) {
            my $n = sysread($sock, $answer, 65536, length $answer);
            last unless $n;
        }
        close $sock;
    }
    else {
        fail('sigstop: no request could be sent');
        $c->sigcont('node3');
    }
    like($answer, qr{\AHTTP/1\.\d 200 .*^Route: node3$}ms,
         'sigcont: the request sent while frozen is answered (200, Route: node3)')
        or diag(substr($answer, 0, 300));
    ok(!(grep { proc_state($_) eq 'T' } @frozen), "sigcont: none of node3's processes is stopped any more");

    # -- graceful restart --------------------------------------------------
    my $g = eval { $c->graceful('node1') };
    is($g, $pid{node1}, 'graceful: node1 keeps its parent pid') or diag $@;
    my @resumed = $c->error_log('node1') =~ /resuming normal operations/g;
    is(scalar @resumed, 2, 'graceful: node1 logged "resuming normal operations" twice');
    is(($c->get('node1', '/cluster-manager?auto'))[0], 200, 'graceful: node1 answers');

    # -- clean stops -------------------------------------------------------
    for my $n (@names) {
        my @procs = $c->pids($n);
        my $clean = $c->stop($n);
        ok($clean, "stop $n: it went down on SIGTERM, with its children, and no crash");
        ok(@procs >= 2 && !(grep { !gone($_) } @procs), "stop $n: its processes (@procs) are gone");
        my $log = $c->error_log($n);
        unlike($log, qr/\[[^\]]*:emerg\]/, "stop $n: no [emerg] in its error_log");
        like($log, qr/caught SIGTERM, shutting down/, "stop $n: error_log has the shutdown notice");
        like($log, qr/SC1234: cluster engine stopped: peers were told it left/,
             "stop $n: its engine stopped and told the others (SC1234)");
    }
    is_deeply([ $c->problems ], [], 'no member hung or crashed at stop');
    my $base = $c->base_dir;
    ok(-d $base, "member directories exist under $base");
    $c->teardown;
    if ($ENV{SC_KEEP}) { ok(-d $base, 'SC_KEEP: teardown keeps the member directories') }
    else               { ok(!-e $base, 'teardown removes the member directories') }
}

# ---------------------------------------------------------------------------
# Teardown when the test script dies, or gets SIGTERM
# ---------------------------------------------------------------------------
sub run_child {
    my ($code, $on_started) = @_;
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        close $r;
        delete $ENV{SC_KEEP};    # these scripts are about removing everything
        open STDOUT, '>&', $w or die;
        open STDERR, '>', '/dev/null';
        { no warnings 'exec'; exec $^X, "-I$FindBin::Bin/../lib", '-MSC::Cluster', '-e', $code; }
        POSIX::_exit(127);
    }
    close $w;
    my $line = <$r>;
    my ($hpid, $base) = defined $line ? split(' ', $line) : ();
    $on_started->($pid) if $on_started && $hpid;
    my $t = time;
    while (waitpid($pid, POSIX::WNOHANG()) == 0) {
        if (time - $t > 30) { kill 'KILL', $pid; waitpid($pid, 0); last }
        sleep 0.05;
    }
    return ($? , $hpid, $base);
}

{
    require POSIX;
    my ($status, $hpid, $base) = run_child(q{
        $| = 1;
        my $c = SC::Cluster->new(members => 1);
        $c->start_all;
        print $c->member('node1')->{pid}, ' ', $c->base_dir, "\n";
        die "the test died\n";
    });
    ok($hpid, "a script that dies after starting a member (pid " . ($hpid // '?') . ")");
    isnt($status, 0, 'the script exited with an error');
    ok($hpid && gone($hpid), 'its httpd is gone after the script died');
    ok($base && !-e $base, 'its member directories are gone');

    ($status, $hpid, $base) = run_child(q{
        $| = 1;
        my $c = SC::Cluster->new(members => 1);
        $c->start_all;
        print $c->member('node1')->{pid}, ' ', $c->base_dir, "\n";
        sleep 60;
    }, sub { kill 'TERM', $_[0] });
    ok($hpid, "a script killed with SIGTERM while a member runs (pid " . ($hpid // '?') . ")");
    is($status & 127, 15, 'the script died of SIGTERM');
    ok($hpid && gone($hpid), 'its httpd is gone after SIGTERM');
    ok($base && !-e $base, 'its member directories are gone');
}

# ---------------------------------------------------------------------------
# 2: two members in network namespaces
# ---------------------------------------------------------------------------
sub our_namespaces {
    my $out = `ip netns list 2>/dev/null`;
    return grep { /^sc(?:br)?-$$-/ } map { (split ' ', $_)[0] } split /\n/, $out;
}

NETNS: {
    my $why = SC::Cluster->netns_unavailable;
    # CI runs as root: a host where namespaces cannot be made fails here
    if ($why) {
        fail("netns: $why");
        last NETNS;
    }

    my $c = SC::Cluster->new(members => 2, netns => 1);
    my @ns = $c->netns_names;
    is_deeply([ sort(our_namespaces()) ], [ sort @ns ],
              "ip netns list shows the bridge and member namespaces (@ns)");
    ok(eval { $c->start_all; 1 }, 'netns: two members start') or diag $@;

    my ($m1, $m2) = map { $c->member($_) } qw(node1 node2);
    like($m1->{addr}, qr/^10\.200\.\d+\.1$/, "netns: node1 has address $m1->{addr}");
    like($m2->{addr}, qr/^10\.200\.\d+\.2$/, "netns: node2 has address $m2->{addr}");
    for my $m ($m1, $m2) {
        my ($status, $h, $body) = $c->get($m->{name}, '/cluster-manager?auto');
        ok($status == 200 && route_of($body) eq $m->{name},
           "netns: $m->{name} answers on $m->{addr}:$m->{http_port} with Route: $m->{name}")
            or diag explain $h;
    }
    my ($rc, $routes) = $c->exec_in('node1', 'ip', 'route', 'show', '224.0.0.0/4');
    like($routes, qr{^224\.0\.0\.0/4 dev eth0}m, 'netns: multicast is routed to eth0');

    is(($c->get('node2', '/cluster-manager?auto', from => 'node1'))[0], 200,
       'netns: node1 reaches node2 over the bridge (HTTP from inside node1)');
    ok($c->can_connect('node1', 'node2'), 'netns: TCP connect node1 -> node2 works');

    $c->partition('node2');
    my $link = `ip -n ${\ ($c->netns_names)[0] } -o link show $m2->{host_if} 2>&1`;
    ok($? == 0 && $link =~ /state DOWN/ && $link !~ /[<,]UP[,>]/,
       "partition: node2's bridge-side veth $m2->{host_if} is down") or diag($link);
    my ($st, $h) = $c->get('node2', '/cluster-manager?auto', from => 'node1', timeout => 2);
    is($st, 0, "partition: node1 cannot reach node2 ($h->{_error})");
    ok(!$c->can_connect('node1', 'node2', timeout => 1), 'partition: TCP connect fails');
    is(($c->get('node2', '/cluster-manager?auto'))[0], 200,
       'partition: node2 itself still runs and answers inside its namespace');

    $c->heal('node2');
    ok($c->wait_for(sub { $c->can_connect('node1', 'node2', timeout => 1) }, timeout => 20),
       'heal: TCP connect node1 -> node2 works again');
    is(($c->get('node2', '/cluster-manager?auto', from => 'node1'))[0], 200,
       'heal: node1 gets node2 over HTTP again');

    my @pids = map { $_->{pid} } $m1, $m2;
    $c->teardown;
    ok(!(grep { !gone($_) } @pids), 'netns teardown: both httpds are gone');
    is_deeply([ our_namespaces() ], [], "netns teardown: no sc-$$-*/scbr-$$-* namespace is left");
    if ($ENV{SC_KEEP}) { ok(-d $c->base_dir, 'netns teardown: SC_KEEP: member directories kept') }
    else               { ok(!-e $c->base_dir, 'netns teardown: member directories removed') }
}

# (the scripts started at the top: they ran meanwhile)
{
    my ($sa, $outa) = finish_script($ha);
    my ($sb, $outb) = finish_script($hb);
    my $show = sub { my $t = shift; $t =~ s/^/  | /mg; $t };

    # A
    my @nok = $outa =~ /^(not ok \d+ - .*)$/mg;
    my %kind;
    for (@nok) {
        if    (/SC::Cluster: member hang did not exit within 1s of SIGTERM/)   { $kind{hang}++ }
        elsif (/SC::Cluster: member orphan left processes behind after its parent exited on SIGTERM/) { $kind{orphan}++ }
        elsif (/SC::Cluster: member seg error_log shows a crash: .*AH0005[12]: child pid \d+ exit signal/) { $kind{seg_log}++ }
        elsif (/SC::Cluster: member seg its process \d+ left a report: \S*\/asan\.\d+/) { $kind{seg_report}++ }
        elsif (/SC::Cluster: member seg its process \d+ left a core: /) { $kind{seg_core}++ }
        elsif (/SC::Cluster: member engstop stopped, but its cluster engine did not say it stopped \(no SC1234/) { $kind{engstop}++ }
        else  { $kind{other}++ }
    }
    isnt($sa, 0, 'A (done_testing): the script fails (exit status ' . ($sa >> 8) . ')')
        or diag($show->($outa));
    is($kind{hang}, 1, 'A: a failed test says hang did not exit within 1s of SIGTERM')
        or diag($show->($outa));
    like($outa, qr/^stop-hang-returned=0$/m, 'A: ... and stop returned 0');
    like($outa, qr/^# still running:\n#   pid \d+ state \S+ ppid \d+ threads \d+ wchan \S+: \S+/m,
         'A: ... its diagnostics list the processes still running');
    my ($hang_left) = $outa =~ /member hang did not exit.*?^# still running:\n((?:#   pid [^\n]*\n)+)/ms;
    my @hl = ($hang_left // '') =~ m{^#   pid (\d+) .*: /bin/sh -c trap "" TERM}mg;
    is(scalar @hl, 2, 'A: ... among them its two piped loggers (the one of the pass before '
       . 'httpd daemonised too, which is no descendant of its parent)') or diag($show->($outa));
    ok(@hl && !(grep { !gone($_) } @hl), 'A: ... and the harness killed them (' . "@hl" . ')');
    is($kind{orphan}, 1, 'A: a failed test says orphan left processes behind');
    my ($orphan_pids) = $outa =~ /member orphan left processes behind[^:]*: pids ([\d ]+)/;
    my @op = split ' ', $orphan_pids // '';
    ok(@op && !(grep { !gone($_) } @op), 'A: ... and the harness killed them (' . "@op" . ')');
    is($kind{seg_log}, 1, 'A: a failed test says seg\'s error_log shows a crash (AH00052)');
    like($outa, qr/^# --- seg error_log tail \(/m, 'A: ... with the tail of its error_log');
    cmp_ok($kind{seg_report} // 0, '>=', 1, 'A: a failed test says a process of seg left a sanitizer report');
    # with cores on (build/test.sh: SC_CORE_DIR, ulimit -c), the crashed
    # child's core is read: its stack is in the failure's diagnostics
    like($outa, qr/^#\s+gdb \(exit 0\):\n#\s+Core was generated by .*\n(?:#.*\n)*?#\s+#0 /m,
         'A: ... and its core\'s stack (gdb), where a core was written') if $kind{seg_core};
    is($kind{engstop}, 1, 'A: a failed test says engstop\'s engine did not say it stopped (SC1234)');
    like($outa, qr/^stop-engstop-returned=0 engine-alive=0$/m, 'A: ... stop returned 0, and httpd had killed the engine');
    like($outa, qr/SC1382: the cluster engine \(pid \d+\) did not stop within 3 s of signal 15: killing it/,
         'A: ... and httpd said so in its error_log (SC1382, in the tail shown)');
    ok(!$kind{other}, 'A: no other test failed (k9, kill9ed, and frozen, left frozen, are no failures)')
        or diag(join "\n", grep { !/member (?:hang|orphan|seg|engstop) / } @nok);
    my $plan_at = $outa =~ /^1\.\.\d+$/m ? $-[0] : -1;
    my $seg_at  = $outa =~ /^not ok \d+ - SC::Cluster: member seg /m ? $-[0] : -1;
    ok($plan_at >= 0 && $seg_at > $plan_at,
       'A: the seg and orphan failures come after done_testing\'s plan (teardown in END)');
    like($outa, qr/^ok \d+ - seg: httpd logged the crash of \d+$/m, 'A: (the crash was made and logged)');

    # B
    my @nokb = $outb =~ /^(not ok \d+ - .*)$/mg;
    isnt($sb, 0, 'B (plan tests => 3): the script fails (exit status ' . ($sb >> 8) . ')')
        or diag($show->($outb));
    ok(@nokb >= 1 && !(grep { !/SC::Cluster: member seg / } @nokb)
       && $nokb[0] =~ /^not ok 3 - SC::Cluster: member seg error_log shows a crash/,
       'B: the 3rd test is the failure of seg, at the end of its scope (DESTROY), before the last ok')
        or diag($show->($outb));
    like($outb, qr/^ok \d+ - after the scope of the cluster$/m, 'B: the script went on after the scope');
}

done_testing();
