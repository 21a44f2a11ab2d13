package SC::Load;

# A small HTTP load client for the cluster tests: keeps many demo-app
# sessions busy at once from one process (non-blocking sockets, one
# connection per request, HTTP/1.0), follows each session's Set-Cookie, and
# records every request: when it started, how long it took, the status, the
# id it sent, and the demo page's Route/Session/Counter lines.
#
# In a test (records come back as hashes):
#   my $recs = SC::Load::run(addr => '127.0.0.1', port => $p,
#       sessions => [ { name => 's1', id => $id }, ... ], duration => 10);
# From the command line (e.g. inside a network namespace; one TSV record per
# line on stdout, as each request ends; SC::Load::parse_tsv reads them;
# session=NAME:ID:POST for a session whose requests are POSTs):
#   perl -It/lib -MSC::Load -e 'SC::Load::main(@ARGV)' addr=10.200.7.4 \
#        port=8080 duration=10 session=s1:ID session=s2:- interval=0.2 overlap=1
#
# Options of run (and main's key=value arguments):
#   addr, port           where to send (the front)
#   path                 '/app?auto'
#   sessions             [ { name, id (undef: the first request makes one),
#                            requests (at most this many; default unlimited),
#                            method ('GET' or 'POST': a POST sends the form
#                            a=1; default GET) } ]
#                        (main: session=NAME:ID or NAME:- ; requests=N for all)
#   duration / until     no request starts after until (epoch) or now+duration
#   timeout              per request, seconds (5)
#   interval             a session's pause between two requests (0)
#   overlap              1: a session starts a request every `interval` even
#                        while earlier ones are still waiting (a probe that
#                        sees when a stuck backend is given up); 0: one at a time
#   concurrency          sessions active at once (default: all); the next one
#                        starts when one has done its `requests`
#   follow               1: use the id of a JSESSIONID Set-Cookie from then on
#   (SIGUSR1 to the client: no request starts from then on; those in flight
#   run to their end or timeout)
#   on_record            sub { my ($rec) = @_; ... } for each finished request
#
# A record: { t (start, epoch s), lat (s), name, seq (per session, from 1),
# status (0: no HTTP answer), sent (id sent, or ''), route, session, counter,
# cookie (a JSESSIONID Set-Cookie value), err, replayed (an X-Replayed
# header's value: the route of the member a front's replay left) }.

use strict;
use warnings;

use Errno qw(EINPROGRESS EAGAIN EWOULDBLOCK EINTR);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use IO::Handle;
use Socket qw(PF_INET SOCK_STREAM IPPROTO_TCP SOL_SOCKET SO_ERROR
              pack_sockaddr_in inet_aton);
use Time::HiRes qw(time sleep);

our @FIELDS = qw(t lat name seq status sent route session counter cookie err replayed);

sub run {
    my (%o) = @_;
    my $addr     = $o{addr} // '127.0.0.1';
    my $port     = $o{port} or die "SC::Load: port needed\n";
    my $path     = $o{path} // '/app?auto';
    my $timeout  = $o{timeout} // 5;
    my $interval = $o{interval} // 0;
    my $overlap  = $o{overlap} // 0;
    my $follow   = $o{follow} // 1;
    my $until    = $o{until} // (time + ($o{duration} // 10));
    local $SIG{USR1} = sub { $until = time if time < $until };
    my $sa       = pack_sockaddr_in($port, inet_aton($addr)
                                    // die "SC::Load: bad address $addr\n");
    my @sess = map { { %$_, seq => 0, done => 0, inflight => 0, next_at => 0,
                       id => $_->{id} } } @{ $o{sessions} || [] };
    die "SC::Load: no sessions\n" unless @sess;
    my $conc = $o{concurrency} || scalar @sess;
    my @records;
    my $emit = $o{on_record} || sub { push @records, $_[0] };

    my @waiting = @sess;    # not started yet
    my @active;             # started, not done
    my %req;                # fileno => request

    my $finish = sub {
        my ($q, %r) = @_;
        close $q->{sock} if $q->{sock};
        delete $req{ $q->{fd} };
        my $s = $q->{sess};
        $s->{inflight}--;
        my $rec = { t => $q->{t}, lat => time - $q->{t}, name => $s->{name}, seq => $q->{seq},
                    sent => $q->{sent} // '', status => 0, %r };
        if (defined $r{raw}) {
            parse_response($rec, delete $rec->{raw});
            $s->{id} = $rec->{cookie} if $follow && $rec->{cookie};
        }
        delete $rec->{raw};
        $s->{next_at} = time + $interval unless $overlap;
        $emit->($rec);
    };

    my $start = sub {
        my ($s) = @_;
        my $seq = ++$s->{seq};
        my $t = time;
        my $sock;
        socket($sock, PF_INET, SOCK_STREAM, IPPROTO_TCP) or die "SC::Load: socket: $!\n";
        my $fl = fcntl($sock, F_GETFL, 0);
        fcntl($sock, F_SETFL, $fl | O_NONBLOCK);
        my $q = { sock => $sock, fd => fileno($sock), sess => $s, seq => $seq, t => $t,
                  sent => $s->{id}, deadline => $t + $timeout, out => '', in => '',
                  state => 'connect' };
        my $cookie = defined $s->{id} && length $s->{id} ? "Cookie: JSESSIONID=$s->{id}\r\n" : '';
        my $post = ($s->{method} // 'GET') eq 'POST';
        $q->{out} = ($post ? 'POST' : 'GET') . " $path HTTP/1.0\r\nHost: localhost\r\n"
                  . "User-Agent: SC::Load\r\n$cookie"
                  . ($post ? "Content-Type: application/x-www-form-urlencoded\r\n"
                             . "Content-Length: 3\r\n" : '')
                  . "Connection: close\r\n\r\n" . ($post ? 'a=1' : '');
        $s->{inflight}++;
        $req{ $q->{fd} } = $q;
        if (!connect($sock, $sa) && $! != EINPROGRESS && $! != EWOULDBLOCK) {
            $finish->($q, err => "connect: $!");
            return;
        }
        $s->{next_at} = $t + $interval if $overlap;
    };

    while (1) {
        my $now = time;
        # sessions that are done
        for my $s (@active) {
            $s->{done} = 1 if !$s->{inflight}
                && (($s->{requests} && $s->{seq} >= $s->{requests}) || $now >= $until);
        }
        @active = grep { !$_->{done} } @active;
        push @active, shift @waiting while @waiting && @active < $conc && $now < $until;
        last if !@active && !%req && (!@waiting || $now >= $until);
        # start what is due
        if ($now < $until) {
            for my $s (@active) {
                next if $s->{requests} && $s->{seq} >= $s->{requests};
                next if $now < $s->{next_at};
                next if !$overlap && $s->{inflight};
                $start->($s);
            }
        }
        # timeouts
        for my $q (values %req) {
            $finish->($q, err => "timeout after ${timeout}s") if time >= $q->{deadline};
        }
        # wait for sockets (at most until the next due start or deadline)
        my ($rin, $win) = ('', '');
        for my $q (values %req) {
            if ($q->{state} eq 'read') { vec($rin, $q->{fd}, 1) = 1 }
            else { vec($win, $q->{fd}, 1) = 1 }
        }
        my $wait = 0.05;
        for my $q (values %req) {
            my $d = $q->{deadline} - time;
            $wait = $d if $d < $wait;
        }
        if (time < $until) {
            for my $s (@active) {
                next if $s->{requests} && $s->{seq} >= $s->{requests};
                next if !$overlap && $s->{inflight};
                my $d = $s->{next_at} - time;
                $wait = $d if $d < $wait;
            }
        }
        $wait = 0 if $wait < 0;
        if (!%req) { sleep $wait if $wait > 0; next }
        my ($rout, $wout) = ($rin, $win);
        my $n = select($rout, $wout, undef, $wait);
        next if $n <= 0;
        for my $q (values %req) {
            my $fd = $q->{fd};
            if ($q->{state} ne 'read' && vec($wout, $fd, 1)) {
                if ($q->{state} eq 'connect') {
                    my $e = unpack('i', getsockopt($q->{sock}, SOL_SOCKET, SO_ERROR) // pack('i', 0));
                    if ($e) { local $! = $e; $finish->($q, err => "connect: $!"); next }
                    $q->{state} = 'write';
                }
                my $w = syswrite($q->{sock}, $q->{out});
                if (!defined $w) {
                    next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                    $finish->($q, err => "write: $!");
                    next;
                }
                substr($q->{out}, 0, $w, '');
                $q->{state} = 'read' if $q->{out} eq '';
            }
            elsif ($q->{state} eq 'read' && vec($rout, $fd, 1)) {
                my $r = sysread($q->{sock}, $q->{in}, 65536, length $q->{in});
                if (!defined $r) {
                    next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                    $finish->($q, err => "read: $!", (length $q->{in} ? (raw => $q->{in}) : ()));
                    next;
                }
                $finish->($q, raw => $q->{in}) if $r == 0;
            }
        }
    }
    return \@records;
}

# Fills status, route, session, counter, cookie of $rec from a raw response.
sub parse_response {
    my ($rec, $raw) = @_;
    my ($head, $body) = split /\r?\n\r?\n/, $raw, 2;
    $body //= '';
    if (defined $head && $head =~ m{\AHTTP/\d(?:\.\d)?\s+(\d{3})}) {
        $rec->{status} = $1;
    }
    else {
        $rec->{err} = 'no HTTP status line';
        return;
    }
    for my $l (split /\r?\n/, $head) {
        $rec->{cookie} = $1 if $l =~ /^Set-Cookie:\s*JSESSIONID=([^;,\s]*)/i && length $1;
        # a front's replay, when its configuration passes it on (mod_headers:
        # Header set X-Replayed %{SESSION_CLUSTER_REPLAYED}e env=...)
        $rec->{replayed} = $1 if $l =~ /^X-Replayed:\s*(\S+)/i;
    }
    for my $l (split /\n/, $body) {
        $rec->{lc $1} = $2 if $l =~ /^(Route|Session|Counter): ?(.*?)\r?$/;
    }
}

sub to_tsv {
    my ($r) = @_;
    return join("\t", map {
        my $v = $r->{$_};
        $v = sprintf('%.6f', $v) if defined $v && ($_ eq 't' || $_ eq 'lat');
        $v = '-' unless defined $v && length $v;
        $v =~ s/[\t\n\r]/ /g;
        $v;
    } @FIELDS) . "\n";
}

sub parse_tsv {
    my ($text) = @_;
    my @recs;
    for my $l (split /\n/, $text // '') {
        next unless $l =~ /^\d+\.\d+\t/;
        my @v = split /\t/, $l, -1;
        my %r;
        @r{@FIELDS} = map { $_ eq '-' ? undef : $_ } @v;
        $r{sent} //= '';
        push @recs, \%r;
    }
    return \@recs;
}

# Command line: key=value arguments as run's options; session=NAME:ID (ID '-'
# for none) repeatable; requests=N applies to every session.  Prints TSV.
sub main {
    my (@args) = @_;
    my (%o, @sess, $requests);
    for (@args) {
        my ($k, $v) = /^(\w+)=(.*)$/s or die "SC::Load: bad argument '$_'\n";
        if ($k eq 'session') {
            my ($n, $id, $m) = $v =~ /^([^:]+):([^:]*)(?::(GET|POST))?$/
                or die "SC::Load: bad session '$v'\n";
            push @sess, { name => $n, id => ($id eq '-' || $id eq '' ? undef : $id),
                          method => $m // 'GET' };
        }
        elsif ($k eq 'requests') { $requests = $v }
        else { $o{$k} = $v }
    }
    $_->{requests} = $requests for grep { $requests } @sess;
    STDOUT->autoflush(1);
    run(%o, sessions => \@sess, on_record => sub { print STDOUT to_tsv($_[0]) });
    print STDOUT "# done\n";
    return 0;
}

1;
