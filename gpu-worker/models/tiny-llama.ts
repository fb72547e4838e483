/**
 * Tiny llama-architecture models with random weights, generated from a seed.
 *
 * They exercise the real load → tokenise → generate path without any download: the tests use
 * them, and the product generates one (`DEMO_MODEL_OPTIONS`) as its built-in demo model.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  encodeGguf,
  GgmlType,
  type GgufFile,
  type GgufTensor,
  type GgufValue,
} from "./gguf/gguf-writer.js";
import { createSeededRandom } from "./gguf/seeded-random.js";

export interface TinyLlamaOptions {
  /** Seed of the weights; the same options give the same file byte for byte. Default 1. */
  readonly seed?: number;
  /** `general.name`. Default `"tiny-llama"`. */
  readonly name?: string;
  /** Hidden size (E). Default 256. Must be a multiple of `headCount` (and of 32 for q8_0). */
  readonly embeddingLength?: number;
  /** Number of transformer layers. Default 4. */
  readonly blockCount?: number;
  /** Attention heads. Default 4. */
  readonly headCount?: number;
  /** Key/value heads (grouped-query attention when fewer). Default `headCount`. */
  readonly headCountKv?: number;
  /** Feed-forward hidden size. Default 688 (not a multiple of 32: use e.g. 768 with q8_0). */
  readonly feedForwardLength?: number;
  /** Trained context length advertised in the metadata, in tokens. Default 2048. */
  readonly contextLength?: number;
  /** Type of the weight matrices; norms are always f32. Default `"f16"`. */
  readonly tensorType?: "f32" | "f16" | "q8_0";
  /**
   * `"chatml"` adds `<|im_start|>`/`<|im_end|>` control tokens, a ChatML Jinja
   * `tokenizer.chat_template`, and makes `<|im_end|>` the eos token. Default: no template.
   */
  readonly chatTemplate?: "chatml" | undefined;
  /**
   * Pads the vocabulary with unused tokens up to this many tokens, to mimic the output-layer
   * cost of a real vocabulary (e.g. 32000) in benchmarks. Default: no padding (774 tokens, 776 with ChatML).
   */
  readonly vocabularySize?: number | undefined;
}

export type ResolvedTinyLlamaOptions = Readonly<
  Required<Omit<TinyLlamaOptions, "chatTemplate" | "vocabularySize">> &
    Pick<TinyLlamaOptions, "chatTemplate" | "vocabularySize">
>;

/**
 * Changes whenever the same options start producing different bytes, so caches keyed on the
 * options (the tests' model cache, the demo model file) know to rebuild.
 */
export const TINY_LLAMA_GENERATOR_VERSION = 1;

/** The built-in demo model the product generates when no model is configured. */
export const DEMO_MODEL_OPTIONS: TinyLlamaOptions = Object.freeze({
  name: "demo",
  seed: 20240601,
  chatTemplate: "chatml",
});

/** The standard ChatML template (as shipped by ChatML models), so loaders recognise it. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']" +
  " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}" +
  "{{ '<|im_start|>assistant\\n' }}{% endif %}";

const WORDS = (
  "the a an and or but of to in on at by for with from up down over under into out " +
  "I you he she it we they me him her us them my your his its our their this that " +
  "is was are were be been has had have do did will would can could not no yes so then " +
  "there here when where what who why how all some one two three many more most very " +
  "Once upon time The He She It They There One day little big old new good bad happy sad " +
  "dog cat bird fish tree house home boy girl man woman mom dad friend king queen sun moon " +
  "star sky sea rain snow wind fire water ball toy book car park garden forest river hill " +
  "door room bed cake apple bread milk food box hat shoe red blue green yellow white black " +
  "saw went said made played ran jumped looked wanted liked loved found took gave came " +
  "asked felt smiled laughed cried walked opened helped " +
  "see go say make play run jump look want like love find take give come know think eat " +
  "after before again always never still just only also together away back around inside " +
  "outside near far long small tall soft warm cold bright dark quiet loud fast slow"
).split(" ");
const PUNCTUATION = [".", ",", "!", "?"];

/** Weights are uniform in ±WEIGHT_SCALE/√fan-in. */
const WEIGHT_SCALE = 3;

const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, unused: 5, byte: 6 } as const;

interface Vocabulary {
  readonly tokens: string[];
  readonly scores: number[];
  readonly types: number[];
  /** Tokens random output may produce: whole words and punctuation. */
  readonly emittable: boolean[];
  readonly eosId: number;
}

/** Fills in every default, so equal models have equal resolved options. */
export function resolveTinyLlamaOptions(options: TinyLlamaOptions = {}): ResolvedTinyLlamaOptions {
  const headCount = options.headCount ?? 4;
  const resolved: ResolvedTinyLlamaOptions = {
    seed: options.seed ?? 1,
    name: options.name ?? "tiny-llama",
    embeddingLength: options.embeddingLength ?? 256,
    blockCount: options.blockCount ?? 4,
    headCount,
    headCountKv: options.headCountKv ?? headCount,
    feedForwardLength: options.feedForwardLength ?? 688,
    contextLength: options.contextLength ?? 2048,
    tensorType: options.tensorType ?? "f16",
    chatTemplate: options.chatTemplate,
    vocabularySize: options.vocabularySize,
  };
  const { embeddingLength: e, headCountKv, feedForwardLength: ff } = resolved;
  for (const key of [
    "embeddingLength",
    "blockCount",
    "headCount",
    "headCountKv",
    "feedForwardLength",
    "contextLength",
  ] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 1) {
      throw new RangeError(`${key} must be a positive integer, got ${resolved[key]}`);
    }
  }
  if (e % headCount !== 0 || headCount % headCountKv !== 0) {
    throw new RangeError(
      `embeddingLength (${e}) must be a multiple of headCount (${headCount}), which must be a multiple of headCountKv (${headCountKv})`,
    );
  }
  const kvLength = (headCountKv * e) / headCount;
  if (resolved.tensorType === "q8_0" && [e, ff, kvLength].some((n) => n % 32 !== 0)) {
    throw new RangeError(
      `tensorType q8_0 needs embeddingLength, feedForwardLength and the key/value width to be multiples of 32, got ${e}, ${ff}, ${kvLength}`,
    );
  }
  return resolved;
}

/** Builds the GGUF file of a tiny llama model in memory. */
export function buildTinyLlamaGguf(options: TinyLlamaOptions = {}): Buffer {
  return encodeGguf(tinyLlamaGgufFile(options));
}

/**
 * The same model as a split GGUF of `parts` files (`gguf-split` layout: every part carries
 * `split.no`, `split.count` and `split.tensors.count`; the first also all the model's metadata;
 * the tensors are shared out in order). Name the files `<prefix>-00001-of-0000N.gguf` ...
 */
export function buildTinyLlamaGgufSplit(options: TinyLlamaOptions, parts: number): Buffer[] {
  const file = tinyLlamaGgufFile(options);
  const count = file.tensors.length;
  if (!Number.isInteger(parts) || parts < 1 || parts > count) {
    throw new RangeError(`parts must be a whole number in [1, ${count}], got ${parts}`);
  }
  const split = (index: number): Array<[string, GgufValue]> => [
    ["split.no", { type: "u16", value: index }],
    ["split.count", { type: "u16", value: parts }],
    ["split.tensors.count", { type: "i32", value: count }],
  ];
  return Array.from({ length: parts }, (_, index) =>
    encodeGguf({
      metadata: index === 0 ? [...file.metadata, ...split(0)] : split(index),
      tensors: file.tensors.slice(
        Math.floor((index * count) / parts),
        Math.floor(((index + 1) * count) / parts),
      ),
    }),
  );
}

function tinyLlamaGgufFile(options: TinyLlamaOptions): GgufFile {
  const o = resolveTinyLlamaOptions(options);
  const vocab = buildVocabulary(o);
  const vocabSize = vocab.tokens.length;
  const e = o.embeddingLength;
  const kv = (o.headCountKv * e) / o.headCount;
  const weightType = { f32: GgmlType.F32, f16: GgmlType.F16, q8_0: GgmlType.Q8_0 }[o.tensorType];

  const tensors: GgufTensor[] = [];
  const weight = (name: string, dims: [number, number], rows?: (row: number) => boolean) => {
    const index = tensors.length;
    const data = () => {
      // A generator per tensor keeps each tensor's values independent of the others' sizes.
      const random = createSeededRandom(
        Math.imul(o.seed, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b),
      );
      // Scaled by fan-in so every layer matters at any size: with the ±0.03 of gguf-notes.md the
      // context barely moves the logits and greedy output loops on one word ("saw saw saw").
      const amplitude = WEIGHT_SCALE / Math.sqrt(dims[0]);
      const values = new Float32Array(dims[0] * dims[1]);
      for (let row = 0; row < dims[1]; row++) {
        if (rows !== undefined && !rows(row)) continue;
        for (let col = 0; col < dims[0]; col++)
          values[row * dims[0] + col] = random.uniform(amplitude);
      }
      return values;
    };
    tensors.push({ name, dims, type: weightType, data });
  };
  const norm = (name: string) =>
    tensors.push({ name, dims: [e], type: GgmlType.F32, data: new Float32Array(e).fill(1) });

  weight("token_embd.weight", [e, vocabSize]);
  norm("output_norm.weight");
  // Zero output rows give those tokens a logit of exactly 0 while the word rows get random
  // logits of both signs, so greedy decoding picks whole words, never bytes, fragments or eos.
  weight("output.weight", [e, vocabSize], (row) => vocab.emittable[row] === true);
  for (let layer = 0; layer < o.blockCount; layer++) {
    const block = `blk.${layer}`;
    norm(`${block}.attn_norm.weight`);
    weight(`${block}.attn_q.weight`, [e, e]);
    weight(`${block}.attn_k.weight`, [e, kv]);
    weight(`${block}.attn_v.weight`, [e, kv]);
    weight(`${block}.attn_output.weight`, [e, e]);
    norm(`${block}.ffn_norm.weight`);
    weight(`${block}.ffn_gate.weight`, [e, o.feedForwardLength]);
    weight(`${block}.ffn_down.weight`, [o.feedForwardLength, e]);
    weight(`${block}.ffn_up.weight`, [e, o.feedForwardLength]);
  }

  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  const metadata: Array<[string, GgufValue]> = [
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.name", { type: "string", value: o.name }],
    ["general.file_type", u32({ f32: 0, f16: 1, q8_0: 7 }[o.tensorType])],
    ["llama.context_length", u32(o.contextLength)],
    ["llama.embedding_length", u32(e)],
    ["llama.block_count", u32(o.blockCount)],
    ["llama.feed_forward_length", u32(o.feedForwardLength)],
    ["llama.attention.head_count", u32(o.headCount)],
    ["llama.attention.head_count_kv", u32(o.headCountKv)],
    ["llama.attention.layer_norm_rms_epsilon", { type: "f32", value: 1e-5 }],
    ["llama.rope.dimension_count", u32(e / o.headCount)],
    ["llama.rope.freq_base", { type: "f32", value: 10000 }],
    ["llama.vocab_size", u32(vocabSize)],
    ["tokenizer.ggml.model", { type: "string", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "string[]", value: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: "f32[]", value: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: "i32[]", value: vocab.types }],
    ["tokenizer.ggml.unknown_token_id", u32(0)],
    ["tokenizer.ggml.bos_token_id", u32(1)],
    ["tokenizer.ggml.eos_token_id", u32(vocab.eosId)],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: true }],
    ["tokenizer.ggml.add_eos_token", { type: "bool", value: false }],
  ];
  if (o.chatTemplate === "chatml") {
    metadata.push(["tokenizer.chat_template", { type: "string", value: CHATML_TEMPLATE }]);
  }
  return { metadata, tensors };
}

/**
 * Writes the model to `filePath` atomically (temp file in the same folder, then rename), so a
 * reader — another process included — never sees a half-written file. Creates parent folders.
 */
export async function writeTinyLlamaGguf(
  filePath: string,
  options: TinyLlamaOptions = {},
): Promise<void> {
  const bytes = buildTinyLlamaGguf(options);
  await mkdir(path.dirname(filePath), { recursive: true });
  const tempPath = `${filePath}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(tempPath, bytes);
    await rename(tempPath, filePath);
  } catch (error) {
    await rm(tempPath, { force: true });
    throw error;
  }
}

function buildVocabulary(o: ResolvedTinyLlamaOptions): Vocabulary {
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const emittable: boolean[] = [];
  const index = new Map<string, number>();
  const add = (text: string, type: number, score: number, emit: boolean) => {
    const existing = index.get(text);
    if (existing !== undefined) {
      emittable[existing] = emittable[existing] === true || emit;
      return;
    }
    index.set(text, tokens.length);
    tokens.push(text);
    types.push(type);
    scores.push(score);
    emittable.push(emit);
  };

  add("<unk>", TOKEN_TYPE.unknown, 0, false);
  add("<s>", TOKEN_TYPE.control, 0, false);
  add("</s>", TOKEN_TYPE.control, 0, false);
  if (o.chatTemplate === "chatml") {
    add("<|im_start|>", TOKEN_TYPE.control, 0, false);
    add("<|im_end|>", TOKEN_TYPE.control, 0, false);
  }
  for (let byte = 0; byte < 256; byte++) {
    const hex = byte.toString(16).toUpperCase().padStart(2, "0");
    add(`<0x${hex}>`, TOKEN_TYPE.byte, -1000, false);
  }
  // SentencePiece merges two adjacent pieces only when the merged text is itself a token, so
  // every prefix of `▁word` must exist for the word to be reached; longer pieces score higher.
  for (const word of WORDS) {
    const piece = `\u2581${word}`;
    for (let end = 2; end <= piece.length; end++) {
      add(piece.slice(0, end), TOKEN_TYPE.normal, end, end === piece.length);
    }
  }
  for (const mark of PUNCTUATION) add(mark, TOKEN_TYPE.normal, 1, true);
  const eosId = index.get(o.chatTemplate === "chatml" ? "<|im_end|>" : "</s>") ?? 2;
  for (let n = tokens.length; n < (o.vocabularySize ?? 0); n++) {
    add(`<unused${n}>`, TOKEN_TYPE.unused, -1000, false);
  }
  return { tokens, scores, types, emittable, eosId };
}
