# The Apache::Test server (t/conf/extra.conf.in) loads the module with a pasted
# <Cluster> block; its cluster-manager page shows the member and what the block
# means, escaped, and answers only GET.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET POST);

plan tests => 16;

my $r = GET '/cluster-manager?auto';
ok($r->code == 200, '?auto answers 200');
ok($r->header('Content-Type') =~ m{^text/plain}, '?auto is text/plain');
my $body = $r->content;
ok($body =~ /^Route: node1$/m, 'route of this member');
ok($body =~ /^Cluster: configured$/m, 'cluster configured');
ok($body =~ /^Receiver\.port = 4711  # set in the block$/m, '${SC_RECEIVER_PORT} from Define');
ok($body =~ /^Cluster\.channelSendOptions = 8 \(asynchronous\)/m, 'channelSendOptions="async" by name');
ok($body =~ /^Manager\.maxActiveSessions = 5000/m, 'Manager attribute across lines');
ok($body =~ /^Membership\.className = org\.apache\.catalina\.tribes\.membership\.McastService  # added by default$/m,
   'the commented-out Membership stays a comment; the default is shown as such');
ok($body =~ /^Member\.1\.port = 4799/m, 'static member');
ok($body =~ m{^Valve\.1\.filter = \.\*\\\.gif\|\.\*\\\.css\|\.\*<script>  #}m, 'entities decoded in the text view');
ok($body =~ m{^Location /app: SessionCluster On  #}m, 'location using the cluster');

$r = GET '/cluster-manager';
ok($r->code == 200, 'HTML page answers 200');
ok($r->header('Content-Type') =~ m{^text/html}, 'HTML page is text/html');
my $html = $r->content;
ok($html =~ /<h1>Cluster Manager for /, 'page title');
ok($html =~ /\.\*&lt;script&gt;/ && $html !~ /<script>/, 'configuration text is escaped in HTML');

$r = POST '/cluster-manager', content => 'x=1';
ok($r->code == 403, 'a POST without the nonce of the page is refused (403)');
