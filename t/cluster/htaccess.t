#!perl
# SessionCluster and SessionClusterCookieName in .htaccess files (AllowOverride
# AuthConfig), two static members (event MPM, threaded), the demo application:
#   /ht/   .htaccess: Session On, SessionCluster On, SessionClusterCookieName HTSESS path=/ht
#   /ht2/  .htaccess: Session On, SessionCluster On, SessionClusterCookieName HT2SESS path=/ht2
#   /app   <Location> in httpd.conf: SessionCluster On (cookie JSESSIONID)
#   - the .htaccess settings apply to their directory only: a session made
#     under /ht has the cookie HTSESS (path=/ht), under /ht2 HT2SESS, under
#     /app JSESSIONID; a session made under /ht on node1 is read under /ht on
#     node2 with its counter (each member reads its own .htaccess), where it
#     is re-bound to node2 and its new cookie has the .htaccess name;
#   - 6 clients at once make 300 requests under /ht and /ht2 on node1 (each
#     request reads the .htaccess again); every answer has its directory's
#     cookie name and a counter one more than the last;
#   - the status page's configuration (?json "configuration", five times, so
#     that it is served by the children that parsed the .htaccess files) is the
#     same before and after, holds the Location line of httpd.conf and no line
#     from a .htaccess file (the page shows the configuration read at startup
#     only: README); no crash in node1's error_log.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use JSON::PP ();
use POSIX ();
use File::Temp qw(tempdir);
use SC::Cluster;
use SC::Test qw(status_of member_on check within demo_module demo_conf);

$SIG{ALRM} = sub { die "htaccess.t: time limit (90 s) reached\n" };
alarm 90;

my $DEMO_SO = demo_module();
my $TMP = tempdir('sc-htaccess-XXXXXX', TMPDIR => 1, CLEANUP => 1);

my %DIRS = (ht => [ 'HTSESS', 'path=/ht' ], ht2 => [ 'HT2SESS', 'path=/ht2' ]);

my $c = SC::Cluster->new(
    members    => 2,
    extra_conf => sub {
        my ($m) = @_;
        my $x = demo_conf($DEMO_SO);
        for my $d (sort keys %DIRS) {
            $x .= qq{<Directory "$m->{htdocs}/$d">\n  AllowOverride AuthConfig\n}
                . qq{  SetHandler session-cluster-demo\n  Require all granted\n</Directory>\n};
        }
        return $x;
    },
);
for my $n ($c->members) {
    my $m = $c->member($n);
    for my $d (sort keys %DIRS) {
        mkdir "$m->{htdocs}/$d" or die "mkdir: $!";
        chmod 0755, "$m->{htdocs}/$d";
        open my $fh, '>', "$m->{htdocs}/$d/.htaccess" or die "$d/.htaccess: $!";
        print $fh "Session On\nSessionCluster On\nSessionClusterCookieName $DIRS{$d}[0] $DIRS{$d}[1]\n";
        close $fh;
        chmod 0644, "$m->{htdocs}/$d/.htaccess";
    }
}

# GET $path?$q on $n with cookie $name=$id: { status, name, id, attrs (the
# Set-Cookie after the id), session, counter, body }
sub req {
    my ($n, $path, $q, $name, $id) = @_;
    my %h = defined $id ? (Cookie => "$name=$id") : ();
    my ($s, $h, $b) = $c->get($n, "$path?$q", headers => \%h, timeout => 5);
    my %r = (status => $s, body => $b // '');
    if (($h->{'set-cookie'} // '') =~ /^([^=;\s]+)=([^;,\s]+)(.*)$/) {
        @r{qw(name id attrs)} = ($1, $2, $3);
    }
    for (split /\n/, $b // '') {
        $r{lc $1} = $2 if /^(Session|Counter): ?(.*)$/;
    }
    return \%r;
}

sub show { my ($r) = @_; return "status $r->{status}, Set-Cookie " . ($r->{name} // '-') . '=' . ($r->{id} // '-') . ($r->{attrs} // '') . "\n$r->{body}" }

# the configuration lines of $n's page (?json), or undef and why
sub config_lines {
    my ($n) = @_;
    my ($s, $h, $b) = $c->get($n, '/cluster-manager?json', timeout => 5);
    return (undef, "no answer: status $s " . ($h->{_error} // '')) unless $s == 200;
    my $j = eval { JSON::PP::decode_json($b) } or return (undef, "not JSON: $@");
    return ref $j->{configuration} eq 'ARRAY' ? ($j->{configuration}) : (undef, 'no configuration array');
}

# ===========================================================================
$c->start_all;
check(within(20, sub { my $m = member_on($c, 'node1', 'node2'); my $o = member_on($c, 'node2', 'node1');
                       $m && $m->{state} eq 'alive' && $o && $o->{state} eq 'alive' }),
      $c, 'node1 and node2 see each other alive');

my ($before, $why) = config_lines('node1');
diag("node1's page: $why") unless $before;
ok($before && @$before > 20, 'node1\'s page shows the configuration (' . scalar(@{ $before || [] }) . ' lines)');
$before ||= [];
my @loc = grep { /^Location / } @$before;
ok((grep { m{^Location /app: SessionCluster On  # \S+httpd\.conf:\d+$} } @loc) == 1,
   'the page lists the <Location /app> of httpd.conf') or diag(join "\n", @loc);
ok(!grep({ /htaccess/ } @$before), 'the page lists nothing from a .htaccess file before any request');

# the settings of each .htaccess apply to its directory -----------------------
my %made;
for my $d (sort keys %DIRS) {
    my ($cookie, $attrs) = @{ $DIRS{$d} };
    my $r = req('node1', "/$d/page", 'auto');
    ok($r->{status} == 200 && ($r->{name} // '') eq $cookie && ($r->{counter} // '') eq '1',
       "/$d on node1: a new session with the cookie $cookie (from /$d/.htaccess)") or diag(show($r));
    like($r->{attrs} // '', qr/;\s*\Q$attrs\E(?:;|$)/i, "/$d: the cookie has $attrs") or diag(show($r));
    my $r2 = req('node1', "/$d/page", 'auto', $cookie, $r->{id});
    ok(($r2->{session} // '') eq ($r->{id} // 'none') && ($r2->{counter} // '') eq '2',
       "/$d on node1: the cookie $cookie brings the session back (counter 2)") or diag(show($r2));
    # node2 re-binds the id to its route (Tomcat's default JvmRouteBinderValve):
    # the same 32 hex digits, and a new cookie under the .htaccess name
    my $r3;
    my ($hex) = ($r->{id} // 'none') =~ /^([0-9A-F]{32})\./;
    $hex //= 'none';
    my $ok = within(10, sub { $r3 = req('node2', "/$d/page", 'read', $cookie, $r->{id});
                              ($r3->{session} // '') =~ /^\Q$hex\E\.node[12]$/ && ($r3->{counter} // '') eq '2' });
    ok($ok, "/$d on node2 (its own .htaccess): the session made on node1, counter 2") or diag(show($r3));
    ok(($r3->{name} // '') eq $cookie && ($r3->{id} // '') eq "$hex.node2",
       "/$d on node2: the session re-bound to node2, its new cookie named $cookie") or diag(show($r3));
    $made{$d} = [ $r->{id}, 2 ];
}
{
    my $r = req('node1', '/app', 'auto');
    ok(($r->{name} // '') eq 'JSESSIONID' && ($r->{counter} // '') eq '1',
       '/app (httpd.conf): the cookie JSESSIONID, not a .htaccess name') or diag(show($r));
}

# many requests at once, each reading the .htaccess files again -------------------
my $KIDS = 6;
my $PER  = 50;
my @pids;
for my $k (1 .. $KIDS) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my ($good, @bad) = (0);
        my %last;
        for my $i (1 .. $PER) {
            my $d = ($i + $k) % 2 ? 'ht' : 'ht2';
            my ($cookie) = @{ $DIRS{$d} };
            my $r = req('node1', "/$d/k$k", 'auto', $cookie, $last{$d} ? $last{$d}[0] : undef);
            my $want = $last{$d} ? $last{$d}[1] + 1 : 1;
            if ($r->{status} == 200 && ($r->{counter} // '') eq $want
                && (!$last{$d} || ($r->{session} // '') eq $last{$d}[0])
                && ($last{$d} || ($r->{name} // '') eq $cookie)) {
                $good++;
                $last{$d} = [ $last{$d} ? $last{$d}[0] : $r->{id}, $want ];
            }
            else {
                push @bad, "kid $k request $i /$d: " . show($r);
            }
        }
        open my $fh, '>', "$TMP/kid$k" or POSIX::_exit(2);
        print $fh "$good\n", map { "$_\n" } @bad[0 .. ($#bad < 4 ? $#bad : 4)];
        close $fh;
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
waitpid($_, 0) for @pids;
{
    my ($good, @bad) = (0);
    for my $k (1 .. $KIDS) {
        open my $fh, '<', "$TMP/kid$k" or do { push @bad, "kid $k reported nothing"; next };
        my @l = <$fh>;
        $good += shift(@l) // 0;
        push @bad, @l;
    }
    is($good, $KIDS * $PER, "$good of " . $KIDS * $PER . ' requests from 6 clients at once under /ht and /ht2 '
       . 'answered with their directory\'s session and counter') or diag(join '', @bad);
}

# the page: the configuration read at startup, unchanged -------------------------
my ($same, $seen) = (0, 0);
my @diff;
for my $i (1 .. 5) {
    my ($after, $why) = config_lines('node1');
    if (!$after) {
        push @diff, "page $i: $why";
        next;
    }
    $seen++;
    if (join("\n", @$after) eq join("\n", @$before)) {
        $same++;
    }
    else {
        push @diff, "page $i: before " . scalar(@$before) . " lines, now " . scalar(@$after)
                    . "; Location lines now: " . scalar(grep { /^Location / } @$after),
                    grep { defined } (grep { /^Location / } @$after)[0 .. 5];
    }
}
is($seen, 5, 'node1\'s page answered five times after the requests') or diag(join "\n", @diff);
is($same, 5, 'the page\'s configuration is the same as before the requests, each time '
   . '(no line from a .htaccess file, nothing freed)') or diag(join "\n", @diff);
{
    my ($s, undef, $b) = $c->get('node1', '/cluster-manager?auto', timeout => 5);
    ok($s == 200 && $b !~ /htaccess/, 'the ?auto page names no .htaccess file');
}
my $log = $c->error_log('node1');
unlike($log, qr/exit signal|Segmentation|AH00052|double free|corrupted/,
       'no crash in node1\'s error_log');

$c->teardown;
done_testing();
