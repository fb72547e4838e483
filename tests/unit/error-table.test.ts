/**
 * The table of error codes in docs/errors.md lists exactly the codes of `ErrorCode`
 * (shared/errors), read from the code, so a code added or removed there fails here until the
 * documentation says what it means.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode } from "../../shared/errors/index.js";
import { doc, tableNames } from "../support/readme.js";

describe("error table (docs/errors.md)", () => {
  it("lists every error code of the code, and no other", () => {
    const documented = tableNames(doc("docs/errors.md"));
    assert.deepEqual(documented, [...new Set(documented)], "a code is listed twice");
    assert.deepEqual([...documented].sort(), Object.values(ErrorCode).sort());
  });
});
