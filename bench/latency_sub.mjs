// Commit-to-delivery latency at a JetStream subscriber (used by bench/run.sh).
//
// usage: node latency_sub.mjs <server-url> <jetstream-stream> <expected-inserts> [<receipts-file>]
//
// Reads the stream with an ordered consumer from its first message.  Every
// Insert event carries the column "us": the writer's clock_timestamp() in
// microseconds since the epoch, taken inside the single-row transaction just
// before its commit.  For each insert, latency = receive time - us.  Prints
// "ready" on stderr once the consumer is attached, and when <expected-inserts>
// inserts have arrived prints one line on stdout:
//   {"n":N,"p50_ms":..,"p99_ms":..,"max_ms":..}
// With <receipts-file>, it also writes one "<id>\t<receive time in µs>\t
// <time JetStream stored it in µs>" line per insert there (the second stamp
// is the stream's own, from the message's metadata), so that other stamps
// can be joined in SQL.
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";

const require = createRequire(new URL("../test/nats/package.json", import.meta.url));
const { connect, StringCodec } = require("nats");

import { writeFileSync } from "node:fs";

const [server, stream, expectedArg, receiptsFile] = process.argv.slice(2);
const expected = Number(expectedArg);
const sc = StringCodec();
const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;

const nc = await connect({ servers: server, timeout: 5000 });
const js = nc.jetstream();
const consumer = await js.consumers.get(stream);
const messages = await consumer.consume();
process.stderr.write("ready\n");
const lat = [];
const receipts = [];
for await (const m of messages) {
  const recv = nowUs();
  if (!m.subject.endsWith(".insert")) continue;
  const ev = JSON.parse(sc.decode(m.data));
  const us = Number(ev.Insert.new_tuple.us);
  lat.push((recv - us) / 1000);
  const stored = Math.round(m.info.timestampNanos / 1000);
  receipts.push(`${ev.Insert.new_tuple.id}\t${Math.round(recv)}\t${stored}\n`);
  if (lat.length >= expected) break;
}
if (receiptsFile) writeFileSync(receiptsFile, receipts.join(""));
lat.sort((a, b) => a - b);
const pct = (p) => lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)];
process.stdout.write(JSON.stringify({
  n: lat.length, p50_ms: pct(50).toFixed(2), p99_ms: pct(99).toFixed(2),
  max_ms: lat[lat.length - 1].toFixed(2),
}) + "\n");
await nc.close();
