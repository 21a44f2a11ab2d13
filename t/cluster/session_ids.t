#!perl
# Session ids and the session cookie:
#   (a) 100,000 ids drawn from the module's own sc_sid_new() (t/tools/sid_draw,
#       sc_repl.c linked with APR): all distinct, all 32 hex digits, '.' and the
#       route; each of the 128 bits is 1 in 50000 +- 5 sigma (790) of them;
#       each hex digit position is roughly uniform over its 16 digits
#       (chi-square, 15 degrees of freedom, below 60);
#   (b) over HTTP, one member (demo application at /app): 200 new sessions,
#       100 of them asked for with a client-supplied id the cluster does not
#       hold (a cookie, or /app/;jsessionid=): every answer has a new id of the
#       member's shape, all 200 distinct, none of them an id a client sent;
#   (c) the Set-Cookie of a new session: HttpOnly and path=/ by default;
#       with "SessionClusterCookieName JSESSIONID path=/;SameSite=Strict"
#       (at /app2) SameSite=Strict, and HttpOnly still; on https (mod_ssl, a
#       self-signed certificate made with openssl) Secure as well.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time);
use File::Temp ();
use SC::Cluster;
use SC::Test qw(need check app show valid_sid demo_module demo_conf);

my $SID_DRAW = SC::Cluster::repo_dir() . '/t/tools/sid_draw';
need(-x $SID_DRAW, "$SID_DRAW: run make t/tools/sid_draw");
my $DEMO_SO = demo_module();
my $LIB = $ENV{SC_LIBEXECDIR} || '/usr/lib/apache2/modules';
need(-f "$LIB/mod_ssl.so", "mod_ssl ($LIB/mod_ssl.so)");
my $OPENSSL = SC::Cluster::which('openssl');
need($OPENSSL, 'the openssl command (a self-signed certificate for https)');
need(SC::Cluster::which('curl'), 'the curl command (https requests)');

$SIG{ALRM} = sub { die "session_ids.t: time limit (90 s) reached\n" };
alarm 90;

# (a) sc_sid_new ------------------------------------------------------------
{
    my $N = 100_000;
    my $t0 = time;
    open my $fh, '-|', $SID_DRAW, $N, 'node7' or die "sid_draw: $!";
    my @ids = <$fh>;
    close $fh;
    my $rc = $?;
    chomp @ids;
    is($rc, 0, '(a) sid_draw exited 0');
    is(scalar @ids, $N, sprintf('(a) sid_draw printed %d ids (%.1fs)', $N, time - $t0));
    my @bad = grep { !/^[0-9A-Fa-f]{32}\.node7\z/ } @ids;
    is(scalar @bad, 0, '(a) every id is 32 hex digits, "." and the route') or diag("e.g. $bad[0]");
    my %seen;
    my $dups = grep { $seen{$_}++ } @ids;
    is($dups, 0, '(a) all ids are distinct');

    # digit counts per position; bit counts follow from them
    my @cnt = map { [ (0) x 16 ] } 0 .. 31;
    for my $id (@ids) {
        my $i = 0;
        $cnt[ $i++ ][ hex $_ ]++ for unpack '(A1)32', $id;
    }
    my $sd = sqrt($N / 4);
    my ($lo, $hi) = ($N / 2 - 5 * $sd, $N / 2 + 5 * $sd);
    my (@out, $min, $max);
    for my $bit (0 .. 127) {
        my ($pos, $shift) = (int($bit / 4), 3 - $bit % 4);
        my $ones = 0;
        $ones += $cnt[$pos][$_] for grep { ($_ >> $shift) & 1 } 0 .. 15;
        push @out, "bit $bit: $ones" if $ones < $lo || $ones > $hi;
        $min = $ones if !defined $min || $ones < $min;
        $max = $ones if !defined $max || $ones > $max;
    }
    ok(!@out, sprintf('(a) each of the 128 bits is 1 in [%d, %d] of the ids (seen %d-%d)',
                      $lo, $hi, $min, $max)) or diag(join "\n", @out);
    my (@chi, @high);
    my $e = $N / 16;
    for my $pos (0 .. 31) {
        my $x = 0;
        $x += ($_ - $e)**2 / $e for @{ $cnt[$pos] };
        push @chi, $x;
        push @high, sprintf('position %d: %.1f', $pos, $x) if $x >= 60;
    }
    my ($cmin, $cmax) = (sort { $a <=> $b } @chi)[0, -1];
    ok(!@high, sprintf('(a) every hex digit position is uniform: chi-square (15 dof) %.1f-%.1f, all below 60',
                       $cmin, $cmax)) or diag(join "\n", @high);
}

# (b), (c) a member over HTTP -----------------------------------------------
my $tmp = File::Temp->newdir(TEMPLATE => 'sc-ids-XXXXXX', TMPDIR => 1);
my ($crt, $key) = ("$tmp/cert.pem", "$tmp/key.pem");
{
    my $out = `"$OPENSSL" req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 2 -keyout "$key" -out "$crt" 2>&1`;
    need($? == 0 && -s $crt, "a self-signed certificate from openssl req: $out");
    chmod 0644, $key, $crt;
    chmod 0755, "$tmp";
}
my $SSL_PORT = SC::Cluster::free_port();
my $c = SC::Cluster->new(
    members    => 1,
    modules    => ['ssl'],
    extra_conf => demo_conf($DEMO_SO)
                . "<Location /app2>\n  Session On\n  SessionCluster On\n"
                . "  SessionClusterCookieName JSESSIONID path=/;SameSite=Strict\n"
                . "  SetHandler session-cluster-demo\n</Location>\n"
                . "Listen 127.0.0.1:$SSL_PORT\n"
                . "<VirtualHost 127.0.0.1:$SSL_PORT>\n  SSLEngine on\n"
                . "  SSLCertificateFile \"$crt\"\n  SSLCertificateKeyFile \"$key\"\n</VirtualHost>\n",
);
$c->start_all;

# (b) 200 new sessions, half asked for with an id of the client's
{
    srand(20261122);
    my $hex = sub { join '', map { sprintf '%X', int rand 16 } 1 .. 32 };
    my (%got, %sent, %used, @bad);
    for my $i (1 .. 200) {
        my ($r, $mine);
        if ($i % 4 == 1) {
            $mine = $hex->() . '.node1';                 # our shape, not held
            $r = app($c, 'node1', 'auto', $mine);
        }
        elsif ($i % 4 == 2) {
            $mine = $hex->() . '.node1';
            $r = app($c, 'node1', 'auto', path => "/;jsessionid=$mine");
        }
        else {
            $r = app($c, 'node1', 'auto');
        }
        $sent{ lc $mine } = 1 if defined $mine;
        # the id the answer was served with: its Session line, or for a new
        # session the id its Set-Cookie gives
        $used{ lc $r->{sid} } = 1 if defined $r->{sid};
        my $id = $r->{cookie};
        if ($r->{status} != 200 || !valid_sid($id, 'node1') || ($r->{counter} // '') ne '1') {
            push @bad, "request $i: " . show($r);
            next;
        }
        push @bad, "request $i: the id $id was given twice" if $got{ lc $id }++;
        push @bad, "request $i: the client's id $id was adopted" if defined $mine && lc $id eq lc $mine;
    }
    ok(!@bad, '(b) 200 requests each got a new session with a fresh id of the shape 32 hex . node1')
        or diag(join "\n", @bad[0 .. ($#bad > 4 ? 4 : $#bad)]);
    is(scalar keys %got, 200, '(b) 200 distinct ids');
    is(scalar keys %sent, 100, '(b) clients sent 100 distinct ids of their own');
    is(scalar(grep { $sent{$_} } keys %got, keys %used), 0,
       '(b) none of the ids given or served with is one of the 100 ids clients sent');
}

# (c) cookie attributes
{
    my $r = app($c, 'node1', 'auto');
    my $sc = $r->{headers}{'set-cookie'} // '';
    like($sc, qr/^JSESSIONID=[0-9A-Fa-f]{32}\.node1;/, "(c) default: Set-Cookie: $sc");
    like($sc, qr/;\s*HttpOnly\b/i, '(c) default: HttpOnly');
    like($sc, qr/;\s*path=\//i, '(c) default: path=/');
    unlike($sc, qr/;\s*Secure\b/i, '(c) default on http: not Secure');

    $r = app($c, 'node1', 'auto', path => '2');
    $sc = $r->{headers}{'set-cookie'} // '';
    like($sc, qr/^JSESSIONID=[0-9A-Fa-f]{32}\.node1;/, "(c) SameSite=Strict given: Set-Cookie: $sc")
        or diag(show($r));
    like($sc, qr/;\s*SameSite=Strict\b/, '(c) ... SameSite=Strict');
    like($sc, qr/;\s*HttpOnly\b/i, '(c) ... and HttpOnly still');

    open my $fh, '-|', 'curl', '-s', '-S', '-k', '-i', '--max-time', 5,
        "https://127.0.0.1:$SSL_PORT/app?auto" or die "curl: $!";
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    my $rc = $? >> 8;
    my ($hs) = $out =~ /^Set-Cookie:\s*(JSESSIONID=[^\r\n]*)/mi;
    ok($rc == 0 && $hs, '(c) https: a new session has a Set-Cookie') or diag($out);
    $hs //= '';
    like($hs, qr/;\s*Secure\b/i, "(c) https: Secure ($hs)");
    like($hs, qr/;\s*HttpOnly\b/i, '(c) https: HttpOnly');
}
unlike($c->error_log('node1'), qr/exit signal|Segmentation|AH00052/, 'no crash in the error_log');
$c->teardown;
done_testing();
