
# Copyright (c) 2026, pgoutput_stream developers

=pod

=head1 NAME

PgsOpsUtil - helpers of the operations TAP test of pgoutput_stream:
stream_status rows, server log line counts, and checks of a JetStream stream
that holds events and heartbeats

=head1 SYNOPSIS

  use FindBin;
  use lib "$FindBin::RealBin/../perl";
  use PgsOpsUtil;

  my $st = pgs_ops_status($node, 'postgres', 's1');
  is($st->{state}, 'streaming');
  is($st->{target_counters}{log}, $st->{events});

  my $n = pgs_ops_count_lines($node, $offset, qr/retains \d+ MB of WAL/);

  my @problems = pgs_ops_js_problems($dump->{msgs}, 'pgs_s1');

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
  pgs_ops_count_lines
  pgs_ops_lsn_num
  pgs_ops_js_problems
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

=item pgs_ops_count_lines($node, $offset, $regex)

How many lines of the node's server log after byte $offset match $regex.

=cut

sub pgs_ops_count_lines
{
	my ($node, $offset, $re) = @_;
	my $n = 0;
	foreach my $line (split /\n/, slurp_file($node->logfile, $offset))
	{
		$n++ if $line =~ $re;
	}
	return $n;
}

=pod

=item pgs_ops_lsn_num($lsn)

LSN text form "X/Y" as a number.

=cut

sub pgs_ops_lsn_num
{
	my ($lsn) = @_;
	my ($hi, $lo) = split m{/}, $lsn;
	return hex($hi) * 2**32 + hex($lo);
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

=item pgs_ops_js_problems($msgs, $slot)

Check the messages of a JetStream stream written by one stream (slot $slot)
as its only writer, with heartbeats among its events, and return a list of
problems (empty if none):

  - every message has a Nats-Msg-Id, and no id occurs twice;
  - every message but the first is chained to its predecessor
    (Nats-Expected-Last-Msg-Id), heartbeats included;
  - an event's id is "<slot>:<commit lsn>:<position>[:r<relid>]" with the
    commit LSN of its Pg-Commit-Lsn header, and events come in commit order;
  - transactions are whole: a Begin at position 0, then positions without
    gaps, ending with the Commit;
  - a heartbeat's subject ends in ".heartbeat", its id is
    "<slot>:<lsn>:hb<time>" with the LSN of its Pg-Lsn header, its payload is
    {"Heartbeat":{"confirmed_lsn": that LSN, "time": ...}}, and heartbeat
    LSNs do not go backwards (true without crash restarts).

=cut

sub pgs_ops_js_problems
{
	my ($msgs, $slot) = @_;
	my (@problems, %seen, %groups, @prev_key);
	my ($prev_id, $prev_hb);

	foreach my $m (@$msgs)
	{
		my $id  = $m->{id} // '';
		my $op  = $m->{headers}{'Pg-Operation'} // '';
		my $seq = $m->{seq};

		push @problems, "message $seq: Nats-Msg-Id $id seen before (message $seen{$id})"
		  if $seen{$id};
		$seen{$id} //= $seq;

		my $expected = $m->{headers}{'Nats-Expected-Last-Msg-Id'};
		if (defined $prev_id)
		{
			push @problems,
			  "message $seq: chained to " . ($expected // '(nothing)') . ", not $prev_id"
			  if ($expected // '') ne $prev_id;
		}
		elsif (defined $expected)
		{
			push @problems, "message $seq: the first message is chained to $expected";
		}
		$prev_id = $id;

		if ($op eq 'heartbeat')
		{
			my $lsn = $m->{headers}{'Pg-Lsn'} // '';
			push @problems, "message $seq: heartbeat on subject $m->{subject}"
			  unless $m->{subject} =~ /\.heartbeat\z/;
			push @problems, "message $seq: heartbeat id $id"
			  unless $id =~ m{^\Q$slot\E:\Q$lsn\E:hb\d+\z} && $lsn =~ m{^[0-9A-F]+/[0-9A-F]+\z};
			my $payload = eval { JSON::PP->new->decode($m->{data} // _data($m)) };
			if (!$payload || ref($payload->{Heartbeat}) ne 'HASH')
			{
				push @problems, "message $seq: heartbeat payload is not {\"Heartbeat\":{...}}";
			}
			else
			{
				my $hb = $payload->{Heartbeat};
				push @problems, "message $seq: heartbeat confirmed_lsn "
				  . ($hb->{confirmed_lsn} // 'missing') . " but Pg-Lsn $lsn"
				  if ($hb->{confirmed_lsn} // '') ne $lsn;
				push @problems, "message $seq: heartbeat time " . ($hb->{time} // 'missing')
				  unless ($hb->{time} // '') =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/;
			}
			if ($lsn =~ m{/})
			{
				push @problems, "message $seq: heartbeat LSN $lsn is before $prev_hb"
				  if defined $prev_hb && pgs_ops_lsn_num($lsn) < pgs_ops_lsn_num($prev_hb);
				$prev_hb = $lsn;
			}
			next;
		}

		unless ($id =~ m{^\Q$slot\E:([0-9A-F]+/[0-9A-F]+):(\d+)(?::r(\d+))?\z})
		{
			push @problems, "message $seq: bad Nats-Msg-Id '$id'";
			next;
		}
		my ($lsn, $pos, $relid) = ($1, $2, $3);
		push @problems, "message $seq: id $id but Pg-Commit-Lsn "
		  . ($m->{headers}{'Pg-Commit-Lsn'} // 'missing')
		  if ($m->{headers}{'Pg-Commit-Lsn'} // '') ne $lsn;

		# a relation event comes before the change it describes
		my @key = (pgs_ops_lsn_num($lsn), $pos, defined $relid ? 0 : 1);
		if (@prev_key)
		{
			my $cmp = ($key[0] <=> $prev_key[0]) || ($key[1] <=> $prev_key[1])
			  || ($key[2] <=> $prev_key[2]);
			$cmp = 1 if $cmp == 0 && defined $relid;
			push @problems, "message $seq: $id is not after the event before it" if $cmp <= 0;
		}
		@prev_key = @key;
		push @{ $groups{$lsn} }, [ $pos, $op ] unless defined $relid;
	}

	foreach my $lsn (sort keys %groups)
	{
		my @g = @{ $groups{$lsn} };
		if ($g[0][1] ne 'begin')
		{
			push @problems, "commit LSN $lsn: " . scalar(@g) . " messages without a Begin"
			  unless @g == 1 && $g[0][1] eq 'message';
			next;
		}
		for my $i (0 .. $#g)
		{
			if ($g[$i][0] != $i)
			{
				push @problems, "commit LSN $lsn: position $g[$i][0] where $i was expected";
				last;
			}
		}
		push @problems, "commit LSN $lsn: ends with $g[-1][1], not commit"
		  if $g[-1][1] ne 'commit';
	}
	return @problems;
}

# The payload text of a pgs_js_dump message (its data_raw is still
# JSON-escaped)
sub _data
{
	my ($m) = @_;
	$m->{data} //= JSON::PP->new->allow_nonref->decode(qq{"$m->{data_raw}"});
	return $m->{data};
}

=pod

=back

=cut

1;
