#!/usr/bin/perl
# Writes cluster-elements.md from the README's "Every element and attribute,
# with Tomcat's defaults" (the attributes, defaults, "No effect here" lines and
# notes, which t/config_effect.t checks against the module) and
# mod_session_cluster/sc_classes.c (the class names and aliases):
#
#   perl docs/reference/gen-elements.pl > docs/reference/cluster-elements.md
#
# t/docs_reference.t fails when the page is not what this script makes of
# the README (run it again after changing the README's list).
use strict;
use warnings;
use FindBin;

my $repo = "$FindBin::Bin/../..";
sub slurp { my ($f) = @_; open my $fh, '<', "$repo/$f" or die "$f: $!"; local $/; return <$fh> }

my $readme = slurp('README');
my ($sec) = $readme =~ /^### Every element and attribute, with Tomcat's defaults\n(.*?)^## /ms
    or die "README: no attribute reference\n";
my $c = slurp('mod_session_cluster/sc_classes.c');
my (%full, %alias, %aliases);
while ($c =~ /\{ SC_C_\w+, SC_EL_(\w+), "(\w+)",\s*"([\w.]+)",\s*(a_\w+)/g) {
    $full{"$1 $2"} = $3;
    $alias{"$1 $2"} = $4;
}
while ($c =~ /static const char \*const (a_\w+)\[\] = \{ ([^}]*)\}/g) {
    my ($name, $list) = ($1, $2);
    $aliases{$name} = [ $list =~ /"(\w+)"/g ];
}
my %kind = (Cluster => 'CLUSTER', Manager => 'MANAGER', SessionIdGenerator => 'SESSIONIDGEN',
            Channel => 'CHANNEL', Membership => 'MEMBERSHIP', Receiver => 'RECEIVER',
            Sender => 'SENDER', Transport => 'TRANSPORT', Interceptor => 'INTERCEPTOR',
            Member => 'MEMBER', LocalMember => 'LOCALMEMBER', Valve => 'VALVE',
            Deployer => 'DEPLOYER', ClusterListener => 'LISTENER');

print while <DATA>;
my @blocks = split /^(?=\*\*`<)/m, $sec;
shift @blocks;
for my $b (@blocks) {
    my ($head, $rest) = $b =~ /^\*\*(.*?)\*\*(.*)$/s or die "README: bad block $b";
    my ($tag, $cls) = $head =~ /^`<(\w+)>` (\w+)/ or die "README: bad heading $head";
    my ($note) = $rest =~ /^(.*?)\n/;
    $note =~ s/^\s+//;
    $note =~ s/^\x{2014}\s*|^\xe2\x80\x94\s*//;
    my $key = ($kind{$tag} // die "unknown element <$tag>") . " $cls";
    my $fn = $full{$key} // die "sc_classes.c: no class $key";
    print "\n### `<$tag>` $cls\n\nClass: `$fn`";
    my @al = @{ $aliases{ $alias{$key} } || [] };
    print ' (also accepted: ' . join(', ', map { "`$_`" } @al) . ')' if @al;
    print "\n";
    print "\n" . ucfirst($note) . "\n" if length $note;
    my @paras = grep { /\S/ && !(length $note && index($_, $note) >= 0) } split /\n\n+/, $rest;
    my ($attrs, $noeff, @more);
    for my $p (@paras) {
        $p =~ s/^\s+|\s+$//g;
        if ($p =~ /^No effect here: (.*)$/s) { $noeff = $1 }
        elsif (!defined $attrs && $p =~ /^`\w+`=/) { $attrs = $p }
        elsif ($p eq '(no attributes)') { $attrs = '' }
        else { push @more, $p }
    }
    my %ne = map { $_ => 1 } ($noeff // '') =~ /`(\w+)`/g;
    if (defined $attrs && length $attrs) {
        my (@items, $cur, $depth);
        ($cur, $depth) = ('', 0);
        for my $ch (split //, $attrs) {
            $depth++ if $ch eq '(';
            $depth-- if $ch eq ')';
            if ($ch eq ',' && $depth == 0) { push @items, $cur; $cur = ''; next }
            $cur .= $ch;
        }
        push @items, $cur;
        print "\n| attribute | Tomcat 5.5 name | default | here |\n|---|---|---|---|\n";
        for my $it (@items) {
            $it =~ s/^\s+|\s+$//g;
            my ($name, $def) = $it =~ /^`(\w+)`=(.*)$/s or die "README: bad attribute $it";
            my $old = '';
            if ($def =~ s/\s*\(5\.5: `(\w+)`\)//) { $old = "`$1`" }
            elsif ($def =~ s/\s*\(5\.5 only\)//) { $old = '(5.5 only)' }
            print "| `$name` | $old | $def | " . ($ne{$name} ? 'no effect' : 'acts') . " |\n";
        }
    }
    else {
        print "\n(no attributes)\n";
    }
    print "\nNo effect here: $noeff\n" if defined $noeff;
    print "\n$_\n" for @more;
}
__DATA__
# mod_session_cluster: the `<Cluster>` elements and attributes

The [`<Cluster>`](directives.md#cluster-directive) block is a Tomcat
`<Cluster>` element pasted verbatim. This page lists every element and
attribute the module knows, with Tomcat's default and what it does here:
**acts** (the module takes it into its settings, with Tomcat's meaning) or
**no effect** (accepted, and said to be without effect: once per block at
startup in warning SC1413, and as `no effect` in `httpd -t -D DUMP_CLUSTER`
and on the [status page](status-page.md)). The "No effect here" line of each
class is the one the README gives, checked against the module by
`t/config_effect.t`; `t/docs_reference.t` checks this page against the README.

See also: [directives.md](directives.md), [status-page.md](status-page.md),
and the README's "How the `<Cluster>` block is read" and "Sessions".

## Where each element goes

```
<Cluster className="...SimpleTcpCluster">            the root (one per server)
  <Manager className="...DeltaManager|BackupManager">
    <SessionIdGenerator .../>
  </Manager>
  <Channel className="...GroupChannel">
    <Membership className="...McastService|StaticMembershipService|CloudMembershipService">
      <LocalMember .../>                             (StaticMembershipService)
      <Member .../>                                  (StaticMembershipService)
    </Membership>
    <Receiver className="...NioReceiver"/>
    <Sender className="...ReplicationTransmitter">
      <Transport className="...PooledParallelSender"/>
    </Sender>
    <Interceptor className="..."/>                   any number, in any order
    <Interceptor className="...StaticMembershipInterceptor">
      <Member .../>
    </Interceptor>
  </Channel>
  <Valve className="..."/>
  <Deployer className="..."/>
  <ClusterListener className="..."/>
</Cluster>
```

An element in another place is an error at `httpd -t`. Elements Tomcat adds
when they are missing are added the same way: a DeltaManager;
ClusterSessionListener; JvmRouteBinderValve and ReplicationValve;
MessageDispatchInterceptor and TcpFailureDetector (once any valve, listener or
interceptor is written, the defaults of that kind are not added, as in
Tomcat).

## Reading the tables

- Class: the class name to write in `className`; Tomcat 5.5 names
  (`org.apache.catalina.cluster.*`) and the aliases listed map onto the same
  class. An unknown Manager, Membership, Receiver, Sender or Cluster class is
  an error; an unknown Interceptor, Valve or ClusterListener class a warning.
- Tomcat 5.5 name: the older attribute name, accepted (as are 5.5's
  `manager.`, `sender.`, `receiver.`, `service.` and `valve.` prefixes on
  `<Cluster>`); "(5.5 only)": an attribute of Tomcat 5.5 only, shown in the
  dump only when written.
- Default: Tomcat's default, which is also this module's; units are
  milliseconds unless the table says otherwise; "(ours)": an attribute
  Tomcat does not have.
- A few attributes act or not depending on the block (McastService and
  LocalMember `domain` give way to a DomainFilterInterceptor's; 5.5
  `replicationMode` and `waitForAck` act when they give `channelSendOptions`,
  `tcpListenMaxPort` when it gives `autoBind`; the notes under a table name
  the others): `httpd -t -D DUMP_CLUSTER` says which for a given block.
- `channelSendOptions` and `mapSendOptions` take a number or names:
  `byte_message`/`byte` (1), `use_ack`/`ack` (2), `synchronized_ack`/`sync`
  (4), `asynchronous`/`async` (8), `secure` (16), `udp` (32), `multicast`
  (64, refused: Tomcat never sends such messages), comma-separated,
  case-insensitive.
- Elements that mean nothing in httpd (FarmWarDeployer, ClusterSingleSignOn,
  the coordinator interceptors) are accepted with a warning and listed as
  ignored; interceptors not implemented (Gzip, Fragmentation, Order) are
  reported once at startup and on the page (`NotImplemented`).

## The elements
