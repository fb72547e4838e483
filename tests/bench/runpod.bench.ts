/**
 * `npm run bench -- runpod`: the RunPod worker mode (the real orchestrator job loop and gpu-worker
 * processes) against the fake platform (tests/fakes/runpod-platform.ts). Sequential 128-token
 * greedy jobs: from the platform answering the take to the first stream post it receives and to
 * the final output post, and the stream posts per job. Then stops: the platform sends a stop in
 * the middle of a long generation; how long until the gpu-worker logs the job's cancelled end.
 *
 *   BENCH_RUNS=20 npm run bench -- runpod
 */
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { benchRuns, print, row, tableHead } from "./bench-stats.js";

const runs = benchRuns();
const maxTokens = 128;
const longTokens = 3000;
const prompt = "Once upon a time the dog";

const platform = await FakeRunpodPlatform.start({ apiKey: "bench-runpod-key", holdMs: 300 });
const stack = await TestStack.start({
  models: `tiny=${await tinyModelPath({ chatTemplate: "chatml" })}`,
  runpod: platform.env(),
  // Room for the long jobs that get stopped; everything else at its default.
  env: { CONTEXT_SIZE: "4096" },
  label: "bench-runpod",
});

const job = (id: string, tokens: number) => ({
  id,
  input: {
    encrypted_input: stack.encrypt({
      prompt,
      sampling_params: { max_tokens: tokens, temperature: 0 },
    }),
  },
});

async function waitForLog(test: (line: string) => boolean): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const line = stack.logs.find(test);
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`log line not found:\n${stack.logs.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

try {
  const toFirst: number[] = [];
  const toOutput: number[] = [];
  const posts: number[] = [];
  const chunks: number[] = [];
  // One job first, unmeasured: the model thread, connections and code paths warm.
  platform.enqueue(job("bench-warm", maxTokens));
  await stack.explain(platform.waitForOutput("bench-warm"));
  for (let i = 0; i < runs; i += 1) {
    const id = `bench-${i}`;
    platform.enqueue(job(id, maxTokens));
    const output = await stack.explain(platform.waitForOutput(id));
    const take = platform.takes.find((t) => t.jobIds.includes(id));
    const streamPosts = platform.streamPosts.filter((p) => p.jobId === id);
    const first = streamPosts[0];
    if (take === undefined || first === undefined) throw new Error(`${id}: no take or no stream`);
    if (output.body.error !== undefined) throw new Error(`${id} failed`);
    toFirst.push(first.at - take.answeredAt);
    toOutput.push(output.at - take.answeredAt);
    posts.push(streamPosts.length);
    chunks.push(platform.streamed(id).length);
  }

  const stopToEnd: number[] = [];
  const stopInWorker: number[] = [];
  const tokensBeforeStop: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const id = `bench-stop-${i}`;
    platform.enqueue(job(id, longTokens));
    await stack.explain(
      platform.until(() => platform.streamed(id).length >= 3, 60_000, `${id} to stream`),
    );
    platform.stop(id);
    // The gpu-worker's own account of when the generation ended, on the wall clock.
    const finished = await waitForLog(
      (l) => l.includes("job finished") && l.includes(`jobId=${id} `),
    );
    if (!/finishReason=cancelled/.test(finished)) throw new Error(`${id} was not cancelled`);
    const sentAt = platform.stopsDeliveredAtDate.get(id);
    if (sentAt === undefined) throw new Error(`${id}: the stop was not delivered`);
    stopToEnd.push(Date.parse(finished.slice(0, 24)) - sentAt);
    tokensBeforeStop.push(Number(/completionTokens=(\d+)/.exec(finished)?.[1]));
    const stopped = await waitForLog(
      (l) => l.includes("generation stopped") && l.includes(`jobId=${id} `),
    );
    stopInWorker.push(Number(/stoppedInMs=([\d.]+)/.exec(stopped)?.[1]));
  }

  print([
    `RunPod worker mode against the fake platform: generated tiny llama (chatml), ${maxTokens}-token greedy jobs one after another (after one unmeasured), ${runs} runs, LLAMA_THREADS=1, defaults otherwise (1 job at a time, STREAM_POST_WINDOW_MS=50, DELTA_WINDOW_MS=20). Stops: ${runs} jobs of up to ${longTokens} tokens, stopped after 3 streamed chunks.`,
    "",
    ...tableHead,
    row("take answered → first stream post received", toFirst, "ms"),
    row("take answered → output post received", toOutput, "ms"),
    row("stream posts per job", posts, "posts", 0),
    row("chunks per job (over all stream posts)", chunks, "chunks", 0),
    row(
      "stop answered → gpu-worker logs the cancelled end (log clock, 1 ms steps)",
      stopToEnd,
      "ms",
      0,
    ),
    row("job loop: stop received → cancelled end seen (`stoppedInMs`)", stopInWorker, "ms"),
    row("tokens generated before the stop", tokensBeforeStop, "tokens", 0),
  ]);
} finally {
  await stack.stop();
  await platform.close();
}
