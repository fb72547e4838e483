import path from "node:path";
import { ConfigError } from "../errors/index.js";
import { type HubModelSource, hubModelName, parseHubSpec } from "./hub-spec.js";
import { type ModelSettings, parseModelSettings } from "./model-settings.js";

export type { HubModelSource } from "./hub-spec.js";

/** One model the pool serves, as named by an entry of `MODELS`. */
export interface ModelEntry {
  /** The name callers use in `"model"`; also names the model's queue. */
  readonly name: string;
  /** Where the model's weights come from. */
  readonly source: ModelSource;
  /** Overrides of the global model settings, from the entry's `?key=value&...` part. */
  readonly settings: ModelSettings;
}

/** Where a model's GGUF file comes from: a local file or a Hugging Face repo. */
export type ModelSource = LocalModelSource | HubModelSource;

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
 * `?key=value&...` settings (see {@link parseModelSettings}). A spec is, decided by its text alone
 * (no I/O, so every process parses `MODELS` alike):
 * - a local `.gguf` file when it starts with `/`, `./` or `../`, has no `/` at all, or is
 *   `folder/file.gguf` (relative paths resolve against `cwd`; a deeper relative path must start
 *   with `./`). The name defaults to the file name without `.gguf` (and without a split suffix
 *   `-00001-of-00003`);
 * - otherwise a Hugging Face spec (see {@link parseHubSpec}): `owner/repo[@rev]`,
 *   `owner/repo[@rev]:QUANT` or `owner/repo[@rev]/path/file.gguf`. The name defaults to the repo
 *   name.
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
  const { source, defaultName } = parseSpec(spec, cwd, where);
  const name = explicitName ?? defaultName;
  if (!isValidModelName(name)) {
    throw new ConfigError(
      `${where}: model name "${name}" must be 1-64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  return Object.freeze({ name, source, settings });
}

const splitSuffix = /-\d{5}-of-\d{5}$/;

function parseSpec(
  spec: string,
  cwd: string,
  where: string,
): { source: ModelSource; defaultName: string } {
  const segments = spec.split("/");
  const isGguf = spec.toLowerCase().endsWith(".gguf");
  const local =
    /^\.{0,2}\//.test(spec) || segments.length === 1 || (segments.length === 2 && isGguf);
  if (local) {
    if (!isGguf) {
      throw new ConfigError(
        `${where} is neither a path to a .gguf file nor a Hugging Face repo (owner/repo, owner/repo:QUANT or owner/repo/file.gguf)`,
      );
    }
    return {
      source: Object.freeze({ kind: "file", path: path.resolve(cwd, spec) }),
      defaultName: path
        .basename(spec)
        .replace(/\.gguf$/i, "")
        .replace(splitSuffix, ""),
    };
  }
  const hub = parseHubSpec(spec);
  if (hub.source === undefined) {
    throw new ConfigError(
      hub.problem !== undefined
        ? `${where}: ${hub.problem}`
        : `${where} is not a Hugging Face spec (owner/repo, owner/repo:QUANT, owner/repo/path/file.gguf, optionally owner/repo@revision...) nor a local .gguf path (start a relative path with "./")`,
    );
  }
  return { source: hub.source, defaultName: hubModelName(hub.source.repo) };
}
