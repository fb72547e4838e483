#!/usr/bin/env node
// Applies this project's patches to installed dependencies. Runs as the root package's
// `postinstall`, so every install path (`npm ci` in a fresh clone, the Docker image's build) gets
// them; plain JavaScript with no dependencies, because it runs before anything is built.
//
// A patch names the exact version it was written for and the exact text it replaces. Applying is
// idempotent (an applied patch is recognised by its marker); a dependency at another version, or
// whose text is not found, fails the install with a message that says what to do, instead of
// running with the bug silently back.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { patches } from "./patches.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Applies every patch; returns the lines to print. Throws on the first patch that cannot apply. */
export function applyPatches() {
  const lines = [];
  for (const patch of patches) {
    const packageDir = path.join(root, "node_modules", patch.package);
    const { version } = JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8"));
    if (version !== patch.version) {
      throw new Error(
        `patch "${patch.name}" is for ${patch.package}@${patch.version}, but ${version} is installed: ` +
          "check whether the new version still needs it, then update or remove it in patches/patches.mjs",
      );
    }
    const file = path.join(packageDir, patch.file);
    const text = readFileSync(file, "utf8");
    if (text.includes(patch.marker)) {
      lines.push(`patch "${patch.name}" already applied to ${patch.package}@${version}`);
      continue;
    }
    // A patch is one edit (`find`/`replace`) or several (`edits`), each found exactly once before
    // any is written.
    const edits = patch.edits ?? [{ find: patch.find, replace: patch.replace }];
    let patched = text;
    for (const [index, edit] of edits.entries()) {
      const at = patched.indexOf(edit.find);
      if (at < 0 || patched.indexOf(edit.find, at + 1) >= 0) {
        const which = edits.length > 1 ? ` (edit ${index + 1} of ${edits.length})` : "";
        throw new Error(
          `patch "${patch.name}"${which}: the text to replace was not found exactly once in ${patch.package}/${patch.file}`,
        );
      }
      patched = patched.slice(0, at) + edit.replace + patched.slice(at + edit.find.length);
    }
    writeFileSync(file, patched);
    lines.push(`patch "${patch.name}" applied to ${patch.package}@${version}`);
  }
  return lines;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    for (const line of applyPatches()) process.stdout.write(`${line}\n`);
  } catch (error) {
    process.stderr.write(`patches: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
