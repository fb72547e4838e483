/**
 * The image and the compose file cannot be built here (no Docker engine), so what can drift is
 * checked against the code: the image copies every source folder, and every command names a real
 * entry point.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../shared/paths.js";

const root = packageRoot();
const read = (file: string) => readFileSync(path.join(root, file), "utf8");

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
