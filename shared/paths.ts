import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

let cachedRoot: string | undefined;

/**
 * The folder holding this package's `package.json`. Found by walking up from this module, so it
 * is the same whether the code runs compiled (`dist/shared/paths.js`) or from source via tsx, and
 * in the image, which holds `dist/` but not the sources.
 */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (isThisPackage(dir)) {
      cachedRoot = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("package root not found above shared/paths");
    dir = parent;
  }
}

function isThisPackage(dir: string): boolean {
  const file = path.join(dir, "package.json");
  if (!existsSync(file)) return false;
  try {
    return (
      (JSON.parse(readFileSync(file, "utf8")) as { name?: unknown }).name === "secure-llm-pool"
    );
  } catch {
    return false;
  }
}
