/**
 * Text that came from a server, made safe to print on a terminal: one line, no control
 * characters (no escape sequences), at most `maxChars` characters.
 */
export function serverText(text: string, maxChars = 500): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point.
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ").trim();
  return flat.length > maxChars ? `${flat.slice(0, maxChars)}…` : flat;
}
