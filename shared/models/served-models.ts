import path from "node:path";
import {
  type EffectiveModelSettings,
  effectiveModelSettings,
  type ModelSettingDefaults,
} from "./model-settings.js";
import type { ModelEntry, ModelSource } from "./model-spec.js";

/** The model served when `MODELS` is unset: a tiny generated model, so a fresh clone just runs. */
export const DEMO_MODEL_NAME = "demo";

export function demoModelPath(dataDir: string): string {
  return path.join(dataDir, "models", `${DEMO_MODEL_NAME}.gguf`);
}

/** A model this deployment serves, with the settings it runs with. */
export interface ServedModel {
  /** The name callers use in `"model"`; also names the model's queue. */
  readonly name: string;
  /** Where the model's weights come from. */
  readonly source: ModelSource;
  /** Its `MODELS` overrides over the global variables (`MODEL_THREADS`, `CONTEXT_SIZE`, ...). */
  readonly settings: EffectiveModelSettings;
}

/**
 * The models a deployment serves, each with its settings resolved: the entries of `MODELS`, or the
 * demo model (in `dataDir`) when there are none. The configuration calls it once, at startup
 * (`Config.served`).
 */
export function resolveServedModels(
  models: readonly ModelEntry[],
  dataDir: string,
  defaults: ModelSettingDefaults,
): readonly ServedModel[] {
  const entries: readonly ModelEntry[] =
    models.length > 0
      ? models
      : [
          {
            name: DEMO_MODEL_NAME,
            source: { kind: "file", path: demoModelPath(dataDir) },
            settings: {},
          },
        ];
  return Object.freeze(
    entries.map((model) =>
      Object.freeze({
        name: model.name,
        source: model.source,
        settings: effectiveModelSettings(model.settings, defaults),
      }),
    ),
  );
}

/**
 * How many jobs the served models can run at once: the sum over models of threads × sequences.
 * The default of how many jobs an orchestrator holds at once.
 */
export function servedSlots(config: { readonly served: readonly ServedModel[] }): number {
  return config.served.reduce(
    (sum, model) => sum + model.settings.threads * model.settings.sequences,
    0,
  );
}
