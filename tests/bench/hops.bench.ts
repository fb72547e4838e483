/**
 * `npm run bench -- hops`: the floor under the stack's time to first token on this machine — the
 * stack's hops with no work in them (see `hops.ts`). Compare with the stack's overhead in
 * `npm run bench -- serving`. `BENCH_RUNS` sets the requests each way (default 200).
 *
 *   npm run bench -- hops
 */
import { testRedisUrl } from "../support/redis.js";
import { benchRuns, print, row, tableHead } from "./bench-stats.js";
import { measureHops } from "./hops.js";

const runs = Math.max(benchRuns(200), 20);
const samples = await measureHops({ redisUrl: await testRedisUrl(), runs });
print([
  `The stack's hops with nothing in them (see tests/bench/hops.ts): separate front and back processes, a thread, a local Redis; ${runs} requests each way.`,
  "",
  ...tableHead,
  row("first text, requests back to back", samples.backToBack, "ms", 2),
  row("first text, 60 ms idle between requests", samples.idle, "ms", 2),
]);
