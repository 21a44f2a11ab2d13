package SC::SessionServer;
# A memcached or redis-server of the test's own on a free loopback port, for
# the session server tests (t/cluster/msm_*.t):
#   my $m = SC::SessionServer->new('memcached');   # or 'redis'
#   $m->start; $m->port; $m->pid; $m->stop;        # stop: SIGKILL, by its pid
#   $m->freeze; $m->thaw;                          # SIGSTOP (every thread stopped
#                                                  # on return), SIGCONT
#   $m->get($key)                                  # its value, or undef
#   $m->redis('GET', $key)                         # a Redis command's reply
# A missing server program is a failure (build/install-deps.sh installs both),
# not a skip.  Every server still running is stopped when the test ends.
use strict;
use warnings;
use Carp qw(croak);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use POSIX ();

my %PROGRAM = (memcached => '/usr/bin/memcached', redis => '/usr/bin/redis-server');
my @RUNNING;

sub new {
    my ($class, $kind) = @_;
    croak "SC::SessionServer: no server '$kind'" unless $PROGRAM{$kind};
    croak "SC::SessionServer: $PROGRAM{$kind} is not installed (build/install-deps.sh installs it)"
        unless -x $PROGRAM{$kind};
    my $self = bless { kind => $kind, port => SC::Cluster::free_port(), pid => undef }, $class;
    push @RUNNING, $self;
    return $self;
}

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }

sub start {
    my ($self) = @_;
    my @cmd = $self->{kind} eq 'memcached'
        ? ($PROGRAM{memcached}, '-l', '127.0.0.1', '-p', $self->{port}, '-U', '0', '-m', '16',
           '-u', 'nobody')
        : ($PROGRAM{redis}, '--bind', '127.0.0.1', '--port', $self->{port}, '--save', '',
           '--appendonly', 'no', '--daemonize', 'no', '--dir', '/tmp');
    my $pid = fork;
    croak "SC::SessionServer: fork: $!" unless defined $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        { exec { $cmd[0] } @cmd }
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    my $deadline = time + 5;
    until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}")) {
        croak "SC::SessionServer: $self->{kind} did not start on port $self->{port}"
            if time > $deadline;
        sleep 0.02;
    }
    return $self;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    local $?;                         # at END: the test's exit status stays
    kill 'KILL', $self->{pid};
    waitpid $self->{pid}, 0;
    $self->{pid} = undef;
}

# Hung, as a server that takes connections but answers nothing: SIGSTOP, and
# back only once every thread of it has stopped (SC::Cluster::freeze_pids).
sub freeze {
    my ($self) = @_;
    croak "SC::SessionServer: freeze: not running" unless $self->{pid};
    SC::Cluster::freeze_pids($self->{pid}) == 1
        or croak "SC::SessionServer: SIGSTOP $self->{pid}: $!";
}

sub thaw {
    my ($self) = @_;
    kill 'CONT', $self->{pid} if $self->{pid};
}

# memcached's value for $key (text protocol), or undef
sub get {
    my ($self, $key) = @_;
    return $self->redis('GET', $key) if $self->{kind} eq 'redis';
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}", Timeout => 2)
        or return undef;
    print $s "get $key\r\n";
    my $l = <$s> // '';
    return undef unless $l =~ /^VALUE \S+ \d+ (\d+)\r\n$/;
    my $n = $1;
    my $v = '';
    read($s, $v, $n + 2);
    return substr($v, 0, $n);
}

# one Redis command, its reply: a string, a number, undef (nil or no server)
sub redis {
    my ($self, @a) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}", Timeout => 2)
        or return undef;
    print $s '*' . @a . "\r\n" . join('', map { '$' . length($_) . "\r\n$_\r\n" } @a);
    my $l = <$s> // '';
    if ($l =~ /^\$(-?\d+)\r\n$/) {
        return undef if $1 < 0;
        my $v = '';
        read($s, $v, $1 + 2);
        return substr($v, 0, $1);
    }
    return $1 if $l =~ /^[:+](.*)\r\n$/;
    return undef;
}

END { $_->stop for @RUNNING }

1;
