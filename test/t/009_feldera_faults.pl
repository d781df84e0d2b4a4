
# Copyright (c) 2026, pgoutput_stream developers

# The "feldera" target when Feldera misbehaves, under a workload of
# inserts, updates (some of the key) and deletes on tables with primary
# keys (so that sending a transaction again is harmless):
#  - 503 bursts, 429, connections reset mid-body, slow answers, and an
#    answer slower than the request timeout: retried, nothing lost;
#  - the server down for 20 s (killed, started again with its state): the
#    stream shows "waiting for target", then catches up;
#  - the worker killed with SIGKILL while a request hangs: the server
#    crash-restarts, the new worker sends again, nothing lost;
#  - a fast shutdown while a request hangs on a paused pipeline completes
#    promptly (the request timeout is 60 s), and nothing is lost after.
# At every step the fake's tables must equal PostgreSQL's.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgsTestUtil;
use PgsFelderaUtil;

my $fake = PgsFelderaUtil->new('f009');
$fake->start;

my $node = pgs_new_node(
	'main', conf => "restart_after_crash = on
pgoutput_stream.feldera_url = '" . $fake->url . "'
pgoutput_stream.feldera_max_retry_delay = '500ms'
pgoutput_stream.feldera_connect_timeout = '1s'
pgoutput_stream.feldera_request_timeout = '2s'
");
$node->start;

# A table spec: its name, key columns, and columns
sub spec
{
	my ($table, $key, @columns) = @_;
	return pgs_feldera_spec($table, key => $key, columns => \@columns);
}

my @specs = (
	spec('public.w1', ['id'],
		[ id => 'int',           'INT',           'int' ],
		[ v  => 'text',          'VARCHAR',       'text' ],
		[ n  => 'numeric(12,4)', 'DECIMAL(12,4)', 'decimal' ],
		[ ts => 'timestamptz',   'TIMESTAMP',     'timestamptz' ],
	),
	spec('public.w2', ['id'],
		[ id      => 'bigint', 'BIGINT',        'int' ],
		[ payload => 'jsonb',  'VARIANT',       'json' ],
		[ tags    => 'text[]', 'VARCHAR ARRAY', 'json' ],
	),
	spec('public.w3', [ 'k1', 'k2' ],
		[ k1  => 'int',  'INT',     'int' ],
		[ k2  => 'text', 'VARCHAR', 'text' ],
		[ qty => 'int',  'INT',     'int' ],
	),
);
$node->safe_psql('postgres',
	"CREATE EXTENSION pgoutput_stream;\n"
	  . join('', map { pgs_feldera_ddl($_) } @specs)
	  . "CREATE PUBLICATION pub_w FOR TABLE public.w1, public.w2, public.w3;\n");
$fake->declare('work', [ map { pgs_feldera_decl($_) } @specs ]);
$node->safe_psql('postgres',
	q{SELECT pgoutput_stream.create_stream('s_w', 'pub_w', targets => '{feldera}', options => '{"feldera_pipeline": "work"}')}
);
ok(pgs_wait_for_status($node, 'postgres', 's_w', "state = 'streaming' AND pid IS NOT NULL"),
	's_w is streaming');

# ---------------------------------------------------------------------
# The workload: transactions of 1 to 4 statements over the three tables.
# Statements work whatever rows exist, so that a batch can simply be run
# again after a crash.
# ---------------------------------------------------------------------
srand(9);
my $batches = 0;

sub statement
{
	my $t = int(rand(3));
	my $id = 1 + int(rand(300));
	my $r = rand();
	if ($t == 0)
	{
		return sprintf(
			"INSERT INTO w1 VALUES (%d, 'v%d', %.4f, now() - interval '%d s') ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, n = EXCLUDED.n, ts = EXCLUDED.ts;",
			$id, int(rand(1e6)), rand(1e6), int(rand(1e8)))
		  if $r < 0.5;
		return "UPDATE w1 SET v = v || '+', n = n + 1 WHERE id = $id;" if $r < 0.7;
		return "UPDATE w1 SET id = $id + 300 WHERE id = $id AND NOT EXISTS (SELECT FROM w1 WHERE id = $id + 300);"
		  if $r < 0.8;
		return "DELETE FROM w1 WHERE id = $id;";
	}
	if ($t == 1)
	{
		return sprintf(
			q{INSERT INTO w2 VALUES (%d, jsonb_build_object('n', %d, 'tag', 'x', 'list', jsonb_build_array(1, 'two', 3.5)), ARRAY['a', 'b%d', NULL]) ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload, tags = EXCLUDED.tags;},
			$id, int(rand(1e6)), int(rand(100)))
		  if $r < 0.5;
		return "UPDATE w2 SET payload = payload || '{\"updated\": true}', tags = tags || 'u'::text WHERE id = $id;"
		  if $r < 0.75;
		return "DELETE FROM w2 WHERE id = $id;";
	}
	my $k2 = 'key-' . int(rand(20));
	return "INSERT INTO w3 VALUES ($id % 50, '$k2', 1) ON CONFLICT (k1, k2) DO UPDATE SET qty = w3.qty + 1;"
	  if $r < 0.6;
	return "UPDATE w3 SET k2 = k2 || 'x' WHERE k1 = $id % 50 AND length(k2) < 12;" if $r < 0.7;
	return "DELETE FROM w3 WHERE k1 = $id % 50 AND k2 = '$k2';";
}

# Run $n transactions; after a crash, wait for the server and run the batch
# again
sub run_batch
{
	my ($n) = @_;
	my $sql = '';
	for (1 .. $n)
	{
		$sql .= "BEGIN;\n" . join("\n", map { statement() } 1 .. 1 + int(rand(4))) . "\nCOMMIT;\n";
	}
	$batches++;
	for my $attempt (1 .. 5)
	{
		my ($stdout, $stderr) = ('', '');
		return if $node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr) == 0;
		note("batch $batches failed (attempt $attempt): $stderr");
		$node->poll_query_until('postgres', 'SELECT true')
		  or die 'the server did not come back';
	}
	die "could not run batch $batches";
}

sub wait_equal
{
	my ($what) = @_;
	return pgs_feldera_wait_equal($node, 'postgres', $fake, 'work', \@specs);
}

sub no_faults_pending
{
	return pgs_wait_until(
		sub {
			my $f = $fake->pending_faults;
			return !@{ $f->{faults} };
		},
		'the faults to be used up');
}

# Pause the pipeline, run a batch, and wait until a request of it hangs;
# returns the fake's last sequence number from before
sub hang_a_request
{
	my $seq = $fake->last_seq;
	$fake->fault({ pause => JSON::PP::true });
	run_batch(3);
	ok( pgs_wait_until(
			sub { grep { $_->{held} && !defined $_->{status} } $fake->ingress('work', $seq) },
			'a request held by the paused pipeline'),
		'a request hangs on the paused pipeline');
	return $seq;
}

run_batch(20);
ok(wait_equal(), 'before any fault the tables are equal');
is($node->safe_psql('postgres', 'SELECT (SELECT count(*) FROM w1) > 0 AND (SELECT count(*) FROM w2) > 0 AND (SELECT count(*) FROM w3) > 0'),
	't', 'every table has rows');

# ---------------------------------------------------------------------
# 503 bursts, 429, resets mid-body, slow answers
# ---------------------------------------------------------------------
{
	my $seq = $fake->last_seq;
	my $offset = pgs_log_offset($node);
	$fake->fault({ status => 503, count => 5 });
	run_batch(15);
	$fake->fault({ status => 429, count => 3 });
	run_batch(15);
	$fake->fault({ reset => 2 });
	run_batch(15);
	$fake->fault({ status => 503, count => 3 });
	$fake->fault({ delay_ms => 300, count => 5 });
	run_batch(15);
	ok(no_faults_pending(), 'every injected fault was hit');
	run_batch(5);
	ok(wait_equal(), 'after 503 bursts, 429, resets and slow answers the tables are equal');

	my @req = $fake->ingress('work', $seq);
	my %count;
	$count{ $_->{status} // 'none' }++ foreach @req;
	note('answers: ' . join(', ', map { "$_ x $count{$_}" } sort keys %count));
	is($count{503}, 8, 'eight requests answered 503');
	is($count{429}, 3, 'three requests answered 429');
	is($count{reset}, 2, 'two requests reset mid-body');
	is(scalar(grep { $_->{delayed_ms} } @req), 5, 'five slow answers');
	is( scalar(grep { my $s = $_->{status} // ''; $s ne '200' && $s ne '503' && $s ne '429' && $s ne 'reset' } @req),
		0, 'no other answer than the injected ones and 200');
	ok( $node->log_contains(
			qr/stream "s_w" is waiting for Feldera: could not push \d+ row\S* to Feldera table "public_w\d": HTTP 503 PipelineInteractionNotDeployed: Unable to interact with pipeline/,
			$offset),
		'503: logged as waiting, with Feldera\'s error code and message');
	ok( $node->log_contains(
			qr/stream "s_w" is waiting for Feldera: could not push \d+ row\S* to Feldera table "public_w\d": HTTP 429 ApiConnectionLimit/,
			$offset),
		'429: logged as waiting');
	ok( $node->log_contains(
			qr/stream "s_w" is waiting for Feldera: could not push \d+ row\S* to Feldera table "public_w\d": (?!HTTP)\S/,
			$offset),
		'reset: logged as waiting with the transport error');
	ok($node->log_contains(qr/DETAIL:  Next attempt in \d+ ms\./, $offset), 'the next attempt is announced');
	ok(pgs_wait_for_status($node, 'postgres', 's_w', "state = 'streaming'"),
		'the stream is streaming again');
}

# An answer slower than the request timeout (2 s): the request is sent
# again.  The fake still applies the late one (as Feldera would), so only
# one transaction is in flight here: a later transaction overtaken by it
# would be overwritten (see the report of this test).
{
	my $seq = $fake->last_seq;
	my $offset = pgs_log_offset($node);
	$fake->fault({ delay_ms => 3000, count => 1 });
	$node->safe_psql('postgres', q{UPDATE w1 SET v = 'timed out once' WHERE id = (SELECT min(id) FROM w1)});
	ok( pgs_wait_until(
			sub { grep { $_->{client_gone} && ($_->{status} // '') eq '200' } $fake->ingress('work', $seq) },
			'the late request to be applied'),
		'the request that timed out is applied late by the fake');
	ok(wait_equal(), 'after a request timeout the tables are equal');
	my @req = $fake->ingress('work', $seq);
	is(scalar(@req), 2, 'the request was sent twice');
	ok($node->log_contains(qr/is waiting for Feldera: could not push 1 row\S* to Feldera table "public_w1": .*(timed out|Timeout)/i, $offset),
		'the timeout is logged');
}

# ---------------------------------------------------------------------
# Feldera down for 20 s (killed; started again on the same port with its
# state file)
# ---------------------------------------------------------------------
{
	my $offset = pgs_log_offset($node);
	run_batch(5);
	$fake->stop('KILL');
	my $down = time();
	my ($waiting, $reason, $next_batch) = (0, '', 0);
	pgs_wait_until(
		sub {
			if (time() >= $next_batch)
			{
				run_batch(5);
				$next_batch = time() + 1;
			}
			my $st = pgs_status($node, 'postgres', 's_w');
			if ($st->{state} eq 'waiting for target')
			{
				$waiting++;
				$reason = $st->{last_error} // '';
			}
			return time() - $down >= 20;
		},
		'20 s of outage',
		60);
	note(sprintf('outage: %d batches so far, waiting seen %d times, last reason: %s', $batches, $waiting, $reason));
	ok($waiting > 0, 'during the outage stream_status shows "waiting for target"');
	like($reason, qr/^could not push \d+ row\S* to Feldera table "public_w\d": .*connect/i,
		'last_error says Feldera cannot be reached');
	my $lag = $node->safe_psql('postgres',
		q{SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name = 'pgs_s_w'});
	cmp_ok($lag, '>', 0, 'the slot is not confirmed past what Feldera did not get');
	ok($node->log_contains(qr/stream "s_w" is waiting for Feldera: .*connect/i, $offset),
		'the outage is logged');

	my $restarted = time();
	$fake->start;
	run_batch(5);
	ok(wait_equal(), 'after the outage the tables are equal');
	note(sprintf('caught up %.2f s after Feldera came back', time() - $restarted));
	ok(pgs_wait_for_status($node, 'postgres', 's_w', "state = 'streaming'"),
		'the stream is streaming again');
	is_deeply($fake->violations, [], 'no contract violation recorded by the fake');
}

# ---------------------------------------------------------------------
# The worker killed with SIGKILL while its request hangs on a paused
# pipeline, during the workload: the server crash-restarts, the held
# request is still applied (before anything the new worker sends), and the
# new worker sends again from the slot's saved position
# ---------------------------------------------------------------------
{
	my $offset = pgs_log_offset($node);
	my $old_pid = pgs_status($node, 'postgres', 's_w')->{pid};
	$fake->fault({ pause => JSON::PP::true });
	run_batch(5);
	ok( pgs_wait_until(
			sub { grep { $_->{held} && !defined $_->{status} } $fake->ingress('work', 0) },
			'a request held by the paused pipeline'),
		'a request hangs on the paused pipeline');
	ok(kill('KILL', $old_pid), "worker $old_pid killed with SIGKILL");
	run_batch(5);
	run_batch(5);
	ok(pgs_wait_until(sub { $node->log_contains(qr/terminated by signal 9: Killed/, $offset) }, 'the crash'),
		'the postmaster saw the worker die');
	ok( pgs_wait_for_status(
			$node, 'postgres', 's_w',
			"state IN ('streaming', 'waiting for target') AND pid IS NOT NULL AND pid <> $old_pid"),
		'a new worker runs');
	$fake->fault({ pause => JSON::PP::false });
	run_batch(5);
	ok(wait_equal(), 'after SIGKILL of the worker the tables are equal');
	is_deeply($fake->violations, [], 'no contract violation recorded by the fake');
	is(pgs_worker_count($node, 's_w'), 1, 'one worker');
}

# ---------------------------------------------------------------------
# SIGTERM while a request hangs: a fast shutdown completes at once although
# the request timeout is 60 s
# ---------------------------------------------------------------------
{
	$node->safe_psql('postgres',
		q{ALTER SYSTEM SET pgoutput_stream.feldera_request_timeout = '60s'; SELECT pg_reload_conf();});
	ok($node->poll_query_until('postgres', 'SHOW pgoutput_stream.feldera_request_timeout', '1min'),
		'request timeout 60 s loaded');
	# a fresh worker, whose connection has the new timeout (a reload hands
	# over to one by itself since 06235f7; stop/start makes it explicit)
	my $old_pid = pgs_status($node, 'postgres', 's_w')->{pid};
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.stop_stream('s_w')});
	ok(pgs_wait_for_status($node, 'postgres', 's_w', "state = 'stopped' AND pid IS NULL"), 's_w stopped');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.start_stream('s_w')});
	ok( pgs_wait_for_status(
			$node, 'postgres', 's_w', "state = 'streaming' AND pid IS NOT NULL AND pid <> $old_pid"),
		's_w streaming again');

	my $seq = hang_a_request();
	# longer than the former 2 s timeout: the 60 s timeout is in effect
	my $held_since = time();
	pgs_wait_until(sub { time() - $held_since > 2.5 }, '2.5 s', 10);
	is_deeply([ map { $_->{status} // 'pending' } $fake->ingress('work', $seq) ], ['pending'],
		'after 2.5 s the request is still waiting, not sent again');
	my $start = time();
	$node->stop('fast');
	my $took = time() - $start;
	note(sprintf('fast shutdown took %.2f s', $took));
	cmp_ok($took, '<', 5, 'a fast shutdown does not wait for the hanging request');

	$fake->fault({ pause => JSON::PP::false });
	$node->start;
	ok(pgs_wait_for_status($node, 'postgres', 's_w', "state = 'streaming' AND pid IS NOT NULL"),
		'after the restart the stream is streaming');
	run_batch(5);
	ok(wait_equal(), 'after the shutdown during a hanging request the tables are equal');
	is_deeply($fake->violations, [], 'no contract violation recorded by the fake');
}

# ---------------------------------------------------------------------
# stop_stream() while a request hangs
# ---------------------------------------------------------------------
{
	hang_a_request();
	my $start = time();
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.stop_stream('s_w')});
	my $stopped = 0;
	while (time() - $start < 5)
	{
		$stopped = pgs_status($node, 'postgres', 's_w')->{state} eq 'stopped' and last;
		usleep(100_000);
	}
	note(sprintf('stop_stream: %s after %.2f s', $stopped ? 'stopped' : 'not stopped', time() - $start));
	ok($stopped, 'stop_stream() stops the worker within 5 s although its request hangs');
	$fake->fault({ pause => JSON::PP::false });
	ok(pgs_wait_for_status($node, 'postgres', 's_w', "state = 'stopped' AND pid IS NULL"), 's_w stopped');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.start_stream('s_w')});
	ok(pgs_wait_for_status($node, 'postgres', 's_w', "state = 'streaming' AND pid IS NOT NULL"),
		's_w streaming again');
	run_batch(5);
	ok(wait_equal(), 'after stop_stream() during a hanging request the tables are equal');
	is_deeply($fake->violations, [], 'no contract violation recorded by the fake');
	is(pgs_worker_count($node, 's_w'), 1, 'one worker');
}

$node->stop;
$fake->stop;

done_testing();
