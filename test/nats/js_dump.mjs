// Print every message of a JetStream stream as one JSON line:
//   {"seq":1,"subject":"...","id":"<Nats-Msg-Id>","headers":{...},"data":"..."}
// then a final line {"count":N,"last_seq":M}.
//
// usage: node js_dump.mjs <server-url> <stream> [user password | --token T | --tls-ca CA]
//
// Reads with an ordered consumer from the first message to the stream's
// last sequence at the time of the call.
import { connect, StringCodec } from "nats";

const [server, stream, ...rest] = process.argv.slice(2);
const opts = { servers: server.split(","), timeout: 5000 };
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === "--user") { opts.user = rest[++i]; opts.pass = rest[++i]; }
  else if (rest[i] === "--token") { opts.token = rest[++i]; }
  else if (rest[i] === "--tls-ca") { opts.tls = { caFile: rest[++i] }; }
}

const sc = StringCodec();
const nc = await connect(opts);
const jsm = await nc.jetstreamManager();
const info = await jsm.streams.info(stream);
const last = info.state.last_seq;
let count = 0;
if (info.state.messages > 0) {
  const js = nc.jetstream();
  const consumer = await js.consumers.get(stream, { opt_start_seq: info.state.first_seq });
  const messages = await consumer.consume();
  for await (const m of messages) {
    const headers = {};
    if (m.headers) {
      for (const [k, v] of m.headers) headers[k] = v.join(",");
    }
    process.stdout.write(JSON.stringify({
      seq: m.seq, subject: m.subject, id: headers["Nats-Msg-Id"] ?? null,
      headers, data: sc.decode(m.data),
    }) + "\n");
    count++;
    if (m.seq >= last) break;
  }
}
process.stdout.write(JSON.stringify({ count, last_seq: last }) + "\n");
await nc.close();
