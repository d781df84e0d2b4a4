
# Copyright (c) 2026, pgoutput_stream developers

# pgoutput_stream.batch_delay: under a stream of small transactions the
# worker decodes the commits of batch_delay together.  Whatever the delay,
# JetStream must receive every transaction once, whole, in commit order; a
# lone commit after a burst must not wait for another burst; a reload
# changes the delay of the running worker; a stop in the middle of a burst
# is prompt and loses nothing.

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

my $nats = PgsNatsUtil->new('batching')->start;
# the longest delay, so that a wrong wait shows
my $node = pgs_nats_node('batching', $nats, conf => "pgoutput_stream.batch_delay = '100ms'\n");
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id bigserial PRIMARY KEY, client int, v text);
CREATE PUBLICATION p FOR TABLE t;
SELECT pgoutput_stream.create_stream('s', 'p', targets => '{nats}',
	options => '{"subject_prefix": "batch", "nats_stream": "batch_js"}');
});
ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'streaming'"), 'the stream streams');

# $n single-row transactions from each of 4 pgbench clients
my $bursts = 0;
sub burst
{
	my ($n, $name) = @_;
	$bursts++;
	$node->pgbench(
		"--no-vacuum --client=4 --jobs=2 --transactions=$n",
		0, [qr{processed: @{[ 4 * $n ]}/@{[ 4 * $n ]}}], [qr{^$}],
		$name,
		{ "batching_insert_$bursts" => "INSERT INTO t (client, v) VALUES (:client_id, 'x');" });
}

# Every row of t in JetStream once, each transaction whole (Begin, Insert,
# Commit), in commit order (ids of a sequence grow with the commits of one
# client; across clients, commit order is what the chain checks)
sub check_jetstream
{
	my ($what) = @_;
	my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
	my $dump = pgs_js_dump($nats->url, 'batch_js');
	my @ids = map { (pgs_msg_payload($_))[1]->{Insert}{new_tuple}{id} }
	  grep { $_->{subject} =~ /\.insert$/ } @{ $dump->{msgs} };
	my %seen;
	is(scalar(grep { !$seen{$_}++ } @ids), $rows, "$what: every row once");
	is(scalar(@ids), $rows, "$what: no row twice");
	is_deeply([ pgs_js_problems($dump->{msgs}, 'pgs_s') ], [],
		"$what: message ids unique, chained, whole transactions");
	my %last;
	my $out_of_order = 0;
	foreach my $m (grep { $_->{subject} =~ /\.insert$/ } @{ $dump->{msgs} })
	{
		my $row = (pgs_msg_payload($m))[1]->{Insert}{new_tuple};
		$out_of_order++ if defined $last{ $row->{client} } && $row->{id} < $last{ $row->{client} };
		$last{ $row->{client} } = $row->{id};
	}
	is($out_of_order, 0, "$what: each client's rows in the order it committed them");
}

# ---------------------------------------------------------------------
# A burst with the delay at 100 ms, then a lone commit
# ---------------------------------------------------------------------
burst(500, 'a burst of 2,000 transactions');
ok(pgs_wait_delivered($node, 'postgres', 's', 60), 'the burst is delivered');
check_jetstream('100 ms delay');

# The last pass of the burst found several commits, so the worker may wait
# up to 100 ms before its next pass; a commit now, after it went idle, is
# decoded at once.  (Measured against 20 x the delay, not the delay itself:
# a busy CI machine can take longer than 100 ms to run psql.)
my $start = time();
$node->safe_psql('postgres', "INSERT INTO t (client, v) VALUES (0, 'lone')");
ok(pgs_wait_delivered($node, 'postgres', 's', 60), 'a lone commit is delivered');
my $lone = time() - $start;
cmp_ok($lone, '<', 2, 'a lone commit does not wait for more commits');
note(sprintf('lone commit delivered %.3f s after it was sent', $lone));

# ---------------------------------------------------------------------
# A reload to 0: the running worker decodes at every wake-up
# ---------------------------------------------------------------------
my $pid = $node->safe_psql('postgres', "SELECT pid FROM pgoutput_stream.stream_status WHERE name = 's'");
$node->safe_psql('postgres', "ALTER SYSTEM SET pgoutput_stream.batch_delay = 0");
$node->reload;
burst(250, 'a burst of 1,000 transactions without a delay');
ok(pgs_wait_delivered($node, 'postgres', 's', 60), 'that burst is delivered');
is($node->safe_psql('postgres', "SELECT pid FROM pgoutput_stream.stream_status WHERE name = 's'"),
	$pid, 'the same worker, after the reload');
check_jetstream('no delay');

# ---------------------------------------------------------------------
# A stop in the middle of a burst with the delay at 100 ms
# ---------------------------------------------------------------------
$node->safe_psql('postgres', "ALTER SYSTEM RESET pgoutput_stream.batch_delay");
$node->safe_psql('postgres', "ALTER SYSTEM SET pgoutput_stream.batch_delay = '100ms'");
$node->reload;
my $script = $node->basedir . '/stopped.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"INSERT INTO t (client, v) VALUES (:client_id, 'stopped');\n");
my $bg = IPC::Run::start(
	[
		'pgbench', '--no-vacuum', '--client=4', '--jobs=2', '--transactions=5000',
		"--file=$script", '--host', $node->host, '--port', $node->port, 'postgres'
	],
	'>', \my $bg_out, '2>', \my $bg_err);
ok( pgs_wait_until(
		sub { $node->safe_psql('postgres', "SELECT count(*) >= 500 FROM t WHERE v = 'stopped'") eq 't' },
		'the third burst under way'),
	'the third burst is under way');
$start = time();
$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('s')");
ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'stopped' AND pid IS NULL"),
	'the stream stops during the burst');
my $stop = time() - $start;
cmp_ok($stop, '<', 5, 'promptly');
note(sprintf('stopped in %.3f s', $stop));
ok($bg->finish, 'the third burst committed') or diag($bg_err);
like($bg_out, qr{processed: 20000/20000}, 'all of it');
$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('s')");
ok(pgs_wait_delivered($node, 'postgres', 's', 60), 'after a start, the third burst is delivered');
check_jetstream('stopped and started');

$node->stop;
$nats->stop;
done_testing();
