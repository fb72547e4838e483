import { fileURLToPath } from "node:url";

/**
 * The model thread's module file, next to this one's folder. It has this module's own extension,
 * so it resolves to `.js` when compiled and to `.ts` when run from source (tests via tsx).
 */
export function threadEntryPath(): string {
  const extension = import.meta.url.endsWith(".ts") ? "ts" : "js";
  return fileURLToPath(new URL(`../thread/model-thread.${extension}`, import.meta.url));
}
