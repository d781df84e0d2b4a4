
# Copyright (c) 2026, pgoutput_stream developers

# Exactly once into JetStream, in commit order, across failures:
#  (a) the worker killed with SIGKILL 10 times during a 50,000-row workload
#      (each kill is a crash restart of the whole server);
#  (b) nats-server down for 20 s in the middle of a workload ("waiting for
#      target" meanwhile), and a fast shutdown of PostgreSQL while NATS is
#      down, which must be prompt;
#  (c) a 3-node NATS cluster with a replicated JetStream stream, and the node
#      the worker is connected to killed during the workload;
#  (d) a stream of the same name in another (new) PostgreSQL cluster, as
#      after pg_dump/restore, writing to the same JetStream stream: it
#      fails until the operator sets nats_shared_stream for one start;
#  (e) a non-transactional logical message decoded again by a worker that
#      starts from an older slot position than the one that stored it.
#
# After each, JetStream holds every committed row exactly once, in commit
# order, whole transactions, no message id twice.

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

my $t0   = time();
my $nats = PgsNatsUtil->new('main')->start;

my $node = pgs_nats_node('main', $nats, conf => "restart_after_crash = on\n");
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

# Insert the ids $first..$last of $table in one transaction.  When the
# server restarts meanwhile (a crash restart), wait for it and run the
# transaction again: it may or may not have committed.
sub insert_range
{
	my ($table, $first, $last) = @_;
	my $sql = "INSERT INTO $table SELECT g, 'row ' || g FROM generate_series($first, $last) g
	           ON CONFLICT DO NOTHING";
	for my $attempt (1 .. 10)
	{
		my ($stdout, $stderr) = ('', '');
		my $ret = $node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr);
		return if $ret == 0;
		note("insert of $first..$last failed (attempt $attempt): $stderr");
		$node->poll_query_until('postgres', 'SELECT true')
		  or die 'the server did not come back';
	}
	die "could not insert $first..$last into $table";
}

# Check a dump of the JetStream stream $js of stream $stream: every id of
# @$ids inserted into $table exactly once, nothing else inserted, and the
# messages as pgs_js_problems wants them.
sub check_exactly_once
{
	my ($what, $dump, $stream, $table, $ids) = @_;
	my $msgs = $dump->{msgs};
	is($dump->{count}, $dump->{last_seq}, "$what: every message of the JetStream stream was read");
	is($msgs->[0]{seq}, 1, "$what: the JetStream stream starts at sequence 1")
	  if @$msgs;
	my @p = pgs_js_problems($msgs, "pgs_$stream");
	ok(!@p, "$what: unique message ids, commit order, chained, whole transactions")
	  or diag(scalar(@p) . " problems:\n" . join("\n", @p[ 0 .. ($#p > 19 ? 19 : $#p) ]));

	my (%count, $bad);
	foreach my $m (@$msgs)
	{
		next unless ($m->{headers}{'Pg-Operation'} // '') eq 'insert';
		if (($m->{headers}{'Pg-Table'} // '') ne $table)
		{
			$bad++;
			next;
		}
		# the escaped payload: {\"Insert\":{...,\"new_tuple\":{\"id\":123,...
		if ($m->{data_raw} =~ /\\"new_tuple\\":\{\\"id\\":(\d+)[,}]/)
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
	my %wanted = map { $_ => 1 } @$ids;
	my @twice = grep { $count{$_} > 1 } sort { $a <=> $b } keys %count;
	my @extra = grep { !$wanted{$_} } keys %count;
	is(scalar(@missing), 0, "$what: no committed row is missing")
	  or diag("missing: @missing[0 .. ($#missing > 19 ? 19 : $#missing)]");
	is(scalar(@twice), 0, "$what: no row is stored twice")
	  or diag("twice: @twice[0 .. ($#twice > 19 ? 19 : $#twice)]");
	is(scalar(@extra), 0, "$what: no other row");
	is(scalar(keys %count), scalar(@$ids), "$what: " . scalar(@$ids) . " rows, once each");
}

# Create stream s<x> of publication p<x> on subject prefix and JetStream
# stream f<x> (more options: $options, JSON members), and wait for its worker
sub start_stream
{
	my ($x, $options) = @_;
	$options = defined $options ? ", $options" : '';
	$node->safe_psql('postgres',
		"SELECT pgoutput_stream.create_stream('s$x', 'p$x', targets => '{nats}',"
		  . " options => '{\"subject_prefix\": \"f$x\", \"nats_stream\": \"f$x\"$options}')");
	ok(pgs_wait_for_status($node, 'postgres', "s$x", "state = 'streaming' AND pid IS NOT NULL"),
		"stream s$x is streaming");
}

# ---------------------------------------------------------------------
# (a) 10 x SIGKILL of the worker during 50,000 rows in 200 transactions
# ---------------------------------------------------------------------
{
	my $start = time();
	start_stream('a');

	my $killed = 0;
	my $last_pid = 0;
	for my $tx (0 .. 199)
	{
		my $kill = $tx % 20 == 10;

		# kill the worker that came back after the previous kill, while it
		# works on the transactions committed since and on this one
		pgs_wait_for_status($node, 'postgres', 'sa',
			"state = 'streaming' AND pid IS NOT NULL AND pid <> $last_pid")
		  or die 'the worker of sa did not come back'
		  if $kill;
		insert_range('a_rows', $tx * 250 + 1, $tx * 250 + 250);
		next unless $kill;
		my $pid = pgs_status($node, 'postgres', 'sa')->{pid};
		$killed++ if kill('KILL', $pid);
		$last_pid = $pid;
	}
	is($killed, 10, 'the worker was killed 10 times with SIGKILL');
	$node->poll_query_until('postgres', 'SELECT true') or die 'the server did not come back';
	is($node->safe_psql('postgres', 'SELECT count(*), min(id), max(id) FROM a_rows'),
		'50000|1|50000', 'every row of the workload is committed');
	ok( pgs_wait_for_status(
			$node, 'postgres', 'sa',
			"state = 'streaming' AND pid IS NOT NULL AND pid <> $last_pid"),
		'the stream runs again after the last kill');
	ok(pgs_wait_delivered($node, 'postgres', 'sa'), 'the stream delivered everything');
	my $workload = time() - $start;

	my $dump = pgs_js_dump($nats->url, 'fa');
	check_exactly_once('10 x SIGKILL', $dump, 'sa', 'a_rows', [ 1 .. 50000 ]);
	my $restarts = () = slurp_file($node->logfile) =~ /started streaming from replication slot "pgs_sa"/g;
	note(sprintf('(a): workload %.1f s, %d worker starts, %d messages, check %.1f s',
			$workload, $restarts, $dump->{count}, time() - $start - $workload));
	$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('sa')");
}

# ---------------------------------------------------------------------
# (b) NATS down for 20 s during 20,000 rows; then a fast shutdown of
# PostgreSQL while NATS is down
# ---------------------------------------------------------------------
{
	my $start = time();
	start_stream('b');

	my $tx = 0;
	insert_range('b_rows', $tx * 250 + 1, ++$tx * 250) while $tx < 25;
	my $down_at = time();
	$nats->stop;

	# keep committing, and watch the stream, for 20 s
	my (%states, %errors, @timeline);
	while (time() < $down_at + 20)
	{
		insert_range('b_rows', $tx * 250 + 1, ++$tx * 250) if $tx < 55;
		my $st = pgs_status($node, 'postgres', 'sb');
		$states{ $st->{state} }++;
		push @timeline, sprintf('%.1f s %s', time() - $down_at, $st->{state})
		  if !@timeline || $timeline[-1] !~ / \Q$st->{state}\E$/;
		$errors{ $st->{last_error} }++
		  if $st->{state} eq 'waiting for target' && defined $st->{last_error};
		usleep(100_000) if $tx >= 55;
	}
	note("states seen while NATS was down: " . join(', ', map { "$_ x $states{$_}" } sort keys %states));
	note("last_error while waiting: $_") foreach sort keys %errors;
	note("states after NATS stopped: " . join(', ', @timeline));
	ok($states{'waiting for target'}, "stream_status showed 'waiting for target' during the outage");
	ok(scalar(grep { /NATS/ } keys %errors), 'with the reason in last_error');
	is($tx, 55, 'the workload went on while NATS was down');

	$nats->start;
	insert_range('b_rows', $tx * 250 + 1, ++$tx * 250) while $tx < 80;
	ok(pgs_wait_for_status($node, 'postgres', 'sb', "state = 'streaming'"),
		'the stream streams again once NATS is back');
	ok(pgs_wait_delivered($node, 'postgres', 'sb'), 'the stream delivered everything');
	check_exactly_once('NATS down for 20 s', pgs_js_dump($nats->url, 'fb'), 'sb', 'b_rows',
		[ 1 .. 20000 ]);

	# a fast shutdown while NATS is down and events wait
	$nats->stop;
	insert_range('b_rows', $tx * 250 + 1, ++$tx * 250) while $tx < 84;
	ok( pgs_wait_for_status(
			$node, 'postgres', 'sb', "state = 'waiting for target'"),
		'NATS down again: waiting for target');
	my $stop_start = time();
	$node->stop('fast');
	my $took = time() - $stop_start;
	cmp_ok($took, '<', 10, 'pg_ctl stop -m fast while NATS is down is prompt');
	note(sprintf('fast shutdown took %.2f s', $took));

	$nats->start;
	$node->start;
	ok(pgs_wait_for_status($node, 'postgres', 'sb', "state = 'streaming'"),
		'after the restart of both, the stream streams');
	ok(pgs_wait_delivered($node, 'postgres', 'sb'), 'the stream delivered everything');
	check_exactly_once('NATS down, then a fast shutdown', pgs_js_dump($nats->url, 'fb'),
		'sb', 'b_rows', [ 1 .. 21000 ]);
	note(sprintf('(b): %.1f s', time() - $start));
	$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('sb')");
}

# ---------------------------------------------------------------------
# (c) a 3-node NATS cluster, a stream with 3 replicas, and the server the
# worker is connected to killed during the workload
# ---------------------------------------------------------------------
{
	my $start = time();
	my @cluster = pgs_nats_cluster(3);
	$_->start(wait => 'js-enabled') foreach @cluster;
	ok(pgs_nats_wait_cluster(@cluster), 'the NATS cluster has a JetStream meta leader');
	note(sprintf('cluster formed in %.1f s', time() - $start));
	my $urls = join(',', map { $_->url } @cluster);

	start_stream('c', qq{"nats_replicas": "3", "nats_url": "$urls"});
	my ($info, $err) = pgs_js_admin($urls, {}, 'info', 'fc');
	is($info->{config}{num_replicas}, 3, 'the JetStream stream fc has 3 replicas');

	my $tx = 0;
	insert_range('c_rows', $tx * 250 + 1, ++$tx * 250) while $tx < 15;
	my ($victim) = grep { grep { $_ eq 'pgoutput_stream sc' } $_->client_names } @cluster;
	ok($victim, 'the server the worker is connected to is known');
	$victim //= $cluster[0];
	note('killing ' . $victim->name);
	$victim->stop('KILL');
	insert_range('c_rows', $tx * 250 + 1, ++$tx * 250) while $tx < 40;

	ok(pgs_wait_for_status($node, 'postgres', 'sc', "state = 'streaming'"),
		'the stream streams after the loss of a NATS server');
	ok(pgs_wait_delivered($node, 'postgres', 'sc'), 'the stream delivered everything');
	my @others = grep { $_->pid } @cluster;
	ok( pgs_wait_until(
			sub { grep { grep { $_ eq 'pgoutput_stream sc' } $_->client_names } @others },
			'the worker on a surviving server'),
		'the worker is connected to a surviving server');

	# The killed server comes back and catches up.  (Reading from the
	# survivors alone is not reliable: the ordered consumer of js_dump.mjs
	# may be placed on the dead peer of the stream and never deliver.)
	$victim->start;
	ok(pgs_nats_wait_cluster(@cluster), 'the killed NATS server is back in the cluster');
	check_exactly_once('cluster node killed', pgs_js_dump($urls, 'fc'),
		'sc', 'c_rows', [ 1 .. 10000 ]);
	note(sprintf('(c): %.1f s', time() - $start));
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('sc')");
	$_->stop foreach grep { $_->pid } @cluster;
}

# ---------------------------------------------------------------------
# (d) a new cluster with a stream of the same name (as after pg_dump and
# restore: the stream's row is dumped, the slot is created again) writing
# to the JetStream stream the old one wrote to.  Its WAL positions are
# lower than the old cluster's.
# ---------------------------------------------------------------------
{
	$node->safe_psql('postgres', q{
CREATE TABLE d_rows (id bigint PRIMARY KEY, v text);
CREATE PUBLICATION pd FOR TABLE d_rows;
SELECT pgoutput_stream.create_stream('sd', 'pd', targets => '{nats}',
  options => '{"subject_prefix": "fd", "nats_stream": "fd"}');
});
	ok(pgs_wait_for_status($node, 'postgres', 'sd', "state = 'streaming'"), 'stream sd is streaming');
	insert_range('d_rows', 1, 1);
	ok(pgs_wait_delivered($node, 'postgres', 'sd'), 'the old cluster delivered');
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('sd')");

	my $new = pgs_nats_node('new', $nats);
	$new->start;
	$new->safe_psql('postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE d_rows (id bigint PRIMARY KEY, v text);
CREATE PUBLICATION pd FOR TABLE d_rows;
SELECT pgoutput_stream.create_stream('sd', 'pd', targets => '{nats}',
  options => '{"subject_prefix": "fd", "nats_stream": "fd"}');
INSERT INTO d_rows VALUES (2, 'new cluster'), (3, 'new cluster');
});
	# The old cluster's message is last: the new cluster refuses to write
	# after another cluster's messages unless told to.
	ok(pgs_wait_for_status($new, 'postgres', 'sd', "state = 'failed'"),
		'stream sd of the new cluster fails: the last message is another cluster\'s');
	like(
		pgs_stream_state($new, 'postgres', 'sd')->{last_error},
		qr/^JetStream stream "fd" has another writer: its last message under "fd\.>" .* was written by database cluster \d+, not by this one/,
		'its last_error names the other cluster');
	my $offset = pgs_log_offset($new);
	$new->safe_psql('postgres', q{
SELECT pgoutput_stream.alter_stream('sd', options => '{"nats_shared_stream": true}');
SELECT pgoutput_stream.start_stream('sd');
});
	ok(pgs_wait_for_status($new, 'postgres', 'sd', "state = 'streaming'"),
		'with nats_shared_stream, stream sd of the new cluster is streaming');
	ok(pgs_wait_delivered($new, 'postgres', 'sd'), 'the new cluster confirmed its slot');
	ok(pgs_wait_for_log($new, $offset, qr/stream "sd" is not the only writer of JetStream stream "fd"; messages are not chained/),
		'it published unchained');

	# Its own message is last now: without the option it chains again
	$offset = pgs_log_offset($new);
	my $old_pid = pgs_stream_state($new, 'postgres', 'sd')->{pid};
	$new->safe_psql('postgres',
		q{SELECT pgoutput_stream.alter_stream('sd', options => '{"nats_shared_stream": null}')});
	ok( pgs_wait_for_status(
			$new, 'postgres', 'sd', "state = 'streaming' AND pid IS NOT NULL AND pid <> $old_pid"),
		'the stream restarted without the option');
	$new->safe_psql('postgres', "INSERT INTO d_rows VALUES (4, 'new cluster, chained')");
	ok(pgs_wait_delivered($new, 'postgres', 'sd'), 'the option removed, the new cluster delivers');
	ok(!$new->log_contains(qr/is not the only writer of JetStream stream "fd"/, $offset),
		'and chains its messages again');
	my $dump = pgs_js_dump($nats->url, 'fd');
	my @ids = map { $_->{data_raw} =~ /\\"id\\":(\d+)/ ? $1 : () }
	  grep { ($_->{headers}{'Pg-Operation'} // '') eq 'insert' } @{ $dump->{msgs} };
	is_deeply(\@ids, [ 1, 2, 3, 4 ],
		'the rows of the new cluster are in JetStream after those of the old one');
	my @new_msgs = grep { ($_->{headers}{'Pg-Operation'} // '') eq 'insert' } @{ $dump->{msgs} };
	ok(defined $new_msgs[-1]{headers}{'Nats-Expected-Last-Msg-Id'}
		  || defined $new_msgs[-1]{headers}{'Nats-Expected-Last-Sequence'},
		'the last row was published chained');
	$new->stop;
}

# ---------------------------------------------------------------------
# (e) a non-transactional logical message, stored by a worker that started
# after an error (from the slot's position in memory), decoded again after
# a crash restart by a worker that starts from the older position on disk:
# it must keep its message id, and be stored once
# ---------------------------------------------------------------------
{
	my $offset0 = pgs_log_offset($node);
	$node->safe_psql('postgres', q{
ALTER SYSTEM SET pgoutput_stream.slot_save_interval = '1h';
SELECT pg_reload_conf();
CREATE TABLE e_rows (id bigint PRIMARY KEY, v text);
CREATE PUBLICATION pe FOR TABLE e_rows;
SELECT pgoutput_stream.create_stream('se', 'pe', targets => '{nats}',
  options => '{"subject_prefix": "fe", "nats_stream": "fe"}');
});
	ok(pgs_wait_for_status($node, 'postgres', 'se', "state = 'streaming' AND pid IS NOT NULL"),
		'stream se is streaming');
	my $start_re = qr/stream "se" started streaming from replication slot "pgs_se" at (\S+)/;
	my ($slot_start) = map { $_->[0] } pgs_wait_for_log($node, $offset0, $start_re);
	insert_range('e_rows', 1, 10);
	ok(pgs_wait_delivered($node, 'postgres', 'se'), 'the 10 rows are delivered');

	# an error restart: the next worker starts after the 10 rows
	my $pid = pgs_status($node, 'postgres', 'se')->{pid};
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	ok( pgs_wait_for_status(
			$node, 'postgres', 'se', "state = 'streaming' AND pid IS NOT NULL AND pid <> $pid"),
		'the worker runs again after pg_terminate_backend');
	$pid = pgs_status($node, 'postgres', 'se')->{pid};
	my $msg_lsn = $node->safe_psql('postgres',
		"SELECT pg_logical_emit_message(false, 'hb', 'only once')");
	ok(pgs_js_wait_messages($nats, 'fe', 14), 'the message is stored in JetStream');

	# a crash restart: the slot on disk is still where it was created
	my $offset = pgs_log_offset($node);
	ok(kill('KILL', $pid), 'the worker is killed with SIGKILL');
	$node->poll_query_until('postgres', 'SELECT true') or die 'the server did not come back';
	my @starts = pgs_wait_for_log($node, $offset, $start_re);

	# The slot is saved to disk when its restart position moves, which the
	# server may do at any time; the replay covers the message only if the
	# saved position is before it.
  SKIP:
	{
		skip "the slot was saved past the message ($starts[0][0]); no replay to check", 1
		  unless $node->safe_psql('postgres',
			"SELECT '$starts[0][0]'::pg_lsn <= '$msg_lsn'::pg_lsn") eq 't';
		cmp_ok($starts[0][0], 'ne', '', 'after the crash restart, the worker decodes the message again'
			  . " (from $starts[0][0]; slot created at $slot_start)");
	}
	insert_range('e_rows', 11, 11);
	ok(pgs_wait_delivered($node, 'postgres', 'se'), 'the next row is delivered');

	my $dump = pgs_js_dump($nats->url, 'fe');
	is( scalar(grep { $_->{subject} eq 'fe.messages.hb' } @{ $dump->{msgs} }),
		1, 'the non-transactional message is stored once');
	check_exactly_once('error restart, then crash restart', $dump, 'se', 'e_rows', [ 1 .. 11 ]);
	$node->safe_psql('postgres', q{
ALTER SYSTEM RESET pgoutput_stream.slot_save_interval;
SELECT pg_reload_conf();
SELECT pgoutput_stream.drop_stream('se');
});
}

ok(!$node->log_contains(qr/terminated by signal (?!9)/),
	'no process crashed, other than the workers killed with SIGKILL')
  or diag(join("\n", grep { /terminated by signal/ } split /\n/, slurp_file($node->logfile)));

$node->stop;
$nats->stop;
note(sprintf('total %.1f s', time() - $t0));

done_testing();
