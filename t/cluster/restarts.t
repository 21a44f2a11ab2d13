#!perl
# The engine and httpd restarts, as the other member sees them:
#   (a) two graceful restarts of node1 (event MPM) under load: node2 sees node1
#       alive all the time; node1 keeps its engine (EnginePid, Incarnation,
#       EngineStarts 1);
#   (b) node1 on prefork with MaxConnectionsPerChild 1, 200 requests (200
#       children come and go: the %P access log shows 200 distinct children,
#       none of them the parent or the engine): node2 sees node1 alive all the
#       time; node1 keeps its engine;
#   (c) a graceful restart that changes the <Cluster> block replaces node1's
#       engine (new EnginePid, EngineStarts 2); node2 sees node1 `restarting`
#       or `alive`, never `dead` or `left`, from before the restart until it
#       sees it alive with the new incarnation.
# node2 is polled every 50 ms by a forked watcher while this happens; the
# load and the watchers run until told to stop, after the events they are
# there to see (answers logged after each graceful, a sample after the
# last change), and their exit codes are checked.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Temp qw(tempdir);
use IO::Handle;
use POSIX ();
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(page parse_auto status_of member_on dump_cluster check);

$SIG{ALRM} = sub { die "restarts.t: time limit (100 s) reached\n" };
alarm 100;

my $TMP = tempdir('sc-restarts-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @KIDS;     # forked helpers still running

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

sub kid {
    my ($code) = @_;
    STDOUT->flush;
    STDERR->flush;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        $SIG{ALRM} = sub { POSIX::_exit(3) };
        alarm 60;
        my $rc = eval { $code->(); 0 } // 2;
        POSIX::_exit($rc);
    }
    push @KIDS, $pid;
    return $pid;
}

sub reap {
    my ($pid) = @_;
    my $t = time;
    while (waitpid($pid, POSIX::WNOHANG()) == 0) {
        if (time - $t > 15) { kill 'KILL', $pid; waitpid($pid, 0); last }
        sleep 0.02;
    }
    @KIDS = grep { $_ != $pid } @KIDS;
    return $?;
}

END { for (@KIDS) { kill 'KILL', $_; waitpid($_, 0) } }

# A watcher: polls $watcher's page every 50 ms and records how it sees
# $route, until stop_watch.  Each sample: [t, state, incarnation, verdict].
my $WATCH_SEQ = 0;
sub start_watch {
    my ($c, $watcher, $route) = @_;
    my $file = "$TMP/watch-" . ++$WATCH_SEQ;
    my $pid = kid(sub {
        open my $fh, '>', $file or die;
        $fh->autoflush(1);
        while (!-e "$file.stop") {
            my $t = time;
            my ($s, undef, $b) = $c->get($watcher, '/cluster-manager?auto', timeout => 2);
            my ($state, $inc, $v) = ('noanswer', '-', "HTTP $s");
            if ($s == 200) {
                my $p = parse_auto($b);
                my ($m) = grep { $_->{route} eq $route } @{ $p->{members} };
                ($state, $inc, $v) = $m ? ($m->{state}, $m->{incarnation}, $m->{verdict})
                                        : ('absent', '-', '');
            }
            printf $fh "%.3f\t%s\t%s\t%s\n", $t, $state, $inc, $v;
            my $left = 0.05 - (time - $t);
            sleep $left if $left > 0;
        }
    });
    return { pid => $pid, file => $file, started => time };
}

# The samples taken so far.
sub samples_of {
    my ($w) = @_;
    open my $fh, '<', $w->{file} or return [];
    my @samples = map { chomp; [ split /\t/, $_, 4 ] } grep { /\n\z/ } <$fh>;
    return \@samples;
}

sub stop_watch {
    my ($w, $what) = @_;
    open my $s, '>', "$w->{file}.stop" or die;
    close $s;
    is(reap($w->{pid}), 0, "$what: the watcher exited 0");
    return samples_of($w);
}

sub summary {
    my ($samples) = @_;
    my (@out, $prev);
    for my $s (@$samples) {
        my $k = "$s->[1] $s->[2] $s->[3]";
        next if defined $prev && $k eq $prev;
        push @out, sprintf('%.3f %s inc=%s "%s"', $s->[0], $s->[1], $s->[2], $s->[3]);
        $prev = $k;
    }
    return join("\n", @out);
}

# The load's requests (tagged load=1) in node1's access log.
sub load_lines {
    my ($c) = @_;
    open my $fh, '<', $c->member('node1')->{access_log} or return 0;
    my $n = grep { /[?&]load=1\b/ } <$fh>;
    close $fh;
    return $n;
}

# GETs $path from $n in a loop until wait_load (at most 40 s); wait_load
# returns a hash ref of status => count from the child process.
sub start_load {
    my ($c, $n, $path) = @_;
    my $file = "$TMP/load-" . ++$WATCH_SEQ;
    my $pid = kid(sub {
        my %count;
        my $end = time + 40;
        while (time < $end && !-e "$file.stop") {
            my ($s, $h) = $c->get($n, $path, timeout => 5);
            $count{$s}++;
            $count{"error: $h->{_error}"}++ if !$s && $h->{_error};
        }
        open my $fh, '>', $file or die;
        print $fh "$_\t$count{$_}\n" for keys %count;
        close $fh;
    });
    return { pid => $pid, file => $file };
}

sub wait_load {
    my ($l, $what) = @_;
    open my $s, '>', "$l->{file}.stop" or die;
    close $s;
    is(reap($l->{pid}), 0, "$what: the load client exited 0");
    my %count;
    if (open my $fh, '<', $l->{file}) {
        while (<$fh>) { chomp; my ($k, $v) = split /\t/; $count{$k} = $v }
    }
    return \%count;
}

my $SENDER = qq{    <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">\n}
           . qq{      <Transport className="org.apache.catalina.tribes.transport.nio.PooledParallelSender" timeout="1500"/>\n}
           . qq{    </Sender>\n};

# ---------------------------------------------------------------------------
# (a) and (c): event MPM
# ---------------------------------------------------------------------------
{
    my $c = SC::Cluster->new(members => 2);
    $c->start_all;
    ok($c->wait_for(sub { my $m = member_on($c, 'node2', 'node1'); $m && $m->{state} eq 'alive' },
                    timeout => 3), '(a) node2 sees node1 alive')
        or dump_cluster($c, 'startup');
    my $p0 = status_of($c, 'node1');
    my $parent = $c->member('node1')->{pid};

    my $w = start_watch($c, 'node2', 'node1');
    ok($c->wait_for(sub { @{ samples_of($w) } >= 1 }, timeout => 20), '(a) the watcher of node2 is sampling');
    my $load = start_load($c, 'node1', '/cluster-manager?auto&load=1');
    # each graceful once the load is answered (again): 5 more answers logged
    my $n_load = 0;
    my $more = sub {
        my $want = $n_load + 5;
        my $ok = $c->wait_for(sub { ($n_load = load_lines($c)) >= $want }, timeout => 20);
        return $ok;
    };
    ok($more->(), '(a) the load is answered before the first graceful');
    my $t_g1 = time;
    my $g1 = eval { $c->graceful('node1') };
    ok($g1, '(a) first graceful restart of node1 done') or diag $@;
    ok($more->(), '(a) the load is answered after the first graceful');
    my $g2 = eval { $c->graceful('node1') };
    ok($g2, '(a) second graceful restart of node1 done') or diag $@;
    ok($more->(), '(a) the load is answered after the second graceful');
    my $counts = wait_load($load, '(a)');
    # the watch ends on node2 holding a heartbeat node1 sent after the
    # gracefuls, and a sample taken after that
    my $up = (status_of($c, 'node1') || {})->{EngineUptimeMs} // 0;
    my $t_hb;
    ok($c->wait_for(sub { my $m = member_on($c, 'node2', 'node1');
                          $t_hb = time if $m && ($m->{alive_ms} // 0) > $up; $t_hb }, timeout => 20),
       '(a) node2 holds a heartbeat node1 sent after the gracefuls');
    ok($c->wait_for(sub { grep { $_->[0] > ($t_hb // 9e9) } @{ samples_of($w) } }, timeout => 20),
       '(a) the watcher sampled node2 after that');
    my $samples = stop_watch($w, '(a)');

    is($c->member('node1')->{pid}, $parent, '(a) node1 kept its parent process');
    my @resumed = $c->error_log('node1') =~ /resuming normal operations/g;
    is(scalar @resumed, 3, '(a) node1 logged "resuming normal operations" 3 times (start + 2 gracefuls)');
    my $ok200 = $counts->{200} // 0;
    my @bad = grep { $_ ne '200' } keys %$counts;
    cmp_ok($ok200, '>', 20, "(a) the load got $ok200 answers 200 from node1");
    ok(!@bad, '(a) no request of the load failed during the gracefuls')
        or diag(explain $counts);

    ok(@$samples && $samples->[0][0] < $t_g1 && $samples->[-1][0] > ($t_hb // 9e9),
       '(a) node2 was polled from before the first graceful until after that heartbeat ('
       . scalar(@$samples) . ' samples)');
    my @not_alive = grep { $_->[1] ne 'alive' } @$samples;
    check(!@not_alive, $c, '(a) node1 was alive on node2 in every sample during the gracefuls',
          summary($samples));
    my %incs = map { $_->[2] => 1 } @$samples;
    is(scalar(keys %incs), 1, '(a) node2 saw one incarnation of node1 throughout');

    my $p1 = status_of($c, 'node1');
    is($p1->{EnginePid}, $p0->{EnginePid}, '(a) node1 EnginePid unchanged after the gracefuls');
    is($p1->{Incarnation}, $p0->{Incarnation}, '(a) node1 Incarnation unchanged');
    is($p1->{EngineStarts}, 1, '(a) node1 EngineStarts stays 1');
    is($p1->{EngineState}, 'ready', '(a) node1 engine ready');
    my $m2 = member_on($c, 'node1', 'node2');
    is($m2 && $m2->{state}, 'alive', '(a) node1 still sees node2 alive');
    my (undef, undef, $pb) = SC::Test::page_ping($c, 'node1', 'node2');
    like($pb // '', qr/^Result: acknowledged$/m, '(a) ping node1 -> node2 acknowledged after the gracefuls')
        or diag $pb;

    # (c) a graceful restart that changes the cluster block ------------------
    $c->configure('node1', cluster => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all);
        $x =~ s{(  </Channel>)}{$SENDER$1} or die "no </Channel> in the static block";
        return $x;
    });
    my $before = status_of($c, 'node1');
    $w = start_watch($c, 'node2', 'node1');
    ok($c->wait_for(sub { @{ samples_of($w) } >= 1 }, timeout => 20), '(c) the watcher of node2 is sampling');
    my $t0 = time;
    my $g3 = eval { $c->graceful('node1') };
    ok($g3, '(c) graceful restart of node1 with a changed <Cluster> block done') or diag $@;
    note(sprintf '(c) the graceful took %.2fs', time - $t0);
    # the watch ends when node2 sees the new engine alive (and a sample
    # shows it), not after a while
    my $new_inc;
    ok($c->wait_for(sub {
        my $p = status_of($c, 'node1') or return 0;
        return 0 unless ($p->{EnginePid} // '') ne ($before->{EnginePid} // '') && ($p->{EngineState} // '') eq 'ready';
        $new_inc = $p->{Incarnation};
        my $m = member_on($c, 'node2', 'node1');
        return $m && $m->{state} eq 'alive' && ($m->{incarnation} // '') eq ($new_inc // '-');
    }, timeout => 20), '(c) node2 sees the new engine of node1 alive');
    ok($c->wait_for(sub { grep { $_->[1] eq 'alive' && $_->[2] eq ($new_inc // '-') } @{ samples_of($w) } },
                    timeout => 20), '(c) the watcher sampled it');
    $samples = stop_watch($w, '(c)');

    my $after = status_of($c, 'node1') || {};
    like(page($c, 'node1') // '', qr/^Transport\.timeout = 1500\b/m, '(c) node1 runs the changed block');
    isnt($after->{EnginePid}, $before->{EnginePid}, "(c) node1 has a new EnginePid ($after->{EnginePid})");
    is($after->{EngineStarts}, 2, '(c) node1 EngineStarts 2');
    is($after->{EngineState}, 'ready', '(c) the new engine is ready');
    isnt($after->{Incarnation}, $before->{Incarnation}, '(c) the new engine has a new incarnation');
    ok(!SC::Cluster::pid_alive($before->{EnginePid}), "(c) the old engine $before->{EnginePid} is gone");

    is($samples->[0] && "$samples->[0][1] $samples->[0][2]", "alive $before->{Incarnation}",
       '(c) the watch began before the restart (the old incarnation alive)');
    ok(scalar(grep { $_->[1] eq 'alive' && $_->[2] eq ($new_inc // '-') } @$samples),
       '(c) ... and went on until node2 showed the new one alive (' . scalar(@$samples) . ' samples)');
    my @wrong = grep { $_->[1] ne 'alive' && $_->[1] ne 'restarting' } @$samples;
    check(!@wrong, $c, '(c) node1 was only ever restarting or alive on node2 (never dead, left, ...)',
          summary($samples));
    my $last = $samples->[-1] || [];
    is($last->[1], 'alive', '(c) the last sample shows node1 alive on node2');
    my $m1 = member_on($c, 'node2', 'node1') || {};
    is($m1->{state}, 'alive', '(c) node1 alive on node2 at the end');
    is($m1->{incarnation}, $after->{Incarnation}, '(c) node2 knows the new incarnation of node1');
    is($m1->{restarts}, 1, '(c) node2 counts one restart of node1');
    note("(c) node1 on node2 over time:\n" . summary($samples));
    my $m2c = member_on($c, 'node1', 'node2') || {};
    is($m2c->{state}, 'alive', '(c) the new engine of node1 sees node2 alive');

    for my $n ($c->members) {
        unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "(a,c) $n: no crash in the error_log");
    }
    $c->teardown;
}

# ---------------------------------------------------------------------------
# (b) prefork, MaxConnectionsPerChild 1
# ---------------------------------------------------------------------------
{
    my $c = SC::Cluster->new(
        members     => 2,
        # every child serves one connection; more spare children and
        # parallel clients so that 200 requests (200 children) take seconds,
        # not half a minute (prefork spawns at most 32 children a second)
        member_opts => { node1 => { mpm => 'prefork', extra_conf => sub {
            my ($m) = @_;
            return "MaxConnectionsPerChild 1\nServerLimit 64\nMaxRequestWorkers 64\n"
                 . "StartServers 32\nMinSpareServers 32\nMaxSpareServers 64\n"
                 # which child served which request
                 . qq{LogFormat "%P %U%q" scpid\nCustomLog "$m->{dir}/logs/pid_log" scpid\n};
        } } },
    );
    $c->start_all;
    ok($c->wait_for(sub { my $m = member_on($c, 'node2', 'node1'); $m && $m->{state} eq 'alive' },
                    timeout => 20), '(b) node2 sees node1 alive')
        or dump_cluster($c, 'startup (b)');
    my $p0 = status_of($c, 'node1');

    my $w = start_watch($c, 'node2', 'node1');
    ok($c->wait_for(sub { @{ samples_of($w) } >= 1 }, timeout => 20), '(b) the watcher of node2 is sampling');
    my $t0 = time;
    my %count;
    my @loads;
    for my $k (1 .. 4) {
        my $file = "$TMP/prefork-$k";
        my $pid = kid(sub {
            my %n;
            for my $i (1 .. 50) {
                my ($s) = $c->get('node1', "/index.html?c=$k-$i", timeout => 10);
                $n{$s}++;
            }
            open my $fh, '>', $file or die;
            print $fh "$_\t$n{$_}\n" for keys %n;
            close $fh;
        });
        push @loads, [ $pid, $file ];
    }
    my $k = 0;
    for my $l (@loads) {
        $k++;
        is(reap($l->[0]), 0, "(b) client $k exited 0");
        open my $fh, '<', $l->[1] or next;
        while (<$fh>) { chomp; my ($k, $v) = split /\t/; $count{$k} += $v }
    }
    note(sprintf '(b) 200 requests took %.1fs', time - $t0);
    is($count{200} // 0, 200, '(b) 200 requests to node1 (4 clients) answered 200')
        or diag explain \%count;

    # 200 children came and went: each request served by a child of its own
    # (the access log line is written after the answer: wait for all 200)
    my %by;
    $c->wait_for(sub {
        %by = ();
        open my $fh, '<', $c->member('node1')->{dir} . '/logs/pid_log' or return 0;
        while (<$fh>) { $by{$2} = $1 if /^(\d+) \S*[?&]c=(\d+-\d+)/ }
        return keys(%by) >= 200;
    }, timeout => 20);
    my %kids = map { $_ => 1 } values %by;
    is(scalar keys %by, 200, '(b) node1\'s %P log has the 200 requests');
    is(scalar keys %kids, 200, '(b) ... served by 200 different child processes');
    ok(!$kids{ $c->member('node1')->{pid} } && !$kids{ $p0->{EnginePid} // 0 },
       '(b) ... none of them the httpd parent or the engine');
    my @left;
    ok($c->wait_for(sub { @left = grep { SC::Cluster::pid_alive($_) } keys %kids; !@left }, timeout => 20),
       '(b) ... and every one of them has exited') or diag("still there: @left");

    my $up = (status_of($c, 'node1') || {})->{EngineUptimeMs} // 0;
    my $t_hb;
    ok($c->wait_for(sub { my $m = member_on($c, 'node2', 'node1');
                          $t_hb = time if $m && ($m->{alive_ms} // 0) > $up; $t_hb }, timeout => 20),
       '(b) node2 holds a heartbeat node1 sent after the 200 children');
    ok($c->wait_for(sub { grep { $_->[0] > ($t_hb // 9e9) } @{ samples_of($w) } }, timeout => 20),
       '(b) the watcher sampled node2 after that');
    my $samples = stop_watch($w, '(b)');

    my $p1 = status_of($c, 'node1') || {};
    is($p1->{EnginePid}, $p0->{EnginePid}, '(b) node1 EnginePid unchanged');
    is($p1->{Incarnation}, $p0->{Incarnation}, '(b) node1 Incarnation unchanged');
    is($p1->{EngineStarts}, 1, '(b) node1 EngineStarts stays 1');
    ok(@$samples && $samples->[0][0] < $t0 && $samples->[-1][0] > ($t_hb // 9e9),
       '(b) node2 was polled from before the requests until after that heartbeat ('
       . scalar(@$samples) . ' samples)');
    my @not_alive = grep { $_->[1] ne 'alive' } @$samples;
    check(!@not_alive, $c, '(b) node1 was alive on node2 in every sample', summary($samples));
    my %incs = map { $_->[2] => 1 } @$samples;
    is(scalar(keys %incs), 1, '(b) node2 saw one incarnation of node1 throughout');
    my $m = member_on($c, 'node2', 'node1') || {};
    is($m->{restarts}, 0, '(b) node2 counts no restart of node1');
    unlike($c->error_log('node1'), qr/exit signal|Segmentation|cluster engine \(pid \d+\) died/,
           '(b) no crash and no engine death in node1 error_log');
    $c->teardown;
}

done_testing();
