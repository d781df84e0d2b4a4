
# Copyright (c) 2026, pgoutput_stream developers

# JetStream refuses a message, and says why in its acknowledgement; the
# worker must not take a refusal for a success, nor a success for a refusal
# (the JetStream stream is called "error", a word the acknowledgements of
# refusals start with), must name the message and JetStream's reason,
# restart, and then store everything once:
#  (a) another client wrote to the JetStream stream between two of the
#      worker's messages: the next one, chained to the worker's last
#      message id, is refused ("wrong last msg ID", JetStream error code
#      10070); the restarted worker finds a foreign last message and fails
#      (another writer), and goes on unchained once the stream option
#      nats_shared_stream says that the JetStream stream is shared;
#  (b) the JetStream stream was deleted while the stream streamed: nothing
#      captures the subject, and the server answers "no responders"; the
#      restarted worker creates the JetStream stream again and stores the
#      rows committed since;
#  (c) nats-server frozen (SIGSTOP) with messages in flight: no
#      acknowledgement within nats_ack_timeout; once it runs again, the
#      restarted worker stores every row once, in commit order.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;
use PgsNatsUtil;

my $nats = PgsNatsUtil->new('refusals')->start;
my $node = pgs_nats_node('refusals', $nats);
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE PUBLICATION p FOR TABLE t;
SELECT pgoutput_stream.create_stream('s', 'p', targets => '{nats}',
	options => '{"subject_prefix": "ref", "nats_stream": "error"}');
});
ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'streaming'"), 'the stream streams');

# The insert events of table t in JetStream stream "error", in stream order
sub stored_ids
{
	my $dump = pgs_js_dump($nats->url, 'error');
	return [ map { (pgs_msg_payload($_))[1]->{Insert}{new_tuple}{id} }
		  grep { $_->{subject} =~ /\.insert$/ } @{ $dump->{msgs} } ];
}

# ---------------------------------------------------------------------
# (a) a foreign message between two of the worker's
# ---------------------------------------------------------------------
$node->safe_psql('postgres', "INSERT INTO t VALUES (1, 'first')");
ok(pgs_wait_delivered($node, 'postgres', 's'), 'the first row is delivered');

my ($ack, $err) = pgs_js_admin($nats->url, undef, 'publish', 'ref.other.writer', '{"foreign":true}',
	'someone-else-1');
is($ack && $ack->{stream}, 'error', 'another client stored a message in the JetStream stream')
  or diag($err);

my $offset = pgs_log_offset($node);
$node->safe_psql('postgres', "INSERT INTO t VALUES (2, 'after the foreign message')");
ok( pgs_wait_for_log(
		$node, $offset,
		qr/DETAIL:  message pgs_s:t\d+:[0-9A-F]+\/[0-9A-F]+:\d+ was not stored: wrong last msg ID: someone-else-1 \(JetStream error code 10070\)/
	),
	'the refusal names the message, JetStream\'s reason and its error code');
ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'failed'"),
	'the restarted worker found the foreign message and failed');
like(
	pgs_stream_state($node, 'postgres', 's')->{last_error},
	qr/^JetStream stream "error" has another writer: its last message under "ref\.>" \(sequence \d+, subject "ref\.other\.writer"\) has Nats-Msg-Id "someone-else-1", not one of replication slot "pgs_s"/,
	'its last_error says what it found');
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.alter_stream('s', options => '{"nats_shared_stream": true}');
SELECT pgoutput_stream.start_stream('s');
});
ok(pgs_wait_for_log($node, $offset, qr/stream "s" is not the only writer of JetStream stream "error"; messages are not chained/),
	'with nats_shared_stream, the worker goes on unchained');
ok(pgs_wait_delivered($node, 'postgres', 's'), 'the refused row is delivered after the restart');
is_deeply(stored_ids(), [ 1, 2 ], 'JetStream holds each row once, in commit order');

# Its own message is last again: the rest runs without the option
my $pid = pgs_stream_state($node, 'postgres', 's')->{pid};
$node->safe_psql('postgres', q{SELECT pgoutput_stream.alter_stream('s', options => '{"nats_shared_stream": null}')});
ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'streaming' AND pid IS NOT NULL AND pid <> $pid"),
	'without nats_shared_stream, the stream streams again');

# ---------------------------------------------------------------------
# (b) the JetStream stream deleted
# ---------------------------------------------------------------------
($ack, $err) = pgs_js_admin($nats->url, undef, 'delete', 'error');
ok($ack && $ack->{deleted}, 'the JetStream stream is deleted') or diag($err);

# (The worker's last message was published unchained, so this life
# publishes unchained until it has sent the events up to it again, and then
# looks the stream up to chain again: that lookup may be what fails.)
$offset = pgs_log_offset($node);
$node->safe_psql('postgres', "INSERT INTO t VALUES (3, 'while nothing captures the subject')");
ok( pgs_wait_for_log(
		$node, $offset,
		qr/DETAIL:  message pgs_s:t\d+:[0-9A-F]+\/[0-9A-F]+:\d+ was not stored: no JetStream stream captures its subject \(no responders\)|ERROR:  could not read the last message of JetStream stream "error"/
	),
	'the refusal says that no JetStream stream captures the subject, or that there is none');
ok(pgs_wait_for_log($node, $offset, qr/stream "s" created JetStream stream "error" for subjects "ref\.>"/),
	'the restarted worker created the JetStream stream again');
ok(pgs_wait_delivered($node, 'postgres', 's'), 'the row is delivered into the new JetStream stream');
is_deeply(stored_ids(), [3], 'the new JetStream stream holds that row once');

# ---------------------------------------------------------------------
# (c) nats-server frozen with messages in flight
# ---------------------------------------------------------------------
$offset = pgs_log_offset($node);
kill('STOP', $nats->pid);
$node->safe_psql('postgres', "INSERT INTO t SELECT g, 'frozen' FROM generate_series(4, 103) g");
my @timeouts = pgs_wait_for_log($node, $offset,
	qr/DETAIL:  no acknowledgement from JetStream within 2000 ms \((\d+) messages in flight\)/);
kill('CONT', $nats->pid);
ok(@timeouts, 'no acknowledgement within nats_ack_timeout ends the worker with the reason');
$node->safe_psql('postgres', "INSERT INTO t VALUES (104, 'after the thaw')");
ok(pgs_wait_delivered($node, 'postgres', 's', 60), 'every row is delivered once nats-server runs again');
is_deeply(stored_ids(), [ 3 .. 104 ], 'JetStream holds every row once, in commit order');
my $dump = pgs_js_dump($nats->url, 'error');
is_deeply([ pgs_js_problems($dump->{msgs}, 'pgs_s') ], [],
	'message ids unique, chained, whole transactions');
is($node->safe_psql('postgres', "SELECT state FROM pgoutput_stream.stream_status WHERE name = 's'"),
	'streaming', 'the stream is streaming');

$node->stop;
$nats->stop;
done_testing();
