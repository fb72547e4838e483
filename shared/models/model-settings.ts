import { ConfigError } from "../errors/index.js";

/**
 * Per-model overrides of the global model settings, written after a `?` in a `MODELS` entry:
 * `chat=models/chat.gguf?context=8192&sequences=8&threads=2&llama_threads=4&pin=true`.
 */
export interface ModelSettings {
  /** `context`: tokens per sequence (overrides `CONTEXT_SIZE`). */
  readonly contextSize?: number;
  /** `sequences`: jobs one thread runs at once (overrides `MODEL_SEQUENCES`). */
  readonly sequences?: number;
  /** `threads`: worker threads holding this model (overrides `MODEL_THREADS`). */
  readonly threads?: number;
  /** `llama_threads`: llama.cpp CPU threads per worker thread (overrides `LLAMA_THREADS`). */
  readonly llamaThreads?: number;
  /** `queue_limit`: jobs that may wait in this model's queue (overrides `MAX_QUEUED_JOBS`). */
  readonly queueLimit?: number;
  /** `preload`: loaded at start while the budget holds it (default true; false: on demand only). */
  readonly preload?: boolean;
  /** `pin`: once loaded, never unloaded (default false). */
  readonly pin?: boolean;
  /**
   * `embeddings`: the model also serves embeddings (`input` requests, `/v1/embeddings`); each of
   * its threads then holds an embedding context beside its text context (default false).
   */
  readonly embeddings?: boolean;
}

/** The settings a model actually runs with: its overrides over the global defaults. */
export interface EffectiveModelSettings {
  readonly contextSize: number | undefined;
  readonly sequences: number;
  readonly threads: number;
  readonly llamaThreads: number;
  readonly queueLimit: number;
  readonly preload: boolean;
  readonly pin: boolean;
  readonly embeddings: boolean;
}

type SettingRule =
  | { readonly field: keyof ModelSettings; readonly min: number; readonly max: number }
  | { readonly field: keyof ModelSettings; readonly boolean: true };

/** The keys an entry may set, with the same ranges as the global variables they override. */
const settingRules: Readonly<Record<string, SettingRule>> = {
  context: { field: "contextSize", min: 64, max: 1_048_576 },
  sequences: { field: "sequences", min: 1, max: 256 },
  threads: { field: "threads", min: 1, max: 64 },
  llama_threads: { field: "llamaThreads", min: 1, max: 1024 },
  queue_limit: { field: "queueLimit", min: 1, max: Number.MAX_SAFE_INTEGER },
  preload: { field: "preload", boolean: true },
  pin: { field: "pin", boolean: true },
  embeddings: { field: "embeddings", boolean: true },
};

/** Parses the text after `?` of a `MODELS` entry; `where` names the entry in messages. */
export function parseModelSettings(text: string, where: string): ModelSettings {
  const settings: Record<string, number | boolean> = {};
  for (const pair of text.split("&")) {
    if (pair.trim() === "") continue;
    const equals = pair.indexOf("=");
    const key = (equals >= 0 ? pair.slice(0, equals) : pair).trim();
    const value = equals >= 0 ? pair.slice(equals + 1).trim() : "";
    const rule = settingRules[key];
    if (rule === undefined) {
      throw new ConfigError(
        `${where}: unknown setting "${key}"; settings are ${Object.keys(settingRules).join(", ")}`,
      );
    }
    if (rule.field in settings) throw new ConfigError(`${where}: setting "${key}" is given twice`);
    if ("boolean" in rule) {
      if (value !== "true" && value !== "false") {
        throw new ConfigError(`${where}: setting "${key}" must be true or false, got "${value}"`);
      }
      settings[rule.field] = value === "true";
      continue;
    }
    const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(number) || number < rule.min || number > rule.max) {
      throw new ConfigError(
        `${where}: setting "${key}" must be a whole number in [${rule.min}, ${rule.max}], got "${value}"`,
      );
    }
    settings[rule.field] = number;
  }
  return Object.freeze(settings as ModelSettings);
}

/** The global defaults that per-model settings override (from `MODEL_THREADS` etc.). */
export interface ModelSettingDefaults {
  readonly contextSize: number | undefined;
  readonly modelSequences: number;
  readonly modelThreads: number;
  readonly llamaThreads: number;
  readonly maxQueuedJobs: number;
}

export function effectiveModelSettings(
  settings: ModelSettings,
  defaults: ModelSettingDefaults,
): EffectiveModelSettings {
  return Object.freeze({
    contextSize: settings.contextSize ?? defaults.contextSize,
    sequences: settings.sequences ?? defaults.modelSequences,
    threads: settings.threads ?? defaults.modelThreads,
    llamaThreads: settings.llamaThreads ?? defaults.llamaThreads,
    queueLimit: settings.queueLimit ?? defaults.maxQueuedJobs,
    preload: settings.preload ?? true,
    pin: settings.pin ?? false,
    embeddings: settings.embeddings ?? false,
  });
}
