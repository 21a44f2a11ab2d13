#!perl
# The engine's local socket (README: "session-cluster.<parent pid>.sock in
# DefaultRuntimeDir ... mode 0600 and owned by httpd's User"), on a member
# started as root with User nobody (the harness's default as root):
#   - the page's EngineSocket names DefaultRuntimeDir/session-cluster.<pid>.sock,
#     with the parent's pid;
#   - it is a socket, mode 0600, owner httpd's User and Group;
#   - a process running as the User connects to it; one running as another
#     unprivileged user is refused (EACCES).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Errno qw(EACCES);
use Socket qw(AF_UNIX SOCK_STREAM pack_sockaddr_un);
use POSIX ();
use SC::Cluster;
use SC::Test qw(need status_of check);

need($> == 0, 'root (httpd starts as root and serves as User nobody)');
$SIG{ALRM} = sub { die "engine_socket.t: time limit (30 s) reached\n" };
alarm 30;

my $c = SC::Cluster->new(members => 1);
$c->start_all;
my $m = $c->member('node1');
my $p = status_of($c, 'node1') || {};
my $path = $p->{EngineSocket} // '';
my $want = "$m->{run_dir}/session-cluster.$m->{pid}.sock";
is($path, $want, "EngineSocket on the page is DefaultRuntimeDir/session-cluster.<parent pid>.sock");

my @st = stat $path;
check(scalar @st, $c, "the socket exists ($path)");
ok(-S _, 'it is a socket');
is(sprintf('%04o', ($st[2] // 0) & 07777), '0600', 'its mode is 0600');
my ($uid, $gid) = ((getpwnam($c->{user}))[2], (getgrnam($c->{group}))[2]);
ok(defined $uid && defined $gid && $uid != 0, "httpd's User $c->{user} ($uid) and Group $c->{group} ($gid) exist");
is($st[4], $uid, "its owner is httpd's User ($c->{user})");
is($st[5], $gid, "its group is httpd's Group ($c->{group})");

# Connects to the socket as $user in a child process: 'ok' or the errno text
# (and the errno number after a '/').
sub connect_as {
    my ($user) = @_;
    my ($u, $g) = ((getpwnam($user))[2], (getpwnam($user))[3]);
    return "no user $user" unless defined $u;
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        $) = "$g $g";
        $( = $g;
        $< = $> = $u;
        my $res;
        if ($> != $u) { $res = "setuid $user failed" }
        elsif (!socket(my $s, AF_UNIX, SOCK_STREAM, 0)) { $res = "socket: $!" }
        elsif (connect($s, pack_sockaddr_un($path))) { $res = 'ok' }
        else { $res = "$!/" . ($! + 0) }
        print $w $res;
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    my $res = do { local $/; <$r> } // '';
    close $r;
    waitpid $pid, 0;
    return $res;
}

is(connect_as($c->{user}), 'ok', "a process running as $c->{user} (httpd's User) connects");
my $other = getpwnam('daemon') ? 'daemon' : 'bin';
my $res = connect_as($other);
like($res, qr{/${\ EACCES}$}, "a process running as $other is refused: permission denied ($res)");

unlike($c->error_log('node1'), qr/SC1210|SC1211/, 'no SC1210 / SC1211 (socket not made or not given to the User)');
$c->teardown;
done_testing();
