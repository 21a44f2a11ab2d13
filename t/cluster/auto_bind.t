#!perl
# A Tomcat block pasted as it is, through real members (issue 17):
#   1. Receiver autoBind="0" (node1 and node2): Tomcat takes a value below 1
#      as 1 (ReceiverBase.setAutoBind), so does the module: both members
#      start, each binds its Receiver on exactly the port written (SC1203,
#      the page's Receiver field) and they see each other alive through it.
#   2. What has no effect is said at start and on the page: node1's block
#      writes Receiver selectorTimeout="100" (no effect here): what it
#      prints at start has one SC1413 line naming NioReceiver.selectorTimeout
#      with its line and nothing else (not port nor autoBind, which act), and
#      its page's configuration lines mark it "no effect (written in the
#      block)", autoBind "= 1  # ports, set in the block", with the note
#      saying why.
#   3. node2 runs a BackupManager: no warning at start (SC1414) and its
#      page says how it chooses backups on Manager.className; a session
#      written on node2 is read on node1 (its backup).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::Test qw(page check within alive_on app show demo_module demo_conf);

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; return scalar <$fh> // '' }

plan tests => 13;

$SIG{ALRM} = sub { die "auto_bind.t: time limit (120 s) reached\n" };
alarm 120;

my $DEMO_SO = demo_module();
my $BACKUP = 'org.apache.catalina.ha.session.BackupManager';

my $c = SC::Cluster->new(
    members => 2,
    extra_conf => demo_conf($DEMO_SO),
    cluster => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all,
                                          valves => [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ]);
        my $extra = $m->{name} eq 'node1' ? ' selectorTimeout="100"' : '';
        $x =~ s/ autoBind="1"/ autoBind="0"$extra/ or die "no autoBind in the static block";
        $x =~ s{^(<Cluster [^\n]*>\n)}{$1  <Manager className="$BACKUP"/>\n}
            or die "no <Cluster> line" if $m->{name} eq 'node2';
        return $x;
    },
);

my $started = eval { $c->start_all; 1 };
ok($started, '1. both members start with Receiver autoBind="0"') or diag($@);
# the members must start for anything below to be checked: a failed start
# fails the file here (not skipped)
die "auto_bind.t: the members did not start: $@" unless $started;
my %port = map { ($_ => $c->member($_)->{cluster_port}) } qw(node1 node2);
for my $n (qw(node1 node2)) {
    my $p = page($c, $n) // '';
    my ($recv) = $p =~ /^Receiver: (\S+)$/m;
    is($recv, "127.0.0.1:$port{$n}", "1. $n binds its Receiver on the port written, $port{$n}")
        or diag($p);
}
my $log1 = $c->error_log('node1');
like($log1, qr/SC1203: Receiver listening on 127\.0\.0\.1:$port{node1}\b/, '1. node1 logs it (SC1203)');
check(within(30, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') }), $c,
      '1. node1 and node2 see each other alive');

# the block's line of the Receiver in node1's httpd.conf
my $conf = $c->config_text('node1');
my ($before) = $conf =~ /\A(.*?)<Receiver /s;
my $rline = ($before =~ tr/\n//) + 1;
# what httpd prints while it reads its configuration at start (before
# the error_log is open): the harness keeps it in logs/startup.out
my $out1 = slurp($c->member('node1')->{dir} . '/logs/startup.out');
my @w = grep { /SC1413: / } split /\n/, $out1;
is(scalar @w, 1, '2. node1 warns once at start (SC1413)') or diag($out1);
like($w[0] // '', qr/SC1413: 1 attribute written in the <Cluster> block has no effect in httpd: NioReceiver\.selectorTimeout \(line $rline\);/,
     "2. ... naming NioReceiver.selectorTimeout (line $rline), and nothing else (not port nor autoBind)");
my $p1 = page($c, 'node1') // '';
like($p1, qr/^Receiver\.selectorTimeout = 100  # ms, no effect \(written in the block\)$/m,
     '2. node1\'s page marks Receiver.selectorTimeout "no effect"');
like($p1, qr/^Receiver\.autoBind = 1  # ports, set in the block$/m, '2. ... and shows autoBind = 1');
like($p1, qr/^# note: Receiver autoBind="0" is taken as 1, as Tomcat does: only port $port{node1} is tried$/m,
     '2. ... with the note saying why');

my $out2 = slurp($c->member('node2')->{dir} . '/logs/startup.out');
unlike($out2, qr/SC1414/, '3. node2 (BackupManager) runs as such: no warning (SC1414) at start');
like(page($c, 'node2') // '', qr/^Manager\.className = \Q$BACKUP\E  # line \d+, one backup per session, chosen round robin/m,
     '3. ... and its page says how it chooses backups on Manager.className');
my $w = app($c, 'node2', 'auto');
my $sid = $w->{sid};
my $read;
check(within(20, sub { $read = app($c, 'node1', 'read', $sid);
                       ($read->{session} // '') eq ($sid // '-') && ($read->{counter} // '') eq ($w->{counter} // '-') }),
      $c, '3. a session written on node2 is read on node1, with its counter',
      'node2 wrote: ' . show($w), 'node1 read: ' . ($read ? show($read) : ''));
$c->teardown;
