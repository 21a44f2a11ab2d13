#!perl
# The cluster-manager page at a glance (issue 24): what headless Chromium
# makes of node1's HTML page in a cluster of three static members (the demo
# application, a few sessions), measured through the DevTools protocol over
# --remote-debugging-pipe (no script in the page: the page forbids scripts,
# the measure is the browser's own, after layout):
#   1. Every member ready and alive (and a front, 'front', balancing them):
#      node1's summary says "Cluster healthy" (#summary has class c-healthy).
#   2. kill -9 of node3, once node1 sees it dead: the HTML summary says
#      "Cluster degraded" and names node3 dead; node3's rows are a
#      <tbody class="st-dead">, node2's st-ready; the answer's
#      Content-Security-Policy is default-src 'none' with a style nonce, the
#      page's one <style> carries it, and the page has no <script, no style=
#      attribute and no external resource.  Once httpd's parent took a
#      history sample (its monitor hook, about every 10 s; waited for, at
#      most 40 s), the page has the inline-SVG plots.  Once the front sees
#      node3 dead, its page has a <tbody class="st-dead"> BalancerMember row
#      for node3 and st-ready ones for node1 and node2, and says degraded.
#   3. Chromium, viewport 1280 px wide, the page loaded under its own CSP:
#      no horizontal scrolling (document scrollWidth <= clientWidth); the
#      verdict reads "Cluster degraded"; node3's first cell has the dead
#      colour of the style sheet (rgb(246, 191, 186)), node2's another (the
#      style applied: the CSP let it); a full-page PNG at 1280 px is kept as
#      t/tmp/status-glance.png (docs/status-page.png is one of these).
#   4. kill -9 of node2 too: node1 sees 1 of the 3 members it knows, fewer
#      than half: the summary says "Cluster partitioned".
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use File::Temp qw(tempdir);
use MIME::Base64 qw(decode_base64);
use JSON::PP ();
use SC::Cluster;
use SC::Test qw(need check within status_of member_on sess_line app demo_module demo_conf
                balancer_member bm_line);
SC::Test::dump_options(tail => 30, cut => 300);

my $LIMIT = 180;    # far above its run time: only a hang reaches it
$SIG{ALRM} = sub { die "status_glance.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;
my $t_start = time;
my $WAIT = 20;      # a polling limit, not a timing

my ($CHROMIUM) = grep { -x } map { "$_/chromium" } split(/:/, $ENV{PATH} // ''), '/usr/bin';
need($CHROMIUM, 'chromium (Debian package chromium, headless): build/install-deps.sh installs it');
my $DEMO_SO = demo_module();

# ---------------------------------------------------------------------------
# A DevTools-protocol client over --remote-debugging-pipe: chromium reads
# commands on fd 3 and writes answers and events on fd 4, each a JSON text
# ended by a NUL byte.
# ---------------------------------------------------------------------------
{
    package CDP;
    use Time::HiRes qw(time);
    use POSIX ();

    sub new {
        my ($class, $bin, @args) = @_;
        my $profile = File::Temp::tempdir('sc-glance-profile-XXXXXX', TMPDIR => 1, CLEANUP => 1);
        local $^F = 255;    # the pipes' descriptors survive exec
        pipe(my $cmd_r, my $cmd_w) or die "pipe: $!";
        pipe(my $ev_r, my $ev_w) or die "pipe: $!";
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            setpgrp(0, 0);
            my ($r, $w) = (fileno($cmd_r), fileno($ev_w));
            # out of the way of 3 and 4 first, then onto them
            my $r2 = POSIX::dup($r);
            my $w2 = POSIX::dup($w);
            POSIX::dup2($r2, 3);
            POSIX::dup2($w2, 4);
            open STDIN, '<', '/dev/null';
            open STDOUT, '>', '/dev/null';
            open STDERR, '>', "$profile.stderr";
            $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE ALRM);
            no warnings 'exec';
            exec { $bin } $bin, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
                '--disable-background-networking', '--hide-scrollbars',
                "--user-data-dir=$profile", '--remote-debugging-pipe', @args, 'about:blank';
            POSIX::_exit(127);
        }
        close $cmd_r;
        close $ev_w;
        my $self = bless { pid => $pid, w => $cmd_w, r => $ev_r, buf => '', id => 0,
                           events => [], json => JSON::PP->new->canonical }, $class;
        return $self;
    }

    sub _read_one {
        my ($self, $deadline) = @_;
        while (1) {
            my $i = index($self->{buf}, "\0");
            if ($i >= 0) {
                my $msg = substr($self->{buf}, 0, $i);
                substr($self->{buf}, 0, $i + 1) = '';
                return $self->{json}->decode($msg);
            }
            my $left = $deadline - time;
            return undef if $left <= 0;
            my $rin = '';
            vec($rin, fileno($self->{r}), 1) = 1;
            my $n = select(my $rout = $rin, undef, undef, $left);
            next unless $n && $n > 0;
            my $got = sysread($self->{r}, my $chunk, 65536);
            return undef unless $got;
            $self->{buf} .= $chunk;
        }
    }

    # The result of one command (undef and $self->{error} on an error or
    # after $timeout s); events read meanwhile are kept.
    sub call {
        my ($self, $method, $params, %o) = @_;
        my $id = ++$self->{id};
        my $msg = { id => $id, method => $method, params => $params // {} };
        $msg->{sessionId} = $o{session} if $o{session};
        my $text = $self->{json}->encode($msg) . "\0";
        local $SIG{PIPE} = 'IGNORE';
        syswrite($self->{w}, $text) == length($text) or do { $self->{error} = "write: $!"; return undef };
        my $deadline = time + ($o{timeout} // 30);
        while (my $m = $self->_read_one($deadline)) {
            if (defined $m->{id} && $m->{id} == $id) {
                if ($m->{error}) { $self->{error} = "$method: " . $self->{json}->encode($m->{error}); return undef }
                return $m->{result};
            }
            push @{ $self->{events} }, $m;
        }
        $self->{error} = "$method: no answer in time";
        return undef;
    }

    # Waits for event $name (of session $session), at most $timeout s.
    sub event {
        my ($self, $name, $session, $timeout) = @_;
        my $deadline = time + $timeout;
        while (1) {
            my @ev = @{ $self->{events} };
            for my $k (0 .. $#ev) {
                if (($ev[$k]{method} // '') eq $name && (!$session || ($ev[$k]{sessionId} // '') eq $session)) {
                    splice @{ $self->{events} }, $k, 1;
                    return $ev[$k];
                }
            }
            my $m = $self->_read_one($deadline) or return undef;
            push @{ $self->{events} }, $m;
        }
    }

    sub close {
        my ($self) = @_;
        $self->call('Browser.close', {}, timeout => 5) if $self->{pid};
        close $self->{w};
        my $t0 = time;
        while (time - $t0 < 5) {
            last if waitpid($self->{pid}, POSIX::WNOHANG()) == $self->{pid};
            Time::HiRes::sleep(0.05);
        }
        kill 'KILL', -$self->{pid};
        waitpid($self->{pid}, 0);
        $self->{pid} = 0;
    }
}

# ($status, $headers, $body) of member $n's page
sub fetch {
    my ($c, $n, $q) = @_;
    return $c->get($n, '/cluster-manager' . (length $q ? "?$q" : ''), timeout => 5);
}

# the page's summary section, for diag()
sub summary_of {
    my ($html) = @_;
    my ($sum) = ($html // '') =~ m{(<section id="summary".*?</section>)}s;
    return $sum // ('no summary section; the page begins: ' . substr($html // '', 0, 300));
}

# the <tbody> of member $route's rows in the members table
sub member_tbody {
    my ($html, $route) = @_;
    my ($tb) = $html =~ m{(<tbody\b[^>]*\bid="member-\Q$route\E"[^>]*>)};
    return $tb // '';
}

# ---------------------------------------------------------------------------
# the cluster
# ---------------------------------------------------------------------------
my @N = qw(node1 node2 node3);
my $c = SC::Cluster->new(
    members    => 3,
    front      => { name => 'front' },
    extra_conf => demo_conf($DEMO_SO),
    cluster    => sub { my ($m, $all) = @_; SC::Cluster::static_block($m, $all) },
);
my $F = $c->front;
$c->start_all;
# ready, and node1 sees the others announce ready (their heartbeats say so)
my $seen = within($WAIT, sub {
    for my $n (@N) {
        my $p = status_of($c, $n) or return 0;
        return 0 unless ($p->{EngineState} // '') eq 'ready' && ($p->{MembersAlive} // 0) == 3;
    }
    my $p = status_of($c, 'node1') or return 0;
    return 0 if grep { ($_->{member_state} // '') ne 'ready' } @{ $p->{members} };
    my $f = status_of($c, $F) or return 0;
    return !grep { ($_->{member} // '') ne 'ready' } @{ $f->{balancer_members} || [] };
});
check(defined $seen, $c, 'the three members and the front are ready, node1 and the front see them ready',
      map { "$_: " . sess_line(status_of($c, $_)) } @N)
    or BAIL_OUT('the cluster did not come up');
# a few sessions, made on every member
for my $i (1 .. 6) {
    app($c, $N[$i % 3], 'n=1');
}

# 1. healthy
{
    my ($s, $h, $html) = fetch($c, 'node1', '');
    is($s, 200, '1. HTML page: 200');
    like($html, qr{<section id="summary" class="c-healthy">\s*<p id="verdict">Cluster healthy</p>},
         '1. every member ready and alive: the summary says "Cluster healthy"')
        or diag(summary_of($html));
}

# 2. node3 dead
$c->kill9('node3');
{
    my $m;
    $seen = within($WAIT, sub { $m = member_on($c, 'node1', 'node3'); $m && ($m->{state} // '') eq 'dead' });
    check(defined $seen, $c, '2. kill -9 node3: node1 sees it dead', 'node1: ' . sess_line(status_of($c, 'node1')));
}
my $html;
{
    my ($s, $h);
    ($s, $h, $html) = fetch($c, 'node1', '');
    like($html, qr{<section id="summary" class="c-degraded">\s*<p id="verdict">Cluster degraded</p>},
         '2. the summary says "Cluster degraded"') or diag(summary_of($html));
    like($html, qr{<p id="why">[^<]*node3 dead}, '2. ... and names node3 dead');
    like(member_tbody($html, 'node3'), qr{class="st-dead"}, '2. node3\'s rows are a <tbody class="st-dead">');
    like(member_tbody($html, 'node2'), qr{class="st-ready"}, '2. node2\'s are st-ready');
    my $csp = $h->{'content-security-policy'} // '';
    my ($nonce) = $csp =~ /style-src 'nonce-([0-9a-f]{32})'/;
    ok($csp =~ /^default-src 'none';/ && $nonce && $csp =~ /frame-ancestors 'none'/,
       "2. Content-Security-Policy: default-src 'none', a style nonce, frame-ancestors 'none'")
        or diag("CSP: $csp");
    my @styles = $html =~ /<style\b([^>]*)>/g;
    ok(@styles == 1 && $nonce && $styles[0] eq qq{ nonce="$nonce"}, '2. ... the page\'s one <style> carries that nonce')
        or diag("style tags: @styles");
    unlike($html, qr{<script|\sstyle=|\s(?:src|href)="?(?:https?:)?//}i,
           '2. no <script, no style= attribute, nothing external');
    $seen = within(40, sub { (fetch($c, 'node1', ''))[2] =~ /id="plot-msgs"/ });
    ($s, $h, $html) = fetch($c, 'node1', '');
    ok(defined $seen && $html =~ m{<div class="plot" id="plot-msgs">.*?<svg [^>]*>.*?<polyline class="line" points="[-0-9., ]+"/>}s
       && $html =~ /id="plot-sessions"/ && $html =~ /id="plot-failures"/,
       '2. after a history sample: inline-SVG plots of messages, sessions and failures')
        or diag(substr($html, index($html, 'id="history"') - 20, 600));
}

# the front's page: its BalancerMembers coloured the same way, node3 dead
{
    my $bm;
    $seen = within($WAIT, sub {
        $bm = balancer_member(status_of($c, $F), 'node3');
        $bm && ($bm->{member} // '') eq 'dead';
    });
    check(defined $seen, $c, '2. the front sees node3 dead (BalancerMember member=dead)', bm_line($bm));
    my ($s, undef, $fh) = fetch($c, $F, '');
    my ($tbl) = $fh =~ m{(<table id="balancer_members".*?</table>)}s;
    my @pairs = ($tbl // '') =~ m{<tbody class="st-([a-z]+)"><tr><td>[^<]*</td><td>(node\d)</td>}g;
    my %cls;
    while (my ($st, $node) = splice(@pairs, 0, 2)) { $cls{$node} = $st }
    is_deeply(\%cls, { node1 => 'ready', node2 => 'ready', node3 => 'dead' },
              '2. the front\'s page: a BalancerMember row per member, node3\'s st-dead, the others st-ready')
        or diag($tbl // substr($fh, 0, 2000));
    like($fh, qr{<section id="summary" class="c-degraded">}, '2. ... and its summary says degraded')
        or diag(summary_of($fh));
}

# 3. Chromium at 1280 px
{
    my $url = "http://127.0.0.1:" . $c->member('node1')->{http_port} . "/cluster-manager";
    my $b = CDP->new($CHROMIUM, '--window-size=1280,900');
    my $t = $b->call('Target.createTarget', { url => 'about:blank' });
    my $att = $t && $b->call('Target.attachToTarget', { targetId => $t->{targetId}, flatten => JSON::PP::true });
    my $sid = $att && $att->{sessionId};
    ok($sid, '3. chromium: a page over the DevTools pipe') or diag($b->{error});
    my %on = (session => $sid);
    $b->call('Emulation.setDeviceMetricsOverride',
             { width => 1280, height => 900, deviceScaleFactor => 1, mobile => JSON::PP::false }, %on);
    $b->call('Page.enable', {}, %on);
    my $nav = $b->call('Page.navigate', { url => $url }, %on);
    my $loaded = $b->event('Page.loadEventFired', $sid, 30);
    ok($nav && !$nav->{errorText} && $loaded, "3. ... loads $url") or diag($b->{error} // $nav->{errorText});
    my $js = <<'JS';
(function () {
  var d = document.documentElement, bg = function (sel) {
    var e = document.querySelector(sel); return e ? getComputedStyle(e).backgroundColor : null; };
  var wide = [];
  document.querySelectorAll('body *').forEach(function (e) {
    var r = e.getBoundingClientRect(); if (r.right > d.clientWidth + 0.5) wide.push(e.tagName + (e.id ? '#' + e.id : '') + ' ' + Math.round(r.right)); });
  return JSON.stringify({ scrollWidth: d.scrollWidth, clientWidth: d.clientWidth,
    innerWidth: window.innerWidth, height: d.scrollHeight,
    verdict: (document.getElementById('verdict') || {}).textContent,
    dead: bg('#member-node3 td'), ready: bg('#member-node2 td'),
    wide: wide.slice(0, 8) });
})()
JS
    my $ev = $b->call('Runtime.evaluate', { expression => $js, returnByValue => JSON::PP::true }, %on);
    my $got = $ev && $ev->{result} && defined $ev->{result}{value}
            ? eval { JSON::PP->new->decode($ev->{result}{value}) } : undef;
    ok($got, '3. ... and measures it') or diag($b->{error} // JSON::PP->new->encode($ev // {}));
    $got //= {};
    note('3. layout: ' . JSON::PP->new->canonical->encode($got));
    is($got->{innerWidth}, 1280, '3. the viewport is 1280 px wide');
    ok(defined $got->{scrollWidth} && $got->{scrollWidth} <= $got->{clientWidth},
       "3. no horizontal scrolling: document width $got->{scrollWidth} <= $got->{clientWidth}")
        or diag('wider than the viewport: ' . join(', ', @{ $got->{wide} || [] }));
    is($got->{verdict}, 'Cluster degraded', '3. the rendered summary reads "Cluster degraded"');
    is($got->{dead}, 'rgb(246, 191, 186)', '3. node3\'s row has the dead colour');
    ok($got->{ready} && $got->{ready} ne ($got->{dead} // ''), "3. ... node2's another ($got->{ready})");

    # the whole page at 1280 px, for the eye (and docs/status-page.png)
    my $png = "$FindBin::Bin/../tmp/status-glance.png";
    unlink $png;
    my $hgt = $got->{height} && $got->{height} < 8000 ? $got->{height} : 2400;
    $b->call('Emulation.setDeviceMetricsOverride',
             { width => 1280, height => $hgt, deviceScaleFactor => 1, mobile => JSON::PP::false }, %on);
    my $shot = $b->call('Page.captureScreenshot', { format => 'png' }, %on);
    if ($shot && $shot->{data} && open my $fh, '>:raw', $png) {
        print $fh decode_base64($shot->{data});
        close $fh;
    }
    my $magic = '';
    if (open my $fh, '<:raw', $png) { read $fh, $magic, 24; close $fh }
    my ($w) = length $magic == 24 ? unpack('N', substr($magic, 16, 4)) : (0);
    ok(substr($magic, 0, 8) eq "\x89PNG\r\n\x1a\n" && $w == 1280, "3. a PNG of the page, 1280 px wide: $png")
        or diag($b->{error});
    $b->close;
}

# 4. node2 dead too: a minority
$c->kill9('node2');
{
    my $p;
    $seen = within($WAIT, sub { $p = status_of($c, 'node1'); $p && ($p->{Minority} // '') eq '1' });
    check(defined $seen, $c, '4. kill -9 node2 too: node1 is in a minority (Minority 1)', 'node1: ' . sess_line($p));
    my (undef, undef, $h4) = fetch($c, 'node1', '');
    like($h4, qr{<section id="summary" class="c-partitioned">\s*<p id="verdict">Cluster partitioned</p>},
         '4. the summary says "Cluster partitioned"') or diag(summary_of($h4));
    like($h4, qr{<p id="why">this member sees 1 of the 3 members it knows}, '4. ... seeing 1 of the 3 members it knows');
}

ok($c->is_running('node1'), 'node1 still runs');
unlike($c->error_log('node1'), qr/exit signal|Segmentation|AH00052/, 'node1: no crash in the error_log');
$c->teardown;
note(sprintf 'status_glance.t took %.1fs', time - $t_start);
done_testing();
