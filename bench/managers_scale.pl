#!/usr/bin/env perl
# The session managers as the cluster grows: for each manager given and each
# number of members N, in one run, side by side, a fresh cluster of N members
# on loopback (static membership, SC::Cluster::static_block) holding S
# sessions of 1 KB made on member 1:
#
#   - fill: S sessions made on member 1 (GET /app?set=pad&fill=1024, kept-alive
#     connections, FILL_CLIENTS clients in parallel), sessions/s; then the wait
#     until every member holds them all;
#   - memory per member after the fill: the PSS of the member's processes
#     (/proc/PID/smaps_rollup) and SessionsBudgetUsed (/cluster-manager?auto),
#     on member 1 and the mean over the other members;
#   - bytes and messages sent per update: UPDATES updates of existing sessions
#     (GET /app?auto with a cookie: a read and a counter update) made one after
#     the other by one kept-alive client on member 1, in chunks of CHUNK; the
#     difference of the BytesOut and MsgsOut counters of member 1, and of
#     their sum over all members (acknowledgements included), over the chunks
#     in which no anti-entropy round started (a round sends a digest of every
#     session), less the heartbeats' and pings' traffic measured over
#     IDLE_SECONDS of quiet just before, divided by the updates answered 200;
#   - the traffic of those IDLE_SECONDS, anti-entropy included;
#   - the request rate on member 1 with wrk (2 threads, 16 connections,
#     SECONDS): updates of existing sessions picked at random; req/s, p99;
#   - BackupManager, N >= 3: the fetch latency on a member without a copy:
#     FETCHES (500) sessions that member N knows by location only (its
#     ?session= says proxy) read there one after the other (GET /app?read,
#     one kept-alive client): BackupFetchP50Us / BackupFetchP99Us of its page
#     (the engine's fetch alone) and the client's p50/p99 of those reads;
#   - the machine's load (/proc/loadavg) before the cluster starts and after
#     it stops.
# After the table, per manager, the ratios N=4/N=2 and N=8/N=2 (the first N
# given as the base) of bytes and messages per update and of memory per
# member: with DeltaManager (every update to every member, every session on
# every member) the baseline a BackupManager is to flatten.
#
#   perl bench/managers_scale.pl [SECONDS] [N ...]        (defaults: 3 2 4 8)
#   MANAGERS="DeltaManager/8 DeltaManager/6 BackupManager/6" (a manager's
#     class / channelSendOptions for DeltaManager, mapSendOptions for
#     BackupManager); SESSIONS=50000; UPDATES=2000; CHUNK=250;
#     SESSION_BYTES=1024; FILL_CLIENTS=4; IDLE_SECONDS=10; FETCHES=500;
#     FILL_LIMIT=150 (seconds a fill may take:
#     when the fill rate of the same manager at a smaller N predicts more, S is
#     cut for that N and a note says so)
#
# A manager the module does not implement (its config test logs SC1414: the
# module would run it as DeltaManager) is refused before anything runs: its
# figures would be DeltaManager's under another name.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use SC::Cluster;
use SC::KeepAlive;
use SC::Bench;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';
my $secs = shift // 3;
my @ns = @ARGV ? @ARGV : (2, 4, 8);
die "usage: perl bench/managers_scale.pl [SECONDS] [N ...]   (N >= 2)\n"
    if grep { !/^\d+$/ } $secs, @ns or grep { $_ < 2 || $_ > 32 } @ns or $secs < 1;
my @managers = split ' ', ($ENV{MANAGERS} || 'DeltaManager/8 DeltaManager/6 BackupManager/6');
for (@managers) {
    die "MANAGERS: '$_' is not DeltaManager/OPTIONS or BackupManager/OPTIONS\n"
        unless m{^(DeltaManager|BackupManager)/(\d+)$};
}
my $sessions = $ENV{SESSIONS} || 50000;
my $updates = $ENV{UPDATES} || 2000;
my $size = $ENV{SESSION_BYTES} || 1024;
my $clients = $ENV{FILL_CLIENTS} || 4;
my $idle = $ENV{IDLE_SECONDS} || 10;
my $chunk = $ENV{CHUNK} || 250;
my $fill_limit = $ENV{FILL_LIMIT} || 150;
my $fetches = $ENV{FETCHES} || 500;
my $conns = 16;
my $threads = 2;
my $demo = $ENV{SC_DEMO_SO} || "$FindBin::Bin/../demo/.libs/mod_session_cluster_demo.so";
die "build first (make)\n" unless -f $demo;
-x '/usr/bin/wrk' or die "wrk is missing: apt-get install wrk\n";

my $tmp = tempdir('sc-managers-scale-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub loadavg { SC::Bench::loadavg() }
sub load1 { SC::Bench::load1(@_) }
sub status { SC::Bench::status(@_) }
sub pss_of { SC::Bench::pss_of(@_) }
sub req { SC::KeepAlive::get(@_) }

# The <Cluster> block of a member for a manager spec 'Class/OPTIONS'.
sub block {
    my ($spec, $m, $all) = @_;
    my ($cls, $opt) = split m{/}, $spec;
    return SC::Cluster::static_block($m, $all, channelSendOptions => $opt)
        if $cls eq 'DeltaManager';
    my $x = SC::Cluster::static_block($m, $all, manager => { mapSendOptions => $opt });
    $x =~ s/session\.DeltaManager"/session.BackupManager"/ or die "no Manager element\n";
    return $x;
}

# Why a manager cannot run here (the module's config test logs SC1414 for a
# class it would run as DeltaManager), or undef.
sub unimplemented {
    my ($spec) = @_;
    my $c = SC::Cluster->new(members => 2, loglevel => 'warn',
                             cluster => sub { block($spec, $_[0], $_[1]) });
    my $conf = $c->member('node1')->{conf};
    my $out = `'$c->{httpd}' -t -f '$conf' 2>&1`;
    $c->teardown;
    return "config test failed: $out" if $?;
    return $out =~ /(SC1414: [^(\n]*?)\s*(?:\(|$)/m ? $1 : undef;
}

sub fill { SC::Bench::fill(@_, clients => $clients, size => $size) }

sub wrk { my ($port, $lua, @args) = @_;
          SC::Bench::wrk($port, $lua, { threads => $threads, conns => $conns, secs => $secs }, @args) }

my $lua_existing = "$tmp/existing.lua";
SC::Bench::write_lua_existing($lua_existing);

# The traffic counters of every member: { node => { BytesOut, MsgsOut, ... } }.
my @traffic = qw(BytesOut MsgsOut AcksOut ReplicatedOut ReplicatedIn QueueDepth QueueBytes
                 AntiEntropyRounds);
my @per_update = qw(BytesOut MsgsOut AcksOut ReplicatedOut);
sub counters {
    my ($c) = @_;
    my %all;
    for my $n ($c->members) {
        my $p = status($c, $n);
        $all{$n}{$_} = $p->{$_} // 0 for @traffic;
    }
    $all{_t} = time;
    return \%all;
}
# anti-entropy rounds started, summed over the members
sub ae {
    my ($cs) = @_;
    my $sum = 0;
    $sum += $cs->{$_}{AntiEntropyRounds} for grep { !/^_/ } keys %$cs;
    return $sum;
}
sub diff {
    my ($c, $a, $b, $k) = @_;
    my %d = (m1 => $b->{node1}{$k} - $a->{node1}{$k}, all => 0);
    $d{all} += $b->{$_}{$k} - $a->{$_}{$k} for $c->members;
    return \%d;
}

# BackupManager: $fetches sessions the last member knows by location only,
# read there one after the other; its page's fetch figures and the client's
# latency of those reads (p50, p99) go in %$r.
sub fetch_latency {
    my ($c, $r, $ids) = @_;
    my $m = "node$r->{n}";
    print STDERR "$r->{spec} N=$r->{n}: fetches on $m\n";
    my (@pick, $looked);
    for my $id (@$ids) {
        last if @pick >= $fetches || ++$looked > 4 * $fetches;
        my ($st, undef, $b) = $c->get($m, "/cluster-manager?session=$id", timeout => 3);
        push @pick, $id if $st == 200 && $b =~ /^SessionRole: proxy$/m;
    }
    my $p0 = status($c, $m);
    my $s = SC::KeepAlive::connect($c, $m);
    my (@lat, $bad);
    for my $id (@pick) {
        my $t = time;
        my ($st) = req($s, '/app?read', $id);
        push @lat, time - $t;
        $bad++ unless $st == 200;
    }
    close $s;
    my $p1 = status($c, $m);
    my ($s50, $s99) = (undef, undef);
    if (@lat) {
        my @so = sort { $a <=> $b } @lat;
        ($s50, $s99) = ($so[int($#so / 2)], $so[int($#so * 99 / 100)]);
    }
    $r->{fetch} = { n => scalar @pick, bad => $bad // 0,
                    fetched => ($p1->{BackupFetches} // 0) - ($p0->{BackupFetches} // 0),
                    p50_us => $p1->{BackupFetchP50Us}, p99_us => $p1->{BackupFetchP99Us},
                    rd50_ms => defined $s50 ? $s50 * 1000 : undef,
                    rd99_ms => defined $s99 ? $s99 * 1000 : undef };
}

# One manager at one N: a fresh cluster, filled, measured, stopped.
sub measure {
    my ($spec, $n, $count, $why_cut) = @_;
    my %r = (spec => $spec, n => $n, s => $count, cut => $why_cut, load_before => loadavg());
    my @names = map { "node$_" } 1 .. $n;
    print STDERR "$spec N=$n: starting $n members\n";
    my $c = SC::Cluster->new(
        members => $n, loglevel => 'warn', mpm => 'event',
        start_timeout => 60,
        cluster => sub { block($spec, $_[0], $_[1]) },
        # (ThreadLimit: SC::Cluster's 16 would cap ThreadsPerChild; kept
        # connections for the fill, as bench/store_scale.pl)
        extra_conf => "LoadModule session_cluster_demo_module $demo\n"
                      . "ThreadLimit 25\nThreadsPerChild 25\nMaxRequestWorkers 100\n"
                      . "ServerLimit 4\nKeepAliveTimeout 30\nMaxKeepAliveRequests 0\n"
                      . "<Location /app>\n  Session On\n  SessionCluster On\n"
                      . "  SetHandler session-cluster-demo\n</Location>\n");
    $c->start_all;
    $r{ready} = $c->wait_for(sub {
        for my $m (@names) {
            my $p = status($c, $m);
            return 0 unless ($p->{EngineState} // '') eq 'ready'
                            && ($p->{MembersAlive} // 0) >= $n - 1;
        }
        1;
    }, timeout => 60, interval => 0.2) ? 1 : 0;
    print STDERR "$spec N=$n: not every member saw the others ready within 60 s\n"
        unless $r{ready};

    print STDERR "$spec N=$n: filling node1 with $count sessions\n";
    my ($ids, $t, $failed, $why) = fill($c, 'node1', $count, "$tmp/ids-$n",
                                        time + 1.5 * $fill_limit);
    $r{made} = @$ids;
    $r{fill_s} = $t;
    $r{fill_failed} = $failed;
    $r{fill_why} = $why;
    $r{fill_rate} = $t > 0 ? @$ids / $t : 0;
    my $want = status($c, 'node1')->{SessionsActive} // scalar @$ids;
    $r{want} = $want;

    # every member holds all of them (BackupManager: the others back them all
    # between them and know the rest by location): how long after the fill
    my $t1 = time;
    my %held;
    my $backup = $spec =~ /^BackupManager/;
    while (time - $t1 < 60 + $count / 500) {
        for my $m (@names[1 .. $#names]) {
            my $p = status($c, $m);
            $held{$m} = $backup ? ($p->{SessionsBackup} // 0) + ($p->{SessionsProxy} // 0)
                                : $p->{SessionsActive} // 0;
            $r{backups}{$m} = $p->{SessionsBackup} // 0;
        }
        my $b = 0;
        $b += $r{backups}{$_} for @names[1 .. $#names];
        last unless grep({ $held{$_} < $want } keys %held) || ($backup && $b < $want);
        sleep 0.2;
    }
    $r{held_min} = (sort { $a <=> $b } values %held)[0];
    $r{repl_s} = $r{held_min} >= $want ? time - $t1 : undef;

    # memory per member, after the fill
    for my $m (@names) {
        $r{pss}{$m} = pss_of($c, $m);
        $r{budget}{$m} = status($c, $m)->{SessionsBudgetUsed};
    }

    # the background first: IDLE_SECONDS of quiet read every 0.5 s, in all
    # (heartbeats, TCP pings, anti-entropy) and over the half-seconds with no
    # anti-entropy round started in them nor in the one before (heartbeats
    # and pings alone: what the counted updates are measured against)
    print STDERR "$spec N=$n: background, $idle s\n";
    my @q = (counters($c));
    while (time - $q[0]{_t} < $idle) { sleep 0.5; push @q, counters($c) }
    my $idle_t = $r{idle_t} = $q[-1]{_t} - $q[0]{_t};
    $r{bg_all} = diff($c, $q[0], $q[-1], 'BytesOut')->{all} / $idle_t;
    $r{ae_idle} = ae($q[-1]) - ae($q[0]);
    my (%hb, $hb_t);
    for my $i (2 .. $#q) {
        next unless ae($q[$i - 2]) == ae($q[$i]);
        $hb_t += $q[$i]{_t} - $q[$i - 1]{_t};
        for my $k (@per_update) {
            my $d = diff($c, $q[$i - 1], $q[$i], $k);
            $hb{$k}{$_} += $d->{$_} for qw(m1 all);
        }
    }
    for my $k (@per_update) {
        for my $w (qw(m1 all)) {
            $r{bg}{$k}{$w} = $hb_t ? ($hb{$k}{$w} // 0) / $hb_t : 0;
        }
    }
    $r{hb_t} = $hb_t // 0;

    # then UPDATES counted updates by one kept-alive client, in chunks of
    # CHUNK: each started after 1 s without a new anti-entropy round, its
    # counters read once the members' queues are empty and nothing more
    # arrives, and kept only if no round started meanwhile (a round sends a
    # digest of every session held: megabytes at 50,000 sessions)
    print STDERR "$spec N=$n: $updates counted updates\n";
    my $s = SC::KeepAlive::connect($c, 'node1');
    my ($ok, $bad, $sent, $span, $dropped, %sum) = (0, 0, 0, 0, 0);
    my $deadline = time + 90;
    my $last = $q[-1];
    my $ae_seen = ae($last);
    my $ae_change = $last->{_t} - 1;
    my $t_upd = time;
    while ($ok < $updates && time < $deadline && @$ids && $s) {
        if (time - $ae_change < 1) {
            sleep 0.2;
            $last = counters($c);
            ($ae_seen, $ae_change) = (ae($last), $last->{_t}) if ae($last) != $ae_seen;
            next;
        }
        my $a = counters($c);
        if (ae($a) != $ae_seen) { ($ae_seen, $ae_change) = (ae($a), $a->{_t}); next }
        my ($k_ok, $k_bad) = (0, 0);
        for (1 .. ($updates - $ok < $chunk ? $updates - $ok : $chunk)) {
            my $id = $ids->[$sent++ % @$ids];
            my ($st) = req($s, '/app?auto', $id);
            unless ($st) {
                # a closed connection: open it again and send the request once more
                $s = eval { SC::KeepAlive::connect($c, 'node1') } or last;
                ($st) = req($s, '/app?auto', $id);
            }
            $st == 200 ? $k_ok++ : $k_bad++;
        }
        my ($b, $prev);
        my $settle = time + 10;
        while (1) {
            sleep 0.2;
            $b = counters($c);
            my $quiet = !grep { $b->{$_}{QueueDepth} || $b->{$_}{QueueBytes} } @names;
            last if $quiet && $prev && diff($c, $prev, $b, 'ReplicatedIn')->{all} == 0
                    && diff($c, $prev, $b, 'ReplicatedOut')->{all} == 0;
            last if time >= $settle;
            $prev = $b;
        }
        $bad += $k_bad;
        if (ae($b) != $ae_seen) {
            ($ae_seen, $ae_change) = (ae($b), $b->{_t});
            $dropped += $k_ok;
            next;
        }
        $ok += $k_ok;
        $span += $b->{_t} - $a->{_t};
        for my $k (@per_update) {
            my $d = diff($c, $a, $b, $k);
            $sum{$k}{$_} += $d->{$_} for qw(m1 all);
        }
    }
    close $s if $s;
    $r{upd_s} = time - $t_upd;
    $r{upd_ok} = $ok;
    $r{upd_bad} = $bad;
    $r{upd_dropped} = $dropped;
    for my $k (@per_update) {
        for my $w (qw(m1 all)) {
            $r{per_upd}{$k}{$w} = $ok ? (($sum{$k}{$w} // 0) - $r{bg}{$k}{$w} * $span) / $ok
                                      : undef;
        }
    }

    my $port = $c->member('node1')->{http_port};
    open my $idf, '>', "$tmp/cookies-$n" or die;
    print {$idf} "$_\n" for @$ids;
    close $idf;
    print STDERR "$spec N=$n: wrk, existing sessions\n";
    $r{wrk} = @$ids ? wrk($port, $lua_existing, "$tmp/cookies-$n") : { errors => 0 };
    fetch_latency($c, \%r, $ids) if $backup && $n >= 3;
    $r{crash} = join ' ', grep { ($c->error_log($_) // '') =~ /exit signal|Segmentation|AH00052/ } @names;
    $c->teardown;
    $r{load_after} = loadavg();
    return \%r;
}

# ---- the runs: per N, each manager in turn ----
my $load_start = loadavg();
for my $spec (@managers) {
    my $why = unimplemented($spec);
    die "MANAGERS: $spec cannot be measured: $why\n" if $why;
}
my (%res, @notes);
for my $n (@ns) {
    for my $spec (@managers) {
        # the fill's time at this N, predicted from this manager's last
        # rate at a smaller N (each new session goes to N-1 members)
        my ($count, $why) = ($sessions, undef);
        my ($last) = grep { $_->{n} < $n && $_->{fill_rate} } reverse @{ $res{$spec} || [] };
        if ($last) {
            my $rate = $last->{fill_rate} * ($last->{n} - 1) / ($n - 1);
            if ($sessions / $rate > $fill_limit) {
                $count = int($rate * $fill_limit / 1000) * 1000 || 1000;
                $why = sprintf('%s N=%d: S cut from %d to %d: %.0f sessions/s at N=%d predict '
                               . '%.0f/s here, %.1f s for %d (FILL_LIMIT %g s)',
                               $spec, $n, $sessions, $count, $last->{fill_rate}, $last->{n},
                               $rate, $sessions / $rate, $sessions, $fill_limit);
                print STDERR "$why\n";
                push @notes, $why;
            }
        }
        my $r = eval { measure($spec, $n, $count, $why) };
        if ($r) { push @{ $res{$spec} }, $r; next }
        (my $err = $@ || 'died') =~ s/\s+$//;
        print STDERR "$spec N=$n: failed: $err\n";
        push @notes, "$spec N=$n: no row, the run failed: $err";
    }
}
my $load_end = loadavg();

# ---- the table ----
my $MB = 1048576;
sub _mb { defined $_[0] && $_[0] =~ /^[\d.]+$/ ? $_[0] / $MB : undef }
sub mean {
    my @v = grep { defined && /^[\d.]+$/ } @_;
    return undef unless @v;
    my $sum = 0;
    $sum += $_ for @v;
    return $sum / @v;
}
sub others { my ($r, $k) = @_; mean(map { $r->{$k}{"node$_"} } 2 .. $r->{n}) }
my @cols = (
    [ 'manager', '%-14s', sub { $_[0]{spec} } ],
    [ 'N', '%2s', sub { $_[0]{n} } ],
    [ 'S', '%6s', sub { $_[0]{made} } ],
    [ 'fill/s', '%7.0f', sub { $_[0]{fill_rate} } ],
    [ 'repl s', '%6.1f', sub { $_[0]{repl_s} } ],
    [ 'upd r/s', '%7.0f', sub { $_[0]{wrk}{rps} } ],
    [ 'p99 ms', '%7.2f', sub { $_[0]{wrk}{p99} } ],
    [ 'B/upd m1', '%8.0f', sub { $_[0]{per_upd}{BytesOut}{m1} } ],
    [ 'B/upd all', '%9.0f', sub { $_[0]{per_upd}{BytesOut}{all} } ],
    [ 'msg/upd m1', '%10.2f', sub { $_[0]{per_upd}{MsgsOut}{m1} } ],
    [ 'msg/upd all', '%11.2f', sub { $_[0]{per_upd}{MsgsOut}{all} } ],
    [ 'pss1 MB', '%7.1f', sub { _mb($_[0]{pss}{node1}) } ],
    [ 'pss oth', '%7.1f', sub { _mb(others($_[0], 'pss')) } ],
    [ 'budg1 MB', '%8.1f', sub { _mb($_[0]{budget}{node1}) } ],
    [ 'budg oth', '%8.1f', sub { _mb(others($_[0], 'budget')) } ],
    [ 'budg mean', '%9.1f', sub { _mb(mean(map { $_[0]{budget}{"node$_"} } 1 .. $_[0]{n})) } ],
    [ 'fetch p50/p99 us', '%16s', sub { my $f = $_[0]{fetch} or return undef;
                                        defined $f->{p50_us} ? "$f->{p50_us}/$f->{p99_us}" : undef } ],
    [ 'bg kB/s', '%7.1f', sub { defined $_[0]{bg_all} ? $_[0]{bg_all} / 1000 : undef } ],
    [ 'load', '%11s', sub { load1($_[0]{load_before}) . '>' . load1($_[0]{load_after}) } ],
);
# the columns with a ratio, and whether it is a memory figure (per session
# held when S differs between the two rows)
my %ratio = ('B/upd m1' => 0, 'B/upd all' => 0, 'msg/upd m1' => 0, 'msg/upd all' => 0,
             'pss1 MB' => 1, 'pss oth' => 1, 'budg1 MB' => 1, 'budg oth' => 1, 'budg mean' => 1);
sub cell {
    my ($fmt, $v) = @_;
    (my $w = $fmt) =~ s/^%-?(\d+).*/$1/;
    return defined $v ? sprintf($fmt, $v) : sprintf("%${w}s", '-');
}
sub width { my ($w) = $_[0][1] =~ /^%-?(\d+)/; $w }
print "\n";
print join(' ', map { sprintf($_->[1] =~ /^%-/ ? "%-*s" : "%*s", width($_), $_->[0]) } @cols), "\n";
my $per_session_note = 0;
for my $spec (@managers) {
    my @rows = @{ $res{$spec} || [] };
    for my $r (@rows) {
        print join(' ', map { cell($_->[1], $_->[2]->($r)) } @cols), "\n";
    }
    my $base = $rows[0] or next;
    for my $r (@rows[1 .. $#rows]) {
        my @cells;
        for my $col (@cols) {
            my $w = width($col);
            if ($col->[0] eq 'manager') { push @cells, sprintf('%-*s', $w, "  ratio $r->{n}/$base->{n}"); next }
            unless (exists $ratio{$col->[0]}) { push @cells, sprintf('%*s', $w, ''); next }
            my ($a, $b) = ($col->[2]->($base), $col->[2]->($r));
            my $mark = '';
            if ($ratio{$col->[0]} && $base->{made} != $r->{made} && $base->{made} && $r->{made}) {
                ($a, $b) = ($a / $base->{made}, $b / $r->{made}) if defined $a && defined $b;
                $mark = '*';
                $per_session_note = 1;
            }
            push @cells, defined $a && defined $b && $a > 0
                ? sprintf('%*s', $w, sprintf('%.2f', $b / $a) . $mark) : sprintf('%*s', $w, '-');
        }
        print join(' ', @cells), "\n";
    }
}
print "(* memory per session held: S differs between the two rows)\n" if $per_session_note;
print "\n";
for my $spec (@managers) {
    for my $r (@{ $res{$spec} || [] }) {
        my @n;
        push @n, "made $r->{made} of $r->{s} sessions in " . sprintf('%.1f s', $r->{fill_s})
                 . ($r->{fill_failed} ? ", $r->{fill_failed} failed fill request(s): "
                    . join(' | ', grep { defined } @{ $r->{fill_why} }[0 .. 2]) : '');
        push @n, 'not every member saw the others ready in time' unless $r->{ready};
        push @n, "node1 held $r->{want}, the others at least $r->{held_min}"
                 . (defined $r->{repl_s} ? '' : ' (not all: timed out)');
        push @n, sprintf('%d counted updates (%d more not counted: an anti-entropy round started '
                         . 'meanwhile) in %.1f s (%d not 200); ReplicatedOut/upd on node1 %.2f, '
                         . 'AcksOut/upd (all) %.2f; subtracted: node1 %.0f B/s, all %.0f B/s '
                         . '(heartbeats, over %.1f s of the idle time without anti-entropy); '
                         . 'idle: %d anti-entropy round(s) in %d s%s',
                         $r->{upd_ok}, $r->{upd_dropped}, $r->{upd_s}, $r->{upd_bad},
                         $r->{per_upd}{ReplicatedOut}{m1} // 0, $r->{per_upd}{AcksOut}{all} // 0,
                         $r->{bg}{BytesOut}{m1}, $r->{bg}{BytesOut}{all}, $r->{hb_t},
                         $r->{ae_idle}, $idle,
                         $r->{ae_idle} ? sprintf(', about %.0f kB sent per round',
                                                 ($r->{bg_all} - $r->{bg}{BytesOut}{all})
                                                 * $r->{idle_t} / $r->{ae_idle} / 1000) : '');
        push @n, "wrk non-2xx $r->{wrk}{errors}";
        push @n, sprintf('backups on the others: %s', join(' ', map { $r->{backups}{$_} // '?' }
                                                          sort keys %{ $r->{backups} || {} }))
            if $r->{spec} =~ /^BackupManager/;
        push @n, sprintf('fetches on node%d: %d sessions it knew by location read, %d fetched '
                         . '(BackupFetches), %d not 200; the reads took p50 %.2f ms, p99 %.2f ms '
                         . 'at the client', $r->{n}, $r->{fetch}{n}, $r->{fetch}{fetched},
                         $r->{fetch}{bad}, $r->{fetch}{rd50_ms} // -1, $r->{fetch}{rd99_ms} // -1)
            if $r->{fetch};
        push @n, "wrk socket errors: $r->{wrk}{sockerr}" if $r->{wrk}{sockerr};
        push @n, "CRASH in the error_log of $r->{crash}" if $r->{crash};
        print "$r->{spec} N=$r->{n}: ", join('; ', @n), "\n";
    }
}
print "$_\n" for @notes;
printf "\nloadavg at the start: %s; at the end: %s (%d cores)\n", $load_start, $load_end,
    scalar(grep { /^processor\s*:/ } do { open my $f, '<', '/proc/cpuinfo'; <$f> });
printf "N members on loopback, static membership; manager = class/channelSendOptions "
     . "(DeltaManager) or /mapSendOptions (BackupManager); S sessions of %d bytes made on "
     . "node1 by %d kept-alive clients; repl s: from the end of the fill until every member "
     . "held them all; upd r/s, p99 ms: wrk -t%d -c%d for %d s on node1, GET /app?auto on an "
     . "existing session picked at random (read + counter update); B/upd, msg/upd: BytesOut "
     . "and MsgsOut sent per update over %d updates by one kept-alive client on node1, on "
     . "node1 and summed over all members (acks included), in chunks of %d without an "
     . "anti-entropy round, less the heartbeats' traffic measured in %d s of idle time before; "
     . "bg kB/s: all members' BytesOut in that idle time (heartbeats and anti-entropy); pss: PSS of a member's processes, budg: SessionsBudgetUsed, after "
     . "the fill, on node1 and the mean over the other members (MB), budg mean: over all "
     . "members; fetch p50/p99 us (BackupManager, N >= 3): BackupFetchP50Us/P99Us of the "
     . "last member after it read FETCHES sessions it knew by location only; load: 1-minute load "
     . "before > after each row\n",
     $size, $clients, $threads, $conns, $secs, $updates, $chunk, $idle;
