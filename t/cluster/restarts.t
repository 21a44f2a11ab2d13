#!perl
# The engine and httpd restarts, as the other member sees them:
#   (a) two graceful restarts of node1 (event MPM) under load: node2 sees node1
#       alive all the time; node1 keeps its engine (EnginePid, Incarnation,
#       EngineStarts 1);
#   (b) node1 on prefork with MaxConnectionsPerChild 1, 200 requests (200
#       children come and go): node2 sees node1 alive all the time; node1 keeps
#       its engine;
#   (c) a graceful restart that changes the <Cluster> block replaces node1's
#       engine (new EnginePid, EngineStarts 2); node2 sees node1 `restarting`
#       or `alive`, never `dead` or `left`, and alive at the end with the new
#       incarnation.
# node2 is polled every 50 ms by a forked watcher while this happens.
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

sub stop_watch {
    my ($w) = @_;
    open my $s, '>', "$w->{file}.stop" or die;
    close $s;
    reap($w->{pid});
    open my $fh, '<', $w->{file} or return [];
    my @samples = map { chomp; [ split /\t/, $_, 4 ] } <$fh>;
    return \@samples;
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

# GETs $path from $n in a loop for $secs seconds; returns a hash ref of
# status => count from a child process.
sub start_load {
    my ($c, $n, $path, $secs) = @_;
    my $file = "$TMP/load-" . ++$WATCH_SEQ;
    my $pid = kid(sub {
        my %count;
        my $end = time + $secs;
        while (time < $end) {
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
    my ($l) = @_;
    reap($l->{pid});
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
    my $load = start_load($c, 'node1', '/cluster-manager?auto', 4);
    sleep 0.5;
    my $g1 = eval { $c->graceful('node1') };
    ok($g1, '(a) first graceful restart of node1 done') or diag $@;
    sleep 0.5;
    my $g2 = eval { $c->graceful('node1') };
    ok($g2, '(a) second graceful restart of node1 done') or diag $@;
    my $counts = wait_load($load);
    sleep 0.3;
    my $samples = stop_watch($w);

    is($c->member('node1')->{pid}, $parent, '(a) node1 kept its parent process');
    my @resumed = $c->error_log('node1') =~ /resuming normal operations/g;
    is(scalar @resumed, 3, '(a) node1 logged "resuming normal operations" 3 times (start + 2 gracefuls)');
    my $ok200 = $counts->{200} // 0;
    my @bad = grep { $_ ne '200' } keys %$counts;
    cmp_ok($ok200, '>', 20, "(a) the load got $ok200 answers 200 from node1");
    ok(!@bad, '(a) no request of the load failed during the gracefuls')
        or diag(explain $counts);

    cmp_ok(scalar @$samples, '>=', 20, '(a) node2 was polled at least 20 times (' . scalar(@$samples) . ')');
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
    my (undef, undef, $pb) = $c->get('node1', '/cluster-manager?ping=node2', timeout => 8);
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
    sleep 0.2;
    my $t0 = time;
    my $g3 = eval { $c->graceful('node1') };
    ok($g3, sprintf('(c) graceful restart of node1 with a changed <Cluster> block done (%.2fs)', time - $t0))
        or diag $@;
    sleep(3 - (time - $t0)) if time - $t0 < 3;
    $samples = stop_watch($w);

    my $after = status_of($c, 'node1') || {};
    like(page($c, 'node1') // '', qr/^Transport\.timeout = 1500\b/m, '(c) node1 runs the changed block');
    isnt($after->{EnginePid}, $before->{EnginePid}, "(c) node1 has a new EnginePid ($after->{EnginePid})");
    is($after->{EngineStarts}, 2, '(c) node1 EngineStarts 2');
    is($after->{EngineState}, 'ready', '(c) the new engine is ready');
    isnt($after->{Incarnation}, $before->{Incarnation}, '(c) the new engine has a new incarnation');
    ok(!SC::Cluster::pid_alive($before->{EnginePid}), "(c) the old engine $before->{EnginePid} is gone");

    cmp_ok(scalar @$samples, '>=', 30, '(c) node2 was polled at least 30 times during 3 s (' . scalar(@$samples) . ')');
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
        member_opts => { node1 => { mpm => 'prefork', extra_conf =>
            "MaxConnectionsPerChild 1\nServerLimit 64\nMaxRequestWorkers 64\n"
            . "StartServers 32\nMinSpareServers 32\nMaxSpareServers 64\n" } },
    );
    $c->start_all;
    like(do { local (@ARGV, $/) = $c->member('node1')->{conf}; <> },
         qr/^MaxConnectionsPerChild 1$/m, '(b) node1 runs prefork with MaxConnectionsPerChild 1');
    ok($c->wait_for(sub { my $m = member_on($c, 'node2', 'node1'); $m && $m->{state} eq 'alive' },
                    timeout => 3), '(b) node2 sees node1 alive')
        or dump_cluster($c, 'startup (b)');
    my $p0 = status_of($c, 'node1');

    my $w = start_watch($c, 'node2', 'node1');
    my $t0 = time;
    my %count;
    my @loads;
    for my $k (1 .. 4) {
        my $file = "$TMP/prefork-$k";
        my $pid = kid(sub {
            my %n;
            for (1 .. 50) {
                my ($s) = $c->get('node1', '/index.html', timeout => 10);
                $n{$s}++;
            }
            open my $fh, '>', $file or die;
            print $fh "$_\t$n{$_}\n" for keys %n;
            close $fh;
        });
        push @loads, [ $pid, $file ];
    }
    for my $l (@loads) {
        reap($l->[0]);
        open my $fh, '<', $l->[1] or next;
        while (<$fh>) { chomp; my ($k, $v) = split /\t/; $count{$k} += $v }
    }
    my $took = time - $t0;
    my $samples = stop_watch($w);
    is($count{200} // 0, 200, sprintf('(b) 200 requests to node1 (4 clients) answered 200 (%.1fs)', $took))
        or diag explain \%count;

    my $p1 = status_of($c, 'node1') || {};
    is($p1->{EnginePid}, $p0->{EnginePid}, '(b) node1 EnginePid unchanged');
    is($p1->{Incarnation}, $p0->{Incarnation}, '(b) node1 Incarnation unchanged');
    is($p1->{EngineStarts}, 1, '(b) node1 EngineStarts stays 1');
    cmp_ok(scalar @$samples, '>=', 10, '(b) node2 was polled (' . scalar(@$samples) . ' samples)');
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
