/**
 * `scripts/build.mjs --if-stale` (behind `npm start`, `npm run client`, `generate-key`) compiles
 * once, then only after a source changed. Run on a small project of its own in a temporary folder,
 * with this package's TypeScript.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { packageRoot } from "../../shared/paths.js";

describe("build only when the sources changed", () => {
  const root = mkdtempSync(path.join(os.tmpdir(), "llmpool-build-"));
  after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(path.join(root, "scripts"));
  mkdirSync(path.join(root, "src"));
  copyFileSync(
    path.join(packageRoot(), "scripts", "build.mjs"),
    path.join(root, "scripts", "build.mjs"),
  );
  symlinkSync(path.join(packageRoot(), "node_modules"), path.join(root, "node_modules"), "dir");
  writeFileSync(path.join(root, "package.json"), '{"type": "module"}\n');
  writeFileSync(
    path.join(root, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        module: "NodeNext",
        strict: true,
        outDir: "dist",
        rootDir: ".",
        incremental: true,
        tsBuildInfoFile: "dist/.tsbuildinfo",
        types: [],
      },
      include: ["src"],
    }),
  );
  writeFileSync(path.join(root, "src", "a.ts"), "export const a: number = 1;\n");

  const build = (...args: string[]) => {
    const result = spawnSync(process.execPath, [path.join(root, "scripts", "build.mjs"), ...args], {
      encoding: "utf8",
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  };

  it("builds the first time, saying so on stderr only", () => {
    const first = build("--if-stale");
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /^building…/);
    assert.equal(first.stdout, "", "stdout stays clean (generate-key prints only the key)");
    assert.ok(existsSync(path.join(root, "dist", "src", "a.js")));
  });

  it("does nothing, silently, when nothing changed", () => {
    const again = build("--if-stale");
    assert.deepEqual(again, { status: 0, stdout: "", stderr: "" });
  });

  it("builds again after a change, and after a rename (the list of sources changed)", () => {
    writeFileSync(path.join(root, "src", "a.ts"), "export const a: number = 22;\n");
    assert.match(build("--if-stale").stderr, /^building…/);
    renameSync(path.join(root, "src", "a.ts"), path.join(root, "src", "c.ts"));
    assert.match(build("--if-stale").stderr, /^building…/);
    assert.ok(existsSync(path.join(root, "dist", "src", "c.js")));
  });

  it("fails with tsc's exit code, errors on stderr, and leaves the sources stale", () => {
    const stamp = path.join(root, "dist", ".build-stamp.json");
    const before = readFileSync(stamp, "utf8");
    writeFileSync(path.join(root, "src", "c.ts"), "export const a: number = 'text';\n");
    const broken = build("--if-stale");
    assert.notEqual(broken.status, 0);
    assert.match(broken.stderr, /TS2322/);
    assert.equal(broken.stdout, "");
    assert.equal(readFileSync(stamp, "utf8"), before, "a failed build writes no stamp");
  });

  it("always builds without --if-stale (npm run build, npm test)", () => {
    writeFileSync(path.join(root, "src", "c.ts"), "export const a: number = 3;\n");
    const always = build();
    assert.equal(always.status, 0, always.stderr);
    assert.deepEqual(build("--if-stale"), { status: 0, stdout: "", stderr: "" });
  });
});
