#!/usr/bin/env perl
# The comparison benchmark (issue 8): mod_session_cluster and the alternatives,
# side by side in one run, on loopback.  It starts and stops every server it
# needs: httpd members and a front balancer (t/lib/SC/Cluster.pm), PostgreSQL
# (for mod_session_dbd), and Tomcat 10 nodes (one CATALINA_BASE each, seed
# 002's default <Cluster> block, the webapp of bench/compare/webapp).
#
# Workloads (bench/README says exactly what each does):
#   update      per-request session read + counter update, direct to one member:
#               httpd without session, mod_session_cookie, mod_session_dbd on
#               PostgreSQL, ours and Tomcat (2 members, async 8 and sync 6);
#               BENCH_CONNECTIONS (16 64), one session per connection
#   update3     the same, ours and Tomcat with 3 members (direct to the first)
#   front       the same through a front balancer (mod_proxy_balancer,
#               stickysession=JSESSIONID|jsessionid): ours (SessionClusterBalancer),
#               Tomcat (stock balancer), a session-less page through our front
#   front3      the same with 3 members, async only
#   heavy       the same with one more attribute of 1 KB / 32 KB in every session
#   failover    kill -9 of one of the two members under load through the front
#   transfer    a joining member receives TRANSFER_COUNTS (10000 100000) sessions
#
# Environment (bench/README has the table):
#   BENCH_SECONDS (5)        each measured wrk run
#   BENCH_REPEATS (3)        rounds, setups in alternating order; medians, spread
#   TRANSFER_REPEATS         rounds of the state transfer runs (BENCH_REPEATS)
#   BENCH_CONNECTIONS        "16 64"; the heavy and failover runs use the first
#   BENCH_WARMUP (90)        Tomcat: at most that many seconds of load on node A,
#                            then on node B (half that through the front) before
#                            anything is measured, until 100,000 (30,000)
#                            requests are served and req/s stays within 10% over
#                            5 s (the JIT); httpd setups get 1 s
#   TRANSFER_COUNTS          "10000 100000"; "" for none
#   BENCH_ONLY               a regular expression on the setup names: none cookie
#                            dbd ours-async ours-sync ours-async-heavy
#                            ours-sync-heavy tomcat-async tomcat-sync
#                            ours3-async ours3-sync tomcat3-async tomcat3-sync
#                            transfer
#   BENCH_TOMCAT_OPTS        the JVM's options ("-Xmx2g")
#   CATALINA_HOME            /usr/share/tomcat10
#   BENCH_DEBUG, BENCH_KEEP  processes' memory and lost updates; keep the files
# Writes bench/compare.csv and bench/compare.png (gnuplot).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Cwd qw(abs_path);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

# Our own cleanup first: SC::Cluster chains to a handler that was installed
# before its own (it tears its members down, then calls this one).
my (@TOMCATS, $PG);
sub cleanup {
    for my $t (@TOMCATS) { eval { tomcat_stop($t, 5) } }
    @TOMCATS = ();
    pg_stop();
}
for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub { print STDERR "compare.pl: SIG$sig, stopping what it started\n"; cleanup(); exit 130 };
}
END { my $rc = $?; cleanup(); $? = $rc }

require SC::Cluster;
$SIG{PIPE} = 'IGNORE';
STDOUT->autoflush(1);

my $secs    = $ENV{BENCH_SECONDS} || 5;
my $repeats = $ENV{BENCH_REPEATS} || 3;
my @conns   = split ' ', ($ENV{BENCH_CONNECTIONS} || '16 64');
my @tcounts = split ' ', ($ENV{TRANSFER_COUNTS} // '10000 100000');
my $warm_jvm = $ENV{BENCH_WARMUP} // 90;
my $only    = $ENV{BENCH_ONLY};
my $heavy_conns = $conns[0];
my @heavy_sizes = (1024, 32768);
my $repo = abs_path("$FindBin::Bin/..");
my $bench = "$repo/bench";
my $demo = $ENV{SC_DEMO_SO} || "$repo/demo/.libs/mod_session_cluster_demo.so";
die "build first (make): $demo is missing\n" unless -f $demo;
-x '/usr/bin/wrk' or die "wrk is missing: apt-get install wrk\n";
my $LUA = slurp("$bench/compare/sessions.lua");

my $tmp = tempdir('sc-compare-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{BENCH_KEEP});
print "BENCH_KEEP: Tomcat bases, PostgreSQL and wrk files stay in $tmp\n" if $ENV{BENCH_KEEP};
chmod 0755, $tmp;

# ---- Tomcat ----
my $CATALINA_HOME = $ENV{CATALINA_HOME} || '/usr/share/tomcat10';
my ($java) = grep { -x } map { "$_/java" } split(/:/, $ENV{PATH} || ''), '/usr/bin';
my $JAVA_HOME = $ENV{JAVA_HOME} || ($java ? abs_path($java) =~ s{/bin/java$}{}r : undef);
my ($jdt) = grep { -f } qw(/usr/share/java/eclipse-jdt-core.jar /usr/share/java/ecj.jar);
my $tomcat_why = !-x "$CATALINA_HOME/bin/catalina.sh" ? "no $CATALINA_HOME/bin/catalina.sh"
               : !-f "$CATALINA_HOME/lib/catalina-ha.jar" ? "no catalina-ha.jar"
               : !$JAVA_HOME ? 'no java' : !$jdt ? 'no JSP compiler (eclipse-jdt-core.jar)' : undef;
warn "compare.pl: no Tomcat scenarios ($tomcat_why): apt-get install tomcat10\n" if $tomcat_why;
my $tomcat_opts = $ENV{BENCH_TOMCAT_OPTS} // '-Xmx2g';
my $SERVER_XML = slurp("$bench/compare/server.xml.in");
my $tseq = 0;

sub slurp { my $f = shift; open my $fh, '<', $f or die "$f: $!\n"; local $/; <$fh> }
sub spew { my ($f, $t) = @_; open my $fh, '>', $f or die "$f: $!\n"; print $fh $t; close $fh }

sub free_udp_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'udp')
        or die "udp socket: $!\n";
    my $p = $s->sockport;
    close $s;
    return $p;
}

# A node: its own CATALINA_BASE (conf/server.xml from the template, the webapp
# from bench/compare/webapp, Jasper's compiler in lib/), ports of its own.
sub tomcat_node {
    my (%o) = @_;
    my $t = { name => $o{name}, route => $o{name}, base => "$tmp/tomcat-" . ++$tseq . "-$o{name}",
              http_port => SC::Cluster::free_port(), recv_port => SC::Cluster::free_port() };
    make_path(map { "$t->{base}/$_" } qw(conf logs webapps work temp lib));
    symlink $jdt, "$t->{base}/lib/" . ($jdt =~ s{.*/}{}r);
    my $mgr = join '', map { qq{\n                   $_="$o{manager}{$_}"} } sort keys %{ $o{manager} || {} };
    my %v = (NAME => $o{name}, ROUTE => $o{name}, HTTP_PORT => $t->{http_port},
             RECEIVER_PORT => $t->{recv_port}, MCAST_PORT => $o{mcast_port},
             SEND_OPTIONS => $o{send}, WEBAPP => "$bench/compare/webapp", MANAGER_ATTRS => $mgr);
    (my $xml = $SERVER_XML) =~ s/\@([A-Z_]+)\@/exists $v{$1} ? $v{$1} : die "server.xml.in: \@$1\@?\n"/ge;
    spew("$t->{base}/conf/server.xml", $xml);
    $t->{log} = "$t->{base}/logs/catalina.out";
    return $t;
}

sub starttime {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/stat" or return;
    my $s = <$fh>;
    return unless $s && $s =~ /\)\s+(\S+)(?:\s+\S+){18}\s+(\d+)/;
    return $1 eq 'Z' ? undef : $2;
}

sub tomcat_start {
    my ($t) = @_;
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $t->{log};
        open STDERR, '>&', \*STDOUT;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE);
        %ENV = (%ENV, CATALINA_HOME => $CATALINA_HOME, CATALINA_BASE => $t->{base},
                CATALINA_TMPDIR => "$t->{base}/temp", JAVA_HOME => $JAVA_HOME,
                CATALINA_OPTS => "-Dbench.route=$t->{route} -Djava.net.preferIPv4Stack=true $tomcat_opts");
        { exec "$CATALINA_HOME/bin/catalina.sh", 'run' }   # catalina.sh execs java: same pid
        POSIX::_exit(127);
    }
    $t->{pid} = $pid;
    $t->{t0} = time;
    sleep 0.05;
    $t->{starttime} = starttime($pid);
    push @TOMCATS, $t unless grep { $_ == $t } @TOMCATS;
    return $pid;
}

sub tomcat_alive {
    my $t = shift;
    return 0 unless $t->{pid};
    waitpid($t->{pid}, WNOHANG);
    my $st = starttime($t->{pid});
    return defined $st && (!defined $t->{starttime} || $st eq $t->{starttime});
}

sub log_tail {
    my ($f, $n) = @_;
    my @l = split /\n/, (-f $f ? slurp($f) : '');
    return join("\n", @l > $n ? @l[-$n .. -1] : @l) . "\n";
}

# Waits until the node answers /stats (its webapp runs: the state transfer is
# over) and sees at least $members other members.
sub tomcat_wait {
    my ($t, $members, $timeout) = @_;
    my $deadline = time + ($timeout || 90);
    while (time < $deadline) {
        die "Tomcat $t->{name} exited:\n" . log_tail($t->{log}, 30) unless tomcat_alive($t);
        my ($st, undef, $b) = http_get($t->{http_port}, '/stats', undef, close => 1, timeout => 5);
        if ($st == 200 && $b =~ /^Members: (-?\d+)/m && $1 >= ($members // 0)) {
            $t->{ready} = time;
            return $b;
        }
        sleep 0.2;
    }
    die "Tomcat $t->{name} not ready after ${\ ($timeout || 90)} s:\n" . log_tail($t->{log}, 30);
}

sub tomcat_stat {
    my ($t, $key) = @_;
    my ($st, undef, $b) = http_get($t->{http_port}, '/stats', undef, close => 1, timeout => 10);
    return $st == 200 && $b =~ /^\Q$key\E: (\S+)/m ? $1 : undef;
}

sub tomcat_stop {
    my ($t, $timeout) = @_;
    if (tomcat_alive($t)) {
        kill 'TERM', $t->{pid};
        my $deadline = time + ($timeout || 20);
        sleep 0.1 while tomcat_alive($t) && time < $deadline;
        kill 'KILL', $t->{pid} if tomcat_alive($t);
    }
    waitpid($t->{pid}, 0) if $t->{pid};
    @TOMCATS = grep { $_ != $t } @TOMCATS;
    $t->{pid} = undef;
}

sub tomcat_kill9 {
    my $t = shift;
    kill 'KILL', $t->{pid} if tomcat_alive($t);
    waitpid($t->{pid}, 0);
    $t->{pid} = undef;
}

# ---- PostgreSQL, our own instance (as bench/sessions.pl) ----
my ($pg_dir, $pg_port, $pg_bin);
($pg_bin) = glob('/usr/lib/postgresql/*/bin');
my @as_pg = $> == 0 ? ('runuser', '-u', 'postgres', '--') : ();
sub pg_start {
    return if $pg_dir || !$pg_bin || !-x "$pg_bin/initdb";
    $pg_dir = "$tmp/pg";
    mkdir $pg_dir;
    system('chown', 'postgres:postgres', $pg_dir) if $> == 0;
    $pg_port = SC::Cluster::free_port();
    my $q = "$pg_dir/setup.log";
    system("@as_pg $pg_bin/initdb -D $pg_dir/data -A trust -U postgres >$q 2>&1")
        == 0 or die "initdb failed:\n" . slurp($q);
    system("@as_pg $pg_bin/pg_ctl -D $pg_dir/data -l $pg_dir/log -w -o "
           . "\"-p $pg_port -k $pg_dir -c listen_addresses='' -c fsync=off\" start >>$q 2>&1")
        == 0 or die "postgres did not start:\n" . slurp($q);
    $PG = 1;
    system('psql', '-q', '-h', $pg_dir, '-p', $pg_port, '-U', 'postgres', '-c',
           'create table session (key varchar(256) primary key, value text, expiry bigint)');
}
sub pg_stop {
    return unless $PG;
    $PG = 0;
    system("@as_pg $pg_bin/pg_ctl -D $pg_dir/data -m fast stop >/dev/null 2>&1");
}

# ---- HTTP (keep-alive connections, opened again when the server closes) ----
my %SOCK;
sub http_get {
    my ($port, $path, $cookie, %o) = @_;
    for my $try (1 .. 2) {
        my $s = $SOCK{$port};
        $s ||= IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
                                     Timeout => 5);
        return (0, '', '') unless $s;
        my ($head, $body) = ('', '');
        my $ok = eval {
            local $SIG{ALRM} = sub { die "timeout\n" };
            alarm($o{timeout} || 30);
            print $s "GET $path HTTP/1.1\r\nHost: localhost\r\n"
                . ($cookie ? "Cookie: $cookie\r\n" : '')
                . ($o{close} ? "Connection: close\r\n" : '') . "\r\n";
            while (my $l = <$s>) {
                $head .= $l;
                last if $l eq "\r\n";
            }
            if ($head =~ /^Transfer-Encoding: chunked/mi) {
                while (defined(my $sz = <$s>)) {
                    $sz =~ s/[;\s].*//s;
                    $sz = hex $sz;
                    if (!$sz) { <$s>; last }
                    my $chunk = '';
                    read($s, $chunk, $sz);
                    $body .= $chunk;
                    <$s>;
                }
            }
            elsif ($head =~ /^Content-Length: (\d+)/mi) {
                read($s, $body, $1) if $1;
            }
            alarm 0;
            1;
        };
        alarm 0;
        if (!$ok || $head !~ m{^HTTP/\d\.\d (\d+)}) {
            delete $SOCK{$port};
            next;
        }
        my $st = $1;
        if ($o{close} || $head =~ /^Connection: close/mi) { delete $SOCK{$port} }
        else { $SOCK{$port} = $s }
        return ($st, $head, $body);
    }
    return (0, '', '');
}
sub drop_sockets { %SOCK = () }

sub set_cookie { my $h = shift; $h =~ /^Set-Cookie:\s*([^;\r\n]+)/mi ? $1 : undef }

# $count sessions, each with the attribute bench=i and, with $data, the
# attribute data of $data bytes: their cookies ("" for a page without session)
sub make_sessions {
    my ($port, $count, $data) = @_;
    my @ck;
    for my $i (1 .. $count) {
        my ($st, $h) = http_get($port, "/app?set=bench&value=$i");
        die "session setup on port $port: status $st\n" unless $st == 200;
        my $ck = set_cookie($h) // '';
        if ($data && $ck) {
            ($st, $h) = http_get($port, "/app?set=data&value=" . ('x' x $data), $ck);
            die "session setup (data $data) on port $port: status $st\n" unless $st == 200;
            $ck = set_cookie($h) // $ck;
        }
        push @ck, $ck;
    }
    return @ck;
}
sub make_plain { my ($count) = @_; return ('') x $count }

# ---- wrk ----
sub wrk_threads { $_[0] < 2 ? 1 : 2 }

# Runs wrk with the session script; returns a hash of figures.  kill_at =>
# seconds, kill => sub: called that long after wrk starts (failover).
sub run_wrk {
    my (%o) = @_;
    my $threads = wrk_threads($o{conns});
    my $lua = "$tmp/wrk-$$.lua";
    spew($lua, "nthreads = $threads\npath = \"$o{path}\"\n"
               . ($ENV{BENCH_DEBUG} ? "debug = true\n" : '') . "all = {"
               . join(',', map { my $c = $_; $c =~ s/(["\\])/\\$1/g; "\"$c\"" } @{ $o{cookies} })
               . "}\n" . $LUA);
    my @cmd = ('wrk', "-t$threads", "-c$o{conns}", "-d$o{secs}s", '--timeout', '10s', '--latency',
               '-s', $lua, "http://127.0.0.1:$o{port}/");
    my $outf = "$tmp/wrk-$$.out";
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $outf;
        open STDERR, '>&', \*STDOUT;
        { exec @cmd }
        POSIX::_exit(127);
    }
    my $t0 = time;
    if ($o{kill}) {
        sleep 0.05 while time - $t0 < $o{kill_at} && !waitpid($pid, WNOHANG);
        $o{kill}->();
    }
    waitpid($pid, 0);
    my $out = slurp($outf);
    my %r;
    ($r{rps}) = $out =~ /Requests\/sec:\s+([\d.]+)/;
    ($r{p50}, $r{p99}) = map {
        my ($v, $u) = $out =~ /^\s+$_%\s+([\d.]+)(us|ms|s)\s*$/m;
        defined $v ? $v * ($u eq 'us' ? 0.001 : $u eq 's' ? 1000 : 1) : undef
    } (50, 99);
    ($r{requests}) = $out =~ /(\d+) requests in/;
    my @se = $out =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
    $r{socket_errors} = 0;
    $r{socket_errors} += $_ for @se;
    $r{socket_detail} = "connect/read/write/timeout=" . join('/', @se) if @se;
    $r{lc $1} = $2 while $out =~ /^BENCH_(\w+) ([\d.]+)$/mg;
    ($r{statuses}) = $out =~ /^BENCH_STATUSES ?(.*)$/m;
    $r{errors} = ($r{failed} // 0) + $r{socket_errors};
    warn "wrk gave no figures:\n$out" unless defined $r{rps};
    print map { "    $_\n" } $out =~ /^(LOST .*)$/mg if $ENV{BENCH_DEBUG};
    $r{rps} //= 0;
    return \%r;
}

# ---- memory ----
# (RSS MB, PSS MB) of a set of processes: RSS counts shared pages (the store's
# shared memory, libraries) once per process; PSS shares them out.
sub mem_of {
    my ($rss, $pss) = (0, 0);
    for my $pid (@_) {
        if (open my $st, '<', "/proc/$pid/status") {
            while (my $l = <$st>) { $rss += $1 if $l =~ /^VmRSS:\s+(\d+)/ }
        }
        if (open my $sm, '<', "/proc/$pid/smaps_rollup") {
            while (my $l = <$sm>) { $pss += $1 if $l =~ /^Pss:\s+(\d+)/ }
        }
    }
    return ($rss / 1024, $pss / 1024);
}

# ---- what a member holds of a session ----
sub sid_of { my $ck = shift // ''; $ck =~ /=([^;\s]+)/ ? $1 : undef }
# ours: SessionVersion on the member's status page (?session=ID), undef if
# it does not hold the session
sub our_version {
    my ($port, $id) = @_;
    my (undef, undef, $b) = http_get($port, "/cluster-manager?session=$id");
    return $b =~ /^SessionVersion: (\d+)$/m ? $1 : undef;
}
# Tomcat: an attribute of the session as the node's DeltaManager holds it
sub tomcat_attr {
    my ($port, $id, $key) = @_;
    my (undef, undef, $b) = http_get($port, "/stats?id=$id&key=$key");
    return $b =~ /^Value: (\d+)$/m ? $1 : undef;
}
# (stale, of, [per member]): of the sessions some member holds, those that
# a member does not hold or holds below the highest figure any member has
# (with writes on member 1 only: member 2 or 3 behind member 1); per member,
# the sessions it has missing or behind.  $gets: one sub per member.
sub stale_count {
    my ($gets, @ck) = @_;
    my ($stale, $of, @per) = (0, 0, map { 0 } @$gets);
    for my $id (grep { defined } map { sid_of($_) } @ck) {
        my @v = map { $_->($id) } @$gets;
        my ($max) = sort { $b <=> $a } grep { defined } @v;
        next unless defined $max;
        $of++;
        my @behind = grep { !defined $v[$_] || $v[$_] < $max } 0 .. $#v;
        $per[$_]++ for @behind;
        $stale++ if @behind;
    }
    return ($stale, $of, \@per);
}

# the lowest of figures, undef if any is (a member that does not have it)
sub lowest { return undef if grep { !defined } @_; my ($v) = sort { $a <=> $b } @_; $v }

# ---- replication lag: 200 writes on member A, each polled on member B (and
# C) until B (and C) has it (over HTTP, kept connections) ----
sub lag_samples {
    my ($write, $poll) = @_;
    my @lags;
    for (1 .. 200) {
        my $want = $write->();
        next unless defined $want;
        my $t0 = time;
        while (time - $t0 < 1) {
            my $got = $poll->();
            last if defined $got && $got >= $want;
        }
        push @lags, (time - $t0) * 1000;
    }
    @lags = sort { $a <=> $b } @lags;
    return @lags ? ($lags[@lags / 2], $lags[int(@lags * 0.99)]) : (undef, undef);
}

# ---- the setups ----
# Two children of 64 threads, both from the start: a child with fewer
# threads than the connections it holds closes kept connections as "busy"
# (event MPM), and wrk loses the requests it had just sent on them.  (Tomcat:
# one process, maxThreads 200.)
my $MPM = "ServerLimit 2\nThreadLimit 64\nThreadsPerChild 64\nMaxRequestWorkers 128\n"
        . "StartServers 2\nMinSpareThreads 64\nMaxSpareThreads 192\n";
my $ECHO = "Header echo ^X-Bench\$\n";
my $FRONT_ECHO = "Header always echo ^X-Bench\$\n";
my $app = sub {
    my ($loc, $extra) = @_;
    "<Location $loc>\n$extra    SetHandler session-cluster-demo\n</Location>\n";
};
my $dbd_sql = <<'Q';
DBDPrepareSQL "select value from session where key = %s and (expiry = 0 or expiry > %lld)" selectsession
DBDPrepareSQL "delete from session where key = %s" deletesession
DBDPrepareSQL "insert into session (value, expiry, key) values (%s, %lld, %s)" insertsession
DBDPrepareSQL "update session set value = %s, expiry = %lld, key = %s where key = %s" updatesession
Q

my (%res, @rows, %meta);   # results: key => [ per-round hashes ]
sub row {
    my ($key, %m) = @_;
    push @rows, $key unless $meta{$key};
    $meta{$key} ||= { key => $key, %m };
}
sub record { my ($key, $r) = @_; push @{ $res{$key} }, $r }

# The table's rows, in order (whether or not they run).  base: the row of
# the same page without session (vs none).
sub setup_rows {
    for my $c (@conns) {
        my @b = (group => "update c$c", base => "update c$c|httpd, no session");
        row("update c$c|httpd, no session", @b, kind => 'base');
        row("update c$c|mod_session_cookie", @b, kind => 'alt');
        row("update c$c|mod_session_dbd postgresql", @b, kind => 'alt');
        row("update c$c|ours async (8)", @b, kind => 'ours');
        row("update c$c|ours sync (6)", @b, kind => 'ours');
        row("update c$c|Tomcat async (8)", @b, kind => 'alt');
        row("update c$c|Tomcat sync (6)", @b, kind => 'alt');
    }
    for my $c (@conns) {
        my @b = (group => "update3 c$c", base => "update c$c|httpd, no session");
        row("update3 c$c|ours async (8)", @b, kind => 'ours');
        row("update3 c$c|ours sync (6)", @b, kind => 'ours');
        row("update3 c$c|Tomcat async (8)", @b, kind => 'alt');
        row("update3 c$c|Tomcat sync (6)", @b, kind => 'alt');
    }
    for my $c (@conns) {
        my @b = (group => "front c$c", base => "front c$c|no session, our front");
        row("front c$c|no session, our front", @b, kind => 'base');
        row("front c$c|ours async (8)", @b, kind => 'ours');
        row("front c$c|ours sync (6)", @b, kind => 'ours');
        row("front c$c|Tomcat async (8)", @b, kind => 'alt');
        row("front c$c|Tomcat sync (6)", @b, kind => 'alt');
    }
    for my $c (@conns) {
        my @b = (group => "front3 c$c", base => "front3 c$c|no session, our front");
        row("front3 c$c|no session, our front", @b, kind => 'base');
        row("front3 c$c|ours async (8)", @b, kind => 'ours');
        row("front3 c$c|Tomcat async (8)", @b, kind => 'alt');
    }
    for my $kb (map { $_ / 1024 } @heavy_sizes) {
        my $g = "heavy ${kb}KB c$heavy_conns";
        my @b = (group => $g, base => "update c$heavy_conns|httpd, no session");
        row("$g|mod_session_cookie", @b, kind => 'alt') if $kb < 4;
        row("$g|mod_session_dbd postgresql", @b, kind => 'alt');
        row("$g|ours async (8)", @b, kind => 'ours');
        row("$g|ours sync (6)", @b, kind => 'ours');
        row("$g|Tomcat async (8)", @b, kind => 'alt');
        row("$g|Tomcat sync (6)", @b, kind => 'alt');
    }
    for my $s ('ours async (8)', 'ours sync (6)', 'Tomcat async (8)', 'Tomcat sync (6)') {
        row("failover c$heavy_conns|$s", group => "failover c$heavy_conns",
            kind => $s =~ /ours/ ? 'ours' : 'alt');
    }
    for my $n (@tcounts) {
        row("transfer $n|ours", group => "transfer $n", kind => 'ours');
        row("transfer $n|Tomcat", group => "transfer $n", kind => 'alt');
        row("transfer $n|Tomcat, blocks of 1000", group => "transfer $n", kind => 'alt');
    }
}

# A measured run: sessions, wrk, memory.
sub measure {
    my (%o) = @_;   # key, port, path, conns, data, mem (sub), plain
    my $n = $o{conns} + wrk_threads($o{conns});
    # through a front: sessions made directly on each member in turn, so that
    # exactly half live on each.  (Made through the front, they would all go
    # to one member: mod_proxy_balancer's byrequests counts sticky requests
    # too, so after a run whose sessions lived on one member the other one
    # has all the credit and gets every new session, round after round.)
    # The no-session page gets the same cookies: the same routing.
    my @ck = $o{make_on}
        ? map { make_sessions($o{make_on}[$_ % @{ $o{make_on} }], 1, $o{data}) } 0 .. $n - 1
        : $o{plain} ? make_plain($n) : make_sessions($o{port}, $n, $o{data});
    my $r = run_wrk(port => $o{port}, path => $o{path} // '/app', conns => $o{conns},
                    cookies => \@ck, secs => $secs, kill => $o{kill}, kill_at => $o{kill_at});
    @$r{qw(rss1 pss1 rss2 pss2 rss3 pss3)} = $o{mem}->() if $o{mem};
    $r->{sessions} = $n;
    if ($o{stale}) {
        # 1 s after the last write: sessions member 2 holds behind member 1
        sleep 1;
        @$r{qw(stale stale_of stale_per)} = $o{stale}->(@ck);
    }
    $r->{payload} = $o{payload}->() if $o{payload};
    record($o{key}, $r);
    printf "  %-44s %8.0f req/s  p99 %7.2f ms  errors %d%s  lost %d%s%s\n", $o{key}, $r->{rps},
        $r->{p99} // 0, $r->{errors}, $r->{statuses} || $r->{socket_errors}
            ? " ($r->{statuses}" . ($r->{socket_errors} ? " socket $r->{socket_detail}" : '') . ')' : '',
        $r->{lost} // 0,
        $o{kill} ? sprintf('  stall %.0f ms  gone %d', $r->{stall} // 0, $r->{gone} // 0) : '',
        $o{stale} ? sprintf('  stale 1 s after: %s/%s (missing or behind on m1..m%d: %s)',
                            $r->{stale} // '?', $r->{stale_of} // '?', scalar @{ $r->{stale_per} || [] },
                            join(' ', @{ $r->{stale_per} || [] })) : '';
    return $r;
}

sub warmup {
    my ($port, $s, $path) = @_;
    return unless $s > 0;
    my @ck = make_sessions($port, 18);
    run_wrk(port => $port, path => $path // '/app', conns => 16, cookies => \@ck, secs => $s);
}

# The JVM's warm-up: load in 5 s steps until at least $min requests were
# served and the last step's req/s is within 10% of the step before (the JIT
# has compiled what the page runs), at most $max s.
sub warmup_jvm {
    my ($what, $port, $min, $max) = @_;
    return unless $max > 0;
    my @ck = make_sessions($port, 18);
    my ($t, $n, $prev, $rps) = (0, 0, 0, 0);
    while ($t < $max) {
        my $step = $max - $t < 5 ? $max - $t : 5;
        my $r = run_wrk(port => $port, path => '/app', conns => 16, cookies => \@ck, secs => $step);
        ($rps, $t, $n) = ($r->{rps}, $t + $step, $n + ($r->{requests} // 0));
        last if $n >= $min && $prev && abs($rps - $prev) <= 0.1 * $prev;
        $prev = $rps;
    }
    printf "  warm-up %-36s %3d s, %d requests, the last 5 s at %.0f req/s\n", $what, $t, $n, $rps;
}

sub httpd_cluster {
    my (%o) = @_;
    my $c = SC::Cluster->new(loglevel => 'error', mpm => 'event', %o);
    $c->start_all(timeout => 30);
    return $c;
}

sub httpd_mem {
    my ($c, @n) = @_;
    if ($ENV{BENCH_DEBUG}) {
        for my $n (@n) {
            printf "    %s RSS/PSS MB by pid: %s\n", $n,
                join(' ', map { sprintf '%d=%.0f/%.0f', $_, mem_of($_) } $c->pids($n));
        }
    }
    return map { mem_of($c->pids($_)) } @n;
}

# One httpd with one mod_session provider (or none), direct runs only.
sub setup_single {
    my ($name, $round) = @_;
    my ($label, %opt, $conf);
    if ($name eq 'none') {
        $label = 'httpd, no session';
        $conf = $app->('/app', "    Session Off\n");
    }
    elsif ($name eq 'cookie') {
        $label = 'mod_session_cookie';
        $opt{modules} = ['session_cookie'];
        $conf = $app->('/app', "    Session On\n    SessionCookieName session path=/\n");
    }
    else {
        pg_start();
        return print "  (no PostgreSQL: no mod_session_dbd scenario)\n" unless $PG;
        $label = 'mod_session_dbd postgresql';
        $opt{modules} = [ 'dbd', 'session_dbd' ];
        $conf = "DBDriver pgsql\nDBDParams \"host=$pg_dir port=$pg_port dbname=postgres user=postgres\"\n"
              . "DBDMin 2\nDBDKeep 4\nDBDMax 16\n$dbd_sql"
              . $app->('/app', "    Session On\n    SessionDBDCookieName session path=/\n");
    }
    push @{ $opt{modules} }, 'headers';
    my $c = httpd_cluster(members => 1, %opt,
        extra_conf => "LoadModule session_cluster_demo_module $demo\n$MPM"
                      . "LimitRequestLine 70000\n$ECHO$conf");
    my $port = $c->member('node1')->{http_port};
    my $mem = sub { httpd_mem($c, 'node1') };
    warmup($port, 1);
    my @runs = map { my $cn = $_; sub {
        measure(key => "update c$cn|$label", port => $port, conns => $cn, mem => $mem,
                plain => $name eq 'none') } } @conns;
    if ($name ne 'none') {
        for my $d (@heavy_sizes) {
            next if $name eq 'cookie' && $d > 4096;   # a 32 KB cookie: no browser sends it
            push @runs, sub {
                measure(key => "heavy @{[ $d / 1024 ]}KB c$heavy_conns|$label", port => $port,
                        conns => $heavy_conns, data => $d, mem => $mem) };
        }
    }
    $_->() for ($round % 2 ? @runs : reverse @runs);
    $c->teardown;
}

# Ours: two members and a front (SessionClusterBalancer).  $heavy: the
# session-heavy runs only (Manager maxSessionSize 65536 for 32 KB sessions,
# maxActiveSessions 1000 to keep the store small); else update, front, lag,
# failover.  $n 3: three members, the update3 rows, front3 (async only) and
# lag (to both other members); no heavy or failover runs.
sub setup_ours {
    my ($send, $heavy, $round, $n) = @_;
    $n ||= 2;
    my $label = $send == 8 ? 'ours async (8)' : 'ours sync (6)';
    my ($upd, $fr) = $n == 2 ? ('update', 'front') : ("update$n", "front$n");
    my @nodes = map { "node$_" } 1 .. $n;
    my $member_conf = "LoadModule session_cluster_demo_module $demo\n$MPM"
        . "LimitRequestLine 70000\n$ECHO"
        . $app->('/app', "    Session On\n    SessionCluster On\n")
        . $app->('/plain', "    Session Off\n");
    my $c = httpd_cluster(
        members => $n, front => { name => 'front' }, modules => ['headers'],
        cluster => sub {
            SC::Cluster::static_block($_[0], $_[1], channelSendOptions => $send,
                $heavy ? (manager => { maxSessionSize => 65536, maxActiveSessions => 1000 }) : ());
        },
        extra_conf => $member_conf,
        member_opts => { front => { extra_conf => sub {
            SC::Cluster::front_conf($_[0], $_[1])
            . "ProxyPass /plain balancer://members/plain\n$MPM"
            . "LimitRequestLine 70000\n$FRONT_ECHO" } } });
    $c->wait_for(sub {
        my (undef, undef, $b) = $c->get('node1', '/cluster-manager?auto');
        # (the other members and the front)
        $b =~ /^EngineState: ready$/m && $b =~ /^MembersAlive: (\d+)$/m && $1 >= $n;
    }, timeout => 15) or die "ours: node1 does not see the other members and the front\n";
    my @p = map { $c->member($_)->{http_port} } @nodes;
    my ($p1, $p2, $pf) = ($p[0], $p[1], $c->member('front')->{http_port});
    my $mem = sub { httpd_mem($c, @nodes) };
    my $stale = sub { stale_count([ map { my $p = $_; sub { our_version($p, $_[0]) } } @p ], @_) };
    my $payload = sub { my (undef, undef, $b) = http_get($p1, '/cluster-manager?auto');
                        $b =~ /^SessionsBytesInUse: (\d+)$/m ? $1 : undef };
    warmup($p1, 1);
    my @runs;
    if ($heavy) {
        for my $d (@heavy_sizes) {
            push @runs, sub { measure(key => "heavy @{[ $d / 1024 ]}KB c$heavy_conns|$label",
                                      port => $p1, conns => $heavy_conns, data => $d, mem => $mem) };
        }
    }
    else {
        # (with 3 members: through the front async only)
        my $front = $n == 2 || $send == 8;
        warmup($pf, 1) if $front;
        for my $cn (@conns) {
            push @runs, sub { measure(key => "$upd c$cn|$label", port => $p1, conns => $cn,
                                      mem => $mem, payload => $payload, stale => $stale) };
            push @runs, sub { measure(key => "$fr c$cn|$label", port => $pf, conns => $cn,
                                      make_on => \@p, mem => $mem,
                                      $n > 2 ? (stale => $stale) : ()) }
                if $front;
            push @runs, sub { measure(key => "$fr c$cn|no session, our front", port => $pf,
                                      make_on => \@p,
                                      path => '/plain', conns => $cn, plain => 1, mem => $mem) }
                if $front && $send == 8;
        }
    }
    $_->() for ($round % 2 ? @runs : reverse @runs);
    return $c->teardown if $heavy;

    # replication lag: a session of node1's, written there, read on node2
    # (and node3: until both have it) (the other members are asked for the
    # session's version on their status pages: a request with the cookie
    # there would re-bind the session)
    my ($ck) = make_sessions($p1, 1);
    my $sid = sid_of($ck);
    my $ver = our_version($p1, $sid) // 0;
    my ($l50, $l99) = lag_samples(
        sub { my ($st) = http_get($p1, '/app?auto', $ck); $st == 200 ? ++$ver : undef },
        sub { lowest(map { our_version($_, $sid) } @p[1 .. $#p]) });
    for my $cn (@conns) {
        @{ $res{"$upd c$cn|$label"}[-1] }{qw(lag50 lag99)} = ($l50, $l99);
    }
    printf "  %-44s lag p50 %.3f ms  p99 %.3f ms\n", "$label $n members", $l50 // -1, $l99 // -1;
    if ($n > 2) {
        drop_sockets();
        return $c->teardown;
    }

    # failover: node1 killed (-9) a third into a run through the front
    measure(key => "failover c$heavy_conns|$label", port => $pf, conns => $heavy_conns,
            make_on => [ $p1, $p2 ],
            mem => sub { (mem_of($c->pids('node2')), undef, undef) },
            kill_at => $secs / 3, kill => sub { $c->kill9('node1') });
    drop_sockets();
    $c->teardown;
}

# Tomcat: nodes A and B (C, ...; seed 002's block, one multicast group, each
# node its own HTTP and receiver ports), and a front: an httpd with stock
# mod_proxy_balancer (no SessionClusterBalancer: Tomcat has no such tie-in).
sub tomcat_nodes {
    my ($n, $send, %mgr) = @_;
    my $mcast = free_udp_port();
    my @t = map { tomcat_node(name => "node$_", send => $send, mcast_port => $mcast,
                              manager => { %mgr }) } ('A' .. 'Z')[0 .. $n - 1];
    return @t;
}
sub tomcat_pair { return tomcat_nodes(2, @_) }

# Starts the nodes one after the other, each once the one before answers and
# sees the others (nodes started at once each ask the other for the state and
# one waits the full stateTransferTimeout), then waits until every node sees
# every other.
sub tomcat_start_all {
    my @t = @_;
    for my $i (0 .. $#t) {
        tomcat_start($t[$i]);
        tomcat_wait($t[$i], $i, 120);
    }
    tomcat_wait($_, $#t, 30) for @t;
}

sub tomcat_front {
    my @t = @_;
    return httpd_cluster(
        members => ['tfront'], modules => [ qw(proxy proxy_http proxy_balancer slotmem_shm lbmethod_byrequests headers) ],
        extra_conf => sub {
            SC::Cluster::front_conf($_[0], $_[1], members => [], balancer => 'tomcat',
                session_cluster_balancer => 0,
                extra_members => [ map { "http://127.0.0.1:$_->{http_port} route=$_->{route}" } @t ])
            . "$MPM" . "LimitRequestLine 70000\n$FRONT_ECHO" });
}

# $n 3: three nodes, the update3 rows, front3 (async only) and lag (to both
# other nodes); no heavy or failover runs.
sub setup_tomcat {
    my ($send, $round, $n) = @_;
    $n ||= 2;
    my $label = $send == 8 ? 'Tomcat async (8)' : 'Tomcat sync (6)';
    my ($upd, $fr) = $n == 2 ? ('update', 'front') : ("update$n", "front$n");
    my $front = $n == 2 || $send == 8;
    my @t = tomcat_nodes($n, $send);
    my ($A, $B) = @t;
    my @tp = map { $_->{http_port} } @t;
    # A first, then B, ...: nodes starting at once each wait for the other's state (60 s)
    tomcat_start_all(@t);
    my $f = $front ? tomcat_front(@t) : undef;
    my $pf = $f && $f->member('tfront')->{http_port};
    my $mem = sub { map { mem_of($_->{pid}) } @t };
    my $stale = sub { stale_count([ map { my $p = $_; sub { tomcat_attr($p, $_[0], 'counter') } } @tp ], @_) };
    # the JIT: load before anything is measured
    # (every node when there are front runs: some of their sessions live on
    # node B, C)
    warmup_jvm('node ' . substr($_->{name}, 4), $_->{http_port}, 100_000, $warm_jvm)
        for $front ? @t : ($A);
    warmup_jvm('through the front', $pf, 30_000, $warm_jvm / 2) if $front;
    my @runs;
    for my $cn (@conns) {
        push @runs, sub { measure(key => "$upd c$cn|$label", port => $A->{http_port}, conns => $cn,
                                  mem => $mem, stale => $stale) };
        push @runs, sub { measure(key => "$fr c$cn|$label", port => $pf, conns => $cn, mem => $mem,
                                  make_on => \@tp, $n > 2 ? (stale => $stale) : ()) }
            if $front;
    }
    if ($n == 2) {
        for my $d (@heavy_sizes) {
            push @runs, sub { measure(key => "heavy @{[ $d / 1024 ]}KB c$heavy_conns|$label",
                                      port => $A->{http_port}, conns => $heavy_conns, data => $d,
                                      mem => $mem) };
        }
    }
    $_->() for ($round % 2 ? @runs : reverse @runs);

    # replication lag: written on A, read on B (and C: until both have it)
    # from its DeltaManager (JMX, without the session cookie:
    # JvmRouteBinderValve would re-bind it)
    my ($ck) = make_sessions($A->{http_port}, 1);
    (my $id = $ck) =~ s/^[^=]*=//;
    my ($l50, $l99) = lag_samples(
        sub { my (undef, undef, $b) = http_get($A->{http_port}, '/app?auto', $ck);
              $b =~ /^Counter: (\d+)/m ? $1 : undef },
        sub { lowest(map { my (undef, undef, $b) = http_get($_, "/stats?id=$id&key=counter");
                           $b =~ /^Value: (\d+)/m ? $1 : undef } @tp[1 .. $#tp]) });
    for my $cn (@conns) {
        @{ $res{"$upd c$cn|$label"}[-1] }{qw(lag50 lag99)} = ($l50, $l99);
    }
    printf "  %-44s lag p50 %.3f ms  p99 %.3f ms\n", "$label $n nodes", $l50 // -1, $l99 // -1;
    if ($n > 2) {
        drop_sockets();
        $f->teardown if $f;
        tomcat_stop($_) for @t;
        return;
    }

    measure(key => "failover c$heavy_conns|$label", port => $pf, conns => $heavy_conns,
            make_on => [ $A->{http_port}, $B->{http_port} ],
            mem => sub { (mem_of($B->{pid}), undef, undef) },
            kill_at => $secs / 3, kill => sub { tomcat_kill9($A) });
    drop_sockets();
    $f->teardown;
    tomcat_stop($_) for ($A, $B);
}

# ---- state transfer ----
# N sessions of about 1 KB on one member: wrk without cookies (every request
# makes a session), each thread stopping after its share; topped up if short.
sub fill {
    my ($port, $count, $have) = @_;
    my $v = 'x' x 1000;
    my $lua = "$tmp/fill-$$.lua";
    my $t0 = time;
    while (($have->() // 0) < $count && time - $t0 < 300) {
        my $left = $count - ($have->() // 0);
        my $per = int(($left + 1) / 2) || 1;
        spew($lua, "local per = $per\nlocal done = 0\n"
                   . "request = function() return wrk.format('GET', '/app?set=data&value=$v') end\n"
                   . "response = function() done = done + 1; if done >= per then wrk.thread:stop() end end\n");
        # (wrk's main thread sleeps the whole -d even when its threads have
        # stopped: it is stopped here once the sessions are there, or once
        # their number stays put)
        my $pid = fork // die "fork: $!\n";
        if (!$pid) {
            open STDIN, '<', '/dev/null';
            open STDOUT, '>', '/dev/null';
            open STDERR, '>&', \*STDOUT;
            { exec 'wrk', '-t2', '-c16', '-d300s', '-s', $lua, "http://127.0.0.1:$port/" }
            POSIX::_exit(127);
        }
        my ($last, $since, $gone) = (-1, time, 0);
        while (!($gone = waitpid($pid, WNOHANG))) {
            sleep 0.25;
            my $h = $have->() // 0;
            ($last, $since) = ($h, time) if $h != $last;
            last if $h >= $count || time - $since > 3;
        }
        if (!$gone) {
            kill 'TERM', $pid;
            waitpid($pid, 0);
        }
    }
    return $have->();
}

sub transfer_ours {
    my ($count) = @_;
    my $cap = $count + 5000;
    my $c = SC::Cluster->new(
        members => 2, loglevel => 'warn',
        cluster => sub {
            SC::Cluster::static_block($_[0], $_[1], channelSendOptions => 8,
                manager => { maxActiveSessions => $cap, maxSessionSize => 2048,
                             stateTransferTimeout => 120 });
        },
        extra_conf => "LoadModule session_cluster_demo_module $demo\n$MPM"
                      . $app->('/app', "    Session On\n    SessionCluster On\n"));
    my $page = sub {
        my ($n, $key) = @_;
        my (undef, undef, $b) = $c->get($n, '/cluster-manager?auto');
        return $b =~ /^\Q$key\E: (\S+)$/m ? $1 : undef;
    };
    $c->start('node1', timeout => 30);
    $c->wait_for(sub { ($page->('node1', 'EngineState') // '') eq 'ready' }, timeout => 15);
    my (undef, $empty) = mem_of($c->pids('node1'));
    my $have = fill($c->member('node1')->{http_port}, $count,
                    sub { $page->('node1', 'SessionsActive') });
    my $t0 = time;
    $c->start('node2', timeout => 150);
    $c->wait_for(sub { ($page->('node2', 'EngineState') // '') eq 'ready' }, timeout => 150);
    my %r = (wall => (time - $t0) * 1000, sessions => $have,
             ms => $page->('node2', 'LastTransferMs'),
             received => $page->('node2', 'LastTransferSessions'),
             payload => $page->('node1', 'SessionsBytesInUse'), pss_empty => $empty);
    @r{qw(rss1 pss1)} = mem_of($c->pids('node2'));
    @r{qw(rss2 pss2)} = mem_of($c->pids('node1'));
    $c->teardown;
    record("transfer $count|ours", \%r);
    printf "  %-44s %s of %s sessions in %s ms (member 2 up and ready after %.0f ms)\n",
        "transfer $count|ours", $r{received} // '?', $have // '?', $r{ms} // '?', $r{wall};
}

# $blocks: DeltaManager sendAllSessions="false" in blocks of 1000 without a
# pause between them (sendAllSessionsWaitTime 0), as ours sends; else the
# default: one message with every session.
sub transfer_tomcat {
    my ($count, $blocks) = @_;
    my $key = "transfer $count|Tomcat" . ($blocks ? ', blocks of 1000' : '');
    my ($A, $B) = tomcat_pair(8, stateTransferTimeout => 120,
        $blocks ? (sendAllSessions => 'false', sendAllSessionsSize => 1000,
                   sendAllSessionsWaitTime => 0) : ());
    tomcat_start($A);
    tomcat_wait($A, 0, 120);
    my (undef, $empty) = mem_of($A->{pid});
    my $have = fill($A->{http_port}, $count, sub { tomcat_stat($A, 'ActiveSessions') });
    my $off = -s $B->{log} // 0;
    my $t0 = time;
    tomcat_start($B);
    tomcat_wait($B, 1, 200);
    # payload: the 1,000-byte attribute of every session (Java keeps such a
    # string in 1 byte per character) and its name; ids and timestamps aside
    my %r = (wall => (time - $t0) * 1000, sessions => $have,
             received => tomcat_stat($B, 'ActiveSessions'),
             payload => ($have // 0) * 1004, pss_empty => $empty);
    my $log = substr(slurp($B->{log}), $off);
    # DeltaManager's own measure: from sending GET_ALL_SESSIONS to the end of
    # the transfer (polled every 100 ms)
    ($r{ms}) = $log =~ /session state sent at \[[^\]]*\] received in \[([\d,.]+)\] ms/;
    $r{ms} =~ s/[,.]//g if defined $r{ms};
    warn "Tomcat: no \"received in\" line in $B->{log}:\n" . log_tail($B->{log}, 20)
        unless defined $r{ms};
    @r{qw(rss1 pss1)} = mem_of($B->{pid});
    @r{qw(rss2 pss2)} = mem_of($A->{pid});
    tomcat_stop($_) for ($B, $A);
    record($key, \%r);
    printf "  %-44s %s of %s sessions in %s ms (node B up after %.0f ms, with the JVM start)\n",
        $key, $r{received} // '?', $have // '?', $r{ms} // '?', $r{wall};
}

# ---- the run ----
setup_rows();
my @setups = (
    [ 'none',             sub { setup_single('none', $_[0]) } ],
    [ 'cookie',           sub { setup_single('cookie', $_[0]) } ],
    [ 'dbd',              sub { setup_single('dbd', $_[0]) } ],
    [ 'ours-async',       sub { setup_ours(8, 0, $_[0]) } ],
    [ 'ours-sync',        sub { setup_ours(6, 0, $_[0]) } ],
    [ 'ours-async-heavy', sub { setup_ours(8, 1, $_[0]) } ],
    [ 'ours-sync-heavy',  sub { setup_ours(6, 1, $_[0]) } ],
    ($tomcat_why ? () : (
    [ 'tomcat-async',     sub { setup_tomcat(8, $_[0]) } ],
    [ 'tomcat-sync',      sub { setup_tomcat(6, $_[0]) } ])),
    [ 'ours3-async',      sub { setup_ours(8, 0, $_[0], 3) } ],
    [ 'ours3-sync',       sub { setup_ours(6, 0, $_[0], 3) } ],
    ($tomcat_why ? () : (
    [ 'tomcat3-async',    sub { setup_tomcat(8, $_[0], 3) } ],
    [ 'tomcat3-sync',     sub { setup_tomcat(6, $_[0], 3) } ])),
);
@setups = grep { $_->[0] =~ /$only/ } @setups if defined $only;
my $t_start = time;
for my $round (1 .. $repeats) {
    for my $s ($round % 2 ? @setups : reverse @setups) {
        printf "round %d/%d: %s (%.0f s so far)\n", $round, $repeats, $s->[0], time - $t_start;
        eval { $s->[1]->($round); 1 } or do {
            print "  FAILED: $@";
            for my $t (@TOMCATS) { tomcat_stop($t, 5) }
            drop_sockets();
        };
    }
}
if (@tcounts && (!defined $only || 'transfer' =~ /$only/)) {
    for my $round (1 .. ($ENV{TRANSFER_REPEATS} || $repeats)) {
        my @t = map { my $n = $_; ([ "ours, $n" => sub { transfer_ours($n) } ],
                                   $tomcat_why ? () : ([ "Tomcat, $n" => sub { transfer_tomcat($n, 0) } ],
                                                       [ "Tomcat in blocks, $n" => sub { transfer_tomcat($n, 1) } ])) }
                @tcounts;
        for my $s ($round % 2 ? @t : reverse @t) {
            printf "round %d/%d: state transfer, %s (%.0f s so far)\n", $round,
                $ENV{TRANSFER_REPEATS} || $repeats, $s->[0],
                time - $t_start;
            eval { $s->[1]->(); 1 } or do {
                print "  FAILED: $@";
                for my $t (@TOMCATS) { tomcat_stop($t, 5) }
            };
        }
    }
}
pg_stop();

# ---- the table ----
sub med { my @v = sort { $a <=> $b } grep { defined } @_; @v ? $v[int(@v / 2)] : undef }
sub mm { my @v = sort { $a <=> $b } grep { defined } @_; @v ? ($v[0], $v[-1]) : () }
sub complete { my $x = shift; ($x->{received} // 0) >= 0.99 * ($x->{sessions} || 1) }
my %m;    # medians per row
for my $k (@rows) {
    my $r = $res{$k} or next;
    my %x;
    for my $f (qw(rps p50 p99 lag50 lag99 rss1 rss2 rss3 pss1 pss2 pss3 errors lost gone backwards stall
                  failed socket_errors reused requests ms wall received sessions payload pss_empty)) {
        $x{$f} = med(map { $_->{$f} } @$r);
    }
    # stale: the worst round
    my ($worst) = sort { $b->{stale} <=> $a->{stale} } grep { defined $_->{stale} } @$r;
    @x{qw(stale stale_of)} = @$worst{qw(stale stale_of)} if $worst;
    my $main = $k =~ /^transfer/ ? 'ms' : 'rps';
    @x{qw(min max)} = mm(map { $_->{$main} } @$r);
    $x{n} = @$r;
    $m{$k} = \%x;
}
# vs best alternative: req/s over the best alternative's req/s in the same
# group; for transfer, time over the alternative's time (lower is better)
for my $k (@rows) {
    next unless $m{$k};
    my $g = $meta{$k}{group};
    my @alt = grep { $meta{$_}{group} eq $g && $meta{$_}{kind} eq 'alt' && $m{$_} } @rows;
    next if $g =~ /^failover/;
    if ($g =~ /^transfer/) {
        # (a transfer that did not deliver every session is no one's best)
        my ($best) = sort { $a <=> $b } grep { defined && $_ > 0 }
                     map { $m{$_}{ms} } grep { complete($m{$_}) } @alt;
        $m{$k}{vs} = sprintf('%.2fx', $m{$k}{ms} / $best)
            if $best && defined $m{$k}{ms} && complete($m{$k});
    }
    else {
        my ($best) = sort { $b <=> $a } grep { $_ > 0 } map { $m{$_}{rps} } @alt;
        $m{$k}{vs} = sprintf('%.2fx', $m{$k}{rps} / $best) if $best;
    }
}
# vs none: req/s over the same page's without session (the row's base: httpd
# direct, or the no-session page through the same front with as many members)
for my $k (@rows) {
    my $b = $meta{$k}{base};
    next unless $m{$k} && $b && $m{$b} && $m{$b}{rps};
    $m{$k}{vs_none} = sprintf('%.2fx', $m{$k}{rps} / $m{$b}{rps});
}

my $fmt = "%-34s %7s %13s %8s %8s %8s %8s %11s %11s %7s %7s %6s %4s %8s\n";
my $out = '';
$out .= sprintf $fmt, 'scenario', 'req/s', '(spread)', 'p50 ms', 'p99 ms', 'lag p50', 'lag p99',
    'RSS m1/m2/3', 'PSS m1/m2/3', 'vs best', 'vs none', 'errors', 'lost', 'stale 1s';
my $f2 = sub { defined $_[0] ? sprintf('%.3f', $_[0]) : '-' };
my $mb = sub { defined $_[0] ? sprintf('%.0f', $_[0]) : '-' };
my $lastg = '';
for my $k (@rows) {
    my ($g, $label) = split /\|/, $k, 2;
    my $x = $m{$k};
    if ($g ne $lastg) {
        my $title = $g =~ /^update c(\d+)/ ? "per-request session update, direct to one member, $1 connections"
                  : $g =~ /^update3 c(\d+)/ ? "the same, direct to one member of three, $1 connections"
                  : $g =~ /^front c(\d+)/ ? "the same through the front balancer, $1 connections"
                  : $g =~ /^front3 c(\d+)/ ? "the same through the front balancer, three members, $1 connections"
                  : $g =~ /^heavy (\S+) c(\d+)/ ? "session-heavy: one more attribute of $1, $2 connections"
                  : $g =~ /^failover c(\d+)/ ? "failover: kill -9 of member 1 under load through the front, $1 connections"
                  : $g =~ /^transfer (\d+)/ ? "state transfer of $1 sessions of 1 KB to a joining member"
                  : $g;
        $out .= "-- $title\n";
        if ($g =~ /^failover/) {
            $out .= sprintf "%-34s %7s %13s %8s %8s %8s %8s %9s %9s %12s\n", '', 'req/s', '(spread)',
                'p50 ms', 'p99 ms', 'failed', 'stall ms', 'RSS m2', 'PSS m2', 'lost/gone/of';
        }
        elsif ($g =~ /^transfer/) {
            $out .= sprintf "%-34s %7s %13s %8s %8s %9s %9s %7s\n", '', 'ms', '(spread)', 'received',
                'ready ms', 'RSS new/old', 'PSS new/old', 'vs best';
        }
        $lastg = $g;
    }
    if (!$x) {
        $out .= sprintf "%-34s %7s\n", "  $label", 'not run';
        next;
    }
    if ($g =~ /^failover/) {
        $out .= sprintf "%-34s %7.0f %13s %8.3f %8.3f %8.0f %8.0f %9s %9s %12s\n", "  $label", $x->{rps},
            sprintf('%.0f-%.0f', $x->{min}, $x->{max}), $x->{p50} // 0, $x->{p99} // 0,
            $x->{errors} // 0, $x->{stall} // 0, $mb->($x->{rss1}), $mb->($x->{pss1}),
            sprintf('%d/%d/%d', $x->{lost} // 0, $x->{gone} // 0, $x->{sessions} // 0);
    }
    elsif ($g =~ /^transfer/) {
        $out .= sprintf "%-34s %7s %13s %8s %8.0f %9s %9s %7s\n", "  $label",
            ($x->{ms} // '-') . (complete($x) ? '' : '!'),
            defined $x->{min} ? "$x->{min}-$x->{max}" : '-', $x->{received} // '-', $x->{wall} // 0,
            $mb->($x->{rss1}) . '/' . $mb->($x->{rss2}), $mb->($x->{pss1}) . '/' . $mb->($x->{pss2}),
            $x->{vs} // '-';
    }
    else {
        $out .= sprintf $fmt, "  $label", sprintf('%.0f', $x->{rps}),
            sprintf('%.0f-%.0f', $x->{min}, $x->{max}), $f2->($x->{p50}), $f2->($x->{p99}),
            $f2->($x->{lag50}), $f2->($x->{lag99}),
            join('/', map { $mb->($_) } grep { defined } @$x{qw(rss1 rss2 rss3)}),
            join('/', map { $mb->($_) } grep { defined } @$x{qw(pss1 pss2 pss3)}),
            $x->{vs} // '-', $x->{vs_none} // '-', sprintf('%d', $x->{errors} // 0), sprintf('%d', $x->{lost} // 0),
            defined $x->{stale} ? "$x->{stale}/$x->{stale_of}" : '-';
    }
}
my $note = sprintf "\n%d round(s), %s s per measured run, scenarios in alternating order; "
    . "medians, spread = lowest-highest.  wrk -t2 on the same machine, one session per "
    . "connection plus one per wrk thread, one request per session at a time, each sending "
    . "the cookie its session's last answer set.  vs best: req/s over the best alternative's "
    . "(mod_session_cookie, mod_session_dbd, Tomcat) in the same section; transfer: time over "
    . "Tomcat's (lower is better).  vs none: req/s over the same page's without session (httpd "
    . "direct; through a front, the no-session page behind the same front).  update3, front3: "
    . "3 members (the front runs async only).  lag: a write on member 1 until member 2 (and "
    . "3) shows it, 200 samples, each at least one poll over HTTP.  RSS / PSS MB: sums over "
    . "each member's "
    . "processes (httpd: parent, children, engine; Tomcat: the JVM), after the run; RSS "
    . "counts shared pages once per process, PSS shares them out.  errors: answers other "
    . "than 200 plus socket errors.  lost: sessions whose counter did not go up on an answer "
    . "(an update the client had seen was lost); gone: those that came back as a new session. "
    . " stall: the longest wait of any session between two successful answers.  transfer ms: "
    . "the joining member's own measure from asking for the state to having it (ours "
    . "LastTransferMs; Tomcat DeltaManager's \"received in\", polled every 100 ms); ready "
    . "ms: from starting the joining member until it answers (Tomcat: JVM start included); "
    . "!: the member did not receive every session (received < sessions).  "
    . "Written: bench/compare.csv, bench/compare.png\n", $repeats, $secs;
print "\n$out$note";

# ---- memory and the issue's targets, from this run's medians ----
my $c1 = $conns[0];
my $rps = sub { my $x = $m{ $_[0] }; $x && $x->{rps} ? $x->{rps} : undef };
my $MB = 1024 * 1024;
my $tg = '';
my $target = sub {
    my ($what, $value, $ok) = @_;
    $tg .= sprintf "  %-66s %-22s %s\n", $what, $value // 'not run',
        !defined $value || (defined $ok && $ok eq 'info') ? '' : $ok ? 'met' : 'MISSED';
};
my $ratio = sub {
    my ($what, $a, $b, $min) = @_;
    my ($x, $y) = ($rps->($a), $rps->($b));
    $target->($what, $x && $y ? sprintf('%.2fx (%.0f / %.0f)', $x / $y, $x, $y) : undef,
              $x && $y && $x / $y >= $min);
};
for my $cn (@conns) {
    $tg .= "-- $cn connections\n";
    $ratio->("direct, ours async >= 1.2x Tomcat async", "update c$cn|ours async (8)",
             "update c$cn|Tomcat async (8)", 1.2);
    $ratio->("direct, ours async >= 0.9x mod_session_cookie", "update c$cn|ours async (8)",
             "update c$cn|mod_session_cookie", 0.9);
    $ratio->("direct, ours sync >= 1.5x Tomcat sync", "update c$cn|ours sync (6)",
             "update c$cn|Tomcat sync (6)", 1.5);
    $ratio->("front, ours async >= 1.0x Tomcat async", "front c$cn|ours async (8)",
             "front c$cn|Tomcat async (8)", 1.0);
    $ratio->("front, ours async >= 0.9x the no-session page", "front c$cn|ours async (8)",
             "front c$cn|no session, our front", 0.9);
    $ratio->("direct, ours async >= 4x mod_session_dbd postgresql", "update c$cn|ours async (8)",
             "update c$cn|mod_session_dbd postgresql", 4);
}
$tg .= "-- replication, state transfer, failover\n";
for my $mode ([ 'async (8)', 1 ], [ 'sync (6)', 2 ]) {
    my $x = $m{"update c$c1|ours $mode->[0]"};
    $target->("lag p99 ours $mode->[0] < $mode->[1] ms",
              $x && defined $x->{lag99} ? sprintf('%.3f ms', $x->{lag99}) : undef,
              $x && defined $x->{lag99} && $x->{lag99} < $mode->[1]);
}
for my $n (@tcounts) {
    my $o = $m{"transfer $n|ours"};
    # Tomcat's best variant that delivered every session
    my ($t) = sort { $a->{ms} <=> $b->{ms} }
              grep { $_ && defined $_->{ms} && complete($_) }
              map { $m{"transfer $n|$_"} } ('Tomcat', 'Tomcat, blocks of 1000');
    $target->("transfer of $n sessions >= 2x faster than Tomcat's best complete",
              $o && $t && $o->{ms} ? sprintf('%.1fx (%d / %d ms)', $t->{ms} / $o->{ms}, $o->{ms}, $t->{ms})
                                   : undef,
              $o && $t && $o->{ms} && complete($o) && $t->{ms} / $o->{ms} >= 2);
}
for my $cn (@conns) {
    for my $who ('ours async (8)', 'ours sync (6)', 'Tomcat async (8)', 'Tomcat sync (6)') {
        my $x = $m{"update c$cn|$who"};
        my $ours = $who =~ /ours async/;
        $target->(($ours ? '' : '(for comparison) ') . "$who, c$cn: stale 1 s after the last write"
                  . ($ours ? ' = 0' : ''),
                  $x && defined $x->{stale} ? "$x->{stale} of $x->{stale_of} (worst round)" : undef,
                  !$ours ? 'info' : $x && defined $x->{stale} && $x->{stale} == 0);
    }
}
{
    my $x = $m{"failover c$c1|ours sync (6)"};
    $target->("kill -9, ours sync: 0 sessions lost",
              $x ? sprintf('%d of %d lost', $x->{lost} // 0, $x->{sessions} // 0) : undef,
              $x && !(($x->{lost} // 0) + 0));
}
# memory: PSS - the same server without sessions <= 1.3 x payload + 20 MB
$tg .= "-- memory per member: PSS over the same server without sessions <= 1.3 x payload + 20 MB\n";
my $base = $m{"update c$c1|httpd, no session"};
for my $who ('ours async (8)', 'ours sync (6)') {
    my $x = $m{"update c$c1|$who"};
    next unless $x && $base;
    my $pl = $x->{payload} // 0;
    my $worst = (sort { $b <=> $a } grep { defined } $x->{pss1}, $x->{pss2})[0];
    my $over = $worst - $base->{pss1};
    $target->(sprintf("update c%d, %s: larger member's PSS %.0f MB, no-session httpd %.0f MB",
                      $c1, $who, $worst, $base->{pss1}),
              sprintf('%+.0f MB for %.2f MB', $over, $pl / $MB), $over <= 1.3 * $pl / $MB + 20);
}
for my $n (@tcounts) {
    for my $who ('ours', 'Tomcat', 'Tomcat, blocks of 1000') {
        my $x = $m{"transfer $n|$who"};
        next unless $x && defined $x->{pss_empty} && $x->{payload};
        my $pl = $x->{payload} / $MB;
        for my $side ([ 'joining', $x->{pss1} ], [ 'sending', $x->{pss2} ]) {
            next unless defined $side->[1];
            my $over = $side->[1] - $x->{pss_empty};
            $target->(sprintf('transfer %d, %s, %s member: PSS %.0f MB, empty %.0f MB', $n, $who,
                              $side->[0], $side->[1], $x->{pss_empty}),
                      sprintf('%+.0f MB for %.0f MB', $over, $pl),
                      $over <= 1.3 * $pl + 20 && complete($x));
        }
    }
}
$tg = "Targets of issue 8 (this run's medians)\n$tg"
    . "\nPayload: ours, SessionsBytesInUse of the member the sessions were made on; Tomcat, 1,004 bytes "
    . "per session (the attribute the bench sets).  The member without sessions: the same "
    . "httpd setup with Session Off (update rows), the member before it was filled (transfer "
    . "rows, a JVM just started for Tomcat).\n";
print "\n$tg";
spew("$bench/compare-targets.txt", $tg);

# ---- CSV ----
open my $csv, '>', "$bench/compare.csv" or die "compare.csv: $!\n";
my @cols = qw(rps min max p50 p99 lag50 lag99 rss1 rss2 pss1 pss2 vs errors lost gone stall ms
              wall received sessions n stale stale_of payload pss_empty vs_none rss3 pss3);
print $csv join(',', 'workload', 'scenario', qw(req_per_s min max p50_ms p99_ms lag_p50_ms
    lag_p99_ms rss1_mb rss2_mb pss1_mb pss2_mb vs_best errors sessions_lost sessions_gone stall_ms
    transfer_ms ready_ms received sessions rounds stale_1s stale_of payload_bytes
    pss_empty_mb vs_none rss3_mb pss3_mb)), "\n";
for my $k (@rows) {
    my ($g, $label) = split /\|/, $k, 2;
    my $x = $m{$k} or next;
    my @v = map { my $v = $x->{$_}; !defined $v ? '' : $v =~ /^-?\d+\.\d+$/ ? sprintf('%.3f', $v) : $v } @cols;
    $v[0] = '' if $g =~ /^transfer/;      # (rps is not a transfer figure)
    print $csv join(',', $g, "\"$label\"", @v), "\n";
}
close $csv;

# ---- PNG (gnuplot) ----
my $gp = SC::Cluster::which('gnuplot');
if (!$gp) {
    print "no gnuplot: no bench/compare.png (apt-get install gnuplot-nox)\n";
    exit 0;
}
my $data = '';
my $short = sub { my $l = shift; $l =~ s/ \(\d\)//; $l =~ s/mod_session_dbd postgresql/dbd (pg)/;
                  $l =~ s/mod_session_cookie/cookie/; $l =~ s/httpd, no session/no session/;
                  $l =~ s/no session, our front/no session/; $l };
# panel 1: req/s of the update and front sections, one bar per connection count
my @p1;
my %sec_pre = (update => '', update3 => '3m: ', front => 'front: ', front3 => 'front 3m: ');
for my $sec ('update', 'update3', 'front', 'front3') {
    my %seen;
    for my $k (grep { /^$sec c/ } @rows) {
        my ($g, $label) = split /\|/, $k, 2;
        next if $seen{$label}++;
        push @p1, [ $sec_pre{$sec} . $short->($label),
                    map { $m{"$sec c$_|$label"} ? sprintf('%.0f', $m{"$sec c$_|$label"}{rps}) : 0 } @conns ];
    }
}
$data .= "\$upd << EOD\n" . join('', map { "\"$_->[0]\" " . join(' ', @$_[1 .. $#$_]) . "\n" } @p1) . "EOD\n";
my %heavy_labels;
my @p2;
for my $k (grep { /^heavy/ } @rows) {
    my ($g, $label) = split /\|/, $k, 2;
    next if $heavy_labels{$label}++;
    push @p2, [ $short->($label), map { my $kk = "heavy @{[ $_ / 1024 ]}KB c$heavy_conns|$label";
                                        $m{$kk} ? sprintf('%.0f', $m{$kk}{rps}) : 0 } @heavy_sizes ];
}
$data .= "\$heavy << EOD\n" . join('', map { "\"$_->[0]\" " . join(' ', @$_[1 .. $#$_]) . "\n" } @p2) . "EOD\n";
my @p3;
# (a transfer that did not deliver every session has no bar)
for my $sys ('ours', 'Tomcat', 'Tomcat, blocks of 1000') {
    push @p3, [ $sys, map { my $x = $m{"transfer $_|$sys"};
                            $x && defined $x->{ms} ? (complete($x) ? $x->{ms} : '?') : 0 } @tcounts ];
}
$data .= "\$xfer << EOD\n" . join('', map { "\"$_->[0]\" " . join(' ', @$_[1 .. $#$_]) . "\n" } @p3) . "EOD\n";
my @p4;
for my $k (grep { /^failover/ } @rows) {
    my ($g, $label) = split /\|/, $k, 2;
    my $x = $m{$k} || {};
    push @p4, [ $label, sprintf('%.0f', $x->{stall} // 0), $x->{errors} // 0, $x->{lost} // 0 ];
}
$data .= "\$fail << EOD\n" . join('', map { "\"$_->[0]\" " . join(' ', @$_[1 .. $#$_]) . "\n" } @p4) . "EOD\n";
my $title = sprintf 'bench/compare.pl: %d round(s) of %s s, medians (%d cores, shared machine)',
    $repeats, $secs, scalar(() = slurp('/proc/cpuinfo') =~ /^processor/mg);
# a panel: its title, its data block (rows), its plot clause; a panel
# without data says "not run"
my $panel = sub {
    my ($name, $rows, $title, $plot, $pre, $post) = @_;
    return "set title '$title'\nunset xtics\nset label 1 'not run' at graph 0.5,0.5 center\n"
         . "plot [0:1][0:1] NaN notitle\nunset label 1\nset xtics rotate by -35 left\n"
        unless grep { grep { $_ } @$_[1 .. $#$_] } @$rows;
    return ($pre // '') . "set title '$title'\nplot $plot\n" . ($post // '');
};
my $script = "set terminal pngcairo size 1400,1000 font 'DejaVu Sans,9'\n"
    . "set output '$bench/compare.png'\n$data"
    . "set multiplot layout 2,2 title '$title'\n"
    . "set style data histograms\nset style histogram clustered gap 1\n"
    . "set style fill solid 0.8 border -1\nset grid ytics\nset key top right\n"
    . "set xtics rotate by -35 left\nset yrange [0:*]\nset datafile missing '?'\n"
    . $panel->('upd', \@p1, 'session read + counter update: req/s (higher is better)',
               join(', ', map { my $i = $_ + 2; "\$upd using $i:xtic(1) title '$conns[$_] connections'" } 0 .. $#conns))
    . $panel->('heavy', \@p2, "session-heavy, $heavy_conns connections: req/s",
               join(', ', map { my $i = $_ + 2; "\$heavy using $i:xtic(1) title '" . ($heavy_sizes[$_] / 1024) . " KB attribute'" } 0 .. $#heavy_sizes))
    . $panel->('xfer', \@p3, 'state transfer to a joining member: ms (lower is better, log scale; no bar: not every session arrived)',
               join(', ', map { my $i = $_ + 2; "\$xfer using $i:xtic(1) title '$tcounts[$_] sessions'" } 0 .. $#tcounts),
               "set logscale y\nset yrange [1:*]\n", "unset logscale y\nset yrange [0:*]\n")
    . $panel->('fail', \@p4, 'failover, kill -9 of a member under load (lower is better)',
               "\$fail using 2:xtic(1) title 'longest stall (ms)', '' using 3 axes x1y2 title 'requests failed', "
               . "'' using 4 axes x1y2 title 'sessions lost'",
               "set y2tics\nset ytics nomirror\nset ylabel 'stall ms'\n"
               . "set y2label 'requests failed, sessions lost'\nset y2range [0:*]\n")
    . "unset multiplot\n";
spew("$tmp/compare.gp", $script);
unlink "$bench/compare.png";
system($gp, "$tmp/compare.gp") == 0 or print "gnuplot failed: no bench/compare.png\n";
print "wrote bench/compare.csv and bench/compare.png\n" if -f "$bench/compare.png";
