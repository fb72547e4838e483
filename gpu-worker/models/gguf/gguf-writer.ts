/**
 * A minimal GGUF v3 writer (little-endian): the metadata value types and tensor types that a
 * llama-architecture model needs, nothing more. Layout reference: `docs/gguf-notes.md`.
 */

/** ggml tensor types this writer can encode. */
export const GgmlType = { F32: 0, F16: 1, Q8_0: 8 } as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

/** A metadata value, tagged with its GGUF type. */
export type GgufValue =
  | { readonly type: "u16"; readonly value: number }
  | { readonly type: "u32"; readonly value: number }
  | { readonly type: "i32"; readonly value: number }
  | { readonly type: "f32"; readonly value: number }
  | { readonly type: "u64"; readonly value: bigint }
  | { readonly type: "bool"; readonly value: boolean }
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "string[]"; readonly value: readonly string[] }
  | { readonly type: "f32[]"; readonly value: ArrayLike<number> }
  | { readonly type: "i32[]"; readonly value: ArrayLike<number> };

export interface GgufTensor {
  readonly name: string;
  /** Dimensions, innermost first (ggml `ne` order). */
  readonly dims: readonly number[];
  readonly type: GgmlType;
  /**
   * The values, row-major with the innermost dimension first. A function is called once, while
   * encoding, so a large model never holds every tensor as f32 at the same time.
   */
  readonly data: Float32Array | (() => Float32Array);
}

export interface GgufFile {
  /** Written in this order; `general.alignment` is added (32) unless present. */
  readonly metadata: ReadonlyArray<readonly [key: string, value: GgufValue]>;
  readonly tensors: readonly GgufTensor[];
}

export const GGUF_ALIGNMENT = 32;
/** Values per Q8_0 block; each block is one f16 scale then 32 int8 (34 bytes). */
export const Q8_0_BLOCK_SIZE = 32;

const VALUE_TYPE = {
  u16: 2,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
} as const;

/** Encodes a whole GGUF file into one buffer. */
export function encodeGguf(file: GgufFile): Buffer {
  const head = new ByteSink();
  const metadata = [...file.metadata];
  if (!metadata.some(([key]) => key === "general.alignment")) {
    metadata.push(["general.alignment", { type: "u32", value: GGUF_ALIGNMENT }]);
  }
  head.bytes(Buffer.from("GGUF", "ascii")).u32(3);
  head.u64(BigInt(file.tensors.length)).u64(BigInt(metadata.length));
  for (const [key, value] of metadata) writeKeyValue(head, key, value);

  let dataSize = 0;
  const offsets: number[] = [];
  for (const tensor of file.tensors) {
    head.string(tensor.name).u32(tensor.dims.length);
    for (const dim of tensor.dims) head.u64(BigInt(dim));
    head.u32(tensor.type).u64(BigInt(dataSize));
    offsets.push(dataSize);
    dataSize = alignUp(dataSize + tensorByteLength(tensor.type, tensor.dims), GGUF_ALIGNMENT);
  }

  const headBytes = head.toBuffer();
  const dataStart = alignUp(headBytes.length, GGUF_ALIGNMENT);
  const out = Buffer.alloc(dataStart + dataSize); // zero-filled, so padding is zeros
  headBytes.copy(out, 0);
  file.tensors.forEach((tensor, index) => {
    const values = typeof tensor.data === "function" ? tensor.data() : tensor.data;
    const count = tensor.dims.reduce((a, b) => a * b, 1);
    if (values.length !== count) {
      throw new Error(`tensor ${tensor.name} has ${values.length} values, dims need ${count}`);
    }
    encodeTensorData(tensor.type, values, out, dataStart + (offsets[index] ?? 0));
  });
  return out;
}

/** Bytes a tensor takes in the data section, before alignment padding. */
export function tensorByteLength(type: GgmlType, dims: readonly number[]): number {
  const count = dims.reduce((a, b) => a * b, 1);
  if (type === GgmlType.F32) return count * 4;
  if (type === GgmlType.F16) return count * 2;
  if ((dims[0] ?? 0) % Q8_0_BLOCK_SIZE !== 0) {
    throw new Error(`Q8_0 needs the innermost dimension to be a multiple of 32, got ${dims[0]}`);
  }
  return (count / Q8_0_BLOCK_SIZE) * 34;
}

/** Writes `values` encoded as `type` into `out` at `offset`. */
export function encodeTensorData(
  type: GgmlType,
  values: Float32Array,
  out: Buffer,
  offset: number,
): void {
  if (type === GgmlType.F32) {
    for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i] ?? 0, offset + i * 4);
  } else if (type === GgmlType.F16) {
    for (let i = 0; i < values.length; i++)
      out.writeUInt16LE(toHalf(values[i] ?? 0), offset + i * 2);
  } else {
    for (let block = 0; block * Q8_0_BLOCK_SIZE < values.length; block++) {
      const start = block * Q8_0_BLOCK_SIZE;
      const at = offset + block * 34;
      let absMax = 0;
      for (let j = 0; j < Q8_0_BLOCK_SIZE; j++)
        absMax = Math.max(absMax, Math.abs(values[start + j] ?? 0));
      // Mirrors ggml's quantize_row_q8_0_ref (f32 arithmetic, roundf = half away from zero).
      const scale = Math.fround(absMax / 127);
      const inverse = scale === 0 ? 0 : Math.fround(1 / scale);
      out.writeUInt16LE(toHalf(scale), at);
      for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) {
        const scaled = Math.fround((values[start + j] ?? 0) * inverse);
        out.writeInt8(Math.sign(scaled) * Math.round(Math.abs(scaled)), at + 2 + j);
      }
    }
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 binary16 bits of `value`, rounded to nearest even (Node 20 has no Float16Array). */
export function toHalf(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0] ?? 0;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  let mantissa = bits & 0x7fffff;
  if (exponent === 128 + 15) return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200);
  if (exponent >= 31) return sign | 0x7c00;
  let shift = 13;
  let half = (exponent << 10) | (mantissa >>> 13);
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    mantissa |= 0x800000;
    shift = 14 - exponent;
    half = mantissa >>> shift;
  }
  const rest = mantissa & ((1 << shift) - 1);
  const midpoint = 1 << (shift - 1);
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > midpoint || (rest === midpoint && (half & 1) === 1)) half++;
  return sign | half;
}

function writeKeyValue(sink: ByteSink, key: string, entry: GgufValue): void {
  sink.string(key);
  if (entry.type === "string[]" || entry.type === "f32[]" || entry.type === "i32[]") {
    const itemType = { "string[]": "string", "f32[]": "f32", "i32[]": "i32" } as const;
    sink.u32(VALUE_TYPE.array).u32(VALUE_TYPE[itemType[entry.type]]);
    sink.u64(BigInt(entry.value.length));
    for (let i = 0; i < entry.value.length; i++) {
      if (entry.type === "string[]") sink.string(entry.value[i] ?? "");
      else if (entry.type === "f32[]") sink.f32(entry.value[i] ?? 0);
      else sink.i32(entry.value[i] ?? 0);
    }
    return;
  }
  sink.u32(VALUE_TYPE[entry.type]);
  if (entry.type === "u16") sink.u16(entry.value);
  else if (entry.type === "u32") sink.u32(entry.value);
  else if (entry.type === "i32") sink.i32(entry.value);
  else if (entry.type === "f32") sink.f32(entry.value);
  else if (entry.type === "u64") sink.u64(entry.value);
  else if (entry.type === "bool") sink.bytes(Buffer.from([entry.value ? 1 : 0]));
  else sink.string(entry.value);
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/** Appends little-endian primitives into growing chunks. */
class ByteSink {
  readonly #chunks: Buffer[] = [];

  bytes(chunk: Buffer): this {
    this.#chunks.push(chunk);
    return this;
  }
  u16(value: number): this {
    return this.#fixed(2, (b) => b.writeUInt16LE(value));
  }
  u32(value: number): this {
    return this.#fixed(4, (b) => b.writeUInt32LE(value));
  }
  i32(value: number): this {
    return this.#fixed(4, (b) => b.writeInt32LE(value));
  }
  f32(value: number): this {
    return this.#fixed(4, (b) => b.writeFloatLE(value));
  }
  u64(value: bigint): this {
    return this.#fixed(8, (b) => b.writeBigUInt64LE(value));
  }
  string(value: string): this {
    const utf8 = Buffer.from(value, "utf8");
    return this.u64(BigInt(utf8.length)).bytes(utf8);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.#chunks);
  }
  #fixed(size: number, write: (chunk: Buffer) => void): this {
    const chunk = Buffer.alloc(size);
    write(chunk);
    return this.bytes(chunk);
  }
}
