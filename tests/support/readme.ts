import { readFileSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../../shared/paths.js";

/** The README's text. */
export function readme(): string {
  return readFileSync(path.join(packageRoot(), "README.md"), "utf8");
}

/** The text of a `## heading` section of the README, up to the next `## ` heading. */
export function readmeSection(heading: string): string {
  const text = readme();
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const end = text.indexOf("\n## ", start + 4);
  return text.slice(start, end < 0 ? undefined : end);
}

/** The `NAME`s in the first column of the markdown tables in `text` (`| \`NAME\` | ...`). */
export function tableNames(text: string): string[] {
  return [...text.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((match) => match[1] ?? "");
}

/** The fenced code blocks of `text` in a language (```sh, ```python, ...), in order. */
export function codeBlocks(text: string, language: string): string[] {
  return [...text.matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, "gm"))].map(
    (match) => match[1] ?? "",
  );
}
