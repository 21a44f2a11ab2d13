package SC::Bench;
# What the benchmarks under bench/ share: the machine's load, a member's page
# fields and PSS, a fast fill of sessions from several kept-alive clients,
# and a wrk run's figures.
use strict;
use warnings;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time);
use SC::KeepAlive;

sub loadavg {
    open my $fh, '<', '/proc/loadavg' or return '?';
    my $l = <$fh> // '?';
    chomp $l;
    return $l;
}
sub load1 { (split ' ', $_[0])[0] }

# A member's ?auto fields ({} when the page does not answer).
sub status {
    my ($c, $n) = @_;
    my ($s, undef, $b) = $c->get($n, '/cluster-manager?auto', timeout => 3);
    return {} unless $s == 200;
    my %f;
    for (split /\n/, $b) { $f{$1} //= $2 if /^(\w+): (.*)$/ }
    return \%f;
}

# The PSS of a member's processes, in bytes.
sub pss_of {
    my ($c, $n) = @_;
    my $sum = 0;
    for my $pid ($c->pids($n)) {
        open my $fh, '<', "/proc/$pid/smaps_rollup" or next;
        while (<$fh>) { $sum += $1 * 1024 if /^Pss:\s+(\d+) kB/ }
    }
    return $sum;
}

# $count new sessions of $o{size} bytes (1024) on member $n, from $o{clients}
# processes (4) with a kept connection each; every cookie goes to "$file.K".
# Returns (ids, seconds, failed requests, first failures).
sub fill {
    my ($c, $n, $count, $file, $deadline, %o) = @_;
    my $clients = $o{clients} || 4;
    my $size = $o{size} || 1024;
    my $m = $c->member($n);
    my $connect = sub {
        IO::Socket::INET->new(PeerAddr => $m->{addr}, PeerPort => $m->{http_port},
                              Proto => 'tcp', Timeout => 10);
    };
    my $t0 = time;
    my @kids;
    for my $k (0 .. $clients - 1) {
        my $mine = int($count / $clients) + ($k < $count % $clients ? 1 : 0);
        my $pid = fork // die "fork: $!\n";
        if ($pid) { push @kids, $pid; next }
        # the child: bounded by the deadline, also when an answer never comes
        $SIG{ALRM} = sub { POSIX::_exit(3) };
        alarm(int($deadline - time) + 5);
        open my $out, '>', "$file.$k" or POSIX::_exit(2);
        open my $err, '>', "$file.$k.err" or POSIX::_exit(2);
        $_->autoflush(1) for $out, $err;   # (_exit at the time limit flushes nothing)
        my $s = $connect->();
        my ($made, $failed) = (0, 0);
        # one request per session to make; a closed connection (status 0) is
        # opened again and the request sent once more
        for my $i (1 .. $mine) {
            last if time >= $deadline;
            my ($st, $h);
            for my $try (1 .. 2) {
                ($st, $h) = $s ? SC::KeepAlive::get($s, "/app?set=pad&fill=$size") : (0);
                last if $st;
                $s = $connect->();
            }
            my $id = $h ? SC::KeepAlive::cookie_of($h) : undef;
            if ($st == 200 && $id) {
                print {$out} "$id\n";
                $made++;
                next;
            }
            print {$err} "status $st"
                . ($h && $h->{'session-cluster-refused'} ? ": $h->{'session-cluster-refused'}" : '')
                . "\n" if $failed < 3;
            $failed++;
        }
        print {$err} "FAILED $failed\n";
        close $out;
        close $err;
        POSIX::_exit(0);
    }
    my (@ids, $failed, @why);
    for (@kids) {
        waitpid($_, 0);
        push @why, 'a fill client stopped at the time limit' if $? >> 8 == 3;
    }
    my $t = time - $t0;
    $failed = 0;
    for my $k (0 .. $clients - 1) {
        if (open my $fh, '<', "$file.$k") { chomp(my @l = <$fh>); push @ids, @l }
        if (open my $fh, '<', "$file.$k.err") {
            chomp(my @l = <$fh>);
            for (@l) {
                if (/^FAILED (\d+)$/) { $failed += $1 }
                else { push @why, $_ }
            }
        }
    }
    return (\@ids, $t, $failed, \@why);
}

# wrk against 127.0.0.1:$port with a Lua script; $o: threads, conns, secs.
# Returns { rps, p99 (ms), errors (non-2xx), sockerr }.
sub wrk {
    my ($port, $lua, $o, @args) = @_;
    my ($threads, $conns, $secs) = @$o{qw(threads conns secs)};
    my $out = `wrk -t$threads -c$conns -d${secs}s --timeout 10s --latency -s $lua http://127.0.0.1:$port/ -- @args 2>&1`;
    my ($rps) = $out =~ /Requests\/sec:\s+([\d.]+)/;
    my ($v, $u) = $out =~ /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m;
    my $p99 = defined $v ? $v * ($u eq 'us' ? 0.001 : $u eq 's' ? 1000 : 1) : undef;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
    my ($sockerr) = $out =~ /Socket errors: (.*)$/m;
    warn "wrk: no figures:\n$out" unless defined $rps;
    return { rps => $rps, p99 => $p99, errors => $non2xx // 0, sockerr => $sockerr };
}

# A wrk script for /app?auto with an existing session per request, picked at
# random from the cookie list in the file named by wrk's first script
# argument.
sub write_lua_existing {
    my ($path) = @_;
    open my $fh, '>', $path or die "$path: $!\n";
    print $fh <<'L';
local n = 0
function setup(thread)
  n = n + 1
  thread:set("seed", n)
end
local ids = {}
function init(args)
  for l in io.lines(args[1]) do ids[#ids + 1] = "JSESSIONID=" .. l end
  math.randomseed(os.time() * 100 + (seed or 0))
end
request = function()
  return wrk.format("GET", "/app?auto", { ["Cookie"] = ids[math.random(#ids)] })
end
L
    close $fh or die "$path: $!\n";
}

1;
