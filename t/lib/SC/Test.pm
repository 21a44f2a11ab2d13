package SC::Test;

# Helpers shared by the cluster tests under t/cluster/: reading and parsing
# the /cluster-manager?auto page, polling, checks that dump the cluster's
# state on failure, and the demo application's request helper.
#
#   use SC::Test qw(status_of member_on within check dump_cluster app valid_sid);
#
# Per-file knobs for the dump written by check() / dump_cluster():
#
#   SC::Test::dump_options(tail => 30);      # error_log lines per member (25)
#   SC::Test::dump_options(max => 6);        # dumps per test file from check() (4)
#   SC::Test::dump_options(cut => 240);      # shorten longer error_log lines
#   SC::Test::dump_options(extra => sub { my ($c, $n) = @_; ... });
#                                            # more diag() text per member
#
# within() polls every 0.02 s unless $SC::Test::WITHIN_INTERVAL says otherwise.

use strict;
use warnings;

use Exporter 'import';
use Test::More ();
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(
    worker_ok body_field
    need demo_module sess_line
    page parse_auto status_of member_on counter head_of_page
    kv_line balancer_member bm_line status_has page_action page_ping url_escape
    dump_cluster dump_options check within module_build_flags session_on
    app show valid_sid
    demo_conf encrypt_interceptor channel_add alive_on num log_since ready_and_alive
    need_netns bm_row front_extra unread_bytes
);

our %DUMP = (tail => 25, max => 4, cut => undef, extra => undef);
our $WITHIN_INTERVAL = 0.02;

# A prerequisite of a test file: build/test.sh and CI provide all of them (root
# with network namespaces, dnsmasq, the demo module, httpd's modules), so a
# missing one fails the file, naming it, rather than skip what it tests.
sub need {
    my ($ok, $what) = @_;
    return 1 if $ok;
    Test::More::plan(tests => 1);
    Test::More::ok(0, "prerequisite: $what");
    exit 1;
}

# Network namespaces (SC::Cluster's netns => 1: root), a prerequisite.
sub need_netns {
    require SC::Cluster;
    my $why = SC::Cluster->netns_unavailable;
    need(!defined $why, "network namespaces (run as root): " . ($why // ''));
}

# The demo application module (built by make beside the module).
sub demo_module {
    require SC::Cluster;
    my $so = SC::Cluster::repo_dir() . '/demo/.libs/mod_session_cluster_demo.so';
    need(-f $so, "the demo module ($so): run make");
    return $so;
}

# The session counters of a parsed ?auto page, on one line for notes.
sub sess_line {
    my ($p) = @_;
    return '(no page)' unless $p;
    return join(' ', map { "$_=" . ($p->{$_} // '?') }
                qw(EngineState MembersAlive SessionsActive SessionsCapacity SessionMaxSize
                   SessionsCreated SessionsUpdated SessionsRemoved SessionsExpired
                   SessionsRejectedFull SessionsRejectedSize ReplicatedIn ReplicatedOut
                   TransferIn TransferOut LastTransferMs LastTransferSessions AckTimeouts
                   SendFailures));
}

my $dumped = 0;    # dumps made by check() so far

# The member's ?auto page, or undef unless it answered 200.
sub page {
    my ($c, $n) = @_;
    my ($s, $h, $b) = $c->get($n, '/cluster-manager?auto', timeout => 3);
    return $s == 200 ? $b : undef;
}

# { Field => value (first occurrence),
#   members => [ { key => value, verdict => ... } ]           (Member: lines)
#   balancer_members => [ { balancer, route, url, status, member } ]
#                                                             (BalancerMember: lines)
#   unmatched_balancer_members => [ [ 'balancer://x', ROUTE ] ]
#   unmatched_members => [ ROUTE ] }
sub parse_auto {
    my ($b) = @_;
    return undef unless defined $b;
    my (%f, @members, @bm, @ubm, @um);
    for my $l (split /\n/, $b) {
        if ($l =~ /^Member: (.*)$/) {
            my $r = $1;
            my %m;
            $m{verdict} = $1 if $r =~ s/\s*verdict="(.*)"\s*$//;
            for my $kv (split ' ', $r) {
                $m{$1} = $2 if $kv =~ /^(\w+)=(.*)$/;
            }
            push @members, \%m;
        }
        elsif ($l =~ /^BalancerMember: (.*)$/) {
            push @bm, kv_line($1);
        }
        elsif ($l =~ /^UnmatchedBalancerMember: (\S+)\s+(\S+)\s*$/) {
            push @ubm, [ $1, $2 ];
        }
        elsif ($l =~ /^UnmatchedMember: (\S+)\s*$/) {
            push @um, $1;
        }
        elsif ($l =~ /^([A-Za-z][A-Za-z0-9]*): ?(.*)$/) {
            $f{$1} = $2 unless exists $f{$1};
        }
    }
    $f{members} = \@members;
    $f{balancer_members} = \@bm;
    $f{unmatched_balancer_members} = \@ubm;
    $f{unmatched_members} = \@um;
    return \%f;
}

# 'k=v k=v with spaces k="quoted"' -> { k => v, ... }: a value runs up to the
# next ' word=' (mod_proxy's status letters may be 'Drn Err').
sub kv_line {
    my ($r) = @_;
    my %h;
    while ($r =~ /\G\s*(\w+)=("[^"]*"|.*?)(?=\s+\w+=|\s*$)/gc) {
        my ($k, $v) = ($1, $2);
        $v =~ s/^"(.*)"$/$1/;
        $h{$k} = $v;
    }
    return \%h;
}

# The BalancerMember line (parsed) of a front's page for $route.
sub balancer_member {
    my ($p, $route, $balancer) = @_;
    return undef unless $p;
    my ($m) = grep { ($_->{route} // '') eq $route
                     && (!defined $balancer || ($_->{balancer} // '') eq $balancer) }
              @{ $p->{balancer_members} || [] };
    return $m;
}

# A BalancerMember line, for diag().
sub bm_line {
    my ($m) = @_;
    return '(none)' unless $m;
    return join(' ', map { "$_=" . ($m->{$_} // '?') } qw(route url status member redirect));
}

# The front's worker status letters (Ok, Err, Drn, ...) as a set: has($s, 'Err').
sub status_has {
    my ($status, $flag) = @_;
    return 0 unless defined $status;
    return scalar grep { $_ eq $flag } split /[\s,|]+/, $status;
}

# POSTs a page action (form fields) to member $n's /cluster-manager:
# ($status, $headers, $body).
sub page_action {
    my ($c, $n, %form) = @_;
    my $body = join '&', map { "$_=" . url_escape($form{$_}) } sort keys %form;
    return $c->post($n, '/cluster-manager', $body, timeout => 5);
}

# A ping through member $n's engine to $route: the page's POST
# ping=ROUTE[&size=N][&ack=0] with the nonce its ?auto shows.  Options: size,
# ack, timeout (8 s). ($status, $headers, $body), the body's lines as ?auto's.
sub page_ping {
    my ($c, $n, $route, %o) = @_;
    my $nonce = (status_of($c, $n) || {})->{Nonce} // '';
    my %form = (ping => $route, nonce => $nonce);
    $form{size} = $o{size} if defined $o{size};
    $form{ack} = $o{ack} if defined $o{ack};
    my $body = join '&', map { "$_=" . url_escape($form{$_}) } sort keys %form;
    return $c->post($n, '/cluster-manager', $body, timeout => $o{timeout} || 8);
}

sub url_escape {
    my ($v) = @_;
    $v //= '';
    $v =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
    return $v;
}

sub status_of { parse_auto(page(@_)) }

# The Member line (parsed) that member $n's page shows for $route.
sub member_on {
    my ($c, $n, $route) = @_;
    my $p = status_of($c, $n) or return undef;
    my ($m) = grep { ($_->{route} // '') eq $route } @{ $p->{members} };
    return $m;
}

sub counter {
    my ($c, $n, $k) = @_;
    my $p = status_of($c, $n) or return undef;
    return $p->{$k};
}

# The text of /balancer-manager's row for a worker URL $u on member (front)
# $n, tags stripped; undef unless the page answered 200 and has the row.
sub bm_row {
    my ($c, $n, $u) = @_;
    # (a Referer of its own: balancer-manager logs AH10187 for requests without)
    my ($s, undef, $b) = $c->get($n, '/balancer-manager', timeout => 3,
                                 headers => { Referer => 'http://localhost/balancer-manager' });
    return undef unless $s == 200;
    for my $row (split m{</tr>}i, $b) {
        next unless index($row, $u) >= 0;
        (my $t = $row) =~ s/<[^>]*>/ /g;
        $t =~ s/\s+/ /g;
        return $t;
    }
    return undef;
}

# For dump_options(extra => ...): the BalancerMember lines of front $f's page.
# Bytes received and not yet read on the TCP connections to local port
# $port (a frozen member's kernel holding a request it took).
sub unread_bytes {
    my ($port) = @_;
    my $n = 0;
    for (`ss -Htn state established '( sport = :$port )' 2>/dev/null`) {
        $n += $1 if /^\s*(\d+)\s+\d+/;
    }
    return $n;
}

sub front_extra {
    my ($f) = @_;
    return sub {
        my ($c, $n) = @_;
        return '' unless $n eq $f && $c->is_running($f);
        my $p = status_of($c, $f) or return '';
        return "--- front BalancerMember lines:\n"
             . join("\n", map { bm_line($_) } @{ $p->{balancer_members} });
    };
}

# The page up to its first '#' line.
sub head_of_page {
    my ($b) = @_;
    return '(no answer)' unless defined $b;
    my @out;
    for (split /\n/, $b) { last if /^#/; push @out, $_ }
    return join("\n", @out);
}

sub dump_options {
    my (%o) = @_;
    @DUMP{keys %o} = values %o;
    return %DUMP;
}

# diag() every member's page head (running and not frozen members only) and
# error_log tail.
sub dump_cluster {
    my ($c, $why) = @_;
    my %o = %DUMP;
    Test::More::diag("--- state after: $why");
    for my $n ($c->members) {
        Test::More::diag($c->is_running($n) && ($c->member($n)->{state} // '') ne 'sigstopped'
                         ? "--- $n ?auto:\n" . head_of_page(page($c, $n))
                         : "--- $n is not running or frozen");
        Test::More::diag($o{extra}->($c, $n)) if $o{extra};
        my $tail = $c->log_tail($n, $o{tail});
        $tail = join("\n", map { length > $o{cut} ? substr($_, 0, $o{cut}) . '...' : $_ }
                           split /\n/, $tail)
            if $o{cut};
        Test::More::diag("--- $n error_log tail:\n" . $tail);
    }
}

# ok($ok, $name); on failure diag(@diag) and dump the cluster (at most
# $DUMP{max} times per test file).
sub check {
    my ($ok, $c, $name, @diag) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    # a condition that evaluated to an empty list (a failed match, or a sub
    # returning one, as the last operand of &&) shifts the arguments: the
    # cluster object would become the condition and always pass
    if (!ref $c || (ref $ok && eval { $ok->can('members') })) {
        Test::More::ok(0, 'check(): the condition was an empty list (a failed match in list context?): '
                          . (ref $c ? $name // '' : $c // ''));
        return 0;
    }
    Test::More::ok($ok, $name) and return 1;
    Test::More::diag($_) for grep { defined } @diag;
    dump_cluster($c, $name) unless $dumped++ > $DUMP{max} - 1;
    return 0;
}

# Poll $cond until it is true (returns the seconds taken since $t0, default
# now) or $timeout seconds after $t0 have passed (returns undef).
# A worker of a balancer page (balancer_member) that takes requests: Ok and
# not in Err.
sub worker_ok {
    my ($w) = @_;
    return $w && status_has($w->{status}, 'Ok') && !status_has($w->{status}, 'Err');
}

# The value of a "Key: value" line of an answer's body (the demo page's
# Route, Counter, ...), or undef.
sub body_field {
    my ($b, $k) = @_;
    return ($b // '') =~ /^\Q$k\E: ?(.*)$/m ? $1 : undef;
}

sub within {
    my ($timeout, $cond, $t0) = @_;
    $t0 //= time;
    my $deadline = $t0 + $timeout;
    while (1) {
        return time - $t0 if $cond->();
        return undef if time >= $deadline;
        sleep $WITHIN_INTERVAL;
    }
}

# One request to the demo application (/app?$query) on member $n:
#   app($c, $n, $query [, $id] [, id => $id, cookie => $header, path => $p, timeout => $s])
# Returns { status, body, headers, path, attrs => {...}, route, session,
# counter, created, invalidated, cookie (Set-Cookie JSESSIONID), sid, error }.
sub app {
    my ($c, $n, $query, @rest) = @_;
    my $id = @rest % 2 ? shift @rest : undef;
    my %o = @rest;
    $id = $o{id} if exists $o{id};
    my %h;
    $h{Cookie} = "JSESSIONID=$id" if defined $id;
    $h{Cookie} = $o{cookie} if defined $o{cookie};
    my $path = '/app' . ($o{path} // '') . "?$query";
    my ($s, $h, $b) = $c->get($n, $path, headers => \%h, timeout => $o{timeout} || 5);
    my %r = (status => $s, body => $b // '', attrs => {}, headers => $h, path => $path);
    for (split /\n/, $b // '') {
        if (/^Attribute: ([^=]*)=(.*)$/) { $r{attrs}{$1} = $2 }
        elsif (/^(Route|Session|Counter|Created|Invalidated): ?(.*)$/) { $r{lc $1} = $2 }
    }
    ($r{cookie}) = ($h->{'set-cookie'} // '') =~ /JSESSIONID=([^;,\s]+)/;
    $r{sid} = defined $r{session} && $r{session} ne '(new)' ? $r{session} : $r{cookie};
    $r{error} = $h->{_error} if $h->{_error};
    return \%r;
}

# An app() answer, for diag().
sub show {
    my ($r) = @_;
    return "status $r->{status}" . ($r->{error} ? " ($r->{error})" : '')
         . ", Set-Cookie: " . ($r->{headers}{'set-cookie'} // '(none)') . "\n$r->{body}";
}

# The demo application at /app: its LoadModule line, $o{server} (more
# server-level lines), then <Location /app> with Session On, SessionCluster
# On, $o{session} (more lines there), SetHandler session-cluster-demo and
# $o{location} (lines after it).
#   extra_conf => demo_conf($DEMO_SO)
sub demo_conf {
    my ($so, %o) = @_;
    return "LoadModule session_cluster_demo_module \"$so\"\n" . ($o{server} // '')
         . "<Location /app>\n  Session On\n  SessionCluster On\n" . ($o{session} // '')
         . "  SetHandler session-cluster-demo\n" . ($o{location} // '') . "</Location>\n";
}

# An EncryptInterceptor line (for a <Channel>) with encryptionKey $key and,
# when given, previousEncryptionKey $prev.
sub encrypt_interceptor {
    my ($key, $prev) = @_;
    return qq{    <Interceptor className="org.apache.catalina.tribes.group.interceptors.EncryptInterceptor" encryptionKey="$key"}
         . (defined $prev ? qq{ previousEncryptionKey="$prev"} : '') . "/>\n";
}

# Cluster block $x with $text inserted before its "  </Channel>" line.
sub channel_add {
    my ($x, $text) = @_;
    $x =~ s{(  </Channel>)}{$text$1} or die "no </Channel> in the cluster block";
    return $x;
}

# 1 when member $n's page shows $route alive, else 0.
sub alive_on {
    my ($c, $n, $route) = @_;
    my $m = member_on($c, $n, $route);
    return $m && $m->{state} eq 'alive' ? 1 : 0;
}

# Field $k of a parsed page when it is a number, else 0.
sub num { my ($p, $k) = @_; return ($p && defined $p->{$k} && $p->{$k} =~ /^\d+$/) ? $p->{$k} : 0 }

# Member $n's error_log from byte $off on.
sub log_since { my ($c, $n, $off) = @_; return substr($c->error_log($n), $off // 0) }

# 1 when every member named is ready (EngineState) and sees the others
# (MembersAlive: their number less one), else 0.
sub ready_and_alive {
    my ($c, @n) = @_;
    for my $n (@n) {
        my $p = status_of($c, $n) or return 0;
        return 0 unless ($p->{EngineState} // '') eq 'ready' && ($p->{MembersAlive} // 0) == @n - 1;
    }
    return 1;
}

# A session id as the module makes them: 32 hex digits, '.', the route.
# Always one value (1 or 0): a failed match in list context is an empty
# list, which in check(valid_sid(...), $c, $name) (no prototype, unlike
# Test::More's ok) would make $c the condition.
sub valid_sid {
    my ($id, $route) = @_;
    return defined $id && $id =~ /^[0-9A-Fa-f]{32}\.\Q$route\E$/ ? 1 : 0;
}

# The status page's view of one session on member $n (?session=ID): its
# fields, or undef when the member does not hold it.
sub session_on {
    my ($c, $n, $id) = @_;
    my ($s, $h, $b) = $c->get($n, "/cluster-manager?session=$id", timeout => 3);
    return undef unless $s == 200;
    my %f = $b =~ /^(\w+): (.*)$/mg;
    return ($f{SessionHeld} // '') eq 'yes' ? \%f : undef;
}

# The compiler flags and libraries the module is built with, as configure
# found them (the build tree's Makefile: XML2_*, CRYPTO_*, KUBE_*), for a
# test that builds another variant of it with apxs: (\@cflags, \@libs).
sub module_build_flags {
    my $repo = SC::Cluster::repo_dir();
    my (@cflags, @libs);
    if (open my $fh, '<', "$repo/Makefile") {
        while (<$fh>) {
            next unless /^(XML2|CRYPTO|KUBE)_(CFLAGS|LIBS) = (.*)$/;
            push @{ $2 eq 'LIBS' ? \@libs : \@cflags }, split ' ', $3;
        }
    }
    unless (@libs) {
        my $xml = `xml2-config --cflags 2>/dev/null` || '-I/usr/include/libxml2';
        @cflags = split ' ', $xml;
        @libs = qw(-lxml2 -lcrypto);
    }
    return (\@cflags, \@libs);
}

1;
