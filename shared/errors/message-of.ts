/** An error's message for a log line: its `message` if it is an `Error`, else `"unknown"`. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : "unknown";
}
