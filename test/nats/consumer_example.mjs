// The "Node.js Consumer Example" of the NATS integration guide of the
// original pgoutput-stream tool, changed as little as possible for the TAP
// test 007_nats_consumer.pl:
//   - import instead of require (test/nats is an ES module package);
//   - the server URL and the number of messages to read are arguments;
//   - it stops after that many messages and says how many it read;
//   - records are printed as JSON, so that the test can read them;
//   - an error ends it with exit status 1 (the guide's version logs it and
//     keeps the connection, so it never ends).
// As in the guide, the durable consumer "user_processor" of the JetStream
// stream "postgres_replication" must exist: js.consumers.get() does not
// create it, it fails with "consumer not found" (the test creates it with
// js_admin.mjs first).
//
// usage: node consumer_example.mjs <server-url> <number of messages>
import { connect, StringCodec } from 'nats';

const [server, count] = process.argv.slice(2);
const expected = Number(count);

async function main() {
  // Connect to NATS
  const nc = await connect({ servers: server });

  // Access JetStream
  const js = nc.jetstream();
  const sc = StringCodec();

  // Create consumer
  const consumer = await js.consumers.get(
    'postgres_replication',
    'user_processor'
  );

  // Consume messages
  const messages = await consumer.consume();

  console.log('Listening for user events...');

  let received = 0;
  for await (const msg of messages) {
    const data = JSON.parse(sc.decode(msg.data));

    // Process the event
    if (data.Insert) {
      console.log('New record:', JSON.stringify(data.Insert));
    } else if (data.Update) {
      console.log('Updated record:', JSON.stringify(data.Update));
    } else if (data.Delete) {
      console.log('Deleted record:', JSON.stringify(data.Delete));
    }

    // Acknowledge processing
    msg.ack();

    if (++received >= expected) {
      break;
    }
  }
  console.log(`Received ${received} messages`);
  await nc.flush();
  await nc.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
