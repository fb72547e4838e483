// The patches this project applies to its dependencies (see apply-patches.mjs). Each is pinned to
// one exact version and says why it exists, so it can be dropped the day upstream fixes the bug.

/**
 * @typedef {object} Patch
 * @property {string} name
 * @property {string} package
 * @property {string} version the exact version the patch was written for
 * @property {string} file the file to patch, relative to the package's folder
 * @property {string} find the exact text to replace (must occur once)
 * @property {string} replace the new text; it contains `marker`
 * @property {string} marker shows that the patch is applied
 */

const marker = "secure-llm-pool patch: release the context lock between batches";
const partialMarker = "secure-llm-pool patch: no token past maxTokens";

/** @type {Patch[]} */
export const patches = [
  {
    name: "context-lock-between-batches",
    package: "node-llama-cpp",
    version: "3.21.1",
    file: "dist/evaluator/LlamaContext/LlamaContext.js",
    // Why: `dispatchPendingBatch` decodes batch after batch inside the context lock for as long as
    // decodes are queued, and with two or more sequences generating one always is. Everything else
    // that takes that lock waits until they all finish: `sequence.dispose()`, `clearHistory()`,
    // erasing a sequence's tokens. A short job next to two long ones kept its sequence (and its
    // queue slot) for seconds after its text was done (`node ../shared/repro/sequence-starvation.mjs`:
    // released after 11.9 s instead of ~0.1 s). Also seen on 3.22.1.
    // The fix: decode one batch per turn of the lock, and queue the next dispatch behind whoever is
    // waiting (the lock is FIFO), so they get the lock between two batches. Tested by
    // tests/model/context-lock-patch.test.ts, which fails on the unpatched library.
    find: `                    try {
                        await decodeTokenBatchItems(currentBatchItems, currentBatchSize);
                        shouldHaveAnotherLoop = this._queuedDecodes.length > 0;
                    }`,
    replace: `                    try {
                        await decodeTokenBatchItems(currentBatchItems, currentBatchSize);
                        // ${marker}:
                        // dispatch the next batch behind whoever waits for the lock (FIFO)
                        // instead of looping while holding it, which starves them.
                        shouldHaveAnotherLoop = false;
                        if (this._queuedDecodes.length > 0)
                            this.dispatchPendingBatch();
                    }`,
    marker,
  },
  {
    name: "completion-max-tokens-partial-character",
    package: "node-llama-cpp",
    version: "3.21.1",
    file: "dist/evaluator/LlamaCompletion.js",
    // Why: a sampled token that ends in part of a character is held back until the next one
    // completes it, and the loop `continue`s before its max-tokens check: when the `maxTokens`th
    // token is such a token, LlamaCompletion samples one more, so a completion with
    // `max_tokens=64` generated 65 tokens (8 of 100 seeds of the demo model at temperature 1,
    // top-k off). The fix: the last allowed token is never held back; it goes the ordinary way
    // (its partial character is not shown, as at any other end) and the check stops the loop.
    // Tested by tests/model/completion-token-count.test.ts, which fails on the unpatched library.
    find: `                if (pendingPartialTokens.length === 0 &&
                    text.endsWith(UNKNOWN_UNICODE_CHAR) &&
                    !model.isSpecialToken(token) &&
                    !model.isEogToken(token)) {`,
    replace: `                if (pendingPartialTokens.length === 0 &&
                    text.endsWith(UNKNOWN_UNICODE_CHAR) &&
                    !model.isSpecialToken(token) &&
                    !model.isEogToken(token) &&
                    // ${partialMarker}
                    !(maxTokens != null && maxTokens > 0 && generatedTokens >= maxTokens)) {`,
    marker: partialMarker,
  },
];
