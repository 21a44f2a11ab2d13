#!perl
# A logout is not undone by a request in flight (issue 14, item 4).  Two
# static members (node1, node2), synchronous replication (channelSendOptions
# 6: a change is applied on the other member before its request returns),
# mod_cgi and one Perl CGI script (s.cgi) under /s with SessionEnv and
# SessionHeader: mod_session loads the session in its fixups, before the
# script runs.  The script, for a POST, first leaves a mark file (it has
# started: the session was loaded), then reads its body, then answers
# `X-Replace-Session: user=alice&count=N` (a change of the session it
# loaded).  The test sends that POST's body in two halves and, between them,
# logs the session out (`X-Replace-Session: user=&count=` empties it: the
# cluster removes it):
#   case 1: the logout on the same member (node1);
#   case 2: the logout on the other member (node2), while node1 runs the POST.
# After the slow POST ends, for each case:
#   - its answer is the script's page (200), with no Set-Cookie giving the
#     client the old id back (a removal of the cookie is fine);
#   - node1 logged SC1383 (the change dropped) for that id;
#   - neither member holds the id (status page ?session=ID), also after a
#     later change that replicated from node1 to node2 (the anchor for the
#     negative check: the old code's re-created session made node2 fetch it);
#   - a request with the old cookie on either member gets a new session (a
#     new id in Set-Cookie, and the script saw an empty session).
# Nothing is timed: each step waits for its event (generous limits).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";
use SC::Test qw(need check within ready_and_alive);
$SC::Test::WITHIN_INTERVAL = 0.05;

use Test::More;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time sleep);
use File::Path qw(make_path);
use SC::Cluster;

$SIG{ALRM} = sub { die "logout_in_flight.t: time limit (90 s) reached\n" };
alarm 90;

my $LIB = $ENV{SC_LIBEXECDIR} || '/usr/lib/apache2/modules';
need(-f "$LIB/mod_cgi.so", "mod_cgi in $LIB (Debian's apache2 ships it)");
my $PERL = -x '/usr/bin/perl' ? '/usr/bin/perl' : $^X;
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];

my $CGI = <<"EOS";
#!$PERL
use strict;
my %q;
for (split /&/, defined \$ENV{QUERY_STRING} ? \$ENV{QUERY_STRING} : '') {
    my (\$k, \$v) = split /=/, \$_, 2;
    \$q{\$k} = defined \$v ? \$v : '';
}
if ((\$ENV{REQUEST_METHOD} || '') eq 'POST') {
    # started: mod_session loaded the session in its fixups, before us
    if (defined \$q{mark} && \$q{mark} =~ /^\\w+\$/) {
        open my \$m, '>', "\$ENV{DOCUMENT_ROOT}/marks/\$q{mark}";
        close \$m;
    }
    my \$want = \$ENV{CONTENT_LENGTH} || 0;
    my \$body = '';
    while (length \$body < \$want) {
        my \$n = read STDIN, \$body, \$want - length \$body, length \$body;
        last unless \$n;
    }
}
print "Content-Type: text/plain\\n";
if (defined \$q{count}) { print "X-Replace-Session: user=alice&count=\$q{count}\\n" }
elsif (defined \$q{logout}) { print "X-Replace-Session: user=&count=\\n" }
print "\\n";
print "Page: s.cgi\\n";
print "HTTP_SESSION: ", (defined \$ENV{HTTP_SESSION} ? "[\$ENV{HTTP_SESSION}]" : '(unset)'), "\\n";
EOS

my $SESS = "  Session On\n  SessionCluster On\n  SessionEnv On\n  SessionHeader X-Replace-Session\n";
my $EXTRA = sub {
    my ($m) = @_;
    return qq{<Directory "$m->{htdocs}">\n  Options +ExecCGI\n  <Files "s.cgi">\n    SetHandler cgi-script\n  </Files>\n</Directory>\n}
         . "<Location /s>\n$SESS</Location>\n";
};

my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    modules    => [ 'cgi' ],
    extra_conf => $EXTRA,
    cluster    => sub { SC::Cluster::static_block($_[0], $_[1], channelSendOptions => 6,
                                                  valves => $KEEP_ROUTES) },
);
my ($A, $B) = qw(node1 node2);

for my $n ($A, $B) {
    my $root = $c->member($n)->{htdocs};
    make_path("$root/s", "$root/marks");
    chmod 0755, "$root/s";
    chmod 0777, "$root/marks";      # the script runs as the server's user
    open my $fh, '>', "$root/s/s.cgi" or die "$root/s/s.cgi: $!";
    print $fh $CGI;
    close $fh or die "$root/s/s.cgi: $!";
    chmod 0755, "$root/s/s.cgi";
}

# GET /s/s.cgi?$query on $n with the session cookie $id
sub cgi {
    my ($n, $query, $id) = @_;
    my %h;
    $h{Cookie} = "JSESSIONID=$id" if defined $id;
    my ($s, $h, $b) = $c->get($n, "/s/s.cgi?$query", headers => \%h, timeout => 10);
    my %r = (status => $s, headers => $h, body => $b // '', url => "$n /s/s.cgi?$query");
    ($r{session}) = ($b // '') =~ /^HTTP_SESSION: \[(.*)\]$/m;
    $r{set_cookie} = $h->{'set-cookie'};
    ($r{cookie}) = ($h->{'set-cookie'} // '') =~ /JSESSIONID=([^;,\s]*)/;
    return \%r;
}

sub show {
    my ($r) = @_;
    my $h = $r->{headers} || {};
    return "$r->{url}: status $r->{status}\n"
         . join('', map { "  $_: $h->{$_}\n" } sort keys %$h) . "  body:\n$r->{body}";
}

# 'yes' / 'no': does member $n hold session $id (?session=ID); '' when the
# page does not answer
sub held {
    my ($n, $id) = @_;
    my ($st, undef, $b) = $c->get($n, "/cluster-manager?session=$id");
    return '' unless ($st // 0) == 200 && ($b // '') =~ /^SessionHeld: (yes|no)$/m;
    return $1;
}

# Starts a POST of /s/s.cgi?count=$count&mark=$mark on $n with cookie $id:
# headers and the first half of the body; returns the socket.
sub slow_post_start {
    my ($n, $id, $count, $mark) = @_;
    my $m = $c->member($n);
    my $s = IO::Socket::INET->new(PeerAddr => $m->{addr}, PeerPort => $m->{http_port},
                                  Proto => 'tcp', Timeout => 10)
        or die "connect $n: $!";
    $s->autoflush(1);
    print $s "POST /s/s.cgi?count=$count&mark=$mark HTTP/1.0\r\nHost: localhost\r\n"
           . "Cookie: JSESSIONID=$id\r\nContent-Type: application/octet-stream\r\n"
           . "Content-Length: 10\r\nConnection: close\r\n\r\n12345";
    return $s;
}

# Sends the rest of the body; returns the parsed answer.
sub slow_post_finish {
    my ($s, $label) = @_;
    print $s "67890";
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $deadline = time + 20;
    while (time < $deadline) {
        next unless $sel->can_read(1);
        my $n = sysread($s, $buf, 65536, length $buf);
        last if !$n;
    }
    close $s;
    my ($st, $h, $b) = SC::Cluster::_parse_response($buf);
    my %r = (status => $st, headers => $h, body => $b // '', url => "$label (slow POST)");
    $r{set_cookie} = $h->{'set-cookie'};
    return \%r;
}

$c->start_all;
{
    my $took = within(30, sub { ready_and_alive($c, $A, $B) });
    check(defined $took, $c, 'both members ready and seeing each other')
        or BAIL_OUT('the cluster did not form');
}

my $anchor_n = 0;
sub run_case {
    my ($label, $logout_on) = @_;
    my $r = cgi($A, 'count=1');
    my $id = $r->{cookie};
    check($r->{status} == 200 && defined $id && $id =~ /^[0-9A-F]{32}\.$A$/i, $c,
          "$label: a session made on node1", show($r)) or return;
    check((held($B, $id) eq 'yes'), $c, "$label: node2 holds it (synchronous replication)");

    my $mark = "m" . int(rand 1e9);
    my $markfile = $c->member($A)->{htdocs} . "/marks/$mark";
    my $s = slow_post_start($A, $id, 7, $mark);
    my $started = within(30, sub { -e $markfile });
    check(defined $started, $c, "$label: the slow POST on node1 runs (its script started: "
          . "the session was loaded)") or return;

    my $lo = cgi($logout_on, 'logout=1', $id);
    check($lo->{status} == 200, $c, "$label: logout on $logout_on answers 200", show($lo));
    my $gone = within(20, sub { held($A, $id) eq 'no' && held($B, $id) eq 'no' });
    check(defined $gone, $c, "$label: after the logout neither member holds $id",
          "node1: " . held($A, $id) . ", node2: " . held($B, $id));

    my $p = slow_post_finish($s, "$label $A");
    check(($p->{status} // 0) == 200 && $p->{body} =~ /^Page: s\.cgi$/m, $c,
          "$label: the slow POST ends with its page (200)", show($p));
    my $sc = $p->{set_cookie} // '';
    ok($sc !~ /JSESSIONID=\Q$id\E/, "$label: ... and no Set-Cookie gives the client $id back")
        or diag(show($p));
    my $logged = within(20, sub { $c->error_log($A) =~ /SC1383: .*session \Q$id\E was removed/ });
    check(defined $logged, $c, "$label: node1 logged SC1383 (the change dropped) for $id");

    # the anchor: a later change made on node1 that reached node2
    $anchor_n++;
    my $an = cgi($A, "count=$anchor_n");
    my $aid = $an->{cookie};
    check(defined $aid && held($B, $aid) eq 'yes', $c,
          "$label: a later session made on node1 is held by node2", show($an));
    is(held($A, $id), 'no', "$label: node1 does not hold $id after the slow POST");
    is(held($B, $id), 'no', "$label: node2 does not hold $id after the slow POST");

    for my $n ($A, $B) {
        my $o = cgi($n, 'count=50', $id);
        check($o->{status} == 200 && defined $o->{cookie} && $o->{cookie} ne $id
              && defined $o->{session} && $o->{session} eq '', $c,
              "$label: a request with the old cookie on $n gets a new session "
              . "(new id, empty session seen)", show($o));
    }
    is(held($A, $id), 'no', "$label: $id still dead on node1 after requests with its cookie");
    is(held($B, $id), 'no', "$label: $id still dead on node2 after requests with its cookie");
}

run_case('case 1 (logout on the same member)', $A);
run_case('case 2 (logout on the other member)', $B);

done_testing;
