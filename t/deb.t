#!perl
# The Debian package on this machine's own apache2 (issue 23): built with
# `make deb` (or $SC_DEB, a .deb built already), installed with dpkg -i,
# enabled with a2enmod, checked with apache2ctl, run, and purged.
#   1. The package holds the module, the a2enmod .load and .conf, the
#      reference pages and the manual page mod_session_cluster(8), and
#      depends on apache2-api-*.
#   2. dpkg -i: its postinst enables the module (a2query: "enabled by
#      maintainer script"; the system's apache2 is not restarted: a
#      policy-rc.d denying it is there, or the test puts one there while it
#      runs).  a2enmod session_cluster enables it and
#      mod_session (the .load's "# Depends: session"); apache2ctl -t says
#      Syntax OK and apache2ctl -M lists session_module and
#      session_cluster_module: the commented .conf changes nothing.
#   3. An httpd of the system's apache2, from the system's mods-enabled, on a
#      free loopback port, with the member block of the installed
#      session_cluster.conf uncommented as its comment says (sed), its
#      addresses, ports and key replaced, and the demo application (from the
#      build tree) at its /app: it maps the installed .so; /app answers with
#      a JSESSIONID cookie of 32 hex digits and ".node1", and with that cookie
#      the counter says 2 (the session lived in the cluster's store);
#      /cluster-manager?auto says Route node1, a ready engine, DeltaManager,
#      AES-GCM, one session and the effective configuration; the HTML page
#      its title.  It stops, with every process it started.
#   4. a2dismod session_cluster (and mod_session when the test enabled it),
#      dpkg --purge: the package's files are gone, /etc/apache2 is as found
#      (compared file by file), /var/lib/apache2 keeps no record of the
#      module (only a2enmod's of mod_session when the test enabled it: put
#      back as found), the system's apache2 runs (or not) as before, its
#      init links are unchanged, and a mod_session_cluster.so that was in
#      the module directory before is back.
# Needs root, dpkg-buildpackage and debhelper (build/install-deps.sh), and the
# demo module (make).  Takes the lock /tmp/sc-deb-test.lock: one at a time.
# Skipped when the package is installed already (the test would remove it).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use Fcntl qw(:flock);
use File::Find ();
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(need within demo_module);

my $LIMIT = 300;
$SIG{ALRM} = sub { die "deb.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;

my $PKG = 'libapache2-mod-session-cluster';
my $REPO = SC::Cluster::repo_dir();
my $MODSO = '/usr/lib/apache2/modules/mod_session_cluster.so';
my $POLICY = '/usr/sbin/policy-rc.d';
my $T0 = time;

need($> == 0, 'root (dpkg -i, a2enmod)');
need(-d '/etc/apache2/mods-available' && -x '/usr/sbin/a2enmod', "Debian's apache2 (a2enmod)");
need(SC::Cluster::which('dpkg-buildpackage') || $ENV{SC_DEB}, 'dpkg-buildpackage (apt-get install dpkg-dev debhelper)');
my $DEMO_SO = $ENV{SC_DEMO_SO} || demo_module();

sub run {            # (exit status, output) of a shell command
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out);
}
sub slurp { my ($f) = @_; open my $fh, '<', $f or return undef; local $/; return <$fh> }
sub spew { my ($f, $s) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $s; close $fh }
sub installed {
    my ($rc, $out) = run("dpkg-query -W -f='\${Status}' $PKG");
    return $rc == 0 && $out =~ /\binstall ok installed\b|\bconfig-files\b|half/ ? 1 : 0;
}

if (installed()) {
    plan skip_all => "$PKG is installed on this machine: the test would remove it";
}

open my $lock, '>>', '/tmp/sc-deb-test.lock' or die "lock: $!";
my $locked = within(240, sub { flock($lock, LOCK_EX | LOCK_NB) });
need($locked, 'the lock /tmp/sc-deb-test.lock (another deb.t holds it)');

my $tmp = tempdir('sc-deb-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{SC_KEEP});
chmod 0755, $tmp;

# ---------------------------------------------------------------------------
# What the machine looks like before: /etc/apache2 and a2enmod's records in
# /var/lib/apache2 file by file, the init links, the system's apache2, an
# unpackaged mod_session_cluster.so.
# ---------------------------------------------------------------------------
sub snapshot {
    my ($root) = @_;
    my %s;
    return \%s unless -d $root;
    File::Find::find({ no_chdir => 1, wanted => sub {
        my $p = $File::Find::name;
        my @st = lstat $p or return;
        if (-l _)   { $s{$p} = { type => 'l', to => readlink($p) } }
        elsif (-d _) { $s{$p} = { type => 'd', mode => $st[2] & 07777 } }
        elsif (-f _) { my $c = slurp($p); $s{$p} = { type => 'f', mode => $st[2] & 07777,
                                                     data => $c, sum => sha256_hex($c // '') } }
    } }, $root);
    return \%s;
}
sub differences {
    my ($a, $b) = @_;
    my @d;
    for my $p (sort keys %{ { %$a, %$b } }) {
        my ($x, $y) = ($a->{$p}, $b->{$p});
        if (!$x) { push @d, "new: $p" }
        elsif (!$y) { push @d, "gone: $p" }
        elsif ($x->{type} ne $y->{type} || ($x->{to} // '') ne ($y->{to} // '')
               || ($x->{sum} // '') ne ($y->{sum} // '') || ($x->{mode} // 0) != ($y->{mode} // 0)) {
            push @d, "changed: $p";
        }
    }
    return @d;
}
sub restore {
    my ($want, $root) = @_;
    my $now = snapshot($root);
    for my $p (sort { length $b <=> length $a } keys %$now) {      # deepest first
        next if $want->{$p} && $want->{$p}{type} eq $now->{$p}{type};
        $now->{$p}{type} eq 'd' ? rmdir $p : unlink $p;
    }
    for my $p (sort { length $a <=> length $b } keys %$want) {      # parents first
        my $w = $want->{$p};
        if ($w->{type} eq 'd') { mkdir $p unless -d $p; chmod $w->{mode}, $p }
        elsif ($w->{type} eq 'l') {
            next if -l $p && readlink($p) eq $w->{to};
            unlink $p; symlink $w->{to}, $p;
        }
        else {
            my @st = lstat $p;
            next if @st && -f _ && sha256_hex(slurp($p) // '') eq $w->{sum} && ($st[2] & 07777) == $w->{mode};
            unlink $p; spew($p, $w->{data} // ''); chmod $w->{mode}, $p;
        }
    }
}
sub init_links {
    return join "\n", sort map { "$_ -> " . (readlink($_) // '') }
        grep { /apache2/ } (glob('/etc/rc?.d/*'), glob('/etc/systemd/system/*.wants/*'));
}
sub system_apache2 {       # pid of the system's apache2 (apache2ctl start), or 0
    my $pid = (slurp('/var/run/apache2/apache2.pid') // '') =~ /(\d+)/ ? $1 : 0;
    return $pid && kill(0, $pid) ? $pid : 0;
}

my %before = (etc => snapshot('/etc/apache2'), var => snapshot('/var/lib/apache2'),
              links => init_links(), running => system_apache2() ? 1 : 0,
              so => -e $MODSO ? slurp($MODSO) : undef);
my $session_was_enabled = -e '/etc/apache2/mods-enabled/session.load';

my ($httpd_pid, $conf_path, $state, $policy_made) = (0, undef, 'clean', 0);

# Puts the machine back however the test ends: our httpd stopped, the package
# purged, /etc/apache2 and /var/lib/apache2 as found, the .so as found.
sub put_back {
    return if $state eq 'clean';
    stop_httpd() if $httpd_pid;
    run("dpkg --purge $PKG") if installed();
    run('apache2ctl stop') if system_apache2() && !$before{running};
    restore($before{etc}, '/etc/apache2');
    restore($before{var}, '/var/lib/apache2');
    if (defined $before{so} && (slurp($MODSO) // '') ne $before{so}) {
        spew($MODSO, $before{so});
        chmod 0644, $MODSO;
    }
    if ($policy_made && (slurp($POLICY) // '') =~ /t\/deb\.t \(pid $$\)/) {
        unlink $POLICY;
        $policy_made = 0;
    }
    $state = 'clean';
}
END { put_back() if $state && $state ne 'clean' }
for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub { put_back(); exit 1 };
}

# ---------------------------------------------------------------------------
# 1. The package
# ---------------------------------------------------------------------------
my $deb = $ENV{SC_DEB};
if (!$deb) {
    my $dir = "$tmp/deb";
    my $t = time;
    my ($rc, $out) = run("make -C '$REPO' deb DEB_DIR='$dir'");
    ok($rc == 0, sprintf('make deb builds the package (%.0f s)', time - $t))
        or diag(substr($out, -3000));
    ($deb) = glob("$dir/${PKG}_*.deb");
}
ok($deb && -f $deb, 'the .deb: ' . ($deb // 'none')) or BAIL_OUT('no package');
$deb = abs_path($deb);
my (undef, $list) = run("dpkg-deb -c '$deb'");
my (undef, $info) = run("dpkg-deb -f '$deb' Depends");
for my $f ($MODSO, '/etc/apache2/mods-available/session_cluster.load',
           '/etc/apache2/mods-available/session_cluster.conf',
           "/usr/share/doc/$PKG/directives.md", "/usr/share/doc/$PKG/cluster-elements.md",
           "/usr/share/doc/$PKG/status-page.md", "/usr/share/doc/$PKG/prometheus.md",
           "/usr/share/doc/$PKG/examples/session_cluster_alerts.yml",
           '/usr/share/man/man8/mod_session_cluster.8') {
    ok($list =~ m{ \.\Q$f\E(?:\.gz)?$}m, "the package holds $f");
}
unlike($list, qr/demo/, 'the demo application is left out');
like($info, qr/apache2-api-\d+/, "it depends on httpd's module API ($info)");

# ---------------------------------------------------------------------------
# 2. dpkg -i, a2enmod, apache2ctl
# ---------------------------------------------------------------------------
# The package's postinst enables the module and restarts the system's apache2
# through invoke-rc.d, as every Debian module package does, unless a policy
# (policy-rc.d, exit 101) denies it, as in containers.  Without one, the test
# puts one there while it runs (and removes it).
if (!-e $POLICY) {
    spew($POLICY, "#!/bin/sh\n# t/deb.t (pid $$): no service starts while it installs its package\nexit 101\n");
    chmod 0755, $POLICY;
    $policy_made = 1;
}
my $denies = (system("$POLICY apache2 restart >/dev/null 2>&1") >> 8) == 101;
note($policy_made ? "$POLICY put there for the test"
     : $denies ? "$POLICY denies service restarts"
     : "$POLICY allows service restarts: the system's apache2 may be restarted (and is stopped again at the end if it did not run)");
$state = 'installing';
{
    my ($rc, $out) = run("dpkg -i '$deb'");
    is($rc, 0, 'dpkg -i installs it') or diag($out);
}
ok(installed(), 'dpkg-query: installed');
{
    my ($rc, $out) = run('a2query -m session_cluster');
    ok($rc == 0 && $out =~ /enabled by maintainer script/, "its postinst enabled the module (a2query: $out)");
}
my ($rc, $out) = run('a2enmod session_cluster');
is($rc, 0, 'a2enmod session_cluster') or diag($out);
ok(-l '/etc/apache2/mods-enabled/session_cluster.load', 'mods-enabled/session_cluster.load');
ok(-l '/etc/apache2/mods-enabled/session_cluster.conf', 'mods-enabled/session_cluster.conf');
ok(-e '/etc/apache2/mods-enabled/session.load', 'mod_session enabled with it (# Depends: session)');
($rc, $out) = run('apache2ctl -t');
ok($rc == 0 && $out =~ /Syntax OK/, 'apache2ctl -t: Syntax OK') or diag($out);
($rc, $out) = run('apache2ctl -M');
like($out, qr/^\s*session_module \(shared\)/m, 'apache2ctl -M: session_module');
like($out, qr/^\s*session_cluster_module \(shared\)/m, 'apache2ctl -M: session_cluster_module');

# ---------------------------------------------------------------------------
# 3. A member on the system's apache2
# ---------------------------------------------------------------------------
my $installed_conf = slurp('/etc/apache2/mods-available/session_cluster.conf') // '';
my ($sed_cmd) = $installed_conf =~ /^#\s+(sed -i '[^']+')/m;
ok($sed_cmd, "the .conf says how to uncomment its member block ($sed_cmd)");
my $block = '';
if ($sed_cmd) {
    spew("$tmp/member.conf", $installed_conf);
    my ($src, $out2) = run("$sed_cmd '$tmp/member.conf'");
    my $all = slurp("$tmp/member.conf");
    ($block) = $all =~ /^(# BEGIN member block\n.*^# END member block\n)/ms;
    ok($block && $block !~ /^#[^#\s]/m, 'its member block, uncommented as its comment says') or diag($all);
}
my ($http, $recv, $peer) = map { SC::Cluster::free_port() } 1 .. 3;
my $key = join '', map { sprintf '%02x', int rand 256 } 1 .. 32;
my $n = 0;
$n += $block =~ s/address="192\.0\.2\.11" port="4000"/address="127.0.0.1" port="$recv"/;
$n += $block =~ s/host="192\.0\.2\.12" port="4000"/host="127.0.0.1" port="$peer"/;
$n += $block =~ s/encryptionKey="REPLACE-WITH-[^"]*"/encryptionKey="$key"/;
is($n, 3, 'the block has the Receiver, Member and key to edit');

make_path("$tmp/run", "$tmp/htdocs");
chmod 0755, "$tmp/run", "$tmp/htdocs";
$conf_path = "$tmp/httpd.conf";
spew($conf_path, <<"EOC");
# deb.t: the system's apache2 with the modules a2enmod enabled
ServerRoot "/etc/apache2"
Include /etc/apache2/mods-enabled/*.load
Include /etc/apache2/mods-enabled/*.conf
LoadModule session_cluster_demo_module "$DEMO_SO"
Listen 127.0.0.1:$http
ServerName localhost
User www-data
Group www-data
PidFile "$tmp/run/httpd.pid"
DefaultRuntimeDir "$tmp/run"
Mutex file:$tmp/run default
ErrorLog "$tmp/error.log"
LogLevel warn
DocumentRoot "$tmp/htdocs"
<Directory "$tmp/htdocs">
    Require all granted
</Directory>

$block
<Location /app>
    SetHandler session-cluster-demo
</Location>
EOC
{
    local %ENV = (%ENV, APACHE_RUN_USER => 'www-data', APACHE_RUN_GROUP => 'www-data',
                  APACHE_RUN_DIR => "$tmp/run", APACHE_LOCK_DIR => "$tmp/run",
                  APACHE_LOG_DIR => $tmp, APACHE_PID_FILE => "$tmp/run/httpd.pid");
    ($rc, $out) = run("/usr/sbin/apache2 -f '$conf_path' -k start");
}
is($rc, 0, 'apache2 starts with the member block') or diag($out . (slurp("$tmp/error.log") // ''));
$state = 'running';
within(15, sub { ($httpd_pid) = (slurp("$tmp/run/httpd.pid") // '') =~ /(\d+)/; $httpd_pid && kill 0, $httpd_pid });
ok($httpd_pid, "its pid ($httpd_pid)");
like(slurp("/proc/$httpd_pid/maps") // '', qr{\Q$MODSO\E}, 'it runs the installed module');

my $ua = HTTP::Tiny->new(timeout => 5);
my $base = "http://127.0.0.1:$http";
my $page = {};
my $ready = within(30, sub {
    my $r = $ua->get("$base/cluster-manager?auto");
    return 0 unless $r->{status} == 200;
    $page = { map { /^(\w+): ?(.*)$/ ? ($1 => $2) : () } split /\n/, $r->{content} };
    $page->{_body} = $r->{content};
    return ($page->{EngineState} // '') eq 'ready';
});
ok($ready, 'its engine is ready (EngineState: ' . ($page->{EngineState} // '?') . ')')
    or diag(slurp("$tmp/error.log"));

my $r = $ua->get("$base/app?auto");
is($r->{status}, 200, '/app answers 200');
my $cookie = $r->{headers}{'set-cookie'} // '';
$cookie = join ', ', @$cookie if ref $cookie;
my ($sid) = $cookie =~ /JSESSIONID=([0-9A-Fa-f]{32}\.node1)\b/;
ok($sid, "with a JSESSIONID cookie of the member's shape ($cookie)");
$r = $ua->get("$base/app?auto", { headers => { Cookie => "JSESSIONID=" . ($sid // '') } });
like($r->{content} // '', qr/^Counter: 2$/m, 'with that cookie the counter says 2: the session was kept')
    or diag($r->{content});

$r = $ua->get("$base/cluster-manager?auto");
my $auto = $r->{content} // '';
is($r->{status}, 200, '/cluster-manager?auto answers 200');
like($auto, qr/^Route: node1$/m, 'the page: Route node1');
like($auto, qr/^EngineState: ready$/m, 'the page: EngineState ready');
like($auto, qr/^Manager: DeltaManager$/m, 'the page: Manager DeltaManager');
like($auto, qr/^Encryption: AES-GCM/m, 'the page: Encryption AES-GCM (the block\'s EncryptInterceptor)');
like($auto, qr/^SessionsActive: 1$/m, 'the page: SessionsActive 1');
like($auto, qr/^# mod_session_cluster [\d.]+ effective configuration$/m, 'the page: the effective configuration');
like($auto, qr/^SessionClusterRoute = node1  # \Q$conf_path\E:\d+$/m, 'the page: SessionClusterRoute from the block');
$r = $ua->get("$base/cluster-manager");
like($r->{content} // '', qr/<h1>Cluster Manager for /, 'the HTML page');

ok(stop_httpd(), 'apache2 stops, with every process it started');

# ---------------------------------------------------------------------------
# 4. a2dismod, dpkg --purge, the machine as found
# ---------------------------------------------------------------------------
($rc, $out) = run('a2dismod -q session_cluster');
is($rc, 0, 'a2dismod session_cluster') or diag($out);
ok(!-e '/etc/apache2/mods-enabled/session_cluster.load', 'mods-enabled/session_cluster.load gone');
run('a2dismod -q session') unless $session_was_enabled;
my (undef, $files) = run("dpkg -L $PKG");
my @files = grep { -f $_ && !-d $_ } split /\n/, $files;
($rc, $out) = run("dpkg --purge $PKG");
is($rc, 0, 'dpkg --purge removes it') or diag($out);
ok(!installed(), 'dpkg-query: not installed');
my @left = grep { -e $_ } @files;
ok(!@left, 'its ' . scalar(@files) . ' files are gone') or diag("left: @left");
my @diff = differences($before{etc}, snapshot('/etc/apache2'));
ok(!@diff, '/etc/apache2 is as found') or diag(join "\n", @diff);
# a2enmod/a2dismod of mod_session (the .load's dependency) leave their record
# of the admin's choice; the package's own records are purged
@diff = grep { !m{/module/\w+_by_admin(?:/session)?$} || $session_was_enabled }
        differences($before{var}, snapshot('/var/lib/apache2'));
ok(!@diff, "/var/lib/apache2: the package's a2enmod records are purged") or diag(join "\n", @diff);
restore($before{var}, '/var/lib/apache2');
ok(!differences($before{var}, snapshot('/var/lib/apache2')), "a2enmod's records in /var/lib/apache2 put back as found");
is(init_links(), $before{links}, "apache2's init links unchanged");
is(system_apache2() ? 1 : 0, $before{running}, "the system's apache2 " . ($before{running} ? 'runs' : 'does not run') . ' as before');
if (defined $before{so}) {
    spew($MODSO, $before{so});
    chmod 0644, $MODSO;
    note("$MODSO (not from the package) put back");
}
put_back();           # restores whatever a failed check above left
note(sprintf('deb.t took %.0f s', time - $T0));
done_testing();

# Stops our httpd (its parent's pid) and waits for every process whose command
# line names our configuration (children, the cluster engine); SIGKILL to
# those left after 15 s.  1 when none is left.
sub stop_httpd {
    return 1 unless $httpd_pid;
    run("/usr/sbin/apache2 -f '$conf_path' -k stop");
    kill 'TERM', $httpd_pid;
    my $ours = sub {
        grep { ((slurp("/proc/$_/cmdline") // '') =~ /\Q$conf_path\E/) } map { m{/(\d+)$} ? $1 : () } glob('/proc/[0-9]*');
    };
    my $gone = within(15, sub { !$ours->() });
    if (!$gone) {
        kill 'KILL', $ours->();
        within(5, sub { !$ours->() });
    }
    $httpd_pid = 0;
    $state = 'installed' if $state eq 'running';
    return $gone ? 1 : 0;
}
