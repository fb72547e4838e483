/**
 * The image and the compose file cannot be built here (no Docker engine), so they are checked by
 * every means that runs here: what can drift is checked against the code (the image copies every
 * source folder, every command names a real entry point); Debian's `docker-compose` validates and
 * merges the compose files; `dockerfile-utils` (the Dockerfile validator of VS Code's Docker
 * support, from npm) lints the Dockerfile, and the rules hadolint would apply that matter here
 * (non-root user, health check, labels, pinned bases, apt hygiene, justified suppressions) are
 * checked below. The image's steps themselves run in tests/e2e/image-steps.test.ts.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { packageRoot } from "../../shared/paths.js";

const root = packageRoot();
const read = (file: string) => readFileSync(path.join(root, file), "utf8");

interface ComposeService {
  profiles?: string[];
  healthcheck?: { test?: string[] };
  deploy?: unknown;
  environment?: Record<string, string | null>;
  [key: string]: unknown;
}

/** The python3 that runs Debian's docker-compose (it has PyYAML), from the script's #! line. */
function composePython(): string | undefined {
  const which = spawnSync("sh", ["-c", "command -v docker-compose"], { encoding: "utf8" });
  const script = which.stdout.trim();
  if (which.status !== 0 || script === "") return undefined;
  const shebang = /^#!\s*(\S+)/.exec(readFileSync(script, "utf8").slice(0, 200))?.[1];
  return shebang?.includes("python") ? shebang : undefined;
}
const python = composePython();

const emptyEnvFile = path.join(
  mkdtempSync(path.join(os.tmpdir(), "llmpool-compose-")),
  "empty.env",
);
writeFileSync(emptyEnvFile, "");
after(() => rmSync(path.dirname(emptyEnvFile), { recursive: true, force: true }));

/** `docker-compose config` of the given files, as an object (YAML read by compose's own PyYAML). */
function composeConfig(...files: string[]): { services: Record<string, ComposeService> } {
  const yaml = execFileSync(
    "docker-compose",
    [
      // Not the developer's own .env: the files' defaults are what is checked.
      "--env-file",
      emptyEnvFile,
      ...files.flatMap((file) => ["-f", file]),
      "config",
    ],
    {
      cwd: root,
      encoding: "utf8",
      // A value for the required key; nothing else, so the defaults of the files are what is seen.
      env: { PATH: process.env.PATH ?? "", ENCRYPTION_KEY: "a-test-value" },
    },
  );
  const json = execFileSync(
    python ?? "python3",
    ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"],
    { input: yaml, encoding: "utf8" },
  );
  return JSON.parse(json) as { services: Record<string, ComposeService> };
}

describe("deployment files", () => {
  it("Dockerfile.gpu copies every folder the build compiles", () => {
    const tsconfig = JSON.parse(read("tsconfig.json")) as { include: string[] };
    const dockerfile = read("Dockerfile.gpu");
    const copied = [...dockerfile.matchAll(/^COPY (\S+) \.\/\1$/gm)]
      .map((match) => match[1])
      .filter((folder) => folder !== "patches");
    assert.deepEqual([...copied].sort(), [...tsconfig.include].sort());
    for (const file of ["package.json", "package-lock.json", "tsconfig.json"]) {
      assert.match(dockerfile, new RegExp(`^COPY .*\\b${file.replace(".", "\\.")}\\b`, "m"));
    }
  });

  it("Dockerfile.gpu has the dependency patches in place before npm ci runs its postinstall", () => {
    const dockerfile = read("Dockerfile.gpu");
    const patches = dockerfile.indexOf("COPY patches ./patches");
    assert.ok(patches >= 0, "patches/ is not copied");
    assert.ok(patches < dockerfile.indexOf("RUN npm ci"), "patches/ is copied after npm ci");
  });

  it("every command of the image and the compose file runs an entry point that is built", () => {
    const commands = [
      ...read("Dockerfile.gpu").matchAll(/"(dist\/[^"]+\.js)"/g),
      ...read("docker-compose.yml").matchAll(/"(dist\/[^"]+\.js)"/g),
    ].map((match) => match[1] ?? "");
    assert.ok(commands.length >= 4, `found ${commands.join(", ")}`);
    for (const command of commands) {
      assert.ok(existsSync(path.join(root, command)), `${command} is not built`);
    }
  });

  it("the compose file requires ENCRYPTION_KEY and keeps it from the dashboard", () => {
    const compose = read("docker-compose.yml");
    assert.match(compose, /ENCRYPTION_KEY: \$\{ENCRYPTION_KEY:\?/);
    const dashboard = compose.slice(compose.indexOf("\n  dashboard:"));
    assert.match(dashboard, /ENCRYPTION_KEY: ""/);
  });
});

describe("docker-compose config", {
  skip:
    python === undefined
      ? "docker-compose (Debian's) is not installed: apt-get install docker-compose"
      : false,
}, () => {
  const main = () => composeConfig("docker-compose.yml");
  const cpu = () => composeConfig("docker-compose.yml", "docker-compose.cpu.yml");
  const started = (services: Record<string, ComposeService>) =>
    Object.entries(services)
      .filter(([, service]) => (service.profiles ?? []).length === 0)
      .map(([name]) => name)
      .sort();

  it("accepts the compose file; every service has a health check", () => {
    const { services } = main();
    assert.deepEqual(started(services), ["dashboard", "gpu-worker", "orchestrator", "redis"]);
    for (const [name, service] of Object.entries(services)) {
      assert.ok((service.healthcheck?.test ?? []).length > 0, `${name} has no health check`);
    }
    assert.equal(services["gpu-worker"]?.environment?.LLAMA_GPU, "cuda");
  });

  it("accepts the CPU variant: the whole stack, no GPU asked for, every service checked", () => {
    const { services } = cpu();
    assert.deepEqual(started(services), ["cpu-worker", "dashboard", "orchestrator", "redis"]);
    for (const name of started(services)) {
      const service = services[name];
      assert.ok((service?.healthcheck?.test ?? []).length > 0, `${name} has no health check`);
      assert.equal(service?.deploy, undefined, `${name} reserves devices`);
    }
    assert.equal(services["cpu-worker"]?.environment?.LLAMA_GPU, "off");
  });

  it("cpu-worker is gpu-worker without the GPU (the two files cannot drift apart)", () => {
    const { services } = cpu();
    const strip = (service: ComposeService | undefined) => {
      const { deploy: _deploy, profiles: _profiles, environment = {}, ...rest } = service ?? {};
      const { LLAMA_GPU: _gpu, ...env } = environment;
      return { ...rest, environment: env };
    };
    assert.deepEqual(strip(services["cpu-worker"]), strip(services["gpu-worker"]));
  });

  it("passes every variable a part reads from .env, blank meaning the code's default", () => {
    const { services } = main();
    const environment = services["gpu-worker"]?.environment ?? {};
    for (const name of ["MODELS", "MODEL_SEQUENCES", "CONTEXT_SIZE", "HF_TOKEN", "LOG_LEVEL"]) {
      assert.ok(name in environment, `${name} does not reach the gpu-worker`);
      assert.ok(!environment[name], `${name} has a default of the compose file's own`);
    }
  });
});

describe("Dockerfile.gpu lint", () => {
  const dockerfile = read("Dockerfile.gpu");
  const lines = dockerfile.split("\n");

  it("dockerfile-utils finds no problem", () => {
    const cli = path.join(root, "node_modules", "dockerfile-utils", "bin", "dockerfile-utils");
    const output = execFileSync(process.execPath, [cli, "lint", "--json", "Dockerfile.gpu"], {
      cwd: root,
      encoding: "utf8",
    });
    assert.deepEqual(JSON.parse(output), []);
    // The linter does report problems (so the empty list above means something).
    const badFile = path.join(mkdtempSync(path.join(os.tmpdir(), "llmpool-lint-")), "Dockerfile");
    writeFileSync(badFile, "FROM node:24\nmaintainer someone\nENV ONLY_A_NAME\n");
    const bad = spawnSync(process.execPath, [cli, "lint", "--json", badFile], { encoding: "utf8" });
    rmSync(path.dirname(badFile), { recursive: true, force: true });
    assert.ok((JSON.parse(bad.stdout) as unknown[]).length >= 2, bad.stdout);
  });

  it("runs as a user of its own, set before the command, never root", () => {
    const users = [...dockerfile.matchAll(/^USER (\S+)$/gm)].map((match) => match[1]);
    assert.ok(users.length > 0, "no USER");
    assert.ok(!["root", "0", "0:0"].includes(users.at(-1) ?? ""), "the last USER is root");
    assert.ok(dockerfile.lastIndexOf("\nUSER ") < dockerfile.lastIndexOf("\nCMD "));
  });

  it("has a HEALTHCHECK, OCI labels and tagged, named stages", () => {
    assert.match(
      dockerfile,
      /^HEALTHCHECK (--\S+ )*\\?\s*CMD \["node", "dist\/scripts\/healthcheck\.js"/m,
    );
    for (const label of ["title", "description", "version", "base.name"]) {
      assert.match(
        dockerfile,
        new RegExp(`org\\.opencontainers\\.image\\.${label.replace(".", "\\.")}=`),
      );
    }
    const bases = [...dockerfile.matchAll(/^ARG (\w+_IMAGE)=(\S+)$/gm)].map(
      (match) => match[2] ?? "",
    );
    assert.equal(bases.length, 3);
    for (const image of bases) assert.match(image, /^[\w./-]+:[\w.-]+$/, `${image} has no tag`);
    for (const image of bases) assert.ok(!image.endsWith(":latest"), `${image} is :latest`);
    assert.deepEqual(
      [...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((match) => match[1]),
      ["build", "cuda-build", "runtime"],
    );
  });

  it("installs apt packages without recommends and removes the lists in the same layer", () => {
    const runs = dockerfile
      .split(/^RUN /m)
      .slice(1)
      .map((run) => run.split(/\n(?!\s)/)[0] ?? "");
    const apt = runs.filter((run) => run.includes("apt-get install"));
    assert.ok(apt.length > 0);
    for (const run of apt) {
      assert.match(run, /--no-install-recommends/);
      assert.match(run, /rm -rf \/var\/lib\/apt\/lists\/\*/);
      assert.match(run, /apt-get update/);
    }
  });

  it("justifies each suppression in a comment just above it", () => {
    lines.forEach((line, index) => {
      if (!/#\s*(hadolint ignore|dockerfile-utils: ignore)/.test(line)) return;
      const above = lines[index - 1] ?? "";
      assert.match(above, /^# \S/, `line ${index + 1}: "${line}" has no reason above it`);
    });
  });
});
