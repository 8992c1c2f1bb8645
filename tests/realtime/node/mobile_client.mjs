// A mobile app's use of the npm socket.io-client against a Pulse gateway.
// Usage: node mobile_client.mjs URL ALICE_TOKEN BOB_TOKEN CONVERSATION_ID
// Prints one JSON object with what happened, then exits (0 on success).
import { io } from "socket.io-client";

const [url, aliceToken, bobToken, conversationId] = process.argv.slice(2);
const result = {};
const options = (token, device) => ({
  transports: ["websocket"],
  reconnection: false,
  timeout: 5000,
  auth: { token, device_id: device, platform: "ios", app_version: "3.2.1" },
});

function once(socket, event, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event}`)), timeoutMs);
    socket.once(event, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

async function main() {
  const refused = io(url, options("not-a-token", "bad"));
  const error = await once(refused, "connect_error");
  result.refused = { message: error.message, data: error.data };
  refused.close();

  const bob = io(url, options(bobToken, "bob-phone"));
  await once(bob, "connect");
  const bulk = once(bob, "presence_bulk_update");
  result.subscribeAck = await bob.timeout(5000).emitWithAck("presence_subscribe", { user_ids: [process.env.ALICE_ID] });
  result.bulk = await bulk;

  const online = once(bob, "user_presence_update");
  const alice = io(url, options(aliceToken, "alice-phone"));
  await once(alice, "connect");
  result.presence = await online;

  const typing = once(bob, "typing_start");
  result.typingAck = await alice.timeout(5000).emitWithAck("typing_start", { conversation_id: conversationId });
  result.typing = await typing;

  const error2 = once(alice, "error");
  alice.emit("no_such_event", { x: 1 });
  result.unknown = await error2;

  alice.close();
  bob.close();
  console.log(JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.log(JSON.stringify({ ...result, failure: String(err) }));
    process.exit(1);
  },
);
