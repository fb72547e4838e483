/**
 * The reference client's command line: where the request's text comes from (PROMPT, a lone `-`,
 * `--prompt-file`, `--chat`, `--messages-file`), and usage errors that never quote the text.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseClientArgs, UsageError } from "../../client/index.js";

const secret = "a-prompt-nobody-may-see";

function inputOf(argv: string[]) {
  const parsed = parseClientArgs(argv);
  assert.equal(parsed.help, false);
  return parsed.help ? undefined : parsed.args.request.input;
}

function usageError(argv: string[]): string {
  try {
    parseClientArgs(argv);
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    assert.ok(!error.message.includes(secret), error.message);
    return error.message;
  }
  assert.fail(`no usage error for ${argv.join(" ")}`);
}

describe("client arguments: the request's text", () => {
  it("takes the prompt from --prompt-file, and from standard input as - or a lone -", () => {
    assert.deepEqual(inputOf(["--prompt-file", "long.txt"]), {
      kind: "prompt-file",
      path: "long.txt",
      system: undefined,
    });
    assert.deepEqual(inputOf(["--prompt-file", "-", "-n", "8"]), {
      kind: "prompt-file",
      path: "-",
      system: undefined,
    });
    assert.deepEqual(inputOf(["-", "--max-tokens", "8"]), {
      kind: "prompt-file",
      path: "-",
      system: undefined,
    });
  });

  it("makes the file's text the user message of a chat with --system", () => {
    assert.deepEqual(inputOf(["--system", "Be brief.", "--prompt-file", "q.txt"]), {
      kind: "prompt-file",
      path: "q.txt",
      system: "Be brief.",
    });
    assert.deepEqual(inputOf(["-s", "Be brief.", "-"]), {
      kind: "prompt-file",
      path: "-",
      system: "Be brief.",
    });
  });

  it("still sends a - among other words as text", () => {
    assert.deepEqual(inputOf(["a", "-", "b"]), { kind: "prompt", prompt: "a - b" });
  });

  it("refuses a prompt given twice, or beside a whole messages file, without quoting it", () => {
    assert.match(
      usageError([secret, "--prompt-file", "p.txt"]),
      /once: as PROMPT or with --prompt-file/,
    );
    assert.match(
      usageError(["-", "--prompt-file", "p.txt"]),
      /once: as PROMPT or with --prompt-file/,
    );
    assert.match(
      usageError(["--chat", secret, "--prompt-file", "p.txt"]),
      /--chat TEXT or with --prompt-file/,
    );
    assert.match(usageError(["--chat", secret, "-"]), /--chat TEXT or with --prompt-file/);
    assert.match(
      usageError(["--messages-file", "m.json", "--prompt-file", "p.txt"]),
      /--messages-file holds the whole request/,
    );
    assert.match(usageError(["--prompt-file", ""]), /--prompt-file needs a file name/);
    assert.match(usageError([]), /--prompt-file FILE/);
  });
});

describe("client arguments: --client", () => {
  it("takes a client name as the keys file spells them, and refuses any other", () => {
    const parsed = parseClientArgs(["--client", " billing-2.eu ", "hi"]);
    assert.equal(parsed.help ? undefined : parsed.args.client, "billing-2.eu");
    const none = parseClientArgs(["hi"]);
    assert.equal(none.help ? "help" : none.args.client, undefined);
    for (const name of ["", "-x", "a b", "x".repeat(65), "a/b"]) {
      assert.match(usageError([`--client=${name}`, "hi"]), /--client must be 1-64 letters/, name);
    }
  });
});
