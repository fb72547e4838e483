import path from "node:path";
import { ConfigError } from "../errors/index.js";
import { type ModelSettings, parseModelSettings } from "./model-settings.js";

/** One model the pool serves, as named by an entry of `MODELS`. */
export interface ModelEntry {
  /** The name callers use in `"model"`; also names the model's queue. */
  readonly name: string;
  /** Where the model's weights come from. */
  readonly source: ModelSource;
  /** Overrides of the global model settings, from the entry's `?key=value&...` part. */
  readonly settings: ModelSettings;
}

/** Where a model's GGUF file comes from. */
export type ModelSource = LocalModelSource;

export interface LocalModelSource {
  readonly kind: "file";
  /** Absolute path of the `.gguf` file. */
  readonly path: string;
}

/** Model names become queue and Redis key names, so they are kept to a safe alphabet. */
const modelNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidModelName(name: string): boolean {
  return modelNamePattern.test(name);
}

/**
 * Parses `MODELS`: comma-separated entries `name=spec` or `spec`, each optionally followed by
 * `?key=value&...` settings (see {@link parseModelSettings}), where spec is a local `.gguf` path
 * (relative paths resolve against `cwd`). The name defaults to the file name without `.gguf`.
 * Model specs are configuration, not secrets, so messages may quote them.
 */
export function parseModelsList(text: string, cwd: string, variable = "MODELS"): ModelEntry[] {
  const entries = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  const models = entries.map((entry, index) => parseModelEntry(entry, index + 1, cwd, variable));
  const seen = new Set<string>();
  for (const model of models) {
    if (seen.has(model.name)) {
      throw new ConfigError(
        `${variable} names the model "${model.name}" twice; give each entry its own name with name=spec`,
      );
    }
    seen.add(model.name);
  }
  return models;
}

function parseModelEntry(
  entry: string,
  position: number,
  cwd: string,
  variable: string,
): ModelEntry {
  const where = `${variable} entry ${position} ("${entry}")`;
  const question = entry.indexOf("?");
  const head = question >= 0 ? entry.slice(0, question) : entry;
  const settings = question >= 0 ? parseModelSettings(entry.slice(question + 1), where) : {};
  const equals = head.indexOf("=");
  const explicitName = equals >= 0 ? head.slice(0, equals).trim() : undefined;
  const spec = equals >= 0 ? head.slice(equals + 1).trim() : head.trim();
  if (spec.length === 0) throw new ConfigError(`${where} has no model after "="`);
  if (!spec.toLowerCase().endsWith(".gguf")) {
    throw new ConfigError(
      `${where} is not a path to a .gguf file; only local GGUF files are supported in this version`,
    );
  }
  const name = explicitName ?? path.basename(spec).replace(/\.gguf$/i, "");
  if (!isValidModelName(name)) {
    throw new ConfigError(
      `${where}: model name "${name}" must be 1-64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  return Object.freeze({
    name,
    source: Object.freeze({ kind: "file", path: path.resolve(cwd, spec) }),
    settings,
  });
}
