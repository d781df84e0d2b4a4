
# Copyright (c) 2026, pgoutput_stream developers

# Delivery across failures, with the "log" target (at-least-once):
#  - the worker is killed with SIGKILL during a workload, which makes the
#    postmaster crash-restart: the worker comes back and no committed row
#    is lost;
#  - a clean restart resumes where the stream was confirmed, without
#    repeating what was already delivered;
#  - an immediate shutdown (no shutdown checkpoint) loses nothing either;
#  - there is never more than one worker per stream.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;

my $node = pgs_new_node('main', conf => "restart_after_crash = on\n");
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE PUBLICATION p FOR TABLE t;
SELECT pgoutput_stream.create_stream('s', 'p');
});
ok( pgs_wait_for_status(
		$node, 'postgres', 's', "state = 'streaming' AND pid IS NOT NULL"),
	'stream s is streaming');

# Largest number of workers of s seen at once, sampled with every
# transaction of the workload
my $max_workers = 0;

# Insert the ids $first..$last in one transaction; after a crash, wait for
# the server and run it again (it is idempotent, and it may have committed
# before the connection was lost).
sub insert_range
{
	my ($first, $last) = @_;
	my $sql = qq{
INSERT INTO t SELECT g, 'row ' || g FROM generate_series($first, $last) g
  ON CONFLICT DO NOTHING;
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'pgoutput_stream worker'
   AND application_name = 'pgoutput_stream s';
};
	for my $attempt (1 .. 5)
	{
		my ($stdout, $stderr) = ('', '');
		my $ret = $node->psql('postgres', $sql,
			stdout => \$stdout, stderr => \$stderr);
		if ($ret == 0)
		{
			$max_workers = $stdout if $stdout > $max_workers;
			return;
		}
		note("insert of $first..$last failed (attempt $attempt): $stderr");
		$node->poll_query_until('postgres', 'SELECT true')
		  or die 'the server did not come back';
	}
	die "could not insert $first..$last";
}

# The end LSN of the last transaction logged by s since $offset
sub last_end_lsn
{
	my ($offset) = @_;
	my @commits = pgs_events($node, $offset, stream => 's', kind => 'commit');
	return pgs_json($commits[-1])->{Commit}{end_lsn};
}

# The pids other than @old that logged events of s since $offset
sub new_pids
{
	my ($offset, @old) = @_;
	my %old = map { $_ => 1 } @old;
	return grep { !$old{$_} } pgs_worker_pids($node, $offset, 's');
}

# ---------------------------------------------------------------------
# SIGKILL of the worker during a workload of 2,000 rows in 200
# transactions
# ---------------------------------------------------------------------
my $offset0  = pgs_log_offset($node);
my $old_pid  = pgs_status($node, 'postgres', 's')->{pid};
my $crash_offset;
for my $tx (0 .. 199)
{
	insert_range($tx * 10 + 1, $tx * 10 + 10);
	if ($tx == 79)
	{
		$crash_offset = pgs_log_offset($node);
		ok(kill('KILL', $old_pid), "worker $old_pid killed with SIGKILL");
	}
}

ok($node->log_contains(qr/terminated by signal 9: Killed/, $crash_offset),
	'the postmaster saw the worker die');
ok( pgs_wait_for_status(
		$node, 'postgres', 's',
		"state = 'streaming' AND pid IS NOT NULL AND pid <> $old_pid"),
	'after the crash the worker runs again with a new pid');
my $pid1 = pgs_status($node, 'postgres', 's')->{pid};

is($node->safe_psql('postgres', 'SELECT count(*), min(id), max(id) FROM t'),
	'2000|1|2000', 'every row of the workload is committed');
ok(pgs_wait_for_ids($node, $offset0, 's', 't', [ 1 .. 2000 ]),
	'every committed row is logged at least once');
my $counts = pgs_insert_id_counts($node, $offset0, 's', 't');
note('rows logged more than once after the crash: '
	  . scalar(grep { $counts->{$_} > 1 } keys %$counts));

is(pgs_worker_count($node, 's'), 1, 'one worker for s after the crash');
is_deeply([ new_pids($crash_offset, $old_pid) ], [$pid1],
	'after the crash, one process logs the events of s');
cmp_ok($max_workers, '<=', 1, 'never more than one worker seen during the workload');

# ---------------------------------------------------------------------
# Clean restart: delivery resumes at the confirmed position
# ---------------------------------------------------------------------
my $end_lsn = last_end_lsn($offset0);
ok(pgs_wait_for_status($node, 'postgres', 's', "confirmed_lsn >= '$end_lsn'"),
	'the stream is confirmed up to the last transaction before the restart');

my $offset1 = pgs_log_offset($node);
$node->restart;
ok( pgs_wait_for_status(
		$node, 'postgres', 's', "state = 'streaming' AND pid IS NOT NULL AND pid <> $pid1"),
	'after a restart the stream is streaming again');
my $pid2 = pgs_status($node, 'postgres', 's')->{pid};
for my $tx (0 .. 9)
{
	insert_range(2001 + $tx * 10, 2010 + $tx * 10);
}
ok(pgs_wait_for_ids($node, $offset1, 's', 't', [ 2001 .. 2100 ]),
	'rows inserted after the restart are logged');
$counts = pgs_insert_id_counts($node, $offset1, 's', 't');
is(scalar(grep { $_ <= 2000 } keys %$counts), 0,
	'rows confirmed before a clean restart are not logged again');
is(scalar(grep { $counts->{$_} != 1 } 2001 .. 2100), 0,
	'rows inserted after the restart are logged once');
is(pgs_worker_count($node, 's'), 1, 'one worker for s after the restart');
is_deeply([ new_pids($offset1) ], [$pid2],
	'after the restart, one process logs the events of s');

# ---------------------------------------------------------------------
# Immediate shutdown (crash recovery at the next start) loses nothing
# ---------------------------------------------------------------------
my $offset2 = pgs_log_offset($node);
for my $tx (0 .. 19)
{
	insert_range(2101 + $tx * 10, 2110 + $tx * 10);
}
$node->stop('immediate');
my $offset3 = pgs_log_offset($node);
$node->start;
ok( pgs_wait_for_status(
		$node, 'postgres', 's', "state = 'streaming' AND pid IS NOT NULL"),
	'after an immediate shutdown the stream is streaming again');
my $pid3 = pgs_status($node, 'postgres', 's')->{pid};
insert_range(2301, 2310);
is($node->safe_psql('postgres', 'SELECT count(*), min(id), max(id) FROM t'),
	'2310|1|2310', 'every row is committed');
ok(pgs_wait_for_ids($node, $offset2, 's', 't', [ 2101 .. 2310 ]),
	'rows inserted before the immediate shutdown and after it are logged');
ok(pgs_wait_for_ids($node, $offset0, 's', 't', [ 1 .. 2310 ], 10),
	'no committed row was ever lost');
is(pgs_worker_count($node, 's'), 1, 'one worker for s after the immediate shutdown');
is_deeply([ new_pids($offset3) ], [$pid3],
	'after the immediate shutdown, one process logs the events of s');
cmp_ok($max_workers, '<=', 1, 'never more than one worker seen');

# ---------------------------------------------------------------------
# The whole log as a consumer sees it: transactions are whole (a worker
# killed in the middle of one leaves it unfinished, and the next worker
# delivers it again whole), commit order per worker, re-deliveries are
# identical, and dropping every transaction whose end_lsn is not above the
# highest one processed gives every row exactly once.
# ---------------------------------------------------------------------
{
	my (@complete, $open, $unfinished, $malformed);
	$unfinished = $malformed = 0;
	foreach my $ev (pgs_events($node, $offset0, stream => 's'))
	{
		next if $ev->{kind} eq 'relation';
		if ($open && $open->{pid} != $ev->{pid})
		{
			# the previous worker died in the middle of a transaction
			$unfinished++;
			undef $open;
		}
		if ($ev->{kind} eq 'begin')
		{
			$malformed++ if $open;
			my $b = pgs_json($ev)->{Begin};
			$open = { pid => $ev->{pid}, xid => $b->{xid}, lsn => $b->{lsn}, ids => [] };
		}
		elsif ($ev->{kind} eq 'insert')
		{
			if (!$open) { $malformed++; next; }
			push @{ $open->{ids} }, pgs_json($ev)->{Insert}{new_tuple}{id};
		}
		elsif ($ev->{kind} eq 'commit')
		{
			if (!$open) { $malformed++; next; }
			my $c = pgs_json($ev)->{Commit};
			$malformed++ if $c->{xid} != $open->{xid} || $c->{lsn} ne $open->{lsn};
			$open->{end_lsn} = $c->{end_lsn};
			push @complete, $open;
			undef $open;
		}
		else
		{
			$malformed++;
		}
	}
	is($malformed, 0, 'every transaction in the log is begin, changes, commit with one xid');
	cmp_ok($unfinished, '<=', 2,
		'unfinished transactions only where a worker was killed (SIGKILL, immediate shutdown)');
	is($open, undef, 'the last transaction is finished');

	my $lsn = sub { my ($hi, $lo) = split m{/}, $_[0]; hex($hi) * 2**32 + hex($lo) };

	# commit order within each worker's run
	my (%last_end, $order_ok);
	$order_ok = 1;
	foreach my $tx (@complete)
	{
		my $end = $lsn->($tx->{end_lsn});
		$order_ok = 0 if defined $last_end{ $tx->{pid} } && $end <= $last_end{ $tx->{pid} };
		$last_end{ $tx->{pid} } = $end;
	}
	ok($order_ok, 'end_lsn grows strictly within each worker');

	# re-deliveries are the same transaction
	my (%seen, $same);
	$same = 1;
	my $redelivered = 0;
	foreach my $tx (@complete)
	{
		my $sig = join(',', $tx->{xid}, $tx->{lsn}, @{ $tx->{ids} });
		if (exists $seen{ $tx->{end_lsn} })
		{
			$redelivered++;
			$same = 0 if $seen{ $tx->{end_lsn} } ne $sig;
		}
		$seen{ $tx->{end_lsn} } = $sig;
	}
	ok($same, 'a re-delivered transaction is identical to its first delivery');
	note("$redelivered transactions delivered more than once");

	# the consumer's de-duplication
	my ($highest, %applied) = (-1);
	foreach my $tx (@complete)
	{
		my $end = $lsn->($tx->{end_lsn});
		next if $end <= $highest;
		$highest = $end;
		$applied{$_}++ foreach @{ $tx->{ids} };
	}
	is_deeply(
		[ sort { $a <=> $b } keys %applied ],
		[ 1 .. 2310 ],
		'de-duplicated by end_lsn, the log has every row');
	is(scalar(grep { $_ != 1 } values %applied), 0,
		'de-duplicated by end_lsn, every row once');
}

# No other worker process lingers for the stream (e.g. a second worker
# registered for it that waits for the first one to go away)
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgoutput_stream worker'"
	),
	'exactly one pgoutput_stream worker process');

$node->stop;

done_testing();
