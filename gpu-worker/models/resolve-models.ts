import { access, readFile, stat } from "node:fs/promises";
import type { Config } from "../../shared/config/index.js";
import { ModelLoadError } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { EffectiveModelSettings } from "../../shared/models/model-settings.js";
import type { ServedModel } from "../../shared/models/served-models.js";
import { type FetchOptions, fetchHubModels } from "./hub/fetch-hub-models.js";
import { splitSetPaths } from "./hub/gguf-choice.js";
import { hubClientOptions } from "./hub/hub-client.js";
import { describeSource, type HubModelPlan, planHubModel } from "./hub/hub-model-plan.js";
import { buildTinyLlamaGguf, DEMO_MODEL_OPTIONS, writeTinyLlamaGguf } from "./tiny-llama.js";

/** A model ready to load: its GGUF file(s) on disk and the settings it runs with. */
export interface ResolvedModel {
  readonly name: string;
  /** Absolute path of the `.gguf` file llama.cpp opens: the first part of a split model. */
  readonly path: string;
  /** Every file of the model (the parts of a split model, in order), absolute paths. */
  readonly files: readonly string[];
  /** Total size of `files` in bytes. */
  readonly sizeBytes: number;
  readonly settings: EffectiveModelSettings;
}

/** Knobs for tests and terminals; the defaults suit production. */
export type ResolveOptions = Omit<FetchOptions, "client" | "log">;

/**
 * The models to load, each checked to exist. Hugging Face models come from the cache when they are
 * there (no network call), else are downloaded into it — every missing file of every model at
 * once, with progress. With `MODELS` unset this is the built-in demo model, generated into the
 * data folder (rewritten only when the generator changed it).
 */
export async function resolveModels(
  config: Config,
  log: Logger,
  options: ResolveOptions = { terminal: process.stderr.isTTY ? process.stderr : undefined },
): Promise<readonly ResolvedModel[]> {
  const models = config.served;
  const client = hubClientOptions(config);
  const context = {
    client,
    cacheDir: config.hfHubCache,
    offline: config.hfOffline,
    quants: config.hfQuant,
  };
  // Every hub model is planned first, so a wrong spec fails before any long download starts.
  const plans = await Promise.all(
    models.map((model) =>
      model.source.kind === "hub" ? planHubModel(model.source, context) : undefined,
    ),
  );
  await fetchHubModels(
    plans.filter((plan) => plan !== undefined),
    { ...options, client, log },
  );
  const resolved: ResolvedModel[] = [];
  for (const [index, model] of models.entries()) {
    const plan = plans[index];
    const files =
      plan !== undefined
        ? hubFiles(model, plan, log)
        : await localFiles(model, config.models.length === 0, log);
    let sizeBytes = 0;
    for (const file of files) sizeBytes += (await stat(file)).size;
    resolved.push(
      Object.freeze({
        name: model.name,
        path: files[0] ?? "",
        files: Object.freeze(files),
        sizeBytes,
        settings: model.settings,
      }),
    );
  }
  return resolved;
}

function hubFiles(model: ServedModel, plan: HubModelPlan, log: Logger): string[] {
  const files = plan.paths.map((repoPath) => plan.cache.snapshotPath(plan.sha, repoPath));
  log.info(
    plan.fromCache ? "model found in the Hugging Face cache" : "model fetched from Hugging Face",
    {
      model: model.name,
      spec: describeSource(plan.source),
      commit: plan.sha,
      file: plan.paths[0],
      parts: plan.paths.length,
    },
  );
  return files;
}

async function localFiles(model: ServedModel, demo: boolean, log: Logger): Promise<string[]> {
  if (model.source.kind !== "file") return [];
  const file = model.source.path;
  if (demo) {
    await ensureDemoModel(file);
    log.info(
      "MODELS is unset: serving the built-in demo model (random weights, word-salad output); " +
        "set MODELS to a .gguf file or a Hugging Face repo to serve a real model",
      { model: model.name, path: file },
    );
    return [file];
  }
  // A split model is opened by its first part; llama.cpp finds the others beside it.
  const files = splitSetPaths(file);
  for (const part of files) {
    try {
      await access(part);
    } catch {
      throw new ModelLoadError(`MODELS: the file of model "${model.name}" does not exist: ${part}`);
    }
  }
  return files;
}

async function ensureDemoModel(file: string): Promise<void> {
  const wanted = buildTinyLlamaGguf(DEMO_MODEL_OPTIONS);
  const existing = await readFile(file).catch(() => undefined);
  if (existing === undefined || !existing.equals(wanted)) {
    await writeTinyLlamaGguf(file, DEMO_MODEL_OPTIONS);
  }
}
