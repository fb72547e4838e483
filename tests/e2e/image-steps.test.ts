/**
 * The image's steps, run outside Docker (no Docker engine here): the build stage of Dockerfile.gpu
 * is read from the file and replayed in a clean temporary folder (its COPY, ENV and RUN lines, in
 * order: `npm ci`, build, `npm prune --omit=dev`, the binary pruning), the runtime stage's COPY
 * lines assemble the app folder, and the image's CMD starts it with the runtime ENV (less what
 * needs the container: the GPU, /app). The result must pass the image's HEALTHCHECK and serve a
 * job to the reference client, and stop cleanly on SIGTERM. What the image holds is measured (the
 * sizes go to the test's diagnostics; docs/deployment.md quotes them).
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { FernetKey } from "../../shared/crypto/index.js";
import { packageRoot } from "../../shared/paths.js";
import { freePort } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";

const root = packageRoot();
const dockerfile = readFileSync(path.join(root, "Dockerfile.gpu"), "utf8");

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): { keyword: string; args: string }[] {
  const joined = text.replace(/\\\n(\s*#.*\n)*/g, " ");
  return joined
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [keyword = "", ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(" ") };
    });
}

/** `A=1 B="two"` or `A 1` → entries. */
function envPairs(args: string): [string, string][] {
  if (!args.includes("=")) {
    const [name = "", ...value] = args.split(" ");
    return [[name, value.join(" ")]];
  }
  return [...args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)].map((m) => [
    m[1] ?? "",
    (m[2] ?? "").replace(/^"|"$/g, ""),
  ]);
}

function stages(): Map<string, { keyword: string; args: string }[]> {
  const out = new Map<string, { keyword: string; args: string }[]>();
  let current: { keyword: string; args: string }[] | undefined;
  for (const instruction of instructions(dockerfile)) {
    if (instruction.keyword === "FROM") {
      current = [];
      out.set(/\bAS\s+(\S+)/i.exec(instruction.args)?.[1] ?? "", current);
    } else current?.push(instruction);
  }
  return out;
}

function sizeOf(target: string): number {
  const stat = statSync(target);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(target).reduce((sum, name) => sum + sizeOf(path.join(target, name)), 0);
}
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

describe("the image's steps, outside Docker", { timeout: 900_000 }, () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "llmpool-image-"));
  const buildDir = path.join(work, "build");
  const appDir = path.join(work, "app");
  const dataDir = path.join(work, "data");
  let redisUrl: string;
  const prefix = uniquePrefix("image");
  const key = FernetKey.generate().exportKey();
  let port: number;
  const runtimeEnv: Record<string, string> = {};
  let launcher: ChildProcess | undefined;
  let startEnv: Record<string, string> = {};
  let check: (
    part: string,
    more?: Record<string, string>,
  ) => { status: number | null; stderr: string } = () => ({ status: null, stderr: "" });
  const logs: string[] = [];

  before(async () => {
    redisUrl = await testRedisUrl();
    port = await freePort();
  });

  after(async () => {
    if (launcher !== undefined && launcher.exitCode === null) launcher.kill("SIGKILL");
    await deleteKeysWithPrefix(redisUrl, prefix);
    rmSync(work, { recursive: true, force: true });
  });

  it("replays the build stage: npm ci, build, prune, the kept binaries", {
    timeout: 900_000,
  }, async (t) => {
    const build = stages().get("build");
    assert.ok(build !== undefined, "Dockerfile.gpu has a stage named build");
    mkdirSync(buildDir);
    // npm's cache from this checkout's own install serves the packages (the image build downloads).
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: os.homedir(),
      npm_config_prefer_offline: "true",
    };
    for (const { keyword, args } of build) {
      if (keyword === "ENV") for (const [name, value] of envPairs(args)) env[name] = value;
      else if (keyword === "COPY") {
        const parts = args.split(/\s+/);
        const target = parts.pop() ?? "";
        for (const source of parts) {
          const into = target.endsWith("/")
            ? path.join(buildDir, target, source)
            : path.join(buildDir, target);
          cpSync(path.join(root, source), into, { recursive: true });
        }
      } else if (keyword === "RUN") {
        const started = Date.now();
        const result = spawnSync("sh", ["-c", args], { cwd: buildDir, env, encoding: "utf8" });
        t.diagnostic(`RUN ${args.slice(0, 60)}… ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.equal(result.status, 0, `RUN ${args} failed:\n${result.stdout}\n${result.stderr}`);
      }
    }
    const scope = path.join(buildDir, "node_modules", "@node-llama-cpp");
    assert.deepEqual(readdirSync(scope).sort(), [
      "linux-x64",
      "linux-x64-cuda",
      "linux-x64-cuda-ext",
    ]);
    assert.ok(
      !existsSync(path.join(scope, "linux-x64-cuda", "bins", "linux-x64-cuda", "libggml-cuda.so")),
    );
    assert.ok(
      existsSync(
        path.join(
          scope,
          "linux-x64-cuda-ext",
          "bins",
          "linux-x64-cuda",
          "fallback",
          "libggml-cuda.so",
        ),
      ),
    );
    // The postinstall patched node-llama-cpp in the clean folder as it does in the image.
    const { patches } = (await import(
      pathToFileURL(path.join(root, "patches", "patches.mjs")).href
    )) as {
      patches: { name: string; package: string; file: string; marker: string }[];
    };
    for (const patch of patches) {
      const patched = readFileSync(
        path.join(buildDir, "node_modules", patch.package, patch.file),
        "utf8",
      );
      assert.ok(patched.includes(patch.marker), `patch ${patch.name} is not applied`);
    }
    // Dev-only packages are gone (typescript stays: node-llama-cpp and valibot name it as an
    // optional peer, which npm keeps).
    for (const dev of ["knip", "@biomejs/biome", "dockerfile-utils"]) {
      assert.ok(!existsSync(path.join(buildDir, "node_modules", dev)), `${dev} was not pruned`);
    }
  });

  it("assembles the runtime stage and measures it", (t) => {
    const runtime = stages().get("runtime");
    assert.ok(runtime !== undefined, "Dockerfile.gpu has a stage named runtime");
    mkdirSync(appDir);
    for (const { keyword, args } of runtime) {
      if (keyword === "ENV") for (const [name, value] of envPairs(args)) runtimeEnv[name] = value;
      const from = /^--from=build\s+(\S+)\s+(\S+)$/.exec(args);
      if (keyword === "COPY" && from !== null && from[1]?.startsWith("/app/")) {
        cpSync(
          path.join(buildDir, from[1].slice("/app/".length)),
          path.join(appDir, path.basename(from[1])),
          {
            recursive: true,
          },
        );
      }
    }
    assert.deepEqual(readdirSync(appDir).sort(), ["dist", "node_modules", "package.json"]);
    const sizes = {
      node_modules: sizeOf(path.join(appDir, "node_modules")),
      "node_modules/@node-llama-cpp": sizeOf(path.join(appDir, "node_modules", "@node-llama-cpp")),
      dist: sizeOf(path.join(appDir, "dist")),
      node: statSync(process.execPath).size,
    };
    for (const [name, bytes] of Object.entries(sizes)) t.diagnostic(`${name}: ${mb(bytes)}`);
    t.diagnostic(
      `app layers in all (node_modules + dist + package.json): ${mb(sizes.node_modules + sizes.dist)}`,
    );
  });

  it("starts with the image's command, passes its HEALTHCHECK and serves a job", {
    timeout: 180_000,
  }, async () => {
    const runtime = stages().get("runtime") ?? [];
    const cmd = JSON.parse(runtime.find((i) => i.keyword === "CMD")?.args ?? "[]") as string[];
    const health = runtime.find((i) => i.keyword === "HEALTHCHECK")?.args ?? "";
    const healthCmd = JSON.parse(/CMD\s+(\[.*\])$/.exec(health)?.[1] ?? "[]") as string[];
    assert.equal(cmd[0], "node");
    assert.equal(healthCmd[0], "node");
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: os.homedir(),
      ...runtimeEnv,
      // What only the container has: a GPU, /app, the volume.
      LLAMA_GPU: "off",
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      HF_HOME: path.join(work, "hf"),
      PORT: String(port),
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      MODELS: `tiny=${await tinyModelPath()}`,
      ENCRYPTION_KEY: key,
      LLAMA_THREADS: "1",
    };
    assert.equal(env.NODE_ENV, "production");
    launcher = spawn(process.execPath, cmd.slice(1), {
      cwd: appDir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [launcher.stdout, launcher.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", (text: string) => logs.push(text));
    }
    check = (part: string, more: Record<string, string> = {}) =>
      spawnSync(process.execPath, [...healthCmd.slice(1, -1), part], {
        cwd: appDir,
        env: { ...env, ...more },
        encoding: "utf8",
      });
    startEnv = env;
    const deadline = Date.now() + 90_000;
    while (check("api").status !== 0 || check("gpu-worker").status !== 0) {
      assert.equal(launcher.exitCode, null, `the image's command exited:\n${logs.join("")}`);
      assert.ok(Date.now() < deadline, `not healthy within 90 s:\n${logs.join("")}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const client = execFileSync(
      process.execPath,
      ["dist/client/cli/main.js", "--max-tokens", "16", "Once upon a time"],
      { cwd: appDir, env: { ...env, POOL_URL: `http://127.0.0.1:${port}` }, encoding: "utf8" },
    );
    assert.ok(client.trim().length > 0, "the client printed the generated text");
    assert.ok(!logs.join("").includes(key), "the key is never logged");
  });

  it("its health check fails for a part that is down, and knows the dashboard and RunPod mode", {
    timeout: 120_000,
  }, async () => {
    const down = check("api", { PORT: String(await freePort()) });
    assert.equal(down.status, 1);
    assert.match(down.stderr, /^unhealthy: /);
    const notServed = check("gpu-worker", { MODELS: "other=/models/other.gguf" });
    assert.equal(notServed.status, 1);
    assert.match(notServed.stderr, /not ready: other/);
    // RunPod mode serves no local API: the platform's heartbeat is the health signal.
    const runpod = check("api", {
      PORT: String(await freePort()),
      RUNPOD_WEBHOOK_GET_JOB: "http://127.0.0.1:9/job-take/$RUNPOD_POD_ID",
      RUNPOD_WEBHOOK_POST_OUTPUT: "http://127.0.0.1:9/job-done/$RUNPOD_POD_ID/$ID",
    });
    assert.equal(runpod.status, 0, runpod.stderr);

    const dashboardPort = String(await freePort());
    const dashboardEnv = { ...startEnv, DASHBOARD_PORT: dashboardPort, ENCRYPTION_KEY: "" };
    const dashboard = spawn(process.execPath, ["dist/orchestrator/dashboard/main.js"], {
      cwd: appDir,
      env: dashboardEnv,
      stdio: "ignore",
    });
    try {
      const deadline = Date.now() + 60_000;
      while (check("dashboard", dashboardEnv).status !== 0) {
        assert.equal(dashboard.exitCode, null, "the dashboard exited");
        assert.ok(Date.now() < deadline, "the dashboard was not healthy within 60 s");
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    } finally {
      const exited = new Promise((resolve) => dashboard.once("exit", resolve));
      dashboard.kill("SIGTERM");
      await exited;
    }
  });

  it("stops on SIGTERM with exit code 0", { timeout: 60_000 }, async () => {
    assert.ok(launcher !== undefined);
    const exited = new Promise<number | null>((resolve) =>
      launcher?.once("exit", (code) => resolve(code)),
    );
    launcher.kill("SIGTERM");
    assert.equal(await exited, 0, logs.join(""));
  });
});
