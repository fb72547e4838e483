/**
 * `npm run bench`: latency and throughput of the whole stack (HTTP → Redis → model thread → Redis
 * → HTTP) next to node-llama-cpp alone on the same generated model, so the cost of the pool itself
 * is visible. Numbers, not assertions: run it on the machine you care about.
 *
 *   BENCH_RUNS=20 npm run bench -- local-stack
 */
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { row as benchRow, benchRuns } from "./bench-stats.js";
import { measureDirect, measureStack } from "./generation-measures.js";

const runs = benchRuns();
const maxTokens = 128;
const prompt = "Once upon a time the dog";

function row(name: string, values: number[], unit: string): string {
  return benchRow(name, values, unit, unit === "tok/s" ? 0 : 1);
}

const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
const shape = { prompt, maxTokens, runs };
const alone = await measureDirect({
  ...shape,
  concurrent: 1,
  modelPath,
  gpu: false,
  llamaThreads: 1,
  contextSize: 2048,
});
const stack = await TestStack.start({
  models: `tiny=${modelPath}`,
  env: { MODEL_SEQUENCES: "8" },
  label: "bench",
});
try {
  const single = await measureStack(stack, { ...shape, concurrent: 1 });
  const eight = await measureStack(stack, { ...shape, concurrent: 8 });
  const lines = [
    `Model: generated tiny llama (tests/support/models.ts, chatml), ${maxTokens} tokens, greedy, ${runs} runs, LLAMA_THREADS=1.`,
    "",
    "| measure | p50 | p90 | unit |",
    "|---|---|---|---|",
    row("node-llama-cpp alone: time to first text", alone.ttftMs, "ms"),
    row("node-llama-cpp alone: whole generation", alone.totalMs, "ms"),
    row("node-llama-cpp alone: speed", alone.tokensPerSecond, "tok/s"),
    row("stack, 1 request: time to first chunk (from /run)", single.ttftMs, "ms"),
    row("stack, 1 request: whole job (from /run to last /stream)", single.totalMs, "ms"),
    row("stack, 1 request: speed", single.tokensPerSecond, "tok/s"),
    row("stack, 1 request: chunks per job", single.chunks, "chunks"),
    row("stack, 8 concurrent: time to first chunk", eight.ttftMs, "ms"),
    row("stack, 8 concurrent: aggregate speed", eight.tokensPerSecond, "tok/s"),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  await stack.stop();
}
