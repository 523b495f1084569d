// fal's official JavaScript client (@fal-ai/client, pinned in package.json), unmodified,
// against shotgraph's emulator. Run by tests/emulator/test_emulator_fal_js.py, which reads
// the one JSON line this prints.
//
// fal-js builds https://queue.fal.run/..., https://fal.run/... and https://rest.fal.ai/...
// itself; its `requestMiddleware` option (configuration, not a change to the client) sends
// each to the emulator's queue origin or its run host. The upload's PUT goes to the URL the
// emulator hands out, as it would to fal's CDN.
import { createFalClient } from "@fal-ai/client";

const QUEUE = process.env.EMULATOR_URL;
const RUN = process.env.EMULATOR_RUN_URL;
const APP = "fal-ai/ltx-video-13b-distilled";
const HOSTS = [
  ["https://queue.fal.run/", `${QUEUE}/`],
  ["https://fal.run/", `${RUN}/`],
  ["https://rest.fal.ai/", `${QUEUE}/`],
];

const fal = createFalClient({
  credentials: "js-id:js-secret",
  requestMiddleware: async (request) => {
    for (const [from, to] of HOSTS) {
      if (request.url.startsWith(from)) {
        return { ...request, url: to + request.url.slice(from.length) };
      }
    }
    return request;
  },
});

const small = (prompt, seed) => ({ prompt, num_frames: 9, resolution: "480p", seed });
const out = {};

// upload: storage/upload/initiate, then the PUT to the URL it gave.
const bytes = new Uint8Array(4096).map((_, i) => i % 251);
const url = await fal.storage.upload(new Blob([bytes], { type: "image/png" }));
const fetched = new Uint8Array(await (await fetch(url)).arrayBuffer());
out.upload = { url, same: fetched.length === bytes.length && fetched.every((b, i) => b === bytes[i]) };

// submit, status, streamStatus, result.
const receipt = await fal.queue.submit(APP, { input: small("a lighthouse at dusk", 21) });
out.receipt = { status: receipt.status, has_id: Boolean(receipt.request_id) };
const first = await fal.queue.status(APP, { requestId: receipt.request_id, logs: true });
out.first_status = first.status;
const stream = await fal.queue.streamStatus(APP, { requestId: receipt.request_id, logs: true });
const streamed = [];
stream.on("data", (event) => streamed.push(event.status));
const last = await stream.done();
out.stream = { statuses: streamed, last: last.status };
const result = await fal.queue.result(APP, { requestId: receipt.request_id });
out.result = { seed: result.data.seed, video: result.data.video.url, request_id: result.requestId };

// subscribe, streaming: onQueueUpdate gets the logs accumulated; each line must be there once.
const updates = [];
const subscribed = await fal.subscribe(APP, {
  input: small("she turns to the window", 8),
  logs: true,
  mode: "streaming",
  onQueueUpdate: (update) => updates.push(update),
});
const lastLogs = updates.filter((u) => Array.isArray(u.logs)).at(-1)?.logs ?? [];
const messages = lastLogs.map((entry) => `${entry.timestamp} ${entry.message}`);
out.subscribe = {
  seed: subscribed.data.seed,
  updates: updates.map((u) => u.status),
  logs: lastLogs.map((entry) => entry.message),
  repeated: messages.length - new Set(messages).size,
  request_id: subscribed.requestId,
};

// subscribe, polling (fal-js's default).
const polled = await fal.subscribe(APP, { input: small("a polled shot", 9), pollInterval: 50 });
out.subscribe_polling = { seed: polled.data.seed };

// run: the synchronous host answers with the output itself.
const ran = await fal.run(APP, { input: small("at once", 5) });
out.run = { seed: ran.data.seed, keys: Object.keys(ran.data).sort(), video: ran.data.video.url };

// cancel: a queued job is removed; a finished one is answered ALREADY_COMPLETED (400).
try {
  await fal.queue.cancel(APP, { requestId: receipt.request_id });
  out.cancel_done = "ok";
} catch (error) {
  out.cancel_done = error.status;
}
const blocker = await fal.queue.submit(APP, { input: small("blocking the queue", 30) });
const queued = await fal.queue.submit(APP, { input: small("never runs", 31) });
await fal.queue.cancel(APP, { requestId: queued.request_id });
const cancelled = await fal.queue.status(APP, { requestId: queued.request_id });
out.cancel_queued = { status: cancelled.status, error_type: cancelled.error_type ?? null };
out.blocker = Boolean(blocker.request_id);

// A request the app rejects: fal-js's ValidationError with pydantic's items.
try {
  await fal.run(APP, { input: { prompt: "too long", num_frames: 5000 } });
} catch (error) {
  out.invalid = { name: error.name, status: error.status, loc: error.body?.detail?.[0]?.loc };
}

console.log(JSON.stringify(out));
