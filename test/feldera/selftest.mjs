// Self-test of fake_feldera.mjs: starts it on a free port and checks every rule it
// enforces, positive and negative, with node's fetch (node:http where fetch cannot
// express the case: Expect: 100-continue, a single keep-alive socket).
//
// usage: node selftest.mjs [-v]        exits 0 when every check passes

import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FAKE = path.join(HERE, 'fake_feldera.mjs');
const KEY = 'apikey:selftest-0123456789';
const verbose = process.argv.includes('-v');

let passed = 0;
const failures = [];

function check(name, cond, info) {
  if (cond) { passed++; if (verbose) console.log(`ok   ${name}`); return true; }
  failures.push(name);
  console.log(`FAIL ${name}${info === undefined ? '' : `\n     ${typeof info === 'string' ? info : JSON.stringify(info)}`}`);
  return false;
}

function eq(name, got, want) {
  const g = JSON.stringify(got); const w = JSON.stringify(want);
  return check(name, g === w, `got  ${g}\n     want ${w}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Server process

const children = [];

function startFake(args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [FAKE, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(proc);
    let out = ''; let err = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve({ proc, port: Number(m[1]), base: `http://127.0.0.1:${m[1]}`, stderr: () => err });
    });
    proc.stderr.on('data', (d) => { err += d; if (verbose) process.stderr.write(d); });
    proc.on('exit', (code) => reject(new Error(`fake exited with ${code} before listening: ${err}`)));
  });
}

function stopFake(srv) {
  return new Promise((resolve) => {
    if (srv.proc.exitCode !== null) return resolve();
    srv.proc.once('exit', () => resolve());
    srv.proc.kill('SIGTERM');
  });
}

let S;           // the main server

async function req(method, url, { body, headers = {}, auth = KEY, signal } = {}) {
  const h = { ...headers };
  if (auth) h.authorization = `Bearer ${auth}`;
  const r = await fetch(S.base + url, { method, body, headers: h, signal, duplex: body && typeof body.getReader === 'function' ? 'half' : undefined });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  if (r.status >= 400 && !url.startsWith('/_fake')) {
    check(`${method} ${url} -> ${r.status}: error body has message, error_code, details`,
      json && typeof json.message === 'string' && typeof json.error_code === 'string' && 'details' in json, text);
  }
  return { status: r.status, json, text };
}

const ctl = (method, p, body) => req(method, `/_fake/${p}`, { body: body === undefined ? undefined : JSON.stringify(body), auth: null });

function ingress(table, body, query = 'format=json', more = {}) {
  const pipeline = more.pipeline ?? 'shop';
  return req('POST', `/v0/pipelines/${pipeline}/ingress/${table}${query === null ? '' : `?${query}`}`, { body, ...more });
}

const nd = (...events) => events.map((e) => JSON.stringify(e)).join('\n');

async function rows(table, pipeline = 'shop') {
  const r = await ctl('GET', `pipelines/${pipeline}/tables/${table}`);
  return r.json.rows;
}

async function lastLog() {
  const r = await ctl('GET', 'log');
  return r.json[r.json.length - 1];
}

// ---------------------------------------------------------------------------

const SHOP = {
  tables: [
    {
      name: 'Orders', // unquoted: folds to "orders"
      columns: [
        { name: 'id', type: 'BIGINT', nullable: false },
        { name: 'customer', type: 'VARCHAR' },
        { name: 'amount', type: 'DECIMAL(10,2)' },
        { name: 'placed', type: 'TIMESTAMP' },
        { name: 'shipped', type: 'DATE' },
        { name: 'at', type: 'TIME' },
        { name: 'flag', type: 'BOOLEAN' },
        { name: 'tags', type: 'VARCHAR ARRAY' },
        { name: 'nums', type: 'INT[]' },
        { name: 'blob', type: 'VARBINARY' },
        { name: 'uid', type: 'UUID' },
        { name: 'meta', type: 'VARIANT' },
        { name: 'score', type: 'REAL' },
        { name: 'ratio', type: 'DOUBLE' },
        { name: 'tiny', type: 'TINYINT' },
        { name: 'small', type: 'SMALLINT' },
        { name: 'i', type: 'INTEGER' },
        { name: 'code', type: 'CHAR(3)' },
        { name: 'bin', type: 'BINARY(2)' },
        { name: 'Note', type: 'TEXT', quoted: true },
        { name: 'm', type: 'MAP<VARCHAR, INT>' },
        { name: 'req', type: 'VARCHAR', nullable: true },
      ],
      primary_key: ['id'],
    },
    {
      name: 'events',
      columns: [
        { name: 'k', type: 'INT', nullable: false },
        { name: 'v', type: 'STRING' },
      ],
    },
    {
      name: 'MixedCase', quoted: true,
      columns: [{ name: 'id', type: 'INT', nullable: false }, { name: 'must', type: 'VARCHAR', nullable: false }],
      primary_key: ['id'],
    },
  ],
};

async function testControl() {
  let r = await ctl('POST', 'pipelines/shop', SHOP);
  eq('declare pipeline shop', r.status, 200);
  eq('unquoted table name folds to lower case', r.json.tables.map((t) => t.name), ['orders', 'events', 'MixedCase']);
  eq('INT[] parses as an INTEGER ARRAY', r.json.tables[0].columns[8].type, 'INTEGER ARRAY');
  for (const [what, type] of [['FLOAT refused', 'FLOAT'], ['DECIMAL without precision refused', 'DECIMAL'],
    ['unknown type refused', 'WIDGET'], ['INTERVAL refused', 'INTERVAL DAY'], ['NOT NULL in type refused', 'INT NOT NULL']]) {
    r = await ctl('POST', 'pipelines/bad', { tables: [{ name: 't', columns: [{ name: 'a', type }] }] });
    eq(`schema: ${what}`, r.status, 400);
  }
  r = await ctl('POST', 'pipelines/bad', { tables: [{ name: 't', columns: [{ name: 'a', type: 'INT' }], primary_key: ['b'] }] });
  eq('schema: primary key must name a column', r.status, 400);
  r = await ctl('POST', 'pipelines/bad', { tables: [{ name: 't', columns: [{ name: 'a', type: 'INT' }, { name: 'A', type: 'INT' }] }] });
  eq('schema: case-insensitive column clash refused', r.status, 400);
  r = await ctl('GET', 'pipelines/bad');
  eq('refused declarations create nothing', r.status, 404);
  r = await ctl('GET', 'pipelines/shop');
  eq('GET pipeline lists its tables', r.json.tables.length, 3);
  eq('PK columns become NOT NULL', r.json.tables[2].columns[0].nullable, false);
}

async function testRoutingAndAuth() {
  let r = await req('GET', '/v0/pipelines/shop/ingress/orders?format=json');
  eq('GET on /ingress -> 405', r.status, 405);
  r = await req('PUT', '/v0/pipelines/shop/ingress/orders?format=json', { body: '' });
  eq('PUT on /ingress -> 405', r.status, 405);
  r = await ingress('orders', '', 'format=json', { auth: null });
  eq('missing Authorization -> 401', r.status, 401);
  eq('missing Authorization -> InvalidApiKey', r.json.error_code, 'InvalidApiKey');
  r = await ingress('orders', '', 'format=json', { auth: 'apikey:wrong' });
  eq('wrong API key -> 401 InvalidApiKey', [r.status, r.json.error_code], [401, 'InvalidApiKey']);
  r = await req('POST', '/v0/pipelines/shop/ingress/orders?format=json', { auth: null, headers: { authorization: KEY } });
  eq('Authorization without "Bearer" -> 401', r.status, 401);
  r = await ingress('orders', '', 'format=json', { pipeline: 'nosuch' });
  eq('unknown pipeline -> exact 404 body', [r.status, r.json],
    [404, { message: "Unknown pipeline name 'nosuch'", error_code: 'UnknownPipelineName', details: { pipeline_name: 'nosuch' } }]);
  r = await ingress('nosuch', '');
  eq('unknown table -> 404 UnknownInputStream', [r.status, r.json.error_code], [404, 'UnknownInputStream']);
  for (const [t, want] of [['orders', 200], ['ORDERS', 200], ['Orders', 200], ['%22orders%22', 200], ['%22ORDERS%22', 404],
    ['%22MixedCase%22', 200], ['MixedCase', 404], ['mixedcase', 404], ['%22mixedcase%22', 404]]) {
    r = await ingress(t, '');
    eq(`table name ${decodeURIComponent(t)} -> ${want}`, r.status, want);
  }
  r = await req('GET', '/v0/pipelines/shop/nothing');
  eq('unknown /v0 route -> 404 with error body', r.status, 404);
}

async function testQuery() {
  const cases = [
    ['format missing', null, 400, 'MissingUrlEncodedParam'],
    ['format=csv is not implemented by the fake', 'format=csv', 400, 'FakeUnsupportedFormat'],
    ['format=parquet is not implemented by the fake', 'format=parquet', 400, 'FakeUnsupportedFormat'],
    ['unknown format', 'format=xml', 400, 'UnknownInputFormat'],
    ['update_format=bogus', 'format=json&update_format=bogus', 400, 'ParserConfigParseError'],
    ['update_format=snowflake', 'format=json&update_format=snowflake', 400, 'InputFormatNotSupported'],
    ['update_format=INSERT_DELETE (case matters)', 'format=json&update_format=INSERT_DELETE', 400, 'ParserConfigParseError'],
    ['array=yes', 'format=json&array=yes', 400, 'ParserConfigParseError'],
    ['array=1', 'format=json&array=1', 400, 'ParserConfigParseError'],
    ['force=1', 'format=json&force=1', 400, 'InvalidParam'],
    ['json_flavor=bogus', 'format=json&json_flavor=bogus', 400, 'ParserConfigParseError'],
    ['json_flavor=debezium_mysql is not modelled', 'format=json&json_flavor=debezium_mysql', 400, 'FakeUnsupportedFlavor'],
    ['json_flavor=snowflake is not modelled', 'format=json&json_flavor=snowflake', 400, 'FakeUnsupportedFlavor'],
    ['lines=bogus', 'format=json&lines=bogus', 400, 'ParserConfigParseError'],
    ['duplicate array parameter', 'format=json&array=true&array=false', 400, 'InvalidParam'],
    ['unknown query keys are ignored', 'format=json&foo=bar&stream=x', 200, undefined],
    ['all legal parameters', 'format=json&update_format=insert_delete&array=true&force=false&json_flavor=default&lines=multiple', 200, undefined],
    ['update_format=raw', 'format=json&update_format=raw', 200, undefined],
    ['update_format=debezium', 'format=json&update_format=debezium&json_flavor=debezium_postgres', 200, undefined],
  ];
  for (const f of ['default', 'debezium_postgres', 'kafka_connect_json_converter', 'pandas', 'blockchain', 'c_hex', 'datagen', 'postgres', 'ClockInput'])
    cases.push([`json_flavor=${f}`, `format=json&json_flavor=${f}`, 200, undefined]);
  for (const [what, q, status, code] of cases) {
    const r = await ingress('orders', '', q);
    eq(`query: ${what}`, [r.status, r.json && r.json.error_code], [status, code]);
  }
  const r = await ingress('orders', '', 'format=json&array=true');
  check('200 body is {"token": string}', r.status === 200 && typeof r.json.token === 'string' && Object.keys(r.json).length === 1, r.text);
}

async function testFraming() {
  await ctl('POST', 'reset_state');
  let r = await ingress('orders', '  {"insert":{"id":1}}{"insert":{"id":2}}\t\r\n\n{"insert":\n {"id":\n3}}  [1]'.replace(' [1]', ''));
  eq('whitespace-separated values, values across lines', r.status, 200);
  eq('... all applied', (await rows('orders')).map((x) => x.id), [1, 2, 3]);
  r = await ingress('orders', '{"insert":{"id":4}} {"insert":\n{"id":5}}', 'format=json&lines=single');
  eq('lines=single: a value spanning lines is an error', r.status, 400);
  eq('lines=single: the one-line value was applied', (await rows('orders')).map((x) => x.id), [1, 2, 3, 4]);
  r = await ingress('orders', '[{"insert":{"id":6}},{"insert":{"id":7}}]\n[{"insert":{"id":8}}]', 'format=json&array=true');
  eq('array=true: arrays of events', r.status, 200);
  r = await ingress('orders', '{"insert":{"id":9}}', 'format=json&array=true');
  eq('array=true: a bare event is refused', [r.status, r.json.error_code], [400, 'ParseErrors']);
  r = await ingress('orders', '[{"insert":{"id":9}}]');
  eq('array=false: an array is refused', r.status, 400);
  r = await ingress('orders', '{"insert":{"id":10}}\n{"insert":{"id":11},}\n{"insert":{"id":12}}');
  eq('syntax error (trailing comma) -> 400', r.status, 400);
  check('syntax error reported as failure to parse a JSON document', /failed to parse string as a JSON document/.test(r.json.message), r.json.message);
  let ids = (await rows('orders')).map((x) => x.id);
  check('values before a syntax error are applied, the rest of the stream is not', ids.includes(10) && !ids.includes(12), ids);
  r = await ingress('orders', '\ufeff{"insert":{"id":13}}');
  eq('byte order mark refused', r.status, 400);
  r = await ingress('orders', Buffer.from([0x7b, 0x22, 0x69, 0x6e, 0x73, 0x65, 0x72, 0x74, 0x22, 0x3a, 0x7b, 0x22, 0x63, 0x75, 0x73, 0x74, 0x6f, 0x6d, 0x65, 0x72, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d, 0x7d]));
  eq('invalid UTF-8 refused', r.status, 400);
  r = await ingress('orders', '{"insert":{"id":14, "customer":"a\u0001b"}}');
  eq('raw control character inside a string refused', r.status, 400);
  r = await ingress('orders', '{"insert":{"id":14, "customer":"\\ud800"}}');
  eq('lone surrogate escape refused', r.status, 400);
  r = await ingress('orders', '{"insert":{"id":14, "customer":"\\ud83d\\ude00 \\u00e9"}}');
  eq('surrogate pair escapes accepted', r.status, 200);
  eq('... decoded', (await rows('orders')).find((x) => x.id === 14).customer, '😀 é');
  r = await ingress('orders', '{"insert":{"id":15}} 1x');
  eq('garbage after a value refused', r.status, 400);
  r = await ingress('orders', '{"insert":{"id":01}}');
  eq('leading zero in a number refused', r.status, 400);
  r = await ingress('orders', 'nul');
  eq('truncated literal refused', r.status, 400);
  r = await ingress('orders', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]');
  check('nesting beyond 128 refused as a syntax error', r.status === 400 && /recursion limit/.test(r.json.message), r.json && r.json.message);
  r = await ingress('orders', '');
  eq('empty body -> 200', r.status, 200);
  r = await ingress('orders', ' \n\t ');
  eq('whitespace-only body -> 200', r.status, 200);

  // Chunked transfer encoding: a streamed body of unknown length.
  const enc = new TextEncoder();
  const parts = ['{"insert":{"id":', '20}}\n{"ins', 'ert":{"id":21}}'];
  const stream = new ReadableStream({
    async pull(c) {
      if (!parts.length) { c.close(); return; }
      await sleep(20);
      c.enqueue(enc.encode(parts.shift()));
    },
  });
  r = await ingress('orders', stream);
  eq('chunked body -> 200', r.status, 200);
  const lg = await lastLog();
  eq('log records chunked transfer encoding', lg.chunked, true);
  ids = (await rows('orders')).map((x) => x.id);
  check('chunked body applied', ids.includes(20) && ids.includes(21), ids);

  // Expect: 100-continue.
  const cont = await new Promise((resolve, reject) => {
    const body = nd({ insert: { id: 22 } });
    const rq = http.request(`${S.base}/v0/pipelines/shop/ingress/orders?format=json`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, expect: '100-continue', 'content-length': Buffer.byteLength(body) },
    });
    let sawContinue = false;
    rq.on('continue', () => { sawContinue = true; rq.end(body); });
    rq.on('response', (res) => {
      let t = ''; res.on('data', (d) => { t += d; }); res.on('end', () => resolve({ sawContinue, status: res.statusCode, text: t }));
    });
    rq.on('error', reject);
    rq.flushHeaders();
  });
  eq('Expect: 100-continue answered, then 200', [cont.sawContinue, cont.status], [true, 200]);
  eq('log records Expect: 100-continue', (await lastLog()).expect_continue, true);
  check('100-continue body applied', (await rows('orders')).some((x) => x.id === 22));
}

async function testInsertDelete() {
  await ctl('POST', 'reset_state');
  let r = await ingress('orders', nd({ insert: { id: 1, customer: 'a' } }, { insert: { id: 1, customer: 'b' } }));
  eq('insert twice with a PK = upsert', [r.status, await rows('orders')].map((x, i) => (i ? x.map((y) => [y.id, y.customer]) : x)), [200, [[1, 'b']]]);
  r = await ingress('orders', nd({ delete: { id: 1 } }, { delete: { id: 99 } }));
  eq('delete by key; deleting a missing key is ignored', [r.status, (await rows('orders')).length], [200, 0]);
  eq('log counts deletes of missing keys', (await lastLog()).missing_deletes, 1);
  await ingress('orders', nd({ insert: { id: 2, customer: 'x', amount: '1.50', flag: true } }));
  r = await ingress('orders', nd({ update: { id: 2, amount: '2.5', flag: null } }));
  eq('partial update', r.status, 200);
  let row = (await rows('orders'))[0];
  eq('... changes only the given columns (null sets NULL)', [row.customer, row.amount, row.flag], ['x', '2.50', null]);
  const before = (await ctl('GET', 'violations')).json.violations.length;
  r = await ingress('orders', nd({ update: { id: 404, amount: '1' } }));
  eq('update of a missing key -> 200 (Feldera ignores it)', r.status, 200);
  const v = (await ctl('GET', 'violations')).json.violations;
  check('... but it is recorded as a violation', v.length === before + 1 && /update of key \[404\]/.test(v[v.length - 1].message), v);
  r = await ingress('orders', nd({ update: { amount: '1' } }));
  eq('update without the key columns -> 400', r.status, 400);
  check('... "missing field"', /missing field `id`/.test(r.json.message), r.json.message);
  r = await ingress('events', nd({ update: { k: 1 } }));
  eq('update on a table without PK -> 400', r.status, 400);
  check('... "update operation is not supported"', /update operation is not supported/.test(r.json.message), r.json.message);
  r = await ingress('orders', nd({ insert: { id: 2, customer: 'new' }, delete: { id: 2 } }));
  eq('one event with delete+insert: delete applied first', [r.status, (await rows('orders'))[0].customer], [200, 'new']);
  r = await ingress('orders', nd({ insert: { id: 3 }, delete: { id: 2 }, update: { id: 3, customer: 'u' } }));
  eq('delete, insert, update in one event', (await rows('orders')).map((x) => [x.id, x.customer]), [[3, 'u']]);
  for (const [what, ev] of [['unknown event key', { upsert: { id: 5 } }], ['"table" key', { table: 'orders', insert: { id: 5 } }],
    ['empty event', {}], ['all-null event', { insert: null, delete: null }], ['event that is a string', 'x']]) {
    r = await ingress('orders', JSON.stringify(ev));
    eq(`insert_delete: ${what} refused`, r.status, 400);
  }
  r = await ingress('orders', '{"insert":{"id":5},"insert":{"id":6}}');
  eq('duplicate "insert" key in an event refused', r.status, 400);
  check('no row from refused envelopes', !(await rows('orders')).some((x) => x.id === 5 || x.id === 6));

  // Not atomic: the good events around a bad one are applied.
  r = await ingress('orders', nd({ insert: { id: 10 } }, { insert: { id: 'eleven' } }, { insert: { id: 12 } }));
  eq('bad event in the middle -> 400 ParseErrors', [r.status, r.json.error_code], [400, 'ParseErrors']);
  eq('... message counts errors', r.json.message.split('\n')[0], 'Errors parsing input data (1 errors):');
  eq('... details: num_errors, event_number, field', [r.json.details.num_errors, r.json.details.errors[0].event_number, r.json.details.errors[0].field], [1, 2, 'id']);
  const ids = (await rows('orders')).map((x) => x.id);
  check('... good rows before and after were applied', ids.includes(10) && ids.includes(12) && !ids.includes(11), ids);
  // Within one event, operations before the failing one stay applied.
  r = await ingress('orders', nd({ delete: { id: 10 }, insert: { id: 10, amount: 'x' } }));
  eq('event with good delete and bad insert -> 400', r.status, 400);
  check('... the delete was applied', !(await rows('orders')).some((x) => x.id === 10));
  // array=true: one bad event drops the whole array, other arrays are applied.
  r = await ingress('orders', '[{"insert":{"id":20}},{"insert":{"id":"x"}}]\n[{"insert":{"id":21}}]', 'format=json&array=true');
  eq('array with a bad row -> 400', r.status, 400);
  let got = (await rows('orders')).map((x) => x.id);
  check('... that whole array is dropped, the next array applied', !got.includes(20) && got.includes(21), got);
  r = await ingress('orders', '[{"insert":{"id":22}},{"bogus":1}]\n[{"insert":{"id":23}}]', 'format=json&array=true');
  eq('array with a bad envelope -> 400 without event number', [r.status, r.json.details.errors[0].event_number], [400, null]);
  got = (await rows('orders')).map((x) => x.id);
  check('... that array dropped, the next applied', !got.includes(22) && got.includes(23), got);

  // Table without a primary key: a multiset.
  await ingress('events', nd({ insert: { k: 1, v: 'a' } }, { insert: { k: 1, v: 'a' } }, { insert: { k: 0, v: 'z' } }));
  eq('no PK: duplicate inserts kept; rows sorted by JSON text', await rows('events'), [{ k: 0, v: 'z' }, { k: 1, v: 'a' }, { k: 1, v: 'a' }]);
  r = await ingress('events', nd({ delete: { K: 1, V: 'a' } }));
  eq('no PK: delete removes one equal row', [r.status, (await rows('events')).length], [200, 2]);
  r = await ingress('events', nd({ delete: { k: 1 } }));
  eq('no PK: delete needs the full row (v missing = NULL, no such row) -> 400', r.status, 400);
  r = await ingress('events', nd({ delete: { k: 7, v: 'nope' } }, { insert: { k: 8, v: 'yes' } }));
  eq('no PK: deleting a missing row -> 400', r.status, 400);
  check('... reported as a fake violation', /fake: delete of a row that is not in table events/.test(r.json.message), r.json.message);
  const vs = (await ctl('GET', 'violations')).json.violations;
  check('... and recorded in /_fake/violations', /delete of a row that is not in table events/.test(vs[vs.length - 1].message), vs);
  check('... the other event was applied', (await rows('events')).some((x) => x.k === 8));
  eq('log counts violations', (await lastLog()).violations, 1);

  // Quoted table with NOT NULL column.
  r = await ingress('%22MixedCase%22', nd({ insert: { ID: 1, MUST: 'x' } }));
  eq('quoted table, unquoted columns matched case-insensitively', r.status, 200);
  r = await ingress('%22MixedCase%22', nd({ insert: { id: 2 } }));
  check('missing NOT NULL column -> "missing field"', r.status === 400 && /missing field `must`/.test(r.json.message), r.json.message);
  r = await ingress('%22MixedCase%22', nd({ insert: { id: 2, must: null } }));
  eq('null in a NOT NULL column -> 400', r.status, 400);
  r = await ingress('%22MixedCase%22', nd({ delete: { id: 1 } }));
  eq('PK table: delete with only the key columns', [r.status, (await rows('%22MixedCase%22')).length], [200, 0]);
  await ingress('%22MixedCase%22', nd({ insert: { id: 3, must: 'y' } }, { insert: { id: 4, must: 'z' } }));
  r = await ingress('%22MixedCase%22', nd({ delete: { id: 3, must: null } }, { delete: { id: 4, must: 5, MUST: [1], zz: 0 } }));
  eq('PK table: a delete reads only the key (null, bad type, repeated non-key columns skipped)',
    [r.status, (await rows('%22MixedCase%22')).length, (await lastLog()).ignored_keys], [200, 0, ['zz']]);
  await ingress('%22MixedCase%22', nd({ insert: { id: 5, must: 'w' } }));
  r = await ingress('%22MixedCase%22', nd({ delete: { ID: 5, must: null } }));
  eq('... and the key is read (unquoted key column: any case)', [r.status, (await rows('%22MixedCase%22')).length], [200, 0]);
  r = await ingress('%22MixedCase%22', nd({ delete: { must: 'w' } }));
  check('... and required', r.status === 400 && /missing field `id`/.test(r.json.message), r.json.message);
  r = await ingress('events', nd({ delete: { k: 1, v: 5 } }));
  check('no PK: a delete reads every column', r.status === 400 && /field 'v'/.test(r.json.message), r.json.message);
}

async function testRawAndDebezium() {
  await ctl('POST', 'reset_state');
  let r = await ingress('orders', nd({ id: 1, customer: 'r' }, { id: 2 }), 'format=json&update_format=raw');
  eq('raw: rows inserted', [r.status, (await rows('orders')).length], [200, 2]);
  r = await ingress('orders', '[{"id":3},{"id":4}]', 'format=json&update_format=raw&array=true');
  eq('raw + array=true', [r.status, (await rows('orders')).length], [200, 4]);
  r = await ingress('orders', '[3, "x"]', 'format=json&update_format=raw');
  eq('raw: positional array row refused', r.status, 400);

  const q = 'format=json&update_format=debezium&json_flavor=debezium_postgres';
  r = await ingress('orders', nd(
    { payload: { op: 'c', before: null, after: { id: 5, shipped: 19778, at: 45153483221, placed: 1708863153123, amount: '12.30', meta: '{"b":1,"a":2}' } } },
    { schema: {}, payload: { op: 'r', after: { id: 6 }, source: { lsn: 1 } } },
  ), q);
  eq('debezium_postgres: create/read events', r.status, 200);
  const row = (await rows('orders')).find((x) => x.id === 5);
  eq('debezium_postgres encodings: days, µs, ms, decimal string, VARIANT as JSON text',
    [row.shipped, row.at, row.placed, row.amount, row.meta], ['2024-02-25', '12:32:33.483221', '2024-02-25 12:12:33.123000', '12.30', { a: 2, b: 1 }]);
  r = await ingress('orders', nd({ payload: { op: 'u', before: { id: 5 }, after: { id: 5, customer: 'upd' } } }), q);
  eq('debezium update: before deleted, after inserted', [r.status, (await rows('orders')).find((x) => x.id === 5).customer], [200, 'upd']);
  r = await ingress('orders', nd({ payload: { op: 'd', before: { id: 6 }, after: null } }), q);
  check('debezium delete', r.status === 200 && !(await rows('orders')).some((x) => x.id === 6));
  for (const [what, ev] of [['missing payload', { after: { id: 7 } }], ['missing op', { payload: { after: { id: 7 } } }],
    ['bad op', { payload: { op: 'x', after: { id: 7 } } }], ['neither before nor after', { payload: { op: 'c' } }]]) {
    r = await ingress('orders', JSON.stringify(ev), q);
    eq(`debezium: ${what} refused`, r.status, 400);
  }
  r = await ingress('orders', nd({ payload: { op: 'c', after: { id: 8, shipped: '2024-02-25' } } }), q);
  eq('debezium_postgres: DATE as a string refused', r.status, 400);
  r = await ingress('orders', nd({ payload: { op: 'c', after: { id: 8, placed: '2024-02-25 00:00:00' } } }), q);
  eq('debezium_postgres: TIMESTAMP as a string refused', r.status, 400);
  r = await ingress('orders', nd({ payload: { op: 'c', after: { id: 8, at: 86400000000 } } }), q);
  eq('debezium_postgres: TIME beyond one day refused', r.status, 400);
  r = await ingress('orders', nd({ payload: { op: 'c', after: { id: 9, shipped: 0 } } }), 'format=json&update_format=debezium');
  eq('debezium with the default flavour uses default encodings', r.status, 400);

  r = await ingress('orders', nd({ weight: 1, data: { id: 30 } }), 'format=json&update_format=weighted');
  eq('weighted: not implemented by Feldera -> 500, nothing applied',
    [r.status, r.json.error_code, (await rows('orders')).some((x) => x.id === 30)], [500, 'FakeUnimplementedInFeldera', false]);
  r = await ingress('orders', '', 'format=json&update_format=redis');
  eq('redis with an empty body -> 200', r.status, 200);
  r = await ingress('orders', '{}', 'format=json&update_format=redis');
  eq('redis with data -> 500', r.status, 500);
}

// One row per case: [label, column, value, ok?, stored value when ok]
const VALUE_CASES = [
  ['BOOLEAN true', 'flag', true, true, true],
  ['BOOLEAN "true"', 'flag', 'true', false],
  ['BOOLEAN 1', 'flag', 1, false],
  ['TINYINT 127', 'tiny', 127, true, 127],
  ['TINYINT -128', 'tiny', -128, true, -128],
  ['TINYINT 128', 'tiny', 128, false],
  ['SMALLINT 32768', 'small', 32768, false],
  ['INTEGER 2147483647', 'i', 2147483647, true, 2147483647],
  ['INTEGER 2147483648', 'i', 2147483648, false],
  ['INTEGER 1.0', 'i', '#1.0', false],
  ['INTEGER 1e2', 'i', '#1e2', false],
  ['INTEGER "5"', 'i', '5', false],
  ['BIGINT max (exact)', 'id', '#9223372036854775807', true, '#9223372036854775807'],
  ['BIGINT min (exact)', 'id', '#-9223372036854775808', true, '#-9223372036854775808'],
  ['BIGINT max+1', 'id', '#9223372036854775808', false],
  ['REAL 1.5', 'score', 1.5, true, 1.5],
  ['REAL 0.1 (shortest f32)', 'score', 0.1, true, 0.1],
  ['REAL 1e39 overflows', 'score', '#1e39', false],
  ['REAL integer', 'score', 3, true, 3],
  ['DOUBLE 1e300', 'ratio', '#1e300', true, 1e300],
  ['DOUBLE 1e400', 'ratio', '#1e400', false],
  ['DOUBLE "NaN"', 'ratio', 'NaN', false],
  ['DOUBLE "Infinity"', 'ratio', 'Infinity', false],
  ['DOUBLE "1.5"', 'ratio', '1.5', false],
  ['DECIMAL "12.5"', 'amount', '12.5', true, '12.50'],
  ['DECIMAL "12.340" (trailing zero normalizes)', 'amount', '12.340', true, '12.34'],
  ['DECIMAL "12.345" (3 fractional digits)', 'amount', '12.345', false],
  ['DECIMAL "99999999.99" (max)', 'amount', '99999999.99', true, '99999999.99'],
  ['DECIMAL "123456789" (9 integer digits)', 'amount', '123456789', false],
  ['DECIMAL "-1e3"', 'amount', '-1e3', true, '-1000.00'],
  ['DECIMAL ".5"', 'amount', '.5', true, '0.50'],
  ['DECIMAL "-0.00"', 'amount', '-0.00', true, '0.00'],
  ['DECIMAL number 0.1', 'amount', 0.1, true, '0.10'],
  ['DECIMAL number with 17 significant digits', 'amount', '#1234567.1234567891', false],
  ['DECIMAL "NaN"', 'amount', 'NaN', false],
  ['DECIMAL " 1"', 'amount', ' 1', false],
  ['DECIMAL "abc"', 'amount', 'abc', false],
  ['DECIMAL true', 'amount', true, false],
  ['VARCHAR number', 'customer', 5, false],
  ['CHAR(3) longer string (length not enforced)', 'code', 'abcdef', true, 'abcdef'],
  ['DATE "2024-02-29"', 'shipped', '2024-02-29', true, '2024-02-29'],
  ['DATE "2023-02-29"', 'shipped', '2023-02-29', false],
  ['DATE "2024-2-5"', 'shipped', '2024-2-5', true, '2024-02-05'],
  ['DATE " 2024-02-05 " (trimmed)', 'shipped', ' 2024-02-05 ', true, '2024-02-05'],
  ['DATE "0000-01-01"', 'shipped', '0000-01-01', false],
  ['DATE "2024-02-25T00:00:00"', 'shipped', '2024-02-25T00:00:00', false],
  ['DATE "infinity"', 'shipped', 'infinity', false],
  ['DATE number', 'shipped', 19778, false],
  ['TIME "12:12:33.483221"', 'at', '12:12:33.483221', true, '12:12:33.483221'],
  ['TIME "1:2:3"', 'at', '1:2:3', true, '01:02:03'],
  ['TIME 9 fractional digits', 'at', '23:59:09.483221092', true, '23:59:09.483221092'],
  ['TIME 10 fractional digits', 'at', '23:59:09.4832210921', false],
  ['TIME "25:00:00"', 'at', '25:00:00', false],
  ['TIME "12:00"', 'at', '12:00', false],
  ['TIME "12:00:60"', 'at', '12:00:60', false],
  ['TIMESTAMP "2024-02-25 12:12:33.123456"', 'placed', '2024-02-25 12:12:33.123456', true, '2024-02-25 12:12:33.123456'],
  ['TIMESTAMP RFC 3339 Z', 'placed', '2024-02-25T12:12:33Z', true, '2024-02-25 12:12:33'],
  ['TIMESTAMP offset converted to UTC', 'placed', '2024-02-25T01:00:00+02:00', true, '2024-02-24 23:00:00'],
  ['TIMESTAMP negative offset', 'placed', '2024-12-31T23:30:00.5-01:00', true, '2025-01-01 00:30:00.500000'],
  ['TIMESTAMP 7 digits trimmed to µs', 'placed', '2024-02-25T12:12:33.1234567Z', true, '2024-02-25 12:12:33.123456'],
  ['TIMESTAMP before 1970', 'placed', '1969-12-31 23:59:59.999999', true, '1969-12-31 23:59:59.999999'],
  ['TIMESTAMP "2024-02-25"', 'placed', '2024-02-25', false],
  ['TIMESTAMP month 13', 'placed', '2024-13-01 00:00:00', false],
  ['TIMESTAMP offset without colon', 'placed', '2024-02-25T12:12:33+0200', false],
  ['TIMESTAMP "infinity"', 'placed', 'infinity', false],
  ['TIMESTAMP number', 'placed', 1708863153123, false],
  ['TIMESTAMP below year 1 after UTC conversion', 'placed', '0001-01-01T00:00:00+01:00', false],
  ['BINARY [0,255]', 'blob', [0, 255], true, [0, 255]],
  ['BINARY [256]', 'blob', [256], false],
  ['BINARY [-1]', 'blob', [-1], false],
  ['BINARY [1.5]', 'blob', '#[1.5]', false],
  ['BINARY "\\\\x00ff"', 'blob', '\\x00ff', false],
  ['BINARY base64 string', 'blob', 'AP8=', false],
  ['BINARY(2) length not enforced', 'bin', [1, 2, 3], true, [1, 2, 3]],
  ['UUID hyphenated', 'uid', '67E55044-10B1-426F-9247-BB680E5FE0C8', true, '67e55044-10b1-426f-9247-bb680e5fe0c8'],
  ['UUID 32 hex digits', 'uid', '67e5504410b1426f9247bb680e5fe0c8', true, '67e55044-10b1-426f-9247-bb680e5fe0c8'],
  ['UUID braced', 'uid', '{67e55044-10b1-426f-9247-bb680e5fe0c8}', true, '67e55044-10b1-426f-9247-bb680e5fe0c8'],
  ['UUID 31 hex digits', 'uid', '67e5504410b1426f9247bb680e5fe0c', false],
  ['UUID not hex', 'uid', 'not-a-uuid', false],
  ['UUID byte array', 'uid', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], false],
  ['ARRAY with null element', 'tags', ['a', null], true, ['a', null]],
  ['ARRAY as a string', 'tags', 'a', false],
  ['ARRAY wrong element type', 'tags', [1], false],
  ['INT[] elements range-checked', 'nums', [1, 2147483648], false],
  ['VARIANT object (keys sorted)', 'meta', { b: [true, null], a: 1.50 }, true, { a: 1.5, b: [true, null] }],
  ['VARIANT big number kept exactly', 'meta', '#123456789012345678901234567890', true, '#123456789012345678901234567890'],
  ['VARIANT string', 'meta', 'txt', true, 'txt'],
  ['MAP<VARCHAR,INT>', 'm', { x: 1, a: null }, true, { a: null, x: 1 }],
  ['MAP wrong value type', 'm', { x: '1' }, false],
  ['nullable column given null', 'customer', null, true, null],
];

// '#…' marks raw JSON text (numbers JSON.stringify cannot express exactly).
const jsonOf = (v) => (typeof v === 'string' && v.startsWith('#') ? v.slice(1) : JSON.stringify(v));

async function testValues() {
  await ctl('POST', 'reset_state');
  let n = 1000;
  for (const [label, col, value, ok, stored] of VALUE_CASES) {
    const id = col === 'id' ? null : ++n;
    const body = `{"insert":{${id === null ? '' : `"id":${id},`}"${col}":${jsonOf(value)}}}`;
    const r = await ingress('orders', body);
    if (!ok) {
      check(`value: ${label} refused (400 ParseErrors)`, r.status === 400 && r.json.error_code === 'ParseErrors', r.text);
      continue;
    }
    if (!check(`value: ${label} accepted`, r.status === 200, r.text)) continue;
    // Compare on the exact JSON text the fake returns (rows are in column order).
    const text = (await ctl('GET', 'pipelines/shop/tables/orders')).text;
    if (col === 'id') { check(`value: ${label} stored exactly`, text.includes(`{"id":${jsonOf(value)},`), text); continue; }
    const want = typeof stored === 'string' && stored.startsWith('#') ? stored.slice(1) : JSON.stringify(stored);
    const at = text.indexOf(`{"id":${id},`);
    const next = text.indexOf('{"id":', at + 1);
    const seg = at < 0 ? '' : text.slice(at, next < 0 ? text.length : next);
    check(`value: ${label} stored as ${want}`, seg.includes(`"${col}":${want},`) || seg.includes(`"${col}":${want}}`), seg);
  }
  // Keys, nulls, unknown keys.
  let r = await ingress('orders', '{"insert":{"ID":5000,"CUSTOMER":"up","Note":"n","extra":1,"Other":2}}');
  eq('keys matched case-insensitively; unknown keys ignored', r.status, 200);
  const row = (await rows('orders')).find((x) => x.id === 5000);
  eq('... stored', [row.customer, row.Note, row.req], ['up', 'n', null]);
  eq('log lists the ignored keys', (await lastLog()).ignored_keys, ['extra', 'Other']);
  r = await ingress('orders', '{"insert":{"id":5001,"note":"n"}}');
  check('quoted column needs its exact case', r.status === 400 && /incorrect case-sensitive field name: expected: Note, found: note/.test(r.json.message), r.json.message);
  r = await ingress('orders', '{"insert":{"id":5002,"customer":"a","CUSTOMER":"b"}}');
  eq('the same column twice (any case) refused', r.status, 400);
  r = await ingress('orders', '{"insert":{"customer":"a"}}');
  check('missing NOT NULL key column -> "missing field `id`"', r.status === 400 && /missing field `id`/.test(r.json.message), r.json.message);
  r = await ingress('orders', '{"insert":{"id":null}}');
  eq('null in NOT NULL column refused', r.status, 400);
  r = await ingress('orders', '{"insert":["a"]}');
  eq('row that is not an object refused', r.status, 400);

  // Flavours that change BINARY / VARIANT encodings.
  r = await ingress('orders', '{"insert":{"id":6000,"blob":"0x01fF"}}', 'format=json&json_flavor=c_hex');
  eq('c_hex: BINARY as a hex string', [r.status, (await rows('orders')).find((x) => x.id === 6000).blob], [200, [1, 255]]);
  r = await ingress('orders', '{"insert":{"id":6001,"blob":"0x01f"}}', 'format=json&json_flavor=c_hex');
  eq('c_hex: odd number of hex digits refused', r.status, 400);
  r = await ingress('orders', '{"insert":{"id":6002,"blob":"0x01ff"}}');
  eq('default flavour: hex string refused', r.status, 400);
  r = await ingress('orders', '{"insert":{"id":6003,"meta":{"a":1}}}', 'format=json&json_flavor=c_hex');
  eq('c_hex: VARIANT must be JSON text', r.status, 400);
  r = await ingress('orders', '{"insert":{"id":6004,"blob":[1]}}', 'format=json&json_flavor=postgres');
  eq('postgres flavour: BINARY input not supported', r.status, 400);
  r = await ingress('orders', '{"insert":{"id":6005,"blob":"1112"}}', 'format=json&json_flavor=blockchain');
  eq('blockchain: BINARY as base58', [r.status, (await rows('orders')).find((x) => x.id === 6005).blob], [200, [0, 0, 0, 1]]);
  r = await ingress('orders', '{"insert":{"id":6006,"placed":1708863153123,"at":45153483,"shipped":19778}}', 'format=json&json_flavor=kafka_connect_json_converter');
  eq('kafka_connect_json_converter: ms timestamps, ms times, epoch days', r.status, 200);
  const k = (await rows('orders')).find((x) => x.id === 6006);
  eq('... decoded', [k.placed, k.at, k.shipped], ['2024-02-25 12:12:33.123000', '12:32:33.483000', '2024-02-25']);
}

async function testFaults() {
  await ctl('POST', 'reset_state');
  let r = await ctl('POST', 'faults', { status: 503, count: 2 });
  eq('fault 503 x2 set', r.status, 200);
  for (let i = 0; i < 2; i++) {
    r = await ingress('orders', nd({ insert: { id: 100 + i } }));
    eq(`503 #${i + 1} PipelineInteractionNotDeployed`, [r.status, r.json.error_code], [503, 'PipelineInteractionNotDeployed']);
  }
  eq('... nothing applied during 503', (await rows('orders')).length, 0);
  r = await ingress('orders', nd({ insert: { id: 102 } }));
  eq('after the faults: 200', r.status, 200);
  await ctl('POST', 'faults', { status: 429, count: 1 });
  r = await ingress('orders', nd({ insert: { id: 103 } }));
  eq('429 ApiConnectionLimit, not applied', [r.status, r.json.error_code, (await rows('orders')).length], [429, 'ApiConnectionLimit', 1]);
  await ctl('POST', 'faults', { status: 503, count: 1 });
  r = await ingress('orders', '', 'format=json', { auth: 'wrong' });
  eq('auth failures do not consume faults', r.status, 401);
  r = await ingress('orders', '');
  eq('... the 503 is still pending', r.status, 503);

  await ctl('POST', 'faults', { reset: 1 });
  let err = null;
  try { await ingress('orders', nd({ insert: { id: 104 } })); } catch (e) { err = e; }
  check('reset fault: the connection is destroyed mid-body', err !== null, err);
  eq('... not applied', (await rows('orders')).some((x) => x.id === 104), false);
  r = await ingress('orders', nd({ insert: { id: 104 } }));
  eq('... the next request works', r.status, 200);

  await ctl('POST', 'faults', { delay_ms: 600, count: 1 });
  let t0 = Date.now();
  r = await ingress('orders', nd({ insert: { id: 105 } }));
  check('delay fault: answered after the delay', r.status === 200 && Date.now() - t0 >= 550, Date.now() - t0);
  check('... and applied', (await rows('orders')).some((x) => x.id === 105));
  await ctl('POST', 'faults', { delay_ms: 500, count: 1 });
  err = null;
  try { await ingress('orders', nd({ insert: { id: 106 } }), 'format=json', { signal: AbortSignal.timeout(100) }); } catch (e) { err = e; }
  check('delay fault: client gives up', err !== null);
  await sleep(700);
  check('... the data is applied anyway (Feldera keeps what it ingested)', (await rows('orders')).some((x) => x.id === 106));

  // Pause: held until unpaused unless force=true.
  await ctl('POST', 'faults', { pause: true });
  let settled = null;
  const held = ingress('orders', nd({ insert: { id: 107 } })).then((x) => { settled = x; return x; });
  await sleep(400);
  check('paused: request held', settled === null);
  eq('paused: not applied while held', (await rows('orders')).some((x) => x.id === 107), false);
  r = await ingress('orders', nd({ insert: { id: 108 } }), 'format=json&force=true');
  check('paused: force=true goes through', r.status === 200 && (await rows('orders')).some((x) => x.id === 108), r.text);
  await ctl('POST', 'faults', { pause: false });
  r = await held;
  check('unpaused: held request completes and applies', r.status === 200 && (await rows('orders')).some((x) => x.id === 107), r.text);
  const lg = (await ctl('GET', 'log')).json.filter((e) => e.held);
  check('log records held_ms', lg.length > 0 && lg[lg.length - 1].held_ms >= 300, lg);
  await ctl('POST', 'faults', { pause: true });
  const held2 = ingress('orders', nd({ insert: { id: 109 } }));
  await sleep(100);
  await ctl('POST', 'faults', { clear: true });
  r = await held2;
  eq('clear releases a paused pipeline', r.status, 200);
  await ctl('POST', 'faults', { status: 503, count: 5 });
  await ctl('POST', 'faults', { clear: true });
  r = await ingress('orders', '');
  eq('clear drops pending faults', r.status, 200);
  r = await ctl('POST', 'faults', { status: 418 });
  eq('control: unsupported fault status refused', r.status, 400);
  r = await ctl('POST', 'faults', { status: 503, reset: 1 });
  eq('control: two faults in one request refused', r.status, 400);
}

async function testCompletion() {
  let r = await ingress('orders', nd({ insert: { id: 200 } }));
  const token = r.json.token;
  const cs = (tok, more) => req('GET', `/v0/pipelines/shop/completion_status${tok === undefined ? '' : `?token=${encodeURIComponent(tok)}`}`, more);
  r = await cs(token);
  check('completion: 200 complete with a step', r.status === 200 && r.json.status === 'complete' && Number.isInteger(r.json.step), r.text);
  await ctl('POST', 'completion', { mode: 'inprogress' });
  r = await cs(token);
  eq('completion: 202 inprogress', [r.status, r.json.status], [202, 'inprogress']);
  await ctl('POST', 'completion', { mode: 'gone' });
  r = await cs(token);
  eq('completion: 410 gone', r.status, 410);
  await ctl('POST', 'completion', { mode: 'complete' });
  r = await cs('garbage');
  eq('completion: unknown token -> 400', [r.status, r.json.error_code], [400, 'InvalidParam']);
  r = await cs(Buffer.from(JSON.stringify({ p: 'shop', i: 'x', s: 1, n: 1 })).toString('base64'));
  eq('completion: forged token -> 400', r.status, 400);
  r = await cs(undefined);
  eq('completion: missing token -> 400', r.status, 400);
  r = await cs(token, { auth: null });
  eq('completion: needs the API key', r.status, 401);
  r = await req('GET', `/v0/pipelines/nosuch/completion_status?token=${encodeURIComponent(token)}`);
  eq('completion: unknown pipeline -> 404', r.status, 404);
  r = await req('POST', `/v0/pipelines/shop/completion_status?token=${encodeURIComponent(token)}`);
  eq('completion: POST -> 405', r.status, 405);
  await ctl('POST', 'pipelines/shop/restart');
  r = await cs(token);
  eq('completion: token from before a restart -> 410 PipelineRestarted', [r.status, r.json.error_code], [410, 'PipelineRestarted']);
  check('restart keeps the rows', (await rows('orders')).some((x) => x.id === 200));
  r = await ingress('orders', '');
  r = await cs(r.json.token);
  eq('completion: new token after a restart works', r.status, 200);
}

async function testKeepAliveAndLog() {
  await ctl('DELETE', 'log');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (body) => new Promise((resolve, reject) => {
    const rq = http.request(`${S.base}/v0/pipelines/shop/ingress/orders?format=json`, {
      method: 'POST', agent, headers: { authorization: `Bearer ${KEY}`, 'content-length': Buffer.byteLength(body) },
    }, (res) => { let t = ''; res.on('data', (d) => { t += d; }); res.on('end', () => resolve({ status: res.statusCode, text: t })); });
    rq.on('error', reject);
    rq.end(body);
  });
  for (let i = 0; i < 3; i++) await post(nd({ insert: { id: 300 + i } }));
  await post('{"insert":{"id":"bad"}}');                  // a 400 keeps the connection too
  await post(nd({ insert: { id: 304 } }));
  agent.destroy();
  let lg = (await ctl('GET', 'log')).json.filter((e) => e.kind === 'ingress');
  eq('keep-alive: one socket for five requests', new Set(lg.map((e) => e.socket_id)).size, 1);
  eq('keep-alive: same remote port', new Set(lg.map((e) => e.remote_port)).size, 1);
  eq('keep-alive: per-socket request index', lg.map((e) => e.socket_request_index), [1, 2, 3, 4, 5]);
  eq('keep-alive: statuses', lg.map((e) => e.status), [200, 200, 200, 400, 200]);

  await ctl('DELETE', 'log');
  for (let i = 0; i < 4; i++) await ingress('orders', nd({ insert: { id: 310 + i } }));
  lg = (await ctl('GET', 'log')).json;
  check('keep-alive: fetch reuses its connection', lg.some((e) => e.reused_connection), lg.map((e) => e.socket_id));

  const e = lg[lg.length - 1];
  for (const k of ['seq', 'kind', 'method', 'path', 'query', 'status', 'events', 'updates', 'errors', 'started_at', 'finished_at',
    'duration_ms', 'remote_port', 'socket_id', 'socket_request_index', 'authorization', 'bytes', 'pipeline', 'table', 'token'])
    check(`log entry has ${k}`, k in e, e);
  eq('log entry values', [e.kind, e.method, e.path, e.query, e.status, e.events, e.authorization],
    ['ingress', 'POST', '/v0/pipelines/shop/ingress/orders', { format: 'json' }, 200, 1, { present: true, ok: true }]);
  const since = (await ctl('GET', `log?since=${e.seq - 1}`)).json;
  eq('log?since= filters', since.length, 1);
}

async function testSortingAndReset() {
  await ctl('POST', 'reset_state');
  await ingress('orders', nd({ insert: { id: 10 } }, { insert: { id: -2 } }, { insert: { id: 33 } }, { insert: { id: 9 } }));
  eq('rows sorted by primary key (numerically)', (await rows('orders')).map((x) => x.id), [-2, 9, 10, 33]);
  await ctl('POST', 'pipelines/multi', {
    tables: [{ name: 't', columns: [{ name: 'a', type: 'VARCHAR', nullable: false }, { name: 'b', type: 'DECIMAL(5,1)', nullable: false }], primary_key: ['a', 'b'] }],
  });
  await ingress('t', nd({ insert: { a: 'y', b: '10' } }, { insert: { a: 'x', b: '9.5' } }, { insert: { a: 'x', b: '-1' } }), 'format=json', { pipeline: 'multi' });
  eq('composite key sort', (await rows('t', 'multi')).map((x) => [x.a, x.b]), [['x', '-1.0'], ['x', '9.5'], ['y', '10.0']]);
  const r = await ctl('POST', 'reset_state');
  check('reset_state clears every table', r.status === 200 && (await rows('orders')).length === 0 && (await rows('t', 'multi')).length === 0);
  eq('control: unknown table -> 404', (await ctl('GET', 'pipelines/shop/tables/nosuch')).status, 404);
  eq('control: DELETE pipeline', (await ctl('DELETE', 'pipelines/multi')).status, 200);
  eq('... then ingress -> 404', (await ingress('t', '', 'format=json', { pipeline: 'multi' })).status, 404);
}

async function testStateFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-feldera-'));
  const file = path.join(dir, 'state.json');
  const saved = S;
  try {
    S = await startFake(['--api-key', KEY, '--state-file', file]);
    await ctl('POST', 'pipelines/shop', SHOP);
    const r = await ingress('orders', nd({ insert: { id: 1, amount: '1.5', placed: '2024-02-25T12:00:00Z', meta: { z: 1 }, blob: [7], score: 0.1, m: { k: 2 } } }, { insert: { id: 2 } }));
    eq('state file: ingest before restart', r.status, 200);
    await ingress('events', nd({ insert: { k: 1, v: 'a' } }, { insert: { k: 1, v: 'a' } }));
    const before = (await ctl('GET', 'pipelines/shop/tables/orders')).text;
    await stopFake(S);
    S = await startFake(['--api-key', KEY, '--state-file', file]);
    eq('state file: rows survive a restart of the fake', (await ctl('GET', 'pipelines/shop/tables/orders')).text, before);
    eq('state file: multiset rows survive', (await rows('events')).length, 2);
    const cs = await req('GET', `/v0/pipelines/shop/completion_status?token=${encodeURIComponent(r.json.token)}`);
    eq('state file: tokens from before the restart -> 410', cs.status, 410);
    await stopFake(S);
  } finally {
    S = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function testNoApiKey() {
  const saved = S;
  try {
    S = await startFake([]);
    await ctl('POST', 'pipelines/p', { tables: [{ name: 't', columns: [{ name: 'a', type: 'INT' }] }] });
    const r = await ingress('t', '{"insert":{"a":1}}', 'format=json', { pipeline: 'p', auth: null });
    eq('without --api-key no Authorization is needed', r.status, 200);
    eq('... and the log says none was sent', (await lastLog()).authorization, { present: false, ok: true });
    await stopFake(S);
  } finally { S = saved; }
}

async function main() {
  S = await startFake(['--api-key', KEY]);
  const t0 = Date.now();
  try {
    await testControl();
    await testRoutingAndAuth();
    await testQuery();
    await testFraming();
    await testInsertDelete();
    await testRawAndDebezium();
    await testValues();
    await testFaults();
    await testCompletion();
    await testKeepAliveAndLog();
    await testSortingAndReset();
    await testStateFile();
    await testNoApiKey();
  } catch (e) {
    check(`no exception (${e.stack})`, false);
  } finally {
    const err = S.stderr();
    check('fake wrote nothing to stderr', err === '', err);
    await stopFake(S);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
  console.log(`${passed} passed, ${failures.length} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  process.exit(failures.length ? 1 : 0);
}

main();
