// supabase-js's realtime client, unchanged, against orgbase's /realtime/v1 on two gateway
// processes: Alice on gateway A, Bob on gateway B, members of one org, each signed in with
// a password (the sign-in enters their last used org). Bob listens to postgres_changes with
// a filter, broadcasts and presence; Alice tracks her presence, broadcasts and inserts
// rows. Reads URL_A, URL_B, ANON_KEY, EMAIL_A, EMAIL_B, PASSWORD, VSN; prints one JSON line
// of what was seen; exits 1 on any surprise.
import { createClient } from "@supabase/supabase-js";
import WebSocket from "ws";

const { URL_A, URL_B, ANON_KEY, EMAIL_A, EMAIL_B, PASSWORD, VSN } = process.env;
const client = (url) =>
  createClient(url, ANON_KEY, {
    realtime: { transport: WebSocket, vsn: VSN || "2.0.0" },
    auth: { persistSession: false, autoRefreshToken: false },
  });
const within = (ms, label, promise) =>
  Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${label}: timed out`)), ms)),
  ]);
const until = (label, test, ms = 10000) =>
  within(
    ms,
    label,
    new Promise((resolve) => {
      const poll = setInterval(() => {
        if (test()) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    }),
  );
const subscribed = (channel) =>
  within(
    10000,
    `subscribe ${channel.topic}`,
    new Promise((resolve, reject) =>
      channel.subscribe((status, error) => {
        if (status === "SUBSCRIBED") resolve();
        else if (status !== "CLOSED") reject(new Error(`${status}: ${error?.message}`));
      }),
    ),
  );

const alice = client(URL_A);
const bob = client(URL_B);
for (const [who, email] of [
  [alice, EMAIL_A],
  [bob, EMAIL_B],
]) {
  const { error } = await who.auth.signInWithPassword({ email, password: PASSWORD });
  if (error) throw new Error(`sign-in: ${error.message}`);
}

const seen = { changes: [], broadcasts: [], presenceKeys: [], bobSelf: 0 };
const bobRoom = bob
  .channel("room", { config: { broadcast: { self: false }, presence: { key: "bob" } } })
  .on("postgres_changes", { event: "INSERT", schema: "public", table: "tasks", filter: "points=gt.5" }, (p) =>
    seen.changes.push({ type: p.eventType, title: p.new.title, points: p.new.points, table: p.table }),
  )
  .on("broadcast", { event: "hello" }, (p) => seen.broadcasts.push(p.payload))
  .on("broadcast", { event: "from-bob" }, () => (seen.bobSelf += 1))
  .on("presence", { event: "sync" }, () => {
    seen.presenceKeys = Object.keys(bobRoom.presenceState()).sort();
  });
await subscribed(bobRoom);

const aliceRoom = alice.channel("room", {
  config: { broadcast: { self: true, ack: true }, presence: { key: "alice" } },
});
const aliceHeard = [];
aliceRoom.on("broadcast", { event: "hello" }, (p) => aliceHeard.push(p.payload));
aliceRoom.on("presence", { event: "sync" }, () => {});
await subscribed(aliceRoom);
seen.trackStatus = await aliceRoom.track({ name: "Alice" });
seen.bobTrack = await bobRoom.track({ name: "Bob" });
await until("presence", () => seen.presenceKeys.join() === "alice,bob");
seen.alicePresence = bobRoom.presenceState().alice?.[0]?.name;

seen.sendStatus = await aliceRoom.send({ type: "broadcast", event: "hello", payload: { n: 1 } });
await bobRoom.send({ type: "broadcast", event: "from-bob", payload: {} });
await until("broadcast", () => seen.broadcasts.length === 1 && aliceHeard.length === 1);
seen.aliceSelf = aliceHeard.length;

for (const [title, points] of [
  ["low", 1],
  ["high", 9],
]) {
  const { error } = await alice.from("tasks").insert({ title, points });
  if (error) throw new Error(`insert: ${error.message}`);
}
await until("postgres_changes", () => seen.changes.length >= 1);
await new Promise((resolve) => setTimeout(resolve, 500)); // the low one must not come

seen.untrackStatus = await aliceRoom.untrack();
await until("presence leave", () => seen.presenceKeys.join() === "bob");
seen.removed = await alice.removeChannel(aliceRoom);
await bob.removeAllChannels();
console.log(JSON.stringify(seen));
process.exit(0);
