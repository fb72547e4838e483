import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConfigError,
  DecryptFailedError,
  ErrorCode,
  InternalError,
  isErrorCode,
  PoolError,
  RedisUnavailableError,
  toErrorInfo,
  UnknownModelError,
} from "../../shared/errors/index.js";
import { createLogger, type LoggerOptions } from "../../shared/log.js";

const MARKER = "REQUEST-DATA-MARKER-77d2";

/** A logger writing into an array. */
function capture(component: string, options: Omit<LoggerOptions, "write"> = {}) {
  const lines: string[] = [];
  const log = createLogger(component, { ...options, write: (line) => lines.push(line) });
  return { log, lines };
}

const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe("createLogger text format", () => {
  it("writes time, level, component, message and fields on one line", () => {
    const { log, lines } = capture("orchestrator");
    log.info("job queued", { jobId: "j-1", model: "demo", attempt: 2, cached: false });
    assert.equal(lines.length, 1);
    const [time, ...rest] = (lines[0] ?? "").split(" ");
    assert.match(time ?? "", isoTime);
    assert.equal(
      rest.join(" "),
      "INFO  [orchestrator] job queued jobId=j-1 model=demo attempt=2 cached=false",
    );
  });

  it("pads the level and upper-cases it", () => {
    const { log, lines } = capture("c", { level: "debug" });
    log.debug("d");
    log.warn("w");
    log.error("e");
    assert.deepEqual(
      lines.map((line) => line.slice(line.indexOf(" ") + 1)),
      ["DEBUG [c] d", "WARN  [c] w", "ERROR [c] e"],
    );
  });

  it("quotes string values holding spaces, quotes, = or newlines, and drops undefined", () => {
    const { log, lines } = capture("c");
    log.info("m", {
      plain: "abc",
      spaced: "a b",
      quoted: 'say "x"',
      eq: "k=v",
      newline: "line1\nline2",
      empty: null,
      gone: undefined,
    });
    const line = lines[0] ?? "";
    assert.ok(
      line.endsWith(
        ' m plain=abc spaced="a b" quoted="say \\"x\\"" eq="k=v" newline="line1\\nline2" empty=null',
      ),
      line,
    );
    assert.ok(!line.includes("gone"));
    assert.ok(!line.includes("\n"), "a value must not split the line");
  });

  it("writes a line without fields", () => {
    const { log, lines } = capture("c");
    log.warn("plain");
    assert.match(lines[0] ?? "", / WARN {2}\[c\] plain$/);
  });
});

describe("createLogger json format", () => {
  it("writes one JSON object per line with the fields", () => {
    const { log, lines } = capture("gpu-worker", { format: "json" });
    log.error("model load failed", { model: "demo", threads: 2, gpu: true, gone: undefined });
    assert.equal(lines.length, 1);
    const parsed = JSON.parse(lines[0] ?? "") as Record<string, unknown>;
    assert.match(String(parsed.time), isoTime);
    assert.deepEqual(
      { ...parsed, time: "T" },
      {
        time: "T",
        level: "error",
        component: "gpu-worker",
        message: "model load failed",
        model: "demo",
        threads: 2,
        gpu: true,
      },
    );
  });

  it("keeps special characters inside the JSON string", () => {
    const { log, lines } = capture("c", { format: "json" });
    log.info("m", { value: 'a "b"\nc' });
    assert.equal(lines.length, 1);
    assert.ok(!(lines[0] ?? "").includes("\n"));
    assert.equal((JSON.parse(lines[0] ?? "") as { value: string }).value, 'a "b"\nc');
  });

  it("does not let fields overwrite the line's level, time, component or message", () => {
    const { log, lines } = capture("real", { format: "json" });
    log.error("real message", {
      level: "debug",
      time: "1970-01-01T00:00:00.000Z",
      component: "fake",
      message: "fake message",
    });
    const parsed = JSON.parse(lines[0] ?? "") as Record<string, unknown>;
    assert.equal(parsed.level, "error", "a field turned an error line into a debug line");
    assert.equal(parsed.component, "real");
    assert.equal(parsed.message, "real message");
    assert.notEqual(parsed.time, "1970-01-01T00:00:00.000Z");
  });
});

describe("createLogger levels", () => {
  it("drops lines below the level", () => {
    const { log, lines } = capture("c", { level: "warn" });
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    assert.deepEqual(
      lines.map((line) => line.split(" ").at(-1)),
      ["w", "e"],
    );
  });

  it("defaults to info", () => {
    const { log, lines } = capture("c");
    log.debug("d");
    log.info("i");
    assert.equal(lines.length, 1);
    assert.ok(lines[0]?.endsWith(" i"));
  });

  it("error level keeps only errors", () => {
    const { log, lines } = capture("c", { level: "error", format: "json" });
    log.warn("w");
    log.error("e");
    assert.deepEqual(
      lines.map((line) => (JSON.parse(line) as { level: string }).level),
      ["error"],
    );
  });

  it("children extend the component and keep level, format and destination", () => {
    const { log, lines } = capture("orchestrator", { level: "warn", format: "json" });
    const child = log.child("relay").child("seq");
    child.info("dropped");
    child.warn("kept", { n: 1 });
    assert.equal(lines.length, 1);
    const parsed = JSON.parse(lines[0] ?? "") as Record<string, unknown>;
    assert.equal(parsed.component, "orchestrator/relay/seq");
    assert.equal(parsed.n, 1);
  });
});

describe("toErrorInfo", () => {
  it("passes a PoolError's code and message through", () => {
    const cases: Array<[PoolError, string]> = [
      [new UnknownModelError("no such model"), "UNKNOWN_MODEL"],
      [new DecryptFailedError(), "DECRYPT_FAILED"],
      [new ConfigError("bad PORT"), "CONFIG_INVALID"],
      [new InternalError("oops"), "INTERNAL"],
    ];
    for (const [error, code] of cases) {
      assert.deepEqual(toErrorInfo(error), { code, message: error.message });
    }
  });

  it("turns any other error into INTERNAL without its message", () => {
    const info = toErrorInfo(new TypeError(`Cannot read "${MARKER}"`));
    assert.equal(info.code, ErrorCode.INTERNAL);
    assert.equal(info.message, "internal error (TypeError)");
    assert.ok(!info.message.includes(MARKER));
  });

  it("does not show a suspicious error name", () => {
    const error = new Error(MARKER);
    error.name = `${MARKER} with spaces`;
    const info = toErrorInfo(error);
    assert.deepEqual(info, { code: "INTERNAL", message: "internal error" });
  });

  it("handles thrown non-errors", () => {
    for (const thrown of [MARKER, { message: MARKER }, 42, null, undefined]) {
      const info = toErrorInfo(thrown);
      assert.deepEqual(info, { code: "INTERNAL", message: "internal error" });
    }
  });

  it("keeps only what callers may see", () => {
    const info = toErrorInfo(new InternalError("boom", { cause: new Error(MARKER) }));
    assert.deepEqual(Object.keys(info).sort(), ["code", "message"]);
    assert.ok(!JSON.stringify(info).includes(MARKER));
  });
});

describe("PoolError", () => {
  it("carries a stable code, class name and cause", () => {
    const cause = new Error("socket closed");
    const error = new RedisUnavailableError("redis down", { cause });
    assert.equal(error.code, "REDIS_UNAVAILABLE");
    assert.equal(error.name, "RedisUnavailableError");
    assert.equal(error.cause, cause);
    assert.ok(error instanceof PoolError && error instanceof Error);
  });

  it("recognises exactly the known codes", () => {
    for (const code of Object.values(ErrorCode)) assert.ok(isErrorCode(code));
    for (const value of ["internal", "NOPE", 1, undefined]) assert.ok(!isErrorCode(value));
  });
});
