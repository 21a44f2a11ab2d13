#!perl
# The store's capacity follows the data (issue 17), through httpd.conf and HTTP:
#   (a) two members and a block with no capacity setting at all (Tomcat's
#       maxActiveSessions -1, our maxStoreSize 0: a quarter of the machine's
#       memory, at most 1 GiB; maxSessionSize 1 MiB): the page shows the
#       budget; 50,000 sessions of 1 KB and one of 512 KB are made on node1
#       (every request answered 200 with a cookie), node2 holds all 50,001,
#       and every one reads back on node2 with exactly its data;
#   (b) a small budget (maxStoreSize 1 MiB, maxSessionSize 64 KB, no
#       probation): sessions of 60 KB fill it; a new session past the budget
#       is answered 507 with Session-Cluster-Refused (never a page that
#       looks kept), SC1432 is logged and SessionsRejectedFull counts it, and
#       every session stored before still reads back whole on both members;
#       a change that would take a session past maxSessionSize is answered
#       507 and the session keeps its data;
#   (c) the budget raised in httpd.conf and a graceful restart of each
#       member (no full stop): node1 moves its sessions to a larger store (SC1439), the page
#       shows the new budget, every session still reads back whole, and a
#       new session is stored again.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::Cluster;
use SC::KeepAlive;
use SC::Test qw(status_of check within app demo_module demo_conf sess_line);

$SIG{ALRM} = sub { die "store_capacity.t: time limit (300 s) reached\n" };
alarm 300;

my $DEMO_SO = demo_module();
# ReplicationValve only: ids keep their route on node2 (no re-binding)
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my $APP = demo_conf($DEMO_SO, server => "LimitRequestLine 20000\nKeepAliveTimeout 30\n"
                                        . "MaxKeepAliveRequests 0\n");

# kept-alive connections: many requests in one, quickly (SC::KeepAlive)
sub conn_to { SC::KeepAlive::connect(@_) }
sub req { SC::KeepAlive::get(@_) }
sub cookie_of { SC::KeepAlive::cookie_of(@_) }
sub attr_of { my ($body, $k) = @_; $body =~ /^Attribute: \Q$k\E=(.*)$/m ? $1 : undef }
sub pattern { my ($n) = @_; my $p = '0123456789abcdef' x (int($n / 16) + 1); substr($p, 0, $n) }
sub pad_of { my ($i) = @_; my $v = "s$i-"; $v . ('x' x (1000 - length $v)) }

sub ready_both {
    my ($c, $what) = @_;
    my %p;
    check(defined within(30, sub {
              for my $n (qw(node1 node2)) {
                  $p{$n} = status_of($c, $n) or return 0;
                  return 0 unless ($p{$n}{EngineState} // '') eq 'ready'
                                  && ($p{$n}{MembersAlive} // 0) >= 1;
              }
              1;
          }), $c, "$what: both members ready", map { "$_: " . sess_line($p{$_}) } sort keys %p);
    return \%p;
}

# (a) no capacity setting: 50,000 sessions of 1 KB and one of 512 KB -----------
{
    my $c = SC::Cluster->new(
        members    => 2,
        extra_conf => $APP,
        cluster    => sub {
            my ($m, $all) = @_;
            return SC::Cluster::static_block($m, $all, valves => $KEEP_ROUTES);
        },
    );
    $c->start_all;
    my $p = ready_both($c, '(a)');
    my $mem = 0;
    if (open my $fh, '<', '/proc/meminfo') {
        while (<$fh>) { $mem = $1 * 1024 if /^MemTotal:\s+(\d+) kB/ }
    }
    my $want = $mem / 4 < 1073741824 ? int($mem / 4) : 1073741824;
    $want = 64 * 1048576 if $want < 64 * 1048576;
    for my $n (qw(node1 node2)) {
        my $b = $p->{$n}{SessionsBudgetBytes} // 0;
        # the page's figure from sysconf, ours from /proc/meminfo: a page apart at most
        ok(abs($b - $want) <= 65536, "(a) $n: SessionsBudgetBytes $b, a quarter of the "
           . "machine's memory at most 1 GiB ($want)");
        is($p->{$n}{SessionMaxSize}, 1048576, "(a) $n: SessionMaxSize 1048576 (1 MiB by default)");
        cmp_ok($p->{$n}{SessionsCapacity} // 0, '>=', 50001,
               "(a) $n: SessionsCapacity ($p->{$n}{SessionsCapacity}) leaves room for 50,001");
    }

    my $N = 50_000;
    my (@ids, @bad);
    my $s = conn_to($c, 'node1');
    for my $i (1 .. $N) {
        my ($st, $h) = req($s, '/app?set=pad&value=' . pad_of($i));
        my $id = $h ? cookie_of($h) : undef;
        if ($st != 200 || !$id) {
            push @bad, "session $i: status $st" if @bad < 5;
            $s = conn_to($c, 'node1');
            next;
        }
        push @ids, $id;
    }
    is(scalar @ids, $N, "(a) $N sessions of 1 KB made on node1: every request answered 200 "
       . 'with a cookie') or diag(join("\n", @bad));
    my ($st, $h) = req($s, '/app?set=big&fill=524288');
    my $big = $h ? cookie_of($h) : undef;
    ok($st == 200 && $big, "(a) a session of 512 KB made on node1 (status $st)");
    close $s;

    my $held;
    my $all = within(90, sub {
        $held = (status_of($c, 'node2') || {})->{SessionsActive} // 0;
        $held >= $N + 1;
    });
    check($all, $c, "(a) node2 holds all " . ($N + 1) . " sessions ($held)");

    my ($read, $wrong) = (0, 0);
    my @diag;
    $s = conn_to($c, 'node2');
    for my $k (0 .. $#ids) {
        my ($st2, undef, $body) = req($s, '/app?read=1', $ids[$k]);
        my $v = defined $body ? attr_of($body, 'pad') : undef;
        my $exp = pad_of($k + 1);
        if ($st2 == 200 && defined $v && $v eq $exp) { $read++ }
        else {
            $wrong++;
            push @diag, "$ids[$k]: status $st2, pad " . (defined $v ? length($v) . ' bytes' : 'missing')
                if @diag < 5;
            $s = conn_to($c, 'node2') unless $st2;
        }
    }
    is($read, scalar @ids, "(a) every 1 KB session reads back on node2 with exactly its data "
       . "($wrong wrong)") or diag(join("\n", @diag));
    ($st, undef, my $body) = req($s, '/app?read=1', $big);
    my $v = defined $body ? attr_of($body, 'big') : undef;
    ok($st == 200 && defined $v && $v eq pattern(524288),
       '(a) the 512 KB session reads back on node2 with exactly its data ('
       . (defined $v ? length($v) : 'no') . ' bytes)');
    close $s;
    my $p2 = status_of($c, 'node2') || {};
    cmp_ok($p2->{SessionsBudgetUsed} // 0, '>=', $N * 1000 + 524288,
           "(a) node2's SessionsBudgetUsed ($p2->{SessionsBudgetUsed}) counts the data");
    $c->teardown;
}

# (b) a small budget, and (c) raising it with a graceful restart ------------------
{
    my %MGR = (maxStoreSize => 1048576, maxSessionSize => 65536,
               probationInactiveInterval => 0);
    my $block = sub {
        my ($budget) = @_;
        return sub {
            my ($m, $all) = @_;
            return SC::Cluster::static_block($m, $all, channelSendOptions => 6,
                                             valves => $KEEP_ROUTES,
                                             manager => { %MGR, maxStoreSize => $budget });
        };
    };
    my $c = SC::Cluster->new(members => 2, extra_conf => $APP, cluster => $block->(1048576));
    $c->start_all;
    my $p = ready_both($c, '(b)');
    is($p->{node1}{SessionsBudgetBytes}, 1048576, '(b) maxStoreSize 1048576: SessionsBudgetBytes 1048576');

    my (@ids, @refused);
    my $s = conn_to($c, 'node1');
    for my $i (1 .. 25) {
        my ($st, $h, $body) = req($s, "/app?set=big&fill=" . (60000 + $i));
        my $id = $h ? cookie_of($h) : undef;
        if ($st == 200 && $id) { push @ids, [ $id, 60000 + $i ] }
        else { push @refused, { status => $st, headers => $h || {} } }
        $s = conn_to($c, 'node1') unless $st;
    }
    close $s;
    ok(@ids >= 10 && @ids < 25, '(b) sessions of 60 KB fill a budget of 1 MiB: '
       . scalar(@ids) . ' stored, ' . scalar(@refused) . ' refused');
    my @not507 = grep { $_->{status} != 507
                        || ($_->{headers}{'session-cluster-refused'} // '') !~ /store is full/ } @refused;
    ok(@refused && !@not507, '(b) each new session past the budget is answered 507 with '
       . 'Session-Cluster-Refused: the store is full')
        or diag(join("\n", map { "status $_->{status}, refused: "
                                 . ($_->{headers}{'session-cluster-refused'} // '(none)') } @not507[0 .. ($#not507 < 2 ? $#not507 : 2)]));
    like($c->error_log('node1'), qr/SC1432: new session not saved \(507 to the client\): the session store is full \(\d+ sessions, \d+ of its 1048576 bytes/,
         '(b) node1 logs SC1432 with the budget');
    my $p1 = status_of($c, 'node1') || {};
    is($p1->{SessionsRejectedFull}, scalar @refused, "(b) SessionsRejectedFull counts them ("
       . scalar(@refused) . ')');
    cmp_ok($p1->{SessionsBudgetUsed} // 0, '<=', 1048576, "(b) SessionsBudgetUsed "
           . ($p1->{SessionsBudgetUsed} // '?') . ' within the budget');

    my $read_all = sub {
        my ($n, $what) = @_;
        my @bad;
        my $sk = conn_to($c, $n);
        for my $e (@ids) {
            my ($st, undef, $body) = req($sk, '/app?read=1', $e->[0]);
            my $v = defined $body ? attr_of($body, 'big') : undef;
            push @bad, "$e->[0]: status $st, " . (defined $v ? length($v) . ' bytes' : 'missing')
                unless $st == 200 && defined $v && $v eq pattern($e->[1]);
        }
        close $sk;
        ok(!@bad, "$what $n: every one of the " . scalar(@ids) . ' stored sessions reads back whole')
            or diag(join("\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)]));
    };
    within(20, sub { ((status_of($c, 'node2') || {})->{SessionsActive} // 0) >= @ids });
    $read_all->($_, '(b)') for qw(node1 node2);

    # a change past maxSessionSize: 507, the session as it was
    {
        my $s2 = conn_to($c, 'node1');
        my ($st, $h) = req($s2, '/app?set=big&fill=70000', $ids[0][0]);
        is($st, 507, '(b) a change taking a session past maxSessionSize 65536 is answered 507');
        like($h->{'session-cluster-refused'} // '', qr/maxSessionSize/, '(b) ... and says why');
        close $s2;
        $read_all->('node1', '(b) after it,');
    }

    # (c) a larger budget by a graceful restart
    # every member gets the larger budget (with synchronous replication a
    # member that cannot store a copy makes the write fail: 503)
    for my $n (qw(node2 node1)) {
        $c->configure($n, cluster => $block->(4 * 1048576));
        $c->graceful($n);
    }
    my $log = $c->error_log('node1');
    like($log, qr/SC1439: session store moved to a larger one: budget 1048576 -> 4194304 bytes, \Q${\ scalar @ids}\E sessions copied/,
         '(c) a graceful restart with maxStoreSize 4 MiB moves the sessions to a larger store (SC1439)');
    my $p3;
    within(20, sub { $p3 = status_of($c, 'node1');
                     $p3 && ($p3->{EngineState} // '') eq 'ready' && ($p3->{MembersAlive} // 0) >= 1 });
    is($p3 && $p3->{SessionsBudgetBytes}, 4194304, '(c) the page shows the new budget');
    is($p3 && $p3->{SessionsActive}, scalar @ids, '(c) ... and every session');
    $read_all->('node1', '(c)');
    {
        my $s3 = conn_to($c, 'node1');
        my ($st, $h) = req($s3, '/app?set=big&fill=60000');
        ok($st == 200 && cookie_of($h), "(c) a new session is stored again (status $st)")
            or diag('Session-Cluster-Refused: ' . ($h->{'session-cluster-refused'} // '(none)'));
        close $s3;
    }
    unlike($c->error_log($_), qr/exit signal|Segmentation|AH00052/, "$_: no crash in the error_log")
        for qw(node1 node2);
    $c->teardown;
}
done_testing();
