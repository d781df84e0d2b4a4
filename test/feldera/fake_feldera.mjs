// Strict fake of Feldera's HTTP ingress API, for the tests of the feldera target.
//
// usage: node fake_feldera.mjs --port P [--host H] [--api-key KEY] [--state-file F]
//                              [--keep-alive-ms MS] [--log-bodies]
//
// Prints "listening <port>" on stdout once it accepts connections (--port 0 picks a
// free port).  Feldera itself cannot run here, so this server enforces the published
// ingress contract (docs.feldera.com formats/json, connectors/sources/http,
// connectors/completion-tokens; feldera/feldera at openapi 0.337.0) as strictly as
// possible and is stricter still where Feldera silently loses or ignores data.  Every
// deviation from Feldera's behaviour is marked "fake-strict" in the error it returns
// and listed in README.md.  Tests declare pipelines and tables through /_fake/, push
// data through /v0/pipelines/{p}/ingress/{t}, and read back table contents, the
// request log and the contract violations.
//
// No npm dependencies: node:http, node:fs, node:crypto only.

import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';

// ---------------------------------------------------------------------------
// Command line

const opts = {
  port: null, host: '127.0.0.1', apiKey: null, stateFile: null,
  keepAliveMs: 5000, logBodies: false,
};
{
  const args = process.argv.slice(2);
  while (args.length > 0) {
    const a = args.shift();
    const need = () => {
      if (args.length === 0) usage(`option ${a} needs a value`);
      return args.shift();
    };
    if (a === '--port') opts.port = Number(need());
    else if (a === '--host') opts.host = need();
    else if (a === '--api-key') opts.apiKey = need();
    else if (a === '--state-file') opts.stateFile = need();
    else if (a === '--keep-alive-ms') opts.keepAliveMs = Number(need());
    else if (a === '--log-bodies') opts.logBodies = true;
    else usage(`unrecognized option ${a}`);
  }
  if (opts.port === null || !Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)
    usage('--port is required (0 picks a free port)');
  if (!Number.isInteger(opts.keepAliveMs) || opts.keepAliveMs < 0)
    usage('--keep-alive-ms must be a non-negative integer');
}

function usage(msg) {
  process.stderr.write(`fake_feldera: ${msg}\n` +
    'usage: node fake_feldera.mjs --port P [--host H] [--api-key KEY] [--state-file F] ' +
    '[--keep-alive-ms MS] [--log-bodies]\n');
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Strict JSON (RFC 8259, as serde_json parses it).  Numbers keep their source text
// (JNum) so that integer ranges and decimals are checked exactly; objects keep their
// entries in order, duplicates included (JObj).

class JNum {
  constructor(raw) { this.raw = raw; }
  get isInt() { return /^-?\d+$/.test(this.raw); }
}

class JObj {
  constructor(entries) { this.entries = entries; }
  get(key) {
    for (const [k, v] of this.entries) if (k === key) return v;
    return undefined;
  }
}

class JsonSyntaxError extends Error {
  constructor(msg, pos) { super(msg); this.pos = pos; }
}

const MAX_DEPTH = 128;        // serde_json's recursion limit
const NUM_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

class JsonParser {
  constructor(text) { this.s = text; this.i = 0; }

  eof() { return this.i >= this.s.length; }

  skipWs() {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else break;
    }
  }

  fail(msg) {
    // serde_json reports line and column; so do we.
    const before = this.s.slice(0, this.i);
    const line = before.split('\n').length;
    const column = this.i - before.lastIndexOf('\n');
    throw new JsonSyntaxError(`${msg} at line ${line} column ${column}`, this.i);
  }

  // One top-level value; the stream form allows whitespace-separated values, and a
  // number must be followed by whitespace or the end of input.
  top() {
    const v = this.value(0);
    if (v instanceof JNum && !this.eof()) {
      const c = this.s.charCodeAt(this.i);
      if (!(c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d)) this.fail('trailing characters');
    }
    return v;
  }

  value(depth) {
    this.skipWs();
    if (this.eof()) this.fail('EOF while parsing a value');
    const c = this.s[this.i];
    if (c === '{') return this.object(depth + 1);
    if (c === '[') return this.array(depth + 1);
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    if (this.s.startsWith('true', this.i)) { this.i += 4; return true; }
    if (this.s.startsWith('false', this.i)) { this.i += 5; return false; }
    if (this.s.startsWith('null', this.i)) { this.i += 4; return null; }
    this.fail('expected value');
  }

  number() {
    NUM_RE.lastIndex = this.i;
    const m = NUM_RE.exec(this.s);
    if (!m) this.fail('invalid number');
    this.i += m[0].length;
    const c = this.s[this.i];
    if (c !== undefined && /[0-9.eE+-]/.test(c)) this.fail('invalid number');
    return new JNum(m[0]);
  }

  string() {
    const s = this.s;
    this.i++;                                   // opening quote
    let out = '';
    let start = this.i;
    for (;;) {
      if (this.i >= s.length) this.fail('EOF while parsing a string');
      const code = s.charCodeAt(this.i);
      if (code === 0x22) {
        out += s.slice(start, this.i);
        this.i++;
        return out;
      }
      if (code < 0x20) this.fail('control character (\\u0000-\\u001F) found while parsing a string');
      if (code !== 0x5c) { this.i++; continue; }
      out += s.slice(start, this.i);
      this.i++;
      const e = s[this.i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hi = this.hex4();
          if (hi >= 0xdc00 && hi <= 0xdfff) this.fail('lone trailing surrogate in hex escape');
          if (hi >= 0xd800 && hi <= 0xdbff) {
            if (s[this.i] !== '\\' || s[this.i + 1] !== 'u') this.fail('lone leading surrogate in hex escape');
            this.i += 2;
            const lo = this.hex4();
            if (lo < 0xdc00 || lo > 0xdfff) this.fail('lone leading surrogate in hex escape');
            out += String.fromCharCode(hi, lo);
          } else {
            out += String.fromCharCode(hi);
          }
          break;
        }
        default:
          this.i--;
          this.fail('invalid escape');
      }
      start = this.i;
    }
  }

  hex4() {
    const h = this.s.slice(this.i, this.i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail('invalid escape');
    this.i += 4;
    return parseInt(h, 16);
  }

  array(depth) {
    if (depth > MAX_DEPTH) this.fail('recursion limit exceeded');
    this.i++;
    const out = [];
    this.skipWs();
    if (this.s[this.i] === ']') { this.i++; return out; }
    for (;;) {
      out.push(this.value(depth));
      this.skipWs();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') { this.i--; this.fail(c === undefined ? 'EOF while parsing a list' : 'expected `,` or `]`'); }
      this.skipWs();
      if (this.s[this.i] === ']') this.fail('trailing comma');
    }
  }

  object(depth) {
    if (depth > MAX_DEPTH) this.fail('recursion limit exceeded');
    this.i++;
    const entries = [];
    this.skipWs();
    if (this.s[this.i] === '}') { this.i++; return new JObj(entries); }
    for (;;) {
      this.skipWs();
      if (this.s[this.i] !== '"') this.fail(this.eof() ? 'EOF while parsing an object' : 'key must be a string');
      const k = this.string();
      this.skipWs();
      if (this.s[this.i] !== ':') this.fail(this.eof() ? 'EOF while parsing an object' : 'expected `:`');
      this.i++;
      const v = this.value(depth);
      entries.push([k, v]);
      this.skipWs();
      const c = this.s[this.i++];
      if (c === '}') return new JObj(entries);
      if (c !== ',') { this.i--; this.fail(c === undefined ? 'EOF while parsing an object' : 'expected `,` or `}`'); }
      this.skipWs();
      if (this.s[this.i] === '}') this.fail('trailing comma');
    }
  }
}

function parseJsonStrict(text) {
  const p = new JsonParser(text);
  p.skipWs();
  const v = p.top();
  p.skipWs();
  if (!p.eof()) p.fail('trailing characters');
  return v;
}

// Serializes plain values, BigInt (as a JSON integer), JNum (its source text) and
// JObj (its entries, in order).
function emit(v) {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'boolean': return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new Error('cannot emit a non-finite number');
      return JSON.stringify(v);
    case 'bigint': return v.toString();
    case 'string': return JSON.stringify(v);
    default: break;
  }
  if (v instanceof JNum) return v.raw;
  if (Array.isArray(v)) return '[' + v.map(emit).join(',') + ']';
  if (v instanceof JObj) return '{' + v.entries.map(([k, x]) => JSON.stringify(k) + ':' + emit(x)).join(',') + '}';
  return '{' + Object.keys(v).filter((k) => v[k] !== undefined)
    .map((k) => JSON.stringify(k) + ':' + emit(v[k])).join(',') + '}';
}

// serde-style description of an unexpected JSON value.
function describe(v) {
  if (v === null) return 'null';
  if (v === true || v === false) return `boolean \`${v}\``;
  if (v instanceof JNum) return v.isInt ? `integer \`${v.raw}\`` : `floating point \`${v.raw}\``;
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (Array.isArray(v)) return 'sequence';
  return 'map';
}

// ---------------------------------------------------------------------------
// SQL types

const INT_TYPES = {
  TINYINT: 8, SMALLINT: 16, INT2: 16, INTEGER: 32, INT: 32, INT4: 32, SIGNED: 32,
  BIGINT: 64, INT8: 64, INT64: 64,
};

function intType(bits, unsigned) {
  const name = (unsigned ? 'u' : 'i') + bits;
  const min = unsigned ? 0n : -(1n << BigInt(bits - 1));
  const max = unsigned ? (1n << BigInt(bits)) - 1n : (1n << BigInt(bits - 1)) - 1n;
  return { kind: 'int', bits, unsigned, min, max, rust: name };
}

class SchemaError extends Error {}

// Parses a SQL type name as Feldera's compiler spells them (docs sql/types.md).
// Nullability is the column's "nullable" flag; ARRAY elements and MAP values are
// always nullable, MAP keys never.
function parseType(text) {
  let t = String(text).trim().replace(/\s+/g, ' ');
  if (t === '') throw new SchemaError('empty type');
  const upper = t.toUpperCase();
  if (/\bNOT NULL$|\bNULL$/.test(upper))
    throw new SchemaError(`type "${text}": use the column's "nullable" flag instead of NULL / NOT NULL ` +
      '(ARRAY elements and MAP values are always nullable in Feldera)');
  if (upper.endsWith(' ARRAY')) return { kind: 'array', elem: parseType(t.slice(0, -6)) };
  if (upper.endsWith('[]')) return { kind: 'array', elem: parseType(t.slice(0, -2)) };
  if (upper.startsWith('MAP<') || upper.startsWith('MAP <')) {
    if (!upper.endsWith('>')) throw new SchemaError(`type "${text}": malformed MAP`);
    const inner = t.slice(t.indexOf('<') + 1, -1);
    let depth = 0; let split = -1;
    for (let i = 0; i < inner.length; i++) {
      const c = inner[i];
      if (c === '<' || c === '(') depth++;
      else if (c === '>' || c === ')') depth--;
      else if (c === ',' && depth === 0) { split = i; break; }
    }
    if (split < 0) throw new SchemaError(`type "${text}": MAP needs <KEY, VALUE>`);
    const key = parseType(inner.slice(0, split));
    const value = parseType(inner.slice(split + 1));
    if (!(key.kind === 'string' || key.kind === 'int'))
      throw new SchemaError(`type "${text}": the fake supports MAP keys of string or integer types only`);
    return { kind: 'map', key, value };
  }
  let m;
  if ((m = /^(TINYINT|SMALLINT|INT2|INTEGER|INT|INT4|SIGNED|BIGINT|INT8|INT64)( UNSIGNED)?$/.exec(upper)))
    return intType(INT_TYPES[m[1]], !!m[2]);
  if (upper === 'UNSIGNED') return intType(32, true);
  if (upper === 'BOOLEAN' || upper === 'BOOL') return { kind: 'bool' };
  if ((m = /^(?:DECIMAL|DEC|NUMERIC|NUMBER) ?(?:\( ?(\d+) ?(?:, ?(\d+) ?)?\))?$/.exec(upper))) {
    if (m[1] === undefined)
      throw new SchemaError(`type "${text}": declare DECIMAL(precision[, scale]) explicitly`);
    const p = Number(m[1]); const s = m[2] === undefined ? 0 : Number(m[2]);
    if (p < 1 || p > 38 || s > p) throw new SchemaError(`type "${text}": need 1 <= precision <= 38 and scale <= precision`);
    return { kind: 'decimal', p, s };
  }
  if (/^(REAL|FLOAT4|FLOAT32)$/.test(upper)) return { kind: 'real' };
  if (/^(DOUBLE|DOUBLE PRECISION|FLOAT8|FLOAT64)$/.test(upper)) return { kind: 'double' };
  if (upper === 'FLOAT') throw new SchemaError('FLOAT is not supported by Feldera; use REAL or DOUBLE');
  if (/^(VARCHAR|STRING|TEXT)$/.test(upper) || /^(VARCHAR|CHARACTER VARYING|CHAR|CHARACTER) ?\( ?\d+ ?\)$/.test(upper) ||
      upper === 'CHAR' || upper === 'CHARACTER')
    return { kind: 'string' };
  if (/^(BINARY|VARBINARY)( ?\( ?\d+ ?\))?$/.test(upper) || upper === 'BYTEA') return { kind: 'binary' };
  if (upper === 'DATE') return { kind: 'date' };
  if (/^TIME( ?\( ?\d ?\))?$/.test(upper)) return { kind: 'time' };
  if (/^(TIMESTAMP( ?\( ?\d ?\))?( WITHOUT TIME ZONE)?|DATETIME|TIMESTAMP WITH TIME ZONE)$/.test(upper))
    return { kind: 'timestamp' };
  if (upper === 'UUID') return { kind: 'uuid' };
  if (upper === 'VARIANT') return { kind: 'variant' };
  if (upper.startsWith('INTERVAL')) throw new SchemaError('INTERVAL is not allowed in Feldera table schemas');
  throw new SchemaError(`unrecognized type "${text}"`);
}

function typeName(t) {
  switch (t.kind) {
    case 'int': return `${{ 8: 'TINYINT', 16: 'SMALLINT', 32: 'INTEGER', 64: 'BIGINT' }[t.bits]}${t.unsigned ? ' UNSIGNED' : ''}`;
    case 'decimal': return `DECIMAL(${t.p},${t.s})`;
    case 'array': return `${typeName(t.elem)} ARRAY`;
    case 'map': return `MAP<${typeName(t.key)},${typeName(t.value)}>`;
    default: return { bool: 'BOOLEAN', real: 'REAL', double: 'DOUBLE', string: 'VARCHAR', binary: 'VARBINARY',
      date: 'DATE', time: 'TIME', timestamp: 'TIMESTAMP', uuid: 'UUID', variant: 'VARIANT' }[t.kind];
  }
}

// ---------------------------------------------------------------------------
// JSON flavours (SqlSerdeConfig per JsonFlavor, feldera-types serde_config.rs).
// debezium_mysql and snowflake use chrono format strings for timestamps that the
// fake does not model; they are refused with FakeUnsupportedFlavor.

const FLAVOURS = {
  default: { time: 'string', date: 'string', ts: 'rfc3339', variant: 'json', binary: 'array' },
  datagen: { time: 'string', date: 'string', ts: 'rfc3339', variant: 'json', binary: 'array' },
  debezium_postgres: { time: 'micros', date: 'days', ts: 'millis', variant: 'jsonstring', binary: 'array' },
  kafka_connect_json_converter: { time: 'millis', date: 'days', ts: 'millis', variant: 'jsonstring', binary: 'array' },
  pandas: { time: 'string', date: 'string', ts: 'millis', variant: 'jsonstring', binary: 'array' },
  blockchain: { time: 'string', date: 'string', ts: 'rfc3339', variant: 'jsonstring', binary: 'base58' },
  c_hex: { time: 'string', date: 'string', ts: 'rfc3339', variant: 'jsonstring', binary: 'chex' },
  postgres: { time: 'string', date: 'string', ts: 'rfc3339', variant: 'json', binary: 'pghex' },
  ClockInput: { time: 'string', date: 'string', ts: 'millis', variant: 'jsonstring', binary: 'array' },
};
const FLAVOUR_NAMES = ['default', 'debezium_mysql', 'debezium_postgres', 'snowflake',
  'kafka_connect_json_converter', 'pandas', 'blockchain', 'c_hex', 'ClockInput', 'datagen', 'postgres'];
const UPDATE_FORMATS = ['insert_delete', 'weighted', 'debezium', 'snowflake', 'raw', 'redis'];
const INPUT_FORMATS = ['csv', 'json', 'parquet', 'avro', 'raw'];

// ---------------------------------------------------------------------------
// Value decoding.  Each decoder returns the normalized stored value or throws a
// FieldError whose text mimics Feldera's (serde) messages.

class FieldError extends Error {}

function bad(msg) { throw new FieldError(msg); }

const US_PER_DAY = 86400000000n;
const MIN_DAYS = daysFromCivil(1, 1, 1);
const MAX_DAYS = daysFromCivil(9999, 12, 31);

function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z) {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

function daysInMonth(y, m) {
  if (m === 2) return (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)) ? 29 : 28;
  return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

const pad = (n, w) => String(n).padStart(w, '0');

function formatDate(days) {
  const [y, m, d] = civilFromDays(days);
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
}

function formatTime(ns) {
  const s = Math.floor(ns / 1e9); const frac = ns % 1e9;
  let out = `${pad(Math.floor(s / 3600), 2)}:${pad(Math.floor(s / 60) % 60, 2)}:${pad(s % 60, 2)}`;
  if (frac !== 0) out += frac % 1000 === 0 ? '.' + pad(frac / 1000, 6) : '.' + pad(frac, 9);
  return out;
}

function formatTimestamp(us) {
  let days = us / US_PER_DAY; let rem = us % US_PER_DAY;
  if (rem < 0n) { rem += US_PER_DAY; days -= 1n; }
  const secs = Number(rem / 1000000n); const frac = Number(rem % 1000000n);
  return `${formatDate(Number(days))} ${pad(Math.floor(secs / 3600), 2)}:${pad(Math.floor(secs / 60) % 60, 2)}:` +
    `${pad(secs % 60, 2)}${frac ? '.' + pad(frac, 6) : ''}`;
}

function checkDays(days, what) {
  if (days < MIN_DAYS || days > MAX_DAYS)
    bad(`fake-strict: ${what} is outside years 0001-9999 (no PostgreSQL BC dates or infinities)`);
}

function expectInt(v, min, max, rust) {
  if (!(v instanceof JNum)) bad(`invalid type: ${describe(v)}, expected ${rust}`);
  if (!v.isInt) bad(`invalid type: floating point \`${v.raw}\`, expected ${rust}`);
  const b = BigInt(v.raw);
  if (b < min || b > max) bad(`invalid value: integer \`${v.raw}\`, expected ${rust}`);
  return b;
}

const I32 = [-(1n << 31n), (1n << 31n) - 1n];
const I64 = [-(1n << 63n), (1n << 63n) - 1n];

function decodeDate(v, cfg) {
  if (cfg.date === 'days') {
    const d = Number(expectInt(v, I32[0], I32[1], 'i32'));
    checkDays(d, 'date');
    return formatDate(d);
  }
  if (typeof v !== 'string') bad(`invalid type: ${describe(v)}, expected a string`);
  const m = /^(\d{1,4})-(\d{1,2})-(\d{1,2})$/.exec(v.trim());
  if (!m) bad(`invalid date string '${v}': input contains invalid characters (expected format: '%Y-%m-%d')`);
  const y = Number(m[1]); const mo = Number(m[2]); const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y === 0 ? 2000 : y, mo))
    bad(`invalid date string '${v}': input is out of range`);
  if (y < 1) bad(`fake-strict: date '${v}' has year 0 (Feldera accepts it; PostgreSQL has no year 0)`);
  return formatDate(daysFromCivil(y, mo, d));
}

function decodeTime(v, cfg) {
  if (cfg.time === 'micros' || cfg.time === 'millis') {
    const unit = cfg.time === 'micros' ? 1000 : 1000000;
    const n = Number(expectInt(v, 0n, (1n << 64n) - 1n, 'u64'));
    if (n * unit >= 86400e9) bad(`fake-strict: time ${v.raw} ${cfg.time} is not within one day`);
    return formatTime(n * unit);
  }
  if (typeof v !== 'string') bad(`invalid type: ${describe(v)}, expected a string`);
  const m = /^(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,9}))?$/.exec(v.trim());
  if (!m) bad(`invalid time string '${v}': input contains invalid characters (expected format: '%H:%M:%S%.f', at most 9 fractional digits)`);
  const h = Number(m[1]); const mi = Number(m[2]); const s = Number(m[3]);
  if (h > 23 || mi > 59 || s > 59) bad(`invalid time string '${v}': input is out of range`);
  const frac = m[4] ? Number(m[4].padEnd(9, '0')) : 0;
  return formatTime(((h * 60 + mi) * 60 + s) * 1e9 + frac);
}

function decodeTimestamp(v, cfg) {
  if (cfg.ts === 'millis') {
    const us = expectInt(v, I64[0], I64[1], 'i64') * 1000n;
    const days = Number((us - ((us % US_PER_DAY) + US_PER_DAY) % US_PER_DAY) / US_PER_DAY);
    checkDays(days, 'timestamp');
    return formatTimestamp(us);
  }
  if (typeof v !== 'string') bad(`invalid type: ${describe(v)}, expected a string`);
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))?$/.exec(v.trim());
  if (!m) bad(`invalid RFC3339 timestamp string '${v}': expected 'YYYY-MM-DD HH:MM:SS[.f]' or 'YYYY-MM-DDTHH:MM:SS[.f](Z|+HH:MM)'`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y === 0 ? 2000 : y, mo) || h > 23 || mi > 59 || s > 59)
    bad(`invalid RFC3339 timestamp string '${v}': input is out of range`);
  if (m[7] && m[7].length > 9) bad(`fake-strict: timestamp '${v}' has more than 9 fractional digits`);
  let offsetMin = 0;
  if (m[9]) {
    const oh = Number(m[10]); const om = Number(m[11]);
    if (oh > 23 || om > 59) bad(`invalid RFC3339 timestamp string '${v}': offset is out of range`);
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const micros = m[7] ? BigInt(m[7].padEnd(9, '0').slice(0, 6)) : 0n;    // trimmed to µs
  const us = BigInt(daysFromCivil(y, mo, d)) * US_PER_DAY +
    BigInt(((h * 60 + mi) * 60 + s) - offsetMin * 60) * 1000000n + micros;
  const days = Number((us - ((us % US_PER_DAY) + US_PER_DAY) % US_PER_DAY) / US_PER_DAY);
  checkDays(days, 'timestamp (converted to UTC)');
  return formatTimestamp(us);
}

const DEC_RE = /^([+-]?)(?:(\d+)(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d+))?$/;

function decodeDecimal(v, t) {
  let text;
  if (typeof v === 'string') text = v;
  else if (v instanceof JNum) {
    text = v.raw;
    const digits = text.replace(/[eE].*$/, '').replace(/[-.]/g, '').replace(/^0+/, '').replace(/0+$/, '');
    if (digits.length > 15)
      bad(`fake-strict: DECIMAL sent as a JSON number with ${digits.length} significant digits; ` +
        'Feldera parses numbers through f64 and would lose precision; send a string');
  } else bad(`invalid type: ${describe(v)}, expected a decimal number`);
  const m = DEC_RE.exec(text);
  if (!m) bad(`invalid value: string ${JSON.stringify(text)}, expected a decimal number`);
  const intDigits = m[2] !== undefined ? m[2] : '';
  const fracDigits = m[2] !== undefined ? (m[3] || '') : m[4];
  let exp = Number(m[5] || 0) - fracDigits.length;
  let sig = BigInt((intDigits + fracDigits) || '0');
  if (!Number.isSafeInteger(exp)) bad(`decimal number ${text} is outside the value range`);
  if (sig === 0n) exp = 0;
  while (sig !== 0n && sig % 10n === 0n) { sig /= 10n; exp += 1; }
  if (-exp > t.s)
    bad(`fake-strict: decimal ${text} has ${-exp} fractional digits but the column is DECIMAL(${t.p},${t.s}); ` +
      'Feldera would silently truncate it toward zero');
  const shift = exp + t.s;                       // >= 0
  if (sig !== 0n && shift + sig.toString().length > t.p)
    bad(`decimal number ${text} is outside the value range of DECIMAL(${t.p},${t.s})`);
  const scaled = sig * 10n ** BigInt(shift);
  let digits = scaled.toString().padStart(t.s + 1, '0');
  const out = t.s ? digits.slice(0, -t.s) + '.' + digits.slice(-t.s) : digits;
  return (m[1] === '-' && scaled !== 0n ? '-' : '') + out;
}

function shortestFloat32(x) {
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function decodeBinary(v, cfg) {
  if (cfg.binary === 'array') {
    if (!Array.isArray(v)) {
      if (typeof v === 'string')
        bad(`invalid type: string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}, expected a sequence ` +
          '(BINARY/VARBINARY must be a JSON array of byte values; PostgreSQL \\x hex and base64 are not accepted)');
      bad(`invalid type: ${describe(v)}, expected a sequence`);
    }
    return v.map((b) => Number(expectInt(b, 0n, 255n, 'u8')));
  }
  if (cfg.binary === 'pghex') bad('binary format Postgres Hexadecimal is not supported for input');
  if (typeof v !== 'string') bad(`invalid type: ${describe(v)}, expected a string`);
  if (cfg.binary === 'chex') {
    const h = v.startsWith('0x') ? v.slice(2) : v;
    if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) bad(`Invalid C-style hex string: ${JSON.stringify(v)}`);
    const out = [];
    for (let i = 0; i < h.length; i += 2) out.push(parseInt(h.slice(i, i + 2), 16));
    return out;
  }
  // base58
  let n = 0n;
  for (const c of v) {
    const d = B58.indexOf(c);
    if (d < 0) bad(`invalid base58 string: InvalidCharacter { character: '${c}' }`);
    n = n * 58n + BigInt(d);
  }
  const out = [];
  while (n > 0n) { out.unshift(Number(n % 256n)); n /= 256n; }
  for (const c of v) { if (c === '1') out.unshift(0); else break; }
  return out;
}

const UUID_HEX = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const UUID_RE = new RegExp(`^(?:[0-9a-fA-F]{32}|${UUID_HEX}|\\{${UUID_HEX}\\}|urn:uuid:${UUID_HEX})$`);

function decodeUuid(v) {
  if (typeof v !== 'string')
    bad(`invalid type: ${describe(v)}, expected a UUID string (fake-strict: byte-array UUIDs are refused)`);
  if (!UUID_RE.test(v)) bad(`UUID parsing failed: invalid UUID ${JSON.stringify(v)}`);
  const h = v.replace(/^urn:uuid:/, '').replace(/[{}-]/g, '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// VARIANT values are stored as canonical JSON trees: object keys sorted (Feldera's
// variant maps are ordered), numbers as written.
function canonicalVariant(v) {
  if (Array.isArray(v)) return v.map(canonicalVariant);
  if (v instanceof JObj) {
    const seen = new Set();
    for (const [k] of v.entries) {
      if (seen.has(k)) bad(`fake-strict: duplicate key ${JSON.stringify(k)} in VARIANT object`);
      seen.add(k);
    }
    return new JObj(v.entries.map(([k, x]) => [k, canonicalVariant(x)])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  }
  return v;
}

function decodeValue(v, t, cfg) {
  switch (t.kind) {
    case 'bool':
      if (v === true || v === false) return v;
      return bad(`invalid type: ${describe(v)}, expected a boolean`);
    case 'int': return expectInt(v, t.min, t.max, t.rust);
    case 'real':
    case 'double': {
      const want = t.kind === 'real' ? 'f32' : 'f64';
      if (!(v instanceof JNum)) {
        if (typeof v === 'string' && /^[+-]?(nan|inf|infinity)$/i.test(v.trim()))
          bad(`invalid type: string ${JSON.stringify(v)}, expected ${want} (NaN and infinities cannot be sent to Feldera)`);
        bad(`invalid type: ${describe(v)}, expected ${want}`);
      }
      const n = Number(v.raw);
      if (!Number.isFinite(n)) bad(`number out of range: ${v.raw}`);
      if (t.kind === 'double') return n === 0 ? 0 : n;
      const f = Math.fround(n);
      if (!Number.isFinite(f)) bad(`fake-strict: ${v.raw} overflows REAL (Feldera would store infinity)`);
      return f === 0 ? 0 : shortestFloat32(f);
    }
    case 'decimal': return decodeDecimal(v, t);
    case 'string':
      if (typeof v === 'string') return v;
      return bad(`invalid type: ${describe(v)}, expected a string`);
    case 'binary': return decodeBinary(v, cfg);
    case 'date': return decodeDate(v, cfg);
    case 'time': return decodeTime(v, cfg);
    case 'timestamp': return decodeTimestamp(v, cfg);
    case 'uuid': return decodeUuid(v);
    case 'variant': {
      if (cfg.variant === 'json') return canonicalVariant(v);
      if (typeof v !== 'string') bad(`invalid type: ${describe(v)}, expected a string holding JSON (VARIANT in this flavour)`);
      try { return canonicalVariant(parseJsonStrict(v)); } catch (e) {
        if (e instanceof FieldError) throw e;
        return bad(`invalid JSON in VARIANT string: ${e.message}`);
      }
    }
    case 'array':
      if (!Array.isArray(v)) return bad(`invalid type: ${describe(v)}, expected a sequence`);
      return v.map((x) => (x === null ? null : decodeValue(x, t.elem, cfg)));
    case 'map': {
      if (!(v instanceof JObj)) return bad(`invalid type: ${describe(v)}, expected a map`);
      const seen = new Set(); const out = [];
      for (const [k, x] of v.entries) {
        let key = k;
        if (t.key.kind === 'int') {
          if (!/^-?\d+$/.test(k)) bad(`invalid type: string ${JSON.stringify(k)}, expected ${t.key.rust} map key`);
          key = String(expectInt(new JNum(k), t.key.min, t.key.max, t.key.rust));
        }
        if (seen.has(key)) bad(`fake-strict: duplicate MAP key ${JSON.stringify(k)}`);
        seen.add(key);
        out.push([key, x === null ? null : decodeValue(x, t.value, cfg)]);
      }
      out.sort((a, b) => (t.key.kind === 'int' ? (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1) : (a[0] < b[0] ? -1 : 1)));
      return new JObj(out);
    }
    default: throw new Error(`unhandled type ${t.kind}`);
  }
}

// Orders stored values of one type (for sorting by primary key).
function compareValues(a, b, t) {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  switch (t.kind) {
    case 'int': return a < b ? -1 : a > b ? 1 : 0;
    case 'real': case 'double': return a - b;
    case 'bool': return a === b ? 0 : a ? 1 : -1;
    case 'decimal': {
      const sa = BigInt(a.replace('.', '')); const sb = BigInt(b.replace('.', ''));
      return sa < sb ? -1 : sa > sb ? 1 : 0;
    }
    case 'array': case 'binary': {
      const et = t.kind === 'array' ? t.elem : { kind: 'int' };
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        const c = compareValues(a[i], b[i], et);
        if (c) return c;
      }
      return a.length - b.length;
    }
    case 'string': case 'date': case 'time': case 'timestamp': case 'uuid':
      return a < b ? -1 : a > b ? 1 : 0;
    default: {
      const ea = emit(a); const eb = emit(b);
      return ea < eb ? -1 : ea > eb ? 1 : 0;
    }
  }
}

// ---------------------------------------------------------------------------
// Pipelines, tables, rows

// A SQL identifier's lookup name (feldera-types SqlIdentifier::name): unquoted
// identifiers fold to lower case, quoted ones keep their case.
function identName(name, quoted) { return quoted ? name : name.toLowerCase(); }

// Table name as it appears in an ingress URL: "quoted" (%22…%22) or plain.
function pathIdentName(raw) {
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) return raw.slice(1, -1);
  return raw.toLowerCase();
}

class Table {
  constructor(decl) {
    if (decl === null || typeof decl !== 'object') throw new SchemaError('a table must be an object');
    if (typeof decl.name !== 'string' || decl.name === '') throw new SchemaError('table "name" must be a non-empty string');
    this.quoted = decl.quoted === true;
    this.name = identName(decl.name, this.quoted);
    if (!Array.isArray(decl.columns) || decl.columns.length === 0)
      throw new SchemaError(`table ${this.name}: "columns" must be a non-empty array`);
    this.columns = [];
    this.byLower = new Map();
    for (const c of decl.columns) {
      if (c === null || typeof c !== 'object' || typeof c.name !== 'string' || c.name === '')
        throw new SchemaError(`table ${this.name}: every column needs a non-empty "name"`);
      const quoted = c.quoted === true;
      const col = {
        name: identName(c.name, quoted), quoted,
        type: (() => {
          try { return parseType(c.type); } catch (e) { throw new SchemaError(`table ${this.name}, column ${c.name}: ${e.message}`); }
        })(),
        nullable: c.nullable !== false,
      };
      const lower = col.name.toLowerCase();
      if (this.byLower.has(lower))
        throw new SchemaError(`table ${this.name}: column ${col.name} clashes with ${this.byLower.get(lower).name} ` +
          '(Feldera matches JSON keys case-insensitively)');
      this.byLower.set(lower, col);
      this.columns.push(col);
    }
    this.pk = [];
    if (decl.primary_key !== undefined && decl.primary_key !== null) {
      if (!Array.isArray(decl.primary_key)) throw new SchemaError(`table ${this.name}: "primary_key" must be an array`);
      for (const k of decl.primary_key) {
        if (typeof k !== 'string') throw new SchemaError(`table ${this.name}: primary key entries are column names`);
        const col = this.columns.find((c) => c.name === k) ||
          this.columns.find((c) => !c.quoted && c.name === k.toLowerCase());
        if (!col) throw new SchemaError(`table ${this.name}: primary key column ${k} is not declared`);
        if (this.pk.includes(col)) throw new SchemaError(`table ${this.name}: primary key column ${k} repeated`);
        if (['variant', 'map'].includes(col.type.kind) || (col.type.kind === 'array'))
          throw new SchemaError(`table ${this.name}: the fake does not support ${typeName(col.type)} primary key columns`);
        col.nullable = false;             // PRIMARY KEY columns are NOT NULL in SQL
        this.pk.push(col);
      }
    }
    // With a primary key: Map key-text -> row.  Without: Map row-text -> {row, count}.
    this.rows = new Map();
  }

  describe() {
    return {
      name: this.name, quoted: this.quoted,
      columns: this.columns.map((c) => ({ name: c.name, quoted: c.quoted, type: typeName(c.type), nullable: c.nullable })),
      primary_key: this.pk.map((c) => c.name),
    };
  }

  keyOf(row) { return emit(this.pk.map((c) => row[c.name])); }

  rowText(row) { return emit(row); }

  size() {
    if (this.pk.length) return this.rows.size;
    let n = 0;
    for (const e of this.rows.values()) n += e.count;
    return n;
  }

  sortedRows() {
    if (this.pk.length) {
      return [...this.rows.values()].sort((a, b) => {
        for (const c of this.pk) {
          const r = compareValues(a[c.name], b[c.name], c.type);
          if (r) return r;
        }
        return 0;
      });
    }
    const out = [];
    const keys = [...this.rows.keys()].sort();
    for (const k of keys) {
      const e = this.rows.get(k);
      for (let i = 0; i < e.count; i++) out.push(e.row);
    }
    return out;
  }
}

class RowError extends Error {
  constructor(msg, field) { super(msg); this.field = field; }
}

// Deserializes one row.  mode: 'insert' (full row), 'delete' (full row without a
// primary key; with one, only the key columns are read), 'update' (key columns plus
// changed columns).
// Mirrors deserialize_table_record: keys matched case-insensitively, exact case for
// quoted columns, unknown keys ignored (reported in `ignored`), field errors in key
// order, then missing NOT NULL columns in column order.
function decodeRow(v, table, cfg, mode, ignored) {
  if (!(v instanceof JObj)) {
    if (Array.isArray(v))
      throw new RowError('fake-strict: positional (JSON array) rows are not part of the documented format; send an object');
    throw new RowError(`invalid type: ${describe(v)}, expected a record of type ${table.name}`);
  }
  const row = Object.create(null);
  const given = new Set();
  for (const [k, x] of v.entries) {
    const col = table.byLower.get(k.toLowerCase());
    if (!col) { ignored.add(k); continue; }
    // A delete from a table with a primary key deserializes the key struct only
    // (<table>_key; DeMapStream::delete in feldera
    // crates/adapters/src/static_compile/deinput.rs): the other columns are
    // skipped unread, whatever their value, case or repetition.
    if (mode === 'delete' && table.pk.length && !table.pk.includes(col)) continue;
    if (col.quoted && k !== col.name)
      throw new RowError(`incorrect case-sensitive field name: expected: ${col.name}, found: ${k}`);
    if (given.has(col)) throw new RowError(`fake-strict: duplicate field \`${k}\` (Feldera keeps the last one)`, k);
    given.add(col);
    if (x === null) {
      if (!col.nullable) throw new RowError(`invalid type: null, expected ${typeName(col.type)} (column is NOT NULL)`, k);
      row[col.name] = null;
      continue;
    }
    try {
      row[col.name] = decodeValue(x, col.type, cfg);
    } catch (e) {
      if (e instanceof FieldError) throw new RowError(e.message, k);
      throw e;
    }
  }
  for (const col of table.columns) {
    if (given.has(col)) continue;
    const isKey = table.pk.includes(col);
    if (mode === 'insert' || (mode === 'delete' && !table.pk.length) || isKey) {
      if (!col.nullable) throw new RowError(`missing field \`${col.name}\``);
      row[col.name] = null;
    }
  }
  // Column order, so that equal rows serialize identically.
  const ordered = Object.create(null);
  for (const col of table.columns) if (row[col.name] !== undefined) ordered[col.name] = row[col.name];
  return ordered;
}

class Pipeline {
  constructor(name, decl) {
    this.name = name;
    if (decl === null || typeof decl !== 'object' || !Array.isArray(decl.tables))
      throw new SchemaError('body must be {"tables": [...]}');
    this.tables = [];
    for (const t of decl.tables) {
      const table = new Table(t);
      if (this.tables.some((x) => x.name === table.name))
        throw new SchemaError(`table ${table.name} declared twice`);
      this.tables.push(table);
    }
    this.incarnation = crypto.randomUUID();
    this.pastIncarnations = [];
    this.step = 0;                 // bumped by every request that changed something
    this.tokens = 0;               // completion tokens issued in this incarnation
  }

  findTable(lookupName) { return this.tables.find((t) => t.name === lookupName); }
}

const pipelines = new Map();

// ---------------------------------------------------------------------------
// Request log, violations, faults, completion mode, pause

const log = [];
let logSeq = 0;
const LOG_CAP = 200000;
let logDropped = 0;
const violations = [];
let faults = [];               // FIFO of {type, status?, ms?, count}
let paused = false;
let pauseWaiters = [];
let completionMode = 'complete';
let socketSeq = 0;

function addLog(entry) {
  log.push(entry);
  if (log.length > LOG_CAP) { log.shift(); logDropped++; }
}

function setPaused(p) {
  paused = p;
  if (!p) { const w = pauseWaiters; pauseWaiters = []; for (const f of w) f(); }
}

function waitUnpaused() {
  if (!paused) return Promise.resolve();
  return new Promise((resolve) => pauseWaiters.push(resolve));
}

function takeFault() {
  while (faults.length && faults[0].count <= 0) faults.shift();
  if (!faults.length) return null;
  const f = faults[0];
  f.count--;
  const out = { ...f };
  delete out.count;
  if (f.count <= 0) faults.shift();
  return out;
}

// ---------------------------------------------------------------------------
// State file

function saveState() {
  if (!opts.stateFile) return;
  const doc = { version: 1, pipelines: [] };
  for (const p of pipelines.values()) {
    doc.pipelines.push({
      name: p.name,
      incarnation: p.incarnation,
      past_incarnations: p.pastIncarnations,
      step: p.step,
      tables: p.tables.map((t) => ({ ...t.describe(), rows: t.sortedRows() })),
    });
  }
  const tmp = `${opts.stateFile}.tmp`;
  fs.writeFileSync(tmp, emit(doc));
  fs.renameSync(tmp, opts.stateFile);
}

function loadState() {
  if (!opts.stateFile || !fs.existsSync(opts.stateFile)) return;
  const doc = parseJsonStrict(fs.readFileSync(opts.stateFile, 'utf8'));
  const plain = (v) => JSON.parse(emit(v));
  for (const pj of doc.get('pipelines')) {
    const p = new Pipeline(pj.get('name'), { tables: pj.get('tables').map(plain) });
    // A restarted fake is a new incarnation: tokens issued before answer 410.
    p.pastIncarnations = [...plain(pj.get('past_incarnations')), pj.get('incarnation')];
    p.step = Number(pj.get('step').raw);
    for (const tj of pj.get('tables')) {
      const table = p.findTable(identName(tj.get('name'), tj.get('quoted')));
      for (const r of tj.get('rows')) applyOp(table, { op: 'insert', row: decodeRow(r, table, FLAVOURS.default, 'insert', new Set()) }, null);
    }
    pipelines.set(p.name, p);
  }
}

// ---------------------------------------------------------------------------
// Applying changes

// Returns a violation message or null.
function applyOp(table, { op, row }, stats) {
  if (table.pk.length) {
    const key = table.keyOf(row);
    if (op === 'insert') { table.rows.set(key, row); return null; }
    if (op === 'delete') {
      if (!table.rows.delete(key) && stats) stats.missing_deletes++;
      return null;
    }
    const cur = table.rows.get(key);
    if (!cur) return `update of key ${key} in table ${table.name}, which holds no such row ` +
      '(Feldera silently ignores it)';
    const next = Object.assign(Object.create(null), cur);
    for (const c of table.columns) if (row[c.name] !== undefined) next[c.name] = row[c.name];
    table.rows.set(key, next);
    return null;
  }
  const text = table.rowText(row);
  const e = table.rows.get(text);
  if (op === 'insert') {
    if (e) e.count++;
    else table.rows.set(text, { row, count: 1 });
    return null;
  }
  // delete without a primary key
  if (!e) return `delete of a row that is not in table ${table.name}, which has no primary key ` +
    `(Feldera's result is undefined): ${text}`;
  if (--e.count === 0) table.rows.delete(text);
  return null;
}

function parseError(description, eventNumber, field, invalidText, suggestion) {
  return {
    description,
    event_number: eventNumber ?? null,
    field: field ?? null,
    invalid_bytes: null,
    invalid_text: invalidText ?? null,
    suggestion: suggestion ?? null,
  };
}

function clip(text) { return text.length > 1000 ? text.slice(0, 1000) + '…' : text; }

const EXAMPLES = {
  insert_delete: ["error deserializing JSON string as a single-row update", "Example valid JSON: '{\"insert\": {...} }'",
    'error deserializing string as a JSON array of updates', "Example valid JSON: '[{\"insert\": {...} }, {\"delete\": {...} }]'"],
  debezium: ['error deserializing JSON string as a Debezium CDC event',
    "Example valid JSON: '{\"payload\": {\"op\": \"u\", \"before\": {...}, \"after\": {...} } }'",
    'error deserializing string as a JSON array of Debezium CDC events',
    "Example valid JSON: '[{\"payload\": {\"op\": \"u\", \"before\": {...}, \"after\": {...} } }]'"],
  raw: ['failed to parse JSON string', null, 'error deserializing string as a JSON array', null],
};

class EnvelopeError extends Error {}

function envelopeKeys(obj, allowed, what) {
  const seen = new Set();
  for (const [k] of obj.entries) {
    if (seen.has(k)) throw new EnvelopeError(`duplicate field \`${k}\``);
    seen.add(k);
    if (allowed && !allowed.includes(k)) {
      if (k === 'table' && what === 'InsDelUpdate')
        throw new EnvelopeError('fake-strict: the undocumented "table" key is refused in insert/delete events');
      throw new EnvelopeError(`unknown field \`${k}\`, expected one of ${allowed.map((a) => `\`${a}\``).join(', ')}`);
    }
  }
}

// Validates an event's envelope (what serde does before touching rows) and returns
// the row-level operations in application order: [{op, value}].
function eventOps(ev, fmt) {
  if (fmt === 'raw') return [{ op: 'insert', value: ev }];
  if (fmt === 'insert_delete') {
    if (!(ev instanceof JObj)) throw new EnvelopeError(`invalid type: ${describe(ev)}, expected struct InsDelUpdate`);
    envelopeKeys(ev, ['insert', 'delete', 'update'], 'InsDelUpdate');
    const ops = [];
    for (const op of ['delete', 'insert', 'update']) {
      const v = ev.get(op);
      if (v !== undefined && v !== null) ops.push({ op, value: v });
    }
    if (!ops.length) throw new EnvelopeError('fake-strict: event carries no insert, delete or update');
    return ops;
  }
  // debezium
  if (!(ev instanceof JObj)) throw new EnvelopeError(`invalid type: ${describe(ev)}, expected struct DebeziumUpdate`);
  envelopeKeys(ev, null);
  const payload = ev.get('payload');
  if (payload === undefined) throw new EnvelopeError('missing field `payload`');
  if (!(payload instanceof JObj)) throw new EnvelopeError(`invalid type: ${describe(payload)}, expected struct DebeziumPayload`);
  envelopeKeys(payload, null);
  const op = payload.get('op');
  if (op === undefined) throw new EnvelopeError('missing field `op`');
  if (!['c', 'd', 'u', 'r'].includes(op))
    throw new EnvelopeError(`${typeof op === 'string' ? `unknown variant \`${op}\`` : `invalid type: ${describe(op)}`}, ` +
      'expected one of `c`, `d`, `u`, `r`');
  const ops = [];
  const before = payload.get('before'); const after = payload.get('after');
  if (before !== undefined && before !== null) ops.push({ op: 'delete', value: before });
  if (after !== undefined && after !== null) ops.push({ op: 'insert', value: after });
  if (!ops.length) throw new EnvelopeError('fake-strict: Debezium event carries neither "before" nor "after"');
  return ops;
}

// Decodes one event's row operations.  Returns {ops, error}: the operations decoded
// before the first failing one (Feldera keeps those for non-array input), and the
// failure if any.
function decodeEvent(ev, cfg, table, eventNo, ignored) {
  const ops = [];
  let list;
  try { list = eventOps(ev, cfg.update_format); } catch (e) {
    if (!(e instanceof EnvelopeError)) throw e;
    const ex = EXAMPLES[cfg.update_format];
    return { ops, error: parseError(`${ex[0]}: ${e.message}`, eventNo, null, clip(emit(ev)), ex[1]), envelope: e };
  }
  for (const { op, value } of list) {
    try {
      if (op === 'update' && !table.pk.length) throw new RowError('update operation is not supported on this stream');
      ops.push({ op, row: decodeRow(value, table, cfg.serde, op, ignored) });
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      const desc = `failed to deserialize JSON record${e.field ? `: error parsing field '${e.field}'` : ''}: ${e.message}`;
      return { ops, error: parseError(desc, eventNo, e.field, clip(emit(value))) };
    }
  }
  return { ops, error: null };
}

// Parses and applies a whole request body.  Feldera is not atomic per request: each
// event (or, with array=true, each array) is applied on its own; failures are
// collected and reported together.
function ingest(text, table, cfg, stats) {
  const errors = [];
  let eventNo = 0;
  const ignored = new Set();

  const applyAll = (ops) => {
    for (const o of ops) {
      const v = applyOp(table, o, stats);
      stats.updates++;
      if (v) {
        stats.violations.push(v);
        if (!(table.pk.length && o.op === 'update'))
          errors.push(parseError(`fake: ${v}`, eventNo, null, null));
      }
    }
  };

  const pieces = cfg.lines === 'single' ? text.split('\n') : [text];
  for (const piece of pieces) {
    const p = new JsonParser(piece);
    for (;;) {
      p.skipWs();
      if (p.eof()) break;
      const start = p.i;
      let v;
      try { v = p.top(); } catch (e) {
        if (!(e instanceof JsonSyntaxError)) throw e;
        errors.push(parseError(`failed to parse string as a JSON document: ${e.message}`, null, null, clip(piece.slice(start))));
        break;
      }
      if (cfg.update_format === 'weighted' || cfg.update_format === 'redis') {
        stats.unimplemented = true;
        return { errors, ignored };
      }
      if (cfg.array) {
        const ex = EXAMPLES[cfg.update_format];
        if (!Array.isArray(v)) {
          errors.push(parseError(`${ex[2]}: invalid type: ${describe(v)}, expected a sequence`, null, null,
            clip(piece.slice(start, p.i)), ex[3]));
          continue;
        }
        // serde first deserializes the whole array of envelopes: one bad envelope
        // rejects the array without numbering its events.
        let envErr = null;
        for (const ev of v) {
          try { eventOps(ev, cfg.update_format); } catch (e) {
            if (!(e instanceof EnvelopeError)) throw e;
            envErr = e; break;
          }
        }
        if (envErr) {
          errors.push(parseError(`${ex[2]}: ${envErr.message}`, null, null, clip(piece.slice(start, p.i)), ex[3]));
          continue;
        }
        // Then rows: if any event of the array fails, the records of the whole
        // array are dropped (input_stream.truncate in format/json/input.rs).
        const staged = []; let failed = false;
        for (const ev of v) {
          eventNo++;
          stats.events++;
          const r = decodeEvent(ev, cfg, table, eventNo, ignored);
          if (r.error) { errors.push(r.error); failed = true; } else staged.push(...r.ops);
        }
        if (!failed) applyAll(staged);
      } else {
        eventNo++;
        stats.events++;
        if (Array.isArray(v) && cfg.update_format !== 'raw') {
          const ex = EXAMPLES[cfg.update_format];
          errors.push(parseError(`${ex[0]}: fake-strict: got a JSON array but the request says array=false`,
            eventNo, null, clip(piece.slice(start, p.i)), ex[1]));
          continue;
        }
        const r = decodeEvent(v, cfg, table, eventNo, ignored);
        applyAll(r.ops);           // operations before a failing one stay applied
        if (r.error) errors.push(r.error);
      }
    }
  }
  return { errors, ignored };
}

// ---------------------------------------------------------------------------
// HTTP helpers

function send(res, status, body, extraHeaders = {}) {
  const text = typeof body === 'string' ? body : emit(body);
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extraHeaders });
  res.end(text);
}

function errorBody(message, errorCode, details) {
  return { message, error_code: errorCode, details: details === undefined ? null : details };
}

function readBody(req, onFirstData) {
  return new Promise((resolve, reject) => {
    const chunks = []; let n = 0; let done = false; let first = true;
    req.on('data', (c) => {
      if (first) { first = false; if (onFirstData && onFirstData()) return; }
      chunks.push(c); n += c.length;
    });
    req.on('end', () => { done = true; resolve(Buffer.concat(chunks, n)); });
    req.on('error', (e) => { if (!done) reject(e); });
    req.on('close', () => { if (!done) reject(new Error('client closed the connection before the body ended')); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Query parsing as serde_urlencoded does it: duplicate known keys are errors,
// unknown keys are ignored.
function parseQuery(search) {
  const params = new URLSearchParams(search);
  const out = new Map(); const dups = [];
  for (const [k, v] of params) {
    if (out.has(k)) dups.push(k);
    out.set(k, v);
  }
  return { map: out, dups };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });   // keep a BOM: serde_json rejects it

// ---------------------------------------------------------------------------
// /v0 — the contract

function checkAuth(req) {
  if (!opts.apiKey) return { present: !!req.headers.authorization, ok: true };
  const h = req.headers.authorization;
  return { present: !!h, ok: h === `Bearer ${opts.apiKey}` };
}

function unknownPipeline(name) {
  return errorBody(`Unknown pipeline name '${name}'`, 'UnknownPipelineName', { pipeline_name: name });
}

async function handleIngress(req, res, entry, pipelineName, tableRaw, search) {
  const finish = (status, body) => {
    entry.status = status;
    if (body && typeof body === 'object' && body.error_code) entry.error_code = body.error_code;
    send(res, status, body);
  };
  const drainThen = async (status, body) => {
    try { await readBody(req); } catch { /* client went away */ }
    finish(status, body);
  };

  if (req.method !== 'POST')
    return drainThen(405, errorBody(`Method ${req.method} not allowed; /ingress takes POST`, 'MethodNotAllowed', { allowed: ['POST'] }));
  const auth = checkAuth(req);
  if (!auth.ok) {
    return drainThen(401, errorBody(auth.present ? 'Invalid API key' : 'Unauthorized: missing Authorization: Bearer <API key> header',
      'InvalidApiKey', null));
  }
  const pipeline = pipelines.get(pipelineName);
  if (!pipeline) return drainThen(404, unknownPipeline(pipelineName));

  const fault = takeFault();
  entry.fault = fault;
  if (fault && fault.type === 'reset') {
    // Destroy the socket once the body starts arriving (or at its end if empty).
    entry.status = 'reset';
    try {
      await readBody(req, () => { req.socket.destroy(); return true; });
    } catch { /* expected */ }
    req.socket.destroy();
    return;
  }
  if (fault && fault.type === 'status') {
    const st = fault.status;
    const bodies = {
      503: errorBody(`Unable to interact with pipeline because the deployment status (stopped) indicates it is not (yet) fully provisioned: pipeline '${pipelineName}'`,
        'PipelineInteractionNotDeployed', { pipeline_name: pipelineName, status: 'Stopped', desired_status: 'Provisioned' }),
      429: errorBody('The API connections limit has been exceded. Close some of the existing connections before opening new ones.',
        'ApiConnectionLimit', null),
      410: errorBody('The pipeline is being terminated', 'Terminating', null),
      500: errorBody('fake: injected internal server error', 'FakeInjectedInternalError', null),
    };
    return drainThen(st, bodies[st]);
  }

  // Query: IngressArgs {format, force}, then JsonParserConfig.
  const { map: q, dups } = parseQuery(search);
  entry.query = Object.fromEntries(q);
  const knownKeys = ['format', 'force', 'update_format', 'json_flavor', 'array', 'lines'];
  const dup = dups.find((k) => knownKeys.includes(k));
  if (dup) return drainThen(400, errorBody(`Query deserialize error: duplicate field \`${dup}\``, 'InvalidParam', { error: `duplicate field \`${dup}\`` }));
  const boolParam = (k) => {
    if (!q.has(k)) return { value: false };
    const v = q.get(k);
    if (v === 'true') return { value: true };
    if (v === 'false') return { value: false };
    return { error: 'provided string was not `true` or `false`' };
  };
  const force = boolParam('force');
  if (force.error) return drainThen(400, errorBody(`Query deserialize error: ${force.error}`, 'InvalidParam', { error: force.error }));
  entry.force = force.value;
  const format = q.get('format');
  const endpoint = `${tableRaw}.api-ingress-${format ?? 'csv'}`;
  if (format === undefined) {
    return drainThen(400, errorBody('fake-strict: the "format" query parameter is required (Feldera would default to csv, ' +
      'which this fake does not implement; send format=json)', 'MissingUrlEncodedParam', { param: 'format' }));
  }
  if (!INPUT_FORMATS.includes(format)) {
    return drainThen(400, errorBody(`Input endpoint '${endpoint}' specifies unknown input format '${format}'`,
      'UnknownInputFormat', { endpoint_name: endpoint, format_name: format }));
  }
  if (format !== 'json') {
    return drainThen(400, errorBody(`fake: input format '${format}' is valid for Feldera but not implemented by this fake (json only)`,
      'FakeUnsupportedFormat', { format_name: format }));
  }
  const configError = (error) => drainThen(400, errorBody(
    `Error parsing format configuration for input endpoint '${endpoint}': ${error}\nInvalid configuration: ${search.replace(/^\?/, '')}`,
    'ParserConfigParseError', { endpoint_name: endpoint, error, config: search.replace(/^\?/, '') }));
  const variantList = (l) => l.map((x) => `\`${x}\``).join(', ');
  const updateFormat = q.get('update_format') ?? 'insert_delete';
  if (!UPDATE_FORMATS.includes(updateFormat))
    return configError(`unknown variant \`${updateFormat}\`, expected one of ${variantList(UPDATE_FORMATS)}`);
  const flavour = q.get('json_flavor') ?? 'default';
  if (!FLAVOUR_NAMES.includes(flavour))
    return configError(`unknown variant \`${flavour}\`, expected one of ${variantList(FLAVOUR_NAMES)}`);
  const array = boolParam('array');
  if (array.error) return configError(array.error);
  const lines = q.get('lines') ?? 'multiple';
  if (!['multiple', 'single'].includes(lines))
    return configError(`unknown variant \`${lines}\`, expected \`multiple\` or \`single\``);

  const table = pipeline.findTable(pathIdentName(tableRaw));
  entry.table = table ? table.name : null;
  if (!table) {
    return drainThen(404, errorBody(`Input endpoint '${endpoint}' specifies unknown table '${tableRaw}'`,
      'UnknownInputStream', { endpoint_name: endpoint, stream_name: tableRaw }));
  }
  if (updateFormat === 'snowflake') {
    return drainThen(400, errorBody(`Format not supported on input endpoint '${endpoint}': Snowflake is not supported for JSON input streams`,
      'InputFormatNotSupported', { endpoint_name: endpoint, error: 'Snowflake is not supported for JSON input streams' }));
  }
  if (!FLAVOURS[flavour]) {
    return drainThen(400, errorBody(`fake: json_flavor '${flavour}' is valid for Feldera but its encodings are not modelled by this fake`,
      'FakeUnsupportedFlavor', { json_flavor: flavour }));
  }

  let body;
  try {
    body = await readBody(req);
  } catch (e) {
    entry.status = 'client-aborted';
    entry.error = e.message;
    return;
  }
  entry.bytes = body.length;
  if (opts.logBodies) entry.body = body.toString('utf8');

  if (fault && fault.type === 'delay') {
    entry.delayed_ms = fault.ms;
    await sleep(fault.ms);
  }
  if (!force.value && paused) {
    const t0 = Date.now();
    entry.held = true;
    await waitUnpaused();
    entry.held_ms = Date.now() - t0;
  }
  if (res.destroyed) entry.client_gone = true;      // Feldera keeps what it ingested

  const stats = { events: 0, updates: 0, missing_deletes: 0, violations: [], unimplemented: false };
  let text;
  let result;
  try {
    text = utf8.decode(body);
    if (text.charCodeAt(0) === 0xfeff) throw new JsonSyntaxError('expected value at line 1 column 1 (byte order mark)', 0);
  } catch (e) {
    result = { errors: [parseError(`failed to parse string as a JSON document: ${e instanceof JsonSyntaxError ? e.message : 'invalid UTF-8'}`, null, null, null)], ignored: new Set() };
  }
  const cfg = { update_format: updateFormat, array: array.value, lines, serde: FLAVOURS[flavour] };
  if (!result) result = ingest(text, table, cfg, stats);

  entry.events = stats.events;
  entry.updates = stats.updates;
  entry.missing_deletes = stats.missing_deletes;
  entry.ignored_keys = [...result.ignored].slice(0, 50);
  for (const v of stats.violations) {
    const rec = { at: new Date().toISOString(), log_seq: entry.seq, pipeline: pipeline.name, table: table.name, message: v };
    violations.push(rec);
  }
  entry.violations = stats.violations.length;
  if (stats.updates > 0) { pipeline.step++; saveState(); }

  if (stats.unimplemented) {
    return finish(500, errorBody(`fake: update_format=${updateFormat} is accepted by Feldera's query parser but its JSON parser ` +
      'does not implement it (weighted: todo!(), redis: panic) — the real server would crash the request; ' +
      'the documented HTTP formats are insert_delete and raw', 'FakeUnimplementedInFeldera', { update_format: updateFormat }));
  }
  entry.errors = result.errors.length;
  if (result.errors.length) {
    const n = result.errors.length;
    const reported = result.errors.slice(0, 1000);
    const head = n > reported.length
      ? `Errors parsing input data (reporting ${reported.length} out of ${n} total errors):`
      : `Errors parsing input data (${n} errors):`;
    const lineOf = (e) => `Parse error${e.event_number ? ` (event #${e.event_number})` : ''}: ${e.description}` +
      `${e.invalid_text ? `\nInvalid fragment: '${e.invalid_text}'` : ''}${e.suggestion ? `\n${e.suggestion}` : ''}`;
    return finish(400, errorBody(head + reported.map((e) => '\n    ' + lineOf(e)).join(''), 'ParseErrors',
      { num_errors: n, errors: reported }));
  }
  pipeline.tokens++;
  const token = Buffer.from(JSON.stringify({ p: pipeline.name, i: pipeline.incarnation, s: pipeline.step, n: pipeline.tokens }))
    .toString('base64');
  entry.token = token;
  return finish(200, { token });
}

async function handleCompletion(req, res, entry, pipelineName, search) {
  const finish = (status, body) => {
    entry.status = status;
    if (body.error_code) entry.error_code = body.error_code;
    send(res, status, body);
  };
  try { await readBody(req); } catch { return; }
  if (req.method !== 'GET')
    return finish(405, errorBody(`Method ${req.method} not allowed; /completion_status takes GET`, 'MethodNotAllowed', { allowed: ['GET'] }));
  const auth = checkAuth(req);
  if (!auth.ok) return finish(401, errorBody(auth.present ? 'Invalid API key' : 'Unauthorized', 'InvalidApiKey', null));
  const pipeline = pipelines.get(pipelineName);
  if (!pipeline) return finish(404, unknownPipeline(pipelineName));
  const { map: q } = parseQuery(search);
  const raw = q.get('token');
  if (raw === undefined)
    return finish(400, errorBody("Missing URL-encoded parameter 'token'", 'MissingUrlEncodedParam', { param: 'token' }));
  let tok = null;
  try {
    const t = JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
    if (t && typeof t.p === 'string' && typeof t.i === 'string' && Number.isInteger(t.s) && Number.isInteger(t.n)) tok = t;
  } catch { /* invalid */ }
  const invalid = () => finish(400, errorBody('Invalid parameter: invalid completion token.', 'InvalidParam',
    { error: 'invalid completion token' }));
  if (!tok || tok.p !== pipeline.name) return invalid();
  if (tok.i !== pipeline.incarnation) {
    if (!pipeline.pastIncarnations.includes(tok.i)) return invalid();
    return finish(410, errorBody('Completion token was created by a previous incarnation of the pipeline',
      'PipelineRestarted', null));
  }
  if (tok.n > pipeline.tokens) return invalid();
  entry.token = raw;
  if (completionMode === 'complete') return finish(200, { status: 'complete', step: tok.s });
  if (completionMode === 'inprogress') return finish(202, { status: 'inprogress', step: null });
  return finish(410, errorBody('Completion token was created by a previous incarnation of the pipeline',
    'PipelineRestarted', null));
}

// ---------------------------------------------------------------------------
// /_fake — control API for tests

async function readJson(req) {
  const body = await readBody(req);
  if (body.length === 0) return {};
  return JSON.parse(body.toString('utf8'));
}

function findTableForControl(p, raw) {
  return p.findTable(pathIdentName(raw));
}

async function handleControl(req, res, parts, search) {
  const ctlErr = (status, msg) => send(res, status, errorBody(msg, 'FakeControlError', null));
  let body = {};
  try { body = await readJson(req); } catch (e) { return ctlErr(400, `control body is not JSON: ${e.message}`); }
  const m = req.method;
  const [what, a, b, c] = parts;

  if (what === 'pipelines' && a === undefined && m === 'GET')
    return send(res, 200, { pipelines: [...pipelines.keys()] });
  if (what === 'pipelines' && a !== undefined && b === undefined) {
    if (m === 'POST') {
      let p;
      try { p = new Pipeline(a, body); } catch (e) {
        if (e instanceof SchemaError) return ctlErr(400, e.message);
        throw e;
      }
      const old = pipelines.get(a);
      if (old) p.pastIncarnations = [...old.pastIncarnations, old.incarnation];
      pipelines.set(a, p);
      saveState();
      return send(res, 200, { pipeline: a, incarnation: p.incarnation, tables: p.tables.map((t) => t.describe()) });
    }
    const p = pipelines.get(a);
    if (!p) return send(res, 404, unknownPipeline(a));
    if (m === 'GET') return send(res, 200, { pipeline: a, incarnation: p.incarnation, step: p.step, tables: p.tables.map((t) => t.describe()) });
    if (m === 'DELETE') { pipelines.delete(a); saveState(); return send(res, 200, { deleted: a }); }
    return ctlErr(405, 'method not allowed');
  }
  if (what === 'pipelines' && a !== undefined && b === 'restart' && m === 'POST') {
    // Simulates a pipeline restart: rows kept, earlier completion tokens answer 410.
    const p = pipelines.get(a);
    if (!p) return send(res, 404, unknownPipeline(a));
    p.pastIncarnations.push(p.incarnation);
    p.incarnation = crypto.randomUUID();
    p.tokens = 0;
    saveState();
    return send(res, 200, { pipeline: a, incarnation: p.incarnation });
  }
  if (what === 'pipelines' && b === 'tables' && c !== undefined && m === 'GET') {
    const p = pipelines.get(a);
    if (!p) return send(res, 404, unknownPipeline(a));
    const t = findTableForControl(p, c);
    if (!t) return ctlErr(404, `pipeline ${a} has no table ${c}`);
    return send(res, 200, { rows: t.sortedRows() });
  }
  if (what === 'log' && a === undefined) {
    if (m === 'GET') {
      const since = Number(new URLSearchParams(search).get('since') ?? 0);
      return send(res, 200, JSON.stringify(log.filter((e) => e.seq > since)));
    }
    if (m === 'DELETE') { log.length = 0; return send(res, 200, { cleared: true }); }
  }
  if (what === 'violations' && a === undefined) {
    if (m === 'GET') return send(res, 200, { violations });
    if (m === 'DELETE') { violations.length = 0; return send(res, 200, { cleared: true }); }
  }
  if (what === 'faults' && a === undefined) {
    if (m === 'GET') return send(res, 200, { faults, paused, completion: completionMode });
    if (m !== 'POST') return ctlErr(405, 'method not allowed');
    const count = body.count === undefined ? 1 : body.count;
    if (!Number.isInteger(count) || count < 1) return ctlErr(400, '"count" must be a positive integer');
    const keys = Object.keys(body).filter((k) => k !== 'count');
    if (keys.length !== 1) return ctlErr(400, 'give exactly one of status, reset, delay_ms, pause, clear');
    if (body.clear === true) { faults = []; setPaused(false); return send(res, 200, { faults, paused }); }
    if (typeof body.pause === 'boolean') { setPaused(body.pause); return send(res, 200, { paused }); }
    if (body.status !== undefined) {
      if (![503, 429, 410, 500].includes(body.status)) return ctlErr(400, 'status must be 503, 429, 410 or 500');
      faults.push({ type: 'status', status: body.status, count });
    } else if (body.reset !== undefined) {
      const n = body.reset === true ? 1 : body.reset;
      if (!Number.isInteger(n) || n < 1) return ctlErr(400, '"reset" must be a positive integer (requests to reset)');
      faults.push({ type: 'reset', count: body.count === undefined ? n : count });
    } else if (body.delay_ms !== undefined) {
      if (!Number.isInteger(body.delay_ms) || body.delay_ms < 0) return ctlErr(400, '"delay_ms" must be a non-negative integer');
      faults.push({ type: 'delay', ms: body.delay_ms, count });
    } else return ctlErr(400, `unrecognized fault ${keys[0]}`);
    return send(res, 200, { faults });
  }
  if (what === 'completion' && a === undefined && m === 'POST') {
    if (!['complete', 'inprogress', 'gone'].includes(body.mode)) return ctlErr(400, 'mode must be complete, inprogress or gone');
    completionMode = body.mode;
    return send(res, 200, { mode: completionMode });
  }
  if (what === 'reset_state' && a === undefined && m === 'POST') {
    for (const p of pipelines.values()) {
      if (body.pipeline !== undefined && p.name !== body.pipeline) continue;
      for (const t of p.tables) t.rows.clear();
    }
    saveState();
    return send(res, 200, { cleared: true });
  }
  return ctlErr(404, `no control endpoint ${m} /_fake/${parts.join('/')}`);
}

// ---------------------------------------------------------------------------
// Server

function splitPath(pathname) {
  // Segments are percent-decoded individually so that %2F stays inside a name.
  const segs = pathname.split('/').slice(1);
  return segs.map((s) => decodeURIComponent(s));
}

async function handle(req, res) {
  const sock = req.socket;
  sock.fakeRequests = (sock.fakeRequests || 0) + 1;
  const qpos = req.url.indexOf('?');
  const pathname = qpos < 0 ? req.url : req.url.slice(0, qpos);
  const search = qpos < 0 ? '' : req.url.slice(qpos);
  let parts;
  try { parts = splitPath(pathname); } catch {
    return send(res, 400, errorBody('malformed percent-encoding in the URL path', 'InvalidParam', null));
  }

  if (parts[0] === '_fake') return handleControl(req, res, parts.slice(1), search);

  const entry = {
    seq: ++logSeq,
    kind: 'other',
    method: req.method,
    path: pathname,
    query: Object.fromEntries(new URLSearchParams(search)),
    status: null,
    started_at: new Date().toISOString(),
    remote_port: sock.remotePort,
    socket_id: sock.fakeId,
    socket_request_index: sock.fakeRequests,
    reused_connection: sock.fakeRequests > 1,
    http_version: req.httpVersion,
    authorization: { present: !!req.headers.authorization, ok: checkAuth(req).ok },
    content_type: req.headers['content-type'] ?? null,
    content_length: req.headers['content-length'] ?? null,
    chunked: /chunked/i.test(req.headers['transfer-encoding'] ?? ''),
    expect_continue: /100-continue/i.test(req.headers.expect ?? ''),
    connection_header: req.headers.connection ?? null,
  };
  addLog(entry);
  const t0 = process.hrtime.bigint();
  res.on('close', () => {
    entry.finished_at = new Date().toISOString();
    entry.duration_ms = Number(process.hrtime.bigint() - t0) / 1e6;
  });

  if (parts.length === 5 && parts[0] === 'v0' && parts[1] === 'pipelines' && parts[3] === 'ingress' && parts[4] !== '') {
    entry.kind = 'ingress';
    entry.pipeline = parts[2];
    return handleIngress(req, res, entry, parts[2], parts[4], search);
  }
  if (parts.length === 4 && parts[0] === 'v0' && parts[1] === 'pipelines' && parts[3] === 'completion_status') {
    entry.kind = 'completion_status';
    entry.pipeline = parts[2];
    return handleCompletion(req, res, entry, parts[2], search);
  }
  try { await readBody(req); } catch { return; }
  entry.status = 404;
  return send(res, 404, errorBody(`fake: no such endpoint ${req.method} ${pathname}`, 'NotFound', null));
}

try { loadState(); } catch (e) {
  process.stderr.write(`fake_feldera: cannot load state file ${opts.stateFile}: ${e.message}\n`);
  process.exit(1);
}

const server = http.createServer({ requestTimeout: 0, keepAliveTimeout: opts.keepAliveMs }, (req, res) => {
  handle(req, res).catch((e) => {
    process.stderr.write(`fake_feldera: internal error: ${e.stack}\n`);
    send(res, 500, errorBody(`fake: internal error: ${e.message}`, 'FakeInternalError', null));
  });
});
server.keepAliveTimeout = opts.keepAliveMs;
server.headersTimeout = Math.max(60000, opts.keepAliveMs + 1000);
server.on('connection', (sock) => { sock.fakeId = ++socketSeq; sock.fakeRequests = 0; });
server.on('clientError', (err, sock) => {
  if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  else sock.destroy();
});
server.listen(opts.port, opts.host, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

function shutdown() {
  try { saveState(); } catch { /* best effort */ }
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
