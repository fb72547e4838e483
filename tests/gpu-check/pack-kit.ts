/**
 * `npm run gpu-check:pack`: packs the GPU check kit into `.gpu-check-kit/` (ignored by git) and
 * prints the device tool call that runs it. The kit holds Node's binary, the project's built
 * output with its production dependencies (no prebuilt llama.cpp binaries), llama.cpp's source
 * (the part node-llama-cpp builds, from the git bundle node-llama-cpp ships), a redis-server with
 * the libraries it links, and the entry script. Everything that travels with a device run (the
 * kit and the repository's own files) must stay under 64 MiB: the packer fails when it does not.
 *
 *   npm run gpu-check:pack [-- --out DIR] [-- --parts node,app,llama.cpp,redis]
 */
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  DEVICE_LIMITS,
  deviceCall,
  KIT_DIR,
  KIT_FILES,
  LEFT_BEHIND_FILES,
  LEFT_BEHIND_PACKAGES,
  LLAMA_CPP_SOURCE_PATHS,
} from "./kit-layout.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const { values } = parseArgs({
  options: { out: { type: "string", default: KIT_DIR }, parts: { type: "string" } },
});
const allParts = ["node", "app", "llama.cpp", "redis"];
/** `--parts app,redis` repacks those parts of an existing kit (after a code change, say). */
const parts = values.parts?.split(",") ?? allParts;
const unknownPart = parts.find((part) => !allParts.includes(part));
if (unknownPart !== undefined)
  throw new Error(`--parts: no part "${unknownPart}" (${allParts.join(", ")})`);
const kit = path.resolve(root, values.out);
const sources = path.join(root, "tests", "gpu-check");
const MiB = 2 ** 20;

/** Runs a shell pipeline in the repository root; its output goes to this process's. */
function sh(script: string, cwd = root): void {
  execFileSync("bash", ["-o", "pipefail", "-c", script], { cwd, stdio: "inherit" });
}

function output(file: string, args: string[], cwd = root): string {
  return execFileSync(file, args, { cwd, encoding: "utf8", maxBuffer: 64 * MiB });
}

const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

async function packNode(): Promise<void> {
  sh(`xz -T0 -6 -c ${quote(process.execPath)} > ${quote(path.join(kit, "node.xz"))}`);
}

/** The built output, the sources and the production dependencies, as `npm ls` lists them. */
async function packApp(): Promise<void> {
  await stat(path.join(root, "dist", "tests", "gpu-check", "gpu-check.js")).catch(() => {
    throw new Error("dist/ lacks the GPU check: run `npm run build` first");
  });
  const packages = output("npm", ["ls", "--omit=dev", "--all", "--parseable"])
    .split("\n")
    .map((line) => path.relative(root, line.trim()))
    .filter((line) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(line))
    .filter((line) => !LEFT_BEHIND_PACKAGES.some((pattern) => pattern.test(line)));
  const excludes = LEFT_BEHIND_FILES.map((pattern) => `--exclude=${quote(pattern)}`).join(" ");
  // The sources too, as in the image: the package root is found by its `shared/` folder, and
  // stack traces point into them through the source maps.
  const tsconfig = JSON.parse(await readFile(path.join(root, "tsconfig.json"), "utf8")) as {
    include: string[];
  };
  const paths = ["package.json", "tsconfig.json", ...tsconfig.include, "dist", ...new Set(packages)]
    .map(quote)
    .join(" ");
  sh(`tar -cf - ${excludes} ${paths} | xz -T0 -6 > ${quote(path.join(kit, "app.tar.xz"))}`);
}

/** llama.cpp's source, from the git bundle that node-llama-cpp would clone it from. */
async function packLlamaCpp(temp: string): Promise<void> {
  const bundle = path.join(root, "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle");
  const clone = path.join(temp, "llama.cpp");
  output("git", ["clone", "--quiet", "--no-checkout", bundle, clone]);
  sh(
    `git archive --format=tar HEAD ${LLAMA_CPP_SOURCE_PATHS.map(quote).join(" ")} | xz -T0 -6 > ${quote(path.join(kit, "llama.cpp.tar.xz"))}`,
    clone,
  );
}

/**
 * redis-server with every library it links, the C library and its loader included: the entry
 * script starts it through that loader, so it runs whatever C library the GPU machine has.
 */
async function packRedis(temp: string): Promise<void> {
  const server = output("bash", ["-c", "command -v redis-server"]).trim();
  if (server === "") throw new Error("no redis-server here to pack (apt-get install redis-server)");
  const folder = path.join(temp, "redis");
  await mkdir(path.join(folder, "lib"), { recursive: true });
  await copyFile(server, path.join(folder, "redis-server"));
  for (const line of output("ldd", [server]).split("\n")) {
    // "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const library = /=> (\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+) \(/.exec(line)?.[1];
    if (library === undefined) continue;
    await copyFile(library, path.join(folder, "lib", path.basename(library)));
  }
  sh(`tar -cf - . | xz -T0 -6 > ${quote(path.join(kit, "redis.tar.xz"))}`, folder);
}

/** Bytes of the repository's own files that travel with every device run. */
async function travellingTreeBytes(): Promise<number> {
  const files = output("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    .split("\0")
    .filter(Boolean);
  let bytes = 0;
  for (const file of files)
    bytes += (await stat(path.join(root, file)).catch(() => undefined))?.size ?? 0;
  return bytes;
}

async function main(): Promise<void> {
  const start = performance.now();
  if (values.parts === undefined) await rm(kit, { recursive: true, force: true });
  await mkdir(kit, { recursive: true });
  const temp = await mkdtemp(path.join(os.tmpdir(), "gpu-check-pack-"));
  try {
    for (const [name, pack] of [
      ["node", packNode],
      ["app", packApp],
      ["llama.cpp", () => packLlamaCpp(temp)],
      ["redis", () => packRedis(temp)],
    ] as const) {
      if (!parts.includes(name)) continue;
      const begun = performance.now();
      await pack();
      process.stdout.write(
        `packed ${name} in ${((performance.now() - begun) / 1000).toFixed(1)} s\n`,
      );
    }
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  await copyFile(path.join(sources, "run-kit.sh"), path.join(kit, "run.sh"));
  // The image's cuda-build stage uses the same shim.
  await copyFile(path.join(root, "docker", "npm-shim.sh"), path.join(kit, "npm-shim.sh"));

  const sizes: Record<string, number> = {};
  for (const file of await readdir(kit)) sizes[file] = (await stat(path.join(kit, file))).size;
  const kitBytes = Object.values(sizes).reduce((sum, size) => sum + size, 0);
  const treeBytes = await travellingTreeBytes();
  const commit = output("git", ["rev-parse", "--short", "HEAD"]).trim();
  const manifest = { packedAt: new Date().toISOString(), commit, node: process.version, sizes };
  await writeFile(path.join(kit, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  const missing = KIT_FILES.filter((file) => !(file in sizes) && file !== "manifest.json");
  if (missing.length > 0) throw new Error(`the kit lacks ${missing.join(", ")}`);

  const total = kitBytes + treeBytes;
  const lines = [
    ...Object.entries(sizes).map(
      ([file, size]) => `  ${file.padEnd(18)} ${(size / MiB).toFixed(1)} MiB`,
    ),
    `kit: ${(kitBytes / MiB).toFixed(1)} MiB in ${path.relative(root, kit)}/; the repository's own files: ${(treeBytes / MiB).toFixed(1)} MiB; together ${(total / MiB).toFixed(1)} of ${DEVICE_LIMITS.travelBytes / MiB} MiB (packed in ${((performance.now() - start) / 1000).toFixed(0)} s)`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  if (total > DEVICE_LIMITS.travelBytes) {
    throw new Error("the kit and the repository together exceed what a device run carries");
  }
  const call = deviceCall(path.relative(root, kit));
  process.stdout.write(
    [
      "",
      "Run it on the GPU machine with the device tool's `run` (from the checkout this kit is in):",
      JSON.stringify(call, null, 2),
      "",
      "Dry run here, on the CPU (every step but the GPU; a CPU build takes far longer than 560 s):",
      `  OUT=/tmp/gpu-check-out bash ${path.relative(root, kit)}/run.sh --gpu off --big small --runs 1 --time-limit 5400`,
      "",
    ].join("\n"),
  );
}

await main();
