
# Copyright (c) 2026, pgoutput_stream developers

# Streams in two databases, with the same stream name in both: each worker
# serves its own database, stream_status shows only the streams of the
# current database, and the launcher starts both again after a restart.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;

my $node = pgs_new_node('main');
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE db2');
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE ta (id int PRIMARY KEY, v text);
CREATE PUBLICATION p FOR TABLE ta;
});
$node->safe_psql(
	'db2', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE tb (id int PRIMARY KEY, v text);
CREATE PUBLICATION p FOR TABLE tb;
});

$node->safe_psql('postgres', "SELECT pgoutput_stream.create_stream('s', 'p')");

# Replication slots are global: the default slot name pgs_s is taken by
# the stream of the first database, and create_stream says so instead of
# sharing it.
my ($ret, $stdout, $stderr) =
  $node->psql('db2', "SELECT pgoutput_stream.create_stream('s', 'p')");
isnt($ret, 0, 'the default slot of a same-named stream in another database is refused');
like($stderr, qr/replication slot "pgs_s" already exists/, 'the error names the slot');
is($node->safe_psql('db2', 'SELECT count(*) FROM pgoutput_stream.streams'),
	0, 'no row is left in db2');

$node->safe_psql('db2',
	"SELECT pgoutput_stream.create_stream('s', 'p', slot => 'pgs_s_db2')");

foreach my $db ('postgres', 'db2')
{
	ok( pgs_wait_for_status(
			$node, $db, 's', "state = 'streaming' AND pid IS NOT NULL"),
		"stream s of $db is streaming");
}

# stream_status: only the current database's stream, tagged with it
sub check_status
{
	my ($when) = @_;
	my %pid;
	foreach my $db ('postgres', 'db2')
	{
		is( $node->safe_psql(
				$db,
				'SELECT name, database, publication FROM pgoutput_stream.stream_status'
			),
			"s|$db|p",
			"stream_status of $db shows only its own stream ($when)");
		$pid{$db} = pgs_status($node, $db, 's')->{pid};
		is( $node->safe_psql(
				'postgres',
				"SELECT datname, application_name FROM pg_stat_activity WHERE pid = $pid{$db}"
			),
			"$db|pgoutput_stream s",
			"the worker of $db runs in $db ($when)");
		is(pgs_worker_count($node, 's', $db), 1, "one worker for s in $db ($when)");
	}
	isnt($pid{postgres}, $pid{db2}, "one worker per database ($when)");
	return \%pid;
}

# Each database's rows reach the log through its own worker, and only
# through it.
sub check_events
{
	my ($offset, $pid, $ids, $when) = @_;
	my $ids_b = [ map { $_ + 1000 } @$ids ];

	$node->safe_psql('postgres',
		"INSERT INTO ta SELECT g, 'a' || g FROM generate_series($ids->[0], $ids->[-1]) g");
	$node->safe_psql('db2',
		"INSERT INTO tb SELECT g, 'b' || g FROM generate_series($ids_b->[0], $ids_b->[-1]) g");
	ok(pgs_wait_for_ids($node, $offset, 's', 'ta', $ids),
		"rows of postgres.ta are logged ($when)");
	ok(pgs_wait_for_ids($node, $offset, 's', 'tb', $ids_b),
		"rows of db2.tb are logged ($when)");

	my @ta = pgs_events($node, $offset, stream => 's', table => 'ta');
	my @tb = pgs_events($node, $offset, stream => 's', table => 'tb');
	is_deeply([ sort { $a <=> $b } keys %{ { map { $_->{pid} => 1 } @ta } } ],
		[ $pid->{postgres} ], "events of ta come from the worker of postgres ($when)");
	is_deeply([ sort { $a <=> $b } keys %{ { map { $_->{pid} => 1 } @tb } } ],
		[ $pid->{db2} ], "events of tb come from the worker of db2 ($when)");

	my $ca = pgs_insert_id_counts($node, $offset, 's', 'ta');
	my $cb = pgs_insert_id_counts($node, $offset, 's', 'tb');
	is_deeply([ sort { $a <=> $b } keys %$ca ], $ids,   "exactly the rows of ta ($when)");
	is_deeply([ sort { $a <=> $b } keys %$cb ], $ids_b, "exactly the rows of tb ($when)");
	is(scalar(grep { $_ != 1 } values %$ca) + scalar(grep { $_ != 1 } values %$cb),
		0, "each row logged once ($when)");

	# each transaction is wrapped by its own worker's begin/commit
	foreach my $db ('postgres', 'db2')
	{
		my @kinds = map { $_->{kind} }
		  grep { $_->{pid} == $pid->{$db} && $_->{kind} ne 'relation' }
		  pgs_events($node, $offset, stream => 's');
		is_deeply(\@kinds, [ 'begin', ('insert') x scalar(@$ids), 'commit' ],
			"the worker of $db logs one transaction ($when)");
	}
}

my $pid = check_status('after create');
my $offset = pgs_log_offset($node);
check_events($offset, $pid, [ 1 .. 5 ], 'after create');

# Both streams confirm what they logged (so that a clean restart does not
# deliver it again)
foreach my $db ('postgres', 'db2')
{
	my @commits = grep { $_->{pid} == $pid->{$db} }
	  pgs_events($node, $offset, stream => 's', kind => 'commit');
	my $end_lsn = pgs_json($commits[-1])->{Commit}{end_lsn};
	ok(pgs_wait_for_status($node, $db, 's', "confirmed_lsn >= '$end_lsn'"),
		"stream s of $db is confirmed up to its last transaction");
}

# After a restart the launcher starts the streams of both databases
$offset = pgs_log_offset($node);
$node->restart;
foreach my $db ('postgres', 'db2')
{
	ok( pgs_wait_for_status(
			$node, $db, 's',
			"state = 'streaming' AND pid IS NOT NULL AND pid <> $pid->{$db}"),
		"stream s of $db is streaming again after the restart");
}
$pid = check_status('after restart');
check_events($offset, $pid, [ 6 .. 10 ], 'after restart');

# Stopping the stream of one database leaves the other one running
$node->safe_psql('db2', "SELECT pgoutput_stream.stop_stream('s')");
ok(pgs_wait_for_status($node, 'db2', 's', "state = 'stopped' AND pid IS NULL"),
	'stream s of db2 is stopped');
is(pgs_status($node, 'postgres', 's')->{state}, 'streaming',
	'stream s of postgres still streams');
is(pgs_status($node, 'postgres', 's')->{pid}, $pid->{postgres},
	'with the same worker');
$offset = pgs_log_offset($node);
$node->safe_psql('postgres', "INSERT INTO ta VALUES (11, 'a11')");
ok(pgs_wait_for_ids($node, $offset, 's', 'ta', [11]),
	'the stream of postgres still delivers');

$node->stop;

done_testing();
