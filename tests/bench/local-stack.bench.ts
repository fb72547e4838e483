/**
 * `npm run bench`: latency and throughput of the whole stack (HTTP → Redis → model thread → Redis
 * → HTTP) next to node-llama-cpp alone on the same generated model, so the cost of the pool itself
 * is visible. Numbers, not assertions: run it on the machine you care about.
 *
 *   BENCH_RUNS=20 npm run bench -- local-stack
 */
import { getLlama, LlamaCompletion, LlamaLogLevel } from "node-llama-cpp";
import { isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack, textOf } from "../support/stack.js";
import { row as benchRow, benchRuns } from "./bench-stats.js";

const runs = benchRuns();
const maxTokens = 128;
const prompt = "Once upon a time the dog";

function row(name: string, values: number[], unit: string): string {
  return benchRow(name, values, unit, unit === "tok/s" ? 0 : 1);
}

async function direct(
  modelPath: string,
): Promise<{ ttft: number[]; total: number[]; tps: number[] }> {
  const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 2048, sequences: 1, threads: 1 });
  const out = { ttft: [] as number[], total: [] as number[], tps: [] as number[] };
  for (let i = 0; i < runs; i += 1) {
    const sequence = context.getSequence();
    const completion = new LlamaCompletion({ contextSequence: sequence });
    const start = performance.now();
    let first = 0;
    await completion.generateCompletion(prompt, {
      maxTokens,
      temperature: 0,
      repeatPenalty: false,
      onTextChunk: () => {
        first ||= performance.now();
      },
    });
    const end = performance.now();
    out.ttft.push(first - start);
    out.total.push(end - start);
    out.tps.push((maxTokens * 1000) / (end - start));
    completion.dispose({ disposeSequence: false });
    await sequence.dispose();
  }
  await llama.dispose();
  return out;
}

async function throughStack(stack: TestStack, concurrent: number) {
  const out = {
    ttft: [] as number[],
    total: [] as number[],
    tps: [] as number[],
    chunks: [] as number[],
  };
  for (let i = 0; i < runs; i += 1) {
    const start = performance.now();
    const results = await Promise.all(
      Array.from({ length: concurrent }, async () => {
        const job = await stack.run({
          prompt,
          sampling_params: { max_tokens: maxTokens, temperature: 0 },
        });
        let first = 0;
        const { chunks } = await stack.streamAll(job.id, (chunk: StreamChunk) => {
          if (!isFinalChunk(chunk)) first ||= performance.now();
        });
        return { first, end: performance.now(), chunks };
      }),
    );
    const end = Math.max(...results.map((r) => r.end));
    for (const r of results) {
      out.ttft.push(r.first - start);
      out.total.push(r.end - start);
      out.chunks.push(r.chunks.length);
      if (textOf(r.chunks).length === 0) throw new Error("a job produced no text");
    }
    out.tps.push((concurrent * maxTokens * 1000) / (end - start));
  }
  return out;
}

const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
const alone = await direct(modelPath);
const stack = await TestStack.start({
  models: `tiny=${modelPath}`,
  env: { MODEL_SEQUENCES: "8" },
  label: "bench",
});
try {
  const single = await throughStack(stack, 1);
  const eight = await throughStack(stack, 8);
  const lines = [
    `Model: generated tiny llama (tests/support/models.ts, chatml), ${maxTokens} tokens, greedy, ${runs} runs, LLAMA_THREADS=1.`,
    "",
    "| measure | p50 | p90 | unit |",
    "|---|---|---|---|",
    row("node-llama-cpp alone: time to first text", alone.ttft, "ms"),
    row("node-llama-cpp alone: whole generation", alone.total, "ms"),
    row("node-llama-cpp alone: speed", alone.tps, "tok/s"),
    row("stack, 1 request: time to first chunk (from /run)", single.ttft, "ms"),
    row("stack, 1 request: whole job (from /run to last /stream)", single.total, "ms"),
    row("stack, 1 request: speed", single.tps, "tok/s"),
    row("stack, 1 request: chunks per job", single.chunks, "chunks"),
    row("stack, 8 concurrent: time to first chunk", eight.ttft, "ms"),
    row("stack, 8 concurrent: aggregate speed", eight.tps, "tok/s"),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  await stack.stop();
}
