
# Copyright (c) 2026, pgoutput_stream developers

# A stream idle for longer than the JetStream stream's duplicate window,
# then nats-server restarted: JetStream has forgotten the id of its last
# message (it rebuilds that from the duplicate window only).  The client
# reconnects by itself and the next message, chained by id, is refused once
# ("wrong last msg ID"); the worker restarts, and the first message after
# connecting is chained by stream sequence, which JetStream never forgets.
# Before, the refusal repeated for ever.  Afterwards JetStream holds every
# row once, chained, in commit order.

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

my $nats = PgsNatsUtil->new('idle')->start;
my $node = pgs_nats_node('idle', $nats);
$node->start;

# a duplicate window of one second, so that "older than the window" comes soon
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE PUBLICATION p FOR TABLE t;
SELECT pgoutput_stream.create_stream('s', 'p', targets => '{nats}',
	options => '{"nats_stream": "idle_js", "nats_duplicate_window": 1}');
});
ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'streaming'"), 'the stream streams');

$node->safe_psql('postgres', "INSERT INTO t VALUES (1, 'before')");
ok(pgs_wait_delivered($node, 'postgres', 's'), 'the first row is delivered');

# Let the last message age past the duplicate window (this is time that has
# to pass, not a condition to poll for), then restart nats-server.
sleep(3);
$nats->stop('TERM');
$nats->start;
my $offset = pgs_log_offset($node);

$node->safe_psql('postgres', "INSERT INTO t VALUES (2, 'after the restart')");
$node->safe_psql('postgres', "INSERT INTO t VALUES (3, 'and one more')");
ok(pgs_wait_delivered($node, 'postgres', 's', 60),
	'rows committed after the restart are delivered');
cmp_ok(pgs_count_log_lines($node, $offset, qr/DETAIL:.*wrong last msg ID/), '<=', 1,
	'JetStream refused at most one message as wrongly chained');
is($node->safe_psql('postgres', "SELECT state FROM pgoutput_stream.stream_status WHERE name = 's'"),
	'streaming', 'the stream is streaming');

my $dump = pgs_js_dump($nats->url, 'idle_js');
my @inserts = map { (pgs_msg_payload($_))[1]->{Insert}{new_tuple}{id} }
  grep { $_->{subject} =~ /\.insert$/ } @{ $dump->{msgs} };
is_deeply(\@inserts, [ 1, 2, 3 ], 'JetStream holds every row once, in commit order');
is_deeply([ pgs_js_problems($dump->{msgs}, 'pgs_s') ], [],
	'message ids unique, chained, whole transactions');
my @expected_seq = grep { defined $_->{headers}{'Nats-Expected-Last-Msg-Id'} } @{ $dump->{msgs} };
cmp_ok(scalar(@expected_seq), '<', scalar(@{ $dump->{msgs} }),
	'the first message after connecting was chained by sequence, not by id');

$node->stop;
$nats->stop;
done_testing();
