/**
 * Tiny generated GGUF models for tests, cached across test processes.
 */
import { createHash } from "node:crypto";
import { access } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  resolveTinyLlamaOptions,
  TINY_LLAMA_GENERATOR_VERSION,
  type TinyLlamaOptions,
  writeTinyLlamaGguf,
} from "../../gpu-worker/models/tiny-llama.js";

/** Shared by every test process on this machine; files are immutable once renamed into place. */
export const TEST_MODELS_DIR = path.join(os.tmpdir(), "secure-llm-pool-test-models");

const pending = new Map<string, Promise<string>>();

/**
 * Path of a tiny llama model with these options, generated on first use. Concurrent callers —
 * in this process or others — are safe: each writes a temp file and renames it into place, and
 * equal options produce equal bytes, so whichever rename wins leaves the same file.
 */
export function tinyModelPath(options: TinyLlamaOptions = {}): Promise<string> {
  const resolved = resolveTinyLlamaOptions(options);
  // The version is part of the key so a generator change never reuses a stale cached file.
  const key = JSON.stringify({ version: TINY_LLAMA_GENERATOR_VERSION, ...resolved });
  const hash = createHash("sha256").update(key).digest("hex").slice(0, 16);
  const filePath = path.join(TEST_MODELS_DIR, `tiny-llama-${hash}.gguf`);
  let result = pending.get(filePath);
  if (result === undefined) {
    result = ensureModel(filePath, resolved);
    pending.set(filePath, result);
    result.catch(() => pending.delete(filePath));
  }
  return result;
}

async function ensureModel(filePath: string, options: TinyLlamaOptions): Promise<string> {
  try {
    await access(filePath);
  } catch {
    await writeTinyLlamaGguf(filePath, options);
  }
  return filePath;
}

/**
 * A real model of the project's shared folder (`../shared/models/<name>` beside the repository,
 * read in place, never copied), or `undefined` where a clone has no such folder.
 */
export async function sharedModelPath(name: string): Promise<string | undefined> {
  // From dist/tests/support: up to the repository, then beside it.
  const file = fileURLToPath(new URL(`../../../../shared/models/${name}`, import.meta.url));
  try {
    await access(file);
    return file;
  } catch {
    return undefined;
  }
}
