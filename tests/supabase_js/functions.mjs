// supabase-js's functions client, unchanged, against orgbase's /functions/v1. Reads
// ORGBASE_URL, ANON_KEY, TOKEN and OTHER_TOKEN (owners of two orgs); prints one JSON line of
// what it saw; exits 1 on any surprise.
import { createClient, FunctionsHttpError } from "@supabase/supabase-js";
import WebSocket from "ws";

const { ORGBASE_URL: url, ANON_KEY: anon, TOKEN: token, OTHER_TOKEN: other } = process.env;
const client = (bearer) =>
  createClient(url, anon, {
    global: bearer ? { headers: { Authorization: `Bearer ${bearer}` } } : {},
    realtime: { transport: WebSocket },
    auth: { persistSession: false, autoRefreshToken: false },
  });
const check = (label, { data, error }) => {
  if (error) throw new Error(`${label}: ${error.message}`);
  return data;
};

const seen = {};
seen.first = check("whoami", await client(token).functions.invoke("whoami"));
seen.second = check("whoami other", await client(other).functions.invoke("whoami"));
const anonymous = await client(null).functions.invoke("whoami");
seen.anonymousError = anonymous.error?.name;
seen.anonymousStatus = anonymous.error instanceof FunctionsHttpError ? anonymous.error.context.status : null;
seen.anonymousCode = anonymous.error ? (await anonymous.error.context.json()).code : null;
const echoed = check(
  "echo json",
  await client(token).functions.invoke("echo", { body: { hello: "world" }, headers: { "x-extra": "1" } }),
);
seen.echoBody = echoed.body;
seen.echoType = echoed.headers["content-type"];
seen.echoExtra = echoed.headers["x-extra"];
seen.text = check("echo text", await client(token).functions.invoke("echo?as=text", { method: "GET" }));
const blob = check("echo bytes", await client(token).functions.invoke("echo?as=bytes", { method: "GET" }));
seen.bytes = Array.from(new Uint8Array(await blob.arrayBuffer()));
const refused = await client(token).functions.invoke("echo?as=refuse", { body: "x" });
seen.refusedStatus = refused.error?.context?.status;
seen.refusedCode = refused.error ? (await refused.error.context.json()).code : null;
console.log(JSON.stringify(seen));
