#!perl
# The cluster-manager page's guards (issue 16): two static members node1 and
# node2; node1 has, besides the harness's /cluster-manager (Require all
# granted), /open-manager (SetHandler cluster-manager and no Require: the
# document root's <Directory> lets everyone in), /local-manager (Require
# local, mod_authz_host) and /get-only-manager (Require local inside <Limit
# GET>: POST open).
#   1. Frame protection: the HTML page, ?auto, ?json, a refused POST (403), a
#      refused GET ping (405) and an action's redirect (303) all carry
#      X-Frame-Options: DENY and Content-Security-Policy: frame-ancestors 'none'.
#   2. Ping: a GET ?ping=node2&size=1000000 is 405 with a text naming POST and
#      the nonce, and sends nothing (node2's BytesIn grows by less than the
#      size, read after an acknowledged ping); a POST ping without the nonce
#      or with a wrong one is 403 and sends nothing either; with the nonce,
#      size=1048577 is 400 with a text naming the bound (1048576 bytes) and
#      size=1048576 is acknowledged (Size: 1048576).
#   3. Origin: with the page's nonce, a POST state=draining whose Origin is
#      another site, whose Referer (without Origin) is another site, whose
#      Origin is "null", whose Origin is this host on another port, or a
#      ping with a foreign Origin, is 403; node1 stays ready (checked after
#      its engine answered a ping sent after them) and node2 sees it ready;
#      SC1407 is logged.  Twenty more foreign POSTs: every one 403, SC1407
#      grew by at least one line and by fewer than twenty (a rate limit).
#      Accepted: Origin http://HOST:PORT equal to the Host header (node1
#      drains, node2 sees it), Referer of the page (ready again), Origin
#      https://NAME with X-Forwarded-Host NAME behind a proxy that sends
#      another Host, and no Origin nor Referer with the nonce (curl).
#   4. Open page: after requests to every location, node1's error_log holds
#      one SC1408 warning for /open-manager (GET or POST; requested three
#      times: once per start), one for /get-only-manager naming POST, none
#      for /local-manager or /cluster-manager; node2 has none.
# Nothing is timed: each step polls for its effect (at most 20 s).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time sleep);
use SC::Cluster;
use SC::Test qw(status_of page_ping url_escape check within ready_and_alive);

my $LIMIT = 240;
$SIG{ALRM} = sub { die "status_guard.t: time limit ($LIMIT s) reached\n" };
alarm $LIMIT;
my $WAIT = 20;
my $BOUND = 1048576;

my $EXTRA = <<'EOC';
<Location /open-manager>
    SetHandler cluster-manager
</Location>
<Location /local-manager>
    SetHandler cluster-manager
    Require local
</Location>
<Location /get-only-manager>
    SetHandler cluster-manager
    <Limit GET>
        Require local
    </Limit>
</Location>
EOC

my $c = SC::Cluster->new(members => 2, member_opts => { node1 => { extra_conf => $EXTRA, modules => ['authz_host'] } });
$c->start_all;
# a member is 'starting' until its state transfer is done; actions need ready
ok(within(60, sub { ready_and_alive($c, 'node1', 'node2') }), 'node1 and node2 ready, each alive to the other')
    or BAIL_OUT('the members did not become ready');
my $m1 = $c->member('node1');
my $HOST = "$m1->{addr}:$m1->{http_port}";

# A POST to node1's /cluster-manager with a Host header of our choice and
# more headers: ($status, \%headers, $body).
sub raw_post {
    my ($host, $hdr, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $m1->{addr}, PeerPort => $m1->{http_port},
                                  Proto => 'tcp', Timeout => 5)
        or return (0, {}, "connect: $!");
    my $req = "POST /cluster-manager HTTP/1.0\r\nHost: $host\r\n"
            . join('', map { "$_: $hdr->{$_}\r\n" } sort keys %$hdr)
            . "Content-Type: application/x-www-form-urlencoded\r\n"
            . 'Content-Length: ' . length($body) . "\r\nConnection: close\r\n\r\n$body";
    print {$s} $req;
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $deadline = time + 10;
    while (time < $deadline) {
        next unless $sel->can_read(1);
        my $n = sysread($s, $buf, 65536, length $buf);
        last unless $n;
    }
    close $s;
    my ($head, $b) = split /\r?\n\r?\n/, $buf, 2;
    my ($st) = ($head // '') =~ m{^HTTP/\S+\s+(\d+)};
    my %h;
    for (split /\r?\n/, $head // '') {
        $h{lc $1} = $2 if /^([^:\s]+):\s*(.*?)\s*$/;
    }
    return ($st // 0, \%h, $b // '');
}

sub form { my %f = @_; return join '&', map { "$_=" . url_escape($f{$_}) } sort keys %f }
sub nonce_of { return (status_of($c, $_[0]) || {})->{Nonce} // '' }
sub field { my ($n, $k) = @_; return (status_of($c, $n) || {})->{$k} }
sub count_lines { my ($n, $re) = @_; return scalar(() = $c->error_log($n) =~ /$re/g) }

# '' once node1's engine acknowledged a ping to node2 sent now (whatever a
# POST before it could have asked of the engine, it has taken by then)
sub caught_up {
    my ($s, undef, $b) = page_ping($c, 'node1', 'node2', timeout => $WAIT);
    return '' if $s == 200 && ($b // '') =~ /^Result: acknowledged$/m;
    return "ping answered $s: " . substr($b // '', 0, 300);
}

sub node2_sees {
    my ($state) = @_;
    my $p = status_of($c, 'node2') || {};
    my ($row) = grep { ($_->{route} // '') eq 'node1' } @{ $p->{members} || [] };
    return ($row->{member_state} // '') eq $state;
}

sub has_guard {
    my ($h, $what) = @_;
    is($h->{'x-frame-options'} // '', 'DENY', "1. $what: X-Frame-Options: DENY");
    like($h->{'content-security-policy'} // '', qr/frame-ancestors 'none'/,
         "1. $what: Content-Security-Policy: frame-ancestors 'none'");
}

my $nonce = nonce_of('node1');
like($nonce, qr/^[0-9a-f]{32}$/, 'node1 shows a nonce');

# ---------------------------------------------------------------------------
# 1. frame protection
{
    my ($s, $h) = $c->get('node1', '/cluster-manager');
    is($s, 200, '1. HTML page: 200');
    has_guard($h, 'HTML page');
    ($s, $h) = $c->get('node1', '/cluster-manager?auto');
    has_guard($h, '?auto');
    ($s, $h) = $c->get('node1', '/cluster-manager?json');
    has_guard($h, '?json');
    ($s, $h) = $c->post('node1', '/cluster-manager', form(action => 'reset'));
    is($s, 403, '1. POST without the nonce: 403');
    has_guard($h, '403 answer');
    ($s, $h) = $c->get('node1', '/cluster-manager?ping=node2');
    has_guard($h, 'GET ping refused');
    ($s, $h) = $c->post('node1', '/cluster-manager', form(action => 'reset', nonce => $nonce));
    is($s, 303, '1. POST reset with the nonce: 303');
    has_guard($h, '303 redirect');
}

# ---------------------------------------------------------------------------
# 2. ping: POST with the nonce, bounded
{
    my $in0 = field('node2', 'BytesIn') // 0;
    my ($s, $h, $b) = $c->get('node1', '/cluster-manager?ping=node2&size=1000000', timeout => 10);
    is($s, 405, '2. GET ?ping=node2&size=1000000: 405');
    like($b, qr/POST/, '2. ... its text says a ping is a POST');
    like($b, qr/nonce/, '2. ... with the nonce');
    unlike($b, qr/^Result: (?:acknowledged|sent)/m, '2. ... and it is no ping answer');
    ($s, undef, $b) = $c->post('node1', '/cluster-manager', form(ping => 'node2', size => 500000),
                               timeout => 10);
    is($s, 403, '2. POST ping without the nonce: 403');
    ($s, undef, $b) = $c->post('node1', '/cluster-manager',
                               form(ping => 'node2', size => 500000, nonce => 'f' x 32), timeout => 10);
    is($s, 403, '2. POST ping with a wrong nonce: 403');
    my $why = caught_up();
    check($why eq '', $c, '2. a small ping with the nonce is acknowledged', $why);
    my $in1 = field('node2', 'BytesIn') // 0;
    check($in1 - $in0 < 500000, $c,
          "2. the refused pings sent nothing: node2's BytesIn grew by " . ($in1 - $in0)
          . ' (< 500000)');

    ($s, undef, $b) = page_ping($c, 'node1', 'node2', size => $BOUND + 1, timeout => 10);
    is($s, 400, '2. POST ping size=' . ($BOUND + 1) . ' with the nonce: 400');
    like($b, qr/over the ping's bound of $BOUND bytes/, "2. ... the text names the bound ($BOUND)")
        or diag($b);
    ($s, undef, $b) = page_ping($c, 'node1', 'node2', size => $BOUND, timeout => $WAIT);
    is($s, 200, "2. POST ping size=$BOUND with the nonce: 200");
    like($b, qr/^Size: $BOUND$/m, "2. ... Size: $BOUND");
    check(scalar(($b // '') =~ /^Result: acknowledged$/m), $c, '2. ... acknowledged', $b);
}

# ---------------------------------------------------------------------------
# 3. Origin / Referer of actions
{
    my $drain = form(action => 'state', state => 'draining', nonce => $nonce, auto => 1);
    my $sc0 = count_lines('node1', qr/SC1407/);
    my @foreign = (
        [ 'Origin another site', { Origin => 'http://evil.example' } ],
        [ 'Referer another site (no Origin)', { Referer => 'http://evil.example/page.html' } ],
        [ 'Origin null', { Origin => 'null' } ],
        [ 'Origin this host, another port', { Origin => "http://$m1->{addr}:1" } ],
        [ 'Origin another site, Referer this page',
          { Origin => 'https://evil.example', Referer => "http://$HOST/cluster-manager" } ],
    );
    for my $f (@foreign) {
        my ($s, undef, $b) = raw_post($HOST, $f->[1], $drain);
        is($s, 403, "3. POST state=draining with the nonce, $f->[0]: 403");
        unlike($b, qr/Result: accepted/, "3. ... not accepted");
    }
    my ($s, undef, $b) = raw_post($HOST, { Origin => 'http://evil.example' },
                                  form(ping => 'node2', nonce => $nonce));
    is($s, 403, '3. POST ping with the nonce, Origin another site: 403');
    my $why = caught_up();
    check($why eq '', $c, "3. node1's engine answered a ping since", $why);
    is(field('node1', 'EngineState'), 'ready', '3. node1 is still ready (no draining taken)');
    ok(within($WAIT, sub { node2_sees('ready') }), '3. node2 sees node1 ready');
    my $sc1 = count_lines('node1', qr/SC1407/);
    check($sc1 > $sc0, $c, "3. SC1407 logged for the foreign origin ($sc0 -> $sc1 lines)");
    my $refused = 0;
    for (1 .. 20) {
        my ($s2) = raw_post($HOST, { Origin => 'http://evil.example' }, $drain);
        $refused++ if $s2 == 403;
    }
    is($refused, 20, '3. twenty more foreign POSTs: all 403');
    my $sc2 = count_lines('node1', qr/SC1407/);
    check($sc2 - $sc1 < 20, $c,
          "3. ... SC1407 lines grew by fewer than twenty ($sc1 -> $sc2): a rate limit");

    ($s, undef, $b) = raw_post($HOST, { Origin => "http://$HOST" }, $drain);
    is($s, 200, "3. Origin http://$HOST (the Host header): 200");
    like($b, qr/^Result: accepted$/m, '3. ... accepted');
    ok(within($WAIT, sub { (field('node1', 'EngineState') // '') eq 'draining' }),
       '3. ... node1 is draining');
    ok(within($WAIT, sub { node2_sees('draining') }), '3. ... node2 sees node1 draining');
    ($s, undef, $b) = raw_post($HOST, { Referer => "http://$HOST/cluster-manager?refresh=5" },
                               form(action => 'state', state => 'ready', nonce => $nonce, auto => 1));
    is($s, 200, '3. Referer the page (no Origin), state=ready: 200');
    ok(within($WAIT, sub { (field('node1', 'EngineState') // '') eq 'ready' }),
       '3. ... node1 is ready again');
    ($s, undef, $b) = raw_post('10.1.2.3:8080', { Origin => 'https://manager.example.org',
                                                  'X-Forwarded-Host' => 'manager.example.org' },
                               form(action => 'reset', nonce => $nonce, auto => 1));
    is($s, 200, '3. behind a proxy: Origin https://NAME, X-Forwarded-Host NAME, another Host: 200');
    like($b, qr/^Result: accepted$/m, '3. ... accepted');
    ($s, undef, $b) = raw_post('manager.example.org', {},
                               form(action => 'reset', nonce => $nonce, auto => 1));
    is($s, 200, '3. no Origin nor Referer, with the nonce: 200 (scripts, curl)');
}

# ---------------------------------------------------------------------------
# 4. the warning for a page open to all
{
    for my $loc (qw(/cluster-manager /local-manager /open-manager /get-only-manager
                    /open-manager /open-manager)) {
        my ($s) = $c->get('node1', "$loc?auto");
        is($s, 200, "4. GET $loc?auto: 200");
    }
    $c->get('node2', '/cluster-manager?auto');
    my $log = $c->error_log('node1');
    my @open = $log =~ /^.*SC1408.*$/mg;
    my @o = grep { /page \/open-manager / } @open;
    check(@o == 1, $c, '4. one SC1408 warning for /open-manager (' . scalar(@o) . ')', @open);
    like($o[0] // '', qr/GET or POST/, '4. ... it names GET or POST');
    like($o[0] // '', qr/Require local/, '4. ... and says what to add');
    my @g = grep { /page \/get-only-manager / } @open;
    check(@g == 1, $c, '4. one SC1408 warning for /get-only-manager (' . scalar(@g) . ')', @open);
    like($g[0] // '', qr/POST \(its actions\)/, '4. ... naming POST (its actions)');
    my @l = grep { /page \/(?:local|cluster)-manager / } @open;
    check(!@l, $c, '4. none for /local-manager (Require local) nor /cluster-manager', @l);
    is(count_lines('node2', qr/SC1408/), 0, '4. none on node2 (its page has Require all granted)');
}

$c->stop_all;
done_testing();
