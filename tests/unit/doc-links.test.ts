/**
 * Every relative link of the documentation resolves: in README.md and every markdown file under
 * docs/, a link to a file names one that exists, and a link to `#anchor` (alone, or after a
 * markdown file) names a heading of that file, by GitHub's heading slugs. Links in code are not
 * links; links to other sites are not checked.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../shared/paths.js";
import { headingSlugs, markdownLinks } from "../support/readme.js";

const root = packageRoot();

/** README.md and the markdown files under docs/, relative to the package root. */
function documentationFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
      const relative = path.join(dir, entry.name);
      if (entry.isDirectory()) return walk(relative);
      return entry.name.endsWith(".md") ? [relative] : [];
    });
  return ["README.md", ...(existsSync(path.join(root, "docs")) ? walk("docs") : [])];
}

describe("documentation links", () => {
  const files = documentationFiles();
  const slugs = new Map<string, Set<string>>();
  const slugsOf = (file: string) => {
    let found = slugs.get(file);
    if (found === undefined) {
      found = headingSlugs(readFileSync(path.join(root, file), "utf8"));
      slugs.set(file, found);
    }
    return found;
  };

  it("GitHub's heading slugs are what the links are checked against", () => {
    const text = [
      "# Stopping `npm start`, and process managers",
      "## openai (JavaScript), through the proxy",
      "```sh",
      "# not a heading",
      "```",
      "### Limits",
      "### Limits",
      "## `MAX_TOKENS` — 1 … 2 × 3",
    ].join("\n");
    assert.deepEqual(
      [...headingSlugs(text)],
      [
        "stopping-npm-start-and-process-managers",
        "openai-javascript-through-the-proxy",
        "limits",
        "limits-1",
        "max_tokens--1--2--3",
      ],
    );
  });

  it("links in code are not links, and a link may span lines", () => {
    const text = [
      "See [the\nproxy](#the-proxy) and ![a picture](../a.png).",
      "`[not](#a-link)` and",
      "```md",
      "[not](#a-link-either)",
      "```",
      "[a site](https://example.com/#x)",
    ].join("\n");
    assert.deepEqual(markdownLinks(text), ["#the-proxy", "../a.png", "https://example.com/#x"]);
  });

  it("README.md and docs/ are found", () => {
    assert.ok(files.includes("README.md"));
  });

  for (const file of files) {
    it(`${file}: every relative link and anchor resolves`, () => {
      const broken: string[] = [];
      for (const link of markdownLinks(readFileSync(path.join(root, file), "utf8"))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:, ...
        const hash = link.indexOf("#");
        const target = hash < 0 ? link : link.slice(0, hash);
        const anchor = hash < 0 ? undefined : decodeURIComponent(link.slice(hash + 1));
        const targetFile =
          target === ""
            ? file
            : path.relative(
                root,
                target.startsWith("/")
                  ? path.join(root, target)
                  : path.resolve(root, path.dirname(file), decodeURIComponent(target)),
              );
        if (targetFile.startsWith("..") || !existsSync(path.join(root, targetFile))) {
          broken.push(`${link}: no file ${targetFile}`);
          continue;
        }
        if (anchor === undefined) continue;
        if (!targetFile.endsWith(".md") || statSync(path.join(root, targetFile)).isDirectory()) {
          broken.push(`${link}: an anchor into a file that is not markdown`);
        } else if (!slugsOf(targetFile).has(anchor)) {
          broken.push(`${link}: ${targetFile} has no heading #${anchor}`);
        }
      }
      assert.deepEqual(broken, []);
    });
  }
});
