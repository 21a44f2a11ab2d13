#!perl
# CloudMembershipService with the DNS provider: the members are the addresses
# dnsServiceName resolves to, each at this member's Receiver port, re-resolved
# every refreshInterval.  Three members, each in its own network namespace,
# resolve members.cluster.test through a dnsmasq running in node1's namespace
# (each namespace's /etc/resolv.conf is /etc/netns/<ns>/resolv.conf, which
# `ip netns exec` bind-mounts over /etc/resolv.conf):
#   (a) the name lists node1 and node2: they see each other alive; node3, not
#       in DNS, is not a member of node1 (checked once node3 sees node1
#       alive: node1 has answered node3's HELLO by then); node3 resolves the
#       same name and sees node1 and node2 alive;
#   (b) node3 is added to the name (dnsmasq re-reads its hosts file on SIGHUP):
#       node1 and node2 show node3 alive, and node1 logs SC1254 with the
#       three addresses;
#   (c) node2 stops cleanly and leaves the name: node1 shows it left (or
#       dead), and never alive again while node1 re-resolves the name
#       (SC1254 with two addresses) and keeps sending heartbeats (PingsOut +2
#       after that);
# Deadlines are polling limits (20 s); no duration is asserted.
#   (d) nothing is left: dnsmasq is gone, the /etc/netns/<ns> directories made
#       here are removed.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time);
use SC::Cluster;
use SC::DNS;
use SC::Test qw(within need need_netns);
$SC::Test::WITHIN_INTERVAL = 0.05;

my $NAME = 'members.cluster.test';

need_netns();
my $DNSMASQ = SC::DNS::dnsmasq();

$SIG{ALRM} = sub { die "cloud_dns.t: time limit (240 s) reached\n" };
alarm 240;

# ---------------------------------------------------------------------------
# what this test makes outside the harness, and its cleanup (also from END and
# on SIGINT/SIGTERM/SIGHUP)
# ---------------------------------------------------------------------------
my $dns = SC::DNS->new('sc-cloud-dns-XXXXXX');   # SC::DNS: dnsmasq, /etc/netns
my $tmp = $dns->dir;

# ---------------------------------------------------------------------------
# helpers (the ?auto page)
# ---------------------------------------------------------------------------
sub parse_auto {
    my ($b) = @_;
    return undef unless defined $b;
    my (%f, @members);
    for my $l (split /\n/, $b) {
        if ($l =~ /^Member: (.*)$/) {
            my $r = $1;
            my %m = (line => $l);
            $m{verdict} = $1 if $r =~ s/\s*verdict="(.*)"\s*$//;
            for my $kv (split ' ', $r) {
                $m{$1} = $2 if $kv =~ /^(\w+)=(.*)$/;
            }
            push @members, \%m;
        }
        elsif ($l =~ /^([A-Za-z]+): ?(.*)$/) {
            $f{$1} = $2 unless exists $f{$1};
        }
    }
    $f{members} = \@members;
    $f{raw} = $b;
    return \%f;
}

my $c;

sub status_of {
    my ($n) = @_;
    my ($s, $h, $b) = $c->get($n, '/cluster-manager?auto', timeout => 3);
    return $s == 200 ? parse_auto($b) : undef;
}

# the Member: line for $route on $n's page (undef if none)
sub member_on {
    my ($n, $route) = @_;
    my $p = status_of($n) or return undef;
    my ($m) = grep { ($_->{route} // '') eq $route } @{ $p->{members} };
    return $m;
}

sub state_on {
    my $m = member_on(@_);
    return $m ? $m->{state} : '(no line)';
}

sub member_lines {
    my ($b) = @_;
    return '(no answer)' unless defined $b;
    return join("\n", grep { /^(?:Member|Membership|MembersAlive|MembersKnown|Receiver):/ }
                      split /\n/, $b);
}

my $dumped = 0;
sub dump_state {
    my ($why) = @_;
    return if $dumped++ > 3;
    diag("--- state after: $why");
    for my $n ($c->members) {
        if ($c->is_running($n)) {
            my ($s, $h, $b) = $c->get($n, '/cluster-manager?auto', timeout => 3);
            diag("--- $n ?auto:\n" . member_lines($s == 200 ? $b : undef));
        }
        else {
            diag("--- $n is not running");
        }
        my @l = grep { /SC12[25]\d/ } split /\n/, $c->error_log($n);
        @l = @l[-12 .. -1] if @l > 12;
        diag("--- $n error_log (SC12xx):\n" . join("\n", @l));
    }
    diag("--- dnsmasq log tail:\n" . join("\n", (split /\n/, $dns->slurp("$tmp/dnsmasq.log"))[-15 .. -1]))
        if -s "$tmp/dnsmasq.log";
}

sub check {
    my ($ok, $name) = @_;
    ok($ok, $name) and return 1;
    dump_state($name);
    return 0;
}

# ---------------------------------------------------------------------------
# 1. the cluster (not started)
# ---------------------------------------------------------------------------
my $block = sub {
    my ($m) = @_;
    return qq{<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster">\n}
         . qq{  <Channel className="org.apache.catalina.tribes.group.GroupChannel">\n}
         . qq{    <Membership className="org.apache.catalina.tribes.membership.cloud.CloudMembershipService"\n}
         . qq{                membershipProviderClassName="dns" dnsServiceName="$NAME" refreshInterval="500"/>\n}
         . qq{    <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver" }
         . qq{address="$m->{addr}" port="$m->{cluster_port}" autoBind="1"/>\n}
         . qq{    <Interceptor className="org.apache.catalina.tribes.group.interceptors.TcpFailureDetector"/>\n}
         . qq{  </Channel>\n}
         . qq{</Cluster>\n};
};
$c = SC::Cluster->new(members => 3, netns => 1, cluster => $block, loglevel => 'notice');
$dns->install_signal_handlers;   # after SC::Cluster->new
my @names = $c->members;
my %addr = map { $_ => $c->member($_)->{addr} } @names;
note("members: " . join(', ', map { "$_=$addr{$_}" } @names));

# ---------------------------------------------------------------------------
# 2. dnsmasq in node1's namespace; every member's resolver points at it
# ---------------------------------------------------------------------------
my $dns_addr = $addr{node1};
my $hosts = "$tmp/members.hosts";
my $hosts_for = sub { join '', map { "$addr{$_} $NAME\n" } @_ };
$dns->write_file($hosts, $hosts_for->(qw(node1 node2)));
$dns->resolv_conf($c, $dns_addr);
$dns->start($c, 'node1', dnsmasq => $DNSMASQ, addr => $dns_addr, hosts => $hosts,
            domain => 'cluster.test', args => ['--log-queries']);
my $dns_pid = $dns->pid;
note("dnsmasq: pid $dns_pid in " . $c->member('node1')->{netns} . ", listening on $dns_addr:53");

# ready when the pid file names our child and node2 resolves the name through it
my $resolves = sub {
    my ($n, @want) = @_;
    my ($rc, $out) = $c->exec_in($n, { timeout => 5 }, 'getent', 'ahostsv4', $NAME);
    my %got = map { $_ => 1 } $out =~ /^(\d+\.\d+\.\d+\.\d+)\s+STREAM/mg;
    return $rc == 0 && join(',', sort keys %got) eq join(',', sort map { $addr{$_} } @want);
};
my $ready = within(20, sub {
    return 0 if $dns->reap;
    my $p = $dns->slurp("$tmp/dnsmasq.pid");
    return 0 unless $p =~ /^(\d+)/ && $1 == $dns_pid;
    return $resolves->('node2', qw(node1 node2));
});
if (!ok($ready, "dnsmasq (pid $dns_pid) runs in node1's namespace and node2 resolves $NAME to node1, node2")) {
    diag("dnsmasq " . ($dns->reaped ? "exited (status " . $dns->status . ")" : 'still running') . ":\n"
         . $dns->slurp("$tmp/dnsmasq.out") . $dns->slurp("$tmp/dnsmasq.log"));
    my ($rc, $out) = $c->exec_in('node2', 'getent', 'ahostsv4', $NAME);
    diag("getent in node2 (exit $rc): $out");
    BAIL_OUT('no DNS server for the test');
}

# ---------------------------------------------------------------------------
# 3. start: node1 and node2 are the name's members
# ---------------------------------------------------------------------------
$c->start_all;
my $t_started = time;

my $port = $c->member(q{node1})->{cluster_port};
for my $n (@names) {
    my $p = status_of($n);
    is($p && $p->{Membership}, 'CloudMembershipService', "$n: Membership: CloudMembershipService");
    ok($c->wait_for(sub { $c->error_log($n) =~ /SC1253: CloudMembershipService: members are the addresses of \Q$NAME\E, port $port\b/ },
                    timeout => 20),
       "$n: error_log has SC1253 naming $NAME");
}

{
    my $took = within(20, sub {
        state_on('node1', 'node2') eq 'alive' && state_on('node2', 'node1') eq 'alive';
    });
    check(defined $took, 'node1 and node2 (both in DNS) see each other alive');
}
{
    my $took = within(20, sub {
        state_on('node3', 'node1') eq 'alive' && state_on('node3', 'node2') eq 'alive';
    });
    check(defined $took, 'node3 (not in DNS, but resolving the name) sees node1 and node2 alive');
}
{
    my $p = status_of('node1');
    my @l = $p ? grep { ($_->{route} // '') eq 'node3' || ($_->{addr} // '') =~ /^\Q$addr{node3}\E:/ }
                 @{ $p->{members} } : ();
    check($p && !@l, "node3 (not in DNS) is not a member of node1 (no route=node3 / $addr{node3} line)")
        or diag("node1 lists node3 as:\n" . join("\n", map { $_->{line} } @l));
}

# ---------------------------------------------------------------------------
# 4. node3 joins the name
# ---------------------------------------------------------------------------
{
    my $log_before = length $c->error_log('node1');
    $dns->write_file($hosts, $hosts_for->(qw(node1 node2 node3)));
    kill 'HUP', $dns_pid unless $dns->reap;
    my $took = within(20, sub {
        state_on('node1', 'node3') eq 'alive' && state_on('node2', 'node3') eq 'alive';
    });
    check(defined $took, 'node3 in DNS (SIGHUP to dnsmasq): node1 and node2 show node3 alive');
    my $list = join ', ', map { $addr{$_} } qw(node1 node2 node3);
    my $got = within(20, sub {
        substr($c->error_log('node1'), $log_before)
            =~ /SC1254: CloudMembershipService: \Q$NAME\E resolves to 3 address\(es\): \Q$list\E$/m;
    });
    check(defined $got, "node1's error_log: SC1254 ... resolves to 3 address(es): $list");
    my $m = member_on('node1', 'node3');
    is($m && $m->{static}, 1, 'node1 lists node3 with static=1 (a DNS member)')
        or diag($m ? $m->{line} : '(no line)');
}

# ---------------------------------------------------------------------------
# 5. node2 stops cleanly and leaves the name
# ---------------------------------------------------------------------------
{
    my $log_before = length $c->error_log('node1');
    is($c->stop('node2'), 1, 'node2 stops on SIGTERM');
    $dns->write_file($hosts, $hosts_for->(qw(node1 node3)));
    kill 'HUP', $dns_pid unless $dns->reap;
    my $took = within(20, sub { state_on('node1', 'node2') =~ /^(?:left|dead)$/ });
    check(defined $took, 'node2 stopped and out of DNS: node1 shows it left or dead');
    # from here on it must never be alive again: watched until node1 handled
    # the new answer (SC1254, two addresses) and sent two more rounds of
    # heartbeats after that
    my $list = join ', ', map { $addr{$_} } qw(node1 node3);
    my $resolved = qr/SC1254: CloudMembershipService: \Q$NAME\E resolves to 2 address\(es\): \Q$list\E$/m;
    my (@states, $seen_log, $pings0, $pings);
    within(20, sub {
        my $p = status_of('node1') or return 0;
        my ($m) = grep { ($_->{route} // '') eq 'node2' } @{ $p->{members} };
        my $st = $m ? $m->{state} : '(no line)';
        push @states, $st unless @states && $states[-1] eq $st;
        if (!$seen_log) {
            $seen_log = substr($c->error_log('node1'), $log_before) =~ $resolved;
            return 0;
        }
        $pings = $p->{PingsOut} // 0;     # a page read after the log line
        $pings0 //= $pings;
        return $pings >= $pings0 + 2;
    });
    ok($seen_log, "node1's error_log: SC1254 ... resolves to 2 address(es): $list");
    ok(defined $pings0 && $pings >= $pings0 + 2,
       'node1 sent 2 more rounds of heartbeats after that (PingsOut ' . ($pings0 // '?') . ' -> ' . ($pings // '?') . ')');
    check(@states && !grep({ !/^(?:left|dead)$/ } @states),
          'meanwhile node1 showed node2 left or dead only, never alive again')
        or diag("states seen: @states");
    is(state_on('node1', 'node3'), 'alive', 'node1 still shows node3 alive');
}

# ---------------------------------------------------------------------------
# 6. nothing is left
# ---------------------------------------------------------------------------
{
    # members first: their resolver threads then never wait on a missing server
    $c->stop_all;
    my $exited_before = $dns->reap;
    ok(!$exited_before, 'dnsmasq was still running at the end (it did not die on its own)')
        or diag("dnsmasq status " . $dns->status . ":\n" . $dns->slurp("$tmp/dnsmasq.out"));
    my $pid = $dns_pid;
    $dns->stop;
    ok($dns->reaped && !SC::Cluster::pid_alive($pid), "dnsmasq (pid $pid) is gone");
    my @dirs = map { "/etc/netns/" . $c->member($_)->{netns} } @names;
    my $made_top = $dns->etc_netns_made;
    $dns->remove_etc;
    ok(!grep({ -e } @dirs), 'the /etc/netns/<ns> directories made here are removed');
    if ($made_top) {
        ok(!-e '/etc/netns', '/etc/netns (made here) is removed, being empty');
    }
    else {
        note('/etc/netns was there before this test: left as it was');
    }
    my @ns = $c->netns_names;
    $c->teardown;
    my $out = `ip netns list 2>&1`;
    ok(!grep({ my $n = $_; $out =~ /^\Q$n\E\b/m } @ns), "the cluster's namespaces are gone");
}

alarm 0;
done_testing();
