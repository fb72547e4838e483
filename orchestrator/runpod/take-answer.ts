/** A job the platform handed over: its id and its input (other fields are ignored). */
export interface TakenJob {
  id: string;
  input: unknown;
}

/** A job whose `input` is missing: it is failed on its own; one without an id cannot be. */
export interface MalformedJob {
  id: string | undefined;
  problem: string;
}

export interface ParsedTake {
  jobs: TakenJob[];
  malformed: MalformedJob[];
}

/**
 * Reads a job-take answer: a JSON object (one job) or array (several). A job missing `id` or
 * `input` is reported on its own and never harms the others. Throws only when the body is not
 * JSON or is neither an object nor an array.
 */
export function parseTakeAnswer(text: string): ParsedTake {
  const body: unknown = JSON.parse(text);
  const items: unknown[] = Array.isArray(body) ? body : [body];
  if (!Array.isArray(body) && (typeof body !== "object" || body === null)) {
    throw new TypeError("the job-take answer is neither a JSON object nor an array");
  }
  const out: ParsedTake = { jobs: [], malformed: [] };
  for (const item of items) {
    if (typeof item !== "object" || item === null) {
      out.malformed.push({ id: undefined, problem: "a job is not an object" });
      continue;
    }
    const id = "id" in item && typeof item.id === "string" && item.id !== "" ? item.id : undefined;
    if (id === undefined) {
      out.malformed.push({ id: undefined, problem: "a job has no id" });
    } else if (!("input" in item) || item.input === undefined || item.input === null) {
      out.malformed.push({ id, problem: "the job has no input" });
    } else {
      out.jobs.push({ id, input: item.input });
    }
  }
  return out;
}
