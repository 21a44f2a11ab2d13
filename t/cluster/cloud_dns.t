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
use Time::HiRes qw(time sleep);
use POSIX qw(WNOHANG);
use File::Temp ();
use File::Path qw(remove_tree);
use SC::Cluster;
use SC::Test qw(within need);
$SC::Test::WITHIN_INTERVAL = 0.05;

my $NAME = 'members.cluster.test';

{
    my $why = SC::Cluster->netns_unavailable;
    need(!defined $why, "network namespaces (run as root): " . ($why // ''));
}
my ($DNSMASQ) = grep { -x } ('/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/sbin/dnsmasq',
                             map { "$_/dnsmasq" } split /:/, $ENV{PATH} || '');
need($DNSMASQ, 'dnsmasq (apt-get install dnsmasq-base; build/install-deps.sh does)');

$SIG{ALRM} = sub { die "cloud_dns.t: time limit (240 s) reached\n" };
alarm 240;

# ---------------------------------------------------------------------------
# what this test makes outside the harness, and its cleanup (also from END and
# on SIGINT/SIGTERM/SIGHUP)
# ---------------------------------------------------------------------------
my $dns_pid;              # dnsmasq: our child (`ip netns exec` execs it in place)
my $dns_reaped = 0;
my $dns_status;
my @etc_made;             # /etc/netns/<ns> directories made here
my $etc_netns_made = 0;   # /etc/netns itself made here
my $tmp = File::Temp->newdir('sc-cloud-dns-XXXXXX', TMPDIR => 1);
chmod 0755, "$tmp";       # dnsmasq drops to its own user and re-reads the hosts file

sub reap_dns {
    return 1 if $dns_reaped || !$dns_pid;
    my $w = waitpid($dns_pid, WNOHANG);
    if ($w == $dns_pid || $w < 0) {
        $dns_status = $?;
        $dns_reaped = 1;
    }
    return $dns_reaped;
}

sub stop_dns {
    return 1 if !$dns_pid || reap_dns();
    # not reaped yet, so the pid is still our child's: safe to signal
    kill 'TERM', $dns_pid;
    my $deadline = time + 5;
    until (reap_dns()) {
        if (time > $deadline) {
            kill 'KILL', $dns_pid;
            waitpid($dns_pid, 0);
            $dns_status = $?;
            $dns_reaped = 1;
            last;
        }
        sleep 0.02;
    }
    return 1;
}

sub remove_etc {
    while (my $d = pop @etc_made) {
        remove_tree($d) if -d $d;
    }
    if ($etc_netns_made) {
        rmdir '/etc/netns';        # only when empty (someone else may use it now)
        $etc_netns_made = 0;
    }
}

sub cleanup {
    local ($?, $!, $@);
    eval { stop_dns(); 1 } or diag("cleanup: dnsmasq: $@");
    eval { remove_etc(); 1 } or diag("cleanup: /etc/netns: $@");
}

END { cleanup() }

# set after SC::Cluster->new, so that ours runs first (dnsmasq is gone before
# the harness deletes node1's namespace) and then hands over to the harness's
# handler, which tears the cluster down and dies of the signal
sub install_signal_handlers {
    my %num = (HUP => 1, INT => 2, TERM => 15);
    for my $sig (keys %num) {
        my $prev = $SIG{$sig};
        $SIG{$sig} = sub {
            cleanup();
            remove_tree("$tmp");     # the harness's handler ends us without END
            $prev->(@_) if ref $prev eq 'CODE';
            exit(128 + $num{$sig});
        };
    }
}

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
    diag("--- dnsmasq log tail:\n" . join("\n", (split /\n/, slurp("$tmp/dnsmasq.log"))[-15 .. -1]))
        if -s "$tmp/dnsmasq.log";
}

sub check {
    my ($ok, $name) = @_;
    ok($ok, $name) and return 1;
    dump_state($name);
    return 0;
}

sub slurp {
    my $f = shift;
    open my $fh, '<', $f or return '';
    local $/;
    my $s = <$fh>;
    return defined $s ? $s : '';
}

sub write_file {
    my ($f, $text) = @_;
    open my $fh, '>', "$f.new" or die "write $f.new: $!";
    print $fh $text;
    close $fh or die "close $f.new: $!";
    chmod 0644, "$f.new";
    rename "$f.new", $f or die "rename $f.new: $!";
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
install_signal_handlers();
my @names = $c->members;
my %addr = map { $_ => $c->member($_)->{addr} } @names;
note("members: " . join(', ', map { "$_=$addr{$_}" } @names));

# ---------------------------------------------------------------------------
# 2. dnsmasq in node1's namespace; every member's resolver points at it
# ---------------------------------------------------------------------------
my $dns_addr = $addr{node1};
my $hosts = "$tmp/members.hosts";
my $hosts_for = sub { join '', map { "$addr{$_} $NAME\n" } @_ };
write_file($hosts, $hosts_for->(qw(node1 node2)));

if (!-d '/etc/netns') {
    mkdir '/etc/netns', 0755 or BAIL_OUT("mkdir /etc/netns: $!");
    $etc_netns_made = 1;
}
for my $n (@names) {
    my $d = "/etc/netns/" . $c->member($n)->{netns};
    BAIL_OUT("$d exists already") if -e $d;
    mkdir $d, 0755 or BAIL_OUT("mkdir $d: $!");
    push @etc_made, $d;
    write_file("$d/resolv.conf", "nameserver $dns_addr\noptions timeout:1 attempts:2\n");
}

{
    my $ns1 = $c->member('node1')->{netns};
    my @cmd = ('ip', 'netns', 'exec', $ns1, $DNSMASQ, '--keep-in-foreground',
               '--no-resolv', '--no-hosts', "--addn-hosts=$hosts",
               "--listen-address=$dns_addr", '--bind-interfaces', '--port=53',
               "--pid-file=$tmp/dnsmasq.pid", "--log-facility=$tmp/dnsmasq.log",
               '--local=/cluster.test/', '--log-queries');
    STDOUT->flush;
    STDERR->flush;
    my $pid = fork;
    BAIL_OUT("fork: $!") unless defined $pid;
    if ($pid == 0) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP ALRM);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$tmp/dnsmasq.out";
        open STDERR, '>&', \*STDOUT;
        { no warnings q{exec}; exec { $cmd[0] } @cmd; }
        print STDERR "exec @cmd: $!\n";
        POSIX::_exit(127);
    }
    $dns_pid = $pid;
    note("dnsmasq: pid $dns_pid in $ns1, listening on $dns_addr:53");
}

# ready when the pid file names our child and node2 resolves the name through it
my $resolves = sub {
    my ($n, @want) = @_;
    my ($rc, $out) = $c->exec_in($n, { timeout => 5 }, 'getent', 'ahostsv4', $NAME);
    my %got = map { $_ => 1 } $out =~ /^(\d+\.\d+\.\d+\.\d+)\s+STREAM/mg;
    return $rc == 0 && join(',', sort keys %got) eq join(',', sort map { $addr{$_} } @want);
};
my $ready = within(20, sub {
    return 0 if reap_dns();
    my $p = slurp("$tmp/dnsmasq.pid");
    return 0 unless $p =~ /^(\d+)/ && $1 == $dns_pid;
    return $resolves->('node2', qw(node1 node2));
});
if (!ok($ready, "dnsmasq (pid $dns_pid) runs in node1's namespace and node2 resolves $NAME to node1, node2")) {
    diag("dnsmasq " . ($dns_reaped ? "exited (status $dns_status)" : 'still running') . ":\n"
         . slurp("$tmp/dnsmasq.out") . slurp("$tmp/dnsmasq.log"));
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
    write_file($hosts, $hosts_for->(qw(node1 node2 node3)));
    kill 'HUP', $dns_pid unless reap_dns();
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
    write_file($hosts, $hosts_for->(qw(node1 node3)));
    kill 'HUP', $dns_pid unless reap_dns();
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
    my $exited_before = reap_dns();
    ok(!$exited_before, 'dnsmasq was still running at the end (it did not die on its own)')
        or diag("dnsmasq status $dns_status:\n" . slurp("$tmp/dnsmasq.out"));
    my $pid = $dns_pid;
    stop_dns();
    ok($dns_reaped && !SC::Cluster::pid_alive($pid), "dnsmasq (pid $pid) is gone");
    my @dirs = map { "/etc/netns/" . $c->member($_)->{netns} } @names;
    my $made_top = $etc_netns_made;
    remove_etc();
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
