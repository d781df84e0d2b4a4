# Copyright (c) 2026, pgoutput_stream developers
#
# Resource limits: no free replication slot, no free background worker
# slot, pgoutput_stream.max_streams reached.  Each gets a clear error with
# an errcode, and nothing is left half-created.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('limits');
$node->init(allows_streaming => 'logical');
# launcher (1) + scanner (1, transient) + one stream worker
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pgoutput_stream'
max_replication_slots = 3
max_worker_processes = 3
pgoutput_stream.max_streams = 2
pgoutput_stream.restart_delay = 1
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY);
CREATE PUBLICATION p FOR TABLE t;
});

sub leftovers
{
	return $node->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM pgoutput_stream.streams) || '/' ||
		       (SELECT count(*) FROM pg_replication_slots)});
}

# Wait until the launcher's scanner is gone, so that worker slots are
# counted deterministically.
$node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM pg_stat_activity
	WHERE backend_type = 'pgoutput_stream scanner'}) or die "scanner still running";

# The first stream takes the last free background worker slot.
$node->safe_psql('postgres', q{SELECT pgoutput_stream.create_stream('one', 'p')});
$node->poll_query_until('postgres', q{
	SELECT state = 'streaming' FROM pgoutput_stream.stream_status WHERE name = 'one'})
  or die "stream one did not start";
is(leftovers(), '1/1', 'one stream, one slot');

# No free background worker slot: the error names the fix; the slot
# created for the stream is dropped again and no row remains.
my ($rc, $stdout, $stderr) = $node->psql('postgres', q{
	\set VERBOSITY verbose
	SELECT pgoutput_stream.create_stream('two', 'p')});
isnt($rc, 0, 'create_stream fails without a free worker slot');
like($stderr, qr/53400: could not start the worker of stream "two"/, 'error names the stream, SQLSTATE 53400');
like($stderr, qr/max_worker_processes/, 'hint names max_worker_processes');
is(leftovers(), '1/1', 'no row and no slot left behind');

# A stream created stopped does not need a worker.
$node->safe_psql('postgres', q{SELECT pgoutput_stream.create_stream('two', 'p', start => false)});
is(leftovers(), '2/2', 'stopped stream created');

# No free replication slot (the third slot is left for peek, use it up).
$node->safe_psql('postgres', q{SELECT pg_create_logical_replication_slot('other', 'pgoutput')});
($rc, $stdout, $stderr) = $node->psql('postgres', q{
	\set VERBOSITY verbose
	SELECT pgoutput_stream.create_stream('three', 'p', start => false)});
isnt($rc, 0, 'create_stream fails without a free replication slot');
like($stderr, qr/53400: all replication slots are in use/, 'server error, SQLSTATE 53400');
is(leftovers(), '2/3', 'no row left behind');

# peek needs a free replication slot too
($rc, $stdout, $stderr) = $node->psql('postgres', q{SELECT * FROM pgoutput_stream.peek('two', 1)});
like($stderr, qr/all replication slots are in use/, 'peek reports the missing slot');
$node->safe_psql('postgres', q{SELECT pg_drop_replication_slot('other')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgoutput_stream.peek('two', 1)}),
	'0', 'peek works again once a slot is free');

# max_streams: the registry has room for two running streams; stop 'one'
# and run 'two', then a third running stream is refused.
$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('one')});
$node->append_conf('postgresql.conf', "max_worker_processes = 8\nmax_replication_slots = 8\n");
$node->restart;
$node->safe_psql('postgres', q{
	SELECT pgoutput_stream.start_stream('two');
	SELECT pgoutput_stream.create_stream('three', 'p');});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 2 FROM pgoutput_stream.stream_status WHERE state = 'streaming'})
  or die "streams did not start";
($rc, $stdout, $stderr) = $node->psql('postgres', q{
	\set VERBOSITY verbose
	SELECT pgoutput_stream.create_stream('four', 'p')});
like($stderr, qr/53400: could not start stream "four": too many streams are running/,
	'max_streams reached: clear error');
like($stderr, qr/pgoutput_stream\.max_streams/, 'hint names the setting');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgoutput_stream.streams WHERE name = 'four'}),
	'0', 'no row left behind');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgs_four'}),
	'0', 'no slot left behind');

$node->stop;
done_testing();
