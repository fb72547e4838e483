/**
 * The README's table of error codes lists exactly the codes of `ErrorCode` (shared/errors), read
 * from the code, so a code added or removed there fails here until the README says what it means.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode } from "../../shared/errors/index.js";
import { readmeSection, tableNames } from "../support/readme.js";

describe("README error table", () => {
  it("lists every error code of the code, and no other", () => {
    const documented = tableNames(readmeSection("The stream and the result"));
    assert.deepEqual(documented, [...new Set(documented)], "a code is listed twice");
    assert.deepEqual([...documented].sort(), Object.values(ErrorCode).sort());
  });
});
