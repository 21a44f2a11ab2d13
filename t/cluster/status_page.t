#!perl
# The cluster-manager page (issue 6): its figures against what the test did,
# its four formats, its escaping, its actions and who may use them, and what a
# browser makes of it.  Three static members node1..node3 run the demo
# application at /app (Session On, SessionCluster On, channelSendOptions 6:
# every change is acknowledged by every member before the request returns;
# ReplicationValve only, so ids keep their route whichever member serves
# them); node2 has a second virtual host whose /cluster-manager says
# `Require ip 10.255.255.254`.
#   1. Figures: 7 sessions made on node1 and 5 on node2, 5 updated (3 on
#      node1, 2 node2 sessions on node3), 3 invalidated (/app?invalidate=1):
#      every member's ?auto and ?json show SessionsActive 9,
#      SessionsCreated 12 (made here or replicated in), SessionsRemoved 3,
#      SessionsUpdated >= the updates, ReplicatedIn/Out grown by at least the
#      messages the test caused; MembersKnown = MembersAlive = 2; one Member:
#      row / members[] entry per other member with its route, receiver
#      address, state=alive, role=member, member_state=ready; MsgsIn,
#      MsgsOut, BytesIn, BytesOut non-zero and, fetched back to back as
#      ?auto, ?json, ?format=prometheus, ?auto, never going back.  The JSON
#      parses (JSON::PP) with the sections member, channel, sessions,
#      members, configuration; the Prometheus text is valid exposition (the
#      line grammar, escaped label values, one # TYPE per family before its
#      samples, a family's samples together, no repeated series) and its
#      session_cluster_sessions_active{route="node1"} is SessionsActive.
#      kill -9 of node3: node1 shows it dead (not left: it could not say
#      goodbye), MembersAlive 1, FdDead grown and a verdict naming the
#      refused connection (the failure detector found it).
#   2. HTML: ?refresh=5 writes <meta http-equiv="refresh" content="5">;
#      ?refresh=abc (and 0) is 400, so is ?format=xml; <table id="members">
#      has one row per other member.
#   3. Actions (node3 restarted first): a GET with action= is 405 with an
#      Allow header naming POST; POSTs without nonce, with a wrong one, with
#      node2's nonce, and node3's nonce from before its restart are 403, and
#      change nothing (state, sessions, no SC1282/SC1287/SC1288 in the
#      log), checked once the engine has answered a ping (a POST) sent after them
#      (what a refused POST would have made it do, it would have done by
#      then).  With the page's nonce: state=draining (auto=1: 200) makes
#      node1 log SC1282 and every other member shows member_state=draining;
#      state=ready (no auto=1: 303 to the page) restores it; expire&id=
#      removes that session on every member (its cookie then gets a new
#      session) and an unknown id is 404; reset makes node1's MsgsIn etc.
#      (also in its Member: rows) smaller, its counters' age
#      (CountersSinceMs) smaller than before and its SessionsCreated 0, not
#      node2's; transfer makes node1 receive every session again (TransferIn
#      = LastTransferSessions = the sessions present); expire_all empties
#      every member.  Each action is logged (SC1112) with the client address.
#      (No step is timed: each waits for its effect, at most 20 s.)
#   4. Require: node2's locked /cluster-manager answers GET 403 and POST
#      (with the right nonce) 403, and node2 stays ready and keeps its
#      sessions (checked after a ping node2's engine answered after them).
#   5. Headless Chromium renders node1's page: a PNG screenshot (> 10 KB;
#      kept as t/tmp/status-page.png) and a
#      DOM with the members table listing node2 and node3 in <td> cells.
#   6. Escaping, on a second cluster of three whose blocks all carry a
#      DomainFilterInterceptor domain `<script>x"y` (written as
#      &lt;script&gt;x&quot;y): the members see each other; the HTML page
#      never contains `<script>` (only &lt;script&gt;x&quot;y), not even
#      when requested as /cluster-manager/"><script>x</script>; the JSON's
#      domain round-trips to `<script>x"y` (member and members[]); the
#      Prometheus lines carry domain="<script>x\"y" and stay valid; ?auto's
#      Domain: line is one line with the quote escaped.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use POSIX qw(WNOHANG);
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use JSON::PP ();
use Scalar::Util qw(looks_like_number);
use SC::Cluster;
use SC::Test qw(need page parse_auto status_of member_on check within app show valid_sid
                demo_module demo_conf sess_line);
SC::Test::dump_options(tail => 30, cut => 300);

# a limit for the whole file, far above its run time (~20 s): only a hang reaches it
my $LIMIT = 240;
$SIG{ALRM} = sub { die "status_page.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;
my $t_start = time;
# how long a step waits for its effect (a polling limit: steps are not timed)
my $WAIT = 20;

my $DEMO_SO = demo_module();
my ($CHROMIUM) = grep { -x } map { "$_/chromium" } split(/:/, $ENV{PATH} // ''), '/usr/bin';
need($CHROMIUM, 'chromium (Debian package chromium, headless): build/install-deps.sh installs it');

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

my $KEEP_ROUTES = [ q{<Valve className="org.apache.catalina.ha.tcp.ReplicationValve"/>} ];
my $APP = demo_conf($DEMO_SO);
my $LOCKED_PORT = SC::Cluster::free_port();
my $LOCKED = "Listen 127.0.0.1:$LOCKED_PORT\n"
           . "<VirtualHost 127.0.0.1:$LOCKED_PORT>\n"
           . "  <Location /cluster-manager>\n    SetHandler cluster-manager\n"
           . "    Require ip 10.255.255.254\n  </Location>\n</VirtualHost>\n";

# ($status, $headers, $body) of member $n's page with query $q ('' for HTML)
sub fetch {
    my ($c, $n, $q, %o) = @_;
    return $c->get($n, '/cluster-manager' . (length $q ? "?$q" : ''), timeout => 5, %o);
}

# member $n's page as JSON, decoded (undef, and the error in $@, if not)
sub json_of {
    my ($c, $n) = @_;
    my ($s, $h, $b) = fetch($c, $n, 'json');
    $@ = "status $s";
    return undef unless $s == 200;
    my $j = eval { JSON::PP->new->decode($b) };
    return $j;
}

sub form_escape {
    my ($v) = @_;
    $v //= '';
    $v =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
    return $v;
}

# POST an action form to member $n's /cluster-manager (_port: another port)
sub post_action {
    my ($c, $n, %form) = @_;
    my $port = delete $form{_port};
    my $body = join '&', map { "$_=" . form_escape($form{$_}) } sort keys %form;
    return $c->post($n, '/cluster-manager', $body, timeout => 5, ($port ? (port => $port) : ()));
}

# An event after which whatever a page request could have asked of member
# $n's engine is done: $n's engine answers a ping to $peer (a POST).  The engine takes
# the page's requests (state, expire_all, reset, transfer) at the top of every
# turn of its loop, and reads the ping's acknowledgement in a later turn than
# the one that received the ping: a ping sent after a POST and answered
# "acknowledged" proves the engine looked for that POST's request since.  (A
# state change also logs SC1282 and is published at once: the tests check
# the log and EngineState, which covers what the others would have heard.)
# Returns '' when so, else what happened.
sub engine_caught_up {
    my ($c, $n, $peer) = @_;
    my ($s, undef, $b) = SC::Test::page_ping($c, $n, $peer, timeout => $WAIT);
    return '' if $s == 200 && ($b // '') =~ /^Result: acknowledged$/m;
    return "$n: ping=$peer (POST) answered $s: " . substr($b // '', 0, 300);
}

# The Member row (parsed ?auto, or a JSON members[] entry) for $route
sub row_for {
    my ($rows, $route) = @_;
    my ($r) = grep { ($_->{route} // '') eq $route } @{ $rows || [] };
    return $r;
}

sub row_line {
    my ($m) = @_;
    return '(none)' unless $m;
    return join ' ', map { "$_=" . ($m->{$_} // '?') } qw(route addr state role member_state verdict);
}

# Prometheus text exposition format 0.0.4: a list of what is wrong, and the
# samples as { "name{labels}" => value }.
sub prom_check {
    my ($text) = @_;
    my (@err, %type, %help, %samples, %done, $last);
    my $lv  = qr/"(?:[^"\\\n]|\\[\\"n])*"/;
    my $lbl = qr/[a-zA-Z_][a-zA-Z0-9_]*=$lv/;
    push @err, 'the text does not end with a newline' unless $text =~ /\n\z/;
    my $i = 0;
    for my $l (split /\n/, $text) {
        $i++;
        if ($l =~ /^#/) {
            if ($l =~ /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/) {
                push @err, "line $i: a second # TYPE for $1" if $type{$1}++;
                push @err, "line $i: # TYPE $1 after its samples" if $done{$1} || ($last // '') eq $1;
            }
            elsif ($l =~ /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/) {
                push @err, "line $i: a second # HELP for $1" if $help{$1}++;
                push @err, "line $i: # HELP $1 has a raw backslash" if $2 =~ /\\(?![\\n])/;
            }
            elsif ($l =~ /^# (?:TYPE|HELP)\b/) {
                push @err, "line $i: malformed: $l";
            }
            next;
        }
        next if $l eq '';
        if ($l !~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:$lbl(?:,$lbl)*,?)?\})? (-?[0-9.eE+-]+)$/) {
            push @err, "line $i does not match the sample grammar: $l";
            next;
        }
        my ($name, $labels, $v) = ($1, $2 // '', $3);
        push @err, "line $i: value '$v' is not a number" unless looks_like_number($v);
        push @err, "line $i: sample of $name without a # TYPE before it" unless $type{$name};
        if (!defined $last || $last ne $name) {
            push @err, "line $i: samples of $name are not together" if $done{$name};
            $done{$last} = 1 if defined $last;
            $last = $name;
        }
        my %seen;
        my $inner = $labels;
        $inner =~ s/^\{//;
        $inner =~ s/\}$//;
        while ($inner =~ /\G,?([a-zA-Z_][a-zA-Z0-9_]*)=($lv)/gc) {
            push @err, "line $i: label $1 given twice" if $seen{$1}++;
        }
        push @err, "line $i: the same series twice: $name$labels" if exists $samples{"$name$labels"};
        $samples{"$name$labels"} = $v;
    }
    return (\@err, \%samples);
}

# the counters compared across formats, ?auto name => [ JSON section, key ]
my %CTR = (MsgsIn => [ 'channel', 'msgs_in' ], MsgsOut => [ 'channel', 'msgs_out' ],
           BytesIn => [ 'channel', 'bytes_in' ], BytesOut => [ 'channel', 'bytes_out' ]);
my %PROM = (MsgsIn => 'session_cluster_msgs_in_total', MsgsOut => 'session_cluster_msgs_out_total',
            BytesIn => 'session_cluster_bytes_in_total', BytesOut => 'session_cluster_bytes_out_total');

# Runs a command (no shell) in its own process group, stdout and stderr to
# files, killing that group (only it) after $timeout s: ($exit, $stdout,
# $stderr, $seconds); $exit -1 on a timeout or a signal.
sub run_bounded {
    my ($timeout, @cmd) = @_;
    my $dir = tempdir('sc-chromium-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my ($out, $err) = ("$dir/stdout", "$dir/stderr");
    my $t0 = time;
    local $SIG{CHLD} = 'DEFAULT';
    STDOUT->flush;
    STDERR->flush;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE ALRM);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    my $rc;
    while (1) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid) { $rc = $? & 127 ? -1 : $? >> 8; last }
        if ($w < 0) { $rc = -1; last }
        if (time - $t0 > $timeout) {
            kill 'KILL', -$pid;    # the group this fork made
            waitpid($pid, 0);
            $rc = -1;
            last;
        }
        sleep 0.05;
    }
    # whatever the browser left behind in its group (normally nothing)
    kill 'KILL', -$pid;
    my $slurp = sub { open my $fh, '<', $_[0] or return ''; local $/; my $s = <$fh>; $s // '' };
    return ($rc, $slurp->($out), $slurp->($err), time - $t0);
}

sub chromium {
    my ($timeout, @args) = @_;
    my $profile = tempdir('sc-chromium-profile-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    return run_bounded($timeout, $CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu',
                       '--no-first-run', '--disable-background-networking',
                       "--user-data-dir=$profile", @args);
}

# ---------------------------------------------------------------------------
# the cluster
# ---------------------------------------------------------------------------

my @N = qw(node1 node2 node3);
my $c = SC::Cluster->new(
    members     => 3,
    loglevel    => 'info',
    extra_conf  => $APP,
    modules     => [ 'authz_host' ],    # Require ip
    member_opts => { node2 => { extra_conf => $APP . $LOCKED } },
    cluster     => sub {
        my ($m, $all) = @_;
        return SC::Cluster::static_block($m, $all, channelSendOptions => 6, valves => $KEEP_ROUTES);
    },
);
$c->start_all;
{
    my %p;
    my $took = within($WAIT, sub {
        for my $n (@N) {
            $p{$n} = status_of($c, $n) or return 0;
        }
        return !grep { ($p{$_}{EngineState} // '') ne 'ready' || ($p{$_}{MembersAlive} // 0) != 2
                       || grep { ($_->{member_state} // '') ne 'ready' } @{ $p{$_}{members} } } @N;
    });
    check(defined $took, $c, 'the three members are ready and see each other ready',
          map { "$_: " . sess_line($p{$_}) } @N)
        or BAIL_OUT('the cluster did not come up');
}
my %nonce0 = map { $_ => (status_of($c, $_) || {})->{Nonce} } @N;
like($nonce0{$_} // '', qr/^[0-9a-f]{16,}$/, "$_: ?auto shows a Nonce") for @N;

# ---------------------------------------------------------------------------
# 1. figures against what the test did
# ---------------------------------------------------------------------------

my %base = map { $_ => status_of($c, $_) } @N;
my (%made, %msgs);    # made{node} = [ids]; msgs{node} = changing requests served there
my @alive;
{
    my $bad = 0;
    for my $spec ([ node1 => 7 ], [ node2 => 5 ]) {
        my ($n, $k) = @$spec;
        for (1 .. $k) {
            my $r = app($c, $n, 'auto');
            if (valid_sid($r->{cookie}, $n) && ($r->{counter} // '') eq '1') {
                push @{ $made{$n} }, $r->{cookie};
                $msgs{$n}++;
            }
            else {
                $bad++ or check(0, $c, "1. a new session on $n", show($r));
            }
        }
    }
    is(scalar @{ $made{node1} || [] }, 7, '1. 7 sessions made on node1');
    is(scalar @{ $made{node2} || [] }, 5, '1. 5 sessions made on node2');
}
my @s1 = @{ $made{node1} || [] };
my @s2 = @{ $made{node2} || [] };
my $updates = 0;
{
    my @upd = ((map { [ node1 => $_ ] } @s1[0 .. 2]), (map { [ node3 => $_ ] } @s2[0 .. 1]));
    for my $u (@upd) {
        my ($n, $id) = @$u;
        next unless defined $id;
        my $r = app($c, $n, 'auto', $id);
        if (($r->{counter} // '') eq '2' && ($r->{session} // '') eq $id && !$r->{cookie}) {
            $updates++;
            $msgs{$n}++;
        }
        else {
            check(0, $c, "1. $n updates $id (counter 2)", show($r));
        }
    }
    is($updates, 5, '1. 5 updates (3 node1 sessions on node1, 2 node2 sessions on node3)');
}
my $invalidated = 0;
{
    for my $u ([ node1 => $s1[5] ], [ node1 => $s1[6] ], [ node2 => $s2[4] ]) {
        my ($n, $id) = @$u;
        next unless defined $id;
        my $r = app($c, $n, 'invalidate=1', $id);
        if ($r->{status} == 200 && ($r->{invalidated} // '') eq 'yes') {
            $invalidated++;
            $msgs{$n}++;
        }
        else {
            check(0, $c, "1. $n invalidates $id", show($r));
        }
    }
    is($invalidated, 3, '1. 3 sessions invalidated (2 on node1, 1 on node2)');
    @alive = (@s1[0 .. 4], @s2[0 .. 3]);
}
my $want_active = 12 - $invalidated;

my %auto;    # the ?auto pages after the scenario
for my $n (@N) {
    my $p = $auto{$n} = status_of($c, $n);
    my $b = $base{$n} || {};
    if (!$p) {
        check(0, $c, "1. $n answers ?auto");
        next;
    }
    note("1. $n after the scenario: " . sess_line($p));
    my $d = sub { ($p->{$_[0]} // 0) - ($b->{$_[0]} // 0) };
    check(($p->{SessionsActive} // -1) == $want_active, $c,
          "1. $n: SessionsActive $want_active (12 made, $invalidated invalidated)", sess_line($p));
    check($d->('SessionsCreated') == 12, $c,
          "1. $n: SessionsCreated grew by 12 (7 made on node1 + 5 on node2, made here or replicated in)",
          'delta ' . $d->('SessionsCreated') . '; ' . sess_line($p));
    check($d->('SessionsRemoved') == $invalidated, $c, "1. $n: SessionsRemoved grew by $invalidated",
          'delta ' . $d->('SessionsRemoved') . '; ' . sess_line($p));
    check($d->('SessionsExpired') == 0, $c, "1. $n: SessionsExpired did not grow (invalidations are no expiries)",
          sess_line($p));
    check($d->('SessionsUpdated') >= $updates, $c, "1. $n: SessionsUpdated grew by >= $updates",
          'delta ' . $d->('SessionsUpdated'));
    my $out = $msgs{$n} // 0;
    my $in = 0;
    $in += $msgs{$_} // 0 for grep { $_ ne $n } @N;
    check($d->('ReplicatedOut') >= $out && $d->('ReplicatedOut') > 0, $c,
          "1. $n: ReplicatedOut grew by >= $out (its changing requests)", 'delta ' . $d->('ReplicatedOut'));
    check($d->('ReplicatedIn') >= $in && $d->('ReplicatedIn') > 0, $c,
          "1. $n: ReplicatedIn grew by >= $in (the others' changing requests)", 'delta ' . $d->('ReplicatedIn'));
    is($p->{MembersKnown}, 2, "1. $n: MembersKnown 2");
    is($p->{MembersAlive}, 2, "1. $n: MembersAlive 2");
    is(scalar @{ $p->{members} }, 2, "1. $n: two Member: rows");
    for my $o (grep { $_ ne $n } @N) {
        my $m = row_for($p->{members}, $o);
        my $want = "127.0.0.1:" . $c->member($o)->{cluster_port};
        check($m && ($m->{addr} // '') eq $want && ($m->{state} // '') eq 'alive'
              && ($m->{role} // '') eq 'member' && ($m->{member_state} // '') eq 'ready', $c,
              "1. $n: Member: route=$o addr=$want state=alive role=member member_state=ready",
              'got: ' . row_line($m));
    }
    for my $k (sort keys %CTR) {
        ok(($p->{$k} // '') =~ /^[1-9]\d*$/, "1. $n: $k is non-zero ($p->{$k})");
    }
}

# ?auto, ?json, ?format=prometheus, ?auto back to back: counters only grow
my %json;
for my $n (@N) {
    my $a1 = status_of($c, $n);
    my ($js, $jh, $jb) = fetch($c, $n, 'json');
    my ($ps, $ph, $pb) = fetch($c, $n, 'format=prometheus');
    my $a2 = status_of($c, $n);
    is($js, 200, "1. $n: ?json answers 200");
    like($jh->{'content-type'} // '', qr{^application/json}, "1. $n: ?json is application/json");
    my $j = eval { JSON::PP->new->decode($jb) };
    ok($j && ref $j eq 'HASH', "1. $n: the JSON parses with JSON::PP") or diag("$@\n" . substr($jb, 0, 400));
    $j ||= {};
    $json{$n} = $j;
    my @missing = grep { !exists $j->{$_} } qw(member channel sessions members configuration);
    ok(!@missing, "1. $n: JSON has member, channel, sessions, members, configuration")
        or diag("missing: @missing");
    ok(ref $j->{members} eq 'ARRAY' && ref $j->{configuration} eq 'ARRAY'
       && ref $j->{sessions} eq 'HASH', "1. $n: members and configuration are arrays, sessions an object");
    is($j->{route}, $n, "1. $n: JSON route");
    is($j->{sessions}{sessions_active}, $want_active, "1. $n: JSON sessions.sessions_active $want_active");
    is($j->{sessions}{sessions_created}, $auto{$n}{SessionsCreated}, "1. $n: JSON sessions_created = ?auto SessionsCreated");
    is($j->{member}{members_alive}, 2, "1. $n: JSON member.members_alive 2");
    is($j->{member}{members_known}, 2, "1. $n: JSON member.members_known 2");
    for my $o (grep { $_ ne $n } @N) {
        my $m = row_for($j->{members}, $o);
        my $want = "127.0.0.1:" . $c->member($o)->{cluster_port};
        check($m && ($m->{addr} // '') eq $want && ($m->{state} // '') eq 'alive'
              && ($m->{role} // '') eq 'member' && ($m->{member_state} // '') eq 'ready', $c,
              "1. $n: JSON members[] has $o ($want, alive, member, ready)", 'got: ' . row_line($m));
    }
    is(scalar @{ $j->{members} || [] }, 2, "1. $n: JSON members[] has two entries");
    my ($perr, $samples) = prom_check($pb);
    is($ps, 200, "1. $n: ?format=prometheus answers 200");
    like($ph->{'content-type'} // '', qr{^text/plain; version=0\.0\.4}, "1. $n: Prometheus content type");
    ok(!@$perr, "1. $n: the Prometheus output is valid text exposition")
        or diag(join "\n", @$perr[0 .. ($#$perr < 9 ? $#$perr : 9)]);
    my $active_key = qq(session_cluster_sessions_active{route="$n"});
    is($samples->{$active_key}, $a2->{SessionsActive},
       qq{1. $n: session_cluster_sessions_active{route="$n"} = SessionsActive});
    for my $o (grep { $_ ne $n } @N) {
        my ($l) = grep { /^session_cluster_member_info\{/ && /member="\Q$o\E"/ } split /\n/, $pb;
        like($l // '', qr/state="alive".*member_state="ready"/, "1. $n: Prometheus member_info for $o: alive, ready");
    }
    for my $k (sort keys %CTR) {
        my ($sec, $jk) = @{ $CTR{$k} };
        my $jv = $j->{$sec}{$jk};
        my $key = $PROM{$k} . qq({route="$n"});
        my $pv = $samples->{$key};
        my $ok = defined $a1->{$k} && defined $jv && defined $pv && defined $a2->{$k}
              && $jv > 0 && $a1->{$k} <= $jv && $jv <= $pv && $pv <= $a2->{$k};
        ok($ok, "1. $n: $k ?auto <= ?json <= prometheus <= ?auto, fetched back to back")
            or diag("?auto $a1->{$k}, ?json " . ($jv // 'undef') . ', prometheus ' . ($pv // 'undef')
                    . ", ?auto $a2->{$k}");
    }
}

# kill -9 of node3
{
    my $fd0 = (status_of($c, 'node1') || {})->{FdDead} // 0;
    $c->kill9('node3');
    my ($p, $m);
    my $took = within($WAIT, sub {
        $p = status_of($c, 'node1') or return 0;
        $m = row_for($p->{members}, 'node3');
        return $m && ($m->{state} // '') ne 'alive' && ($p->{MembersAlive} // '') eq '1';
    });
    check(defined $took, $c, '1. kill -9 node3: node1 no longer counts it alive (MembersAlive 1)',
          'node3 row: ' . row_line($m), 'node1: ' . sess_line($p));
    # a SIGKILLed member cannot say goodbye: dead, not left, and found by the
    # failure detector (its TCP check is refused on loopback)
    is($m && $m->{state}, 'dead', '1. ... its row says state=dead (not left)');
    is($p && $p->{MembersKnown}, 2, '1. ... MembersKnown stays 2');
    cmp_ok($p ? $p->{FdDead} // 0 : 0, '>', $fd0, '1. ... FdDead grew (the failure detector declared it)');
    like($m ? $m->{verdict} // '' : '', qr/refused/i, '1. ... and its verdict names the refused connection')
        or diag('node3 row: ' . row_line($m));
    note('1. node3 on node1 after the kill: ' . row_line($m) . '; FdDead ' . ($p->{FdDead} // '?'));
    my $j = json_of($c, 'node1');
    my $jm = $j ? row_for($j->{members}, 'node3') : undef;
    is($jm ? $jm->{state} : '', 'dead', '1. ... the JSON shows it too');
    is($j && $j->{member}{members_alive}, 1, '1. ... JSON members_alive 1');
}

# ---------------------------------------------------------------------------
# 2. HTML
# ---------------------------------------------------------------------------
{
    my ($s, $h, $b) = fetch($c, 'node1', 'refresh=5');
    is($s, 200, '2. ?refresh=5 answers 200');
    like($h->{'content-type'} // '', qr{^text/html}, '2. ... text/html');
    like($b, qr{<meta http-equiv="refresh" content="5"}, '2. ... with <meta http-equiv="refresh" content="5"');
    ($s, $h, $b) = fetch($c, 'node1', '');
    unlike($b, qr{http-equiv="refresh"}, '2. without ?refresh the page does not reload itself');
    ($s) = fetch($c, 'node1', 'refresh=abc');
    is($s, 400, '2. ?refresh=abc: 400');
    ($s) = fetch($c, 'node1', 'refresh=0');
    is($s, 400, '2. ?refresh=0: 400');
    ($s) = fetch($c, 'node1', 'format=xml');
    is($s, 400, '2. ?format=xml: 400');
}

# node3 back (for the rest: every member alive)
{
    $c->restart('node3');
    my %p;
    my $took = within($WAIT, sub {
        for my $n (@N) { $p{$n} = status_of($c, $n) or return 0 }
        return !grep { ($p{$_}{EngineState} // '') ne 'ready' || ($p{$_}{MembersAlive} // 0) != 2
                       || grep { ($_->{member_state} // '') ne 'ready' } @{ $p{$_}{members} } } @N;
    });
    check(defined $took, $c, '2. node3 restarted: every member ready and alive again',
          map { "$_: " . sess_line($p{$_}) } @N);
    my ($s, $h, $b) = fetch($c, 'node1', '');
    my ($tbl) = $b =~ m{(<table id="members"[^>]*>.*?</table>)}s;
    ok($tbl, '2. the HTML page has <table id="members">');
    my @rows = ($tbl // '') =~ m{<tr><td>([^<]*)</td>}g;
    is_deeply([ sort @rows ], [ 'node2', 'node3' ], '2. ... with one row per other member (node2, node3)');
}

# ---------------------------------------------------------------------------
# 3. actions
# ---------------------------------------------------------------------------
my %nonce = map { $_ => (status_of($c, $_) || {})->{Nonce} } @N;
isnt($nonce{node3}, $nonce0{node3}, '3. node3 has a new nonce after its restart');
{
    my $active0 = (status_of($c, 'node1') || {})->{SessionsActive};
    my ($s, $h) = fetch($c, 'node1', "action=state&state=draining&nonce=$nonce{node1}");
    is($s, 405, '3. GET ?action=state&state=draining&nonce=(right): 405');
    # RFC 9110 15.5.6: a 405 carries Allow with the methods the resource supports
    like($h->{allow} // '', qr/\bPOST\b/, '3. ... whose Allow header names POST')
        or diag('Allow: ' . ($h->{allow} // '(none)'));
    ($s) = post_action($c, 'node1', action => 'state', state => 'draining', auto => 1);
    is($s, 403, '3. POST without nonce: 403');
    my $wrong = $nonce{node1};
    $wrong =~ tr/0-9a-f/1-9a-f0/;
    ($s) = post_action($c, 'node1', action => 'state', state => 'draining', nonce => $wrong, auto => 1);
    is($s, 403, '3. POST with a wrong nonce: 403');
    ($s) = post_action($c, 'node1', action => 'state', state => 'draining', nonce => $nonce{node2}, auto => 1);
    is($s, 403, "3. POST with node2's nonce to node1: 403");
    ($s) = post_action($c, 'node1', action => 'expire_all', nonce => $nonce{node2}, auto => 1);
    is($s, 403, "3. POST expire_all with node2's nonce to node1: 403");
    ($s) = post_action($c, 'node3', action => 'state', state => 'draining', nonce => $nonce0{node3}, auto => 1);
    is($s, 403, "3. POST with node3's nonce from before its restart: 403 (stale)");
    # what the engines would have done, they have done (and told) by now
    for my $pair ([ node1 => 'node2' ], [ node3 => 'node1' ]) {
        my $why = engine_caught_up($c, @$pair);
        check($why eq '', $c, "3. ... $pair->[0]'s engine answered a ping since (it took no request)", $why);
    }
    for my $n (qw(node1 node3)) {
        is((status_of($c, $n) || {})->{EngineState}, 'ready', "3. ... $n is still ready");
    }
    is((status_of($c, 'node1') || {})->{SessionsActive}, $active0, '3. ... and node1 still holds its sessions');
    my $log = $c->error_log('node1');
    like($log, qr/SC1107: cluster-manager: action by GET refused \(client 127\.0\.0\.1\)/,
         '3. the refused GET is logged with the client address');
    my @ref = $log =~ /SC1109: cluster-manager: action \S+ refused: [^\n]*\(client 127\.0\.0\.1\)/g;
    # a client can provoke these at will: at most one line per 10 s per child
    # (the others are counted in the next line), so 4 refusals in a row give
    # one line per child that took one, at least one, not four
    ok(@ref >= 1 && @ref < 4,
       '3. the 4 refused POSTs to node1 are logged with the client address (SC1109), '
       . 'at a rate limit: ' . scalar(@ref) . ' line(s), not 4');
    like($c->error_log('node3', since_start => 1),
         qr/SC1109: cluster-manager: action state refused: a wrong or stale nonce \(client 127\.0\.0\.1\)/,
         '3. ... and the stale one on node3');
    unlike($log . $c->error_log('node3', since_start => 1), qr/SC1112|SC1282|SC1287|SC1288/,
           '3. ... and no action was taken (no SC1112, SC1282, SC1287, SC1288)');
}

my %t_action;
# draining, ready
{
    my ($s, $h, $b) = post_action($c, 'node1', action => 'state', state => 'draining',
                                  nonce => $nonce{node1}, auto => 1);
    is($s, 200, '3. POST state=draining&auto=1 with the nonce: 200');
    like($b, qr/^Result: accepted$/m, '3. ... Result: accepted');
    my %m;
    my $took = within($WAIT, sub {
        for my $o (qw(node2 node3)) { $m{$o} = member_on($c, $o, 'node1') }
        return !grep { !$m{$_} || ($m{$_}{member_state} // '') ne 'draining' } qw(node2 node3);
    });
    check(defined $took, $c, '3. node2 and node3 show node1 member_state=draining',
          map { "$_: " . row_line($m{$_}) } qw(node2 node3));
    like($c->error_log('node1'), qr/SC1282: this member is now draining \(was ready\), as asked on the status page/,
         '3. ... node1\'s engine logged the change (SC1282)');
    is((status_of($c, 'node1') || {})->{EngineState}, 'draining', '3. node1 says EngineState: draining');
    my $j = json_of($c, 'node2');
    is($j && (row_for($j->{members}, 'node1') || {})->{member_state}, 'draining', '3. ... node2\'s JSON too');
    my ($hs, undef, $hb) = fetch($c, 'node1', '');
    like($hb, qr/name="state" value="ready"/, '3. the HTML page now offers "ready"');

    ($s, $h, $b) = post_action($c, 'node1', action => 'state', state => 'ready', nonce => $nonce{node1});
    is($s, 303, '3. POST state=ready without auto=1: 303');
    like($h->{location} // '', qr{^(?:https?://[^/]+)?/cluster-manager$}, '3. ... Location: the page')
        or diag('Location: ' . ($h->{location} // '(none)'));
    $took = within($WAIT, sub {
        for my $o (qw(node2 node3)) { $m{$o} = member_on($c, $o, 'node1') }
        return !grep { !$m{$_} || ($m{$_}{member_state} // '') ne 'ready' } qw(node2 node3);
    });
    check(defined $took, $c, '3. ... and node2 and node3 show node1 ready again',
          map { "$_: " . row_line($m{$_}) } qw(node2 node3));
    like($c->error_log('node1'), qr/SC1282: this member is now ready \(was draining\), as asked on the status page/,
         '3. ... node1\'s engine logged it (SC1282)');
    is((status_of($c, 'node1') || {})->{EngineState}, 'ready', '3. node1 says EngineState: ready');
}

# expire one session
{
    my $id = $alive[0];
    my %a0 = map { $_ => (status_of($c, $_) || {})->{SessionsActive} // -1 } @N;
    my ($s, $h, $b) = post_action($c, 'node1', action => 'expire', id => $id, nonce => $nonce{node1}, auto => 1);
    is($s, 200, "3. POST expire&id=$id&auto=1: 200") or diag($b);
    my %a;
    my $took = within($WAIT, sub {
        for my $n (@N) { $a{$n} = (status_of($c, $n) || {})->{SessionsActive} // -1 }
        return !grep { $a{$_} != $a0{$_} - 1 } @N;
    });
    check(defined $took, $c, '3. ... every member holds one session less',
          map { "$_: $a0{$_} -> $a{$_}" } @N);
    for my $n (@N) {
        my $r = app($c, $n, 'auto', $id);
        check(($r->{session} // '') eq '(new)' && valid_sid($r->{cookie}, $n) && $r->{cookie} ne $id
              && ($r->{counter} // '') eq '1', $c,
              "3. ... its cookie gets a new session on $n (new id, counter 1)", show($r));
    }
    ($s) = post_action($c, 'node1', action => 'expire', id => '0123456789abcdef0123456789abcdef.node1',
                       nonce => $nonce{node1}, auto => 1);
    is($s, 404, '3. POST expire of an unknown id: 404');
    $t_action{expire} = $id;
}

# reset node1's counters
{
    my $p1 = status_of($c, 'node1');
    my $p2 = status_of($c, 'node2');
    # synchronous replication (6) hands its changes over through the ring too
    # (the answer comes on the child's socket: t/cluster/sync_ack.t)
    ok(defined $p1->{HandoffsRing} && $p1->{HandoffsRing} > 0 && $p1->{SessionsCreated} > 0,
       "3. node1 (channelSendOptions 6) handed its changes over through the ring (HandoffsRing "
       . ($p1->{HandoffsRing} // '?') . ", SessionsCreated $p1->{SessionsCreated})");
    my ($s, $h, $b) = post_action($c, 'node1', action => 'reset', nonce => $nonce{node1}, auto => 1);
    is($s, 200, '3. POST reset&auto=1: 200');
    my $q;
    my $r0 = row_for($p1->{members}, 'node2');
    # (the Member: rows are published every 100 ms: wait for them too)
    my $took = within($WAIT, sub {
        $q = status_of($c, 'node1') or return 0;
        my $r1 = row_for($q->{members}, 'node2');
        return (!grep { ($q->{$_} // 1e18) >= ($p1->{$_} // 0) } qw(MsgsIn MsgsOut BytesIn BytesOut))
            && $r1 && $r0 && $r1->{msgs_in} < $r0->{msgs_in};
    });
    check(defined $took, $c, '3. ... node1\'s MsgsIn, MsgsOut, BytesIn, BytesOut are smaller than before',
          join(' ', map { "$_: $p1->{$_} -> " . ($q->{$_} // '?') } qw(MsgsIn MsgsOut BytesIn BytesOut)));
    is($q && $q->{SessionsCreated}, 0, '3. ... SessionsCreated 0');
    is($q && $q->{SessionsRemoved}, 0, '3. ... SessionsRemoved 0');
    # the counters' age can only go back by a reset (node1 ran for seconds before p1)
    cmp_ok($q ? $q->{CountersSinceMs} // 1e18 : 1e18, '<', $p1->{CountersSinceMs} // -1,
           "3. ... CountersSinceMs restarted (smaller than the $p1->{CountersSinceMs} ms before the reset)");
    like($c->error_log('node1'), qr/SC1288: counters reset, as asked on the status page/,
         '3. ... node1\'s engine logged the reset (SC1288)');
    is($q && $q->{SessionsActive}, $p1->{SessionsActive}, '3. ... the sessions stay');
    my $r1 = row_for($q ? $q->{members} : [], 'node2');
    cmp_ok($r1 ? $r1->{msgs_in} : 1e18, '<', $r0 ? $r0->{msgs_in} : 0,
           '3. ... and so is msgs_in of its Member: row for node2');
    my $q2 = status_of($c, 'node2');
    cmp_ok($q2 ? $q2->{MsgsIn} : 0, '>=', $p2->{MsgsIn}, '3. ... node2\'s counters are not reset');
}

# redo the state transfer on node1
{
    my $want = (status_of($c, 'node2') || {})->{SessionsActive} // -1;
    my $to0 = 0;
    $to0 += (status_of($c, $_) || {})->{TransferOut} // 0 for qw(node2 node3);
    my ($s) = post_action($c, 'node1', action => 'transfer', nonce => $nonce{node1}, auto => 1);
    is($s, 200, '3. POST transfer&auto=1: 200');
    my $q;
    my $took = within($WAIT, sub {
        $q = status_of($c, 'node1') or return 0;
        return ($q->{EngineState} // '') eq 'ready' && ($q->{TransferIn} // 0) >= $want
            && ($q->{LastTransferSessions} // 0) == $want;
    });
    check(defined $took, $c,
          "3. ... node1 receives the state again: ready, TransferIn = LastTransferSessions = $want",
          'node1: ' . sess_line($q));
    is($q && $q->{TransferIn}, $want, "3. ... TransferIn is exactly the $want sessions present (counted from the reset)");
    is($q && $q->{SessionsActive}, $want, "3. ... node1 holds the $want sessions");
    my $to = 0;
    $to += (status_of($c, $_) || {})->{TransferOut} // 0 for qw(node2 node3);
    cmp_ok($to - $to0, '>=', $want, '3. ... and node2 or node3 counts them in TransferOut');
    like($c->error_log('node1'), qr/SC1289: state transfer asked on the status page/,
         '3. ... node1 logs the redone transfer');
}

# ---------------------------------------------------------------------------
# 4. Require
# ---------------------------------------------------------------------------
{
    my ($s) = fetch($c, 'node2', 'auto', port => $LOCKED_PORT);
    is($s, 403, '4. node2\'s /cluster-manager with Require ip 10.255.255.254: GET ?auto 403');
    ($s) = fetch($c, 'node2', '', port => $LOCKED_PORT);
    is($s, 403, '4. ... GET (HTML) 403');
    ($s) = post_action($c, 'node2', action => 'state', state => 'draining', nonce => $nonce{node2},
                       auto => 1, _port => $LOCKED_PORT);
    is($s, 403, '4. ... POST state=draining with the right nonce 403');
    ($s) = post_action($c, 'node2', action => 'expire_all', nonce => $nonce{node2}, auto => 1,
                       _port => $LOCKED_PORT);
    is($s, 403, '4. ... POST expire_all with the right nonce 403');
    my $why = engine_caught_up($c, 'node2', 'node1');
    check($why eq '', $c, '4. ... node2\'s engine answered a ping since (it took no request)', $why);
    my $p = status_of($c, 'node2');
    is($p && $p->{EngineState}, 'ready', '4. ... node2 is still ready');
    cmp_ok($p ? $p->{SessionsActive} : 0, '>', 0, '4. ... and still holds its sessions');
    unlike($c->error_log('node2'), qr/SC1112|SC1282|SC1287/, '4. ... and logged no action');
}

# ---------------------------------------------------------------------------
# 5. headless Chromium (every member alive, sessions present)
# ---------------------------------------------------------------------------
{
    my $url = "http://127.0.0.1:" . $c->member('node1')->{http_port} . "/cluster-manager";
    my $png = "$FindBin::Bin/../tmp/status-page.png";
    unlink $png;
    my ($rc, $out, $err, $secs) = chromium(60, "--screenshot=$png", '--window-size=1280,2000', $url);
    note(sprintf '5. chromium --screenshot: exit %d in %.1fs', $rc, $secs);
    is($rc, 0, '5. chromium --headless --screenshot exits 0') or diag(substr($err, -1500));
    my $size = -s $png // 0;
    my $magic = '';
    if (open my $fh, '<:raw', $png) { read $fh, $magic, 8; close $fh }
    ok($magic eq "\x89PNG\r\n\x1a\n", '5. the screenshot is a PNG');
    cmp_ok($size, '>', 10_240, '5. ... of more than 10 KB');
    note("5. screenshot of $url: $png") if $size;

    ($rc, $out, $err, $secs) = chromium(60, '--dump-dom', $url);
    note(sprintf '5. chromium --dump-dom: exit %d in %.1fs', $rc, $secs);
    is($rc, 0, '5. chromium --headless --dump-dom exits 0') or diag(substr($err, -1500));
    my ($tbl) = $out =~ m{(<table id="members"[^>]*>.*?</table>)}s;
    ok($tbl, '5. the DOM has <table id="members">') or diag(substr($out, 0, 500));
    my @cells = ($tbl // '') =~ m{<tr><td>([^<]*)</td>}g;
    is_deeply([ sort @cells ], [ 'node2', 'node3' ], '5. ... whose rows start with <td>node2</td> and <td>node3</td>');
    like($out, qr{<h1>Cluster Manager for }, '5. ... and the page heading');
}

# ?session=ID: one session as each member holds it (the first one was expired
# above; synchronous replication:
# the same version everywhere once the write was answered)
{
    for my $id (grep { defined } @s1[1 .. 2], @s2[0 .. 1]) {
        my (%v, @why);
        for my $n (@N) {
            my ($st, undef, $b) = fetch($c, $n, "session=$id");
            my ($held) = $b =~ /^SessionHeld: (\w+)$/m;
            ($v{$n}) = $b =~ /^SessionVersion: (\d+)$/m;
            push @why, "$n: status $st, held " . ($held // '?') . ', version ' . ($v{$n} // '-');
        }
        my %distinct = map { ($_ // 'none') => 1 } values %v;
        check(!grep({ !defined } values %v) && keys %distinct == 1 && (keys %distinct)[0] >= 2, $c,
              "7. ?session=$id: held by every member at one version (>= 2)", @why);
    }
    my ($st, $h, $b) = fetch($c, "node2", "session=$s1[1]&json");
    my $j = $st == 200 ? eval { JSON::PP->new->decode($b) } : undef;
    ok($j && $j->{session}{held} && $j->{session}{id} eq $s1[1] && $j->{session}{bytes} > 0
       && $j->{session}{version} >= 2, '7. ?session=ID&json: held, id, version, bytes')
        or diag("status $st: $b");
    unlike($b, qr/bench|counter=/, '7. ... and not the session data');
    my $unknown = ('0' x 32) . '.node1';
    ($st, undef, $b) = fetch($c, 'node1', "session=$unknown");
    ok($st == 200 && $b =~ /^SessionHeld: no$/m && $b !~ /^SessionVersion/m,
       '7. ?session= of an id nobody holds: SessionHeld: no') or diag("status $st: $b");
    ($st) = fetch($c, 'node1', 'session=%3Cscript%3E');
    is($st, 400, '7. ?session= with an id of another shape: 400');
    like($c->error_log('node1'), qr/SC1302: cluster-manager: session= is not a session id/,
         '7. ... logged (SC1302)');
}

# expire_all last (it empties the cluster)
{
    my ($s, $h) = post_action($c, 'node1', action => 'expire_all', nonce => $nonce{node1});
    is($s, 303, '3. POST expire_all (no auto=1): 303');
    my %a;
    my $took = within($WAIT, sub {
        for my $n (@N) { $a{$n} = (status_of($c, $n) || {})->{SessionsActive} // -1 }
        return !grep { $a{$_} != 0 } @N;
    });
    check(defined $took, $c, '3. ... SessionsActive 0 on every member', map { "$_: $a{$_}" } @N);
    like($c->error_log('node1'), qr/SC1287: \d+ session\(s\) expired on every member/, '3. ... node1 logs it');
}

# every accepted action is logged with the client address
{
    my $log = $c->error_log('node1');
    for my $what ('state draining', 'state ready', "expire $t_action{expire}", 'reset counters',
                  'redo the state transfer', 'expire all sessions') {
        like($log, qr/SC1112: cluster-manager: \Q$what\E, asked by client 127\.0\.0\.1/,
             "3. logged: $what, asked by client 127.0.0.1");
    }
}

for my $n (@N) {
    ok($c->is_running($n), "$n still runs");
    unlike($c->error_log($n), qr/exit signal|Segmentation|AH00052/, "$n: no crash in the error_log");
}
$c->teardown;
note(sprintf 'main cluster: %.1fs', time - $t_start);

# ---------------------------------------------------------------------------
# 6. escaping: a domain with <script> and a quote
# ---------------------------------------------------------------------------
{
    my $RAW = q{<script>x"y};
    my $DOM = q{<Interceptor className="org.apache.catalina.tribes.group.interceptors.DomainFilterInterceptor" domain="&lt;script&gt;x&quot;y"/>};
    my $e = SC::Cluster->new(
        members => 3,
        cluster => sub {
            my ($m, $all) = @_;
            my $b = SC::Cluster::static_block($m, $all);
            $b =~ s{(\s*<Interceptor className="org\.apache\.catalina\.tribes\.group\.interceptors\.StaticMembershipInterceptor")}{\n    $DOM$1}
                or die "static_block: no StaticMembershipInterceptor to put the DomainFilterInterceptor before";
            return $b;
        },
    );
    $e->start_all;
    my $p;
    my $took = within($WAIT, sub { $p = status_of($e, 'node1'); $p && ($p->{MembersAlive} // 0) == 2 });
    check(defined $took, $e, '6. three members sharing the domain <script>x"y see each other',
          'node1: ' . sess_line($p));

    my ($s, $h, $html) = fetch($e, 'node1', '');
    is($s, 200, '6. HTML page 200');
    unlike($html, qr/<script/i, '6. the HTML page never contains <script');
    like($html, qr{<th[^>]*>Domain</th><td>&lt;script&gt;x&quot;y</td>},
         '6. ... its Domain is &lt;script&gt;x&quot;y');
    my ($tbl) = $html =~ m{(<table id="members"[^>]*>.*?</table>)}s;
    my @dom = ($tbl // '') =~ m{<(?:td|dd)>(&lt;script&gt;x&quot;y)</(?:td|dd)>}g;
    is(scalar @dom, 2, '6. ... and so is each member row\'s domain');

    my ($ps2, undef, $html2) = $e->get('node1', '/cluster-manager/%22%3E%3Cscript%3Ex%3C/script%3E');
    is($ps2, 200, '6. the page under /cluster-manager/"><script>x</script> answers 200');
    unlike($html2, qr/<script/i, '6. ... and never contains <script (the form actions are escaped)');

    my $j = json_of($e, 'node1');
    ok($j, '6. the JSON parses') or diag($@);
    is($j && $j->{member}{domain}, $RAW, '6. JSON member.domain round-trips to <script>x"y');
    my @jd = map { $_->{domain} } @{ $j ? $j->{members} : [] };
    is_deeply(\@jd, [ $RAW, $RAW ], '6. ... and members[].domain');
    my ($js, undef, $jb) = fetch($e, 'node1', 'json');
    unlike($jb, qr/<script/i, '6. ... the JSON text has no raw <script (\u003c)');
    ok((grep { index($_, $RAW) >= 0 } @{ $j ? $j->{configuration} : [] }),
       '6. ... the configuration lines carry it too');

    my ($ps, undef, $pb) = fetch($e, 'node1', 'format=prometheus');
    my ($perr) = prom_check($pb);
    ok(!@$perr, '6. the Prometheus output is still valid text exposition')
        or diag(join "\n", @$perr[0 .. ($#$perr < 9 ? $#$perr : 9)]);
    my @info = grep { /^session_cluster_info\{/ } split /\n/, $pb;
    is(scalar @info, 1, '6. one session_cluster_info line');
    like($info[0] // '', qr/,domain="<script>x\\"y",/, '6. ... with domain="<script>x\"y" (quote escaped)');
    my @mi = grep { /^session_cluster_member_info\{/ } split /\n/, $pb;
    is(scalar(grep { /,domain="<script>x\\"y"/ } @mi), 2, '6. ... and so do both member_info lines');

    my ($as, undef, $ab) = fetch($e, 'node1', 'auto');
    my @dl = grep { /^Domain:/ } split /\n/, $ab;
    is(scalar @dl, 1, '6. ?auto has one Domain: line');
    is($dl[0], q{Domain: <script>x\"y}, '6. ... Domain: <script>x\"y (the quote escaped, on one line)');
    ok(!grep({ !/^[A-Za-z][A-Za-z0-9.]*(?::| =| )/ && !/^#/ } split /\n/, $ab),
       '6. ... every ?auto line starts with a key (no value spilled onto a line of its own)')
        or diag(join "\n", grep { !/^[A-Za-z][A-Za-z0-9.]*(?::| =| )/ && !/^#/ } split /\n/, $ab);
    my $pa = parse_auto($ab);
    my @ad = map { $_->{domain} } @{ $pa->{members} };
    is_deeply(\@ad, [ q{"<script>x\"y"}, q{"<script>x\"y"} ], '6. ... Member: rows have domain="<script>x\"y"');
    $e->teardown;
}

note(sprintf 'status_page.t took %.1fs', time - $t_start);
done_testing();
