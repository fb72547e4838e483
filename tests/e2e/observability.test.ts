/**
 * The operator's view, on the real stack: `/ready` and `/ping` across a model's arrival, both
 * processes' Prometheus `/metrics` after known traffic (counts that match the jobs run), finished
 * jobs kept as metadata only, and the queue dashboard in a real browser (Debian's chromium driven
 * by playwright-core): both models' queues with their completed counts, no request text, and not
 * one request to a host other than 127.0.0.1. A screenshot is saved under test-output/.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { chromium } from "playwright-core";
import {
  createQueueDashboard,
  type QueueDashboard,
} from "../../orchestrator/dashboard/queue-dashboard.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { type FinalChunk, isFinalChunk, jobMetadataSchema } from "../../shared/protocol/index.js";
import { closeRedis, createRedis, freePort } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { type JobView, TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

const apiKey = "observability-key-789";
/** In every prompt: must never show up in metrics, job data or the dashboard. */
const marker = "zebra-quartz-marker";
const chromiumPath = "/usr/bin/chromium";
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const outputDir = path.join(repoRoot, "test-output");

/** The `llmpool_` metric families a Prometheus text declares (its `# TYPE` lines). */
function families(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (llmpool_\w+) /gm)].map((match) => match[1] ?? ""));
}

/** Prometheus text: the value of one series (exact labels, in the order prom-client writes them). */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe("operators' view: readiness, metrics, dashboard", () => {
  let stack: TestStack;
  let betaPath: string;
  let alphaMetricsPort: number;
  let betaMetricsPort: number;
  let redis: Redis;
  /** Every metric family either process served. */
  const served = new Set<string>();
  const finals = new Map<string, FinalChunk[]>([
    ["alpha", []],
    ["beta", []],
  ]);

  const raw = (url: string, authorization?: string) =>
    fetch(url, { headers: authorization === undefined ? {} : { authorization } });
  const bearer = `Bearer ${apiKey}`;

  before(async () => {
    const alphaPath = await tinyModelPath({ seed: 101 });
    betaPath = await tinyModelPath({ seed: 202 });
    alphaMetricsPort = await freePort();
    betaMetricsPort = await freePort();
    // The orchestrator serves alpha and beta; the first gpu-worker only alpha.
    stack = await TestStack.start({
      models: `alpha=${alphaPath}?sequences=1,beta=${betaPath}?sequences=1`,
      gpuWorkerEnv: {
        MODELS: `alpha=${alphaPath}?sequences=1`,
        METRICS_PORT: `${alphaMetricsPort}`,
      },
      env: { CONTEXT_SIZE: "512", DASHBOARD_RETENTION: "count=50,age=600" },
      readyModels: 1,
      apiKey,
      label: "observe",
    });
    redis = createRedis(stack.redisUrl, "test-observe", createLogger("test", { level: "error" }));
  });

  after(async () => {
    if (redis !== undefined) await closeRedis(redis);
    await stack?.stop();
  });

  it("/ready is 503 and /ping 204 until every served model has a ready gpu-worker, then 200", async () => {
    const ready = await raw(`${stack.url}/ready`);
    assert.equal(ready.status, 503, "beta has no gpu-worker yet");
    assert.deepEqual(await ready.json(), {
      ready: false,
      models: { alpha: "ready", beta: "unavailable" },
    });
    assert.equal((await raw(`${stack.url}/ping`)).status, 204);
    // Probes need no key; every other route does.
    assert.equal((await raw(`${stack.url}/health`)).status, 200);
    assert.equal((await raw(`${stack.url}/status/x`)).status, 401);

    // Polled while the gpu-worker serving beta starts and loads it.
    const seen: { ready: number; ping: number; beta: string }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const [readyResponse, ping] = await Promise.all([
          raw(`${stack.url}/ready`),
          raw(`${stack.url}/ping`),
        ]);
        const body = (await readyResponse.json()) as { models: Record<string, string> };
        seen.push({ ready: readyResponse.status, ping: ping.status, beta: body.models.beta ?? "" });
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    await stack.addGpuWorker({
      MODELS: `beta=${betaPath}?sequences=1`,
      METRICS_PORT: `${betaMetricsPort}`,
    });
    polling = false;
    await poller;
    assert.equal((await raw(`${stack.url}/ready`)).status, 200);
    const ping = await raw(`${stack.url}/ping`);
    assert.equal(ping.status, 200);
    // Answers agree with beta's state at every poll, and never go back once ready.
    for (const poll of seen) {
      const isReady = poll.beta === "ready";
      assert.equal(poll.ready, isReady ? 200 : 503, JSON.stringify(poll));
    }
    const firstReady = seen.findIndex((poll) => poll.ready === 200);
    if (firstReady >= 0) assert.ok(seen.slice(firstReady).every((poll) => poll.ready === 200));
    assert.ok(
      seen.some((poll) => poll.ready === 503 && poll.ping === 204),
      "polls saw the service still initialising",
    );
    const states = [...new Set(seen.map((poll) => poll.beta))].join(" → ");
    console.log(`# beta's states seen by /ready while its gpu-worker started: ${states}`);
  });

  it("runs known traffic: two jobs on alpha, one on beta, one failed on alpha, one refused", async () => {
    for (const model of ["alpha", "alpha", "beta"]) {
      const view = (await stack.runsync({
        model,
        prompt: `Once upon a time ${marker} the`,
        sampling_params: { max_tokens: 12, temperature: 0 },
      })) as JobView;
      assert.equal(view.status, "COMPLETED", JSON.stringify(view));
      const final = view.output?.find(isFinalChunk);
      assert.ok(final, "the job has a final chunk");
      finals.get(model)?.push(final);
    }
    // Fails on the gpu-worker: the prompt does not fit alpha's 512-token context (short tokens:
    // its bytes are under the bound admission checks, so it reaches a model thread).
    const failed = (await stack.runsync({
      model: "alpha",
      prompt: `${marker} ${"a ".repeat(700)}`,
      sampling_params: { max_tokens: 4 },
    })) as JobView;
    assert.equal(failed.status, "FAILED");
    assert.match(failed.error ?? "", /PROMPT_TOO_LONG/);
    // The caller hears of the failure before BullMQ has moved the job to its failed list.
    await waitFor(
      async () => {
        const text = await (await raw(`${stack.url}/metrics`, bearer)).text();
        return sample(text, 'llmpool_queue_jobs{model="alpha",state="failed"}') === 1;
      },
      10_000,
      "the failed job in alpha's failed list",
      50,
    );
    // A model nobody serves: refused; its name is request content and must not become a label.
    const refused = (await stack.runsync({
      model: `${marker}-model`,
      prompt: "hello",
    })) as JobView;
    assert.equal(refused.status, "FAILED");
  });

  it("orchestrator /metrics: counts that match the jobs run; 401 without the key", async () => {
    assert.equal((await raw(`${stack.url}/metrics`)).status, 401);
    assert.equal((await raw(`${stack.url}/metrics`, "Bearer wrong")).status, 401);
    const startedAt = performance.now();
    const response = await raw(`${stack.url}/metrics`, bearer);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await response.text();
    const took = (performance.now() - startedAt).toFixed(1);
    console.log(`# orchestrator /metrics scrape: ${took} ms, ${text.length} bytes`);
    assert.doesNotMatch(text, new RegExp(marker), "no label or value from a request");
    for (const family of families(text)) served.add(family);

    for (const [model, jobs] of finals) {
      const m = `model="${model}"`;
      assert.equal(sample(text, `llmpool_requests_total{${m},status="completed"}`), jobs.length);
      for (const histogram of [
        "time_to_first_token_seconds",
        "request_queue_time_seconds",
        "e2e_request_latency_seconds",
      ]) {
        assert.equal(sample(text, `llmpool_${histogram}_count{${m}}`), jobs.length, histogram);
        assert.equal(
          sample(text, `llmpool_${histogram}_bucket{le="+Inf",${m}}`),
          jobs.length,
          histogram,
        );
      }
      const sum = (pick: (final: FinalChunk) => number) =>
        jobs.reduce((total, final) => total + pick(final), 0);
      assert.equal(
        sample(text, `llmpool_inter_token_latency_seconds_count{${m}}`),
        jobs.filter((final) => final.usage.completion_tokens >= 2).length,
      );
      const ttftSum = sample(text, `llmpool_time_to_first_token_seconds_sum{${m}}`) ?? -1;
      assert.ok(
        Math.abs(ttftSum - sum((final) => final.timings.ttft_ms) / 1000) < 0.01,
        `TTFT sum ${ttftSum} matches the jobs' timings`,
      );
      assert.equal(
        sample(text, `llmpool_generation_tokens_total{${m}}`),
        sum((final) => final.usage.completion_tokens),
      );
      assert.equal(
        sample(text, `llmpool_prompt_tokens_total{${m}}`),
        sum((final) => final.usage.prompt_tokens),
      );
      assert.equal(
        sample(text, `llmpool_prompt_cached_tokens_total{${m}}`),
        sum((final) => final.usage.prompt_tokens_details?.cached_tokens ?? 0),
      );
      assert.equal(sample(text, `llmpool_gpu_workers{${m},state="ready"}`), 1);
      assert.equal(sample(text, `llmpool_gpu_workers{${m},state="loading"}`), 0);
      assert.equal(sample(text, `llmpool_queue_jobs{${m},state="completed"}`), jobs.length);
      assert.equal(sample(text, `llmpool_queue_jobs{${m},state="waiting"}`), 0);
    }
    assert.ok(
      (sample(text, 'llmpool_generation_tokens_total{model="alpha"}') ?? 0) > 0,
      "tokens were generated",
    );
    assert.equal(sample(text, 'llmpool_requests_total{model="alpha",status="failed"}'), 1);
    assert.equal(
      sample(text, 'llmpool_request_errors_total{model="alpha",code="PROMPT_TOO_LONG"}'),
      1,
    );
    assert.equal(sample(text, 'llmpool_queue_jobs{model="alpha",state="failed"}'), 1);
    assert.equal(sample(text, 'llmpool_queue_jobs{model="beta",state="failed"}'), 0);
    assert.equal(sample(text, 'llmpool_requests_total{model="none",status="failed"}'), 1);
    assert.equal(
      sample(text, 'llmpool_request_errors_total{model="none",code="UNKNOWN_MODEL"}'),
      1,
    );
    assert.ok(sample(text, "process_cpu_user_seconds_total") !== undefined, "process metrics");
  });

  it("gpu-worker /metrics on METRICS_PORT: its own jobs and sequences; 401 without the key", async () => {
    for (const [model, port] of [
      ["alpha", alphaMetricsPort],
      ["beta", betaMetricsPort],
    ] as const) {
      const url = `http://127.0.0.1:${port}/metrics`;
      assert.equal((await raw(url)).status, 401);
      const response = await raw(url, bearer);
      assert.equal(response.status, 200);
      const text = await response.text();
      assert.doesNotMatch(text, new RegExp(marker));
      for (const family of families(text)) served.add(family);
      const jobs = finals.get(model) ?? [];
      const m = `model="${model}"`;
      assert.equal(sample(text, `llmpool_worker_jobs_total{${m},status="completed"}`), jobs.length);
      assert.equal(sample(text, `llmpool_worker_job_run_seconds_count{${m}}`), jobs.length);
      assert.equal(
        sample(text, `llmpool_worker_generation_tokens_total{${m}}`),
        jobs.reduce((total, final) => total + final.usage.completion_tokens, 0),
      );
      assert.equal(
        sample(text, `llmpool_worker_jobs_total{${m},status="failed"}`),
        model === "alpha" ? 1 : undefined,
      );
      assert.equal(sample(text, `llmpool_sequences_busy{${m}}`), 0);
      assert.equal(sample(text, `llmpool_sequences{${m}}`), 1);
      const other = model === "alpha" ? "beta" : "alpha";
      assert.equal(sample(text, `llmpool_sequences{model="${other}"}`), undefined);
    }
  });

  it("docs/operations.md documents every metric served, and the Grafana board uses only served ones", async () => {
    const metricsDoc = await readFile(path.join(repoRoot, "docs/operations.md"), "utf8");
    const board = await readFile(path.join(repoRoot, "monitoring/grafana-dashboard.json"), "utf8");
    assert.ok(served.size >= 15, `the scrapes above ran: ${[...served].join(", ")}`);
    for (const family of served) {
      assert.ok(metricsDoc.includes(`\`${family}`), `docs/operations.md has ${family}`);
    }
    const used = new Set(
      [...board.matchAll(/llmpool_\w+/g)].map((match) =>
        match[0].replace(/_(bucket|sum|count)$/, ""),
      ),
    );
    assert.ok(used.size > 10);
    for (const family of used) assert.ok(served.has(family), `Grafana's ${family} is served`);
  });

  it("finished jobs stay in their queues as metadata only", async () => {
    const names = new RedisNames(stack.prefix);
    for (const [model, jobs] of finals) {
      const queue = new Queue(names.modelQueue(model), {
        connection: redis,
        prefix: names.bullPrefix,
      });
      try {
        const completed = await queue.getJobs(["completed"]);
        assert.equal(completed.length, jobs.length);
        for (const job of completed) {
          const metadata = jobMetadataSchema.parse(job.data);
          assert.equal(metadata.model, model);
          assert.equal(metadata.status, "completed");
          assert.ok((metadata.completionTokens ?? 0) > 0);
          assert.doesNotMatch(JSON.stringify(job.data), /gAAAA/, "no sealed task left");
        }
        const failed = await queue.getJobs(["failed"]);
        assert.equal(failed.length, model === "alpha" ? 1 : 0);
        for (const job of failed) {
          const metadata = jobMetadataSchema.parse(job.data);
          assert.equal(metadata.status, "failed");
          assert.equal(metadata.code, "PROMPT_TOO_LONG");
          assert.doesNotMatch(JSON.stringify(job.data), /gAAAA/);
          assert.doesNotMatch(
            `${JSON.stringify(job.data)} ${job.failedReason}`,
            new RegExp(marker),
          );
        }
        const tokens = completed.map((job) => jobMetadataSchema.parse(job.data).completionTokens);
        assert.deepEqual(tokens.sort(), jobs.map((final) => final.usage.completion_tokens).sort());
      } finally {
        await queue.close();
      }
    }
  });

  describe("the dashboard in Chromium", () => {
    let dashboard: QueueDashboard;
    let names: RedisNames;
    let base: string;
    let userDataDir: string;

    before(async () => {
      names = new RedisNames(stack.prefix);
      // No models named: the dashboard finds the stack's in Redis.
      dashboard = createQueueDashboard({
        models: [],
        connection: redis,
        names,
        apiKey,
        log: createLogger("dashboard", { level: "error" }),
      });
      base = await dashboard.app.listen({ host: "127.0.0.1", port: 0 });
      if (!existsSync(chromiumPath)) {
        throw new Error(
          `${chromiumPath} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does)`,
        );
      }
      userDataDir = await mkdtemp(path.join(os.tmpdir(), "pool-chromium-"));
    });

    after(async () => {
      await dashboard?.close();
      if (userDataDir !== undefined) await rm(userDataDir, { recursive: true, force: true });
    });

    it("shows both queues with their completed jobs, no request text, nothing from other hosts", async () => {
      const context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: chromiumPath,
        headless: true,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run",
          "--disable-quic",
        ],
        httpCredentials: { username: "admin", password: apiKey },
        viewport: { width: 1280, height: 900 },
      });
      const requested: string[] = [];
      context.on("request", (request) => requested.push(request.url()));
      const consoleErrors: string[] = [];
      try {
        const page = await context.newPage();
        page.on("console", (message) => {
          if (message.type() === "error") consoleErrors.push(message.text());
        });
        const response = await page.goto(`${base}/`, { waitUntil: "networkidle" });
        assert.equal(response?.status(), 200);
        const csp = response?.headers()["content-security-policy"] ?? "";
        assert.match(csp, /default-src 'self'/);
        // Locators, not page functions: the page's CSP forbids the eval those need.
        for (const queue of ["model-alpha", "model-beta"]) {
          await page.getByText(queue).first().waitFor({ timeout: 20_000 });
        }
        // Our overview: each model's state, gpu-workers and kept completed jobs.
        for (const [model, jobs] of finals) {
          const cells = await page
            .locator(`#llmpool-overview tr[data-model="${model}"] td`)
            .allInnerTexts();
          assert.deepEqual(cells.slice(0, 7), [
            model,
            "ready on 1",
            "1",
            "0",
            "0",
            String(jobs.length),
            model === "alpha" ? "1" : "0",
          ]);
        }
        // The overview refreshes itself: one more job on beta shows up without a reload.
        const more = (await stack.runsync({
          model: "beta",
          prompt: `Once upon a time ${marker} the`,
          sampling_params: { max_tokens: 12, temperature: 0 },
        })) as JobView;
        assert.equal(more.status, "COMPLETED");
        const betaCompleted = String((finals.get("beta")?.length ?? 0) + 1);
        const betaCell = page.locator('#llmpool-overview tr[data-model="beta"] td:nth-child(6)');
        await waitFor(
          async () => (await betaCell.textContent()) === betaCompleted,
          15_000,
          "the overview to refresh",
          250,
        );

        // A job cancelled while it runs ends as completed in BullMQ; the dashboard counts it
        // apart, and bull-board's list names it cancelled.
        const running = await stack.run({
          model: "alpha",
          prompt: `Once upon a time ${marker} the`,
          sampling_params: { max_tokens: 400, temperature: 0 },
        });
        const firstChunks = (await stack.get(`/stream/${running.id}?wait=20000`)) as {
          stream: unknown[];
        };
        assert.ok(firstChunks.stream.length > 0, "the job was generating");
        assert.equal(
          ((await stack.post(`/cancel/${running.id}`, {})) as JobView).status,
          "CANCELLED",
        );
        const alphaQueue = new Queue(names.modelQueue("alpha"), {
          connection: redis,
          prefix: names.bullPrefix,
        });
        try {
          await waitFor(
            async () => (await alphaQueue.getJob(running.id))?.finishedOn !== undefined,
            20_000,
            "the cancelled job to end in BullMQ",
            100,
          );
          const ended = await alphaQueue.getJob(running.id);
          assert.equal(await ended?.getState(), "completed", "BullMQ completed it");
          const metadata = jobMetadataSchema.parse(ended?.data);
          assert.equal(metadata.status, "cancelled");
          assert.equal(metadata.finishReason, "cancelled");
        } finally {
          await alphaQueue.close();
        }
        const alphaCells = page.locator('#llmpool-overview tr[data-model="alpha"] td');
        const alphaJobs = String(finals.get("alpha")?.length ?? 0);
        // completed, failed, cancelled
        await waitFor(
          async () =>
            (await alphaCells.allInnerTexts()).slice(5, 8).join(",") === `${alphaJobs},1,1`,
          15_000,
          "alpha's row to show the cancelled job",
          250,
        ).catch(async (error: Error) =>
          assert.fail(`${error.message}: ${(await alphaCells.allInnerTexts()).join(",")}`),
        );

        const overviewText = (await page.textContent("body")) ?? "";
        await mkdir(outputDir, { recursive: true });
        const screenshot = path.join(outputDir, "dashboard.png");
        await page.screenshot({ path: screenshot, fullPage: true });
        console.log(`# dashboard screenshot: ${screenshot}`);

        // bull-board's own view of alpha's completed jobs: their metadata, no request text; the
        // cancelled one is named so.
        // Its address names the queue (braces and all: its cluster hash tag), URL-encoded.
        const alphaPath = encodeURIComponent(names.modelQueue("alpha"));
        await page.goto(`${base}/queue/${alphaPath}?status=completed`, {
          waitUntil: "networkidle",
        });
        await page.getByText("completionTokens").first().waitFor({ timeout: 20_000 });
        await page.getByText("generate (cancelled)").waitFor({ timeout: 20_000 });
        assert.equal(await page.getByText("generate (cancelled)").count(), 1);
        const jobsText = (await page.textContent("body")) ?? "";
        await page.screenshot({ path: path.join(outputDir, "dashboard-jobs.png"), fullPage: true });
        for (const text of [overviewText, jobsText, await page.content()]) {
          assert.doesNotMatch(text, new RegExp(marker), "no request text on the page");
          assert.doesNotMatch(text, /gAAAA/, "no sealed request on the page");
        }
      } finally {
        await context.close();
      }
      assert.ok(requested.length > 3, "the browser loaded the page and its assets");
      assert.deepEqual(
        consoleErrors.filter((text) => /Content.Security.Policy/i.test(text)),
        [],
        "nothing the page needs is refused by its CSP",
      );
      const elsewhere = requested.filter((url) => {
        if (url.startsWith("data:")) return false;
        return new URL(url).hostname !== "127.0.0.1";
      });
      assert.deepEqual(elsewhere, [], "no request leaves 127.0.0.1");
    });
  });
});
