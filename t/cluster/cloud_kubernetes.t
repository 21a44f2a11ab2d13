#!perl
# CloudMembershipService with the kubernetes provider (Tomcat's default): the
# members are the pods in phase Running with a podIP that the Kubernetes API
# server lists for GET /api/v1/namespaces/NS/pods?labelSelector=..., each at
# this member's Receiver port.
#
# No API server runs here.  The API server of this test is a LOCAL HTTPS
# ENDPOINT (a small Perl IO::Socket::SSL server in node1's network namespace)
# speaking the documented API: it answers that GET with a v1 PodList (JSON,
# every other answer with chunked transfer encoding), 401 with a v1 Status
# when the Authorization header is not "Bearer <the token>", 404 for another
# path.  Its certificate is signed by a CA that openssl makes here, for the IP
# address it listens on.  The members get what Tomcat's provider reads from
# httpd's environment: KUBERNETES_SERVICE_HOST/PORT, KUBERNETES_NAMESPACE,
# KUBERNETES_LABELS, SA_TOKEN_FILE, KUBERNETES_CA_CERTIFICATE_FILE.
# Three members in network namespaces (one Receiver port, one address each):
#   (a) the PodList names node1 and node2 Running, a Pending pod with an
#       address, a Running pod without podIP and a Succeeded pod: node1 and
#       node2 see each other alive (SC1481 names the URL with the namespace
#       and the encoded label selector; SC1484 lists the other's address
#       only); the endpoint got the documented path and the bearer token; no
#       member at the Pending pod's address; no request failed (SC1482)
#       although half the answers were chunked;
#   (b) node3 starts with a wrong CA (KUBERNETES_CA_CERTIFICATE_FILE): it
#       refuses the endpoint's certificate with a log line (SC1482 ... not
#       trusted), never sends a request (the endpoint saw no GET from it),
#       keeps running (its page answers) and retries (the endpoint sees more
#       handshakes from it);
#   (b2) node3 with the right CA, but asking a second endpoint whose
#       certificate (from the same CA) names another IP address: refused too
#       (SC1482 ... not trusted), no request sent;
#   (c) node3 restarted with the right CA and listed: all three alive on
#       every page;
#   (d) the token file holds a wrong token: the endpoint answers 401, every
#       member logs SC1482 with the Status message, nobody is dropped (a
#       failed request changes nothing); the right token again: SC1483
#       (answered again) -- the token is read for every request;
#   (d2) answers that are not what the API documents, each logged by node1
#       (SC1482) with its reason: JSON cut short, a Status instead of a
#       PodList, a body shorter than its Content-Length, an answer over 16 MiB
#       (announced, or streamed chunked), an answer later than readTimeout;
#       meanwhile every member still sees the others alive (a failed request
#       changes nothing), and SC1483 once the answers are good again;
#   (e) node2's pod is removed from the list (node2 keeps running and
#       heartbeating): node1 and node3 show node2 left, and never alive again
#       while they keep asking; node2's heartbeats are refused.
# Deadlines are polling limits; no duration is asserted.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Path qw(make_path);
use JSON::PP;
use SC::Cluster;
use SC::Test qw(within check member_on status_of need need_netns);
$SC::Test::WITHIN_INTERVAL = 0.1;

need_netns();
need(eval { require IO::Socket::SSL; 1 }, 'IO::Socket::SSL (libio-socket-ssl-perl)');
need(scalar(grep { -x "$_/openssl" } split /:/, $ENV{PATH}), 'openssl (the openssl package)');

$SIG{ALRM} = sub { die "cloud_kubernetes.t: time limit (300 s) reached\n" };
alarm 300;

my $NS     = 'sc-test';
my $LABELS = 'app=web,tier in (front)';
my $TOKEN  = 'sc-test-token.' . join('', map { ('a' .. 'z')[rand 26] } 1 .. 24);
my $PORT   = 6443;

my $block = sub {
    my ($m) = @_;
    return qq{<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster">\n}
         . qq{  <Channel className="org.apache.catalina.tribes.group.GroupChannel">\n}
         . qq{    <Membership className="org.apache.catalina.tribes.membership.cloud.CloudMembershipService"\n}
         . qq{                refreshInterval="500" expirationTime="3000"/>\n}
         . qq{    <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver" }
         . qq{address="$m->{addr}" port="$m->{cluster_port}" autoBind="1"/>\n}
         . qq{    <Interceptor className="org.apache.catalina.tribes.group.interceptors.TcpFailureDetector"/>\n}
         . qq{  </Channel>\n}
         . qq{</Cluster>\n};
};
my $c = SC::Cluster->new(members => 3, netns => 1, cluster => $block, loglevel => 'notice');
my @names = $c->members;
my %addr = map { $_ => $c->member($_)->{addr} } @names;
(my $unused = $addr{node1}) =~ s/\.\d+$/.77/;        # the Pending pod's address
note("members: " . join(', ', map { "$_=$addr{$_}" } @names));

# ---------------------------------------------------------------------------
# the CA, the endpoint's certificate, the token (readable by httpd's User)
# ---------------------------------------------------------------------------
my $dir = $c->base_dir . '/kube';
make_path($dir, { mode => 0755 });
chmod 0755, $dir;
sub sh {
    my $cmd = join ' ', map { "'$_'" } @_;
    my $out = `$cmd 2>&1`;
    die "cloud_kubernetes.t: $cmd failed:\n$out" if $?;
    return $out;
}
sub write_file {
    my ($f, $text) = @_;
    open my $fh, '>', "$f.new" or die "$f.new: $!";
    print $fh $text;
    close $fh;
    chmod 0644, "$f.new";
    rename "$f.new", $f or die "rename $f: $!";
}
for my $ca (qw(ca wrong-ca)) {
    sh('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
       '-subj', "/CN=sc-test $ca", '-keyout', "$dir/$ca.key", '-out', "$dir/$ca.crt");
}
write_file("$dir/san.ext", "subjectAltName=IP:$addr{node1}\nbasicConstraints=CA:FALSE\n"
                         . "extendedKeyUsage=serverAuth\n");
sh('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=kubernetes',
   '-keyout', "$dir/server.key", '-out', "$dir/server.csr");
sh('openssl', 'x509', '-req', '-in', "$dir/server.csr", '-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key",
   '-CAcreateserial', '-days', '2', '-extfile', "$dir/san.ext", '-out', "$dir/server.crt");
# the same CA's certificate for another address (the second endpoint's)
write_file("$dir/other.ext", "subjectAltName=IP:$unused\nbasicConstraints=CA:FALSE\n"
                           . "extendedKeyUsage=serverAuth\n");
sh('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=kubernetes',
   '-keyout', "$dir/other.key", '-out', "$dir/other.csr");
sh('openssl', 'x509', '-req', '-in', "$dir/other.csr", '-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key",
   '-CAcreateserial', '-days', '2', '-extfile', "$dir/other.ext", '-out', "$dir/other.crt");
chmod 0644, glob("$dir/*.crt");
write_file("$dir/token", "$TOKEN\n");
write_file("$dir/expected-token", $TOKEN);
write_file("$dir/mode", "\n");

# the PodList the endpoint serves (read for every request)
my $json = JSON::PP->new->canonical;
sub pod {
    my ($name, $phase, $ip) = @_;
    my %status = (phase => $phase, hostIP => '192.0.2.1', startTime => '2026-01-01T00:00:00Z');
    if (defined $ip) {
        $status{podIP}  = $ip;
        $status{podIPs} = [ { ip => $ip } ];
    }
    return { metadata => { name => $name, namespace => $NS, uid => "uid-$name",
                           creationTimestamp => '2026-01-01T00:00:00Z',
                           labels => { app => 'web', tier => 'front' } },
             spec => { containers => [ { name => 'httpd', image => 'httpd:2.4',
                                          ports => [ { containerPort => 4000, protocol => 'TCP' } ] } ] },
             status => \%status };
}
sub set_pods {
    my (@running) = @_;
    my @items = map { pod("web-$_", 'Running', $addr{$_}) } @running;
    push @items, pod('web-pending', 'Pending', $unused), pod('web-noip', 'Running', undef),
                 pod('web-done', 'Succeeded', $unused);
    write_file("$dir/pods.json", $json->encode({ kind => 'PodList', apiVersion => 'v1',
                                                 metadata => { resourceVersion => '4242' },
                                                 items => \@items }));
}
set_pods(qw(node1 node2));

# ---------------------------------------------------------------------------
# the endpoint: a local HTTPS server speaking the documented API
# ---------------------------------------------------------------------------
my $SERVER = <<'PERL';
use strict;
use warnings;
use IO::Socket::SSL;
my ($addr, $port, $dir, $ns, $cert) = @ARGV;
$| = 1;
$SIG{PIPE} = 'IGNORE';
$SIG{CHLD} = 'IGNORE';          # one process per connection, not waited for
my $srv = IO::Socket::SSL->new(LocalAddr => $addr, LocalPort => $port, Listen => 16, ReuseAddr => 1,
                               SSL_server => 1, SSL_startHandshake => 0,
                               SSL_cert_file => "$dir/$cert.crt", SSL_key_file => "$dir/$cert.key")
    or die "listen: $! $SSL_ERROR\n";
print "listening on $addr:$port\n";
sub logline {
    open my $log, '>>', "$dir/requests-$port.log" or die "$dir/requests-$port.log: $!";
    syswrite $log, $_[0];
    close $log;
}
sub slurp { open my $f, '<', $_[0] or return ''; local $/; return <$f> }
my $n = 0;
while (1) {
    my $cl = $srv->accept or next;
    my $chunked = $n++ % 2;
    my $pid = fork;
    if (!defined $pid || $pid) {
        $cl->close(SSL_no_shutdown => 1);
        next;
    }
    close $srv;
    serve($cl, $chunked);
    exit 0;
}

sub serve {
    my ($cl, $chunked) = @_;
    my $from = $cl->peerhost;
    $cl->timeout(5);
    if (!$cl->accept_SSL) {
        logline("HANDSHAKE-FAILED from=$from error=$SSL_ERROR\n");
        close $cl;
        return;
    }
    my ($req, $line) = ('');
    while (defined($line = <$cl>)) {
        $req .= $line;
        last if $line =~ /^\r?\n$/ || length $req > 65536;
    }
    my ($path) = $req =~ m{^GET (\S+) HTTP/1\.[01]\r\n};
    my ($auth) = $req =~ m{^Authorization: *([^\r\n]*)}mi;
    my $want = 'Bearer ' . slurp("$dir/expected-token");
    my ($code, $body);
    my $status = sub {
        my ($c, $reason, $msg) = @_;
        return ($c, qq({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)
                  . qq("message":"$msg","reason":"$reason","code":$c}));
    };
    if (!defined $auth || $auth ne $want) {
        ($code, $body) = $status->(401, 'Unauthorized', 'Unauthorized: the bearer token is not valid');
    }
    elsif (!defined $path || $path ne "/api/v1/namespaces/$ns/pods?labelSelector=app%3Dweb%2Ctier%20in%20%28front%29") {
        ($code, $body) = $status->(404, 'NotFound', 'the server could not find the requested resource');
    }
    else {
        ($code, $body) = (200, slurp("$dir/pods.json"));
    }
    my $mode = $code == 200 ? slurp("$dir/mode") : '';
    $mode =~ s/\s+//g;
    logline("GET from=$from path=" . ($path // '?') . " auth=" . (defined $auth && $auth eq $want ? 'ok' : 'wrong')
            . " code=$code" . ($chunked ? ' chunked' : '') . ($mode ? " mode=$mode" : '') . "\n");
    my $head = "HTTP/1.1 $code " . ($code == 200 ? 'OK' : $code == 401 ? 'Unauthorized' : 'Not Found')
             . "\r\nContent-Type: application/json\r\nAudit-Id: sc-test\r\n";
    # the faults of (d2)
    if ($mode eq 'notjson') {
        $body = substr($body, 0, 200);
    }
    elsif ($mode eq 'nolist') {
        $body = qq({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success"});
    }
    elsif ($mode eq 'slow') {
        sleep 3;
    }
    elsif ($mode eq 'cut' && !$chunked) {
        print $cl $head . "Content-Length: " . (length($body) + 1000) . "\r\n\r\n" . $body;
        $cl->close(SSL_fast_shutdown => 1);
        return;
    }
    elsif ($mode eq 'cut') {
        print $cl $head . "Transfer-Encoding: chunked\r\n\r\n" . sprintf("%x\r\n%s\r\n", length $body, $body);
        $cl->close(SSL_fast_shutdown => 1);
        return;
    }
    elsif ($mode eq 'huge' && !$chunked) {
        print $cl $head . "Content-Length: " . (17 * 1024 * 1024) . "\r\n\r\n" . (' ' x 65536);
        $cl->close(SSL_fast_shutdown => 1);
        return;
    }
    elsif ($mode eq 'huge') {
        print $cl $head . "Transfer-Encoding: chunked\r\n\r\n";
        my $part = sprintf("%x\r\n%s\r\n", 65536, ' ' x 65536);
        for (1 .. 17 * 16) { last unless print $cl $part }
        $cl->close(SSL_fast_shutdown => 1);
        return;
    }
    if ($chunked) {
        my $out = $head . "Transfer-Encoding: chunked\r\n\r\n";
        for (my $i = 0; $i < length $body; $i += 700) {
            my $part = substr($body, $i, 700);
            $out .= sprintf("%x\r\n%s\r\n", length $part, $part);
        }
        print $cl $out . "0\r\n\r\n";
    }
    else {
        print $cl $head . "Content-Length: " . length($body) . "\r\n\r\n" . $body;
    }
    $cl->close(SSL_fast_shutdown => 1);
}
PERL
write_file("$dir/apiserver.pl", $SERVER);
my $srv = $c->spawn('node1', { out => "$dir/apiserver.out" }, $^X, "$dir/apiserver.pl", $addr{node1}, $PORT, $dir, $NS, 'server');
my $srv2 = $c->spawn('node1', { out => "$dir/apiserver2.out" }, $^X, "$dir/apiserver.pl", $addr{node1}, $PORT + 1, $dir, $NS, 'other');
sub slurp { open my $f, '<', $_[0] or return ''; local $/; return <$f> }
ok(within(20, sub { slurp("$dir/apiserver.out") =~ /^listening on/m && slurp("$dir/apiserver2.out") =~ /^listening on/m }),
   "the local HTTPS endpoints listen on $addr{node1}:$PORT and :" . ($PORT + 1) . " in node1's namespace")
    or BAIL_OUT("no endpoint:\n" . slurp("$dir/apiserver.out") . slurp("$dir/apiserver2.out"));
sub requests { my $from = shift; grep { !$from || /from=\Q$from\E / } split /\n/, slurp("$dir/requests-$PORT.log") }

# the provider's environment (httpd, and so its engine, inherits it)
my %ENVV = (KUBERNETES_SERVICE_HOST => $addr{node1}, KUBERNETES_SERVICE_PORT => $PORT,
            KUBERNETES_NAMESPACE => $NS, KUBERNETES_LABELS => $LABELS,
            SA_TOKEN_FILE => "$dir/token", KUBERNETES_CA_CERTIFICATE_FILE => "$dir/ca.crt");
sub start_with {
    my ($n, %over) = @_;
    local @ENV{ keys %ENVV } = values %ENVV;
    local @ENV{ keys %over } = values %over;
    $c->start($n);
}
sub state_on { my $m = member_on($c, @_); return $m ? $m->{state} : '(no line)' }
sub log_of { my ($n, $off) = @_; return substr($c->error_log($n), $off // 0) }
sub alive_all {
    my @n = @_;
    return within(40, sub {
        for my $a (@n) { for my $b (@n) { next if $a eq $b; return 0 unless state_on($a, $b) eq 'alive' } }
        1;
    });
}

# ---------------------------------------------------------------------------
# (a) node1 and node2, listed Running
# ---------------------------------------------------------------------------
start_with($_) for qw(node1 node2);
my $url = "https://$addr{node1}:$PORT/api/v1/namespaces/$NS/pods?labelSelector=app%3Dweb%2Ctier%20in%20%28front%29";
for my $n (qw(node1 node2)) {
    my $p = status_of($c, $n) || {};
    is($p->{Membership}, 'CloudMembershipService', "$n: Membership: CloudMembershipService");
    like(log_of($n), qr/SC1481: CloudMembershipService: members are the running pods that \Q$url\E lists, port 4000\b/,
         "$n: SC1481 names the API URL (namespace, encoded label selector)");
}
check(alive_all(qw(node1 node2)), $c, 'node1 and node2, found only through the API server, see each other alive');
{
    my @r = requests($addr{node1});
    ok(scalar(grep { m{ path=/api/v1/namespaces/\Q$NS\E/pods\?labelSelector=app%3Dweb%2Ctier%20in%20%28front%29 auth=ok code=200} } @r),
       'the endpoint got GET /api/v1/namespaces/NS/pods?labelSelector=... with "Authorization: Bearer <token>" from node1')
        or diag(join "\n", @r[0 .. ($#r > 5 ? 5 : $#r)]);
    ok(!grep({ /auth=wrong|code=404/ } requests()), 'no request had a wrong token or path');
    ok(scalar(grep { / chunked$/ } requests()) >= 1 && scalar(grep { !/ chunked$/ } requests()) >= 1,
       'the endpoint answered with both chunked and Content-Length bodies');
}
for my $pair ([qw(node1 node2)], [qw(node2 node1)]) {
    my ($n, $o) = @$pair;
    like(log_of($n), qr/SC1484: CloudMembershipService: the API server lists 1 running pod\(s\) besides this one: \Q$addr{$o}\E \(5 pod\(s\) listed; 2 not running, 1 without name, status or a valid podIP\)$/m,
         "$n: SC1484 lists ${o}'s address only (the Pending, Succeeded and podIP-less pods left out)");
    my $p = status_of($c, $n) || {};
    my @odd = grep { ($_->{addr} // '') =~ /^\Q$unused\E:/ || ($_->{route} // '') eq 'node3' } @{ $p->{members} || [] };
    ok(!@odd, "$n: no member at the Pending pod's address ($unused) nor node3") or diag(join "\n", map { $_->{line} } @odd);
    unlike(log_of($n), qr/SC148[02]/, "$n: no request failed (no SC1480/SC1482)");
}

# ---------------------------------------------------------------------------
# (b) node3 with a wrong CA
# ---------------------------------------------------------------------------
start_with('node3', KUBERNETES_CA_CERTIFICATE_FILE => "$dir/wrong-ca.crt");
{
    my $got = within(20, sub { log_of('node3') =~ /SC1482: CloudMembershipService \(kubernetes\): the API server's certificate is not trusted: [^;]+ \(verified against \Q$dir\E\/wrong-ca\.crt and the name \Q$addr{node1}\E\); the members found last stay/ });
    check(defined $got, $c, "node3 (wrong CA): SC1482 says the API server's certificate is not trusted, naming the CA file")
        or diag(join "\n", grep { /SC14/ } split /\n/, log_of('node3'));
    my @h = grep { /^HANDSHAKE-FAILED/ } requests($addr{node3});
    my $more = within(20, sub { scalar(grep { /^HANDSHAKE-FAILED/ } requests($addr{node3})) >= @h + 2 });
    ok(defined $more, 'node3 keeps trying (the endpoint saw 2 more refused handshakes from it)');
    ok(!grep({ /^GET/ } requests($addr{node3})), 'node3 never sent a request (nor its token) to the untrusted endpoint');
    my $p = status_of($c, 'node3');
    ok($p && !@{ $p->{members} || [] }, 'node3 keeps running (its page answers) and knows no member');
    is(() = log_of('node3') =~ /SC1482/g, 1, 'node3 logged the failure once (the same reason is not repeated)');
}

# ---------------------------------------------------------------------------
# (b2) node3 with the right CA, at an endpoint whose certificate names
# another address
# ---------------------------------------------------------------------------
$c->stop('node3');
{
    my $off = length $c->error_log('node3');
    start_with('node3', KUBERNETES_SERVICE_PORT => $PORT + 1);
    my $got = within(20, sub { log_of('node3', $off) =~ /SC1482: CloudMembershipService \(kubernetes\): the API server's certificate is not trusted: [^;]+ \(verified against \Q$dir\E\/ca\.crt and the name \Q$addr{node1}\E\)/ });
    check(defined $got, $c, "node3 (right CA, certificate for $unused): SC1482 says the certificate is not trusted")
        or diag(join "\n", grep { /SC14/ } split /\n/, log_of('node3', $off));
    my @r = split /\n/, slurp("$dir/requests-" . ($PORT + 1) . ".log");
    ok(@r && !grep({ /^GET/ } @r), 'node3 never sent a request (nor its token) to that endpoint')
        or diag(join "\n", @r);
}

# ---------------------------------------------------------------------------
# (c) node3 with the right CA, listed: all three
# ---------------------------------------------------------------------------
$c->stop('node3');
set_pods(qw(node1 node2 node3));
start_with('node3');
check(alive_all(@names), $c, 'node3 restarted with the right CA and listed: node1, node2, node3 see each other alive');
{
    my $m = member_on($c, 'node1', 'node3');
    is($m && $m->{static}, 1, 'node1 lists node3 with static=1 (a member the API server lists)')
        or diag($m ? $m->{line} : '(no line)');
}

# ---------------------------------------------------------------------------
# (d) a wrong token, then the right one again (read for every request)
# ---------------------------------------------------------------------------
{
    my %off = map { $_ => length $c->error_log($_) } @names;
    write_file("$dir/token", "not-the-token\n");
    for my $n (@names) {
        my $got = within(20, sub { log_of($n, $off{$n}) =~ /SC1482: CloudMembershipService \(kubernetes\): the API server answered 401 Unauthorized: Unauthorized: the bearer token is not valid; the members found last stay/ });
        check(defined $got, $c, "$n: a wrong token: SC1482 with the 401 and the Status message");
    }
    ok(scalar(grep { /auth=wrong code=401/ } requests()) >= 3, 'the endpoint refused the wrong token (401)');
    my @states = map { my $n = $_; map { state_on($n, $_) } grep { $_ ne $n } @names } @names;
    is("@states", join(' ', ('alive') x 6), 'a failed request changes nothing: every member still sees the others alive');
    write_file("$dir/token", "$TOKEN\n");
    for my $n (@names) {
        my $got = within(20, sub { log_of($n, $off{$n}) =~ /SC1483: CloudMembershipService \(kubernetes\): answered again/ });
        check(defined $got, $c, "$n: the right token again: SC1483 (answered again)");
    }
}

# ---------------------------------------------------------------------------
# (d2) answers the API does not give
# ---------------------------------------------------------------------------
{
    my $off = length $c->error_log('node1');
    my @faults = (
        [ notjson => qr/the answer is not JSON: it ends too early at byte \d+/ ],
        [ nolist  => qr/the answer is no PodList \(no "items" array; kind Status\)/ ],
        [ cut     => qr/the answer(?:'s chunked body)? is cut short/ ],
        [ huge    => qr/the answer is larger than 16 MiB \(a label selector in KUBERNETES_LABELS makes it smaller\)/ ],
        [ slow    => qr/reading the answer: no answer within readTimeout \(1000 ms\)/ ],
    );
    for my $f (@faults) {
        my ($mode, $re) = @$f;
        my $o = length $c->error_log('node1');
        write_file("$dir/mode", "$mode\n");
        my $got = within(20, sub { log_of('node1', $o) =~ /SC1482: CloudMembershipService \(kubernetes\): $re; the members found last stay/ });
        check(defined $got, $c, "($mode) node1: SC1482 says $re")
            or diag(join "\n", grep { /SC148/ } split /\n/, log_of('node1', $o));
    }
    my @states = map { my $n = $_; map { state_on($n, $_) } grep { $_ ne $n } @names } @names;
    is("@states", join(' ', ('alive') x 6), 'meanwhile every member still sees the others alive');
    write_file("$dir/mode", "\n");
    my $got = within(20, sub { log_of('node1', $off) =~ /SC1483: CloudMembershipService \(kubernetes\): answered again/ });
    check(defined $got, $c, 'good answers again: node1 logs SC1483');
}

# ---------------------------------------------------------------------------
# (e) node2's pod leaves the list; node2 keeps running
# ---------------------------------------------------------------------------
{
    my %off = map { $_ => length $c->error_log($_) } @names;
    set_pods(qw(node1 node3));
    for my $n (qw(node1 node3)) {
        my $took = within(40, sub { state_on($n, 'node2') eq 'left' });
        check(defined $took, $c, "$n: node2, no longer listed, has left (expirationTime)");
    }
    like(log_of('node1', $off{node1}), qr/member node2 \(\Q$addr{node2}\E:4000\): \w+ -> left: not listed by the API server for 3000 ms/,
         "node1's log says why (SC1221: not listed by the API server for expirationTime)");
    ok($c->is_running('node2'), 'node2 is still running');
    # never alive again while node1 asks the endpoint 4 more times
    my $n0 = scalar requests($addr{node1});
    my @states;
    within(30, sub {
        my $st = state_on('node1', 'node2');
        push @states, $st unless @states && $states[-1] eq $st;
        scalar(requests($addr{node1})) >= $n0 + 4;
    });
    check(@states && !grep({ $_ ne 'left' } @states), $c, 'meanwhile node1 showed node2 left only, never alive again')
        or diag("states seen: @states");
    is(state_on('node1', 'node3'), 'alive', 'node1 still shows node3 alive');
}

# ---------------------------------------------------------------------------
# the end
# ---------------------------------------------------------------------------
$c->stop_all;
$c->finish($_, timeout => 1) for $srv, $srv2;
ok(!SC::Cluster::pid_alive($srv->{pid}) && !SC::Cluster::pid_alive($srv2->{pid}), 'the endpoints are gone');
my @ns = $c->netns_names;
$c->teardown;
my $out = `ip netns list 2>&1`;
ok(!grep({ my $n = $_; $out =~ /^\Q$n\E\b/m } @ns), "the cluster's namespaces are gone");
alarm 0;
done_testing();
