/**
 * A set of models that does not fit the memory budget: the gpu-worker exits non-zero before
 * loading anything, with the plan's table in its log and `INSUFFICIENT_MEMORY`, and leaves no
 * registry entry behind. The budget is set with `MEMORY_BUDGET_MB` so the outcome does not depend
 * on the machine; the need comes from node-llama-cpp's estimates for the real files.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { FernetKey } from "../../shared/crypto/index.js";
import { tinyModelPath } from "../support/models.js";
import {
  deleteKeysWithPrefix,
  keysWithPrefix,
  testRedisUrl,
  uniquePrefix,
} from "../support/redis.js";

const distRoot = fileURLToPath(new URL("../../", import.meta.url));

describe("a memory plan that does not fit", () => {
  let redisUrl: string;
  const prefix = uniquePrefix("plan");

  after(async () => {
    if (redisUrl) await deleteKeysWithPrefix(redisUrl, prefix);
  });

  it("exits before loading any model, with the table and INSUFFICIENT_MEMORY", async () => {
    redisUrl = await testRedisUrl();
    const small = await tinyModelPath({ seed: 101 });
    const other = await tinyModelPath({ seed: 202, headCount: 8 });
    const lines: string[] = [];
    const child = spawn(
      process.execPath,
      ["--enable-source-maps", path.join(distRoot, "gpu-worker", "main.js")],
      {
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? os.homedir(),
          REDIS_URL: redisUrl,
          REDIS_PREFIX: prefix,
          ENCRYPTION_KEY: FernetKey.generate().exportKey(),
          MODELS: `small=${small}?sequences=2,other=${other}?threads=2&context=1024`,
          // Less than either model needs on its own (together they need not fit).
          MEMORY_BUDGET_MB: "1",
          LLAMA_GPU: "off",
          LLAMA_THREADS: "1",
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (text: string) => lines.push(...text.split("\n").filter(Boolean)));
    }
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const log = lines.join("\n");
    assert.equal(code, 1, log);
    assert.match(log, /memory plan: a model does not fit the budget on its own/);
    assert.match(log, /"small" needs [\d.]+ MiB, "other" needs [\d.]+ MiB on its own/);
    assert.match(log, /model\s+weights\s+KV cache\s+threads\s+total/);
    assert.match(log, /small\s+[\d.]+ MiB\s+[\d.]+ MiB \(2048×2\)\s+1\s+[\d.]+ MiB/);
    assert.match(log, /other\s+[\d.]+ MiB \(shared\)\s+[\d.]+ MiB \(1024×4\)\s+2\s+[\d.]+ MiB/);
    assert.match(log, /budget\s+1\.0 MiB \(MEMORY_BUDGET_MB, cpu\)/);
    assert.match(log, /code=INSUFFICIENT_MEMORY/);
    assert.doesNotMatch(log, /loading model|model thread ready|model ready/);
    assert.deepEqual(
      (await keysWithPrefix(redisUrl, prefix)).filter((key) => key.includes(":registry:")),
      [],
      "the gpu-worker withdrew its registry entries",
    );
  });
});
