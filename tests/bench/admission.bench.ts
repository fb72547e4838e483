/**
 * `npm run bench -- admission`: what admitting and refusing requests costs, as the HTTP round trip
 * of `POST /run` to the real orchestrator process: good requests (admitted, queued) and bad ones
 * refused before anything is queued (a tampered token, a token made with another key, an expired
 * token, a request that fails validation, a model nobody serves). Each admitted job (1 token) is
 * drained before the next request, so every request meets an idle stack.
 *
 *   BENCH_RUNS=20 npm run bench -- admission
 */
import { FernetKey } from "../../shared/crypto/index.js";
import { tinyModelPath } from "../support/models.js";
import { type JobView, TestStack } from "../support/stack.js";
import { benchRuns, print, row, tableHead } from "./bench-stats.js";

const runs = benchRuns();
const good = {
  prompt: "Once upon a time the dog",
  sampling_params: { max_tokens: 1, temperature: 0 },
};

const stack = await TestStack.start({
  models: `tiny=${await tinyModelPath({ chatTemplate: "chatml" })}`,
  label: "bench-admission",
});
const foreign = FernetKey.generate();

/** A fresh token of each kind per request (the replay window refuses a token seen before). */
const kinds: { name: string; expect: string; token: () => string }[] = [
  { name: "good request: admitted", expect: "IN_QUEUE", token: () => stack.encrypt(good) },
  {
    name: "tampered token: `DECRYPT_FAILED`",
    expect: "DECRYPT_FAILED",
    token: () => {
      const token = stack.encrypt(good);
      const at = 40;
      return `${token.slice(0, at)}${token[at] === "A" ? "B" : "A"}${token.slice(at + 1)}`;
    },
  },
  {
    name: "token of another key: `DECRYPT_FAILED`",
    expect: "DECRYPT_FAILED",
    token: () => foreign.encrypt(JSON.stringify(good)),
  },
  {
    name: "expired token: `TOKEN_EXPIRED`",
    expect: "TOKEN_EXPIRED",
    token: () =>
      stack.keyRing.encrypt(JSON.stringify(good), { now: Math.floor(Date.now() / 1000) - 7200 }),
  },
  {
    name: "invalid request: `INVALID_REQUEST`",
    expect: "INVALID_REQUEST",
    token: () => stack.encrypt({ ...good, sampling_params: { max_tokens: -1 } }),
  },
  {
    name: "unknown model: `UNKNOWN_MODEL`",
    expect: "UNKNOWN_MODEL",
    token: () => stack.encrypt({ ...good, model: "nobody-serves-this" }),
  },
];

function outcome(view: JobView): string {
  if (view.error === undefined) return view.status;
  return (JSON.parse(view.error) as { code?: string }).code ?? "no code";
}

try {
  const times = new Map<string, number[]>(kinds.map((kind) => [kind.name, []]));
  // One round unmeasured: connections and code paths warm.
  for (let round = -1; round < runs; round += 1) {
    for (const kind of kinds) {
      const body = JSON.stringify({ input: { encrypted_input: kind.token() } });
      const start = performance.now();
      const response = await fetch(`${stack.url}/run`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      const view = (await response.json()) as JobView;
      const ms = performance.now() - start;
      const got = outcome(view);
      if (got !== kind.expect) throw new Error(`${kind.name}: got ${got}`);
      if (round >= 0) times.get(kind.name)?.push(ms);
      if (got === "IN_QUEUE") await stack.streamAll(view.id);
    }
  }
  print([
    `Local API \`POST /run\` round trip (fetch from the same machine, body prepared beforehand), orchestrator and gpu-worker processes with the generated tiny llama, ${runs} requests of each kind, one at a time, defaults otherwise.`,
    "",
    ...tableHead,
    ...kinds.map((kind) => row(kind.name, times.get(kind.name) ?? [], "ms", 2)),
  ]);
} finally {
  await stack.stop();
}
