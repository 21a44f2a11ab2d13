#!perl
# A flood of new sessions cannot lock out new users or fill the log
# (issue 16).  Two static members with small stores (Manager
# maxActiveSessions 100 on node1, 60 on node2, so that node2's copies find
# its store full first; probationInactiveInterval 8 s), the demo
# application at /app (every request increments the session's counter).
#   A. 20 real users, two requests each (counter 2), then a flood on node1:
#      2,000 requests without a cookie from one client (keep-alive, as fast
#      as a Perl loop goes).  Then:
#      - every flood request was answered 200 with a session cookie: new
#        sessions keep coming while the store is full, the oldest session
#        that saw a single request giving way (SessionsEvicted on node1 and
#        on node2, whose copies follow the same rule);
#      - a user of another address (127.0.0.2) whose first request came
#        after the first 1,000 and its second after the last 1,000 keeps its
#        session (counter 2): a new session takes the place of one made by
#        the same client address first, so the flood gave up its own;
#      - a new user after the flood gets a session and keeps it (counter 1,
#        then 2 with its cookie, the same id);
#      - the 20 real users' sessions are all there, on node1 (counter 3) and
#        on node2 (the page's ?session=ID): a session that saw two requests
#        never gives way (the two new users' too);
#      - each member's error_log grew by at most 10 lines with the tags about
#        a full store (SC1276, SC1261, SC1431..SC1436) and at most 30 lines
#        in all (the old code: two lines per refused request);
#   B. the flood's sessions expire themselves: within the probation limit
#      (polled, 54 s at most) both members hold only the 22 sessions that saw
#      two requests (SessionsExpiredOnProbation counts the others), no
#      tombstone was left for them (Tombstones grows by at most 5), and the
#      22 sessions are still served (counters 4 and 3);
#   C. a store full of sessions that saw two requests (78 more real users:
#      100) and a flood of 300 requests: each is answered 507 with
#      Session-Cluster-Refused, without a session (nothing gives way: SessionsRejectedFull grows by 300, the 100
#      sessions are all still served) and node1's error_log grew by at most
#      10 lines (the refusals at a rate limit, not one line per request).
# Nothing is timed: each step waits for its event (generous limits).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(check within app show valid_sid demo_module demo_conf status_of num
                ready_and_alive log_since);

$SIG{ALRM} = sub { die "session_flood.t: time limit (240 s) reached\n" };
alarm 240;

my $DEMO_SO = demo_module();
my %CAP = (node1 => 100, node2 => 60);
my $CAP = $CAP{node1};
my $PROBATION = 8;
my $TAGS = qr/\bSC(?:1276|1261|143[1-6]):/;

my $c = SC::Cluster->new(
    members => 2,
    cluster => sub {
        my ($m, $all) = @_;
        SC::Cluster::static_block($m, $all,
            manager => { maxActiveSessions => $CAP{ $m->{name} },
                         probationInactiveInterval => $PROBATION });
    },
    extra_conf => demo_conf($DEMO_SO),
);
$c->start_all;
ok(defined within(30, sub { ready_and_alive($c, 'node1', 'node2') }),
   'node1 and node2 are ready and see each other');

# $n requests to /app?auto on member $name, over keep-alive connections
# (HTTP/1.1; a new connection when the server closes one), from the address
# $o{from} (127.0.0.1), with the cookie $o{id} (none).  Returns (answers 200,
# of those with a JSESSIONID Set-Cookie, errors, the last answer's head and
# body).
sub flood {
    my ($name, $n, %o) = @_;
    my $m = $c->member($name);
    my ($ok, $cookies, $errors, $refused) = (0, 0, 0, 0);
    my $sock;
    my $buf = '';
    my ($head, $body);
    my $cookie = defined $o{id} ? "Cookie: JSESSIONID=$o{id}\r\n" : '';
    for (1 .. $n) {
        $sock ||= IO::Socket::INET->new(PeerAddr => $m->{addr}, PeerPort => $m->{http_port},
                                        LocalAddr => $o{from} // '127.0.0.1',
                                        Proto => 'tcp', Timeout => 10);
        if (!$sock) { $errors++; next }
        $buf = '';
        print {$sock} "GET /app?auto HTTP/1.1\r\nHost: localhost\r\n$cookie\r\n";
        # the head, then Content-Length bytes (or until the server closes)
        my $closed;
        undef $head;
        while (1) {
            my $r = sysread($sock, $buf, 65536, length $buf);
            $closed = 1 unless $r;
            if (!defined $head && (my $i = index($buf, "\r\n\r\n")) >= 0) {
                $head = substr($buf, 0, $i + 4, '');
            }
            if (defined $head) {
                my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
                last if defined $len && length($buf) >= $len;
                last if $closed;
            }
            last if $closed;
        }
        if (!defined $head) { $errors++; undef $sock; next }
        my ($status) = $head =~ m{^HTTP/1\.\d (\d+)};
        if (($status // 0) == 200) {
            $ok++;
            $cookies++ if $head =~ /^Set-Cookie:\s*JSESSIONID=[0-9a-f]+\.\Q$name\E/mi;
        }
        elsif (($status // 0) == 507 && $head =~ /^Session-Cluster-Refused:.*store is full/mi) {
            $refused++;
            $cookies++ if $head =~ /^Set-Cookie:\s*JSESSIONID=/mi;
        }
        undef $sock if $closed || $head =~ /^Connection:\s*close/mi;
        $body = $buf;
    }
    return ($ok, $cookies, $errors, ($head // '') . ($body // ''), $refused);
}

# One request from another client address: its Set-Cookie id, and the
# page's Session and Counter lines.
sub from_address {
    my ($name, $from, $id) = @_;
    my (undef, undef, undef, $answer) = flood($name, 1, from => $from, id => $id);
    my %r = (answer => $answer);
    ($r{cookie}) = $answer =~ /^Set-Cookie:\s*JSESSIONID=([^;\s]+)/mi;
    ($r{session}) = $answer =~ /^Session: (.*?)\r?$/m;
    ($r{counter}) = $answer =~ /^Counter: (.*?)\r?$/m;
    return \%r;
}

# A real user: two requests, the second with the cookie of the first.
# Returns the id, or undef (with a diag) when it did not keep its session.
sub real_user {
    my ($name) = @_;
    my $r1 = app($c, $name, 'auto');
    my $id = $r1->{cookie};
    return (undef, "first request: " . show($r1)) unless valid_sid($id, $name);
    my $r2 = app($c, $name, 'auto', $id);
    return (undef, "second request: " . show($r2))
        unless ($r2->{session} // '') eq $id && ($r2->{counter} // '') eq '2';
    return ($id, undef);
}

sub held {
    my ($name, $id) = @_;
    my ($st, undef, $b) = $c->get($name, "/cluster-manager?session=$id");
    return ($st // 0) == 200 && ($b // '') =~ /^SessionHeld: yes$/m ? 1 : 0;
}

sub flood_lines {
    my ($name, $off) = @_;
    my @l = split /\n/, log_since($c, $name, $off);
    return ([ grep { /$TAGS/ } @l ], \@l);
}

sub first_of { my ($k, @l) = @_; return @l[0 .. ($#l < $k - 1 ? $#l : $k - 1)] }

# A. the flood ----------------------------------------------------------------------
my @users;
{
    my @bad;
    for (1 .. 20) {
        my ($id, $why) = real_user('node1');
        if ($id) { push @users, $id } else { push @bad, $why }
    }
    check(@users == 20, $c, '20 real users: a session each, counter 2 at their second request',
          first_of(3, @bad));
}
ok(defined within(20, sub { !grep { !held('node2', $_) } @users }),
   '... and node2 holds their 20 sessions');

my %off = map { $_ => length $c->error_log($_) } qw(node1 node2);
my $p1 = status_of($c, 'node1');
my $tombs0 = { map { $_ => num(status_of($c, $_), 'Tombstones') } qw(node1 node2) };
my $t0 = time;
# the flood, in two halves; between them a user from another address
# (127.0.0.2) makes its first request, and after them its second
my ($ok, $cookies, $errors) = flood('node1', 1000);
my $x1 = from_address('node1', '127.0.0.2');
my @second = flood('node1', 1000);
$ok += $second[0];
$cookies += $second[1];
$errors += $second[2];
note(sprintf 'the flood: 2000 requests in %.1f s: %d answered 200, %d with a cookie, %d errors',
             time - $t0, $ok, $cookies, $errors);
is($ok, 2000, 'the flood: every request answered 200');
is($cookies, 2000, '... each with a new session (the store is full: sessions on probation give way)');
check(num(status_of($c, 'node1'), 'SessionsEvicted') > 0, $c,
      'node1 counts the sessions that gave way (SessionsEvicted)');
# node2's copies: the same rule, once the engine has sent them all
ok(defined within(30, sub { num(status_of($c, 'node2'), 'SessionsEvicted') > 0
                            && num(status_of($c, 'node2'), 'SessionsActive') == $CAP{node2} }),
   "node2's copies of the flood fill its store and give way too (SessionsEvicted)");

my $x;
{
    my $x2 = valid_sid($x1->{cookie}, 'node1') ? from_address('node1', '127.0.0.2', $x1->{cookie})
                                               : {};
    $x = $x1->{cookie} if ($x2->{counter} // '') eq '2';
    check(valid_sid($x1->{cookie}, 'node1') && ($x2->{session} // '') eq $x1->{cookie}
          && ($x2->{counter} // '') eq '2', $c,
          'a user of another address who came in the middle of the flood keeps its session '
          . '(counter 2): the flood gave up its own sessions first',
          "first: $x1->{answer}", "second: " . ($x2->{answer} // '(not sent)'));
}
my $new;
{
    my ($id, $why) = real_user('node1');
    $new = $id;
    check(defined $id, $c, 'a new user after the flood gets a session and keeps it (counter 2)',
          $why);
}
{
    my @bad;
    for my $id (@users) {
        my $r = app($c, 'node1', 'auto', $id);
        push @bad, "$id: " . show($r)
            unless ($r->{session} // '') eq $id && ($r->{counter} // '') eq '3' && !$r->{cookie};
    }
    check(!@bad, $c, "the 20 real users' sessions are all still there on node1 (counter 3)",
          first_of(3, @bad));
}
{
    my @missing;
    within(20, sub { @missing = grep { !held('node2', $_) } @users, grep { defined } $new, $x;
                     !@missing });
    check(!@missing, $c, "... and on node2, with the two new users'",
          'not held on node2: ' . join(' ', first_of(5, @missing)));
}
for my $n (qw(node1 node2)) {
    my ($tagged, $all) = flood_lines($n, $off{$n});
    check(@$tagged <= 10, $c,
          "$n: the error_log grew by at most 10 lines about the full store (" . @$tagged . ')',
          first_of(5, @$tagged));
    check(@$all <= 30, $c, "$n: ... and by at most 30 lines in all (" . @$all . ')',
          first_of(5, @$all));
}

# B. the flood expires itself ----------------------------------------------------------
{
    # the 20 real users, the new user and the one of another address
    my $want = @users + grep { defined } $new, $x;
    my $took = within(3 * $PROBATION + 30, sub {
        num(status_of($c, 'node1'), 'SessionsActive') == $want
            && num(status_of($c, 'node2'), 'SessionsActive') == $want });
    check(defined $took, $c,
          "after probationInactiveInterval ($PROBATION s) both members hold only the $want "
          . 'sessions that saw two requests',
          map { "$_: SessionsActive " . num(status_of($c, $_), 'SessionsActive') } qw(node1 node2));
    for my $n (qw(node1 node2)) {
        my $p = status_of($c, $n);
        check(num($p, 'SessionsExpiredOnProbation') > 0, $c,
              "$n: SessionsExpiredOnProbation counts the flood's sessions ("
              . num($p, 'SessionsExpiredOnProbation') . ')');
        check(num($p, 'Tombstones') - $tombs0->{$n} <= 5, $c,
              "$n: they left no tombstones (Tombstones " . $tombs0->{$n} . ' -> '
              . num($p, 'Tombstones') . ')');
    }
    my @bad;
    for my $id (@users) {
        my $r = app($c, 'node1', 'auto', $id);
        push @bad, "$id: " . show($r)
            unless ($r->{session} // '') eq $id && ($r->{counter} // '') eq '4';
    }
    for my $id (grep { defined } $new, $x) {
        my $r = app($c, 'node1', 'auto', $id);
        push @bad, "new user $id: " . show($r)
            unless ($r->{session} // '') eq $id && ($r->{counter} // '') eq '3';
    }
    check(!@bad, $c, '... and those are still served (counters 4, and 3 for the new users)',
          first_of(3, @bad));
}

# C. a store full of sessions that saw two requests ---------------------------------------
{
    my @more;
    my @bad;
    my $have = num(status_of($c, 'node1'), 'SessionsActive');
    for (1 .. $CAP - $have) {
        my ($id, $why) = real_user('node1');
        if ($id) { push @more, $id } else { push @bad, $why }
    }
    check(!@bad && num(status_of($c, 'node1'), 'SessionsActive') == $CAP, $c,
          "node1's store filled with sessions that saw two requests ($CAP)", first_of(3, @bad));
    my $off = length $c->error_log('node1');
    my $rej0 = num(status_of($c, 'node1'), 'SessionsRejectedFull');
    my ($ok, $cookies, $errors, undef, $refused) = flood('node1', 300);
    is($refused, 300, 'a flood of 300 requests: each answered 507 with Session-Cluster-Refused '
       . "(the store is full; $ok answered 200, $errors failed)");
    is($cookies, 0, '... without a session (nothing gives way)');
    is(num(status_of($c, 'node1'), 'SessionsRejectedFull') - $rej0, 300,
       '... each refusal counted (SessionsRejectedFull +300)');
    my ($tagged, $all) = flood_lines('node1', $off);
    check(@$all <= 10, $c,
          'node1: the error_log grew by at most 10 lines (' . @$all . ', ' . @$tagged
          . ' about the full store)', first_of(5, @$all));
    my @gone;
    for my $id (@users, grep({ defined } $new, $x), @more) {
        my $r = app($c, 'node1', 'read', $id);
        push @gone, "$id: " . show($r) unless ($r->{session} // '') eq $id;
    }
    check(!@gone, $c, "... and all $CAP sessions are still served", first_of(3, @gone));
}

$c->stop_all;
done_testing();
