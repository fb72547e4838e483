import { access, readFile } from "node:fs/promises";
import type { Config } from "../../shared/config/index.js";
import { ModelLoadError } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { ModelEntry } from "../../shared/models/model-spec.js";
import { servedModels } from "../../shared/models/served-models.js";
import { buildTinyLlamaGguf, DEMO_MODEL_OPTIONS, writeTinyLlamaGguf } from "./tiny-llama.js";

/**
 * The models to load, each checked to exist. With `MODELS` unset this is the built-in demo model,
 * generated into the data folder (rewritten only when the generator changed it).
 */
export async function resolveModels(config: Config, log: Logger): Promise<readonly ModelEntry[]> {
  const models = servedModels(config);
  if (config.models.length === 0) {
    const demo = models[0] as ModelEntry;
    await ensureDemoModel(demo.path);
    log.info(
      "MODELS is unset: serving the built-in demo model (random weights, word-salad output); " +
        "set MODELS to a .gguf file to serve a real model",
      { model: demo.name, path: demo.path },
    );
    return models;
  }
  for (const model of models) {
    try {
      await access(model.path);
    } catch {
      throw new ModelLoadError(
        `MODELS: the file of model "${model.name}" does not exist: ${model.path}`,
      );
    }
  }
  return models;
}

async function ensureDemoModel(file: string): Promise<void> {
  const wanted = buildTinyLlamaGguf(DEMO_MODEL_OPTIONS);
  const existing = await readFile(file).catch(() => undefined);
  if (existing === undefined || !existing.equals(wanted)) {
    await writeTinyLlamaGguf(file, DEMO_MODEL_OPTIONS);
  }
}
