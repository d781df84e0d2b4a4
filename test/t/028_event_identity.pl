
# Copyright (c) 2026, pgoutput_stream developers

# The event identity (src/event_id.c): each case below made the first
# versions skip events that JetStream never stored, as "already stored",
# through a message id or the resume point.  Each is reproduced
# deterministically; afterwards JetStream holds every event once.
#
#  (a) alter_stream on a stream whose transaction was half stored: JetStream
#      refused a message (too large), the stream restarted in a loop, and
#      alter_stream changed the tables it publishes.  Ids counted the events
#      the stream emitted, so the replay was numbered anew, and the resume
#      point (the last stored message) covered the row that was never
#      stored.  Positions now count pgoutput's changes before the filters.
#  (b) the initial snapshot and a transaction whose commit record starts
#      exactly at the slot's start: the snapshot borrowed that LSN as its
#      commit LSN and numbered from 0, so the transaction's messages had the
#      snapshot's ids and JetStream dropped them as duplicates.  The
#      snapshot's ids are now in a namespace of their own.
#  (c) a stream whose slot vanished: the worker made a new slot at the
#      current position, skipping everything since.  It now fails, and
#      streams again once the operator has made the slot.
#  (d) a file-level copy of the server, started after the original had
#      stored more in JetStream (same system identifier, same timeline),
#      whose WAL then grew past JetStream's last message: its transactions
#      got LSNs below that message's and were skipped as stored.  The last
#      stored message is now checked against the WAL (the commit of its
#      transaction must be there), and the stream fails, naming it.
#  (e) the same copy, promoted to a new timeline (as after a point-in-time
#      restore): the timeline is part of every id, so the new timeline's
#      transactions are stored; and the events before the switch point,
#      which both histories share and JetStream stored, are not stored a
#      second time after the duplicate window.
#  (f) heartbeats: a crash restart with a heartbeat as the last message,
#      beyond the duplicate window: nothing is stored twice.
#  (g) a stream that ran unchained (nats_shared_stream) has JetStream store
#      messages after one it refused; its next life, chained again, took its
#      last message for proof that everything before was stored.  Messages
#      published unchained now say so (Pg-Unchained), and are no resume
#      point.
#  (h) the snapshot's Commit stored, and the worker terminated before it
#      recorded the snapshot as delivered: the next worker took the whole
#      snapshot again.  It now records it as delivered.
#  (i) ... but not when that Commit is an earlier stream's with the same
#      slot name (a stream created again), whose snapshot would then never
#      be sent.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;
use PgsNatsUtil;

my $nats = PgsNatsUtil->new('identity')->start;
my $node = pgs_nats_node('identity', $nats);
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE a (id int PRIMARY KEY, v text);
CREATE TABLE b (id int PRIMARY KEY, v text);
CREATE TABLE c (id int PRIMARY KEY, v text);
CREATE TABLE d (id int PRIMARY KEY, v text);
CREATE PUBLICATION pab FOR TABLE a, b;
CREATE PUBLICATION pc FOR TABLE c;
CREATE PUBLICATION pd FOR TABLE d;
});

# The messages of a JetStream stream: [subject, operation, row id, snapshot?, id]
sub messages
{
	my ($stream) = @_;
	my $dump = pgs_js_dump($nats->url, $stream);
	my @out;
	foreach my $m (@{ $dump->{msgs} })
	{
		my (undef, $json) = pgs_msg_payload($m);
		my ($kind) = keys %{ $json // {} };
		my $row = $kind && ref($json->{$kind}) eq 'HASH' && $json->{$kind}{new_tuple}
		  ? $json->{$kind}{new_tuple}{id} : undef;
		push @out, {
			subject  => $m->{subject},
			op       => $m->{headers}{'Pg-Operation'} // '',
			row      => $row,
			snapshot => ($m->{headers}{'Pg-Snapshot'} // '') eq 'true',
			lsn      => $m->{headers}{'Pg-Commit-Lsn'} // '',
			id       => $m->{id} // '',
			msg      => $m,
		};
	}
	return \@out;
}

# Set the largest message JetStream stream $js stores (-1: no limit)
sub set_max_msg_size
{
	my ($js, $bytes, $what) = @_;
	my ($info, $err) = pgs_js_admin($nats->url, undef, 'max-msg-size', $js, $bytes);
	ok($info && $info->{config}{max_msg_size} == $bytes, $what) or diag($err);
}

# ---------------------------------------------------------------------
# (a) alter_stream after a half-stored transaction
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.create_stream('alt', 'pab', targets => '{nats}',
	options => '{"subject_prefix": "alt", "nats_stream": "alt_js"}');
INSERT INTO a VALUES (0, 'warm-up');
});
ok(pgs_wait_delivered($node, 'postgres', 'alt'), '(a) the first row is delivered');

# JetStream refuses messages over 2000 bytes: the row of b below
set_max_msg_size('alt_js', 2000, '(a) the JetStream stream takes messages up to 2000 bytes');
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO a VALUES (1, 'small');
INSERT INTO b VALUES (1, repeat('x', 5000));
COMMIT;
});
ok( pgs_wait_until(
		sub { pgs_stream_state($node, 'postgres', 'alt')->{last_error} =~ /could not store events/ },
		'the refusal'),
	'(a) JetStream refused the large row; the stream restarts')
  or diag(pgs_stream_state($node, 'postgres', 'alt')->{last_error});
my @stored = map { "$_->{op} $_->{subject}" } @{ messages('alt_js') };
ok((grep { $_ eq 'insert alt.public.a.insert' } @stored) && !(grep { /\.b\.insert/ } @stored),
	'(a) JetStream holds the transaction up to the row of a, not the row of b')
  or diag(explain \@stored);

# the stream leaves table a out from now on, and JetStream takes the row
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.alter_stream('alt', options => '{"exclude_tables": ["public.a"]}');
});
set_max_msg_size('alt_js', -1, '(a) the JetStream stream takes messages of any size again');
$node->safe_psql('postgres', "INSERT INTO b VALUES (2, 'after')");
ok(pgs_wait_delivered($node, 'postgres', 'alt', 60), '(a) the stream delivers again');
my $msgs = messages('alt_js');
my @b_rows = map { $_->{row} } grep { $_->{subject} eq 'alt.public.b.insert' } @$msgs;
is_deeply(\@b_rows, [ 1, 2 ],
	'(a) JetStream holds the row of b that was refused before alter_stream, once, and the next one');
is_deeply([ pgs_js_problems([ map { $_->{msg} } @$msgs ], 'pgs_alt', filtered => 1) ], [],
	'(a) message ids unique, chained, in commit order');

# ---------------------------------------------------------------------
# (b) a transaction whose commit record starts at the snapshot's LSN
# ---------------------------------------------------------------------
# The stream's slot is made by hand and advanced to the start of the
# commit record of a transaction, which the snapshot then sees (it reads
# the tables as they are) and decoding delivers too (it starts at the
# slot's position, and a commit record at that position is decoded).
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.create_stream('probe', 'pc', start => false);
SELECT pgoutput_stream.create_stream('snap', 'pc', targets => '{nats}', start => false, snapshot => true,
	options => '{"subject_prefix": "snap", "nats_stream": "snap_js"}');
SELECT pg_create_logical_replication_slot('pgs_snap', 'pgoutput');
INSERT INTO c VALUES (1, 'at the slot start');
});
my ($begin) = grep { /"Begin"/ }
  split /\n/, $node->safe_psql('postgres', "SELECT payload FROM pgoutput_stream.peek('probe', 10)");
my ($commit_lsn) = ($begin // '') =~ m{"lsn":"([0-9A-F]+/[0-9A-F]+)"};
ok($commit_lsn, "(b) the transaction's commit record starts at $commit_lsn") or diag($begin);
is($node->safe_psql('postgres',
		"SELECT pg_replication_slot_advance('pgs_snap', '$commit_lsn')::text LIKE '%$commit_lsn%'"),
	't', "(b) the stream's slot starts at that LSN");
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.drop_stream('probe');
SELECT pgoutput_stream.start_stream('snap');
});
ok(pgs_wait_for_status($node, 'postgres', 'snap', "state = 'streaming'"), '(b) the snapshot was sent');
$node->safe_psql('postgres', "INSERT INTO c VALUES (2, 'after')");
ok(pgs_wait_delivered($node, 'postgres', 'snap'), '(b) the stream delivers');
$msgs = messages('snap_js');
my @rows = map { ($_->{snapshot} ? 'snapshot ' : 'change ') . $_->{row} }
  grep { $_->{op} eq 'insert' } @$msgs;
is_deeply(\@rows, [ 'snapshot 1', 'change 1', 'change 2' ],
	'(b) JetStream holds the row in the snapshot and as the change at the slot start, then the next change');
# (the snapshot's Begin, Relation and Commit have no Pg-Snapshot header)
my @at_start = grep { $_->{id} !~ /^pgs_snap:t\d+s\d+:/ && $_->{lsn} eq $commit_lsn } @$msgs;
is_deeply([ map { $_->{op} } @at_start ], [ qw(begin relation insert commit) ],
	'(b) the transaction at the slot start is whole in JetStream');
is_deeply([ pgs_js_problems([ map { $_->{msg} } @$msgs ], 'pgs_snap') ], [],
	'(b) message ids unique, chained, in commit order');

# ---------------------------------------------------------------------
# (c) the slot of a stream vanished
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.create_stream('gone', 'pd', targets => '{nats}',
	options => '{"subject_prefix": "gone", "nats_stream": "gone_js"}');
INSERT INTO d VALUES (1, 'before');
});
ok(pgs_wait_delivered($node, 'postgres', 'gone'), '(c) the first row is delivered');
$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('gone')");
ok(pgs_wait_for_status($node, 'postgres', 'gone', "state = 'stopped'"), '(c) the stream stopped');
$node->safe_psql('postgres', q{
SELECT pg_drop_replication_slot('pgs_gone');
INSERT INTO d VALUES (2, 'while the slot was missing');
SELECT pgoutput_stream.start_stream('gone');
});
ok(pgs_wait_for_status($node, 'postgres', 'gone', "state = 'failed'"), '(c) the stream fails');
like(pgs_stream_state($node, 'postgres', 'gone')->{last_error},
	qr/^replication slot "pgs_gone" does not exist$/, '(c) last_error says the slot does not exist');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgs_gone'"),
	'0', '(c) no slot was made behind the operator\'s back');
# the operator accepts the loss: a new slot, and the stream goes on from now
$node->safe_psql('postgres', q{
SELECT pg_create_logical_replication_slot('pgs_gone', 'pgoutput');
SELECT pgoutput_stream.start_stream('gone');
INSERT INTO d VALUES (3, 'after');
});
ok(pgs_wait_delivered($node, 'postgres', 'gone'), '(c) with a new slot, the stream delivers again');
is_deeply([ map { $_->{row} } grep { $_->{op} eq 'insert' } @{ messages('gone_js') } ], [ 1, 3 ],
	'(c) JetStream holds the rows before and after');

# ---------------------------------------------------------------------
# (d) a file-level copy of the server, older than JetStream's contents
# ---------------------------------------------------------------------
# The stream is stopped when the copy is taken, with rows 2-10 not yet
# delivered; the original then delivers them and 2000 more.
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.drop_stream(name) FROM pgoutput_stream.streams;
CREATE TABLE e (id int PRIMARY KEY, v text);
CREATE PUBLICATION pe FOR TABLE e;
SELECT pgoutput_stream.create_stream('copy', 'pe', targets => '{nats}',
	options => '{"subject_prefix": "copy", "nats_stream": "copy_js", "nats_duplicate_window": 1}');
INSERT INTO e VALUES (1, 'before the copy');
});
ok(pgs_wait_delivered($node, 'postgres', 'copy'), '(d) the first row is delivered');
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.stop_stream('copy');
INSERT INTO e SELECT g, 'in the copy, not yet delivered' FROM generate_series(2, 10) g;
});
$node->stop;
$node->backup_fs_cold('cold');
$node->start;
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.start_stream('copy');
INSERT INTO e SELECT g, 'after the copy' FROM generate_series(11, 2010) g;
});
ok(pgs_wait_delivered($node, 'postgres', 'copy'), '(d) the original delivers rows 2-2010');
my $original = messages('copy_js');
my $last_stored = $original->[-1]{lsn};
$node->stop;

# The copy writes past the original's last stored message before its stream
# starts: LSNs alone do not tell the copy's transactions from the original's
my $copy = PostgreSQL::Test::Cluster->new('identity_copy');
$copy->init_from_backup($node, 'cold');
$copy->start;
$copy->safe_psql('postgres',
	join('', map { "INSERT INTO e VALUES ($_, 'written on the copy');\n" } 5001 .. 8000));
ok($copy->safe_psql('postgres', "SELECT pg_current_wal_lsn() > '$last_stored'") eq 't',
	"(d) the copy's WAL is past the original's last stored transaction ($last_stored)");
$copy->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('copy')");
ok(pgs_wait_for_status($copy, 'postgres', 'copy', "state IN ('failed', 'streaming')"),
	'(d) the copy\'s stream starts');
ok(pgs_wait_delivered_or_error($copy, 'postgres', 'copy'), '(d) ... and delivers or fails');
my $st = pgs_stream_state($copy, 'postgres', 'copy');
is($st->{state}, 'failed', '(d) on the copy, the stream fails');
like($st->{last_error}, qr/^JetStream stream "copy_js" holds message "pgs_copy:t1:[0-9A-F]+\/[0-9A-F]+:\d+", which this server's WAL does not have$/,
	'(d) last_error names the message the copy does not have');
is(scalar(@{ messages('copy_js') }), scalar(@$original), '(d) nothing of the copy was stored');
$copy->stop;

# ---------------------------------------------------------------------
# (e) the copy promoted to a new timeline
# ---------------------------------------------------------------------
# Rows 2-10 are in both histories and were stored (long enough ago for
# JetStream's duplicate window to have passed); the original's later rows
# are not in the promoted copy's history.
my $promoted = PostgreSQL::Test::Cluster->new('identity_promoted');
$promoted->init_from_backup($node, 'cold');
$promoted->set_standby_mode;
$promoted->start;
$promoted->promote;
$promoted->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the copy did not leave recovery';
$promoted->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('copy')");
ok(pgs_wait_for_status($promoted, 'postgres', 'copy', "state = 'streaming'"),
	'(e) on the promoted copy, the stream streams');
$promoted->safe_psql('postgres', "INSERT INTO e VALUES (6000, 'written on timeline 2')");
ok(pgs_wait_delivered($promoted, 'postgres', 'copy'), '(e) the stream delivers');
$msgs = messages('copy_js');
my %count;
$count{ $_->{row} }++ foreach grep { $_->{op} eq 'insert' } @$msgs;
is_deeply([ grep { $count{$_} != 1 } sort { $a <=> $b } keys %count ], [],
	'(e) no row is stored twice (rows 2-10, in both histories, are not sent again)');
my @t2 = grep { $_->{op} eq 'insert' && ($_->{row} // 0) == 6000 } @$msgs;
is(scalar(@t2), 1, '(e) JetStream holds the row written on the new timeline, once');
like($t2[0] ? $t2[0]{id} : '', qr/^pgs_copy:t2:/, '(e) its id names timeline 2');
$promoted->stop;

# ---------------------------------------------------------------------
# (f) heartbeats, a crash restart and the duplicate window
# ---------------------------------------------------------------------
$node->start;
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.drop_stream('copy');
CREATE TABLE h (id int PRIMARY KEY, v text);
CREATE PUBLICATION ph FOR TABLE h;
SELECT pgoutput_stream.create_stream('hb', 'ph', targets => '{nats}',
	options => '{"subject_prefix": "hb", "nats_stream": "hb_js", "heartbeat_interval": 1,
	             "nats_duplicate_window": 1}');
});
ok(pgs_wait_for_status($node, 'postgres', 'hb', "state = 'streaming'"), '(f) the stream streams');
for my $round (1 .. 3)
{
	$node->safe_psql('postgres', "INSERT INTO h VALUES ($round, 'round $round')");
	ok(pgs_wait_delivered($node, 'postgres', 'hb'), "(f) round $round: the row is delivered");
	# a heartbeat after the row is the last message
	ok( pgs_wait_until(
			sub { my $m = messages('hb_js'); @$m && $m->[-1]{op} eq 'heartbeat' },
			'a heartbeat after the row'),
		"(f) round $round: a heartbeat is the last message");
	# beyond the duplicate window: JetStream would store a replay again
	sleep(2);
	$node->stop('immediate');
	$node->start;
}
$node->safe_psql('postgres', "INSERT INTO h VALUES (4, 'after the crashes')");
ok(pgs_wait_delivered($node, 'postgres', 'hb', 60), '(f) the last row is delivered');
$msgs = messages('hb_js');
is_deeply([ map { $_->{row} } grep { $_->{op} eq 'insert' } @$msgs ], [ 1, 2, 3, 4 ],
	'(f) JetStream holds every row once');
is_deeply([ pgs_js_problems([ map { $_->{msg} } @$msgs ], 'pgs_hb') ], [],
	'(f) message ids unique, chained, whole transactions');

# ---------------------------------------------------------------------
# (g) a life that ran unchained, then one that runs chained
# ---------------------------------------------------------------------
# A JetStream stream shared on purpose (nats_shared_stream) with another
# writer, whose message is last: the stream publishes unchained, and
# JetStream stores messages after one it refused.  The next life finds its
# own message last and chains again; that message proves nothing about
# the ones before it.
my ($ok, $e) = pgs_js_admin($nats->url, undef, 'add', 'sh_js', 'file', 'sh.>', 'other.>');
ok($ok, '(g) a JetStream stream for the stream and another writer') or diag($e);
($ok, $e) = pgs_js_admin($nats->url, undef, 'publish', 'other.x', 'hello', 'foreign-1');
ok($ok, '(g) the other writer\'s message is last') or diag($e);
$node->safe_psql('postgres', q{
CREATE TABLE ga (id int PRIMARY KEY, v text);
CREATE TABLE gb (id int PRIMARY KEY, v text);
CREATE PUBLICATION pg FOR TABLE ga, gb;
SELECT pgoutput_stream.create_stream('sh', 'pg', targets => '{nats}',
	options => '{"subject_prefix": "sh", "nats_stream": "sh_js", "nats_shared_stream": true}');
INSERT INTO ga VALUES (0, 'warm-up');
});
ok(pgs_wait_delivered($node, 'postgres', 'sh'), '(g) the first row is delivered, unchained');
set_max_msg_size('sh_js', 2000, '(g) the JetStream stream takes messages up to 2000 bytes');
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO ga VALUES (1, 'small');
INSERT INTO gb VALUES (1, repeat('x', 5000));
INSERT INTO ga VALUES (2, 'small');
COMMIT;
});
ok( pgs_wait_until(
		sub { pgs_stream_state($node, 'postgres', 'sh')->{last_error} =~ /could not store events/ },
		'the refusal'),
	'(g) JetStream refused the large row, and stored the later ones');
set_max_msg_size('sh_js', -1, '(g) the JetStream stream takes messages of any size again');
$node->safe_psql('postgres', "INSERT INTO ga VALUES (3, 'after')");
ok(pgs_wait_delivered($node, 'postgres', 'sh', 60), '(g) the stream delivers again');
$msgs = messages('sh_js');
is(scalar(grep { $_->{subject} eq 'sh.public.gb.insert' } @$msgs), 1,
	'(g) JetStream holds the refused row of gb');
is_deeply([ map { $_->{row} } grep { $_->{subject} eq 'sh.public.ga.insert' && $_->{row} == 3 } @$msgs ], [3],
	'(g) and the next transaction once');

# ---------------------------------------------------------------------
# (h) the snapshot's Commit stored, the worker gone before recording it
# ---------------------------------------------------------------------
# The worker records the delivered snapshot in its row of
# pgoutput_stream.streams: a session holding that row makes it wait there,
# with every message stored, and the worker is terminated meanwhile.
$node->safe_psql('postgres', q{
CREATE TABLE sn (id int PRIMARY KEY, v text);
INSERT INTO sn SELECT g, 'row ' || g FROM generate_series(1, 200000) g;
CREATE PUBLICATION psn FOR TABLE sn;
SELECT pgoutput_stream.create_stream('snapc', 'psn', targets => '{nats}', snapshot => true,
	options => '{"subject_prefix": "snapc", "nats_stream": "snapc_js"}');
});
ok( pgs_wait_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT coalesce(snapshot_rows, 0) > 0 FROM pgoutput_stream.stream_status WHERE name = 'snapc'") eq 't';
		},
		'the snapshot under way'),
	'(h) the snapshot is under way');
my $holder = $node->background_psql('postgres');
$holder->query_safe(
	"BEGIN; SELECT 1 FROM pgoutput_stream.streams WHERE name = 'snapc' FOR UPDATE;");
my $snap_pid = pgs_status($node, 'postgres', 'snapc')->{pid};
ok( $node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $snap_pid"),
	'(h) the worker waits to record the delivered snapshot');
my $offset_h = pgs_log_offset($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($snap_pid)");
$holder->query_safe('ROLLBACK');
$holder->quit;
ok(pgs_wait_for_status($node, 'postgres', 'snapc', "state = 'streaming' AND pid <> $snap_pid"),
	'(h) the next worker streams');
ok(pgs_wait_for_log($node, $offset_h,
		qr/stream "snapc" does not take its initial snapshot again: the target stored the Commit of attempt 1/),
	'(h) it records the snapshot as delivered instead of taking it again');
is($node->safe_psql('postgres', "SELECT snapshot FROM pgoutput_stream.streams WHERE name = 'snapc'"),
	'done', '(h) the snapshot is recorded as done');
$node->safe_psql('postgres', "INSERT INTO sn VALUES (200001, 'after')");
ok(pgs_wait_delivered($node, 'postgres', 'snapc'), '(h) the stream delivers');
my $snapc = pgs_js_dump($nats->url, 'snapc_js');
my ($begins, $snap_rows, $changes) = (0, 0, 0);
foreach my $m (@{ $snapc->{msgs} })
{
	my $op = $m->{headers}{'Pg-Operation'} // '';
	$begins++ if $op eq 'begin' && $m->{id} =~ /^pgs_snapc:t\d+s\d+:/;
	$snap_rows++ if $op eq 'insert' && ($m->{headers}{'Pg-Snapshot'} // '') eq 'true';
	$changes++ if $op eq 'insert' && ($m->{headers}{'Pg-Snapshot'} // '') ne 'true';
}
is_deeply([ $begins, $snap_rows, $changes ], [ 1, 200000, 1 ],
	'(h) JetStream holds the snapshot once, then the change');

# ---------------------------------------------------------------------
# (i) a stream created again under the same slot name, whose first worker
#     dies before JetStream stores anything of its snapshot
# ---------------------------------------------------------------------
# The last message in JetStream is then the Commit of the earlier stream's
# snapshot, with the same slot name and attempt number 1: it must not be
# taken for this stream's.
$node->safe_psql('postgres', q{
CREATE TABLE ri (id int PRIMARY KEY, v text);
INSERT INTO ri SELECT g, 'row ' || g FROM generate_series(1, 10) g;
CREATE PUBLICATION pri FOR TABLE ri;
SELECT pgoutput_stream.create_stream('rc', 'pri', targets => '{nats}', snapshot => true,
	options => '{"subject_prefix": "rc", "nats_stream": "rc_js"}');
});
ok(pgs_wait_for_status($node, 'postgres', 'rc', "state = 'streaming'"),
	'(i) the first stream sent its snapshot');
$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('rc')");
set_max_msg_size('rc_js', 64, '(i) JetStream refuses every message of the stream for now');
my $offset_i = pgs_log_offset($node);
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.create_stream('rc', 'pri', targets => '{nats}', snapshot => true,
	options => '{"subject_prefix": "rc", "nats_stream": "rc_js"}');
});
ok( pgs_wait_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT snapshot_attempts >= 2 FROM pgoutput_stream.streams WHERE name = 'rc'") eq 't';
		},
		'a second attempt'),
	'(i) the new stream\'s first worker failed, and the next one began an attempt of its own');
set_max_msg_size('rc_js', -1, '(i) JetStream takes the messages again');
ok(pgs_wait_for_status($node, 'postgres', 'rc', "state = 'streaming'", 60),
	'(i) the new stream streams');
unlike(slurp_file($node->logfile, $offset_i), qr/stream "rc" does not take its initial snapshot again/,
	'(i) the earlier stream\'s Commit was not taken for the new stream\'s snapshot');
is($node->safe_psql('postgres', "SELECT snapshot FROM pgoutput_stream.streams WHERE name = 'rc'"),
	'done', '(i) the snapshot is done');
my $rc_rows = grep { ($_->{headers}{'Pg-Snapshot'} // '') eq 'true' } @{ pgs_js_dump($nats->url, 'rc_js')->{msgs} };
is($rc_rows, 20, '(i) JetStream holds the rows of both streams\' snapshots');

$node->stop;
$nats->stop;
done_testing();
