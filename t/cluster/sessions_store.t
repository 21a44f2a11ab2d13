#!perl
# The shared-memory session store of one member (mpm prefork, demo
# application at /app):
#   - with `MaxConnectionsPerChild 1` every request is served by another
#     child process (their pids are logged with %P): a session created by one
#     child is read and incremented by the next ones, counter 1..10;
#   - a graceful restart keeps the sessions (the counter continues), also one
#     that changes the configuration (MaxConnectionsPerChild 0 for the rest);
#   - concurrency, one attribute: 4 forked clients for ~5 s each repeatedly
#     set `pair` to a random value of their own, of 12 to 720 bytes, so that
#     the session's chain of store blocks grows and shrinks
#     (/app?set=pair&value=X), and
#     read the session (/app?read): every read shows one of the values
#     written (never empty or garbled), the session and its other attributes
#     (counter, created) are never lost;
#   - concurrency, counters: 20 sessions, 4 forked clients for ~5 s each
#     walking over the same sessions in the same order with /app?auto (three
#     requests per session in a row, so that the clients meet often): every
#     request is answered for its session, no session is lost, and the final
#     counter lies between 1 and 1 + the increments answered.  Two requests
#     that read the same version and both change the same attribute: the last
#     writer wins (as in Tomcat, and mod_session_cookie), so increments of one
#     counter from parallel requests may be lost; then the same for 2 s on a
#     single session;
#   - concurrency, distinct attributes: 4 clients on one session, each
#     setting its own attribute to increasing values: at the end every
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
use SC::Test qw(page counter check within app show valid_sid demo_module);

$SIG{ALRM} = sub { die "sessions_store.t: time limit (90 s) reached\n" };
alarm 90;

my $DEMO_SO = demo_module();

my $CLIENTS  = 4;
my $DURATION = 5;      # seconds per stress phase
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
my $APP = "LoadModule session_cluster_demo_module \"$DEMO_SO\"\n"
        . "<Location /app>\n  Session On\n  SessionCluster On\n"
        . "  SetHandler session-cluster-demo\n</Location>\n";
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
ok(defined within(5, sub { (counter($c, 'node1', 'EngineState') // '') eq 'ready' }),
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
    my $t0 = time;
    my $end = $t0 + $DURATION;
    my ($lines, $died) = run_clients('pair', sub {
        my ($k, $out) = @_;
        my $n = 0;
        while (time < $end) {
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
    for my $k (sort keys %$lines) {
        for (@{ $lines->{$k} }) {
            if (/^W (\S+)$/) { $written{$1} = 1; $nw++ }
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
    cmp_ok($nr, '>', 100, 'pair: the clients read the session more than 100 times');
    check(!@errors, $c, 'pair: every set and read answered 200 for the same session (no new session)',
          scalar(@errors) . ' errors', @errors[0 .. ($#errors < 4 ? $#errors : 4)]);
    check(!@bad, $c,
          'pair: every read shows a value some client wrote (never empty or garbled), counter and created intact',
          scalar(@bad) . " of $nr reads wrong", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
    $r = app($c, 'node1', 'read', $P);
    ok($written{ $r->{attrs}{pair} // '' }, 'pair: the final value is one of those written')
        or diag(show($r));
    is($r->{attrs}{created}, $created, 'pair: created unchanged');
}

# concurrency: counters -----------------------------------------------------------------
# $CLIENTS clients for $duration s walk over @$ids in the same order with
# /app?auto ($burst requests per session in a row); then every session's
# counter must be 1 + the increments the clients were answered.
sub counter_phase {
    my ($label, $ids, $duration, $burst) = @_;
    my @ids = @$ids;
    my $updated0 = counter($c, 'node1', 'SessionsUpdated');
    my $log0 = length $c->error_log('node1');
    my $t0 = time;
    my $end = $t0 + $duration;
    my ($lines, $died) = run_clients($label =~ s/\W+/_/gr, sub {
        my ($k, $out) = @_;
        while (time < $end) {
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
    my (%inc, %seen, @errors);
    for my $k (sort keys %$lines) {
        for (@{ $lines->{$k} }) {
            if (/^I (\d+) (\d+)$/) {
                $inc{$1}++;
                # two answers with the same new counter value: both read the
                # same version, one increment is lost
                push @{ $seen{$1}{$2} }, $k;
            }
            elsif (/^E (.*)/) { push @errors, "client $k: session $1" }
        }
    }
    my $total = 0;
    $total += $_ for values %inc;
    note(sprintf "$label: %d increments from %d clients on %d session(s) in %.1fs", $total,
         $CLIENTS, scalar @ids, time - $t0);
    ok(!@$died, "$label: every client ran to the end") or diag(join("\n", @$died));
    check(!@errors, $c, "$label: every request answered 200 for its session",
          scalar(@errors) . ' errors', @errors[0 .. ($#errors < 4 ? $#errors : 4)]);
    my @lost;
    my $lost_total = 0;
    for my $i (0 .. $#ids) {
        my $r = app($c, 'node1', 'read', $ids[$i]);
        my $want = 1 + ($inc{$i} // 0);
        my $got = $r->{counter} // -1;
        my @same = grep { @{ $seen{$i}{$_} } > 1 } sort { $a <=> $b } keys %{ $seen{$i} || {} };
        if ($got != $want) {
            $lost_total += $want - $got;
            push @lost, sprintf('session %2d %s: %d increments answered, final counter %d (%d lost); '
                                . 'counter values answered twice: %d%s', $i, $ids[$i], $want - 1, $got,
                                $want - $got, scalar @same,
                                @same ? ' (e.g. ' . join(', ', map { "$_ to clients @{ $seen{$i}{$_} }" }
                                                          @same[0 .. ($#same < 2 ? $#same : 2)]) . ')' : '');
        }
    }
    my $log = substr($c->error_log('node1'), $log0);
    my @sc = $log =~ /(SC127[78][^\n]*)/g;
    my $updated = counter($c, 'node1', 'SessionsUpdated') - $updated0;
    my @out_of_bounds = grep {
        my $r = app($c, 'node1', 'read', $ids[$_]);
        my $got = $r->{counter} // -1;
        $got < 1 || $got > 1 + ($inc{$_} // 0)
    } 0 .. $#ids;
    note(sprintf "$label: last-writer-wins lost %d of %d increments (allowed)", $lost_total, $total);
    check(!@out_of_bounds, $c,
          "$label: every session's final counter is between 1 and 1 + the increments answered",
          sprintf('%d of %d session(s) lost updates, %d of %d increments lost; SessionsUpdated grew by %d; '
                  . '%d x SC1277/SC1278 (session not saved) in the error_log',
                  scalar @lost, scalar @ids, $lost_total, $total, $updated, scalar @sc),
          @lost[0 .. ($#lost < 9 ? $#lost : 9)], (@sc ? "first: $sc[0]" : ()));
}

{
    my @ids;
    for (1 .. $NSESS) {
        my $r = app($c, 'node1', 'auto');
        push @ids, $r->{cookie} if valid_sid($r->{cookie}, 'node1');
    }
    is(scalar @ids, $NSESS, "counters: $NSESS sessions created (counter 1)");
    counter_phase('counters (20 sessions)', \@ids, $DURATION, 3);
    # the same on a single session, where the clients meet all the time
    my $r = app($c, 'node1', 'auto');
    ok(valid_sid($r->{cookie}, 'node1'), 'counters: one more session created');
    counter_phase('counters (1 session)', [ $r->{cookie} ], 2, 1);
}

# concurrency: distinct attributes are merged, never lost -----------------------------------
{
    my $r = app($c, 'node1', 'auto');
    my $id = $r->{cookie};
    ok(valid_sid($id, 'node1'), 'attributes: a session created');
    my $end = time + 2;
    my ($lines, $died) = run_clients('attrs', sub {
        my ($k, $out) = @_;
        my $n = 0;
        while (time < $end) {
            $n++;
            my $a = app($c, 'node1', "set=k$k&value=$n", $id);
            print $out "S $n\n" if $a->{status} == 200;
        }
    });
    ok(!@$died, 'attributes: every client ran to the end') or diag(join("\n", @$died));
    my $final = app($c, 'node1', 'read', $id);
    for my $k (sort keys %$lines) {
        my ($last) = map { /^S (\d+)$/ ? $1 : () } reverse @{ $lines->{$k} };
        is($final->{attrs}{"k$k"}, $last, "attributes: client ${k}'s attribute holds its last value $last")
            or diag(show($final));
    }
}

# nothing crashed --------------------------------------------------------------------------
ok($c->is_running('node1'), 'node1 still runs');
is(counter($c, 'node1', 'EnginePid'), $engine_pid, 'the same engine still runs');
unlike($c->error_log('node1'), qr/exit signal|Segmentation|AH00052/, 'no crash in the error_log');

$c->teardown;
done_testing();
