/**
 * The RunPod worker's control paths against a fake platform, with the real orchestrator and
 * gpu-worker processes: heartbeats during a long job, a stop signal mid-generation, and a platform
 * answering errors (429, 500) before it recovers.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { StreamChunk } from "../../shared/protocol/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack, textOf } from "../support/stack.js";
import { waitForLine } from "../support/wait-for.js";

const apiKey = "rp-control-key";
const pingIntervalMs = 200;

describe("RunPod worker: heartbeat, stop, errors", () => {
  let platform: FakeRunpodPlatform;
  let stack: TestStack;

  const job = (id: string, maxTokens: number) => ({
    id,
    input: {
      encrypted_input: stack.encrypt({
        prompt: "the dog",
        sampling_params: { max_tokens: maxTokens, temperature: 0 },
      }),
    },
  });

  before(async () => {
    platform = await FakeRunpodPlatform.start({ apiKey, holdMs: 300 });
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      runpod: { ...platform.env(), RUNPOD_PING_INTERVAL: String(pingIntervalMs) },
      // One sequence: a stopped job must free it for the next one to run at all.
      env: { MODEL_SEQUENCES: "1", CONTEXT_SIZE: "4096" },
      label: "rp-control",
    });
  });

  after(async () => {
    await stack?.stop();
    await platform?.close();
  });

  it("holds one job at a time by default (1 thread × 1 sequence) and pings with its id while it runs", async () => {
    platform.enqueue(job("long-1", 1500));
    const post = await stack.explain(platform.waitForOutput("long-1"));
    const output = post.body.output as StreamChunk[];
    const final = output.at(-1);
    assert.ok(final && "done" in final && final.finish_reason === "length");
    const take = platform.takes.find((t) => t.jobIds.includes("long-1"));
    assert.ok(take);
    const during = platform.pings.filter(
      (ping) => ping.at > take.answeredAt + 50 && ping.at < post.at,
    );
    assert.ok(
      during.length >= 3,
      `pings kept coming while the job ran (${during.length} in ${Math.round(post.at - take.answeredAt)} ms)`,
    );
    for (const ping of during) assert.deepEqual(ping.jobIds, ["long-1"]);
    for (const [index, ping] of during.entries()) {
      const previous = index === 0 ? undefined : during[index - 1];
      if (previous !== undefined) {
        assert.ok(ping.at - previous.at < pingIntervalMs * 5, "no ping was held back");
      }
    }
    assert.match(platform.pings[0]?.version ?? "", /^secure-llm-pool\/\d/);
    assert.ok(
      platform.pings.some((ping) => ping.jobIds.length === 0),
      "idle pings name no job",
    );
    for (const t of platform.takes) assert.equal(t.batch, false, "one slot: never a batch take");
  });

  it("stops a job mid-generation at once, posts nothing for it, and runs the next", async () => {
    platform.enqueue(job("to-stop", 3000));
    await platform.until(
      () => platform.streamed("to-stop").length >= 3,
      30_000,
      "the job to stream",
    );
    platform.stop("to-stop");
    const line = await waitForLine(
      stack.logs,
      (l) => l.includes("generation stopped") && l.includes("to-stop"),
      30_000,
      "the generation to stop",
    );
    const stoppedInMs = Number(/stoppedInMs=([\d.]+)/.exec(line)?.[1]);
    assert.ok(stoppedInMs <= 100, `generation stopped ${stoppedInMs} ms after the stop signal`);
    assert.ok(stack.logs.some((l) => l.includes("cancelling job") && l.includes("to-stop")));
    // The gpu-worker's own account: when its generation ended, on the wall clock.
    const finished = await waitForLine(
      stack.logs,
      (l) => l.includes("job finished") && l.includes("jobId=to-stop"),
      30_000,
      "the stopped job to finish",
    );
    assert.match(finished, /finishReason=cancelled/);
    const completion = Number(/completionTokens=(\d+)/.exec(finished)?.[1]);
    assert.ok(completion > 0 && completion < 3000, "it stopped part way");
    const endedAt = Date.parse(finished.slice(0, 24));
    const sentAt = platform.stopsDeliveredAtDate.get("to-stop") ?? Number.NaN;
    assert.ok(
      endedAt - sentAt <= 101,
      `generation ended ${endedAt - sentAt} ms after the platform sent the stop`,
    );

    platform.enqueue(job("after-stop", 20));
    const next = await stack.explain(platform.waitForOutput("after-stop", 30_000));
    assert.equal(textOf(next.body.output as StreamChunk[]).length > 0, true);
    const deliveredAt = platform.stopsDelivered.get("to-stop");
    assert.ok(deliveredAt !== undefined);
    assert.equal(
      platform.outputPosts.filter((p) => p.jobId === "to-stop").length,
      0,
      "no result is posted for a stopped job",
    );
    const late = platform.streamPosts.filter(
      (p) => p.jobId === "to-stop" && p.at > deliveredAt + 500,
    );
    assert.deepEqual(late, [], "no stream post after the stop");
  });

  it("backs off on 429 and 5xx and recovers with nothing lost", async () => {
    await platform.until(() => platform.takes.at(-1)?.status === 0, 10_000, "a take in flight");
    platform.scriptTakes(429, 500);
    await platform.until(
      () => platform.takes.some((t) => t.status === 500),
      30_000,
      "the scripted answers",
    );
    platform.scriptOutputs(500);
    platform.enqueue(job("after-errors", 30));
    const post = await stack.explain(platform.waitForOutput("after-errors", 30_000));
    const output = post.body.output as StreamChunk[];
    assert.equal(textOf(output).length > 0, true);
    assert.deepEqual(platform.streamed("after-errors"), output, "every chunk streamed, in order");

    const i429 = platform.takes.findIndex((t) => t.status === 429);
    const after429 = platform.takes[i429 + 1];
    const t429 = platform.takes[i429];
    assert.ok(t429 && after429 && after429.status === 500);
    assert.ok(after429.at - t429.at >= 4900, `waited ${after429.at - t429.at} ms after a 429`);
    const after500 = platform.takes[i429 + 2];
    assert.ok(after500, "took again after the 500");
    assert.ok(
      after500.at - after429.at >= 900,
      `backed off ${after500.at - after429.at} ms after a 500`,
    );

    const attempts = platform.outputPosts.filter((p) => p.jobId === "after-errors");
    assert.deepEqual(
      attempts.map((p) => p.status),
      [500, 200],
      "the result post was retried after the 500",
    );
    const [first, second] = attempts;
    assert.ok(first && second && second.at - first.at >= 1900, "2 s between the attempts");
    assert.deepEqual(second.body, first.body, "the same result was posted again");
  });
});
