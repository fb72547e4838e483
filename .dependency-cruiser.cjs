/**
 * The shape `npm test` keeps (`npm run lint`): no import cycle, type-only imports included, and
 * no part reaching into another. The parts talk through `shared/` (contracts) and Redis only;
 * what runs on the caller's machine (`client/`) is not the orchestrator's or the gpu-worker's;
 * `scripts/` (launcher, build, test runner) does not import the tests.
 */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "An import cycle, type-only imports included.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "orchestrator-not-gpu-worker",
      comment: "The orchestrator and the gpu-worker are separate processes: they share shared/.",
      severity: "error",
      from: { path: "^orchestrator/" },
      to: { path: "^(gpu-worker|client)/" },
    },
    {
      name: "gpu-worker-not-orchestrator",
      comment: "The orchestrator and the gpu-worker are separate processes: they share shared/.",
      severity: "error",
      from: { path: "^gpu-worker/" },
      to: { path: "^(orchestrator|client)/" },
    },
    {
      name: "client-not-the-pool",
      comment: "The client and the proxy run on the caller's machine, with shared/ only.",
      severity: "error",
      from: { path: "^client/" },
      to: { path: "^(orchestrator|gpu-worker)/" },
    },
    {
      name: "shared-is-contracts",
      comment: "shared/ holds contracts and pure helpers: it imports no part.",
      severity: "error",
      from: { path: "^shared/" },
      to: { path: "^(orchestrator|gpu-worker|client|scripts|tests)/" },
    },
    {
      name: "scripts-not-tests",
      comment: "The launcher, build and test runner do not import the tests.",
      severity: "error",
      from: { path: "^scripts/" },
      to: { path: "^tests/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    includeOnly: "^(shared|orchestrator|gpu-worker|client|scripts|tests)/",
  },
};
