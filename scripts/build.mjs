#!/usr/bin/env node
/**
 * Compiles the TypeScript sources into dist/ (tsc, incremental). `node scripts/build.mjs` always
 * compiles (`npm run build`, `npm test`: they type-check); with `--if-stale` it compiles only when
 * a source changed since the last build (`npm start`, `npm run client`, `generate-key`), so a
 * second call costs a directory walk instead of a compile. Plain JavaScript: it runs before
 * anything is built.
 *
 * "Changed" means the list of sources or any file's size or mtime differs from the stamp written
 * by the last successful build (a renamed, deleted, restored or checked-out file counts too).
 * Everything it prints goes to stderr, so `npm run --silent generate-key` prints only the key.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stampFile = path.join(root, "dist", ".build-stamp.json");

/** Every input of the build: tsconfig's include folders' .ts files, and the files tsc reads. */
function sourceState() {
  const tsconfig = JSON.parse(readFileSync(path.join(root, "tsconfig.json"), "utf8"));
  const files = ["tsconfig.json", "package.json", "package-lock.json"];
  const walk = (dir) => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const relative = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(relative);
      else if (entry.name.endsWith(".ts")) files.push(relative);
    }
  };
  for (const dir of tsconfig.include) if (existsSync(path.join(root, dir))) walk(dir);
  const state = {};
  for (const file of files.sort()) {
    const full = path.join(root, file);
    if (!existsSync(full)) continue;
    const stat = statSync(full);
    state[file] = `${stat.size}:${Math.floor(stat.mtimeMs)}`;
  }
  return state;
}

function isStale(state) {
  if (!existsSync(stampFile) || !existsSync(path.join(root, "dist", ".tsbuildinfo"))) return true;
  try {
    const stamp = JSON.parse(readFileSync(stampFile, "utf8"));
    const keys = Object.keys(state);
    return (
      keys.length !== Object.keys(stamp).length || keys.some((key) => stamp[key] !== state[key])
    );
  } catch {
    return true;
  }
}

const ifStale = process.argv.includes("--if-stale");
const state = sourceState();
if (ifStale && !isStale(state)) process.exit(0);

if (ifStale) process.stderr.write("building… (compiling the TypeScript sources into dist/)\n");
const started = Date.now();
const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
// tsc reports errors on stdout: send them to stderr with the rest.
const result = spawnSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.json")], {
  stdio: ["ignore", 2, 2],
});
if (result.status !== 0) {
  process.stderr.write(`build failed (tsc exit code ${result.status ?? result.signal})\n`);
  process.exit(result.status ?? 1);
}
writeFileSync(stampFile, `${JSON.stringify(state)}\n`);
if (ifStale) process.stderr.write(`built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
