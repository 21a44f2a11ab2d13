#!perl
# DNS_MEMBERSHIP_SERVICE_NAME (README "CloudMembershipService": the members
# are the addresses that dnsServiceName, "else the DNS_MEMBERSHIP_SERVICE_NAME
# environment variable, as in Tomcat", resolves to).  Two members in network
# namespaces resolve through a dnsmasq in node1's namespace (cloud_dns.t's
# set-up): members.env.test and alias.env.test both name node1 and node2.
# httpd is started with DNS_MEMBERSHIP_SERVICE_NAME=members.env.test in its
# environment:
#   - node1's <Membership> has no dnsServiceName: it resolves the variable's
#     name (SC1253 names it, SC1254 lists both addresses);
#   - node2's has dnsServiceName="alias.env.test": that wins over the
#     variable (SC1253 names alias.env.test);
#   - they see each other alive (each found the other through DNS: no static
#     member is configured).
# No duration is asserted; deadlines are polling limits.
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
use SC::Test qw(within need check member_on status_of);

my $NAME  = 'members.env.test';
my $ALIAS = 'alias.env.test';

{
    my $why = SC::Cluster->netns_unavailable;
    need(!defined $why, "network namespaces (run as root): " . ($why // ''));
}
my ($DNSMASQ) = grep { -x } ('/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/sbin/dnsmasq',
                             map { "$_/dnsmasq" } split /:/, $ENV{PATH} || '');
need($DNSMASQ, 'dnsmasq (apt-get install dnsmasq-base; build/install-deps.sh does)');

$SIG{ALRM} = sub { die "dns_env.t: time limit (90 s) reached\n" };
alarm 90;

# dnsmasq and the /etc/netns/<ns> files: made here, removed here (also from
# END and on signals)
my ($dns_pid, $dns_reaped, $dns_status) = (undef, 0, undef);
my @etc_made;
my $etc_netns_made = 0;
my $tmp = File::Temp->newdir('sc-dns-env-XXXXXX', TMPDIR => 1);
chmod 0755, "$tmp";

sub reap_dns {
    return 1 if $dns_reaped || !$dns_pid;
    my $w = waitpid($dns_pid, WNOHANG);
    ($dns_status, $dns_reaped) = ($?, 1) if $w == $dns_pid || $w < 0;
    return $dns_reaped;
}
sub stop_dns {
    return 1 if !$dns_pid || reap_dns();
    kill 'TERM', $dns_pid;
    my $deadline = time + 5;
    until (reap_dns()) {
        if (time > $deadline) {
            kill 'KILL', $dns_pid;
            waitpid($dns_pid, 0);
            ($dns_status, $dns_reaped) = ($?, 1);
            last;
        }
        sleep 0.02;
    }
    return 1;
}
sub remove_etc {
    while (my $d = pop @etc_made) { remove_tree($d) if -d $d }
    if ($etc_netns_made) { rmdir '/etc/netns'; $etc_netns_made = 0 }
}
sub cleanup {
    local ($?, $!, $@);
    eval { stop_dns(); 1 } or diag("cleanup: dnsmasq: $@");
    eval { remove_etc(); 1 } or diag("cleanup: /etc/netns: $@");
}
END { cleanup() }
sub slurp { my $f = shift; open my $fh, '<', $f or return ''; local $/; my $s = <$fh>; return $s // '' }
sub write_file {
    my ($f, $text) = @_;
    open my $fh, '>', $f or die "write $f: $!";
    print $fh $text;
    close $fh or die "close $f: $!";
    chmod 0644, $f;
}

my $block = sub {
    my ($m) = @_;
    my $name = $m->{name} eq 'node2' ? qq{ dnsServiceName="$ALIAS"} : '';
    return qq{<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster">\n}
         . qq{  <Channel className="org.apache.catalina.tribes.group.GroupChannel">\n}
         . qq{    <Membership className="org.apache.catalina.tribes.membership.cloud.CloudMembershipService"\n}
         . qq{                membershipProviderClassName="dns"$name refreshInterval="500"/>\n}
         . qq{    <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver" }
         . qq{address="$m->{addr}" port="$m->{cluster_port}" autoBind="1"/>\n}
         . qq{    <Interceptor className="org.apache.catalina.tribes.group.interceptors.TcpFailureDetector"/>\n}
         . qq{  </Channel>\n}
         . qq{</Cluster>\n};
};
my $c = SC::Cluster->new(members => 2, netns => 1, cluster => $block, loglevel => 'notice');
{
    my %num = (HUP => 1, INT => 2, TERM => 15);
    for my $sig (keys %num) {
        my $prev = $SIG{$sig};
        $SIG{$sig} = sub { cleanup(); remove_tree("$tmp"); $prev->(@_) if ref $prev eq 'CODE'; exit(128 + $num{$sig}) };
    }
}
my @names = $c->members;
my %addr = map { $_ => $c->member($_)->{addr} } @names;
unlike($c->config_text('node1'), qr/dnsServiceName/, 'node1\'s block has no dnsServiceName');
like($c->config_text('node2'), qr/dnsServiceName="\Q$ALIAS\E"/, "node2's block has dnsServiceName=\"$ALIAS\"");

# dnsmasq in node1's namespace; both names list node1 and node2
my $hosts = "$tmp/members.hosts";
write_file($hosts, join '', map { my $n = $_; map { "$addr{$n} $_\n" } $NAME, $ALIAS } @names);
if (!-d '/etc/netns') {
    mkdir '/etc/netns', 0755 or BAIL_OUT("mkdir /etc/netns: $!");
    $etc_netns_made = 1;
}
for my $n (@names) {
    my $d = "/etc/netns/" . $c->member($n)->{netns};
    BAIL_OUT("$d exists already") if -e $d;
    mkdir $d, 0755 or BAIL_OUT("mkdir $d: $!");
    push @etc_made, $d;
    write_file("$d/resolv.conf", "nameserver $addr{node1}\noptions timeout:1 attempts:2\n");
}
{
    my @cmd = ('ip', 'netns', 'exec', $c->member('node1')->{netns}, $DNSMASQ, '--keep-in-foreground',
               '--no-resolv', '--no-hosts', "--addn-hosts=$hosts",
               "--listen-address=$addr{node1}", '--bind-interfaces', '--port=53',
               "--pid-file=$tmp/dnsmasq.pid", "--log-facility=$tmp/dnsmasq.log", '--local=/env.test/');
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
        POSIX::_exit(127);
    }
    $dns_pid = $pid;
}
my $want = join(',', sort map { $addr{$_} } @names);
my $resolves = sub {
    my ($n, $name) = @_;
    my ($rc, $out) = $c->exec_in($n, { timeout => 5 }, 'getent', 'ahostsv4', $name);
    my %got = map { $_ => 1 } $out =~ /^(\d+\.\d+\.\d+\.\d+)\s+STREAM/mg;
    return $rc == 0 && join(',', sort keys %got) eq $want;
};
my $ready = within(20, sub { !reap_dns() && $resolves->('node2', $NAME) && $resolves->('node2', $ALIAS) });
ok($ready, "dnsmasq runs and node2 resolves $NAME and $ALIAS to node1, node2")
    or BAIL_OUT("no DNS server for the test:\n" . slurp("$tmp/dnsmasq.out") . slurp("$tmp/dnsmasq.log"));

# httpd (and so its engine) gets the variable from its environment
$ENV{DNS_MEMBERSHIP_SERVICE_NAME} = $NAME;
$c->start_all;
delete $ENV{DNS_MEMBERSHIP_SERVICE_NAME};

my %uses = (node1 => $NAME, node2 => $ALIAS);
for my $n (@names) {
    my $log = '';
    my $ok = $c->wait_for(sub { $log = $c->error_log($n); $log =~ /SC125[13]/ }, timeout => 20);
    like($log, qr/SC1253: CloudMembershipService: members are the addresses of \Q$uses{$n}\E, port \d+/,
         "$n: SC1253 names $uses{$n}" . ($n eq 'node1' ? ' (from DNS_MEMBERSHIP_SERVICE_NAME)' : ' (dnsServiceName wins)'));
    unlike($log, qr/SC1251/, "$n: no SC1251 (a name to resolve was found)");
}
{
    my $list = join ', ', sort map { $addr{$_} } @names;
    my $got = $c->wait_for(sub {
        $c->error_log('node1') =~ /SC1254: CloudMembershipService: \Q$NAME\E resolves to 2 address\(es\): ([\d., ]+)$/m
            ? join(', ', sort split /, /, $1) : '';
    }, timeout => 20);
    is($got, $list, "node1: SC1254: $NAME resolves to both members' addresses");
}
my $alive = within(20, sub {
    my ($a, $b) = (member_on($c, 'node1', 'node2'), member_on($c, 'node2', 'node1'));
    $a && $b && $a->{state} eq 'alive' && $b->{state} eq 'alive';
});
check($alive, $c, 'node1 and node2, found through DNS, see each other alive');
for my $n (@names) {
    my $p = status_of($c, $n) || {};
    is($p->{Membership}, 'CloudMembershipService', "$n: Membership: CloudMembershipService");
}

$c->stop_all;
my $dpid = $dns_pid;
ok(!reap_dns(), 'dnsmasq was still running at the end');
stop_dns();
ok(!SC::Cluster::pid_alive($dpid), "dnsmasq (pid $dpid) is gone");
my @dirs = map { "/etc/netns/" . $c->member($_)->{netns} } @names;
remove_etc();
ok(!grep({ -e } @dirs), 'the /etc/netns/<ns> directories made here are removed');
$c->teardown;
alarm 0;
done_testing();
