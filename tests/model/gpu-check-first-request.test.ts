/**
 * The GPU check's "first request after load" measure (`tests/gpu-check/first-request.ts`), run
 * here on the CPU build with the tiny model, as the GPU check runs it on a GPU with its models:
 * each process loads the model as a model thread does, cold or warmed up, runs two requests that
 * each evaluate their whole prompt, and reports; the check's report turns that into its table.
 * What it measures on a CPU says nothing (no kernel to load); this keeps the code path that the
 * lent GPU machine runs, where nothing can be fixed mid-run, working.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ModelThreadOptions } from "../../shared/protocol/index.js";
import { firstRequestSection } from "../gpu-check/check-report.js";
import { measureFirstRequests } from "../gpu-check/first-request.js";
import { tinyModelPath } from "../support/models.js";

describe("GPU check: first request after load", () => {
  it("measures each model cold and warmed up, two whole prompts each, and reports them", {
    timeout: 120_000,
  }, async () => {
    const options: ModelThreadOptions = {
      modelName: "tiny",
      modelPath: await tinyModelPath(),
      contextSize: 512,
      sequences: 2,
      llamaThreads: 1,
      gpu: false,
      gpuMemoryUtilization: 0.95,
      promptCache: true,
      deltaWindowMs: 0,
    };
    const result = await measureFirstRequests([options], 200);
    assert.equal(result.promptTokens, 200);
    const [line] = result.models;
    assert.equal(result.models.length, 1);
    assert.equal(line?.model, "tiny");
    for (const report of [line?.cold, line?.warm]) {
      assert.equal(report?.backend, "cpu");
      assert.ok((report?.loadMs ?? 0) > 0);
      assert.equal(report?.requests.length, 2);
      for (const request of report?.requests ?? []) {
        // The whole prompt, evaluated: no prefix shared with the other request, no prompt cache.
        assert.ok(request.promptTokens >= 200, `prompt tokens: ${request.promptTokens}`);
        assert.equal(request.cachedTokens, 0);
        assert.equal(request.completionTokens, 8);
        assert.ok(request.firstTextMs !== undefined && request.firstTextMs <= request.totalMs);
      }
    }
    assert.equal(line?.cold.mode, "cold");
    assert.equal(line?.cold.warmUpMs, undefined);
    assert.equal(line?.warm.mode, "warm");
    assert.equal(typeof line?.warm.warmUpMs, "number");
    // Each in a process of its own.
    assert.notEqual(line?.cold.pid, line?.warm.pid);

    const table = firstRequestSection({ ...result }).join("\n");
    assert.match(
      table,
      /^\| tiny \| cold \| \d+\.\d s \| – \| \d+ \| \d+\.\d \| \d+\.\d \| \d+\.\d× \|$/m,
    );
    assert.match(
      table,
      /^\| tiny \| warmed up \| \d+\.\d s \| \d+\.\d \| \d+ \| \d+\.\d \| \d+\.\d \| \d+\.\d× \|$/m,
    );
  });
});
