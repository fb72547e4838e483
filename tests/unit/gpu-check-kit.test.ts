/**
 * The GPU check kit runs where nothing can be fixed mid-run (a lent machine, minutes of device
 * time): what can drift between the packer, the entry script and the device tool's limits is
 * checked here, without packing.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../shared/paths.js";
import { DEVICE_LIMITS, deviceCall, KIT_DIR, KIT_FILES } from "../gpu-check/kit-layout.js";

const root = packageRoot();
const read = (file: string) => readFileSync(path.join(root, file), "utf8");
const entryScript = read("tests/gpu-check/run-kit.sh");

describe("GPU check kit", () => {
  it("the device call fits the tool's limits and carries the kit, which git ignores", () => {
    const call = deviceCall();
    assert.ok(call.command.length <= DEVICE_LIMITS.commandChars);
    assert.ok(call.carry.length <= DEVICE_LIMITS.carryPaths);
    assert.ok(call.timeout_s <= DEVICE_LIMITS.timeoutS);
    assert.deepEqual(call.carry, [KIT_DIR]);
    assert.match(call.command, new RegExp(`^bash ${KIT_DIR.replace(".", "\\.")}/run\\.sh `));
    assert.ok(read(".gitignore").split("\n").includes(`${KIT_DIR}/`));
  });

  it("the entry script checks for every file the packer makes", () => {
    const checked = /for file in ([^;]+); do/.exec(entryScript)?.[1]?.split(" ") ?? [];
    const packed = KIT_FILES.filter((file) => file !== "run.sh" && file !== "manifest.json");
    assert.deepEqual([...checked].sort(), [...packed].sort());
  });

  it("the entry script ends its work before the device tool stops the run", () => {
    const limit = Number(/^time_limit=(\d+)$/m.exec(entryScript)?.[1]);
    assert.ok(limit > 0 && limit <= DEVICE_LIMITS.timeoutS - 30, `time_limit=${limit}`);
  });
});
