/**
 * The RunPod worker's HTTP clients against a real local server: stream posts go out in order,
 * coalesced and size-capped, without ever blocking the producer; result posts retry on 5xx as
 * runpod-python does and not on 4xx; a 404 on the job-stop channel ends its polling quietly; the
 * job loop reads every kind of job-take answer.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { JobLoop } from "../../orchestrator/runpod/job-loop.js";
import { PlatformHttp } from "../../orchestrator/runpod/platform-http.js";
import { StopChannel } from "../../orchestrator/runpod/stop-channel.js";
import { StreamPoster } from "../../orchestrator/runpod/stream-poster.js";
import { WebhookUrls } from "../../orchestrator/runpod/webhook-urls.js";
import { silentLogger } from "../../shared/log.js";
import { holdsFor, waitFor } from "../support/wait-for.js";

interface Received {
  path: string;
  body: string;
  authorization: string | undefined;
  at: number;
}

describe("RunPod posting", () => {
  let server: http.Server;
  let base: string;
  const received: Received[] = [];
  /** Status per path prefix, consumed in order; 200 once exhausted. */
  const script = new Map<string, number[]>();
  let delayMs = 0;

  before(async () => {
    server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const path = request.url ?? "/";
        received.push({
          path,
          body: Buffer.concat(chunks).toString("utf8"),
          authorization: request.headers.authorization,
          at: performance.now(),
        });
        const key = [...script.keys()].find((prefix) => path.startsWith(prefix));
        const status = (key === undefined ? undefined : script.get(key)?.shift()) ?? 200;
        setTimeout(() => response.writeHead(status).end(), delayMs);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const httpClient = new PlatformHttp("raw-key", silentLogger);

  it("streams every chunk in order, coalesced while the platform is slow, without blocking", async () => {
    delayMs = 60;
    const poster = new StreamPoster({
      http: httpClient,
      url: `${base}/stream-a`,
      jobId: "a",
      windowMs: 5,
      log: silentLogger,
    });
    const startedAt = performance.now();
    for (let seq = 0; seq < 200; seq += 1) poster.push({ seq, delta: `piece ${seq} ` });
    // Waiting for the platform would take 200 × 60 ms; the bound only allows for a loaded machine.
    assert.ok(performance.now() - startedAt < 2000, "push never waits for the platform");
    await poster.flush();
    delayMs = 0;
    const posts = received.filter((r) => r.path === "/stream-a");
    const chunks = posts.flatMap((post) => (JSON.parse(post.body) as { output: unknown[] }).output);
    assert.deepEqual(
      chunks.map((chunk) => (chunk as { seq: number }).seq),
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.ok(posts.length < 10, `200 chunks went out in ${posts.length} posts`);
    assert.ok(
      posts.every((post) => post.authorization === "raw-key"),
      "the raw key, no Bearer",
    );
  });

  it("keeps every post under the size cap", async () => {
    const poster = new StreamPoster({
      http: httpClient,
      url: `${base}/stream-b`,
      jobId: "b",
      windowMs: 50,
      maxBytes: 10_000,
      log: silentLogger,
    });
    const delta = "x".repeat(3000);
    for (let seq = 0; seq < 10; seq += 1) poster.push({ seq, delta });
    await poster.flush();
    const posts = received.filter((r) => r.path === "/stream-b");
    assert.ok(posts.length >= 4, "split into several posts");
    for (const post of posts) assert.ok(Buffer.byteLength(post.body) <= 10_000);
    const seqs = posts.flatMap((post) =>
      (JSON.parse(post.body) as { output: { seq: number }[] }).output.map((chunk) => chunk.seq),
    );
    assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("drops what is not yet posted when the job is stopped", async () => {
    delayMs = 100;
    const poster = new StreamPoster({
      http: httpClient,
      url: `${base}/stream-c`,
      jobId: "c",
      windowMs: 0,
      log: silentLogger,
    });
    const postsOfC = () => received.filter((r) => r.path === "/stream-c");
    poster.push({ seq: 0, delta: "a" });
    await waitFor(() => postsOfC().length === 1, 2000, "the first post to be in flight");
    poster.push({ seq: 1, delta: "b" });
    poster.abandon();
    poster.push({ seq: 2, delta: "c" });
    await poster.flush();
    await holdsFor(() => postsOfC().length === 1, 150, "nothing more is posted");
    delayMs = 0;
    const posts = postsOfC();
    assert.equal(posts.length, 1, "only the post already in flight");
  });

  it("retries a result post on 5xx, 2 s then 3 s apart, and not on 4xx", async () => {
    script.set("/done-5xx", [500, 502]);
    const status = await httpClient.post(`${base}/done-5xx`, { output: [1] }, "j", {
      what: "output",
    });
    assert.equal(status, 200);
    const attempts = received.filter((r) => r.path === "/done-5xx");
    assert.equal(attempts.length, 3);
    const [a, b, c] = attempts;
    assert.ok(a && b && c);
    assert.ok(b.at - a.at >= 1950 && c.at - b.at >= 2950, "2 s, then 3 s");
    assert.ok(attempts.every((attempt) => attempt.body === '{"output":[1]}'));

    script.set("/done-4xx", [400]);
    assert.equal(
      await httpClient.post(`${base}/done-4xx`, { output: [] }, "j", { what: "output" }),
      400,
    );
    assert.equal(received.filter((r) => r.path === "/done-4xx").length, 1);
  });

  it("stops polling a job-stop channel that answers 404", async () => {
    script.set("/job-stop/", [404]);
    const stops: string[][] = [];
    const channel = new StopChannel({
      http: httpClient,
      url: `${base}/job-stop/pod`,
      onStop: (ids) => stops.push(ids),
      log: silentLogger,
    });
    const polls = () => received.filter((r) => r.path === "/job-stop/pod").length;
    channel.start();
    await waitFor(() => polls() === 1, 2000, "the first poll");
    await holdsFor(() => polls() === 1, 300, "no poll after the 404");
    await channel.close();
    assert.equal(received.filter((r) => r.path === "/job-stop/pod").length, 1);
    assert.deepEqual(stops, []);
  });
});

describe("RunPod job loop", () => {
  it("reads objects and arrays, skips 204/400/garbage, re-polls after a timeout, fails malformed jobs alone", async () => {
    const answers: (number | string | "hang")[] = [
      204,
      400,
      '{"id":"a","input":{"encrypted_input":"x"},"webhook":"ignored"}',
      "hang",
      "<html>oops</html>",
      '[{"id":"b","input":1},{"id":"c"},{"input":2}]',
    ];
    const seen: { url: string; at: number }[] = [];
    const server = http.createServer((request, response) => {
      seen.push({ url: request.url ?? "", at: performance.now() });
      const answer = answers.shift() ?? 204;
      if (answer === "hang") return;
      if (typeof answer === "number") {
        setTimeout(() => response.writeHead(answer).end(), 20);
        return;
      }
      response.writeHead(200, { "content-type": "application/json" }).end(answer);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const urls = new WebhookUrls({
      getJobUrl: `http://127.0.0.1:${port}/v2/e/job-take/$RUNPOD_POD_ID`,
      postOutputUrl: `http://127.0.0.1:${port}/v2/e/job-done/$RUNPOD_POD_ID/$ID`,
      postStreamUrl: undefined,
      pingUrl: undefined,
      apiKey: "k",
      podId: "p1",
      pingIntervalMs: 1000,
    });
    const taken: string[] = [];
    const malformed: (string | undefined)[] = [];
    let held = 0;
    const jobLoop = new JobLoop({
      http: new PlatformHttp("k", silentLogger),
      urls,
      concurrency: 3,
      held: () => held,
      slotFreed: () => new Promise(() => {}),
      ready: async () => {},
      onTaken: (take) => {
        taken.push(...take.jobs.map((job) => job.id));
        malformed.push(...take.malformed.map((bad) => bad.id));
        held += take.jobs.length;
      },
      log: silentLogger,
      takeTimeoutMs: 300,
    });
    try {
      jobLoop.start();
      await waitFor(() => taken.length >= 2, 10_000, "two jobs taken", 20);
      assert.deepEqual(taken, ["a", "b"]);
      assert.deepEqual(malformed, ["c", undefined]);
      assert.ok(
        seen[0]?.url.startsWith("/v2/e/job-take-batch/p1?batch_size=3&job_in_progress=0"),
        seen[0]?.url,
      );
      // After "a" was taken: 2 free slots, one held.
      assert.ok(seen[3]?.url.includes("batch_size=2&job_in_progress=1"), seen[3]?.url);
      const afterHang = seen[4];
      const hang = seen[3];
      assert.ok(hang && afterHang);
      assert.ok(afterHang.at - hang.at < 1000, "a timed-out long poll is re-polled at once");
    } finally {
      await jobLoop.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
