/**
 * Reading the documentation (README.md and docs/*.md) from tests: a file's text, one section of
 * it, its tables' names, its code blocks, its headings' anchors and its links.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../../shared/paths.js";

/** The text of a documentation file, by its path from the package root (`docs/api.md`). */
export function doc(file: string): string {
  return readFileSync(path.join(packageRoot(), file), "utf8");
}

/** For each line of a markdown text, whether it belongs to a fenced code block (fences included). */
function inCode(lines: string[]): boolean[] {
  let fence: string | undefined;
  return lines.map((line) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined) {
      if (marker !== undefined) fence = marker;
      return marker !== undefined;
    }
    if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length) {
      fence = undefined;
    }
    return true;
  });
}

/** The level and text of a heading line (`## The request` → 2, "The request"). */
function heading(line: string): { level: number; text: string } | undefined {
  const match = /^(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line);
  return match === null ? undefined : { level: match[1]?.length ?? 0, text: match[2] ?? "" };
}

/**
 * The section of a documentation file under a heading (its text as written, any level), up to
 * the next heading of the same or a higher level; headings inside code blocks do not count.
 */
export function docSection(file: string, title: string): string {
  const lines = doc(file).split("\n");
  const code = inCode(lines);
  const start = lines.findIndex((line, i) => !code[i] && heading(line)?.text === title);
  if (start < 0) throw new Error(`${file} has no "${title}" heading`);
  const level = heading(lines[start] ?? "")?.level ?? 1;
  let end = start + 1;
  while (end < lines.length) {
    const next = code[end] ? undefined : heading(lines[end] ?? "");
    if (next !== undefined && next.level <= level) break;
    end++;
  }
  return lines.slice(start, end).join("\n");
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
  const lines = text.split("\n");
  const code = inCode(lines);
  return lines
    .map((line, i) => (code[i] ? "" : line))
    .join("\n")
    .replace(/(`+)[\s\S]*?(?<!`)\1(?!`)/g, "");
}

/**
 * The anchors GitHub gives the headings of a markdown text (github-slugger): the heading's text
 * as shown (code spans' text, links' text), lower-cased, without punctuation or symbols (letters,
 * digits, `-` and `_` stay), each space a `-`; a repeated slug gets `-1`, `-2`, ...
 */
export function headingSlugs(text: string): Set<string> {
  const slugs = new Set<string>();
  const occurrences = new Map<string, number>();
  const lines = text.split("\n");
  const code = inCode(lines);
  lines.forEach((line, i) => {
    const title = code[i] ? undefined : heading(line)?.text;
    if (title === undefined) return;
    const shown = title
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
  });
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
