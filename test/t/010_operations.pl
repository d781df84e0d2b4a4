
# Copyright (c) 2026, pgoutput_stream developers

# Operations and slot safety:
#  (1) the launcher and the workers in pg_stat_activity;
#  (2) stream_status during a workload with the log target, and while a
#      stream catches up with a backlog of 200,000 rows;
#  (3) an idle slot does not pin WAL: 50 MB written to an unpublished table,
#      and the slot's restart_lsn moves past it;
#  (4) retained WAL above pgoutput_stream.retained_wal_warning: wal_warning in
#      stream_status and one (rate-limited) WARNING in the log;
#  (5) configuration reloads: a change of NATS credentials or URL restarts
#      the worker, which waits, then resumes; other reloads restart nothing;
#      JetStream holds every event exactly once; heartbeats; a restart while
#      the last message is a heartbeat;
#  (6) a slot invalidated by max_slot_wal_keep_size while NATS is down: the
#      stream fails with the reason, is not restarted in a loop, and the
#      documented recovery works;
#  (7) DROP EXTENSION removes streams, slots and workers.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgsTestUtil;
use PgsNatsUtil;
use PgsOpsUtil;

my $t0 = time();
my @timings;

sub timing
{
	my ($what, $start) = @_;
	push @timings, sprintf('%s %.1f s', $what, time() - $start);
}

# Both NATS servers want a user and a password.  "lost" starts only in (6).
my $auth_conf = "authorization {\n  user: pgs\n  password: s3cret\n}\n";
my %auth      = (user => 'pgs', password => 's3cret');
my $nats      = PgsNatsUtil->new('ops', conf => $auth_conf)->start;
my $lost_nats = PgsNatsUtil->new('lost', conf => $auth_conf);

# A loopback port nothing listens on
my $dead_port = PostgreSQL::Test::Cluster::get_free_port();

my $node = pgs_new_node(
	'ops', conf => <<"EOF");
pgoutput_stream.nats_url = '@{[ $nats->url ]}'
pgoutput_stream.nats_user = 'pgs'
pgoutput_stream.nats_password = 's3cret'
pgoutput_stream.nats_max_retry_delay = '500ms'
pgoutput_stream.nats_ack_timeout = '5s'
EOF
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE a (id bigint PRIMARY KEY, v text);
CREATE TABLE b (id bigserial PRIMARY KEY, v text);   -- in no publication
CREATE TABLE c (id bigint PRIMARY KEY, v text);
CREATE TABLE l (id bigint PRIMARY KEY);
CREATE PUBLICATION pa FOR TABLE a;
CREATE PUBLICATION pc FOR TABLE c;
CREATE PUBLICATION pl FOR TABLE l;

-- Watch a stream from one statement, every 5 ms, until it streams with no
-- lag and has delivered want_events events (or for at most max_seconds):
-- the states seen, in order, each marked "+lag" while lag_bytes > 0.
CREATE FUNCTION watch_stream(stream text, want_events bigint, max_seconds float8)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	deadline timestamptz := clock_timestamp() + make_interval(secs => max_seconds);
	seen text[] := '{}';
	token text;
	r record;
BEGIN
	LOOP
		SELECT state, lag_bytes, events INTO r
		FROM pgoutput_stream.stream_status WHERE name = stream;
		token := r.state || CASE WHEN r.lag_bytes > 0 THEN '+lag' ELSE '' END;
		IF cardinality(seen) = 0 OR seen[cardinality(seen)] <> token THEN
			seen := seen || token;
		END IF;
		EXIT WHEN (r.state = 'streaming' AND r.lag_bytes = 0 AND r.events >= want_events)
			OR clock_timestamp() > deadline;
		PERFORM pg_sleep(0.005);
	END LOOP;
	RETURN array_to_string(seen, ',');
END $$;
});

# Run $sql (several statements: each commits on its own) and return its
# output lines
sub psql_lines
{
	my ($sql) = @_;
	return split /\n/, $node->safe_psql('postgres', $sql);
}

# INSERT statements for ids $first..$last of $table, $per_tx rows each
sub inserts
{
	my ($table, $first, $last, $per_tx) = @_;
	my $sql = '';
	for (my $i = $first; $i <= $last; $i += $per_tx)
	{
		my $to = $i + $per_tx - 1;
		$to = $last if $to > $last;
		$sql .= "INSERT INTO $table SELECT g, 'row ' || g FROM generate_series($i, $to) g;\n";
	}
	return $sql;
}

# ---------------------------------------------------------------------
# (1) The launcher in pg_stat_activity
# ---------------------------------------------------------------------
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
WHERE backend_type = 'pgoutput_stream launcher'
  AND application_name = 'pgoutput_stream launcher'
  AND wait_event_type = 'Extension' AND wait_event = 'Extension'}),
	'the launcher shows in pg_stat_activity, waiting on the Extension wait event');

# ---------------------------------------------------------------------
# (2) stream_status during a workload with the log target
# ---------------------------------------------------------------------
my $start = time();
$node->safe_psql('postgres', "SELECT pgoutput_stream.create_stream('ops_log', 'pa')");
ok( pgs_wait_for_status(
		$node, 'postgres', 'ops_log', "state = 'streaming' AND pid IS NOT NULL"),
	'ops_log is streaming');

my $offset = pgs_log_offset($node);
my ($t_before, $t_after) = psql_lines(
	inserts('a', 1, 950, 50) . "SELECT clock_timestamp();\n"
	  . inserts('a', 951, 1000, 50) . "SELECT clock_timestamp();\n");
ok(pgs_wait_for_ids($node, $offset, 'ops_log', 'a', [ 1 .. 1000 ]),
	'the workload of 20 transactions is logged');
ok( pgs_wait_for_status(
		$node, 'postgres', 'ops_log',
		"state = 'streaming' AND lag_bytes = 0 AND lag_time = '0'"),
	'caught up: lag_bytes 0 and lag_time 0');

my $st = pgs_ops_status($node, 'postgres', 'ops_log');
my @logged = pgs_events($node, $offset, stream => 'ops_log');
my $commits = grep { $_->{kind} eq 'commit' } @logged;
is($st->{state_reason}, undef, 'a streaming stream has no state_reason');
is($commits, 20, '20 transactions logged');
is($st->{transactions}, $commits, 'transactions counts the logged transactions');
is($st->{events}, scalar(@logged), 'events counts the logged events');
is($st->{target_counters}{log}, $st->{events},
	'target_counters: the log target wrote every event');
is($st->{target_counters}{nats},    0, 'target_counters: nothing for nats');
is($st->{target_counters}{feldera}, 0, 'target_counters: nothing for feldera');
cmp_ok($st->{bytes}, '>', 0, 'bytes counts payload bytes');
is($st->{in_flight}, 0, 'nothing in flight');
is($st->{retries},   0, 'no retries');
is($st->{wal_status}, 'reserved', 'wal_status of the slot');
is($st->{safe_wal_size}, undef, 'safe_wal_size is NULL without max_slot_wal_keep_size');
cmp_ok($st->{retained_wal}, '<', 16 * 1024 * 1024, 'the slot retains less than a segment');
ok(!$st->{wal_warning}, 'no wal_warning');
is( $node->safe_psql(
		'postgres', qq{
SELECT confirmed_commit_time BETWEEN '$t_before' AND '$t_after',
       last_ack_at >= confirmed_commit_time
FROM pgoutput_stream.stream_status WHERE name = 'ops_log'}),
	't|t',
	'confirmed_commit_time is the commit time of the last transaction, last_ack_at after it');

# the worker in pg_stat_activity
is( $node->safe_psql(
		'postgres',
		"SELECT backend_type, application_name, datname, query FROM pg_stat_activity WHERE pid = $st->{pid}"
	),
	'pgoutput_stream worker|pgoutput_stream ops_log|postgres|streaming',
	'the worker shows in pg_stat_activity with its stream name');
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event_type = 'Extension' AND wait_event = 'Extension'
		 FROM pg_stat_activity WHERE pid = $st->{pid}"),
	'the idle worker waits on the Extension wait event');
timing('(2) workload', $start);

# ---------------------------------------------------------------------
# (2) catching up: a backlog of 200,000 rows in 100 transactions, written
# while the stream is stopped
# ---------------------------------------------------------------------
$start = time();
$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('ops_log')");
ok(pgs_wait_for_status($node, 'postgres', 'ops_log', "state = 'stopped' AND pid IS NULL"),
	'ops_log stopped');
my $events_before = pgs_ops_status($node, 'postgres', 'ops_log')->{events};
$offset = pgs_log_offset($node);
($t_before, $t_after) = psql_lines(
	inserts('a', 100_001, 298_000, 2000) . "SELECT clock_timestamp();\n"
	  . inserts('a', 298_001, 300_000, 2000) . "SELECT clock_timestamp();\n");
$st = pgs_ops_status($node, 'postgres', 'ops_log');
is($st->{state}, 'stopped', 'the stopped stream shows state stopped');
cmp_ok($st->{lag_bytes}, '>', 10_000_000, 'the backlog shows in lag_bytes');
isnt($st->{lag_time} // 'NULL', '00:00:00',
	'a stopped stream with a backlog does not claim lag_time 0');

my $seen = (psql_lines(
	"SELECT pgoutput_stream.start_stream('ops_log');
	 SELECT watch_stream('ops_log', $events_before + 200000, 120);"))[-1];
note("states seen while catching up: $seen");
like($seen, qr/(^|,)catching up\+lag(,|$)/,
	"stream_status showed 'catching up' with lag_bytes > 0");
like($seen, qr/(^|,)streaming\z/, 'then streaming with no lag');

ok(pgs_wait_for_ids($node, $offset, 'ops_log', 'a', [ 100_001 .. 300_000 ]),
	'every row of the backlog is logged');
my $count = pgs_insert_id_counts($node, $offset, 'ops_log', 'a');
is(scalar(grep { $count->{$_} != 1 } keys %$count), 0, 'each row of the backlog once');
ok( pgs_wait_for_status(
		$node, 'postgres', 'ops_log',
		"state = 'streaming' AND lag_bytes = 0 AND lag_time = '0' AND in_flight = 0"),
	'caught up again: lag 0 in bytes and time');
is( $node->safe_psql(
		'postgres', qq{
SELECT confirmed_commit_time BETWEEN '$t_before' AND '$t_after'
FROM pgoutput_stream.stream_status WHERE name = 'ops_log'}),
	't',
	'confirmed_commit_time is the commit time of the last backlog transaction');
$st = pgs_ops_status($node, 'postgres', 'ops_log');
@logged = pgs_events($node, $offset, stream => 'ops_log');
is($st->{events} - $events_before, scalar(@logged),
	'events grew by the events logged while catching up');
is($st->{target_counters}{log}, $st->{events},
	'target_counters survives the stop and start like events');
timing('(2) catch-up', $start);

# ---------------------------------------------------------------------
# (3) An idle slot does not pin WAL: 50 MB written to a table that is in no
# publication, and the slot's restart_lsn moves past it
# ---------------------------------------------------------------------
$start = time();
my ($restart0, $wal0) = split /\|/, $node->safe_psql('postgres',
	"SELECT restart_lsn, pg_current_wal_lsn() FROM pg_replication_slots WHERE slot_name = 'pgs_ops_log'");
$events_before = pgs_ops_status($node, 'postgres', 'ops_log')->{events};
$offset = pgs_log_offset($node);
$node->safe_psql('postgres',
	"INSERT INTO b (v) SELECT repeat('x', 120) FROM generate_series(1, 50000);\n" x 5);
my ($wal1, $written) = split /\|/, $node->safe_psql('postgres',
	"SELECT pg_current_wal_lsn(), pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0')");
cmp_ok($written, '>=', 50 * 1024 * 1024, 'at least 50 MB of WAL written to table b');

# restart_lsn moves at running-xacts records: a checkpoint writes one
my $restart1;
ok( pgs_wait_until(
		sub {
			$node->safe_psql('postgres', 'CHECKPOINT');
			$restart1 = $node->safe_psql('postgres',
				"SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'pgs_ops_log'");
			return pgs_lsn_num($restart1) >= pgs_lsn_num($wal1);
		},
		'restart_lsn of pgs_ops_log past the WAL of table b'),
	"the slot's restart_lsn moved past the 50 MB ($restart0 -> $restart1, WAL written up to $wal1)");
$st = pgs_ops_status($node, 'postgres', 'ops_log');
cmp_ok(pgs_lsn_num($st->{confirmed_lsn}), '>=', pgs_lsn_num($wal1),
	'confirmed_lsn is past the WAL of table b');
cmp_ok($st->{retained_wal}, '<', 16 * 1024 * 1024, 'the slot retains less than a segment');
is($st->{events}, $events_before, 'changes of table b made no events');
is(scalar(pgs_events($node, $offset, stream => 'ops_log')), 0, 'and no log lines');
timing('(3) idle slot', $start);

# ---------------------------------------------------------------------
# (4) Retained WAL above pgoutput_stream.retained_wal_warning: an open
# transaction that wrote to a published table holds restart_lsn back while
# other transactions write WAL.
# ---------------------------------------------------------------------
$start = time();
$offset = pgs_log_offset($node);
$node->safe_psql('postgres',
	"ALTER SYSTEM SET pgoutput_stream.retained_wal_warning = '1MB'; SELECT pg_reload_conf();");
ok( $node->poll_query_until(
		'postgres', "SELECT setting = '1' FROM pg_settings WHERE name = 'pgoutput_stream.retained_wal_warning'"),
	'retained_wal_warning is 1 MB');

my $open = $node->background_psql('postgres');
$open->query_safe("BEGIN; INSERT INTO a VALUES (900001, 'open transaction');");
my $warn_re = qr/WARNING:  replication slot "pgs_ops_log" of stream "ops_log" retains \d+ MB of WAL/;
ok( pgs_wait_until(
		sub {
			$node->safe_psql('postgres',
				"INSERT INTO b (v) SELECT repeat('y', 120) FROM generate_series(1, 2000)");
			return $node->safe_psql('postgres', q{
SELECT wal_warning AND retained_wal > 1048576 AND lag_bytes < 1048576
FROM pgoutput_stream.stream_status WHERE name = 'ops_log'}) eq 't';
		},
		'wal_warning of ops_log'),
	'wal_warning is set: retained_wal above 1 MB, while lag_bytes stays below it');
ok(pgs_wait_for_log($node, $offset, $warn_re), 'the WARNING is logged');
like(slurp_file($node->logfile, $offset),
	qr/$warn_re\n.*DETAIL:  The threshold "pgoutput_stream.retained_wal_warning" is 1 MB\./,
	'with the threshold in its detail');

# the worker wakes at every commit and finds the WAL still retained: the
# warning stays at one a minute
my $deadline = time() + 3;
my $still_warned = 1;
while (time() < $deadline)
{
	$node->safe_psql('postgres', "INSERT INTO b (v) VALUES ('wake up')");
	$still_warned &&= pgs_ops_status($node, 'postgres', 'ops_log')->{wal_warning};
	usleep(200_000);
}
ok($still_warned, 'wal_warning stayed set while the WAL was retained');
is(pgs_count_log_lines($node, $offset, $warn_re), 1,
	'one WARNING in 3 s of wake-ups (rate-limited)');

$open->query_safe('COMMIT');
$open->quit;
ok(pgs_wait_for_ids($node, $offset, 'ops_log', 'a', [900001]),
	'the long transaction is delivered when it commits');
ok( pgs_wait_until(
		sub {
			$node->safe_psql('postgres', 'CHECKPOINT');
			return $node->safe_psql('postgres', q{
SELECT NOT wal_warning AND retained_wal < 1048576
FROM pgoutput_stream.stream_status WHERE name = 'ops_log'}) eq 't';
		},
		'wal_warning of ops_log to clear'),
	'wal_warning clears once the slot moves on');
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET pgoutput_stream.retained_wal_warning; SELECT pg_reload_conf();");
timing('(4) retained WAL', $start);

# ---------------------------------------------------------------------
# (5) NATS: reloads that change the connection settings, heartbeats
# ---------------------------------------------------------------------
$start = time();
$node->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.create_stream('ops_nats', 'pc', targets => '{nats}',
  options => '{"subject_prefix": "ops", "nats_stream": "ops", "heartbeat_interval": 1}');
});
ok( pgs_wait_for_status(
		$node, 'postgres', 'ops_nats', "state = 'streaming' AND pid IS NOT NULL"),
	'ops_nats is streaming');
my $log_pid = pgs_ops_status($node, 'postgres', 'ops_log')->{pid};
$node->safe_psql('postgres', inserts('c', 1, 500, 100));
ok(pgs_wait_delivered($node, 'postgres', 'ops_nats'), 'the first 500 rows are in JetStream');

my $dump;
my $heartbeats = sub {
	$dump = pgs_js_dump($nats->url, 'ops', %auth);
	return scalar(pgs_ops_heartbeats($dump->{msgs}));
};
ok(pgs_wait_until(sub { $heartbeats->() >= 2 }, 'two heartbeats'),
	'heartbeats are published every second');
my ($hb) = pgs_ops_heartbeats($dump->{msgs});
is($hb->{subject}, 'ops.heartbeat', 'on the subject <prefix>.heartbeat');
like($hb->{headers}{'Pg-Lsn'}, qr{^[0-9A-F]+/[0-9A-F]+$}, 'with the confirmed LSN in Pg-Lsn');
my (undef, $hb_json) = pgs_msg_payload($hb);
is_deeply([ sort keys %{ $hb_json->{Heartbeat} // {} } ], [qw(confirmed_lsn time)],
	'payload {"Heartbeat":{"confirmed_lsn":...,"time":...}}');
is($hb_json->{Heartbeat}{confirmed_lsn}, $hb->{headers}{'Pg-Lsn'},
	'confirmed_lsn is the Pg-Lsn header');

# A reload that changes nothing the connection depends on restarts nothing.
# Two more heartbeats prove that the worker went round its loop, where it
# handles the reload.
my $nats_pid = pgs_ops_status($node, 'postgres', 'ops_nats')->{pid};
$offset = pgs_log_offset($node);
my $restart_re = qr/stream "ops_nats" restarts to use its new connection settings/;
$node->safe_psql('postgres',
	"ALTER SYSTEM SET pgoutput_stream.wakeup_interval = '900ms'; SELECT pg_reload_conf();");
my $n_hb = $heartbeats->();
ok(pgs_wait_until(sub { $heartbeats->() >= $n_hb + 2 }, 'two more heartbeats'),
	'two more heartbeats after a reload');
is(pgs_ops_status($node, 'postgres', 'ops_nats')->{pid}, $nats_pid,
	'a reload of other settings does not restart the worker');
is(pgs_count_log_lines($node, $offset, $restart_re), 0, 'nor logs a restart');

# A wrong password: the worker hands over to a new one, which waits.
# Rows are committed during the hand-over and while it waits.
$node->safe_psql('postgres',
	"ALTER SYSTEM SET pgoutput_stream.nats_password = 'wrong'; SELECT pg_reload_conf();\n"
	  . inserts('c', 501, 1000, 100));
ok(pgs_wait_for_log($node, $offset, $restart_re), 'the reload restarts the worker');
ok( pgs_wait_for_status(
		$node, 'postgres', 'ops_nats',
		"state = 'waiting for target' AND state_reason LIKE '%Authorization Violation%'
		 AND pid IS NOT NULL AND pid <> $nats_pid"),
	"a new worker waits for NATS: 'waiting for target', Authorization Violation");
$node->safe_psql('postgres', inserts('c', 1001, 1500, 100));
$st = pgs_ops_status($node, 'postgres', 'ops_nats');
cmp_ok($st->{retries}, '>', 0, 'retries counts the attempts');
cmp_ok($st->{lag_bytes}, '>', 0, 'the rows wait in the slot');
is($st->{last_error}, $st->{state_reason}, 'last_error is the reason too');
is(pgs_ops_status($node, 'postgres', 'ops_log')->{pid}, $log_pid,
	'the stream without network targets keeps its worker');

# The right password, but a URL nothing listens on: another hand-over
$nats_pid = $st->{pid};
$node->safe_psql('postgres',
	"ALTER SYSTEM SET pgoutput_stream.nats_password = 's3cret';
	 ALTER SYSTEM SET pgoutput_stream.nats_url = 'nats://127.0.0.1:$dead_port';
	 SELECT pg_reload_conf();");
ok( pgs_wait_for_status(
		$node, 'postgres', 'ops_nats',
		"state = 'waiting for target'
		 AND state_reason LIKE 'could not connect to NATS at nats://127.0.0.1:$dead_port:%'
		 AND pid <> $nats_pid"),
	'after a reload with a new URL, the worker waits for that URL');
$node->safe_psql('postgres', inserts('c', 1501, 2000, 100));

# Back to the right URL: the worker resumes by itself
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET pgoutput_stream.nats_url; SELECT pg_reload_conf();");
ok( pgs_wait_for_status(
		$node, 'postgres', 'ops_nats',
		"state = 'streaming' AND state_reason IS NULL AND pid IS NOT NULL"),
	'after a reload with the right settings, the stream streams again');
$node->safe_psql('postgres', inserts('c', 2001, 2500, 100));
ok(pgs_wait_delivered($node, 'postgres', 'ops_nats'), 'everything is in JetStream');
is(pgs_count_log_lines($node, $offset, $restart_re), 3,
	'three reloads changed the connection settings, three restarts');
is(pgs_ops_status($node, 'postgres', 'ops_log')->{pid}, $log_pid,
	'the log stream kept its worker through all reloads');

# Every row exactly once, the chain unbroken across the hand-overs
sub check_js
{
	my ($what, $last_id) = @_;
	my $d = pgs_js_dump($nats->url, 'ops', %auth);
	my @p = pgs_js_problems($d->{msgs}, 'pgs_ops_nats', heartbeats => 1);
	ok(!@p, "$what: unique ids, one chain, commit order, whole transactions, valid heartbeats")
	  or diag(join("\n", @p[ 0 .. ($#p > 19 ? 19 : $#p) ]));
	my %n;
	foreach my $m (@{ $d->{msgs} })
	{
		next unless ($m->{headers}{'Pg-Operation'} // '') eq 'insert';
		$n{$1}++ if $m->{data_raw} =~ /\\"new_tuple\\":\{\\"id\\":(\d+)[,}]/;
	}
	my @missing = grep { !$n{$_} } 1 .. $last_id;
	my @twice = grep { $n{$_} > 1 } keys %n;
	is(scalar(@missing), 0, "$what: no row is missing") or diag("missing: @missing[0 .. 9]");
	is(scalar(@twice),   0, "$what: no row is stored twice");
	is(scalar(keys %n), $last_id, "$what: $last_id rows");
	return $d;
}
$dump = check_js('after the reloads', 2500);
cmp_ok(scalar(pgs_ops_heartbeats($dump->{msgs})), '>=', 4, 'heartbeats among the events');
$st = pgs_ops_status($node, 'postgres', 'ops_nats');
is($st->{in_flight}, 0, 'nothing in flight');
ok(defined $st->{last_ack_at}, 'last_ack_at is set');
cmp_ok($st->{target_counters}{nats}, '>', 0, 'target_counters counts NATS messages');

# A restart while the last message of the JetStream stream is a heartbeat
# that confirms every event before it: the new worker resumes after it.
ok( pgs_wait_until(
		sub {
			my $d    = pgs_js_dump($nats->url, 'ops', %auth);
			my $last = $d->{msgs}[-1] or return 0;
			return 0 unless ($last->{headers}{'Pg-Operation'} // '') eq 'heartbeat';
			my ($commit) = grep { ($_->{headers}{'Pg-Operation'} // '') eq 'commit' }
			  reverse @{ $d->{msgs} };
			return pgs_lsn_num($last->{headers}{'Pg-Lsn'})
			  >= pgs_lsn_num($commit->{headers}{'Pg-Lsn'});
		},
		'a heartbeat as the last message'),
	'the last message is a heartbeat');
$nats_pid = pgs_ops_status($node, 'postgres', 'ops_nats')->{pid};
$node->safe_psql('postgres', "SELECT pg_terminate_backend($nats_pid)");
ok( pgs_wait_for_status(
		$node, 'postgres', 'ops_nats',
		"state = 'streaming' AND pid IS NOT NULL AND pid <> $nats_pid"),
	'the worker is back');
$node->safe_psql('postgres', inserts('c', 2501, 2600, 50));
ok(pgs_wait_delivered($node, 'postgres', 'ops_nats'), 'the new rows are in JetStream');
check_js('after a restart on a heartbeat', 2600);
ok(!$node->log_contains(qr/is not the only writer of JetStream stream "ops"/, $offset),
	'the chain was resumed, not given up');
timing('(5) reloads and heartbeats', $start);

# ---------------------------------------------------------------------
# (6) A slot invalidated by max_slot_wal_keep_size while NATS is down
# ---------------------------------------------------------------------
$start = time();
$node->safe_psql('postgres',
	"SELECT pgoutput_stream.drop_stream('ops_log'); SELECT pgoutput_stream.drop_stream('ops_nats');");
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_replication_slots'),
	0, 'no other slot is left to invalidate');

$node->safe_psql(
	'postgres', qq{
SELECT pgoutput_stream.create_stream('ops_lost', 'pl', targets => '{nats}',
  options => '{"subject_prefix": "lost", "nats_stream": "lost",
               "nats_url": "@{[ $lost_nats->url ]}"}');
});
ok( pgs_wait_for_status(
		$node, 'postgres', 'ops_lost',
		"state = 'waiting for target' AND state_reason LIKE 'could not connect to NATS%'
		 AND pid IS NOT NULL"),
	'ops_lost waits for its NATS server');
my $lost_pid = pgs_ops_status($node, 'postgres', 'ops_lost')->{pid};
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event_type = 'Extension' AND wait_event = 'Extension'
		 FROM pg_stat_activity WHERE pid = $lost_pid"),
	'the waiting worker waits on the Extension wait event');
$node->safe_psql('postgres', 'INSERT INTO l VALUES (1)');

$offset = pgs_log_offset($node);
$node->safe_psql('postgres',
	"ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'; SELECT pg_reload_conf();");
ok( $node->poll_query_until(
		'postgres', "SELECT setting = '1' FROM pg_settings WHERE name = 'max_slot_wal_keep_size'"),
	'max_slot_wal_keep_size is 1 MB');
ok( pgs_wait_until(
		sub {
			$node->safe_psql('postgres',
				"INSERT INTO b (v) VALUES ('next segment'); SELECT pg_switch_wal(); CHECKPOINT;");
			return $node->safe_psql('postgres',
				"SELECT wal_status FROM pgoutput_stream.stream_status WHERE name = 'ops_lost'")
			  eq 'lost';
		},
		'wal_status lost'),
	"the slot's wal_status becomes 'lost'");
ok($node->log_contains(qr/invalidating slot "pgs_ops_lost" because its restart_lsn \S+ exceeds max_slot_wal_keep_size/,
		$offset),
	'PostgreSQL logged the invalidation');
$st = pgs_ops_status($node, 'postgres', 'ops_lost');
is($st->{state}, 'waiting for target', 'the stream still waits for NATS');
is($st->{retained_wal}, undef, 'retained_wal is NULL for a lost slot');
is($st->{safe_wal_size}, undef, 'safe_wal_size is NULL for a lost slot');

$lost_nats->start;
ok(pgs_wait_for_status($node, 'postgres', 'ops_lost', "state = 'failed' AND pid IS NULL"),
	'once NATS is up, the stream reaches its slot and fails');
$st = pgs_ops_status($node, 'postgres', 'ops_lost');
is($st->{last_error}, 'replication slot "pgs_ops_lost" was invalidated', 'last_error says why');
is($st->{state_reason}, $st->{last_error}, 'and so does state_reason');
ok($st->{enabled}, 'the stream stays enabled');
like(
	slurp_file($node->logfile, $offset),
	qr/LOG:  stream "ops_lost" failed: replication slot "pgs_ops_lost" was invalidated\n.*HINT:  .*Drop the stream and create it again\./,
	'the failure is logged with the recovery as hint');

# No restart loop: the worker restarts after 1 s if it restarts at all
my $fail_re = qr/stream "ops_lost" failed: /;
my $quiet = 1;
$deadline = time() + 4;
while (time() < $deadline)
{
	$st = pgs_ops_status($node, 'postgres', 'ops_lost');
	$quiet &&= $st->{state} eq 'failed' && !defined $st->{pid}
	  && pgs_worker_count($node, 'ops_lost') == 0
	  && pgs_count_log_lines($node, $offset, $fail_re) == 1;
	usleep(200_000);
}
ok($quiet, 'for 4 s: still failed, no worker, the failure logged once');

# The documented recovery: drop the stream and create it again
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET max_slot_wal_keep_size; SELECT pg_reload_conf();");
$node->safe_psql(
	'postgres', qq{
SELECT pgoutput_stream.drop_stream('ops_lost');
SELECT pgoutput_stream.create_stream('ops_lost', 'pl', targets => '{nats}',
  options => '{"subject_prefix": "lost", "nats_stream": "lost",
               "nats_url": "@{[ $lost_nats->url ]}"}');
});
ok( pgs_wait_for_status(
		$node, 'postgres', 'ops_lost',
		"state = 'streaming' AND pid IS NOT NULL AND wal_status = 'reserved'"),
	'the stream created again streams');
$node->safe_psql('postgres', 'INSERT INTO l VALUES (2)');
ok(pgs_wait_delivered($node, 'postgres', 'ops_lost'), 'and delivers');
my @ids = map { /\\"new_tuple\\":\{\\"id\\":(\d+)[,}]/ ? $1 : () }
  map { $_->{data_raw} }
  grep { ($_->{headers}{'Pg-Operation'} // '') eq 'insert' }
  @{ pgs_js_dump($lost_nats->url, 'lost', %auth)->{msgs} };
is("@ids", '2', 'the row written after the recovery is delivered; the lost one is not');
timing('(6) invalidation', $start);

# ---------------------------------------------------------------------
# (7) DROP EXTENSION removes streams, slots and workers
# ---------------------------------------------------------------------
$node->safe_psql('postgres', 'DROP EXTENSION pgoutput_stream');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_replication_slots'),
	0, 'DROP EXTENSION dropped the slots');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pgoutput_stream worker'"),
	'and no worker runs');
$node->safe_psql('postgres', 'DROP SCHEMA pgoutput_stream');
pass('the schema left behind is empty and can be dropped');

$node->stop;
$nats->stop;
$lost_nats->stop;
note('timings: ' . join(', ', @timings) . sprintf(', total %.1f s', time() - $t0));
done_testing();
