import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import {
  encodeGguf,
  GGUF_ALIGNMENT,
  GgmlType,
  tensorByteLength,
  toHalf,
} from "../../gpu-worker/models/gguf/gguf-writer.js";
import { createSeededRandom } from "../../gpu-worker/models/gguf/seeded-random.js";
import {
  buildTinyLlamaGguf,
  resolveTinyLlamaOptions,
  TINY_LLAMA_GENERATOR_VERSION,
} from "../../gpu-worker/models/tiny-llama.js";

interface ParsedTensor {
  name: string;
  dims: number[];
  type: number;
  offset: number;
}

/** An independent reader, so the tests check the layout rather than the writer against itself. */
function parseGguf(file: Buffer) {
  let at = 0;
  /** Advances past `size` bytes and returns where they start. */
  const take = (size: number) => {
    at += size;
    return at - size;
  };
  const u32 = () => file.readUInt32LE(take(4));
  const u64 = () => Number(file.readBigUInt64LE(take(8)));
  const str = () => {
    const length = u64();
    return file.toString("utf8", take(length), at);
  };
  const value = (type: number): unknown => {
    switch (type) {
      case 4:
        return u32();
      case 5:
        return file.readInt32LE(take(4));
      case 6:
        return file.readFloatLE(take(4));
      case 7:
        return file.readUInt8(take(1)) === 1;
      case 8:
        return str();
      case 9: {
        const itemType = u32();
        return Array.from({ length: u64() }, () => value(itemType));
      }
      case 10:
        return file.readBigUInt64LE(take(8));
      default:
        throw new Error(`unexpected value type ${type}`);
    }
  };

  const magic = file.toString("ascii", 0, 4);
  at = 4;
  const version = u32();
  const tensorCount = u64();
  const metadataCount = u64();
  const metadata = new Map<string, unknown>();
  for (let i = 0; i < metadataCount; i++) {
    const key = str();
    metadata.set(key, value(u32()));
  }
  const tensors: ParsedTensor[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str();
    const dims = Array.from({ length: u32() }, u64);
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const dataStart = Math.ceil(at / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  return { magic, version, tensorCount, metadataCount, metadata, tensors, dataStart };
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
const small = { blockCount: 1, embeddingLength: 64, headCount: 2, feedForwardLength: 96 };

describe("seeded random", () => {
  it("repeats for a seed and differs between seeds", () => {
    const draw = (seed: number) => {
      const random = createSeededRandom(seed);
      return Array.from({ length: 5 }, () => random.next());
    };
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
    assert.ok(draw(7).every((x) => x >= 0 && x < 1));
  });
});

describe("gguf writer", () => {
  it("writes a header, metadata and 32-aligned tensors that parse back", () => {
    const file = encodeGguf({
      metadata: [
        ["a.u32", { type: "u32", value: 7 }],
        ["a.i32", { type: "i32", value: -3 }],
        ["a.f32", { type: "f32", value: 0.5 }],
        ["a.bool", { type: "bool", value: true }],
        ["a.u64", { type: "u64", value: 2n ** 40n }],
        ["a.str", { type: "string", value: "héllo ▁" }],
        ["a.strs", { type: "string[]", value: ["x", "yz"] }],
        ["a.f32s", { type: "f32[]", value: [1.5, -2] }],
        ["a.i32s", { type: "i32[]", value: [1, -2, 3] }],
      ],
      tensors: [
        { name: "odd", dims: [3], type: GgmlType.F32, data: new Float32Array([1, 2, 3]) },
        { name: "half", dims: [5, 1], type: GgmlType.F16, data: () => new Float32Array(5).fill(1) },
        { name: "q", dims: [32, 2], type: GgmlType.Q8_0, data: new Float32Array(64) },
      ],
    });
    const parsed = parseGguf(file);
    assert.equal(parsed.magic, "GGUF");
    assert.equal(parsed.version, 3);
    assert.equal(parsed.tensorCount, 3);
    assert.equal(parsed.metadataCount, 10); // nine given + general.alignment
    assert.equal(parsed.metadata.get("general.alignment"), 32);
    assert.equal(parsed.metadata.get("a.i32"), -3);
    assert.equal(parsed.metadata.get("a.bool"), true);
    assert.equal(parsed.metadata.get("a.u64"), 2n ** 40n);
    assert.equal(parsed.metadata.get("a.str"), "héllo ▁");
    assert.deepEqual(parsed.metadata.get("a.strs"), ["x", "yz"]);
    assert.deepEqual(parsed.metadata.get("a.f32s"), [1.5, -2]);
    assert.deepEqual(parsed.metadata.get("a.i32s"), [1, -2, 3]);
    assert.deepEqual(
      parsed.tensors.map((t) => [t.name, t.dims, t.type, t.offset]),
      [
        ["odd", [3], 0, 0],
        ["half", [5, 1], 1, 32],
        ["q", [32, 2], 8, 64],
      ],
    );
    assert.equal(parsed.dataStart % 32, 0);
    assert.equal(file.length, parsed.dataStart + 64 + 68 + 28); // last tensor padded to 32
    assert.equal(file.readFloatLE(parsed.dataStart + 8), 3);
    assert.equal(file.readUInt16LE(parsed.dataStart + 32), 0x3c00);
  });

  it("converts to f16 with round-to-nearest-even, subnormals and overflow", () => {
    assert.equal(toHalf(1), 0x3c00);
    assert.equal(toHalf(-2), 0xc000);
    assert.equal(toHalf(65504), 0x7bff);
    assert.equal(toHalf(1e6), 0x7c00);
    assert.equal(toHalf(-0), 0x8000);
    assert.equal(toHalf(2 ** -24), 0x0001);
    assert.equal(toHalf(2 ** -26), 0);
    assert.equal(toHalf(1 + 2 ** -11), 0x3c00); // tie → even mantissa
    assert.equal(toHalf(1 + 3 * 2 ** -11), 0x3c02); // tie → even mantissa (up)
    assert.equal(toHalf(Number.NaN) & 0x7e00, 0x7e00);
  });

  it("encodes Q8_0 blocks as an f16 scale then 32 int8 rounded half away from zero", () => {
    const values = new Float32Array(96);
    // Block 0: max |x| = 127 gives scale 1, so each quant is the value rounded.
    values.set([127, -127, 1.4, -1.6, 2.5, -2.5, 0.49], 0);
    // Block 1: all zeros gives scale 0 and zero quants.
    // Block 2: scale 16/127 = 0.12598… → f16 0x3008; 4/scale = 31.75 → 32, 1/scale = 7.94 → 8.
    values.set([16, -16, 4, 1], 64);
    const file = encodeGguf({
      metadata: [],
      tensors: [{ name: "q", dims: [32, 3], type: GgmlType.Q8_0, data: values }],
    });
    const { dataStart } = parseGguf(file);
    const block = (index: number) =>
      file.subarray(dataStart + index * 34, dataStart + index * 34 + 34);
    const quants = (index: number) => [...new Int8Array(block(index).subarray(2))];

    assert.equal(block(0).readUInt16LE(0), 0x3c00);
    assert.deepEqual(quants(0).slice(0, 8), [127, -127, 1, -2, 3, -3, 0, 0]);
    assert.equal(block(1).readUInt16LE(0), 0);
    assert.ok(quants(1).every((q) => q === 0));
    assert.equal(block(2).readUInt16LE(0), 0x3008);
    assert.deepEqual(quants(2).slice(0, 5), [127, -127, 32, 8, 0]);
    assert.equal(tensorByteLength(GgmlType.Q8_0, [32, 3]), 102);
    assert.throws(() => tensorByteLength(GgmlType.Q8_0, [48, 1]), /multiple of 32/);
  });
});

describe("tiny llama gguf", () => {
  it("gives identical bytes for the same seed and different bytes for another", () => {
    const a = buildTinyLlamaGguf({ ...small, seed: 5 });
    assert.ok(a.equals(buildTinyLlamaGguf({ ...small, seed: 5 })));
    assert.ok(!a.equals(buildTinyLlamaGguf({ ...small, seed: 6 })));
  });

  it("lays out a llama model: counts, metadata and 32-aligned tensor offsets", () => {
    const file = buildTinyLlamaGguf({ chatTemplate: "chatml" });
    const parsed = parseGguf(file);
    assert.equal(parsed.magic, "GGUF");
    assert.equal(parsed.version, 3);
    assert.equal(parsed.tensorCount, 3 + 9 * 4);
    assert.equal(parsed.metadataCount, parsed.metadata.size);
    assert.equal(parsed.metadataCount, 24);
    assert.equal(parsed.metadata.get("general.architecture"), "llama");
    assert.equal(parsed.metadata.get("llama.embedding_length"), 256);
    assert.equal(parsed.metadata.get("llama.rope.dimension_count"), 64);

    const tokens = parsed.metadata.get("tokenizer.ggml.tokens") as string[];
    assert.equal(parsed.metadata.get("llama.vocab_size"), tokens.length);
    assert.equal((parsed.metadata.get("tokenizer.ggml.scores") as number[]).length, tokens.length);
    assert.equal(
      tokens[parsed.metadata.get("tokenizer.ggml.eos_token_id") as number],
      "<|im_end|>",
    );
    assert.ok(tokens.includes("▁Once") && tokens.includes("<0xFF>"));
    assert.match(parsed.metadata.get("tokenizer.chat_template") as string, /<\|im_start\|>/);

    assert.equal(parsed.dataStart % 32, 0);
    for (const tensor of parsed.tensors) assert.equal(tensor.offset % 32, 0, tensor.name);
    const embedding = parsed.tensors.find((t) => t.name === "token_embd.weight");
    assert.deepEqual(embedding?.dims, [256, tokens.length]);
    assert.equal(embedding?.type, GgmlType.F16);
    assert.equal(parsed.tensors.find((t) => t.name === "blk.3.ffn_norm.weight")?.type, 0);
  });

  it("pads the vocabulary and rejects shapes q8_0 cannot hold", () => {
    const parsed = parseGguf(buildTinyLlamaGguf({ ...small, vocabularySize: 1000 }));
    assert.equal(parsed.metadata.get("llama.vocab_size"), 1000);
    assert.throws(() => resolveTinyLlamaOptions({ tensorType: "q8_0" }), /multiples of 32/);
    assert.throws(() => resolveTinyLlamaOptions({ headCount: 3 }), /multiple of headCount/);
  });

  it("pins the default model's bytes", () => {
    // Changing the generator's output on purpose? Bump TINY_LLAMA_GENERATOR_VERSION (cached
    // models are keyed on it) and update both values here.
    assert.equal(TINY_LLAMA_GENERATOR_VERSION, 1);
    assert.equal(
      sha256(buildTinyLlamaGguf()),
      "906b0942474602260b968a4c23bb1a3c24a447592200e37bc5b365d8267ebd38",
    );
  });
});
