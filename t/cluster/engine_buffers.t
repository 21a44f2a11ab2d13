# The engine gives back the buffers a large message grew (issue 16: 104
# pings of 16 MB grew an engine from 1 MB to 1.53 GB, kept after).  Each
# child thread keeps one connection to its engine, and a ping of 1 MiB (the
# page's limit) grows that connection's receive buffer to hold it, and the
# send buffer towards the member pinged; once the message is through, both
# go back to their small size.  node1's engine's resident memory, read from
# /proc after pings from 8 clients at once (through many child threads), is
# back within a few MiB of what it was: far less than one kept buffer of
# 1 MiB or more per connection used.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use POSIX ();
use SC::Cluster;
use SC::Test qw(check within alive_on status_of page_ping);

plan tests => 6;

$SIG{ALRM} = sub { die "engine_buffers.t: time limit (180 s) reached\n" };
alarm 180;

my $MIB = 1024 * 1024;
my $CLIENTS = 8;
my $PINGS = 5;            # each

# under check-asan, AddressSanitizer would keep what is freed in its
# quarantine (to catch a use after free) and the engine could not shrink:
# this test's httpd processes run with no quarantine, so that a buffer given
# back is unmapped there too (the other tests keep it)
$ENV{ASAN_OPTIONS} = join ':', grep { length } ($ENV{ASAN_OPTIONS} // ''), 'quarantine_size_mb=0'
    if $ENV{SC_SANITIZER_LOGS};

my $c = SC::Cluster->new(
    members => 2,
    cluster => sub {
        my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all);
    },
    # many threads per child, so that the pings use many engine connections
    extra_conf => "<IfModule mpm_event_module>\n  ThreadsPerChild 16\n</IfModule>\n",
);
$c->start_all;
check(within(30, sub { alive_on($c, 'node1', 'node2') && alive_on($c, 'node2', 'node1') }), $c,
      'node1 and node2 see each other alive');

sub engine_rss_kb {
    my $pid = (status_of($c, 'node1') || {})->{EnginePid} or return undef;
    open(my $fh, '<', "/proc/$pid/status") or return undef;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)\s+kB/ }
    return undef;
}

# one ping first: the code paths touched once, the baseline after them
my ($s1, undef, $b1) = page_ping($c, 'node1', 'node2', size => $MIB, ack => 1, timeout => 20);
like($b1 // '', qr/^Result: acknowledged$/m, 'a ping of 1 MiB to node2 is acknowledged') or diag("status $s1: $b1");
my $before = engine_rss_kb();
ok(defined $before, "node1's engine's resident memory is read (${\($before // '?')} kB)");

# from concurrent clients, so that the pings come through many child
# threads (each with its own engine connection); counted once all are done
my @kids;
for my $k (1 .. $CLIENTS) {
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my $ok = 0;
        for (1 .. $PINGS) {
            my (undef, undef, $b) = page_ping($c, 'node1', 'node2', size => $MIB, ack => 1,
                                              timeout => 30);
            $ok++ if ($b // '') =~ /^Result: acknowledged$/m;
        }
        POSIX::_exit($ok == $PINGS ? 0 : 1);
    }
    push @kids, $pid;
}
my $failed = 0;
for my $pid (@kids) {
    waitpid($pid, 0);
    $failed++ if $? != 0;
}
is($failed, 0, "$CLIENTS clients x $PINGS pings of 1 MiB, at once: every one acknowledged");
my $after = engine_rss_kb();
note(sprintf "node1's engine: %s kB before, %s kB after %d pings of 1 MiB",
     $before // '?', $after // '?', $CLIENTS * $PINGS + 1);
# kept, a buffer of at least 1 MiB stays on every engine connection a ping
# came through (one per child thread used); given back, the engine stays
# within a few messages' worth of what it had
ok(defined $after && defined $before && $after - $before < 8 * 1024,
   'the engine gave the buffers back: it grew by less than 8 MiB ('
   . (defined $after && defined $before ? $after - $before : '?') . ' kB)');

$c->stop_all;
ok(!$c->problems, 'no member hung or crashed') or diag(join("\n", $c->problems));
