import type { z } from "zod";

const safeKey = /^[A-Za-z0-9_$]{1,40}$/;

/**
 * Turns schema issues into one message that names each bad field by its path and the rule it
 * breaks, never by its value (values may be prompt text). Unrecognised keys are named only when
 * they look like field names, since a key, too, could carry a caller's text.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], root = "request"): string {
  const parts = issues.slice(0, 10).map((issue) => {
    const where = formatPath(issue.path, root);
    if (issue.code === "unrecognized_keys") {
      const names = issue.keys.map((key) => (safeKey.test(key) ? `"${key}"` : "(unnamed)"));
      return `${where}: unknown field${names.length > 1 ? "s" : ""} ${names.join(", ")}`;
    }
    return `${where}: ${issue.message}`;
  });
  if (issues.length > 10) parts.push(`and ${issues.length - 10} more`);
  return parts.join("; ");
}

function formatPath(path: readonly PropertyKey[], root: string): string {
  let out = root;
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "string" && safeKey.test(part)) out += `.${part}`;
    else out += ".(field)";
  }
  return out;
}
