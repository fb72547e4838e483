import { z } from "zod";
import { ConfigError } from "../errors/index.js";

export type Env = Readonly<Record<string, string | undefined>>;

/** The value of `name`, trimmed; `undefined` when unset or blank (an empty variable means unset). */
export function readRaw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

/**
 * Parses one variable with a schema. `rule` completes the sentence "NAME must ...". The value is
 * quoted in the message unless the variable is secret.
 */
export function readVar<T>(
  env: Env,
  name: string,
  schema: z.ZodType<T>,
  rule: string,
  options: { secret?: boolean } = {},
): T | undefined {
  const raw = readRaw(env, name);
  if (raw === undefined) return undefined;
  const result = schema.safeParse(raw);
  if (!result.success) {
    const got = options.secret ? "" : `, got "${raw.length > 200 ? `${raw.slice(0, 200)}…` : raw}"`;
    throw new ConfigError(`${name} must ${rule}${got}`);
  }
  return result.data;
}

export function readInt(
  env: Env,
  name: string,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const schema = z
    .string()
    .regex(/^[+]?\d+$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
  return readVar(env, name, schema, `be a whole number ${range}`);
}

export function readEnum<const T extends readonly [string, ...string[]]>(
  env: Env,
  name: string,
  values: T,
): T[number] | undefined {
  return readVar(env, name, z.enum(values), `be one of ${values.join(", ")}`);
}

/**
 * A duration like Ollama's `keep_alive`: a whole number of milliseconds, or one with a unit
 * (`500ms`, `30s`, `5m`, `1h`); `-1` means for ever (returned as `-1`).
 */
export function readDuration(env: Env, name: string): number | undefined {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const schema = z
    .string()
    .regex(/^(-1|\d+(ms|s|m|h)?)$/)
    .transform((text) => {
      if (text === "-1") return -1;
      const [, digits = "0", unit = "ms"] = /^(\d+)(ms|s|m|h)?$/.exec(text) ?? [];
      return Number(digits) * (units[unit] ?? 1);
    })
    .pipe(z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER));
  return readVar(
    env,
    name,
    schema,
    "be a duration such as 0, 30s, 5m or 1h (milliseconds without a unit), or -1 for ever",
  );
}

/** A yes/no variable: 1, true, yes, on or 0, false, no, off (any case). */
export function readBoolean(env: Env, name: string): boolean | undefined {
  return readVar(
    env,
    name,
    z
      .string()
      .transform((text) => text.toLowerCase())
      .pipe(z.enum(["1", "0", "true", "false", "yes", "no", "on", "off"]))
      .transform((text) => ["1", "true", "yes", "on"].includes(text)),
    "be 1, true, yes, on or 0, false, no, off",
  );
}
