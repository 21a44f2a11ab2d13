package SC::Cluster;

# A multi-member harness for mod_session_cluster tests: starts several httpd
# "members" of one cluster, each with its own ServerRoot, ports, route and
# <Cluster> block; stops, kills, freezes and restarts them; optionally puts
# every member in its own network namespace behind a private bridge, for
# multicast and partition tests.  Everything it starts it tears down again
# (DESTROY, END, SIGINT/SIGTERM/SIGHUP), and it signals only processes it
# started itself (checked by pid and start time).
#
#   use SC::Cluster;
#   my $c = SC::Cluster->new(members => 3);
#   $c->start_all;
#   my ($status, $headers, $body) = $c->get('node1', '/cluster-manager?auto');
#   $c->kill9('node2');
#   $c->restart('node2');
#   $c->teardown;                       # or let $c go out of scope
#
#   # a front balancer (mod_proxy_balancer + SessionClusterBalancer) in front
#   my $f = SC::Cluster->new(members => 3, front => { name => 'front', retry => 60 });
#
# The API is summarised in the POD at the end of this file.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Errno qw(EINTR);
use Fcntl qw(O_WRONLY O_CREAT O_TRUNC O_EXCL);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Spec;
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Time::HiRes qw(time sleep);

our $VERSION = '0.1';

my $REPO = abs_path(File::Spec->catdir(dirname(abs_path(__FILE__)), '..', '..', '..'));

my $SEQ = 0;              # clusters made by this process
my %PORT_USED;            # ports handed out by this process
my @LIVE;                 # weak refs to clusters not yet torn down
my %SIG_INSTALLED;
my $NETNS_REASON;         # cached result of netns_unavailable
my $FAILED_WITHOUT_TB = 0; # members that hung or crashed at stop, no Test::More loaded
# what a front balancer loads (before mod_session_cluster: SessionClusterBalancer
# needs mod_proxy)
our @FRONT_MODULES = qw(proxy proxy_http proxy_balancer slotmem_shm lbmethod_byrequests);

sub repo_dir { $REPO }

# ---------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        owner         => $$,
        seq           => ++$SEQ,
        httpd         => $o{httpd} || $ENV{SC_HTTPD} || '/usr/sbin/apache2',
        module_so     => $o{module_so} || $ENV{SC_MODULE_SO}
                         || "$REPO/mod_session_cluster/.libs/mod_session_cluster.so",
        libexecdir    => $o{libexecdir} || $ENV{SC_LIBEXECDIR} || '/usr/lib/apache2/modules',
        mpm           => $o{mpm} || 'event',
        loglevel      => $o{loglevel} || 'warn',
        cluster       => $o{cluster},
        extra_conf    => $o{extra_conf},
        modules       => $o{modules} || [],
        status        => $o{status} ? 1 : 0,
        manager       => exists $o{manager_location} ? $o{manager_location} : 1,
        member_opts   => { %{ $o{member_opts} || {} } },
        env           => $o{env},
        netns         => $o{netns} ? 1 : 0,
        start_timeout => $o{start_timeout} || $ENV{SC_START_TIMEOUT} || 10,
        stop_timeout  => $o{stop_timeout} || $ENV{SC_STOP_TIMEOUT} || 10,
        keep          => exists $o{keep} ? $o{keep} : $ENV{SC_KEEP},
        user          => $o{user},
        group         => $o{group},
        members       => [],
        by_name       => {},
        netns_created => [],
        torn_down     => 0,
    }, $class;

    for my $k (qw(cluster extra_conf)) {
        croak "SC::Cluster: option $k must be a string or a code ref"
            if defined $self->{$k} && ref $self->{$k} && ref $self->{$k} ne 'CODE';
    }
    croak "SC::Cluster: mpm must be event, worker or prefork"
        unless $self->{mpm} =~ /^(?:event|worker|prefork)$/;
    croak "SC::Cluster: httpd '$self->{httpd}' is not executable" unless -x $self->{httpd};
    croak "SC::Cluster: module '$self->{module_so}' not found (run make)"
        unless -f $self->{module_so};

    my @names;
    my $m = defined $o{members} ? $o{members} : 2;
    if (ref $m eq 'ARRAY') { @names = @$m }
    elsif ($m =~ /^\d+$/ && $m > 0) { @names = map { "node$_" } 1 .. $m }
    else { croak "SC::Cluster: members must be a count or an array ref of names" }

    # front => 'front' or { name => 'front', <front_conf options> }: one more
    # member, without a route, whose extra_conf is front_conf() (a
    # mod_proxy_balancer front with SessionClusterBalancer) unless member_opts
    # say otherwise
    if (defined $o{front}) {
        my %fo = ref $o{front} eq 'HASH' ? %{ $o{front} } : (name => $o{front});
        my $fname = delete $fo{name} // 'front';
        push @names, $fname;
        $self->{front} = $fname;
        my $mo = $self->{member_opts}{$fname} = { %{ $self->{member_opts}{$fname} || {} } };
        $mo->{route} = undef unless exists $mo->{route};
        $mo->{extra_conf} = sub { front_conf($_[0], $_[1], %fo) }
            unless exists $mo->{extra_conf};
        # SessionClusterBalancer needs mod_proxy loaded before the module
        my %have = map { $_ => 1 } @{ $mo->{modules} || $self->{modules} };
        $mo->{modules} = [ @{ $mo->{modules} || $self->{modules} },
                           grep { !$have{$_} } @FRONT_MODULES ];
    }
    my %seen;
    for (@names) {
        croak "SC::Cluster: member name '$_' must be 1-32 letters, digits, '-' or '_'"
            unless /^[A-Za-z0-9_-]{1,32}$/;
        croak "SC::Cluster: member name '$_' is given twice" if $seen{$_}++;
    }
    croak "SC::Cluster: at most 250 members" if @names > 250;

    if ($self->{netns}) {
        my $why = $class->netns_unavailable;
        croak "SC::Cluster: netns => 1 is not possible here: $why" if $why;
    }

    if ($> == 0) {
        $self->{user}  ||= 'nobody';
        $self->{group} ||= (getgrnam('nogroup') ? 'nogroup' : 'nobody');
    }

    # register for END / signal teardown before anything is created
    push @LIVE, $self;
    weaken($LIVE[-1]);
    _install_signal_handlers();
    _install_end_block();

    $self->_make_base_dir;

    my $k = defined $o{subnet} ? undef : (($$ + $self->{seq}) % 250) + 1;
    my $subnet = defined $o{subnet} ? $o{subnet} : "10.200.$k";
    croak "SC::Cluster: subnet must look like 10.200.7" unless $subnet =~ /^\d+\.\d+\.\d+$/;

    my $idx = 0;
    for my $name (@names) {
        $idx++;
        my $dir = "$self->{base}/$name";
        my $mem = {
            name      => $name,
            route     => $name,
            index     => $idx,
            dir       => $dir,
            conf      => "$dir/httpd.conf",
            error_log => "$dir/logs/error_log",
            access_log=> "$dir/logs/access_log",
            pid_file  => "$dir/httpd.pid",
            htdocs    => "$dir/htdocs",
            run_dir   => "$dir/run",
            pid       => undef,
            proc      => undef,
            state     => 'new',
            unique_id => _unique_id($self->{seq}, $idx),
            opts      => { %{ $self->{member_opts}{$name} || {} } },
        };
        # member_opts { name => { route => 'x' } } renames the route; route =>
        # undef leaves SessionClusterRoute out (a front balancer, or a test of
        # the refusal)
        $mem->{route} = delete $mem->{opts}{route} if exists $mem->{opts}{route};
        $mem->{is_front} = 1 if defined $self->{front} && $name eq $self->{front};
        if ($self->{netns}) {
            $mem->{netns}        = "sc-$$-$self->{seq}-$name";
            $mem->{host_if}      = "v$idx";
            $mem->{addr}         = "$subnet.$idx";
            $mem->{http_port}    = $o{http_port} || 8080;
            $mem->{cluster_port} = $o{cluster_port} || 4000;
        }
        else {
            $mem->{addr}         = '127.0.0.1';
            $mem->{http_port}    = free_port();
            $mem->{cluster_port} = free_port();
        }
        push @{ $self->{members} }, $mem;
        $self->{by_name}{$name} = $mem;
    }
    if ($self->{netns}) {
        $self->{bridge_ns} = "scbr-$$-$self->{seq}";
        $self->{subnet}    = $subnet;
    }

    $self->_make_member_dir($_) for @{ $self->{members} };
    $self->write_conf($_->{name}) for @{ $self->{members} };
    $self->_setup_netns if $self->{netns};
    return $self;
}

sub _unique_id {
    my ($seq, $idx) = @_;
    # 16 bytes: 'S','C', the pid (4 bytes), the cluster sequence, zeros, the index
    my @b = (83, 67, ($$ >> 24) & 255, ($$ >> 16) & 255, ($$ >> 8) & 255, $$ & 255,
             $seq & 255, (0) x 8, $idx & 255);
    return '{' . join(',', @b) . '}';
}

# A free TCP port on 127.0.0.1, never the same one twice in this process nor
# one another SC::Cluster process holds: chosen at random below the
# ephemeral range (where no outgoing connection takes it between now and
# httpd's bind, and where the thousands of short connections of a test run
# leave no TIME_WAIT), reserved for this process by a file in $PORT_DIR
# (removed when the process ends; a reservation whose process is gone is
# stale) and checked free with a bind.
my $PORT_DIR = '/tmp/sc-cluster-ports';
my @PORT_FILES;           # reservations made by this process
my $PORT_OWNER = $$;
sub free_port {
    my ($lo, $hi) = (10000, _ephemeral_start() - 1);
    for (1 .. 1000) {
        my $p = $lo + int(rand($hi - $lo + 1));
        return $p if reserve_port($p);
    }
    croak "SC::Cluster: no free port found between $lo and $hi";
}

# Reserves port $p for this process as free_port does (a file in
# $PORT_DIR, checked free with a bind): 1, or 0 when another process holds
# it or it cannot be bound.  For a test that needs ports of its own choosing
# (several in a row): free_port never hands out a port reserved so.
sub reserve_port {
    my ($p) = @_;
    if (!-d $PORT_DIR) {
        mkdir $PORT_DIR;
        chmod 01777, $PORT_DIR;
    }
    return 0 if $PORT_USED{$p};
    my $f = "$PORT_DIR/$p";
    my $fh;
    if (!sysopen($fh, $f, O_WRONLY | O_CREAT | O_EXCL, 0644)) {
        # held: by a live process, or stale (then free it for a later try)
        my ($pid, $st) = split ' ', _slurp($f);
        unlink $f unless $pid && defined $st && (_starttime($pid) // '') eq $st;
        return 0;
    }
    print $fh "$$ " . (_starttime($$) // 0) . "\n";
    close $fh;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p,
                                  Proto => 'tcp', Listen => 1, ReuseAddr => 1);
    if (!$s) {
        unlink $f;
        return 0;
    }
    close $s;
    $PORT_USED{$p}++;
    $PORT_OWNER = $$ if !@PORT_FILES;
    push @PORT_FILES, $f;
    return 1;
}

sub _ephemeral_start {
    my ($lo) = _slurp('/proc/sys/net/ipv4/ip_local_port_range') =~ /(\d+)/;
    return $lo && $lo > 12000 ? $lo : 32768;
}

sub _release_ports {
    return unless $$ == $PORT_OWNER;
    unlink @PORT_FILES;
    @PORT_FILES = ();
}

# Directories: <repo>/t/tmp/cluster-<pid>-<n>/<name>/, or /tmp/sc-cluster-<pid>/...
# when running as root and nobody could not traverse the repository path.
sub _make_base_dir {
    my $self = shift;
    my $leaf = "cluster-$$-$self->{seq}";
    my $tmp  = "$REPO/t/tmp";
    make_path($tmp, { mode => 0755 }) unless -d $tmp;
    my $base = "$tmp/$leaf";
    if ($> == 0 && !_traversable_by_others($tmp)) {
        my $alt = "/tmp/sc-cluster-$$";
        _note("$tmp is not traversable by $self->{user}: member directories go under $alt");
        make_path($alt, { mode => 0755 }) unless -d $alt;
        chmod 0755, $alt;
        $self->{alt_root} = $alt;
        $base = "$alt/$leaf";
    }
    croak "SC::Cluster: $base exists already" if -e $base;
    make_path($base, { mode => 0755 }) or croak "SC::Cluster: mkdir $base: $!";
    chmod 0755, $base;
    $self->{base} = $base;
}

sub _traversable_by_others {
    my $path = shift;
    my $cur = '';
    for my $p ('', grep { $_ ne '' } File::Spec->splitdir($path)) {
        $cur = $p eq '' ? '/' : ($cur eq '/' ? "/$p" : "$cur/$p");
        my @st = stat $cur or return 0;
        return 0 unless $st[2] & 0001;
    }
    return 1;
}

sub _make_member_dir {
    my ($self, $m) = @_;
    for my $d ($m->{dir}, "$m->{dir}/logs", $m->{htdocs}, $m->{run_dir}) {
        make_path($d) unless -d $d;
        chmod 0755, $d or croak "SC::Cluster: chmod $d: $!";
    }
    if ($> == 0) {
        my $uid = getpwnam($self->{user});
        my $gid = getgrnam($self->{group});
        chown $uid, $gid, $m->{run_dir} if defined $uid && defined $gid;
    }
    _write_file("$m->{htdocs}/index.html", "<html><body>$m->{name}</body></html>\n", 0644);
}

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

# The default block: static membership listing every other member (the front
# too: a front balancer is a member of the channel, without sessions).
# Options: channelSendOptions (8), channelStartOptions (3), manager =>
# { attr => value } (a DeltaManager element), valves => [ '<Valve .../>', ... ]
# (written as given, after the Channel), jvm_route_binder => 1 or
# { attr => value } (a JvmRouteBinderValve element, with a ReplicationValve
# unless valves lists one: once a block names a valve Tomcat adds none), and
# membership => { attr => value } (a McastService element carrying dropTime
# and frequency; with channelStartOptions 3 it sends no multicast).
sub static_block {
    my ($m, $all, %o) = @_;
    my $send = defined $o{channelSendOptions} ? $o{channelSendOptions} : 8;
    # channelStartOptions 3: channel without multicast membership, as Tomcat's
    # static-membership examples do; test clusters must not hear each other
    my $start = defined $o{channelStartOptions} ? $o{channelStartOptions} : 3;
    my $x = qq{<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelSendOptions="$send" channelStartOptions="$start">\n}
          . ($o{manager} ? qq{  <Manager className="org.apache.catalina.ha.session.DeltaManager" }
                           . join(' ', map { qq{$_="$o{manager}{$_}"} } sort keys %{ $o{manager} })
                           . qq{/>\n} : '')
          . qq{  <Channel className="org.apache.catalina.tribes.group.GroupChannel">\n}
          . ($o{membership} ? qq{    <Membership className="org.apache.catalina.tribes.membership.McastService"}
                              . join('', map { qq{ $_="$o{membership}{$_}"} } sort keys %{ $o{membership} })
                              . qq{/>\n} : '')
          . qq{    <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver" }
          . qq{address="$m->{addr}" port="$m->{cluster_port}" autoBind="1"/>\n}
          . qq{    <Interceptor className="org.apache.catalina.tribes.group.interceptors.TcpFailureDetector"/>\n}
          . qq{    <Interceptor className="org.apache.catalina.tribes.group.interceptors.StaticMembershipInterceptor">\n};
    for my $o (@$all) {
        next if $o->{name} eq $m->{name};
        $x .= qq{      <Member className="org.apache.catalina.tribes.membership.StaticMember" }
            . qq{host="$o->{addr}" port="$o->{cluster_port}" uniqueId="$o->{unique_id}"/>\n};
    }
    $x .= qq{    </Interceptor>\n  </Channel>\n};
    $x .= "  $_\n" for valves(%o);
    $x .= qq{</Cluster>\n};
    return $x;
}

# The <Valve> elements static_block writes for its valves / jvm_route_binder
# options (a list of lines; empty when neither is given: Tomcat's defaults).
sub valves {
    my (%o) = @_;
    my @v = @{ $o{valves} || [] };
    if ($o{jvm_route_binder}) {
        my $a = ref $o{jvm_route_binder} eq 'HASH' ? $o{jvm_route_binder} : {};
        push @v, qq{<Valve className="org.apache.catalina.ha.session.JvmRouteBinderValve"}
               . join('', map { qq{ $_="$a->{$_}"} } sort keys %$a) . '/>';
        push @v, qq{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>}
            unless grep { /ReplicationValve/ } @v;
    }
    return @v;
}

# A front balancer's configuration (for its extra_conf): mod_proxy and friends
# (loaded unless loaded already), one BalancerMember per member that has a
# route (http://ADDR:HTTP_PORT route=ROUTE), sticky on JSESSIONID|jsessionid,
# ProxyPass PATH to it, SessionClusterBalancer naming it and a
# balancer-manager.  ($front, $all) are the front's member hash and all
# members, as a cluster/extra_conf sub receives them.  Options:
#   balancer => 'members'           balancer://NAME
#   path => '/app'                  ProxyPass PATH balancer://NAME/PATH
#   members => [names]              which members (default: all with a route)
#   retry, timeout, connectiontimeout, worker => 'k=v ...'
#                                   BalancerMember parameters (unset: httpd's)
#   extra_members => [ 'http://127.0.0.1:1 route=node9 status=+H', ... ]
#   proxyset => 'k=v ...'           added to ProxySet
#   session_cluster_balancer => 1   0: leave SessionClusterBalancer out
#   balancer_manager => '/balancer-manager' (undef/'': none)
#   load_modules => 1               0: no LoadModule lines
sub front_conf {
    my ($front, $all, %o) = @_;
    my $bal  = 'balancer://' . ($o{balancer} // 'members');
    my $path = $o{path} // '/app';
    my $lib  = $o{libexecdir} || $ENV{SC_LIBEXECDIR} || '/usr/lib/apache2/modules';
    my @mem  = $o{members}
        ? map { my $n = $_; (grep { $_->{name} eq $n } @$all)[0] || croak "front_conf: no member $n" }
              @{ $o{members} }
        : grep { defined $_->{route} && $_->{name} ne $front->{name} } @$all;
    my $x = "# front balancer (SC::Cluster::front_conf)\n";
    if ($o{load_modules} // 1) {
        for my $mod (@FRONT_MODULES) {
            $x .= qq{<IfModule !mod_$mod.c>\n    LoadModule ${mod}_module "$lib/mod_$mod.so"\n</IfModule>\n};
        }
    }
    my $wp = join '', map { defined $o{$_} ? " $_=$o{$_}" : '' } qw(retry timeout connectiontimeout);
    $wp .= " $o{worker}" if defined $o{worker} && length $o{worker};
    $x .= "<Proxy $bal>\n";
    $x .= "    BalancerMember http://$_->{addr}:$_->{http_port} route=$_->{route}$wp\n" for @mem;
    $x .= "    BalancerMember $_\n" for @{ $o{extra_members} || [] };
    $x .= "    ProxySet stickysession=JSESSIONID|jsessionid lbmethod=byrequests"
        . (defined $o{proxyset} ? " $o{proxyset}" : '') . "\n";
    $x .= "</Proxy>\n";
    $x .= "ProxyPass        $path $bal$path\nProxyPassReverse $path $bal$path\n";
    $x .= "SessionClusterBalancer $bal\n" if $o{session_cluster_balancer} // 1;
    my $bm = exists $o{balancer_manager} ? $o{balancer_manager} : '/balancer-manager';
    $x .= "<Location $bm>\n    SetHandler balancer-manager\n    Require all granted\n</Location>\n"
        if defined $bm && length $bm;
    return $x;
}

sub _opt {
    my ($self, $m, $k) = @_;
    return exists $m->{opts}{$k} ? $m->{opts}{$k} : $self->{$k};
}

sub _expand {
    my ($self, $v, $m) = @_;
    return '' unless defined $v;
    return ref $v eq 'CODE' ? $v->($m, [ @{ $self->{members} } ]) : $v;
}

sub _mpm_conf {
    my $mpm = shift;
    return $mpm eq 'prefork'
        ? "StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\nServerLimit 16\n"
          . "MaxRequestWorkers 16\n"
        : "StartServers 1\nServerLimit 4\nThreadLimit 16\nThreadsPerChild 8\n"
          . "MinSpareThreads 4\nMaxSpareThreads 16\nMaxRequestWorkers 32\n";
}

sub config_text {
    my ($self, $name) = @_;
    my $m = $self->_m($name);
    my $lib = $self->{libexecdir};
    my $mpm = $self->_opt($m, 'mpm');
    my @mods = ("mpm_$mpm", 'authz_core');
    push @mods, 'status' if $self->_opt($m, 'status');
    push @mods, @{ $self->_opt($m, 'modules') || [] };
    my %seen;
    my $load = '';
    for my $mod (grep { !$seen{$_}++ } @mods) {
        $load .= qq{LoadModule ${mod}_module "$lib/mod_$mod.so"\n};
        $load .= qq{LoadModule session_module "$lib/mod_session.so"\n}
            if $mod eq 'authz_core';
    }
    $load .= qq{LoadModule session_cluster_module "$self->{module_so}"\n};

    my $cluster = $self->_opt($m, 'cluster');
    $cluster = defined $cluster ? $self->_expand($cluster, $m)
                                : static_block($m, $self->{members});
    $cluster .= "\n" unless $cluster =~ /\n\z/;
    my $extra = $self->_expand($self->_opt($m, 'extra_conf'), $m);
    $extra .= "\n" if length $extra && $extra !~ /\n\z/;
    my $user = $self->{user} ? qq{User $self->{user}\nGroup $self->{group}\n} : '';
    # SC_CORE_DIR: where a crashed httpd process leaves its core (children
    # that changed user dump only with CoreDumpDirectory set)
    $user .= qq{CoreDumpDirectory "$ENV{SC_CORE_DIR}"\n} if $ENV{SC_CORE_DIR};
    my $manager = $self->_opt($m, 'manager')
        ? qq{<Location /cluster-manager>\n    SetHandler cluster-manager\n    Require all granted\n</Location>\n}
        : '';
    my $loglevel = $self->_opt($m, 'loglevel');
    my $route_line = defined $m->{route} ? "SessionClusterRoute $m->{route}"
                                         : '# no SessionClusterRoute';

    return <<"EOC";
# Generated by SC::Cluster for member $m->{name} (cluster $$-$self->{seq}).
ServerRoot "$m->{dir}"
$load
ServerName localhost
Listen $m->{addr}:$m->{http_port}
PidFile "$m->{pid_file}"
ErrorLog "$m->{error_log}"
LogLevel $loglevel
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog "$m->{access_log}" common
DefaultRuntimeDir "$m->{run_dir}"
Mutex file:$m->{run_dir} default
${user}Timeout 30
# As Debian's apache2.conf: no .htaccess looked for above the directories
# that ask for it (without it every request opens one per path component).
<Directory />
    AllowOverride None
</Directory>
DocumentRoot "$m->{htdocs}"
<Directory "$m->{htdocs}">
    Require all granted
</Directory>
${\ _mpm_conf($mpm) }
$route_line

$cluster
$manager$extra
EOC
}

sub write_conf {
    my ($self, $name) = @_;
    my $m = $self->_m($name);
    _write_file($m->{conf}, $self->config_text($name), 0644);
    return $m->{conf};
}

# Change a member's options (cluster, extra_conf, loglevel, mpm, modules,
# status, manager, env, route) and rewrite its httpd.conf; takes effect at the
# next start/restart/graceful (env: at the next start or restart).
sub configure {
    my ($self, $name, %o) = @_;
    my $m = $self->_m($name);
    for my $k (keys %o) {
        if ($k eq 'route') { $m->{route} = $o{$k}; next }
        croak "SC::Cluster::configure: unknown option $k"
            unless $k =~ /^(?:cluster|extra_conf|loglevel|mpm|modules|status|manager|env)$/;
        $m->{opts}{$k} = $o{$k};
    }
    return $self->write_conf($name);
}

# ---------------------------------------------------------------------------
# Accessors
# ---------------------------------------------------------------------------

sub _m {
    my ($self, $name) = @_;
    croak "SC::Cluster: no member name given" unless defined $name;
    return $name if ref $name eq 'HASH';
    my $m = $self->{by_name}{$name} or croak "SC::Cluster: no member '$name'";
    return $m;
}

sub member  { $_[0]->_m($_[1]) }
sub members { map { $_->{name} } @{ $_[0]{members} } }
# The front's name (new(front => ...)), or undef.
sub front   { $_[0]{front} }
# The members that have a route (all but a front), in order.
sub routed  { map { $_->{name} } grep { defined $_->{route} } @{ $_[0]{members} } }
sub base_dir { $_[0]{base} }
sub netns_names {
    my $self = shift;
    return () unless $self->{netns};
    return ($self->{bridge_ns}, map { $_->{netns} } @{ $self->{members} });
}

# The member's error_log text; with since_start => 1 only what was logged
# since its last start.
sub error_log {
    my ($self, $name, %o) = @_;
    my $m = $self->_m($name);
    return '' unless -f $m->{error_log};
    my $text = _slurp($m->{error_log});
    return $o{since_start} ? substr($text, $m->{log_offset} || 0) : $text;
}

sub log_tail {
    my ($self, $name, $n) = @_;
    $n ||= 30;
    my @l = split /\n/, $self->error_log($name);
    @l = @l[-$n .. -1] if @l > $n;
    return join("\n", @l) . "\n";
}

# Polls $cond every `interval` (0.05 s) until it returns true or `timeout`
# (10 s) passes; returns the condition's value, or '' on timeout.
sub wait_for {
    my @a = @_;
    shift @a unless ref $a[0] eq 'CODE';     # method or SC::Cluster::wait_for(sub {...})
    my ($cond, %o) = @a;
    my $timeout  = defined $o{timeout} ? $o{timeout} : 10;
    my $interval = $o{interval} || 0.05;
    my $deadline = time + $timeout;
    while (1) {
        my $v = $cond->();
        return $v if $v;
        return '' if time >= $deadline;
        sleep $interval;
    }
}

sub is_running {
    my ($self, $name) = @_;
    my $m = $self->_m($name);
    return $m->{proc} && _alive_proc($m->{proc}) ? 1 : 0;
}

# The member's parent pid and the pids of all its descendants.
sub pids {
    my ($self, $name) = @_;
    my $m = $self->_m($name);
    return () unless $m->{proc} && _alive_proc($m->{proc});
    my @procs = ($m->{proc}, _descendants($m->{proc}[0]));
    $self->_seen($m, @procs);
    return map { $_->[0] } @procs;
}

# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

# ($status, \%headers, $body); $status is 0 when no HTTP answer came, and then
# $headers->{_error} says why.  Options: timeout (5 s), from => member (netns:
# run the request inside that member's namespace), port (default http_port).
sub get {
    my ($self, $name, $path, %o) = @_;
    return $self->request($name, 'GET', $path, %o);
}

# A POST of $body (default type application/x-www-form-urlencoded; option
# content_type); the rest as get().
sub post {
    my ($self, $name, $path, $body, %o) = @_;
    return $self->request($name, 'POST', $path, %o, body => $body // '');
}

# Any method: request($name, $method, $path, body => $text, content_type =>
# $type, headers => {...}, timeout => s, from => member, port => p).
sub request {
    my ($self, $name, $method, $path, %o) = @_;
    my $m = $self->_m($name);
    croak "SC::Cluster: bad method '$method'" unless $method =~ /^[A-Z]+$/;
    my %hdr = %{ $o{headers} || {} };
    if (defined $o{body}) {
        $hdr{'Content-Type'} = $o{content_type} // 'application/x-www-form-urlencoded'
            unless grep { lc $_ eq 'content-type' } keys %hdr;
    }
    $path = '/' unless defined $path;
    $path = "/$path" unless $path =~ m{^/};
    my $timeout = $o{timeout} || 5;
    my $port = $o{port} || $m->{http_port};
    $m->{last_request} = time;
    if ($self->{netns}) {
        my $from = defined $o{from} ? $self->_m($o{from}) : $m;
        my ($rc, $out) = $self->_run(
            [ 'ip', 'netns', 'exec', $from->{netns}, 'curl', '-s', '-S', '-i',
              '--http1.0', '--noproxy', '*', '--max-time', $timeout,
              ($method eq 'GET' ? () : ('-X', $method)),
              (defined $o{body} ? ('--data-binary', $o{body}) : ()),
              (map { ('-H', "$_: $hdr{$_}") } sort keys %hdr),
              "http://$m->{addr}:$port$path" ],
            timeout => $timeout + 5);
        if ($rc != 0) {
            $out =~ s/\s+\z//;
            return (0, { _error => "curl exit $rc: $out" }, '');
        }
        return _parse_response($out);
    }
    return _http_get($m->{addr}, $port, $path, $timeout, \%hdr, $method, $o{body});
}

sub _http_get {
    my ($addr, $port, $path, $timeout, $headers, $method, $body) = @_;
    $method //= 'GET';
    my $deadline = time + $timeout;
    my $s = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port, Proto => 'tcp',
                                  Timeout => $timeout)
        or return (0, { _error => "connect $addr:$port: " . ($@ || $!) }, '');
    my $req = "$method $path HTTP/1.0\r\nHost: localhost\r\nUser-Agent: SC::Cluster\r\n"
            . join('', map { "$_: $headers->{$_}\r\n" } sort keys %{ $headers || {} })
            . (defined $body ? 'Content-Length: ' . length($body) . "\r\n" : '')
            . "Connection: close\r\n\r\n" . ($body // '');
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite($s, $req, length($req) - $off, $off);
        return (0, { _error => "write: $!" }, '') unless defined $n || $! == EINTR;
        $off += $n if defined $n;
    }
    my $sel = IO::Select->new($s);
    my $buf = '';
    while (1) {
        my $left = $deadline - time;
        return (0, { _error => "timeout after ${timeout}s" }, '') if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        if (!defined $n) {
            next if $! == EINTR;
            return (0, { _error => "read: $!" }, '');
        }
        last if $n == 0;
    }
    close $s;
    return _parse_response($buf);
}

sub _parse_response {
    my $raw = shift;
    # interim 1xx answers are not the response: read on
    while ($raw =~ s{\AHTTP/\d(?:\.\d)?\s+1\d\d[^\n]*\n(?:[^\n]*\S[^\n]*\n)*\r?\n}{}) {}
    my ($head, $body) = split /\r?\n\r?\n/, $raw, 2;
    $body = '' unless defined $body;
    return (0, { _error => 'no HTTP status line', _raw => $raw }, '')
        unless defined $head && $head =~ m{\AHTTP/\d(?:\.\d)?\s+(\d{3})};
    my $status = $1;
    my %h;
    my @lines = split /\r?\n/, $head;
    shift @lines;
    for my $line (@lines) {
        next unless $line =~ /^([^:\s]+):\s*(.*?)\s*$/;
        my $k = lc $1;
        $h{$k} = exists $h{$k} ? "$h{$k}, $2" : $2;
    }
    return ($status, \%h, $body);
}

# ---------------------------------------------------------------------------
# Starting
# ---------------------------------------------------------------------------

sub _prefix {
    my ($self, $m) = @_;
    return $self->{netns} ? ('ip', 'netns', 'exec', $m->{netns}) : ();
}

sub _running_or_croak {
    my ($self, $m, $what) = @_;
    croak "SC::Cluster: $what: member $m->{name} is not running (state $m->{state})"
        unless $m->{proc} && _alive_proc($m->{proc});
}

sub _launch {
    my ($self, $m) = @_;
    croak "SC::Cluster: torn down" if $self->{torn_down};
    croak "SC::Cluster: member $m->{name} is already running (pid $m->{pid})"
        if $m->{proc} && _alive_proc($m->{proc});
    $self->_check_died($m) if $m->{proc};
    $self->_kill_orphans($m);
    $m->{proc} = undef;
    $m->{seen_pids} = {};
    $m->{pid}  = undef;
    if (-e $m->{pid_file}) {
        my $old = _read_pid($m->{pid_file});
        croak "SC::Cluster: $m->{pid_file} names a live process $old that this harness "
            . "does not track; not starting $m->{name}"
            if $old && _alive($old);
        unlink $m->{pid_file};
    }
    my @httpd = ($self->_prefix($m), $self->{httpd}, '-f', $m->{conf});
    # the member's own environment variables (option env): httpd -t, and the
    # parent with everything it starts (children, engine) inherit them
    my %env = %{ $self->_opt($m, 'env') || {} };
    for (sort keys %env) {
        croak "SC::Cluster: env: '$_' is no variable name" unless /^[A-Za-z_][A-Za-z0-9_]*$/;
        croak "SC::Cluster: env: $_ has no value" unless defined $env{$_};
    }
    local @ENV{ keys %env } = values %env;
    my ($rc, $out) = $self->_run([ @httpd, '-t' ], timeout => 30);
    croak "SC::Cluster: `$self->{httpd} -f $m->{conf} -t` failed for $m->{name} "
        . "(exit $rc):\n$out" if $rc != 0;
    $m->{test_output} = $out;
    $m->{log_offset} = -s $m->{error_log} || 0;
    # every process started for the member inherits SC_CLUSTER_CONF (see
    # _conf_procs: not all of them are its parent's descendants)
    {
        local $ENV{SC_CLUSTER_CONF} = $m->{conf};
        ($rc, $out) = $self->_run(\@httpd, timeout => 30);
    }
    _write_file("$m->{dir}/logs/startup.out", $out, 0644);
    croak "SC::Cluster: starting $m->{name} failed (exit $rc):\n$out"
        . "--- error_log tail:\n" . $self->log_tail($m) if $rc != 0;
    $m->{state} = 'starting';
}

sub _wait_ready {
    my ($self, $m, $deadline) = @_;
    my $why = 'no pid file';
    while (1) {
        if (!$m->{proc}) {
            my $pid = _read_pid($m->{pid_file});
            if ($pid) {
                my $st = _starttime($pid);
                if (!defined $st) {
                    $self->_start_failed($m, "pid $pid from $m->{pid_file} is not alive");
                }
                $m->{proc} = [ $pid, $st ];
                $m->{pid} = $pid;
                $why = "pid $pid did not answer HTTP yet";
            }
        }
        elsif (!_alive_proc($m->{proc})) {
            $self->_start_failed($m, "pid $m->{pid} exited during startup");
        }
        else {
            my ($s, undef, $body) = $self->get($m, '/cluster-manager?auto', timeout => 1);
            if ($s == 200) {
                $m->{state} = 'running';
                $self->_seen($m, $m->{proc}, _descendants_procs($m->{proc}[0]));
                return 1;
            }
            $why = "GET /cluster-manager?auto answered " . ($s || 'nothing');
        }
        $self->_start_failed($m, "not ready after $self->{start_timeout}s: $why")
            if time >= $deadline;
        sleep 0.05;
    }
}

sub _start_failed {
    my ($self, $m, $why) = @_;
    my $tail = $self->log_tail($m, 40);
    $m->{state} = 'failed';
    # leave nothing behind: a half-started server is killed (it is ours)
    # (and its first pass's piped loggers, no descendants: _conf_procs)
    my @procs = $m->{proc} && _alive_proc($m->{proc})
        ? ($m->{proc}, _descendants_procs($m->{proc}[0])) : ();
    my %k = map { $_->[0] => $_ } @procs, $self->_conf_procs($m);
    @procs = values %k;
    if (@procs) {
        _signal('KILL', @procs);
        $self->wait_for(sub { !grep { _alive_proc($_) } @procs }, timeout => 5);
    }
    $m->{proc} = undef;
    $m->{pid} = undef;
    croak "SC::Cluster: member $m->{name}: $why\n--- error_log tail ($m->{error_log}):\n$tail";
}

sub start {
    my ($self, $name, %o) = @_;
    my $m = $self->_m($name);
    $self->_launch($m);
    $self->_wait_ready($m, time + ($o{timeout} || $self->{start_timeout}));
    return $m->{pid};
}

# Starts all members not running yet, in parallel; waits until all answer.
sub start_all {
    my ($self, %o) = @_;
    my @todo = grep { !($_->{proc} && _alive_proc($_->{proc})) } @{ $self->{members} };
    $self->_launch($_) for @todo;
    my $deadline = time + ($o{timeout} || $self->{start_timeout});
    $self->_wait_ready($_, $deadline) for @todo;
    return map { $_->{pid} } @todo;
}

# Starts a stopped or killed member again with its (current) configuration;
# a running member is stopped first.
sub restart {
    my ($self, $name, %o) = @_;
    my $m = $self->_m($name);
    $self->stop($m) if $m->{proc} && _alive_proc($m->{proc});
    return $self->start($m, %o);
}

# SIGUSR1 (graceful restart): waits until httpd logs "resuming normal
# operations" once more and answers HTTP again.  Returns the (same) pid.
sub graceful {
    my ($self, $name, %o) = @_;
    my $m = $self->_m($name);
    $self->_running_or_croak($m, 'graceful');
    my $count = sub { my @n = $self->error_log($m) =~ /resuming normal operations/g; scalar @n };
    my $before = $count->();
    _signal('USR1', $m->{proc});
    my $deadline = time + ($o{timeout} || $self->{start_timeout});
    while (1) {
        $self->_start_failed($m, "exited during graceful restart")
            unless _alive_proc($m->{proc});
        if ($count->() > $before) {
            my ($s) = $self->get($m, '/cluster-manager?auto', timeout => 1);
            return $m->{pid} if $s == 200;
        }
        croak "SC::Cluster: member $m->{name}: graceful restart did not finish in time\n"
            . $self->log_tail($m) if time >= $deadline;
        sleep 0.05;
    }
}

# httpd -k graceful-stop (or -k stop with how => 'stop') run with the
# member's configuration, as apachectl does: the command signals the running
# parent.  Returns once the command has (the member drains on its own);
# wait_for(sub { !is_running }) then stop() afterwards checks how it went.
sub ctl {
    my ($self, $name, $how) = @_;
    my $m = $self->_m($name);
    $self->_running_or_croak($m, $how);
    my ($exit, $out) = $self->_run([ $self->{httpd}, "-f", $m->{conf}, "-k", $how ],
                            timeout => 30);
    croak "SC::Cluster: httpd -k $how for $m->{name} failed ($exit): $out\n" if $exit;
    $m->{state} = 'stopping';
    return 1;
}

# ---------------------------------------------------------------------------
# Stopping, killing, freezing
# ---------------------------------------------------------------------------

# SIGTERM to the parent; waits up to `timeout` (stop_timeout, 10 s) for it to
# vanish, then SIGKILLs it and its children.  Returns 1 when the member went
# down cleanly on SIGTERM (or was not running), 0 otherwise.  A member that
# does not exit within the timeout, leaves children behind, or whose
# error_log shows a crash (a child dead of a signal, a sanitizer report) is a
# FAILED TEST when Test::More is loaded (and an exit status of 1 without it):
# see _problem.
# Seconds between this harness's last request to a member and its SIGTERM
# (_stop_many says why).
my $QUIET_BEFORE_STOP = 0.2;

sub stop {
    my ($self, $name, %o) = @_;
    return $self->_stop_many([ $self->_m($name) ], %o);
}

# Stops every running member in parallel; returns 1 when all went on SIGTERM.
sub stop_all {
    my ($self, %o) = @_;
    return $self->_stop_many([ @{ $self->{members} } ], %o);
}

sub _stop_many {
    my ($self, $ms, %o) = @_;
    my $timeout = $o{timeout} || $self->{stop_timeout};
    my @run = grep { $_->{proc} && _alive_proc($_->{proc}) } @$ms;
    my $clean = 1;
    for my $m (grep { !($_->{proc} && _alive_proc($_->{proc})) } @$ms) {
        $self->_kill_orphans($m);
        $clean = 0 unless $self->_check_died($m);
        _forget($m, $m->{state} eq 'running' ? 'died' : $m->{state});
    }
    return $clean unless @run;
    # httpd's event MPM, stopped with SIGTERM, closes the sockets its workers
    # are on from the child's main thread (close_worker_sockets) while a
    # worker may be freeing its connection: a worker still finishing this
    # harness's last request (its lingering close) can crash the child in
    # apr_os_sock_get (seen in CI, stack from its core).  The members are
    # stopped a moment after this harness's last request to them, not in it.
    my ($last) = sort { $b <=> $a } map { $_->{last_request} // 0 } @run;
    sleep($last + $QUIET_BEFORE_STOP - time) if $last + $QUIET_BEFORE_STOP > time;
    my %kids;
    for my $m (@run) {
        my %k = map { $_->[0] => $_ } _descendants_procs($m->{proc}[0]), $self->_conf_procs($m);
        delete $k{ $m->{proc}[0] };
        $kids{ $m->{name} } = [ values %k ];
        $self->_seen($m, $m->{proc}, @{ $kids{ $m->{name} } });
        _signal('TERM', $m->{proc});
        # in case of sigstop (cont => 0: a frozen process stays frozen, as a
        # process hung at stop would)
        _signal('CONT', $m->{proc}, @{ $kids{ $m->{name} } }) if $o{cont} // 1;
    }
    $self->wait_for(sub { !grep { _alive_proc($_->{proc}) } @run }, timeout => $timeout);
    for my $m (@run) {
        my @kids = @{ $kids{ $m->{name} } };
        my @problems;
        if (_alive_proc($m->{proc})) {
            # (and what they started since the SIGTERM, wherever it was reparented)
            my %k = map { $_->[0] => $_ } @kids, _descendants_procs($m->{proc}[0]),
                                          $self->_conf_procs($m);
            delete $k{ $m->{proc}[0] };
            @kids = values %k;
            $self->_seen($m, @kids);
            my @left = grep { _alive_proc($_) } $m->{proc}, @kids;
            push @problems, [ "did not exit within ${timeout}s of SIGTERM (the harness SIGKILLed it)",
                              "still running:\n" . _procs_info(@left) ];
            _signal('KILL', @left);
            $self->wait_for(sub { !grep { _alive_proc($_) } @left }, timeout => 5);
        }
        # the parent reaps its children (MPM children, the engine) before it
        # exits: any still alive 3 s later (a piped logger reading its end of
        # file needs a moment) was left behind
        elsif (!$self->wait_for(sub { !grep { _alive_proc($_) } @kids, $self->_conf_procs($m) },
                                timeout => 3)) {
            my %k = map { $_->[0] => $_ } grep { _alive_proc($_) } @kids, $self->_conf_procs($m);
            my @left = values %k;
            push @problems, [ "left processes behind after its parent exited on SIGTERM: pids "
                              . join(' ', map { $_->[0] } @left) . " (the harness SIGKILLed them)",
                              "still running:\n" . _procs_info(@left) ];
            _signal('KILL', @left);
            $self->wait_for(sub { !grep { _alive_proc($_) } @left }, timeout => 5);
        }
        else {
            push @problems, $self->_engine_stop_problems($m);
        }
        push @problems, $self->_crash_problems($m);
        _forget($m, 'stopped');
        $self->_problem($m, @$_) for @problems;
        $clean = 0 if @problems;
    }
    return $clean;
}

# Remembers processes of a member (for its sanitizer and valgrind reports).
sub _seen {
    my ($self, $m, @procs) = @_;
    $m->{seen_pids}{ $_->[0] } = 1 for grep { defined } @procs;
}

# A member the harness believes running whose parent has gone, not by its
# hand: a crash.  Returns 1 when there was nothing to report.
sub _check_died {
    my ($self, $m) = @_;
    return 1 unless $m->{proc} && ($m->{state} eq 'running' || $m->{state} eq 'sigstopped');
    my @p = ([ "exited before the harness stopped it (pid $m->{pid}): nobody asked it to" ],
             $self->_crash_problems($m));
    $self->_problem($m, @$_) for @p;
    return 0;
}

# A member whose parent went down on SIGTERM: its last cluster engine (if
# one ran and was not refused at startup, SC1246) must have logged its
# goodbye (SC1234 "cluster engine stopped") after it started (SC1236; the
# engine stops before or after httpd says "caught SIGTERM", depending on the
# MPM).  httpd SIGKILLs an engine that has not exited 3 s after its own
# SIGTERM, and an engine that crashed at stop is reaped there too: in both
# cases the error_log says nothing else.
sub _engine_stop_problems {
    my ($self, $m) = @_;
    my $log = $self->error_log($m, since_start => 1);
    return () if $log =~ /\bSC1246\b/;
    my $at = -1;
    $at = $-[0] while $log =~ /\bSC1236: cluster engine started\b/g;
    return () if $at < 0;
    return () if substr($log, $at) =~ /\bSC1234: cluster engine stopped\b/;
    return [ 'stopped, but its cluster engine did not say it stopped (no SC1234 after '
             . "its start): it hung or crashed at stop, and httpd killed it silently" ];
}

# What a member's error_log (since its last start) and the sanitizer and
# valgrind reports of its processes say about crashes: a list of
# [ what, diag ].  A child killed with SIGKILL (kill9, or a test killing one
# process) is no crash: httpd logs nothing for it, and the engine's SC1238
# says status 9.
my $CRASH_RE = qr{
      AH0005[12]:                      # child pid N exit signal S / possible coredump
    | AH00060:                         # seg fault or similar nasty error in the parent
    | AH0004[56]:                      # a child still alive at stop: SIGKILL / giving up
    | \bSC1238\b                       # the engine died (of what: below)
    | ==\d+==\s*ERROR:\s*(?:Address|Leak|Thread|Memory)Sanitizer
    | \bruntime\serror:                # UndefinedBehaviorSanitizer
}x;

sub _crash_problems {
    my ($self, $m) = @_;
    my @p;
    my @lines = grep { /$CRASH_RE/ } split /\n/, $self->error_log($m, since_start => 1);
    # the status of SC1238 is a wait status: a signal in its low 7 bits
    @lines = grep { !/\bSC1238\b.*\(status (\d+)\)/ || ($1 & 127) != 9 && ($1 & 127) != 0 } @lines;
    push @p, [ 'error_log shows a crash: ' . $lines[0],
               join("\n", 'every such line since its start:', @lines) ] if @lines;
    push @p, $self->_core_stacks($m, @lines);
    for my $dir (grep { $_ && -d $_ } $ENV{SC_SANITIZER_LOGS}, $ENV{SC_VALGRIND_LOGS}) {
        for my $pid (sort { $a <=> $b } keys %{ $m->{seen_pids} || {} }) {
            for my $f (glob("$dir/asan.$pid $dir/asan.$pid.* $dir/ubsan.$pid $dir/ubsan.$pid.* "
                            . "$dir/memcheck.$pid")) {
                next unless -f $f;
                my $text = _slurp($f);
                next if $f =~ m{/memcheck\.} && $text !~ /ERROR SUMMARY: [1-9]/;
                my @t = split /\n/, $text;
                @t = @t[0 .. 59] if @t > 60;
                push @p, [ "its process $pid left a report: $f", join("\n", @t) ];
            }
        }
    }
    return @p;
}

# The stacks of the crashed processes named in @lines (httpd's "child pid N
# exit signal", the engine's SC1238 "(pid N)"), from their cores: with
# SC_CORE_DIR set (CoreDumpDirectory), cores enabled (ulimit -c) and the
# kernel's core_pattern "core" with core_uses_pid (build/test.sh sets them
# where it can), each process leaves SC_CORE_DIR/core.N; gdb prints its
# threads' stacks.  Nothing when there is no core or no gdb.
sub _core_stacks {
    my ($self, $m, @lines) = @_;
    my $dir = $ENV{SC_CORE_DIR};
    return () unless $dir && -d $dir && _which('gdb');
    my %pids;
    for (@lines) {
        $pids{$1} = 1 if /child pid (\d+) exit signal/ || /\bSC1238\b.*\(pid (\d+)\)/;
    }
    my $httpd = $ENV{SC_REAL_HTTPD} || $self->{httpd};
    my @p;
    for my $pid (sort { $a <=> $b } keys %pids) {
        my ($core) = grep { -f } "$dir/core.$pid";
        next unless $core;
        my ($rc, $out) = $self->_run([ 'gdb', '-q', '-batch', '-nx', '-ex', 'set pagination off',
                                       '-ex', 'thread apply all bt 25', $httpd, $core ],
                                     timeout => 60);
        my @t = grep { /^(?:#\d|Thread |Program terminated|Core was generated)/ } split /\n/, $out // '';
        @t = @t[0 .. 119] if @t > 120;
        push @p, [ "its process $pid left a core: $core", join("\n", "gdb (exit $rc):", @t) ];
    }
    return @p;
}

# One line per process: pid, state, what it waits in (wchan), the command.
sub _procs_info {
    my @out;
    for my $p (@_) {
        my @f = _stat_fields($p->[0]);
        my $wchan = _slurp("/proc/$p->[0]/wchan");
        my $cmd = _slurp("/proc/$p->[0]/cmdline");
        $cmd =~ s/\0+\z//;
        $cmd =~ tr/\0/ /;
        my $threads = () = glob("/proc/$p->[0]/task/*");
        push @out, sprintf('  pid %d state %s ppid %s threads %d wchan %s: %s', $p->[0],
                           $f[0] // '?', $f[1] // '?', $threads, $wchan || '-', $cmd);
    }
    return join("\n", @out);
}

# A member hung or crashed: a failed test (Test::More loaded; the harness
# note on stderr otherwise, and the exit status), with the member's error_log
# tail since its start.
sub _problem {
    my ($self, $m, $what, $diag) = @_;
    my $name = "SC::Cluster: member $m->{name} $what";
    my @log = split /\n/, $self->error_log($m, since_start => 1);
    @log = @log[-30 .. -1] if @log > 30;
    my $text = join("\n", grep { defined && length } $diag,
                    "--- $m->{name} error_log tail ($m->{error_log}):", @log);
    push @{ $self->{problems} }, "$m->{name}: $what";
    if ($INC{'Test/Builder.pm'}) {
        # report it at the test's line that stopped the member (in END or
        # DESTROY there is none: then here)
        my $up = 0;
        $up++ while caller($up + 1) && (caller($up + 1))[1] =~ m{SC/Cluster\.pm\z};
        local $Test::Builder::Level = $Test::Builder::Level + $up + 2
            if caller($up + 1);
        my $ok = eval {
            my $tb = Test::Builder->new;
            $tb->ok(0, $name);
            $tb->diag($text);
            1;
        };
        return if $ok;      # (else Test2 has finished: global destruction)
    }
    $FAILED_WITHOUT_TB++;
    _note("$name\n$text");
}

# The hangs and crashes found so far ("name: what"), for the harness's own test.
sub problems { @{ $_[0]{problems} || [] } }

sub _forget {
    my ($m, $state) = @_;
    $m->{last_pid} = $m->{pid} if $m->{pid};
    $m->{proc} = undef;
    $m->{pid} = undef;
    $m->{state} = $state;
}

# A crash of the whole instance: SIGKILL to the parent and all its children.
# Every one of them is SIGSTOPped first, so that none runs between the first
# SIGKILL and the last (the parent cannot fork replacements; the engine, which
# watches its parent, cannot see it die and say goodbye to the peers as at a
# stop: a killed member must look killed).  Waits until all are gone; returns
# the list of pids killed.
sub kill9 {
    my ($self, $name) = @_;
    my $m = $self->_m($name);
    $self->_running_or_croak($m, 'kill9');
    my @procs = $self->_freeze($m);
    $self->_seen($m, @procs);
    # a crash before the kill is still a crash (the kill itself logs nothing)
    my @crashes = $self->_crash_problems($m);
    _signal('KILL', @procs);
    $self->wait_for(sub { !grep { _alive_proc($_) } @procs }, timeout => 5)
        or croak "SC::Cluster: $m->{name}: processes survived SIGKILL: "
               . join(' ', map { $_->[0] } grep { _alive_proc($_) } @procs);
    _forget($m, 'killed');
    $self->_problem($m, @$_) for @crashes;
    return map { $_->[0] } @procs;
}

# A crash of httpd's parent alone (kill -9 of the pid in its pid file): SIGKILL
# to the parent only.  Its children (the MPM children, the cluster engine) are
# left to find out by themselves, as after a real crash of the parent.  A
# parent killed on purpose is no failure: the processes it leaves (those
# running at the kill, and any process of its httpd.conf found later) are
# SIGKILLed by stop, stop_all, teardown or the next start of the member.
# Returns the pids of the descendants running at the kill.
sub kill_parent {
    my ($self, $name) = @_;
    my $m = $self->_m($name);
    $self->_running_or_croak($m, 'kill_parent');
    my $parent = $m->{proc};
    my %k = map { $_->[0] => $_ } _descendants_procs($parent->[0]), $self->_conf_procs($m);
    delete $k{ $parent->[0] };
    my @kids = values %k;
    $self->_seen($m, $parent, @kids);
    # a crash before the kill is still a crash (the kill itself logs nothing)
    my @crashes = $self->_crash_problems($m);
    _signal('KILL', $parent);
    $self->wait_for(sub { !_alive_proc($parent) }, timeout => 5)
        or croak "SC::Cluster: $m->{name}: its parent $parent->[0] survived SIGKILL";
    _forget($m, 'parent-killed');
    $m->{orphans} = \@kids;
    $self->_problem($m, @$_) for @crashes;
    return map { $_->[0] } @kids;
}

# What a member whose parent was killed (kill_parent) left running: SIGKILLed.
sub _kill_orphans {
    my ($self, $m) = @_;
    my $o = delete $m->{orphans} or return;
    my %k = map { $_->[0] => $_ } grep { _alive_proc($_) } @$o, $self->_conf_procs($m);
    my @left = values %k;
    return unless @left;
    $self->_seen($m, @left);
    _signal('KILL', @left);
    $self->wait_for(sub { !grep { _alive_proc($_) } @left }, timeout => 5)
        or croak "SC::Cluster: $m->{name}: processes survived SIGKILL: "
               . join(' ', map { $_->[0] } grep { _alive_proc($_) } @left);
}

# SIGSTOP to the member's parent, then to its descendants until no new one
# shows up (a child forked just before the parent stopped may not be listed
# at first), and to any other process running its httpd.conf (none, unless
# one escaped its parent).  Returns them all, the parent first.
sub _freeze {
    my ($self, $m) = @_;
    _signal('STOP', $m->{proc});
    my %seen = ($m->{proc}[0] => 1);
    my @procs = ($m->{proc});
    for (1 .. 5) {
        my @new = grep { !$seen{ $_->[0] }++ }
                  _descendants_procs($m->{proc}[0]), $self->_conf_procs($m);
        last unless @new;
        _signal('STOP', @new);
        push @procs, @new;
        select(undef, undef, undef, 0.02);
    }
    _wait_stopped(map { $_->[0] } grep { _alive_proc($_) } @procs);
    return @procs;
}

# The processes whose command line runs this member's httpd.conf (httpd -f
# CONF, the way _launch starts it: the parent, its children, the engine,
# wherever they were reparented), or whose environment has
# SC_CLUSTER_CONF=CONF (_launch sets it: anything httpd started), as
# [pid, starttime].  httpd starts its piped loggers already in its first
# pass over the configuration, before it daemonises: the loggers of that
# pass are children of the process _launch ran, which exits then (they are
# reparented to PID 1), and the daemon, for which they are no children,
# takes them for exited when it clears that pass's logs (waitpid: ECHILD) and
# never signals them.  A logger that ignores its end of file (or leaves a
# process that does) runs on after the member's stop: neither the parent's
# descendant nor running httpd.conf, only its environment says whose it is.
sub _conf_procs {
    my ($self, $m) = @_;
    my @out;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        next if $pid == $$;
        my @a = split /\0/, _slurp("/proc/$pid/cmdline");
        next unless grep({ $a[$_] eq '-f' && ($a[$_ + 1] // '') eq $m->{conf} } 0 .. $#a)
            || grep { $_ eq "SC_CLUSTER_CONF=$m->{conf}" } split /\0/, _slurp("/proc/$pid/environ");
        my $st = _starttime($pid);
        push @out, [ $pid, $st ] if defined $st;
    }
    closedir $dh;
    return @out;
}

# SIGSTOP the parent and all its children (a hung instance); sigcont resumes.
sub sigstop {
    my ($self, $name) = @_;
    my $m = $self->_m($name);
    $self->_running_or_croak($m, 'sigstop');
    my @procs = $self->_freeze($m);
    $m->{state} = 'sigstopped';
    $self->_seen($m, @procs);
    return map { $_->[0] } @procs;
}

sub sigcont {
    my ($self, $name) = @_;
    my $m = $self->_m($name);
    $self->_running_or_croak($m, 'sigcont');
    my @procs = _descendants_procs($m->{proc}[0]);
    _signal('CONT', @procs, $m->{proc});
    $m->{state} = 'running';
    return map { $_->[0] } ($m->{proc}, @procs);
}

# ---------------------------------------------------------------------------
# Network namespaces
# ---------------------------------------------------------------------------

# undef when `netns => 1` can work here, else the reason (tests fail with it).
sub netns_unavailable {
    return $NETNS_REASON if defined $NETNS_REASON;
    my $why = '';
    if ($> != 0) { $why = 'network namespaces need root' }
    elsif (!_which('ip')) { $why = "no 'ip' command (iproute2)" }
    elsif (!_which('curl')) { $why = "no 'curl' command (requests into namespaces use it)" }
    else {
        my $probe = "sc-probe-$$";
        my ($rc, $out) = __PACKAGE__->_run([ 'ip', 'netns', 'add', $probe ], timeout => 10);
        if ($rc != 0) {
            chomp $out;
            $why = "'ip netns add' failed: $out";
        }
        else {
            my ($rc2, $out2) = __PACKAGE__->_run(
                [ 'ip', '-n', $probe, 'link', 'add', 'br0', 'type', 'bridge' ], timeout => 10);
            chomp $out2;
            $why = "cannot create a bridge in a namespace: $out2" if $rc2 != 0;
            __PACKAGE__->_run([ 'ip', 'netns', 'del', $probe ], timeout => 10);
        }
    }
    $NETNS_REASON = $why;
    return $why eq '' ? undef : $why;
}

sub _ip {
    my ($self, @args) = @_;
    my ($rc, $out) = $self->_run([ 'ip', @args ], timeout => 20);
    croak "SC::Cluster: `ip @args` failed (exit $rc): $out" if $rc != 0;
    return $out;
}

sub _setup_netns {
    my $self = shift;
    my $br = $self->{bridge_ns};
    $self->_ip('netns', 'add', $br);
    push @{ $self->{netns_created} }, $br;
    $self->_ip('-n', $br, 'link', 'set', 'lo', 'up');
    $self->_ip('-n', $br, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    $self->_ip('-n', $br, 'link', 'set', 'br0', 'up');
    for my $m (@{ $self->{members} }) {
        my $ns = $m->{netns};
        $self->_ip('netns', 'add', $ns);
        push @{ $self->{netns_created} }, $ns;
        $self->_ip('-n', $br, 'link', 'add', $m->{host_if}, 'type', 'veth',
                   'peer', 'name', 'eth0', 'netns', $ns);
        $self->_ip('-n', $br, 'link', 'set', $m->{host_if}, 'master', 'br0');
        $self->_ip('-n', $br, 'link', 'set', $m->{host_if}, 'up');
        $self->_ip('-n', $ns, 'link', 'set', 'lo', 'up');
        $self->_ip('-n', $ns, 'addr', 'add', "$m->{addr}/24", 'dev', 'eth0');
        $self->_ip('-n', $ns, 'link', 'set', 'eth0', 'up');
        $self->_ip('-n', $ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0');
        $m->{partitioned} = 0;
    }
}

sub _need_netns {
    my ($self, $what) = @_;
    croak "SC::Cluster: $what needs a cluster made with netns => 1" unless $self->{netns};
}

# Cuts the member off the bridge (its bridge-side veth goes down).
sub partition {
    my ($self, $name) = @_;
    $self->_need_netns('partition');
    my $m = $self->_m($name);
    $self->_ip('-n', $self->{bridge_ns}, 'link', 'set', $m->{host_if}, 'down');
    $m->{partitioned} = 1;
}

sub heal {
    my ($self, $name) = @_;
    $self->_need_netns('heal');
    my $m = $self->_m($name);
    $self->_ip('-n', $self->{bridge_ns}, 'link', 'set', $m->{host_if}, 'up');
    $m->{partitioned} = 0;
}

# Runs a command in the member's namespace (or plainly, without netns):
# returns ($exit_code, $stdout_and_stderr).  Option timeout (30 s).
sub exec_in {
    my ($self, $name, @cmd) = @_;
    my %o;
    %o = %{ shift @cmd } if ref $cmd[0] eq 'HASH';
    my $m = $self->_m($name);
    return $self->_run([ $self->_prefix($m), @cmd ], timeout => $o{timeout} || 30);
}

# Starts a command in the background, inside member $name's namespace (netns;
# plainly otherwise, or when $name is undef), in its own process group, stdin
# /dev/null, stdout and stderr to a file.  Returns a handle for finish();
# teardown kills what is still running.  Options (a hash ref first): out
# (file; default a temp file).
sub spawn {
    my ($self, $name, @cmd) = @_;
    my %o;
    %o = %{ shift @cmd } if ref $cmd[0] eq 'HASH';
    my @prefix = defined $name ? $self->_prefix($self->_m($name)) : ();
    my $tmp;
    my $out = $o{out};
    if (!defined $out) {
        $tmp = File::Temp->new(TMPDIR => 1, TEMPLATE => 'sc-spawn-XXXXXX');
        $out = $tmp->filename;
    }
    STDOUT->flush;
    STDERR->flush;
    my $pid = fork;
    croak "SC::Cluster: fork: $!" unless defined $pid;
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE CHLD ALRM);
        my @c = (@prefix, @cmd);
        { no warnings "exec"; exec { $c[0] } @c; }
        print STDERR "exec $c[0]: $!\n";
        POSIX::_exit(127);
    }
    my $h = { pid => $pid, proc => [ $pid, _starttime($pid) ], out => $out, tmp => $tmp,
              cmd => [ @cmd ] };
    push @{ $self->{spawned} }, $h;
    return $h;
}

# Waits for a spawn()ed command (timeout 60 s; then kills its process group):
# ($exit, $output); $exit -1 on timeout or a signal.
sub finish {
    my ($self, $h, %o) = @_;
    my $deadline = time + ($o{timeout} || 60);
    my $rc;
    while (1) {
        my $w = waitpid($h->{pid}, WNOHANG);
        if ($w == $h->{pid}) { $rc = $? & 127 ? -1 : $? >> 8; last }
        if ($w < 0) { $rc = -1; last }
        if (time >= $deadline) {
            kill 'KILL', -$h->{pid};
            kill 'KILL', $h->{pid};
            waitpid($h->{pid}, 0);
            $rc = -1;
            last;
        }
        sleep 0.02;
    }
    $h->{done} = 1;
    $self->{spawned} = [ grep { $_ != $h } @{ $self->{spawned} || [] } ];
    return ($rc, _slurp($h->{out}));
}

sub _kill_spawned {
    my $self = shift;
    for my $h (@{ $self->{spawned} || [] }) {
        next if $h->{done};
        if (_alive_proc($h->{proc})) {
            kill 'KILL', -$h->{pid};
            kill 'KILL', $h->{pid};
        }
        waitpid($h->{pid}, 0);
    }
    $self->{spawned} = [];
}

# netns: the member goes silent without losing its link: an nftables table in
# its namespace drops every packet in and out except on loopback (TCP peers
# see no answer, no reset, no ICMP).  unsilence removes the table.
sub silence {
    my ($self, $name) = @_;
    $self->_need_netns('silence');
    my $m = $self->_m($name);
    croak "SC::Cluster: silence needs the 'nft' command (nftables)" unless _which('nft');
    my $rules = "table inet scsilent {\n"
              . "  chain in { type filter hook input priority -300; policy drop; iif lo accept; }\n"
              . "  chain out { type filter hook output priority -300; policy drop; oif lo accept; }\n"
              . "}\n";
    my $f = "$self->{base}/silence-$m->{name}.nft";
    _write_file($f, $rules, 0644);
    my ($rc, $out) = $self->exec_in($m, 'nft', '-f', $f);
    croak "SC::Cluster: nft in $m->{name}'s namespace failed: $out" if $rc != 0;
    $m->{silenced} = 1;
}

sub unsilence {
    my ($self, $name) = @_;
    $self->_need_netns('unsilence');
    my $m = $self->_m($name);
    my ($rc, $out) = $self->exec_in($m, 'nft', 'delete', 'table', 'inet', 'scsilent');
    croak "SC::Cluster: nft delete in $m->{name}'s namespace failed: $out" if $rc != 0;
    $m->{silenced} = 0;
}

# True when a TCP connection from member $from to $to (a member name, or an
# address) on $port (default: $to's http_port) succeeds within `timeout` (2 s).
sub can_connect {
    my ($self, $from, $to, %o) = @_;
    my ($addr, $port);
    if (ref $to || $self->{by_name}{$to}) {
        my $t = $self->_m($to);
        ($addr, $port) = ($t->{addr}, $o{port} || $t->{http_port});
    }
    else {
        ($addr, $port) = ($to, $o{port}) ;
        croak "SC::Cluster::can_connect: port needed for address $to" unless $port;
    }
    my $timeout = $o{timeout} || 2;
    my ($rc) = $self->exec_in($from, { timeout => $timeout + 10 }, $^X,
        '-MIO::Socket::INET', '-e',
        'exit(IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], '
        . 'Proto => "tcp", Timeout => $ARGV[2]) ? 0 : 1)', $addr, $port, $timeout);
    return $rc == 0 ? 1 : 0;
}

# ---------------------------------------------------------------------------
# Teardown
# ---------------------------------------------------------------------------

sub teardown {
    my $self = shift;
    return if $self->{torn_down} || $self->{owner} != $$;
    $self->{torn_down} = 1;
    local ($@, $!, $?);
    eval { $self->_kill_spawned; 1 } or _note("teardown: spawned commands: $@");
    eval { $self->stop_all(timeout => $self->{stop_timeout}); 1 }
        or _note("teardown: stopping members: $@");
    if (@{ $self->{netns_created} }) {
        eval { $self->_teardown_netns; 1 } or _note("teardown: namespaces: $@");
    }
    if ($self->{keep}) {
        _note("SC_KEEP: member directories kept in $self->{base}");
    }
    elsif ($self->{base} && -d $self->{base}
           && $self->{base} =~ m{/cluster-$$-$self->{seq}\z}) {
        remove_tree($self->{base}, { error => \my $err });
        _note("teardown: could not remove $self->{base}") if @$err;
        rmdir $self->{alt_root} if $self->{alt_root};    # only when empty
    }
    @LIVE = grep { defined $_ && $_ != $self } @LIVE;
    weaken($_) for @LIVE;
    return 1;
}

sub _teardown_netns {
    my $self = shift;
    # processes this harness started (still alive after stop_all, which is rare)
    my %ours;
    for my $m (@{ $self->{members} }) {
        for my $p (grep { defined } $m->{proc}) {
            $ours{ $p->[0] } = $p;
            $ours{ $_->[0] } = $_ for _descendants_procs($p->[0]);
        }
    }
    for my $ns (reverse @{ $self->{netns_created} }) {
        my ($rc, $out) = $self->_run([ 'ip', 'netns', 'pids', $ns ], timeout => 10);
        my @pids = $rc == 0 ? ($out =~ /(\d+)/g) : ();
        my @kill = grep { $ours{$_} } @pids;
        my @foreign = grep { !$ours{$_} } @pids;
        if (@kill) {
            _signal('KILL', map { $ours{$_} } @kill);
            $self->wait_for(sub { !grep { _alive_proc($ours{$_}) } @kill }, timeout => 3);
        }
        _note("teardown: namespace $ns still holds processes the harness did not start "
              . "(@foreign); not killing them, removing the name only") if @foreign;
        ($rc, $out) = $self->_run([ 'ip', 'netns', 'del', $ns ], timeout => 20);
        _note("teardown: `ip netns del $ns` failed: $out") if $rc != 0;
    }
    $self->{netns_created} = [];
}

sub DESTROY {
    my $self = shift;
    $self->teardown if !$self->{torn_down} && $self->{owner} == $$;
}

sub _teardown_all {
    for my $c (grep { defined } @LIVE) {
        eval { $c->teardown; 1 } or _note("teardown: $@");
    }
}

END {
    local $?;
    _teardown_all();
    _release_ports();
}

# A second END block, compiled at run time by the first new(): END blocks run
# last-defined first, so it runs before Test::More's (compiled when the test
# file was), and a member that hangs or crashes at the final teardown still
# fails the test file.  Without Test::More the exit status says it.
my $END_INSTALLED;
sub _install_end_block {
    return if $END_INSTALLED++;
    eval 'END { SC::Cluster::_end_teardown() } 1' or die $@;
}

sub _end_teardown {
    my $st = $?;
    _teardown_all();
    $? = $st;
    $? = 1 if !$? && $FAILED_WITHOUT_TB;
}

sub _install_signal_handlers {
    my %num = (HUP => 1, INT => 2, TERM => 15);
    for my $sig (sort keys %num) {
        next if $SIG_INSTALLED{$sig}++;
        my $prev = $SIG{$sig};
        $SIG{$sig} = sub {
            _note("caught SIG$sig: tearing down the cluster");
            _teardown_all();
            _release_ports();
            if (ref $prev eq 'CODE') {
                $prev->(@_);
                return;
            }
            # die of the signal, as without the harness; Perl blocks the signal
            # while its handler runs, so unblock it after re-raising
            $SIG{$sig} = 'DEFAULT';
            kill $sig, $$;
            POSIX::sigprocmask(POSIX::SIG_UNBLOCK(), POSIX::SigSet->new($num{$sig}));
            sleep 1;
            POSIX::_exit(128 + $num{$sig});
        };
    }
}

# ---------------------------------------------------------------------------
# Processes (only ever those started here: pid plus start time)
# ---------------------------------------------------------------------------

sub _stat_fields {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/stat" or return;
    my $s = <$fh>;
    close $fh;
    return unless defined $s && $s =~ /\)\s+(.*)\z/s;
    return split ' ', $1;    # [0]=state [1]=ppid ... [19]=starttime
}

sub _starttime {
    my $pid = shift;
    my @f = _stat_fields($pid) or return;
    # a zombie is gone, unless it is a thread-group leader whose other
    # threads are still exiting: they hold its file descriptors (an MPM
    # child's listening socket still accepts until the last one is gone)
    return if ($f[0] eq 'Z' || $f[0] eq 'X') && !_threads_left($pid);
    return $f[19];
}

sub _threads_left {
    my $pid = shift;
    opendir my $dh, "/proc/$pid/task" or return 0;
    my @tids = grep { /^\d+$/ && $_ != $pid } readdir $dh;
    closedir $dh;
    for my $tid (@tids) {
        open my $fh, '<', "/proc/$pid/task/$tid/stat" or next;
        my $st = <$fh>;
        close $fh;
        return 1 if defined $st && $st =~ /\)\s+([A-Za-z])/ && $1 ne 'Z' && $1 ne 'X';
    }
    return 0;
}

sub _alive {
    my $pid = shift;
    return defined _starttime($pid) ? 1 : 0;
}

# Threads of process $pid that are not stopped yet (state T, t) nor gone.
sub _threads_running {
    my $pid = shift;
    opendir my $dh, "/proc/$pid/task" or return 0;
    my @tids = grep { /^\d+$/ } readdir $dh;
    closedir $dh;
    my $n = 0;
    for my $tid (@tids) {
        open my $fh, '<', "/proc/$pid/task/$tid/stat" or next;
        my $st = <$fh>;
        close $fh;
        $n++ if defined $st && $st =~ /\)\s+([A-Za-z])/ && $1 !~ /^[TtZX]$/;
    }
    return $n;
}

# SIGSTOP to each pid, then a wait until every thread of each is stopped.
# kill returns as soon as the signal is queued; the kernel wakes one thread
# to take it, and until that one runs (on a busy machine: milliseconds) the
# process's other threads go on serving.  A test that freezes a server and
# then talks to it must wait for the stop.  Returns how many pids were
# signalled (as kill); croaks when a thread still runs after 5 s.  Function
# or method.
sub freeze_pids {
    shift if ref $_[0] || ($_[0] // '') eq __PACKAGE__;
    my @pids = grep { $_ && $_ > 1 } @_;
    my $n = 0;
    $n += kill 'STOP', $_ for @pids;
    _wait_stopped(@pids);
    return $n;
}

sub _wait_stopped {
    my @pids = @_;
    my $deadline = time + 5;
    while (1) {
        my @running = grep { _alive($_) && _threads_running($_) } @pids;
        return 1 unless @running;
        croak "SC::Cluster: SIGSTOP sent, still running after 5 s: @running" if time > $deadline;
        select(undef, undef, undef, 0.005);
    }
}

# True while a process with this pid exists and has not exited (a zombie
# waiting for its parent, e.g. a daemonised httpd waiting for PID 1 to reap
# it, counts as gone; kill 0 would still succeed on it).  Function or method.
sub pid_alive { _alive($_[-1]) }

sub _alive_proc {
    my $p = shift;
    return 0 unless $p;
    my $st = _starttime($p->[0]);
    return defined $st && (!defined $p->[1] || $st eq $p->[1]) ? 1 : 0;
}

sub _descendants {
    my $root = shift;
    my %kids;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my @f = _stat_fields($pid) or next;
        next if ($f[0] eq 'Z' || $f[0] eq 'X') && !_threads_left($pid);
        push @{ $kids{ $f[1] } }, [ $pid, $f[19] ];
    }
    closedir $dh;
    my @out;
    my @queue = ($root);
    while (@queue) {
        my $p = shift @queue;
        for my $k (@{ $kids{$p} || [] }) {
            push @out, $k;
            push @queue, $k->[0];
        }
    }
    return @out;
}

sub _descendants_procs { _descendants(@_) }

# Signals each [pid, starttime] that is still the same process.
sub _signal {
    my ($sig, @procs) = @_;
    my $n = 0;
    for my $p (@procs) {
        next unless $p && _alive_proc($p);
        $n += kill $sig, $p->[0];
    }
    return $n;
}

sub _read_pid {
    my $f = shift;
    open my $fh, '<', $f or return;
    my $s = do { local $/; <$fh> };
    close $fh;
    return defined $s && $s =~ /^\s*(\d+)\s*\n/ ? $1 : undef;
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

# Runs @$cmd with stdin from /dev/null and stdout+stderr to a temp file, in its
# own process group; kills that group after `timeout`.  Returns ($exit, $out);
# $exit is -1 on timeout or when the command could not run.
sub _run {
    my ($self, $cmd, %o) = @_;
    my $timeout = $o{timeout} || 30;
    my $tmp = File::Temp->new(TMPDIR => 1, TEMPLATE => 'sc-run-XXXXXX');
    local $SIG{CHLD} = 'DEFAULT';
    STDOUT->flush;
    STDERR->flush;
    my $pid = fork;
    croak "SC::Cluster: fork: $!" unless defined $pid;
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $tmp->filename;
        open STDERR, '>&', \*STDOUT;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE);
        { no warnings "exec"; exec { $cmd->[0] } @$cmd; }
        print STDERR "exec $cmd->[0]: $!\n";
        POSIX::_exit(127);
    }
    my $deadline = time + $timeout;
    my $rc;
    my $delay = 0.002;
    while (1) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid) { $rc = $? & 127 ? -1 : $? >> 8; last }
        if ($w < 0) { $rc = -1; last }
        if (time >= $deadline) {
            kill 'KILL', -$pid;
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $rc = -1;
            my $out = _slurp($tmp->filename);
            return (-1, "timeout after ${timeout}s: @$cmd\n$out");
        }
        sleep $delay;
        $delay = 0.02 if ($delay *= 2) > 0.02;
    }
    return ($rc, _slurp($tmp->filename));
}

# The path of a command (PATH, then the sbin/bin directories), or undef.
sub which { _which($_[-1]) }

sub _which {
    my $prog = shift;
    for my $d (split(/:/, $ENV{PATH} || ''), '/usr/sbin', '/sbin', '/usr/bin', '/bin') {
        return "$d/$prog" if $d ne '' && -x "$d/$prog";
    }
    return;
}

sub _slurp {
    my $f = shift;
    open my $fh, '<', $f or return '';
    local $/;
    my $s = <$fh>;
    close $fh;
    return defined $s ? $s : '';
}

sub _write_file {
    my ($f, $text, $mode) = @_;
    open my $fh, '>', $f or croak "SC::Cluster: write $f: $!";
    print $fh $text;
    close $fh or croak "SC::Cluster: close $f: $!";
    chmod $mode, $f if defined $mode;
}

sub _note {
    my $msg = shift;
    $msg =~ s/\n+\z//;
    $msg =~ s/^/# SC::Cluster: /mg;
    print STDERR "$msg\n";
}

1;

__END__

=head1 NAME

SC::Cluster - start, stop, kill and partition several mod_session_cluster members

=head1 SYNOPSIS

  use SC::Cluster;
  my $c = SC::Cluster->new(members => 3);          # node1..node3 on 127.0.0.1
  $c->start_all;
  my ($status, $h, $body) = $c->get(node1 => '/cluster-manager?auto');
  $c->kill9('node2'); $c->restart('node2');
  $c->stop('node1');

  {
      my $why = SC::Cluster->netns_unavailable;
      die "network namespaces: $why" if $why;
      my $n = SC::Cluster->new(members => 2, netns => 1);
      $n->start_all;
      $n->partition('node2'); $n->heal('node2');
  }

=head1 API

=over

=item SC::Cluster->new(%opt)

Makes the member directories and configurations (and, with netns, the
namespaces); starts nothing.  Options:
members (count => node1..nodeN, or [names]; default 2),
mpm (event|worker|prefork; event),
loglevel (warn),
cluster (string, or sub { my ($member, $all_members) = @_; ... } returning the
<Cluster> block; default static_block),
extra_conf (string or the same kind of sub; appended to httpd.conf),
modules ([short names], LoadModule <name>_module mod_<name>.so),
status (1: load mod_status),
manager_location (0: leave out <Location /cluster-manager>),
member_opts ({ name => { cluster, extra_conf, loglevel, mpm, modules, status, manager, env, route } };
route => undef leaves SessionClusterRoute out, route => 'x' renames it),
env ({ NAME => value, ... }: environment variables set for httpd -t and
httpd, so for the parent and everything it starts, the engine included; in
member_opts for one member; a variable already set, LD_PRELOAD say, is
replaced: a test that adds to one joins the old value itself),
front ('front', or { name => 'front', <front_conf options> }: one more member,
last, without a route, that loads mod_proxy, mod_proxy_http,
mod_proxy_balancer, mod_slotmem_shm and mod_lbmethod_byrequests before the
module and whose extra_conf is front_conf() unless member_opts give one; the
default static_block of every member lists it, and it lists every member),
netns (1: one namespace per member behind a bridge),
subnet (netns: "10.200.K", default K from pid), http_port/cluster_port (netns: 8080/4000),
start_timeout ($ENV{SC_START_TIMEOUT} or 10), stop_timeout ($ENV{SC_STOP_TIMEOUT} or 10), keep ($ENV{SC_KEEP}),
httpd ($ENV{SC_HTTPD}), module_so ($ENV{SC_MODULE_SO}), libexecdir ($ENV{SC_LIBEXECDIR}),
user/group (as root: nobody/nogroup).

=item start($name, timeout => s) / start_all(timeout => s)

httpd -t, then httpd -f conf; waits until the pid file names a live process
that answers GET /cluster-manager?auto with 200.  Dies with httpd's output or
the error_log tail.  start_all starts in parallel.  Return the pid(s).

=item stop($name, timeout => s, cont => 1) / stop_all

SIGTERM (and SIGCONT), wait, SIGKILL after the timeout (stop_timeout).  1 if
the member went down cleanly on SIGTERM (or was not running), else 0.  A
member that does not exit within the timeout, leaves processes behind once
its parent exited, had exited without being asked, or whose error_log since
its start shows a crash (AH00051/AH00052 a child dead of a signal other than
SIGKILL, AH00060, AH00045/AH00046, SC1238 an engine dead of a signal other
than SIGKILL, a sanitizer report) or whose processes left a report in
$SC_SANITIZER_LOGS / $SC_VALGRIND_LOGS, is a failed test when Test::More is
loaded (Test::Builder ok(0) named "SC::Cluster: member NAME ...", with a
diag of the processes still running and the error_log tail), also when
teardown runs from DESTROY or END (after done_testing or a fixed plan: the
count no longer matches and the test fails).  Without Test::More: a note on
stderr and exit status 1.  The same check runs in teardown and kill9 (for a
crash before the kill); a member kill9ed or left sigstopped is no failure.
A member whose engine ran and whose httpd went down on SIGTERM must show the
engine's goodbye (SC1234 "cluster engine stopped") after the last engine
start (SC1236): else it failed at stop (httpd SIGKILLs a hung engine after 3 s and
logs nothing).  cont => 0: no SIGCONT (a frozen process stays frozen, to
test a hang at stop).

=item kill9($name)

SIGKILL to the parent and all descendants; waits until gone; returns their pids.

=item kill_parent($name)

SIGKILL to httpd's parent only (a crashed parent); waits until it is gone;
returns the pids of its descendants at the kill, which are left running.  No
failure: stop, stop_all, teardown and the next start SIGKILL what it left (those
processes and any other running its httpd.conf).

=item sigstop($name) / sigcont($name)

Stop / continue parent and descendants; return their pids.

=item graceful($name, timeout => s)

SIGUSR1; waits for a new "resuming normal operations" and a 200; returns the pid.

=item restart($name)

Stops the member if it runs, then start()s it with its current httpd.conf.

=item configure($name, %opt)

Changes per-member options (as in member_opts, plus route) and rewrites httpd.conf.

=item get($name, $path, timeout => 5, from => $member, port => $p, headers => {...})

($status, \%headers (lower-case names), $body); $status 0 and
$headers->{_error} when nothing answered.  Loopback: a raw HTTP/1.0 socket.
netns: curl run inside the member's (or from's) namespace.

=item post($name, $path, $body, content_type => 'application/x-www-form-urlencoded', ...), request($name, $method, $path, body => ..., ...)

The same for a POST (or any method) with a body.

=item front, routed

The front's name (or undef); the names of the members that have a route.

=item spawn($name, [{ out => $file },] @cmd) / finish($handle, timeout => 60)

Runs a command in the background (in $name's namespace with netns; $name
undef: here), stdout and stderr to a file; finish waits and returns ($exit,
$output).  Teardown kills what still runs.

=item silence($name) / unsilence($name)

netns: an nftables table in the member's namespace drops every packet in and
out but loopback (the link stays up: peers see no reset, no ICMP, only
silence).  Needs nft (nftables).

=item member($name)

The member hash: name route index http_port cluster_port addr dir conf
error_log access_log pid_file htdocs run_dir pid state unique_id, and with
netns: netns host_if.

=item members, pids($name), is_running($name), error_log($name, since_start => 1), log_tail($name, $n), base_dir, netns_names, config_text($name), write_conf($name)

=item wait_for(sub {...}, timeout => 10, interval => 0.05)

Polls; returns the condition's true value, or '' on timeout.

=item partition($name) / heal($name)

netns: the member's bridge-side veth down / up.

=item exec_in($name, [{timeout => s},] @cmd)

($exit, $output) of a command run inside the member's namespace.

=item can_connect($from, $to, port => p, timeout => 2)

TCP connect from inside $from's namespace to member $to (or an address plus port).

=item problems

The hangs and crashes reported so far ("name: what").

=item teardown

Stops all members (as stop_all: a hang or a crash fails the test), deletes the namespaces, removes the directories (unless
keep).  Also run by DESTROY, END and SIGINT/SIGTERM/SIGHUP handlers.

=item SC::Cluster::front_conf($front, $all, %opt)

A front balancer's httpd.conf text: LoadModule lines (guarded by IfModule),
<Proxy balancer://NAME> with one BalancerMember http://ADDR:HTTP_PORT
route=ROUTE per member with a route, ProxySet
stickysession=JSESSIONID|jsessionid lbmethod=byrequests, ProxyPass and
ProxyPassReverse PATH, SessionClusterBalancer balancer://NAME and a
balancer-manager location.  Options: balancer ('members'), path ('/app'),
members ([names]), retry, timeout, connectiontimeout (BalancerMember
parameters, unset by default), worker ('k=v ...' more of them),
extra_members (['URL route=x status=+H', ...]), proxyset ('k=v ...'),
session_cluster_balancer (1; 0 leaves it out), balancer_manager
('/balancer-manager'; '' for none), load_modules (1).

=item SC::Cluster->netns_unavailable, SC::Cluster::static_block($m, $all, channelSendOptions => 8, channelStartOptions => 3, manager => { attr => value }, valves => [ '<Valve .../>' ], jvm_route_binder => 1 | { attr => value }, membership => { attr => value }), SC::Cluster::valves(%opt), SC::Cluster::free_port, SC::Cluster::pid_alive($pid), SC::Cluster::which($command)

free_port: a port on 127.0.0.1 below the ephemeral range, free (a bind
works) and reserved for this process against every other SC::Cluster
process by a file in /tmp/sc-cluster-ports (removed at its end; a
reservation whose process is gone is stale).

=back

=cut
