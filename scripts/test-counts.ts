/** Test counts of a run, summed over tiers for the closing line of `npm test`. */
export interface TestCounts {
  passed: number;
  failed: number;
  skipped: number;
}

/**
 * The counts of a node:test TAP report, from its closing comments (`# pass N`, `# fail N`,
 * `# cancelled N`, `# skipped N`, `# todo N`). A cancelled test (its file crashed or timed out)
 * counts as failed; a todo as skipped. A report without those lines counts nothing.
 */
export function readTapCounts(tap: string): TestCounts {
  const count = (name: string) => {
    let sum = 0;
    // Only top-level comments: subtests' reports are indented.
    for (const match of tap.matchAll(new RegExp(`^# ${name} (\\d+)$`, "gm"))) {
      sum += Number(match[1]);
    }
    return sum;
  };
  return {
    passed: count("pass"),
    failed: count("fail") + count("cancelled"),
    skipped: count("skipped") + count("todo"),
  };
}

export function addCounts(a: TestCounts, b: TestCounts): TestCounts {
  return {
    passed: a.passed + b.passed,
    failed: a.failed + b.failed,
    skipped: a.skipped + b.skipped,
  };
}

/** `N passed, N failed, N skipped`: the closing line CI reads. */
export function formatTotals(counts: TestCounts): string {
  return `${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`;
}
