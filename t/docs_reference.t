#!perl
# The reference pages in docs/reference/ against the module's sources and the
# README (issue 23); no httpd.
#   1. directives.md: one "### `NAME` Directive" section per directive of the
#      module's command table (mod_session_cluster.c, AP_INIT_*), none other,
#      each with the rows Description, Syntax, Default, Context, Module; its
#      Context as the table says (OR_AUTHCFG: .htaccess with Override
#      AuthConfig; a handler that checks GLOBAL_ONLY: "server config" only)
#      and its Syntax naming the directive.  The handler's name is
#      SC_STATUS_HANDLER's.
#   2. cluster-elements.md: one "### `<Element>` Class" section per class of
#      the README's "Every element and attribute" list, with the README's
#      "No effect here" line word for word, the same attributes in its table
#      and "no effect" on exactly those the line names; the class names of
#      sc_classes.c; and the page is what docs/reference/gen-elements.pl
#      makes of the README (which says how to write it again).
#   3. The package installs every page of docs/reference/ (debian/*.docs).
# (status-page.md's fields are checked against a running member by
# t/cluster/prometheus.t.)
use strict;
use warnings;

use FindBin;
use Test::More;

my $REPO = "$FindBin::Bin/..";
sub slurp { my ($f) = @_; open my $fh, '<', "$REPO/$f" or die "$f: $!"; local $/; return <$fh> }

# ---------------------------------------------------------------------------
# 1. directives.md
# ---------------------------------------------------------------------------
my $src = slurp('mod_session_cluster/mod_session_cluster.c');
my $doc = slurp('docs/reference/directives.md');
my ($table) = $src =~ /static const command_rec sc_cmds\[\] = \{(.*?)\n\};/s;
ok($table, 'the command table of mod_session_cluster.c');
# entries named by a string, or by a macro (the <Cluster> block after reading:
# one directive with the literal "<Cluster", as httpd's sections are)
my (@cmds, %fns);
while ($table =~ /AP_INIT_(\w+)\(\s*("[^"]+"|\w+),\s*(\w+),\s*\w+,\s*([^,]+),/g) {
    my ($kind, $name, $fn, $flags) = ($1, $2, $3, $4);
    if ($name =~ s/^"(.*)"$/$1/) {
        push @cmds, { kind => $kind, name => $name, fn => $fn, flags => $flags };
    }
    else {
        ($name) = $src =~ /#define \Q$name\E "([^"]+)"/ or next;
    }
    (my $key = $name) =~ s/>$//;
    push @{ $fns{$key} }, $fn;
}
ok(@cmds >= 6, 'directives in the table: ' . join(' ', map { $_->{name} } @cmds));

my %section;
for my $s (split /^---\n/m, $doc) {
    $section{$1} = $s if $s =~ /^### `([^`]+)` Directive$/m;
}
for my $c (@cmds) {
    my $name = $c->{name} =~ /^<\w+$/ ? "$c->{name}>" : $c->{name};  # <Cluster, <Manager
    my $s = $section{$name};
    ok($s, "directives.md has a section for $name") or next;
    my %row = $s =~ /^\| (Description|Syntax|Default|Context|Override|Status|Module) \| (.*?) \|$/mg;
    my @missing = grep { !defined $row{$_} || $row{$_} !~ /\S/ } qw(Description Syntax Default Context Module);
    ok(!@missing, "$name: Description, Syntax, Default, Context, Module") or diag("missing: @missing");
    like($row{Syntax} // '', qr/^`\Q$c->{name}\E\b/, "$name: its Syntax names it");
    is($row{Module} // '', 'mod_session_cluster', "$name: Module mod_session_cluster");
    my $global = grep { ($src =~ /^static const char \*\Q$_\E\(.*?^\{(.*?)^\}/ms ? $1 : '') =~ /GLOBAL_ONLY/ }
                 @{ $fns{ $c->{name} =~ s/>$//r } };
    my $want = $c->{flags} =~ /OR_AUTHCFG/ ? 'server config, virtual host, directory, .htaccess'
             : $global ? 'server config'
             : $c->{flags} =~ /RSRC_CONF/ ? 'server config, virtual host'
             : undef;
    is($row{Context} // '', $want, "$name: Context as the command table and its handler say ($c->{flags}"
                                     . ($global ? ', GLOBAL_ONLY' : '') . ')');
    if ($c->{flags} =~ /OR_AUTHCFG/) {
        is($row{Override} // '', 'AuthConfig', "$name: Override AuthConfig");
    }
    else {
        ok(!defined $row{Override}, "$name: no Override (not in .htaccess)");
    }
}
my %known = map { ($_->{name} =~ /^<\w+$/ ? "$_->{name}>" : $_->{name}) => 1 } @cmds;
my @stale = grep { !$known{$_} } sort keys %section;
ok(!@stale, 'directives.md documents no directive the module does not have') or diag("@stale");
my ($handler) = slurp('include/mod_session_cluster.h') =~ /#define SC_STATUS_HANDLER "([^"]+)"/;
like($doc, qr/^\| Syntax \| `SetHandler \Q$handler\E` \|$/m, "directives.md: the handler $handler");

# ---------------------------------------------------------------------------
# 2. cluster-elements.md against the README
# ---------------------------------------------------------------------------
my $readme = slurp('README');
my $el = slurp('docs/reference/cluster-elements.md');
my $classes = slurp('mod_session_cluster/sc_classes.c');
my ($ref) = $readme =~ /^### Every element and attribute, with Tomcat's defaults\n(.*?)^## /ms;
ok($ref, "the README's attribute reference");
my %page;
for my $s (split /^(?=### `<)/m, $el) {
    $page{"$1 $2"} = $s if $s =~ /^### `<(\w+)>` (\w+)$/m;
}
my $n = 0;
for my $b (split /^(?=\*\*`<)/m, $ref // '') {
    my ($tag, $cls) = $b =~ /^\*\*`<(\w+)>` (\w+)\*\*/ or next;
    $n++;
    my $s = $page{"$tag $cls"};
    ok($s, "cluster-elements.md has <$tag> $cls") or next;
    delete $page{"$tag $cls"};
    my ($rl) = $b =~ /^(No effect here: .*)$/m;
    my ($pl) = $s =~ /^(No effect here: .*)$/m;
    is($pl, $rl, "<$tag> $cls: the README's No effect here line");
    my @readme_attrs = ($b =~ /^((?:`\w+`=.*))$/m ? $1 : '') =~ /(?:^|, )`(\w+)`=/g;
    my %row = $s =~ /^\| `(\w+)` \|.*\| (acts|no effect) \|$/mg;
    is(join(' ', sort keys %row), join(' ', sort @readme_attrs), "<$tag> $cls: the README's attributes");
    my %ne = map { $_ => 1 } ($rl // '') =~ /`(\w+)`/g;
    my @wrong = grep { ($row{$_} eq 'no effect') != !!$ne{$_} } sort keys %row;
    ok(!@wrong, "<$tag> $cls: 'no effect' on exactly the attributes the line names") or diag("@wrong");
    my ($full) = $s =~ /^Class: `([\w.]+)`/m;
    like($classes, qr/"\Q$cls\E",\s*"\Q$full\E"/, "<$tag> $cls: class $full as in sc_classes.c");
}
ok($n >= 30, "the README lists $n classes");
my $made = `"$^X" "$REPO/docs/reference/gen-elements.pl" 2>&1`;
ok($? == 0 && $made eq $el, 'cluster-elements.md is what docs/reference/gen-elements.pl makes of the README'
   . ' (perl docs/reference/gen-elements.pl > docs/reference/cluster-elements.md)')
    or diag($? ? $made : 'differs');
ok(!%page, 'cluster-elements.md has no class the README does not list') or diag(join ', ', sort keys %page);

# ---------------------------------------------------------------------------
# 3. the package installs the pages
# ---------------------------------------------------------------------------
my %docs = map { $_ => 1 } split /\n/, slurp('debian/libapache2-mod-session-cluster.docs');
for my $f (map { s{^\Q$REPO\E/}{}r } glob("$REPO/docs/reference/*.md")) {
    ok($docs{$f}, "the package installs $f");
}

done_testing();
