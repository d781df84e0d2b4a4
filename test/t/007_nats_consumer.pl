
# Copyright (c) 2026, pgoutput_stream developers

# The Node.js consumer example of the NATS integration guide
# (test/nats/consumer_example.mjs, kept close to the guide) runs in the
# background before a workload and receives every event of it: the inserted
# rows, the updates and the deletes, each once, and acknowledges them all.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;
use PgsNatsUtil;

my $nats = PgsNatsUtil->new('main')->start;
my $node = pgs_nats_node('main', $nats);
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE users (id bigint PRIMARY KEY, name text, email text);
CREATE PUBLICATION users_pub FOR TABLE users;
SELECT pgoutput_stream.create_stream('users_feed', 'users_pub', targets => '{nats}');
});
ok( pgs_wait_for_status(
		$node, 'postgres', 'users_feed', "state = 'streaming' AND pid IS NOT NULL"),
	'the stream is streaming (and created the JetStream stream)');

# The guide's consumer expects its durable consumer to exist
my ($info, $err) = pgs_js_admin($nats->url, {}, 'consumer', 'postgres_replication', 'user_processor');
ok($info, 'durable consumer user_processor created') or diag($err);

# The workload: 20 transactions of 50 inserts, one of 10 updates, one of 5
# deletes.  Messages: Begin and Commit of 22 transactions, one Relation
# event, 1000 inserts, 10 updates, 5 deletes.
my $expected = 22 * 2 + 1 + 1000 + 10 + 5;

my ($out, $errout) = ('', '');
my $consumer = IPC::Run::start(
	[ 'node', pgs_nats_dir() . '/consumer_example.mjs', $nats->url, $expected ],
	'<', \undef, '>', \$out, '2>', \$errout,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
$consumer->pump until $out =~ /Listening for user events\.\.\./;
pass('the consumer listens');

for my $tx (0 .. 19)
{
	my $first = $tx * 50 + 1;
	my $last  = $first + 49;
	$node->safe_psql('postgres',
		"INSERT INTO users SELECT g, 'user ' || g, 'user' || g || '\@example.com'
		 FROM generate_series($first, $last) g");
}
$node->safe_psql('postgres',
	"UPDATE users SET email = 'new' || id || '\@example.com' WHERE id <= 10");
$node->safe_psql('postgres', 'DELETE FROM users WHERE id > 995');

$consumer->finish;
is($consumer->result(0), 0, 'the consumer ended without error') or diag($errout);
is($errout, '', 'and wrote nothing to stderr');

my (%inserted, %updated, @deleted);
my $json = JSON::PP->new;
foreach my $line (split /\n/, $out)
{
	if ($line =~ /^New record: (.*)$/)
	{
		$inserted{ $json->decode($1)->{new_tuple}{id} }++;
	}
	elsif ($line =~ /^Updated record: (.*)$/)
	{
		my $u = $json->decode($1)->{new_tuple};
		$updated{ $u->{id} } = $u->{email};
	}
	elsif ($line =~ /^Deleted record: (.*)$/)
	{
		push @deleted, $json->decode($1)->{old_tuple}{id};
	}
}
like($out, qr/^Received $expected messages$/m, "the consumer received the $expected messages");
is_deeply([ sort { $a <=> $b } keys %inserted ], [ 1 .. 1000 ],
	'it received the insert of every row');
is(scalar(grep { $_ != 1 } values %inserted), 0, 'each insert once');
is_deeply(\%updated, { map { $_ => "new$_\@example.com" } 1 .. 10 },
	'it received the 10 updates with the new values');
is_deeply([ sort { $a <=> $b } @deleted ], [ 996 .. 1000 ], 'it received the 5 deletes');

# JetStream holds exactly these messages, and the consumer acknowledged
# them all
ok(pgs_wait_delivered($node, 'postgres', 'users_feed'), 'the stream confirmed everything');
my $dump = pgs_js_dump($nats->url, 'postgres_replication');
is($dump->{count}, $expected, "the JetStream stream holds $expected messages");
ok( pgs_wait_until(
		sub {
			my ($ci) = pgs_js_admin($nats->url, {}, 'consumer-info', 'postgres_replication',
				'user_processor');
			return $ci && $ci->{ack_floor}{stream_seq} == $expected && $ci->{num_ack_pending} == 0;
		},
		'the acknowledgements of the consumer'),
	'the consumer acknowledged every message');

$node->stop;
$nats->stop;

done_testing();
