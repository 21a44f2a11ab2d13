#!perl
# mod_auth_form logins on top of the cluster store: two static members (node1,
# node2; channelSendOptions 6, so a change is applied on the other member
# before the request returns), each with mod_auth_form, mod_session,
# mod_request, mod_authn_file/mod_authn_core, mod_authz_user, mod_cgi and
# mod_alias, and the same htpasswd file (user alice, written by the test with
# htpasswd, or hashed in Perl when htpasswd is missing).  As in httpd's
# mod_auth_form documentation:
#   /login     SetHandler form-login-handler, AuthFormLoginRequiredLocation
#              /login.html, AuthFormLoginSuccessLocation /private/;
#   /private/  AuthType form, Require valid-user; a Perl CGI script that prints
#              REMOTE_USER, AUTH_TYPE and the answering member's route;
#   /logout    SetHandler form-logout-handler, AuthFormLogoutLocation
#              /loggedout.html;
# all three with `Session On` and `SessionCluster On` (AuthName realm).
#   1. /private/ without a cookie is refused on both members (a redirect to
#      /login.html, or 401); the script never runs;
#   2. a POST with a wrong password to /login on node1 is refused (redirect to
#      /login.html), gives no session cookie and stores no session on either
#      member; /private/ stays refused on node2 with whatever cookie came back
#      and with a well-formed id the cluster does not hold;
#   3. the right password on node1: 302 to /private/ and Set-Cookie
#      JSESSIONID=<32 hex>.node1; the ?auto pages of both members count the
#      session (SessionsActive +1; node1 created it, node2 received it);
#   4. with that cookie /private/ answers 200 with REMOTE_USER alice on node2
#      (the session was replicated before the login's answer) and on node1,
#      without a new cookie;
#   5. /logout with the cookie on node2: 307 to /loggedout.html, the cookie is
#      removed; afterwards /private/ with the same cookie is refused on node1
#      (and node2), and neither member holds the session any more; a new login
#      on node2 sending the old cookie gets a new id (ID.node2), not the old
#      one, and that id opens /private/ on node1;
#   6. both members still run, no crash and no SC12xx warning or error in
#      either error_log; mod_auth_form logged the one wrong password (AH01807,
#      on node1) and nothing else.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";
use SC::Test qw(need status_of sess_line check within show valid_sid);
$SC::Test::WITHIN_INTERVAL = 0.05;

use Test::More;
use Time::HiRes qw(time);
use File::Path qw(make_path);
use HTTP::Tiny;
use SC::Cluster;
# ReplicationValve only: ids keep their route here, whichever member serves
# them (re-binding with JvmRouteBinderValve is balancer.t's subject)
my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];

$SIG{ALRM} = sub { die "sessions_authform.t: time limit (60 s) reached\n" };
alarm 60;

my $LIB = $ENV{SC_LIBEXECDIR} || '/usr/lib/apache2/modules';
my @MODS = qw(authn_core authn_file authz_user auth_form request cgi alias);
for my $mod (@MODS, 'session') {
    need(-f "$LIB/mod_$mod.so", "mod_$mod in $LIB (Debian's apache2 ships it)");
}
my $PERL = -x '/usr/bin/perl' ? '/usr/bin/perl' : $^X;

my ($USER, $PASS) = ('alice', 'S3cret-pw');

# ---------------------------------------------------------------------------
# the password file (one line, the same for both members)
# ---------------------------------------------------------------------------
sub htpasswd_line {
    my ($USER, $PASS) = @_ ? @_ : ($USER, $PASS);
    for my $bin ('/usr/bin/htpasswd', '/usr/sbin/htpasswd') {
        next unless -x $bin;
        # -n: print, -b: password from the command line, -m: apr1 (MD5)
        my $out = qx{$bin -nbm $USER $PASS 2>/dev/null};
        return $1 if $? == 0 && $out =~ /^(\Q$USER\E:\S+)$/m;
    }
    # no htpasswd (apache2-utils): glibc's SHA-512 crypt, which APR validates
    # through crypt(3)
    my @c = ('.', '/', 0 .. 9, 'a' .. 'z', 'A' .. 'Z');
    my $salt = join '', map { $c[rand @c] } 1 .. 16;
    my $h = crypt($PASS, "\$6\$$salt\$");
    return "$USER:$h" if defined $h && $h =~ /^\$6\$/ && crypt($PASS, $h) eq $h;
    return undef;
}
my ($USER2, $PASS2) = ('bob', 'An0ther-pw');
my $HTPASSWD_LINE = htpasswd_line();
my $HTPASSWD_LINE2 = htpasswd_line($USER2, $PASS2);
$HTPASSWD_LINE .= "\n$HTPASSWD_LINE2" if defined $HTPASSWD_LINE && defined $HTPASSWD_LINE2;
need(defined $HTPASSWD_LINE, 'a password hash for AuthUserFile (htpasswd from apache2-utils, '
                           . 'or a crypt(3) with SHA-512)');

# ---------------------------------------------------------------------------
# the CGI script behind /private/
# ---------------------------------------------------------------------------
my $CGI = <<"EOS";
#!$PERL
print "Content-Type: text/plain\\n\\n";
for my \$k (qw(REMOTE_USER AUTH_TYPE SESSION_CLUSTER_ROUTE)) {
    print "\$k: ", (defined \$ENV{\$k} ? \$ENV{\$k} : '(unset)'), "\\n";
}
EOS

my $SESS = "  Session On\n  SessionCluster On\n";
my $EXTRA = sub {
    my ($m) = @_;
    my $pw = "$m->{dir}/htpasswd";
    return qq{ScriptAliasMatch "^/private/(?:whoami)?\$" "$m->{htdocs}/cgi/whoami.cgi"\n}
         . qq{<Directory "$m->{htdocs}/cgi">\n  Options +ExecCGI\n</Directory>\n}
         . "<Location /login>\n  SetHandler form-login-handler\n"
         . "  AuthFormLoginRequiredLocation /login.html\n"
         . "  AuthFormLoginSuccessLocation /private/\n"
         . "  AuthFormProvider file\n  AuthUserFile \"$pw\"\n"
         . "  AuthType form\n  AuthName realm\n$SESS</Location>\n"
         . "<Location /login2>\n  SetHandler form-login-handler\n"
         . "  AuthFormLoginRequiredLocation /login.html\n"
         . "  AuthFormLoginSuccessLocation /private/\n"
         . "  AuthFormProvider file\n  AuthUserFile \"$pw\"\n"
         . "  AuthType form\n  AuthName realm\n  SessionClusterChangeIdOnLogin On\n$SESS</Location>\n"
         . "<Location /private>\n  AuthType form\n  AuthName realm\n"
         . "  AuthFormProvider file\n  AuthUserFile \"$pw\"\n"
         . "  AuthFormLoginRequiredLocation /login.html\n"
         . "  Require valid-user\n$SESS</Location>\n"
         . "<Location /logout>\n  SetHandler form-logout-handler\n"
         . "  AuthName realm\n  AuthFormLogoutLocation /loggedout.html\n$SESS</Location>\n";
};

my $c = SC::Cluster->new(
    members    => 2,
    loglevel   => 'info',
    modules    => \@MODS,
    extra_conf => $EXTRA,
    cluster    => sub { SC::Cluster::static_block($_[0], $_[1], channelSendOptions => 6, valves => $KEEP_ROUTES) },
);
my ($A, $B) = qw(node1 node2);
my $t_start = time;

for my $n ($A, $B) {
    my $m = $c->member($n);
    my $root = $m->{htdocs};
    make_path("$root/cgi");
    chmod 0755, "$root/cgi";
    my %files = (
        "$m->{dir}/htpasswd"  => [ "$HTPASSWD_LINE\n", 0644 ],
        "$root/cgi/whoami.cgi" => [ $CGI, 0755 ],
        "$root/login.html"     => [ qq{<html><body><form method="POST" action="/login">}
                                    . qq{<input name="httpd_username"><input type="password" }
                                    . qq{name="httpd_password"><input type="submit"></form>}
                                    . qq{</body></html>\n}, 0644 ],
        "$root/loggedout.html" => [ "<html><body>logged out</body></html>\n", 0644 ],
    );
    for my $f (sort keys %files) {
        open my $fh, '>', $f or die "$f: $!";
        print $fh $files{$f}[0];
        close $fh or die "$f: $!";
        chmod $files{$f}[1], $f;
    }
}

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# One request to member $n: req($n, 'GET', $path, $id) or
# req($n, 'POST', $path, $id, { field => value }).  Returns what SC::Test::show
# prints (status, headers, body, error) plus url, location, cookie (the
# JSESSIONID value a Set-Cookie gives; '' when it removes the cookie), user
# (REMOTE_USER as the script printed it) and route.
sub req {
    my ($n, $method, $path, $id, $form) = @_;
    my %h;
    $h{Cookie} = "JSESSIONID=$id" if defined $id;
    my ($s, $hd, $b);
    if ($method eq 'GET') {
        ($s, $hd, $b) = $c->get($n, $path, headers => \%h, timeout => 5);
    }
    else {
        my $m = $c->member($n);
        my $ua = HTTP::Tiny->new(max_redirect => 0, timeout => 5, agent => 'sessions_authform.t');
        my $res = $ua->post_form("http://$m->{addr}:$m->{http_port}$path", $form,
                                 { headers => \%h });
        $hd = {};
        for my $k (keys %{ $res->{headers} || {} }) {
            my $v = $res->{headers}{$k};
            $hd->{ lc $k } = ref $v ? join(', ', @$v) : $v;
        }
        $s = $res->{status};
        $b = $res->{content};
        if ($s == 599) {    # HTTP::Tiny: no answer
            $hd = { _error => $b };
            ($s, $b) = (0, '');
        }
    }
    my %r = (status => $s, headers => $hd, body => $b // '', url => "$method $n $path",
             location => $hd->{location});
    ($r{cookie}) = ($hd->{'set-cookie'} // '') =~ /JSESSIONID=([^;,\s]*)/;
    ($r{user})   = $r{body} =~ /^REMOTE_USER: (.*)$/m;
    ($r{route})  = $r{body} =~ /^SESSION_CLUSTER_ROUTE: (.*)$/m;
    $r{error} = $hd->{_error} if $hd->{_error};
    return \%r;
}

sub showr {
    my ($r) = @_;
    return "$r->{url}: " . show($r) . "\n(Location: " . ($r->{location} // '(none)') . ')';
}

# refused the way mod_auth_form refuses: 302 to the login page (or 401), and
# the script did not run
sub refused {
    my ($r) = @_;
    return 0 if defined $r->{user};
    return 1 if $r->{status} == 401;
    # (one value: a failed match in list context would be an empty list)
    return $r->{status} == 302 && ($r->{location} // '') =~ m{^(?:https?://[^/]+)?/login\.html$} ? 1 : 0;
}

sub counters {
    my %p;
    for my $n ($A, $B) { $p{$n} = status_of($c, $n) }
    return \%p;
}

# ---------------------------------------------------------------------------
$c->start_all;
{
    my %p;
    my $took = within(20, sub {
        for my $n ($A, $B) {
            $p{$n} = status_of($c, $n) or return 0;
            return 0 unless ($p{$n}{EngineState} // '') eq 'ready' && ($p{$n}{MembersAlive} // 0) == 1;
        }
        return 1;
    });
    check(defined $took, $c, 'both members ready and seeing each other',
          map { "$_: EngineState=" . ($p{$_}{EngineState} // '?')
                . ' MembersAlive=' . ($p{$_}{MembersAlive} // '?') } $A, $B)
        or BAIL_OUT('the cluster did not form');
}
my $p0 = counters();

# 1. no cookie: refused --------------------------------------------------------------------
for my $n ($A, $B) {
    my $r = req($n, 'GET', '/private/');
    check(refused($r), $c, "1. $n: /private/ without a cookie is refused (302 to /login.html or 401)",
          showr($r));
    ok(!defined $r->{cookie}, "1. $n: ... and sets no session cookie") or diag(showr($r));
}
# the login page itself is public (the redirect leads somewhere)
{
    my $r = req($A, 'GET', '/login.html');
    check(!!($r->{status} == 200 && $r->{body} =~ /httpd_username/), $c,
          '1. /login.html (the login-required location) is served', showr($r));
}

# 2. wrong password ------------------------------------------------------------------------
{
    my $r = req($A, 'POST', '/login', undef, { httpd_username => $USER, httpd_password => 'wrong' });
    check(refused($r), $c, '2. a POST with a wrong password to /login on node1 is refused '
          . '(302 to /login.html or 401)', showr($r));
    ok(!defined $r->{cookie} || $r->{cookie} eq '',
       '2. ... and gives no session cookie') or diag(showr($r));
    my $p = counters();
    for my $n ($A, $B) {
        is($p->{$n}{SessionsActive}, $p0->{$n}{SessionsActive},
           "2. $n holds no new session (SessionsActive unchanged)")
            or diag("$n: before " . sess_line($p0->{$n}) . "\n$n: now " . sess_line($p->{$n}));
    }
    my $rb = req($B, 'GET', '/private/', $r->{cookie} && length $r->{cookie} ? $r->{cookie} : undef);
    check(refused($rb), $c, '2. /private/ on node2 with whatever cookie came back stays refused',
          showr($r), showr($rb));
    # a well-formed id that nobody created is not adopted
    my $forged = ('0123456789ABCDEF' x 2) . ".$A";
    for my $n ($B, $A) {
        my $rf = req($n, 'GET', '/private/', $forged);
        check(refused($rf), $c, "2. $n: /private/ with a well-formed id the cluster does not hold "
              . 'is refused', showr($rf));
    }
}

# 3. the right password --------------------------------------------------------------------
my $SID;
{
    my $r = req($A, 'POST', '/login', undef, { httpd_username => $USER, httpd_password => $PASS });
    $SID = $r->{cookie};
    check(!!($r->{status} == 302 && ($r->{location} // '') =~ m{^(?:https?://[^/]+)?/private/$}), $c,
          '3. the right password on node1: 302 to /private/', showr($r));
    check(valid_sid($SID, $A), $c, "3. ... with Set-Cookie JSESSIONID=<32 hex>.$A", showr($r))
        or BAIL_OUT('no session cookie after a successful login');
    like($r->{headers}{'set-cookie'} // '', qr/JSESSIONID=\Q$SID\E;.*path=\//i,
         '3. ... for path=/ (the cookie covers /private and /logout)') or diag(showr($r));

    # the ?auto pages: the session is on both members (acknowledged replication:
    # already there when the login answered)
    my $p = counters();
    for my $n ($A, $B) {
        check(($p->{$n}{SessionsActive} // -1) == ($p0->{$n}{SessionsActive} // 0) + 1, $c,
              "3. $n\'s ?auto page counts the session (SessionsActive +1)",
              "$n: before " . sess_line($p0->{$n}), "$n: now " . sess_line($p->{$n}));
    }
    cmp_ok($p->{$A}{SessionsCreated} // 0, '>', $p0->{$A}{SessionsCreated} // 0,
           '3. node1 created it (SessionsCreated grew)');
    cmp_ok($p->{$B}{ReplicatedIn} // 0, '>', $p0->{$B}{ReplicatedIn} // 0,
           '3. node2 received it by replication (ReplicatedIn grew)');
}

# 4. the cookie opens /private/ on both members ---------------------------------------------
for my $n ($B, $A) {
    my $r = req($n, 'GET', '/private/', $SID);
    check($r->{status} == 200 && ($r->{user} // '') eq $USER, $c,
          "4. $n: /private/ with the cookie answers 200 for REMOTE_USER $USER", showr($r));
    like($r->{body}, qr/^AUTH_TYPE: form$/mi, "4. $n: ... authenticated by mod_auth_form")
        or diag(showr($r));
    is($r->{route}, $n, "4. $n: ... answered by $n itself");
    ok(!defined $r->{cookie}, "4. $n: ... with no new cookie") or diag(showr($r));
}
{
    my $p = counters();
    for my $n ($A, $B) {
        is($p->{$n}{SessionsActive}, ($p0->{$n}{SessionsActive} // 0) + 1,
           "4. $n still holds exactly the one session") or diag(sess_line($p->{$n}));
    }
}

# 5. logout through node2 --------------------------------------------------------------------
{
    my $r = req($B, 'GET', '/logout', $SID);
    check(!!(($r->{status} == 307 || $r->{status} == 302)
             && ($r->{location} // '') =~ m{^(?:https?://[^/]+)?/loggedout\.html$}), $c,
          '5. /logout with the cookie on node2 redirects to /loggedout.html', showr($r));
    like($r->{headers}{'set-cookie'} // '', qr/JSESSIONID=;/,
         '5. ... and removes the session cookie') or diag(showr($r));

    for my $n ($A, $B) {
        my $rp = req($n, 'GET', '/private/', $SID);
        check(refused($rp), $c, "5. $n: after the logout /private/ with the same cookie is refused",
              showr($rp));
    }
    my (%p, %held);
    my $took = within(20, sub {
        for my $n ($A, $B) {
            my (undef, undef, $b) = $c->get($n, "/cluster-manager?session=$SID");
            $held{$n} = ($b // '') =~ /^SessionHeld: (yes|no)$/m ? $1 : '?';
            $p{$n} = status_of($c, $n) or return 0;
            return 0 unless ($p{$n}{SessionsActive} // -1) == ($p0->{$n}{SessionsActive} // 0)
                            && $held{$n} eq 'no';
        }
        return 1;
    });
    check(defined $took, $c, '5. neither member holds the session any more (?session=ID not held, '
          . 'SessionsActive back; polled up to 20 s)',
          map { "$_: held " . ($held{$_} // '?') . '; ' . sess_line($p{$_}) } $A, $B);
    # logging in again works (the logout did not break the login path)
    my $rl = req($B, 'POST', '/login', $SID, { httpd_username => $USER, httpd_password => $PASS });
    check($rl->{status} == 302 && valid_sid($rl->{cookie}, $B) && $rl->{cookie} ne $SID, $c,
          '5. a new login on node2 with the old cookie gets a new id (ID.node2), not the old one',
          showr($rl));
    my $ra = req($A, 'GET', '/private/', $rl->{cookie});
    check($ra->{status} == 200 && ($ra->{user} // '') eq $USER, $c,
          '5. ... which opens /private/ on node1', showr($ra));
}

# 7. SessionClusterChangeIdOnLogin: a login on an existing session changes its id --------
{
    my $r1 = req($A, 'POST', '/login', undef, { httpd_username => $USER, httpd_password => $PASS });
    my $S1 = $r1->{cookie};
    check(valid_sid($S1, $A), $c, '7. a session logged in as alice at /login (ids kept there)',
          showr($r1));
    my $r2 = req($B, 'POST', '/login2', $S1, { httpd_username => $USER2, httpd_password => $PASS2 });
    my $S2 = $r2->{cookie};
    check($r2->{status} == 302 && valid_sid($S2, $B) && substr($S2, 0, 32) ne substr($S1 // '', 0, 32),
          $c, '7. logging in as bob at /login2 (SessionClusterChangeIdOnLogin On, on node2) '
              . 'gives the session a new id with node2\'s route', showr($r2));
    for my $n ($A, $B) {
        my $r = req($n, 'GET', '/private/', $S2);
        check($r->{status} == 200 && ($r->{user} // '') eq $USER2, $c,
              "7. $n: the new id opens /private/ as $USER2", showr($r));
        my $o = req($n, 'GET', '/private/', $S1);
        ok(refused($o), "7. $n: the old id opens nothing any more") or diag(showr($o));
    }
    like($c->error_log($B), qr/SC1300: session \Q$S1\E changed its id to \Q$S2\E/,
         '7. node2 logs the change of id');
}

# 6. nothing crashed, nothing logged as an error --------------------------------------------
for my $n ($A, $B) {
    ok($c->is_running($n), "6. $n still runs");
    my $log = $c->error_log($n);
    unlike($log, qr/exit signal|Segmentation|AH00052/, "6. $n: no crash in the error_log");
    my @sc = grep { /SC12\d\d/ && !/SC1293/ && /:(?:warn|error|crit|alert|emerg)\]/ } split /\n/, $log;
    ok(!@sc, "6. $n: no SC12xx warning or error in the error_log")
        or diag(join("\n", @sc[0 .. ($#sc < 9 ? $#sc : 9)]));
    # mod_auth_form logs the wrong password of step 2 (node1 only), nothing else
    my @af = grep { /auth_form:/ && /:(?:warn|error|crit|alert|emerg)\]/ } split /\n/, $log;
    my @mismatch = grep { /AH01807: user '\Q$USER\E': authentication failure for "\/login": password Mismatch/i } @af;
    is(scalar @mismatch, $n eq $A ? 1 : 0,
       "6. $n: mod_auth_form logged " . ($n eq $A ? 'the' : 'no') . ' wrong password (AH01807)')
        or diag(join("\n", @af));
    my @other = grep { !/AH01807/ } @af;
    ok(!@other, "6. $n: no other mod_auth_form warning or error in the error_log")
        or diag(join("\n", @other[0 .. ($#other < 9 ? $#other : 9)]));
}
note(sprintf 'sessions_authform.t took %.1fs', time - $t_start);

$c->teardown;
done_testing();
