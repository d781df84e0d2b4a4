
# Copyright (c) 2026, pgoutput_stream developers

# Bounded memory over days (issue 17):
#  (1) peek on a 200,000-row transaction with n => 5 returns 5 rows, and the
#      backend's peak memory grows by less than 16 MB (it read the whole
#      decoded transaction into memory before: +111 MB);
#  (2) the Feldera target sends a table's rows in requests of at most
#      feldera_max_bytes (plus one row), also during a snapshot (one
#      transaction), and bounds what all tables of a transaction hold
#      together; every row arrives;
#  (3) soak: a NATS stream with heartbeats every millisecond (the test-only
#      GUC pgoutput_stream.test_heartbeat_interval) goes 5,000 times round its
#      loop (100,000 with PGS_TEST_LONG=1) after a warm-up, and its worker's
#      RSS (VmRSS) stays within 2 MB, its memory contexts within 256 kB
#      (each heartbeat leaked about 2 kB before);
#  (4) a 50 MB row: afterwards the worker's memory contexts and its RSS
#      are back near where they were (the payload buffers kept their
#      largest size before).

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
use PgsNatsUtil;
use PgsFelderaUtil;

my $long = ($ENV{PGS_TEST_LONG} // '') eq '1';
note($long ? 'long mode' : 'default mode (PGS_TEST_LONG=1 for the long one)');

# nats-server refuses messages above 1 MB unless told otherwise
my $nats = PgsNatsUtil->new('n026', conf => "max_payload: 64MB\n")->start;
my $fake = PgsFelderaUtil->new('f026')->start;

my $node = pgs_nats_node(
	'n026', $nats, conf => <<"EOF");
pgoutput_stream.nats_ack_timeout = '30s'
pgoutput_stream.feldera_url = '@{[ $fake->url ]}'
pgoutput_stream.feldera_max_retry_delay = '500ms'
log_min_messages = info
EOF
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgoutput_stream');

# A line of /proc/$pid/status in kB ("VmRSS", "VmHWM", "RssAnon")
sub proc_kb
{
	my ($pid, $field) = @_;
	open my $fh, '<', "/proc/$pid/status" or return undef;
	while (<$fh>)
	{
		return $1 if /^\Q$field\E:\s+(\d+) kB/;
	}
	return undef;
}

# The grand total of the memory contexts of process $pid, in bytes, from
# pg_log_backend_memory_contexts() (the worker logs them at its next pass)
sub context_bytes
{
	my ($pid) = @_;
	my $offset = pgs_log_offset($node);
	$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)");
	my $total;
	pgs_wait_until(
		sub {
			my $log = slurp_file($node->logfile, $offset);
			$total = $1 if $log =~ /\[$pid\][^\n]*Grand total: (\d+) bytes/;
			return defined $total;
		},
		"memory contexts of $pid");
	return $total;
}

# =====================================================================
# (1) peek reads a large transaction in chunks
# =====================================================================
$node->safe_psql(
	'postgres', q{
CREATE TABLE pk (id int PRIMARY KEY, v text);
CREATE PUBLICATION pk_pub FOR TABLE pk;
SELECT pgoutput_stream.create_stream('peek_big', 'pk_pub', start => false);
INSERT INTO pk SELECT g, repeat('p', 200) FROM generate_series(1, 200000) g;
});
{
	# One session: its peak RSS before and after peek.  Low work_mem and
	# logical_decoding_work_mem, so that the decoded transaction and the
	# function's result spill to disk and only what peek itself keeps counts.
	my $out = $node->safe_psql(
		'postgres', q{
SET work_mem = '1MB';
SET logical_decoding_work_mem = '1MB';
SELECT substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\s+(\d+) kB');
SELECT count(*), count(DISTINCT subject), bool_and(payload LIKE '%"id":%')
  FROM pgoutput_stream.peek('peek_big', 5);
SELECT substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\s+(\d+) kB');
});
	my ($hwm_before, $peeked, $hwm_after) = split /\n/, $out;
	my $growth = $hwm_after - $hwm_before;
	note("peek on 200,000 rows, n => 5: peak RSS $hwm_before kB -> $hwm_after kB (+$growth kB)");
	like($peeked, qr/^5\|/, 'peek on a 200,000-row transaction with n => 5 returns 5 rows');
	cmp_ok($growth, '<', 16 * 1024,
		"the backend's peak RSS grew by less than 16 MB during peek (+$growth kB)");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_replication_slots WHERE temporary'),
		'0', 'the temporary copy of the slot is gone');
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('peek_big')");
}

# =====================================================================
# (2) Feldera: requests bounded in bytes, in a snapshot and in a transaction
# =====================================================================
my $fb = pgs_feldera_spec('public.fb', key => ['id'],
	columns => [ [ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ] ]);
my $fc = pgs_feldera_spec('public.fc', key => ['id'],
	columns => [ [ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ] ]);
$fake->declare('bounded', [ pgs_feldera_decl($fb), pgs_feldera_decl($fc) ]);
$node->safe_psql(
	'postgres', pgs_feldera_ddl($fb) . pgs_feldera_ddl($fc) . q{
CREATE PUBLICATION fb_pub FOR TABLE fb, fc;
INSERT INTO fb SELECT g, repeat('s', 200) || g FROM generate_series(1, 3000) g;
});
{
	my $max_bytes = 65536;
	# a row is {"insert":{"id":N,"v":"sss...N"}}, under 250 bytes
	my $row_bytes = 250;
	my $seq = $fake->last_seq;
	$node->safe_psql('postgres',
		qq{SELECT pgoutput_stream.create_stream('fb_s', 'fb_pub', targets => '{feldera}', snapshot => true,
		  options => '{"feldera_pipeline": "bounded", "feldera_max_bytes": $max_bytes}')});
	ok(pgs_wait_for_status($node, 'postgres', 'fb_s', "state = 'streaming' AND snapshot = 'done'"),
		'fb_s took its snapshot');
	my @req = $fake->ingress('bounded', $seq);
	my $rows = 0;
	$rows += $_->{events} foreach @req;
	my ($largest) = sort { $b <=> $a } map { $_->{bytes} } @req;
	note(scalar(@req) . " requests for the snapshot of 3,000 rows, the largest $largest bytes");
	is($rows, 3000, 'the snapshot sent 3,000 rows');
	cmp_ok(scalar(@req), '>=', 9, 'in 9 requests or more (about 700 kB)');
	cmp_ok($largest, '<=', $max_bytes + $row_bytes,
		'no request of the snapshot is larger than feldera_max_bytes and one row');
	is(scalar(grep { ($_->{status} // '') ne '200' } @req), 0, 'every request answered 200');

	# one transaction writing two tables: together they hold at most the bound
	$seq = $fake->last_seq;
	$node->safe_psql(
		'postgres', q{
BEGIN;
INSERT INTO fb SELECT g, repeat('t', 200) FROM generate_series(3001, 3200) g;
INSERT INTO fc SELECT g, repeat('u', 200) FROM generate_series(1, 200) g;
INSERT INTO fb SELECT g, repeat('t', 200) FROM generate_series(3201, 3400) g;
COMMIT;
});
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'bounded', [ $fb, $fc ]),
		'Feldera holds every row of both tables');
	@req = $fake->ingress('bounded', $seq);
	($largest) = sort { $b <=> $a } map { $_->{bytes} } @req;
	note(scalar(@req) . " requests for 600 rows in two tables, the largest $largest bytes");
	cmp_ok($largest, '<=', $max_bytes + $row_bytes,
		'no request of the transaction is larger than feldera_max_bytes and one row');
	is_deeply($fake->violations, [], 'the fake Feldera saw no violation of its contract');
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('fb_s')");
}

# =====================================================================
# (3) soak: heartbeats and passes, RSS flat
# =====================================================================
$node->append_conf('postgresql.conf', "pgoutput_stream.test_heartbeat_interval = 1\n");
$node->reload;
$node->safe_psql(
	'postgres', q{
CREATE TABLE hb (id int PRIMARY KEY, v text);
CREATE PUBLICATION hb_pub FOR TABLE hb;
SELECT pgoutput_stream.create_stream('soak', 'hb_pub', targets => '{nats}',
  options => '{"subject_prefix": "soak", "nats_stream": "soak", "nats_storage": "memory", "heartbeat_interval": 1}');
});
ok(pgs_wait_for_status($node, 'postgres', 'soak', "state = 'streaming' AND pid IS NOT NULL"),
	'soak is streaming');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE application_name = 'pgoutput_stream soak'");
like($pid, qr/^\d+$/, "the worker's pid from pg_stat_activity ($pid)");

my $messages = sub {
	my $st = pgs_js_stream_state($nats, 'soak');
	return $st ? $st->{messages} : 0;
};
my $warmup = $long ? 5_000 : 1_000;
my $passes = $long ? 100_000 : 5_000;
ok(pgs_wait_until(sub { $messages->() >= $warmup }, "$warmup heartbeats"),
	"$warmup heartbeats of warm-up");

my $rss0 = proc_kb($pid, 'VmRSS');
my $anon0 = proc_kb($pid, 'RssAnon');
my $cxt0 = context_bytes($pid);
my $hb0 = $messages->();
my ($rss_max, $t0) = ($rss0, time());
ok( pgs_wait_until(
		sub {
			my $rss = proc_kb($pid, 'VmRSS') // 0;
			$rss_max = $rss if $rss > $rss_max;
			return $messages->() >= $hb0 + $passes;
		},
		"$passes more heartbeats",
		$long ? 3600 : 600),
	"$passes more heartbeats");
my $hb1 = $messages->();
my $rss1 = proc_kb($pid, 'VmRSS');
my $anon1 = proc_kb($pid, 'RssAnon');
my $cxt1 = context_bytes($pid);
$rss_max = $rss1 if $rss1 > $rss_max;
note(sprintf('%d heartbeats in %.1f s; VmRSS %d kB -> %d kB (max %d kB), RssAnon %d kB -> %d kB, memory contexts %d -> %d bytes',
	$hb1 - $hb0, time() - $t0, $rss0, $rss1, $rss_max, $anon0, $anon1, $cxt0, $cxt1));
is($node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = 'pgoutput_stream soak'"),
	$pid, 'the same worker all along');
cmp_ok($rss_max - $rss0, '<=', 2048,
	"the worker's RSS stayed within 2 MB over $passes heartbeats (+" . ($rss_max - $rss0) . ' kB)');
cmp_ok($cxt1 - $cxt0, '<=', 256 * 1024,
	"its memory contexts grew by at most 256 kB (" . ($cxt1 - $cxt0) . ' bytes)');

# =====================================================================
# (4) a 50 MB row: the buffers shrink back
# =====================================================================
{
	my $before_cxt = $cxt1;
	my $before_rss = proc_kb($pid, 'VmRSS');
	$node->safe_psql('postgres',
		"INSERT INTO hb VALUES (1, repeat('x', 50 * 1024 * 1024))");
	ok(pgs_wait_delivered($node, 'postgres', 'soak', 120), 'the 50 MB row is in JetStream');
	my $hwm = proc_kb($pid, 'VmHWM');
	# a few more passes
	my $n = $messages->();
	ok(pgs_wait_until(sub { $messages->() >= $n + 100 }, '100 more heartbeats'),
		'100 more heartbeats after the large row');
	my $after_cxt = context_bytes($pid);
	my $after_rss = proc_kb($pid, 'VmRSS');
	note("50 MB row: memory contexts $before_cxt -> $after_cxt bytes, VmRSS $before_rss kB -> $after_rss kB (peak $hwm kB)");
	cmp_ok($hwm - $before_rss, '>', 50 * 1024, 'the worker did hold the row (its peak RSS)');
	cmp_ok($after_cxt - $before_cxt, '<=', 2 * 1024 * 1024,
		'its memory contexts are back within 2 MB (' . ($after_cxt - $before_cxt) . ' bytes more)');
	cmp_ok($after_rss - $before_rss, '<=', 8 * 1024,
		'its RSS is back within 8 MB (+' . ($after_rss - $before_rss) . ' kB)');
	my $st = pgs_status($node, 'postgres', 'soak');
	is($st->{last_error} // '', '', 'no error');
}

$node->stop;
$nats->stop;
$fake->stop;

done_testing();
