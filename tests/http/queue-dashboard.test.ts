/**
 * The admin queue dashboard: real bull-board on a real HTTP server over real Redis queues.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { RegistryPublisher } from "../../gpu-worker/registry/registry-publisher.js";
import {
  createQueueDashboard,
  type QueueDashboard,
} from "../../orchestrator/dashboard/queue-dashboard.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { closeRedis, createRedis, freePort, startRedisServer } from "../../shared/redis/index.js";
import { deleteKeysWithPrefix, queueKey, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { holdsFor, waitFor } from "../support/wait-for.js";

const apiKey = "dashboard-key-456";
const sealedData = "gAAAAAB-sealed-looking-token";

describe("queue dashboard", () => {
  let redisUrl: string;
  let prefix: string;
  let redis: Redis;
  let names: RedisNames;
  let queue: Queue;
  let dashboard: QueueDashboard;
  let base: string;
  let jobId: string;

  const basic = (password: string) =>
    `Basic ${Buffer.from(`admin:${password}`).toString("base64")}`;
  const get = (route: string, authorization?: string) =>
    fetch(`${base}${route}`, { headers: authorization ? { authorization } : {} });

  before(async () => {
    redisUrl = await testRedisUrl();
    prefix = uniquePrefix("dash");
    names = new RedisNames(prefix);
    redis = createRedis(redisUrl, "test-dashboard", createLogger("test", { level: "error" }));
    queue = new Queue(names.modelQueue("tiny"), { connection: redis, prefix: names.bullPrefix });
    const job = await queue.add("generate", { v: 1, task: sealedData });
    jobId = job.id ?? "";
    dashboard = createQueueDashboard({
      models: ["tiny", "other"],
      connection: redis,
      names,
      apiKey,
      log: createLogger("dashboard", { level: "error" }),
    });
    base = await dashboard.app.listen({ host: "127.0.0.1", port: 0 });
  });

  after(async () => {
    await dashboard.close();
    await dashboard.close();
    await queue.close();
    await deleteKeysWithPrefix(redisUrl, prefix);
    await closeRedis(redis);
  });

  it("asks for the API key, as HTTP Basic for browsers", async () => {
    for (const authorization of [undefined, basic("wrong"), "Bearer wrong", "Basic !!!"]) {
      const response = await get("/api/queues", authorization);
      assert.equal(response.status, 401, String(authorization));
      assert.match(response.headers.get("www-authenticate") ?? "", /^Basic realm=/);
      assert.doesNotMatch(await response.text(), new RegExp(apiKey));
    }
    assert.equal((await get("/health")).status, 200);
  });

  it("lists every model queue read-only, with its jobs (sealed data only)", async () => {
    for (const authorization of [basic(apiKey), `Bearer ${apiKey}`]) {
      const response = await get(
        "/api/queues?activeQueue=%7Bmodel-tiny%7D&status=waiting",
        authorization,
      );
      assert.equal(response.status, 200);
      const body = (await response.json()) as {
        queues: {
          name: string;
          readOnlyMode: boolean;
          counts: Record<string, number>;
          jobs: { id: string; data: unknown }[];
        }[];
      };
      const byName = new Map(body.queues.map((entry) => [entry.name, entry]));
      assert.deepEqual([...byName.keys()].sort(), ["{model-other}", "{model-tiny}"]);
      const tiny = byName.get("{model-tiny}");
      assert.ok(tiny !== undefined);
      assert.equal(tiny.readOnlyMode, true);
      assert.equal(tiny.counts.waiting, 1);
      assert.deepEqual(
        tiny.jobs.map((job) => [job.id, job.data]),
        [[jobId, { v: 1, task: sealedData }]],
      );
    }
    const page = await get("/", basic(apiKey));
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
  });

  it("serves a page with each model's overview, nothing from other hosts, and a CSP saying so", async () => {
    const page = await get("/", basic(apiKey));
    assert.equal(page.status, 200);
    const csp = page.headers.get("content-security-policy") ?? "";
    for (const directive of ["default-src 'self'", "script-src 'self'", "font-src 'self'"]) {
      assert.ok(csp.includes(directive), `${directive} in ${csp}`);
    }
    const html = await page.text();
    assert.doesNotMatch(html, /fonts\.googleapis|fonts\.gstatic/);
    assert.deepEqual(
      [...html.matchAll(/(?:href|src)="(https?:)?\/\/[^"]*"/g)].map((match) => match[0]),
      [],
      "no absolute URL is loaded",
    );
    // No gpu-worker in this test: both models unavailable; tiny has its one waiting job.
    const row = (model: string) =>
      [
        ...(new RegExp(`<tr data-model="${model}">(.*?)</tr>`).exec(html)?.[1] ?? "").matchAll(
          /<td[^>]*>([^<]*)<\/td>/g,
        ),
      ].map((match) => match[1]);
    assert.deepEqual(row("tiny"), ["tiny", "unavailable", "0", "1", "0", "0", "0", "0", "0.0"]);
    assert.deepEqual(row("other"), ["other", "unavailable", "0", "0", "0", "0", "0", "0", "0.0"]);
    assert.match(html, /<div id="root">/, "bull-board's app still mounts");
  });

  it("refuses to change a queue", async () => {
    const attempts: [string, string, unknown?][] = [
      ["PUT", "/api/queues/%7Bmodel-tiny%7D/clean/waiting"],
      ["PUT", "/api/queues/%7Bmodel-tiny%7D/pause"],
      ["PUT", `/api/queues/%7Bmodel-tiny%7D/${jobId}/clean`],
      ["POST", "/api/queues/%7Bmodel-tiny%7D/add", { name: "x", data: {} }],
    ];
    for (const [method, route, body] of attempts) {
      const response = await fetch(`${base}${route}`, {
        method,
        headers: {
          authorization: basic(apiKey),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      assert.equal(response.status, 405, `${method} ${route}: ${response.status}`);
    }
    assert.equal(await queue.getWaitingCount(), 1);
    assert.equal(await queue.isPaused(), false);
  });

  it("runs as its own process, shows the models Redis knows and those that appear later, stops on SIGTERM", async () => {
    // A gpu-worker's registry entry for a model with no queue yet.
    const log = createLogger("test", { level: "error" });
    const registry = new RegistryPublisher({
      redis,
      names,
      workerId: "dashboard-test-gpu-worker",
      ttlMs: 120_000,
      log,
    });
    await registry.announce(["gamma"], "ready");
    const port = await freePort();
    const entry = fileURLToPath(new URL("../../orchestrator/dashboard/main.js", import.meta.url));
    // No MODELS of the stack: "extra" is one more name to show, not the list.
    const child = spawn(process.execPath, [entry], {
      env: {
        PATH: process.env.PATH,
        REDIS_URL: redisUrl,
        REDIS_PREFIX: prefix,
        DASHBOARD_PORT: String(port),
        LOG_FORMAT: "json",
        MODELS: "extra=/nowhere/extra.gguf",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (data: Buffer) => {
      output += data.toString();
    });
    child.stderr.on("data", (data: Buffer) => {
      output += data.toString();
    });
    await waitFor(
      () => output.includes("queue dashboard listening") || child.exitCode !== null,
      30_000,
      "the dashboard to listen or exit",
      50,
    );
    assert.match(output, /queue dashboard listening/, output);
    const listed = async () => {
      const response = await fetch(`http://127.0.0.1:${port}/api/queues`);
      assert.equal(response.status, 200);
      const body = (await response.json()) as { queues: { name: string }[] };
      return body.queues.map((entry) => entry.name);
    };
    try {
      assert.deepEqual(await listed(), ["{model-extra}", "{model-gamma}", "{model-tiny}"]);
      const gamma = await fetch(`http://127.0.0.1:${port}/overview.json`);
      const lines = (await gamma.json()) as { model: string; state: string; workers: number }[];
      assert.deepEqual(
        lines.map((line) => [line.model, line.state, line.workers]),
        [
          ["extra", "unavailable", 0],
          ["gamma", "ready", 1],
          ["tiny", "unavailable", 0],
        ],
      );
      // A model whose queue an orchestrator opens later: shown without a restart.
      const late = new Queue(names.modelQueue("late"), {
        connection: redis,
        prefix: names.bullPrefix,
      });
      try {
        await late.waitUntilReady();
        await waitFor(
          async () => (await listed()).includes("{model-late}"),
          15_000,
          "model-late to be shown",
          250,
        );
        assert.deepEqual(await listed(), [
          "{model-extra}",
          "{model-gamma}",
          "{model-late}",
          "{model-tiny}",
        ]);
      } finally {
        await late.close();
      }
      // Watching a model does not create its queue: the dashboards wrote no queue's keys.
      for (const model of ["extra", "gamma", "other"]) {
        assert.deepEqual(await redis.keys(queueKey(names, model, "*")), [], model);
      }
    } finally {
      child.kill("SIGTERM");
      await registry.close();
    }
    const [code] = await once(child, "exit");
    assert.equal(code, 0, output);
  });
});

describe("queue dashboard without Redis", () => {
  it("still exits 0 soon after SIGTERM, with a request stuck on the stopped Redis", async () => {
    // A Redis of this test's own, to stop.
    const redis = await startRedisServer();
    const prefix = uniquePrefix("dash-gone");
    const port = await freePort();
    const entry = fileURLToPath(new URL("../../orchestrator/dashboard/main.js", import.meta.url));
    const child = spawn(process.execPath, [entry], {
      env: {
        PATH: process.env.PATH,
        REDIS_URL: redis.url,
        REDIS_PREFIX: prefix,
        DASHBOARD_PORT: String(port),
        SHUTDOWN_TIMEOUT_MS: "1000",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    for (const stream of [child.stdout, child.stderr]) {
      stream.on("data", (data: Buffer) => {
        output += data.toString();
      });
    }
    try {
      await waitFor(
        () => output.includes("queue dashboard listening") || child.exitCode !== null,
        30_000,
        "the dashboard to listen or exit",
        50,
      );
      assert.match(output, /queue dashboard listening/, output);
      // An empty prefix: said at once, rather than a made-up model shown.
      assert.match(output, /no model in Redis under REDIS_PREFIX yet/, output);
      // A queue opened later is found, and asking for it waits on Redis.
      const connection = createRedis(
        redis.url,
        "test-late-queue",
        createLogger("test", { level: "error" }),
      );
      const names = new RedisNames(prefix);
      const queue = new Queue(names.modelQueue("tiny"), { connection, prefix: names.bullPrefix });
      await queue.waitUntilReady();
      await queue.close();
      await closeRedis(connection);
      const url = `http://127.0.0.1:${port}/api/queues`;
      await waitFor(
        async () => {
          const body = (await (await fetch(url)).json()) as { queues: { name: string }[] };
          return body.queues.some((entry) => entry.name === "{model-tiny}");
        },
        15_000,
        "the late queue to be shown",
        250,
      );
      await redis.close();
      // Its handler waits on Redis (commands wait out a reconnect): only a bounded close ends it.
      let answered = false;
      const stuck = fetch(url).then(
        (response) => response.status,
        () => "cut",
      );
      void stuck.finally(() => {
        answered = true;
      });
      await holdsFor(() => !answered, 500, "the request to wait on the stopped Redis");
      const exited = once(child, "exit");
      const signalledAt = performance.now();
      child.kill("SIGTERM");
      const [code] = await Promise.race([
        exited,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`no exit within 15 s\n${output}`)), 15_000),
        ),
      ]);
      process.stdout.write(
        `# dashboard exit after SIGTERM without Redis: ${Math.round(performance.now() - signalledAt)} ms\n`,
      );
      assert.equal(code, 0, output);
      assert.equal(await stuck, "cut", "the stuck request's connection was cut");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await redis.close();
    }
  });
});

describe("queue dashboard: jobs per client", () => {
  it("counts each client's jobs from their data (payload, then metadata), the anonymous first", async () => {
    const redisUrl = await testRedisUrl();
    const prefix = uniquePrefix("dash-clients");
    const names = new RedisNames(prefix);
    const redis = createRedis(redisUrl, "test-clients", createLogger("test", { level: "error" }));
    const queue = new Queue(names.modelQueue("tiny"), {
      connection: redis,
      prefix: names.bullPrefix,
    });
    const dashboard = createQueueDashboard({
      models: ["tiny"],
      connection: redis,
      names,
      apiKey: undefined,
      log: createLogger("dashboard", { level: "error" }),
    });
    try {
      const payload = (client?: string) => ({
        v: 1,
        replyTo: "replies",
        task: sealedData,
        ...(client === undefined ? {} : { client }),
      });
      // Taken (below) by a gpu-worker that fails it; the others are queued after.
      await queue.add("generate", payload("acme"));
      // A job a gpu-worker took and failed: its data is its metadata, naming the client too.
      const worker = new Worker(names.modelQueue("tiny"), null, {
        connection: redis,
        prefix: names.bullPrefix,
        autorun: false,
      });
      try {
        const taken = await worker.getNextJob("token");
        assert.ok(taken !== undefined);
        await taken.updateData({
          v: 1,
          model: "tiny",
          status: "failed",
          client: "acme",
          queueMs: 1,
          completionTokens: 7,
        });
        await taken.moveToFailed(new Error("test"), "token", false);
      } finally {
        await worker.close();
      }
      await queue.add("generate", payload("zeta"));
      await queue.add("generate", payload("acme"));
      await queue.add("generate", payload("acme"));
      await queue.add("generate", payload());
      const base = await dashboard.app.listen({ host: "127.0.0.1", port: 0 });
      const html = await (await fetch(`${base}/`)).text();
      const rows = [...html.matchAll(/<tr data-client="([^"]*)">(.*?)<\/tr>/g)].map((match) => [
        match[1],
        ...[...(match[2] ?? "").matchAll(/<td>([^<]*)<\/td>/g)].map((cell) => cell[1]).slice(1),
      ]);
      assert.deepEqual(rows, [
        ["anonymous", "1", "0", "0", "0", "0"],
        ["acme", "2", "0", "0", "1", "7"],
        ["zeta", "1", "0", "0", "0", "0"],
      ]);
    } finally {
      await dashboard.close();
      await queue.close();
      await deleteKeysWithPrefix(redisUrl, prefix);
      await closeRedis(redis);
    }
  });
});
