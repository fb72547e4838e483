/** GBNF grammars for the grammar check's tests. */
import { jsonObjectGrammar } from "../../shared/openai/index.js";

/** Grammars llama.cpp parses, and ones it refuses (with the place our check names). */
export const validGrammars = [
  'root ::= "yes" | "no"',
  'root ::= item+\nitem ::= [a-z]{1,3} ("," | ".")?',
  'root ::= ( [^\\n\\]] | "\\\\" [\\x00-\\x1F] )* # comment\n\n# more\n',
  'root ::= "a"\r\nb ::= "\\u00e9" | "\\U0001F600" | .',
  'root ::=\n  "x" |\n  ( "y"\n    "z" )',
  'root ::= "x"{2} "y"{0,} "z"{ 1 , 4 }',
  'root ::= ("a"?)* x\nx ::= "b" | "c" root',
  jsonObjectGrammar,
];

export const invalidGrammars: [string, RegExp][] = [
  ["root ::= foo", /line 1, column 10: a rule is used but never defined/],
  ['root ::= "a', /unexpected end of input in a string/],
  ["nonsense", /expecting "::="/],
  ['a ::= "x"', /there is no "root" rule/],
  ['root ::= my_rule\nmy_rule ::= "x"', /line 1, column 12: expecting a newline or the end/],
  ['root ::= "\\q"', /unknown escape/],
  ['root ::= "\\x4"', /expecting 2 hex digits/],
  ["root ::= *", /expecting a non-empty item before "\*"/],
  ['root ::= "a" ""{1,4}', /expecting a non-empty item before "{"/],
  ['root ::= ("a"', /expecting "\)"/],
  ['root ::= "a"{3000}', /limited to 2000/],
  ['root ::= "a"{x}', /expecting a whole number/],
  ["root ::= [a-", /unexpected end of input/],
  ["root ::= <think>", /token references/],
  ['root ::= x\nx ::= "a" ws*\nws ::= | " "', /left recursion/],
  ['root ::= root "a" | "b"', /left recursion/],
  ['root ::= "a"\0 "b"', /NUL/],
  ['root ::= "a" "b"\n  "c"', /line 2, column 3: expecting a rule name/],
];
