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
use SC::Cluster;
use SC::DNS;
use SC::Test qw(within need check member_on status_of need_netns);

my $NAME  = 'members.env.test';
my $ALIAS = 'alias.env.test';

need_netns();
my $DNSMASQ = SC::DNS::dnsmasq();

$SIG{ALRM} = sub { die "dns_env.t: time limit (90 s) reached\n" };
alarm 90;

# dnsmasq and the /etc/netns/<ns> files: made here, removed here (also from
# END and on signals)
my $dns = SC::DNS->new('sc-dns-env-XXXXXX');
my $tmp = $dns->dir;

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
$dns->install_signal_handlers;
my @names = $c->members;
my %addr = map { $_ => $c->member($_)->{addr} } @names;
unlike($c->config_text('node1'), qr/dnsServiceName/, 'node1\'s block has no dnsServiceName');
like($c->config_text('node2'), qr/dnsServiceName="\Q$ALIAS\E"/, "node2's block has dnsServiceName=\"$ALIAS\"");

# dnsmasq in node1's namespace; both names list node1 and node2
my $hosts = "$tmp/members.hosts";
$dns->write_file($hosts, join '', map { my $n = $_; map { "$addr{$n} $_\n" } $NAME, $ALIAS } @names);
$dns->resolv_conf($c, $addr{node1});
$dns->start($c, 'node1', dnsmasq => $DNSMASQ, addr => $addr{node1}, hosts => $hosts, domain => 'env.test');
my $want = join(',', sort map { $addr{$_} } @names);
my $resolves = sub {
    my ($n, $name) = @_;
    my ($rc, $out) = $c->exec_in($n, { timeout => 5 }, 'getent', 'ahostsv4', $name);
    my %got = map { $_ => 1 } $out =~ /^(\d+\.\d+\.\d+\.\d+)\s+STREAM/mg;
    return $rc == 0 && join(',', sort keys %got) eq $want;
};
my $ready = within(20, sub { !$dns->reap && $resolves->('node2', $NAME) && $resolves->('node2', $ALIAS) });
ok($ready, "dnsmasq runs and node2 resolves $NAME and $ALIAS to node1, node2")
    or BAIL_OUT("no DNS server for the test:\n" . $dns->slurp("$tmp/dnsmasq.out") . $dns->slurp("$tmp/dnsmasq.log"));

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
my $dpid = $dns->pid;
ok(!$dns->reap, 'dnsmasq was still running at the end');
$dns->stop;
ok(!SC::Cluster::pid_alive($dpid), "dnsmasq (pid $dpid) is gone");
my @dirs = map { "/etc/netns/" . $c->member($_)->{netns} } @names;
$dns->remove_etc;
ok(!grep({ -e } @dirs), 'the /etc/netns/<ns> directories made here are removed');
$c->teardown;
alarm 0;
done_testing();
