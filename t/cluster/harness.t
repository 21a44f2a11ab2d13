#!perl
# Proves t/lib/SC/Cluster.pm, the multi-member harness the cluster tests use:
# members start, answer on /cluster-manager with their own route, stop cleanly
# on SIGTERM, die on kill9 without hurting the others, come back on restart,
# freeze on sigstop, survive a graceful restart; teardown leaves nothing
# behind, also when the test script dies or is killed with SIGTERM; with
# netns => 1 members sit in their own namespaces and can be cut off and healed.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
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

# ---------------------------------------------------------------------------
# 1 + 3: three members on loopback, static membership
# ---------------------------------------------------------------------------
{
    my $c = SC::Cluster->new(members => 3);
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

    # -- kill9: a crash of node2 -------------------------------------------
    my @children = grep { $_ != $pid{node2} } $c->pids('node2');
    ok(@children >= 1, 'node2 has child processes (' . join(',', @children) . ')');
    my @killed = $c->kill9('node2');
    ok((grep { $_ == $pid{node2} } @killed), 'kill9 names the parent among the killed');
    ok(gone($pid{node2}), "kill9: no process with node2's pid $pid{node2} is left");
    ok(!(grep { !gone($_) } @children), "kill9: node2's children are gone too");
    is($c->member('node2')->{pid}, undef, 'kill9: node2 has no pid any more');
    is(($c->get('node2', '/cluster-manager?auto', timeout => 2))[0], 0,
       'kill9: node2 no longer answers');
    for my $n (qw(node1 node3)) {
        my ($status, undef, $body) = $c->get($n, '/cluster-manager?auto');
        ok($status == 200 && route_of($body) eq $n, "after kill9 of node2, $n still answers");
    }

    # -- restart after the crash -------------------------------------------
    ok(eval { $c->restart('node2'); 1 }, 'restart: node2 starts again') or diag $@;
    my $new = $c->member('node2')->{pid};
    ok($new && $new != $pid{node2} && !gone($new), "restart: node2 runs as new pid $new");
    is(route_of(($c->get('node2', '/cluster-manager?auto'))[2]), 'node2',
       'restart: node2 answers with its route');
    $pid{node2} = $new;

    # -- sigstop / sigcont -------------------------------------------------
    my @frozen = $c->sigstop('node3');
    my ($st, $h) = $c->get('node3', '/cluster-manager?auto', timeout => 1);
    is($st, 0, "sigstop: node3 does not answer ($h->{_error})");
    ok(!(grep { gone($_) } @frozen), 'sigstop: its processes still exist');
    $c->sigcont('node3');
    ok($c->wait_for(sub { ($c->get('node3', '/cluster-manager?auto', timeout => 1))[0] == 200 },
                    timeout => 5),
       'sigcont: node3 answers again');

    # -- graceful restart --------------------------------------------------
    my $g = eval { $c->graceful('node1') };
    is($g, $pid{node1}, 'graceful: node1 keeps its parent pid') or diag $@;
    my @resumed = $c->error_log('node1') =~ /resuming normal operations/g;
    is(scalar @resumed, 2, 'graceful: node1 logged "resuming normal operations" twice');
    is(($c->get('node1', '/cluster-manager?auto'))[0], 200, 'graceful: node1 answers');

    # -- clean stops -------------------------------------------------------
    for my $n (@names) {
        my $t = time;
        my $clean = $c->stop($n);
        my $took = time - $t;
        ok($clean, "stop $n: it went down on SIGTERM");
        cmp_ok($took, '<', $c->{stop_timeout}, sprintf("stop $n: returned in %.2fs", $took));
        ok(gone($pid{$n}), "stop $n: pid $pid{$n} is gone");
        my $log = $c->error_log($n);
        unlike($log, qr/\[[^\]]*:emerg\]/, "stop $n: no [emerg] in its error_log");
        like($log, qr/caught SIGTERM, shutting down/, "stop $n: error_log has the shutdown notice");
    }
    my $base = $c->base_dir;
    ok(-d $base, "member directories exist under $base");
    $c->teardown;
    ok(!-e $base || $ENV{SC_KEEP}, 'teardown removes the member directories');
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
        fail("netns: $why") for 1 .. 17;
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
    my ($st, $h) = $c->get('node2', '/cluster-manager?auto', from => 'node1', timeout => 2);
    is($st, 0, "partition: node1 cannot reach node2 ($h->{_error})");
    ok(!$c->can_connect('node1', 'node2', timeout => 1), 'partition: TCP connect fails');
    is(($c->get('node2', '/cluster-manager?auto'))[0], 200,
       'partition: node2 itself still runs and answers inside its namespace');

    $c->heal('node2');
    ok($c->wait_for(sub { $c->can_connect('node1', 'node2', timeout => 1) }, timeout => 10),
       'heal: TCP connect node1 -> node2 works again');
    is(($c->get('node2', '/cluster-manager?auto', from => 'node1'))[0], 200,
       'heal: node1 gets node2 over HTTP again');

    my @pids = map { $_->{pid} } $m1, $m2;
    $c->teardown;
    ok(!(grep { !gone($_) } @pids), 'netns teardown: both httpds are gone');
    is_deeply([ our_namespaces() ], [], "netns teardown: no sc-$$-*/scbr-$$-* namespace is left");
    ok(!-e $c->base_dir || $ENV{SC_KEEP}, 'netns teardown: member directories removed');
}

done_testing();
