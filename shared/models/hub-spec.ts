/**
 * Hugging Face Hub specs in `MODELS`: `owner/repo`, `owner/repo:QUANT`, `owner/repo/path/file.gguf`,
 * each optionally pinned with `@revision` after the repo (`owner/repo@v1.0:Q8_0`). Parsing is pure
 * text work (no file system, no network), so every process derives the same names from `MODELS`.
 */

/** A model file to fetch from a Hugging Face model repository. */
export interface HubModelSource {
  readonly kind: "hub";
  /** `owner/name`. */
  readonly repo: string;
  /** Branch, tag or 40-hex commit; `"main"` when the spec gives none. */
  readonly revision: string;
  /** Path of the `.gguf` file inside the repo, when the spec names one. */
  readonly file?: string;
  /** Quantization asked for with `:QUANT`; `undefined` means the `HF_QUANT` preference. */
  readonly quant?: string;
}

// Hub names: letters, digits, ".", "_", "-" (no leading punctuation). Revisions are kept to the
// same alphabet (a branch with "/" in it can be pinned by its commit instead) so "@rev/file" and
// "@rev:QUANT" stay unambiguous.
const segment = "[A-Za-z0-9][A-Za-z0-9._-]*";
const hubSpecPattern = new RegExp(
  `^(${segment})/(${segment})(?:@(${segment}))?(?::([A-Za-z0-9_]+)|/(.+))?$`,
);

/**
 * Parses `spec` as a hub spec; `undefined` when it does not have a hub spec's shape. `problem` is
 * set when it has the shape but something is wrong (e.g. a file that is not `.gguf`).
 */
export function parseHubSpec(spec: string): { source?: HubModelSource; problem?: string } {
  const match = hubSpecPattern.exec(spec);
  if (match === null) return {};
  const [, owner, name, revision, quant, file] = match;
  if (file !== undefined) {
    const parts = file.split("/");
    if (parts.some((part) => part === "" || part === "." || part === ".." || part.includes("\\"))) {
      return { problem: `"${file}" is not a plain path inside the repo` };
    }
    if (!file.toLowerCase().endsWith(".gguf")) {
      return { problem: `"${file}" is not a .gguf file` };
    }
  }
  return {
    source: Object.freeze({
      kind: "hub",
      repo: `${owner}/${name}`,
      revision: revision ?? "main",
      ...(file !== undefined ? { file } : {}),
      ...(quant !== undefined ? { quant: quant.toUpperCase() } : {}),
    }),
  };
}

/** The default model name of a hub spec: the repo's name, kept to the model-name alphabet. */
export function hubModelName(repo: string): string {
  const name = repo.slice(repo.indexOf("/") + 1);
  return name
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, 64);
}
