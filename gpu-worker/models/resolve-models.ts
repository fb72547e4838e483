import { access, readFile } from "node:fs/promises";
import type { Config } from "../../shared/config/index.js";
import { ModelLoadError } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { EffectiveModelSettings } from "../../shared/models/model-settings.js";
import { modelSettingsOf, servedModels } from "../../shared/models/served-models.js";
import { buildTinyLlamaGguf, DEMO_MODEL_OPTIONS, writeTinyLlamaGguf } from "./tiny-llama.js";

/** A model ready to load: its GGUF file on disk and the settings it runs with. */
export interface ResolvedModel {
  readonly name: string;
  /** Absolute path of the (first) `.gguf` file. */
  readonly path: string;
  readonly settings: EffectiveModelSettings;
}

/**
 * The models to load, each checked to exist. With `MODELS` unset this is the built-in demo model,
 * generated into the data folder (rewritten only when the generator changed it).
 */
export async function resolveModels(
  config: Config,
  log: Logger,
): Promise<readonly ResolvedModel[]> {
  const resolved: ResolvedModel[] = [];
  for (const model of servedModels(config)) {
    const settings = modelSettingsOf(config, model);
    const file = model.source.path;
    if (config.models.length === 0) {
      await ensureDemoModel(file);
      log.info(
        "MODELS is unset: serving the built-in demo model (random weights, word-salad output); " +
          "set MODELS to a .gguf file to serve a real model",
        { model: model.name, path: file },
      );
    } else {
      try {
        await access(file);
      } catch {
        throw new ModelLoadError(
          `MODELS: the file of model "${model.name}" does not exist: ${file}`,
        );
      }
    }
    resolved.push(Object.freeze({ name: model.name, path: file, settings }));
  }
  return resolved;
}

async function ensureDemoModel(file: string): Promise<void> {
  const wanted = buildTinyLlamaGguf(DEMO_MODEL_OPTIONS);
  const existing = await readFile(file).catch(() => undefined);
  if (existing === undefined || !existing.equals(wanted)) {
    await writeTinyLlamaGguf(file, DEMO_MODEL_OPTIONS);
  }
}
