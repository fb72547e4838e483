/**
 * `npm run bench -- admission`: what admitting and refusing requests costs, as the HTTP round trip
 * of `POST /run` to the real orchestrator process: good requests (admitted, queued) and bad ones
 * refused before anything is queued (a tampered token, a token made with another key, an expired
 * token, a request that fails validation, a model nobody serves). Each admitted job (1 token) is
 * drained before the next request, so every request meets an idle stack.
 *
 * Then a key per client: a second stack with 1,000 clients in its `CLIENT_KEYS_FILE`, measured in
 * turns with the first (one key), and `admitRequest` itself in this process with both policies
 * (the lookup of a client's ring is one map read, so the goal is within 5 %).
 *
 *   BENCH_RUNS=20 npm run bench -- admission
 */
import { type AdmissionPolicy, admitRequest } from "../../orchestrator/admission/admit-request.js";
import { FernetKey, KeyRing, parseClientKeys } from "../../shared/crypto/index.js";
import { type TestClient, testClient, writeKeysFile } from "../support/client-keys.js";
import { tinyModelPath } from "../support/models.js";
import { type JobView, TestStack } from "../support/stack.js";
import { benchRuns, percentile, print, row, tableHead } from "./bench-stats.js";

const runs = benchRuns();
const good = {
  prompt: "Once upon a time the dog",
  sampling_params: { max_tokens: 1, temperature: 0 },
};

const models = `tiny=${await tinyModelPath({ chatTemplate: "chatml" })}`;
const stack = await TestStack.start({ models, label: "bench-admission" });
const clientCount = 1000;
const clients: TestClient[] = Array.from({ length: clientCount }, (_, index) =>
  testClient(`client-${String(index).padStart(4, "0")}`),
);
const keysFile = await writeKeysFile(clients);
const manyStack = await TestStack.start({
  models,
  env: { CLIENT_KEYS_FILE: keysFile.file },
  label: "bench-admission-clients",
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
    "",
  ]);
  await benchClients();
} finally {
  await stack.stop();
  await manyStack.stop();
  await keysFile.remove();
}

/** One key vs 1,000 clients: over HTTP in turns, then `admitRequest` alone. */
async function benchClients(): Promise<void> {
  const middle = clients[clientCount / 2] as TestClient;
  const last = clients[clientCount - 1] as TestClient;
  const post = async (target: TestStack, input: object, expect: string) => {
    const body = JSON.stringify({ input });
    const start = performance.now();
    const response = await fetch(`${target.url}/run`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const view = (await response.json()) as JobView;
    const ms = performance.now() - start;
    if (outcome(view) !== expect) throw new Error(`got ${outcome(view)}, expected ${expect}`);
    if (expect === "IN_QUEUE") await target.streamAll(view.id, undefined, middle.headers);
    return ms;
  };
  const measures: { name: string; run: () => Promise<number> }[] = [
    {
      name: "one key (`ENCRYPTION_KEY`): good request admitted",
      run: () => post(stack, { encrypted_input: stack.encrypt(good) }, "IN_QUEUE"),
    },
    {
      name: `${clientCount} clients: good request of client ${clientCount / 2 + 1} admitted`,
      run: () => post(manyStack, middle.input(good), "IN_QUEUE"),
    },
    {
      name: `${clientCount} clients: good request of the anonymous client admitted`,
      run: () => post(manyStack, { encrypted_input: manyStack.encrypt(good) }, "IN_QUEUE"),
    },
    {
      name: `${clientCount} clients: unknown client, \`DECRYPT_FAILED\``,
      run: () => post(manyStack, { ...last.input(good), client: "nobody" }, "DECRYPT_FAILED"),
    },
    {
      name: `${clientCount} clients: a client's name with another's token, \`DECRYPT_FAILED\``,
      run: () =>
        post(
          manyStack,
          { client: last.name, encrypted_input: middle.ring.encrypt(JSON.stringify(good)) },
          "DECRYPT_FAILED",
        ),
    },
  ];
  const times = new Map<string, number[]>(measures.map((measure) => [measure.name, []]));
  // Five rounds unmeasured: the second stack has served nothing yet.
  for (let round = -5; round < runs; round += 1) {
    for (const measure of measures) {
      const ms = await measure.run();
      if (round >= 0) times.get(measure.name)?.push(ms);
    }
  }

  // admitRequest alone (decrypt, parse, validate): the same request under each policy, in turns.
  const pool = new KeyRing([FernetKey.generate()]);
  const keysText = clients.map((client) => `${client.name}=${client.key}`).join("\n");
  const parseStart = performance.now();
  const clientKeys = parseClientKeys(keysText, "bench", pool);
  const parseMs = performance.now() - parseStart;
  const policy = (withClients: boolean): AdmissionPolicy => ({
    keyRing: pool,
    ...(withClients ? { clients: clientKeys } : {}),
    models: ["tiny"],
    limits: { maxTokensLimit: 4096 },
    defaultMaxTokens: 16,
    maxRequestBytes: 1 << 20,
    ttlSeconds: 3600,
    encryptOutput: "request",
  });
  const batch = 2000;
  const inputsOne = Array.from({ length: batch }, () => ({
    encrypted_input: pool.encrypt(JSON.stringify(good)),
  }));
  const inputsMany = Array.from({ length: batch }, () => middle.input(good));
  const oneKey = policy(false);
  const manyKeys = policy(true);
  const perRequestUs = (inputs: object[], admission: AdmissionPolicy) => {
    const start = performance.now();
    for (const input of inputs) admitRequest(input, admission);
    return ((performance.now() - start) * 1000) / inputs.length;
  };
  const oneUs: number[] = [];
  const manyUs: number[] = [];
  for (let round = -2; round < Math.max(runs, 10); round += 1) {
    const one = perRequestUs(inputsOne, oneKey);
    const many = perRequestUs(inputsMany, manyKeys);
    if (round >= 0) {
      oneUs.push(one);
      manyUs.push(many);
    }
  }
  const ratio = (base: readonly number[], other: readonly number[]) =>
    `${((percentile(other, 50) / percentile(base, 50) - 1) * 100).toFixed(1)} %`;
  const httpOne = times.get(measures[0]?.name ?? "") ?? [];
  const httpMany = times.get(measures[1]?.name ?? "") ?? [];
  const httpManyAnonymous = times.get(measures[2]?.name ?? "") ?? [];
  print([
    `A key per client: a second stack with ${clientCount} clients in \`CLIENT_KEYS_FILE\`, measured in turns with the one-key stack above (the same \`POST /run\` round trip, ${runs} requests of each kind); then \`admitRequest\` alone in this process (decrypt, parse, validate; ${batch} requests a batch, ${oneUs.length} batches of each policy in turns).`,
    "",
    ...tableHead,
    ...measures.map((measure) => row(measure.name, times.get(measure.name) ?? [], "ms", 2)),
    row("`admitRequest`, one key", oneUs, "µs", 1),
    row(
      `\`admitRequest\`, ${clientCount} clients (client ${clientCount / 2 + 1})`,
      manyUs,
      "µs",
      1,
    ),
    "",
    `${clientCount} clients vs one key, p50: HTTP round trip ${ratio(httpOne, httpMany)} (the anonymous client on the same stack: ${ratio(httpOne, httpManyAnonymous)}), \`admitRequest\` ${ratio(oneUs, manyUs)} (goal: within 5 %). Reading the ${clientCount}-line file: ${parseMs.toFixed(0)} ms, at start and at each reload.`,
  ]);
}
