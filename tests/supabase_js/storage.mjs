// supabase-js's storage client and tus-js-client, unchanged, against orgbase's
// /storage/v1. Reads ORGBASE_URL, ANON_KEY, TOKEN (an org's owner), OTHER_TOKEN (another
// org's owner), BUCKET; prints one JSON line of what it saw; exits 1 on any surprise.
import { createClient } from "@supabase/supabase-js";
import * as tus from "tus-js-client";
import WebSocket from "ws";

const { ORGBASE_URL: url, ANON_KEY: anon, TOKEN: token, OTHER_TOKEN: other, BUCKET: bucket } =
  process.env;
const client = (bearer) =>
  createClient(url, anon, {
    global: { headers: { Authorization: `Bearer ${bearer}` } },
    realtime: { transport: WebSocket },
    auth: { persistSession: false, autoRefreshToken: false },
  });
const check = (label, { data, error }) => {
  if (error) throw new Error(`${label}: ${error.message} (${error.statusCode ?? error.status})`);
  return data;
};

const supabase = client(token);
const storage = supabase.storage;
const seen = {};
check("createBucket", await storage.createBucket(bucket, { public: false, fileSizeLimit: "10MB" }));
seen.buckets = check("listBuckets", await storage.listBuckets()).map((b) => b.id);
const files = storage.from(bucket);
const body = new Blob(["hello from supabase-js"], { type: "text/plain" });
seen.uploaded = check("upload", await files.upload("docs/hello.txt", body)).fullPath;
const duplicate = await files.upload("docs/hello.txt", body);
seen.duplicateStatus = duplicate.error?.statusCode;
seen.downloaded = await check("download", await files.download("docs/hello.txt")).text();
seen.listed = check("list", await files.list("docs")).map((o) => o.name);
const signed = check("createSignedUrl", await files.createSignedUrl("docs/hello.txt", 60));
seen.signedBody = await (await fetch(signed.signedUrl)).text();
check("move", await files.move("docs/hello.txt", "docs/moved.txt"));
check("copy", await files.copy("docs/moved.txt", "copy.txt"));
seen.exists = check("exists", await files.exists("docs/moved.txt"));
seen.missing = (await files.exists("docs/hello.txt")).data;

// A resumable upload as Supabase documents it: tus-js-client, 6 MiB chunks.
const big = Buffer.alloc(7 * 1024 * 1024, 7);
await new Promise((resolve, reject) => {
  const upload = new tus.Upload(big, {
    endpoint: `${url}/storage/v1/upload/resumable`,
    headers: { authorization: `Bearer ${token}`, apikey: anon, "x-upsert": "true" },
    chunkSize: 6 * 1024 * 1024,
    uploadDataDuringCreation: true,
    removeFingerprintOnSuccess: true,
    metadata: { bucketName: bucket, objectName: "big.bin", contentType: "application/octet-stream" },
    onError: reject,
    onSuccess: resolve,
  });
  upload.start();
});
seen.bigSize = (await check("download big", await files.download("big.bin")).arrayBuffer()).byteLength;

// Another org: none of it.
const stranger = client(other).storage;
seen.strangerBuckets = check("stranger listBuckets", await stranger.listBuckets()).map((b) => b.id);
seen.strangerDownload = (await stranger.from(bucket).download("copy.txt")).error?.statusCode;

seen.removed = check("remove", await files.remove(["docs/moved.txt", "copy.txt", "big.bin"])).map(
  (o) => o.name,
);
check("emptyBucket", await storage.emptyBucket(bucket));
check("deleteBucket", await storage.deleteBucket(bucket));
console.log(JSON.stringify(seen));
