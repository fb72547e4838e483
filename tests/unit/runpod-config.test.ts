/**
 * RunPod mode's pure parts: URL templates, job-take answers, the default concurrency, the
 * platform's variables and RunPod's log line shape.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseTakeAnswer } from "../../orchestrator/runpod/take-answer.js";
import { fillTemplate, WebhookUrls, withQuery } from "../../orchestrator/runpod/webhook-urls.js";
import { type ConfigHost, loadConfig, type RunpodConfig } from "../../shared/config/index.js";
import { FernetKey } from "../../shared/crypto/index.js";
import { ConfigError } from "../../shared/errors/index.js";
import { createLogger } from "../../shared/log.js";
import { servedSlots } from "../../shared/models/served-models.js";

const host: ConfigHost = {
  cwd: "/srv/app",
  homeDir: "/home/tester",
  cpuCount: 9,
  runpodVolumeExists: false,
  packageRoot: "/opt/pool",
};

function runpodConfig(overrides: Partial<RunpodConfig> = {}): RunpodConfig {
  return {
    getJobUrl: "https://api.runpod.ai/v2/ep1/job-take/$RUNPOD_POD_ID?gpu=A100",
    postOutputUrl: "https://api.runpod.ai/v2/ep1/job-done/$RUNPOD_POD_ID/$ID?gpu=A100",
    postStreamUrl: "https://api.runpod.ai/v2/ep1/job-stream/$RUNPOD_POD_ID/$ID?gpu=A100",
    pingUrl: "https://api.runpod.ai/v2/ep1/ping/$RUNPOD_POD_ID?gpu=A100",
    apiKey: "k",
    podId: "pod9",
    pingIntervalMs: 10_000,
    ...overrides,
  };
}

describe("URL templates", () => {
  it("fills $RUNPOD_POD_ID everywhere and $ID with the given id", () => {
    assert.equal(
      fillTemplate("https://h/$RUNPOD_POD_ID/x/$ID/$RUNPOD_POD_ID", "job-1", "pod9"),
      "https://h/pod9/x/job-1/pod9",
    );
  });

  it("appends query parameters with ? or & as the template needs", () => {
    assert.equal(withQuery("https://h/a", { x: "1", y: "2" }), "https://h/a?x=1&y=2");
    assert.equal(withQuery("https://h/a?gpu=A", { x: "1" }), "https://h/a?gpu=A&x=1");
    assert.equal(withQuery("https://h/a?", { x: "1" }), "https://h/a?x=1");
    assert.equal(withQuery("https://h/a?gpu=A&", { x: "1" }), "https://h/a?gpu=A&x=1");
    assert.equal(withQuery("https://h/a", { x: undefined }), "https://h/a");
    assert.equal(withQuery("https://h/a", { ids: "a,b c" }), "https://h/a?ids=a%2Cb%20c");
  });

  for (const query of ["?gpu=A100", ""]) {
    const q = query === "" ? "?" : `${query}&`;
    const urls = new WebhookUrls(
      runpodConfig({
        getJobUrl: `https://api.runpod.ai/v2/ep1/job-take/$RUNPOD_POD_ID${query}`,
        postOutputUrl: `https://api.runpod.ai/v2/ep1/job-done/$RUNPOD_POD_ID/$ID${query}`,
        postStreamUrl: `https://api.runpod.ai/v2/ep1/job-stream/$RUNPOD_POD_ID/$ID${query}`,
        pingUrl: `https://api.runpod.ai/v2/ep1/ping/$RUNPOD_POD_ID${query}`,
      }),
    );
    const base = "https://api.runpod.ai/v2/ep1";

    it(`builds every URL from templates ${query === "" ? "without" : "with"} a query`, () => {
      assert.equal(urls.take(1, false), `${base}/job-take/pod9${q}job_in_progress=0`);
      assert.equal(urls.take(1, true), `${base}/job-take/pod9${q}job_in_progress=1`);
      assert.equal(
        urls.take(3, true),
        `${base}/job-take-batch/pod9${q}batch_size=3&job_in_progress=1`,
      );
      assert.equal(urls.stop(), `${base}/job-stop/pod9${query}`);
      assert.equal(
        urls.ping([], "v1"),
        `${base}/ping/pod9${q}runpod_version=v1`,
        "no job_id when no job is held",
      );
      assert.equal(
        urls.ping(["a", "b"], "v1"),
        `${base}/ping/pod9${q}job_id=a%2Cb&runpod_version=v1`,
      );
      assert.equal(urls.stream("job-7"), `${base}/job-stream/pod9/job-7${q}isStream=false`);
      assert.equal(urls.output("job-7", true), `${base}/job-done/pod9/job-7${q}isStream=true`);
    });
  }

  it("takes one job at a time and has no stop channel when the template has no /job-take/", () => {
    const urls = new WebhookUrls(runpodConfig({ getJobUrl: "https://h/jobs/$ID" }));
    assert.equal(urls.take(4, false), "https://h/jobs/pod9?job_in_progress=0");
    assert.equal(urls.stop(), undefined);
  });

  it("leaves stream posts and pings out when the platform gives no URL for them", () => {
    const urls = new WebhookUrls(runpodConfig({ postStreamUrl: undefined, pingUrl: undefined }));
    assert.equal(urls.stream("j"), undefined);
    assert.equal(urls.ping(["j"], "v"), undefined);
  });
});

describe("job-take answers", () => {
  it("reads one job (an object) or several (an array), ignoring extra fields", () => {
    assert.deepEqual(parseTakeAnswer('{"id":"a","input":{"x":1},"webhook":"w"}'), {
      jobs: [{ id: "a", input: { x: 1 } }],
      malformed: [],
    });
    const many = parseTakeAnswer('[{"id":"a","input":1},{"id":"b","input":{}}]');
    assert.deepEqual(
      many.jobs.map((job) => job.id),
      ["a", "b"],
    );
  });

  it("reports a job missing its id or input on its own", () => {
    const take = parseTakeAnswer('[{"id":"a","input":{}},{"id":"b"},{"input":{}},7]');
    assert.deepEqual(
      take.jobs.map((job) => job.id),
      ["a"],
    );
    assert.deepEqual(
      take.malformed.map((bad) => bad.id),
      ["b", undefined, undefined],
    );
  });

  it("throws on a body that is not JSON or not a job", () => {
    assert.throws(() => parseTakeAnswer("<html>"));
    assert.throws(() => parseTakeAnswer('"text"'));
  });
});

describe("RunPod configuration", () => {
  const key = FernetKey.generate().exportKey();
  const platformEnv = {
    ENCRYPTION_KEY: key,
    RUNPOD_WEBHOOK_GET_JOB: "https://api.runpod.ai/v2/ep1/job-take/$RUNPOD_POD_ID?gpu=x",
    RUNPOD_WEBHOOK_POST_OUTPUT: "https://api.runpod.ai/v2/ep1/job-done/$RUNPOD_POD_ID/$ID?gpu=x",
    RUNPOD_AI_API_KEY: "secret-platform-key",
    RUNPOD_POD_ID: "pod-1",
  };

  it("reads the platform's variables in runpod mode", () => {
    const config = loadConfig({ ...platformEnv, RUNPOD_PING_INTERVAL: "2500" }, host);
    assert.equal(config.mode, "runpod");
    assert.equal(config.runpod?.getJobUrl, platformEnv.RUNPOD_WEBHOOK_GET_JOB);
    assert.equal(config.runpod?.apiKey, "secret-platform-key");
    assert.equal(config.runpod?.podId, "pod-1");
    assert.equal(config.runpod?.pingIntervalMs, 2500);
    assert.equal(config.runpod?.postStreamUrl, undefined);
    assert.equal(config.maxConcurrency, undefined);
    assert.equal(config.streamPostWindowMs, 50);
    assert.equal(loadConfig({ ...platformEnv }, host).runpod?.pingIntervalMs, 10_000);
  });

  it("makes up a pod id when the platform gives none, and none outside RunPod", () => {
    const { RUNPOD_POD_ID: _unused, ...rest } = platformEnv;
    assert.match(loadConfig(rest, host).runpod?.podId ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(loadConfig({}, host).runpod, undefined);
  });

  it("needs the output URL and valid numbers", () => {
    const { RUNPOD_WEBHOOK_POST_OUTPUT: _unused, ...rest } = platformEnv;
    assert.throws(() => loadConfig(rest, host), ConfigError);
    assert.throws(() => loadConfig({ ...platformEnv, MAX_CONCURRENCY: "0" }, host), ConfigError);
    assert.throws(
      () => loadConfig({ ...platformEnv, RUNPOD_PING_INTERVAL: "soon" }, host),
      /RUNPOD_PING_INTERVAL/,
    );
  });

  it("sizes the default concurrency to what the models run at once", () => {
    assert.equal(servedSlots(loadConfig({}, host)), 4, "one model, 1 thread × 4 sequences");
    const config = loadConfig(
      { MODELS: "a=/m/a.gguf,b=/m/b.gguf", MODEL_THREADS: "2", MODEL_SEQUENCES: "3" },
      host,
    );
    assert.equal(servedSlots(config), 12);
    assert.equal(loadConfig({ MAX_CONCURRENCY: "30" }, host).maxConcurrency, 30);
  });

  it("logs RunPod's JSON lines when RUNPOD_ENDPOINT_ID is set", () => {
    assert.equal(loadConfig({ RUNPOD_ENDPOINT_ID: "ep1" }, host).logFormat, "runpod");
    assert.equal(loadConfig({ LOG_FORMAT: "json" }, host).logFormat, "json");
    const lines: string[] = [];
    const log = createLogger("orchestrator", {
      format: "runpod",
      write: (line) => lines.push(line),
    });
    log.warn("job taken", { jobId: "job-1", chunks: 3 });
    log.info("idle");
    assert.deepEqual(JSON.parse(lines[0] ?? ""), {
      requestId: "job-1",
      message: "[orchestrator] job taken chunks=3",
      level: "WARN",
    });
    assert.deepEqual(JSON.parse(lines[1] ?? ""), {
      requestId: null,
      message: "[orchestrator] idle",
      level: "INFO",
    });
  });
});
