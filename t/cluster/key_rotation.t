#!perl
# Key rotation as the README's security section tells it, done with graceful
# restarts (`apachectl -k graceful`), one member at a time, on three static
# members with an EncryptInterceptor (channelSendOptions 6, the demo
# application at /app):
#   start:    every member has the old key;
#   round 1:  each member in turn gets encryptionKey=old, previousEncryptionKey=new;
#   round 2:  each member in turn gets encryptionKey=new, previousEncryptionKey=old;
#   round 3:  each member in turn drops previousEncryptionKey (new key only).
# After every graceful restart:
#   - the restarted member runs a new engine (EnginePid changes: the block
#     changed, README "The engine"), although the page shows both keys only by
#     their size, the same before and after;
#   - every member sees the two others alive;
#   - no session is lost: a session made on the restarted member and every
#     earlier session, each one updated on some member, read on all three with
#     the expected counter;
#   - AuthFailures do not grow on any member (nothing is refused during a
#     correct rotation);
#   - PreviousKeyUsed: in round 1 and round 3 it grows nowhere (nobody seals
#     with a key that a member holds only as its previous key); in round 2
#     it grows on the members not yet moved (they open the restarted member's
#     messages with the new key, their previous one) and on the restarted
#     member while some member still seals with the old key; after the last
#     member of round 2 it stops growing (the old key is out of use), over a
#     window anchored on replicated writes.
# At the end no key appears in any error_log, on the page (?auto, HTML, ?json,
# Prometheus) or in `httpd -t -D DUMP_CLUSTER`.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(page status_of member_on check within app show demo_module demo_conf
               encrypt_interceptor channel_add);

$SIG{ALRM} = sub { die "key_rotation.t: time limit (120 s) reached\n" };
alarm 120;

my $DEMO_SO = demo_module();

my $KEY_OLD = join '', map { sprintf '%02x', $_ } 0 .. 31;
my $KEY_NEW = join '', map { sprintf '%02x', $_ } 64 .. 95;    # the same length
my @NODES = qw(node1 node2 node3);

# per member: [ encryptionKey, previousEncryptionKey or undef ]
my %KEYS = map { $_ => [ $KEY_OLD ] } @NODES;

sub block {
    my ($m, $all) = @_;
    my $b = SC::Cluster::static_block($m, $all, channelSendOptions => 6,
        valves => [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ]);
    return channel_add($b, encrypt_interceptor(@{ $KEYS{ $m->{name} } }));
}

my $APP = demo_conf($DEMO_SO);

my $c = SC::Cluster->new(
    members    => [@NODES],
    loglevel   => 'debug',
    extra_conf => $APP,
    cluster    => \&block,
);

sub num { my ($p, $k) = @_; return ($p && defined $p->{$k} && $p->{$k} =~ /^\d+$/) ? $p->{$k} : undef }

sub pages { return { map { $_ => status_of($c, $_) } @NODES } }

sub all_alive {
    for my $n (@NODES) {
        my $p = status_of($c, $n) or return 0;
        return 0 unless ($p->{EngineState} // '') eq 'ready';
        for my $o (grep { $_ ne $n } @NODES) {
            my ($m) = grep { ($_->{route} // '') eq $o } @{ $p->{members} };
            return 0 unless $m && $m->{state} eq 'alive';
        }
    }
    return 1;
}

sub who_sees_whom {
    my @out;
    for my $n (@NODES) {
        my $p = status_of($c, $n) || {};
        push @out, "$n: " . join(' ', map { "$_->{route}=$_->{state}" } @{ $p->{members} || [] })
                 . ' AuthFailures=' . ($p->{AuthFailures} // '?')
                 . ' PreviousKeyUsed=' . ($p->{PreviousKeyUsed} // '?');
    }
    return join "\n", @out;
}

# sessions: id => expected counter
my %WANT;
my $turn = 0;

# One session more, made on $n; then every session updated once on a member
# chosen in turn; then every session read on every member until all show
# their counter.  Returns the number of (session, member) reads that did not.
sub write_and_check {
    my ($n, $label) = @_;
    my $r = app($c, $n, 'auto');
    if (defined $r->{cookie} && ($r->{counter} // '') eq '1') {
        $WANT{ $r->{cookie} } = 1;
    }
    else {
        diag("$label: a new session on $n: " . show($r));
    }
    for my $id (sort keys %WANT) {
        my $on = $NODES[ $turn++ % @NODES ];
        my $u = app($c, $on, 'auto', $id);
        if (($u->{session} // '') eq $id && ($u->{counter} // '') eq $WANT{$id} + 1) {
            $WANT{$id}++;
        }
        else {
            diag("$label: update of $id on $on (want " . ($WANT{$id} + 1) . "): " . show($u));
        }
    }
    my @bad;
    within(20, sub {
        @bad = ();
        for my $id (sort keys %WANT) {
            for my $m (@NODES) {
                my $x = app($c, $m, 'read', $id);
                push @bad, "$id on $m: " . (($x->{session} // '') eq $id
                                            ? "counter $x->{counter}, want $WANT{$id}"
                                            : "missing (status $x->{status})")
                    unless ($x->{session} // '') eq $id && ($x->{counter} // '') eq $WANT{$id};
            }
        }
        !@bad;
    });
    return @bad;
}

# ===========================================================================
$c->start_all;
check(within(20, \&all_alive), $c, 'start: the three members (old key) see each other alive and are ready')
    or diag(who_sees_whom());
{
    my @bad = map { write_and_check($_, 'start') } @NODES;
    check(!@bad, $c, 'start: sessions made on each member are read on all three', @bad);
}

my @ROUNDS = (
    [ 'round 1 (old key, new one as previous)', [ $KEY_OLD, $KEY_NEW ] ],
    [ 'round 2 (new key, old one as previous)', [ $KEY_NEW, $KEY_OLD ] ],
    [ 'round 3 (new key only)',                 [ $KEY_NEW ] ],
);
for my $ri (0 .. $#ROUNDS) {
    my ($rname, $keys) = @{ $ROUNDS[$ri] };
    for my $k (0 .. $#NODES) {
        my $n = $NODES[$k];
        my $label = "$rname, $n";
        my $before = pages();
        my $shown = ($before->{$n} || {})->{EnginePid};
        $KEYS{$n} = [ @$keys ];
        $c->write_conf($n);
        $c->graceful($n, timeout => 20);
        my $after_restart = status_of($c, $n) || {};
        ok(defined $shown && defined $after_restart->{EnginePid} && $after_restart->{EnginePid} ne $shown,
           "$label: the graceful restart replaced the engine (EnginePid $shown -> "
           . ($after_restart->{EnginePid} // '?') . ')');
        check(within(20, \&all_alive), $c, "$label: every member sees the two others alive")
            or diag(who_sees_whom());
        my @bad = write_and_check($n, $label);
        check(!@bad, $c, "$label: no session lost: all " . scalar(keys %WANT)
              . ' sessions read on all three members with their counter', @bad);
        my $after = pages();
        for my $m (@NODES) {
            my ($b, $a) = (num($before->{$m}, 'AuthFailures'), num($after->{$m}, 'AuthFailures'));
            ok(defined $b && defined $a && $a == $b,
               "$label: AuthFailures on $m do not grow (" . ($b // '?') . ' -> ' . ($a // '?') . ')')
                or diag(who_sees_whom());
        }
        for my $m (@NODES) {
            my ($b, $a) = (num($before->{$m}, 'PreviousKeyUsed'), num($after->{$m}, 'PreviousKeyUsed'));
            # round 2: $m still on the old key opens $n's new-key messages
            # with its previous key; $n opens the old-key messages of the
            # members not yet moved with its previous key
            my $grows = $ri == 1 && ($m eq $n ? $k < $#NODES : (grep { $_ eq $m } @NODES[ $k + 1 .. $#NODES ]) > 0);
            if ($grows) {
                ok(defined $b && defined $a && $a > $b,
                   "$label: PreviousKeyUsed on $m grows (" . ($b // '?') . ' -> ' . ($a // '?') . ')')
                    or diag(who_sees_whom());
            }
            elsif ($ri != 1) {
                ok(defined $b && defined $a && $a == $b,
                   "$label: PreviousKeyUsed on $m does not grow (" . ($b // '?') . ' -> ' . ($a // '?') . ')')
                    or diag(who_sees_whom());
            }
        }
        if ($ri == 1 && $k == $#NODES) {
            # every member seals with the new key now: PreviousKeyUsed stops
            # growing, over a window with replicated writes and pings in it
            my $p1 = pages();
            my @bad2 = write_and_check($NODES[0], "$label, afterwards");
            my %pings = map { $_ => num($p1->{$_}, 'PingsOut') // 0 } @NODES;
            my $moved = within(20, sub {
                my $p = pages();
                !grep { (num($p->{$_}, 'PingsOut') // 0) <= $pings{$_} } @NODES;
            });
            ok(!@bad2 && $moved, "$label, afterwards: writes replicated and every member pinged again")
                or diag(join "\n", @bad2);
            my $p2 = pages();
            for my $m (@NODES) {
                my ($b, $a) = (num($p1->{$m}, 'PreviousKeyUsed'), num($p2->{$m}, 'PreviousKeyUsed'));
                ok(defined $b && defined $a && $a == $b,
                   "round 2 done: PreviousKeyUsed on $m stops growing (" . ($b // '?') . ' -> '
                   . ($a // '?') . '): the old key is out of use');
            }
        }
    }
}

# no key anywhere a person or a log reader can see ----------------------------
{
    my @keys = ($KEY_OLD, $KEY_NEW);
    my $seen = 0;
    for my $n (@NODES) {
        my %views;
        for my $q ('?auto', '', '?json', '?format=prometheus') {
            my ($s, undef, $b) = $c->get($n, "/cluster-manager$q", timeout => 5);
            $views{"page$q"} = $s == 200 ? $b : '';
            $seen++ if $s == 200;
        }
        $views{error_log} = $c->error_log($n);
        my $m = $c->member($n);
        my $dump = `$c->{httpd} -f $m->{conf} -t -D DUMP_CLUSTER 2>&1`;
        $views{DUMP_CLUSTER} = $dump;
        like($dump, qr/^Interceptor\.\d+\.encryptionKey = \(set, 256-bit key\)/m,
             "$n: DUMP_CLUSTER shows the encryptionKey by its size");
        like($views{'page?auto'}, qr/encryptionKey = \(set, 256-bit key\)/,
             "$n: the page shows the encryptionKey by its size");
        for my $v (sort keys %views) {
            my $hit = grep { index(lc $views{$v}, $_) >= 0 } @keys;
            ok(!$hit, "$n: no key in the $v (" . length($views{$v}) . ' bytes)');
        }
    }
    is($seen, 4 * @NODES, 'every view of the page answered on every member');
}

$c->teardown;
done_testing();
