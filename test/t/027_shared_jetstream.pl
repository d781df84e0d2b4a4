
# Copyright (c) 2026, pgoutput_stream developers

# Streams of different databases or clusters that would write the same
# JetStream stream (the default options: subjects "postgres.>", JetStream
# stream "postgres_replication", the same nats-server) are refused, instead
# of publishing unchained into each other's stream:
#  (a) two databases of one cluster: create_stream and start_stream in the
#      second database refuse (42710) while the first database's stream
#      runs; a worker that got past that check (its transaction started
#      before the other stream ran) fails with a clear last_error when it
#      finds the other stream's claim in the shared registry;
#  (b) a second cluster with a stream of the same name (so the same slot
#      name) fails at connect: the last message under "postgres.>" carries
#      another Pg-System-Id; nothing of it is stored;
#  (c) with the stream option nats_shared_stream on every stream, all three
#      run unchained, as before, and every row is stored once;
#  (d) a JetStream stream that holds only another program's message, and
#      none under the prefix, is refused too; after a purge the stream
#      starts, chained.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;
use PgsNatsUtil;

my $nats = PgsNatsUtil->new('shared')->start;
my $node = pgs_nats_node('a', $nats);
$node->start;

foreach my $db ('db1', 'db2')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql(
		$db, q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE PUBLICATION p FOR TABLE t;
});
}

my $sysid_a = $node->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');

# The messages of JetStream stream postgres_replication
sub js_msgs
{
	return pgs_js_dump($nats->url, $_[0] // 'postgres_replication')->{msgs};
}

# The ids of the rows of table t inserted by the messages of slot $slot
# (and cluster $sysid, if given)
sub stored_ids
{
	my ($msgs, $slot, $sysid) = @_;
	return [
		map { (pgs_msg_payload($_))[1]->{Insert}{new_tuple}{id} }
		  grep {
			     ($_->{headers}{'Pg-Operation'} // '') eq 'insert'
			  && ($_->{id} // '') =~ /^\Q$slot\E:/
			  && (!defined $sysid || ($_->{headers}{'Pg-System-Id'} // '') eq $sysid)
		  } @$msgs
	];
}

# ---------------------------------------------------------------------
# (a) two databases of one cluster, default options
# ---------------------------------------------------------------------
$node->safe_psql('db1', "SELECT pgoutput_stream.create_stream('s1', 'p', targets => '{nats}')");
ok(pgs_wait_for_status($node, 'db1', 's1', "state = 'streaming'"), '(a) s1 of db1 streams');
$node->safe_psql('db1', "INSERT INTO t VALUES (101, 'db1')");
ok(pgs_wait_delivered($node, 'db1', 's1'), '(a) s1 delivered its first row');

my ($ret, $stdout, $stderr) = $node->psql('db2',
	"SELECT pgoutput_stream.create_stream('s2', 'p', targets => '{nats}')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, '(a) create_stream in db2 is refused while s1 of db1 runs');
like(
	$stderr,
	qr/ERROR:  42710: stream "s2" would share NATS subjects or JetStream stream with stream "s1" of database "db1"/,
	'(a) the error (42710) names the other stream and its database');
is($node->safe_psql('db2', 'SELECT count(*) FROM pgoutput_stream.streams'),
	0, '(a) no stream row is left in db2');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgs_s2'"),
	0, '(a) no slot is left behind');

# Created with start => false, s2 exists but does not run; start_stream
# refuses while s1 runs.
$node->safe_psql('db2',
	"SELECT pgoutput_stream.create_stream('s2', 'p', targets => '{nats}', start => false)");
($ret, $stdout, $stderr) = $node->psql('db2', "SELECT pgoutput_stream.start_stream('s2')");
isnt($ret, 0, '(a) start_stream in db2 is refused while s1 of db1 runs');
like($stderr, qr/would share NATS subjects or JetStream stream with stream "s1" of database "db1"/,
	'(a) start_stream names the other stream');

# A start that the early check cannot see: s2's transaction starts the
# stream while s1 is stopped, s1 starts and claims the JetStream stream,
# then s2's transaction commits and its worker starts.
$node->safe_psql('db1', "SELECT pgoutput_stream.stop_stream('s1')");
ok(pgs_wait_for_status($node, 'db1', 's1', "state = 'stopped'"), '(a) s1 stopped');
my $bg = $node->background_psql('db2');
$bg->query_safe("BEGIN; SELECT pgoutput_stream.start_stream('s2');");
$node->safe_psql('db1', "SELECT pgoutput_stream.start_stream('s1')");
ok(pgs_wait_for_status($node, 'db1', 's1', "state = 'streaming' AND pid IS NOT NULL"),
	'(a) s1 streams again');
$bg->query_safe('COMMIT');
$bg->quit;
$node->safe_psql('db2', "INSERT INTO t VALUES (201, 'db2, while refused')");
ok(pgs_wait_for_status($node, 'db2', 's2', "state = 'failed'"), '(a) the worker of s2 failed');
like(
	pgs_stream_state($node, 'db2', 's2')->{last_error},
	qr/^JetStream stream "postgres_replication" .*is already written by stream "s1" of database "db1"/,
	'(a) its last_error names the other stream and its database');
$node->safe_psql('db1', "INSERT INTO t VALUES (102, 'db1')");
ok(pgs_wait_delivered($node, 'db1', 's1'), '(a) s1 goes on delivering');
my $msgs = js_msgs();
is_deeply(stored_ids($msgs, 'pgs_s2'), [], '(a) no message of s2 is in JetStream');
is_deeply(stored_ids($msgs, 'pgs_s1'), [ 101, 102 ], '(a) the rows of s1 are, once');
is_deeply([ pgs_js_problems($msgs, 'pgs_s1') ], [], '(a) message ids unique, chained, whole transactions');

# ---------------------------------------------------------------------
# (b) a second cluster, a stream of the same name, default options
# ---------------------------------------------------------------------
my $node_b = pgs_nats_node('b', $nats);
$node_b->start;
my $sysid_b = $node_b->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
isnt($sysid_b, $sysid_a, '(b) the clusters have different system identifiers');
$node_b->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE PUBLICATION p FOR TABLE t;
SELECT pgoutput_stream.create_stream('s1', 'p', targets => '{nats}');
INSERT INTO t VALUES (301, 'cluster b, while refused');
});
ok(pgs_wait_for_status($node_b, 'postgres', 's1', "state = 'failed'"),
	'(b) the stream of the second cluster failed');
like(
	pgs_stream_state($node_b, 'postgres', 's1')->{last_error},
	qr/^JetStream stream "postgres_replication" has another writer: its last message under "postgres\.>" .* was written by database cluster $sysid_a, not by this one \($sysid_b\)/,
	'(b) its last_error says what it found: the other cluster\'s system identifier');
$node->safe_psql('db1', "INSERT INTO t VALUES (103, 'db1')");
ok(pgs_wait_delivered($node, 'db1', 's1'), '(b) s1 of the first cluster goes on delivering');
$msgs = js_msgs();
is(scalar(grep { ($_->{headers}{'Pg-System-Id'} // '') eq $sysid_b } @$msgs),
	0, '(b) JetStream holds no message of the second cluster');
is_deeply(stored_ids($msgs, 'pgs_s1', $sysid_a), [ 101, 102, 103 ], '(b) and every row of s1 once');
is_deeply([ pgs_js_problems($msgs, 'pgs_s1') ], [], '(b) message ids unique, chained, whole transactions');

# ---------------------------------------------------------------------
# (c) nats_shared_stream: all of them run, unchained
# ---------------------------------------------------------------------
# The stream of the second cluster gets another slot name: message ids
# start with the slot name, and ids of two clusters must not meet.
$node_b->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.drop_stream('s1');
SELECT pgoutput_stream.create_stream('sb', 'p', targets => '{nats}',
	options => '{"nats_shared_stream": true}');
});
$node->safe_psql('db1', q{SELECT pgoutput_stream.alter_stream('s1', options => '{"nats_shared_stream": true}')});
$node->safe_psql('db2', q{
SELECT pgoutput_stream.alter_stream('s2', options => '{"nats_shared_stream": true}');
SELECT pgoutput_stream.start_stream('s2');
});
ok(pgs_wait_for_status($node_b, 'postgres', 'sb', "state = 'streaming'"), '(c) sb of the second cluster streams');
ok(pgs_wait_for_status($node, 'db1', 's1', "state = 'streaming'"), '(c) s1 streams');
ok(pgs_wait_for_status($node, 'db2', 's2', "state = 'streaming'"), '(c) s2 streams');
for my $round (1 .. 3)
{
	$node->safe_psql('db1', "INSERT INTO t VALUES (" . (110 + $round) . ", 'db1, shared')");
	$node->safe_psql('db2', "INSERT INTO t VALUES (" . (210 + $round) . ", 'db2, shared')");
	$node_b->safe_psql('postgres', "INSERT INTO t VALUES (" . (310 + $round) . ", 'cluster b, shared')");
}
ok(pgs_wait_delivered($node, 'db1', 's1', 60), '(c) s1 delivered');
ok(pgs_wait_delivered($node, 'db2', 's2', 60), '(c) s2 delivered');
ok(pgs_wait_delivered($node_b, 'postgres', 'sb', 60), '(c) sb delivered');
$msgs = js_msgs();
is_deeply(stored_ids($msgs, 'pgs_s1', $sysid_a), [ 101, 102, 103, 111, 112, 113 ], '(c) the rows of s1, once each');
is_deeply(stored_ids($msgs, 'pgs_s2', $sysid_a), [ 201, 211, 212, 213 ], '(c) the rows of s2, once each');
is_deeply(stored_ids($msgs, 'pgs_sb', $sysid_b), [ 311, 312, 313 ], '(c) the rows of sb (a new slot, created after row 301), once each');
ok($node->log_contains(qr/stream "s2" is not the only writer of JetStream stream "postgres_replication"; messages are not chained/),
	'(c) a shared stream says that it publishes unchained');

# ---------------------------------------------------------------------
# (d) another program's message in a JetStream stream, none under the prefix
# ---------------------------------------------------------------------
my ($ack, $err) = pgs_js_admin($nats->url, undef, 'add', 'foreign', 'file', 'fo.>');
ok($ack, '(d) JetStream stream "foreign" created') or diag($err);
($ack, $err) = pgs_js_admin($nats->url, undef, 'publish', 'fo.other', '{"foreign":true}', 'someone-else-1');
is($ack && $ack->{stream}, 'foreign', '(d) another program stored a message in it') or diag($err);
$node->safe_psql('db1', q{
CREATE TABLE u (id int PRIMARY KEY);
CREATE PUBLICATION pu FOR TABLE u;
SELECT pgoutput_stream.create_stream('su', 'pu', targets => '{nats}',
	options => '{"subject_prefix": "fo.cdc", "nats_stream": "foreign"}');
INSERT INTO u VALUES (1);
});
ok(pgs_wait_for_status($node, 'db1', 'su', "state = 'failed'"), '(d) the stream failed');
like(
	pgs_stream_state($node, 'db1', 'su')->{last_error},
	qr/^JetStream stream "foreign" has another writer: none of its 1 messages is under "fo\.cdc\.>", and its last message \(sequence 1, subject "fo\.other"\) has Nats-Msg-Id "someone-else-1", not one of replication slot "pgs_su"/,
	'(d) its last_error says what it found');
($ack, $err) = pgs_js_admin($nats->url, undef, 'purge', 'foreign');
ok($ack, '(d) the JetStream stream is purged') or diag($err);
$node->safe_psql('db1', "SELECT pgoutput_stream.start_stream('su')");
ok(pgs_wait_for_status($node, 'db1', 'su', "state = 'streaming'"), '(d) after the purge the stream streams');
ok(pgs_wait_delivered($node, 'db1', 'su'), '(d) and delivers');
$msgs = js_msgs('foreign');
is(scalar(grep { ($_->{headers}{'Pg-Operation'} // '') eq 'insert' } @$msgs), 1, '(d) its row is stored once');
is_deeply([ pgs_js_problems($msgs, 'pgs_su') ], [], '(d) message ids unique, chained, whole transactions');
is($msgs->[0]{headers}{'Nats-Expected-Last-Sequence'}, 1,
	'(d) the first message after the purge is chained to the sequence the purge kept');

$node_b->stop;
$node->stop;
$nats->stop;
done_testing();
