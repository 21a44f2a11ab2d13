#!perl
# msm's <Manager> at server level, as httpd -t sees it (issue 19): every
# attribute acts or is reported as having no effect (SC1703 and the dump's
# "# ignored:" lines), bad values are refused with the file, the line and why,
# with or without a <Cluster> block.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use SC::ConfTest qw(httpd_t);

my $CLASS = 'de.javakaffee.web.msm.MemcachedBackupSessionManager';
sub mgr { return qq{<Manager className="$CLASS"\n         } . join("\n         ", @_) . "/>\n" }

# 1. msm's example, pasted over several lines, alone: accepted; the Java-only
#    attributes reported; the dump shows what acts
my $r = httpd_t(mgr(q{memcachedNodes="n1:127.0.0.1:11211,n2:127.0.0.1:11212"},
                    q{failoverNodes="n1" sticky="true" sessionBackupAsync="false"},
                    q{sessionBackupTimeout="250" operationTimeout="700" maxInactiveInterval="600"},
                    q{requestUriIgnorePattern=".*\.(ico|png|gif|jpg|css|js)$"},
                    q{transcoderFactoryClass="de.javakaffee.web.msm.serializer.kryo.KryoTranscoderFactory"},
                    q{copyCollectionsForSerialization="false" customConverter="x.Y"}),
                args => [ '-D', 'DUMP_CLUSTER' ]);
is($r->{status}, 0, '1. msm\'s element alone: Syntax OK') or diag($r->{err});
like($r->{err}, qr/SC1703: <Manager> at \S+:1: attributes with no effect in httpd: transcoderFactoryClass \(Java serialization[^)]*\); copyCollectionsForSerialization \([^)]*\); customConverter/,
     '1. ... the Java-only attributes reported at startup (SC1703)');
unlike($r->{err}, qr/SC1703.*(?:memcachedNodes|sessionBackupTimeout|maxInactiveInterval)/,
       '1. ... and nothing that acts');
like($r->{out}, qr/^SessionServer = memcached \(n1 127\.0\.0\.1:11211 \(failover\), n2 127\.0\.0\.1:11212\), sticky/m,
     '1. dump: the nodes, the failover node');
like($r->{out}, qr/^SessionServer\.sessionBackupTimeout = 250 ms$/m, '1. dump: sessionBackupTimeout');
like($r->{out}, qr/^SessionServer\.operationTimeout = 700 ms$/m, '1. dump: operationTimeout');
like($r->{out}, qr/^Manager\.maxInactiveInterval = 600\b/m,
     '1. dump: maxInactiveInterval is the member\'s idle limit');
like($r->{out}, qr/^# ignored: SessionServer\.customConverter = x\.Y  # \S+:7: no effect: /m,
     '1. dump: an ignored attribute with its line');
like($r->{out}, qr/^# no <Cluster> block: this member runs alone/m, '1. dump: no <Cluster> needed');

# 2. Redis, and a <Cluster> block after it: the block runs; maxInactiveInterval
#    is then the block's Manager's
$r = httpd_t(mgr(q{memcachedNodes="redis://127.0.0.1:6379" maxInactiveInterval="60"})
             . qq{<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelStartOptions="3"/>\n},
             args => [ '-D', 'DUMP_CLUSTER' ]);
is($r->{status}, 0, '2. Redis with a <Cluster> block: Syntax OK') or diag($r->{err});
like($r->{out}, qr/^SessionServer = redis \(redis 127\.0\.0\.1:6379\), sticky/m, '2. dump: redis');
like($r->{out}, qr/^Cluster\.channelStartOptions = 3  # set in the block/m, '2. dump: the block written runs');
like($r->{err}, qr/SC1703: .*maxInactiveInterval \(a <Cluster> block is written/,
     '2. maxInactiveInterval reported: the block\'s Manager\'s applies');

# 2b. non-sticky: lockingMode="none" acts (it is the mode), sessionBackupAsync
#     has no effect (the session is written before the response)
$r = httpd_t(mgr(q{memcachedNodes="redis://127.0.0.1:6379" sticky="false"},
                 q{lockingMode="none" sessionBackupAsync="true"}),
             args => [ '-D', 'DUMP_CLUSTER' ]);
is($r->{status}, 0, '2b. sticky="false" lockingMode="none": Syntax OK') or diag($r->{err});
like($r->{out}, qr/^SessionServer = redis \(redis 127\.0\.0\.1:6379\), non-sticky/m, '2b. dump: non-sticky');
like($r->{err}, qr/SC1703: .*: sessionBackupAsync \(non-sticky sessions are written before the response/,
     '2b. sessionBackupAsync reported as having no effect');
unlike($r->{err}, qr/SC1703: .*lockingMode/, '2b. lockingMode="none" acts');
unlike($r->{out}, qr/JvmRouteBinderValve/, '2b. no re-binding: the id keeps its route');

# 2c. non-sticky: lockingMode "all", "auto" and "uriPattern:<regex>" act (the
#     lock before the session is read)
for my $mode ('all', 'auto', 'uriPattern:GET /app\?auto.*') {
    $r = httpd_t(mgr(q{memcachedNodes="redis://127.0.0.1:6379" sticky="false"},
                     qq{lockingMode="$mode"}));
    is($r->{status}, 0, qq{2c. sticky="false" lockingMode="$mode": Syntax OK}) or diag($r->{err});
    unlike($r->{err}, qr/SC1703: .*lockingMode/, qq{2c. lockingMode="$mode" acts});
}

# 3. refused, each with its file, line and why
my @bad = (
    [ mgr(q{memcachedNodes="n1:127.0.0.1"}), qr/:2: <Manager>: memcachedNodes: 'n1:127\.0\.0\.1' is not id:host:port/ ],
    [ mgr(q{sticky="true"}), qr/memcachedNodes is required/ ],
    [ mgr(q{memcachedNodes="n1:h:1,n1:h:2"}), qr/node id 'n1' is given twice/ ],
    [ mgr(q{memcachedNodes="abcdefghijklmnopq:h:1,n2:h:2"}), qr/node id 'abcdefghijklmnopq': at most 16 characters/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{failoverNodes="n2"}), qr/:3: <Manager>: failoverNodes: 'n2' is not a node/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{failoverNodes="n1"}), qr/failoverNodes names every node/ ],
    [ mgr(q{memcachedNodes="redis://h:6379"}, q{failoverNodes="redis"}), qr/Redis has a single node/ ],
    [ mgr(q{memcachedNodes="redis://h:6379/0"}), qr/expected redis:\/\/host:port/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{sessionBackupTimeout="0"}), qr/:3: <Manager>: sessionBackupTimeout="0": 0 is out of range \(1-600000 ms\)/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{operationTimeout="1s"}), qr/operationTimeout="1s": '1s' is not a number/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{sticky="maybe"}), qr/sticky="maybe": .maybe. is not true or false/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{sessionBackupAsync="2"}), qr/sessionBackupAsync="2": .2. is not true or false/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{sticky="false" lockingMode="uriPattern:(unclosed"}), qr/lockingMode="uriPattern:\(unclosed": '\(unclosed' is not a regular expression/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{sticky="false" lockingMode="uriPattern:"}), qr/uriPattern: needs a regular expression/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{lockingMode="sometimes"}), qr/lockingMode="sometimes": none, all, auto or uriPattern/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{requestUriIgnorePattern="(unclosed"}), qr/requestUriIgnorePattern="\(unclosed": '\(unclosed' is not a valid regular expression/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}, q{bogus="1"}), qr/:3: <Manager>: unknown attribute bogus/ ],
    [ mgr(q{memcachedNodes="n1:h:1" memcachedNodes="n2:h:1"}), qr/attribute memcachedNodes is written twice/ ],
    [ mgr(q{memcachedNodes=n1:h:1}), qr/attribute memcachedNodes: the value must be quoted/ ],
    [ qq{<Manager className="org.apache.catalina.ha.session.DeltaManager"/>\n}, qr/a <Manager> at server level is msm's/ ],
    [ qq{<Manager className="$CLASS"\n memcachedNodes="n1:h:1"\n}, qr/<Manager> is not closed/ ],
    [ qq{<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster">\n<Manager className="$CLASS" memcachedNodes="n1:h:1"/>\n</Cluster>\n},
      qr/:2: Manager class '\Q$CLASS\E': msm's <Manager> belongs outside the <Cluster> block/ ],
    [ mgr(q{memcachedNodes="n1:h:1"}) . mgr(q{memcachedNodes="n2:h:1"}), qr/a second one \(the first is at \S+:1\)/ ],
    [ qq{<VirtualHost *:80>\n} . mgr(q{memcachedNodes="n1:h:1"}) . "</VirtualHost>\n", qr/belongs in the main server configuration/ ],
);
for my $b (@bad) {
    my ($text, $re) = @$b;
    $r = httpd_t($text);
    my ($first) = $text =~ /^(.*)$/m;
    isnt($r->{status}, 0, "3. refused: " . (split /\n/, $text)[-1]) or next;
    like($r->{err}, $re, "3. ... says why") or diag($r->{err});
}

# 4. SessionClusterRoute is this member's jvmRoute: required
$r = httpd_t(mgr(q{memcachedNodes="n1:127.0.0.1:11211"}), route => undef);
isnt($r->{status}, 0, '4. no SessionClusterRoute: refused');
like($r->{err}, qr/SC1704: <Manager> at \S+ needs SessionClusterRoute/, '4. ... says why');

# 5. README's "No effect here" line for msm's <Manager>: each attribute it
#    names is accepted and reported as having no effect, and nothing else is
{
    my $readme = do { local (@ARGV, $/) = ("$FindBin::Bin/../../README"); <> };
    my ($line) = $readme =~ /^\*\*`<Manager>` MemcachedBackupSessionManager\*\*.*?^No effect here: (.*?)$/ms;
    my @said = sort(($line // '') =~ /`(\w+)`/g);
    my %value = (lockingMode => 'none', backupThreadCount => 4, enableStatistics => 'true',
                 copyCollectionsForSerialization => 'false', memcachedProtocol => 'text');
    ok(@said >= 5, '5. README has the No effect here line for msm\'s <Manager>') or diag($line);
    $r = httpd_t(mgr(q{memcachedNodes="n1:127.0.0.1:11211"},
                     map { qq{$_="} . ($value{$_} // 'x') . '"' } @said));
    is($r->{status}, 0, '5. ... every attribute it names is accepted') or diag($r->{err});
    my ($names) = $r->{err} =~ /SC1703: .*? attributes with no effect in httpd: (.*)$/m;
    my @module = sort(($names // '') =~ /(?:^|; )(\w+) \(/g);
    is("@module", "@said", '5. ... and reported as having no effect, exactly those');
}

done_testing;
