#!/usr/bin/env node
/**
 * Checks the CUDA backend that the image's cuda-build stage compiled (Dockerfile.gpu), before the
 * runtime stage takes it; nothing can run it on a GPU there, so what can be read from the files
 * is read:
 * - node-llama-cpp's local build is complete where `getLlama({build: "never", gpu: "cuda"})`
 *   looks (`Release/llama-addon.node`, `Release/_nlcBuildMetadata.json`, `buildDone.status`);
 * - `libggml-cuda.so` holds GPU code for exactly the architectures asked for: machine code (SASS)
 *   for each `NN-real`, PTX for each `NN-virtual` (read from its `.nv_fatbin` section);
 * - every library each binary needs is beside it, in the runtime base image or the host driver's
 *   (the base's contents are written down in docker/cuda-base-libraries.json), and no binary needs
 *   newer glibc or libstdc++ symbols than the base has.
 *
 *   node docker/check-cuda-build.mjs BUILD_FOLDER "80-real;86-real;..." docker/cuda-base-libraries.json
 *
 * Prints what it found; exits 1 with the problems. tests/unit/cuda-libraries.test.ts runs the same
 * functions on node-llama-cpp's prebuilt binaries. Needs `readelf` (binutils).
 */
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * A CMake `CUDA_ARCHITECTURES` list (`80-real;90-virtual;86`) as the architectures that get machine
 * code (`sass`) and those that get PTX (`ptx`); a plain number gets both, as in CMake.
 */
export function parseCudaArchitectures(list) {
  const sass = new Set();
  const ptx = new Set();
  for (const item of list.split(";")) {
    const match = /^(\d+)(-real|-virtual)?$/.exec(item.trim());
    if (match === null) throw new Error(`not a CUDA architecture: "${item}" in "${list}"`);
    const arch = Number(match[1]);
    if (match[2] !== "-virtual") sass.add(arch);
    if (match[2] !== "-real") ptx.add(arch);
  }
  return { sass: [...sass].sort((a, b) => a - b), ptx: [...ptx].sort((a, b) => a - b) };
}

/**
 * The architectures of the GPU code in an ELF file's `.nv_fatbin` section: each fatbin container
 * (magic 0xBA55ED50) holds entries of kind 1 (PTX) or 2 (an ELF cubin, i.e. SASS), each naming
 * its architecture (sm_XY as XY). `undefined` for a file with no such section.
 */
export function fatbinArchitectures(file) {
  const fd = openSync(file, "r");
  try {
    const read = (offset, length) => {
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, offset);
      return buffer;
    };
    const elf = read(0, 64);
    if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) throw new Error(`${file}: not ELF64`);
    const sectionsAt = Number(elf.readBigUInt64LE(0x28));
    const entrySize = elf.readUInt16LE(0x3a);
    const count = elf.readUInt16LE(0x3c);
    const namesIndex = elf.readUInt16LE(0x3e);
    const headers = read(sectionsAt, entrySize * count);
    const section = (index) => ({
      name: headers.readUInt32LE(index * entrySize),
      offset: Number(headers.readBigUInt64LE(index * entrySize + 24)),
      size: Number(headers.readBigUInt64LE(index * entrySize + 32)),
    });
    const names = section(namesIndex);
    const nameTable = read(names.offset, names.size);
    let fatbin;
    for (let index = 0; index < count; index++) {
      const candidate = section(index);
      const end = nameTable.indexOf(0, candidate.name);
      if (nameTable.toString("latin1", candidate.name, end) === ".nv_fatbin") fatbin = candidate;
    }
    if (fatbin === undefined) return undefined;
    const sass = new Set();
    const ptx = new Set();
    const end = fatbin.offset + fatbin.size;
    let at = fatbin.offset;
    while (at + 16 <= end) {
      const header = read(at, 16);
      if (header.readUInt32LE(0) !== 0xba55ed50) {
        at += 8; // containers are 8-byte aligned; padding between them is skipped
        continue;
      }
      const containerEnd = at + header.readUInt16LE(6) + Number(header.readBigUInt64LE(8));
      let entry = at + header.readUInt16LE(6);
      while (entry < containerEnd) {
        const fields = read(entry, 32);
        const kind = fields.readUInt16LE(0);
        const arch = fields.readUInt32LE(28);
        if (kind === 1) ptx.add(arch);
        else if (kind === 2) sass.add(arch);
        entry += fields.readUInt32LE(4) + Number(fields.readBigUInt64LE(8));
      }
      at = containerEnd;
    }
    return { sass: [...sass].sort((a, b) => a - b), ptx: [...ptx].sort((a, b) => a - b) };
  } finally {
    closeSync(fd);
  }
}

/** The `NEEDED` libraries of an ELF file (`readelf -d`). */
export function neededLibraries(file) {
  const text = execFileSync("readelf", ["-d", "-W", file], { encoding: "utf8" });
  return [...text.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] ?? "");
}

/** The highest version an ELF file needs of each symbol family (`GLIBC_2.34` → GLIBC: 2.34). */
export function versionNeeds(file) {
  const text = execFileSync("readelf", ["-V", "-W", file], { encoding: "utf8" });
  const highest = new Map();
  for (const match of text.matchAll(/Name: (GLIBC|GLIBCXX|CXXABI|GCC)_([\d.]+)/g)) {
    const [family, version] = [match[1] ?? "", match[2] ?? ""];
    const current = highest.get(family);
    if (current === undefined || compareVersions(version, current) > 0) {
      highest.set(family, version);
    }
  }
  return highest;
}

export function compareVersions(a, b) {
  const [x, y] = [a.split(".").map(Number), b.split(".").map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const difference = (x[i] ?? 0) - (y[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/**
 * Problems of the binaries `files` on the runtime base `base` (docker/cuda-base-libraries.json):
 * a needed library that is not beside the file (`beside`), in the base or the host driver's, or a
 * symbol version newer than the base's.
 */
export function linkProblems(files, beside, base) {
  const provided = new Set([
    ...Object.values(base.packages).flat(),
    ...Object.values(base.system).flat(),
    ...base.hostDriver,
  ]);
  const problems = [];
  for (const file of files) {
    const name = path.basename(file);
    for (const library of neededLibraries(file)) {
      if (!beside.has(library) && !provided.has(library)) {
        problems.push(`${name} needs ${library}, which the runtime base lacks`);
      }
    }
    for (const [family, version] of versionNeeds(file)) {
      const limit = base.symbolVersions[family];
      if (limit === undefined || compareVersions(version, limit) > 0) {
        problems.push(`${name} needs ${family}_${version} (the runtime base has ${limit})`);
      }
    }
  }
  return problems;
}

/** Every problem of the local build in `folder` (`localBuilds/linux-x64-cuda`). */
export function checkCudaBuild(folder, architectures, base) {
  const release = path.join(folder, "Release");
  const problems = [];
  for (const required of [
    path.join(release, "llama-addon.node"),
    path.join(release, "_nlcBuildMetadata.json"),
    path.join(folder, "buildDone.status"),
  ]) {
    if (!existsSync(required)) problems.push(`${path.relative(folder, required)} is missing`);
  }
  if (problems.length > 0) return { problems };
  const cuda = path.join(release, "libggml-cuda.so");
  const found = existsSync(cuda) ? fatbinArchitectures(cuda) : undefined;
  const wanted = parseCudaArchitectures(architectures);
  if (found === undefined) problems.push("Release/libggml-cuda.so holds no CUDA code");
  else {
    for (const kind of ["sass", "ptx"]) {
      if (found[kind].join(",") !== wanted[kind].join(",")) {
        problems.push(
          `libggml-cuda.so has ${kind.toUpperCase()} for [${found[kind].join(", ")}], not [${wanted[kind].join(", ")}]`,
        );
      }
    }
  }
  const names = readdirSync(release);
  const binaries = names.filter((name) => /\.(so|node)$/.test(name));
  problems.push(
    ...linkProblems(
      binaries.map((name) => path.join(release, name)),
      new Set(names),
      base,
    ),
  );
  return { problems, found, binaries };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [folder, architectures, baseFile] = process.argv.slice(2);
  if (folder === undefined || architectures === undefined || baseFile === undefined) {
    process.stderr.write("usage: check-cuda-build.mjs BUILD_FOLDER ARCHITECTURES BASE_JSON\n");
    process.exit(2);
  }
  const base = JSON.parse(readFileSync(baseFile, "utf8"));
  const { problems, found, binaries } = checkCudaBuild(folder, architectures, base);
  if (found !== undefined) {
    process.stdout.write(
      `libggml-cuda.so: SASS for sm_${found.sass.join(", sm_")}; PTX for compute_${found.ptx.join(", compute_")}\n`,
    );
  }
  if (binaries !== undefined) process.stdout.write(`binaries checked: ${binaries.join(", ")}\n`);
  if (problems.length > 0) {
    process.stderr.write(`the CUDA build is not fit for the image:\n- ${problems.join("\n- ")}\n`);
    process.exit(1);
  }
  process.stdout.write("the CUDA build is complete and links against the runtime base\n");
}
