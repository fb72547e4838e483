import type { LogFormat, LogLevel } from "./config/config.js";

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Metadata a log line may carry. Values are identifiers, counts and durations only: never prompt
 * text, messages, deltas, output text, decrypted data or keys. Keep it that way when adding fields.
 */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(component: string): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; defaults to stdout. */
  write?: (line: string) => void;
}

/** A small structured logger: text lines for people, JSON lines for log collectors. */
export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const minRank = levelRank[options.level ?? "info"];
  const format = options.format ?? "text";
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));

  const emit = (level: LogLevel, message: string, fields?: LogFields): void => {
    if (levelRank[level] < minRank) return;
    const time = new Date().toISOString();
    if (format === "runpod") {
      // RunPod's own line shape (runpod-python's RunPodLogger): the job id as `requestId`, the
      // rest of the fields folded into the message.
      const { jobId, ...rest } = fields ?? {};
      write(
        JSON.stringify({
          requestId: typeof jobId === "string" ? jobId : null,
          message: `[${component}] ${message}${formatFields(rest)}`,
          level: level.toUpperCase(),
        }),
      );
      return;
    }
    if (format === "json") {
      // The line's own keys come last: a field cannot overwrite them.
      write(JSON.stringify({ ...fields, time, level, component, message }));
      return;
    }
    write(
      `${time} ${level.toUpperCase().padEnd(5)} [${component}] ${message}${formatFields(fields)}`,
    );
  };

  return {
    debug: (message, fields) => emit("debug", message, fields),
    info: (message, fields) => emit("info", message, fields),
    warn: (message, fields) => emit("warn", message, fields),
    error: (message, fields) => emit("error", message, fields),
    child: (sub) => createLogger(`${component}/${sub}`, options),
  };
}

function formatFields(fields: LogFields | undefined): string {
  if (fields === undefined) return "";
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ` ${key}=${formatValue(value)}`)
    .join("");
}

function formatValue(value: string | number | boolean | null | undefined): string {
  if (typeof value === "string" && /[\s"=]/.test(value)) return JSON.stringify(value);
  return String(value);
}

/** A logger that drops everything, for library code used without one. */
export const silentLogger: Logger = createLogger("silent", { write: () => {} });
