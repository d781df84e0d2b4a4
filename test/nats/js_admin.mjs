// JetStream administration for the TAP tests; prints one JSON document.
//
// usage: node js_admin.mjs <server-url> [--user U P | --token T | --tls-ca CA] -- <command>
//
// commands:
//   add <stream> <storage file|memory> <subject>...   create a stream; prints its info
//   update <stream> <subject>...                     replace the subjects of a stream
//   max-msg-size <stream> <bytes>                    set the largest message a stream stores
//                                                    (-1: no limit)
//   info <stream>                                     prints {config, state} of a stream
//   consumer <stream> <durable>                       create a durable pull consumer
//                                                     (explicit acks, from the first message)
//   consumer-info <stream> <durable>                  prints the info of a consumer
//   delete <stream>                                   delete a stream
//   purge <stream>                                    remove every message of a stream
//   publish <subject> <data> <msg-id>                 publish through JetStream;
//                                                     prints the acknowledgement
import { connect, AckPolicy, DeliverPolicy, StorageType } from "nats";

const args = process.argv.slice(2);
const server = args.shift();
const opts = { servers: server.split(","), timeout: 5000 };
while (args.length > 0 && args[0] !== "--") {
  const a = args.shift();
  if (a === "--user") { opts.user = args.shift(); opts.pass = args.shift(); }
  else if (a === "--token") { opts.token = args.shift(); }
  else if (a === "--tls-ca") { opts.tls = { caFile: args.shift() }; }
  else throw new Error(`unknown option ${a}`);
}
args.shift();
const [command, ...rest] = args;

const nc = await connect(opts);
const jsm = await nc.jetstreamManager();
let result;
if (command === "add") {
  const [name, storage, ...subjects] = rest;
  const info = await jsm.streams.add({
    name, subjects,
    storage: storage === "memory" ? StorageType.Memory : StorageType.File,
  });
  result = { config: info.config, state: info.state };
} else if (command === "update") {
  const [name, ...subjects] = rest;
  const info = await jsm.streams.update(name, { subjects });
  result = { config: info.config, state: info.state };
} else if (command === "max-msg-size") {
  const [name, bytes] = rest;
  const info = await jsm.streams.update(name, { max_msg_size: Number(bytes) });
  result = { config: info.config, state: info.state };
} else if (command === "info") {
  const info = await jsm.streams.info(rest[0]);
  result = { config: info.config, state: info.state };
} else if (command === "consumer") {
  const info = await jsm.consumers.add(rest[0], {
    durable_name: rest[1],
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
  });
  result = { name: info.name, config: info.config };
} else if (command === "consumer-info") {
  const info = await jsm.consumers.info(rest[0], rest[1]);
  result = {
    name: info.name, delivered: info.delivered, ack_floor: info.ack_floor,
    num_ack_pending: info.num_ack_pending, num_pending: info.num_pending,
  };
} else if (command === "delete") {
  result = { deleted: await jsm.streams.delete(rest[0]) };
} else if (command === "purge") {
  result = { purged: (await jsm.streams.purge(rest[0])).purged };
} else if (command === "publish") {
  const [subject, data, msgID] = rest;
  const ack = await nc.jetstream().publish(subject, new TextEncoder().encode(data), { msgID });
  result = { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
} else {
  throw new Error(`unknown command ${command}`);
}
process.stdout.write(JSON.stringify(result) + "\n");
await nc.close();
