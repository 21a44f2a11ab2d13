#!perl
# Failover that no client sees, with asynchronous replication (issue 20;
# balancer.t's step 4 does kill -9 with synchronous replication).  A front
# (SessionClusterBalancer, byrequests, a worker timeout of 60 s) and three
# members replicating asynchronously (channelSendOptions 8; McastService
# frequency 500 ms, dropTime 3000 ms, TcpFailureDetector).  30 sessions (10
# made on each member) are kept busy through the front by SC::Load (GET,
# one request at a time per session, 15 s client timeout):
#   1. kill -9 of node2 once every session had 3 answers;
#   2. once the front holds node2 in error: SIGSTOP of node3 (hung, its kernel
#      still taking connections), left frozen to the end of the load.
# Asserted: every request of the load is answered 200 (requests node2 took
# and lost, and requests that wait in frozen node3, are sent again to node1
# by the front: the latter once the front holds node3 suspect, not at the
# worker's timeout); every session is served after both events; the front
# counts replays.  Printed (asynchronous replication may lose a session's
# last changes, and stalls are figures, not assertions): sessions whose
# counter went back or started over, the longest stall of a session after
# each event, the longest request.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use SC::Cluster;
use SC::Load;
use SC::Test qw(worker_ok status_of check within app demo_module demo_conf balancer_member status_has
                valid_sid num);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 120;
$SIG{ALRM} = sub { die "front_failover.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $LOAD_S = 9;
my $LIB = "$FindBin::Bin/../lib";
my @N = qw(node1 node2 node3);
my $c = SC::Cluster->new(
    members    => 3,
    front      => { name => 'front', retry => 300, connectiontimeout => 5, timeout => 60 },
    loglevel   => 'info',
    extra_conf => demo_conf(demo_module()),
    cluster    => sub {
        my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all, channelSendOptions => 8,
                                         membership => { frequency => 500, dropTime => 3000 });
    },
);
my $F = $c->front;
my $fm = $c->member($F);
SC::Test::dump_options(extra => SC::Test::front_extra($F));
$c->start_all;

sub worker { balancer_member(status_of($c, $F), $_[0]) }
sub worker_err { my ($w) = @_; $w && status_has($w->{status}, 'Err') }
sub base_of { my ($id) = @_; return defined $id && $id =~ /^([0-9A-Fa-f]{32})\./ ? lc $1 : '' }

check(within(30, sub { !grep { !worker_ok(worker($_)) } @N }), $c, 'the front shows node1..node3 Ok');

my (%load, @bad);
for my $n (@N) {
    for (1 .. 10) {
        my $r = app($c, $n, 'auto');
        if (valid_sid($r->{cookie}, $n)) { $load{ $r->{cookie} } = { route => $n, name => 'L' . (1 + keys %load) } }
        else { push @bad, $r }
    }
}
check(!@bad && keys %load == 30, $c, '30 load sessions, 10 made on each member');
# every member holds every session before the load starts (asynchronous:
# wait for it, so that what is printed as lost is the failover's doing)
check(within(20, sub {
    for my $n (@N) {
        my $p = status_of($c, $n) or return 0;
        return 0 unless (num($p, 'SessionsActive') // 0) >= 30;
    }
    return 1;
}), $c, 'every member holds the 30 sessions');

my $t0 = time;
my $h = $c->spawn(undef, $^X, "-I$LIB", '-MSC::Load', '-e', 'exit SC::Load::main(@ARGV)',
                  "addr=$fm->{addr}", "port=$fm->{http_port}", "duration=$LOAD_S",
                  'timeout=15', 'interval=0.05',
                  map { "session=$load{$_}{name}:$_" } sort keys %load);
sub answered {
    my $text = '';
    if (open my $fh, '<', $h->{out}) { local $/; $text = <$fh> // '' }
    my %n;
    $n{ $_->{name} }++ for grep { $_->{status} == 200 } @{ SC::Load::parse_tsv($text) };
    return \%n;
}
check(within(20, sub { my $n = answered(); !grep { ($n->{ $load{$_}{name} } // 0) < 3 } keys %load }),
      $c, 'the load is under way: every session had 3 answers');

# 1. kill -9 of node2
my $t_kill = time;
$c->kill9('node2');
check(within(20, sub { worker_err(worker('node2')) }), $c, '1. the front holds node2 in error after its kill -9');
note(sprintf '1. node2 killed %.2fs into the load; in error on the front %.2fs after', $t_kill - $t0,
     time - $t_kill);

# 2. SIGSTOP of node3 (after the sessions of node2 had time to settle)
sleep 1;
my $t_stop = time;
$c->sigstop('node3');
check(within(20, sub { worker_err(worker('node3')) }), $c, '2. the front holds node3 in error while it is frozen');
note(sprintf '2. node3 frozen %.2fs into the load; in error on the front %.2fs after', $t_stop - $t0,
     time - $t_stop);
ok(waitpid($h->{pid}, POSIX::WNOHANG()) == 0, '2. the load was still running then');

my ($rc, $out) = $c->finish($h, timeout => $LOAD_S + 30);
is($rc, 0, 'the load client finished') or diag(substr($out, -2000));
my $recs = SC::Load::parse_tsv($out);
my %by;
push @{ $by{ $_->{name} } }, $_ for sort { $a->{t} <=> $b->{t} } @$recs;

my (@failed, @went_back, @unserved);
my ($maxlat, %stall) = (0, kill => 0, stop => 0);
for my $id (sort keys %load) {
    my $L = $load{$id};
    my ($exp, $last_end, $after_kill, $after_stop) = (0, undef, 0, 0);
    for my $r (@{ $by{ $L->{name} } || [] }) {
        my $end = $r->{t} + $r->{lat};
        $maxlat = $r->{lat} if $r->{lat} > $maxlat;
        if ($r->{status} != 200) {
            push @failed, "$L->{name} ($L->{route}): " . SC::Load::to_tsv($r);
            next;
        }
        for ([ kill => $t_kill ], [ stop => $t_stop ]) {
            my ($k, $t) = @$_;
            $stall{$k} = $end - $last_end
                if defined $last_end && $r->{t} >= $t && $end - $last_end > $stall{$k};
        }
        $after_kill++ if $r->{t} >= $t_kill;
        $after_stop++ if $r->{t} >= $t_stop;
        $last_end = $end;
        my $cn = $r->{counter} // -1;
        if (($r->{session} // '') eq '(new)' || base_of($r->{session}) ne base_of($id) || $cn <= $exp) {
            push @went_back, "$L->{name} ($L->{route}): counter $cn after $exp";
        }
        $exp = $cn if $cn =~ /^\d+$/ && $cn > $exp;
    }
    push @unserved, "$L->{name} ($L->{route}): $after_kill after the kill, $after_stop after the freeze"
        unless $after_kill && $after_stop;
}
cmp_ok(scalar @$recs, '>=', 30 * 5, 'the load client made requests (' . scalar(@$recs) . ')');
# The front's log on the requests not sent again or failed again (SC1660,
# SC1662, SC2106; the first five), each after the lines the same client
# connection had before it (mod_proxy's errors, the replays: SC1661)
sub front_story {
    my @log = split /\n/, $c->error_log($F);
    my @out;
    my @ends = grep { $log[$_] =~ /SC166[02]|SC2106/ } 0 .. $#log;
    for my $i (@ends[0 .. ($#ends < 4 ? $#ends : 4)]) {
        my ($client) = $log[$i] =~ /\[client ([\d.:]+)\]/;
        my @before = $client ? grep { index($_, "[client $client]") >= 0 } @log[0 .. $i - 1] : ();
        push @out, @before[($#before > 9 ? $#before - 9 : 0) .. $#before], $log[$i];
    }
    return join("\n", @out);
}
is(scalar @failed, 0, 'no request failed: every one answered 200 across the kill and the freeze')
    or diag(join('', @failed[0 .. ($#failed < 9 ? $#failed : 9)])
            . "the front's log on the requests not sent again or failed again (SC1660, SC1662, SC2106), "
            . "each after the lines of its client connection before it:\n" . front_story());
is(scalar @unserved, 0, 'every session was served after the kill and after the freeze')
    or diag(join("\n", @unserved));
my $p = status_of($c, $F) || {};
cmp_ok(num($p, 'FrontReplays') // 0, '>=', 1, 'the front counts replays (FrontReplays ' . (num($p, 'FrontReplays') // 0) . ')');
note(sprintf 'load: %d requests over %ds, %d failed; %d answers whose counter went back or started over '
             . '(asynchronous replication); longest stall of a session after the kill %.3fs, after the '
             . 'freeze %.3fs; longest request %.3fs; FrontReplays %s, FrontNotReplayed %s',
     scalar @$recs, $LOAD_S, scalar @failed, scalar @went_back, $stall{kill}, $stall{stop}, $maxlat,
     num($p, 'FrontReplays') // '?', num($p, 'FrontNotReplayed') // '?');
note("went back: $_") for @went_back[0 .. ($#went_back < 4 ? $#went_back : 4)];

$c->sigcont('node3');
$c->teardown;
done_testing();
