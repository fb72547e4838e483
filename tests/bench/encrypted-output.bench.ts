/**
 * `npm run bench -- encrypted-output`: what `"encrypt_output": true` costs on the local API path.
 * The same 128-token greedy request, plain and with encrypted output, alternating on one stack;
 * time from `/run` to the first chunk on `/stream` and to the last (the benchmark opens the
 * encrypted chunks with the key, as a caller does, inside the measured time).
 *
 *   BENCH_RUNS=20 npm run bench -- encrypted-output
 */
import { isEncryptedChunk, isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack, textOf } from "../support/stack.js";
import { benchRuns, print, row, tableHead } from "./bench-stats.js";

const runs = benchRuns();
const maxTokens = 128;
const prompt = "Once upon a time the dog";

const stack = await TestStack.start({
  models: `tiny=${await tinyModelPath({ chatTemplate: "chatml" })}`,
  label: "bench-enc",
});

async function once(encrypt: boolean): Promise<{ first: number; total: number; text: string }> {
  const start = performance.now();
  const job = await stack.run({
    prompt,
    sampling_params: { max_tokens: maxTokens, temperature: 0 },
    ...(encrypt ? { encrypt_output: true } : {}),
  });
  let first = 0;
  const { chunks, raw, status } = await stack.streamAll(job.id, (chunk: StreamChunk) => {
    if (!isFinalChunk(chunk)) first ||= performance.now();
  });
  const end = performance.now();
  if (status !== "COMPLETED") throw new Error(`a job ended ${status}`);
  const sealed = raw.filter(isEncryptedChunk).length;
  if (sealed !== (encrypt ? raw.length : 0)) throw new Error("the output was not as asked");
  return { first: first - start, total: end - start, text: textOf(chunks) };
}

try {
  const plain = { first: [] as number[], total: [] as number[] };
  const sealed = { first: [] as number[], total: [] as number[] };
  // One of each first, unmeasured: both paths warm.
  await once(false);
  await once(true);
  for (let i = 0; i < runs; i += 1) {
    const a = await once(false);
    const b = await once(true);
    if (a.text !== b.text) throw new Error("encrypted output opened to other text");
    plain.first.push(a.first);
    plain.total.push(a.total);
    sealed.first.push(b.first);
    sealed.total.push(b.total);
  }
  print([
    `Local API, generated tiny llama (chatml), ${maxTokens} tokens, greedy, one request at a time, plain and encrypted alternating, ${runs} runs each, LLAMA_THREADS=1, defaults otherwise (DELTA_WINDOW_MS=20).`,
    "",
    ...tableHead,
    row("plain: `/run` to first chunk", plain.first, "ms"),
    row('`"encrypt_output": true`: `/run` to first chunk (opened)', sealed.first, "ms"),
    row("plain: `/run` to last chunk", plain.total, "ms"),
    row('`"encrypt_output": true`: `/run` to last chunk (opened)', sealed.total, "ms"),
  ]);
} finally {
  await stack.stop();
}
