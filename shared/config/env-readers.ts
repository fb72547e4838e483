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
