package SC::ConfTest;
# Runs `httpd -t` on a generated httpd.conf that holds a given configuration
# text, so tests see exactly what an administrator sees: the exit status, the
# messages on stderr and the -D DUMP_CLUSTER output on stdout.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Spec;
use Cwd qw(abs_path);

use Exporter 'import';
our @EXPORT_OK = qw(httpd_t fixture repo_dir);

my $repo = abs_path(File::Spec->catdir(dirname(__FILE__), '..', '..', '..'));
sub repo_dir { $repo }

sub httpd_bin {
    # make check exports SC_HTTPD, SC_LIBEXECDIR and SC_MODULE_SO
    return $ENV{SC_HTTPD} || '/usr/sbin/apache2';
}

sub libexecdir {
    return $ENV{SC_LIBEXECDIR} || '/usr/lib/apache2/modules';
}

sub module_so {
    return $ENV{SC_MODULE_SO}
        || "$repo/mod_session_cluster/.libs/mod_session_cluster.so";
}

# The text of a fixture under t/fixtures.
sub fixture {
    my ($name) = @_;
    my $f = "$repo/t/fixtures/$name";
    open my $fh, '<', $f or die "cannot read $f: $!";
    local $/;
    return scalar <$fh>;
}

my $seq = 0;

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    my $t = <$fh>;
    return defined $t ? $t : '';
}

# httpd_t($text, route => 'node1', defines => [...], args => [...], preamble => '')
# writes $text into its own file, includes it from a minimal httpd.conf and runs
# httpd -t.  Returns a hash: status (exit code), out, err, file (the included
# file, for messages that name it), conf.
sub httpd_t {
    my ($text, %o) = @_;
    my $dir = "$repo/t/tmp/conftest-$$-" . $seq++;
    make_path("$dir/logs");
    my $file = "$dir/cluster.conf";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh;
    my $lib = libexecdir();
    my $so = module_so();
    my $route = exists $o{route} ? $o{route} : 'node1';
    my $conf = "$dir/httpd.conf";
    open $fh, '>', $conf or die "$conf: $!";
    print $fh <<"EOC";
ServerRoot "$dir"
LoadModule mpm_event_module $lib/mod_mpm_event.so
LoadModule authz_core_module $lib/mod_authz_core.so
LoadModule session_module $lib/mod_session.so
${\ join('', map { "LoadModule ${_}_module $lib/mod_$_.so\n" } @{ $o{modules_before} || [] }) }LoadModule session_cluster_module $so
ServerName localhost
Listen 127.0.0.1:1
PidFile "$dir/httpd.pid"
ErrorLog "$dir/logs/error_log"
DefaultRuntimeDir "$dir"
EOC
    print $fh "Define $_\n" for @{ $o{defines} || [] };
    print $fh "SessionClusterRoute $route\n" if defined $route;
    print $fh $o{preamble} if $o{preamble};
    print $fh "Include \"$file\"\n";
    close $fh;

    my @cmd = (httpd_bin(), '-f', $conf, '-t', @{ $o{args} || [] });
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/stdout" or die;
        open STDERR, '>', "$dir/stderr" or die;
        exec @cmd or die "exec $cmd[0]: $!";
    }
    waitpid $pid, 0;
    my $o_txt = slurp("$dir/stdout");
    my $e_txt = slurp("$dir/stderr");
    my $status = $? >> 8;
    remove_tree($dir) unless $ENV{SC_KEEP};
    return { status => $status, out => $o_txt, err => $e_txt, file => $file,
             conf => $conf, cmd => "@cmd" };
}

1;
