import type { Llama, LlamaGrammar } from "node-llama-cpp";
import { InvalidRequestError } from "../../shared/errors/index.js";
import { sleep } from "../../shared/process/sleep.js";
import { type GrammarSpec, gbnfProblem } from "../../shared/protocol/index.js";

/** Grammars a thread keeps compiled, by their text: clients tend to send the same schema again. */
const cacheSize = 32;
const cache = new Map<string, Promise<LlamaGrammar>>();

/** The last reason llama.cpp's grammar parser logged, taken by the compile that caused it. */
let lastParseError: string | undefined;

/**
 * The grammar a job's output is held to (structured output), compiled once per text and thread.
 * A grammar llama.cpp cannot parse is `INVALID_REQUEST` naming what is wrong (never quoting the
 * grammar: it is request data).
 */
export async function grammarFor(
  llama: Llama,
  spec: GrammarSpec | undefined,
): Promise<LlamaGrammar | undefined> {
  if (spec === undefined) return undefined;
  const key = spec.kind === "gbnf" ? `g:${spec.text}` : `j:${JSON.stringify(spec.schema)}`;
  let compiled = cache.get(key);
  if (compiled === undefined) {
    compiled = compile(llama, spec);
    cache.set(key, compiled);
    compiled.catch(() => cache.delete(key));
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
  } else {
    // Most recently used last, so the oldest is dropped first.
    cache.delete(key);
    cache.set(key, compiled);
  }
  return compiled;
}

async function compile(llama: Llama, spec: GrammarSpec): Promise<LlamaGrammar> {
  lastParseError = undefined;
  try {
    if (spec.kind === "json_schema") {
      // The schema was checked at admission (`jsonSchemaIssues`); `anyOf` is read as `oneOf`.
      // biome-ignore lint/suspicious/noExplicitAny: node-llama-cpp types schemas by their literal shape.
      return await llama.createGrammarForJsonSchema(anyOfAsOneOf(spec.schema) as any);
    }
    // Checked at admission too; llama.cpp prints a grammar it cannot parse to stderr, whole.
    const problem = gbnfProblem(spec.text);
    if (problem !== undefined) {
      throw new InvalidRequestError(
        `request.sampling_params.grammar: not a GBNF grammar llama.cpp can parse: ${problem}`,
      );
    }
    return await llama.createGrammar({ grammar: spec.text });
  } catch (error) {
    if (error instanceof InvalidRequestError) throw error;
    // llama.cpp reports the reason through the log callback, which may run a moment later.
    await sleep(20);
    const reason = lastParseError === undefined ? "" : ` (${lastParseError})`;
    throw new InvalidRequestError(
      spec.kind === "gbnf"
        ? `request.sampling_params.grammar: not a GBNF grammar llama.cpp can parse${reason}`
        : `request.sampling_params.json_schema: the schema could not be turned into a grammar${reason}`,
    );
  }
}

/**
 * Takes llama.cpp's log lines about grammars, which quote the grammar text (request data), so they
 * never reach the log; keeps the parser's reason, stripped of quoted text, for the error message.
 * Returns whether the line was taken.
 */
export function takeGrammarLogLine(message: string): boolean {
  if (!/grammar/i.test(message)) return false;
  if (/left recursion/i.test(message)) lastParseError = "left recursion is not supported";
  return true;
}

/** The schema with `anyOf` renamed `oneOf` (never a property or definition of that name). */
export function anyOfAsOneOf(value: unknown, isNameMap = false): unknown {
  if (Array.isArray(value)) return value.map((item) => anyOfAsOneOf(item));
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key === "anyOf" && !isNameMap ? "oneOf" : key,
      anyOfAsOneOf(item, !isNameMap && (key === "properties" || key === "$defs")),
    ]),
  );
}
