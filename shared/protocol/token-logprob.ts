import { z } from "zod";

/**
 * The log probabilities of one generated token, in OpenAI chat's `logprobs.content` entry shape:
 * the token's text, its natural log probability under the job's sampling settings, its UTF-8
 * bytes (`null` for a token that holds part of a character only), and the most likely tokens at
 * its place (as many as `logprobs` asked for, most likely first).
 */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
  top_logprobs: TopLogprob[];
}

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

/** The most top alternatives a request may ask for per token (`logprobs`, `top_logprobs`). */
export const maxTopLogprobs = 20;

/** The most choices one request may ask for (`n`): each takes a sequence of one model thread. */
export const maxChoices = 16;

const topLogprobSchema = z.strictObject({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(z.number().int().min(0).max(255)).nullable(),
});

export const tokenLogprobSchema = z.strictObject({
  ...topLogprobSchema.shape,
  top_logprobs: z.array(topLogprobSchema).max(maxTopLogprobs),
});
