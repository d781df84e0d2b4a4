
# Copyright (c) 2026, pgoutput_stream developers

=pod

=head1 NAME

PgsTestUtil - helpers shared by the TAP tests of pgoutput_stream

=head1 SYNOPSIS

  use FindBin;
  use lib "$FindBin::RealBin/../perl";
  use PgsTestUtil;

  my $node = pgs_new_node('main');
  $node->start;
  my $offset = pgs_log_offset($node);
  ...
  pgs_wait_for_ids($node, $offset, 's1', 't', [1 .. 100]);

=head1 DESCRIPTION

The "log" target writes every event to the server log as one LOG line

  stream "NAME" event SUBJECT: PAYLOAD

These helpers read those lines back (from a byte offset of the node's log
file, which survives restarts because pg_ctl appends to it), and wait for
them with a deadline instead of sleeping.

=cut

package PgsTestUtil;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(
  pgs_new_node
  pgs_log_offset
  pgs_events
  pgs_json
  pgs_insert_id_counts
  pgs_wait_for_ids
  pgs_wait_until
  pgs_log_matches
  pgs_count_log_lines
  pgs_wait_for_log
  pgs_lsn_num
  pgs_status
  pgs_wait_for_status
  pgs_worker_count
  pgs_worker_pids
  pgs_stream_state
  pgs_wait_delivered_or_error
  pgs_status_texts
);

# Seconds any wait may take before the test gives up
our $TIMEOUT = $PostgreSQL::Test::Utils::timeout_default;

=pod

=over

=item pgs_new_node($name, %params)

A new, initialised (not started) node.  Parameters:

  preload   => 0/1    put pgoutput_stream in shared_preload_libraries (1)
  wal_level => 'logical' (default) or 'replica'
  conf      => extra postgresql.conf lines

The databases are UTF8 with the C locale whatever the environment, the
worker restarts after 1 s, and there are enough worker processes for the
launcher, its scanners and several streams.

=cut

sub pgs_new_node
{
	my ($name, %params) = @_;
	my $preload   = $params{preload} // 1;
	my $wal_level = $params{wal_level} // 'logical';

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(
		allows_streaming => ($wal_level eq 'logical' ? 'logical' : 1),
		extra            => [ '--encoding=UTF8', '--locale=C' ]);
	my $conf = "max_worker_processes = 16\n";
	$conf .= "shared_preload_libraries = 'pgoutput_stream'\n" if $preload;
	$conf .= "pgoutput_stream.restart_delay = 1\n" if $preload;
	$conf .= $params{conf} if defined $params{conf};
	$node->append_conf('postgresql.conf', $conf);
	return $node;
}

=pod

=item pgs_log_offset($node)

The current size of the node's log file: pass it to the functions below to
look only at what is logged from now on.

=cut

sub pgs_log_offset
{
	my ($node) = @_;
	return -s $node->logfile // 0;
}

# Parsed events per "logfile\0offset": the read position in the file and
# the events read so far, so that polling reads only what is new.
my %cache;

sub _read_events
{
	my ($node, $offset) = @_;
	my $file = $node->logfile;
	my $c = $cache{"$file\0$offset"} //= { pos => $offset, events => [] };

	open my $fh, '<', $file or croak "could not open $file: $!";
	binmode $fh;
	seek($fh, $c->{pos}, 0) or croak "could not seek in $file: $!";
	local $/ = "\n";
	while (my $line = <$fh>)
	{
		# a line still being written is read again next time
		last unless $line =~ /\n\z/;
		$c->{pos} += length($line);
		chomp $line;

		# log_line_prefix is '%m [%p] %q%a '
		next
		  unless $line =~
		  /^\S+ \S+ \S+ \[(\d+)\] .*?LOG:  stream "([^"]+)" event (\S+): (.*)\z/;
		my %ev = (pid => $1, stream => $2, subject => $3, payload => $4);
		my @tokens = split /\./, $ev{subject};
		if ($ev{subject} =~ /\.transactions\.(begin|commit)\.event\z/)
		{
			$ev{kind} = $1;
		}
		elsif (@tokens >= 4)
		{
			$ev{kind}   = $tokens[-1];
			$ev{table}  = $tokens[-2];
			$ev{schema} = $tokens[-3];
		}
		else
		{
			$ev{kind} = 'other';
		}
		push @{ $c->{events} }, \%ev;
	}
	close $fh;
	return $c->{events};
}

=pod

=item pgs_events($node, $offset, %filter)

The events logged since $offset, oldest first, as hash references with the
keys pid (of the process that logged it), stream, subject, payload (the raw
JSON text), kind (begin, commit, insert, update, delete, relation, ...) and,
for table events, schema and table.  %filter keeps only the events whose
keys have the given values, e.g. stream => 's1', kind => 'insert'.

=cut

sub pgs_events
{
	my ($node, $offset, %filter) = @_;
	my $events = _read_events($node, $offset);
	my @result;

  EVENT:
	foreach my $ev (@$events)
	{
		foreach my $k (keys %filter)
		{
			next EVENT unless defined $ev->{$k} && $ev->{$k} eq $filter{$k};
		}
		push @result, $ev;
	}
	return @result;
}

=pod

=item pgs_json($event_or_text)

The decoded payload of an event (or a JSON text), numbers too big for Perl
kept exact as Math::BigInt/BigFloat.

=cut

my $json = JSON::PP->new->utf8->allow_bignum;

sub pgs_json
{
	my ($x) = @_;
	my $text = ref($x) ? $x->{payload} : $x;
	$x->{json} //= $json->decode($text) if ref($x);
	return ref($x) ? $x->{json} : $json->decode($text);
}

=pod

=item pgs_insert_id_counts($node, $offset, $stream, $table, $column)

A hash reference: value of column $column (default "id") of the new tuple
=> number of insert events of $table logged by $stream since $offset.

=cut

sub pgs_insert_id_counts
{
	my ($node, $offset, $stream, $table, $column) = @_;
	$column //= 'id';
	my %count;

	foreach my $ev (pgs_events($node, $offset, stream => $stream,
		kind => 'insert', table => $table))
	{
		# fast path for the usual first column; JSON otherwise
		my $id;
		if ($ev->{payload} =~ /"new_tuple":\{"\Q$column\E":"?(-?\d+)"?[,}]/)
		{
			$id = $1;
		}
		else
		{
			$id = pgs_json($ev)->{Insert}{new_tuple}{$column};
		}
		$count{$id}++ if defined $id;
	}
	return \%count;
}

=pod

=item pgs_wait_until($code, $description, $timeout)

Call $code every 100 ms until it returns true, at most $timeout seconds
(default: the TAP timeout).  Returns true if it did.

=cut

sub pgs_wait_until
{
	my ($code, $description, $timeout) = @_;
	my $deadline = time() + ($timeout // $TIMEOUT);

	while (1)
	{
		return 1 if $code->();
		if (time() > $deadline)
		{
			diag("timed out waiting for: $description");
			return 0;
		}
		usleep(100_000);
	}
}

=pod

=item pgs_log_matches($node, $offset, $regex)

The lines of the server log of $node after byte $offset that match $regex
(applied to each line): a list with, for each line, the array of the
regex's captures.

=cut

sub pgs_log_matches
{
	my ($node, $offset, $re) = @_;
	my @found;
	foreach my $line (split /\n/, slurp_file($node->logfile, $offset))
	{
		push @found, [ @{^CAPTURE} ] if $line =~ $re;
	}
	return @found;
}

=pod

=item pgs_count_log_lines($node, $offset, $regex)

How many lines of the node's server log after byte $offset match $regex.

=cut

sub pgs_count_log_lines
{
	my ($node, $offset, $re) = @_;
	return scalar(my @found = pgs_log_matches($node, $offset, $re));
}

=pod

=item pgs_wait_for_log($node, $offset, $regex, $min, $timeout)

Wait until the server log of $node has at least $min (default 1) lines
matching $regex (applied to each line) after $offset.  Returns the list of
matches (each the array of the regex's captures), empty if it timed out.

=cut

sub pgs_wait_for_log
{
	my ($node, $offset, $re, $min, $timeout) = @_;
	$min //= 1;
	my @found;
	pgs_wait_until(
		sub {
			@found = pgs_log_matches($node, $offset, $re);
			return @found >= $min;
		},
		"$min log lines matching $re",
		$timeout) or return ();
	return @found;
}

=pod

=item pgs_lsn_num($lsn)

LSN text form "X/Y" as a number.

=cut

sub pgs_lsn_num
{
	my ($lsn) = @_;
	my ($hi, $lo) = split m{/}, $lsn;
	return hex($hi) * 2**32 + hex($lo);
}

=pod

=item pgs_wait_for_ids($node, $offset, $stream, $table, \@ids, $timeout)

Wait until every id of @ids appears at least once in an insert event of
$table logged by $stream since $offset.  Returns true if they all did,
otherwise reports the missing ids and returns false.

=cut

sub pgs_wait_for_ids
{
	my ($node, $offset, $stream, $table, $ids, $timeout) = @_;
	my @missing;

	my $ok = pgs_wait_until(
		sub {
			my $count = pgs_insert_id_counts($node, $offset, $stream, $table);
			@missing = grep { !$count->{$_} } @$ids;
			return !@missing;
		},
		"insert events of table $table for " . scalar(@$ids) . " ids",
		$timeout);
	if (!$ok)
	{
		my @show = @missing > 20 ? (@missing[ 0 .. 19 ], '...') : @missing;
		diag(scalar(@missing) . " ids never logged: @show");
	}
	return $ok;
}

=pod

=item pgs_status($node, $dbname, $stream)

The row of pgoutput_stream.stream_status for $stream as a hash reference
(SQL NULL as undef), or undef if there is none.

=cut

my @status_columns = qw(name database state pid publication slot_name
  targets format confirmed_lsn decoded_lsn lag_bytes transactions events
  bytes last_error last_error_at started_at enabled);

sub pgs_status
{
	my ($node, $dbname, $stream) = @_;
	my $cols = join(', ',
		map { "coalesce(${_}::text, '<NULL>')" } @status_columns);
	my $out = $node->safe_psql($dbname,
		"SELECT $cols FROM pgoutput_stream.stream_status WHERE name = '$stream'",
		extra_params => [ '-F', "\x1f" ]);
	return undef if $out eq '';
	my @values = split /\x1f/, $out, -1;
	my %row;
	@row{@status_columns} = map { $_ eq '<NULL>' ? undef : $_ } @values;
	return \%row;
}

=pod

=item pgs_wait_for_status($node, $dbname, $stream, $condition)

Wait until the stream_status row of $stream satisfies the SQL boolean
$condition (e.g. "state = 'streaming' AND pid IS NOT NULL").

=cut

sub pgs_wait_for_status
{
	my ($node, $dbname, $stream, $condition) = @_;
	return $node->poll_query_until($dbname,
		"SELECT ($condition) FROM pgoutput_stream.stream_status WHERE name = '$stream'"
	);
}

=pod

=item pgs_worker_count($node, $stream, $dbname)

How many processes pg_stat_activity shows as the worker of $stream
(backend_type "pgoutput_stream worker", application_name
"pgoutput_stream $stream"), in database $dbname if given.

=cut

sub pgs_worker_count
{
	my ($node, $stream, $dbname) = @_;
	my $where = defined $dbname ? " AND datname = '$dbname'" : '';
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity
		 WHERE backend_type = 'pgoutput_stream worker'
		   AND application_name = 'pgoutput_stream $stream'$where");
}

=pod

=item pgs_worker_pids($node, $offset, $stream)

The distinct pids of the processes that logged events of $stream since
$offset, in the order they first appear.

=cut

sub pgs_worker_pids
{
	my ($node, $offset, $stream) = @_;
	my (%seen, @pids);
	foreach my $ev (pgs_events($node, $offset, stream => $stream))
	{
		push @pids, $ev->{pid} unless $seen{ $ev->{pid} }++;
	}
	return @pids;
}

=pod

=item pgs_stream_state($node, $dbname, $stream)

State, snapshot, pid and last_error of $stream in stream_status, as a hash
reference with '' for SQL NULL (also when there is no such stream).

=cut

sub pgs_stream_state
{
	my ($node, $dbname, $stream) = @_;
	my $out = $node->safe_psql($dbname,
		"SELECT state, coalesce(snapshot, ''), coalesce(pid::text, ''), coalesce(last_error, '')
		 FROM pgoutput_stream.stream_status WHERE name = '$stream'",
		extra_params => [ '-F', "\x1f" ]);
	my %r;
	@r{qw(state snapshot pid last_error)} = map { $_ // '' } split /\x1f/, $out, -1;
	return \%r;
}

=pod

=item pgs_wait_delivered_or_error($node, $dbname, $stream)

Wait until $stream confirmed everything written so far (the current WAL
position when called), or has a last_error; true if either happened in
time.

=cut

sub pgs_wait_delivered_or_error
{
	my ($node, $dbname, $stream) = @_;
	my $lsn = $node->safe_psql($dbname, 'SELECT pg_current_wal_lsn()');
	return pgs_wait_until(
		sub {
			$node->safe_psql($dbname, "SELECT confirmed_lsn >= '$lsn' OR last_error IS NOT NULL
				FROM pgoutput_stream.stream_status WHERE name = '$stream'") eq 't';
		},
		"$stream: delivered up to $lsn, or an error", 60);
}

=pod

=item pgs_status_texts($node, $monitor_role)

Every column of stream_status, worker_status() and pg_stat_activity, as
JSON texts, read in database postgres as the superuser and as
$monitor_role: what those who may look at the streams can see.

=cut

sub pgs_status_texts
{
	my ($node, $monitor_role) = @_;
	my @texts;
	foreach my $q (
		'SELECT row_to_json(s) FROM pgoutput_stream.stream_status s',
		'SELECT row_to_json(w) FROM pgoutput_stream.worker_status() w',
		'SELECT row_to_json(a) FROM pg_stat_activity a')
	{
		push @texts, $node->safe_psql('postgres', $q);
		push @texts, $node->safe_psql('postgres', $q, extra_params => [ '-U', $monitor_role ]);
	}
	return @texts;
}

=pod

=back

=cut

1;
