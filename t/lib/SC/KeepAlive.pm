package SC::KeepAlive;
# A kept-alive HTTP/1.1 connection to a member, for tests and benchmarks that
# send many requests quickly (tens of thousands of sessions in seconds):
#   my $s = SC::KeepAlive::connect($c, 'node1');
#   my ($status, $headers, $body) = SC::KeepAlive::get($s, '/app?auto', $id);
#   (or print a request of your own on $s, then SC::KeepAlive::read_response($s))
# get() returns (0) when the connection failed or closed; headers are lower
# cased, repeated ones joined with ", ".
use strict;
use warnings;
use IO::Socket::INET;

sub connect {
    my ($c, $n) = @_;
    my $m = $c->member($n);
    my $s = IO::Socket::INET->new(PeerAddr => $m->{addr}, PeerPort => $m->{http_port},
                                  Proto => 'tcp', Timeout => 10);
    die "connect to $n: $!\n" unless $s;
    return $s;
}

sub get {
    my ($sock, $path, $cookie) = @_;
    print {$sock} "GET $path HTTP/1.1\r\nHost: localhost\r\n"
        . ($cookie ? "Cookie: JSESSIONID=$cookie\r\n" : '') . "\r\n" or return (0);
    return read_response($sock);
}

# Reads one response from $sock: ($status, \%headers, $body), or (0) when the
# connection failed or closed first.
sub read_response {
    my ($sock) = @_;
    local $/ = "\r\n";
    my $line = <$sock> // return (0);
    my ($status) = $line =~ m{^HTTP/1\.\d (\d+)} or return (0);
    my %h;
    while (defined(my $l = <$sock>)) {
        last if $l eq "\r\n";
        $l =~ s/\r\n$//;
        my ($k, $v) = split /:\s*/, $l, 2;
        $h{lc $k} = defined $h{lc $k} ? "$h{lc $k}, $v" : $v;
    }
    my $body = '';
    if (defined $h{'content-length'}) {
        my $left = $h{'content-length'};
        while ($left > 0) {
            my $got = read($sock, my $buf, $left) or last;
            $body .= $buf;
            $left -= $got;
        }
    }
    elsif (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        while (defined(my $sz = <$sock>)) {
            $sz =~ s/\r\n$//;
            my $n = hex $sz;
            if (!$n) { my $end = <$sock>; last }
            read($sock, my $buf, $n);
            $body .= $buf;
            my $crlf = <$sock>;
        }
    }
    return ($status, \%h, $body);
}

# The JSESSIONID a Set-Cookie header gives, or undef.
sub cookie_of { ($_[0]{'set-cookie'} // '') =~ /JSESSIONID=([^;,\s]+)/ ? $1 : undef }

1;
