import { Transform, type TransformCallback } from "node:stream";
import type { FastifyInstance } from "fastify";

/** Deepest nesting of arrays and objects a request body may have; ours need 3 or 4. */
export const maxJsonDepth = 64;
/** A body this large (by `Content-Length`) counts against {@link JsonBodyOptions.largeBodies}. */
export const largeBodyBytes = 1024 * 1024;

export interface JsonBodyOptions {
  /** Large bodies received and parsed at once; one more is answered 503 before it is read. */
  largeBodies: number;
}

/**
 * JSON bodies for a Fastify app, guarded against bodies that cost the server more than they
 * cost the sender: nesting deeper than {@link maxJsonDepth} is refused (400) before anything is
 * built (a large body while it arrives, at the first bracket too deep, before the rest is read);
 * and at most `largeBodies` bodies over
 * {@link largeBodyBytes} are read at once — another is refused with 503 and `Retry-After` before
 * its body is read, so a flood of huge bodies cannot starve ordinary requests. An empty body with
 * a JSON content type is no body (clients send the header on `/cancel` too).
 */
export function registerJsonBody(app: FastifyInstance, options: JsonBodyOptions): void {
  let largeInFlight = 0;
  app.addHook("onRequest", async (request, reply) => {
    const length = Number(request.headers["content-length"] ?? 0);
    if (!(length > largeBodyBytes)) return;
    if (largeInFlight >= options.largeBodies) {
      return reply
        .code(503)
        .header("retry-after", "1")
        .header("connection", "close")
        .send({ error: "too many large requests at once; retry shortly" });
    }
    largeInFlight += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      largeInFlight -= 1;
    };
    reply.raw.once("close", release);
    reply.raw.once("finish", release);
  });
  app.addHook("preParsing", async (request, reply, payload) => {
    if (!request.headers["content-type"]?.startsWith("application/json")) return payload;
    // A small body of known length is checked whole, before it is parsed (no stream stage: a
    // request's own cost matters at this size); a larger one while it arrives.
    if (isSmallBody(request.headers["content-length"])) return payload;
    const guard = new DepthGuard(maxJsonDepth);
    guard.once("error", () => {
      // The rest of a refused body is not worth reading.
      reply.header("connection", "close");
    });
    return payload.pipe(guard);
  });
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (typeof body !== "string" || body.trim() === "") return done(null, undefined);
    if (isSmallBody(request.headers["content-length"])) {
      const depth = new JsonDepth(maxJsonDepth);
      if (!depth.feed(Buffer.from(body))) return done(tooDeepError());
    }
    try {
      done(null, JSON.parse(body));
    } catch {
      done(Object.assign(new Error("invalid JSON"), { statusCode: 400, code: "INVALID_JSON" }));
    }
  });
}

/** Bodies up to this size (by `Content-Length`) are checked for depth whole, before parsing. */
const smallBodyBytes = 64 * 1024;

function isSmallBody(contentLength: string | undefined): boolean {
  const length = Number(contentLength ?? Number.NaN);
  return length >= 0 && length <= smallBodyBytes;
}

function tooDeepError(): Error {
  return Object.assign(new Error("too deep"), { statusCode: 400, code: "JSON_TOO_DEEP" });
}

/**
 * How deep the arrays and objects of a JSON text nest so far (brackets outside strings), fed in
 * pieces. Works on bytes: in UTF-8 the bytes of `[`, `{`, `"` and `\\` never occur inside other
 * characters.
 */
class JsonDepth {
  readonly #limit: number;
  #depth = 0;
  #inString = false;
  #escaped = false;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Feeds the next bytes; `false` at the first bracket past the limit. */
  feed(chunk: Uint8Array): boolean {
    for (const byte of chunk) {
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (byte === 0x5c) this.#escaped = true;
        else if (byte === 0x22) this.#inString = false;
      } else if (byte === 0x22) {
        this.#inString = true;
      } else if (byte === 0x5b || byte === 0x7b) {
        this.#depth += 1;
        if (this.#depth > this.#limit) return false;
      } else if (byte === 0x5d || byte === 0x7d) {
        this.#depth -= 1;
      }
    }
    return true;
  }
}

/**
 * Passes a JSON body through while tracking how deep its arrays and objects nest; fails with
 * `JSON_TOO_DEEP` at the first bracket past `limit`, so `[[[[…` of any length costs `limit` bytes
 * of scanning.
 */
export class DepthGuard extends Transform {
  readonly #depth: JsonDepth;

  constructor(limit: number) {
    super();
    this.#depth = new JsonDepth(limit);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.#depth.feed(chunk)) {
      callback(tooDeepError());
      return;
    }
    callback(null, chunk);
  }
}
