/**
 * The RunPod worker mode end to end: the real orchestrator (job loop) and gpu-worker processes
 * against a fake RunPod platform. Several jobs at once — streams of many chunks, decryption
 * failures, plaintext, malformed jobs — each reach the right final state, and the chunks posted
 * equal what the local API produces for the same request.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { FernetKey } from "../../shared/crypto/index.js";
import {
  decryptChunk,
  type EncryptedChunk,
  isEncryptedChunk,
  type StreamChunk,
} from "../../shared/protocol/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { testClient, writeKeysFile } from "../support/client-keys.js";
import { tinyModelPath } from "../support/models.js";
import { type JobView, TestStack, textOf } from "../support/stack.js";

const apiKey = "rp-fake-key-123";
const requests = [
  { prompt: "Once upon a time the dog", sampling_params: { max_tokens: 40, temperature: 0 } },
  { prompt: "the cat sat", sampling_params: { max_tokens: 60, temperature: 0 } },
  {
    messages: [{ role: "user", content: "Tell me about the sun." }],
    sampling_params: { max_tokens: 24, temperature: 0 },
  },
  { prompt: "a", sampling_params: { max_tokens: 5, temperature: 0 } },
];
/** Same generation, one sequence, every piece its own delta: chunk boundaries are deterministic. */
const env = {
  MODEL_SEQUENCES: "1",
  CONTEXT_SIZE: "512",
  DELTA_WINDOW_MS: "0",
};

/** A chunk list with the (timing-dependent) timings left out. */
/** A job's chunks less what differs between two runs of one request: timings, the drawn seed. */
function comparable(chunks: readonly unknown[]): unknown[] {
  return chunks.map((chunk) => {
    const { timings: _timings, seed: _seed, ...rest } = chunk as Record<string, unknown>;
    return rest;
  });
}

function codeOf(error: unknown): string {
  assert.equal(typeof error, "string", "the error is a string");
  return (JSON.parse(error as string) as { code: string }).code;
}

describe("RunPod worker: jobs", () => {
  let modelPath: string;
  const local: JobView[] = [];
  let foreignToken: string;
  let platform: FakeRunpodPlatform;
  let stack: TestStack;
  const acme = testClient("acme");
  let keys: Awaited<ReturnType<typeof writeKeysFile>>;

  before(async () => {
    keys = await writeKeysFile([acme]);
    modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    // The local API's answer to each request, one at a time.
    const localStack = await TestStack.start({
      models: `tiny=${modelPath}`,
      env,
      label: "rp-local",
    });
    try {
      for (const request of requests) local.push(await localStack.runsync(request));
      foreignToken = FernetKey.generate().encrypt(JSON.stringify(requests[0]));
      local.push(
        (await localStack.post("/runsync", {
          input: { encrypted_input: foreignToken },
        })) as JobView,
      );
    } finally {
      await localStack.stop();
    }
    platform = await FakeRunpodPlatform.start({ apiKey, holdMs: 300 });
    stack = await TestStack.start({
      models: `tiny=${modelPath}`,
      runpod: { ...platform.env(), RUNPOD_ENDPOINT_ID: "fake-endpoint" },
      env: {
        ...env,
        MAX_CONCURRENCY: "4",
        STREAM_POST_WINDOW_MS: "10",
        CLIENT_KEYS_FILE: keys.file,
      },
      label: "rp-jobs",
    });
  });

  after(async () => {
    await stack?.stop();
    await platform?.close();
    await keys?.remove();
  });

  it("takes jobs in batches and brings each to the right final state, chunks equal to the local API's", async () => {
    for (const view of local.slice(0, requests.length)) assert.equal(view.status, "COMPLETED");
    assert.ok((local[0]?.output?.length ?? 0) > 5, "the first request streams through many chunks");
    const good = requests.map((request, index) => ({
      id: `job-ok-${index}`,
      input: { encrypted_input: stack.encrypt(request) },
    }));
    const tampered = stack.encrypt(requests[0]);
    // One character of the IV changed (to another: it is random, and was "A" 1 time in 64).
    const changed = tampered[20] === "A" ? "B" : "A";
    const bad = [
      { id: "job-foreign-key", input: { encrypted_input: foreignToken } },
      {
        id: "job-tampered",
        input: { encrypted_input: `${tampered.slice(0, 20)}${changed}${tampered.slice(21)}` },
      },
      { id: "job-plaintext", input: { prompt: "Once upon a time" } },
      { id: "job-no-input", webhook: "ignored" },
      { input: { encrypted_input: tampered } },
    ];
    // Interleaved, so failures sit between streams in the same batches.
    const [g0, g1, g2, g3] = good;
    const [b0, b1, b2, b3, b4] = bad;
    assert.ok(g0 && g1 && g2 && g3 && b0 && b1 && b2 && b3 && b4);
    platform.enqueue(g0, b0, g1, b1, b2, g2, b3, b4, g3);

    for (const [index, job] of good.entries()) {
      const post = await stack.explain(platform.waitForOutput(job.id));
      assert.equal(post.isStream, "true");
      assert.equal(post.requestId, job.id);
      assert.equal(post.contentType, "application/x-www-form-urlencoded");
      assert.equal(post.body.error, undefined);
      const output = post.body.output as StreamChunk[];
      const reference = local[index]?.output ?? [];
      assert.deepEqual(comparable(output), comparable(reference), `job ${index}: final output`);
      assert.deepEqual(
        comparable(platform.streamed(job.id)),
        comparable(reference),
        `job ${index}: streamed chunks, in order`,
      );
      for (const streamPost of platform.streamPosts.filter((p) => p.jobId === job.id)) {
        assert.equal(streamPost.isStream, "false");
        assert.ok(Array.isArray(streamPost.body.output));
      }
    }
    const expectedCodes: Record<string, string> = {
      "job-foreign-key": codeOf(local[requests.length]?.error),
      "job-tampered": "DECRYPT_FAILED",
      "job-plaintext": "INVALID_INPUT",
      "job-no-input": "INVALID_INPUT",
    };
    assert.equal(expectedCodes["job-foreign-key"], "DECRYPT_FAILED");
    for (const [jobId, code] of Object.entries(expectedCodes)) {
      const post = await platform.waitForOutput(jobId);
      assert.equal(post.body.output, undefined, `${jobId}: no output`);
      assert.equal(codeOf(post.body.error), code, `${jobId}: error code`);
      assert.equal(post.body.stopPod, undefined);
      assert.deepEqual(platform.streamed(jobId), [], `${jobId}: nothing streamed`);
    }
    // The job without an id could not be answered, and harmed nothing: every other job is done.
    assert.equal(platform.outputPosts.length, good.length + Object.keys(expectedCodes).length);
    assert.deepEqual(platform.unauthorized, []);

    // Batch take while several slots were free, and never more jobs than free slots.
    const batches = platform.takes.filter((take) => take.batch);
    assert.ok(batches.length > 0, "job-take-batch was used");
    assert.ok(
      batches.some((take) => take.jobIds.length > 1),
      "a batch take brought several jobs",
    );
    for (const take of platform.takes) {
      const size = take.batch ? (take.batchSize ?? 0) : 1;
      assert.ok(size >= 1 && size <= 4, "batch_size is within the concurrency");
      assert.ok(take.jobIds.length <= size);
      assert.equal(take.batch, size > 1, "a single free slot takes with /job-take/");
    }
  });

  it("runs a job delivered twice once: again while held is ignored, again after its post re-answers", async () => {
    const request = {
      prompt: "the sun and the moon",
      sampling_params: { max_tokens: 12, temperature: 0 },
    };
    const job = { id: "job-twice", input: { encrypted_input: stack.encrypt(request) } };
    platform.enqueue(job, job);
    const first = await stack.explain(platform.waitForOutput(job.id));
    platform.enqueue(job);
    await stack.explain(
      platform.until(() => platform.outputPosts.filter((p) => p.jobId === job.id).length === 2),
    );
    const posts = platform.outputPosts.filter((p) => p.jobId === job.id);
    assert.deepEqual(posts[1]?.body, first.body, "the same result, posted again");
    assert.equal(first.body.error, undefined);
    const runs = stack.logs.filter(
      (line) => line.includes("job finished") && line.includes("job-twice"),
    );
    assert.equal(runs.length, 1, `generated once:\n${runs.join("\n")}`);
  });

  it("checks a named client's job input, and posts its output sealed to that client", async () => {
    const request = { ...requests[0], encrypt_output: true };
    const named = { id: "job-named", input: acme.input(request) };
    const wrongKey = {
      id: "job-named-wrong-key",
      input: { client: "acme", encrypted_input: stack.encrypt(request) },
    };
    const unknown = {
      id: "job-unknown-client",
      input: { ...acme.input(request), client: "nobody" },
    };
    platform.enqueue(named, wrongKey, unknown);
    const post = await stack.explain(platform.waitForOutput(named.id));
    assert.equal(post.body.error, undefined);
    const output = post.body.output as EncryptedChunk[];
    assert.ok(output.length > 1 && output.every(isEncryptedChunk));
    const opened = output.map((chunk) => decryptChunk(acme.ring, chunk));
    assert.ok(
      opened.every((chunk) => chunk !== undefined),
      "acme opens every chunk",
    );
    assert.equal(
      textOf(opened as StreamChunk[]),
      textOf(local[0]?.output ?? []),
      "to the local API's text",
    );
    assert.ok(output.every((chunk) => decryptChunk(stack.keyRing, chunk) === undefined));
    for (const job of [wrongKey, unknown]) {
      const refused = await platform.waitForOutput(job.id);
      assert.equal(codeOf(refused.body.error), "DECRYPT_FAILED", job.id);
      assert.deepEqual(platform.streamed(job.id), []);
    }
  });

  it("reports job_in_progress as the platform sees it", () => {
    assert.ok(platform.takes.length > 3);
    const inProgress = platform.takes.filter((take) => take.jobInProgress === "1");
    const idle = platform.takes.filter((take) => take.jobInProgress === "0");
    assert.equal(inProgress.length + idle.length, platform.takes.length, "always 0 or 1");
    assert.ok(inProgress.length > 0, "some takes were made while jobs were held");
    for (const take of idle) {
      assert.equal(take.outstanding, 0, "job_in_progress=0 only when no job is held");
    }
    for (const take of inProgress) {
      // A job may post its result while this take is on its way: allow for that moment.
      const recentlyEnded = platform.outputPosts.some(
        (post) => post.at <= take.at && take.at - post.at < 1000,
      );
      assert.ok(take.outstanding > 0 || recentlyEnded, "job_in_progress=1 only while holding");
    }
  });

  it("logs RunPod's JSON lines, with job ids and never the text", () => {
    const lines = stack.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const line of lines) {
      assert.deepEqual(Object.keys(line).sort(), ["level", "message", "requestId"]);
    }
    assert.ok(lines.some((line) => line.requestId === "job-ok-0"));
    const text = stack.logs.join("\n");
    for (const view of local) {
      for (const chunk of view.output ?? []) {
        if ("delta" in chunk && chunk.delta.trim().length > 12) {
          assert.ok(!text.includes(chunk.delta), "no generated text in the logs");
        }
      }
    }
    assert.ok(!text.includes("Once upon a time"), "no prompt text in the logs");
    assert.ok(!text.includes(apiKey), "no API key in the logs");
  });
});
