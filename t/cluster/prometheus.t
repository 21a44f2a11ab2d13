#!perl
# The Prometheus output checked by Prometheus's own tool, and the docs that
# describe the page's fields (issue 23).  Two static members node1 and node2
# and a front (SessionClusterBalancer) start; once node1 sees node2 and the
# front alive and the front shows both BalancerMembers:
#   1. node1's and the front's /cluster-manager?format=prometheus (200,
#      text/plain; version=0.0.4) pass `promtool check metrics`: no parse
#      error, and no lint finding but the six known ones (gauges named in
#      milliseconds after the page's stable field names, docs/reference/
#      prometheus.md; any other finding, a counter without _total say, fails).
#   2. docs/prometheus/prometheus.yml passes `promtool check config` (which
#      reads the alerting rules too), session_cluster_alerts.yml `promtool
#      check rules`, and the rules' unit tests `promtool test rules`; every
#      session_cluster_* metric the rules name is a family (# TYPE) of node1's
#      output.
#   3. docs/reference/status-page.md names every ?auto field of node1 and of
#      the front (Key: lines, Member: and BalancerMember: keys), and every
#      Prometheus family of their outputs.
# Needs promtool (Debian's prometheus package; build/install-deps.sh).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Temp qw(tempfile);
use SC::Cluster;
use SC::Test qw(need status_of check within);

my $LIMIT = 120;
$SIG{ALRM} = sub { die "prometheus.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $promtool = SC::Cluster::which('promtool');
need($promtool, "promtool (apt-get install prometheus)");

my $REPO = SC::Cluster::repo_dir();
my $DOCS = "$REPO/docs";

# The lint findings of the module's output as it is (names kept stable: the
# page's fields CountersSinceMs, EngineUptimeMs, ...).  Reported; any other
# finding fails.
my %KNOWN = map { ("$_ metric names should not contain abbreviated units" => 1) } qw(
    session_cluster_counters_since_ms session_cluster_engine_published_ms_ago
    session_cluster_engine_uptime_ms session_cluster_last_transfer_ms
    session_cluster_member_alive_ms session_cluster_msgs_per_sec
);

sub slurp { my ($f) = @_; open my $fh, '<', $f or die "$f: $!"; local $/; return <$fh> }

# promtool with @args, $stdin on its standard input: (exit status, output)
sub promtool {
    my ($stdin, @args) = @_;
    my ($fh, $in) = tempfile(UNLINK => 1);
    print $fh $stdin // '';
    close $fh;
    my $out = `"$promtool" @args <"$in" 2>&1`;
    return ($? >> 8, $out);
}

my $c = SC::Cluster->new(members => 2, front => 'front');
$c->start_all;

my $ready = within(30, sub {
    my $p = status_of($c, 'node1') or return 0;
    my %alive = map { ($_->{route} // '') => ($_->{state} // '') } @{ $p->{members} };
    my $f = status_of($c, 'front') or return 0;
    my @bm = grep { ($_->{member} // '') eq 'ready' } @{ $f->{balancer_members} };
    return ($p->{EngineState} // '') eq 'ready' && ($alive{node2} // '') eq 'alive'
        && ($alive{front} // '') eq 'alive' && @bm == 2;
});
check($ready, $c, 'node1 sees node2 and the front alive; the front both BalancerMembers ready')
    or BAIL_OUT('the cluster did not come up');

# 1. promtool check metrics
my (%prom, %auto);
for my $n (qw(node1 front)) {
    my ($s, $h, $b) = $c->get($n, '/cluster-manager?format=prometheus', timeout => 5);
    is($s, 200, "$n: ?format=prometheus answers 200");
    like($h->{'content-type'} // '', qr{^text/plain; version=0\.0\.4}, "$n: exposition format 0.0.4");
    $prom{$n} = $b // '';
    my ($rc, $out) = promtool($prom{$n}, 'check', 'metrics');
    my @findings = grep { /\S/ } split /\n/, $out;
    my @unknown = grep { !$KNOWN{$_} } @findings;
    ok($rc == 0 || ($rc == 3 && !@unknown), "$n: promtool check metrics: no parse error (exit $rc)")
        or diag($out);
    ok(!@unknown, "$n: promtool check metrics: no finding but the known ones")
        or diag(join("\n", 'promtool check metrics says:', @unknown));
    my ($as, $ah, $ab) = $c->get($n, '/cluster-manager?auto', timeout => 5);
    $auto{$n} = $ab // '';
}
like($prom{node1}, qr/^session_cluster_sessions_active\{route="node1"\} \d+$/m,
     'node1 exports session_cluster_sessions_active');
like($prom{front}, qr/^session_cluster_balancer_member_info\{[^}]*balancer_member="node1"/m,
     'the front exports its BalancerMembers');

# 2. the scrape configuration and the alerting rules
my ($rc, $out) = promtool('', 'check', 'config', "$DOCS/prometheus/prometheus.yml");
is($rc, 0, 'promtool check config docs/prometheus/prometheus.yml') or diag($out);
like($out, qr/SUCCESS: 1 rule files found/, 'the scrape configuration reads the alerting rules');
($rc, $out) = promtool('', 'check', 'rules', "$DOCS/prometheus/session_cluster_alerts.yml");
is($rc, 0, 'promtool check rules docs/prometheus/session_cluster_alerts.yml') or diag($out);
($rc, $out) = promtool('', 'test', 'rules', "$DOCS/prometheus/session_cluster_alerts_test.yml");
is($rc, 0, 'promtool test rules: the alerts fire as their unit tests say') or diag($out);

my %family = map { $_ => 1 } ("$prom{node1}\n$prom{front}" =~ /^# TYPE (\S+) /mg);
my $rules = slurp("$DOCS/prometheus/session_cluster_alerts.yml");
$rules =~ s/^\s*#.*$//mg;                                 # comments
my ($exprs) = join "\n", $rules =~ /^\s*expr:\s*(?:>-?\s*\n)?((?:.*\n)*?)(?=\s*(?:for|labels):)/mg;
my %used = map { $_ => 1 } $exprs =~ /\b(session_cluster_\w+)/g;
ok(scalar(keys %used) >= 8, 'the rules name the module\'s metrics (' . scalar(keys %used) . ')');
my @missing = grep { !$family{$_} } sort keys %used;
ok(!@missing, 'every metric the alerting rules name is in the module\'s output')
    or diag("not exported: @missing");

# 3. the status page's fields in docs/reference/status-page.md
my $doc = slurp("$DOCS/reference/status-page.md") . slurp("$DOCS/reference/prometheus.md");
my %keys;
for my $n (qw(node1 front)) {
    for my $l (split /\n/, $auto{$n}) {
        last if $l =~ /^# mod_session_cluster /;            # the configuration
        if ($l =~ /^(Member|BalancerMember): (.*)$/) {
            $keys{$_} = 1 for $2 =~ /(?:^| )(\w+)=/g;
        }
        elsif ($l =~ /^([A-Z]\w*):/) {
            $keys{$1} = 1;
        }
    }
}
ok(scalar(keys %keys) > 60, 'the pages have their fields (' . scalar(keys %keys) . ')');
my @undoc = grep { $doc !~ /`\Q$_\E(?::)?`/ } sort keys %keys;
ok(!@undoc, 'docs/reference/status-page.md names every ?auto field') or diag("not named: @undoc");
my @undoc_prom = grep { $doc !~ /\b\Q$_\E\b/ } sort keys %family;
ok(!@undoc_prom, 'docs/reference/status-page.md names every Prometheus family')
    or diag("not named: @undoc_prom");

$c->teardown;
done_testing();
