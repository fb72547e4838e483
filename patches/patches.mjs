// The patches this project applies to its dependencies (see apply-patches.mjs). Each is pinned to
// one exact version and says why it exists, so it can be dropped the day upstream fixes the bug.

/**
 * @typedef {object} Patch
 * @property {string} name
 * @property {string} package
 * @property {string} version the exact version the patch was written for
 * @property {string} file the file to patch, relative to the package's folder
 * @property {string} [find] the exact text to replace (must occur once)
 * @property {string} [replace] the new text; it contains `marker`
 * @property {{find: string, replace: string}[]} [edits] several replacements instead of one, in
 *   order, each found exactly once; one of them contains `marker`
 * @property {string} marker shows that the patch is applied
 */

const marker = "secure-llm-pool patch: release the context lock between batches";
const partialMarker = "secure-llm-pool patch: no token past maxTokens";
const contextMarker = "secure-llm-pool patch: token text in context";
const lengthMarker = "secure-llm-pool patch: string length in characters";

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
  {
    name: "completion-text-in-context",
    package: "node-llama-cpp",
    version: "3.21.1",
    file: "dist/evaluator/LlamaCompletion.js",
    // Why: LlamaCompletion detokenizes each sampled token on its own for its stop-string detector,
    // and the first text chunk and the response without the prompt before them. A SentencePiece
    // model (Llama 2, Mistral, Gemma, the stories260K test model) drops a token's leading space
    // when the token is detokenized with nothing before it, so (1) a stop string with a space in it
    // never matched (`stop: ["a little"]` ran to max_tokens through "a little") and (2) a
    // completion of "Once upon a" began "time", not " time" (the caller's prompt + completion read
    // "Once upon atime"). LlamaChat passes the tokens before (the context window) and has neither
    // fault. The fix: the detector sees each token's text after the tokens before it (the prompt's
    // last ones, then those generated), and the first chunk and the response are detokenized after
    // the prompt's last tokens. Byte-level BPE models (Llama 3, Qwen) keep their spaces either way.
    // Tested by tests/model/completion-text-patch.test.ts, which fails on the unpatched library.
    edits: [
      {
        find: `        let inputTokens = tokens;
`,
        replace: `        let inputTokens = tokens;
        // ${contextMarker}: the tokens before a token's text (the prompt's, then those generated)
        const promptTailForDetokenizer = tokens.slice(-32);
        const lastTokensForDetokenizer = promptTailForDetokenizer.slice();
`,
      },
      {
        find: `                const text = model.detokenize([token]);
`,
        replace: `                const text = model.detokenize(tokens, false, lastTokensForDetokenizer);
`,
      },
      {
        find: `                    pendingPartialTokens.length = 0;
                    const queuedTokenRelease = streamRegulator.addChunk({ tokens, text });
`,
        replace: `                    pendingPartialTokens.length = 0;
                    const queuedTokenRelease = streamRegulator.addChunk({ tokens, text });
                    pushAll(lastTokensForDetokenizer, tokens);
                    if (lastTokensForDetokenizer.length > 64)
                        lastTokensForDetokenizer.splice(0, lastTokensForDetokenizer.length - 32);
`,
      },
      {
        find: `                            onTextChunk?.(model.detokenize(pendingTokens, false, res));
`,
        replace: `                            onTextChunk?.(model.detokenize(pendingTokens, false, res.length > 0 ? res : promptTailForDetokenizer));
`,
      },
      {
        find: `                        onTextChunk?.(model.detokenize(pendingTokens, false, res));
`,
        replace: `                        onTextChunk?.(model.detokenize(pendingTokens, false, res.length > 0 ? res : promptTailForDetokenizer));
`,
      },
      {
        find: `                        let modelResponse = model.detokenize(res);
`,
        replace: `                        let modelResponse = model.detokenize(res, false, promptTailForDetokenizer);
`,
      },
      {
        find: `                    let modelResponse = model.detokenize(res);
`,
        replace: `                    let modelResponse = model.detokenize(res, false, promptTailForDetokenizer);
`,
      },
    ],
    marker: contextMarker,
  },
  {
    name: "json-schema-string-length-in-characters",
    package: "node-llama-cpp",
    version: "3.21.1",
    file: "dist/utils/gbnfJson/utils/validateObjectAgainstGbnfSchema.js",
    // Why: a JSON Schema string's `minLength`/`maxLength` count characters (code points), and the
    // grammar node-llama-cpp generates for it counts them so (one GBNF character each); but the
    // check of the parsed value afterwards used JavaScript's `length` (UTF-16 code units), where a
    // character outside the Basic Multilingual Plane (an emoji, a math letter) counts 2. A value the
    // grammar allowed then failed the check: a tool call with `maxLength: 20` and
    // `tool_choice: "required"` failed the job `INTERNAL` ("Expected at most 20 characters but got
    // 23") for 1 in 10 seeds of the random test model at temperature 1, as did `response_format`
    // schemas. The fix: count code points. A string holding U+FFFD (bytes the model emitted that
    // are not UTF-8: the random test model did, 1 call in 10 at temperature 1; the grammar counts
    // them its own way, JavaScript's decoder makes up to 4 characters of one) is not counted again:
    // the grammar held it. Tested by tests/model/schema-length-patch.test.ts, which fails on the
    // unpatched library.
    find: `    const minLength = Math.max(0, schema.minLength ?? 0);
    const maxLength = schema.maxLength == null
        ? undefined
        : Math.max(schema.maxLength, minLength);
    if (object.length < minLength) {
        if (minLength === maxLength)
            throw new TechnicalValidationError(\`Expected exactly \${minLength} characters but got \${object.length}\`);
        throw new TechnicalValidationError(\`Expected at least \${minLength} characters but got \${object.length}\`);
    }
    else if (maxLength != null && object.length > maxLength) {
        if (minLength === maxLength)
            throw new TechnicalValidationError(\`Expected exactly \${minLength} characters but got \${object.length}\`);
        throw new TechnicalValidationError(\`Expected at most \${maxLength} characters but got \${object.length}\`);
    }`,
    replace: `    const minLength = Math.max(0, schema.minLength ?? 0);
    const maxLength = schema.maxLength == null
        ? undefined
        : Math.max(schema.maxLength, minLength);
    // ${lengthMarker}: code points, as the grammar counts them; a string with U+FFFD
    // holds bytes that were not UTF-8, which the grammar counted its own way: its count stands
    const length = object.includes("\\uFFFD") ? minLength : [...object].length;
    if (length < minLength) {
        if (minLength === maxLength)
            throw new TechnicalValidationError(\`Expected exactly \${minLength} characters but got \${length}\`);
        throw new TechnicalValidationError(\`Expected at least \${minLength} characters but got \${length}\`);
    }
    else if (maxLength != null && length > maxLength) {
        if (minLength === maxLength)
            throw new TechnicalValidationError(\`Expected exactly \${minLength} characters but got \${length}\`);
        throw new TechnicalValidationError(\`Expected at most \${maxLength} characters but got \${length}\`);
    }`,
    marker: lengthMarker,
  },
];
