import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EstimateReport } from "../../gpu-worker/memory/estimate-messages.js";
import { formatPlanTable, planMemory } from "../../gpu-worker/memory/memory-plan.js";

const MiB = 1024 * 1024;

function report(device: "gpu" | "cpu", mmap = true): EstimateReport {
  return {
    device,
    backend: device === "gpu" ? "cuda" : "cpu",
    totalBytes: 1000 * MiB,
    freeBytes: 900 * MiB,
    mmap,
    models: [
      { name: "a", contextSize: 4096, weightsBytes: 100 * MiB, contextBytes: 50 * MiB },
      { name: "b", contextSize: 2048, weightsBytes: 200 * MiB, contextBytes: 20 * MiB },
    ],
  };
}

const models = [
  { name: "a", settings: { threads: 2, sequences: 4 } },
  { name: "b", settings: { threads: 1, sequences: 1 } },
];

describe("planMemory", () => {
  it("on a GPU, holds the weights and a context once per thread", () => {
    const plan = planMemory(report("gpu"), models, { utilization: 0.95, budgetMb: undefined });
    assert.equal(plan.models[0]?.totalBytes, 2 * (100 + 50) * MiB);
    assert.equal(plan.models[1]?.totalBytes, (200 + 20) * MiB);
    assert.equal(plan.totalBytes, 520 * MiB);
    assert.equal(plan.budgetBytes, Math.floor(1000 * MiB * 0.95));
    assert.equal(plan.fits, true);
  });

  it("gives each GPU thread a VRAM cap: its need and up to a tenth more, within the budget", () => {
    const plan = planMemory(report("gpu"), models, { utilization: 0.95, budgetMb: undefined });
    const [a, b] = plan.models;
    assert.ok(a?.threadVramCapBytes && b?.threadVramCapBytes);
    assert.equal(a.threadVramCapBytes, Math.floor(150 * MiB * 1.1));
    assert.equal(b.threadVramCapBytes, Math.floor(220 * MiB * 1.1));
    const tight = planMemory(report("gpu"), models, { utilization: 0.95, budgetMb: 310 });
    const [capped] = tight.models;
    assert.ok(capped?.threadVramCapBytes !== undefined);
    assert.ok(
      2 * capped.threadVramCapBytes <= tight.budgetBytes,
      "a model's caps stay in the budget",
    );
    assert.ok(capped.threadVramCapBytes >= 150 * MiB, "and give each thread its need");
  });

  it("on a CPU with mmap, a model's threads share one copy of the weights; no VRAM caps", () => {
    const plan = planMemory(report("cpu"), models, { utilization: 0.5, budgetMb: undefined });
    assert.equal(plan.models[0]?.totalBytes, (100 + 2 * 50) * MiB);
    assert.equal(plan.models[0]?.weightCopies, 1);
    assert.equal(plan.models[0]?.threadVramCapBytes, undefined);
    assert.equal(plan.budgetBytes, 500 * MiB);
    assert.equal(plan.fits, true);
    const noMmap = planMemory(report("cpu", false), models, {
      utilization: 1,
      budgetMb: undefined,
    });
    assert.equal(noMmap.models[0]?.totalBytes, 2 * (100 + 50) * MiB);
  });

  it("MEMORY_BUDGET_MB overrides the utilization; models fit one by one, not all at once", () => {
    const plan = planMemory(report("gpu"), models, { utilization: 0.95, budgetMb: 500 });
    assert.equal(plan.budgetBytes, 500 * MiB);
    assert.ok(plan.totalBytes > plan.budgetBytes, "together they need more than the budget");
    assert.equal(plan.fits, true, "each fits on its own: they load on demand");
    assert.match(plan.budgetSource, /MEMORY_BUDGET_MB/);
  });

  it("does not fit when a model alone needs more than the budget, and names it", () => {
    const plan = planMemory(report("gpu"), models, { utilization: 0.95, budgetMb: 250 });
    assert.equal(plan.fits, false);
    assert.deepEqual(
      plan.tooLarge.map((model) => model.name),
      ["a"],
    );
  });

  it("formats a table with a line per model, the sum and the budget", () => {
    const plan = planMemory(report("cpu"), models, { utilization: 0.5, budgetMb: undefined });
    const lines = formatPlanTable(plan);
    assert.match(lines[0] ?? "", /^model\s+weights\s+KV cache\s+threads\s+total$/);
    assert.match(
      lines[1] ?? "",
      /^a\s+100\.0 MiB \(shared\)\s+50\.0 MiB \(4096×4\)\s+2\s+200\.0 MiB$/,
    );
    assert.match(lines[2] ?? "", /^b\s+200\.0 MiB\s+20\.0 MiB \(2048×1\)\s+1\s+220\.0 MiB$/);
    assert.match(lines[3] ?? "", /^all models \(need not fit at once\)\s+420\.0 MiB$/);
    assert.match(
      lines[4] ?? "",
      /^budget\s+500\.0 MiB \(GPU_MEMORY_UTILIZATION 0\.5 of RAM, cpu\)$/,
    );
  });
});
