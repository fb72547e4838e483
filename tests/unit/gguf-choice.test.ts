import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { progressBar } from "../../gpu-worker/models/hub/download-progress.js";
import {
  chooseGguf,
  ggufSets,
  quantOf,
  splitSetPaths,
} from "../../gpu-worker/models/hub/gguf-choice.js";
import { ErrorCode, ModelLoadError } from "../../shared/errors/index.js";

describe("quantOf", () => {
  it("reads llama.cpp quantization names from file names", () => {
    const cases: Array<[string, string | undefined]> = [
      ["qwen2.5-0.5b-instruct-q4_k_m.gguf", "Q4_K_M"],
      ["Llama-3.2-1B-Instruct-Q8_0.gguf", "Q8_0"],
      ["tinyllama-1.1b-chat-v1.0.Q5_K_S.gguf", "Q5_K_S"],
      ["Model-IQ2_XXS.gguf", "IQ2_XXS"],
      ["Model-UD-Q4_K_XL.gguf", "Q4_K_XL"],
      ["model-f16.gguf", "F16"],
      ["model-BF16.gguf", "BF16"],
      ["big-Q4_K_M-00002-of-00003.gguf", "Q4_K_M"],
      ["Q6_K/model-00001-of-00002.gguf", "Q6_K"],
      ["model.gguf", undefined],
      ["Qwen2.5-7B.gguf", undefined],
    ];
    for (const [path, quant] of cases) assert.equal(quantOf(path), quant, path);
  });
});

describe("split sets", () => {
  it("lists every part of a split file", () => {
    assert.deepEqual(splitSetPaths("d/m-Q8_0-00002-of-00003.gguf"), [
      "d/m-Q8_0-00001-of-00003.gguf",
      "d/m-Q8_0-00002-of-00003.gguf",
      "d/m-Q8_0-00003-of-00003.gguf",
    ]);
    assert.deepEqual(splitSetPaths("m.gguf"), ["m.gguf"]);
  });

  it("groups parts, skips projectors and incomplete sets", () => {
    assert.deepEqual(
      ggufSets([
        "README.md",
        "a-Q4_K_M-00002-of-00002.gguf",
        "a-Q4_K_M-00001-of-00002.gguf",
        "b-Q8_0-00001-of-00002.gguf",
        "mmproj-f16.gguf",
        "c-F16.gguf",
      ]),
      [
        {
          paths: ["a-Q4_K_M-00001-of-00002.gguf", "a-Q4_K_M-00002-of-00002.gguf"],
          quant: "Q4_K_M",
        },
        { paths: ["c-F16.gguf"], quant: "F16" },
      ],
    );
  });
});

describe("chooseGguf", () => {
  const repo = "o/r";
  const paths = [
    "m-Q4_K_M.gguf",
    "m-Q8_0.gguf",
    "x/m-F16-00001-of-00002.gguf",
    "x/m-F16-00002-of-00002.gguf",
  ];
  const fails = (run: () => unknown, texts: string[]) =>
    assert.throws(run, (error: unknown) => {
      assert.ok(error instanceof ModelLoadError);
      assert.equal(error.code, ErrorCode.MODEL_LOAD_FAILED);
      for (const text of texts)
        assert.ok(error.message.includes(text), `${text} in ${error.message}`);
      return true;
    });

  it("takes the first preferred quantization the repo has", () => {
    assert.deepEqual(chooseGguf(paths, { repo, quants: ["Q4_K_M"] }).paths, ["m-Q4_K_M.gguf"]);
    assert.deepEqual(chooseGguf(paths, { repo, quants: ["Q5_K_M", "F16"] }).paths, [
      "x/m-F16-00001-of-00002.gguf",
      "x/m-F16-00002-of-00002.gguf",
    ]);
  });

  it("takes a named file with its split set", () => {
    assert.equal(
      chooseGguf(paths, { repo, file: "x/m-F16-00002-of-00002.gguf", quants: [] }).paths.length,
      2,
    );
  });

  it("explains a repo without GGUF, a missing file, a missing quantization and a tie", () => {
    fails(
      () =>
        chooseGguf(["model.safetensors", "config.json"], {
          repo: "meta/Llama-3",
          quants: ["Q4_K_M"],
        }),
      ["no GGUF file", '"Llama-3 GGUF"', "local .gguf path"],
    );
    fails(
      () => chooseGguf(paths, { repo, file: "nope.gguf", quants: [] }),
      ["nope.gguf", "m-Q8_0.gguf"],
    );
    fails(
      () => chooseGguf(paths, { repo, quants: ["Q2_K"] }),
      ["Q2_K", "Q4_K_M, Q8_0, F16", "x/m-F16-00001-of-00002.gguf (+1 parts)", "o/r:<QUANT>"],
    );
    fails(
      () => chooseGguf(["a/m-Q4_K_M.gguf", "b/m-Q4_K_M.gguf"], { repo, quants: ["Q4_K_M"] }),
      ["several Q4_K_M", "o/r/<path>.gguf"],
    );
  });
});

describe("progressBar", () => {
  it("shows percent, bytes, speed and time left", () => {
    const line = progressBar(45, 1_200_000_000, 2_700_000_000, 35_100_000, 40, 100);
    assert.match(line, /^\[#+-+\] {2}45% {2}1\.2 GB \/ 2\.7 GB {2}35\.1 MB\/s {2}ETA 40s$/);
    assert.ok(line.length <= 100);
  });
});
