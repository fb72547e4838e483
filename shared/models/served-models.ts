import path from "node:path";
import type { Config } from "../config/index.js";
import { type EffectiveModelSettings, effectiveModelSettings } from "./model-settings.js";
import type { ModelEntry } from "./model-spec.js";

/** The model served when `MODELS` is unset: a tiny generated model, so a fresh clone just runs. */
export const DEMO_MODEL_NAME = "demo";

export function demoModelPath(dataDir: string): string {
  return path.join(dataDir, "models", `${DEMO_MODEL_NAME}.gguf`);
}

/** The models this deployment serves: `MODELS`, or the demo model. */
export function servedModels(config: Config): readonly ModelEntry[] {
  if (config.models.length > 0) return config.models;
  return [
    {
      name: DEMO_MODEL_NAME,
      source: { kind: "file", path: demoModelPath(config.dataDir) },
      settings: {},
    },
  ];
}

/** The settings each served model runs with: its `MODELS` overrides over the global variables. */
export function modelSettingsOf(config: Config, model: ModelEntry): EffectiveModelSettings {
  return effectiveModelSettings(model.settings, config);
}

/**
 * How many jobs the served models can run at once: the sum over models of threads × sequences.
 * The default of how many jobs an orchestrator holds at once.
 */
export function servedSlots(config: Config): number {
  return servedModels(config).reduce((sum, model) => {
    const settings = modelSettingsOf(config, model);
    return sum + settings.threads * settings.sequences;
  }, 0);
}
