/**
 * Scale-out: several gpu-worker processes on one Redis behind one orchestrator. Two gpu-workers
 * serving the same model share its queue (each runs jobs, the texts are the model's); a
 * gpu-worker that serves another model makes that model available the moment it registers, and
 * unavailable again when it stops.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { tinyModelPath } from "../support/models.js";
import { referenceTexts } from "../support/reference.js";
import { type JobView, TestStack, textOf } from "../support/stack.js";

const prompt = "Once upon a time the";
const maxTokens = 48;

interface Health {
  workers: { connected: number };
  models: { name: string; state: string; workers: number }[];
}

describe("scale-out: several gpu-workers on one Redis", () => {
  let stack: TestStack;
  let alphaPath: string;
  let betaPath: string;
  let alphaText: string;
  let betaText: string;
  let first: ChildProcess;
  let second: ChildProcess;

  const health = async () => (await stack.get("/health")) as Health;
  const finishedHere = (child: ChildProcess, jobId: string) =>
    stack.logsOf(child).some((line) => line.includes("job finished") && line.includes(jobId));

  before(async () => {
    alphaPath = await tinyModelPath({ seed: 101 });
    betaPath = await tinyModelPath({ seed: 202 });
    [alphaText = ""] = await referenceTexts(alphaPath, [{ prompt, maxTokens }]);
    [betaText = ""] = await referenceTexts(betaPath, [{ prompt, maxTokens }]);
    // The orchestrator knows both models; the first gpu-worker serves only alpha, one job at once.
    stack = await TestStack.start({
      models: `alpha=${alphaPath}?sequences=1,beta=${betaPath}?sequences=1`,
      gpuWorkerEnv: { MODELS: `alpha=${alphaPath}?sequences=1` },
      env: { CONTEXT_SIZE: "512" },
      readyModels: 1,
      label: "scale",
    });
    [first] = stack.gpuWorkers as [ChildProcess];
  });

  after(async () => {
    await stack?.stop();
  });

  it("refuses a model no gpu-worker serves yet, at once", async () => {
    assert.notEqual(alphaText, betaText, "the two models must differ for the test to tell");
    const view = (await stack.run({ model: "beta", prompt })) as JobView;
    assert.equal(view.status, "FAILED");
    assert.match(view.error ?? "", /MODEL_UNAVAILABLE/);
    const models = (await health()).models;
    assert.deepEqual(
      models.map((model) => [model.name, model.state]),
      [
        ["alpha", "ready"],
        ["beta", "unavailable"],
      ],
    );
  });

  it("serves a model as soon as a gpu-worker that has it joins", async () => {
    second = await stack.addGpuWorker({ MODELS: `beta=${betaPath}?sequences=1` });
    const state = await health();
    assert.equal(state.workers.connected, 2);
    assert.deepEqual(
      state.models.map((model) => [model.name, model.state, model.workers]),
      [
        ["alpha", "ready", 1],
        ["beta", "ready", 1],
      ],
    );
    const [alpha, beta] = await Promise.all([
      stack.runsync({
        model: "alpha",
        prompt,
        sampling_params: { max_tokens: maxTokens, temperature: 0 },
      }),
      stack.runsync({
        model: "beta",
        prompt,
        sampling_params: { max_tokens: maxTokens, temperature: 0 },
      }),
    ]);
    assert.equal(textOf(alpha.output ?? []), alphaText);
    assert.equal(textOf(beta.output ?? []), betaText);
    assert.ok(finishedHere(first, alpha.id), "alpha ran on the first gpu-worker");
    assert.ok(finishedHere(second, beta.id), "beta ran on the second gpu-worker");
    assert.ok(!finishedHere(first, beta.id) && !finishedHere(second, alpha.id));
  });

  it("shares one model's queue between the gpu-workers that serve it", async () => {
    const third = await stack.addGpuWorker({ MODELS: `alpha=${alphaPath}?sequences=1` });
    assert.equal((await health()).models.find((model) => model.name === "alpha")?.workers, 2);
    const views = await Promise.all(
      Array.from({ length: 6 }, () =>
        stack.runsync({
          model: "alpha",
          prompt,
          sampling_params: { max_tokens: maxTokens, temperature: 0 },
        }),
      ),
    );
    for (const view of views) assert.equal(textOf(view.output ?? []), alphaText);
    const onFirst = views.filter((view) => finishedHere(first, view.id)).length;
    const onThird = views.filter((view) => finishedHere(third, view.id)).length;
    assert.equal(onFirst + onThird, 6);
    // One sequence each: six jobs at once cannot all wait for one of them.
    assert.ok(onFirst > 0 && onThird > 0, `jobs per gpu-worker: ${onFirst} and ${onThird}`);
  });

  it("stops serving a model when its only gpu-worker stops", async () => {
    const exited = new Promise((resolve) => second.once("exit", resolve));
    second.kill("SIGTERM");
    assert.equal(await exited, 0);
    const models = (await health()).models;
    assert.equal(models.find((model) => model.name === "beta")?.state, "unavailable");
    const view = (await stack.run({ model: "beta", prompt })) as JobView;
    assert.match(view.error ?? "", /MODEL_UNAVAILABLE/);
    const alpha = await stack.runsync({
      model: "alpha",
      prompt,
      sampling_params: { max_tokens: maxTokens, temperature: 0 },
    });
    assert.equal(textOf(alpha.output ?? []), alphaText);
  });
});
