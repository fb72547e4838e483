import { z } from "zod";

/**
 * The embeddings part of the native request: `input` (one text or up to 2048, each non-empty)
 * makes a request an embeddings job, answered by one vector per text in the final chunk's
 * `embeddings`. `dimensions` may only name the model's own vector size (checked where the model
 * is loaded): vectors are never truncated or projected.
 */
export const maxEmbeddingInputs = 2048;

export const embeddingInputSchema = z
  .union([z.string(), z.array(z.string())], { error: "must be a string or an array of strings" })
  .superRefine((input, context) => {
    if (Array.isArray(input) && (input.length === 0 || input.length > maxEmbeddingInputs)) {
      context.addIssue({
        code: "custom",
        message:
          input.length === 0
            ? "must hold at least one string"
            : `must hold at most ${maxEmbeddingInputs} strings`,
      });
      return;
    }
    embeddingTexts(input).forEach((text, index) => {
      if (text === "") {
        context.addIssue({
          code: "custom",
          path: Array.isArray(input) ? [index] : [],
          message: "must not be empty",
        });
      }
    });
  });

export const embeddingDimensionsSchema = z
  .number({ error: "must be a whole number" })
  .int({ error: "must be a whole number" })
  .min(1, { error: "must be at least 1" });

interface EmbeddingFields {
  prompt?: unknown;
  messages?: unknown;
  input?: unknown;
  dimensions?: unknown;
  sampling_params?: unknown;
}

/** What makes a request with `input` (or `dimensions`) wrong as an embeddings job. */
export function embeddingRequestIssues(
  request: EmbeddingFields,
): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  const custom = (path: string[], message: string) => issues.push({ path, message });
  if (request.input === undefined) {
    custom(["dimensions"], 'is only for embeddings (a request with "input")');
    return issues;
  }
  if (request.prompt !== undefined || request.messages !== undefined) {
    custom([], 'must have one of "prompt", "messages" or "input"');
  }
  if (request.sampling_params !== undefined) {
    custom(["sampling_params"], 'is not taken with "input": embeddings sample nothing');
  }
  return issues;
}

/** The texts of an `input`, as a list. */
export function embeddingTexts(input: string | readonly string[]): string[] {
  return typeof input === "string" ? [input] : [...input];
}
