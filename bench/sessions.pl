#!/usr/bin/env perl
# The session benchmark: the same demo page (a counter in the session, updated
# on every request) under the same wrk load, with every session provider httpd
# offers and with mod_session_cluster, measured in one run:
#
#   no session | mod_session_cookie | mod_session_dbd on SQLite | mod_session_dbd on
#   PostgreSQL (started here) | cluster, 1 member | cluster, 3 members async |
#   cluster, 3 members sync | the session server (msm's <Manager>, no <Cluster>):
#   sticky on memcached (backups synchronous and asynchronous) and on Redis,
#   non-sticky on Redis with 2 members (memcached and redis-server started here)
#
# plus the replication lag (a write on member 1, seen on member 2) for the
# cluster scenarios.  Scenarios alternate over REPEATS rounds; the table shows
# medians and the spread.
#
#   perl bench/sessions.pl [SECONDS] [REPEATS] [CONNECTIONS]   (defaults 5 2 16)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use SC::Cluster;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

$SIG{PIPE} = "IGNORE";
my $secs = shift // 5;
my $repeats = shift // 2;
my $conns = shift // 16;
my $threads = $conns < 2 ? 1 : 2;   # wrk -t
my $repo = "$FindBin::Bin/..";
my $demo = $ENV{SC_DEMO_SO} || "$repo/demo/.libs/mod_session_cluster_demo.so";
die "build first (make)\n" unless -f $demo;
-x '/usr/bin/wrk' or die "wrk is missing: apt-get install wrk\n";

my $tmp = tempdir('sc-bench-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $tmp;
my $app = sub { my ($extra) = @_; "<Location /app>\n$extra    SetHandler session-cluster-demo\n</Location>\n" };

# ---- PostgreSQL, our own instance ----
my ($pg_dir, $pg_port, $pg_bin);
($pg_bin) = glob('/usr/lib/postgresql/*/bin');
if ($pg_bin && -x "$pg_bin/initdb") {
    $pg_dir = "$tmp/pg";
    mkdir $pg_dir;
    system('chown', 'postgres:postgres', $pg_dir) if $> == 0;
    $pg_port = SC::Cluster::free_port();
    my @as = $> == 0 ? ('runuser', '-u', 'postgres', '--') : ();
    system(@as, "$pg_bin/initdb", '-D', "$pg_dir/data", '-A', 'trust', '-U', 'postgres')
        == 0 or die "initdb failed\n";
    system(@as, "$pg_bin/pg_ctl", '-D', "$pg_dir/data", '-l', "$pg_dir/log", '-w', '-o',
           "-p $pg_port -k $pg_dir -c listen_addresses='' -c fsync=off", 'start')
        == 0 or die "postgres did not start\n";
    system('psql', '-q', '-h', $pg_dir, '-p', $pg_port, '-U', 'postgres', '-c',
           'create table session (key varchar(256) primary key, value text, expiry bigint)');
}
END {
    if ($pg_dir && -d "$pg_dir/data") {
        my @as = $> == 0 ? ('runuser', '-u', 'postgres', '--') : ();
        system(@as, "$pg_bin/pg_ctl", '-D', "$pg_dir/data", '-m', 'fast', 'stop');
    }
}

# ---- SQLite ----
my $sqlite = "$tmp/sessions.db";
system('sqlite3', $sqlite,
       'create table session (key varchar(256) primary key, value text, expiry bigint);') == 0
    or warn "sqlite3 failed: no SQLite scenario\n";
system('chown', 'nobody:nogroup', $sqlite, $tmp) if $> == 0;

my $dbd_queries = <<'Q';
    SessionDBDCookieName session path=/
Q
my $dbd_sql = <<'Q';
DBDPrepareSQL "select value from session where key = %s and (expiry = 0 or expiry > %lld)" selectsession
DBDPrepareSQL "delete from session where key = %s" deletesession
DBDPrepareSQL "insert into session (value, expiry, key) values (%s, %lld, %s)" insertsession
DBDPrepareSQL "update session set value = %s, expiry = %lld, key = %s where key = %s" updatesession
Q
# ---- memcached and Redis, our own instances (the session server) ----
my (%kv_pid, %kv_port);
sub kv_start {
    my ($name, @cmd) = @_;
    my $port = SC::Cluster::free_port();
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        exec map { $_ eq 'PORT' ? $port : $_ } @cmd;
        exit 127;
    }
    for (1 .. 50) {
        last if IO::Socket::INET->new("127.0.0.1:$port");
        sleep 0.1;
    }
    ($kv_pid{$name}, $kv_port{$name}) = ($pid, $port);
}
kv_start('memcached', '/usr/bin/memcached', '-l', '127.0.0.1', '-p', 'PORT', '-U', '0',
         '-m', '256', '-u', 'nobody') if -x '/usr/bin/memcached';
kv_start('redis', '/usr/bin/redis-server', '--bind', '127.0.0.1', '--port', 'PORT',
         '--save', '', '--appendonly', 'no', '--dir', $tmp) if -x '/usr/bin/redis-server';
END {
    local $?;
    for (values %kv_pid) { kill 'KILL', $_; waitpid $_, 0 }
}
my $msm = sub {
    my ($nodes, $attrs) = @_;
    return qq{<Manager className="de.javakaffee.web.msm.MemcachedBackupSessionManager"}
         . qq{ memcachedNodes="$nodes" sessionBackupTimeout="1000" operationTimeout="1000"}
         . " $attrs/>\n";
};
my $msm_app = $app->("    Session On\n    SessionCluster On\n");

my @scenarios = (
    [ 'no session', 1, {}, $app->("    Session Off\n") ],
    [ 'mod_session_cookie', 1, { modules => ['session_cookie'] },
      $app->("    Session On\n    SessionCookieName session path=/\n") ],
    (-f $sqlite ? [ 'mod_session_dbd sqlite', 1,
      { modules => [ 'dbd', 'session_dbd' ] },
      "DBDriver sqlite3\nDBDParams \"$sqlite\"\nDBDMin 1\nDBDKeep 2\nDBDMax 4\n$dbd_sql"
      . $app->("    Session On\n$dbd_queries") ] : ()),
    ($pg_dir ? [ 'mod_session_dbd postgresql', 1,
      { modules => [ 'dbd', 'session_dbd' ] },
      "DBDriver pgsql\nDBDParams \"host=$pg_dir port=$pg_port dbname=postgres user=postgres\"\n"
      . "DBDMin 2\nDBDKeep 4\nDBDMax 16\n$dbd_sql" . $app->("    Session On\n$dbd_queries") ] : ()),
    [ 'cluster 1 member', 1, {}, $app->("    Session On\n    SessionCluster On\n") ],
    [ 'cluster 3 members async', 3, { send => 8 }, $app->("    Session On\n    SessionCluster On\n") ],
    [ 'cluster 3 members sync', 3, { send => 6 }, $app->("    Session On\n    SessionCluster On\n") ],
    ($kv_port{memcached} ? (
      [ 'msm sticky memcached sync', 1,
        { alone => 1, cluster => $msm->("m1:127.0.0.1:$kv_port{memcached}", 'sticky="true"') },
        $msm_app ],
      [ 'msm sticky memcached async', 1,
        { alone => 1, cluster => $msm->("m1:127.0.0.1:$kv_port{memcached}",
                                        'sticky="true" sessionBackupAsync="true"') },
        $msm_app ]) : ()),
    ($kv_port{redis} ? (
      [ 'msm sticky redis sync', 1,
        { alone => 1, cluster => $msm->("redis://127.0.0.1:$kv_port{redis}", 'sticky="true"') },
        $msm_app ],
      [ 'msm non-sticky redis, 2 members', 2,
        { alone => 1, cluster => $msm->("redis://127.0.0.1:$kv_port{redis}",
                                        'sticky="false" lockingMode="none"') },
        $msm_app ]) : ()),
);

sub http_get {
    my ($sock, $path, $cookie) = @_;
    print $sock "GET $path HTTP/1.1\r\nHost: x\r\n" . ($cookie ? "Cookie: $cookie\r\n" : '') . "\r\n";
    my ($head, $len) = ('', 0);
    while (my $l = <$sock>) {
        $head .= $l;
        last if $l eq "\r\n";
    }
    ($len) = $head =~ /Content-Length: (\d+)/i;
    my $body = '';
    if ($head =~ /Transfer-Encoding: chunked/i) {
        while (defined(my $sz = <$sock>)) {
            $sz = hex $sz;
            if (!$sz) { <$sock>; last }
            my $chunk = '';
            read($sock, $chunk, $sz);
            $body .= $chunk;
            <$sock>;
        }
    }
    else {
        read($sock, $body, $len // 0);
    }
    return ($head, $body);
}

sub run_scenario {
    my ($s) = @_;
    my ($name, $members, $o, $conf) = @$s;
    my $c = SC::Cluster->new(
        members => $members, loglevel => 'error', mpm => 'event',
        modules => $o->{modules} || [],
        cluster => $o->{cluster} // sub { SC::Cluster::static_block($_[0], $_[1],
                                                   channelSendOptions => $o->{send} // 8) },
        extra_conf => "LoadModule session_cluster_demo_module $demo\n"
                      # (ThreadLimit: SC::Cluster sets 16, which capped
                      # ThreadsPerChild to 16; the event MPM then closed kept
                      # connections as too busy, and wrk lost the requests it
                      # had just sent on them)
                      . "ThreadLimit 25\nThreadsPerChild 25\nMaxRequestWorkers 100\n"
                      . "ServerLimit 4\n$conf");
    $c->start_all;
    $c->wait_for(sub {
        my (undef, undef, $b) = $c->get('node1', '/cluster-manager?auto');
        # (alone: members that know nothing of each other, msm's <Manager>)
        $b =~ /^EngineState: ready$/m && $b =~ /^MembersAlive: (\d+)$/m
            && ($o->{alone} || $1 == $members - 1);
    }, timeout => 15);
    my $port = $c->member('node1')->{http_port};
    # The client behaves like browsers: each session sends the cookie that
    # the last answer for it set.  mod_session_dbd gives a session a new key
    # (and cookie) on every change, and mod_session_cookie carries the session
    # in the cookie itself: a client that kept the first cookie would send
    # keys that no longer exist (mod_session_dbd then starts a new session on
    # every request, and apr_dbd_pgsql sleeps 100 ms on each empty result).
    # One session per connection, plus one spare per wrk thread, each tagged
    # with an attribute (bench=N) that the demo page echoes, so that the wrk
    # script knows which session an answer is for.  A wrk thread hands its
    # idle sessions to its requests in turn, one request per session at a
    # time; when the load stops, the spare makes sure that some session is
    # idle, with the cookie its last answer set (the others may have a
    # request in flight that changed their key): that one is read back.
    my @cookies;
    for my $i (1 .. $conns + $threads) {
        my $sock = IO::Socket::INET->new("127.0.0.1:$port") or die;
        my ($h) = http_get($sock, "/app?set=bench&value=$i");
        my ($ck) = $h =~ /Set-Cookie: ([^;\r\n]+)/i;
        push @cookies, $ck // '';
    }
    my $lua = "$tmp/wrk.lua";
    open my $fh, '>', $lua or die;
    print $fh "local nthreads = $threads\nlocal all = {"
        . join(',', map { "\"$_\"" } @cookies) . "}\n" . <<'L';
local threads = {}
function setup(thread)            -- main state, once per thread, before its init
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
cookie, seen, out, mine, queue, head, tail, reused, n = {}, {}, {}, {}, {}, 1, 0, 0, 0
local function note_idle()        -- the session that is idle the longest
  local i = queue[head]
  if i then idle_cookie, idle_seen = cookie[i], seen[i] else idle_cookie = nil end
end
local function push(i) tail = tail + 1; queue[tail] = i; note_idle() end
function init(args)
  for i = 1, #all do
    if (i - 1) % nthreads == tid then
      cookie[i], seen[i] = all[i], 0
      table.insert(mine, i)
      push(i)
    end
  end
end
request = function()
  local i
  n = n + 1
  if head <= tail then
    i = queue[head]
    queue[head] = nil
    head = head + 1
    note_idle()
  else                  -- no idle session: answers were lost (the server closed
    reused = reused + 1 -- the connection first); take the one out the longest
    for _, j in ipairs(mine) do
      if out[j] and (i == nil or out[j] < out[i]) then i = j end
    end
    i = i or mine[1]
  end
  local c = cookie[i]
  if c == "" then push(i) else out[i] = n end   -- "": Session Off, nothing to track
  return wrk.format("GET", "/app?auto", c ~= "" and { ["Cookie"] = c } or {})
end
response = function(status, headers, body)
  local i = tonumber(string.match(body, "Attribute: bench=(%d+)"))
  if not i or not cookie[i] then return end
  for k, v in pairs(headers) do
    if string.lower(k) == "set-cookie" then
      local c = string.match(v, "^%s*([^;]+)")
      if c then cookie[i] = c end
    end
  end
  seen[i] = tonumber(string.match(body, "Counter: (%d+)")) or seen[i]
  if out[i] then out[i] = nil; push(i) end      -- (else a late answer, see above)
end
function done(summary, latency, requests)
  local r = 0
  for _, t in ipairs(threads) do
    r = r + (t:get("reused") or 0)
    local c = t:get("idle_cookie")
    if c and c ~= "" then io.write("IDLE " .. t:get("idle_seen") .. " " .. c .. "\n") end
  end
  io.write("REUSED " .. r .. "\n")
end
L
    close $fh;
    my $log = $c->member('node1')->{error_log};
    my $log_off = -s $log // 0;
    my $out = `wrk -t$threads -c$conns -d${secs}s --latency -s $lua http://127.0.0.1:$port/ 2>&1`;
    my ($rps) = $out =~ /Requests\/sec:\s+([\d.]+)/;
    my ($p50, $p99) = map {
        my ($v, $u) = $out =~ /^\s+$_%\s+([\d.]+)(us|ms|s)\s*$/m;
        defined $v ? $v * ($u eq 'us' ? 0.001 : $u eq 's' ? 1000 : 1) : undef
    } (50, 99);
    # what the error_log got during the load (a provider that failed to save)
    my ($not_saved, $locked) = (0, 0);
    if (open my $lf, '<', $log) {
        seek $lf, $log_off, 0;
        while (<$lf>) {
            $not_saved++ if /session not saved/;
            $locked++ if /database is locked/;
        }
    }
    # an idle session: the counter its last answer showed, and its cookie
    my ($seen, $idle) = $out =~ /^IDLE (\d+) (.+)$/m;
    $cookies[0] = $idle if defined $idle;
    my ($reqs) = $out =~ /(\d+) requests in/;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
    my ($reused) = $out =~ /^REUSED (\d+)$/m;
    my %r = (rps => $rps // 0, p50 => $p50 // 0, p99 => $p99 // 0, errors => $non2xx // 0,
             requests => $reqs // 0, not_saved => $not_saved, locked => $locked,
             reused => $reused // 0);
    # the session really held the counter: read back what its last answer
    # showed (less if the store lost updates, 0 if it kept nothing)
    $r{seen} = $seen if defined $seen;
    if ($cookies[0]) {
        my $sock = IO::Socket::INET->new("127.0.0.1:$port") or die;
        my (undef, $body) = http_get($sock, '/app?read', $cookies[0]);
        ($r{counter}) = $body =~ /^Counter: (\d+)/m;
    }
    # replication lag: write on node1, visible on node2 (kept connections,
    # opened again when httpd closes them: MaxKeepAliveRequests)
    if ($members > 1 && $cookies[0]) {
        my $pb = $c->member('node2')->{http_port};
        my %socks;
        my $get = sub {
            my ($p, $path) = @_;
            for (1 .. 2) {
                $socks{$p} ||= IO::Socket::INET->new("127.0.0.1:$p") or die;
                my ($h, $body) = http_get($socks{$p}, $path, $cookies[0]);
                return ($h, $body) if $h =~ /^HTTP/;
                delete $socks{$p};
            }
            return ('', '');
        };
        my $sa = $port;
        my $sb = $pb;
        my @lags;
        for (1 .. 200) {
            my (undef, $body) = $get->($sa, '/app?auto');
            my ($want) = $body =~ /^Counter: (\d+)/m;
            my $t0 = time;
            while (time - $t0 < 1) {
                my (undef, $seen) = $get->($sb, '/app?read');
                my ($got) = $seen =~ /^Counter: (\d+)/m;
                last if defined $got && defined $want && $got >= $want;
            }
            push @lags, (time - $t0) * 1000;
        }
        @lags = sort { $a <=> $b } @lags;   # (no lexical $a/$b in this scope)
        $r{lag50} = $lags[@lags / 2];
        $r{lag99} = $lags[int(@lags * 0.99)];
    }
    # resident memory of the member's processes
    my $rss = 0;
    for my $pid ($c->pids('node1')) {
        open my $st, '<', "/proc/$pid/status" or next;
        while (<$st>) { $rss += $1 if /^VmRSS:\s+(\d+)/ }
    }
    $r{rss_mb} = $rss / 1024;
    $c->stop_all;
    return \%r;
}

my %res;
for my $round (1 .. $repeats) {
    for my $s ($round % 2 ? @scenarios : reverse @scenarios) {
        push @{ $res{$s->[0]} }, run_scenario($s);
    }
}

sub med { my @v = sort { $a <=> $b } grep { defined } @_; @v ? $v[int(@v / 2)] : undef }
my $best_alt = 0;
for my $s (@scenarios) {
    next if $s->[0] =~ /^cluster|^no session|^msm/;
    my $m = med(map { $_->{rps} } @{ $res{$s->[0]} });
    $best_alt = $m if $m > $best_alt;
}
printf "%-28s %9s %15s %8s %8s %9s %9s %9s %8s %7s %13s\n", 'scenario', 'req/s', '(spread)',
    'p50 ms', 'p99 ms', 'lag p50', 'lag p99', 'RSS MB', 'vs best', 'errors', 'counter/seen';
open my $csv, '>', "$FindBin::Bin/sessions.csv";
print $csv "scenario,req_per_s,p50_ms,p99_ms,lag_p50_ms,lag_p99_ms,rss_mb,errors,"
         . "counter,counter_seen,requests,log_not_saved,log_db_locked\n";
my @notes;
for my $s (@scenarios) {
    my $r = $res{$s->[0]};
    my @rps = sort { $a <=> $b } map { $_->{rps} } @$r;
    my %m = map { my $k = $_; ($k => med(map { $_->{$k} } @$r)) }
            qw(rps p50 p99 lag50 lag99 rss_mb errors counter seen requests not_saved locked);
    printf "%-28s %9.0f %15s %8.3f %8.3f %9s %9s %9.0f %8s %7d %13s\n", $s->[0], $m{rps},
        sprintf('%.0f-%.0f', $rps[0], $rps[-1]), $m{p50}, $m{p99},
        defined $m{lag50} ? sprintf('%.3f', $m{lag50}) : '-',
        defined $m{lag99} ? sprintf('%.3f', $m{lag99}) : '-', $m{rss_mb},
        $best_alt ? sprintf('%.2fx', $m{rps} / $best_alt) : '-', $m{errors},
        defined $m{counter} || defined $m{seen}
            ? sprintf('%s/%s', $m{counter} // '-', $m{seen} // '-') : '-';
    printf $csv "%s,%.0f,%.3f,%.3f,%s,%s,%.0f,%d,%s,%s,%d,%d,%d\n", $s->[0], $m{rps}, $m{p50},
        $m{p99}, $m{lag50} // '', $m{lag99} // '', $m{rss_mb}, $m{errors}, $m{counter} // '',
        $m{seen} // '', $m{requests}, $m{not_saved}, $m{locked};
    push @notes, sprintf("%-28s error_log during the load: %d 'session not saved', %d "
                         . "'database is locked' (of %d requests)", $s->[0], $m{not_saved},
                         $m{locked}, $m{requests})
        if $s->[0] =~ /dbd/;
    my $reused = 0;
    $reused += $_->{reused} for @$r;
    push @notes, sprintf("%-28s %d time(s) no session was idle (answers lost: the server "
                         . "closed connections)", $s->[0], $reused)
        if $reused;
}
close $csv;
print "\n", map { "$_\n" } @notes if @notes;
printf "\n%d round(s) of %s s per scenario, alternating order; wrk -t%d -c%d, one session "
     . "per connection (plus one spare per wrk thread), the counter updated on every "
     . "request, each session sending the cookie its last answer set (mod_session_dbd "
     . "changes the key on every update); 'vs best' is req/s against the best non-cluster "
     . "session provider; lag: a write on member 1 seen on member 2 (200 samples, polled "
     . "over HTTP); RSS: member 1's processes; counter/seen: an idle session's counter "
     . "read back after the load / the counter its last answer showed (less: updates "
     . "lost; 0: the provider kept nothing); error_log lines: medians over the rounds.  "
     . "CSV: bench/sessions.csv\n",
     $repeats, $secs, $threads, $conns;
