package SC::DNS;

# A dnsmasq in one member's network namespace, and every member's resolver
# pointed at it, for the CloudMembershipService DNS tests (cloud_dns.t,
# dns_env.t).  Each namespace's /etc/resolv.conf is
# /etc/netns/<ns>/resolv.conf, which `ip netns exec` bind-mounts over
# /etc/resolv.conf.
#
#   my $DNSMASQ = SC::DNS::dnsmasq();          # need()s it
#   my $dns = SC::DNS->new('sc-xxx-XXXXXX');   # a temporary directory
#   my $c = SC::Cluster->new(..., netns => 1);
#   $dns->install_signal_handlers;             # after SC::Cluster->new
#   $dns->write_file($dns->dir . '/members.hosts', "10.x.y.z name\n");
#   $dns->resolv_conf($c, $server_addr);       # /etc/netns/<ns>/resolv.conf
#   $dns->start($c, 'node1', dnsmasq => $DNSMASQ, addr => $server_addr,
#                hosts => ..., domain => 'x.test', args => [...]);
#   $dns->reap / stop / remove_etc / cleanup; $dns->pid, reaped, status
#
# What it makes (dnsmasq, /etc/netns/<ns>, /etc/netns) is removed from
# END, on HUP/INT/TERM (install_signal_handlers) and by cleanup().

use strict;
use warnings;

use SC::Cluster ();    # compiled first: its END (the namespaces) runs after ours
use SC::Test qw(need);
use Test::More ();
use Time::HiRes qw(time sleep);
use POSIX qw(WNOHANG);
use File::Temp ();
use File::Path qw(remove_tree);

my @LIVE;    # objects whose things END removes

# The dnsmasq binary (need()s it: its absence fails the test file).
sub dnsmasq {
    my ($bin) = grep { -x } ('/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/sbin/dnsmasq',
                             map { "$_/dnsmasq" } split /:/, $ENV{PATH} || '');
    need($bin, 'dnsmasq (apt-get install dnsmasq-base; build/install-deps.sh does)');
    return $bin;
}

sub new {
    my ($class, $template) = @_;
    my $self = bless {
        pid => undef,             # dnsmasq: our child (`ip netns exec` execs it in place)
        reaped => 0,
        status => undef,
        etc_made => [],           # /etc/netns/<ns> directories made here
        etc_netns_made => 0,      # /etc/netns itself made here
        tmp => File::Temp->newdir($template, TMPDIR => 1),
    }, $class;
    chmod 0755, "$self->{tmp}";   # dnsmasq drops to its own user and re-reads the hosts file
    push @LIVE, $self;
    return $self;
}

sub dir    { "$_[0]{tmp}" }
sub pid    { $_[0]{pid} }
sub reaped { $_[0]{reaped} }
sub status { $_[0]{status} }
sub etc_netns_made { $_[0]{etc_netns_made} }

sub reap {
    my ($self) = @_;
    return 1 if $self->{reaped} || !$self->{pid};
    my $w = waitpid($self->{pid}, WNOHANG);
    @$self{qw(status reaped)} = ($?, 1) if $w == $self->{pid} || $w < 0;
    return $self->{reaped};
}

sub stop {
    my ($self) = @_;
    return 1 if !$self->{pid} || $self->reap;
    # not reaped yet, so the pid is still our child's: safe to signal
    kill 'TERM', $self->{pid};
    my $deadline = time + 5;
    until ($self->reap) {
        if (time > $deadline) {
            kill 'KILL', $self->{pid};
            waitpid($self->{pid}, 0);
            @$self{qw(status reaped)} = ($?, 1);
            last;
        }
        sleep 0.02;
    }
    return 1;
}

sub remove_etc {
    my ($self) = @_;
    while (my $d = pop @{ $self->{etc_made} }) {
        remove_tree($d) if -d $d;
    }
    if ($self->{etc_netns_made}) {
        rmdir '/etc/netns';        # only when empty (someone else may use it now)
        $self->{etc_netns_made} = 0;
    }
}

sub cleanup {
    my ($self) = @_;
    local ($?, $!, $@);
    eval { $self->stop; 1 } or Test::More::diag("cleanup: dnsmasq: $@");
    eval { $self->remove_etc; 1 } or Test::More::diag("cleanup: /etc/netns: $@");
}

END { $_->cleanup for @LIVE }

# Set after SC::Cluster->new, so that ours runs first (dnsmasq is gone before
# the harness deletes the namespace) and then hands over to the harness's
# handler, which tears the cluster down and dies of the signal.
sub install_signal_handlers {
    my ($self) = @_;
    my %num = (HUP => 1, INT => 2, TERM => 15);
    for my $sig (keys %num) {
        my $prev = $SIG{$sig};
        $SIG{$sig} = sub {
            $self->cleanup;
            remove_tree("$self->{tmp}");     # the harness's handler ends us without END
            $prev->(@_) if ref $prev eq 'CODE';
            exit(128 + $num{$sig});
        };
    }
}

sub slurp {
    my ($self, $f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    my $s = <$fh>;
    return defined $s ? $s : '';
}

# Written whole (a new file renamed over the old one), readable by dnsmasq.
sub write_file {
    my ($self, $f, $text) = @_;
    open my $fh, '>', "$f.new" or die "write $f.new: $!";
    print $fh $text;
    close $fh or die "close $f.new: $!";
    chmod 0644, "$f.new";
    rename "$f.new", $f or die "rename $f.new: $!";
}

# /etc/netns/<ns>/resolv.conf naming $server for every member of $c.
sub resolv_conf {
    my ($self, $c, $server) = @_;
    if (!-d '/etc/netns') {
        mkdir '/etc/netns', 0755 or Test::More::BAIL_OUT("mkdir /etc/netns: $!");
        $self->{etc_netns_made} = 1;
    }
    for my $n ($c->members) {
        my $d = "/etc/netns/" . $c->member($n)->{netns};
        Test::More::BAIL_OUT("$d exists already") if -e $d;
        mkdir $d, 0755 or Test::More::BAIL_OUT("mkdir $d: $!");
        push @{ $self->{etc_made} }, $d;
        $self->write_file("$d/resolv.conf", "nameserver $server\noptions timeout:1 attempts:2\n");
    }
}

# dnsmasq in $n's namespace, answering for a{domain} from a{hosts} only, on
# a{addr}:53; a{args}: more options.  Its output goes to dir/dnsmasq.out, its
# log to dir/dnsmasq.log, its pid file is dir/dnsmasq.pid.
sub start {
    my ($self, $c, $n, %a) = @_;
    my $tmp = $self->dir;
    my @cmd = ('ip', 'netns', 'exec', $c->member($n)->{netns}, $a{dnsmasq}, '--keep-in-foreground',
               '--no-resolv', '--no-hosts', "--addn-hosts=$a{hosts}",
               "--listen-address=$a{addr}", '--bind-interfaces', '--port=53',
               "--pid-file=$tmp/dnsmasq.pid", "--log-facility=$tmp/dnsmasq.log",
               "--local=/$a{domain}/", @{ $a{args} || [] });
    STDOUT->flush;
    STDERR->flush;
    my $pid = fork;
    Test::More::BAIL_OUT("fork: $!") unless defined $pid;
    if ($pid == 0) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP ALRM);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$tmp/dnsmasq.out";
        open STDERR, '>&', \*STDOUT;
        { no warnings q{exec}; exec { $cmd[0] } @cmd; }
        print STDERR "exec @cmd: $!\n";
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    return $pid;
}

1;
