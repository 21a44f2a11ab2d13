#!perl
# A member frozen for 10 s (SIGSTOP of every process of node2, then SIGCONT)
# under load costs the cluster at most one timeout, and the resumed member
# catches up without failing anyone's writes (issue 16).  Three static
# members with Tomcat's defaults where they matter: McastService frequency
# 500 ms and dropTime 3000 ms, TcpFailureDetector (connectTimeout 1000 ms),
# Transport timeout 3000 ms.  Twice:
#   A. synchronous (channelSendOptions 6), Tomcat's default valves
#      (JvmRouteBinderValve with a ReplicationValve): node2's sessions served
#      elsewhere are re-bound there and the client follows the new cookie;
#   B. asynchronous (channelSendOptions 8), a ReplicationValve alone: ids keep
#      their route node2 wherever they are served.
# Each time 30 sessions (10 made on each member) are kept busy by SC::Load
# clients that record every answer: node1's and node3's sessions go to their
# own member; node2's go to node2 until just before the freeze (no request
# of theirs hangs in the frozen member: what a front does with a request
# stuck there is the front's business), then, as a browser after failover,
# half to node1 and half to node3 (in B the last writes on node2 are first
# seen on node1 and node3: asynchronous replication's window is not what
# this test is about).  node2 is frozen about 3 s into the load and resumed
# 10 s later; the load goes on for about 8 s more, except for a third of the
# sessions (nodeN-3, -6, -9), whose users leave just before the resume: their
# last writes were made while node2 was frozen, and no later write brings
# them to node2.  Asserted (the user-visible outcome; every deadline is a
# polling limit, nothing is timed):
#   1. every request to node1 and node3, during the freeze and after the
#      resume, answers 200 (no 503: the writes in flight at the freeze wait
#      for the failure detection's verdict, and the ones after the resume do
#      not fail on the member catching up), and node1's and node3's error_logs
#      have no SC1274 (replication failed) since the load began;
#   2. every answer of a session has a counter above the one before it (no
#      counter below one the client had already seen) and at most one more
#      per request since (nothing applied twice);
#   3. node1 and node3 find node2 dead while it is frozen (their Member rows);
#   4. after SIGCONT node2 logs SC1421, takes every session again by a state
#      transfer (SC1263 with all 30 sessions after it; TransferIn grows) and
#      its own page says ready (the page's states seen are noted);
#   5. then every session, with the id the client last got, reads on every
#      member (node2 first) with the counter of its last answer (or up to
#      one more per failed request after it): none lost, none stale.
# Before 1528244 (the verdict waited for; SC1421 and its new state transfer)
# A answers 503 to the writes waiting for node2 at the Transport timeout
# (SC1274 "no ACK from node2 within 3000 ms") and, after the resume, to a
# write of most sessions (SC1274 "node2: a version before it never came");
# in A and B node2 never logs SC1421, takes no new state transfer and reads
# the sessions left idle with the counter they had when it froze.  Here the
# resumed member's transfer (30 sessions) takes a few ms, less than the
# 100 ms a member holds a delta ahead of its base: when it takes longer (a
# larger store), the writes after the resume also need 4cea0c5 (a delta
# that member cannot apply yet is acknowledged while it catches up).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Load;
use SC::Test qw(page status_of member_on check within app show valid_sid demo_module
                demo_conf sess_line ready_and_alive num log_since);
SC::Test::dump_options(tail => 40, cut => 300);

my $LIMIT = 240;
$SIG{ALRM} = sub { die "freeze.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $DEMO_SO = demo_module();
my $APP = demo_conf($DEMO_SO);
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my $PER_MEMBER = 10;
my @N = qw(node1 node2 node3);
my $V = 'node2';                        # the member frozen
my @LIVE = qw(node1 node3);
my $INTERVAL = 0.2;                     # a session's pause between two requests
my $REQ_TIMEOUT = 20;                   # a client's wait for an answer (polling limit)
my $BEFORE = 3;                         # s of load before the freeze
my $FROZEN = 10;                        # s frozen
my $AFTER = 8;                          # s of load after the resume
my $LOADER = [ $^X, "-I$FindBin::Bin/../lib", '-MSC::Load', '-e', 'exit SC::Load::main(@ARGV)' ];

sub member_row {
    my ($m) = @_;
    return '(no row)' unless $m;
    return join(' ', map { "$_=" . ($m->{$_} // '?') } qw(route state member_state))
         . ' verdict="' . ($m->{verdict} // '') . '"';
}

# member $n's view of session $id: { SessionHeld, SessionId, SessionVersion }
sub held {
    my ($c, $n, $id) = @_;
    my ($s, undef, $b) = $c->get($n, "/cluster-manager?session=$id", timeout => 3);
    return {} unless $s == 200;
    return { map { /^(\w+): (.*)$/ ? ($1 => $2) : () } split /\n/, $b };
}

# A session whose user leaves before the resume (its last write was made
# while node2 was frozen): node2 must not keep an old counter of it.
sub idle { my ($name) = @_; return $name =~ /-(\d+)$/ && $1 % 3 == 0 ? 1 : 0 }

sub rec_line {
    my ($r) = @_;
    return sprintf('%s #%d to %s at %+.2fs (%.2fs): status %s counter %s session %s sent %s%s',
                   $r->{name}, $r->{seq}, $r->{to} // '?', $r->{rel} // 0, $r->{lat} // 0,
                   $r->{status} // '?', $r->{counter} // '-', $r->{session} // '-',
                   $r->{sent} || '-', $r->{err} ? " ($r->{err})" : '');
}

# An SC::Load client in the background: the sessions [ [name, id], ... ] to
# member $to until $until (epoch s).
sub loader {
    my ($c, $to, $until, @sess) = @_;
    my $h = $c->spawn(undef, @$LOADER, 'addr=127.0.0.1', 'port=' . $c->member($to)->{http_port},
                      'path=/app?auto', "until=$until", "interval=$INTERVAL",
                      "timeout=$REQ_TIMEOUT", map { "session=$_->[0]:$_->[1]" } @sess);
    $h->{to} = $to;
    return $h;
}

sub collect {
    my ($c, $h, $t0) = @_;
    my ($rc, $out) = $c->finish($h, timeout => 60);
    is($rc, 0, "the client to $h->{to} ran to its end") or diag($out);
    my $recs = SC::Load::parse_tsv($out);
    for (@$recs) {
        $_->{to} = $h->{to};
        $_->{rel} = $_->{t} - $t0;
    }
    return @$recs;
}

sub scenario {
    my ($part, %o) = @_;
    my $c = SC::Cluster->new(
        members    => 3,
        loglevel   => 'info',
        extra_conf => $APP,
        cluster    => sub {
            my ($m, $all) = @_;
            my $x = SC::Cluster::static_block($m, $all, channelSendOptions => $o{send},
                                              membership => { frequency => 500, dropTime => 3000 },
                                              ($o{valves} ? (valves => $o{valves}) : ()));
            my $sender = qq{    <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">\n}
                       . qq{      <Transport className="org.apache.catalina.tribes.transport.nio.PooledParallelSender" timeout="3000"/>\n}
                       . qq{    </Sender>\n};
            $x =~ s{(  </Channel>)}{$sender$1} or die 'no </Channel>';
            return $x;
        },
    );
    $c->start_all(timeout => 30);
    check(defined within(40, sub { ready_and_alive($c, @N) }), $c,
          "$part: three members ready, each sees the other two (polled up to 40 s)");
    my $pg = page($c, 'node1') // '';
    ok($pg =~ /^Transport\.timeout = 3000\b/m && $pg =~ /^Membership\.dropTime = 3000\b/m
       && $pg =~ /TcpFailureDetector/, "$part: Transport timeout 3000 ms, dropTime 3000 ms, "
       . 'TcpFailureDetector (Tomcat\'s defaults)')
        or diag(join "\n", grep { /timeout|dropTime|TcpFailure|connectTimeout/ } split /\n/, $pg);

    # thirty sessions, ten made on each member --------------------------------------------
    my (%home, %id);    # name => member that made it, name => id
    for my $n (@N) {
        for my $i (1 .. $PER_MEMBER) {
            my $r = app($c, $n, 'auto');
            my $name = "$n-$i";
            if ($r->{status} == 200 && valid_sid($r->{cookie}, $n) && ($r->{counter} // '') eq '1') {
                ($home{$name}, $id{$name}) = ($n, $r->{cookie});
            }
            else {
                check(0, $c, "$part: a session made on $n", show($r));
            }
        }
    }
    my $total = 3 * $PER_MEMBER;
    is(scalar keys %id, $total, "$part: $total sessions made, $PER_MEMBER on each member");
    for my $n (@N) {
        my $p;
        my $ok = within(20, sub { $p = status_of($c, $n); num($p, 'SessionsActive') == $total });
        check(defined $ok, $c, "$part: $n holds all $total sessions", "$n: " . sess_line($p));
    }
    my @mine = map { my $n = $_; [ grep { $home{$_} eq $n } sort keys %id ] } @N;
    my %of = map { $N[$_] => $mine[$_] } 0 .. $#N;
    my @moved = @{ $of{$V} };
    my %moved_to = map { $moved[$_] => $_ < @moved / 2 ? 'node1' : 'node3' } 0 .. $#moved;

    my %log0 = map { $_ => length $c->error_log($_) } @N;
    my $transfer0 = num(status_of($c, $V), 'TransferIn');

    # the load ------------------------------------------------------------------------------
    my $t0 = time;
    my $t_end = $t0 + $BEFORE + $FROZEN + $AFTER;
    my @h;
    for my $n (@LIVE) {
        my @s = @{ $of{$n} };
        push @h, loader($c, $n, $t_end, map { [ $_, $id{$_} ] } grep { !idle($_) } @s);
        push @h, loader($c, $n, $t0 + $BEFORE + $FROZEN - 0.5, map { [ $_, $id{$_} ] } grep { idle($_) } @s);
    }
    my $h2 = loader($c, $V, $t0 + $BEFORE - 0.5, map { [ $_, $id{$_} ] } @moved);
    my @recs = collect($c, $h2, $t0);
    # the last id and counter each of node2's sessions got there
    my %last;
    for my $r (sort { $a->{seq} <=> $b->{seq} } grep { $_->{status} == 200 } @recs) {
        $last{ $r->{name} } = $r;
    }
    ok(@moved == grep({ $last{$_} } @moved), "$part: every session of $V answered on $V before the freeze");
    if ($o{send} == 8) {
        # asynchronous: node2's last writes reach node1 and node3 before it stops
        my $bad = '';
        my $ok = within(10, sub {
            for my $name (@moved) {
                my $want = held($c, $V, $id{$name})->{SessionVersion} // -1;
                for my $n (@LIVE) {
                    my $v = held($c, $n, $id{$name})->{SessionVersion} // -2;
                    if ($v != $want) { $bad = "$name on $n: version $v, on $V $want"; return 0 }
                }
            }
            1;
        });
        check(defined $ok, $c, "$part: node2's last writes replicated before the freeze", $bad);
    }
    sleep($t0 + $BEFORE - time) if time < $t0 + $BEFORE;

    # node2 frozen ---------------------------------------------------------------------------
    my $t_f = time;
    $c->sigstop($V);
    for my $n (@LIVE) {
        my @s = grep { $moved_to{$_} eq $n } @moved;
        my @s_id = map { [ $_, $last{$_} ? $last{$_}{session} : $id{$_} ] } @s;
        push @h, loader($c, $n, $t_end, grep { !idle($_->[0]) } @s_id);
        push @h, loader($c, $n, $t_f + $FROZEN - 0.5, grep { idle($_->[0]) } @s_id);
    }
    my (%dead, %row);
    while (time < $t_f + $FROZEN) {
        for my $n (@LIVE) {
            next if $dead{$n};
            $row{$n} = member_on($c, $n, $V);
            $dead{$n} = 1 if $row{$n} && $row{$n}{state} eq 'dead';
        }
        sleep 0.1;
    }
    for my $n (@LIVE) {
        check($dead{$n}, $c, "$part 3. $n finds $V dead while it is frozen",
              "${n}'s row for $V: " . member_row($row{$n}));
    }

    # node2 resumed --------------------------------------------------------------------------
    my $t_c = time;
    $c->sigcont($V);
    my (%seen_state, $t_ready, $p2);
    my $ready = within($t_end - time + 30, sub {
        $p2 = status_of($c, $V) or return 0;
        my $st = $p2->{EngineState} // '?';
        $seen_state{$st}++;
        return 0 unless $st eq 'ready' && num($p2, 'TransferIn') > $transfer0;
        $t_ready //= time;
        1;
    });
    check(defined $ready, $c, "$part 4. after SIGCONT $V is ready again, with a state transfer "
          . "done (TransferIn $transfer0 -> " . num($p2, 'TransferIn') . ')', sess_line($p2),
          'states seen on its page: ' . join(' ', map { "$_ x$seen_state{$_}" } sort keys %seen_state));
    my $log2 = log_since($c, $V, $log0{$V});
    my ($sc1421) = $log2 =~ /^(.*\bSC1421\b.*)$/m;
    ok(defined $sc1421, "$part 4. $V logs SC1421 (it did not run for longer than dropTime)")
        or diag("$V error_log since the load began:\n$log2");
    my ($sc1263) = $log2 =~ /\bSC1421\b.*?^(.*\bSC1263\b.*)$/ms;
    ok(defined $sc1263 && $sc1263 =~ /([1-9]\d*) session\(s\)/ && $1 == $total,
       "$part 4. then its state transfer completes with all $total sessions (SC1263)")
        or diag("$V error_log since the load began:\n$log2");
    note("$part: ${V}'s page: " . join(' ', map { "$_ x$seen_state{$_}" } sort keys %seen_state)
         . ', ready ' . (defined $t_ready ? sprintf('%.1f s after SIGCONT', $t_ready - $t_c) : 'never'));

    push @recs, collect($c, $_, $t0) for @h;

    # 1. node1 and node3 answered every request -----------------------------------------------
    my @after_f = grep { $_->{to} ne $V && $_->{t} + $_->{lat} >= $t_f } @recs;
    my @bad = grep { $_->{status} != 200 } @after_f;
    my $late = grep { $_->{t} >= $t_c } @after_f;
    my $in_flight = grep { $_->{t} < $t_f } @after_f;
    ok(!@bad, "$part 1. all " . scalar(@after_f) . " requests to node1 and node3 answered at or "
       . "after the freeze answer 200 ($in_flight were in flight at the freeze, $late began after "
       . 'the resume)') or diag(join "\n", scalar(@bad) . ' did not:', map { rec_line($_) } @bad[0 .. ($#bad < 14 ? $#bad : 14)]);
    my @b_after = grep { $_->{t} >= $t_c } @bad;
    ok(!@b_after, "$part 1. no failed request among the $late to node1 and node3 after the resume")
        or diag(scalar(@b_after) . ' failed, the first: ' . rec_line($b_after[0]));
    ok($late > 0, "$part 1. the load went on after the resume");
    note("$part: " . scalar(grep { defined $t_ready && $_->{t} >= $t_ready } @after_f)
         . " requests to node1 and node3 began after $V was ready again");
    for my $n (@LIVE) {
        my @l = log_since($c, $n, $log0{$n}) =~ /^(.*\bSC1274\b.*)$/mg;
        ok(!@l, "$part 1. $n logs no SC1274 (replication failed) since the load began")
            or diag(scalar(@l) . " lines, the first:\n" . join("\n", @l[0 .. ($#l < 4 ? $#l : 4)]));
    }

    # 2. counters as the client saw them --------------------------------------------------------
    my (%final, %failed_after, @order_bad);
    for my $name (sort keys %id) {
        my @mine = sort { $a->{t} <=> $b->{t} } grep { $_->{name} eq $name } @recs;
        my ($prev, $failed) = (undef, 0);
        for my $r (@mine) {
            if ($r->{status} != 200 || !defined $r->{counter}) { $failed++; next }
            if (defined $prev && !($r->{counter} > $prev->{counter}
                                   && $r->{counter} <= $prev->{counter} + 1 + $failed)) {
                push @order_bad, rec_line($r) . " after counter $prev->{counter} ($failed failed between)";
            }
            ($prev, $failed) = ($r, 0);
        }
        $final{$name} = $prev;
        $failed_after{$name} = $failed;
    }
    ok(!@order_bad, "$part 2. every answer's counter is above the one before it, by one per "
       . 'request since (' . scalar(@recs) . ' answers)')
        or diag(join "\n", scalar(@order_bad) . ' were not:', @order_bad[0 .. ($#order_bad < 14 ? $#order_bad : 14)]);

    # 5. every session, on every member, reads as last answered -----------------------------------
    # (node2 first: in A a read elsewhere than on the id's route re-binds the session there)
    for my $n ($V, @LIVE) {
        my %want;    # name => [ id, lowest, highest counter ]
        for my $name (sort keys %id) {
            my $f = $final{$name} or next;
            $want{$name} = [ $f->{session}, $f->{counter}, $f->{counter} + $failed_after{$name} ];
        }
        my @none = grep { !$final{$_} } sort keys %id;
        my %got;
        within(15, sub {
            for my $name (sort keys %want) {
                my ($sid, $lo, $hi) = @{ $want{$name} };
                my $r = $got{$name} = app($c, $n, 'read', $sid);
                my ($base) = $sid =~ /^([0-9A-Fa-f]{32})\./;
                delete $want{$name} if ($r->{session} // '') =~ /^\Q$base\E\./
                    && defined $r->{counter} && $r->{counter} >= $lo && $r->{counter} <= $hi;
            }
            return !%want;
        });
        my @bad = map {
            my ($sid, $lo, $hi) = @{ $want{$_} };
            "$_ (" . (idle($_) ? 'idle since before the resume' : 'written to the end')
            . ", $sid): counter " . ($lo == $hi ? $lo : "$lo to $hi") . ' expected, read: '
            . ($got{$_}{status} // '?') . ' counter ' . ($got{$_}{counter} // '-')
            . ' session ' . ($got{$_}{session} // '-')
        } sort keys %want;
        push @bad, map { "$_: no answer at all during the load" } @none;
        check(!@bad, $c, "$part 5. every session reads on $n with the counter of its last "
              . 'answer (none lost, none stale; polled up to 15 s)',
              @bad ? join("\n", scalar(@bad) . " of $total did not:", @bad) : ());
    }

    $c->teardown;
    is_deeply([ $c->problems ], [], "$part: teardown found no hang or crash");
}

scenario('A (synchronous)', send => 6);
scenario('B (asynchronous)', send => 8, valves => $KEEP_ROUTES);

done_testing();
