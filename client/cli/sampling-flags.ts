import type { GenerationRequest } from "../../shared/protocol/index.js";
import { UsageError } from "../pool-client/client-errors.js";

/** `sampling_params` of a request, with vLLM's names. */
export type SamplingParams = NonNullable<GenerationRequest["sampling_params"]>;

type NumericParam = Exclude<keyof SamplingParams, "stop" | "json_schema" | "grammar">;

interface NumericFlag {
  flag: string;
  param: NumericParam;
  whole: boolean;
  min: number;
  /** Whether `min` itself is refused. */
  minExclusive?: boolean;
  max: number;
  /** Completes "--flag must be ...": the same bounds the pool checks. */
  rule: string;
}

/** The numeric sampling flags, with the bounds of `shared/protocol/generation-request.ts`. */
export const numericSamplingFlags: readonly NumericFlag[] = [
  {
    flag: "max-tokens",
    param: "max_tokens",
    whole: true,
    min: 1,
    max: 1_000_000,
    rule: "a whole number >= 1",
  },
  { flag: "temperature", param: "temperature", whole: false, min: 0, max: 2, rule: "in [0, 2]" },
  {
    flag: "top-p",
    param: "top_p",
    whole: false,
    min: 0,
    minExclusive: true,
    max: 1,
    rule: "in (0, 1]",
  },
  {
    flag: "top-k",
    param: "top_k",
    whole: true,
    min: -1,
    max: 100_000,
    rule: "a whole number in [-1, 100000] (-1 or 0 turn it off)",
  },
  { flag: "min-p", param: "min_p", whole: false, min: 0, max: 1, rule: "in [0, 1]" },
  {
    flag: "seed",
    param: "seed",
    whole: true,
    min: 0,
    max: 4_294_967_295,
    rule: "a whole number in [0, 4294967295]",
  },
  {
    flag: "choices",
    param: "n",
    whole: true,
    min: 1,
    max: 16,
    rule: "a whole number in [1, 16]",
  },
  {
    flag: "logprobs",
    param: "logprobs",
    whole: true,
    min: 0,
    max: 20,
    rule: "a whole number in [0, 20]",
  },
  {
    flag: "repeat-penalty",
    param: "repeat_penalty",
    whole: false,
    min: 0,
    minExclusive: true,
    max: 10,
    rule: "in (0, 10]",
  },
  {
    flag: "presence-penalty",
    param: "presence_penalty",
    whole: false,
    min: -2,
    max: 2,
    rule: "in [-2, 2]",
  },
  {
    flag: "frequency-penalty",
    param: "frequency_penalty",
    whole: false,
    min: -2,
    max: 2,
    rule: "in [-2, 2]",
  },
];

const decimal = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const maxStops = 16;
const maxStopChars = 256;

/**
 * Turns the sampling flags given into `sampling_params`, checking each against the pool's own
 * bounds so a mistake is reported before anything is sent. Throws a {@link UsageError}.
 */
export function samplingParams(values: Readonly<Record<string, unknown>>): SamplingParams {
  const params: SamplingParams = {};
  for (const spec of numericSamplingFlags) {
    const raw = values[spec.flag];
    if (typeof raw === "string") params[spec.param] = parseNumber(spec, raw);
  }
  const stop = values.stop;
  if (Array.isArray(stop) && stop.length > 0) {
    const strings = stop.filter((item): item is string => typeof item === "string");
    if (strings.length > maxStops) {
      throw new UsageError(`--stop may be given at most ${maxStops} times`);
    }
    for (const item of strings) {
      // The stop text is not quoted back: it may be part of what the caller keeps private.
      if (item === "") throw new UsageError("--stop must not be empty");
      if (item.length > maxStopChars) {
        throw new UsageError(`--stop must be at most ${maxStopChars} characters`);
      }
    }
    params.stop = strings;
  }
  return params;
}

function parseNumber(spec: NumericFlag, raw: string): number {
  const text = raw.trim();
  const value = decimal.test(text) ? Number(text) : Number.NaN;
  const below = spec.minExclusive ? value <= spec.min : value < spec.min;
  if (
    !Number.isFinite(value) ||
    (spec.whole && !Number.isInteger(value)) ||
    below ||
    value > spec.max
  ) {
    const kind = spec.whole || spec.rule.startsWith("a ") ? "" : "a number ";
    const shown = raw.length > 40 ? `${raw.slice(0, 40)}…` : raw;
    throw new UsageError(`--${spec.flag} must be ${kind}${spec.rule}, got "${shown}"`);
  }
  return value;
}
