/**
 * The message of anything thrown: an `Error`'s own message, anything else as text. For logs and
 * a command's own error lines; what a pool caller may see goes through `toErrorInfo` instead.
 */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
