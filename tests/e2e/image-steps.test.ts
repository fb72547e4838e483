/**
 * The image's steps, run outside Docker (no Docker engine here): the build stage of Dockerfile.gpu
 * is read from the file and replayed in a clean temporary folder (its COPY, ENV and RUN lines, in
 * order: `npm ci`, build, `npm prune --omit=dev`, the binary pruning); the cuda-build stage is
 * replayed up to the CUDA compiler, which is not here (node-llama-cpp clones its llama.cpp source
 * for real; its build runs with the npm shim printing the cmake-js command lines instead of running
 * them, so the test reads the architectures, options and output folder the image's build uses, and
 * sees node-llama-cpp fail for want of a compiled result); the runtime stage's COPY lines assemble
 * the app folder, and the image's CMD starts it with the runtime ENV (less what needs the
 * container: the GPU, /app). The result must pass the image's HEALTHCHECK and serve a job to the
 * reference client, and stop cleanly on SIGTERM. What the image holds is measured (the sizes go to
 * the test's diagnostics; docs/deployment.md quotes them).
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
import { waitFor } from "../support/wait-for.js";

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

/** The default values of the ARGs declared before the first stage. */
function globalArgs(): Record<string, string> {
  const args: Record<string, string> = {};
  for (const { keyword, args: text } of instructions(dockerfile)) {
    if (keyword === "FROM") break;
    if (keyword === "ARG") for (const [name, value] of envPairs(text)) args[name] = value;
  }
  return args;
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
  const cudaAppDir = path.join(work, "cuda-build");
  /** The cmake-js compile command line the cuda-build stage's build would run. */
  let compileArgs: string[] = [];
  /** The cuda-build stage's instructions after its build. */
  let afterBuild: { keyword: string; args: string }[] = [];
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
    // Only the CPU build is kept prebuilt: the CUDA backend comes from the cuda-build stage.
    const scope = path.join(buildDir, "node_modules", "@node-llama-cpp");
    assert.deepEqual(readdirSync(scope).sort(), ["linux-x64"]);
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

  it("replays the cuda-build stage up to the CUDA compiler: source, command line, output", {
    timeout: 600_000,
  }, (t) => {
    const cudaBuild = stages().get("cuda-build");
    assert.ok(cudaBuild !== undefined, "Dockerfile.gpu has a stage named cuda-build");
    // The stage's /app, and a folder standing for the root of its file system.
    mkdirSync(cudaAppDir);
    const fsRoot = path.join(work, "cuda-root");
    const local = (target: string) =>
      target === "/app" || target.startsWith("/app/")
        ? path.join(cudaAppDir, target.slice("/app".length))
        : path.join(fsRoot, target);
    const global = globalArgs();
    const env: Record<string, string> = {
      PATH: `${path.join(fsRoot, "usr", "local", "bin")}:${process.env.PATH ?? ""}`,
      HOME: os.homedir(),
    };
    const expand = (value: string) =>
      value.replace(/\$\{(\w+)\}/g, (_, name: string) => env[name] ?? "");
    let cwd = cudaAppDir;
    const remaining = [...cudaBuild];
    while (remaining.length > 0) {
      const { keyword, args } = remaining.shift() ?? { keyword: "", args: "" };
      if (keyword === "ARG") {
        for (const [name, value] of envPairs(args)) env[name] = value || (global[name] ?? "");
      } else if (keyword === "ENV") {
        for (const [name, value] of envPairs(args)) {
          env[name] = expand(value) === "/app" ? cudaAppDir : expand(value);
        }
      } else if (keyword === "WORKDIR") {
        cwd = local(args);
        mkdirSync(cwd, { recursive: true });
      } else if (keyword === "COPY") {
        const parts = args.split(/\s+/).filter((part) => !part.startsWith("--chmod="));
        const target = parts.pop() ?? "";
        const from = parts[0]?.startsWith("--from=") ? parts.shift()?.slice("--from=".length) : "";
        for (const source of parts) {
          // This process's own node stands for the build stage's.
          if (from === "build" && source === "/usr/local/bin/node") continue;
          const origin =
            from === "build"
              ? path.join(buildDir, source.slice("/app/".length))
              : path.join(root, source);
          const into = target.startsWith("/") ? local(target) : path.join(cwd, target);
          mkdirSync(target.endsWith("/") ? into : path.dirname(into), { recursive: true });
          cpSync(origin, target.endsWith("/") ? path.join(into, path.basename(source)) : into, {
            recursive: true,
          });
        }
      } else if (keyword === "RUN" && args.startsWith("apt-get ")) {
        // The packages it installs are this machine's tools.
        const installed = /apt-get install [^&]*/.exec(args)?.[0].split(/\s+/) ?? [];
        for (const tool of ["cmake", "g++", "make", "git"]) {
          assert.ok(installed.includes(tool), `the stage does not install ${tool}`);
          assert.equal(spawnSync("sh", ["-c", `command -v ${tool}`]).status, 0, `no ${tool} here`);
        }
      } else if (keyword === "RUN" && args.includes(" source download ")) {
        const result = spawnSync("sh", ["-c", args], { cwd, env, encoding: "utf8" });
        assert.equal(result.status, 0, `RUN ${args} failed:\n${result.stdout}\n${result.stderr}`);
      } else if (keyword === "RUN" && args.includes(" source build ")) {
        // The build: the shim prints what it would compile with; nothing is compiled.
        const started = Date.now();
        const result = spawnSync("sh", ["-c", args], {
          cwd,
          env: { ...env, LLAMA_BUILD_PRINT_ONLY: "1" },
          encoding: "utf8",
        });
        t.diagnostic(`RUN ${args.slice(0, 60)}… ${((Date.now() - started) / 1000).toFixed(1)} s`);
        const output = `${result.stdout}\n${result.stderr}`;
        assert.notEqual(result.status, 0, "the build cannot succeed without a CUDA compiler");
        assert.match(output, /Could not find Release directory/);
        compileArgs = (/^cmake-js compile (.*)$/m.exec(result.stdout)?.[1] ?? "").split(" ");
        assert.ok(compileArgs.length > 5, output);
        break;
      } else if (keyword === "RUN") assert.fail(`an unexpected RUN before the build: ${args}`);
    }
    afterBuild = remaining;
  });

  it("builds node-llama-cpp's own llama.cpp source, patched as node-llama-cpp patches it", () => {
    const llama = path.join(cudaAppDir, "node_modules", "node-llama-cpp", "llama");
    assert.ok(existsSync(path.join(llama, "llama.cpp", ".git")), "the source was cloned");
    const info = JSON.parse(readFileSync(path.join(llama, "llama.cpp.info.json"), "utf8"));
    const shipped = JSON.parse(
      readFileSync(path.join(llama, "binariesGithubRelease.json"), "utf8"),
    );
    assert.equal(info.tag, shipped.release, "the release node-llama-cpp's binaries are built from");
    const patches = readdirSync(path.join(llama, "patches")).filter((name) =>
      name.endsWith(".diff"),
    );
    assert.ok(patches.length > 0);
    for (const patch of patches) {
      const reverse = spawnSync(
        "git",
        [
          "apply",
          "--check",
          "--reverse",
          "--ignore-whitespace",
          path.join(llama, "patches", patch),
        ],
        { cwd: path.join(llama, "llama.cpp"), encoding: "utf8" },
      );
      assert.equal(reverse.status, 0, `${patch} is not applied: ${reverse.stderr}`);
    }
  });

  it("compiles for the ARG's architectures, portable CPU code, into the folder getLlama loads", () => {
    const defines = new Map<string, string>();
    for (const arg of compileArgs) {
      const define = /^--CD([^=]+)=(.*)$/.exec(arg);
      // cmake-js keeps the last value of a key.
      if (define !== null) defines.set(define[1] ?? "", define[2] ?? "");
    }
    assert.equal(defines.get("CMAKE_CUDA_ARCHITECTURES"), globalArgs().CUDA_ARCHITECTURES);
    assert.equal(defines.get("GGML_CUDA"), "1");
    assert.equal(defines.get("GGML_NATIVE"), "OFF", "no -march=native of the builder's CPU");
    assert.equal(defines.get("GGML_OPENMP"), "OFF");
    // LLAMA_BUILD_JOBS is empty: one job per core.
    const cores = execFileSync("nproc", { encoding: "utf8" }).trim();
    assert.ok(compileArgs.includes(`--parallel=${cores}`), compileArgs.join(" "));
    // node-llama-cpp names the folder after the build's platform, architecture and GPU, and after
    // custom cmake options, of which it was given none (the shim's defines are not its options).
    const out = compileArgs[compileArgs.indexOf("--out") + 1];
    assert.equal(out, "localBuilds/linux-x64-cuda");
    // The check and the copy after the build take that folder to the same place in the runtime.
    const [workdir, check] = afterBuild;
    assert.deepEqual(workdir, {
      keyword: "WORKDIR",
      args: "/app/node_modules/node-llama-cpp/llama/localBuilds",
    });
    assert.match(check?.args ?? "", /^node \S+check-cuda-build\.mjs linux-x64-cuda /);
    assert.match(
      check?.args ?? "",
      /cp -a linux-x64-cuda\/Release linux-x64-cuda\/buildDone\.status \/llama-cuda\/linux-x64-cuda\/$/,
    );
    const runtime = stages().get("runtime") ?? [];
    assert.ok(
      runtime.some(
        (i) =>
          i.keyword === "COPY" &&
          i.args ===
            "--from=cuda-build /llama-cuda/ ./node_modules/node-llama-cpp/llama/localBuilds/",
      ),
      "the runtime stage takes the build into node-llama-cpp's localBuilds",
    );
    // At run time node-llama-cpp looks for the folder named with the custom cmake options it reads
    // from the environment: the image sets none.
    const runtimeNames = runtime
      .filter((i) => i.keyword === "ENV")
      .flatMap((i) => envPairs(i.args).map(([name]) => name));
    assert.deepEqual(
      runtimeNames.filter((name) => /^(NODE_LLAMA_CPP_CMAKE_OPTION_|GGML_)/.test(name)),
      [],
    );
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
    const started = spawn(process.execPath, cmd.slice(1), {
      cwd: appDir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    launcher = started;
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
    await waitFor(
      () => {
        assert.equal(started.exitCode, null, "the image's command exited");
        return check("api").status === 0 && check("gpu-worker").status === 0;
      },
      90_000,
      "both parts to be healthy",
      500,
    ).catch((error: Error) => assert.fail(`${error.message}:\n${logs.join("")}`));
    const client = execFileSync(
      process.execPath,
      // Greedy: a sampled text of the random demo model may end at its first token.
      ["dist/client/cli/main.js", "--max-tokens", "16", "--temperature", "0", "Once upon a time"],
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
      await waitFor(
        () => {
          assert.equal(dashboard.exitCode, null, "the dashboard exited");
          return check("dashboard", dashboardEnv).status === 0;
        },
        60_000,
        "the dashboard to be healthy",
        500,
      );
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
