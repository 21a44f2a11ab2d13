#!/usr/bin/perl
# check-layers.pl: the module's files call each other downward only.
#
# Each source file of mod_session_cluster/ sits on a floor (@FLOORS below,
# bottom first).  A file may call functions of its own floor or of lower
# floors, never of a higher one, and the files of one floor may not call each
# other in a circle.  A file on no floor is an error: a new file must be placed.
#
# The calls are read from the compiled objects with nm: an undefined reference
# in A.o to a global function defined in B.o is a call edge A -> B.  A call
# through a function pointer that a higher layer registered (a handler table)
# is no reference of the caller, so it is no edge: that is the way up.
# References to global data are not counted (every file names the module
# record defined in mod_session_cluster.c).
#
# Usage:
#   build/check-layers.pl [-C DIR] [--edges] [FILE...]
#     FILE: an object (x.o), a source (x.c: its object is looked for in
#     .libs/x.o, then x.o, next to it, where apxs/libtool leaves it) or a
#     directory (its .libs/*.o, else its *.o).  Default: mod_session_cluster/
#     next to this script's directory.  -C DIR: change to DIR first.
#     --edges: print every call edge with its floors, too.
#   build/check-layers.pl --self-test
#     compiles a few tiny C files with $CC (default cc) and checks that the
#     checker reports exactly their upward call, circle and unplaced file.
# Prints each violation as "A.c -> B.c: symbols (why)", then
# "check-layers: N files, M call edges, K violations"; exits 1 on any
# violation, 2 when it cannot check (no object, nm failing).
# Uses $NM (default nm).
use strict;
use warnings;
use File::Basename qw(basename dirname);
use File::Spec;
use File::Temp qw(tempdir);
use Getopt::Long qw(GetOptions);

# The floors, bottom first.  Edit here when a file is added, removed or moved;
# a name that has no object yet (a file still to come) is simply not checked.
my @FLOORS = (
    # floor 1: codecs, crypto, shared memory, the session store, the catalogue
    [qw(sc_proto sc_ipc sc_ring sc_crypto sc_shm sc_store sc_repl sc_classes)],
    # floor 2: the <Cluster> reader, the dump
    [qw(sc_config sc_dump)],
    # floor 3: the transport: sockets, connections, frames
    [qw(sc_transport)],
    # floor 4: membership: the member view, failure detection
    [qw(sc_membership)],
    # floor 5: DNS and Kubernetes discovery (above membership); the channel: ACK/retry,
    # pending sends
    [qw(sc_cloud sc_kube sc_channel)],
    # floor 6: the DeltaManager
    [qw(sc_manager)],
    # floor 6b: BackupManager (applies data changes through DeltaManager's handlers)
    [qw(sc_backup)],
    # floor 7: the engine process: composition root, event loop
    [qw(sc_engine)],
    # floor 8: parent side (post_config, spawn); child side (requests to the engine)
    [qw(sc_supervisor sc_client)],
    # floor 8b: the session server's clients (msm's <Manager>; used by the request side)
    [qw(sc_msm)],
    # floor 9: the request side
    [qw(sc_session sc_balancer sc_lbmethod sc_status sc_page mod_session_cluster)],
);

my $NM = $ENV{NM} || 'nm';

# name -> floor number (1 = bottom); dies on a name listed twice
sub floor_of {
    my ($floors) = @_;
    my %floor;
    for my $i (0 .. $#$floors) {
        for my $name (@{ $floors->[$i] }) {
            die "check-layers: $name is listed on floors $floor{$name} and " . ($i + 1) . "\n"
                if exists $floor{$name};
            $floor{$name} = $i + 1;
        }
    }
    return \%floor;
}

# the symbols nm prints for one object: ([name, type], ...)
sub nm_symbols {
    my ($obj, @opts) = @_;
    open(my $fh, '-|', $NM, @opts, $obj) or die "check-layers: cannot run $NM: $!\n";
    my @syms;
    while (my $line = <$fh>) {
        # "0000000000000110 T name" or "                 U name"
        next unless $line =~ /^\s*(?:[0-9a-fA-F]+\s+)?([A-Za-z])\s+(\S+)\s*$/;
        push @syms, [$2, $1];
    }
    close($fh) or die "check-layers: $NM @opts $obj failed (" . ($? >> 8) . ")\n";
    return @syms;
}

# Where apxs/libtool left the object of a source, an object or a directory.
sub objects_of {
    my ($arg) = @_;
    if (-d $arg) {
        my @objs = glob(File::Spec->catfile($arg, '.libs', '*.o'));
        @objs = glob(File::Spec->catfile($arg, '*.o')) unless @objs;
        die "check-layers: no object in $arg (build the module first: make)\n" unless @objs;
        return @objs;
    }
    return ($arg) if $arg =~ /\.o\z/;
    if ($arg =~ /\A(.*)\.c\z/) {
        my ($dir, $base) = (dirname($arg), basename($1));
        for my $obj (File::Spec->catfile($dir, '.libs', "$base.o"), File::Spec->catfile($dir, "$base.o")) {
            return ($obj) if -f $obj;
        }
        die "check-layers: no object for $arg in $dir/.libs/ or $dir/ (build the module first: make)\n";
    }
    die "check-layers: $arg is no object, source or directory\n";
}

# The check.  Returns (files, call edges, [violation lines], [edge lines]).
sub analyse {
    my ($floors, @objs) = @_;
    my $floor = floor_of($floors);
    my (%def, %undef, %seen);
    for my $obj (@objs) {
        die "check-layers: $obj: no such object (build the module first: make)\n" unless -f $obj;
        (my $unit = basename($obj)) =~ s/\.o\z//;
        die "check-layers: two objects for $unit\n" if $seen{$unit}++;
        for my $s (nm_symbols($obj, '-g', '--defined-only')) {
            # functions: T (text), W (weak), i (indirect)
            $def{ $s->[0] } //= $unit if $s->[1] =~ /\A[TWi]\z/;
        }
        $undef{$unit} = [map { $_->[0] } nm_symbols($obj, '-u')];
    }
    my %edge;    # caller -> callee -> [symbols]
    for my $unit (keys %undef) {
        for my $sym (@{ $undef{$unit} }) {
            my $to = $def{$sym};
            push @{ $edge{$unit}{$to} }, $sym if defined $to && $to ne $unit;
        }
    }
    my @units = sort keys %seen;
    my (@bad, @lines);
    for my $unit (@units) {
        push @bad, "$unit.c: on no floor (place it in \@FLOORS in build/check-layers.pl)"
            unless $floor->{$unit};
    }
    # circles among the calls within one floor (a circle across floors has an
    # upward call, reported as such)
    my %same;
    for my $from (keys %edge) {
        for my $to (keys %{ $edge{$from} }) {
            $same{$from}{$to} = 1
                if $floor->{$from} && $floor->{$to} && $floor->{$from} == $floor->{$to};
        }
    }
    my $scc = components(\@units, \%same);
    my $nedges = 0;
    for my $from (@units) {
        for my $to (sort keys %{ $edge{$from} || {} }) {
            $nedges++;
            my $syms = join(' ', sort @{ $edge{$from}{$to} });
            my ($fa, $fb) = ($floor->{$from}, $floor->{$to});
            push @lines, sprintf("%s.c (%s) -> %s.c (%s): %s", $from, $fa // '?', $to, $fb // '?', $syms);
            next unless $fa && $fb;
            if ($fa < $fb) {
                push @bad, "$from.c -> $to.c: $syms (upward: floor $fa calls floor $fb)";
            } elsif ($fa == $fb && $scc->{$from} == $scc->{$to}) {
                my @circle = sort grep { $scc->{$_} == $scc->{$from} } @units;
                push @bad, "$from.c -> $to.c: $syms (circle on floor $fa: "
                    . join(' ', map { "$_.c" } @circle) . ")";
            }
        }
    }
    return (scalar @units, $nedges, \@bad, \@lines);
}

# Strongly connected components (Tarjan): unit -> component number
sub components {
    my ($units, $adj) = @_;
    my ($index, $ncomp, %idx, %low, %on, @stack, %comp) = (0, 0);
    my $visit;
    $visit = sub {
        my ($v) = @_;
        $idx{$v} = $low{$v} = $index++;
        push @stack, $v;
        $on{$v} = 1;
        for my $w (sort keys %{ $adj->{$v} || {} }) {
            if (!exists $idx{$w}) {
                $visit->($w);
                $low{$v} = $low{$w} if $low{$w} < $low{$v};
            } elsif ($on{$w}) {
                $low{$v} = $idx{$w} if $idx{$w} < $low{$v};
            }
        }
        if ($low{$v} == $idx{$v}) {
            my $w;
            do {
                $w = pop @stack;
                $on{$w} = 0;
                $comp{$w} = $ncomp;
            } while ($w ne $v);
            $ncomp++;
        }
    };
    for my $u (@$units) {
        $visit->($u) unless exists $idx{$u};
    }
    undef $visit;
    return \%comp;
}

# Prints the result to $out; returns the exit status.
sub check {
    my ($out, $floors, $show_edges, @objs) = @_;
    my ($nfiles, $nedges, $bad, $lines) = analyse($floors, @objs);
    print $out "$_\n" for ($show_edges ? @$lines : ()), @$bad;
    printf $out "check-layers: %d files, %d call edges, %d violations\n", $nfiles, $nedges, scalar @$bad;
    return @$bad ? 1 : 0;
}

# The checker proven able to fail: tiny objects with known calls.
sub self_test {
    my $cc = $ENV{CC} || 'cc';
    my $dir = tempdir('check-layers.XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my %src = (
        # a handler table: top registers top_on_event, bottom calls it through the pointer
        bottom => 'void bottom_register(void (*h)(int)); void bottom_fire(int x);'
            . ' int bottom_get(void);'
            . ' static void (*handler)(int);'
            . ' void bottom_register(void (*h)(int)) { handler = h; }'
            . ' void bottom_fire(int x) { if (handler) handler(x); }'
            . ' int bottom_get(void) { return 1; }',
        middle => 'int bottom_get(void); int middle_get(void);'
            . ' int middle_get(void) { return bottom_get() + 1; }',
        top => 'int middle_get(void); int bottom_get(void); void bottom_register(void (*h)(int));'
            . ' void top_on_event(int x); int top_run(void);'
            . ' void top_on_event(int x) { (void)x; }'
            . ' int top_run(void) { bottom_register(top_on_event); return middle_get() + bottom_get(); }',
        # calls up into top by name
        upcaller => 'int top_run(void); int upcaller_go(void);'
            . ' int upcaller_go(void) { return top_run(); }',
        # peer_a and peer_b call each other; peer_a calls peer_c, which does not call back
        peer_a => 'int peer_b_fn(int); int peer_c_fn(void); int peer_a_fn(int);'
            . ' int peer_a_fn(int n) { return n ? peer_b_fn(n - 1) : peer_c_fn(); }',
        peer_b => 'int peer_a_fn(int); int peer_b_fn(int);'
            . ' int peer_b_fn(int n) { return peer_a_fn(n); }',
        peer_c => 'int bottom_get(void); int peer_c_fn(void);'
            . ' int peer_c_fn(void) { return bottom_get(); }',
        stray => 'int bottom_get(void); int stray_fn(void);'
            . ' int stray_fn(void) { return bottom_get(); }',
    );
    my %obj;
    for my $name (sort keys %src) {
        my $c = "$dir/$name.c";
        open(my $fh, '>', $c) or die "check-layers: $c: $!\n";
        print $fh "$src{$name}\n";
        close($fh) or die "check-layers: $c: $!\n";
        $obj{$name} = "$dir/$name.o";
        system($cc, '-std=c11', '-Wall', '-Wextra', '-Werror', '-O2', '-fPIC', '-c', '-o', $obj{$name}, $c) == 0
            or die "check-layers: self-test: $cc failed on $name.c\n";
    }
    my @cases = (
        {   name   => 'downward calls and a handler table pass',
            floors => [[qw(bottom)], [qw(middle)], [qw(top)]],
            objs   => [qw(bottom middle top)],
            edges  => 3,
            bad    => [],
        },
        {   name   => 'an upward call fails',
            floors => [[qw(bottom)], [qw(upcaller middle)], [qw(top)]],
            objs   => [qw(bottom middle top upcaller)],
            edges  => 4,
            bad    => ['upcaller.c -> top.c: top_run (upward: floor 2 calls floor 3)'],
        },
        {   name   => 'a circle on one floor fails, a one-way call on it passes',
            floors => [[qw(bottom)], [qw(peer_a peer_b peer_c)]],
            objs   => [qw(bottom peer_a peer_b peer_c)],
            edges  => 4,
            bad    => [
                'peer_a.c -> peer_b.c: peer_b_fn (circle on floor 2: peer_a.c peer_b.c)',
                'peer_b.c -> peer_a.c: peer_a_fn (circle on floor 2: peer_a.c peer_b.c)',
            ],
        },
        {   name   => 'a file on no floor fails',
            floors => [[qw(bottom)], [qw(middle)]],
            objs   => [qw(bottom middle stray)],
            edges  => 2,
            bad    => ['stray.c: on no floor (place it in @FLOORS in build/check-layers.pl)'],
        },
    );
    my $failed = 0;
    for my $case (@cases) {
        my @objs = map { $obj{$_} } @{ $case->{objs} };
        my ($nfiles, $nedges, $bad) = analyse($case->{floors}, @objs);
        open(my $out, '>', \my $text) or die;
        my $rc = check($out, $case->{floors}, 0, @objs);
        close($out);
        my $want_rc = @{ $case->{bad} } ? 1 : 0;
        my $want_sum = sprintf("check-layers: %d files, %d call edges, %d violations\n",
            scalar @objs, $case->{edges}, scalar @{ $case->{bad} });
        my $want_text = join('', map { "$_\n" } @{ $case->{bad} }) . $want_sum;
        my $ok = $rc == $want_rc && $nfiles == @objs && $nedges == $case->{edges} && $text eq $want_text;
        printf "check-layers: self-test: %s: %s\n", $ok ? 'ok' : 'FAILED', $case->{name};
        print "  expected (exit $want_rc):\n", map({ "    $_\n" } split /\n/, $want_text),
            "  got (exit $rc):\n", map({ "    $_\n" } split /\n/, $text) unless $ok;
        $failed++ unless $ok;
    }
    # the real list must be well-formed
    eval { floor_of(\@FLOORS); 1 } or do { print $@; $failed++ };
    printf "check-layers: self-test: %s\n", $failed ? "$failed FAILED" : 'all ' . scalar(@cases) . ' cases pass';
    return $failed ? 1 : 0;
}

my $top = File::Spec->catdir(dirname(File::Spec->rel2abs($0)), '..');
my ($self_test, $show_edges, $chdir);
GetOptions('self-test' => \$self_test, 'edges' => \$show_edges, 'C=s' => \$chdir)
    or die "usage: $0 [-C DIR] [--edges] [FILE...] | --self-test\n";
if ($chdir) {
    chdir($chdir) or die "check-layers: cannot change to $chdir: $!\n";
}
my $rc = eval {
    if ($self_test) {
        self_test();
    } else {
        my @args = @ARGV ? @ARGV : (File::Spec->catdir($top, 'mod_session_cluster'));
        check(\*STDOUT, \@FLOORS, $show_edges, map { objects_of($_) } @args);
    }
};
if (!defined $rc) {
    print STDERR $@;
    exit 2;
}
exit $rc;
