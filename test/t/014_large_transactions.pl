
# Copyright (c) 2026, pgoutput_stream developers

# Large transactions into NATS JetStream (file storage, nats-server's
# default max_payload of 1 MB, which the largest payload here fits):
#  (a) one transaction of 500,000 narrow rows (1,000,000 in long mode)
#      arrives whole: the JetStream stream holds exactly its Begin,
#      Relation, one Insert per row and its Commit, counted from the stream
#      state (per subject, STREAM.INFO), and a scan in Node.js (which prints
#      a summary, not the messages) checks every message: Nats-Msg-Id,
#      position, chaining to the message before it, Pg-Commit-Lsn, Pg-Xid
#      and the row id in the payload;
#  (b) one transaction of about 134 MB of TOASTed values (130 rows with a
#      1,000,000-character text stored out of line uncompressed, 10 rows
#      with a 400,000-byte bytea) arrives intact: every payload (up to 1 MB)
#      is read back and parsed with pgs_js_parse_dump (the parser of
#      pgs_js_dump), and its values are compared with PostgreSQL's
#      octet_length and md5;
#  (c) the memory of each stream's worker stays bounded.  Each phase has a
#      worker of its own; its VmHWM (peak RSS, /proc/<pid>/status) is reset
#      before the transaction where the kernel allows it, and must stay
#      within logical_decoding_work_mem (64 MB) + $allowance_mb (64 MB, the
#      performance target), while PostgreSQL spilled the transaction to
#      disk (pg_stat_replication_slots.spill_txns).  The bound is below
#      what holding the transaction would take: (b) has 134 MB of values,
#      (a) decodes to 67 MB (pg_stat_replication_slots.total_bytes) and
#      makes 65 MB of payloads (134 MB and 130 MB in long mode).  The
#      figures are reported with note().  Measured on the 2-core test
#      machine (contended): (a) 113.5 MB with 500,000 rows and 113.4 MB
#      with 1,000,000, (b) 85 MB; 17.5 MB of that is the idle worker.
#
# Long mode (PGS_TEST_LONG=1 when prove runs directly, or "pgs_long" in
# PG_TEST_EXTRA: test/run-tests.sh passes only PG_TEST_EXTRA through) runs
# (a) with 1,000,000 rows; default mode uses 500,000, because 1,000,000
# took 45 to 90 s here with other tests running.  PGS_TEST_LARGE_ROWS=N
# sets the rows of (a), for experiments.
#
# The worker keeps about 90 bytes per message published within the last
# pgoutput_stream.nats_ack_timeout (the client library tracks each
# message's acknowledgement deadline until it passes, even once the
# message is acknowledged), so with a long nats_ack_timeout its memory grows
# with the size of a large transaction.  This test uses the default, 10 s.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use Digest::MD5 qw(md5_hex);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgsTestUtil;
use PgsNatsUtil;

my $long = ($ENV{PGS_TEST_LONG} // '') eq '1'
  || ($ENV{PG_TEST_EXTRA} // '') =~ /\bpgs_long\b/;
my $nrows = $ENV{PGS_TEST_LARGE_ROWS} // ($long ? 1_000_000 : 500_000);
my $ntext  = 130;    # rows of (b) with a text of 1,000,000 characters
my $nbytea = 10;     # rows of (b) with a bytea of 400,000 bytes
note("mode: " . ($long ? 'long' : 'default')
	  . ", (a) $nrows rows, (b) $ntext texts and $nbytea byteas");

# Memory bound of (c): logical_decoding_work_mem plus this allowance, the
# performance target.  The worker's baseline is about 17.5 MB of it
# (libraries 12 MB, shared memory 2 MB).
my $allowance_mb = 64;

my $ldwm_mb = 64;
my $nats = PgsNatsUtil->new('large')->start;
my $node = pgs_nats_node(
	'large', $nats, conf => <<"EOF");
logical_decoding_work_mem = '${ldwm_mb}MB'
pgoutput_stream.nats_ack_timeout = '10s'
max_wal_size = '2GB'
EOF
$node->start;

my @timings;
my $t0 = time();

sub timing
{
	my ($what, $start) = @_;
	push @timings, sprintf('%s %.1f s', $what, time() - $start);
}

# ---------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------

# The memory lines of /proc/$pid/status, in kB: { VmHWM => .., VmRSS => ..,
# RssAnon => .., RssFile => .., RssShmem => .. }, or undef if gone
sub proc_mem
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return undef;
	my %m;
	while (my $line = <$fh>)
	{
		$m{$1} = $2 if $line =~ /^(VmHWM|VmRSS|VmPeak|VmSize|RssAnon|RssFile|RssShmem):\s+(\d+) kB/;
	}
	close $fh;
	return \%m;
}

# Reset the peak RSS (VmHWM) of $pid to its current RSS (Linux >= 4.0,
# /proc/<pid>/clear_refs "5"); false if not allowed
sub reset_peak
{
	my ($pid) = @_;
	open my $fh, '>', "/proc/$pid/clear_refs" or return 0;
	my $ok = print $fh "5\n";
	return (close($fh) && $ok) ? 1 : 0;
}

sub mb { return sprintf('%.1f', $_[0] / 1024); }

# Run Node.js code (an ES module) in test/nats, where the npm "nats" client
# is installed: (exit code, stdout, stderr)
sub node_eval
{
	my ($code, @args) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ PgsNatsUtil::_find_program('node', 'PGS_NODE'), '--input-type=module', '-e', $code, @args ],
		'<', \undef, '>', \$out, '2>', \$err,
		init => sub { chdir(pgs_nats_dir()) or die "chdir: $!"; },
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	eval { $h->finish; };
	if ($@)
	{
		$h->kill_kill;
		die "node timed out: $@\nstderr: $err";
	}
	return ($h->result(0), $out, $err);
}

# The state of a JetStream stream with a count per subject
# (STREAM.INFO with subjects_filter ">"), decoded
my $js_state_js = <<'EOF';
import { connect } from "nats";
const [server, stream] = process.argv.slice(1);
const nc = await connect({ servers: server, timeout: 5000 });
const jsm = await nc.jetstreamManager();
const info = await jsm.streams.info(stream, { subjects_filter: ">" });
process.stdout.write(JSON.stringify(info.state) + "\n");
await nc.close();
EOF

sub js_state
{
	my ($stream) = @_;
	my ($rc, $out, $err) = node_eval($js_state_js, $nats->url, $stream);
	die "stream info of $stream failed: $err" if $rc != 0;
	return decode_json($out);
}

# Every message of a JetStream stream that holds one transaction of single
# column inserts, checked in Node.js; prints a summary only:
#   count, ops (per Pg-Operation), slot, commit_lsn, xid, problems (first 20),
#   nproblems
my $js_scan_js = <<'EOF';
import { connect } from "nats";
const [server, stream, slot] = process.argv.slice(1);
const nc = await connect({ servers: server, timeout: 5000 });
const jsm = await nc.jetstreamManager();
const info = await jsm.streams.info(stream);
const last = info.state.last_seq;
const res = { count: 0, ops: {}, commit_lsn: null, xid: null, problems: [], nproblems: 0,
              first_seq: info.state.first_seq, last_seq: last };
const problem = (p) => { res.nproblems++; if (res.problems.length < 20) res.problems.push(p); };
const idRe = /^(.+):t\d+:([0-9A-F]+\/[0-9A-F]+):(\d+)(?::r(\d+))?$/;
const rowRe = /"new_tuple":\{"id":(\d+)\}\}\}$/;
const dec = new TextDecoder();
let prevId = null, prevSeq = null, expectPos = 0, relations = 0;
if (info.state.messages > 0) {
  const c = await nc.jetstream().consumers.get(stream, { opt_start_seq: info.state.first_seq });
  for await (const m of await c.consume()) {
    const h = m.headers;
    const id = h ? h.get("Nats-Msg-Id") : "";
    const exp = h && h.has("Nats-Expected-Last-Msg-Id") ? h.get("Nats-Expected-Last-Msg-Id") : null;
    const op = h ? h.get("Pg-Operation") : "";
    res.ops[op] = (res.ops[op] ?? 0) + 1;
    res.count++;
    // the first message after a worker connected is chained by sequence
    const expSeq = h && h.has("Nats-Expected-Last-Sequence") ? Number(h.get("Nats-Expected-Last-Sequence")) : null;
    const bySeq = exp === null && expSeq !== null && expSeq === prevSeq;
    if (prevId !== null && exp !== prevId && !bySeq) problem(`seq ${m.seq}: chained to ${exp}, not ${prevId}`);
    if (prevId === null && exp !== null) problem(`seq ${m.seq}: first message chained to ${exp}`);
    prevId = id;
    prevSeq = m.seq;
    const p = idRe.exec(id);
    if (!p || p[1] !== slot) { problem(`seq ${m.seq}: bad id ${id}`); if (m.seq >= last) break; continue; }
    res.commit_lsn ??= p[2];
    res.xid ??= h.get("Pg-Xid");
    if (p[2] !== res.commit_lsn || h.get("Pg-Commit-Lsn") !== res.commit_lsn)
      problem(`seq ${m.seq}: commit LSN ${p[2]} / ${h.get("Pg-Commit-Lsn")}, not ${res.commit_lsn}`);
    if (h.get("Pg-Xid") !== res.xid) problem(`seq ${m.seq}: xid ${h.get("Pg-Xid")}, not ${res.xid}`);
    const pos = Number(p[3]);
    if (p[4] !== undefined) {
      // a Relation event takes the position of the change it describes
      relations++;
      if (op !== "relation" || pos !== expectPos) problem(`seq ${m.seq}: relation ${id} (${op}) where position ${expectPos} is next`);
    } else {
      if (pos !== expectPos) problem(`seq ${m.seq}: position ${pos} where ${expectPos} was expected (${id})`);
      expectPos = pos + 1;
      if (pos === 0 && op !== "begin") problem(`seq ${m.seq}: position 0 is ${op}`);
      if (op === "insert") {
        const r = rowRe.exec(dec.decode(m.data));
        if (!r || Number(r[1]) !== pos) problem(`seq ${m.seq}: insert at position ${pos} holds ${r ? "row " + r[1] : "no row id"}`);
      }
    }
    if (m.seq >= last) { res.last_op = op; break; }
  }
}
process.stdout.write(JSON.stringify(res) + "\n");
await nc.close();
EOF

sub js_scan
{
	my ($stream, $slot) = @_;
	my ($rc, $out, $err) = node_eval($js_scan_js, $nats->url, $stream, $slot);
	die "scan of $stream failed: $err" if $rc != 0;
	return decode_json($out);
}

# Every message of a JetStream stream, printed as js_dump.mjs prints them,
# but pulled at most 16 MB at a time: js_dump.mjs pulls 100 messages at a
# time, and 100 messages of 1 MB exceed the 64 MB nats-server lets a client
# have pending (it drops messages of such a "slow consumer", and the read
# stalls).  Parsed with pgs_js_parse_dump, as pgs_js_dump parses js_dump.mjs.
my $js_read_js = <<'EOF';
import { connect } from "nats";
const [server, stream] = process.argv.slice(1);
const nc = await connect({ servers: server, timeout: 5000 });
const jsm = await nc.jetstreamManager();
const info = await jsm.streams.info(stream);
const last = info.state.last_seq;
const dec = new TextDecoder();
let count = 0;
if (info.state.messages > 0) {
  const c = await nc.jetstream().consumers.get(stream, { opt_start_seq: info.state.first_seq });
  for await (const m of await c.consume({ max_bytes: 16 * 1024 * 1024 })) {
    const headers = {};
    if (m.headers) for (const [k, v] of m.headers) headers[k] = v.join(",");
    process.stdout.write(JSON.stringify({
      seq: m.seq, subject: m.subject, id: headers["Nats-Msg-Id"] ?? null,
      headers, data: dec.decode(m.data),
    }) + "\n");
    count++;
    if (m.seq >= last) break;
  }
}
process.stdout.write(JSON.stringify({ count, last_seq: last }) + "\n");
await nc.close();
EOF

sub js_read
{
	my ($stream) = @_;
	my ($rc, $out, $err) = node_eval($js_read_js, $nats->url, $stream);
	die "reading $stream failed: $err" if $rc != 0;
	return pgs_js_parse_dump($out, $err);
}

# Start stream $name and return its worker's pid
sub start_stream
{
	my ($name, $pub, $prefix) = @_;
	$node->safe_psql('postgres',
		"SELECT pgoutput_stream.create_stream('$name', '$pub', targets => '{nats}',
		   options => '{\"subject_prefix\": \"$prefix\", \"nats_stream\": \"$prefix\"}')");
	ok(pgs_wait_for_status($node, 'postgres', $name, "state = 'streaming' AND pid IS NOT NULL"),
		"stream $name is streaming");
	# the JetStream stream exists once the worker connected
	ok(pgs_wait_until(sub { defined pgs_js_stream_state($nats, $prefix) }, "JetStream stream $prefix"),
		"JetStream stream $prefix created");
	return pgs_status($node, 'postgres', $name)->{pid};
}

# Wait until $stream delivered everything committed so far, sampling the
# worker's memory meanwhile: returns (delivered?, max RssAnon kB seen)
sub wait_delivered_sampling
{
	my ($stream, $pid, $timeout) = @_;
	my $max_anon = 0;
	my $lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	my $ok = pgs_wait_until(
		sub {
			my $m = proc_mem($pid);
			$max_anon = $m->{RssAnon} if $m && ($m->{RssAnon} // 0) > $max_anon;
			return $node->safe_psql('postgres',
				"SELECT confirmed_lsn >= '$lsn' FROM pgoutput_stream.stream_status WHERE name = '$stream'")
			  eq 't';
		},
		"stream $stream to confirm up to $lsn",
		$timeout);
	return ($ok, $max_anon);
}

# The decoding statistics of the slot of $stream (pg_stat_replication_slots)
sub slot_stats
{
	my ($stream) = @_;
	my ($txns, $count, $bytes, $total_txns, $total_bytes) = split /\|/,
	  $node->safe_psql('postgres',
		"SELECT spill_txns, spill_count, spill_bytes, total_txns, total_bytes
		 FROM pg_stat_replication_slots WHERE slot_name = 'pgs_$stream'");
	return { spill_txns => $txns // 0, spill_count => $count // 0, spill_bytes => $bytes // 0,
		total_txns => $total_txns // 0, total_bytes => $total_bytes // 0 };
}

my %mem;    # what (c) reports and checks, per phase

# Measure around $code (which commits the transaction), for the worker
# $pid of $stream
sub measure
{
	my ($phase, $stream, $pid, $code) = @_;
	my $stats0 = slot_stats($stream);
	my $reset  = reset_peak($pid);
	my $before = proc_mem($pid);
	my $start  = time();
	$code->();
	my $committed = time();
	my ($ok, $max_anon) = wait_delivered_sampling($stream, $pid, 900);
	ok($ok, "$phase: the stream confirmed the transaction");
	my $after = proc_mem($pid);
	my $stats1 = slot_stats($stream);
	my %spill = map { $_ => $stats1->{$_} - $stats0->{$_} } keys %$stats1;
	note(sprintf('%s: decoded %.1f MB in %d transaction(s), spilled %.1f MB to disk in %d writes',
		$phase, $spill{total_bytes} / 1048576, $spill{total_txns}, $spill{spill_bytes} / 1048576,
		$spill{spill_count}));
	$mem{$phase} = {
		spill => \%spill,
		reset => $reset, before => $before, after => $after, max_anon => $max_anon,
		commit_s => $committed - $start, deliver_s => time() - $committed };
	note(sprintf('%s: commit %.1f s, delivery %.1f s after the commit',
		$phase, $committed - $start, time() - $committed));
	is(pgs_status($node, 'postgres', $stream)->{pid}, $pid,
		"$phase: the same worker delivered it (no restart)");
}

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE narrow (id int PRIMARY KEY);
CREATE TABLE big (id int PRIMARY KEY, t text, b bytea);
ALTER TABLE big ALTER COLUMN t SET STORAGE EXTERNAL;  -- out of line, uncompressed
CREATE PUBLICATION pub_narrow FOR TABLE narrow;
CREATE PUBLICATION pub_big FOR TABLE big;
});

my $max_payload = $nats->varz->{max_payload};
note("nats-server max_payload: $max_payload bytes");
cmp_ok($max_payload, '>=', 1_000_300,
	'the server accepts messages of a 1,000,000-character value (default max_payload 1 MB)');

# ---------------------------------------------------------------------
# (a) one transaction of $nrows narrow rows
# ---------------------------------------------------------------------
my $start = time();
my $pid_a = start_stream('rows', 'pub_narrow', 'rows');
my $status0 = pgs_status($node, 'postgres', 'rows');
my ($xid_a, $lsn_before_a, $lsn_after_a);
measure(
	'(a)', 'rows', $pid_a,
	sub {
		$lsn_before_a = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
		($xid_a) = $node->safe_psql('postgres', qq{
BEGIN;
SELECT txid_current();
INSERT INTO narrow SELECT g FROM generate_series(1, $nrows) g;
COMMIT;
});
		$lsn_after_a = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	});

my $want = $nrows + 3;
my $state = js_state('rows');
is($state->{messages}, $want, "(a) JetStream holds exactly $want messages");
is($state->{last_seq} - $state->{first_seq} + 1, $want, '(a) with contiguous sequences');
is($state->{num_deleted} // 0, 0, '(a) none deleted');
is_deeply(
	$state->{subjects},
	{
		'rows.transactions.begin.event'  => 1,
		'rows.public.narrow.relation'    => 1,
		'rows.public.narrow.insert'      => $nrows,
		'rows.transactions.commit.event' => 1
	},
	"(a) per subject: one Begin, one Relation, $nrows inserts, one Commit");

my $scan_start = time();
my $scan = js_scan('rows', 'pgs_rows');
note(sprintf('(a) scan of %d messages in %.1f s', $scan->{count}, time() - $scan_start));
is($scan->{count}, $want, '(a) the scan read every message');
is($scan->{nproblems}, 0,
	'(a) every message: its id, position, chaining to the one before, xid and row id')
  or diag(join("\n", @{ $scan->{problems} }));
is($scan->{xid}, $xid_a, '(a) Pg-Xid is the xid of the transaction');
is($scan->{last_op}, 'commit', '(a) the last message is the Commit');
ok( defined $scan->{commit_lsn}
	  && pgs_lsn_num($scan->{commit_lsn}) > pgs_lsn_num($lsn_before_a)
	  && pgs_lsn_num($scan->{commit_lsn}) < pgs_lsn_num($lsn_after_a),
	"(a) the commit LSN of the ids (" . ($scan->{commit_lsn} // 'none') . ') is that of the transaction');
my $status1 = pgs_status($node, 'postgres', 'rows');
is($status1->{transactions} - $status0->{transactions}, 1, '(a) stream_status counts 1 transaction');
is($status1->{events} - $status0->{events}, $want, "(a) and $want events");
timing('(a)', $start);

# The stream of (a) would decode (b) too: drop it
$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('rows')");

# ---------------------------------------------------------------------
# (b) one transaction of about 134 MB of TOASTed values
# ---------------------------------------------------------------------
$start = time();
my $pid_b = start_stream('toast', 'pub_big', 'toast');
my $xid_b;
measure(
	'(b)', 'toast', $pid_b,
	sub {
		# texts of 1,000,000 hex digits and byteas of 400,000 bytes, all
		# different and incompressible
		($xid_b) = $node->safe_psql('postgres', qq{
BEGIN;
SELECT txid_current();
INSERT INTO big (id, t)
  SELECT g, (SELECT string_agg(md5(g || '/' || i), '') FROM generate_series(1, 31250) i)
  FROM generate_series(1, $ntext) g;
INSERT INTO big (id, t, b)
  SELECT g, 'small ' || g,
         (SELECT decode(string_agg(md5(g || ':' || i), ''), 'hex') FROM generate_series(1, 25000) i)
  FROM generate_series($ntext + 1, $ntext + $nbytea) g;
COMMIT;
});
	});
my $toast_mb = $node->safe_psql('postgres',
	"SELECT pg_relation_size(reltoastrelid) / 1048576 FROM pg_class WHERE relname = 'big'");
note("(b) TOAST table of big: $toast_mb MB");
cmp_ok($toast_mb, '>=', $ntext, "(b) the values are TOASTed: at least $ntext MB in the TOAST table");
my $nb = $ntext + $nbytea;

my %expected;
foreach my $row (split /\n/, $node->safe_psql('postgres',
	"SELECT id, coalesce(octet_length(t), -1), coalesce(md5(t), ''),
	        coalesce(octet_length(b), -1), coalesce(md5(b), '') FROM big ORDER BY id"))
{
	my ($id, $tlen, $tmd5, $blen, $bmd5) = split /\|/, $row;
	$expected{$id} = [ $tlen, $tmd5, $blen, $bmd5 ];
}

my $dump_start = time();
my $dump = js_read('toast');
my @msgs = @{ $dump->{msgs} };
note(sprintf('(b) read and parsed %d messages in %.1f s', scalar(@msgs), time() - $dump_start));
is($dump->{count}, $nb + 3, "(b) JetStream holds Begin, Relation, $nb inserts, Commit");
my @p = pgs_js_problems(\@msgs, 'pgs_toast');
ok(!@p, '(b) one whole transaction: ids, commit order, chaining') or diag(join("\n", @p));
is_deeply(
	[ map { $_->{headers}{'Pg-Operation'} } @msgs ],
	[ 'begin', 'relation', ('insert') x $nb, 'commit' ],
	"(b) Begin, Relation, $nb inserts, Commit, in that order");
is(scalar(grep { ($_->{headers}{'Pg-Xid'} // '') ne $xid_b } @msgs), 0,
	'(b) every message carries the xid of the transaction');

my (@bad, %seen, $largest);
foreach my $m (grep { $_->{headers}{'Pg-Operation'} eq 'insert' } @msgs)
{
	my $payload = pgs_msg_payload($m);
	$largest = length($payload) if !defined $largest || length($payload) > $largest;
	if ($payload !~ /^\{"Insert":\{"relation_id":\d+,"schema":"public","table":"big","new_tuple":\{"id":(\d+),"t":(?:null|"([^"\\]*)"),"b":(?:null|"\\\\x([0-9a-f]*)")\}\}\}\z/)
	{
		push @bad, "message $m->{seq}: unexpected payload " . substr($payload, 0, 200);
		next;
	}
	my ($id, $t, $bhex) = ($1, $2, $3);
	my $e = $expected{$id};
	if (!$e || $seen{$id}++)
	{
		push @bad, "message $m->{seq}: row $id " . ($e ? 'twice' : 'not in the table');
		next;
	}
	my @got = (
		defined $t ? length($t) : -1, defined $t ? md5_hex($t) : '',
		defined $bhex ? length($bhex) / 2 : -1, defined $bhex ? md5_hex(pack('H*', $bhex)) : '');
	push @bad, "row $id: got (@got[0,1], @got[2,3]), PostgreSQL has (@$e)"
	  if "@got" ne "@$e";
}
is_deeply(\@bad, [], '(b) every payload holds its row intact: lengths and md5 of the text and the bytea')
  or diag(join("\n", @bad[ 0 .. ($#bad > 9 ? 9 : $#bad) ]));
is(scalar(keys %seen), $nb, "(b) all $nb rows");
cmp_ok($largest, '>', 1_000_000, "(b) the largest payload has $largest bytes");
timing('(b)', $start);

# ---------------------------------------------------------------------
# (c) memory of the workers
# ---------------------------------------------------------------------
my $ldwm_kb = $node->safe_psql('postgres',
	"SELECT setting::bigint * CASE unit WHEN 'kB' THEN 1 WHEN 'MB' THEN 1024 END
	 FROM pg_settings WHERE name = 'logical_decoding_work_mem'");
foreach my $phase ('(a)', '(b)')
{
	my $m = $mem{$phase};
	# each phase has a worker of its own, started just before it: without
	# the reset, VmHWM covers that worker's start too
	note("$phase: could not reset VmHWM (/proc/<pid>/clear_refs): the peak includes the worker's start")
	  unless $m->{reset};
	ok($m->{after} && $m->{after}{VmHWM}, "$phase: the worker's /proc status was read");
	next unless $m->{after} && $m->{before};
	cmp_ok($m->{spill}{spill_txns}, '>=', 1,
		"$phase: the transaction exceeded logical_decoding_work_mem (PostgreSQL spilled it to disk)");
	my $peak = $m->{after}{VmHWM};
	note(sprintf(
		"%s worker peak RSS: %s MB (VmHWM; before %s MB), RSS after: %s MB "
		  . "(anon %s, file %s, shmem %s MB), highest anonymous RSS sampled: %s MB, "
		  . "logical_decoding_work_mem: %s MB",
		$phase, mb($peak), mb($m->{before}{VmHWM}), mb($m->{after}{VmRSS}),
		mb($m->{after}{RssAnon}), mb($m->{after}{RssFile}), mb($m->{after}{RssShmem}),
		mb($m->{max_anon}), mb($ldwm_kb)));
	cmp_ok($peak, '<=', $ldwm_kb + $allowance_mb * 1024,
		"$phase: worker peak RSS within logical_decoding_work_mem + $allowance_mb MB");
}

note('timings: ' . join(', ', @timings) . sprintf(', total %.1f s', time() - $t0));
$node->stop;
$nats->stop;
done_testing();
