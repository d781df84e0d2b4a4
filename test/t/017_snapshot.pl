
# Copyright (c) 2026, pgoutput_stream developers

# The initial snapshot (create_stream(..., snapshot => true), issue 9), with
# 100,000 existing rows in tables of several kinds (a column list, REPLICA
# IDENTITY FULL with a row filter, a partitioned table) and a background
# writer changing them (inserts, updates, key updates, updates in and out
# of the row filter, partition moves, deletes) while the snapshots run:
#
#  1. (a) a JetStream consumer that applies the snapshot rows and then the
#     changes in stream order, by primary key, ends with exactly
#     PostgreSQL's tables, and every change applies to the rows as it has
#     them (no insert of a key it has, no update or delete of one it
#     lacks, FULL old tuples equal to its rows): the snapshot is exactly at
#     the start of the changes.  Every message once (Nats-Msg-Id), chained,
#     in commit order, whole transactions, the snapshot rows (json marker,
#     Pg-Snapshot header, .insert subjects, Begin/Commit with xid 0) before
#     any change.  The row filter, column list and partitions (leaves) are
#     honoured by the snapshot as by the changes;
#     (b) a second stream with target feldera (publish_via_partition_root)
#     fills the fake Feldera's tables with exactly PostgreSQL's rows;
#  2. progress: state 'snapshot' with growing snapshot_rows while it runs,
#     then snapshot 'done' and snapshot_tables_done = snapshot_tables_total;
#  3. one stream whose snapshot is stopped (stop_stream) and then killed
#     (SIGKILL: crash restart) in the middle, each time at a point made
#     known by freezing the worker with SIGSTOP: the slot, made persistent
#     by the first attempt, stays where it started; each later attempt
#     takes the snapshot again with a fresh snapshot and is followed by
#     every change since the slot's start (attempt k's positions start at
#     (k-1) << 32, every attempt's commit LSN is the slot's start); a
#     consumer that applies events by key ends with PostgreSQL's tables,
#     rows deleted between the attempts included; the same for a Feldera
#     target with primary keys; drop_stream() in the middle of a snapshot
#     leaves no slot;
#  4. errors: snapshot with an existing slot, peek and drop_stream of a
#     stream whose snapshot is pending (no slot yet); a slot with the
#     stream's slot name that is not a pgoutput slot of the database (a
#     physical slot, a pgoutput slot of another database) makes the worker
#     fail and is left as it is; a pgoutput slot of the database made by
#     hand after create_stream() is used (changes since its start follow
#     the snapshot), not dropped.
#  Also: the debezium and feldera formats of snapshot rows.
#
# The JetStream streams and table contents (about 100,000 rows each) are
# checked by a Node.js script written next to the test's data (JSON::PP
# needs about 15 s for 100,000 rows; Node needs a fraction of a second).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use IPC::Run;
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgsTestUtil;
use PgsNatsUtil;
use PgsFelderaUtil;

my $t_start = time();
my $json = JSON::PP->new->utf8->canonical;
my $tmp = PostgreSQL::Test::Utils::tempdir('snapshot');

my $nats = PgsNatsUtil->new('snap')->start;
# The fake Feldera runs without a state file: saving 100,000 rows after
# every request would take more than a second per request
my $fake = PgsFelderaUtil->new('snap');
{
	my $out = '';
	my $timer = IPC::Run::timer(60);
	my $h = IPC::Run::start(
		[ $ENV{PGS_NODE} // 'node', PgsFelderaUtil::_script(), '--port', $fake->port ],
		'<', \undef, '>', \$out, '2>>', $fake->logfile, $timer);
	$h->pump until $out =~ /listening \d+/;
	$timer->reset;
	$fake->{harness} = $h;
}
END
{
	local $?;
	$fake->{harness}->kill_kill if $fake && $fake->{harness};
}

# (shared_buffers: the TAP default of 1 MB makes every table scan a
# synchronized scan that starts where the last one left off;
# synchronize_seqscans = off: snapshots read the tables from their first
# page, which the deletes of section 3 rely on)
my $node = pgs_nats_node(
	'main', $nats, conf => "restart_after_crash = on
shared_buffers = '32MB'
synchronize_seqscans = off
pgoutput_stream.nats_ack_timeout = '10s'
pgoutput_stream.feldera_url = '@{[ $fake->url ]}'
pgoutput_stream.feldera_max_retry_delay = '500ms'
pgoutput_stream.feldera_request_timeout = '60s'
");
$node->start;

# ---------------------------------------------------------------------
# The checker (Node.js, built-in modules only)
#
#   node check.mjs nats URL STREAM EXPECTED CONF
#     reads the JetStream stream STREAM; EXPECTED: {table: [row, ...]} with
#     every value as PostgreSQL's text output; CONF: {slot, prefix, keys:
#     {table: [key columns]}, full: [tables with REPLICA IDENTITY FULL],
#     exact: whether attempt 1 is exact (default true), watch: {table,
#     keys}}.  Checks the messages and folds them into the view of two
#     consumers, then compares the views with EXPECTED:
#       reset:  applies rows by key, and starts over at every snapshot
#               attempt (a Begin with xid 0)
#       bykey:  applies rows by key, nothing else (docs/snapshot.md)
#     Snapshot attempts: every attempt's commit LSN is the slot's start,
#     attempt k's positions start at (k-1) << 32; an attempt other than
#     the last may end without its Commit, and the next attempt's Begin
#     follows it.  While the last snapshot Begin is that of an exact
#     attempt, every event must apply to the reset consumer's rows as it
#     has them (anomalies); after a later (convergent) attempt, events that
#     do not are counted as replays (changes the snapshot already holds).
#   node check.mjs feldera URL PIPELINE EXPECTED CONF
#     compares the fake's tables with EXPECTED (json columns as JSON text);
#     CONF: {tables: [{pg, feldera, key, kinds: {column: kind}}]}.
#   Both print one JSON object.
# ---------------------------------------------------------------------
my $checker = "$tmp/check.mjs";
open my $cfh, '>', $checker or die "could not write $checker: $!";
print $cfh <<'EOF';
import fs from 'node:fs';
import { createRequire } from 'node:module';

const [cmd, ...args] = process.argv.slice(2);
const readJson = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));

function canonJson(v) {
  if (Array.isArray(v)) return '[' + v.map(canonJson).join(',') + ']';
  if (v !== null && typeof v === 'object')
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonJson(v[k])).join(',') + '}';
  return JSON.stringify(v);
}

// Differences between {table: Map(key -> canonical row)} maps
function diff(want, got, limit = 12) {
  const out = [];
  let n = 0;
  const add = (s) => { n++; if (out.length < limit) out.push(s.length > 400 ? s.slice(0, 400) + '...' : s); };
  for (const t of Object.keys(want)) {
    const w = want[t];
    const g = got[t] ?? new Map();
    for (const [k, row] of w) {
      if (!g.has(k)) add(`${t}: missing row [${k}] ${row}`);
      else if (g.get(k) !== row) add(`${t}: row [${k}] is ${g.get(k)}, want ${row}`);
    }
    for (const [k, row] of g) if (!w.has(k)) add(`${t}: unexpected row [${k}] ${row}`);
  }
  for (const t of Object.keys(got))
    if (!(t in want) && got[t].size > 0) add(`unexpected table ${t} (${got[t].size} rows)`);
  return { count: n, diffs: out };
}

function lsnNum(l) {
  const [h, lo] = l.split('/');
  return BigInt('0x' + h) * 4294967296n + BigInt('0x' + lo);
}

// Every message of a JetStream stream, as js_dump.mjs reads them: an
// ordered consumer from the first message to the last one at the start
async function* jetstream(url, stream, summary) {
  const require = createRequire(process.env.PGS_NATS_DIR + '/package.json');
  const { connect, StringCodec } = require('nats');
  const sc = StringCodec();
  const nc = await connect({ servers: url, timeout: 5000 });
  const info = await (await nc.jetstreamManager()).streams.info(stream);
  summary.last_seq = info.state.last_seq;
  summary.count = 0;
  if (info.state.messages > 0) {
    const consumer = await nc.jetstream().consumers.get(stream, { opt_start_seq: info.state.first_seq });
    for await (const m of await consumer.consume()) {
      const headers = {};
      if (m.headers) for (const [k, v] of m.headers) headers[k] = v.join(',');
      summary.count++;
      yield { seq: m.seq, subject: m.subject, id: headers['Nats-Msg-Id'], headers, data: sc.decode(m.data) };
      if (m.seq >= info.state.last_seq) break;
    }
  }
  await nc.close();
}

if (cmd === 'nats') {
  const [url, stream, expectedFile, confFile] = args;
  const conf = readJson(confFile);
  const expected = readJson(expectedFile);
  const exactFirst = conf.exact !== false;
  const summary = {};
  const keyOf = (t, row) => {
    const k = conf.keys[t];
    if (!k) throw new Error(`no key for table ${t}`);
    return k.map((c) => row[c]).join('|');
  };
  const res = {
    messages: 0,
    problems: [], problem_count: 0, attempts: [], changes: 0, change_txns: 0,
    flagged_changes: 0, last_snapshot_index: -1, first_change_index: -1,
    first_change_lsn: null, change_kinds: {}, anomalies: [], replays: [], replay_count: 0,
    retried_after_commit: 0, watch_deleted: [],
  };
  const problem = (s) => { res.problem_count++; if (res.problems.length < 20) res.problems.push(s); };
  const views = { reset: {}, bykey: {} };
  // keys of conf.watch.table: the snapshot attempts that sent them, and
  // the changes that deleted them
  const watch = conf.watch ? new Set(conf.watch.keys.map(String)) : new Set();
  const watchDeleted = new Set();
  const table = (view, t) => (view[t] ??= new Map());
  const seen = new Set();
  const txns = new Map();
  let prevId = null, prevSeq = null;
  let prevKey = null;
  let prevTx = null;
  let snapshotLsn = null;
  let curAttempt = 0;                   // attempt of the last snapshot Begin

  // The reset consumer also checks that every event applies to the rows
  // as it has them: a snapshot taken a little before or after the slot's
  // start would show here (a change applied twice or never).  That holds
  // after an exact attempt; after a convergent one, such events are the
  // changes since the slot's start that the fresh snapshot already holds.
  let anomalies = 0;
  const anomaly = (s) => {
    if (curAttempt === 1 && exactFirst) {
      anomalies++;
      if (res.anomalies.length < 10) res.anomalies.push(s);
    } else {
      res.replay_count++;
      if (res.replays.length < 5) res.replays.push(s);
    }
  };
  const strict = (mode) => mode === 'reset';
  const apply = (mode, kind, e, inSnapshot) => {
    const view = views[mode];
    const t = e.schema !== undefined ? `${e.schema}.${e.table}` : null;
    if (kind === 'Begin') {
      if (mode === 'reset' && e.xid === 0) for (const k of Object.keys(view)) delete view[k];
    } else if (kind === 'Insert') {
      const m = table(view, t);
      const k = keyOf(t, e.new_tuple);
      if (strict(mode) && m.has(k))
        anomaly(`${inSnapshot ? 'snapshot row' : 'insert'} of ${t} [${k}], which the consumer has already`);
      m.set(k, e.new_tuple);
    } else if (kind === 'Update') {
      const m = table(view, t);
      const nk = keyOf(t, e.new_tuple);
      let prev = m.get(nk);
      const ok = e.old_tuple ? keyOf(t, e.old_tuple) : nk;
      if (strict(mode)) {
        if (!m.has(ok)) anomaly(`update of ${t} [${ok}], which the consumer does not have`);
        else if (ok !== nk && m.has(nk)) anomaly(`update of ${t} [${ok}] to the key [${nk}] the consumer has already`);
        else if (conf.full.includes(t) && canonJson(e.old_tuple) !== canonJson(m.get(ok)))
          anomaly(`update of ${t}: old tuple ${canonJson(e.old_tuple)}, the consumer has ${canonJson(m.get(ok))}`);
      }
      if (e.old_tuple) {
        if (ok !== nk) { prev = m.get(ok); m.delete(ok); }
      }
      const row = { ...e.new_tuple };
      for (const c of e.unchanged_toast ?? []) {
        // (after a convergent attempt, a row the consumer lacks is one that
        // a later change deletes or moves)
        if (!prev) { if (curAttempt === 1 && exactFirst) problem(`${mode}: unchanged TOAST of a row the consumer does not have (${t} [${nk}])`); }
        else row[c] = prev[c];
      }
      m.set(nk, row);
    } else if (kind === 'Delete') {
      const m = table(view, t);
      const k = keyOf(t, e.old_tuple);
      if (strict(mode)) {
        if (!m.has(k)) anomaly(`delete of ${t} [${k}], which the consumer does not have`);
        else if (conf.full.includes(t) && canonJson(e.old_tuple) !== canonJson(m.get(k)))
          anomaly(`delete of ${t}: old tuple ${canonJson(e.old_tuple)}, the consumer has ${canonJson(m.get(k))}`);
      }
      m.delete(k);
    } else if (kind === 'Truncate') {
      table(view, t).clear();
    }
  };

  let i = -1;
  for await (const m of jetstream(url, stream, summary)) {
    i++;
    const id = m.id;
    if (id === null || id === undefined) { problem(`seq ${m.seq}: no Nats-Msg-Id`); continue; }
    if (seen.has(id)) problem(`seq ${m.seq}: Nats-Msg-Id ${id} seen before`);
    seen.add(id);
    const exp = m.headers['Nats-Expected-Last-Msg-Id'];
    // the first message after a worker connected is chained by sequence
    const expSeq = m.headers['Nats-Expected-Last-Sequence'];
    const bySeq = exp === undefined && expSeq !== undefined && Number(expSeq) === prevSeq;
    if (prevId === null ? exp !== undefined : (exp !== prevId && !bySeq))
      problem(`seq ${m.seq}: chained to ${exp}, not ${prevId}`);
    prevId = id;
    prevSeq = m.seq;
    // <slot>:t<tli>[s<snapshot attempt>]:<commit LSN>:<position>[:r<relid>]
    const mm = id.match(/^(.+):t(\d+)(?:s(\d+))?:([0-9A-F]+\/[0-9A-F]+):(\d+)(?::r(\d+))?$/);
    if (!mm || mm[1] !== conf.slot) { problem(`seq ${m.seq}: bad Nats-Msg-Id ${id}`); continue; }
    const lsnText = mm[4];
    const lsn = lsnNum(lsnText);
    const pos = Number(mm[5]);
    const isRel = mm[6] !== undefined;
    const inSnapshot = mm[3] !== undefined;
    const att = inSnapshot ? Number(mm[3]) - 1 : 0;
    // commit order: at one LSN the snapshot's attempts come before the
    // changes, and each attempt after the earlier ones
    const key = [lsn, inSnapshot ? 0 : 1, att, pos, isRel ? 0 : 1];
    if (prevKey) {
      let c = 0;
      for (let k = 0; k < key.length && c === 0; k++) c = key[k] < prevKey[k] ? -1 : key[k] > prevKey[k] ? 1 : 0;
      if (c === 0 && isRel) c = 1;    // relation events of one position
      if (c <= 0) problem(`seq ${m.seq}: ${id} is not after the message before it`);
    }
    prevKey = key;
    if (m.headers['Pg-Commit-Lsn'] !== lsnText)
      problem(`seq ${m.seq}: id ${id} but Pg-Commit-Lsn ${m.headers['Pg-Commit-Lsn']}`);

    const p = JSON.parse(m.data);
    const kind = Object.keys(p)[0];
    const e = p[kind];
    // a transaction: its commit LSN and, for snapshot attempts, the attempt
    const txKey = `${lsnText}#${inSnapshot ? 's' + (att + 1) : 'c'}`;
    let tx = txns.get(txKey);
    if (!tx) {
      tx = { key: txKey, lsn: lsnText, attempt: att + 1, base: 0, positions: [], kinds: [],
             snapshot: false, rows: 0, complete: false, first_seq: m.seq, last_seq: m.seq,
             first_pos: pos, last_pos: pos, tables: {}, xid: null };
      txns.set(txKey, tx);
      // A transaction starts after the Commit of the one before, except a
      // snapshot attempt that follows an interrupted earlier attempt
      if (prevTx && !prevTx.complete) {
        if (!(att > 0 && prevTx.snapshot && prevTx.lsn === lsnText && prevTx.attempt < att + 1))
          problem(`seq ${m.seq}: ${id} starts a transaction before the Commit of ${prevTx.key}`);
      }
      if (att > 0) {
        if (kind !== 'Begin' || pos !== 0 || isRel)
          problem(`seq ${m.seq}: attempt ${att + 1} starts with ${id} (${kind}), not a Begin at position 0`);
        else if (!prevTx || prevTx.lsn !== lsnText || !prevTx.snapshot || prevTx.attempt >= att + 1)
          problem(`seq ${m.seq}: Begin of attempt ${att + 1} (${id}) does not follow an earlier attempt of the snapshot at ${lsnText}`);
        else if (prevTx.complete)
          res.retried_after_commit++;   // the Commit was sent but not acknowledged
      }
    } else if (tx.complete) {
      problem(`seq ${m.seq}: ${id} after the Commit of its transaction`);
    }
    prevTx = tx;
    tx.last_seq = m.seq;
    if (!isRel) { tx.positions.push(pos); tx.kinds.push(kind); tx.last_pos = pos; }
    if (kind === 'Begin') {
      if (tx.xid !== null) problem(`seq ${m.seq}: second Begin in transaction ${txKey}`);
      tx.xid = e.xid;
      tx.snapshot = e.xid === 0;
      if (tx.snapshot !== inSnapshot)
        problem(`seq ${m.seq}: Begin ${id} (xid ${e.xid}): snapshot transactions, and only they, have ids with s<attempt>`);
      if (e.lsn !== lsnText) problem(`seq ${m.seq}: Begin lsn ${e.lsn} in transaction ${lsnText}`);
      if (tx.snapshot) {
        curAttempt = att + 1;
        if (snapshotLsn === null) snapshotLsn = lsnText;
        else if (snapshotLsn !== lsnText)
          problem(`seq ${m.seq}: snapshot attempt ${att + 1} at ${lsnText}, an earlier one at ${snapshotLsn}: not the slot's start`);
      } else if (att > 0) {
        problem(`seq ${m.seq}: transaction ${txKey} (xid ${e.xid}) at position ${pos}: only snapshot attempts start past 0`);
      }
    } else if (kind === 'Commit') {
      tx.complete = true;
      if (e.lsn !== lsnText) problem(`seq ${m.seq}: Commit lsn ${e.lsn} in transaction ${lsnText}`);
      if (e.xid !== tx.xid) problem(`seq ${m.seq}: Commit xid ${e.xid}, Begin xid ${tx.xid}`);
      if (tx.snapshot && e.end_lsn !== lsnText)
        problem(`seq ${m.seq}: snapshot Commit end_lsn ${e.end_lsn}, not its lsn ${lsnText}`);
    }
    const flagged = (kind === 'Insert' && e.snapshot === true) || m.headers['Pg-Snapshot'] !== undefined;
    if (tx.snapshot) {
      if (kind === 'Insert') {
        tx.rows++;
        const t = `${e.schema}.${e.table}`;
        tx.tables[t] = (tx.tables[t] ?? 0) + 1;
        if (conf.watch && t === conf.watch.table && watch.has(keyOf(t, e.new_tuple))) {
          tx.watched ??= [];
          tx.watched.push(keyOf(t, e.new_tuple));
        }
        if (e.snapshot !== true) problem(`seq ${m.seq}: snapshot row without "snapshot":true`);
        if (m.headers['Pg-Snapshot'] !== 'true') problem(`seq ${m.seq}: snapshot row without header Pg-Snapshot: true`);
        if (m.subject !== `${conf.prefix}.${e.schema}.${e.table}.insert`)
          problem(`seq ${m.seq}: snapshot row on subject ${m.subject}`);
        if (m.headers['Pg-Operation'] !== 'insert') problem(`seq ${m.seq}: snapshot row with Pg-Operation ${m.headers['Pg-Operation']}`);
      } else if (!['Begin', 'Commit', 'Relation'].includes(kind)) {
        problem(`seq ${m.seq}: ${kind} in the snapshot transaction ${txKey}`);
      }
      if (kind === 'Relation' && m.headers['Pg-Snapshot'] !== undefined)
        problem(`seq ${m.seq}: Relation event with header Pg-Snapshot`);
      res.last_snapshot_index = i;
    } else {
      if (flagged) { res.flagged_changes++; problem(`seq ${m.seq}: ${kind} of a change flagged as snapshot`); }
      if (['Insert', 'Update', 'Delete', 'Truncate'].includes(kind)) {
        res.changes++;
        res.change_kinds[kind] = (res.change_kinds[kind] ?? 0) + 1;
        if (res.first_change_index < 0) { res.first_change_index = i; res.first_change_lsn = lsnText; }
        if (snapshotLsn !== null && lsn <= lsnNum(snapshotLsn))
          problem(`seq ${m.seq}: change committed at ${lsnText}, not after the snapshot's ${snapshotLsn}`);
      }
      if (kind === 'Delete' && conf.watch && `${e.schema}.${e.table}` === conf.watch.table) {
        const k = keyOf(conf.watch.table, e.old_tuple);
        if (watch.has(k)) watchDeleted.add(k);
      }
    }
    apply('reset', kind, e, tx.snapshot);
    apply('bykey', kind, e, tx.snapshot);
  }
  res.anomaly_count = anomalies;
  res.messages = i + 1;
  res.count = summary.count;
  res.last_seq = summary.last_seq;
  res.watch_deleted = [...watchDeleted];

  for (const tx of txns.values()) {
    if (tx.kinds[0] !== 'Begin') { problem(`transaction ${tx.key}: no Begin first`); continue; }
    for (let k = 0; k < tx.positions.length; k++)
      if (tx.positions[k] !== tx.base + k) {
        problem(`transaction ${tx.key}: position ${tx.positions[k]} where ${tx.base + k} was expected`);
        break;
      }
    if (tx.snapshot) {
      res.attempts.push({ attempt: tx.attempt, lsn: tx.lsn, rows: tx.rows, complete: tx.complete, tables: tx.tables,
                          first_seq: tx.first_seq, last_seq: tx.last_seq, first_pos: tx.first_pos,
                          last_pos: tx.last_pos, watched: tx.watched ?? [] });
    } else {
      res.change_txns++;
      if (!tx.complete) problem(`transaction ${tx.key} (xid ${tx.xid}): no Commit`);
    }
  }
  res.attempts.sort((a, b) => a.first_seq - b.first_seq);

  // The expected tables, canonical rows by key
  const want = {};
  for (const t of Object.keys(expected)) {
    want[t] = new Map();
    for (const row of expected[t]) want[t].set(keyOf(t, row), canonJson(row));
  }
  for (const mode of Object.keys(views)) {
    const got = {};
    for (const t of Object.keys(views[mode])) {
      got[t] = new Map();
      for (const [k, row] of views[mode][t]) got[t].set(k, canonJson(row));
    }
    res[mode] = diff(want, got);
    if (conf.watch) {
      const m = views[mode][conf.watch.table] ?? new Map();
      res[mode].watched = [...watch].filter((k) => m.has(k));
    }
    res[mode].rows = Object.values(got).reduce((a, m) => a + m.size, 0);
  }
  res.expected_rows = Object.values(want).reduce((a, m) => a + m.size, 0);
  process.stdout.write(JSON.stringify(res) + '\n');
} else if (cmd === 'feldera') {
  const [url, pipeline, expectedFile, confFile] = args;
  const conf = readJson(confFile);
  const expected = readJson(expectedFile);
  const frac = (s) => s.replace(/\+00$/, '').replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  const canon = (kind, v, side) => {
    if (v === null || v === undefined) return null;
    switch (kind) {
      case 'bool': return side === 'pg' ? (v === 't' ? 'true' : 'false') : String(v);
      case 'int': case 'decimal': case 'float': return String(Number(v));
      case 'real': return String(Math.fround(Number(v)));
      case 'timestamp': return frac(String(v));
      case 'bytes': return side === 'pg' ? v.replace(/^\\x/, '')
        : v.map((b) => b.toString(16).padStart(2, '0')).join('');
      case 'json': return canonJson(side === 'pg' ? JSON.parse(v) : v);
      default: return String(v);
    }
  };
  const want = {};
  const got = {};
  for (const t of conf.tables) {
    const keyOf = (row) => t.key.map((c) => row[c]).join('|');
    const canonRow = (row, side) => {
      const o = {};
      for (const c of Object.keys(row)) o[c] = t.kinds[c] ? canon(t.kinds[c], row[c], side) : `<undeclared ${c}>`;
      return o;
    };
    want[t.pg] = new Map();
    for (const row of expected[t.pg]) {
      const c = canonRow(row, 'pg');
      want[t.pg].set(keyOf(c), canonJson(c));
    }
    const r = await fetch(`${url}/_fake/pipelines/${pipeline}/tables/${t.feldera}`);
    if (r.status !== 200) throw new Error(`GET table ${t.feldera}: ${r.status} ${await r.text()}`);
    got[t.pg] = new Map();
    for (const row of (await r.json()).rows) {
      const c = canonRow(row, 'fake');
      got[t.pg].set(keyOf(c), canonJson(c));
    }
  }
  const res = diff(want, got);
  res.rows = Object.values(got).reduce((a, m) => a + m.size, 0);
  res.expected_rows = Object.values(want).reduce((a, m) => a + m.size, 0);
  process.stdout.write(JSON.stringify(res) + '\n');
} else {
  throw new Error(`unknown command ${cmd}`);
}
EOF
close $cfh;

# Run a command: its stdout (dies on failure)
sub run_cmd
{
	my ($cmd, %params) = @_;
	my ($out, $err) = ('', '');
	my @redirect = defined $params{stdout_file} ? ('>', $params{stdout_file}) : ('>', \$out);
	IPC::Run::run($cmd, '<', \undef, @redirect, '2>', \$err,
		IPC::Run::timeout($params{timeout} // 180))
	  or die "@$cmd failed: $err";
	return $out;
}

sub node_check
{
	my (@args) = @_;
	local $ENV{PGS_NATS_DIR} = pgs_nats_dir();
	return $json->decode(run_cmd([ $ENV{PGS_NODE} // 'node', $checker, @args ]));
}

sub write_json
{
	my ($file, $data) = @_;
	open my $fh, '>', $file or die "could not write $file: $!";
	print $fh $json->encode($data);
	close $fh;
	return $file;
}

# ---------------------------------------------------------------------
# Tables: 100,000 rows
#   shop.items     40,000  PRIMARY KEY (id); the publications have a
#                          column list without "secret"
#   shop.events    30,000  REPLICA IDENTITY FULL; the publications have a
#                          row filter (kind <> 'skip'), which 3,000 rows fail
#   shop.measures  30,000  partitioned by region (3 partitions);
#                          pub_leaves publishes the partitions,
#                          pub_root (publish_via_partition_root) the root
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE SCHEMA shop;
CREATE TABLE shop.items (id int PRIMARY KEY, name text, qty int, price numeric(10,2),
  ok boolean, created timestamptz, tags text[], doc jsonb, secret text);
CREATE TABLE shop.events (id bigint PRIMARY KEY, kind text NOT NULL, payload bytea,
  score float8, at timestamp);
ALTER TABLE shop.events REPLICA IDENTITY FULL;
CREATE TABLE shop.measures (region int, id int, val real, day date, note varchar(20),
  PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE shop.measures_r0 PARTITION OF shop.measures FOR VALUES IN (0);
CREATE TABLE shop.measures_r1 PARTITION OF shop.measures FOR VALUES IN (1);
CREATE TABLE shop.measures_r2 PARTITION OF shop.measures FOR VALUES IN (2);
CREATE INDEX ON shop.measures (id);
CREATE TABLE shop.unpublished (id int PRIMARY KEY, v text);
CREATE TABLE shop.a_tiny (id int PRIMARY KEY, v text);
INSERT INTO shop.a_tiny SELECT i, 'tiny ' || i FROM generate_series(1, 50) i;

INSERT INTO shop.items
  SELECT i, 'item ' || i || CASE WHEN i % 101 = 0 THEN E' "q" \\\\ ü\t' ELSE '' END,
    CASE WHEN i % 17 = 0 THEN NULL ELSE i % 1000 END,
    (i % 100000) / 100.0 + 0.01, i % 2 = 0,
    timestamptz '2026-01-01 00:00:00+00' + i * interval '61.123457 s',
    ARRAY['t' || i % 7, 'u v'],
    CASE WHEN i % 13 = 0 THEN NULL ELSE jsonb_build_object('k', i, 'f', i % 3 = 0, 'a', jsonb_build_array(i, 'x')) END,
    'secret ' || i
  FROM generate_series(1, 40000) i;
INSERT INTO shop.events
  SELECT i, CASE WHEN i % 10 = 0 THEN 'skip' WHEN i % 2 = 0 THEN 'a' ELSE 'b' END,
    decode(md5(i::text), 'hex'), i * 1.1 / 7, timestamp '2026-02-01' + i * interval '1.5 s'
  FROM generate_series(1, 30000) i;
INSERT INTO shop.measures
  SELECT i % 3, i, (i % 1000) / 8.0 + 0.1, date '2026-01-01' + (i % 365), 'n' || i
  FROM generate_series(1, 30000) i;
INSERT INTO shop.unpublished SELECT i, 'u' FROM generate_series(1, 1000) i;
ANALYZE;

CREATE PUBLICATION pub_leaves FOR TABLE
  shop.items (id, name, qty, price, ok, created, tags, doc),
  shop.events WHERE (kind <> 'skip'),
  shop.measures;
CREATE PUBLICATION pub_root FOR TABLE
  shop.items (id, name, qty, price, ok, created, tags, doc),
  shop.events WHERE (kind <> 'skip'),
  shop.measures
  WITH (publish_via_partition_root = true);
CREATE PUBLICATION pub_tiny FOR TABLE shop.a_tiny;
});
is( $node->safe_psql('postgres',
		'SELECT (SELECT count(*) FROM shop.items) + (SELECT count(*) FROM shop.events) + (SELECT count(*) FROM shop.measures)'
	),
	'100000',
	'100,000 existing rows');

# Columns per table: [name, check kind, Feldera type, nullable]
my %columns = (
	'shop.items' => [
		[ id      => 'int',       'INT',           0 ],
		[ name    => 'text',      'VARCHAR',       1 ],
		[ qty     => 'int',       'INT',           1 ],
		[ price   => 'decimal',   'DECIMAL(10,2)', 1 ],
		[ ok      => 'bool',      'BOOLEAN',       1 ],
		[ created => 'timestamp', 'TIMESTAMP',     1 ],
		[ tags    => 'json',      'VARCHAR ARRAY', 1 ],
		[ doc     => 'json',      'VARIANT',       1 ],
	],
	'shop.events' => [
		[ id      => 'int',       'BIGINT',    0 ],
		[ kind    => 'text',      'VARCHAR',   0 ],
		[ payload => 'bytes',     'VARBINARY', 1 ],
		[ score   => 'float',     'DOUBLE',    1 ],
		[ at      => 'timestamp', 'TIMESTAMP', 1 ],
	],
	'shop.measures' => [
		[ region => 'int',  'INT',         0 ],
		[ id     => 'int',  'INT',         0 ],
		[ val    => 'real', 'REAL',        1 ],
		[ day    => 'text', 'DATE',        1 ],
		[ note   => 'text', 'VARCHAR(20)', 1 ],
	]);
$columns{'shop.a_tiny'} = [ [ id => 'int', 'INT', 0 ], [ v => 'text', 'VARCHAR', 1 ] ];
my %keys = (
	'shop.a_tiny'   => ['id'],
	'shop.items'    => ['id'],
	'shop.events'   => ['id'],
	'shop.measures' => [ 'region', 'id' ]);

# The tables a stream on pub_leaves or pub_root sees: name => [base
# table, FROM clause]
my %leaves_tables = (
	'shop.items'       => [ 'shop.items',    'shop.items' ],
	'shop.events'      => [ 'shop.events',   q{shop.events WHERE kind <> 'skip'} ],
	'shop.measures_r0' => [ 'shop.measures', 'ONLY shop.measures_r0' ],
	'shop.measures_r1' => [ 'shop.measures', 'ONLY shop.measures_r1' ],
	'shop.measures_r2' => [ 'shop.measures', 'ONLY shop.measures_r2' ]);
my %tiny_tables = ('shop.a_tiny' => [ 'shop.a_tiny', 'shop.a_tiny' ]);
my %root_tables = (
	'shop.items'    => [ 'shop.items',    'shop.items' ],
	'shop.events'   => [ 'shop.events',   q{shop.events WHERE kind <> 'skip'} ],
	'shop.measures' => [ 'shop.measures', 'shop.measures' ]);

# PostgreSQL's rows of the tables of %$tables into $file as {table: [row,
# ...]}, every value as its text output with the settings the worker uses
# (json columns as JSON with $json_cols)
sub expected_rows
{
	my ($tables, $file, $json_cols) = @_;
	my @parts;
	foreach my $t (sort keys %$tables)
	{
		my ($base, $from) = @{ $tables->{$t} };
		my $obj = join(', ',
			map {
				my ($c, $kind) = @$_;
				# (bool::text is true/false, not the output function's t/f)
				$json_cols && $kind eq 'json' ? "'$c', to_json($c)::text"
				  : $kind eq 'bool' ? "'$c', CASE WHEN $c THEN 't' WHEN NOT $c THEN 'f' END"
				  : "'$c', $c\::text"
			} @{ $columns{$base} });
		push @parts,
		  "'$t', (SELECT coalesce(json_agg(json_build_object($obj)), '[]') FROM $from)";
	}
	my $sql = "SET DateStyle = ISO; SET IntervalStyle = postgres; SET TimeZone = UTC;
		SET extra_float_digits = 3; SET bytea_output = hex;
		SELECT json_build_object(" . join(', ', @parts) . ')';
	run_cmd([ 'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		'-c', $sql ], stdout_file => $file);
	return $file;
}

# Check the JetStream stream of a stream (on pub_leaves unless tables are
# given): the checker's answer.  %params: tables, watch ({table, keys}),
# exact (0: even the first attempt is convergent, as with a slot made by
# hand)
sub check_nats
{
	my ($js_stream, $slot, $prefix, $tag, %params) = @_;
	my $tables = $params{tables} // \%leaves_tables;
	my $t1 = time();
	my $expected = expected_rows($tables, "$tmp/$tag.expected.json");
	my $t2 = time();
	my $conf = write_json("$tmp/$tag.conf.json",
		{
			slot   => $slot,
			prefix => $prefix,
			full   => ['shop.events'],    # REPLICA IDENTITY FULL
			keys   => { map { $_ => $keys{ $tables->{$_}[0] } } keys %$tables },
			exact  => ($params{exact} // 1) ? JSON::PP::true : JSON::PP::false,
			$params{watch} ? (watch => $params{watch}) : ()
		});
	my $res = node_check('nats', $nats->url, $js_stream, $expected, $conf);
	note(sprintf("%s: expected rows %.1f s, JetStream read and checked in %.1f s", $tag, $t2 - $t1, time() - $t2));
	my @short = map {
		my %a = %$_;
		$a{watched} = scalar(@{ $a{watched} });
		\%a
	} @{ $res->{attempts} };
	note("$tag: $res->{messages} messages, $res->{changes} changes in $res->{change_txns} transactions, "
		  . "$res->{replay_count} replayed events, snapshot attempts: " . $json->encode(\@short));
	return $res;
}

# Assertions shared by the JetStream checks.  A stream whose last snapshot
# attempt is its first (and exact, unless exact => 0) must be exact: every
# change applies to the rows as the consumer has them.  Any other must
# converge: a consumer applying events by key ends with PostgreSQL's rows.
sub nats_ok
{
	my ($what, $res, %params) = @_;
	is($res->{count}, $res->{last_seq}, "$what: every message of the JetStream stream was read");
	ok($res->{problem_count} == 0,
		"$what: every message once (Nats-Msg-Id), chained, in commit order, whole transactions "
		  . '(a snapshot attempt may be cut short by the next one), snapshot rows flagged, changes not')
	  or diag(join("\n", @{ $res->{problems} }, "$res->{problem_count} problems"));
	my @attempts = @{ $res->{attempts} };
	ok(@attempts && $attempts[-1]{complete}, "$what: the last snapshot attempt is complete");
	ok($res->{last_snapshot_index} >= 0
		  && ($res->{first_change_index} < 0 || $res->{last_snapshot_index} < $res->{first_change_index}),
		"$what: every snapshot row comes before the first change")
	  or diag("last snapshot message #$res->{last_snapshot_index}, first change #$res->{first_change_index}");
	my $exact = ($params{exact} // 1) && @attempts && $attempts[-1]{attempt} == 1;
	if ($exact)
	{
		ok($res->{anomaly_count} == 0 && $res->{replay_count} == 0,
			"$what (exact first attempt): every change applies to the consumer's rows (no insert of a key it has, "
			  . 'no update or delete of one it lacks, REPLICA IDENTITY FULL old tuples equal to its rows): '
			  . 'the snapshot is exactly at the start of the changes')
		  or diag(join("\n", @{ $res->{anomalies} }, @{ $res->{replays} },
				"$res->{anomaly_count} anomalies, $res->{replay_count} replays"));
	}
	else
	{
		ok($res->{anomaly_count} == 0,
			"$what: the rows of the first attempt apply cleanly to the consumer's rows")
		  or diag(join("\n", @{ $res->{anomalies} }, "$res->{anomaly_count} anomalies"));
		note("$what (convergent attempt $attempts[-1]{attempt}): $res->{replay_count} events the "
			  . 'snapshot already reflected, e.g. ' . join('; ', @{ $res->{replays} }));
	}
	ok($res->{bykey}{count} == 0,
		"$what: a consumer that applies events by key has PostgreSQL's tables ($res->{expected_rows} rows)"
		  . ($exact ? '' : ' (convergent)'))
	  or diag(join("\n", @{ $res->{bykey}{diffs} }, "$res->{bykey}{count} differences"));
	ok($res->{reset}{count} == 0,
		"$what: a consumer that starts over at each snapshot attempt's Begin has PostgreSQL's tables too")
	  or diag(join("\n", @{ $res->{reset}{diffs} }, "$res->{reset}{count} differences"));
	return $exact;
}

# The fake's declaration of the tables of %$tables
sub feldera_decl
{
	my ($tables) = @_;
	return [
		map {
			my $base = $tables->{$_}[0];
			{
				name    => ($_ =~ s/\./_/r),
				columns => [
					map {
						{
							name     => $_->[0],
							type     => $_->[2],
							nullable => $_->[3] ? JSON::PP::true : JSON::PP::false
						}
					} @{ $columns{$base} }
				],
				primary_key => $keys{$base},
			}
		} sort keys %$tables
	];
}

sub check_feldera
{
	my ($pipeline, $tables, $tag) = @_;
	my $expected = expected_rows($tables, "$tmp/$tag.expected.json", 1);
	my $conf = write_json(
		"$tmp/$tag.conf.json",
		{
			tables => [
				map {
					my $base = $tables->{$_}[0];
					{
						pg      => $_,
						feldera => ($_ =~ s/\./_/r),
						key     => $keys{$base},
						kinds   => { map { $_->[0] => $_->[1] } @{ $columns{$base} } },
					}
				} sort keys %$tables
			]
		});
	return node_check('feldera', $fake->url, $pipeline, $expected, $conf);
}

# ---------------------------------------------------------------------
# The writer: a forked process running batches of three transactions
# through psql (inserts, updates, key updates, updates in and out of the
# row filter, partition moves, deletes) until SIGTERM.  It logs the time
# of each committed batch; after a failure (crash restart) it goes on.
# ---------------------------------------------------------------------
my $writer_log = "$tmp/writer.log";
my $writer_pid;
my $writer_seq = 0;

sub writer_batch
{
	my ($n) = @_;
	my $r = sub { 1 + int(rand($_[0])) };
	my $ni = 1_000_000 + $n;
	my $kind = ('a', 'b', 'skip')[ $n % 3 ];
	my $hex = sprintf('%08x', int(rand(2**32)));
	my $score = sprintf('%.6f', rand(1000) - 500);
	my $ok = $n % 2 ? 'true' : 'false';
	my $range = $r->(40000);
	my $many = $n % 10 == 0
	  ? "UPDATE shop.items SET ok = NOT ok WHERE id BETWEEN $range AND $range + 30;\n" : '';
	my @ids = map { $r->(40000) } 1 .. 3;
	my @eids = map { $r->(30000) } 1 .. 3;
	my @mids = map { $r->(30000) } 1 .. 3;
	my ($qty, $price, $region, $val) = ($n % 50, ($n % 1000) . '.25', $n % 3, ($n % 100) . '.5');
	return <<"SQL";
BEGIN;
INSERT INTO shop.items VALUES ($ni, 'w$ni', $qty, $price, $ok,
  now(), ARRAY['w', 'x y'], '{"w": $n, "s": "a\\"b"}', 'secret w');
UPDATE shop.items SET qty = coalesce(qty, 0) + 1, price = price + 0.01, doc = jsonb_build_object('u', $n),
  tags = tags || 'u'::text WHERE id = $ids[0];
UPDATE shop.items SET id = -id, name = name || ' moved' WHERE id = $ids[1];
DELETE FROM shop.items WHERE id = $ids[2];
$many
COMMIT;
BEGIN;
INSERT INTO shop.events VALUES ($ni, '$kind', '\\x$hex', $score, localtimestamp);
UPDATE shop.events SET kind = CASE kind WHEN 'skip' THEN 'a' ELSE 'skip' END WHERE id = $eids[0];
UPDATE shop.events SET score = score * 2 + 1, at = at + interval '1 s' WHERE id = $eids[1];
DELETE FROM shop.events WHERE id = $eids[2];
COMMIT;
BEGIN;
INSERT INTO shop.measures VALUES ($region, $ni, $val, date '2026-06-01', 'w');
UPDATE shop.measures SET val = val + 0.5, note = 'u$n' WHERE id = $mids[0];
UPDATE shop.measures SET region = (region + 1) % 3 WHERE id = $mids[1];
DELETE FROM shop.measures WHERE id = $mids[2];
COMMIT;
INSERT INTO shop.unpublished VALUES ($ni, 'w') ON CONFLICT DO NOTHING;
SQL
}

sub start_writer
{
	my $base = ++$writer_seq * 100_000;
	my $pid = fork();
	die "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		srand($base);
		open my $log, '>>', $writer_log or POSIX::_exit(4);
		$log->autoflush(1);
		my $stop = 0;
		$SIG{TERM} = sub { $stop = 1 };
		my $connstr = $node->connstr('postgres');
		my $n = $base;
		while (!$stop)
		{
			my $sql = writer_batch($n++);
			my ($out, $err) = ('', '');
			my $ok = eval {
				IPC::Run::run([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-f', '-' ],
					'<', \$sql, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
			};
			if ($ok)
			{
				printf $log "%.3f ok\n", time();
			}
			else
			{
				$err =~ s/\s+/ /g;
				printf $log "%.3f failed %s\n", time(), $err . ($@ // '');
				usleep(200_000);
			}
			usleep(20_000);
		}
		POSIX::_exit(0);
	}
	$writer_pid = $pid;
	return $pid;
}

sub stop_writer
{
	return unless $writer_pid;
	kill('TERM', $writer_pid);
	waitpid($writer_pid, 0);
	my $rc = $? >> 8;
	$writer_pid = undef;
	return $rc;
}

# The times of the writer's committed batches (and the failed ones)
sub writer_times
{
	my (@ok, @failed);
	open my $fh, '<', $writer_log or return ([], []);
	while (<$fh>)
	{
		push @ok, $1 if /^(\S+) ok$/;
		push @failed, $1 if /^(\S+) failed/;
	}
	close $fh;
	return (\@ok, \@failed);
}

# Wait until the writer committed $n more batches
sub writer_wait_batches
{
	my ($n) = @_;
	my ($ok) = writer_times();
	my $before = @$ok;
	return pgs_wait_until(sub { my ($o) = writer_times(); @$o >= $before + $n },
		"$n more batches of the writer");
}

END
{
	local $?;
	if ($writer_pid)
	{
		kill('KILL', $writer_pid);
		waitpid($writer_pid, 0);
	}
}

# stream_status rows of some streams: name => {state, snapshot, rows,
# done, total, pid}, plus the server's clock
my @progress_cols = qw(state snapshot snapshot_rows snapshot_tables_done snapshot_tables_total pid);

sub progress
{
	my (@names) = @_;
	my $list = join(', ', map { "'$_'" } @names);
	my ($out, $err) = ('', '');
	$node->psql('postgres',
		"SELECT name, " . join(', ', map { "coalesce(${_}::text, '')" } @progress_cols)
		  . " FROM pgoutput_stream.stream_status WHERE name IN ($list)",
		stdout => \$out, stderr => \$err, extra_params => [ '-F', '|' ]);
	my %st;
	foreach my $line (split /\n/, $out)
	{
		my ($name, @v) = split /\|/, $line, -1;
		my %r;
		@r{@progress_cols} = @v;
		$st{$name} = \%r;
	}
	return \%st;
}

sub slot_exists
{
	my ($slot) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'") ne '0';
}

# Wall-clock time between two log lines of the snapshot of $stream after
# $offset, and its row count: (seconds, rows, tables)
sub snapshot_timing
{
	my ($offset, $stream) = @_;
	my @start = pgs_log_matches($node, $offset,
		qr/^\S+ (\d+):(\d+):([\d.]+) \S+ \[\d+\] .*stream "\Q$stream\E" takes its initial snapshot at/);
	my @end = pgs_log_matches($node, $offset,
		qr/^\S+ (\d+):(\d+):([\d.]+) \S+ \[\d+\] .*stream "\Q$stream\E" sent its initial snapshot: (\d+) rows of (\d+) tables/);
	return () unless @start && @end;
	my $secs = sub { $_[0] * 3600 + $_[1] * 60 + $_[2] };
	my $d = $secs->(@{ $end[-1] }[ 0 .. 2 ]) - $secs->(@{ $start[-1] }[ 0 .. 2 ]);
	$d += 86400 if $d < 0;
	return ($d, $end[-1][3], $end[-1][4]);
}

my $offset0 = pgs_log_offset($node);

# =====================================================================
# 1 + 2: the snapshot under concurrent writes, to JetStream (s_nats, on
# pub_leaves) and to Feldera (s_feld, on pub_root), with its progress
# =====================================================================
$fake->declare('main', feldera_decl(\%root_tables));

start_writer();
ok(writer_wait_batches(3), 'the writer is running before the streams are created');

$node->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.create_stream('s_nats', 'pub_leaves', targets => '{nats}',
  options => '{"value_mode": "text"}', snapshot => true);
SELECT pgoutput_stream.create_stream('s_feld', 'pub_root', targets => '{feldera}',
  options => '{"feldera_pipeline": "main"}', snapshot => true);
});

# Poll the progress until both are done
my (@samples, %left_snapshot);
my $polled = pgs_wait_until(
	sub {
		my $st = progress('s_nats', 's_feld');
		my $now = time();
		foreach my $s (qw(s_nats s_feld))
		{
			my $r = $st->{$s} or next;
			push @samples, { t => $now, stream => $s, %$r };
			$left_snapshot{$s} //= $now
			  if $r->{snapshot} eq 'done' && $r->{state} ne 'snapshot';
		}
		return keys(%left_snapshot) == 2;
	},
	'both snapshots done');
ok($polled, 'both streams sent their snapshot and recorded it as done');

my @nats_snap = grep { $_->{stream} eq 's_nats' && $_->{state} eq 'snapshot' } @samples;
my @rows_seen = map { $_->{snapshot_rows} } grep { $_->{snapshot_rows} ne '' } @nats_snap;
my %distinct = map { $_ => 1 } grep { $_ > 0 } @rows_seen;
note(scalar(@nats_snap) . " samples of s_nats in state 'snapshot', snapshot_rows: "
	  . join(' ', @rows_seen[ 0 .. ($#rows_seen > 40 ? 40 : $#rows_seen) ]));
ok(keys(%distinct) >= 2,
	"while the snapshot runs, stream_status shows state 'snapshot' with growing snapshot_rows");
is_deeply(\@rows_seen, [ sort { $a <=> $b } @rows_seen ], 'snapshot_rows never goes back');
ok(!(grep { $_->{snapshot} ne 'pending' } @nats_snap),
	"snapshot is 'pending' while the state is 'snapshot'");
ok( !(grep {
			$_->{snapshot_tables_total} ne ''
			  && ($_->{snapshot_tables_total} != 5 || $_->{snapshot_tables_done} > 5)
		} @nats_snap),
	'snapshot_tables_total is 5 (items, events, 3 partitions) and tables_done at most that');

# The writer really wrote while the snapshots were taken
my $first_snap = (sort { $a <=> $b } map { $_->{t} } grep { $_->{state} eq 'snapshot' } @samples)[0];
my $last_snap = (sort { $b <=> $a } map { $_->{t} } grep { $_->{state} eq 'snapshot' } @samples)[0];
{
	my ($ok) = writer_times();
	my $during = grep { $_ >= ($first_snap // 1e20) && $_ <= ($last_snap // 0) } @$ok;
	ok($during >= 3, "the writer committed $during batches while the snapshots were taken");
}

# Some more changes after the snapshot, then stop the writer
ok(writer_wait_batches(10), 'the writer went on after the snapshots');
is(stop_writer(), 0, 'the writer stopped');
my (undef, $failed_batches) = writer_times();
is(scalar(@$failed_batches), 0, 'no batch of the writer failed');

ok(pgs_wait_delivered($node, 'postgres', 's_nats'), 's_nats delivered every change');
ok(pgs_wait_delivered($node, 'postgres', 's_feld'), 's_feld delivered every change')
  or diag('the last requests to the fake: ' . $json->encode($fake->request_log($fake->last_seq - 5)));

my $st = progress('s_nats', 's_feld');
foreach my $s (qw(s_nats s_feld))
{
	my $r = $st->{$s};
	ok( $r->{state} eq 'streaming'
		  && $r->{snapshot} eq 'done'
		  && $r->{snapshot_tables_total} ne ''
		  && $r->{snapshot_tables_done} eq $r->{snapshot_tables_total},
		"$s: streaming, snapshot 'done', snapshot_tables_done = snapshot_tables_total")
	  or diag($json->encode($r));
	ok(slot_exists("pgs_$s"), "$s: its slot exists (persistent)");
}
is($st->{s_feld}{snapshot_tables_total}, '3',
	's_feld: 3 tables (pub_root publishes shop.measures, not its partitions)');

my $res = check_nats('postgres_replication', 'pgs_s_nats', 'postgres', 'main');
nats_ok('s_nats', $res);
is(scalar(@{ $res->{attempts} }), 1, 's_nats: one snapshot');
my $snap = $res->{attempts}[-1];
ok($snap->{attempt} == 1 && $snap->{first_pos} == 0,
	's_nats: the snapshot is attempt 1 (its positions start at 0)');
is( $node->safe_psql('postgres', "SELECT string_agg(snapshot_attempts::text, ',' ORDER BY name) FROM pgoutput_stream.streams WHERE name IN ('s_nats', 's_feld')"),
	'1,1', 'snapshot_attempts is 1 for both streams');
is($snap->{rows}, $st->{s_nats}{snapshot_rows},
	"s_nats: snapshot_rows ($st->{s_nats}{snapshot_rows}) is the number of snapshot rows in JetStream");
is_deeply(
	[ sort keys %{ $snap->{tables} } ],
	[ sort keys %leaves_tables ],
	's_nats: the snapshot has rows of the items, events and the partitions of measures');
ok($res->{changes} > 0 && $res->{change_kinds}{Update} && $res->{change_kinds}{Delete},
	"s_nats: changes after the snapshot: " . $json->encode($res->{change_kinds}));
ok(defined $res->{first_change_lsn}
	  && pgs_lsn_num($res->{first_change_lsn}) > pgs_lsn_num($snap->{lsn}),
	's_nats: the first change commits after the snapshot LSN');
is($node->safe_psql('postgres', "SELECT confirmed_flush_lsn >= '$snap->{lsn}' FROM pg_replication_slots WHERE slot_name = 'pgs_s_nats'"),
	't', "s_nats: the slot starts at the snapshot's LSN or later");

my $fres = check_feldera('main', \%root_tables, 'feld');
ok($fres->{count} == 0,
	"s_feld: the fake Feldera's tables equal PostgreSQL's ($fres->{expected_rows} rows)")
  or diag(join("\n", @{ $fres->{diffs} }, "$fres->{count} differences"));
is_deeply($fake->violations, [], 's_feld: no contract violation in the fake');

foreach my $s (qw(s_nats s_feld))
{
	my ($secs, $rows, $tables) = snapshot_timing($offset0, $s);
	ok(defined $secs, "$s: the log shows the snapshot's start and end");
	diag(sprintf("%s: snapshot of %d rows of %d tables in %.2f s: %.0f rows/s",
			$s, $rows, $tables, $secs, $rows / ($secs || 0.001))) if defined $secs;
}
note(sprintf('phase 1 took %.1f s', time() - $t_start));

# =====================================================================
# 3. A snapshot interrupted twice, under the writer's changes: first by
# stop_stream(), then by a SIGKILL of the worker (a crash restart of the
# server), each time in the middle of the snapshot.
#
# The first attempt makes the slot, persistent at once, at L; the slot
# stays at L until the snapshot is delivered.  Each later attempt takes
# the snapshot again with a fresh snapshot and then streams every change
# since L, also those that its snapshot already holds.
#
# To act at a known point, the worker is frozen with SIGSTOP once it sent
# a batch (1,000 rows) of shop.events, the first table (tables go by
# schema and name) of 27,000 rows.  The rows of the first pages of
# shop.events were sent by then (a sequential scan from the first page),
# so deleting them afterwards makes rows that the interrupted attempt sent
# and that only the deletes (changes since L) remove.
# =====================================================================
my $t_phase = time();

# Wait until $stream, whose worker is not $not_pid, sent $rows rows of its
# first table, and freeze its worker: its stream_status row (frozen), or
# undef
sub freeze_at
{
	my ($stream, $rows, $not_pid) = @_;
	my $r;
	my $ok = pgs_wait_until(
		sub {
			$r = progress($stream)->{$stream} or return 0;
			return $r->{state} eq 'snapshot'
			  && $r->{pid} ne ''
			  && $r->{pid} ne ($not_pid // '')
			  && ($r->{snapshot_rows} || 0) >= $rows;
		},
		"$stream to send $rows rows");
	return undef unless $ok;
	kill('STOP', $r->{pid});
	# what it shows once frozen
	$r = progress($stream)->{$stream};
	return $r;
}

sub stream_row
{
	my ($stream) = @_;
	return $node->safe_psql('postgres',
		"SELECT snapshot FROM pgoutput_stream.streams WHERE name = '$stream'");
}

sub snapshot_attempts
{
	my ($stream) = @_;
	return $node->safe_psql('postgres',
		"SELECT snapshot_attempts FROM pgoutput_stream.streams WHERE name = '$stream'");
}

# pg_replication_slots' row of $slot: {type, plugin, database, restart,
# confirmed, active}, or undef
sub slot_info
{
	my ($slot) = @_;
	my $out = $node->safe_psql('postgres',
		"SELECT slot_type, coalesce(plugin, ''), coalesce(database, ''), coalesce(restart_lsn::text, ''),
		   coalesce(confirmed_flush_lsn::text, ''), active
		 FROM pg_replication_slots WHERE slot_name = '$slot'");
	return undef if $out eq '';
	my %r;
	@r{qw(type plugin database restart confirmed active)} = split /\|/, $out, -1;
	return \%r;
}

# The snapshot log lines of $stream after $offset: [attempt, LSN] each (the
# first attempt's line has no attempt number: 1)
sub snapshot_log
{
	my ($offset, $stream) = @_;
	# [attempt (undef for an exact first one), LSN]; a first attempt on a slot
	# that existed already is attempt 1
	return map { [ $_->[1] // (defined $_->[3] ? 1 : undef), $_->[0] // $_->[2] // $_->[3] ] }
	  pgs_log_matches(
		$node, $offset,
		qr{stream "\Q$stream\E" takes its initial snapshot (?:at ([0-9A-F]+/[0-9A-F]+)$|again \(attempt (\d+)\); the changes since ([0-9A-F]+/[0-9A-F]+) follow it$|from the existing replication slot "[^"]*"; the changes since ([0-9A-F]+/[0-9A-F]+) follow it$)}
	  );
}

# Delete the rows of shop.events in pages [$from, $to) that the
# publication's row filter keeps: their ids
sub delete_pages
{
	my ($from, $to) = @_;
	return split /\n/,
	  $node->safe_psql('postgres',
		"DELETE FROM shop.events WHERE ctid >= '($from,0)' AND ctid < '($to,0)'
		   AND kind <> 'skip' RETURNING id");
}

start_writer();
ok(writer_wait_batches(3), 'the writer is running again');
my $offset_crash = pgs_log_offset($node);

# One message in flight at a time, while the worker is to be frozen in the
# middle of shop.events: at full speed it sends the table's 27,000 rows in
# less time than a poll of its progress takes.
$node->safe_psql('postgres', "ALTER SYSTEM SET pgoutput_stream.nats_max_pending = 1");
$node->reload;

# --- attempt 1: stop_stream() in the middle of the snapshot ---
$node->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.create_stream('s_crash', 'pub_leaves', targets => '{nats}',
  options => '{"value_mode": "text", "subject_prefix": "crash", "nats_stream": "crash_js"}',
  snapshot => true);
});
my $g1 = freeze_at('s_crash', 1000);
ok($g1 && $g1->{snapshot_tables_done} eq '0',
	's_crash (attempt 1) is in the middle of shop.events, frozen')
  or die 's_crash did not get there: ' . $json->encode($g1);
note('attempt 1 frozen: ' . $json->encode($g1));
my @log1 = snapshot_log($offset_crash, 's_crash');
my $L = @log1 ? $log1[0][1] : 'none';
is_deeply(\@log1, [ [ undef, $L ] ], "attempt 1: the log says \"takes its initial snapshot at $L\"")
  or diag($json->encode(\@log1));
my $slot1 = slot_info('pgs_s_crash');
ok($slot1 && $slot1->{type} eq 'logical' && $slot1->{plugin} eq 'pgoutput' && $slot1->{confirmed} eq $L,
	"attempt 1: the slot exists while the snapshot is taken, a pgoutput slot starting at $L")
  or diag($json->encode($slot1));
is(snapshot_attempts('s_crash'), '1', 'attempt 1: snapshot_attempts is 1');

$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('s_crash')");
my $t_stop = time();
kill('CONT', $g1->{pid});
ok( pgs_wait_until(
		sub {
			my $r = progress('s_crash')->{s_crash};
			return $r && $r->{pid} eq '' && $r->{state} eq 'stopped';
		},
		's_crash to stop'),
	'stop_stream() in the middle of the snapshot stops the worker');
note(sprintf('the worker stopped %.2f s after stop_stream()', time() - $t_stop));
my $slot_stopped = slot_info('pgs_s_crash');
ok( $slot_stopped
	  && $slot_stopped->{active} eq 'f'
	  && $slot_stopped->{confirmed} eq $slot1->{confirmed}
	  && $slot_stopped->{restart} eq $slot1->{restart},
	"the stopped snapshot keeps its slot, inactive, at the same position ($L, restart $slot1->{restart})")
  or diag($json->encode($slot_stopped));
is(stream_row('s_crash'), 'pending', "the snapshot is still 'pending'");

# Rows deleted while the stream is stopped: the stopped attempt sent them,
# the next one does not; only their deletes (changes since L) remove them
my @deleted1 = delete_pages(0, 2);
ok(@deleted1 > 50, scalar(@deleted1) . ' rows of shop.events deleted while s_crash is stopped');

# --- attempt 2: SIGKILL in the middle of the snapshot ---
$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('s_crash')");
my $g2 = freeze_at('s_crash', 1000, $g1->{pid});
ok($g2 && $g2->{snapshot_tables_done} eq '0',
	'after start_stream(), s_crash (attempt 2) takes the snapshot again: in the middle of shop.events, frozen')
  or die 's_crash did not get there again: ' . $json->encode($g2);
is(stream_row('s_crash'), 'pending', "attempt 2: the snapshot is 'pending'");
is(snapshot_attempts('s_crash'), '2', 'attempt 2: snapshot_attempts is 2');
is_deeply([ snapshot_log($offset_crash, 's_crash') ], [ [ undef, $L ], [ 2, $L ] ],
	"attempt 2: the log says \"takes its initial snapshot again (attempt 2); the changes since $L follow it\"");
my $slot2 = slot_info('pgs_s_crash');
ok( $slot2
	  && $slot2->{confirmed} eq $slot1->{confirmed}
	  && $slot2->{restart} eq $slot1->{restart},
	'attempt 2 uses the same slot, which has not moved')
  or diag($json->encode($slot2));
my @deleted2 = delete_pages(2, 4);
ok(@deleted2 > 50, scalar(@deleted2) . ' more rows of shop.events deleted before the kill');

# attempt 3 at full speed
$node->safe_psql('postgres', "ALTER SYSTEM RESET pgoutput_stream.nats_max_pending");
$node->reload;
kill('KILL', $g2->{pid});
my $t_kill = time();
ok(pgs_wait_for_log($node, $offset_crash, qr/\(PID $g2->{pid}\) was terminated by signal 9/),
	'the worker was killed: crash restart');
ok( pgs_wait_until(
		sub {
			my $r = progress('s_crash')->{s_crash};
			return $r && $r->{snapshot} eq 'done' && $r->{state} eq 'streaming';
		},
		's_crash to take its snapshot again after the crash restart'),
	's_crash (attempt 3) took its snapshot again and streams');
note(sprintf('attempt 3 done %.1f s after the kill', time() - $t_kill));
is(stream_row('s_crash'), 'done', "the snapshot is 'done'");
is(snapshot_attempts('s_crash'), '3', 'snapshot_attempts is 3');
is_deeply([ snapshot_log($offset_crash, 's_crash') ], [ [ undef, $L ], [ 2, $L ], [ 3, $L ] ],
	'the log shows three snapshot attempts of s_crash, all from the same slot start');
is(pgs_count_log_lines($node, $offset_crash, qr/drops replication slot|dropped replication slot/),
	0, 'no slot was dropped');

ok(writer_wait_batches(5), 'the writer went on after the crash restart');
stop_writer();
ok(pgs_wait_delivered($node, 'postgres', 's_crash'), 's_crash delivered every change');
ok(pgs_lsn_num(slot_info('pgs_s_crash')->{confirmed}) > pgs_lsn_num($L),
	'once the snapshot is delivered, the slot moves on from its start');

# What JetStream holds now, in this order, all with the commit LSN L:
#   attempt 1 (positions from 0): Begin (xid 0), rows of shop.events as
#     of L, no Commit;
#   attempt 2 (positions from 1 << 32): Begin, rows of shop.events as of
#     its start (without @deleted1), no Commit;
#   attempt 3 (positions from 2 << 32): Begin, every row as of its start,
#     Commit;
#   every change committed after L, also those that attempt 3's rows
#     already hold (the deletes of @deleted1 and @deleted2 among them).
my $cres = check_nats('crash_js', 'pgs_s_crash', 'crash', 'crash',
	watch => { table => 'shop.events', keys => [ map { "$_" } @deleted1, @deleted2 ] });
my $exact = nats_ok('s_crash', $cres);
ok(!$exact, 's_crash: the last attempt is not the first: checked for convergence, not exactness');
my @att = @{ $cres->{attempts} };
is_deeply([ map { $_->{attempt} } @att ], [ 1, 2, 3 ],
	's_crash: JetStream holds snapshot attempts 1, 2 and 3, in this order (positions)');
ok(@att == 3 && !$att[0]{complete} && !$att[1]{complete} && $att[2]{complete},
	's_crash: the two interrupted attempts have no Commit, the last one has');
is_deeply([ map { $_->{lsn} } @att ], [ ($L) x 3 ],
	"s_crash: every attempt's commit LSN is the slot's start $L");
ok( (!grep { $_->{first_pos} != 0 } @att),
	's_crash: each attempt numbers its events from 0, in a namespace of its own (t<tli>s<k>)')
  or diag($json->encode([ map { [ $_->{first_pos}, $_->{last_pos} ] } @att ]));
ok(@att == 3 && $att[0]{last_seq} < $att[1]{first_seq} && $att[1]{last_seq} < $att[2]{first_seq},
	's_crash: the attempts do not interleave in JetStream');
is($cres->{retried_after_commit}, 0, 's_crash: no attempt followed a Commit');
ok($cres->{replay_count} > 0,
	"s_crash: the changes since the slot's start follow attempt 3, also those that its rows already hold ($cres->{replay_count})");
ok(defined $cres->{first_change_lsn} && pgs_lsn_num($cres->{first_change_lsn}) > pgs_lsn_num($L),
	's_crash: the changes follow the last attempt and commit after the slot\'s start');
# The worker finishes the batch of 1,000 rows it is in, and stops
ok( @att && $att[0]{rows} >= $g1->{snapshot_rows} && $att[0]{rows} <= $g1->{snapshot_rows} + 2000,
	"s_crash: attempt 1 stopped within a batch of the stop request (" . (@att ? $att[0]{rows} : '?')
	  . " rows sent, $g1->{snapshot_rows} when stop_stream() was called)");
is_deeply([ sort keys %{ $att[1]{tables} // {} } ], ['shop.events'],
	's_crash: attempt 2 sent rows of shop.events only');
my $sorted = sub { [ sort { $a <=> $b } @_ ] };
is_deeply($sorted->(@{ $att[0]{watched} // [] }), $sorted->(@deleted1, @deleted2),
	's_crash: attempt 1 sent the rows deleted after it');
is_deeply($sorted->(@{ $att[1]{watched} // [] }), $sorted->(@deleted2),
	's_crash: attempt 2 (a fresh snapshot) sent the rows deleted before the kill, not those deleted before it');
is_deeply($att[2]{watched} // [], [], 's_crash: attempt 3 does not have the deleted rows');
is_deeply($sorted->(@{ $cres->{watch_deleted} }), $sorted->(@deleted1, @deleted2),
	's_crash: the deletes of the rows deleted between the attempts are delivered as changes');
ok(!@{ $cres->{bykey}{watched} } && !@{ $cres->{reset}{watched} },
	's_crash: no row deleted between the attempts stays with a consumer applying events by key')
  or diag(scalar(@{ $cres->{bykey}{watched} }) . ' deleted rows kept by the by-key consumer, '
	  . scalar(@{ $cres->{reset}{watched} }) . ' by the reset consumer');
note(sprintf('phase 3 took %.1f s', time() - $t_phase));

# =====================================================================
# The same with target feldera: the fake receives the rows of the
# interrupted attempt, then the whole next snapshot, then the changes
# since the slot's start: the delete of a row deleted between the attempts
# removes it from the Feldera table (which has a primary key).  The fake
# answers 503 from its third request on: the worker waits for it in the
# middle of the snapshot, after two requests of 10 rows.
# (pg_terminate_backend: the worker exits with an error and restarts,
# without a crash restart.)
# =====================================================================
# (s_feld first delivers the writer's last changes: the faults apply to
# the next requests, whatever their pipeline)
ok(pgs_wait_delivered($node, 'postgres', 's_feld'), 's_feld delivered every change');
$fake->declare('tiny', feldera_decl(\%tiny_tables));
my $offset_tiny = pgs_log_offset($node);
my $tiny_seq = $fake->last_seq;
$fake->fault({ delay_ms => 0, count => 2 });
$fake->fault({ status => 503, count => 1000 });
$node->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.create_stream('s_tiny', 'pub_tiny', targets => '{feldera}',
  options => '{"feldera_pipeline": "tiny", "feldera_max_rows": "10"}', snapshot => true);
});
my $gt;
ok( pgs_wait_until(
		sub {
			$gt = progress('s_tiny')->{s_tiny};
			return $gt && $gt->{state} eq 'waiting for target' && $gt->{snapshot} eq 'pending';
		},
		's_tiny to wait for Feldera'),
	's_tiny waits for Feldera in the middle of its snapshot');
# rows 1 to 5 went out in the first request; rows 41 to 50 were not sent
my $tiny_deleted = $node->safe_psql('postgres',
	"DELETE FROM shop.a_tiny WHERE id <= 5 OR id > 45 RETURNING id");
$node->safe_psql('postgres', "UPDATE shop.a_tiny SET v = 'changed' WHERE id IN (6, 48)");
$node->safe_psql('postgres', "INSERT INTO shop.a_tiny VALUES (60, 'new between the attempts')");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($gt->{pid})");
$fake->fault({ clear => JSON::PP::true });
ok( pgs_wait_until(
		sub {
			my $r = progress('s_tiny')->{s_tiny};
			return $r && $r->{snapshot} eq 'done' && $r->{state} eq 'streaming' && $r->{pid} ne $gt->{pid};
		},
		's_tiny to take its snapshot again'),
	's_tiny took its snapshot again after its worker was terminated');
ok(pgs_wait_delivered($node, 'postgres', 's_tiny'), 's_tiny delivered every change');
my @tiny_log = snapshot_log($offset_tiny, 's_tiny');
ok(@tiny_log == 2 && !defined $tiny_log[0][0] && $tiny_log[1][0] == 2 && $tiny_log[1][1] eq $tiny_log[0][1],
	's_tiny: attempt 2 follows attempt 1 with the changes since the same slot start')
  or diag($json->encode(\@tiny_log));
is(snapshot_attempts('s_tiny'), '2', 's_tiny: snapshot_attempts is 2');
my $tres = check_feldera('tiny', \%tiny_tables, 'tiny');
ok($tres->{count} == 0,
	"s_tiny: the fake Feldera's tables equal PostgreSQL's ($tres->{expected_rows} rows): "
	  . 'no row deleted between the attempts stays')
  or diag(join("\n", @{ $tres->{diffs} }, "$tres->{count} differences"));
is_deeply($fake->violations, [], 's_tiny: no contract violation in the fake');

# =====================================================================
# drop_stream() in the middle of a snapshot: no slot left behind
# =====================================================================
$node->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.create_stream('s_drop', 'pub_leaves', targets => '{nats}',
  options => '{"subject_prefix": "drop", "nats_stream": "drop_js"}', snapshot => true);
});
ok( pgs_wait_until(
		sub {
			my $r = progress('s_drop')->{s_drop};
			return $r && $r->{state} eq 'snapshot' && ($r->{snapshot_rows} || 0) >= 1000;
		},
		's_drop to send 1000 rows'),
	's_drop is in the middle of its snapshot');
my $t_drop = time();
$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('s_drop')");
note(sprintf('drop_stream() took %.2f s', time() - $t_drop));
ok(!slot_exists('pgs_s_drop'), 'drop_stream() in the middle of the snapshot leaves no slot');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgoutput_stream.streams WHERE name = 's_drop'"),
	'0', 'and no stream');
is(pgs_worker_count($node, 's_drop'), '0', 'and no worker');

# =====================================================================
# 4. Errors
# =====================================================================
$node->safe_psql('postgres', "SELECT pg_create_logical_replication_slot('taken', 'pgoutput')");
my $taken_before = $node->safe_psql('postgres',
	"SELECT restart_lsn || ' ' || confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'taken'");
my ($rc, $out, $err) = $node->psql('postgres',
	"SELECT pgoutput_stream.create_stream('e_taken', 'pub_tiny', slot => 'taken', snapshot => true)");
isnt($rc, 0, 'create_stream(snapshot => true) with an existing slot fails');
like($err, qr/ERROR:  replication slot "taken" already exists/, '... with an error naming the slot');
like($err, qr/DETAIL:  A stream with an initial snapshot needs a new replication slot/,
	'... that says why');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgoutput_stream.streams WHERE name = 'e_taken'"),
	'0', '... and creates no stream');
is( $node->safe_psql('postgres',
		"SELECT restart_lsn || ' ' || confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'taken' AND NOT active"),
	$taken_before,
	'... and leaves the slot as it was');

$node->safe_psql('postgres',
	"SELECT pgoutput_stream.create_stream('e_pending', 'pub_tiny', start => false, snapshot => true)");
is( $node->safe_psql('postgres',
		"SELECT state || ' ' || snapshot FROM pgoutput_stream.stream_status WHERE name = 'e_pending'"),
	'stopped pending',
	"a stream created with snapshot and start => false: stopped, snapshot 'pending'");
ok(!slot_exists('pgs_e_pending'), '... and no slot yet');
($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM pgoutput_stream.peek('e_pending')");
isnt($rc, 0, 'peek() on a stream whose snapshot is pending fails');
like($err, qr/ERROR:  stream "e_pending" has not sent its initial snapshot yet/, '... with a clear error');
($rc, $out, $err) = $node->psql('postgres', "SELECT pgoutput_stream.drop_stream('e_pending')");
is($rc, 0, 'drop_stream() of a stream whose snapshot is pending works') or diag($err);
is($node->safe_psql('postgres', "SELECT count(*) FROM pgoutput_stream.streams WHERE name = 'e_pending'"),
	'0', '... the stream is gone');
ok(!slot_exists('pgs_e_pending'), '... and no slot was left or made');

# A slot with the stream's slot name that is not a logical pgoutput slot
# of this database (a physical slot, a slot of another plugin, a pgoutput
# slot of another database), made after create_stream(): the worker fails
# with an error naming it, and leaves it as it is
$node->safe_psql('postgres', 'CREATE DATABASE other');
my %foreign = (
	e_phys  => [ 'postgres', "SELECT pg_create_physical_replication_slot('pgs_e_phys', true)" ],
	e_plugin => [ 'postgres', "SELECT pg_create_logical_replication_slot('pgs_e_plugin', 'test_decoding')" ],
	e_otherdb => [ 'other', "SELECT pg_create_logical_replication_slot('pgs_e_otherdb', 'pgoutput')" ]);
my %foreign_before;
my $offset_foreign = pgs_log_offset($node);
foreach my $s (sort keys %foreign)
{
	$node->safe_psql('postgres',
		"SELECT pgoutput_stream.create_stream('$s', 'pub_tiny', start => false, snapshot => true)");
	$node->safe_psql($foreign{$s}[0], $foreign{$s}[1]);
	$foreign_before{$s} = slot_info("pgs_$s");
	$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('$s')");
}
foreach my $s (sort keys %foreign)
{
	my $msg = qr/replication slot "pgs_$s" cannot be used by stream "$s"/;
	ok(pgs_wait_for_log($node, $offset_foreign, $msg),
		"$s: a slot with the stream's slot name ($foreign_before{$s}{type}"
		  . ($foreign_before{$s}{plugin} ne '' ? ", $foreign_before{$s}{plugin}" : '')
		  . ($s eq 'e_otherdb' ? ', of another database' : '') . '): '
		  . 'the worker fails with "replication slot ... cannot be used by stream ..."');
	ok( pgs_wait_until(
			sub {
				my $r = pgs_status($node, 'postgres', $s);
				return $r && $r->{state} eq 'failed' && ($r->{last_error} // '') =~ $msg;
			},
			"$s to fail"),
		"$s: stream_status shows it failed, with that error");
	is_deeply(slot_info("pgs_$s"), $foreign_before{$s}, "$s: the slot is left as it was");
	is(stream_row($s), 'pending', "$s: the snapshot is still 'pending'");
}
is(pgs_count_log_lines($node, $offset_foreign, qr/drops replication slot|dropped replication slot/),
	0, 'no slot was dropped');
note('snapshot_attempts of the failed streams: '
	  . join(', ', map { "$_ " . snapshot_attempts($_) } sort keys %foreign));
foreach my $s (sort keys %foreign)
{
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('$s', drop_slot => false)");
	ok(slot_exists("pgs_$s"), "$s: drop_stream(drop_slot => false) leaves the slot");
	$node->safe_psql($foreign{$s}[0], "SELECT pg_drop_replication_slot('pgs_$s')");
}
$node->safe_psql('postgres', 'DROP DATABASE other');

# A pgoutput slot of this database made by hand under the stream's slot
# name after create_stream(): the worker uses it as the slot of an earlier
# attempt (a fresh snapshot, then every change since the slot's start),
# and does not drop it
$node->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.create_stream('e_handmade', 'pub_tiny', targets => '{nats}',
  options => '{"value_mode": "text", "subject_prefix": "handmade", "nats_stream": "handmade_js"}',
  start => false, snapshot => true);
});
my $Lh = $node->safe_psql('postgres',
	"SELECT lsn FROM pg_create_logical_replication_slot('pgs_e_handmade', 'pgoutput')");
my $handmade_before = slot_info('pgs_e_handmade');
# changes after the slot's start, which the snapshot will hold too
$node->safe_psql(
	'postgres', q{
INSERT INTO shop.a_tiny VALUES (70, 'after the slot');
UPDATE shop.a_tiny SET v = 'updated after the slot' WHERE id = 7;
DELETE FROM shop.a_tiny WHERE id = 8;
});
my $offset_handmade = pgs_log_offset($node);
$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('e_handmade')");
ok(pgs_wait_for_status($node, 'postgres', 'e_handmade', "state = 'streaming' AND snapshot = 'done'"),
	'e_handmade (a pgoutput slot made by hand under its slot name) sent its snapshot and streams');
is_deeply([ snapshot_log($offset_handmade, 'e_handmade') ], [ [ 1, $Lh ] ],
	"e_handmade: the log says it takes the snapshot from the existing slot, the changes since the slot's start $Lh following it");
$node->safe_psql('postgres', "UPDATE shop.a_tiny SET v = 'after the snapshot' WHERE id = 9");
ok(pgs_wait_delivered($node, 'postgres', 'e_handmade'), 'e_handmade delivered every change');
is(pgs_count_log_lines($node, $offset_handmade, qr/drops replication slot|dropped replication slot/),
	0, 'e_handmade: no slot was dropped');
my $handmade_after = slot_info('pgs_e_handmade');
ok( $handmade_after
	  && $handmade_after->{type} eq 'logical'
	  && pgs_lsn_num($handmade_after->{restart}) >= pgs_lsn_num($handmade_before->{restart}),
	'e_handmade: the slot made by hand is still there, and streams')
  or diag($json->encode([ $handmade_before, $handmade_after ]));
my $hres = check_nats('handmade_js', 'pgs_e_handmade', 'handmade', 'handmade', tables => \%tiny_tables, exact => 0);
nats_ok('e_handmade', $hres, exact => 0);
is_deeply([ map { "$_->{attempt} $_->{lsn}" } @{ $hres->{attempts} } ], ["1 $Lh"],
	"e_handmade: one snapshot attempt, at the slot's start $Lh");
# (the insert of 70, whose row the snapshot has, and the delete of 8,
# which it has not; the update of 7 applies to a row the consumer has)
is($hres->{replay_count}, 2,
	"e_handmade: the changes made between the slot's start and the snapshot follow it")
  or diag(join("\n", @{ $hres->{replays} }));
$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('e_handmade')");

# =====================================================================
# Snapshot rows in the debezium and feldera formats (target log)
# =====================================================================
my $offset_fmt = pgs_log_offset($node);
$node->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.create_stream('f_dbz', 'pub_tiny', format => 'debezium', snapshot => true);
SELECT pgoutput_stream.create_stream('f_feldera', 'pub_tiny', format => 'feldera', snapshot => true);
});
foreach my $s (qw(f_dbz f_feldera))
{
	ok(pgs_wait_for_status($node, 'postgres', $s, "state = 'streaming' AND snapshot = 'done'"),
		"$s sent its snapshot");
}
$node->safe_psql('postgres', "INSERT INTO shop.a_tiny VALUES (1000, 'after')");
my $tiny_rows = $node->safe_psql('postgres', 'SELECT count(*) FROM shop.a_tiny') - 1;
ok( pgs_wait_until(
		sub {
			return scalar(pgs_events($node, $offset_fmt, stream => 'f_dbz', table => 'a_tiny', kind => 'insert')) > $tiny_rows
			  && scalar(pgs_events($node, $offset_fmt, stream => 'f_feldera', table => 'a_tiny', kind => 'insert')) > $tiny_rows;
		},
		'the snapshot rows and the change in the log'),
	'the log has the snapshot rows and the change of both streams');
my @dbz = map { pgs_json($_)->{payload} }
  pgs_events($node, $offset_fmt, stream => 'f_dbz', table => 'a_tiny', kind => 'insert');
is_deeply(
	[ map { "$_->{op} $_->{source}{snapshot}" } @dbz ],
	[ ('r true') x $tiny_rows, 'c false' ],
	'debezium: snapshot rows are op "r" with source.snapshot "true", the change op "c" with "false"');
my @feld = map { pgs_json($_) }
  pgs_events($node, $offset_fmt, stream => 'f_feldera', table => 'a_tiny', kind => 'insert');
is_deeply(
	[ map { join(',', sort keys %$_) } @feld ],
	[ ('insert') x ($tiny_rows + 1) ],
	'feldera: snapshot rows are inserts, like the change');

# Nothing crashed but the worker we killed
is( pgs_count_log_lines($node, $offset0, qr/terminated by signal (?!9)|PANIC|TRAP:/),
	0, 'no other crash in the server log');
note(sprintf('the test took %.1f s', time() - $t_start));

$node->stop('fast');
$nats->stop;
$fake->{harness}->kill_kill;
$fake->{harness} = undef;
done_testing();
