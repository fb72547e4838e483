/**
 * A child process for `tests/model/gbnf-differential.test.ts`: reads a JSON list of grammars on
 * stdin, hands each to llama.cpp's parser, and writes `@@case <n>` to stderr before each (pipes
 * are synchronous on Linux, so whatever llama.cpp prints for case n follows its marker). Writes
 * the list of which ones parsed to stdout.
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const grammars = JSON.parse(Buffer.concat(chunks).toString("utf8")) as string[];
const llama = await getLlama({
  build: "never",
  gpu: false,
  logLevel: LlamaLogLevel.error,
  logger: () => {},
});
const parsed: boolean[] = [];
for (const [index, grammar] of grammars.entries()) {
  process.stderr.write(`@@case ${index}\n`);
  try {
    await llama.createGrammar({ grammar });
    parsed.push(true);
  } catch {
    parsed.push(false);
  }
}
process.stderr.write("@@end\n");
await llama.dispose();
process.stdout.write(JSON.stringify(parsed));
