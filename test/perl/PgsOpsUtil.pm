
# Copyright (c) 2026, pgoutput_stream developers

=pod

=head1 NAME

PgsOpsUtil - helpers of the operations TAP test of pgoutput_stream:
stream_status rows and the heartbeats of a JetStream dump (server log line
counts are PgsTestUtil's pgs_count_log_lines, the checks of a JetStream
stream with heartbeats PgsNatsUtil's pgs_js_problems(..., heartbeats => 1))

=head1 SYNOPSIS

  use FindBin;
  use lib "$FindBin::RealBin/../perl";
  use PgsOpsUtil;

  my $st = pgs_ops_status($node, 'postgres', 's1');
  is($st->{state}, 'streaming');
  is($st->{target_counters}{log}, $st->{events});

  my @hb = pgs_ops_heartbeats($dump->{msgs});

=cut

package PgsOpsUtil;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use JSON::PP;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(
  pgs_ops_status
  pgs_ops_heartbeats
);

my $json = JSON::PP->new->utf8->allow_bignum;

=pod

=over

=item pgs_ops_status($node, $dbname, $stream)

Every column of the stream_status row of $stream, as a hash reference
decoded from row_to_json (SQL NULL as undef, booleans as JSON::PP booleans,
target_counters as a hash reference, timestamps and intervals as text), or
undef if the stream has no row.

=cut

sub pgs_ops_status
{
	my ($node, $dbname, $stream) = @_;
	(my $quoted = $stream) =~ s/'/''/g;
	my $out = $node->safe_psql($dbname,
		"SELECT row_to_json(s) FROM pgoutput_stream.stream_status s WHERE name = '$quoted'");
	return undef if $out eq '';
	return $json->decode($out);
}

=pod

=item pgs_ops_heartbeats($msgs)

The heartbeat messages among the messages of a JetStream dump (PgsNatsUtil's
pgs_js_dump): those whose Pg-Operation header is "heartbeat".

=cut

sub pgs_ops_heartbeats
{
	my ($msgs) = @_;
	return grep { ($_->{headers}{'Pg-Operation'} // '') eq 'heartbeat' } @$msgs;
}

=pod

=back

=cut

1;
