#!/usr/bin/env perl
# System calls per request, by process role and call, from the recordings
# bench/ab_so.pl makes with AB_SYSREC=DIR (perf record -e
# raw_syscalls:sys_enter of each member's processes for SECONDS - 1 s):
#
#   perl bench/syscalls.pl DIR SECONDS [SCEN ...]
#
# Roles: the parent (the first pid recorded), the engine (the process that
# has one thread), the children (the others: httpd's worker threads).
# Needs perf (linux-perf) and the kernel headers' syscall table.
use strict;
use warnings;

my ($dir, $secs, @scen) = @ARGV;
die "usage: syscalls.pl DIR SECONDS [SCEN ...]\n" unless $dir && $secs && $secs >= 2;
@scen = map { m{([^/]+)\.rps$} ? $1 : () } glob("$dir/*.rps") unless @scen;

my %name;
for my $h ('/usr/include/x86_64-linux-gnu/asm/unistd_64.h', '/usr/include/asm/unistd_64.h') {
    open my $f, '<', $h or next;
    while (<$f>) { $name{$2} = $1 if /^#define __NR_(\w+)\s+(\d+)/ }
    last;
}

for my $sc (@scen) {
    open my $rf, '<', "$dir/$sc.rps" or die "$dir/$sc.rps: $!\n";
    my $rps = <$rf>;
    chomp $rps;
    die "$sc: no request rate\n" unless $rps;
    my $reqs = $rps * ($secs - 1);
    printf "%s: %.0f req/s, system calls a request by member, role and call\n", $sc, $rps;
    for my $node (map { m{/\Q$sc\E-(node\d+)\.sys$} ? $1 : () } sort glob("$dir/$sc-node*.sys")) {
        open my $pf, '<', "$dir/$sc-$node.pids" or die "$dir/$sc-$node.pids: $!\n";
        my ($parent) = split ' ', scalar <$pf>;
        my (%tids, %count);
        my @lines = `perf script -i $dir/$sc-$node.sys -F pid,tid,trace 2>/dev/null`;
        for (@lines) {
            my ($pid, $tid, $nr) = m{^\s*(\d+)/(\d+)\s+NR (\d+)} or next;
            $tids{$pid}{$tid} = 1;
        }
        for (@lines) {
            my ($pid, $tid, $nr) = m{^\s*(\d+)/(\d+)\s+NR (\d+)} or next;
            my $role = $pid == $parent ? 'parent' : keys %{ $tids{$pid} } == 1 ? 'engine' : 'children';
            $count{$role}{ $name{$nr} // "nr$nr" }++;
        }
        for my $role (sort keys %count) {
            my $all = 0;
            $all += $_ for values %{ $count{$role} };
            my @top = sort { $count{$role}{$b} <=> $count{$role}{$a} } keys %{ $count{$role} };
            printf "  %-6s %-8s %6.2f:", $node, $role, $all / $reqs;
            printf " %s %.2f", $_, $count{$role}{$_} / $reqs
                for grep { $count{$role}{$_} / $reqs >= 0.01 } @top;
            print "\n";
        }
    }
}
