#!perl
# A partition and its heal (issue 16): three members (node1..node3, the demo
# application at /app, static membership with TcpFailureDetector) and a front
# (mod_proxy_balancer with SessionClusterBalancer), each in its own network
# namespace on one bridge; a member is cut off by taking its link to the
# bridge down (SC::Cluster::partition), and healed by bringing it up.
# node1 and node2 replicate synchronously (channelSendOptions 6), node3
# asynchronously (8), so that the small side of the first partition writes
# and that of the second refuses.  Every request goes to a member from its
# own namespace (a client there), none through the front.
#
#   (a) node3 cut off for 30 s while both sides write: node3 finds itself in a
#       minority (Minority 1, seeing 1 of 3 members; SC1422), node1 and node2
#       do not.  Sessions made before: M (written by the majority only), C
#       (by both sides, node3 twice as often), I3 (by node3 only), XM
#       (invalidated by the majority, written by node3), X3 (invalidated by
#       node3, written by the majority).  After the heal every session
#       converges (the three members read the same counter, or no session)
#       within a polling limit; M and C read the majority's last counter (no
#       acknowledged write of the majority lost, although node3 wrote C more
#       often), I3 node3's (a change the majority did not touch is kept), XM
#       and X3 are gone everywhere (no invalidated session returns); node3
#       counts the conflicts it gave way on (Conflicts, at least one per C
#       session) and ran anti-entropy; it logged SC1423 when it saw the
#       others again; the front has node3 back in rotation (member=ready,
#       Ok) although retry=300 has not passed; a write on node3 after the
#       heal reaches the others.
#   (b) node1 (synchronous) cut off: once in a minority it refuses every
#       session change with 503, Retry-After and Session-Cluster-Refused
#       saying why (a new session gets no cookie), and counts them
#       (MinorityRefused); the session stays as it was there; node2 and node3
#       go on writing; after the heal node1 accepts writes again, and the
#       session converges to the majority's counter plus node1's new write.
#
# Before this change nothing reconciled the stores: after the heal node3
# kept its own counters and its copies of the sessions invalidated on the
# majority side, and node1 accepted writes alone.  How long the convergence
# took is printed (note), not asserted.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(need status_of check within demo_module demo_conf balancer_member bm_line
                status_has need_netns num);
SC::Test::dump_options(tail => 30, cut => 300);

need_netns();

$SIG{ALRM} = sub { die "partition.t: time limit (240 s) reached\n" };
alarm 240;

my $DEMO_SO = demo_module();
# (a)'s partition lasts this long at least (the issue's 30 s), with rounds of
# writes on both sides throughout (3 at least)
my $PARTITION_S = $ENV{SC_PARTITION_S} // 30;
my $WRITE_ROUNDS = 0;
my %SEND = (node1 => 6, node2 => 6, node3 => 8);

my $c = SC::Cluster->new(
    members    => 3,
    netns      => 1,
    front      => { name => 'front', retry => 300, connectiontimeout => 5, timeout => 10 },
    loglevel   => 'info',
    extra_conf => "StartServers 2\n" . demo_conf($DEMO_SO),
    cluster    => sub {
        my ($m, $all) = @_;
        # a ReplicationValve alone: no JvmRouteBinderValve (Tomcat's default
        # with none named), so that reading a session on every member does
        # not re-bind it to each in turn
        return SC::Cluster::static_block($m, $all,
                                         channelSendOptions => $SEND{ $m->{name} } // 8,
                                         valves => [ '<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>' ]);
    },
);
my @N = $c->routed;
my $F = $c->front;

# A batch of requests to member $n's /app, from a client in $n's own
# namespace: each [query, session id or undef].  Returns one hash per
# request: status, counter, session ('(new)' when none was loaded), cookie
# (Set-Cookie), refused (Session-Cluster-Refused), retry (Retry-After).
my $CLIENT = <<'EOC';
use IO::Socket::INET;
my ($host, $port, @req) = @ARGV;
$| = 1;
for my $r (@req) {
    my ($q, $id) = split /\|/, $r, 2;
    my $resp = '';
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 8;
        my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Timeout => 5)
            or die "connect: $!\n";
        print $s "GET /app?$q HTTP/1.0\r\nHost: localhost\r\n"
            . (length($id // '') ? "Cookie: JSESSIONID=$id\r\n" : '')
            . "Connection: close\r\n\r\n";
        local $/;
        $resp = <$s> // '';
        alarm 0;
        1;
    };
    my ($st) = $resp =~ m{\AHTTP/\S+\s+(\d+)};
    my ($n) = $resp =~ /^Counter: (\d+)/m;
    my ($sess) = $resp =~ /^Session: (\S+)/m;
    my ($ck) = $resp =~ /^Set-Cookie: JSESSIONID=([^;\s]+)/mi;
    my ($why) = $resp =~ /^Session-Cluster-Refused: ([^\r\n]*)/mi;
    my ($ra) = $resp =~ /^Retry-After: (\S+)/mi;
    print join("\t", $st // 0, $n // '', $sess // '', $ck // '', $why // '', $ra // ''), "\n";
}
EOC

sub batch {
    my ($n, @req) = @_;
    my $m = $c->member($n);
    my ($rc, $out) = $c->exec_in($n, { timeout => 10 * @req + 20 }, $^X, '-e', $CLIENT,
                                 $m->{addr}, $m->{http_port},
                                 map { "$_->[0]|" . ($_->[1] // '') } @req);
    my @lines = split /\n/, $out // '';
    my @r;
    for my $i (0 .. $#req) {
        my @f = split /\t/, $lines[$i] // '', -1;
        push @r, { status => $f[0] || 0, counter => $f[1], session => $f[2], cookie => $f[3],
                   refused => $f[4], retry => $f[5] };
    }
    return @r;
}

# What member $n holds of the sessions named: id -> counter, or undef when it
# has none (read without changing it).
sub read_all {
    my ($n, @ids) = @_;
    my @r = batch($n, map { [ 'read', $_ ] } @ids);
    my %h;
    for my $i (0 .. $#ids) {
        my $r = $r[$i];
        $h{ $ids[$i] } = $r->{status} == 200 && ($r->{session} // '(new)') ne '(new)'
                         ? $r->{counter} : undef;
    }
    return \%h;
}

sub show_val { defined $_[0] ? $_[0] : 'none' }

# Sessions on which the members disagree: "id node1=.. node2=.. node3=..".
sub split_sessions {
    my ($ids, $views) = @_;
    my @bad;
    for my $id (@$ids) {
        my @v = map { show_val($views->{$_}{$id}) } @N;
        push @bad, "$id " . join(' ', map { "$N[$_]=$v[$_]" } 0 .. $#N)
            if grep { $_ ne $v[0] } @v;
    }
    return @bad;
}

sub views { my @ids = @_; return { map { ($_ => read_all($_, @ids)) } @N } }

sub page { status_of($c, $_[0]) || {} }

sub sees_dead {
    my ($n, $route) = @_;
    my $p = page($n);
    my ($m) = grep { ($_->{route} // '') eq $route } @{ $p->{members} || [] };
    return $m && ($m->{state} // '') =~ /^(?:dead|suspect)$/;
}

sub sees_alive {
    my ($n, $route) = @_;
    my $p = page($n);
    my ($m) = grep { ($_->{route} // '') eq $route } @{ $p->{members} || [] };
    return $m && ($m->{state} // '') eq 'alive';
}

# New sessions on member $n: their ids.
sub make_sessions {
    my ($n, $k) = @_;
    my @r = batch($n, map { [ 'auto', undef ] } 1 .. $k);
    return map { $_->{cookie} } @r;
}

# ---------------------------------------------------------------------------
$c->start_all(timeout => 20);
{
    my $ok = within(20, sub {
        for my $n (@N) {
            my $p = page($n);
            return 0 unless ($p->{EngineState} // '') eq 'ready';
            for my $o (grep { $_ ne $n } @N) { return 0 unless sees_alive($n, $o) }
        }
        my $fp = page($F);
        for my $n (@N) {
            my $w = balancer_member($fp, $n) or return 0;
            return 0 unless ($w->{member} // '') eq 'ready' && status_has($w->{status}, 'Ok');
        }
        return 1;
    });
    check(defined $ok, $c, 'three members ready, each seeing the others; the front has all three Ok');
}

# (a) ------------------------------------------------------------------------
my (@M, @C, @I3, @XM, @X3);
{
    my @one = make_sessions('node1', 28);
    @M = @one[0 .. 9];
    @C = @one[10 .. 19];
    @XM = @one[20 .. 24];
    @X3 = @one[25 .. 27];
    @I3 = make_sessions('node3', 5);
}
my @ALL = (@M, @C, @I3, @XM, @X3);
check(!grep({ !defined $_ || $_ !~ /^[0-9A-F]{32}\.node[13]$/ } @ALL), $c,
      '(a) 33 sessions made (28 on node1, 5 on node3)', join(' ', map { $_ // 'undef' } @ALL));
{
    my $v;
    my $ok = within(15, sub {
        $v = views(@ALL);
        return !split_sessions(\@ALL, $v) && !grep { !defined $v->{node2}{$_} } @ALL;
    });
    check(defined $ok, $c, '(a) every member holds every session, counter 1',
          join("\n", split_sessions(\@ALL, $v)));
}

$c->partition('node3');
my $t_cut = time;
{
    my $ok = within(30, sub {
        num(page('node3'), 'Minority') == 1 && sees_dead('node1', 'node3')
        && sees_dead('node2', 'node3');
    });
    my $p3 = page('node3');
    note(sprintf '(a) node3 cut off: in a minority, and found dead by node1 and node2, '
         . 'after %.1fs', time - $t_cut);
    check(defined $ok, $c, '(a) node3 cut off: it shows Minority 1, node1 and node2 find it dead or suspect',
          "node3 Minority=" . ($p3->{Minority} // '?'));
    is(num($p3, 'QuorumSeen') . '/' . num($p3, 'QuorumKnown'), '1/3',
       '(a) ... node3 sees 1 of the 3 members it knows (QuorumSeen/QuorumKnown)');
    like($c->error_log('node3'), qr/SC1422\b.*sees 1 of the 3 members/,
         '(a) ... and says so (SC1422)');
    is(num(page('node1'), 'Minority') + num(page('node2'), 'Minority'), 0,
       '(a) node1 and node2 are not in a minority');
}

# writes on both sides: the majority on node1 and node2 (acknowledged), node3
# alone; the majority's last answers are what its clients saw
my (%maj, %min, @bad_maj, @bad_min);
while ($WRITE_ROUNDS < 3 || time - $t_cut < $PARTITION_S) {
    my $round = ++$WRITE_ROUNDS;
    sleep 1 if $round > 3;
    my @mreq = ((map { [ 'auto', $_ ] } @M[0 .. 4], @C, @X3),
                ($round == 1 ? map { [ 'invalidate=1', $_ ] } @XM : ()));
    my @mres = batch('node1', @mreq);
    my @m2 = batch('node2', map { [ 'auto', $_ ] } @M[5 .. 9]);
    my @n3req = ((map { ([ 'auto', $_ ], [ 'auto', $_ ]) } @C),
                 (map { [ 'auto', $_ ] } @I3, @XM),
                 ($round == 1 ? map { [ 'invalidate=1', $_ ] } @X3 : ()));
    my @n3res = batch('node3', @n3req);
    for my $i (0 .. $#mreq) {
        my ($q, $id) = @{ $mreq[$i] };
        my $r = $mres[$i];
        push @bad_maj, "node1 $q $id: $r->{status}" unless $r->{status} == 200;
        $maj{$id} = $r->{counter} if $q eq 'auto' && $r->{status} == 200;
    }
    for my $i (0 .. 4) {
        push @bad_maj, "node2 auto $M[5 + $i]: $m2[$i]{status}" unless $m2[$i]{status} == 200;
        $maj{ $M[5 + $i] } = $m2[$i]{counter};
    }
    for my $i (0 .. $#n3req) {
        my ($q, $id) = @{ $n3req[$i] };
        my $r = $n3res[$i];
        push @bad_min, "node3 $q $id: $r->{status}" unless $r->{status} == 200;
        $min{$id} = $r->{counter} if $q eq 'auto' && $r->{status} == 200;
    }
}
is(scalar(@bad_maj), 0, "(a) the majority's writes succeed, acknowledged ($WRITE_ROUNDS rounds)")
    or diag(join("\n", @bad_maj[0 .. ($#bad_maj < 9 ? $#bad_maj : 9)]));
is(scalar(@bad_min), 0, "(a) node3 (asynchronous) writes alone")
    or diag(join("\n", @bad_min[0 .. ($#bad_min < 9 ? $#bad_min : 9)]));
ok(!grep({ ($maj{$_} // 0) != 1 + $WRITE_ROUNDS } @M, @C)
   && !grep({ ($min{$_} // 0) != 1 + 2 * $WRITE_ROUNDS } @C),
   "(a) the majority counted M and C to " . (1 + $WRITE_ROUNDS) . ", node3 counted C to "
   . (1 + 2 * $WRITE_ROUNDS));
note(sprintf '(a) the partition lasted %.1fs when healed', time - $t_cut);

$c->heal('node3');
my $t_heal = time;
my ($t_seen, $t_conv, $t_front, $v);
{
    $t_seen = within(30, sub { sees_alive('node1', 'node3') && sees_alive('node3', 'node1')
                               && num(page('node3'), 'Minority') == 0 });
    check(defined $t_seen, $c, '(a) healed: node1 and node3 see each other alive, node3 no longer in a minority');
    $t_conv = within(40, sub { $v = views(@ALL); !split_sessions(\@ALL, $v) });
    check(defined $t_conv, $c, '(a) every session converges: the three members read the same',
          join("\n", split_sessions(\@ALL, $v)));
    note(sprintf '(a) after the heal: members alive again in %.1fs, the 33 sessions converged in '
         . '%.1fs', $t_seen // -1, $t_conv // -1);
}
{
    # every member's reading of a session: "id on nodeN: value"
    my $on = sub { my ($id, $ok) = @_; map { "$id on $_: " . show_val($v->{$_}{$id}) }
                                       grep { !$ok->($v->{$_}{$id}) } @N };
    my @lost = map { my $id = $_; $on->($id, sub { defined $_[0] && $_[0] >= $maj{$id} }) } @M, @C;
    is(scalar(@lost), 0, "(a) no write the majority's clients saw acknowledged is lost, on any member (M, C: counter >= theirs)")
        or diag(join("\n", map { "$_ (majority saw " . ($_ =~ /^(\S+)/ && $maj{$1}) . ')' } @lost));
    my @notmaj = map { my $id = $_; $on->($id, sub { ($_[0] // -1) == $maj{$id} }) } @C;
    is(scalar(@notmaj), 0, '(a) C (written on both sides, more often by node3) reads the majority\'s counter on every member')
        or diag(join("\n", @notmaj));
    my @i3 = map { my $id = $_; $on->($id, sub { ($_[0] // -1) == $min{$id} }) } @I3;
    is(scalar(@i3), 0, '(a) I3 (written by node3 alone) keeps node3\'s counter on every member')
        or diag(join("\n", @i3));
    my @back = grep { defined $v->{$_->[0]}{ $_->[1] } } map { my $n = $_; map { [ $n, $_ ] } @XM, @X3 } @N;
    is(scalar(@back), 0, '(a) the sessions invalidated on either side (XM, X3) stay invalid on every member')
        or diag(join("\n", map { "$_->[1] on $_->[0]: " . $v->{ $_->[0] }{ $_->[1] } } @back));
    my $p3 = page('node3');
    cmp_ok(num($p3, 'Conflicts'), '>=', scalar(@C),
           "(a) node3 counted the conflicts it gave way on (Conflicts " . num($p3, 'Conflicts') . ')');
    cmp_ok(num($p3, 'AntiEntropyRounds'), '>=', 1, '(a) node3 ran anti-entropy (AntiEntropyRounds)');
    like($c->error_log('node3'), qr/SC1423\b.*no longer a minority/, '(a) node3 logged SC1423 when it saw the others again');
}
{
    $t_front = within(40, sub {
        my $w = balancer_member(page($F), 'node3');
        $w && ($w->{member} // '') eq 'ready' && status_has($w->{status}, 'Ok')
        && !status_has($w->{status}, 'Err');
    });
    my $since = time - $t_heal;
    check(defined $t_front, $c, '(a) the front has node3 back (member=ready, Ok) before retry=300',
          bm_line(balancer_member(page($F), 'node3')));
    note(sprintf '(a) the front had node3 back in rotation %.1fs after the heal', $since)
        if defined $t_front;
}
{
    my ($r) = batch('node3', [ 'auto', $C[0] ]);
    my $want = $maj{ $C[0] } + 1;
    is($r->{counter}, $want, "(a) a write on node3 after the heal builds on the majority's counter ($want)");
    my $vv;
    my $ok = within(15, sub { $vv = views($C[0]); !grep { ($vv->{$_}{ $C[0] } // -1) != $want } @N });
    check(defined $ok, $c, '(a) ... and reaches node1 and node2', join("\n", split_sessions([ $C[0] ], $vv)));
}

# (b) ------------------------------------------------------------------------
{
    my $S = $M[0];
    my $before = read_all('node1', $S)->{$S};
    $c->partition('node1');
    my $t = time;
    my $ok = within(30, sub { num(page('node1'), 'Minority') == 1 && sees_dead('node2', 'node1') });
    check(defined $ok, $c, '(b) node1 (synchronous) cut off: it shows Minority 1, node2 finds it dead or suspect');
    note(sprintf '(b) node1 in a minority %.1fs after the cut', time - $t);
    my @r = batch('node1', [ 'auto', $S ], [ 'auto', $S ], [ 'auto', undef ]);
    my @not503 = grep { $_->{status} != 503 } @r;
    is(scalar(@not503), 0, '(b) node1 in a minority refuses session changes (503)')
        or diag(join(' ', map { $_->{status} } @r));
    like($r[0]{refused} // '', qr/^minority: this member sees 1 of the 3 members it knows/,
         '(b) ... saying why (Session-Cluster-Refused)');
    is($r[0]{retry}, '1', '(b) ... with Retry-After');
    ok(!$r[2]{cookie}, '(b) ... a new session is not made there (no cookie)');
    is(read_all('node1', $S)->{$S}, $before, '(b) the session stays as it was on node1');
    cmp_ok(num(page('node1'), 'MinorityRefused'), '>=', 3, '(b) counted (MinorityRefused)');
    like($c->error_log('node1'), qr/SC1426\b.*minority: this member sees 1 of the 3/,
         '(b) node1 logged the refusal (SC1426)');
    my ($w2) = batch('node2', [ 'auto', $S ]);
    is($w2->{status}, 200, '(b) node2, in the majority, writes the session meanwhile');

    $c->heal('node1');
    my $back = within(30, sub { num(page('node1'), 'Minority') == 0 && sees_alive('node2', 'node1') });
    check(defined $back, $c, '(b) healed: node1 is no longer in a minority');
    my $vv;
    my $conv = within(30, sub { $vv = views($S); !split_sessions([ $S ], $vv) });
    check(defined $conv, $c, '(b) the session converges', join("\n", split_sessions([ $S ], $vv)));
    my ($r1) = batch('node1', [ 'auto', $S ]);
    is($r1->{status} . ' ' . ($r1->{counter} // '?'), '200 ' . ($w2->{counter} + 1),
       '(b) node1 writes again, on the majority\'s counter (its refused writes never took effect)');
}

for my $n (@N) {
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$c->teardown;
done_testing();
