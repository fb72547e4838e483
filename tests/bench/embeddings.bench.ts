/**
 * `npm run bench -- embeddings`: embeddings per second through the whole stack (the official
 * `openai` client → the encrypting proxy → HTTP → Redis → model thread → Redis → HTTP → proxy)
 * next to node-llama-cpp's `LlamaEmbeddingContext` alone on the same texts and the same GGUF, one
 * request (one job) per batch; then 64 requests of one text each, 8 in flight at once, as a server
 * meets them. Numbers, not assertions: run it on the machine you care about.
 *
 *   BENCH_RUNS=10 npm run bench -- embeddings
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import OpenAI from "openai";
import { OpenAiProxy, PoolClient } from "../../client/index.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { benchRuns, percentile, print, row, tableHead } from "./bench-stats.js";

const runs = benchRuns();
const contextSize = 1024;
const batchSizes = [1, 16, 256];
const words = ["river", "fox", "star", "garden", "engine", "cloud", "market", "violin", "harbor"];
/** Texts of 8 to 40 words, each different. */
const texts = Array.from({ length: Math.max(...batchSizes) }, (_, index) =>
  Array.from(
    { length: 8 + (index % 33) },
    (_, word) => words[(index * 7 + word * 3) % words.length],
  ).join(" "),
);

const modelPath = await tinyModelPath({ chatTemplate: "chatml" });

/** node-llama-cpp alone, in this process: the texts embedded in turn, as the model thread does. */
async function startAlone() {
  const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createEmbeddingContext({
    contextSize,
    batchSize: contextSize,
    threads: 1,
  });
  await context.getEmbeddingFor("warm up");
  return {
    /** Embeddings per second for one batch. */
    async rate(batch: readonly string[]): Promise<number> {
      const started = performance.now();
      for (const text of batch) await context.getEmbeddingFor(model.tokenize(text, false));
      return (batch.length * 1000) / (performance.now() - started);
    },
    dispose: () => llama.dispose(),
  };
}

/**
 * The stack through the proxy: one `/v1/embeddings` request (one job) per batch. Also the rate of
 * the job's run on the gpu-worker alone (its `runMs`, from taking the job to its last reply), which
 * splits the stack's cost into the model thread's and the way there and back.
 */
async function stackRate(openai: OpenAI, batch: string[]): Promise<{ whole: number; run: number }> {
  const finishedBefore = finishedRunMs().length;
  const started = performance.now();
  const answer = await openai.embeddings.create({
    model: "emb",
    input: batch,
    encoding_format: "float",
  });
  if (answer.data.length !== batch.length) throw new Error("a vector is missing");
  const whole = (batch.length * 1000) / (performance.now() - started);
  const runMs = finishedRunMs()[finishedBefore];
  return { whole, run: runMs === undefined ? Number.NaN : (batch.length * 1000) / runMs };
}

/** Embeddings per second for one-text requests sent `inFlight` at a time, until `inputs` are done. */
async function concurrentRate(openai: OpenAI, inputs: readonly string[], inFlight: number) {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < inputs.length) {
        const text = inputs[next] as string;
        next += 1;
        const answer = await openai.embeddings.create({ model: "emb", input: text });
        if (answer.data.length !== 1) throw new Error("a vector is missing");
      }
    }),
  );
  return (inputs.length * 1000) / (performance.now() - started);
}

/** The `runMs` of each job the gpu-worker logged as finished, in order. */
function finishedRunMs(): number[] {
  return stack.logs
    .filter((line) => line.includes("job finished"))
    .map((line) => Number(/ runMs=(\d+)/.exec(line)?.[1] ?? Number.NaN));
}

const stack = await TestStack.start({
  models: `emb=${modelPath}?embeddings=true`,
  // Four jobs at once on the thread: concurrent requests take turns on its embedding context.
  env: { MODEL_SEQUENCES: "4", CONTEXT_SIZE: String(contextSize), DELTA_WINDOW_MS: "0" },
  label: "bench-embeddings",
});
const alone = await startAlone();
const proxy = await OpenAiProxy.start(
  {
    client: new PoolClient({ baseUrl: stack.url, keyRing: stack.keyRing, streamWaitMs: 2000 }),
    keyRing: stack.keyRing,
  },
  "127.0.0.1",
  0,
);
try {
  const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
  const lines = [
    `Model: generated tiny llama (tests/support/models.ts, chatml), ${contextSize}-token embedding context, texts of 8 to 40 words, ${runs} runs per batch size, LLAMA_THREADS=1, one job per batch.`,
    "",
    ...tableHead,
  ];
  const ratios: string[] = [];
  await stackRate(openai, ["warm up"]);
  for (const batch of batchSizes) {
    const inputs = texts.slice(0, batch);
    const named = `${batch} text${batch === 1 ? "" : "s"}`;
    const direct: number[] = [];
    const through: number[] = [];
    const threadRuns: number[] = [];
    const pairs: number[] = [];
    // Alternated run by run, so that a busy spell of the machine weighs on both alike.
    for (let run = 0; run < runs; run += 1) {
      const alonePerSecond = await alone.rate(inputs);
      const stackPerSecond = await stackRate(openai, inputs);
      direct.push(alonePerSecond);
      through.push(stackPerSecond.whole);
      threadRuns.push(stackPerSecond.run);
      pairs.push(stackPerSecond.whole / alonePerSecond);
    }
    lines.push(
      row(`node-llama-cpp alone, ${named}`, direct, "embeddings/s", 0),
      row(`stack through the proxy, ${named} per request`, through, "embeddings/s", 0),
      row(`  of which the gpu-worker's run of the job (runMs)`, threadRuns, "embeddings/s", 0),
    );
    ratios.push(`${named}: ${percentile(pairs, 50).toFixed(2)}×`);
  }
  {
    const inputs = texts.slice(0, 64);
    const direct: number[] = [];
    const through: number[] = [];
    const pairs: number[] = [];
    for (let run = 0; run < runs; run += 1) {
      const alonePerSecond = await alone.rate(inputs);
      const stackPerSecond = await concurrentRate(openai, inputs, 8);
      direct.push(alonePerSecond);
      through.push(stackPerSecond);
      pairs.push(stackPerSecond / alonePerSecond);
    }
    lines.push(
      row("node-llama-cpp alone, 64 texts one by one", direct, "embeddings/s", 0),
      row(
        "stack through the proxy, 64 requests of 1 text, 8 in flight",
        through,
        "embeddings/s",
        0,
      ),
    );
    ratios.push(`1 text per request, 8 in flight: ${percentile(pairs, 50).toFixed(2)}×`);
  }
  lines.push(
    "",
    `Stack ÷ node-llama-cpp alone, run by run (p50 of the ratios): ${ratios.join(", ")}.`,
  );
  print(lines);
} finally {
  await proxy.close();
  await alone.dispose();
  await stack.stop();
}
