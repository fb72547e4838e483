/**
 * Which `.gguf` file(s) of a repo to serve: by path, or by quantization read from file names.
 * Pure functions over lists of repo paths, used on the Hub's file listing and on a cached snapshot.
 */
import { ModelLoadError } from "../../../shared/errors/index.js";

/** A model in a repo: one file, or every part of a split set (`-00001-of-00003.gguf` ...). */
export interface GgufSet {
  /** Repo paths of the parts in order; one entry for a single file. */
  readonly paths: readonly string[];
  /** Quantization read from the name, upper case (`Q4_K_M`), if the name carries one. */
  readonly quant: string | undefined;
}

const splitPattern = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;
// llama.cpp's quantization names as they appear in file names: Q4_K_M, IQ2_XXS, TQ1_0, Q4_0_4_4,
// F16, BF16, ... — bounded by "-", "." or "_"-free separators so "Q4_K_M" is not read as "Q4".
const quantPattern = /(?:^|[-._/])((?:I|T)?Q\d+(?:_[A-Z0-9]+)*|BF16|FP16|FP32|F16|F32)(?=[-.]|$)/gi;

/** `{ index, count }` of a split part (1-based), else `undefined`. */
export function splitPartOf(
  path: string,
): { prefix: string; index: number; count: number } | undefined {
  const match = splitPattern.exec(path);
  if (match === null) return undefined;
  const [, prefix = "", index = "", count = ""] = match;
  return { prefix, index: Number(index), count: Number(count) };
}

/** Every part's path of the split set `path` belongs to (just `[path]` for a single file). */
export function splitSetPaths(path: string): string[] {
  const split = splitPartOf(path);
  if (split === undefined || split.count < 1) return [path];
  const pad = (n: number) => String(n).padStart(5, "0");
  return Array.from(
    { length: split.count },
    (_, i) => `${split.prefix}-${pad(i + 1)}-of-${pad(split.count)}.gguf`,
  );
}

/** The quantization a file name carries (the last one in its base name, else in its folders). */
export function quantOf(path: string): string | undefined {
  const base = path.slice(path.lastIndexOf("/") + 1).replace(/(-\d{5}-of-\d{5})?\.gguf$/i, "");
  const find = (text: string) => [...text.matchAll(quantPattern)].at(-1)?.[1]?.toUpperCase();
  return find(base) ?? find(path.slice(0, Math.max(0, path.lastIndexOf("/"))));
}

function isModelGguf(path: string): boolean {
  const base = path.slice(path.lastIndexOf("/") + 1).toLowerCase();
  // Multimodal projectors ship next to the model in many repos; they are not a model to serve.
  return base.endsWith(".gguf") && !base.startsWith("mmproj") && !base.includes("-mmproj");
}

/** Groups a repo's `.gguf` paths into models; a split set lacking parts is left out. */
export function ggufSets(paths: readonly string[]): GgufSet[] {
  const present = new Set(paths);
  const seen = new Set<string>();
  const sets: GgufSet[] = [];
  for (const path of [...paths].sort()) {
    if (!isModelGguf(path)) continue;
    const parts = splitSetPaths(path);
    const first = parts[0] ?? path;
    if (seen.has(first) || !parts.every((part) => present.has(part))) continue;
    seen.add(first);
    sets.push({ paths: parts, quant: quantOf(first) });
  }
  return sets;
}

export interface GgufWanted {
  readonly repo: string;
  /** A path the spec names; its split set is taken whole. */
  readonly file?: string | undefined;
  /** Quantizations in order of preference, upper case. */
  readonly quants: readonly string[];
}

/**
 * The set to serve among `paths` (a repo's files). Throws a {@link ModelLoadError} that says what
 * to do instead when the repo has no GGUF, lacks the named file, or has no (or more than one)
 * file of the wanted quantization.
 */
export function chooseGguf(paths: readonly string[], wanted: GgufWanted): GgufSet {
  const sets = ggufSets(paths);
  const { repo } = wanted;
  if (sets.length === 0) {
    const name = repo.slice(repo.indexOf("/") + 1);
    throw new ModelLoadError(
      `Hugging Face repo "${repo}" holds no GGUF file (llama.cpp serves GGUF only): use a GGUF ` +
        `conversion of the model (search the Hub for "${name} GGUF") or give a local .gguf path`,
    );
  }
  const list = (chosen: readonly GgufSet[]) =>
    chosen
      .map((set) =>
        set.paths.length > 1 ? `${set.paths[0]} (+${set.paths.length - 1} parts)` : set.paths[0],
      )
      .join(", ");
  if (wanted.file !== undefined) {
    const first = splitSetPaths(wanted.file)[0];
    const set = sets.find((candidate) => candidate.paths[0] === first);
    if (set === undefined) {
      throw new ModelLoadError(
        `Hugging Face repo "${repo}" has no complete GGUF "${wanted.file}"; its GGUF files: ${list(sets)}`,
      );
    }
    return set;
  }
  for (const quant of wanted.quants) {
    const matches = sets.filter((set) => set.quant === quant);
    if (matches.length === 1 && matches[0] !== undefined) return matches[0];
    if (matches.length > 1) {
      throw new ModelLoadError(
        `Hugging Face repo "${repo}" has several ${quant} GGUF files (${list(matches)}): name one as ${repo}/<path>.gguf`,
      );
    }
  }
  const quants = [...new Set(sets.map((set) => set.quant).filter((quant) => quant !== undefined))];
  throw new ModelLoadError(
    `Hugging Face repo "${repo}" has no GGUF file of quantization ${wanted.quants.join(" or ")}; ` +
      `it has ${quants.length > 0 ? quants.join(", ") : "no quantization in its file names"} ` +
      `(files: ${list(sets)}): write ${repo}:<QUANT>, ${repo}/<path>.gguf, or set HF_QUANT`,
  );
}
