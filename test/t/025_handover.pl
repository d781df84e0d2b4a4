
# Copyright (c) 2026, pgoutput_stream developers

# Stop, restart and handover within a bounded time, wherever the worker
# waits or works (issue 17, point 5):
#  (a) a stream replaying one large transaction: stop_stream() in the
#      middle of the replay ends the worker before the transaction is sent
#      whole; then alter_stream() while nats-server is frozen (SIGSTOP) in
#      the middle of the next large transaction: the old worker ends, the
#      new one takes over, and once NATS is thawed the stream streams;
#  (b) the worker held in a sink wait (nats-server frozen, the window of
#      unacknowledged messages full): alter_stream(), stop_stream() and
#      start_stream() work, and the stream ends up streaming with a worker;
#  (c) NATS a black hole when the worker connects (nats-server frozen: the
#      TCP connection is made, the server's INFO never comes): SIGTERM
#      (pg_terminate_backend), stop_stream() and a fast shutdown of the
#      server end the worker promptly.
#
# The acknowledgement timeout is 10 minutes and the connect timeout 60 s,
# so that nothing here ends by a timeout of the NATS client: what ends the
# waits is the stop.  A stop must take less than $bound seconds.  At the
# end of (a) and (b), JetStream holds every row exactly once, in commit
# order, with unique message ids.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgsTestUtil;
use PgsNatsUtil;

my $bound = 20;
my $nrows = 100_000;

my $t0   = time();
my $nats = PgsNatsUtil->new('handover')->start;
my $node = pgs_nats_node(
	'handover', $nats, conf => <<"EOF");
pgoutput_stream.nats_ack_timeout = '10min'
pgoutput_stream.nats_connect_timeout = '60s'
pgoutput_stream.nats_max_pending = 50
EOF
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE a_rows (id bigint PRIMARY KEY, v text);
CREATE TABLE b_rows (id bigint PRIMARY KEY, v text);
CREATE TABLE c_rows (id bigint PRIMARY KEY, v text);
CREATE PUBLICATION pa FOR TABLE a_rows;
CREATE PUBLICATION pb FOR TABLE b_rows;
CREATE PUBLICATION pc FOR TABLE c_rows;
});

my $frozen = 0;

sub freeze_nats
{
	kill('STOP', $nats->pid) or die "could not stop nats-server: $!";
	$frozen = 1;
	note('nats-server frozen (SIGSTOP)');
}

sub thaw_nats
{
	kill('CONT', $nats->pid) or die "could not continue nats-server: $!";
	$frozen = 0;
	note('nats-server thawed (SIGCONT)');
}

END
{
	kill('CONT', $nats->pid) if $frozen && $nats && $nats->pid;
}

# Messages the JetStream stream $js holds (monitoring endpoint)
sub js_messages
{
	my ($js) = @_;
	my $st = pgs_js_stream_state($nats, $js);
	return $st ? $st->{messages} : 0;
}

# Wait at most $bound seconds until stream_status of $stream satisfies
# $condition; true if it did.  Reports how long it took.
sub wait_bounded
{
	my ($stream, $condition, $what) = @_;
	my $start = time();
	my $ok = pgs_wait_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT coalesce(bool_or($condition), false) FROM pgoutput_stream.stream_status WHERE name = '$stream'"
			) eq 't';
		},
		"$stream: $condition",
		$bound);
	note(sprintf('%s: %.2f s', $what, time() - $start));
	return $ok;
}

# Whether process $pid is gone
sub gone
{
	my ($pid) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
	  eq 't';
}

# The JetStream stream $js holds the rows @$ids of $table exactly once, in
# commit order, chained, with unique message ids (pgs_js_problems), and
# nothing else
sub check_exactly_once
{
	my ($what, $js, $stream, $table, $ids) = @_;
	my $dump = pgs_js_dump($nats->url, $js);
	my $msgs = $dump->{msgs};
	is($dump->{count}, $dump->{last_seq}, "$what: every message of the JetStream stream was read");
	my @p = pgs_js_problems($msgs, "pgs_$stream");
	ok(!@p, "$what: unique message ids, commit order, chained, whole transactions")
	  or diag(scalar(@p) . " problems:\n" . join("\n", @p[ 0 .. ($#p > 19 ? 19 : $#p) ]));
	my (%count, $bad);
	foreach my $m (@$msgs)
	{
		next unless ($m->{headers}{'Pg-Operation'} // '') eq 'insert';
		if (($m->{headers}{'Pg-Table'} // '') eq $table
			&& $m->{data_raw} =~ /\\"new_tuple\\":\{\\"id\\":(\d+)[,}]/)
		{
			$count{$1}++;
		}
		else
		{
			$bad++;
		}
	}
	is($bad // 0, 0, "$what: every insert event is one of $table with its id");
	my @missing = grep { !$count{$_} } @$ids;
	my @twice = grep { $count{$_} > 1 } sort { $a <=> $b } keys %count;
	is(scalar(@missing), 0, "$what: no committed row is missing")
	  or diag("missing: @missing[0 .. ($#missing > 19 ? 19 : $#missing)]");
	is(scalar(@twice), 0, "$what: no row is stored twice")
	  or diag("twice: @twice[0 .. ($#twice > 19 ? 19 : $#twice)]");
	is(scalar(keys %count), scalar(@$ids), "$what: " . scalar(@$ids) . " rows, once each");
}

sub create_stream
{
	my ($x) = @_;
	$node->safe_psql('postgres',
		"SELECT pgoutput_stream.create_stream('s$x', 'p$x', targets => '{nats}',"
		  . " options => '{\"subject_prefix\": \"h$x\", \"nats_stream\": \"h$x\"}')");
	ok(pgs_wait_for_status($node, 'postgres', "s$x", "state = 'streaming' AND pid IS NOT NULL"),
		"stream s$x is streaming");
}

# ---------------------------------------------------------------------
# (a) one large transaction: stop_stream() in the middle of its replay;
# alter_stream() in the middle of the next one, with NATS frozen
# ---------------------------------------------------------------------
{
	my $start = time();
	create_stream('a');
	# a transaction: Begin, Relation, one Insert per row, Commit
	my $txn_msgs = $nrows + 3;

	my $offset = pgs_log_offset($node);
	my $pid = pgs_status($node, 'postgres', 'sa')->{pid};
	$node->safe_psql('postgres',
		"INSERT INTO a_rows SELECT g, 'row ' || g FROM generate_series(1, $nrows) g");
	ok(pgs_wait_until(sub { js_messages('ha') >= 1000 }, 'the replay to start'),
		'(a) the large transaction is being sent');
	$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('sa')");
	ok(wait_bounded('sa', "state = 'stopped' AND pid IS NULL", 'stop_stream during a replay'),
		"(a) stop_stream() in the middle of the replay of $nrows rows ends the worker within $bound s");
	ok(pgs_wait_until(sub { gone($pid) }, "worker $pid to end", $bound), '(a) the worker is gone');
	my $stored = js_messages('ha');
	cmp_ok($stored, '<', $txn_msgs,
		'(a) it stopped before the transaction was sent whole (JetStream holds part of it)');
	ok(pgs_log_matches($node, $offset, qr/stream "sa" stopped at [0-9A-F]+\/[0-9A-F]+/),
		'(a) the worker logged where it stopped');

	$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('sa')");
	ok(pgs_wait_for_status($node, 'postgres', 'sa', "state = 'streaming' AND pid IS NOT NULL"),
		'(a) started again, the stream streams');
	ok(pgs_wait_delivered($node, 'postgres', 'sa'), '(a) and delivers the transaction');

	# the next large transaction; NATS is frozen in the middle of its replay
	$pid = pgs_status($node, 'postgres', 'sa')->{pid};
	my $before = js_messages('ha');
	$node->safe_psql('postgres',
		"INSERT INTO a_rows SELECT g, 'row ' || g FROM generate_series($nrows + 1, 2 * $nrows) g");
	ok(pgs_wait_until(sub { js_messages('ha') >= $before + 1000 }, 'the replay to start'),
		'(a) the next large transaction is being sent');
	freeze_nats();
	$node->safe_psql('postgres',
		"SELECT pgoutput_stream.alter_stream('sa', options => '{\"nats_duplicate_window\": \"120\"}')");
	ok( wait_bounded(
			'sa', "pid IS NOT NULL AND pid <> $pid",
			'alter_stream during a replay, NATS frozen'),
		"(a) alter_stream() with NATS frozen in the middle of the replay: a new worker within $bound s");
	ok(pgs_wait_until(sub { gone($pid) }, "worker $pid to end", $bound), '(a) the old worker is gone');
	thaw_nats();
	ok(pgs_wait_for_status($node, 'postgres', 'sa', "state = 'streaming' AND pid IS NOT NULL"),
		'(a) once NATS is back, the stream streams');
	ok(pgs_wait_delivered($node, 'postgres', 'sa'), '(a) and delivers everything');
	is(pgs_worker_count($node, 'sa'), 1, '(a) one worker serves the stream');
	check_exactly_once('(a)', 'ha', 'sa', 'a_rows', [ 1 .. 2 * $nrows ]);
	note(sprintf('(a): %.1f s', time() - $start));
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('sa')");
}

# ---------------------------------------------------------------------
# (b) the worker held in a sink wait: the window of 50 unacknowledged
# messages is full and NATS is frozen
# ---------------------------------------------------------------------
{
	my $start = time();
	create_stream('b');
	my $next = 1;

	# 30 transactions of 10 rows each: 360 messages, more than the window
	my $fill = sub {
		foreach (1 .. 30)
		{
			$node->safe_psql('postgres',
				"INSERT INTO b_rows SELECT g, 'row ' || g FROM generate_series($next, $next + 9) g");
			$next += 10;
		}
	};

	# alter_stream() while the worker waits for room in the window
	my $pid = pgs_status($node, 'postgres', 'sb')->{pid};
	freeze_nats();
	$fill->();
	$node->safe_psql('postgres',
		"SELECT pgoutput_stream.alter_stream('sb', options => '{\"nats_duplicate_window\": \"120\"}')");
	ok(wait_bounded('sb', "pid IS NOT NULL AND pid <> $pid", 'alter_stream in a sink wait'),
		"(b) alter_stream() while the worker waits for NATS: a new worker within $bound s");
	ok(pgs_wait_until(sub { gone($pid) }, "worker $pid to end", $bound), '(b) the old worker is gone');
	thaw_nats();
	ok(pgs_wait_for_status($node, 'postgres', 'sb', "state = 'streaming' AND pid IS NOT NULL"),
		'(b) once NATS is back, the stream streams');
	ok(pgs_wait_delivered($node, 'postgres', 'sb'), '(b) and delivers everything');

	# stop_stream() while the worker waits for room in the window
	$pid = pgs_status($node, 'postgres', 'sb')->{pid};
	freeze_nats();
	$fill->();
	$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('sb')");
	ok(wait_bounded('sb', "state = 'stopped' AND pid IS NULL", 'stop_stream in a sink wait'),
		"(b) stop_stream() while the worker waits for NATS ends it within $bound s");
	ok(pgs_wait_until(sub { gone($pid) }, "worker $pid to end", $bound), '(b) the worker is gone');

	# started again while NATS is still frozen, then thawed
	$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('sb')");
	ok(wait_bounded('sb', 'pid IS NOT NULL', 'start_stream with NATS frozen'),
		'(b) start_stream() while NATS is frozen starts a worker');
	thaw_nats();
	ok(pgs_wait_for_status($node, 'postgres', 'sb', "state = 'streaming' AND pid IS NOT NULL"),
		'(b) once NATS is back, the stream streams');
	ok(pgs_wait_delivered($node, 'postgres', 'sb'), '(b) and delivers everything');
	is(pgs_worker_count($node, 'sb'), 1, '(b) one worker serves the stream');
	check_exactly_once('(b)', 'hb', 'sb', 'b_rows', [ 1 .. $next - 1 ]);
	note(sprintf('(b): %.1f s', time() - $start));
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('sb')");
}

# ---------------------------------------------------------------------
# (c) NATS a black hole at connect time: the TCP connection is accepted
# (by the kernel), the server's INFO never comes
# ---------------------------------------------------------------------
{
	my $start = time();
	freeze_nats();
	$node->safe_psql('postgres',
		"SELECT pgoutput_stream.create_stream('sc', 'pc', targets => '{nats}',"
		  . " options => '{\"subject_prefix\": \"hc\", \"nats_stream\": \"hc\"}')");
	ok(pgs_wait_for_status($node, 'postgres', 'sc', 'pid IS NOT NULL'),
		'(c) the worker of sc started');

	# SIGTERM: the worker ends (and is started again after restart_delay)
	my $pid = pgs_status($node, 'postgres', 'sc')->{pid};
	my $t = time();
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	ok(pgs_wait_until(sub { gone($pid) }, "worker $pid to end", $bound),
		"(c) SIGTERM ends the worker connecting to a frozen NATS within $bound s");
	note(sprintf('SIGTERM while connecting: %.2f s', time() - $t));

	# stop_stream()
	ok(pgs_wait_for_status($node, 'postgres', 'sc', "pid IS NOT NULL AND pid <> $pid"),
		'(c) the worker was started again');
	$pid = pgs_status($node, 'postgres', 'sc')->{pid};
	$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('sc')");
	ok(wait_bounded('sc', "state = 'stopped' AND pid IS NULL", 'stop_stream while connecting'),
		"(c) stop_stream() while the worker connects to a frozen NATS ends it within $bound s");
	ok(pgs_wait_until(sub { gone($pid) }, "worker $pid to end", $bound), '(c) the worker is gone');

	# a fast shutdown of the server
	$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('sc')");
	ok(pgs_wait_for_status($node, 'postgres', 'sc', "pid IS NOT NULL AND pid <> $pid"),
		'(c) the worker was started again');
	$t = time();
	$node->stop('fast', fail_ok => 1);
	my $took = time() - $t;
	cmp_ok($took, '<', $bound,
		'(c) a fast shutdown while the worker connects to a frozen NATS is prompt');
	note(sprintf('fast shutdown while connecting: %.2f s', $took));
	$node->stop('immediate', fail_ok => 1) if $took >= $bound;

	thaw_nats();
	$node->start;
	ok(pgs_wait_for_status($node, 'postgres', 'sc', "state = 'streaming' AND pid IS NOT NULL"),
		'(c) after the restart, with NATS back, the stream streams');
	$node->safe_psql('postgres',
		"INSERT INTO c_rows SELECT g, 'row ' || g FROM generate_series(1, 100) g");
	ok(pgs_wait_delivered($node, 'postgres', 'sc'), '(c) and delivers');
	check_exactly_once('(c)', 'hc', 'sc', 'c_rows', [ 1 .. 100 ]);
	note(sprintf('(c): %.1f s', time() - $start));
}

ok(!$node->log_contains(qr/terminated by signal/),
	'no process crashed')
  or diag(join("\n", grep { /terminated by signal/ } split /\n/, slurp_file($node->logfile)));

$node->stop;
$nats->stop;
note(sprintf('total %.1f s', time() - $t0));

done_testing();
