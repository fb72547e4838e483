import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, PoolError } from "../../shared/errors/index.js";
import { checkPromptBytes, promptBytes, promptBytesLimit } from "../../shared/protocol/index.js";

describe("prompt bytes", () => {
  it("counts UTF-8 bytes of a prompt, and of a chat's contents", () => {
    assert.equal(promptBytes({ kind: "prompt", prompt: "héllo" }), 6);
    assert.equal(
      promptBytes({
        kind: "chat",
        messages: [
          { role: "system", content: "ab" },
          { role: "user", content: "€" },
        ],
      }),
      5,
    );
  });

  it("bounds a context's prompt by its longest token, and knows no bound without one", () => {
    assert.equal(promptBytesLimit(4096, 17), 69_632);
    assert.equal(promptBytesLimit(4096, undefined), undefined);
  });

  it("refuses a prompt over the bound with PROMPT_TOO_LONG, naming sizes and never the text", () => {
    assert.doesNotThrow(() => checkPromptBytes(100, 100, 10));
    assert.doesNotThrow(() => checkPromptBytes(1e9, undefined, 10));
    assert.throws(
      () => checkPromptBytes(101, 100, 10),
      (error: unknown) =>
        error instanceof PoolError &&
        error.code === ErrorCode.PROMPT_TOO_LONG &&
        /101 bytes/.test(error.message) &&
        /10 tokens/.test(error.message),
    );
  });
});
