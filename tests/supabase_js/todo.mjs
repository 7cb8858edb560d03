// supabase-js, unchanged, running the todo-list example's calls against orgbase (the
// example's migration applied by `orgbase migrate`): two users sign up and in, each
// inserts, selects, updates and deletes their own todos, and neither reaches the other's.
// Reads ORGBASE_URL, ANON_KEY, PASSWORD; prints one JSON line of what it saw; exits 1 on any
// surprise. (It lives beside storage.mjs to share its node_modules.)
import { createClient } from "@supabase/supabase-js";
import WebSocket from "ws";

const { ORGBASE_URL: url, ANON_KEY: anon, PASSWORD: password } = process.env;
const check = (label, { data, error }) => {
  if (error) throw new Error(`${label}: ${error.message} (${error.code ?? error.status})`);
  return data;
};
const person = async (name) => {
  const supabase = createClient(url, anon, {
    realtime: { transport: WebSocket },
    auth: { persistSession: false, autoRefreshToken: false },
  });
  const email = `${name}-${Date.now()}-${Math.random().toString(16).slice(2)}@todo.test`;
  check("signUp", await supabase.auth.signUp({ email, password }));
  const { user } = check("signIn", await supabase.auth.signInWithPassword({ email, password }));
  return { supabase, id: user.id };
};

const alice = await person("alice");
const bob = await person("bob");
const seen = {};
const todos = (who) => who.supabase.from("todos");
const added = check(
  "insert",
  await todos(alice).insert({ task: "write the report", user_id: alice.id }).select().single(),
);
check("insert bob", await todos(bob).insert({ task: "water plants", user_id: bob.id }));
seen.aliceSees = check("select", await todos(alice).select("*").order("id")).map((t) => t.task);
seen.bobSees = check("select bob", await todos(bob).select("*")).map((t) => t.task);
const done = check(
  "update",
  await todos(alice).update({ is_complete: true }).eq("id", added.id).select().single(),
);
seen.completed = done.is_complete;
seen.bobUpdated = check(
  "bob update",
  await todos(bob).update({ task: "hacked" }).eq("id", added.id).select(),
).length;
seen.bobDeleted = check("bob delete", await todos(bob).delete().eq("id", added.id).select()).length;
const forged = await todos(bob).insert({ task: "in her name", user_id: alice.id });
seen.forgedCode = forged.error?.code ?? null;
seen.aliceDeleted = check("delete", await todos(alice).delete().eq("id", added.id).select()).length;
seen.aliceLeft = check("select after", await todos(alice).select("*")).length;
console.log(JSON.stringify(seen));
