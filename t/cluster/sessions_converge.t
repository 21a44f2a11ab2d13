#!perl
# Convergence of replicated sessions across three static members running the
# demo application at /app:
#   - 300 sessions are created round-robin on node1, node2, node3;
#   - then every session's counter is incremented 5 times, each time through a
#     randomly chosen member; the increments of one session are sequential
#     (rounds over all sessions, so ~300 requests lie between two increments
#     of the same session);
#   - in acknowledged mode also 100 sessions x 3 back-to-back increments on
#     rotating members, each answer one more than the previous one;
#   - every member applies every change: SessionsCreated grows by the 300
#     sessions and SessionsUpdated by every update on each member (each update
#     is a write on the member that served it and a replicated write on the
#     two others);
#   - at the end every member shows every session (GET /app?read) with the
#     same, expected counter (6, or 9 after the back-to-back increments),
#     holds exactly the 300 sessions, and nothing crashed.
# Twice: channelSendOptions 8 (asynchronous: a request returns before the
# other members have its change, so before the next round, which may serve a
# session on another member, the test waits until every member's
# SessionsUpdated counts every update so far, polled up to 30 s) and 6
# (acknowledged: every answer already reflects the previous increments,
# wherever it was made, and the counters are checked at once).  No duration
# is checked (bench/sessions.pl measures throughput and replication lag).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use List::Util qw(shuffle);
use SC::Cluster;
# ReplicationValve only: ids keep their route here, whichever member serves
# them (re-binding with JvmRouteBinderValve is balancer.t's subject)
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
use SC::Test qw(page status_of check within app show valid_sid demo_module demo_conf sess_line);

$SIG{ALRM} = sub { die "sessions_converge.t: time limit (150 s) reached\n" };
alarm 150;

my $DEMO_SO = demo_module();

my $SESSIONS = 300;
my $UPDATES  = 5;
my $POLL     = 30;      # seconds: a limit for polling, never a figure checked

# ---------------------------------------------------------------------------
# helpers (the ?auto page and demo app helpers are in SC::Test)
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
my $APP = demo_conf($DEMO_SO);

# $counter ('SessionsCreated', 'SessionsUpdated') on every member of @names:
# { member => value }
sub counters_of {
    my ($c, $counter, @names) = @_;
    my %v;
    for my $n (@names) {
        my $p = status_of($c, $n);
        $v{$n} = $p ? $p->{$counter} : undef;
    }
    return \%v;
}

# Checks that $counter grew by $want since $base on every member: at once
# (acknowledged mode) or polled up to $POLL s (asynchronous mode, where the
# other members apply a change after the request returned).
sub all_applied {
    my ($c, $label, $counter, $base, $want, $poll, @names) = @_;
    my $now;
    my $done = sub {
        $now = counters_of($c, $counter, @names);
        return !grep { ($now->{$_} // -1) - ($base->{$_} // 0) < $want } @names;
    };
    if ($poll) { within($POLL, $done) } else { $done->() }
    return check(!grep({ ($now->{$_} // -1) - ($base->{$_} // 0) != $want } @names), $c,
                 "$label: $counter grew by $want on every member"
                 . ($poll ? " (polled up to ${POLL}s)" : ' (at once)'),
                 map { "$_: $counter " . ($base->{$_} // '?') . ' -> ' . ($now->{$_} // '?') } @names);
}

sub run_mode {
    my ($send, $label) = @_;
    my $async = $send != 6;
    my $t_mode = time;
    my $c = SC::Cluster->new(
        members    => 3,
        extra_conf => $APP,
        cluster    => sub { SC::Cluster::static_block($_[0], $_[1], channelSendOptions => $send, valves => $KEEP_ROUTES) },
    );
    $c->start_all;
    my @names = $c->members;

    # all ready and seeing each other
    my %p;
    my $took = within(20, sub {
        for my $n (@names) {
            $p{$n} = status_of($c, $n) or return 0;
            return 0 unless $p{$n}{EngineState} eq 'ready' && ($p{$n}{MembersAlive} // 0) == 2;
        }
        return 1;
    });
    check(defined $took, $c, "$label: all three members ready and seeing the two others",
          map { "$_: " . sess_line($p{$_}) } @names) or return;
    my ($cso) = (page($c, 'node1') // '') =~ /^Cluster\.channelSendOptions = (\d+)/m;
    is($cso, $send, "$label: node1 runs with channelSendOptions $send");

    # creation, round-robin
    my $created0 = counters_of($c, 'SessionsCreated', @names);
    my (@ids, %count, %home);
    my $bad_create = 0;
    for my $i (0 .. $SESSIONS - 1) {
        my $n = $names[$i % @names];
        my $r = app($c, $n, 'auto');
        if ($r->{status} == 200 && valid_sid($r->{cookie}, $n) && ($r->{counter} // '') eq '1') {
            push @ids, $r->{cookie};
            $count{ $r->{cookie} } = 1;
            $home{ $r->{cookie} } = $n;
        }
        else {
            $bad_create++ or diag("$label: creating session $i on $n failed:\n" . show($r));
        }
    }
    my %uniq = map { $_ => 1 } @ids;
    check(@ids == $SESSIONS && keys %uniq == $SESSIONS, $c,
          "$label: $SESSIONS sessions created round-robin, all with distinct ids",
          scalar(@ids) . " created, " . scalar(keys %uniq) . " distinct, $bad_create failures");
    note(sprintf "$label: %d sessions created in %.2fs", scalar @ids, time - $t_mode);
    # every member has every session before it may serve one made elsewhere
    all_applied($c, $label, 'SessionsCreated', $created0, scalar @ids, $async, @names);
    my $updated0 = counters_of($c, 'SessionsUpdated', @names);

    # updates through random members, sequential per session
    my %expect = map { $_ => 1 } @ids;    # increments made, per session
    my ($n_upd, $wrong_answer, $not_held) = (0, 0, 0);
    my @wrong_examples;
    my %through;    # member => updates made there
    my $update = sub {
        my ($id, $n, $what) = @_;
        $through{$n}++;
        my $r = app($c, $n, 'auto', $id);
        $n_upd++;
        $expect{$id}++;
        my $want = $count{$id} + 1;
        if (($r->{session} // '') ne $id) {
            $not_held++;
            push @wrong_examples, "$what of $id on $n: not held:\n" . show($r)
                if @wrong_examples < 5;
            return;
        }
        if (($r->{counter} // '') ne $want) {
            $wrong_answer++;
            push @wrong_examples, "$what of $id (made on $home{$id}) on $n: expected counter "
                . "$want:\n" . show($r) if @wrong_examples < 5;
        }
        # the next answer should be one more than this one
        $count{$id} = $r->{counter} =~ /^\d+$/ ? $r->{counter} : $want;
    };
    my $t_upd = time;
    my @not_applied;    # rounds after which not every member had every update
    for my $round (1 .. $UPDATES) {
        for my $id (shuffle @ids) {
            $update->($id, $names[int rand @names], "update $round");
        }
        # asynchronous: the next round may serve a session on another member,
        # so every member must have applied this round first (its counter, not
        # a pause); acknowledged: they have when the requests returned
        # (after a failed wait, the next rounds are not waited for again: the
        # check below fails in any case)
        next unless $async && !@not_applied;
        my $want = $n_upd;
        my $now;
        within($POLL, sub {
            $now = counters_of($c, 'SessionsUpdated', @names);
            return !grep { ($now->{$_} // -1) - ($updated0->{$_} // 0) < $want } @names;
        });
        push @not_applied, "after round $round: " . join(', ', map {
            "$_ " . (($now->{$_} // -1) - ($updated0->{$_} // 0)) } @names) . " of $want"
            if grep { ($now->{$_} // -1) - ($updated0->{$_} // 0) != $want } @names;
    }
    my $t_upd_took = time - $t_upd;
    note(sprintf "$label: %d updates in %.2fs (%.0f/s), through %s", $n_upd, $t_upd_took,
         $n_upd / ($t_upd_took || 1), join(', ', map { "$_ $through{$_}" } sort keys %through));
    check(!@not_applied, $c, "$label: after each round every member had applied every update so far "
          . "(SessionsUpdated, polled up to ${POLL}s)", @not_applied) if $async;
    all_applied($c, $label, 'SessionsUpdated', $updated0, $n_upd, $async && !@not_applied, @names);
    check(!$not_held, $c, "$label: every update found its session, on whichever member it was made",
          "$not_held updates got a new session instead", @wrong_examples);
    check(!$wrong_answer, $c,
          "$label: every update answered the expected counter (the previous increment had been applied there)",
          "$wrong_answer of $n_upd answers had another counter", @wrong_examples);

    if ($send == 6) {
        # acknowledged mode: the request returns after every live member
        # acknowledged, so even back-to-back increments of one session on
        # three different members see each other
        my ($wrong0, $held0, $n0) = ($wrong_answer, $not_held, $n_upd);
        @wrong_examples = ();
        for my $id (@ids[0 .. 99]) {
            my $k = int rand @names;
            for my $j (1 .. 3) {
                $update->($id, $names[($k + $j) % @names], "back-to-back update $j");
            }
        }
        check($wrong_answer == $wrong0 && $not_held == $held0, $c,
              "$label: back-to-back increments of one session on rotating members (100 x 3) each see the previous one",
              ($wrong_answer - $wrong0) . " wrong counters, " . ($not_held - $held0)
              . " not held, of " . ($n_upd - $n0), @wrong_examples);
        all_applied($c, "$label, back-to-back", 'SessionsUpdated', $updated0, $n_upd, 0, @names);
    }

    # the check: every member, every session, counter = 1 + its increments
    # (every member applied every change: checked above, so at once)
    my %last;
    my $t_check = time;
    my @bad;
    for my $n (@names) {
        for my $id (@ids) {
            my $r = $last{"$n $id"} = app($c, $n, 'read', $id);
            push @bad, "$n $id" unless ($r->{session} // '') eq $id && ($r->{counter} // '') eq $expect{$id};
        }
    }
    my %by_member;
    $by_member{ (split / /, $_)[0] }++ for @bad;
    check(@ids && !@bad, $c,
          sprintf("$label: every member shows all %d sessions with the expected counter", scalar @ids),
          sprintf('%d (member, session) pairs wrong: %s', scalar @bad,
                  join(', ', map { "$_ $by_member{$_}" } sort keys %by_member)),
          (map { "$_ (created on $home{(split / /, $_)[1]}, expected counter $expect{(split / /, $_)[1]}): "
                 . show($last{$_}) } @bad[0 .. ($#bad < 4 ? $#bad : 4)]));
    note(sprintf "$label: the check read %d sessions on %d members in %.2fs", scalar @ids, scalar @names,
         time - $t_check);

    for my $n (@names) {
        my $p = status_of($c, $n);
        check(($p->{SessionsActive} // -1) == $SESSIONS, $c,
              "$label: $n holds exactly $SESSIONS sessions", "$n: " . sess_line($p));
        cmp_ok($p->{ReplicatedIn} // 0, '>', 0, "$label: $n received replicated changes");
        is($p->{SessionsRejectedFull}, 0, "$label: $n refused nothing");
    }
    for my $n (@names) {
        my $log = $c->error_log($n);
        unlike($log, qr/exit signal|Segmentation|AH00052/, "$label: $n: no crash in the error_log");
        # (SC1293: the startup warning that traffic is not authenticated)
        my @errs = grep { !/SC1293/ } $log =~ /^(.*\[session_cluster:(?:error|warn)\].*)$/mg;
        ok(!@errs, "$label: $n: no session_cluster error or warning in the error_log")
            or diag(join("\n", @errs[0 .. ($#errs < 9 ? $#errs : 9)]));
    }
    note(sprintf "$label: mode took %.1fs", time - $t_mode);
    $c->teardown;
}

run_mode(8, 'async (8)');
run_mode(6, 'sync (6)');

done_testing();
