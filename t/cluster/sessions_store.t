#!perl
# The shared-memory session store of one member (mpm prefork, demo
# application at /app):
#   - with `MaxConnectionsPerChild 1` every request is served by another
#     child process (their pids are logged with %P): a session created by one
#     child is read and incremented by the next ones, counter 1..10;
#   - a graceful restart keeps the sessions (the counter continues), also one
#     that changes the configuration (MaxConnectionsPerChild 0 for the rest);
#   - concurrency, one attribute: 4 forked clients for ~5 s (and at least
#     50 rounds) each repeatedly set `pair` to a random value of their
#     own, of 12 to 720 bytes, so that the session's chain of store blocks
#     grows and shrinks (/app?set=pair&value=X), and read the session
#     (/app?read): every set and read is answered 200 for the session, every
#     read shows one of the values written (never empty or garbled), the
#     session and its other attributes (counter, created) are never lost,
#     every set was saved (the session's version, ?session=ID on the status
#     page, grew by exactly the number of sets) and the final value is the
#     last value of one of the clients;
#   - concurrency, counters: 20 sessions, 4 forked clients for ~5 s each
#     walking over the same sessions in the same order with /app?auto (three
#     requests per session in a row, so that the clients meet often); then
#     the same for 2 s on a single session.  What the README ("Writes")
#     promises for parallel writes: a change is written over the version read
#     and, when another request wrote meanwhile, re-applied to the newer
#     version.  So every request is answered 200 for its session, every
#     increment answered is saved (each session's version grows by exactly
#     its increments answered; SessionsUpdated by all of them; no
#     SC1277/SC1278 "not saved"), and the final counter is the value the
#     last saved write computed, i.e. the last counter one of the clients
#     was answered for that session.  Two requests that read the same value
#     and both set the same attribute: the re-applied change sets it again,
#     so the last writer wins (as in Tomcat and mod_session_cookie) and
#     increments of one counter from parallel requests may be lost (counted
#     in a note);
#   - concurrency, distinct attributes: 4 clients on one session, each
#     setting its own attribute to increasing values and reading the session
#     after each set: every set is answered 200 with its value, every read
#     shows the client's own last value, every set is saved (version), and at the end every
#     attribute holds its client's last value (a concurrent write is merged
#     into the newer version, so no client's update of another attribute is
#     lost).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use File::Temp qw(tempdir);
use POSIX ();
use SC::Cluster;
use SC::Test qw(page counter check within app show valid_sid demo_module demo_conf);

$SIG{ALRM} = sub { die "sessions_store.t: time limit (90 s) reached\n" };
alarm 90;

my $DEMO_SO = demo_module();

my $CLIENTS  = 4;
my $DURATION = 5;      # seconds per stress phase (an amount of work, not a figure checked)
my $MIN_ROUNDS = 50;   # rounds each client makes at least, however slow the machine
my $NSESS    = 20;

# ---------------------------------------------------------------------------
# helpers (the ?auto page and demo app helpers are in SC::Test)
# ---------------------------------------------------------------------------

# the pids in the %P log for /app requests, in order
sub app_pids {
    my ($c) = @_;
    my $f = $c->member('node1')->{dir} . '/logs/pid_log';
    open my $fh, '<', $f or return ();
    my @p;
    while (<$fh>) { push @p, $1 if m{^(\d+) \d+ "GET /app} }
    close $fh;
    return @p;
}

# The session's version on member $n (one more at every saved write), from
# the status page's ?session=ID; undef when not held.
sub version_of {
    my ($c, $n, $id) = @_;
    my ($st, undef, $b) = $c->get($n, "/cluster-manager?session=$id");
    return undef unless ($st // 0) == 200 && ($b // '') =~ /^SessionHeld: yes$/m;
    return $b =~ /^SessionVersion: (\d+)$/m ? $1 : undef;
}

# The first few of a list, for diag().
sub first_of { my ($k, @l) = @_; return @l[0 .. ($#l < $k - 1 ? $#l : $k - 1)] }

# Runs $CLIENTS forked clients; each calls $body->($client_no, $out_fh) and
# writes its results as lines to its own file.  Returns the lines per client.
my $TMP = tempdir('sc-store-XXXXXX', TMPDIR => 1, CLEANUP => 1);
sub run_clients {
    my ($tag, $body) = @_;
    my %kids;
    for my $k (1 .. $CLIENTS) {
        my $file = "$TMP/$tag.$k";
        STDOUT->flush;
        STDERR->flush;
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            my $ok = eval {
                local $SIG{ALRM} = sub { die "client $k: time limit\n" };
                alarm($DURATION + 20);
                open my $out, '>', $file or die "$file: $!";
                $body->($k, $out);
                close $out or die "$file: $!";
                1;
            };
            if (!$ok) {
                if (open my $e, '>>', $file) { print $e "DIED $@"; close $e }
                POSIX::_exit(1);
            }
            POSIX::_exit(0);
        }
        $kids{$pid} = $k;
    }
    my %rc;
    for my $pid (keys %kids) {
        waitpid($pid, 0);
        $rc{ $kids{$pid} } = $? >> 8;
    }
    my %lines;
    for my $k (1 .. $CLIENTS) {
        open my $fh, '<', "$TMP/$tag.$k" or next;
        chomp(my @l = <$fh>);
        close $fh;
        $lines{$k} = \@l;
    }
    my @died = map { "client $_: exit $rc{$_}: " . join(' ', grep { /^DIED/ } @{ $lines{$_} || [] }) }
               grep { $rc{$_} } sort keys %rc;
    return (\%lines, \@died);
}

# ---------------------------------------------------------------------------
my $PIDLOG = sub {
    my ($m) = @_;
    return qq{LogFormat "%P %>s \\"%r\\"" scpid\nCustomLog "$m->{dir}/logs/pid_log" scpid\n};
};
my $APP = demo_conf($DEMO_SO);
my $extra = sub {
    my ($per_child) = @_;
    return sub {
        my ($m) = @_;
        return $APP . $PIDLOG->($m)
             . "StartServers 4\nMinSpareServers 4\nMaxSpareServers 8\n"
             . "MaxConnectionsPerChild $per_child\n";
    };
};

my $c = SC::Cluster->new(members => 1, mpm => 'prefork', extra_conf => $extra->(1));
$c->start_all;
ok(defined within(20, sub { (counter($c, 'node1', 'EngineState') // '') eq 'ready' }),
   'node1 is ready');
my $engine_pid = counter($c, 'node1', 'EnginePid');

# one child per request ------------------------------------------------------------
my $S;
{
    my $t0 = time;
    my $r = app($c, 'node1', 'auto');
    $S = $r->{cookie};
    check(valid_sid($S, 'node1') && ($r->{counter} // '') eq '1', $c,
          'a session is created (counter 1)', show($r));
    my @bad;
    for my $i (2 .. 10) {
        $r = app($c, 'node1', 'auto', $S, timeout => 8);
        push @bad, "request $i: " . show($r)
            unless ($r->{session} // '') eq $S && ($r->{counter} // '') eq $i && !$r->{cookie};
    }
    check(!@bad, $c, 'MaxConnectionsPerChild 1: the next 9 requests read and increment it (counter 2..10)',
          @bad[0 .. ($#bad < 2 ? $#bad : 2)]);
    my @pids = app_pids($c);
    my %distinct = map { $_ => 1 } @pids;
    note(sprintf '10 requests in %.1fs, by the children %s', time - $t0, join(' ', @pids));
    is(scalar @pids, 10, 'the %P log has the 10 /app requests');
    is(scalar keys %distinct, 10, '... served by 10 different child processes');
    ok(!$distinct{ $c->member('node1')->{pid} }, '... none of them the httpd parent');
}

# graceful restarts keep the sessions ------------------------------------------------
{
    my $active = counter($c, 'node1', 'SessionsActive');
    $c->graceful('node1');
    my $r = app($c, 'node1', 'auto', $S, timeout => 8);
    check(($r->{session} // '') eq $S && ($r->{counter} // '') eq '11', $c,
          'after a graceful restart the counter continues (11)', show($r));
    is(counter($c, 'node1', 'SessionsActive'), $active, '... and the store holds as many sessions');
    is(counter($c, 'node1', 'EnginePid'), $engine_pid, '... with the same engine');

    # the rest without MaxConnectionsPerChild: a graceful restart with a
    # changed configuration
    $c->configure('node1', extra_conf => $extra->(0));
    $c->graceful('node1');
    $r = app($c, 'node1', 'auto', $S);
    check(($r->{session} // '') eq $S && ($r->{counter} // '') eq '12', $c,
          'after a graceful restart with a changed configuration the counter continues (12)',
          show($r));
    like($r->{attrs}{created} // '', qr/GMT$/, '... and the created attribute is still there');
}

# concurrency: one attribute ----------------------------------------------------------
{
    my $r = app($c, 'node1', 'auto');
    my $P = $r->{cookie};
    $r = app($c, 'node1', 'set=pair&value=init', $P);
    check(($r->{attrs}{pair} // '') eq 'init', $c, "pair session $P starts with pair=init", show($r));
    my $created = $r->{attrs}{created};
    my $v0 = version_of($c, 'node1', $P);
    my $t0 = time;
    my $end = $t0 + $DURATION;
    my ($lines, $died) = run_clients('pair', sub {
        my ($k, $out) = @_;
        my $n = 0;
        while (time < $end || $n < $MIN_ROUNDS) {
            $n++;
            # 0 to 700 bytes of padding: the session's data takes 1 to 7
            # blocks of the store, a different number at almost every write
            my $x = sprintf('c%dn%dr%08x', $k, $n, int rand 0xffffffff) . ('p' x int rand 700);
            my $w = app($c, 'node1', "set=pair&value=$x", $P);
            print $out "W $x\n";
            print $out "E set $x: status $w->{status} session " . ($w->{session} // '-')
                     . " pair " . ($w->{attrs}{pair} // '-') . "\n"
                unless $w->{status} == 200 && ($w->{session} // '') eq $P
                       && ($w->{attrs}{pair} // '') eq $x && !$w->{cookie};
            my $rd = app($c, 'node1', 'read', $P);
            if ($rd->{status} != 200 || ($rd->{session} // '') ne $P) {
                print $out "E read: status $rd->{status} session " . ($rd->{session} // '-') . "\n";
                next;
            }
            my $v = $rd->{attrs}{pair};
            print $out 'R ', (defined $v ? $v : '(missing)'), ' ', ($rd->{attrs}{counter} // '(missing)'),
                       ' ', (defined $rd->{attrs}{created} ? 'created' : '(no-created)'), "\n";
        }
    });
    my %written = (init => 1);
    my ($nw, $nr, @bad, @errors) = (0, 0);
    my %last_w;    # client => the last value it wrote
    for my $k (sort keys %$lines) {
        for (@{ $lines->{$k} }) {
            if (/^W (\S+)$/) { $written{$1} = 1; $nw++; $last_w{$k} = $1 }
        }
    }
    for my $k (sort keys %$lines) {
        for (@{ $lines->{$k} }) {
            if (/^R (\S+) (\S+) (\S+)$/) {
                $nr++;
                my ($v, $cnt, $cr) = ($1, $2, $3);
                push @bad, "client $k read pair=$v counter=$cnt $cr"
                    unless $written{$v} && $v =~ /^(?:init|c\dn\d+r[0-9a-f]{8}p*)$/
                           && $cnt eq '1' && $cr eq 'created';
            }
            elsif (/^R/) { $nr++; push @bad, "client $k: unparsable read line: $_" }
            elsif (/^E (.*)/) { push @errors, "client $k: $1" }
        }
    }
    note(sprintf "pair: %d sets and %d reads from %d clients in %.1fs", $nw, $nr, $CLIENTS, time - $t0);
    ok(!@$died, 'pair: every client ran to the end') or diag(join("\n", @$died));
    my @short = map { my $k = $_; my $w = grep { /^W / } @{ $lines->{$k} || [] };
                      $w < $MIN_ROUNDS ? "client $k: $w sets" : () } 1 .. $CLIENTS;
    check(!@short, $c, "pair: each of the $CLIENTS clients made at least $MIN_ROUNDS sets (each followed by a read)",
          @short);
    check(!@errors, $c, 'pair: every set and read answered 200 for the same session (no new session)',
          scalar(@errors) . ' errors', first_of(5, @errors));
    check(!@bad, $c,
          'pair: every read shows a value some client wrote (never empty or garbled), counter and created intact',
          scalar(@bad) . " of $nr reads wrong", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
    $r = app($c, 'node1', 'read', $P);
    my %last_value = reverse %last_w;
    check(defined $r->{attrs}{pair} && exists $last_value{ $r->{attrs}{pair} }, $c,
          "pair: the final value is the last value one of the clients wrote (the last write saved)",
          'last values: ' . join(' ', map { "client $_: " . substr($last_w{$_}, 0, 20) } sort keys %last_w),
          show($r));
    is($r->{attrs}{created}, $created, 'pair: created unchanged');
    my $v1 = version_of($c, 'node1', $P);
    check(defined $v0 && defined $v1 && $v1 - $v0 == $nw, $c,
          "pair: every set was saved: the session's version grew by the $nw sets",
          'version before ' . ($v0 // 'none') . ', after ' . ($v1 // 'none'));
}

# concurrency: counters -----------------------------------------------------------------
# $CLIENTS clients for $duration s (and at least $min_rounds rounds) walk over
# @$ids in the same order with /app?auto ($burst requests per session in a
# row); then: every request was answered 200 for its session, every increment
# answered was saved (versions, SessionsUpdated, no SC1277/SC1278), and every
# session's final counter is the last counter one of the clients was answered
# for it (the last write saved wins).
sub counter_phase {
    my ($label, $ids, $duration, $burst, $min_rounds) = @_;
    my @ids = @$ids;
    my $updated0 = counter($c, 'node1', 'SessionsUpdated');
    my @v0 = map { version_of($c, 'node1', $_) } @ids;
    my $log0 = length $c->error_log('node1');
    my $t0 = time;
    my $end = $t0 + $duration;
    my ($lines, $died) = run_clients($label =~ s/\W+/_/gr, sub {
        my ($k, $out) = @_;
        my $rounds = 0;
        while (time < $end || $rounds < $min_rounds) {
            $rounds++;
            for my $i (map { ($_) x $burst } 0 .. $#ids) {
                my $r = app($c, 'node1', 'auto', $ids[$i]);
                if ($r->{status} == 200 && ($r->{session} // '') eq $ids[$i]
                    && ($r->{counter} // '') =~ /^\d+$/) {
                    print $out "I $i $r->{counter}\n";
                }
                else {
                    print $out "E $i status $r->{status} session " . ($r->{session} // '-') . "\n";
                }
            }
        }
    });
    my (%inc, %seen, %last, @errors);
    my $per_client_min = $min_rounds * $burst * @ids;
    my @short;
    for my $k (sort keys %$lines) {
        my $n = 0;
        for (@{ $lines->{$k} }) {
            if (/^I (\d+) (\d+)$/) {
                $inc{$1}++;
                $n++;
                $last{$1}{$k} = $2;    # client $k's last answer for session $1
                # two answers with the same new counter value: both read the
                # same value, one increment is lost
                push @{ $seen{$1}{$2} }, $k;
            }
            elsif (/^E (.*)/) { push @errors, "client $k: session $1"; $n++ }
        }
        push @short, "client $k: $n requests" if $n < $per_client_min;
    }
    push @short, "no lines from client $_" for grep { !$lines->{$_} } 1 .. $CLIENTS;
    my $total = 0;
    $total += $_ for values %inc;
    note(sprintf "$label: %d increments from %d clients on %d session(s) in %.1fs", $total,
         $CLIENTS, scalar @ids, time - $t0);
    ok(!@$died, "$label: every client ran to the end") or diag(join("\n", @$died));
    check(!@short, $c, "$label: each of the $CLIENTS clients made at least $per_client_min requests",
          @short);
    check(!@errors, $c, "$label: every request answered 200 for its session",
          scalar(@errors) . ' errors', first_of(5, @errors));

    # every increment answered was saved
    my $log = substr($c->error_log('node1'), $log0);
    my @sc = $log =~ /(SC127[78][^\n]*)/g;
    my $updated = counter($c, 'node1', 'SessionsUpdated') - $updated0;
    my (@unsaved, @wrong, %final);
    my $lost_total = 0;
    for my $i (0 .. $#ids) {
        my $v1 = version_of($c, 'node1', $ids[$i]);
        my $n = $inc{$i} // 0;
        push @unsaved, sprintf('session %2d %s: %d increments answered, version %s -> %s', $i, $ids[$i],
                               $n, $v0[$i] // 'none', $v1 // 'none')
            unless defined $v0[$i] && defined $v1 && $v1 - $v0[$i] == $n;
        my $r = app($c, 'node1', 'read', $ids[$i]);
        my $got = $r->{counter} // -1;
        $final{$i} = $got;
        my %lasts = map { $_ => 1 } values %{ $last{$i} || {} };
        my @same = grep { @{ $seen{$i}{$_} } > 1 } sort { $a <=> $b } keys %{ $seen{$i} || {} };
        $lost_total += 1 + $n - $got if $got =~ /^\d+$/ && $got <= 1 + $n;
        push @wrong, sprintf('session %2d %s: final counter %s, the clients\' last answers %s; '
                             . '%d increments answered, counter values answered twice: %d%s',
                             $i, $ids[$i], $got,
                             join('/', map { "client $_: $last{$i}{$_}" } sort keys %{ $last{$i} || {} }),
                             $n, scalar @same,
                             @same ? ' (e.g. ' . join(', ', map { "$_ to clients @{ $seen{$i}{$_} }" }
                                                       first_of(3, @same)) . ')' : '')
            unless ($r->{session} // '') eq $ids[$i] && $lasts{$got};
    }
    check(!@unsaved && !@sc, $c,
          "$label: every increment answered was saved (each session's version grew by its increments; no SC1277/SC1278)",
          sprintf('%d of %d session(s) with versions that do not match; %d x SC1277/SC1278 (session not saved)',
                  scalar @unsaved, scalar @ids, scalar @sc),
          first_of(10, @unsaved), (@sc ? "first: $sc[0]" : ()));
    is($updated, $total, "$label: SessionsUpdated grew by the $total increments answered");
    note(sprintf "$label: the last writer won over %d of %d increments (parallel increments of one counter)",
         $lost_total, $total);
    check(!@wrong, $c,
          "$label: every session's final counter is the last counter one of the clients was answered (the last write saved)",
          sprintf('%d of %d session(s) wrong', scalar @wrong, scalar @ids), first_of(10, @wrong));
}

{
    my @ids;
    for (1 .. $NSESS) {
        my $r = app($c, 'node1', 'auto');
        push @ids, $r->{cookie} if valid_sid($r->{cookie}, 'node1');
    }
    is(scalar @ids, $NSESS, "counters: $NSESS sessions created (counter 1)");
    counter_phase('counters (20 sessions)', \@ids, $DURATION, 3, 5);
    # the same on a single session, where the clients meet all the time
    my $r = app($c, 'node1', 'auto');
    ok(valid_sid($r->{cookie}, 'node1'), 'counters: one more session created');
    counter_phase('counters (1 session)', [ $r->{cookie} ], 2, 1, $MIN_ROUNDS);
}

# concurrency: distinct attributes are merged, never lost -----------------------------------
{
    my $r = app($c, 'node1', 'auto');
    my $id = $r->{cookie};
    ok(valid_sid($id, 'node1'), 'attributes: a session created');
    my $v0 = version_of($c, 'node1', $id);
    my $end = time + 2;
    my ($lines, $died) = run_clients('attrs', sub {
        my ($k, $out) = @_;
        my $n = 0;
        while (time < $end || $n < $MIN_ROUNDS) {
            $n++;
            my $a = app($c, 'node1', "set=k$k&value=$n", $id);
            if ($a->{status} == 200 && ($a->{session} // '') eq $id && ($a->{attrs}{"k$k"} // '') eq $n) {
                print $out "S $n\n";
            }
            else {
                print $out "E set k$k=$n: status $a->{status} session " . ($a->{session} // '-')
                         . ' k' . $k . '=' . ($a->{attrs}{"k$k"} // '-') . "\n";
            }
            # only this client writes k$k: whatever the others wrote meanwhile,
            # the session now holds k$k=$n
            my $rd = app($c, 'node1', 'read', $id);
            print $out "E read after k$k=$n: status $rd->{status} session " . ($rd->{session} // '-')
                     . " k$k=" . ($rd->{attrs}{"k$k"} // '(missing)') . ' counter=' . ($rd->{counter} // '-') . "\n"
                unless $rd->{status} == 200 && ($rd->{session} // '') eq $id
                       && ($rd->{attrs}{"k$k"} // '') eq $n && ($rd->{counter} // '') eq '1';
        }
    });
    ok(!@$died, 'attributes: every client ran to the end') or diag(join("\n", @$died));
    my (%sets, %last, @errors);
    for my $k (1 .. $CLIENTS) {
        for (@{ $lines->{$k} || [] }) {
            if (/^S (\d+)$/) { $sets{$k}++; $last{$k} = $1 }
            elsif (/^E (.*)/) { push @errors, "client $k: $1" }
        }
    }
    my $nsets = 0;
    $nsets += $_ for values %sets;
    my @short = map { "client $_: " . ($sets{$_} // 0) . ' sets' }
                grep { ($sets{$_} // 0) < $MIN_ROUNDS } 1 .. $CLIENTS;
    check(!@short, $c, "attributes: each of the $CLIENTS clients made at least $MIN_ROUNDS sets", @short);
    check(!@errors, $c, 'attributes: every set answered 200 with the value set, and the read after it '
          . "shows the client's own value (no update of one attribute lost to another's)",
          scalar(@errors) . ' errors', first_of(5, @errors));
    my $v1 = version_of($c, 'node1', $id);
    check(defined $v0 && defined $v1 && $v1 - $v0 == $nsets, $c,
          "attributes: every set was saved: the session's version grew by the $nsets sets",
          'version before ' . ($v0 // 'none') . ', after ' . ($v1 // 'none'));
    my $final = app($c, 'node1', 'read', $id);
    for my $k (1 .. $CLIENTS) {
        my $want = $last{$k} // '(no set answered)';
        is($final->{attrs}{"k$k"} // '(missing)', $want,
           "attributes: client ${k}'s attribute holds its last value ($want)")
            or diag(show($final));
    }
}

# nothing crashed --------------------------------------------------------------------------
ok($c->is_running('node1'), 'node1 still runs');
is(counter($c, 'node1', 'EnginePid'), $engine_pid, 'the same engine still runs');
unlike($c->error_log('node1'), qr/exit signal|Segmentation|AH00052/, 'no crash in the error_log');

$c->teardown;
done_testing();
