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

/** `text` without its fenced code blocks (each line of one left empty) and inline code spans. */
function prose(text: string): string {
  let fence: string | undefined;
  const lines = text.split("\n").map((line) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker !== undefined) {
      fence = marker;
      return "";
    }
    if (fence !== undefined) {
      if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length) {
        fence = undefined;
      }
      return "";
    }
    return line;
  });
  return lines.join("\n").replace(/(`+)[\s\S]*?(?<!`)\1(?!`)/g, "");
}

/**
 * The anchors GitHub gives the headings of a markdown text (github-slugger): the heading's text
 * as shown (code spans' text, links' text), lower-cased, without punctuation or symbols (letters,
 * digits, `-` and `_` stay), each space a `-`; a repeated slug gets `-1`, `-2`, ...
 */
export function headingSlugs(text: string): Set<string> {
  const slugs = new Set<string>();
  const occurrences = new Map<string, number>();
  let fence: string | undefined;
  for (const line of text.split("\n")) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker !== undefined) fence = marker;
    else if (fence !== undefined) {
      if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length) {
        fence = undefined;
      }
    } else {
      const heading = /^#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line)?.[1];
      if (heading === undefined) continue;
      const shown = heading
        .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
        .replace(/<[^>]+>/g, "")
        .replace(/`/g, "");
      const base = shown
        .toLowerCase()
        .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
        .replace(/ /g, "-");
      let slug = base;
      while (occurrences.has(slug)) {
        const count = (occurrences.get(base) ?? 0) + 1;
        occurrences.set(base, count);
        slug = `${base}-${count}`;
      }
      occurrences.set(slug, 0);
      slugs.add(slug);
    }
  }
  return slugs;
}

/** The targets of the links and images of a markdown text, outside code, in order. */
export function markdownLinks(text: string): string[] {
  return [
    ...prose(text).matchAll(
      /!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*<?([^()\s>]+)>?(?:\s+"[^"]*")?\s*\)/g,
    ),
  ].map((match) => match[1] ?? "");
}
