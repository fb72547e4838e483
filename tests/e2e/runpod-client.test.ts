/**
 * The reference client in RunPod-hosted mode, end to end: the client calls a fake hosted API
 * (`/v2/<endpoint>`, `RUNPOD_API_KEY` as Bearer, `/run` then `/stream/{id}` polling), whose jobs
 * the real RunPod worker (orchestrator job loop + gpu-worker) takes and streams back.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { StreamChunk } from "../../shared/protocol/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack, textOf } from "../support/stack.js";

const clientEntry = fileURLToPath(new URL("../../client/cli/main.js", import.meta.url));
const userApiKey = "user-key-for-hosted-api";

function runClient(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [clientEntry, ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: os.homedir(), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding("utf8").on("data", (text: string) => {
      stderr += text;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("reference client against a RunPod-hosted endpoint", () => {
  let platform: FakeRunpodPlatform;
  let stack: TestStack;
  let env: Record<string, string>;
  const args = ["Once upon a time", "--max-tokens", "48", "--temperature", "0"];

  before(async () => {
    platform = await FakeRunpodPlatform.start({ apiKey: "worker-key", holdMs: 300, userApiKey });
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      runpod: platform.env(),
      env: { MODEL_SEQUENCES: "1", STREAM_POST_WINDOW_MS: "5", DELTA_WINDOW_MS: "0" },
      label: "rp-client",
    });
    env = {
      ENCRYPTION_KEY: stack.key,
      DATA_DIR: path.join(os.tmpdir(), "no-such-pool-data"),
      POOL_URL: platform.hostedUrl,
      RUNPOD_API_KEY: userApiKey,
    };
  });

  after(async () => {
    await stack?.stop();
    await platform?.close();
  });

  it("streams the worker's text through /run and /stream, and /runsync gives the same", async () => {
    const streamed = await runClient(args, env);
    assert.equal(streamed.code, 0, streamed.stderr);
    const [first] = platform.outputPosts;
    assert.ok(first, "the worker ran the job");
    const text = textOf(first.body.output as StreamChunk[]);
    assert.ok(text.length > 0);
    assert.equal(streamed.stdout.trimEnd(), text.trimEnd());
    assert.ok(
      platform.streamPosts.filter((post) => post.jobId === first.jobId).length > 1,
      "the text came through several stream posts",
    );

    const sync = await runClient([...args, "--no-stream"], env);
    assert.equal(sync.code, 0, sync.stderr);
    assert.equal(sync.stdout, streamed.stdout);
  });

  it("is refused without the right API key", async () => {
    const refused = await runClient(args, { ...env, RUNPOD_API_KEY: "wrong" });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /HTTP 401/);
  });

  it("refuses RunPod's plaintext openai_route jobs while ALLOW_PLAINTEXT_OPENAI is off", async () => {
    platform.enqueue(
      {
        id: "openai-refused",
        input: {
          openai_route: "/v1/chat/completions",
          openai_input: { model: "tiny", messages: [{ role: "user", content: "Hi" }] },
        },
      },
      { id: "openai-models-refused", input: { openai_route: "/v1/models", openai_input: {} } },
    );
    for (const id of ["openai-refused", "openai-models-refused"]) {
      const { body } = await platform.waitForOutput(id);
      assert.equal(body.output, undefined);
      const error = JSON.parse(body.error as string) as { code: string; message: string };
      assert.equal(error.code, "OPENAI_PLAINTEXT_DISABLED");
      assert.match(error.message, /ALLOW_PLAINTEXT_OPENAI=true/);
      assert.match(error.message, /npm run proxy/);
    }
  });
});
