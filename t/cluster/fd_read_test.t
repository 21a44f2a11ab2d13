#!perl
# TcpFailureDetector performReadTest and readTestTimeout (README "Membership",
# "Interceptors"): the check of a silent member is a PING over TCP that must
# be answered within connectTimeout, or with performReadTest="true" within
# readTestTimeout (Tomcat's read test).  Two static members (dropTime 3000 ms,
# connectTimeout 1000 ms):
#   node1: performReadTest="true" readTestTimeout="15000"
#   node2: readTestTimeout="15000" only (no read test: it has no effect)
#   A. node2 frozen (SIGSTOP): node1 holds it suspect (its check running),
#      then declares it dead (polled, 40 s limit) with a verdict that names
#      the deadline its check applied: readTestTimeout's 15000 ms.  node2
#      resumed is alive again on node1.
#   B. node1 frozen: node2 declares it dead with a verdict that names
#      connectTimeout's 1000 ms (without performReadTest its readTestTimeout
#      changes nothing).  node1 resumed is alive again on node2.
# The verdict (the page's and SC1221's) is built from the deadline the check
# was given, so it tells which attribute governed it; nothing here is timed.
# A module that ignores performReadTest fails A (dead at once, verdict
# naming connectTimeout); one that applies readTestTimeout without it fails
# B's verdict.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of member_on check within);
SC::Test::dump_options(tail => 30);

$SIG{ALRM} = sub { die "fd_read_test.t: time limit (150 s) reached\n" };
alarm 150;

my %FD = (node1 => 'performReadTest="true" readTestTimeout="15000"',
          node2 => 'readTestTimeout="15000"');
my $c = SC::Cluster->new(
    members => 2,
    cluster => sub {
        my ($m, $all) = @_;
        my $x = SC::Cluster::static_block($m, $all);
        $x =~ s{(interceptors\.TcpFailureDetector")/>}{$1 $FD{$m->{name}}/>};
        return $x;
    },
);
$c->start_all;
sub state_on { my $m = member_on($c, $_[0], $_[1]); return $m ? ($m->{state}, $m->{verdict} // '') : ('', '') }
my $ok = within(30, sub { (state_on('node1', 'node2'))[0] eq 'alive' && (state_on('node2', 'node1'))[0] eq 'alive' });
check($ok, $c, 'node1 and node2 see each other alive');
like($c->config_text('node1'), qr/TcpFailureDetector" performReadTest="true" readTestTimeout="15000"/,
     'node1: TcpFailureDetector with performReadTest="true" readTestTimeout="15000"');

# A. the read test's time ------------------------------------------------------------
{
    $c->sigstop('node2');
    my ($st, $v);
    my $t = within(30, sub { ($st, $v) = state_on('node1', 'node2'); $st eq 'suspect' || $st eq 'dead' });
    check(defined $t && $st eq 'suspect', $c, 'A. node2 frozen: node1 holds it suspect (check running)',
          "state $st, verdict \"$v\"");
    my $d = within(40, sub { ($st, $v) = state_on('node1', 'node2'); $st eq 'dead' });
    check($d, $c, 'A. then node1 declares node2 dead', "state $st, verdict \"$v\"");
    like($v, qr/no answer within 15000 ms \(readTestTimeout\)|no answer to the TCP check within 15000 ms \(readTestTimeout\)/,
         'A. ... with a verdict that names readTestTimeout (15000 ms)');
    $c->sigcont('node2');
    check(within(30, sub { (state_on('node1', 'node2'))[0] eq 'alive' }), $c,
          'A. node2 resumed: alive again on node1');
}

# B. readTestTimeout without performReadTest -----------------------------------------
{
    check(within(30, sub { (state_on('node2', 'node1'))[0] eq 'alive' }), $c, 'B. node2 sees node1 alive');
    $c->sigstop('node1');
    my ($st, $v);
    my $d = within(40, sub { ($st, $v) = state_on('node2', 'node1'); $st eq 'dead' });
    check($d, $c, 'B. node1 frozen: node2 declares it dead', "state $st, verdict \"$v\"");
    like($v, qr/no answer (?:to the TCP check )?within 1000 ms \(connectTimeout\)/,
         'B. ... with a verdict that names connectTimeout (1000 ms): readTestTimeout alone has no effect');
    $c->sigcont('node1');
    check(within(30, sub { (state_on('node2', 'node1'))[0] eq 'alive' }), $c,
          'B. node1 resumed: alive again on node2');
}

$c->teardown;
done_testing();
