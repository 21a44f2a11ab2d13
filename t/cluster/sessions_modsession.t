#!perl
# mod_session's own features on top of the cluster store: two static members
# (node1, node2; channelSendOptions 6, so a change is applied on the other
# member before the request returns), mod_cgi, one Perl CGI script (s.cgi)
# copied under several locations of each member's htdocs.  The script prints
# the HTTP_SESSION environment variable and, given ?count=N, answers
# `X-Replace-Session: user=alice&count=N` (given ?hdr=V: `X-Replace-Session: V`).
#   1. SessionEnv + SessionHeader (/s): the first answer's header creates the
#      session (a JSESSIONID cookie ID.node1; that request itself saw an empty
#      HTTP_SESSION, mod_session's blank session, and the header does not
#      reach the client); node2 shows HTTP_SESSION with user=alice and
#      count=1 for that cookie;
#   2. SessionHeader update: ?count=5 on node1, node2 reads count=5 (and
#      user=alice is kept);
#   3. SessionInclude /app/in, SessionExclude /app/in/private (in <Location
#      /app>): a session made under /app/in is seen under /app/in on both
#      members, not under /app/out nor /app/in/private (HTTP_SESSION unset);
#      there, a fresh request gets no cookie and a header does not change the
#      session;
#   4. SessionMaxAge 2 (/short): readable at once on the other member, kept
#      alive by accesses 0.6 s apart for 3 s (each access moves mod_session's
#      expiry forward: a new version, held by both members at once), and 2.2 s after the last
#      access (the expiry mod_session wrote is then past) gone on both
#      members: its cookie sees no session, both count the expiry (polled),
#      and a write with it gets a new id;
#   5. removing attributes through the header: an empty `X-Replace-Session:`
#      writes nothing (mod_session merges the header into the session; the
#      same location with mod_session_cookie, /ctl, is the reference), while
#      `user=&count=` (documented: a key set to the empty string is removed)
#      empties the session: the cluster drops it on both members (their
#      status pages: ?session=ID no longer held, SessionsActive one less and
#      SessionsRemoved one more, apart from expiries meanwhile), the cookie
#      is removed and never adopted again;
#   6. a save that changes one attribute writes the others as they were read
#      (not URL-escaped again: issue 22; the trace line of node1's encoder
#      says 2 of 3 values, their bytes counted), and the session is the same
#      as escaping it again gives: node2's HTTP_SESSION, and that of the same
#      two requests on /ctl (mod_session_cookie), are exactly the encoding of
#      its values (one with a space, '+', '&', '=', '%', '~', '/', UTF-8).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";
use SC::Test qw(page parse_auto need status_of head_of_page dump_cluster check within);
$SC::Test::WITHIN_INTERVAL = 0.05;

use Test::More;
use Time::HiRes qw(time sleep);
use File::Path qw(make_path);
use SC::Cluster;
# ReplicationValve only: ids keep their route here, whichever member serves
# them (re-binding with JvmRouteBinderValve is balancer.t's subject)
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];

$SIG{ALRM} = sub { die "sessions_modsession.t: time limit (90 s) reached\n" };
alarm 90;

my $LIB = $ENV{SC_LIBEXECDIR} || '/usr/lib/apache2/modules';
for my $mod (qw(cgi session_cookie)) {
    need(-f "$LIB/mod_$mod.so", "mod_$mod in $LIB (Debian's apache2 ships it)");
}
my $PERL = -x '/usr/bin/perl' ? '/usr/bin/perl' : $^X;

# ---------------------------------------------------------------------------
# the CGI script
# ---------------------------------------------------------------------------
my $CGI = <<"EOS";
#!$PERL
use strict;
my %q;
for (split /&/, defined \$ENV{QUERY_STRING} ? \$ENV{QUERY_STRING} : '') {
    my (\$k, \$v) = split /=/, \$_, 2;
    \$v = '' unless defined \$v;
    \$v =~ tr/+/ /;
    \$v =~ s/%([0-9A-Fa-f]{2})/chr hex \$1/ge;
    \$q{\$k} = \$v;
}
print "Content-Type: text/plain\\n";
if (defined \$q{count}) { print "X-Replace-Session: user=alice&count=\$q{count}\\n" }
elsif (exists \$q{hdr}) { print "X-Replace-Session: \$q{hdr}\\n" }
print "\\n";
print "Script: ", (defined \$ENV{SCRIPT_NAME} ? \$ENV{SCRIPT_NAME} : ''), "\\n";
print "Route: ", (defined \$ENV{SESSION_CLUSTER_ROUTE} ? \$ENV{SESSION_CLUSTER_ROUTE} : '(unset)'), "\\n";
print "HTTP_SESSION: ", (defined \$ENV{HTTP_SESSION} ? "[\$ENV{HTTP_SESSION}]" : '(unset)'), "\\n";
EOS

my @DIRS = qw(s app/in app/out app/in/private short ctl);

my $SESS = "  Session On\n  SessionCluster On\n  SessionEnv On\n  SessionHeader X-Replace-Session\n";
my $EXTRA = sub {
    my ($m) = @_;
    return qq{<Directory "$m->{htdocs}">\n  Options +ExecCGI\n  <Files "s.cgi">\n    SetHandler cgi-script\n  </Files>\n</Directory>\n}
         . "<Location /s>\n$SESS</Location>\n"
         . "<Location /app>\n$SESS  SessionInclude /app/in\n  SessionExclude /app/in/private\n</Location>\n"
         . "<Location /short>\n$SESS  SessionMaxAge 2\n</Location>\n"
         # the reference: the same with mod_session_cookie
         . "<Location /ctl>\n  Session On\n  SessionCookieName ctl path=/ctl\n  SessionEnv On\n"
         . "  SessionHeader X-Replace-Session\n</Location>\n";
};

my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info session_cluster:trace2',
    modules    => [ 'cgi', 'session_cookie' ],
    extra_conf => $EXTRA,
    cluster    => sub { SC::Cluster::static_block($_[0], $_[1], channelSendOptions => 6, valves => $KEEP_ROUTES) },
);
my ($A, $B) = qw(node1 node2);
my $t_start = time;

for my $n ($A, $B) {
    my $root = $c->member($n)->{htdocs};
    for my $d (@DIRS) {
        make_path("$root/$d");
        chmod 0755, "$root/$d";
        open my $fh, '>', "$root/$d/s.cgi" or die "$root/$d/s.cgi: $!";
        print $fh $CGI;
        close $fh or die "$root/$d/s.cgi: $!";
        chmod 0755, "$root/$d/s.cgi";
    }
    # the server runs as nobody when root: every directory on the way must
    # be traversable
    chmod 0755, "$root/app";
}

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# GET $path?$query on member $n with cookie "$cname=$id"; returns { status,
# headers, body, session (HTTP_SESSION as the script saw it, undef when
# unset), attrs => { decoded session keys }, cookie (the id a Set-Cookie
# gives), set_cookie (the raw header) }
sub cgi {
    my ($c, $n, $path, $query, $id, %o) = @_;
    my $cname = $o{cookie_name} || 'JSESSIONID';
    my %h;
    $h{Cookie} = "$cname=$id" if defined $id;
    my $url = $path . (defined $query && length $query ? "?$query" : '');
    my ($s, $h, $b) = $c->get($n, $url, headers => \%h, timeout => 5);
    my %r = (status => $s, headers => $h, body => $b // '', attrs => {}, url => "$n $url");
    if (($b // '') =~ /^HTTP_SESSION: \[(.*)\]$/m) {
        $r{session} = $1;
        for (split /&/, $1) {
            my ($k, $v) = split /=/, $_, 2;
            next unless defined $k && length $k;
            $v //= '';
            s/%([0-9A-Fa-f]{2})/chr hex $1/ge for $k, $v;
            $r{attrs}{$k} = $v;
        }
    }
    ($r{route}) = ($b // '') =~ /^Route: (.*)$/m;
    $r{set_cookie} = $h->{'set-cookie'};
    ($r{cookie}) = ($h->{'set-cookie'} // '') =~ /\Q$cname\E=([^;,\s]*)/;
    $r{error} = $h->{_error} if $h->{_error};
    return \%r;
}

sub show {
    my ($r) = @_;
    my $h = $r->{headers} || {};
    return "GET $r->{url}: status $r->{status}" . ($r->{error} ? " ($r->{error})" : '') . "\n"
         . join('', map { "  $_: $h->{$_}\n" } sort grep { !/^_/ } keys %$h)
         . "  body:\n$r->{body}";
}

sub valid_sid {
    my ($id, $route) = @_;
    # (one value: a failed match in list context would be an empty list)
    return defined $id && $id =~ /^[0-9A-Fa-f]{32}\.\Q$route\E$/ ? 1 : 0;
}

# 'yes' or 'no': whether member $n's store holds session $id (the status
# page's ?session=ID); () when the page does not answer
sub held {
    my ($n, $id) = @_;
    my ($st, undef, $b) = $c->get($n, "/cluster-manager?session=$id");
    return () unless ($st // 0) == 200 && ($b // '') =~ /^SessionHeld: (yes|no)$/m;
    return $1;
}

# the version member $n's store holds of session $id (?session=ID), undef
# when not held
sub version_of {
    my ($n, $id) = @_;
    my ($st, undef, $b) = $c->get($n, "/cluster-manager?session=$id");
    return undef unless ($st // 0) == 200 && ($b // '') =~ /^SessionHeld: yes$/m;
    return $b =~ /^SessionVersion: (\d+)$/m ? $1 : undef;
}

# attributes other than mod_session's own "expiry"
sub user_attrs {
    my ($r) = @_;
    return join('&', map { "$_=$r->{attrs}{$_}" } sort grep { $_ ne 'expiry' } keys %{ $r->{attrs} });
}

# ---------------------------------------------------------------------------
$c->start_all;
{
    my %p;
    my $took = within(20, sub {
        for my $n ($A, $B) {
            $p{$n} = status_of($c, $n) or return 0;
            return 0 unless ($p{$n}{EngineState} // '') eq 'ready' && ($p{$n}{MembersAlive} // 0) == 1;    # the other member
        }
        return 1;
    });
    check(defined $took, $c, 'both members ready and seeing each other',
          map { "$_: EngineState=" . ($p{$_}{EngineState} // '?')
                . ' MembersAlive=' . ($p{$_}{MembersAlive} // '?') } $A, $B)
        or BAIL_OUT('the cluster did not form');
}

# the CGI runs at all
{
    my $r = cgi($c, $A, '/s/s.cgi', '');
    check(!!($r->{status} == 200 && $r->{body} =~ /^HTTP_SESSION: /m), $c,
          'the CGI script answers on /s', show($r))
        or BAIL_OUT('the CGI script does not run');
}

# 1. SessionEnv + SessionHeader: creation, replication --------------------------------
my $S1;
{
    my $r = cgi($c, $A, '/s/s.cgi', 'count=1');
    $S1 = $r->{cookie};
    check($r->{status} == 200 && valid_sid($S1, $A), $c,
          "1. X-Replace-Session on node1 creates a session: Set-Cookie JSESSIONID=<32 hex>.$A",
          show($r));
    # mod_session gives a request without a session a blank one: HTTP_SESSION
    # is set, and empty
    ok(defined $r->{session} && $r->{session} eq '',
       '1. ... the creating request itself saw an empty session (HTTP_SESSION empty)')
        or diag(show($r));
    ok(!exists $r->{headers}{'x-replace-session'},
       '1. ... and mod_session took X-Replace-Session out of the answer') or diag(show($r));

    my $rb = cgi($c, $B, '/s/s.cgi', '', $S1);
    check(($rb->{attrs}{user} // '') eq 'alice' && ($rb->{attrs}{count} // '') eq '1', $c,
          "1. node2 shows HTTP_SESSION with user=alice and count=1 for that cookie", show($rb));
    is($rb->{route}, $B, '1. ... answered by node2');
    ok(!defined $rb->{cookie}, '1. ... with no new cookie (the session was adopted)') or diag(show($rb));
    my $ra = cgi($c, $A, '/s/s.cgi', '', $S1);
    is(user_attrs($ra), 'count=1&user=alice', '1. node1 shows the same session') or diag(show($ra));
}

# 2. SessionHeader update through node1, read on node2 ------------------------------------
{
    my $r = cgi($c, $A, '/s/s.cgi', 'count=5', $S1);
    check($r->{status} == 200 && !defined $r->{cookie} && ($r->{attrs}{count} // '') eq '1', $c,
          '2. node1 answers ?count=5 for S1 (it saw count=1, no new cookie)', show($r));
    my $rb = cgi($c, $B, '/s/s.cgi', '', $S1);
    check(($rb->{attrs}{count} // '') eq '5' && ($rb->{attrs}{user} // '') eq 'alice', $c,
          '2. node2 then reads count=5 (and user=alice)', show($rb));
    # and the other way round
    $r = cgi($c, $B, '/s/s.cgi', 'count=6', $S1);
    my $ra = cgi($c, $A, '/s/s.cgi', '', $S1);
    check(($ra->{attrs}{count} // '') eq '6' && !defined $ra->{cookie}, $c,
          '2. an update on node2 (count=6) is read on node1', show($r), show($ra));
    # a header with one key changes that key only
    $r = cgi($c, $A, '/s/s.cgi', 'hdr=' . 'colour%3Dblue', $S1);
    $rb = cgi($c, $B, '/s/s.cgi', '', $S1);
    is(user_attrs($rb), 'colour=blue&count=6&user=alice',
       '2. X-Replace-Session: colour=blue adds colour, keeps count and user (seen on node2)')
        or diag(show($rb));
}

# 3. SessionInclude / SessionExclude -------------------------------------------------------
{
    my $r = cgi($c, $A, '/app/in/s.cgi', 'count=1');
    my $S3 = $r->{cookie};
    check(valid_sid($S3, $A), $c, '3. /app/in (included) on node1: the header creates a session',
          show($r));
    for my $n ($A, $B) {
        my $ri = cgi($c, $n, '/app/in/s.cgi', '', $S3);
        check(($ri->{attrs}{user} // '') eq 'alice' && ($ri->{attrs}{count} // '') eq '1', $c,
              "3. $n: /app/in shows the session (included)", show($ri));
        my $ro = cgi($c, $n, '/app/out/s.cgi', '', $S3);
        check($ro->{status} == 200 && !defined $ro->{session}, $c,
              "3. $n: /app/out with the same cookie: no session (HTTP_SESSION unset; not included)",
              show($ro));
        my $rp = cgi($c, $n, '/app/in/private/s.cgi', '', $S3);
        check($rp->{status} == 200 && !defined $rp->{session}, $c,
              "3. $n: /app/in/private with the same cookie: no session (excluded)", show($rp));
    }
    # no session is created or changed where it is not included
    my $ro = cgi($c, $A, '/app/out/s.cgi', 'count=9');
    check($ro->{status} == 200 && !defined $ro->{set_cookie}, $c,
          '3. a fresh request to /app/out answering X-Replace-Session gets no cookie', show($ro));
    my $rp = cgi($c, $B, '/app/in/private/s.cgi', 'count=9');
    check($rp->{status} == 200 && !defined $rp->{set_cookie}, $c,
          '3. ... nor one to /app/in/private', show($rp));
    cgi($c, $A, '/app/out/s.cgi', 'count=7', $S3);
    cgi($c, $B, '/app/in/private/s.cgi', 'count=8', $S3);
    for my $n ($B, $A) {
        my $ri = cgi($c, $n, '/app/in/s.cgi', '', $S3);
        check(($ri->{attrs}{count} // '') eq '1', $c,
              "3. $n: headers from /app/out and /app/in/private did not change the session (count=1)",
              show($ri));
    }
    # and an included path still writes
    cgi($c, $B, '/app/in/s.cgi', 'count=2', $S3);
    my $ri = cgi($c, $A, '/app/in/s.cgi', '', $S3);
    check(($ri->{attrs}{count} // '') eq '2', $c,
          '3. /app/in on node2 (count=2) is read on node1', show($ri));
}

# 4. SessionMaxAge 2 -------------------------------------------------------------------------
{
    my $r = cgi($c, $A, '/short/s.cgi', 'count=1');
    my $S4 = $r->{cookie};
    check(valid_sid($S4, $A), $c, '4. SessionMaxAge 2: node1 creates a session', show($r));
    my $rb = cgi($c, $B, '/short/s.cgi', '', $S4);
    check(($rb->{attrs}{user} // '') eq 'alice' && ($rb->{attrs}{count} // '') eq '1', $c,
          '4. node2 reads it at once', show($rb));
    like($rb->{attrs}{expiry} // '', qr/^\d{16}$/, '4. ... with mod_session\'s expiry in it');

    # accesses keep it alive beyond 2 s (alternating members, 0.6 s apart):
    # with SessionMaxAge every access is a write (mod_session moves its
    # expiry forward), and the other member has it at once (acknowledged
    # replication): both stores then hold the same, newer version
    # (?session=ID, read without touching the session)
    my ($alive, $moved) = (1, 1);
    my ($last, @why);
    my $version = version_of($A, $S4) // 0;
    for my $i (1 .. 5) {
        sleep 0.6;
        my ($n, $o) = $i % 2 ? ($A, $B) : ($B, $A);
        $last = cgi($c, $n, '/short/s.cgi', '', $S4);
        $alive &&= ($last->{attrs}{user} // '') eq 'alice';
        my ($vn, $vo) = (version_of($n, $S4), version_of($o, $S4));
        my $ok = defined $vn && defined $vo && $vn == $vo && $vn > $version;
        push @why, "access $i on $n: version before $version, now $n " . ($vn // 'not held')
                 . ", $o " . ($vo // 'not held') unless $ok;
        $moved &&= $ok;
        $version = $vn // $version;
    }
    check($alive, $c, '4. accesses 0.6 s apart (on both members) keep it alive for 3 s, beyond its 2 s',
          show($last));
    check($moved, $c, '4. ... each access wrote a new version, which the other member held at once', @why);
    my $t_last = time;
    my %exp0 = map { my $p = status_of($c, $_); ($_ => $p ? $p->{SessionsExpired} // 0 : 0) } ($A, $B);

    # then no access for 2.2 s: the expiry mod_session wrote at the last
    # access (before $t_last) is past
    sleep 2.2 - (time - $t_last) if time - $t_last < 2.2;
    for my $n ($A, $B) {
        my $rn = cgi($c, $n, '/short/s.cgi', '', $S4);
        check($rn->{status} == 200 && user_attrs($rn) eq '', $c,
              sprintf('4. %s, %.1fs after the last access: the cookie gets no session (no user, no count)',
                      $n, time - $t_last), show($rn));
        ok(!defined $rn->{cookie} || $rn->{cookie} ne $S4, "4. $n: and the old id is not renewed")
            or diag(show($rn));
    }
    # the engine's sweep removes it from both stores (every second)
    my %p;
    my $took = within(20, sub {
        for my $n ($A, $B) {
            $p{$n} = status_of($c, $n) or return 0;
            return 0 unless ($p{$n}{SessionsExpired} // 0) > $exp0{$n};
        }
        return 1;
    });
    check(defined $took, $c, '4. both members count the expiry (SessionsExpired grows on each; polled up to 20 s)',
          map { "$_: SessionsExpired before $exp0{$_}, now " . ($p{$_}{SessionsExpired} // '?') } $A, $B);
    for my $n ($B, $A) {
        my $rw = cgi($c, $n, '/short/s.cgi', 'count=2', $S4);
        check(valid_sid($rw->{cookie}, $n) && $rw->{cookie} ne $S4 && user_attrs($rw) eq '', $c,
              "4. $n: a write with the expired cookie gets a new session id (ID.$n), "
              . 'and the script saw no old attributes', show($rw));
    }
}

# 5. emptying the session through the header ----------------------------------------------
{
    # the reference: mod_session_cookie at /ctl
    my $rc = cgi($c, $A, '/ctl/s.cgi', 'count=1', undef, cookie_name => 'ctl');
    my $ctl = $rc->{cookie};
    my $rce = cgi($c, $A, '/ctl/s.cgi', 'hdr=', $ctl, cookie_name => 'ctl');
    my $ctl2 = defined $rce->{cookie} ? $rce->{cookie} : $ctl;
    my $rca = cgi($c, $A, '/ctl/s.cgi', '', $ctl2, cookie_name => 'ctl');
    my $ref_after_empty = user_attrs($rca);
    note("mod_session_cookie after an empty X-Replace-Session: [$ref_after_empty]; "
         . "its Set-Cookie then: " . ($rce->{set_cookie} // '(none)'));

    my $r = cgi($c, $A, '/s/s.cgi', 'count=1');
    my $S5 = $r->{cookie};
    check(valid_sid($S5, $A), $c, '5. node1 creates S5 (user=alice, count=1)', show($r));

    # an empty header: nothing is written (the session is merged with nothing)
    my $re = cgi($c, $A, '/s/s.cgi', 'hdr=', $S5);
    check($re->{status} == 200 && user_attrs($re) eq 'count=1&user=alice', $c,
          '5. node1 answers an empty X-Replace-Session for S5', show($re));
    my $rb = cgi($c, $B, '/s/s.cgi', '', $S5);
    is(user_attrs($rb), $ref_after_empty,
       '5. an empty X-Replace-Session: node2 serves what mod_session_cookie keeps in the same case')
        or diag(show($re), show($rb));
    is(user_attrs($rb), 'count=1&user=alice',
       '5. ... i.e. the attributes unchanged (the header names no key to remove)')
        or diag(show($rb));

    # every key set to the empty string: the session is emptied
    my %before;
    for my $n ($A, $B) {
        $before{$n} = status_of($c, $n) || {};
        is(join(' ', held($n, $S5)), 'yes', "5. before: $n holds S5 (?session=ID)");
    }
    my $rx = cgi($c, $A, '/s/s.cgi', 'hdr=' . 'user%3D%26count%3D', $S5);
    check($rx->{status} == 200, $c, '5. node1 answers X-Replace-Session: user=&count= for S5', show($rx));
    like($rx->{set_cookie} // '', qr/JSESSIONID=;?.*(?:Max-Age=0|expires=)/i,
         '5. ... and removes the session cookie') or diag(show($rx));
    # the status pages: S5 no longer held, SessionsActive one less and one
    # more session removed (other than by expiry: the /short sessions of 4.
    # may expire meanwhile, and count as such)
    my (%now, %why);
    my $dropped = within(20, sub {
        my $all = 1;
        for my $n ($A, $B) {
            my $p = $now{$n} = status_of($c, $n) or return 0;
            my $b = $before{$n};
            my $expired = ($p->{SessionsExpired} // 0) - ($b->{SessionsExpired} // 0);
            my $active = ($b->{SessionsActive} // 0) - ($p->{SessionsActive} // 0);
            my $removed = ($p->{SessionsRemoved} // 0) - ($b->{SessionsRemoved} // 0) - $expired;
            my $h = join(' ', held($n, $S5));
            $why{$n} = "$n: S5 held: $h; SessionsActive " . ($b->{SessionsActive} // '?') . ' -> '
                     . ($p->{SessionsActive} // '?') . "; removed other than by expiry: $removed; "
                     . "expired meanwhile: $expired";
            $all &&= $h eq 'no' && $active == 1 + $expired && $removed == 1;
        }
        return $all;
    });
    check(defined $dropped, $c,
          '5. the cluster drops S5 on both members: not held, SessionsActive one less, one removal '
          . '(status pages, polled up to 20 s)', map { $why{$_} } $A, $B);
    $rb = cgi($c, $B, '/s/s.cgi', '', $S5);
    check($rb->{status} == 200 && user_attrs($rb) eq '', $c,
          '5. node2 no longer serves the old attributes of S5', show($rb));
    my $ra = cgi($c, $A, '/s/s.cgi', '', $S5);
    check($ra->{status} == 200 && user_attrs($ra) eq '', $c,
          '5. node1 neither', show($ra));
    my $rw = cgi($c, $B, '/s/s.cgi', 'count=3', $S5);
    check(valid_sid($rw->{cookie}, $B) && $rw->{cookie} ne $S5, $c,
          "5. a write with S5's cookie on node2 gets a new session id (S5 is not adopted again)",
          show($rw));
    my $ra2 = cgi($c, $A, '/s/s.cgi', '', $S5);
    is(user_attrs($ra2), '', "5. ... and S5 itself stays empty on node1") or diag(show($ra2));
}

# 6. unchanged attributes written as read ---------------------------------------------------
{
    # mod_session's escaping (letters, digits, ".-*_" as themselves, a space
    # as '+', any other byte as %xx, lower-case hex), and the query's (every
    # byte but letters and digits as %XX: the script decodes it once)
    my $esc = sub { my $v = shift; $v =~ s/([^A-Za-z0-9.\-*_ ])/sprintf '%%%02x', ord $1/ge; $v =~ tr/ /+/; $v };
    my $q = sub { my $v = shift; $v =~ s/([^A-Za-z0-9])/sprintf '%%%02X', ord $1/ge; $v };
    my $note = "a b+c&d=e%f~g/h\xc3\xa9*._-";
    my $big = 'y' x 4000;
    my $want = 'note=' . $esc->($note) . "&big=$big&count=7";
    my %got;
    for my $where (['cluster', '/s/s.cgi', 'JSESSIONID'], ['ctl', '/ctl/s.cgi', 'ctl']) {
        my ($name, $path, $cn) = @$where;
        my $r = cgi($c, $A, $path, 'hdr=' . $q->('note=' . $esc->($note) . "&big=$big"), undef,
                    cookie_name => $cn);
        my $id = $r->{cookie};
        my $r2 = cgi($c, $A, $path, 'hdr=' . $q->('count=7'), $id, cookie_name => $cn);
        $id = $r2->{cookie} if defined $r2->{cookie} && $name eq 'ctl';
        my $rr = cgi($c, $name eq 'ctl' ? $A : $B, $path, '', $id, cookie_name => $cn);
        $got{$name} = $rr->{session} // '(unset)';
        diag(show($r), show($r2), show($rr)) if $got{$name} ne $want;
    }
    is($got{cluster}, $want, "6. node2 reads the session saved with one attribute changed: "
       . "its encoding exactly (" . length($want) . " bytes)");
    is($got{ctl}, $want, '6. ... and so does mod_session_cookie for the same requests (/ctl)');
    my $bytes = length('note=' . $esc->($note)) - 5 + length $big;
    ok(defined within(10, sub {
           $c->error_log($A) =~ /session encoded: 2 of 3 value\(s\) as read \($bytes bytes\)/ }),
       "6. node1's encoder wrote note and big as read ($bytes bytes), escaped count only")
        or diag(join("\n", grep { /session encoded/ } split /\n/, $c->error_log($A)));
}

# nothing crashed -----------------------------------------------------------------------------
for my $n ($A, $B) {
    ok($c->is_running($n), "$n still runs");
    my $log = $c->error_log($n);
    unlike($log, qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
    my @sc = grep { /SC12[7-9]\d/ && !/SC1273|SC1272|SC1293/ } split /\n/, $log;
    ok(!@sc, "$n: no session errors (SC127x) in the error_log")
        or diag(join("\n", @sc[0 .. ($#sc < 9 ? $#sc : 9)]));
}
note(sprintf 'sessions_modsession.t took %.1fs', time - $t_start);

$c->teardown;
done_testing();
