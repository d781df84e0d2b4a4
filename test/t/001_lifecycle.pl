
# Copyright (c) 2026, pgoutput_stream developers

# Life cycle of a stream with the "log" target: create, events and their
# payloads, status, commit wake-up, alter, stop/start without loss, drop,
# and the conditions that must be refused or put a stream in "failed".

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgsTestUtil;

# LSN text form "X/Y" as a number, for comparisons
sub lsn_num
{
	my ($lsn) = @_;
	my ($hi, $lo) = split m{/}, $lsn;
	return hex($hi) * 2**32 + hex($lo);
}

my $lsn_re  = qr{^[0-9A-F]+/[0-9A-F]+$};
my $time_re = qr{^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$};

# A long wake-up interval: events can only arrive quickly if commits wake
# the worker.
my $node = pgs_new_node('main',
	conf => "pgoutput_stream.wakeup_interval = '1h'\n");
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
-- column names deliberately not in alphabetical order
CREATE TABLE t (id int PRIMARY KEY, zeta text, alpha numeric, flag boolean,
                at timestamptz, doc jsonb, nums int[]);
CREATE TABLE unpublished (id int PRIMARY KEY);
CREATE PUBLICATION p FOR TABLE t;
CREATE TABLE t2 (id int PRIMARY KEY);
CREATE PUBLICATION p2 FOR TABLE t2;
});
my $relid = $node->safe_psql('postgres', "SELECT 't'::regclass::oid");

# ---------------------------------------------------------------------
# A stream whose publication is dropped while it is stopped fails for good
# when started: state "failed", the reason in last_error, and no restart
# loop.  Done first, so that the rest of the test gives a restart loop
# time to show (it is checked at the end).
# ---------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT pgoutput_stream.create_stream('s2', 'p2')");
ok( pgs_wait_for_status(
		$node, 'postgres', 's2', "state = 'streaming' AND pid IS NOT NULL"),
	's2 is streaming');
$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('s2')");
ok(pgs_wait_for_status($node, 'postgres', 's2', "state = 'stopped' AND pid IS NULL"),
	's2 stopped');
$node->safe_psql('postgres', 'DROP PUBLICATION p2');
my $s2_offset = pgs_log_offset($node);
$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('s2')");
ok(pgs_wait_for_status($node, 'postgres', 's2', "state = 'failed' AND pid IS NULL"),
	's2 without its publication is failed');
my $s2_failed_at = time();
my $s2 = pgs_status($node, 'postgres', 's2');
like($s2->{last_error}, qr/publication "p2" does not exist/,
	's2 last_error names the missing publication');
ok(defined $s2->{last_error_at}, 's2 last_error_at is set');
ok($node->log_contains(qr/stream "s2" failed: publication "p2" does not exist/, $s2_offset),
	'the failure of s2 is logged');

# ---------------------------------------------------------------------
# create_stream starts a worker
# ---------------------------------------------------------------------
my $offset = pgs_log_offset($node);
$node->safe_psql('postgres', "SELECT pgoutput_stream.create_stream('s1', 'p')");
ok( pgs_wait_for_status(
		$node, 'postgres', 's1', "state = 'streaming' AND pid IS NOT NULL"),
	's1 is streaming');
my $st = pgs_status($node, 'postgres', 's1');
is($st->{database},    'postgres', 'stream_status.database');
is($st->{publication}, 'p',        'stream_status.publication');
is($st->{slot_name},   'pgs_s1',   'stream_status.slot_name defaults to pgs_<name>');
is($st->{targets},     '{log}',    'stream_status.targets');
is($st->{format},      'json',     'stream_status.format');
is($st->{enabled},     'true',     'stream_status.enabled');
is($st->{last_error},  undef,      'no error');
ok(defined $st->{started_at},    'started_at is set');
ok(defined $st->{confirmed_lsn}, 'confirmed_lsn is set');
ok(defined $st->{lag_bytes},     'lag_bytes is set');
is( $node->safe_psql(
		'postgres',
		"SELECT plugin, database, slot_type FROM pg_replication_slots WHERE slot_name = 'pgs_s1'"
	),
	'pgoutput|postgres|logical',
	'the stream has a pgoutput slot in its database');

my $pid = $st->{pid};
is( $node->safe_psql(
		'postgres',
		"SELECT backend_type, application_name, datname FROM pg_stat_activity WHERE pid = $pid"
	),
	'pgoutput_stream worker|pgoutput_stream s1|postgres',
	'the worker is visible in pg_stat_activity');
is(pgs_worker_count($node, 's1'), 1, 'one worker for s1');

my $confirmed_before = $st->{confirmed_lsn};

# ---------------------------------------------------------------------
# A commit wakes the sleeping worker at once (the interval is one hour).
# ---------------------------------------------------------------------
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event_type = 'Extension' AND state_change IS NOT NULL
		 FROM pg_stat_activity WHERE pid = $pid"),
	'the worker sleeps');

my $start = time();
my $xid1 = $node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO t VALUES
  (1, 'one', 12345678901234567890.123456789, true, '2024-01-02 03:04:05+00',
   '{"k": [1, 2], "s": "x"}', '{1,2,3}'),
  (2, 'two "quoted" \ back', -2.5, false, NULL, '[]', '{}'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT pg_current_xact_id();
COMMIT;
});
ok( pgs_wait_until(
		sub {
			scalar(pgs_events($node, $offset, stream => 's1', kind => 'commit')) >= 1;
		},
		'the first transaction',
		60),
	'the first transaction is logged although the wake-up interval is 1h');
my $delay = time() - $start;
cmp_ok($delay, '<', 60, 'a commit wakes the worker at once');
note(sprintf('first transaction logged after %.3f s', $delay));

# More transactions: updates (one changes the key), a delete together with
# a change of an unpublished table, a transaction touching only the
# unpublished table (no events at all), and a last insert as a barrier.
my $xid2 = $node->safe_psql(
	'postgres', q{
BEGIN;
UPDATE t SET zeta = 'one-b', alpha = 1.5 WHERE id = 1;
UPDATE t SET id = 20 WHERE id = 2;
SELECT pg_current_xact_id();
COMMIT;
});
my $xid3 = $node->safe_psql(
	'postgres', q{
BEGIN;
DELETE FROM t WHERE id = 3;
INSERT INTO unpublished VALUES (1);
SELECT pg_current_xact_id();
COMMIT;
});
$node->safe_psql('postgres', 'INSERT INTO unpublished VALUES (2)');
my $xid4 = $node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO t (id, zeta) VALUES (4, 'four');
SELECT pg_current_xact_id();
COMMIT;
});
ok(pgs_wait_for_ids($node, $offset, 's1', 't', [4]), 'barrier row logged');

my @all = pgs_events($node, $offset, stream => 's1');
my @ev = grep { $_->{kind} ne 'relation' } @all;
is_deeply(
	[ map { $_->{kind} } @ev ],
	[
		qw(begin insert insert insert commit
		  begin update update commit
		  begin delete commit
		  begin insert commit)
	],
	'events in order, each transaction wrapped in begin/commit, nothing for the unpublished table'
) or diag(join("\n", map { "$_->{subject}: $_->{payload}" } @all));

# subjects
foreach my $e (@ev)
{
	my $want =
		$e->{kind} eq 'begin'  ? 'postgres.transactions.begin.event'
	  : $e->{kind} eq 'commit' ? 'postgres.transactions.commit.event'
	  :                          "postgres.public.t.$e->{kind}";
	is($e->{subject}, $want, "subject of the $e->{kind} event");
}

# the relation event comes before the first change of t, columns in table order
my ($rel_index) = grep { $all[$_]{kind} eq 'relation' } 0 .. $#all;
my ($ins_index) = grep { $all[$_]{kind} eq 'insert' } 0 .. $#all;
ok(defined $rel_index && $rel_index < $ins_index,
	'a relation event precedes the first insert');
if (defined $rel_index)
{
	my $rel = pgs_json($all[$rel_index]);
	is($all[$rel_index]{subject}, 'postgres.public.t.relation', 'relation subject');
	is($rel->{Relation}{relation_id}, $relid, 'relation: relation_id');
	is($rel->{Relation}{table},       't',    'relation: table');
	is_deeply(
		[ map { $_->{name} } @{ $rel->{Relation}{columns} } ],
		[qw(id zeta alpha flag at doc nums)],
		'relation: columns in table order');
	is_deeply(
		[ map { $_->{flags} } @{ $rel->{Relation}{columns} } ],
		[ 1, 0, 0, 0, 0, 0, 0 ],
		'relation: the key column is flagged');
}

# begin/commit pairs
my @xids = ($xid1, $xid2, $xid3, $xid4);
my @begins  = grep { $_->{kind} eq 'begin' } @ev;
my @commits = grep { $_->{kind} eq 'commit' } @ev;
my $last_end_lsn;
for my $i (0 .. 3)
{
	my $b = pgs_json($begins[$i])->{Begin};
	my $c = pgs_json($commits[$i])->{Commit};
	is($b->{xid}, $xids[$i], "begin $i carries the xid");
	is($c->{xid}, $xids[$i], "commit $i carries the xid");
	like($b->{lsn}, $lsn_re, "begin $i: lsn");
	is($c->{lsn}, $b->{lsn}, "commit $i: lsn is the begin's (final) lsn");
	like($c->{end_lsn}, $lsn_re, "commit $i: end_lsn");
	cmp_ok(lsn_num($c->{end_lsn}), '>', lsn_num($c->{lsn}),
		"commit $i: end_lsn after lsn");
	like($b->{commit_time}, $time_re, "begin $i: commit_time");
	is($c->{commit_time}, $b->{commit_time}, "commit $i: same commit_time");
	like($b->{timestamp}, qr/^\d+$/, "begin $i: timestamp");
	cmp_ok(lsn_num($b->{lsn}), '>', lsn_num(pgs_json($commits[ $i - 1 ])->{Commit}{lsn}),
		"transaction $i after transaction " . ($i - 1))
	  if $i > 0;
	$last_end_lsn = $c->{end_lsn};
}

# inserts
my @ins = grep { $_->{kind} eq 'insert' } @ev;
my $i1 = pgs_json($ins[0])->{Insert};
is($i1->{relation_id}, $relid,   'insert: relation_id');
is($i1->{schema},      'public', 'insert: schema');
is($i1->{table},       't',      'insert: table');
my $n1 = $i1->{new_tuple};
is($n1->{id},   1,     'insert 1: id');
is($n1->{zeta}, 'one', 'insert 1: text');
ok($ins[0]{payload} =~ /"alpha":12345678901234567890\.123456789[,}]/,
	'insert 1: numeric is an exact JSON number');
ok(JSON::PP::is_bool($n1->{flag}) && $n1->{flag}, 'insert 1: boolean true');
is($n1->{at}, '2024-01-02 03:04:05+00', 'insert 1: timestamptz in UTC, ISO');
is_deeply($n1->{doc},  { k => [ 1, 2 ], s => 'x' }, 'insert 1: jsonb embedded');
is_deeply($n1->{nums}, [ 1, 2, 3 ], 'insert 1: array as JSON array');
ok($ins[0]{payload} =~ /"id":1,/, 'insert 1: id is a JSON number');

# column order as in the table
my @pos = map { index($ins[0]{payload}, "\"$_\":") } qw(id zeta alpha flag at doc nums);
ok(!(grep { $_ < 0 } @pos), 'insert 1: every column present');
is_deeply([@pos], [ sort { $a <=> $b } @pos ],
	'insert 1: columns in table order');
like($ins[0]{payload},
	qr/^\{"Insert":\{"relation_id":\d+,"schema":"public","table":"t","new_tuple":\{/,
	'insert: keys in the documented order');

my $n2 = pgs_json($ins[1])->{Insert}{new_tuple};
is($n2->{zeta}, 'two "quoted" \ back', 'insert 2: text with quotes and backslash');
is($n2->{alpha}, '-2.5', 'insert 2: negative numeric');
ok(JSON::PP::is_bool($n2->{flag}) && !$n2->{flag}, 'insert 2: boolean false');
is($n2->{at}, undef, 'insert 2: null');
is_deeply($n2->{doc},  [], 'insert 2: empty jsonb array');
is_deeply($n2->{nums}, [], 'insert 2: empty array');

is_deeply(
	pgs_json($ins[2])->{Insert}{new_tuple},
	{
		id   => 3,
		zeta => undef,
		alpha => undef,
		flag => undef,
		at   => undef,
		doc  => undef,
		nums => undef
	},
	'insert 3: nulls are JSON nulls, every column present');

# updates
my @upd = grep { $_->{kind} eq 'update' } @ev;
my $u1 = pgs_json($upd[0])->{Update};
is($u1->{old_tuple}, undef, 'update of non-key columns: old_tuple null');
is($u1->{new_tuple}{zeta}, 'one-b', 'update: new value');
ok($upd[0]{payload} =~ /"alpha":1\.5[,}]/, 'update: new numeric');
is_deeply($u1->{new_tuple}{nums}, [ 1, 2, 3 ], 'update: unchanged column present');
like($upd[0]{payload}, qr/^\{"Update":\{"relation_id":\d+,"schema":"public","table":"t","old_tuple":null,"new_tuple":\{/,
	'update: keys in the documented order');
my $u2 = pgs_json($upd[1])->{Update};
is_deeply($u2->{old_tuple}, { id => 2 }, 'update of the key: old_tuple has the old key only');
is($u2->{new_tuple}{id},   20,                    'update of the key: new key');
is($u2->{new_tuple}{zeta}, 'two "quoted" \ back', 'update of the key: other columns');

# delete
my @del = grep { $_->{kind} eq 'delete' } @ev;
is_deeply(pgs_json($del[0])->{Delete}{old_tuple}, { id => 3 }, 'delete: old key');
is(pgs_json($del[0])->{Delete}{table}, 't', 'delete: table');

# status counters match the log, confirmed_lsn reaches the last commit
my $nevents = scalar(@all);
ok( pgs_wait_for_status(
		$node, 'postgres', 's1',
		"transactions = 4 AND events = $nevents AND bytes > 0"),
	"stream_status counts 4 transactions and $nevents events")
  or diag(explain(pgs_status($node, 'postgres', 's1')));
ok( pgs_wait_for_status(
		$node, 'postgres', 's1',
		"confirmed_lsn >= '$last_end_lsn' AND confirmed_lsn > '$confirmed_before'"),
	'confirmed_lsn advances to the end of the last transaction');
ok(pgs_wait_for_status($node, 'postgres', 's1', "decoded_lsn >= confirmed_lsn"),
	'decoded_lsn is not behind confirmed_lsn');

# ---------------------------------------------------------------------
# alter_stream on a running stream: the worker restarts with the new
# options; value_mode text renders every value as a string
# ---------------------------------------------------------------------
$node->safe_psql('postgres',
	qq{SELECT pgoutput_stream.alter_stream('s1', options => '{"value_mode":"text"}')});
ok( pgs_wait_for_status(
		$node, 'postgres', 's1',
		"state = 'streaming' AND pid IS NOT NULL AND pid <> $pid"),
	'alter_stream restarts the worker');
is( $node->safe_psql('postgres', "SELECT options FROM pgoutput_stream.streams WHERE name = 's1'"),
	'{"value_mode": "text"}',
	'the option is stored');
$pid = pgs_status($node, 'postgres', 's1')->{pid};
# (the old worker leaves pg_stat_activity a moment after it let go of the
# stream)
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgoutput_stream worker' AND application_name = 'pgoutput_stream s1'"
	),
	'one worker for s1 after alter_stream');

my $alter_offset = pgs_log_offset($node);
$node->safe_psql('postgres',
	q{INSERT INTO t VALUES (5, 'five', 5.5, true, '2024-01-02 03:04:05+00', '{"a": 1}', '{5,6}')});
ok(pgs_wait_for_ids($node, $alter_offset, 's1', 't', [5]), 'event after alter_stream');
my ($i5) = pgs_events($node, $alter_offset, stream => 's1', kind => 'insert');
like($i5->{payload}, qr/"new_tuple":\{"id":"5","zeta":"five","alpha":"5\.5","flag":"t",/,
	'value_mode text: numbers and booleans are strings');
my $n5 = pgs_json($i5)->{Insert}{new_tuple};
is($n5->{doc},  '{"a": 1}', 'value_mode text: jsonb as its text');
is($n5->{nums}, '{5,6}',    'value_mode text: array as its text');

# ---------------------------------------------------------------------
# stop_stream / start_stream: nothing is logged while stopped, and every
# row changed meanwhile is logged once after the start
# ---------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('s1')");
ok(pgs_wait_for_status($node, 'postgres', 's1', "state = 'stopped' AND pid IS NULL AND NOT enabled"),
	's1 is stopped');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pgoutput_stream worker' AND application_name = 'pgoutput_stream s1'"
	),
	'no worker for s1 once stopped');
my $stop_offset = pgs_log_offset($node);
$node->safe_psql('postgres',
	'INSERT INTO t (id, zeta) SELECT g, \'stopped\' FROM generate_series(100, 104) g');
$node->safe_psql('postgres',
	'INSERT INTO t (id, zeta) SELECT g, \'stopped\' FROM generate_series(105, 109) g');
is(scalar(pgs_events($node, $stop_offset, stream => 's1')), 0,
	'nothing logged while s1 is stopped');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgs_s1'"),
	1, 'the slot of a stopped stream is kept');

my ($out, $err) = ('', '');
$node->psql('postgres', "SELECT pgoutput_stream.stop_stream('s1')", stderr => \$err);
like($err, qr/stream "s1" is already stopped/, 'stopping a stopped stream is a notice');

$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('s1')");
ok( pgs_wait_for_status(
		$node, 'postgres', 's1', "state = 'streaming' AND pid IS NOT NULL AND enabled"),
	's1 is streaming again');
$node->psql('postgres', "SELECT pgoutput_stream.start_stream('s1')", stderr => \$err);
like($err, qr/stream "s1" is already running/, 'starting a running stream is a notice');
$node->safe_psql('postgres', "INSERT INTO t (id, zeta) VALUES (110, 'after start')");
ok(pgs_wait_for_ids($node, $stop_offset, 's1', 't', [ 100 .. 110 ]),
	'every row inserted while stopped is logged after start_stream');
my $counts = pgs_insert_id_counts($node, $stop_offset, 's1', 't');
is_deeply([ map { $counts->{$_} } 100 .. 110 ], [ (1) x 11 ],
	'each row is logged exactly once');
is(scalar(grep { $_ < 100 } keys %$counts), 0, 'rows logged before the stop are not logged again');
is(pgs_worker_count($node, 's1'), 1, 'one worker for s1 after start_stream');

# ---------------------------------------------------------------------
# drop_stream removes the stream, its worker and its slot
# ---------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('s1')");
is($node->safe_psql('postgres', "SELECT count(*) FROM pgoutput_stream.streams WHERE name = 's1'"),
	0, 'drop_stream deletes the row');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgoutput_stream.stream_status WHERE name = 's1'"),
	0, 'the stream is gone from stream_status');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgs_s1'"),
	0, 'drop_stream drops the slot');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'the worker of s1 is gone');


# ---------------------------------------------------------------------
# Without shared_preload_libraries the extension refuses to be created;
# with wal_level = replica, create_stream refuses and leaves nothing.
# ---------------------------------------------------------------------
my $node2 = pgs_new_node('replica', preload => 0, wal_level => 'replica');
$node2->start;
my ($ret, $stdout, $stderr) =
  $node2->psql('postgres', 'CREATE EXTENSION pgoutput_stream');
isnt($ret, 0, 'CREATE EXTENSION fails without the preload');
like(
	$stderr,
	qr/pgoutput_stream must be loaded via "shared_preload_libraries"/,
	'CREATE EXTENSION names shared_preload_libraries');
is($node2->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'pgoutput_stream'"),
	0, 'the extension was not created');

$node2->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pgoutput_stream'\npgoutput_stream.restart_delay = 1");
$node2->restart;
$node2->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY);
CREATE PUBLICATION p FOR TABLE t;
});
($ret, $stdout, $stderr) =
  $node2->psql('postgres', "SELECT pgoutput_stream.create_stream('s1', 'p')");
isnt($ret, 0, 'create_stream fails with wal_level = replica');
like($stderr, qr/logical decoding requires wal_level >= logical/,
	'create_stream names the wal_level requirement');
is($node2->safe_psql('postgres', 'SELECT count(*) FROM pgoutput_stream.streams'),
	0, 'no stream row is left');
is($node2->safe_psql('postgres', 'SELECT count(*) FROM pg_replication_slots'),
	0, 'no slot is left');
$node2->stop;

# ---------------------------------------------------------------------
# s2 (failed at the start) was not restarted in a loop meanwhile; the
# second node's checks gave it the time to show
# ---------------------------------------------------------------------
note(sprintf('%.1f s since s2 failed (restart_delay is 1 s)', time() - $s2_failed_at));
my $s2_now = pgs_status($node, 'postgres', 's2');
is($s2_now->{state}, 'failed', 's2 is still failed');
is($s2_now->{pid},   undef,    's2 has no worker');
is($s2_now->{started_at}, $s2->{started_at}, 's2 was not started again');
my $failures = () =
  slurp_file($node->logfile, $s2_offset) =~ /stream "s2" failed:/g;
is($failures, 1, 's2 failed once: no restart loop');

# ---------------------------------------------------------------------
# A publication that is dropped and created again.  The slot still has to
# decode WAL written while the publication did not exist, which pgoutput
# cannot do: the stream must then either deliver new changes or be failed
# with a reason -- never restart in a loop.
# ---------------------------------------------------------------------

# Wait until $stream logged the insert of id $id into $table since
# $offset, or is failed, or visibly restarts in a loop; true for the first
# two.
sub delivers_or_fails
{
	my ($stream, $table, $id, $offset) = @_;
	my ($delivered, $failed, $restarts) = (0, 0, 0);

	pgs_wait_until(
		sub {
			$delivered =
			  pgs_insert_id_counts($node, $offset, $stream, $table)->{$id} ? 1 : 0;
			my $st = pgs_status($node, 'postgres', $stream);
			$failed = ($st->{state} eq 'failed' && !defined $st->{pid}) ? 1 : 0;
			$restarts = () =
			  slurp_file($node->logfile, $offset) =~
			  /stream "$stream" started streaming/g;
			return $delivered || $failed || $restarts >= 3;
		},
		"$stream delivers or fails",
		30);
	return 1 if ($delivered || $failed) && $restarts < 3;
	diag("$stream started $restarts times; status:\n"
		  . join('', explain(pgs_status($node, 'postgres', $stream))));
	return 0;
}

# What the failure of s2 hints: create the publication again, then start
# the stream.
my $recreate_offset = pgs_log_offset($node);
$node->safe_psql('postgres', 'CREATE PUBLICATION p2 FOR TABLE t2');
$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('s2')");
$node->safe_psql('postgres', 'INSERT INTO t2 VALUES (1)');
ok(delivers_or_fails('s2', 't2', 1, $recreate_offset),
	's2 after re-creating its publication: delivers or fails, no restart loop');

# The publication of a running stream is dropped and created again (e.g.
# to change its tables), with a change in between.
$node->safe_psql(
	'postgres', q{
CREATE TABLE t3 (id int PRIMARY KEY);
CREATE PUBLICATION p3 FOR TABLE t3;
SELECT pgoutput_stream.create_stream('s3', 'p3');
});
ok( pgs_wait_for_status(
		$node, 'postgres', 's3', "state = 'streaming' AND pid IS NOT NULL"),
	's3 is streaming');
$recreate_offset = pgs_log_offset($node);
$node->safe_psql('postgres', 'DROP PUBLICATION p3');
$node->safe_psql('postgres', 'INSERT INTO unpublished VALUES (3)');
$node->safe_psql('postgres', 'CREATE PUBLICATION p3 FOR TABLE t3');
$node->safe_psql('postgres', 'INSERT INTO t3 VALUES (1)');
ok(delivers_or_fails('s3', 't3', 1, $recreate_offset),
	's3 after its publication was dropped and created again: delivers or fails, no restart loop');

$node->stop;

done_testing();
