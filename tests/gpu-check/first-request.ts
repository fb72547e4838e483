/**
 * The GPU check's "first request after load": how much slower a model's first request is than its
 * second, from a fresh process (so no CUDA kernel is loaded yet) with an empty CUDA JIT cache of its
 * own (so PTX would be compiled again, as on a fresh machine). Each model is measured twice, each
 * time in a new process (`measure-model.js first-request`): `cold`, the first request right after
 * the load, as before model threads warmed up; `warm`, after the model thread's warm-up, as a
 * first job now finds it. Both requests of a process have prompts of the same length with no
 * common prefix and no prompt cache, so each evaluates its whole prompt.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { ModelThreadOptions } from "../../shared/protocol/index.js";
import type { FirstRequestReport } from "./measure-model.js";

/** The prompt's length: long enough to run the batched kernels of prompt processing too. */
export const FIRST_REQUEST_PROMPT_TOKENS = 1024;

export interface FirstRequestLine {
  model: string;
  cold: FirstRequestReport;
  warm: FirstRequestReport;
}

/** Measures each model, cold then warmed up, one process after another. */
export async function measureFirstRequests(
  models: readonly ModelThreadOptions[],
  promptTokens: number = FIRST_REQUEST_PROMPT_TOKENS,
): Promise<{ promptTokens: number; models: FirstRequestLine[] }> {
  const lines: FirstRequestLine[] = [];
  for (const options of models) {
    const cold = await runChild(options, "cold", promptTokens);
    const warm = await runChild(options, "warm", promptTokens);
    lines.push({ model: options.modelName, cold, warm });
  }
  return { promptTokens, models: lines };
}

async function runChild(
  options: ModelThreadOptions,
  mode: "cold" | "warm",
  promptTokens: number,
): Promise<FirstRequestReport> {
  const script = fileURLToPath(new URL("./measure-model.js", import.meta.url));
  const cache = await mkdtemp(path.join(os.tmpdir(), "gpu-check-cuda-cache-"));
  try {
    const child = spawn(
      process.execPath,
      [script, JSON.stringify(options), "first-request", mode, String(promptTokens)],
      {
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, CUDA_CACHE_PATH: cache },
      },
    );
    const exited = once(child, "exit");
    let report: FirstRequestReport | undefined;
    // The report is the line that is a JSON object (llama.cpp may print lines of its own).
    for await (const line of createInterface({ input: child.stdout })) {
      if (line.startsWith("{")) report = JSON.parse(line) as FirstRequestReport;
      else process.stdout.write(`[${options.modelName} ${mode}] ${line}\n`);
    }
    const [code] = await exited;
    if (code !== 0 || report === undefined) {
      throw new Error(
        `the first-request measure of ${options.modelName} (${mode}) exited with ${code}`,
      );
    }
    return report;
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
}
