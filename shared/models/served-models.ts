import path from "node:path";
import type { Config } from "../config/index.js";
import type { ModelEntry } from "./model-spec.js";

/** The model served when `MODELS` is unset: a tiny generated model, so a fresh clone just runs. */
export const DEMO_MODEL_NAME = "demo";

export function demoModelPath(dataDir: string): string {
  return path.join(dataDir, "models", `${DEMO_MODEL_NAME}.gguf`);
}

/** The models this deployment serves: `MODELS`, or the demo model. */
export function servedModels(config: Config): readonly ModelEntry[] {
  if (config.models.length > 0) return config.models;
  return [{ name: DEMO_MODEL_NAME, path: demoModelPath(config.dataDir) }];
}
