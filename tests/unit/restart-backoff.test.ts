/** The waits `npm start` leaves before restarting a crashed part, as docs/operations.md states them. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { restartBackoff, restartDelayMs } from "../../scripts/launcher/restart-backoff.js";

describe("restart backoff", () => {
  it("doubles from 1 s with each restart in a row, up to 30 s", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 50].map((restart) => restartDelayMs(restart)),
      [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000],
    );
  });

  it("counts a part as stable after 60 s", () => {
    assert.equal(restartBackoff.stableMs, 60_000);
  });
});
